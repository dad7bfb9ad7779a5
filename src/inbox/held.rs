//! How many results of which handle the frame handling a run of them on
//! this thread still holds: taken off the result queue together, in the
//! frame's own drain, out of reach of a `wait` that one of their
//! callbacks calls on the same handle. That wait cannot handle them, and
//! must not wait for them (they are handled once the callback returns):
//! it reads this to tell. `docs/design.md`, "Deliver and handle".

use std::cell::{Cell, RefCell};

/// The innermost open run on this thread: its handle's `Inbox::serial`
/// and how many of that handle's messages it, and the runs of the same
/// handle below it, have not yet taken.
type Open = Option<(u64, usize)>;

/// The runs that a run of another handle, opened in one of their
/// callbacks, hides: each one's handle and what it holds (with the runs of
/// the same handle below it), innermost last. Frozen while hidden: their
/// frames are suspended. Touched only when runs of two handles nest, so
/// the common path stays one `Cell`.
type Hidden = RefCell<Vec<(u64, usize)>>;

/// The nested waits open on this thread: each one's handle and what was
/// held below it (`below`) when it counted itself in, innermost last.
type Marks = RefCell<Vec<(u64, usize)>>;

// Under the checkers their own thread-locals: their threads share one OS
// thread. A `Cell` of a `Copy` value: no destructor, so each look is a
// plain thread-local access.

#[cfg(not(any(loom, shuttle)))]
std::thread_local! {
    static OPEN: Cell<Open> = const { Cell::new(None) };
    static HIDDEN: Hidden = const { RefCell::new(Vec::new()) };
    static MARKS: Marks = const { RefCell::new(Vec::new()) };
}
#[cfg(loom)]
loom::thread_local! {
    static OPEN: Cell<Open> = Cell::new(None);
    static HIDDEN: Hidden = RefCell::new(Vec::new());
    static MARKS: Marks = RefCell::new(Vec::new());
}
#[cfg(all(shuttle, not(loom)))]
shuttle::thread_local! {
    static OPEN: Cell<Open> = const { Cell::new(None) };
    static HIDDEN: Hidden = const { RefCell::new(Vec::new()) };
    static MARKS: Marks = const { RefCell::new(Vec::new()) };
}

/// What the hidden runs of the handle with `serial` hold (the innermost
/// one's count includes those below it).
fn hidden(serial: u64) -> usize {
    HIDDEN
        .try_with(|hidden| innermost(&hidden.borrow(), serial))
        .unwrap_or(0)
}

/// The count of the innermost entry of the handle with `serial` in
/// `list`, or 0.
fn innermost(list: &[(u64, usize)], serial: u64) -> usize {
    let mut of_serial = list.iter().rev().filter(|(s, _)| *s == serial);
    of_serial.next().map_or(0, |&(_, count)| count)
}

/// A run of messages of one handle being handled by this frame, until
/// dropped; the run it hid (a frame below this one) is open again then.
pub(crate) struct OpenRun {
    serial: u64,
    below: Open,
    /// What the runs of the same handle below this one hold, hidden or
    /// not (they are suspended, so it does not change while this one is
    /// open).
    held_below: usize,
    /// Whether this run hid the one below (of another handle).
    hid: bool,
}

impl OpenRun {
    /// Opens a run of `left` messages of the handle whose inbox has
    /// `serial`.
    pub(crate) fn open(serial: u64, left: usize) -> OpenRun {
        let below = OPEN.try_with(Cell::get).ok().flatten();
        let (held_below, hid) = match below {
            Some((outer, held)) if outer == serial => (held, false),
            // A run of another handle: hidden until this one closes, and
            // this handle's runs it hid count.
            Some(other) => {
                let held = hidden(serial);
                let hid = HIDDEN
                    .try_with(|hidden| hidden.borrow_mut().push(other))
                    .is_ok();
                (held, hid)
            }
            None => (0, false),
        };
        let run = OpenRun {
            serial,
            below,
            held_below,
            hid,
        };
        run.left(left);
        run
    }

    /// `left` of the run's messages are not yet taken: called before each
    /// message is handled, as its callback may wait.
    #[inline]
    pub(crate) fn left(&self, left: usize) {
        let held = self.held_below + left;
        let _ = OPEN.try_with(|open| open.set(Some((self.serial, held))));
    }
}

impl Drop for OpenRun {
    fn drop(&mut self) {
        let _ = OPEN.try_with(|open| open.set(self.below));
        if self.hid {
            let _ = HIDDEN.try_with(|hidden| hidden.borrow_mut().pop());
        }
    }
}

/// How many messages of the handle whose inbox has `serial` the frames
/// below the caller on this thread hold, also under runs of other
/// handles.
pub(crate) fn below(serial: u64) -> usize {
    match OPEN.try_with(Cell::get) {
        Ok(Some((open, left))) if open == serial => left,
        Ok(Some(_)) => hidden(serial),
        _ => 0,
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::{below, OpenRun};

    /// Runs of two handles nested in each other's callbacks: each handle's
    /// count adds up over its own runs, through the other's, and each
    /// close brings the one below back.
    #[test]
    fn runs_of_two_handles_nested_each_see_their_own() {
        let (a, b) = (1_000_001, 1_000_002);
        let outer_a = OpenRun::open(a, 2);
        assert_eq!((below(a), below(b)), (2, 0));
        {
            let b_run = OpenRun::open(b, 3);
            assert_eq!((below(a), below(b)), (2, 3));
            {
                let inner_a = OpenRun::open(a, 1);
                assert_eq!((below(a), below(b)), (3, 3));
                {
                    let inner_b = OpenRun::open(b, 4);
                    assert_eq!((below(a), below(b)), (3, 7));
                    inner_b.left(1);
                    assert_eq!((below(a), below(b)), (3, 4));
                }
                inner_a.left(0);
                assert_eq!((below(a), below(b)), (2, 3));
            }
            b_run.left(2);
            assert_eq!((below(a), below(b)), (2, 2));
        }
        assert_eq!((below(a), below(b)), (2, 0));
        drop(outer_a);
        assert_eq!((below(a), below(b)), (0, 0));
    }
}

/// A nested wait on this thread, from the moment it counts what is held
/// below it in its handle's count of results held below nested waits
/// (`Inbox::held_nested`) until dropped.
pub(crate) struct Mark {
    /// What this wait adds to that count: what is held below it, less
    /// what a nested wait of the same handle further down this thread
    /// counted already (`below` adds up over the runs of one handle).
    pub(crate) added: usize,
    marked: bool,
}

impl Mark {
    /// Marks a nested wait on the handle with `serial`, with `below` held
    /// below it.
    pub(crate) fn new(serial: u64, below: usize) -> Mark {
        let marked = MARKS.try_with(|marks| {
            let mut marks = marks.borrow_mut();
            let counted = innermost(&marks, serial);
            marks.push((serial, below));
            below.saturating_sub(counted)
        });
        match marked {
            Ok(added) => Mark {
                added,
                marked: true,
            },
            // The thread is ending: count nothing rather than guess.
            Err(_) => Mark {
                added: 0,
                marked: false,
            },
        }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        if self.marked {
            let _ = MARKS.try_with(|marks| marks.borrow_mut().pop());
        }
    }
}
