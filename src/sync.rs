//! The synchronisation primitives of the request queue's protocol, from
//! `std`, from `loom` when model checking (`RUSTFLAGS="--cfg loom"`), or from
//! `shuttle` with the `shuttle` feature (and not loom), so that the models
//! (`src/models.rs`) check the protocol as it is written.
//!
//! With the `shuttle` feature the request queue only works inside a shuttle
//! test (`shuttle::check_*`): the feature exists for the models alone.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;

#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicUsize, Ordering};
#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};
#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::thread::yield_now;

#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::thread::yield_now;

/// A `SeqCst` fence, placed between the write and the read of each
/// store-buffering pair of the protocol (a thread writes one location, then
/// reads another that the other side writes before reading ours): with a
/// fence on both sides, at least one of the two sees the other's write.
/// Loom models `SeqCst` fences (unlike `SeqCst` loads and read-modify-writes,
/// which it treats as acquire/release: loom's README, "Unsupported features").
#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::sync::atomic::fence;
#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::sync::atomic::fence;

/// Marks a store-buffering pair made of `SeqCst` read-modify-writes and
/// `SeqCst` loads only (a thread writes one location with a `SeqCst`
/// read-modify-write, then reads another with a `SeqCst` load). Those are
/// ordered by themselves: all `SeqCst` operations form one total order, so
/// of two such threads at least one sees the other's write, with no fence.
/// Loom treats `SeqCst` loads and read-modify-writes as acquire/release, so
/// under loom this is a `SeqCst` fence, which restores what the real code
/// has; elsewhere it is nothing (shuttle runs everything sequentially
/// consistent).
#[inline(always)]
pub(crate) fn sc_pair() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Keeps its contents on a cache line of their own, away from fields that
/// other threads write.
#[repr(align(64))]
pub(crate) struct CacheLine<T>(pub(crate) T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
