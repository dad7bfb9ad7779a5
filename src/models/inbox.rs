//! The wait protocol's scenarios, on a handle's inbox as it ships: the real
//! [`Inbox`] and [`Results`] on the checker's primitives (`crate::sync`,
//! including the model result channel), with real request boxes, and a
//! model of the pool's threads ([`ModelThreads`]).
//!
//! Each scenario that has a seeded check takes a [`Misuse`]: `None` is
//! what the library's callers do and must pass; the others are a caller
//! breaking one of the protocol's rules, in the way a past or plausible bug
//! did, and must be caught (the seeded self-checks in `under_loom.rs` and
//! `under_shuttle.rs`). The library itself has no bug switches.

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering as StdOrdering;

use crate::error::WaitError;
use crate::inbox::receive::{Results, Threads, Until};
use crate::inbox::{Inbox, Msg};
use crate::pool::queue::{Lifecycle, RequestQueue};
use crate::request::context::Detached;
use crate::request::in_place::in_place;
use crate::request::task::{BoxedTask, TaskBox};
use crate::request::WorkRequest;
use crate::sync::{seq_cst_pair, AtomicUsize, Ordering};

#[cfg(loom)]
use loom::{sync::Arc, thread};
#[cfg(all(shuttle, not(loom)))]
use shuttle::{sync::Arc, thread};

/// How a scenario's caller breaks the protocol, if at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Misuse {
    /// None: what the library's own callers do.
    None,
    /// A sweep puts an outcome in the overflow (`Inbox::keep`) without the
    /// wake token that `Inbox::hand_over` sends after it.
    KeepWithoutWake,
    /// The last worker wakes the waiters before it is counted out, where
    /// the pool counts it out first (`Pool::worker_exited`).
    WakeBeforeExit,
    /// A running parent's child is counted pending only after the parent's
    /// outcome went back, where `Children::spawn` counts it at once.
    ChildCountedLate,
    /// A child's put reads the lifecycle before it counts the child, where
    /// `Children::hold` counts it first.
    LifecycleReadFirst,
    /// A worker counts an executed request out of `pending` before its
    /// callable runs, where `worker::execute` ends it in place after.
    EndedBeforeRun,
}

/// The pool's threads as the wait protocol sees them: `running` workers,
/// and `unrun` requests of the handle that stay in the request queue for
/// good (no worker is left to take them, and the pool is open, so no sweep
/// cancels them). `stranded` answers as `Pool::stranded` does: the pending
/// requests are stranded when all of them are still queued (a request a
/// worker took is on its way back, not stranded).
struct ModelThreads {
    running: AtomicUsize,
    unrun: usize,
}

impl Threads for ModelThreads {
    fn on_worker_thread(&self) -> bool {
        false
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn stranded(&self, _inbox: &std::sync::Arc<Inbox>, pending: usize) -> bool {
        self.unrun >= pending
    }
}

/// One handle (its inbox and results), the pool's threads, and the
/// requests whose callbacks ran (by number; the callbacks record outside
/// the model, with no operation of the checker's).
struct Handle {
    results: Results,
    threads: ModelThreads,
    handled: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    callbacks: std::sync::Arc<StdAtomicUsize>,
}

impl Handle {
    /// A handle with a result queue of `capacity` (`None`: unbounded), in a
    /// pool with one running worker and `unrun` requests that no worker
    /// will take.
    fn new(capacity: Option<usize>, unrun: usize) -> Arc<Handle> {
        Arc::new(Handle {
            results: Results::new(capacity),
            threads: ModelThreads {
                running: AtomicUsize::new(1),
                unrun,
            },
            handled: Default::default(),
            callbacks: Default::default(),
        })
    }

    fn inbox(&self) -> &std::sync::Arc<Inbox> {
        self.results.inbox()
    }

    /// Request `n`, registered as pending (as a put does), in its real box;
    /// its callbacks (result or error) record `n`.
    fn put(&self, n: u64) -> BoxedTask {
        let record = |handled: &std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
                      callbacks: &std::sync::Arc<StdAtomicUsize>| {
            let (handled, callbacks) = (handled.clone(), callbacks.clone());
            move || {
                handled.lock().unwrap().push(n);
                callbacks.fetch_add(1, StdOrdering::SeqCst);
            }
        };
        let (on_result, on_error) = (
            record(&self.handled, &self.callbacks),
            record(&self.handled, &self.callbacks),
        );
        let request: WorkRequest = WorkRequest::new(|x: u64| x, n)
            .on_result(move |_, _| on_result())
            .on_error(move |_, _| on_error())
            .into();
        self.inbox().register(request.id()).unwrap();
        match request.into_task() {
            TaskBox::Boxed(task) => task,
            TaskBox::Shared(_) => unreachable!("a callback request has a box of its own"),
        }
    }

    /// An executed request (`ThreadPool::execute`), registered as pending:
    /// its callable sets `ran`.
    fn put_in_place(&self, ran: std::sync::Arc<std::sync::atomic::AtomicBool>) -> BoxedTask {
        let request = in_place(move |_| ran.store(true, StdOrdering::SeqCst));
        self.inbox().register(request.id()).unwrap();
        match request.into_task() {
            TaskBox::Boxed(task) => task,
            TaskBox::Shared(_) => unreachable!("an executed request has a box of its own"),
        }
    }

    /// Request `n`, registered as pending, whose result callback records
    /// `n`, calls `first`, and then waits on this handle (nested in the
    /// wait or poll that runs it); `seen` gets what that wait returned.
    fn put_waiting_inside(
        this: &Arc<Self>,
        n: u64,
        first: impl FnOnce() + Send + 'static,
        seen: std::sync::Arc<std::sync::Mutex<Option<Result<usize, WaitError>>>>,
    ) -> BoxedTask {
        let (handle, inner) = (Arc::clone(this), Arc::clone(this));
        let request: WorkRequest = WorkRequest::new(|x: u64| x, n)
            .on_result(move |_, _| {
                handle.handled.lock().unwrap().push(n);
                handle.callbacks.fetch_add(1, StdOrdering::SeqCst);
                first();
                *seen.lock().unwrap() = Some(inner.wait());
            })
            .into();
        this.inbox().register(request.id()).unwrap();
        match request.into_task() {
            TaskBox::Boxed(task) => task,
            TaskBox::Shared(_) => unreachable!("a callback request has a box of its own"),
        }
    }

    /// `ThreadPool::wait`.
    fn wait(&self) -> Result<usize, WaitError> {
        self.results
            .block(&self.threads, None, Until::NothingPending)
    }

    /// `ThreadPool::poll`: handles what is ready now, as a thread that is
    /// not a waiter.
    fn poll(&self) -> usize {
        if self.inbox().pending() == 0 {
            return 0;
        }
        self.results.handle_ready(&self.threads)
    }

    /// Asserts that nothing is pending and that the callbacks of exactly
    /// the requests `expected` ran, each once.
    fn assert_handled(&self, expected: &[u64]) {
        assert_eq!(self.inbox().pending(), 0);
        let mut handled = self.handled.lock().unwrap().clone();
        handled.sort_unstable();
        assert_eq!(handled, expected, "each callback must run exactly once");
        assert_eq!(self.callbacks.load(StdOrdering::SeqCst), expected.len());
    }
}

/// A thread that calls `wait` on `handle`; every request it waits for runs.
fn spawn_waiter(handle: &Arc<Handle>) -> thread::JoinHandle<usize> {
    let handle = Arc::clone(handle);
    thread::spawn(move || handle.wait().expect("every request ran"))
}

/// A model worker: runs and delivers each task (`worker::execute`), then,
/// if it `leaves`, exits as the pool's last thread does
/// (`Pool::worker_exited`): counted out, then every waiter woken.
fn worker(
    handle: &Arc<Handle>,
    tasks: Vec<BoxedTask>,
    leaves: bool,
    misuse: Misuse,
) -> thread::JoinHandle<()> {
    let handle = Arc::clone(handle);
    thread::spawn(move || {
        for mut task in tasks {
            task.run(&Detached);
            handle.inbox().deliver(Msg::Done(task), || {});
        }
        if leaves {
            if misuse == Misuse::WakeBeforeExit {
                handle.inbox().wake_waiters();
            }
            handle.threads.running.fetch_sub(1, Ordering::SeqCst);
            // The pool's `SeqCst` store of the thread count, then its read
            // of `waiters`: one side of a store-buffering pair, which loom
            // only honours with a fence (see `sync::seq_cst_pair`).
            crate::sync::seq_cst_pair();
            if misuse != Misuse::WakeBeforeExit {
                handle.inbox().wake_waiters();
            }
        }
    })
}

/// (g1) `wait` is woken by the last result (the worker stays, so no exit
/// wakes the waiter): two results, each callback once.
pub(super) fn wait_woken_by_last_result() {
    let handle = Handle::new(None, 0);
    let tasks = vec![handle.put(1), handle.put(2)];
    let worker = worker(&handle, tasks, false, Misuse::None);
    assert_eq!(handle.wait().unwrap(), 2);
    worker.join().unwrap();
    handle.assert_handled(&[1, 2]);
}

/// (g2) Two threads wait on one handle with one request: both return,
/// whichever handles the result and whichever takes the token.
pub(super) fn two_waiters() {
    two_waiters_with(false);
}

/// Two waiters, one request; the worker stays or, if it `leaves`, exits
/// as the pool's last thread right after delivering.
fn two_waiters_with(leaves: bool) {
    let handle = Handle::new(None, 0);
    let task = handle.put(1);
    let other = spawn_waiter(&handle);
    let worker = worker(&handle, vec![task], leaves, Misuse::None);
    let mine = handle.wait().unwrap();
    assert_eq!(mine + other.join().unwrap(), 1);
    worker.join().unwrap();
    handle.assert_handled(&[1]);
}

/// (g3) A waiter and a plain `poll` on one handle while the worker
/// delivers: whoever handles the result, the waiter returns (a token the
/// poll takes is passed on).
pub(super) fn waiter_and_poller() {
    let handle = Handle::new(None, 0);
    let task = handle.put(1);
    let worker = worker(&handle, vec![task], false, Misuse::None);
    let poller = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.poll())
    };
    let waited = handle.wait().unwrap();
    let polled = poller.join().unwrap();
    worker.join().unwrap();
    assert_eq!(waited + polled, 1);
    handle.assert_handled(&[1]);
}

/// (g4) The last thread exits with a request it never ran (still queued):
/// the waiter handles the result in flight first, then hears
/// `NoWorkersAvailable { pending: 1 }`.
pub(super) fn waiter_and_last_thread_exit(misuse: Misuse) {
    let handle = Handle::new(None, 1);
    let ran = handle.put(1);
    let _unrun = handle.put(2);
    let worker = worker(&handle, vec![ran], true, misuse);
    let waited = handle.wait();
    assert!(
        matches!(waited, Err(WaitError::NoWorkersAvailable { pending: 1 })),
        "{waited:?}"
    );
    worker.join().unwrap();
    assert_eq!(*handle.handled.lock().unwrap(), [1]);
}

/// (g5) Two threads wait on one handle while the last worker delivers the
/// last result and exits: both return `Ok`, since the request ran.
pub(super) fn two_waiters_last_thread_exit() {
    two_waiters_with(true);
}

/// (g6) A thread that is not a waiter (a blocked put or a joiner, which
/// handle results while they wait for something else; or a poll) handles
/// the last result while another thread waits: the waiter must still be
/// woken and return `Ok`.
pub(super) fn other_handles_the_last_result() {
    let handle = Handle::new(None, 0);
    let task = handle.put(1);
    let waiter = spawn_waiter(&handle);
    worker(&handle, vec![task], false, Misuse::None)
        .join()
        .unwrap();
    let by_other = handle.results.handle_ready(&handle.threads);
    let by_waiter = waiter.join().unwrap();
    assert_eq!(by_other + by_waiter, 1);
    handle.assert_handled(&[1]);
}

/// (g7) A sweep cancels a request to a handle whose result queue (of 1) is
/// full, as `Pool::sweep` does, while the handle's waiter drains it: the
/// sweep never blocks (it is the driver, which must get past it), and the
/// waiter handles both outcomes and returns.
pub(super) fn sweep_overflows_a_full_result_queue(misuse: Misuse) {
    let handle = Handle::new(Some(1), 0);
    let mut ran = handle.put(1);
    let mut swept = handle.put(2);
    // A worker's result fills the queue.
    ran.run(&Detached);
    handle.inbox().deliver(Msg::Done(ran), || {});
    let waiter = spawn_waiter(&handle);
    swept.cancel();
    match misuse {
        Misuse::KeepWithoutWake => handle.inbox().keep(Some(Msg::Done(swept))),
        _ => handle.inbox().hand_over(Msg::Done(swept)),
    }
    assert_eq!(waiter.join().unwrap(), 2);
    handle.assert_handled(&[1, 2]);
}

/// (g8) A running parent adds a child (counted pending at once, as
/// `Children::spawn` does), then its outcome goes back; a second worker
/// runs the child. A thread waiting from the start must not return before
/// the child's callback ran: the parent, still pending while it runs,
/// covers the child until the child is counted.
pub(super) fn wait_covers_a_child_added_by_a_running_parent(misuse: Misuse) {
    let handle = Handle::new(None, 0);
    let mut parent = handle.put(1);
    let waiter = spawn_waiter(&handle);
    let worker = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || {
            parent.run(&Detached);
            let counted_now = (misuse != Misuse::ChildCountedLate).then(|| handle.put(2));
            handle.inbox().deliver(Msg::Done(parent), || {});
            let mut child = counted_now.unwrap_or_else(|| handle.put(2));
            child.run(&Detached);
            handle.inbox().deliver(Msg::Done(child), || {});
        })
    };
    let waited = waiter.join().unwrap();
    worker.join().unwrap();
    assert_eq!(waited, 2, "wait returned before the child was handled");
    handle.assert_handled(&[1, 2]);
}

/// (g12) A callable whose own request is not pending on the handle (a
/// ticket's: `submit_with_context`) puts a child as a graceful shutdown
/// begins: the shutdown moves the lifecycle (`RequestQueue::advance`),
/// then waits for nothing pending. The put counts the child, then reads
/// the lifecycle, and if the pool is no longer open counts the child out
/// again and refuses it (`Children::hold`). Either the put is refused, or
/// the shutdown's wait handles the child's callback: never a child
/// accepted whose callback nobody runs. No pending parent covers the
/// child here, as one does in (g8).
pub(super) fn shutdown_meets_a_child_of_an_uncounted_parent(misuse: Misuse) {
    let handle = Handle::new(None, 0);
    let queue = Arc::new(RequestQueue::<u64>::new(None));
    let putter = {
        let (handle, queue) = (Arc::clone(&handle), Arc::clone(&queue));
        thread::spawn(move || {
            let open = || queue.lifecycle() == Lifecycle::Open;
            if misuse == Misuse::LifecycleReadFirst && !open() {
                return false;
            }
            let mut child = handle.put(2);
            seq_cst_pair();
            if misuse != Misuse::LifecycleReadFirst && !open() {
                // Refused: counted out, its callbacks dropped uncalled.
                handle.inbox().unregister(child.id());
                return false;
            }
            child.run(&Detached);
            handle.inbox().deliver(Msg::Done(child), || {});
            true
        })
    };
    queue.advance(Lifecycle::Draining);
    let waited = handle.wait().expect("the child ran");
    let accepted = putter.join().unwrap();
    assert_eq!(
        waited,
        usize::from(accepted),
        "the shutdown's wait returned before an accepted child was handled"
    );
    handle.assert_handled(if accepted { &[2] } else { &[] });
}

/// (g9) Two results wait in the queue; the first one's callback waits on
/// the handle, nested in the wait that took both (so it holds the second),
/// while another thread waits too and a worker delivers the last result.
/// Whichever thread takes the run and whichever handles the last result,
/// the nested wait hears that only the held result is left
/// (`HeldByCaller`), and both outer waits return. Before nested waits had
/// a wake-up of their own, the other waiter could keep the token meant
/// for the nested one, and every thread slept.
pub(super) fn nested_wait_beside_another_waiter() {
    nested_wait(true);
}

/// (g10) (g9) with no other waiter: the nested wait, blocked on its own
/// wake-up rather than on the result queue, is woken by the last result's
/// arrival, and handles it.
pub(super) fn nested_wait_woken_by_a_result() {
    nested_wait(false);
}

fn nested_wait(other_waiter: bool) {
    let handle = Handle::new(None, 0);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let mut first = Handle::put_waiting_inside(&handle, 1, || {}, std::sync::Arc::clone(&seen));
    let mut second = handle.put(2);
    let last = handle.put(3);
    for task in [&mut first, &mut second] {
        task.run(&Detached);
    }
    handle.inbox().deliver(Msg::Done(first), || {});
    handle.inbox().deliver(Msg::Done(second), || {});
    let other = other_waiter.then(|| spawn_waiter(&handle));
    let worker = worker(&handle, vec![last], false, Misuse::None);
    handle.wait().expect("every request ran");
    if let Some(other) = other {
        other.join().unwrap();
    }
    worker.join().unwrap();
    handle.assert_handled(&[1, 2, 3]);
    let seen = seen.lock().unwrap().take();
    assert!(
        matches!(seen, Some(Err(WaitError::HeldByCaller { pending: 1 | 2 }))),
        "{seen:?}"
    );
}

/// What a nested wait returned, if one ran.
type Seen = std::sync::Arc<std::sync::Mutex<Option<Result<usize, WaitError>>>>;

/// (g11) Two threads each hold a run of two results whose first callback
/// waits on the handle, nested: the main thread takes the first run; its
/// first callback delivers the second run and starts the other thread,
/// which may take it (or the nested wait does). Whoever takes what, every
/// nested wait returns `HeldByCaller` and both outer waits return: a
/// nested wait counts the results held below every nested wait on the
/// handle (`Inbox::held_nested`), not only below itself. Counting only
/// its own thread's, each waited for the other's for ever.
pub(super) fn nested_waits_on_two_threads() {
    let handle = Handle::new(None, 0);
    let (seen_a, seen_c): (Seen, Seen) = Default::default();
    let mut c = Handle::put_waiting_inside(&handle, 3, || {}, std::sync::Arc::clone(&seen_c));
    let mut d = handle.put(4);
    for task in [&mut c, &mut d] {
        task.run(&Detached);
    }
    let other = std::sync::Arc::new(std::sync::Mutex::new(None));
    let deliver_second_run = {
        let (handle, other) = (Arc::clone(&handle), std::sync::Arc::clone(&other));
        move || {
            handle.inbox().deliver(Msg::Done(c), || {});
            handle.inbox().deliver(Msg::Done(d), || {});
            *other.lock().unwrap() = Some(spawn_waiter(&handle));
        }
    };
    let mut a = Handle::put_waiting_inside(
        &handle,
        1,
        deliver_second_run,
        std::sync::Arc::clone(&seen_a),
    );
    let mut b = handle.put(2);
    for task in [&mut a, &mut b] {
        task.run(&Detached);
    }
    handle.inbox().deliver(Msg::Done(a), || {});
    handle.inbox().deliver(Msg::Done(b), || {});
    handle.wait().expect("every request ran");
    let other = other.lock().unwrap().take().expect("a's callback ran");
    other.join().unwrap();
    handle.assert_handled(&[1, 2, 3, 4]);
    for seen in [seen_a, seen_c] {
        let seen = seen.lock().unwrap().take();
        assert!(
            matches!(seen, Some(Err(WaitError::HeldByCaller { .. }))),
            "{seen:?}"
        );
    }
}

/// (g13) A worker delivers a request's result, then runs an executed
/// request and ends it in place (counted out on the worker by `unregister`,
/// with no message of its own: `Inbox::end_in_place`, as a canceller does;
/// the worker's own `end_in_place` keeps the emptied box a while before
/// it frees it, which no waiter sees), while two threads wait and a third
/// polls. Each wait returns once both have ended, never before the
/// executed one's callable ran, and none hangs for want of a message: the
/// in-place end, the last, wakes the waiters.
pub(super) fn executed_request_ends_in_place_beside_a_result(misuse: Misuse) {
    let handle = Handle::new(None, 0);
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut executed = handle.put_in_place(std::sync::Arc::clone(&ran));
    let mut delivered = handle.put(2);
    let other = spawn_waiter(&handle);
    let poller = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.poll())
    };
    let worker = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || {
            delivered.run(&Detached);
            handle.inbox().deliver(Msg::Done(delivered), || {});
            if misuse == Misuse::EndedBeforeRun {
                handle.inbox().unregister(executed.id());
                executed.run(&Detached);
                return;
            }
            executed.run(&Detached);
            handle.inbox().end_in_place(executed);
        })
    };
    let mine = handle.wait().expect("both ran");
    assert!(
        ran.load(StdOrdering::SeqCst),
        "wait returned before the executed request ran"
    );
    let others = other.join().unwrap();
    assert!(ran.load(StdOrdering::SeqCst));
    let polled = poller.join().unwrap();
    worker.join().unwrap();
    assert_eq!(
        mine + others + polled,
        1,
        "only the delivered result is handled"
    );
    handle.assert_handled(&[2]);
}
