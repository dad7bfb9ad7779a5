//! The `floor` and `floor/crossbeam` systems: the bare hand-off of
//! `crate::peers::Floor` (boxed closures over one channel, results back
//! over another), the least a pool can do, against which the others are
//! judged. `floor` runs on flume, `floor/crossbeam` on crossbeam-channel
//! (issue 13); everything else about them is the same code.

use std::marker::PhantomData;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::{floor_fanout, runner, Runner, System};
use crate::harness::{check, wait_tasks, warm_up, Probe, Run};
use crate::kinds::{
    idle_cpu, pending_run, shrink_obs, spawn_run, time_round_trips, time_until_tasks, Batch,
    Fanout, Gate, Pending, PendingJob, Shrink, Spawned,
};
use crate::peers::{self, collect, Chan, Crossbeam, Flume, Thunk};
use crate::procfs;
use crate::report::{Obs, FLOORS};
use crate::work::{square, sum_of, with_work};

/// The floor on channel `C`.
pub struct FloorOn<C>(PhantomData<fn() -> C>);

/// `floor`: on flume.
pub static FLUME: FloorOn<Flume> = FloorOn(PhantomData);

/// `floor/crossbeam`: on crossbeam-channel.
pub static CROSSBEAM: FloorOn<Crossbeam> = FloorOn(PhantomData);

/// The row name of the floor on each channel.
pub trait Named: Chan {
    const NAME: &'static str;
}

impl Named for Flume {
    const NAME: &'static str = FLOORS[0];
}

impl Named for Crossbeam {
    const NAME: &'static str = FLOORS[1];
}

impl<C: Named> System for FloorOn<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch::<C, _>(b, f)))
    }

    fn idle_shrink(&self, s: Shrink) -> Option<Runner<Obs>> {
        runner(move || idle_shrink::<C>(s))
    }

    fn idle_cpu(&self, workers: usize, idle_for: Duration) -> Option<Runner<Obs>> {
        runner(move || {
            idle_cpu(
                || peers::Floor::<Thunk, C>::new(workers, 1),
                workers,
                idle_for,
            )
        })
    }

    fn pending(&self, job: PendingJob) -> Option<Runner<Pending>> {
        runner(move || pending::<C>(job))
    }

    fn contention(&self, n: u64) -> Option<Runner<Duration>> {
        runner(move || contention::<C>(n))
    }

    fn round_trips(&self, n: u64) -> Option<Runner<Obs>> {
        runner(move || round_trips::<C>(n))
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || floor_fanout::fanout::<C, floor_fanout::Value>(f, C::NAME))
    }

    fn spawn_workers(&self, n: usize) -> Option<Runner<Spawned>> {
        runner(move || {
            spawn_run(
                n,
                || peers::Floor::<Thunk, C>::new(n, 1),
                peers::Floor::join,
            )
        })
    }
}

fn batch<C: Named, F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = peers::Floor::<Thunk, C>::new(workers, 1);
    warm_up(workers);
    let probe = Probe::start();
    for i in 0..n {
        pool.submit(Box::new(move || f(i)));
    }
    let sum = collect::<C>(pool.results(0), n);
    let el = probe.stop();
    check(C::NAME, n, n, sum, want);
    pool.join();
    el
}

/// The floor of a shrink: `from` bare threads, each blocked on its own
/// channel; all but `to` of the channels are closed at once.
fn idle_shrink<C: Named>(s: Shrink) -> Obs {
    let base = procfs::task_count();
    let (senders, threads): (Vec<_>, Vec<_>) = (0..s.from)
        .map(|_| {
            let (tx, rx) = C::unbounded::<()>();
            (tx, thread::spawn(move || while C::recv(&rx).is_some() {}))
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

fn pending<C: Named>(job: PendingJob) -> Pending {
    let pool = peers::Floor::<Thunk, C>::new(job.workers, 1);
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
        || sum = collect::<C>(pool.results(0), total),
    );
    check(
        &format!("{} pending", C::NAME),
        total,
        total,
        sum,
        job.want(),
    );
    pool.join();
    p
}

/// The queue carries each closure with the index of the result channel of
/// the thread that submitted it.
fn contention<C: Named>(n: u64) -> Duration {
    let pool = peers::Floor::<(usize, Thunk), C>::new(2, 2);
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
                let sum = collect::<C>(pool.results(k), n);
                check(&format!("{} W6", C::NAME), n, n, sum, want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    pool.join();
    el
}

fn round_trips<C: Named>(n: u64) -> Obs {
    let pool = peers::Floor::<Thunk, C>::new(1, 1);
    warm_up(1);
    let mut sum = 0u64;
    let obs = time_round_trips(n, || {
        for i in 0..n {
            pool.submit(Box::new(move || square(i)));
            sum = sum.wrapping_add(C::recv(pool.results(0)).expect("result"));
        }
    });
    check(&format!("{} W7", C::NAME), n, n, sum, sum_of(n, square));
    pool.join();
    obs
}
