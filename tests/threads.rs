//! The pool's threads as the OS sees them: `Threads:` in `/proc/self/status`.
//!
//! One test only, in its own binary, so no other test's thread can start or
//! exit while it counts. Linux only.

#![cfg(target_os = "linux")]

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use callpool::ThreadPool;

/// How long the kernel may take to finish tearing down exited threads
/// before the test calls it a leak (a hang-to-failure bound, not a timing
/// assertion).
const SETTLE: Duration = Duration::from_secs(10);

/// Threads of this process, from `/proc/self/status`.
fn os_threads() -> usize {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .expect("a Threads: line")
        .trim()
        .parse()
        .unwrap()
}

/// Waits until the process has `n` threads again. A joined thread may still
/// be counted for a moment while the kernel reaps it, so this polls every
/// millisecond, up to [`SETTLE`].
fn settle_at(n: usize, after: &str) {
    let start = Instant::now();
    loop {
        let now = os_threads();
        if now == n {
            return;
        }
        assert!(
            start.elapsed() < SETTLE,
            "after {after}: {now} threads, expected {n} (a thread leaked)"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

// Every way a pool ends, ends its threads (W14, W1): a graceful shutdown
// joins all of them; dismissing and joining every worker leaves none; and
// dropping a pool with idle workers lets every one of them exit.
#[test]
fn pools_leave_no_threads_behind() {
    let start = os_threads();

    // Spawning is synchronous: the threads exist when `new` returns.
    let pool = ThreadPool::new(8);
    assert_eq!(os_threads(), start + 8);
    assert_eq!(pool.threads(), 8);
    pool.shutdown().unwrap();
    settle_at(start, "shutdown");

    let pool = ThreadPool::new(8);
    assert_eq!(os_threads(), start + 8);
    assert_eq!(pool.dismiss_workers(8), 8);
    assert_eq!(pool.join_all_dismissed_workers(), 8);
    assert_eq!(pool.threads(), 0);
    settle_at(start, "dismiss_workers(8) and join_all_dismissed_workers");

    // Regrowing after a full dismissal starts fresh threads, no more.
    pool.create_workers(3).unwrap();
    assert_eq!(os_threads(), start + 3);

    // Idle workers of a dropped pool exit on their own; nobody joins them.
    drop(pool);
    settle_at(start, "dropping a regrown pool");
    let pool = ThreadPool::new(8);
    assert_eq!(os_threads(), start + 8);
    drop(pool);
    settle_at(start, "dropping a pool with idle workers");
}
