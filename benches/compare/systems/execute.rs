//! The `callpool/execute` system (W8 only): work that makes work with no
//! outcome to hear, the way rayon's W8 is written. The parent, put with
//! `ThreadPool::execute_with_context`, adds each child with
//! `Context::execute_with_context`; each child adds its square into the
//! sum of the worker running it (`Context::worker_index`), and `wait` on
//! the handle covers them all. Nothing travels back to the polling thread.

use callpool::{Context, ThreadPool};

use super::{runner, Runner, System};
use crate::harness::{check, warm_up, ParentDone, Probe, Run, WorkerSum};
use crate::kinds::Fanout;
use crate::work::square;

pub struct Execute;

impl System for Execute {
    fn name(&self) -> &'static str {
        "callpool/execute"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || fanout(f))
    }
}

/// One per worker, up to the most workers W8 runs with; static, so a child
/// captures nothing but its number.
static SUMS: [WorkerSum; 8] = [const { WorkerSum::new() }; 8];

fn fanout(f: Fanout) -> Run {
    assert!(f.workers <= SUMS.len(), "W8 with more workers than sums");
    let pool = ThreadPool::new(f.workers);
    warm_up(f.workers);
    let probe = Probe::start();
    let parent = ParentDone::start();
    let done = parent.clone();
    let n = f.n;
    pool.execute_with_context(move |cx: &Context<'_>| {
        for i in 0..n {
            cx.execute_with_context(move |cx| {
                let k = cx.worker_index().expect("on a worker");
                SUMS[k].add(square(i));
            })
            .expect("put child");
        }
        done.mark();
    })
    .expect("put parent");
    pool.wait().expect("wait");
    let el = probe.stop().with_parent(&parent);
    let (count, sum) = WorkerSum::total(&SUMS);
    check("callpool/execute W8", count, n, sum, f.want);
    pool.shutdown().expect("shutdown");
    el
}
