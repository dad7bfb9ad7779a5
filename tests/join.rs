//! Fork-join inside a request: `Context::join`.
//!
//! The second half is offered to the other workers as a child would be;
//! the worker runs the first half, then takes the second back if nobody
//! took it, else waits for it. The tests pin what that promises: with one
//! worker both halves run in turn (no deadlock); an idle worker runs the
//! second half while the first runs; each half runs exactly once under
//! nested joins while the pool is resized and workers are dismissed; a
//! panic in either half reaches the request's error callback, after the
//! other half is over; `shutdown_now` leaves an offered half to its join;
//! what a half puts goes on the request's handle; halves are not counted
//! as requests, nor as children for the every-64th rule.
//!
//! Nothing here depends on timing: every step is forced by a channel or a
//! callback, and timeouts only turn a hang into a failure.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};

use callpool::{Context, TaskError, ThreadPool, WorkRequest};

use common::{assert_each_once, hit_counters, Dropped, HANG};

const DELIBERATE: &str = "join: deliberate panic";

/// Sums `xs` by splitting it in halves down to `leaf` elements, counting
/// each element's visit in `hits` and each leaf's thread in `threads`.
fn sum(
    cx: &Context<'_>,
    xs: &[usize],
    leaf: usize,
    hits: &[AtomicUsize],
    threads: &Mutex<Vec<ThreadId>>,
) -> usize {
    if xs.len() <= leaf {
        threads.lock().unwrap().push(thread::current().id());
        for &x in xs {
            hits[x].fetch_add(1, Ordering::SeqCst);
        }
        return xs.iter().sum();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(
        |cx| sum(cx, left, leaf, hits, threads),
        |cx| sum(cx, right, leaf, hits, threads),
    );
    a + b
}

/// With one worker, no other worker can take the second half: `join` runs
/// both halves in turn on that worker, never waiting for help. Every
/// element is visited once; the halves are not requests (one completed
/// request in the statistics, nothing pending or queued after).
#[test]
fn with_one_worker_join_runs_both_halves_in_turn() {
    const N: usize = 10_000;
    let pool = ThreadPool::new(1);
    let hits = hit_counters(N);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let (total_tx, total) = mpsc::channel();
    let (h, t) = (Arc::clone(&hits), Arc::clone(&threads));
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let xs: Vec<usize> = (0..N).collect();
                (sum(cx, &xs, 10, &h, &t), thread::current().id())
            },
            (),
        )
        .on_result(move |_, done| total_tx.send(done).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    let (total, worker) = total.try_recv().unwrap();
    assert_eq!(total, N * (N - 1) / 2);
    assert_each_once("elements", &hits);
    let threads = threads.lock().unwrap();
    assert!(threads.len() >= N / 10, "{} leaves", threads.len());
    assert!(
        threads.iter().all(|&t| t == worker),
        "a leaf ran off the worker"
    );
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled, stats.queued), (1, 0, 0));
    assert_eq!(pool.pending(), 0);
}

/// With a second worker idle, the second half runs there while the first
/// runs here: the first half waits for a message that only the second
/// half sends, so if the second half were not taken by the other worker
/// the first would wait for ever (caught by `HANG`). The second half's
/// context says the request's id and its own worker's index.
#[test]
fn an_idle_worker_runs_the_second_half_while_the_first_runs() {
    for round in 0..50 {
        let pool = ThreadPool::new(2);
        let (done_tx, done) = mpsc::channel();
        pool.put_request(
            WorkRequest::with_context(
                |cx: &Context<'_>, ()| {
                    let (tx, rx) = mpsc::channel();
                    let (a, b) = cx.join(
                        |cx| {
                            let heard = rx.recv_timeout(HANG).is_ok();
                            (heard, cx.worker_index(), thread::current().id())
                        },
                        move |cx| {
                            tx.send(()).unwrap();
                            (cx.id(), cx.worker_index(), thread::current().id())
                        },
                    );
                    (cx.id(), a, b)
                },
                (),
            )
            .on_result(move |id, outcome| done_tx.send((id, outcome)).unwrap()),
        )
        .unwrap();
        assert_eq!(pool.wait_timeout(HANG), Ok(1), "round {round}");
        let (id, (own_id, a, b)) = done.try_recv().unwrap();
        assert!(a.0, "round {round}: the first half never heard the second");
        assert_eq!(own_id, id);
        assert_eq!(b.0, id, "round {round}: the second half's context");
        assert_ne!(a.1, b.1, "round {round}: both halves on one worker");
        assert_ne!(a.2, b.2, "round {round}: both halves on one thread");
        assert_eq!(pool.stats().completed, 1);
    }
}

/// Nested joins over 4 workers while another thread resizes the pool
/// between 1 and 4 workers and dismisses some: every element is visited
/// exactly once, and every request's sum is right.
#[test]
fn nested_joins_visit_each_element_once_through_resizes_and_dismissals() {
    const N: usize = 20_000;
    const REQUESTS: usize = 8;
    let pool = ThreadPool::new(4);
    let hits = hit_counters(N * REQUESTS);
    let threads = Arc::new(Mutex::new(Vec::new()));
    let sums = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let storm = {
        let (pool, stop) = (pool.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut k = 0usize;
            while !stop.load(Ordering::SeqCst) {
                k += 1;
                if k % 3 == 0 {
                    // Never the last live worker: with none, a `wait`
                    // that finds every pending request queued returns
                    // `NoWorkersAvailable` (this thread alone resizes, so
                    // the count read is the count dismissed from).
                    pool.dismiss_workers(pool.workers().saturating_sub(1).min(2));
                } else {
                    pool.resize(1 + k % 4).unwrap();
                }
                thread::yield_now();
            }
            pool.resize(4).unwrap();
        })
    };
    for r in 0..REQUESTS {
        let (h, t, s) = (Arc::clone(&hits), Arc::clone(&threads), Arc::clone(&sums));
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, r: usize| {
                    let xs: Vec<usize> = (r * N..(r + 1) * N).collect();
                    sum(cx, &xs, 50, &h, &t)
                },
                r,
            )
            .on_result(move |_, total| s.lock().unwrap().push(total)),
        )
        .unwrap();
    }
    // The storm never leaves the pool without a live worker, so the wait
    // ends with every request run.
    let waited = pool.wait_timeout(HANG);
    stop.store(true, Ordering::SeqCst);
    storm.join().unwrap();
    assert_eq!(waited, Ok(REQUESTS));
    assert_each_once("elements", &hits);
    let mut sums = sums.lock().unwrap().clone();
    sums.sort_unstable();
    let want: Vec<usize> = (0..REQUESTS).map(|r| (r * N..(r + 1) * N).sum()).collect();
    assert_eq!(sums, want);
    assert_eq!(pool.stats().completed, REQUESTS as u64);
}

/// A panic in the second half, run by the other worker, is resumed by the
/// join once the first half is over: the request's error callback hears
/// it, and the first half ran to its end.
#[test]
fn a_panic_in_the_second_half_on_another_worker_reaches_the_error_callback() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let first_ended = Arc::new(AtomicBool::new(false));
    let (err_tx, errors) = mpsc::channel();
    let ended = Arc::clone(&first_ended);
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let (tx, rx) = mpsc::channel();
                cx.join(
                    |_| {
                        // The second half started elsewhere: it is not ours.
                        rx.recv_timeout(HANG).unwrap();
                        ended.store(true, Ordering::SeqCst);
                    },
                    move |_| {
                        tx.send(()).unwrap();
                        panic!("{DELIBERATE} in the second half");
                    },
                );
                unreachable!("join resumes the second half's panic");
            },
            (),
        )
        .on_result(|_, ()| panic!("the request must fail"))
        .on_error(move |_, e| err_tx.send(e).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    match errors.try_recv().unwrap() {
        TaskError::Panicked(message) => {
            assert!(message.contains("in the second half"), "{message}")
        }
        other => panic!("expected the second half's panic, got {other:?}"),
    }
    assert!(first_ended.load(Ordering::SeqCst));
    assert_eq!(pool.stats().panicked, 1);
}

/// A panic in the first half: the join takes the second half back if
/// nobody took it (it never runs), or waits for the worker running it
/// before the panic leaves `join` (it ran to its end). Either way the
/// second half is over when the request's error callback runs. Here the
/// second half is running elsewhere (it said so) and keeps going a while
/// after the first half panics.
#[test]
fn a_panic_in_the_first_half_waits_for_the_second_half_running_elsewhere() {
    common::hide_panics_starting_with(DELIBERATE);
    for round in 0..20 {
        let pool = ThreadPool::new(2);
        let second_ended = Arc::new(AtomicBool::new(false));
        let (err_tx, errors) = mpsc::channel();
        let ended = Arc::clone(&second_ended);
        let seen = Arc::clone(&second_ended);
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    let (started_tx, started) = mpsc::channel();
                    let (panicking_tx, panicking) = mpsc::channel::<()>();
                    cx.join(
                        move |_| {
                            started.recv_timeout(HANG).unwrap();
                            panicking_tx.send(()).unwrap();
                            panic!("{DELIBERATE} in the first half");
                        },
                        move |_| {
                            started_tx.send(()).unwrap();
                            panicking.recv_timeout(HANG).unwrap();
                            // Still going after the first half panicked.
                            for _ in 0..1_000 {
                                thread::yield_now();
                            }
                            ended.store(true, Ordering::SeqCst);
                        },
                    );
                },
                (),
            )
            .on_error(move |_, e| err_tx.send((e, seen.load(Ordering::SeqCst))).unwrap()),
        )
        .unwrap();
        assert_eq!(pool.wait_timeout(HANG), Ok(1), "round {round}");
        let (error, second_was_over) = errors.try_recv().unwrap();
        assert!(
            matches!(&error, TaskError::Panicked(m) if m.contains("in the first half")),
            "round {round}: {error:?}"
        );
        assert!(
            second_was_over,
            "round {round}: the error callback ran before the second half ended"
        );
    }
}

/// A panic in the first half with no other worker to take the second:
/// the join takes the second half back and drops it unrun (its captures
/// dropped once), rather than wait for a worker that is not coming.
#[test]
fn a_panic_in_the_first_half_with_no_other_worker_drops_the_second_unrun() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let b_runs = Arc::new(AtomicUsize::new(0));
    let b_dropped = Arc::new(AtomicUsize::new(0));
    let (err_tx, errors) = mpsc::channel();
    let (runs, dropped) = (Arc::clone(&b_runs), Arc::clone(&b_dropped));
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let witness = Dropped(dropped);
                cx.join(
                    |_| panic!("{DELIBERATE} in the first half"),
                    move |_| {
                        let _witness = witness;
                        runs.fetch_add(1, Ordering::SeqCst);
                    },
                );
            },
            (),
        )
        .on_error(move |_, e| err_tx.send(e).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    let error = errors.try_recv().unwrap();
    assert!(
        matches!(&error, TaskError::Panicked(m) if m.contains("in the first half")),
        "{error:?}"
    );
    assert_eq!(b_runs.load(Ordering::SeqCst), 0);
    assert_eq!(b_dropped.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().panicked, 1);
}

/// `shutdown_now` sweeps the queue and the workers' slots while a join's
/// second half waits in its worker's slot (the other worker is busy): the
/// half is not cancelled, nor handed back as a request, nor counted; its
/// join runs it once the first half returns, and the request succeeds.
#[test]
fn shutdown_now_leaves_an_offered_half_to_its_join() {
    let pool = ThreadPool::new(2);
    let (busy, busy_latch) = common::gate();
    pool.put_request(WorkRequest::new(move |()| busy_latch.hold(), ()))
        .unwrap();
    busy.await_start();
    let (parent, parent_latch) = common::gate();
    let b_runs = Arc::new(AtomicUsize::new(0));
    let (done_tx, done) = mpsc::channel();
    let runs = Arc::clone(&b_runs);
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let here = thread::current().id();
                cx.join(
                    move |_| parent_latch.hold(),
                    move |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        thread::current().id() == here
                    },
                )
            },
            (),
        )
        .on_result(move |_, outcome| done_tx.send(outcome).unwrap()),
    )
    .unwrap();
    parent.await_start();
    // The second half waits in the parent's worker's slot now: the other
    // worker is held, and nothing was put since.
    let handed_back = pool.clone().shutdown_now();
    assert!(handed_back.is_empty(), "{} handed back", handed_back.len());
    parent.open();
    busy.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    let ((), ran_here) = done.try_recv().unwrap();
    assert!(ran_here, "the swept half ran off its join's thread");
    assert_eq!(b_runs.load(Ordering::SeqCst), 1);
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.cancelled), (2, 0));
}

/// What a half puts through its context goes on the request's handle:
/// `wait` covers it, its callback runs on the polling thread, once.
#[test]
fn what_a_half_puts_goes_on_the_requests_handle() {
    const CHILDREN: usize = 100;
    let pool = ThreadPool::new(2);
    let hits = hit_counters(2 * CHILDREN);
    let polling = thread::current().id();
    let off_thread = Arc::new(AtomicUsize::new(0));
    let (h, off) = (Arc::clone(&hits), Arc::clone(&off_thread));
    let put_from = move |cx: &Context<'_>, base: usize| {
        for i in base..base + CHILDREN {
            let (h, off) = (Arc::clone(&h), Arc::clone(&off));
            cx.put(WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                if thread::current().id() != polling {
                    off.fetch_add(1, Ordering::SeqCst);
                }
                h[i].fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
    };
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            let put_from = &put_from;
            cx.join(|cx| put_from(cx, 0), |cx| put_from(cx, CHILDREN));
        },
        (),
    ))
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1 + 2 * CHILDREN));
    assert_each_once("children's callbacks", &hits);
    assert_eq!(off_thread.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().completed, 1 + 2 * CHILDREN as u64);
}

/// Puts on `pool` a request whose callable runs `body`, which calls the
/// `hold` it is given where the request is to stay while the queue is
/// looked at; returns `(queued(), stats().queued)` read then, and lets the
/// request go on.
fn queued_while_held(
    pool: &ThreadPool,
    body: impl FnOnce(&Context<'_>, &dyn Fn()) + Send + 'static,
) -> (usize, usize) {
    let (at_tx, at) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            let hold = || {
                at_tx.send(()).unwrap();
                go.recv_timeout(HANG).unwrap();
            };
            body(cx, &hold);
        },
        (),
    ))
    .unwrap();
    at.recv_timeout(HANG).unwrap();
    let queued = (pool.queued(), pool.stats().queued);
    go_tx.send(()).unwrap();
    queued
}

/// A join takes its half back from its worker's slot, so a half is not a
/// child for the every-64th rule: with no other worker free, a callable
/// that joins many times leaves no no-op half job in the queue (counted
/// there, one per 64 joins, each the queue held until a worker came free,
/// without bound), and a callable that joins once and then puts 64
/// children has its batch queued with the 64th child, as `Context::put`
/// says, not with the 63rd.
#[test]
fn halves_do_not_count_towards_the_every_64th_child_rule() {
    const JOINS: u64 = 64 * 100;
    let pool = ThreadPool::new(1);
    let total = Arc::new(AtomicUsize::new(0));
    let sum = Arc::clone(&total);
    // The request runs still, on the only worker, while the queue is
    // looked at: what is queued then stays there until it returns.
    let queued = queued_while_held(&pool, move |cx, hold| {
        for i in 0..JOINS {
            let (a, b) = cx.join(|_| i, |_| i + 1);
            sum.fetch_add((a + b) as usize, Ordering::SeqCst);
        }
        hold();
    });
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(total.load(Ordering::SeqCst) as u64, JOINS * JOINS);
    assert_eq!(queued, (0, 0), "no-op halves left in the queue");

    // One join, then 64 children, while the other worker is busy.
    let pool = ThreadPool::new(2);
    let (busy, busy_latch) = common::gate();
    pool.put_request(WorkRequest::new(move |()| busy_latch.hold(), ()))
        .unwrap();
    busy.await_start();
    let queued = queued_while_held(&pool, |cx, hold| {
        cx.join(|_| (), |_| ());
        for _ in 0..64 {
            cx.put(WorkRequest::new(|()| (), ())).unwrap();
        }
        hold();
    });
    busy.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(2 + 64));
    assert_eq!(
        queued.0, 64,
        "the 64th child's batch was not queued with it"
    );
}

/// A half is no request, but its job in the shared queue is one of the
/// jobs `queued` counts, as the docs of `join` and `queued` say: here one
/// worker runs a request that joins and, inside the first half, puts 64
/// children, whose batch takes the offered half along to the queue. Once
/// the worker has run everything, nothing is queued and the statistics
/// count the request and its children only.
#[test]
fn a_half_in_the_queue_counts_in_queued_until_a_worker_takes_its_job() {
    let pool = ThreadPool::new(1);
    let queued = queued_while_held(&pool, |cx, hold| {
        cx.join(
            |cx| {
                for _ in 0..64 {
                    cx.put(WorkRequest::new(|()| (), ())).unwrap();
                }
                hold();
            },
            |_| (),
        );
    });
    assert_eq!(pool.wait_timeout(HANG), Ok(1 + 64));
    assert_eq!(queued, (64 + 1, 64 + 1));
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.completed, stats.cancelled), (0, 65, 0));
}

/// A join whose first half puts a child leaves its half behind that child
/// in the worker's slot; the join takes it back from there all the same,
/// so it never travels to the queue as a no-op job. One worker runs a
/// request whose 64 joins each put one child in their first half: the
/// 64th child queues the slot, which then holds the 64 children and only
/// the 64th join's half (still offered), not the 63 halves of the joins
/// that have returned.
#[test]
fn a_join_takes_its_half_back_from_behind_a_child_its_first_half_put() {
    let pool = ThreadPool::new(1);
    let queued = queued_while_held(&pool, |cx, hold| {
        for _ in 0..64 {
            cx.join(|cx| cx.put(WorkRequest::new(|()| (), ())).unwrap(), |_| ());
        }
        hold();
    });
    assert_eq!(pool.wait_timeout(HANG), Ok(1 + 64));
    assert_eq!(
        queued.0,
        64 + 1,
        "halves of returned joins left in the queue"
    );
}
