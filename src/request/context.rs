//! [`Context`]: what a running request's callable may use to add work of
//! its own. The type lives here, beside the tasks that hand it out; what it
//! does is given by whoever runs the task ([`Spawner`]: a worker), and its
//! public `put` is built in `handle::context`, where the errors are.

use std::fmt;

use crate::request::stream::{Closed, Item};
use crate::request::{RequestId, WorkRequest};

/// Given to a callable made with
/// [`WorkRequest::with_context`](crate::WorkRequest::with_context): the
/// running request's id, and [`put`](Context::put), which puts more
/// requests on the handle the running request belongs to.
///
/// Requests put through a context count in that handle's
/// [`pending`](crate::ThreadPool::pending) from the moment they are put,
/// while their parent is still running, so a [`wait`](crate::ThreadPool::wait)
/// on that handle cannot return before them (nor before anything they put
/// in turn). Their callbacks run on the thread that polls that handle, as
/// for any request.
pub struct Context<'a> {
    pub(crate) spawner: &'a dyn Spawner,
    id: RequestId,
}

impl<'a> Context<'a> {
    pub(crate) fn new(spawner: &'a dyn Spawner, id: RequestId) -> Context<'a> {
        Context { spawner, id }
    }

    /// The id of the request whose callable is running.
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a spawner did not take a request; the request comes back.
pub(crate) enum Refusal {
    /// The pool no longer accepts requests.
    ShutDown(WorkRequest),
    /// Its user-chosen id is already pending on the handle.
    DuplicateId(WorkRequest),
}

/// Puts the requests a running callable adds, on the handle its own
/// request belongs to.
pub(crate) trait Spawner {
    fn spawn(&self, request: WorkRequest) -> Result<RequestId, Refusal>;
    /// Sends a streaming request's item back to its handle (blocking on a
    /// full bounded result queue); `Closed` if the handle is gone.
    fn emit(&self, item: Item) -> Result<(), Closed>;
}

/// A spawner for tasks run outside a worker (the models): refuses all.
#[cfg(all(test, any(loom, shuttle)))]
pub(crate) struct Detached;

#[cfg(all(test, any(loom, shuttle)))]
impl Spawner for Detached {
    fn spawn(&self, request: WorkRequest) -> Result<RequestId, Refusal> {
        Err(Refusal::ShutDown(request))
    }

    fn emit(&self, _item: Item) -> Result<(), Closed> {
        Err(Closed)
    }
}
