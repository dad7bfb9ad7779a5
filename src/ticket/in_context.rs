//! A ticket's request whose callable is given a [`Context`]
//! (`ThreadPool::submit_with_context`). A worker hands a context only to a
//! request that travels in a box of its own with its handle's reference
//! (where the children it puts are counted), so this request does: the box
//! holds the ticket's slot, runs the callable in it and settles the outcome
//! there, and the handle never counts the request itself.

use std::sync::Arc;

use crate::request::task::{Ended, Route, Task};
use crate::request::{Context, RequestId};
use crate::ticket::call::InContext;
use crate::ticket::cancel::Cancel;
use crate::ticket::slot::{HomeRef, Slot};
use crate::unwind;

/// The boxed request: the slot until the request runs or ends unrun.
pub(crate) struct InContextTask<W, T, E, H> {
    slot: Option<Arc<Slot<W, T, E, H>>>,
    /// How it ended, for the batch's progress (`Task::ended`).
    ended: Ended,
}

impl<W, T, E, H> InContextTask<W, T, E, H> {
    pub(crate) fn new(slot: Arc<Slot<W, T, E, H>>) -> InContextTask<W, T, E, H> {
        InContextTask {
            slot: Some(slot),
            ended: Ended::Unstarted,
        }
    }
}

impl<W, T, E, H> InContextTask<W, T, E, H>
where
    W: InContext<T, E>,
    T: Send,
    E: Send,
    H: HomeRef,
{
    /// Ends the request unrun (cancelled) unless it ran or ended already;
    /// its ticket hears `Cancelled`.
    fn end_unrun(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.cancel();
            unwind::drop_contained("an outcome whose ticket was dropped", slot);
        }
    }
}

impl<W, T, E, H> Task for InContextTask<W, T, E, H>
where
    W: InContext<T, E>,
    T: Send,
    E: Send,
    H: HomeRef,
{
    fn run(&mut self, cx: &Context<'_>) {
        let Some(slot) = self.slot.take() else {
            // Ended already (unrun): counted as never started.
            cx.count(Ended::Unstarted);
            return;
        };
        // Counted before the ticket hears, so that its holder finds it
        // counted (as a shared ticket job is).
        self.ended = slot.run_with(&|ended| cx.count(ended), |work| work.call_in(cx));
        // With its ticket dropped, this is the last reference: the outcome
        // goes with it, and its `Drop` is user code on a worker.
        unwind::drop_contained("an outcome whose ticket was dropped", slot);
    }

    fn cancel(&mut self) {
        self.end_unrun();
    }

    fn route(&self) -> Route {
        Route::Ticket
    }

    fn release(&mut self) {
        // Dropped unrun (its pool discarded it, or a put that refused it
        // was let go of): the ticket hears `Cancelled` rather than wait
        // for ever.
        self.end_unrun();
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: ticket request {id} routed to a handle");
    }

    fn ended(&self) -> Ended {
        self.ended
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
