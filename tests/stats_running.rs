//! `Stats::running`: the threads running a request now, rust-threadpool's
//! `active_count`. Exact at every point a test can pin down: a held
//! request counts from the moment its callable starts, and a request
//! stops counting before its outcome is heard, so right after `wait`, a
//! ticket's `wait` or a collector's outcome it is 0 again.

mod common;

use std::sync::mpsc::channel;

use callpool::{TaskError, ThreadPool, Ticket, WorkRequest};
use common::{gate, within, Gate};

fn running(pool: &ThreadPool) -> usize {
    pool.stats().running
}

/// Workers held by [`hold_workers`]: a gate per held request, and the
/// tickets among them, which the handle's `wait` does not wait for.
struct Held {
    gates: Vec<Gate>,
    tickets: Vec<Ticket<()>>,
}

impl Held {
    fn open(&self) {
        for held in &self.gates {
            held.open();
        }
    }
}

/// Holds `n` workers of `pool`, one request of each kind in turn (a
/// callback request, an executed closure, a ticket, a request with a
/// context), and returns their gates once every callable has started.
fn hold_workers(pool: &ThreadPool, n: usize) -> Held {
    let mut gates = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..n {
        let (held, latch) = gate();
        match i % 4 {
            0 => {
                pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                    .unwrap();
            }
            1 => drop(pool.execute(move || latch.hold()).unwrap()),
            2 => tickets.push(pool.submit(move |_: ()| latch.hold(), ()).unwrap()),
            _ => {
                pool.put_request(WorkRequest::with_context(
                    move |_: &callpool::Context<'_>, _: ()| latch.hold(),
                    (),
                ))
                .unwrap();
            }
        }
        held.await_start();
        gates.push(held);
    }
    Held { gates, tickets }
}

#[test]
fn a_fresh_pool_runs_nothing_though_its_workers_may_be_busy_looking() {
    let pool = ThreadPool::new(3);
    assert_eq!(running(&pool), 0);
    assert_eq!(pool.stats().workers, 3);
}

#[test]
fn each_held_request_of_any_kind_counts_once_and_wait_leaves_zero() {
    within("held requests", || {
        let pool = ThreadPool::new(4);
        let held = hold_workers(&pool, 4);
        assert_eq!(running(&pool), 4);
        // Queued behind them: not running.
        for n in 0..5u32 {
            pool.put_request(WorkRequest::new(move |_: ()| n, ()))
                .unwrap();
        }
        assert_eq!((running(&pool), pool.queued()), (4, 5));
        held.open();
        pool.wait().unwrap();
        // `wait` does not wait for a ticket: its worker may still be
        // running it (it counts until its end, heard by the ticket's own
        // wait).
        for ticket in held.tickets {
            assert_eq!(ticket.wait(), Ok(()));
        }
        assert_eq!(running(&pool), 0);
    });
}

/// The handle's `wait` does not cover a ticket, so a ticket's request
/// still running after `wait` has returned is counted, once, and stops
/// counting before the ticket's own `wait` returns.
#[test]
fn a_ticket_still_running_after_wait_counts_until_its_own_wait() {
    within("a ticket after wait", || {
        let pool = ThreadPool::new(4);
        let held = hold_workers(&pool, 4);
        for n in 0..5u32 {
            pool.put_request(WorkRequest::new(move |_: ()| n, ()))
                .unwrap();
        }
        // All but the ticket (the third held request).
        for (i, gate) in held.gates.iter().enumerate() {
            if i != 2 {
                gate.open();
            }
        }
        pool.wait().unwrap();
        assert_eq!((running(&pool), pool.queued()), (1, 0));
        held.gates[2].open();
        for ticket in held.tickets {
            assert_eq!(ticket.wait(), Ok(()));
        }
        assert_eq!(running(&pool), 0);
    });
}

#[test]
fn zero_as_soon_as_a_ticket_or_a_collectors_outcome_is_heard() {
    within("tickets and collectors", || {
        let pool = ThreadPool::new(2);
        for round in 0..200u64 {
            let ticket = pool.submit(|n: u64| n + 1, round).unwrap();
            assert_eq!(ticket.wait(), Ok(round + 1));
            assert_eq!(running(&pool), 0, "after ticket {round}");

            let mut collector = pool.collector::<u64>();
            collector.put(|n: u64| n * 2, round).unwrap();
            let (_, outcome) = collector.next_outcome().expect("one outcome");
            assert_eq!(outcome, Ok(round * 2));
            assert_eq!(running(&pool), 0, "after collector outcome {round}");

            pool.put_request(WorkRequest::new(|n: u64| n, round))
                .unwrap();
            pool.wait().unwrap();
            assert_eq!(running(&pool), 0, "after wait {round}");

            pool.execute(|| {}).unwrap();
            pool.wait().unwrap();
            assert_eq!(running(&pool), 0, "after an executed request {round}");
        }
    });
}

#[test]
fn a_panicking_or_failing_request_stops_counting() {
    within("panics", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .quiet_panics(true)
            .build()
            .unwrap();
        let (tx, rx) = channel();
        for n in 0..20u32 {
            let tx = tx.clone();
            pool.put_request(
                WorkRequest::fallible(
                    move |n: u32| match n % 3 {
                        0 => panic!("boom {n}"),
                        1 => Err("no"),
                        _ => Ok(n),
                    },
                    n,
                )
                .on_error(move |_, e: TaskError<&str>| tx.send(e.to_string()).unwrap()),
            )
            .unwrap();
        }
        pool.execute(|| panic!("executed boom")).unwrap();
        assert!(pool
            .submit(|_: ()| panic!("ticket boom"), ())
            .unwrap()
            .wait()
            .is_err());
        pool.wait().unwrap();
        assert_eq!(rx.try_iter().count(), 14);
        assert_eq!(running(&pool), 0);
        let stats = pool.stats();
        assert_eq!((stats.panicked, stats.failed), (7 + 1 + 1, 7));
    });
}

/// A worker whose request opens a scope on its own pool runs the scope's
/// request itself while it waits: two requests, one thread, counted once.
#[test]
fn a_worker_running_requests_inside_its_own_wait_counts_once() {
    within("nested", || {
        let pool = ThreadPool::new(1);
        let inner = pool.new_handle();
        let (held, latch) = gate();
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                inner.scope(|s| {
                    s.put(move |_: ()| latch.hold(), ()).unwrap();
                });
            },
            (),
        ))
        .unwrap();
        held.await_start();
        assert_eq!(running(&pool), 1);
        held.open();
        pool.wait().unwrap();
        assert_eq!(running(&pool), 0);
    });
}

/// A dismissed worker still running its request counts until it is done;
/// once it has left, nothing of it stays in the count.
#[test]
fn a_dismissed_worker_counts_until_its_request_ends() {
    within("dismissed", || {
        let pool = ThreadPool::new(2);
        let held = hold_workers(&pool, 2);
        assert_eq!(pool.dismiss_workers(2), 2);
        assert_eq!((pool.stats().workers, running(&pool)), (0, 2));
        held.open();
        pool.join_all_dismissed_workers();
        assert_eq!((pool.stats().threads, running(&pool)), (0, 0));
        pool.create_workers(1).unwrap();
        let again = hold_workers(&pool, 1);
        assert_eq!(running(&pool), 1);
        again.open();
        pool.wait().unwrap();
        assert_eq!(running(&pool), 0);
    });
}

/// The halves of a join that other workers take are pieces of their
/// request, whose end alone is counted: once `wait` has returned, no
/// worker that ran a half still counts as running.
#[test]
fn halves_of_joins_run_by_other_workers_leave_nothing_running() {
    fn fib(cx: &callpool::Context<'_>, n: u64) -> u64 {
        if n < 2 {
            return n;
        }
        let (a, b) = cx.join(|cx| fib(cx, n - 1), |cx| fib(cx, n - 2));
        a + b
    }
    within("joins", || {
        let pool = ThreadPool::new(3);
        for _ in 0..20 {
            let ticket = pool
                .submit_with_context(|cx: &callpool::Context<'_>, n: u64| fib(cx, n), 18)
                .unwrap();
            assert_eq!(ticket.wait(), Ok(2584));
            pool.put_request(WorkRequest::with_context(
                |cx: &callpool::Context<'_>, n: u64| assert_eq!(fib(cx, n), 2584),
                18,
            ))
            .unwrap();
            pool.wait().unwrap();
            // The ticket's and the request's own ends are heard; a worker
            // may still be finishing a half that lost its race (its join
            // ran it), so the count settles rather than drops at once.
            common::until(|| running(&pool) == 0);
        }
    });
}
