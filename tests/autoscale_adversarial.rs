//! An adversarial audit of autoscaling pools (`min_workers`, `max_workers`,
//! `keep_alive`): a keep-alive of 1 ms makes workers retire all the time,
//! and each test repeats its round many times so that puts, waits,
//! children, resizes and shutdowns meet retirements at every moment. Every
//! request must run exactly once, no `wait` may report
//! `NoWorkersAvailable` for a request a worker could be started for, the
//! worker count keeps within the bounds at quiet moments, and `stats()`
//! says what its docs say. Only a hang is timed (`common::HANG`).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use callpool::{Context, ThreadPool, WorkRequest};
use common::{counter, rounds, until, Rng};

const KEEP_ALIVE: Duration = Duration::from_millis(1);

fn pool(min: usize, max: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(min)
        .min_workers(min)
        .max_workers(max)
        .keep_alive(KEEP_ALIVE)
        .build()
        .unwrap()
}

/// A request that adds one to `hits`.
fn hit(hits: &Arc<AtomicUsize>) -> WorkRequest {
    let hits = Arc::clone(hits);
    WorkRequest::new(
        move |_: ()| {
            hits.fetch_add(1, Ordering::SeqCst);
        },
        (),
    )
    .into()
}

/// Waits until the pool is quiet at `n` workers: every gauge as the docs
/// say of an idle pool (only a hang fails here).
fn until_quiet_at(pool: &ThreadPool, n: usize) {
    until(|| {
        let s = pool.stats();
        s.workers == n && s.threads == n && s.idle == n && s.busy == 0 && s.running == 0
    });
}

/// A pool that scales to zero, idled down to no thread before each round,
/// serves every way in: a ticket, a plain put and `wait`, a batch, a scope,
/// `install`, `map`, and a join. Each round's work runs exactly once and
/// nothing reports `NoWorkersAvailable`.
#[test]
fn every_entry_point_grows_a_pool_idled_to_zero() {
    let pool = Arc::new(pool(0, 2));
    let p = Arc::clone(&pool);
    rounds("entry points at zero workers", 140, move |round| {
        let pool = &*p;
        until_quiet_at(pool, 0);
        match round % 7 {
            0 => {
                let t = pool.submit(|n: u32| n * 3, round as u32).unwrap();
                assert_eq!(t.wait(), Ok(round as u32 * 3));
            }
            1 => {
                let hits = counter();
                for _ in 0..3 {
                    pool.put_request(hit(&hits)).unwrap();
                }
                assert_eq!(pool.wait(), Ok(3));
                assert_eq!(hits.load(Ordering::SeqCst), 3);
            }
            2 => {
                let hits = counter();
                let h = Arc::clone(&hits);
                let batch = callpool::make_requests(
                    move |_: usize| {
                        h.fetch_add(1, Ordering::SeqCst);
                    },
                    0..6usize,
                    |_, _| {},
                    |_, _| panic!("batch member failed"),
                );
                pool.put_batch(batch).unwrap();
                assert_eq!(pool.wait(), Ok(6));
                assert_eq!(hits.load(Ordering::SeqCst), 6);
            }
            3 => {
                let data = [1u64, 2, 3, 4, 5];
                let mut sum = 0;
                pool.scope(|s| {
                    for x in &data {
                        s.put(|x: &u64| *x * 10, x).unwrap();
                    }
                    s.wait_with(|_, r| sum += r.unwrap());
                });
                assert_eq!(sum, 150);
            }
            4 => {
                let local = round;
                assert_eq!(pool.install(|_| local + 1), Ok(round + 1));
            }
            5 => {
                let out = pool.map(0..9u32, |x| x * x);
                let out: Vec<u32> = out.into_iter().map(Result::unwrap).collect();
                assert_eq!(out, (0..9u32).map(|x| x * x).collect::<Vec<_>>());
            }
            _ => {
                let r = pool.install(|cx| cx.join(|_| 1u8, |_| 2u8));
                assert_eq!(r, Ok((1, 2)));
            }
        }
        let s = pool.stats();
        assert!(s.workers <= 2, "above max_workers: {s:?}");
    });
}

/// Several threads put and `wait` on their own handles of a pool scaled to
/// zero, each at the moment its last worker may be retiring: every wait
/// counts exactly its own requests, never `NoWorkersAvailable`.
#[test]
fn concurrent_waiters_on_a_pool_retiring_to_zero_are_never_stranded() {
    let pool = Arc::new(pool(0, 1));
    let p = Arc::clone(&pool);
    rounds("waiters at zero", 400, move |round| {
        let mut rng = Rng(round as u64 + 1);
        let pause = rng.below(3);
        let waiters: Vec<_> = (0..3)
            .map(|k| {
                let handle = p.new_handle();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_micros(pause * 500 + k * 300));
                    let hits = counter();
                    for _ in 0..=k {
                        handle.put_request(hit(&hits)).unwrap();
                    }
                    let waited = handle.wait();
                    (waited, hits.load(Ordering::SeqCst), k as usize + 1)
                })
            })
            .collect();
        for w in waiters {
            let (waited, hits, n) = w.join().unwrap();
            assert_eq!(waited, Ok(n));
            assert_eq!(hits, n);
        }
    });
    let s = pool.stats();
    assert!(s.workers <= 1, "above max_workers: {s:?}");
}

/// A sampler reads `stats()` while bursts grow and retirements shrink a
/// pool of 2 to 4 workers: the live count never goes above the maximum,
/// and never below the minimum (nothing dismisses or resizes here); after
/// each burst the pool is quiet at its minimum again.
#[test]
fn workers_stay_within_the_bounds_while_bursts_come_and_go() {
    let pool = Arc::new(pool(2, 4));
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(std::sync::Mutex::new(None));
    let sampler = {
        let (pool, stop, bad) = (Arc::clone(&pool), Arc::clone(&stop), Arc::clone(&bad));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let w = pool.workers();
                if !(2..=4).contains(&w) {
                    *bad.lock().unwrap() = Some(w);
                }
                std::thread::yield_now();
            }
        })
    };
    let p = Arc::clone(&pool);
    rounds("bursts within bounds", 120, move |round| {
        let mut rng = Rng(round as u64 * 7 + 3);
        let hits = counter();
        let n = 1 + rng.below(12) as usize;
        for _ in 0..n {
            let h = Arc::clone(&hits);
            let spin = rng.below(200);
            p.put_request(WorkRequest::new(
                move |_: ()| {
                    std::thread::sleep(Duration::from_micros(spin));
                    h.fetch_add(1, Ordering::SeqCst);
                },
                (),
            ))
            .unwrap();
        }
        assert_eq!(p.wait(), Ok(n));
        assert_eq!(hits.load(Ordering::SeqCst), n);
        // `Stats::running`'s and `queued`'s docs: 0 once `wait` returned.
        let s = p.stats();
        assert_eq!((s.running, s.queued), (0, 0), "{s:?}");
        if round % 4 == 0 {
            until_quiet_at(&p, 2);
        }
    });
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(*bad.lock().unwrap(), None, "a worker count outside 2..=4");
    until_quiet_at(&pool, 2);
}

/// A parent puts children through its `Context` (held in its slot, then
/// queued as it returns) and returns without waiting, while its pool's
/// other workers retire around it; children put grandchildren the same
/// way. Every one runs exactly once and `wait` counts them all.
#[test]
fn children_put_through_a_context_while_workers_retire_all_run() {
    fn family(hits: &Arc<AtomicUsize>, depth: usize) -> WorkRequest {
        let hits = Arc::clone(hits);
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                hits.fetch_add(1, Ordering::SeqCst);
                if depth > 0 {
                    for _ in 0..2 {
                        cx.put(family(&hits, depth - 1)).unwrap();
                    }
                }
            },
            (),
        )
        .into()
    }
    for min in [0, 1] {
        let pool = Arc::new(pool(min, 3));
        let p = Arc::clone(&pool);
        rounds("children while retiring", 200, move |round| {
            let hits = counter();
            let mut rng = Rng(round as u64 + 11);
            std::thread::sleep(Duration::from_micros(rng.below(2500)));
            // depth 3: 1 + 2 + 4 + 8 requests.
            p.put_request(family(&hits, 3)).unwrap();
            assert_eq!(p.wait(), Ok(15));
            assert_eq!(hits.load(Ordering::SeqCst), 15);
        });
        until_quiet_at(&pool, min);
    }
}

/// A parent that waits (in its callable) for a child it put through its
/// `Context`, on a pool at its minimum of 1 with a worker that may be
/// retiring: the child must get a worker of its own (the pool grows).
#[test]
fn a_parent_blocking_on_its_held_child_gets_the_pool_to_grow() {
    let pool = Arc::new(pool(1, 2));
    let p = Arc::clone(&pool);
    rounds("blocking parent", 300, move |round| {
        let mut rng = Rng(round as u64 + 5);
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        let t = p
            .submit_with_context(
                |cx: &Context<'_>, ()| {
                    let (tx, rx) = mpsc::channel();
                    cx.put(WorkRequest::new(move |_: ()| tx.send(7u8).unwrap(), ()))
                        .unwrap();
                    rx.recv_timeout(common::HANG).expect("child never ran")
                },
                (),
            )
            .unwrap();
        assert_eq!(t.wait(), Ok(7));
        assert_eq!(p.wait(), Ok(1));
    });
    until_quiet_at(&pool, 1);
}

/// `create_workers` and `resize` set any count, past the maximum too; the
/// surplus idles out back to the minimum. `resize(0)` and dismissing every
/// worker leave the pool below its minimum until requests come, which then
/// start workers again.
#[test]
fn resizes_and_dismissals_outside_the_bounds_come_back() {
    let pool = Arc::new(pool(1, 2));
    let p = Arc::clone(&pool);
    rounds("resize outside bounds", 30, move |round| {
        match round % 3 {
            0 => {
                p.create_workers(4).unwrap();
                let w = p.workers();
                // 1 at the minimum plus 4; retirements may already have begun.
                assert!((1..=5).contains(&w), "{w}");
                until_quiet_at(&p, 1);
            }
            1 => {
                p.resize(6).unwrap();
                until_quiet_at(&p, 1);
            }
            _ => {
                if round % 2 == 0 {
                    p.resize(0).unwrap();
                } else {
                    p.dismiss_workers(usize::MAX);
                }
                assert_eq!(p.workers(), 0);
                let hits = counter();
                for _ in 0..4 {
                    p.put_request(hit(&hits)).unwrap();
                }
                assert_eq!(p.wait(), Ok(4));
                assert_eq!(hits.load(Ordering::SeqCst), 4);
                let t = p.submit(|x: u8| x + 1, 1).unwrap();
                assert_eq!(t.wait(), Ok(2));
                // At least one worker came back; the surplus leaves.
                until(|| p.workers() >= 1);
                until_quiet_at(&p, 1);
            }
        }
        let s = p.stats();
        assert!(s.workers >= 1, "below min_workers at a quiet moment: {s:?}");
    });
}

/// Puts racing `dismiss_workers` and `resize` on a pool that scales to
/// zero: every request runs once, and `wait` counts them.
#[test]
fn puts_racing_dismissals_on_a_pool_scaling_to_zero() {
    let pool = Arc::new(pool(0, 3));
    let p = Arc::clone(&pool);
    rounds("puts racing dismissals", 400, move |round| {
        let hits = counter();
        let mut rng = Rng(round as u64 + 99);
        let disturber = {
            let p = Arc::clone(&p);
            let (pause, what) = (rng.below(400), rng.below(3));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(pause));
                match what {
                    0 => drop(p.dismiss_workers(usize::MAX)),
                    1 => p.resize(0).unwrap(),
                    _ => p.resize(2).unwrap(),
                }
            })
        };
        let n = 1 + rng.below(5) as usize;
        for _ in 0..n {
            p.put_request(hit(&hits)).unwrap();
        }
        disturber.join().unwrap();
        assert_eq!(p.wait(), Ok(n));
        assert_eq!(hits.load(Ordering::SeqCst), n);
    });
}

/// `shutdown` and `shutdown_now` at every moment of a pool's retirements:
/// `shutdown` runs every request put, `shutdown_now` hands back exactly
/// those that did not run; neither hangs.
#[test]
fn shutdowns_while_workers_retire() {
    rounds("shutdowns while retiring", 300, |round| {
        let mut rng = Rng(round as u64 + 1234);
        let min = rng.below(2) as usize;
        let pool = pool(min, 3);
        let hits = counter();
        // Let some workers come and go first.
        let first = rng.below(4) as usize;
        for _ in 0..first {
            pool.put_request(hit(&hits)).unwrap();
        }
        std::thread::sleep(Duration::from_micros(rng.below(2000)));
        let later = rng.below(5) as usize;
        for _ in 0..later {
            pool.put_request(hit(&hits)).unwrap();
        }
        let total = first + later;
        if round % 2 == 0 {
            pool.shutdown().unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), total);
        } else {
            let unrun = pool.shutdown_now();
            // Running requests finish before shutdown_now returns or after:
            // either way, each ran or came back, once.
            until(|| hits.load(Ordering::SeqCst) + unrun.len() >= total);
            assert_eq!(hits.load(Ordering::SeqCst) + unrun.len(), total);
        }
    });
}

/// Nothing but non-blocking looks (`poll`, a counter) follow puts made as
/// the last worker of a pool scaling to zero retires: the puts themselves
/// must start the worker, since no blocking `wait` is there to notice a
/// stranded request. Covers `execute`, `try_put_request`, `put_all`, on an
/// unbounded queue and on a queue of 2.
#[test]
fn puts_at_a_retirement_run_with_only_polls_looking() {
    for capacity in [0usize, 2] {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(0)
                .min_workers(0)
                .max_workers(2)
                .keep_alive(KEEP_ALIVE)
                .queue_capacity(capacity)
                .build()
                .unwrap(),
        );
        let p = Arc::clone(&pool);
        rounds("puts with polls only", 400, move |round| {
            let mut rng = Rng(round as u64 + 777);
            let hits = counter();
            if round % 5 == 0 {
                until_quiet_at(&p, 0);
            } else {
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
            let expected = match round % 3 {
                0 => {
                    let h = Arc::clone(&hits);
                    p.execute(move || {
                        h.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                    1
                }
                1 => {
                    // A full queue of 2 cannot be: nothing else is queued.
                    p.try_put_request(hit(&hits)).unwrap();
                    1
                }
                _ => {
                    let n = 1 + rng.below(6) as usize;
                    let put = p.put_all((0..n).map(|_| hit(&hits))).unwrap();
                    assert_eq!(put, n);
                    n
                }
            };
            until(|| {
                let _ = p.poll();
                hits.load(Ordering::SeqCst) == expected && p.pending() == 0
            });
            assert_eq!(hits.load(Ordering::SeqCst), expected);
        });
    }
}

/// Requests that can only finish together (each waits until all have
/// started) need as many workers at once as there are requests, up to the
/// maximum: each put that finds no sleeper to take it must start one, at
/// whatever moment of the pool's retirements it comes.
#[test]
fn requests_that_need_every_worker_at_once_get_them() {
    for (min, max) in [(0usize, 3usize), (1, 3), (2, 4)] {
        let pool = Arc::new(pool(min, max));
        let p = Arc::clone(&pool);
        rounds("all at once", 150, move |round| {
            let mut rng = Rng(round as u64 * 31 + min as u64);
            std::thread::sleep(Duration::from_micros(rng.below(2000)));
            let n = max - rng.below(2) as usize;
            let started = counter();
            for _ in 0..n {
                let started = Arc::clone(&started);
                p.put_request(WorkRequest::new(
                    move |_: ()| {
                        started.fetch_add(1, Ordering::SeqCst);
                        // A request left without a worker shows as a hang.
                        until(|| started.load(Ordering::SeqCst) == n);
                    },
                    (),
                ))
                .unwrap();
            }
            assert_eq!(p.wait(), Ok(n));
            assert!(p.workers() <= max, "above max_workers");
        });
        until_quiet_at(&pool, min);
    }
}

/// Every worker thread an autoscaling pool starts runs its start hook once
/// and, once it retires (or the pool shuts down), its stop hook once: at a
/// quiet moment the two counts differ by exactly the live workers, and
/// after `shutdown` they are equal.
#[test]
fn start_and_stop_hooks_balance_across_retirements() {
    let starts = counter();
    let stops = counter();
    let pool = {
        let (starts, stops) = (Arc::clone(&starts), Arc::clone(&stops));
        ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(4)
            .keep_alive(KEEP_ALIVE)
            .on_worker_start(move |_| {
                starts.fetch_add(1, Ordering::SeqCst);
            })
            .on_worker_stop(move |_| {
                stops.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap()
    };
    let pool = Arc::new(pool);
    let p = Arc::clone(&pool);
    rounds("hooks across retirements", 100, move |round| {
        let hits = counter();
        let n = 1 + round % 6;
        for _ in 0..n {
            p.put_request(hit(&hits)).unwrap();
        }
        if round % 10 == 3 {
            p.dismiss_workers(2);
        }
        assert_eq!(p.wait(), Ok(n));
        assert_eq!(hits.load(Ordering::SeqCst), n);
    });
    until_quiet_at(&pool, 1);
    let (started, stopped) = (starts.load(Ordering::SeqCst), stops.load(Ordering::SeqCst));
    assert!(started > 1, "the pool never grew: {started}");
    assert_eq!(started, stopped + 1);
    Arc::try_unwrap(pool).ok().unwrap().shutdown().unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), stops.load(Ordering::SeqCst));
}

/// A parent holds its child in its slot (the pool at its maximum, no
/// worker asleep) and waits for it; then the other, busy, worker is
/// dismissed (or the pool resized down) and leaves once its request ends.
/// The pool is now below its maximum with a child nobody will queue: the
/// leaving worker must start one for it, as it does for a queued request.
/// Hung (the parent waited for ever) before `Pool::grow_for_stranded`
/// looked at the slots.
#[test]
fn a_held_child_is_run_when_the_busy_worker_beside_it_is_dismissed() {
    rounds("held child, busy worker dismissed", 60, |round| {
        let min = round % 3;
        let pool = ThreadPool::builder()
            .workers(2)
            .min_workers(min)
            .max_workers(2)
            .keep_alive(KEEP_ALIVE)
            .build()
            .unwrap();
        let (busy, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        busy.await_start();
        let (held_tx, held) = mpsc::channel();
        let parent = pool
            .submit_with_context(
                move |cx: &Context<'_>, ()| {
                    let (tx, rx) = mpsc::channel();
                    cx.put(WorkRequest::new(move |_: ()| tx.send(()).unwrap_or(()), ()))
                        .unwrap();
                    held_tx.send(()).unwrap();
                    rx.recv_timeout(common::HANG).is_ok()
                },
                (),
            )
            .unwrap();
        held.recv_timeout(common::HANG).unwrap();
        if round % 2 == 0 {
            assert_eq!(pool.dismiss_workers(2), 2);
        } else {
            pool.resize(0).unwrap();
        }
        busy.open();
        assert_eq!(parent.wait(), Ok(true), "the held child never ran");
        assert_eq!(pool.wait(), Ok(2));
    });
}
