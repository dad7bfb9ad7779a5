//! Adversarial trial of worker hooks, worker states and user `Drop`s around
//! the pool's lifecycle: start hooks and state makers that panic for some
//! workers only (by index) while workers are created, resized up, grown by
//! autoscaling and made for the global pool (in a child process); stop
//! hooks and states whose `Drop` panics while workers are dismissed,
//! retired, shut down (gracefully, now, by timeout) and while the pool is
//! dropped; stop hooks that block until another thread used the pool, or
//! that use it themselves (`wait`, `execute`, `close`,
//! `join_all_dismissed_workers`); states whose `Drop` puts work on the
//! pool; and requests whose captures panic when dropped while a pool with
//! panicking stop hooks hands them back or discards them.
//!
//! Each asserts: no hang, no abort, exact `workers()`/`threads()` counts,
//! each hook exactly once per worker index, every state made dropped once,
//! every worker thread really ended (a thread-local set by the start hook
//! is destroyed when the thread exits), each accepted request ended
//! exactly once, and each panic logged as the docs say.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use callpool::{
    configure_global, global, Builder, Context, PutError, ShutdownError, ThreadPool, WaitError,
    WeakPool, WorkRequest,
};
use common::one_way::{Gate as OneWay, OpenOnDrop};
use common::{
    child_ran, hide_panics_starting_with, is_child, logs, run_in_child, until, within, Dropped,
    TestResult, HANG,
};

const CHILD_ENV: &str = "CALLPOOL_HOOKS_LIFECYCLE_CHILD";
const MAX_INDEX: usize = 16;

fn quiet() {
    hide_panics_starting_with("hla:");
    logs::install();
}

thread_local! {
    /// Set by the start hook; dropped when the worker's thread ends.
    static EXIT_MARK: RefCell<Option<Dropped>> = const { RefCell::new(None) };
}

/// What the hooks and states of one pool saw, per worker index.
struct Probe {
    started: Vec<AtomicUsize>,
    stopped: Vec<AtomicUsize>,
    made: Vec<AtomicUsize>,
    state_dropped: Vec<AtomicUsize>,
    /// Worker threads that really ended.
    exited: Arc<AtomicUsize>,
    /// Hooks called with an index other than their thread name's.
    misnamed: AtomicUsize,
}

impl Probe {
    fn new() -> Arc<Probe> {
        let zeros = || (0..MAX_INDEX).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Probe {
            started: zeros(),
            stopped: zeros(),
            made: zeros(),
            state_dropped: zeros(),
            exited: common::counter(),
            misnamed: AtomicUsize::new(0),
        })
    }

    fn counts(v: &[AtomicUsize]) -> Vec<usize> {
        v.iter().map(|c| c.load(SeqCst)).collect()
    }

    /// Workers `0..n` each started, stopped, and dropped the state it
    /// made, exactly once; no other index appeared; `n` threads ended.
    fn assert_all_ended(&self, n: usize, what: &str) {
        let once: Vec<usize> = (0..MAX_INDEX).map(|i| usize::from(i < n)).collect();
        // A dropped pool's workers end on their own, nobody joins them: a
        // slow one may not have run even its start hook yet.
        until(|| self.exited.load(SeqCst) == n);
        assert_eq!(Self::counts(&self.started), once, "{what}: start hooks");
        assert_eq!(Self::counts(&self.stopped), once, "{what}: stop hooks");
        assert_eq!(
            Self::counts(&self.made),
            Self::counts(&self.state_dropped),
            "{what}: every state made is dropped once"
        );
        assert_eq!(self.exited.load(SeqCst), n, "{what}: threads ended");
        assert_eq!(self.misnamed.load(SeqCst), 0, "{what}: hook indexes");
    }
}

/// A worker's state; its `Drop` counts, then panics if told to.
struct State {
    index: usize,
    probe: Arc<Probe>,
    panics: bool,
}

impl Drop for State {
    fn drop(&mut self) {
        self.probe.state_dropped[self.index].fetch_add(1, SeqCst);
        if self.panics {
            panic!("hla: state {} dropped", self.index);
        }
    }
}

/// Which workers' hooks, state makers and states panic.
#[derive(Clone, Copy)]
struct Faults {
    start: fn(usize) -> bool,
    make: fn(usize) -> bool,
    stop: fn(usize) -> bool,
    drop: fn(usize) -> bool,
}

fn probed(builder: Builder, probe: &Arc<Probe>, faults: Faults) -> Builder {
    let (p1, p2, p3) = (Arc::clone(probe), Arc::clone(probe), Arc::clone(probe));
    builder
        .on_worker_start(move |i| {
            p1.started[i].fetch_add(1, SeqCst);
            if thread_index() != i {
                p1.misnamed.fetch_add(1, SeqCst);
            }
            let mark = Dropped(Arc::clone(&p1.exited));
            EXIT_MARK.with(|m| *m.borrow_mut() = Some(mark));
            if (faults.start)(i) {
                panic!("hla: start {i}");
            }
        })
        .worker_state(move |i| {
            if (faults.make)(i) {
                panic!("hla: make {i}");
            }
            p2.made[i].fetch_add(1, SeqCst);
            State {
                index: i,
                probe: Arc::clone(&p2),
                panics: (faults.drop)(i),
            }
        })
        .on_worker_stop(move |i| {
            p3.stopped[i].fetch_add(1, SeqCst);
            if thread_index() != i {
                p3.misnamed.fetch_add(1, SeqCst);
            }
            if (faults.stop)(i) {
                panic!("hla: stop {i}");
            }
        })
}

/// The index at the end of this worker thread's name (`prefix-index`).
fn thread_index() -> usize {
    let name = thread::current().name().unwrap().to_owned();
    name.rsplit('-').next().unwrap().parse().unwrap()
}

/// Puts `n` requests that each check their worker's state against the
/// faults (state present iff its maker did not panic, and of that index),
/// waits, and asserts each ran exactly once.
fn run_checked(pool: &ThreadPool, n: usize, faults: Faults) {
    let hits = common::hit_counters(n);
    for i in 0..n {
        let hits = Arc::clone(&hits);
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, i: usize| {
                    let index = thread_index();
                    let state = cx.worker_state::<State>().map(|s| s.index);
                    let expected = (!(faults.make)(index)).then_some(index);
                    (i, state == expected)
                },
                i,
            )
            .on_result(move |_, (i, ok)| {
                assert!(ok, "request {i} saw the wrong worker state");
                hits[i].fetch_add(1, SeqCst);
            }),
        )
        .unwrap();
    }
    within_wait(pool);
    common::assert_each_once("requests", &hits);
}

fn within_wait(pool: &ThreadPool) {
    let p = pool.clone();
    within("wait", move || p.wait().map(|_| ()).unwrap());
}

const SOME_FAIL: Faults = Faults {
    start: |i| i % 2 == 1,
    make: |i| i % 3 == 0,
    stop: |i| i % 4 == 1,
    drop: |i| i % 2 == 0,
};

const ALL_FAIL: Faults = Faults {
    start: |_| true,
    make: |_| false,
    stop: |_| true,
    drop: |_| true,
};

// Index-dependent start and make panics while the pool is built, grows by
// `create_workers` and `resize`, shrinks by `resize`, and shuts down: every
// worker counts, runs requests with the right state, and ends.
#[test]
fn index_dependent_start_and_state_panics_across_create_and_resize() -> TestResult {
    quiet();
    let probe = Probe::new();
    let pool = probed(
        ThreadPool::builder().workers(2).thread_name("hla-grow"),
        &probe,
        SOME_FAIL,
    )
    .build()?;
    pool.create_workers(3)?;
    pool.resize(8)?;
    assert_eq!((pool.workers(), pool.threads()), (8, 8));
    run_checked(&pool, 64, SOME_FAIL);
    pool.resize(3)?;
    let p = pool.clone();
    assert_eq!(within("join", move || p.join_all_dismissed_workers()), 5);
    assert_eq!((pool.workers(), pool.threads()), (3, 3));
    let stopped = Probe::counts(&probe.stopped);
    assert_eq!(&stopped[..8], [0, 0, 0, 1, 1, 1, 1, 1], "newest dismissed");
    run_checked(&pool, 16, SOME_FAIL);
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    probe.assert_all_ended(8, "create/resize");
    for what in [
        "a worker start hook panicked",
        "making worker 0's state panicked",
    ] {
        assert!(logs::error_with(&[what]).is_some(), "{what} not logged");
    }
    assert!(logs::error_with(&["hla: stop 1"]).is_some());
    assert!(logs::error_with(&["hla: state 4 dropped"]).is_some());
    Ok(())
}

// Autoscaling growth starts workers whose start hook or state maker
// panics; their retirement runs stop hooks and state drops that panic.
#[test]
fn autoscale_growth_and_retirement_with_panicking_hooks() -> TestResult {
    quiet();
    let probe = Probe::new();
    let pool = probed(
        ThreadPool::builder()
            .min_workers(1)
            .max_workers(4)
            .keep_alive(Duration::from_millis(10))
            .thread_name("hla-scale"),
        &probe,
        SOME_FAIL,
    )
    .build()?;
    let gate = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = mpsc::channel();
    let ran = common::hit_counters(4);
    for i in 0..4 {
        let (gate, tx, ran) = (Arc::clone(&gate), started_tx.clone(), Arc::clone(&ran));
        pool.execute(move || {
            tx.send(()).unwrap();
            gate.pass();
            ran[i].fetch_add(1, SeqCst);
        })?;
    }
    for _ in 0..4 {
        started.recv_timeout(HANG)?;
    }
    assert_eq!((pool.workers(), pool.threads()), (4, 4));
    gate.open();
    within_wait(&pool);
    common::assert_each_once("gated requests", &ran);
    until(|| pool.workers() == 1 && pool.threads() == 1);
    until(|| Probe::counts(&probe.stopped).iter().sum::<usize>() == 3);
    until(|| probe.exited.load(SeqCst) == 3);
    // Growing again from one worker: new indexes, the same checks.
    run_checked(&pool, 8, SOME_FAIL);
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    let started = Probe::counts(&probe.started).iter().sum::<usize>();
    assert!(started >= 4, "{started}");
    probe.assert_all_ended(started, "autoscale");
    Ok(())
}

// Every way workers end, with every stop hook and every state `Drop`
// panicking (and every start hook): the end still comes, counts end at
// zero, each hook runs once, every thread ends.
#[test]
fn panicking_stop_hooks_and_state_drops_in_every_ending() -> TestResult {
    quiet();
    for way in [
        "dismiss",
        "shutdown",
        "shutdown_now",
        "shutdown_timeout",
        "drop",
    ] {
        let probe = Probe::new();
        let pool = probed(
            ThreadPool::builder().workers(3).thread_name("hla-end"),
            &probe,
            ALL_FAIL,
        )
        .build()?;
        run_checked(&pool, 12, ALL_FAIL);
        let weak = pool.downgrade();
        match way {
            "dismiss" => {
                assert_eq!(pool.dismiss_workers(3), 3);
                let p = pool.clone();
                assert_eq!(within("join", move || p.join_all_dismissed_workers()), 3);
                assert_eq!((pool.workers(), pool.threads()), (0, 0));
            }
            "shutdown" => within(way, move || pool.shutdown()).unwrap(),
            "shutdown_now" => assert_eq!(within(way, move || pool.shutdown_now().len()), 0),
            "shutdown_timeout" => {
                within(way, move || pool.shutdown_timeout(HANG)).unwrap();
            }
            _ => drop(pool),
        }
        probe.assert_all_ended(3, way);
        if way != "dismiss" {
            assert!(weak.upgrade().is_none(), "{way}");
        }
    }
    Ok(())
}

// A stop hook that blocks until another thread has used the pool's handle
// (counts, a put, a wait): `shutdown` waits for the hook, as documented,
// and the other thread's calls neither hang nor miscount.
#[test]
fn a_stop_hook_blocked_on_another_thread_using_the_pool() -> TestResult {
    quiet();
    let hold = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&hold));
    let (in_hook_tx, in_hook) = mpsc::channel();
    let in_hook_tx = Mutex::new(in_hook_tx);
    let h = Arc::clone(&hold);
    let probe = Probe::new();
    let pool = probed(ThreadPool::builder().workers(2), &probe, ALL_FAIL)
        .on_worker_stop(move |i| {
            in_hook_tx.lock().unwrap().send(i).unwrap();
            h.pass();
        })
        .build()?;
    let other = pool.clone();
    let (done_tx, done) = mpsc::channel();
    let p = pool.clone();
    drop(pool);
    thread::spawn(move || done_tx.send(p.shutdown().is_ok()).unwrap());
    in_hook.recv_timeout(HANG)?;
    in_hook.recv_timeout(HANG)?;
    // Both workers sit in their stop hooks: the other thread's handle.
    let user = thread::spawn(move || {
        let threads = other.threads();
        let refused = matches!(
            other.put_request(WorkRequest::new(|x: u8| x, 1)),
            Err(PutError::ShutDown(_))
        );
        let waited = other.wait();
        (
            threads,
            other.workers(),
            refused,
            waited,
            other.is_shut_down(),
        )
    });
    let (threads, workers, refused, waited, shut) = user.join().unwrap();
    assert_eq!((threads, workers, refused, shut), (2, 0, true, true));
    assert_eq!(waited, Ok(0));
    assert!(
        done.try_recv().is_err(),
        "shutdown returned during the stop hooks"
    );
    hold.open();
    assert_eq!(done.recv_timeout(HANG), Ok(true));
    until(|| probe.exited.load(SeqCst) == 2);
    Ok(())
}

/// A pool handle the hooks find once it is built.
type Later = Arc<OnceLock<WeakPool>>;

// Hooks that call back into their own pool: `wait` and `close` refuse on
// a worker thread; a put from a start or stop hook is run exactly once;
// `join_all_dismissed_workers` from a stop hook does not hang.
#[test]
fn hooks_that_use_their_own_pool() -> TestResult {
    quiet();
    let later: Later = Arc::new(OnceLock::new());
    let ran = common::hit_counters(MAX_INDEX * 2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (l1, r1, s1) = (Arc::clone(&later), Arc::clone(&ran), Arc::clone(&seen));
    let (l2, r2, s2) = (Arc::clone(&later), Arc::clone(&ran), Arc::clone(&seen));
    let accepted = common::counter();
    let (a1, a2) = (Arc::clone(&accepted), Arc::clone(&accepted));
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("hla-self")
        .on_worker_start(move |i| {
            // Worker 0 may start before or after `later` is set: skipped.
            if i == 0 {
                return;
            }
            let Some(p) = l1.get().and_then(WeakPool::upgrade) else {
                return;
            };
            let waited = matches!(p.wait(), Err(WaitError::OnWorkerThread));
            let closed = matches!(p.close(), Err(ShutdownError::OnWorkerThread));
            s1.lock().unwrap().push(("start", i, waited, closed));
            let r = Arc::clone(&r1);
            if p.execute(move || {
                r[i].fetch_add(1, SeqCst);
            })
            .is_ok()
            {
                a1.fetch_add(1, SeqCst);
            }
        })
        .on_worker_stop(move |i| {
            let Some(p) = l2.get().and_then(WeakPool::upgrade) else {
                return;
            };
            let waited = matches!(p.wait(), Err(WaitError::OnWorkerThread));
            let closed = matches!(p.close(), Err(ShutdownError::OnWorkerThread));
            s2.lock().unwrap().push(("stop", i, waited, closed));
            let _ = p.join_all_dismissed_workers();
            let r = Arc::clone(&r2);
            if p.execute(move || {
                r[MAX_INDEX + i].fetch_add(1, SeqCst);
            })
            .is_ok()
            {
                a2.fetch_add(1, SeqCst);
            }
        })
        .build()?;
    later.set(pool.downgrade()).unwrap();
    pool.create_workers(2)?; // workers 1 and 2 put from their start hooks
    assert_eq!(pool.dismiss_workers(1), 1); // worker 2 puts from its stop hook
    let p = pool.clone();
    assert_eq!(within("join", move || p.join_all_dismissed_workers()), 1);
    assert_eq!((pool.workers(), pool.threads()), (2, 2));
    within_wait(&pool);
    until(|| ran.iter().map(|r| r.load(SeqCst)).sum::<usize>() == 3);
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    // Stop hooks of workers 0 and 1 find the pool closed: refused.
    let ran: Vec<usize> = ran.iter().map(|r| r.load(SeqCst)).collect();
    let mut expected = vec![0; MAX_INDEX * 2];
    expected[1] = 1;
    expected[2] = 1;
    expected[MAX_INDEX + 2] = 1;
    assert_eq!(ran, expected, "each accepted put ran once");
    assert_eq!(accepted.load(SeqCst), 3);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert!(seen.iter().all(|s| s.2 && s.3), "{seen:?}");
    let indexes: Vec<_> = seen.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(indexes[..2], [("start", 1), ("start", 2)]);
    assert!(indexes.contains(&("stop", 2)));
    Ok(())
}

/// A state whose `Drop` puts a request on its pool.
struct Putter {
    pool: Later,
    ran: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    /// How many more drops may put: on an autoscaling pool, a retirement
    /// whose put regrows the pool can be followed by another, for as long
    /// as the scheduler lines the keep-alives up.
    puts_left: Arc<AtomicUsize>,
}

impl Drop for Putter {
    fn drop(&mut self) {
        if self
            .puts_left
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        let Some(p) = self.pool.get().and_then(WeakPool::upgrade) else {
            return;
        };
        let ran = Arc::clone(&self.ran);
        if p.execute(move || {
            ran.fetch_add(1, SeqCst);
        })
        .is_ok()
        {
            self.accepted.fetch_add(1, SeqCst);
        }
    }
}

/// A pool whose workers' states put a request as they are dropped, the
/// first `puts` of them.
fn putter_pool(builder: Builder, puts: usize) -> (ThreadPool, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let later: Later = Arc::new(OnceLock::new());
    let (ran, accepted) = (common::counter(), common::counter());
    let puts_left = Arc::new(AtomicUsize::new(puts));
    let (l, r, a) = (Arc::clone(&later), Arc::clone(&ran), Arc::clone(&accepted));
    let pool = builder
        .worker_state(move |_| Putter {
            pool: Arc::clone(&l),
            ran: Arc::clone(&r),
            accepted: Arc::clone(&a),
            puts_left: Arc::clone(&puts_left),
        })
        .build()
        .unwrap();
    later.set(pool.downgrade()).unwrap();
    (pool, ran, accepted)
}

// A worker state whose `Drop` puts a request: accepted while the pool is
// open (and then run exactly once, by another worker, a new one, or an
// autoscaled one), refused once it is shut down.
#[test]
fn a_state_whose_drop_puts_a_request() -> TestResult {
    quiet();
    // Dismissing one of two: the other runs it.
    let (pool, ran, accepted) = putter_pool(ThreadPool::builder().workers(2), usize::MAX);
    assert_eq!(pool.dismiss_workers(1), 1);
    let p = pool.clone();
    assert_eq!(within("join", move || p.join_all_dismissed_workers()), 1);
    assert_eq!(accepted.load(SeqCst), 1);
    until(|| ran.load(SeqCst) == 1);

    // Dismissing the only one: queued until a worker comes.
    assert_eq!(pool.dismiss_workers(1), 1);
    let p = pool.clone();
    assert_eq!(within("join", move || p.join_all_dismissed_workers()), 1);
    assert_eq!(
        (pool.workers(), pool.threads(), accepted.load(SeqCst)),
        (0, 0, 2)
    );
    assert_eq!(pool.queued(), 1);
    pool.create_workers(1)?;
    until(|| ran.load(SeqCst) == 2);

    // Shutting down: refused, and no hang.
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    assert_eq!((ran.load(SeqCst), accepted.load(SeqCst)), (2, 2));

    // Autoscale retirement of the worker above the minimum.
    let (pool, ran, accepted) = putter_pool(
        ThreadPool::builder()
            .min_workers(1)
            .max_workers(2)
            .keep_alive(Duration::from_millis(10)),
        1,
    );
    let gate = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (tx, started) = mpsc::channel();
    for _ in 0..2 {
        let (g, tx) = (Arc::clone(&gate), tx.clone());
        pool.execute(move || {
            tx.send(()).unwrap();
            g.pass();
        })?;
    }
    started.recv_timeout(HANG)?;
    started.recv_timeout(HANG)?;
    gate.open();
    // The first retirement puts one (only the first: each retirement
    // that puts may regrow the pool, whose new worker may retire and put
    // again, as long as the keep-alives keep lining up); the put may
    // regrow the pool, which then shrinks back to its minimum, and the
    // request runs once.
    until(|| accepted.load(SeqCst) == 1);
    until(|| pool.workers() == 1 && pool.threads() == 1 && pool.queued() == 0);
    until(|| ran.load(SeqCst) == 1);
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    assert_eq!((ran.load(SeqCst), accepted.load(SeqCst)), (1, 1));

    // Pool drop: no hang; whatever was accepted is not run twice.
    let (pool, ran, accepted) = putter_pool(ThreadPool::builder().workers(2), usize::MAX);
    drop(pool);
    thread::sleep(Duration::from_millis(20));
    assert!(ran.load(SeqCst) <= accepted.load(SeqCst));
    Ok(())
}

/// Makes a closure capture (own) what it names.
fn keep<T>(_: T) {}

/// A value whose `Drop` counts, then panics.
struct Bomb(Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("hla: bomb");
    }
}

// Requests whose callable and callbacks capture values that panic when
// dropped, handed back by `shutdown_now` or discarded by a dropped pool,
// while every stop hook and state drop panics too: each bomb goes off
// once, nothing aborts, every thread ends. Run in a child: a second panic
// during an unwind would abort.
#[test]
fn bombs_handed_back_or_discarded_beside_panicking_stop_hooks() {
    const NAME: &str = "bombs_handed_back_or_discarded_beside_panicking_stop_hooks";
    if !is_child(NAME, CHILD_ENV) {
        run_in_child(NAME, CHILD_ENV);
        return;
    }
    quiet();
    for now in [true, false] {
        let probe = Probe::new();
        let pool = probed(ThreadPool::builder().workers(1), &probe, ALL_FAIL)
            .build()
            .unwrap();
        let gate = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let (tx, started) = mpsc::channel();
        let g = Arc::clone(&gate);
        pool.execute(move || {
            tx.send(()).unwrap();
            g.pass();
        })
        .unwrap();
        started.recv_timeout(HANG).unwrap();
        let booms = common::counter();
        for _ in 0..4 {
            let (c, r, e) = (
                Bomb(Arc::clone(&booms)),
                Bomb(Arc::clone(&booms)),
                Bomb(Arc::clone(&booms)),
            );
            pool.put_request(
                WorkRequest::new(move |x: u8| keep((x, &c)), 1)
                    .on_result(move |_, _| keep(&r))
                    .on_error(move |_, _| keep(&e)),
            )
            .unwrap();
        }
        if now {
            let g = Arc::clone(&gate);
            let back = within("shutdown_now", move || {
                let back = pool.shutdown_now();
                g.open();
                back
            });
            assert_eq!(back.len(), 4);
            for request in back {
                // The user's own drop of a handed-back request: contained
                // or not, it must not abort.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(request)));
            }
        } else {
            drop(pool);
            gate.open();
        }
        until(|| booms.load(SeqCst) == 12);
        probe.assert_all_ended(1, if now { "shutdown_now" } else { "drop" });
        assert_eq!(booms.load(SeqCst), 12);
    }
    child_ran(NAME);
}

// The global pool, configured with index-dependent panicking start hooks
// and state makers (in a child: one global pool per process): every
// worker counts and runs requests with the right state.
#[test]
fn the_global_pool_with_index_dependent_panicking_hooks() {
    const NAME: &str = "the_global_pool_with_index_dependent_panicking_hooks";
    if !is_child(NAME, CHILD_ENV) {
        run_in_child(NAME, CHILD_ENV);
        return;
    }
    quiet();
    let probe = Probe::new();
    configure_global(probed(
        ThreadPool::builder().workers(4).thread_name("hla-global"),
        &probe,
        SOME_FAIL,
    ))
    .unwrap();
    let pool = global();
    assert_eq!((pool.workers(), pool.threads()), (4, 4));
    run_checked(pool, 32, SOME_FAIL);
    until(|| Probe::counts(&probe.started)[..4] == [1, 1, 1, 1]);
    assert_eq!(Probe::counts(&probe.started).iter().sum::<usize>(), 4);
    assert_eq!(Probe::counts(&probe.made)[..4], [0, 1, 1, 0]);
    assert!(logs::error_with(&["hla: start 1"]).is_some());
    assert!(logs::error_with(&["making worker 3's state panicked"]).is_some());
    child_ran(NAME);
}

// The last handle of a pool let go of on one of its own worker threads: in
// a start hook (before the worker's loop), in a stop hook, and in a
// worker state's `Drop`. The pool closes there; every thread still ends,
// and each hook runs once per worker.
#[test]
fn the_last_handle_dropped_on_a_worker_thread() -> TestResult {
    quiet();
    for place in ["start", "stop", "state"] {
        let later: Later = Arc::new(OnceLock::new());
        let hold = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&hold));
        let (holding_tx, holding) = mpsc::channel();
        let holding_tx = Mutex::new(holding_tx);
        let probe = Probe::new();
        let hook_place = place;
        let (l, h) = (Arc::clone(&later), Arc::clone(&hold));
        // Worker 1 (the second) takes a handle in its hook, says so, and
        // lets go of it once the test's own handle is gone.
        let grab = Arc::new(move |i: usize, here: &str| {
            if i != 1 || here != hook_place {
                return;
            }
            let p = l
                .get()
                .and_then(WeakPool::upgrade)
                .expect("the test's handle");
            holding_tx.lock().unwrap().send(()).unwrap();
            h.pass();
            drop(p);
        });
        let (g1, g2, g3) = (Arc::clone(&grab), Arc::clone(&grab), Arc::clone(&grab));
        type Grab = Arc<dyn Fn(usize, &str) + Send + Sync>;
        struct Grabber(usize, Grab);
        impl Drop for Grabber {
            fn drop(&mut self) {
                (self.1)(self.0, "state");
            }
        }
        let builder = probed(ThreadPool::builder().workers(1), &probe, SOME_FAIL);
        let p1 = Arc::clone(&probe);
        let pool = builder
            .on_worker_start(move |i| {
                p1.started[i].fetch_add(1, SeqCst);
                let mark = Dropped(Arc::clone(&p1.exited));
                EXIT_MARK.with(|m| *m.borrow_mut() = Some(mark));
                g1(i, "start");
            })
            .worker_state(move |i| Grabber(i, g2.clone()))
            .on_worker_stop({
                let p3 = Arc::clone(&probe);
                move |i| {
                    p3.stopped[i].fetch_add(1, SeqCst);
                    g3(i, "stop");
                }
            })
            .build()?;
        later.set(pool.downgrade()).unwrap();
        pool.create_workers(2)?;
        if place != "start" {
            assert_eq!(pool.dismiss_workers(2), 2); // workers 2 and 1
        }
        holding.recv_timeout(HANG)?;
        drop(pool);
        hold.open();
        until(|| probe.exited.load(SeqCst) == 3);
        assert_eq!(
            Probe::counts(&probe.stopped)[..4],
            [1, 1, 1, 0],
            "{place}: stop hooks"
        );
        assert!(later.get().unwrap().upgrade().is_none(), "{place}");
    }
    Ok(())
}

// A request put while the pool's only worker sits in its stop hook
// (dismissed) or in its start hook: a `wait` neither hangs nor loses it. In
// the stop hook's case no worker is left to run it (NoWorkersAvailable
// once the hook returns); in the start hook's case the worker runs it.
#[test]
fn a_wait_while_the_only_worker_sits_in_a_hook() -> TestResult {
    quiet();
    for place in ["stop", "start"] {
        let hold = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&hold));
        let (in_hook_tx, in_hook) = mpsc::channel();
        let in_hook_tx = Mutex::new(in_hook_tx);
        let h = Arc::clone(&hold);
        // The worker that will hold the hook: 0 leaves, 1 starts.
        let target = usize::from(place == "start");
        let hook = move |i: usize| {
            if i == target {
                in_hook_tx.lock().unwrap().send(()).unwrap();
                h.pass();
            }
        };
        let builder = ThreadPool::builder().workers(0);
        let pool = if place == "stop" {
            builder.on_worker_stop(hook).build()?
        } else {
            builder.on_worker_start(hook).build()?
        };
        pool.create_workers(1)?; // worker 0
        if place == "stop" {
            assert_eq!(pool.dismiss_workers(1), 1);
        } else {
            pool.dismiss_workers(1);
            let p = pool.clone();
            assert_eq!(within("join", move || p.join_all_dismissed_workers()), 1);
            pool.create_workers(1)?; // worker 1
        }
        let ran = common::hit_counters(1);
        pool.put_request(common::hit_request(0, &ran))?;
        in_hook.recv_timeout(HANG)?;
        let p = pool.clone();
        let (tx, waited) = mpsc::channel();
        thread::spawn(move || tx.send(p.wait()).unwrap());
        hold.open();
        let waited = waited.recv_timeout(HANG)?;
        if place == "stop" {
            assert_eq!(waited, Err(WaitError::NoWorkersAvailable { pending: 1 }));
            assert_eq!(ran[0].load(SeqCst), 0);
            assert_eq!((pool.workers(), pool.threads()), (0, 0));
        } else {
            assert_eq!(waited, Ok(1));
            common::assert_each_once("requests", &ran);
            assert_eq!((pool.workers(), pool.threads()), (1, 1));
        }
        within("shutdown", move || pool.shutdown()).ok();
    }
    Ok(())
}

// `stats()` while workers sit in their start or stop hooks: a thread in a
// hook is not asleep, so `busy + idle == threads` and it counts busy.
#[test]
fn stats_while_workers_sit_in_hooks() -> TestResult {
    quiet();
    for place in ["start", "stop", "retire"] {
        let hold = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&hold));
        let (in_hook_tx, in_hook) = mpsc::channel();
        let in_hook_tx = Mutex::new(in_hook_tx);
        let h = Arc::clone(&hold);
        // Worker 2 holds the hook; retiring, whichever idle worker goes
        // first (only one goes: the minimum is two).
        let any = place == "retire";
        let hook = move |i: usize| {
            if i == 2 || any {
                in_hook_tx.lock().unwrap().send(()).unwrap();
                h.pass();
            }
        };
        let builder = ThreadPool::builder().workers(2);
        let pool = match place {
            "start" => builder.on_worker_start(hook).build()?,
            "stop" => builder.on_worker_stop(hook).build()?,
            _ => builder
                .min_workers(2)
                .max_workers(3)
                .keep_alive(Duration::from_millis(5))
                .on_worker_stop(hook)
                .build()?,
        };
        match place {
            "retire" => {
                let gate = Arc::new(OneWay::default());
                let _open = OpenOnDrop(Arc::clone(&gate));
                let (tx, started) = mpsc::channel();
                for _ in 0..3 {
                    let (g, tx) = (Arc::clone(&gate), tx.clone());
                    pool.execute(move || {
                        tx.send(()).unwrap();
                        g.pass();
                    })?;
                }
                for _ in 0..3 {
                    started.recv_timeout(HANG)?;
                }
                gate.open();
            }
            _ => pool.create_workers(1)?,
        }
        if place == "stop" {
            assert_eq!(pool.dismiss_workers(1), 1);
        }
        in_hook.recv_timeout(HANG)?;
        // The other two workers fall asleep; the one in its hook does not.
        until(|| pool.stats().idle == 2);
        let stats = pool.stats();
        let live = if place == "start" { 3 } else { 2 };
        assert_eq!(
            (stats.workers, stats.threads, stats.busy, stats.idle),
            (live, 3, 1, 2),
            "{place}: {stats:?}"
        );
        hold.open();
        until(|| pool.threads() == live);
        let stats = pool.stats();
        assert_eq!(stats.busy + stats.idle, stats.threads, "{place}: {stats:?}");
        within("shutdown", move || pool.shutdown()).unwrap();
    }
    Ok(())
}

// `shutdown_now` and `shutdown_timeout` while a new worker still sits in
// its start hook, with requests queued: the queued ones are handed back
// (or cancelled) unrun, the worker then finds the pool closed and ends,
// and its stop hook runs once.
#[test]
fn shutting_down_while_a_worker_sits_in_its_start_hook() -> TestResult {
    quiet();
    for way in ["shutdown_now", "shutdown_timeout"] {
        let hold = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&hold));
        let (in_hook_tx, in_hook) = mpsc::channel();
        let in_hook_tx = Mutex::new(in_hook_tx);
        let h = Arc::clone(&hold);
        let probe = Probe::new();
        let p1 = Arc::clone(&probe);
        let pool = probed(ThreadPool::builder().workers(0), &probe, SOME_FAIL)
            .on_worker_start(move |i| {
                p1.started[i].fetch_add(1, SeqCst);
                let mark = Dropped(Arc::clone(&p1.exited));
                EXIT_MARK.with(|m| *m.borrow_mut() = Some(mark));
                in_hook_tx.lock().unwrap().send(()).unwrap();
                h.pass();
            })
            .build()?;
        pool.create_workers(1)?;
        in_hook.recv_timeout(HANG)?;
        let ran = common::hit_counters(3);
        for i in 0..3 {
            pool.put_request(common::hit_request(i, &ran))?;
        }
        let watcher = pool.downgrade();
        let other = pool.new_handle();
        if way == "shutdown_now" {
            let back = within(way, move || pool.shutdown_now());
            assert_eq!(back.len(), 3, "{way}");
        } else {
            // This handle's queued requests are pending at the timeout
            // and never run (another handle of the pool remains).
            let r = pool.shutdown_timeout(Duration::from_millis(5));
            assert!(
                matches!(
                    r,
                    Err(ShutdownError::TimedOut {
                        threads: 1,
                        pending: 3
                    })
                ),
                "{way}: {r:?}"
            );
        }
        assert_eq!(other.threads(), 1, "{way}: the thread in its hook counts");
        hold.open();
        until(|| other.threads() == 0);
        assert_eq!(other.workers(), 0);
        drop(other);
        probe.assert_all_ended(1, way);
        assert!(ran.iter().all(|r| r.load(SeqCst) == 0), "{way}: none ran");
        assert!(watcher.upgrade().is_none());
    }
    Ok(())
}

// Start hooks that grow their own pool (each of workers 1 to 4 starts the
// next) and then shrink it, dismissing the hook's own worker among
// others (worker 5 resizes to two and joins what it can): the counts end
// exact and the dismissed ones stop once each.
#[test]
fn start_hooks_that_grow_and_shrink_their_own_pool() -> TestResult {
    quiet();
    let later: Later = Arc::new(OnceLock::new());
    let probe = Probe::new();
    let (l, p1) = (Arc::clone(&later), Arc::clone(&probe));
    let (resized_tx, resized) = mpsc::channel();
    let resized_tx = Mutex::new(resized_tx);
    let pool = probed(ThreadPool::builder().workers(1), &probe, SOME_FAIL)
        .on_worker_start(move |i| {
            p1.started[i].fetch_add(1, SeqCst);
            let mark = Dropped(Arc::clone(&p1.exited));
            EXIT_MARK.with(|m| *m.borrow_mut() = Some(mark));
            if i == 0 {
                return; // may start before `later` is set
            }
            let p = l.get().and_then(WeakPool::upgrade).expect("the pool");
            if i < 5 {
                p.create_workers(1).unwrap();
            } else {
                let r = p.resize(2).is_ok();
                let joined = p.join_all_dismissed_workers();
                resized_tx.lock().unwrap().send((r, joined)).unwrap();
            }
        })
        .build()?;
    later.set(pool.downgrade()).unwrap();
    pool.create_workers(1)?;
    let (ok, _joined) = resized.recv_timeout(HANG)?;
    assert!(ok);
    assert_eq!(pool.workers(), 2);
    let p = pool.clone();
    within("join", move || p.join_all_dismissed_workers());
    assert_eq!((pool.workers(), pool.threads()), (2, 2));
    assert_eq!(
        Probe::counts(&probe.stopped)[..7],
        [0, 0, 1, 1, 1, 1, 0],
        "newest four dismissed"
    );
    run_checked(&pool, 8, SOME_FAIL);
    let p = pool.clone();
    drop(pool);
    within("shutdown", move || p.shutdown()).unwrap();
    probe.assert_all_ended(6, "grow and shrink");
    Ok(())
}

// A start hook that submits a request to its own pool and waits for its
// ticket (a warm-up that goes through the pool), on the pool's only
// worker: as a wait inside a callable does, the wait runs the queued
// request on this worker instead of waiting for a worker that is itself.
#[test]
fn a_start_hook_waiting_on_a_ticket_of_its_own_pool() -> TestResult {
    quiet();
    let later: Later = Arc::new(OnceLock::new());
    let (l, (tx, got)) = (Arc::clone(&later), mpsc::channel());
    let tx = Mutex::new(tx);
    let pool = ThreadPool::builder()
        .workers(0)
        .thread_name("hla-warm")
        .worker_state(|_| 7u32)
        .on_worker_start(move |i| {
            let p = l.get().and_then(WeakPool::upgrade).expect("the pool");
            let ticket = p
                .submit_with_context(
                    |cx: &Context<'_>, n: u32| {
                        // Made after the start hook: not there yet.
                        let no_state = cx.worker_state::<u32>().is_none();
                        (n + 1, thread_index(), no_state)
                    },
                    41,
                )
                .unwrap();
            drop(p);
            tx.lock().unwrap().send((i, ticket.wait())).unwrap();
        })
        .build()?;
    later.set(pool.downgrade()).unwrap();
    pool.create_workers(1)?;
    let (i, outcome) = got.recv_timeout(HANG).expect("the start hook's wait hangs");
    assert_eq!(
        (i, outcome),
        (0, Ok((42, 0, true))),
        "run on the waiting worker"
    );
    assert_eq!((pool.workers(), pool.threads()), (1, 1));
    let ran = common::hit_counters(1);
    pool.put_request(common::hit_request(0, &ran))?;
    within_wait(&pool);
    common::assert_each_once("requests", &ran);
    within("shutdown", move || pool.shutdown()).unwrap();
    Ok(())
}
