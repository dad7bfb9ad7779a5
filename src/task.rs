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
///
/// The methods take `&mut self` so that the box can carry the request's id
/// beside the task (see [`Envelope`]) and be reused from put to callback.
pub(crate) trait Task: Send {
    /// On a worker: runs the callable, catching a panic, and keeps the
    /// outcome inside. Runs at most once; a second call does nothing.
    fn run(&mut self);
    /// When the pool closes before a worker took it: drops the work and
    /// records that the request was cancelled.
    fn cancel(&mut self);
    /// On the polling thread: hands the outcome to its callback. At most once.
    fn report(&mut self, id: RequestId);
    /// Whether the request's id was chosen by the user. Kept by the task,
    /// where a spare byte of padding holds it, rather than in the envelope,
    /// where it would cost 8 bytes per request.
    fn user_chosen_id(&self) -> bool;
}

/// A request's id and its task, in one allocation. The queues carry a
/// `Box<Envelope<dyn Task>>`: 16 bytes, the same as a boxed closure.
pub(crate) struct Envelope<T: ?Sized> {
    /// The id's number; whether the user chose it, the task says.
    pub(crate) id_value: u64,
    pub(crate) task: T,
}

impl Envelope<dyn Task> {
    pub(crate) fn id(&self) -> RequestId {
        RequestId::from_parts(self.id_value, self.task.user_chosen_id())
    }
}

/// How a request's one allocation is passed around.
pub(crate) type TaskBox = Box<Envelope<dyn Task>>;

/// Where a request is in its life, inside its box. Flat (not a nested
/// `Result`) so that one tag serves all states: 16 bytes for a `u64` job.
pub(crate) enum Stage<I, T, E> {
    /// Not run yet; holds what the callable needs.
    Ready(I),
    /// Ran and returned a value, kept until the callback takes it.
    Succeeded(T),
    /// Ran and failed (or was cancelled), kept until the callback takes it.
    Failed(Failure<E>),
    /// Outcome handed on (only seen after a bug or a second report).
    Spent,
}

impl<I, T, E> Stage<I, T, E> {
    fn take(&mut self) -> Self {
        std::mem::replace(self, Stage::Spent)
    }
}

/// A [`TaskError`] as stored in the box until it is reported: the panic
/// message is boxed so that a finished request stays as small as a result.
// `Box<String>`, not `String` or `Box<str>`: one pointer keeps
// `Result<u64, Failure<Infallible>>` at 16 bytes, so the common outcome
// does not pay for the rare panic.
#[allow(clippy::box_collection)]
pub(crate) enum Failure<E> {
    Failed(E),
    Panicked(Box<String>),
    Cancelled,
}

impl<E> From<Failure<E>> for TaskError<E> {
    fn from(failure: Failure<E>) -> Self {
        match failure {
            Failure::Failed(e) => TaskError::Failed(e),
            Failure::Panicked(msg) => TaskError::Panicked(*msg),
            Failure::Cancelled => TaskError::Cancelled,
        }
    }
}

/// Runs `work`, turning a panic into [`TaskError::Panicked`] so that the
/// worker thread survives it.
fn execute<I, T, E>(work: impl FnOnce() -> Result<T, E>) -> Stage<I, T, E> {
    // AssertUnwindSafe: after a panic nothing the closure touched is used
    // again by the pool; the closure itself is gone.
    match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Stage::Succeeded(value),
        Ok(Err(e)) => Stage::Failed(Failure::Failed(e)),
        Err(payload) => Stage::Failed(Failure::Panicked(Box::new(panic_message(payload)))),
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

/// Hands a finished stage to the right callback. A request made without
/// an error callback has one that logs the error (see `crate::request`), so
/// no error is dropped silently.
// Always inlined: called once per result, and without the hint it stays
// a separate call since the task types were reworked (callgrind).
#[inline(always)]
fn report<I, T, E>(
    id: RequestId,
    stage: Stage<I, T, E>,
    on_result: impl FnOnce(RequestId, T),
    on_error: impl FnOnce(RequestId, TaskError<E>),
) {
    match stage {
        Stage::Succeeded(value) => on_result(id, value),
        Stage::Failed(failure) => on_error(id, failure.into()),
        Stage::Ready(_) | Stage::Spent => {
            log::error!("callpool bug: request {id} reported without running");
        }
    }
}

/// A request built from one `FnOnce` callable (see [`crate::Request`]).
/// Whether the user chose its id is in its type (`USER_ID`), not in a
/// field: a flag byte would cost 8 bytes of padding per request.
pub(crate) struct OwnedTask<W, T, E, R, X, const USER_ID: bool> {
    pub(crate) stage: Stage<W, T, E>,
    /// Both callbacks, taken together when the outcome is reported. One
    /// `Option` for the pair: its tag hides in the result callback's
    /// pointer when it captures one, where two `Option`s would cost a
    /// padded tag byte.
    pub(crate) callbacks: Option<(R, X)>,
}

impl<W, T, E, R, X, const USER_ID: bool> Task for OwnedTask<W, T, E, R, X, USER_ID>
where
    W: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: Send,
    R: FnOnce(RequestId, T) + Send,
    X: FnOnce(RequestId, TaskError<E>) + Send,
{
    fn run(&mut self) {
        if let Stage::Ready(work) = self.stage.take() {
            self.stage = execute(work);
        }
    }

    fn cancel(&mut self) {
        self.stage = Stage::Failed(Failure::Cancelled);
    }

    fn report(&mut self, id: RequestId) {
        let stage = self.stage.take();
        match self.callbacks.take() {
            Some((on_result, on_error)) => report(id, stage, on_result, on_error),
            None => log::error!("callpool bug: request {id} reported twice"),
        }
    }

    fn user_chosen_id(&self) -> bool {
        USER_ID
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
    E: Send,
    F: Fn(A) -> Result<T, E> + Send + Sync,
    R: Fn(RequestId, T) + Send + Sync,
    X: Fn(RequestId, TaskError<E>) + Send + Sync,
{
    fn run(&mut self) {
        if let Stage::Ready(arg) = self.stage.take() {
            let callable = &self.recipe.callable;
            self.stage = execute(|| callable(arg));
        }
    }

    fn cancel(&mut self) {
        self.stage = Stage::Failed(Failure::Cancelled);
    }

    fn report(&mut self, id: RequestId) {
        let recipe = &self.recipe;
        report(id, self.stage.take(), &recipe.on_result, &recipe.on_error);
    }

    fn user_chosen_id(&self) -> bool {
        // `make_requests` gives every request an automatic id.
        false
    }
}
