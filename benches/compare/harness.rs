//! What every system's run shares: counting and checking the results on the
//! submitting thread, the result channels of the peers, settling before a
//! timed run, the blocking probe, and unit conversions.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::procfs;
use crate::report::Obs;

/// Where callpool's callbacks count and sum results. Callbacks run on the
/// polling thread only, so a plain load and store (no read-modify-write) is
/// enough; if callbacks ever ran on two threads at once, updates would be
/// lost and the check after the run would stop the suite.
pub struct Acc {
    count: AtomicU64,
    sum: AtomicU64,
}

impl Acc {
    const fn new() -> Acc {
        Acc {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn reset(&self) -> &Self {
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self
    }

    #[inline]
    pub fn add(&self, v: u64) {
        self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(v), Relaxed);
    }

    pub fn check(&self, what: &str, n: u64, sum: u64) {
        check(
            what,
            self.count.load(Relaxed),
            n,
            self.sum.load(Relaxed),
            sum,
        );
    }
}

/// One accumulator per submitting thread (W6 has two); callbacks capture a
/// `&'static` to one, so no `Arc` is cloned per request.
pub static ACCS: [Acc; 2] = [Acc::new(), Acc::new()];

/// One worker's count and sum of W8 results, on a cache line of its own,
/// for the systems whose children add up their own results where they run
/// (rayon, `callpool/execute`). Only that worker writes it, so a plain
/// relaxed load and store is enough (as for `Acc`); the run's end (a
/// scope's, a `wait`'s) orders every write before the submitting thread
/// reads them.
#[repr(align(128))]
pub struct WorkerSum {
    count: AtomicU64,
    sum: AtomicU64,
}

impl WorkerSum {
    pub const fn new() -> WorkerSum {
        WorkerSum {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn add(&self, v: u64) {
        self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(v), Relaxed);
    }

    /// The count and sum over `slots`, each set back to zero.
    pub fn total(slots: &[WorkerSum]) -> (u64, u64) {
        slots.iter().fold((0, 0), |(c, s), slot| {
            (
                c + slot.count.swap(0, Relaxed),
                s.wrapping_add(slot.sum.swap(0, Relaxed)),
            )
        })
    }
}

/// Stops the whole suite unless `got_n` results summed to `want_sum`.
pub fn check(what: &str, got_n: u64, want_n: u64, got_sum: u64, want_sum: u64) {
    if got_n != want_n || got_sum != want_sum {
        eprintln!(
            "MISMATCH in {what}: {got_n} results summing to {got_sum}, \
             expected {want_n} summing to {want_sum}"
        );
        std::process::exit(1);
    }
}

/// Receives `n` results on the submitting thread; returns their sum.
pub fn collect_mpsc(rx: &mpsc::Receiver<u64>, n: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(rx.recv().expect("result channel closed"));
    }
    sum
}

/// A result channel for a peer's closures. The sender is leaked so each
/// closure captures a plain `&'static` reference instead of cloning a
/// `Sender` (two atomic increments and decrements per request); what leaks
/// is the channel's empty shell, a few hundred bytes per run.
pub fn result_channel() -> (&'static mpsc::Sender<u64>, mpsc::Receiver<u64>) {
    let (tx, rx) = mpsc::channel();
    (Box::leak(Box::new(tx)), rx)
}

/// Lets freshly spawned workers reach their idle loop before timing starts.
pub fn warm_up(threads: usize) {
    thread::sleep(Duration::from_millis(if threads > 16 { 30 } else { 5 }));
}

/// Waits until the process has `target` threads; false after `timeout`.
pub fn wait_tasks(target: usize, timeout: Duration) -> bool {
    let start = Instant::now();
    while procfs::task_count() != target {
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_micros(200));
    }
    true
}

/// Counts how often the submitting thread and the other threads (the
/// workers) blocked during a run: growth of `voluntary_ctxt_switches`.
pub struct Probe {
    me: u32,
    mine: procfs::TaskStat,
    others: std::collections::HashMap<u32, procfs::TaskStat>,
    start: Instant,
}

/// A timed run and the blocking it caused.
pub struct Run {
    pub elapsed: Duration,
    /// Blocks of the submitting thread.
    pub submitter_blocks: u64,
    /// Blocks of the other threads.
    pub worker_blocks: u64,
    /// Preemptions of all threads.
    pub preemptions: u64,
    /// Nanoseconds on a CPU, summed over the submitting thread and the others.
    pub cpu_ns: u64,
    /// How long the puts took (the first put to the last one's return),
    /// where a system records it: W1's ways of putting, told apart from
    /// the wait that follows.
    pub put: Option<Duration>,
    /// How long the wait after the puts took, where a system records it.
    pub wait: Option<Duration>,
}

impl Probe {
    pub fn start() -> Probe {
        let me = procfs::my_tid();
        Probe {
            me,
            mine: procfs::task_stat(me).unwrap_or_default(),
            others: procfs::all_tasks(me),
            start: Instant::now(),
        }
    }

    pub fn stop(self) -> Run {
        let elapsed = self.start.elapsed();
        let mine = procfs::task_stat(self.me).unwrap_or_default();
        let others = procfs::delta(&self.others, &procfs::all_tasks(self.me));
        Run {
            elapsed,
            submitter_blocks: mine.voluntary - self.mine.voluntary,
            worker_blocks: others.voluntary,
            preemptions: mine.involuntary - self.mine.involuntary + others.involuntary,
            cpu_ns: mine.cpu_ns - self.mine.cpu_ns + others.cpu_ns,
            put: None,
            wait: None,
        }
    }
}

/// When a W8 parent had put its last child, from the submitting thread's
/// start: the parent calls `mark` after its loop (one clock read, once per
/// run), and the run's `put` is then the parent's puts, told apart from
/// the children's runs and the results' delivery that follow.
#[derive(Clone)]
pub struct ParentDone {
    start: Instant,
    done: std::sync::Arc<std::sync::OnceLock<Instant>>,
}

impl ParentDone {
    pub fn start() -> ParentDone {
        ParentDone {
            start: Instant::now(),
            done: Default::default(),
        }
    }

    pub fn mark(&self) {
        let _ = self.done.set(Instant::now());
    }
}

impl Run {
    /// The run, with how long its parent's puts took (`ParentDone`).
    pub fn with_parent(self, parent: &ParentDone) -> Run {
        match parent.done.get() {
            Some(done) => self.with_put(*done - parent.start),
            None => self,
        }
    }

    /// The run, with how long its puts took.
    pub fn with_put(self, put: Duration) -> Run {
        Run {
            put: Some(put),
            ..self
        }
    }

    /// The run, with how long the wait after its puts took, and without
    /// a pause between the two (`Batch::settle`).
    pub fn with_wait(self, wait: Duration, paused: Duration) -> Run {
        Run {
            wait: Some(wait),
            elapsed: self.elapsed.saturating_sub(paused),
            ..self
        }
    }

    /// Adds the blocks per 1,000 requests to `obs`.
    pub fn blocks(&self, obs: Obs, n: u64) -> Obs {
        let per_k = |x: u64| x as f64 * 1000.0 / n as f64;
        obs.with("submitter blocks/1k req", per_k(self.submitter_blocks))
            .with("worker blocks/1k req", per_k(self.worker_blocks))
    }
}

pub fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Microseconds, or NaN for a timeout.
pub fn micros(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

pub fn sleep_until(end: Instant) {
    let now = Instant::now();
    if end > now {
        thread::sleep(end - now);
    }
}
