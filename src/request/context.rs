//! [`Context`]: what a running request's callable may use to add work of
//! its own. The type lives here, beside the tasks that hand it out; what it
//! does is given by whoever runs the task ([`Spawner`]: a worker), and its
//! public `put` is built in `handle::context`, where the errors are.

use std::any::Any;
use std::cell::{RefCell, RefMut};
use std::fmt;

use crate::request::ended::Ended;
use crate::request::{RequestId, WorkRequest};
use crate::unwind::Callback;

/// Given to a callable made with
/// [`WorkRequest::with_context`](crate::WorkRequest::with_context) (or
/// submitted with
/// [`ThreadPool::submit_with_context`](crate::ThreadPool::submit_with_context),
/// whose ticket takes the outcome): the running request's id, and
/// [`put`](Context::put), which puts more requests on the handle the
/// running request belongs to (for a ticket's request, the handle it was
/// submitted through).
///
/// Requests put through a context count in that handle's
/// [`pending`](crate::ThreadPool::pending) from the moment they are put,
/// while their parent is still running, so a [`wait`](crate::ThreadPool::wait)
/// on that handle cannot return before them (nor before anything they put
/// in turn). Their callbacks run on the thread that polls that handle, as
/// for any request.
///
/// A context belongs to the worker running its request (whose
/// [`worker_state`](Context::worker_state) it lends), so it is not `Sync`:
/// a `&Context` cannot go to another thread.
///
/// ```compile_fail
/// use callpool::{Context, WorkRequest};
///
/// let request = WorkRequest::with_context(|cx: &Context<'_>, n: u32| {
///     std::thread::scope(|s| { s.spawn(|| cx.id()); }); // `&Context` is not `Send`
///     n
/// }, 1);
/// # drop(request);
/// ```
pub struct Context<'a> {
    pub(crate) spawner: &'a dyn Spawner,
    id: RequestId,
}

impl<'a> Context<'a> {
    pub(crate) fn new(spawner: &'a dyn Spawner, id: RequestId) -> Context<'a> {
        Context { spawner, id }
    }

    /// The id of the request whose callable is running.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let id = pool.put_request(WorkRequest::with_context(move |cx: &Context<'_>, _: ()| {
    ///     tx.send(cx.id()).unwrap();
    /// }, ()))?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_recv()?, id);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// Counts how the running request ended (see [`Spawner::count`]).
    pub(crate) fn count(&self, ended: Ended) {
        self.spawner.count(ended);
    }

    /// The index of the worker running this request, as in its thread's
    /// name and in the start and stop hooks. A pool runs every callable on
    /// one of its workers, so this is always `Some` there.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::builder().workers(2).thread_name("crawler").build()?;
    /// let (tx, rx) = mpsc::channel();
    /// pool.put_request(WorkRequest::with_context(move |cx: &Context<'_>, _: ()| {
    ///     let index = cx.worker_index().expect("run by a worker");
    ///     let name = std::thread::current().name().map(str::to_owned);
    ///     tx.send((index, name)).unwrap();
    /// }, ()))?;
    /// pool.wait()?;
    /// let (index, name) = rx.try_recv()?;
    /// assert!(index < 2);
    /// assert_eq!(name, Some(format!("crawler-{index}")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_index(&self) -> Option<usize> {
        self.spawner.worker_index()
    }

    /// The running worker's own state, made by the pool's
    /// [`Builder::worker_state`](crate::Builder::worker_state) when the
    /// worker started: a connection, a buffer, anything a request may reuse
    /// on the same thread without a global `thread_local!`. `None` if the
    /// pool has no worker state or it is not an `S`.
    ///
    /// # Panics
    ///
    /// If the state is already borrowed: a callable holding one guard asks
    /// for another; or a callable holding a guard waits (in a
    /// [`scope`](crate::ThreadPool::scope), a [`join`](Context::join) or a
    /// ticket's [`wait`](crate::Ticket::wait)), and the request its worker
    /// runs meanwhile, on the same thread and so with the same state, asks
    /// for it. Take the guard inside each request, and drop it before
    /// waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::builder()
    ///     .workers(2)
    ///     .worker_state(|index| (index, Vec::<u8>::with_capacity(1 << 16)))   // per worker
    ///     .build()?;
    /// pool.put_request(WorkRequest::with_context(|cx: &Context<'_>, n: usize| {
    ///     let mut state = cx.worker_state::<(usize, Vec<u8>)>().expect("set by the builder");
    ///     let buffer = &mut state.1;
    ///     buffer.clear();
    ///     buffer.resize(n, 0);            // reuses the worker's allocation
    ///     buffer.len()
    /// }, 1_000).on_result(|_, len| assert_eq!(len, 1_000)))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_state<S: 'static>(&self) -> Option<RefMut<'_, S>> {
        let state = self.spawner.worker_state()?.borrow_mut();
        RefMut::filter_map(state, |state| state.downcast_mut::<S>()).ok()
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// One item a streaming request emitted, on its way to its handle: calling
/// it hands the item to the request's result callback. Dropped uncalled
/// (its handle gone), the item's and the callback's `Drop`s are contained.
pub(crate) type Item = Callback<()>;

/// The handle (or the [`Collector`](crate::Collector)) that put a
/// streaming request is gone: nobody will receive what it emits, so it may
/// as well stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the handle or collector that put this streaming request is gone")
    }
}

impl std::error::Error for Closed {}

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
    /// The running worker's own state (`Builder::worker_state`), if any.
    fn worker_state(&self) -> Option<&RefCell<Box<dyn Any>>>;
    /// The running worker's index, as in its thread's name.
    fn worker_index(&self) -> Option<usize>;
    /// Counts in the pool's statistics how a request that hands its
    /// outcome over itself (a collector's) ended, before it does.
    fn count(&self, ended: Ended);
    /// Offers the half of a join (`request::join`) to the pool's other
    /// workers, as a child is put; whether it was (refused once the pool
    /// no longer accepts requests: shutting down or closed).
    fn offer(&self, half: WorkRequest) -> bool;
    /// Takes the half a join offered, whose boxed task lives at `half`,
    /// back out of the running worker's slot if it is still there: last,
    /// or behind children its join's first half put. A half found at that
    /// address is the calling join's, unless that one was run elsewhere
    /// and dropped and a join nested in the first half (returned by now)
    /// boxed its own half there: taking that stale one back does no harm.
    fn reclaim(&self, half: *const ());
    /// The running job, the half of a join, has done its piece (or found
    /// it taken back): the worker no longer counts it as running
    /// (`Stats::running`). Called once per half's job, before its join
    /// can hear that the half is over.
    fn piece_done(&self) {}
    /// [`spawn`](Self::spawn) for a request whose outcome nobody hears
    /// (`Context::execute`), first freeing the emptied boxes of executed
    /// requests that workers handed back to the handle
    /// (`Inbox::take_spent`): one virtual call per child for both.
    fn spawn_executed(&self, request: WorkRequest) -> Result<RequestId, Refusal> {
        self.spawn(request)
    }
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

    fn worker_state(&self) -> Option<&RefCell<Box<dyn Any>>> {
        None
    }

    fn worker_index(&self) -> Option<usize> {
        None
    }

    fn count(&self, _ended: Ended) {}

    fn offer(&self, _half: WorkRequest) -> bool {
        false
    }

    fn reclaim(&self, _half: *const ()) {}
}
