//! [`Context::put`]: a running callable adds a request to its own handle.
//! The context itself is made by the worker (`pool::worker`); this is
//! where its refusals become the public [`PutError`].

use crate::error::PutError;
use crate::request::context::Refusal;
use crate::request::{Context, RequestId, WorkRequest};

impl Context<'_> {
    /// Puts `request` on the handle the running request belongs to.
    ///
    /// It is counted in that handle's `pending` at once, so a `wait` there
    /// cannot return before it. It never blocks, not even on a full bounded
    /// queue (a worker waiting for room could wait for itself): requests put
    /// this way go past the capacity. They are handed to the queue in
    /// batches, so adding many costs little per request: a batch goes with
    /// every 64th child, at once if a worker of the pool is asleep with
    /// nothing to do (and not already being woken) when a child is put,
    /// and at the latest when the running callable returns. Until then a
    /// child cannot start, its deadline runs, and
    /// [`cancel`](crate::ThreadPool::cancel) does not find it. A worker
    /// that goes idle after the put does not fetch it (one still in its
    /// short spin after its last request counts as busy), so a callable
    /// must not wait for its own children, and a child's deadline should
    /// allow for its parent's run.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] when the pool no longer accepts requests (it
    /// is shutting down or closed), and [`PutError::DuplicateId`] when a
    /// request with the same user-chosen id is pending on the handle; the
    /// request is handed back. A request accepted here runs even if a
    /// graceful [`shutdown`](crate::ThreadPool::shutdown) begins before its
    /// batch is queued; if the pool is closed at once
    /// ([`shutdown_now`](crate::ThreadPool::shutdown_now), or its last
    /// handle dropped) first, it is cancelled: its error callback hears
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled).
    pub fn put(&self, request: impl Into<WorkRequest>) -> Result<RequestId, PutError> {
        self.spawner
            .spawn(request.into())
            .map_err(|refusal| match refusal {
                Refusal::ShutDown(request) => PutError::ShutDown(request),
                Refusal::DuplicateId(request) => PutError::DuplicateId(request),
            })
    }
}
