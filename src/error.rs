//! Error types, one per kind of operation. Errors that reject a request hand
//! it back.

use std::fmt;
use std::io;

use crate::request::{RequestId, WorkRequest};

/// Why a request was not accepted. Every variant hands the request back
/// ([`PutError::into_request`]) so it can be put again, elsewhere or later.
///
/// # Examples
///
/// ```
/// use callpool::{PutError, ThreadPool, WorkRequest};
///
/// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
/// pool.try_put_request(WorkRequest::new(|x: u8| x, 1))?;
/// match pool.try_put_request(WorkRequest::new(|x: u8| x, 2)) {
///     Err(PutError::Full(request)) => assert!(!request.id().is_user_chosen()),
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PutError {
    /// The bounded request queue is full (`try_put_request`).
    Full(WorkRequest),
    /// The bounded request queue stayed full until the timeout
    /// (`put_request_timeout`).
    Timeout(WorkRequest),
    /// A request with the same user-chosen id is already pending on this
    /// handle.
    DuplicateId(WorkRequest),
    /// The pool has been shut down.
    ShutDown(WorkRequest),
    /// The bounded request queue is full and the pool has no worker thread
    /// left to empty it, nor can it start one (an autoscaling pool below
    /// its `max_workers` starts one instead), so a blocking put would wait
    /// forever.
    NoWorkers(WorkRequest),
}

impl PutError {
    /// The rejected request.
    ///
    /// # Examples
    ///
    /// A request refused by a full queue, put again once there is room:
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    /// let (tx, rx) = channel();
    /// pool.try_put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// let refused = pool
    ///     .try_put_request(WorkRequest::new(|n: u32| n * 10, 2).on_result(move |_, n| tx.send(n).unwrap()))
    ///     .unwrap_err();
    /// let request = refused.into_request();            // callbacks and all
    /// pool.create_workers(1)?;
    /// pool.wait()?;
    /// pool.put_request(request)?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_recv()?, 20);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_request(self) -> WorkRequest {
        match self {
            PutError::Full(r)
            | PutError::Timeout(r)
            | PutError::DuplicateId(r)
            | PutError::ShutDown(r)
            | PutError::NoWorkers(r) => r,
        }
    }

    /// The rejected request, borrowed.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(0);
    /// pool.put_request(WorkRequest::new(|n: u32| n, 1).with_id(7))?;
    /// let refused = pool.put_request(WorkRequest::new(|n: u32| n, 2).with_id(7)).unwrap_err();
    /// assert!(matches!(refused, PutError::DuplicateId(_)));
    /// assert_eq!(refused.request().id().value(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request(&self) -> &WorkRequest {
        match self {
            PutError::Full(r)
            | PutError::Timeout(r)
            | PutError::DuplicateId(r)
            | PutError::ShutDown(r)
            | PutError::NoWorkers(r) => r,
        }
    }
}

impl fmt::Display for PutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.request().id();
        match self {
            PutError::Full(_) => write!(f, "request queue is full (request {id})"),
            PutError::Timeout(_) => write!(f, "timed out waiting for queue space (request {id})"),
            PutError::DuplicateId(_) => write!(f, "request id {id} is already pending"),
            PutError::ShutDown(_) => write!(f, "pool is shut down (request {id})"),
            PutError::NoWorkers(_) => {
                write!(
                    f,
                    "request queue is full and no worker can empty it (request {id})"
                )
            }
        }
    }
}

impl std::error::Error for PutError {}

/// Why [`ThreadPool::try_submit`](crate::ThreadPool::try_submit),
/// [`submit_timeout`](crate::ThreadPool::submit_timeout), their
/// fallible forms, or the same four given a
/// [`Context`](crate::Context)
/// ([`try_submit_with_context`](crate::ThreadPool::try_submit_with_context),
/// [`submit_with_context_timeout`](crate::ThreadPool::submit_with_context_timeout),
/// ...), or a collector's [`try_put`](crate::Collector::try_put) put
/// nothing. The callable and its argument come back uncalled
/// ([`into_parts`](Self::into_parts)), so that work refused by a full
/// queue can be submitted again later, run elsewhere, or dropped by
/// choice.
///
/// It is `Send` and `Sync` whenever the callable and the argument are
/// `Send`, so `?` can pass it into `anyhow` or a
/// `Box<dyn Error + Send + Sync>`; its `Debug` and `Display` show neither
/// part.
///
/// # Examples
///
/// ```
/// use callpool::ThreadPool;
///
/// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
/// let first = pool.try_submit(|n: u32| n + 1, 1)?;
/// let refused = pool.try_submit(|n: u32| n * 10, 2).unwrap_err();
/// assert!(refused.is_full());
/// let (times_ten, arg) = refused.into_parts();
/// assert_eq!(arg, 2);
/// pool.create_workers(1)?; // room comes once the worker takes `first`
/// assert_eq!(first.wait(), Ok(2));
/// let again = pool.try_submit(times_ten, arg)?;
/// assert_eq!(again.wait(), Ok(20));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TrySubmitError<F, A> {
    kind: TrySubmitErrorKind,
    /// Behind a `Mutex` only to make the error `Sync` while the parts need
    /// only be `Send` (as `WorkRequest` is); never locked: `into_parts`
    /// takes them out by value.
    parts: std::sync::Mutex<(F, A)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrySubmitErrorKind {
    Full,
    TimedOut,
    NoWorkers,
    ShutDown,
}

impl<F, A> TrySubmitError<F, A> {
    /// The `try_submit` form of `refused`, the put's refusal, with the
    /// parts it refused.
    pub(crate) fn new(refused: &PutError, callable: F, arg: A) -> Self {
        let kind = match refused {
            PutError::ShutDown(_) => TrySubmitErrorKind::ShutDown,
            PutError::Timeout(_) => TrySubmitErrorKind::TimedOut,
            PutError::NoWorkers(_) => TrySubmitErrorKind::NoWorkers,
            // A ticket's id is automatic (never a duplicate): a full
            // queue is the only other refusal.
            _ => TrySubmitErrorKind::Full,
        };
        TrySubmitError {
            kind,
            parts: std::sync::Mutex::new((callable, arg)),
        }
    }

    /// Whether the bounded request queue was full: submit again once a
    /// worker has taken a request (for instance after another ticket ends).
    /// The example of [`TrySubmitError`] shows it.
    pub fn is_full(&self) -> bool {
        self.kind == TrySubmitErrorKind::Full
    }

    /// Whether the bounded request queue stayed full until the timeout
    /// ([`submit_timeout`](crate::ThreadPool::submit_timeout), whose
    /// example shows it, and the other `_timeout` forms).
    pub fn is_timed_out(&self) -> bool {
        self.kind == TrySubmitErrorKind::TimedOut
    }

    /// Whether the bounded request queue was full with no worker left to
    /// empty it, nor one the pool could start
    /// (a `_timeout` form such as
    /// [`submit_timeout`](crate::ThreadPool::submit_timeout) would wait
    /// for nothing); see [`PutError::NoWorkers`]. The example of
    /// [`submit_fallible_timeout`](crate::ThreadPool::submit_fallible_timeout)
    /// shows it.
    pub fn is_no_workers(&self) -> bool {
        self.kind == TrySubmitErrorKind::NoWorkers
    }

    /// Whether the pool had been shut down: it accepts nothing any more.
    /// The example of
    /// [`try_submit_fallible`](crate::ThreadPool::try_submit_fallible)
    /// shows it.
    pub fn is_shut_down(&self) -> bool {
        self.kind == TrySubmitErrorKind::ShutDown
    }

    /// The callable and its argument, as they were given, never called.
    /// The example of [`TrySubmitError`] submits them again.
    pub fn into_parts(self) -> (F, A) {
        // Never locked, so never poisoned.
        self.parts.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<F, A> fmt::Debug for TrySubmitError<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrySubmitError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<F, A> fmt::Display for TrySubmitError<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TrySubmitErrorKind::Full => f.write_str("request queue is full (nothing submitted)"),
            TrySubmitErrorKind::TimedOut => {
                f.write_str("request queue stayed full until the timeout (nothing submitted)")
            }
            TrySubmitErrorKind::NoWorkers => {
                f.write_str("request queue is full and no worker is left (nothing submitted)")
            }
            TrySubmitErrorKind::ShutDown => f.write_str("pool is shut down (nothing submitted)"),
        }
    }
}

impl<F, A> std::error::Error for TrySubmitError<F, A> {}

/// Why a [`Scope`](crate::Scope) refused a request. Unlike [`PutError`], it
/// does not hand the request back: the request's callable may borrow from
/// the scope, which nothing may outlive, so it was dropped unrun before
/// the put returned.
///
/// # Examples
///
/// ```
/// use callpool::{ScopedPutError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let other = pool.new_handle();
/// let word = String::from("borrowed");
/// pool.scope(|s| {
///     drop(other.shutdown_now());
///     let refused = s.put(|w: &String| w.len(), &word);
///     assert!(matches!(refused, Err(ScopedPutError::ShutDown(_))));
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopedPutError {
    /// The pool has been shut down.
    ShutDown(RequestId),
    /// The bounded request queue is full and the pool has no worker thread
    /// left to empty it.
    NoWorkers(RequestId),
}

impl ScopedPutError {
    /// The id the refused request had: the id its message names.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1);
    /// let other = pool.new_handle();
    /// pool.scope(|s| {
    ///     drop(other.shutdown_now());
    ///     let first = s.put(|n: u32| n, 1).unwrap_err();
    ///     let second = s.put(|n: u32| n, 2).unwrap_err();
    ///     assert_ne!(first.id(), second.id());         // each request had its own
    ///     assert_eq!(first.to_string(), format!("pool is shut down (request {})", first.id()));
    /// });
    /// ```
    pub fn id(&self) -> RequestId {
        match self {
            ScopedPutError::ShutDown(id) | ScopedPutError::NoWorkers(id) => *id,
        }
    }

    /// The scope's form of a refused put. The request in `refused` holds
    /// lent work, which must not leave the scope: it is dropped here, its
    /// loan with it (a scope's request counted pending then reports
    /// `Cancelled` to the scope).
    pub(crate) fn from_refused(refused: PutError) -> ScopedPutError {
        let id = refused.request().id();
        let err = match refused {
            PutError::NoWorkers(_) => ScopedPutError::NoWorkers(id),
            // A scope's puts block for room and carry ids of their own, so
            // shutdown is the only other reason they are refused.
            _ => ScopedPutError::ShutDown(id),
        };
        drop(refused);
        err
    }
}

impl fmt::Display for ScopedPutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopedPutError::ShutDown(id) => write!(f, "pool is shut down (request {id})"),
            ScopedPutError::NoWorkers(id) => write!(
                f,
                "request queue is full and no worker can empty it (request {id})"
            ),
        }
    }
}

impl std::error::Error for ScopedPutError {}

/// Why [`ThreadPool::install`](crate::ThreadPool::install) or
/// [`ThreadPool::join`](crate::ThreadPool::join) gave no value. The work
/// borrows from the caller, so it is never handed back: it was dropped
/// unrun by the time the call returned. (A panic in the work is not an
/// `InstallError`: it passes on to the caller.)
///
/// # Examples
///
/// ```
/// use callpool::{InstallError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// pool.close()?;
/// let refused = pool.install(|_| 1);
/// assert!(matches!(refused, Err(InstallError::ShutDown(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstallError {
    /// The pool has been shut down: it refused the work.
    ShutDown(RequestId),
    /// The bounded request queue is full and the pool has no worker thread
    /// left to empty it: it refused the work.
    NoWorkers(RequestId),
    /// The bounded request queue is full:
    /// [`try_install`](crate::ThreadPool::try_install) refused the work at
    /// once.
    Full(RequestId),
    /// The bounded request queue stayed full for the whole timeout of
    /// [`install_timeout`](crate::ThreadPool::install_timeout): it refused
    /// the work.
    Timeout(RequestId),
    /// The pool took the work but it never started: the pool stopped
    /// while it waited in the queue, by a
    /// [`shutdown_now`](crate::ThreadPool::shutdown_now) on any handle
    /// (this one's clones too; the work borrows, so it is not among what
    /// that call hands back), or by a [`shutdown`](crate::ThreadPool::shutdown)
    /// or [`close`](crate::ThreadPool::close) with no worker left to
    /// drain the queue.
    Cancelled(RequestId),
}

impl InstallError {
    /// The id the work's request had.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1);
    /// pool.close()?;
    /// let err = pool.install(|_| ()).unwrap_err();
    /// assert_eq!(err.to_string(), format!("pool is shut down (request {})", err.id()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> RequestId {
        match self {
            InstallError::ShutDown(id)
            | InstallError::NoWorkers(id)
            | InstallError::Full(id)
            | InstallError::Timeout(id)
            | InstallError::Cancelled(id) => *id,
        }
    }

    /// Why a pool refused an install's request, which is dropped here (the
    /// work it holds borrows, so it is never handed back).
    pub(crate) fn from_refused(refused: PutError) -> InstallError {
        let id = refused.request().id();
        let err = match refused {
            PutError::Full(_) => InstallError::Full(id),
            PutError::Timeout(_) => InstallError::Timeout(id),
            PutError::NoWorkers(_) => InstallError::NoWorkers(id),
            // Its id is automatic, so never a duplicate: shutdown is the
            // only other reason.
            _ => InstallError::ShutDown(id),
        };
        drop(refused);
        err
    }
}

impl From<ScopedPutError> for InstallError {
    fn from(refused: ScopedPutError) -> InstallError {
        match refused {
            ScopedPutError::ShutDown(id) => InstallError::ShutDown(id),
            ScopedPutError::NoWorkers(id) => InstallError::NoWorkers(id),
        }
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::ShutDown(id) => write!(f, "pool is shut down (request {id})"),
            InstallError::Full(id) => write!(f, "request queue is full (request {id})"),
            InstallError::Timeout(id) => {
                write!(f, "timed out waiting for queue space (request {id})")
            }
            InstallError::NoWorkers(id) => write!(
                f,
                "request queue is full and no worker can empty it (request {id})"
            ),
            InstallError::Cancelled(id) => {
                write!(f, "request cancelled before it started (request {id})")
            }
        }
    }
}

impl std::error::Error for InstallError {}

/// Why [`ThreadPool::put_batch`](crate::ThreadPool::put_batch) queued none
/// of a batch. Every request is handed back, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum BatchError {
    /// The pool no longer accepts requests.
    ShutDown(Vec<WorkRequest>),
    /// A user-chosen id is already pending on the handle, or appears twice
    /// in the batch.
    DuplicateId(Vec<WorkRequest>),
    /// The batch holds a request whose outcome does not come back to the
    /// handle, so it cannot be counted in a batch: a ticket's or a
    /// collector's (handed back in a refused `submit`'s or collector put's
    /// error), or one whose outcome nobody hears
    /// ([`ThreadPool::execute`](crate::ThreadPool::execute)). Put such
    /// requests one at a time. Named whatever else is wrong with the
    /// batch: a batch that also repeats an id is refused as this.
    NotBatchable(Vec<WorkRequest>),
}

impl BatchError {
    /// The requests of the batch, none of them queued, in the batch's
    /// order.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{BatchError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let batch = [1, 2, 2].map(|id| WorkRequest::new(|n: u64| n, id).with_id(id));
    /// let refused = pool.put_batch(batch).unwrap_err();   // id 2 twice
    /// assert!(matches!(refused, BatchError::DuplicateId(_)));
    /// assert_eq!(pool.pending(), 0);
    /// let back = refused.into_requests();
    /// assert_eq!(back.iter().map(|r| r.id().value()).collect::<Vec<_>>(), [1, 2, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use = "the requests handed back are dropped unrun"]
    pub fn into_requests(self) -> Vec<WorkRequest> {
        match self {
            BatchError::ShutDown(requests)
            | BatchError::DuplicateId(requests)
            | BatchError::NotBatchable(requests) => requests,
        }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::ShutDown(r) => write!(f, "pool is shut down (batch of {})", r.len()),
            BatchError::DuplicateId(r) => {
                write!(
                    f,
                    "a request id of the batch of {} is already pending",
                    r.len()
                )
            }
            BatchError::NotBatchable(r) => write!(
                f,
                "the batch of {} holds a request whose outcome does not come back \
                 to the handle (a ticket's, or an executed one): put it on its own",
                r.len()
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// Why [`ThreadPool::poll`](crate::ThreadPool::poll) or
/// [`ThreadPool::poll_timeout`](crate::ThreadPool::poll_timeout) handled no
/// result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PollError {
    /// No request of this handle is pending: there is nothing to wait for.
    NoResultsPending,
    /// Requests are pending, no worker thread is left to run them, and every
    /// result that was in flight has been handled.
    NoWorkersAvailable {
        /// Requests of this handle still pending (queued, never started).
        pending: usize,
    },
    /// The timeout passed before a result arrived.
    Timeout {
        /// Requests of this handle still pending.
        pending: usize,
    },
    /// Called on one of this pool's own worker threads, where blocking for
    /// results could deadlock the pool, and where callbacks, which run on
    /// the polling thread, would run on a worker. This holds for any handle
    /// of the pool, a fresh [`new_handle`](crate::ThreadPool::new_handle)
    /// too. Inside a callable, wait with a [`Ticket`](crate::Ticket), a
    /// [`collector`](crate::ThreadPool::collector), a
    /// [`scope`](crate::ThreadPool::scope) or an as-completed iterator
    /// instead (the waiting worker runs its own queued requests), or put
    /// follow-ups through the request's [`Context`](crate::Context) and
    /// poll the handle from outside the pool.
    OnWorkerThread,
    /// Called from a callback of this handle's, when every request still
    /// pending may be among the results taken off the result queue
    /// together with that callback's own: the call handling them (below
    /// this one, on this thread) handles them once the callback returns,
    /// so this one cannot wait for them. See
    /// [`WaitError::HeldByCaller`].
    HeldByCaller {
        /// Requests of this handle still pending.
        pending: usize,
    },
}

/// `n` and a noun, in the plural unless `n` is 1 ("1 request", "2
/// requests"): the counts in error messages.
struct Counted(usize, &'static str);

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Counted(n, noun) = *self;
        let s = if n == 1 { "" } else { "s" };
        write!(f, "{n} {noun}{s}")
    }
}

/// `NoWorkersAvailable`'s message, for a poll and a wait alike.
fn no_workers(f: &mut fmt::Formatter<'_>, pending: usize) -> fmt::Result {
    write!(
        f,
        "no worker threads available for {} (add some with `create_workers` or `resize`)",
        Counted(pending, "pending request")
    )
}

/// `Timeout`'s message, for a poll and a wait alike.
fn timed_out(f: &mut fmt::Formatter<'_>, pending: usize) -> fmt::Result {
    write!(f, "timed out with {} pending", Counted(pending, "request"))
}

/// `OnWorkerThread`'s message, for a poll (`what`: "poll for results on")
/// and a wait ("wait on") alike.
fn on_worker_thread(f: &mut fmt::Formatter<'_>, what: &str) -> fmt::Result {
    write!(
        f,
        "cannot {what} one of the pool's own worker threads (inside a callable, \
         wait with a ticket, collector, scope or as-completed iterator instead)"
    )
}

/// `HeldByCaller`'s message, for a poll and a wait alike.
fn held_by_caller(f: &mut fmt::Formatter<'_>, pending: usize) -> fmt::Result {
    let verb = if pending == 1 { "is" } else { "are" };
    write!(
        f,
        "the {} {verb} held by the call running this callback: handled once it returns",
        Counted(pending, "pending result")
    )
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::NoResultsPending => f.write_str("no results pending"),
            PollError::NoWorkersAvailable { pending } => no_workers(f, *pending),
            PollError::Timeout { pending } => timed_out(f, *pending),
            PollError::OnWorkerThread => on_worker_thread(f, "poll for results on"),
            PollError::HeldByCaller { pending } => held_by_caller(f, *pending),
        }
    }
}

impl std::error::Error for PollError {}

/// Why [`ThreadPool::wait`](crate::ThreadPool::wait) or
/// [`ThreadPool::wait_timeout`](crate::ThreadPool::wait_timeout) returned
/// before every request of the handle was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitError {
    /// Requests are pending that no worker can ever run (there are none
    /// left); every result that was in flight has been handled first. Create
    /// workers and wait again to run them.
    NoWorkersAvailable {
        /// Requests of this handle still pending (queued, never started).
        pending: usize,
    },
    /// The timeout passed first.
    Timeout {
        /// Requests of this handle still pending.
        pending: usize,
    },
    /// Called on one of this pool's own worker threads, where waiting could
    /// deadlock the pool (any handle of the pool, a fresh
    /// [`new_handle`](crate::ThreadPool::new_handle) too). What to use
    /// inside a callable instead: see [`PollError::OnWorkerThread`].
    OnWorkerThread,
    /// Called from a callback of this handle's (on the thread handling its
    /// results), when every request still pending may be among the results
    /// taken off the result queue together with that callback's own. The
    /// `poll` or `wait` running the callback holds them, and handles them
    /// once the callback returns; this wait cannot, so it returns rather
    /// than wait for ever. Every result it could reach has been handled.
    /// Results held the same way on other threads, below waits nested
    /// like this one, count as held too: those are handled only once one
    /// of the nested waits returns, so two such waits would otherwise wait
    /// for each other.
    ///
    /// *May* be: what is held is counted by message, and a streaming
    /// request's items and internal wake-ups among them count too (also
    /// those held on other threads), so a request can still be running
    /// when this is returned (for instance from the result callback of a
    /// stream whose next item was taken with it). Read it as "this wait
    /// cannot finish here", never as "everything has ended".
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WaitError, WorkRequest};
    /// use std::sync::{mpsc, Arc};
    ///
    /// let pool = Arc::new(ThreadPool::new(1));
    /// let (inner_tx, inner) = mpsc::channel();
    /// let handle = Arc::clone(&pool);
    /// pool.put_request(WorkRequest::new(|x: u32| x, 0).on_result(move |_, _| {
    ///     inner_tx.send(handle.wait()).unwrap();
    /// }))?;
    /// pool.put_request(WorkRequest::new(|x: u32| x, 1))?;
    /// // Once a third request runs on the one worker, the first two
    /// // results are queued, and the next wait takes them together.
    /// let (started_tx, started) = mpsc::channel();
    /// pool.put_request(WorkRequest::new(move |_: ()| started_tx.send(()).unwrap(), ()))?;
    /// started.recv()?;
    /// pool.wait()?;
    /// // The inner wait handled what it could reach, then returned.
    /// assert!(matches!(inner.recv()?, Err(WaitError::HeldByCaller { .. })));
    /// assert_eq!(pool.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    HeldByCaller {
        /// Requests of this handle still pending.
        pending: usize,
    },
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::NoWorkersAvailable { pending } => no_workers(f, *pending),
            WaitError::Timeout { pending } => timed_out(f, *pending),
            WaitError::OnWorkerThread => on_worker_thread(f, "wait on"),
            WaitError::HeldByCaller { pending } => held_by_caller(f, *pending),
        }
    }
}

impl std::error::Error for WaitError {}

/// A blocking poll fails for the reasons a wait does.
impl From<WaitError> for PollError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::NoWorkersAvailable { pending } => PollError::NoWorkersAvailable { pending },
            WaitError::Timeout { pending } => PollError::Timeout { pending },
            WaitError::OnWorkerThread => PollError::OnWorkerThread,
            WaitError::HeldByCaller { pending } => PollError::HeldByCaller { pending },
        }
    }
}

/// Why [`ThreadPool::create_workers`](crate::ThreadPool::create_workers) or
/// [`ThreadPool::resize`](crate::ThreadPool::resize) could not start every
/// worker asked for. Workers started before the failure keep running; no
/// count includes a worker that did not start.
#[derive(Debug)]
pub struct SpawnError {
    created: usize,
    kind: SpawnErrorKind,
}

#[derive(Debug)]
enum SpawnErrorKind {
    Io(io::Error),
    TooMany { requested: usize, limit: usize },
    ShutDown,
}

impl SpawnError {
    pub(crate) fn io(created: usize, err: io::Error) -> Self {
        SpawnError {
            created,
            kind: SpawnErrorKind::Io(err),
        }
    }

    pub(crate) fn too_many(requested: usize, limit: usize) -> Self {
        SpawnError {
            created: 0,
            kind: SpawnErrorKind::TooMany { requested, limit },
        }
    }

    pub(crate) fn shut_down() -> Self {
        SpawnError {
            created: 0,
            kind: SpawnErrorKind::ShutDown,
        }
    }

    /// How many workers were started before the failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, MAX_WORKERS};
    ///
    /// let pool = ThreadPool::new(1);
    /// let too_many = pool.create_workers(MAX_WORKERS).unwrap_err();
    /// assert_eq!(too_many.created(), 0);          // refused before starting any
    /// assert!(!too_many.is_os_error() && !too_many.is_shut_down());
    /// assert_eq!(pool.workers(), 1);
    ///
    /// pool.close()?;
    /// assert!(pool.create_workers(1).unwrap_err().is_shut_down());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn created(&self) -> usize {
        self.created
    }

    /// Whether the operating system refused to start a thread; then
    /// [`created`](Self::created) says how many had started, and
    /// `source()` is the `io::Error`. (The example of `created` shows the
    /// other kinds.)
    pub fn is_os_error(&self) -> bool {
        matches!(self.kind, SpawnErrorKind::Io(_))
    }

    /// Whether the pool had been shut down. See the example of
    /// [`created`](Self::created).
    pub fn is_shut_down(&self) -> bool {
        matches!(self.kind, SpawnErrorKind::ShutDown)
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SpawnErrorKind::Io(e) => write!(
                f,
                "failed to spawn a worker thread after starting {}: {e}",
                self.created
            ),
            SpawnErrorKind::TooMany { requested, limit } => write!(
                f,
                "{requested} workers asked for; a pool holds at most {limit}"
            ),
            SpawnErrorKind::ShutDown => f.write_str("pool is shut down"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            SpawnErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a [`Builder`](crate::Builder) could not build a pool. Workers started
/// before a failure are dismissed: they take no request and exit on their own.
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Debug)]
enum BuildErrorKind {
    Spawn(SpawnError),
    InvalidName(String),
    ZeroStackSize,
    /// Autoscaling settings that cannot hold: min above max, the initial
    /// workers outside them, a max of 0 or above `MAX_WORKERS`, or a zero
    /// keep-alive.
    InvalidScale(String),
}

impl BuildError {
    pub(crate) fn spawn(err: SpawnError) -> Self {
        BuildError {
            kind: BuildErrorKind::Spawn(err),
        }
    }

    pub(crate) fn invalid_name(name: String) -> Self {
        BuildError {
            kind: BuildErrorKind::InvalidName(name),
        }
    }

    pub(crate) fn zero_stack_size() -> Self {
        BuildError {
            kind: BuildErrorKind::ZeroStackSize,
        }
    }

    pub(crate) fn invalid_scale(why: String) -> Self {
        BuildError {
            kind: BuildErrorKind::InvalidScale(why),
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::Spawn(e) => write!(f, "could not start the pool's workers: {e}"),
            BuildErrorKind::InvalidName(name) => {
                write!(f, "thread name prefix {name:?} contains a NUL byte")
            }
            BuildErrorKind::ZeroStackSize => f.write_str("worker stack size must not be zero"),
            BuildErrorKind::InvalidScale(why) => write!(f, "invalid autoscaling settings: {why}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            BuildErrorKind::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`ThreadPool::shutdown`](crate::ThreadPool::shutdown) did not end
/// with every request run and every thread joined.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The pool had no worker thread left, so these queued requests of this
    /// handle never ran; they are handed back.
    Unrun(Vec<WorkRequest>),
    /// Worker threads were still running when the timeout passed (a
    /// callable that does not return). They are left to finish on their own.
    TimedOut {
        /// Threads still running.
        threads: usize,
        /// Requests of this handle still pending.
        pending: usize,
    },
    /// Called on one of this pool's own worker threads, which cannot join
    /// itself. The pool was not shut down.
    OnWorkerThread,
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::Unrun(reqs) => {
                let unrun = reqs.len();
                let verb = if unrun == 1 { "it" } else { "they" };
                write!(
                    f,
                    "{} never ran: no workers were left to run {verb}",
                    Counted(unrun, "queued request")
                )
            }
            ShutdownError::TimedOut { threads, pending } => write!(
                f,
                "shutdown timed out with {} running and {} pending",
                Counted(*threads, "thread"),
                Counted(*pending, "request")
            ),
            ShutdownError::OnWorkerThread => {
                f.write_str("cannot shut a pool down from one of its own worker threads")
            }
        }
    }
}

impl std::error::Error for ShutdownError {}

/// Why [`configure_global`](crate::configure_global) refused the settings.
#[derive(Debug)]
#[non_exhaustive]
pub enum GlobalPoolError {
    /// The global pool already exists: it is configured once, before its
    /// first use.
    AlreadyInitialized,
    /// `configure_global` was already called (with settings that were
    /// accepted): those apply, and these are refused rather than replacing
    /// them in silence.
    AlreadyConfigured,
    /// The settings are invalid (as [`Builder::build`](crate::Builder::build)
    /// would say); the global pool stays unconfigured.
    InvalidSettings(BuildError),
}

impl fmt::Display for GlobalPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalPoolError::AlreadyInitialized => {
                f.write_str("the global pool is already initialized (configure it before the first `callpool::global()`)")
            }
            GlobalPoolError::AlreadyConfigured => {
                f.write_str("the global pool is already configured (only the first `configure_global` applies)")
            }
            GlobalPoolError::InvalidSettings(e) => write!(f, "invalid global pool settings: {e}"),
        }
    }
}

impl std::error::Error for GlobalPoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GlobalPoolError::InvalidSettings(e) => Some(e),
            GlobalPoolError::AlreadyInitialized | GlobalPoolError::AlreadyConfigured => None,
        }
    }
}
