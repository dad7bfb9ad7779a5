//! The synchronisation primitives of callpool's protocols, from `std` (and
//! `flume` for result queues), from `loom` when model checking
//! (`RUSTFLAGS="--cfg loom"`), or from `shuttle` (`RUSTFLAGS="--cfg
//! shuttle"`), so that the models (`src/models/`) check the protocols as they
//! ship: the request queue (`pool::queue`) and a handle's inbox and wait
//! protocol (`inbox`).
//!
//! Under either checker the code only works inside a model (`loom::model`,
//! `shuttle::check_*`): the cfgs exist for the models alone and are never
//! set by a cargo feature.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{current, park, yield_now, Thread};

#[cfg(all(shuttle, not(loom)))]
pub(crate) use shuttle::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(all(shuttle, not(loom)))]
pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};
#[cfg(all(shuttle, not(loom)))]
pub(crate) use shuttle::thread::{current, park, yield_now, Thread};

#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};

/// What a `try_lock` that failed says, from every checker's mutex as from
/// std's.
pub(crate) use std::sync::TryLockError;

/// Under the checkers, a timed park returns at once: a spurious wake-up,
/// which every caller of `park_timeout` must handle anyway (it loops on
/// its own condition). The models never wait with a deadline.
#[cfg(any(loom, shuttle))]
pub(crate) fn park_timeout(_: std::time::Duration) {
    yield_now();
}

/// Keeps a value on a cache line of its own, away from fields that other
/// threads write.
pub(crate) use crossbeam_utils::CachePadded;

/// Marks a store-buffering pair made of `SeqCst` read-modify-writes and
/// `SeqCst` loads only (a thread writes one location with a `SeqCst`
/// read-modify-write, then reads another with a `SeqCst` load). Those are
/// ordered by themselves: all `SeqCst` operations form one total order, so
/// of two such threads at least one sees the other's write, with no fence.
/// Loom treats `SeqCst` loads and read-modify-writes as acquire/release
/// (loom's README, "Unsupported features"), so under loom this is a `SeqCst`
/// fence, which restores what the real code has; elsewhere it is nothing
/// (shuttle runs everything sequentially consistent).
#[inline(always)]
pub(crate) fn seq_cst_pair() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// A handle's result queue: `flume` in the library; under the checkers,
/// which cannot see inside flume, a small bounded channel on the model's
/// own mutex and condition variables, with the methods the inbox uses.
#[cfg(not(any(loom, shuttle)))]
pub(crate) mod channel {
    pub(crate) use flume::{
        bounded, unbounded, Receiver, RecvTimeoutError, SendError, Sender, TrySendError,
    };
}

#[cfg(any(loom, shuttle))]
pub(crate) mod channel {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Instant;

    use super::{Condvar, Mutex, MutexGuard};

    pub(crate) enum TrySendError<T> {
        Full(T),
        Disconnected(T),
    }

    pub(crate) struct SendError<T>(pub(crate) T);

    /// The receiving code only asks whether a message came (`.ok()`).
    #[allow(dead_code)]
    pub(crate) enum TryRecvError {
        Empty,
        Disconnected,
    }

    pub(crate) enum RecvTimeoutError {
        // The receiving code matches on it; the models never give a deadline.
        #[allow(dead_code)]
        Timeout,
        Disconnected,
    }

    struct State<T> {
        queue: VecDeque<T>,
        capacity: Option<usize>,
        sender_alive: bool,
        receiver_alive: bool,
    }

    struct Chan<T> {
        state: Mutex<State<T>>,
        changed: Condvar,
    }

    impl<T> Chan<T> {
        fn lock(&self) -> MutexGuard<'_, State<T>> {
            self.state.lock().unwrap()
        }
    }

    pub(crate) struct Sender<T>(Arc<Chan<T>>);
    pub(crate) struct Receiver<T>(Arc<Chan<T>>);

    fn channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
        let chan = Arc::new(Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                capacity,
                sender_alive: true,
                receiver_alive: true,
            }),
            changed: Condvar::new(),
        });
        (Sender(Arc::clone(&chan)), Receiver(chan))
    }

    pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        channel(Some(capacity))
    }

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        channel(None)
    }

    impl<T> Sender<T> {
        pub(crate) fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
            let mut state = self.0.lock();
            if !state.receiver_alive {
                return Err(TrySendError::Disconnected(msg));
            }
            if state.capacity.is_some_and(|cap| state.queue.len() >= cap) {
                return Err(TrySendError::Full(msg));
            }
            state.queue.push_back(msg);
            drop(state);
            self.0.changed.notify_all();
            Ok(())
        }

        pub(crate) fn send(&self, msg: T) -> Result<(), SendError<T>> {
            let mut state = self.0.lock();
            loop {
                if !state.receiver_alive {
                    return Err(SendError(msg));
                }
                if state.capacity.is_none_or(|cap| state.queue.len() < cap) {
                    state.queue.push_back(msg);
                    drop(state);
                    self.0.changed.notify_all();
                    return Ok(());
                }
                state = self.0.changed.wait(state).unwrap();
            }
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            self.0.lock().sender_alive = false;
            self.0.changed.notify_all();
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn recv(&self) -> Result<T, RecvTimeoutError> {
            let mut state = self.0.lock();
            loop {
                if let Some(msg) = state.queue.pop_front() {
                    drop(state);
                    self.0.changed.notify_all();
                    return Ok(msg);
                }
                if !state.sender_alive {
                    return Err(RecvTimeoutError::Disconnected);
                }
                state = self.0.changed.wait(state).unwrap();
            }
        }

        pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
            let mut state = self.0.lock();
            if let Some(msg) = state.queue.pop_front() {
                drop(state);
                self.0.changed.notify_all();
                return Ok(msg);
            }
            if state.sender_alive {
                Err(TryRecvError::Empty)
            } else {
                Err(TryRecvError::Disconnected)
            }
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.lock().queue.is_empty()
        }

        /// The models never give a deadline: waiting with one is `recv`.
        pub(crate) fn recv_deadline(&self, _deadline: Instant) -> Result<T, RecvTimeoutError> {
            self.recv()
        }

        pub(crate) fn drain(&self) -> std::collections::vec_deque::IntoIter<T> {
            let taken = std::mem::take(&mut self.0.lock().queue);
            self.0.changed.notify_all();
            taken.into_iter()
        }
    }

    impl<T> Drop for Receiver<T> {
        fn drop(&mut self) {
            self.0.lock().receiver_alive = false;
            self.0.changed.notify_all();
        }
    }
}
