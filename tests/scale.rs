//! Autoscaling: a pool with `min_workers`, `max_workers` and `keep_alive`
//! grows while requests wait with no worker free, and its idle workers
//! above the minimum leave after the keep-alive; a request put as the last
//! idle worker leaves still runs.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use callpool::{ThreadPool, WorkRequest};
use common::{until, within};

/// Threads whose name starts with `prefix`, from `/proc/self/task`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Requests that each hold a worker until released: each put finds no
/// worker free, so an autoscaling pool grows by one per put, up to its
/// maximum.
struct Held(Arc<(Mutex<bool>, Condvar)>);

impl Held {
    fn put(pool: &ThreadPool, n: usize) -> Held {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        for _ in 0..n {
            let gate = Arc::clone(&gate);
            pool.put_request(WorkRequest::new(
                move |_: ()| {
                    let (open, opened) = &*gate;
                    let _open = opened.wait_while(open.lock().unwrap(), |open| !*open);
                },
                (),
            ))
            .unwrap();
        }
        Held(gate)
    }

    fn release(self) {
        let (open, opened) = &*self.0;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
}

/// Requests held on a gate: each put finds no worker free, so the pool
/// grows by one per put up to its maximum, and no further.
#[test]
fn grows_while_requests_wait_up_to_max_then_shrinks_to_min() {
    within("grow and shrink", || {
        // Not "scale-" and a hex digit: the test binary's main thread is
        // named after the binary ("scale-<hash>"), and would be counted.
        const NAME: &str = "grow-shrink";
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(4)
            .keep_alive(Duration::from_millis(20))
            .thread_name(NAME)
            .build()
            .unwrap();
        let gate = Arc::new(RwLock::new(()));
        let closed = gate.write().unwrap();
        let ran = common::counter();
        for _ in 0..20 {
            let (gate, ran) = (Arc::clone(&gate), Arc::clone(&ran));
            pool.put_request(WorkRequest::new(
                move |_: ()| {
                    drop(gate.read());
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                (),
            ))
            .unwrap();
        }
        assert_eq!(pool.workers(), 4, "grown to max_workers, no further");
        drop(closed);
        pool.wait().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 20);
        // Idle, the three above the minimum leave after the keep-alive, and
        // their threads really exit.
        until(|| pool.workers() == 1 && pool.threads() == 1);
        until(|| threads_named(NAME) == 1);
        let stats = pool.stats();
        assert_eq!((stats.workers, stats.completed), (1, 20));
    });
}

/// Minimum 0: every worker leaves when idle; a put then starts one again.
/// Many rounds, with the put landing before, during or after the last
/// worker's retirement: each request runs once, none is stranded.
#[test]
fn a_request_put_as_the_last_idle_worker_leaves_still_runs() {
    within("retire race", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .min_workers(0)
            .max_workers(1)
            .keep_alive(Duration::from_micros(200))
            .build()
            .unwrap();
        let ran = common::counter();
        for round in 0..300u32 {
            let ran2 = Arc::clone(&ran);
            pool.put_request(WorkRequest::new(
                move |_: u32| {
                    ran2.fetch_add(1, Ordering::SeqCst);
                },
                round,
            ))
            .unwrap();
            assert_eq!(pool.wait_timeout(common::HANG), Ok(1), "round {round}");
            // Vary where the next put lands against the keep-alive.
            if round % 3 == 0 {
                std::thread::sleep(Duration::from_micros(u64::from(round % 7) * 60));
            }
        }
        assert_eq!(ran.load(Ordering::SeqCst), 300);
        until(|| pool.workers() == 0);
    });
}

/// Bounds that cannot hold are refused when the pool is built, and the
/// message names the settings that conflict as the user set them, never a
/// bound the builder derived (with `workers(1).min_workers(2)`, no
/// maximum). A `max_workers(0)`, a pool that could never start a worker
/// by itself, is refused as such.
#[test]
fn impossible_bounds_are_refused_naming_what_was_set() {
    use callpool::Builder;
    let max = callpool::MAX_WORKERS;
    let cases: [(Builder, String); 10] = [
        (
            ThreadPool::builder()
                .workers(2)
                .min_workers(3)
                .max_workers(2),
            "min_workers 3 is above max_workers 2".into(),
        ),
        (
            ThreadPool::builder().workers(5).max_workers(4),
            "workers 5 is above max_workers 4".into(),
        ),
        (
            ThreadPool::builder().workers(1).min_workers(2),
            "workers 1 is below min_workers 2".into(),
        ),
        (
            ThreadPool::builder()
                .workers(0)
                .min_workers(1)
                .max_workers(2),
            "workers 0 is below min_workers 1".into(),
        ),
        (
            ThreadPool::builder()
                .workers(1)
                .max_workers(2)
                .keep_alive(Duration::ZERO),
            "keep_alive must not be zero".into(),
        ),
        (
            ThreadPool::builder().workers(1).max_workers(max + 1),
            format!("max_workers {} is above MAX_WORKERS ({max})", max + 1),
        ),
        (
            ThreadPool::builder().min_workers(max + 1),
            format!("min_workers {} is above MAX_WORKERS ({max})", max + 1),
        ),
        (
            ThreadPool::builder()
                .workers(2)
                .min_workers(max + 1)
                .max_workers(max + 2),
            format!("min_workers {} is above MAX_WORKERS ({max})", max + 1),
        ),
        (
            ThreadPool::builder().workers(0).max_workers(0),
            "max_workers 0 leaves no room for a worker (0 does not mean unbounded here)".into(),
        ),
        (
            ThreadPool::builder().max_workers(0),
            "max_workers 0 leaves no room for a worker (0 does not mean unbounded here)".into(),
        ),
    ];
    for (builder, says) in cases {
        let shown = format!("{builder:?}");
        let err = builder.build().expect_err(&shown).to_string();
        assert_eq!(
            err,
            format!("invalid autoscaling settings: {says}"),
            "{shown}"
        );
    }
    // A bound the user did not set is not named.
    let err = ThreadPool::builder()
        .workers(1)
        .min_workers(2)
        .build()
        .unwrap_err()
        .to_string();
    assert!(!err.contains("max_workers"), "{err}");
}

/// With the worker count unset, the machine's parallelism is kept within
/// the bounds that were set, and an unset bound follows it without crossing
/// the other: `.max_workers(1)` alone is a pool of one on any machine (on
/// two cores it was refused, "min_workers 2 is above max_workers 1", with
/// no minimum set), and `.min_workers(n)` alone above the core count starts
/// `n`.
#[test]
fn an_unset_worker_count_keeps_within_the_bounds_set() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = ThreadPool::builder().max_workers(1).build().unwrap();
    assert_eq!(one.workers(), 1);
    let above = cores + 2;
    let many = ThreadPool::builder().min_workers(above).build().unwrap();
    assert_eq!(many.workers(), above);
    let within_range = ThreadPool::builder().max_workers(above).build().unwrap();
    assert_eq!(within_range.workers(), cores);
    // A count the user set is never moved: it conflicts, and says so.
    let err = ThreadPool::builder()
        .workers(3)
        .max_workers(2)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("workers 3 is above max_workers 2"),
        "{err}"
    );
}

/// Requests queued together (a batch, or a task's children) start a
/// worker each, up to the maximum, as a put per request would: here 8
/// requests that each wait for all 8 to be running can only end if the
/// pool starts 7 workers beside its idle one at once.
#[test]
fn requests_queued_together_start_a_worker_each() {
    fn one_to_eight() -> ThreadPool {
        ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(8)
            .keep_alive(Duration::from_secs(30))
            .build()
            .unwrap()
    }
    within("batch growth", || {
        let all_running = Arc::new(std::sync::Barrier::new(8));
        let pool = one_to_eight();
        let barrier = Arc::clone(&all_running);
        let batch = callpool::make_requests(
            move |_: u32| {
                barrier.wait();
            },
            0..8,
            |_, _| {},
            |_, _| {},
        );
        pool.put_batch(batch).unwrap();
        assert_eq!(pool.wait(), Ok(8));
        assert_eq!(pool.workers(), 8);

        let pool = one_to_eight();
        let barrier = Arc::clone(&all_running);
        pool.put_request(WorkRequest::with_context(
            move |cx, _: ()| {
                for _ in 0..8 {
                    let barrier = Arc::clone(&barrier);
                    cx.put(WorkRequest::new(
                        move |_: ()| {
                            barrier.wait();
                        },
                        (),
                    ))
                    .unwrap();
                }
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(9));
        assert_eq!(pool.workers(), 8);
    });
}

/// A waiter on an autoscaling pool with no worker does not call a request
/// stranded while the put that queued it is about to start a worker for
/// it: every wait ends in `Ok`, never `NoWorkersAvailable`. The pool
/// shrinks to no worker between puts, over many rounds.
#[test]
fn a_waiter_does_not_see_a_request_stranded_that_a_worker_will_start_for() {
    // No `within` around the rounds: 200 rounds, each waiting for the last
    // worker's thread to exit, take seconds alone and more than `HANG`
    // under load. Every step that could hang is bounded on its own: `until`,
    // the waits (`wait_timeout`), the waiter (it stops once `stop` is set).
    let pool = ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(2)
        .keep_alive(Duration::from_micros(200))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waiter = {
        let (pool, stop) = (pool.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            // (waits, failed waits, the first failure)
            let mut seen = (0, 0, None);
            while !stop.load(Ordering::SeqCst) {
                seen.0 += 1;
                if let Err(err) = pool.wait_timeout(common::HANG) {
                    seen.1 += 1;
                    seen.2.get_or_insert(err);
                }
            }
            seen
        })
    };
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..200 {
        until(|| pool.threads() == 0);
        let ran = Arc::clone(&ran);
        pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    assert!(pool.wait_timeout(common::HANG).is_ok());
    stop.store(true, Ordering::SeqCst);
    let (waits, failed, first) = waiter.join().unwrap();
    assert_eq!(failed, 0, "of {waits} waits, the first failure: {first:?}");
    assert_eq!(ran.load(Ordering::SeqCst), 200);
}

/// Blocking puts from several threads at once into an open autoscaling
/// pool scaled to zero, with a request queue of one: a put can find the
/// queue full, filled by another put that has not yet started its worker,
/// and no thread. It starts one instead of giving up. (It was refused with
/// `NoWorkers`, and a `put_batch` cancelled its members, as if no worker
/// could ever come: in 1-30 rounds of 200 in every run of a helper's
/// reproducer.) Whether a round meets that moment is up to the timing;
/// each put and each member must succeed in every round.
#[test]
fn puts_on_a_full_queue_of_an_autoscaling_pool_with_no_thread_start_one() {
    let pool = ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(4)
        .keep_alive(Duration::from_micros(50))
        .queue_capacity(1)
        .build()
        .unwrap();
    let cancelled = common::counter();
    let results = common::counter();
    for round in 0..200u32 {
        // Each round has its own bound, not the 200 together: a round waits
        // for the last worker's thread to exit, and 200 of them take seconds
        // alone and more than `HANG` under load.
        let (pool, cancelled) = (pool.new_handle(), Arc::clone(&cancelled));
        let results = Arc::clone(&results);
        let before = results.load(Ordering::SeqCst);
        within(
            &format!("round {round} of puts into a pool scaled to zero"),
            move || {
                until(|| pool.threads() == 0);
                let start = Arc::new(std::sync::Barrier::new(4));
                let putters: Vec<_> = (0..4u64)
                    .map(|t| {
                        let (handle, start) = (pool.new_handle(), Arc::clone(&start));
                        let cancelled = Arc::clone(&cancelled);
                        let results = Arc::clone(&results);
                        std::thread::spawn(move || {
                            start.wait();
                            let refused = if t % 2 == 0 {
                                (0..4u64)
                                    .filter(|&i| {
                                        let results = Arc::clone(&results);
                                        let request = WorkRequest::new(|n: u64| n, i).on_result(
                                            move |_, _| {
                                                results.fetch_add(1, Ordering::SeqCst);
                                            },
                                        );
                                        handle.put_request(request).is_err()
                                    })
                                    .count()
                            } else {
                                let on_error = move |_, e: callpool::TaskError| {
                                    assert_eq!(e, callpool::TaskError::Cancelled);
                                    cancelled.fetch_add(1, Ordering::SeqCst);
                                };
                                let requests = callpool::make_requests(
                                    |n: u64| n,
                                    0..4u64,
                                    move |_, _| {
                                        results.fetch_add(1, Ordering::SeqCst);
                                    },
                                    on_error,
                                );
                                usize::from(handle.put_batch(requests).is_err())
                            };
                            (refused, handle.wait())
                        })
                    })
                    .collect();
                for putter in putters {
                    let (refused, waited) = putter.join().unwrap();
                    assert_eq!(refused, 0, "round {round}: a put was refused");
                    // A put that waited for room may have handled some of
                    // its handle's results itself: `wait` counts the rest.
                    assert!(waited.is_ok(), "round {round}: {waited:?}");
                }
                // Every request's result callback ran, once.
                assert_eq!(
                    results.load(Ordering::SeqCst) - before,
                    16,
                    "round {round}: results"
                );
                assert_eq!(
                    cancelled.load(Ordering::SeqCst),
                    0,
                    "round {round}: batch members cancelled"
                );
            },
        );
    }
}

/// An idle worker's keep-alive runs from when it went idle, not from its
/// last wake-up: dismissals that wake every sleeper (here, of a worker
/// started for the purpose, again and again, far more often than the
/// keep-alive) do not keep the idle workers above the minimum alive.
/// (Each wake-up restarted the keep-alive: they never left while the
/// dismissals went on, and otherwise left one per keep-alive.)
#[test]
fn idle_workers_leave_after_their_keep_alive_while_dismissals_wake_them() {
    within("idle workers to leave", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(16)
            .keep_alive(Duration::from_millis(100))
            .build()
            .unwrap();
        let held = Held::put(&pool, 4);
        // About one worker per request held (a put may find the worker
        // started for the one before it not yet busy).
        assert!(pool.workers() > 1, "grown above the minimum");
        held.release();
        pool.wait().unwrap();
        // At most one left: the last idle worker above the minimum may
        // retire while the one just created still counts, and that one's
        // dismissal then leaves none (a dismissal may go below the
        // minimum); waiting for exactly one would then wait for ever.
        until(|| {
            pool.create_workers(1).unwrap();
            assert_eq!(pool.dismiss_workers(1), 1);
            pool.workers() <= 1
        });
        // A dismissal of nobody dismisses nobody.
        assert_eq!(pool.dismiss_workers(0), 0);
        pool.resize(1).unwrap();
        assert_eq!(pool.workers(), 1);
    });
}

/// A child put by a running callable on an autoscaling pool below its
/// maximum, with no worker free, starts a worker as a put does, so a
/// parent that waits for its child gets it. (The child waited in its
/// parent's slot until the parent returned, the pool staying at its one
/// worker, in 4 of 5 runs of a trial.)
#[test]
fn a_child_held_while_the_pool_may_grow_starts_a_worker() {
    within("a parent waiting for its child", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(4)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        let watcher = pool.new_handle();
        let (seen_tx, seen) = std::sync::mpsc::channel::<bool>();
        pool.put_request(WorkRequest::with_context(
            move |cx: &callpool::Context<'_>, ()| {
                // A worker may have been started for this request: once it
                // has left, this one is the pool's only worker, busy.
                until(|| watcher.workers() == 1);
                let (ran_tx, ran) = std::sync::mpsc::channel::<()>();
                cx.put(WorkRequest::new(
                    move |_: ()| ran_tx.send(()).unwrap_or(()),
                    (),
                ))
                .unwrap();
                seen_tx
                    .send(ran.recv_timeout(common::HANG / 2).is_ok())
                    .unwrap();
            },
            (),
        ))
        .unwrap();
        assert_eq!(
            seen.recv(),
            Ok(true),
            "the child ran while its parent waited"
        );
        assert_eq!(pool.wait(), Ok(2));
    });
}

/// A keep-alive too long for the clock (`Duration::MAX`) is accepted and
/// never ends: the worker above the minimum stays, idle, and the pool
/// goes on working. (An idle worker added it to the time it went idle
/// and panicked on the overflow.)
#[test]
fn a_keep_alive_too_long_for_the_clock_never_ends() {
    within("a pool with an endless keep-alive", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(2)
            .keep_alive(Duration::MAX)
            .build()
            .unwrap();
        let held = Held::put(&pool, 4);
        assert_eq!(pool.workers(), 2);
        held.release();
        assert_eq!(pool.wait(), Ok(4));
        until(|| pool.stats().idle == 2);
        assert_eq!((pool.workers(), pool.threads()), (2, 2));
        pool.put_request(WorkRequest::new(|x: u32| x, 1)).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(pool.stats().panicked, 0);
    });
}

/// Every worker of an autoscaling pool dismissed while asleep, then a put:
/// the dismissed workers still count as sleepers until they wake, so the
/// put may start no worker and wake only one that leaves. The last of them
/// to leave starts one for what is queued, so the request runs without a
/// wait on the handle to notice it (a ticket's wait does not start
/// workers, nor does a non-blocking `poll`). Stranded in about one round
/// in twenty on two cores before the leaving worker looked.
#[test]
fn a_request_put_as_every_dismissed_worker_leaves_still_runs() {
    within("put as the dismissed workers leave", || {
        for round in 0..400u32 {
            let pool = ThreadPool::builder()
                .workers(2)
                .min_workers(2)
                .max_workers(2)
                .build()
                .unwrap();
            assert_eq!(pool.dismiss_workers(2), 2);
            let ticket = pool.submit(|n: u32| n + 1, round).unwrap();
            assert_eq!(ticket.wait(), Ok(round + 1), "round {round}");
            pool.shutdown().unwrap();
        }
    });
}

/// Three requests that must all run at once (each waits for the other
/// two), put right after a round trip on a pool of 2 workers that may
/// grow to 3: one worker is then spinning for more work and the other
/// asleep. The put that the spinner can take wakes nobody; those beyond
/// it must wake the sleeper and, with no sleeper left, start a third
/// worker, or the third request waits behind two busy workers for ever.
/// (in a trial, in 72 of 100 rounds no third worker started.)
/// Timing decides nothing: a rendezvous that is not met is a hang, which
/// the bound turns into a failure.
#[test]
fn a_burst_put_beside_a_spinning_worker_grows_the_pool() {
    const ROUNDS: usize = 60;
    within("rendezvous of three on an autoscaling pool", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .min_workers(2)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
        for round in 0..ROUNDS {
            // The third worker (if any) retires; then a round trip leaves
            // its worker spinning for the next request.
            until(|| pool.workers() == 2);
            pool.submit(|x: u8| x, 0).unwrap().wait().unwrap();
            let target = 3 * (round + 1);
            let tickets: Vec<_> = (0..3)
                .map(|_| {
                    let arrived = Arc::clone(&arrived);
                    pool.submit(
                        move |_: ()| {
                            let (count, all_in) = &*arrived;
                            let mut count = count.lock().unwrap();
                            *count += 1;
                            all_in.notify_all();
                            let (_count, timeout) = all_in
                                .wait_timeout_while(count, common::HANG, |n| *n < target)
                                .unwrap();
                            !timeout.timed_out()
                        },
                        (),
                    )
                    .unwrap()
                })
                .collect();
            let met: Vec<bool> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
            assert_eq!(met, [true; 3], "round {round}: the three never ran at once");
        }
    });
}
