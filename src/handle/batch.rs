//! [`ThreadPool::put_batch`]: many requests put at once, with one
//! reservation, and a [`Batch`] to follow and cancel them by.

use std::fmt;
use std::sync::Arc;

use crate::error::BatchError;
use crate::gather::gather;
use crate::handle::{Refused, ThreadPool};
use crate::inbox::batches::{BatchState, Members, Progress};
use crate::inbox::{Inbox, Job};
use crate::pool::queue::Admit;
use crate::pool::{Pool, Push};
use crate::request::task::{Route, TaskBox};
use crate::request::WorkRequest;
use crate::unwind::Callback;

/// How many requests of a batch go into the queue with one reservation:
/// small enough that workers start soon after the put does, large enough
/// that the reservation, the fence and the look for sleeping workers that
/// come with each push are paid rarely.
const CHUNK: usize = 256;

/// Requests put together by [`ThreadPool::put_batch`]: their progress,
/// a way to cancel those not started, and a callback for when all have
/// ended.
///
/// The requests are ordinary requests of the handle that put them: their
/// own callbacks run as usual when the handle is polled, and `wait` counts
/// them. Dropping the `Batch` changes nothing. A clone follows the same
/// batch, so another thread can watch its progress or cancel it.
///
/// # Examples
///
/// ```
/// use callpool::{make_requests, ThreadPool};
///
/// let pool = ThreadPool::new(2);
/// let batch = pool.put_batch(make_requests(|n: u64| n * n, 0..100, |_, _| {}, |_, _| {}))?;
/// let watcher = batch.clone();
/// let seen = std::thread::spawn(move || watcher.progress().total).join().unwrap();
/// pool.wait()?;
/// assert_eq!((seen, batch.progress().done), (100, 100));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
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
    /// Every request is counted pending at once. On an unbounded queue
    /// they are queued in chunks of 256, each with one reservation and one
    /// round of wake-ups, which costs less than a put per request, and
    /// workers start on the first chunk while the rest go in. On a bounded
    /// queue the requests go in one by one, blocking for room as
    /// [`put_request`](Self::put_request) does, so the `Batch` comes back
    /// only once all but the queue's capacity have been queued: little is
    /// left for [`Batch::cancel`] to stop then (put batches you may cancel
    /// on an unbounded queue). Either way, if the pool
    /// shuts down after the first request was queued, those not yet queued
    /// are cancelled (their error callbacks hear `Cancelled`), so the batch
    /// still ends. So are those a full bounded queue refuses because no
    /// worker is left to make room (where `put_request` returns
    /// [`PutError::NoWorkers`](crate::PutError::NoWorkers)), even the
    /// first: the batch is returned, its members cancelled, so that their
    /// callbacks hear it. And if one of this handle's callbacks panics
    /// while the put waits for room (the wait runs them), the panic passes
    /// through `put_batch` and the members not yet queued are cancelled
    /// the same way, so the batch still ends.
    ///
    /// A batch counts its own requests only. What a member puts through its
    /// [`Context`](crate::Context) belongs to this handle, not to the batch:
    /// the batch's progress does not count it, [`Batch::cancel`] does not
    /// reach it, and the batch-done callback may run while it is still
    /// queued or running ([`wait`](Self::wait) covers it). For the progress
    /// of a tree of work, read the handle's [`pending`](Self::pending), or
    /// put the tree through a [`Collector`](crate::Collector) and count
    /// its outcomes against its `pending()` (the guide, *Batches*, shows
    /// both).
    ///
    /// Once a member with a user-chosen id has ended, that id is free for
    /// another request on this handle, as for any request: the batch
    /// neither counts that request nor cancels it.
    ///
    /// If the pool shuts down before members ran, those handed back to the
    /// caller of [`shutdown`](Self::shutdown) or
    /// [`shutdown_now`](Self::shutdown_now) count as cancelled, and if that
    /// completes the batch its batch-done callback runs there, before the
    /// shutdown returns. They are no longer the batch's: put again (the
    /// [`global`](crate::global()) pool stays open), such a request is
    /// neither counted in the batch nor cancelled by [`Batch::cancel`]. A member still running when its handle is shut
    /// down with `shutdown_now` has its outcome discarded with the
    /// handle's other results: such a batch never completes.
    ///
    /// # Errors
    ///
    /// Before any request is queued: [`BatchError::ShutDown`] if the pool
    /// no longer accepts requests, [`BatchError::DuplicateId`] if a
    /// user-chosen id is pending on this handle or twice in the batch,
    /// [`BatchError::NotBatchable`] if a request's outcome would not come
    /// back to this handle (a ticket's, a collector's, or an executed one:
    /// [`execute`](Self::execute)), whatever else is wrong with the batch.
    /// All the requests are handed back.
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
        // Gathered, not collected: the iterator is the user's, and neither
        // its hint nor a panic from it may abort (`gather.rs`). A
        // `Vec<WorkRequest>` (what `make_requests` gives) is copied into
        // one allocation, and its boxes are read once, here: the heap is
        // walked once (`docs/performance.md`, "Batch put against a loop
        // of puts").
        let mut requests: Vec<WorkRequest> = gather(requests.into_iter().map(Into::into));
        // Boxed requests only: a ticket's or a collector's request has no
        // place in a handle's batch, as its outcome never comes back here.
        let mut foreign = false;
        let members = Members::new(requests.iter_mut().map(|request| {
            let task = request.task_mut();
            foreign |= !comes_back(task);
            task.id()
        }));
        let members = match members {
            _ if foreign => return Err(BatchError::NotBatchable(requests)),
            Some(members) => members,
            // `Members::new` stops at the first id seen twice, before the
            // requests after it were looked at: one of those may be
            // foreign, which is what the batch is refused as, wherever it
            // stands (an error path: the second walk costs the puts nothing).
            None if requests.iter_mut().any(|r| !comes_back(r.task_mut())) => {
                return Err(BatchError::NotBatchable(requests))
            }
            None => return Err(BatchError::DuplicateId(requests)),
        };
        let user_ids = members.user_chosen();
        let inbox = self.inbox();
        // Every request counted pending, and the batch filed, before any is
        // queued: no member's outcome can arrive unknown.
        if inbox.register_many(requests.len(), &user_ids).is_err() {
            return Err(BatchError::DuplicateId(requests));
        }
        let batch = Batch {
            state: BatchState::new(members),
            pool: Arc::clone(self.shared()),
            inbox: Arc::clone(inbox),
        };
        // An empty batch is complete at once: filed, it would only make
        // every later result of the handle look through the list.
        if requests.is_empty() {
            return Ok(batch);
        }
        inbox.batches.add(Arc::clone(&batch.state));
        let refused = if self.shared().config.queue_capacity.is_some() {
            let jobs = requests
                .into_iter()
                .map(|request| member_job(request, inbox));
            self.put_one_by_one(jobs)
        } else {
            self.put_in_chunks(requests)
        };
        if let Err(jobs) = refused {
            // Nothing was queued: untrack and hand everything back.
            for job in &jobs {
                job.unregister();
            }
            inbox.batches.remove(&batch.state);
            // A waiter may have counted them as in flight (see `reject`).
            self.wake_if_no_threads();
            let requests = jobs.into_iter().map(Job::into_request).collect();
            return Err(BatchError::ShutDown(requests));
        }
        self.wake_if_no_threads();
        Ok(batch)
    }

    /// A batch on an unbounded queue (its requests already counted
    /// pending): queued in chunks of [`CHUNK`], each with one reservation
    /// and one round of wake-ups, so that workers start on the first chunk
    /// while the rest go in. If the pool refuses the first chunk, every
    /// request is handed back (`Err`); if it refuses a later one, that
    /// chunk and the rest are cancelled through this handle, so their
    /// callbacks and the batch hear it.
    fn put_in_chunks(&self, requests: Vec<WorkRequest>) -> Result<(), Vec<Job>> {
        let (queue, inbox) = (&self.shared().queue, self.inbox());
        let mut requests = requests.into_iter();
        let mut chunk = Vec::with_capacity(CHUNK.min(requests.len()));
        let mut first = true;
        loop {
            chunk.extend(
                requests
                    .by_ref()
                    .take(CHUNK)
                    .map(|request| member_job(request, inbox)),
            );
            if chunk.is_empty() {
                return Ok(());
            }
            // Those that sleeping workers will not take.
            let unclaimed = chunk.len().saturating_sub(queue.asleep());
            match queue.push_many(&mut chunk, Admit::WhileOpen) {
                Push::Queued => self.shared().grow_for_backlog(unclaimed),
                // Pushed as the pool closed: the closer's sweep may have
                // missed them. The next chunk is refused.
                Push::QueuedLate => self.sweep_late(),
                Push::Closed(jobs) | Push::Full(jobs) => {
                    let all = jobs
                        .into_iter()
                        .chain(requests.map(|request| member_job(request, inbox)));
                    if first {
                        return Err(all.collect());
                    }
                    self.cancel_refused(all);
                    return Ok(());
                }
            }
            first = false;
        }
    }

    /// Cancels the requests of a batch that the pool refused part-way
    /// (it shut down meanwhile, or a full queue has no worker left to
    /// empty it), so that their callbacks and the batch hear it.
    fn cancel_refused(&self, jobs: impl Iterator<Item = Job>) {
        let jobs: Vec<Job> = jobs.collect();
        if let Some(job) = jobs.first() {
            log::debug!(
                "callpool: batch request {} and those after it cancelled: the pool refused it",
                job.id()
            );
        }
        // Counted before any is cancelled, as a sweep counts: a cancelled
        // member's callback may run on a thread polling meanwhile, while
        // the next member's cancel drops user code here, and it must find
        // its request in the statistics.
        self.shared().count_cancelled(jobs.len());
        for job in jobs {
            job.cancel();
        }
    }

    /// A batch on a bounded queue (its requests already counted pending):
    /// each request queued as `put_request` queues one, blocking for room.
    /// If the pool refuses the first, every request is handed back
    /// (`Err`), as `put_in_chunks` does; if it refuses a later one, that
    /// one and the rest are cancelled through this handle, so their
    /// callbacks and the batch hear it.
    fn put_one_by_one(&self, mut jobs: impl Iterator<Item = Job>) -> Result<(), Vec<Job>> {
        let mut first = true;
        while let Some(job) = jobs.next() {
            let refused = match self.shared().queue.push(job) {
                Push::Queued => {
                    self.shared().grow_for_backlog(1);
                    first = false;
                    continue;
                }
                Push::QueuedLate => {
                    self.sweep_late();
                    first = false;
                    continue;
                }
                Push::Closed(job) if first => {
                    return Err(std::iter::once(job).chain(jobs).collect());
                }
                Push::Closed(job) => job,
                Push::Full(job) => {
                    // On a worker of this pool, past the capacity, as
                    // `put_request` does; elsewhere blocking for room.
                    let put = if self.shared().on_worker_thread() {
                        self.push_past_capacity(job).map_err(Refused::ShutDown)
                    } else {
                        // This member and those after it are counted
                        // pending, not yet queued.
                        let holding = 1 + jobs.size_hint().0;
                        match self.put_blocking_or_panic(job, None, holding) {
                            Ok(put) => put,
                            // A callback panicked while the put waited: this
                            // request and the rest are cancelled, so the
                            // batch still ends and `wait` does not wait for
                            // them.
                            Err((job, payload)) => {
                                self.cancel_refused(std::iter::once(job).chain(jobs));
                                std::panic::resume_unwind(payload);
                            }
                        }
                    };
                    match put {
                        Ok(_) => {
                            first = false;
                            continue;
                        }
                        // Still counted pending, its id still held (freed
                        // and taken again, a put of the same id on another
                        // thread could take it in between): handed back or
                        // cancelled with the rest.
                        Err(refused) => {
                            // Handed back only if the pool shut down: on
                            // `NoWorkers` the batch is cancelled, so that
                            // its callbacks hear it.
                            first &= matches!(refused, Refused::ShutDown(_));
                            refused.into_job()
                        }
                    }
                }
            };
            if first {
                return Err(std::iter::once(refused).chain(jobs).collect());
            }
            self.cancel_refused(std::iter::once(refused).chain(jobs));
            return Ok(());
        }
        Ok(())
    }

    /// After queueing with no thread left: a waiter that counted these
    /// requests as in flight must re-count them (as `put` does).
    fn wake_if_no_threads(&self) {
        if self.shared().threads() == 0 {
            self.inbox().wake_waiters();
        }
    }
}

impl Batch {
    /// How far the batch has got. A thread handling the handle's results
    /// counts a run of them before it adds them here, so while it handles
    /// one this may lag behind the callbacks that have run; it is exact once
    /// that thread is done (`poll` or `wait` has returned) and in the
    /// batch-done callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{make_fallible_requests, ThreadPool};
    ///
    /// let pool = ThreadPool::new(0);
    /// let batch = pool.put_batch(make_fallible_requests(
    ///     |n: u32| if n < 5 { Ok(n) } else { Err("too big") },
    ///     0..10,
    ///     |_, _| {},
    ///     |_, _| {},
    /// ))?;
    /// let before = batch.progress();
    /// assert_eq!((before.total, before.ended()), (10, 0));
    /// pool.create_workers(2)?;
    /// pool.wait()?;
    /// let after = batch.progress();                // exact: `wait` has returned
    /// assert_eq!((after.done, after.failed, after.cancelled), (5, 5, 0));
    /// assert!(after.is_complete());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        let found = self
            .pool
            .queue
            .take_own(|job| job.counted_on_inbox(&self.inbox) && members.contains(job.id()));
        let cancelled = found.len();
        self.pool.count_cancelled(cancelled);
        for job in found {
            job.cancel();
        }
        cancelled
    }

    /// Sets a callback that runs once, with the final [`Progress`], when
    /// every request of the batch has ended, after every one of their own
    /// callbacks: on a thread polling the handle (with one thread polling,
    /// right after the last request's callback; with several, on the one
    /// that completes the batch's count, after the callbacks it ran); or
    /// here, at once, if the batch has already ended and no batch-done
    /// callback ran for it; or on the thread that shuts the pool down, if
    /// that hands the last members back unrun. A batch runs one batch-done
    /// callback: a second call before it ran replaces the first (which is
    /// dropped unrun), and a call after it ran is dropped unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{make_requests, ThreadPool};
    /// use std::sync::mpsc::channel;
    ///
    /// let pool = ThreadPool::new(0);
    /// let (tx, rx) = channel();
    /// let batch = pool.put_batch(make_requests(|n: u32| n, 0..3, |_, _| {}, |_, _| {}))?;
    /// let t = tx.clone();
    /// batch.on_done(move |_| t.send("first").unwrap());
    /// let t = tx.clone();
    /// batch.on_done(move |_| t.send("second").unwrap());   // replaces "first"
    /// pool.create_workers(1)?;
    /// pool.wait()?;
    /// let t = tx.clone();
    /// batch.on_done(move |_| t.send("third").unwrap());    // too late: dropped
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["second"]);
    ///
    /// // A batch that ended with no batch-done callback runs one at once.
    /// let ended = pool.put_batch(make_requests(|n: u32| n, 0..3, |_, _| {}, |_, _| {}))?;
    /// pool.wait()?;
    /// ended.on_done(move |progress| tx.send(if progress.done == 3 { "at once" } else { "?" }).unwrap());
    /// assert_eq!(rx.try_recv()?, "at once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_done(&self, callback: impl FnOnce(Progress) + Send + 'static) {
        if let Some((callback, progress)) = self.state.on_done(Callback::new(callback)) {
            // No request's timing, even when called in a timed callback.
            crate::request::timing::hidden(|| callback.call(progress));
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

/// The queue's job for a batch member, which `put_batch` has checked is a
/// boxed request (counted on the handle already).
fn member_job(request: WorkRequest, inbox: &Arc<Inbox>) -> Job {
    match request.into_task() {
        TaskBox::Boxed(task) => Job::Boxed {
            task,
            inbox: Arc::clone(inbox),
        },
        // Never: a ticket's request is refused before anything is counted.
        TaskBox::Shared(job) => Job::Shared(job),
    }
}

/// Whether a request's outcome comes back to the handle that puts it, as a
/// batch member's must (the batch counts it there): not a ticket's or a
/// collector's, nor one whose outcome nobody hears (`Route::InPlace`).
fn comes_back(task: &TaskBox) -> bool {
    matches!(task, TaskBox::Boxed(task) if task.route() == Route::Inbox)
}
