//! Growing and shrinking a pool: `create_workers`, `dismiss_workers`,
//! `join_all_dismissed_workers`, `resize`, and what `wait` reports when no
//! worker is left.
//!
//! Every wait here is on a channel, a barrier or a join; the only timeouts
//! turn a hang into a failure.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use callpool::{ThreadPool, WaitError, WorkRequest};

mod common;
use common::one_way::{Gate, OpenOnDrop};
use common::{assert_each_once, hit_counters, hit_request, within, HANG};

/// Joins the dismissed workers of `pool` on a helper thread, so a join that
/// hangs fails the test instead.
fn join_dismissed(pool: &ThreadPool) -> usize {
    let handle = pool.new_handle();
    within("join_all_dismissed_workers", move || {
        handle.join_all_dismissed_workers()
    })
}

/// The names of the pool's live workers, found by putting `k` requests that
/// each report their thread's name and all wait on one barrier of `k`: no
/// worker can take two of them, so each live worker takes exactly one when
/// `k == pool.workers()`.
fn worker_names(pool: &ThreadPool, k: usize) -> BTreeSet<String> {
    let barrier = Arc::new(Barrier::new(k));
    let names = Arc::new(Mutex::new(BTreeSet::new()));
    for _ in 0..k {
        let barrier = Arc::clone(&barrier);
        let names = Arc::clone(&names);
        pool.put_request(
            WorkRequest::new(
                move |()| {
                    barrier.wait();
                    thread::current().name().unwrap().to_owned()
                },
                (),
            )
            .on_result(move |_, name| {
                names.lock().unwrap().insert(name);
            }),
        )
        .unwrap();
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(k));
    let names = names.lock().unwrap().clone();
    assert_eq!(names.len(), k, "each worker took exactly one request");
    names
}

fn names(prefix: &str, indices: &[usize]) -> BTreeSet<String> {
    indices.iter().map(|i| format!("{prefix}-{i}")).collect()
}

/// A request that says it started, then blocks on `gate`; its callback
/// counts in `done`.
fn blocking_request(
    gate: &Arc<Gate>,
    started: &mpsc::Sender<()>,
    done: &Arc<AtomicUsize>,
) -> WorkRequest {
    let gate = Arc::clone(gate);
    let started = started.clone();
    let done = Arc::clone(done);
    WorkRequest::new(
        move |()| {
            started.send(()).unwrap();
            gate.pass();
        },
        (),
    )
    .on_result(move |_, ()| {
        done.fetch_add(1, Ordering::SeqCst);
    })
    .into()
}

/// A request that records `i` in `ran` when it runs and in `called` when its
/// callback fires.
fn recording_request(
    i: usize,
    ran: &Arc<Mutex<Vec<usize>>>,
    called: &Arc<Mutex<Vec<usize>>>,
) -> WorkRequest {
    let ran = Arc::clone(ran);
    let called = Arc::clone(called);
    WorkRequest::new(
        move |i: usize| {
            ran.lock().unwrap().push(i);
            i
        },
        i,
    )
    .on_result(move |_, i| called.lock().unwrap().push(i))
    .into()
}

// `create_workers(n)` adds exactly `n` live workers and `n` threads
// (Python's createWorkers).
#[test]
fn create_workers_grows_by_exactly_n() {
    let pool = ThreadPool::new(0);
    assert_eq!((pool.workers(), pool.threads()), (0, 0));
    pool.create_workers(3).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (3, 3));
    pool.create_workers(2).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (5, 5));
    pool.create_workers(0).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (5, 5));
}

// `dismiss_workers` takes the newest workers first (LIFO, as Python's
// dismissWorkers pops from the end), and new workers get fresh numbers.
#[test]
fn dismiss_takes_newest_workers_first() {
    let prefix = "lifo";
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name(prefix)
        .build()
        .unwrap();
    assert_eq!(worker_names(&pool, 4), names(prefix, &[0, 1, 2, 3]));

    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!(pool.workers(), 3);
    assert_eq!(worker_names(&pool, 3), names(prefix, &[0, 1, 2]));

    assert_eq!(pool.dismiss_workers(2), 2);
    assert_eq!(pool.workers(), 1);
    assert_eq!(worker_names(&pool, 1), names(prefix, &[0]));

    pool.create_workers(2).unwrap();
    assert_eq!(worker_names(&pool, 3), names(prefix, &[0, 4, 5]));

    // `resize` shrinks the same way.
    pool.resize(2).unwrap();
    assert_eq!(worker_names(&pool, 2), names(prefix, &[0, 4]));
}

// Asking to dismiss more workers than exist dismisses them all and returns
// how many there were, with no error (Python: min(n, len(workers))).
#[test]
fn dismissing_more_than_exist_dismisses_all() {
    let pool = ThreadPool::new(3);
    assert_eq!(pool.dismiss_workers(10), 3);
    assert_eq!(pool.workers(), 0);
    assert_eq!(join_dismissed(&pool), 3);
    assert_eq!(pool.threads(), 0);
    // Nothing left to dismiss.
    assert_eq!(pool.dismiss_workers(1), 0);
}

// Dismissing zero workers changes nothing.
#[test]
fn dismissing_zero_is_a_no_op() {
    let pool = ThreadPool::new(2);
    assert_eq!(pool.dismiss_workers(0), 0);
    assert_eq!((pool.workers(), pool.threads()), (2, 2));
    assert_eq!(pool.join_all_dismissed_workers(), 0);
    assert_eq!((pool.workers(), pool.threads()), (2, 2));
}

// Idle dismissed workers leave at once: with no timeout configured anywhere,
// joining them returns promptly and `threads()` drops by exactly the number
// dismissed (W1: no poll_timeout-driven dismissal latency).
#[test]
fn idle_dismissal_is_immediate() {
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name("idle")
        .build()
        .unwrap();
    // Each worker runs one request, then goes idle. The pause only makes it
    // likely they are asleep when dismissed (the case under test); the
    // assertions hold either way.
    assert_eq!(worker_names(&pool, 4), names("idle", &[0, 1, 2, 3]));
    thread::sleep(Duration::from_millis(20));
    assert_eq!(pool.dismiss_workers(3), 3);
    assert_eq!(pool.workers(), 1);
    assert_eq!(join_dismissed(&pool), 3);
    assert_eq!((pool.workers(), pool.threads()), (1, 1));
    // A second join has nothing left to join.
    assert_eq!(pool.join_all_dismissed_workers(), 0);
}

// A busy worker that is dismissed finishes its current request, whose
// callback still fires, and only then exits (Python's dismissWorkers: the
// current request completes).
#[test]
fn busy_dismissed_worker_finishes_its_request_then_exits() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let done = Arc::new(AtomicUsize::new(0));
    pool.put_request(blocking_request(&gate, &started_tx, &done))
        .unwrap();
    started_rx.recv_timeout(HANG).unwrap();

    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!(pool.workers(), 0);
    // Still running the blocked request.
    assert_eq!(pool.threads(), 1);
    assert_eq!(pool.pending(), 1);

    gate.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(done.load(Ordering::SeqCst), 1);
    assert_eq!(join_dismissed(&pool), 1);
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.pending(), 0);
}

// A dismissed worker never takes a queued request (W4: no grab-and-put-back,
// no reordering): requests queued behind its last one stay queued, in order,
// until `create_workers` adds a worker, which then runs them in FIFO order.
#[test]
fn dismissed_worker_never_takes_queued_requests() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let first_done = Arc::new(AtomicUsize::new(0));
    pool.put_request(blocking_request(&gate, &started_tx, &first_done))
        .unwrap();
    started_rx.recv_timeout(HANG).unwrap();

    let ran = Arc::new(Mutex::new(Vec::new()));
    let called = Arc::new(Mutex::new(Vec::new()));
    for i in 0..5 {
        pool.put_request(recording_request(i, &ran, &called))
            .unwrap();
    }
    assert_eq!(pool.queued(), 5);

    assert_eq!(pool.dismiss_workers(1), 1);
    gate.open();
    // The dismissed worker has exited: it finished its request and took none
    // of the queued ones.
    assert_eq!(join_dismissed(&pool), 1);
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.queued(), 5);
    assert!(ran.lock().unwrap().is_empty());

    // The in-flight result is delivered; the queued requests are reported
    // as stranded, not lost.
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 5 })
    );
    assert_eq!(first_done.load(Ordering::SeqCst), 1);
    assert_eq!(pool.queued(), 5);
    assert!(ran.lock().unwrap().is_empty());
    assert!(called.lock().unwrap().is_empty());

    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(5));
    assert_eq!(*ran.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(*called.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(pool.queued(), 0);
}

// `resize(n)` grows or shrinks to exactly `n` live workers; shrinking
// dismisses, and joining returns the threads dismissed.
#[test]
fn resize_up_and_down() {
    let pool = ThreadPool::new(2);
    pool.resize(5).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (5, 5));

    pool.resize(1).unwrap();
    assert_eq!(pool.workers(), 1);
    assert_eq!(join_dismissed(&pool), 4);
    assert_eq!(pool.threads(), 1);

    // Same size: nothing changes.
    pool.resize(1).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (1, 1));
    assert_eq!(pool.join_all_dismissed_workers(), 0);

    pool.resize(0).unwrap();
    assert_eq!(pool.workers(), 0);
    assert_eq!(join_dismissed(&pool), 1);
    assert_eq!(pool.threads(), 0);

    // Requests put with no workers run once the pool grows again.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let called = Arc::new(Mutex::new(Vec::new()));
    for i in 0..4 {
        pool.put_request(recording_request(i, &ran, &called))
            .unwrap();
    }
    pool.resize(3).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (3, 3));
    assert_eq!(pool.wait_timeout(HANG), Ok(4));
    let mut ran = ran.lock().unwrap().clone();
    ran.sort_unstable();
    assert_eq!(ran, [0, 1, 2, 3]);
}

// W5: with every worker dismissed, `wait` reports `NoWorkersAvailable` only
// after it has delivered the result a dismissed busy worker was still
// producing (Python raises at once and the in-flight result comes later);
// after `create_workers` the stranded requests run and `wait` succeeds.
//
// The blocked request is released by the callback of another request, which
// only `wait` itself can run: so `wait` is certainly under way, with the
// dismissed worker still busy, when the blocked request finishes.
#[test]
fn wait_delivers_in_flight_results_before_no_workers() {
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    // Both workers plus the test: once it opens, each worker holds one request.
    let both_running = Arc::new(Barrier::new(3));
    let slow_done = Arc::new(AtomicUsize::new(0));
    let quick_done = Arc::new(AtomicUsize::new(0));

    let (barrier, gate_in) = (Arc::clone(&both_running), Arc::clone(&gate));
    let counter = Arc::clone(&slow_done);
    pool.put_request(
        WorkRequest::new(
            move |()| {
                barrier.wait();
                gate_in.pass();
            },
            (),
        )
        .on_result(move |_, ()| {
            counter.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    let (barrier, gate_out) = (Arc::clone(&both_running), Arc::clone(&gate));
    let counter = Arc::clone(&quick_done);
    pool.put_request(
        WorkRequest::new(
            move |()| {
                barrier.wait();
            },
            (),
        )
        .on_result(move |_, ()| {
            counter.fetch_add(1, Ordering::SeqCst);
            gate_out.open();
        }),
    )
    .unwrap();
    both_running.wait();

    assert_eq!(pool.dismiss_workers(2), 2);
    assert_eq!(pool.workers(), 0);
    // Queued after the dismissal: no worker may take them.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let called = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        pool.put_request(recording_request(i, &ran, &called))
            .unwrap();
    }

    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 3 })
    );
    assert_eq!(quick_done.load(Ordering::SeqCst), 1);
    assert_eq!(slow_done.load(Ordering::SeqCst), 1, "in-flight result lost");
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.queued(), 3);
    assert!(ran.lock().unwrap().is_empty());

    // Still stranded, still reported, nothing else handled.
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 3 })
    );

    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(3));
    assert_eq!(*ran.lock().unwrap(), [0, 1, 2]);
    assert_eq!(*called.lock().unwrap(), [0, 1, 2]);
    assert_eq!(pool.pending(), 0);
    assert_eq!(join_dismissed(&pool), 2);
}

/// Counts its drop: a worker thread's thread-local, dropped only as the
/// thread ends, after its loop and its hooks.
struct ThreadEnd(Arc<AtomicUsize>);

impl Drop for ThreadEnd {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static THREAD_END: std::cell::RefCell<Option<ThreadEnd>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn join_all_dismissed_workers_waits_for_joins_another_thread_took_on() {
    // Another thread reaps all the while (each registry call joins the
    // threads that exited), so some of the dismissed threads are joined
    // there: the call must still return only once they have ended.
    for round in 0..200 {
        let ended = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::new(2);
        let marked = Arc::new(Barrier::new(3));
        for _ in 0..2 {
            let (ended, marked) = (Arc::clone(&ended), Arc::clone(&marked));
            pool.put_request(WorkRequest::new(
                move |_: ()| {
                    THREAD_END.with(|end| *end.borrow_mut() = Some(ThreadEnd(ended)));
                    marked.wait();
                },
                (),
            ))
            .unwrap();
        }
        marked.wait();
        let reaper = pool.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let reaping = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                reaper.dismiss_workers(0);
            }
        });
        assert_eq!(pool.dismiss_workers(2), 2);
        let joiner = pool.clone();
        let joined = within("join_all_dismissed_workers", move || {
            joiner.join_all_dismissed_workers()
        });
        let seen = ended.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        reaping.join().unwrap();
        assert_eq!(joined, 2, "round {round}");
        assert_eq!(seen, 2, "round {round}: a dismissed thread had not ended");
    }
}

#[test]
fn a_worker_dismissed_before_a_shutdown_does_not_drain_the_queue() {
    // The worker is dismissed while the pool is open, then a request is put
    // and the pool shut down before that worker's thread looked again: it
    // must not take the request (nothing else will run it).
    for round in 0..300 {
        let pool = ThreadPool::new(1);
        pool.resize(0).unwrap();
        assert_eq!(pool.workers(), 0);
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ran);
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                counted.fetch_add(1, Ordering::SeqCst);
            },
            (),
        ))
        .unwrap();
        let outcome = within("shutdown", move || pool.shutdown());
        match outcome {
            Err(callpool::ShutdownError::Unrun(unrun)) => assert_eq!(unrun.len(), 1),
            other => panic!("round {round}: {other:?}"),
        }
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "round {round}: a dismissed worker ran it"
        );
    }
}

/// With requests pending and no worker left, a non-blocking `poll` says
/// `Ok(0)` at every call (as its docs say, like Python's `poll()`), while
/// `poll_timeout(Duration::ZERO)`, which does not block either, says
/// `NoWorkersAvailable`: the way a frame loop notices.
#[test]
fn poll_never_reports_no_workers_and_poll_timeout_zero_does() {
    let pool = ThreadPool::new(0);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    pool.put_request(WorkRequest::new(|n: u32| n, 1).on_result(move |_, _| {
        r.fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap();
    for _ in 0..3 {
        assert_eq!(pool.poll(), Ok(0));
        assert_eq!(
            pool.poll_timeout(Duration::ZERO),
            Err(callpool::PollError::NoWorkersAvailable { pending: 1 })
        );
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

// A request put just as the worker that ran the last one is dismissed is
// still run by the other, sleeping, worker: the put may find the dismissed
// worker spinning for work and wake nobody, and that worker, leaving instead
// of taking the request, must pass the wake-up on. Many rounds, because the
// put has to land inside the dismissed worker's spin; a lost wake-up leaves
// the request queued beside a sleeping worker, and the wait hangs.
#[test]
fn a_request_put_as_a_spinning_worker_is_dismissed_wakes_the_sleeper() {
    within("rounds of dismiss-then-put", || {
        for round in 0..2_000 {
            let pool = ThreadPool::new(2);
            pool.put_request(WorkRequest::new(|_: ()| (), ())).unwrap();
            assert_eq!(pool.wait_timeout(HANG), Ok(1), "round {round}");
            assert_eq!(pool.dismiss_workers(1), 1);
            let hits = hit_counters(1);
            pool.put_request(hit_request(0, &hits)).unwrap();
            assert_eq!(pool.wait_timeout(HANG), Ok(1), "round {round}");
            assert_each_once(&format!("round {round}'s callback"), &hits);
        }
    });
}
