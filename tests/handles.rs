//! Handles and threads: several handles on one pool keep their requests and
//! callbacks apart; one handle is safe to put, poll and wait on from several
//! threads at once (model weakness W10); and blocking for results on a
//! worker thread of the pool is refused instead of deadlocking.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use callpool::{PollError, ThreadPool, WaitError, WorkRequest};

mod common;
use common::*;

// A pool handle may be sent to and shared between threads.
#[test]
fn thread_pool_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<ThreadPool>();
    assert_send::<WorkRequest>();
}

// Two handles on one pool, each driven by its own thread, handle only their
// own requests: every callback runs on the thread of the handle that put it,
// and each `wait` counts exactly its own requests.
#[test]
fn handles_run_only_their_own_callbacks() {
    const PER_HANDLE: usize = 500;
    let pool = ThreadPool::new(4);
    let other = pool.new_handle();
    let strays = counter();
    let both_put = Barrier::new(2);

    thread::scope(|s| {
        for handle in [&pool, &other] {
            let (strays, both_put) = (Arc::clone(&strays), &both_put);
            s.spawn(move || {
                let me = thread::current().id();
                let mine = counter();
                for i in 0..PER_HANDLE {
                    let (mine, strays) = (Arc::clone(&mine), Arc::clone(&strays));
                    let request = WorkRequest::new(|i: usize| i, i).on_result(move |_, _| {
                        if thread::current().id() == me {
                            mine.fetch_add(1, Ordering::Relaxed);
                        } else {
                            strays.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    handle.put_request(request).unwrap();
                }
                // Both handles' requests are in the shared queue before
                // either thread starts handling results.
                both_put.wait();
                assert_eq!(handle.wait_timeout(HANG), Ok(PER_HANDLE));
                assert_eq!(mine.load(Ordering::Relaxed), PER_HANDLE);
                assert_eq!(handle.pending(), 0);
            });
        }
    });
    assert_eq!(strays.load(Ordering::Relaxed), 0);
}

// `pending` is per handle, and a handle's `poll` and `wait` ignore the
// requests of other handles: they neither count nor wait for them.
#[test]
fn pending_poll_and_wait_are_per_handle() -> TestResult {
    let a = ThreadPool::new(2);
    let b = a.new_handle();
    let (held, latch) = gate();
    a.put_request(WorkRequest::new(
        move |x: u32| {
            latch.hold();
            x
        },
        0,
    ))?;
    held.await_start();
    assert_eq!((a.pending(), b.pending()), (1, 0));
    assert_eq!(b.poll(), Err(PollError::NoResultsPending));
    assert_eq!(b.poll_timeout(HANG), Err(PollError::NoResultsPending));
    assert_eq!(b.wait_timeout(HANG), Ok(0));

    for i in 1..=3 {
        b.put_request(WorkRequest::new(|x: u32| x, i))?;
    }
    assert_eq!((a.pending(), b.pending()), (1, 3));
    // a's request is still held: b's wait returning proves it did not wait
    // for it.
    assert_eq!(b.wait_timeout(HANG), Ok(3));
    assert_eq!((a.pending(), b.pending()), (1, 0));

    held.open();
    assert_eq!(a.wait_timeout(HANG), Ok(1));
    assert_eq!((a.pending(), b.pending()), (0, 0));
    Ok(())
}

// W10: two threads putting and polling on one handle at once lose nothing
// and run nothing twice; the counts their polls and waits return add up to
// exactly the number of requests.
#[test]
fn concurrent_puts_and_polls_on_one_handle_lose_nothing() {
    const PER_THREAD: usize = 2_000;
    let pool = ThreadPool::new(4);
    let runs = hit_counters(2 * PER_THREAD);
    let hits = hit_counters(2 * PER_THREAD);

    let handled: usize = thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (pool, runs, hits) = (&pool, &runs, &hits);
                s.spawn(move || {
                    let mut handled = 0;
                    for i in t * PER_THREAD..(t + 1) * PER_THREAD {
                        let (runs, hits) = (Arc::clone(runs), Arc::clone(hits));
                        let request = WorkRequest::new(
                            move |i: usize| {
                                runs[i].fetch_add(1, Ordering::Relaxed);
                                i
                            },
                            i,
                        )
                        .on_result(move |_, i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        pool.put_request(request).unwrap();
                        if i % 8 == 0 {
                            match pool.poll() {
                                Ok(n) => handled += n,
                                // The other thread handled everything pending.
                                Err(PollError::NoResultsPending) => {}
                                Err(e) => panic!("poll failed: {e}"),
                            }
                        }
                    }
                    handled + pool.wait_timeout(HANG).expect("wait failed")
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });

    assert_eq!(handled, 2 * PER_THREAD);
    assert_each_once("callables", &runs);
    assert_each_once("callbacks", &hits);
    assert_eq!(pool.pending(), 0);
}

// W10: two threads waiting on one handle at once both return, and between
// them handle each result exactly once. Repeated with small batches, some
// slow, so that the last result lands in every possible moment.
#[test]
fn two_waiters_on_one_handle_both_return() {
    let pool = ThreadPool::new(2);
    let start = Barrier::new(2);
    for round in 0..300usize {
        let batch = 1 + round % 3;
        let handled = counter();
        for i in 0..batch {
            let handled = Arc::clone(&handled);
            let request = WorkRequest::new(
                move |i: usize| {
                    if round % 2 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                    i
                },
                i,
            )
            .on_result(move |_, _| {
                handled.fetch_add(1, Ordering::Relaxed);
            });
            pool.put_request(request).unwrap();
        }

        let (mine, theirs) = thread::scope(|s| {
            let other = s.spawn(|| {
                start.wait();
                pool.wait_timeout(HANG)
            });
            start.wait();
            let mine = pool.wait_timeout(HANG);
            (mine, other.join().unwrap())
        });
        let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
        assert_eq!(mine + theirs, batch, "round {round}");
        assert_eq!(handled.load(Ordering::Relaxed), batch, "round {round}");
        assert_eq!(pool.pending(), 0, "round {round}");
    }
}

// Two handles of a pool with no worker wait at once: each counts its queued
// requests (to tell "stranded" from "in flight") while the other counts its
// own. Each must learn that all of its requests are stranded, never sleep
// on results that cannot come (a count that missed requests the other
// handle had taken out to count would make it sleep until the timeout).
#[test]
fn two_handles_waiting_with_no_worker_both_hear_no_workers() {
    const EACH: usize = 20;
    for round in 0..200 {
        let a = ThreadPool::new(0);
        let b = a.new_handle();
        for i in 0..EACH {
            a.put_request(WorkRequest::new(|x: usize| x, i)).unwrap();
            b.put_request(WorkRequest::new(|x: usize| x, i)).unwrap();
        }
        let start = Barrier::new(2);
        let (on_a, on_b) = thread::scope(|s| {
            let other = s.spawn(|| {
                start.wait();
                b.wait_timeout(HANG)
            });
            start.wait();
            (a.wait_timeout(HANG), other.join().unwrap())
        });
        let stranded = Err(WaitError::NoWorkersAvailable { pending: EACH });
        assert_eq!((on_a, on_b), (stranded, stranded), "round {round}");
        assert_eq!(a.queued(), 2 * EACH, "round {round}");
    }
}

type Probe = (
    Result<usize, WaitError>,
    Result<usize, PollError>,
    Result<usize, PollError>,
);

/// A callable that tries to block for results on `target`, then to poll
/// it.
fn probe(target: Arc<ThreadPool>) -> impl FnOnce(()) -> Probe + Send + 'static {
    move |()| {
        (
            target.wait_timeout(HANG),
            target.poll_timeout(HANG),
            target.poll(),
        )
    }
}

// W11: `wait` and `poll_timeout` called inside a callable, on a worker of the
// same pool, return OnWorkerThread instead of deadlocking, through the
// handle that put the callable and through another handle of the pool; and
// `poll` refuses too, so that no callback runs on a worker (it ran them
// there).
#[test]
fn blocking_on_a_worker_thread_of_the_pool_is_refused() -> TestResult {
    let pool = Arc::new(ThreadPool::new(2));
    let other = Arc::new(pool.new_handle());
    let refused = (
        Err(WaitError::OnWorkerThread),
        Err(PollError::OnWorkerThread),
        Err(PollError::OnWorkerThread),
    );

    for handle in [&pool, &other] {
        let (tx, rx) = mpsc::channel();
        // The probe itself is pending on `handle`, so both calls have
        // something to wait for.
        handle.put_request(
            WorkRequest::new(probe(Arc::clone(handle)), ())
                .on_result(move |_, probed| tx.send(probed).unwrap()),
        )?;
        assert_eq!(handle.wait_timeout(HANG), Ok(1));
        assert_eq!(rx.try_recv()?, refused);
    }
    // And through a handle with nothing pending, where `poll` and
    // `poll_timeout` would otherwise only handle what is ready (on a
    // worker: `poll_timeout` answered `NoResultsPending`).
    let idle = Arc::new(pool.new_handle());
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(probe(Arc::clone(&idle)), ())
            .on_result(move |_, probed| tx.send(probed).unwrap()),
    )?;
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(rx.try_recv()?, refused);
    Ok(())
}

// The refusal is per pool: a worker of one pool may wait on another pool,
// and the callbacks it handles run right there.
#[test]
fn a_worker_may_block_on_another_pool() -> TestResult {
    let elsewhere = ThreadPool::builder()
        .workers(1)
        .thread_name("elsewhere")
        .build()?;
    let target = Arc::new(ThreadPool::new(1));
    let (tx, rx) = mpsc::channel();
    target.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
        tx.send(thread::current().name().map(str::to_owned))
            .unwrap()
    }))?;

    let (probe_tx, probe_rx) = mpsc::channel();
    elsewhere.put_request(
        WorkRequest::new(probe(Arc::clone(&target)), ())
            .on_result(move |_, probed| probe_tx.send(probed).unwrap()),
    )?;
    assert_eq!(elsewhere.wait_timeout(HANG), Ok(1));
    assert_eq!(
        probe_rx.try_recv()?,
        (
            Ok(1),
            Err(PollError::NoResultsPending),
            Err(PollError::NoResultsPending)
        )
    );
    assert_eq!(rx.try_recv()?.as_deref(), Some("elsewhere-0"));
    assert_eq!(target.pending(), 0);
    Ok(())
}
