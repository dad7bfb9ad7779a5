//! The ticket's start-or-cancel protocol (`src/ticket/slot.rs`), on the
//! shipped `Ticket`, `Slot` and the queue's `SharedJob`: a worker running
//! the request races the holder's `cancel` (and a closing pool's sweep, or
//! the job dropped unrun), while the holder waits. (t1)-(t3);
//! `docs/design.md`, "A request's ends".

use super::*;
use crate::request::context::Detached;
use crate::request::task::TaskBox;
use crate::request::TaskError;
use crate::ticket::Ticket;

/// A ticket whose request counts its runs in `ran`.
fn counted_ticket(ran: &Arc<AtomicUsize>) -> (Ticket<u32>, TaskBox) {
    let ran = Arc::clone(ran);
    Ticket::with_request(move || {
        ran.fetch_add(1, Ordering::SeqCst);
        Ok(7)
    })
}

/// (t1) A worker runs the request while another thread cancels the
/// ticket and the holder waits: exactly one wins. If `cancel` returned
/// true the callable never ran and the holder hears `Cancelled`; if not,
/// it ran once and the holder gets its value. The waiter is woken either
/// way (a lost wake-up deadlocks the model).
pub(super) fn cancel_races_start() {
    let ran = Arc::new(AtomicUsize::new(0));
    let (ticket, mut task) = counted_ticket(&ran);
    let ticket = Arc::new(ticket);
    let worker = thread::spawn(move || task.run(&Detached));
    let canceller = {
        let ticket = Arc::clone(&ticket);
        thread::spawn(move || ticket.cancel())
    };
    let cancelled = canceller.join().unwrap();
    let ticket = Arc::try_unwrap(ticket).expect("the canceller has let go");
    let outcome = ticket.wait();
    worker.join().unwrap();
    let ran = ran.load(Ordering::SeqCst);
    if cancelled {
        assert_eq!((ran, outcome), (0, Err(TaskError::Cancelled)));
    } else {
        assert_eq!((ran, outcome), (1, Ok(7)));
    }
}

/// (t2) The holder cancels while a closing pool's sweep cancels the same
/// request (`Job::cancel`) and the job is then dropped: the ticket hears
/// one outcome, `Cancelled`, and the callable never runs.
pub(super) fn cancel_races_sweep() {
    let ran = Arc::new(AtomicUsize::new(0));
    let (ticket, mut task) = counted_ticket(&ran);
    let ticket = Arc::new(ticket);
    let sweeper = thread::spawn(move || {
        task.cancel();
        drop(task);
    });
    let canceller = {
        let ticket = Arc::clone(&ticket);
        thread::spawn(move || ticket.cancel())
    };
    let _ = canceller.join().unwrap();
    sweeper.join().unwrap();
    let ticket = Arc::try_unwrap(ticket).expect("the canceller has let go");
    assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// (t3) The queue's job is dropped unrun (its pool discarded it) while the
/// holder blocks in `wait`: the drop ends the request as `Cancelled` and
/// wakes the holder (a lost wake-up deadlocks the model); the callable
/// never runs.
pub(super) fn dropped_job_wakes_the_waiter() {
    let ran = Arc::new(AtomicUsize::new(0));
    let (ticket, task) = counted_ticket(&ran);
    let discarder = thread::spawn(move || drop(task));
    assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
    discarder.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}
