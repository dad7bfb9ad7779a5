//! Scoped requests that fork-join (`Scope::put_with_context` with
//! `Context::join`), put children through their context, or stream and
//! join. Timeouts only turn a hang into a failure.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use callpool::{Context, Emitter, TaskError, ThreadPool, WorkRequest};

use common::one_way::{Gate, OpenOnDrop};
use common::{hide_panics_starting_with, within_here, HANG};

const DELIBERATE: &str = "scope_join: deliberate panic";

/// Sums `xs` by halves down to 16 elements, counting each element's visit;
/// the leaf holding element `stop_at` reports it started and waits at `gate`.
fn sum(
    cx: &Context<'_>,
    xs: &[usize],
    hits: &[AtomicUsize],
    stop_at: usize,
    started: &mpsc::SyncSender<()>,
    gate: &Gate,
) -> usize {
    if xs.len() <= 16 {
        for &x in xs {
            hits[x].fetch_add(1, Ordering::SeqCst);
        }
        if xs.contains(&stop_at) {
            let _ = started.try_send(());
            gate.pass();
        }
        return xs.iter().sum();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(
        |cx| sum(cx, left, hits, stop_at, started, gate),
        |cx| sum(cx, right, hits, stop_at, started, gate),
    );
    a + b
}

/// `sum` with no leaf that stops: for the tests that only count visits.
fn sum_all(cx: &Context<'_>, xs: &[usize], hits: &[AtomicUsize]) -> usize {
    let gate = Gate::default();
    gate.open();
    let (started, _) = mpsc::sync_channel(1);
    sum(cx, xs, hits, usize::MAX, &started, &gate)
}

fn each_once(hits: &[AtomicUsize]) -> bool {
    hits.iter().all(|h| h.load(Ordering::SeqCst) == 1)
}

fn body_panics_while_joining(workers: usize) {
    hide_panics_starting_with(DELIBERATE);
    const N: usize = 4096;
    let pool = ThreadPool::new(workers);
    let xs: Vec<usize> = (0..N).collect();
    let hits: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
    let gate = Arc::new(Gate::default());
    let (started_tx, started_rx) = mpsc::sync_channel(1);
    let outcome = within_here("scope with a panicking body", || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let _open = OpenOnDrop(Arc::clone(&gate));
                let (hits, gate, started) = (&hits[..], &*gate, &started_tx);
                s.put_with_context(
                    move |cx: &Context<'_>, xs: &[usize]| sum(cx, xs, hits, N / 3, started, gate),
                    &xs[..],
                )
                .unwrap();
                started_rx.recv_timeout(HANG).expect("the leaf started");
                panic!("{DELIBERATE}: the body");
            })
        }))
    });
    let payload = outcome.expect_err("the body's panic goes on");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("scope_join: deliberate panic: the body")
    );
    // The scope unwound only once the request had joined everything.
    assert!(each_once(&hits), "every element visited exactly once");
    assert_eq!(pool.pending(), 0);
    within_here("wait", || pool.wait()).unwrap();
}

#[test]
fn a_panicking_body_waits_for_a_joining_request_on_one_worker() {
    body_panics_while_joining(1);
}

#[test]
fn a_panicking_body_waits_for_a_joining_request_on_two_workers() {
    body_panics_while_joining(2);
}

/// `shutdown_now` from another handle while a scoped request is deep in
/// joins: the request finishes (its halves run), the queued scoped request
/// behind it is cancelled, and the scope returns.
#[test]
fn shutdown_now_from_another_handle_while_a_scoped_request_joins() {
    for workers in [1, 2] {
        const N: usize = 2048;
        let pool = ThreadPool::new(workers);
        let xs: Vec<usize> = (0..N).collect();
        let hits: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
        let gate = Arc::new(Gate::default());
        let (started_tx, started_rx) = mpsc::sync_channel(1);
        let mut outcomes = Vec::new();
        within_here("scope", || {
            pool.scope(|s| {
                let _open = OpenOnDrop(Arc::clone(&gate));
                let (hits, gate, started) = (&hits[..], &*gate, &started_tx);
                let first = s
                    .put_with_context(
                        move |cx: &Context<'_>, xs: &[usize]| sum(cx, xs, hits, 7, started, gate),
                        &xs[..],
                    )
                    .unwrap();
                started_rx.recv_timeout(HANG).expect("the leaf started");
                // With one worker the second waits in the queue; with two
                // the other worker may be in a half: either way it has not
                // run (it would add `N` to nothing).
                let other = pool.new_handle();
                std::thread::spawn(move || other.shutdown_now())
                    .join()
                    .unwrap();
                gate.open();
                s.wait_with(|id, outcome| outcomes.push((id == first, outcome.ok())));
            });
        });
        assert_eq!(
            outcomes,
            [(true, Some(N * (N - 1) / 2))],
            "{workers} workers"
        );
        assert!(each_once(&hits));
    }
}

/// A join half that panics in a scoped request: the scope sees the
/// request panicked, and returns after the other half is over.
#[test]
fn a_panicking_join_half_reaches_the_scope() {
    hide_panics_starting_with(DELIBERATE);
    for workers in [1, 2, 4] {
        let pool = ThreadPool::new(workers);
        let xs: Vec<usize> = (0..1024).collect();
        let visited = AtomicUsize::new(0);
        let mut seen = Vec::new();
        within_here("scope", || {
            pool.scope(|s| {
                let visited = &visited;
                s.put_with_context(
                    move |cx: &Context<'_>, xs: &[usize]| {
                        let (left, _) = xs.split_at(xs.len() / 2);
                        let (a, ()) = cx.join(
                            |_| {
                                for _ in left {
                                    visited.fetch_add(1, Ordering::SeqCst);
                                }
                                left.len()
                            },
                            |_| panic!("{DELIBERATE}: b"),
                        );
                        a
                    },
                    &xs[..],
                )
                .unwrap();
                s.wait_with(|_, outcome| {
                    seen.push(matches!(outcome, Err(TaskError::Panicked(_))));
                });
            });
        });
        assert_eq!(seen, [true], "{workers} workers");
        assert_eq!(visited.load(Ordering::SeqCst), 512);
    }
}

/// What a scoped request puts through its context goes on the pool
/// handle: counted in its `pending`, not waited for by the scope.
#[test]
fn children_of_a_scoped_request_go_on_the_handle() {
    let pool = ThreadPool::new(2);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (child_started_tx, child_started_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicUsize::new(0));
    let local = 5usize;
    let mut got = Vec::new();
    let release_rx = std::sync::Mutex::new(Some(release_rx));
    within_here("scope", || {
        pool.scope(|s| {
            let (release_rx, child_started_tx, ran) = (&release_rx, &child_started_tx, &ran);
            s.put_with_context(
                move |cx: &Context<'_>, n: &usize| {
                    let release = release_rx.lock().unwrap().take().unwrap();
                    let started = child_started_tx.clone();
                    let ran = Arc::clone(ran);
                    cx.put(
                        WorkRequest::new(
                            move |()| {
                                started.send(()).unwrap();
                                release.recv_timeout(HANG).unwrap();
                            },
                            (),
                        )
                        .on_result(move |_, ()| {
                            ran.fetch_add(1, Ordering::SeqCst);
                        }),
                    )
                    .unwrap();
                    *n * 2
                },
                &local,
            )
            .unwrap();
            s.wait_with(|_, outcome| got.push(outcome.unwrap()));
        });
    });
    assert_eq!(got, [10]);
    child_started_rx.recv_timeout(HANG).unwrap();
    assert_eq!(pool.pending(), 1, "the child is the handle's");
    release_tx.send(()).unwrap();
    within_here("wait", || pool.wait()).unwrap();
    assert_eq!(pool.pending(), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

fn stream(n: usize, out: &Emitter<'_, usize>) -> Result<(), std::convert::Infallible> {
    let cx = out.context();
    let (_, right) = cx.join(
        |_| {
            for i in 0..n {
                out.emit(i).unwrap();
            }
        },
        |_| (n..2 * n).sum::<usize>(),
    );
    out.emit(right).unwrap();
    Ok(())
}

/// A streaming callable that emits from the first half of a join, and
/// the second half's value after it.
#[test]
fn a_streaming_callable_emits_from_a_join() {
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        let (tx, rx) = mpsc::channel();
        pool.put_request(
            WorkRequest::streaming(stream, 100).on_result(move |_, item| tx.send(item).unwrap()),
        )
        .unwrap();
        within_here("wait", || pool.wait()).unwrap();
        let items: Vec<usize> = rx.try_iter().collect();
        let mut want: Vec<usize> = (0..100).collect();
        want.push((100..200).sum());
        assert_eq!(items, want);
    }
}

/// A scope opened in a scoped request's callable, on two workers: the
/// other worker runs its requests.
#[test]
fn a_scope_inside_a_scoped_request_with_a_free_worker() {
    let pool = ThreadPool::new(2);
    let xs: Vec<usize> = (0..100).collect();
    let mut total = 0;
    within_here("scope", || {
        pool.scope(|s| {
            let pool = &pool;
            s.put_with_context(
                move |_: &Context<'_>, xs: &[usize]| {
                    pool.scope(|inner| {
                        let (l, r) = xs.split_at(50);
                        inner.put(|l: &[usize]| l.iter().sum::<usize>(), l).unwrap();
                        inner.put(|r: &[usize]| r.iter().sum::<usize>(), r).unwrap();
                        let mut t = 0;
                        inner.wait_with(|_, v| t += v.unwrap());
                        t
                    })
                },
                &xs[..],
            )
            .unwrap();
            s.wait_with(|_, v| total += v.unwrap());
        });
    });
    assert_eq!(total, 4950);
}

/// `close` from the scope's body on its own handle while a scoped request
/// joins: the close lets it finish, then the scope drains its outcome.
#[test]
fn close_from_the_body_while_a_scoped_request_joins() {
    for workers in [0, 1, 2] {
        const N: usize = 1024;
        let pool = ThreadPool::new(workers);
        let xs: Vec<usize> = (0..N).collect();
        let hits: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
        let mut outcomes = Vec::new();
        let closed = within_here("scope", || {
            pool.scope(|s| {
                let hits = &hits[..];
                s.put_with_context(
                    move |cx: &Context<'_>, xs: &[usize]| sum_all(cx, xs, hits),
                    &xs[..],
                )
                .unwrap();
                let closed = pool.close();
                s.wait_with(|_, outcome| outcomes.push(outcome));
                closed
            })
        });
        if workers == 0 {
            assert!(
                matches!(outcomes[..], [Err(TaskError::Cancelled)]),
                "{outcomes:?}"
            );
            assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 0));
        } else {
            assert!(closed.is_ok(), "{closed:?}");
            assert!(
                matches!(outcomes[..], [Ok(v)] if v == N * (N - 1) / 2),
                "{outcomes:?}"
            );
            assert!(each_once(&hits));
        }
    }
}

fn tree(cx: &Context<'_>, xs: &[usize], hits: &[AtomicUsize]) -> usize {
    if xs.len() <= 8 {
        for &x in xs {
            hits[x].fetch_add(1, Ordering::SeqCst);
        }
        if xs[0] % 64 == 0 {
            let _ = cx.put(WorkRequest::new(|x: usize| x, xs[0]));
        }
        return xs.iter().sum();
    }
    let (l, r) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(|cx| tree(cx, l, hits), |cx| tree(cx, r, hits));
    a + b
}

/// Many scoped fork-join requests while another thread resizes the pool
/// and then shuts it down at once: every request that ran visited each of
/// its elements once, every other was cancelled unrun, and each scope
/// returns.
#[test]
fn scoped_joins_through_resizes_and_a_shutdown_now() {
    for round in 0..20 {
        const N: usize = 512;
        const REQS: usize = 16;
        let pool = ThreadPool::new(3);
        let other = pool.new_handle();
        let data: Vec<Vec<usize>> = (0..REQS).map(|_| (0..N).collect()).collect();
        let hits: Vec<Vec<AtomicUsize>> = (0..REQS)
            .map(|_| (0..N).map(|_| AtomicUsize::new(0)).collect())
            .collect();
        let mut outcomes = vec![None; REQS];
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let killer = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            other.resize(1).unwrap();
            other.resize(4).unwrap();
            if round % 2 == 0 {
                other.shutdown_now();
            }
        });
        within_here("scope", || {
            pool.scope(|s| {
                let mut ids = Vec::new();
                for (xs, hits) in data.iter().zip(&hits) {
                    let hits = &hits[..];
                    match s.put_with_context(
                        move |cx: &Context<'_>, xs: &[usize]| tree(cx, xs, hits),
                        &xs[..],
                    ) {
                        Ok(id) => ids.push(Some(id)),
                        Err(_) => ids.push(None),
                    }
                    if ids.len() == 2 {
                        go_tx.send(()).unwrap();
                    }
                }
                s.wait_with(|id, outcome| {
                    let i = ids.iter().position(|&x| x == Some(id)).unwrap();
                    outcomes[i] = Some(outcome.map_err(|e| format!("{e:?}")));
                });
            });
        });
        killer.join().unwrap();
        for (i, outcome) in outcomes.iter().enumerate() {
            let visits: Vec<usize> = hits[i].iter().map(|h| h.load(Ordering::SeqCst)).collect();
            match outcome {
                Some(Ok(v)) => {
                    assert_eq!(*v, N * (N - 1) / 2);
                    assert!(visits.iter().all(|&n| n == 1), "request {i}: {visits:?}");
                }
                Some(Err(e)) => {
                    assert_eq!(e, "Cancelled");
                    assert!(visits.iter().all(|&n| n == 0), "request {i}");
                }
                None => assert!(visits.iter().all(|&n| n == 0), "refused {i}"),
            }
        }
        if round % 2 == 1 {
            within_here("wait", || pool.wait()).unwrap();
            assert_eq!(pool.pending(), 0);
        }
    }
}

/// Scoped fork-join on an autoscaling pool that starts with no worker and
/// retires idle ones at once, and on a bounded queue of one.
#[test]
fn scoped_joins_on_an_autoscaling_and_a_bounded_pool() {
    let pools = [
        ThreadPool::builder()
            .min_workers(0)
            .max_workers(3)
            .keep_alive(std::time::Duration::from_millis(1))
            .build()
            .unwrap(),
        ThreadPool::builder()
            .workers(2)
            .queue_capacity(1)
            .build()
            .unwrap(),
        ThreadPool::builder()
            .workers(2)
            .result_capacity(1)
            .build()
            .unwrap(),
    ];
    for pool in &pools {
        for _ in 0..20 {
            const N: usize = 1024;
            let data: Vec<Vec<usize>> = (0..6).map(|_| (0..N).collect()).collect();
            let hits: Vec<Vec<AtomicUsize>> = (0..6)
                .map(|_| (0..N).map(|_| AtomicUsize::new(0)).collect())
                .collect();
            let mut total = 0;
            within_here("scope", || {
                pool.scope(|s| {
                    for (xs, hits) in data.iter().zip(&hits) {
                        let hits = &hits[..];
                        s.put_with_context(
                            move |cx: &Context<'_>, xs: &[usize]| tree(cx, xs, hits),
                            &xs[..],
                        )
                        .unwrap();
                    }
                    s.wait_with(|_, v| total += v.unwrap());
                });
            });
            assert_eq!(total, 6 * N * (N - 1) / 2);
            assert!(hits.iter().all(|h| each_once(h)));
            within_here("wait", || pool.wait()).unwrap();
        }
    }
}

/// A streaming callable whose second half panics (on another worker, or
/// here): the items the first half emitted arrive first, then the error
/// callback hears the panic once; on a result queue of one.
#[test]
fn a_streaming_join_whose_second_half_panics() {
    hide_panics_starting_with(DELIBERATE);
    for workers in [1, 2, 3] {
        let pool = ThreadPool::builder()
            .workers(workers)
            .result_capacity(1)
            .build()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err_tx = tx.clone();
        pool.put_request(
            WorkRequest::streaming(
                |n: usize, out: &Emitter<'_, usize>| -> Result<(), std::convert::Infallible> {
                    out.context().join(
                        |_| {
                            for i in 0..n {
                                out.emit(i).unwrap();
                            }
                        },
                        |_| panic!("{DELIBERATE}: stream b"),
                    );
                    unreachable!("the join panics");
                },
                50,
            )
            .on_result(move |_, item| tx.send(Some(item)).unwrap())
            .on_error(move |_, err| {
                assert!(matches!(err, TaskError::Panicked(_)));
                err_tx.send(None).unwrap();
            }),
        )
        .unwrap();
        within_here("wait", || pool.wait()).unwrap();
        let got: Vec<Option<usize>> = rx.try_iter().collect();
        let mut want: Vec<Option<usize>> = (0..50).map(Some).collect();
        want.push(None);
        assert_eq!(got, want, "{workers} workers");
    }
}

/// `id` in a scoped request's context, and in both halves of its join, is
/// the id its `put_with_context` returned.
#[test]
fn a_scoped_requests_halves_say_its_id() {
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        let local = 3u8;
        let mut seen = Vec::new();
        let mut put = Vec::new();
        within_here("scope", || {
            pool.scope(|s| {
                for _ in 0..4 {
                    put.push(
                        s.put_with_context(
                            |cx: &Context<'_>, l: &u8| {
                                let (a, b) = cx.join(|cx| cx.id(), |cx| cx.id());
                                assert_eq!(*l, 3);
                                (cx.id(), a, b)
                            },
                            &local,
                        )
                        .unwrap(),
                    );
                }
                s.wait_with(|id, ids| seen.push((id, ids.unwrap())));
            });
        });
        seen.sort_by_key(|(id, _)| id.value());
        assert_eq!(seen.len(), 4);
        for (i, (id, (c, a, b))) in seen.into_iter().enumerate() {
            assert_eq!(id, put[i]);
            assert_eq!((c, a, b), (id, id, id));
        }
    }
}

/// A scoped request that joins counts once in the statistics, however
/// many halves other workers ran.
#[test]
fn a_scoped_joining_request_counts_once() {
    for workers in [1, 2, 4] {
        const N: usize = 4096;
        let pool = ThreadPool::new(workers);
        let xs: Vec<usize> = (0..N).collect();
        let hits: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
        within_here("scope", || {
            pool.scope(|s| {
                let hits = &hits[..];
                s.put_with_context(
                    move |cx: &Context<'_>, xs: &[usize]| sum_all(cx, xs, hits),
                    &xs[..],
                )
                .unwrap();
                s.wait_with(|_, v| assert_eq!(v.unwrap(), N * (N - 1) / 2));
            });
        });
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.failed, stats.panicked),
            (1, 0, 0),
            "{workers} workers"
        );
    }
}

/// A join half of a scoped request shuts the pool down at once (through
/// another handle, from the worker): the request finishes, the scoped
/// request queued behind it is cancelled, and the scope returns.
#[test]
fn a_join_half_shuts_the_pool_down_now() {
    let pool = ThreadPool::new(1);
    let local = 7usize;
    let mut outcomes = Vec::new();
    let other = std::sync::Mutex::new(Some(pool.new_handle()));
    let both_put = Arc::new(Gate::default());
    within_here("scope", || {
        pool.scope(|s| {
            let _open = OpenOnDrop(Arc::clone(&both_put));
            let (other, both_put) = (&other, &*both_put);
            let first = s
                .put_with_context(
                    move |cx: &Context<'_>, l: &usize| {
                        // The second is queued behind this one by now.
                        both_put.pass();
                        let (a, b) = cx.join(
                            |_| *l,
                            move |_| {
                                let other = other.lock().unwrap().take().unwrap();
                                other.shutdown_now().len()
                            },
                        );
                        a + b
                    },
                    &local,
                )
                .unwrap();
            let second = s.put(|l: &usize| *l, &local).unwrap();
            both_put.open();
            s.wait_with(|id, outcome| outcomes.push((id, outcome.map_err(|e| format!("{e:?}")))));
            outcomes.sort_by_key(|(id, _)| id.value());
            assert_eq!(
                outcomes,
                [(first, Ok(7)), (second, Err("Cancelled".to_owned()))]
            );
        });
    });
}
