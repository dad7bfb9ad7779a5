//! The traps a new user fell into, each shown gone: handles that share a
//! results domain by cloning, a shared handle that can shut the pool down,
//! a crawler whose callbacks put follow-ups without keeping the pool alive,
//! and one log line (not one per request) for a forgotten `wait`.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpool::{PutError, ThreadPool, WorkRequest};
use common::within;

/// Clones share one results domain: what one clone puts, a `wait` on
/// another covers and runs the callbacks of.
#[test]
fn clones_share_one_results_domain() {
    let pool = ThreadPool::new(2);
    let clone = pool.clone();
    let ran = common::counter();
    for i in 0..100u32 {
        let ran = Arc::clone(&ran);
        clone
            .put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
    }
    assert_eq!(pool.pending(), 100);
    drop(clone);
    assert_eq!(pool.wait(), Ok(100));
    assert_eq!(ran.load(Ordering::SeqCst), 100);
}

/// `close(&self)` on a handle shared through an `Arc`: the work runs, the
/// pool refuses puts on every handle afterwards, and its threads are gone.
#[test]
fn a_shared_handle_can_close_the_pool() {
    within("close", || {
        let pool = Arc::new(ThreadPool::new(2));
        let other = Arc::clone(&pool);
        let ran = common::counter();
        for i in 0..50u32 {
            let ran = Arc::clone(&ran);
            other
                .put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                    ran.fetch_add(1, Ordering::SeqCst);
                }))
                .unwrap();
        }
        pool.close().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 50);
        assert_eq!(pool.threads(), 0);
        assert!(matches!(
            other.put_request(WorkRequest::new(|x: u32| x, 1)),
            Err(PutError::ShutDown(_))
        ));
    });
}

/// Threads whose name starts with `prefix`, from `/proc/self/task`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// A crawler whose callbacks put follow-ups through a `WeakPool`: dropping
/// the pool with a result never handled lets its workers exit (with an
/// `Arc<ThreadPool>` in the callback the cycle kept them alive for good).
#[test]
fn a_crawler_holding_a_weak_pool_does_not_keep_its_workers_alive() {
    within("crawler", || {
        const NAME: &str = "crawl-weak";
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name(NAME)
            .build()
            .unwrap();
        // A thread names itself as it starts: wait until all three have.
        while threads_named(NAME) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let weak = pool.downgrade();
        pool.put_request(WorkRequest::new(|n: u32| n, 1).on_result(move |_, n| {
            if let Some(pool) = weak.upgrade() {
                pool.put_request(WorkRequest::new(|n: u32| n + 1, n))
                    .unwrap();
            }
        }))
        .unwrap();
        // Never polled: the request's outcome, holding the callback and its
        // weak handle, is still in the result queue when the pool goes.
        drop(pool);
        while threads_named(NAME) > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A logger that keeps the warnings callpool logs.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn && record.target().starts_with("callpool") {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Dropping a pool with 10,000 requests never waited for logs one warning
/// with their number, not one per request.
#[test]
fn a_forgotten_wait_logs_one_line() {
    static WARNINGS: Warnings = Warnings(Mutex::new(Vec::new()));
    log::set_logger(&WARNINGS).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let pool = ThreadPool::new(0);
    for i in 0..10_000u32 {
        pool.put_request(WorkRequest::new(|x: u32| x, i)).unwrap();
    }
    drop(pool);
    let warnings = WARNINGS.0.lock().unwrap().clone();
    // Other tests of this binary run alongside and may warn once each; a
    // warning per request would be thousands.
    let ours: Vec<_> = warnings.iter().filter(|w| w.contains("10000")).collect();
    assert_eq!(ours.len(), 1, "{warnings:?}");
    assert!(warnings.len() < 10, "{} warnings", warnings.len());
}
