//! Which pool's worker, if any, runs on the current thread: set once by
//! the worker as it starts, read by the pool (a wait on a worker of its
//! own pool would deadlock it) and by external commands (`shutdown_now`
//! kills those of its pool).

use std::cell::Cell;

thread_local! {
    /// The pool id of the worker running on this thread (0: not a worker).
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

/// The id of the pool whose worker runs on this thread, or `None` on a
/// thread that is no pool's worker.
pub(crate) fn pool() -> Option<u64> {
    let id = WORKER_OF.with(Cell::get);
    (id != 0).then_some(id)
}

/// Marks this thread as a worker of pool `id` (never 0), for good.
pub(crate) fn mark(id: u64) {
    WORKER_OF.with(|w| w.set(id));
}
