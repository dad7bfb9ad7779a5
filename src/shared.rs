//! The state every handle and every worker of one pool share: the request
//! queue, the worker registry, and the pool's lifecycle.
//!
//! The protocols that use it (request flow, dismissal, shutdown) are
//! described step by step in `docs/design.md`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crate::error::SpawnError;
use crate::inbox::{Inbox, Job, Msg};
use crate::queue::{Lifecycle, RequestQueue, WorkerFlags};
use crate::request::WorkRequest;
use crate::worker;

/// The most live workers one pool may have. Far above any useful size; it
/// turns an absurd request (`create_workers(usize::MAX)`) into an error
/// instead of thousands of threads.
pub const MAX_WORKERS: usize = 4096;

thread_local! {
    /// The pool id of the worker running on this thread (0: not a worker).
    static WORKER_OF: Cell<u64> = const { Cell::new(0) };
}

/// Settings fixed when the pool is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) result_capacity: Option<usize>,
}

/// One live worker, as the pool sees it.
struct Worker {
    /// The dismissal message: set under the queue lock (`RequestQueue::dismiss`).
    flags: Arc<WorkerFlags>,
    thread: JoinHandle<()>,
}

/// Worker bookkeeping that must change together, under one lock.
struct Workers {
    /// Live workers, oldest first; dismissal takes from the end.
    live: Vec<Worker>,
    /// Threads dismissed but not joined yet (some may still be running).
    dismissed: Vec<JoinHandle<()>>,
    /// Threads started and not yet exited: live ones plus dismissed ones
    /// still finishing. Invariant: `threads >= live.len()`.
    threads: usize,
    /// Number for the next worker's thread name.
    next_index: usize,
}

pub(crate) struct Shared {
    /// Identifies this pool to its worker threads (see `on_worker_thread`).
    id: u64,
    pub(crate) config: Config,
    pub(crate) queue: RequestQueue<Job>,
    workers: Mutex<Workers>,
    /// Signalled each time a worker thread exits.
    exited: Condvar,
    /// Mirror of `Workers::threads`, written under the lock, read without it
    /// by waiters deciding whether any result can still arrive.
    threads: AtomicUsize,
    /// Every handle's inbox, to wake its waiters when the last thread exits.
    inboxes: Mutex<Vec<Weak<Inbox>>>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Arc<Shared> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(Shared {
            // Relaxed: only uniqueness matters.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            queue: RequestQueue::new(config.queue_capacity),
            config,
            workers: Mutex::new(Workers {
                live: Vec::new(),
                dismissed: Vec::new(),
                threads: 0,
                next_index: 0,
            }),
            exited: Condvar::new(),
            threads: AtomicUsize::new(0),
            inboxes: Mutex::new(Vec::new()),
        })
    }

    fn workers(&self) -> MutexGuard<'_, Workers> {
        // Nothing panics while this lock is held (spawn errors are values),
        // so a poisoned lock still guards consistent data.
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        self.queue.lifecycle()
    }

    /// Threads still running (live workers and dismissed ones finishing).
    pub(crate) fn threads(&self) -> usize {
        // SeqCst: pairs with the store in `worker_exited`, which happens after
        // the exiting worker's last result was sent (see design.md, "wait").
        self.threads.load(Ordering::SeqCst)
    }

    pub(crate) fn live_workers(&self) -> usize {
        self.workers().live.len()
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether the current thread is one of this pool's workers.
    pub(crate) fn on_worker_thread(&self) -> bool {
        WORKER_OF.with(|w| w.get() == self.id)
    }

    pub(crate) fn mark_worker_thread(&self) {
        WORKER_OF.with(|w| w.set(self.id));
    }

    pub(crate) fn register_inbox(&self, inbox: &Arc<Inbox>) {
        let mut inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
        inboxes.retain(|w| w.strong_count() > 0);
        inboxes.push(Arc::downgrade(inbox));
    }

    /// Wakes every waiter of every handle: the pool has no thread left, so
    /// those with pending requests must stop waiting.
    fn wake_all_inboxes(&self) {
        let inboxes: Vec<Arc<Inbox>> = {
            let inboxes = self.inboxes.lock().unwrap_or_else(|e| e.into_inner());
            inboxes.iter().filter_map(Weak::upgrade).collect()
        };
        for inbox in inboxes {
            inbox.wake_waiters(0);
        }
    }

    /// Starts `n` more workers, or none if the pool would pass
    /// [`MAX_WORKERS`] or is shut down. On a spawn failure the workers
    /// already started keep running and the error says how many.
    pub(crate) fn create_workers(self: &Arc<Self>, n: usize) -> Result<(), SpawnError> {
        let mut workers = self.workers();
        self.grow(&mut workers, n)
    }

    fn grow(self: &Arc<Self>, workers: &mut Workers, n: usize) -> Result<(), SpawnError> {
        if self.lifecycle() != Lifecycle::Open {
            return Err(SpawnError::shut_down());
        }
        let wanted = workers.live.len().saturating_add(n);
        if wanted > MAX_WORKERS {
            return Err(SpawnError::too_many(wanted, MAX_WORKERS));
        }
        for created in 0..n {
            if let Err(e) = self.spawn_worker(workers) {
                log::error!("callpool: could not spawn a worker thread: {e}");
                return Err(SpawnError::io(created, e));
            }
        }
        Ok(())
    }

    /// Spawns one worker. Called with the workers lock held so that the
    /// counts and the registry change together; the new thread never takes
    /// that lock before it exits.
    fn spawn_worker(self: &Arc<Self>, workers: &mut Workers) -> std::io::Result<()> {
        let name = format!("{}-{}", self.config.thread_name, workers.next_index);
        let mut builder = thread::Builder::new().name(name.clone());
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let flags = Arc::new(WorkerFlags::new());
        let worker_flags = Arc::clone(&flags);
        // Count the thread before it starts, so that it can never be seen
        // exiting before it was counted; roll back if it does not start.
        self.set_threads(workers, workers.threads + 1);
        let shared = Arc::clone(self);
        match builder.spawn(move || worker::run(shared, worker_flags)) {
            Ok(thread) => {
                workers.next_index += 1;
                workers.live.push(Worker { flags, thread });
                log::debug!("callpool: started worker {name}");
                Ok(())
            }
            Err(e) => {
                self.set_threads(workers, workers.threads - 1);
                Err(e)
            }
        }
    }

    fn set_threads(&self, workers: &mut Workers, threads: usize) {
        workers.threads = threads;
        self.threads.store(threads, Ordering::SeqCst);
    }

    /// Dismisses up to `n` live workers, newest first; returns how many.
    /// Idle ones wake and exit at once; busy ones exit after their current
    /// request. None of them takes another request.
    pub(crate) fn dismiss_workers(&self, n: usize) -> usize {
        let mut workers = self.workers();
        self.shrink(&mut workers, n)
    }

    fn shrink(&self, workers: &mut Workers, n: usize) -> usize {
        let n = n.min(workers.live.len());
        let leaving = workers.live.split_off(workers.live.len() - n);
        // Newest first, as the Python module does.
        for worker in leaving.iter().rev() {
            log::debug!(
                "callpool: dismissing worker {}",
                worker.thread.thread().name().unwrap_or("?")
            );
        }
        self.queue.dismiss(leaving.iter().map(|w| &*w.flags));
        workers
            .dismissed
            .extend(leaving.into_iter().rev().map(|w| w.thread));
        n
    }

    /// Sets the number of live workers to `n`, under one lock.
    pub(crate) fn resize(self: &Arc<Self>, n: usize) -> Result<(), SpawnError> {
        let mut workers = self.workers();
        let live = workers.live.len();
        if n > live {
            self.grow(&mut workers, n - live)
        } else {
            self.shrink(&mut workers, live - n);
            Ok(())
        }
    }

    /// Moves the lifecycle forward and dismisses every live worker, as one
    /// step under the workers lock, so no worker can be created in between.
    pub(crate) fn stop(&self, to: Lifecycle) {
        let mut workers = self.workers();
        self.queue.advance(to);
        let n = workers.live.len();
        self.shrink(&mut workers, n);
    }

    /// A worker is about to block on a full result queue: wake the threads
    /// that may be the ones to make room (blocked putters, joiners), each of
    /// which checks for stuck senders under the lock taken here.
    pub(crate) fn sender_stuck(&self) {
        self.queue.wake_putters();
        let _workers = self.workers();
        self.exited.notify_all();
    }

    /// Joins the dismissed workers once every one of them has left its loop;
    /// returns `None` (joining nothing) as soon as `stuck` says the caller's
    /// own results need handling first, so that the caller can make room
    /// for a dismissed worker blocked on its result queue.
    pub(crate) fn join_dismissed_when_exited(&self, stuck: impl Fn() -> bool) -> Option<usize> {
        if self.on_worker_thread() {
            // A worker cannot wait for its own exit; join the others as they go.
            return Some(self.join_dismissed());
        }
        let mut workers = self.workers();
        // `threads` counts live workers plus dismissed ones not yet exited.
        while workers.threads > workers.live.len() {
            if stuck() {
                return None;
            }
            workers = self.exited.wait(workers).unwrap_or_else(|e| e.into_inner());
        }
        drop(workers);
        Some(self.join_dismissed())
    }

    /// Joins the dismissed workers; returns how many were joined. A worker
    /// thread of this pool never joins itself.
    pub(crate) fn join_dismissed(&self) -> usize {
        let me = thread::current().id();
        let handles = std::mem::take(&mut self.workers().dismissed);
        let mut joined = 0;
        for handle in handles {
            if handle.thread().id() == me {
                self.workers().dismissed.push(handle);
                continue;
            }
            // A worker catches every panic of a request, so a join error
            // means a bug in callpool itself; report it, keep joining.
            if handle.join().is_err() {
                log::error!("callpool bug: a worker thread panicked");
            }
            joined += 1;
        }
        joined
    }

    /// Blocks until no thread of this pool runs, or until `deadline`.
    /// Returns the threads still running.
    pub(crate) fn wait_threads_exited(&self, deadline: Option<Instant>) -> usize {
        let mut workers = self.workers();
        while workers.threads > 0 {
            workers = match deadline {
                None => self.exited.wait(workers).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    self.exited
                        .wait_timeout(workers, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        workers.threads
    }

    /// Called by each worker thread as it exits, whatever the reason.
    pub(crate) fn worker_exited(&self, me: ThreadId) {
        let none_left = {
            let mut workers = self.workers();
            // A live worker only exits on a bug (its loop panicked); drop it
            // from the live count so nobody waits on it (model weakness W15).
            if let Some(pos) = workers
                .live
                .iter()
                .position(|w| w.thread.thread().id() == me)
            {
                log::error!("callpool bug: a live worker exited unexpectedly");
                let Worker { thread, .. } = workers.live.remove(pos);
                workers.dismissed.push(thread);
            }
            let threads = workers.threads - 1;
            self.set_threads(&mut workers, threads);
            self.exited.notify_all();
            workers.threads == 0
        };
        if none_left {
            self.wake_all_inboxes();
            self.queue.wake_putters();
        }
    }

    /// Takes every request still queued (the pool is closed). Requests of
    /// `own` are handed back; every other one is cancelled to its handle
    /// (whose error callback hears `TaskError::Cancelled`).
    pub(crate) fn sweep(&self, own: Option<&Arc<Inbox>>) -> Vec<WorkRequest> {
        let mut handed_back = Vec::new();
        for job in self.queue.take_all() {
            if own.is_some_and(|own| Arc::ptr_eq(own, &job.inbox)) {
                job.inbox.unregister(job.id(), false);
                handed_back.push(job.into_request());
            } else {
                let Job { mut task, inbox } = job;
                log::warn!(
                    "callpool: request {} cancelled: the pool was closed before it ran",
                    task.id()
                );
                task.task.cancel();
                inbox.deliver(Msg::Done(task), || self.sender_stuck());
            }
        }
        handed_back
    }

    /// How many of `own`'s requests wait in the queue.
    pub(crate) fn queued_for(&self, own: &Arc<Inbox>) -> usize {
        self.queue.count(|job| Arc::ptr_eq(&job.inbox, own))
    }

    /// For a handle of a pool that stays open (the global pool): takes this
    /// handle's queued requests out, leaving the others in order.
    pub(crate) fn extract(&self, own: &Arc<Inbox>) -> Vec<WorkRequest> {
        self.queue
            .take_own(|job| Arc::ptr_eq(&job.inbox, own))
            .into_iter()
            .map(|job| {
                job.inbox.unregister(job.id(), false);
                job.into_request()
            })
            .collect()
    }
}
