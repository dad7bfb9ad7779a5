//! The synchronisation primitives of the request queue's protocol, from
//! `std`, from `loom` when model checking (`RUSTFLAGS="--cfg loom"`), or from
//! `shuttle` with the `shuttle` feature (and not loom), so that the models
//! (`src/models.rs`) check the protocol as it is written.
//!
//! With the `shuttle` feature the request queue only works inside a shuttle
//! test (`shuttle::check_*`): the feature exists for the models alone.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(all(feature = "shuttle", not(loom)))]
pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(any(loom, feature = "shuttle")))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
