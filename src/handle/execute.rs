//! [`ThreadPool::execute`] and [`Context::execute`]: requests whose outcome
//! nobody hears. They count as pending on their handle until they have
//! run, so `wait` covers them, and they end on the worker that ran them:
//! nothing comes back to the polling thread.

use std::time::Duration;

use crate::error::PutError;
use crate::handle::PutMode;
use crate::request::in_place::in_place;
use crate::request::{Context, RequestId, WorkRequest};
use crate::ThreadPool;

impl ThreadPool {
    /// Puts a request that calls `work` on a worker and whose outcome
    /// nobody hears: fire and forget, as rust-threadpool's `execute`, but
    /// covered by [`wait`](Self::wait).
    ///
    /// It counts as pending on this handle until it has run, so `wait`,
    /// [`pending`](Self::pending) and a graceful
    /// [`shutdown`](Self::shutdown) count it; and it ends on the worker that
    /// ran it. Nothing comes back: it takes no room in the result queue,
    /// no callback runs for it, and `wait` and `poll` do not count it in
    /// the results they return. So a request that only does something
    /// (writes a file, adds to a sum) saves the trip back that a
    /// [`put_request`](Self::put_request) makes even with no callback
    /// attached, and it keeps nothing queued until a `wait`: memory stays
    /// bounded for a thread that never waits. Whether it is faster depends
    /// on the load. A million children added from one request took a
    /// quarter to a third of the time of children with callbacks on one
    /// worker, and about the same on two and four. A million closures
    /// executed from one thread, then waited for, took 0.58-0.75 of
    /// rust-threadpool's time, but about 1.4 times that of the same
    /// closures put with `put_request` and waited for, whose outcomes all
    /// wait, queued, for the `wait` (`docs/performance.md`, *Work nobody
    /// hears* and *Fire and forget*). For a value back, use `put_request`
    /// with a callback, or [`submit`](Self::submit).
    ///
    /// A panic in `work` is caught, logged at error level (through the
    /// `log` facade, on the worker) and counted in
    /// [`Stats::panicked`](crate::Stats::panicked); the worker lives on.
    /// [`cancel`](Self::cancel) with the returned id ends it unrun while
    /// it is queued (counted in `Stats::cancelled`). A full bounded request
    /// queue blocks the put, as `put_request` does; a `shutdown_now` hands
    /// it back unrun, as a request that
    /// [`put_request`](Self::put_request) can put again (not in a batch:
    /// [`put_batch`](Self::put_batch) refuses it, since its outcome never
    /// comes back to the handle).
    ///
    /// **`wait` (or [`shutdown`](Self::shutdown)) before you drop the last
    /// handle.** Unlike rust-threadpool, whose workers go on through the
    /// queue after the pool is dropped, dropping a pool's last handle
    /// closes it at once, as [`shutdown_now`](Self::shutdown_now) does:
    /// executed requests still queued are dropped unrun (logged at warn
    /// level), as any queued request is.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] when the pool no longer accepts requests,
    /// and [`PutError::NoWorkers`] when a full bounded request queue has
    /// no worker to empty it, as for `put_request`: the request is handed
    /// back.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let sum = Arc::new(AtomicU64::new(0));
    /// for n in 1..=100u64 {
    ///     let sum = Arc::clone(&sum);
    ///     pool.execute(move || {
    ///         sum.fetch_add(n, Ordering::Relaxed);
    ///     })?;
    /// }
    /// assert_eq!(pool.wait()?, 0);        // covered by `wait`, but no result to handle
    /// assert_eq!(sum.load(Ordering::Relaxed), 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute<F>(&self, work: F) -> Result<RequestId, PutError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.put_executed(without_context(work), PutMode::Block)
    }

    /// [`execute`](Self::execute) that never blocks: on a full bounded
    /// request queue it hands the request back at once, as
    /// [`try_put_request`](Self::try_put_request) does. The request handed
    /// back is still one whose outcome nobody hears; put it again with any
    /// `put_request` form.
    ///
    /// # Errors
    ///
    /// [`PutError::Full`] when the bounded request queue has no room, and
    /// the errors of [`execute`](Self::execute); the request is handed
    /// back uncalled.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool};
    ///
    /// // No worker yet: nothing leaves the queue while it fills.
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(2).build()?;
    /// pool.try_execute(|| {})?;
    /// pool.try_execute(|| {})?;
    /// let refused = match pool.try_execute(|| {}) {
    ///     Err(PutError::Full(request)) => request,
    ///     other => panic!("expected Full, got {other:?}"),
    /// };
    /// pool.create_workers(1)?;
    /// pool.wait()?;
    /// pool.try_put_request(refused)?;         // room again
    /// assert_eq!(pool.wait()?, 0);
    /// assert_eq!(pool.stats().completed, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_execute<F>(&self, work: F) -> Result<RequestId, PutError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.put_executed(without_context(work), PutMode::Try)
    }

    /// [`execute`](Self::execute) that waits at most `timeout` for room in
    /// a full bounded request queue, as
    /// [`put_request_timeout`](Self::put_request_timeout) does.
    ///
    /// # Errors
    ///
    /// [`PutError::Timeout`] when no room came in time, and the errors of
    /// [`execute`](Self::execute); the request is handed back uncalled.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// // The worker waits on the gate; a second request fills the queue.
    /// pool.execute(move || { let _ = gate.recv(); })?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// pool.execute(|| {})?;
    /// match pool.execute_timeout(|| {}, Duration::from_millis(10)) {
    ///     Err(PutError::Timeout(_)) => {}
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// drop(open);
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute_timeout<F>(&self, work: F, timeout: Duration) -> Result<RequestId, PutError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.put_executed(without_context(work), PutMode::within(timeout))
    }

    /// [`execute`](Self::execute) for a callable that takes the request's
    /// [`Context`], through which it adds more requests to this handle:
    /// work that makes work with no outcome to hear, which `wait` covers to
    /// the last request added.
    ///
    /// # Errors
    ///
    /// As for [`execute`](Self::execute).
    ///
    /// # Examples
    ///
    /// A walk of a binary tree of depth 10, each node counted where it is
    /// visited:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// fn visit(cx: &Context<'_>, depth: u32, seen: Arc<AtomicU64>) {
    ///     seen.fetch_add(1, Ordering::Relaxed);
    ///     if depth > 0 {
    ///         for _ in 0..2 {
    ///             let seen = Arc::clone(&seen);
    ///             cx.execute_with_context(move |cx| visit(cx, depth - 1, seen))
    ///                 .expect("the pool is open");
    ///         }
    ///     }
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let root = Arc::clone(&seen);
    /// pool.execute_with_context(move |cx| visit(cx, 10, root))?;
    /// pool.wait()?;
    /// assert_eq!(seen.load(Ordering::Relaxed), (1 << 11) - 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute_with_context<F>(&self, work: F) -> Result<RequestId, PutError>
    where
        F: FnOnce(&Context<'_>) + Send + 'static,
    {
        self.put_executed(in_place(work), PutMode::Block)
    }

    /// Puts an executed request, first freeing here the emptied boxes of
    /// those the workers ran (`Inbox::take_spent`).
    fn put_executed(&self, request: WorkRequest, mode: PutMode) -> Result<RequestId, PutError> {
        self.inbox().take_spent();
        self.put(request, mode)
    }
}

impl Context<'_> {
    /// Adds a request whose outcome nobody hears to the handle the running
    /// request belongs to: [`ThreadPool::execute`] from inside a callable,
    /// put as [`put`](Self::put) puts a child (counted pending at once,
    /// never blocking, held in the worker's slot and queued in batches).
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] when the pool no longer accepts requests; the
    /// request is handed back.
    ///
    /// # Examples
    ///
    /// One request adds a thousand, each adding its square to a sum where
    /// it runs:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let total = Arc::clone(&sum);
    /// pool.execute_with_context(move |cx: &Context<'_>| {
    ///     for i in 0..1_000u64 {
    ///         let sum = Arc::clone(&total);
    ///         cx.execute(move || {
    ///             sum.fetch_add(i * i, Ordering::Relaxed);
    ///         })
    ///         .expect("the pool is open");
    ///     }
    /// })?;
    /// pool.wait()?;
    /// assert_eq!(sum.load(Ordering::Relaxed), (0..1_000u64).map(|i| i * i).sum());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute<F>(&self, work: F) -> Result<RequestId, PutError>
    where
        F: FnOnce() + Send + 'static,
    {
        self.put_executed(without_context(work))
    }

    /// [`execute`](Self::execute) for a callable that takes its own
    /// context, to add more requests in turn (see
    /// [`ThreadPool::execute_with_context`]).
    ///
    /// # Errors
    ///
    /// As for [`execute`](Self::execute).
    pub fn execute_with_context<F>(&self, work: F) -> Result<RequestId, PutError>
    where
        F: FnOnce(&Context<'_>) + Send + 'static,
    {
        self.put_executed(in_place(work))
    }
}

/// The request for `work`, which takes no context.
fn without_context<F>(work: F) -> WorkRequest
where
    F: FnOnce() + Send + 'static,
{
    in_place(move |_: &Context<'_>| work())
}
