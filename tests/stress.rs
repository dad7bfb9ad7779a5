//! Stress: many requests through a pool whose size a resizer thread changes
//! at random every few milliseconds (0 to 32 workers), with 10% of the
//! callables panicking, two submitting threads and two polling threads;
//! then a graceful shutdown.
//!
//! Checked exactly: every request's callback ran once (a per-request hit
//! counter), panicking ones reached the error callback as `Panicked` and the
//! others the result callback with the right value, no callback ran on a
//! worker thread, nothing was handed back, and no thread is left
//! (`Threads:` in `/proc/self/status` back to its value at the start).
//!
//! Two set-ups run one after the other: both submitters and both pollers on
//! one shared handle, and each submitter with its own handle
//! (`new_handle`) polled by its own poller.
//!
//! `cargo test --release --test stress` runs the short version (1,000,000
//! requests per set-up); `cargo test --release --test stress -- --ignored`
//! the full one (10,000,000 per set-up). This file is its own test binary so
//! no other test's threads disturb the thread count; its tests run one at a
//! time (a lock). Nothing here depends on timing: the resizer's pauses only
//! shape the storm, and timeouts only turn a hang into a failure.

use std::panic;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{PollError, TaskError, ThreadPool, WorkRequest};

mod common;
use common::Rng;

/// Only ever fires on a hang. Longer than `common::HANG` (30 s) on
/// purpose: a whole storm of 10,000,000 requests runs under it.
const STORM_HANG: Duration = Duration::from_secs(120);
const DELIBERATE: &str = "stress: deliberate panic";
const WORKER_NAME: &str = "stress-worker";

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn quiet_panics() {
    common::hide_panics_starting_with(DELIBERATE);
}

/// Threads of this process named as the storm's workers, from
/// `/proc/self/task/*/comm`. Counting by name, not all threads, keeps the
/// test harness's own threads (another test's, still exiting) out of it.
fn pool_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(WORKER_NAME))
        .count()
}

/// Per-request and overall tallies, shared by every callback.
struct Tally {
    hits: Vec<AtomicU8>,
    results: AtomicUsize,
    panicked: AtomicUsize,
    wrong: AtomicUsize,
    on_worker: AtomicUsize,
}

impl Tally {
    fn new(n: usize) -> Arc<Tally> {
        Arc::new(Tally {
            hits: (0..n).map(|_| AtomicU8::new(0)).collect(),
            results: AtomicUsize::new(0),
            panicked: AtomicUsize::new(0),
            wrong: AtomicUsize::new(0),
            on_worker: AtomicUsize::new(0),
        })
    }

    fn hit(&self, i: usize) {
        self.hits[i].fetch_add(1, Ordering::Relaxed);
        if thread::current()
            .name()
            .is_some_and(|n| n.starts_with(WORKER_NAME))
        {
            self.on_worker.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn panics(i: usize) -> bool {
    i % 10 == 3
}

fn request(i: usize, tally: &Arc<Tally>) -> WorkRequest {
    let (t1, t2) = (tally.clone(), tally.clone());
    WorkRequest::new(
        move |x: usize| {
            if panics(x) {
                panic!("{DELIBERATE} {x}");
            }
            x as u64 * 3
        },
        i,
    )
    .on_result(move |_, v| {
        t1.hit(i);
        t1.results.fetch_add(1, Ordering::Relaxed);
        if panics(i) || v != i as u64 * 3 {
            t1.wrong.fetch_add(1, Ordering::Relaxed);
        }
    })
    .on_error(move |_, e| {
        t2.hit(i);
        t2.panicked.fetch_add(1, Ordering::Relaxed);
        if !panics(i) || !matches!(e, TaskError::Panicked(ref m) if m.starts_with(DELIBERATE)) {
            t2.wrong.fetch_add(1, Ordering::Relaxed);
        }
    })
    .into()
}

/// Polls `pool` until every submitter in `done` has finished and nothing
/// is pending on it.
fn poll_until_done(pool: &ThreadPool, done: &[&AtomicBool], start: Instant) {
    loop {
        // `done` first: once it is set, every put on this handle is counted
        // in `pending`.
        let finished = done.iter().all(|d| d.load(Ordering::SeqCst));
        match pool.poll_timeout(Duration::from_millis(5)) {
            Ok(_) | Err(PollError::Timeout { .. }) => {}
            Err(PollError::NoResultsPending) => {
                if finished {
                    return;
                }
                thread::yield_now();
            }
            // The resizer may have taken every worker away for a moment.
            Err(PollError::NoWorkersAvailable { .. }) => thread::sleep(Duration::from_micros(200)),
            Err(e) => panic!("poll: {e}"),
        }
        assert!(start.elapsed() < STORM_HANG, "hang: polling");
    }
}

#[derive(Clone, Copy, Debug)]
enum Handles {
    /// Both submitters and both pollers use one handle.
    Shared,
    /// Each submitter has its own handle, polled by its own poller.
    Own,
}

struct Report {
    requests: usize,
    resizes: usize,
    elapsed: Duration,
}

fn storm(n: usize, handles: Handles, seed: u64) -> Report {
    quiet_panics();
    assert_eq!(pool_threads(), 0, "a storm's worker is still running");
    let start = Instant::now();
    let tally = Tally::new(n);
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name(WORKER_NAME)
        .build()
        .expect("pool");
    // The final "no thread left" check counts threads by name: it must see
    // the storm's workers, or it would hold with every one of them leaked.
    // Each worker names itself as it starts, so wait for all four.
    while pool_threads() != 4 {
        assert!(
            start.elapsed() < STORM_HANG,
            "the count by name sees {} of the 4 workers",
            pool_threads()
        );
        thread::sleep(Duration::from_millis(1));
    }
    let (h0, h1) = match handles {
        Handles::Shared => (None, None),
        Handles::Own => (Some(pool.new_handle()), Some(pool.new_handle())),
    };
    let submitting_done = [AtomicBool::new(false), AtomicBool::new(false)];
    let stop_resizing = AtomicBool::new(false);
    let resizes = AtomicUsize::new(0);

    thread::scope(|s| {
        let submit_handles = [h0.as_ref().unwrap_or(&pool), h1.as_ref().unwrap_or(&pool)];
        let mut busy = Vec::new();
        // Submitters: even and odd requests.
        for (k, &handle) in submit_handles.iter().enumerate() {
            let (tally, done) = (&tally, &submitting_done[k]);
            busy.push(s.spawn(move || {
                for i in (k..n).step_by(2) {
                    handle.put_request(request(i, tally)).expect("put");
                }
                done.store(true, Ordering::SeqCst);
            }));
        }
        // Pollers: one per submitter; on a shared handle both wait for
        // both submitters.
        for (k, &handle) in submit_handles.iter().enumerate() {
            let done = &submitting_done;
            busy.push(s.spawn(move || match handles {
                Handles::Own => poll_until_done(handle, &[&done[k]], start),
                Handles::Shared => poll_until_done(handle, &[&done[0], &done[1]], start),
            }));
        }
        // The resizer: 0 to 32 workers, every 0-2 ms, until every request
        // was handled.
        {
            let (pool, stop, resizes) = (&pool, &stop_resizing, &resizes);
            s.spawn(move || {
                let mut rng = Rng(seed);
                while !stop.load(Ordering::SeqCst) {
                    let size = rng.below(33) as usize;
                    pool.resize(size).expect("resize");
                    if rng.below(4) == 0 {
                        pool.join_all_dismissed_workers();
                    }
                    resizes.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_micros(rng.below(2000)));
                }
                // Whatever the storm's last size, the pool shuts down with
                // workers.
                pool.resize(4).expect("resize");
            });
        }
        for t in busy {
            t.join().expect("a submitter or poller failed");
        }
        stop_resizing.store(true, Ordering::SeqCst);
    });

    for h in [h0, h1].into_iter().flatten() {
        assert_eq!(h.pending(), 0);
        drop(h);
    }
    assert_eq!(pool.pending(), 0);
    pool.shutdown_timeout(STORM_HANG).expect("shutdown");
    let elapsed = start.elapsed();

    // Exactly once, each.
    let missing = tally
        .hits
        .iter()
        .filter(|h| h.load(Ordering::Relaxed) == 0)
        .count();
    let twice = tally
        .hits
        .iter()
        .filter(|h| h.load(Ordering::Relaxed) > 1)
        .count();
    assert_eq!((missing, twice), (0, 0), "requests missing / handled twice");
    let expected_panics = (0..n).filter(|&i| panics(i)).count();
    assert_eq!(tally.panicked.load(Ordering::Relaxed), expected_panics);
    assert_eq!(tally.results.load(Ordering::Relaxed), n - expected_panics);
    assert_eq!(tally.wrong.load(Ordering::Relaxed), 0, "wrong outcomes");
    assert_eq!(
        tally.on_worker.load(Ordering::Relaxed),
        0,
        "callbacks on workers"
    );

    // No thread left. `shutdown` joined them; the kernel may take a moment
    // to drop a joined thread from the count.
    let settle = Instant::now();
    while pool_threads() != 0 {
        assert!(
            settle.elapsed() < STORM_HANG,
            "worker threads left: {}",
            pool_threads()
        );
        thread::sleep(Duration::from_millis(1));
    }
    Report {
        requests: n,
        resizes: resizes.load(Ordering::Relaxed),
        elapsed,
    }
}

fn run(n: usize) {
    let _serial = serial();
    for (handles, seed) in [(Handles::Shared, 0x5151_0001), (Handles::Own, 0x5151_0002)] {
        let r = storm(n, handles, seed);
        eprintln!(
            "stress ({handles:?} handles): {} requests, {} resizes, {:.2?}, exactly once, no thread left",
            r.requests, r.resizes, r.elapsed
        );
    }
}

#[test]
fn storm_short() {
    run(1_000_000);
}

#[test]
#[ignore = "the full stress run (10,000,000 requests per set-up); run with --ignored"]
fn storm_full() {
    run(10_000_000);
}
