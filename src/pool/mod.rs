//! What every handle and every worker of one pool share: the request queue
//! ([`queue`]), the children of running callables not yet queued
//! ([`nursery`]), the worker registry ([`registry`]: spawn, dismiss, join,
//! reap), the worker loop ([`worker`]), and the sweeps that empty a closed
//! queue.
//!
//! The protocols (request flow, dismissal, shutdown) are described step by
//! step in `docs/design.md`.

pub(crate) mod fifo;
pub(crate) mod handshake;
pub(crate) mod nursery;
pub(crate) mod pace;
pub(crate) mod queue;
mod registry;
pub(crate) mod scale;
pub(crate) mod stats;
pub(crate) mod thread_count;
pub(crate) mod worker;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use crate::inbox::receive::Threads;
use crate::inbox::{HandedBack, Inbox, Job};
use crate::worker_thread;
use nursery::Nursery;
use queue::{Lifecycle, RequestQueue};
use registry::Workers;
use scale::Autoscale;
pub(crate) use scale::Scale;
use thread_count::ThreadCount;

pub(crate) use queue::{Blocked, Push};

/// Settings fixed when the pool is built (checked by the builder).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) result_capacity: Option<usize>,
    /// The most live workers the pool may have.
    pub(crate) max_workers: usize,
    /// Keep worker panics out of the panic hook (`unwind::quiet_this_thread`).
    pub(crate) quiet_panics: bool,
    pub(crate) on_worker_start: Option<WorkerHook>,
    pub(crate) on_worker_stop: Option<WorkerHook>,
    pub(crate) worker_state: Option<StateMaker>,
    /// Autoscaling bounds, if the pool grows and shrinks by itself.
    pub(crate) scale: Option<Scale>,
}

/// Makes a worker's own state (`Builder::worker_state`).
#[derive(Clone)]
pub(crate) struct StateMaker(pub(crate) Arc<dyn Fn(usize) -> Box<dyn std::any::Any> + Send + Sync>);

impl fmt::Debug for StateMaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateMaker")
    }
}

impl Drop for StateMaker {
    /// As for `WorkerHook`.
    fn drop(&mut self) {
        let maker = std::mem::replace(
            &mut self.0,
            Arc::new(|_: usize| Box::new(()) as Box<dyn std::any::Any>),
        );
        crate::unwind::drop_contained("a worker state maker's captures", maker);
    }
}

impl StateMaker {
    /// Worker `index`'s state; `None` (logged) if making it panicked.
    pub(crate) fn make(&self, index: usize) -> Option<Box<dyn std::any::Any>> {
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(index)));
        match made {
            Ok(state) => Some(state),
            Err(payload) => {
                log::error!(
                    "callpool: making worker {index}'s state panicked: {}",
                    crate::unwind::into_message(payload)
                );
                None
            }
        }
    }
}

/// A user's worker start or stop hook.
#[derive(Clone)]
pub(crate) struct WorkerHook(pub(crate) Arc<dyn Fn(usize) + Send + Sync>);

impl fmt::Debug for WorkerHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerHook")
    }
}

impl Drop for WorkerHook {
    /// The hook's captures are user values, dropped with the pool's last
    /// reference, often in a `shutdown`: a panic there is logged, as one
    /// in the hook itself is.
    fn drop(&mut self) {
        let hook = std::mem::replace(&mut self.0, Arc::new(|_: usize| {}));
        crate::unwind::drop_contained("a worker hook's captures", hook);
    }
}

impl WorkerHook {
    /// Runs the hook for worker `index`; a panic in it is logged.
    pub(crate) fn call(&self, what: &str, index: usize) {
        crate::unwind::call_contained(what, || (self.0)(index));
    }
}

/// The state one pool's handles and workers share.
pub(crate) struct Pool {
    /// Identifies this pool to its worker threads (see `on_worker_thread`).
    id: u64,
    pub(crate) config: Config,
    pub(crate) queue: RequestQueue<Job>,
    /// Children that running callables have put and their workers have
    /// not queued yet.
    pub(crate) nursery: Nursery<Job>,
    workers: Mutex<Workers>,
    /// Signalled each time a worker thread exits.
    exited: Condvar,
    /// The threads running, written under the workers lock, read without it
    /// by waiters deciding whether any result can still arrive, and
    /// whether their requests are stranded (`Threads::stranded`).
    pub(crate) thread_count: ThreadCount,
    /// Every handle's inbox, to wake its waiters when the last thread exits.
    inboxes: Mutex<Inboxes>,
    /// An autoscaling pool's decisions and live-worker mirror.
    autoscale: Option<Autoscale>,
    /// What each worker ran, for `ThreadPool::stats`.
    pub(crate) tallies: stats::Tallies,
    /// Requests cancelled before a worker took them (sweeps, `cancel`).
    cancelled: AtomicU64,
    /// Held by whoever closes the pool, across the close and its sweep's
    /// take (`close_and_sweep`); a late sweep, and a child held as the pool
    /// closed, wait for it (`after_close`). Nothing holding it runs user
    /// code or waits for a thread that may be waiting for it.
    closing: Mutex<()>,
}

/// Weak references to every handle's inbox. Dead ones are pruned when the
/// list has doubled since the last prune, so registering is O(1) amortised
/// however many handles live.
struct Inboxes {
    list: Vec<Weak<Inbox>>,
    prune_at: usize,
}

impl Pool {
    pub(crate) fn new(config: Config) -> Arc<Pool> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(Pool {
            // Relaxed: only uniqueness matters.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            queue: RequestQueue::new(config.queue_capacity),
            nursery: Nursery::default(),
            workers: Mutex::new(Workers::default()),
            exited: Condvar::new(),
            thread_count: ThreadCount::new(),
            inboxes: Mutex::new(Inboxes {
                list: Vec::new(),
                prune_at: 16,
            }),
            autoscale: config.scale.map(Autoscale::new),
            tallies: stats::Tallies::default(),
            cancelled: AtomicU64::new(0),
            closing: Mutex::new(()),
            config,
        })
    }

    /// Counts requests cancelled before a worker took them.
    pub(crate) fn count_cancelled(&self, n: usize) {
        // Relaxed: a statistic, ordered with nothing else.
        self.cancelled.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// What the pool has done so far (see `ThreadPool::stats`).
    pub(crate) fn stats(&self) -> stats::Stats {
        let totals = self.tallies.totals();
        let idle = self.queue.sleeping();
        let threads = self.threads();
        stats::Stats {
            workers: self.live_workers(),
            threads,
            idle,
            busy: threads.saturating_sub(idle),
            running: totals.running,
            queued: self.queued(),
            completed: totals.succeeded,
            failed: totals.failed,
            panicked: totals.panicked,
            // Relaxed: see `count_cancelled`.
            cancelled: self.cancelled.load(Ordering::Relaxed) + totals.unstarted,
        }
    }

    /// This pool's id, unique in the process, never 0 (what
    /// `worker_thread::pool` returns on its workers).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    fn workers(&self) -> MutexGuard<'_, Workers> {
        // Nothing panics while this lock is held (spawn errors are values,
        // joins happen outside it), so a poisoned lock still guards
        // consistent data.
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.queue.lifecycle()
    }

    /// Threads still running (live workers and dismissed ones finishing).
    #[inline]
    pub(crate) fn threads(&self) -> usize {
        self.thread_count.running()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether the current thread is one of this pool's workers.
    pub(crate) fn on_worker_thread(&self) -> bool {
        worker_thread::pool() == Some(self.id)
    }

    fn mark_worker_thread(&self) {
        worker_thread::mark(self.id);
    }

    pub(crate) fn register_inbox(&self, inbox: &Arc<Inbox>) {
        let mut inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
        if inboxes.list.len() >= inboxes.prune_at {
            inboxes.list.retain(|w| w.strong_count() > 0);
            inboxes.prune_at = (inboxes.list.len() * 2).max(16);
        }
        inboxes.list.push(Arc::downgrade(inbox));
    }

    /// Wakes every waiter of every handle: the pool has no thread left, so
    /// those with pending requests must stop waiting.
    fn wake_all_inboxes(&self) {
        let inboxes: Vec<Arc<Inbox>> = {
            let inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
            inboxes.list.iter().filter_map(Weak::upgrade).collect()
        };
        for inbox in inboxes {
            inbox.wake_waiters();
        }
    }

    /// Closes the pool and sweeps it: takes every request still queued and
    /// every child held in a worker's slot (looked for there first, as in
    /// `take_unstarted`), hands `own`'s back (see `Inbox::hand_back`) and
    /// cancels every other one to its handle (whose error callback hears
    /// `TaskError::Cancelled`).
    ///
    /// The close and the take are one step, under the closing lock, that
    /// late sweeps wait for: a put that lands as the pool closes sweeps
    /// too (`sweep_late`), and taking between our close and our take, it
    /// would cancel `own`'s requests to a handle that is handing them back
    /// (lost to both). The take also waits (yielding) for the pushes of
    /// puts that reserved room while the pool was open: a push takes a
    /// few steps and runs no user code; left to its putter's own sweep, a
    /// running callable's children were cancelled to a handle that
    /// `shutdown_now` had let go of. What was taken is handed back or
    /// cancelled after the lock is let go: their `Drop`s and tickets'
    /// wakers are user code, which may wait for a thread that waits for
    /// the lock, or close this or another pool.
    ///
    /// A pool closed already was swept by its closer: what came since is
    /// refused (a child held after that sweep, `Children::held_as_closed`)
    /// or swept by its putter. A second sweep (the last handle's drop
    /// after `shutdown_now`) would cancel such a child, to a handle nobody
    /// polls, as its worker is about to take it back and refuse it.
    ///
    /// Never waits for a handle to poll: a full result queue overflows
    /// into its inbox (`Inbox::hand_over`), and a panicking `Drop` of a
    /// cancelled callable is contained.
    pub(crate) fn close_and_sweep(&self, own: Option<&Arc<Inbox>>) -> Option<HandedBack> {
        let taken = {
            let _closing = self.closing();
            if self.queue.lifecycle() == Lifecycle::Closed {
                Vec::new()
            } else {
                self.stop(Lifecycle::Closed);
                self.take_swept(true)
            }
        };
        self.settle_swept(taken, own)
    }

    /// For a put (or a worker's hand-off) that queued as the pool closed,
    /// which the closer's take may have missed: sweeps again (as
    /// `close_and_sweep` does, cancelling all it finds), once the closer
    /// has taken what it found.
    pub(crate) fn sweep_late(&self) {
        self.after_close();
        let taken = self.take_swept(false);
        self.settle_swept(taken, None);
    }

    /// Returns once the pool's closer (which closed it: the caller saw it
    /// closed) has taken what its sweep found.
    pub(crate) fn after_close(&self) {
        drop(self.closing());
    }

    fn closing(&self) -> MutexGuard<'_, ()> {
        // It guards no data, and nothing panics while it is held.
        self.closing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sweep's take (see `close_and_sweep`; `in_flight`: also what
    /// reserved puts are still pushing): runs no user code.
    fn take_swept(&self, in_flight: bool) -> Vec<Job> {
        let held = self.nursery.take_own(|_| true);
        let mut jobs: Vec<Job> = self.queue.take_all().into();
        // `len`: counted in, not yet counted out; a worker's take that
        // began before the close counts its request out just after it
        // pops it.
        while in_flight && self.queue.len() > 0 {
            std::thread::yield_now();
            jobs.extend(self.queue.take_all());
        }
        jobs.extend(held);
        jobs
    }

    /// The rest of a sweep: hands `own`'s requests among `taken` back and
    /// cancels the others.
    fn settle_swept(&self, taken: Vec<Job>, own: Option<&Arc<Inbox>>) -> Option<HandedBack> {
        // A ticket's request is its ticket's, not the handle's: it is
        // cancelled to the ticket, never handed back.
        let (own_jobs, others): (Vec<Job>, Vec<Job>) = taken
            .into_iter()
            .partition(|job| own.is_some_and(|own| job.counted_on_inbox(own)));
        // Counted before any is cancelled, as `worker::cancel_children`
        // counts: an executed request's cancel counts it out of `pending`
        // at once (`Inbox::end_in_place`), and a `wait` it lets return
        // must find it in the statistics. (A join's half is no request.)
        self.count_cancelled(others.iter().filter(|job| job.is_request()).count());
        for job in others {
            if job.is_request() {
                // Per request at trace level: a sweep may cancel thousands.
                log::trace!(
                    "callpool: request {} cancelled: the pool was closed before it ran",
                    job.id()
                );
            }
            // (A join's half: left to its join, which runs it.)
            job.cancel();
        }
        own.map(|own| own.hand_back(own_jobs))
    }

    /// For a handle of a pool that stays open (the global pool): takes this
    /// handle's queued requests out (and its children held in workers'
    /// slots), leaving the others in order, to be handed back.
    pub(crate) fn extract(&self, own: &Arc<Inbox>) -> HandedBack {
        own.hand_back(self.take_unstarted(|job| job.counted_on_inbox(own)))
    }

    /// Takes out the requests for which `mine` holds that no worker has
    /// taken, wherever they wait: queued ones first, then children held in
    /// workers' slots. It looks in the slots first: a child only ever
    /// moves from its slot to the queue, under the slot's lock, so looked
    /// for in this order it is found wherever it is (in the other order, a
    /// hand-off between the two looks hides it).
    pub(crate) fn take_unstarted(&self, mine: impl Fn(&Job) -> bool + Copy) -> Vec<Job> {
        let held = self.nursery.take_own(mine);
        let mut jobs = self.queue.take_own(mine);
        jobs.extend(held);
        jobs
    }

    /// A helping wait's take (`worker::help`): [`take_to_help`] on this
    /// pool's slots and queue.
    pub(crate) fn take_to_help(&self, mine: impl Fn(&Job) -> bool + Copy) -> Option<Helped<Job>> {
        take_to_help(&self.nursery, &self.queue, mine)
    }
}

/// What a helping wait does with the request it took.
#[derive(Debug)]
pub(crate) enum Helped<J> {
    /// Runs it, as a worker runs a request it took from the queue.
    Run(J),
    /// Cancels it: the pool had closed by the time it was taken.
    Cancel(J),
}

/// A helping wait's take (`worker::help`): the first request for which
/// `mine` holds ([`take_first_unstarted`]), with what to do with it. Taken,
/// it is the wait's, as a request a worker took from the queue is the
/// worker's; but a closing sweep cannot reach it on the wait's stack: so it
/// is cancelled if the pool has closed by then, and `shutdown_now` starts
/// none after it returns. The models (`models::help`) drive this with
/// numbers.
pub(crate) fn take_to_help<J>(
    nursery: &Nursery<J>,
    queue: &RequestQueue<J>,
    mine: impl Fn(&J) -> bool + Copy,
) -> Option<Helped<J>> {
    let job = take_first_unstarted(nursery, queue, mine)?;
    // Read after the take: a close before it is seen here; one after it
    // found the request gone from its sweep, and the request counts as
    // started before the close.
    Some(if queue.lifecycle() == Lifecycle::Closed {
        Helped::Cancel(job)
    } else {
        Helped::Run(job)
    })
}

/// The first request of a pool's slots and queue for which `mine` holds,
/// looked for as [`Pool::take_unstarted`] looks: the slots, then the queue,
/// where only the requests queued ahead of it are taken apart.
pub(crate) fn take_first_unstarted<J>(
    nursery: &Nursery<J>,
    queue: &RequestQueue<J>,
    mine: impl Fn(&J) -> bool + Copy,
) -> Option<J> {
    nursery.take_first(mine).or_else(|| queue.take_first(mine))
}

impl Threads for Arc<Pool> {
    fn on_worker_thread(&self) -> bool {
        Pool::on_worker_thread(self)
    }

    fn running(&self) -> usize {
        self.threads()
    }

    fn stranded(&self, inbox: &Arc<Inbox>, pending: usize) -> bool {
        // In a closed pool, what is still queued is being swept by the
        // closer (or a late putter), which cancels it to its handle: not
        // stranded. Otherwise it is, if all of it is queued...
        let queued = || {
            self.lifecycle() != Lifecycle::Closed
                && self.queue.count(|job| job.counted_on_inbox(inbox)) >= pending
        };
        // ... and no worker can start for it. An open autoscaling pool
        // starts one for queued requests: the put that queued them is
        // about to (it grows after its push), or a retirement raced it.
        // Started here, it is there either way; only a pool that cannot
        // start one strands them. A worker started before the count may
        // also have taken them, run them and left since, its keep-alive
        // short: `ThreadCount::stranded` tells that from no thread.
        let grow = || self.grow_for_backlog(pending);
        self.thread_count.stranded(queued, grow)
    }
}

impl Drop for Pool {
    /// No handle and no worker of this pool is left (each holds it), so
    /// none of its workers can start an external command any more.
    fn drop(&mut self) {
        crate::command::forget_pool(self.id);
    }
}

/// Owned jointly by every handle of one pool: the last handle to go drops
/// it, which closes the pool.
pub(crate) struct PoolOwner {
    pub(crate) pool: Arc<Pool>,
    /// The process-wide pool: never closed by a handle.
    pub(crate) global: bool,
}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        let pool = &self.pool;
        let queued = pool.queued();
        // Same steps as `shutdown_now`, without handing anything back: no
        // handle is left to receive it. Running requests finish on their
        // threads, which then exit; nobody waits for them.
        pool.close_and_sweep(None);
        // Debug, not warn: the handles that put them warned, once each, as
        // they were dropped with requests pending (`Results`'s `Drop`).
        if queued > 0 {
            log::debug!(
                "callpool: pool dropped with {queued} queued requests; they were discarded"
            );
        }
    }
}
