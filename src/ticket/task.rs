//! The request behind a collector: runs its callable on a worker and
//! sends the outcome, with its id, straight to the collector's channel: no
//! trip through a handle's result queue, no callback on the way. A
//! streaming one sends its items there too, as they are emitted, before
//! its end. (A ticket's request lives in its slot: see `slot`.)

use std::marker::PhantomData;

use crate::request::context::Closed;
use crate::request::task::{attempt, Ended, Route, Task};
use crate::request::Context;
use crate::request::{RequestId, TaskError};
use crate::ticket::slot::Outcome;
use crate::unwind;

/// What a collector's request sends to its collector.
pub(crate) enum Piece<T, E> {
    /// The request's outcome: the request ends with it.
    End(Outcome<T, E>),
    /// An item a streaming request emitted: the request goes on.
    Item(T),
    /// A streaming request's callable returned: the request ends, with
    /// nothing to hand on.
    Done,
}

/// How a collector's request ends: what its work returns, and the
/// [`Piece`] that says so. A type parameter, not a field, so that a plain
/// request's path is what it was.
pub(crate) trait Ending<T, E>: Send + 'static {
    /// What the request's work returns on success.
    type Returns;
    /// The last piece the request sends.
    fn piece(outcome: Outcome<Self::Returns, E>) -> Piece<T, E>;
}

/// A request that ends with one outcome, its value or its error.
pub(crate) enum OneOutcome {}

impl<T, E> Ending<T, E> for OneOutcome {
    type Returns = T;

    #[inline]
    fn piece(outcome: Outcome<T, E>) -> Piece<T, E> {
        Piece::End(outcome)
    }
}

/// A streaming request: its items went before; it ends with its error, or
/// with nothing.
pub(crate) enum Streamed {}

impl<T, E> Ending<T, E> for Streamed {
    type Returns = ();

    fn piece(outcome: Outcome<(), E>) -> Piece<T, E> {
        match outcome {
            Ok(()) => Piece::Done,
            Err(err) => Piece::End(Err(err)),
        }
    }
}

/// Sends an item of streaming request `id` to its collector: `Closed` when
/// the collector is gone (the item comes back and is dropped here,
/// contained by `Arrived`'s `Drop`).
pub(crate) fn send_item<T, E>(
    outcomes: &flume::Sender<Option<Arrived<T, E>>>,
    id: RequestId,
    item: T,
) -> Result<(), Closed> {
    outcomes
        .send(Some(Arrived(Some((id, Piece::Item(item))))))
        .map_err(|_| Closed)
}

/// An outcome on its way to a collector, with its request's id. What it
/// holds is user values, and a channel's messages are dropped with the
/// channel, wherever its last end goes: a collector dropped with outcomes
/// unread leaves them to the last sender, a request of its still running
/// on a worker. So each one's `Drop` is contained, there and anywhere.
pub(crate) struct Arrived<T, E>(Option<(RequestId, Piece<T, E>)>);

impl<T, E> Arrived<T, E> {
    /// The id and what came, for the collector that takes them.
    pub(crate) fn open(mut self) -> (RequestId, Piece<T, E>) {
        // `None` only once opened (or dropped): `settle` makes it `Some`.
        self.0.take().expect("an `Arrived` is opened once")
    }
}

impl<T, E> Drop for Arrived<T, E> {
    fn drop(&mut self) {
        unwind::drop_some("an outcome whose collector was dropped", self.0.take());
    }
}

/// A collector's channel and the request's id on it. Nobody else can end a
/// collector's request, so it always may start.
pub(crate) struct Sink<T, E> {
    pub(crate) id: RequestId,
    /// `None` on it is a lookout's nudge (`crate::lookout::recv`).
    pub(crate) outcomes: flume::Sender<Option<Arrived<T, E>>>,
}

impl<T, E> Sink<T, E> {
    fn settle(&self, last: Piece<T, E>) {
        // The collector was dropped: the outcome comes back and is dropped
        // here, on a worker or a sweep, contained by `Arrived`'s `Drop`.
        let _unheard = self.outcomes.send(Some(Arrived(Some((self.id, last)))));
    }
}

/// A collector's request with its types known; boxed as a `dyn Task`.
/// `K` says how it ends ([`Ending`]).
pub(crate) struct SinkTask<W, T, E, K> {
    /// The callable, until it runs or the request ends unrun.
    pub(crate) work: Option<W>,
    pub(crate) sink: Sink<T, E>,
    /// How it ended, for the worker's statistics.
    pub(crate) ended: Ended,
    pub(crate) ending: PhantomData<fn() -> K>,
}

impl<W, T, E, K> SinkTask<W, T, E, K> {
    /// Ends the request unrun, unless a worker ran it already. The work
    /// goes first, before the collector hears.
    fn end_unrun(&mut self, why: TaskError<E>) {
        if let Some(work) = self.work.take() {
            // Contained here, not by the caller: a panic must not skip
            // telling the collector, which waits for every request.
            unwind::drop_contained("a cancelled request's callable", work);
            self.sink.settle(Piece::End(Err(why)));
        }
    }
}

impl<W, T, E, K> Task for SinkTask<W, T, E, K>
where
    K: Ending<T, E>,
    W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send,
    T: Send,
    E: Send,
{
    fn run(&mut self, cx: &Context<'_>) {
        let Some(work) = self.work.take() else {
            // Ended already (unrun): counted as never started.
            cx.count(self.ended);
            return;
        };
        // `work` is consumed by the call, so what it captured is dropped
        // before the outcome is settled.
        let outcome: Outcome<K::Returns, E> = attempt(|| work(cx)).map_err(TaskError::from);
        self.ended = match &outcome {
            Ok(_) => Ended::Succeeded,
            Err(TaskError::Panicked(_)) => Ended::Panicked,
            Err(_) => Ended::Failed,
        };
        // Counted before the collector hears, so that whoever has the
        // outcome finds it in the pool's statistics.
        cx.count(self.ended);
        self.sink.settle(K::piece(outcome));
    }

    fn cancel(&mut self) {
        self.end_unrun(TaskError::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Ticket
    }

    fn release(&mut self) {
        // Dropped unrun (its pool discarded it, or a put that refused it
        // was let go of): the collector hears `Cancelled` rather than wait
        // for ever.
        self.end_unrun(TaskError::Cancelled);
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: settled request {id} routed to a handle");
    }

    fn disown(&mut self) {
        unwind::drop_some("a refused request's callable", self.work.take());
    }

    fn ended(&self) -> Ended {
        self.ended
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
