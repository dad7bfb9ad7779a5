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
use common::PanicsOnDrop;
use common::{assert_each_once, counter, gate, hide_panics_starting_with, hit_counters, within};
use common::{until, Dropped};

const DELIBERATE: &str = "execute_adversarial: deliberate panic";

const CHILD_ENV: &str = "EXECUTE_ADVERSARIAL_CHILD";

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

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
                        1 if pool.workers() > 1 => {
                            pool.dismiss_workers(1);
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
        for _round in 0..100 {
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
        assert_eq!(pool.stats().completed, 100 * (2000 + 1000));
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
            let p = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
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
            let p = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
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
            let p = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
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

/// A put blocked on a full bounded queue (every worker held) gets the room
/// that `cancel`, `cancel_queued` free: the blocked `execute` and
/// `execute_timeout` return while the worker is still held, and every
/// request ends once: run, or cancelled.
#[test]
fn cancelling_frees_room_for_a_blocked_execute() {
    within("room freed by cancel", || {
        for round in 0..50 {
            let (pool, held) = common::held_worker(1);
            let ran = hit_counters(3);
            let r = Arc::clone(&ran);
            let first = pool
                .execute(move || {
                    r[0].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            let put_done = Arc::new(AtomicBool::new(false));
            let (p, r, done) = (pool.clone(), Arc::clone(&ran), Arc::clone(&put_done));
            let putter = thread::spawn(move || {
                let work = move || {
                    r[1].fetch_add(1, Ordering::SeqCst);
                };
                let id = if round % 2 == 0 {
                    p.execute(work)
                } else {
                    p.execute_timeout(work, Duration::from_secs(600))
                }
                .unwrap();
                done.store(true, Ordering::SeqCst);
                id
            });
            // Once the putter is counted pending, it is blocked on the full
            // queue (the worker is held): free the room.
            until(|| pool.pending() == 3);
            let cancelled = if round % 3 == 0 {
                usize::from(pool.cancel(first))
            } else {
                pool.cancel_queued()
            };
            assert_eq!(cancelled, 1, "round {round}");
            until(|| put_done.load(Ordering::SeqCst));
            let second = putter.join().unwrap();
            assert!(pool.queued() == 1, "the blocked put went in");
            held.open();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(
                ran[0].load(Ordering::SeqCst),
                0,
                "the cancelled one never ran"
            );
            assert_eq!(ran[1].load(Ordering::SeqCst), 1, "round {round}");
            assert!(!pool.cancel(second), "it ran: nothing left to cancel");
            let stats = pool.stats();
            assert_eq!((stats.completed, stats.cancelled), (2, 1));
            pool.shutdown().unwrap();
        }
    });
}

/// Executes from several threads race a graceful shutdown on another
/// clone, with executed children adding more: every execute that was
/// accepted (on a handle or a context) runs exactly once, every refused
/// one is handed back unrun, and each capture is dropped exactly once.
#[test]
fn executes_racing_a_graceful_shutdown_run_once_or_come_back() {
    #[derive(Default)]
    struct Tally {
        top_accepted: AtomicUsize,
        top_refused: AtomicUsize,
        top_ran: AtomicUsize,
        child_accepted: AtomicUsize,
        child_refused: AtomicUsize,
        child_ran: AtomicUsize,
    }
    within("execute against shutdown", || {
        for round in 0..200 {
            let pool = ThreadPool::new(2);
            let stats_handle = pool.clone();
            let t = Arc::new(Tally::default());
            let drops = counter();
            let barrier = Arc::new(Barrier::new(4));
            let mut putters = Vec::new();
            for _ in 0..3 {
                let p = pool.clone();
                let (t, drops, barrier) =
                    (Arc::clone(&t), Arc::clone(&drops), Arc::clone(&barrier));
                putters.push(thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..300 {
                        let d = Dropped(Arc::clone(&drops));
                        let (t2, drops2) = (Arc::clone(&t), Arc::clone(&drops));
                        let put = p.execute_with_context(move |cx: &Context<'_>| {
                            let _d = &d;
                            t2.top_ran.fetch_add(1, Ordering::SeqCst);
                            let child_drop = Dropped(drops2);
                            let t3 = Arc::clone(&t2);
                            match cx.execute(move || {
                                let _c = &child_drop;
                                t3.child_ran.fetch_add(1, Ordering::SeqCst);
                            }) {
                                Ok(_) => t2.child_accepted.fetch_add(1, Ordering::SeqCst),
                                Err(PutError::ShutDown(_)) => {
                                    t2.child_refused.fetch_add(1, Ordering::SeqCst)
                                }
                                Err(other) => panic!("unexpected {other:?}"),
                            };
                        });
                        match put {
                            Ok(_) => t.top_accepted.fetch_add(1, Ordering::SeqCst),
                            Err(PutError::ShutDown(_)) => {
                                t.top_refused.fetch_add(1, Ordering::SeqCst)
                            }
                            Err(other) => panic!("unexpected {other:?}"),
                        };
                    }
                }));
            }
            barrier.wait();
            for _ in 0..(round % 7) * 20 {
                thread::yield_now();
            }
            pool.shutdown().unwrap();
            for p in putters {
                p.join().unwrap();
            }
            let get = |a: &AtomicUsize| a.load(Ordering::SeqCst);
            let (ta, tr, tn) = (get(&t.top_accepted), get(&t.top_refused), get(&t.top_ran));
            let (ca, cr, cn) = (
                get(&t.child_accepted),
                get(&t.child_refused),
                get(&t.child_ran),
            );
            let what = format!("round {round}: top {ta}/{tr}/{tn}, children {ca}/{cr}/{cn}");
            assert_eq!(ta + tr, 900, "{what}");
            assert_eq!(tn, ta, "{what}: each accepted request ran once");
            assert_eq!(ca + cr, tn, "{what}");
            assert_eq!(cn, ca, "{what}: each accepted child ran once");
            assert_eq!(stats_handle.pending(), 0, "{what}");
            assert_eq!(get(&drops), 900 + tn, "{what}: every capture dropped once");
            assert_eq!(stats_handle.stats().completed, (tn + cn) as u64, "{what}");
        }
    });
}

/// An autoscaling pool whose idle workers retire between bursts of
/// executes (each retiring worker hands back the boxes it holds): every
/// request runs once, and the boxes handed back to a handle are freed by
/// the next execute there, never twice (a double free would crash).
#[test]
fn executes_across_an_autoscaling_pools_retirements() {
    within("autoscale", || {
        let pool = ThreadPool::builder()
            .min_workers(0)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        let handles: Vec<ThreadPool> = (0..3).map(|_| pool.new_handle()).collect();
        let mut total = 0u64;
        for round in 0..100 {
            let hits = hit_counters(300);
            for i in 0..300 {
                let h = Arc::clone(&hits);
                handles[i % 3]
                    .execute(move || {
                        h[i].fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
            }
            for h in &handles {
                assert_eq!(h.wait(), Ok(0));
            }
            assert_each_once("executed request", &hits);
            total += 300;
            if round % 10 == 0 {
                // Let them retire.
                until(|| pool.threads() == 0);
            }
        }
        assert_eq!(pool.stats().completed, total);
        drop(handles);
        pool.shutdown().unwrap();
    });
}

/// The global pool: executes from several threads through handles of its
/// own, each waited for, each request run once; dropping such a handle
/// with its boxes handed back leaves the global pool working.
#[test]
fn executes_on_the_global_pool_through_handles_of_their_own() {
    within("global", || {
        let mut threads = Vec::new();
        for _ in 0..3 {
            threads.push(thread::spawn(|| {
                for _ in 0..20 {
                    let handle = callpool::global().new_handle();
                    let hits = hit_counters(200);
                    for i in 0..200 {
                        let h = Arc::clone(&hits);
                        handle
                            .execute(move || {
                                h[i].fetch_add(1, Ordering::SeqCst);
                            })
                            .unwrap();
                    }
                    assert_eq!(handle.wait(), Ok(0));
                    assert_each_once("executed request", &hits);
                    drop(handle);
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let hits = hit_counters(100);
        for i in 0..100 {
            let h = Arc::clone(&hits);
            callpool::global()
                .execute(move || {
                    h[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        assert_eq!(callpool::global().wait(), Ok(0));
        assert_each_once("executed request", &hits);
    });
}

/// Executes on two handles race `shutdown_now` on one of them, with
/// executed children: each accepted request (top or child) ends exactly
/// once, as run, handed back (the closing handle's own), or cancelled
/// (the other handle's, in the sweep); handed back and put on another
/// pool, it runs there once. Each capture is dropped exactly once.
#[test]
fn executes_racing_shutdown_now_end_exactly_once() {
    #[derive(Default)]
    struct Tally {
        accepted: AtomicUsize,
        refused: AtomicUsize,
        ran: AtomicUsize,
    }
    fn work(
        t: &Arc<Tally>,
        drops: &Arc<AtomicUsize>,
        depth: u32,
    ) -> impl FnOnce(&Context<'_>) + Send + 'static {
        let d = Dropped(Arc::clone(drops));
        let (t, drops) = (Arc::clone(t), Arc::clone(drops));
        move |cx: &Context<'_>| {
            let _d = &d;
            t.ran.fetch_add(1, Ordering::SeqCst);
            if depth > 0 {
                for _ in 0..2 {
                    match cx.execute_with_context(work(&t, &drops, depth - 1)) {
                        Ok(_) => t.accepted.fetch_add(1, Ordering::SeqCst),
                        Err(PutError::ShutDown(_)) => t.refused.fetch_add(1, Ordering::SeqCst),
                        Err(other) => panic!("unexpected {other:?}"),
                    };
                }
            }
        }
    }
    within("execute against shutdown_now", || {
        let elsewhere = ThreadPool::new(1);
        for round in 0..200 {
            let a = ThreadPool::new(2);
            let b = a.new_handle();
            let t = Arc::new(Tally::default());
            let drops = counter();
            let barrier = Arc::new(Barrier::new(3));
            let mut putters = Vec::new();
            for h in [a.clone(), b.clone()] {
                let (t, drops, barrier) =
                    (Arc::clone(&t), Arc::clone(&drops), Arc::clone(&barrier));
                putters.push(thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..200 {
                        match h.execute_with_context(work(&t, &drops, 2)) {
                            Ok(_) => t.accepted.fetch_add(1, Ordering::SeqCst),
                            Err(PutError::ShutDown(_)) => t.refused.fetch_add(1, Ordering::SeqCst),
                            Err(other) => panic!("unexpected {other:?}"),
                        };
                    }
                }));
            }
            barrier.wait();
            for _ in 0..(round % 5) * 50 {
                thread::yield_now();
            }
            let stats = a.new_handle();
            let a_clone = a.clone();
            drop(a_clone);
            let handed_back = a.shutdown_now();
            for p in putters {
                p.join().unwrap();
            }
            assert_eq!(b.wait(), Ok(0));
            let get = |x: &AtomicUsize| x.load(Ordering::SeqCst);
            // Every thread that could add more has finished: count.
            until(|| stats.threads() == 0);
            let (acc, refd, ran) = (get(&t.accepted), get(&t.refused), get(&t.ran));
            let hb = handed_back.len();
            let cancelled = stats.stats().cancelled as usize;
            let what = format!(
                "round {round}: accepted {acc}, refused {refd}, ran {ran}, handed back {hb}, \
                 cancelled {cancelled}"
            );
            assert_eq!(ran + hb + cancelled, acc, "{what}");
            assert_eq!(stats.stats().completed as usize, ran, "{what}");
            // Handed back, each runs once elsewhere (its children there).
            for request in handed_back {
                elsewhere.put_request(request).unwrap();
            }
            assert_eq!(elsewhere.wait(), Ok(0));
            let made = get(&t.accepted) + get(&t.refused);
            assert_eq!(get(&drops), made, "{what}: every capture dropped once");
        }
    });
}

/// Pools whose handles executed requests (some waited for, some still
/// queued, some cancelled), whose workers were dismissed, retired or
/// created meanwhile, dropped without waiting: once every worker thread
/// has exited, the live heap is back where it was. Nothing of the
/// hand-back (a worker's batch, a handle's kept boxes, the inbox, the
/// pool) is leaked.
#[test]
fn nothing_is_left_once_the_pools_and_their_threads_are_gone() {
    const NAME: &str = "nothing_is_left_once_the_pools_and_their_threads_are_gone";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    fn os_threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }
    fn scenario(autoscale: bool) {
        let threads_before = os_threads();
        let builder = ThreadPool::builder();
        let builder = if autoscale {
            builder
                .min_workers(0)
                .max_workers(3)
                .keep_alive(Duration::from_millis(1))
        } else {
            builder.workers(2)
        };
        let pool = builder.build().unwrap();
        let handles: Vec<ThreadPool> = (0..4)
            .map(|i| {
                if i % 2 == 0 {
                    pool.new_handle()
                } else {
                    pool.clone()
                }
            })
            .collect();
        let sum = Arc::new(AtomicUsize::new(0));
        for round in 0..20 {
            for (k, h) in handles.iter().enumerate() {
                for _ in 0..300 {
                    let sum = Arc::clone(&sum);
                    if k == 3 {
                        h.execute_with_context(move |cx: &Context<'_>| {
                            for _ in 0..3 {
                                let sum = Arc::clone(&sum);
                                let _ = cx.execute(move || {
                                    sum.fetch_add(1, Ordering::Relaxed);
                                });
                            }
                        })
                        .unwrap();
                    } else {
                        h.execute(move || {
                            sum.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap();
                    }
                }
            }
            if round % 3 == 0 {
                handles[round % 4].cancel_queued();
            }
            if !autoscale && round % 5 == 1 {
                pool.dismiss_workers(1);
                pool.create_workers(1).unwrap();
            }
            if round < 19 {
                for h in &handles {
                    h.wait().unwrap();
                }
            }
        }
        // Dropped with requests still queued, without waiting.
        drop(handles);
        drop(pool);
        // Every worker thread has exited, its thread-locals freed.
        until(|| os_threads() == threads_before);
        drop(sum);
    }
    // Warm-up: whatever the first pools allocate once for the process.
    scenario(false);
    scenario(true);
    let before = common::heap::live();
    scenario(false);
    scenario(true);
    scenario(false);
    let after = common::heap::live();
    assert_eq!(
        after - before,
        0,
        "bytes left after the pools and their threads were gone"
    );
    common::child_ran(NAME);
}

/// A collector's refused `try_put` hands its callable and argument back;
/// retried on a full queue (a producer that spins until there is room),
/// the refusals leave nothing behind: the live heap does not grow with
/// their number.
#[test]
fn refused_collector_puts_leave_nothing_behind() {
    const NAME: &str = "refused_collector_puts_leave_nothing_behind";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    let (pool, held) = common::held_worker(1);
    let mut squares = pool.collector::<u64>();
    let first = squares.try_put(|n: u64| n * n, 3).unwrap();
    let mut callable = |n: u64| n * n;
    let mut arg = 4u64;
    let mut sample = |refusals: usize, squares: &mut callpool::Collector<'_, u64>| {
        for _ in 0..refusals {
            let refused = squares.try_put(callable, arg).unwrap_err();
            assert!(refused.is_full());
            (callable, arg) = refused.into_parts();
        }
        common::heap::live()
    };
    let after_1k = sample(1_000, &mut squares);
    let after_101k = sample(100_000, &mut squares);
    held.open();
    assert_eq!(squares.next_outcome(), Some((first, Ok(9))));
    assert_eq!(squares.next_outcome(), None);
    assert!(
        after_101k - after_1k < 64 * 1024,
        "100,000 refused puts left {} bytes behind",
        after_101k - after_1k
    );
    common::child_ran(NAME);
}

/// A running callable cancels the executed children it has just added
/// (still held in its own worker's slot, one worker), and one it executed
/// through a handle (queued past the bounded queue's capacity): each is
/// found exactly once, never runs, and is counted cancelled.
#[test]
fn a_callable_cancels_its_own_executed_children() {
    within("cancel own children", || {
        for _ in 0..50 {
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .unwrap();
            let ran = counter();
            let found = Arc::new(AtomicUsize::new(0));
            let (h, r, f) = (pool.clone(), Arc::clone(&ran), Arc::clone(&found));
            pool.execute_with_context(move |cx: &Context<'_>| {
                let mut ids = Vec::new();
                for _ in 0..10 {
                    let r = Arc::clone(&r);
                    ids.push(
                        cx.execute(move || {
                            r.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap(),
                    );
                }
                // Two through the handle: on a worker, past the capacity.
                for _ in 0..2 {
                    let r = Arc::clone(&r);
                    ids.push(
                        h.execute(move || {
                            r.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap(),
                    );
                }
                for id in &ids[..6] {
                    if h.cancel(*id) {
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                    assert!(!h.cancel(*id), "found twice");
                }
                f.fetch_add(h.cancel_queued(), Ordering::SeqCst);
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(found.load(Ordering::SeqCst), 12);
            assert_eq!(ran.load(Ordering::SeqCst), 0);
            let stats = pool.stats();
            assert_eq!((stats.completed, stats.cancelled), (1, 12));
            pool.shutdown().unwrap();
        }
    });
}

/// `poll_timeout` and `wait_timeout` with only executed requests pending
/// return once they have run (nothing to handle), not at their timeout;
/// `poll` says nothing is pending then.
#[test]
fn timed_polls_and_waits_return_when_executed_requests_end() {
    within("timed polls", || {
        let pool = ThreadPool::new(2);
        for round in 0..200 {
            let (held, latch) = gate();
            pool.execute(move || latch.hold()).unwrap();
            held.await_start();
            let p = pool.clone();
            let poller = thread::spawn(move || {
                if round % 2 == 0 {
                    p.poll_timeout(Duration::from_secs(600))
                        .map_err(|e| format!("{e:?}"))
                } else {
                    p.wait_timeout(Duration::from_secs(600))
                        .map_err(|e| format!("{e:?}"))
                }
            });
            held.open();
            let got = poller.join().unwrap();
            assert!(
                matches!(&got, Ok(0)) || got.as_ref().is_err_and(|e| e == "NoResultsPending"),
                "round {round}: {got:?}"
            );
            assert_eq!(pool.pending(), 0);
            assert!(pool.poll().is_err(), "nothing pending");
        }
    });
}

/// A thread blocked in a put, and what the put gave when it returned.
type Blocked = thread::JoinHandle<Result<callpool::RequestId, PutError>>;

/// A one-worker pool whose worker is held, with one executed request
/// queued (the queue's one place) and a thread blocked executing a second
/// (with `execute` in even rounds, `execute_timeout` in odd ones): the
/// pool, the worker's latch, the two requests' run counts, and the
/// blocked thread, whose join gives the put's outcome.
fn blocked_execute(round: usize) -> (ThreadPool, common::Gate, Arc<Vec<AtomicUsize>>, Blocked) {
    let (pool, held) = common::held_worker(1);
    let ran = hit_counters(2);
    let r = Arc::clone(&ran);
    pool.execute(move || {
        r[0].fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let (p, r) = (pool.clone(), Arc::clone(&ran));
    let putter = thread::spawn(move || {
        let work = move || {
            r[1].fetch_add(1, Ordering::SeqCst);
        };
        if round % 2 == 0 {
            p.execute(work)
        } else {
            p.execute_timeout(work, Duration::from_secs(600))
        }
    });
    // The held one, the queued one and the blocked one.
    until(|| pool.pending() == 3);
    (pool, held, ran, putter)
}

/// A thread blocked in `execute` (or `execute_timeout`) on a full bounded
/// queue while another clone closes the pool (gracefully, or at once):
/// the blocked put returns, refused or accepted; accepted, its request
/// runs exactly once; the close returns too.
#[test]
fn a_blocked_execute_returns_when_the_pool_closes() {
    within("blocked execute and close", || {
        for round in 0..60 {
            let (pool, held, ran, putter) = blocked_execute(round);
            let accepted = |put| match put {
                Ok(_) => true,
                Err(PutError::ShutDown(_)) => false,
                Err(other) => panic!("round {round}: {other:?}"),
            };
            let observer = pool.new_handle();
            let accepted = if round % 3 == 0 {
                let handed_back = pool.shutdown_now();
                let accepted = accepted(putter.join().unwrap());
                held.open();
                // The queued one came back; the blocked one was refused or
                // came back too.
                assert_eq!(
                    handed_back.len(),
                    1 + usize::from(accepted),
                    "round {round}"
                );
                assert_eq!(ran[0].load(Ordering::SeqCst), 0);
                assert_eq!(ran[1].load(Ordering::SeqCst), 0);
                continue;
            } else {
                let closer = thread::spawn(move || pool.shutdown());
                // The close waits for what is pending; the worker is held
                // until it has begun.
                until(|| observer.is_shut_down());
                held.open();
                closer.join().unwrap().unwrap();
                accepted(putter.join().unwrap())
            };
            assert_eq!(ran[0].load(Ordering::SeqCst), 1, "round {round}");
            assert_eq!(
                ran[1].load(Ordering::SeqCst),
                usize::from(accepted),
                "round {round}: accepted {accepted}"
            );
        }
    });
}

/// `cancel_queued` from another thread, again and again, while executed
/// parents on several workers add executed children (held in slots,
/// handed to the queue in batches, taken by idle workers): each request
/// ends exactly once, run or cancelled, and the counts of both agree with
/// what `cancel_queued` returned and with the statistics.
#[test]
fn cancel_queued_races_executed_children_in_slots_and_queue() {
    within("cancel_queued against children", || {
        let pool = ThreadPool::new(3);
        let mut expect_completed = 0u64;
        let mut expect_cancelled = 0u64;
        for round in 0..300 {
            let parents = 4;
            let added = Arc::new(AtomicUsize::new(0));
            let ran = Arc::new(AtomicUsize::new(0));
            let parents_ran = Arc::new(AtomicUsize::new(0));
            let drops = counter();
            for _ in 0..parents {
                let (added, ran, parents_ran, drops) = (
                    Arc::clone(&added),
                    Arc::clone(&ran),
                    Arc::clone(&parents_ran),
                    Arc::clone(&drops),
                );
                pool.execute_with_context(move |cx: &Context<'_>| {
                    parents_ran.fetch_add(1, Ordering::SeqCst);
                    for i in 0..300 {
                        let ran = Arc::clone(&ran);
                        let d = Dropped(Arc::clone(&drops));
                        cx.execute(move || {
                            let _d = &d;
                            for _ in 0..200 {
                                std::hint::spin_loop();
                            }
                            ran.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                        added.fetch_add(1, Ordering::SeqCst);
                        if i % 16 == 0 {
                            thread::yield_now();
                        }
                    }
                })
                .unwrap();
            }
            let mut cancelled = 0;
            for _ in 0..round % 7 * 10 {
                thread::yield_now();
            }
            // Again and again, until nothing is left to cancel or run.
            while pool.pending() > 0 {
                cancelled += pool.cancel_queued();
                for _ in 0..round % 3 {
                    thread::yield_now();
                }
            }
            assert_eq!(pool.wait(), Ok(0));
            let get = |a: &AtomicUsize| a.load(Ordering::SeqCst);
            let (pr, ad, r) = (get(&parents_ran), get(&added), get(&ran));
            let what = format!(
                "round {round}: parents ran {pr}, added {ad}, ran {r}, cancelled {cancelled}"
            );
            assert_eq!((parents - pr) + (ad - r), cancelled, "{what}");
            assert_eq!(get(&drops), ad, "{what}: each child's capture dropped once");
            expect_completed += (pr + r) as u64;
            expect_cancelled += cancelled as u64;
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled),
                (expect_completed, expect_cancelled),
                "{what}"
            );
        }
        pool.shutdown().unwrap();
    });
}

/// Executed requests that split with `join`, whose halves (run here or on
/// another worker) execute children at the leaves: `wait` covers every
/// child, each runs exactly once, and nothing is counted that is no
/// request (a join's half).
#[test]
fn executed_children_from_join_halves_are_covered_by_wait() {
    fn split(cx: &Context<'_>, lo: usize, hi: usize, hits: &Arc<Vec<AtomicUsize>>) {
        if hi - lo <= 4 {
            for i in lo..hi {
                let hits = Arc::clone(hits);
                cx.execute(move || {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            return;
        }
        let mid = (lo + hi) / 2;
        cx.join(|cx| split(cx, lo, mid, hits), |cx| split(cx, mid, hi, hits));
    }
    within("join halves executing children", || {
        let pool = ThreadPool::new(3);
        for round in 0..200 {
            let hits = hit_counters(512);
            let h = Arc::clone(&hits);
            pool.execute_with_context(move |cx: &Context<'_>| split(cx, 0, 512, &h))
                .unwrap();
            assert_eq!(pool.wait(), Ok(0), "round {round}");
            assert_each_once("executed leaf", &hits);
        }
        assert_eq!(pool.stats().completed, 200 * (1 + 512));
        pool.shutdown().unwrap();
    });
}

/// An `execute` blocked on a full bounded queue while the pool's only
/// worker is dismissed: once no worker is left to empty the queue, the put
/// is refused with `NoWorkers` (not left blocked for ever), uncounted; the
/// queued request waits for a worker, and runs once when one comes.
#[test]
fn a_blocked_execute_is_refused_when_the_last_worker_is_dismissed() {
    within("blocked execute, workers dismissed", || {
        for round in 0..40 {
            let (pool, held, ran, putter) = blocked_execute(round);
            assert_eq!(pool.dismiss_workers(1), 1);
            held.open();
            let put = putter.join().unwrap();
            assert!(
                matches!(put, Err(PutError::NoWorkers(_))),
                "round {round}: {put:?}"
            );
            drop(put);
            pool.join_all_dismissed_workers();
            assert_eq!(pool.pending(), 1, "the queued one waits");
            pool.create_workers(1).unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(ran[0].load(Ordering::SeqCst), 1);
            assert_eq!(ran[1].load(Ordering::SeqCst), 0);
            pool.shutdown().unwrap();
        }
    });
}

/// A callback that executes a request on its own handle and then waits
/// there (a nested wait): it waits for the executed request, which has no
/// result to handle, and returns once it has run, whether or not another
/// result is held by the call below it (then `HeldByCaller`, for that one
/// alone). The outer wait then handles the held result.
#[test]
fn a_nested_wait_covers_requests_its_callback_executed() {
    within("nested wait over executed requests", || {
        let pool = ThreadPool::new(2);
        for round in 0..100 {
            let held_below = round % 2 == 1;
            let (tx, rx) = mpsc::channel();
            let ran = counter();
            let h = pool.clone();
            let r = Arc::clone(&ran);
            let (started_tx, started_rx) = mpsc::channel::<()>();
            let (open_tx, open_rx) = mpsc::channel::<()>();
            let open_rx = Arc::new(std::sync::Mutex::new(open_rx));
            pool.put_request(WorkRequest::new(|_: ()| 1u32, ()).on_result(move |_, _| {
                let (r, open_rx) = (Arc::clone(&r), Arc::clone(&open_rx));
                h.execute(move || {
                    let _ = open_rx.lock().unwrap().recv();
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
                started_tx.send(()).unwrap();
                tx.send(h.wait()).unwrap();
            }))
            .unwrap();
            if held_below {
                pool.put_request(WorkRequest::new(|_: ()| 2u32, ()))
                    .unwrap();
            }
            // Both results ready before the wait starts handling them.
            until(|| pool.queued() == 0 && pool.stats().busy == 0);
            let opener = thread::spawn(move || {
                started_rx.recv().unwrap();
                open_tx.send(()).unwrap();
            });
            let outer = pool.wait();
            opener.join().unwrap();
            let inner = rx.recv().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1, "round {round}");
            if held_below {
                assert!(
                    matches!(
                        inner,
                        Ok(0) | Err(callpool::WaitError::HeldByCaller { pending: 1 })
                    ),
                    "round {round}: {inner:?}"
                );
                assert_eq!(outer, Ok(2), "round {round}");
            } else {
                assert_eq!(inner, Ok(0), "round {round}");
                assert_eq!(outer, Ok(1), "round {round}");
            }
            assert_eq!(pool.pending(), 0);
        }
    });
}

/// An executed request that calls `shutdown_now` on a clone of its own
/// handle, with executed requests (and its own executed children) queued
/// behind it: it gets every one of them back, unrun, and may run them
/// elsewhere; `wait` on the main handle returns once it ends, with
/// nothing pending.
#[test]
fn shutdown_now_from_inside_an_executed_request() {
    within("shutdown_now on a worker", || {
        let elsewhere = ThreadPool::new(1);
        for round in 0..50 {
            let pool = ThreadPool::new(1);
            let ran = hit_counters(20);
            let (started_tx, started_rx) = mpsc::channel::<()>();
            let (open_tx, open_rx) = mpsc::channel::<()>();
            let (back_tx, back_rx) = mpsc::channel();
            let h = pool.clone();
            let r = Arc::clone(&ran);
            pool.execute_with_context(move |cx: &Context<'_>| {
                for i in 10..20 {
                    let r = Arc::clone(&r);
                    cx.execute(move || {
                        r[i].fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                }
                started_tx.send(()).unwrap();
                let _ = open_rx.recv();
                back_tx.send(h.shutdown_now()).unwrap();
            })
            .unwrap();
            started_rx.recv().unwrap();
            for i in 0..10 {
                let r = Arc::clone(&ran);
                pool.execute(move || {
                    r[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            open_tx.send(()).unwrap();
            let back = back_rx.recv().unwrap();
            assert_eq!(
                back.len(),
                20,
                "round {round}: every queued and held one comes back"
            );
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(pool.pending(), 0);
            for request in back {
                elsewhere.put_request(request).unwrap();
            }
            assert_eq!(elsewhere.wait(), Ok(0));
            assert_each_once("handed back, run elsewhere", &ran);
        }
    });
}

/// A handle keeps at most 1,024 emptied boxes for its executing thread,
/// as `docs/design.md` says, however the workers' batches come back
/// (partial ones included: a worker hands its batch back whenever it
/// runs another handle's executed request). Boxes of 4 KB each, measured on the
/// live heap once the worker is idle: at most 1,024 of them are left.
#[test]
fn a_handle_keeps_at_most_1024_emptied_boxes() {
    const NAME: &str = "a_handle_keeps_at_most_1024_emptied_boxes";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    const BOX: isize = 4016; // the id, the 4,000-byte capture, two tags
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (held, latch) = gate();
    other
        .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    held.await_start();
    let sink = Arc::new(AtomicUsize::new(0));
    let before = common::heap::live();
    // 17 runs of 63 executed requests, each followed by one of another
    // handle's: 17 partial batches come back, 1,071 boxes in all.
    for _ in 0..17 {
        for _ in 0..63 {
            let bytes = [7u8; 4000];
            let sink = Arc::clone(&sink);
            pool.execute(move || {
                sink.fetch_add(usize::from(bytes[3999]), Ordering::Relaxed);
            })
            .unwrap();
        }
        other.execute(|| {}).unwrap();
    }
    held.open();
    assert_eq!(other.wait(), Ok(1));
    assert_eq!(pool.wait(), Ok(0));
    until(|| pool.stats().idle == 1);
    assert_eq!(sink.load(Ordering::Relaxed), 17 * 63 * 7);
    // Besides the boxes: about 32 KB of the pool's own (queue chunks kept
    // as spares, the worker's batch vector).
    let kept = common::heap::live() - before;
    assert!(
        kept <= 1024 * BOX + 64 * 1024,
        "{kept} bytes kept: {} boxes of {BOX} bytes",
        kept / BOX
    );
    drop(pool);
    drop(other);
    common::child_ran(NAME);
}
