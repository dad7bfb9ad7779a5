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

// ---------------------------------------------------------------------------
// The forms that do not block: `try_submit_with_context`,
// `submit_with_context_timeout` and their fallible twins hand a refused
// callable and argument back, uncalled, and the refused request is never
// counted anywhere.
// ---------------------------------------------------------------------------

/// A pool of one worker, held on a gate, whose bounded queue (one place)
/// holds one more ticket: the next put finds it full.
fn full_queue() -> (ThreadPool, Gate, Ticket<()>, Ticket<u64>) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (gate, latch) = gate();
    let busy = pool.submit(Latch::hold, latch).unwrap();
    gate.await_start();
    let queued = pool.submit(|n: u64| n + 1, 1).unwrap();
    assert_eq!(pool.queued(), 1);
    (pool, gate, busy, queued)
}

/// A context callable that counts its runs and puts `n` children, each of
/// whose result callbacks counts in `called`; it returns `n`.
fn putting(
    ran: &Arc<AtomicUsize>,
    called: &Arc<AtomicUsize>,
) -> impl FnOnce(&Context<'_>, (usize, Arc<()>)) -> usize + Send + 'static {
    let ran = Arc::clone(ran);
    let called = Arc::clone(called);
    move |cx, (n, _token)| {
        ran.fetch_add(1, Ordering::SeqCst);
        for i in 0..n {
            let called = Arc::clone(&called);
            cx.put(WorkRequest::new(|i: usize| i, i).on_result(move |_, _| {
                called.fetch_add(1, Ordering::SeqCst);
            }))
            .expect("the pool is open");
        }
        n
    }
}

#[test]
fn try_submit_with_context_on_a_full_queue_hands_back_both_parts_uncalled() -> TestResult {
    let (pool, gate, busy, queued) = full_queue();
    let (ran, called) = (counter(), counter());
    // The argument's `Arc` counts who holds it: the test and the argument.
    let token = Arc::new(());
    let refused = common::within_here("a try_submit_with_context on a full queue", || {
        pool.try_submit_with_context(putting(&ran, &called), (3, Arc::clone(&token)))
    })
    .expect_err("the queue was full");
    assert!(refused.is_full() && !refused.is_shut_down(), "{refused}");
    assert_eq!(pool.queued(), 1, "the refused ticket took a place");
    let (callable, (n, arg_token)) = refused.into_parts();
    assert_eq!(n, 3);
    assert!(Arc::ptr_eq(&arg_token, &token));
    assert_eq!(
        Arc::strong_count(&token),
        2,
        "a copy of the argument stayed behind"
    );

    gate.open();
    assert_eq!(busy.wait_timeout(HANG).expect("hang: busy"), Ok(()));
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.try_submit_with_context(callable, (n, arg_token))?;
    assert_eq!(again.wait_timeout(HANG).expect("hang: again"), Ok(3));
    assert_eq!(
        pool.wait()?,
        3,
        "its children, counted before the ticket ended"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1, "ran once: the retry");
    assert_eq!(called.load(Ordering::SeqCst), 3);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the call dropped its argument"
    );
    let stats = pool.stats();
    assert_eq!(
        stats.cancelled, 0,
        "the refused request was counted: {stats:?}"
    );
    assert_eq!(stats.completed, 3 + 3, "{stats:?}");
    Ok(())
}

#[test]
fn try_submit_fallible_with_context_hands_back_and_the_retry_fails_typed() -> TestResult {
    let (pool, gate, busy, queued) = full_queue();
    let parse = |cx: &Context<'_>, s: String| {
        cx.put(WorkRequest::new(|_: ()| (), ()))
            .map_err(|_| "refused".to_string())?;
        s.parse::<u8>().map_err(|e| e.to_string())
    };
    let refused = pool
        .try_submit_fallible_with_context(parse, "300".to_string())
        .expect_err("the queue was full");
    assert!(refused.is_full());
    let (parse, text) = refused.into_parts();
    assert_eq!(text, "300");

    gate.open();
    assert_eq!(busy.wait_timeout(HANG).expect("hang: busy"), Ok(()));
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.try_submit_fallible_with_context(parse, text)?;
    assert_eq!(
        again.wait_timeout(HANG).expect("hang: again"),
        Err(TaskError::Failed(
            "300".parse::<u8>().unwrap_err().to_string()
        ))
    );
    assert_eq!(pool.wait()?, 1, "the child put before the failure");
    Ok(())
}

#[test]
fn try_submit_with_context_from_a_worker_is_refused_on_a_full_queue() -> TestResult {
    // Two workers, both held, and the queue's one place taken: a callable
    // that tries to submit is refused, where `Context::put` would go past
    // the capacity.
    let pool = ThreadPool::builder().workers(2).queue_capacity(1).build()?;
    let (held_gate, latch) = gate();
    let held = pool.submit(Latch::hold, latch)?;
    held_gate.await_start();
    let (try_gate, try_latch) = gate();
    let inner = pool.new_handle();
    let ran = counter();
    let callable = counting(&ran);
    let trier = pool.submit(
        move |latch: Latch| {
            latch.hold();
            match inner.try_submit_with_context(callable, ()) {
                Err(refused) => refused.is_full(),
                Ok(_) => false,
            }
        },
        try_latch,
    )?;
    try_gate.await_start();
    let filler = pool.submit(|n: u8| n, 1)?;
    assert_eq!(pool.queued(), 1);
    try_gate.open();
    assert_eq!(trier.wait_timeout(HANG).expect("hang: trier"), Ok(true));
    held_gate.open();
    assert_eq!(held.wait_timeout(HANG).expect("hang: held"), Ok(()));
    assert_eq!(filler.wait_timeout(HANG).expect("hang: filler"), Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the refused callable ran");
    assert_eq!(pool.stats().cancelled, 0);
    Ok(())
}

#[test]
fn submit_with_context_timeout_times_out_then_submits_then_meets_no_worker_and_a_closed_pool(
) -> TestResult {
    let (pool, first_gate, busy, queued) = full_queue();
    let (ran, called) = (counter(), counter());
    let token = Arc::new(());
    let refused = common::within_here("a submit_with_context_timeout on a full queue", || {
        pool.submit_with_context_timeout(
            putting(&ran, &called),
            (2, Arc::clone(&token)),
            std::time::Duration::from_millis(20),
        )
    })
    .expect_err("the queue stayed full");
    assert!(refused.is_timed_out() && !refused.is_full(), "{refused}");
    let (callable, arg) = refused.into_parts();
    assert_eq!(Arc::strong_count(&token), 2);

    first_gate.open();
    assert_eq!(busy.wait_timeout(HANG).expect("hang: busy"), Ok(()));
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.submit_with_context_timeout(callable, arg, HANG)?;
    assert_eq!(again.wait_timeout(HANG).expect("hang: again"), Ok(2));
    assert_eq!(pool.wait()?, 2);
    assert_eq!(
        (ran.load(Ordering::SeqCst), called.load(Ordering::SeqCst)),
        (1, 2)
    );

    // Full, and its only worker dismissed: nothing can make room, and the
    // waiting put is refused at once, not at its timeout.
    let (gate, latch) = gate();
    let busy = pool.submit(Latch::hold, latch)?;
    gate.await_start();
    let stuck = pool
        .try_submit(|n: u64| n, 1)
        .map_err(|_| "the queue had room")?;
    pool.dismiss_workers(1);
    gate.open();
    assert_eq!(busy.wait_timeout(HANG).expect("hang: busy"), Ok(()));
    let refused = common::within_here(
        "a submit_fallible_with_context_timeout with no worker",
        || {
            pool.submit_fallible_with_context_timeout(
                |_: &Context<'_>, s: &'static str| s.parse::<u8>(),
                "8",
                HANG,
            )
        },
    )
    .expect_err("no worker to make room");
    assert!(refused.is_no_workers(), "{refused}");
    assert_eq!(refused.into_parts().1, "8");

    // Closed: refused at once, with the parts, by every form.
    pool.close()?;
    assert_eq!(
        stuck.wait_timeout(HANG).expect("hang: stuck"),
        Err(TaskError::Cancelled)
    );
    let refused = pool
        .submit_with_context_timeout(|_: &Context<'_>, n: u64| n, 9, HANG)
        .expect_err("the pool is closed");
    assert!(refused.is_shut_down());
    assert_eq!(refused.into_parts().1, 9);
    let refused = pool
        .try_submit_with_context(|_: &Context<'_>, n: u64| n, 10)
        .expect_err("the pool is closed");
    assert!(refused.is_shut_down());
    assert_eq!(refused.into_parts().1, 10);
    let refused = pool
        .try_submit_fallible_with_context(|_: &Context<'_>, s: &'static str| s.parse::<u8>(), "11")
        .expect_err("the pool is closed");
    assert!(refused.is_shut_down());
    assert_eq!(refused.into_parts().1, "11");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "a refused callable ran");
    Ok(())
}
