//! The `callpool/map` system: the same pool as `callpool`, all requests put
//! by one `pool.map(0..n, f)` (every input at once, outcomes in input
//! order); the outcomes are counted and summed on the submitting thread.

use callpool::ThreadPool;

use super::{runner, Runner, System};
use crate::harness::{check, warm_up, Probe, Run};
use crate::kinds::Batch;
use crate::work::with_work;

pub struct Map;

impl System for Map {
    fn name(&self) -> &'static str {
        "callpool/map"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }
}

/// `map` returns only when every request has ended; the sum over the
/// returned `Vec` is part of the timed region, as the peers' `recv` loop
/// is of theirs. An outcome that is an error is not counted.
fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let probe = Probe::start();
    let (mut count, mut sum) = (0u64, 0u64);
    for v in pool.map(0..n, f).into_iter().flatten() {
        count += 1;
        sum = sum.wrapping_add(v);
    }
    let el = probe.stop();
    check("callpool/map", count, n, sum, want);
    pool.shutdown().expect("shutdown");
    el
}
