//! How a request ended, as the pool's statistics and a batch's progress
//! count it: read by the worker that ran it (or the sweep that cancelled
//! it) before its outcome is handed on.

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ended {
    Succeeded,
    /// Returned an error.
    Failed,
    Panicked,
    /// Never started: cancelled, or expired.
    Unstarted,
}
