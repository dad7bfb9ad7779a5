//! `ThreadPool`: a handle on a set of worker threads, with its own pending
//! requests and results.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flume::Receiver;

use crate::builder::Builder;
use crate::error::{PollError, PutError, ShutdownError, SpawnError, WaitError};
use crate::inbox::{Inbox, Job, Msg};
use crate::queue::{Blocked, Lifecycle, Push};
use crate::request::{RequestId, WorkRequest};
use crate::shared::Shared;

/// The worker threads, owned jointly by every handle of one pool. Dropping
/// the last handle drops this, which closes the pool.
pub(crate) struct Pool {
    pub(crate) shared: Arc<Shared>,
    /// The process-wide pool: never closed by a handle.
    pub(crate) global: bool,
}

impl Drop for Pool {
    fn drop(&mut self) {
        let shared = &self.shared;
        let queued = shared.queued();
        // Same steps as `shutdown_now`, without handing anything back: no
        // handle is left to receive it. Running requests finish on their
        // threads, which then exit; nobody waits for them.
        shared.stop(Lifecycle::Closed);
        shared.sweep(None);
        if queued > 0 {
            log::warn!("callpool: pool dropped with {queued} queued requests; they were discarded");
        }
    }
}

/// A callback-driven thread pool.
///
/// Worker threads run requests; each request's outcome comes back to the
/// `ThreadPool` value that put it, and its callback runs on the thread that
/// calls [`poll`](Self::poll), [`wait`](Self::wait) or
/// [`shutdown`](Self::shutdown) on that value, never on a worker.
///
/// A `ThreadPool` is a *handle*: [`new_handle`](Self::new_handle) makes
/// another handle on the same workers with its own pending requests, so
/// independent parts of a program can share workers without running each
/// other's callbacks. The workers stop when the pool is shut down or its last
/// handle is dropped.
///
/// `ThreadPool` is `Send + Sync`: several threads may put and poll through
/// one handle at once.
///
/// # Examples
///
/// ```
/// use callpool::{make_requests, ThreadPool, WorkRequest};
///
/// let pool = ThreadPool::new(4);
/// let reqs = make_requests(|n: u64| n * n, 0..100,
///     |id, square| println!("#{id}: {square}"),
///     |id, err| eprintln!("#{id} failed: {err}"));
/// for r in reqs {
///     pool.put_request(r)?;
/// }
/// pool.put_request(WorkRequest::new(|s: String| s.len(), "hello".into())
///     .on_result(|_, n| assert_eq!(n, 5)))?;
/// pool.create_workers(2)?;          // grow at runtime
/// pool.dismiss_workers(3);          // shrink: extra workers leave
/// pool.wait()?;                     // every callback has run, on this thread
/// assert_eq!(pool.pending(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadPool {
    // Field order is drop order: the result queue's receiver goes first, so
    // that when the last handle drops the pool, nothing can block sending
    // to this handle's (possibly bounded and full) result queue.
    results: Receiver<Msg>,
    /// Messages taken off `results` in one batch and left unhandled because
    /// a callback panicked; handled before anything else.
    stash: Mutex<VecDeque<Msg>>,
    /// Whether `stash` may hold messages (lets the common path skip its lock).
    stashed: AtomicBool,
    inbox: Arc<Inbox>,
    pool: Arc<Pool>,
}

/// How long a put may block on a full bounded queue.
#[derive(Clone, Copy)]
enum PutMode {
    Try,
    Block,
    Until(Instant),
}

impl ThreadPool {
    /// Creates a pool with `workers` threads, started now; the other settings
    /// are the [`Builder`] defaults (unbounded queues). Zero workers is
    /// allowed: requests wait until workers are created.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread, or `workers`
    /// exceeds [`MAX_WORKERS`](crate::MAX_WORKERS). Use
    /// [`builder`](Self::builder) to get an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(2);
    /// assert_eq!(pool.workers(), 2);
    /// ```
    pub fn new(workers: usize) -> ThreadPool {
        match Builder::new().workers(workers).build() {
            Ok(pool) => pool,
            Err(e) => panic!("callpool: {e}"),
        }
    }

    /// A [`Builder`] for a pool with custom settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::builder()
    ///     .workers(3)
    ///     .queue_capacity(64)
    ///     .thread_name("resizer")
    ///     .build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), callpool::BuildError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_pool(pool: Arc<Pool>) -> ThreadPool {
        let (inbox, results) = Inbox::new(pool.shared.config.result_capacity);
        pool.shared.register_inbox(&inbox);
        ThreadPool {
            results,
            stash: Mutex::new(VecDeque::new()),
            stashed: AtomicBool::new(false),
            inbox,
            pool,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.pool.shared
    }

    /// Another handle on the same workers, with its own pending requests and
    /// results: it never runs this handle's callbacks, nor this one its.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let a = ThreadPool::new(2);
    /// let b = a.new_handle();
    /// a.put_request(WorkRequest::new(|x: u8| x, 1))?;
    /// assert_eq!((a.pending(), b.pending()), (1, 0));
    /// assert!(b.poll().is_err()); // nothing pending on b
    /// a.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn new_handle(&self) -> ThreadPool {
        ThreadPool::from_pool(Arc::clone(&self.pool))
    }

    /// Puts a request on the queue and returns its id. On a bounded queue
    /// that is full, it blocks until there is room, and meanwhile handles
    /// this handle's results on the calling thread (running their callbacks),
    /// so a thread that both puts and polls never deadlocks.
    ///
    /// # Errors
    ///
    /// Hands the request back in [`PutError::ShutDown`] after shutdown,
    /// [`PutError::DuplicateId`] if its user-chosen id is pending here, and
    /// [`PutError::NoWorkers`] if the queue is full and no worker is left.
    ///
    /// # Panics
    ///
    /// A panic in a callback run while blocked passes through; the request
    /// being put is then dropped (and logged), the pool stays consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let id = pool.put_request(WorkRequest::new(|x: u32| x + 1, 1).with_id(7))?;
    /// assert_eq!(id.value(), 7);
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_request(&self, request: impl Into<WorkRequest>) -> Result<RequestId, PutError> {
        self.put(request.into(), PutMode::Block)
    }

    /// Puts a request without blocking.
    ///
    /// # Errors
    ///
    /// As [`put_request`](Self::put_request), and [`PutError::Full`] when a
    /// bounded queue has no room.
    pub fn try_put_request(&self, request: impl Into<WorkRequest>) -> Result<RequestId, PutError> {
        self.put(request.into(), PutMode::Try)
    }

    /// Puts a request, blocking at most `timeout` for room in a bounded
    /// queue (handling results meanwhile, as `put_request` does).
    ///
    /// # Errors
    ///
    /// As [`put_request`](Self::put_request), and [`PutError::Timeout`] when
    /// no room came in time.
    pub fn put_request_timeout(
        &self,
        request: impl Into<WorkRequest>,
        timeout: Duration,
    ) -> Result<RequestId, PutError> {
        let mode = match Instant::now().checked_add(timeout) {
            Some(deadline) => PutMode::Until(deadline),
            None => PutMode::Block,
        };
        self.put(request.into(), mode)
    }

    fn put(&self, request: WorkRequest, mode: PutMode) -> Result<RequestId, PutError> {
        let id = request.id();
        if self.inbox.register(id).is_err() {
            return Err(PutError::DuplicateId(request));
        }
        // Registered before it is queued, so its result can never arrive
        // unannounced (model weakness W10).
        let job = Job {
            task: request.task,
            inbox: Arc::clone(&self.inbox),
        };
        match self.shared().queue.push(job) {
            Push::Queued => {
                if self.shared().threads() == 0 {
                    // A waiter that counted this request as in flight (it
                    // was registered, not yet queued) must re-count it.
                    self.inbox.wake_waiters(0);
                }
                Ok(id)
            }
            Push::QueuedLate => {
                self.sweep_late();
                Ok(id)
            }
            Push::Closed(job) => Err(self.reject(job, PutError::ShutDown)),
            Push::Full(job) => match mode {
                PutMode::Try => Err(self.reject(job, PutError::Full)),
                PutMode::Block => self.put_blocking(job, None),
                PutMode::Until(deadline) => self.put_blocking(job, Some(deadline)),
            },
        }
    }

    /// The pool closed while this put was pushing its request, after (or
    /// while) the closer swept: sweep again, so that the request is
    /// cancelled to its callback rather than left in a closed queue.
    fn sweep_late(&self) {
        self.shared().sweep(None);
    }

    fn reject(&self, job: Job, kind: fn(WorkRequest) -> PutError) -> PutError {
        self.inbox.unregister(job.id(), false);
        if self.shared().threads() == 0 {
            // A waiter may be counting this request as in flight (see `block`).
            self.inbox.wake_waiters(0);
        }
        kind(job.into_request())
    }

    /// The slow path of a put on a full bounded queue. It sleeps until there
    /// is room, and wakes up to handle this handle's results whenever a
    /// worker is stuck sending one to a full result queue: that is what
    /// keeps a thread that both puts and polls out of deadlock.
    fn put_blocking(&self, mut job: Job, deadline: Option<Instant>) -> Result<RequestId, PutError> {
        let shared = self.shared();
        let id = job.id();
        loop {
            job = match shared.queue.push_blocking(
                job,
                |job| job.inbox.has_stuck_senders(),
                || shared.threads(),
                deadline,
            ) {
                Ok(Push::QueuedLate) => {
                    self.sweep_late();
                    return Ok(id);
                }
                Ok(_) => return Ok(id),
                Err(Blocked::Closed(job)) => return Err(self.reject(job, PutError::ShutDown)),
                Err(Blocked::NoWorkers(job)) => return Err(self.reject(job, PutError::NoWorkers)),
                Err(Blocked::Timeout(job)) => return Err(self.reject(job, PutError::Timeout)),
                Err(Blocked::HandleResults(job)) => job,
            };
            let handled = panic::catch_unwind(AssertUnwindSafe(|| self.drain_ready()));
            if let Err(payload) = handled {
                log::warn!(
                    "callpool: request {id} was not put: a callback panicked while the put waited"
                );
                self.inbox.unregister(id, false);
                drop(job);
                panic::resume_unwind(payload);
            }
        }
    }

    /// Handles every result that is ready, on this thread, without blocking;
    /// returns how many (possibly 0 while requests are still running).
    ///
    /// # Errors
    ///
    /// [`PollError::NoResultsPending`] when no request of this handle is
    /// pending at the call.
    ///
    /// # Panics
    ///
    /// A panic in a callback passes through. That request is no longer
    /// pending; results not yet handled stay for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PollError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    /// pool.put_request(WorkRequest::new(|x: u8| x, 1))?;
    /// let mut handled = 0;
    /// while pool.pending() > 0 {
    ///     handled += pool.poll()?;
    /// #   std::thread::yield_now();
    /// }
    /// assert_eq!(handled, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&self) -> Result<usize, PollError> {
        if self.inbox.pending() == 0 {
            return Err(PollError::NoResultsPending);
        }
        // Bounded by what is ready now, so a stream of fresh results cannot
        // keep one call going for ever.
        Ok(self.handle_ready(false))
    }

    /// Blocks until at least one result is ready (or `timeout` passes), then
    /// handles every ready result; returns how many.
    ///
    /// # Errors
    ///
    /// [`PollError::NoResultsPending`] when nothing is pending,
    /// [`PollError::Timeout`], [`PollError::NoWorkersAvailable`] when nothing
    /// can arrive, [`PollError::OnWorkerThread`] on a worker of this pool.
    pub fn poll_timeout(&self, timeout: Duration) -> Result<usize, PollError> {
        if self.inbox.pending() == 0 {
            return Err(PollError::NoResultsPending);
        }
        let deadline = Instant::now().checked_add(timeout);
        match self.block(deadline, true) {
            Ok(n) => Ok(n),
            Err(WaitError::Timeout { pending }) => Err(PollError::Timeout { pending }),
            Err(WaitError::NoWorkersAvailable { pending }) => {
                Err(PollError::NoWorkersAvailable { pending })
            }
            Err(WaitError::OnWorkerThread) => Err(PollError::OnWorkerThread),
        }
    }

    /// Handles results, on this thread, until no request of this handle is
    /// pending; returns how many it handled. Requests that callbacks put
    /// meanwhile are waited for too. Returns at once if nothing is pending.
    ///
    /// # Errors
    ///
    /// [`WaitError::NoWorkersAvailable`] when requests are pending that no
    /// worker can run (none is left), after every result in flight was
    /// handled; [`WaitError::OnWorkerThread`] on a worker of this pool. In a
    /// pool that another handle stopped with
    /// [`shutdown_now`](Self::shutdown_now), queued requests are cancelled to
    /// their error callbacks instead, and `wait` handles those outcomes.
    ///
    /// # Panics
    ///
    /// A panic in a callback passes through; that request is no longer
    /// pending and the next `wait` carries on with the rest.
    ///
    /// # Deadlocks
    ///
    /// None from the pool itself: calling `wait` from a callback works (it
    /// handles the other results), and two threads waiting on one handle both
    /// return. A callable that never returns keeps `wait` waiting; use
    /// [`wait_timeout`](Self::wait_timeout) to bound it.
    pub fn wait(&self) -> Result<usize, WaitError> {
        self.block(None, false)
    }

    /// [`wait`](Self::wait), giving up after `timeout` with
    /// [`WaitError::Timeout`] (results handled so far stay handled).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WaitError, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(0); // no workers: nothing can run
    /// pool.put_request(WorkRequest::new(|x: u8| x, 1))?;
    /// assert_eq!(pool.wait_timeout(Duration::from_secs(5)),
    ///            Err(WaitError::NoWorkersAvailable { pending: 1 }));
    /// pool.create_workers(1)?;
    /// assert_eq!(pool.wait_timeout(Duration::from_secs(5)), Ok(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, WaitError> {
        self.block(Instant::now().checked_add(timeout), false)
    }

    /// The blocking loop behind `wait` and `poll_timeout`.
    fn block(&self, deadline: Option<Instant>, one_is_enough: bool) -> Result<usize, WaitError> {
        let shared = self.shared();
        if shared.on_worker_thread() {
            return Err(WaitError::OnWorkerThread);
        }
        // Counted as a waiter before reading `pending`: see Inbox::unregister.
        let _waiter = self.inbox.waiter();
        let mut handled = 0;
        loop {
            handled += self.drain_ready();
            if self.inbox.pending() == 0 || (one_is_enough && handled > 0) {
                return Ok(handled);
            }
            if shared.threads() == 0 {
                // No thread left: whatever was in flight is in our queue now,
                // or in the hands of another thread handling this handle's
                // results (which wakes us when it has: see `handle`).
                handled += self.drain_ready();
                let pending = self.inbox.pending();
                if pending == 0 || (one_is_enough && handled > 0) {
                    return Ok(handled);
                }
                // In a closed pool, what is still queued is being swept by
                // the closer (or a late putter), which cancels it to us: wait
                // for those outcomes. Otherwise it is stranded.
                if shared.lifecycle() != Lifecycle::Closed
                    && shared.queued_for(&self.inbox) >= pending
                {
                    return Err(WaitError::NoWorkersAvailable { pending });
                }
            }
            // Blocks with no timeout but the caller's: a result, or a wake-up
            // (the last request was handled elsewhere, or no thread is left).
            let msg = match deadline {
                None => self.results.recv().ok(),
                Some(deadline) => match self.results.recv_deadline(deadline) {
                    Ok(msg) => Some(msg),
                    Err(flume::RecvTimeoutError::Timeout) => {
                        return Err(WaitError::Timeout {
                            pending: self.inbox.pending(),
                        })
                    }
                    Err(flume::RecvTimeoutError::Disconnected) => None,
                },
            };
            if let Some(msg) = msg {
                handled += self.handle(msg, true);
            }
        }
    }

    fn drain_ready(&self) -> usize {
        self.handle_ready(true)
    }

    /// Handles the messages ready now: any left over by a panicking
    /// callback first, then everything queued, taken with one lock.
    fn handle_ready(&self, caller_waits: bool) -> usize {
        let mut handled = 0;
        if self.stashed.load(Ordering::Acquire) {
            loop {
                let next = self.stash().pop_front();
                let Some(msg) = next else { break };
                handled += self.handle_guarded(msg, caller_waits, std::iter::empty());
            }
            // Acquire/Release: a thread that sees `false` sees the stash's
            // last state; a stale `true` only costs one look at the lock.
            let stash = self.stash();
            self.stashed.store(!stash.is_empty(), Ordering::Release);
        }
        let mut batch = self.results.drain();
        while let Some(msg) = batch.next() {
            handled += self.handle_guarded(msg, caller_waits, &mut batch);
        }
        handled
    }

    /// Handles one message; if its callback panics, keeps `rest` (taken off
    /// the queue with it) in the stash before the panic goes on, so that no
    /// result is lost, and wakes waiters to look there.
    fn handle_guarded(
        &self,
        msg: Msg,
        caller_waits: bool,
        rest: impl Iterator<Item = Msg>,
    ) -> usize {
        match panic::catch_unwind(AssertUnwindSafe(|| self.handle(msg, caller_waits))) {
            Ok(n) => n,
            Err(payload) => {
                let mut stash = self.stash();
                stash.extend(rest);
                if !stash.is_empty() {
                    self.stashed.store(true, Ordering::Release);
                }
                drop(stash);
                self.inbox.wake_waiters(usize::from(caller_waits));
                panic::resume_unwind(payload)
            }
        }
    }

    fn stash(&self) -> std::sync::MutexGuard<'_, VecDeque<Msg>> {
        // Only `extend` and `pop_front` run under this lock; neither panics
        // in a way that breaks the deque, so poisoning is ignored.
        self.stash.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one message and returns how many results it was (0 or 1).
    /// An outcome first ends its pending life (so a panicking or re-entrant
    /// callback finds the pool consistent), then runs its callback. A wake-up
    /// taken by a thread that is not waiting is passed on to the waiters.
    fn handle(&self, msg: Msg, caller_waits: bool) -> usize {
        match msg {
            Msg::Wake => {
                if !caller_waits {
                    self.inbox.forward_wake();
                }
                return 0;
            }
            Msg::Done(mut task) => {
                let id = task.id();
                self.inbox.unregister(id, caller_waits);
                // With no thread left, a waiter that found this result gone
                // from the queue waits for us to finish with it: tell it.
                if self.shared().threads() == 0 {
                    self.inbox.wake_waiters(usize::from(caller_waits));
                }
                log::trace!("callpool: handling result of request {id}");
                task.task.report(id);
            }
        }
        1
    }

    /// Starts `n` more workers.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] if the OS refuses a thread (the workers started before
    /// it keep running, and the error says how many), if the pool would pass
    /// [`MAX_WORKERS`](crate::MAX_WORKERS), or after shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(1);
    /// pool.create_workers(2)?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), callpool::SpawnError>(())
    /// ```
    pub fn create_workers(&self, n: usize) -> Result<(), SpawnError> {
        self.shared().create_workers(n)
    }

    /// Dismisses up to `n` workers, newest first, and returns how many.
    /// Asking for more than exist dismisses all. Idle workers exit at once;
    /// busy ones after their current request. A dismissed worker takes no
    /// other request: queued requests stay queued, in order, for the others.
    /// Join the threads with
    /// [`join_all_dismissed_workers`](Self::join_all_dismissed_workers).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(3);
    /// assert_eq!(pool.dismiss_workers(5), 3);
    /// assert_eq!(pool.workers(), 0);
    /// pool.join_all_dismissed_workers();
    /// assert_eq!(pool.threads(), 0);
    /// ```
    pub fn dismiss_workers(&self, n: usize) -> usize {
        self.shared().dismiss_workers(n)
    }

    /// Joins every dismissed worker thread and returns how many. Idle
    /// dismissed workers have already exited or are exiting, so this only
    /// waits for busy ones to finish their current request. If one of them
    /// waits for room in this handle's bounded result queue, this handles
    /// the handle's results (running their callbacks) to make room.
    ///
    /// # Deadlocks
    ///
    /// If a dismissed worker waits for room in *another* handle's full
    /// result queue, this waits until that handle is polled.
    pub fn join_all_dismissed_workers(&self) -> usize {
        // A dismissed worker may be blocked sending to this handle's full
        // result queue: handle our results whenever that happens, or the
        // join would wait for ever on a thread that waits for us.
        loop {
            let shared = self.shared();
            match shared.join_dismissed_when_exited(|| self.inbox.has_stuck_senders()) {
                Some(joined) => return joined,
                None => {
                    self.drain_ready();
                }
            }
        }
    }

    /// Creates or dismisses workers so that `n` are live.
    ///
    /// # Errors
    ///
    /// As [`create_workers`](Self::create_workers) when growing.
    pub fn resize(&self, n: usize) -> Result<(), SpawnError> {
        self.shared().resize(n)
    }

    /// Live (not dismissed) workers.
    pub fn workers(&self) -> usize {
        self.shared().live_workers()
    }

    /// Worker threads still running: live workers, plus dismissed ones that
    /// are finishing a request or exiting.
    pub fn threads(&self) -> usize {
        self.shared().threads()
    }

    /// Requests of this handle put and not yet handled (queued, running, or
    /// with a result waiting for `poll`).
    pub fn pending(&self) -> usize {
        self.inbox.pending()
    }

    /// Requests in the shared queue, not yet taken by a worker (all handles).
    pub fn queued(&self) -> usize {
        self.shared().queued()
    }

    /// Whether the pool has been shut down (puts are refused).
    pub fn is_shut_down(&self) -> bool {
        self.shared().lifecycle() != Lifecycle::Open
    }

    /// Shuts the pool down gracefully: refuses new requests (on every
    /// handle), lets the workers run everything queued, handles this
    /// handle's results on this thread, and joins every worker thread.
    ///
    /// Other handles keep their results to poll. On a handle of the
    /// [`global`](crate::global) pool, which lives as long as the process,
    /// this only waits for this handle's requests.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Unrun`] hands back this handle's requests that never
    /// ran because no worker was left; [`ShutdownError::OnWorkerThread`] on a
    /// worker of this pool (nothing is shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let done = Arc::new(AtomicUsize::new(0));
    /// let pool = ThreadPool::new(2);
    /// for i in 0..10 {
    ///     let done = Arc::clone(&done);
    ///     pool.put_request(WorkRequest::new(|x: u32| x * 2, i)
    ///         .on_result(move |_, _| { done.fetch_add(1, Ordering::Relaxed); }))?;
    /// }
    /// pool.shutdown()?;
    /// assert_eq!(done.load(Ordering::Relaxed), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(self) -> Result<(), ShutdownError> {
        self.shutdown_until(None)
    }

    /// [`shutdown`](Self::shutdown), giving up after `timeout`: threads
    /// still running then (a callable that never returns) are left to finish
    /// on their own, reported in [`ShutdownError::TimedOut`].
    pub fn shutdown_timeout(self, timeout: Duration) -> Result<(), ShutdownError> {
        self.shutdown_until(Instant::now().checked_add(timeout))
    }

    fn shutdown_until(self, deadline: Option<Instant>) -> Result<(), ShutdownError> {
        let shared = Arc::clone(self.shared());
        if shared.on_worker_thread() {
            return Err(ShutdownError::OnWorkerThread);
        }
        let timed_out = |pending| ShutdownError::TimedOut {
            threads: shared.threads(),
            pending,
        };
        if self.pool.global {
            return match self.block(deadline, false) {
                Ok(_) => Ok(()),
                Err(WaitError::Timeout { pending }) => Err(timed_out(pending)),
                Err(_) => Err(ShutdownError::Unrun(shared.extract(&self.inbox))),
            };
        }
        shared.stop(Lifecycle::Draining);
        // If a callback panics out of this shutdown, close the pool on the
        // way out, so other handles' queued requests are cancelled to them
        // rather than left in a pool that drains with no worker.
        let _close_on_panic = CloseOnPanic(&shared, &self.inbox);
        // Handle our results while the workers drain the queue: with a
        // bounded result queue they may need us to make room.
        if let Err(WaitError::Timeout { pending }) = self.block(deadline, false) {
            return Err(timed_out(pending));
        }
        let left = shared.wait_threads_exited(deadline);
        if left > 0 {
            return Err(timed_out(self.pending()));
        }
        shared.join_dismissed();
        shared.stop(Lifecycle::Closed);
        let unrun = shared.sweep(Some(&self.inbox));
        log::debug!("callpool: pool shut down");
        if unrun.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::Unrun(unrun))
        }
    }

    /// Stops the pool at once and hands back this handle's requests that no
    /// worker had started. Requests of other handles that had not started
    /// are cancelled (their error callbacks get
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled)). Running
    /// requests finish on their threads, which then exit; this handle's
    /// results are discarded, other handles still receive theirs. Nothing
    /// blocks.
    ///
    /// On a handle of the [`global`](crate::global) pool, only this handle's
    /// queued requests are taken out and handed back; the pool keeps running.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(0);
    /// for i in 0..3 {
    ///     pool.put_request(WorkRequest::new(|x: u32| x, i))?;
    /// }
    /// let unstarted = pool.shutdown_now();
    /// assert_eq!(unstarted.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_now(self) -> Vec<WorkRequest> {
        let shared = self.shared();
        if self.pool.global {
            return shared.extract(&self.inbox);
        }
        shared.stop(Lifecycle::Closed);
        shared.sweep(Some(&self.inbox))
    }
}

/// Closes and sweeps a pool whose graceful shutdown was interrupted by a
/// panicking callback (see `shutdown_until`). The shutting-down handle's own
/// queued requests are taken out and dropped, not cancelled to it: its
/// result queue may be bounded and full, and nobody will poll it again.
struct CloseOnPanic<'a>(&'a Shared, &'a Arc<Inbox>);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop(Lifecycle::Closed);
            let dropped = self.0.sweep(Some(self.1));
            if !dropped.is_empty() {
                log::warn!(
                    "callpool: {} queued requests dropped: a callback panicked during shutdown",
                    dropped.len()
                );
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        let pending = self.inbox.pending();
        if pending > 0 {
            log::warn!(
                "callpool: handle dropped with {pending} requests pending; their outcomes are discarded"
            );
        }
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers())
            .field("threads", &self.threads())
            .field("pending", &self.pending())
            .field("queued", &self.queued())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}
