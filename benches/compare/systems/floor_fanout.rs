//! The floors of W8 (work that makes work): bare threads on one job
//! channel, where the parent job, run by one of them, sends its `n`
//! children into that same channel. Two ways a child's result can come
//! back to the submitting thread, which sums them:
//!
//! - `Value`: the thread that ran the child frees its box and sends the
//!   bare `u64`, as the W1 floor does (the `floor` and `floor/crossbeam`
//!   rows of W8);
//! - `InBox`: the result goes back inside the child's own box, which the
//!   submitting thread reads and frees (the `floor/crossbeam+box` row).
//!   That is the least a pool must do that hands each request back, with
//!   its callback, to the thread that polls, as callpool does: the box is
//!   made on a worker and freed on another thread.

use std::thread;

use super::{runner, Runner, System};
use crate::harness::{check, warm_up, ParentDone, Probe, Run};
use crate::kinds::Fanout;
use crate::peers::{Chan, Crossbeam};
use crate::work::square;

/// A child: its input, and its result once run.
pub struct Child {
    i: u64,
    out: u64,
}

/// What the job channel carries.
enum Job {
    /// Send children `0..n` into the job channel, then say so (boxed, so
    /// that a job stays the 16 bytes of a tag and a pointer).
    Parent(Box<(u64, ParentDone)>),
    Child(Box<Child>),
    /// Leave (one per thread, after every result is in).
    Stop,
}

/// How a child's result travels back.
pub trait Back: 'static {
    type Msg: Send + 'static;
    fn pack(child: Box<Child>) -> Self::Msg;
    fn value(msg: Self::Msg) -> u64;
}

/// The bare result; the box is freed where the child ran.
pub struct Value;

impl Back for Value {
    type Msg = u64;
    #[inline]
    fn pack(child: Box<Child>) -> u64 {
        child.out
    }
    #[inline]
    fn value(msg: u64) -> u64 {
        msg
    }
}

/// The box itself; the submitting thread frees it.
pub struct InBox;

impl Back for InBox {
    type Msg = Box<Child>;
    #[inline]
    fn pack(child: Box<Child>) -> Box<Child> {
        child
    }
    #[inline]
    fn value(msg: Box<Child>) -> u64 {
        msg.out
    }
}

/// One W8 run of the floor on channel `C`, results back as `B` says.
pub fn fanout<C: Chan, B: Back>(f: Fanout, name: &str) -> Run {
    let (jobs, queue) = C::unbounded::<Job>();
    let (results, back) = C::unbounded::<B::Msg>();
    let threads: Vec<_> = (0..f.workers)
        .map(|_| {
            let (jobs, queue, results) = (jobs.clone(), queue.clone(), results.clone());
            thread::spawn(move || {
                while let Some(job) = C::recv(&queue) {
                    match job {
                        Job::Parent(parent) => {
                            let (n, done) = *parent;
                            for i in 0..n {
                                C::send(&jobs, Job::Child(Box::new(Child { i, out: 0 })));
                            }
                            done.mark();
                        }
                        Job::Child(mut child) => {
                            child.out = square(child.i);
                            C::send(&results, B::pack(child));
                        }
                        Job::Stop => break,
                    }
                }
            })
        })
        .collect();
    warm_up(f.workers);
    let probe = Probe::start();
    let parent = ParentDone::start();
    C::send(&jobs, Job::Parent(Box::new((f.n, parent.clone()))));
    let mut sum = 0u64;
    for _ in 0..f.n {
        let msg = C::recv(&back).expect("result channel closed");
        sum = sum.wrapping_add(B::value(msg));
    }
    let el = probe.stop().with_parent(&parent);
    check(&format!("{name} W8"), f.n, f.n, sum, f.want);
    for _ in 0..f.workers {
        C::send(&jobs, Job::Stop);
    }
    for t in threads {
        t.join().expect("floor thread");
    }
    el
}

/// `floor/crossbeam+box`: the crossbeam floor of W8 with each result sent
/// back in its child's box (W8 only).
pub struct BoxBack;

impl BoxBack {
    pub const NAME: &'static str = "floor/crossbeam+box";
}

impl System for BoxBack {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn fanout(&self, f: Fanout) -> Option<Runner<Run>> {
        runner(move || fanout::<Crossbeam, InBox>(f, Self::NAME))
    }
}
