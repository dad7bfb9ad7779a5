//! `ThreadPool::install` and `ThreadPool::join`: borrowing work run on a
//! worker from outside any request, its value or panic handed back, and
//! every way the pool can refuse or cancel it. Timeouts only turn a hang
//! into a failure.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use callpool::{Context, InstallError, ThreadPool, WorkRequest};

use common::one_way::{full_pool, Gate, OpenOnDrop};
use common::{counter, hide_panics_starting_with, until, within, within_here, Dropped};

const DELIBERATE: &str = "install: deliberate panic";

#[test]
fn the_work_runs_on_a_worker_and_its_value_comes_back() {
    let pool = ThreadPool::new(2);
    let caller = thread::current().id();
    let (ran_on, index, value) = within_here("install", || {
        pool.install(|cx| (thread::current().id(), cx.worker_index(), 6 * 7))
    })
    .unwrap();
    assert_ne!(ran_on, caller, "the work ran on the caller's thread");
    assert!(
        index.is_some_and(|i| i < 2),
        "not a worker's context: {index:?}"
    );
    assert_eq!(value, 42);
}

#[test]
fn the_work_borrows_the_callers_locals_mutably() {
    let pool = ThreadPool::new(2);
    let mut v: Vec<u32> = (0..10_000).rev().collect();
    let mut calls = 0;
    within_here("install", || {
        pool.install(|_| {
            v.sort_unstable();
            calls += 1;
        })
    })
    .unwrap();
    assert_eq!(calls, 1);
    assert!(v.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(v.len(), 10_000);
}

#[test]
fn a_panic_passes_on_with_its_own_payload_and_the_pool_goes_on() {
    hide_panics_starting_with(DELIBERATE);
    #[derive(Debug, PartialEq)]
    struct Why(u32);
    let pool = ThreadPool::new(1);
    let dropped = counter();
    let held = Dropped(Arc::clone(&dropped));
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        within_here("install", || {
            pool.install(move |_| -> u32 {
                let _held = held;
                panic::panic_any(Why(7))
            })
        })
    }));
    let payload = caught.expect_err("the work's panic did not pass on");
    assert_eq!(payload.downcast_ref::<Why>(), Some(&Why(7)));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the work's capture was not dropped once"
    );
    assert_eq!(pool.install(|_| 5).unwrap(), 5);
    // The panic was the caller's to handle: nothing is left on the handle.
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.wait().unwrap(), 0);
}

#[test]
fn the_pool_counts_work_that_panicked_as_panicked_in_every_form() {
    hide_panics_starting_with(DELIBERATE);
    use std::time::Duration;
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let counts = || {
        let s = pool.stats();
        (s.completed, s.failed, s.panicked)
    };
    let panics = |f: &dyn Fn() -> Result<u32, InstallError>| {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| within_here("install", f)));
        let payload = caught.expect_err("the work's panic did not pass on");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(DELIBERATE)
        );
    };
    assert_eq!(counts(), (0, 0, 0));
    panics(&|| pool.install(|_| -> u32 { panic!("{}", DELIBERATE) }));
    assert_eq!(counts(), (0, 0, 1), "install");
    panics(&|| pool.try_install(|_| -> u32 { panic!("{}", DELIBERATE) }));
    assert_eq!(counts(), (0, 0, 2), "try_install");
    panics(&|| {
        pool.install_timeout(
            |_| -> u32 { panic!("{}", DELIBERATE) },
            Duration::from_secs(60),
        )
    });
    assert_eq!(counts(), (0, 0, 3), "install_timeout");
    // A capture whose `Drop` panics once the work has returned.
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("{}", DELIBERATE);
        }
    }
    panics(&|| {
        let capture = PanicsOnDrop;
        pool.install(move |_| {
            let _capture = capture;
            5
        })
    });
    assert_eq!(counts(), (0, 0, 4), "a capture's Drop");
    // A join's half: one request, the join's own, which panicked.
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        within_here("join", || {
            pool.join(|_| 1, |_| -> u32 { panic!("{}", DELIBERATE) })
        })
    }));
    assert!(caught.is_err(), "the half's panic did not pass on");
    assert_eq!(counts(), (0, 0, 5), "join");
    // Work that returned counts as completed, a `Result` it returns too.
    assert_eq!(pool.install(|_| 1).unwrap(), 1);
    assert_eq!(
        pool.install(|_| Err::<u8, _>("a value")).unwrap(),
        Err("a value")
    );
    assert_eq!(counts(), (2, 0, 5));
    assert_eq!(pool.pending(), 0);
}

#[test]
fn a_closed_pool_refuses_and_drops_the_work_unrun() {
    let pool = ThreadPool::new(1);
    pool.close().unwrap();
    let err = refused_unrun(|work| pool.install(work));
    assert!(matches!(err, InstallError::ShutDown(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("pool is shut down (request {})", err.id())
    );
    let join = pool.join(|_| 1, |_| 2);
    assert!(matches!(join, Err(InstallError::ShutDown(_))), "{join:?}");
}

#[test]
fn work_cancelled_in_the_queue_is_reported_and_dropped_unrun() {
    // No worker: the work waits in the queue until another handle's
    // `shutdown_now` cancels it.
    let pool = ThreadPool::new(0);
    let dropped = counter();
    let held = Dropped(Arc::clone(&dropped));
    let ran = Arc::new(AtomicUsize::new(0));
    let ran_in = Arc::clone(&ran);
    let installer = pool.new_handle();
    let outcome = thread::spawn(move || {
        installer.install(move |_| {
            let _held = held;
            ran_in.fetch_add(1, Ordering::SeqCst);
        })
    });
    until(|| pool.stats().queued == 1);
    // The installer's request is not this handle's: nothing comes back.
    assert!(pool.shutdown_now().is_empty());
    let err = within("the cancelled install", move || outcome.join().unwrap())
        .expect_err("cancelled work gave a value");
    assert!(matches!(err, InstallError::Cancelled(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("request cancelled before it started (request {})", err.id())
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn a_pool_without_workers_waits_for_one_to_be_added() {
    let pool = ThreadPool::new(0);
    let installer = pool.new_handle();
    let (tx, rx) = mpsc::channel();
    let waiting = thread::spawn(move || {
        let value = installer.install(|cx| cx.worker_index());
        tx.send(()).unwrap();
        value
    });
    until(|| pool.stats().queued == 1);
    // Still waiting: nothing can have run it.
    assert!(rx.try_recv().is_err());
    pool.create_workers(1).unwrap();
    let index = within("install after a worker was added", move || {
        waiting.join().unwrap()
    })
    .unwrap();
    assert_eq!(index, Some(0));
}

#[test]
fn install_on_a_worker_of_the_same_pool_runs_there_rather_than_wait_for_itself() {
    // One worker, busy with the request that calls `install`: only that
    // worker can run the installed work.
    let pool = ThreadPool::new(1);
    let inner = pool.new_handle();
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(
            move |()| {
                let outer = thread::current().id();
                let (ran_on, value) = inner.install(|_| (thread::current().id(), 3)).unwrap();
                (outer == ran_on, value)
            },
            (),
        )
        .on_result(move |_, seen| tx.send(seen).unwrap()),
    )
    .unwrap();
    within_here("nested install", || pool.wait()).unwrap();
    assert_eq!(rx.try_recv().unwrap(), (true, 3));
}

#[test]
fn children_put_by_the_work_belong_to_the_handle_and_wait_covers_them() {
    let pool = ThreadPool::new(2);
    let heard = Arc::new(AtomicUsize::new(0));
    let main = thread::current().id();
    let on_main = Arc::new(AtomicUsize::new(0));
    let put = within_here("install", || {
        pool.install(|cx| {
            let mut put = 0;
            for i in 0..100u64 {
                let heard = Arc::clone(&heard);
                let on_main = Arc::clone(&on_main);
                cx.put(WorkRequest::new(|n: u64| n * 2, i).on_result(move |_, _| {
                    heard.fetch_add(1, Ordering::SeqCst);
                    if thread::current().id() == main {
                        on_main.fetch_add(1, Ordering::SeqCst);
                    }
                }))
                .unwrap();
                put += 1;
            }
            put
        })
    })
    .unwrap();
    assert_eq!(put, 100);
    within_here("wait", || pool.wait()).unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 100);
    assert_eq!(
        on_main.load(Ordering::SeqCst),
        100,
        "a child's callback ran off the waiting thread"
    );
}

fn sum(cx: &Context<'_>, xs: &[u64], leaves: &AtomicUsize) -> u64 {
    if xs.len() <= 64 {
        leaves.fetch_add(1, Ordering::SeqCst);
        return xs.iter().sum();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(|cx| sum(cx, left, leaves), |cx| sum(cx, right, leaves));
    a + b
}

#[test]
fn join_from_outside_splits_a_borrowed_slice_on_every_pool_size() {
    let xs: Vec<u64> = (1..=65_536).collect();
    for workers in [1, 2, 4] {
        let pool = ThreadPool::new(workers);
        let leaves = AtomicUsize::new(0);
        let (left, right) = xs.split_at(xs.len() / 2);
        let (a, b) = within_here("join", || {
            pool.join(|cx| sum(cx, left, &leaves), |cx| sum(cx, right, &leaves))
        })
        .unwrap();
        assert_eq!(a + b, 65_536 * 65_537 / 2, "{workers} workers");
        assert_eq!(
            leaves.load(Ordering::SeqCst),
            65_536 / 64,
            "{workers} workers"
        );
        assert_eq!(pool.pending(), 0);
    }
}

#[test]
fn a_panicking_half_passes_on_after_the_other_half_has_ended() {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let a_ended = AtomicUsize::new(0);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        within_here("join", || {
            pool.join(
                |_| {
                    // `b` panics while `a` still runs, or before it starts:
                    // either way the panic waits for `a`'s end.
                    gate.pass();
                    a_ended.fetch_add(1, Ordering::SeqCst);
                },
                |_| -> () {
                    gate.open();
                    panic!("{DELIBERATE}")
                },
            )
        })
    }));
    let payload = caught.expect_err("the half's panic did not pass on");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a formatted panic message");
    assert_eq!(message, DELIBERATE);
    assert_eq!(a_ended.load(Ordering::SeqCst), 1);
}

/// Work for [`refused_unrun`]: it may borrow, as an install's may.
type Work<'a> = Box<dyn FnOnce(&Context<'_>) + Send + 'a>;

/// Calls `install` with work that counts its runs and holds a capture
/// that counts its drops; checks that the call refused it, never ran it,
/// and dropped it once before returning. Returns the refusal.
fn refused_unrun(install: impl FnOnce(Work<'_>) -> Result<(), InstallError>) -> InstallError {
    let dropped = counter();
    let held = Dropped(Arc::clone(&dropped));
    let ran = AtomicUsize::new(0);
    let work: Work<'_> = Box::new(|_| {
        let _held = held;
        ran.fetch_add(1, Ordering::SeqCst);
    });
    let err = install(work).expect_err("the pool ran the work");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the refused work was not dropped before the call returned"
    );
    err
}

#[test]
fn try_install_on_a_full_queue_refuses_at_once_and_drops_the_work_unrun() {
    let (pool, gate, _open) = full_pool();
    let err = within_here("try_install", || {
        refused_unrun(|work| pool.try_install(work))
    });
    assert!(matches!(err, InstallError::Full(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("request queue is full (request {})", err.id())
    );
    // Nothing of the refused work is left on the handle or in the queue.
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    within_here("wait", || pool.wait()).unwrap();
    assert_eq!(pool.pending(), 0);
    let mut v = vec![3, 1, 2];
    within_here("try_install", || pool.try_install(|_| v.sort())).unwrap();
    assert_eq!(v, [1, 2, 3]);
}

#[test]
fn install_timeout_gives_up_on_a_full_queue_and_drops_the_work_unrun() {
    let (pool, gate, _open) = full_pool();
    let err = within_here("install_timeout", || {
        refused_unrun(|work| pool.install_timeout(work, std::time::Duration::from_millis(20)))
    });
    assert!(matches!(err, InstallError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("timed out waiting for queue space (request {})", err.id())
    );
    assert_eq!(pool.stats().queued, 1);
    // Room comes while a second call waits: it goes in and runs.
    let opener = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || gate.open())
    };
    let value = within_here("install_timeout", || {
        pool.install_timeout(|cx| cx.worker_index(), std::time::Duration::from_secs(600))
    })
    .unwrap();
    assert_eq!(value, Some(0));
    opener.join().unwrap();
}

#[test]
fn install_timeouts_bound_the_wait_for_room_not_the_run() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let opener = {
        let gate = Arc::clone(&gate);
        let pool = pool.new_handle();
        // Opened once the work is running, and after the timeout passed.
        thread::spawn(move || {
            until(|| pool.stats().running == 1);
            thread::sleep(std::time::Duration::from_millis(20));
            gate.open();
        })
    };
    let value = within_here("install_timeout", || {
        pool.install_timeout(
            |_| {
                gate.pass();
                7
            },
            std::time::Duration::from_millis(1),
        )
    })
    .unwrap();
    assert_eq!(value, 7);
    opener.join().unwrap();
}

#[test]
fn on_a_worker_with_a_full_queue_try_install_refuses_and_install_timeout_goes_past() {
    // The only worker runs the request that calls both while the queue
    // (capacity 1) is full: `try_install` refuses at once, as
    // `try_put_request` does; `install_timeout` cannot wait for room (only
    // this worker could make it), so it goes past the capacity and runs
    // here.
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let inner = pool.new_handle();
    let held = Arc::clone(&gate);
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(
            move |()| {
                held.pass();
                let outer = thread::current().id();
                let tried = inner.try_install(|_| thread::current().id());
                let timed = inner.install_timeout(
                    |_| thread::current().id(),
                    std::time::Duration::from_secs(600),
                );
                (
                    matches!(tried, Err(InstallError::Full(_))),
                    timed.map(|ran_on| ran_on == outer),
                )
            },
            (),
        )
        .on_result(move |_, seen| tx.send(seen).unwrap()),
    )
    .unwrap();
    until(|| pool.stats().queued == 0);
    pool.execute(|| {}).unwrap();
    assert_eq!(pool.stats().queued, 1);
    gate.open();
    within_here("wait", || pool.wait()).unwrap();
    assert_eq!(rx.try_recv().unwrap(), (true, Ok(true)));
}
