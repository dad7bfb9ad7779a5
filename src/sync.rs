//! The synchronisation primitives of the request queue's protocol, from
//! `std`, or from `loom` when model checking (`RUSTFLAGS="--cfg loom"`), so
//! that the models check the protocol as it is written.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
