//! The `callpool/shared-queue` system (W8 only): work that makes work the
//! way it was done before `WorkRequest::with_context`. The parent captures
//! a clone of an `Arc<ThreadPool>` and calls `put_request` once per child
//! from the worker, so every child goes through the shared queue on its
//! own (one reservation and wake-up check each), where a `Context` hands
//! them over in batches.

use std::sync::Arc;

use callpool::{ThreadPool, WorkRequest};

use super::{runner, Runner, System};
use crate::harness::{warm_up, Acc, ParentDone, Probe, Run, ACCS};
use crate::kinds::Fanout;
use crate::work::square;

pub struct SharedQueue;

impl System for SharedQueue {
    fn name(&self) -> &'static str {
        "callpool/shared-queue"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || fanout(f))
    }
}

/// The parent and its children are put on the same handle (the children
/// from the worker, through the parent's clone of the `Arc`), and `wait` is
/// called on that handle: the children are counted pending before the
/// parent returns, so `wait` cannot return before them.
fn fanout(f: Fanout) -> Run {
    let pool = Arc::new(ThreadPool::new(f.workers));
    warm_up(f.workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    let parent = ParentDone::start();
    let done = parent.clone();
    let handle = Arc::clone(&pool);
    pool.put_request(WorkRequest::new(
        move |n: u64| {
            for i in 0..n {
                handle
                    .put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                    .expect("put child");
            }
            done.mark();
        },
        f.n,
    ))
    .expect("put parent");
    pool.wait().expect("wait");
    let el = probe.stop().with_parent(&parent);
    acc.check("callpool/shared-queue W8", f.n, f.want);
    // The parent's clone went with its callable; if it is somehow still
    // alive, dropping ours is enough (the last handle ends the pool).
    match Arc::try_unwrap(pool) {
        Ok(pool) => pool.shutdown().expect("shutdown"),
        Err(pool) => drop(pool),
    }
    el
}
