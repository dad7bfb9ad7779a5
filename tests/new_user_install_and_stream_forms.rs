//! A new user's programs for this release's newest additions, written from
//! the public docs alone (README, `docs/guide.md`, rustdoc): fork-join from
//! the caller's thread (`ThreadPool::install`, `ThreadPool::join`), each row
//! of the guide's *Coming from rayon* table for them, and a collector's and
//! a scope's stream forms (`try_`, `_timeout`, `_then`, fallible). Each test
//! is one program a user would write, asserting exactly what the docs
//! promise. Timeouts only turn a hang into a failure.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use callpool::{
    Closed, CollectorEmitter, Context, InstallError, ScopedPutError, TaskError, ThreadPool,
    WaitError, WorkRequest,
};

use common::{
    counter, gate, held_worker, hide_panics_starting_with, until, within, within_here, Dropped,
    TestResult, HANG,
};

const DELIBERATE: &str = "new user: deliberate panic";

// ---------------------------------------------------------------------------
// install and join: fork-join over what the caller's thread owns
// ---------------------------------------------------------------------------

fn sum(cx: &Context<'_>, xs: &[u64]) -> u64 {
    if xs.len() <= 1_000 {
        return xs.iter().sum();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
    a + b
}

fn merge_sort(cx: &Context<'_>, v: &mut [u32]) {
    if v.len() <= 512 {
        v.sort_unstable();
        return;
    }
    let mid = v.len() / 2;
    let (low, high) = v.split_at_mut(mid);
    cx.join(|cx| merge_sort(cx, low), |cx| merge_sort(cx, high));
    let mut merged = Vec::with_capacity(v.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < v.len() {
        if v[i] <= v[j] {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..]);
    v.copy_from_slice(&merged);
}

fn max(cx: &Context<'_>, xs: &[i64]) -> Option<i64> {
    if xs.len() <= 256 {
        return xs.iter().copied().max();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(|cx| max(cx, left), |cx| max(cx, right));
    a.max(b)
}

fn scrambled(n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| i.wrapping_mul(2_654_435_761) % 10_007)
        .collect()
}

#[test]
fn install_sums_a_borrowed_vec_split_with_join() -> TestResult {
    let pool = ThreadPool::new(4);
    let xs: Vec<u64> = (1..=200_000).collect();
    let total = within_here("install's sum", || pool.install(|cx| sum(cx, &xs)))?;
    assert_eq!(total, 200_000 * 200_001 / 2);
    assert_eq!(xs.len(), 200_000, "still ours after the call");
    Ok(())
}

#[test]
fn install_sorts_a_vec_in_place() -> TestResult {
    let pool = ThreadPool::new(3);
    let mut v = scrambled(50_000);
    let mut expected = v.clone();
    expected.sort_unstable();
    within_here("install's sort", || {
        pool.install(|cx| merge_sort(cx, &mut v))
    })?;
    assert_eq!(v, expected);
    Ok(())
}

#[test]
fn pool_join_finds_a_max_over_two_borrowed_halves() -> TestResult {
    let pool = ThreadPool::new(2);
    let xs: Vec<i64> = (0..10_000i64)
        .map(|i| (i * 7_919) % 10_007 - 5_000)
        .collect();
    let (left, right) = xs.split_at(4_321);
    let (a, b) = within_here("join's max", || {
        pool.join(|cx| max(cx, left), |cx| max(cx, right))
    })?;
    assert_eq!(a.max(b), xs.iter().copied().max());
    assert_eq!(a, left.iter().copied().max());
    assert_eq!(b, right.iter().copied().max());
    Ok(())
}

/// The rustdoc: "Runs `a` and `b` on the pool, in parallel where a worker
/// is free". Each half waits for the other to have started: they can only
/// both return if two workers ran them at once.
#[test]
fn pool_join_runs_both_halves_at_once_when_a_worker_is_free() -> TestResult {
    let pool = ThreadPool::new(2);
    let (a_here, a_seen) = mpsc::channel();
    let (b_here, b_seen) = mpsc::channel();
    let (ta, tb) = within_here("both halves at once", || {
        pool.join(
            move |_| {
                a_here.send(()).unwrap();
                b_seen.recv_timeout(HANG).expect("b never ran beside a");
                thread::current().id()
            },
            move |_| {
                b_here.send(()).unwrap();
                a_seen.recv_timeout(HANG).expect("a never ran beside b");
                thread::current().id()
            },
        )
    })?;
    assert_ne!(ta, tb, "two workers ran the halves");
    assert_ne!(ta, thread::current().id());
    assert_ne!(tb, thread::current().id());
    Ok(())
}

/// The rustdoc: "If `op` panics, the panic passes on here, once `op` has
/// ended, with its own payload". A `String` payload and one of a type of
/// our own both come out as they went in, and the pool goes on.
#[test]
fn a_panic_in_install_comes_out_with_its_own_payload() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    #[derive(Debug, PartialEq)]
    struct MyPayload(u32);
    let pool = ThreadPool::new(2);
    let n = 41;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|_| -> u32 { panic!("{DELIBERATE}: {n}") })
    }));
    let payload = caught.expect_err("the panic passes on");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(&*format!("{DELIBERATE}: 41"))
    );

    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|_| -> u32 { panic::panic_any(MyPayload(7)) })
    }));
    let payload = caught.expect_err("the panic passes on");
    assert_eq!(payload.downcast_ref::<MyPayload>(), Some(&MyPayload(7)));

    assert_eq!(pool.install(|_| 7)?, 7, "the pool goes on");
    assert_eq!(pool.workers(), 2, "no worker was lost");
    assert_eq!(pool.stats().running, 0);
    Ok(())
}

/// The rustdoc of `join`: a panic in either half passes on here once both
/// halves are over (`a`'s if both panic); if `a` panics, `b` is dropped
/// unrun if no worker has taken it, and waited for if one has.
#[test]
fn a_panic_in_either_half_of_join_passes_on_after_both_ended() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);

    // Only `b` panics: its payload comes out.
    let a_ran = AtomicBool::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            |_| a_ran.store(true, Ordering::SeqCst),
            |_| -> () { panic!("{DELIBERATE}: b") },
        )
    }));
    let payload = caught.expect_err("b's panic passes on");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(&*format!("{DELIBERATE}: b"))
    );
    assert!(a_ran.load(Ordering::SeqCst), "a ran to its end first");

    // `a` panics once `b` has started on the other worker; `b` goes on
    // until it knows `a` has panicked, then ends: the panic comes out only
    // after `b` has ended.
    let b_started = AtomicBool::new(false);
    let a_panicking = AtomicBool::new(false);
    let b_ended = AtomicBool::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            |_| -> () {
                until(|| b_started.load(Ordering::SeqCst));
                a_panicking.store(true, Ordering::SeqCst);
                panic!("{DELIBERATE}: a")
            },
            |_| {
                b_started.store(true, Ordering::SeqCst);
                until(|| a_panicking.load(Ordering::SeqCst));
                thread::yield_now();
                b_ended.store(true, Ordering::SeqCst);
            },
        )
    }));
    assert!(caught.is_err());
    assert!(
        b_ended.load(Ordering::SeqCst),
        "join came out before b ended"
    );

    // Unlike `rayon::join` ("both closures will always be executed"): on
    // one worker nobody else can take `b`, and when `a` panics `b` is
    // dropped unrun (as `Context::join`'s `# Panics` says).
    let solo = ThreadPool::new(1);
    let b_ran = AtomicBool::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        solo.join(
            |_| -> () { panic!("{DELIBERATE}: a alone") },
            |_| b_ran.store(true, Ordering::SeqCst),
        )
    }));
    assert!(caught.is_err());
    assert!(!b_ran.load(Ordering::SeqCst), "b is dropped unrun");

    // Both panic (`b` on the other worker, before `a` does): `a`'s payload.
    let b_panicking = AtomicBool::new(false);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.join(
            |_| -> () {
                until(|| b_panicking.load(Ordering::SeqCst));
                panic!("{DELIBERATE}: first")
            },
            |_| -> () {
                b_panicking.store(true, Ordering::SeqCst);
                panic!("{DELIBERATE}: second")
            },
        )
    }));
    let payload = caught.expect_err("a panic passes on");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(&*format!("{DELIBERATE}: first"))
    );
    assert_eq!(pool.join(|_| 1, |_| 2)?, (1, 2), "the pool goes on");
    Ok(())
}

/// `InstallError`'s doc: refused, "it was dropped unrun by the time the
/// call returned".
#[test]
fn install_and_join_on_a_closed_pool_are_refused_and_drop_the_work() -> TestResult {
    let pool = ThreadPool::new(2);
    pool.close()?;
    let drops = counter();
    let ran = AtomicBool::new(false);
    let guard = Dropped(Arc::clone(&drops));
    let refused = pool.install(|_| {
        let _keep = &guard;
        ran.store(true, Ordering::SeqCst);
    });
    let err = refused.expect_err("a closed pool refuses");
    assert!(matches!(err, InstallError::ShutDown(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("pool is shut down (request {})", err.id())
    );
    assert!(!ran.load(Ordering::SeqCst));
    drop(guard); // only borrowed: dropping it here is the one drop
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // A `move` closure: the work itself owns the value, and is dropped
    // unrun before the call returns.
    let owned = Dropped(Arc::clone(&drops));
    let refused = pool.install(move |_| {
        let _keep = owned;
    });
    assert!(matches!(refused, Err(InstallError::ShutDown(_))));
    assert_eq!(drops.load(Ordering::SeqCst), 2, "dropped unrun");

    let refused = pool.join(|_| 1, |_| 2);
    assert!(matches!(refused, Err(InstallError::ShutDown(_))));

    // `shutdown` refuses it the same way.
    let pool = ThreadPool::new(1);
    pool.clone().shutdown()?; // `shutdown` takes a handle by value
    assert!(matches!(
        pool.install(|_| ()),
        Err(InstallError::ShutDown(_))
    ));
    Ok(())
}

/// The rustdoc: "called on one of this pool's workers it never waits for
/// itself: if no other worker has started `op`, the calling worker runs
/// it". One worker, install from a ticket's callable, and from inside an
/// install: both end, on that worker.
#[test]
fn install_from_inside_a_request_of_a_one_worker_pool_does_not_deadlock() -> TestResult {
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("solo")
        .build()?;
    let inner = pool.clone();
    let ticket = pool.submit(
        move |xs: Vec<u64>| {
            let outer = thread::current().id();
            inner
                .install(|cx| {
                    (
                        sum(cx, &xs),
                        thread::current().id() == outer,
                        cx.worker_index(),
                    )
                })
                .expect("the pool is open")
        },
        (1..=5_000).collect(),
    )?;
    let (total, same_thread, index) = within("install inside a request", move || ticket.wait())?;
    assert_eq!(total, 5_000 * 5_001 / 2);
    assert!(same_thread, "the calling worker ran it itself");
    assert_eq!(index, Some(0));

    // Nested: install inside install, and join inside install, on the
    // one worker.
    let v = [3u64, 1, 2];
    let nested = within_here("install inside install", || {
        pool.install(|_| pool.install(|_| v.iter().sum::<u64>()))
    })?;
    assert_eq!(nested, Ok(6));
    let joined = within_here("join inside install", || {
        pool.install(|_| pool.join(|_| v[0], |_| v[1]))
    })?;
    assert_eq!(joined, Ok((3, 1)));
    Ok(())
}

/// The rust-threadpool table: `wait` "called inside a job returns
/// `WaitError::OnWorkerThread` instead of deadlocking"; install's op runs on
/// a worker, so the same holds there.
#[test]
fn wait_inside_install_says_it_is_on_a_worker() -> TestResult {
    let pool = ThreadPool::new(1);
    let waited = within_here("wait inside install", || pool.install(|_| pool.wait()))?;
    assert!(
        matches!(waited, Err(WaitError::OnWorkerThread)),
        "{waited:?}"
    );
    Ok(())
}

/// The rustdoc: "What `op` puts through its context belongs to this
/// handle, as any request's children do: this call does not wait for them,
/// `wait` does." A held child proves install returned without it; `wait`
/// then runs every child's callback on this thread.
#[test]
fn children_put_inside_install_are_covered_by_wait_not_by_install() -> TestResult {
    let pool = ThreadPool::new(1);
    let here = thread::current().id();
    let (tx, rx) = mpsc::channel();
    let (held, latch) = gate();
    let put = within_here("install putting children", || {
        pool.install(|cx| {
            cx.put(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .expect("the pool is open");
            for n in 1..=10u64 {
                let tx = tx.clone();
                cx.put(WorkRequest::new(|n: u64| n * n, n).on_result(move |_, sq| {
                    tx.send((sq, thread::current().id())).unwrap();
                }))
                .expect("the pool is open");
            }
            11
        })
    })?;
    assert_eq!(put, 11);
    assert_eq!(pool.pending(), 11, "every child is pending on the handle");
    held.await_start(); // install returned although this child had not ended
    held.open();
    assert_eq!(within_here("wait for the children", || pool.wait())?, 11);
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 10);
    assert_eq!(got.iter().map(|(sq, _)| sq).sum::<u64>(), 385);
    assert!(
        got.iter().all(|(_, t)| *t == here),
        "callbacks on this thread"
    );
    Ok(())
}

/// The rustdoc: "A pool whose workers are all dismissed (and left open)
/// waits until workers are added".
#[test]
fn install_on_a_pool_with_no_worker_waits_for_one() -> TestResult {
    let pool = ThreadPool::new(0);
    let adder = pool.clone();
    let helper = thread::spawn(move || {
        until(|| adder.queued() == 1);
        adder.create_workers(1).unwrap();
    });
    let xs = [1u64, 2, 3];
    let got = within_here("install waiting for a worker", || {
        pool.install(|cx| (xs.iter().sum::<u64>(), cx.worker_index()))
    })?;
    assert_eq!(got, (6, Some(0)));
    helper.join().unwrap();
    Ok(())
}

/// `InstallError::Cancelled`: "another handle's `shutdown_now` cancelled it
/// while it waited in the queue". The work is dropped unrun.
#[test]
fn install_cancelled_by_another_handles_shutdown_now() -> TestResult {
    let pool = ThreadPool::new(0);
    let other = pool.new_handle();
    let stopper = thread::spawn(move || {
        until(|| other.queued() == 1);
        other.shutdown_now().len()
    });
    let drops = counter();
    let owned = Dropped(Arc::clone(&drops));
    let got = within_here("install cancelled", || {
        pool.install(move |_| {
            let _keep = owned;
            1
        })
    });
    assert!(matches!(got, Err(InstallError::Cancelled(_))), "{got:?}");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped unrun");
    assert_eq!(stopper.join().unwrap(), 0, "nothing of the other handle's");
    Ok(())
}

/// The same with `shutdown_now` on a clone of the installing handle (the
/// docs named only "another handle's" until this test): its work borrows,
/// so it is not among what `shutdown_now` hands back.
#[test]
fn install_cancelled_by_a_clones_shutdown_now() -> TestResult {
    let pool = ThreadPool::new(0);
    let clone = pool.clone();
    let stopper = thread::spawn(move || {
        until(|| clone.queued() == 1);
        clone.shutdown_now().len()
    });
    let local = [1, 2, 3];
    let got = within_here("install cancelled by a clone", || {
        pool.install(|_| local.len())
    });
    assert!(matches!(got, Err(InstallError::Cancelled(_))), "{got:?}");
    assert_eq!(stopper.join().unwrap(), 0, "the install is not handed back");
    Ok(())
}

#[test]
fn install_and_join_on_the_global_pool() -> TestResult {
    let xs: Vec<u64> = (1..=10_000).collect();
    let (total, index) = within_here("global install", || {
        callpool::global().install(|cx| (sum(cx, &xs), cx.worker_index()))
    })?;
    assert_eq!(total, 10_000 * 10_001 / 2);
    assert!(index.is_some(), "run on one of the global pool's workers");

    let (evens, odds) = within_here("global join", || {
        callpool::global().join(
            |_| xs.iter().filter(|&&x| x % 2 == 0).count(),
            |_| xs.iter().filter(|&&x| x % 2 == 1).count(),
        )
    })?;
    assert_eq!((evens, odds), (5_000, 5_000));

    // Children of a global install are the global handle's: its `wait`
    // covers them.
    let (tx, rx) = mpsc::channel();
    within_here("global install putting children", || {
        callpool::global().install(|cx| {
            for n in 0..5u32 {
                let tx = tx.clone();
                cx.put(
                    WorkRequest::new(|n: u32| n + 1, n).on_result(move |_, m| tx.send(m).unwrap()),
                )
                .expect("the global pool is open");
            }
        })
    })?;
    within_here("global wait", || callpool::global().wait())?;
    assert_eq!(rx.try_iter().sum::<u32>(), 15);
    Ok(())
}

/// The rayon table's `rayon::join` row: "`cx.join(a, b)` in a request's
/// callable (each half gets a `&Context`); from outside a request,
/// `pool.join(a, b)`: both halves may borrow, and a panic in either passes
/// on".
#[test]
fn rayon_table_join_row_holds() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    // Inside a request's callable, each half gets a context of its own.
    let ticket = pool.submit_with_context(
        |cx: &Context<'_>, xs: Vec<u64>| {
            let (left, right) = xs.split_at(2);
            let (a, b) = cx.join(
                |cx| (left.iter().sum::<u64>(), cx.worker_index().is_some()),
                |cx| (right.iter().sum::<u64>(), cx.worker_index().is_some()),
            );
            (a.0 + b.0, a.1 && b.1)
        },
        vec![1, 2, 3, 4],
    )?;
    assert_eq!(within("cx.join", move || ticket.wait())?, (10, true));

    // From outside: both halves borrow, one of them mutably.
    let names = ["a", "bb", "ccc"];
    let mut lengths = Vec::new();
    let (count, ()) = pool.join(
        |_| names.len(),
        |_| lengths.extend(names.iter().map(|n| n.len())),
    )?;
    assert_eq!((count, lengths), (3, vec![1, 2, 3]));

    // A panic in either passes on.
    for panicking in ["a", "b"] {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.join(
                |_| {
                    if panicking == "a" {
                        panic!("{DELIBERATE}: a");
                    }
                },
                |_| {
                    if panicking == "b" {
                        panic!("{DELIBERATE}: b");
                    }
                },
            )
        }));
        let payload = caught.expect_err("the panic passes on");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(&*format!("{DELIBERATE}: {panicking}"))
        );
    }
    Ok(())
}

/// The rayon table's `pool.install` row: "runs on a worker with that
/// worker's `Context`, may borrow, returns the value (or passes the panic
/// on); `Err(InstallError)` only if the pool refused or cancelled it".
#[test]
fn rayon_table_install_row_holds() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::builder()
        .workers(2)
        .thread_name("inst")
        .build()?;
    let here = thread::current().id();
    let mut local = vec![5u32, 3, 9];
    let (max, on_worker, name_matches) = pool.install(|cx| {
        local.sort_unstable(); // a mutable borrow of a local
        let index = cx.worker_index().expect("run by a worker");
        let name = thread::current().name().map(str::to_owned);
        (
            *local.last().unwrap(),
            thread::current().id() != here,
            name == Some(format!("inst-{index}")),
        )
    })?;
    assert_eq!(local, [3, 5, 9]);
    assert_eq!(max, 9);
    assert!(on_worker, "ran on a worker, not this thread");
    assert!(name_matches, "the Context is that worker's");

    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.install(|_| -> u32 { panic!("{DELIBERATE}: install row") })
    }));
    assert!(
        caught.is_err(),
        "the panic passes on, not as an InstallError"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The stream forms of a collector and a scope
// ---------------------------------------------------------------------------

fn count_to(n: u32, out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
    (1..=n).try_for_each(|i| out.emit(i))
}

fn by_request<T, E>(
    all: impl IntoIterator<Item = (callpool::RequestId, Result<T, TaskError<E>>)>,
) -> HashMap<callpool::RequestId, Vec<Result<T, TaskError<E>>>> {
    let mut map = HashMap::new();
    for (id, outcome) in all {
        map.entry(id).or_insert_with(Vec::new).push(outcome);
    }
    map
}

/// `try_put_streaming` on a full bounded queue hands the callable and its
/// argument back, uncalled; put again once there is room, it streams all.
#[test]
fn try_put_streaming_on_a_full_queue_hands_back_and_puts_again() -> TestResult {
    let (pool, held) = held_worker(2); // its worker is running a held request
    let mut counts = pool.collector::<u32>();
    let a = counts.try_put_streaming(count_to, 2)?;
    let b = counts.try_put_streaming(count_to, 3)?;
    let mut refused = Vec::new();
    for n in [4, 5] {
        let full = counts.try_put_streaming(count_to, n).unwrap_err();
        assert!(full.is_full(), "{full:?}");
        refused.push(full.into_parts());
    }
    assert_eq!(counts.pending(), 2, "the refused ones are not pending");
    held.open();
    let mut again = Vec::new();
    for (mut callable, mut n) in refused {
        // Room comes back as the worker takes what is queued.
        let id = within_here("room again", || loop {
            match counts.try_put_streaming(callable, n) {
                Ok(id) => break id,
                Err(full) => {
                    assert!(full.is_full(), "{full:?}");
                    (callable, n) = full.into_parts();
                    thread::yield_now();
                }
            }
        });
        again.push(id);
    }
    let all = by_request(within_here("all items", || {
        counts.outcomes().collect::<Vec<_>>()
    }));
    assert_eq!(all.len(), 4);
    assert_eq!(all[&a], [Ok(1), Ok(2)]);
    assert_eq!(all[&b], [Ok(1), Ok(2), Ok(3)]);
    assert_eq!(all[&again[0]], (1..=4).map(Ok).collect::<Vec<_>>());
    assert_eq!(all[&again[1]], (1..=5).map(Ok).collect::<Vec<_>>());
    assert_eq!(counts.pending(), 0);
    Ok(())
}

#[test]
fn put_streaming_timeout_on_a_full_queue_hands_back_and_puts_again() -> TestResult {
    let (pool, held) = held_worker(1); // its worker is running a held request
    let mut counts = pool.collector::<u32>();
    let first = counts.put_streaming(count_to, 1)?;
    let refused = counts
        .put_streaming_timeout(count_to, 3, Duration::from_millis(5))
        .unwrap_err();
    assert!(refused.is_timed_out(), "{refused:?}");
    assert!(!refused.is_full());
    assert_eq!(counts.pending(), 1);
    held.open();
    let (callable, n) = refused.into_parts();
    let again = within_here("put again", || {
        counts.put_streaming_timeout(callable, n, HANG)
    })?;
    let all = by_request(within_here("all items", || {
        counts.outcomes().collect::<Vec<_>>()
    }));
    assert_eq!(all[&first], [Ok(1)]);
    assert_eq!(all[&again], [Ok(1), Ok(2), Ok(3)]);
    Ok(())
}

/// `put_streaming_then` with an `FnMut` over a `&mut` local: the items go
/// to it, on this thread, in order, and not to `outcomes()`; what the
/// stream adds still comes out of `outcomes()`; items count in what
/// `wait_with` returns.
#[test]
fn put_streaming_then_borrows_a_mut_local_and_sees_items_in_order() -> TestResult {
    let pool = ThreadPool::new(2);
    let here = thread::current().id();
    let mut seen = Vec::new();
    let mut numbers = pool.collector::<u32>();
    let streamed = numbers.put_streaming_then(
        |n: u32, out: &CollectorEmitter<'_, u32>| {
            out.add(|x: u32| x * 100, n).expect("the pool is open");
            (1..=n).try_for_each(|i| out.emit(i))
        },
        6,
        |item| {
            assert_eq!(thread::current().id(), here);
            seen.push(item.unwrap());
        },
    )?;
    let plain = numbers.put(|_: ()| 42, ())?;
    let mut rest = Vec::new();
    let handled = within_here("wait_with", || {
        numbers.wait_with(|id, outcome| rest.push((id, outcome)))
    });
    assert_eq!(
        handled,
        6 + 2,
        "six items, the added request, the plain one"
    );
    assert_eq!(rest.len(), 2);
    assert!(rest.contains(&(plain, Ok(42))));
    assert!(rest
        .iter()
        .any(|(id, o)| *id != streamed && *id != plain && *o == Ok(600)));
    drop(numbers); // ends the callback's borrow of `seen`
    assert_eq!(seen, [1, 2, 3, 4, 5, 6]);
    Ok(())
}

/// Two streams share one `Rc<RefCell<_>>`; a panic part-way hands the
/// items before it, then `Err(Panicked(msg))` once.
#[test]
fn put_streaming_then_with_rc_refcell_and_a_panic_part_way() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    type Log = Vec<(char, Result<u32, TaskError>)>;
    let log: Rc<RefCell<Log>> = Rc::default();
    let mut numbers = pool.collector::<u32>();
    for (tag, n) in [('a', 3u32), ('b', 0)] {
        let log = Rc::clone(&log);
        numbers.put_streaming_then(
            |n: u32, out: &CollectorEmitter<'_, u32>| {
                for i in 1..=3 {
                    if i > n {
                        panic!("{DELIBERATE}: stream");
                    }
                    out.emit(i)?;
                }
                Ok(())
            },
            n,
            move |item| log.borrow_mut().push((tag, item)),
        )?;
    }
    assert_eq!(within_here("outcomes", || numbers.outcomes().count()), 0);
    drop(numbers);
    let log = Rc::try_unwrap(log)
        .expect("the callbacks are gone")
        .into_inner();
    let a: Vec<_> = log
        .iter()
        .filter(|(t, _)| *t == 'a')
        .map(|(_, o)| o.clone())
        .collect();
    let b: Vec<_> = log
        .iter()
        .filter(|(t, _)| *t == 'b')
        .map(|(_, o)| o.clone())
        .collect();
    assert_eq!(a, [Ok(1), Ok(2), Ok(3)]);
    assert_eq!(
        b,
        [Err(TaskError::Panicked(format!("{DELIBERATE}: stream")))]
    );
    Ok(())
}

/// `put_streaming_then`'s `# Panics`: "A panic in `each` passes through the
/// call that ran it; `each` stays, and is called again for the stream's
/// next item."
#[test]
fn a_panic_in_a_streams_callback_passes_through_and_the_callback_stays() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let mut seen = Vec::new();
    let mut numbers = pool.collector::<u32>();
    let seen_ref = &mut seen;
    numbers.put_streaming_then(count_to, 4, move |item| {
        let i = item.unwrap();
        seen_ref.push(i);
        if i == 2 {
            panic!("{DELIBERATE}: callback");
        }
    })?;
    let mut panics = 0;
    within_here("take every item", || loop {
        match panic::catch_unwind(AssertUnwindSafe(|| numbers.next_outcome())) {
            Ok(None) => break,
            Ok(Some(other)) => panic!("nothing should come out: {other:?}"),
            Err(_) => panics += 1,
        }
    });
    assert_eq!(panics, 1);
    assert_eq!(numbers.pending(), 0);
    drop(numbers);
    assert_eq!(seen, [1, 2, 3, 4]);
    Ok(())
}

/// The fallible forms: `try_put_fallible_streaming` refused on a full queue
/// and put again, `put_fallible_streaming_timeout`, and
/// `put_fallible_streaming_then` whose `Err(e)` comes after the items.
#[test]
fn fallible_stream_forms_hand_back_and_end_with_the_error() -> TestResult {
    fn parse(text: &'static str, out: &CollectorEmitter<'_, u32, String>) -> Result<(), String> {
        for word in text.split(' ') {
            let n = word.parse().map_err(|_| format!("bad {word}"))?;
            out.emit(n).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    let (pool, held) = held_worker(1); // its worker is running a held request
    let mut then_seen = Vec::new(); // before the collector, which outlives its borrow
    let mut numbers = pool.fallible_collector::<u32, String>();
    let first = numbers.try_put_fallible_streaming(parse, "1 2")?;
    let full = numbers
        .try_put_fallible_streaming(parse, "3 x 5")
        .unwrap_err();
    assert!(full.is_full());
    let timed = numbers
        .put_fallible_streaming_timeout(parse, "7", Duration::from_millis(5))
        .unwrap_err();
    assert!(timed.is_timed_out());
    assert_eq!(numbers.pending(), 1);
    held.open();
    let (callable, text) = full.into_parts();
    let second = within_here("put again", || {
        numbers.put_fallible_streaming_timeout(callable, text, HANG)
    })?;
    let (callable, text) = timed.into_parts();
    within_here("put again", || {
        numbers.put_fallible_streaming_then(callable, text, |o| then_seen.push(o))
    })?;
    let all = by_request(within_here("all", || {
        numbers.outcomes().collect::<Vec<_>>()
    }));
    assert_eq!(all.len(), 2);
    assert_eq!(all[&first], [Ok(1), Ok(2)]);
    assert_eq!(
        all[&second],
        [Ok(3), Err(TaskError::Failed("bad x".to_string()))]
    );
    drop(numbers);
    assert_eq!(then_seen, [Ok(7)]);
    Ok(())
}

/// A scope's `put_streaming_then`: callables borrow a text, the callback a
/// `&mut` local; a panic part-way reaches the callback after the items, and
/// the scope returns normally (a request's panic is its outcome).
#[test]
fn scope_put_streaming_then_borrows_both_ways() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let text = String::from("a bb ccc dddd");
    let mut letters = 0;
    let mut ended_with = Vec::new();
    pool.scope(|s| {
        s.put_streaming_then(
            |t: &str, out: &CollectorEmitter<'_, usize>| {
                t.split(' ').try_for_each(|word| out.emit(word.len()))
            },
            &text[..],
            |n| letters += n.unwrap(),
        )?;
        s.put_streaming_then(
            |t: &str, out: &CollectorEmitter<'_, usize>| {
                out.emit(t.len())?;
                panic!("{DELIBERATE}: scoped stream");
            },
            &text[..2],
            |n| ended_with.push(n),
        )?;
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(letters, 10);
    assert_eq!(
        ended_with,
        [
            Ok(2),
            Err(TaskError::Panicked(format!("{DELIBERATE}: scoped stream")))
        ]
    );

    let words = String::from("4 5 six 7");
    let mut seen = Vec::new();
    pool.fallible_scope(|s| {
        s.put_fallible_streaming_then(
            |text: &str, out: &CollectorEmitter<'_, u32, String>| {
                for word in text.split(' ') {
                    let n = word.parse().map_err(|_| format!("bad {word}"))?;
                    out.emit(n).map_err(|e| e.to_string())?;
                }
                Ok(())
            },
            &words[..],
            |o| seen.push(o),
        )
    })?;
    assert_eq!(
        seen,
        [Ok(4), Ok(5), Err(TaskError::Failed("bad six".to_string()))]
    );
    Ok(())
}

/// The ThreadDistributor program: one task streams results and adds tasks
/// (streaming ones and plain ones) through its emitter; `outcomes()` reads
/// them all as one iterator and ends once every task has ended.
#[test]
fn distributor_one_task_streams_and_adds_tasks() -> TestResult {
    #[derive(Debug, PartialEq, Eq, Hash, Clone, Copy)]
    enum Found {
        Word(u32, u32),
        Size(u32),
    }
    // Node n (below 200) has children 2n and 2n+1, emits n % 3 words and
    // adds a plain request that sizes it.
    fn visit(n: u32, out: &CollectorEmitter<'_, Found>) -> Result<(), Closed> {
        for child in [2 * n, 2 * n + 1] {
            if child < 200 {
                out.add_streaming(visit, child).expect("the pool is open");
            }
        }
        out.add(|n: u32| Found::Size(n), n)
            .expect("the pool is open");
        for k in 0..n % 3 {
            out.emit(Found::Word(n, k))?;
        }
        Ok(())
    }
    let pool = ThreadPool::new(4);
    let mut found = pool.collector::<Found>();
    found.put_streaming(visit, 1)?;
    let mut seen: HashMap<Found, usize> = HashMap::new();
    within_here("the distributor's outcomes", || {
        for (_, item) in found.outcomes() {
            *seen.entry(item.expect("no task fails")).or_default() += 1;
        }
    });
    let mut expected = HashMap::new();
    for n in 1..200u32 {
        expected.insert(Found::Size(n), 1);
        for k in 0..n % 3 {
            expected.insert(Found::Word(n, k), 1);
        }
    }
    assert_eq!(seen, expected, "each item exactly once");
    assert_eq!(found.pending(), 0);
    Ok(())
}

/// A stream whose `each` is a plain `FnMut` counting into a `Mutex`-free
/// local, put from a loop: the docs warn that two callbacks may not hold
/// one `&mut`, so the loop shares a `Cell`-like `RefCell` instead.
#[test]
fn put_streaming_then_in_a_loop_shares_a_refcell() -> TestResult {
    let pool = ThreadPool::new(2);
    let total = RefCell::new(0u32);
    let mut counts = pool.collector::<u32>();
    for n in 1..=4 {
        counts.put_streaming_then(count_to, n, |i| *total.borrow_mut() += i.unwrap())?;
    }
    assert_eq!(within_here("outcomes", || counts.outcomes().count()), 0);
    drop(counts);
    assert_eq!(total.into_inner(), 1 + 3 + 6 + 10);
    Ok(())
}

/// Install on the pool's only worker while its bounded queue is full: the
/// docs say a worker "never waits for itself"; it runs `op` there.
#[test]
fn install_on_the_only_worker_with_a_full_queue_runs_there() -> TestResult {
    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let (go, go_seen) = mpsc::channel::<()>();
    let inner = pool.clone();
    let outer = pool.submit(
        move |_: ()| {
            go_seen.recv().unwrap();
            inner.install(|cx| (5, cx.worker_index()))
        },
        (),
    )?;
    until(|| pool.queued() == 0); // the worker has taken `outer`
    let filler = pool.submit(|_: ()| 7, ())?;
    assert!(pool.try_submit(|_: ()| 8, ()).unwrap_err().is_full());
    go.send(()).unwrap();
    assert_eq!(
        within("install, queue full", move || outer.wait())?,
        Ok((5, Some(0)))
    );
    assert_eq!(within("the filler", move || filler.wait())?, 7);
    Ok(())
}

/// `put_streaming_then`: "A collector dropped before the stream ends calls
/// `each` no more: it is dropped with the collector, and what the stream
/// emits afterwards meets `Closed`."
#[test]
fn a_collector_dropped_mid_stream_drops_its_callback_and_closes_the_stream() -> TestResult {
    let pool = ThreadPool::new(1);
    let seen: Rc<RefCell<Vec<u32>>> = Rc::default();
    let (held, latch) = gate();
    let (said, heard) = mpsc::channel();
    let mut numbers = pool.collector::<u32>();
    let log = Rc::clone(&seen);
    numbers.put_streaming_then(
        move |_: (), out: &CollectorEmitter<'_, u32>| {
            out.emit(1)?;
            latch.hold();
            said.send(out.emit(2)).unwrap();
            Ok(())
        },
        (),
        move |item| log.borrow_mut().push(item.unwrap()),
    )?;
    held.await_start();
    within_here("the first item", || {
        while seen.borrow().is_empty() {
            assert!(numbers.try_next_outcome().is_pending(), "nothing comes out");
            thread::yield_now();
        }
    });
    drop(numbers);
    assert_eq!(
        Rc::strong_count(&seen),
        1,
        "the callback went with the collector"
    );
    held.open();
    assert_eq!(heard.recv_timeout(HANG)?, Err(Closed));
    assert_eq!(*seen.borrow(), [1]);
    Ok(())
}

/// Refused streams drop their callback uncalled; a stream cancelled before
/// it started hands its callback `Err(Cancelled)` once.
#[test]
fn a_refused_or_cancelled_stream_and_its_callback() -> TestResult {
    let pool = ThreadPool::new(0);
    let calls: Rc<RefCell<Vec<Result<u32, TaskError>>>> = Rc::default();
    let mut numbers = pool.collector::<u32>();
    let log = Rc::clone(&calls);
    numbers.put_streaming_then(count_to, 3, move |o| log.borrow_mut().push(o))?;
    let other = pool.new_handle();
    assert_eq!(other.shutdown_now().len(), 0);
    assert_eq!(within_here("outcomes", || numbers.outcomes().count()), 0);
    assert_eq!(*calls.borrow(), [Err(TaskError::Cancelled)]);
    assert_eq!(Rc::strong_count(&calls), 1, "dropped once the stream ended");

    let log = Rc::clone(&calls);
    let refused = numbers.put_streaming_then(count_to, 3, move |o| log.borrow_mut().push(o));
    assert!(refused.is_err(), "the pool is shut down: {refused:?}");
    assert_eq!(Rc::strong_count(&calls), 1, "dropped uncalled");
    assert_eq!(calls.borrow().len(), 1);
    Ok(())
}

/// A scope's `put_streaming_then` whose callback panics: the panic comes
/// out of `scope` once every request has ended, and the callback is
/// called again for the stream's next items.
#[test]
fn a_panic_in_a_scoped_streams_callback_comes_out_of_scope() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let mut seen = Vec::new();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.put_streaming_then(count_to, 4, |i| {
                let i = i.unwrap();
                seen.push(i);
                if i == 2 {
                    panic!("{DELIBERATE}: scoped callback");
                }
            })?;
            Ok::<_, ScopedPutError>(())
        })
    }));
    let payload = caught.expect_err("the callback's panic comes out");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(&*format!("{DELIBERATE}: scoped callback"))
    );
    assert_eq!(seen, [1, 2, 3, 4]);
    Ok(())
}

/// `CollectorContext::join` panics "as `Context::join`": on one worker, a
/// panic in `a` drops `b` unrun, and the request's outcome is the panic.
#[test]
fn a_collector_contexts_join_drops_b_when_a_panics_on_one_worker() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let b_ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&b_ran);
    let mut found = pool.collector::<u32>();
    let id = found.put_with_context(
        move |cx: &callpool::CollectorContext<'_, u32>, ()| {
            cx.join(
                |_| -> () { panic!("{DELIBERATE}: collector join") },
                |_| flag.store(true, Ordering::SeqCst),
            );
            1
        },
        (),
    )?;
    let all: Vec<_> = within_here("outcomes", || found.outcomes().collect());
    assert_eq!(
        all,
        [(
            id,
            Err(TaskError::Panicked(format!("{DELIBERATE}: collector join")))
        )]
    );
    assert!(!b_ran.load(Ordering::SeqCst), "b is dropped unrun");
    Ok(())
}

/// Install on a `new_handle`: what `op` puts is that handle's, as any
/// request's children are ("belongs to this handle"), not the first's.
#[test]
fn children_of_an_install_on_a_new_handle_are_that_handles() -> TestResult {
    let pool = ThreadPool::new(2);
    let mine = pool.new_handle();
    let (tx, rx) = mpsc::channel();
    within_here("install on a new handle", || {
        mine.install(|cx| {
            for n in 0..4u32 {
                let tx = tx.clone();
                cx.put(
                    WorkRequest::new(|n: u32| n * 10, n).on_result(move |_, m| tx.send(m).unwrap()),
                )
                .expect("the pool is open");
            }
        })
    })?;
    assert_eq!(pool.pending(), 0);
    assert_eq!(mine.pending(), 4);
    assert_eq!(within_here("the new handle's wait", || mine.wait())?, 4);
    assert_eq!(rx.try_iter().sum::<u32>(), 60);
    Ok(())
}

/// `InstallError::Cancelled`: a `close` (or `shutdown`) of a pool with no
/// worker left to drain its queue cancels a queued install too (the docs
/// named only `shutdown_now` until this test), and says `Cancelled`, not
/// `ShutDown`: the pool had taken the work.
#[test]
fn install_queued_on_a_workerless_pool_is_cancelled_by_close() -> TestResult {
    let pool = ThreadPool::new(0);
    let clone = pool.clone();
    let closer = thread::spawn(move || {
        until(|| clone.queued() == 1);
        clone.close()
    });
    let drops = counter();
    let owned = Dropped(Arc::clone(&drops));
    let got = within_here("install cancelled by close", || {
        pool.install(move |_| {
            let _keep = owned;
        })
    });
    assert!(matches!(got, Err(InstallError::Cancelled(_))), "{got:?}");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped unrun");
    closer.join().unwrap()?;
    Ok(())
}

/// A trap: a counter declared in the scope's body cannot be lent to a
/// stream's callback (E0373), and rustc's advice, `move`, compiles (with
/// only a warning, "value captured by `n` is never read") but gives the
/// callback its own copy: the body's count stays 0. Declared before the
/// `scope` call, as the docs show, it counts every item.
#[test]
fn a_moved_copy_counter_in_a_scope_body_stays_unchanged() -> TestResult {
    let pool = ThreadPool::new(1);
    let in_body = pool.scope(|s| {
        let mut n = 0;
        #[allow(unused_assignments)] // rustc's own warning here is the hint
        s.put_streaming_then(count_to, 3, move |i| n += i.unwrap())?;
        s.wait_with(|_, _| unreachable!("the stream has a callback"));
        Ok::<_, ScopedPutError>(n)
    })?;
    assert_eq!(in_body, 0, "the callback counted into its own copy");

    let mut outside = 0;
    pool.scope(|s| {
        s.put_streaming_then(count_to, 3, |i| outside += i.unwrap())?;
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(outside, 1 + 2 + 3);
    Ok(())
}
