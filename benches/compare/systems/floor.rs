//! The `floor` system: the bare hand-off of `crate::peers::Floor` (boxed
//! closures over one flume channel, results back over another), the least
//! a pool can do, against which the others are judged.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::{runner, Runner, System};
use crate::harness::{check, collect_flume, wait_tasks, warm_up, Probe, Run};
use crate::kinds::{
    idle_cpu, pending_run, shrink_obs, spawn_run, time_round_trips, time_until_tasks, Batch, Gate,
    Pending, PendingJob, Shrink, Spawned,
};
use crate::peers::{self, Thunk};
use crate::procfs;
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Floor;

impl System for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }

    fn idle_shrink(&self, s: Shrink) -> Option<Runner<Obs>> {
        runner(move || idle_shrink(s))
    }

    fn idle_cpu(&self, workers: usize, idle_for: Duration) -> Option<Runner<Obs>> {
        runner(move || idle_cpu(|| peers::Floor::<Thunk>::new(workers, 1), workers, idle_for))
    }

    fn pending(&self, job: PendingJob) -> Option<Runner<Pending>> {
        runner(move || pending(job))
    }

    fn contention(&self, n: u64) -> Option<Runner<Duration>> {
        runner(move || contention(n))
    }

    fn round_trips(&self, n: u64) -> Option<Runner<Obs>> {
        runner(move || round_trips(n))
    }

    fn spawn_workers(&self, n: usize) -> Option<Runner<Spawned>> {
        runner(move || spawn_run(n, || peers::Floor::<Thunk>::new(n, 1), peers::Floor::join))
    }
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = peers::Floor::<Thunk>::new(workers, 1);
    warm_up(workers);
    let probe = Probe::start();
    for i in 0..n {
        pool.submit(Box::new(move || f(i)));
    }
    let sum = collect_flume(pool.results(0), n);
    let el = probe.stop();
    check("floor", n, n, sum, want);
    pool.join();
    el
}

/// The floor of a shrink: `from` bare threads, each blocked on its own
/// channel; all but `to` of the channels are closed at once.
fn idle_shrink(s: Shrink) -> Obs {
    let base = procfs::task_count();
    let (senders, threads): (Vec<_>, Vec<_>) = (0..s.from)
        .map(|_| {
            let (tx, rx) = flume::unbounded::<()>();
            (tx, thread::spawn(move || while rx.recv().is_ok() {}))
        })
        .unzip();
    wait_tasks(base + s.from, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let mut senders = senders;
    let t = Instant::now();
    senders.truncate(s.to);
    let took = time_until_tasks(base + s.to, t);
    let left = procfs::task_count().saturating_sub(base + s.to);
    drop(senders);
    for t in threads {
        t.join().expect("floor thread");
    }
    shrink_obs(took, left)
}

fn pending(job: PendingJob) -> Pending {
    let pool = peers::Floor::<Thunk>::new(job.workers, 1);
    let gate = Gate::new();
    for _ in 0..job.workers {
        pool.submit(Box::new(gate.body()));
    }
    let mut sum = 0;
    let (n, total) = (job.n, job.total());
    let p = pending_run(
        job,
        &gate,
        || {
            for i in 1..=n {
                pool.submit(Box::new(move || square(i)));
            }
        },
        || sum = collect_flume(pool.results(0), total),
    );
    check("floor pending", total, total, sum, job.want());
    pool.join();
    p
}

/// The queue carries each closure with the index of the result channel of
/// the thread that submitted it.
fn contention(n: u64) -> Duration {
    let pool = peers::Floor::<(usize, Thunk)>::new(2, 2);
    warm_up(2);
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for k in 0..2 {
            let (barrier, pool) = (&barrier, &pool);
            s.spawn(move || {
                barrier.wait();
                for i in 0..n {
                    pool.submit((k, Box::new(move || square(i))));
                }
                check("floor W6", n, n, collect_flume(pool.results(k), n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    pool.join();
    el
}

fn round_trips(n: u64) -> Obs {
    let pool = peers::Floor::<Thunk>::new(1, 1);
    warm_up(1);
    let mut sum = 0u64;
    let obs = time_round_trips(n, || {
        for i in 0..n {
            pool.submit(Box::new(move || square(i)));
            sum = sum.wrapping_add(pool.results(0).recv().expect("result"));
        }
    });
    check("floor W7", n, n, sum, sum_of(n, square));
    pool.join();
    obs
}
