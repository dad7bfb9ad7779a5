//! Defects found by the 0.1 review, one test each, named for the behaviour
//! it pins: a `shutdown_now` that never blocks, handles that cost O(1),
//! dismissed threads reaped without the user's help, and the two ways a
//! put could block for ever.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use callpool::{PutError, RequestId, TaskError, ThreadPool, WorkRequest};

/// Outcomes by request id: `true` for a result, `false` for `Cancelled`.
type Outcomes = Arc<Mutex<HashMap<RequestId, Vec<bool>>>>;

fn recorded(x: u32, outcomes: &Outcomes) -> WorkRequest {
    let (ok, err) = (Arc::clone(outcomes), Arc::clone(outcomes));
    WorkRequest::new(|x: u32| x, x)
        .on_result(move |id, _| ok.lock().unwrap().entry(id).or_default().push(true))
        .on_error(move |id, e| {
            assert!(matches!(e, TaskError::Cancelled), "{e}");
            err.lock().unwrap().entry(id).or_default().push(false);
        })
        .into()
}

/// Handle B has 3 requests and a result queue of 1 that nobody polls: the
/// worker ran the first, waits to deliver the second, the third is queued.
/// Returns A, B and B's ids.
fn a_handle_with_a_full_result_queue(
    outcomes: &Outcomes,
) -> (ThreadPool, ThreadPool, Vec<RequestId>) {
    let a = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let b = a.new_handle();
    let ids: Vec<RequestId> = (0..3)
        .map(|i| b.put_request(recorded(i, outcomes)).unwrap())
        .collect();
    // Until the worker is stuck on B's full result queue, one is queued.
    let probe = a.new_handle();
    common::within("the worker to get stuck", move || {
        while probe.queued() > 1 {
            std::thread::yield_now();
        }
        probe
    });
    (a, b, ids)
}

fn assert_each_once(outcomes: &Outcomes, ids: &[RequestId]) {
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), ids.len(), "{outcomes:?}");
    for id in ids {
        assert_eq!(outcomes[id].len(), 1, "request {id}: {:?}", outcomes[id]);
    }
}

#[test]
fn shutdown_now_never_waits_for_another_handles_full_result_queue() {
    let outcomes = Outcomes::default();
    let (a, b, ids) = a_handle_with_a_full_result_queue(&outcomes);
    let unstarted = common::within("shutdown_now", move || a.shutdown_now().len());
    assert_eq!(unstarted, 0);
    let b = Arc::new(b);
    let waiter = Arc::clone(&b);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(3));
    assert_each_once(&outcomes, &ids);
    let cancelled = outcomes.lock().unwrap().values().filter(|v| !v[0]).count();
    assert_eq!(cancelled, 1, "exactly the queued request was cancelled");
}

#[test]
fn one_thread_holding_both_handles_can_shut_down_now_and_wait() {
    let outcomes = Outcomes::default();
    let (a, b, ids) = a_handle_with_a_full_result_queue(&outcomes);
    let waited = common::within("shutdown_now then wait on one thread", move || {
        a.shutdown_now();
        b.wait()
    });
    assert_eq!(waited, Ok(3));
    assert_each_once(&outcomes, &ids);
}

/// Each new handle used to scan every registered one (100,000 took 10 s in
/// a release build, far longer in a debug one).
#[test]
fn a_hundred_thousand_live_handles() {
    let handles = common::within("100,000 new_handle calls", || {
        let pool = ThreadPool::new(1);
        let handles: Vec<ThreadPool> = (0..100_000).map(|_| pool.new_handle()).collect();
        (pool, handles)
    });
    let (_pool, handles) = handles;
    let last = handles.last().unwrap();
    last.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
    assert_eq!(last.wait_timeout(common::HANG), Ok(1));
    assert!(handles[..handles.len() - 1]
        .iter()
        .all(|h| h.pending() == 0));
}

fn mapped_regions() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// A pool resized up and down without `join_all_dismissed_workers` kept
/// every exited thread's stack mapped (two regions per thread) until it
/// ran out of threads.
#[test]
fn dismissed_workers_are_reaped_without_being_joined() {
    const CYCLES: usize = 300;
    const WORKERS: usize = 8;
    let pool = Arc::new(ThreadPool::new(0));
    let before = mapped_regions();
    for _ in 0..CYCLES {
        pool.resize(WORKERS).unwrap();
        pool.resize(0).unwrap();
    }
    let probe = Arc::clone(&pool);
    common::within("the dismissed threads to exit", move || {
        while probe.threads() > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    // The next operation reaps what the last exits left.
    pool.resize(0).unwrap();
    let grown = mapped_regions().saturating_sub(before);
    assert!(
        grown < 100,
        "{grown} more memory regions after {} threads came and went",
        CYCLES * WORKERS
    );
    // Joining still works, and reports every dismissed thread once.
    assert_eq!(pool.join_all_dismissed_workers(), CYCLES * WORKERS);
    assert_eq!(pool.join_all_dismissed_workers(), 0);
    assert_eq!(pool.threads(), 0);
}

/// A callable that puts follow-ups on its own pool's full bounded queue
/// used to wait for room that only it could make.
#[test]
fn a_worker_putting_on_its_own_full_queue_never_waits() {
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap(),
    );
    let results = Arc::new(AtomicUsize::new(0));
    let inner = Arc::clone(&pool);
    fn counted<T>(results: &Arc<AtomicUsize>) -> impl Fn(RequestId, T) + Clone + Send + 'static {
        let results = Arc::clone(results);
        move |_, _| {
            results.fetch_add(1, Ordering::SeqCst);
        }
    }
    let follow_up = counted::<u32>(&results);
    pool.put_request(
        WorkRequest::new(
            move |_: ()| {
                (0..3u32)
                    .map(|i| {
                        let follow_up = follow_up.clone();
                        inner
                            .put_request(WorkRequest::new(|x: u32| x, i).on_result(follow_up))
                            .is_ok()
                    })
                    .filter(|&ok| ok)
                    .count()
            },
            (),
        )
        .on_result(counted::<usize>(&results)),
    )
    .unwrap();
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(4));
    assert_eq!(results.load(Ordering::SeqCst), 4);
}

/// One thread puts on P (result queue of 1, never polled) and then on H:
/// the worker is stuck on P's full result queue, so H's queue never gets
/// room. `put_request_timeout` is the way out: it hands the request back,
/// the thread polls P, and everything completes.
#[test]
fn put_request_timeout_gets_out_of_a_two_handle_wait() {
    let p = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let h = p.new_handle();
    let done = Arc::new(AtomicUsize::new(0));
    let count = |done: &Arc<AtomicUsize>| {
        let done = Arc::clone(done);
        move |_, _: u32| {
            done.fetch_add(1, Ordering::SeqCst);
        }
    };
    let (started_tx, started) = mpsc::channel();
    // The first result fills P's result queue; the worker then gets stuck
    // delivering the second.
    p.put_request(WorkRequest::new(|x: u32| x, 0).on_result(count(&done)))
        .unwrap();
    p.put_request(
        WorkRequest::new(
            move |x: u32| {
                started_tx.send(()).unwrap();
                x
            },
            1,
        )
        .on_result(count(&done)),
    )
    .unwrap();
    started.recv_timeout(common::HANG).unwrap();
    h.put_request(WorkRequest::new(|x: u32| x, 2).on_result(count(&done)))
        .unwrap();
    let refused = h
        .put_request_timeout(
            WorkRequest::new(|x: u32| x, 3).on_result(count(&done)),
            Duration::from_millis(200),
        )
        .unwrap_err();
    let PutError::Timeout(again) = refused else {
        panic!("expected a timeout, got {refused:?}");
    };
    let p = Arc::new(p);
    let waiter = Arc::clone(&p);
    assert_eq!(common::within("wait on P", move || waiter.wait()), Ok(2));
    h.put_request(again).unwrap();
    let h = Arc::new(h);
    let waiter = Arc::clone(&h);
    assert_eq!(common::within("wait on H", move || waiter.wait()), Ok(2));
    assert_eq!(done.load(Ordering::SeqCst), 4);
}
