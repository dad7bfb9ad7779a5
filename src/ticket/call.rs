//! What a ticket's request runs: any closure, or a [`Call`], a callable
//! and its argument kept as two values, so that a put that was refused can
//! hand both back to the caller (`ThreadPool::try_submit`) rather than
//! drop them inside a closure nobody can open.

use std::convert::Infallible;
use std::marker::PhantomData;

use crate::unwind::Apart;

/// The work of a ticket's request, run once on a worker.
pub(crate) trait Work<T, E>: Send {
    fn call(self) -> Result<T, E>;
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

/// `callable(arg)`, not yet called. The argument is kept [`Apart`] from
/// the callable, as `WorkRequest::new` keeps it.
pub(crate) struct Call<F, A, M> {
    callable: F,
    arg: Apart<A>,
    // `fn() -> M`: the marker is no value, and leaves `Send` to `F` and `A`.
    kind: PhantomData<fn() -> M>,
}

impl<F, A, M> Call<F, A, M> {
    pub(crate) fn new(callable: F, arg: A) -> Call<F, A, M> {
        Call {
            callable,
            arg: Apart::new(arg),
            kind: PhantomData,
        }
    }

    /// The callable and its argument, uncalled.
    pub(crate) fn into_parts(self) -> (F, A) {
        (self.callable, self.arg.into_inner())
    }
}

impl<F, A, T> Work<T, Infallible> for Call<F, A, Plain>
where
    F: FnOnce(A) -> T + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, Infallible> {
        Ok((self.callable)(self.arg.into_inner()))
    }
}

impl<F, A, T, E> Work<T, E> for Call<F, A, Fallible>
where
    F: FnOnce(A) -> Result<T, E> + Send,
    A: Send,
{
    #[inline]
    fn call(self) -> Result<T, E> {
        (self.callable)(self.arg.into_inner())
    }
}
