//! Defects found by the 0.1 review, one test each, named for the behaviour
//! it pins: a `shutdown_now` that never blocks, handles that cost O(1),
//! dismissed threads reaped without the user's help, and the two ways a
//! put could block for ever, and a waiter woken for results a panicking
//! callback left behind.

mod common;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

/// The threads of this process whose names start with `prefix`, as the
/// system lists them (a thread leaves the list once it has ended, its
/// thread-locals' destructors run).
fn os_threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
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
    const REAPED: &str = "reaped";
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(0)
            .thread_name(REAPED)
            .build()
            .unwrap(),
    );
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
    // A thread counted out still runs its thread-locals' destructors, and
    // reaping joins only threads past them: wait until the system has no
    // thread of this pool's left, so that the next operation reaps what
    // the last exits left.
    common::within("the exited threads to be gone", || {
        while os_threads_named(REAPED) > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
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

/// Which callbacks ran, by label, in the order they ran.
type Ran = Arc<Mutex<Vec<&'static str>>>;

/// A result callback that records `label` in `ran`.
fn note<T>(ran: &Ran, label: &'static str) -> impl FnOnce(RequestId, T) + Send + 'static {
    let ran = Arc::clone(ran);
    move |_, _| ran.lock().unwrap().push(label)
}

/// The labels in `ran`, sorted.
fn sorted(ran: &Ran) -> Vec<&'static str> {
    let mut labels = ran.lock().unwrap().clone();
    labels.sort_unstable();
    labels
}
// Defect 10: a waiter slept through a result left behind by a panicking
// callback that a blocked put was running.
// ---------------------------------------------------------------------------

/// The message of the deliberate callback panic of the next test.
const CALLBACK_PANIC: &str = "review: deliberate callback panic";

// A put blocked on a full queue handles its handle's results meanwhile; when
// one of their callbacks panicked, the results taken with it were kept for
// later, and the handle's waiters were to be told, but the putting thread
// counted itself as one of them and so told one waiter too few. Here T2, the
// only waiter, runs a callback inside `wait` while that happens, then goes
// back to sleep for a result nobody will ever send again: on 0.1 its
// `wait_timeout(common::HANG)` gives `Timeout { pending: 1 }`, and a `poll` right
// after handles that result at once.
//
// The steps: one worker, a queue of 1, result queues of 2; handle P, on
// which T2 waits and the test thread puts, and handle Q, whose requests only
// hold the worker or the queue (their results never wake T2).
//  1. r1's result waits in P's result queue while Q's `ga` holds the worker.
//  2. T2 calls `wait` on P: it takes r1's result and runs its callback,
//     which holds T2 there (inside `wait`) until step 5.
//  3. rA, rB, rC on P and Q's gated `gq` follow `ga`: rA's and rB's results
//     fill P's result queue, the worker is stuck sending rC's result, `gq`
//     fills the request queue. The put of rX blocks and handles rA's and
//     rB's results.
//  4. rA's callback polls until it has handled rC's result (the worker then
//     holds `gq`: nothing more will come to P), then panics; rB's result is
//     left behind; the put of rX passes the panic on (rX is not put).
//  5. T2's callback returns: T2 must handle rB's result and return `Ok`.
#[test]
fn a_waiter_is_woken_for_results_left_behind_by_a_callback_panic_in_a_blocked_put() {
    common::hide_panics_starting_with(CALLBACK_PANIC);
    let p = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .result_capacity(2)
            .build()
            .unwrap(),
    );
    let q = p.new_handle();
    let ran = Ran::default();

    // 1.
    let (in_r1_callback_tx, in_r1_callback) = mpsc::channel();
    let (release_r1_callback, release_r1_callback_rx) = mpsc::channel::<()>();
    let ran_r1 = Arc::clone(&ran);
    p.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
        ran_r1.lock().unwrap().push("r1");
        let _ = in_r1_callback_tx.send(thread::current().id());
        let _ = release_r1_callback_rx.recv_timeout(common::HANG);
    }))
    .unwrap();
    let (ga, ga_latch) = common::gate();
    q.put_request(WorkRequest::new(move |_: u32| ga_latch.hold(), 0).on_result(note(&ran, "ga")))
        .unwrap();
    ga.await_start();

    // 2.
    let p2 = Arc::clone(&p);
    let t2 = thread::spawn(move || p2.wait_timeout(common::HANG));
    let ran_callback_on = in_r1_callback
        .recv_timeout(common::HANG)
        .expect("T2 never ran r1's callback");
    assert_eq!(
        ran_callback_on,
        t2.thread().id(),
        "r1's callback runs in T2's wait"
    );

    // 3. and 4.
    let rc_handled = Arc::new(AtomicBool::new(false));
    let (p_a, ran_a, rc_handled_a) = (Arc::clone(&p), Arc::clone(&ran), Arc::clone(&rc_handled));
    let ra_callback = move |_: RequestId, _: u32| {
        ran_a.lock().unwrap().push("rA");
        // Not `poll_timeout`: a second waiter would wake T2 on its way out.
        let deadline = Instant::now() + common::HANG;
        while !rc_handled_a.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "rC's result never came");
            let _ = p_a.poll();
            thread::yield_now();
        }
        panic!("{CALLBACK_PANIC}");
    };
    let ran_c = Arc::clone(&ran);
    let rc_callback = move |_: RequestId, _: u32| {
        ran_c.lock().unwrap().push("rC");
        rc_handled.store(true, Ordering::SeqCst);
    };
    p.put_request(WorkRequest::new(|x: u32| x, 2).on_result(ra_callback))
        .unwrap();
    ga.open();
    p.put_request(WorkRequest::new(|x: u32| x, 3).on_result(note(&ran, "rB")))
        .unwrap();
    p.put_request(WorkRequest::new(|x: u32| x, 4).on_result(rc_callback))
        .unwrap();
    let (gq, gq_latch) = common::gate();
    q.put_request(WorkRequest::new(move |_: u32| gq_latch.hold(), 0).on_result(note(&ran, "gq")))
        .unwrap();
    let rx_ran = common::counter();
    let rx_counter = Arc::clone(&rx_ran);
    let put_rx = panic::catch_unwind(AssertUnwindSafe(|| {
        p.put_request(WorkRequest::new(|x: u32| x, 5).on_result(move |_, _| {
            rx_counter.fetch_add(1, Ordering::SeqCst);
        }))
    }));
    let rx_was_put = match put_rx {
        Err(_) => false,
        Ok(put) => {
            put.unwrap();
            true
        }
    };

    // 5.
    release_r1_callback.send(()).unwrap();
    let waited = t2.join().unwrap();
    let poll_after = p.poll();
    assert!(
        waited.is_ok(),
        "T2's wait returned {waited:?}, and a poll() right after handled {poll_after:?} at once"
    );
    assert_eq!(p.pending(), 0);

    gq.open();
    let (q, q_waited) = common::within("Q's wait", move || {
        let waited = q.wait();
        (q, waited)
    });
    assert_eq!(q_waited, Ok(2));
    assert_eq!(sorted(&ran), ["ga", "gq", "r1", "rA", "rB", "rC"]);
    assert_eq!(rx_ran.load(Ordering::SeqCst), usize::from(rx_was_put));
    drop(q);
}

// ---------------------------------------------------------------------------
// Defect 11: dismissed workers were never reaped unless the user joined them.
