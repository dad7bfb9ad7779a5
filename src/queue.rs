//! The request queue: requests waiting for a worker, the pool's lifecycle,
//! and the sleeping workers and putters, all under one lock.
//!
//! Keeping the lifecycle under the queue's lock makes "put" and "shut down"
//! exclusive: a request is either queued before the pool stops accepting
//! (and then drained or swept) or refused. Keeping the dismissal flags'
//! writes under it makes "dismiss" and "take" exclusive: a dismissed worker
//! never takes another request. See `docs/design.md`.
//!
//! It is generic over the queued item so that the loom models
//! (`src/models.rs`, under `cfg(loom)`) check this very code with
//! plain numbers as requests.

use std::collections::VecDeque;
use std::time::Instant;

use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// Where the pool is in its life; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lifecycle {
    /// Accepting requests.
    Open,
    /// Shutting down gracefully: no new requests; dismissed workers run what
    /// is queued, then exit.
    Draining,
    /// No worker takes another request; what is queued gets swept out.
    Closed,
}

/// How many times an idle worker looks at the queue again, without the
/// lock, before it goes to sleep. Streams of short requests then pass from
/// putter to worker without a sleep and a wake-up per request; an idle
/// worker spins for a few microseconds at most, then sleeps until woken.
const SPIN_ROUNDS: u32 = 64;
/// Of those, how many busy-wait with `spin_loop` before yielding the CPU.
const SPIN_BEFORE_YIELD: u32 = 16;

pub(crate) struct RequestQueue<J> {
    state: Mutex<State<J>>,
    /// Queue length, written under the lock, read without it only as a hint
    /// by spinning workers: the decision to take is always made under the lock.
    len_hint: AtomicUsize,
    /// Wakes sleeping workers: a request was queued, or a worker was
    /// dismissed, or the pool closed.
    work: Condvar,
    /// Wakes putters blocked on a full queue: a slot was freed, a worker is
    /// stuck on a full result queue, or the pool lost its last thread or closed.
    space: Condvar,
}

struct State<J> {
    jobs: VecDeque<J>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    lifecycle: Lifecycle,
    /// Workers blocked in `work.wait`.
    sleeping: usize,
    /// `notify_one` calls not yet matched by a waking worker. Never more than
    /// the notifications really in flight, so a put that sees
    /// `sleeping <= to_wake` can rely on a woken worker finding its request.
    to_wake: usize,
    /// Putters blocked in `space.wait`.
    putters: usize,
}

/// What became of a request handed to [`RequestQueue::push`].
pub(crate) enum Push<J> {
    Queued,
    Full(J),
    Closed(J),
}

/// Why a blocked put stopped waiting for room without queueing.
pub(crate) enum Blocked<J> {
    /// Results of the putter's own handle may need handling first.
    HandleResults(J),
    Closed(J),
    NoWorkers(J),
    Timeout(J),
}

impl<J> RequestQueue<J> {
    pub(crate) fn new(capacity: Option<usize>) -> RequestQueue<J> {
        RequestQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                capacity,
                lifecycle: Lifecycle::Open,
                sleeping: 0,
                to_wake: 0,
                putters: 0,
            }),
            len_hint: AtomicUsize::new(0),
            work: Condvar::new(),
            space: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        // No code panics while holding this lock (no user code runs under
        // it), so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request if the pool is open and the queue has room, and
    /// wakes one sleeping worker if none is already being woken.
    pub(crate) fn push(&self, job: J) -> Push<J> {
        let mut state = self.lock();
        if state.lifecycle != Lifecycle::Open {
            return Push::Closed(job);
        }
        if state.capacity.is_some_and(|cap| state.jobs.len() >= cap) {
            return Push::Full(job);
        }
        state.jobs.push_back(job);
        self.publish_len(&state);
        let wake = state.sleeping > state.to_wake;
        if wake {
            state.to_wake += 1;
        }
        drop(state);
        // Notified after unlocking so the woken worker does not block on the lock.
        if wake {
            self.work.notify_one();
        }
        Push::Queued
    }

    /// A put on a full queue: waits for room, then queues. Gives up when the
    /// putter's own results need handling (`stuck`: a worker is stuck
    /// sending to its full result queue), when the pool closes or has no
    /// thread left, or at `deadline`.
    pub(crate) fn push_blocking(
        &self,
        job: J,
        stuck: impl Fn(&J) -> bool,
        threads_left: impl Fn() -> usize,
        deadline: Option<Instant>,
    ) -> Result<(), Blocked<J>> {
        let mut state = self.lock();
        loop {
            if state.lifecycle != Lifecycle::Open {
                return Err(Blocked::Closed(job));
            }
            if state.capacity.is_none_or(|cap| state.jobs.len() < cap) {
                state.jobs.push_back(job);
                self.publish_len(&state);
                let wake = state.sleeping > state.to_wake;
                if wake {
                    state.to_wake += 1;
                }
                drop(state);
                if wake {
                    self.work.notify_one();
                }
                return Ok(());
            }
            // Checked under the lock that a stuck worker takes to notify
            // `space`: either we see its mark here, or its notify finds us waiting.
            if stuck(&job) {
                return Err(Blocked::HandleResults(job));
            }
            if threads_left() == 0 {
                return Err(Blocked::NoWorkers(job));
            }
            state.putters += 1;
            state = match deadline {
                None => self.space.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        state.putters -= 1;
                        return Err(Blocked::Timeout(job));
                    };
                    self.space
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.putters -= 1;
        }
    }

    /// For a worker: the next request, blocking (with no timeout) while the
    /// queue is empty (after a short spin if `just_ran`). `None` when the worker must exit: it was dismissed
    /// (after draining the queue, if the pool is draining) or the pool closed.
    pub(crate) fn take(&self, dismissed: &AtomicBool, just_ran: bool) -> Option<J> {
        let mut state = self.lock();
        // Only a worker that just ran a request spins before sleeping: a
        // stream is likely to go on. A new or woken-idle worker sleeps at once.
        let mut spun = !just_ran;
        loop {
            // Relaxed: the flag is written only under this lock, which orders it.
            let leaving = dismissed.load(Ordering::Relaxed) || state.lifecycle != Lifecycle::Open;
            if leaving && state.lifecycle != Lifecycle::Draining {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                self.publish_len(&state);
                let room_made = state.putters > 0;
                drop(state);
                if room_made {
                    self.space.notify_all();
                }
                return Some(job);
            }
            if leaving {
                // Draining, and nothing left to drain.
                return None;
            }
            if !spun && cfg!(not(loom)) {
                spun = true;
                drop(state);
                self.spin_for_work(dismissed);
                state = self.lock();
                continue;
            }
            state.sleeping += 1;
            state = self.work.wait(state).unwrap_or_else(|e| e.into_inner());
            state.sleeping -= 1;
            // Whether this was our notify, another's, or a spurious wake-up,
            // one fewer is in flight at most: undercounting only costs an
            // extra notify later, overcounting could strand a request.
            state.to_wake = state.to_wake.saturating_sub(1).min(state.sleeping);
        }
    }

    /// Busy-waits a little for a request (or a dismissal) to show up.
    fn spin_for_work(&self, dismissed: &AtomicBool) {
        for round in 0..SPIN_ROUNDS {
            // Relaxed: both are hints; `take` decides under the lock.
            if self.len_hint.load(Ordering::Relaxed) > 0 || dismissed.load(Ordering::Relaxed) {
                return;
            }
            if round < SPIN_BEFORE_YIELD {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn publish_len(&self, state: &State<J>) {
        // Relaxed: a hint for spinning workers only (see `len_hint`).
        self.len_hint.store(state.jobs.len(), Ordering::Relaxed);
    }

    /// Dismisses the workers whose flags are given: sets each flag under the
    /// lock and wakes every sleeping worker so the dismissed ones leave now.
    pub(crate) fn dismiss<'a>(&self, flags: impl IntoIterator<Item = &'a AtomicBool>) {
        let state = self.lock();
        for flag in flags {
            // Relaxed: read only under this lock (see `take`).
            flag.store(true, Ordering::Relaxed);
        }
        let any_sleeping = state.sleeping > 0;
        drop(state);
        if any_sleeping {
            self.work.notify_all();
        }
    }

    /// Moves the lifecycle forward (never back) and wakes every sleeper, so
    /// workers and blocked putters re-check it. Returns the previous state.
    pub(crate) fn advance(&self, to: Lifecycle) -> Lifecycle {
        let mut state = self.lock();
        let before = state.lifecycle;
        state.lifecycle = before.max(to);
        drop(state);
        self.work.notify_all();
        self.space.notify_all();
        before
    }

    /// Wakes blocked putters so they re-check their conditions (the pool
    /// lost its last thread, or a worker is stuck on a full result queue).
    pub(crate) fn wake_putters(&self) {
        // Taking the lock orders this notify after any putter's check.
        let putters = self.lock().putters;
        if putters > 0 {
            self.space.notify_all();
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.lock().lifecycle
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Takes every queued request out (for closing, or for handing one
    /// handle's requests back), and wakes blocked putters: there is room now.
    pub(crate) fn take_all(&self) -> VecDeque<J> {
        let mut state = self.lock();
        let jobs = std::mem::take(&mut state.jobs);
        self.publish_len(&state);
        drop(state);
        self.space.notify_all();
        jobs
    }

    /// How many queued requests `mine` holds for.
    pub(crate) fn count(&self, mine: impl Fn(&J) -> bool) -> usize {
        self.lock().jobs.iter().filter(|job| mine(job)).count()
    }

    /// Takes out the queued requests for which `mine` holds, keeping the
    /// others in order.
    pub(crate) fn take_own(&self, mine: impl Fn(&J) -> bool) -> Vec<J> {
        let mut state = self.lock();
        let (mine, others): (Vec<J>, Vec<J>) = std::mem::take(&mut state.jobs)
            .into_iter()
            .partition(|job| mine(job));
        let others = VecDeque::from(others);
        state.jobs = others;
        self.publish_len(&state);
        drop(state);
        self.space.notify_all();
        mine
    }
}
