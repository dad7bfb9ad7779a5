//! The `rayon` system: `rayon::ThreadPool::spawn`, each closure sending its
//! result back on a std `mpsc` channel. A rayon pool has a fixed size, so
//! it declines the shrink runs.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use rayon::{ThreadPool, ThreadPoolBuilder};

use super::{runner, Runner, System};
use crate::harness::{
    check, collect_mpsc, result_channel, warm_up, ParentDone, Probe, Run, WorkerSum,
};
use crate::kinds::{
    idle_cpu, pending_run, spawn_run, time_round_trips, Batch, Fanout, Gate, Pending, PendingJob,
    Spawned,
};
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Rayon;

impl System for Rayon {
    fn name(&self) -> &'static str {
        "rayon"
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || fanout(f))
    }

    fn idle_cpu(&self, workers: usize, idle_for: Duration) -> Option<Runner<Obs>> {
        runner(move || idle_cpu(|| pool(workers), workers, idle_for))
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
        runner(move || spawn_run(n, || pool(n), drop))
    }
}

fn pool(workers: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool")
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = pool(workers);
    warm_up(workers);
    let (tx, rx) = result_channel();
    let probe = Probe::start();
    for i in 0..n {
        pool.spawn(move || {
            let _ = tx.send(f(i));
        });
    }
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop();
    check("rayon", n, n, sum, want);
    el
}

/// `install` + `rayon::scope`: one spawned task spawns the `n` children
/// into the same scope; each child adds its result into the slot of the
/// worker running it (`current_thread_index`), and the submitting thread
/// adds up the slots once the scope has ended. Per-worker sums rather than
/// one shared `AtomicU64`: no locked instruction on a line both cores
/// write, the cheapest honest way to get the results to one place.
fn fanout(f: Fanout) -> Run {
    let pool = pool(f.workers);
    warm_up(f.workers);
    let slots: Vec<WorkerSum> = (0..f.workers).map(|_| WorkerSum::new()).collect();
    let n = f.n;
    let probe = Probe::start();
    let parent = ParentDone::start();
    let done = &parent;
    pool.install(|| {
        rayon::scope(|s| {
            let slots = &slots;
            s.spawn(move |s| {
                for i in 0..n {
                    s.spawn(move |_| {
                        let k = rayon::current_thread_index().expect("on a worker");
                        slots[k].add(square(i));
                    });
                }
                done.mark();
            });
        });
    });
    let (count, sum) = WorkerSum::total(&slots);
    let el = probe.stop().with_parent(&parent);
    check("rayon W8", count, n, sum, f.want);
    el
}

fn pending(job: PendingJob) -> Pending {
    let pool = pool(job.workers);
    let gate = Gate::new();
    let (tx, rx) = result_channel();
    for _ in 0..job.workers {
        let body = gate.body();
        pool.spawn(move || {
            let _ = tx.send(body());
        });
    }
    let mut sum = 0;
    let (n, total) = (job.n, job.total());
    let p = pending_run(
        job,
        &gate,
        || {
            for i in 1..=n {
                pool.spawn(move || {
                    let _ = tx.send(square(i));
                });
            }
        },
        || sum = collect_mpsc(&rx, total),
    );
    check("rayon pending", total, total, sum, job.want());
    p
}

/// One result channel per submitting thread.
fn contention(n: u64) -> Duration {
    let pool = pool(2);
    warm_up(2);
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for _ in 0..2 {
            let (barrier, pool) = (&barrier, &pool);
            s.spawn(move || {
                let (tx, rx) = result_channel();
                barrier.wait();
                for i in 0..n {
                    pool.spawn(move || {
                        let _ = tx.send(square(i));
                    });
                }
                check("rayon W6", n, n, collect_mpsc(&rx, n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

fn round_trips(n: u64) -> Obs {
    let pool = pool(1);
    warm_up(1);
    let (tx, rx) = result_channel();
    let mut sum = 0u64;
    let obs = time_round_trips(n, || {
        for i in 0..n {
            pool.spawn(move || {
                let _ = tx.send(square(i));
            });
            sum = sum.wrapping_add(rx.recv().expect("result"));
        }
    });
    check("rayon W7", n, n, sum, sum_of(n, square));
    obs
}
