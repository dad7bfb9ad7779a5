//! What a ticket's request runs: any closure, or a [`Call`], a callable
//! and its argument kept as two values, so that a put that was refused can
//! hand both back to the caller (`ThreadPool::try_submit`) rather than
//! drop them inside a closure nobody can open. A call either needs nothing
//! from the worker that runs it ([`Standalone`]) or is given the running
//! request's [`Context`] ([`InContext`]).

use std::convert::Infallible;
use std::marker::PhantomData;

use crate::request::Context;
use crate::unwind;

/// The work of a ticket's request, until it runs once on a worker or ends
/// unrun; how it runs, [`Standalone`] and [`InContext`] say.
pub(crate) trait Work<T, E>: Send {
    /// Drops the work unrun (cancelled, or refused by a closing pool) with
    /// any panic of its `Drop` contained: every unrun work a slot holds
    /// leaves it through here, never through drop glue.
    fn drop_unrun(self)
    where
        Self: Sized,
    {
        unwind::drop_contained("a cancelled request's work", self);
    }
}

/// Work that needs nothing from its worker: a ticket's shared job runs it.
pub(crate) trait Standalone<T, E>: Work<T, E> {
    fn call(self) -> Result<T, E>;
}

/// Work given the running request's [`Context`], to add requests to the
/// handle it was put through: it travels in a box of its own with that
/// handle's reference (`ticket::in_context`), as a callback request does.
pub(crate) trait InContext<T, E>: Work<T, E> {
    fn call_in(self, cx: &Context<'_>) -> Result<T, E>;
}

impl<W, T, E> Work<T, E> for W where W: FnOnce() -> Result<T, E> + Send {}

impl<W, T, E> Standalone<T, E> for W
where
    W: FnOnce() -> Result<T, E> + Send,
{
    #[inline]
    fn call(self) -> Result<T, E> {
        self()
    }
}

/// How a [`Call`]'s callable returns, and whether it is given a
/// [`Context`] first: a plain value ([`Plain`], [`PlainInContext`]) or a
/// `Result` ([`Fallible`], [`FallibleInContext`]). A marker, so that all
/// kinds are one type with the same parts to hand back.
pub(crate) struct Plain;
pub(crate) struct Fallible;
pub(crate) struct PlainInContext;
pub(crate) struct FallibleInContext;

/// `callable(arg)`, not yet called. Dropped unrun, its two values are
/// dropped one at a time, each contained ([`Work::drop_unrun`]), as
/// `WorkRequest::new`'s `Apart` does for its closure: a panic dropping the
/// callable must not unwind while the argument is dropped (a second panic
/// aborts). Without an `Apart` here: its `Option` would cost a `u64`
/// argument 8 bytes, and push W1's ticket slot into a bigger malloc block
/// (`ticket::tests`).
pub(crate) struct Call<F, A, M> {
    callable: F,
    arg: A,
    // `fn() -> M`: the marker is no value, and leaves `Send` to `F` and `A`.
    kind: PhantomData<fn() -> M>,
}

impl<F, A, M> Call<F, A, M> {
    pub(crate) fn new(callable: F, arg: A) -> Call<F, A, M> {
        Call {
            callable,
            arg,
            kind: PhantomData,
        }
    }

    /// The callable and its argument, uncalled.
    pub(crate) fn into_parts(self) -> (F, A) {
        (self.callable, self.arg)
    }
}

impl<F, A, T> Standalone<T, Infallible> for Call<F, A, Plain>
where
    F: FnOnce(A) -> T + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, Infallible> {
        Ok((self.callable)(self.arg))
    }
}

impl<F, A, T, E> Standalone<T, E> for Call<F, A, Fallible>
where
    F: FnOnce(A) -> Result<T, E> + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, E> {
        (self.callable)(self.arg)
    }
}

impl<F, A, T> InContext<T, Infallible> for Call<F, A, PlainInContext>
where
    F: FnOnce(&Context<'_>, A) -> T + Send,
    A: Send,
{
    fn call_in(self, cx: &Context<'_>) -> Result<T, Infallible> {
        Ok((self.callable)(cx, self.arg))
    }
}

impl<F, A, T, E> InContext<T, E> for Call<F, A, FallibleInContext>
where
    F: FnOnce(&Context<'_>, A) -> Result<T, E> + Send,
    A: Send,
{
    fn call_in(self, cx: &Context<'_>) -> Result<T, E> {
        (self.callable)(cx, self.arg)
    }
}

/// Whatever the marker: a refused or cancelled call drops its callable,
/// then its argument, each contained.
impl<F, A, M, T, E> Work<T, E> for Call<F, A, M>
where
    F: Send,
    A: Send,
{
    fn drop_unrun(self) {
        drop_parts(self);
    }
}

/// A call's callable, then its argument, each dropped contained.
fn drop_parts<F, A, M>(call: Call<F, A, M>) {
    let (callable, arg) = call.into_parts();
    unwind::drop_contained("a cancelled request's callable", callable);
    unwind::drop_contained("a cancelled request's argument", arg);
}
