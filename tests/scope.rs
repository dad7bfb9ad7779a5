//! Scopes whose callables borrow from the caller's stack: every borrowed
//! request has ended (run, or dropped unrun) before `scope` returns or
//! unwinds, whatever the body, the callbacks or another handle do
//! meanwhile; a refused request never leaves the scope.

mod common;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use callpool::{ScopedPutError, TaskError, ThreadPool};
use common::{gate, within};

const DELIBERATE: &str = "scope: deliberate panic";

/// Opens `held` 20 ms after its request started, from another thread. The
/// pause only makes the tests that use it sharper (the scope has usually
/// reached its wait by then); they pass whatever the timing.
fn open_a_little_after_it_starts(held: common::Gate) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        held.await_start();
        thread::sleep(std::time::Duration::from_millis(20));
        held.open();
    })
}

/// Callables read chunks of a local vector and write into a local array of
/// counters; callbacks push into an `Rc<RefCell<_>>` and a `&mut` total.
/// Every chunk is summed exactly once, on a worker, and every callback
/// runs on this thread.
#[test]
fn callables_borrow_locals_and_callbacks_mutate_them() {
    within("borrowing", || {
        let pool = ThreadPool::new(4);
        let me = thread::current().id();
        let numbers: Vec<u64> = (1..=10_000).collect();
        let runs: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut total = 0u64;
        let mut on_workers = 0;
        pool.scope(|s| {
            for (i, chunk) in numbers.chunks(100).enumerate() {
                let runs = &runs;
                let seen = Rc::clone(&seen);
                s.put_then(
                    move |chunk: &[u64]| {
                        runs[i].fetch_add(1, Ordering::SeqCst);
                        (chunk.iter().sum::<u64>(), thread::current().id())
                    },
                    chunk,
                    move |outcome| {
                        assert_eq!(thread::current().id(), me, "a callback ran elsewhere");
                        seen.borrow_mut().push(outcome.unwrap());
                    },
                )
                .unwrap();
            }
            s.wait_with(|_, _| unreachable!("every request has a callback"));
            for &(sum, ran_on) in seen.borrow().iter() {
                total += sum;
                if ran_on != me {
                    on_workers += 1;
                }
            }
        });
        assert_eq!(total, 10_000 * 10_001 / 2);
        assert_eq!(seen.borrow().len(), 100);
        assert_eq!(on_workers, 100, "every callable ran on a worker");
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
    });
}

/// The body panics while a borrowing request is still held by a gate: the
/// panic passes on only after that request finished writing into the
/// borrowed counter, and after the other requests ran.
#[test]
fn a_panicking_body_waits_for_the_borrowing_requests() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking body", || {
        let pool = ThreadPool::new(2);
        let done = AtomicUsize::new(0);
        let (held, latch) = gate();
        // Opened once the body has panicked, most likely: the scope is
        // then unwinding and must wait.
        let opener = open_a_little_after_it_starts(held);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                let done = &done;
                s.put(
                    move |_: ()| {
                        latch.hold();
                        done.fetch_add(1, Ordering::SeqCst);
                    },
                    (),
                )
                .unwrap();
                for _ in 0..10 {
                    s.put(
                        move |_: ()| {
                            done.fetch_add(1, Ordering::SeqCst);
                        },
                        (),
                    )
                    .unwrap();
                }
                panic!("{DELIBERATE} in the body");
            })
        }));
        opener.join().unwrap();
        assert!(result.is_err());
        assert_eq!(
            done.load(Ordering::SeqCst),
            11,
            "every request finished first"
        );
    });
}

/// Another handle shuts the pool down while borrowing requests are queued
/// behind a held one: each is either run or dropped unrun (its callback
/// hears `Cancelled`), never both, and the scope returns.
#[test]
fn shutdown_now_from_another_handle_ends_the_scope() {
    within("shutdown", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let ran = AtomicUsize::new(0);
        let cancelled = RefCell::new(0);
        let finished = RefCell::new(0);
        let (held, latch) = gate();
        pool.scope(|s| {
            let ran = &ran;
            s.put(
                move |_: ()| {
                    latch.hold();
                    0
                },
                (),
            )
            .unwrap();
            for _ in 0..50 {
                s.put_then(
                    move |_: ()| ran.fetch_add(1, Ordering::SeqCst),
                    (),
                    |outcome| match outcome {
                        Ok(_) => *finished.borrow_mut() += 1,
                        Err(TaskError::Cancelled) => *cancelled.borrow_mut() += 1,
                        Err(other) => panic!("unexpected outcome {other:?}"),
                    },
                )
                .unwrap();
            }
            held.await_start();
            drop(other.shutdown_now());
            held.open();
        });
        let (ran, finished, cancelled) = (
            ran.load(Ordering::SeqCst),
            finished.into_inner(),
            cancelled.into_inner(),
        );
        assert_eq!(ran, finished, "a callable ran without its outcome");
        assert_eq!(finished + cancelled, 50, "every request ended once");
        assert_eq!(cancelled, 50, "the held request kept the only worker");
    });
}

/// A put the pool refuses drops its request, with what it borrowed, before
/// it returns: the callable never runs, its captured value is dropped
/// once, and the error names the request.
#[test]
fn a_refused_put_drops_its_request_inside_the_scope() {
    struct Dropped<'a>(&'a Mutex<usize>);
    impl Drop for Dropped<'_> {
        fn drop(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }
    within("refused", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let drops = Mutex::new(0);
        let ran = AtomicUsize::new(0);
        pool.scope(|s| {
            drop(other.shutdown_now());
            let token = Dropped(&drops);
            let ran = &ran;
            let refused = s.put(
                move |_: ()| {
                    let _token = token;
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                (),
            );
            let Err(ScopedPutError::ShutDown(id)) = refused else {
                panic!("expected a refusal, got {refused:?}");
            };
            assert_eq!(refused.unwrap_err().id(), id);
            assert_eq!(*drops.lock().unwrap(), 1, "dropped before put returned");
            assert_eq!(s.pending(), 0);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(*drops.lock().unwrap(), 1);
    });
}

/// A panicking borrowing callable reports `Panicked` to its callback; the
/// others still run; the scope itself does not panic.
#[test]
fn a_panicking_callable_reaches_its_callback() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking callable", || {
        let pool = ThreadPool::new(2);
        let inputs: Vec<u32> = (0..20).collect();
        let mut ok = 0;
        let mut panicked = 0;
        pool.scope(|s| {
            for n in &inputs {
                s.put(
                    |n: &u32| {
                        if *n == 7 {
                            panic!("{DELIBERATE} at 7");
                        }
                        *n
                    },
                    n,
                )
                .unwrap();
            }
            s.wait_with(|_, outcome| match outcome {
                Ok(_) => ok += 1,
                Err(TaskError::Panicked(message)) => {
                    assert!(message.contains("at 7"));
                    panicked += 1;
                }
                Err(other) => panic!("unexpected outcome {other:?}"),
            });
        });
        assert_eq!((ok, panicked), (19, 1));
    });
}

/// Many small scopes in a row on one pool, each borrowing a fresh local:
/// nothing from one scope reaches into the next (each sum is its own).
#[test]
fn scopes_in_a_row_each_see_their_own_locals() {
    within("in a row", || {
        let pool = ThreadPool::new(2);
        for round in 0..500u64 {
            let local = vec![round; 8];
            let sum = AtomicUsize::new(0);
            pool.scope(|s| {
                for value in &local {
                    let sum = &sum;
                    s.put(
                        move |v: &u64| sum.fetch_add(*v as usize, Ordering::SeqCst),
                        value,
                    )
                    .unwrap();
                }
            });
            assert_eq!(sum.load(Ordering::SeqCst), 8 * round as usize);
        }
    });
}

/// What keeps a scope from returning early is its own count of lent
/// requests, not its collector: with the collector swapped for another
/// (through `DerefMut`) and the one holding the pending request moved out
/// of the scope, the scope still waits until the borrowing request has
/// finished.
#[test]
fn a_scope_waits_for_its_lent_requests_even_with_its_collector_swapped_out() {
    within("swapped collector", || {
        let pool = ThreadPool::new(1);
        let done = AtomicUsize::new(0);
        let (held, latch) = gate();
        // Opened once the body has returned, most likely.
        let opener = open_a_little_after_it_starts(held);
        let mut parked = None;
        pool.scope(|s| {
            let done = &done;
            s.put(
                move |_: ()| {
                    latch.hold();
                    done.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .unwrap();
            let mut decoy = pool.collector::<()>();
            std::mem::swap(&mut **s, &mut decoy);
            assert_eq!(s.pending(), 0);
            // Out of the scope's reach: its drain sees nothing pending.
            parked = Some(decoy);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1, "the scope returned early");
        assert_eq!(parked.map(|c| c.pending()), Some(1));
        opener.join().unwrap();
    });
}

/// Sorts `v` in place: the median put in its place by `select_nth_unstable`
/// splits it, and `join` sorts the two sides, down to leaves of 64,
/// counting each leaf's worker.
fn sort_with_joins(cx: &callpool::Context<'_>, v: &mut [u32], leaves: &[AtomicUsize]) {
    if v.len() <= 64 {
        leaves[cx.worker_index().expect("on a worker")].fetch_add(1, Ordering::SeqCst);
        v.sort_unstable();
        return;
    }
    let mid = v.len() / 2;
    v.select_nth_unstable(mid);
    let (low, high) = v.split_at_mut(mid);
    cx.join(
        |cx| sort_with_joins(cx, low, leaves),
        |cx| sort_with_joins(cx, high, leaves),
    );
}

/// A scoped request that gets its worker's context sorts a vector the
/// caller owns, in place, splitting it with `join` (the halves borrow
/// `&mut` parts of it); on 1 worker and on 2. After the scope the vector
/// is the caller's again, sorted, a permutation of what it was; the leaves
/// ran on the pool's workers only; what the request put through its
/// context went on the pool's handle, and `wait` there handles it.
#[test]
fn a_scoped_request_with_context_sorts_a_borrowed_vector_with_joins() {
    for workers in [1, 2] {
        within("sort with joins", move || {
            let pool = ThreadPool::new(workers);
            let mut v: Vec<u32> = (0..50_000u32)
                .map(|i| i.wrapping_mul(2_654_435_761) % 5_000)
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            let leaves: Vec<AtomicUsize> = (0..2).map(|_| AtomicUsize::new(0)).collect();
            let child_ran = AtomicUsize::new(0);
            let mut ended = Vec::new();
            let child_results = std::sync::Arc::new(AtomicUsize::new(0));
            let c = std::sync::Arc::clone(&child_results);
            pool.scope(|s| {
                s.put_with_context(
                    |cx, v: &mut [u32]| {
                        sort_with_joins(cx, v, &leaves);
                        child_ran.fetch_add(1, Ordering::SeqCst);
                        cx.put(
                            callpool::WorkRequest::new(|n: u32| n, 7).on_result(move |_, n| {
                                assert_eq!(n, 7);
                                c.fetch_add(1, Ordering::SeqCst);
                            }),
                        )
                        .expect("the pool is open");
                    },
                    &mut v[..],
                )?;
                s.wait_with(|_, outcome| ended.push(outcome));
                Ok::<_, ScopedPutError>(())
            })
            .unwrap();
            assert_eq!(ended, [Ok(())]);
            assert_eq!(v, want, "{workers} workers");
            assert_eq!(child_ran.load(Ordering::SeqCst), 1);
            let total: usize = leaves.iter().map(|l| l.load(Ordering::SeqCst)).sum();
            assert!(total >= 50_000 / 64, "{total} leaves");
            // The child went on the pool's handle: its callback runs there.
            assert_eq!(pool.wait_timeout(common::HANG), Ok(1));
            assert_eq!(child_results.load(Ordering::SeqCst), 1);
        });
    }
}

/// A scope's request is not pending on the pool's handle, so while its
/// callable puts children through its `Context` on that handle, nothing
/// but each child's own count keeps a graceful `shutdown` (from another
/// thread, through a clone) from returning between two of them. Every
/// child the callable was told was accepted must be called back before
/// `shutdown` returns.
#[test]
fn graceful_shutdown_calls_back_every_child_a_scope_request_was_told_was_accepted() {
    const ROUNDS: usize = 400;
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let pool = ThreadPool::new(2);
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let called = std::sync::Arc::new(AtomicUsize::new(0));
        let (a, c) = (accepted.clone(), called.clone());
        let scoping = pool.clone();
        let scope_thread = thread::spawn(move || {
            scoping.scope(|s| {
                s.put_with_context(
                    move |cx: &callpool::Context<'_>, ()| loop {
                        let c = c.clone();
                        let child =
                            callpool::WorkRequest::new(|_: ()| (), ()).on_result(move |_, ()| {
                                c.fetch_add(1, Ordering::SeqCst);
                            });
                        match cx.put(child) {
                            Ok(_) => {
                                a.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(callpool::PutError::ShutDown(_)) => break,
                            Err(e) => panic!("{e:?}"),
                        }
                    },
                    (),
                )
                .expect("the pool is open");
            })
        });
        // Keep the handle's count low, as a polling thread does, then shut
        // down: the shutdown's wait may find nothing pending between two of
        // the callable's puts.
        let target = 1 + round % 50;
        let polled = accepted.clone();
        let shut = within("poll, then shut down", move || {
            while polled.load(Ordering::SeqCst) < target {
                let _ = pool.poll();
            }
            pool.shutdown().map_err(|e| e.to_string())
        });
        shut.expect("the shutdown");
        scope_thread.join().expect("the scope's thread");
        // The callable stopped at its first refusal and the scope waited
        // for it, so both counts are final.
        let (a, c) = (
            accepted.load(Ordering::SeqCst),
            called.load(Ordering::SeqCst),
        );
        if a != c {
            lost.push((round, a, c));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost a child's callback; (round, accepted, called back): {lost:?}",
        lost.len()
    );
}
