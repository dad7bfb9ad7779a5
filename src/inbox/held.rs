//! How many results of which handle the frame handling a run of them on
//! this thread still holds: taken off the result queue together, in the
//! frame's own drain, out of reach of a `wait` that one of their
//! callbacks calls on the same handle. That wait cannot handle them, and
//! must not wait for them (they are handled once the callback returns):
//! it reads this to tell. `docs/design.md`, "Deliver and handle".

use std::cell::Cell;

use crate::inbox::Inbox;

/// The innermost open run on this thread: its handle's `Inbox::serial`
/// and how many of its messages are not yet taken.
type Open = Option<(u64, usize)>;

// Under the checkers their own thread-locals: their threads share one OS
// thread. A `Cell` of a `Copy` value: no destructor, so each look is a
// plain thread-local access.
#[cfg(not(any(loom, shuttle)))]
std::thread_local! {
    static OPEN: Cell<Open> = const { Cell::new(None) };
}
#[cfg(loom)]
loom::thread_local! {
    static OPEN: Cell<Open> = Cell::new(None);
}
#[cfg(all(shuttle, not(loom)))]
shuttle::thread_local! {
    static OPEN: Cell<Open> = const { Cell::new(None) };
}

/// A run of messages of one handle being handled by this frame, until
/// dropped; the run it hid (a frame below this one) is open again then.
pub(crate) struct OpenRun {
    serial: u64,
    below: Open,
}

impl OpenRun {
    /// Opens a run of `left` messages of `inbox`.
    pub(crate) fn open(inbox: &Inbox, left: usize) -> OpenRun {
        let serial = inbox.serial;
        let below = OPEN
            .try_with(|open| open.replace(Some((serial, left))))
            .ok()
            .flatten();
        OpenRun { serial, below }
    }

    /// `left` of the run's messages are not yet taken: called before each
    /// message is handled, as its callback may wait.
    #[inline]
    pub(crate) fn left(&self, left: usize) {
        let _ = OPEN.try_with(|open| open.set(Some((self.serial, left))));
    }
}

impl Drop for OpenRun {
    fn drop(&mut self) {
        let _ = OPEN.try_with(|open| open.set(self.below));
    }
}

/// How many messages of `inbox` the frame below the caller on this thread
/// holds (0 if it is not handling a run of this handle's).
pub(crate) fn below(inbox: &Inbox) -> usize {
    match OPEN.try_with(Cell::get) {
        Ok(Some((serial, left))) if serial == inbox.serial => left,
        _ => 0,
    }
}
