//! Faults and bad input that the other test files do not cover (the table
//! in `docs/reliability.md` names the test for every row): extreme queue
//! capacities, 100,000 requests against a bounded result queue nobody
//! polls, callbacks that resize or shut down their own pool, dropping a pool
//! with requests queued, running and unpolled; and the library bugs these
//! checks found, which run as regression tests since their fixes.
//!
//! Nothing here depends on timing: every wait is on a channel, a gate or a
//! join, and timeouts only turn a hang into a failure.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use callpool::{TaskError, ThreadPool, WaitError, WorkRequest};

mod common;
use common::one_way::{Gate, OpenOnDrop};
use common::{
    assert_each_once, hit_counters, hit_request, within, within_here, within_progress, HANG,
};

const DELIBERATE: &str = "faults: deliberate panic";

fn quiet_deliberate_panics() {
    common::hide_panics_starting_with(DELIBERATE);
}

// ---------------------------------------------------------------------------
// Capacities.
// ---------------------------------------------------------------------------

/// A huge result capacity that flume's arithmetic survives (see
/// `result_capacity_usize_max` for `usize::MAX` itself).
const HUGE: usize = 1 << 60;

/// `queue_capacity` / `result_capacity` of 0 (unbounded), 1 and huge all
/// work (`usize::MAX` for the request queue), and a huge bound allocates
/// nothing up front.
#[test]
fn queue_capacities_zero_one_and_huge_all_work() {
    for (q, r) in [
        (0, 0),
        (1, 1),
        (1, 0),
        (0, 1),
        (usize::MAX, HUGE),
        (1, HUGE),
        (usize::MAX, 1),
    ] {
        capacities_work(q, r);
    }
}

fn capacities_work(q: usize, r: usize) {
    {
        within("a pool with extreme capacities", move || {
            let pool = ThreadPool::builder()
                .workers(2)
                .queue_capacity(q)
                .result_capacity(r)
                .build()
                .unwrap();
            let hits = hit_counters(1000);
            for i in 0..1000 {
                pool.put_request(hit_request(i, &hits)).unwrap();
            }
            // Blocked puts handle some results too (bounded queues).
            let waited = pool.wait_timeout(HANG).unwrap();
            assert!(waited <= 1000, "capacities {q}, {r}");
            assert_eq!(pool.pending(), 0, "capacities {q}, {r}");
            assert_each_once("callbacks", &hits);
            pool.shutdown().unwrap();
        });
    }
}

/// `result_capacity(usize::MAX)` works like any huge bound: the builder
/// clamps it to `MAX_CAPACITY`. Before that fix it went straight to
/// `flume::bounded`, whose receive path computes `cap + 1`: a debug build
/// overflowed there, the panic poisoned the channel's lock, the workers
/// panicked on it and the process aborted ("panic in a destructor during
/// cleanup"); a release build only worked because the addition wrapped.
/// The scenario runs in a child process (this test, re-run by
/// `common::run_in_child`), so a regression is reported, not suffered; the
/// child must say it ran the scenario to the end, or this fails.
#[test]
fn result_capacity_usize_max() {
    const NAME: &str = "result_capacity_usize_max";
    const CHILD: &str = "CALLPOOL_FAULTS_CHILD";
    if common::is_child(NAME, CHILD) {
        capacities_work(0, usize::MAX);
        capacities_work(1, usize::MAX);
        common::child_ran(NAME);
        return;
    }
    common::run_in_child(NAME, CHILD);
}

/// A count of puts for a test to raise, and how far the test has got (its
/// puts and the callbacks run), for `within_progress`: these tests take as
/// long as the machine's load makes them, but never stand still.
fn progress_of(hits: &Arc<Vec<AtomicUsize>>) -> (Arc<AtomicUsize>, impl Fn() -> usize) {
    let puts = Arc::new(AtomicUsize::new(0));
    let (counted, hits) = (Arc::clone(&puts), Arc::clone(hits));
    let progress = move || {
        counted.load(Ordering::Relaxed)
            + hits
                .iter()
                .map(|hit| hit.load(Ordering::Relaxed))
                .sum::<usize>()
    };
    (puts, progress)
}

/// 100,000 requests queued (unbounded request queue) against a result
/// queue of 1 that nobody polls while they are put: the workers block on
/// it, nothing is lost, and the final `wait` handles every one.
#[test]
fn a_hundred_thousand_requests_against_an_unpolled_result_queue_of_one() {
    let hits = hit_counters(100_000);
    let (puts, progress) = progress_of(&hits);
    within_progress("100,000 requests, result queue of 1", progress, move || {
        let pool = ThreadPool::builder()
            .workers(4)
            .result_capacity(1)
            .build()
            .unwrap();
        for i in 0..100_000 {
            puts.fetch_add(1, Ordering::Relaxed);
            pool.put_request(hit_request(i, &hits)).unwrap();
        }
        // Not `wait_timeout`: the watchdog turns a hang into a failure.
        assert_eq!(pool.wait(), Ok(100_000));
        assert_each_once("callbacks", &hits);
        pool.shutdown().unwrap();
    });
}

/// The same with the request queue bounded too (1): the thread that puts is
/// the only one that polls, so each blocked put must handle the results
/// holding the workers up (the Python module's W18 deadlock).
#[test]
fn a_hundred_thousand_requests_both_queues_of_one_one_thread_puts_and_polls() {
    let hits = hit_counters(100_000);
    let (puts, progress) = progress_of(&hits);
    within_progress("100,000 requests, both queues of 1", progress, move || {
        let pool = ThreadPool::builder()
            .workers(4)
            .queue_capacity(1)
            .result_capacity(1)
            .build()
            .unwrap();
        let mut handled = 0;
        for i in 0..100_000 {
            puts.fetch_add(1, Ordering::Relaxed);
            pool.put_request(hit_request(i, &hits)).unwrap();
            if i % 1000 == 0 {
                handled += pool.poll().unwrap();
            }
        }
        handled += pool.wait().unwrap();
        let by_puts = 100_000 - handled;
        assert_each_once("callbacks", &hits);
        assert_eq!(pool.pending(), 0);
        // Most results were handled by blocked puts, not by poll/wait.
        eprintln!("results handled inside blocked puts: {by_puts}");
        pool.shutdown().unwrap();
    });
}

// ---------------------------------------------------------------------------
// Callbacks that act on their own pool.
// ---------------------------------------------------------------------------

/// A callback that dismisses every worker of its own pool: the worker busy
/// with the next request finishes it, then leaves; the queued rest stays
/// queued and is reported, then runs once a worker is created.
#[test]
fn a_callback_that_dismisses_its_own_pools_workers() {
    let pool = Arc::new(ThreadPool::new(1));
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let hits = hit_counters(6);
    let dismissed = Arc::new(AtomicUsize::new(usize::MAX));

    let (p, g, d, h) = (
        Arc::clone(&pool),
        Arc::clone(&gate),
        Arc::clone(&dismissed),
        Arc::clone(&hits),
    );
    pool.put_request(WorkRequest::new(|i: usize| i, 0).on_result(move |_, i| {
        h[i].fetch_add(1, Ordering::SeqCst);
        // Request 1 is running now (busy worker), 2..=5 are queued.
        started_rx
            .recv_timeout(HANG)
            .expect("request 1 never started");
        d.store(p.dismiss_workers(usize::MAX), Ordering::SeqCst);
        g.open();
    }))
    .unwrap();
    let (g, h) = (Arc::clone(&gate), Arc::clone(&hits));
    pool.put_request(
        WorkRequest::new(
            move |i: usize| {
                started_tx.send(()).unwrap();
                g.pass();
                i
            },
            1,
        )
        .on_result(move |_, i| {
            h[i].fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    for i in 2..6 {
        pool.put_request(hit_request(i, &hits)).unwrap();
    }

    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 4 })
    );
    assert_eq!(dismissed.load(Ordering::SeqCst), 1);
    assert_eq!((pool.workers(), pool.threads(), pool.queued()), (0, 0, 4));
    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(4));
    assert_each_once("callbacks", &hits);
}

/// A callback that shuts its own pool down (through another handle it
/// owns, as `shutdown` takes the handle by value): the queued requests
/// still run (graceful shutdown drains), the outer `wait` handles every
/// result, and later puts are refused.
#[test]
fn a_callback_that_shuts_its_own_pool_down() {
    let pool = ThreadPool::new(2);
    let other = Mutex::new(Some(pool.new_handle()));
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let hits = hit_counters(11);
    let shut = Arc::new(Mutex::new(None));

    let (g, h, s) = (Arc::clone(&gate), Arc::clone(&hits), Arc::clone(&shut));
    pool.put_request(WorkRequest::new(|i: usize| i, 0).on_result(move |_, i| {
        h[i].fetch_add(1, Ordering::SeqCst);
        g.open();
        let handle = other.lock().unwrap().take().unwrap();
        *s.lock().unwrap() = Some(handle.shutdown().is_ok());
    }))
    .unwrap();
    for i in 1..11 {
        let (g, h) = (Arc::clone(&gate), Arc::clone(&hits));
        pool.put_request(
            WorkRequest::new(
                move |i: usize| {
                    g.pass();
                    i
                },
                i,
            )
            .on_result(move |_, i| {
                h[i].fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    assert_eq!(
        within_here("the outer wait", || pool.wait_timeout(HANG)),
        Ok(11)
    );
    assert_eq!(*shut.lock().unwrap(), Some(true));
    assert_each_once("callbacks", &hits);
    assert!(pool.is_shut_down());
    assert_eq!(pool.threads(), 0);
    assert!(pool.put_request(hit_request(0, &hits)).is_err());
}

/// A callback that stops its own pool at once (`shutdown_now` through
/// another handle): this handle's queued requests are cancelled to their
/// error callbacks, the running ones finish and report, and the outer
/// `wait` returns with nothing pending.
#[test]
fn a_callback_that_shuts_its_own_pool_down_now() {
    let pool = ThreadPool::new(1);
    let other = Mutex::new(Some(pool.new_handle()));
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let results = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let handed_back = Arc::new(AtomicUsize::new(usize::MAX));

    let (g, r, hb) = (
        Arc::clone(&gate),
        Arc::clone(&results),
        Arc::clone(&handed_back),
    );
    pool.put_request(WorkRequest::new(|()| (), ()).on_result(move |_, ()| {
        r.fetch_add(1, Ordering::SeqCst);
        started_rx
            .recv_timeout(HANG)
            .expect("request 1 never started");
        let handle = other.lock().unwrap().take().unwrap();
        hb.store(handle.shutdown_now().len(), Ordering::SeqCst);
        g.open();
    }))
    .unwrap();
    let (g, r) = (Arc::clone(&gate), Arc::clone(&results));
    pool.put_request(
        WorkRequest::new(
            move |()| {
                started_tx.send(()).unwrap();
                g.pass();
            },
            (),
        )
        .on_result(move |_, ()| {
            r.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    for _ in 0..5 {
        let (r, c) = (Arc::clone(&results), Arc::clone(&cancelled));
        pool.put_request(
            WorkRequest::new(|()| (), ())
                .on_result(move |_, ()| {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .on_error(move |_, e| {
                    assert_eq!(e, TaskError::Cancelled);
                    c.fetch_add(1, Ordering::SeqCst);
                }),
        )
        .unwrap();
    }
    assert_eq!(
        within_here("the outer wait", || pool.wait_timeout(HANG)),
        Ok(7)
    );
    // The other handle had nothing queued; ours were cancelled, not run.
    assert_eq!(handed_back.load(Ordering::SeqCst), 0);
    assert_eq!(results.load(Ordering::SeqCst), 2);
    assert_eq!(cancelled.load(Ordering::SeqCst), 5);
    assert_eq!(pool.pending(), 0);
}

// ---------------------------------------------------------------------------
// Dropping.
// ---------------------------------------------------------------------------

/// Dropping the last handle with a result ready but unpolled, a request
/// running and requests queued: the drop returns at once, no callback ever
/// runs, the running request finishes on its thread, and every request's
/// box is freed (nothing leaks, nothing is kept).
#[test]
fn drop_with_results_unpolled_requests_running_and_queued() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let called = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    // Every request owns a clone of `alive`; once all are freed,
    // `alive_rx` disconnects.
    let (alive, alive_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let put = |pool: &ThreadPool, blocking: Option<mpsc::Sender<()>>| {
        let (alive, ran, called, gate) = (
            alive.clone(),
            Arc::clone(&ran),
            Arc::clone(&called),
            Arc::clone(&gate),
        );
        pool.put_request(
            WorkRequest::new(
                move |()| {
                    let _alive = &alive;
                    if let Some(started) = blocking {
                        started.send(()).unwrap();
                        gate.pass();
                    }
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .on_result(move |_, ()| {
                called.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    };
    // Finished, result unpolled: the single worker ran it before it took
    // the blocking one.
    put(&pool, None);
    put(&pool, Some(started_tx));
    started_rx
        .recv_timeout(HANG)
        .expect("the blocking request never started");
    for _ in 0..3 {
        put(&pool, None);
    }
    drop(alive);
    assert_eq!((ran.load(Ordering::SeqCst), pool.queued()), (1, 3));

    within("dropping the pool", move || drop(pool));
    gate.open();
    assert_eq!(
        alive_rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "a request was kept after the pool was dropped"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "queued requests ran after the drop"
    );
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "a callback ran after the drop"
    );
}

// ---------------------------------------------------------------------------
// Library bugs found by these checks: fixed, each test now a regression test.
// ---------------------------------------------------------------------------

/// The expected behaviour the next test compares against: a graceful
/// shutdown with no worker left cancels the other handles' queued requests
/// (their error callbacks hear `Cancelled`).
#[test]
fn shutdown_without_workers_cancels_other_handles_queued_requests() {
    let a = ThreadPool::new(0);
    let b = a.new_handle();
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&cancelled);
    b.put_request(WorkRequest::new(|()| (), ()).on_error(move |_, e| {
        assert_eq!(e, TaskError::Cancelled);
        c.fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap();
    assert!(a.shutdown().is_ok());
    assert_eq!(b.wait_timeout(HANG), Ok(1));
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
}

/// A result callback that panics while `shutdown` handles this handle's
/// results interrupts the shutdown after it set the pool draining but
/// before it closed and swept it. Before the fix, another handle's queued
/// request was then neither run (no worker, and none can be created) nor
/// cancelled, its `wait` reporting `NoWorkersAvailable` for as long as it
/// lived; now it is cancelled to that handle, as without the panic.
#[test]
fn shutdown_interrupted_by_a_panicking_callback_strands_other_handles() {
    quiet_deliberate_panics();
    let a = ThreadPool::new(1);
    let b = a.new_handle();
    let (ran_tx, ran_rx) = mpsc::channel();
    a.put_request(
        WorkRequest::new(move |()| ran_tx.send(()).unwrap(), ())
            .on_result(|_, ()| panic!("{DELIBERATE} in a callback")),
    )
    .unwrap();
    // Let the worker run it and deliver the result, then leave.
    ran_rx.recv_timeout(HANG).expect("the request never ran");
    a.dismiss_workers(1);
    a.join_all_dismissed_workers();
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&cancelled);
    b.put_request(WorkRequest::new(|()| (), ()).on_error(move |_, e| {
        assert_eq!(e, TaskError::Cancelled);
        c.fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap();

    let shutdown = panic::catch_unwind(AssertUnwindSafe(move || a.shutdown()));
    assert!(
        shutdown.is_err(),
        "the callback's panic passes through shutdown"
    );
    assert!(b.is_shut_down());
    // As without the panic: B's queued request is cancelled to it.
    assert_eq!(b.wait_timeout(HANG), Ok(1), "B's request was stranded");
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
}

/// `join_all_dismissed_workers` must not wait for ever on a dismissed
/// worker that is blocked sending its result to this handle's full bounded
/// result queue: the join handles this handle's results (running their
/// callbacks on the joining thread) to make room, as `shutdown` and a
/// blocked put do. Before that fix the join never returned.
#[test]
fn joining_a_dismissed_worker_stuck_on_a_full_result_queue() {
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .result_capacity(1)
            .build()
            .unwrap(),
    );
    let (ran_tx, ran_rx) = mpsc::channel();
    for i in 0..2 {
        let ran = ran_tx.clone();
        pool.put_request(WorkRequest::new(move |i: u32| ran.send(i).unwrap(), i))
            .unwrap();
    }
    // Both ran: the first result fills the queue, the worker is (or is
    // about to be) blocked sending the second.
    for _ in 0..2 {
        ran_rx.recv_timeout(HANG).expect("a request never ran");
    }
    assert_eq!(pool.dismiss_workers(1), 1);
    let (joined_tx, joined_rx) = mpsc::channel();
    let p = Arc::clone(&pool);
    thread::spawn(move || {
        let joined = p.join_all_dismissed_workers();
        // Both results were handled by the join itself.
        joined_tx.send((joined, p.pending(), p.threads())).unwrap()
    });
    // Nobody else polls meanwhile, as on a single thread that joins, then polls.
    let joined = joined_rx.recv_timeout(HANG);
    // Unblock the worker either way, so the test ends.
    let waited = pool.wait_timeout(HANG);
    assert_eq!(
        joined,
        Ok((1, 0, 0)),
        "join_all_dismissed_workers never returned, or left results pending"
    );
    assert_eq!(waited, Ok(0), "nothing was left for wait to handle");
}

/// Two threads wait on one handle while its last worker delivers the last
/// result and exits. Waiter A takes the result off the queue; before A has
/// deregistered it, the worker's exit wakes waiter B, which sees no thread
/// left and the request still pending, and returns
/// `NoWorkersAvailable { pending: 1 }` for a request that ran (A handles it
/// an instant later). Shuttle and loom find the interleaving at once
/// (`src/models/`, `two_waiters_last_thread_exit`); on real threads it
/// needs many tries: this fails on the first occurrence (about 1 in 300
/// tries on a 2-core machine), and passes on a fixed library every time.
/// Only the attempts where the request ran can meet the race: at least one
/// must, or the test checked nothing.
#[test]
fn two_waiters_while_the_last_worker_exits_both_succeed() {
    const ATTEMPTS: usize = 20_000;
    let mut ran_attempts = 0;
    let mut unrun_attempts = 0;
    for attempt in 0..ATTEMPTS {
        let pool = Arc::new(ThreadPool::new(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        pool.put_request(WorkRequest::new(
            move |()| {
                r.fetch_add(1, Ordering::SeqCst);
            },
            (),
        ))
        .unwrap();
        let start = Arc::new(std::sync::Barrier::new(2));
        let (p, s) = (Arc::clone(&pool), Arc::clone(&start));
        let other = thread::spawn(move || {
            s.wait();
            p.wait_timeout(HANG)
        });
        start.wait();
        // The worker either took the request (then it runs, delivers and
        // exits) or not (then both waiters rightly report it unrun).
        pool.dismiss_workers(1);
        let mine = pool.wait_timeout(HANG);
        let theirs = other.join().unwrap();
        match ran.load(Ordering::SeqCst) {
            0 => {
                unrun_attempts += 1;
                let unrun = Err(WaitError::NoWorkersAvailable { pending: 1 });
                assert!(
                    mine == unrun && theirs == unrun,
                    "attempt {attempt}: the request never ran, yet the waiters got {mine:?} and {theirs:?}"
                );
                assert_eq!(pool.pending(), 1, "attempt {attempt}");
            }
            1 => {
                ran_attempts += 1;
                assert!(
                    matches!((mine, theirs), (Ok(1), Ok(0)) | (Ok(0), Ok(1))),
                    "attempt {attempt}: the request ran, yet the waiters got {mine:?} and {theirs:?}"
                );
            }
            n => panic!("attempt {attempt}: the request ran {n} times"),
        }
    }
    eprintln!(
        "the request ran in {ran_attempts} of {ATTEMPTS} attempts, stayed unrun in {unrun_attempts}"
    );
    assert!(
        ran_attempts > 0,
        "the request never ran in {ATTEMPTS} attempts: the race was never set up"
    );
}

/// Handles with a result queue of 1 dropped while workers are blocked
/// sending to it, many times: each drop lets its blocked workers go (their
/// outcomes discarded), and the pool still runs requests. The drop now
/// receives until no worker is blocked (`Inbox::close_results`), because
/// `flume` 0.12 can panic in a receiver's drop that races a blocked
/// sender; that race aborted `tests/shutdown_races.rs` once in CI, and
/// this test does not reproduce it (0 of 3 runs before the change): it
/// checks that the drop still releases every blocked worker.
#[test]
fn handles_dropped_while_workers_block_on_their_full_result_queue() {
    const ROUNDS: usize = 300;
    let pool = ThreadPool::builder()
        .workers(4)
        .result_capacity(1)
        .build()
        .unwrap();
    for round in 0..ROUNDS {
        let handle = pool.new_handle();
        for i in 0..8u64 {
            handle.put_request(WorkRequest::new(|n: u64| n, i)).unwrap();
        }
        // Some workers block on the full queue of 1; the drop lets them go.
        if round % 2 == 0 {
            thread::yield_now();
        }
        drop(handle);
    }
    let hits = hit_counters(100);
    for i in 0..100 {
        pool.put_request(hit_request(i, &hits)).unwrap();
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(100));
    assert_each_once("callbacks", &hits);
}
