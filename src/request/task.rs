//! The type-erased unit of work that travels from the submitting thread to a
//! worker and back: run on the worker, reported on the polling thread.
//!
//! One allocation carries a request through its whole life: the worker runs
//! the callable *in place* and stores the outcome in the same box, which then
//! goes back to the owner's result queue. Whatever user value the box still
//! holds when it is dropped (work never run, a result nobody polled) is
//! dropped under [`crate::unwind::contain`], wherever that happens.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crate::request::context::{Context, Spawner};
pub(crate) use crate::request::ended::Ended;
use crate::request::id::RequestId;
use crate::request::task_error::TaskError;
use crate::request::timing::{self, Clock, Timing};
use crate::unwind;

/// Where a request's outcome goes once it has one (docs/design.md, "A
/// request's life").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    /// Back to the handle that put it, whose callbacks take it on the
    /// polling thread: the request is counted in the handle's `pending`
    /// from its put until its outcome is handled.
    Inbox,
    /// Nowhere: counted in the handle's `pending` from its put, as an
    /// `Inbox` request is, until it ends, and it ends where it ends (on
    /// the worker that ran it, or the thread that cancelled it), with no
    /// outcome to hand on (`request::in_place`).
    InPlace,
    /// Straight to a ticket: the task settles its outcome itself, on
    /// whichever thread ends it; the handle never counts it.
    Ticket,
    /// To the running request that offered it: the half of a
    /// `Context::join` (`request::join`), a piece of that request rather
    /// than a request, counted nowhere, never cancelled.
    Parent,
}

impl Route {
    /// Whether a request of this route counts as pending on its handle
    /// until it ends.
    #[inline]
    pub(crate) fn counted(self) -> bool {
        matches!(self, Route::Inbox | Route::InPlace)
    }
}

/// A request with its types erased, as the queues carry it.
///
/// The methods take `&mut self` so that the box can carry the request's id
/// beside the task (see [`Envelope`]) and be reused from put to callback.
pub(crate) trait Task: Send {
    /// On a worker: runs the callable, catching a panic, and keeps the
    /// outcome inside; or, if the request may no longer start (its deadline
    /// passed, its ticket cancelled it), ends it without running. Runs at
    /// most once; a second call does nothing. `cx` is what the callable
    /// may add work through.
    fn run(&mut self, cx: &Context<'_>);
    /// When the request is taken out of the queue before a worker took it
    /// (the pool closed, or the user cancelled it): drops the work and
    /// records that the request was cancelled.
    fn cancel(&mut self);
    /// Where the outcome goes; fixed by the task's type.
    fn route(&self) -> Route;
    /// Drops every user value still inside (work, outcome, callbacks),
    /// each on its own with [`unwind::drop_contained`], leaving the task
    /// empty: called by the envelope's `Drop` (under [`unwind::contain`]
    /// too, for what a task's own code might do).
    fn release(&mut self);
    /// On the polling thread: hands the outcome to its callback. At most once.
    fn report(&mut self, id: RequestId);
    /// How the request ended, read before its outcome is reported (for a
    /// batch's progress).
    fn ended(&self) -> Ended;
    /// Whether the request's id was chosen by the user. The task's type
    /// says it, so the envelope carries no flag for it.
    fn user_chosen_id(&self) -> bool;
    /// Lets go of the work unrun, telling nobody: for a request that was
    /// never put and whose owner took what it needed back out of it (a
    /// collector's refused `try_put`, whose callable and argument went
    /// back to the caller), so that dropping it sends no outcome that
    /// nobody waits for. Only a task that would send one on its own when
    /// dropped has anything to do.
    fn disown(&mut self) {}
}

/// A request's id and its task, in one allocation. The queues carry it as
/// a `Box<Envelope<dyn Task>>` ([`BoxedTask`]): 16 bytes, the same as a
/// boxed closure.
pub(crate) struct Envelope<T: ?Sized + Task> {
    /// The id's number; whether the user chose it, the task says.
    pub(crate) id_value: u64,
    pub(crate) task: T,
}

impl<T: ?Sized + Task> Drop for Envelope<T> {
    fn drop(&mut self) {
        // A user value's `Drop` may panic; wherever the box is let go of (a
        // worker, a sweep, a handle's queue), that must not unwind further.
        let task = &mut self.task;
        unwind::contain("a request's work, result or callbacks", || task.release());
    }
}

impl Envelope<dyn Task> {
    pub(crate) fn id(&self) -> RequestId {
        RequestId::from_parts(self.id_value, self.task.user_chosen_id())
    }

    /// On a worker: runs the request in place (see [`Task::run`]); what
    /// its callable adds goes to `spawner`.
    pub(crate) fn run(&mut self, spawner: &dyn Spawner) {
        let cx = Context::new(spawner, self.id());
        self.task.run(&cx);
    }

    /// On the polling thread: hands the outcome to its callback. `id` is
    /// [`id`](Self::id), which the caller has read already (a virtual call
    /// less per result).
    pub(crate) fn report(&mut self, id: RequestId) {
        debug_assert_eq!(id, self.id());
        self.task.report(id);
    }

    /// Marks the request cancelled; its work, dropped here, may panic.
    pub(crate) fn cancel(&mut self) {
        let task = &mut self.task;
        unwind::contain("a cancelled request's work", || task.cancel());
    }

    /// Whether the outcome goes back through the handle (and the request
    /// counts as pending there) or to a ticket.
    pub(crate) fn route(&self) -> Route {
        self.task.route()
    }

    pub(crate) fn ended(&self) -> Ended {
        self.task.ended()
    }
}

impl<I, T, E> Stage<I, T, E> {
    fn ended(&self) -> Ended {
        match self {
            Stage::Succeeded(_) => Ended::Succeeded,
            Stage::Failed(Failure::Cancelled | Failure::Expired) => Ended::Unstarted,
            Stage::Failed(Failure::Panicked(_)) => Ended::Panicked,
            Stage::Failed(Failure::Failed(_)) => Ended::Failed,
            // Not ended (only after a bug): counted with those never started.
            Stage::Ready(_) | Stage::Spent => Ended::Unstarted,
        }
    }
}

/// A request in a box of its own, as it travels to a worker and back to
/// its handle's result queue.
pub(crate) type BoxedTask = Box<Envelope<dyn Task>>;

/// A request as the queues carry it: in a box of its own, or shared with
/// the ticket that awaits its outcome (one allocation for both ends).
pub(crate) enum TaskBox {
    Boxed(BoxedTask),
    Shared(SharedJob),
}

impl<X: Task + 'static> From<Box<Envelope<X>>> for TaskBox {
    fn from(task: Box<Envelope<X>>) -> TaskBox {
        TaskBox::Boxed(task)
    }
}

impl TaskBox {
    #[inline]
    pub(crate) fn id(&self) -> RequestId {
        match self {
            TaskBox::Boxed(task) => task.id(),
            TaskBox::Shared(job) => job.id(),
        }
    }

    /// Runs the request in place (see [`Task::run`]); what its callable
    /// adds goes to `spawner`. How it ended. (The models run a request
    /// this way; a worker runs its `Job`.)
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn run(&mut self, spawner: &dyn Spawner) -> Ended {
        match self {
            TaskBox::Boxed(task) => {
                task.run(spawner);
                task.ended()
            }
            TaskBox::Shared(job) => job.run(&|_| {}),
        }
    }

    /// Marks the request cancelled; its work, dropped here, may panic.
    /// (For the models; the pool cancels a `Job`.)
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn cancel(&mut self) {
        match self {
            TaskBox::Boxed(task) => task.cancel(),
            TaskBox::Shared(job) => job.cancel(),
        }
    }
}

/// A request that lives in one allocation with the ticket awaiting its
/// outcome, so the queue and the ticket share it: the callable, its
/// argument and the outcome's place together. Its methods take `&self`;
/// the request itself decides, under its own lock, who may end it.
pub(crate) trait SharedRequest: Send + Sync {
    /// The number of its (automatic) id.
    fn id_value(&self) -> u64;
    /// On a worker: runs the callable, catching a panic, and settles the
    /// outcome, unless the request was ended first; how it ended. `count`
    /// hears how it ended just before the outcome is settled, so that a
    /// holder who has the outcome finds it in the pool's statistics.
    fn run(&self, count: &dyn Fn(Ended)) -> Ended;
    /// Ends the request unrun as cancelled, unless it started or ended
    /// already; whether it did. A panic dropping the callable is
    /// contained.
    fn cancel(&self) -> bool;
}

/// The queue's reference to a [`SharedRequest`]: 16 bytes, so that a
/// queued job stays 24 bytes whichever kind it is (see `Job`). Dropped
/// before a worker ran it or a sweep cancelled it (its pool discarded it,
/// a refused put's error was dropped), it cancels the request, so its
/// ticket never waits for a request that no longer exists.
pub(crate) struct SharedJob(
    /// `None` once the request was run or cancelled through this job: its
    /// drop then has nothing left to do (no lock taken per request).
    Option<Arc<dyn SharedRequest>>,
);

impl SharedJob {
    pub(crate) fn new(task: Arc<dyn SharedRequest>) -> SharedJob {
        SharedJob(Some(task))
    }

    /// Its id; a job that has run or been cancelled keeps none, and says 0
    /// (it is never asked then).
    #[inline]
    pub(crate) fn id(&self) -> RequestId {
        let value = self.0.as_ref().map_or(0, |task| task.id_value());
        RequestId::from_parts(value, false)
    }

    /// Runs the request (see [`SharedRequest::run`]).
    pub(crate) fn run(&mut self, count: &dyn Fn(Ended)) -> Ended {
        let Some(task) = self.0.take() else {
            count(Ended::Unstarted);
            return Ended::Unstarted;
        };
        let ended = task.run(count);
        // With its ticket dropped, this is the last reference: the outcome
        // goes with it, and its `Drop` is user code on a worker.
        unwind::drop_contained("an outcome whose ticket was dropped", task);
        ended
    }

    pub(crate) fn cancel(&mut self) {
        if let Some(task) = self.0.take() {
            task.cancel();
        }
    }
}

impl Drop for SharedJob {
    fn drop(&mut self) {
        self.cancel();
    }
}

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
    Expired,
}

impl<E> From<Failure<E>> for TaskError<E> {
    fn from(failure: Failure<E>) -> Self {
        match failure {
            Failure::Failed(e) => TaskError::Failed(e),
            Failure::Panicked(msg) => TaskError::Panicked(*msg),
            Failure::Cancelled => TaskError::Cancelled,
            Failure::Expired => TaskError::Expired,
        }
    }
}

/// What a request carries beyond its work and callbacks: a deadline, a
/// timing record. A request with neither has `()`, which takes no space in
/// its box and costs no clock read.
pub(crate) trait Extras: Send {
    /// Whether its deadline has passed (read once, as a worker takes it).
    fn passed(&self) -> bool;
    /// A worker starts running it; `worker` says which (asked only by a
    /// record that keeps it: a virtual call the others skip).
    #[inline(always)]
    fn begin(&mut self, _worker: impl FnOnce() -> Option<usize>) {}
    /// It has run.
    #[inline(always)]
    fn end(&mut self) {}
    /// It stopped waiting without running: expired as a worker took it,
    /// or cancelled.
    #[inline(always)]
    fn end_unstarted(&mut self) {}
    /// Its timing record, if it keeps one.
    #[inline(always)]
    fn timing(&self) -> Option<Timing> {
        None
    }
}

impl Extras for () {
    #[inline(always)]
    fn passed(&self) -> bool {
        false
    }
}

impl Extras for Instant {
    fn passed(&self) -> bool {
        Instant::now() >= *self
    }
}

/// A timed request: its clock, and its deadline if it has one.
pub(crate) struct Timed {
    pub(crate) clock: Clock,
    pub(crate) deadline: Option<Instant>,
}

impl Extras for Timed {
    fn passed(&self) -> bool {
        self.deadline.is_some_and(|at| Instant::now() >= at)
    }

    fn begin(&mut self, worker: impl FnOnce() -> Option<usize>) {
        self.clock.begin(worker());
    }

    fn end(&mut self) {
        self.clock.end();
    }

    fn end_unstarted(&mut self) {
        self.clock.end_unstarted();
    }

    fn timing(&self) -> Option<Timing> {
        Some(self.clock.timing())
    }
}

/// Runs `work`, turning a panic into [`TaskError::Panicked`] so that the
/// worker thread survives it.
fn execute<I, T, E>(work: impl FnOnce() -> Result<T, E>) -> Stage<I, T, E> {
    match attempt(work) {
        Ok(value) => Stage::Succeeded(value),
        Err(failure) => Stage::Failed(failure),
    }
}

/// Runs `work`, turning a panic into [`Failure::Panicked`].
pub(crate) fn attempt<T, E>(work: impl FnOnce() -> Result<T, E>) -> Result<T, Failure<E>> {
    // AssertUnwindSafe: after a panic nothing the closure touched is used
    // again by the pool; the closure itself is gone.
    match panic::catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::Failed(e)),
        Err(payload) => Err(Failure::Panicked(Box::new(unwind::into_message(payload)))),
    }
}

/// Hands a finished stage to the right callback. A request made without
/// an error callback has one that logs the error (see `crate::request`), so
/// no error is dropped silently.
///
/// The callback not called is dropped first, contained: a panic of the
/// one called unwinds through this frame, and the other's `Drop`, if it
/// panicked too while that unwinds, would abort the process.
// Always inlined: called once per result (docs/performance.md, "Profiles").
#[inline(always)]
fn report<I, T, E>(
    id: RequestId,
    stage: Stage<I, T, E>,
    on_result: impl FnOnce(RequestId, T),
    on_error: impl FnOnce(RequestId, TaskError<E>),
) {
    match stage {
        Stage::Succeeded(value) => {
            unwind::drop_contained("an error callback, not called", on_error);
            on_result(id, value);
        }
        Stage::Failed(failure) => {
            unwind::drop_contained("a result callback, not called", on_result);
            on_error(id, failure.into());
        }
        Stage::Ready(_) | Stage::Spent => {
            log::error!("callpool bug: request {id} reported without running");
            unwind::drop_contained("a result callback, not called", on_result);
            unwind::drop_contained("an error callback, not called", on_error);
        }
    }
}

/// A request built from one `FnOnce` callable (see [`crate::Request`]).
/// Whether the user chose its id is in its type (`USER_ID`), not in a
/// field: a flag byte would cost 8 bytes of padding per request. So is
/// what it carries besides (`D`: `()`, a deadline `Instant`, or `Timed`).
pub(crate) struct OwnedTask<W, T, E, R, X, D, const USER_ID: bool> {
    pub(crate) stage: Stage<W, T, E>,
    /// Its deadline and timing record, if any (see [`Extras`]).
    pub(crate) extras: D,
    /// Both callbacks, taken together when the outcome is reported. One
    /// `Option` for the pair: its tag hides in the result callback's
    /// pointer when it captures one, where two `Option`s would cost a
    /// padded tag byte.
    pub(crate) callbacks: Option<(R, X)>,
}

impl<W, T, E, R, X, D, const USER_ID: bool> Task for OwnedTask<W, T, E, R, X, D, USER_ID>
where
    W: FnOnce(&Context<'_>) -> Result<T, E> + Send,
    T: Send,
    E: Send,
    R: FnOnce(RequestId, T) + Send,
    X: FnOnce(RequestId, TaskError<E>) + Send,
    D: Extras,
{
    fn run(&mut self, cx: &Context<'_>) {
        if let Stage::Ready(work) = self.stage.take() {
            self.stage = if self.extras.passed() {
                self.extras.end_unstarted();
                // User code on the worker, outside `execute`: contained, as
                // a cancelled request's is, or a panic there would end the
                // worker and lose the outcome.
                unwind::drop_contained("an expired request's work", work);
                Stage::Failed(Failure::Expired)
            } else {
                self.extras.begin(|| cx.worker_index());
                let stage = execute(|| work(cx));
                self.extras.end();
                stage
            };
        }
    }

    fn cancel(&mut self) {
        self.extras.end_unstarted();
        self.stage = Stage::Failed(Failure::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Inbox
    }

    fn release(&mut self) {
        // One user value at a time (see `unwind::drop_contained`); a
        // reported request holds none (a look each, no containment: this
        // runs for every request on the polling thread).
        if !matches!(self.stage, Stage::Spent) {
            unwind::drop_contained("a request's work or outcome", self.stage.take());
        }
        if let Some((on_result, on_error)) = self.callbacks.take() {
            unwind::drop_contained("a request's result callback", on_result);
            unwind::drop_contained("a request's error callback", on_error);
        }
    }

    fn ended(&self) -> Ended {
        self.stage.ended()
    }

    fn report(&mut self, id: RequestId) {
        let stage = self.stage.take();
        match self.callbacks.take() {
            Some((on_result, on_error)) => match self.extras.timing() {
                None => report(id, stage, on_result, on_error),
                Some(t) => timing::reporting(Some(t), || report(id, stage, on_result, on_error)),
            },
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
    /// `None` once released: the last request of a batch to go drops the
    /// shared callable and callbacks, which may panic.
    pub(crate) recipe: Option<Arc<Recipe<F, R, X>>>,
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
    fn run(&mut self, _cx: &Context<'_>) {
        if let (Stage::Ready(arg), Some(recipe)) = (self.stage.take(), &self.recipe) {
            let callable = &recipe.callable;
            self.stage = execute(|| callable(arg));
        }
    }

    fn cancel(&mut self) {
        self.stage = Stage::Failed(Failure::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Inbox
    }

    fn release(&mut self) {
        // One user value at a time (see `unwind::drop_contained`).
        if !matches!(self.stage, Stage::Spent) {
            unwind::drop_contained("a request's input or outcome", self.stage.take());
        }
        unwind::drop_some("a batch's callable and callbacks", self.recipe.take());
    }

    fn ended(&self) -> Ended {
        self.stage.ended()
    }

    fn report(&mut self, id: RequestId) {
        let stage = self.stage.take();
        match &self.recipe {
            Some(recipe) => report(id, stage, &recipe.on_result, &recipe.on_error),
            None => log::error!("callpool bug: request {id} reported after release"),
        }
    }

    fn user_chosen_id(&self) -> bool {
        // `make_requests` gives every request an automatic id.
        false
    }
}
