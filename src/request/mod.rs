//! Work requests: a callable, its argument, and the callbacks that receive
//! its outcome; their ids; and [`make_requests`], which builds many at once.
//! `task` erases their types for the queues.

mod batch;
pub(crate) mod context;
pub(crate) mod ended;
mod id;
pub(crate) mod in_place;
mod join;
mod keyed;
pub(crate) mod stream;
pub(crate) mod task;
mod task_error;
pub(crate) mod timing;

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use batch::{make_fallible_requests, make_requests};
pub use context::{Closed, Context};
pub use id::RequestId;
pub use keyed::{make_fallible_requests_with_input, make_requests_with_input};
pub use stream::{Emitter, StreamRequest};
pub use task_error::TaskError;
pub use timing::{timing, Timing};

use crate::unwind::Apart;
use task::{BoxedTask, Envelope, OwnedTask, Stage, TaskBox};

/// A request ready to be put on a pool: its id and its type-erased work.
///
/// Make one with [`WorkRequest::new`] or [`WorkRequest::fallible`] (which
/// return a typed [`Request`] you can attach callbacks to, then convert with
/// `into()` or pass straight to [`ThreadPool::put_request`]), or many at once
/// with [`make_requests`]. Errors that reject a request hand it back as a
/// `WorkRequest`, so it can be put again.
///
/// **`WorkRequest::new` returns a typed [`Request`], not a `WorkRequest`.**
/// Its type names the closures inside, so to return one from a function or
/// keep several in a `Vec`, convert it with `.into()` (or return
/// `impl Into<WorkRequest>`):
///
/// ```
/// use callpool::{ThreadPool, WorkRequest};
///
/// fn download(url: &str) -> WorkRequest {
///     let url = url.to_owned();
///     WorkRequest::new(|url: String| url.len(), url)
///         .on_error(|id, err| eprintln!("#{id}: {err}"))
///         .into()                                  // Request<..> -> WorkRequest
/// }
/// let requests: Vec<WorkRequest> = vec![download("a"), download("bb")];
/// let pool = ThreadPool::new(2);
/// for r in requests {
///     pool.put_request(r)?;
/// }
/// pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`ThreadPool::put_request`]: crate::ThreadPool::put_request
///
/// # Examples
///
/// ```
/// use callpool::{ThreadPool, WorkRequest};
///
/// let pool = ThreadPool::new(2);
/// let id = pool.put_request(
///     WorkRequest::new(|s: String| s.len(), "hello".to_string())
///         .on_result(|_, n| assert_eq!(n, 5)),
/// )?;
/// assert_eq!(pool.pending(), 1);
/// pool.wait()?;
/// # let _ = id;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a request does nothing until it is put on a pool"]
pub struct WorkRequest {
    /// The id and the task, in the one allocation that carries the request
    /// through the pool. Behind a `Mutex` only to make `WorkRequest` (and the
    /// errors that hand one back) `Sync` while the task is only `Send`. Only
    /// `id` and `Debug` lock it; a put takes the box out with `into_task`,
    /// without locking.
    task: Mutex<TaskBox>,
}

impl WorkRequest {
    /// Starts a request that will call `callable(arg)` on a worker.
    ///
    /// A panic in `callable` is caught and reaches the error callback as
    /// [`TaskError::Panicked`]. Attach callbacks with [`Request::on_result`]
    /// and [`Request::on_error`]; both run on the thread that polls.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// pool.put_request(WorkRequest::new(|n: u64| n * n, 7).on_result(|_, sq| assert_eq!(sq, 49)))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // It returns the typed builder, not `Self`: the callbacks' types are only
    // known once they are attached.
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::new_ret_no_self, clippy::type_complexity)]
    pub fn new<F, A, T>(
        callable: F,
        arg: A,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<T, Infallible> + Send + 'static,
        T,
        Infallible,
        impl FnOnce(RequestId, T) + Send + 'static,
        impl FnOnce(RequestId, TaskError) + Send + 'static,
    >
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        let arg = Apart::new(arg);
        without_callbacks(move |_: &Context<'_>| Ok(callable(arg.into_inner())))
    }

    /// Starts a request that calls `callable()`: work that needs no
    /// argument, or captures what it needs. For several arguments, pass a
    /// tuple to [`new`](Self::new): `WorkRequest::new(|(a, b): (u32, u32)| a + b, (1, 2))`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let name = String::from("callpool");
    /// pool.put_request(WorkRequest::call(move || name.len()).on_result(|_, n| assert_eq!(n, 8)))?;
    /// pool.put_request(WorkRequest::new(|(a, b): (u32, u32)| a * b, (6, 7)).on_result(|_, p| assert_eq!(p, 42)))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn call<F, T>(
        callable: F,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<T, Infallible> + Send + 'static,
        T,
        Infallible,
        impl FnOnce(RequestId, T) + Send + 'static,
        impl FnOnce(RequestId, TaskError) + Send + 'static,
    >
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        without_callbacks(move |_: &Context<'_>| Ok(callable()))
    }

    /// Starts a request whose callable returns a `Result`: `Ok` goes to the
    /// result callback, `Err` to the error callback as [`TaskError::Failed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// pool.put_request(
    ///     WorkRequest::fallible(|s: &'static str| s.parse::<u32>(), "12")
    ///         .on_result(|_, n| assert_eq!(n, 12))
    ///         .on_error(|id, err| panic!("{id}: {err}")),
    /// )?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn fallible<F, A, T, E>(
        callable: F,
        arg: A,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
        T,
        E,
        impl FnOnce(RequestId, T) + Send + 'static,
        impl FnOnce(RequestId, TaskError<E>) + Send + 'static,
    >
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        let arg = Apart::new(arg);
        without_callbacks(move |_: &Context<'_>| callable(arg.into_inner()))
    }

    /// Starts a request whose callable is also given a [`Context`], through
    /// which it can put more requests on the same handle while it runs:
    /// work that makes work (a crawler, a tree walk). A `wait` on that
    /// handle returns only after everything added this way, transitively,
    /// has been handled. The children are handed to the queue in batches
    /// ([`Context::put`] says when), so a callable that waits for its own
    /// children needs another worker free to run them.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::new(4);
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let total = Arc::clone(&sum);
    /// pool.put_request(WorkRequest::with_context(move |cx: &Context<'_>, n: u64| {
    ///     for i in 0..n {
    ///         let sum = Arc::clone(&total);
    ///         cx.put(WorkRequest::new(|i: u64| i * i, i)
    ///             .on_result(move |_, sq| { sum.fetch_add(sq, Ordering::Relaxed); }))
    ///             .expect("the pool is open");
    ///     }
    /// }, 1_000))?;
    /// pool.wait()?; // the parent and all 1,000 children
    /// assert_eq!(sum.load(Ordering::Relaxed), (0..1_000u64).map(|i| i * i).sum());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn with_context<F, A, T>(
        callable: F,
        arg: A,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<T, Infallible> + Send + 'static,
        T,
        Infallible,
        impl FnOnce(RequestId, T) + Send + 'static,
        impl FnOnce(RequestId, TaskError) + Send + 'static,
    >
    where
        F: FnOnce(&Context<'_>, A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        let arg = Apart::new(arg);
        without_callbacks(move |cx: &Context<'_>| Ok(callable(cx, arg.into_inner())))
    }

    /// [`with_context`](Self::with_context) for a callable that returns a
    /// `Result`, as [`fallible`](Self::fallible) is for
    /// [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(2);
    /// pool.put_request(WorkRequest::fallible_with_context(|cx: &Context<'_>, n: u32| {
    ///     cx.put(WorkRequest::new(|n: u32| n + 1, n))?;
    ///     Ok::<_, callpool::PutError>(n)
    /// }, 1))?;
    /// assert_eq!(pool.wait()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn fallible_with_context<F, A, T, E>(
        callable: F,
        arg: A,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
        T,
        E,
        impl FnOnce(RequestId, T) + Send + 'static,
        impl FnOnce(RequestId, TaskError<E>) + Send + 'static,
    >
    where
        F: FnOnce(&Context<'_>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        let arg = Apart::new(arg);
        without_callbacks(move |cx: &Context<'_>| callable(cx, arg.into_inner()))
    }

    /// This request's id.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let request: WorkRequest = WorkRequest::new(|n: u32| n, 1).into();
    /// let id = request.id();
    /// assert_eq!(pool.put_request(request)?, id); // the put returns the same id
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> RequestId {
        self.task_ref().id()
    }

    pub(crate) fn from_task(task: impl Into<TaskBox>) -> WorkRequest {
        WorkRequest {
            task: Mutex::new(task.into()),
        }
    }

    /// The boxed task, in place, without locking (the request is ours).
    pub(crate) fn task_mut(&mut self) -> &mut TaskBox {
        self.task.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// The boxed task, to queue it.
    pub(crate) fn into_task(self) -> TaskBox {
        // Poisoning cannot happen (no code panics while holding the lock:
        // `id` reads two words); take the box either way.
        self.task.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn task_ref(&self) -> std::sync::MutexGuard<'_, TaskBox> {
        self.task.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for WorkRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkRequest")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// A typed request under construction: the work, its callbacks and its id.
///
/// Made by [`WorkRequest::new`] or [`WorkRequest::fallible`]; turned into a
/// [`WorkRequest`] by `into()` or by passing it to a `put_request` method.
/// The type parameters are the work closure `W`, its result `T` and error
/// `E`, and the result and error callbacks `R` and `X`.
#[must_use = "a request does nothing until it is put on a pool"]
pub struct Request<W, T, E, R, X> {
    work: W,
    /// The result callback; until one is set, one that drops the result.
    on_result: R,
    /// The error callback; until one is set, one that logs the error.
    on_error: X,
    /// Which callbacks the user set (for `Debug`).
    set: CallbacksSet,
    id: Option<u64>,
    deadline: Option<Instant>,
    timed: bool,
    _outcome: PhantomData<fn() -> (T, E)>,
}

struct CallbacksSet {
    on_result: bool,
    on_error: bool,
}

/// A request with no callbacks yet. The stand-ins capture nothing, so they
/// take no space in the request: a result nobody asked for is dropped (not
/// wanting a callback means not wanting the value), and an error nobody
/// asked for is logged at error level, never dropped silently.
#[allow(clippy::type_complexity)]
fn without_callbacks<W, T, E>(
    work: W,
) -> Request<
    W,
    T,
    E,
    impl FnOnce(RequestId, T) + Send + 'static,
    impl FnOnce(RequestId, TaskError<E>) + Send + 'static,
>
where
    T: 'static,
    E: fmt::Debug + 'static,
{
    Request {
        work,
        on_result: |_: RequestId, _: T| {},
        on_error: |id: RequestId, err: TaskError<E>| {
            log::error!("callpool: request {id} failed and has no error callback: {err:?}");
        },
        set: CallbacksSet {
            on_result: false,
            on_error: false,
        },
        id: None,
        deadline: None,
        timed: false,
        _outcome: PhantomData,
    }
}

impl<W, T, E, R, X> Request<W, T, E, R, X> {
    /// Sets the callback that receives the result, on the polling thread.
    ///
    /// It travels inside the request, so it must be `Send + 'static` even
    /// though no worker runs it: an `Rc`, a `RefCell` or a borrowed local
    /// it captures fails to compile here (E0277, E0597 or E0373). Hand
    /// what it sees to your state through a channel (as below) or an
    /// `Arc`, or keep the callbacks on your thread with a
    /// [`collector`](crate::ThreadPool::collector) or a
    /// [`scope`](crate::ThreadPool::scope), whose `put_then` takes an
    /// `FnOnce` that need be neither.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let here = std::thread::current().id();
    /// let (tx, rx) = mpsc::channel();
    /// let id = pool.put_request(WorkRequest::new(|n: u32| n * 2, 21).on_result(move |id, doubled| {
    ///     assert_eq!(std::thread::current().id(), here); // the thread that waits, not a worker
    ///     tx.send((id, doubled)).unwrap();
    /// }))?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_recv()?, (id, 42));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_result<R2>(self, callback: R2) -> Request<W, T, E, R2, X>
    where
        R2: FnOnce(RequestId, T) + Send + 'static,
    {
        Request {
            work: self.work,
            on_result: callback,
            on_error: self.on_error,
            set: CallbacksSet {
                on_result: true,
                ..self.set
            },
            id: self.id,
            deadline: self.deadline,
            timed: self.timed,
            _outcome: PhantomData,
        }
    }

    /// Sets the callback that receives a failure, a panic or a cancellation,
    /// on the polling thread. Without one, failures are logged at error level.
    /// It must be `Send + 'static`, as [`on_result`](Self::on_result)'s
    /// must, and for the same reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// pool.put_request(
    ///     WorkRequest::new(|n: u32| if n == 0 { panic!("zero") } else { 100 / n }, 0)
    ///         .on_result(|_, _| unreachable!("it panics"))
    ///         .on_error(move |_, err| tx.send(err).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_recv()?, TaskError::Panicked("zero".to_string()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_error<X2>(self, callback: X2) -> Request<W, T, E, R, X2>
    where
        X2: FnOnce(RequestId, TaskError<E>) + Send + 'static,
    {
        Request {
            work: self.work,
            on_result: self.on_result,
            on_error: callback,
            set: CallbacksSet {
                on_error: true,
                ..self.set
            },
            id: self.id,
            deadline: self.deadline,
            timed: self.timed,
            _outcome: PhantomData,
        }
    }

    /// Chooses this request's id. It is kept exactly as given; a pool handle
    /// refuses a second pending request with the same user-chosen id
    /// ([`PutError::DuplicateId`](crate::PutError::DuplicateId)).
    ///
    /// # Examples
    ///
    /// A request is pending until its outcome is handled, so the second put
    /// below is refused; once `wait` has handled the first, the id is free:
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let id = pool.put_request(WorkRequest::new(|n: u32| n, 1).with_id(7))?;
    /// assert_eq!((id.value(), id.is_user_chosen()), (7, true));
    /// let again = pool.put_request(WorkRequest::new(|n: u32| n, 2).with_id(7));
    /// assert!(matches!(again, Err(PutError::DuplicateId(_))));
    /// pool.wait()?;
    /// pool.put_request(WorkRequest::new(|n: u32| n, 3).with_id(7))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Gives the request a deadline to *start* by: if no worker has taken
    /// it by `at`, it is not run, and its error callback hears
    /// [`TaskError::Expired`]. A request that started in time runs to the
    /// end, however long it takes.
    ///
    /// The deadline is checked when a worker takes the request, so an
    /// expired request still waits its turn in the queue (no timer thread
    /// wakes anything up for it); its callback runs when the handle is next
    /// polled after that. One that a shutdown sweeps out of the queue
    /// before a worker takes it hears [`TaskError::Cancelled`], past its
    /// deadline or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool, WorkRequest};
    /// use std::time::Instant;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // Already past: the callable never runs.
    /// pool.put_request(
    ///     WorkRequest::new(|_: ()| unreachable!(), ())
    ///         .deadline(Instant::now())
    ///         .on_error(move |_, err| tx.send(err).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.recv()?, TaskError::Expired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// Like [`deadline`](Self::deadline), `timeout` from now. A timeout too
    /// large for the clock means no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// pool.put_request(
    ///     WorkRequest::new(|n: u32| n + 1, 1)
    ///         .timeout(Duration::from_secs(60))
    ///         .on_result(|_, n| assert_eq!(n, 2)),
    /// )?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Records how long the request waits in the queue and runs, and on
    /// which worker: its callbacks read it with [`timing`](crate::timing).
    /// Only requests made this way read the clock; the others carry
    /// nothing for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let untimed = tx.clone();
    /// pool.put_request(WorkRequest::new(|n: u32| n, 1).timed().on_result(move |_, _| {
    ///     tx.send(callpool::timing().map(|t| t.worker)).unwrap();
    /// }))?;
    /// pool.put_request(WorkRequest::new(|n: u32| n, 2).on_result(move |_, _| {
    ///     untimed.send(callpool::timing().map(|t| t.worker)).unwrap();
    /// }))?;
    /// pool.wait()?;
    /// let mut seen: Vec<_> = rx.try_iter().collect();
    /// seen.sort_unstable();
    /// assert_eq!(seen, [None, Some(Some(0))]); // the timed one ran on worker 0
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timed(mut self) -> Self {
        self.timed = true;
        self
    }
}

impl<W, T, E, R, X> fmt::Debug for Request<W, T, E, R, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("on_result", &self.set.on_result)
            .field("on_error", &self.set.on_error)
            .field("deadline", &self.deadline)
            .field("timed", &self.timed)
            .finish_non_exhaustive()
    }
}

impl<W, T, E, R, X> From<Request<W, T, E, R, X>> for WorkRequest
where
    W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
    R: FnOnce(RequestId, T) + Send + 'static,
    X: FnOnce(RequestId, TaskError<E>) + Send + 'static,
{
    // Inlined: made once per put, and its four kinds of task fold to one
    // where the request's type is known (left to the inliner's costs, it
    // was a call of its own in some builds: 43 instructions more per put).
    #[inline]
    fn from(request: Request<W, T, E, R, X>) -> Self {
        let Request {
            work,
            on_result,
            on_error,
            id,
            deadline,
            timed,
            ..
        } = request;
        let stage = Stage::Ready(work);
        let callbacks = Some((on_result, on_error));
        // Four task types, one per kind of id and whether there is a
        // deadline: both are in the type, so the box carries no flag and no
        // empty deadline for them.
        let auto = || RequestId::next_auto().value();
        let task: BoxedTask = if timed {
            let extras = task::Timed {
                clock: timing::Clock::start(),
                deadline,
            };
            match id {
                Some(value) => boxed::<_, T, E, _, _, _, true>(value, stage, extras, callbacks),
                None => boxed::<_, T, E, _, _, _, false>(auto(), stage, extras, callbacks),
            }
        } else {
            match (id, deadline) {
                (Some(value), None) => boxed::<_, T, E, _, _, _, true>(value, stage, (), callbacks),
                (Some(value), Some(at)) => {
                    boxed::<_, T, E, _, _, _, true>(value, stage, at, callbacks)
                }
                (None, None) => boxed::<_, T, E, _, _, _, false>(auto(), stage, (), callbacks),
                (None, Some(at)) => boxed::<_, T, E, _, _, _, false>(auto(), stage, at, callbacks),
            }
        };
        WorkRequest::from_task(TaskBox::Boxed(task))
    }
}

/// One request's box, of the task type its id kind and deadline select.
fn boxed<W, T, E, R, X, D, const USER_ID: bool>(
    id_value: u64,
    stage: Stage<W, T, E>,
    extras: D,
    callbacks: Option<(R, X)>,
) -> BoxedTask
where
    W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: FnOnce(RequestId, T) + Send + 'static,
    X: FnOnce(RequestId, TaskError<E>) + Send + 'static,
    D: task::Extras + 'static,
{
    Box::new(Envelope {
        id_value,
        task: OwnedTask::<W, T, E, R, X, D, USER_ID> {
            stage,
            extras,
            callbacks,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// W5's request (a `u64` argument, a result callback holding one
    /// pointer, no error callback) fits a 40-byte box: the id's number, the
    /// stage and the callbacks, 8 + 24 + 8 bytes, whatever kind of id; the
    /// argument's `Apart` (`unwind.rs`) costs a `u64` 8 bytes, and glibc's
    /// malloc gives 40 bytes the same 48-byte block as 32.
    #[test]
    fn a_small_request_fits_a_40_byte_box() {
        static SUM: AtomicU64 = AtomicU64::new(0);
        let sum = &SUM;
        let make = || {
            WorkRequest::new(|n: u64| n * n, 3).on_result(move |_, v| {
                sum.fetch_add(v, Ordering::Relaxed);
            })
        };
        let auto: WorkRequest = make().into();
        let user: WorkRequest = make().with_id(u64::MAX).into();
        let boxed_size = |request: &WorkRequest| match &*request.task_ref() {
            TaskBox::Boxed(task) => std::mem::size_of_val(&**task),
            TaskBox::Shared(_) => unreachable!("a callback request has a box of its own"),
        };
        assert_eq!(boxed_size(&auto), 40);
        assert_eq!(boxed_size(&user), 40);
        assert!(!auto.id().is_user_chosen());
        assert_eq!(user.id(), RequestId::from_parts(u64::MAX, true));
    }
}
