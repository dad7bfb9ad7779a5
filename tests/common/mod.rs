//! Helpers shared by the integration tests, one of each: a gated request
//! (know when a worker started it, decide when it ends), a one-way gate many
//! requests block on, a hang timeout and the `within`/`within_here` guards,
//! per-request hit counters, the quiet panic hook, a recorder of the
//! library's log records, an allocator that counts the live heap, and a
//! way to re-run a test in a child process that fails when the child ran
//! nothing.
// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::error::Error;
use std::panic;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Once};
use std::time::Duration;

use callpool::{RequestId, TaskError, ThreadPool, WorkRequest};

pub type TestResult = Result<(), Box<dyn Error>>;

/// Long enough that only a hang reaches it: turns a deadlock into a failure.
pub const HANG: Duration = Duration::from_secs(30);

/// The test side of a gated request: learns when a worker has started it,
/// and lets it finish.
pub struct Gate {
    started: Receiver<()>,
    release: Sender<()>,
}

/// The callable side of a gated request.
pub struct Latch {
    started: Sender<()>,
    release: Receiver<()>,
}

pub fn gate() -> (Gate, Latch) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Gate {
        started: started_rx,
        release: release_tx,
    };
    let latch = Latch {
        started: started_tx,
        release: release_rx,
    };
    (gate, latch)
}

impl Gate {
    pub fn await_start(&self) {
        self.started
            .recv_timeout(HANG)
            .expect("the gated request never started");
    }

    pub fn open(&self) {
        // The latch may already be gone if its request was never run.
        let _ = self.release.send(());
    }
}

impl Latch {
    /// Says "started", then blocks until the gate opens (or is dropped, so a
    /// failing test never leaves a worker blocked).
    pub fn hold(self) {
        let _ = self.started.send(());
        let _ = self.release.recv();
    }
}

/// Counts its drops on the counter it holds: a value a test hands to the
/// pool (an input, a callable's capture, a child's work), whose count says
/// it was let go of, and how many times.
pub struct Dropped(pub Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// One counter per request (or callable), indexed by its number: with
/// [`assert_each_once`], proves nothing was lost and nothing ran twice.
pub fn hit_counters(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// A request for item `i` whose result callback counts in `hits[i]`.
pub fn hit_request(i: usize, hits: &Arc<Vec<AtomicUsize>>) -> WorkRequest {
    let hits = Arc::clone(hits);
    WorkRequest::new(|i: usize| i, i)
        .on_result(move |_, i| {
            hits[i].fetch_add(1, Ordering::SeqCst);
        })
        .into()
}

/// Fails unless every counter of `hits` is exactly 1, listing each other
/// one as (index, count); `what` names what was counted ("callbacks").
pub fn assert_each_once(what: &str, hits: &[AtomicUsize]) {
    let bad: Vec<(usize, usize)> = hits
        .iter()
        .map(|h| h.load(Ordering::SeqCst))
        .enumerate()
        .filter(|&(_, n)| n != 1)
        .collect();
    assert!(bad.is_empty(), "{what} not run exactly once: {bad:?}");
}

/// Keeps test output readable: panics whose message starts with `prefix`
/// (the deliberate ones) are not printed; every other panic still is. The
/// first call installs the hook; later calls do nothing.
pub fn hide_panics_starting_with(prefix: &'static str) {
    hide_panics(move |message| message.is_some_and(|m| m.starts_with(prefix)));
}

/// Installs, once per test binary, a panic hook that prints a panic unless
/// `hide` says to hide it; `hide` gets the message, or `None` when the
/// payload is neither a `&str` nor a `String`.
pub fn hide_panics(hide: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if !hide(message) {
                default(info);
            }
        }));
    });
}

/// A user value whose `Drop` misbehaves: it counts the drop, then (unless
/// the thread is unwinding already) panics with `"{.1} in a Drop"`, the
/// test file's prefix for deliberate panics (`hide_panics_starting_with`).
pub struct PanicsOnDrop(pub Arc<AtomicUsize>, pub &'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !std::thread::panicking() {
            panic!("{} in a Drop", self.1);
        }
    }
}

/// A one-way gate that many requests can block on until the test opens it.
pub mod one_way {
    use std::sync::{Arc, Condvar, Mutex};

    /// A one-way gate that requests block on until the test opens it.
    #[derive(Default)]
    pub struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        pub fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }

        pub fn pass(&self) {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }
    }

    /// Opens the gate when dropped, so a failing test never leaves a worker
    /// blocked for ever.
    pub struct OpenOnDrop(pub Arc<Gate>);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    /// A pool of one worker held on a gate, its bounded queue of one full:
    /// a put from outside finds no room until the gate opens (when the
    /// third value drops, at the latest).
    pub fn full_pool() -> (callpool::ThreadPool, Arc<Gate>, OpenOnDrop) {
        let pool = callpool::ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let gate = Arc::new(Gate::default());
        let held = Arc::clone(&gate);
        let (started, start) = std::sync::mpsc::channel();
        pool.execute(move || {
            started.send(()).unwrap();
            held.pass();
        })
        .unwrap();
        start
            .recv_timeout(super::HANG)
            .expect("the worker never started the gated request");
        pool.execute(|| {}).unwrap();
        assert_eq!(pool.stats().queued, 1);
        let open = OpenOnDrop(Arc::clone(&gate));
        (pool, gate, open)
    }
}

/// Groups outcomes by request, each request's in the order they came out
/// (a stream's items, then its end).
#[allow(dead_code)] // Not every test binary reads a collector.
pub fn by_request<T, E>(
    outcomes: impl IntoIterator<Item = (RequestId, Result<T, TaskError<E>>)>,
) -> std::collections::HashMap<RequestId, Vec<Result<T, TaskError<E>>>> {
    let mut grouped: std::collections::HashMap<RequestId, Vec<_>> = Default::default();
    for (id, outcome) in outcomes {
        grouped.entry(id).or_default().push(outcome);
    }
    grouped
}

/// Runs `f` on another thread; fails if it has not returned within [`HANG`]
/// (a hang becomes a failure; the time never decides anything else).
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang: {what}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Runs `f` on another thread; fails if `progress` (a count that `f`'s
/// work keeps raising) has not moved for [`HANG`] before `f` returns: for
/// long tests whose total time is the machine's load's to decide, where a
/// bound on the whole would fail a slow run that is not stuck.
#[allow(dead_code)] // Not every test binary has such a test.
pub fn within_progress<T: Send + 'static>(
    what: &str,
    progress: impl Fn() -> usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let mut seen = progress();
    loop {
        match rx.recv_timeout(HANG) {
            Ok(v) => return v,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = progress();
                assert!(now != seen, "hang: {what} (stuck at {now})");
                seen = now;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
        }
    }
}

/// Runs `round(0)` to `round(n - 1)` on another thread; fails if one
/// round makes no progress for [`HANG`], not if all of them together take
/// longer (the machine's load decides that).
pub fn rounds(what: &str, n: usize, mut round: impl FnMut(usize) + Send + 'static) {
    let done = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&done);
    within_progress(
        what,
        move || done.load(Ordering::SeqCst),
        move || {
            for i in 0..n {
                round(i);
                counted.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
}

/// Blocks until `done()`; fails if that takes [`HANG`]. Each call has its
/// own bound: a test of many rounds, each waiting here (for a worker to
/// leave, say), takes as long as the scheduler makes it, and only a hang
/// fails.
#[allow(dead_code)] // Not every test binary waits this way.
pub fn until(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + HANG;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "hang: the awaited state never came"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on this thread (it may borrow), aborting the process with a
/// message if it has not returned within [`HANG`]: for calls that must stay
/// on the caller's thread, where a hang cannot be abandoned.
pub fn within_here<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let what = what.to_owned();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(HANG) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("hang: {what} did not return within {HANG:?}");
            std::process::abort();
        }
    });
    let out = f();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    out
}

// ---------------------------------------------------------------------------
// Child processes.
// ---------------------------------------------------------------------------

/// What a child prints, followed by its test's name, once its scenario
/// has run to the end (see [`child_ran`]).
pub const CHILD_RAN: &str = "CALLPOOL-CHILD-RAN";

/// Whether this process is the child [`run_in_child`] started for
/// `test_name` (it sets `env_var` to the test's name).
pub fn is_child(test_name: &str, env_var: &str) -> bool {
    std::env::var_os(env_var).is_some_and(|v| v == test_name)
}

/// Says, on stdout, that the child's scenario of `test_name` ran to the
/// end. Call it last in the child's branch: [`run_in_child`] fails unless
/// it sees this line.
pub fn child_ran(test_name: &str) {
    println!("\n{CHILD_RAN} {test_name}");
}

/// Re-runs the test `test_name` of this test binary in a child process
/// (`<test_name> --exact --include-ignored --nocapture --test-threads=1`,
/// with `env_var` set to `test_name`, see [`is_child`]), so a scenario that
/// may abort the process is reported, not suffered. Fails unless the child
/// succeeded, its harness ran exactly one test and passed it, and it
/// printed [`child_ran`]'s line: a child that ran nothing (a filter that
/// matched no test, an ignored test, a branch never taken) fails the
/// parent. Returns the child's output for further checks.
pub fn run_in_child(test_name: &str, env_var: &str) -> Output {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env_var, test_name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("could not start the child test process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = || format!("--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "the child running {test_name} failed ({}):\n{}",
        output.status,
        shown()
    );
    assert!(
        stdout.contains("test result: ok. 1 passed;"),
        "the child's harness did not run exactly one test, {test_name}:\n{}",
        shown()
    );
    assert!(
        stdout.contains(&format!("{CHILD_RAN} {test_name}\n")),
        "the child never said that the scenario of {test_name} ran to the end:\n{}",
        shown()
    );
    output
}

/// A pool of one worker whose request queue holds `queue` requests and
/// whose result queues hold `results` results: where a thread that puts and
/// polls must make room for the worker that serves it.
pub fn one_worker_bounded(queue: usize, results: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(1)
        .queue_capacity(queue)
        .result_capacity(results)
        .build()
        .unwrap()
}

/// A pool of one worker, already running a request held on the returned
/// gate, whose request queue holds `queue` requests: the next `queue` puts
/// wait in the queue, and the one after finds it full.
pub fn held_worker(queue: usize) -> (ThreadPool, Gate) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(queue)
        .build()
        .unwrap();
    let (gate, latch) = gate();
    pool.execute(move || latch.hold()).unwrap();
    gate.await_start();
    (pool, gate)
}

/// A small deterministic generator (xorshift64*): a seed gives a test's
/// rounds the same shape every run, and is printed with any failure.
#[allow(dead_code)] // Not every test binary draws numbers.
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `true` `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The library's log records of level Warn and above, from every test of
/// the binary that installs it (one logger per process).
pub mod logs {
    use std::sync::{Mutex, Once};

    use log::{Level, LevelFilter, Log, Metadata, Record};

    static RECORDS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

    struct Recorder;

    impl Log for Recorder {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.level() <= Level::Warn
        }

        fn log(&self, record: &Record<'_>) {
            if self.enabled(record.metadata()) {
                let mut records = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
                records.push((record.level(), record.args().to_string()));
            }
        }

        fn flush(&self) {}
    }

    static RECORDER: Recorder = Recorder;

    /// Installs the recorder, once per process.
    pub fn install() {
        static LOGGER: Once = Once::new();
        LOGGER.call_once(|| {
            log::set_logger(&RECORDER).expect("no other logger in this test binary");
            log::set_max_level(LevelFilter::Warn);
        });
    }

    /// Every record so far.
    pub fn records() -> Vec<(Level, String)> {
        RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The first error-level record that mentions all of `words`.
    pub fn error_with(words: &[&str]) -> Option<String> {
        records()
            .into_iter()
            .find(|(level, text)| *level == Level::Error && words.iter().all(|w| text.contains(w)))
            .map(|(_, text)| text)
    }
}

/// An allocator that counts the live heap bytes, for the tests that bound
/// what the library keeps. A test binary installs it with
/// `#[global_allocator] static ALLOCATOR: common::heap::Counting =
/// common::heap::Counting;` and reads [`heap::live`] in a child process
/// (see [`run_in_child`]), where nothing else allocates meanwhile.
pub mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering};

    static LIVE: AtomicIsize = AtomicIsize::new(0);

    pub struct Counting;

    // SAFETY: every call forwards to `System` unchanged; the count is a
    // side note that never touches the memory.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                LIVE.fetch_add(
                    new_size as isize - layout.size() as isize,
                    Ordering::Relaxed,
                );
            }
            p
        }
    }

    /// The live heap bytes, by this allocator's count.
    pub fn live() -> isize {
        LIVE.load(Ordering::Relaxed)
    }
}
