//! The `callpool/as_completed` system: the same pool as `callpool`, every
//! request put by `pool.as_completed(0..n, LIMIT, f)`, at most `LIMIT` in
//! flight; the outcomes are counted and summed on the submitting thread as
//! the iterator hands them back.

use callpool::ThreadPool;

use super::{runner, Runner, System};
use crate::harness::{check, warm_up, Probe, Run};
use crate::kinds::Batch;
use crate::work::with_work;

/// Requests in flight at once: fixed, so that with 1, 2 or 4 workers the
/// submitting thread can refill well before the workers run dry (with a
/// limit of 2 x workers, it would wait on a completion every request or
/// two, and the figure would be one of wake-ups more than of the API).
pub const LIMIT: usize = 64;

pub struct AsCompleted;

impl System for AsCompleted {
    fn name(&self) -> &'static str {
        "callpool/as_completed"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }
}

/// An outcome that is an error is not counted, so the check fails.
fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let probe = Probe::start();
    let (mut count, mut sum) = (0u64, 0u64);
    for (_input, outcome) in pool.as_completed(0..n, LIMIT, move |i: &u64| f(*i)) {
        if let Ok(v) = outcome {
            count += 1;
            sum = sum.wrapping_add(v);
        }
    }
    let el = probe.stop();
    check("callpool/as_completed", count, n, sum, want);
    pool.shutdown().expect("shutdown");
    el
}
