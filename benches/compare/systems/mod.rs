//! The systems under test: the `System` trait a pool implements to take
//! part, and the registry of them, in the order their rows appear.
//!
//! A system answers each kind of run (`crate::kinds`) with a runner, one
//! call of which is one timed run of one round; a kind it cannot run (a
//! pool that cannot shrink, say) it declines by keeping the default `None`,
//! and it then has no row in that workload's table. The runner is built
//! once per table and called through one dynamic call per round; everything
//! inside it, above all each per-request loop, is the system's own
//! monomorphic code.

use std::time::Duration;

use crate::harness::Run;
use crate::kinds::{Batch, Fanout, Pending, PendingJob, Shrink, Spawned};
use crate::report::Obs;

mod as_completed;
mod callpool;
mod floor;
mod make_requests;
mod map;
mod rayon;
mod submit;
mod threadpool;

// W8 only: callpool's old way of adding work from a worker, its way with
// no outcome to hear, and the floors of work that makes work.
mod execute;
mod floor_fanout;
mod shared_queue;

// Issue 13: tokio's blocking pool, and callpool's batch put (W1 only).
mod put_batch;
mod tokio_blocking;

/// One timed run per call.
pub type Runner<T> = Box<dyn FnMut() -> T>;

/// Boxes `run` as a runner (saves each system spelling out the cast).
pub fn runner<T>(run: impl FnMut() -> T + 'static) -> Option<Runner<T>> {
    Some(Box::new(run))
}

/// Every system, in the order of the table rows. A new system is a file in
/// this folder and one line here.
pub static ALL: &[&dyn System] = &[
    &callpool::Callpool,
    &make_requests::MakeRequests,
    &submit::Submit,
    &as_completed::AsCompleted,
    &map::Map,
    &threadpool::Threadpool,
    &rayon::Rayon,
    &floor::FLUME,
    &floor::CROSSBEAM,
    &tokio_blocking::Tokio,
    &put_batch::PutBatch,
    &shared_queue::SharedQueue,
    &execute::Execute,
    &floor_fanout::BoxBack,
];

pub trait System: Sync {
    /// The row name, and what `--system=NAME` selects.
    fn name(&self) -> &'static str;

    /// Whether this is another way to submit to a pool that has its own
    /// row (a second API, not a second pool). Workloads that measure the
    /// workers rather than the submitting side leave variants out.
    fn is_variant(&self) -> bool {
        false
    }

    /// Put `n` requests one at a time, then collect every result (W1-W3);
    /// the `Run` covers the puts and the collection.
    fn batch(&self, _b: Batch) -> Option<Runner<Run>> {
        None
    }

    /// Shrink an idle pool of `from` workers to `to` (W4); the observation
    /// comes from `kinds::shrink_obs`.
    fn idle_shrink(&self, _s: Shrink) -> Option<Runner<Obs>> {
        None
    }

    /// The same with every worker inside a request that ends `ends_in`
    /// after the shrink; time from that end (W4).
    fn busy_shrink(&self, _s: Shrink, _ends_in: Duration) -> Option<Runner<Obs>> {
        None
    }

    /// A pool of `workers` idle threads for `idle_for`, through
    /// `kinds::idle_cpu` (W4).
    fn idle_cpu(&self, _workers: usize, _idle_for: Duration) -> Option<Runner<Obs>> {
        None
    }

    /// Queue requests behind blocked workers, then drain them, through
    /// `kinds::pending_run` (W5, scale-pending).
    fn pending(&self, _job: PendingJob) -> Option<Runner<Pending>> {
        None
    }

    /// 2 submitting threads, each putting `n` trivial requests and taking
    /// back its own results, on 2 workers (W6); wall time of the whole.
    fn contention(&self, _n: u64) -> Option<Runner<Duration>> {
        None
    }

    /// `n` round trips of one trivial request on 1 worker, timed by
    /// `kinds::time_round_trips` (W7).
    fn round_trips(&self, _n: u64) -> Option<Runner<Obs>> {
        None
    }

    /// One task run by the pool adds `n` trivial tasks, whose results are
    /// summed (W8); the `Run` covers everything until the last result is in.
    fn fanout(&self, _f: Fanout) -> Option<Runner<Run>> {
        None
    }

    /// Create `n` workers, then dismiss them, through `kinds::spawn_run`
    /// (scale-workers).
    fn spawn_workers(&self, _n: usize) -> Option<Runner<Spawned>> {
        None
    }
}
