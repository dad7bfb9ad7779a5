//! The dismissal handshake between a worker and whoever dismisses it: one
//! word per worker, so that "dismissed" and "taking a request" order
//! themselves by read-modify-writes of the same location.

use crate::sync::{yield_now, AtomicUsize, Ordering};

/// A worker's dismissal flag and its "taking now" mark, in one word so that
/// `dismiss` and `take` order themselves by read-modify-writes of the same
/// location: either the worker's take starts first (and `dismiss` waits for
/// it to end: that request counts as taken before the dismissal), or the
/// worker sees the flag.
pub(crate) struct WorkerFlags(AtomicUsize);

const DISMISSED: usize = 0b001;
const TAKING: usize = 0b010;
/// Set with `DISMISSED` by a dismissal made while the pool drains (its
/// `shutdown`): the worker runs what is queued before it leaves.
const TO_DRAIN: usize = 0b100;

/// Whether, and how, a worker was dismissed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dismissal {
    No,
    /// Dismissed while the pool was open (by the user, a resize or
    /// autoscaling): it takes no other request, even if the pool starts
    /// draining before it looks again.
    Leave,
    /// Dismissed by a graceful shutdown: it drains the queue first.
    Drain,
}

fn dismissal_of(word: usize) -> Dismissal {
    match (word & DISMISSED != 0, word & TO_DRAIN != 0) {
        (false, _) => Dismissal::No,
        (true, false) => Dismissal::Leave,
        (true, true) => Dismissal::Drain,
    }
}

impl WorkerFlags {
    pub(crate) fn new() -> WorkerFlags {
        WorkerFlags(AtomicUsize::new(0))
    }

    pub(crate) fn is_dismissed(&self) -> bool {
        // SeqCst: read where a worker decides whether to sleep (see `sleep`).
        self.0.load(Ordering::SeqCst) & DISMISSED != 0
    }

    /// How the worker was dismissed, if it was (for the models' replica).
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn dismissal(&self) -> Dismissal {
        // SeqCst: as `is_dismissed`.
        dismissal_of(self.0.load(Ordering::SeqCst))
    }

    /// Starts a take; returns whether (and how) the worker was dismissed
    /// before it.
    pub(crate) fn begin_take(&self) -> Dismissal {
        // SeqCst: one of the two read-modify-writes of the handshake.
        dismissal_of(self.0.fetch_or(TAKING, Ordering::SeqCst))
    }

    pub(crate) fn end_take(&self) {
        // Release: `dismiss` reads the cleared mark with SeqCst and must then
        // see the pop that came before it.
        self.0.fetch_and(!TAKING, Ordering::Release);
    }

    /// Whether the worker was dismissed: a hint for a spinning worker (its
    /// own take is never under way while it spins).
    pub(crate) fn dismissed_hint(&self) -> bool {
        // Relaxed: a hint; `take` decides with its own reads.
        self.0.load(Ordering::Relaxed) & DISMISSED != 0
    }

    /// Sets the flag (`to_drain`: as a graceful shutdown dismisses);
    /// returns whether a take is under way.
    pub(crate) fn dismiss(&self, to_drain: bool) -> bool {
        let bits = if to_drain {
            DISMISSED | TO_DRAIN
        } else {
            DISMISSED
        };
        // SeqCst: the other read-modify-write of the handshake.
        self.0.fetch_or(bits, Ordering::SeqCst) & TAKING != 0
    }

    /// For the worker itself, dismissed before a drain began, which then
    /// queued children (of its own running callable, or from other
    /// workers' slots before it sleeps) as the pool drains: it drains too
    /// (see `worker::children_pushed`). A worker that was not dismissed drains
    /// anyway; its flag is left alone, so a later dismissal says how.
    pub(crate) fn drain_if_dismissed(&self) {
        // SeqCst: as `is_dismissed`. Only this worker writes `TO_DRAIN`
        // after `DISMISSED`, which never clears: the test and the set
        // cannot be split by another write that matters.
        if self.is_dismissed() {
            self.0.fetch_or(TO_DRAIN, Ordering::SeqCst);
        }
    }

    /// Waits until the worker's current take (if any) has ended. The wait is
    /// a pop long: the ring is lock-free, and the FIFO's refill and backlog
    /// locks it may take are short and never held while waiting for the
    /// workers' lock, which the caller may hold.
    pub(crate) fn wait_take_ended(&self) {
        while self.0.load(Ordering::SeqCst) & TAKING != 0 {
            yield_now();
        }
    }
}
