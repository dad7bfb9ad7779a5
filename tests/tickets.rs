//! Tickets (`ThreadPool::submit`, `submit_fallible`, `Ticket` and the free
//! `callpool::as_completed`), cancelling a queued request by id
//! (`ThreadPool::cancel`), and deadlines (`Request::deadline`, `timeout`).
//!
//! As everywhere in these tests, every step that must come before another
//! is forced by a gate or a channel, never by sleeping: a "held" worker is
//! one whose gated request said it started, and on a pool of one worker a
//! request put after another starts only once the first has ended (FIFO).
//! Timeouts only turn a hang into a failure.

mod common;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{PollError, PutError, RequestId, TaskError, ThreadPool, Ticket, WorkRequest};
use common::{counter, gate, hit_counters, within, within_here, Gate, Latch, TestResult, HANG};

const DELIBERATE: &str = "tickets: deliberate panic";
/// The start of the message a ticket polled again after `Ready` panics with.
const TAKEN: &str = "callpool: the ticket's outcome was already taken";

fn quiet_deliberate_panics() {
    common::hide_panics(|message| {
        message.is_some_and(|m| m.starts_with(DELIBERATE) || m.starts_with(TAKEN))
    });
}

/// Holds a worker of `pool`: a gated ticket that has started. Open the gate
/// to let it end (with `Ok(())`).
fn hold_worker(pool: &ThreadPool) -> (Gate, Ticket<()>) {
    let (gate, latch) = gate();
    let ticket = pool.submit(Latch::hold, latch).unwrap();
    gate.await_start();
    (gate, ticket)
}

/// On a pool of one worker: returns once every request put before it has
/// ended (and so every ticket before it is finished). The worker settles a
/// ticket inside the request, before it takes the next one.
fn flush(pool: &ThreadPool) {
    let probe = pool.submit(|_: ()| {}, ()).unwrap();
    assert_eq!(probe.wait_timeout(HANG).expect("hang: flush"), Ok(()));
}

fn took_too_long<T>(_: Ticket<T>) -> Result<T, TaskError> {
    panic!("hang: the ticket did not end within {HANG:?}")
}

/// A callback that records each `(id, outcome)` it hears.
type Heard<T> = Arc<Mutex<Vec<(RequestId, T)>>>;

// ---------------------------------------------------------------------------
// Outcomes.
// ---------------------------------------------------------------------------

#[test]
fn submit_then_wait_returns_the_value_computed_on_a_worker() -> TestResult {
    let pool = ThreadPool::new(2);
    let me = thread::current().id();
    let ticket = pool.submit(|n: u64| (n * n, thread::current().id()), 7)?;
    let (square, ran_on) = ticket.wait()?;
    assert_eq!(square, 49);
    assert_ne!(ran_on, me, "the callable ran on the submitting thread");
    Ok(())
}

#[test]
fn wait_timeout_and_try_result_give_the_ticket_back_until_the_gate_opens() -> TestResult {
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    let ticket = pool.submit(
        move |x: u32| {
            latch.hold();
            x + 1
        },
        41,
    )?;
    gate.await_start();
    // The request is running and held: every way of looking gives it back.
    let ticket = match ticket.wait_timeout(Duration::from_millis(10)) {
        Ok(outcome) => panic!("ended while the gate held it: {outcome:?}"),
        Err(ticket) => ticket,
    };
    let ticket = match ticket.wait_timeout(Duration::ZERO) {
        Ok(outcome) => panic!("ended while the gate held it: {outcome:?}"),
        Err(ticket) => ticket,
    };
    let ticket = match ticket.try_result() {
        Ok(outcome) => panic!("ended while the gate held it: {outcome:?}"),
        Err(ticket) => ticket,
    };
    assert!(!ticket.is_finished());
    gate.open();
    assert_eq!(
        ticket.wait_timeout(HANG).unwrap_or_else(took_too_long),
        Ok(42)
    );

    // try_result once it has ended: the value, at once.
    let (gate, latch) = common::gate();
    let ticket = pool.submit(
        move |x: u32| {
            latch.hold();
            x * 2
        },
        21,
    )?;
    gate.await_start();
    let ticket = ticket.try_result().expect_err("ended while held");
    assert!(!ticket.is_finished());
    gate.open();
    flush(&pool);
    assert!(ticket.is_finished());
    assert_eq!(
        ticket.try_result().expect("finished, so try_result has it"),
        Ok(42)
    );
    Ok(())
}

#[test]
fn a_panic_reaches_the_ticket_with_its_message_and_the_worker_lives_on() -> TestResult {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1);
    let ticket = pool.submit(|n: u32| -> u32 { panic!("{DELIBERATE}: number {n}") }, 3)?;
    assert_eq!(
        ticket.wait(),
        Err(TaskError::Panicked(format!("{DELIBERATE}: number 3")))
    );
    let ticket = pool.submit(|_: ()| -> u32 { panic!("{DELIBERATE}, str") }, ())?;
    assert_eq!(
        ticket.wait(),
        Err(TaskError::Panicked(format!("{DELIBERATE}, str")))
    );
    // The one worker survived both.
    assert_eq!(pool.submit(|n: u32| n + 1, 1)?.wait(), Ok(2));
    assert_eq!(pool.workers(), 1);
    Ok(())
}

#[test]
fn submit_fallible_err_reaches_the_ticket_as_failed() -> TestResult {
    let pool = ThreadPool::new(1);
    let bad = pool.submit_fallible(|s: &'static str| s.parse::<u8>(), "300")?;
    let good = pool.submit_fallible(|s: &'static str| s.parse::<u8>(), "12")?;
    let expected = "300".parse::<u8>().unwrap_err();
    assert_eq!(bad.wait(), Err(TaskError::Failed(expected)));
    assert_eq!(good.wait(), Ok(12));
    Ok(())
}

#[test]
fn tickets_are_not_pending_on_the_handle_and_wait_does_not_wait_for_them() -> TestResult {
    let pool = Arc::new(ThreadPool::new(1));
    let (gate, held) = hold_worker(&pool);
    let queued = pool.submit(|x: u8| x, 5)?;
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.queued(), 1);
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    // With the worker held, a wait that counted the tickets would hang.
    let p = Arc::clone(&pool);
    assert_eq!(
        within("wait with only tickets in flight", move || p.wait()),
        Ok(0)
    );

    // A callback request beside them is counted, alone.
    let results = counter();
    let r = Arc::clone(&results);
    pool.put_request(WorkRequest::new(|x: u8| x, 1).on_result(move |_, x| {
        assert_eq!(x, 1);
        r.fetch_add(1, Ordering::SeqCst);
    }))?;
    assert_eq!(pool.pending(), 1);
    gate.open();
    let p = Arc::clone(&pool);
    assert_eq!(
        within("wait for the callback request", move || p.wait()),
        Ok(1)
    );
    assert_eq!(results.load(Ordering::SeqCst), 1);
    assert_eq!(held.wait(), Ok(()));
    assert_eq!(queued.wait(), Ok(5));
    assert_eq!(pool.pending(), 0);
    Ok(())
}

#[test]
fn submit_on_a_shut_down_pool_is_refused_at_once() {
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    assert!(pool.shutdown_now().is_empty());
    let ran = counter();
    let r = Arc::clone(&ran);
    let refused = within("submit on a shut-down pool", move || {
        let plain = other.submit(
            move |_: ()| {
                r.fetch_add(1, Ordering::SeqCst);
            },
            (),
        );
        let fallible = other.submit_fallible(|s: &'static str| s.parse::<u8>(), "1");
        (
            matches!(plain, Err(PutError::ShutDown(_))),
            matches!(fallible, Err(PutError::ShutDown(_))),
        )
    });
    assert_eq!(refused, (true, true));
    // The refused request was dropped with the error, unrun.
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// try_submit: never blocks, and hands refused work back.
// ---------------------------------------------------------------------------

/// A pool of one worker, held on a gate, whose bounded queue (one place)
/// holds one more ticket: the next put finds it full.
fn full_queue() -> (ThreadPool, Gate, Ticket<()>, Ticket<u64>) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (gate, busy) = hold_worker(&pool);
    let queued = pool.try_submit(|n: u64| n + 1, 1).unwrap();
    assert_eq!(pool.queued(), 1);
    (pool, gate, busy, queued)
}

#[test]
fn try_submit_on_a_full_queue_hands_back_the_callable_and_argument_uncalled() -> TestResult {
    let (pool, gate, busy, queued) = full_queue();
    let calls = counter();
    let c = Arc::clone(&calls);
    // The argument's `Arc` counts who holds it: the test and the argument.
    let token = Arc::new(());
    let refused = within_here("a try_submit on a full queue", || {
        pool.try_submit(
            move |(n, _token): (u64, Arc<()>)| {
                c.fetch_add(1, Ordering::SeqCst);
                n * n
            },
            (7, Arc::clone(&token)),
        )
    });
    let refused = refused.expect_err("the queue was full");
    assert!(refused.is_full() && !refused.is_shut_down());
    assert_eq!(
        refused.to_string(),
        "request queue is full (nothing submitted)"
    );
    assert_eq!(format!("{refused:?}"), "TrySubmitError { kind: Full, .. }");
    assert_eq!(pool.queued(), 1, "the refused ticket took a place");
    let (callable, (n, arg_token)) = refused.into_parts();
    assert_eq!(n, 7);
    assert!(Arc::ptr_eq(&arg_token, &token));
    assert_eq!(
        Arc::strong_count(&token),
        2,
        "a copy of the argument stayed behind"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    gate.open();
    assert_eq!(
        busy.wait_timeout(HANG).unwrap_or_else(took_too_long),
        Ok(())
    );
    // Once the worker has run `queued`, its place is free again.
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.try_submit(callable, (n, arg_token))?;
    assert_eq!(again.wait_timeout(HANG).expect("hang: again"), Ok(49));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the call dropped its argument"
    );
    Ok(())
}

/// `submit_timeout` on a queue that stays full: after the timeout it
/// hands both parts back uncalled; once there is room, it submits. On a
/// full queue with no worker left, it says so at once; on a shut-down
/// pool likewise. The fallible form hands back the same way.
#[test]
fn submit_timeout_hands_the_parts_back_when_the_queue_stays_full() -> TestResult {
    let (pool, gate, busy, queued) = full_queue();
    let calls = counter();
    let c = Arc::clone(&calls);
    let refused = within_here("a submit_timeout on a full queue", || {
        pool.submit_timeout(
            move |n: u64| {
                c.fetch_add(1, Ordering::SeqCst);
                n * n
            },
            7,
            Duration::from_millis(20),
        )
    })
    .expect_err("the queue stayed full");
    assert!(refused.is_timed_out() && !refused.is_full() && !refused.is_shut_down());
    assert_eq!(
        refused.to_string(),
        "request queue stayed full until the timeout (nothing submitted)"
    );
    assert_eq!(pool.queued(), 1, "the refused ticket took a place");
    let (callable, n) = refused.into_parts();
    assert_eq!((n, calls.load(Ordering::SeqCst)), (7, 0));

    gate.open();
    assert_eq!(
        busy.wait_timeout(HANG).unwrap_or_else(took_too_long),
        Ok(())
    );
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.submit_timeout(callable, n, HANG)?;
    assert_eq!(again.wait_timeout(HANG).expect("hang: again"), Ok(49));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Full, and its only worker dismissed: once that worker has left,
    // nothing can make room, and the waiting put is refused.
    let (gate, busy) = hold_worker(&pool);
    let stuck = pool
        .try_submit(|n: u64| n, 1)
        .map_err(|_| "the queue had room")?;
    pool.dismiss_workers(1);
    gate.open();
    assert_eq!(
        busy.wait_timeout(HANG).unwrap_or_else(took_too_long),
        Ok(())
    );
    let refused = within_here("a submit_timeout with no worker", || {
        pool.submit_fallible_timeout(|s: &str| s.parse::<u8>(), "8", HANG)
    })
    .expect_err("no worker to make room");
    assert!(refused.is_no_workers(), "{refused}");
    assert_eq!(refused.into_parts().1, "8");

    // Closing with no worker left cancels what was queued.
    pool.close()?;
    assert_eq!(
        stuck.wait_timeout(HANG).expect("hang: stuck"),
        Err(TaskError::Cancelled)
    );
    let refused = pool
        .submit_timeout(|n: u64| n, 9, HANG)
        .expect_err("the pool is closed");
    assert!(refused.is_shut_down());
    assert_eq!(refused.into_parts().1, 9);
    Ok(())
}

#[test]
fn try_submit_fallible_on_a_full_queue_hands_back_both_and_the_retry_fails_typed() -> TestResult {
    let (pool, gate, busy, queued) = full_queue();
    let refused = within_here("a try_submit_fallible on a full queue", || {
        pool.try_submit_fallible(|s: String| s.parse::<u8>(), "300".to_string())
    })
    .expect_err("the queue was full");
    assert!(refused.is_full());
    let (parse, text) = refused.into_parts();
    assert_eq!(text, "300");

    gate.open();
    assert_eq!(
        busy.wait_timeout(HANG).unwrap_or_else(took_too_long),
        Ok(())
    );
    assert_eq!(queued.wait_timeout(HANG).expect("hang: queued"), Ok(2));
    let again = pool.try_submit_fallible(parse, text)?;
    match again.wait_timeout(HANG).expect("hang: again") {
        Err(TaskError::Failed(e)) => assert_eq!(e, "300".parse::<u8>().unwrap_err()),
        other => panic!("expected the parse error, got {other:?}"),
    }
    Ok(())
}

#[test]
fn try_submit_on_a_shut_down_pool_is_refused_at_once_with_its_parts() {
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let last = pool.new_handle();
    assert!(pool.shutdown_now().is_empty());
    let ran = counter();
    let r = Arc::clone(&ran);
    // A `Cell` is `Send` but not `Sync`: the error is `Sync` all the same.
    let (plain, fallible) = within("try_submit on a shut-down pool", move || {
        let plain = other
            .try_submit(
                move |cell: std::cell::Cell<u32>| {
                    r.fetch_add(1, Ordering::SeqCst);
                    cell.get()
                },
                std::cell::Cell::new(5),
            )
            .expect_err("the pool is shut down");
        let fallible = other
            .try_submit_fallible(|s: &'static str| s.parse::<u8>(), "1")
            .expect_err("the pool is shut down");
        assert!(plain.is_shut_down() && !plain.is_full());
        assert!(fallible.is_shut_down() && !fallible.is_full());
        assert_eq!(plain.to_string(), "pool is shut down (nothing submitted)");
        (plain.into_parts().1.get(), fallible.into_parts().1)
    });
    assert_eq!((plain, fallible), (5, "1"));
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    // `?` takes it into a `Box<dyn Error + Send + Sync>` (or `anyhow`).
    let refused = last
        .try_submit(
            |cell: std::cell::Cell<u8>| cell.get(),
            std::cell::Cell::new(1),
        )
        .expect_err("the pool is shut down");
    let boxed: Box<dyn std::error::Error + Send + Sync> = refused.into();
    assert_eq!(boxed.to_string(), "pool is shut down (nothing submitted)");
}

/// Ten tries on a queue of three with no worker: three go in, seven come
/// back; once workers come, each refused one goes in again as soon as a
/// ticket ahead of it ends. Every callable runs exactly once.
#[test]
fn refused_work_tried_again_runs_each_callable_exactly_once() -> TestResult {
    let pool = ThreadPool::builder().workers(0).queue_capacity(3).build()?;
    let hits = hit_counters(10);
    let hit = || {
        let hits = Arc::clone(&hits);
        move |i: usize| {
            hits[i].fetch_add(1, Ordering::SeqCst);
            i
        }
    };
    let mut tickets = std::collections::VecDeque::new();
    let mut refused = Vec::new();
    within_here("tries on a queue with no worker", || {
        for i in 0..10 {
            match pool.try_submit(hit(), i) {
                Ok(ticket) => tickets.push_back((i, ticket)),
                Err(e) => {
                    assert!(e.is_full());
                    refused.push(e.into_parts());
                }
            }
        }
    });
    assert_eq!(
        tickets.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(
        refused.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 8, 9]
    );

    pool.create_workers(2)?;
    let mut outcomes = Vec::new();
    for (callable, i) in refused {
        let mut parts = (callable, i);
        let ticket = loop {
            match pool.try_submit(parts.0, parts.1) {
                Ok(ticket) => break ticket,
                Err(e) => {
                    assert!(e.is_full());
                    parts = e.into_parts();
                    // The oldest ticket's end frees its place: only this
                    // thread puts, so the next try finds room.
                    let (j, oldest) = tickets.pop_front().expect("a full queue holds tickets");
                    outcomes.push((j, oldest.wait_timeout(HANG).expect("hang: oldest")));
                }
            }
        };
        tickets.push_back((i, ticket));
    }
    for (j, ticket) in tickets {
        outcomes.push((j, ticket.wait_timeout(HANG).expect("hang: the rest")));
    }
    outcomes.sort_by_key(|(j, _)| *j);
    assert_eq!(outcomes, (0..10).map(|j| (j, Ok(j))).collect::<Vec<_>>());
    common::assert_each_once("callables", &hits);
    Ok(())
}

/// On one of the pool's own workers a full queue refuses the try too
/// (`submit` there would go past the capacity).
#[test]
fn try_submit_on_a_worker_is_refused_by_a_full_queue() -> TestResult {
    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let inner = pool.clone();
    // The one worker runs this, so nothing takes from the queue meanwhile.
    let (first, second) = pool
        .submit(
            move |_: ()| {
                let first = inner.try_submit(|n: u32| n + 1, 1);
                let second = inner.try_submit(|n: u32| n + 2, 2);
                (first, second.map_err(|e| (e.is_full(), e.into_parts().1)))
            },
            (),
        )?
        .wait_timeout(HANG)
        .expect("hang: the outer ticket")?;
    assert_eq!(second.err(), Some((true, 2)));
    assert_eq!(first?.wait_timeout(HANG).expect("hang: first"), Ok(2));
    Ok(())
}

// ---------------------------------------------------------------------------
// Ticket::cancel.
// ---------------------------------------------------------------------------

/// The identity on a `u8` that counts its calls on `ran`: a request
/// whose running shows.
fn counting(ran: &Arc<AtomicUsize>) -> impl FnOnce(u8) -> u8 + Send + 'static {
    let ran = Arc::clone(ran);
    move |x| {
        ran.fetch_add(1, Ordering::SeqCst);
        x
    }
}

#[test]
fn ticket_cancel_wins_only_on_a_queued_request() -> TestResult {
    let pool = ThreadPool::new(1);
    let ran = counter();
    let (gate, busy) = hold_worker(&pool);
    // Running: too late.
    assert!(!busy.cancel());
    let queued = pool.submit(counting(&ran), 1)?;
    assert!(queued.cancel());
    // Once only; the ticket has its outcome at once.
    assert!(!queued.cancel());
    assert!(queued.is_finished());
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    // Until a worker reaches it, the cancelled request stays queued.
    assert_eq!(pool.queued(), 1);
    gate.open();
    assert_eq!(busy.wait(), Ok(()));

    // Finished: too late.
    let done = pool.submit(counting(&ran), 2)?;
    flush(&pool);
    assert!(done.is_finished());
    assert!(!done.cancel());
    assert_eq!(done.wait(), Ok(2));

    pool.shutdown()?;
    // Only `done` ran; the cancelled one was dropped by the worker, unrun.
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    Ok(())
}

/// A ticket's `CancelHandle` cancels from another thread while the
/// ticket's holder is blocked in `wait`: the holder wakes with
/// `Cancelled`, the callable never runs, and only the first cancel (by
/// any handle or by the ticket) wins.
#[test]
fn a_cancel_handle_cancels_a_queued_request_while_another_thread_waits() -> TestResult {
    let pool = ThreadPool::new(1);
    let ran = counter();
    let (gate, busy) = hold_worker(&pool);
    let queued = pool.submit(counting(&ran), 1)?;
    let (handle, again) = (queued.cancel_handle(), queued.cancel_handle());
    assert_eq!(handle.id(), queued.id());
    let (blocked_tx, blocked) = mpsc::channel();
    let waiter = thread::spawn(move || {
        blocked_tx.send(()).unwrap();
        queued.wait()
    });
    blocked.recv_timeout(HANG)?;
    // From a third thread, as a UI thread would.
    let canceller = thread::spawn(move || handle.cancel());
    assert!(canceller.join().unwrap());
    assert_eq!(
        within_here("the waiter woken by the cancel", || waiter.join().unwrap()),
        Err(TaskError::Cancelled)
    );
    assert!(!again.cancel(), "a second cancel finds it ended");
    gate.open();
    assert_eq!(busy.wait(), Ok(()));
    // Running or ended: too late, as for the ticket's own cancel.
    let (gate, busy) = hold_worker(&pool);
    assert!(!busy.cancel_handle().cancel());
    gate.open();
    assert_eq!(busy.wait(), Ok(()));
    pool.shutdown()?;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    Ok(())
}

/// A `CancelHandle` keeps nothing alive: once the request has ended and
/// its ticket is gone (or the pool that discarded it), `cancel` is
/// `false`, and the outcome and callable were dropped on time.
#[test]
fn a_cancel_handle_outliving_its_ticket_and_pool_cancels_nothing() -> TestResult {
    let pool = ThreadPool::new(1);
    let ended = pool.submit(|x: u8| x, 1)?;
    let late = ended.cancel_handle();
    assert_eq!(ended.wait(), Ok(1));
    assert!(!late.cancel());
    // Queued when its last handle went: discarded as cancelled.
    let (gate, busy) = hold_worker(&pool);
    let dropped = counter();
    let marker = common::Dropped(Arc::clone(&dropped));
    let queued = pool.submit(move |_: ()| drop(marker), ())?;
    let handle = queued.cancel_handle();
    drop(queued);
    drop(pool);
    gate.open();
    assert_eq!(busy.wait(), Ok(()));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the discarded callable was dropped"
    );
    assert!(!handle.cancel());
    Ok(())
}

/// A task awaiting a ticket is woken by a cancel through its handle.
#[test]
fn a_cancel_handle_wakes_a_task_awaiting_the_ticket() -> TestResult {
    let pool = ThreadPool::new(1);
    let (gate, busy) = hold_worker(&pool);
    let queued = pool.submit(|x: u8| x, 1)?;
    let handle = queued.cancel_handle();
    let (polled_tx, polled) = mpsc::channel();
    let task = thread::spawn(move || {
        let mut queued = queued;
        let mut first = true;
        futures::executor::block_on(futures::future::poll_fn(move |cx| {
            let poll = Pin::new(&mut queued).poll(cx);
            if std::mem::take(&mut first) {
                // Pending, its waker stored: now the cancel may come.
                assert!(poll.is_pending());
                polled_tx.send(()).unwrap();
            }
            poll
        }))
    });
    polled.recv_timeout(HANG)?;
    assert!(handle.cancel());
    assert_eq!(
        within_here("the task woken by the cancel", || task.join().unwrap()),
        Err(TaskError::Cancelled)
    );
    gate.open();
    assert_eq!(busy.wait(), Ok(()));
    Ok(())
}

/// Ticket::cancel against a worker taking the request, round after round:
/// each round exactly one of "the callable ran" and "cancel returned true",
/// and `wait` agrees. Half the rounds are a free race (either may win);
/// a quarter put the request behind a held worker (cancel must win), a
/// quarter cancel once it has ended (cancel must lose).
#[test]
fn ticket_cancel_racing_a_worker_exactly_one_wins_each_round() {
    const ROUNDS: usize = 4_000;
    within("ticket cancel rounds", || {
        let pool = ThreadPool::new(1);
        let ran = hit_counters(ROUNDS);
        let mut won = vec![false; ROUNDS];
        let (mut forced_wins, mut forced_losses) = (0, 0);
        for (i, won) in won.iter_mut().enumerate() {
            let r = Arc::clone(&ran);
            let work = move |i: usize| {
                r[i].fetch_add(1, Ordering::SeqCst);
                i
            };
            match i % 4 {
                0 | 1 => {
                    let release = spinning_worker(&pool);
                    let ticket = pool.submit(work, i).unwrap();
                    release.store(true, Ordering::SeqCst);
                    jitter(i);
                    *won = ticket.cancel();
                    check_round(i, *won, ticket);
                }
                2 => {
                    let (gate, busy) = hold_worker(&pool);
                    let ticket = pool.submit(work, i).unwrap();
                    *won = ticket.cancel();
                    assert!(*won, "round {i}: cancel lost to a held worker");
                    forced_wins += 1;
                    check_round(i, *won, ticket);
                    gate.open();
                    assert_eq!(busy.wait(), Ok(()));
                }
                _ => {
                    let ticket = pool.submit(work, i).unwrap();
                    flush(&pool);
                    *won = ticket.cancel();
                    assert!(!*won, "round {i}: cancel won on a finished request");
                    forced_losses += 1;
                    check_round(i, *won, ticket);
                }
            }
        }
        // Graceful: the worker reaches every cancelled request (and drops it).
        pool.shutdown().unwrap();
        let wrong: Vec<(usize, bool, usize)> = won
            .iter()
            .enumerate()
            .map(|(i, &won)| (i, won, ran[i].load(Ordering::SeqCst)))
            .filter(|&(_, won, ran)| ran != usize::from(!won))
            .collect();
        assert!(wrong.is_empty(), "(round, cancel won, runs): {wrong:?}");
        assert_eq!((forced_wins, forced_losses), (ROUNDS / 4, ROUNDS / 4));
    });
}

/// For a free race on a pool of one worker: keeps the worker awake and
/// busy (spinning) until the returned flag is set, so that it then takes
/// the next request at once, without having to be woken, and the test's
/// cancel meets it head-on.
fn spinning_worker(pool: &ThreadPool) -> Arc<AtomicBool> {
    let release = Arc::new(AtomicBool::new(false));
    let (started_tx, started) = mpsc::channel();
    let r = Arc::clone(&release);
    let _spinner = pool
        .submit(
            move |_: ()| {
                started_tx.send(()).unwrap();
                while !r.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            },
            (),
        )
        .unwrap();
    started
        .recv_timeout(HANG)
        .expect("the spinning request never started");
    release
}

/// A short pause that varies with the round: moves the cancel across the
/// moment the worker takes the request, so that free rounds race both
/// ways (yielding lets a worker that shares this core run). It decides
/// nothing the test asserts.
fn jitter(round: usize) {
    let step = (round as u64 * 37) % 64;
    if step % 2 == 0 {
        for _ in 0..step % 3 {
            thread::yield_now();
        }
    } else {
        let until = Instant::now() + Duration::from_nanos(step * 250);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

fn check_round(i: usize, won: bool, ticket: Ticket<usize>) {
    let outcome = ticket.wait_timeout(HANG).unwrap_or_else(took_too_long);
    let expected = if won {
        Err(TaskError::Cancelled)
    } else {
        Ok(i)
    };
    assert_eq!(outcome, expected, "round {i}: cancel returned {won}");
}

// ---------------------------------------------------------------------------
// ThreadPool::cancel(id).
// ---------------------------------------------------------------------------

/// A callback request that counts its runs in `ran` and records its
/// outcome in `heard`: `Ok(value)` or the error.
// The typed builder, so that callers can still add an id or a deadline.
#[allow(clippy::type_complexity)]
fn recorded(
    x: u32,
    ran: &Arc<AtomicUsize>,
    heard: &Heard<Result<u32, TaskError>>,
) -> callpool::Request<
    impl FnOnce(&callpool::Context<'_>) -> Result<u32, std::convert::Infallible> + Send + 'static,
    u32,
    std::convert::Infallible,
    impl FnOnce(RequestId, u32) + Send + 'static,
    impl FnOnce(RequestId, TaskError) + Send + 'static,
> {
    let ran = Arc::clone(ran);
    let (ok, err) = (Arc::clone(heard), Arc::clone(heard));
    WorkRequest::new(
        move |x: u32| {
            ran.fetch_add(1, Ordering::SeqCst);
            x
        },
        x,
    )
    .on_result(move |id, x| ok.lock().unwrap().push((id, Ok(x))))
    .on_error(move |id, e| err.lock().unwrap().push((id, Err(e))))
}

fn taken<T>(heard: &Heard<T>) -> Vec<(RequestId, T)> {
    std::mem::take(&mut *heard.lock().unwrap())
}

#[test]
fn cancel_by_id_cancels_a_queued_request_once_and_nothing_else() -> TestResult {
    let pool = ThreadPool::new(1);
    let ran = counter();
    let heard: Heard<Result<u32, TaskError>> = Heard::default();
    let (gate, held) = hold_worker(&pool);

    // Queued behind the held worker.
    let queued = pool.put_request(recorded(1, &ran, &heard))?;
    let ticket = pool.submit(|x: u32| x, 7)?;
    assert_eq!(pool.queued(), 2);
    assert!(pool.cancel(queued));
    assert!(!pool.cancel(queued), "cancelled twice");
    // Taken out of the queue at once (unlike a ticket's cancel).
    assert_eq!(pool.queued(), 1);
    // Still pending until its callback has run, on the polling thread.
    assert_eq!(pool.pending(), 1);
    assert!(taken(&heard).is_empty());
    assert_eq!(pool.poll(), Ok(1));
    assert_eq!(taken(&heard), [(queued, Err(TaskError::Cancelled))]);
    assert_eq!(pool.pending(), 0);

    // A ticket's request is not cancelled by id.
    assert!(!pool.cancel(ticket.id()));
    // Nor by an id this handle never put.
    assert!(!pool.cancel(held.id()));

    gate.open();
    assert_eq!(held.wait(), Ok(()));
    assert_eq!(ticket.wait(), Ok(7));
    pool.shutdown()?;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(taken(&heard).is_empty(), "a second callback");
    Ok(())
}

#[test]
fn cancel_by_id_is_false_for_a_running_or_finished_request_which_reports_once() -> TestResult {
    let pool = ThreadPool::new(1);
    let heard: Heard<Result<u32, TaskError>> = Heard::default();

    // Running, held by its gate.
    let (gate, latch) = gate();
    let running_ran = counter();
    let running = {
        let r = Arc::clone(&running_ran);
        let (ok, err) = (Arc::clone(&heard), Arc::clone(&heard));
        pool.put_request(
            WorkRequest::new(
                move |latch: Latch| {
                    r.fetch_add(1, Ordering::SeqCst);
                    latch.hold();
                    3
                },
                latch,
            )
            .on_result(move |id, x| ok.lock().unwrap().push((id, Ok(x))))
            .on_error(move |id, e| err.lock().unwrap().push((id, Err(e)))),
        )?
    };
    gate.await_start();
    assert!(!pool.cancel(running));
    gate.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(taken(&heard), [(running, Ok(3))]);
    assert_eq!(running_ran.load(Ordering::SeqCst), 1);
    // Finished and handled.
    assert!(!pool.cancel(running));

    // Finished, its result waiting in the handle's queue, not yet handled.
    let done_ran = counter();
    let done = pool.put_request(recorded(4, &done_ran, &heard))?;
    flush(&pool);
    assert_eq!(done_ran.load(Ordering::SeqCst), 1);
    assert!(!pool.cancel(done));
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(taken(&heard), [(done, Ok(4))]);
    assert_eq!(done_ran.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn cancel_by_id_never_touches_another_handles_request_even_with_the_same_id() -> TestResult {
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (mine_ran, theirs_ran, auto_ran) = (counter(), counter(), counter());
    let (mine_heard, theirs_heard): (Heard<_>, Heard<_>) = Default::default();
    let (gate, held) = hold_worker(&pool);
    // The same user-chosen id on both handles, and one automatic id.
    let mine = pool.put_request(recorded(1, &mine_ran, &mine_heard).with_id(7))?;
    let theirs = other.put_request(recorded(2, &theirs_ran, &theirs_heard).with_id(7))?;
    let auto = other.put_request(recorded(3, &auto_ran, &theirs_heard))?;
    assert_eq!(mine, theirs, "the two requests share one id");
    assert!(!pool.cancel(auto), "cancelled another handle's request");
    assert!(pool.cancel(mine));
    assert!(!pool.cancel(theirs), "cancelled twice, or another handle's");
    assert_eq!(pool.queued(), 2);

    gate.open();
    assert_eq!(held.wait(), Ok(()));
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(other.wait_timeout(HANG), Ok(2));
    assert_eq!(taken(&mine_heard), [(mine, Err(TaskError::Cancelled))]);
    let mut theirs_outcomes = taken(&theirs_heard);
    theirs_outcomes.sort_by_key(|&(id, _)| id);
    let mut expected = vec![(theirs, Ok(2)), (auto, Ok(3))];
    expected.sort_by_key(|&(id, _)| id);
    assert_eq!(theirs_outcomes, expected);
    assert_eq!(
        [&mine_ran, &theirs_ran, &auto_ran].map(|c| c.load(Ordering::SeqCst)),
        [0, 1, 1]
    );
    Ok(())
}

/// `cancel(id)` against a free worker taking the request, round after
/// round: each round exactly one of "it ran (result callback)" and
/// "cancel returned true (Cancelled callback)", each callback once. Most
/// rounds are a free race; one in eight puts the request behind a held
/// worker (cancel must win), one in eight cancels once it ran (must lose).
#[test]
fn cancel_by_id_racing_a_free_worker_exactly_one_wins_each_round() {
    const ROUNDS: usize = 1_600;
    within("cancel-by-id rounds", || {
        let pool = ThreadPool::new(1);
        let ran = hit_counters(ROUNDS);
        let results = hit_counters(ROUNDS);
        let cancelled = hit_counters(ROUNDS);
        let mut won = vec![false; ROUNDS];
        let (mut forced_wins, mut forced_losses) = (0, 0);
        for (i, won) in won.iter_mut().enumerate() {
            let (r, ok, err) = (
                Arc::clone(&ran),
                Arc::clone(&results),
                Arc::clone(&cancelled),
            );
            let request = WorkRequest::new(
                move |i: usize| {
                    r[i].fetch_add(1, Ordering::SeqCst);
                    i
                },
                i,
            )
            .on_result(move |_, i| {
                ok[i].fetch_add(1, Ordering::SeqCst);
            })
            .on_error(move |_, e| {
                assert_eq!(e, TaskError::Cancelled, "round {i}");
                err[i].fetch_add(1, Ordering::SeqCst);
            });
            match i % 8 {
                0 => {
                    let (gate, busy) = hold_worker(&pool);
                    let id = pool.put_request(request).unwrap();
                    *won = pool.cancel(id);
                    assert!(*won, "round {i}: cancel lost to a held worker");
                    forced_wins += 1;
                    gate.open();
                    assert_eq!(busy.wait(), Ok(()));
                }
                1 => {
                    let id = pool.put_request(request).unwrap();
                    flush(&pool);
                    *won = pool.cancel(id);
                    assert!(!*won, "round {i}: cancel won on a request that ran");
                    forced_losses += 1;
                }
                _ => {
                    let release = spinning_worker(&pool);
                    let id = pool.put_request(request).unwrap();
                    release.store(true, Ordering::SeqCst);
                    jitter(i);
                    *won = pool.cancel(id);
                }
            }
            // Exactly one outcome per round.
            assert_eq!(pool.wait_timeout(HANG), Ok(1), "round {i}");
        }
        pool.shutdown().unwrap();
        let wrong: Vec<_> = won
            .iter()
            .enumerate()
            .map(|(i, &won)| {
                let counts = [&ran, &results, &cancelled].map(|c| c[i].load(Ordering::SeqCst));
                (i, won, counts)
            })
            .filter(|&(_, won, counts)| counts != if won { [0, 0, 1] } else { [1, 1, 0] })
            .collect();
        assert!(
            wrong.is_empty(),
            "(round, cancel won, [ran, result callbacks, Cancelled callbacks]): {wrong:?}"
        );
        assert_eq!((forced_wins, forced_losses), (ROUNDS / 8, ROUNDS / 8));
    });
}

// ---------------------------------------------------------------------------
// Deadlines.
// ---------------------------------------------------------------------------

#[test]
fn a_request_whose_deadline_passed_in_the_queue_expires_unrun() -> TestResult {
    let pool = ThreadPool::new(1);
    let heard: Heard<Result<u32, TaskError>> = Heard::default();
    let (expired_ran, user_expired_ran, timely_ran, user_timely_ran, unbounded_ran) =
        (counter(), counter(), counter(), counter(), counter());
    let (gate, held) = hold_worker(&pool);
    // Behind the held worker, so no worker can take them before their
    // deadlines: `Instant::now()` has passed by the time one does.
    let expired = pool.put_request(recorded(1, &expired_ran, &heard).deadline(Instant::now()))?;
    let user_expired = pool.put_request(
        recorded(2, &user_expired_ran, &heard)
            .with_id(42)
            .deadline(Instant::now()),
    )?;
    let timely =
        pool.put_request(recorded(3, &timely_ran, &heard).timeout(Duration::from_secs(60)))?;
    let user_timely = pool.put_request(
        recorded(4, &user_timely_ran, &heard)
            .with_id(43)
            .deadline(Instant::now() + Duration::from_secs(60)),
    )?;
    // Too far for the clock: no deadline.
    let unbounded = pool.put_request(recorded(5, &unbounded_ran, &heard).timeout(Duration::MAX))?;
    assert_eq!(user_expired.value(), 42);
    assert!(user_expired.is_user_chosen());
    assert_eq!(user_timely.value(), 43);
    assert_eq!(pool.pending(), 5);

    gate.open();
    assert_eq!(held.wait(), Ok(()));
    assert_eq!(pool.wait_timeout(HANG), Ok(5));
    let mut outcomes = taken(&heard);
    outcomes.sort_by_key(|&(id, _)| id);
    let mut expected = vec![
        (expired, Err(TaskError::Expired)),
        (user_expired, Err(TaskError::Expired)),
        (timely, Ok(3)),
        (user_timely, Ok(4)),
        (unbounded, Ok(5)),
    ];
    expected.sort_by_key(|&(id, _)| id);
    assert_eq!(outcomes, expected);
    assert_eq!(
        [
            &expired_ran,
            &user_expired_ran,
            &timely_ran,
            &user_timely_ran,
            &unbounded_ran
        ]
        .map(|c| c.load(Ordering::SeqCst)),
        [0, 0, 1, 1, 1]
    );
    // The expired user id is free again.
    let again = pool.put_request(recorded(6, &counter(), &heard).with_id(42))?;
    assert_eq!(again, user_expired);
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(taken(&heard), [(again, Ok(6))]);
    Ok(())
}

// ---------------------------------------------------------------------------
// Dropping tickets and pools.
// ---------------------------------------------------------------------------

#[test]
fn dropping_a_ticket_does_not_cancel_its_request() -> TestResult {
    let pool = ThreadPool::new(1);
    let ran = counter();
    let (tx, rx) = mpsc::channel();
    let (gate, held) = hold_worker(&pool);
    let r = Arc::clone(&ran);
    let ticket = pool.submit(
        move |x: u32| {
            r.fetch_add(1, Ordering::SeqCst);
            tx.send(x).unwrap();
            x
        },
        9,
    )?;
    // Dropped while queued.
    drop(ticket);
    gate.open();
    assert_eq!(rx.recv_timeout(HANG), Ok(9));
    assert_eq!(held.wait(), Ok(()));
    pool.shutdown()?;
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    Ok(())
}

#[test]
fn dropping_the_last_handle_cancels_the_queued_tickets() {
    within("tickets of a dropped pool", || {
        let pool = ThreadPool::new(1);
        let ran = counter();
        let (gate, held) = hold_worker(&pool);
        let queued: Vec<Ticket<usize>> = (0..5)
            .map(|i| {
                let r = Arc::clone(&ran);
                pool.submit(
                    move |i: usize| {
                        r.fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                )
                .unwrap()
            })
            .collect();
        drop(pool);
        // Cancelled by the drop itself, before it returned.
        for (i, ticket) in queued.into_iter().enumerate() {
            assert!(ticket.is_finished(), "ticket {i}");
            assert_eq!(ticket.wait(), Err(TaskError::Cancelled), "ticket {i}");
        }
        // The running one ends normally on its thread.
        gate.open();
        assert_eq!(held.wait(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn shutdown_now_cancels_another_handles_queued_tickets() {
    within("tickets of another handle at shutdown_now", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let ran = counter();
        let (gate, held) = hold_worker(&pool);
        let queued: Vec<Ticket<usize>> = (0..5)
            .map(|i| {
                let r = Arc::clone(&ran);
                other
                    .submit(
                        move |i: usize| {
                            r.fetch_add(1, Ordering::SeqCst);
                            i
                        },
                        i,
                    )
                    .unwrap()
            })
            .collect();
        assert!(pool.shutdown_now().is_empty());
        for (i, ticket) in queued.into_iter().enumerate() {
            assert!(ticket.is_finished(), "ticket {i}");
            assert_eq!(ticket.wait(), Err(TaskError::Cancelled), "ticket {i}");
        }
        gate.open();
        assert_eq!(held.wait(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert!(matches!(
            other.submit(|x: u8| x, 1),
            Err(PutError::ShutDown(_))
        ));
    });
}

/// `shutdown_now` on the handle that submitted the tickets. Their requests
/// never ran and the pool is closed, so by the `Ticket` docs ("`Cancelled`
/// ... because the pool closed or discarded the request before a worker
/// took it") they are `Cancelled` once `shutdown_now` returns, whatever the
/// caller does with the `Vec` it returns.
#[test]
fn shutdown_now_cancels_its_own_handles_queued_tickets() {
    within("tickets of the handle that shuts down now", || {
        let pool = ThreadPool::new(1);
        let (gate, held) = hold_worker(&pool);
        let queued: Vec<Ticket<usize>> = (0..3)
            .map(|i| pool.submit(|i: usize| i, i).unwrap())
            .collect();
        let callback = pool.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
        let unstarted = pool.shutdown_now();
        let states: Vec<bool> = queued.iter().map(Ticket::is_finished).collect();
        // What comes back is what the handle can put again: its callback
        // request. (Whether a fix hands the tickets' requests back too is
        // its choice; what a ticket holder sees is not.)
        let handed_back: Vec<RequestId> = unstarted.iter().map(WorkRequest::id).collect();
        gate.open();
        assert_eq!(held.wait(), Ok(()));
        assert!(handed_back.contains(&callback), "{handed_back:?}");
        assert_eq!(
            states, [true; 3],
            "tickets finished once shutdown_now returned (its Vec still held)"
        );
        for ticket in queued {
            assert_eq!(
                ticket
                    .wait_timeout(Duration::ZERO)
                    .unwrap_or_else(|_| panic!("not finished")),
                Err(TaskError::Cancelled)
            );
        }
        drop(unstarted);
    });
}

/// The same through a graceful shutdown of a pool with no worker left: the
/// pool closes with the tickets' requests unrun, so by the `Ticket::wait`
/// docs ("until a worker is added or the pool closes (then `Cancelled`)")
/// they are `Cancelled` once `shutdown` returns.
#[test]
fn shutdown_with_no_worker_cancels_its_own_queued_tickets() {
    within("tickets of a pool shut down with no worker", || {
        let pool = ThreadPool::new(0);
        let queued: Vec<Ticket<usize>> = (0..3)
            .map(|i| pool.submit(|i: usize| i, i).unwrap())
            .collect();
        let shut = pool.shutdown();
        let states: Vec<bool> = queued.iter().map(Ticket::is_finished).collect();
        assert_eq!(
            states, [true; 3],
            "tickets finished once shutdown returned ({shut:?} still held)"
        );
        for ticket in queued {
            assert_eq!(
                ticket
                    .wait_timeout(Duration::ZERO)
                    .unwrap_or_else(|_| panic!("not finished")),
                Err(TaskError::Cancelled)
            );
        }
        drop(shut);
    });
}

// ---------------------------------------------------------------------------
// Tickets as futures.
// ---------------------------------------------------------------------------

/// Polls a ticket and says on `pending` each time the ticket is pending, so
/// that another thread opens a gate only once the waker is registered.
struct Announced<T> {
    ticket: Ticket<T>,
    pending: mpsc::Sender<()>,
}

impl<T> Future for Announced<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.ticket).poll(cx);
        if poll.is_pending() {
            let _ = this.pending.send(());
        }
        poll
    }
}

/// A gated ticket that has started, wrapped to announce it is pending, and
/// a thread that opens its gate once it is (the waker path: the worker
/// wakes a task that is parked).
fn pending_then_opened(pool: &ThreadPool, x: u32) -> (Announced<u32>, thread::JoinHandle<()>) {
    let (gate, latch) = gate();
    let ticket = pool
        .submit(
            move |x: u32| {
                latch.hold();
                x
            },
            x,
        )
        .unwrap();
    gate.await_start();
    let (pending, announced) = mpsc::channel();
    let opener = thread::spawn(move || {
        announced
            .recv_timeout(HANG)
            .expect("the ticket was never polled pending");
        gate.open();
    });
    (Announced { ticket, pending }, opener)
}

#[test]
fn tickets_awaited_on_tokio_and_on_the_futures_executor() -> TestResult {
    let pool = ThreadPool::new(3);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let single = tokio::runtime::Builder::new_current_thread().build()?;

    // Ready or nearly: straight through each executor.
    let t = pool.submit(|x: u32| x * 3, 5)?;
    assert_eq!(within_here("tokio block_on", || multi.block_on(t)), Ok(15));
    let t = pool.submit(|x: u32| x * 3, 6)?;
    assert_eq!(
        within_here("futures block_on", || futures::executor::block_on(t)),
        Ok(18)
    );
    let (a, b) = (
        pool.submit(|x: u32| x + 1, 1)?,
        pool.submit(|x: u32| x + 2, 1)?,
    );
    let joined = within_here("tokio current_thread join", || {
        single.block_on(async { tokio::join!(a, b) })
    });
    assert_eq!(joined, (Ok(2), Ok(3)));

    // Pending when first polled: woken by the worker, from another thread.
    let (spawned, opener) = pending_then_opened(&pool, 40);
    let task = multi.spawn(spawned);
    let outcome = within_here("a spawned tokio task", || multi.block_on(task))?;
    assert_eq!(outcome, Ok(40));
    opener.join().unwrap();

    let (on_futures, opener) = pending_then_opened(&pool, 41);
    let outcome = within_here("futures block_on, pending first", || {
        futures::executor::block_on(on_futures)
    });
    assert_eq!(outcome, Ok(41));
    opener.join().unwrap();

    let (on_single, opener) = pending_then_opened(&pool, 42);
    let outcome = within_here("tokio current_thread, pending first", || {
        single.block_on(on_single)
    });
    assert_eq!(outcome, Ok(42));
    opener.join().unwrap();
    Ok(())
}

/// Counts its wakes and says each one on a channel.
struct CountingWaker {
    wakes: AtomicUsize,
    woken: Mutex<mpsc::Sender<()>>,
}

impl CountingWaker {
    fn new() -> (Arc<CountingWaker>, Waker, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let counting = Arc::new(CountingWaker {
            wakes: AtomicUsize::new(0),
            woken: Mutex::new(tx),
        });
        let waker = Waker::from(Arc::clone(&counting));
        (counting, waker, rx)
    }

    fn wakes(&self) -> usize {
        self.wakes.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let _ = self.woken.lock().unwrap().send(());
    }
}

#[test]
fn the_worker_wakes_the_waker_of_the_last_poll_exactly_once() {
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    let mut ticket = pool
        .submit(
            move |x: u32| {
                latch.hold();
                x
            },
            8,
        )
        .unwrap();
    gate.await_start();
    let (first, first_waker, _first_rx) = CountingWaker::new();
    let (last, last_waker, last_rx) = CountingWaker::new();
    let mut poll = |waker: &Waker| Pin::new(&mut ticket).poll(&mut Context::from_waker(waker));
    assert!(poll(&first_waker).is_pending());
    assert!(poll(&first_waker).is_pending());
    assert!(poll(&last_waker).is_pending());
    assert_eq!((first.wakes(), last.wakes()), (0, 0));
    gate.open();
    last_rx
        .recv_timeout(HANG)
        .expect("the worker never woke the task");
    assert_eq!(poll(&last_waker), Poll::Ready(Ok(8)));
    assert_eq!((first.wakes(), last.wakes()), (0, 1));
}

#[test]
fn cancel_wakes_a_pending_ticket_which_then_is_ready_cancelled() {
    let pool = ThreadPool::new(1);
    let (gate, held) = hold_worker(&pool);
    let mut ticket = pool.submit(|x: u32| x, 1).unwrap();
    let (counting, waker, woken) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut ticket).poll(&mut cx).is_pending());
    assert!(ticket.cancel());
    // Woken by the cancelling thread, before cancel returned.
    assert_eq!(woken.try_recv(), Ok(()));
    assert_eq!(
        Pin::new(&mut ticket).poll(&mut cx),
        Poll::Ready(Err(TaskError::Cancelled))
    );
    assert_eq!(counting.wakes(), 1);
    gate.open();
    assert_eq!(held.wait(), Ok(()));
}

#[test]
fn a_ticket_polled_again_after_ready_panics() {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1);
    let mut ticket = pool.submit(|x: u32| x, 2).unwrap();
    flush(&pool);
    let (_, waker, _) = CountingWaker::new();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(Pin::new(&mut ticket).poll(&mut cx), Poll::Ready(Ok(2)));
    let again = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = Pin::new(&mut ticket).poll(&mut cx);
    }))
    .expect_err("polled again after Ready without a panic");
    let message = again
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| again.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(message.starts_with(TAKEN), "{message}");
}

// ---------------------------------------------------------------------------
// callpool::as_completed over tickets.
// ---------------------------------------------------------------------------

#[test]
fn as_completed_yields_tickets_in_the_order_the_gates_end_them() -> TestResult {
    let pool = ThreadPool::new(3);
    // From another pool, ended before the iterator exists: it comes first.
    let elsewhere = ThreadPool::new(1);
    let early = elsewhere.submit(|x: u32| x, 100)?;
    flush(&elsewhere);
    let mut gates = Vec::new();
    let mut tickets = Vec::new();
    for x in 10..13u32 {
        let (gate, latch) = common::gate();
        tickets.push(pool.submit(
            move |x: u32| {
                latch.hold();
                x
            },
            x,
        )?);
        gate.await_start();
        gates.push(gate);
    }
    // Every worker is held: this one stays queued, and is cancelled.
    let cancelled = pool.submit(|x: u32| x, 99)?;
    assert!(cancelled.cancel());
    tickets.push(early);
    tickets.push(cancelled);

    within_here("as_completed in forced order", || {
        let mut it = callpool::as_completed(tickets);
        assert_eq!(it.len(), 5);
        // Both had ended before the iterator listened; either may be first.
        let mut firsts = vec![it.next(), it.next()];
        firsts.sort_by_key(|item| item.as_ref().map(|(i, _)| *i));
        assert_eq!(
            firsts,
            [Some((3, Ok(100))), Some((4, Err(TaskError::Cancelled)))]
        );
        gates[2].open();
        assert_eq!(it.next(), Some((2, Ok(12))));
        gates[0].open();
        assert_eq!(it.next(), Some((0, Ok(10))));
        assert_eq!(it.len(), 1);
        gates[1].open();
        assert_eq!(it.next(), Some((1, Ok(11))));
        assert_eq!(it.next(), None);
        assert_eq!(it.len(), 0);
    });
    Ok(())
}

#[test]
fn as_completed_over_many_tickets_from_two_pools_yields_each_once() -> TestResult {
    const N: usize = 300;
    let a = ThreadPool::new(3);
    let a2 = a.new_handle();
    let b = ThreadPool::new(2);
    let tickets: Vec<Ticket<usize>> = (0..N)
        .map(|i| {
            let on = [&a, &a2, &b][i % 3];
            on.submit(
                |i: usize| {
                    for _ in 0..i % 7 {
                        thread::yield_now();
                    }
                    i * 10
                },
                i,
            )
        })
        .collect::<Result<_, _>>()?;
    let seen = within("as_completed over many tickets", move || {
        callpool::as_completed(tickets).collect::<Vec<_>>()
    });
    let hits = hit_counters(N);
    for (i, outcome) in seen {
        assert_eq!(outcome, Ok(i * 10), "ticket {i}");
        hits[i].fetch_add(1, Ordering::SeqCst);
    }
    common::assert_each_once("as_completed items", &hits);
    Ok(())
}

#[test]
fn dropping_as_completed_early_does_not_cancel_the_tickets_left() -> TestResult {
    let pool = ThreadPool::new(2);
    let ran = counter();
    let (ended_tx, ended) = mpsc::channel();
    let (gate, latch) = gate();
    let r = Arc::clone(&ran);
    let held = pool.submit(
        move |x: u32| {
            latch.hold();
            r.fetch_add(1, Ordering::SeqCst);
            ended_tx.send(()).unwrap();
            x
        },
        1,
    )?;
    gate.await_start();
    let quick = pool.submit(|x: u32| x, 2)?;
    let mut it = callpool::as_completed([held, quick]);
    assert_eq!(within_here("the quick one", || it.next()), Some((1, Ok(2))));
    // The held one is still running; its ticket goes with the iterator.
    drop(it);
    gate.open();
    assert_eq!(ended.recv_timeout(HANG), Ok(()));
    pool.shutdown()?;
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    Ok(())
}

/// `AsCompleted::push`: the loop that reads the outcomes adds what each
/// one found. Every node of a tree is visited once, each outcome comes
/// back once with the index `push` gave, indexes are never given twice,
/// and a push after `next` said `None` makes it go on.
#[test]
fn as_completed_fed_by_its_own_loop_visits_each_node_once() -> TestResult {
    const NODES: usize = 3_000;
    let pool = ThreadPool::new(2);
    let other = ThreadPool::new(1);
    let visits = hit_counters(NODES);
    let counted = Arc::clone(&visits);
    let visit = move |n: usize| {
        counted[n].fetch_add(1, Ordering::SeqCst);
        (
            n,
            [2 * n + 1, 2 * n + 2]
                .into_iter()
                .filter(|&m| m < NODES)
                .collect::<Vec<_>>(),
        )
    };
    within("a walk through as_completed's push", move || {
        let mut ended = callpool::as_completed([pool.submit(visit.clone(), 0).unwrap()]);
        // Which node each index stands for: each index given once.
        let mut node_of = std::collections::HashMap::from([(0, 0)]);
        let mut todo = Vec::new();
        let mut handed_back = 0;
        while let Some((index, outcome)) = ended.next() {
            let (n, found) = outcome.unwrap();
            assert_eq!(node_of.remove(&index), Some(n), "index {index}");
            handed_back += 1;
            todo.extend(found);
            while ended.len() < 5 {
                let Some(m) = todo.pop() else { break };
                // Every other one on another pool: a set may mix them.
                let on = if m % 2 == 0 { &pool } else { &other };
                let index = ended.push(on.submit(visit.clone(), m).unwrap());
                assert_eq!(node_of.insert(index, m), None, "index {index} given twice");
            }
        }
        assert_eq!(handed_back, NODES);
        assert!(node_of.is_empty() && todo.is_empty());
        common::assert_each_once("visit", &visits);
        // Not fused: a push after the end makes it go on, with a new index.
        assert_eq!(ended.len(), 0);
        let index = ended.push(pool.submit(|n: usize| (n, Vec::new()), 7).unwrap());
        assert_eq!(index, NODES, "the index after the last one given");
        assert_eq!(ended.next(), Some((NODES, Ok((7, Vec::new())))));
        assert_eq!(ended.next(), None);
    });
    Ok(())
}

/// Pushed tickets are reached by `cancel_rest` like the first ones, and
/// each still comes out once, cancelled or with its outcome.
#[test]
fn as_completed_cancel_rest_reaches_pushed_tickets() -> TestResult {
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    let held = pool.submit(
        move |x: u32| {
            latch.hold();
            x
        },
        1,
    )?;
    gate.await_start();
    let mut ended = callpool::as_completed([held]);
    let ran = counter();
    for x in 2..=4u32 {
        let r = Arc::clone(&ran);
        let index = ended.push(pool.submit(
            move |x: u32| {
                r.fetch_add(1, Ordering::SeqCst);
                x
            },
            x,
        )?);
        assert_eq!(index, x as usize - 1);
    }
    assert_eq!(ended.cancel_rest(), 3, "the pushed tickets, still queued");
    gate.open();
    let mut seen = within_here("the rest", || ended.collect::<Vec<_>>());
    seen.sort_by_key(|(index, _)| *index);
    assert_eq!(
        seen,
        [
            (0, Ok(1)),
            (1, Err(TaskError::Cancelled)),
            (2, Err(TaskError::Cancelled)),
            (3, Err(TaskError::Cancelled)),
        ]
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    Ok(())
}

/// Puts three requests on a pool of one worker with a request queue and
/// a result queue of one each, without polling, and returns once the first
/// two have run: the first one's result fills the result queue, the worker
/// is (or is about to be) stuck sending the second's, and the third fills
/// the request queue. The next put on this handle blocks.
fn fill_both_queues(pool: &ThreadPool) {
    let (ran_tx, ran) = mpsc::channel();
    for i in 0..3u32 {
        let ran_tx = ran_tx.clone();
        pool.put_request(WorkRequest::new(
            move |x: u32| {
                let _ = ran_tx.send(x);
                x
            },
            i,
        ))
        .unwrap();
    }
    assert_eq!(ran.recv_timeout(HANG), Ok(0));
    assert_eq!(ran.recv_timeout(HANG), Ok(1));
}

/// A `submit` (or `map`) blocked on a full request queue handles its
/// handle's results while it waits, as a blocked `put_request` does: the
/// worker stuck on the handle's full result queue gets room, so neither
/// waits for the other.
#[test]
fn a_blocked_submit_or_map_makes_room_in_its_handles_result_queue() {
    within("blocked submit", || {
        let pool = common::one_worker_bounded(1, 1);
        fill_both_queues(&pool);
        let ticket = pool.submit(|x: u32| x * 2, 21).unwrap();
        pool.wait().unwrap();
        assert_eq!(ticket.wait(), Ok(42));
        fill_both_queues(&pool);
        assert_eq!(
            pool.map(vec![1, 2, 3], |x: u32| x * 2),
            [Ok(2), Ok(4), Ok(6)]
        );
        pool.wait().unwrap();
        assert_eq!(pool.pending(), 0);
    });
}

/// Every way of blocking for an outcome that does not go through the
/// handle's result queue (a ticket, `map`, `imap`, `as_completed`, a
/// collector, a scope) makes room in that queue whenever a worker is stuck
/// on it: with one worker and a result queue of one, the request waited
/// for is queued behind callback requests whose results nobody else would
/// handle. Their callbacks run on the waiting thread, each exactly once.
#[test]
fn waits_outside_the_result_queue_make_room_for_a_worker_stuck_on_it() {
    type Way = fn(&ThreadPool) -> u32;
    let ways: [(&str, Way); 10] = [
        ("ticket wait", |pool| {
            pool.submit(|x: u32| x * 2, 21).unwrap().wait().unwrap()
        }),
        ("ticket wait_timeout", |pool| {
            let ticket = pool.submit(|x: u32| x * 2, 21).unwrap();
            ticket.wait_timeout(HANG).ok().unwrap().unwrap()
        }),
        ("map", |pool| {
            pool.map([21u32], |x: u32| x * 2)[0].clone().unwrap()
        }),
        ("imap", |pool| {
            pool.imap([21u32], 1, |x| x * 2).next().unwrap().unwrap()
        }),
        ("as_completed method", |pool| {
            let (_, outcome) = pool.as_completed([21u32], 1, |x| x * 2).next().unwrap();
            outcome.unwrap()
        }),
        ("as_completed", |pool| {
            let ticket = pool.submit(|x: u32| x * 2, 21).unwrap();
            callpool::as_completed([ticket]).next().unwrap().1.unwrap()
        }),
        ("collector wait_with", |pool| {
            let mut collector = pool.collector::<u32>();
            collector.put(|x: u32| x * 2, 21).unwrap();
            let mut got = 0;
            collector.wait_with(|_, outcome| got = outcome.unwrap());
            got
        }),
        ("collector outcomes", |pool| {
            let mut collector = pool.collector::<u32>();
            collector.put(|x: u32| x * 2, 21).unwrap();
            let (_, outcome) = collector.outcomes().next().unwrap();
            outcome.unwrap()
        }),
        ("scope", |pool| {
            let x = 21u32;
            let mut got = 0;
            pool.scope(|s| {
                s.put_then(|x: &u32| *x * 2, &x, |outcome| got = outcome.unwrap())
                    .unwrap();
            });
            got
        }),
        ("collector put_then", |pool| {
            let mut collector = pool.collector::<u32>();
            let mut got = 0;
            collector
                .put_then(|x: u32| x * 2, 21, |outcome| got = outcome.unwrap())
                .unwrap();
            collector.wait_with(|_, _| unreachable!("the callback took it"));
            drop(collector);
            got
        }),
    ];
    for (name, way) in ways {
        let got = within(name, move || {
            let pool = ThreadPool::builder()
                .workers(1)
                .result_capacity(1)
                .build()
                .unwrap();
            let me = thread::current().id();
            let called = Arc::new(AtomicUsize::new(0));
            for i in 0..3u32 {
                let called = Arc::clone(&called);
                pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                    assert_eq!(
                        thread::current().id(),
                        me,
                        "a callback ran off the waiting thread"
                    );
                    called.fetch_add(1, Ordering::SeqCst);
                }))
                .unwrap();
            }
            let got = way(&pool);
            pool.wait().unwrap();
            assert_eq!(called.load(Ordering::SeqCst), 3, "{name}: callbacks");
            got
        });
        assert_eq!(got, 42, "{name}");
    }
}

/// A thread waiting on a ticket whose request is already running does not
/// handle the handle's results, even while a worker is stuck on its full
/// result queue: its request cannot be held up, and the thread may never
/// poll the handle (it may hold a lock the callbacks take). The callbacks
/// stay for the thread that polls.
#[test]
fn a_ticket_whose_request_runs_leaves_the_handles_callbacks_to_its_poller() {
    within("a running ticket's waiter", || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .result_capacity(1)
                .build()
                .unwrap(),
        );
        let (gate, latch) = common::gate();
        let ticket = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
        gate.await_start();
        let me = thread::current().id();
        let on = Arc::new(Mutex::new(Vec::new()));
        let (ran_tx, ran) = mpsc::channel();
        for i in 0..2u32 {
            let (on, ran_tx) = (Arc::clone(&on), ran_tx.clone());
            pool.put_request(
                WorkRequest::new(
                    move |x: u32| {
                        ran_tx.send(()).unwrap();
                        x
                    },
                    i,
                )
                .on_result(move |_, _| on.lock().unwrap().push(thread::current().id())),
            )
            .unwrap();
        }
        // The second one's result finds the first's filling the queue.
        ran.recv_timeout(HANG).unwrap();
        ran.recv_timeout(HANG).unwrap();
        let waiter = thread::spawn(move || {
            ticket
                .wait_timeout(Duration::from_millis(100))
                .expect_err("the gate is closed")
        });
        let ticket = waiter.join().unwrap();
        assert!(
            on.lock().unwrap().is_empty(),
            "the ticket's waiter ran callbacks"
        );
        assert_eq!(pool.wait(), Ok(2));
        assert_eq!(*on.lock().unwrap(), [me, me]);
        gate.open();
        assert_eq!(ticket.wait(), Ok(()));
    });
}

/// `imap`'s `next` keeps the ticket it waits on until it has its outcome:
/// a panic in one of the handle's callbacks, run while it waits behind a
/// stuck worker, passes out, and the next call still yields that input's
/// outcome.
#[test]
fn imap_loses_no_input_to_a_callback_panic_while_it_waits() {
    within("imap after a panic", || {
        common::hide_panics(|message| message == Some("a callback"));
        let pool = common::one_worker_bounded(64, 1);
        let (gate, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        gate.await_start();
        for i in 1..4u32 {
            pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(|_, x| {
                if x == 2 {
                    panic!("a callback");
                }
            }))
            .unwrap();
        }
        // Nobody polls: the worker gets stuck on the second result, with
        // the third request and then imap's inputs queued behind it.
        gate.open();
        let mut it = pool.imap(0..5u32, 0, |x| x * 10);
        let mut outcomes = Vec::new();
        let mut panics = 0;
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| it.next())) {
                Ok(Some(outcome)) => outcomes.push(outcome.unwrap()),
                Ok(None) => break,
                Err(_) => panics += 1,
            }
        }
        assert_eq!(panics, 1);
        assert_eq!(outcomes, [0, 10, 20, 30, 40]);
        drop(it);
        pool.wait().unwrap();
        assert_eq!(pool.pending(), 0);
    });
}

/// A ticket is `Unpin`, as its docs promise: a timeout can poll it through
/// `&mut ticket` and leave it to the caller, to cancel. (No worker: the
/// poll finds it pending.)
#[test]
fn a_ticket_is_unpin() {
    fn unpin<T: Unpin>(_: &T) {}
    let pool = ThreadPool::new(0);
    let mut ticket = pool.submit(|n: u32| n + 1, 1).unwrap();
    unpin(&ticket);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let polled = std::future::Future::poll(std::pin::Pin::new(&mut ticket), &mut cx);
    assert!(polled.is_pending());
    assert!(ticket.cancel());
    assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
}

/// `cancel_rest` cancels every ticket the iterator still holds that has
/// not started, the first one included: one worker held, five tickets
/// queued behind it, all five cancelled (the count says so), each comes
/// out `Cancelled`, and none of them ran.
#[test]
fn cancel_rest_cancels_every_queued_ticket_the_iterator_holds() {
    within("cancel_rest of queued tickets", || {
        let pool = ThreadPool::new(1);
        let (gate, held) = hold_worker(&pool);
        let ran = hit_counters(5);
        let tickets: Vec<Ticket<usize>> = (0..5)
            .map(|i| {
                let ran = Arc::clone(&ran);
                pool.submit(
                    move |i: usize| {
                        ran[i].fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                )
                .unwrap()
            })
            .collect();
        let mut outcomes = callpool::as_completed(tickets);
        assert_eq!(outcomes.cancel_rest(), 5);
        gate.open();
        assert_eq!(held.wait(), Ok(()));
        let mut seen = vec![0; 5];
        for (index, outcome) in outcomes.by_ref() {
            assert_eq!(outcome, Err(TaskError::Cancelled), "ticket {index}");
            seen[index] += 1;
        }
        assert_eq!(seen, [1; 5]);
        flush(&pool);
        let ran: Vec<usize> = ran.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        assert_eq!(ran, [0; 5], "a cancelled ticket ran");
    });
}

/// `shutdown_now` hands back only requests put with callbacks: this
/// handle's own queued tickets hear `Cancelled` instead (their ticket is
/// already out), plain, fallible and given a context alike.
#[test]
fn shutdown_now_cancels_its_own_handles_tickets_and_hands_back_the_rest() -> TestResult {
    let pool = ThreadPool::new(0);
    let plain = pool.submit(|n: u32| n, 1)?;
    let fallible = pool.submit_fallible(|s: &'static str| s.parse::<u8>(), "2")?;
    let in_context = pool.submit_with_context(|_: &callpool::Context<'_>, n: u32| n, 3)?;
    pool.put_request(WorkRequest::new(|n: u32| n, 4))?;
    let handed_back = within("shutdown_now", move || pool.shutdown_now());
    assert_eq!(handed_back.len(), 1, "only the callback request");
    assert_eq!(
        plain.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(
        fallible.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(
        in_context.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    Ok(())
}
