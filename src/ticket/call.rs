//! What a ticket's request runs: any closure, or a [`Call`], a callable
//! and its argument kept as two values, so that a put that was refused can
//! hand both back to the caller (`ThreadPool::try_submit`) rather than
//! drop them inside a closure nobody can open.

use std::convert::Infallible;
use std::marker::PhantomData;

use crate::unwind;

/// The work of a ticket's request, run once on a worker.
pub(crate) trait Work<T, E>: Send {
    fn call(self) -> Result<T, E>;

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

impl<W, T, E> Work<T, E> for W
where
    W: FnOnce() -> Result<T, E> + Send,
{
    #[inline]
    fn call(self) -> Result<T, E> {
        self()
    }
}

/// How a [`Call`]'s callable returns: a plain value ([`Plain`]) or a
/// `Result` ([`Fallible`]). A marker, so that both kinds are one type with
/// the same parts to hand back.
pub(crate) struct Plain;
pub(crate) struct Fallible;

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

impl<F, A, T> Work<T, Infallible> for Call<F, A, Plain>
where
    F: FnOnce(A) -> T + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, Infallible> {
        Ok((self.callable)(self.arg))
    }

    fn drop_unrun(self) {
        drop_parts(self);
    }
}

impl<F, A, T, E> Work<T, E> for Call<F, A, Fallible>
where
    F: FnOnce(A) -> Result<T, E> + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, E> {
        (self.callable)(self.arg)
    }

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
