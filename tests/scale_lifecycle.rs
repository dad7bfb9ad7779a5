//! An autoscaling pool's workers coming and going under mixed work (puts,
//! children, joins, batches, scopes, resizes and dismissals): every
//! request runs once, `wait` counts them all, and the pool goes back to
//! its minimum.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use callpool::{Context, ThreadPool, WorkRequest};
use common::{rounds, until};

fn pool(name: &str, min: usize, max: usize, keep_alive: Duration) -> ThreadPool {
    ThreadPool::builder()
        .workers(min)
        .min_workers(min)
        .max_workers(max)
        .keep_alive(keep_alive)
        .thread_name(name)
        .build()
        .unwrap()
}

/// One round of mixed work; returns how many requests `wait` must count.
fn mixed_round(pool: &ThreadPool, round: usize, hits: &Arc<AtomicUsize>) -> usize {
    let mut expected = 0;
    // A parent that waits for its child: the pool must grow for it.
    let h = Arc::clone(hits);
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            let (tx, rx) = mpsc::channel::<()>();
            let h2 = Arc::clone(&h);
            cx.put(WorkRequest::new(
                move |_: ()| {
                    h2.fetch_add(1, Ordering::SeqCst);
                    tx.send(()).unwrap_or(());
                },
                (),
            ))
            .unwrap();
            assert!(rx.recv_timeout(common::HANG).is_ok(), "child never ran");
            h.fetch_add(1, Ordering::SeqCst);
        },
        (),
    ))
    .unwrap();
    expected += 2;
    // Joins, with a child put beside them.
    if round % 2 == 0 {
        let h = Arc::clone(hits);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let (a, b) = cx.join(|_| 1usize, |_| 2usize);
                assert_eq!((a, b), (1, 2));
                let h2 = Arc::clone(&h);
                cx.put(WorkRequest::new(
                    move |_: ()| {
                        h2.fetch_add(1, Ordering::SeqCst);
                    },
                    (),
                ))
                .unwrap();
                h.fetch_add(1, Ordering::SeqCst);
            },
            (),
        ))
        .unwrap();
        expected += 2;
    }
    // A batch.
    if round % 3 == 0 {
        let h = Arc::clone(hits);
        let batch = callpool::make_requests(
            move |_: usize| {
                h.fetch_add(1, Ordering::SeqCst);
            },
            0..5usize,
            |_, _| {},
            |_, _| panic!("batch member failed"),
        );
        pool.put_batch(batch).unwrap();
        expected += 5;
    }
    // Plain puts.
    for _ in 0..(round % 4) {
        let h = Arc::clone(hits);
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                h.fetch_add(1, Ordering::SeqCst);
            },
            (),
        ))
        .unwrap();
        expected += 1;
    }
    expected
}

/// Mixed work on a pool of 1 to 3 workers with a short keep-alive, many
/// rounds, pauses of varied length between them: each round's requests
/// all run once, and the pool goes back to its minimum each time.
#[test]
fn mixed_work_runs_once_and_the_pool_shrinks_back() {
    const NAME: &str = "life-mix";
    let pool = Arc::new(pool(NAME, 1, 3, Duration::from_millis(1)));
    let hits = Arc::new(AtomicUsize::new(0));
    let mut total = 0;
    let on = Arc::clone(&pool);
    rounds("mixed work", 300, move |round| {
        let expected = mixed_round(&on, round, &hits);
        assert_eq!(on.wait(), Ok(expected), "round {round}");
        total += expected;
        assert_eq!(hits.load(Ordering::SeqCst), total, "round {round}");
        if round % 5 == 0 {
            until(|| on.workers() == 1);
        } else {
            std::thread::sleep(Duration::from_micros((round as u64 % 7) * 150));
        }
    });
    until(|| pool.workers() == 1 && pool.threads() == 1);
}

/// Scoped puts that each wait for the next one to start: the pool grows
/// to run them, then shrinks back.
#[test]
fn scoped_requests_grow_and_shrink() {
    let pool = Arc::new(pool("life-scope", 1, 4, Duration::from_millis(1)));
    let on = Arc::clone(&pool);
    rounds("scoped", 200, move |round| {
        let barrier = std::sync::Barrier::new(3);
        let mut n = 0;
        on.scope(|s| {
            for _ in 0..3 {
                s.put(
                    |b: &std::sync::Barrier| {
                        b.wait();
                    },
                    &barrier,
                )
                .unwrap();
            }
            s.wait_with(|_, r| {
                r.unwrap();
                n += 1;
            });
        });
        assert_eq!(n, 3, "round {round}");
        if round % 4 == 0 {
            until(|| on.workers() == 1);
        }
    });
    until(|| pool.workers() == 1);
}

/// The pool grows and shrinks under resizes and dismissals racing puts
/// and retirements; every request runs once, and it ends at its minimum.
#[test]
fn resizes_and_dismissals_racing_growth() {
    let pool = Arc::new(pool("life-resize", 2, 4, Duration::from_micros(300)));
    let hits = Arc::new(AtomicUsize::new(0));
    let mut total = 0;
    let on = Arc::clone(&pool);
    rounds("resize race", 300, move |round| {
        let expected = mixed_round(&on, round, &hits);
        match round % 5 {
            0 => {
                on.dismiss_workers(1);
            }
            1 => on.resize(3).unwrap(),
            2 => on.create_workers(1).unwrap_or(()),
            3 => on.resize(2).unwrap(),
            _ => {}
        }
        // A dismissal may leave it with no worker: start one then.
        if on.workers() == 0 {
            on.create_workers(1).unwrap();
        }
        assert_eq!(on.wait(), Ok(expected), "round {round}");
        total += expected;
        assert_eq!(hits.load(Ordering::SeqCst), total, "round {round}");
    });
    pool.resize(2).unwrap();
    pool.create_workers(2).unwrap();
    until(|| pool.workers() == 2);
}

/// A request that waits, in its callable, for the pool to shrink back to
/// its minimum, put at times that sweep across the moment the idle
/// workers' keep-alive passes (they are told to stay): if the put grows
/// the pool while one of them is on its way to sleep, and the new worker
/// takes the request, the idle one must start its keep-alive again and
/// leave, or the request waits for ever. (Without `Slept::Rearm` and
/// `RequestQueue::rouse_unarmed` this hung in each of 4 runs.)
#[test]
fn a_request_waiting_for_the_pool_to_shrink_while_the_idle_worker_is_told_to_stay() {
    for min in [1usize, 2] {
        let pool = pool("life-stay", min, min + 1, Duration::from_millis(1));
        let watcher = pool.new_handle();
        rounds(
            "the pool to shrink under a running request",
            300,
            move |round| {
                let watcher = watcher.clone();
                // A hang in the callable fails its `until`, and so the
                // request, whose error fails the test here.
                pool.put_request(
                    WorkRequest::new(move |_: ()| until(|| watcher.workers() == min), ())
                        .on_error(|_, e| panic!("the request failed: {e:?}")),
                )
                .unwrap();
                assert_eq!(pool.wait(), Ok(1), "min {min} round {round}");
                until(|| pool.workers() == min);
                std::thread::sleep(Duration::from_micros(500 + (round as u64 % 40) * 25));
            },
        );
    }
}
