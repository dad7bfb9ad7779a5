//! The request queue's protocol written plainly, with one seeded bug per
//! [`Bug`]: the scenarios must fail over it, which shows each model can
//! catch the kind of bug it is there for.

use super::*;

/// One deliberate bug in [`Replica`], each a one-line departure from
/// `queue.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bug {
    /// `dismiss` sets the flags and notifies without taking the lock: a
    /// worker between its flag check and its wait misses the wake-up.
    DismissWithoutLock,
    /// `dismiss` wakes one sleeper instead of all: it may wake the wrong one.
    DismissNotifiesOne,
    /// `push` notifies before the request is queued: the notify comes
    /// before the state change, and a worker that checks in between sleeps
    /// beside the request.
    NotifyBeforeQueueing,
    /// `take` pops a request before checking the dismissal flag: a busy
    /// dismissed worker takes one more request.
    PopBeforeDismissCheck,
    /// A draining worker leaves without running what is queued.
    DrainLeavesEarly,
    /// `push` checks the lifecycle in one critical section and queues in
    /// another: a request can land after the final sweep.
    PushChecksOpenUnlocked,
    /// `take` frees a slot without waking blocked putters.
    TakeForgetsPutters,
}

pub(super) struct ReplicaState {
    jobs: VecDeque<u64>,
    capacity: Option<usize>,
    lifecycle: Lifecycle,
    sleeping: usize,
    putters: usize,
}

/// The request queue's protocol written plainly (no `to_wake` economy:
/// every put wakes one sleeper), with one [`Bug`].
pub(super) struct Replica {
    bug: Bug,
    state: Mutex<ReplicaState>,
    work: Condvar,
    space: Condvar,
}

impl Replica {
    pub(super) fn new(capacity: Option<usize>, bug: Bug) -> Replica {
        Replica {
            bug,
            state: Mutex::new(ReplicaState {
                jobs: VecDeque::new(),
                capacity,
                lifecycle: Lifecycle::Open,
                sleeping: 0,
                putters: 0,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap()
    }
}

impl Queue for Replica {
    /// The replica has no drain admission: its children are a plain batch
    /// (scenario (l'') runs on the real queue only).
    fn push_children(&self, jobs: Vec<u64>) -> Push<Vec<u64>> {
        self.push_many(jobs)
    }

    /// One put per job: the replica's batches are plain puts, so the batch
    /// scenarios check the real `push_many` against the same expectations.
    fn push_many(&self, jobs: Vec<u64>) -> Push<Vec<u64>> {
        let mut refused = Vec::new();
        let mut late = false;
        for job in jobs {
            match self.push(job) {
                Push::Queued => {}
                Push::QueuedLate => late = true,
                Push::Closed(job) | Push::Full(job) => refused.push(job),
            }
        }
        match (refused.is_empty(), late) {
            (true, false) => Push::Queued,
            (true, true) => Push::QueuedLate,
            (false, _) => Push::Closed(refused),
        }
    }

    fn push(&self, job: u64) -> Push<u64> {
        if self.bug == Bug::NotifyBeforeQueueing {
            self.work.notify_one();
        }
        let mut state = self.lock();
        if self.bug == Bug::PushChecksOpenUnlocked {
            let open = state.lifecycle == Lifecycle::Open;
            drop(state);
            if !open {
                return Push::Closed(job);
            }
            state = self.lock();
        } else if state.lifecycle != Lifecycle::Open {
            return Push::Closed(job);
        }
        if state.capacity.is_some_and(|cap| state.jobs.len() >= cap) {
            return Push::Full(job);
        }
        state.jobs.push_back(job);
        let wake = state.sleeping > 0;
        drop(state);
        if wake && self.bug != Bug::NotifyBeforeQueueing {
            self.work.notify_one();
        }
        Push::Queued
    }

    fn push_blocking(
        &self,
        job: u64,
        threads_left: &dyn Fn() -> usize,
    ) -> Result<(), Blocked<u64>> {
        let mut state = self.lock();
        loop {
            if state.lifecycle != Lifecycle::Open {
                return Err(Blocked::Closed(job));
            }
            if state.capacity.is_none_or(|cap| state.jobs.len() < cap) {
                state.jobs.push_back(job);
                let wake = state.sleeping > 0;
                drop(state);
                if wake {
                    self.work.notify_one();
                }
                return Ok(());
            }
            if threads_left() == 0 {
                return Err(Blocked::NoWorkers(job));
            }
            state.putters += 1;
            state = self.space.wait(state).unwrap();
            state.putters -= 1;
        }
    }

    fn take(&self, dismissed: &WorkerFlags, _just_ran: bool) -> Option<u64> {
        let mut state = self.lock();
        loop {
            if self.bug == Bug::PopBeforeDismissCheck && state.lifecycle == Lifecycle::Open {
                if let Some(job) = state.jobs.pop_front() {
                    let room_made = state.putters > 0;
                    drop(state);
                    if room_made {
                        self.space.notify_all();
                    }
                    return Some(job);
                }
            }
            let dismissal = dismissed.dismissal();
            let leaving = dismissal != Dismissal::No || state.lifecycle != Lifecycle::Open;
            let draining = state.lifecycle == Lifecycle::Draining
                && dismissal != Dismissal::Leave
                && self.bug != Bug::DrainLeavesEarly;
            if leaving && !draining {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                let room_made = state.putters > 0 && self.bug != Bug::TakeForgetsPutters;
                drop(state);
                if room_made {
                    self.space.notify_all();
                }
                return Some(job);
            }
            if leaving {
                return None;
            }
            state.sleeping += 1;
            state = self.work.wait(state).unwrap();
            state.sleeping -= 1;
        }
    }

    fn dismiss(&self, flags: &[&WorkerFlags]) {
        if self.bug == Bug::DismissWithoutLock {
            // No lock, so no look at the lifecycle: dismissed to drain, which
            // drains only once the pool does (this bug is the lost wake-up).
            for flag in flags {
                flag.dismiss(true);
            }
            self.work.notify_all();
            return;
        }
        let state = self.lock();
        let to_drain = state.lifecycle == Lifecycle::Draining;
        for flag in flags {
            flag.dismiss(to_drain);
        }
        let any_sleeping = state.sleeping > 0;
        drop(state);
        if any_sleeping {
            if self.bug == Bug::DismissNotifiesOne {
                self.work.notify_one();
            } else {
                self.work.notify_all();
            }
        }
    }

    fn advance(&self, to: Lifecycle) -> Lifecycle {
        let mut state = self.lock();
        let before = state.lifecycle;
        state.lifecycle = before.max(to);
        drop(state);
        self.work.notify_all();
        self.space.notify_all();
        before
    }

    fn wake_putters(&self) {
        let putters = self.lock().putters;
        if putters > 0 {
            self.space.notify_all();
        }
    }

    fn take_all(&self) -> Vec<u64> {
        let jobs = std::mem::take(&mut self.lock().jobs);
        self.space.notify_all();
        jobs.into()
    }

    fn take_own(&self, mine: &dyn Fn(&u64) -> bool) -> Vec<u64> {
        let mut state = self.lock();
        let (own, others): (Vec<u64>, Vec<u64>) = std::mem::take(&mut state.jobs)
            .into_iter()
            .partition(|job| mine(job));
        state.jobs = others.into();
        drop(state);
        self.space.notify_all();
        own
    }

    fn take_first(&self, mine: &dyn Fn(&u64) -> bool) -> Option<u64> {
        let mut state = self.lock();
        let at = state.jobs.iter().position(|job| mine(job))?;
        let job = state.jobs.remove(at);
        drop(state);
        self.space.notify_all();
        job
    }

    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize {
        self.lock().jobs.iter().filter(|job| mine(job)).count()
    }

    fn len(&self) -> usize {
        self.lock().jobs.len()
    }
}
