//! The thread counts that `wait` trusts (`src/pool/thread_count.rs`), as
//! they ship: a waiter asks whether its request is stranded
//! (`ThreadCount::stranded`, its look at the real request queue, its growth
//! through the shipped `Autoscale` decisions) while a put queues the
//! request and a worker starts, takes it, runs it and retires at once (a
//! keep-alive of nothing): (r1), and in a pool that can start no thread,
//! (r2). The registry is a model one: the checker's mutex around the live
//! workers' flags and their threads, counted in and out as
//! `pool/registry.rs` counts them (a thread counted once spawned, waiting
//! for the lock before it takes; counted out under the lock as it leaves).
//! `docs/design.md`, "Counting threads".
//!
//! The scenarios are generic over [`Count`], so that the seeded self-check
//! runs (r1) over [`ExitUnraised`], the counts with R7's bug, in the
//! scenario every shipped run goes through; the shipped counts have no bug
//! switch.

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering as StdOrdering;

use super::*;
use crate::pool::queue::Retirement;
use crate::pool::scale::{Autoscale, Roster, Scale};
use crate::pool::thread_count::ThreadCount;

/// The thread counts as a scenario uses them: the shipped [`ThreadCount`],
/// or a seeded broken one ([`ExitUnraised`]).
pub(super) trait Count: Send + Sync + 'static {
    fn new() -> Self;
    fn started(&self);
    fn exited(&self) -> usize;
    fn running(&self) -> usize;
    fn stranded(&self, queued: &dyn Fn() -> bool, grow: &dyn Fn()) -> bool;
}

impl Count for ThreadCount {
    fn new() -> Self {
        ThreadCount::new()
    }
    fn started(&self) {
        ThreadCount::started(self)
    }
    fn exited(&self) -> usize {
        ThreadCount::exited(self)
    }
    fn running(&self) -> usize {
        ThreadCount::running(self)
    }
    fn stranded(&self, queued: &dyn Fn() -> bool, grow: &dyn Fn()) -> bool {
        ThreadCount::stranded(self, queued, grow)
    }
}

/// Seeded bug (the third mutation round's R7): an exit lowers the count
/// without raising the count of exits. With exits never raised, the
/// shipped `stranded` answers "queued, and no thread after the growth":
/// what this one answers. (r1) must catch it.
pub(super) struct ExitUnraised {
    running: AtomicUsize,
}

impl Count for ExitUnraised {
    fn new() -> Self {
        ExitUnraised {
            running: AtomicUsize::new(0),
        }
    }
    fn started(&self) {
        self.running.fetch_add(1, Ordering::SeqCst);
    }
    fn exited(&self) -> usize {
        self.running.fetch_sub(1, Ordering::SeqCst) - 1
    }
    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
    fn stranded(&self, queued: &dyn Fn() -> bool, grow: &dyn Fn()) -> bool {
        if !queued() {
            return false;
        }
        grow();
        self.running() == 0
    }
}

/// The registry as the scenarios need it: live workers' flags, every
/// worker thread started (to join at the end), and how many started.
struct Registry {
    live: Vec<Arc<WorkerFlags>>,
    threads: Vec<thread::JoinHandle<()>>,
    started: usize,
}

/// How many threads the OS gives a scenario's pool; a start past them
/// fails (`start_one` starts none, as on a spawn error).
#[derive(Clone, Copy, Debug)]
pub(super) enum Os {
    /// As many as asked for.
    Gives,
    /// One, then no more.
    GivesOne,
    /// None.
    Refuses,
}

impl Os {
    fn gives(self, started: usize) -> bool {
        match self {
            Os::Gives => true,
            Os::GivesOne => started == 0,
            Os::Refuses => false,
        }
    }
}

/// One scenario's pool: the real queue, the shipped decisions (scaling
/// between 0 and 1 worker), the model registry under the checker's mutex,
/// the thread counts, and how many requests the workers ran (recorded
/// outside the model).
struct Pool<C> {
    queue: RequestQueue<u64>,
    autoscale: Autoscale,
    registry: Mutex<Registry>,
    count: C,
    os: Os,
    ran: StdAtomicUsize,
}

/// The registry locked, for one caller: `me` is the worker asking to
/// retire.
struct Locked<'a, C: Count> {
    registry: &'a mut Registry,
    pool: &'a Arc<Pool<C>>,
    me: Option<&'a Arc<WorkerFlags>>,
}

impl<C: Count> Roster for Locked<'_, C> {
    fn live(&self) -> usize {
        self.registry.live.len()
    }

    fn open(&self) -> bool {
        self.pool.queue.lifecycle() == Lifecycle::Open
    }

    fn retire_me(&mut self) -> bool {
        let Some(me) = self.me else {
            return false;
        };
        let Some(at) = self.registry.live.iter().position(|w| Arc::ptr_eq(w, me)) else {
            return false;
        };
        let me = self.registry.live.remove(at);
        self.pool.queue.dismiss(std::iter::once(&*me));
        true
    }

    /// As `Pool::spawn_worker`: the thread is counted once spawned, and
    /// waits for this lock before it does anything.
    fn start_one(&mut self) {
        if !self.pool.os.gives(self.registry.started) {
            return;
        }
        let flags = Arc::new(WorkerFlags::new());
        let (pool, me) = (Arc::clone(self.pool), Arc::clone(&flags));
        let handle = thread::spawn(move || work(pool, me));
        self.pool.count.started();
        self.registry.live.push(flags);
        self.registry.threads.push(handle);
        self.registry.started += 1;
    }
}

impl<C: Count> Pool<C> {
    fn new(os: Os) -> Arc<Pool<C>> {
        Arc::new(Pool {
            queue: RequestQueue::new(None),
            autoscale: Autoscale::new(Scale {
                min: 0,
                max: 1,
                keep_alive: None,
            }),
            registry: Mutex::new(Registry {
                live: Vec::new(),
                threads: Vec::new(),
                started: 0,
            }),
            count: C::new(),
            os,
            ran: StdAtomicUsize::new(0),
        })
    }
}

/// As `Pool::grow_for_backlog`: the lock-free look, then growing under
/// the registry's lock.
fn grow<C: Count>(pool: &Arc<Pool<C>>, wanted: usize) {
    if pool.autoscale.may_need_worker(&pool.queue) {
        let mut registry = pool.registry.lock().unwrap();
        pool.autoscale.grow(
            &mut Locked {
                registry: &mut registry,
                pool,
                me: None,
            },
            wanted,
        );
    }
}

/// `ThreadPool::put` on an autoscaling pool: push (which fences), then
/// grow.
fn put<C: Count>(pool: &Arc<Pool<C>>, job: u64) {
    assert!(matches!(pool.queue.push(job), Push::Queued));
    grow(pool, 1);
}

/// A waiter's look once its result queue came up empty, as
/// `Results::block` and `Threads::stranded` for `Pool` make it, for its
/// one pending request: with no thread running, whether the request is
/// stranded (`None`: it saw a thread, and would block). `looked` records
/// whether the look at the queue found it there.
fn waiter_looks<C: Count>(pool: &Arc<Pool<C>>, looked: &StdAtomicUsize) -> Option<bool> {
    if pool.count.running() > 0 {
        return None;
    }
    let queued = || {
        let queued = pool.queue.lifecycle() != Lifecycle::Closed && pool.queue.count(|_| true) >= 1;
        looked.store(usize::from(queued), StdOrdering::SeqCst);
        queued
    };
    Some(pool.count.stranded(&queued, &|| grow(pool, 1)))
}

impl<C: Count> Pool<C> {
    /// Every worker thread joined, those started by other workers too.
    fn join_workers(&self) {
        loop {
            let Some(handle) = self.registry.lock().unwrap().threads.pop() else {
                return;
            };
            handle.join().unwrap();
        }
    }
}

/// A worker with a keep-alive of nothing: once counted (it waits for the
/// registry's lock, as a spawned worker does), it takes what is queued,
/// runs it, and asks to retire (the shipped decision), until it may; then
/// it is counted out under the registry's lock (`Pool::worker_exited`).
fn work<C: Count>(pool: Arc<Pool<C>>, me: Arc<WorkerFlags>) {
    drop(pool.registry.lock().unwrap());
    loop {
        if pool.queue.take_first(|_| true).is_some() {
            pool.ran.fetch_add(1, StdOrdering::SeqCst);
        }
        let mut registry = pool.registry.lock().unwrap();
        let retired = pool.autoscale.retire_idle(
            &mut Locked {
                registry: &mut registry,
                pool: &pool,
                me: Some(&me),
            },
            &pool.queue,
            || false,
        );
        match retired {
            Retirement::Retired => break,
            // A request is queued: take it first.
            Retirement::NotNow => continue,
            Retirement::Stays => unreachable!("open, live and above the minimum of 0"),
        }
    }
    let _registry = pool.registry.lock().unwrap();
    pool.count.exited();
}

/// (r1) An autoscaling pool (0 to 1 worker) with no thread: a waiter looks
/// while a put queues its request and grows the pool, and the worker
/// started takes the request, runs it and retires at once; the OS gives
/// threads, or only that first one (so that the waiter's own growth, once
/// the worker left, starts none). The request runs exactly once, and the
/// waiter never takes it for stranded: the worker shows in the count, or
/// in the exits since before the waiter's look at the queue (R7, an exit
/// that does not raise them, must be caught; so is a read of the exits
/// after the look, with `Os::GivesOne`).
pub(super) fn a_worker_runs_and_leaves_as_a_waiter_looks<C: Count>(os: Os) {
    let pool = Pool::<C>::new(os);
    let waiter = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || waiter_looks(&pool, &StdAtomicUsize::new(0)))
    };
    put(&pool, 1);
    let verdict = waiter.join().unwrap();
    pool.join_workers();
    assert_eq!(
        pool.ran.load(StdOrdering::SeqCst),
        1,
        "the request ran once"
    );
    assert_ne!(
        verdict,
        Some(true),
        "the waiter took a request a worker ran for stranded"
    );
    assert_eq!(pool.count.running(), 0, "every worker counted out");
}

/// (r2) The same pool, where the OS gives no thread: the waiter that found
/// its request queued takes it for stranded (`wait` then reports
/// `NoWorkersAvailable` instead of blocking for ever), and one that looked
/// before the put does not.
pub(super) fn a_pool_that_can_start_no_thread_strands_the_request<C: Count>() {
    let pool = Pool::<C>::new(Os::Refuses);
    let looked = std::sync::Arc::new(StdAtomicUsize::new(0));
    let waiter = {
        let (pool, looked) = (Arc::clone(&pool), looked.clone());
        thread::spawn(move || waiter_looks(&pool, &looked))
    };
    put(&pool, 1);
    let verdict = waiter.join().unwrap();
    let found_queued = looked.load(StdOrdering::SeqCst) == 1;
    assert_eq!(
        verdict,
        Some(found_queued),
        "a waiter that found its request queued, with no thread to run it, \
         must take it for stranded (and only then)"
    );
    assert_eq!(pool.ran.load(StdOrdering::SeqCst), 0);
    assert_eq!(pool.queue.len(), 1, "the request is still queued");
}
