//! A ticket's request and the place its outcome waits, in one allocation
//! that the queue (as the request) and the ticket (as its claim on the
//! outcome) share: the callable with its argument until it runs, then the
//! outcome until the holder takes it. One lock decides who may end the
//! request and carries the outcome to whoever waits for it, by blocking,
//! by polling the ticket as a future, or through a completion channel.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::lookout::{Home, Nudge};
use crate::patience::Patience;
use crate::request::task::{attempt, Ended, Failure, SharedRequest};
use crate::request::{RequestId, TaskError};
use crate::sync::{self, Mutex, MutexGuard, Thread, TryLockError};
use crate::ticket::call::{Standalone, Work};
use crate::ticket::cancel::Cancel;
use crate::unwind;

/// How many waits in a row that found their outcome ready make a thread
/// park at once when the next is not (see `READY_AT_ONCE`).
const READY_RUN: u8 = 4;

/// [`Slot::id_and_ended`]'s bit for an ended request (automatic ids stay
/// far below it).
const ENDED: u64 = 1 << 63;

thread_local! {
    /// How long this thread's ticket waits spin before they park. A ticket
    /// lives for one wait and its slot is sized to a malloc chunk, so the
    /// waiting thread remembers for all of its tickets: a loop that waits
    /// for one quick request at a time learns to spin, and one whose
    /// requests take long learns to park at once.
    static PATIENCE: Patience = Patience::new();
    /// How many of this thread's last ticket waits in a row found their
    /// outcome at the first look (up to [`READY_RUN`]). A thread taking
    /// ready outcomes one after another drains tickets that workers ended
    /// ahead of it; when it then meets one still going, it has caught up
    /// with them, and parks without a spin: woken, it finds a run of
    /// outcomes ready. A spin there keeps it in step with a worker, both at
    /// the same slots, and a million tickets waited in turn took 175-185
    /// ns each instead of 140-155 (`docs/performance.md`, "A ticket's wait
    /// spins first"). A run, not one: a round-trip loop finds an outcome
    /// ready now and then (its thread was descheduled), and must not park
    /// for it. Under the checkers never counted: each wait looks once, as
    /// the spin does there.
    static READY_AT_ONCE: Cell<u8> = const { Cell::new(0) };
}

/// A ticket's outcome once it has one.
pub(crate) type Outcome<T, E> = Result<T, TaskError<E>>;

/// One ticket's request and outcome: 56 bytes for W1's request (a unit
/// test pins it), so that with the `Arc`'s counts it takes an 80-byte
/// chunk of glibc's. A condition variable for the holder would pad it to
/// 64 bytes and a 96-byte chunk, which costs a ticket measurably
/// (`docs/performance.md`, "Tickets, round 4"); the holder parks instead.
pub(crate) struct Slot<W, T, E, H = ()> {
    /// The number of the request's automatic id, and in its top bit
    /// ([`ENDED`]) whether the request has ended: a hint that a spinning
    /// holder reads without writing, where each `try_lock` of `state`
    /// would take the line from the worker running the request. Only a
    /// hint, so a std atomic even under the checkers: the holder takes the
    /// outcome under the lock.
    id_and_ended: AtomicU64,
    state: Mutex<State<W, T, E>>,
    /// The handle it was put through, where that handle's result queue is
    /// bounded (an `Arc<dyn Home>`): a thread blocked on the ticket looks
    /// out for it (`crate::lookout`). Otherwise `()`, which takes no room.
    home: H,
}

/// What a slot knows of its handle: nothing (`()`), or its [`Home`].
pub(crate) trait HomeRef: Send + Sync {
    fn home(&self) -> Option<&Arc<dyn Home>>;
}

impl HomeRef for () {
    fn home(&self) -> Option<&Arc<dyn Home>> {
        None
    }
}

impl HomeRef for Arc<dyn Home> {
    fn home(&self) -> Option<&Arc<dyn Home>> {
        Some(self)
    }
}

struct State<W, T, E> {
    stage: Stage<W, T, E>,
    /// Who to tell when the request ends. A ticket has one holder, who
    /// waits in one way at a time, so one place is enough: a new way of
    /// waiting replaces the last.
    waiter: Waiter,
}

impl<W, T, E> State<W, T, E> {
    /// Puts `new` in the waiter's place and gives back the one it replaces,
    /// for the caller to drop once the lock is let go of: an old waker's
    /// drop may be the last owner of an abandoned task, whose future's
    /// guard cancels this very ticket (`CancelHandle`, as `Ticket`'s docs
    /// advise), and takes this lock again.
    #[must_use = "drop the replaced waiter outside the lock"]
    fn replace_waiter(&mut self, new: Waiter) -> Waiter {
        std::mem::replace(&mut self.waiter, new)
    }
}

/// Where the request is in its life. Whoever moves it out of `Queued`
/// (a worker to `Running`, a canceller straight to `Ended`) does so under
/// the lock, so exactly one of them does.
enum Stage<W, T, E> {
    /// Not started; holds the callable and its argument.
    Queued(W),
    /// A worker took the callable and runs it.
    Running,
    /// Ended (ran, or ended unrun); the outcome waits for the holder.
    Ended(Result<T, Failure<E>>),
    /// Ended, and the holder took the outcome.
    Taken,
}

/// Who waits for the outcome, if anyone.
enum Waiter {
    Nobody,
    /// A thread parked in `Ticket::wait` or `wait_timeout`: unparked when
    /// the request ends, so a ticket nobody blocks on costs no syscall.
    Sleeping(Thread),
    /// The task of the last poll of the ticket as a future.
    Task(Waker),
    /// A completion channel (`as_completed`).
    Listener(Listener),
}

/// Who hears that a ticket's request ended, for a completion iterator.
pub(crate) enum Listener {
    /// A completion channel and this ticket's key on it
    /// (`callpool::as_completed`: one per ticket, made once). `None` on
    /// the channel is a lookout's nudge (`crate::lookout::recv`).
    Channel {
        done: flume::Sender<Option<usize>>,
        key: usize,
    },
    /// Something the iterator keeps for the request anyway, which knows
    /// its channel and key (a window's cell, `window::Cell`): told through
    /// it, a ticket takes no count of the channel, whose lines every
    /// worker and the iterator would otherwise write once per request.
    Through(Arc<dyn Tell>),
}

/// What tells a completion iterator that a request ended.
pub(crate) trait Tell: Send + Sync {
    fn tell(&self);
}

impl Listener {
    fn tell(self) {
        match self {
            // Disconnected: the completion iterator was dropped; nobody
            // listens any more.
            Listener::Channel { done, key } => {
                let _ = done.send(Some(key));
            }
            // What it tells through may be the last owner of what the
            // iterator lent the request (an input), whose `Drop` is user
            // code: on a worker or in a sweep, its panic must take
            // neither down.
            Listener::Through(told) => {
                told.tell();
                unwind::drop_contained("a completion iterator's cell", told);
            }
        }
    }
}

impl Waiter {
    /// Tells the waiter; outside the lock, as a waker may run its task's
    /// code at once. An unpark that comes before its thread parks is kept
    /// for it (park's token), and the thread checks the stage under the
    /// lock before it parks again, so it cannot miss the end.
    fn tell(self) {
        match self {
            Waiter::Sleeping(thread) => thread.unpark(),
            // A waker is user code, called on a worker or in a sweep: its
            // panic must take neither down (nor lose the sweep's rest).
            Waiter::Task(waker) => {
                crate::unwind::call_contained("a ticket's waker", || waker.wake())
            }
            Waiter::Listener(listener) => listener.tell(),
            Waiter::Nobody => {}
        }
    }
}

/// The ticket's side of a [`Slot`], its callable's type erased.
pub(crate) trait Claim<T, E>: Send + Sync {
    fn id(&self) -> RequestId;
    /// Ends the request as cancelled if no worker has taken it; whether it
    /// did. Drops the callable here, unrun.
    fn cancel(&self) -> bool;
    fn is_done(&self) -> bool;
    /// Whether no worker has taken the request yet (nor has it ended).
    fn is_queued(&self) -> bool;
    /// Takes the outcome if the request has ended; `Err(())` if not yet.
    /// `Ok(None)`: it was taken before.
    fn try_take(&self) -> Result<Option<Outcome<T, E>>, ()>;
    /// Blocks until the request has ended or `deadline`; takes the outcome
    /// as `try_take` does. Meanwhile makes room on its handle's full result
    /// queue whenever a worker is stuck on it.
    fn take_blocking(&self, deadline: Option<Instant>) -> Result<Option<Outcome<T, E>>, ()>;
    /// The handle it was put through, if that one's result queue is bounded.
    fn home(&self) -> Option<&Arc<dyn Home>>;
    /// For a ticket polled as a future: the outcome, or `Err(())` after
    /// storing `waker` to be woken when it comes.
    fn take_or_register(&self, waker: &Waker) -> Result<Option<Outcome<T, E>>, ()>;
    /// Has `listener` told when the request ends (at once if it has).
    fn listen(&self, listener: Listener);
    /// The same slot, for a [`CancelHandle`]
    /// (`crate::ticket::CancelHandle`) to cancel.
    fn canceller(self: Arc<Self>) -> Arc<dyn Cancel>;
}

impl<W, T, E, H> Slot<W, T, E, H> {
    pub(crate) fn new(id_value: u64, work: W, home: H) -> Slot<W, T, E, H> {
        Slot {
            id_and_ended: AtomicU64::new(id_value),
            state: Mutex::new(State {
                stage: Stage::Queued(work),
                waiter: Waiter::Nobody,
            }),
            home,
        }
    }

    fn state(&self) -> MutexGuard<'_, State<W, T, E>> {
        // No user code runs under this lock (callables and outcomes are
        // moved in and out, never run or dropped here), so a poisoned lock
        // still holds a valid state. A waker's clone is an executor's code
        // and does run here: it cannot reach this ticket (its poller holds
        // it mutably borrowed), and its panic changes no state. A waiter
        // that a new one replaces is dropped after the lock is let go of
        // (see `State::replace_waiter`).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves the outcome in `state` and picks who to tell; the caller
    /// tells them once the lock is released.
    fn settle(&self, state: &mut State<W, T, E>, outcome: Result<T, Failure<E>>) -> Waiter {
        state.stage = Stage::Ended(outcome);
        // Relaxed: a hint (see the field); the holder takes the outcome
        // under the lock, which orders it.
        self.id_and_ended
            .store(self.id_value() | ENDED, Ordering::Relaxed);
        std::mem::replace(&mut state.waiter, Waiter::Nobody)
    }

    pub(crate) fn id_value(&self) -> u64 {
        // Relaxed: the id's bits never change.
        self.id_and_ended.load(Ordering::Relaxed) & !ENDED
    }

    /// Takes the work out of a request no worker has taken, leaving it
    /// ended with its outcome taken; `None` if a worker (or a canceller)
    /// got there first.
    fn take_queued(state: &mut State<W, T, E>) -> Option<W> {
        if !matches!(state.stage, Stage::Queued(_)) {
            return None;
        }
        let Stage::Queued(work) = std::mem::replace(&mut state.stage, Stage::Taken) else {
            unreachable!("matched as queued under the same lock")
        };
        Some(work)
    }

    /// Ends the request unrun with `why` if no worker has taken it: the
    /// callable comes back to be dropped outside the lock, and who to tell.
    fn end_unrun(&self, why: Failure<E>) -> Option<(W, Waiter)> {
        let mut state = self.state();
        let work = Self::take_queued(&mut state)?;
        let waiter = self.settle(&mut state, Err(why));
        Some((work, waiter))
    }

    /// The work of a request whose put was refused, for the caller to have
    /// back: its ticket never reached anyone, so nobody is told, and the
    /// refused job, dropped later, finds nothing left to cancel. `None`
    /// only if a worker took it, which a refused put rules out.
    pub(crate) fn take_back(&self) -> Option<W> {
        Self::take_queued(&mut self.state())
    }

    /// For a spinning holder: the outcome as [`Claim::try_take`] gives it
    /// once the request has ended, `None` while it has not. It never waits
    /// for the lock: whoever holds it (a worker starting or ending the
    /// request) is let be, and the spin looks again.
    fn try_take_ended(&self) -> Option<Option<Outcome<T, E>>> {
        // Relaxed: a hint (see the field). Under the checkers the spin is
        // one look, which must not depend on a hint they do not model.
        if !cfg!(any(loom, shuttle)) && self.id_and_ended.load(Ordering::Relaxed) & ENDED == 0 {
            return None;
        }
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            // Poisoned: still a valid state (see `state`).
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        match state.stage {
            Stage::Queued(_) | Stage::Running => None,
            Stage::Ended(_) | Stage::Taken => Some(Self::take(&mut state)),
        }
    }

    fn take(state: &mut State<W, T, E>) -> Option<Outcome<T, E>> {
        match std::mem::replace(&mut state.stage, Stage::Taken) {
            Stage::Ended(outcome) => Some(outcome.map_err(TaskError::from)),
            _ => None,
        }
    }
}

impl<W: Work<T, E>, T, E, H> Slot<W, T, E, H> {
    /// Ends the request as cancelled if no worker has taken it (holder,
    /// sweep, or a queued request dropped); whether it did.
    fn cancel_unrun(&self) -> bool {
        let Some((work, waiter)) = self.end_unrun(Failure::Cancelled) else {
            return false;
        };
        // The callable goes before the waiter hears, so what it holds (an
        // input a completion iterator waits to get back) is let go of; its
        // drop may panic, and the waiter must hear all the same.
        work.drop_unrun();
        waiter.tell();
        true
    }

    /// On a worker: runs the request with `call`, catching a panic, and
    /// settles the outcome, unless the request was ended first; how it
    /// ended. `count` hears how it ended just before the outcome is
    /// settled (see [`SharedRequest::run`]).
    pub(crate) fn run_with(
        &self,
        count: &dyn Fn(Ended),
        call: impl FnOnce(W) -> Result<T, E>,
    ) -> Ended {
        let work = {
            let mut state = self.state();
            match std::mem::replace(&mut state.stage, Stage::Running) {
                Stage::Queued(work) => work,
                // Ended first (cancelled): it has its outcome already,
                // and is counted as never started.
                ended => {
                    state.stage = ended;
                    drop(state);
                    count(Ended::Unstarted);
                    return Ended::Unstarted;
                }
            }
        };
        // `work` is consumed by the call, so what it captured is dropped
        // before the outcome is settled.
        let outcome = attempt(|| call(work));
        let ended = match &outcome {
            Ok(_) => Ended::Succeeded,
            Err(Failure::Panicked(_)) => Ended::Panicked,
            Err(_) => Ended::Failed,
        };
        count(ended);
        let waiter = {
            let mut state = self.state();
            self.settle(&mut state, outcome)
        };
        waiter.tell();
        ended
    }
}

impl<W, T, E, H> Cancel for Slot<W, T, E, H>
where
    W: Work<T, E>,
    T: Send,
    E: Send,
    H: HomeRef,
{
    fn cancel(&self) -> bool {
        self.cancel_unrun()
    }
}

impl<W, T, E, H> SharedRequest for Slot<W, T, E, H>
where
    W: Standalone<T, E>,
    T: Send,
    E: Send,
    H: HomeRef,
{
    fn id_value(&self) -> u64 {
        Slot::id_value(self)
    }

    fn run(&self, count: &dyn Fn(Ended)) -> Ended {
        self.run_with(count, W::call)
    }

    fn cancel(&self) -> bool {
        self.cancel_unrun()
    }
}

impl<W, T, E, H> Claim<T, E> for Slot<W, T, E, H>
where
    W: Work<T, E> + 'static,
    T: Send + 'static,
    E: Send + 'static,
    H: HomeRef + 'static,
{
    fn canceller(self: Arc<Self>) -> Arc<dyn Cancel> {
        self
    }

    fn id(&self) -> RequestId {
        RequestId::from_parts(self.id_value(), false)
    }

    fn cancel(&self) -> bool {
        self.cancel_unrun()
    }

    fn is_done(&self) -> bool {
        matches!(self.state().stage, Stage::Ended(_) | Stage::Taken)
    }

    fn is_queued(&self) -> bool {
        matches!(self.state().stage, Stage::Queued(_))
    }

    fn try_take(&self) -> Result<Option<Outcome<T, E>>, ()> {
        let mut state = self.state();
        match state.stage {
            Stage::Queued(_) | Stage::Running => Err(()),
            Stage::Ended(_) | Stage::Taken => Ok(Self::take(&mut state)),
        }
    }

    fn home(&self) -> Option<&Arc<dyn Home>> {
        self.home.home()
    }

    fn take_blocking(&self, deadline: Option<Instant>) -> Result<Option<Outcome<T, E>>, ()> {
        let blocking = match self.try_take_ended() {
            Some(outcome) => {
                if !cfg!(any(loom, shuttle)) {
                    READY_AT_ONCE.with(|ready| ready.set((ready.get() + 1).min(READY_RUN)));
                }
                return Ok(outcome);
            }
            // Caught up with the workers: park (see `READY_AT_ONCE`).
            None if READY_AT_ONCE.with(|ready| ready.replace(0)) == READY_RUN => None,
            // A quick request ends within a microsecond or two: a short
            // spin takes its outcome without a park here and an unpark (a
            // system call) on the worker. The spin registers no waiter, so
            // a worker that ends the request meanwhile tells nobody.
            None => {
                match PATIENCE.with(|patience| patience.spin(deadline, || self.try_take_ended())) {
                    Ok(outcome) => return Ok(outcome),
                    Err(blocking) => Some(blocking),
                }
            }
        };
        let mut parked = false;
        let home = self.home.home().map(|home| &**home);
        // On duty before the first look at stuck workers (`make_room`):
        // a worker stuck later unparks this thread, as the end does.
        let _watch = home
            .and_then(|home| home.lookouts())
            .map(|lookouts| lookouts.watch(Nudge::Unpark(sync::current())));
        let mut state = self.state();
        while let Stage::Queued(_) | Stage::Running = state.stage {
            let left = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let replaced = state.replace_waiter(Waiter::Nobody);
                        drop(state);
                        drop(replaced);
                        return Err(());
                    }
                    Some(left)
                }
            };
            // Registered and checked under the lock, then parked outside
            // it: whoever ends the request unparks this thread after it
            // let go of the lock; a wake-up that finds the request still
            // going (spurious, or the deadline's) looks again.
            let replaced = state.replace_waiter(Waiter::Sleeping(sync::current()));
            // Only a request still queued can be held up behind a stuck
            // worker: once running, it ends without room in the result
            // queue, and this thread (which may never poll the handle, and
            // may hold locks its callbacks take) runs none of them.
            let may_be_held_up = matches!(state.stage, Stage::Queued(_));
            drop(state);
            drop(replaced);
            // A callback's panic here passes on; the registered waiter
            // then only costs a spurious unpark.
            if may_be_held_up && home.is_some_and(|home| home.make_room()) {
                state = self.state();
                continue;
            }
            match left {
                None => sync::park(),
                Some(left) => sync::park_timeout(left),
            }
            parked = true;
            state = self.state();
        }
        let outcome = Self::take(&mut state);
        drop(state);
        if let (true, Some(blocking)) = (parked, blocking) {
            PATIENCE.with(|patience| patience.woke(blocking));
        }
        Ok(outcome)
    }

    fn take_or_register(&self, waker: &Waker) -> Result<Option<Outcome<T, E>>, ()> {
        let mut state = self.state();
        if let Stage::Ended(_) | Stage::Taken = state.stage {
            return Ok(Self::take(&mut state));
        }
        let replaced = match &state.waiter {
            Waiter::Task(old) if old.will_wake(waker) => return Err(()),
            _ => state.replace_waiter(Waiter::Task(waker.clone())),
        };
        drop(state);
        drop(replaced);
        Err(())
    }

    fn listen(&self, listener: Listener) {
        let mut state = self.state();
        if let Stage::Ended(_) | Stage::Taken = state.stage {
            drop(state);
            listener.tell();
        } else {
            let replaced = state.replace_waiter(Waiter::Listener(listener));
            drop(state);
            drop(replaced);
        }
    }
}
