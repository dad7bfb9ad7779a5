//! The `callpool/make_requests` system: the same pool and callbacks as
//! `callpool`, with the requests built by `make_requests` (its returned
//! `Vec<WorkRequest>` is part of what is timed and counted). The loop of
//! puts alone is timed too (W1's `put ns/req` column), and the wait after
//! it (`wait ns/req`).

use std::time::Instant;

use callpool::{make_requests, ThreadPool, WorkRequest};

use super::{runner, Runner, System};
use crate::harness::{warm_up, Acc, Probe, Run, ACCS};
use crate::kinds::{pending_run, Batch, Gate, Pending, PendingJob};
use crate::work::{square, with_work};

pub struct MakeRequests;

impl System for MakeRequests {
    fn name(&self) -> &'static str {
        "callpool/make_requests"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }

    fn pending(&self, job: PendingJob) -> Option<Runner<Pending>> {
        runner(move || pending(job))
    }
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    put_made(b, f, "callpool/make_requests", |pool, reqs| {
        for r in reqs {
            pool.put_request(r).expect("put");
        }
    })
}

/// W1 through `make_requests`: the requests made (timed), put by `put`
/// (timed on its own as well), then `wait`. Shared with
/// `callpool/put_batch`, which puts the same requests another way.
pub fn put_made<F>(
    b: Batch,
    f: F,
    name: &str,
    put: impl FnOnce(&ThreadPool, Vec<WorkRequest>),
) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    let reqs = make_requests(
        f,
        0..n,
        move |_, v| acc.add(v),
        |id, e| panic!("request {id} failed: {e}"),
    );
    let put_start = Instant::now();
    put(&pool, reqs);
    let put_time = put_start.elapsed();
    let paused = b.settle.unwrap_or_default();
    if !paused.is_zero() {
        std::thread::sleep(paused);
    }
    let wait_start = Instant::now();
    pool.wait().expect("wait");
    let wait_time = wait_start.elapsed();
    let el = probe.stop().with_put(put_time).with_wait(wait_time, paused);
    acc.check(name, n, want);
    pool.shutdown().expect("shutdown");
    el
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
            let reqs = make_requests(
                square,
                1..=n,
                move |_, v| acc.add(v),
                |id, e| panic!("request {id} failed: {e}"),
            );
            for r in reqs {
                pool.put_request(r).expect("put");
            }
        },
        || {
            pool.wait().expect("wait");
        },
    );
    acc.check("callpool/make_requests pending", job.total(), job.want());
    pool.shutdown().expect("shutdown");
    p
}
