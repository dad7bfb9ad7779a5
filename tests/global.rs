//! The process-wide pool. Its own test binary: the global pool is made once
//! per process, so `configure_global` must run here before any `global()`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Once};
use std::thread;

use callpool::{configure_global, GlobalPoolError, ThreadPool, WorkRequest};

mod common;
use common::HANG;

const WORKERS: usize = 3;

/// A results domain of its own on the global pool, configured (once,
/// before its first use) with three workers named `global-test-N`.
fn configured_global() -> ThreadPool {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        let settings = ThreadPool::builder()
            .workers(WORKERS)
            .thread_name("global-test");
        assert!(configure_global(settings).is_ok());
    });
    callpool::global().new_handle()
}

/// `global()` is one handle: a callback that puts a follow-up through
/// `global()` puts it where the outer `wait` counts it (it used to put it
/// on a fresh handle, dropped at once, and the follow-up's callback never
/// ran).
#[test]
fn a_callback_putting_on_global_is_covered_by_the_outer_wait() {
    configured_global();
    let follow_ups = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&follow_ups);
    callpool::global()
        .put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, x| {
            let seen = Arc::clone(&seen);
            callpool::global()
                .put_request(WorkRequest::new(|x: u32| x * 2, x).on_result(move |_, y| {
                    assert_eq!(y, 2);
                    seen.fetch_add(1, Ordering::SeqCst);
                }))
                .unwrap();
        }))
        .unwrap();
    assert_eq!(callpool::global().wait_timeout(HANG), Ok(2));
    assert_eq!(follow_ups.load(Ordering::SeqCst), 1);
    assert!(std::ptr::eq(callpool::global(), callpool::global()));
}

// Settings given before the first use apply (worker count and thread
// names); once the pool exists, configuring it again is refused.
#[test]
fn configure_global_applies_before_first_use_only() {
    let pool = configured_global();
    assert_eq!(pool.workers(), WORKERS);

    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(|()| thread::current().name().map(str::to_owned), ())
            .on_result(move |_, name| tx.send(name).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    let name = rx.try_recv().unwrap().expect("workers are named");
    assert!(name.starts_with("global-test-"), "worker named {name}");

    assert!(matches!(
        configure_global(ThreadPool::builder().workers(1)),
        Err(GlobalPoolError::AlreadyInitialized)
    ));
    assert_eq!(callpool::global().workers(), WORKERS);
}

// Each `global()` handle has its own pending requests: two threads using
// two handles each wait for exactly their own requests, run only their own
// callbacks, and one's wait returns while the other's request is still held.
#[test]
fn global_handles_on_two_threads_wait_for_their_own_requests_only() {
    const PER_HANDLE: usize = 200;
    let strays = Arc::new(AtomicUsize::new(0));
    let a_put = Barrier::new(2);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel::<()>();

    let put_batch = |pool: &ThreadPool, strays: &Arc<AtomicUsize>| {
        let me = thread::current().id();
        let mine = Arc::new(AtomicUsize::new(0));
        for i in 0..PER_HANDLE {
            let (mine, strays) = (Arc::clone(&mine), Arc::clone(strays));
            let request = WorkRequest::new(|i: usize| i, i).on_result(move |_, _| {
                if thread::current().id() == me {
                    mine.fetch_add(1, Ordering::Relaxed);
                } else {
                    strays.fetch_add(1, Ordering::Relaxed);
                }
            });
            pool.put_request(request).unwrap();
        }
        mine
    };

    let (strays, a_put, put_batch) = (&strays, &a_put, &put_batch);
    thread::scope(|s| {
        s.spawn(move || {
            let a = configured_global();
            // Held until b has finished waiting.
            a.put_request(WorkRequest::new(
                move |()| {
                    started_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                },
                (),
            ))
            .unwrap();
            started_rx
                .recv_timeout(HANG)
                .expect("held request never started");
            let mine = put_batch(&a, strays);
            a_put.wait();
            assert_eq!(a.wait_timeout(HANG), Ok(PER_HANDLE + 1));
            assert_eq!(mine.load(Ordering::Relaxed), PER_HANDLE);
        });
        s.spawn(move || {
            let b = configured_global();
            a_put.wait();
            assert_eq!(b.pending(), 0);
            let mine = put_batch(&b, strays);
            assert_eq!(b.wait_timeout(HANG), Ok(PER_HANDLE));
            assert_eq!(mine.load(Ordering::Relaxed), PER_HANDLE);
            release_tx.send(()).unwrap();
        });
    });
    assert_eq!(strays.load(Ordering::Relaxed), 0);
}
