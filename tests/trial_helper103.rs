//! An adversarial trial of the newest parts of the crate: `execute` and its
//! forms, the hand-back of executed requests' emptied boxes, and the
//! collector's timed puts, combined with resizing, cancelling, bounded
//! queues and waits from several threads. Every count is exact; time only
//! turns a hang into a failure.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use callpool::{Context, PutError, ThreadPool, WorkRequest};
use common::{assert_each_once, counter, gate, hide_panics_starting_with, hit_counters, within};
use common::{until, Dropped};

const DELIBERATE: &str = "trial103: deliberate panic";

/// A value whose `Drop` counts, then panics: a capture that misbehaves
/// wherever the pool lets go of it.
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !thread::panicking() {
            panic!("{DELIBERATE} in a Drop");
        }
    }
}

/// A handle dropped while a worker is kept busy by another handle's
/// requests: the result it left unpolled is discarded with it, once the
/// worker has moved past its requests, not kept for as long as that worker
/// never runs out of work. The worker ran one executed request of the dropped handle first,
/// so its thread-local batch of emptied boxes (`SPENT`) holds that
/// handle's inbox, and with it the unpolled result in its result queue.
#[test]
fn a_busy_worker_keeps_no_dropped_handle_alive() {
    within("a busy worker and a dropped handle", || {
        let pool = ThreadPool::new(1);
        let (first, first_latch) = gate();
        pool.execute(move || first_latch.hold()).unwrap();
        first.await_start();

        let dropped = counter();
        let other = pool.new_handle();
        other.execute(|| {}).unwrap();
        let d = Arc::clone(&dropped);
        other
            .put_request(WorkRequest::new(move |_: ()| Dropped(d), ()))
            .unwrap();
        // More than a batch of the busy handle's requests, then one that
        // holds the worker.
        for _ in 0..200 {
            pool.put_request(WorkRequest::new(|_: ()| (), ())).unwrap();
        }
        let (last, last_latch) = gate();
        pool.execute(move || last_latch.hold()).unwrap();
        first.open();
        last.await_start();
        // Everything before the held request has run; the handle's result
        // waits unpolled. Its last handle goes now: nothing else holds its
        // inbox, so the result goes with it.
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(other);
        let seen = dropped.load(Ordering::SeqCst);
        last.open();
        pool.wait().unwrap();
        assert_eq!(
            seen, 1,
            "the dropped handle's unpolled result was still alive while the worker ran \
             another handle's work"
        );
        pool.shutdown().unwrap();
    });
}

/// Each executed closure's capture is dropped exactly once, wherever the
/// request ends: run on a worker, cancelled by `cancel(id)` or
/// `cancel_queued`, while workers are created and dismissed meanwhile.
/// The statistics count each request exactly once.
#[test]
fn executed_requests_end_once_under_cancel_and_resize() {
    within("cancel and resize", || {
        let pool = ThreadPool::new(2);
        let mut rng = common::Rng(0x5eed_1031);
        let mut total_ran = 0u64;
        let mut total_cancelled = 0u64;
        for round in 0..200 {
            let n = 200;
            let ran = hit_counters(n);
            let drops = counter();
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                let ran = Arc::clone(&ran);
                let d = Dropped(Arc::clone(&drops));
                let id = match rng.below(3) {
                    0 => pool.execute(move || {
                        let _d = &d;
                        ran[i].fetch_add(1, Ordering::SeqCst);
                    }),
                    1 => pool.try_execute(move || {
                        let _d = &d;
                        ran[i].fetch_add(1, Ordering::SeqCst);
                    }),
                    _ => pool.execute_timeout(
                        move || {
                            let _d = &d;
                            ran[i].fetch_add(1, Ordering::SeqCst);
                        },
                        Duration::from_secs(60),
                    ),
                }
                .unwrap();
                ids.push(id);
                if i % 50 == 25 {
                    match rng.below(4) {
                        0 => pool.create_workers(1).unwrap(),
                        1 => {
                            if pool.workers() > 1 {
                                pool.dismiss_workers(1);
                            }
                        }
                        _ => {}
                    }
                }
            }
            let mut cancelled = vec![false; n];
            let mut count = 0;
            for (i, id) in ids.iter().enumerate() {
                if rng.chance(30) && pool.cancel(*id) {
                    cancelled[i] = true;
                    count += 1;
                }
            }
            if round % 4 == 0 {
                count += pool.cancel_queued();
            }
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(pool.pending(), 0);
            let ran_count = ran.iter().filter(|h| h.load(Ordering::SeqCst) == 1).count();
            assert!(
                ran.iter().all(|h| h.load(Ordering::SeqCst) <= 1),
                "ran twice"
            );
            for (i, c) in cancelled.iter().enumerate() {
                if *c {
                    assert_eq!(ran[i].load(Ordering::SeqCst), 0, "a cancelled request ran");
                }
            }
            assert_eq!(
                ran_count + count,
                n,
                "round {round}: each ran or was cancelled"
            );
            assert_eq!(drops.load(Ordering::SeqCst), n, "each capture dropped once");
            total_ran += ran_count as u64;
            total_cancelled += count as u64;
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled),
                (total_ran, total_cancelled),
                "round {round}"
            );
            // Workers back to two for the next round.
            let workers = pool.workers();
            if workers < 2 {
                pool.create_workers(2 - workers).unwrap();
            } else if workers > 2 {
                pool.dismiss_workers(workers - 2);
            }
        }
        pool.shutdown().unwrap();
    });
}

/// Several threads execute on clones of one handle while others wait on
/// it: every wait returns, each request runs exactly once, and a wait that
/// returns after the last execute has returned finds everything run.
#[test]
fn waits_from_several_threads_cover_every_execute() {
    within("waits from several threads", || {
        let pool = ThreadPool::new(2);
        for _round in 0..40 {
            let n = 4 * 500;
            let hits = hit_counters(n);
            let barrier = Arc::new(Barrier::new(6));
            let stop = Arc::new(AtomicBool::new(false));
            let mut putters = Vec::new();
            for t in 0..4 {
                let (pool, hits, barrier) = (pool.clone(), Arc::clone(&hits), Arc::clone(&barrier));
                putters.push(thread::spawn(move || {
                    barrier.wait();
                    for k in 0..500 {
                        let i = t * 500 + k;
                        let hits = Arc::clone(&hits);
                        pool.execute_with_context(move |cx: &Context<'_>| {
                            let hits = Arc::clone(&hits);
                            // Half of them end in a child.
                            if i % 2 == 0 {
                                cx.execute(move || {
                                    hits[i].fetch_add(1, Ordering::SeqCst);
                                })
                                .unwrap();
                            } else {
                                hits[i].fetch_add(1, Ordering::SeqCst);
                            }
                        })
                        .unwrap();
                    }
                }));
            }
            let mut waiters = Vec::new();
            for _ in 0..2 {
                let (pool, barrier, stop) = (pool.clone(), Arc::clone(&barrier), Arc::clone(&stop));
                waiters.push(thread::spawn(move || {
                    barrier.wait();
                    while !stop.load(Ordering::SeqCst) {
                        assert_eq!(pool.wait(), Ok(0));
                    }
                }));
            }
            for p in putters {
                p.join().unwrap();
            }
            assert_eq!(pool.wait(), Ok(0));
            assert_each_once("executed request", &hits);
            stop.store(true, Ordering::SeqCst);
            for w in waiters {
                w.join().unwrap();
            }
        }
        assert_eq!(pool.stats().completed, 40 * (2000 + 1000));
        pool.shutdown().unwrap();
    });
}

/// A capture whose `Drop` panics: on the worker (after the callable ran),
/// on a canceller, in a sweep of another handle's requests. The panic
/// never reaches the user's thread, no worker dies, and each capture is
/// dropped once.
#[test]
fn panicking_drops_of_captures_are_contained_everywhere() {
    hide_panics_starting_with(DELIBERATE);
    within("panicking drops", || {
        let pool = ThreadPool::new(2);
        let drops = counter();
        // On the worker, after the callable ran: counted as a panic.
        for _ in 0..100 {
            let p = PanicsOnDrop(Arc::clone(&drops));
            pool.execute(move || {
                let _p = &p;
            })
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(0));
        assert_eq!(drops.load(Ordering::SeqCst), 100);
        assert_eq!(pool.workers(), 2);
        assert_eq!(pool.stats().panicked, 100);

        // On the canceller.
        let (held, latch) = gate();
        let (held2, latch2) = gate();
        pool.execute(move || latch.hold()).unwrap();
        pool.execute(move || latch2.hold()).unwrap();
        held.await_start();
        held2.await_start();
        let mut ids = Vec::new();
        for _ in 0..100 {
            let p = PanicsOnDrop(Arc::clone(&drops));
            ids.push(
                pool.execute(move || {
                    let _p = &p;
                    unreachable!("cancelled");
                })
                .unwrap(),
            );
        }
        for id in &ids[..50] {
            assert!(pool.cancel(*id));
        }
        assert_eq!(pool.cancel_queued(), 50);
        assert_eq!(drops.load(Ordering::SeqCst), 200);
        // In a sweep: another handle's shutdown_now.
        let other = pool.new_handle();
        for _ in 0..100 {
            let p = PanicsOnDrop(Arc::clone(&drops));
            other
                .execute(move || {
                    let _p = &p;
                    unreachable!("swept");
                })
                .unwrap();
        }
        held.open();
        held2.open();
        // Let the helds go before the sweep, so the queued ones may run or
        // be swept; either way each capture is dropped once.
        let handed_back = pool.shutdown_now();
        assert!(handed_back.is_empty());
        assert_eq!(other.wait(), Ok(0));
        assert_eq!(other.pending(), 0);
        assert_eq!(drops.load(Ordering::SeqCst), 300);
    });
}

/// `execute` on a full bounded queue with no worker to empty it is
/// refused with `NoWorkers` rather than blocking for ever; `execute_timeout`
/// likewise, before its time is up; nothing refused stays pending.
#[test]
fn execute_on_a_full_queue_without_workers_is_refused() {
    within("no workers", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(2)
            .build()
            .unwrap();
        pool.execute(|| {}).unwrap();
        pool.execute(|| {}).unwrap();
        assert!(matches!(pool.execute(|| {}), Err(PutError::NoWorkers(_))));
        assert!(matches!(
            pool.execute_timeout(|| {}, Duration::from_secs(600)),
            Err(PutError::NoWorkers(_))
        ));
        assert!(matches!(pool.try_execute(|| {}), Err(PutError::Full(_))));
        assert_eq!(pool.pending(), 2);
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(0));
        assert_eq!(pool.stats().completed, 2);
    });
}

/// An executed closure that holds a clone of its own pool's handle, run
/// after every other handle is gone: the last handle is dropped on the
/// worker, inside the request. The pool closes, the worker leaves, nothing
/// hangs or panics, and the closure ran once.
#[test]
fn the_last_handle_dropped_inside_an_executed_request() {
    within("last handle dropped on a worker", || {
        for _ in 0..100 {
            let stopped = counter();
            let s = Arc::clone(&stopped);
            let pool = ThreadPool::builder()
                .workers(2)
                .on_worker_stop(move |_| {
                    s.fetch_add(1, Ordering::SeqCst);
                })
                .build()
                .unwrap();
            let ran = counter();
            let (tx, rx) = mpsc::channel::<()>();
            let mine = pool.clone();
            let r = Arc::clone(&ran);
            pool.execute(move || {
                let _ = rx.recv();
                // A few more executes on the handle it holds.
                for _ in 0..100 {
                    mine.execute(|| {}).unwrap();
                }
                r.fetch_add(1, Ordering::SeqCst);
                drop(mine);
            })
            .unwrap();
            drop(pool);
            drop(tx);
            until(|| stopped.load(Ordering::SeqCst) == 2);
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        }
    });
}

/// `Collector::put_timeout` waiting for room while a worker is stuck on
/// the handle's full result queue handles the handle's ready results, and
/// one of their callbacks panics: the panic passes through, and nothing
/// was put. The collector must not count the request as pending, nor
/// hand out an outcome under an id that no put returned (as
/// `Collector::put` makes sure of, in the same case).
#[test]
fn a_callback_panic_during_a_timed_collector_put_leaves_nothing_pending() {
    hide_panics_starting_with(DELIBERATE);
    within("timed collector put and a panicking callback", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .result_capacity(1)
            .build()
            .unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let a = Arc::clone(&armed);
        // R1's result fills the result queue; its callback panics once armed.
        pool.put_request(WorkRequest::new(|_: ()| 1u32, ()).on_result(move |_, _| {
            if a.load(Ordering::SeqCst) {
                panic!("{DELIBERATE} in a callback");
            }
        }))
        .unwrap();
        // R2 runs, and its worker is stuck sending its result.
        let (ran_tx, ran_rx) = mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                ran_tx.send(()).unwrap();
                2u32
            },
            (),
        ))
        .unwrap();
        ran_rx.recv().unwrap();
        // R3 fills the request queue (the worker holds R2).
        pool.put_request(WorkRequest::new(|_: ()| 3u32, ()))
            .unwrap();
        armed.store(true, Ordering::SeqCst);

        let mut collector = pool.collector::<u32>();
        let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            collector.put_timeout(|n: u32| n, 7, Duration::from_secs(60))
        }));
        assert!(put.is_err(), "the callback's panic passes through the put");
        armed.store(false, Ordering::SeqCst);
        assert_eq!(
            collector.pending(),
            0,
            "nothing was put, so nothing is pending"
        );
        assert_eq!(pool.wait(), Ok(2));
        // Whatever arrives, no outcome comes out under an id no put returned.
        assert_eq!(collector.next_outcome(), None);
        let id = collector
            .put_timeout(|n: u32| n, 8, Duration::from_secs(60))
            .unwrap();
        assert_eq!(collector.next_outcome(), Some((id, Ok(8))));
        assert_eq!(collector.next_outcome(), None);
    });
}
