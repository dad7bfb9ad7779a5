//! The `tokio` system (issue 13): tokio's blocking pool, the thread pool
//! most Rust programs already have. Each request is a `spawn_blocking`
//! closure on the handle of a current-thread runtime whose blocking pool
//! may grow to `workers` threads (`max_blocking_threads`); the closure
//! sends its result on a std `mpsc` channel of the submitting thread, which
//! receives and sums them, as the other peers do. The `JoinHandle` is
//! dropped at once (the task runs detached). A current-thread runtime has
//! no async worker thread of its own, so the only threads are the
//! blocking pool's; nothing drives the runtime, and nothing needs to: a
//! blocking task runs on its pool thread alone.
//!
//! tokio starts blocking threads on demand, so each run first fills the
//! pool (`workers` tasks that meet at a barrier) and lets them go idle:
//! like every other system, it starts timing with all its threads up.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};

use super::{runner, Runner, System};
use crate::harness::{check, collect_mpsc, result_channel, warm_up, Probe, Run};
use crate::kinds::{pending_run, time_round_trips, Batch, Gate, Pending, PendingJob};
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Tokio;

impl System for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
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
}

/// A runtime whose blocking pool has `workers` threads, all started and
/// idle (they stay for tokio's keep-alive, 10 s, far longer than a run).
fn pool(workers: usize) -> Runtime {
    let rt = Builder::new_current_thread()
        .max_blocking_threads(workers)
        .build()
        .expect("tokio runtime");
    let met = Arc::new(Barrier::new(workers + 1));
    for _ in 0..workers {
        let met = Arc::clone(&met);
        drop(rt.spawn_blocking(move || {
            met.wait();
        }));
    }
    met.wait();
    warm_up(workers);
    rt
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let rt = pool(workers);
    let handle = rt.handle();
    let (tx, rx) = result_channel();
    let probe = Probe::start();
    for i in 0..n {
        drop(handle.spawn_blocking(move || {
            let _ = tx.send(f(i));
        }));
    }
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop();
    check("tokio", n, n, sum, want);
    drop(rt);
    el
}

fn pending(job: PendingJob) -> Pending {
    let rt = pool(job.workers);
    let handle = rt.handle();
    let gate = Gate::new();
    let (tx, rx) = result_channel();
    for _ in 0..job.workers {
        let body = gate.body();
        drop(handle.spawn_blocking(move || {
            let _ = tx.send(body());
        }));
    }
    let mut sum = 0;
    let (n, total) = (job.n, job.total());
    let p = pending_run(
        job,
        &gate,
        || {
            for i in 1..=n {
                drop(handle.spawn_blocking(move || {
                    let _ = tx.send(square(i));
                }));
            }
        },
        || sum = collect_mpsc(&rx, total),
    );
    check("tokio pending", total, total, sum, job.want());
    drop(rt);
    p
}

/// One result channel per submitting thread; both spawn on one handle.
fn contention(n: u64) -> Duration {
    let rt = pool(2);
    let handle = rt.handle();
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for _ in 0..2 {
            let barrier = &barrier;
            s.spawn(move || {
                let (tx, rx) = result_channel();
                barrier.wait();
                for i in 0..n {
                    drop(handle.spawn_blocking(move || {
                        let _ = tx.send(square(i));
                    }));
                }
                check("tokio W6", n, n, collect_mpsc(&rx, n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    drop(rt);
    el
}

fn round_trips(n: u64) -> Obs {
    let rt = pool(1);
    let handle = rt.handle();
    let (tx, rx) = result_channel();
    let mut sum = 0u64;
    let obs = time_round_trips(n, || {
        for i in 0..n {
            drop(handle.spawn_blocking(move || {
                let _ = tx.send(square(i));
            }));
            sum = sum.wrapping_add(rx.recv().expect("result"));
        }
    });
    check("tokio W7", n, n, sum, sum_of(n, square));
    drop(rt);
    obs
}
