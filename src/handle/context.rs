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
    /// this way go past the capacity. They wait in the worker's own slot
    /// and are handed to the queue in batches, so adding many costs little
    /// per request: a batch goes with every 64th child, at once if a
    /// worker of the pool is asleep with nothing to do (and not already
    /// being woken) when a child is put, or if an autoscaling pool may
    /// still grow (a worker is started for it, so below its maximum such
    /// a pool queues children one by one), as soon as another worker runs
    /// out of work (it queues what the slots hold before it sleeps), and
    /// at the latest when the running callable returns. So a child waits
    /// in the slot only while every other worker is busy, as it would in
    /// the queue; [`cancel`](crate::ThreadPool::cancel) finds it there. A
    /// callable that waits for its own children waits until another
    /// worker is free to run them: with one worker, or with every worker
    /// waiting that way, it waits for ever. To split work and wait for
    /// both parts, use [`join`](Self::join), which runs a part itself when
    /// no other worker takes it.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] when the pool no longer accepts requests (it
    /// is shutting down or closed), and [`PutError::DuplicateId`] when a
    /// request with the same user-chosen id is pending on the handle; the
    /// request is handed back. A request accepted here runs even if a
    /// graceful [`shutdown`](crate::ThreadPool::shutdown) begins before its
    /// batch is queued. If the pool is closed at once first, it is handed
    /// back by [`shutdown_now`](crate::ThreadPool::shutdown_now) called on
    /// its handle, as the handle's queued requests are, and cancelled
    /// otherwise (`shutdown_now` on another handle, the last handle
    /// dropped, or its own worker queueing it as the pool closes): its
    /// error callback hears
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, PutError, ThreadPool, WorkRequest};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = channel();
    /// pool.put_request(WorkRequest::with_context(move |cx: &Context<'_>, n: u32| {
    ///     for i in 1..=n {
    ///         let tx = tx.clone();
    ///         cx.put(WorkRequest::new(|i: u32| i * i, i)
    ///             .with_id(100 + u64::from(i))
    ///             .on_result(move |_, square| tx.send(square).unwrap()))
    ///             .expect("the pool is open");
    ///     }
    ///     // With one worker, the children wait until this returns: still
    ///     // pending, so their ids are still taken.
    ///     let again = cx.put(WorkRequest::new(|i: u32| i, 0).with_id(101));
    ///     matches!(again, Err(PutError::DuplicateId(_)))
    /// }, 3).on_result(|_, refused| assert!(refused)))?;
    /// assert_eq!(pool.wait()?, 4);                // the parent and its 3 children
    /// assert_eq!(rx.try_iter().sum::<u32>(), 1 + 4 + 9);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put(&self, request: impl Into<WorkRequest>) -> Result<RequestId, PutError> {
        self.spawner.spawn(request.into()).map_err(put_error)
    }

    /// [`put`](Self::put) for a request whose outcome nobody hears
    /// (`Context::execute`): the spawner frees the handle's spent boxes
    /// first, in the same call.
    pub(crate) fn put_executed(&self, request: WorkRequest) -> Result<RequestId, PutError> {
        self.spawner.spawn_executed(request).map_err(put_error)
    }
}

/// A spawner's refusal as `put`'s error.
fn put_error(refusal: Refusal) -> PutError {
    match refusal {
        Refusal::ShutDown(request) => PutError::ShutDown(request),
        Refusal::DuplicateId(request) => PutError::DuplicateId(request),
    }
}
