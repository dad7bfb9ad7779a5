//! Work requests: a callable, its argument, and the callbacks that receive
//! its outcome; and [`make_requests`], which builds many at once.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::task::{Envelope, OwnedTask, Recipe, SharedTask, Stage, TaskBox, TaskError};

/// Identifies a request among the pending requests of a pool handle.
///
/// Every [`WorkRequest`] gets an id when it is made: either one chosen by the
/// user ([`Request::with_id`]), kept exactly as given, or an automatic one,
/// unique in the whole process for its lifetime. An automatic id and a
/// user-chosen id with the same number are different ids; both print as the
/// bare number.
///
/// # Examples
///
/// ```
/// use callpool::WorkRequest;
///
/// let auto: callpool::WorkRequest = WorkRequest::new(|x: u8| x, 1).into();
/// assert!(!auto.id().is_user_chosen());
///
/// let mine: callpool::WorkRequest = WorkRequest::new(|x: u8| x, 1).with_id(42).into();
/// assert_eq!(mine.id().value(), 42);
/// assert_eq!(mine.id().to_string(), "42");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    value: u64,
    user_chosen: bool,
}

impl RequestId {
    /// A fresh automatic id.
    pub(crate) fn next_auto() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        // Relaxed: uniqueness needs only the atomicity of fetch_add; no other
        // memory is published through this counter.
        let value = NEXT.fetch_add(1, Ordering::Relaxed);
        RequestId {
            value,
            user_chosen: false,
        }
    }

    pub(crate) fn from_parts(value: u64, user_chosen: bool) -> Self {
        RequestId { value, user_chosen }
    }

    /// The id's number.
    pub fn value(self) -> u64 {
        self.value
    }

    /// Whether the user chose this id (rather than the pool).
    pub fn is_user_chosen(self) -> bool {
        self.user_chosen
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.user_chosen { "user" } else { "auto" };
        write!(f, "RequestId({kind} {})", self.value)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

/// A request ready to be put on a pool: its id and its type-erased work.
///
/// Make one with [`WorkRequest::new`] or [`WorkRequest::fallible`] (which
/// return a typed [`Request`] you can attach callbacks to, then convert with
/// `into()` or pass straight to [`ThreadPool::put_request`]), or many at once
/// with [`make_requests`]. Errors that reject a request hand it back as a
/// `WorkRequest`, so it can be put again.
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
pub struct WorkRequest {
    /// The id and the task, in the one allocation that carries the request
    /// through the pool.
    pub(crate) task: TaskBox,
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
        impl FnOnce() -> Result<T, Infallible> + Send + 'static,
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
        without_callbacks(move || Ok(callable(arg)))
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
        impl FnOnce() -> Result<T, E> + Send + 'static,
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
        without_callbacks(move || callable(arg))
    }

    /// This request's id.
    pub fn id(&self) -> RequestId {
        self.task.id()
    }
}

impl fmt::Debug for WorkRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkRequest")
            .field("id", &self.task.id())
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
            log::error!("request {id} failed and has no error callback: {err:?}");
        },
        set: CallbacksSet {
            on_result: false,
            on_error: false,
        },
        id: None,
        _outcome: PhantomData,
    }
}

impl<W, T, E, R, X> Request<W, T, E, R, X> {
    /// Sets the callback that receives the result, on the polling thread.
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
            _outcome: PhantomData,
        }
    }

    /// Sets the callback that receives a failure, a panic or a cancellation,
    /// on the polling thread. Without one, failures are logged at error level.
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
            _outcome: PhantomData,
        }
    }

    /// Chooses this request's id. It is kept exactly as given; a pool handle
    /// refuses a second pending request with the same user-chosen id
    /// ([`PutError::DuplicateId`](crate::PutError::DuplicateId)).
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }
}

impl<W, T, E, R, X> fmt::Debug for Request<W, T, E, R, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("on_result", &self.set.on_result)
            .field("on_error", &self.set.on_error)
            .finish_non_exhaustive()
    }
}

impl<W, T, E, R, X> From<Request<W, T, E, R, X>> for WorkRequest
where
    W: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
    R: FnOnce(RequestId, T) + Send + 'static,
    X: FnOnce(RequestId, TaskError<E>) + Send + 'static,
{
    fn from(request: Request<W, T, E, R, X>) -> Self {
        let Request {
            work,
            on_result,
            on_error,
            id,
            ..
        } = request;
        let stage = Stage::Ready(work);
        let callbacks = Some((on_result, on_error));
        // Two task types, one per kind of id: the kind is in the type, so
        // the box carries no flag for it.
        let task: TaskBox = match id {
            Some(value) => Box::new(Envelope {
                id_value: value,
                task: OwnedTask::<_, T, E, _, _, true> { stage, callbacks },
            }),
            None => Box::new(Envelope {
                id_value: RequestId::next_auto().value(),
                task: OwnedTask::<_, T, E, _, _, false> { stage, callbacks },
            }),
        };
        WorkRequest { task }
    }
}

/// Makes one request per item of `args`, all sharing `callable` and the two
/// callbacks. Nothing is submitted: put the requests on a pool yourself.
///
/// The callable and callbacks are shared (behind one `Arc`), so they are `Fn`
/// and `Sync`. Each request gets its own automatic id, known at once from
/// [`WorkRequest::id`]. For a callable that returns `Result`, use
/// [`make_fallible_requests`].
///
/// # Examples
///
/// ```
/// use callpool::{make_requests, ThreadPool};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let sum = Arc::clone(&total);
/// let pool = ThreadPool::new(4);
/// let reqs = make_requests(
///     |n: u64| n * n,
///     0..100,
///     move |_id, square| { sum.fetch_add(square, Ordering::Relaxed); },
///     |id, err| eprintln!("#{id} failed: {err}"),
/// );
/// assert_eq!(reqs.len(), 100);
/// for r in reqs {
///     pool.put_request(r)?;
/// }
/// pool.wait()?;
/// assert_eq!(total.load(Ordering::Relaxed), (0..100u64).map(|n| n * n).sum());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_requests<F, I, T, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    R: Fn(RequestId, T) + Send + Sync + 'static,
    X: Fn(RequestId, TaskError) + Send + Sync + 'static,
{
    make_fallible_requests(
        move |arg| Ok::<T, Infallible>(callable(arg)),
        args,
        on_result,
        on_error,
    )
}

/// Like [`make_requests`], for a callable that returns `Result`: `Ok` goes to
/// `on_result`, `Err` to `on_error` as [`TaskError::Failed`].
///
/// # Examples
///
/// ```
/// use callpool::{make_fallible_requests, TaskError, ThreadPool};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let tx2 = tx.clone();
/// let reqs = make_fallible_requests(
///     |s: &'static str| s.parse::<i32>(),
///     ["1", "x", "3"],
///     move |_, n| tx.send(Ok(n)).unwrap(),
///     move |_, err: TaskError<_>| tx2.send(Err(err.to_string())).unwrap(),
/// );
/// let pool = ThreadPool::new(2);
/// for r in reqs {
///     pool.put_request(r)?;
/// }
/// pool.wait()?;
/// let mut got: Vec<_> = rx.try_iter().collect();
/// got.sort();
/// assert_eq!(got.len(), 3);
/// assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_fallible_requests<F, I, T, E, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(I::Item) -> Result<T, E> + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
    R: Fn(RequestId, T) + Send + Sync + 'static,
    X: Fn(RequestId, TaskError<E>) + Send + Sync + 'static,
{
    let recipe = Arc::new(Recipe {
        callable,
        on_result,
        on_error,
    });
    args.into_iter()
        .map(|arg| WorkRequest {
            task: Box::new(Envelope {
                id_value: RequestId::next_auto().value(),
                task: SharedTask {
                    stage: Stage::Ready(arg),
                    recipe: Arc::clone(&recipe),
                },
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W5's request (a `u64` argument, a result callback holding one
    /// pointer, no error callback) fits a 32-byte box: the id's number, the
    /// stage and the callbacks, 8 + 16 + 8 bytes, whatever kind of id.
    #[test]
    fn a_small_request_fits_a_32_byte_box() {
        static SUM: AtomicU64 = AtomicU64::new(0);
        let sum = &SUM;
        let make = || {
            WorkRequest::new(|n: u64| n * n, 3).on_result(move |_, v| {
                sum.fetch_add(v, Ordering::Relaxed);
            })
        };
        let auto: WorkRequest = make().into();
        let user: WorkRequest = make().with_id(u64::MAX).into();
        assert_eq!(std::mem::size_of_val(&*auto.task), 32);
        assert_eq!(std::mem::size_of_val(&*user.task), 32);
        assert!(!auto.id().is_user_chosen());
        assert_eq!(user.id(), RequestId::from_parts(u64::MAX, true));
    }
}
