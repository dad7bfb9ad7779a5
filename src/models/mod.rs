//! Model checks of callpool's protocols as they ship, under loom or shuttle:
//! the request queue's (`src/pool/queue.rs`, over the real [`RequestQueue`]
//! with plain numbers as requests) and a handle's inbox and wait protocol
//! (`src/inbox/`, the real `Inbox` and `Results` with real request boxes).
//! This file holds the overview and the [`Queue`] trait the queue scenarios
//! are written against; each other file has one job:
//!
//! * `fixture.rs`: the queue scenarios' scaffolding ([`Scenario`]: a queue,
//!   model workers, their progress; the exactly-once check);
//! * `queue.rs`: the request queue's scenarios, (a)-(k) and the shuttle
//!   storms;
//! * `replica.rs`: [`Replica`], the queue's protocol written plainly with
//!   one seeded [`Bug`];
//! * `inbox.rs`: the wait protocol's scenarios (g1)-(g12), with the
//!   callers' misuses they can seed;
//! * `ticket.rs`: a ticket's start-or-cancel race, (t1)-(t3);
//! * `nursery.rs`: a running callable's held child against a worker going
//!   to sleep, (n1), with either half of the pair seeded away, and against
//!   a cancel, (n2), with the cancel's two looks seeded in the wrong order;
//! * `fifo.rs`: the request FIFO's ring and backlog, (q1)-(q3);
//! * `scale.rs`: an autoscaling pool's retirement racing a put, (s1)-(s2),
//!   with a seeded decision that skips its second look;
//! * `collector.rs`: a collector's added requests, (c1): a request added
//!   from a worker ends before its parent, and the collector neither ends
//!   nor drops its outcome, with the id's push and the put seeded in the
//!   wrong order; (cs1): the same with streams, an added stream emitting
//!   around its streaming parent, with a piece looked at before the added
//!   ids are counted seeded;
//! * `help.rs`: a helping wait's take of one unstarted request, (w1)-(w2),
//!   racing a free worker and a `cancel(id)`, and the pool's close, with a
//!   take outside the queue's exclusion and a lifecycle read before the
//!   take seeded;
//! * `threads.rs`: the thread counts a waiter trusts before it reports
//!   its request stranded, (r1)-(r2): a worker that starts, runs the
//!   request and leaves as the waiter looks, with an exit that does not
//!   raise the count of exits seeded (the mutation round's R7); and a pool
//!   that can start no thread;
//! * `under_loom.rs`, `under_shuttle.rs`: the test list per checker;
//! * `seeded.rs`: loom's seeded self-checks, each in a child process.
//!
//! How to run them (each cfg rebuilds everything: give it its own target
//! directory):
//!
//! * Under loom (`RUSTFLAGS="--cfg loom"`): small scenarios, every
//!   interleaving up to a preemption bound (3 unless `LOOM_MAX_PREEMPTIONS`
//!   says otherwise).
//!   `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test --release --lib models`
//! * Under shuttle (`RUSTFLAGS="--cfg shuttle"`): the small scenarios again
//!   and bigger ones (many requests, more threads, resize storms), random
//!   and PCT schedules.
//!   `RUSTFLAGS="--cfg shuttle" cargo test --release --lib models`
//!
//! How each model proves it can fail: a model that passes proves little
//! unless it would have failed on the bug it is there for. Each queue
//! scenario is written once, generic over [`Queue`], and also runs against
//! [`Replica`] with one seeded bug, where the checker must report a
//! deadlock or the scenario's assertion. The wait scenarios run the shipped
//! code only; their seeded checks are callers that break one of the
//! protocol's rules (`inbox::Misuse`: a non-waiter handling results as a
//! waiter, an overflow without its wake token, a last worker waking the
//! waiters before it is counted out), which the checker must catch. The
//! seeded bugs live here, in test-only code: the library itself has no bug
//! switches. The thread counts' scenarios (`threads.rs`) run over the
//! shipped `ThreadCount` and, seeded, over a few-line copy with one bug
//! (an exit that does not raise the count of exits), as the queue's run
//! over [`Replica`]. Loom's self-checks run in a child process that must
//! print a marker (`seeded.rs`); shuttle's use `#[should_panic]`.
//!
//! `docs/reliability.md` lists what each model covers.

mod collector;
mod fifo;
mod fixture;
mod help;
mod inbox;
mod lend;
mod nursery;
mod queue;
mod replica;
mod scale;
#[cfg(loom)]
mod seeded;
mod threads;
mod ticket;
#[cfg(loom)]
mod under_loom;
#[cfg(all(shuttle, not(loom)))]
mod under_shuttle;

use std::collections::{BTreeMap, VecDeque};

use crate::pool::handshake::{Dismissal, WorkerFlags};
use crate::pool::pace::Pace;
use crate::pool::queue::{Admit, Blocked, Lifecycle, Push, RequestQueue};
use crate::sync::{Condvar, Mutex, MutexGuard, Ordering};

#[cfg(loom)]
use loom::{
    sync::{atomic::AtomicUsize, Arc},
    thread,
};
#[cfg(all(shuttle, not(loom)))]
use shuttle::{
    sync::{atomic::AtomicUsize, Arc},
    thread,
};

/// The queue operations the models use, so one scenario runs against the
/// real queue and against a seeded broken copy.
trait Queue: Send + Sync + 'static {
    fn push(&self, job: u64) -> Push<u64>;
    /// A batch put past any capacity, as a worker hands off the requests a
    /// callable added (`RequestQueue::push_many`).
    fn push_many(&self, jobs: Vec<u64>) -> Push<Vec<u64>>;
    /// A worker's hand-off of a running request's children: admitted
    /// while the pool drains too (`Admit::UntilClosed`).
    fn push_children(&self, jobs: Vec<u64>) -> Push<Vec<u64>>;
    /// A blocking put that never hands results back (`stuck` is false);
    /// `threads_left` is the live thread count the pool would report.
    fn push_blocking(&self, job: u64, threads_left: &dyn Fn() -> usize)
        -> Result<(), Blocked<u64>>;
    /// `just_ran`: the worker just ran a request (the real queue then spins
    /// briefly before sleeping, outside loom), as `worker::run` passes it.
    fn take(&self, dismissed: &WorkerFlags, just_ran: bool) -> Option<u64>;
    fn dismiss(&self, flags: &[&WorkerFlags]);
    fn advance(&self, to: Lifecycle) -> Lifecycle;
    fn wake_putters(&self);
    fn take_all(&self) -> Vec<u64>;
    /// Takes out the queued requests for which `mine` holds (`extract`).
    fn take_own(&self, mine: &dyn Fn(&u64) -> bool) -> Vec<u64>;
    /// Takes out the first queued request for which `mine` holds (a
    /// helping wait, `worker::help`).
    fn take_first(&self, mine: &dyn Fn(&u64) -> bool) -> Option<u64>;
    /// How many queued requests `mine` holds for (`Pool::stranded`).
    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize;
    fn len(&self) -> usize;
}

impl Queue for RequestQueue<u64> {
    fn push(&self, job: u64) -> Push<u64> {
        RequestQueue::push(self, job)
    }
    fn push_many(&self, jobs: Vec<u64>) -> Push<Vec<u64>> {
        let mut jobs = jobs;
        RequestQueue::push_many(self, &mut jobs, Admit::WhileOpen)
    }
    fn push_children(&self, jobs: Vec<u64>) -> Push<Vec<u64>> {
        let mut jobs = jobs;
        RequestQueue::push_many(self, &mut jobs, Admit::UntilClosed)
    }
    fn push_blocking(
        &self,
        job: u64,
        threads_left: &dyn Fn() -> usize,
    ) -> Result<(), Blocked<u64>> {
        // Every scenario that blocks a put keeps the pool open meanwhile.
        RequestQueue::push_blocking(self, job, |_| false, threads_left, None)
            .map(|queued| assert!(matches!(queued, Push::Queued)))
    }
    fn take(&self, dismissed: &WorkerFlags, just_ran: bool) -> Option<u64> {
        let mut pace = Pace::new();
        if just_ran {
            pace.ran();
        }
        RequestQueue::take(self, dismissed, &mut pace, || {}, None)
    }
    fn dismiss(&self, flags: &[&WorkerFlags]) {
        RequestQueue::dismiss(self, flags.iter().copied())
    }
    fn advance(&self, to: Lifecycle) -> Lifecycle {
        RequestQueue::advance(self, to)
    }
    fn wake_putters(&self) {
        RequestQueue::wake_putters(self)
    }
    fn take_all(&self) -> Vec<u64> {
        RequestQueue::take_all(self).into()
    }
    fn take_own(&self, mine: &dyn Fn(&u64) -> bool) -> Vec<u64> {
        RequestQueue::take_own(self, mine)
    }
    fn take_first(&self, mine: &dyn Fn(&u64) -> bool) -> Option<u64> {
        RequestQueue::take_first(self, mine)
    }
    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize {
        RequestQueue::count(self, mine)
    }
    fn len(&self) -> usize {
        RequestQueue::len(self)
    }
}

use fixture::*;
use queue::*;
use replica::*;
