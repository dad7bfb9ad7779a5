//! An autoscaling pool's two decisions: after a put, whether to start one
//! more worker; for an idle worker whose keep-alive passed, whether it may
//! leave. Both read the request queue and a mirror of the live-worker
//! count; the registry (`pool/registry.rs`) holds the lock and the threads
//! and carries the decisions out through [`Roster`]. Kept apart from the
//! threads so that the models (`src/models/scale.rs`) run these decisions
//! as they ship. `docs/design.md`, "Autoscaling".

use std::time::Duration;

use crate::pool::queue::{RequestQueue, Retirement};
use crate::sync::{fence, AtomicUsize, Ordering};

/// An autoscaling pool's bounds (`Builder::min_workers`, `max_workers`,
/// `keep_alive`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// How long an idle worker above `min` waits for work before it leaves;
    /// `None`: it stays.
    pub(crate) keep_alive: Option<Duration>,
}

/// The live workers as an autoscaling decision sees and changes them:
/// every method is called with the registry's lock held.
pub(crate) trait Roster {
    /// Live workers now.
    fn live(&self) -> usize;
    /// Whether the pool still takes requests.
    fn open(&self) -> bool;
    /// Takes the worker that asks to retire out of the live ones and
    /// dismisses it; `false` if it is not live any more.
    fn retire_me(&mut self) -> bool;
    /// Starts one more live worker (a failure is the roster's to report).
    fn start_one(&mut self);
}

/// An autoscaling pool's bounds and its live-worker mirror.
pub(crate) struct Autoscale {
    bounds: Scale,
    /// Mirror of the roster's live count, written under the registry's lock
    /// after every change, read without it by puts (`may_need_worker`).
    live: AtomicUsize,
}

impl Autoscale {
    pub(crate) fn new(bounds: Scale) -> Autoscale {
        Autoscale {
            bounds,
            live: AtomicUsize::new(0),
        }
    }

    /// Publishes the live count; called under the registry's lock after
    /// anything that may have changed it.
    pub(crate) fn publish(&self, live: usize) {
        // SeqCst: the write of the store-buffering pair in `retire_idle`.
        self.live.store(live, Ordering::SeqCst);
    }

    /// After a put queued a request (and fenced, `push_counted`): whether
    /// the registry should be asked to grow. Lock-free looks only: no
    /// sleeper can take the request, and the pool is below its maximum.
    pub(crate) fn may_need_worker<J>(&self, queue: &RequestQueue<J>) -> bool {
        // SeqCst: the read of the pair in `retire_idle`.
        let live = self.live.load(Ordering::SeqCst);
        queue.none_to_wake() && live < self.bounds.max
    }

    /// Under the registry's lock, after `may_need_worker`: starts up to
    /// `wanted` more workers (one per request just queued) while the pool
    /// is open and below its maximum.
    pub(crate) fn grow(&self, roster: &mut impl Roster, wanted: usize) {
        let mut started = 0;
        while started < wanted && roster.live() < self.bounds.max && roster.open() {
            let live = roster.live();
            roster.start_one();
            if roster.live() == live {
                // Could not start one (logged): trying again now would
                // fail the same way.
                break;
            }
            started += 1;
        }
        if started > 0 {
            self.publish(roster.live());
        }
    }

    /// Whether the pool may start one more worker: below its maximum (a
    /// running callable's first child held in its slot asks, so that it
    /// is queued and a worker started for it rather than held).
    pub(crate) fn may_grow(&self) -> bool {
        // SeqCst: the read of the pair in `retire_idle` (the child's
        // `Nursery::hold` is the write before it).
        self.live.load(Ordering::SeqCst) < self.bounds.max
    }

    /// Whether the pool has more live workers than its minimum: asked by
    /// an idle worker that sleeps with no keep-alive (`Retirement::Stays`).
    pub(crate) fn above_min(&self) -> bool {
        // Relaxed: read under the queue's lock, which whoever raised the
        // count takes after publishing it (`RequestQueue::rouse_unarmed`).
        self.live.load(Ordering::Relaxed) > self.bounds.min
    }

    /// Under the registry's lock, for an idle worker whose keep-alive
    /// passed: takes it out of the pool if the pool is open, above its
    /// minimum, and nothing waits for a worker: nothing is queued, and
    /// `held()` (children that running callables hold in their slots,
    /// which this worker would queue before it sleeps) says no.
    ///
    /// No request is stranded by a retirement: a put that queued before
    /// the first look at the FIFO keeps the worker. One that queued later
    /// fences after its push and then reads the mirror
    /// (`may_need_worker`), while this publishes the smaller count, fences,
    /// and looks at the FIFO again: a store-buffering pair with a fence on
    /// each side, so at least one of the two sees the other. The put then
    /// grows the pool (under this same lock, after us), or we start a
    /// replacement here. A child held as this worker retires is the same
    /// pair: its worker raises `held` and then reads the mirror
    /// (`may_grow`), and hands it off (growing the pool) if there is room;
    /// this looks at `held` again after its fence.
    pub(crate) fn retire_idle<J>(
        &self,
        roster: &mut impl Roster,
        queue: &RequestQueue<J>,
        held: impl Fn() -> bool,
    ) -> Retirement {
        if !roster.open() || roster.live() <= self.bounds.min {
            return Retirement::Stays;
        }
        let waiting = || !queue.fifo_is_empty() || held();
        if waiting() {
            return Retirement::NotNow;
        }
        if !roster.retire_me() {
            // Not live: dismissed already, it leaves at its next look.
            return Retirement::Stays;
        }
        self.publish(roster.live());
        // SeqCst fence: the pair's, between our write of the mirror and our
        // second look at the FIFO and the slots (the put fences between its
        // push and its read of the mirror).
        fence(Ordering::SeqCst);
        if waiting() && roster.live() < self.bounds.max {
            roster.start_one();
            self.publish(roster.live());
        }
        Retirement::Retired
    }
}
