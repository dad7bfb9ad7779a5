//! Models of a handle's inbox and wait protocol as it ships: the real
//! [`Inbox`] and [`Results`] on the checker's primitives (`crate::sync`,
//! including the model result channel), with real request boxes.
//!
//! Each scenario takes a [`Misuse`]: `None` is what the library's callers
//! do and must pass; the others are a caller breaking the protocol's rule
//! in the way a past or plausible bug did, and must be caught (see the
//! seeded self-checks in `mod.rs`). The library has no bug switches.

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering as StdOrdering;

use crate::inbox::receive::{Results, Threads, Until};
use crate::inbox::{Caller, Inbox, Msg};
use crate::request::task::TaskBox;
use crate::request::WorkRequest;
use crate::sync::{AtomicUsize, Ordering};

#[cfg(loom)]
use loom::{sync::Arc, thread};
#[cfg(all(shuttle, not(loom)))]
use shuttle::{sync::Arc, thread};

/// How a scenario's caller breaks the protocol, if at all.
// The misuses are seeded checks, which only loom runs.
#[cfg_attr(not(loom), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Misuse {
    /// None: the library's own callers.
    None,
    /// A thread that is not a waiter handles results as one (the blocked
    /// put's bug: it swallowed a waiter's wake token).
    OtherActsAsWaiter,
    /// A sweep puts an outcome in the overflow without the wake token that
    /// `hand_over` sends after it.
    KeepWithoutWake,
    /// The last worker wakes the waiters before it is counted out, where
    /// the pool counts it out first (`Pool::worker_exited`).
    WakeBeforeExit,
}

/// The pool's threads as the wait protocol sees them: `running` workers,
/// and `unrun` requests of the handle that no worker will take (they stay
/// queued, as in a pool whose last worker left).
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

/// One handle, its threads, and a count of callbacks run.
struct Handle {
    results: Results,
    threads: ModelThreads,
    callbacks: std::sync::Arc<StdAtomicUsize>,
}

impl Handle {
    fn new(capacity: Option<usize>) -> Arc<Handle> {
        Handle::with_unrun(capacity, 0)
    }

    fn with_unrun(capacity: Option<usize>, unrun: usize) -> Arc<Handle> {
        Arc::new(Handle {
            results: Results::new(capacity),
            threads: ModelThreads {
                running: AtomicUsize::new(1),
                unrun,
            },
            callbacks: std::sync::Arc::new(StdAtomicUsize::new(0)),
        })
    }

    fn inbox(&self) -> &std::sync::Arc<Inbox> {
        self.results.inbox()
    }

    /// A request registered as pending, as a put does, in its real box; its
    /// callbacks (result or error) count themselves.
    fn put(&self, n: u64) -> TaskBox {
        let (ok, err) = (
            std::sync::Arc::clone(&self.callbacks),
            std::sync::Arc::clone(&self.callbacks),
        );
        let request: WorkRequest = WorkRequest::new(|x: u64| x, n)
            .on_result(move |_, _| {
                ok.fetch_add(1, StdOrdering::SeqCst);
            })
            .on_error(move |_, _| {
                err.fetch_add(1, StdOrdering::SeqCst);
            })
            .into();
        self.inbox().register(request.id()).unwrap();
        request.into_task()
    }

    fn wait(&self) -> usize {
        self.results
            .block(&self.threads, None, Until::NothingPending)
            .expect("a waiter gets no error when every request ran")
    }

    fn assert_all_handled(&self, n: usize) {
        assert_eq!(self.inbox().pending(), 0);
        assert_eq!(self.callbacks.load(StdOrdering::SeqCst), n);
    }
}

/// The worker: runs and delivers each task, then, if it `leaves`,
/// exits as the pool's last thread does: counted out, then every
/// waiter woken.
fn worker(
    handle: &Arc<Handle>,
    tasks: Vec<TaskBox>,
    leaves: bool,
    misuse: Misuse,
) -> thread::JoinHandle<()> {
    let handle = Arc::clone(handle);
    thread::spawn(move || {
        for mut task in tasks {
            task.run();
            handle.inbox().deliver(Msg::Done(task), || {});
        }
        if leaves {
            if misuse == Misuse::WakeBeforeExit {
                handle.inbox().wake_waiters(Caller::Other);
            }
            handle.threads.running.fetch_sub(1, Ordering::SeqCst);
            // The pool's `SeqCst` store of the thread count, then its read
            // of `waiters`: one side of a store-buffering pair, which loom
            // only honours with a fence (see `sync::seq_cst_pair`).
            crate::sync::seq_cst_pair();
            if misuse != Misuse::WakeBeforeExit {
                handle.inbox().wake_waiters(Caller::Other);
            }
        }
    })
}

/// (g1) `wait` is woken by the last result (the worker stays, so no exit
/// wakes the waiter), and the callback runs once.
pub(super) fn wait_woken_by_last_result() {
    let handle = Handle::new(None);
    let worker = worker(&handle, vec![handle.put(1)], false, Misuse::None);
    assert_eq!(handle.wait(), 1);
    worker.join().unwrap();
    handle.assert_all_handled(1);
}

/// (g2) Two threads wait on one handle with one request: both return,
/// whichever handles the result and whichever takes the token.
pub(super) fn two_waiters() {
    two_waiters_with(false);
}

/// Two waiters, one request; the worker stays or, if it `leaves`, exits
/// as the pool's last thread right after delivering.
fn two_waiters_with(leaves: bool) {
    let handle = Handle::new(None);
    let task = handle.put(1);
    let other = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.wait())
    };
    let worker = worker(&handle, vec![task], leaves, Misuse::None);
    let mine = handle.wait();
    assert_eq!(mine + other.join().unwrap(), 1);
    worker.join().unwrap();
    handle.assert_all_handled(1);
}

/// (g4) The last thread exits with a request it never ran: the waiter
/// handles the result in flight first, then hears `NoWorkersAvailable`.
pub(super) fn waiter_and_last_thread_exit(misuse: Misuse) {
    let handle = Handle::with_unrun(None, 1);
    let ran = handle.put(1);
    let _unrun = handle.put(2);
    let worker = worker(&handle, vec![ran], true, misuse);
    let waited = handle
        .results
        .block(&handle.threads, None, Until::NothingPending);
    assert!(
        matches!(
            waited,
            Err(crate::error::WaitError::NoWorkersAvailable { pending: 1 })
        ),
        "{waited:?}"
    );
    worker.join().unwrap();
    assert_eq!(handle.callbacks.load(StdOrdering::SeqCst), 1);
}

/// (g5) Two threads wait on one handle while the last worker delivers the
/// last result and exits: both return `Ok`, since the request ran.
pub(super) fn two_waiters_last_thread_exit() {
    two_waiters_with(true);
}

/// (g3) A thread that is not a waiter (a plain poll, a blocked put, a
/// joiner) handles the last result while another thread waits: the waiter
/// must still be woken and return.
pub(super) fn other_handles_the_last_result(misuse: Misuse) {
    let handle = Handle::new(None);
    let task = handle.put(1);
    let waiter = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.wait())
    };
    worker(&handle, vec![task], false, Misuse::None)
        .join()
        .unwrap();
    let caller = match misuse {
        Misuse::OtherActsAsWaiter => Caller::Waiter,
        _ => Caller::Other,
    };
    let by_other = handle.results.handle_ready(&handle.threads, caller);
    let by_waiter = waiter.join().unwrap();
    assert_eq!(by_other + by_waiter, 1);
    handle.assert_all_handled(1);
}

/// (g6) A sweep cancels a request to a handle whose result queue (of 1) is
/// full, while the handle's waiter drains it: the sweep never blocks, and
/// the waiter handles both outcomes and returns.
pub(super) fn sweep_overflows_a_full_result_queue(misuse: Misuse) {
    let handle = Handle::new(Some(1));
    let mut ran = handle.put(1);
    let mut swept = handle.put(2);
    // The worker's result fills the queue.
    ran.run();
    handle.inbox().deliver(Msg::Done(ran), || {});
    let waiter = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.wait())
    };
    swept.cancel();
    match misuse {
        Misuse::KeepWithoutWake => handle.inbox().keep(Some(Msg::Done(swept))),
        _ => handle.inbox().hand_over(Msg::Done(swept)),
    }
    assert_eq!(waiter.join().unwrap(), 2);
    handle.assert_all_handled(2);
}
