//! How a handle ends its pool: gracefully (`shutdown`, running what is
//! queued and joining every thread) or at once (`shutdown_now`, handing
//! unstarted requests back). `docs/design.md`, "Shutdown and drop".

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{ShutdownError, WaitError};
use crate::handle::ThreadPool;
use crate::inbox::receive::Until;
use crate::inbox::{HandedBack, Inbox};
use crate::pool::queue::Lifecycle;
use crate::pool::Pool;
use crate::request::WorkRequest;
use crate::unwind;

impl ThreadPool {
    /// Shuts the pool down gracefully: refuses new requests (on every
    /// handle), lets the workers run everything queued, handles this
    /// handle's results on this thread, and joins every worker thread.
    ///
    /// New requests include those a running callable adds through its
    /// [`Context`](crate::Context): `Context::put` returns
    /// [`PutError::ShutDown`](crate::PutError::ShutDown) from then on, so
    /// work that makes work stops where it is. To let it finish, call
    /// [`wait`](Self::wait) first.
    ///
    /// Other handles keep their results to poll. With a bounded result
    /// queue ([`result_capacity`](crate::Builder::result_capacity)), a
    /// worker whose result finds another handle's queue full waits for
    /// that handle to be polled, and this shutdown waits for the worker:
    /// if nobody polls that handle meanwhile (it belongs to this same
    /// thread, say), `shutdown` waits for ever and
    /// [`shutdown_timeout`](Self::shutdown_timeout) ends in
    /// [`ShutdownError::TimedOut`] with `pending: 0`. `wait` on the other
    /// handles first, or keep their threads polling until this returns.
    ///
    /// On a handle of the
    /// [`global`](crate::global) pool, which lives as long as the process,
    /// this only waits for this handle's requests; called from one of this
    /// handle's callbacks, it returns `Ok` once what is pending may all be
    /// held by the call running the callback (see
    /// [`WaitError::HeldByCaller`]), which handles it after.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::Unrun`] hands back this handle's requests that never
    /// ran because no worker was left (those of a [`Batch`](crate::Batch)
    /// count there as cancelled, as for
    /// [`shutdown_now`](Self::shutdown_now));
    /// [`ShutdownError::OnWorkerThread`] on a worker of this pool (nothing
    /// is shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let done = Arc::new(AtomicUsize::new(0));
    /// let pool = ThreadPool::new(2);
    /// for i in 0..10 {
    ///     let done = Arc::clone(&done);
    ///     pool.put_request(WorkRequest::new(|x: u32| x * 2, i)
    ///         .on_result(move |_, _| { done.fetch_add(1, Ordering::Relaxed); }))?;
    /// }
    /// pool.shutdown()?;
    /// assert_eq!(done.load(Ordering::Relaxed), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(self) -> Result<(), ShutdownError> {
        self.shutdown_until(None)
    }

    /// [`shutdown`](Self::shutdown), giving up after `timeout`: threads
    /// still running then (a callable that never returns) are left to finish
    /// on their own, reported in [`ShutdownError::TimedOut`]. An external
    /// program still running ([`WorkRequest::command`](crate::WorkRequest::command))
    /// is not killed either; [`shutdown_now`](Self::shutdown_now) kills it.
    ///
    /// Requests still queued at the timeout: if this was the pool's last
    /// handle, they are discarded as when it is dropped (a ticket among
    /// them ends [`Cancelled`](crate::TaskError::Cancelled)); if other
    /// handles remain, the workers go on running them for those handles
    /// (the pool accepts no new ones).
    ///
    /// # Errors
    ///
    /// As [`shutdown`](Self::shutdown), and [`ShutdownError::TimedOut`] at
    /// the timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ShutdownError, TaskError, ThreadPool, WorkRequest};
    /// use std::sync::mpsc::channel;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (started_tx, started) = channel();
    /// let (open, gate) = channel::<()>();
    /// pool.put_request(WorkRequest::new(move |_: ()| {
    ///     started_tx.send(()).unwrap();
    ///     let _ = gate.recv();                       // runs until the gate opens
    /// }, ()))?;
    /// started.recv()?;
    /// let queued = pool.submit(|n: u32| n + 1, 1)?;  // behind it
    /// match pool.shutdown_timeout(Duration::from_millis(10)) {
    ///     Err(ShutdownError::TimedOut { threads, pending }) => assert_eq!((threads, pending), (1, 1)),
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// drop(open);                    // the stuck request ends on its own thread
    /// // The last handle is gone: what was still queued was discarded.
    /// assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) -> Result<(), ShutdownError> {
        self.shutdown_until(Instant::now().checked_add(timeout))
    }

    /// [`shutdown`](Self::shutdown) from a shared reference: for a handle
    /// held in an `Arc`, or one of several clones, where `shutdown(self)`
    /// cannot be called without `Arc::try_unwrap`. The pool closes for
    /// every handle; later puts on any of them get `PutError::ShutDown`.
    /// The [`global`](crate::global) pool is the exception, as for
    /// `shutdown`: this only waits for this handle's requests, and the
    /// pool stays open.
    ///
    /// # Errors
    ///
    /// As [`shutdown`](Self::shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(ThreadPool::new(2));
    /// let crawler = Arc::clone(&pool);
    /// crawler.put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// pool.close()?;                                // no Arc::try_unwrap needed
    /// assert!(matches!(crawler.put_request(WorkRequest::new(|n: u32| n, 2)), Err(PutError::ShutDown(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) -> Result<(), ShutdownError> {
        self.shutdown_until(None)
    }

    fn shutdown_until(&self, deadline: Option<Instant>) -> Result<(), ShutdownError> {
        let shared = Arc::clone(self.shared());
        if shared.on_worker_thread() {
            return Err(ShutdownError::OnWorkerThread);
        }
        let timed_out = |pending| ShutdownError::TimedOut {
            threads: shared.threads(),
            pending,
        };
        if self.owner.global {
            return match self.block(deadline, Until::NothingPending) {
                // From a callback: the results held by the call below are
                // handled once it returns.
                Ok(_) | Err(WaitError::HeldByCaller { .. }) => Ok(()),
                Err(WaitError::Timeout { pending }) => Err(timed_out(pending)),
                Err(_) => Err(ShutdownError::Unrun(handed_back(
                    shared.extract(self.inbox()),
                ))),
            };
        }
        shared.stop(Lifecycle::Draining);
        // If a callback panics out of this shutdown, close the pool on the
        // way out, so other handles' queued requests are cancelled to them
        // rather than left in a pool that drains with no worker.
        let _close_on_panic = CloseOnPanic(&shared, self.inbox());
        // Handle our results while the workers drain the queue: with a
        // bounded result queue they may need us to make room.
        if let Err(WaitError::Timeout { pending }) = self.block(deadline, Until::NothingPending) {
            return Err(timed_out(pending));
        }
        // Handling our results whenever a worker is stuck on the full
        // result queue: the wait above may have returned early, from a
        // callback (`HeldByCaller`) while a request still ran (a stream),
        // and a worker sending to this handle would never exit.
        let left = self.making_room(|shared, stuck| shared.wait_threads_exited(deadline, stuck));
        if left > 0 {
            return Err(timed_out(self.pending()));
        }
        // With a timeout, not the threads still destroying their
        // thread-locals (user code): left to finish on their own, as a
        // request still running at the deadline is.
        shared.join_dismissed(deadline.is_none());
        let unrun = shared
            .close_and_sweep(Some(self.inbox()))
            .map_or_else(Vec::new, handed_back);
        log::debug!("callpool: pool shut down");
        if unrun.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::Unrun(unrun))
        }
    }

    /// Stops the pool at once and hands back this handle's requests that no
    /// worker had started, queued ones first, then the children that
    /// running callables had put ([`Context::put`](crate::Context::put))
    /// and their workers not yet queued; a child put as the pool closes is
    /// either handed back here or refused to its callable
    /// ([`PutError::ShutDown`](crate::PutError::ShutDown)), never lost.
    /// Requests of other handles that had not started
    /// are cancelled (their error callbacks get
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled); an executed
    /// one's callable, which has no callback, is dropped here), and so are
    /// tickets' requests not started, this handle's too: a [`Ticket`](crate::Ticket)
    /// already out hears `Cancelled`, so its request is never handed back
    /// here. Running
    /// requests finish on their threads, which then exit; that includes a
    /// request a worker took just as the pool closed, which may start
    /// after this returns (at most one per worker). This handle's
    /// results are discarded, unless a clone of it (clones share their
    /// results) is still there to poll them; other handles still receive
    /// theirs. Running external programs ([`WorkRequest::command`]) are
    /// killed: their requests fail with
    /// [`CommandError::Killed`](crate::CommandError::Killed), and so do
    /// command requests a worker took just before the pool closed. Nothing
    /// blocks: a cancellation for a handle whose bounded result queue is
    /// full waits beside that queue until the handle polls, and a user
    /// value whose `Drop` panics while being cancelled is logged, not
    /// propagated.
    ///
    /// On a handle of the [`global`](crate::global) pool, only this handle's
    /// queued requests are taken out and handed back; the pool keeps running
    /// (and so do its commands).
    ///
    /// Requests handed back that belong to a [`Batch`](crate::Batch) count
    /// there as cancelled; a batch this completes runs its batch-done
    /// callback here, before this returns (a panic in it passes out, and
    /// the requests are dropped). Called from a callable, that is on the
    /// worker running it: the one case where a callback runs on a worker,
    /// since nobody may poll the handle after the pool is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(0);
    /// for i in 0..3 {
    ///     pool.put_request(WorkRequest::new(|x: u32| x, i))?;
    /// }
    /// let unstarted = pool.shutdown_now();
    /// assert_eq!(unstarted.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_now(self) -> Vec<WorkRequest> {
        let shared = self.shared();
        if self.owner.global {
            return handed_back(shared.extract(self.inbox()));
        }
        let back = shared.close_and_sweep(Some(self.inbox()));
        // A running external program would otherwise keep its worker (and
        // the child) alive until it ends on its own: kill it now.
        crate::command::kill_running(shared.id());
        back.map_or_else(Vec::new, handed_back)
    }
}

/// Runs the batch-done callbacks that handing the requests back completed
/// (a batch whose last members never ran ends here, on the thread that
/// shut the pool down), then hands the requests back.
fn handed_back(back: HandedBack) -> Vec<WorkRequest> {
    back.finished.run();
    back.requests
}

/// Closes and sweeps a pool whose graceful shutdown was interrupted by a
/// panicking callback (see `shutdown_until`). The shutting-down handle's own
/// queued requests are taken out and dropped, not cancelled to it: its
/// result queue may be bounded and full, and nobody will poll it again.
struct CloseOnPanic<'a>(&'a Pool, &'a Arc<Inbox>);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Not the batch-done callbacks: a panic in one now would abort
            // (dropped uncalled, they contain their captures' `Drop`s).
            // Nor may a request's `Drop` panic escape: each is contained.
            let dropped = self.0.close_and_sweep(Some(self.1)).map_or(0, |back| {
                let dropped = back.requests.len();
                for request in back.requests {
                    unwind::contain("a request dropped after a panicking shutdown", || {
                        drop(request)
                    });
                }
                dropped
            });
            if dropped > 0 {
                log::warn!(
                    "callpool: {} queued requests dropped: a callback panicked during shutdown",
                    dropped
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::command::{self, CommandError};
    use crate::handle::ThreadPool;
    use crate::request::WorkRequest;

    /// A command that a worker took before `shutdown_now` but had not
    /// started yet is refused (`Killed`) instead of started: `sleep 30`
    /// would otherwise keep the wait below going past its bound, which is
    /// there only to turn that hang into a failure.
    #[test]
    fn a_command_started_after_shutdown_now_is_killed_before_it_runs() {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (started_tx, started) = mpsc::channel();
        let (go_tx, go) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        // A worker of `pool` that holds its request, then runs a command as
        // a command request would, on the same thread.
        let holder = move |_: ()| {
            started_tx.send(()).unwrap();
            let _ = go.recv();
            let mut sleep = Command::new("sleep");
            sleep.arg("30");
            command::run(sleep, None)
        };
        other
            .put_request(
                WorkRequest::new(holder, ()).on_result(move |_, ran| done_tx.send(ran).unwrap()),
            )
            .unwrap();
        started.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(pool.shutdown_now().is_empty());
        go_tx.send(()).unwrap();
        assert_eq!(other.wait_timeout(Duration::from_secs(20)), Ok(1));
        assert!(matches!(done.try_recv(), Ok(Err(CommandError::Killed))));
    }
}
