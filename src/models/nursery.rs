//! A running callable's held child against a worker going to sleep, (n1):
//! the real [`RequestQueue`] and [`Nursery`], a parent's worker that holds
//! a child as `Children::spawn` does, and an idle worker that looks at the
//! slots before it sleeps as `worker::Idler` does. A [`Seed`] can drop
//! either half of the pair; each must then deadlock.

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
        let mut stolen = self.nursery.steal();
        if stolen.is_empty() {
            return false;
        }
        assert!(matches!(
            self.queue.push_many(&mut stolen, Admit::UntilClosed),
            Push::Queued
        ));
        true
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
/// The child is taken once; nothing is left held or queued.
pub(super) fn held_child_meets_a_sleeper(seed: Seed) {
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
    let slot = nursery.join();
    let first = nursery.hold(&slot, 1);
    let sleeper = seed != Seed::HolderIgnoresSleepers && first && {
        seq_cst_pair();
        !queue.none_to_wake()
    };
    if sleeper {
        let mut batch = Vec::new();
        if nursery.empty_into(&slot, &mut batch) {
            assert!(matches!(
                queue.push_many(&mut batch, Admit::UntilClosed),
                Push::Queued
            ));
        }
    }
    progress.wait_taken(1);
    queue.dismiss([&*flag]);
    let taken = idle.join().unwrap();
    assert_eq!(taken, [1]);
    assert!(nursery.leave(&slot).is_empty());
    assert!(!nursery.any());
    assert_eq!(queue.len(), 0);
}
