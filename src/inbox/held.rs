//! The results a thread has taken off a handle's result queue in one go
//! and not yet handled. They are kept per thread, not in the frame that
//! took them, so that a `wait`, `poll` or `shutdown` of the same handle
//! called from one of their callbacks, on the same thread, handles them
//! first; otherwise it would wait for results only the suspended frame
//! below it can see. `docs/design.md`, "Deliver and handle".

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::inbox::{Caller, Inbox, Msg};

/// Messages of one handle, taken in one go, oldest first.
struct Run {
    /// The handle's `Inbox::serial`.
    inbox: u64,
    msgs: VecDeque<Msg>,
}

/// A thread's runs: `runs[..open]` are held by frames still handling
/// them, outermost first; the rest are kept only for their buffers.
struct Held {
    runs: Vec<Run>,
    open: usize,
}

/// A run's buffer above this many messages is freed when the run closes,
/// rather than kept for the next.
const KEEP_CAPACITY: usize = 4096;

// Under the checkers their own thread-locals: their threads share one OS
// thread.
#[cfg(not(any(loom, shuttle)))]
std::thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held { runs: Vec::new(), open: 0 }) };
}
#[cfg(loom)]
loom::thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held { runs: Vec::new(), open: 0 });
}
#[cfg(all(shuttle, not(loom)))]
shuttle::thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held { runs: Vec::new(), open: 0 }) };
}

/// Messages of `inbox` held by this thread, open until dropped. No user
/// code runs while the thread-local is borrowed: messages are only moved
/// under the borrow, never dropped or handled.
pub(crate) struct HeldRun<'a> {
    inbox: &'a Inbox,
    at: Place,
}

enum Place {
    /// `runs[index]` of this thread's `HELD`.
    Shared(usize),
    /// Here: the thread-local is gone (a handle polled from a
    /// thread-local's destructor), so no nested call can find them.
    Local(RefCell<VecDeque<Msg>>),
}

impl<'a> HeldRun<'a> {
    /// Holds `msgs`, just taken off `inbox`'s result queue.
    pub(crate) fn hold(inbox: &'a Inbox, msgs: impl Iterator<Item = Msg>) -> HeldRun<'a> {
        let mut msgs = Some(msgs);
        let shared = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            let index = held.open;
            if index == held.runs.len() {
                held.runs.push(Run {
                    inbox: inbox.serial,
                    msgs: VecDeque::new(),
                });
            }
            let run = &mut held.runs[index];
            run.inbox = inbox.serial;
            run.msgs.extend(msgs.take().into_iter().flatten());
            held.open = index + 1;
            index
        });
        let at = match shared {
            Ok(index) => Place::Shared(index),
            Err(_) => Place::Local(RefCell::new(msgs.into_iter().flatten().collect())),
        };
        HeldRun { inbox, at }
    }

    /// The oldest message of this handle held on this thread, by this run
    /// or by a frame below it (whose callback this thread is running).
    pub(crate) fn next(&self) -> Option<Msg> {
        match &self.at {
            Place::Shared(_) => next(self.inbox),
            Place::Local(msgs) => msgs.borrow_mut().pop_front(),
        }
    }
}

impl Drop for HeldRun<'_> {
    /// Closes the run. It is empty by then (handled, or moved to the
    /// overflow by a panicking callback's `take_all`); anything left goes
    /// to the overflow all the same, so nothing is lost.
    fn drop(&mut self) {
        let left: VecDeque<Msg> = match &mut self.at {
            Place::Shared(index) => HELD
                .try_with(|held| {
                    let mut held = held.borrow_mut();
                    held.open = held.open.min(*index);
                    let run = &mut held.runs[*index];
                    let left = std::mem::take(&mut run.msgs);
                    if left.capacity() <= KEEP_CAPACITY && left.is_empty() {
                        run.msgs = left;
                        VecDeque::new()
                    } else {
                        left
                    }
                })
                .unwrap_or_default(),
            Place::Local(msgs) => std::mem::take(msgs.get_mut()),
        };
        if !left.is_empty() {
            self.inbox.keep(left);
            self.inbox.wake_waiters(Caller::Other);
        }
    }
}

/// The oldest message of `inbox` held on this thread, if any: from the
/// outermost run first.
pub(crate) fn next(inbox: &Inbox) -> Option<Msg> {
    HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        let open = held.open;
        held.runs[..open]
            .iter_mut()
            .filter(|run| run.inbox == inbox.serial)
            .find_map(|run| run.msgs.pop_front())
    })
    .ok()
    .flatten()
}

/// Every message of `inbox` held on this thread, oldest first, taken out
/// (a callback panicked: they go to the overflow before the panic goes
/// on, and the frames that held them unwind).
pub(crate) fn take_all(inbox: &Inbox) -> Vec<Msg> {
    HELD.try_with(|held| {
        let mut held = held.borrow_mut();
        let open = held.open;
        held.runs[..open]
            .iter_mut()
            .filter(|run| run.inbox == inbox.serial)
            .flat_map(|run| run.msgs.drain(..))
            .collect()
    })
    .unwrap_or_default()
}
