//! Tickets: a request whose outcome goes to a value the submitter holds
//! ([`Ticket`]) instead of to callbacks, and [`as_completed`], which hands
//! a set of tickets' outcomes back in the order they finish.
//!
//! `slot` holds a ticket's request and is where its outcome waits, `call`
//! what that request runs, `in_context` the box that carries a request
//! whose callable is given a context; `task` is a collector's request,
//! whose outcome goes to a channel instead.

mod call;
mod cancel;
mod completed;
mod in_context;
mod slot;
mod task;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::PutError;
use crate::lookout::Home;
use crate::request::task::{Ended, Envelope, SharedJob, TaskBox};
use crate::request::{RequestId, TaskError};

use call::Work;
pub(crate) use call::{
    Call, Fallible, FallibleInContext, InContext, Plain, PlainInContext, Standalone,
};
pub use cancel::CancelHandle;
pub use completed::{as_completed, AsCompleted};
use in_context::InContextTask;
pub(crate) use slot::Outcome;
use slot::{Claim, Slot};
pub(crate) use slot::{Listener, Tell};
pub(crate) use task::{send_item, Arrived, Ending, OneOutcome, Piece, Streamed};
use task::{Sink, SinkTask};

/// Only a ticket takes its outcome, and every way but one consumes the
/// ticket as it does: this is the one, a future polled again after `Ready`.
const TAKEN: &str = "callpool: the ticket's outcome was already taken (polled after Ready)";

/// A claim on the outcome of one request put with
/// [`ThreadPool::submit`](crate::ThreadPool::submit) (or
/// [`submit_fallible`](crate::ThreadPool::submit_fallible), their
/// non-blocking [`try_submit`](crate::ThreadPool::try_submit) and waiting
/// [`submit_timeout`](crate::ThreadPool::submit_timeout) forms,
/// [`submit_with_context`](crate::ThreadPool::submit_with_context) for a
/// callable given a [`Context`](crate::Context) (with the same forms:
/// [`try_submit_with_context`](crate::ThreadPool::try_submit_with_context),
/// ...), or
/// [`submit_command`](crate::ThreadPool::submit_command) for an external
/// program).
///
/// The worker leaves the outcome in the ticket itself: no `poll` or `wait`
/// on the pool handle is needed for it, and no callback runs. Take it by
/// blocking ([`wait`](Self::wait), [`wait_timeout`](Self::wait_timeout)),
/// without blocking ([`try_result`](Self::try_result)), or by `.await`ing
/// the ticket: it is a [`Future`] that any executor can drive (callpool
/// depends on no runtime; the worker wakes the task's [`Waker`](std::task::Waker)).
/// It is `Unpin`, so it can be polled through `&mut ticket`: a timeout
/// around `&mut ticket` (tokio's `timeout`, a `select!`) leaves the
/// ticket with you when time runs out, to cancel or await again.
///
/// The outcome is `Ok(value)`, or a [`TaskError`]: `Failed` (a fallible
/// callable's `Err`), `Panicked` with the panic's message, or `Cancelled`
/// (by [`cancel`](Self::cancel), or because the pool closed or discarded
/// the request before a worker took it).
///
/// **Dropping a ticket does not cancel its request**: the request still
/// runs, and its outcome is dropped (a failure or panic too, unlogged).
/// That holds for a ticket dropped inside a future (an aborted async task,
/// a `select!` branch not taken): give the task a guard that calls
/// [`CancelHandle::cancel`] in its `Drop` when it must. Work handed to a pool usually has
/// effects of its own (a file written, a message sent), and a drop that
/// silently undid it would be a surprise that no compiler warning points
/// at; call [`cancel`](Self::cancel) to ask for it.
///
/// # Examples
///
/// ```
/// use callpool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let ticket = pool.submit(|n: u64| n * n, 7)?;
/// assert_eq!(ticket.wait(), Ok(49));
/// // Nothing was counted on the handle: tickets are not its results.
/// assert_eq!(pool.pending(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// As a future, from any executor:
///
/// ```
/// use callpool::ThreadPool;
///
/// let pool = ThreadPool::new(2);
/// let ticket = pool.submit(|s: &'static str| s.len(), "four")?;
/// let n = futures::executor::block_on(async { ticket.await })?;
/// assert_eq!(n, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a ticket does not cancel its request; its outcome is dropped"]
pub struct Ticket<T, E = Infallible> {
    /// The request's slot, shared with the queue until a worker runs it.
    slot: Arc<dyn Claim<T, E>>,
}

impl<T, E> Ticket<T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// A ticket and the request that fills it: `work` runs on a worker.
    /// One allocation holds both: the queue's job and the ticket point to
    /// the same slot. `home`: the handle it is put through, where a thread
    /// blocked on the ticket must look out for stuck workers
    /// (`ThreadPool::home`); `None` leaves the slot as small as before.
    pub(crate) fn with_request<W>(work: W, home: Option<Arc<dyn Home>>) -> (Ticket<T, E>, TaskBox)
    where
        W: Standalone<T, E> + 'static,
    {
        let id_value = RequestId::next_auto().value();
        match home {
            None => Self::in_slot(Slot::new(id_value, work, ())),
            Some(home) => Self::in_slot(Slot::new(id_value, work, home)),
        }
    }

    /// [`with_request`](Self::with_request) for work given the running
    /// request's context: the request goes in a box of its own
    /// (`in_context`), which the put pairs with its handle's reference.
    pub(crate) fn in_context<W>(work: W, home: Option<Arc<dyn Home>>) -> (Ticket<T, E>, TaskBox)
    where
        W: InContext<T, E> + 'static,
    {
        let id_value = RequestId::next_auto().value();
        match home {
            None => Self::boxed(Slot::new(id_value, work, ())),
            Some(home) => Self::boxed(Slot::new(id_value, work, home)),
        }
    }

    fn boxed<W, H>(slot: Slot<W, T, E, H>) -> (Ticket<T, E>, TaskBox)
    where
        W: InContext<T, E> + 'static,
        H: slot::HomeRef + 'static,
    {
        let slot = Arc::new(slot);
        let task = Self::boxed_task(&slot);
        (Ticket { slot }, task)
    }

    /// The box of its own that carries a request given a context.
    fn boxed_task<W, H>(slot: &Arc<Slot<W, T, E, H>>) -> TaskBox
    where
        W: InContext<T, E> + 'static,
        H: slot::HomeRef + 'static,
    {
        TaskBox::from(Box::new(Envelope {
            id_value: slot.id_value(),
            task: InContextTask::new(Arc::clone(slot)),
        }))
    }

    /// The shared job that carries a request run alone.
    fn shared_task<W, H>(slot: &Arc<Slot<W, T, E, H>>) -> TaskBox
    where
        W: Standalone<T, E> + 'static,
        H: slot::HomeRef + 'static,
    {
        TaskBox::Shared(SharedJob::new(Arc::clone(slot) as _))
    }

    fn in_slot<W, H>(slot: Slot<W, T, E, H>) -> (Ticket<T, E>, TaskBox)
    where
        W: Standalone<T, E> + 'static,
        H: slot::HomeRef + 'static,
    {
        let slot = Arc::new(slot);
        let task = Self::shared_task(&slot);
        (Ticket { slot }, task)
    }

    /// [`with_request`](Self::with_request), handing the request to `put`:
    /// the ticket if it was put, or, if `put` refused it, its refusal and
    /// `work` back, unrun. The refusal's request is left empty: nothing in
    /// it runs or is told any more.
    pub(crate) fn put_or_take_back<W>(
        work: W,
        home: Option<Arc<dyn Home>>,
        put: impl FnOnce(TaskBox) -> Result<RequestId, PutError>,
    ) -> Result<Ticket<T, E>, (PutError, W)>
    where
        W: Standalone<T, E> + 'static,
    {
        let id_value = RequestId::next_auto().value();
        match home {
            None => Self::put_slot(Slot::new(id_value, work, ()), Self::shared_task, put),
            Some(home) => Self::put_slot(Slot::new(id_value, work, home), Self::shared_task, put),
        }
    }

    /// [`put_or_take_back`](Self::put_or_take_back) for work given the
    /// running request's context, in a box of its own as
    /// [`in_context`](Self::in_context) makes it.
    pub(crate) fn put_in_context_or_take_back<W>(
        work: W,
        home: Option<Arc<dyn Home>>,
        put: impl FnOnce(TaskBox) -> Result<RequestId, PutError>,
    ) -> Result<Ticket<T, E>, (PutError, W)>
    where
        W: InContext<T, E> + 'static,
    {
        let id_value = RequestId::next_auto().value();
        match home {
            None => Self::put_slot(Slot::new(id_value, work, ()), Self::boxed_task, put),
            Some(home) => Self::put_slot(Slot::new(id_value, work, home), Self::boxed_task, put),
        }
    }

    /// The typed slot is kept until the put has answered, so that a
    /// refused request's work can come out of it again (the refused
    /// request, shared job or box, then finds nothing left to cancel).
    fn put_slot<W, H>(
        slot: Slot<W, T, E, H>,
        task: impl FnOnce(&Arc<Slot<W, T, E, H>>) -> TaskBox,
        put: impl FnOnce(TaskBox) -> Result<RequestId, PutError>,
    ) -> Result<Ticket<T, E>, (PutError, W)>
    where
        W: Work<T, E> + 'static,
        H: slot::HomeRef + 'static,
    {
        let slot = Arc::new(slot);
        match put(task(&slot)) {
            Ok(_) => Ok(Ticket { slot }),
            Err(refused) => match slot.take_back() {
                Some(work) => Err((refused, work)),
                None => unreachable!("a refused request reached a worker"),
            },
        }
    }
}

/// A request whose outcome goes, with its id, to `outcomes` (a collector's
/// channel) instead of to a ticket or callbacks. The models' spelling of
/// [`sink_request_ending`]`::<OneOutcome, ..>`, which the collector calls.
#[cfg(all(test, any(loom, shuttle)))]
pub(crate) fn sink_request<W, T, E>(
    work: W,
    outcomes: &flume::Sender<Option<Arrived<T, E>>>,
) -> (RequestId, TaskBox)
where
    W: FnOnce(&crate::request::Context<'_>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    sink_request_ending::<OneOutcome, W, T, E>(work, outcomes)
}

/// A request whose outcome goes, with its id, to `outcomes` (a collector's
/// channel) instead of to a ticket or callbacks, and that ends as `K`
/// says: one outcome, or a stream's end after the items its work sent
/// ([`send_item`]).
pub(crate) fn sink_request_ending<K, W, T, E>(
    work: W,
    outcomes: &flume::Sender<Option<Arrived<T, E>>>,
) -> (RequestId, TaskBox)
where
    K: Ending<T, E>,
    W: FnOnce(&crate::request::Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let id = RequestId::next_auto();
    let task = Box::new(Envelope {
        id_value: id.value(),
        task: SinkTask {
            work: Some(work),
            sink: Sink {
                id,
                outcomes: outcomes.clone(),
            },
            ended: Ended::Unstarted,
            ending: std::marker::PhantomData::<fn() -> K>,
        },
    });
    (id, TaskBox::from(task))
}

impl<T, E> Ticket<T, E> {
    /// The id of the ticket's request (an automatic id).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(1);
    /// let (a, b) = (pool.submit(|n: u8| n, 1)?, pool.submit(|n: u8| n, 2)?);
    /// assert!(!a.id().is_user_chosen());
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.cancel_handle().id(), a.id());
    /// assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> RequestId {
        self.slot.id()
    }

    /// A handle that cancels this ticket's request from any thread, while
    /// the ticket is waited on elsewhere: see [`CancelHandle`]. As many as
    /// wanted; each holds the request weakly.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(0);                 // nothing will take it
    /// let ticket = pool.submit(|n: u32| n + 1, 1)?;
    /// let (first, second) = (ticket.cancel_handle(), ticket.cancel_handle());
    /// assert!(first.cancel());
    /// assert!(!second.cancel());                     // one cancel is enough
    /// assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(Arc::clone(&self.slot).canceller(), self.id())
    }

    /// The handle it was put through if a thread blocked on the ticket
    /// must look out for it, for one that blocks other than through `wait`
    /// (`as_completed`).
    pub(crate) fn home(&self) -> Option<&Arc<dyn Home>> {
        self.slot.home()
    }

    /// Blocks until the request has ended, and returns its outcome.
    ///
    /// Like the handle's [`ThreadPool::wait`](crate::ThreadPool::wait), it
    /// first looks for the outcome for a few microseconds (less when this
    /// thread's recent waits were long), so that a quick request costs no
    /// block and wake-up; then it blocks, and the thread that ends the
    /// request wakes it (no periodic look). A loop that submits one ticket
    /// and waits for it before the next costs about what `put_request`
    /// then `wait` does (see the guide's *What a request costs*). An
    /// awaited ticket does not spin: it returns `Pending` to its executor.
    /// A request stuck in the queue of a pool with no
    /// worker left (see
    /// [`ThreadPool::resize`](crate::ThreadPool::resize)) keeps it blocked
    /// until a worker is added or the pool closes (then `Cancelled`); use
    /// [`wait_timeout`](Self::wait_timeout) when that can happen.
    ///
    /// Waited for inside a callable of its own pool, a request still
    /// queued runs on the waiting worker itself (as does
    /// [`wait_timeout`](Self::wait_timeout)), so the wait never needs a
    /// free worker.
    ///
    /// With a bounded result queue
    /// ([`result_capacity`](crate::Builder::result_capacity)), a worker
    /// may be stuck sending the handle a result while this request is
    /// still queued behind it: then this thread handles the handle's
    /// ready results (running their callbacks), as a blocked put does,
    /// and waits on. So with a bounded result queue, do not wait while
    /// holding a lock that the handle's callbacks take. Only the handle
    /// the ticket was put through is looked after: results of another
    /// handle that this thread polls are not.
    ///
    /// # Errors
    ///
    /// The request's [`TaskError`]: `Failed`, `Panicked` or `Cancelled`.
    ///
    /// # Panics
    ///
    /// A panic in one of the handle's callbacks run here passes through
    /// (the request is not cancelled: it runs, its outcome dropped). The
    /// same holds for [`wait_timeout`](Self::wait_timeout), which then
    /// loses the ticket too.
    ///
    /// A ticket already polled to `Ready` as a future (`(&mut ticket).await`)
    /// holds no outcome any more: `wait`, `wait_timeout` and
    /// [`try_result`](Self::try_result) on it panic, as a second poll does.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let ticket = pool.submit(|_: ()| -> u8 { panic!("no luck") }, ())?;
    /// assert_eq!(ticket.wait(), Err(TaskError::Panicked("no luck".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(self) -> Result<T, TaskError<E>> {
        self.wait_in_place()
    }

    /// Blocks until the request has ended or `timeout` has passed. Gives the
    /// outcome, or the ticket back if it has not ended in time (then it can
    /// be waited on again, or cancelled).
    ///
    /// # Errors
    ///
    /// The ticket itself, unchanged, when the request has not ended by
    /// `timeout`. A request that ended in failure is `Ok(Err(_))`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let ticket = pool.submit(move |_: ()| { let _ = gate.recv(); 5 }, ())?;
    /// let ticket = match ticket.wait_timeout(Duration::from_millis(10)) {
    ///     Ok(outcome) => panic!("finished before the gate opened: {outcome:?}"),
    ///     Err(ticket) => ticket,
    /// };
    /// drop(open);
    /// assert_eq!(ticket.wait(), Ok(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, TaskError<E>>, Ticket<T, E>> {
        let deadline = Instant::now().checked_add(timeout);
        self.run_here_if_queued();
        self.take_with(|slot| slot.take_blocking(deadline))
    }

    /// The outcome if the request has ended, or the ticket back if not;
    /// never blocks.
    ///
    /// Unlike [`wait`](Self::wait) and [`wait_timeout`](Self::wait_timeout),
    /// it never runs the request on the calling thread. So inside a
    /// callable of the same pool, a loop of `try_result` (or an `.await`)
    /// may wait for ever for a request queued behind the very worker that
    /// loops, as on a one-worker pool: there, use `wait`.
    ///
    /// # Errors
    ///
    /// The ticket itself, unchanged, when the request has not ended yet.
    /// A request that ended in failure is `Ok(Err(_))`.
    ///
    /// # Panics
    ///
    /// On a ticket already polled to `Ready` as a future, as
    /// [`wait`](Self::wait) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut ticket = pool.submit(|n: u8| n + 1, 1)?;
    /// let outcome = loop {
    ///     match ticket.try_result() {
    ///         Ok(outcome) => break outcome,
    ///         Err(not_yet) => { ticket = not_yet; std::thread::yield_now(); }
    ///     }
    /// };
    /// assert_eq!(outcome, Ok(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn try_result(self) -> Result<Result<T, TaskError<E>>, Ticket<T, E>> {
        self.take_with(|slot| slot.try_take())
    }

    /// `wait`, keeping the ticket: if one of the handle's callbacks panics
    /// while this waits (see `wait`), the ticket is still there to wait on
    /// again (`imap` keeps it in its queue).
    pub(crate) fn wait_in_place(&self) -> Result<T, TaskError<E>> {
        self.run_here_if_queued();
        match self.slot.take_blocking(None) {
            Ok(Some(outcome)) => outcome,
            Ok(None) | Err(()) => panic!("{TAKEN}"),
        }
    }

    /// On a worker thread, before it blocks: runs the request here if it
    /// is still queued in that worker's pool. Waited for inside a callable,
    /// it could otherwise be queued behind the very workers waiting for it
    /// (as a scope's requests are, `pool::worker::help`). One that a worker
    /// has taken is not looked for: the look goes through the whole queue.
    fn run_here_if_queued(&self) {
        if crate::worker_thread::pool().is_some() && self.slot.is_queued() {
            let id = self.id();
            crate::pool::worker::help_here(|job| job.id() == id);
        }
    }

    #[allow(clippy::result_large_err)]
    fn take_with(
        self,
        take: impl FnOnce(&dyn Claim<T, E>) -> Result<Option<Outcome<T, E>>, ()>,
    ) -> Result<Result<T, TaskError<E>>, Ticket<T, E>> {
        match take(&*self.slot) {
            Ok(Some(outcome)) => Ok(outcome),
            Ok(None) => panic!("{TAKEN}"),
            Err(()) => Err(self),
        }
    }

    /// Whether the request has ended (its outcome is ready to take, unless
    /// a `(&mut ticket).await` took it already).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(0);
    /// let (a, b) = (pool.submit(|n: u32| n + 1, 1)?, pool.submit(|n: u32| n + 1, 2)?);
    /// assert!(!a.is_finished());
    /// assert!(b.cancel());
    /// assert!(b.is_finished());                     // cancelled is ended
    /// pool.create_workers(1)?;
    /// while !a.is_finished() {
    ///     std::thread::yield_now();                 // other work here
    /// }
    /// assert!(matches!(a.try_result(), Ok(Ok(2))));   // ready: no wait
    /// assert!(matches!(b.try_result(), Ok(Err(TaskError::Cancelled))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_done()
    }

    /// Cancels the request if no worker has taken it yet: then it never
    /// runs, the ticket's outcome is [`TaskError::Cancelled`], and this
    /// returns `true`. For a request already running or ended it returns
    /// `false` and changes nothing.
    ///
    /// Its callable is dropped here, unrun, on the calling thread. The
    /// request's place leaves the queue when a worker next reaches it:
    /// until then it still counts in
    /// [`ThreadPool::queued`](crate::ThreadPool::queued) and in a bounded
    /// queue's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let queued = pool.submit(|_: ()| unreachable!("cancelled"), ())?;
    /// assert!(queued.cancel());
    /// assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    /// drop(open);
    /// assert_eq!(busy.wait(), Ok(()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        self.slot.cancel()
    }

    /// Has `listener` told when the request ends.
    pub(crate) fn listen(&self, listener: Listener) {
        self.slot.listen(listener);
    }
}

impl<T, E> Future for Ticket<T, E> {
    type Output = Result<T, TaskError<E>>;

    /// Ready with the outcome once the request has ended; the thread that
    /// ends it wakes the task.
    ///
    /// Unlike [`wait`](Self::wait), an awaited ticket never runs its
    /// handle's callbacks (the task may be on any executor thread). With a
    /// bounded result queue, keep polling the handle meanwhile: a worker
    /// stuck sending it a result holds up the requests queued behind it.
    ///
    /// # Panics
    ///
    /// If polled again after it returned `Ready` (the outcome is gone).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.take_or_register(cx.waker()) {
            Ok(Some(outcome)) => Poll::Ready(outcome),
            Ok(None) => panic!("{TAKEN}"),
            Err(()) => Poll::Pending,
        }
    }
}

impl<T, E> fmt::Debug for Ticket<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(all(
    test,
    not(any(loom, shuttle)),
    target_os = "linux",
    target_pointer_width = "64"
))]
mod tests {
    use std::convert::Infallible;

    /// W1's ticket (`submit(square, i)`: a function and a `u64`) is one
    /// 56-byte slot (72 with the `Arc`'s counts, an 80-byte chunk of
    /// glibc's) shared by the queue and the ticket; the ticket itself is
    /// one pointer pair. A tag beside the argument (an `Option`, as
    /// `unwind::Apart` keeps it) would make it 64 bytes and a 96-byte
    /// chunk: a third more memory written per ticket.
    #[test]
    fn a_small_ticket_is_one_block_of_72_bytes() {
        fn slot_size<W, T, E>(_: &W) -> usize {
            std::mem::size_of::<super::Slot<W, T, E>>()
        }
        fn square(x: u64) -> u64 {
            x * x
        }
        let call = super::call::Call::<_, _, super::call::Plain>::new(square, 3u64);
        assert_eq!(slot_size::<_, u64, Infallible>(&call), 56);
        let arg = 3u64;
        let work = move || Ok::<u64, Infallible>(arg * arg);
        assert_eq!(slot_size::<_, u64, Infallible>(&work), 56);
        assert_eq!(std::mem::size_of::<super::Ticket<u64>>(), 16);
    }
}
