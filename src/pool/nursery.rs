//! The children of running callables that their workers have not queued
//! yet: one slot per worker, where its running callable's `Context::put`
//! leaves them, reachable from other threads, so that a worker about to
//! sleep queues them (`queue_all`) and `cancel` and the sweeps find them.
//! Children are queued under their slot's lock, so at every moment a child
//! is in its slot or in the queue: one that looks in the slots and then
//! in the queue (`cancel`) cannot miss it on its way between them.
//!
//! A child is counted in its handle's `pending` when it is put, and held in
//! its worker's slot until the worker hands the slot's children to the
//! queue together (with every 64th child, at once while a worker sleeps or
//! an autoscaling pool may grow, and when the callable returns). Held
//! there, it would wait for its parent's callable while other workers go
//! idle; so an idle worker looks here before it sleeps.
//!
//! `held` counts the slots that hold a child, and it pairs with the
//! request queue's count of sleeping workers (`docs/design.md`, *Work that
//! makes work*): the first child into an empty slot raises `held`
//! (`SeqCst`), then reads whether a worker sleeps; a worker about to
//! sleep counts itself asleep, then reads `held` (`SeqCst`). Either the
//! worker putting the child sees the sleeper (and queues the child, which
//! wakes it), or the sleeper sees the child (and queues it itself).
//!
//! Generic over the held item, as the request queue is, so that the loom
//! and shuttle models check this very code.

use std::sync::Arc;

use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering};

/// Every worker's slot, and how many hold a child.
pub(crate) struct Nursery<J> {
    /// Locked to join, leave, queue from and search the slots; never while
    /// a slot's own lock is held.
    slots: Mutex<Vec<Arc<Slot<J>>>>,
    /// Slots holding at least one child; changed only under that slot's
    /// lock, as the slot goes from empty to not or back.
    held: AtomicUsize,
}

/// One worker's children not yet queued. Its lock is taken by its worker
/// once per child and once per hand-off, by others only while `held` is
/// above zero or to cancel: uncontended nearly always.
pub(crate) struct Slot<J> {
    jobs: Mutex<Vec<J>>,
    /// Reserved at a slot's first child: its worker's hand-off size, so a
    /// slot regrows only when the halves of joins come on top of a full
    /// batch of children.
    capacity: usize,
}

impl<J> Default for Nursery<J> {
    fn default() -> Self {
        Nursery {
            slots: Mutex::new(Vec::new()),
            held: AtomicUsize::new(0),
        }
    }
}

impl<J> Nursery<J> {
    fn slots(&self) -> MutexGuard<'_, Vec<Arc<Slot<J>>>> {
        // Nothing panics while this lock is held (no user code runs under
        // it), so a poisoned lock still guards consistent data.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new worker's slot, reachable from now on; `capacity`: how many
    /// children it holds at most between hand-offs.
    pub(crate) fn join(&self, capacity: usize) -> Arc<Slot<J>> {
        let slot = Arc::new(Slot {
            jobs: Mutex::new(Vec::new()),
            capacity,
        });
        self.slots().push(Arc::clone(&slot));
        slot
    }

    /// An exiting worker's slot leaves; whatever it still holds (nothing,
    /// unless the worker's loop itself panicked) is returned, to be
    /// cancelled.
    pub(crate) fn leave(&self, slot: &Arc<Slot<J>>) -> Vec<J> {
        self.slots().retain(|other| !Arc::ptr_eq(other, slot));
        self.queue_from(slot, std::mem::take).unwrap_or_default()
    }

    /// Holds a child in `slot`; whether it is the slot's first (then the
    /// caller looks for a sleeping worker, the other half of the pair).
    /// Inlined into the worker's `Children::hold`, its one caller, once
    /// per child.
    #[inline]
    pub(crate) fn hold(&self, slot: &Slot<J>, job: J) -> bool {
        let mut jobs = slot.lock();
        let first = jobs.is_empty();
        if first {
            if jobs.capacity() == 0 {
                jobs.reserve_exact(slot.capacity);
            }
            // SeqCst: the write of two pairs, read by `any`: with a
            // sleeping worker's count (see the module's doc), and with a
            // retiring worker's smaller live count (`Autoscale::may_grow`,
            // read after this, and `retire_idle`'s look at `held`).
            self.held.fetch_add(1, Ordering::SeqCst);
        }
        jobs.push(job);
        first
    }

    /// Queues what `slot` holds with `push`, under the slot's lock (see
    /// the module's doc); `push` drains from the slot's `Vec` what it
    /// queued and leaves there what it did not. What `push` returned, or
    /// `None` if the slot held nothing.
    pub(crate) fn queue_from<R>(
        &self,
        slot: &Slot<J>,
        push: impl FnOnce(&mut Vec<J>) -> R,
    ) -> Option<R> {
        let mut jobs = slot.lock();
        if jobs.is_empty() {
            return None;
        }
        let pushed = push(&mut jobs);
        if jobs.is_empty() {
            // Release: whoever reads the fall (`any` is false: `cancel` and
            // the sweeps skip the slots) then sees what the push queued.
            // The sleepers the push needs, it woke.
            self.held.fetch_sub(1, Ordering::Release);
        }
        Some(pushed)
    }

    /// Takes out of `slot` the last job for which `is` holds, leaving the
    /// others in order: its own worker taking back what it offered and
    /// then ran itself (`Context::join`), wherever children put since
    /// have left it. `is` must not block.
    pub(crate) fn take_last_where(&self, slot: &Slot<J>, is: impl Fn(&J) -> bool) -> Option<J> {
        let mut jobs = slot.lock();
        let at = jobs.iter().rposition(is)?;
        let job = jobs.remove(at);
        if jobs.is_empty() {
            // Release: as in `queue_from`.
            self.held.fetch_sub(1, Ordering::Release);
        }
        Some(job)
    }

    /// Whether any slot holds a child.
    pub(crate) fn any(&self) -> bool {
        // SeqCst: the read of the pair (see the module's doc).
        self.held.load(Ordering::SeqCst) > 0
    }

    /// [`queue_from`](Self::queue_from) on every slot that holds a child,
    /// for a worker about to sleep; what each `push` returned.
    pub(crate) fn queue_all<R>(&self, mut push: impl FnMut(&mut Vec<J>) -> R) -> Vec<R> {
        if !self.any() {
            return Vec::new();
        }
        self.slots()
            .iter()
            .filter_map(|slot| self.queue_from(slot, &mut push))
            .collect()
    }

    /// Takes out the first held child for which `mine` holds (a helping
    /// wait), looking through the slots in turn, leaving the others in
    /// order. `mine` must not block.
    pub(crate) fn take_first(&self, mine: impl Fn(&J) -> bool) -> Option<J> {
        if !self.any() {
            return None;
        }
        self.slots().iter().find_map(|slot| {
            let mut jobs = slot.lock();
            let at = jobs.iter().position(&mine)?;
            let job = jobs.remove(at);
            if jobs.is_empty() {
                // Release: as in `queue_from` (the child went to the taker).
                self.held.fetch_sub(1, Ordering::Release);
            }
            Some(job)
        })
    }

    /// Takes out the held children for which `mine` holds (`cancel`, the
    /// sweeps), leaving the others in order. `mine` must not block.
    pub(crate) fn take_own(&self, mine: impl Fn(&J) -> bool) -> Vec<J> {
        let mut own = Vec::new();
        if !self.any() {
            return own;
        }
        for slot in self.slots().iter() {
            let mut jobs = slot.lock();
            if jobs.is_empty() {
                continue;
            }
            let mut i = 0;
            while i < jobs.len() {
                if mine(&jobs[i]) {
                    own.push(jobs.remove(i));
                } else {
                    i += 1;
                }
            }
            if jobs.is_empty() {
                // Release: as in `queue_from` (what left went to the taker).
                self.held.fetch_sub(1, Ordering::Release);
            }
        }
        own
    }
}

impl<J> Slot<J> {
    fn lock(&self) -> MutexGuard<'_, Vec<J>> {
        // As for the slot list: no user code runs under it (a child's
        // `Drop` runs after it is moved out).
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    #[test]
    fn a_slot_counts_as_held_from_its_first_child_until_emptied() {
        let nursery = Nursery::default();
        let (a, b) = (nursery.join(4), nursery.join(4));
        assert!(!nursery.any());
        assert!(nursery.hold(&a, 1));
        assert!(!nursery.hold(&a, 2));
        assert!(nursery.hold(&b, 3));
        assert_eq!(nursery.held.load(Ordering::SeqCst), 2);
        assert_eq!(nursery.queue_from(&a, std::mem::take), Some(vec![1, 2]));
        assert_eq!(nursery.queue_from(&a, std::mem::take), None);
        assert!(nursery.any());
        // What a push leaves in the slot stays held.
        let left = nursery.queue_all(|jobs| jobs.len());
        assert_eq!(left, [1]);
        assert!(nursery.any());
        assert_eq!(nursery.queue_all(std::mem::take), [vec![3]]);
        assert!(!nursery.any());
        assert!(nursery.queue_all(std::mem::take).is_empty());
    }

    #[test]
    fn take_own_leaves_the_others_in_order_and_counts_emptied_slots() {
        let nursery = Nursery::default();
        let (a, b) = (nursery.join(4), nursery.join(4));
        for job in [1, 2, 3, 4] {
            nursery.hold(&a, job);
        }
        nursery.hold(&b, 6);
        assert_eq!(nursery.take_own(|job| job % 2 == 0), [2, 4, 6]);
        assert_eq!(nursery.held.load(Ordering::SeqCst), 1);
        assert_eq!(nursery.leave(&a), [1, 3]);
        assert!(!nursery.any());
        assert!(nursery.leave(&b).is_empty());
        assert!(nursery.slots().is_empty());
    }

    #[test]
    fn take_last_where_takes_the_last_match_from_anywhere_in_the_slot() {
        let nursery = Nursery::default();
        let a = nursery.join(4);
        for job in [1, 2, 3, 4] {
            nursery.hold(&a, job);
        }
        assert_eq!(nursery.take_last_where(&a, |job| job % 2 == 1), Some(3));
        assert_eq!(nursery.take_last_where(&a, |&job| job == 7), None);
        assert_eq!(nursery.take_last_where(&a, |&job| job != 0), Some(4));
        assert_eq!(nursery.held.load(Ordering::SeqCst), 1);
        assert_eq!(nursery.take_last_where(&a, |_| true), Some(2));
        assert_eq!(nursery.take_last_where(&a, |_| true), Some(1));
        assert!(!nursery.any());
        assert!(nursery.leave(&a).is_empty());
    }

    #[test]
    fn take_first_takes_one_match_across_the_slots_in_turn() {
        let nursery = Nursery::default();
        let (a, b) = (nursery.join(4), nursery.join(4));
        nursery.hold(&a, 1);
        nursery.hold(&b, 2);
        nursery.hold(&b, 4);
        assert_eq!(nursery.take_first(|job| job % 2 == 0), Some(2));
        assert_eq!(nursery.take_first(|job| job % 2 == 0), Some(4));
        // `b` fell empty: only `a` counts as held.
        assert_eq!(nursery.held.load(Ordering::SeqCst), 1);
        assert_eq!(nursery.take_first(|job| job % 2 == 0), None);
        assert_eq!(nursery.take_first(|_| true), Some(1));
        assert!(!nursery.any());
        assert_eq!(nursery.take_first(|_| true), None);
    }
}
