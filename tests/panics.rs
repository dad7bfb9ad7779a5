//! Panics in callables and callbacks, and failures nobody has a callback for:
//! a panicking callable reaches the error callback and its worker lives on;
//! a panicking callback leaves `poll`/`wait` as a panic and the pool stays
//! consistent; an unhandled failure is logged, never dropped silently.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, ThreadId};

use callpool::{RequestId, TaskError, ThreadPool, WorkRequest};

mod common;
use common::*;

/// Every deliberate panic in this file says so, so the hook can hide it.
const DELIBERATE: &str = "deliberate";

/// Hides the deliberate panics of these tests (and panics with a payload
/// that is not a string), while still printing assertion failures.
fn quiet_deliberate_panics() {
    hide_panics(|message| message.is_none_or(|m| m.contains(DELIBERATE)));
}

/// The message of a panic payload, if it is a string.
fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

// W8: a panicking callable reaches the error callback (never the result
// callback) as TaskError::Panicked with its message, for both `&str` and
// `String` payloads; any other payload still gives a non-empty placeholder.
#[test]
fn a_panicking_callable_reaches_the_error_callback_with_its_message() -> TestResult {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(2);
    let (tx, rx) = mpsc::channel();
    let panickers: [fn(u32) -> u32; 3] = [
        |_| panic::panic_any("deliberate &str panic"),
        |n| panic::panic_any(format!("deliberate String panic {n}")),
        |n| panic::panic_any(n),
    ];
    let mut ids = Vec::new();
    for (n, callable) in (7u32..).zip(panickers) {
        let tx = tx.clone();
        let request = WorkRequest::new(callable, n)
            .on_result(|id, _| panic!("request {id} panicked but got a result"))
            .on_error(move |id, err| tx.send((id, err)).unwrap());
        ids.push(pool.put_request(request)?);
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(3));
    let errors: HashMap<RequestId, TaskError> = rx.try_iter().collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(
        errors[&ids[0]],
        TaskError::Panicked("deliberate &str panic".to_owned())
    );
    assert_eq!(
        errors[&ids[1]],
        TaskError::Panicked("deliberate String panic 8".to_owned())
    );
    match &errors[&ids[2]] {
        TaskError::Panicked(placeholder) => assert!(!placeholder.is_empty()),
        other => panic!("expected a panic, got {other:?}"),
    }
    Ok(())
}

// W8/W15: the worker that ran a panicking callable survives: the thread
// count stays the same and later requests still run on that very thread.
#[test]
fn the_worker_survives_panicking_callables() -> TestResult {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1);
    assert_eq!((pool.workers(), pool.threads()), (1, 1));
    let (tx, rx) = mpsc::channel::<(ThreadId, Option<String>)>();
    let here = |tx: &Sender<_>| {
        let current = thread::current();
        tx.send((current.id(), current.name().map(str::to_owned)))
            .unwrap();
    };

    let panicked = counter();
    for i in 0..5u32 {
        let (tx, panicked) = (tx.clone(), Arc::clone(&panicked));
        let request = WorkRequest::new(
            move |i: u32| -> u32 {
                here(&tx);
                panic::panic_any(format!("deliberate panic {i}"))
            },
            i,
        )
        .on_error(move |_, err| {
            assert!(matches!(err, TaskError::Panicked(_)), "{err:?}");
            panicked.fetch_add(1, Ordering::Relaxed);
        });
        pool.put_request(request)?;
    }
    let t = tx.clone();
    pool.put_request(WorkRequest::new(move |()| here(&t), ()))?;
    assert_eq!(pool.wait_timeout(HANG), Ok(6));
    assert_eq!(panicked.load(Ordering::Relaxed), 5);
    assert_eq!((pool.workers(), pool.threads()), (1, 1));

    // And after the pool has settled, once more.
    pool.put_request(WorkRequest::new(move |()| here(&tx), ()))?;
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    let threads: Vec<_> = rx.try_iter().collect();
    assert_eq!(threads.len(), 7);
    let (first_id, first_name) = &threads[0];
    assert_eq!(first_name.as_deref(), Some("callpool-worker-0"));
    assert!(
        threads.iter().all(|(id, _)| id == first_id),
        "requests ran on another thread: the worker was replaced"
    );
    Ok(())
}

// W6: a panic in a result callback leaves `wait` as a panic; the request
// whose callback panicked is no longer pending (its user id is free again),
// the other results are handled by the next `wait`, which returns normally.
#[test]
fn a_panicking_result_callback_leaves_wait_and_the_pool_consistent() -> TestResult {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(2);
    let handled = counter();
    let count = |handled: &Arc<AtomicUsize>| {
        let handled = Arc::clone(handled);
        move |_: RequestId, _: u32| {
            handled.fetch_add(1, Ordering::Relaxed);
        }
    };
    pool.put_request(
        WorkRequest::new(|x: u32| x, 0)
            .with_id(1000)
            .on_result(|_, _| panic::panic_any("deliberate callback panic")),
    )?;
    for i in 1..=9 {
        pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(count(&handled)))?;
    }

    let caught = panic::catch_unwind(AssertUnwindSafe(|| pool.wait_timeout(HANG)));
    let payload = caught.expect_err("the callback's panic must leave wait()");
    assert_eq!(message(&*payload), Some("deliberate callback panic"));
    let before = handled.load(Ordering::Relaxed);
    assert_eq!(pool.pending(), 9 - before);

    // The id is free again: the panicking request was unregistered.
    pool.put_request(
        WorkRequest::new(|x: u32| x, 10)
            .with_id(1000)
            .on_result(count(&handled)),
    )?;
    assert_eq!(pool.wait_timeout(HANG), Ok(9 - before + 1));
    assert_eq!(handled.load(Ordering::Relaxed), 10);
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.wait_timeout(HANG), Ok(0));
    Ok(())
}

// W6: a panic in an error callback leaves `poll` as a panic; the request is
// no longer pending, the next result is still delivered, and a later wait
// returns normally.
#[test]
fn a_panicking_error_callback_leaves_poll_and_the_pool_consistent() -> TestResult {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1);
    pool.put_request(
        WorkRequest::fallible(|()| Err::<u32, _>("deliberate failure"), ())
            .on_error(|_, _| panic::panic_any("deliberate error-callback panic")),
    )?;
    // One worker: once this one has started, the failure's result is ready.
    let (last, latch) = gate();
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(
            move |x: u32| {
                latch.hold();
                x
            },
            5,
        )
        .on_result(move |_, x| tx.send(x).unwrap()),
    )?;
    last.await_start();

    let caught = panic::catch_unwind(AssertUnwindSafe(|| pool.poll()));
    let payload = caught.expect_err("the callback's panic must leave poll()");
    assert_eq!(message(&*payload), Some("deliberate error-callback panic"));
    assert_eq!(pool.pending(), 1);

    last.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(rx.try_recv()?, 5);
    assert_eq!(pool.pending(), 0);
    Ok(())
}

// W7: a failure or a panic with no error callback is not dropped silently
// nor passed to the result callback: it is logged at error level, naming the
// request id and the error.
#[test]
fn a_failure_without_an_error_callback_is_logged() -> TestResult {
    logs::install();
    quiet_deliberate_panics();
    const FAILED: u64 = 0xFA11_ED01;
    const PANICKED: u64 = 0x0BAD_F00D;
    let pool = ThreadPool::new(1);
    pool.put_request(
        WorkRequest::fallible(|()| Err::<u32, _>("deliberate failure, unhandled"), ())
            .with_id(FAILED)
            .on_result(|id, _| panic!("request {id} failed but got a result")),
    )?;
    pool.put_request(
        WorkRequest::new(
            |()| -> u32 { panic::panic_any("deliberate panic, unhandled") },
            (),
        )
        .with_id(PANICKED)
        .on_result(|id, _| panic!("request {id} panicked but got a result")),
    )?;

    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    let failed = FAILED.to_string();
    let panicked = PANICKED.to_string();
    assert!(
        logs::error_with(&[&failed, "deliberate failure, unhandled"]).is_some(),
        "no error record for request {failed}: {:?}",
        logs::records()
    );
    assert!(
        logs::error_with(&[&panicked, "deliberate panic, unhandled"]).is_some(),
        "no error record for request {panicked}: {:?}",
        logs::records()
    );
    Ok(())
}
