//! The worker registry: starting, dismissing, joining and reaping a pool's
//! worker threads, and counting them in and out (the counts themselves,
//! which waiters read without the lock: `pool/thread_count.rs`).
//!
//! Dismissal is a message, not an inference: the registry moves a worker
//! from `live` to `dismissed` and sets its flag through the request queue
//! (`RequestQueue::dismiss`), all under the workers lock. A worker that
//! leaves its loop moves its own handle to `exited`; the next registry
//! operation (or the next worker to exit) joins those, so threads are
//! reaped without the user's help. `docs/design.md`, "Life of a worker".

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::Instant;

use crate::error::SpawnError;
use crate::pool::handshake::WorkerFlags;
use crate::pool::queue::{Lifecycle, Retirement};
use crate::pool::scale::{Autoscale, Roster};
use crate::pool::{worker, Pool};

/// One live worker, as the pool sees it.
struct Worker {
    /// The dismissal message: set through the queue (`RequestQueue::dismiss`).
    flags: Arc<WorkerFlags>,
    thread: Thread,
}

/// A worker's thread, and whether its thread-locals are gone.
///
/// A thread past its loop (counted out by `worker_exited`) still runs its
/// thread-locals' destructors, user code (a callable may leave anything
/// there) that may take any time, or wait for the very thread that would
/// join it. `JoinHandle::is_finished` cannot tell: it turns true as the
/// thread's closure returns, before those destructors. So the pool's own
/// reaping (puts that grow the pool, `create_workers`, `dismiss_workers`,
/// `resize`, workers exiting) joins only threads that raised `gone`;
/// the others stay in `exited`, for the next reaping or for a caller that
/// asked to wait for the threads (`join_dismissed`).
struct Thread {
    handle: JoinHandle<()>,
    /// Raised by the thread's first thread-local (`GONE`), whose destructor
    /// runs after those of the thread-locals made after it.
    gone: Arc<AtomicBool>,
}

impl Thread {
    fn thread(&self) -> &thread::Thread {
        self.handle.thread()
    }

    fn gone(&self) -> bool {
        // Acquire: pairs with the Release in `Gone`'s `Drop`.
        self.gone.load(Ordering::Acquire)
    }
}

/// Raises its flag when its thread's thread-locals are destroyed.
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

thread_local! {
    /// Made first on every worker thread, before any hook or callable runs,
    /// so that its destructor runs after theirs (destructors run in the
    /// reverse order of the thread-locals' first use).
    static GONE: RefCell<Option<Gone>> = const { RefCell::new(None) };
}

/// Worker bookkeeping that must change together, under one lock.
#[derive(Default)]
pub(crate) struct Workers {
    /// Live workers, oldest first; dismissal takes from the end.
    live: Vec<Worker>,
    /// Dismissed threads that have not left their loop yet.
    dismissed: Vec<Thread>,
    /// Threads that left their loop (see `worker_exited`), not joined yet.
    exited: Vec<Thread>,
    /// Dismissed threads joined by reaping since the last
    /// `join_all_dismissed_workers`, which reports them.
    reaped: usize,
    /// Exited threads taken by some thread to join, not joined yet:
    /// `join_dismissed` waits for them, whoever joins them.
    joining: usize,
    /// Number for the next worker's thread name.
    next_index: usize,
}

impl Workers {
    /// Takes the threads that have left their loop, to be joined (outside
    /// the lock) by `join_all`: every one if `all`, else only those whose
    /// thread-locals are gone, whose joins are quick (see `Thread`).
    fn take_exited(&mut self, all: bool) -> Vec<Thread> {
        let exited = if all {
            std::mem::take(&mut self.exited)
        } else {
            let (gone, running) = std::mem::take(&mut self.exited)
                .into_iter()
                .partition(Thread::gone);
            self.exited = running;
            gone
        };
        self.reaped += exited.len();
        self.joining += exited.len();
        exited
    }
}

/// The registry under its lock, as an autoscaling decision changes it
/// (`pool/scale.rs`); `me` is the worker asking to retire, if any.
struct Locked<'a> {
    pool: &'a Arc<Pool>,
    workers: &'a mut Workers,
    me: Option<&'a WorkerFlags>,
}

impl Roster for Locked<'_> {
    fn live(&self) -> usize {
        self.workers.live.len()
    }

    fn open(&self) -> bool {
        self.pool.lifecycle() == Lifecycle::Open
    }

    fn retire_me(&mut self) -> bool {
        let Some(flags) = self.me else {
            return false;
        };
        let Some(at) = self
            .workers
            .live
            .iter()
            .position(|w| std::ptr::eq(&*w.flags, flags))
        else {
            return false;
        };
        let me = self.workers.live.remove(at);
        log::debug!(
            "callpool: idle worker {} leaves after its keep-alive",
            me.thread.thread().name().unwrap_or("?")
        );
        self.pool.queue.dismiss(std::iter::once(&*me.flags));
        self.workers.dismissed.push(me.thread);
        true
    }

    fn start_one(&mut self) {
        if let Err(e) = self.pool.spawn_worker(self.workers) {
            log::error!("callpool: could not start a worker for queued requests: {e}");
        }
    }
}

impl Pool {
    /// Joins threads that have left their loop (so they end promptly, their
    /// hooks already run), never the calling thread; then counts them out
    /// of `joining` for whoever waits in `join_dismissed`.
    fn join_all(&self, handles: Vec<Thread>) {
        if handles.is_empty() {
            return;
        }
        let n = handles.len();
        for handle in handles {
            // A worker catches every panic of a request, so a join error
            // means a bug in callpool itself; report it, keep joining.
            if handle.handle.join().is_err() {
                log::error!("callpool bug: a worker thread panicked");
            }
        }
        let mut workers = self.workers();
        workers.joining -= n;
        if workers.joining == 0 {
            // Under the lock: a waiter in `join_dismissed` checks the count
            // under it before it waits.
            self.exited.notify_all();
        }
    }

    pub(crate) fn live_workers(&self) -> usize {
        self.workers().live.len()
    }

    /// Starts `n` more workers, or none if the pool would pass its
    /// `max_workers` or is shut down. On a spawn failure the workers already
    /// started keep running and the error says how many.
    pub(crate) fn create_workers(self: &Arc<Self>, n: usize) -> Result<(), SpawnError> {
        self.then_reap(|workers| self.grow(workers, n))
    }

    /// Runs `change` under the workers lock, then joins (outside the lock)
    /// the threads that had exited: how every registry operation reaps.
    fn then_reap<R>(&self, change: impl FnOnce(&mut Workers) -> R) -> R {
        let mut workers = self.workers();
        let exited = workers.take_exited(false);
        let result = change(&mut workers);
        self.publish_live(&workers);
        drop(workers);
        // Past its minimum, the idle workers told to stay at it start their
        // keep-alive again (the count is published before the queue's lock
        // is taken, see `RequestQueue::sleep`).
        if self.above_min() {
            self.queue.rouse_unarmed();
        }
        self.join_all(exited);
        result
    }

    /// Whether this is an autoscaling pool above its minimum
    /// (`Autoscale::above_min`).
    pub(crate) fn above_min(&self) -> bool {
        self.autoscale.as_ref().is_some_and(Autoscale::above_min)
    }

    fn grow(self: &Arc<Self>, workers: &mut Workers, n: usize) -> Result<(), SpawnError> {
        if self.lifecycle() != Lifecycle::Open {
            return Err(SpawnError::shut_down());
        }
        let wanted = workers.live.len().saturating_add(n);
        if wanted > self.config.max_workers {
            return Err(SpawnError::too_many(wanted, self.config.max_workers));
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
    /// counts and the registry change together; the new thread takes that
    /// lock only as it starts (waiting until it is counted) and as it
    /// exits.
    fn spawn_worker(self: &Arc<Self>, workers: &mut Workers) -> std::io::Result<()> {
        let name = format!("{}-{}", self.config.thread_name, workers.next_index);
        let mut builder = thread::Builder::new().name(name.clone());
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let flags = Arc::new(WorkerFlags::new());
        let worker_flags = Arc::clone(&flags);
        let gone = Arc::new(AtomicBool::new(false));
        let gone_on_exit = Gone(Arc::clone(&gone));
        // The thread is counted once spawned, and waits for the workers
        // lock (held here) before it does anything: so it is counted before
        // it can take a request or exit. Counted before the spawn instead,
        // a spawn the OS refused would show for a moment as a thread that
        // is not there: a waiter that looked then would wait for its result
        // with nobody left to wake it.
        let pool = Arc::clone(self);
        let index = workers.next_index;
        match builder.spawn(move || {
            drop(pool.workers());
            GONE.with(|slot| *slot.borrow_mut() = Some(gone_on_exit));
            pool.mark_worker_thread();
            if pool.config.quiet_panics {
                crate::unwind::quiet_this_thread();
            }
            // The start hook and the state are made at the start of `run`,
            // the stop hook runs at its end, before the exit is counted.
            worker::run(&pool, worker_flags, index);
        }) {
            Ok(handle) => {
                self.thread_count.started();
                workers.next_index += 1;
                let thread = Thread { handle, gone };
                workers.live.push(Worker { flags, thread });
                log::debug!("callpool: started worker {name}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Dismisses up to `n` live workers, newest first; returns how many.
    /// Idle ones wake and exit at once; busy ones exit after their current
    /// request. None of them takes another request.
    /// For an idle worker of an autoscaling pool whose keep-alive passed:
    /// takes it out of the pool (dismissed, as `dismiss_workers` does) if
    /// the pool is open, above its minimum, and nothing is queued; the
    /// decision and why no request is stranded by it: `Autoscale::retire_idle`.
    pub(crate) fn retire_idle(self: &Arc<Self>, flags: &WorkerFlags) -> Retirement {
        let Some(autoscale) = &self.autoscale else {
            return Retirement::Stays;
        };
        self.then_reap(|workers| {
            autoscale.retire_idle(
                &mut Locked {
                    pool: self,
                    workers,
                    me: Some(flags),
                },
                &self.queue,
                || self.nursery.any(),
            )
        })
    }

    /// Mirrors the live worker count for `grow_for_backlog`'s look without
    /// the lock.
    fn publish_live(&self, workers: &Workers) {
        if let Some(autoscale) = &self.autoscale {
            autoscale.publish(workers.live.len());
        }
    }

    /// After requests were queued together, `unclaimed` of them more than
    /// the sleeping workers take: an autoscaling pool with no worker left
    /// asleep starts one more per unclaimed request (at least one), up to
    /// its maximum, as one put per request would. Inlined so that a pool
    /// that does not scale pays one test per put, not a call.
    #[inline]
    pub(crate) fn grow_for_backlog(self: &Arc<Self>, unclaimed: usize) {
        if let Some(autoscale) = &self.autoscale {
            // Cheap looks first: a sleeper will take it, or the pool is full.
            if autoscale.may_need_worker(&self.queue) {
                self.grow_by(autoscale, unclaimed.max(1));
            }
        }
    }

    /// Whether this is an autoscaling pool below its maximum (see
    /// `Autoscale::may_grow`).
    #[inline]
    pub(crate) fn may_grow(&self) -> bool {
        self.autoscale.as_ref().is_some_and(Autoscale::may_grow)
    }

    #[cold]
    fn grow_by(self: &Arc<Self>, autoscale: &Autoscale, wanted: usize) {
        self.then_reap(|workers| {
            autoscale.grow(
                &mut Locked {
                    pool: self,
                    workers,
                    me: None,
                },
                wanted,
            )
        });
    }

    pub(crate) fn dismiss_workers(&self, n: usize) -> usize {
        self.then_reap(|workers| self.shrink(workers, n))
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
        self.then_reap(|workers| {
            let live = workers.live.len();
            if n > live {
                self.grow(workers, n - live)
            } else {
                self.shrink(workers, live - n);
                Ok(())
            }
        })
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
            return Some(self.join_dismissed(true));
        }
        let mut workers = self.workers();
        // The thread count (written under this lock, so exact here) counts
        // live workers plus dismissed ones not yet exited.
        while self.threads() > workers.live.len() {
            if stuck() {
                return None;
            }
            workers = self.exited.wait(workers).unwrap_or_else(|e| e.into_inner());
        }
        drop(workers);
        Some(self.join_dismissed(true))
    }

    /// Joins the dismissed workers that have left their loop (if not `all`,
    /// only those whose thread-locals are gone: see `Thread`); returns how
    /// many were joined since the last call (reaped ones included).
    pub(crate) fn join_dismissed(&self, all: bool) -> usize {
        let (exited, joined) = {
            let mut workers = self.workers();
            // `take_exited` counts the ones joined here into `reaped`.
            let exited = workers.take_exited(all);
            (exited, std::mem::take(&mut workers.reaped))
        };
        self.join_all(exited);
        // Counted, but another thread may still be joining some of them
        // (a worker reaping as it exits, a concurrent resize): wait for
        // those joins too. Each is of a thread past its loop, so it ends.
        let mut workers = self.workers();
        while workers.joining > 0 {
            workers = self.exited.wait(workers).unwrap_or_else(|e| e.into_inner());
        }
        joined
    }

    /// Blocks until no thread of this pool runs, or until `deadline`.
    /// Returns the threads still running; or `None` as soon as `stuck` says
    /// the caller's own results need handling first (as
    /// `join_dismissed_when_exited`).
    pub(crate) fn wait_threads_exited(
        &self,
        deadline: Option<Instant>,
        stuck: impl Fn() -> bool,
    ) -> Option<usize> {
        let mut workers = self.workers();
        // The thread count is written under this lock (and the `exited`
        // notification sent under it), so read here it is exact.
        while self.threads() > 0 {
            // Checked under the lock that `sender_stuck` takes before it
            // notifies: a worker stuck after this look wakes the wait.
            if stuck() {
                return None;
            }
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
        Some(self.threads())
    }

    /// Called by each worker thread as it leaves its loop, whatever the
    /// reason. It moves its own handle to `exited` (it cannot join itself)
    /// and joins the threads that left before it and whose thread-locals
    /// are gone (`take_exited`), so that a pool nobody operates on holds
    /// only exited threads that are still tearing down.
    pub(crate) fn worker_exited(self: &Arc<Self>, me: ThreadId) {
        let (none_left, earlier) = {
            let mut workers = self.workers();
            let earlier = workers.take_exited(false);
            let mine =
                if let Some(pos) = workers.dismissed.iter().position(|t| t.thread().id() == me) {
                    Some(workers.dismissed.swap_remove(pos))
                } else if let Some(pos) = workers
                    .live
                    .iter()
                    .position(|w| w.thread.thread().id() == me)
                {
                    // A live worker only exits on a bug (its loop panicked); drop
                    // it from the live count so nobody waits on it.
                    log::error!("callpool bug: a live worker exited unexpectedly");
                    Some(workers.live.remove(pos).thread)
                } else {
                    None
                };
            // Counted as reaped when joined (`take_exited`), not here.
            workers.exited.extend(mine);
            let left = self.thread_count.exited();
            self.exited.notify_all();
            (left == 0, earlier)
        };
        self.grow_for_stranded();
        if none_left {
            self.wake_all_inboxes();
            self.queue.wake_putters();
        }
        self.join_all(earlier);
    }

    /// As a worker leaves an open autoscaling pool: starts one for what is
    /// queued if no sleeper is left to take it. A dismissed worker counts
    /// as a sleeper until it wakes, so a put made between the dismissal
    /// and its wake-up starts no worker, and its wake-up may go to a
    /// worker that leaves without a look at the queue: with every worker
    /// dismissed, the request would wait for a `wait` on its handle to
    /// notice it (`Threads::stranded`), and a ticket's wait or a `poll`
    /// loop never would. The put pushes, fences and reads the sleepers;
    /// the leaving worker counted itself out of them under the queue's
    /// lock and fences before this look at the FIFO: of the two, at least
    /// one sees the other, so either the put starts a worker or this does.
    ///
    /// Children held in a running callable's slot count too: held while
    /// the pool was at its maximum with no sleeper, they wait for a worker
    /// to run out of work, and a dismissed busy worker leaves without that
    /// look; a parent waiting for its child then waited for ever with the
    /// pool below its maximum. The worker started here finds the FIFO
    /// empty and queues them before it sleeps. The child's `Nursery::hold`
    /// raises `held` and then reads the live count that the dismissal
    /// published before this worker learnt of it: the same pair as
    /// `Autoscale::retire_idle`'s, with the fence below.
    fn grow_for_stranded(self: &Arc<Self>) {
        if self.autoscale.is_none() || self.lifecycle() != Lifecycle::Open {
            return;
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        if !self.queue.fifo_is_empty() || self.nursery.any() {
            self.grow_for_backlog(1);
        }
    }
}
