//! The type-erased unit of work that travels from the submitting thread to a
//! worker and back: run on the worker, reported on the polling thread.
//!
//! One allocation carries a request through its whole life: the worker runs
//! the callable *in place* and stores the outcome in the same box, which then
//! goes back to the owner's result queue.

use std::any::Any;
use std::convert::Infallible;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::request::RequestId;

/// Why a request produced no result.
///
/// The error callback of a request receives one of these. `E` is the error
/// type of a fallible callable ([`WorkRequest::fallible`]); for an infallible
/// one it is [`Infallible`], so only [`Panicked`](TaskError::Panicked) and
/// [`Cancelled`](TaskError::Cancelled) can occur.
///
/// [`WorkRequest::fallible`]: crate::WorkRequest::fallible
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
///     WorkRequest::fallible(|n: i32| if n < 0 { Err("negative") } else { Ok(n) }, -1)
///         .on_error(move |_, err| tx.send(err).unwrap()),
/// )?;
/// pool.wait()?;
/// assert!(matches!(rx.recv()?, TaskError::Failed("negative")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError<E = Infallible> {
    /// The callable returned `Err(e)`.
    Failed(E),
    /// The callable panicked; this is the panic message (or a placeholder
    /// when the payload was neither a `&str` nor a `String`).
    Panicked(String),
    /// The request was never started: the pool was shut down (by another
    /// handle, or with no worker left to drain it) before a worker took it.
    /// When the last handle is dropped, queued requests are discarded with no
    /// callback, since no handle is left to run one.
    Cancelled,
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed(e) => write!(f, "request failed: {e}"),
            TaskError::Panicked(msg) => write!(f, "request panicked: {msg}"),
            TaskError::Cancelled => f.write_str("request cancelled before it started"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TaskError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// A request with its types erased, as the queues carry it.
pub(crate) trait Task: Send {
    /// On a worker: runs the callable, catching a panic, and keeps the
    /// outcome inside. Runs at most once; a second call does nothing.
    fn run(&mut self);
    /// On the polling thread: hands the outcome to its callback.
    fn complete(self: Box<Self>, id: RequestId);
    /// On the polling thread: tells the error callback the request never ran.
    fn cancel(self: Box<Self>, id: RequestId);
}

/// Where a request is in its life, inside its box.
pub(crate) enum Stage<I, T, E> {
    /// Not run yet; holds what the callable needs.
    Ready(I),
    /// Run; holds the outcome until the callback takes it.
    Finished(Result<T, TaskError<E>>),
    /// Outcome handed on (only seen after a bug or a second `run`).
    Spent,
}

impl<I, T, E> Stage<I, T, E> {
    fn take(&mut self) -> Self {
        std::mem::replace(self, Stage::Spent)
    }
}

/// Runs `work`, turning a panic into [`TaskError::Panicked`] so that the
/// worker thread survives it.
fn execute<T, E>(work: impl FnOnce() -> Result<T, E>) -> Result<T, TaskError<E>> {
    // AssertUnwindSafe: after a panic nothing the closure touched is used
    // again by the pool; the closure itself is gone.
    match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(TaskError::Failed(e)),
        Err(payload) => Err(TaskError::Panicked(panic_message(payload))),
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "panic payload of unknown type".to_owned(),
        },
    }
}

/// Hands an outcome to the right callback. An error with no error callback
/// is logged, never dropped silently; a result with no result callback is
/// dropped (asking for no callback means not wanting the value).
fn report<T, E: fmt::Debug>(
    id: RequestId,
    outcome: Result<T, TaskError<E>>,
    on_result: Option<impl FnOnce(RequestId, T)>,
    on_error: Option<impl FnOnce(RequestId, TaskError<E>)>,
) {
    match (outcome, on_error) {
        (Ok(value), _) => {
            if let Some(cb) = on_result {
                cb(id, value);
            }
        }
        (Err(err), Some(cb)) => cb(id, err),
        (Err(err), None) => log::error!("request {id} failed and has no error callback: {err:?}"),
    }
}

fn stage_bug(id: RequestId) {
    log::error!("callpool bug: request {id} reached its callback without running");
}

/// A request built from one `FnOnce` callable (see [`crate::Request`]).
pub(crate) struct OwnedTask<W, T, E, R, X> {
    pub(crate) stage: Stage<W, T, E>,
    pub(crate) on_result: Option<R>,
    pub(crate) on_error: Option<X>,
}

impl<W, T, E, R, X> Task for OwnedTask<W, T, E, R, X>
where
    W: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: fmt::Debug + Send,
    R: FnOnce(RequestId, T) + Send,
    X: FnOnce(RequestId, TaskError<E>) + Send,
{
    fn run(&mut self) {
        if let Stage::Ready(work) = self.stage.take() {
            self.stage = Stage::Finished(execute(work));
        }
    }

    fn complete(self: Box<Self>, id: RequestId) {
        let this = *self;
        match this.stage {
            Stage::Finished(outcome) => report(id, outcome, this.on_result, this.on_error),
            _ => stage_bug(id),
        }
    }

    fn cancel(self: Box<Self>, id: RequestId) {
        let this = *self;
        report::<T, E>(
            id,
            Err(TaskError::Cancelled),
            None::<fn(RequestId, T)>,
            this.on_error,
        );
    }
}

/// What the requests of one [`crate::make_requests`] call share.
pub(crate) struct Recipe<F, R, X> {
    pub(crate) callable: F,
    pub(crate) on_result: R,
    pub(crate) on_error: X,
}

/// A request made by [`crate::make_requests`]: its own argument, and the
/// callable and callbacks it shares with its siblings.
pub(crate) struct SharedTask<A, T, E, F, R, X> {
    pub(crate) stage: Stage<A, T, E>,
    pub(crate) recipe: Arc<Recipe<F, R, X>>,
}

impl<A, T, E, F, R, X> Task for SharedTask<A, T, E, F, R, X>
where
    A: Send,
    T: Send,
    E: fmt::Debug + Send,
    F: Fn(A) -> Result<T, E> + Send + Sync,
    R: Fn(RequestId, T) + Send + Sync,
    X: Fn(RequestId, TaskError<E>) + Send + Sync,
{
    fn run(&mut self) {
        if let Stage::Ready(arg) = self.stage.take() {
            let callable = &self.recipe.callable;
            self.stage = Stage::Finished(execute(|| callable(arg)));
        }
    }

    fn complete(self: Box<Self>, id: RequestId) {
        let this = *self;
        let recipe = &this.recipe;
        match this.stage {
            Stage::Finished(outcome) => {
                report(id, outcome, Some(&recipe.on_result), Some(&recipe.on_error))
            }
            _ => stage_bug(id),
        }
    }

    fn cancel(self: Box<Self>, id: RequestId) {
        (self.recipe.on_error)(id, TaskError::Cancelled);
    }
}
