//! The `threadpool` system: rust-threadpool's `execute`, each closure
//! sending its result back on a std `mpsc` channel.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use threadpool::ThreadPool;

use super::{runner, Runner, System};
use crate::harness::{
    check, collect_mpsc, result_channel, sleep_until, wait_tasks, warm_up, ParentDone, Probe, Run,
};
use crate::kinds::{
    idle_cpu, pending_run, shrink_obs, spawn_run, time_round_trips, time_until_tasks, Batch,
    Fanout, Gate, Pending, PendingJob, Shrink, Spawned,
};
use crate::procfs;
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Threadpool;

impl System for Threadpool {
    fn name(&self) -> &'static str {
        "threadpool"
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || fanout(f))
    }

    fn idle_shrink(&self, s: Shrink) -> Option<Runner<Obs>> {
        runner(move || idle_shrink(s))
    }

    fn busy_shrink(&self, s: Shrink, ends_in: Duration) -> Option<Runner<Obs>> {
        runner(move || busy_shrink(s, ends_in))
    }

    fn idle_cpu(&self, workers: usize, idle_for: Duration) -> Option<Runner<Obs>> {
        runner(move || idle_cpu(|| ThreadPool::new(workers), workers, idle_for))
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
        runner(move || spawn_run(n, || ThreadPool::new(n), drop))
    }
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let (tx, rx) = result_channel();
    let probe = Probe::start();
    for i in 0..n {
        pool.execute(move || {
            let _ = tx.send(f(i));
        });
    }
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop();
    check("threadpool", n, n, sum, want);
    pool.join();
    el
}

/// The ThreadDistributor pattern: a task holding a clone of the pool calls
/// `execute` `n` times from its worker; each child sends its result on the
/// channel, and the submitting thread receives and sums all `n`.
fn fanout(f: Fanout) -> Run {
    let pool = ThreadPool::new(f.workers);
    warm_up(f.workers);
    let (tx, rx) = result_channel();
    let n = f.n;
    let probe = Probe::start();
    let parent = ParentDone::start();
    let done = parent.clone();
    let inner = pool.clone();
    pool.execute(move || {
        for i in 0..n {
            inner.execute(move || {
                let _ = tx.send(square(i));
            });
        }
        done.mark();
    });
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop().with_parent(&parent);
    check("threadpool W8", n, n, sum, f.want);
    pool.join();
    el
}

/// `set_num_threads(to)`: the surplus workers leave once they next wake.
fn idle_shrink(s: Shrink) -> Obs {
    let base = procfs::task_count();
    let mut pool = ThreadPool::new(s.from);
    wait_tasks(base + s.from, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    pool.set_num_threads(s.to);
    let took = time_until_tasks(base + s.to, t);
    let left = procfs::task_count().saturating_sub(base + s.to);
    drop(pool);
    shrink_obs(took, left)
}

fn busy_shrink(s: Shrink, ends_in: Duration) -> Obs {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    STARTED.store(0, Relaxed);
    let base = procfs::task_count();
    let mut pool = ThreadPool::new(s.from);
    wait_tasks(base + s.from, Duration::from_secs(2));
    let (tx, rx) = flume::unbounded::<Instant>();
    let (rtx, rrx) = result_channel();
    for i in 0..s.from as u64 {
        let rx = rx.clone();
        pool.execute(move || {
            STARTED.fetch_add(1, Relaxed);
            sleep_until(rx.recv().expect("end"));
            let _ = rtx.send(i);
        });
    }
    while STARTED.load(Relaxed) < s.from {
        thread::sleep(Duration::from_micros(100));
    }
    let end = Instant::now() + ends_in;
    for _ in 0..s.from {
        tx.send(end).expect("send end");
    }
    pool.set_num_threads(s.to);
    let took = time_until_tasks(base + s.to, end).map(|_| end.elapsed());
    let left = procfs::task_count().saturating_sub(base + s.to);
    let from = s.from as u64;
    let sum = collect_mpsc(&rrx, from);
    check(
        "threadpool busy shrink",
        from,
        from,
        sum,
        sum_of(from, |i| i),
    );
    drop(pool);
    shrink_obs(took, left)
}

fn pending(job: PendingJob) -> Pending {
    let pool = ThreadPool::new(job.workers);
    let gate = Gate::new();
    let (tx, rx) = result_channel();
    for _ in 0..job.workers {
        let body = gate.body();
        pool.execute(move || {
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
                pool.execute(move || {
                    let _ = tx.send(square(i));
                });
            }
        },
        || sum = collect_mpsc(&rx, total),
    );
    check("threadpool pending", total, total, sum, job.want());
    pool.join();
    p
}

/// One result channel per submitting thread.
fn contention(n: u64) -> Duration {
    let pool = ThreadPool::new(2);
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
                    pool.execute(move || {
                        let _ = tx.send(square(i));
                    });
                }
                check("threadpool W6", n, n, collect_mpsc(&rx, n), want);
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
    let pool = ThreadPool::new(1);
    warm_up(1);
    let (tx, rx) = result_channel();
    let mut sum = 0u64;
    let obs = time_round_trips(n, || {
        for i in 0..n {
            pool.execute(move || {
                let _ = tx.send(square(i));
            });
            sum = sum.wrapping_add(rx.recv().expect("result"));
        }
    });
    check("threadpool W7", n, n, sum, sum_of(n, square));
    pool.join();
    obs
}
