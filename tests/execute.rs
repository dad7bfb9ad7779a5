//! `ThreadPool::execute` and `Context::execute`: requests whose outcome
//! nobody hears. `wait` covers them (to the last request they add), they
//! run on workers, nothing of theirs comes back to the polling thread, a
//! panic is logged and counted, and cancel, shutdown and dismissal account
//! for each exactly once.

mod common;

use std::collections::HashSet;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use callpool::{Context, PollError, PutError, ThreadPool, WorkRequest};
use common::{
    assert_each_once, counter, gate, hide_panics, hit_counters, logs, within, Dropped, HANG,
};

const DELIBERATE: &str = "execute: deliberate panic";

/// `wait` returns only once every executed request has run, each exactly
/// once and on a worker; it handles no result for them.
#[test]
fn wait_covers_executed_requests_which_run_once_each_on_workers() {
    within("execute and wait", || {
        let pool = ThreadPool::new(3);
        let me = thread::current().id();
        for _round in 0..50 {
            let hits = hit_counters(500);
            let on_me = counter();
            for i in 0..500 {
                let (hits, on_me) = (Arc::clone(&hits), Arc::clone(&on_me));
                pool.execute(move || {
                    if thread::current().id() == me {
                        on_me.fetch_add(1, Ordering::SeqCst);
                    }
                    hits[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            assert_eq!(pool.wait(), Ok(0), "no result to handle");
            assert_each_once("executed request", &hits);
            assert_eq!(on_me.load(Ordering::SeqCst), 0, "run on workers only");
            assert_eq!(pool.pending(), 0);
        }
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.panicked), (25_000, 0));
        pool.shutdown().unwrap();
    });
}

/// Work that makes work, none of it heard: a tree of executed requests,
/// each adding two more, all covered by one `wait`, and every node visited
/// exactly once, in many rounds. A `wait` that returned while a running
/// request could still add one would find the count short.
#[test]
fn wait_never_returns_while_an_executed_request_can_still_add_one() {
    fn visit(cx: &Context<'_>, node: usize, depth: u32, hits: Arc<Vec<AtomicUsize>>) {
        hits[node].fetch_add(1, Ordering::SeqCst);
        if depth > 0 {
            for child in [2 * node + 1, 2 * node + 2] {
                let hits = Arc::clone(&hits);
                cx.execute_with_context(move |cx| visit(cx, child, depth - 1, hits))
                    .expect("the pool is open");
            }
        }
    }
    within("tree of executed requests", || {
        for workers in [1, 2, 4] {
            let pool = ThreadPool::new(workers);
            for _round in 0..30 {
                let hits = hit_counters((1 << 10) - 1);
                let root = Arc::clone(&hits);
                pool.execute_with_context(move |cx| visit(cx, 0, 9, root))
                    .unwrap();
                assert_eq!(pool.wait(), Ok(0));
                assert_each_once("tree node", &hits);
            }
            pool.shutdown().unwrap();
        }
    });
}

/// Executed requests beside requests with callbacks on one handle: `wait`
/// counts and handles only the callbacks' results, and covers both kinds.
#[test]
fn executed_requests_beside_callbacks_count_only_the_callbacks() {
    within("mixed", || {
        let pool = ThreadPool::new(2);
        let ran = counter();
        let (tx, rx) = mpsc::channel();
        for n in 0..100u64 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
            let tx = tx.clone();
            pool.put_request(WorkRequest::new(|n: u64| n * 2, n).on_result(move |_, v| {
                tx.send(v).unwrap();
            }))
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(100));
        assert_eq!(ran.load(Ordering::SeqCst), 100);
        assert_eq!(rx.try_iter().sum::<u64>(), 2 * (0..100).sum::<u64>());
        assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    });
}

/// Nothing of an executed request comes back to the polling thread: with a
/// result queue of 1 that nobody polls, ten thousand of them all run (a
/// worker that sent anything there would block on the second).
#[test]
fn executed_requests_take_no_room_in_a_bounded_result_queue() {
    within("bounded results", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(1)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..10_000 {
            let tx = tx.clone();
            pool.execute(move || tx.send(()).unwrap()).unwrap();
        }
        for _ in 0..10_000 {
            rx.recv_timeout(HANG)
                .expect("every executed request runs with nobody polling");
        }
        assert_eq!(pool.wait(), Ok(0));
    });
}

/// A panic in an executed request is caught, logged at error level with
/// its message and id, counted in the statistics; the worker lives on.
#[test]
fn a_panicking_executed_request_is_logged_and_counted() {
    logs::install();
    hide_panics(|message| message.is_none_or(|m| m.contains(DELIBERATE)));
    within("panic", || {
        let pool = ThreadPool::new(1);
        let worker = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&worker);
        pool.execute(move || {
            *seen.lock().unwrap() = Some(thread::current().id());
        })
        .unwrap();
        pool.wait().unwrap();
        let id = pool
            .execute(|| panic::panic_any(format!("{DELIBERATE} 42")))
            .unwrap();
        assert_eq!(pool.wait(), Ok(0));
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.panicked), (1, 1));
        let line = logs::error_with(&[DELIBERATE]).expect("the panic is logged");
        assert!(line.contains(&format!("{DELIBERATE} 42")), "{line}");
        assert!(line.contains(&id.to_string()), "{line}");
        // The same worker thread runs the next one.
        let again = Arc::clone(&worker);
        let (tx, rx) = mpsc::channel();
        pool.execute(move || {
            tx.send(Some(thread::current().id()) == *again.lock().unwrap())
                .unwrap();
        })
        .unwrap();
        pool.wait().unwrap();
        assert_eq!(rx.recv(), Ok(true));
        assert_eq!(pool.threads(), 1);
    });
}

/// `cancel` with an executed request's id ends it unrun while it is
/// queued: its callable is dropped, never called, and counted cancelled;
/// `wait` then returns.
#[test]
fn cancel_ends_a_queued_executed_request_unrun() {
    within("cancel", || {
        let pool = ThreadPool::new(1);
        let (gate, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        gate.await_start();
        let (ran, dropped) = (counter(), counter());
        let probe = Dropped(Arc::clone(&dropped));
        let runs = Arc::clone(&ran);
        let id = pool
            .execute(move || {
                let _probe = probe;
                runs.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        assert_eq!(pool.pending(), 2);
        assert!(pool.cancel(id));
        assert!(!pool.cancel(id), "ended already");
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(pool.pending(), 1);
        gate.open();
        assert_eq!(pool.wait(), Ok(0));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled), (1, 1));
    });
}

/// `shutdown_now` hands queued executed requests back unrun; put on
/// another pool with `put_request`, each runs there, exactly once.
#[test]
fn shutdown_now_hands_queued_executed_requests_back() {
    within("shutdown_now", || {
        let pool = ThreadPool::new(1);
        let (gate, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        gate.await_start();
        let hits = hit_counters(20);
        let mut ids = HashSet::new();
        for i in 0..20 {
            let hits = Arc::clone(&hits);
            ids.insert(
                pool.execute(move || {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
            );
        }
        let opener = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            gate.open();
        });
        let handed_back = pool.shutdown_now();
        opener.join().unwrap();
        assert_eq!(handed_back.len(), 20);
        assert_eq!(
            handed_back
                .iter()
                .map(WorkRequest::id)
                .collect::<HashSet<_>>(),
            ids
        );
        assert!(hits.iter().all(|hit| hit.load(Ordering::SeqCst) == 0));
        let other = ThreadPool::new(2);
        for request in handed_back {
            other.put_request(request).unwrap();
        }
        assert_eq!(other.wait(), Ok(0));
        assert_each_once("handed-back executed request", &hits);
    });
}

/// A refused `execute` hands its request back: on a shut-down pool, as
/// `PutError::ShutDown`, uncalled.
#[test]
fn execute_on_a_shut_down_pool_hands_the_request_back() {
    let pool = ThreadPool::new(1);
    let handle = pool.new_handle();
    pool.shutdown().unwrap();
    let ran = counter();
    let runs = Arc::clone(&ran);
    match handle.execute(move || {
        runs.fetch_add(1, Ordering::SeqCst);
    }) {
        Err(PutError::ShutDown(request)) => drop(request),
        other => panic!("expected ShutDown, got {other:?}"),
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(handle.pending(), 0);
}

/// A request adding executed children while the pool is resized down to
/// one worker, up again, and its workers dismissed in between: each child
/// runs exactly once, and `wait` covers them all.
#[test]
fn children_executed_across_resizes_and_dismissals_run_once_each() {
    within("resize", || {
        let pool = ThreadPool::new(4);
        for round in 0..20 {
            let hits = hit_counters(2_000);
            let adds = Arc::clone(&hits);
            pool.execute_with_context(move |cx| {
                for i in 0..2_000 {
                    let hits = Arc::clone(&adds);
                    cx.execute(move || {
                        hits[i].fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("the pool is open");
                }
            })
            .unwrap();
            pool.resize(1).unwrap();
            pool.dismiss_workers(round % 2);
            pool.resize(3).unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_each_once("executed child", &hits);
            pool.resize(4).unwrap();
        }
    });
}

/// `try_execute` on a full bounded queue hands the request back at once,
/// uncalled and counted nowhere; put again, it runs exactly once.
/// `execute_timeout` does the same once its time is up.
#[test]
fn a_refused_try_execute_hands_its_request_back_uncounted() {
    within("try_execute", || {
        let (pool, gate) = common::held_worker(1);
        let hits = hit_counters(3);
        let hit = |i: usize| {
            let hits = Arc::clone(&hits);
            move || {
                hits[i].fetch_add(1, Ordering::SeqCst);
            }
        };
        pool.try_execute(hit(0)).unwrap();
        let refused = match pool.try_execute(hit(1)) {
            Err(PutError::Full(request)) => request,
            other => panic!("expected Full, got {other:?}"),
        };
        let timed_out = match pool.execute_timeout(hit(2), std::time::Duration::from_millis(5)) {
            Err(PutError::Timeout(request)) => request,
            other => panic!("expected Timeout, got {other:?}"),
        };
        assert_eq!(pool.pending(), 2, "the refused ones are counted nowhere");
        assert!(hits.iter().all(|hit| hit.load(Ordering::SeqCst) == 0));
        gate.open();
        assert_eq!(pool.wait(), Ok(0));
        pool.put_request(refused).unwrap();
        pool.put_request(timed_out).unwrap();
        assert_eq!(pool.wait(), Ok(0));
        assert_each_once("executed request", &hits);
        assert_eq!(pool.stats().completed, 4);
    });
}

/// An executed request has no place in a batch (its outcome never comes
/// back to the handle): the batch is refused whole as `NotBatchable`,
/// wherever the request stands, every request handed back in order and
/// nothing counted; put on its own, it runs.
#[test]
fn a_batch_holding_an_executed_request_is_refused_as_not_batchable() {
    let closed = ThreadPool::new(0);
    let ran = counter();
    let runs = Arc::clone(&ran);
    closed
        .execute(move || {
            runs.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let mut handed_back = closed.shutdown_now();
    let executed = handed_back.pop().expect("the executed request comes back");
    let pool = ThreadPool::new(1);
    let mut requests: Vec<WorkRequest> =
        callpool::make_requests(|n: u8| n, 0..4, |_, _| {}, |_, _| {});
    requests.insert(2, executed);
    let wanted: Vec<_> = requests.iter().map(WorkRequest::id).collect();
    let back = match pool.put_batch(requests) {
        Err(err @ callpool::BatchError::NotBatchable(_)) => {
            assert!(err.to_string().contains("put it on its own"), "{err}");
            err.into_requests()
        }
        other => panic!("expected NotBatchable, got {other:?}"),
    };
    assert_eq!(back.iter().map(WorkRequest::id).collect::<Vec<_>>(), wanted);
    assert_eq!(pool.pending(), 0);
    for request in back {
        pool.put_request(request).unwrap();
    }
    assert_eq!(pool.wait(), Ok(4), "the four callback requests' results");
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

/// `shutdown_now` on one handle cancels another handle's queued executed
/// requests (a sweep, not a hand-back): each callable is dropped unrun,
/// that handle is left with nothing pending, and the statistics count each
/// as cancelled by the time its `wait` returns.
#[test]
fn shutdown_now_cancels_another_handles_executed_requests() {
    within("another handle's executed requests", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (gate, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        gate.await_start();
        let (ran, dropped) = (counter(), counter());
        for _ in 0..10 {
            let probe = Dropped(Arc::clone(&dropped));
            let runs = Arc::clone(&ran);
            other
                .execute(move || {
                    let _probe = probe;
                    runs.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        assert_eq!(other.pending(), 10);
        let opener = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            gate.open();
        });
        assert!(
            pool.shutdown_now().is_empty(),
            "none of them is this handle's"
        );
        opener.join().unwrap();
        assert_eq!(other.wait(), Ok(0));
        assert_eq!(other.pending(), 0);
        assert_eq!(dropped.load(Ordering::SeqCst), 10);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(other.stats().cancelled, 10);
    });
}
