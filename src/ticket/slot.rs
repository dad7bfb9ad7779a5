//! Where a ticket's outcome waits: the one place a worker (or whoever ends
//! the request) leaves it and the ticket's holder takes it, by blocking, by
//! polling as a future, or by being told through a completion channel.

use std::sync::Arc;
use std::task::Waker;

use crate::request::TaskError;
use crate::sync::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// A ticket's outcome once it has one.
pub(crate) type Outcome<T, E> = Result<T, TaskError<E>>;

/// Who may still start the request (the `start` word).
const QUEUED: usize = 0;
/// A worker took it and runs it (or ran it).
const STARTED: usize = 1;
/// It was ended before a worker took it: cancelled by its ticket, swept by
/// a closing pool, or dropped unrun.
const ENDED_UNRUN: usize = 2;

/// The shared state of one ticket and its request.
pub(crate) struct Slot<T, E> {
    /// `QUEUED` until exactly one of a worker (to `STARTED`) and a canceller
    /// (to `ENDED_UNRUN`) moves it on; a compare-exchange decides which.
    start: AtomicUsize,
    state: Mutex<State<T, E>>,
    /// Wakes threads blocked in `Ticket::wait`; notified only when one is
    /// (`State::sleepers`), so a ticket nobody blocks on costs no syscall.
    settled: Condvar,
}

struct State<T, E> {
    /// `Some` from settling until the holder takes it.
    outcome: Option<Outcome<T, E>>,
    /// Whether the request has ended (its outcome may have been taken).
    done: bool,
    sleepers: usize,
    /// The task of the last poll of the ticket as a future.
    waker: Option<Waker>,
    /// Told the ticket's key when it settles (`as_completed`).
    listener: Option<Listener>,
}

/// A completion channel and this ticket's key on it.
pub(crate) struct Listener {
    pub(crate) done: flume::Sender<usize>,
    pub(crate) key: usize,
}

impl<T, E> Slot<T, E> {
    pub(crate) fn new() -> Arc<Slot<T, E>> {
        Arc::new(Slot {
            start: AtomicUsize::new(QUEUED),
            state: Mutex::new(State {
                outcome: None,
                done: false,
                sleepers: 0,
                waker: None,
                listener: None,
            }),
            settled: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State<T, E>> {
        // No user code runs under this lock (outcomes are moved in and out,
        // never dropped here), so a poisoned lock still holds a valid state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For a worker about to run the request: whether it may (nobody ended
    /// it first). Only one caller of `start` and `end_unrun` ever wins.
    pub(crate) fn start(&self) -> bool {
        self.claim(STARTED)
    }

    /// For a canceller: ends the request as `outcome` if no worker has
    /// taken it yet; whether it did.
    pub(crate) fn end_unrun(&self, outcome: Outcome<T, E>) -> bool {
        if !self.claim(ENDED_UNRUN) {
            return false;
        }
        self.settle(outcome);
        true
    }

    fn claim(&self, to: usize) -> bool {
        // Relaxed: only which claim wins matters (read-modify-writes of one
        // word are totally ordered); the outcome travels under `state`.
        self.start
            .compare_exchange(QUEUED, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Leaves the outcome for the ticket and tells whoever waits for it.
    pub(crate) fn settle(&self, outcome: Outcome<T, E>) {
        let (waker, listener) = {
            let mut state = self.state();
            state.outcome = Some(outcome);
            state.done = true;
            if state.sleepers > 0 {
                self.settled.notify_all();
            }
            (state.waker.take(), state.listener.take())
        };
        // Outside the lock: a waker may run its task's code at once.
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(listener) = listener {
            // Disconnected: the completion iterator was dropped; nobody
            // listens any more.
            let _ = listener.done.send(listener.key);
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state().done
    }

    /// Takes the outcome if the request has ended; `Err(())` if not yet.
    /// `Ok(None)`: it was taken before.
    pub(crate) fn try_take(&self) -> Result<Option<Outcome<T, E>>, ()> {
        let mut state = self.state();
        if state.done {
            Ok(state.outcome.take())
        } else {
            Err(())
        }
    }

    /// Blocks until the request has ended or `deadline`; takes the outcome
    /// as `try_take` does.
    pub(crate) fn take_blocking(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<Outcome<T, E>>, ()> {
        let mut state = self.state();
        while !state.done {
            state.sleepers += 1;
            state = match deadline {
                None => self.settled.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        state.sleepers -= 1;
                        return Err(());
                    }
                    self.settled
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.sleepers -= 1;
        }
        Ok(state.outcome.take())
    }

    /// For a ticket polled as a future: the outcome, or `Err(())` after
    /// storing `waker` to be woken when it comes.
    pub(crate) fn take_or_register(&self, waker: &Waker) -> Result<Option<Outcome<T, E>>, ()> {
        let mut state = self.state();
        if state.done {
            return Ok(state.outcome.take());
        }
        match &mut state.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        Err(())
    }

    /// Has `listener` told when the request ends (at once if it has).
    pub(crate) fn listen(&self, listener: Listener) {
        let mut state = self.state();
        if state.done {
            drop(state);
            let _ = listener.done.send(listener.key);
        } else {
            state.listener = Some(listener);
        }
    }
}
