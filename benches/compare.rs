//! Side-by-side benchmarks: callpool and its peers on the same workloads, in
//! the same process, interleaved round by round (issue 3).
//!
//! ```text
//! cargo bench --bench compare                 # full suite (a few minutes)
//! cargo bench --bench compare -- --quick      # every size /100, 1-2 rounds
//! CALLPOOL_BENCH_QUICK=1 cargo bench --bench compare
//! cargo bench --bench compare -- w1 w7        # only some workloads
//! ```
//!
//! Systems:
//! - `callpool`: `WorkRequest::new(f, i).on_result(cb)` put one at a time,
//!   then `wait()`; the callback adds into a counter on the polling thread.
//! - `callpool/make_requests` (W1, W5): the same through `make_requests`.
//! - `threadpool`: rust-threadpool's `execute`, result sent back on a std
//!   `mpsc` channel.
//! - `rayon`: `rayon::ThreadPool::spawn`, result on a std `mpsc` channel.
//! - `floor`: `compare/peers.rs`, boxed closures over one flume channel,
//!   results back over another.
//!
//! Every result comes back to the submitting thread, which counts and sums
//! them and stops the whole suite on a mismatch.
//!
//! `docs/performance.md` explains the method and records a full run.

#[path = "compare/alloc.rs"]
mod alloc;
#[path = "compare/peers.rs"]
mod peers;
#[path = "compare/procfs.rs"]
mod procfs;
#[path = "compare/report.rs"]
mod report;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{make_requests, ThreadPool, WorkRequest};

use peers::{Floor, Thunk};
use report::{interleave, median, num, Obs, System, Table};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

// ---------------------------------------------------------------------------
// Settings

struct Cfg {
    quick: bool,
    only: Vec<String>,
    w1_n: u64,
    w1_rounds: usize,
    w2_n: u64,
    w2_rounds: usize,
    w3_n: u64,
    w3_rounds: usize,
    w4_rounds: usize,
    idle_for: Duration,
    w5_n: u64,
    w5_rounds: usize,
    w6_n: u64,
    w6_rounds: usize,
    w7_n: u64,
    w7_rounds: usize,
    scale_workers: usize,
    scale_rounds: usize,
    pending_n: u64,
    pending_rounds: usize,
}

impl Cfg {
    fn from_env() -> Cfg {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var("CALLPOOL_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let systems = args
            .iter()
            .filter_map(|a| a.strip_prefix("--system="))
            .map(str::to_owned)
            .collect();
        let _ = report::ONLY_SYSTEMS.set(systems);
        // `cargo bench` passes `--bench`; other flags are ignored too.
        let only = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(|a| a.to_lowercase())
            .collect();
        let (d, r) = if quick { (100, 0) } else { (1, 1) };
        // `--w1-n=N`: another W1 size (for profiling under callgrind).
        let w1_n = args
            .iter()
            .find_map(|a| a.strip_prefix("--w1-n=")?.parse().ok())
            .unwrap_or(1_000_000 / d);
        Cfg {
            quick,
            only,
            w1_n,
            w1_rounds: 1 + 4 * r,
            w2_n: 5_000 / d,
            w2_rounds: 1 + 4 * r,
            w3_n: 20_000 / d,
            w3_rounds: 1 + 2 * r,
            w4_rounds: 1 + 4 * r,
            idle_for: Duration::from_millis(2_000 / d),
            w5_n: 1_000_000 / d,
            w5_rounds: 1 + r,
            w6_n: 500_000 / d,
            w6_rounds: 1 + 4 * r,
            w7_n: 100_000 / d,
            w7_rounds: 1 + 2 * r,
            scale_workers: 1_000 / d as usize,
            scale_rounds: 1 + 2 * r,
            pending_n: 1_000_000 / d,
            pending_rounds: 1 + 2 * r,
        }
    }

    /// Whether workload or table `id` was asked for (`w1` selects `w1-2`,
    /// `w1-2` selects the `w1` workload and only that table).
    fn wants(&self, id: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .any(|o| id.starts_with(o.as_str()) || o.starts_with(id))
    }
}

// ---------------------------------------------------------------------------
// Work, counting and checking

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn nap(x: u64) -> u64 {
    thread::sleep(Duration::from_millis(1));
    x
}

/// Iterations of `spin` that take about 50 us here (set by calibration).
static SPIN_ITERS: AtomicU64 = AtomicU64::new(1);

fn spin(x: u64) -> u64 {
    let mut v = x ^ 0x9E37_79B9_7F4A_7C15;
    for _ in 0..black_box(SPIN_ITERS.load(Relaxed)) {
        v = v
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v ^= v >> 29;
    }
    v
}

fn sum_of(n: u64, f: impl Fn(u64) -> u64) -> u64 {
    (0..n).fold(0u64, |s, i| s.wrapping_add(f(i)))
}

/// Where callpool's callbacks count and sum results. Callbacks run on the
/// polling thread only, so a plain load and store (no read-modify-write) is
/// enough; if callbacks ever ran on two threads at once, updates would be
/// lost and the check after the run would stop the suite.
struct Acc {
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

    fn reset(&self) -> &Self {
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self
    }

    #[inline]
    fn add(&self, v: u64) {
        self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).wrapping_add(v), Relaxed);
    }

    fn check(&self, what: &str, n: u64, sum: u64) {
        check(
            what,
            self.count.load(Relaxed),
            n,
            self.sum.load(Relaxed),
            sum,
        );
    }
}

static ACCS: [Acc; 2] = [Acc::new(), Acc::new()];

fn check(what: &str, got_n: u64, want_n: u64, got_sum: u64, want_sum: u64) {
    if got_n != want_n || got_sum != want_sum {
        eprintln!(
            "MISMATCH in {what}: {got_n} results summing to {got_sum}, \
             expected {want_n} summing to {want_sum}"
        );
        std::process::exit(1);
    }
}

/// Receives `n` results on the submitting thread; returns their sum.
fn collect_mpsc(rx: &mpsc::Receiver<u64>, n: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(rx.recv().expect("result channel closed"));
    }
    sum
}

fn collect_flume(rx: &flume::Receiver<u64>, n: u64) -> u64 {
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
fn result_channel() -> (&'static mpsc::Sender<u64>, mpsc::Receiver<u64>) {
    let (tx, rx) = mpsc::channel();
    (Box::leak(Box::new(tx)), rx)
}

/// Lets freshly spawned workers reach their idle loop before timing starts.
fn warm_up(threads: usize) {
    thread::sleep(Duration::from_millis(if threads > 16 { 30 } else { 5 }));
}

fn wait_tasks(target: usize, timeout: Duration) -> bool {
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
struct Probe {
    me: u32,
    mine: procfs::TaskStat,
    others: std::collections::HashMap<u32, procfs::TaskStat>,
    start: Instant,
}

/// A timed run and the blocking it caused.
struct Run {
    elapsed: Duration,
    /// Blocks of the submitting thread.
    submitter_blocks: u64,
    /// Blocks of the other threads.
    worker_blocks: u64,
    /// Preemptions of all threads.
    preemptions: u64,
}

impl Probe {
    fn start() -> Probe {
        let me = procfs::my_tid();
        Probe {
            me,
            mine: procfs::task_stat(me).unwrap_or_default(),
            others: procfs::all_tasks(me),
            start: Instant::now(),
        }
    }

    fn stop(self) -> Run {
        let elapsed = self.start.elapsed();
        let mine = procfs::task_stat(self.me).unwrap_or_default();
        let others = procfs::delta(&self.others, &procfs::all_tasks(self.me));
        Run {
            elapsed,
            submitter_blocks: mine.voluntary - self.mine.voluntary,
            worker_blocks: others.voluntary,
            preemptions: mine.involuntary - self.mine.involuntary + others.involuntary,
        }
    }
}

impl Run {
    /// Adds the blocks per 1,000 requests to `obs`.
    fn blocks(&self, obs: Obs, n: u64) -> Obs {
        let per_k = |x: u64| x as f64 * 1000.0 / n as f64;
        obs.with("submitter blocks/1k req", per_k(self.submitter_blocks))
            .with("worker blocks/1k req", per_k(self.worker_blocks))
    }
}

fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------
// Batch: put n requests of `f`, then collect all results (W1, W2, W3)

fn batch_callpool<F>(workers: usize, n: u64, f: F, want: u64) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    for i in 0..n {
        pool.put_request(WorkRequest::new(f, i).on_result(move |_, v| acc.add(v)))
            .expect("put");
    }
    pool.wait().expect("wait");
    let el = probe.stop();
    acc.check("callpool", n, want);
    pool.shutdown().expect("shutdown");
    el
}

fn batch_callpool_make<F>(workers: usize, n: u64, f: F, want: u64) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let acc: &'static Acc = ACCS[0].reset();
    let probe = Probe::start();
    let reqs = make_requests(
        f,
        0..n,
        move |_, v| acc.add(v),
        |id, e| panic!("request {id} failed: {e}"),
    );
    for r in reqs {
        pool.put_request(r).expect("put");
    }
    pool.wait().expect("wait");
    let el = probe.stop();
    acc.check("callpool/make_requests", n, want);
    pool.shutdown().expect("shutdown");
    el
}

fn batch_threadpool<F>(workers: usize, n: u64, f: F, want: u64) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let pool = threadpool::ThreadPool::new(workers);
    warm_up(workers);
    let (tx, rx) = result_channel();
    let probe = Probe::start();
    for i in 0..n {
        pool.execute(move || {
            let _ = tx.send(f(i));
        });
    }
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop();
    check("threadpool", n, n, sum, want);
    pool.join();
    el
}

fn batch_rayon<F>(workers: usize, n: u64, f: F, want: u64) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool");
    warm_up(workers);
    let (tx, rx) = result_channel();
    let probe = Probe::start();
    for i in 0..n {
        pool.spawn(move || {
            let _ = tx.send(f(i));
        });
    }
    let sum = collect_mpsc(&rx, n);
    let el = probe.stop();
    check("rayon", n, n, sum, want);
    el
}

fn batch_floor<F>(workers: usize, n: u64, f: F, want: u64) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + 'static,
{
    let pool = Floor::<Thunk>::new(workers, 1);
    warm_up(workers);
    let probe = Probe::start();
    for i in 0..n {
        pool.submit(Box::new(move || f(i)));
    }
    let sum = collect_flume(pool.results(0), n);
    let el = probe.stop();
    check("floor", n, n, sum, want);
    pool.join();
    el
}

/// The four (or five) systems on one batch workload; `obs` turns each run
/// into the observation. `f` is a function item, so closures capture only
/// the argument (and the peers their result channel).
fn batch_systems<'a, F>(
    workers: usize,
    n: u64,
    f: F,
    want: u64,
    with_make: bool,
    obs: impl Fn(Run) -> Obs + Copy + 'a,
) -> Vec<System<'a>>
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let mut v: Vec<System<'a>> = vec![(
        "callpool",
        Box::new(move || obs(batch_callpool(workers, n, f, want))),
    )];
    if with_make {
        v.push((
            "callpool/make_requests",
            Box::new(move || obs(batch_callpool_make(workers, n, f, want))),
        ));
    }
    v.push((
        "threadpool",
        Box::new(move || obs(batch_threadpool(workers, n, f, want))),
    ));
    v.push((
        "rayon",
        Box::new(move || obs(batch_rayon(workers, n, f, want))),
    ));
    v.push((
        "floor",
        Box::new(move || obs(batch_floor(workers, n, f, want))),
    ));
    v
}

// ---------------------------------------------------------------------------
// W1 overhead

fn w1(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w1_n;
    let want = sum_of(n, square);
    for (id, workers) in [("w1-1", 1), ("w1-2", 2), ("w1-4", 4)] {
        if !cfg.wants(id) {
            continue;
        }
        let systems = batch_systems(workers, n, square, want, true, move |r| {
            r.blocks(Obs::new(ns_per(r.elapsed, n)), n)
        });
        out.push(interleave(
            id,
            format!("W1 overhead: {n} trivial requests (square a u64), {workers} worker(s)"),
            "ns/request",
            cfg.w1_rounds,
            systems,
        ));
    }
}

// ---------------------------------------------------------------------------
// W2 latency-bound, W3 CPU-bound

fn w2(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w2_n;
    let workers = 64;
    let want = n * n.saturating_sub(1) / 2;
    let ideal = Duration::from_millis(n) / workers as u32;
    let systems = batch_systems(workers, n, nap, want, false, move |r| {
        let d = r.elapsed;
        Obs::new(ms(d)).with(
            "efficiency %",
            100.0 * ideal.as_secs_f64() / d.as_secs_f64(),
        )
    });
    let mut t = interleave(
        "w2",
        format!("W2 latency-bound: {n} requests sleeping 1 ms, {workers} workers"),
        "ms",
        cfg.w2_rounds,
        systems,
    );
    t.notes.push(format!(
        "Efficiency = ideal / measured, ideal = {n} x 1 ms / {workers} = {} ms. \
         `thread::sleep(1 ms)` itself takes longer than 1 ms (timer slack), so no system reaches 100%.",
        num(ms(ideal))
    ));
    out.push(t);
}

fn calibrate_spin() -> Duration {
    let time = |iters: u64| {
        SPIN_ITERS.store(iters, Relaxed);
        let mut best = Duration::MAX;
        for i in 0..20 {
            let t = Instant::now();
            black_box(spin(i));
            best = best.min(t.elapsed());
        }
        best
    };
    let probe = 20_000;
    let d = time(probe);
    let iters = ((probe as f64) * 50e-6 / d.as_secs_f64()).max(1.0) as u64;
    SPIN_ITERS.store(iters, Relaxed);
    time(iters)
}

fn w3(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w3_n;
    let workers = 2;
    let one = calibrate_spin();
    let want = sum_of(n, spin);
    let serial_ms = std::cell::Cell::new(f64::NAN);
    let serial = &serial_ms;
    let mut systems: Vec<System<'_>> = vec![(
        "serial (no pool)",
        Box::new(move || {
            let t = Instant::now();
            let sum = sum_of(n, spin);
            let d = t.elapsed();
            check("serial", n, n, sum, want);
            serial.set(ms(d));
            Obs::new(ms(d)).with("efficiency %", 100.0 / workers as f64)
        }),
    )];
    // Efficiency against the serial run of the same round: ideal = serial / 2.
    systems.extend(batch_systems(workers, n, spin, want, false, move |r| {
        let d = r.elapsed;
        Obs::new(ms(d)).with(
            "efficiency %",
            100.0 * serial.get() / workers as f64 / ms(d),
        )
    }));
    let mut t = interleave(
        "w3",
        format!("W3 CPU-bound: {n} requests of ~50 us of arithmetic, {workers} workers"),
        "ms",
        cfg.w3_rounds,
        systems,
    );
    t.notes.push(format!(
        "One request: {} iterations of a multiply-xorshift loop, {} us at calibration. \
         Efficiency = (serial time of the same round / {workers}) / measured.",
        SPIN_ITERS.load(Relaxed),
        num(one.as_secs_f64() * 1e6)
    ));
    out.push(t);
}

// ---------------------------------------------------------------------------
// W4 resizing

const SHRINK_TIMEOUT: Duration = Duration::from_millis(200);

/// Polls the thread count until it falls to `target`; time from `from`, or
/// `None` on timeout. Yields between reads so exiting threads get the CPU.
fn time_until_tasks(target: usize, from: Instant) -> Option<Duration> {
    time_until(from, || procfs::task_count() <= target)
}

/// Polls `done` (yielding in between) until it holds; time from `from`, or
/// `None` after `SHRINK_TIMEOUT`.
fn time_until(from: Instant, done: impl Fn() -> bool) -> Option<Duration> {
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

fn shrink_obs(took: Option<Duration>, left: usize) -> Obs {
    match took {
        Some(d) => Obs::new(d.as_secs_f64() * 1e6).with("surplus threads left", 0.0),
        None => {
            Obs::new(SHRINK_TIMEOUT.as_secs_f64() * 1e6).with("surplus threads left", left as f64)
        }
    }
}

fn idle_shrink_callpool() -> Obs {
    let base = procfs::task_count();
    let pool = ThreadPool::new(16);
    wait_tasks(base + 16, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    pool.dismiss_workers(14);
    let left_loop = time_until(t, || pool.threads() <= 2);
    let took = time_until_tasks(base + 2, t);
    let left = procfs::task_count().saturating_sub(base + 2);
    pool.join_all_dismissed_workers();
    pool.shutdown().expect("shutdown");
    shrink_obs(took, left).with("threads() = 2 after us", micros(left_loop))
}

/// Microseconds, or NaN for a timeout.
fn micros(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

fn idle_shrink_threadpool() -> Obs {
    let base = procfs::task_count();
    let mut pool = threadpool::ThreadPool::new(16);
    wait_tasks(base + 16, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    pool.set_num_threads(2);
    let took = time_until_tasks(base + 2, t);
    let left = procfs::task_count().saturating_sub(base + 2);
    drop(pool);
    shrink_obs(took, left)
}

fn sleep_until(end: Instant) {
    let now = Instant::now();
    if end > now {
        thread::sleep(end - now);
    }
}

/// The floor of a shrink: 16 bare threads, each blocked on its own channel;
/// 14 of the channels are closed at once.
fn idle_shrink_floor() -> Obs {
    let base = procfs::task_count();
    let (senders, threads): (Vec<_>, Vec<_>) = (0..16)
        .map(|_| {
            let (tx, rx) = flume::unbounded::<()>();
            (tx, thread::spawn(move || while rx.recv().is_ok() {}))
        })
        .unzip();
    wait_tasks(base + 16, Duration::from_secs(2));
    thread::sleep(Duration::from_millis(20));
    let mut senders = senders;
    let t = Instant::now();
    senders.truncate(2);
    let took = time_until_tasks(base + 2, t);
    let left = procfs::task_count().saturating_sub(base + 2);
    drop(senders);
    for t in threads {
        t.join().expect("floor thread");
    }
    shrink_obs(took, left)
}

/// 16 workers, each inside a request that ends 20 ms after the shrink; the
/// value is the time from that end until the 14 surplus threads are gone.
fn busy_shrink_callpool() -> Obs {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    STARTED.store(0, Relaxed);
    let base = procfs::task_count();
    let pool = ThreadPool::new(16);
    wait_tasks(base + 16, Duration::from_secs(2));
    let (tx, rx) = flume::unbounded::<Instant>();
    let acc: &'static Acc = ACCS[0].reset();
    for i in 0..16u64 {
        let rx = rx.clone();
        pool.put_request(
            WorkRequest::new(
                move |i: u64| {
                    STARTED.fetch_add(1, Relaxed);
                    sleep_until(rx.recv().expect("end"));
                    i
                },
                i,
            )
            .on_result(move |_, v| acc.add(v)),
        )
        .expect("put");
    }
    while STARTED.load(Relaxed) < 16 {
        thread::sleep(Duration::from_micros(100));
    }
    let end = Instant::now() + Duration::from_millis(20);
    for _ in 0..16 {
        tx.send(end).expect("send end");
    }
    pool.dismiss_workers(14);
    let left_loop = time_until(end, || pool.threads() <= 2).map(|_| end.elapsed());
    let took = time_until_tasks(base + 2, end).map(|_| end.elapsed());
    let left = procfs::task_count().saturating_sub(base + 2);
    pool.wait().expect("wait");
    acc.check("callpool busy shrink", 16, 120);
    pool.join_all_dismissed_workers();
    pool.shutdown().expect("shutdown");
    shrink_obs(took, left).with("threads() = 2 after us", micros(left_loop))
}

fn busy_shrink_threadpool() -> Obs {
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    STARTED.store(0, Relaxed);
    let base = procfs::task_count();
    let mut pool = threadpool::ThreadPool::new(16);
    wait_tasks(base + 16, Duration::from_secs(2));
    let (tx, rx) = flume::unbounded::<Instant>();
    let (rtx, rrx) = result_channel();
    for i in 0..16u64 {
        let rx = rx.clone();
        pool.execute(move || {
            STARTED.fetch_add(1, Relaxed);
            sleep_until(rx.recv().expect("end"));
            let _ = rtx.send(i);
        });
    }
    while STARTED.load(Relaxed) < 16 {
        thread::sleep(Duration::from_micros(100));
    }
    let end = Instant::now() + Duration::from_millis(20);
    for _ in 0..16 {
        tx.send(end).expect("send end");
    }
    pool.set_num_threads(2);
    let took = time_until_tasks(base + 2, end).map(|_| end.elapsed());
    let left = procfs::task_count().saturating_sub(base + 2);
    let sum = collect_mpsc(&rrx, 16);
    check("threadpool busy shrink", 16, 16, sum, 120);
    drop(pool);
    shrink_obs(took, left)
}

/// CPU time and wake-ups of an idle pool's threads over `idle_for`.
fn idle_cpu<P>(make: impl FnOnce() -> P, idle_for: Duration) -> Obs {
    let base = procfs::task_count();
    let me = procfs::my_tid();
    let pool = make();
    wait_tasks(base + 16, Duration::from_secs(2));
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

fn w4(cfg: &Cfg, out: &mut Vec<Table>) {
    let rounds = cfg.w4_rounds;
    let mut t = interleave(
        "w4-idle",
        "W4 resizing: 16 idle workers shrunk to 2, time until 14 threads have exited".into(),
        "us",
        rounds,
        vec![
            ("callpool", Box::new(idle_shrink_callpool)),
            ("threadpool", Box::new(idle_shrink_threadpool)),
            ("floor", Box::new(idle_shrink_floor)),
        ],
    );
    t.notes.push(format!(
        "callpool: `dismiss_workers(14)`; threadpool: `set_num_threads(2)`; floor: 16 bare \
         threads each blocked on its own channel, 14 channels closed at once (the cost of \
         waking and ending 14 threads, with no pool around them). Measured by polling \
         the entries of /proc/self/task. A value of {} us means the threads had not exited \
         when the measurement gave up. `threads() = 2 after`: when callpool's own count of \
         running threads (`ThreadPool::threads`, decremented as a worker leaves its loop) \
         reached 2; the kernel then still has to tear the threads down.",
        SHRINK_TIMEOUT.as_micros()
    ));
    out.push(t);
    let mut t = interleave(
        "w4-busy",
        "W4 resizing: 16 busy workers shrunk to 2, time beyond the end of their request".into(),
        "us",
        rounds,
        vec![
            ("callpool", Box::new(busy_shrink_callpool)),
            ("threadpool", Box::new(busy_shrink_threadpool)),
        ],
    );
    t.notes.push(
        "Each worker is inside a request that ends 20 ms after the shrink (it sleeps until that \
         instant, so the figure includes the sleep's own overshoot); the value is the time from \
         that end until the 14 surplus threads are gone from /proc/self/task."
            .into(),
    );
    out.push(t);
    let idle_for = cfg.idle_for;
    let mut t = interleave(
        "w4-cpu",
        format!(
            "W4 idle: CPU used by an idle pool of 16 over {} s",
            idle_for.as_secs_f64()
        ),
        "us CPU",
        rounds.min(2),
        vec![
            (
                "callpool",
                Box::new(move || idle_cpu(|| ThreadPool::new(16), idle_for)),
            ),
            (
                "threadpool",
                Box::new(move || idle_cpu(|| threadpool::ThreadPool::new(16), idle_for)),
            ),
            (
                "rayon",
                Box::new(move || {
                    idle_cpu(
                        || {
                            rayon::ThreadPoolBuilder::new()
                                .num_threads(16)
                                .build()
                                .expect("rayon")
                        },
                        idle_for,
                    )
                }),
            ),
            (
                "floor",
                Box::new(move || idle_cpu(|| Floor::<Thunk>::new(16, 1), idle_for)),
            ),
        ],
    );
    t.notes.push(
        "CPU: sum over the pool's threads of the first field of /proc/self/task/TID/schedstat \
         (ns on CPU); wake-ups: growth of voluntary + nonvoluntary context switches in \
         /proc/self/task/TID/status; ticks: utime+stime of the whole process from \
         /proc/self/stat (1 tick = 10 ms)."
            .into(),
    );
    out.push(t);
}

// ---------------------------------------------------------------------------
// W5 memory, and the pending-requests scale test

/// Requests that block the pool's workers until the gate opens.
struct Gate {
    tx: flume::Sender<()>,
    rx: flume::Receiver<()>,
    started: &'static AtomicUsize,
}

impl Gate {
    fn new() -> Gate {
        let (tx, rx) = flume::unbounded();
        Gate {
            tx,
            rx,
            started: Box::leak(Box::new(AtomicUsize::new(0))),
        }
    }

    /// The body of a gate request (returns 0).
    fn body(&self) -> impl FnOnce() -> u64 + Send + 'static {
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
struct Pending {
    put: Duration,
    drain: Duration,
    /// Peak bytes allocated while queueing (counting on only in `memory`).
    queued_peak: isize,
    /// Peak over queueing and draining.
    total_peak: isize,
    /// Peak bytes malloc held while queueing (see `alloc`).
    queued_held_peak: isize,
}

impl Pending {
    fn memory_obs(&self, n: u64) -> Obs {
        Obs::new(self.queued_peak as f64 / n as f64)
            .with(HELD_COLUMN, self.queued_held_peak as f64 / n as f64)
            .with("peak incl. drain B/req", self.total_peak as f64 / n as f64)
    }

    fn time_obs(&self, n: u64) -> Obs {
        Obs::new(ms(self.put + self.drain))
            .with("put ms", ms(self.put))
            .with("drain ms", ms(self.drain))
            .with("put ns/req", ns_per(self.put, n))
    }
}

/// W5's column of the bytes malloc really held per request.
const HELD_COLUMN: &str = "malloc-held B/req";

/// The common skeleton: `workers` gate requests, then `n` squares of 1..=n.
fn pending_run(
    workers: usize,
    count_memory: bool,
    gate: &Gate,
    put_all: impl FnOnce(),
    drain: impl FnOnce(),
) -> Pending {
    gate.wait_started(workers);
    if count_memory {
        alloc::start();
    }
    let t = Instant::now();
    put_all();
    let put = t.elapsed();
    let queued_peak = alloc::peak();
    let queued_held_peak = alloc::held_peak();
    let t = Instant::now();
    gate.open(workers);
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

fn pending_want(n: u64) -> u64 {
    sum_of(n + 1, square)
}

fn pending_callpool(workers: usize, n: u64, mem: bool) -> Pending {
    let pool = ThreadPool::new(workers);
    let gate = Gate::new();
    let acc: &'static Acc = ACCS[0].reset();
    for _ in 0..workers {
        let body = gate.body();
        pool.put_request(WorkRequest::new(move |()| body(), ()).on_result(move |_, v| acc.add(v)))
            .expect("put");
    }
    let p = pending_run(
        workers,
        mem,
        &gate,
        || {
            for i in 1..=n {
                pool.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                    .expect("put");
            }
        },
        || {
            pool.wait().expect("wait");
        },
    );
    acc.check("callpool pending", n + workers as u64, pending_want(n));
    pool.shutdown().expect("shutdown");
    p
}

fn pending_callpool_make(workers: usize, n: u64, mem: bool) -> Pending {
    let pool = ThreadPool::new(workers);
    let gate = Gate::new();
    let acc: &'static Acc = ACCS[0].reset();
    for _ in 0..workers {
        let body = gate.body();
        pool.put_request(WorkRequest::new(move |()| body(), ()).on_result(move |_, v| acc.add(v)))
            .expect("put");
    }
    let p = pending_run(
        workers,
        mem,
        &gate,
        || {
            let reqs = make_requests(
                square,
                1..=n,
                move |_, v| acc.add(v),
                |id, e| panic!("request {id} failed: {e}"),
            );
            for r in reqs {
                pool.put_request(r).expect("put");
            }
        },
        || {
            pool.wait().expect("wait");
        },
    );
    acc.check(
        "callpool/make_requests pending",
        n + workers as u64,
        pending_want(n),
    );
    pool.shutdown().expect("shutdown");
    p
}

fn pending_threadpool(workers: usize, n: u64, mem: bool) -> Pending {
    let pool = threadpool::ThreadPool::new(workers);
    let gate = Gate::new();
    let (tx, rx) = result_channel();
    for _ in 0..workers {
        let body = gate.body();
        pool.execute(move || {
            let _ = tx.send(body());
        });
    }
    let mut sum = 0;
    let total = n + workers as u64;
    let p = pending_run(
        workers,
        mem,
        &gate,
        || {
            for i in 1..=n {
                pool.execute(move || {
                    let _ = tx.send(square(i));
                });
            }
        },
        || sum = collect_mpsc(&rx, total),
    );
    check("threadpool pending", total, total, sum, pending_want(n));
    pool.join();
    p
}

fn pending_rayon(workers: usize, n: u64, mem: bool) -> Pending {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon");
    let gate = Gate::new();
    let (tx, rx) = result_channel();
    for _ in 0..workers {
        let body = gate.body();
        pool.spawn(move || {
            let _ = tx.send(body());
        });
    }
    let mut sum = 0;
    let total = n + workers as u64;
    let p = pending_run(
        workers,
        mem,
        &gate,
        || {
            for i in 1..=n {
                pool.spawn(move || {
                    let _ = tx.send(square(i));
                });
            }
        },
        || sum = collect_mpsc(&rx, total),
    );
    check("rayon pending", total, total, sum, pending_want(n));
    p
}

fn pending_floor(workers: usize, n: u64, mem: bool) -> Pending {
    let pool = Floor::<Thunk>::new(workers, 1);
    let gate = Gate::new();
    for _ in 0..workers {
        pool.submit(Box::new(gate.body()));
    }
    let mut sum = 0;
    let total = n + workers as u64;
    let p = pending_run(
        workers,
        mem,
        &gate,
        || {
            for i in 1..=n {
                pool.submit(Box::new(move || square(i)));
            }
        },
        || sum = collect_flume(pool.results(0), total),
    );
    check("floor pending", total, total, sum, pending_want(n));
    pool.join();
    p
}

fn pending_systems<'a>(workers: usize, n: u64, mem: bool) -> Vec<System<'a>> {
    let obs = move |p: Pending| {
        if mem {
            p.memory_obs(n)
        } else {
            p.time_obs(n)
        }
    };
    vec![
        (
            "callpool",
            Box::new(move || obs(pending_callpool(workers, n, mem))),
        ),
        (
            "callpool/make_requests",
            Box::new(move || obs(pending_callpool_make(workers, n, mem))),
        ),
        (
            "threadpool",
            Box::new(move || obs(pending_threadpool(workers, n, mem))),
        ),
        (
            "rayon",
            Box::new(move || obs(pending_rayon(workers, n, mem))),
        ),
        (
            "floor",
            Box::new(move || obs(pending_floor(workers, n, mem))),
        ),
    ]
}

fn w5(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w5_n;
    let mut t = interleave(
        "w5",
        format!("W5 memory: {n} requests queued behind 1 blocked worker"),
        "bytes/request",
        cfg.w5_rounds,
        pending_systems(1, n, true),
    );
    t.notes.push(
        "Bytes/request: peak of (bytes allocated - bytes freed), counted by the bench's global \
         allocator from just before the first put until the last one returned, divided by the \
         number of requests. It counts requested sizes, not malloc's rounding or headers; the \
         malloc-held column counts what glibc's malloc held for the same blocks (usable size, \
         rounded up, plus its 8-byte size word per block). `callpool/make_requests` includes \
         the `Vec<WorkRequest>` that `make_requests` returns."
            .into(),
    );
    out.push(t);
}

fn scale_pending(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.pending_n;
    let mut t = interleave(
        "scale-pending",
        format!(
            "Scale: {n} pending requests with callbacks (2 blocked workers), time to put and drain"
        ),
        "ms",
        cfg.pending_rounds,
        pending_systems(2, n, false),
    );
    t.notes.push(
        "Put: all requests queued while both workers are blocked. Drain: from opening the gate \
         until every result was handled (callbacks run / results received) on this thread."
            .into(),
    );
    out.push(t);
}

// ---------------------------------------------------------------------------
// W6 contention

fn w6_callpool(n: u64) -> Duration {
    let pool = ThreadPool::new(2);
    warm_up(2);
    let handles = [pool.new_handle(), pool.new_handle()];
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for (k, h) in handles.iter().enumerate() {
            let barrier = &barrier;
            s.spawn(move || {
                let acc: &'static Acc = ACCS[k].reset();
                barrier.wait();
                for i in 0..n {
                    h.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                        .expect("put");
                }
                h.wait().expect("wait");
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    for acc in &ACCS {
        acc.check("callpool W6", n, want);
    }
    drop(handles);
    pool.shutdown().expect("shutdown");
    el
}

fn w6_threadpool(n: u64) -> Duration {
    let pool = threadpool::ThreadPool::new(2);
    warm_up(2);
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for _ in 0..2 {
            let (barrier, pool) = (&barrier, &pool);
            s.spawn(move || {
                let (tx, rx) = result_channel();
                barrier.wait();
                for i in 0..n {
                    pool.execute(move || {
                        let _ = tx.send(square(i));
                    });
                }
                check("threadpool W6", n, n, collect_mpsc(&rx, n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    pool.join();
    el
}

fn w6_rayon(n: u64) -> Duration {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon");
    warm_up(2);
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for _ in 0..2 {
            let (barrier, pool) = (&barrier, &pool);
            s.spawn(move || {
                let (tx, rx) = result_channel();
                barrier.wait();
                for i in 0..n {
                    pool.spawn(move || {
                        let _ = tx.send(square(i));
                    });
                }
                check("rayon W6", n, n, collect_mpsc(&rx, n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

fn w6_floor(n: u64) -> Duration {
    let pool = Floor::<(usize, Thunk)>::new(2, 2);
    warm_up(2);
    let barrier = Barrier::new(3);
    let want = sum_of(n, square);
    let start = thread::scope(|s| {
        for k in 0..2 {
            let (barrier, pool) = (&barrier, &pool);
            s.spawn(move || {
                barrier.wait();
                for i in 0..n {
                    pool.submit((k, Box::new(move || square(i))));
                }
                check("floor W6", n, n, collect_flume(pool.results(k), n), want);
            });
        }
        barrier.wait();
        Instant::now()
    });
    let el = start.elapsed();
    pool.join();
    el
}

fn w6(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w6_n;
    let total = 2 * n;
    let obs = move |d: Duration| Obs::new(ns_per(d, total));
    let mut t = interleave(
        "w6",
        format!("W6 contention: 2 threads each putting {n} trivial requests, 2 workers"),
        "ns/request",
        cfg.w6_rounds,
        vec![
            ("callpool", Box::new(move || obs(w6_callpool(n)))),
            ("threadpool", Box::new(move || obs(w6_threadpool(n)))),
            ("rayon", Box::new(move || obs(w6_rayon(n)))),
            ("floor", Box::new(move || obs(w6_floor(n)))),
        ],
    );
    t.notes.push(
        "callpool: one handle per submitting thread (`new_handle`), each thread puts its requests \
         and then `wait`s on its own handle, so each thread runs only its own callbacks. Peers: \
         one result channel per thread; the floor routes each result by a channel index carried \
         with the closure. ns/request = wall time / (2 x n)."
            .into(),
    );
    out.push(t);
}

// ---------------------------------------------------------------------------
// W7 latency

/// Round-trip timing plus the blocking (voluntary context switches) of the
/// submitting thread and of the workers, per round trip.
fn round_trips(n: u64, body: impl FnOnce()) -> Obs {
    let probe = Probe::start();
    body();
    let r = probe.stop();
    let per = |x: u64| x as f64 / n as f64;
    Obs::new(r.elapsed.as_secs_f64() * 1e6 / n as f64)
        .with("submitter blocks/rt", per(r.submitter_blocks))
        .with("worker blocks/rt", per(r.worker_blocks))
        .with("preemptions/rt", per(r.preemptions))
}

fn w7_callpool(n: u64) -> Obs {
    let pool = ThreadPool::new(1);
    warm_up(1);
    let acc: &'static Acc = ACCS[0].reset();
    let obs = round_trips(n, || {
        for i in 0..n {
            pool.put_request(WorkRequest::new(square, i).on_result(move |_, v| acc.add(v)))
                .expect("put");
            pool.wait().expect("wait");
        }
    });
    acc.check("callpool W7", n, sum_of(n, square));
    pool.shutdown().expect("shutdown");
    obs
}

fn w7_threadpool(n: u64) -> Obs {
    let pool = threadpool::ThreadPool::new(1);
    warm_up(1);
    let (tx, rx) = result_channel();
    let mut sum = 0u64;
    let obs = round_trips(n, || {
        for i in 0..n {
            pool.execute(move || {
                let _ = tx.send(square(i));
            });
            sum = sum.wrapping_add(rx.recv().expect("result"));
        }
    });
    check("threadpool W7", n, n, sum, sum_of(n, square));
    pool.join();
    obs
}

fn w7_rayon(n: u64) -> Obs {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon");
    warm_up(1);
    let (tx, rx) = result_channel();
    let mut sum = 0u64;
    let obs = round_trips(n, || {
        for i in 0..n {
            pool.spawn(move || {
                let _ = tx.send(square(i));
            });
            sum = sum.wrapping_add(rx.recv().expect("result"));
        }
    });
    check("rayon W7", n, n, sum, sum_of(n, square));
    obs
}

fn w7_floor(n: u64) -> Obs {
    let pool = Floor::<Thunk>::new(1, 1);
    warm_up(1);
    let mut sum = 0u64;
    let obs = round_trips(n, || {
        for i in 0..n {
            pool.submit(Box::new(move || square(i)));
            sum = sum.wrapping_add(pool.results(0).recv().expect("result"));
        }
    });
    check("floor W7", n, n, sum, sum_of(n, square));
    pool.join();
    obs
}

fn w7(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.w7_n;
    let mut t = interleave(
        "w7",
        format!("W7 latency: {n} round trips (put one request, wait for it), 1 worker"),
        "us/round trip",
        cfg.w7_rounds,
        vec![
            ("callpool", Box::new(move || w7_callpool(n))),
            ("threadpool", Box::new(move || w7_threadpool(n))),
            ("rayon", Box::new(move || w7_rayon(n))),
            ("floor", Box::new(move || w7_floor(n))),
        ],
    );
    t.notes.push(
        "Blocks/rt: growth of `voluntary_ctxt_switches` (each one a block and a later wake-up) \
         of the submitting thread, and summed over the other threads (the worker), per round \
         trip. callpool: `put_request` then `wait`; peers: submit then `recv`."
            .into(),
    );
    out.push(t);
}

// ---------------------------------------------------------------------------
// Scale: 1,000 workers

struct Spawned {
    create: Duration,
    dismiss: Duration,
    heap: isize,
    rss: i64,
}

/// Times `create` until `n` more threads exist, then `dismiss` until they
/// are gone; counts heap bytes and RSS growth while they are alive.
fn spawn_run<P>(n: usize, create: impl FnOnce() -> P, dismiss: impl FnOnce(P)) -> Spawned {
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

fn scale_workers(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.scale_workers;
    let obs = move |s: Spawned| {
        Obs::new(ms(s.create + s.dismiss))
            .with("create ms", ms(s.create))
            .with("dismiss ms", ms(s.dismiss))
            .with("heap B/worker", s.heap as f64 / n as f64)
            .with("RSS KiB/worker", s.rss as f64 / 1024.0 / n as f64)
    };
    let mut t = interleave(
        "scale-workers",
        format!("Scale: create {n} workers, then dismiss them"),
        "ms",
        cfg.scale_rounds,
        vec![
            (
                "callpool",
                Box::new(move || {
                    let pool = ThreadPool::new(0);
                    let s = spawn_run(
                        n,
                        || pool.create_workers(n).expect("create"),
                        |()| {
                            pool.dismiss_workers(n);
                            pool.join_all_dismissed_workers();
                        },
                    );
                    pool.shutdown().expect("shutdown");
                    obs(s)
                }),
            ),
            (
                "threadpool",
                Box::new(move || obs(spawn_run(n, || threadpool::ThreadPool::new(n), drop))),
            ),
            (
                "rayon",
                Box::new(move || {
                    obs(spawn_run(
                        n,
                        || {
                            rayon::ThreadPoolBuilder::new()
                                .num_threads(n)
                                .build()
                                .expect("rayon")
                        },
                        drop,
                    ))
                }),
            ),
            (
                "floor",
                Box::new(move || obs(spawn_run(n, || Floor::<Thunk>::new(n, 1), Floor::join))),
            ),
        ],
    );
    t.notes.push(
        "Create: from the call until /proc/self/task shows every new thread. Dismiss: \
         callpool `dismiss_workers(n)` + `join_all_dismissed_workers()`, threadpool and rayon: \
         drop the pool, floor: close its queue and join; each until the threads are gone from \
         /proc/self/task. Heap: net bytes allocated while creating (counting allocator); RSS: \
         growth of VmRSS."
            .into(),
    );
    out.push(t);
}

// ---------------------------------------------------------------------------
// Summary against the targets of issue 3

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn targets(tables: &[Table], quick: bool) -> String {
    let mut s = String::from("## Targets (issue 3), from this run\n\n");
    if quick {
        s.push_str("QUICK MODE: sizes are 100x smaller; these verdicts mean nothing.\n\n");
    }
    let get = |id: &str| tables.iter().find(|t| t.id == id);
    let line = |s: &mut String, text: String| {
        s.push_str("- ");
        s.push_str(&text);
        s.push('\n');
    };
    for id in ["w1-1", "w1-2", "w1-4"] {
        let Some(t) = get(id) else { continue };
        let best_peer = median(&t.per_round(|v| v("threadpool").min(v("rayon")) / v("callpool")));
        let cp_over_floor = median(&t.per_round(|v| v("callpool") / v("floor")));
        line(
            &mut s,
            format!(
                "{id}: callpool {} ns/req; best of threadpool/rayon ÷ callpool = {:.2} (target ≥ 1.00: {}); \
                 callpool ÷ floor = {:.2} (target ≤ 1.30: {})",
                num(t.median_of("callpool")),
                best_peer,
                verdict(best_peer >= 1.0),
                cp_over_floor,
                verdict(cp_over_floor <= 1.3),
            ),
        );
        if id == "w1-1" {
            let v = t.median_of("callpool");
            line(
                &mut s,
                format!(
                    "w1-1: callpool with 1 worker {} ns/req (target < 100: {})",
                    num(v),
                    verdict(v < 100.0)
                ),
            );
        }
    }
    if let Some(t) = get("w5") {
        let cp = t.median_of("callpool");
        let fl = t.median_of("floor");
        let cp_held = t.extra_median("callpool", HELD_COLUMN);
        let fl_held = t.extra_median("floor", HELD_COLUMN);
        line(
            &mut s,
            format!(
                "W5: callpool {} B/req, floor {} B/req, ratio {:.2} (target ≤ 1.30: {}); \
                 as malloc holds them: {} and {} B/req, ratio {:.2} ({})",
                num(cp),
                num(fl),
                cp / fl,
                verdict(cp / fl <= 1.3),
                num(cp_held),
                num(fl_held),
                cp_held / fl_held,
                verdict(cp_held / fl_held <= 1.3)
            ),
        );
    }
    if let Some(t) = get("w4-idle") {
        let v = t.median_of("callpool");
        let max = t
            .row("callpool")
            .map_or(f64::NAN, |r| report::min_max(&r.values).1);
        line(
            &mut s,
            format!(
                "W4 idle shrink: callpool median {} us, max {} us (target ≤ 1000 us: {})",
                num(v),
                num(max),
                verdict(max <= 1000.0)
            ),
        );
    }
    if let Some(t) = get("w4-busy") {
        let v = t.median_of("callpool");
        let floor = get("w4-idle").map_or(f64::NAN, |t| t.median_of("floor"));
        line(
            &mut s,
            format!(
                "W4 busy shrink: callpool's 14 threads gone {} us after their request ended \
                 (target: at the end of the request; ending 14 bare threads takes {} us here, \
                 the floor row of the idle shrink)",
                num(v),
                num(floor)
            ),
        );
    }
    if let Some(t) = get("w4-cpu") {
        let cpu = t.median_of("callpool");
        let wakes = t.extra_median("callpool", "wake-ups (ctx switches)");
        line(
            &mut s,
            format!(
                "W4 idle CPU: callpool's 16 idle threads used {} us CPU and woke {} times \
                 (target: no measurable CPU, no wake-up: {})",
                num(cpu),
                num(wakes),
                verdict(wakes == 0.0)
            ),
        );
    }
    if let Some(t) = get("w6") {
        let r = median(&t.per_round(|v| v("callpool") / v("floor")));
        line(
            &mut s,
            format!(
                "W6: callpool {} ns/req, callpool ÷ floor = {r:.2} (target ≤ 1.30: {})",
                num(t.median_of("callpool")),
                verdict(r <= 1.3)
            ),
        );
    }
    if let Some(t) = get("w7") {
        let r = median(&t.per_round(|v| v("callpool") / v("floor")));
        let sb = t.extra_median("callpool", "submitter blocks/rt");
        let wb = t.extra_median("callpool", "worker blocks/rt");
        line(
            &mut s,
            format!(
                "W7: callpool {} us/rt, callpool ÷ floor = {r:.2} (target ≤ 1.30: {}); \
                 blocks per round trip: submitter {}, worker {} (target ≤ 1 each: {})",
                num(t.median_of("callpool")),
                verdict(r <= 1.3),
                num(sb),
                num(wb),
                verdict(sb <= 1.05 && wb <= 1.05)
            ),
        );
    }
    for id in ["w2", "w3"] {
        let Some(t) = get(id) else { continue };
        let cp = t.extra_median("callpool", "efficiency %");
        let fl = t.extra_median("floor", "efficiency %");
        line(
            &mut s,
            format!(
                "{}: efficiency callpool {}%, floor {}%, callpool ÷ floor = {:.3} (target ≥ 0.97: {})",
                id.to_uppercase(),
                num(cp),
                num(fl),
                cp / fl,
                verdict(cp / fl >= 0.97)
            ),
        );
    }
    s
}

// ---------------------------------------------------------------------------

fn main() {
    let cfg = Cfg::from_env();
    let (model, cpus) = procfs::machine();
    let started = Instant::now();
    println!(
        "# callpool side-by-side benchmarks{}\n\nMachine: {cpus} CPU(s), {model}; rustc release profile.\n",
        if cfg.quick {
            " (QUICK MODE: sizes /100, not for judging speed)"
        } else {
            ""
        }
    );
    let mut tables = Vec::new();
    type Workload = fn(&Cfg, &mut Vec<Table>);
    let workloads: [(&str, Workload); 9] = [
        ("w1", w1),
        ("w2", w2),
        ("w3", w3),
        ("w4", w4),
        ("w5", w5),
        ("w6", w6),
        ("w7", w7),
        ("scale-workers", scale_workers),
        ("scale-pending", scale_pending),
    ];
    for (id, run) in workloads {
        if !cfg.wants(id) {
            continue;
        }
        eprintln!("== {id} ({:.0} s so far)", started.elapsed().as_secs_f64());
        let before = tables.len();
        run(&cfg, &mut tables);
        for t in &tables[before..] {
            println!("{}", t.markdown());
        }
    }
    println!("{}", targets(&tables, cfg.quick));
    if !cfg.quick {
        let w1: Vec<&Table> = tables.iter().filter(|t| t.id.starts_with("w1-")).collect();
        if w1.len() == 3 {
            let names: Vec<String> = w1[0].rows.iter().map(|r| r.name.clone()).collect();
            let series: Vec<(String, Vec<(usize, f64)>)> = names
                .iter()
                .map(|name| {
                    let pts = [1, 2, 4]
                        .iter()
                        .zip(&w1)
                        .map(|(&w, t)| (w, t.median_of(name)))
                        .collect();
                    (name.clone(), pts)
                })
                .collect();
            let svg = report::svg_chart(
                &format!("W1: {} trivial requests, ns per request", cfg.w1_n),
                &series,
            );
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/perf-w1.svg");
            match std::fs::write(path, svg) {
                Ok(()) => println!("Chart written to docs/perf-w1.svg"),
                Err(e) => eprintln!("could not write {path}: {e}"),
            }
        }
    }
    println!("\nTotal time: {:.0} s", started.elapsed().as_secs_f64());
}
