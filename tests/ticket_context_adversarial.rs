//! Trying to break context tickets (`submit_with_context`,
//! `submit_fallible_with_context`): the pool closing, shrinking or losing
//! its last handle while a ticket's callable puts many children; a bounded
//! result queue nobody polls while the submitting thread waits on the
//! ticket; joins and nested context tickets waited for inside callables;
//! `Drop`s that panic; cancels from another thread; dropped tickets; and
//! context tickets in `callpool::as_completed`. Each child ends exactly
//! once (run, handed back, cancelled, or refused to its callable), the
//! ticket hears exactly one outcome, and no panic escapes.
//!
//! Every order that matters is forced by a gate or a channel; timeouts only
//! turn a hang into a failure.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use callpool::{Context, PutError, ShutdownError, TaskError, ThreadPool, Ticket, WorkRequest};
use common::PanicsOnDrop;
use common::{counter, hit_counters, until, within, TestResult, HANG};

const DELIBERATE: &str = "ticket_context_adversarial: deliberate panic";

/// How each child of a run ended, by its index (its user-chosen id).
struct Tally {
    /// Its callable ran.
    ran: Vec<AtomicUsize>,
    /// Its result callback ran.
    called: Vec<AtomicUsize>,
    /// Its error callback heard `Cancelled`.
    cancelled: Vec<AtomicUsize>,
    /// `Context::put` refused it (`PutError::ShutDown`).
    refused: Vec<AtomicUsize>,
    /// Handed back (`shutdown_now`, `ShutdownError::Unrun`).
    handed_back: Vec<AtomicUsize>,
    /// Its argument was dropped (run or not).
    dropped: Vec<AtomicUsize>,
    /// How many puts the callable tried.
    tried: AtomicUsize,
}

fn counters(n: usize) -> Vec<AtomicUsize> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

impl Tally {
    fn new(n: usize) -> Arc<Tally> {
        Arc::new(Tally {
            ran: counters(n),
            called: counters(n),
            cancelled: counters(n),
            refused: counters(n),
            handed_back: counters(n),
            dropped: counters(n),
            tried: AtomicUsize::new(0),
        })
    }

    fn get(v: &[AtomicUsize], i: usize) -> usize {
        v[i].load(Ordering::SeqCst)
    }

    /// Fails unless each of the `CHILDREN` puts was accepted (`accepted`,
    /// as the callable counted) or refused.
    fn assert_accepted_or_refused(&self, accepted: usize, round: usize) {
        let refused: usize = self.refused.iter().map(|c| c.load(Ordering::SeqCst)).sum();
        assert_eq!(accepted + refused, CHILDREN, "round {round}");
    }

    /// Fails unless every child that ran was called back, and no other.
    fn assert_each_run_called_back(&self) {
        for i in 0..CHILDREN {
            assert_eq!(
                Tally::get(&self.ran, i),
                Tally::get(&self.called, i),
                "child {i}"
            );
        }
    }

    fn hand_back(&self, requests: impl IntoIterator<Item = WorkRequest>) {
        for request in requests {
            let i = request.id().value() as usize;
            self.handed_back[i].fetch_add(1, Ordering::SeqCst);
        }
    }

    fn all_dropped(&self) -> bool {
        let tried = self.tried.load(Ordering::SeqCst);
        (0..tried).all(|i| Self::get(&self.dropped, i) >= 1)
    }
}

/// A child's argument: counts its drop.
struct Arg(usize, Arc<Tally>);

impl Drop for Arg {
    fn drop(&mut self) {
        self.1.dropped[self.0].fetch_add(1, Ordering::SeqCst);
    }
}

fn child(i: usize, tally: &Arc<Tally>) -> WorkRequest {
    let (on_result, on_error) = (Arc::clone(tally), Arc::clone(tally));
    WorkRequest::new(
        |arg: Arg| {
            arg.1.ran[arg.0].fetch_add(1, Ordering::SeqCst);
            arg.0
        },
        Arg(i, Arc::clone(tally)),
    )
    .with_id(i as u64)
    .on_result(move |_, i| {
        on_result.called[i].fetch_add(1, Ordering::SeqCst);
    })
    .on_error(move |id, e| {
        assert_eq!(e, TaskError::Cancelled, "child {id}");
        on_error.cancelled[id.value() as usize].fetch_add(1, Ordering::SeqCst);
    })
    .into()
}

/// A context callable that puts `n` children, telling `started` once it has
/// put `signal_at`; it goes on through all `n` even once refused, and
/// returns how many were accepted. Once refused, every later put must be
/// refused too.
fn putting(
    tally: &Arc<Tally>,
    n: usize,
    signal_at: usize,
    started: mpsc::Sender<()>,
) -> impl FnOnce(&Context<'_>, ()) -> usize + Send + 'static {
    let tally = Arc::clone(tally);
    move |cx, ()| {
        let mut accepted = 0;
        let mut refused_once = false;
        for i in 0..n {
            if i == signal_at {
                let _ = started.send(());
            }
            tally.tried.fetch_add(1, Ordering::SeqCst);
            match cx.put(child(i, &tally)) {
                Ok(_) => {
                    assert!(!refused_once, "child {i} accepted after a refusal");
                    accepted += 1;
                }
                Err(PutError::ShutDown(request)) => {
                    assert_eq!(request.id().value() as usize, i);
                    refused_once = true;
                    tally.refused[i].fetch_add(1, Ordering::SeqCst);
                }
                Err(other) => panic!("child {i}: unexpected {other:?}"),
            }
        }
        accepted
    }
}

/// Once every child's argument is dropped: fails unless each child was
/// called back (exactly when it ran), handed back or refused, once.
fn assert_called_handed_back_or_refused(tally: &Tally, accepted: usize, round: usize) {
    until(|| tally.all_dropped());
    assert_each_ended_once(
        tally,
        &[
            ("called", &tally.called),
            ("handed back", &tally.handed_back),
            ("refused", &tally.refused),
        ],
    );
    tally.assert_accepted_or_refused(accepted, round);
    tally.assert_each_run_called_back();
}

/// Fails unless, for every child tried, `ways` (one count per way a child
/// may end) add up to exactly 1, and its argument was dropped once.
fn assert_each_ended_once(tally: &Tally, ways: &[(&str, &[AtomicUsize])]) {
    let tried = tally.tried.load(Ordering::SeqCst);
    let mut bad = Vec::new();
    for i in 0..tried {
        let counts: Vec<usize> = ways.iter().map(|(_, v)| Tally::get(v, i)).collect();
        let dropped = Tally::get(&tally.dropped, i);
        if counts.iter().sum::<usize>() != 1 || dropped != 1 {
            let others = (
                Tally::get(&tally.ran, i),
                Tally::get(&tally.called, i),
                Tally::get(&tally.cancelled, i),
                Tally::get(&tally.handed_back, i),
                Tally::get(&tally.refused, i),
            );
            bad.push((i, counts, dropped, others));
        }
        assert!(
            Tally::get(&tally.ran, i) <= 1,
            "child {i} ran {} times",
            Tally::get(&tally.ran, i)
        );
    }
    let names: Vec<&str> = ways.iter().map(|(name, _)| *name).collect();
    assert!(
        bad.is_empty(),
        "{} of {tried} children did not end exactly once; (index, {names:?}, dropped, (ran, called, cancelled, handed back, refused)): {:?}",
        bad.len(),
        &bad[..bad.len().min(20)]
    );
}

const CHILDREN: usize = 3_000;
const ROUNDS: usize = 20;

/// A ticket on `pool` whose callable puts `CHILDREN` children counted in
/// `tally`, once it has put `signal_at` of them.
fn start_putting(
    pool: &ThreadPool,
    tally: &Arc<Tally>,
    signal_at: usize,
) -> Result<Ticket<usize>, Box<dyn std::error::Error>> {
    let (started, on_start) = mpsc::channel();
    let ticket = pool.submit_with_context(putting(tally, CHILDREN, signal_at, started), ())?;
    on_start.recv_timeout(HANG)?;
    Ok(ticket)
}

#[test]
fn shutdown_now_while_the_callable_puts_children_each_ends_once() -> TestResult {
    for round in 0..ROUNDS {
        let tally = Tally::new(CHILDREN);
        let pool = ThreadPool::new(2);
        // A clone keeps the results to poll: children that ran are called
        // back on it.
        let poller = pool.clone();
        let ticket = start_putting(&pool, &tally, (round * 97) % CHILDREN)?;
        tally.hand_back(pool.shutdown_now());
        let accepted = ticket.wait_timeout(HANG).expect("hang")?;
        // Whatever was not handed back was taken by a worker: its result
        // reaches the clone.
        let _ = within("the clone's wait", move || {
            let r = poller.wait();
            (r.map_err(|e| e.to_string()), poller)
        });
        assert_called_handed_back_or_refused(&tally, accepted, round);
    }
    Ok(())
}

#[test]
fn shutdown_now_of_the_last_handle_while_the_callable_puts_each_child_ends_once() -> TestResult {
    for round in 0..ROUNDS {
        let tally = Tally::new(CHILDREN);
        let pool = ThreadPool::new(2);
        let ticket = start_putting(&pool, &tally, (round * 131) % CHILDREN)?;
        tally.hand_back(pool.shutdown_now());
        let accepted = ticket.wait_timeout(HANG).expect("hang")?;
        // Results of children that ran are discarded: each is known by its
        // run, and by its argument's drop.
        until(|| tally.all_dropped());
        assert_each_ended_once(
            &tally,
            &[
                ("ran", &tally.ran),
                ("handed back", &tally.handed_back),
                ("refused", &tally.refused),
            ],
        );
        tally.assert_accepted_or_refused(accepted, round);
    }
    Ok(())
}

#[test]
fn graceful_shutdown_while_the_callable_puts_children_each_ends_once() -> TestResult {
    for round in 0..ROUNDS {
        let tally = Tally::new(CHILDREN);
        let pool = ThreadPool::new(2);
        let ticket = start_putting(&pool, &tally, (round * 211) % CHILDREN)?;
        // Runs every child accepted, calls each back here, and waits for
        // the ticket's worker to leave.
        let tally_in = Arc::clone(&tally);
        let pool_done = within("shutdown", move || match pool.shutdown() {
            Ok(()) => Ok(()),
            Err(ShutdownError::Unrun(unrun)) => {
                tally_in.hand_back(unrun);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        });
        pool_done?;
        let accepted = ticket.wait_timeout(HANG).expect("hang")?;
        assert_called_handed_back_or_refused(&tally, accepted, round);
    }
    Ok(())
}

#[test]
fn dropping_the_last_handle_while_the_callable_puts_children_each_ends_once() -> TestResult {
    for round in 0..ROUNDS {
        let tally = Tally::new(CHILDREN);
        let pool = ThreadPool::new(2);
        let ticket = start_putting(&pool, &tally, (round * 53) % CHILDREN)?;
        within("dropping the last handle", move || drop(pool));
        let accepted = ticket.wait_timeout(HANG).expect("hang")?;
        // Nobody hears a cancelled child (no handle is left): each ends as
        // run, refused, or dropped unrun, and its argument is dropped once.
        until(|| tally.all_dropped());
        let tried = tally.tried.load(Ordering::SeqCst);
        assert_eq!(tried, CHILDREN);
        for i in 0..tried {
            let (ran, refused, dropped) = (
                Tally::get(&tally.ran, i),
                Tally::get(&tally.refused, i),
                Tally::get(&tally.dropped, i),
            );
            assert!(
                ran + refused <= 1 && dropped == 1,
                "round {round}, child {i}: ran {ran}, refused {refused}, dropped {dropped}"
            );
        }
        tally.assert_accepted_or_refused(accepted, round);
    }
    Ok(())
}

#[test]
fn dismissing_every_worker_while_the_callable_puts_children_strands_none() -> TestResult {
    for round in 0..ROUNDS {
        let tally = Tally::new(CHILDREN);
        let pool = ThreadPool::new(2);
        let ticket = start_putting(&pool, &tally, (round * 173) % CHILDREN)?;
        assert_eq!(pool.dismiss_workers(2), 2);
        // The ticket's worker finishes its callable before it leaves.
        assert_eq!(ticket.wait_timeout(HANG).expect("hang")?, CHILDREN);
        pool.join_all_dismissed_workers();
        assert_eq!(pool.workers(), 0);
        // None was lost in a leaving worker's slot: all are pending, and
        // run once a worker comes.
        let ran_so_far: usize = tally.ran.iter().map(|c| c.load(Ordering::SeqCst)).sum();
        assert_eq!(pool.queued(), CHILDREN - ran_so_far, "round {round}");
        pool.create_workers(1)?;
        let handled = within("wait", move || {
            (pool.wait().map_err(|e| e.to_string()), pool)
        })
        .0?;
        assert_eq!(handled, CHILDREN, "round {round}");
        assert_each_ended_once(&tally, &[("called", &tally.called)]);
    }
    Ok(())
}

/// A bounded result queue of one, and a context ticket whose 1,000 children
/// each have a callback; the submitting thread only waits on the ticket,
/// never on the handle, until the ticket has its outcome.
fn bounded_results_ticket_only(workers: usize) -> TestResult {
    const N: usize = 1_000;
    let pool = ThreadPool::builder()
        .workers(workers)
        .result_capacity(1)
        .build()?;
    let hits = hit_counters(N);
    let in_callable = Arc::clone(&hits);
    let ticket = pool.submit_with_context(
        move |cx: &Context<'_>, n: usize| {
            for i in 0..n {
                cx.put(common::hit_request(i, &in_callable))
                    .expect("the pool is open");
            }
            n
        },
        N,
    )?;
    let (ticket_outcome, pool) = within("the ticket's wait", move || {
        (ticket.wait().map_err(|e| e.to_string()), pool)
    });
    assert_eq!(ticket_outcome?, N);
    let handled = within("the handle's wait", move || {
        pool.wait().map_err(|e| e.to_string())
    })?;
    assert_eq!(handled, N);
    common::assert_each_once("callbacks", &hits);
    Ok(())
}

#[test]
fn a_full_result_queue_nobody_polls_does_not_hold_up_the_ticket_on_one_worker() -> TestResult {
    bounded_results_ticket_only(1)
}

#[test]
fn a_full_result_queue_nobody_polls_does_not_hold_up_the_ticket_on_two_workers() -> TestResult {
    bounded_results_ticket_only(2)
}

/// The case the ticket's wait must make room for: a second context ticket
/// queued behind children whose worker is stuck on the full result queue.
fn a_second_ticket_behind_stuck_children(workers: usize, as_completed: bool) -> TestResult {
    const N: usize = 300;
    let pool = ThreadPool::builder()
        .workers(workers)
        .result_capacity(1)
        .build()?;
    let hits = hit_counters(2 * N);
    let (put_all, on_put_all) = mpsc::channel();
    let (go, on_go) = mpsc::channel::<()>();
    let first_hits = Arc::clone(&hits);
    let first = pool.submit_with_context(
        move |cx: &Context<'_>, n: usize| {
            for i in 0..n {
                cx.put(common::hit_request(i, &first_hits))
                    .expect("the pool is open");
            }
            put_all.send(()).unwrap();
            let _ = on_go.recv();
            n
        },
        N,
    )?;
    on_put_all.recv_timeout(HANG)?;
    // At least 256 of the first ticket's children are queued (every 64th
    // put hands a batch over), so the second ticket is queued behind them.
    let second_hits = Arc::clone(&hits);
    let second = pool.submit_with_context(
        move |cx: &Context<'_>, n: usize| {
            for i in n..2 * n {
                cx.put(common::hit_request(i, &second_hits))
                    .expect("the pool is open");
            }
            n
        },
        N,
    )?;
    drop(go);
    let (outcomes, pool) = within("the tickets' waits", move || {
        let outcomes: Vec<(usize, Result<usize, TaskError>)> = if as_completed {
            callpool::as_completed(vec![first, second]).collect()
        } else {
            vec![(0, first.wait()), (1, second.wait())]
        };
        (outcomes, pool)
    });
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|(k, _)| *k);
    assert_eq!(outcomes, vec![(0, Ok(N)), (1, Ok(N))]);
    // The tickets' waits ran some of the callbacks while making room: this
    // wait handles the rest, and each ran once in all.
    let (handled, pending) = within("the handle's wait", move || {
        (pool.wait().map_err(|e| e.to_string()), pool.pending())
    });
    assert!(handled? < 2 * N, "the tickets' waits made no room");
    assert_eq!(pending, 0);
    common::assert_each_once("callbacks", &hits);
    Ok(())
}

#[test]
fn a_ticket_queued_behind_children_stuck_on_a_full_result_queue_makes_room_one_worker() -> TestResult
{
    a_second_ticket_behind_stuck_children(1, false)
}

#[test]
fn a_ticket_queued_behind_children_stuck_on_a_full_result_queue_makes_room_two_workers(
) -> TestResult {
    a_second_ticket_behind_stuck_children(2, false)
}

#[test]
fn as_completed_over_context_tickets_behind_stuck_children_makes_room() -> TestResult {
    a_second_ticket_behind_stuck_children(1, true)?;
    a_second_ticket_behind_stuck_children(2, true)
}

fn sum(cx: &Context<'_>, v: &[u64]) -> u64 {
    if v.len() <= 64 {
        return v.iter().sum();
    }
    let (l, r) = v.split_at(v.len() / 2);
    let (a, b) = cx.join(|cx| sum(cx, l), |cx| sum(cx, r));
    a + b
}

#[test]
fn join_inside_a_context_ticket_on_one_worker_runs_every_half_once() -> TestResult {
    let pool = ThreadPool::new(1);
    let halves = counter();
    let h = Arc::clone(&halves);
    let ticket = pool.submit_with_context(
        move |cx: &Context<'_>, v: Vec<u64>| {
            let index = cx.worker_index();
            let ((a, ia), (b, ib)) = cx.join(
                |cx| {
                    h.fetch_add(1, Ordering::SeqCst);
                    (sum(cx, &v[..5_000]), cx.worker_index())
                },
                |cx| {
                    h.fetch_add(1, Ordering::SeqCst);
                    (sum(cx, &v[5_000..]), cx.worker_index())
                },
            );
            (a + b, index, ia, ib)
        },
        (1..=10_000).collect(),
    )?;
    let outcome = ticket
        .wait_timeout(HANG)
        .expect("hang: a join on one worker")?;
    assert_eq!(outcome, (50_005_000, Some(0), Some(0), Some(0)));
    assert_eq!(halves.load(Ordering::SeqCst), 2);
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.stats().completed, 1, "halves are not requests");
    Ok(())
}

/// A context ticket whose callable submits another context ticket through
/// `pool` and waits for it, `depth` deep; the innermost joins and puts a
/// child. Returns (depth reached, sum).
fn nested(pool: ThreadPool, depth: u32, children: Arc<AtomicUsize>) -> Ticket<(u32, u64)> {
    let inner_pool = pool.clone();
    pool.submit_with_context(
        move |cx: &Context<'_>, depth: u32| {
            let c = Arc::clone(&children);
            cx.put(WorkRequest::new(|_: ()| (), ()).on_result(move |_, ()| {
                c.fetch_add(1, Ordering::SeqCst);
            }))
            .expect("the pool is open");
            if depth == 0 {
                let v: Vec<u64> = (1..=1_000).collect();
                return (0, sum(cx, &v));
            }
            let (d, s) = nested(inner_pool, depth - 1, children)
                .wait()
                .expect("the inner ticket");
            (d + 1, s)
        },
        depth,
    )
    .expect("the pool is open")
}

#[test]
fn nested_context_tickets_waited_for_inside_callables_never_need_a_free_worker() -> TestResult {
    for workers in [1, 2] {
        for round in 0..50 {
            let pool = ThreadPool::new(workers);
            let children = counter();
            let ticket = nested(pool.clone(), 4, Arc::clone(&children));
            let outcome = ticket
                .wait_timeout(HANG)
                .unwrap_or_else(|_| panic!("hang: {workers} workers, round {round}"))?;
            assert_eq!(outcome, (4, 500_500));
            // One child per level, each counted before its ticket ended.
            let handled = within("wait", move || pool.wait().map_err(|e| e.to_string()))?;
            assert_eq!(handled, 5, "{workers} workers, round {round}");
            assert_eq!(children.load(Ordering::SeqCst), 5);
        }
    }
    Ok(())
}

#[test]
fn every_worker_waiting_on_nested_context_tickets_still_ends() -> TestResult {
    // Two workers, four outer tickets each waiting on a chain: every
    // worker ends up waiting inside a callable.
    let pool = ThreadPool::new(2);
    let children = counter();
    let tickets: Vec<_> = (0..4)
        .map(|_| nested(pool.clone(), 3, Arc::clone(&children)))
        .collect();
    let outcomes = within("the tickets", move || {
        tickets.into_iter().map(Ticket::wait).collect::<Vec<_>>()
    });
    assert_eq!(outcomes, vec![Ok((3, 500_500)); 4]);
    let handled = within("wait", move || pool.wait().map_err(|e| e.to_string()))?;
    assert_eq!(handled, 16);
    assert_eq!(children.load(Ordering::SeqCst), 16);
    Ok(())
}

/// A context callable whose capture and argument both panic when dropped.
#[allow(clippy::type_complexity)]
fn with_bad_drops(
    ran: &Arc<AtomicUsize>,
    drops: &Arc<AtomicUsize>,
) -> (
    impl FnOnce(&Context<'_>, PanicsOnDrop) -> u32 + Send + 'static,
    PanicsOnDrop,
) {
    let ran = Arc::clone(ran);
    let capture = PanicsOnDrop(Arc::clone(drops), DELIBERATE);
    let callable = move |cx: &Context<'_>, arg: PanicsOnDrop| {
        let _keep = &capture;
        ran.fetch_add(1, Ordering::SeqCst);
        cx.put(WorkRequest::new(|_: ()| (), ()))
            .expect("the pool is open");
        drop(arg);
        7
    };
    (callable, PanicsOnDrop(Arc::clone(drops), DELIBERATE))
}

#[test]
fn drop_panics_of_a_run_callable_reach_its_ticket() -> TestResult {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let (ran, drops) = (counter(), counter());
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let ticket = pool.submit_with_context(callable, arg)?;
    match ticket.wait_timeout(HANG).expect("hang") {
        Err(TaskError::Panicked(message)) => assert_eq!(message, format!("{DELIBERATE} in a Drop")),
        other => panic!("expected the drop's panic, got {other:?}"),
    }
    assert_eq!(
        (ran.load(Ordering::SeqCst), drops.load(Ordering::SeqCst)),
        (1, 2)
    );
    // The child put before the panic is still counted and runs; the worker
    // is still there.
    assert_eq!(pool.wait()?, 1);
    assert_eq!(
        pool.submit(|n: u8| n, 3)?.wait_timeout(HANG).expect("hang"),
        Ok(3)
    );
    assert_eq!(pool.stats().panicked, 1);
    Ok(())
}

#[test]
fn drop_panics_of_a_cancelled_callable_stay_contained() -> TestResult {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(0);
    let (ran, drops) = (counter(), counter());
    // Through the ticket.
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let ticket = pool.submit_with_context(callable, arg)?;
    assert!(ticket.cancel());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both dropped by the cancel"
    );
    assert_eq!(
        ticket.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    // Through a cancel handle, from another thread.
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let ticket = pool.submit_with_context(callable, arg)?;
    let handle = ticket.cancel_handle();
    assert!(within("cancel", move || handle.cancel()));
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    assert_eq!(
        ticket.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    // The worker that comes later passes both over.
    pool.create_workers(1)?;
    assert_eq!(
        pool.submit(|n: u8| n, 3)?.wait_timeout(HANG).expect("hang"),
        Ok(3)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(pool.wait()?, 0, "no child was put");
    Ok(())
}

#[test]
fn drop_panics_of_a_callable_dropped_unrun_stay_contained() -> TestResult {
    common::hide_panics_starting_with(DELIBERATE);
    let (ran, drops) = (counter(), counter());
    // By shutdown_now.
    let pool = ThreadPool::new(0);
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let a = pool.submit_with_context(callable, arg)?;
    assert!(pool.shutdown_now().is_empty());
    assert_eq!(
        a.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    // By the last handle's drop.
    let pool = ThreadPool::new(0);
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let b = pool.submit_with_context(callable, arg)?;
    drop(pool);
    assert_eq!(
        b.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    // Refused by a closed pool: the error holds the request, which is
    // dropped with the error.
    let pool = ThreadPool::new(1);
    pool.close()?;
    let (callable, arg) = with_bad_drops(&ran, &drops);
    match pool.submit_with_context(callable, arg) {
        Err(PutError::ShutDown(request)) => drop(request),
        other => panic!("expected ShutDown, got {:?}", other.map(|_| ())),
    }
    assert_eq!(drops.load(Ordering::SeqCst), 6);
    // By a graceful shutdown with no worker left (handed back unrun).
    let pool = ThreadPool::new(1);
    assert_eq!(pool.dismiss_workers(1), 1);
    pool.join_all_dismissed_workers();
    let (callable, arg) = with_bad_drops(&ran, &drops);
    let c = pool.submit_with_context(callable, arg)?;
    let shut = within("shutdown", move || {
        pool.shutdown().map_err(|e| e.to_string())
    });
    assert!(
        shut.is_ok(),
        "a ticket's request is not handed back: {shut:?}"
    );
    assert_eq!(
        c.wait_timeout(HANG).expect("hang"),
        Err(TaskError::Cancelled)
    );
    assert_eq!(drops.load(Ordering::SeqCst), 8);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    Ok(())
}

#[test]
fn a_cancel_handle_on_another_thread_racing_a_worker_exactly_one_wins() -> TestResult {
    const ROUNDS: usize = 3_000;
    let pool = ThreadPool::new(2);
    let ran = hit_counters(ROUNDS);
    let children = hit_counters(ROUNDS);
    // One canceller thread for every round: it gets a handle, cancels,
    // and says whether it won.
    let (to_cancel, handles) = mpsc::channel::<callpool::CancelHandle>();
    let (won_tx, won_rx) = mpsc::channel();
    let canceller = thread::spawn(move || {
        for handle in handles {
            won_tx.send(handle.cancel()).unwrap();
        }
    });
    for i in 0..ROUNDS {
        let (ran, children) = (Arc::clone(&ran), Arc::clone(&children));
        let ticket = pool.submit_with_context(
            move |cx: &Context<'_>, i: usize| {
                ran[i].fetch_add(1, Ordering::SeqCst);
                cx.put(WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                    children[i].fetch_add(1, Ordering::SeqCst);
                }))
                .expect("the pool is open");
                i
            },
            i,
        )?;
        to_cancel.send(ticket.cancel_handle())?;
        // The holder blocks on the ticket while the other thread cancels.
        let outcome = ticket.wait_timeout(HANG).expect("hang");
        let won = won_rx.recv_timeout(HANG)?;
        assert_eq!(
            outcome,
            if won {
                Err(TaskError::Cancelled)
            } else {
                Ok(i)
            },
            "round {i}"
        );
    }
    drop(to_cancel);
    canceller.join().unwrap();
    let handled = pool.wait()?;
    let runs: usize = ran.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(handled, runs);
    for i in 0..ROUNDS {
        let (r, c) = (
            ran[i].load(Ordering::SeqCst),
            children[i].load(Ordering::SeqCst),
        );
        assert!(
            r <= 1 && c == r,
            "round {i}: ran {r}, child called back {c}"
        );
    }
    Ok(())
}

#[test]
fn a_cancel_handle_racing_a_helping_wait_on_a_worker_exactly_one_wins() -> TestResult {
    // The outer callable waits for an inner context ticket (the wait runs
    // it in place if still queued) while another thread cancels it.
    const ROUNDS: usize = 1_000;
    let pool = ThreadPool::new(1);
    let ran = hit_counters(ROUNDS);
    for i in 0..ROUNDS {
        let inner_pool = pool.clone();
        let ran_in = Arc::clone(&ran);
        let (handle_tx, handle_rx) = mpsc::channel();
        let outer = pool.submit(
            move |_: ()| {
                let inner = inner_pool
                    .submit_with_context(
                        move |cx: &Context<'_>, i: usize| {
                            ran_in[i].fetch_add(1, Ordering::SeqCst);
                            cx.put(WorkRequest::new(|_: ()| (), ())).expect("open");
                            i
                        },
                        i,
                    )
                    .expect("the pool is open");
                handle_tx.send(inner.cancel_handle()).unwrap();
                if i % 2 == 0 {
                    thread::yield_now();
                }
                inner.wait()
            },
            (),
        )?;
        let handle = handle_rx.recv_timeout(HANG)?;
        let won = handle.cancel();
        let inner = outer.wait_timeout(HANG).expect("hang")?;
        assert_eq!(
            inner,
            if won {
                Err(TaskError::Cancelled)
            } else {
                Ok(i)
            },
            "round {i}"
        );
        assert_eq!(
            ran[i].load(Ordering::SeqCst),
            usize::from(!won),
            "round {i}"
        );
    }
    let runs: usize = ran.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    assert_eq!(pool.wait()?, runs, "one child per run");
    Ok(())
}

/// An outcome that counts its drops and may panic in one.
struct Outcome {
    drops: Arc<AtomicUsize>,
    panic: bool,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic {
            panic!("{DELIBERATE}: outcome");
        }
    }
}

#[test]
fn a_ticket_dropped_while_its_callable_runs_drops_the_outcome_once_on_the_worker() -> TestResult {
    common::hide_panics_starting_with(DELIBERATE);
    for panic in [false, true] {
        let pool = ThreadPool::new(1);
        let drops = counter();
        let hits = hit_counters(10);
        let (started, on_start) = mpsc::channel();
        let (go, on_go) = mpsc::channel::<()>();
        let (d, h) = (Arc::clone(&drops), Arc::clone(&hits));
        let ticket = pool.submit_with_context(
            move |cx: &Context<'_>, n: usize| {
                started.send(()).unwrap();
                let _ = on_go.recv();
                for i in 0..n {
                    cx.put(common::hit_request(i, &h)).expect("open");
                }
                Outcome { drops: d, panic }
            },
            10,
        )?;
        on_start.recv_timeout(HANG)?;
        drop(ticket);
        drop(go);
        // The children are counted before the outcome is dropped: once the
        // drop is seen, one wait covers them all.
        until(|| drops.load(Ordering::SeqCst) == 1);
        assert_eq!(pool.wait()?, 10);
        common::assert_each_once("callbacks", &hits);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // The worker survived the outcome's panic.
        assert_eq!(
            pool.submit(|n: u8| n, 1)?.wait_timeout(HANG).expect("hang"),
            Ok(1)
        );
        assert_eq!(pool.stats().panicked, 0, "panic {panic}");
    }
    Ok(())
}

#[test]
fn context_tickets_in_as_completed_each_come_out_once_and_their_children_are_counted() -> TestResult
{
    const TICKETS: usize = 40;
    const EACH: usize = 25;
    for round in 0..20 {
        let pool = ThreadPool::new(2);
        let hits = hit_counters(TICKETS * EACH);
        let runs = hit_counters(TICKETS);
        let tickets: Vec<Ticket<usize>> = (0..TICKETS)
            .map(|t| {
                let (hits, runs) = (Arc::clone(&hits), Arc::clone(&runs));
                pool.submit_with_context(
                    move |cx: &Context<'_>, t: usize| {
                        runs[t].fetch_add(1, Ordering::SeqCst);
                        for i in 0..EACH {
                            cx.put(common::hit_request(t * EACH + i, &hits))
                                .expect("open");
                        }
                        t
                    },
                    t,
                )
            })
            .collect::<Result<_, _>>()?;
        let (seen, pool) = within("as_completed", move || {
            let mut done = callpool::as_completed(tickets);
            let mut seen = Vec::new();
            // Stop part-way on some rounds: the rest come out, ended or
            // cancelled.
            let stop_after = round % 3 * 7;
            let mut cancelled_rest = None;
            while let Some((k, outcome)) = done.next() {
                seen.push((k, outcome));
                if round % 3 != 0 && seen.len() == stop_after {
                    cancelled_rest = Some(done.cancel_rest());
                }
            }
            ((seen, cancelled_rest), pool)
        });
        let (seen, cancelled_rest) = seen;
        let keys: HashSet<usize> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            (seen.len(), keys.len()),
            (TICKETS, TICKETS),
            "round {round}"
        );
        let mut ran = 0;
        let mut cancelled = 0;
        for (k, outcome) in &seen {
            let r = runs[*k].load(Ordering::SeqCst);
            match outcome {
                Ok(t) => {
                    assert_eq!((*t, r), (*k, 1), "round {round}");
                    ran += 1;
                }
                Err(TaskError::Cancelled) => {
                    assert_eq!(r, 0, "round {round}: a cancelled ticket ran");
                    cancelled += 1;
                }
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        if let Some(n) = cancelled_rest {
            assert_eq!(n, cancelled, "round {round}");
        } else {
            assert_eq!(cancelled, 0);
        }
        let handled = within("wait", move || pool.wait().map_err(|e| e.to_string()))?;
        assert_eq!(handled, ran * EACH, "round {round}");
        for t in 0..TICKETS {
            let want = runs[t].load(Ordering::SeqCst);
            for i in 0..EACH {
                assert_eq!(
                    hits[t * EACH + i].load(Ordering::SeqCst),
                    want,
                    "round {round}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn awaited_context_tickets_wake_their_task_and_count_their_children() -> TestResult {
    let pool = ThreadPool::new(2);
    let hits = hit_counters(200);
    let tickets: Vec<_> = (0..20)
        .map(|t| {
            let hits = Arc::clone(&hits);
            pool.submit_with_context(
                move |cx: &Context<'_>, t: usize| {
                    let (a, b) = cx.join(|_| t, |_| t * 10);
                    for i in 0..10 {
                        cx.put(common::hit_request(t * 10 + i, &hits))
                            .expect("open");
                    }
                    a + b
                },
                t,
            )
        })
        .collect::<Result<_, _>>()?;
    let outcomes = within("block_on", move || {
        futures::executor::block_on(async move {
            let mut out = Vec::new();
            for ticket in tickets {
                out.push(ticket.await);
            }
            out
        })
    });
    assert_eq!(outcomes, (0..20).map(|t| Ok(t * 11)).collect::<Vec<_>>());
    assert_eq!(pool.wait()?, 200);
    common::assert_each_once("callbacks", &hits);
    Ok(())
}

/// The graceful shutdown's race with a context ticket's put, alone: the
/// ticket's own request is not pending on the handle, so nothing but the
/// child itself keeps `shutdown`'s wait from returning while the callable
/// is half-way through a put. Every child the callable was told was
/// accepted must be called back before `shutdown` returns.
#[test]
fn graceful_shutdown_calls_back_every_child_a_context_ticket_was_told_was_accepted() -> TestResult {
    const ROUNDS: usize = 400;
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let pool = ThreadPool::new(2);
        let accepted = counter();
        let called = counter();
        let (a, c) = (Arc::clone(&accepted), Arc::clone(&called));
        let ticket = pool.submit_with_context(
            move |cx: &Context<'_>, ()| loop {
                let c = Arc::clone(&c);
                let child = WorkRequest::new(|_: ()| (), ()).on_result(move |_, ()| {
                    c.fetch_add(1, Ordering::SeqCst);
                });
                match cx.put(child) {
                    Ok(_) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(PutError::ShutDown(_)) => break,
                    Err(e) => panic!("{e:?}"),
                }
            },
            (),
        )?;
        // Keep the handle's count low, as a polling thread does, then shut
        // down: the shutdown's wait may find nothing pending between two
        // of the callable's puts.
        let target = 1 + round % 50;
        let polled = Arc::clone(&accepted);
        let shut = within("poll, then shut down", move || {
            while polled.load(Ordering::SeqCst) < target {
                let _ = pool.poll();
            }
            pool.shutdown().map_err(|e| e.to_string())
        });
        shut?;
        // The callable stopped at its first refusal, before its worker
        // left, so both counts are final once `shutdown` has returned.
        assert_eq!(ticket.wait_timeout(HANG).expect("hang"), Ok(()));
        let (a, c) = (
            accepted.load(Ordering::SeqCst),
            called.load(Ordering::SeqCst),
        );
        if a != c {
            lost.push((round, a, c));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost a child's callback; (round, accepted, called back): {lost:?}",
        lost.len()
    );
    Ok(())
}
