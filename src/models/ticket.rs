//! The ticket's start-or-cancel protocol (`src/ticket/slot.rs`), on the
//! shipped `Ticket`, `Slot` and the queue's `SharedJob`: a worker running
//! the request races the holder's `cancel` (and a closing pool's sweep, or
//! the job dropped unrun), while the holder waits. (t1)-(t3);
//! `docs/design.md`, "A request's ends". And the holder as a lookout for a
//! worker stuck on its handle's full result queue, (t4).

use std::sync::Arc as StdArc;

use super::*;
use crate::lookout::{Home, Lookouts};
use crate::request::context::Detached;
use crate::request::task::TaskBox;
use crate::request::TaskError;
use crate::ticket::Ticket;

/// A ticket whose request counts its runs in `ran`.
fn counted_ticket(ran: &Arc<AtomicUsize>) -> (Ticket<u32>, TaskBox) {
    let ran = Arc::clone(ran);
    Ticket::with_request(
        move || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(7)
        },
        None,
    )
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

/// Whether a lookout model's handle lets the ticket's holder register.
#[derive(Clone, Copy, Debug)]
pub(super) enum Lookout {
    /// As shipped: the holder registers its nudge before it looks.
    Registers,
    /// Seeded: the handle has no lookouts, so a worker that gets stuck
    /// after the holder looked nudges nobody (the model must deadlock).
    /// Seeded by loom's self-checks only (`seeded.rs`).
    #[cfg_attr(not(loom), allow(dead_code))]
    NeverRegisters,
}

/// The handle a lookout model's ticket was put through: real `Lookouts`,
/// the stuck count a worker raises (`Inbox::stuck_senders`), and room in
/// its full result queue, which `make_room` makes (clearing the count) as
/// handling the queue would, waking the worker blocked on it.
struct StuckHandle {
    lookouts: Option<StdArc<Lookouts>>,
    stuck: AtomicUsize,
    room: Mutex<bool>,
    roomy: Condvar,
}

impl StuckHandle {
    /// The worker's side (`Inbox::send_when_full`): counts itself stuck,
    /// nudges the lookouts, and blocks until there is room.
    fn send_when_full(&self) {
        self.stuck.fetch_add(1, Ordering::SeqCst);
        if let Some(lookouts) = &self.lookouts {
            lookouts.nudge_all();
        }
        let mut room = self.room.lock().unwrap();
        while !*room {
            room = self.roomy.wait(room).unwrap();
        }
    }
}

impl Home for StuckHandle {
    fn lookouts(&self) -> Option<StdArc<Lookouts>> {
        self.lookouts.clone()
    }

    fn make_room(&self) -> bool {
        if self
            .stuck
            .compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        *self.room.lock().unwrap() = true;
        self.roomy.notify_all();
        true
    }
}

/// (t4) The ticket's request is queued behind a worker that gets stuck on
/// the handle's full result queue while the holder blocks in `wait`: the
/// worker nudges the holder (or the holder sees the stuck count first),
/// the holder makes room, and the worker goes on to run the request. A
/// lost nudge deadlocks the model (`crate::lookout`; `docs/design.md`,
/// "Lookouts").
pub(super) fn holder_makes_room_for_a_stuck_worker(lookout: Lookout) {
    let handle = StdArc::new(StuckHandle {
        lookouts: match lookout {
            Lookout::Registers => Some(StdArc::new(Lookouts::default())),
            Lookout::NeverRegisters => None,
        },
        stuck: AtomicUsize::new(0),
        room: Mutex::new(false),
        roomy: Condvar::new(),
    });
    let home: StdArc<dyn Home> = handle.clone();
    let (ticket, mut task) = Ticket::<u32>::with_request(|| Ok(7), Some(home));
    let worker = thread::spawn(move || {
        handle.send_when_full();
        task.run(&Detached);
    });
    assert_eq!(ticket.wait(), Ok(7));
    worker.join().unwrap();
}
