//! The kinds of run a system can implement (see `systems::System`): for each,
//! its parameters, what one run returns, and the skeleton every system's
//! implementation shares, so that only the pool-specific calls differ.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{ms, ns_per, wait_tasks, Probe};
use crate::report::Obs;
use crate::work::{square, sum_of, Work};
use crate::{alloc, procfs};

// ---------------------------------------------------------------------------
// Batch: put n requests of one work function, then collect every result

/// `workers` workers; requests `work(0..n)`, whose results must sum to `want`.
#[derive(Clone, Copy)]
pub struct Batch {
    pub workers: usize,
    pub n: u64,
    pub work: Work,
    pub want: u64,
    /// A pause between the last put and the wait, for the systems that
    /// time the two apart (W1's `--w1-settle-ms=N`): the workers finish
    /// first, and the wait then times the handling of the results alone.
    /// Taken off the run's time.
    pub settle: Option<Duration>,
}

// ---------------------------------------------------------------------------
// Fanout: one task adds n trivial tasks from inside the pool (W8)

/// `workers` workers; one task, itself run by the pool, adds the `n` tasks
/// `square(0..n)`, whose results must sum to `want` (the run covers the
/// parent, every child and the collection of their results).
#[derive(Clone, Copy)]
pub struct Fanout {
    pub workers: usize,
    pub n: u64,
    pub want: u64,
}

// ---------------------------------------------------------------------------
// Shrink: `from` workers reduced to `to`, idle or inside a request

#[derive(Clone, Copy)]
pub struct Shrink {
    pub from: usize,
    pub to: usize,
}

/// How long a shrink measurement waits for the threads to exit.
pub const SHRINK_TIMEOUT: Duration = Duration::from_millis(200);

/// Polls the thread count until it falls to `target`; time from `from`, or
/// `None` on timeout. Yields between reads so exiting threads get the CPU.
pub fn time_until_tasks(target: usize, from: Instant) -> Option<Duration> {
    time_until(from, || procfs::task_count() <= target)
}

/// Polls `done` (yielding in between) until it holds; time from `from`, or
/// `None` after `SHRINK_TIMEOUT`.
pub fn time_until(from: Instant, done: impl Fn() -> bool) -> Option<Duration> {
    loop {
        if done() {
            return Some(from.elapsed());
        }
        if from.elapsed() > SHRINK_TIMEOUT {
            return None;
        }
        thread::yield_now();
    }
}

/// The observation of a shrink: microseconds until the threads were gone
/// (`SHRINK_TIMEOUT` if they were not), and how many were left.
pub fn shrink_obs(took: Option<Duration>, left: usize) -> Obs {
    match took {
        Some(d) => Obs::new(d.as_secs_f64() * 1e6).with("surplus threads left", 0.0),
        None => {
            Obs::new(SHRINK_TIMEOUT.as_secs_f64() * 1e6).with("surplus threads left", left as f64)
        }
    }
}

// ---------------------------------------------------------------------------
// Idle CPU: what a pool of idle workers costs while nothing happens

/// CPU time and wake-ups of the `workers` threads `make` starts, over
/// `idle_for`.
pub fn idle_cpu<P>(make: impl FnOnce() -> P, workers: usize, idle_for: Duration) -> Obs {
    let base = procfs::task_count();
    let me = procfs::my_tid();
    let pool = make();
    wait_tasks(base + workers, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(100));
    let before = procfs::all_tasks(me);
    let ticks = procfs::process_ticks();
    thread::sleep(idle_for);
    let after = procfs::all_tasks(me);
    let ticks = procfs::process_ticks() - ticks;
    drop(pool);
    let d = procfs::delta(&before, &after);
    Obs::new(d.cpu_ns as f64 / 1e3)
        .with(
            "wake-ups (ctx switches)",
            (d.voluntary + d.involuntary) as f64,
        )
        .with("process utime+stime ticks", ticks as f64)
}

// ---------------------------------------------------------------------------
// Pending: queue n requests behind blocked workers, then drain them

/// `workers` workers, each blocked in a gate request, then `n` requests
/// `square(1..=n)` queued behind them; allocations are counted only if
/// `count_memory`, so that the timing runs are not disturbed.
#[derive(Clone, Copy)]
pub struct PendingJob {
    pub workers: usize,
    pub n: u64,
    pub count_memory: bool,
}

impl PendingJob {
    /// Results to expect: the gate requests' and the squares'.
    pub fn total(&self) -> u64 {
        self.n + self.workers as u64
    }

    /// Their sum (gate requests return 0).
    pub fn want(&self) -> u64 {
        sum_of(self.n + 1, square)
    }
}

/// Requests that block the pool's workers until the gate opens.
pub struct Gate {
    tx: flume::Sender<()>,
    rx: flume::Receiver<()>,
    started: &'static AtomicUsize,
}

impl Gate {
    pub fn new() -> Gate {
        let (tx, rx) = flume::unbounded();
        Gate {
            tx,
            rx,
            started: Box::leak(Box::new(AtomicUsize::new(0))),
        }
    }

    /// The body of a gate request (returns 0).
    pub fn body(&self) -> impl FnOnce() -> u64 + Send + 'static {
        let (rx, started) = (self.rx.clone(), self.started);
        move || {
            started.fetch_add(1, Relaxed);
            let _ = rx.recv();
            0
        }
    }

    fn wait_started(&self, n: usize) {
        while self.started.load(Relaxed) < n {
            thread::sleep(Duration::from_micros(100));
        }
    }

    fn open(&self, n: usize) {
        for _ in 0..n {
            self.tx.send(()).expect("gate");
        }
    }
}

/// What one "queue n behind blocked workers, then drain" run measured.
pub struct Pending {
    put: Duration,
    drain: Duration,
    /// Peak bytes allocated while queueing (meaningful only if `count_memory`).
    queued_peak: isize,
    /// Peak over queueing and draining.
    total_peak: isize,
    /// Peak bytes malloc held while queueing (see `alloc`).
    queued_held_peak: isize,
}

/// W5's column of the bytes malloc really held per request.
pub const HELD_COLUMN: &str = "malloc-held B/req";

impl Pending {
    pub fn memory_obs(&self, n: u64) -> Obs {
        Obs::new(self.queued_peak as f64 / n as f64)
            .with(HELD_COLUMN, self.queued_held_peak as f64 / n as f64)
            .with("peak incl. drain B/req", self.total_peak as f64 / n as f64)
    }

    pub fn time_obs(&self, n: u64) -> Obs {
        Obs::new(ms(self.put + self.drain))
            .with("put ms", ms(self.put))
            .with("drain ms", ms(self.drain))
            .with("put ns/req", ns_per(self.put, n))
    }
}

/// The common skeleton, once the gate requests are queued: waits until
/// every worker is inside one, then times `put_all` (the `n` squares) and
/// `drain` (every result handled on this thread) after opening the gate.
pub fn pending_run(
    job: PendingJob,
    gate: &Gate,
    put_all: impl FnOnce(),
    drain: impl FnOnce(),
) -> Pending {
    gate.wait_started(job.workers);
    if job.count_memory {
        alloc::start();
    }
    let t = Instant::now();
    put_all();
    let put = t.elapsed();
    let queued_peak = alloc::peak();
    let queued_held_peak = alloc::held_peak();
    let t = Instant::now();
    gate.open(job.workers);
    drain();
    let drain = t.elapsed();
    let total_peak = alloc::peak();
    alloc::stop();
    Pending {
        put,
        drain,
        queued_peak,
        total_peak,
        queued_held_peak,
    }
}

// ---------------------------------------------------------------------------
// Round trips: put one request, wait for its result, n times, 1 worker

/// Times `body` (the `n` round trips) with the blocking (voluntary context
/// switches) of the submitting thread and of the workers, and the CPU time
/// of all of them, per round trip.
pub fn time_round_trips(n: u64, body: impl FnOnce()) -> Obs {
    let probe = Probe::start();
    body();
    let r = probe.stop();
    let per = |x: u64| x as f64 / n as f64;
    Obs::new(r.elapsed.as_secs_f64() * 1e6 / n as f64)
        .with("submitter blocks/rt", per(r.submitter_blocks))
        .with("worker blocks/rt", per(r.worker_blocks))
        .with("preemptions/rt", per(r.preemptions))
        .with("CPU us/rt", per(r.cpu_ns) / 1e3)
}

// ---------------------------------------------------------------------------
// Spawn: create n workers, then dismiss them

pub struct Spawned {
    pub create: Duration,
    pub dismiss: Duration,
    pub heap: isize,
    pub rss: i64,
}

/// Times `create` until `n` more threads exist, then `dismiss` until they
/// are gone; counts heap bytes and RSS growth while they are alive.
pub fn spawn_run<P>(n: usize, create: impl FnOnce() -> P, dismiss: impl FnOnce(P)) -> Spawned {
    let base = procfs::task_count();
    let rss0 = procfs::rss_bytes() as i64;
    alloc::start();
    let t = Instant::now();
    let pool = create();
    wait_tasks(base + n, Duration::from_secs(30));
    let create_t = t.elapsed();
    let heap = alloc::current();
    alloc::stop();
    let rss = procfs::rss_bytes() as i64 - rss0;
    let t = Instant::now();
    dismiss(pool);
    wait_tasks(base, Duration::from_secs(30));
    Spawned {
        create: create_t,
        dismiss: t.elapsed(),
        heap,
        rss,
    }
}
