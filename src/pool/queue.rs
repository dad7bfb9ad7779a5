//! The request queue: requests waiting for a worker, the pool's lifecycle,
//! and the sleeping workers and putters.
//!
//! Requests travel through a FIFO ([`Fifo`]: a lock-free ring, with a
//! backlog behind it whose lock a take meets once per chunk), so a put and
//! a take do not wait for each other. A request is counted in before its push (a put
//! *reserves* it) and out after its pop; the count is the difference of two
//! running totals, `claimed` (written by puts only) and `released` (written
//! by takes only), each on a cache line of its own, so a put and a take do
//! not trade a cache line per request. "Put" and "shut down" stay
//! exclusive through a pair of `SeqCst` accesses: a put raises `claimed`
//! and then reads the lifecycle; the closer moves the lifecycle and then
//! reads the count. Either the put sees the pool stopped accepting (and
//! takes its reservation back) or the closer's side sees it counted in (and
//! drains it, or sweeps it, or the putter sweeps it if it pushes after the
//! sweep). A worker's dismissal and its takes meet in one per-worker word
//! ([`WorkerFlags`]), so no dismissed worker takes a request once `dismiss`
//! has returned. Only sleeping and waking go through the lock. See
//! `docs/design.md`, "Put" and "Take".
//!
//! It is generic over the queued item so that the loom and shuttle models
//! (`src/models/`) check this very code with plain numbers as requests;
//! under them the FIFO's ring is a model mutex around a `VecDeque`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::pool::fifo::{Fifo, TRIM_STEP};
use crate::pool::handshake::{Dismissal, WorkerFlags};
use crate::pool::pace::{self, Pace};
use crate::sync::{
    fence, seq_cst_pair, AtomicUsize, CachePadded, Condvar, Mutex, MutexGuard, Ordering,
};

/// Where the pool is in its life; it only moves forward. Stored in the
/// queue's `lifecycle` word as its number, in order, so moving forward is a
/// `fetch_max` that can never move back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lifecycle {
    /// Accepting requests.
    Open = 0,
    /// Shutting down gracefully: no new requests; dismissed workers run what
    /// is queued, then exit.
    Draining = 1,
    /// No worker takes another request; what is queued gets swept out.
    Closed = 2,
}

fn lifecycle_of(word: usize) -> Lifecycle {
    match word {
        0 => Lifecycle::Open,
        1 => Lifecycle::Draining,
        _ => Lifecycle::Closed,
    }
}

fn word_of(lifecycle: Lifecycle) -> usize {
    lifecycle as usize
}

pub(crate) struct RequestQueue<J> {
    jobs: Fifo<J>,
    /// The requests counted in and out, as two running totals: `claimed`
    /// (reservations, each made before its push; a refused one is taken
    /// back) and `released` (requests counted out after their pop). Their
    /// difference is the count; above zero with an empty FIFO, a put or a
    /// take is half-way. Puts write only `claimed` and takes only
    /// `released`, each on a cache line of its own, so a put and a take do
    /// not pass a line back and forth for every request.
    claimed: CachePadded<AtomicUsize>,
    released: CachePadded<AtomicUsize>,
    /// [`Lifecycle`] as a number; written a few times in the pool's life, read
    /// by every put and take.
    lifecycle: CachePadded<AtomicUsize>,
    /// `None`: unbounded.
    capacity: Option<usize>,
    /// Mirror of `sleeping - to_wake` (sleeping workers not already being
    /// woken), written under the lock, so that puts and takes only take
    /// the lock when there is someone to wake.
    wakeable: AtomicUsize,
    /// Workers spinning for a request (`pace::spin_for_work`). Each looks
    /// at the FIFO once its spin ends, so a put that finds no more
    /// requests queued than workers spinning wakes no sleeper: a wake-up
    /// costs the putter a system call, and the woken worker takes a core
    /// the spinner or the putter needs, to find the request gone as often
    /// as not. A worker whose look after a spin or a sleep takes a request
    /// and leaves others, or leaves, wakes a sleeper for them
    /// (`pass_wake_on`).
    spinning: AtomicUsize,
    /// Mirror of `State::putters`, written under the lock, so that a take
    /// on a bounded queue takes the lock only when a putter waits for room
    /// (`uncount`).
    blocked_putters: AtomicUsize,
    state: Mutex<State>,
    /// Wakes sleeping workers: a request was queued, or a worker was
    /// dismissed, or the pool closed.
    work: Condvar,
    /// Wakes putters blocked on a full queue: a slot was freed, a worker is
    /// stuck on a full result queue, or the pool lost its last thread or closed.
    space: Condvar,
    /// Held by whoever takes requests out of the FIFO other than one at a
    /// time (`take_all`, `rearrange`): a sweep must never meet the FIFO
    /// empty while a rearrange holds its requests (they would come back into
    /// a closed queue after the sweep), and two rearranges must not split
    /// the requests between them (each would count only its share). Puts
    /// and takes never touch it.
    rearranging: Mutex<()>,
}

/// What only changes under the lock: who sleeps.
struct State {
    /// Workers blocked in `work.wait`.
    sleeping: usize,
    /// `notify_one` calls not yet matched by a waking worker. Never more than
    /// the notifications really in flight, so a put that sees
    /// `sleeping <= to_wake` can rely on a woken worker finding its request.
    to_wake: usize,
    /// Putters blocked in `space.wait`.
    putters: usize,
    /// Idle workers of an autoscaling pool asleep with no keep-alive (the
    /// pool was at its minimum when they asked to leave): roused when it
    /// grows past it (`rouse_unarmed`).
    unarmed: usize,
}

/// What became of a request handed to [`RequestQueue::push`].
pub(crate) enum Push<J> {
    /// Queued: a worker runs it, or a sweep hands it back or cancels it.
    Queued,
    /// Queued, but the pool closed while it was being pushed and the closing
    /// sweep may have missed it: the caller must sweep.
    QueuedLate,
    /// Refused: the bounded queue has no room.
    Full(J),
    /// Refused: the pool's lifecycle no longer admits it.
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

/// Which lifecycles a batch may still be queued in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Admit {
    /// Only while the pool accepts requests (a handle's batch).
    WhileOpen,
    /// Also while it drains (a running callable's children, accepted
    /// before the drain began: a graceful shutdown runs what was accepted).
    /// Safe because the worker that queues them is alive and drains the
    /// queue before it leaves, and the count it raises keeps the other
    /// draining workers in too.
    UntilClosed,
}

/// What an idle worker's asking to retire came to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Retirement {
    /// Out of the pool (dismissed): it leaves at its next look.
    Retired,
    /// Requests are queued: it looks for one, and if another worker took
    /// it, sleeps its keep-alive again and asks again.
    NotNow,
    /// The pool is at its minimum, or not open: it sleeps with no timeout
    /// (no periodic wake-up) until it runs a request, or the pool grows
    /// past its minimum (`RequestQueue::rouse_unarmed`): then its
    /// keep-alive starts again.
    Stays,
}

/// How an idle worker of an autoscaling pool may leave: after sleeping
/// `after` with no work, it asks `retire`, which takes it out of the pool
/// (and sets its dismissal flag) if the pool is above its minimum.
pub(crate) struct Idle<'a> {
    pub(crate) after: Duration,
    pub(crate) retire: &'a dyn Fn() -> Retirement,
    /// Whether the pool has more live workers than its minimum: read by a
    /// worker told `Stays`, under the queue's lock, before it sleeps.
    pub(crate) above_min: &'a dyn Fn() -> bool,
}

/// What a worker does before it sleeps, besides looking at the queue: lets
/// go of what a sleeping worker must not keep, and queues requests held
/// outside the queue (children that running callables have not queued
/// yet, `pool::nursery`). In the unit tests and the models, a closure
/// does the first alone.
pub(crate) trait BeforeSleep {
    /// Runs once a look has found the queue empty, before the worker spins
    /// or sleeps: lets go of what an idle worker must not keep (the
    /// emptied boxes it holds for their handle, `pool::worker`).
    #[inline(always)]
    fn found_empty(&mut self) {}
    /// Runs before each sleep; whether it queued requests, in which case
    /// the worker looks again instead of sleeping.
    fn prepare(&mut self) -> bool;
    /// Whether requests are held outside the queue: read once the worker
    /// is counted asleep (the read of the pair with a holder's, `SeqCst`);
    /// if so, the worker does not sleep but prepares again.
    fn held_elsewhere(&self) -> bool;
}

/// For the unit tests and the models, whose workers hold nothing elsewhere.
#[cfg(any(test, loom, shuttle))]
impl<F: FnMut()> BeforeSleep for F {
    fn prepare(&mut self) -> bool {
        self();
        false
    }

    fn held_elsewhere(&self) -> bool {
        false
    }
}

/// How a worker's sleep ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slept {
    /// Woken (or never slept): look again.
    Woke,
    /// Its keep-alive passed with no work.
    TimedOut,
    /// It must leave (draining, nothing left).
    Leave,
    /// It had no keep-alive, and the pool has grown past its minimum: it
    /// starts its keep-alive again.
    Rearm,
}

/// What one look for a request found (`RequestQueue::look`).
enum Look<J> {
    /// A request, popped and counted out.
    Took(J),
    /// The worker must leave: dismissed, or the pool stopped, and it is
    /// not draining.
    Leave,
    /// The FIFO was empty; `leaving`: dismissed or stopped, but draining.
    Empty { leaving: bool },
}

/// Why a reservation failed.
enum Refused {
    Full,
    Closed,
}

impl<J> RequestQueue<J> {
    pub(crate) fn new(capacity: Option<usize>) -> RequestQueue<J> {
        RequestQueue {
            jobs: Fifo::new(),
            claimed: CachePadded::new(AtomicUsize::new(0)),
            released: CachePadded::new(AtomicUsize::new(0)),
            lifecycle: CachePadded::new(AtomicUsize::new(word_of(Lifecycle::Open))),
            capacity,
            wakeable: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            blocked_putters: AtomicUsize::new(0),
            state: Mutex::new(State {
                sleeping: 0,
                to_wake: 0,
                putters: 0,
                unarmed: 0,
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            rearranging: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding this lock (no user code runs under
        // it), so a poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rearranging(&self) -> MutexGuard<'_, ()> {
        // Guards no data: a panic under it (in `sort`) leaves nothing torn.
        self.rearranging.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request in if the pool is open and the queue has room.
    fn reserve(&self) -> Result<(), Refused> {
        self.reserve_within(self.capacity)
    }

    /// Counts a request in if the pool is open and fewer than `capacity`
    /// (`None`: any number) are counted.
    fn reserve_within(&self, capacity: Option<usize>) -> Result<(), Refused> {
        // After shutdown, refused without touching `claimed`, and as shut
        // down even when a bounded queue is also full. The look after the
        // reservation below is the one that decides a race.
        if self.lifecycle() != Lifecycle::Open {
            return Err(Refused::Closed);
        }
        // SeqCst throughout: `claimed` pairs with the lifecycle's moves (just
        // below), with draining workers (`sleep`) and with blocked putters
        // (`push_blocking`).
        match capacity {
            None => {
                self.claimed.fetch_add(1, Ordering::SeqCst);
            }
            Some(cap) => {
                self.claimed
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |claimed| {
                        // Read after `claimed`, so at least as new: the
                        // difference never understates the count at the
                        // swap (no overfilling); if `released` passed this
                        // `claimed`, a put raised it and the swap fails.
                        let released = self.released.load(Ordering::SeqCst);
                        (claimed.saturating_sub(released) < cap).then_some(claimed + 1)
                    })
                    .map_err(|_| Refused::Full)?;
            }
        }
        // The pair with `advance`: either we see the pool stopped accepting,
        // or every count read after its move (a draining worker's) sees us.
        seq_cst_pair();
        if self.lifecycle() != Lifecycle::Open {
            self.unreserve();
            return Err(Refused::Closed);
        }
        Ok(())
    }

    /// Counts `n` requests in at once, past any capacity, if `admit`
    /// allows the pool's lifecycle: `reserve_within(None)` for a whole
    /// batch, one read-modify-write of `claimed` instead of `n`.
    fn reserve_many(&self, n: usize, admit: Admit) -> Result<(), Refused> {
        let refused = |lifecycle: Lifecycle| match admit {
            Admit::WhileOpen => lifecycle != Lifecycle::Open,
            Admit::UntilClosed => lifecycle == Lifecycle::Closed,
        };
        if refused(self.lifecycle()) {
            return Err(Refused::Closed);
        }
        // SeqCst: as in `reserve_within`.
        self.claimed.fetch_add(n, Ordering::SeqCst);
        seq_cst_pair();
        if refused(self.lifecycle()) {
            self.unreserve_many(n);
            return Err(Refused::Closed);
        }
        Ok(())
    }

    /// Takes back a reservation the pool refused (it stopped accepting), and
    /// wakes draining workers if that was the last request counted in.
    fn unreserve(&self) {
        self.unreserve_many(1);
    }

    fn unreserve_many(&self, n: usize) {
        // SeqCst: the write of the pair with `uncount` (its read is ours below).
        let claimed = self.claimed.fetch_sub(n, Ordering::SeqCst) - n;
        seq_cst_pair();
        if claimed == self.released.load(Ordering::SeqCst) {
            self.wake_drainers();
        }
    }

    /// Wakes every sleeping worker: the pool stopped accepting and the count
    /// reached zero, so draining workers leave.
    fn wake_drainers(&self) {
        // Taking the lock orders this notify after a draining worker's check
        // of the count (see `sleep`).
        drop(self.lock());
        self.work.notify_all();
    }

    /// Pushes a counted-in request and wakes one sleeping worker if none is
    /// already being woken, unless a spinning worker is there for it.
    /// Returns `false` if the pool closed meanwhile.
    fn push_counted(&self, job: J) -> bool {
        self.jobs.push(job);
        // SeqCst fence, paired with the one a worker puts between counting
        // itself asleep and looking at the FIFO (`sleep`): either it sees
        // this request or we see it asleep. Paired too with a spinner's,
        // between counting itself out of its spin and looking
        // (`wait_and_look`): either it sees this request or we see it
        // spinning no more. Paired too with the closer's,
        // between moving the lifecycle and sweeping (`take_all`): either the
        // sweep sees this request or we see the pool closed.
        fence(Ordering::SeqCst);
        let closed = self.lifecycle() == Lifecycle::Closed;
        // SeqCst: the reads of the pairs (see the fence above). Each
        // spinning worker takes one request when its spin ends: a put
        // leaves that many queued to them and wakes a sleeper for any
        // beyond. Left to the spinner to pass on (`pass_wake_on`), a
        // burst would find the sleeper still counted asleep, and an
        // autoscaling pool (which grows only once no sleeper is left)
        // would not grow for it.
        if self.wakeable.load(Ordering::SeqCst) > 0 {
            let spinning = self.spinning.load(Ordering::SeqCst);
            if spinning == 0 || self.len() > spinning {
                self.wake_many(1);
            }
        }
        !closed
    }

    /// Wakes up to `n` sleeping workers, less those already being woken.
    fn wake_many(&self, n: usize) {
        let mut state = self.lock();
        let wake = n.min(state.sleeping.saturating_sub(state.to_wake));
        if wake > 0 {
            state.to_wake += wake;
            self.publish_wakeable(&state);
        }
        drop(state);
        // Notified after unlocking so the woken workers do not block on the lock.
        for _ in 0..wake {
            self.work.notify_one();
        }
    }

    /// For a worker out of its spin or its sleep that took a request or
    /// leaves: puts that saw it spinning woke nobody, so it wakes a sleeper
    /// for each request left (all at once: a burst put while it spun must
    /// not start one worker per wake-up's latency).
    fn pass_wake_on(&self) {
        // The FIFO first, then the count (which may also hold puts still
        // half-way: a wake-up too many costs a look). SeqCst: read as
        // `push_counted` reads them.
        if !self.jobs.is_empty() && self.wakeable.load(Ordering::SeqCst) > 0 {
            self.wake_many(self.len());
        }
    }

    /// Pushes counted-in requests and wakes as many sleeping workers as
    /// there are requests, less those already being woken. Returns `false`
    /// if the pool closed meanwhile. `push_counted` for a batch: the same
    /// fence and the same look at the lifecycle, once.
    fn push_counted_many(&self, jobs: &mut Vec<J>) -> bool {
        let n = jobs.len();
        self.jobs.push_many(jobs);
        // SeqCst fence: as in `push_counted`, once for the batch.
        fence(Ordering::SeqCst);
        let closed = self.lifecycle() == Lifecycle::Closed;
        // SeqCst: the read of the pair (see `push_counted`). Spinners are
        // not counted against the batch, as `push_counted` counts them
        // against one request: a sleeper woken too many costs one look, and
        // a batch left to the spinners alone would start too few workers.
        if self.wakeable.load(Ordering::SeqCst) > 0 {
            self.wake_many(n);
        }
        !closed
    }

    /// Queues a batch of requests with one reservation, past any capacity
    /// (children handed off by a worker must never wait for room, see
    /// `push_past_capacity`), if `admit` allows the lifecycle. Queued
    /// requests are drained out of `jobs` (its capacity stays, for the next
    /// batch); `Closed` hands the whole batch back.
    pub(crate) fn push_many(&self, jobs: &mut Vec<J>, admit: Admit) -> Push<Vec<J>> {
        if jobs.is_empty() {
            return Push::Queued;
        }
        match self.reserve_many(jobs.len(), admit) {
            Ok(()) => {
                if self.push_counted_many(jobs) {
                    Push::Queued
                } else {
                    Push::QueuedLate
                }
            }
            Err(_) => Push::Closed(std::mem::take(jobs)),
        }
    }

    fn queue_counted(&self, job: J) -> Push<J> {
        if self.push_counted(job) {
            Push::Queued
        } else {
            Push::QueuedLate
        }
    }

    /// Queues a request if the pool is open and the queue has room.
    pub(crate) fn push(&self, job: J) -> Push<J> {
        match self.reserve() {
            Ok(()) => self.queue_counted(job),
            Err(Refused::Full) => Push::Full(job),
            Err(Refused::Closed) => Push::Closed(job),
        }
    }

    /// Queues a request even past the capacity, if the pool is open: for a
    /// put from one of the pool's own workers, which must never wait for
    /// room (it would wait for itself). The count goes above the capacity
    /// until takes bring it back; other putters wait for room meanwhile.
    pub(crate) fn push_past_capacity(&self, job: J) -> Push<J> {
        match self.reserve_within(None) {
            Ok(()) => self.queue_counted(job),
            Err(_) => Push::Closed(job),
        }
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
    ) -> Result<Push<J>, Blocked<J>> {
        let mut state = self.lock();
        // Counted as blocked before trying: a take that frees a slot after
        // our try sees the count and notifies (see `uncount`).
        state.putters += 1;
        self.blocked_putters.store(state.putters, Ordering::SeqCst);
        let refused: Option<fn(J) -> Blocked<J>> = loop {
            // SeqCst fence, paired with `uncount`'s (see there).
            fence(Ordering::SeqCst);
            match self.reserve() {
                Ok(()) => break None,
                Err(Refused::Closed) => break Some(Blocked::Closed),
                // Checked under the lock that a stuck worker takes to notify
                // `space`: either we see its mark here, or its notify finds
                // us waiting.
                Err(Refused::Full) if stuck(&job) => break Some(Blocked::HandleResults),
                Err(Refused::Full) if threads_left() == 0 => break Some(Blocked::NoWorkers),
                Err(Refused::Full) => {}
            }
            state = match deadline {
                None => self.space.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break Some(Blocked::Timeout);
                    };
                    self.space
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        };
        state.putters -= 1;
        // Lowered under the lock: a take that still reads the old count
        // only takes the lock and notifies for nothing.
        self.blocked_putters.store(state.putters, Ordering::SeqCst);
        drop(state);
        match refused {
            None => Ok(self.queue_counted(job)),
            Some(refusal) => Err(refusal(job)),
        }
    }

    /// For a worker: the next request, blocking (with no timeout) while the
    /// queue is empty (after a short spin if the worker just ran one, see
    /// [`Pace`]). `None` when the worker must exit: it was dismissed (after
    /// draining the queue, if the pool is draining) or the pool closed.
    ///
    /// `before_sleep` runs each time the worker is about to sleep.
    ///
    /// With `idle`, a sleep lasts at most its keep-alive; a worker that then
    /// retires is dismissed and leaves at its next look. One that may not
    /// (the pool is at its minimum) sleeps untimed until it runs a request
    /// again or the pool grows past its minimum (`rouse_unarmed`): an idle
    /// pool never wakes up periodically.
    #[inline]
    pub(crate) fn take(
        &self,
        flags: &WorkerFlags,
        pace: &mut Pace,
        before_sleep: impl BeforeSleep,
        idle: Option<&Idle<'_>>,
    ) -> Option<J> {
        // The common case, a request waiting, is the first look alone,
        // inline: the waiting loop's state is set up only when it is needed.
        match self.look(flags) {
            Look::Took(job) => Some(job),
            Look::Leave => None,
            Look::Empty { leaving } => self.wait_and_look(flags, pace, before_sleep, idle, leaving),
        }
    }

    /// One look for a request, steps 1 and 2 of a take (`docs/design.md`,
    /// "Take"): within the dismissal handshake, leave if dismissed or the
    /// pool stopped (unless it drains), else pop and count out what was
    /// popped.
    #[inline]
    fn look(&self, flags: &WorkerFlags) -> Look<J> {
        let dismissal = flags.begin_take();
        let lifecycle = self.lifecycle();
        let leaving = dismissal != Dismissal::No || lifecycle != Lifecycle::Open;
        // While the pool drains, every worker runs what is queued, except
        // one dismissed before the drain began: it takes no other request.
        let drains = lifecycle == Lifecycle::Draining && dismissal != Dismissal::Leave;
        if leaving && !drains {
            flags.end_take();
            return Look::Leave;
        }
        let job = self.jobs.pop();
        flags.end_take();
        match job {
            Some(job) => {
                self.uncount();
                Look::Took(job)
            }
            None => Look::Empty { leaving },
        }
    }

    /// `take` after a look found nothing: spins, frees a step of surplus
    /// backlog chunks, or sleeps, then looks again, until it takes a
    /// request or must leave. `leaving`: what the last look said (a
    /// draining worker that was dismissed or whose pool stopped accepting).
    #[inline(never)]
    fn wait_and_look(
        &self,
        flags: &WorkerFlags,
        pace: &mut Pace,
        mut before_sleep: impl BeforeSleep,
        idle: Option<&Idle<'_>>,
        mut leaving: bool,
    ) -> Option<J> {
        before_sleep.found_empty();
        let mut spun = !pace.just_ran;
        let mut keep_alive = idle.map(|idle| idle.after);
        // When this idle period began: its keep-alive runs from then, across
        // wake-ups that bring this worker nothing (another worker's retirement or
        // dismissal wakes every sleeper): restarted at each, the idle
        // workers would leave one per keep-alive, and a pool dismissed
        // from often enough would never shrink.
        let mut idle_since: Option<Instant> = None;
        loop {
            if !spun {
                spun = true;
                // Watches the FIFO, not the count: a count that a put has
                // raised but not yet pushed for would send us to `sleep` for
                // nothing. Relaxed: hints; the look after it decides.
                let arrived = || {
                    !self.jobs.is_empty()
                        || self.lifecycle.load(Ordering::Relaxed) != word_of(Lifecycle::Open)
                        || flags.dismissed_hint()
                };
                // Counted while it spins: see `spinning`. Under loom the
                // count and the fence stay, with no spin between them (a
                // spin of as many looks as the clock allows is no model):
                // a put may still see this worker spinning and wake nobody.
                self.spinning.fetch_add(1, Ordering::SeqCst);
                let quick = cfg!(not(loom))
                    && pace::spin_for_work(pace.close_behind(), arrived, || self.len());
                // SeqCst, and a fence before the look below: the write of
                // the pair with `push_counted` (either that put saw us
                // spinning no more and woke a sleeper, or our look sees its
                // request).
                self.spinning.fetch_sub(1, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                pace.caught_up(quick);
            } else if cfg!(not(loom)) && self.jobs.trim_spares(TRIM_STEP) {
                // Emptied backlog chunks beyond the few kept are freed
                // before sleeping, a step at a time with a look between
                // steps. Not under loom: memory, not the protocol, and a
                // lock that would only grow the models' state space.
            } else if before_sleep.prepare() {
                // Queued requests held elsewhere: look, not sleep.
            } else {
                pace.slept();
                // What is left of the keep-alive: a subtraction, so that no
                // keep-alive (`Duration::MAX` included) overflows the clock.
                let timeout = keep_alive.filter(|_| !leaving).map(|after| {
                    after.saturating_sub(idle_since.get_or_insert_with(Instant::now).elapsed())
                });
                // Told `Stays`: it asks the pool, once counted asleep,
                // whether it has grown past its minimum since.
                let unarmed = idle
                    .filter(|_| keep_alive.is_none() && !leaving)
                    .map(|idle| idle.above_min);
                match self.sleep(flags, leaving, timeout, unarmed, &before_sleep) {
                    Slept::Woke => {}
                    Slept::Leave => return None,
                    Slept::Rearm => {
                        keep_alive = idle.map(|idle| idle.after);
                        idle_since = None;
                    }
                    Slept::TimedOut => {
                        // Outside the queue's lock: `retire` takes the
                        // registry's, which is taken before this one
                        // everywhere else.
                        if idle.map(|idle| (idle.retire)()) == Some(Retirement::Stays) {
                            // Refused for good (at the minimum): no timeout
                            // until the next request or `Slept::Rearm`, so
                            // an idle pool never wakes up.
                            keep_alive = None;
                        }
                        // Refused for now (requests queued, which another
                        // worker may take first): the keep-alive stays, or
                        // this worker would never leave, and runs again
                        // from now.
                        idle_since = None;
                    }
                }
            }
            match self.look(flags) {
                Look::Took(job) => {
                    self.pass_wake_on();
                    return Some(job);
                }
                Look::Leave => {
                    self.pass_wake_on();
                    return None;
                }
                Look::Empty { leaving: now } => leaving = now,
            }
        }
    }

    /// Counts a request out (popped, or swept), and wakes whoever may wait
    /// for that: draining workers when the count reaches zero after the pool
    /// stopped accepting, blocked putters when the queue is bounded.
    /// Inlined into the worker's take (once per request); the bounded
    /// queue's part stays out of line.
    #[inline]
    fn uncount(&self) {
        // SeqCst: the write of the pair with `unreserve` (and the count that
        // `sleep` and blocked putters read).
        let released = self.released.fetch_add(1, Ordering::SeqCst) + 1;
        seq_cst_pair();
        // While the pool is open (every take but the last few) only the
        // lifecycle's line is read: `claimed` stays with the putters.
        if self.lifecycle() != Lifecycle::Open && self.claimed.load(Ordering::SeqCst) == released {
            self.wake_drainers();
        }
        if self.capacity.is_some() {
            self.room_made();
        }
    }

    /// For a bounded queue, after a count-out: wakes the putters blocked
    /// for room, if any.
    #[inline(never)]
    fn room_made(&self) {
        // SeqCst fence, paired with a blocked putter's between counting
        // itself blocked and reserving: either it sees the room or we see
        // it waiting.
        fence(Ordering::SeqCst);
        if self.blocked_putters.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this notify after the putter's check.
            drop(self.lock());
            self.space.notify_all();
        }
    }

    /// Sleeps until woken, unless work (in the queue, or held elsewhere:
    /// `BeforeSleep::held_elsewhere`), a dismissal or a lifecycle change
    /// shows up once this worker is counted as sleeping. A draining worker
    /// sleeps only while a put or a take is half-way (the count is above
    /// zero, the FIFO empty). `draining`: the worker is such a one (what
    /// `take`'s last look called `leaving`). Says how the sleep ended
    /// ([`Slept`]).
    fn sleep(
        &self,
        flags: &WorkerFlags,
        draining: bool,
        timeout: Option<Duration>,
        unarmed: Option<&dyn Fn() -> bool>,
        before_sleep: &impl BeforeSleep,
    ) -> Slept {
        let mut state = self.lock();
        state.sleeping += 1;
        self.publish_wakeable(&state);
        // SeqCst fence: pairs with the putter's after its push
        // (`push_counted`), and sits between this count and the look at
        // children held elsewhere (`held_elsewhere`, the pair with a
        // holder's `Nursery::hold` and look at the sleepers).
        fence(Ordering::SeqCst);
        // A dismissal, a lifecycle move and (while draining) the count
        // reaching zero are all written or notified under the lock we hold
        // until `wait` releases it.
        let lifecycle = self.lifecycle();
        // Children held in slots keep it from leaving and from sleeping:
        // the drain runs them too, once this worker has queued them.
        let held = before_sleep.held_elsewhere();
        let leave = draining && self.len() == 0 && !held;
        // Moved since `take` looked: past `Open` for a worker that was not
        // draining, to `Closed` for one that was.
        let lifecycle_moved = match lifecycle {
            Lifecycle::Open => false,
            Lifecycle::Draining => !draining,
            Lifecycle::Closed => true,
        };
        // An unarmed worker whose pool grew past its minimum while it was
        // not counted here: the grower, having published the count, takes
        // this lock to rouse the unarmed (`rouse_unarmed`); before us, we
        // see the count; after us, it sees us counted and wakes us.
        let rearm = unarmed.is_some_and(|above_min| above_min());
        let quiet = !leave
            && !rearm
            && !lifecycle_moved
            && (draining || !flags.is_dismissed())
            && self.jobs.is_empty()
            && !held;
        let mut timed_out = false;
        let counted_unarmed = quiet && unarmed.is_some();
        if counted_unarmed {
            state.unarmed += 1;
        }
        if quiet {
            state = match timeout {
                None => self.work.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(timeout) => {
                    let (state, result) = self
                        .work
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(|e| e.into_inner());
                    // A notify that raced the timeout may be reported as a
                    // timeout: whoever retires looks at the FIFO first.
                    timed_out = result.timed_out();
                    state
                }
            };
        }
        state.sleeping -= 1;
        if counted_unarmed {
            state.unarmed -= 1;
        }
        if quiet {
            // Whether this was our notify, another's, or a spurious wake-up,
            // one fewer is in flight at most: undercounting only costs an
            // extra notify later, overcounting could strand a request.
            state.to_wake = state.to_wake.saturating_sub(1);
        }
        state.to_wake = state.to_wake.min(state.sleeping);
        self.publish_wakeable(&state);
        if leave {
            Slept::Leave
        } else if rearm {
            Slept::Rearm
        } else if timed_out {
            Slept::TimedOut
        } else {
            Slept::Woke
        }
    }

    /// After an autoscaling pool grew past its minimum (its count
    /// published first): wakes the idle workers sleeping with no keep-alive,
    /// so that they start one and leave if they stay idle, rather than stay
    /// while the workers started after them run the requests.
    pub(crate) fn rouse_unarmed(&self) {
        let state = self.lock();
        let any = state.unarmed > 0;
        drop(state);
        // Notified after unlocking: one counted unarmed under the lock
        // waits until notified (or wakes spuriously, and looks again).
        if any {
            self.work.notify_all();
        }
    }

    /// Whether the FIFO holds no request (a retiring worker's last look).
    pub(crate) fn fifo_is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Sleeping workers not yet being woken: how many of a batch about to
    /// be pushed they will take, so that an autoscaling pool starts
    /// workers for the rest only.
    pub(crate) fn asleep(&self) -> usize {
        // Relaxed: a hint for how many workers to start; the push's own
        // look (SeqCst) decides whom it wakes.
        self.wakeable.load(Ordering::Relaxed)
    }

    /// Whether no sleeping worker is left to wake: a request just queued
    /// waits for a busy worker (autoscaling grows the pool then), and a
    /// child just held waits for a worker to go idle.
    pub(crate) fn none_to_wake(&self) -> bool {
        // SeqCst: as `push_counted` reads it; for a held child, the read of
        // the pair with `sleep`'s count (after `Nursery::hold`).
        self.wakeable.load(Ordering::SeqCst) == 0
    }

    fn publish_wakeable(&self, state: &State) {
        // SeqCst: in `sleep`, the write of the pair with `push_counted` (and
        // with a holder's look for sleepers, `none_to_wake`).
        self.wakeable
            .store(state.sleeping - state.to_wake, Ordering::SeqCst);
    }

    /// Dismisses the workers whose flags are given: sets each flag under the
    /// lock, wakes every sleeping worker so the dismissed ones leave now, and
    /// returns once none of them is half-way through a take.
    pub(crate) fn dismiss<'a>(&self, flags: impl IntoIterator<Item = &'a WorkerFlags>) {
        let mut flags = flags.into_iter().peekable();
        if flags.peek().is_none() {
            // A dismissal of nobody (`dismiss_workers(0)`, a resize to the
            // current count) wakes nobody: a wake-up for nothing costs a
            // sleeper a look.
            return;
        }
        let state = self.lock();
        // Read under the lock `advance` writes it under: a shutdown advances
        // to `Draining` and then dismisses, so its workers drain; any other
        // dismissal comes while the pool is open, and its workers leave.
        let to_drain = self.lifecycle() == Lifecycle::Draining;
        let taking: Vec<&WorkerFlags> = flags.filter(|f| f.dismiss(to_drain)).collect();
        let any_sleeping = state.sleeping > 0;
        drop(state);
        if any_sleeping {
            self.work.notify_all();
        }
        for flag in taking {
            flag.wait_take_ended();
        }
    }

    /// Moves the lifecycle forward (never back) and wakes every sleeper, so
    /// workers and blocked putters re-check it. Returns the previous state.
    pub(crate) fn advance(&self, to: Lifecycle) -> Lifecycle {
        // Under the lock: a worker about to sleep reads the word under it.
        let state = self.lock();
        // SeqCst: the write of the pair with `reserve`.
        let before = lifecycle_of(self.lifecycle.fetch_max(word_of(to), Ordering::SeqCst));
        seq_cst_pair();
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

    /// Workers asleep in `sleep` (a gauge, for statistics).
    pub(crate) fn sleeping(&self) -> usize {
        self.lock().sleeping
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        // SeqCst: see `reserve`.
        lifecycle_of(self.lifecycle.load(Ordering::SeqCst))
    }

    /// Requests reserved in the queue (a put half-way through counts).
    pub(crate) fn len(&self) -> usize {
        // `released` first: it never passes what `claimed` held before it
        // (a request is counted out after it was counted in), so the
        // difference never undercounts.
        let released = self.released.load(Ordering::SeqCst);
        self.claimed.load(Ordering::SeqCst).saturating_sub(released)
    }

    /// For a closed pool (or one whose workers are all gone, in the models):
    /// takes every request in the FIFO out and wakes
    /// blocked putters. A put still half-way sees the pool closed after its
    /// push and sweeps itself (`Push::QueuedLate`); a worker that began its
    /// take before the close may still take one (each request goes to
    /// exactly one of us).
    pub(crate) fn take_all(&self) -> VecDeque<J> {
        // Waits for a rearrange to put its requests back (see `rearranging`).
        let _rearranging = self.rearranging();
        // SeqCst fence: pairs with the putter's after its push (`push_counted`).
        fence(Ordering::SeqCst);
        let mut jobs = VecDeque::new();
        while let Some(job) = self.jobs.pop() {
            self.uncount();
            jobs.push_back(job);
        }
        self.space.notify_all();
        jobs
    }

    /// Takes every request now in the FIFO out, hands them to `sort`, and
    /// puts back, in their order, those it returns; the count stays as it
    /// was for those. A worker that meets the FIFO empty meanwhile may go to
    /// sleep: each request put back wakes one, as a put does (model (h)).
    /// In a pool that closed meanwhile, what goes back is swept by the
    /// closer's `take_all`, which waits for us (models (i) and (j)).
    fn rearrange(&self, sort: impl FnOnce(Vec<J>) -> Vec<J>) {
        let _rearranging = self.rearranging();
        let mut all = Vec::new();
        while let Some(job) = self.jobs.pop() {
            all.push(job);
        }
        for job in sort(all) {
            // As a put pushes: a worker that met the FIFO empty meanwhile
            // may have gone to sleep, and must be woken for this job.
            self.push_counted(job);
        }
    }

    /// How many queued requests `mine` holds for. Only for a pool with no
    /// thread left (no worker takes meanwhile): it takes the requests out
    /// and puts them back, behind any put that lands meanwhile.
    pub(crate) fn count(&self, mine: impl Fn(&J) -> bool) -> usize {
        let mut n = 0;
        self.rearrange(|all| {
            n = all.iter().filter(|job| mine(job)).count();
            all
        });
        n
    }

    /// Takes out the first queued request for which `mine` holds (a
    /// helping wait's take, `worker::help`). Only those queued ahead of it
    /// are taken apart: they go back, in their order, behind any put that
    /// lands meanwhile, and those behind it stay where they are. So a wait
    /// that takes its `k` requests one at a time looks at the `q` others
    /// ahead of them once, not once per take (`O(k + q)`, not `O(k q)`),
    /// and finds the rest at the front. Under the rearranging lock, as any
    /// rearrangement (see `rearrange`).
    pub(crate) fn take_first(&self, mine: impl Fn(&J) -> bool) -> Option<J> {
        let rearranging = self.rearranging();
        let mut ahead = Vec::new();
        let mut found = None;
        while let Some(job) = self.jobs.pop() {
            if mine(&job) {
                found = Some(job);
                break;
            }
            ahead.push(job);
        }
        if !ahead.is_empty() {
            // As a batch put pushes (one fence, the sleepers it needs
            // woken): see `rearrange`.
            self.push_counted_many(&mut ahead);
        }
        drop(rearranging);
        if found.is_some() {
            self.uncount();
        }
        found
    }

    /// Takes out the queued requests for which `mine` holds; the others go
    /// back in their order (behind any put that lands meanwhile).
    pub(crate) fn take_own(&self, mine: impl Fn(&J) -> bool) -> Vec<J> {
        let mut own = Vec::new();
        self.rearrange(|all| {
            let (mine, others): (Vec<J>, Vec<J>) = all.into_iter().partition(|job| mine(job));
            own = mine;
            others
        });
        for _ in &own {
            self.uncount();
        }
        own
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use crate::pool::fifo::SPARE_CHUNKS;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    /// A worker frees a burst's surplus backlog chunks before it sleeps,
    /// not while it takes: once it has taken every request of a long
    /// backlog, every emptied chunk is still kept; once it sleeps, only
    /// the few kept for the next backlog are.
    #[test]
    fn a_worker_frees_surplus_chunks_before_it_sleeps() {
        const N: usize = 200_000;
        let queue: Arc<RequestQueue<usize>> = Arc::new(RequestQueue::new(None));
        let mut jobs: Vec<usize> = (0..N).collect();
        assert!(matches!(
            queue.push_many(&mut jobs, Admit::WhileOpen),
            Push::Queued
        ));
        let taken = Arc::new(AtomicUsize::new(0));
        let (kept_after_last_take_tx, kept_after_last_take) = std::sync::mpsc::channel();
        let worker = {
            let (queue, taken) = (Arc::clone(&queue), Arc::clone(&taken));
            thread::spawn(move || {
                let flags = WorkerFlags::new();
                let mut pace = Pace::new();
                while let Some(job) = queue.take(&flags, &mut pace, || {}, None) {
                    assert_eq!(
                        job,
                        taken.fetch_add(1, Ordering::SeqCst),
                        "taken out of order"
                    );
                    if job == N - 1 {
                        kept_after_last_take_tx
                            .send(queue.jobs.spare_chunks())
                            .unwrap();
                    }
                }
            })
        };
        // Every emptied chunk kept, none freed by a take: the backlog's 778
        // (N less the ring's 1,024 slots, in chunks of 256).
        let kept = kept_after_last_take
            .recv_timeout(Duration::from_secs(60))
            .unwrap();
        assert_eq!(kept, 778, "emptied chunks kept after the last take");
        // A timeout turns a hang into a failure; it decides nothing else.
        let deadline = Instant::now() + Duration::from_secs(60);
        while queue.sleeping() == 0 {
            assert!(Instant::now() < deadline, "the worker never slept");
            thread::yield_now();
        }
        let kept = queue.jobs.spare_chunks();
        assert!(kept <= SPARE_CHUNKS, "{kept} chunks kept");
        queue.advance(Lifecycle::Closed);
        worker.join().unwrap();
        assert_eq!(taken.load(Ordering::SeqCst), N);
    }

    /// An idle worker whose retirement is refused for now (requests were
    /// queued, and another worker took them first) keeps its keep-alive:
    /// it asks again after the next one, and leaves when that is granted.
    /// (Were it to sleep with no timeout until its next request, above the
    /// pool's minimum, an idle pool would stay larger than it needs.)
    #[test]
    fn a_retirement_refused_for_now_is_asked_again() {
        asks_again_after(Retirement::NotNow, |_, _| {});
    }

    /// An idle worker told to stay (the pool was at its minimum) starts its
    /// keep-alive again once the pool grows past its minimum, and leaves if
    /// it stays idle. (Were it to sleep with no timeout until its next
    /// request, an autoscaling pool that grew while it was not counted
    /// asleep would keep it, idle, beside the worker started after it,
    /// busy; a parent that waits for the pool to shrink back would wait for
    /// ever, tests/scale.rs.)
    #[test]
    fn a_worker_told_to_stay_leaves_once_the_pool_grows_past_its_minimum() {
        asks_again_after(Retirement::Stays, |queue, above_min| {
            // The pool grows: the count published, then the unarmed roused.
            above_min.store(true, Ordering::SeqCst);
            queue.rouse_unarmed();
        });
    }

    /// An idle worker is told `first` when it first asks to retire; once it
    /// has asked, `then` runs (given the queue and the pool's `above_min`);
    /// the worker must ask again (and is then retired).
    fn asks_again_after(first: Retirement, then: impl FnOnce(&RequestQueue<usize>, &AtomicBool)) {
        let queue: RequestQueue<usize> = RequestQueue::new(None);
        let flags = WorkerFlags::new();
        let grown = AtomicBool::new(false);
        let asked = AtomicUsize::new(0);
        let retire = || {
            if asked.fetch_add(1, Ordering::SeqCst) == 0 {
                first
            } else {
                queue.dismiss(std::iter::once(&flags));
                Retirement::Retired
            }
        };
        let above_min = || grown.load(Ordering::SeqCst);
        let (done_tx, done) = std::sync::mpsc::channel();
        thread::scope(|scope| {
            scope.spawn(|| {
                let idle = Idle {
                    after: Duration::from_millis(1),
                    retire: &retire,
                    above_min: &above_min,
                };
                let took = queue.take(&flags, &mut Pace::new(), || {}, Some(&idle));
                done_tx.send(took).unwrap();
            });
            // A timeout turns a hang into a failure; it decides nothing else.
            let deadline = Instant::now() + Duration::from_secs(60);
            while asked.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the worker never asked");
                thread::yield_now();
            }
            then(&queue, &grown);
            let took = done.recv_timeout(Duration::from_secs(60));
            if took.is_err() {
                // Let the sleeping worker go, so that the scope ends.
                queue.advance(Lifecycle::Closed);
            }
            assert_eq!(took, Ok(None), "the worker never asked again");
        });
        assert_eq!(asked.load(Ordering::SeqCst), 2);
    }

    /// A helping wait's takes, one at a time: the first of its own each
    /// time, in their order; the others keep theirs. Those ahead of the
    /// first are looked at once in all (then they wait behind the rest),
    /// so `k` takes behind `q` others look at `q + k` requests, where a
    /// take of the whole queue per take would look at about `k (q + k)`.
    #[test]
    fn take_first_looks_at_the_requests_ahead_once() {
        const OTHERS: usize = 300;
        const MINE: usize = 200;
        let queue: RequestQueue<usize> = RequestQueue::new(None);
        // Others first (0..300), then the waiter's own (1000..1200), then
        // more others behind them (300..400), through the ring and the
        // backlog.
        let mut jobs: Vec<usize> = (0..OTHERS)
            .chain(1000..1000 + MINE)
            .chain(OTHERS..OTHERS + 100)
            .collect();
        assert!(matches!(
            queue.push_many(&mut jobs, Admit::WhileOpen),
            Push::Queued
        ));
        let looked = AtomicUsize::new(0);
        let mine = |job: &usize| {
            looked.fetch_add(1, Ordering::Relaxed);
            *job >= 1000
        };
        let taken: Vec<usize> = std::iter::from_fn(|| queue.take_first(mine)).collect();
        assert_eq!(taken, (1000..1000 + MINE).collect::<Vec<_>>());
        // Each of the first 300 once, each of its own once, and the 400
        // others once more by the last take, which finds none.
        assert_eq!(looked.load(Ordering::Relaxed), OTHERS + MINE + OTHERS + 100);
        assert_eq!(queue.len(), OTHERS + 100);
        // The others, each once: those behind the waiter's own first, then
        // those it looked past, each run in its order.
        let flags = WorkerFlags::new();
        let left: Vec<usize> = (0..OTHERS + 100)
            .map(|_| queue.take(&flags, &mut Pace::new(), || {}, None).unwrap())
            .collect();
        assert_eq!(
            left,
            (OTHERS..OTHERS + 100).chain(0..OTHERS).collect::<Vec<_>>()
        );
        assert_eq!(queue.len(), 0);
    }
}
