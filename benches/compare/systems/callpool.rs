//! The `callpool` system: `WorkRequest::new(f, i).on_result(cb)` put one at
//! a time, then `wait()`; the callback adds into an `Acc` on the polling
//! thread.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use callpool::{Context, ThreadPool, WorkRequest};

use super::{runner, Runner, System};
use crate::harness::{micros, sleep_until, wait_tasks, warm_up, Acc, ParentDone, Probe, Run, ACCS};
use crate::kinds::{
    idle_cpu, pending_run, shrink_obs, spawn_run, time_round_trips, time_until, time_until_tasks,
    Batch, Fanout, Gate, Pending, PendingJob, Shrink, Spawned,
};
use crate::procfs;
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Callpool;

impl System for Callpool {
    fn name(&self) -> &'static str {
        "callpool"
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
        runner(move || spawn_workers(n))
    }
}

/// `f` is a function item, so each request's closure captures only its
/// argument and the callback only the `&'static Acc`.
fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    for i in 0..n {
        pool.put_request(WorkRequest::new(f, i).on_result(move |_, v| acc.add(v)))
            .expect("put");
    }
    pool.wait().expect("wait");
    let el = probe.stop();
    acc.check("callpool", n, want);
    pool.shutdown().expect("shutdown");
    el
}

/// One parent made with `WorkRequest::with_context` puts the `n` children
/// through its `Context` (queued in batches by the worker); `wait` on the
/// handle it was put on returns after the parent and every child.
fn fanout(f: Fanout) -> Run {
    let pool = ThreadPool::new(f.workers);
    warm_up(f.workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    let parent = ParentDone::start();
    let done = parent.clone();
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, n: u64| {
            for i in 0..n {
                cx.put(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                    .expect("put child");
            }
            done.mark();
        },
        f.n,
    ))
    .expect("put parent");
    pool.wait().expect("wait");
    let el = probe.stop().with_parent(&parent);
    acc.check("callpool W8", f.n, f.want);
    pool.shutdown().expect("shutdown");
    el
}

fn idle_shrink(s: Shrink) -> Obs {
    let base = procfs::task_count();
    let pool = ThreadPool::new(s.from);
    wait_tasks(base + s.from, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    pool.dismiss_workers(s.from - s.to);
    let left_loop = time_until(t, || pool.threads() <= s.to);
    let took = time_until_tasks(base + s.to, t);
    let left = procfs::task_count().saturating_sub(base + s.to);
    pool.join_all_dismissed_workers();
    pool.shutdown().expect("shutdown");
    shrink_obs(took, left).with("threads() = 2 after us", micros(left_loop))
}

/// Each worker sleeps, inside a request, until the instant `ends_in` after
/// the shrink; the value is the time from that instant until the surplus
/// threads are gone.
fn busy_shrink(s: Shrink, ends_in: Duration) -> Obs {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    STARTED.store(0, Relaxed);
    let base = procfs::task_count();
    let pool = ThreadPool::new(s.from);
    wait_tasks(base + s.from, Duration::from_secs(2));
    let (tx, rx) = flume::unbounded::<Instant>();
    let acc: &'static Acc = ACCS[0].reset();
    for i in 0..s.from as u64 {
        let rx = rx.clone();
        pool.put_request(
            WorkRequest::new(
                move |i: u64| {
                    STARTED.fetch_add(1, Relaxed);
                    sleep_until(rx.recv().expect("end"));
                    i
                },
                i,
            )
            .on_result(move |_, v| acc.add(v)),
        )
        .expect("put");
    }
    while STARTED.load(Relaxed) < s.from {
        thread::sleep(Duration::from_micros(100));
    }
    let end = Instant::now() + ends_in;
    for _ in 0..s.from {
        tx.send(end).expect("send end");
    }
    pool.dismiss_workers(s.from - s.to);
    let left_loop = time_until(end, || pool.threads() <= s.to).map(|_| end.elapsed());
    let took = time_until_tasks(base + s.to, end).map(|_| end.elapsed());
    let left = procfs::task_count().saturating_sub(base + s.to);
    pool.wait().expect("wait");
    let from = s.from as u64;
    acc.check("callpool busy shrink", from, sum_of(from, |i| i));
    pool.join_all_dismissed_workers();
    pool.shutdown().expect("shutdown");
    shrink_obs(took, left).with("threads() = 2 after us", micros(left_loop))
}

fn pending(job: PendingJob) -> Pending {
    let pool = ThreadPool::new(job.workers);
    let gate = Gate::new();
    let acc: &'static Acc = ACCS[0].reset();
    for _ in 0..job.workers {
        let body = gate.body();
        pool.put_request(WorkRequest::new(move |()| body(), ()).on_result(move |_, v| acc.add(v)))
            .expect("put");
    }
    let n = job.n;
    let p = pending_run(
        job,
        &gate,
        || {
            for i in 1..=n {
                pool.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                    .expect("put");
            }
        },
        || {
            pool.wait().expect("wait");
        },
    );
    acc.check("callpool pending", job.total(), job.want());
    pool.shutdown().expect("shutdown");
    p
}

/// One handle per submitting thread (`new_handle`), so each thread runs
/// only its own callbacks, into its own `Acc`.
fn contention(n: u64) -> Duration {
    let pool = ThreadPool::new(2);
    warm_up(2);
    let handles = [pool.new_handle(), pool.new_handle()];
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for (k, h) in handles.iter().enumerate() {
            let barrier = &barrier;
            s.spawn(move || {
                let acc: &'static Acc = ACCS[k].reset();
                barrier.wait();
                for i in 0..n {
                    h.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                        .expect("put");
                }
                h.wait().expect("wait");
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    for acc in &ACCS {
        acc.check("callpool W6", n, want);
    }
    drop(handles);
    pool.shutdown().expect("shutdown");
    el
}

fn round_trips(n: u64) -> Obs {
    let pool = ThreadPool::new(1);
    warm_up(1);
    let acc: &'static Acc = ACCS[0].reset();
    let obs = time_round_trips(n, || {
        for i in 0..n {
            pool.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                .expect("put");
            pool.wait().expect("wait");
        }
    });
    acc.check("callpool W7", n, sum_of(n, square));
    pool.shutdown().expect("shutdown");
    obs
}

/// `create_workers(n)` on an empty pool, then `dismiss_workers(n)` and
/// `join_all_dismissed_workers()`.
fn spawn_workers(n: usize) -> Spawned {
    let pool = ThreadPool::new(0);
    let s = spawn_run(
        n,
        || pool.create_workers(n).expect("create"),
        |()| {
            pool.dismiss_workers(n);
            pool.join_all_dismissed_workers();
        },
    );
    pool.shutdown().expect("shutdown");
    s
}
