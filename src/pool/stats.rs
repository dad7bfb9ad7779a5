//! What the workers have done, for [`ThreadPool::stats`](crate::ThreadPool::stats):
//! one tally per worker, written only by that worker (so a count costs a
//! plain load and store, no locked instruction), summed on demand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::request::task::Ended;
use crate::sync::CachePadded;

/// A snapshot of what a pool is doing and has done
/// ([`ThreadPool::stats`](crate::ThreadPool::stats)). The counts cover the
/// pool's whole life and every handle; the gauges are read one after the
/// other, so under load they need not add up exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Stats {
    /// Live workers (dismissed ones not included).
    pub workers: usize,
    /// Worker threads still running, dismissed ones finishing included.
    pub threads: usize,
    /// Threads not asleep: running a request, or just started, or
    /// looking for one a moment before they sleep (so a pool that has just
    /// finished its work may count its workers busy for a little while;
    /// [`running`](Self::running) counts only the first).
    pub busy: usize,
    /// Threads asleep, waiting for work.
    pub idle: usize,
    /// Threads running a request now: what rust-threadpool's
    /// `active_count` counts. Unlike [`busy`](Self::busy), a worker looking
    /// for work, or just started, is not counted, so once `wait` has
    /// returned (and each ticket's own `wait`: `wait` does not wait for
    /// tickets) and nothing else was put, this is 0 (but for a moment
    /// after a [`join`](crate::Context::join) that ran its second half
    /// itself: a worker may still take that half's emptied job). A worker
    /// that runs requests inside a wait of its own request's (a scope, a
    /// ticket's `wait`) counts once.
    pub running: usize,
    /// Requests queued, not yet taken by a worker (as `queued()`: children
    /// held in their workers' slots are not counted; a join's half in the
    /// queue is).
    pub queued: usize,
    /// Requests that ran and returned a value.
    pub completed: u64,
    /// Requests that ran and returned an error.
    pub failed: u64,
    /// Requests whose callable panicked.
    pub panicked: u64,
    /// Requests ended before they started: cancelled (by a sweep,
    /// `cancel`, a ticket) or expired. Requests handed back to the caller
    /// unrun (by `shutdown_now`, in a refused put's error) are in none of
    /// these counts: they did not end in the pool, and may be put again.
    ///
    /// A request cancelled through its ticket ([`Ticket::cancel`], or by
    /// dropping an `as_completed` or `imap` iterator) stays in the queue,
    /// as [`queued`](Self::queued) says, and is counted here once a worker
    /// or a sweep reaches it: until then, with every worker busy, this
    /// count lags behind. (Counted at the cancel, it would need a
    /// reference to the pool in every ticket, a larger allocation per
    /// request.)
    ///
    /// [`Ticket::cancel`]: crate::Ticket::cancel
    pub cancelled: u64,
}

/// One worker's counts, on a cache line of its own.
#[derive(Default)]
pub(crate) struct Tally {
    succeeded: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    /// Taken but not run: expired, or cancelled through its ticket.
    unstarted: AtomicU64,
    /// Jobs taken to run whose end is counted: more than the four counts
    /// above while the worker runs a request (more than one while a
    /// request waits and the worker runs others meanwhile).
    taken: AtomicU64,
}

/// Sums of tallies.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) panicked: u64,
    pub(crate) unstarted: u64,
    /// Workers inside a request now.
    pub(crate) running: usize,
}

impl Tally {
    /// Counts one request this worker ended. Only the owning worker calls
    /// it, so a load and a store suffice.
    #[inline]
    pub(crate) fn count(&self, how: Ended) {
        let counter = match how {
            Ended::Succeeded => &self.succeeded,
            Ended::Failed => &self.failed,
            Ended::Panicked => &self.panicked,
            Ended::Unstarted => &self.unstarted,
        };
        // Relaxed: a statistic with one writer; readers want its value
        // eventually, ordered with nothing else.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// This worker took a job to run: until its end is counted, it is
    /// running it. Only the owning worker calls it.
    #[inline]
    pub(crate) fn take(&self) {
        // Relaxed: see `count`.
        self.taken
            .store(self.taken.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// A job this worker took, the half of a join, has done its piece: its
    /// end is never counted (a piece of its request, not a request).
    pub(crate) fn withdraw_take(&self) {
        // Relaxed: see `count`.
        self.taken
            .store(self.taken.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    }

    fn read(&self) -> Totals {
        // Relaxed: see `count`. A gauge: a job that ends or starts while
        // these are read may be read either way; one that ended before
        // the reader heard of its end (through its outcome, a `wait`) is
        // read as ended.
        let succeeded = self.succeeded.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let panicked = self.panicked.load(Ordering::Relaxed);
        let unstarted = self.unstarted.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        Totals {
            succeeded,
            failed,
            panicked,
            unstarted,
            running: usize::from(taken > succeeded + failed + panicked + unstarted),
        }
    }
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, other: Totals) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.panicked += other.panicked;
        self.unstarted += other.unstarted;
        self.running += other.running;
    }
}

/// The tallies of a pool's running workers, and the sums of those that
/// have exited.
#[derive(Default)]
pub(crate) struct Tallies {
    state: Mutex<TalliesState>,
}

#[derive(Default)]
struct TalliesState {
    live: Vec<Arc<CachePadded<Tally>>>,
    retired: Totals,
}

impl Tallies {
    fn state(&self) -> MutexGuard<'_, TalliesState> {
        // Only pushes, removals and additions under it: never torn.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's tally.
    pub(crate) fn join(&self) -> Arc<CachePadded<Tally>> {
        let tally = Arc::new(CachePadded::new(Tally::default()));
        self.state().live.push(Arc::clone(&tally));
        tally
    }

    /// An exiting worker's tally goes into the retired sums.
    pub(crate) fn retire(&self, tally: &Arc<CachePadded<Tally>>) {
        let mut state = self.state();
        if let Some(at) = state.live.iter().position(|t| Arc::ptr_eq(t, tally)) {
            state.live.swap_remove(at);
            // An exited worker runs nothing, however it left.
            state.retired += Totals {
                running: 0,
                ..tally.read()
            };
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let state = self.state();
        let mut totals = state.retired;
        for tally in &state.live {
            totals += tally.read();
        }
        totals
    }
}
