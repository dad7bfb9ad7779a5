//! The request behind a ticket or a collector: runs its callable on a
//! worker and settles the outcome straight into where it is awaited (a
//! ticket's slot, or a collector's channel): no trip through a handle's
//! result queue, no callback on the way.

use std::sync::Arc;

use crate::request::task::{attempt, Ended, Route, Task};
use crate::request::Context;
use crate::request::{RequestId, TaskError};
use crate::ticket::slot::{Outcome, Slot};

/// Where a settled request's outcome goes, and who decides whether it
/// may still start.
pub(crate) trait Destination<T, E>: Send {
    /// For a worker about to run the request: whether it may.
    fn start(&self) -> bool;
    /// The request ran: here is its outcome.
    fn settle(&self, outcome: Outcome<T, E>);
    /// The request ends unrun with `outcome`, unless it started (or ended)
    /// already.
    fn end_unrun(&self, outcome: Outcome<T, E>);
}

impl<T: Send, E: Send> Destination<T, E> for Arc<Slot<T, E>> {
    fn start(&self) -> bool {
        Slot::start(self)
    }

    fn settle(&self, outcome: Outcome<T, E>) {
        Slot::settle(self, outcome);
    }

    fn end_unrun(&self, outcome: Outcome<T, E>) {
        Slot::end_unrun(self, outcome);
    }
}

/// A collector's channel and the request's id on it. Nobody else can end a
/// collector's request, so it always may start.
pub(crate) struct Sink<T, E> {
    pub(crate) id: RequestId,
    pub(crate) outcomes: flume::Sender<(RequestId, Outcome<T, E>)>,
}

impl<T: Send, E: Send> Destination<T, E> for Sink<T, E> {
    fn start(&self) -> bool {
        true
    }

    fn settle(&self, outcome: Outcome<T, E>) {
        // Disconnected: the collector was dropped; nobody listens.
        let _ = self.outcomes.send((self.id, outcome));
    }

    fn end_unrun(&self, outcome: Outcome<T, E>) {
        self.settle(outcome);
    }
}

/// A settled request with its types known; boxed as a `dyn Task`.
pub(crate) struct SettledTask<W, D> {
    /// The callable, until it runs or the request ends unrun.
    pub(crate) work: Option<W>,
    pub(crate) destination: D,
    /// How it ended, for the worker's statistics.
    pub(crate) ended: Ended,
}

impl<W, D> SettledTask<W, D> {
    /// Ends the request unrun, unless a worker started it or someone else
    /// ended it first. The work goes first: what it holds (an input a
    /// completion iterator waits to get back) is let go of before the
    /// destination hears.
    fn end_unrun<T, E>(&mut self, why: TaskError<E>)
    where
        D: Destination<T, E>,
    {
        if self.work.take().is_some() {
            self.destination.end_unrun(Err(why));
        }
    }
}

impl<W, T, E, D> Task for SettledTask<W, D>
where
    W: FnOnce() -> Result<T, E> + Send,
    D: Destination<T, E>,
{
    fn run(&mut self, _cx: &Context<'_>) {
        let Some(work) = self.work.take() else { return };
        if !self.destination.start() {
            // The ticket was cancelled first; it has its outcome already.
            return;
        }
        // `work` is consumed by the call, so what it captured is dropped
        // before the outcome is settled.
        let outcome: Outcome<T, E> = attempt(work).map_err(TaskError::from);
        self.ended = match &outcome {
            Ok(_) => Ended::Succeeded,
            Err(TaskError::Panicked(_)) => Ended::Panicked,
            Err(_) => Ended::Failed,
        };
        self.destination.settle(outcome);
    }

    fn cancel(&mut self) {
        self.end_unrun(TaskError::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Ticket
    }

    fn release(&mut self) {
        // Dropped unrun (its pool discarded it, or a put that refused it
        // was let go of): the destination hears `Cancelled` rather than
        // wait for ever.
        self.end_unrun(TaskError::Cancelled);
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: settled request {id} routed to a handle");
    }

    fn ended(&self) -> Ended {
        self.ended
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
