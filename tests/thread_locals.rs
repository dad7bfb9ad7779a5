//! A worker thread past its loop still runs its thread-locals' destructors,
//! user code that may take any time. The pool's own reaping (by puts,
//! `create_workers`, `dismiss_workers`, `resize`, exiting workers) must not
//! wait for them, nor may `shutdown_timeout` past its timeout; only a
//! caller that asks for the threads to be gone (`join_all_dismissed_workers`,
//! `shutdown`) waits.
//!
//! Every wait is on a channel; the timeouts only turn a hang into a failure.
//!
//! Both hang if the pool joins every exited thread at once: a thread
//! counted out still runs its thread-locals' destructors (`JoinHandle::is_finished` is true before them).

use std::cell::RefCell;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use callpool::{ThreadPool, WorkRequest};

mod common;
use common::HANG;

/// Says that its destructor began, then blocks until released.
struct SlowDrop {
    dropping: Sender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl Drop for SlowDrop {
    fn drop(&mut self) {
        let _ = self.dropping.send(());
        let _ = self.release.lock().unwrap().recv();
    }
}

thread_local! {
    static CACHE: RefCell<Option<SlowDrop>> = const { RefCell::new(None) };
}

/// Runs a request on `pool` that leaves a `SlowDrop` in its worker's
/// thread-locals; returns what says that its destructor began, and what
/// releases it.
fn leave_slow_thread_local(pool: &ThreadPool) -> (Receiver<()>, Sender<()>) {
    let (dropping_tx, dropping) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let slow = SlowDrop {
        dropping: dropping_tx,
        release: Arc::new(Mutex::new(release_rx)),
    };
    pool.put_request(WorkRequest::new(
        move |slow: SlowDrop| CACHE.with(|cache| *cache.borrow_mut() = Some(slow)),
        slow,
    ))
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    (dropping, release)
}

/// Runs `f` on a thread of its own; whether it returned within `HANG`.
fn returns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(f());
    });
    done.recv_timeout(HANG).ok()
}

#[test]
fn reaping_does_not_wait_for_a_thread_local_destructor() {
    // An autoscaling pool, so that a put starts a worker (and reaps).
    let pool = ThreadPool::builder()
        .workers(1)
        .min_workers(0)
        .max_workers(1)
        .build()
        .unwrap();
    let (dropping, release) = leave_slow_thread_local(&pool);
    assert_eq!(pool.dismiss_workers(1), 1);
    // Its destructor runs after the worker counted itself out.
    dropping
        .recv_timeout(HANG)
        .expect("the destructor never began");
    let p = pool.clone();
    let reaped = returns(move || {
        // A put that starts a worker, then every other registry operation.
        p.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
        p.create_workers(1).unwrap();
        p.dismiss_workers(1);
        p.resize(1).unwrap();
        assert_eq!(p.wait_timeout(HANG), Ok(1));
    });
    release.send(()).unwrap();
    assert!(
        reaped.is_some(),
        "the pool's reaping waited for a thread-local's destructor"
    );
    // Asked for, the join waits for it: the first worker, and the one
    // started by the put or `create_workers` and dismissed.
    let p = pool.clone();
    let joined = returns(move || p.join_all_dismissed_workers());
    assert_eq!(joined, Some(2));
    assert_eq!(pool.threads(), 1);
    assert_eq!(pool.stats().completed, 2);
}

#[test]
fn shutdown_timeout_does_not_wait_for_a_thread_local_destructor() {
    let pool = ThreadPool::new(1);
    let (dropping, release) = leave_slow_thread_local(&pool);
    let keep = pool.new_handle();
    let shut = returns(move || pool.shutdown_timeout(Duration::from_secs(10)));
    // Only after: the destructor must have begun, blocking the join.
    dropping
        .recv_timeout(HANG)
        .expect("the destructor never began");
    release.send(()).unwrap();
    assert!(
        matches!(shut, Some(Ok(()))),
        "shutdown_timeout: {shut:?} (None: it waited for a thread-local's destructor)"
    );
    assert_eq!(keep.threads(), 0);
    assert!(matches!(
        keep.put_request(WorkRequest::new(|x: u8| x, 1)),
        Err(callpool::PutError::ShutDown(_))
    ));
}
