//! Adversarial tests of a scope or collector waiting on a worker of its own
//! pool (`pool::worker::help`): siblings that need each other, nesting at
//! every pool size, mixed with `Context::join`, `Context::put`, streams and
//! worker state, autoscaling, dismissal, bounded queues, the three ways a
//! pool ends, and panics at each level. Every request's end is counted;
//! `within` only turns a hang into a failure.

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use callpool::{Context, TaskError, ThreadPool, WorkRequest};
use common::{assert_each_once, hit_counters, within, HANG};

/// Divide and conquer with a scope per level: `fan` requests per scope,
/// `depth` levels below this one; each leaf counts itself in `leaves` (by
/// its number) and every scope's callbacks check they run on the scope's
/// thread. Returns how many leaves it covered.
fn tree(pool: &ThreadPool, depth: u32, fan: usize, first: usize, leaves: &[AtomicUsize]) -> usize {
    if depth == 0 {
        leaves[first].fetch_add(1, Ordering::SeqCst);
        return 1;
    }
    let here = thread::current().id();
    let width = fan.pow(depth - 1);
    let covered = Cell::new(0);
    pool.scope(|s| {
        for k in 0..fan {
            let covered = &covered;
            s.put_then(
                move |first: usize| tree(pool, depth - 1, fan, first, leaves),
                first + k * width,
                move |outcome| {
                    assert_eq!(
                        thread::current().id(),
                        here,
                        "a callback off its scope's thread"
                    );
                    covered.set(covered.get() + outcome.unwrap());
                },
            )
            .unwrap();
        }
    });
    covered.get()
}

fn scoped_requests(depth: u32, fan: usize) -> u64 {
    (1..=depth).map(|d| fan.pow(d) as u64).sum()
}

/// Two scoped requests of which one waits for the other to run: with free
/// workers in the pool, the waiting worker must not take both to run them
/// one after the other (the first would wait for ever for the second, held
/// on that worker's stack). Taking one at a time, it leaves the other to a
/// free worker. Failed 14 rounds in 20 when `help` took every unstarted
/// request at once.
#[test]
fn a_helping_worker_leaves_its_other_requests_to_free_workers() {
    within("siblings that meet, on a pool with free workers", || {
        let pool = ThreadPool::new(4);
        for _ in 0..50 {
            let inner = pool.clone();
            let ticket = pool
                .submit(
                    move |()| {
                        let (tx, rx) = mpsc::channel::<()>();
                        let mut met = Vec::new();
                        inner.scope(|s| {
                            // Waits for its sibling; `HANG` only ends a hang.
                            s.put(move |()| rx.recv_timeout(HANG).is_ok(), ()).unwrap();
                            s.put(move |()| tx.send(()).is_ok(), ()).unwrap();
                            s.wait_with(|_, outcome| met.push(outcome.unwrap()));
                        });
                        met
                    },
                    (),
                )
                .unwrap();
            assert_eq!(ticket.wait().unwrap(), [true, true]);
        }
        let stats = pool.stats();
        assert_eq!(
            (stats.completed, stats.cancelled, stats.panicked),
            (150, 0, 0)
        );
    });
}

/// Nested scopes at every pool size from 1 to 4, three levels of three:
/// every leaf runs once, every callback on its scope's thread, and the
/// counts come out exact.
#[test]
fn nested_scopes_end_every_request_once_at_every_pool_size() {
    for workers in 1..=4 {
        within("nested scopes", move || {
            let pool = ThreadPool::new(workers);
            let leaves = hit_counters(27);
            let (inner, hits) = (pool.clone(), Arc::clone(&leaves));
            let covered = pool
                .submit(move |()| tree(&inner, 3, 3, 0, &hits), ())
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(covered, 27);
            assert_each_once("leaves", &leaves);
            let stats = pool.stats();
            assert_eq!(
                stats.completed,
                1 + scoped_requests(3, 3),
                "{workers} workers"
            );
            assert_eq!((stats.cancelled, stats.failed, stats.panicked), (0, 0, 0));
            assert_eq!(pool.pending(), 0);
        });
    }
}

/// Deep and narrow: a chain of 200 scopes, each with one request that opens
/// the next, on one worker (every level is helped) and on three.
#[test]
fn a_chain_of_nested_scopes_runs_to_the_bottom() {
    fn chain(pool: &ThreadPool, left: u32) -> u32 {
        if left == 0 {
            return 0;
        }
        let mut below = None;
        pool.scope(|s| {
            s.put_then(|()| chain(pool, left - 1), (), |o| below = Some(o.unwrap()))
                .unwrap();
        });
        below.unwrap() + 1
    }
    for workers in [1, 3] {
        within("a chain of scopes", move || {
            let pool = ThreadPool::new(workers);
            let inner = pool.clone();
            let depth = pool
                .submit(move |()| chain(&inner, 200), ())
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(depth, 200);
            assert_eq!(pool.stats().completed, 201);
        });
    }
}

/// A helped request is run as the worker's loop runs one: its
/// `Context::put` children go on the handle (and `wait` covers them), its
/// `join` splits, a stream inside a scope emits to the handle, and a
/// collector (not a scope) nested in a helped request gets its outcomes.
#[test]
fn helped_requests_put_children_join_and_stream() {
    for workers in 1..=3 {
        within(
            "children, joins and streams in helped requests",
            move || {
                let pool = ThreadPool::new(workers);
                let children = hit_counters(8);
                let items = Arc::new(Mutex::new(Vec::new()));
                let (inner, kids, got) = (pool.clone(), Arc::clone(&children), Arc::clone(&items));
                pool.put_request(
                    WorkRequest::with_context(
                        move |_: &Context<'_>, ()| {
                            let mut sums = Vec::new();
                            let xs: Vec<u64> = (1..=64).collect();
                            inner.scope(|s| {
                                for (k, half) in xs.chunks(32).enumerate() {
                                    let kids = &kids;
                                    s.put_with_context(
                                        move |cx: &Context<'_>, half: &[u64]| {
                                            for i in 0..4 {
                                                cx.put(common::hit_request(k * 4 + i, kids))
                                                    .unwrap();
                                            }
                                            let (l, r) = half.split_at(16);
                                            let (a, b) = cx.join(
                                                |_| l.iter().sum::<u64>(),
                                                |_| r.iter().sum::<u64>(),
                                            );
                                            a + b
                                        },
                                        half,
                                    )
                                    .unwrap();
                                }
                                s.wait_with(|_, o| sums.push(o.unwrap()));
                            });
                            // A collector in a stream's callable, on a worker.
                            let mut squares = inner.collector::<u64>();
                            for n in 0..5u64 {
                                squares.put(|n: u64| n * n, n).unwrap();
                            }
                            let mut sq: Vec<u64> =
                                squares.outcomes().map(|(_, o)| o.unwrap()).collect();
                            sq.sort_unstable();
                            sums.sort_unstable();
                            (sums, sq)
                        },
                        (),
                    )
                    .on_result(|_, (sums, sq)| {
                        assert_eq!(sums, [528, 1552]);
                        assert_eq!(sq, [0, 1, 4, 9, 16]);
                    }),
                )
                .unwrap();
                let inner = pool.clone();
                pool.put_request(
                    WorkRequest::streaming(
                        move |n: u64, out: &callpool::Emitter<'_, u64>| {
                            inner.scope(|s| {
                                for i in 0..n {
                                    s.put(move |i: u64| i * 10, i).unwrap();
                                }
                                s.wait_with(|_, o| out.emit(o.unwrap()).unwrap());
                            });
                            Ok::<(), ()>(())
                        },
                        4,
                    )
                    .on_result(move |_, item| got.lock().unwrap().push(item)),
                )
                .unwrap();
                // Two requests, eight children, four stream items.
                assert_eq!(pool.wait(), Ok(14));
                assert_each_once("children", &children);
                let mut items = items.lock().unwrap().clone();
                items.sort_unstable();
                assert_eq!(items, [0, 10, 20, 30]);
                let stats = pool.stats();
                // Two top-level, eight children, two and four scoped, five collected.
                assert_eq!(stats.completed, 2 + 8 + 2 + 4 + 5);
                assert_eq!((stats.cancelled, stats.panicked), (0, 0));
            },
        );
    }
}

/// A guard on the worker's state held across a scope: a request helped on
/// that worker finds the state borrowed (its `worker_state` panics, as a
/// join's second half does), and says so as `Panicked`; taken inside each
/// request instead, the state is the waiting worker's own.
#[test]
fn a_state_guard_held_across_a_scope_makes_a_helped_requests_state_call_panic() {
    common::hide_panics_starting_with("already mutably borrowed");
    within("worker state in a helped request", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .worker_state(|index| vec![index])
            .quiet_panics(true)
            .build()
            .unwrap();
        let inner = pool.clone();
        let seen = Arc::new(Mutex::new(None));
        let report = Arc::clone(&seen);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let mut held_outcome = None;
                {
                    let _guard = cx.worker_state::<Vec<usize>>().unwrap();
                    inner.scope(|s| {
                        s.put_with_context(
                            |cx: &Context<'_>, ()| cx.worker_state::<Vec<usize>>().map(|s| s.len()),
                            (),
                        )
                        .unwrap();
                        s.wait_with(|_, o| {
                            held_outcome = Some(o.map_err(|e| matches!(e, TaskError::Panicked(_))))
                        });
                    });
                }
                let mut free_outcome = None;
                inner.scope(|s| {
                    s.put_with_context(
                        |cx: &Context<'_>, ()| {
                            let mut state = cx.worker_state::<Vec<usize>>().unwrap();
                            state.push(7);
                            Some(state.len())
                        },
                        (),
                    )
                    .unwrap();
                    s.wait_with(|_, o| free_outcome = Some(o.unwrap()));
                });
                let after = cx.worker_state::<Vec<usize>>().unwrap().clone();
                *report.lock().unwrap() = Some((held_outcome, free_outcome, after));
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        let (held, free, after) = seen.lock().unwrap().take().unwrap();
        assert_eq!(held, Some(Err(true)), "helped while the state was borrowed");
        assert_eq!(free, Some(Some(2)));
        assert_eq!(
            after,
            [0, 7],
            "the helped request used the waiting worker's state"
        );
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.panicked), (2, 1));
    });
}

/// Panics at each level: a helped request that panics reaches its scope as
/// `Panicked`; a callback that panics inside a nested scope lets the scope
/// drain and then panics its request, whose parent hears `Panicked`; a
/// scope body that panics after its puts still runs every one of them once.
#[test]
fn panics_in_helped_requests_callbacks_and_bodies_lose_nothing() {
    common::hide_panics_starting_with("deliberate");
    for workers in 1..=2 {
        within("panics in nested scopes", move || {
            let pool = ThreadPool::builder()
                .workers(workers)
                .quiet_panics(true)
                .build()
                .unwrap();
            let ran = hit_counters(12);
            let (inner, hits) = (pool.clone(), Arc::clone(&ran));
            let outcomes = pool
                .submit(
                    move |()| {
                        let hits = &hits;
                        let mut seen = Vec::new();
                        inner.scope(|s| {
                            // A helped request that panics.
                            s.put(|()| -> u32 { panic!("deliberate: a scoped request") }, ())
                                .unwrap();
                            // A request whose nested scope's callback panics.
                            s.put(
                                |()| {
                                    let called = Cell::new(0u32);
                                    inner.scope(|s| {
                                        for i in 0..4 {
                                            let called = &called;
                                            s.put_then(
                                                move |i: usize| {
                                                    hits[i].fetch_add(1, Ordering::SeqCst)
                                                },
                                                i,
                                                move |_| {
                                                    called.set(called.get() + 1);
                                                    if i == 1 {
                                                        panic!("deliberate: a callback");
                                                    }
                                                },
                                            )
                                            .unwrap();
                                        }
                                    });
                                    called.get()
                                },
                                (),
                            )
                            .unwrap();
                            // A request whose nested scope's body panics.
                            s.put(
                                |()| {
                                    inner.scope(|s| {
                                        for i in 4..12 {
                                            s.put(
                                                move |i: usize| {
                                                    hits[i].fetch_add(1, Ordering::SeqCst)
                                                },
                                                i,
                                            )
                                            .unwrap();
                                        }
                                        panic!("deliberate: a scope body");
                                    })
                                },
                                (),
                            )
                            .unwrap();
                            s.wait_with(|_, o| {
                                seen.push(o.map_err(|e| matches!(e, TaskError::Panicked(_))))
                            });
                        });
                        seen
                    },
                    (),
                )
                .unwrap()
                .wait()
                .unwrap();
            assert_eq!(outcomes, [Err(true), Err(true), Err(true)]);
            assert_each_once("scoped requests", &ran);
            let stats = pool.stats();
            // The parent and twelve leaves completed; three panicked.
            assert_eq!(
                (stats.completed, stats.panicked, stats.cancelled),
                (13, 3, 0)
            );
        });
    }
}

/// `shutdown_now` two levels down: the only worker helps its scope, whose
/// request helps a nested scope, whose first request is held. Nothing
/// starts after `shutdown_now` returns; each request that had not started
/// is cancelled to its scope, once (the outer requests that never started
/// never open their scopes); the counts are exact.
#[test]
fn shutdown_now_two_levels_down_cancels_every_unstarted_request_once() {
    within("shutdown_now in a nested helping wait", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let (entered, latch) = common::gate();
        let started = Arc::new(Mutex::new(Vec::new()));
        let ends = Arc::new(Mutex::new(Vec::new()));
        let (started_in, ends_in) = (Arc::clone(&started), Arc::clone(&ends));
        pool.put_request(WorkRequest::new(
            move |()| {
                let latch = Mutex::new(Some(latch));
                let (started, ends) = (&started_in, &ends_in);
                inner.scope(|s| {
                    for outer in 0..3u32 {
                        let latch = &latch;
                        let inner = &inner;
                        s.put_then(
                            move |()| {
                                started.lock().unwrap().push(outer * 10);
                                inner.scope(|s| {
                                    for leaf in 1..4 {
                                        let name = outer * 10 + leaf;
                                        s.put_then(
                                            move |()| {
                                                started.lock().unwrap().push(name);
                                                if let Some(latch) = latch.lock().unwrap().take() {
                                                    latch.hold();
                                                }
                                            },
                                            (),
                                            move |o| ends.lock().unwrap().push((name, o)),
                                        )
                                        .unwrap();
                                    }
                                });
                            },
                            (),
                            move |o| ends.lock().unwrap().push((outer * 10, o)),
                        )
                        .unwrap();
                    }
                });
            },
            (),
        ))
        .unwrap();
        entered.await_start();
        let stats = pool.clone();
        assert!(pool.shutdown_now().is_empty(), "the parent had started");
        let started_then = started.lock().unwrap().clone();
        entered.open();
        common::until(|| ends.lock().unwrap().len() == 6);
        assert_eq!(started_then, [0, 1], "the first outer and its first leaf");
        assert_eq!(
            *started.lock().unwrap(),
            started_then,
            "none started after shutdown_now"
        );
        let ends = ends.lock().unwrap();
        let ok: HashSet<u32> = ends
            .iter()
            .filter(|(_, o)| o.is_ok())
            .map(|e| e.0)
            .collect();
        let cancelled: HashSet<u32> = ends
            .iter()
            .filter(|(_, o)| *o == Err(TaskError::Cancelled))
            .map(|e| e.0)
            .collect();
        assert_eq!(ok, HashSet::from([0, 1]));
        // The other outer requests never started, so never opened their scopes.
        assert_eq!(cancelled, HashSet::from([2, 3, 10, 20]));
        common::until(|| stats.stats().threads == 0);
        let stats = stats.stats();
        assert_eq!((stats.completed, stats.cancelled), (3, 4));
    });
}

/// Puts a request whose callable opens a scope of six requests on `pool`;
/// the first of them to run holds until the gate opens. Returns once it
/// holds: the gate, and how often each of the six has run.
fn put_a_helping_scope_of_six(pool: &ThreadPool) -> (common::Gate, Arc<Vec<AtomicUsize>>) {
    let inner = pool.clone();
    let (entered, latch) = common::gate();
    let ran = hit_counters(6);
    let hits = Arc::clone(&ran);
    pool.put_request(WorkRequest::new(
        move |()| {
            let latch = Mutex::new(Some(latch));
            inner.scope(|s| {
                for i in 0..6 {
                    let (latch, hits) = (&latch, &hits);
                    s.put(
                        move |i: usize| {
                            if let Some(latch) = latch.lock().unwrap().take() {
                                latch.hold();
                            }
                            hits[i].fetch_add(1, Ordering::SeqCst);
                        },
                        i,
                    )
                    .unwrap();
                }
            });
        },
        (),
    ))
    .unwrap();
    entered.await_start();
    (entered, ran)
}

/// A graceful shutdown while the only worker helps: it drains, so every
/// scoped request runs once, and the shutdown returns after them.
#[test]
fn shutdown_while_a_worker_helps_runs_every_scoped_request() {
    within("shutdown during a helping wait", || {
        let pool = ThreadPool::new(1);
        let (entered, ran) = put_a_helping_scope_of_six(&pool);
        let observer = pool.clone();
        let closer = thread::spawn(move || pool.shutdown());
        // Puts until the shutdown refuses them: those it took are counted.
        let mut probes = 0;
        common::until(
            || match observer.put_request(WorkRequest::new(|()| (), ())) {
                Ok(_) => {
                    probes += 1;
                    false
                }
                Err(_) => true,
            },
        );
        entered.open();
        closer.join().unwrap().unwrap();
        assert_each_once("scoped requests", &ran);
        let stats = observer.stats();
        assert_eq!((stats.completed, stats.cancelled), (7 + probes, 0));
    });
}

/// Dismissing every worker while one helps: the dismissed worker finishes
/// its request (helping its scope to the end), then leaves.
#[test]
fn dismissing_a_helping_worker_lets_its_scope_finish_first() {
    within("dismissal during a helping wait", || {
        let pool = ThreadPool::new(2);
        let (entered, ran) = put_a_helping_scope_of_six(&pool);
        pool.dismiss_workers(2);
        entered.open();
        assert_eq!(pool.wait(), Ok(1));
        assert_each_once("scoped requests", &ran);
        pool.join_all_dismissed_workers();
        let stats = pool.stats();
        assert_eq!((stats.threads, stats.completed, stats.cancelled), (0, 7, 0));
    });
}

/// Bounded request and result queues of one, and an autoscaling pool
/// between one and three workers: nested scopes still end every request
/// once (a worker's puts go past the request capacity; the helped requests'
/// children report to the handle through its one-slot result queue).
#[test]
fn nested_scopes_on_bounded_and_autoscaling_pools() {
    type Make = fn() -> callpool::Builder;
    let builders: [(&str, Make); 2] = [
        ("bounded", || {
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(1)
                .result_capacity(1)
        }),
        ("autoscaling", || {
            ThreadPool::builder()
                .min_workers(1)
                .max_workers(3)
                .keep_alive(Duration::from_millis(1))
        }),
    ];
    for (what, builder) in builders {
        within(what, move || {
            let pool = builder().build().unwrap();
            let leaves = hit_counters(16);
            let children = hit_counters(16);
            for round in 0..4 {
                let (inner, hits, kids) =
                    (pool.clone(), Arc::clone(&leaves), Arc::clone(&children));
                pool.put_request(WorkRequest::with_context(
                    move |cx: &Context<'_>, ()| {
                        let hits = &hits;
                        inner.scope(|s| {
                            for k in 0..4 {
                                let n = round * 4 + k;
                                s.put_with_context(
                                    |_: &Context<'_>, n: usize| tree(&inner, 0, 1, n, hits),
                                    n,
                                )
                                .unwrap();
                                cx.put(common::hit_request(n, &kids)).unwrap();
                            }
                        });
                    },
                    (),
                ))
                .unwrap();
            }
            // (Not `wait`'s count: a put blocked on the full request queue
            // handles results too.)
            pool.wait().unwrap();
            assert_eq!(pool.pending(), 0);
            assert_each_once("leaves", &leaves);
            assert_each_once("children", &children);
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled),
                (4 + 16 + 16, 0),
                "{what}"
            );
        });
    }
}

/// How much stack a level of helped nesting takes on a worker, and so how
/// deep a chain of scopes on one worker can go with the platform's default
/// stack (measured, not asserted: `cargo test --release --test
/// nested_waits_races -- --ignored --nocapture stack`).
#[test]
#[ignore = "a measurement; prints the stack used per level"]
fn stack_used_per_level_of_helped_nesting() {
    fn walk(pool: &ThreadPool, left: u32, marks: &Mutex<Vec<usize>>) {
        let mark = 0u8;
        marks
            .lock()
            .unwrap()
            .push(std::hint::black_box(std::ptr::addr_of!(mark)) as usize);
        if left == 0 {
            return;
        }
        pool.scope(|s| {
            s.put(|()| walk(pool, left - 1, marks), ()).unwrap();
        });
    }
    const LEVELS: u32 = 100;
    let pool = ThreadPool::new(1);
    let inner = pool.clone();
    let marks = pool
        .submit(
            move |()| {
                let marks = Mutex::new(Vec::new());
                walk(&inner, LEVELS, &marks);
                marks.into_inner().unwrap()
            },
            (),
        )
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(marks.len(), LEVELS as usize + 1);
    let per_level = (marks[0] - marks[LEVELS as usize]) / LEVELS as usize;
    println!(
        "helped nesting: {per_level} bytes of stack per level; \
         a 2 MiB stack holds about {} levels",
        (2 << 20) / per_level
    );
}

/// A collector that waits on a worker lets a free worker take what it has
/// not run, then takes the rest itself: the requests it ran here and those
/// run elsewhere add up, each once (the count of threads is not asserted:
/// that is the scheduler's).
#[test]
fn a_collector_on_a_worker_with_free_workers_ends_every_request_once() {
    within("a collector with free workers", || {
        let pool = ThreadPool::new(4);
        for _ in 0..20 {
            let inner = pool.clone();
            let ran = hit_counters(64);
            let hits = Arc::clone(&ran);
            let on: Vec<ThreadId> = pool
                .submit(
                    move |()| {
                        let mut c = inner.collector::<ThreadId>();
                        for i in 0..64 {
                            let hits = Arc::clone(&hits);
                            c.put(
                                move |i: usize| {
                                    hits[i].fetch_add(1, Ordering::SeqCst);
                                    thread::current().id()
                                },
                                i,
                            )
                            .unwrap();
                        }
                        let on = c.outcomes().map(|(_, o)| o.unwrap()).collect();
                        assert_eq!(c.pending(), 0);
                        on
                    },
                    (),
                )
                .unwrap()
                .wait()
                .unwrap();
            assert_each_once("collected requests", &ran);
            assert_eq!(on.len(), 64);
        }
    });
}

/// A scope on the test's thread whose request opens a scope on the only
/// worker, whose body panics: the request ends `Panicked`, heard by the
/// outer scope's callback, and the outer scope does not panic.
#[test]
fn a_panicking_scope_body_on_a_worker_ends_its_request_panicked() {
    common::hide_panics_starting_with("deliberate");
    within("a panic through two scopes", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .quiet_panics(true)
            .build()
            .unwrap();
        let mut heard = None;
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.put_then(
                    |()| {
                        pool.scope(|_: &mut callpool::Scope<'_, '_, u8>| -> u8 {
                            panic!("deliberate: inner body")
                        })
                    },
                    (),
                    |o| heard = Some(o.map_err(|e| matches!(e, TaskError::Panicked(_)))),
                )
                .unwrap();
            })
        }));
        assert!(result.is_ok());
        assert_eq!(heard, Some(Err(true)));
    });
}

/// Long stress: random trees of scopes on random pool sizes, and sibling
/// rendezvous inside them; every leaf once, the counts exact.
/// `cargo test --release --test nested_waits_races -- --ignored stress`
#[test]
#[ignore = "long stress"]
fn stress_random_nested_scopes() {
    let mut rng = common::Rng(0x5eed_0071);
    let done = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&done);
    let rounds: Vec<(usize, u32, usize)> = (0..2_000)
        .map(|_| {
            (
                1 + rng.below(4) as usize,
                1 + rng.below(3) as u32,
                1 + rng.below(4) as usize,
            )
        })
        .collect();
    common::within_progress(
        "random nested scopes",
        move || progress.load(Ordering::SeqCst),
        move || {
            for (workers, depth, fan) in rounds {
                let pool = ThreadPool::new(workers);
                let n = fan.pow(depth);
                let leaves = hit_counters(n);
                let (inner, hits) = (pool.clone(), Arc::clone(&leaves));
                let covered = pool
                    .submit(move |()| tree(&inner, depth, fan, 0, &hits), ())
                    .unwrap()
                    .wait()
                    .unwrap();
                assert_eq!(covered, n);
                assert_each_once("leaves", &leaves);
                let stats = pool.stats();
                assert_eq!(stats.completed, 1 + scoped_requests(depth, fan));
                assert_eq!((stats.cancelled, stats.panicked), (0, 0));
                done.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
}
