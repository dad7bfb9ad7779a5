//! Tickets whose callable is given a `Context`
//! (`ThreadPool::submit_with_context`, `submit_fallible_with_context`):
//! the children it puts are counted on the handle before the ticket has
//! its outcome, their callbacks run on the polling thread, and the ticket's
//! request ends exactly once whichever way it goes (run, panicked,
//! cancelled by its ticket, by `shutdown_now`, or by the last handle's
//! drop).
//!
//! Every step that must come before another is forced by a gate or a
//! channel, never by sleeping; timeouts only turn a hang into a failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use callpool::{Context, PutError, TaskError, ThreadPool, Ticket, WorkRequest};
use common::{counter, gate, until, within, Gate, Latch, TestResult, HANG};

const DELIBERATE: &str = "ticket_context: deliberate panic";

#[test]
fn children_are_counted_before_the_ticket_ends_and_called_back_on_the_polling_thread() -> TestResult
{
    const CHILDREN: usize = 500;
    let pool = ThreadPool::new(2);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&heard);
    let ticket = pool.submit_with_context(
        move |cx: &Context<'_>, n: usize| {
            for i in 0..n {
                let record = Arc::clone(&record);
                cx.put(
                    WorkRequest::new(|i: usize| i * 2, i).on_result(move |_, doubled| {
                        record
                            .lock()
                            .unwrap()
                            .push((doubled, thread::current().id()));
                    }),
                )
                .expect("the pool is open");
            }
            cx.id()
        },
        CHILDREN,
    )?;
    let id = ticket.id();
    assert_eq!(ticket.wait_timeout(HANG).expect("hang"), Ok(id));
    // Every child was counted before the ticket had its outcome: one
    // `wait` now covers them all.
    assert_eq!(pool.wait()?, CHILDREN);
    assert_eq!(pool.pending(), 0);
    let heard = heard.lock().unwrap();
    let mut values: Vec<usize> = heard.iter().map(|&(v, _)| v).collect();
    values.sort_unstable();
    assert_eq!(values, (0..CHILDREN).map(|i| i * 2).collect::<Vec<_>>());
    let here = thread::current().id();
    assert!(
        heard.iter().all(|&(_, on)| on == here),
        "a callback ran off the polling thread"
    );
    let stats = pool.stats();
    assert_eq!(stats.completed, CHILDREN as u64 + 1, "{stats:?}");
    Ok(())
}

#[test]
fn grandchildren_put_by_children_are_covered_by_the_wait_after_the_ticket() -> TestResult {
    let pool = ThreadPool::new(2);
    let called = counter();
    let in_callbacks = Arc::clone(&called);
    let ticket = pool.submit_with_context(
        move |cx: &Context<'_>, n: u32| {
            for _ in 0..n {
                let called = Arc::clone(&in_callbacks);
                cx.put(WorkRequest::with_context(
                    move |cx: &Context<'_>, n: u32| {
                        for _ in 0..n {
                            let called = Arc::clone(&called);
                            cx.put(WorkRequest::new(|_: ()| (), ()).on_result(move |_, ()| {
                                called.fetch_add(1, Ordering::Relaxed);
                            }))
                            .expect("the pool is open");
                        }
                    },
                    n,
                ))
                .expect("the pool is open");
            }
        },
        20,
    )?;
    assert_eq!(ticket.wait_timeout(HANG).expect("hang"), Ok(()));
    // 20 children, each putting 20 grandchildren.
    assert_eq!(pool.wait()?, 20 + 400);
    assert_eq!(called.load(Ordering::Relaxed), 400);
    Ok(())
}

#[test]
fn a_panic_after_putting_children_reaches_the_ticket_and_the_children_still_run() -> TestResult {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let ran = counter();
    let in_children = Arc::clone(&ran);
    let ticket = pool.submit_with_context(
        move |cx: &Context<'_>, n: usize| -> () {
            for _ in 0..n {
                let ran = Arc::clone(&in_children);
                cx.put(WorkRequest::new(
                    move |_: ()| ran.fetch_add(1, Ordering::Relaxed),
                    (),
                ))
                .expect("the pool is open");
            }
            panic!("{DELIBERATE}");
        },
        3,
    )?;
    match ticket.wait_timeout(HANG).expect("hang") {
        Err(TaskError::Panicked(message)) => assert_eq!(message, DELIBERATE),
        other => panic!("expected the panic, got {other:?}"),
    }
    assert_eq!(pool.wait()?, 3);
    assert_eq!(ran.load(Ordering::Relaxed), 3);
    assert_eq!(pool.stats().panicked, 1);
    Ok(())
}

#[test]
fn a_fallible_callable_hands_a_refused_put_back_through_its_ticket() -> TestResult {
    let pool = ThreadPool::new(1);
    let ticket = pool.submit_fallible_with_context(
        |cx: &Context<'_>, id: u64| {
            cx.put(WorkRequest::new(|_: ()| (), ()).with_id(id))?;
            cx.put(WorkRequest::new(|_: ()| (), ()).with_id(id))?;
            Ok::<_, PutError>("unreachable")
        },
        42,
    )?;
    match ticket.wait_timeout(HANG).expect("hang") {
        Err(TaskError::Failed(PutError::DuplicateId(request))) => {
            assert_eq!(request.id().value(), 42)
        }
        other => panic!("expected the refused put, got {other:?}"),
    }
    assert_eq!(pool.wait()?, 1);
    assert_eq!(pool.stats().failed, 1);
    Ok(())
}

/// A held worker (its gate, its ticket), a context ticket queued behind it,
/// and how many times that one's callable ran.
type Queued = (Gate, Ticket<()>, Ticket<()>, Arc<AtomicUsize>);

fn queued_behind_a_held_worker(pool: &ThreadPool) -> Queued {
    let (gate, latch) = gate();
    let held = pool.submit(Latch::hold, latch).unwrap();
    gate.await_start();
    let ran = counter();
    let queued = pool.submit_with_context(counting(&ran), ()).unwrap();
    (gate, held, queued, ran)
}

/// A context callable that counts its runs in `ran`.
fn counting(ran: &Arc<AtomicUsize>) -> impl FnOnce(&Context<'_>, ()) + Send + 'static {
    let ran = Arc::clone(ran);
    move |_, ()| {
        ran.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn cancelled_through_its_ticket_it_never_runs_and_ends_once() -> TestResult {
    let pool = ThreadPool::new(1);
    let (gate, held, queued, ran) = queued_behind_a_held_worker(&pool);
    let handle = queued.cancel_handle();
    assert!(queued.cancel());
    assert!(!queued.cancel(), "cancelled twice");
    assert!(!handle.cancel(), "cancelled twice through its handle");
    // Not the handle's: `cancel(id)` does not reach a ticket's request.
    assert!(!pool.cancel(queued.id()));
    assert_eq!(
        queued.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    gate.open();
    assert_eq!(held.wait_timeout(HANG).expect("hang"), Ok(()));
    // The worker has taken the cancelled job and passed it over by now:
    // a request put after it has run.
    assert_eq!(
        pool.submit(|n: u8| n, 1)?.wait_timeout(HANG).expect("hang"),
        Ok(1)
    );
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    assert_eq!(pool.stats().completed, 2, "the held request and the probe");
    Ok(())
}

#[test]
fn shutdown_now_cancels_a_queued_one_and_hands_back_only_the_handles_requests() -> TestResult {
    let pool = ThreadPool::new(1);
    let (gate, held, queued, ran) = queued_behind_a_held_worker(&pool);
    // It does not wait for the running request: the gate opens after the
    // sweep.
    let handed_back = within("shutdown_now", move || pool.shutdown_now());
    gate.open();
    assert!(
        handed_back.is_empty(),
        "a ticket's request is not the handle's to hand back"
    );
    assert_eq!(held.wait_timeout(HANG).expect("hang"), Ok(()));
    assert_eq!(
        queued.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    Ok(())
}

#[test]
fn dropping_the_last_handle_cancels_a_queued_one() -> TestResult {
    let pool = ThreadPool::new(0);
    let ran = counter();
    let queued = pool.submit_with_context(counting(&ran), ())?;
    drop(pool);
    assert_eq!(
        queued.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    Ok(())
}

#[test]
fn a_dropped_ticket_still_runs_and_its_children_are_still_counted() -> TestResult {
    let pool = ThreadPool::new(1);
    let (tx, rx) = mpsc::channel();
    drop(pool.submit_with_context(
        move |cx: &Context<'_>, n: u32| {
            for i in 0..n {
                let tx = tx.clone();
                cx.put(WorkRequest::new(|i: u32| i, i).on_result(move |_, i| tx.send(i).unwrap()))
                    .expect("the pool is open");
            }
        },
        4,
    )?);
    // Nothing is pending on the handle until the callable has put a
    // child: each round waits for one to be counted, then for all counted.
    let mut got = Vec::new();
    while got.len() < 4 {
        until(|| pool.pending() > 0);
        pool.wait()?;
        got.extend(rx.try_iter());
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
    Ok(())
}

#[test]
fn waited_for_inside_a_callable_on_a_one_worker_pool_it_runs_there() -> TestResult {
    // The only worker waits for a context ticket queued behind it: the wait
    // runs the request in place, and its child, put from there, runs once
    // the outer callable has returned.
    let pool = ThreadPool::new(1);
    let inner_pool = pool.clone();
    let outer = pool.submit(
        move |_: ()| {
            let ticket = inner_pool
                .submit_with_context(
                    |cx: &Context<'_>, n: u32| {
                        cx.put(WorkRequest::new(|n: u32| n, n))
                            .expect("the pool is open");
                        (n, cx.worker_index())
                    },
                    5,
                )
                .expect("the pool is open");
            ticket.wait()
        },
        (),
    )?;
    let (value, index) = outer
        .wait_timeout(HANG)
        .expect("hang: a one-worker pool waited for its own queue")?
        .expect("the inner ticket");
    assert_eq!((value, index), (5, Some(0)));
    assert_eq!(pool.wait()?, 1, "the child it put");
    Ok(())
}

#[test]
fn cancel_racing_a_worker_exactly_one_wins_and_only_a_run_puts_its_child() -> TestResult {
    const ROUNDS: usize = 2_000;
    let pool = ThreadPool::new(2);
    let ran = common::hit_counters(ROUNDS);
    let children = common::hit_counters(ROUNDS);
    let mut won = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let (ran, children) = (Arc::clone(&ran), Arc::clone(&children));
        let ticket = pool.submit_with_context(
            move |cx: &Context<'_>, i: usize| {
                ran[i].fetch_add(1, Ordering::SeqCst);
                cx.put(WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                    children[i].fetch_add(1, Ordering::SeqCst);
                }))
                .expect("the pool is open");
            },
            i,
        )?;
        if i % 2 == 1 {
            thread::yield_now();
        }
        let cancelled = ticket.cancel();
        let outcome = ticket.wait_timeout(HANG).expect("hang");
        assert_eq!(
            outcome,
            if cancelled {
                Err(TaskError::Cancelled)
            } else {
                Ok(())
            },
            "round {i}"
        );
        won.push(cancelled);
    }
    pool.wait()?;
    let wrong: Vec<(usize, bool, usize, usize)> = won
        .iter()
        .enumerate()
        .map(|(i, &won)| {
            let (r, c) = (
                ran[i].load(Ordering::SeqCst),
                children[i].load(Ordering::SeqCst),
            );
            (i, won, r, c)
        })
        .filter(|&(_, won, r, c)| r != usize::from(!won) || c != r)
        .collect();
    assert!(
        wrong.is_empty(),
        "(round, cancel won, runs, children called back): {wrong:?}"
    );
    Ok(())
}
