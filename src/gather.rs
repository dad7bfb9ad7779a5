//! Gathering a user's iterator into a `Vec`, whatever the iterator does.
//!
//! `collect` would presize its vector by the iterator's `size_hint`, and
//! drop what it gathered while a panic from `next` unwinds. Both are the
//! user's code: a hint that lies (a lower bound of `1 << 40`) makes it ask
//! for terabytes, and a failed allocation aborts the process; an input
//! whose `Drop` panics, dropped during that unwinding, aborts it too.
//! Here the hint only presizes when it is exact and the room can be had,
//! and a panic from `next` comes back to this frame first, so that the
//! inputs gathered so far are dropped with their panics contained before
//! it goes on. The cost: a `Vec` given by value is copied into a new one,
//! not collected in place.

use std::panic::{self, AssertUnwindSafe};

use crate::unwind;

/// The largest exact hint presized by: a `Vec` of millions of requests
/// or inputs still takes one allocation.
const TRUSTED: usize = 1 << 24;

/// `iter.collect()`, safe from the iterator's lies and panics (see the
/// module's doc). A panic from `iter` passes on, after the items.
pub(crate) fn gather<I: Iterator>(mut iter: I) -> Vec<I::Item> {
    let mut items = Vec::new();
    if let (lower, Some(upper)) = iter.size_hint() {
        // Refused room is no error: the vector grows as it fills instead.
        if lower == upper {
            let _ = items.try_reserve_exact(lower.min(TRUSTED));
        }
    }
    let pulled = panic::catch_unwind(AssertUnwindSafe(|| {
        for item in iter.by_ref() {
            items.push(item);
        }
    }));
    if let Err(payload) = pulled {
        for item in items {
            unwind::contain("an input gathered before its iterator panicked", || {
                drop(item)
            });
        }
        unwind::contain("an iterator that panicked", || drop(iter));
        panic::resume_unwind(payload);
    }
    items
}
