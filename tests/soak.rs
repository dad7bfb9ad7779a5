//! A seeded, reproducible soak test: per seed, a pool of a random shape
//! runs a random program from several threads that mixes every way of
//! handing work over (callbacks, fallible requests with deadlines,
//! `execute`, tickets, batches, streams, collectors, children put through a
//! `Context`, joins, `install` and its `try_`/`_timeout` forms, scopes whose
//! requests borrow, as-completed and in-order windows, `put_all`, a
//! collector's fallible streams (plain and `_then`), `timed` requests
//! whose callbacks read `timing()`, callbacks that put follow-ups through
//! a `WeakPool` of another handle, `as_completed` over tickets with more
//! pushed from its loop, and `ThreadPool::join` whose halves borrow), with
//! random panics in callables, callbacks and captures' `Drop`s, and
//! random control operations (resize, dismiss, create, cancel,
//! cancel_queued, wait_timeout, poll, handles made and dropped). It ends with `wait` + `shutdown`, `shutdown_now` (what comes
//! back is put again on a fresh pool) or the last handle dropped, then
//! checks that every accepted request ended in exactly one way, exactly
//! once, that no callable ran twice, that no callback ran on a worker,
//! that every capture was dropped exactly once, that `pending()` is 0
//! after the final `wait`, and that `stats()` and batches' progress agree
//! with what was recorded. A mid-program `shutdown_now` or `close` from a
//! thread of its own, a last burst that the ending finds queued (sometimes
//! with no worker left), parents whose children a shutdown meets held, and
//! tickets that must hear `Cancelled` once the pool closes are in it too.
//! Some ways add checks of their own: `put_all` refuses the request its
//! error holds and pulls none after it; a collector stream's items come in
//! order, before its one error if it fails; `timing()` is `Some` only in a
//! timed request's callbacks and names the worker its callable started
//! on; a push into `as_completed` gets the next index; a join returns
//! both halves' values.
//!
//! Only what the docs promise is checked. Where an outcome may be lost by
//! design (its handle dropped, a callback's panic through the put that
//! held it, `shutdown_now` discarding its handle's results), the request
//! is checked for "at most once" only. The program never does what the docs
//! name as a deadlock (a thread blocked on one handle while workers wait on
//! another handle's full result queue that nobody polls).
//!
//! `SOAK_SEED=n` reruns one seed; `SOAK_SEEDS=n` sets the count of the
//! long (ignored) run, `SOAK_FIRST=n` its first seed; `SOAK_DEBUG=1`
//! prints each seed's shape and the ending's steps. Nothing here is
//! decided by time: a per-seed watchdog turns a hang into an abort that
//! prints the seed, its shape, its phase and what each thread was doing.

mod common;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{
    make_requests, BatchError, CollectorEmitter, Context, Emitter, PutError, RequestId,
    ScopeContext, ShutdownError, TaskError, ThreadPool, Ticket, WaitError, WeakPool, WorkRequest,
};
use common::Rng;

/// The message every deliberate panic starts with.
const BOOM: &str = "soak-boom";
/// Worker thread names: the first pool's, and the fresh pool's that reruns
/// what `shutdown_now` handed back.
const W1: &str = "soakw";
const W2: &str = "soakx";
/// Long enough that only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Marks `rec` as put from the second pool's worker, if this is one.
fn note_pool(rec: &Rec) {
    if thread::current().name().is_some_and(|n| n.starts_with(W2)) {
        rec.second.store(true, SeqCst);
    }
}

fn on_worker() -> bool {
    thread::current()
        .name()
        .is_some_and(|n| n.starts_with(W1) || n.starts_with(W2))
}

fn boom(what: &str) -> ! {
    panic::panic_any(format!("{BOOM}: {what}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Callback,
    Exec,
    Ticket,
    Stream,
    Collected,
    /// `install`, `try_install` or `install_timeout`: borrows, its value
    /// or panic comes back to the caller.
    Installed,
    /// A scope's request: borrows, its outcome to a callback run here.
    Scoped,
    /// An input of `as_completed_fallible` or `imap_fallible`: its
    /// outcome comes out of the iterator.
    Windowed,
    /// A callback request put through `put_all`.
    PutAll,
    /// A collector's fallible stream: items come out as `(id, Ok(item))`,
    /// an error as one `(id, Err(e))` after them, and a successful return
    /// hands nothing on, so its callable notes it (`returned`).
    CollectedStream,
    /// A follow-up put by a result callback through a `WeakPool`.
    FollowUp,
    /// A ticket of `as_completed`, given at the start or pushed from its
    /// loop.
    Completed,
    /// `ThreadPool::join` from a program thread: one installed request.
    Joined,
}

/// Everything that happened to one request.
#[derive(Debug)]
struct Rec {
    kind: Kind,
    /// Outcomes may be lost without a fault (its handle dropped, a panic
    /// through the put or wait that held it, an ending that discards):
    /// only "at most once" is checked.
    relaxed: AtomicBool,
    /// A child not put yet (its parent may never run): nothing to check
    /// unless it is put.
    limbo: AtomicBool,
    /// Set when the handle its outcome comes back to is dropped.
    home: Mutex<Option<Arc<AtomicBool>>>,
    /// The callable started (first pool, second pool).
    ran: AtomicU32,
    ran_first: AtomicU32,
    /// The callable was made to panic (counted when it panics).
    panicked: AtomicU32,
    /// The callable returned an error.
    failed: AtomicU32,
    /// Endings.
    result: AtomicU32,
    err_failed: AtomicU32,
    err_panicked: AtomicU32,
    err_cancelled: AtomicU32,
    err_expired: AtomicU32,
    done: AtomicU32,
    ticket: AtomicU32,
    refused: AtomicU32,
    lost_in_panic: AtomicU32,
    handed_back: AtomicU32,
    /// An executed request's callable dropped unrun.
    unrun: AtomicU32,
    /// Stream items emitted and received.
    emitted: AtomicU32,
    items: AtomicU32,
    /// `cancel(id)` said true for it.
    cancel_true: AtomicU32,
    /// The guard the callable captures: dropped how many times.
    dropped: AtomicU32,
    /// Refused, yet ends on its collector as Cancelled (a refused
    /// `CollectorContext::add`): in no count of `stats()`.
    uncounted: AtomicU32,
    /// Put from a callable running on the second pool (a handed-back
    /// parent run again): its ending is that pool's, not in the first
    /// pool's `stats()`.
    second: AtomicBool,
    /// Join halves run.
    halves: AtomicU32,
    joined: AtomicU32,
    /// A collector stream's callable returned `Ok` (its end, which no
    /// outcome reports).
    returned: AtomicU32,
    /// Made with `timed()`; callbacks that read a timing.
    timed: AtomicBool,
    timings: AtomicU32,
    /// The index in the name of the worker its callable started on.
    worker: AtomicU32,
}

impl Rec {
    fn new(kind: Kind) -> Rec {
        Rec {
            kind,
            relaxed: AtomicBool::new(false),
            limbo: AtomicBool::new(false),
            home: Mutex::new(None),
            ran: AtomicU32::new(0),
            ran_first: AtomicU32::new(0),
            panicked: AtomicU32::new(0),
            failed: AtomicU32::new(0),
            result: AtomicU32::new(0),
            err_failed: AtomicU32::new(0),
            err_panicked: AtomicU32::new(0),
            err_cancelled: AtomicU32::new(0),
            err_expired: AtomicU32::new(0),
            done: AtomicU32::new(0),
            ticket: AtomicU32::new(0),
            refused: AtomicU32::new(0),
            lost_in_panic: AtomicU32::new(0),
            handed_back: AtomicU32::new(0),
            unrun: AtomicU32::new(0),
            emitted: AtomicU32::new(0),
            items: AtomicU32::new(0),
            cancel_true: AtomicU32::new(0),
            dropped: AtomicU32::new(0),
            uncounted: AtomicU32::new(0),
            second: AtomicBool::new(false),
            halves: AtomicU32::new(0),
            joined: AtomicU32::new(0),
            returned: AtomicU32::new(0),
            timed: AtomicBool::new(false),
            timings: AtomicU32::new(0),
            worker: AtomicU32::new(u32::MAX),
        }
    }

    /// Endings that are not a hand-back (a handed-back request ends once
    /// more where it is put again, or is dropped there).
    fn ends(&self) -> u32 {
        let l = |a: &AtomicU32| a.load(SeqCst);
        match self.kind {
            Kind::Exec => l(&self.ran) + l(&self.unrun),
            Kind::Ticket => l(&self.ticket) + l(&self.refused) + l(&self.lost_in_panic),
            Kind::CollectedStream => {
                l(&self.returned)
                    + l(&self.err_failed)
                    + l(&self.err_panicked)
                    + l(&self.err_cancelled)
                    + l(&self.err_expired)
                    + l(&self.refused)
                    + l(&self.lost_in_panic)
            }
            _ => {
                l(&self.result)
                    + l(&self.err_failed)
                    + l(&self.err_panicked)
                    + l(&self.err_cancelled)
                    + l(&self.err_expired)
                    + l(&self.done)
                    + l(&self.refused)
                    + l(&self.lost_in_panic)
            }
        }
    }

    /// Whether its outcome must come back: put, on a handle still there.
    fn strict(&self) -> bool {
        !self.relaxed.load(SeqCst)
            && !self.limbo.load(SeqCst)
            && !self
                .home
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|g| g.load(SeqCst))
    }

    fn error(&self, e: &TaskError<String>) {
        match e {
            TaskError::Failed(_) => &self.err_failed,
            TaskError::Panicked(_) => &self.err_panicked,
            TaskError::Cancelled => &self.err_cancelled,
            TaskError::Expired => &self.err_expired,
            _ => &self.err_failed,
        }
        .fetch_add(1, SeqCst);
    }
}

/// Totals over the seeds run, to see what the runs exercised.
static TALLY: [AtomicU64; 30] = [const { AtomicU64::new(0) }; 30];
/// What each of [`TALLY`]'s counts is, for the summary line.
const TALLY_NAMES: [&str; 30] = [
    "requests",
    "checked strictly",
    "handed back",
    "cancel true",
    "Cancelled",
    "Expired",
    "Panicked",
    "refused",
    "executed dropped unrun",
    "callables run",
    "seeds whose stats were compared",
    "of those, with cancelled too",
    "installed",
    "installed with a value",
    "scoped",
    "scoped with a value",
    "windowed",
    "windowed with a value",
    "put through put_all",
    "put_all ended with a value",
    "collector streams",
    "collector stream items",
    "timed",
    "timings read",
    "follow-ups",
    "weak upgrades that found no handle",
    "as-completed tickets",
    "as-completed tickets pushed from its loop",
    "joins",
    "joins with a value",
];

thread_local! {
    /// The tokens this thread made in its current step.
    static NEW: std::cell::RefCell<Vec<Arc<Rec>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What one seed records.
struct World {
    seed: u64,
    recs: Mutex<Vec<Arc<Rec>>>,
    violations: Mutex<Vec<String>>,
    phase: Mutex<String>,
    /// Serializes the control operations that change the worker count, so
    /// that at least one worker is always left.
    control: Mutex<()>,
    /// Set for the last burst before a graceful shutdown.
    no_cb_panics: AtomicBool,
    /// What each program thread is doing, for the watchdog's report.
    doing: Mutex<HashMap<usize, String>>,
    /// Ids of children put through a `Context`, for `cancel(id)` (held in
    /// their worker's slot, or queued).
    child_ids: Mutex<Vec<(RequestId, Arc<Rec>)>>,
    /// Request id to token, for the last burst.
    ids: Mutex<HashMap<u64, Arc<Rec>>>,
}

impl World {
    fn token(&self, kind: Kind) -> (usize, Arc<Rec>) {
        let rec = Arc::new(Rec::new(kind));
        let mut recs = self.recs.lock().unwrap();
        recs.push(Arc::clone(&rec));
        NEW.with(|n| n.borrow_mut().push(Arc::clone(&rec)));
        (recs.len() - 1, rec)
    }

    fn violation(&self, what: String) {
        self.violations.lock().unwrap().push(what);
    }

    fn phase(&self, p: impl Into<String>) {
        *self.phase.lock().unwrap() = p.into();
    }
}

/// Captured by every callable: counts its drop, and may panic in it (only
/// after the callable ran, so that the panic is the callable's).
struct Guard {
    rec: Arc<Rec>,
    ran: bool,
    panic_on_drop: bool,
}

impl Guard {
    fn run(&mut self) {
        self.ran = true;
        note_run(&self.rec);
    }
}

/// Counts a start of `rec`'s callable, and where it ran.
fn note_run(rec: &Rec) {
    rec.ran.fetch_add(1, SeqCst);
    if let Some(i) = thread::current()
        .name()
        .and_then(|n| n.rsplit('-').next())
        .and_then(|i| i.parse().ok())
    {
        rec.worker.store(i, SeqCst);
    }
    if thread::current().name().is_some_and(|n| n.starts_with(W1)) {
        rec.ran_first.fetch_add(1, SeqCst);
    }
    if !on_worker() {
        // A nested wait may run a request on a worker; a callable never
        // runs on a thread of ours.
        rec.ran.fetch_add(1000, SeqCst);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.rec.dropped.fetch_add(1, SeqCst);
        if !self.ran && self.rec.kind == Kind::Exec {
            self.rec.unrun.fetch_add(1, SeqCst);
        }
        if self.ran && self.panic_on_drop && !thread::panicking() {
            self.rec.panicked.fetch_add(1, SeqCst);
            boom("a capture's drop");
        }
    }
}

/// A callback's check: never on a worker.
fn callback_here(world: &World, rec: &Rec, what: &str) {
    if on_worker() {
        world.violation(format!(
            "{what} callback of a {:?} request ran on worker {:?}",
            rec.kind,
            thread::current().name()
        ));
    }
}

/// What the callable does: 0 return, 1 fail, 2 panic, 3 panic in a
/// capture's drop.
fn fate(rng: &mut Rng) -> u8 {
    match rng.below(100) {
        0..=79 => 0,
        80..=87 => 1,
        88..=95 => 2,
        _ => 3,
    }
}

fn guard(rec: &Arc<Rec>, fate: u8) -> Guard {
    Guard {
        rec: Arc::clone(rec),
        ran: false,
        panic_on_drop: fate == 3,
    }
}

/// Runs the callable's body: returns or fails or panics per `fate`.
fn body(g: &mut Guard, fate: u8, spin: u32) -> Result<u32, String> {
    g.run();
    outcome(g, fate, spin)
}

/// Records how a call that runs `rec`'s work on the pool and hands its
/// value or panic back (`install` and its forms, `ThreadPool::join`)
/// ended: a value (returned, for the caller's own checks), a refusal or a
/// cancellation (nothing `started` then), the work's own panic, or a
/// callback's panic while the call waited for room (the work dropped
/// unrun). `started`: the work's runs so far.
fn installed_outcome<T>(
    world: &World,
    rec: &Rec,
    what: &str,
    started: u32,
    out: Result<Result<T, callpool::InstallError>, ()>,
) -> Option<T> {
    match out {
        Ok(Ok(value)) => {
            if started == 0 {
                world.violation(format!("{what} returned a value it never ran"));
            }
            rec.result.fetch_add(1, SeqCst);
            Some(value)
        }
        Ok(Err(callpool::InstallError::Cancelled(_))) => {
            rec.err_cancelled.fetch_add(1, SeqCst);
            None
        }
        Ok(Err(e)) => {
            if started != 0 {
                world.violation(format!("{what} refused ({e:?}) work it ran"));
            }
            rec.refused.fetch_add(1, SeqCst);
            None
        }
        // The work's own panic, passed on once it ended.
        Err(()) if rec.panicked.load(SeqCst) > 0 => {
            rec.err_panicked.fetch_add(1, SeqCst);
            None
        }
        // A panic of a callback the call ran while it waited for room:
        // the work was dropped unrun.
        Err(()) => {
            rec.lost_in_panic.fetch_add(1, SeqCst);
            rec.relaxed.store(true, SeqCst);
            None
        }
    }
}

/// The end of a callable's body, once it has started: returns or fails or
/// panics per `fate`.
fn outcome(g: &mut Guard, fate: u8, spin: u32) -> Result<u32, String> {
    outcome_of(&g.rec, fate, spin)
}

/// [`outcome`] for a callable that only reads its capture (an
/// as-completed window's function).
fn outcome_of(rec: &Rec, fate: u8, spin: u32) -> Result<u32, String> {
    for _ in 0..spin {
        std::hint::spin_loop();
    }
    // Now and then a longer callable (spin % 37 is as good as a draw),
    // so that queues fill and cancels find requests held or queued.
    if spin % 37 == 0 {
        thread::sleep(Duration::from_micros(u64::from(spin % 300)));
    }
    match fate {
        1 => {
            rec.failed.fetch_add(1, SeqCst);
            Err("failed on purpose".to_owned())
        }
        2 => {
            rec.panicked.fetch_add(1, SeqCst);
            boom("a callable")
        }
        _ => Ok(7),
    }
}

/// Per-handle state of a program thread.
struct Handle {
    pool: ThreadPool,
    /// Ids of its callback requests, for `cancel(id)`.
    ids: Vec<(RequestId, Arc<Rec>)>,
    /// The tokens whose outcomes come back to it.
    tokens: Vec<Arc<Rec>>,
    /// Set when it is dropped: its outcomes are then discarded.
    gone: Arc<AtomicBool>,
}

struct Program<'w> {
    world: &'w Arc<World>,
    me: usize,
    /// Whether the thread may hold several handles: not with a bounded
    /// result queue, where a thread blocked on one handle makes room only
    /// in that handle's queue, and a worker stuck on another's full queue
    /// would wait for ever (the documented deadlock of `put_request`).
    multi: bool,
    rng: Rng,
    handles: Vec<Handle>,
    tickets: Vec<(Arc<Rec>, Ticket<u32, String>)>,
    batch_done: Vec<(Arc<AtomicU32>, callpool::Batch, Vec<Arc<Rec>>)>,
}

/// Makes a callback request for token `rec`.
fn callback_request(world: &Arc<World>, rng: &mut Rng, rec: &Arc<Rec>) -> WorkRequest {
    callback_request_on(world, rng, rec, None)
}

/// What a result callback does besides recording: nothing, put a
/// follow-up request through a `WeakPool` (of its own handle, or of
/// another whose token goes with it: the follow-up's outcome goes there),
/// or cancel what its handle has queued.
enum Then {
    Nothing,
    FollowUp(WeakPool, Option<Arc<AtomicBool>>, u64),
    CancelQueued(WeakPool),
}

/// A callback request; given its handle, its result callback may put a
/// follow-up (never blocking) or cancel the handle's queued requests.
fn callback_request_on(
    world: &Arc<World>,
    rng: &mut Rng,
    rec: &Arc<Rec>,
    home: Option<&ThreadPool>,
) -> WorkRequest {
    callback_request_to(world, rng, rec, home, None)
}

/// [`callback_request_on`], or, given `target` (a handle's `WeakPool` and
/// its token), one whose result callback puts a follow-up there.
fn callback_request_to(
    world: &Arc<World>,
    rng: &mut Rng,
    rec: &Arc<Rec>,
    home: Option<&ThreadPool>,
    target: Option<(WeakPool, Arc<AtomicBool>)>,
) -> WorkRequest {
    let made = Instant::now();
    let f = fate(rng);
    let spin = rng.below(2000) as u32;
    let mut g = guard(rec, f);
    let cb_panic = !world.no_cb_panics.load(SeqCst) && rng.chance(4);
    let then = match (target, home, rng.below(100)) {
        (Some((weak, gone)), _, _) => Then::FollowUp(weak, Some(gone), rng.next() | 1),
        (None, Some(h), 0..=9) => Then::FollowUp(h.downgrade(), None, rng.next() | 1),
        (None, Some(h), 10..=11) => Then::CancelQueued(h.downgrade()),
        _ => Then::Nothing,
    };
    let timed = rng.chance(8);
    rec.timed.store(timed, SeqCst);
    let (w1, w2) = (Arc::clone(world), Arc::clone(world));
    let (r1, r2) = (Arc::clone(rec), Arc::clone(rec));
    let req = WorkRequest::fallible(move |_: ()| body(&mut g, f, spin), ())
        .on_result(move |_, _| {
            callback_here(&w1, &r1, "result");
            timing_here(&w1, &r1, made, true);
            r1.result.fetch_add(1, SeqCst);
            match then {
                Then::Nothing => {}
                Then::FollowUp(weak, gone, seed) => follow_up(&w1, &weak, gone, seed),
                Then::CancelQueued(weak) => {
                    if let Some(pool) = weak.upgrade() {
                        pool.cancel_queued();
                    }
                }
            }
            if cb_panic {
                boom("a result callback");
            }
        })
        .on_error(move |_, e: TaskError<String>| {
            callback_here(&w2, &r2, "error");
            let ran = matches!(e, TaskError::Failed(_) | TaskError::Panicked(_));
            timing_here(&w2, &r2, made, ran);
            r2.error(&e);
            if cb_panic {
                boom("an error callback");
            }
        });
    let req = if timed { req.timed() } else { req };
    match rng.below(10) {
        0 => req.timeout(Duration::from_micros(rng.below(500))).into(),
        1 => req
            .deadline(Instant::now() + Duration::from_micros(rng.below(500)))
            .into(),
        _ => req.into(),
    }
}

/// A result callback's follow-up, put through `weak` if a handle of its
/// results is left (`upgrade` is `None` once every one is gone). One with
/// a token of another handle goes on following up there, now and then.
fn follow_up(world: &Arc<World>, weak: &WeakPool, gone: Option<Arc<AtomicBool>>, seed: u64) {
    let Some(pool) = weak.upgrade() else {
        TALLY[25].fetch_add(1, SeqCst);
        return;
    };
    let (_, next) = world.token(Kind::FollowUp);
    let mut rng = Rng(seed);
    let req = match &gone {
        Some(g) => {
            // Its outcome comes back to the target's handle, not to the one
            // whose step ran this callback.
            *next.home.lock().unwrap() = Some(Arc::clone(g));
            let again = rng.chance(20).then(|| (pool.downgrade(), Arc::clone(g)));
            callback_request_to(world, &mut rng, &next, None, again)
        }
        None => callback_request(world, &mut rng, &next),
    };
    let how = rng.below(2);
    // A timed put may handle the target's results while it waits: a
    // callback's panic there comes back with the follow-up not put
    // (`put_request`'s *Panics*), and is not this callback's to pass on.
    let out = Program::guarded(|| match how {
        0 => pool.try_put_request(req),
        _ => pool.put_request_timeout(req, Duration::from_micros(200)),
    });
    match out {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            if !is_refusal(&e, how) {
                world.violation(format!("unexpected follow-up put error {e:?}"));
            }
            next.refused.fetch_add(1, SeqCst);
            drop(e);
        }
        Err(()) => {
            next.lost_in_panic.fetch_add(1, SeqCst);
        }
    }
}

/// A callback's look at `timing()`: `Some` only in a timed request's own
/// callbacks, naming the worker its callable started on if it started,
/// with no time running if it never did, and no more time queued and
/// running than has passed since just before the request was made.
fn timing_here(world: &World, rec: &Rec, made: Instant, ran: bool) {
    let t = callpool::timing();
    if !rec.timed.load(SeqCst) {
        if let Some(t) = t {
            world.violation(format!("an untimed request's callback read {t:?}"));
        }
        return;
    }
    let Some(t) = t else {
        world.violation("a timed request's callback read no timing".into());
        return;
    };
    rec.timings.fetch_add(1, SeqCst);
    let worker = ran.then(|| rec.worker.load(SeqCst) as usize);
    let since = made.elapsed();
    if t.worker != worker || (!ran && t.running != Duration::ZERO) || t.queued + t.running > since {
        world.violation(format!(
            "timing {t:?} of a request that {} (worker {worker:?}), {since:?} after it was made",
            if ran { "ran" } else { "never ran" }
        ));
    }
}

/// A request with a context: puts children, executes one, joins.
fn parent_request(
    world: &Arc<World>,
    rng: &mut Rng,
    rec: &Arc<Rec>,
    home: &ThreadPool,
) -> WorkRequest {
    let mut g = guard(rec, 0);
    // A ticket submitted and waited for inside the callable: the waiting
    // worker runs it itself if no other worker takes it.
    let nested = rng.chance(30).then(|| {
        let (_, t) = world.token(Kind::Ticket);
        t.limbo.store(true, SeqCst);
        let f = fate(rng);
        (home.downgrade(), Arc::clone(&t), guard(&t, f), f)
    });
    // Sometimes more than 64, so that the held children go to the queue
    // in a batch while the callable still runs.
    let n_children = if rng.chance(8) {
        60 + rng.below(20) as usize
    } else {
        rng.below(4) as usize
    };
    let children: Vec<(Arc<Rec>, WorkRequest)> = (0..n_children)
        .map(|_| {
            let (_, child) = world.token(Kind::Callback);
            child.limbo.store(true, SeqCst);
            let req = callback_request(world, rng, &child);
            (child, req)
        })
        .collect();
    let exec = rng.chance(50).then(|| {
        let (_, child) = world.token(Kind::Exec);
        child.limbo.store(true, SeqCst);
        let cg = guard(&child, 0);
        (child, cg)
    });
    let join = rng.chance(50);
    let w0 = Arc::clone(world);
    let (w1, w2) = (Arc::clone(world), Arc::clone(world));
    let (r1, r2) = (Arc::clone(rec), Arc::clone(rec));
    WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            g.run();
            for (child, req) in children {
                note_pool(&child);
                match cx.put(req) {
                    Ok(id) => {
                        child.limbo.store(false, SeqCst);
                        w0.child_ids.lock().unwrap().push((id, Arc::clone(&child)));
                        w0.ids
                            .lock()
                            .unwrap()
                            .insert(id.value(), Arc::clone(&child));
                    }
                    Err(e) => {
                        child.limbo.store(false, SeqCst);
                        child.refused.fetch_add(1, SeqCst);
                        drop(e);
                    }
                }
            }
            if let Some((child, mut cg)) = exec {
                note_pool(&child);
                match cx.execute(move || {
                    cg.run();
                }) {
                    Ok(id) => {
                        child.limbo.store(false, SeqCst);
                        w0.ids
                            .lock()
                            .unwrap()
                            .insert(id.value(), Arc::clone(&child));
                    }
                    Err(e) => {
                        child.limbo.store(false, SeqCst);
                        child.refused.fetch_add(1, SeqCst);
                        drop(e);
                    }
                }
            }
            if let Some((weak, t, mut tg, f)) = nested {
                note_pool(&t);
                match weak.upgrade() {
                    Some(pool) => {
                        match pool.submit_fallible(move |_: ()| body(&mut tg, f, 100), ()) {
                            Ok(ticket) => {
                                t.limbo.store(false, SeqCst);
                                let out = ticket.wait();
                                t.ticket.fetch_add(1, SeqCst);
                                match out {
                                    Ok(_) => {
                                        t.result.fetch_add(1, SeqCst);
                                    }
                                    Err(e) => t.error(&e),
                                }
                            }
                            Err(e) => {
                                t.limbo.store(false, SeqCst);
                                t.refused.fetch_add(1, SeqCst);
                                drop(e);
                            }
                        }
                        drop(pool);
                    }
                    None => drop(tg),
                }
            }
            if join {
                let r = Arc::clone(&g.rec);
                let (a, b) = cx.join(
                    |_| {
                        r.halves.fetch_add(1, SeqCst);
                        1u32
                    },
                    |_| {
                        r.halves.fetch_add(1, SeqCst);
                        2u32
                    },
                );
                if (a, b) == (1, 2) {
                    r.joined.fetch_add(1, SeqCst);
                }
            }
            0u32
        },
        (),
    )
    .on_result(move |_, _| {
        callback_here(&w1, &r1, "result");
        r1.result.fetch_add(1, SeqCst);
    })
    .on_error(move |_, e: TaskError| {
        callback_here(&w2, &r2, "error");
        r2.error(&match e {
            TaskError::Failed(never) => match never {},
            TaskError::Panicked(m) => TaskError::Panicked(m),
            TaskError::Cancelled => TaskError::Cancelled,
            TaskError::Expired => TaskError::Expired,
            _ => TaskError::Failed(String::new()),
        });
    })
    .into()
}

fn stream_request(world: &Arc<World>, rng: &mut Rng, rec: &Arc<Rec>) -> WorkRequest {
    let f = fate(rng);
    let n = rng.below(5) as u32;
    let mut g = guard(rec, f);
    let (w1, w2, w3) = (Arc::clone(world), Arc::clone(world), Arc::clone(world));
    let (r1, r2, r3) = (Arc::clone(rec), Arc::clone(rec), Arc::clone(rec));
    let req = WorkRequest::streaming(
        move |_: (), out: &Emitter<'_, u32>| -> Result<(), String> {
            g.run();
            for i in 0..n {
                if out.emit(i).is_ok() {
                    g.rec.emitted.fetch_add(1, SeqCst);
                } else {
                    g.rec.failed.fetch_add(1, SeqCst);
                    return Err("closed".into());
                }
            }
            outcome(&mut g, f, 0).map(|_| ())
        },
        (),
    )
    .on_result(move |_, _| {
        callback_here(&w1, &r1, "item");
        r1.items.fetch_add(1, SeqCst);
    })
    .on_error(move |_, e: TaskError<String>| {
        callback_here(&w2, &r2, "error");
        r2.error(&e);
    })
    .on_done(move |_| {
        callback_here(&w3, &r3, "done");
        r3.done.fetch_add(1, SeqCst);
    });
    if rng.chance(10) {
        req.timeout(Duration::from_micros(rng.below(300))).into()
    } else {
        req.into()
    }
}

/// Whether a put of the given kind (0: `try_put_request`, 1:
/// `put_request_timeout`, else `put_request`) may refuse so: `Full` only
/// from the try, `Timeout` only from the timed put.
fn is_refusal(e: &PutError, how: u64) -> bool {
    match e {
        PutError::ShutDown(_) | PutError::NoWorkers(_) => true,
        PutError::Full(_) => how == 0,
        PutError::Timeout(_) => how == 1,
        _ => false,
    }
}

impl Program<'_> {
    /// Runs `f`; a panic out of it (a callback's, through a put or a
    /// wait) is caught and reported as `true`.
    fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
        panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            let ours = payload
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with(BOOM));
            if !ours {
                panic::resume_unwind(payload);
            }
        })
    }

    fn put_one(&mut self, h: usize, rec: &Arc<Rec>, req: WorkRequest, how: u64) {
        let pool = &self.handles[h].pool;
        let out = Self::guarded(|| match how {
            0 => pool.try_put_request(req),
            1 => pool.put_request_timeout(req, Duration::from_micros(200)),
            _ => pool.put_request(req),
        });
        match out {
            Ok(Ok(id)) => {
                self.handles[h].ids.push((id, Arc::clone(rec)));
                self.handles[h].tokens.push(Arc::clone(rec));
            }
            Ok(Err(e)) => {
                if !is_refusal(&e, how) {
                    self.world.violation(format!("unexpected put error {e:?}"));
                }
                rec.refused.fetch_add(1, SeqCst);
                drop(e);
            }
            Err(()) => {
                rec.lost_in_panic.fetch_add(1, SeqCst);
                // The request may have been put before the panic of a
                // callback the put ran: only at most once is checked.
                rec.relaxed.store(true, SeqCst);
            }
        }
    }

    fn doing(&self, what: String) {
        self.world.doing.lock().unwrap().insert(self.me, what);
    }

    fn step(&mut self) {
        let h = self.rng.below(self.handles.len() as u64) as usize;
        let op = self.rng.below(115);
        let gone = Arc::clone(&self.handles[h].gone);
        NEW.with(|n| n.borrow_mut().clear());
        self.op(h, op);
        if let Some(t) = callpool::timing() {
            self.world
                .violation(format!("a program thread read {t:?} outside any callback"));
        }
        for rec in NEW.with(|n| std::mem::take(&mut *n.borrow_mut())) {
            rec.home
                .lock()
                .unwrap()
                .get_or_insert_with(|| Arc::clone(&gone));
        }
    }

    fn op(&mut self, h: usize, op: u64) {
        let world = Arc::clone(self.world);
        self.doing(format!("op {op} on handle {h} of {}", self.handles.len()));
        match op {
            0..=29 => {
                let (_, rec) = world.token(Kind::Callback);
                let home = self.handles[h].pool.clone();
                let req = callback_request_on(&world, &mut self.rng, &rec, Some(&home));
                drop(home);
                let how = self.rng.below(6);
                self.put_one(h, &rec, req, how);
            }
            30..=34 => {
                let (_, rec) = world.token(Kind::Callback);
                let home = self.handles[h].pool.clone();
                let req = parent_request(&world, &mut self.rng, &rec, &home);
                drop(home);
                self.put_one(h, &rec, req, 5);
            }
            35..=40 => {
                let (_, rec) = world.token(Kind::Stream);
                let req = stream_request(&world, &mut self.rng, &rec);
                self.put_one(h, &rec, req, 5);
            }
            41..=50 => {
                let (_, rec) = world.token(Kind::Exec);
                let f = fate(&mut self.rng);
                let mut g = guard(&rec, f);
                let try_ = self.rng.chance(30);
                let pool = &self.handles[h].pool;
                let work = move || {
                    if body(&mut g, f, 100).is_err() {
                        // An executed request has no error: it completed.
                        g.rec.failed.fetch_sub(1, SeqCst);
                    }
                };
                let out = Self::guarded(|| {
                    if try_ {
                        pool.try_execute(work)
                    } else {
                        pool.execute(work)
                    }
                });
                match out {
                    Ok(Ok(_)) => self.handles[h].tokens.push(rec),
                    Ok(Err(e)) => {
                        rec.refused.fetch_add(1, SeqCst);
                        drop(e);
                    }
                    Err(()) => rec.relaxed.store(true, SeqCst),
                }
            }
            51..=62 => {
                let (_, rec) = world.token(Kind::Ticket);
                let f = fate(&mut self.rng);
                let mut g = guard(&rec, f);
                let pool = &self.handles[h].pool;
                // Every way to submit: blocking, never blocking, a while;
                // with a context (whose callable joins two halves) or not.
                let how = self.rng.below(6);
                let halves = Arc::clone(&rec);
                let out = Self::guarded(|| {
                    let plain = move |_: ()| body(&mut g, f, 500);
                    fn refused<F, A>(world: &World, e: callpool::TrySubmitError<F, A>) {
                        if !(e.is_full()
                            || e.is_timed_out()
                            || e.is_no_workers()
                            || e.is_shut_down())
                        {
                            world.violation(format!("unexpected submit error {e}"));
                        }
                    }
                    match how {
                        0 => pool
                            .try_submit_fallible(plain, ())
                            .map_err(|e| refused(&world, e)),
                        1 => pool
                            .submit_fallible_timeout(plain, (), Duration::from_micros(200))
                            .map_err(|e| refused(&world, e)),
                        2 | 3 => {
                            let joined = move |cx: &Context<'_>, _: ()| {
                                halves.joined.fetch_add(1, SeqCst);
                                let (a, b) = cx.join(
                                    |_| halves.halves.fetch_add(1, SeqCst),
                                    |_| halves.halves.fetch_add(1, SeqCst),
                                );
                                let _ = a + b;
                                let mut plain = plain;
                                plain(())
                            };
                            if how == 2 {
                                pool.submit_fallible_with_context(joined, ()).map_err(drop)
                            } else {
                                pool.try_submit_fallible_with_context(joined, ())
                                    .map_err(|e| refused(&world, e))
                            }
                        }
                        _ => pool.submit_fallible(plain, ()).map_err(drop),
                    }
                });
                match out {
                    Ok(Ok(t)) => {
                        // Cancelled here, or from another thread through a
                        // cancel handle.
                        if self.rng.chance(15) {
                            let cancelled = if self.rng.chance(50) {
                                t.cancel()
                            } else {
                                let handle = t.cancel_handle();
                                thread::spawn(move || handle.cancel()).join().unwrap()
                            };
                            if cancelled {
                                rec.cancel_true.fetch_add(1, SeqCst);
                            }
                        }
                        if self.rng.chance(5) {
                            // Let go of it: the work still runs.
                            rec.relaxed.store(true, SeqCst);
                            drop(t);
                        } else {
                            self.tickets.push((rec, t));
                        }
                    }
                    // The error (checked above where it says why) is
                    // dropped with the callable in it.
                    Ok(Err(())) => {
                        rec.refused.fetch_add(1, SeqCst);
                    }
                    Err(()) => rec.relaxed.store(true, SeqCst),
                }
            }
            63..=67 => {
                // A batch.
                let n = 1 + self.rng.below(6) as usize;
                let (reqs, recs) = make_batch(&world, &mut self.rng, n);
                let pool = &self.handles[h].pool;
                match Self::guarded(|| pool.put_batch(reqs)) {
                    Ok(Ok(batch)) => {
                        self.handles[h].tokens.extend(recs.iter().cloned());
                        let done = Arc::new(AtomicU32::new(0));
                        let d = Arc::clone(&done);
                        let w = Arc::clone(&world);
                        if self.rng.chance(20) {
                            batch.cancel();
                        }
                        batch.on_done(move |_| {
                            if on_worker() {
                                w.violation("batch-done callback on a worker".into());
                            }
                            d.fetch_add(1, SeqCst);
                        });
                        self.batch_done.push((done, batch, recs.clone()));
                    }
                    Ok(Err(e)) => {
                        if !matches!(e, BatchError::ShutDown(_)) {
                            world.violation(format!("unexpected batch error {e:?}"));
                        }
                        for rec in &recs {
                            rec.refused.fetch_add(1, SeqCst);
                        }
                        drop(e);
                    }
                    Err(()) => {
                        // Members queued before the panic run on; what
                        // becomes of the others is not documented.
                        for rec in &recs {
                            rec.relaxed.store(true, SeqCst);
                        }
                    }
                }
            }
            68..=71 => {
                // A collector, put and drained here.
                let n = 1 + self.rng.below(5) as usize;
                let pool = self.handles[h].pool.clone();
                let mut plan = Vec::new();
                for _ in 0..n {
                    let (_, rec) = world.token(Kind::Collected);
                    let f = fate(&mut self.rng);
                    plan.push((Arc::clone(&rec), guard(&rec, f), f));
                }
                let drain_with_poll = self.rng.chance(30);
                // Some put with a context, and add children to the same
                // collector from the worker.
                let adds: Vec<Vec<(Arc<Rec>, Guard, u8)>> = plan
                    .iter()
                    .map(|_| {
                        if self.rng.chance(25) {
                            (0..1 + self.rng.below(2))
                                .map(|_| {
                                    let (_, rec) = world.token(Kind::Collected);
                                    rec.limbo.store(true, SeqCst);
                                    let f = fate(&mut self.rng);
                                    (Arc::clone(&rec), guard(&rec, f), f)
                                })
                                .collect()
                        } else {
                            Vec::new()
                        }
                    })
                    .collect();
                let mut all: Vec<Arc<Rec>> = plan.iter().map(|(r, _, _)| Arc::clone(r)).collect();
                all.extend(adds.iter().flatten().map(|(r, _, _)| Arc::clone(r)));
                let by_id: Arc<Mutex<HashMap<RequestId, Arc<Rec>>>> = Arc::default();
                let out = Self::guarded(|| {
                    let mut c = pool.fallible_collector::<u32, String>();
                    for ((rec, mut g, f), children) in plan.into_iter().zip(adds) {
                        let put = if children.is_empty() {
                            c.put_fallible(move |_: ()| body(&mut g, f, 100), ())
                        } else {
                            let by_id = Arc::clone(&by_id);
                            c.put_fallible_with_context(
                                move |cx: &callpool::CollectorContext<'_, u32, String>, ()| {
                                    g.run();
                                    for (child, mut cg, cf) in children {
                                        let c2 = Arc::clone(&child);
                                        match cx
                                            .add_fallible(move |_: ()| body(&mut cg, cf, 50), ())
                                        {
                                            Ok(id) => {
                                                by_id.lock().unwrap().insert(id, c2);
                                                child.limbo.store(false, SeqCst);
                                            }
                                            Err(e) => {
                                                // Documented: the request in
                                                // the error still counts on the
                                                // collector, and dropped, ends
                                                // there as Cancelled.
                                                by_id.lock().unwrap().insert(e.request().id(), c2);
                                                child.uncounted.fetch_add(1, SeqCst);
                                                child.limbo.store(false, SeqCst);
                                                drop(e);
                                            }
                                        }
                                    }
                                    outcome(&mut g, f, 0)
                                },
                                (),
                            )
                        };
                        match put {
                            Ok(id) => {
                                by_id.lock().unwrap().insert(id, rec);
                            }
                            Err(e) => {
                                rec.refused.fetch_add(1, SeqCst);
                                drop(e);
                            }
                        }
                    }
                    // An added child's outcome may be handled before the
                    // worker that added it has noted its id: such outcomes
                    // are matched once the collector is drained.
                    let mut unknown = Vec::new();
                    let mut each = |id: RequestId, out: Result<u32, TaskError<String>>| {
                        let rec = by_id.lock().unwrap().get(&id).cloned();
                        match rec {
                            Some(rec) => match out {
                                Ok(_) => {
                                    rec.result.fetch_add(1, SeqCst);
                                }
                                Err(e) => rec.error(&e),
                            },
                            None => unknown.push((id, out)),
                        }
                    };
                    if drain_with_poll {
                        while c.pending() > 0 {
                            c.poll_with(&mut each);
                            thread::yield_now();
                        }
                    } else {
                        c.wait_with(&mut each);
                    }
                    for (id, out) in unknown {
                        let rec = by_id.lock().unwrap().get(&id).cloned();
                        match rec {
                            Some(rec) => match out {
                                Ok(_) => {
                                    rec.result.fetch_add(1, SeqCst);
                                }
                                Err(e) => rec.error(&e),
                            },
                            None => world.violation(format!(
                                "collector outcome for unknown {id:?}: {out:?}; known {:?}",
                                by_id.lock().unwrap().keys().collect::<Vec<_>>()
                            )),
                        }
                    }
                });
                if out.is_err() {
                    // A callback of the handle's, run by the collector's
                    // wait to make room in a bounded result queue.
                    for r in all {
                        r.relaxed.store(true, SeqCst);
                    }
                }
            }
            72..=75 => {
                // Wait for a ticket now.
                if !self.tickets.is_empty() {
                    let i = self.rng.below(self.tickets.len() as u64) as usize;
                    let (rec, t) = self.tickets.swap_remove(i);
                    Self::finish_ticket(&world, &rec, t);
                }
            }
            76..=80 => {
                let pool = &self.handles[h].pool;
                let r = Self::guarded(|| {
                    if self.rng.chance(50) {
                        pool.poll().map(|_| ()).map_err(|e| format!("{e:?}"))
                    } else {
                        pool.wait_timeout(Duration::from_micros(self.rng.below(2000)))
                            .map(|_| ())
                            .map_err(|e| format!("{e:?}"))
                    }
                });
                if let Ok(Err(e)) = r {
                    if !(e.starts_with("NoResultsPending")
                        || e.starts_with("Timeout")
                        || e.starts_with("NoWorkersAvailable"))
                    {
                        world.violation(format!("poll/wait_timeout: {e}"));
                    }
                }
            }
            81..=82 => {
                // A child's id: found only on the handle that put its
                // parent (or a clone), while it is held or queued.
                let child = {
                    let ids = world.child_ids.lock().unwrap();
                    (!ids.is_empty()).then(|| {
                        let i = self.rng.below(ids.len() as u64) as usize;
                        (ids[i].0, Arc::clone(&ids[i].1))
                    })
                };
                if let Some((id, rec)) = child {
                    if self.handles[h].pool.cancel(id) {
                        rec.cancel_true.fetch_add(1, SeqCst);
                    }
                }
            }
            83..=84 => {
                let hd = &self.handles[h];
                if !hd.ids.is_empty() {
                    let i = self.rng.below(hd.ids.len() as u64) as usize;
                    let (id, rec) = (hd.ids[i].0, Arc::clone(&hd.ids[i].1));
                    if hd.pool.cancel(id) {
                        rec.cancel_true.fetch_add(1, SeqCst);
                    }
                }
            }
            85..=86 => {
                let _ = self.handles[h].pool.cancel_queued();
            }
            87..=92 => {
                let _c = world.control.lock().unwrap();
                let pool = &self.handles[h].pool;
                match self.rng.below(3) {
                    0 => {
                        let _ = pool.resize(1 + self.rng.below(4) as usize);
                    }
                    1 => {
                        let n = self.rng.below(3) as usize;
                        let live = pool.workers();
                        let _ = pool.dismiss_workers(n.min(live.saturating_sub(1)));
                    }
                    _ => {
                        if pool.workers() < 6 {
                            let _ = pool.create_workers(1);
                        }
                    }
                }
            }
            93..=96 => {
                // A new handle, kept.
                if self.multi && self.handles.len() < 4 {
                    let pool = self.handles[h].pool.new_handle();
                    self.handles.push(Handle {
                        pool,
                        ids: Vec::new(),
                        tokens: Vec::new(),
                        gone: Arc::default(),
                    });
                }
            }
            100..=101 => self.install(h),
            102..=103 => self.scope(h),
            104..=105 => self.window(h),
            106..=107 => self.put_all(h),
            108..=109 => self.collector_streams(h),
            110..=111 => self.weak(h),
            112..=113 => self.completed(h),
            114 => self.join(h),
            _ => {
                // Drop a handle (not the thread's first one): its outcomes
                // are discarded, so its tokens are relaxed.
                if self.handles.len() > 1 && h > 0 {
                    let hd = self.handles.swap_remove(h);
                    hd.gone.store(true, SeqCst);
                    drop(hd);
                }
            }
        }
    }

    /// One piece of work that borrows from this thread, run on the pool
    /// by `install`, `try_install` or `install_timeout`, sometimes split
    /// with `Context::join`. Its value is a plain value (a `Result` the
    /// callable returns is no failure to the pool), so its fate is never
    /// "fail"; a panic of the callable, or of its capture's `Drop`, comes
    /// back out of the call.
    fn install(&mut self, h: usize) {
        let (_, rec) = self.world.token(Kind::Installed);
        let f = match fate(&mut self.rng) {
            1 => 0,
            f => f,
        };
        let g = guard(&rec, f);
        let how = self.rng.below(3);
        let join = self.rng.chance(30);
        let local = [11u32, 13];
        let borrowed = &local;
        let op = move |cx: &Context<'_>| -> u32 {
            let mut g = g;
            let spin = if join {
                let (a, b) = cx.join(|_| borrowed[0], |_| borrowed[1]);
                a + b
            } else {
                borrowed[0]
            };
            body(&mut g, f, spin).unwrap_or(0)
        };
        let pool = &self.handles[h].pool;
        let out = Self::guarded(|| match how {
            0 => pool.try_install(op),
            1 => pool.install_timeout(op, Duration::from_micros(200)),
            _ => pool.install(op),
        });
        let started = rec.ran.load(SeqCst);
        installed_outcome(self.world, &rec, "install", started, out);
    }

    /// A scope on this thread: requests that borrow a local of this
    /// thread, each outcome to a callback run here, all of them ended when
    /// the scope returns.
    fn scope(&mut self, h: usize) {
        let n = 1 + self.rng.below(4) as usize;
        let local: Vec<u32> = (0..n as u32).collect();
        // Each capture made now: one the scope never reaches (a put that
        // unwound) is dropped with the rest of the plan. Some requests are
        // put with a `ScopeContext` and put children into the scope, which
        // borrow the same local.
        type Planned = (Arc<Rec>, Guard, u8);
        let mut plan: Vec<(Planned, Vec<Planned>)> = Vec::new();
        for _ in 0..n {
            let (_, rec) = self.world.token(Kind::Scoped);
            let f = fate(&mut self.rng);
            let children = if self.rng.chance(35) {
                (0..1 + self.rng.below(2))
                    .map(|_| {
                        let (_, child) = self.world.token(Kind::Scoped);
                        child.limbo.store(true, SeqCst);
                        let cf = fate(&mut self.rng);
                        (Arc::clone(&child), guard(&child, cf), cf)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            plan.push(((Arc::clone(&rec), guard(&rec, f), f), children));
        }
        let mut all: Vec<Arc<Rec>> = Vec::new();
        for ((rec, _, _), children) in &plan {
            all.push(Arc::clone(rec));
            all.extend(children.iter().map(|(c, _, _)| Arc::clone(c)));
        }
        let world: &World = self.world;
        // The scoped requests' and children's ids: their outcomes come out
        // of `wait_with`, not to a callback.
        let by_id: Mutex<HashMap<RequestId, Arc<Rec>>> = Mutex::default();
        let record = |rec: &Rec, out: Result<u32, TaskError<String>>| match out {
            Ok(_) => {
                rec.result.fetch_add(1, SeqCst);
            }
            Err(e) => rec.error(&e),
        };
        let pool = &self.handles[h].pool;
        let out = Self::guarded(|| {
            pool.fallible_scope(|s| {
                for (((rec, mut g, f), children), item) in plan.into_iter().zip(&local) {
                    let put = if children.is_empty() {
                        let heard = Arc::clone(&rec);
                        s.put_fallible_then(
                            move |x: &u32| body(&mut g, f, 40 + x),
                            item,
                            move |outcome| {
                                callback_here(world, &heard, "a scope's");
                                record(&heard, outcome);
                            },
                        )
                    } else {
                        let by_id = &by_id;
                        let put = s.put_fallible_scoped(
                            move |sc: &ScopeContext<'_, '_, u32, String>, x: &u32| {
                                g.run();
                                for (child, mut cg, cf) in children {
                                    let noted = Arc::clone(&child);
                                    let put = sc
                                        .put_fallible(move |y: &u32| body(&mut cg, cf, 30 + y), x);
                                    // Documented: a refused child still ends
                                    // in the scope, as Cancelled, counted in
                                    // no statistic.
                                    let id = put.unwrap_or_else(|e| {
                                        child.uncounted.fetch_add(1, SeqCst);
                                        e.id()
                                    });
                                    by_id.lock().unwrap().insert(id, noted);
                                    child.limbo.store(false, SeqCst);
                                }
                                outcome(&mut g, f, 0)
                            },
                            item,
                        );
                        if let Ok(id) = put {
                            by_id.lock().unwrap().insert(id, Arc::clone(&rec));
                        }
                        put
                    };
                    if put.is_err() {
                        rec.refused.fetch_add(1, SeqCst);
                    }
                }
                // A child's outcome may come before the worker that put it
                // has noted its id: matched once the scope is drained.
                let mut unknown = Vec::new();
                s.wait_with(|id, out| {
                    callback_here(world, &Rec::new(Kind::Scoped), "a scope's wait_with");
                    match by_id.lock().unwrap().get(&id).cloned() {
                        Some(rec) => record(&rec, out),
                        None => unknown.push((id, out)),
                    }
                });
                for (id, out) in unknown {
                    match by_id.lock().unwrap().get(&id).cloned() {
                        Some(rec) => record(&rec, out),
                        None => {
                            world.violation(format!("scope outcome for unknown {id:?}: {out:?}"))
                        }
                    }
                }
            })
        });
        if out.is_err() {
            // A callback of the handle's, run while a put waited for room:
            // the scope unwound after its requests ended (their outcomes
            // dropped), and the rest were never put.
            for r in all {
                r.relaxed.store(true, SeqCst);
            }
        }
    }

    /// Inputs run through `as_completed_fallible` (completion order) or
    /// `imap_fallible` (input order) with at most `k` in flight, the
    /// iterator sometimes dropped part-way: what it had not put is never
    /// put, and what it had is cancelled unless started. Each input is a
    /// capture whose drop is counted.
    fn window(&mut self, h: usize) {
        let n = 1 + self.rng.below(6) as usize;
        let k = 1 + self.rng.below(3) as usize;
        let in_order = self.rng.chance(40);
        // Rarely: a dropped window's outcomes go unheard, which leaves
        // the seed's count of cancellations unchecked.
        let stop_after = self
            .rng
            .chance(8)
            .then(|| self.rng.below(n as u64) as usize);
        let inputs: Vec<(Guard, u8)> = (0..n)
            .map(|_| {
                let (_, rec) = self.world.token(Kind::Windowed);
                let f = match fate(&mut self.rng) {
                    // An as-completed input comes back here, to be dropped
                    // on this thread: its drop must not panic.
                    3 if !in_order => 0,
                    f => f,
                };
                (guard(&rec, f), f)
            })
            .collect();
        let all: Vec<Arc<Rec>> = inputs.iter().map(|(g, _)| Arc::clone(&g.rec)).collect();
        let world: &World = self.world;
        let pool = &self.handles[h].pool;
        let heard = |rec: &Rec, out: Result<u32, TaskError<String>>| {
            callback_here(world, rec, "a window's");
            // Documented: the first input whose put a closed pool refuses
            // comes back as Cancelled too, and a refused request is in no
            // count of `stats()`; one a shutdown swept from the queue is.
            // Which it was, the outcome does not say: its count is not
            // compared.
            if matches!(out, Err(TaskError::Cancelled)) && pool.is_shut_down() {
                rec.relaxed.store(true, SeqCst);
            }
            match out {
                Ok(_) => {
                    rec.result.fetch_add(1, SeqCst);
                }
                Err(e) => rec.error(&e),
            }
        };
        let out = Self::guarded(|| {
            let mut taken = 0;
            if in_order {
                // The input is the function's, dropped where it runs.
                let f = |(mut g, fate): (Guard, u8)| body(&mut g, fate, 20);
                let mut outcomes = pool.imap_fallible(inputs, k, f);
                while stop_after != Some(taken) {
                    let Some(out) = outcomes.next() else { break };
                    heard(&all[taken], out);
                    taken += 1;
                }
            } else {
                let f = |(g, fate): &(Guard, u8)| {
                    note_run(&g.rec);
                    outcome_of(&g.rec, *fate, 20)
                };
                let mut outcomes = pool.as_completed_fallible(inputs, k, f);
                while stop_after != Some(taken) {
                    let Some(((g, _), out)) = outcomes.next() else {
                        break;
                    };
                    heard(&g.rec, out);
                    taken += 1;
                }
            }
            taken
        });
        if out.map_or(true, |taken| taken < n) {
            // Dropped part-way (or by a callback's panic while a put
            // waited for room): the rest are never heard.
            for r in all {
                r.relaxed.store(true, SeqCst);
            }
        }
    }

    /// Callback requests put through `put_all`, which pulls the next only
    /// once the last is queued. A refusal ends the put at the refused
    /// request (in the error), a callback's panic at the one being put
    /// (dropped, not put: `put_request`'s *Panics*); either way the rest
    /// are never pulled, and end here unput (kept by `by_ref`, or dropped
    /// with the iterator passed by value).
    fn put_all(&mut self, h: usize) {
        let world = Arc::clone(self.world);
        let n = 1 + self.rng.below(8) as usize;
        let home = self.handles[h].pool.clone();
        let mut recs = Vec::new();
        let mut reqs = Vec::new();
        for _ in 0..n {
            let (_, rec) = world.token(Kind::PutAll);
            reqs.push(callback_request_on(
                &world,
                &mut self.rng,
                &rec,
                Some(&home),
            ));
            recs.push(rec);
        }
        drop(home);
        let ids: Vec<RequestId> = reqs.iter().map(WorkRequest::id).collect();
        let by_ref = self.rng.chance(50);
        let pulled = std::cell::Cell::new(0usize);
        let pool = &self.handles[h].pool;
        let mut left = reqs.into_iter();
        let out = Self::guarded(|| {
            let count = |r: WorkRequest| {
                pulled.set(pulled.get() + 1);
                r
            };
            if by_ref {
                pool.put_all(left.by_ref().map(count))
            } else {
                pool.put_all(std::mem::take(&mut left).map(count))
            }
        });
        drop(left);
        let pulled = pulled.get();
        let put = match out {
            Ok(Ok(k)) => {
                if k != n || pulled != n {
                    world.violation(format!("put_all put {k} of {n}, pulled {pulled}"));
                }
                n
            }
            Ok(Err(e)) => {
                if !is_refusal(&e, 5) || e.request().id() != ids[pulled - 1] {
                    world.violation(format!("put_all refused {e:?}, the {pulled}th"));
                }
                recs[pulled - 1].refused.fetch_add(1, SeqCst);
                drop(e);
                pulled - 1
            }
            Err(()) => {
                recs[pulled - 1].lost_in_panic.fetch_add(1, SeqCst);
                pulled - 1
            }
        };
        for (i, rec) in recs.iter().enumerate() {
            if i < put {
                self.handles[h].ids.push((ids[i], Arc::clone(rec)));
                self.handles[h].tokens.push(Arc::clone(rec));
            } else if i >= pulled {
                rec.refused.fetch_add(1, SeqCst);
            }
        }
    }

    /// A collector's fallible streams, plain (outcomes out of `wait_with`
    /// or `poll_with`) or with `put_fallible_streaming_then`. Each item
    /// must come in order and before the stream's error, if any; a stream
    /// whose callable returned `Ok` hands nothing on, so its callable
    /// notes that as its end (`returned`), after dropping its capture,
    /// whose `Drop` may still panic it.
    fn collector_streams(&mut self, h: usize) {
        let n = 1 + self.rng.below(4) as usize;
        let world: &World = self.world;
        let mut plan = Vec::new();
        for _ in 0..n {
            let (_, rec) = world.token(Kind::CollectedStream);
            let f = fate(&mut self.rng);
            let items = self.rng.below(5) as u32;
            let then = self.rng.chance(40);
            // Made now: one the put never reaches (a put that unwound) is
            // dropped with the rest of the plan.
            let g = guard(&rec, f);
            plan.push((rec, g, f, items, then));
        }
        let all: Vec<Arc<Rec>> = plan.iter().map(|(r, ..)| Arc::clone(r)).collect();
        let drain_with_poll = self.rng.chance(30);
        let heard = |rec: &Rec, out: Result<u32, TaskError<String>>| {
            callback_here(world, rec, "a collector stream's");
            match out {
                Ok(item) => {
                    let errs = rec.err_failed.load(SeqCst)
                        + rec.err_panicked.load(SeqCst)
                        + rec.err_cancelled.load(SeqCst);
                    let k = rec.items.fetch_add(1, SeqCst);
                    if item != k || errs > 0 {
                        world.violation(format!(
                            "a collector stream's item {item} came as its item {k}, after {errs} errors"
                        ));
                    }
                }
                Err(e) => rec.error(&e),
            }
        };
        let pool = self.handles[h].pool.clone();
        let out = Self::guarded(|| {
            let mut c = pool.fallible_collector::<u32, String>();
            let mut by_id = HashMap::new();
            for (rec, mut g, f, items, then) in plan {
                let callable = move |m: u32, out: &CollectorEmitter<'_, u32, String>| {
                    g.run();
                    let rec = Arc::clone(&g.rec);
                    for i in 0..m {
                        if out.emit(i).is_err() {
                            // The collector is gone (its drain unwound).
                            break;
                        }
                        rec.emitted.fetch_add(1, SeqCst);
                    }
                    let end = outcome(&mut g, f, 0).map(drop);
                    drop(g);
                    if end.is_ok() {
                        rec.returned.fetch_add(1, SeqCst);
                    }
                    end
                };
                let put = if then {
                    let r = Arc::clone(&rec);
                    c.put_fallible_streaming_then(callable, items, move |out| heard(&r, out))
                } else {
                    c.put_fallible_streaming(callable, items)
                };
                match put {
                    Ok(id) => {
                        by_id.insert(id, rec);
                    }
                    Err(e) => {
                        rec.refused.fetch_add(1, SeqCst);
                        drop(e);
                    }
                }
            }
            let mut each = |id: RequestId, out| match by_id.get(&id) {
                Some(rec) => heard(rec, out),
                None => world.violation(format!("collector stream outcome for unknown {id:?}")),
            };
            if drain_with_poll {
                while c.pending() > 0 {
                    c.poll_with(&mut each);
                    thread::yield_now();
                }
            } else {
                c.wait_with(&mut each);
            }
        });
        if out.is_err() {
            // A callback of the handle's, run by the collector's wait to
            // make room in a bounded result queue.
            for r in all {
                r.relaxed.store(true, SeqCst);
            }
        }
    }

    /// A callback request on handle `h` whose result callback puts a
    /// follow-up on another handle of this thread (or `h`) through its
    /// `WeakPool`: the follow-up's outcome is that handle's, and if that
    /// handle is gone by then, `upgrade` says `None` and nothing is put.
    fn weak(&mut self, h: usize) {
        let t = self.rng.below(self.handles.len() as u64) as usize;
        let target = (
            self.handles[t].pool.downgrade(),
            Arc::clone(&self.handles[t].gone),
        );
        let (_, rec) = self.world.token(Kind::Callback);
        let req = callback_request_to(self.world, &mut self.rng, &rec, None, Some(target));
        let how = self.rng.below(6);
        self.put_one(h, &rec, req, how);
    }

    /// A ticket for `as_completed`, on handle `h`, put blocking or not,
    /// now and then cancelled; `None` if refused.
    fn completed_ticket(&mut self, h: usize) -> Option<(Arc<Rec>, Ticket<u32, String>)> {
        let (_, rec) = self.world.token(Kind::Completed);
        *rec.home.lock().unwrap() = Some(Arc::clone(&self.handles[h].gone));
        let f = fate(&mut self.rng);
        let mut g = guard(&rec, f);
        let spin = self.rng.below(400) as u32;
        let plain = move |_: ()| body(&mut g, f, spin);
        let pool = &self.handles[h].pool;
        let try_ = self.rng.chance(40);
        let out = Self::guarded(|| {
            if try_ {
                pool.try_submit_fallible(plain, ()).map_err(|e| {
                    e.is_full() || e.is_timed_out() || e.is_no_workers() || e.is_shut_down()
                })
            } else {
                pool.submit_fallible(plain, ()).map_err(|_| true)
            }
        });
        match out {
            Ok(Ok(t)) => {
                if self.rng.chance(10) && t.cancel() {
                    rec.cancel_true.fetch_add(1, SeqCst);
                }
                Some((rec, t))
            }
            Ok(Err(expected)) => {
                if !expected {
                    self.world.violation("unexpected submit error".into());
                }
                rec.refused.fetch_add(1, SeqCst);
                None
            }
            Err(()) => {
                rec.lost_in_panic.fetch_add(1, SeqCst);
                rec.relaxed.store(true, SeqCst);
                None
            }
        }
    }

    /// `as_completed` over tickets of handle `h`, with more pushed from its
    /// loop, from any handle of this thread (each push's index the one
    /// after the last). A callback's panic through
    /// `next` passes on, and the iterator goes on after it (its doc); now
    /// and then the set is dropped part-way, its tickets' outcomes unheard.
    fn completed(&mut self, h: usize) {
        let mut keyed = Vec::new();
        let mut first = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            if let Some((rec, t)) = self.completed_ticket(h) {
                keyed.push(rec);
                first.push(t);
            }
        }
        let mut set = callpool::as_completed(first);
        let mut budget = self.rng.below(6);
        let stop_after = self.rng.chance(8).then(|| self.rng.below(4) as usize);
        let mut heard = 0;
        while stop_after != Some(heard) {
            let next = Self::guarded(|| set.next());
            let Ok(next) = next else { continue };
            let Some((key, out)) = next else { break };
            heard += 1;
            match keyed.get(key) {
                Some(rec) => {
                    callback_here(self.world, rec, "an as-completed");
                    match out {
                        Ok(_) => {
                            rec.result.fetch_add(1, SeqCst);
                        }
                        Err(e) => rec.error(&e),
                    }
                }
                None => self
                    .world
                    .violation(format!("as_completed said index {key} of {}", keyed.len())),
            }
            while budget > 0 && self.rng.chance(60) {
                budget -= 1;
                let other = self.rng.below(self.handles.len() as u64) as usize;
                if let Some((rec, t)) = self.completed_ticket(other) {
                    TALLY[27].fetch_add(1, SeqCst);
                    let key = set.push(t);
                    if key != keyed.len() {
                        self.world
                            .violation(format!("a push got index {key}, not {}", keyed.len()));
                    }
                    keyed.push(rec);
                }
            }
        }
        drop(set);
        if heard < keyed.len() {
            for r in keyed {
                r.relaxed.store(true, SeqCst);
            }
        }
    }

    /// `ThreadPool::join` from this thread, both halves borrowing a local:
    /// one installed request, whose panic (either half's, or the first
    /// half's capture's `Drop`) comes back out of the call; the second
    /// half may go unrun only if the first panics.
    fn join(&mut self, h: usize) {
        let (_, rec) = self.world.token(Kind::Joined);
        // 0 both return, 2 the first half panics, 3 its capture's drop
        // does, 4 the second half panics.
        let f = match self.rng.below(12) {
            0 => 2,
            1 => 3,
            2 => 4,
            _ => 0,
        };
        let mut g = guard(&rec, f);
        let local = [3u32, 4];
        let (x, y) = (&local[0], &local[1]);
        let world: &World = self.world;
        let second = Arc::clone(&rec);
        let a = move |_: &Context<'_>| {
            g.run();
            g.rec.halves.fetch_add(1, SeqCst);
            let v = outcome(&mut g, if f == 2 { 2 } else { 0 }, 30).map_or(0, |_| *x);
            drop(g);
            v
        };
        let b = move |_: &Context<'_>| {
            if !on_worker() {
                world.violation("a join's second half ran off the workers".into());
            }
            second.halves.fetch_add(1, SeqCst);
            if f == 4 {
                second.panicked.fetch_add(1, SeqCst);
                boom("a join's second half");
            }
            *y
        };
        let pool = &self.handles[h].pool;
        let out = Self::guarded(|| pool.join(a, b));
        let started = rec.ran.load(SeqCst) + rec.halves.load(SeqCst);
        if let Some((va, vb)) = installed_outcome(world, &rec, "join", started, out) {
            if (va, vb) != (3, 4) {
                world.violation(format!("a join returned {:?}", (va, vb)));
            }
            rec.joined.fetch_add(1, SeqCst);
        }
    }

    fn finish_ticket(world: &World, rec: &Arc<Rec>, t: Ticket<u32, String>) {
        match Self::guarded(|| t.wait_timeout(WATCHDOG)) {
            Ok(Ok(out)) => {
                if on_worker() {
                    world.violation("ticket waited on a worker".into());
                }
                rec.ticket.fetch_add(1, SeqCst);
                match out {
                    Ok(_) => rec.result.fetch_add(1, SeqCst),
                    Err(e) => {
                        rec.error(&e);
                        0
                    }
                };
            }
            Ok(Err(_)) => {
                world.violation(format!("hang: a ticket never ended (seed {})", world.seed))
            }
            Err(()) => {
                rec.relaxed.store(true, SeqCst);
                rec.lost_in_panic.fetch_add(1, SeqCst);
            }
        }
    }

    /// Waits on every handle until nothing is pending, taking callback
    /// panics in stride.
    fn wait_all(world: &World, handles: &[Handle]) {
        Self::wait_all_then(world, handles, true);
    }

    /// As `wait_all`; `pending()` is checked only if `alone` (no other
    /// thread puts on these handles' clones meanwhile: `wait` covers what
    /// is pending, and another thread may put more just after).
    fn wait_all_then(world: &World, handles: &[Handle], alone: bool) {
        for hd in handles {
            loop {
                match Self::guarded(|| hd.pool.wait()) {
                    Ok(Ok(_)) => break,
                    Ok(Err(WaitError::NoWorkersAvailable { pending })) => {
                        if let Err(e) = hd.pool.create_workers(1) {
                            world.violation(format!(
                                "wait: NoWorkersAvailable {{ pending: {pending} }}, and no worker can be made: {e}"
                            ));
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        world.violation(format!("wait: {e:?}"));
                        break;
                    }
                    Err(()) => {}
                }
            }
            let p = hd.pool.pending();
            if alone && p != 0 {
                world.violation(format!("pending() is {p} after a wait"));
            }
        }
    }

    fn finish(mut self) -> Vec<Handle> {
        self.doing("finish".into());
        for (rec, t) in std::mem::take(&mut self.tickets) {
            Self::finish_ticket(self.world, &rec, t);
        }
        // Each thread handles its own handles' results before it ends, so
        // that no worker stays stuck on a full result queue nobody polls.
        Self::wait_all_then(self.world, &self.handles, false);
        self.handles
    }
}

struct Config {
    workers: usize,
    autoscale: bool,
    queue: usize,
    results: usize,
    threads: usize,
    steps: usize,
    ending: u64,
    /// 0: none; 1: `shutdown_now`, 2: `close` (graceful), on a handle of
    /// their own, from a thread of their own, while the program runs.
    kill: u64,
    /// The step of thread 0 after which the kill comes.
    kill_at: usize,
}

fn config(rng: &mut Rng) -> Config {
    Config {
        workers: 1 + rng.below(4) as usize,
        autoscale: rng.chance(25),
        queue: if rng.chance(50) {
            0
        } else {
            1 + rng.below(6) as usize
        },
        results: if rng.chance(50) {
            0
        } else {
            1 + rng.below(6) as usize
        },
        threads: 1 + rng.below(3) as usize,
        steps: 10 + rng.below(150) as usize,
        ending: rng.below(3),
        kill: if rng.chance(25) { 1 + rng.below(2) } else { 0 },
        kill_at: rng.below(40) as usize,
    }
}

fn build(cfg: &Config, name: &str) -> ThreadPool {
    let mut b = ThreadPool::builder()
        .workers(cfg.workers)
        .thread_name(name)
        .queue_capacity(cfg.queue)
        .result_capacity(cfg.results);
    if cfg.autoscale {
        b = b
            .min_workers(1)
            .max_workers(4)
            .keep_alive(Duration::from_millis(1));
    }
    b.build().expect("a valid configuration")
}

/// `n` requests for `put_batch`, each with a token; every member's id is
/// noted in `world.ids` (for what a shutdown hands back).
fn make_batch(world: &Arc<World>, rng: &mut Rng, n: usize) -> (Vec<WorkRequest>, Vec<Arc<Rec>>) {
    let map: Arc<Mutex<HashMap<u64, Arc<Rec>>>> = Arc::default();
    let mut inputs = Vec::new();
    let mut recs = Vec::new();
    for _ in 0..n {
        let (_, rec) = world.token(Kind::Callback);
        let f = fate(rng);
        inputs.push((guard(&rec, f), f));
        recs.push(rec);
    }
    let (w1, w2) = (Arc::clone(world), Arc::clone(world));
    let m2 = Arc::clone(&map);
    let reqs = make_requests(
        |(mut g, f): (Guard, u8)| {
            let r = Arc::clone(&g.rec);
            match body(&mut g, f, 100) {
                Ok(_) => {
                    drop(g);
                    r
                }
                // No fallible form here: a failure is a panic.
                Err(_) => {
                    r.failed.fetch_sub(1, SeqCst);
                    r.panicked.fetch_add(1, SeqCst);
                    boom("a batch member")
                }
            }
        },
        inputs,
        move |_, r: Arc<Rec>| {
            callback_here(&w1, &r, "result");
            r.result.fetch_add(1, SeqCst);
        },
        move |id, e| {
            let r = m2.lock().unwrap().get(&id.value()).cloned();
            match r {
                Some(r) => {
                    callback_here(&w2, &r, "error");
                    r.error(&match e {
                        TaskError::Panicked(m) => TaskError::Panicked(m),
                        TaskError::Cancelled => TaskError::Cancelled,
                        TaskError::Expired => TaskError::Expired,
                        _ => TaskError::Failed(String::new()),
                    });
                }
                None => w2.violation(format!("batch error for unknown id {id:?}")),
            }
        },
    );
    {
        let mut m = map.lock().unwrap();
        for (req, rec) in reqs.iter().zip(&recs) {
            m.insert(req.id().value(), Arc::clone(rec));
        }
    }
    world
        .ids
        .lock()
        .unwrap()
        .extend(map.lock().unwrap().iter().map(|(k, v)| (*k, Arc::clone(v))));
    (reqs, recs)
}

/// Puts `n` requests (callbacks, streams and executed ones) that never
/// block: refused ones end there.
fn burst(world: &Arc<World>, rng: &mut Rng, pool: &ThreadPool, n: usize) -> Vec<Arc<Rec>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let kind = match rng.below(5) {
            0 => Kind::Exec,
            1 => Kind::Stream,
            _ => Kind::Callback,
        };
        let parent = kind == Kind::Callback && rng.chance(30);
        let (first, rec) = world.token(kind);
        let req = match kind {
            // A parent's children and nested ticket belong to the burst
            // too: a shutdown may find them held, queued or running.
            _ if parent => {
                let req = parent_request(world, rng, &rec, pool);
                out.extend(world.recs.lock().unwrap()[first + 1..].iter().cloned());
                req
            }
            Kind::Exec => {
                let f = fate(rng);
                let mut g = guard(&rec, f);
                match pool.try_execute(move || {
                    if body(&mut g, f, 100).is_err() {
                        g.rec.failed.fetch_sub(1, SeqCst);
                    }
                }) {
                    Ok(id) => {
                        world
                            .ids
                            .lock()
                            .unwrap()
                            .insert(id.value(), Arc::clone(&rec));
                        out.push(rec);
                    }
                    Err(e) => {
                        rec.refused.fetch_add(1, SeqCst);
                        drop(e);
                    }
                }
                continue;
            }
            Kind::Stream => stream_request(world, rng, &rec),
            _ => callback_request(world, rng, &rec),
        };
        let id = req.id().value();
        if std::env::var("SOAK_DEBUG").is_ok() {
            eprintln!(
                "burst {kind:?}: workers {} queued {}",
                pool.workers(),
                pool.queued()
            );
        }
        world.ids.lock().unwrap().insert(id, Arc::clone(&rec));
        match pool.try_put_request(req) {
            Ok(_) => out.push(rec),
            Err(e) => {
                rec.refused.fetch_add(1, SeqCst);
                drop(e);
            }
        }
    }
    out
}

/// What a batch's progress should say, from its members' records: a
/// member handed back by a shutdown counts as cancelled (its outcome on
/// the pool it was put on again is not the batch's).
fn batch_seen(members: &[Arc<Rec>]) -> (usize, usize, usize, usize) {
    let mine = |f: &dyn Fn(&Rec) -> u32| {
        members
            .iter()
            .filter(|r| r.handed_back.load(SeqCst) == 0)
            .map(|r| f(r) as usize)
            .sum::<usize>()
    };
    let handed = members
        .iter()
        .filter(|r| r.handed_back.load(SeqCst) > 0)
        .count();
    (
        members.len(),
        mine(&|r| r.result.load(SeqCst)),
        mine(&|r| r.err_panicked.load(SeqCst) + r.err_failed.load(SeqCst)),
        mine(&|r| r.err_cancelled.load(SeqCst) + r.err_expired.load(SeqCst)) + handed,
    )
}

/// Records what a shutdown handed back: never another handle's.
fn hand_back(world: &World, back: &[WorkRequest], other_burst: &[Arc<Rec>]) {
    for req in back {
        // A child's callable notes its id once its put has returned, which
        // may be after the shutdown took the child: wait for the note.
        let id = req.id().value();
        common::until(|| world.ids.lock().unwrap().contains_key(&id));
        let rec = world.ids.lock().unwrap().get(&id).cloned();
        match rec {
            Some(r) => {
                r.handed_back.fetch_add(1, SeqCst);
                if other_burst.iter().any(|o| Arc::ptr_eq(o, &r)) {
                    world.violation("a shutdown handed back another handle's request".into());
                }
                r.relaxed.store(false, SeqCst);
            }
            None => world.violation(format!("handed back an unknown request {:?}", req.id())),
        }
    }
}

/// Puts handed-back requests on a fresh pool and waits for them.
fn rerun(world: &World, back: Vec<WorkRequest>) {
    if back.is_empty() {
        return;
    }
    let fresh = ThreadPool::builder()
        .workers(2)
        .thread_name(W2)
        .build()
        .unwrap();
    for req in back {
        match Program::guarded(|| fresh.put_request(req)) {
            Ok(Ok(_)) => {}
            other => world.violation(format!("a handed-back request was refused: {other:?}")),
        }
    }
    Program::wait_all(
        world,
        &[Handle {
            pool: fresh,
            ids: Vec::new(),
            tokens: Vec::new(),
            gone: Arc::default(),
        }],
    );
}

fn run_seed(seed: u64) -> Vec<String> {
    let world = Arc::new(World {
        seed,
        recs: Mutex::new(Vec::new()),
        violations: Mutex::new(Vec::new()),
        phase: Mutex::new("start".into()),
        control: Mutex::new(()),
        no_cb_panics: AtomicBool::new(false),
        ids: Mutex::new(HashMap::new()),
        child_ids: Mutex::new(Vec::new()),
        doing: Mutex::new(HashMap::new()),
    });
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watched = Arc::clone(&world);
    let watchdog = thread::spawn(move || {
        if done_rx.recv_timeout(WATCHDOG) == Err(mpsc::RecvTimeoutError::Timeout) {
            // Straight to the process's stderr: the harness captures
            // `eprintln!`, and the abort would lose it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "soak: hang at seed {seed} in phase {:?}, threads doing {:?}; rerun with SOAK_SEED={seed}",
                watched.phase.lock().map(|p| p.clone()).unwrap_or_default(),
                watched.doing.lock().map(|p| p.clone()).unwrap_or_default()
            );
            std::process::abort();
        }
    });

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let cfg = config(&mut rng);
    *world.phase.lock().unwrap() = format!(
        "start: {} workers{}, queue {}, results {}, {} threads, {} steps, ending {}",
        cfg.workers,
        if cfg.autoscale { " (autoscaling)" } else { "" },
        cfg.queue,
        cfg.results,
        cfg.threads,
        cfg.steps,
        cfg.ending
    );
    let pool = build(&cfg, W1);
    let shape = world.phase.lock().unwrap().clone();
    if std::env::var("SOAK_DEBUG").is_ok() {
        eprintln!("seed {seed}: {shape}");
    }
    world.phase(format!("{shape}; program, kill {}", cfg.kill));
    let (kill_tx, kill_rx) = mpsc::channel::<()>();
    let killer = {
        let handle = pool.new_handle();
        let world = Arc::clone(&world);
        let kill = cfg.kill;
        thread::spawn(move || {
            if kill_rx.recv().is_err() {
                return;
            }
            if kill == 1 {
                let back = handle.shutdown_now();
                if !back.is_empty() {
                    world.violation(format!(
                        "shutdown_now on a handle that put nothing handed back {}",
                        back.len()
                    ));
                }
            } else if let Err(e) = handle.close() {
                world.violation(format!("close: {e:?}"));
            }
        })
    };
    let mut kill_tx = (cfg.kill > 0).then_some(kill_tx);
    let mut joins = Vec::new();
    for t in 0..cfg.threads {
        let handle = if t == 0 || rng.chance(50) {
            pool.clone()
        } else {
            pool.new_handle()
        };
        let world = Arc::clone(&world);
        let mut trng = Rng(rng.next() | 1);
        let steps = cfg.steps;
        let multi = cfg.results == 0;
        let kill = if t == 0 {
            kill_tx.take().map(|k| (k, cfg.kill_at))
        } else {
            None
        };
        joins.push(thread::spawn(move || {
            let mut p = Program {
                world: &world,
                me: t,
                multi,
                rng: Rng(trng.next() | 1),
                handles: vec![Handle {
                    pool: handle,
                    ids: Vec::new(),
                    tokens: Vec::new(),
                    gone: Arc::default(),
                }],
                tickets: Vec::new(),
                batch_done: Vec::new(),
            };
            let mut kill = kill;
            for i in 0..steps {
                p.step();
                if kill.as_ref().is_some_and(|(_, at)| *at == i) {
                    let _ = kill.take().unwrap().0.send(());
                }
            }
            drop(kill);
            let batches: Vec<_> = p
                .batch_done
                .iter()
                .map(|(d, b, r)| (Arc::clone(d), b.clone(), r.clone()))
                .collect();
            let handles = p.finish();
            world.doing.lock().unwrap().insert(t, "done".into());
            (handles, batches)
        }));
    }
    let mut handles = Vec::new();
    let mut batches = Vec::new();
    for j in joins {
        match j.join() {
            Ok((h, b)) => {
                handles.extend(h);
                batches.extend(b);
            }
            Err(e) => panic::resume_unwind(e),
        }
    }
    drop(kill_tx);
    killer.join().unwrap();
    world.phase("ending");
    let graceful = cfg.ending == 0;
    // A last burst, not waited for, on the main handle and on another:
    // what the ending finds queued or running.
    if graceful {
        world.no_cb_panics.store(true, SeqCst);
    }
    let other = pool.new_handle();
    // Every program thread waited on its handles: what they put has ended,
    // and is checked strictly whatever the ending.
    Program::wait_all(&world, &handles);
    // Sometimes no worker is left to run the burst: the ending finds it
    // queued (an autoscaling pool starts workers again).
    let stalled = rng.chance(40);
    if stalled {
        let n = pool.dismiss_workers(usize::MAX);
        if std::env::var("SOAK_DEBUG").is_ok() {
            eprintln!(
                "seed {seed}: dismissed {n}, workers {} autoscale {}",
                pool.workers(),
                cfg.autoscale
            );
        }
    }
    world.phase(format!("ending: burst (stalled {stalled})"));
    let n_burst = rng.below(12) as usize;
    let main_burst = burst(&world, &mut rng, &pool, n_burst);
    let other_burst = burst(&world, &mut rng, &other, n_burst);
    // Tickets on both handles, never blocking: whatever the ending, each
    // hears its outcome (Cancelled if it never started: "until a worker is
    // added or the pool closes").
    let mut burst_tickets = Vec::new();
    for h in [&pool, &other] {
        for _ in 0..rng.below(4) {
            let (_, rec) = world.token(Kind::Ticket);
            let f = fate(&mut rng);
            let mut g = guard(&rec, f);
            match h.try_submit_fallible(move |_: ()| body(&mut g, f, 100), ()) {
                Ok(t) => burst_tickets.push((rec, t)),
                Err(e) => {
                    rec.refused.fetch_add(1, SeqCst);
                    drop(e);
                }
            }
        }
    }
    // Sometimes a batch on the main handle. On a bounded queue it blocks
    // for room, handling only the main handle's results: with the other
    // handle's bounded result queue full and nobody polling it, the
    // workers would never make room (the deadlock `put_request`
    // documents), so not then.
    let mut burst_batch = None;
    if rng.chance(40) && (cfg.queue == 0 || cfg.results == 0) {
        let n = 1 + rng.below(6) as usize;
        let (reqs, members) = make_batch(&world, &mut rng, n);
        match Program::guarded(|| pool.put_batch(reqs)) {
            Ok(Ok(batch)) => {
                let done = Arc::new(AtomicU32::new(0));
                let d = Arc::clone(&done);
                batch.on_done(move |_| {
                    d.fetch_add(1, SeqCst);
                });
                burst_batch = Some((done, batch, members));
            }
            Ok(Err(e)) => {
                for r in &members {
                    r.refused.fetch_add(1, SeqCst);
                }
                drop(e);
            }
            Err(()) => {
                for r in &members {
                    r.relaxed.store(true, SeqCst);
                }
            }
        }
    }
    let main_burst: Vec<Arc<Rec>> = main_burst
        .into_iter()
        .chain(burst_batch.iter().flat_map(|(_, _, m)| m.iter().cloned()))
        .collect();
    let recs: Vec<Arc<Rec>> = world.recs.lock().unwrap().clone();
    let mut last_stats = None;
    match cfg.ending {
        0 => {
            drop(handles);
            let other = Handle {
                pool: other,
                ids: Vec::new(),
                tokens: Vec::new(),
                gone: Arc::default(),
            };
            // Not with a bounded result queue: a worker stuck on the main
            // handle's full queue, which nobody polls meanwhile, would keep
            // this wait waiting for ever (as `put_request` documents).
            if rng.chance(50) && cfg.results == 0 {
                world.phase("ending: the other handle's wait before the shutdown");
                Program::wait_all(&world, std::slice::from_ref(&other));
            }
            let other = other.pool;
            let shut = Arc::new(AtomicBool::new(false));
            let shut_seen = Arc::clone(&shut);
            let other_thread = thread::spawn(move || {
                // Polls the other handle while the shutdown drains: its
                // bounded result queue may need it. With no worker left, its
                // queued requests are cancelled to it by the shutdown's
                // sweep; a wait before that says NoWorkersAvailable.
                loop {
                    let after = shut_seen.load(SeqCst);
                    match other.wait() {
                        Err(WaitError::NoWorkersAvailable { .. }) if !after => {
                            thread::sleep(Duration::from_millis(1));
                        }
                        w => return (other, w),
                    }
                }
            });
            world.phase("ending: shutdown");
            let shut_out = Program::guarded(|| pool.shutdown());
            shut.store(true, SeqCst);
            world.phase("ending: the other handle's wait");
            match shut_out {
                Ok(Ok(())) => {}
                Ok(Err(ShutdownError::Unrun(back))) if stalled => {
                    hand_back(&world, &back, &other_burst);
                    rerun(&world, back);
                }
                Ok(Err(e)) => world.violation(format!("shutdown: {e:?}")),
                Err(()) => world.violation("a graceful shutdown panicked".into()),
            }
            let (other, w) = other_thread.join().unwrap();
            // The shutdown has joined every worker: the counts are final.
            last_stats = Some(other.stats());
            if let Err(e) = w {
                world.violation(format!("the other handle's wait: {e:?}"));
            }
            if other.pending() != 0 {
                world.violation(format!("other pending {} after wait", other.pending()));
            }
            // Batches: every one ended; its done callback ran once.
            for (done, batch, members) in batches.iter().chain(&burst_batch) {
                if !members.iter().all(|r| r.strict()) {
                    continue;
                }
                let p = batch.progress();
                if !p.is_complete() {
                    world.violation(format!("a batch is not complete after wait: {p:?}"));
                }
                let seen = batch_seen(members);
                if (p.total, p.done, p.failed, p.cancelled) != seen {
                    world.violation(format!(
                        "a batch's progress {p:?} disagrees with its members' outcomes (total, done, failed, cancelled) {seen:?}"
                    ));
                }
                if done.load(SeqCst) != 1 {
                    world.violation(format!(
                        "a batch-done callback ran {} times",
                        done.load(SeqCst)
                    ));
                }
            }
        }
        1 => {
            // shutdown_now on the main handle: what it hands back is put
            // again on a fresh pool; the rest of the main handle's outcomes
            // are discarded (its clones are gone), so only "at most once"
            // holds for them. The other handle hears every one of its own.
            drop(handles);
            for r in &main_burst {
                r.relaxed.store(true, SeqCst);
            }
            if std::env::var("SOAK_DEBUG").is_ok() {
                eprintln!(
                    "seed {seed}: stalled {stalled} burst {} queued {} workers {}",
                    main_burst.len(),
                    pool.queued(),
                    pool.workers()
                );
            }
            world.phase("ending: shutdown_now");
            let back = match Program::guarded(|| pool.shutdown_now()) {
                Ok(back) => back,
                Err(()) => {
                    world.violation("shutdown_now panicked".into());
                    Vec::new()
                }
            };
            if std::env::var("SOAK_DEBUG").is_ok() {
                eprintln!("seed {seed}: back {}", back.len());
            }
            hand_back(&world, &back, &other_burst);
            if let Some((done, batch, members)) = &burst_batch {
                if members.iter().all(|r| r.handed_back.load(SeqCst) == 1) {
                    let p = batch.progress();
                    if (p.total, p.cancelled) != (members.len(), members.len())
                        || !p.is_complete()
                        || done.load(SeqCst) != 1
                    {
                        world.violation(format!(
                            "a batch handed back whole by shutdown_now: {p:?}, done callback ran {} times",
                            done.load(SeqCst)
                        ));
                    }
                }
            }
            world.phase("ending: rerun");
            rerun(&world, back);
            world.phase("ending: the other handle's wait");
            Program::wait_all(
                &world,
                &[Handle {
                    pool: other,
                    ids: Vec::new(),
                    tokens: Vec::new(),
                    gone: Arc::default(),
                }],
            );
        }
        _ => {
            for r in main_burst.iter().chain(&other_burst) {
                r.relaxed.store(true, SeqCst);
            }
            drop(handles);
            drop(other);
            drop(pool);
        }
    }
    world.phase("ending: the burst's tickets");
    for (rec, t) in burst_tickets {
        Program::finish_ticket(&world, &rec, t);
    }
    // Every capture is dropped exactly once, eventually (workers finish
    // what they run after the pool closes).
    world.phase("drops");
    // A capture still held at half the watchdog is named before the
    // watchdog's abort, which says only the phase.
    let all_dropped = || recs.iter().all(|r| r.dropped.load(SeqCst) >= 1);
    let drops_from = Instant::now();
    while !all_dropped() && drops_from.elapsed() < WATCHDOG / 2 {
        thread::sleep(Duration::from_millis(1));
    }
    for (i, r) in recs.iter().enumerate() {
        if r.dropped.load(SeqCst) == 0 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "soak: seed {seed}: token {i} never dropped: {r:?}"
            );
        }
    }
    common::until(all_dropped);
    world.phase("checks");

    let mut ran_first = 0u64;
    let mut panicked = 0u64;
    let mut failed = 0u64;
    let mut cancelled = 0u64;
    for (i, r) in recs.iter().enumerate() {
        let l = |a: &AtomicU32| a.load(SeqCst);
        let ran = l(&r.ran);
        let ends = r.ends();
        let say = |what: &str| format!("token {i} ({:?}): {what}: {r:?}", r.kind);
        if ran >= 1000 {
            world.violation(say("a callable ran on a thread that is not a worker"));
        }
        if ran > 1 {
            world.violation(say("the callable ran twice"));
        }
        if l(&r.dropped) != 1 {
            world.violation(say("its captures were dropped other than once"));
        }
        if l(&r.handed_back) > 1 {
            world.violation(say("handed back twice"));
        }
        if ends > 1 {
            world.violation(say("ended more than once"));
        }
        if r.strict() && ends != 1 {
            world.violation(say("did not end exactly once"));
        }
        if r.kind == Kind::Exec && l(&r.ran) + l(&r.unrun) != 1 {
            world.violation(say("an executed request neither ran nor was dropped unrun"));
        }
        if l(&r.result) == 1 && ran == 0 {
            world.violation(say("a result without a run"));
        }
        if (l(&r.err_cancelled) + l(&r.err_expired)) > 0 && ran > 0 {
            world.violation(say("ran, yet cancelled or expired"));
        }
        if l(&r.cancel_true) > 0 && ran > 0 {
            world.violation(say("cancel said true, yet it ran"));
        }
        if l(&r.cancel_true) > 0 && r.strict() && l(&r.err_cancelled) != 1 {
            world.violation(say("cancel said true, yet no Cancelled outcome"));
        }
        if r.strict() && l(&r.err_panicked) == 1 && l(&r.panicked) == 0 {
            world.violation(say("Panicked without a panic"));
        }
        if r.strict() && l(&r.panicked) == 1 && r.kind != Kind::Exec && l(&r.err_panicked) != 1 {
            world.violation(say("a panic that did not come back as Panicked"));
        }
        if matches!(r.kind, Kind::Stream | Kind::CollectedStream)
            && r.strict()
            && ends == 1
            && l(&r.items) != l(&r.emitted)
        {
            world.violation(say("a stream ended with items missing"));
        }
        if l(&r.joined) == 1 && l(&r.halves) != 2 {
            world.violation(say("a join's halves did not both run once"));
        }
        if l(&r.handed_back) == 0
            && l(&r.uncounted) == 0
            && !r.limbo.load(SeqCst)
            && !r.second.load(SeqCst)
        {
            let c = match r.kind {
                Kind::Exec => l(&r.unrun) == 1 && l(&r.refused) == 0,
                _ => l(&r.err_cancelled) + l(&r.err_expired) == 1,
            };
            if c && std::env::var("SOAK_DEBUG").is_ok() {
                eprintln!("cancelled token {i}: {r:?}");
            }
            cancelled += u64::from(c);
        }
        ran_first += u64::from(l(&r.ran_first).min(1));
        if l(&r.ran_first) == 1 {
            panicked += u64::from(l(&r.panicked).min(1));
            failed += u64::from(l(&r.failed).min(1) * u32::from(l(&r.panicked) == 0));
        }
    }
    // Outcomes discarded (a dropped handle, a panic through a put) leave
    // cancellations unseen: the cancelled count is compared only when
    // every outcome was heard.
    let all_strict = recs.iter().all(|r| r.strict() || r.limbo.load(SeqCst));
    if let (true, Some(s)) = (graceful, last_stats) {
        TALLY[10].fetch_add(1, SeqCst);
        TALLY[11].fetch_add(u64::from(all_strict), SeqCst);
        let ended = s.completed + s.failed + s.panicked;
        if ended != ran_first
            || s.panicked != panicked
            || s.failed != failed
            || (all_strict && s.cancelled != cancelled)
        {
            world.violation(format!(
                "stats {s:?} disagree: ran {ran_first}, panicked {panicked}, failed {failed}, \
                 cancelled or expired {cancelled}"
            ));
        }
    }
    for r in &recs {
        let l = |a: &AtomicU32| u64::from(a.load(SeqCst));
        let t = &TALLY;
        t[0].fetch_add(1, SeqCst);
        t[1].fetch_add(u64::from(r.strict()), SeqCst);
        t[2].fetch_add(l(&r.handed_back), SeqCst);
        t[3].fetch_add(l(&r.cancel_true), SeqCst);
        t[4].fetch_add(l(&r.err_cancelled), SeqCst);
        t[5].fetch_add(l(&r.err_expired), SeqCst);
        t[6].fetch_add(l(&r.err_panicked), SeqCst);
        t[7].fetch_add(l(&r.refused), SeqCst);
        t[8].fetch_add(l(&r.unrun), SeqCst);
        t[9].fetch_add(l(&r.ran), SeqCst);
        // Installed work and scopes' requests: made, and ended with a value.
        if r.kind == Kind::Installed {
            t[12].fetch_add(1, SeqCst);
            t[13].fetch_add(l(&r.result), SeqCst);
        }
        if r.kind == Kind::Scoped {
            t[14].fetch_add(1, SeqCst);
            t[15].fetch_add(l(&r.result), SeqCst);
        }
        if r.kind == Kind::Windowed {
            t[16].fetch_add(1, SeqCst);
            t[17].fetch_add(l(&r.result), SeqCst);
        }
        // put_all, collector streams, timed requests, follow-ups,
        // as-completed tickets and joins (t[25] and t[27] are counted
        // where they happen).
        match r.kind {
            Kind::PutAll => {
                t[18].fetch_add(1, SeqCst);
                t[19].fetch_add(l(&r.result), SeqCst);
            }
            Kind::CollectedStream => {
                t[20].fetch_add(1, SeqCst);
                t[21].fetch_add(l(&r.items), SeqCst);
            }
            Kind::FollowUp => {
                t[24].fetch_add(1, SeqCst);
            }
            Kind::Completed => {
                t[26].fetch_add(1, SeqCst);
            }
            Kind::Joined => {
                t[28].fetch_add(1, SeqCst);
                t[29].fetch_add(l(&r.result), SeqCst);
            }
            _ => {}
        }
        t[22].fetch_add(u64::from(r.timed.load(SeqCst)), SeqCst);
        t[23].fetch_add(l(&r.timings), SeqCst);
    }
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let v = world.violations.lock().unwrap().clone();
    v
}

fn run_seeds(seeds: impl Iterator<Item = u64>) {
    common::hide_panics_starting_with(BOOM);
    if let Some(one) = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()) {
        let v = run_seed(one);
        assert!(v.is_empty(), "seed {one}: {v:#?}");
        return;
    }
    let mut failures = Vec::new();
    let mut n = 0;
    for seed in seeds {
        let v = match panic::catch_unwind(|| run_seed(seed)) {
            Ok(v) => v,
            Err(e) => {
                let m = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                vec![format!("panicked: {m:?}")]
            }
        };
        n += 1;
        if n % 10_000 == 0 {
            eprintln!("soak: {n} seeds so far (last {seed})");
        }
        if !v.is_empty() {
            eprintln!("soak: seed {seed} failed (rerun with SOAK_SEED={seed}):\n{v:#?}");
            failures.push(seed);
            if failures.len() >= 5 {
                break;
            }
        }
    }
    let t: Vec<u64> = TALLY.iter().map(|a| a.load(SeqCst)).collect();
    let said: Vec<String> = TALLY_NAMES
        .iter()
        .zip(&t)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    eprintln!("soak: {n} seeds run; {}", said.join(", "));
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn soak_short() {
    run_seeds(0..300);
}

#[test]
#[ignore = "long: SOAK_SEEDS=n (default 5000), SOAK_FIRST=n"]
fn soak_long() {
    let count: u64 = std::env::var("SOAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let first: u64 = std::env::var("SOAK_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    run_seeds(first..first + count);
}
