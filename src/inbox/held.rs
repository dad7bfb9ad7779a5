//! The results a thread has taken off a handle's result queue in one go
//! and not yet handled. The frame handling them shares them with a
//! per-thread list, so that a `wait`, `poll` or `shutdown` of the same
//! handle called from one of their callbacks, on the same thread, handles
//! them first; otherwise it would wait for results only the suspended
//! frame below it can reach. `docs/design.md`, "Deliver and handle".

use std::cell::RefCell;
use std::rc::Rc;

use crate::inbox::{Caller, Inbox, Msg};

/// Messages of one run, oldest first; shared by the frame handling them
/// and this thread's list, without a thread-local look per message.
type Buffer = Rc<RefCell<Run>>;

/// A run's messages: those before `next` are taken. A vector and a cursor
/// rather than a `VecDeque`: filling and taking cost fewer instructions
/// per message, and every message goes through both.
#[derive(Default)]
struct Run {
    msgs: Vec<Option<Msg>>,
    next: usize,
}

impl Run {
    fn pop(&mut self) -> Option<Msg> {
        let msg = self.msgs.get_mut(self.next)?.take();
        self.next += 1;
        msg
    }

    /// The messages not yet taken, and the buffer emptied for reuse.
    fn take_rest(&mut self) -> Vec<Msg> {
        let rest = self.msgs.drain(self.next..).flatten().collect();
        self.msgs.clear();
        self.next = 0;
        rest
    }
}

/// A thread's runs, as (the handle's `Inbox::serial`, its messages):
/// `runs[..open]` are held by frames still handling them, outermost
/// first; the rest are kept only for their buffers.
struct Held {
    runs: Vec<(u64, Buffer)>,
    open: usize,
}

/// A run's buffer above this many messages (16 bytes each) is freed when
/// the run closes, rather than kept for the next.
const KEEP_CAPACITY: usize = 16_384;

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
/// code runs while a `RefCell` here is borrowed: messages are only moved
/// under a borrow, never dropped or handled.
pub(crate) struct HeldRun<'a> {
    inbox: &'a Inbox,
    msgs: Buffer,
    /// Where the run sits in this thread's list (`None`: the thread-local
    /// is gone, as in a handle polled from a thread-local's destructor,
    /// and no nested call can find the run).
    index: Option<usize>,
}

impl<'a> HeldRun<'a> {
    /// Holds `msgs`, just taken off `inbox`'s result queue.
    pub(crate) fn hold(inbox: &'a Inbox, msgs: impl ExactSizeIterator<Item = Msg>) -> HeldRun<'a> {
        let listed = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            let index = held.open;
            if index == held.runs.len() {
                held.runs.push((inbox.serial, Buffer::default()));
            }
            held.runs[index].0 = inbox.serial;
            held.open = index + 1;
            (index, Rc::clone(&held.runs[index].1))
        });
        let (index, buffer) = match listed {
            Ok((index, buffer)) => (Some(index), buffer),
            Err(_) => (None, Buffer::default()),
        };
        let mut run = buffer.borrow_mut();
        // Room for all at once: a drain's `size_hint` says nothing, so
        // `extend` would grow the buffer (and copy it) again and again.
        run.msgs.reserve(msgs.len());
        for msg in msgs {
            run.msgs.push(Some(msg));
        }
        drop(run);
        HeldRun {
            inbox,
            msgs: buffer,
            index,
        }
    }

    /// The run's next message. Older messages of the same handle held by
    /// frames below this one were handled before this run was taken (see
    /// `receive`), and a run gains no message once held.
    #[inline]
    pub(crate) fn next(&self) -> Option<Msg> {
        self.msgs.borrow_mut().pop()
    }
}

impl Drop for HeldRun<'_> {
    /// Closes the run. It is empty by then (handled, or moved to the
    /// overflow by a panicking callback's `take_all`); anything left goes
    /// to the overflow all the same, so nothing is lost.
    fn drop(&mut self) {
        let left = {
            let mut run = self.msgs.borrow_mut();
            let left = run.take_rest();
            if run.msgs.capacity() > KEEP_CAPACITY {
                run.msgs = Vec::new();
            }
            left
        };
        if let Some(index) = self.index {
            // Frames close in the reverse order they opened.
            let _ = HELD.try_with(|held| {
                let mut held = held.borrow_mut();
                held.open = held.open.min(index);
            });
        }
        if !left.is_empty() {
            self.inbox.keep(left);
            self.inbox.wake_waiters(Caller::Other);
        }
    }
}

/// The oldest message of `inbox` held on this thread by frames below the
/// caller, if any: from the outermost run first.
pub(crate) fn next(inbox: &Inbox) -> Option<Msg> {
    HELD.try_with(|held| {
        let held = held.borrow();
        held.runs[..held.open]
            .iter()
            .filter(|(serial, _)| *serial == inbox.serial)
            .find_map(|(_, run)| run.borrow_mut().pop())
    })
    .ok()
    .flatten()
}

/// Every message of `inbox` held on this thread, oldest first, taken out
/// (a callback panicked: they go to the overflow before the panic goes
/// on, and the frames that held them unwind).
pub(crate) fn take_all(inbox: &Inbox) -> Vec<Msg> {
    HELD.try_with(|held| {
        let held = held.borrow();
        held.runs[..held.open]
            .iter()
            .filter(|(serial, _)| *serial == inbox.serial)
            .flat_map(|(_, run)| run.borrow_mut().take_rest())
            .collect()
    })
    .unwrap_or_default()
}
