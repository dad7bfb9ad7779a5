//! A request whose outcome nobody hears (`ThreadPool::execute`,
//! `Context::execute`): it counts as pending on its handle until it ends,
//! and it ends where it ends, on the worker that ran it or the thread that
//! cancelled it, with no trip back to the polling thread. A panic is logged
//! there and counted in the pool's statistics, so no failure is silent.

use std::convert::Infallible;

use crate::request::context::Context;
use crate::request::task::{attempt, Ended, Envelope, Failure, Route, Task, TaskBox};
use crate::request::{RequestId, WorkRequest};
use crate::unwind;

/// The work of an `execute`d request, until it runs or ends unrun.
struct InPlaceTask<F> {
    work: Option<F>,
    ended: Ended,
}

/// The request for `work`, with an automatic id.
pub(crate) fn in_place<F>(work: F) -> WorkRequest
where
    F: FnOnce(&Context<'_>) + Send + 'static,
{
    let task = Box::new(Envelope {
        id_value: RequestId::next_auto().value(),
        task: InPlaceTask {
            work: Some(work),
            ended: Ended::Unstarted,
        },
    });
    WorkRequest::from_task(TaskBox::Boxed(task))
}

impl<F> Task for InPlaceTask<F>
where
    F: FnOnce(&Context<'_>) + Send,
{
    fn run(&mut self, cx: &Context<'_>) {
        let Some(work) = self.work.take() else {
            return;
        };
        self.ended = match attempt(|| {
            work(cx);
            Ok::<(), Infallible>(())
        }) {
            Ok(()) => Ended::Succeeded,
            Err(failure) => {
                let message = match failure {
                    Failure::Panicked(message) => *message,
                    _ => String::new(),
                };
                // Nobody hears this request's outcome: the log is where a
                // panic goes (and the statistics, which count it).
                log::error!("callpool: executed request {} panicked: {message}", cx.id());
                Ended::Panicked
            }
        };
    }

    fn cancel(&mut self) {
        self.ended = Ended::Unstarted;
        if let Some(work) = self.work.take() {
            unwind::drop_contained("a cancelled request's work", work);
        }
    }

    fn route(&self) -> Route {
        Route::InPlace
    }

    fn release(&mut self) {
        unwind::drop_some("an executed request's work", self.work.take());
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: executed request {id} routed to a handle's results");
    }

    fn ended(&self) -> Ended {
        self.ended
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
