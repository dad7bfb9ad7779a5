//! [`ThreadPool::put_batch`]: many requests put at once, with one
//! reservation, and a [`Batch`] to follow and cancel them by.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::error::BatchError;
use crate::handle::ThreadPool;
use crate::inbox::batches::{BatchState, Progress};
use crate::inbox::{Caller, Inbox, Job};
use crate::pool::queue::Admit;
use crate::pool::{Pool, Push};
use crate::request::task::{Ended, Route};
use crate::request::WorkRequest;

/// Requests put together by [`ThreadPool::put_batch`]: their progress,
/// a way to cancel those not started, and a callback for when all have
/// ended.
///
/// The requests are ordinary requests of the handle that put them: their
/// own callbacks run as usual when the handle is polled, and `wait` counts
/// them. Dropping the `Batch` changes nothing.
pub struct Batch {
    state: Arc<BatchState>,
    pool: Arc<Pool>,
    inbox: Arc<Inbox>,
}

impl ThreadPool {
    /// Puts many requests at once (typically from
    /// [`make_requests`](crate::make_requests)) and returns a [`Batch`] to
    /// follow them by.
    ///
    /// On an unbounded queue the whole batch is queued with one
    /// reservation and one round of wake-ups, which costs less than a put
    /// per request. On a bounded queue the requests go in one by one,
    /// blocking for room as [`put_request`](Self::put_request) does; if the
    /// pool shuts down meanwhile, those not yet queued are cancelled (their
    /// error callbacks hear `Cancelled`), so the batch still ends.
    ///
    /// # Errors
    ///
    /// Before any request is queued: [`BatchError::ShutDown`] if the pool
    /// no longer accepts requests, [`BatchError::DuplicateId`] if a
    /// user-chosen id is pending on this handle or twice in the batch. All
    /// the requests are handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{make_requests, ThreadPool};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(4);
    /// let (tx, rx) = mpsc::channel();
    /// let batch = pool.put_batch(make_requests(|n: u64| n * n, 0..100, |_, _| {}, |_, _| {}))?;
    /// batch.on_done(move |progress| tx.send(progress).unwrap());
    /// pool.wait()?;
    /// let progress = rx.recv()?;      // ran on this thread, in `wait`
    /// assert_eq!((progress.total, progress.done), (100, 100));
    /// assert_eq!(batch.progress(), progress);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_batch<I>(&self, requests: I) -> Result<Batch, BatchError>
    where
        I: IntoIterator,
        I::Item: Into<WorkRequest>,
    {
        let tasks: Vec<_> = requests.into_iter().map(|r| r.into().into_task()).collect();
        let hand_back = |tasks: Vec<_>| tasks.into_iter().map(WorkRequest::from_task).collect();
        let mut members = HashSet::with_capacity(tasks.len());
        if !tasks.iter().all(|task| members.insert(task.id())) {
            return Err(BatchError::DuplicateId(hand_back(tasks)));
        }
        // A ticket's request has no place in a handle's batch: its outcome
        // never comes back here.
        let inbox = self.inbox();
        let mut registered = 0;
        for task in &tasks {
            if task.route() != Route::Inbox || inbox.register(task.id()).is_err() {
                break;
            }
            registered += 1;
        }
        if registered < tasks.len() {
            for task in &tasks[..registered] {
                inbox.unregister(task.id(), Caller::Other);
            }
            return Err(BatchError::DuplicateId(hand_back(tasks)));
        }
        let state = BatchState::new(members);
        // Tracked before anything is queued: results come after.
        inbox.batches.add(Arc::clone(&state));
        let mut jobs: Vec<Job> = tasks
            .into_iter()
            .map(|task| Job {
                task,
                inbox: Arc::clone(inbox),
            })
            .collect();
        let batch = Batch {
            state,
            pool: Arc::clone(self.shared()),
            inbox: Arc::clone(inbox),
        };
        if self.shared().config.queue_capacity.is_some() {
            self.put_one_by_one(jobs);
            self.wake_if_no_threads();
            return Ok(batch);
        }
        match self.shared().queue.push_many(&mut jobs, Admit::WhileOpen) {
            Push::Queued => {
                self.shared().grow_for_backlog();
                self.wake_if_no_threads();
                Ok(batch)
            }
            Push::QueuedLate => {
                self.sweep_late();
                Ok(batch)
            }
            Push::Closed(jobs) | Push::Full(jobs) => {
                // Nothing was queued: untrack and hand everything back.
                let requests = jobs
                    .into_iter()
                    .map(|job| {
                        job.unregister(Caller::Other);
                        job.into_request()
                    })
                    .collect::<Vec<_>>();
                for request in &requests {
                    let _ = inbox.batches.ended(request.id(), || Ended::Unstarted);
                }
                Err(BatchError::ShutDown(requests))
            }
        }
    }

    /// A batch on a bounded queue (its requests already counted pending):
    /// each request queued as `put_request` queues one, blocking for room;
    /// once the pool refuses one, it and the rest are cancelled through this
    /// handle, so their callbacks and the batch hear it.
    fn put_one_by_one(&self, jobs: Vec<Job>) {
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            let refused = match self.shared().queue.push(job) {
                Push::Queued => {
                    self.shared().grow_for_backlog();
                    continue;
                }
                Push::QueuedLate => {
                    self.sweep_late();
                    continue;
                }
                Push::Closed(job) => job,
                Push::Full(job) => {
                    match self.put_blocking(job, None) {
                        Ok(_) => continue,
                        // The refusal took its count back: counted again, to be
                        // cancelled like the rest.
                        Err(err) => {
                            let task = err.into_request().into_task();
                            let inbox = self.inbox();
                            if inbox.register(task.id()).is_err() {
                                log::error!("callpool bug: a refused batch request's id was taken meanwhile");
                                continue;
                            }
                            Job {
                                task,
                                inbox: Arc::clone(inbox),
                            }
                        }
                    }
                }
            };
            log::debug!(
                "callpool: batch request {} and those after it cancelled: the pool refused it",
                refused.id()
            );
            refused.cancel();
            for job in jobs.by_ref() {
                job.cancel();
            }
        }
    }

    /// After queueing with no thread left: a waiter that counted these
    /// requests as in flight must re-count them (as `put` does).
    fn wake_if_no_threads(&self) {
        if self.shared().threads() == 0 {
            self.inbox().wake_waiters(Caller::Other);
        }
    }
}

impl Batch {
    /// How far the batch has got.
    pub fn progress(&self) -> Progress {
        self.state.progress()
    }

    /// Cancels the batch's requests that are still queued: they never run,
    /// and each one's error callback hears
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled) once, on the
    /// thread that next polls the handle. Returns how many. Requests
    /// running or ended are left alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{make_requests, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let hold = callpool::WorkRequest::new(move |_: ()| { let _ = gate.recv(); }, ());
    /// let batch = pool.put_batch(std::iter::once(hold.into())
    ///     .chain(make_requests(|n: u32| n, 0..10, |_, _| {}, |_, _| {})))?;
    /// # while pool.queued() > 10 { std::thread::yield_now(); }
    /// assert_eq!(batch.cancel(), 10);   // the first one is running
    /// drop(open);
    /// pool.wait()?;
    /// let progress = batch.progress();
    /// assert_eq!((progress.done, progress.cancelled), (1, 10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> usize {
        let members = &self.state.members;
        let found = self.pool.queue.take_own(|job| {
            job.counted() && Arc::ptr_eq(&job.inbox, &self.inbox) && members.contains(&job.id())
        });
        let cancelled = found.len();
        self.pool.count_cancelled(cancelled);
        for job in found {
            job.cancel();
        }
        cancelled
    }

    /// Sets a callback that runs once, with the final [`Progress`], when
    /// every request of the batch has ended: on the thread that handles the
    /// last one's outcome (a thread polling the handle), right after that
    /// request's own callback; or here, at once, if the batch has already
    /// ended. A second call before it ran replaces the first.
    pub fn on_done(&self, callback: impl FnOnce(Progress) + Send + 'static) {
        if let Some((callback, progress)) = self.state.on_done(Box::new(callback)) {
            callback(progress);
        }
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
