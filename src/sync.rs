//! The synchronisation primitives the pool's protocols use, from `std`, or
//! from `loom` when model checking (`RUSTFLAGS="--cfg loom"`), so that the
//! request queue's protocol can be checked as it is written.

#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
