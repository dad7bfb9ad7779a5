//! A helping wait (`pool::worker::help`, `docs/design.md`, "A scope or
//! collector on a worker of its own pool"), over the real [`RequestQueue`]
//! and [`Nursery`] with plain numbers as requests: the wait's take is the
//! shipped [`take_first_unstarted`] (the first request of its own in the
//! slots, else in the queue: `Nursery::take_first`, then
//! `RequestQueue::take_first`). (w1) it races a free worker's take and a
//! `cancel(id)` (`Pool::take_unstarted` for one id, as
//! `ThreadPool::cancel` does); (w2) it races the pool's close and its
//! closer's sweep, through the shipped [`take_to_help`], which also says
//! whether to run or cancel what it took. (The queue's own `take_first`
//! against a worker and a sweep is (h2)-(h3) in `queue.rs`.)
//!
//! What is a replica, and why: the closer's sweep is `Pool::take_swept`'s
//! take (the slots, then the queue), and the cancel
//! `Pool::take_unstarted`'s (the same order), written out here: a `Pool`
//! starts `std` worker threads, which the checkers cannot drive.
//!
//! Each scenario has one seeded misuse: (w1) [`Take::LookThenTake`], a
//! wait that looks for its request and runs it before it takes it out,
//! outside the queue's exclusion; (w2) [`Read::BeforeTake`], a wait that
//! reads the lifecycle before its take instead of after it.

use std::cell::Cell;

use super::*;
use crate::pool::nursery::Nursery;
use crate::pool::{take_first_unstarted, take_to_help, Helped};

/// How the helping wait takes its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Take {
    /// [`take_first_unstarted`], as shipped.
    Shipped,
    /// Looks for request 1 (`count`), runs it, then takes it out.
    LookThenTake,
}

/// (w1) Requests 1 and 2 of the waiting callable's collector are queued;
/// the wait helps (takes one of them, the first it meets, and runs it),
/// while a free worker takes what it finds and another thread cancels
/// request 1. Each request ends exactly once (run by the wait, run by the
/// worker, or cancelled), and the wait runs at most one.
pub(super) fn help_races_a_worker_and_a_cancel(take: Take) {
    let mut s = Scenario::new(RequestQueue::<u64>::new(None));
    let nursery = Arc::new(Nursery::<u64>::default());
    s.put([1, 2]);
    s.spawn_workers(1);
    let canceller = {
        let (queue, nursery) = (Arc::clone(&s.queue), Arc::clone(&nursery));
        // `Pool::take_unstarted` for one id: the slots, then the queue.
        thread::spawn(move || {
            let mine = |job: &u64| *job == 1;
            let mut found = nursery.take_own(mine);
            found.extend(queue.take_own(mine));
            found
        })
    };
    let helped: Vec<u64> = match take {
        Take::Shipped => take_first_unstarted(&nursery, &s.queue, |_| true)
            .into_iter()
            .collect(),
        Take::LookThenTake => {
            if s.queue.count(|job| *job == 1) > 0 {
                // Run as if taken; taken out only afterwards.
                let _ = s.queue.take_own(|job| *job == 1);
                vec![1]
            } else {
                Vec::new()
            }
        }
    };
    assert!(helped.len() <= 1, "a helping wait took more than one");
    let cancelled = canceller.join().unwrap();
    s.wait_taken(2 - helped.len() - cancelled.len());
    s.dismiss_all();
    let mut ended = s.join_all();
    ended.extend([helped, cancelled]);
    // First: a request run twice leaves another one queued, which the
    // checks below would report under another name.
    assert_exactly_once([1, 2], &ended);
    assert_eq!(s.queue.len(), 0);
    assert!(!nursery.any());
}

/// Where the waiting callable's request waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// Queued.
    Queue,
    /// Held in a running parent's slot (`Children::spawn`).
    Slot,
}

/// When the helping wait reads the lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// After its take, as shipped ([`take_to_help`]).
    AfterTake,
    /// Before its take.
    BeforeTake,
}

/// (w2) Request 1 waits unstarted (queued, or held in a slot) as the wait
/// helps and the pool closes and its closer sweeps. The request ends once:
/// swept by the closer, run by the wait, or cancelled by it; and the wait
/// never runs a request it took once the pool had closed (the closer's
/// sweep cannot reach it on the wait's stack, and `shutdown_now` must
/// start none after it returns). When the take happened is read under
/// the take itself (in `mine`, which runs as the request is taken out).
pub(super) fn help_races_the_close(place: Place, read: Read) {
    let queue = Arc::new(RequestQueue::<u64>::new(None));
    let nursery = Arc::new(Nursery::<u64>::default());
    let slot = nursery.join(64);
    match place {
        Place::Queue => assert!(matches!(queue.push(1), Push::Queued)),
        Place::Slot => {
            nursery.hold(&slot, 1);
        }
    }
    let closer = {
        let (queue, nursery) = (Arc::clone(&queue), Arc::clone(&nursery));
        thread::spawn(move || {
            queue.advance(Lifecycle::Closed);
            // `Pool::take_swept`: the slots, then the queue.
            let mut swept = nursery.take_own(|_| true);
            swept.extend(queue.take_all());
            swept
        })
    };
    let closed_at_take = Cell::new(false);
    let mine = |job: &u64| {
        closed_at_take.set(queue.lifecycle() == Lifecycle::Closed);
        *job == 1
    };
    let helped = match read {
        Read::AfterTake => take_to_help(&nursery, &queue, mine),
        Read::BeforeTake => {
            let closed = queue.lifecycle() == Lifecycle::Closed;
            take_first_unstarted(&nursery, &queue, mine).map(|job| {
                if closed {
                    Helped::Cancel(job)
                } else {
                    Helped::Run(job)
                }
            })
        }
    };
    let (ran, cancelled): (Vec<u64>, Vec<u64>) = match helped {
        Some(Helped::Cancel(job)) => (Vec::new(), vec![job]),
        Some(Helped::Run(job)) => {
            assert!(
                !closed_at_take.get(),
                "a request taken after the pool closed ran"
            );
            (vec![job], Vec::new())
        }
        None => (Vec::new(), Vec::new()),
    };
    let swept = closer.join().unwrap();
    assert_eq!(queue.len(), 0);
    assert!(nursery.leave(&slot).is_empty());
    assert_exactly_once([1], &[ran, cancelled, swept]);
}
