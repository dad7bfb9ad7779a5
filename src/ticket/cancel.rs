//! A ticket's request cancelled from elsewhere: a handle that any thread
//! may keep while the ticket's holder waits on it.

use std::fmt;
use std::sync::{Arc, Weak};

use crate::request::RequestId;
use crate::unwind;

/// What a [`CancelHandle`] does to its request: ends it as cancelled
/// unless it started or ended already; whether it did.
pub(crate) trait Cancel: Send + Sync {
    fn cancel(&self) -> bool;
}

/// Cancels the request of one [`Ticket`](crate::Ticket) from anywhere,
/// while the ticket itself is waited on, polled or awaited elsewhere (the
/// ticket's own [`cancel`](crate::Ticket::cancel) needs the ticket). Made
/// by [`Ticket::cancel_handle`](crate::Ticket::cancel_handle); `Clone`,
/// `Send` and `Sync`. Python's `concurrent.futures.Future.cancel` and
/// tokio's `AbortHandle` are its neighbours.
///
/// It holds the request only weakly: it keeps neither the callable nor
/// the outcome alive, and once the request has ended and its ticket is
/// gone, [`cancel`](Self::cancel) simply returns `false`.
///
/// # Examples
///
/// A thread waits on the ticket; another cancels it before a worker
/// takes it:
///
/// ```
/// use callpool::{TaskError, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let (open, gate) = std::sync::mpsc::channel::<()>();
/// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
/// # while pool.queued() > 0 { std::thread::yield_now(); }
/// let queued = pool.submit(|n: u32| n + 1, 41)?;
/// let handle = queued.cancel_handle();
/// let waiter = std::thread::spawn(move || queued.wait());
/// assert!(handle.cancel());
/// assert!(!handle.cancel(), "a second cancel finds it ended");
/// assert_eq!(waiter.join().unwrap(), Err(TaskError::Cancelled));
/// drop(open);
/// assert_eq!(busy.wait(), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    request: Weak<dyn Cancel>,
    id: RequestId,
}

impl CancelHandle {
    pub(crate) fn new(request: Arc<dyn Cancel>, id: RequestId) -> CancelHandle {
        CancelHandle {
            request: Arc::downgrade(&request),
            id,
        }
    }

    /// Cancels the request if no worker has taken it yet, as
    /// [`Ticket::cancel`](crate::Ticket::cancel) does: it never runs, its
    /// callable is dropped here, on the calling thread, and the ticket's
    /// outcome is [`TaskError::Cancelled`](crate::TaskError::Cancelled)
    /// (a thread blocked on it, or a task awaiting it, is woken).
    /// Returns whether it did; `false` for a request that is running or
    /// has ended (cancelled before, too).
    ///
    /// # Examples
    ///
    /// A task awaiting a queued ticket is woken by the cancel; a running
    /// request is not stopped:
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (started_tx, started) = channel();
    /// let (open, gate) = channel::<()>();
    /// let running = pool.submit(move |_: ()| {
    ///     started_tx.send(()).unwrap();
    ///     let _ = gate.recv();
    ///     "ran"
    /// }, ())?;
    /// started.recv()?;
    /// let queued = pool.submit(|n: u32| n + 1, 1)?;
    /// let (stop_running, stop_queued) = (running.cancel_handle(), queued.cancel_handle());
    /// let awaiting = std::thread::spawn(move || futures::executor::block_on(queued));
    /// assert!(stop_queued.cancel());
    /// assert_eq!(awaiting.join().unwrap(), Err(TaskError::Cancelled));
    ///
    /// assert!(!stop_running.cancel());               // already running
    /// drop(open);
    /// assert_eq!(running.wait(), Ok("ran"));
    /// assert!(!stop_running.cancel());               // ended, ticket gone
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let Some(request) = self.request.upgrade() else {
            return false;
        };
        let cancelled = request.cancel();
        // Its ticket and queued job may both have gone meanwhile: then
        // this is the last reference, and an outcome's `Drop` is user code.
        unwind::drop_contained("an outcome whose ticket was dropped", request);
        cancelled
    }

    /// The id of the ticket's request ([`Ticket::id`](crate::Ticket::id),
    /// whose example shows both).
    pub fn id(&self) -> RequestId {
        self.id
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
