//! Model checks of the request queue's protocol (`src/pool/queue.rs`), run
//! over the real [`RequestQueue`] with plain numbers as requests; and, in
//! [`inbox`], of a handle's inbox and wait protocol as they ship.
//!
//! * Under loom (`RUSTFLAGS="--cfg loom"`): small scenarios, every
//!   interleaving up to a preemption bound (3 unless `LOOM_MAX_PREEMPTIONS`
//!   says otherwise).
//!   `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom" cargo test --release --lib models`
//! * Under shuttle (`RUSTFLAGS="--cfg shuttle"`): bigger scenarios (many requests,
//!   more threads, resize storms), random and PCT schedules.
//!   `RUSTFLAGS="--cfg shuttle" cargo test --release --lib models`
//!
//! Each scenario is written once, generic over [`Queue`], and run against
//! the real queue (must pass) and against [`Replica`], a small copy of the
//! protocol with one seeded bug (must fail: the checker reports a deadlock
//! or an assertion). That proves each model is able to catch the kind of bug
//! it is there for. The seeded bugs live here, in test-only code: the
//! library itself has no bug switches.
//!
//! The wait protocol's scenarios (g1)-(g6) run the shipped `Inbox` and
//! `Results` (`src/inbox/`) on the checkers' primitives; their seeded
//! checks are callers that break the protocol's rules (see [`inbox`]).
//!
//! `docs/reliability.md` lists what each model covers.

mod inbox;

use std::collections::{BTreeMap, VecDeque};

use crate::pool::handshake::WorkerFlags;
use crate::pool::pace::Pace;
use crate::pool::queue::{Blocked, Lifecycle, Push, RequestQueue};
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
    /// How many queued requests `mine` holds for (`Shared::queued_for`).
    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize;
    fn len(&self) -> usize;
}

impl Queue for RequestQueue<u64> {
    fn push(&self, job: u64) -> Push<u64> {
        RequestQueue::push(self, job)
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
        RequestQueue::take(self, dismissed, &mut pace, || {})
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
    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize {
        RequestQueue::count(self, mine)
    }
    fn len(&self) -> usize {
        RequestQueue::len(self)
    }
}

// ---------------------------------------------------------------------------
// The seeded broken copy.
// ---------------------------------------------------------------------------

/// One deliberate bug in [`Replica`], each a one-line departure from
/// `queue.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
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

struct ReplicaState {
    jobs: VecDeque<u64>,
    capacity: Option<usize>,
    lifecycle: Lifecycle,
    sleeping: usize,
    putters: usize,
}

/// The request queue's protocol written plainly (no `to_wake` economy:
/// every put wakes one sleeper), with one [`Bug`].
struct Replica {
    bug: Bug,
    state: Mutex<ReplicaState>,
    work: Condvar,
    space: Condvar,
}

impl Replica {
    fn new(capacity: Option<usize>, bug: Bug) -> Replica {
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

    fn lock(&self) -> MutexGuard<'_, ReplicaState> {
        self.state.lock().unwrap()
    }
}

impl Queue for Replica {
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
            let leaving = dismissed.is_dismissed() || state.lifecycle != Lifecycle::Open;
            let draining =
                state.lifecycle == Lifecycle::Draining && self.bug != Bug::DrainLeavesEarly;
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
            for flag in flags {
                flag.dismiss();
            }
            self.work.notify_all();
            return;
        }
        let state = self.lock();
        for flag in flags {
            flag.dismiss();
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

    fn count(&self, mine: &dyn Fn(&u64) -> bool) -> usize {
        self.lock().jobs.iter().filter(|job| mine(job)).count()
    }

    fn len(&self) -> usize {
        self.lock().jobs.len()
    }
}

// ---------------------------------------------------------------------------
// Scaffolding shared by the scenarios.
// ---------------------------------------------------------------------------

/// Progress the scenario's driver can wait for, on the checker's own
/// primitives (so waiting on it is part of the model, never a sleep).
struct Progress {
    state: Mutex<ProgressState>,
    changed: Condvar,
}

#[derive(Default)]
struct ProgressState {
    /// Requests taken by any worker so far.
    taken: usize,
    /// Set by the driver to let a worker holding a request finish it.
    released: bool,
}

impl Progress {
    fn new() -> Arc<Progress> {
        Arc::new(Progress {
            state: Mutex::new(ProgressState::default()),
            changed: Condvar::new(),
        })
    }

    fn took_one(&self) {
        self.state.lock().unwrap().taken += 1;
        self.changed.notify_all();
    }

    fn wait_taken(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        while state.taken < n {
            state = self.changed.wait(state).unwrap();
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().released = true;
        self.changed.notify_all();
    }

    fn wait_released(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.released {
            state = self.changed.wait(state).unwrap();
        }
    }
}

/// A worker thread of the model: takes until told to leave, and returns
/// what it took, in order.
fn spawn_worker<Q: Queue>(
    queue: &Arc<Q>,
    flag: &Arc<WorkerFlags>,
    progress: &Arc<Progress>,
) -> thread::JoinHandle<Vec<u64>> {
    let (queue, flag, progress) = (queue.clone(), flag.clone(), progress.clone());
    thread::spawn(move || {
        let mut taken = Vec::new();
        while let Some(job) = queue.take(&flag, !taken.is_empty()) {
            taken.push(job);
            progress.took_one();
        }
        taken
    })
}

fn flag() -> Arc<WorkerFlags> {
    Arc::new(WorkerFlags::new())
}

/// Asserts that the given lists together hold each of `expected` exactly
/// once: nothing lost, nothing duplicated, nothing invented.
fn assert_exactly_once(expected: impl IntoIterator<Item = u64>, lists: &[&[u64]]) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for list in lists {
        for &job in *list {
            *seen.entry(job).or_default() += 1;
        }
    }
    let want: BTreeMap<u64, usize> = expected.into_iter().map(|j| (j, 1)).collect();
    assert_eq!(seen, want, "each request must end exactly once: {lists:?}");
}

// ---------------------------------------------------------------------------
// The scenarios (small: loom explores all their interleavings).
// ---------------------------------------------------------------------------

/// (a) A request is taken by exactly one worker. Two workers, two puts;
/// the driver waits until both were taken (a lost wake-up deadlocks here),
/// then dismisses both, which must then exit. Nothing is left queued.
fn taken_once<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let (f1, f2) = (flag(), flag());
    let w1 = spawn_worker(&queue, &f1, &progress);
    let w2 = spawn_worker(&queue, &f2, &progress);
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Queued));
    progress.wait_taken(2);
    queue.dismiss(&[&f1, &f2]);
    let (t1, t2) = (w1.join().unwrap(), w2.join().unwrap());
    assert_eq!(queue.len(), 0);
    assert_exactly_once([1, 2], &[&t1, &t2]);
}

/// (a') Dismissal racing with the puts: the two workers are dismissed right
/// after the puts; whatever they did not take is still queued, exactly once.
fn taken_once_or_left<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let (f1, f2) = (flag(), flag());
    let w1 = spawn_worker(&queue, &f1, &progress);
    let w2 = spawn_worker(&queue, &f2, &progress);
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Queued));
    queue.dismiss(&[&f1, &f2]);
    let (t1, t2) = (w1.join().unwrap(), w2.join().unwrap());
    let left = queue.take_all();
    assert_exactly_once([1, 2], &[&t1, &t2, &left]);
}

/// (h) A handle of a pool that stays open takes its own queued requests
/// out (`Shared::extract`, as a global-pool handle's shutdown does) while a
/// worker takes: the other handle's request goes back and is still taken
/// (a worker that met the queue empty meanwhile and slept must be woken: a
/// lost wake-up deadlocks the driver's wait); each request ends once.
fn extracted<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Queued));
    let w1 = spawn_worker(&queue, &f1, &progress);
    let own = queue.take_own(&|job| *job == 2);
    progress.wait_taken(2 - own.len());
    queue.dismiss(&[&f1]);
    let taken = w1.join().unwrap();
    assert_eq!(queue.len(), 0);
    assert_exactly_once([1, 2], &[&taken, &own]);
}

/// (i) A waiter with no thread left counts its queued requests
/// (`Shared::queued_for`) while the closer sweeps (`shutdown_now`): the
/// count takes the requests out and puts them back, and the sweep must not
/// meet the queue empty meanwhile. Both requests are swept; none is left
/// stranded in the closed queue (the CI failure of 2026-11-22).
fn counted_while_swept<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Queued));
    let waiter = {
        let queue = queue.clone();
        thread::spawn(move || queue.count(&|_| true))
    };
    queue.advance(Lifecycle::Closed);
    let swept = queue.take_all();
    let counted = waiter.join().unwrap();
    assert!(counted <= 2);
    assert_eq!(queue.len(), 0, "a request was left in the closed queue");
    assert_exactly_once([1, 2], &[&swept]);
}

/// (j) Two handles of a pool with no thread count their own queued requests
/// at once: each count is exact (an undercount sends a waiter to sleep on
/// results that never come), and both requests are still queued after.
fn counted_twice<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Queued));
    let other = {
        let queue = queue.clone();
        thread::spawn(move || queue.count(&|job| *job == 2))
    };
    assert_eq!(
        queue.count(&|job| *job == 1),
        1,
        "the first count was wrong"
    );
    assert_eq!(other.join().unwrap(), 1, "the second count was wrong");
    assert_eq!(queue.len(), 2);
    assert_exactly_once([1, 2], &[&queue.take_all()]);
}

/// (b) Dismissing an idle worker wakes it and it exits: no lost wake-up
/// (a missed one leaves the join waiting for ever, which the checker
/// reports as a deadlock).
fn idle_dismissed<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    let w1 = spawn_worker(&queue, &f1, &progress);
    queue.dismiss(&[&f1]);
    assert_eq!(w1.join().unwrap(), Vec::<u64>::new());
}

/// (b') Dismissing one of two idle workers: the dismissed one exits, the
/// other is still woken by the next put and takes it (the put's wake-up is
/// not spent on the leaving worker); then it is dismissed too.
fn one_of_two_dismissed<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let (f1, f2) = (flag(), flag());
    let w1 = spawn_worker(&queue, &f1, &progress);
    let w2 = spawn_worker(&queue, &f2, &progress);
    queue.dismiss(&[&f1]);
    assert!(matches!(queue.push(1), Push::Queued));
    progress.wait_taken(1);
    queue.dismiss(&[&f2]);
    assert_eq!(w1.join().unwrap(), Vec::<u64>::new());
    assert_eq!(w2.join().unwrap(), vec![1]);
    assert_eq!(queue.len(), 0);
}

/// (c) Dismissing a busy worker: it finishes its request, then exits
/// without taking the request queued meanwhile, which the other worker (or
/// the final sweep) gets.
fn busy_dismissed<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let (busy_flag, other_flag) = (flag(), flag());
    assert!(matches!(queue.push(1), Push::Queued));
    let busy = {
        let (queue, flag, progress) = (queue.clone(), busy_flag.clone(), progress.clone());
        thread::spawn(move || {
            let first = queue.take(&flag, false);
            progress.took_one();
            // Busy with `first` until the driver has dismissed us and
            // queued another request.
            progress.wait_released();
            let second = queue.take(&flag, true);
            (first, second)
        })
    };
    progress.wait_taken(1);
    let other = spawn_worker(&queue, &other_flag, &progress);
    queue.dismiss(&[&busy_flag]);
    assert!(matches!(queue.push(2), Push::Queued));
    progress.release();
    let (first, second) = busy.join().unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(second, None, "a dismissed worker took another request");
    queue.dismiss(&[&other_flag]);
    let by_other = other.join().unwrap();
    let left = queue.take_all();
    assert_exactly_once([2], &[&by_other, &left]);
}

/// (d) Graceful drain, as `shutdown` does it: `advance(Draining)` then
/// dismiss every worker; the workers run everything queued, then exit.
fn drained<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let (f1, f2) = (flag(), flag());
    let w1 = spawn_worker(&queue, &f1, &progress);
    assert!(matches!(queue.push(1), Push::Queued));
    let w2 = spawn_worker(&queue, &f2, &progress);
    assert!(matches!(queue.push(2), Push::Queued));
    queue.advance(Lifecycle::Draining);
    queue.dismiss(&[&f1, &f2]);
    assert!(matches!(queue.push(3), Push::Closed(3)));
    let (t1, t2) = (w1.join().unwrap(), w2.join().unwrap());
    assert_eq!(queue.len(), 0, "draining workers left requests queued");
    assert_exactly_once([1, 2], &[&t1, &t2]);
}

/// (k) A put races a graceful shutdown (`advance(Draining)` + dismiss): it
/// is refused, or counted in before the draining worker can leave, and then
/// run. Never queued after the worker left (nothing would run it).
fn put_racing_drain<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    let w1 = spawn_worker(&queue, &f1, &progress);
    let putter = {
        let queue = queue.clone();
        thread::spawn(move || match queue.push(1) {
            Push::Queued => Vec::new(),
            Push::Closed(job) => vec![job],
            Push::QueuedLate => panic!("the pool never closes here"),
            Push::Full(_) => unreachable!("unbounded"),
        })
    };
    queue.advance(Lifecycle::Draining);
    queue.dismiss(&[&f1]);
    let refused = putter.join().unwrap();
    let taken = w1.join().unwrap();
    assert_eq!(queue.len(), 0, "a request was queued after the drain ended");
    assert_exactly_once([1], &[&taken, &refused]);
}

/// (e) Close, as `shutdown_now` does it: `advance(Closed)`, dismiss, sweep,
/// while a putter races with it. Every request is taken by a worker, swept,
/// or refused to the putter: exactly once, and nothing is stranded in the
/// queue after the sweep.
fn closed<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    let w1 = spawn_worker(&queue, &f1, &progress);
    let putter = {
        let queue = queue.clone();
        thread::spawn(move || {
            let mut refused = Vec::new();
            for job in [1, 2] {
                match queue.push(job) {
                    Push::Queued => {}
                    // Pushed after the close: the putter sweeps, as
                    // `ThreadPool::put` does (what it finds counts as refused).
                    Push::QueuedLate => refused.extend(queue.take_all()),
                    Push::Closed(job) => refused.push(job),
                    Push::Full(_) => unreachable!("unbounded"),
                }
            }
            refused
        })
    };
    queue.advance(Lifecycle::Closed);
    queue.dismiss(&[&f1]);
    let swept = queue.take_all();
    let taken = w1.join().unwrap();
    let refused = putter.join().unwrap();
    assert_eq!(queue.len(), 0, "a request was queued after the final sweep");
    assert_exactly_once([1, 2], &[&taken, &swept, &refused]);
}

/// (f) A put blocked on a full queue (capacity 1) is woken when a worker
/// takes a request, and its request is then run, in order.
fn blocked_put<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    assert!(matches!(queue.push(1), Push::Queued));
    assert!(matches!(queue.push(2), Push::Full(2)));
    let w1 = spawn_worker(&queue, &f1, &progress);
    assert!(queue.push_blocking(2, &|| 1).is_ok());
    progress.wait_taken(2);
    queue.dismiss(&[&f1]);
    assert_eq!(w1.join().unwrap(), vec![1, 2]);
}

/// (f') Two puts blocked on a full queue, one worker: both are let in, one
/// at a time, and every request runs once.
fn two_blocked_puts<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let f1 = flag();
    assert!(matches!(queue.push(1), Push::Queued));
    let putters: Vec<_> = [2, 3]
        .into_iter()
        .map(|job| {
            let queue = queue.clone();
            thread::spawn(move || assert!(queue.push_blocking(job, &|| 1).is_ok()))
        })
        .collect();
    let w1 = spawn_worker(&queue, &f1, &progress);
    for p in putters {
        p.join().unwrap();
    }
    progress.wait_taken(3);
    queue.dismiss(&[&f1]);
    let taken = w1.join().unwrap();
    assert_exactly_once([1, 2, 3], &[&taken]);
}

/// (f'') A put blocked on a full queue while the pool loses its last
/// thread: it is woken (`wake_putters`, as `Shared::worker_exited` does) and
/// gives up with `NoWorkers` instead of sleeping for ever.
fn blocked_put_no_workers<Q: Queue>(queue: Q) {
    let queue = Arc::new(queue);
    let threads = Arc::new(AtomicUsize::new(1));
    let f1 = flag();
    assert!(matches!(queue.push(1), Push::Queued));
    let w1 = {
        let (queue, flag, threads) = (queue.clone(), f1.clone(), threads.clone());
        thread::spawn(move || {
            // Dismissed before it takes anything, it exits like a worker:
            // the thread count first, then the putters are woken.
            let took = queue.take(&flag, false);
            threads.fetch_sub(1, Ordering::SeqCst);
            queue.wake_putters();
            took
        })
    };
    queue.dismiss(&[&f1]);
    let left = {
        let threads = threads.clone();
        match queue.push_blocking(2, &move || threads.load(Ordering::SeqCst)) {
            Ok(()) => None,
            Err(Blocked::NoWorkers(job)) => Some(job),
            Err(_) => unreachable!("open, no deadline, never stuck"),
        }
    };
    let took = w1.join().unwrap();
    let queued = queue.take_all();
    let refused: Vec<u64> = left.into_iter().collect();
    let took: Vec<u64> = took.into_iter().collect();
    assert_exactly_once([1, 2], &[&took, &queued, &refused]);
}

// ---------------------------------------------------------------------------
// Loom: every interleaving of the small scenarios.
// ---------------------------------------------------------------------------

#[cfg(loom)]
mod under_loom {
    use super::*;

    /// Runs `model` under loom with a bounded preemption count (3 unless
    /// `LOOM_MAX_PREEMPTIONS` sets it).
    fn check(model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(model);
    }

    fn real() -> RequestQueue<u64> {
        RequestQueue::new(None)
    }

    fn real_bounded() -> RequestQueue<u64> {
        RequestQueue::new(Some(1))
    }

    fn broken(bug: Bug) -> Replica {
        Replica::new(None, bug)
    }

    #[test]
    fn a_taken_by_exactly_one_worker() {
        check(|| taken_once(real()));
    }

    #[test]
    fn a_taken_once_or_left_when_dismissed_at_once() {
        check(|| taken_once_or_left(real()));
    }

    #[test]
    fn h_extract_puts_the_others_back_and_wakes_a_worker() {
        check(|| extracted(real()));
    }

    #[test]
    fn i_count_racing_the_closing_sweep_strands_nothing() {
        check(|| counted_while_swept(real()));
    }

    #[test]
    fn j_two_handles_counting_at_once_count_exactly() {
        check(|| counted_twice(real()));
    }

    #[test]
    fn b_idle_worker_dismissed_exits() {
        check(|| idle_dismissed(real()));
    }

    #[test]
    fn b_one_of_two_idle_workers_dismissed() {
        check(|| one_of_two_dismissed(real()));
    }

    #[test]
    fn c_busy_worker_dismissed_takes_nothing_more() {
        check(|| busy_dismissed(real()));
    }

    #[test]
    fn d_draining_runs_everything_queued() {
        check(|| drained(real()));
    }

    #[test]
    fn k_put_racing_a_drain_is_refused_or_run() {
        check(|| put_racing_drain(real()));
    }

    #[test]
    fn e_close_sweeps_whatever_no_worker_took() {
        check(|| closed(real()));
    }

    #[test]
    fn f_blocked_put_woken_by_take() {
        check(|| blocked_put(real_bounded()));
    }

    #[test]
    fn f_two_blocked_puts_both_let_in() {
        check(|| two_blocked_puts(real_bounded()));
    }

    #[test]
    fn f_blocked_put_woken_when_last_thread_exits() {
        check(|| blocked_put_no_workers(real_bounded()));
    }

    // The wait protocol, on the shipped inbox (`inbox.rs`).

    #[test]
    fn g1_wait_woken_by_last_result() {
        check(inbox::wait_woken_by_last_result);
    }

    #[test]
    fn g2_two_waiters_on_one_handle_both_return() {
        check(inbox::two_waiters);
    }

    #[test]
    fn g3_waiter_woken_when_another_thread_handles_the_last_result() {
        check(|| inbox::other_handles_the_last_result(inbox::Misuse::None));
    }

    #[test]
    fn g4_waiter_told_when_the_last_thread_exits() {
        check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::None));
    }

    /// The race shuttle once found (see `under_shuttle`).
    #[test]
    fn g5_two_waiters_while_the_last_thread_exits() {
        check(inbox::two_waiters_last_thread_exit);
    }

    #[test]
    fn g6_sweep_overflows_a_full_result_queue() {
        check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::None));
    }

    // Self-checks: the same scenarios over a copy with one seeded bug must
    // fail. A deadlock found by loom aborts the whole test process ("panic
    // in a destructor during cleanup"), so each seeded model runs in a child
    // process (this test binary, filtered to `seeded_child`), and the test
    // checks that the child failed for the expected reason.

    /// The seeded models, by name: the scenario, the bug, and what loom
    /// must report.
    fn seeded(name: &str) -> Option<(fn(), &'static str)> {
        let model: (fn(), &'static str) = match name {
            "a_notify_before_queueing" => (
                || check(|| taken_once(broken(Bug::NotifyBeforeQueueing))),
                "deadlock",
            ),
            "b_dismiss_without_lock" => (
                || check(|| idle_dismissed(broken(Bug::DismissWithoutLock))),
                "deadlock",
            ),
            "b_dismiss_notifies_one" => (
                || check(|| one_of_two_dismissed(broken(Bug::DismissNotifiesOne))),
                "deadlock",
            ),
            "c_pop_before_dismiss_check" => (
                || check(|| busy_dismissed(broken(Bug::PopBeforeDismissCheck))),
                "a dismissed worker took another request",
            ),
            "d_drain_leaves_early" => (
                || check(|| drained(broken(Bug::DrainLeavesEarly))),
                "draining workers left requests queued",
            ),
            "e_push_checks_open_unlocked" => (
                || check(|| closed(broken(Bug::PushChecksOpenUnlocked))),
                "a request was queued after the final sweep",
            ),
            "f_take_forgets_putters" => (
                || check(|| blocked_put(Replica::new(Some(1), Bug::TakeForgetsPutters))),
                "deadlock",
            ),
            "g3_other_acts_as_waiter" => (
                || check(|| inbox::other_handles_the_last_result(inbox::Misuse::OtherActsAsWaiter)),
                "deadlock",
            ),
            "g6_keep_without_wake" => (
                || {
                    check(|| {
                        inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::KeepWithoutWake)
                    })
                },
                "deadlock",
            ),
            "g4_wake_before_exit" => (
                || check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::WakeBeforeExit)),
                "deadlock",
            ),
            _ => return None,
        };
        Some(model)
    }

    const CHILD_ENV: &str = "CALLPOOL_SEEDED_MODEL";

    /// Runs the seeded model named by `CALLPOOL_SEEDED_MODEL`; only ever
    /// started by [`expect_caught`], in a child process.
    #[test]
    #[ignore = "run in a child process by the seeded_* self-checks"]
    fn seeded_child() {
        let Ok(name) = std::env::var(CHILD_ENV) else {
            return;
        };
        let (model, _) = seeded(&name).expect("unknown seeded model");
        // The parent checks this line: proof that the filter matched this
        // test and the model really started.
        println!("CALLPOOL-SEEDED-RAN {name}");
        model();
    }

    /// Runs the seeded model `name` in a child process and asserts that
    /// loom caught its bug: the child failed, saying `expected`.
    fn expect_caught(name: &str) {
        let (_, expected) = seeded(name).expect("unknown seeded model");
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "models::under_loom::seeded_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, name)
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("could not start the child test process");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !output.status.success(),
            "loom missed the seeded bug {name}:\n{text}"
        );
        assert!(
            text.contains(&format!("CALLPOOL-SEEDED-RAN {name}")),
            "the child process never ran the seeded model {name}:\n{text}"
        );
        assert!(
            text.contains(expected),
            "the seeded model {name} failed, but not with {expected:?}:\n{text}"
        );
    }

    #[test]
    fn seeded_a_notify_before_queueing_is_caught() {
        expect_caught("a_notify_before_queueing");
    }

    #[test]
    fn seeded_b_dismiss_without_lock_is_caught() {
        expect_caught("b_dismiss_without_lock");
    }

    #[test]
    fn seeded_b_dismiss_notifying_one_is_caught() {
        expect_caught("b_dismiss_notifies_one");
    }

    #[test]
    fn seeded_c_pop_before_dismiss_check_is_caught() {
        expect_caught("c_pop_before_dismiss_check");
    }

    #[test]
    fn seeded_d_drain_leaving_early_is_caught() {
        expect_caught("d_drain_leaves_early");
    }

    #[test]
    fn seeded_e_unlocked_open_check_is_caught() {
        expect_caught("e_push_checks_open_unlocked");
    }

    #[test]
    fn seeded_f_take_forgetting_putters_is_caught() {
        expect_caught("f_take_forgets_putters");
    }

    #[test]
    fn seeded_g3_a_non_waiter_handling_as_a_waiter_is_caught() {
        expect_caught("g3_other_acts_as_waiter");
    }

    #[test]
    fn seeded_g6_overflow_without_a_wake_token_is_caught() {
        expect_caught("g6_keep_without_wake");
    }

    #[test]
    fn seeded_g4_waking_before_the_exit_is_counted_is_caught() {
        expect_caught("g4_wake_before_exit");
    }

    /// The replica without its bug's trigger passes the scenarios its
    /// self-checks use, so a self-check fails because of the bug alone.
    #[test]
    fn replica_passes_where_its_bug_is_not_triggered() {
        check(|| taken_once(broken(Bug::DrainLeavesEarly)));
        check(|| idle_dismissed(broken(Bug::NotifyBeforeQueueing)));
        check(|| busy_dismissed(broken(Bug::DrainLeavesEarly)));
        check(|| drained(broken(Bug::PushChecksOpenUnlocked)));
        check(|| closed(broken(Bug::DrainLeavesEarly)));
        check(|| blocked_put(Replica::new(Some(1), Bug::DrainLeavesEarly)));
    }
}

// ---------------------------------------------------------------------------
// Bigger scenarios, for shuttle's random and PCT schedulers.
// ---------------------------------------------------------------------------

/// Many requests: `putters` threads put `each` requests apiece while
/// `workers` workers take them. With `wait_all`, the driver waits until
/// every request was taken while the pool is open (a request stranded beside
/// sleeping workers deadlocks here), then dismisses the workers; without it,
/// a graceful drain (advance to `Draining`, dismiss) runs what is left.
/// Either way every request runs exactly once and nothing is left.
#[cfg(all(shuttle, not(loom)))]
fn many_requests<Q: Queue>(queue: Q, putters: u64, each: u64, workers: usize, wait_all: bool) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let flags: Vec<_> = (0..workers).map(|_| flag()).collect();
    let handles: Vec<_> = flags
        .iter()
        .map(|f| spawn_worker(&queue, f, &progress))
        .collect();
    let putter_threads: Vec<_> = (0..putters)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || {
                for i in 0..each {
                    let job = p * each + i;
                    match queue.push(job) {
                        Push::Queued => {}
                        Push::Full(job) => assert!(queue.push_blocking(job, &|| 1).is_ok()),
                        Push::Closed(_) | Push::QueuedLate => {
                            unreachable!("open until the putters are done")
                        }
                    }
                }
            })
        })
        .collect();
    for p in putter_threads {
        p.join().unwrap();
    }
    if wait_all {
        progress.wait_taken((putters * each) as usize);
    } else {
        queue.advance(Lifecycle::Draining);
    }
    queue.dismiss(&flags.iter().map(|f| &**f).collect::<Vec<_>>());
    let taken: Vec<Vec<u64>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(queue.len(), 0, "draining workers left requests queued");
    let lists: Vec<&[u64]> = taken.iter().map(Vec::as_slice).collect();
    assert_exactly_once(0..putters * each, &lists);
}

/// A resize storm: a resizer thread starts and dismisses workers at random
/// (between 0 and 3 live) while a putter puts `jobs` requests into a
/// bounded queue, blocking when it is full. Workers count themselves as
/// `Shared` does (counted before they start; on exit, the count first, then
/// `wake_putters`), so a put blocked while the last worker leaves gives up
/// with `NoWorkers`. The resizer joins the workers it dismisses at once (as
/// `join_all_dismissed_workers` would), so a dismissed worker that misses
/// its wake-up deadlocks the model. After the storm: at least one worker, a
/// graceful drain. Every request is taken exactly once or handed back to
/// the putter.
#[cfg(all(shuttle, not(loom)))]
fn resize_storm<Q: Queue>(queue: Q, jobs: u64, steps: usize) {
    use shuttle::rand::{thread_rng, Rng};

    struct Worker {
        flag: Arc<WorkerFlags>,
        handle: thread::JoinHandle<Vec<u64>>,
    }

    let queue = Arc::new(queue);
    let progress = Progress::new();
    let threads = Arc::new(AtomicUsize::new(0));
    let start = {
        let (queue, progress, threads) = (queue.clone(), progress.clone(), threads.clone());
        move || {
            let flag = flag();
            threads.fetch_add(1, Ordering::SeqCst);
            let handle = {
                let (queue, flag, progress, threads) = (
                    queue.clone(),
                    flag.clone(),
                    progress.clone(),
                    threads.clone(),
                );
                thread::spawn(move || {
                    let mut taken = Vec::new();
                    while let Some(job) = queue.take(&flag, !taken.is_empty()) {
                        taken.push(job);
                        progress.took_one();
                    }
                    threads.fetch_sub(1, Ordering::SeqCst);
                    queue.wake_putters();
                    taken
                })
            };
            Worker { flag, handle }
        }
    };
    let putter = {
        let (queue, threads) = (queue.clone(), threads.clone());
        thread::spawn(move || {
            let threads_left = move || threads.load(Ordering::SeqCst);
            let mut refused = Vec::new();
            for job in 0..jobs {
                match queue.push(job) {
                    Push::Queued => {}
                    Push::Full(job) => match queue.push_blocking(job, &threads_left) {
                        Ok(()) => {}
                        Err(Blocked::NoWorkers(job)) => refused.push(job),
                        Err(_) => unreachable!("open, no deadline, never stuck"),
                    },
                    Push::Closed(_) | Push::QueuedLate => {
                        unreachable!("open until the storm is over")
                    }
                }
            }
            refused
        })
    };
    let resizer = {
        let queue = queue.clone();
        thread::spawn(move || {
            let mut live: Vec<Worker> = Vec::new();
            let mut gone: Vec<Vec<u64>> = Vec::new();
            let mut rng = thread_rng();
            for _ in 0..steps {
                if live.is_empty() || (live.len() < 3 && rng.gen_bool(0.5)) {
                    live.push(start());
                } else {
                    let n = rng.gen_range(1..=live.len());
                    let leaving = live.split_off(live.len() - n);
                    queue.dismiss(&leaving.iter().map(|w| &*w.flag).collect::<Vec<_>>());
                    gone.extend(leaving.into_iter().map(|w| w.handle.join().unwrap()));
                }
            }
            if live.is_empty() {
                live.push(start());
            }
            (live, gone)
        })
    };
    let refused = putter.join().unwrap();
    let (live, gone) = resizer.join().unwrap();
    queue.advance(Lifecycle::Draining);
    queue.dismiss(&live.iter().map(|w| &*w.flag).collect::<Vec<_>>());
    let mut taken: Vec<Vec<u64>> = live.into_iter().map(|w| w.handle.join().unwrap()).collect();
    taken.extend(gone);
    assert_eq!(threads.load(Ordering::SeqCst), 0);
    let left = queue.take_all();
    assert_eq!(
        left,
        Vec::<u64>::new(),
        "draining workers left requests queued"
    );
    let mut lists: Vec<&[u64]> = taken.iter().map(Vec::as_slice).collect();
    lists.push(&refused);
    assert_exactly_once(0..jobs, &lists);
}

/// A close storm: two putters race with `shutdown_now`'s steps (close,
/// dismiss, sweep) while three workers take. Every request is run, swept or
/// refused, exactly once; nothing is queued after the sweep.
#[cfg(all(shuttle, not(loom)))]
fn close_storm<Q: Queue>(queue: Q, each: u64) {
    let queue = Arc::new(queue);
    let progress = Progress::new();
    let flags: Vec<_> = (0..3).map(|_| flag()).collect();
    let workers: Vec<_> = flags
        .iter()
        .map(|f| spawn_worker(&queue, f, &progress))
        .collect();
    let putters: Vec<_> = (0..2u64)
        .map(|p| {
            let queue = queue.clone();
            thread::spawn(move || {
                let mut refused = Vec::new();
                for job in p * each..(p + 1) * each {
                    match queue.push(job) {
                        Push::Queued => {}
                        Push::QueuedLate => refused.extend(queue.take_all()),
                        Push::Closed(job) => refused.push(job),
                        Push::Full(_) => unreachable!("unbounded"),
                    }
                }
                refused
            })
        })
        .collect();
    shuttle::thread::yield_now();
    queue.advance(Lifecycle::Closed);
    queue.dismiss(&flags.iter().map(|f| &**f).collect::<Vec<_>>());
    let swept = queue.take_all();
    let taken: Vec<Vec<u64>> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    let refused: Vec<Vec<u64>> = putters.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(queue.len(), 0, "a request was queued after the final sweep");
    let mut lists: Vec<&[u64]> = taken.iter().chain(&refused).map(Vec::as_slice).collect();
    lists.push(&swept);
    assert_exactly_once(0..2 * each, &lists);
}

#[cfg(all(shuttle, not(loom)))]
mod under_shuttle {
    use super::*;

    /// Schedules per random check, and per PCT check (depth 3).
    const RANDOM: usize = 3000;
    const PCT: usize = 3000;

    /// The schedulers' seed: fixed, so CI explores the same schedules every
    /// run; set `CALLPOOL_SHUTTLE_SEED` to explore others.
    fn seed() -> u64 {
        std::env::var("CALLPOOL_SHUTTLE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x00ca_11b0_0150_0001)
    }

    /// Runs `model` under the random scheduler, then the PCT scheduler
    /// (depth 3). A failure prints the schedule to replay it.
    fn check(model: impl Fn() + Send + Sync + 'static) {
        let model = std::sync::Arc::new(model);
        let m = model.clone();
        shuttle::check_random_with_seed(move || m(), seed(), RANDOM);
        let pct = shuttle::scheduler::PctScheduler::new_from_seed(seed(), 3, PCT);
        shuttle::Runner::new(pct, Default::default()).run(move || model());
    }

    fn real() -> RequestQueue<u64> {
        RequestQueue::new(None)
    }

    fn real_bounded(cap: usize) -> RequestQueue<u64> {
        RequestQueue::new(Some(cap))
    }

    // The loom scenarios, under shuttle too (cheap, and a second opinion).

    #[test]
    fn small_scenarios() {
        check(|| taken_once(real()));
        check(|| taken_once_or_left(real()));
        check(|| idle_dismissed(real()));
        check(|| one_of_two_dismissed(real()));
        check(|| busy_dismissed(real()));
        check(|| drained(real()));
        check(|| closed(real()));
        check(|| put_racing_drain(real()));
        check(|| extracted(real()));
        check(|| counted_while_swept(real()));
        check(|| counted_twice(real()));
        check(|| blocked_put(real_bounded(1)));
        check(|| two_blocked_puts(real_bounded(1)));
        check(|| blocked_put_no_workers(real_bounded(1)));
    }

    #[test]
    fn wait_protocol_scenarios() {
        check(inbox::wait_woken_by_last_result);
        check(inbox::two_waiters);
        check(|| inbox::other_handles_the_last_result(inbox::Misuse::None));
        check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::None));
        check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::None));
    }

    /// Finds a race in the wait protocol (see `docs/reliability.md`,
    /// "Bugs found"): waiter A takes the last result off the channel; before
    /// A deregisters it, the worker exits, the token wakes waiter B, which
    /// sees no thread and one request pending, and returns
    /// `NoWorkersAvailable { pending: 1 }` for a request that ran (A handles
    /// it an instant later). Replay: the failing schedule printed by this
    /// test with `CALLPOOL_SHUTTLE_SEED` unset.
    #[test]
    fn wait_two_waiters_while_the_last_thread_exits() {
        check(inbox::two_waiters_last_thread_exit);
    }

    #[test]
    fn many_requests_unbounded() {
        check(|| many_requests(real(), 2, 25, 4, true));
        check(|| many_requests(real(), 2, 25, 4, false));
    }

    #[test]
    fn many_requests_bounded() {
        check(|| many_requests(real_bounded(2), 3, 10, 3, true));
        check(|| many_requests(real_bounded(2), 3, 10, 3, false));
    }

    #[test]
    fn resize_storm_bounded() {
        check(|| resize_storm(real_bounded(3), 30, 12));
    }

    #[test]
    fn resize_storm_capacity_one() {
        check(|| resize_storm(real_bounded(1), 20, 12));
    }

    #[test]
    fn close_storm_unbounded() {
        check(|| close_storm(real(), 10));
    }

    // Self-checks: the big scenarios over the seeded broken copy fail.

    #[test]
    #[should_panic(expected = "deadlock")]
    fn seeded_storm_dismiss_without_lock_is_caught() {
        check(|| resize_storm(Replica::new(Some(3), Bug::DismissWithoutLock), 30, 12));
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn seeded_storm_take_forgetting_putters_is_caught() {
        check(|| resize_storm(Replica::new(Some(1), Bug::TakeForgetsPutters), 20, 12));
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn seeded_many_notify_before_queueing_is_caught() {
        check(|| {
            many_requests(
                Replica::new(None, Bug::NotifyBeforeQueueing),
                2,
                25,
                4,
                true,
            )
        });
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn seeded_wait_non_waiter_acting_as_a_waiter_is_caught() {
        check(|| inbox::other_handles_the_last_result(inbox::Misuse::OtherActsAsWaiter));
    }

    #[test]
    #[should_panic(expected = "deadlock")]
    fn seeded_wait_overflow_without_a_wake_token_is_caught() {
        check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::KeepWithoutWake));
    }

    #[test]
    #[should_panic(expected = "a request was queued after the final sweep")]
    fn seeded_close_unlocked_open_check_is_caught() {
        check(|| close_storm(Replica::new(None, Bug::PushChecksOpenUnlocked), 10));
    }
}
