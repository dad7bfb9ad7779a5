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
}

/// The pool's threads as the wait protocol sees them: `running` workers,
/// none of this handle's requests stranded.
struct ModelThreads {
    running: AtomicUsize,
}

impl Threads for ModelThreads {
    fn on_worker_thread(&self) -> bool {
        false
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    fn stranded(&self, _inbox: &std::sync::Arc<Inbox>, _pending: usize) -> bool {
        false
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
        Arc::new(Handle {
            results: Results::new(capacity),
            threads: ModelThreads {
                running: AtomicUsize::new(1),
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
            .expect("a waiter with a live worker gets no error")
    }

    fn assert_all_handled(&self, n: usize) {
        assert_eq!(self.inbox().pending(), 0);
        assert_eq!(self.callbacks.load(StdOrdering::SeqCst), n);
    }
}

/// (g6) A thread that is not a waiter (a blocked put, a joiner) handles
/// the last result while another thread waits: the waiter must still be
/// woken and return.
pub(super) fn other_handles_the_last_result(misuse: Misuse) {
    let handle = Handle::new(None);
    let mut task = handle.put(1);
    let waiter = {
        let handle = Arc::clone(&handle);
        thread::spawn(move || handle.wait())
    };
    // The worker: runs the request and delivers it.
    task.run();
    handle.inbox().deliver(Msg::Done(task), || {});
    let caller = match misuse {
        Misuse::OtherActsAsWaiter => Caller::Waiter,
        _ => Caller::Other,
    };
    let by_other = handle.results.handle_ready(&handle.threads, caller);
    let by_waiter = waiter.join().unwrap();
    assert_eq!(by_other + by_waiter, 1);
    handle.assert_all_handled(1);
}

/// (g7) A sweep cancels a request to a handle whose result queue (of 1) is
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
