//! The request behind a ticket: runs its callable on a worker and settles
//! the outcome straight into the ticket's slot (no trip through a handle's
//! result queue, no callback).

use std::sync::Arc;

use crate::request::task::{attempt, Route, Task};
use crate::request::Context;
use crate::request::{RequestId, TaskError};
use crate::ticket::slot::{Outcome, Slot};

/// A ticket's request with its types known; boxed as a `dyn Task`.
pub(crate) struct TicketTask<W, T, E> {
    /// The callable, until it runs or the request ends unrun.
    pub(crate) work: Option<W>,
    pub(crate) slot: Arc<Slot<T, E>>,
}

impl<W, T, E> TicketTask<W, T, E> {
    /// Ends the request unrun, unless a worker started it or someone else
    /// ended it first. The work goes first: what it holds (an input a
    /// completion iterator waits to get back) is let go of before the
    /// ticket hears.
    fn end_unrun(&mut self, why: TaskError<E>) {
        if self.work.take().is_some() {
            self.slot.end_unrun(Err(why));
        }
    }
}

impl<W, T, E> Task for TicketTask<W, T, E>
where
    W: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: Send,
{
    fn run(&mut self, _cx: &Context<'_>) {
        let Some(work) = self.work.take() else { return };
        if !self.slot.start() {
            // The ticket was cancelled first; it has its outcome already.
            return;
        }
        // `work` is consumed by the call, so what it captured is dropped
        // before the outcome is settled.
        let outcome: Outcome<T, E> = attempt(work).map_err(TaskError::from);
        self.slot.settle(outcome);
    }

    fn cancel(&mut self) {
        self.end_unrun(TaskError::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Ticket
    }

    fn release(&mut self) {
        // Dropped unrun (its pool discarded it, or a put that refused it
        // was let go of): the ticket hears `Cancelled` rather than wait for
        // ever.
        self.end_unrun(TaskError::Cancelled);
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: ticket request {id} routed to a handle");
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
