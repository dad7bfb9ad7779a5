//! More adversarial tests of helping waits (`pool::worker::help`): tickets
//! dropped or cancelled before a helping wait, a scope on another handle
//! of the same pool, `shutdown_now` from inside a helped request, what a
//! helped request sees of its worker (index, state), and nested waits of
//! every kind while the pool is resized under them. Every request's end is
//! counted exactly; `within` only turns a hang into a failure.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use callpool::{Context, TaskError, ThreadPool, WorkRequest};
use common::{assert_each_once, hit_counters, within};

/// On the only worker, a callable submits three tickets, drops the first
/// and cancels the second, then waits for the third: the wait runs the
/// third here (not the dropped one ahead of it, not the cancelled one);
/// the dropped one runs once, after the callable; the cancelled one never.
#[test]
fn a_wait_after_dropped_and_cancelled_tickets_runs_only_its_own() {
    within(
        "tickets dropped and cancelled before a helping wait",
        || {
            let pool = ThreadPool::new(1);
            let inner = pool.clone();
            let ran = hit_counters(3);
            let hits = Arc::clone(&ran);
            let outer = pool
                .submit(
                    move |()| {
                        let on = |i: usize| {
                            let hits = Arc::clone(&hits);
                            move |()| {
                                hits[i].fetch_add(1, Ordering::SeqCst);
                                thread::current().id()
                            }
                        };
                        drop(inner.submit(on(0), ()).unwrap());
                        let cancelled = inner.submit(on(1), ()).unwrap();
                        assert!(cancelled.cancel(), "queued behind this callable");
                        let live = inner.submit(on(2), ()).unwrap();
                        let ran_on = live.wait().unwrap();
                        assert_eq!(cancelled.wait(), Err(TaskError::Cancelled));
                        // Only the waited-for one ran during the callable.
                        let so_far: Vec<usize> =
                            hits.iter().map(|h| h.load(Ordering::SeqCst)).collect();
                        (ran_on, thread::current().id(), so_far)
                    },
                    (),
                )
                .unwrap();
            let (ran_on, worker, so_far) = outer.wait().unwrap();
            assert_eq!(
                ran_on, worker,
                "the waited-for request ran on the waiting worker"
            );
            assert_eq!(so_far, [0, 0, 1]);
            common::until(|| ran[0].load(Ordering::SeqCst) == 1 && pool.queued() == 0);
            assert_eq!(
                ran[1].load(Ordering::SeqCst),
                0,
                "the cancelled request ran"
            );
            assert_eq!(pool.pending(), 0);
            let stats = pool.stats();
            assert_eq!((stats.completed, stats.cancelled), (3, 1));
        },
    );
}

/// `callpool::as_completed` over tickets on the only worker, one of them
/// cancelled (its job still queued, ahead of the others): every ticket
/// comes back once, each live request runs once, on this worker.
#[test]
fn as_completed_over_tickets_with_a_cancelled_one_on_the_only_worker() {
    within(
        "as_completed with a cancelled ticket on the only worker",
        || {
            let pool = ThreadPool::new(1);
            let inner = pool.clone();
            let ran = hit_counters(5);
            let hits = Arc::clone(&ran);
            let outer = pool
                .submit(
                    move |()| {
                        let me = thread::current().id();
                        let tickets: Vec<_> = (0..5usize)
                            .map(|i| {
                                let hits = Arc::clone(&hits);
                                inner
                                    .submit(
                                        move |i: usize| {
                                            hits[i].fetch_add(1, Ordering::SeqCst);
                                            (i, thread::current().id())
                                        },
                                        i,
                                    )
                                    .unwrap()
                            })
                            .collect();
                        assert!(tickets[1].cancel());
                        let mut back = Vec::new();
                        for (key, outcome) in callpool::as_completed(tickets) {
                            match outcome {
                                Ok((i, on)) => {
                                    assert_eq!((i, on), (key, me));
                                    back.push(key);
                                }
                                Err(e) => {
                                    assert_eq!((key, e), (1, TaskError::Cancelled));
                                    back.push(key);
                                }
                            }
                        }
                        back.sort_unstable();
                        back
                    },
                    (),
                )
                .unwrap();
            assert_eq!(outer.wait().unwrap(), [0, 1, 2, 3, 4]);
            let ran: Vec<usize> = ran.iter().map(|h| h.load(Ordering::SeqCst)).collect();
            assert_eq!(ran, [1, 0, 1, 1, 1]);
            common::until(|| pool.queued() == 0);
            let stats = pool.stats();
            assert_eq!((stats.completed, stats.cancelled), (5, 1));
        },
    );
}

/// A scope opened inside a callable on another handle of the same pool
/// (`new_handle`): it is still this worker's pool, so the only worker runs
/// the scope's requests itself; and a scope on a second pool's handle
/// blocks for that pool's workers instead (nothing of it runs here).
#[test]
fn a_scope_on_another_handle_of_the_same_pool_helps_on_the_only_worker() {
    within("a scope on another handle", || {
        let pool = ThreadPool::new(1);
        let other = ThreadPool::new(1);
        let second = pool.new_handle();
        let third = other.clone();
        let ran = hit_counters(8);
        let hits = Arc::clone(&ran);
        let outer = pool
            .submit(
                move |()| {
                    let me = thread::current().id();
                    let (here, there) = (Cell::new(0), Cell::new(0));
                    second.scope(|s| {
                        for i in 0..4usize {
                            let (hits, here) = (&hits, &here);
                            s.put_then(
                                move |i: usize| {
                                    hits[i].fetch_add(1, Ordering::SeqCst);
                                    thread::current().id()
                                },
                                i,
                                move |on| here.set(here.get() + usize::from(on.unwrap() == me)),
                            )
                            .unwrap();
                        }
                    });
                    third.scope(|s| {
                        for i in 4..8usize {
                            let (hits, there) = (&hits, &there);
                            s.put_then(
                                move |i: usize| {
                                    hits[i].fetch_add(1, Ordering::SeqCst);
                                    thread::current().id()
                                },
                                i,
                                move |on| there.set(there.get() + usize::from(on.unwrap() != me)),
                            )
                            .unwrap();
                        }
                    });
                    (here.get(), there.get())
                },
                (),
            )
            .unwrap();
        assert_eq!(outer.wait().unwrap(), (4, 4));
        assert_each_once("scoped requests", &ran);
        assert_eq!(pool.stats().completed, 5);
        assert_eq!(other.stats().completed, 4);
    });
}

/// The first request a helping scope runs on the only worker calls
/// `shutdown_now` on a clone of the pool's handle: the scope's other
/// requests are cancelled to it, once each, none of them runs, the scope
/// ends, and the counts are exact.
#[test]
fn shutdown_now_from_a_helped_request_cancels_its_siblings_once() {
    within("shutdown_now from a helped request", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let closer = Mutex::new(Some(pool.clone()));
        let ran = hit_counters(6);
        let hits = Arc::clone(&ran);
        let outcomes = pool
            .submit(
                move |()| {
                    let ends = Mutex::new(vec![Vec::new(); 6]);
                    inner.scope(|s| {
                        for i in 0..6usize {
                            let (hits, closer, ends) = (&hits, &closer, &ends);
                            s.put_then(
                                move |i: usize| {
                                    hits[i].fetch_add(1, Ordering::SeqCst);
                                    if let Some(closer) = closer.lock().unwrap().take() {
                                        assert!(closer.shutdown_now().is_empty());
                                    }
                                },
                                i,
                                move |outcome| ends.lock().unwrap()[i].push(outcome),
                            )
                            .unwrap();
                        }
                    });
                    ends.into_inner().unwrap()
                },
                (),
            )
            .unwrap();
        let outcomes = outcomes.wait().unwrap();
        let ran: Vec<usize> = ran.iter().map(|h| h.load(Ordering::SeqCst)).collect();
        assert_eq!(ran.iter().sum::<usize>(), 1, "ran: {ran:?}");
        for (i, ends) in outcomes.iter().enumerate() {
            let expected = if ran[i] == 1 {
                Ok(())
            } else {
                Err(TaskError::Cancelled)
            };
            assert_eq!(ends, &[expected], "request {i}");
        }
        common::until(|| pool.stats().threads == 0);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled), (2, 5));
    });
}

/// What a helped request sees of its worker: three levels of scopes on
/// two workers (each waiting worker helps, the other steals), each
/// request recording its worker's index from its context and bumping its
/// worker's state. Every request runs once; each thread always reports the
/// same index, the two threads different ones; the states add up to the
/// requests that ran.
#[test]
fn helped_requests_see_their_workers_index_and_state() {
    within("worker index and state in helped requests", || {
        const FAN: usize = 4;
        let pool = ThreadPool::builder()
            .workers(2)
            .worker_state(|_| 0usize)
            .build()
            .unwrap();
        let seen: Arc<Mutex<HashMap<ThreadId, Vec<usize>>>> = Arc::default();
        let leaves = hit_counters(FAN * FAN * FAN);
        let totals: Arc<Mutex<Vec<usize>>> = Arc::default();
        fn record(cx: &Context<'_>, seen: &Mutex<HashMap<ThreadId, Vec<usize>>>) {
            *cx.worker_state::<usize>().unwrap() += 1;
            let index = cx.worker_index().unwrap();
            seen.lock()
                .unwrap()
                .entry(thread::current().id())
                .or_default()
                .push(index);
        }
        fn level(
            pool: &ThreadPool,
            cx: &Context<'_>,
            depth: u32,
            first: usize,
            seen: &Mutex<HashMap<ThreadId, Vec<usize>>>,
            leaves: &[AtomicUsize],
        ) {
            record(cx, seen);
            if depth == 0 {
                leaves[first].fetch_add(1, Ordering::SeqCst);
                return;
            }
            let width = FAN.pow(depth - 1);
            pool.scope(|s| {
                for k in 0..FAN {
                    s.put_with_context(
                        move |cx: &Context<'_>, first: usize| {
                            level(pool, cx, depth - 1, first, seen, leaves);
                        },
                        first + k * width,
                    )
                    .unwrap();
                }
            });
        }
        let (inner, seen_in, leaves_in) = (pool.clone(), Arc::clone(&seen), Arc::clone(&leaves));
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| level(&inner, cx, 3, 0, &seen_in, &leaves_in),
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_each_once("leaves", &leaves);
        // Read each worker's state: two requests held at once, one per worker.
        let (gate, latch) = common::gate();
        let latch = Arc::new(Mutex::new(Some(latch)));
        for _ in 0..2 {
            let (totals, latch) = (Arc::clone(&totals), Arc::clone(&latch));
            pool.put_request(WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    totals
                        .lock()
                        .unwrap()
                        .push(*cx.worker_state::<usize>().unwrap());
                    if let Some(latch) = latch.lock().unwrap().take() {
                        latch.hold();
                    }
                },
                (),
            ))
            .unwrap();
        }
        gate.await_start();
        common::until(|| totals.lock().unwrap().len() == 2);
        gate.open();
        assert_eq!(pool.wait(), Ok(2));
        let requests = 1 + FAN + FAN * FAN + FAN * FAN * FAN;
        assert_eq!(totals.lock().unwrap().iter().sum::<usize>(), requests);
        let seen = seen.lock().unwrap();
        let mut indexes = Vec::new();
        for (thread, list) in seen.iter() {
            assert!(
                list.iter().all(|&i| i == list[0]),
                "{thread:?} reported indexes {list:?}"
            );
            indexes.push(list[0]);
        }
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!(indexes.len(), seen.len(), "two threads reported one index");
        assert_eq!(seen.values().map(Vec::len).sum::<usize>(), requests);
    });
}

/// Scopes, tickets, `as_completed` and collectors polled with `poll_with`,
/// nested inside callables, while another thread resizes the pool between
/// one and three workers over and over: every leaf runs once, every
/// callback once, and nothing is left pending or queued.
#[test]
fn mixed_helping_waits_while_the_pool_is_resized() {
    const ROUNDS: usize = 20;
    within("nested waits under resizing", || {
        let pool = ThreadPool::new(2);
        let leaves = hit_counters(ROUNDS * FAN * FAN * 3);
        let callbacks = hit_counters(ROUNDS);
        let stop = Arc::new(AtomicBool::new(false));
        let resizer = {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    pool.resize(1 + n % 3).unwrap();
                    n += 1;
                    thread::yield_now();
                }
                pool.resize(2).unwrap();
            })
        };
        for round in 0..ROUNDS {
            let (inner, leaves) = (pool.clone(), Arc::clone(&leaves));
            let hits = Arc::clone(&callbacks);
            pool.put_request(
                WorkRequest::new(
                    move |round: usize| {
                        let base = round * FAN * FAN * 3;
                        (round, mixed(&inner, base, &leaves))
                    },
                    round,
                )
                .on_result(move |_, (round, covered)| {
                    assert_eq!(covered, FAN * FAN * 3);
                    hits[round].fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(ROUNDS));
        stop.store(true, Ordering::SeqCst);
        resizer.join().unwrap();
        assert_each_once("leaves", &leaves);
        assert_each_once("callbacks", &callbacks);
        assert_eq!((pool.pending(), pool.queued()), (0, 0));
        pool.join_all_dismissed_workers();
        let stats = pool.stats();
        let per_round = FAN + FAN * FAN + FAN * FAN + FAN + FAN * FAN;
        assert_eq!(stats.completed as usize, ROUNDS * (1 + per_round));
        assert_eq!(stats.cancelled, 0);
    });

    const FAN: usize = 3;

    /// One round: a scope of `FAN`, each opening a collector drained with
    /// `poll_with` over `FAN` leaves, then tickets waited for through
    /// `as_completed`, each submitting `FAN` tickets it waits for one by
    /// one; returns how many leaves it covered.
    fn mixed(pool: &ThreadPool, base: usize, leaves: &Arc<Vec<AtomicUsize>>) -> usize {
        let covered = Cell::new(0);
        pool.scope(|s| {
            for k in 0..FAN {
                let covered = &covered;
                s.put_then(
                    move |first: usize| {
                        let mut c = pool.collector::<usize>();
                        for j in 0..FAN {
                            let leaves = Arc::clone(leaves);
                            c.put(
                                move |i: usize| {
                                    leaves[i].fetch_add(1, Ordering::SeqCst);
                                    1
                                },
                                first + j,
                            )
                            .unwrap();
                        }
                        let mut got = 0;
                        while c.pending() > 0 {
                            c.poll_with(|_, o| got += o.unwrap());
                            thread::yield_now();
                        }
                        got
                    },
                    base + k * FAN,
                    move |n| covered.set(covered.get() + n.unwrap()),
                )
                .unwrap();
            }
        });
        let tickets: Vec<_> = (0..FAN)
            .map(|k| {
                let (pool2, leaves) = (pool.clone(), Arc::clone(leaves));
                pool.submit(
                    move |first: usize| {
                        let inner: Vec<_> = (0..FAN)
                            .map(|j| {
                                let leaves = Arc::clone(&leaves);
                                pool2
                                    .submit(
                                        move |i: usize| {
                                            leaves[i].fetch_add(1, Ordering::SeqCst);
                                        },
                                        first + j,
                                    )
                                    .unwrap()
                            })
                            .collect();
                        inner
                            .into_iter()
                            .map(|t| t.wait().map(|()| 1).unwrap())
                            .sum::<usize>()
                    },
                    base + FAN * FAN + k * FAN,
                )
                .unwrap()
            })
            .collect();
        for (_, n) in callpool::as_completed(tickets) {
            covered.set(covered.get() + n.unwrap());
        }
        let leaves2 = Arc::clone(leaves);
        let mut squares = pool.as_completed(
            (0..FAN * FAN).map(move |j| base + 2 * FAN * FAN + j),
            2,
            move |&i: &usize| {
                leaves2[i].fetch_add(1, Ordering::SeqCst);
                1usize
            },
        );
        for (_, n) in &mut squares {
            covered.set(covered.get() + n.unwrap());
        }
        covered.get()
    }
}
