//! The request behind a collector: runs its callable on a worker and
//! sends the outcome, with its id, straight to the collector's channel: no
//! trip through a handle's result queue, no callback on the way. (A
//! ticket's request lives in its slot: see `slot`.)

use crate::request::task::{attempt, Ended, Route, Task};
use crate::request::Context;
use crate::request::{RequestId, TaskError};
use crate::ticket::slot::Outcome;
use crate::unwind;

/// An outcome on its way to a collector, with its request's id. What it
/// holds is user values, and a channel's messages are dropped with the
/// channel, wherever its last end goes: a collector dropped with outcomes
/// unread leaves them to the last sender, a request of its still running
/// on a worker. So each one's `Drop` is contained, there and anywhere.
pub(crate) struct Arrived<T, E>(Option<(RequestId, Outcome<T, E>)>);

impl<T, E> Arrived<T, E> {
    /// The id and the outcome, for the collector that takes them.
    pub(crate) fn open(mut self) -> (RequestId, Outcome<T, E>) {
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
    fn settle(&self, outcome: Outcome<T, E>) {
        // The collector was dropped: the outcome comes back and is dropped
        // here, on a worker or a sweep, contained by `Arrived`'s `Drop`.
        let _unheard = self.outcomes.send(Some(Arrived(Some((self.id, outcome)))));
    }
}

/// A collector's request with its types known; boxed as a `dyn Task`.
pub(crate) struct SinkTask<W, T, E> {
    /// The callable, until it runs or the request ends unrun.
    pub(crate) work: Option<W>,
    pub(crate) sink: Sink<T, E>,
    /// How it ended, for the worker's statistics.
    pub(crate) ended: Ended,
}

impl<W, T, E> SinkTask<W, T, E> {
    /// Ends the request unrun, unless a worker ran it already. The work
    /// goes first, before the collector hears.
    fn end_unrun(&mut self, why: TaskError<E>) {
        if let Some(work) = self.work.take() {
            // Contained here, not by the caller: a panic must not skip
            // telling the collector, which waits for every request.
            unwind::drop_contained("a cancelled request's callable", work);
            self.sink.settle(Err(why));
        }
    }
}

impl<W, T, E> Task for SinkTask<W, T, E>
where
    W: FnOnce(&Context<'_>) -> Result<T, E> + Send,
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
        let outcome: Outcome<T, E> = attempt(|| work(cx)).map_err(TaskError::from);
        self.ended = match &outcome {
            Ok(_) => Ended::Succeeded,
            Err(TaskError::Panicked(_)) => Ended::Panicked,
            Err(_) => Ended::Failed,
        };
        // Counted before the collector hears, so that whoever has the
        // outcome finds it in the pool's statistics.
        cx.count(self.ended);
        self.sink.settle(outcome);
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
