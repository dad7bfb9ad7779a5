//! Bounded queues, builder validation, worker limits and pools with no
//! workers.
//!
//! Every wait here is on a channel, a gate or a result; the only timeouts
//! turn a hang into a failure, except where a put timeout is the behaviour
//! under test (and then no worker can possibly free a slot in time).

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use callpool::{PollError, PutError, SpawnError, ThreadPool, WaitError, WorkRequest, MAX_WORKERS};

mod common;
use common::one_way::{Gate, OpenOnDrop};
use common::{assert_each_once, hit_counters, hit_request, within, HANG};

/// A stack size Linux refuses: `pthread_create` fails with `EAGAIN`.
const HUGE_STACK: usize = usize::MAX / 2;

/// A request with user id `id` whose callback counts in `called`.
fn counted(id: u64, called: &Arc<AtomicUsize>) -> WorkRequest {
    let called = Arc::clone(called);
    WorkRequest::new(|id: u64| id, id)
        .with_id(id)
        .on_result(move |_, _| {
            called.fetch_add(1, Ordering::SeqCst);
        })
        .into()
}

// A full bounded queue (`q_size`) refuses `try_put_request` at once with
// `PutError::Full`, handing the request back unregistered; it can be put
// again once there is room.
#[test]
fn try_put_on_full_queue_hands_the_request_back() {
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(2)
        .build()
        .unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    pool.try_put_request(counted(1, &called)).unwrap();
    pool.try_put_request(counted(2, &called)).unwrap();
    let refused = match pool.try_put_request(counted(3, &called)) {
        Err(PutError::Full(r)) => r,
        other => panic!("expected Full, got {other:?}"),
    };
    assert_eq!(refused.id().value(), 3);
    assert_eq!(pool.queued(), 2);
    assert_eq!(pool.pending(), 2);

    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    pool.try_put_request(refused).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(called.load(Ordering::SeqCst), 3);
}

// `put_request_timeout` on a full queue that no worker empties gives up with
// `PutError::Timeout`, handing the request back (Python: queue.Full after t).
#[test]
fn put_timeout_on_full_queue_times_out() {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let called = Arc::new(AtomicUsize::new(0));
    let (blocker_gate, blocker_called) = (Arc::clone(&gate), Arc::clone(&called));
    pool.put_request(
        WorkRequest::new(
            move |()| {
                started_tx.send(()).unwrap();
                blocker_gate.pass();
            },
            (),
        )
        .on_result(move |_, ()| {
            blocker_called.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    // The only worker is blocked: this fills the queue for good.
    pool.put_request(counted(1, &called)).unwrap();
    assert_eq!(pool.queued(), 1);

    let refused = match pool.put_request_timeout(counted(2, &called), Duration::from_millis(20)) {
        Err(PutError::Timeout(r)) => r,
        other => panic!("expected Timeout, got {other:?}"),
    };
    assert_eq!(refused.id().value(), 2);
    assert_eq!(pool.pending(), 2);
    assert_eq!(pool.queued(), 1);

    gate.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    pool.put_request_timeout(refused, HANG).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(called.load(Ordering::SeqCst), 3);
}

// With no worker thread at all, a blocking put on a full queue would wait
// for ever (Python blocks for ever); it returns `PutError::NoWorkers` at
// once instead, with or without a timeout.
#[test]
fn blocking_put_on_full_queue_without_workers_is_refused() {
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(1)
        .build()
        .unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    pool.put_request(counted(1, &called)).unwrap();
    let refused = match pool.put_request(counted(2, &called)) {
        Err(PutError::NoWorkers(r)) => r,
        other => panic!("expected NoWorkers, got {other:?}"),
    };
    assert_eq!(refused.id().value(), 2);
    let refused = match pool.put_request_timeout(refused, HANG) {
        Err(PutError::NoWorkers(r)) => r,
        other => panic!("expected NoWorkers, got {other:?}"),
    };
    assert_eq!(pool.pending(), 1);
    assert_eq!(pool.queued(), 1);

    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    pool.put_request(refused).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(called.load(Ordering::SeqCst), 2);
}

/// Puts `n` requests with `put_request` on a pool whose request and result
/// queues both hold 2, from one thread that polls every `poll_every` puts
/// (never, if 0) and waits at the end; returns each request's callback hit
/// counter. Runs on a helper thread so a deadlock fails.
fn put_and_poll(n: usize, poll_every: usize) -> Arc<Vec<AtomicUsize>> {
    within(
        "a thread that puts and polls with both queues bounded",
        move || {
            let pool = ThreadPool::builder()
                .workers(2)
                .queue_capacity(2)
                .result_capacity(2)
                .build()
                .unwrap();
            let hits = hit_counters(n);
            for i in 0..n {
                pool.put_request(hit_request(i, &hits)).unwrap();
                if poll_every > 0 && i % poll_every == 0 {
                    pool.poll().unwrap();
                }
            }
            pool.wait().unwrap();
            assert_eq!(pool.pending(), 0);
            hits
        },
    )
}

// W18: with both queues bounded, a thread that only puts (and polls at the
// very end) never deadlocks: a blocked put handles the results that hold the
// workers up. Every callback fires exactly once.
#[test]
fn bounded_queues_never_deadlock_a_thread_that_only_puts() {
    let hits = put_and_poll(10_000, 0);
    assert_eq!(hits.len(), 10_000);
    assert_each_once("callbacks", &hits);
}

// W18 again, with the putting thread also polling now and then.
#[test]
fn bounded_queues_never_deadlock_a_thread_that_puts_and_polls() {
    let hits = put_and_poll(10_000, 7);
    assert_eq!(hits.len(), 10_000);
    assert_each_once("callbacks", &hits);
}

// A thread name prefix with a NUL byte cannot name a thread: the builder
// refuses it up front.
#[test]
fn builder_rejects_nul_in_thread_name() {
    let err = ThreadPool::builder()
        .workers(1)
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert!(err.source().is_none());
    assert!(err.to_string().contains("NUL"), "{err}");
}

// A zero stack size is refused by the builder, not by the OS later.
#[test]
fn builder_rejects_zero_stack_size() {
    let err = ThreadPool::builder()
        .workers(1)
        .stack_size(0)
        .build()
        .unwrap_err();
    assert!(err.source().is_none());
    assert!(err.to_string().contains("stack size"), "{err}");
}

// More than `MAX_WORKERS` workers is a build error, caused by a `SpawnError`
// that is not an OS error.
#[test]
fn builder_rejects_more_than_max_workers() {
    let err = ThreadPool::builder()
        .workers(MAX_WORKERS + 1)
        .build()
        .unwrap_err();
    let spawn = err
        .source()
        .and_then(|e| e.downcast_ref::<SpawnError>())
        .expect("a BuildError caused by a SpawnError");
    assert!(!spawn.is_os_error());
    assert!(!spawn.is_shut_down());
    assert_eq!(spawn.created(), 0);
}

// `create_workers` past `MAX_WORKERS` fails as a whole and starts nobody.
#[test]
fn create_workers_beyond_max_is_refused() {
    let pool = ThreadPool::new(2);
    for n in [MAX_WORKERS - 1, usize::MAX] {
        let err = pool.create_workers(n).unwrap_err();
        assert!(!err.is_os_error());
        assert!(!err.is_shut_down());
        assert_eq!(err.created(), 0);
        assert_eq!((pool.workers(), pool.threads()), (2, 2));
    }
    // The failed calls left no trace: growing within the limit still works.
    pool.create_workers(1).unwrap();
    assert_eq!((pool.workers(), pool.threads()), (3, 3));
}

// A thread the OS refuses to start is a `SpawnError` (never a panic), and
// the counts roll back: `workers()` and `threads()` are unchanged.
#[test]
fn os_spawn_failure_is_an_error_and_rolls_back() {
    let pool = ThreadPool::builder()
        .workers(0)
        .stack_size(HUGE_STACK)
        .build()
        .unwrap();
    let err = pool.create_workers(2).unwrap_err();
    assert!(err.is_os_error(), "{err}");
    assert!(err.source().is_some());
    assert_eq!(err.created(), 0);
    assert_eq!((pool.workers(), pool.threads()), (0, 0));

    // The pool still works as a zero-worker pool: requests are stranded and
    // reported, not lost.
    let called = Arc::new(AtomicUsize::new(0));
    pool.put_request(counted(1, &called)).unwrap();
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 1 })
    );
    assert_eq!(pool.queued(), 1);
}

// The builder reports an OS spawn failure as a `BuildError` whose source is
// the `SpawnError`.
#[test]
fn builder_reports_os_spawn_failure() {
    let err = ThreadPool::builder()
        .workers(2)
        .stack_size(HUGE_STACK)
        .build()
        .unwrap_err();
    let spawn = err
        .source()
        .and_then(|e| e.downcast_ref::<SpawnError>())
        .expect("a BuildError caused by a SpawnError");
    assert!(spawn.is_os_error());
    assert_eq!(spawn.created(), 0);
}

// Zero workers is allowed (Python: num_workers=0): puts are accepted, `poll`
// handles nothing, `wait` reports the stranded requests instead of hanging
// (W5), and once a worker exists `wait` runs them all.
#[test]
fn zero_workers_then_create_workers() {
    let pool = ThreadPool::new(0);
    assert_eq!((pool.workers(), pool.threads()), (0, 0));
    let called = Arc::new(AtomicUsize::new(0));
    for id in 1..=3 {
        pool.put_request(counted(id, &called)).unwrap();
    }
    assert_eq!(pool.queued(), 3);
    assert_eq!(pool.pending(), 3);
    assert_eq!(pool.poll(), Ok(0));
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 3 })
    );
    assert_eq!(
        pool.poll_timeout(HANG),
        Err(PollError::NoWorkersAvailable { pending: 3 })
    );
    assert_eq!(called.load(Ordering::SeqCst), 0);

    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(3));
    assert_eq!(called.load(Ordering::SeqCst), 3);
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
}

/// With one worker, requests start in the order they were put, also when
/// far more wait than the request queue keeps in its ring (1,024): single
/// puts and a batch put queued behind a request held on a gate, then more
/// single puts while the worker, let go, works through them. Each runs
/// once, in put order.
#[test]
fn one_worker_runs_a_long_backlog_in_put_order() {
    within("a long backlog in order", || {
        const SINGLES: u64 = 6_000;
        const BATCH: u64 = 3_000;
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Gate::default());
        let _release = OpenOnDrop(Arc::clone(&gate));
        let held = Arc::clone(&gate);
        pool.put_request(WorkRequest::new(move |_: ()| held.pass(), ()))
            .unwrap();
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = |n: u64| {
            let ran = Arc::clone(&ran);
            WorkRequest::new(move |n: u64| ran.lock().unwrap().push(n), n)
        };
        for n in 0..SINGLES {
            pool.put_request(record(n)).unwrap();
        }
        let batch: Vec<WorkRequest> = (SINGLES..SINGLES + BATCH)
            .map(|n| record(n).into())
            .collect();
        pool.put_batch(batch).unwrap();
        gate.open();
        for n in SINGLES + BATCH..2 * SINGLES + BATCH {
            pool.put_request(record(n)).unwrap();
        }
        pool.wait().unwrap();
        let ran = ran.lock().unwrap();
        assert_eq!(*ran, (0..2 * SINGLES + BATCH).collect::<Vec<_>>());
        pool.shutdown().unwrap();
    });
}
