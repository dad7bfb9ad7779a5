//! `ThreadPool`: a handle on a set of worker threads, with its own pending
//! requests and results. The operations are built from the pool's shared
//! state (`crate::pool`) and the handle's inbox (`crate::inbox`);
//! [`shutdown`] holds the ways a handle ends the pool.

mod batch;
mod context;
mod execute;
mod shutdown;
mod tickets;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{PollError, PutError, SpawnError, WaitError};
use crate::inbox::receive::{Results, Until};
use crate::inbox::Job;
use crate::lookout::{Home, Lookouts};
use crate::pool::queue::Lifecycle;
use crate::pool::{Blocked, Pool, PoolOwner, Push};
use crate::request::{RequestId, WorkRequest};

pub use crate::pool::stats::Stats;
pub use batch::Batch;

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
/// one handle at once. It is also cheaply `Clone`: clones share one results
/// domain (what one puts, a `wait` on another covers), the way
/// rust-threadpool's handle does; [`new_handle`](Self::new_handle) is for a
/// domain of one's own. [`close`](Self::close) shuts the pool down from a
/// shared reference.
///
/// **Dropping the last handle with requests queued discards them** (drop
/// never blocks: one warning is logged with their number). Call
/// [`wait`](Self::wait) or [`shutdown`](Self::shutdown) first if the work
/// must be done.
///
/// **A callback that owns a handle of its own pool keeps the pool alive**:
/// the request holds the callback, the callback holds the handle, and the
/// pool (with its workers) is never dropped if that request's outcome is
/// never handled. A callback that puts follow-ups should capture a
/// [`WeakPool`] ([`downgrade`](Self::downgrade)) and upgrade it when it
/// runs; a callable should use its [`Context`](crate::Context) instead.
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
#[derive(Clone)]
pub struct ThreadPool {
    // Field order is drop order: the results go first, so that when the
    // last handle drops the pool, nothing can block sending to this
    // handle's (possibly bounded and full) result queue. Shared by clones:
    // the last clone to go drops the result queue.
    results: Arc<Results>,
    owner: Arc<PoolOwner>,
}

// A panic from a callback passes through `wait` and `poll` with the pool
// consistent (that request is handled, the rest stay pending: see their
// *Panics*), so catching one needs no `AssertUnwindSafe`.
impl std::panic::UnwindSafe for ThreadPool {}
impl std::panic::RefUnwindSafe for ThreadPool {}

/// A handle that does not keep its pool alive ([`ThreadPool::downgrade`]):
/// what a callback should capture to put follow-ups on the handle that
/// runs it.
///
/// # Examples
///
/// ```
/// use callpool::{ThreadPool, WorkRequest};
///
/// let pool = ThreadPool::new(2);
/// let weak = pool.downgrade();
/// pool.put_request(WorkRequest::new(|n: u32| n, 1).on_result(move |_, n| {
///     if let Some(pool) = weak.upgrade() {          // None once the pool is gone
///         pool.put_request(WorkRequest::new(|n: u32| n + 1, n)).unwrap();
///     }
/// }))?;
/// assert_eq!(pool.wait()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WeakPool {
    results: std::sync::Weak<Results>,
    owner: std::sync::Weak<PoolOwner>,
}

impl WeakPool {
    /// The handle again (sharing its results domain), if the pool still has
    /// a handle; `None` once every handle of its domain is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let clone = pool.clone();
    /// let weak = pool.downgrade();
    /// drop(pool);
    /// // A clone is left: the upgrade shares its results.
    /// weak.upgrade().expect("a clone is left").put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// assert_eq!(clone.wait()?, 1);
    /// drop(clone);
    /// assert!(weak.upgrade().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn upgrade(&self) -> Option<ThreadPool> {
        Some(ThreadPool {
            results: self.results.upgrade()?,
            owner: self.owner.upgrade()?,
        })
    }
}

/// What a thread blocked on a ticket or a collector of this handle does
/// for it (`crate::lookout`).
impl Home for ThreadPool {
    fn lookouts(&self) -> Option<Arc<Lookouts>> {
        self.inbox().lookouts().cloned()
    }

    fn make_room(&self) -> bool {
        // SeqCst (in `has_stuck_senders`): read after the watch was
        // registered; see `Lookouts::watch`.
        if !self.inbox().has_stuck_senders() || self.on_worker_thread() {
            return false;
        }
        // As a putter does: not a waiter, so this handle's waiters still
        // get every wake token.
        if self.results.handle_ready(self.shared()) == 0 {
            // Nothing there: the stuck worker's result was handed over and
            // it is about to count itself out, or it has not sent yet. The
            // caller looks again (parking could miss the worker blocking
            // on a queue refilled meanwhile: it nudges only once); the
            // yield lets that worker run instead of this thread spinning.
            crate::sync::yield_now();
        }
        true
    }
}

/// A ticket's home does not keep the pool alive: the ticket's request
/// still ends (cancelled, at worst) when the last handle goes.
impl Home for WeakPool {
    fn lookouts(&self) -> Option<Arc<Lookouts>> {
        self.upgrade()?.lookouts()
    }

    fn make_room(&self) -> bool {
        self.upgrade().is_some_and(|pool| pool.make_room())
    }
}

/// A weak handle to no pool, as [`Weak::new`](std::sync::Weak::new) is:
/// [`upgrade`](WeakPool::upgrade) returns `None`. For a field that is set
/// once the pool exists.
impl Default for WeakPool {
    fn default() -> Self {
        WeakPool {
            results: std::sync::Weak::new(),
            owner: std::sync::Weak::new(),
        }
    }
}

impl fmt::Debug for WeakPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakPool")
            .field("alive", &(self.results.strong_count() > 0))
            .finish()
    }
}

/// A request whose put a callback's panic interrupted: dropped, no longer
/// pending (its callbacks never run), and the panic goes on.
fn drop_unput(job: Job, payload: crate::unwind::Payload) -> ! {
    log::warn!(
        "callpool: request {} was not put: a callback panicked while the put waited",
        job.id()
    );
    drop(job);
    panic::resume_unwind(payload)
}

/// How long a put may block on a full bounded queue.
#[derive(Clone, Copy)]
pub(crate) enum PutMode {
    Try,
    Block,
    Until(Instant),
}

impl PutMode {
    /// Waiting at most `timeout`: until then, or for ever if the deadline
    /// is past what `Instant` can hold.
    pub(crate) fn within(timeout: Duration) -> PutMode {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => PutMode::Until(deadline),
            None => PutMode::Block,
        }
    }
}

/// Why a put past a full queue gave up
/// (`ThreadPool::put_blocking_or_panic`, `ThreadPool::push_past_capacity`):
/// its job comes back still registered, its user-chosen id still held, for
/// the caller to refuse (`ThreadPool::reject`) or, a batch's member, to hand
/// back or cancel with the rest. Freeing the id and registering it again
/// would let a put of the same id on another thread take it in between.
enum Refused {
    ShutDown(Job),
    NoWorkers(Job),
    Timeout(Job),
}

impl Refused {
    /// The refused job, still registered.
    fn into_job(self) -> Job {
        match self {
            Refused::ShutDown(job) | Refused::NoWorkers(job) | Refused::Timeout(job) => job,
        }
    }
}

/// How a put's first step (`ThreadPool::push_new`) went.
enum Pushed {
    Queued(RequestId),
    /// The bounded queue is full: the request is registered, not queued.
    Full(Job),
}

impl ThreadPool {
    /// A new handle on the pool `owner` owns.
    pub(crate) fn from_owner(owner: Arc<PoolOwner>) -> ThreadPool {
        let results = Arc::new(Results::new(owner.pool.config.result_capacity));
        owner.pool.register_inbox(results.inbox());
        ThreadPool { results, owner }
    }

    /// A [`WeakPool`] for this handle: it does not keep the pool alive.
    /// [`WeakPool`]'s example shows the use it is for, a callback that
    /// puts follow-ups.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(1);
    /// let weak = pool.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(pool);                          // the last handle
    /// assert!(weak.upgrade().is_none());
    /// ```
    #[must_use]
    pub fn downgrade(&self) -> WeakPool {
        WeakPool {
            results: Arc::downgrade(&self.results),
            owner: Arc::downgrade(&self.owner),
        }
    }

    fn shared(&self) -> &Arc<Pool> {
        &self.owner.pool
    }

    /// Whether the current thread is one of this pool's workers.
    pub(crate) fn on_worker_thread(&self) -> bool {
        self.shared().on_worker_thread()
    }

    /// On one of this pool's workers, runs here the requests no worker has
    /// started for which `mine` holds, for a wait of that worker's own
    /// (`pool::worker::help`); how many it ran. 0 on any other thread.
    pub(crate) fn help(&self, mine: impl Fn(&Job) -> bool + Copy) -> usize {
        crate::pool::worker::help(self.shared(), mine)
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
        ThreadPool::from_owner(Arc::clone(&self.owner))
    }

    /// Puts a request on the queue and returns its id. On a bounded queue
    /// that is full, it blocks until there is room. Whenever a worker is
    /// stuck meanwhile sending a result to this handle's full result queue
    /// ([`result_capacity`](crate::Builder::result_capacity)), it handles
    /// this handle's ready results on the calling thread (running their
    /// callbacks), so a thread that both puts and polls never deadlocks.
    /// With an unbounded result queue (the default) it handles none: the
    /// results wait for the next `poll` or `wait`.
    ///
    /// Called from one of this pool's own workers (a callable that puts
    /// follow-up requests), it never waits for room: the request goes in
    /// past the capacity, since a worker waiting for room would wait for
    /// itself. The capacity still bounds puts from every other thread.
    ///
    /// # Errors
    ///
    /// Hands the request back in [`PutError::ShutDown`] after shutdown,
    /// [`PutError::DuplicateId`] if its user-chosen id is pending here, and
    /// [`PutError::NoWorkers`] if the queue is full, no worker is left, and
    /// none can be started (an autoscaling pool starts one).
    ///
    /// # Panics
    ///
    /// A panic in a callback run while blocked passes through; the request
    /// being put is then dropped (and logged), the pool stays consistent.
    ///
    /// # Deadlocks
    ///
    /// A blocked put handles only *this* handle's results. If the workers
    /// are all stuck sending to *another* handle's full result queue (one
    /// that nobody polls, for instance because the thread that should poll
    /// it is the one blocked here), no room ever comes: one thread that put
    /// on handle P (bounded result queue, not polled) and then blocks
    /// putting on handle H waits for ever. Poll every handle you put on, use
    /// unbounded result queues, or put with
    /// [`put_request_timeout`](Self::put_request_timeout), which gives the
    /// request back in [`PutError::Timeout`] so you can poll P and retry.
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

    /// Puts every request of `requests`, pulling the next only once the
    /// last is queued, each put blocking for room in a bounded queue as
    /// [`put_request`](Self::put_request) does. Returns how many were put.
    ///
    /// With a bounded request queue (`queue_capacity`) *and* a bounded
    /// result queue (`result_capacity`), an input of 10^8 items runs in
    /// bounded memory: the puts handle this handle's results whenever the
    /// result queue is full. With the result queue unbounded (the default)
    /// the puts handle none, and every result waits, in memory, for the
    /// `wait` after `put_all` returns.
    ///
    /// # Errors
    ///
    /// The first [`PutError`], with the request it refused; the requests
    /// after it are not pulled from the iterator. Pass `iter.by_ref()` to
    /// keep them: an iterator passed by value (a `Vec`, say) is dropped
    /// before this returns, and the requests left in it with it, unrun and
    /// unreported (a keyed request's input reaches no callback).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::builder()
    ///     .workers(2)
    ///     .queue_capacity(16)
    ///     .result_capacity(16)
    ///     .build()?;
    /// let put = pool.put_all((0..10_000u64).map(|n| WorkRequest::new(|n: u64| n * 2, n)))?;
    /// assert_eq!(put, 10_000);
    /// // The puts handled the results as the result queue filled: only
    /// // the last few wait (about the two capacities), not 10,000.
    /// assert!(pool.pending() < 100);
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_all<I>(&self, requests: I) -> Result<usize, PutError>
    where
        I: IntoIterator,
        I::Item: Into<WorkRequest>,
    {
        let mut put = 0;
        for request in requests {
            self.put_request(request)?;
            put += 1;
        }
        Ok(put)
    }

    /// Puts a request without blocking.
    ///
    /// # Errors
    ///
    /// As [`put_request`](Self::put_request), and [`PutError::Full`] when a
    /// bounded queue has no room.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    ///
    /// // No worker yet: nothing leaves the queue while it fills.
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(3).build()?;
    /// let mut put = 0;
    /// let refused = loop {
    ///     match pool.try_put_request(WorkRequest::new(|n: u32| n * 2, put)) {
    ///         Ok(_) => put += 1,
    ///         Err(PutError::Full(request)) => break request,
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// };
    /// assert_eq!(put, 3);
    /// pool.create_workers(1)?;
    /// assert_eq!(pool.wait()?, 3);
    /// pool.try_put_request(refused)?;       // room again
    /// assert_eq!(pool.wait()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_request(&self, request: impl Into<WorkRequest>) -> Result<RequestId, PutError> {
        self.put(request.into(), PutMode::Try)
    }

    /// Puts a request, blocking at most `timeout` for room in a bounded
    /// queue (handling results when a worker is stuck on this handle's
    /// full result queue, as `put_request` does): the way
    /// out of the two-handle wait described under "Deadlocks" in
    /// [`put_request`](Self::put_request).
    ///
    /// # Errors
    ///
    /// As [`put_request`](Self::put_request), and [`PutError::Timeout`] when
    /// no room came in time; the request is handed back in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// // The worker waits on the gate; a second request fills the queue.
    /// pool.put_request(WorkRequest::new(move |_: ()| { let _ = gate.recv(); }, ()))?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// pool.put_request(WorkRequest::new(|x: u8| x, 1))?;
    /// match pool.put_request_timeout(WorkRequest::new(|x: u8| x, 2), Duration::from_millis(10)) {
    ///     Err(PutError::Timeout(request)) => assert!(!request.id().is_user_chosen()),
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// drop(open);
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_request_timeout(
        &self,
        request: impl Into<WorkRequest>,
        timeout: Duration,
    ) -> Result<RequestId, PutError> {
        self.put(request.into(), PutMode::within(timeout))
    }

    fn inbox(&self) -> &Arc<crate::inbox::Inbox> {
        self.results.inbox()
    }

    fn put(&self, request: WorkRequest, mode: PutMode) -> Result<RequestId, PutError> {
        match self.push_new(request)? {
            Pushed::Queued(id) => Ok(id),
            Pushed::Full(job) => self
                .put_full(job, mode)
                .unwrap_or_else(|(job, payload)| drop_unput(job, payload)),
        }
    }

    /// `put` (blocking), but a callback's panic while the put waits for
    /// room comes back with the request not put (and no longer pending),
    /// for the caller to keep or drop before the panic goes on.
    fn put_or_panic(
        &self,
        request: WorkRequest,
        mode: PutMode,
    ) -> Result<Result<RequestId, PutError>, (Job, crate::unwind::Payload)> {
        match self.push_new(request) {
            Ok(Pushed::Queued(id)) => Ok(Ok(id)),
            Ok(Pushed::Full(job)) => self.put_full(job, mode),
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// A put's first step, the path of every request: registers it and
    /// pushes it, unless the queue is full. Inlined, and it returns the job
    /// in a small enum rather than the blocking path's result: returned
    /// through `put`, that result keeps the compiler from inlining the push
    /// and the request's unboxing, and W1 takes 15-30% longer
    /// (`docs/performance.md`).
    #[inline(always)]
    fn push_new(&self, request: WorkRequest) -> Result<Pushed, PutError> {
        // The box comes out first: its id is read from it without the lock
        // that only makes `WorkRequest` `Sync`.
        let (id, job) = Job::register(request.into_task(), self.inbox())
            .map_err(|task| PutError::DuplicateId(WorkRequest::from_task(task)))?;
        match self.shared().queue.push(job) {
            Push::Queued => {
                self.shared().grow_for_backlog(1);
                if self.shared().threads() == 0 {
                    // A waiter that counted this request as in flight (it
                    // was registered, not yet queued) must re-count it.
                    self.inbox().wake_waiters();
                }
                Ok(Pushed::Queued(id))
            }
            Push::QueuedLate => {
                self.sweep_late();
                Ok(Pushed::Queued(id))
            }
            Push::Closed(job) => Err(self.reject(job, PutError::ShutDown)),
            Push::Full(job) => Ok(Pushed::Full(job)),
        }
    }

    /// A put that found the bounded queue full: refused, put past the
    /// capacity (on a worker), or blocking until there is room; a
    /// callback's panic while it blocks comes back with the request not
    /// put (and no longer pending).
    #[cold]
    fn put_full(
        &self,
        job: Job,
        mode: PutMode,
    ) -> Result<Result<RequestId, PutError>, (Job, crate::unwind::Payload)> {
        match mode {
            PutMode::Try => Ok(Err(self.reject(job, PutError::Full))),
            // A worker of this pool waiting for room would wait for
            // itself: its put goes past the capacity instead.
            _ if self.shared().on_worker_thread() => Ok(self
                .push_past_capacity(job)
                .map_err(|job| self.reject(job, PutError::ShutDown))),
            PutMode::Block => self.put_blocking(job, None),
            PutMode::Until(deadline) => self.put_blocking(job, Some(deadline)),
        }
    }

    /// The pool closed while this put was pushing its request, after (or
    /// while) the closer swept: sweep again, so that the request is
    /// cancelled to its callback rather than left in a closed queue.
    fn sweep_late(&self) {
        self.shared().sweep_late();
    }

    fn reject(&self, job: Job, kind: fn(WorkRequest) -> PutError) -> PutError {
        job.unregister();
        if self.shared().threads() == 0 {
            // A waiter may be counting this request as in flight (see
            // `Results::block`).
            self.inbox().wake_waiters();
        }
        kind(job.into_request())
    }

    /// On one of this pool's own workers, where waiting for room would
    /// wait for itself: the request goes in past the capacity. `Err`: the
    /// pool has shut down, and the job comes back still registered.
    fn push_past_capacity(&self, job: Job) -> Result<RequestId, Job> {
        let id = job.id();
        match self.shared().queue.push_past_capacity(job) {
            Push::Closed(job) => Err(job),
            Push::QueuedLate => {
                self.sweep_late();
                Ok(id)
            }
            _ => {
                self.shared().grow_for_backlog(1);
                Ok(id)
            }
        }
    }

    /// The slow path of a put on a full bounded queue. It sleeps until there
    /// is room, and wakes up to handle this handle's results whenever a
    /// worker is stuck sending one to a full result queue: that is what
    /// keeps a thread that both puts and polls out of deadlock. It handles
    /// them as a thread that is not a waiter: waiters on this handle still
    /// get every wake token.
    /// A callback's panic there comes back with the request not put.
    fn put_blocking(
        &self,
        job: Job,
        deadline: Option<Instant>,
    ) -> Result<Result<RequestId, PutError>, (Job, crate::unwind::Payload)> {
        let holding = usize::from(job.counted_on_inbox(self.inbox()));
        match self.put_blocking_or_panic(job, deadline, holding) {
            Ok(Ok(id)) => Ok(Ok(id)),
            Ok(Err(Refused::ShutDown(job))) => Ok(Err(self.reject(job, PutError::ShutDown))),
            Ok(Err(Refused::NoWorkers(job))) => Ok(Err(self.reject(job, PutError::NoWorkers))),
            Ok(Err(Refused::Timeout(job))) => Ok(Err(self.reject(job, PutError::Timeout))),
            Err((job, payload)) => {
                job.unregister();
                Err((job, payload))
            }
        }
    }

    /// Puts `job`, blocking while the queue is full; a refusal, or a
    /// callback's panic while it waits, comes back with the job not put
    /// (still counted pending), for the caller to settle.
    /// `holding`: how many requests of this handle the caller holds
    /// counted pending but not yet queued, this one among them (see
    /// `Results::handle_ready_holding`).
    fn put_blocking_or_panic(
        &self,
        mut job: Job,
        deadline: Option<Instant>,
        holding: usize,
    ) -> Result<Result<RequestId, Refused>, (Job, crate::unwind::Payload)> {
        let shared = self.shared();
        let id = job.id();
        loop {
            job = match shared.queue.push_blocking(
                job,
                // This handle's results, whatever the request: a ticket's
                // job has no handle, but its putter may still hold up a
                // worker stuck on this handle's full result queue.
                |_| self.inbox().has_stuck_senders(),
                || shared.threads(),
                deadline,
            ) {
                Ok(Push::QueuedLate) => {
                    self.sweep_late();
                    return Ok(Ok(id));
                }
                Ok(_) => {
                    shared.grow_for_backlog(1);
                    return Ok(Ok(id));
                }
                Err(Blocked::Closed(job)) => return Ok(Err(Refused::ShutDown(job))),
                Err(Blocked::NoWorkers(job)) => {
                    // An open autoscaling pool starts a worker for the
                    // full queue (the put that filled it is about to, or a
                    // retirement raced it), as for a waiter (`stranded`);
                    // only a pool that cannot start one refuses. One
                    // started by this grow may have emptied the queue and
                    // left already, its keep-alive short: refused only if
                    // no thread started or left meanwhile (else put again).
                    let full = || true;
                    let grow = || shared.grow_for_backlog(1);
                    if shared.thread_count.stranded(full, grow) {
                        return Ok(Err(Refused::NoWorkers(job)));
                    }
                    job
                }
                Err(Blocked::Timeout(job)) => return Ok(Err(Refused::Timeout(job))),
                Err(Blocked::HandleResults(job)) => job,
            };
            let handled = panic::catch_unwind(AssertUnwindSafe(|| {
                self.results.handle_ready_holding(shared, holding)
            }));
            match handled {
                Err(payload) => return Err((job, payload)),
                // As in `make_room`: let the stuck worker run.
                Ok(0) => crate::sync::yield_now(),
                Ok(_) => {}
            }
        }
    }

    /// The handle as a thread blocked on one of its tickets sees it, if a
    /// worker can ever get stuck on its result queue (bounded); `None` if
    /// not, so that tickets of the common, unbounded case carry nothing.
    pub(crate) fn home(&self) -> Option<Arc<dyn Home>> {
        self.inbox().lookouts()?;
        Some(Arc::clone(self.results.home(|| Arc::new(self.downgrade()))))
    }

    /// `poll` with nothing pending: items of a stream that has ended may
    /// still wait, left for the next call by a callback that panicked on
    /// another thread while this one handled the stream's end. They are
    /// handled; with none, there is nothing to poll for.
    fn poll_unpending(&self) -> Result<usize, PollError> {
        match self.results.handle_ready(self.shared()) {
            0 => Err(PollError::NoResultsPending),
            handled => Ok(handled),
        }
    }

    /// Handles every result that is ready, on this thread, without blocking;
    /// returns how many (possibly 0 while requests are still running).
    ///
    /// It never reports [`PollError::NoWorkersAvailable`]: with requests
    /// pending and no worker left to run them (all dismissed, or a pool
    /// built with none), it returns `Ok(0)` at every call, as Python's
    /// `poll()` returns `None`, so a loop that polls until nothing is
    /// pending polls for ever. A loop that must notice calls
    /// [`poll_timeout`](Self::poll_timeout) with `Duration::ZERO`, which
    /// does not block either, and says `NoWorkersAvailable` (and `Timeout`
    /// when nothing was ready), or looks at [`workers`](Self::workers).
    ///
    /// # Errors
    ///
    /// [`PollError::NoResultsPending`] when no request of this handle is
    /// pending at the call and nothing is left to handle. (What can be left:
    /// items of a stream that has ended, which a callback that panicked on
    /// another thread left for the next call; they are handled.)
    /// [`PollError::OnWorkerThread`] on a worker of this pool (a callable
    /// polling a handle of its own pool): callbacks never run on a worker.
    ///
    /// # Panics
    ///
    /// A panic in a callback passes through. That request is no longer
    /// pending; results not yet handled stay for the next call. The same
    /// holds for a panic in the `Drop` of a callback's captures (the
    /// callback that did not run is dropped here too).
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
        if self.shared().on_worker_thread() {
            return Err(PollError::OnWorkerThread);
        }
        if self.pending() == 0 {
            return self.poll_unpending();
        }
        // Bounded by what is ready now, so a stream of fresh results cannot
        // keep one call going for ever.
        Ok(self.results.handle_ready(self.shared()))
    }

    /// Blocks until at least one result is ready (or `timeout` passes), then
    /// handles every ready result; returns how many.
    ///
    /// # Errors
    ///
    /// [`PollError::NoResultsPending`] when nothing is pending or left to
    /// handle (as for [`poll`](Self::poll)), [`PollError::HeldByCaller`]
    /// from a callback (as for [`wait`](Self::wait)),
    /// [`PollError::Timeout`], [`PollError::NoWorkersAvailable`] when
    /// nothing can arrive, [`PollError::OnWorkerThread`] on a worker of
    /// this pool.
    ///
    /// In a loop that polls between frames, `Timeout` (a frame with no
    /// result) and `NoResultsPending` (returned at once, without waiting
    /// out the timeout) are part of the loop, not failures to pass on
    /// with `?`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PollError, ThreadPool, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(2);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for frame in 0..3u32 {
    ///     let tx = tx.clone();
    ///     pool.put_request(WorkRequest::new(|f: u32| f * 10, frame)
    ///         .on_result(move |_, v| tx.send(v).unwrap()))?;
    ///     match pool.poll_timeout(Duration::from_millis(16)) {
    ///         Ok(_) | Err(PollError::Timeout { .. }) => {}
    ///         Err(PollError::NoResultsPending) => std::thread::sleep(Duration::from_millis(16)),
    ///         Err(e) => return Err(e.into()),
    ///     }
    /// }
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().sum::<u32>(), 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(&self, timeout: Duration) -> Result<usize, PollError> {
        // Before the look at `pending`: with nothing pending it still
        // handles what is ready, which must not run on a worker either.
        if self.shared().on_worker_thread() {
            return Err(PollError::OnWorkerThread);
        }
        if self.pending() == 0 {
            return self.poll_unpending();
        }
        let deadline = Instant::now().checked_add(timeout);
        self.block(deadline, Until::AnyHandled)
            .map_err(PollError::from)
    }

    /// Handles results, on this thread, until no request of this handle is
    /// pending; returns how many it handled. Requests that callbacks put
    /// meanwhile are waited for too. Returns at once if nothing is pending.
    /// The count leaves out the results that a put blocked inside one of
    /// the callbacks handled while it waited for room (in a bounded
    /// request queue, such a put runs this handle's callbacks): they were
    /// handled, but by that put.
    ///
    /// A request stops being pending as its callback starts. So with
    /// several threads handling one handle's results (clones polled or
    /// waited on at once), `wait` on one may return while a callback
    /// still runs on another, and what that callback then puts is pending
    /// again afterwards. To know that every callback has run, let one
    /// thread handle each handle's results (another thread gets a handle
    /// of its own from [`new_handle`](Self::new_handle)), or wait until
    /// the other threads' `poll` or `wait` calls have returned too.
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
    /// A panic in a callback, or in the `Drop` of a callback's captures,
    /// passes through; that request is no longer pending and the next
    /// `wait` carries on with the rest.
    ///
    /// # Deadlocks
    ///
    /// Two threads waiting on one handle both return. A callable that never
    /// returns keeps `wait` waiting; use [`wait_timeout`](Self::wait_timeout)
    /// to bound it.
    ///
    /// Calling `wait` (or `close`, or `shutdown`) from a callback, on the
    /// handle whose result it is handling, handles the other results it
    /// can reach. Those taken off the result queue together with the
    /// callback's own are held by the call running the callback, which
    /// handles them once it returns: a `wait` that may have only those left
    /// returns [`WaitError::HeldByCaller`] rather than wait for ever (it
    /// may return so while a request still runs: see there), and `close`
    /// and `shutdown` go on to join the workers. A put blocked lower on the
    /// stack (one whose wait for room runs the callback) holds its request
    /// the same way. Inside a streaming request's result callback, the
    /// items of that stream it comes to (and the stream's error callback)
    /// run only once the callback has returned, in order: the callback
    /// cannot run inside itself. So `wait` may return before they have run.
    ///
    /// # Examples
    ///
    /// Each callback puts the next request of a countdown; one `wait`
    /// covers them all.
    ///
    /// ```
    /// use callpool::{ThreadPool, WeakPool, WorkRequest};
    /// use std::sync::mpsc::{channel, Sender};
    ///
    /// fn countdown(n: u32, pool: WeakPool, seen: Sender<u32>) -> WorkRequest {
    ///     WorkRequest::new(|n: u32| n, n)
    ///         .on_result(move |_, n| {
    ///             seen.send(n).unwrap();
    ///             if n == 0 {
    ///                 return;
    ///             }
    ///             if let Some(handle) = pool.upgrade() {
    ///                 handle.put_request(countdown(n - 1, pool, seen)).unwrap();
    ///             }
    ///         })
    ///         .into()
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let (tx, rx) = channel();
    /// pool.put_request(countdown(3, pool.downgrade(), tx))?;
    /// assert_eq!(pool.wait()?, 4);
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [3, 2, 1, 0]);
    /// assert_eq!(pool.wait()?, 0);         // nothing pending: returns at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<usize, WaitError> {
        self.block(None, Until::NothingPending)
    }

    /// [`wait`](Self::wait), giving up after `timeout` with
    /// [`WaitError::Timeout`] (results handled so far stay handled).
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] once `timeout` has passed with requests
    /// still pending; otherwise those of [`wait`](Self::wait).
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
        self.block(Instant::now().checked_add(timeout), Until::NothingPending)
    }

    /// The blocking loop behind `wait` and `poll_timeout`.
    fn block(&self, deadline: Option<Instant>, until: Until) -> Result<usize, WaitError> {
        self.results.block(self.shared(), deadline, until)
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
    /// The pool joins the exited threads itself; to wait until they are
    /// gone, call
    /// [`join_all_dismissed_workers`](Self::join_all_dismissed_workers).
    ///
    /// An autoscaling pool (built with
    /// [`min_workers`](crate::Builder::min_workers), `max_workers` or
    /// `keep_alive`) starts workers again as requests are queued, up to its
    /// maximum, and a `wait` there starts one for requests that no worker
    /// is left to run: a dismissal, or a [`resize`](Self::resize) down,
    /// does not keep it below its bounds.
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

    /// Waits until every dismissed worker thread has exited and been joined;
    /// returns how many were joined since the last call. Idle dismissed
    /// workers have already exited or are exiting, so this only waits for
    /// busy ones to finish their current request. If one of them waits for
    /// room in this handle's bounded result queue, this handles the
    /// handle's results (running their callbacks) to make room, and then
    /// the results those workers sent as they left.
    ///
    /// Calling it is never needed to free threads: the pool joins workers
    /// that have exited by itself, at its next resize, dismissal or worker
    /// exit. Call it when you must know that the threads are gone.
    ///
    /// Called on one of this pool's own workers (from a callable), it does
    /// not wait, since that worker may be one of those dismissed: it joins
    /// those that have exited already and returns.
    ///
    /// # Deadlocks
    ///
    /// If a dismissed worker waits for room in *another* handle's full
    /// result queue, this waits until that handle is polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::new(2);
    /// let (started_tx, started) = channel();
    /// let (open, gate) = channel::<()>();
    /// pool.put_request(WorkRequest::new(move |_: ()| {
    ///     started_tx.send(()).unwrap();
    ///     let _ = gate.recv();
    /// }, ()))?;
    /// started.recv()?;
    /// assert_eq!(pool.dismiss_workers(2), 2);  // one idle, one busy
    /// assert_eq!(pool.workers(), 0);
    /// drop(open);                             // the busy one may finish now
    /// assert_eq!(pool.join_all_dismissed_workers(), 2);
    /// assert_eq!(pool.threads(), 0);
    /// assert_eq!(pool.join_all_dismissed_workers(), 0);  // none since
    /// assert_eq!(pool.wait()?, 1);            // its request had finished
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_all_dismissed_workers(&self) -> usize {
        // A dismissed worker may be blocked sending to this handle's full
        // result queue: the join would wait for ever on a thread that
        // waits for us.
        self.making_room(|shared, stuck| shared.join_dismissed_when_exited(stuck))
    }

    /// Runs `wait` (a wait for the pool's threads, which returns `None` as
    /// soon as `stuck` says a worker is stuck on this handle's full result
    /// queue) until it returns, handling this handle's results whenever a
    /// worker is stuck: otherwise the wait could be for a thread that waits
    /// for us.
    pub(crate) fn making_room<R>(
        &self,
        wait: impl Fn(&Arc<Pool>, &dyn Fn() -> bool) -> Option<R>,
    ) -> R {
        let mut made_room = false;
        loop {
            let shared = self.shared();
            match wait(shared, &|| self.inbox().has_stuck_senders()) {
                Some(done) => {
                    // A worker this made room for may have sent its last
                    // results as it left, without being stuck again.
                    if made_room {
                        self.results.handle_ready(shared);
                    }
                    return done;
                }
                None => {
                    // Not a waiter: waiters on this handle keep their tokens.
                    if self.results.handle_ready(shared) == 0 {
                        // The worker still counts itself stuck but has not
                        // sent yet: let it run rather than look again at
                        // once (as a blocked put does).
                        crate::sync::yield_now();
                    }
                    made_room = true;
                }
            }
        }
    }

    /// Creates or dismisses workers so that `n` are live. An autoscaling
    /// pool grows and shrinks from there within its bounds (see
    /// [`dismiss_workers`](Self::dismiss_workers)).
    ///
    /// # Errors
    ///
    /// As [`create_workers`](Self::create_workers) when growing.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, MAX_WORKERS};
    ///
    /// let pool = ThreadPool::new(2);
    /// pool.resize(5)?;
    /// assert_eq!(pool.workers(), 5);
    /// pool.resize(1)?;
    /// assert_eq!(pool.workers(), 1);
    /// assert_eq!(pool.join_all_dismissed_workers(), 4);
    ///
    /// let refused = pool.resize(MAX_WORKERS + 1).unwrap_err();
    /// assert_eq!((refused.created(), pool.workers()), (0, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resize(&self, n: usize) -> Result<(), SpawnError> {
        self.shared().resize(n)
    }

    /// What the pool is doing and has done: busy and idle threads, the
    /// threads running a request now, queued requests, and how many
    /// requests completed, failed, panicked or were cancelled over the
    /// pool's life, on every handle. Each worker counts
    /// what it runs on a cache line of its own with a plain load and store
    /// (no locked instruction); reading sums them.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::builder().workers(2).quiet_panics(true).build()?;
    /// pool.put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// pool.put_request(WorkRequest::fallible(|_: ()| Err::<u8, _>("no"), ()))?;
    /// pool.put_request(WorkRequest::new(|_: ()| panic!("boom"), ()).on_error(|_, _: TaskError| {}))?;
    /// pool.wait()?;
    /// let stats = pool.stats();
    /// assert_eq!((stats.completed, stats.failed, stats.panicked), (1, 1, 1));
    /// assert_eq!((stats.workers, stats.running), (2, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Live (not dismissed) workers.
    ///
    /// # Examples
    ///
    /// The counts, as a request holds the one worker, others wait, and the
    /// worker is dismissed:
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::new(1);
    /// let other = pool.new_handle();
    /// let (started_tx, started) = channel();
    /// let (open, gate) = channel::<()>();
    /// pool.put_request(WorkRequest::new(move |_: ()| {
    ///     started_tx.send(()).unwrap();
    ///     let _ = gate.recv();
    /// }, ()))?;
    /// started.recv()?;
    /// for n in 0..2 {
    ///     pool.put_request(WorkRequest::new(|n: u32| n, n))?;
    /// }
    /// assert_eq!((pool.workers(), pool.threads()), (1, 1));
    /// assert_eq!((pool.pending(), pool.queued()), (3, 2));
    /// assert_eq!((other.pending(), other.queued()), (0, 2));  // the queue is shared
    ///
    /// pool.dismiss_workers(1);
    /// assert_eq!((pool.workers(), pool.threads()), (0, 1));   // it still runs its request
    /// drop(open);
    /// pool.join_all_dismissed_workers();
    /// assert_eq!((pool.workers(), pool.threads()), (0, 0));
    /// // One result waits for a poll; two requests wait for a worker.
    /// assert_eq!((pool.pending(), pool.queued()), (3, 2));
    ///
    /// pool.create_workers(1)?;
    /// assert_eq!(pool.wait()?, 3);
    /// assert_eq!((pool.pending(), pool.queued()), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.shared().live_workers()
    }

    /// Worker threads still running: live workers, plus dismissed ones that
    /// are finishing a request or exiting. See the example of
    /// [`workers`](Self::workers).
    pub fn threads(&self) -> usize {
        self.shared().threads()
    }

    /// Requests of this handle put and not yet handled (queued, running, or
    /// with a result waiting for `poll`). See the example of
    /// [`workers`](Self::workers).
    pub fn pending(&self) -> usize {
        self.inbox().pending()
    }

    /// Requests in the shared queue, not yet taken by a worker (all handles).
    /// Children that running callables have put and their workers hold
    /// in their slots (see [`Context::put`](crate::Context::put)) are not
    /// counted; they are [`pending`](Self::pending) on their handle. The
    /// half of a [`join`](crate::Context::join) handed to the queue is
    /// counted until a worker takes its job (even if the join has taken
    /// the half back meanwhile), though it is no request. So is a ticket's
    /// request cancelled in the queue ([`Ticket::cancel`](crate::Ticket::cancel)),
    /// until a worker or a sweep reaches it. See the example of
    /// [`workers`](Self::workers).
    pub fn queued(&self) -> usize {
        self.shared().queued()
    }

    /// Whether the pool has been shut down (puts are refused), through
    /// any of its handles.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let other = pool.new_handle();
    /// assert!(!pool.is_shut_down());
    /// other.shutdown()?;
    /// assert!(pool.is_shut_down());
    /// assert!(matches!(pool.put_request(WorkRequest::new(|n: u32| n, 1)), Err(PutError::ShutDown(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.shared().lifecycle() != Lifecycle::Open
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
