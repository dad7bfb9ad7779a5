//! Scopes and collectors opened inside a callable of their own pool: the
//! worker that waits in one runs that wait's unstarted requests itself, so
//! a wait never needs a worker that is waiting too. Each test would hang
//! (every worker waiting for requests queued behind it) without that;
//! `within` turns a hang into a failure.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use callpool::{TaskError, ThreadPool, WorkRequest};
use common::within;

/// A scope opened by the only worker's callable: its requests run on that
/// worker, once each, and their callbacks run there too (the scope's
/// thread).
#[test]
fn a_scope_inside_the_only_workers_callable_runs_its_requests_there() {
    within("a scope on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let seen = Arc::new(Mutex::new(None));
        let report = Arc::clone(&seen);
        pool.put_request(WorkRequest::new(
            move |()| {
                let worker = thread::current().id();
                let ran_on = RefCell::new(Vec::new());
                let called_back_on = RefCell::new(Vec::new());
                inner.scope(|s| {
                    for i in 0..10u64 {
                        s.put_then(
                            |i: u64| (i, thread::current().id()),
                            i,
                            |outcome| {
                                ran_on.borrow_mut().push(outcome.unwrap());
                                called_back_on.borrow_mut().push(thread::current().id());
                            },
                        )
                        .unwrap();
                    }
                });
                *report.lock().unwrap() =
                    Some((worker, ran_on.into_inner(), called_back_on.into_inner()));
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        let (worker, mut ran_on, called_back_on) = seen.lock().unwrap().take().unwrap();
        ran_on.sort_by_key(|(i, _)| *i);
        assert_eq!(
            ran_on.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>(),
            "each scoped request ran once"
        );
        assert!(ran_on.iter().all(|(_, on)| *on == worker));
        assert_eq!(called_back_on, vec![worker; 10]);
        assert_eq!(pool.stats().completed, 11);
    });
}

/// Divide and conquer with a scope per level, on two workers: every level
/// waits in a scope on a worker, and its halves run wherever a worker
/// comes free, or on the waiting worker itself.
#[test]
fn nested_scopes_recurse_on_a_two_worker_pool() {
    fn sum(pool: &ThreadPool, xs: &[u64], leaves: &AtomicUsize) -> u64 {
        if xs.len() <= 8 {
            leaves.fetch_add(1, Ordering::SeqCst);
            return xs.iter().sum();
        }
        let (left, right) = xs.split_at(xs.len() / 2);
        let mut total = 0;
        pool.scope(|s| {
            s.put(|half: &[u64]| sum(pool, half, leaves), left).unwrap();
            s.put(|half: &[u64]| sum(pool, half, leaves), right)
                .unwrap();
            s.wait_with(|_, outcome| total += outcome.unwrap());
        });
        total
    }
    within("nested scopes", || {
        let pool = ThreadPool::new(2);
        let xs: Vec<u64> = (1..=4096).collect();
        let leaves = AtomicUsize::new(0);
        // The first level runs on a worker as well.
        let mut total = 0;
        pool.scope(|s| {
            s.put(|xs: &[u64]| sum(&pool, xs, &leaves), &xs[..])
                .unwrap();
            s.wait_with(|_, outcome| total = outcome.unwrap());
        });
        assert_eq!(total, 4096 * 4097 / 2);
        assert_eq!(leaves.load(Ordering::SeqCst), 4096 / 8);
    });
}

/// A collector inside the only worker's callable gets every outcome, once.
#[test]
fn a_collector_inside_the_only_workers_callable_gets_every_outcome() {
    within("a collector on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let got = Arc::new(Mutex::new(Vec::new()));
        let report = Arc::clone(&got);
        pool.put_request(WorkRequest::new(
            move |()| {
                let mut squares = inner.collector::<u64>();
                for n in 0..20u64 {
                    squares.put(|n: u64| n * n, n).unwrap();
                }
                let mut got: Vec<u64> = squares.outcomes().map(|(_, o)| o.unwrap()).collect();
                got.sort_unstable();
                *report.lock().unwrap() = got;
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        let want: Vec<u64> = (0..20u64).map(|n| n * n).collect();
        assert_eq!(*got.lock().unwrap(), want);
    });
}

/// `shutdown_now` while the only worker runs its scope's requests itself:
/// the one running finishes, and those it had not started are cancelled,
/// never run after `shutdown_now` returned.
#[test]
fn shutdown_now_while_a_worker_runs_its_scopes_requests_cancels_the_rest() {
    within("shutdown_now during a helping wait", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let (entered, latch) = common::gate();
        let ran = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let (ran_in, outcomes_in) = (Arc::clone(&ran), Arc::clone(&outcomes));
        pool.put_request(WorkRequest::new(
            move |()| {
                let mut seen = Vec::new();
                let mut latch = Some(latch);
                inner.scope(|s| {
                    for i in 0..5usize {
                        let ran = &ran_in;
                        // The first one is held until the pool has been
                        // shut down.
                        let held = if i == 0 { latch.take() } else { None };
                        s.put(
                            move |i: usize| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                if let Some(latch) = held {
                                    latch.hold();
                                }
                                i
                            },
                            i,
                        )
                        .unwrap();
                    }
                    s.wait_with(|_, outcome| seen.push(outcome));
                });
                *outcomes_in.lock().unwrap() = seen;
            },
            (),
        ))
        .unwrap();
        entered.await_start();
        let handed_back = pool.shutdown_now();
        assert!(handed_back.is_empty(), "the parent had started");
        let ran_by_then = ran.load(Ordering::SeqCst);
        entered.open();
        common::until(|| outcomes.lock().unwrap().len() == 5);
        assert_eq!(ran_by_then, 1);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "none started after shutdown_now"
        );
        let seen = outcomes.lock().unwrap();
        assert_eq!(seen.iter().filter(|o| **o == Ok(0)).count(), 1);
        assert_eq!(
            seen.iter()
                .filter(|o| **o == Err(TaskError::Cancelled))
                .count(),
            4
        );
    });
}

/// A ticket waited for inside the only worker's callable: its request runs
/// on that worker, once; so does one waited for with a timeout.
#[test]
fn a_ticket_waited_for_on_the_only_worker_runs_there() {
    within("a ticket on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let ran = Arc::new(AtomicUsize::new(0));
        let ran_in = Arc::clone(&ran);
        let ticket = pool
            .submit(
                move |()| {
                    let worker = thread::current().id();
                    let on = |ran: Arc<AtomicUsize>| {
                        move |n: u64| {
                            ran.fetch_add(1, Ordering::SeqCst);
                            (n * n, thread::current().id())
                        }
                    };
                    let first = inner
                        .submit(on(Arc::clone(&ran_in)), 7)
                        .unwrap()
                        .wait()
                        .unwrap();
                    let second = inner
                        .submit(on(Arc::clone(&ran_in)), 8)
                        .unwrap()
                        .wait_timeout(std::time::Duration::from_secs(3600))
                        .unwrap_or_else(|_| panic!("a ticket on the only worker never ended"))
                        .unwrap();
                    (worker, first, second)
                },
                (),
            )
            .unwrap();
        let (worker, first, second) = ticket.wait().unwrap();
        assert_eq!(first, (49, worker));
        assert_eq!(second, (64, worker));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        assert_eq!(pool.stats().completed, 3);
    });
}

/// `as_completed`, `imap` and `callpool::as_completed` over tickets, each
/// iterated inside the only worker's callable: every input's request runs
/// there, once, and every outcome comes back.
#[test]
fn iterators_over_outcomes_on_the_only_worker_get_every_outcome() {
    within("iterators on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let ticket = pool
            .submit(
                move |()| {
                    let mut completed: Vec<(u64, u64)> = inner
                        .as_completed(0..20u64, 4, |n: &u64| n * n)
                        .map(|(n, sq)| (n, sq.unwrap()))
                        .collect();
                    completed.sort_unstable();
                    let in_order: Vec<u64> = inner
                        .imap(0..20u64, 4, |n| n + 1)
                        .map(Result::unwrap)
                        .collect();
                    let tickets: Vec<_> = (0..5u64)
                        .map(|n| inner.submit(|n: u64| n * 10, n).unwrap())
                        .collect();
                    let mut by_ticket: Vec<(usize, u64)> = callpool::as_completed(tickets)
                        .map(|(i, outcome)| (i, outcome.unwrap()))
                        .collect();
                    by_ticket.sort_unstable();
                    (completed, in_order, by_ticket)
                },
                (),
            )
            .unwrap();
        let (completed, in_order, by_ticket) = ticket.wait().unwrap();
        assert_eq!(
            completed,
            (0..20u64).map(|n| (n, n * n)).collect::<Vec<_>>()
        );
        assert_eq!(in_order, (1..=20u64).collect::<Vec<_>>());
        assert_eq!(
            by_ticket,
            (0..5usize).map(|i| (i, i as u64 * 10)).collect::<Vec<_>>()
        );
        assert_eq!(pool.stats().completed, 1 + 20 + 20 + 5);
    });
}

/// A loop of `Collector::poll_with` inside the only worker's callable: the
/// collector's requests are queued behind that callable, so each poll that
/// finds nothing arrived must run one of them there, or the loop spins for
/// ever. Every outcome is handled once, its callback's too.
#[test]
fn a_poll_with_loop_on_the_only_worker_gets_every_outcome() {
    within("a poll_with loop on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let ticket = pool
            .submit(
                move |()| {
                    let called_back = RefCell::new(Vec::new());
                    let mut squares = inner.collector::<u64>();
                    for n in 0..10u64 {
                        squares.put(|n: u64| n * n, n).unwrap();
                    }
                    for n in 10..15u64 {
                        squares
                            .put_then(
                                |n: u64| n * n,
                                n,
                                |sq| called_back.borrow_mut().push(sq.unwrap()),
                            )
                            .unwrap();
                    }
                    let mut got = Vec::new();
                    let mut handled = 0;
                    while squares.pending() > 0 {
                        handled += squares.poll_with(|_, sq| got.push(sq.unwrap()));
                        thread::yield_now();
                    }
                    drop(squares);
                    got.sort_unstable();
                    let mut called_back = called_back.into_inner();
                    called_back.sort_unstable();
                    (handled, got, called_back)
                },
                (),
            )
            .unwrap();
        let (handled, got, called_back) = ticket.wait().unwrap();
        assert_eq!(handled, 15);
        assert_eq!(got, (0..10u64).map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(called_back, (10..15u64).map(|n| n * n).collect::<Vec<_>>());
        assert_eq!(pool.stats().completed, 1 + 15);
    });
}
