//! A running callable's held child, over the real [`RequestQueue`] and
//! [`Nursery`]: against a worker going to sleep, (n1), with a parent's
//! worker that holds a child as `Children::spawn` does and an idle worker
//! that looks at the slots before it sleeps as `worker::Idler` does (a
//! [`Seed`] can drop either half of the pair; each must then deadlock);
//! and against `cancel(id)`, (n2), which must find it while it moves from
//! the slot to the queue (looking in the other [`Order`], it misses it).

use super::*;
use crate::pool::nursery::Nursery;
use crate::pool::queue::BeforeSleep;
use crate::sync::seq_cst_pair;

/// Which half of the pair the model keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Seed {
    /// Both halves, as shipped.
    None,
    /// The parent's worker never looks for a sleeping worker.
    HolderIgnoresSleepers,
    /// The idle worker never reads `held` once counted asleep.
    SleeperIgnoresHeld,
}

/// The idle worker's look at the slots before it sleeps.
struct Idler<'a> {
    queue: &'a RequestQueue<u64>,
    nursery: &'a Nursery<u64>,
    seed: Seed,
}

impl BeforeSleep for Idler<'_> {
    fn prepare(&mut self) -> bool {
        let queue = self.queue;
        let pushes = self
            .nursery
            .queue_all(|jobs| queue.push_many(jobs, Admit::UntilClosed));
        assert!(pushes.iter().all(|pushed| matches!(pushed, Push::Queued)));
        !pushes.is_empty()
    }

    fn held_elsewhere(&self) -> bool {
        self.seed != Seed::SleeperIgnoresHeld && self.nursery.any()
    }
}

/// (n1) The parent's worker holds child 1 while the other worker finds
/// the queue empty and goes to sleep, and then waits for the child to be
/// taken (as a parent that waits for its child does). Either the holder
/// sees the sleeper and queues the child (which wakes it), or the sleeper
/// sees the child held and queues it itself: a lost hand-off deadlocks.
/// The child is taken once; nothing is left held or queued. With
/// `children` above 1, the later ones go into a slot that already holds
/// one, with no look for sleepers (as `Children::spawn` does): any worker
/// that slept since the first saw it held.
pub(super) fn held_child_meets_a_sleeper(seed: Seed, children: u64) {
    let queue = Arc::new(RequestQueue::<u64>::new(None));
    let nursery = Arc::new(Nursery::<u64>::default());
    let progress = Progress::new();
    let flag = flag();
    let idle = {
        let (queue, nursery, flag, progress) = (
            Arc::clone(&queue),
            Arc::clone(&nursery),
            Arc::clone(&flag),
            Arc::clone(&progress),
        );
        thread::spawn(move || {
            let mut taken = Vec::new();
            loop {
                let idler = Idler {
                    queue: &queue,
                    nursery: &nursery,
                    seed,
                };
                let mut pace = Pace::new();
                let Some(job) = queue.take(&flag, &mut pace, idler, None) else {
                    break;
                };
                taken.push(job);
                progress.took_one();
            }
            taken
        })
    };
    let slot = nursery.join(64);
    for child in 1..=children {
        let first = nursery.hold(&slot, child);
        let sleeper = seed != Seed::HolderIgnoresSleepers && first && {
            seq_cst_pair();
            !queue.none_to_wake()
        };
        if sleeper {
            let pushed =
                nursery.queue_from(&slot, |jobs| queue.push_many(jobs, Admit::UntilClosed));
            assert!(pushed.is_none_or(|pushed| matches!(pushed, Push::Queued)));
        }
    }
    progress.wait_taken(children as usize);
    queue.dismiss([&*flag]);
    let taken = idle.join().unwrap();
    assert_eq!(taken, (1..=children).collect::<Vec<_>>());
    assert!(nursery.leave(&slot).is_empty());
    assert!(!nursery.any());
    assert_eq!(queue.len(), 0);
}

/// Where `cancel` looks first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Order {
    /// The slots, then the queue, as shipped.
    SlotsFirst,
    /// The queue, then the slots: a hand-off between the two looks hides
    /// the child. Seeded by loom's self-checks only (`seeded.rs`).
    #[cfg_attr(not(loom), allow(dead_code))]
    QueueFirst,
}

/// (n2) `cancel(id)` looks for child 1 while its parent's worker hands
/// the slot to the queue (no worker takes meanwhile, so the child is
/// pending and unstarted throughout): the cancel must find it, exactly
/// once, and leave nothing held or queued.
pub(super) fn cancel_meets_a_hand_off(order: Order) {
    let queue = Arc::new(RequestQueue::<u64>::new(None));
    let nursery = Arc::new(Nursery::<u64>::default());
    let slot = nursery.join(64);
    nursery.hold(&slot, 1);
    let parent = {
        let (queue, nursery) = (Arc::clone(&queue), Arc::clone(&nursery));
        // The nursery keeps its slots in std `Arc`s, also under the checkers.
        let slot = std::sync::Arc::clone(&slot);
        thread::spawn(move || {
            let pushed =
                nursery.queue_from(&slot, |jobs| queue.push_many(jobs, Admit::UntilClosed));
            assert!(pushed.is_none_or(|pushed| matches!(pushed, Push::Queued)));
        })
    };
    let mine = |job: &u64| *job == 1;
    let found = match order {
        Order::SlotsFirst => {
            let mut found = nursery.take_own(mine);
            if found.is_empty() {
                found = queue.take_own(mine);
            }
            found
        }
        Order::QueueFirst => {
            let mut found = queue.take_own(mine);
            if found.is_empty() {
                found = nursery.take_own(mine);
            }
            found
        }
    };
    parent.join().unwrap();
    assert_eq!(found, [1], "cancel missed a child on its way to the queue");
    assert!(nursery.leave(&slot).is_empty());
    assert!(!nursery.any());
    assert_eq!(queue.len(), 0);
}

/// (n3) A running callable holds a child (`Children::hold`) as the pool
/// closes and its closer takes what the slots hold (`Pool::close_and_sweep`):
/// either the closer's take finds the child, or the holder, reading the
/// lifecycle again once the child is in, sees the pool closed (and takes
/// it back, `Children::held_as_closed`). Never neither: a child the closer
/// missed and its holder believed accepted was lost. `already_held`: the
/// slot holds another child already (the closer then finds the slot by
/// its lock; otherwise by `held`'s rise, the `SeqCst` pair).
pub(super) fn a_child_held_as_the_pool_closes(already_held: bool) {
    let queue = Arc::new(RequestQueue::<u64>::new(None));
    let nursery = Arc::new(Nursery::<u64>::default());
    let slot = nursery.join(64);
    if already_held {
        nursery.hold(&slot, 0);
    }
    let holder = {
        let (queue, nursery) = (Arc::clone(&queue), Arc::clone(&nursery));
        let slot = std::sync::Arc::clone(&slot);
        thread::spawn(move || {
            if queue.lifecycle() != Lifecycle::Open {
                // Refused before it went in, as `hold` is.
                return None;
            }
            nursery.hold(&slot, 1);
            seq_cst_pair();
            Some(queue.lifecycle() == Lifecycle::Closed)
        })
    };
    queue.advance(Lifecycle::Closed);
    seq_cst_pair();
    let taken = nursery.take_own(|_| true);
    let held = holder.join().unwrap();
    if let Some(saw_closed) = held {
        assert!(
            taken.contains(&1) || saw_closed,
            "a child neither taken by the closer nor seen closed by its holder"
        );
    }
    // Each child held is either taken or still in its slot, once.
    let left = nursery.leave(&slot);
    let children = usize::from(already_held) + usize::from(held.is_some());
    assert_eq!(taken.len() + left.len(), children);
}
