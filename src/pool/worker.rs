//! The worker thread's loop: takes requests from the shared queue, runs
//! them, and sends each finished request back to the handle that put it.
//!
//! ```text
//!   start ──► BUSY ◄──────────────┐
//!              │ queue empty      │ request queued (notify_one)
//!              │ (children held   │
//!              │  in slots: queue │
//!              │  them, look again)
//!              ▼                  │
//!             IDLE (condvar wait; timed only above an ──┘
//!              │  autoscaling pool's minimum)
//!              │ dismissed / pool closed (notify_all) / keep-alive ended
//!              ▼
//!   exit ◄── (draining? run what is queued first)
//! ```

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::thread;

use crate::inbox::{Inbox, Job, Msg};
use crate::pool::handshake::WorkerFlags;
use crate::pool::nursery::Slot;
use crate::pool::pace::Pace;
use crate::pool::queue::{Admit, BeforeSleep, Idle, Lifecycle, Push};
use crate::pool::stats::Tally;
use crate::pool::{Helped, Pool};
use crate::request::context::{Closed, Item, Refusal, Spawner};
use crate::request::ended::Ended;
use crate::request::task::{BoxedTask, Route, SharedJob};
use crate::request::{RequestId, WorkRequest};
use crate::sync::{seq_cst_pair, CachePadded};

/// How many finished requests' handle references a worker keeps before
/// letting go of them together (see `run`).
const SPENT_BATCH: usize = 64;

/// How many requests a running callable adds before the worker hands them
/// to the queue together (see `Children`).
const CHILD_BATCH: usize = 64;

/// The body of a worker thread, its start hook and state included. `flags`
/// holds this worker's dismissal flag.
pub(crate) fn run(pool: &Arc<Pool>, flags: Arc<WorkerFlags>, index: usize) {
    let here = Rc::new(Here {
        pool: Arc::clone(pool),
        flags,
        // Made after the start hook (set below).
        state: OnceCell::new(),
        index,
        tally: pool.tallies.join(),
        // Where this worker's running callable leaves its children until
        // they are queued (`Children`), reachable by other workers and
        // `cancel`.
        slot: pool.nursery.join(CHILD_BATCH),
    });
    // Accounts for the exit on every path, a panic in this loop included.
    let _exit = ExitGuard {
        pool,
        tally: Arc::clone(&here.tally),
        slot: Arc::clone(&here.slot),
    };
    let installed = Installed::new(&here);
    // Installed first: a wait in the start hook for a request of this pool
    // (a ticket's) runs it here, as one inside a callable does; on a pool
    // whose only worker this is, it would otherwise wait for itself.
    if let Some(hook) = &pool.config.on_worker_start {
        hook.call("a worker start hook", index);
    }
    if let Some(state) = pool
        .config
        .worker_state
        .as_ref()
        .and_then(|make| make.make(index))
    {
        // Set once, here, before any request of the loop borrows it.
        let _ = here.state.set(RefCell::new(state));
    }
    // Each job holds a reference to its handle's inbox, cloned by the
    // putting thread. Dropping it here at once would move the reference
    // count's cache line to this core for every request, and the next put
    // would wait to get it back; dropping them in batches moves it once per
    // batch. All are let go of before the worker sleeps, so a sleeping
    // worker keeps no handle's inbox (and the results in it) alive.
    let mut spent: Vec<Arc<Inbox>> = Vec::with_capacity(SPENT_BATCH);
    // An autoscaling pool's idle worker may leave after its keep-alive.
    let flags = &*here.flags;
    let retire = || pool.retire_idle(flags);
    let above_min = || pool.above_min();
    let idle = pool
        .config
        .scale
        .and_then(|scale| scale.keep_alive)
        .map(|after| Idle {
            after,
            retire: &retire,
            above_min: &above_min,
        });
    let mut pace = Pace::new();
    let worker = here.this();
    loop {
        if spent.len() == SPENT_BATCH {
            spent.clear();
        }
        let before_sleep = Idler {
            pool,
            flags,
            spent: &mut spent,
        };
        let Some(job) = pool
            .queue
            .take(flags, &mut pace, before_sleep, idle.as_ref())
        else {
            break;
        };
        if let Some(inbox) = execute(pool, job, &worker) {
            spent.push(inbox);
        }
        pace.ran();
    }
    hand_back_spent();
    drop(installed);
    // Before the exit is counted (`ExitGuard`): the state's `Drop` and the
    // stop hook are this worker's last work, and `shutdown_timeout` and
    // `join_all_dismissed_workers` wait for them. A panicking `Drop` of the
    // state must not skip the hook.
    let mut here = Rc::try_unwrap(here).ok();
    let state = here.as_mut().and_then(|here| here.state.take());
    crate::unwind::drop_contained("a worker's state", state);
    if let Some(hook) = &pool.config.on_worker_stop {
        // Reachable again, stateless, while the hook runs: a wait in it
        // for a request of this pool (an `install`) runs that request
        // here, as one in the start hook does; the thread still counts as
        // running, so on the last worker it would wait for itself.
        let _installed = here.map(|here| Installed::new(&Rc::new(here)));
        hook.call("a worker stop hook", index);
    }
}

thread_local! {
    /// The emptied boxes (callables consumed) of executed requests this
    /// worker ran for one handle, handed back to that handle in batches
    /// of [`SPENT_BATCH`] (see `end_in_place`).
    static SPENT: RefCell<SpentBoxes> = const {
        RefCell::new(SpentBoxes {
            inbox: None,
            boxes: Vec::new(),
        })
    };
    /// This thread's worker while its loop runs: what a wait inside one of
    /// its callables needs to run that wait's own requests here (`help`).
    static HERE: RefCell<Option<Rc<Here>>> = const { RefCell::new(None) };
}

/// A worker, as its loop and the requests it runs in a wait (`help`) see
/// it.
struct Here {
    pool: Arc<Pool>,
    flags: Arc<WorkerFlags>,
    /// Its own state (`Builder::worker_state`), once made.
    state: OnceCell<RefCell<Box<dyn Any>>>,
    index: usize,
    tally: Arc<CachePadded<Tally>>,
    slot: Arc<Slot<Job>>,
}

impl Here {
    fn this(&self) -> This<'_> {
        This {
            flags: &self.flags,
            state: &self.state,
            index: self.index,
            tally: &self.tally,
            slot: &self.slot,
        }
    }
}

/// Makes a worker reachable through `HERE` while it lives, on every path
/// out of its loop.
struct Installed;

impl Installed {
    fn new(here: &Rc<Here>) -> Installed {
        HERE.with(|slot| *slot.borrow_mut() = Some(Rc::clone(here)));
        Installed
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        // Taken out before it drops: a `Drop` of the state must not find
        // the thread-local borrowed.
        let here = HERE.with(|slot| slot.borrow_mut().take());
        drop(here);
    }
}

/// Runs here, on this worker's thread, one request for which `mine` holds
/// that no worker has started yet (queued, or held in a slot), and returns
/// how many it took (0 or 1); 0 unless this thread is one of `pool`'s
/// workers.
///
/// For a wait inside one of this worker's callables (a scope's, a
/// collector's) for requests of its own: with every other worker busy, or
/// waiting likewise, they would otherwise wait for a worker while this one
/// waits for them. Run as this worker's loop runs a request: children,
/// joins and the worker's state as for any request of this worker.
///
/// One at a time, the waiting caller calling again for the next: the
/// others stay queued for the pool's free workers meanwhile. Taken all at
/// once, they would run one after the other here while free workers found
/// them gone, and one that waits for a sibling to start (a rendezvous)
/// would wait for ever for a sibling held on this worker's stack.
pub(crate) fn help(pool: &Arc<Pool>, mine: impl Fn(&Job) -> bool + Copy) -> usize {
    match HERE.with(|slot| slot.borrow().clone()) {
        Some(here) if Arc::ptr_eq(&here.pool, pool) => run_here(&here, mine),
        _ => 0,
    }
}

/// [`help`] for a wait that does not know its pool (a ticket's): looks in
/// the pool of the worker running on this thread, if any.
pub(crate) fn help_here(mine: impl Fn(&Job) -> bool + Copy) -> usize {
    match HERE.with(|slot| slot.borrow().clone()) {
        Some(here) => run_here(&here, mine),
        None => 0,
    }
}

fn run_here(here: &Here, mine: impl Fn(&Job) -> bool + Copy) -> usize {
    let pool = &here.pool;
    let Some(helped) = pool.take_to_help(mine) else {
        return 0;
    };
    match helped {
        Helped::Cancel(job) => cancel_children(pool, vec![job]),
        Helped::Run(job) => drop(execute(pool, job, &here.this())),
    }
    1
}

/// Runs one request and sends it back to its handle; returns the job's
/// reference to that handle's inbox (a ticket's job has none). A panic in
/// the callable is caught inside the task's `run`; the worker lives on. Inlined into
/// the worker's loop, where it runs per request: a second caller
/// (`help`, rarely run) must not leave it out of line.
#[inline(always)]
fn execute(pool: &Arc<Pool>, job: Job, worker: &This<'_>) -> Option<Arc<Inbox>> {
    // Running from here until its end is counted (`Stats::running`): each
    // path below counts it once, before anyone hears of its outcome (a
    // join's half, never counted, withdraws it before its join hears).
    worker.tally.take();
    match job {
        Job::Boxed { mut task, inbox } => {
            // No per-request logging here: it would read the `log` crate's
            // level, a global whose cache line may hold a value the polling
            // thread writes per result (`docs/performance.md`, "A worker's
            // log call per request").
            let children = Children {
                pool,
                inbox: &inbox,
                worker,
                added: Cell::new(0),
                offered: Cell::new(false),
            };
            task.run(&children);
            // A collector's request counted itself (`Spawner::count`) and
            // settled its outcome already.
            let route = task.route();
            let to_inbox = route == Route::Inbox;
            if to_inbox {
                worker.tally.count(task.ended());
            }
            // Before the outcome goes back: the sooner the children are
            // queued, the sooner other workers run them (`wait` counts them
            // already).
            children.hand_off();
            if to_inbox {
                inbox.deliver(Msg::Done(task), || pool.sender_stuck());
            } else if route == Route::InPlace {
                end_in_place(task, &inbox, worker.tally);
            }
            // (A join's half withdrew its take as its piece ended,
            // `Spawner::piece_done`.)
            Some(inbox)
        }
        Job::Shared(job) => {
            run_shared(job, worker.tally);
            None
        }
    }
}

/// An executed request has run: nobody hears its outcome, so it is counted
/// and ends here (its children, handed off before, are pending already;
/// counted before it stops being pending, so that a `wait` that returns
/// finds it in the statistics). Its box, which holds nothing of the
/// user's any more (the callable was consumed), goes to [`SPENT`], on its
/// way back to the handle: freed here one at a time, each went back to
/// the arena of the thread that made it while that thread was making the
/// next, and the submitting thread of rust-threadpool's pattern spent most
/// of its time in the allocator (`docs/performance.md`, *Fire and
/// forget*). Out of line: inlined into the worker's loop, it costs the
/// callback path about 15 instructions per request under callgrind.
#[inline(never)]
fn end_in_place(task: BoxedTask, inbox: &Arc<Inbox>, tally: &Tally) {
    tally.count(task.ended());
    // An executed request's id is always automatic (`request::in_place`),
    // so no user-chosen id is freed: its end skips reading the id (a
    // virtual call per request).
    debug_assert!(!task.id().is_user_chosen());
    SPENT.with(|spent| spent.borrow_mut().keep(task, inbox));
    inbox.end_pending();
}

/// Emptied boxes of executed requests of one handle, on their way back to
/// it (`Inbox::keep_spent`): the thread that executes the next request
/// there frees them (`Inbox::take_spent`), and that is usually the thread
/// that made them, whose allocator then reuses them without a trip
/// through another thread's arena.
struct SpentBoxes {
    /// Their handle's inbox, held weakly: a worker that stays busy with
    /// other handles' requests (it neither idles nor runs another executed
    /// request) would otherwise keep a dropped handle's inbox alive, and
    /// with it the results left unpolled in its result queue, for as long
    /// as it never runs out of work. (The allocation stays while this is
    /// held, so its address is never another inbox's meanwhile.)
    inbox: Option<Weak<Inbox>>,
    boxes: Vec<BoxedTask>,
}

impl SpentBoxes {
    /// Inlined into `end_in_place`, once per executed request: out of
    /// line, its frame and the thread-local's look around it cost about
    /// 40 instructions per request.
    #[inline]
    fn keep(&mut self, task: BoxedTask, inbox: &Arc<Inbox>) {
        if !self
            .inbox
            .as_ref()
            .is_some_and(|own| std::ptr::eq(own.as_ptr(), Arc::as_ptr(inbox)))
        {
            self.hand_back();
            self.inbox = Some(Arc::downgrade(inbox));
        }
        self.boxes.push(task);
        if self.boxes.len() == SPENT_BATCH {
            self.hand_back();
        }
    }

    /// Hands the boxes to their handle, if it is still there; frees here
    /// what it would not take.
    fn hand_back(&mut self) {
        if let Some(inbox) = self.inbox.take().and_then(|inbox| inbox.upgrade()) {
            inbox.keep_spent(&mut self.boxes);
        }
        self.boxes.clear();
    }
}

/// Hands this worker's emptied boxes back to their handle, and lets go of
/// it: before the worker idles or leaves, so that the boxes wait there, to
/// be freed by the next execute, rather than on a sleeping worker. (The
/// handle itself is only held weakly meanwhile: see `SpentBoxes::inbox`.)
fn hand_back_spent() {
    // `try_with`: never during the thread's own exit.
    let _ = SPENT.try_with(|spent| spent.borrow_mut().hand_back());
}

/// A ticket's request: it settles its outcome into the ticket, and its
/// callable is given no way to add requests. Out of line (cold), so that
/// the worker's loop stays compact for the callback path.
#[cold]
#[inline(never)]
fn run_shared(mut job: SharedJob, tally: &Tally) {
    // Counted before the ticket hears, so that its holder finds it counted.
    job.run(&|ended| tally.count(ended));
}

/// The requests a running callable adds through its `Context`, on its own
/// handle. Each is counted in the handle's `pending` at once (while the
/// parent, still pending, keeps `wait` from returning), held in the
/// worker's slot (`pool::nursery`), then queued with its siblings in
/// batches of up to [`CHILD_BATCH`], one reservation and one wake-up round
/// per batch (`RequestQueue::push_many`), sooner while a worker sleeps or
/// an autoscaling pool may grow (see `spawn`), and at the latest when the
/// callable returns. A worker about to sleep queues what the slots hold
/// (`Idler`), so no child waits for its parent while a worker is idle; and
/// no worker keeps a request of its own past the request that made it.
struct Children<'a> {
    pool: &'a Arc<Pool>,
    inbox: &'a Arc<Inbox>,
    worker: &'a This<'a>,
    /// Children this callable has added so far (the halves of its joins
    /// are not children: see `offered`).
    added: Cell<usize>,
    /// Whether a join of this callable offered a half through the slot.
    /// Halves do not count towards the every-[`CHILD_BATCH`]th rule: a
    /// join takes its half back from the slot, so counted there, every
    /// `CHILD_BATCH`th join of a callable whose other workers are busy
    /// would queue its half only to take it back, leaving a no-op job in
    /// the queue until a worker comes free (one per `CHILD_BATCH` joins,
    /// without bound).
    offered: Cell<bool>,
}

/// The worker running the request.
struct This<'a> {
    flags: &'a WorkerFlags,
    /// Its own state (`Builder::worker_state`).
    state: &'a OnceCell<RefCell<Box<dyn Any>>>,
    index: usize,
    tally: &'a Tally,
    /// Where its running callable's children wait to be queued.
    slot: &'a Slot<Job>,
}

impl Spawner for Children<'_> {
    fn spawn(&self, request: WorkRequest) -> Result<RequestId, Refusal> {
        self.hold(request, false)
    }

    fn emit(&self, item: Item) -> Result<(), Closed> {
        self.send_item(item)
    }

    fn worker_state(&self) -> Option<&RefCell<Box<dyn Any>>> {
        self.worker.state.get()
    }

    fn worker_index(&self) -> Option<usize> {
        Some(self.worker.index)
    }

    fn count(&self, ended: Ended) {
        self.worker.tally.count(ended);
    }

    fn offer(&self, half: WorkRequest) -> bool {
        // As a child: held in the slot, queued by the same rules (but the
        // every-`CHILD_BATCH`th, see `offered`), so an idle worker takes
        // it. Refused, as a child is, once the pool no longer accepts
        // requests.
        self.hold(half, true).is_ok()
    }

    fn spawn_executed(&self, request: WorkRequest) -> Result<RequestId, Refusal> {
        self.inbox.take_spent();
        self.hold(request, false)
    }

    fn piece_done(&self) {
        self.worker.tally.withdraw_take();
    }

    fn reclaim(&self, half: *const ()) {
        let mine = self
            .pool
            .nursery
            .take_last_where(self.worker.slot, |job| job.is_half_at(half));
        // Dropped after the slot's lock is released: a half's job holds
        // nothing of the user's, but a job's `Drop` is kept out of locks.
        drop(mine);
    }
}

impl Children<'_> {
    /// Holds a child, or the half a join offers (`half`), in the slot,
    /// and queues the slot's jobs when that is due.
    fn hold(&self, request: WorkRequest, half: bool) -> Result<RequestId, Refusal> {
        // Counted on the handle before the lifecycle is read, as a handle's
        // put is: a graceful shutdown moves the lifecycle and then waits
        // for nothing pending (both `SeqCst`), so either this put sees the
        // move and is refused, or the shutdown's wait counts the child and
        // handles its outcome. The parent's own count cannot stand in: a
        // ticket's or a scope's request is not pending on the handle.
        let (id, job) = match Job::register(request.into_task(), self.inbox) {
            Ok(registered) => registered,
            Err(task) => {
                let request = WorkRequest::from_task(task);
                return Err(if self.pool.queue.lifecycle() == Lifecycle::Open {
                    Refusal::DuplicateId(request)
                } else {
                    Refusal::ShutDown(request)
                });
            }
        };
        // Refused at once when the pool no longer accepts requests, so the
        // callable hears it; a close after this is caught below and by
        // `hand_off`. The pair's fence, for the checkers (the count's
        // `SeqCst` rise, then this `SeqCst` read): model (g12).
        seq_cst_pair();
        if self.pool.queue.lifecycle() != Lifecycle::Open {
            job.unregister();
            return Err(Refusal::ShutDown(job.into_request()));
        }
        let first = self.pool.nursery.hold(self.worker.slot, job);
        // Closed since the look above: the closer's take may have looked
        // at the slot before the child was in it. SeqCst: the lifecycle
        // was moved (`stop`) before the sweep looked at the slots, and is
        // read here after the child went in (the slot's lock, or `held`'s
        // SeqCst rise, orders the two looks).
        if self.pool.queue.lifecycle() == Lifecycle::Closed {
            return self.held_as_closed(id);
        }
        let child_due = if half {
            self.offered.set(true);
            false
        } else {
            let added = self.added.get() + 1;
            self.added.set(added);
            added % CHILD_BATCH == 0
        };
        // With every [`CHILD_BATCH`]th child (a join's half is not one),
        // whatever the slot holds then (a callable that adds that many can
        // count on all of them being queued); and at once when the slot
        // was empty while a worker sleeps with nothing to do (one being
        // woken already is not counted): it would not look at the slot
        // until woken. A worker that sleeps later looks at the slots first
        // (`Idler`), so a slot
        // that already held a child needs no look: the pair of `SeqCst`
        // accesses (`Nursery::hold`, then this read; the sleeper's count,
        // then `Nursery::any`) makes one of the two see the other. So too
        // while an autoscaling pool may grow: queued, the child starts a
        // worker (`grow_for_backlog`), as a put does; a worker retiring
        // meanwhile looks at the slots after publishing the smaller count
        // (`Autoscale::retire_idle`), and so does a dismissed worker as it
        // leaves (`Pool::grow_for_stranded`).
        if child_due || (first && self.first_child_wanted_now()) {
            self.hand_off();
        }
        Ok(id)
    }

    /// For a first child into an empty slot: whether a worker sleeps with
    /// nothing to do (one being woken already is not counted), or the pool
    /// may grow; either way the child must be queued now (see `hold`).
    fn first_child_wanted_now(&self) -> bool {
        // The read halves of the store-buffering pairs with a worker going
        // to sleep and with one retiring (the slot's `held` rose first,
        // `SeqCst`, in `Nursery::hold`): a fence under loom, which weakens
        // `SeqCst` loads; nothing elsewhere.
        seq_cst_pair();
        !self.pool.queue.none_to_wake() || self.pool.may_grow()
    }

    /// A child held as the pool closed: once the closer's take is done,
    /// refused (handed back to the callable, as a put after the close is)
    /// if that take missed it, or left to the closer, which hands it back
    /// to its handle or cancels it, if it did not.
    #[cold]
    fn held_as_closed(&self, id: RequestId) -> Result<RequestId, Refusal> {
        self.pool.after_close();
        // Only this worker holds in its slot, so the child is the last
        // there with its id, if it is there at all.
        match self
            .pool
            .nursery
            .take_last_where(self.worker.slot, |job| job.id() == id)
        {
            Some(job) => {
                job.unregister();
                Err(Refusal::ShutDown(job.into_request()))
            }
            None => Ok(id),
        }
    }

    /// Sends a streaming request's item back as its results go (blocking
    /// on a full bounded result queue); whether the handle took it.
    fn send_item(&self, item: Item) -> Result<(), Closed> {
        let msg = Msg::Item(item);
        if self
            .inbox
            .send_from_worker(msg, || self.pool.sender_stuck())
        {
            Ok(())
        } else {
            Err(Closed)
        }
    }

    /// Queues the requests added and still held in the slot (other
    /// workers may have queued some of them already).
    #[inline(always)]
    fn hand_off(&self) {
        // Most requests add nothing: their slot is not even locked. The
        // look inline, the hand-off out of line: called after every
        // request, a call that sets up the whole hand-off's frame only to
        // return cost each request about 15 instructions.
        if self.added.get() != 0 || self.offered.get() {
            self.hand_off_held();
        }
    }

    /// [`hand_off`](Self::hand_off) for a callable that added something.
    #[inline(never)]
    fn hand_off_held(&self) {
        // What a full queue refused (never, see `children_pushed`) comes
        // out of the slot with it, to be cancelled after the slot's lock is
        // released (a cancelled child's `Drop` is user code). Refused as
        // the pool closed, they stay in the slot for the closer's take,
        // which looks here after this hand-off.
        let pushed = self
            .pool
            .nursery
            .queue_from(self.worker.slot, |jobs| push_children(self.pool, jobs, 0));
        match pushed {
            Some(Some(pushed)) => children_pushed(self.pool, self.worker.flags, pushed),
            Some(None) => {
                // Once the closer's take is done, what it left here is
                // cancelled, not stranded: nothing, by the protocol (the
                // take looks at this slot after this hand-off, and a child
                // held after that look is refused, `held_as_closed`).
                self.pool.after_close();
                let missed = self
                    .pool
                    .nursery
                    .queue_from(self.worker.slot, std::mem::take)
                    .unwrap_or_default();
                cancel_children(self.pool, missed);
            }
            None => {}
        }
    }
}

/// Queues a slot's children, under its lock (by their own worker or
/// another); see `children_pushed` for what became of them. `takers`:
/// workers about to take from the queue besides the sleeping ones (an
/// idle worker pushing other workers' children takes one itself).
///
/// `None`: the pool closed, and the children are left in the slot
/// (`jobs`), where the closing sweep hands them back to their handle
/// (`shutdown_now`'s own requests are handed back, not cancelled to a
/// handle nobody polls), or their parent's worker cancels them.
fn push_children(
    pool: &Pool,
    jobs: &mut Vec<Job>,
    takers: usize,
) -> Option<(usize, Push<Vec<Job>>)> {
    // Those that no worker will take: an autoscaling pool starts one each.
    let unclaimed = jobs.len().saturating_sub(pool.queue.asleep() + takers);
    match pool.queue.push_many(jobs, Admit::UntilClosed) {
        Push::Closed(refused) => {
            *jobs = refused;
            None
        }
        pushed => Some((unclaimed, pushed)),
    }
}

/// After `push_children`, by the worker that pushed: if the pool closed
/// meanwhile, the children are cancelled (each to its callback or ticket),
/// as a closing sweep would have done had they been queued.
fn children_pushed(
    pool: &Arc<Pool>,
    flags: &WorkerFlags,
    (unclaimed, pushed): (usize, Push<Vec<Job>>),
) {
    match pushed {
        Push::Queued => {
            // Accepted while the pool was open, queued as it drains: they
            // run before the shutdown ends. This worker, if it was
            // dismissed before the drain, drains too, since the draining
            // workers may have left already (the queue was empty to them).
            if pool.queue.lifecycle() == Lifecycle::Draining {
                flags.drain_if_dismissed();
            }
            pool.grow_for_backlog(unclaimed);
        }
        // Pushed as the pool closed: the closer's sweep may have missed
        // them, so sweep again (as a late put does).
        Push::QueuedLate => {
            pool.sweep_late();
        }
        // (`push_many` is never `Full`: a slot's children go past the
        // capacity; were it ever, the batch is cancelled, not lost.)
        Push::Closed(jobs) | Push::Full(jobs) => cancel_children(pool, jobs),
    }
}

/// Cancels jobs that will never be queued (each request to its callback
/// or ticket), counting the requests among them as cancelled (a join's
/// half is none).
fn cancel_children(pool: &Pool, jobs: Vec<Job>) {
    pool.count_cancelled(jobs.iter().filter(|job| job.is_request()).count());
    for job in jobs {
        job.cancel();
    }
}

/// What a worker does before it sleeps: lets go of the handle references
/// it kept (`spent`), so a sleeping worker keeps no handle's inbox alive,
/// and queues the children that running callables hold in their slots,
/// which would otherwise wait for their parents while this worker sleeps.
struct Idler<'a> {
    pool: &'a Arc<Pool>,
    flags: &'a WorkerFlags,
    spent: &'a mut Vec<Arc<Inbox>>,
}

impl BeforeSleep for Idler<'_> {
    fn found_empty(&mut self) {
        hand_back_spent();
    }

    fn prepare(&mut self) -> bool {
        self.spent.clear();
        let pool = self.pool;
        // Refused as the pool closed, children stay in their slots (see
        // `push_children`) rather than being cancelled here.
        let pushes = pool.nursery.queue_all(|jobs| push_children(pool, jobs, 1));
        let mut any = false;
        for pushed in pushes.into_iter().flatten() {
            any = true;
            children_pushed(pool, self.flags, pushed);
        }
        any
    }

    fn held_elsewhere(&self) -> bool {
        self.pool.nursery.any()
    }
}

/// Accounts for a worker's exit when its loop ends, by any path: retires
/// its tally, cancels what its slot still holds, and counts it exited.
struct ExitGuard<'a> {
    pool: &'a Arc<Pool>,
    tally: Arc<CachePadded<Tally>>,
    slot: Arc<Slot<Job>>,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        log::debug!(
            "callpool: worker {} exiting",
            thread::current().name().unwrap_or("?")
        );
        self.pool.tallies.retire(&self.tally);
        // Empty unless this worker's loop itself panicked between a child's
        // put and its hand-off: cancelled then, not lost.
        let left = self.pool.nursery.leave(&self.slot);
        if !left.is_empty() {
            cancel_children(self.pool, left);
        }
        self.pool.worker_exited(thread::current().id());
    }
}
