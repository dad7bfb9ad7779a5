//! An adversarial audit of the newest public API: `ThreadPool::install`,
//! `try_install`, `install_timeout`, `ThreadPool::join`, `Scope::put_scoped`
//! with its `ScopeContext`, and the collector's stream forms. Each test
//! tries to lose a request, run one twice or after its call returned, hang a
//! call, let a contained panic out (above all one from a user `Drop`), or get
//! the wrong error in a race; each asserts exact counts and threads.
//! Timeouts only turn a hang into a failure.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use callpool::{
    Closed, CollectorEmitter, InstallError, PutError, ScopeContext, ScopedPutError, TaskError,
    ThreadPool, WorkRequest,
};

use common::one_way::{full_pool, Gate, OpenOnDrop};
use common::PanicsOnDrop;
use common::{counter, hide_panics_starting_with, until, within, within_here, Dropped};

/// The start of every deliberate panic here, hidden from the output.
const DELIBERATE: &str = "adversarial: deliberate";

fn load(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------
// A user `Drop` that panics, in the work an install drops unrun.
// ---------------------------------------------------------------------------

#[test]
fn try_install_refused_full_contains_a_panic_in_the_dropped_works_drop() {
    hide_panics_starting_with(DELIBERATE);
    let (pool, gate, _open) = full_pool();
    let dropped = counter();
    let ran = counter();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = within_here("try_install", || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.try_install(|_| {
                let _boom = boom;
                ran.fetch_add(1, Ordering::SeqCst);
            })
        }))
    });
    let refused = refused.expect("the panic of the refused work's Drop escaped try_install");
    assert!(matches!(refused, Err(InstallError::Full(_))), "{refused:?}");
    assert_eq!((load(&ran), load(&dropped)), (0, 1));
    gate.open();
    within_here("wait", || pool.wait()).unwrap();
    assert_eq!(within_here("install", || pool.install(|_| 5)), Ok(5));
}

#[test]
fn install_timeout_refused_contains_a_panic_in_the_dropped_works_drop() {
    hide_panics_starting_with(DELIBERATE);
    let (pool, gate, _open) = full_pool();
    let dropped = counter();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = within_here("install_timeout", || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.install_timeout(
                |_| {
                    let _boom = boom;
                },
                Duration::from_millis(5),
            )
        }))
    });
    let refused = refused.expect("the panic of the refused work's Drop escaped install_timeout");
    assert!(
        matches!(refused, Err(InstallError::Timeout(_))),
        "{refused:?}"
    );
    assert_eq!(load(&dropped), 1);
    gate.open();
    within_here("wait", || pool.wait()).unwrap();
}

#[test]
fn install_on_a_closed_pool_contains_a_panic_in_the_dropped_works_drop() {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    pool.close().unwrap();
    let dropped = counter();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|_| {
            let _boom = boom;
        })
    }));
    let refused = refused.expect("the panic of the refused work's Drop escaped install");
    assert!(
        matches!(refused, Err(InstallError::ShutDown(_))),
        "{refused:?}"
    );
    assert_eq!(load(&dropped), 1);
}

#[test]
fn install_cancelled_by_another_handles_shutdown_now_contains_a_panic_in_the_works_drop() {
    hide_panics_starting_with(DELIBERATE);
    // No worker: the work waits in the queue for the sweep.
    let pool = ThreadPool::new(0);
    let stopper = pool.new_handle();
    let dropped = counter();
    let ran = counter();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let ran_in = Arc::clone(&ran);
    let installer = pool.new_handle();
    let outcome = thread::spawn(move || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            installer.install(move |_| {
                let _boom = boom;
                ran_in.fetch_add(1, Ordering::SeqCst);
            })
        }))
    });
    until(|| pool.stats().queued == 1);
    let swept = panic::catch_unwind(AssertUnwindSafe(|| stopper.shutdown_now()));
    let swept = swept.expect("the swept work's Drop panic escaped shutdown_now");
    assert!(swept.is_empty());
    let got = within("the cancelled install", move || outcome.join().unwrap())
        .expect("the swept work's Drop panic escaped install");
    assert!(matches!(got, Err(InstallError::Cancelled(_))), "{got:?}");
    assert_eq!((load(&ran), load(&dropped)), (0, 1));
}

// ---------------------------------------------------------------------------
// Which error, on pools with no worker, dismissed workers, closes.
// ---------------------------------------------------------------------------

#[test]
fn on_a_full_queue_with_no_worker_each_form_says_why() {
    // No worker and a full queue of one: nothing will ever make room.
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(1)
        .build()
        .unwrap();
    pool.execute(|| {}).unwrap();
    let dropped = counter();
    let work = |held: Dropped| {
        move |_: &callpool::Context<'_>| {
            let _held = held;
            unreachable!("refused work ran")
        }
    };
    let blocking = within_here("install", || {
        pool.install(work(Dropped(Arc::clone(&dropped))))
    });
    assert!(
        matches!(blocking, Err(InstallError::NoWorkers(_))),
        "{blocking:?}"
    );
    let tried = pool.try_install(work(Dropped(Arc::clone(&dropped))));
    assert!(matches!(tried, Err(InstallError::Full(_))), "{tried:?}");
    let timed = within_here("install_timeout", || {
        pool.install_timeout(
            work(Dropped(Arc::clone(&dropped))),
            Duration::from_secs(600),
        )
    });
    // A wait for room that only a worker could make ends at once, as
    // `install`'s does: the long timeout is never waited out.
    assert!(
        matches!(timed, Err(InstallError::NoWorkers(_))),
        "{timed:?}"
    );
    let joined = within_here("join", || pool.join(|_| 1, |_| 2));
    assert!(
        matches!(joined, Err(InstallError::NoWorkers(_))),
        "{joined:?}"
    );
    assert_eq!(load(&dropped), 3);
    // Three refusals, three distinct ids, none pending.
    let ids = [blocking, tried, timed].map(|r| r.unwrap_err().id());
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert_eq!(pool.pending(), 1);
}

#[test]
fn install_blocked_for_room_when_the_last_worker_is_dismissed_is_refused_no_workers() {
    // The install waits for room behind a plain request; the only worker,
    // holding the gate, is dismissed: nothing can make room any more, so
    // the install ends `NoWorkers` (not a wait for ever), its work dropped
    // unrun, once.
    let (pool, gate, _open) = full_pool();
    let (ran, dropped) = (counter(), counter());
    let (ran_in, held) = (Arc::clone(&ran), Dropped(Arc::clone(&dropped)));
    let installer = pool.new_handle();
    let outcome = thread::spawn(move || {
        installer.install(move |_| {
            let _held = held;
            ran_in.fetch_add(1, Ordering::SeqCst);
        })
    });
    assert_eq!(pool.dismiss_workers(1), 1);
    gate.open();
    let got = within("install", move || outcome.join().unwrap());
    assert!(matches!(got, Err(InstallError::NoWorkers(_))), "{got:?}");
    assert_eq!((load(&ran), load(&dropped)), (0, 1));
    // The plain request is still queued, for workers to come.
    assert_eq!(pool.stats().queued, 1);
    pool.create_workers(1).unwrap();
    within_here("wait", || pool.wait()).unwrap();
}

#[test]
fn install_queued_through_a_dismissal_to_zero_runs_once_workers_come_back() {
    // Unbounded queue: the work is queued behind a held request when the
    // only worker is dismissed; it waits, unrun, until a worker is added.
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let held = Arc::clone(&gate);
    let started = counter();
    let started_in = Arc::clone(&started);
    pool.execute(move || {
        started_in.fetch_add(1, Ordering::SeqCst);
        held.pass();
    })
    .unwrap();
    until(|| load(&started) == 1);
    let ran = counter();
    let installer = pool.new_handle();
    let ran_in = Arc::clone(&ran);
    let outcome = thread::spawn(move || {
        installer.install(move |cx| {
            ran_in.fetch_add(1, Ordering::SeqCst);
            (
                thread::current().name().map(str::to_owned),
                cx.worker_index(),
            )
        })
    });
    until(|| pool.stats().queued == 1);
    assert_eq!(pool.dismiss_workers(1), 1);
    gate.open();
    until(|| pool.threads() == 0);
    assert_eq!(load(&ran), 0, "the work ran on a dismissed worker");
    assert_eq!(pool.stats().queued, 1);
    pool.create_workers(1).unwrap();
    let (name, index) = within("install", move || outcome.join().unwrap()).unwrap();
    assert_eq!(load(&ran), 1);
    assert!(index.is_some());
    assert!(
        name.as_deref()
            .is_some_and(|n| n.starts_with("callpool-worker-")),
        "{name:?}"
    );
}

#[test]
fn install_queued_with_every_worker_dismissed_is_cancelled_by_a_close_on_another_handle() {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    assert_eq!(pool.dismiss_workers(1), 1);
    until(|| pool.threads() == 0);
    let dropped = counter();
    let held = Dropped(Arc::clone(&dropped));
    let installer = pool.new_handle();
    let outcome = thread::spawn(move || {
        installer.install(move |_| {
            let _held = held;
            unreachable!("{DELIBERATE}: the work ran with no worker")
        })
    });
    until(|| pool.stats().queued == 1);
    // No worker is left to drain it: the close cancels it.
    within_here("close", || pool.close()).unwrap();
    let got = within("install", move || outcome.join().unwrap());
    assert!(matches!(got, Err(InstallError::Cancelled(_))), "{got:?}");
    assert_eq!(load(&dropped), 1);
}

#[test]
fn install_racing_close_and_shutdown_now_runs_once_or_says_why_never_both() {
    // Each round: one thread installs, another closes (or stops) the pool.
    // The work runs exactly when the install says `Ok`; otherwise it is
    // `ShutDown` (refused) or `Cancelled` (swept); it is dropped once.
    for round in 0..60 {
        let pool = ThreadPool::new(1 + round % 2);
        let stopper = pool.new_handle();
        let (ran, dropped) = (counter(), counter());
        let (ran_in, held) = (Arc::clone(&ran), Dropped(Arc::clone(&dropped)));
        let installer = thread::spawn(move || {
            let got = pool.install(move |_| {
                let _held = held;
                ran_in.fetch_add(1, Ordering::SeqCst);
                round
            });
            (got, pool)
        });
        if round % 3 == 0 {
            drop(stopper.shutdown_now());
        } else {
            stopper.close().unwrap();
        }
        let (got, _pool) = within("install", move || installer.join().unwrap());
        match got {
            Ok(value) => {
                assert_eq!(value, round);
                assert_eq!(load(&ran), 1, "round {round}");
            }
            Err(InstallError::ShutDown(_) | InstallError::Cancelled(_)) => {
                assert_eq!(load(&ran), 0, "round {round}: {got:?}")
            }
            Err(other) => panic!("round {round}: {other:?}"),
        }
        assert_eq!(load(&dropped), 1, "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Where install is called from.
// ---------------------------------------------------------------------------

#[test]
fn install_from_a_worker_of_another_pool_obeys_that_pools_queue() {
    // A worker of pool B is not one of A's: a full queue of A refuses
    // `try_install` and times `install_timeout` out, as for any outside
    // thread, and the work runs on A's worker, never on B's.
    let (a, gate, _open) = full_pool();
    let b = ThreadPool::builder()
        .workers(1)
        .thread_name("other-pool")
        .build()
        .unwrap();
    let a_in_b = a.new_handle();
    let (tx, rx) = mpsc::channel();
    b.execute(move || {
        let tried = a_in_b.try_install(|_| 1);
        let timed = a_in_b.install_timeout(|_| 2, Duration::from_millis(5));
        tx.send((tried, timed)).unwrap();
    })
    .unwrap();
    let (tried, timed) = rx.recv_timeout(common::HANG).unwrap();
    assert!(matches!(tried, Err(InstallError::Full(_))), "{tried:?}");
    assert!(matches!(timed, Err(InstallError::Timeout(_))), "{timed:?}");
    gate.open();
    let a_in_b = a.new_handle();
    let (tx, rx) = mpsc::channel();
    b.execute(move || {
        let got = a_in_b.install(|cx| {
            (
                thread::current().name().map(str::to_owned),
                cx.worker_index(),
            )
        });
        tx.send(got).unwrap();
    })
    .unwrap();
    let (name, index) = rx.recv_timeout(common::HANG).unwrap().unwrap();
    assert_eq!(index, Some(0));
    assert!(
        name.as_deref()
            .is_some_and(|n| n.starts_with("callpool-worker-")),
        "{name:?}"
    );
}

#[test]
fn install_from_a_start_hook_of_the_same_pool_runs_on_the_starting_worker() {
    // The pool's first worker is held busy; a second one, as it starts,
    // installs on its own pool: nobody else can run it, so it must run it.
    type Slot = Arc<Mutex<Option<callpool::WeakPool>>>;
    let slot: Slot = Arc::default();
    let hook_slot = Arc::clone(&slot);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pool = ThreadPool::builder()
        .workers(1)
        .on_worker_start(move |index| {
            let weak = hook_slot.lock().unwrap().clone();
            let Some(pool) = weak.and_then(|w| w.upgrade()) else {
                return;
            };
            let hook_thread = thread::current().id();
            let got = pool.install(|cx| (thread::current().id() == hook_thread, cx.worker_index()));
            tx.lock().unwrap().send((index, got)).unwrap();
        })
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let held = Arc::clone(&gate);
    let started = counter();
    let started_in = Arc::clone(&started);
    pool.execute(move || {
        started_in.fetch_add(1, Ordering::SeqCst);
        held.pass();
    })
    .unwrap();
    until(|| load(&started) == 1);
    *slot.lock().unwrap() = Some(pool.downgrade());
    pool.create_workers(1).unwrap();
    let (index, got) = rx
        .recv_timeout(common::HANG)
        .expect("the hook's install hung");
    let (on_hook_thread, ran_index) = got.unwrap();
    assert_eq!(index, 1);
    assert!(on_hook_thread, "the work ran on another thread");
    assert_eq!(ran_index, Some(1));
    gate.open();
    *slot.lock().unwrap() = None;
    within_here("wait", || pool.wait()).unwrap();
}

#[test]
fn install_from_a_scopes_callback_and_join_halves_that_install() {
    // On a pool of one worker, from the caller's thread: a scope whose
    // callback installs, and a join whose halves install again (on that
    // one worker, which must run them itself).
    let pool = ThreadPool::new(1);
    let words = [String::from("one"), String::from("three")];
    let mut from_callback = None;
    within_here("scope", || {
        pool.scope(|s| {
            s.put_then(
                |w: &String| w.len(),
                &words[0],
                |n| from_callback = Some(pool.install(|_| n.unwrap() + words[1].len())),
            )
            .unwrap();
        })
    });
    assert_eq!(from_callback, Some(Ok(3 + 5)));
    let worker = pool.install(|_| thread::current().id()).unwrap();
    let ((a, a_on), (b, b_on)) = within_here("join", || {
        pool.join(
            |_| {
                let a = pool.install(|_| words[0].len());
                (a, thread::current().id())
            },
            |_| {
                let b = pool.try_install(|_| words[1].len());
                (b, thread::current().id())
            },
        )
    })
    .unwrap();
    assert_eq!((a, b), (Ok(3), Ok(5)));
    assert_eq!((a_on, b_on), (worker, worker));
}

#[test]
fn nested_installs_on_one_worker_each_run_once_on_it() {
    fn nest(pool: &ThreadPool, depth: usize, ran: &AtomicUsize) -> usize {
        ran.fetch_add(1, Ordering::SeqCst);
        if depth == 0 {
            return 0;
        }
        1 + pool.install(|_| nest(pool, depth - 1, ran)).unwrap()
    }
    let pool = ThreadPool::new(1);
    let ran = AtomicUsize::new(0);
    let depth = within_here("nested installs", || {
        pool.install(|_| nest(&pool, 20, &ran))
    });
    assert_eq!(depth, Ok(20));
    assert_eq!(load(&ran), 21);
}

// ---------------------------------------------------------------------------
// `ScopeContext`: children refused, children whose values fail to drop.
// ---------------------------------------------------------------------------

#[test]
fn a_scoped_child_refused_after_shutdown_contains_its_panicking_drop() {
    // The parent stops the pool, then puts a child that holds a value whose
    // `Drop` panics: the refusal drops it on the worker, inside `put`; the
    // panic goes no further than that drop, `put` says `ShutDown`, the
    // parent goes on, and the child ends in the scope as `Cancelled`.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let stopper = Mutex::new(Some(pool.new_handle()));
    let dropped = counter();
    let word = String::from("kept");
    let refusals = Mutex::new(Vec::new());
    let mut outcomes = Vec::new();
    within_here("scope", || {
        pool.scope(|s| {
            s.put_scoped(
                |sc: &ScopeContext<'_, '_, usize>, word: &String| {
                    drop(stopper.lock().unwrap().take().unwrap().shutdown_now());
                    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
                    let refused = panic::catch_unwind(AssertUnwindSafe(|| {
                        sc.put(
                            move |w: &String| {
                                let _boom = boom;
                                w.len()
                            },
                            word,
                        )
                    }));
                    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
                    let refused_scoped = panic::catch_unwind(AssertUnwindSafe(|| {
                        sc.put_scoped(
                            |_: &ScopeContext<'_, '_, usize>,
                             (w, _boom): (&String, PanicsOnDrop)| {
                                w.len()
                            },
                            (word, boom),
                        )
                    }));
                    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
                    let refused_stream = panic::catch_unwind(AssertUnwindSafe(|| {
                        sc.put_streaming(
                            move |w: &String, out: &CollectorEmitter<'_, usize>| {
                                let _boom = boom;
                                out.emit(w.len())
                            },
                            word,
                        )
                    }));
                    refusals.lock().unwrap().extend([
                        refused.map(|r| matches!(r, Err(ScopedPutError::ShutDown(_)))),
                        refused_scoped.map(|r| matches!(r, Err(ScopedPutError::ShutDown(_)))),
                        refused_stream.map(|r| matches!(r, Err(ScopedPutError::ShutDown(_)))),
                    ]);
                    1
                },
                &word,
            )
            .unwrap();
            s.wait_with(|_, outcome| outcomes.push(outcome));
        })
    });
    let refusals: Vec<_> = refusals.into_inner().unwrap();
    assert_eq!(refusals.len(), 3);
    for (i, r) in refusals.iter().enumerate() {
        match r {
            Ok(true) => {}
            Ok(false) => panic!("refusal {i}: not ShutDown"),
            Err(_) => panic!("refusal {i}: the child's Drop panic escaped `put`"),
        }
    }
    assert_eq!(load(&dropped), 3);
    outcomes.sort_by_key(Result::is_err);
    assert_eq!(
        outcomes,
        [
            Ok(1),
            Err(TaskError::Cancelled),
            Err(TaskError::Cancelled),
            Err(TaskError::Cancelled)
        ]
    );
}

#[test]
fn scoped_children_swept_by_shutdown_now_drop_once_and_end_cancelled() {
    // A parent on the only worker puts children behind itself, then stops
    // the pool: the sweep drops them (their values panicking in `Drop`),
    // each once, and each ends in the scope as `Cancelled`; the scope ends.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let stopper = Mutex::new(Some(pool.new_handle()));
    let (ran, dropped) = (counter(), counter());
    let words: Vec<String> = (0..5).map(|i| "x".repeat(i)).collect();
    let mut outcomes = Vec::new();
    within_here("scope", || {
        pool.scope(|s| {
            s.put_scoped(
                |sc: &ScopeContext<'_, '_, usize>, words: &[String]| {
                    for w in words {
                        let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
                        let ran = &ran;
                        sc.put(
                            move |w: &String| {
                                let _boom = boom;
                                ran.fetch_add(1, Ordering::SeqCst);
                                w.len()
                            },
                            w,
                        )
                        .unwrap();
                    }
                    drop(stopper.lock().unwrap().take().unwrap().shutdown_now());
                    100
                },
                &words[..],
            )
            .unwrap();
            s.wait_with(|_, outcome| outcomes.push(outcome));
        })
    });
    // On one worker busy with the parent, no child can start before the
    // sweep; each is dropped exactly once.
    assert_eq!(load(&ran), 0);
    assert_eq!(load(&dropped), 5);
    outcomes.sort_by_key(Result::is_err);
    let mut expected = vec![Ok(100)];
    expected.extend((0..5).map(|_| Err(TaskError::Cancelled)));
    assert_eq!(outcomes, expected);
}

#[test]
fn a_scoped_tree_ends_with_every_child_counted_once_under_a_racing_shutdown_now() {
    // Children put from several workers while another thread stops the
    // pool: each child either ran (and was counted once) or ended
    // `Cancelled`; the scope's outcomes match what ran, one per child.
    fn fan<'env>(
        sc: &ScopeContext<'_, 'env, usize>,
        (depth, ran, parents): (usize, &'env AtomicUsize, &'env AtomicUsize),
    ) -> usize {
        ran.fetch_add(1, Ordering::SeqCst);
        if depth > 0 {
            parents.fetch_add(1, Ordering::SeqCst);
            for _ in 0..3 {
                // Refused or not, the child counts on the scope.
                let _ = sc.put_scoped(fan, (depth - 1, ran, parents));
            }
        }
        1
    }
    for round in 0..20 {
        let pool = ThreadPool::new(3);
        let stopper = pool.new_handle();
        let (ran, parents) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (ok, cancelled) = within_here("scope", || {
            pool.scope(|s| {
                s.put_scoped(fan, (4, &ran, &parents)).unwrap();
                if round % 2 == 0 {
                    thread::yield_now();
                }
                drop(stopper.shutdown_now());
                let (mut ok, mut cancelled) = (0, 0);
                s.wait_with(|_, outcome| match outcome {
                    Ok(1) => ok += 1,
                    Err(TaskError::Cancelled) => cancelled += 1,
                    other => panic!("round {round}: {other:?}"),
                });
                (ok, cancelled)
            })
        });
        // Each request that ran is one `Ok`; every other one put (the
        // root, and three children of each parent that ran) is one
        // `Cancelled`: nothing lost, nothing twice.
        assert_eq!(ok, load(&ran), "round {round}");
        assert_eq!(
            ok + cancelled,
            1 + 3 * load(&parents),
            "round {round}: {ok} ok, {cancelled} cancelled"
        );
    }
}

// ---------------------------------------------------------------------------
// Streams: callbacks and items whose `Drop` panics; refusals.
// ---------------------------------------------------------------------------

#[test]
fn a_scope_streams_unread_items_with_panicking_drops_are_dropped_once_each() {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let dropped = counter();
    let d = &dropped;
    within_here("scope", || {
        pool.scope(|s: &mut callpool::Scope<'_, '_, PanicsOnDrop>| {
            s.put_streaming(
                move |n: usize, out: &CollectorEmitter<'_, PanicsOnDrop>| {
                    for _ in 0..n {
                        out.emit(PanicsOnDrop(Arc::clone(d), DELIBERATE))?;
                    }
                    Ok::<(), Closed>(())
                },
                4,
            )
            .unwrap();
            // Nothing read: the scope drops the items as it ends.
        })
    });
    assert_eq!(load(&dropped), 4);
}

#[test]
fn a_scope_streams_callback_that_panics_in_drop_passes_out_after_every_request() {
    // `each` gets every item, in order, then is dropped as the stream's end
    // is taken; its `Drop` panics. That panic passes through the call that
    // took the end (here `wait_with`), and leaves the scope once every
    // request has ended and every other callback has run.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let dropped = counter();
    let mut seen = Vec::new();
    let plain = std::cell::RefCell::new(Vec::new());
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let seen_ref = &mut seen;
    let text = String::from("a bb ccc dddd");
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        within_here("scope", || {
            pool.scope(|s| {
                s.put_streaming_then(
                    |t: &str, out: &CollectorEmitter<'_, usize>| {
                        t.split(' ').try_for_each(|w| out.emit(w.len()))
                    },
                    &text[..],
                    move |n: Result<usize, TaskError>| {
                        let _ = &boom;
                        seen_ref.push(n.unwrap())
                    },
                )
                .unwrap();
                for i in 0..3 {
                    let plain = &plain;
                    s.put_then(
                        move |t: &str| t.len() + i,
                        &text[..],
                        move |n| plain.borrow_mut().push(n.unwrap()),
                    )
                    .unwrap();
                }
                s.wait_with(|_, _| unreachable!("every request has a callback"));
                unreachable!("the callback's Drop panic did not pass through wait_with");
            })
        })
    }));
    let payload = caught.expect_err("the callback's Drop panic was lost");
    assert!(
        payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with(DELIBERATE)),
        "another panic"
    );
    assert_eq!(load(&dropped), 1);
    assert_eq!(seen, [1, 2, 3, 4]);
    let mut plain = plain.into_inner();
    plain.sort_unstable();
    assert_eq!(plain, [13, 14, 15]);
}

#[test]
fn a_refused_put_streaming_then_contains_its_callbacks_panicking_drop() {
    // Refused, `each` is dropped uncalled; its `Drop` panics. The put must
    // still answer `ShutDown`, with nothing pending.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    pool.close().unwrap();
    let dropped = counter();
    let calls = counter();
    let mut found = pool.collector::<u32>();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = panic::catch_unwind(AssertUnwindSafe(|| {
        found.put_streaming_then(|n: u32, out: &CollectorEmitter<'_, u32>| out.emit(n), 1, {
            let calls = Arc::clone(&calls);
            move |_| {
                let _ = &boom;
                calls.fetch_add(1, Ordering::SeqCst);
            }
        })
    }));
    let refused = refused.expect("the refused callback's Drop panic escaped the put");
    assert!(matches!(refused, Err(PutError::ShutDown(_))), "{refused:?}");
    assert_eq!((load(&calls), load(&dropped)), (0, 1));
    assert_eq!(found.pending(), 0);
    assert_eq!(found.outcomes().count(), 0);
}

#[test]
fn stream_forms_on_a_worker_of_the_same_pool_with_a_full_queue() {
    // On the only worker, its queue (capacity 1) full: `try_put_streaming`
    // refuses and hands the parts back; `put_streaming_timeout` does not
    // wait for room only this worker could make, it goes past the capacity;
    // both streams' items come out once, in order.
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let held = Arc::clone(&gate);
    let inner = pool.new_handle();
    let (tx, rx) = mpsc::channel();
    let started = counter();
    let started_in = Arc::clone(&started);
    pool.execute(move || {
        started_in.fetch_add(1, Ordering::SeqCst);
        held.pass();
        let count_to = |n: u32, out: &CollectorEmitter<'_, u32>| -> Result<(), Closed> {
            (1..=n).try_for_each(|i| out.emit(i))
        };
        let mut counts = inner.collector::<u32>();
        let refused = counts.try_put_streaming(count_to, 2).map(|_| ());
        let full = refused.as_ref().is_err_and(|e| e.is_full());
        let timed = counts
            .put_streaming_timeout(count_to, 3, Duration::from_secs(600))
            .map_err(|e| e.to_string());
        let (callable, n) = refused.unwrap_err().into_parts();
        let again = counts.put_streaming_timeout(callable, n, Duration::from_secs(600));
        let all: Vec<_> = counts.outcomes().collect();
        tx.send((full, timed, again.map_err(|e| e.to_string()), all))
            .unwrap();
    })
    .unwrap();
    until(|| load(&started) == 1);
    pool.execute(|| {}).unwrap();
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    within_here("wait", || pool.wait()).unwrap();
    let (full, timed, again, all) = rx.try_recv().unwrap();
    assert!(
        full,
        "try_put_streaming on a full queue was not refused Full"
    );
    let (timed, again) = (timed.unwrap(), again.unwrap());
    let by = common::by_request(all);
    assert_eq!(by[&timed], [Ok(1), Ok(2), Ok(3)]);
    assert_eq!(by[&again], [Ok(1), Ok(2)]);
    assert_eq!(by.len(), 2);
}

#[test]
fn refused_put_then_callbacks_with_panicking_drops_are_contained_in_a_collector_and_a_scope() {
    // The plain `put_then` and the scope's: refused by a closed pool, the
    // callback is dropped uncalled and its `Drop` panics; each put still
    // answers with its error, and the scope ends normally.
    hide_panics_starting_with(DELIBERATE);
    common::logs::install();
    let pool = ThreadPool::new(1);
    pool.close().unwrap();
    let dropped = counter();
    let mut squares = pool.collector::<u32>();
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = panic::catch_unwind(AssertUnwindSafe(|| {
        squares.put_then(
            |n: u32| n * n,
            3,
            move |_| {
                let _ = &boom;
            },
        )
    }))
    .expect("the refused callback's Drop panic escaped Collector::put_then");
    assert!(matches!(refused, Err(PutError::ShutDown(_))), "{refused:?}");
    assert_eq!(squares.pending(), 0);
    drop(squares);
    let word = String::from("kept");
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let refused = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            let refused = s.put_then(
                |w: &String| w.len(),
                &word,
                move |_| {
                    let _ = &boom;
                },
            );
            let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
            let streamed = s.put_streaming_then(
                |w: &String, out: &CollectorEmitter<'_, usize>| out.emit(w.len()),
                &word,
                move |_| {
                    let _ = &boom;
                },
            );
            (refused, streamed)
        })
    }))
    .expect("a refused callback's Drop panic escaped the scope");
    assert!(
        matches!(
            refused,
            (
                Err(ScopedPutError::ShutDown(_)),
                Err(ScopedPutError::ShutDown(_))
            )
        ),
        "{refused:?}"
    );
    assert_eq!(load(&dropped), 3);
    // Contained where it happened: logged, not lost.
    assert!(
        common::logs::error_with(&["a collector callback that was not put", DELIBERATE]).is_some(),
        "{:?}",
        common::logs::records()
    );
}

#[test]
fn a_callback_panicking_while_install_waits_for_room_passes_on_with_the_work_unrun() {
    // One worker, a queue of one and a result queue of one. r0's result
    // fills the result queue; r1's result, once its gate opens, cannot be
    // sent: the worker is stuck, r2 fills the queue. An install then waits
    // for room and handles this handle's results meanwhile: r0's callback
    // panics. The install passes that panic on, its work dropped unrun;
    // the rest of the handle's results still come, once each.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let callbacks = Arc::new([counter(), counter(), counter()]);
    let c = Arc::clone(&callbacks);
    pool.put_request(WorkRequest::new(|()| 0, ()).on_result(move |_, _| {
        c[0].fetch_add(1, Ordering::SeqCst);
        panic!("{DELIBERATE} result callback");
    }))
    .unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (held, started) = (Arc::clone(&gate), counter());
    let started_in = Arc::clone(&started);
    let c = Arc::clone(&callbacks);
    pool.put_request(
        WorkRequest::new(
            move |()| {
                started_in.fetch_add(1, Ordering::SeqCst);
                held.pass();
                1
            },
            (),
        )
        .on_result(move |_, _| {
            c[1].fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    until(|| load(&started) == 1);
    let c = Arc::clone(&callbacks);
    pool.put_request(WorkRequest::new(|()| 2, ()).on_result(move |_, _| {
        c[2].fetch_add(1, Ordering::SeqCst);
    }))
    .unwrap();
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    let (ran, dropped) = (counter(), counter());
    let held = Dropped(Arc::clone(&dropped));
    let caught = within_here("install", || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.install(|_| {
                let _held = held;
                ran.fetch_add(1, Ordering::SeqCst);
            })
        }))
    });
    let payload = caught.expect_err("the callback's panic did not pass on through install");
    assert!(
        payload
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with(DELIBERATE)),
        "another panic"
    );
    assert_eq!((load(&ran), load(&dropped)), (0, 1));
    within_here("wait", || pool.wait()).unwrap();
    let counts: Vec<usize> = callbacks.iter().map(|c| load(c)).collect();
    assert_eq!(counts, [1, 1, 1]);
    assert_eq!(within_here("install", || pool.install(|_| 9)), Ok(9));
}

#[test]
fn join_whose_first_half_panics_drops_the_second_unrun_once_on_one_worker() {
    // One worker: `b` is only ever offered to the worker running `a`, so
    // when `a` panics, `b` is dropped unrun; its `Drop` panics too, and
    // that goes no further: `a`'s payload comes out.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let (ran_b, dropped) = (counter(), counter());
    let boom = PanicsOnDrop(Arc::clone(&dropped), DELIBERATE);
    let caught = within_here("join", || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            pool.join(
                |_| -> u32 { panic!("{DELIBERATE} first half") },
                |_| {
                    let _boom = boom;
                    ran_b.fetch_add(1, Ordering::SeqCst);
                },
            )
        }))
    });
    let payload = caught.expect_err("the first half's panic was lost");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(format!("{DELIBERATE} first half").as_str())
    );
    assert_eq!((load(&ran_b), load(&dropped)), (0, 1));
    assert_eq!(within_here("install", || pool.install(|_| 3)), Ok(3));
}

#[test]
fn install_timeout_of_duration_max_waits_as_install_does() {
    let pool = ThreadPool::new(1);
    let got = within_here("install_timeout", || {
        pool.install_timeout(|_| 4, Duration::MAX)
    });
    assert_eq!(got, Ok(4));
    let (pool, gate, _open) = full_pool();
    let installer = pool.new_handle();
    let outcome = thread::spawn(move || installer.install_timeout(|_| 5, Duration::MAX));
    // The wait for room has no end: it ends only when room comes.
    gate.open();
    assert_eq!(
        within("install_timeout", move || outcome.join().unwrap()),
        Ok(5)
    );
}

#[test]
fn install_on_an_autoscaling_pool_that_shrinks_to_nothing_starts_a_worker_each_time() {
    let pool = ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(1)
        .keep_alive(Duration::from_millis(1))
        .queue_capacity(1)
        .build()
        .unwrap();
    let ran = AtomicUsize::new(0);
    for round in 0..8 {
        // Wait until the pool has no thread left, then install.
        until(|| pool.threads() == 0);
        let got = within_here("install", || {
            if round % 2 == 0 {
                pool.install(|cx| {
                    (
                        ran.fetch_add(1, Ordering::SeqCst),
                        cx.worker_index().is_some(),
                    )
                })
            } else {
                pool.try_install(|cx| {
                    (
                        ran.fetch_add(1, Ordering::SeqCst),
                        cx.worker_index().is_some(),
                    )
                })
            }
        });
        assert_eq!(got, Ok((round, true)), "round {round}");
    }
    assert_eq!(load(&ran), 8);
}

#[test]
fn scope_context_join_whose_first_half_panics_keeps_every_child_of_the_second() {
    // `b` puts children into the scope from wherever it runs; `a` panics.
    // The parent ends `Panicked`, and each child `b` put comes out once.
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let put_by_b = AtomicUsize::new(0);
    let xs: Vec<usize> = (0..16).collect();
    let (mut ok, mut panicked) = (0, 0);
    within_here("scope", || {
        pool.scope(|s| {
            s.put_scoped(
                |sc: &ScopeContext<'_, '_, usize>, xs: &[usize]| {
                    sc.join(
                        |_| panic!("{DELIBERATE} first half"),
                        |sc| {
                            for x in xs {
                                sc.put(|x: &usize| *x, x).unwrap();
                                put_by_b.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                    );
                    unreachable!("join passed the first half's panic on")
                },
                &xs[..],
            )
            .unwrap();
            s.wait_with(|_, outcome| match outcome {
                Ok(_) => ok += 1,
                Err(TaskError::Panicked(_)) => panicked += 1,
                Err(other) => panic!("{other:?}"),
            });
        })
    });
    assert_eq!(panicked, 1);
    assert_eq!(ok, load(&put_by_b));
    assert!(ok == 0 || ok == 16, "b stopped part-way: {ok}");
}

#[test]
fn installs_across_two_pools_whose_only_workers_wait_on_each_other_need_a_worker_added() {
    // P's only worker installs into Q while Q's only worker installs into
    // P: a worker waiting in another pool's install runs nothing of its own
    // pool meanwhile (only a wait on its own pool helps), so neither queued
    // work can start: both stay queued, unrun, however long this waits.
    // A worker added to P breaks the cycle, and each work runs once.
    let p = ThreadPool::builder()
        .workers(1)
        .thread_name("pool-p")
        .build()
        .unwrap();
    let q = ThreadPool::builder()
        .workers(1)
        .thread_name("pool-q")
        .build()
        .unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let (tx, rx) = mpsc::channel();
    let installing = counter();
    let (q_in_p, b, t) = (q.new_handle(), Arc::clone(&barrier), tx.clone());
    let i = Arc::clone(&installing);
    p.execute(move || {
        b.wait();
        i.fetch_add(1, Ordering::SeqCst);
        let got = q_in_p.install(|_| thread::current().name().map(str::to_owned));
        t.send(("p's worker into q", got)).unwrap();
    })
    .unwrap();
    let (p_in_q, b) = (p.new_handle(), Arc::clone(&barrier));
    let i = Arc::clone(&installing);
    q.execute(move || {
        b.wait();
        i.fetch_add(1, Ordering::SeqCst);
        let got = p_in_q.install(|_| thread::current().name().map(str::to_owned));
        tx.send(("q's worker into p", got)).unwrap();
    })
    .unwrap();
    // Both workers have taken their requests and are installing: once
    // both installs are queued, each waits behind the other pool's worker.
    until(|| load(&installing) == 2);
    until(|| p.stats().queued == 1 && q.stats().queued == 1);
    assert_eq!((p.stats().running, q.stats().running), (1, 1));
    assert!(
        rx.try_recv().is_err(),
        "an install ended while both pools were held"
    );
    p.create_workers(1).unwrap();
    let mut got: Vec<_> = (0..2)
        .map(|_| {
            rx.recv_timeout(common::HANG)
                .expect("hang: the cycle did not break")
        })
        .collect();
    got.sort_by_key(|(who, _)| *who);
    let names: Vec<_> = got
        .into_iter()
        .map(|(who, r)| (who, r.unwrap().unwrap()))
        .collect();
    assert_eq!(names[0].0, "p's worker into q");
    assert!(names[0].1.starts_with("pool-q"), "{names:?}");
    assert_eq!(names[1].0, "q's worker into p");
    assert!(names[1].1.starts_with("pool-p"), "{names:?}");
}

#[test]
fn try_put_streaming_racing_shutdown_now_ends_each_stream_once_or_hands_it_back() {
    // Each round, streams are put while another handle stops the pool. A
    // put that succeeds ends exactly once in the collector, with all its
    // items (it ran) or `Cancelled` and none (it did not); a refused one
    // hands its callable and argument back, never run; every callable is
    // dropped exactly once.
    fn count_to((n, _held): (u32, Dropped), out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
        (1..=n).try_for_each(|i| out.emit(i))
    }
    for round in 0..30 {
        let pool = ThreadPool::new(1 + round % 2);
        let stopper = pool.new_handle();
        let dropped = counter();
        let mut counts = pool.collector::<u32>();
        let stop = thread::spawn(move || drop(stopper.shutdown_now()));
        let (mut put, mut refused) = (Vec::new(), 0);
        for n in 0..6u32 {
            match counts.try_put_streaming(count_to, (n, Dropped(Arc::clone(&dropped)))) {
                Ok(id) => put.push((id, n)),
                Err(e) => {
                    assert!(e.is_shut_down(), "round {round}: {e:?}");
                    let (_callable, (_, held)) = e.into_parts();
                    drop(held);
                    refused += 1;
                }
            }
        }
        let by = common::by_request(within_here("outcomes", || {
            counts.outcomes().collect::<Vec<_>>()
        }));
        stop.join().unwrap();
        for (id, n) in &put {
            let got = by.get(id).cloned().unwrap_or_default();
            let all: Vec<_> = (1..=*n).map(Ok).collect();
            let cancelled = vec![Err(TaskError::Cancelled)];
            // A stream that ran emits everything (its collector is still
            // here): nothing else counts, an empty one included.
            assert!(
                got == all || got == cancelled,
                "round {round}: stream of {n}: {got:?}"
            );
        }
        // Nothing comes out under an id no put returned.
        assert!(
            by.keys().all(|id| put.iter().any(|(p, _)| p == id)),
            "round {round}"
        );
        drop(counts);
        assert_eq!(put.len() + refused, 6);
        assert_eq!(load(&dropped), 6, "round {round}");
    }
}

#[test]
fn install_from_a_stop_hook_of_a_dismissed_last_worker_does_not_wait_for_ever() {
    // The only worker is dismissed; as it leaves, its stop hook installs on
    // its own pool, and waits for a ticket. No other worker exists: each
    // must run on the leaving thread; waiting for a worker would hang (it
    // did: the hook ran after the worker stopped being reachable for
    // help, while its thread still counted as running).
    type Slot = Arc<Mutex<Option<callpool::WeakPool>>>;
    let slot: Slot = Arc::default();
    let hook_slot = Arc::clone(&slot);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let pool = ThreadPool::builder()
        .workers(1)
        .on_worker_stop(move |index| {
            let weak = hook_slot.lock().unwrap().take();
            let Some(pool) = weak.and_then(|w| w.upgrade()) else {
                return;
            };
            let hook_thread = thread::current().id();
            let got = pool.install(|_| thread::current().id() == hook_thread);
            let ticket = pool.submit(|n: u32| n + 1, 1).map(|t| t.wait()).ok();
            tx.lock().unwrap().send((index, got, ticket)).unwrap();
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(pool.downgrade());
    assert_eq!(pool.dismiss_workers(1), 1);
    let (index, got, ticket) = rx
        .recv_timeout(common::HANG)
        .expect("hang: the stop hook's install never returned");
    assert_eq!(index, 0);
    assert_eq!(got, Ok(true));
    assert_eq!(ticket, Some(Ok(2)), "a ticket's wait in the stop hook");
}

#[test]
fn a_scopes_stream_swept_before_it_started_gives_its_callback_one_cancelled() {
    // The stream waits behind a held request on the only worker; another
    // handle stops the pool: `each` hears `Cancelled` once, and nothing
    // else, and is dropped once.
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (held, started) = (Arc::clone(&gate), counter());
    let started_in = Arc::clone(&started);
    pool.execute(move || {
        started_in.fetch_add(1, Ordering::SeqCst);
        held.pass();
    })
    .unwrap();
    until(|| load(&started) == 1);
    let stopper = pool.new_handle();
    let (ran, dropped) = (counter(), counter());
    let mut heard = Vec::new();
    let text = String::from("never read");
    within_here("scope", || {
        pool.scope(|s| {
            let held = Dropped(Arc::clone(&dropped));
            let heard = &mut heard;
            let ran = &ran;
            s.put_streaming_then(
                move |t: &str, out: &CollectorEmitter<'_, usize>| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    out.emit(t.len())
                },
                &text[..],
                move |n| {
                    let _ = &held;
                    heard.push(n)
                },
            )
            .unwrap();
            assert_eq!(s.pending(), 1);
            drop(stopper.shutdown_now());
            assert_eq!(
                s.wait_with(|_, _| unreachable!("the stream has a callback")),
                1
            );
        })
    });
    assert_eq!(heard, [Err(TaskError::Cancelled)]);
    assert_eq!((load(&ran), load(&dropped)), (0, 1));
}

#[test]
fn a_full_queue_that_is_draining_says_shut_down_to_every_form_not_full() {
    // The queue is full and the pool closing (another handle's `close`
    // waits for the drain): every form is refused `ShutDown` at once, the
    // blocking ones included, rather than `Full`, `Timeout` or a wait.
    let (pool, gate, _open) = full_pool();
    let closer = pool.new_handle();
    let closing = thread::spawn(move || closer.close());
    until(|| pool.is_shut_down());
    let dropped = counter();
    let work = |held: Dropped| {
        move |_: &callpool::Context<'_>| {
            let _held = held;
            unreachable!("refused work ran")
        }
    };
    let tried = pool.try_install(work(Dropped(Arc::clone(&dropped))));
    let timed = within_here("install_timeout", || {
        pool.install_timeout(
            work(Dropped(Arc::clone(&dropped))),
            Duration::from_secs(600),
        )
    });
    let blocking = within_here("install", || {
        pool.install(work(Dropped(Arc::clone(&dropped))))
    });
    for got in [tried, timed, blocking] {
        assert!(matches!(got, Err(InstallError::ShutDown(_))), "{got:?}");
    }
    assert_eq!(load(&dropped), 3);
    let mut counts = pool.collector::<u32>();
    let refused = counts
        .try_put_streaming(|n: u32, out: &CollectorEmitter<'_, u32>| out.emit(n), 1)
        .unwrap_err();
    assert!(refused.is_shut_down(), "{refused:?}");
    gate.open();
    within("close", move || closing.join().unwrap()).unwrap();
}

#[test]
fn join_whose_halves_both_panic_passes_on_the_first_halfs_payload() {
    hide_panics_starting_with(DELIBERATE);
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        let caught = within_here("join", || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    |_| -> u8 { panic!("{DELIBERATE} half a") },
                    |_| -> u8 { panic!("{DELIBERATE} half b") },
                )
            }))
        });
        let payload = caught.expect_err("no panic came out of join");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(format!("{DELIBERATE} half a").as_str()),
            "{workers} workers"
        );
        assert_eq!(within_here("install", || pool.install(|_| 1)), Ok(1));
    }
}

#[test]
fn install_from_a_scope_callback_on_the_only_worker_runs_there() {
    // A request on the only worker opens a scope; the scope's callback runs
    // on that worker (the scope's thread) and installs on the same pool:
    // nobody else can run the work, so the worker runs it itself, once.
    let pool = ThreadPool::new(1);
    let inner = pool.new_handle();
    let (tx, rx) = mpsc::channel();
    pool.execute(move || {
        let worker = thread::current().id();
        let ran = AtomicUsize::new(0);
        let words = [String::from("abc")];
        let mut got = None;
        inner.scope(|s| {
            s.put_then(
                |w: &String| w.len(),
                &words[0],
                |n| {
                    got = Some(inner.install(|_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        (n.unwrap() * 2, thread::current().id() == worker)
                    }))
                },
            )
            .unwrap();
        });
        tx.send((got, load(&ran))).unwrap();
    })
    .unwrap();
    let (got, ran) = rx
        .recv_timeout(common::HANG)
        .expect("hang: the install in the callback");
    assert_eq!(got, Some(Ok((6, true))));
    assert_eq!(ran, 1);
}
