//! An adversarial audit of the numbers callpool reports: `stats()`'s
//! completed, failed, panicked and cancelled counts (and the gauges
//! `running` and `queued`), a handle's and a collector's `pending()`, and
//! a batch's progress, on every path that puts work and every way a
//! request ends. Each test snapshots the counts before, lets the outcome
//! be heard (a `wait`, a ticket's `wait`, a collector's `wait_with`, a
//! scope's return) and asserts the exact change: the workers count a
//! request before its outcome is heard, so by then it must be exact. A
//! ticket cancelled in the queue is counted once a worker reaches it
//! (documented): those tests put a sentinel behind it on a one-worker
//! pool, so the worker has reached it once the sentinel's outcome is in.
//! Time never decides anything; bounds only turn a hang into a failure.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use callpool::{
    as_completed, make_fallible_requests, make_requests_with_input, Closed, CommandError,
    InstallError, PutError, TaskError, ThreadPool, WorkRequest,
};
use common::{counter, gate, held_worker, hide_panics_starting_with, within, within_here, HANG};

/// The prefix of every deliberate panic here (hidden from the output).
const DELIBERATE: &str = "counts:";

/// The four end counts of `stats()`: completed, failed, panicked,
/// cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ends {
    completed: u64,
    failed: u64,
    panicked: u64,
    cancelled: u64,
}

fn ends(pool: &ThreadPool) -> Ends {
    let s = pool.stats();
    Ends {
        completed: s.completed,
        failed: s.failed,
        panicked: s.panicked,
        cancelled: s.cancelled,
    }
}

/// Asserts that the end counts moved by exactly `(completed, failed,
/// panicked, cancelled)` since `before`, and returns the counts now.
#[track_caller]
fn assert_moved(pool: &ThreadPool, before: Ends, by: (u64, u64, u64, u64), what: &str) -> Ends {
    let now = ends(pool);
    let moved = (
        now.completed - before.completed,
        now.failed - before.failed,
        now.panicked - before.panicked,
        now.cancelled - before.cancelled,
    );
    assert_eq!(
        moved, by,
        "{what}: (completed, failed, panicked, cancelled) moved by {moved:?}, expected {by:?}"
    );
    now
}

fn quiet_pool(workers: usize) -> ThreadPool {
    hide_panics_starting_with(DELIBERATE);
    ThreadPool::builder()
        .workers(workers)
        .quiet_panics(true)
        .build()
        .unwrap()
}

/// A capture whose `Drop` panics (once the callable that owns it has
/// returned): the callable's own panic, as far as anyone can tell.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{DELIBERATE} a capture's Drop");
        }
    }
}

fn boom<T>() -> T {
    panic!("{DELIBERATE} the callable")
}

// ---------------------------------------------------------------------------
// Requests with callbacks, executed requests, tickets.
// ---------------------------------------------------------------------------

#[test]
fn put_request_counts_each_ending_once_in_its_own_count() {
    let pool = quiet_pool(2);
    let errors = |_, _: TaskError<&str>| {};
    let e = ends(&pool);
    pool.put_request(WorkRequest::new(|n: u32| n, 1)).unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (1, 0, 0, 0), "a value");
    pool.put_request(WorkRequest::fallible(|_: ()| Err::<u8, _>("no"), ()).on_error(errors))
        .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 1, 0, 0), "an Err");
    pool.put_request(WorkRequest::new(|_: ()| boom::<u8>(), ()).on_error(|_, _| {}))
        .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 0, 1, 0), "a panic");
    let bomb = Bomb;
    pool.put_request(
        WorkRequest::new(
            move |_: ()| {
                let _bomb = bomb;
                5u8
            },
            (),
        )
        .on_error(|_, _| {}),
    )
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 0, 1, 0), "a capture's Drop panicked");
    // An argument whose `Drop` panics, dropped by the callable.
    pool.put_request(WorkRequest::new(|b: Bomb| drop(b), Bomb).on_error(|_, _| {}))
        .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 0, 1, 0), "an argument's Drop panicked");
    // Expired before a worker took it.
    pool.put_request(
        WorkRequest::new(|_: ()| unreachable!("expired"), ())
            .deadline(Instant::now() - Duration::from_millis(1))
            .on_error(|_, _| {}),
    )
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 0, 0, 1), "expired");
    // Timed, with a user id: nothing changes in the counting.
    pool.put_request(WorkRequest::new(|n: u32| n, 1).timed().with_id(7))
        .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (1, 0, 0, 0), "timed, with an id");
    // A result callback that panics: the request returned a value.
    pool.put_request(
        WorkRequest::new(|n: u32| n, 1).on_result(|_, _| panic!("{DELIBERATE} a callback")),
    )
    .unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| pool.wait()));
    assert!(caught.is_err(), "the callback's panic did not pass on");
    assert_eq!(pool.pending(), 0);
    assert_moved(&pool, e, (1, 0, 0, 0), "its result callback panicked");
    assert_eq!(pool.stats().running, 0);
}

#[test]
fn every_put_form_counts_what_it_put() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let n = pool
        .put_all((0..3).map(|i| WorkRequest::new(|n: u32| n, i)))
        .unwrap();
    assert_eq!(n, 3);
    pool.try_put_request(WorkRequest::new(|n: u32| n, 1))
        .unwrap();
    pool.put_request_timeout(
        WorkRequest::new(|_: ()| boom::<u8>(), ()).on_error(|_, _| {}),
        HANG,
    )
    .unwrap();
    assert_eq!(pool.wait().unwrap(), 5);
    assert_moved(&pool, e, (4, 0, 1, 0), "put_all, try_, _timeout");
}

#[test]
fn executed_requests_count_as_they_end_in_every_form() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    pool.execute(|| {}).unwrap();
    pool.execute(boom::<()>).unwrap();
    let bomb = Bomb;
    pool.execute(move || {
        let _bomb = bomb;
    })
    .unwrap();
    pool.try_execute(|| {}).unwrap();
    pool.execute_timeout(boom::<()>, HANG).unwrap();
    pool.execute_with_context(|cx| {
        // A child of each kind: executed, with a callback (failing), a
        // stream.
        cx.execute(|| {}).unwrap();
        cx.execute(boom::<()>).unwrap();
        cx.put(WorkRequest::fallible(|_: ()| Err::<u8, _>("no"), ()).on_error(|_, _| {}))
            .unwrap();
        cx.put(WorkRequest::streaming(
            |_: (), out: &callpool::Emitter<'_, u8>| {
                out.emit(1).unwrap();
                Ok::<(), &str>(())
            },
            (),
        ))
        .unwrap();
    })
    .unwrap();
    pool.wait().unwrap();
    assert_moved(&pool, e, (5, 1, 4, 0), "executed, and children");
    assert_eq!(pool.stats().running, 0);
}

#[test]
fn tickets_count_each_ending_by_the_time_their_wait_returns() {
    let pool = quiet_pool(2);
    let mut e = ends(&pool);
    let mut step = |by, what: &str| e = assert_moved(&pool, e, by, what);
    assert_eq!(pool.submit(|n: u32| n, 1).unwrap().wait(), Ok(1));
    step((1, 0, 0, 0), "submit");
    let t = pool
        .submit_fallible(|_: ()| Err::<u8, _>("no"), ())
        .unwrap();
    assert_eq!(t.wait(), Err(TaskError::Failed("no")));
    step((0, 1, 0, 0), "submit_fallible");
    let t = pool.submit(|_: ()| boom::<u8>(), ()).unwrap();
    assert!(matches!(t.wait(), Err(TaskError::Panicked(_))));
    step((0, 0, 1, 0), "submit, panicked");
    let bomb = Bomb;
    let t = pool
        .submit(
            move |_: ()| {
                let _bomb = bomb;
                1u8
            },
            (),
        )
        .unwrap();
    assert!(matches!(t.wait(), Err(TaskError::Panicked(_))));
    step((0, 0, 1, 0), "submit, a capture's Drop panicked");
    let t = pool.try_submit(|n: u32| n, 1).ok().unwrap();
    assert_eq!(t.wait(), Ok(1));
    step((1, 0, 0, 0), "try_submit");
    let t = pool
        .submit_timeout(|_: ()| boom::<u8>(), (), HANG)
        .ok()
        .unwrap();
    assert!(t.wait().is_err());
    step((0, 0, 1, 0), "submit_timeout, panicked");
    // With a context: the ticket's own request, and its children on the
    // handle (which the ticket's wait does not cover: the handle's does).
    let t = pool
        .submit_with_context(
            |cx, n: u32| {
                cx.put(WorkRequest::new(|n: u32| n, n)).unwrap();
                cx.execute(boom::<()>).unwrap();
                let (a, b) = cx.join(|_| n, |_| n + 1);
                a + b
            },
            1,
        )
        .unwrap();
    assert_eq!(t.wait(), Ok(3));
    pool.wait().unwrap();
    step((2, 0, 1, 0), "submit_with_context and its two children");
    let t = pool
        .submit_fallible_with_context(|_, _: ()| Err::<u8, _>("no"), ())
        .unwrap();
    assert_eq!(t.wait(), Err(TaskError::Failed("no")));
    step((0, 1, 0, 0), "submit_fallible_with_context");
    let t = pool
        .submit_with_context(|cx, _: ()| cx.join(|_| 1, |_| boom::<u8>()), ())
        .unwrap();
    assert!(matches!(t.wait(), Err(TaskError::Panicked(_))));
    step((0, 0, 1, 0), "submit_with_context, a join's half panicked");
    let bomb = Bomb;
    let t = pool
        .submit_with_context(
            move |_, _: ()| {
                let _bomb = bomb;
                1u8
            },
            (),
        )
        .unwrap();
    assert!(matches!(t.wait(), Err(TaskError::Panicked(_))));
    step(
        (0, 0, 1, 0),
        "submit_with_context, a capture's Drop panicked",
    );
    let t = pool.try_submit_with_context(|_, n: u32| n, 1).ok().unwrap();
    assert_eq!(t.wait(), Ok(1));
    step((1, 0, 0, 0), "try_submit_with_context");
    let t = pool
        .submit_with_context_timeout(|_, n: u32| n, 1, HANG)
        .ok()
        .unwrap();
    assert_eq!(t.wait(), Ok(1));
    step((1, 0, 0, 0), "submit_with_context_timeout");
    assert_eq!(pool.stats().running, 0);
}

/// A one-worker pool whose worker is held, with tickets cancelled in the
/// queue: each counts as cancelled once the worker reaches it, which it
/// has once a sentinel submitted behind them has its outcome.
#[test]
fn a_ticket_cancelled_in_the_queue_is_counted_once_when_the_worker_reaches_it() {
    let (pool, held) = held_worker(16);
    let e = ends(&pool);
    let plain = pool.submit(|_: ()| unreachable!("cancelled"), ()).unwrap();
    let by_handle = pool.submit(|_: ()| unreachable!("cancelled"), ()).unwrap();
    let in_context = pool
        .submit_with_context(|_, _: ()| unreachable!("cancelled"), ())
        .unwrap();
    let twice = pool.submit(|_: ()| unreachable!("cancelled"), ()).unwrap();
    assert!(plain.cancel());
    assert!(by_handle.cancel_handle().cancel());
    assert!(in_context.cancel());
    assert!(twice.cancel());
    assert!(!twice.cancel(), "a second cancel changed something");
    assert!(!twice.cancel_handle().cancel());
    // Dropped unwaited: the queue still holds the cancelled request.
    drop(twice);
    assert_eq!(pool.queued(), 4);
    let sentinel = pool.submit(|n: u32| n, 9).unwrap();
    held.open();
    assert_eq!(sentinel.wait(), Ok(9));
    for t in [plain, by_handle, in_context] {
        assert_eq!(t.wait(), Err(TaskError::Cancelled));
    }
    pool.wait().unwrap();
    // The held request (an executed one) and the sentinel completed.
    assert_moved(&pool, e, (2, 0, 0, 4), "four cancelled tickets");
    assert_eq!((pool.queued(), pool.stats().running), (0, 0));
}

#[test]
fn cancel_and_cancel_queued_count_at_once_every_kind_of_request() {
    let (pool, held) = held_worker(16);
    let e = ends(&pool);
    let executed = pool.execute(|| unreachable!("cancelled")).unwrap();
    let with_callback = pool
        .put_request(WorkRequest::new(|_: ()| unreachable!("cancelled"), ()).on_error(|_, _| {}))
        .unwrap();
    let stream = pool
        .put_request(
            WorkRequest::streaming(
                |_: (), _: &callpool::Emitter<'_, u8>| -> Result<(), &str> {
                    unreachable!("cancelled")
                },
                (),
            )
            .on_error(|_, _| {}),
        )
        .unwrap();
    let keyed = make_requests_with_input(|n: &u32| *n, [1u32, 2], |_, _, _| {}, |_, _, _| {});
    for r in keyed {
        pool.put_request(r).unwrap();
    }
    assert!(pool.cancel(executed));
    assert!(pool.cancel(with_callback));
    assert!(pool.cancel(stream));
    assert!(!pool.cancel(stream), "cancelled twice");
    // Counted by the cancel itself, before anything is heard.
    let e = assert_moved(&pool, e, (0, 0, 0, 3), "cancel(id) thrice");
    assert_eq!(pool.cancel_queued(), 2);
    let e = assert_moved(&pool, e, (0, 0, 0, 2), "cancel_queued");
    held.open();
    pool.wait().unwrap();
    assert_moved(&pool, e, (1, 0, 0, 0), "the held request");
}

/// A child a running callable put, still held in its worker's slot, is
/// cancelled by `cancel_queued` (documented) and counted once.
#[test]
fn a_child_cancelled_from_its_slot_is_counted_once() {
    let pool = quiet_pool(1);
    let e = ends(&pool);
    let (ids_tx, ids) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    pool.execute_with_context(move |cx| {
        for _ in 0..3 {
            let id = cx
                .put(WorkRequest::new(|_: ()| unreachable!("cancelled"), ()).on_error(|_, _| {}))
                .unwrap();
            ids_tx.send(id).unwrap();
        }
        let _ = go.recv();
    })
    .unwrap();
    let ids: Vec<_> = (0..3).map(|_| ids.recv_timeout(HANG).unwrap()).collect();
    assert!(pool.cancel(ids[0]));
    assert_eq!(pool.cancel_queued(), 2);
    let e = assert_moved(&pool, e, (0, 0, 0, 3), "three children cancelled");
    drop(go_tx);
    pool.wait().unwrap();
    assert_moved(&pool, e, (1, 0, 0, 0), "the parent");
}

// ---------------------------------------------------------------------------
// Streams, keyed requests, joins, commands.
// ---------------------------------------------------------------------------

#[test]
fn a_stream_counts_once_by_its_end_whatever_it_emitted() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let items = counter();
    let seen = Arc::clone(&items);
    let three = |_: (), out: &callpool::Emitter<'_, u8>| -> Result<(), &'static str> {
        for i in 0..3 {
            out.emit(i).unwrap();
        }
        Ok(())
    };
    pool.put_request(WorkRequest::streaming(three, ()).on_result(move |_, _| {
        seen.fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap();
    // Three items and the end, handled.
    assert_eq!(pool.wait().unwrap(), 4);
    let e = assert_moved(&pool, e, (1, 0, 0, 0), "a stream that returned");
    let fails = |_: (), out: &callpool::Emitter<'_, u8>| -> Result<(), &'static str> {
        out.emit(1).unwrap();
        Err("no")
    };
    pool.put_request(WorkRequest::streaming(fails, ()).on_error(|_, _| {}))
        .unwrap();
    assert_eq!(pool.wait().unwrap(), 2);
    let e = assert_moved(&pool, e, (0, 1, 0, 0), "a stream that failed");
    let panics = |_: (), out: &callpool::Emitter<'_, u8>| -> Result<(), &'static str> {
        out.emit(1).unwrap();
        boom()
    };
    pool.put_request(WorkRequest::streaming(panics, ()).on_error(|_, _| {}))
        .unwrap();
    assert_eq!(pool.wait().unwrap(), 2);
    let e = assert_moved(&pool, e, (0, 0, 1, 0), "a stream that panicked");
    pool.put_request(
        WorkRequest::streaming(three, ())
            .deadline(Instant::now() - Duration::from_millis(1))
            .on_error(|_, _| {}),
    )
    .unwrap();
    assert_eq!(pool.wait().unwrap(), 1);
    assert_moved(&pool, e, (0, 0, 0, 1), "a stream that expired");
    assert_eq!(items.load(Ordering::SeqCst), 3);
}

#[test]
fn keyed_and_shared_requests_count_each_ending() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let keyed = make_requests_with_input(
        |n: &u32| if *n == 2 { boom() } else { *n },
        [1u32, 2, 3],
        |_, _, _| {},
        |_, _, _| {},
    );
    for r in keyed {
        pool.put_request(r).unwrap();
    }
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (2, 0, 1, 0), "keyed");
    let shared = make_fallible_requests(
        |n: u32| match n {
            0 => Ok(n),
            1 => Err("no"),
            _ => boom(),
        },
        0..3u32,
        |_, _| {},
        |_, _| {},
    );
    let batch = pool.put_batch(shared).unwrap();
    pool.wait().unwrap();
    let p = batch.progress();
    assert_eq!((p.total, p.done, p.failed, p.cancelled), (3, 1, 2, 0));
    assert_moved(&pool, e, (1, 1, 1, 0), "make_fallible_requests in a batch");
}

#[test]
fn a_join_is_one_request_however_its_halves_end() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    pool.put_request(WorkRequest::with_context(
        |cx, n: u32| {
            let (a, (b, c)) = cx.join(|_| n, |cx| cx.join(|_| n, |_| n));
            a + b + c
        },
        1,
    ))
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (1, 0, 0, 0), "nested joins");
    pool.put_request(
        WorkRequest::with_context(|cx, _: ()| cx.join(|_| boom::<u8>(), |_| boom::<u8>()), ())
            .on_error(|_, _| {}),
    )
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 0, 1, 0), "both halves panicked");
    assert_eq!(
        within_here("join", || pool.join(|_| 1, |_| 2)).unwrap(),
        (1, 2)
    );
    assert_moved(&pool, e, (1, 0, 0, 0), "ThreadPool::join");
    assert_eq!(pool.stats().running, 0);
}

#[cfg(unix)]
#[test]
fn commands_count_as_the_callable_returned() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let sh = |script: &str| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    };
    // A non-zero exit is a value (its status is in the output).
    pool.put_request(WorkRequest::command(sh("exit 3")).on_error(|_, _| {}))
        .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (1, 0, 0, 0), "exit 3");
    pool.put_request(
        WorkRequest::command(Command::new("/nonexistent/callpool-no-such-program"))
            .on_error(|_, _| {}),
    )
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 1, 0, 0), "no such program");
    pool.put_request(
        WorkRequest::command_timeout(sh("exec sleep 30"), Duration::from_millis(50))
            .on_error(|_, _| {}),
    )
    .unwrap();
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (0, 1, 0, 0), "killed at its timeout");
    let t = pool.submit_command(sh("exit 0")).unwrap();
    assert!(t.wait().unwrap().success());
    let t = pool
        .submit_command_timeout(sh("exec sleep 30"), Duration::from_millis(50))
        .unwrap();
    assert!(matches!(
        t.wait(),
        Err(TaskError::Failed(CommandError::TimedOut { .. }))
    ));
    assert_moved(&pool, e, (1, 1, 0, 0), "submit_command, _timeout");
}

// ---------------------------------------------------------------------------
// Windows and map.
// ---------------------------------------------------------------------------

#[test]
fn windows_count_one_request_per_input() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let got: Vec<_> = pool
        .as_completed(0..5u32, 2, |n: &u32| if *n == 3 { boom() } else { *n })
        .collect();
    assert_eq!(got.len(), 5);
    let e = assert_moved(&pool, e, (4, 0, 1, 0), "as_completed");
    let got: Vec<_> = pool
        .as_completed_fallible(
            0..4u32,
            2,
            |n: &u32| if *n == 1 { Err("no") } else { Ok(*n) },
        )
        .collect();
    assert_eq!(got.len(), 4);
    let e = assert_moved(&pool, e, (3, 1, 0, 0), "as_completed_fallible");
    let got: Vec<_> = pool.imap(0..3u32, 2, |n: u32| n).collect();
    assert_eq!(got, [Ok(0), Ok(1), Ok(2)]);
    let e = assert_moved(&pool, e, (3, 0, 0, 0), "imap");
    let got: Vec<_> = pool
        .imap_fallible(0..3u32, 3, |n: u32| if n == 0 { Err("no") } else { Ok(n) })
        .collect();
    assert_eq!(got.len(), 3);
    let e = assert_moved(&pool, e, (2, 1, 0, 0), "imap_fallible");
    // `as_completed` of tickets: they count as tickets do.
    let tickets = vec![
        pool.submit(|n: u32| n, 1).unwrap(),
        pool.submit(|_: u32| boom::<u32>(), 2).unwrap(),
    ];
    assert_eq!(as_completed(tickets).count(), 2);
    assert_moved(&pool, e, (1, 0, 1, 0), "as_completed of tickets");
}

/// A window dropped part-way cancels its tickets still queued: each is
/// counted once the worker reaches it; none runs; the inputs never put
/// count nowhere.
#[test]
fn a_window_dropped_part_way_counts_its_queued_requests_as_cancelled() {
    let (pool, held) = held_worker(64);
    let e = ends(&pool);
    let ran = counter();
    let seen = Arc::clone(&ran);
    {
        let mut window = pool.as_completed(0..100u32, 4, move |n: &u32| {
            seen.fetch_add(1, Ordering::SeqCst);
            *n
        });
        assert!(window.try_next().is_pending());
        assert_eq!(pool.queued(), 4);
    }
    {
        let mut in_order = pool.imap(0..100u32, 3, |n: u32| n);
        assert!(in_order.try_next().is_pending());
    }
    assert_eq!(pool.queued(), 7);
    let sentinel = pool.submit(|n: u32| n, 1).unwrap();
    held.open();
    assert_eq!(sentinel.wait(), Ok(1));
    pool.wait().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_moved(&pool, e, (2, 0, 0, 7), "two windows dropped");
}

/// `map` counts chunks, not inputs (documented): a panic in one input is
/// that input's outcome, and its chunk completes.
#[test]
fn map_counts_its_chunks_as_completed_even_with_a_panicking_input() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let out = pool.map(0..3u32, |n: u32| if n == 1 { boom() } else { n });
    assert!(matches!(out[1], Err(TaskError::Panicked(_))));
    // Three inputs, at most four per worker: a chunk each.
    assert_moved(&pool, e, (3, 0, 0, 0), "map of three");
}

// ---------------------------------------------------------------------------
// Collectors and scopes.
// ---------------------------------------------------------------------------

#[test]
fn a_collectors_requests_count_each_ending_by_the_time_wait_with_returns() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let mut c = pool.fallible_collector::<u32, &str>();
    c.put(|n: u32| n, 1).unwrap();
    c.put_fallible(|_: u32| Err("no"), 1).unwrap();
    c.put(|_: u32| boom::<u32>(), 1).unwrap();
    let bomb = Bomb;
    c.put(
        move |n: u32| {
            let _bomb = bomb;
            n
        },
        1,
    )
    .unwrap();
    c.put_then(|n: u32| n, 1, |_| {}).unwrap();
    c.put_fallible_then(|_: u32| Err("no"), 1, |_| {}).unwrap();
    c.try_put(|n: u32| n, 1).ok().unwrap();
    c.put_timeout(|n: u32| n, 1, HANG).ok().unwrap();
    c.put_with_context(
        |cx, n: u32| {
            cx.add(|n: u32| n, n).unwrap();
            cx.add_fallible(|_: u32| Err("no"), n).unwrap();
            cx.add_with_context(|_, _: u32| boom::<u32>(), n).unwrap();
            n
        },
        1,
    )
    .unwrap();
    let handled = c.wait_with(|_, _| {});
    assert_eq!(handled, 12);
    assert_eq!(c.pending(), 0);
    assert_moved(&pool, e, (6, 3, 3, 0), "a collector");
}

#[test]
fn a_collectors_streams_count_once_at_their_end() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let items = std::cell::Cell::new(0);
    let mut c = pool.fallible_collector::<u32, &str>();
    c.put_streaming(
        |n: u32, out: &callpool::CollectorEmitter<'_, u32, &str>| {
            for i in 0..n {
                out.emit(i)?;
            }
            Ok(())
        },
        3,
    )
    .unwrap();
    c.put_fallible_streaming(
        |_: u32, out: &callpool::CollectorEmitter<'_, u32, &str>| {
            out.emit(1).unwrap();
            Err("no")
        },
        1,
    )
    .unwrap();
    c.put_streaming(
        |_: u32, out: &callpool::CollectorEmitter<'_, u32, &str>| -> Result<(), Closed> {
            out.emit(1).unwrap();
            boom()
        },
        1,
    )
    .unwrap();
    c.put_streaming_then(
        |_: u32, out: &callpool::CollectorEmitter<'_, u32, &str>| {
            out.emit(1)?;
            out.emit(2)
        },
        1,
        |_| items.set(items.get() + 1),
    )
    .unwrap();
    c.put_with_context(
        |cx, n: u32| {
            cx.add_streaming(
                |_: u32, out: &callpool::CollectorEmitter<'_, u32, &str>| out.emit(7),
                n,
            )
            .unwrap();
            n
        },
        1,
    )
    .unwrap();
    // Items: 3 + 1 + 1 + 2 + 1; ends handed on: two errors and the
    // context's value.
    assert_eq!(c.wait_with(|_, _| {}), 11);
    assert_eq!(items.get(), 2);
    assert_moved(&pool, e, (4, 1, 1, 0), "a collector's streams");
}

#[test]
fn a_scopes_requests_count_each_ending_by_the_time_it_returns() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let local = [1u32, 2, 3];
    let pending = pool.scope(|s| {
        s.put(|xs: &[u32]| xs.len() as u32, &local[..]).unwrap();
        s.put(|_: ()| boom::<u32>(), ()).unwrap();
        s.put_then(|n: u32| n, 1, |_| {}).unwrap();
        s.put_scoped(
            |sc, xs: &[u32]| {
                sc.put(|x: &u32| *x, &xs[0]).unwrap();
                sc.put_scoped(|_, _: ()| boom::<u32>(), ()).unwrap();
                let (a, b) = sc.join(|_| xs[1], |_| xs[2]);
                a + b
            },
            &local[..],
        )
        .unwrap();
        s.put_streaming(
            |xs: &[u32], out: &callpool::CollectorEmitter<'_, u32>| {
                for x in xs {
                    out.emit(*x)?;
                }
                Ok(())
            },
            &local[..],
        )
        .unwrap();
        s.pending()
    });
    assert_eq!(pending, 5);
    assert_moved(&pool, e, (5, 0, 2, 0), "a scope");
    let e = ends(&pool);
    let failed: Result<(), &str> = pool.fallible_scope(|s| {
        s.put_fallible(|_: ()| Err::<u32, _>("no"), ()).unwrap();
        s.put_fallible_scoped(|_, _: ()| Err("no"), ()).unwrap();
        Ok(())
    });
    assert_eq!(failed, Ok(()));
    assert_moved(&pool, e, (0, 2, 0, 0), "a fallible scope");
    assert_eq!(pool.stats().running, 0);
}

// ---------------------------------------------------------------------------
// Refused puts, shutdowns.
// ---------------------------------------------------------------------------

/// A refused put is in no count, whatever form it took, on a closed pool
/// and on a full one.
#[test]
fn refused_puts_count_nowhere() {
    let pool = quiet_pool(1);
    let other = pool.new_handle();
    // Something counted first, so a count that moves backwards shows.
    pool.execute(|| {}).unwrap();
    pool.wait().unwrap();
    let e = ends(&pool);
    // Full: one worker held, a queue of one, full.
    {
        let full = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let (held, latch) = gate();
        full.execute(move || latch.hold()).unwrap();
        held.await_start();
        full.execute(|| {}).unwrap();
        let fe = ends(&full);
        assert!(full
            .try_put_request(WorkRequest::new(|n: u32| n, 1))
            .is_err());
        assert!(full.try_execute(|| {}).is_err());
        assert!(full
            .execute_timeout(|| {}, Duration::from_millis(1))
            .is_err());
        assert!(full.try_submit(|n: u32| n, 1).is_err());
        assert!(full.try_submit_with_context(|_, n: u32| n, 1).is_err());
        assert!(matches!(
            full.try_install(|_| 1),
            Err(InstallError::Full(_))
        ));
        let mut c = full.collector::<u32>();
        assert!(c.try_put(|n: u32| n, 1).is_err());
        assert!(c
            .put_timeout(|n: u32| n, 1, Duration::from_millis(1))
            .is_err());
        assert_eq!(c.pending(), 0);
        drop(c);
        assert_moved(&full, fe, (0, 0, 0, 0), "refused by a full queue");
        held.open();
        full.wait().unwrap();
        assert_moved(&full, fe, (2, 0, 0, 0), "the two that were put");
    }
    pool.close().unwrap();
    assert!(matches!(
        other.put_request(WorkRequest::new(|n: u32| n, 1)),
        Err(PutError::ShutDown(_))
    ));
    assert!(other.execute(|| {}).is_err());
    assert!(other.submit(|n: u32| n, 1).is_err());
    assert!(other.submit_with_context(|_, n: u32| n, 1).is_err());
    assert!(other.put_all([WorkRequest::new(|n: u32| n, 1)]).is_err());
    assert!(other
        .put_batch(make_fallible_requests(
            |n: u32| Ok::<_, &str>(n),
            0..3,
            |_, _| {},
            |_, _| {}
        ))
        .is_err());
    assert!(matches!(
        other.install(|_| 1),
        Err(InstallError::ShutDown(_))
    ));
    let mut c = other.collector::<u32>();
    assert!(c.put(|n: u32| n, 1).is_err());
    assert_eq!(c.wait_with(|_, _| {}), 0);
    let refused = other.scope(|s| s.put(|n: u32| n, 1).is_err());
    assert!(refused);
    let out = other.map(0..3u32, |n: u32| n);
    assert!(out.iter().all(|o| *o == Err(TaskError::Cancelled)));
    let window: Vec<_> = other.as_completed(0..3u32, 2, |n: &u32| *n).collect();
    assert_eq!(window.len(), 1, "no input is pulled after the refused one");
    assert_moved(&other, e, (0, 0, 0, 0), "refused by a closed pool");
    assert_eq!(other.pending(), 0);
}

/// `shutdown_now`: this handle's requests handed back count nowhere;
/// other handles' requests, tickets (this handle's too), collectors' and
/// scopes' requests not started are cancelled, each counted once; the
/// running one completes.
#[test]
fn shutdown_now_counts_what_it_cancelled_and_not_what_it_handed_back() {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let watcher = pool.new_handle();
    let (held, latch) = gate();
    other.execute(move || latch.hold()).unwrap();
    held.await_start();
    let e = ends(&watcher);
    // Handed back: three of this handle's.
    pool.put_request(WorkRequest::new(|n: u32| n, 1)).unwrap();
    pool.execute(|| {}).unwrap();
    pool.put_request(WorkRequest::streaming(
        |_: (), _: &callpool::Emitter<'_, u8>| Ok::<(), &str>(()),
        (),
    ))
    .unwrap();
    // Cancelled: two of the other handle's, two tickets (one of each
    // handle), a collector's request.
    other
        .put_request(WorkRequest::new(|n: u32| n, 1).on_error(|_, _| {}))
        .unwrap();
    other.execute(|| unreachable!("cancelled")).unwrap();
    let mine = pool.submit(|n: u32| n, 1).unwrap();
    let theirs = other.submit_with_context(|_, n: u32| n, 1).unwrap();
    let mut c = other.collector::<u32>();
    c.put(|n: u32| n, 1).unwrap();
    // An install from another thread, queued behind the held request.
    let installer = other.new_handle();
    let (installing_tx, installing) = mpsc::channel();
    let install = std::thread::spawn(move || {
        installing_tx.send(()).unwrap();
        installer.install(|_| 1)
    });
    installing.recv_timeout(HANG).unwrap();
    common::until(|| watcher.queued() == 9);
    let back = pool.shutdown_now();
    assert_eq!(back.len(), 3);
    let e = assert_moved(&watcher, e, (0, 0, 0, 6), "shutdown_now");
    drop(back);
    assert_eq!(mine.wait(), Err(TaskError::Cancelled));
    assert_eq!(theirs.wait(), Err(TaskError::Cancelled));
    assert!(matches!(
        within("the install", move || install.join().unwrap()),
        Err(InstallError::Cancelled(_))
    ));
    assert_eq!(c.wait_with(|_, _| {}), 1);
    held.open();
    other.wait().unwrap();
    assert_moved(
        &watcher,
        e,
        (1, 0, 0, 0),
        "the held request, and nothing more",
    );
}

/// A graceful shutdown of a pool with no worker left: this handle's
/// requests come back in `ShutdownError::Unrun` (no count); other
/// handles' are cancelled (counted).
#[test]
fn a_shutdown_with_no_worker_counts_what_it_cancelled_only() {
    let pool = ThreadPool::new(0);
    let other = pool.new_handle();
    let watcher = pool.new_handle();
    let e = ends(&watcher);
    pool.put_request(WorkRequest::new(|n: u32| n, 1)).unwrap();
    pool.execute(|| {}).unwrap();
    other
        .put_request(WorkRequest::new(|n: u32| n, 1).on_error(|_, _| {}))
        .unwrap();
    let t = other.submit(|n: u32| n, 1).unwrap();
    let batch = pool
        .put_batch(make_fallible_requests(
            |n: u32| Ok::<_, &str>(n),
            0..2,
            |_, _| {},
            |_, _| {},
        ))
        .unwrap();
    match pool.shutdown() {
        Err(callpool::ShutdownError::Unrun(back)) => assert_eq!(back.len(), 4),
        other => panic!("expected Unrun, got {other:?}"),
    }
    assert_eq!(t.wait(), Err(TaskError::Cancelled));
    assert_eq!(other.wait().unwrap(), 1);
    assert_eq!(batch.progress().cancelled, 2);
    assert_moved(&watcher, e, (0, 0, 0, 2), "a shutdown with no worker");
}

// ---------------------------------------------------------------------------
// Install, and the gauges.
// ---------------------------------------------------------------------------

#[test]
fn install_counts_itself_once_and_its_children_on_the_handle() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    let v = [1u32, 2, 3];
    let sum = within_here("install", || {
        pool.install(|cx| {
            cx.put(WorkRequest::new(|n: u32| n, 1)).unwrap();
            cx.execute(boom::<()>).unwrap();
            v.iter().sum::<u32>()
        })
    })
    .unwrap();
    assert_eq!(sum, 6);
    // The children may run before or after `install` returns: only the
    // handle's `wait` covers them.
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (2, 0, 1, 0), "install and its children");
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        within_here("try_install", || pool.try_install(|_| boom::<u32>()))
    }));
    assert!(caught.is_err());
    assert_moved(&pool, e, (0, 0, 1, 0), "try_install panicked");
    assert_eq!(pool.stats().running, 0);
}

/// `running`, `busy`, `idle`, `queued`, `workers`, `threads`, `pending`
/// at points a test can pin down.
#[test]
fn the_gauges_agree_with_what_is_running_and_queued() {
    let pool = ThreadPool::new(2);
    let (a, latch_a) = gate();
    let (b, latch_b) = gate();
    pool.execute(move || latch_a.hold()).unwrap();
    let t = pool.submit(move |_: ()| latch_b.hold(), ()).unwrap();
    a.await_start();
    b.await_start();
    pool.put_request(WorkRequest::new(|n: u32| n, 1)).unwrap();
    let queued_ticket = pool.submit(|n: u32| n, 2).unwrap();
    let s = pool.stats();
    assert_eq!(
        (s.workers, s.threads, s.running, s.busy, s.idle, s.queued),
        (2, 2, 2, 2, 0, 2)
    );
    // The executed request and the request with a callback; tickets are
    // not the handle's.
    assert_eq!(pool.pending(), 2);
    a.open();
    b.open();
    assert_eq!(t.wait(), Ok(()));
    assert_eq!(queued_ticket.wait(), Ok(2));
    pool.wait().unwrap();
    let s = pool.stats();
    assert_eq!((s.running, s.queued, s.completed), (0, 0, 4));
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!(pool.join_all_dismissed_workers(), 1);
    let s = pool.stats();
    assert_eq!((s.workers, s.threads, s.busy + s.idle), (1, 1, 1));
}

/// `running` is 0 once `wait` has returned, also after a join whose
/// second half another worker ran: that worker stops counting itself as
/// running before the join can hear that the half is over. (It used to
/// stop only after telling the join, so a `wait` could return, its
/// request counted, while `running` still said 1: seen about once in
/// 100,000 rounds of this shape, a race this test catches only rarely;
/// the ordering argument is in `scope::lend`'s `Offered::run`.) Only the
/// documented exception is left: a half its join took back, whose
/// emptied job a worker may still take; here the half always runs on the
/// other worker, since the first half waits until it has started.
#[test]
fn running_is_0_after_wait_when_another_worker_ran_a_joins_half() {
    let pool = ThreadPool::new(2);
    within("rounds of joins", move || {
        for round in 0..2_000 {
            let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let b_started = Arc::clone(&started);
            let (tx, rx) = mpsc::channel();
            pool.put_request(
                WorkRequest::with_context(
                    move |cx: &callpool::Context<'_>, _: ()| {
                        let here = std::thread::current().id();
                        let (_, there) = cx.join(
                            |_| {
                                while !started.load(Ordering::Acquire) {
                                    std::thread::yield_now();
                                }
                            },
                            move |_| {
                                b_started.store(true, Ordering::Release);
                                std::thread::current().id()
                            },
                        );
                        there != here
                    },
                    (),
                )
                .on_result(move |_, elsewhere| tx.send(elsewhere).unwrap()),
            )
            .unwrap();
            pool.wait().unwrap();
            let running = pool.stats().running;
            assert!(
                rx.recv().unwrap(),
                "round {round}: the half ran on the join's worker"
            );
            assert_eq!(
                running, 0,
                "round {round}: a worker still counted as running"
            );
        }
    });
}

/// Counts survive a worker's exit: a dismissed worker's tally is kept.
#[test]
fn a_dismissed_workers_counts_are_kept() {
    let pool = quiet_pool(2);
    let e = ends(&pool);
    for _ in 0..4 {
        pool.execute(boom::<()>).unwrap();
        pool.execute(|| {}).unwrap();
    }
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (4, 0, 4, 0), "before");
    pool.resize(0).unwrap();
    assert_eq!(pool.join_all_dismissed_workers(), 2);
    assert_moved(&pool, e, (0, 0, 0, 0), "after both workers left");
}

/// A ticket cancelled in the queue, then swept by a closing pool (or
/// drained by a graceful one): counted once, by whichever reached it.
#[test]
fn a_cancelled_ticket_is_counted_once_by_a_drain_or_a_sweep() {
    for now in [false, true] {
        let (pool, held) = held_worker(16);
        let watcher = pool.new_handle();
        let e = ends(&watcher);
        let plain = pool.submit(|n: u32| n, 1).unwrap();
        let in_context = pool.submit_with_context(|_, n: u32| n, 1).unwrap();
        assert!(plain.cancel());
        assert!(in_context.cancel());
        if now {
            drop(pool.shutdown_now());
            held.open();
        } else {
            let closer = std::thread::spawn(move || pool.close());
            common::until(|| watcher.is_shut_down());
            held.open();
            within("the drain", move || closer.join().unwrap()).unwrap();
        }
        assert_eq!(plain.wait(), Err(TaskError::Cancelled));
        assert_eq!(in_context.wait(), Err(TaskError::Cancelled));
        common::until(|| watcher.threads() == 0);
        assert_moved(
            &watcher,
            e,
            (1, 0, 0, 2),
            if now { "swept" } else { "drained" },
        );
    }
}

/// A request cancelled or expired whose callable's capture panics as it
/// is dropped: cancelled, not panicked (its callable never ran).
#[test]
fn a_panicking_drop_of_an_unrun_callable_counts_as_cancelled() {
    hide_panics_starting_with(DELIBERATE);
    let (pool, held) = held_worker(16);
    let e = ends(&pool);
    let bomb = Bomb;
    let id = pool
        .put_request(
            WorkRequest::new(
                move |_: ()| {
                    let _bomb = bomb;
                },
                (),
            )
            .on_error(|_, _| {}),
        )
        .unwrap();
    let bomb = Bomb;
    pool.put_request(
        WorkRequest::new(
            move |_: ()| {
                let _bomb = bomb;
            },
            (),
        )
        .deadline(Instant::now() - Duration::from_millis(1))
        .on_error(|_, _| {}),
    )
    .unwrap();
    let bomb = Bomb;
    let t = pool
        .submit(
            move |_: ()| {
                let _bomb = bomb;
            },
            (),
        )
        .unwrap();
    assert!(pool.cancel(id));
    assert!(t.cancel());
    let sentinel = pool.submit(|n: u32| n, 1).unwrap();
    held.open();
    assert_eq!(sentinel.wait(), Ok(1));
    pool.wait().unwrap();
    assert_moved(&pool, e, (2, 0, 0, 3), "cancelled, expired, ticket");
}

/// A bounded queue full with no worker left: `put_batch` returns the
/// batch with its members cancelled (documented), and they count as
/// cancelled; a plain put is refused and counts nowhere.
#[test]
fn a_batch_refused_for_want_of_workers_counts_its_members_cancelled() {
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(1)
        .build()
        .unwrap();
    pool.execute(|| {}).unwrap();
    let e = ends(&pool);
    assert!(matches!(
        pool.put_request(WorkRequest::new(|n: u32| n, 1)),
        Err(PutError::NoWorkers(_))
    ));
    let e = assert_moved(&pool, e, (0, 0, 0, 0), "a refused put");
    let batch = pool
        .put_batch(make_fallible_requests(
            |n: u32| Ok::<_, &str>(n),
            0..3,
            |_, _| {},
            |_, _| {},
        ))
        .unwrap();
    let e = assert_moved(&pool, e, (0, 0, 0, 3), "a batch with no worker");
    pool.create_workers(1).unwrap();
    pool.wait().unwrap();
    let p = batch.progress();
    assert_eq!((p.done, p.failed, p.cancelled), (0, 0, 3));
    assert_moved(&pool, e, (1, 0, 0, 0), "the executed request");
}

/// A child a collector's request adds on a pool shut down meanwhile is
/// refused: it still ends on the collector as `Cancelled` (documented),
/// and is in no count.
#[test]
fn a_refused_collector_child_ends_cancelled_and_counts_nowhere() {
    let pool = ThreadPool::new(1);
    let watcher = pool.new_handle();
    let stopper = pool.clone();
    let e = ends(&watcher);
    let mut c = pool.collector::<u32>();
    c.put_with_context(
        move |cx, n: u32| {
            drop(stopper.shutdown_now());
            assert!(matches!(cx.add(|n: u32| n, n), Err(PutError::ShutDown(_))));
            n
        },
        1,
    )
    .unwrap();
    let mut outcomes: Vec<_> = c.outcomes().map(|(_, o)| o).collect();
    outcomes.sort_by_key(Result::is_err);
    assert_eq!(outcomes, [Ok(1), Err(TaskError::Cancelled)]);
    assert_moved(&watcher, e, (1, 0, 0, 0), "one ran, one refused");
}

/// `cancel_rest` on an `as_completed` of tickets: as many cancelled as it
/// says, counted once the worker reaches them.
#[test]
fn cancel_rest_counts_what_it_cancelled() {
    let (pool, held) = held_worker(16);
    let e = ends(&pool);
    let tickets: Vec<_> = (0..5u32)
        .map(|n| pool.submit(|n: u32| n, n).unwrap())
        .collect();
    let mut ended = as_completed(tickets);
    assert_eq!(ended.cancel_rest(), 5);
    assert_eq!(ended.cancel_rest(), 0);
    let sentinel = pool.submit(|n: u32| n, 1).unwrap();
    held.open();
    assert_eq!(sentinel.wait(), Ok(1));
    assert_eq!(
        ended
            .by_ref()
            .filter(|(_, o)| *o == Err(TaskError::Cancelled))
            .count(),
        5
    );
    pool.wait().unwrap();
    assert_moved(&pool, e, (2, 0, 0, 5), "cancel_rest");
}

/// `map`'s chunks swept by `shutdown_now` count once each as cancelled,
/// however many inputs each held; every input comes back `Cancelled`.
#[test]
fn map_chunks_swept_by_a_shutdown_count_once_each() {
    let (pool, held) = held_worker(64);
    let watcher = pool.new_handle();
    let e = ends(&watcher);
    let mapper = pool.new_handle();
    let mapped = std::thread::spawn(move || mapper.map(0..3u32, |n: u32| n));
    // One worker: up to four chunks per worker, so a chunk per input.
    common::until(|| watcher.queued() == 3);
    drop(pool.shutdown_now());
    let out = within("map", move || mapped.join().unwrap());
    assert!(out.len() == 3 && out.iter().all(|o| *o == Err(TaskError::Cancelled)));
    held.open();
    common::until(|| watcher.threads() == 0);
    assert_moved(&watcher, e, (1, 0, 0, 3), "three chunks swept");
}

/// On a one-worker pool, a request that waits for work of its own (a
/// scope, a collector, a ticket) runs that work itself: each piece is
/// still counted once, and the worker counts once in `running` meanwhile.
#[test]
fn work_a_waiting_worker_runs_itself_is_counted_once() {
    hide_panics_starting_with(DELIBERATE);
    let pool = quiet_pool(1);
    let inner = pool.clone();
    let e = ends(&pool);
    let t = pool
        .submit(
            move |_: ()| {
                let mut running = Vec::new();
                let xs = [1u32, 2];
                inner.scope(|s| {
                    s.put(|x: &u32| *x, &xs[0]).unwrap();
                    s.put(|_: &u32| boom::<u32>(), &xs[1]).unwrap();
                });
                running.push(inner.stats().running);
                let mut c = inner.fallible_collector::<u32, &str>();
                c.put(|n: u32| n, 1).unwrap();
                c.put_fallible(|_: u32| Err("no"), 1).unwrap();
                let mut handled = 0;
                while c.pending() > 0 {
                    handled += c.poll_with(|_, _| {});
                }
                running.push(inner.stats().running);
                let ticket = inner.submit(|n: u32| n, 1).unwrap();
                assert_eq!(ticket.wait(), Ok(1));
                running.push(inner.stats().running);
                assert_eq!(inner.install(|_| 5).unwrap(), 5);
                (handled, running)
            },
            (),
        )
        .unwrap();
    assert_eq!(t.wait(), Ok((2, vec![1, 1, 1])));
    assert_moved(&pool, e, (5, 1, 1, 0), "a waiting worker's own work");
    assert_eq!(pool.stats().running, 0);
}

/// A collector dropped with its requests queued: they still run (nobody
/// reads their outcomes) and count as they end; a scope whose body
/// panics still waits for its requests, which count likewise.
#[test]
fn requests_whose_collector_or_scope_body_is_gone_still_count() {
    hide_panics_starting_with(DELIBERATE);
    let (pool, held) = held_worker(16);
    let e = ends(&pool);
    let mut c = pool.collector::<u32>();
    c.put(|n: u32| n, 1).unwrap();
    c.put(|_: u32| boom::<u32>(), 1).unwrap();
    drop(c);
    let sentinel = pool.submit(|n: u32| n, 1).unwrap();
    held.open();
    assert_eq!(sentinel.wait(), Ok(1));
    pool.wait().unwrap();
    let e = assert_moved(&pool, e, (3, 0, 1, 0), "a dropped collector's requests");
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.put(|n: u32| n, 1).unwrap();
            s.put(|_: u32| boom::<u32>(), 1).unwrap();
            panic!("{DELIBERATE} the scope's body");
        })
    }));
    assert!(caught.is_err());
    assert_moved(&pool, e, (1, 0, 1, 0), "a panicking scope body's requests");
}
