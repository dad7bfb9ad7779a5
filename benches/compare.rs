//! Side-by-side benchmarks: callpool and its peers on the same workloads, in
//! the same process, interleaved round by round (issue 3).
//!
//! ```text
//! cargo bench --bench compare                 # full suite (a few minutes)
//! cargo bench --bench compare -- --quick      # every size /100, 1 round
//! CALLPOOL_BENCH_QUICK=1 cargo bench --bench compare
//! cargo bench --bench compare -- w1 w7        # only some workloads
//! ```
//!
//! Systems live in `compare/systems/`, one file each, behind the `System`
//! trait. Every result comes back to the submitting thread, which counts and
//! sums them and stops the whole suite on a mismatch.
//!
//! `docs/performance.md` explains the method and records a full run.

#[path = "compare/alloc.rs"]
mod alloc;
#[path = "compare/cfg.rs"]
mod cfg;
#[path = "compare/harness.rs"]
mod harness;
#[path = "compare/kinds.rs"]
mod kinds;
#[path = "compare/peers.rs"]
mod peers;
#[path = "compare/procfs.rs"]
mod procfs;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/systems/mod.rs"]
mod systems;
#[path = "compare/work.rs"]
mod work;

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use cfg::Cfg;
use harness::{check, ms, ns_per};
use kinds::{Batch, PendingJob, Shrink, Spawned, HELD_COLUMN, SHRINK_TIMEOUT};
use report::{interleave, median, num, Entry, Obs, Table};
use systems::{Runner, System};
use work::{calibrate_spin, spin, square, sum_of, Work, SPIN_ITERS};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

// ---------------------------------------------------------------------------
// Rows of a table

/// Whether a table's rows include the API variants (`System::is_variant`).
#[derive(Clone, Copy, PartialEq)]
pub enum Variants {
    Include,
    Skip,
}

/// One row per system, in registry order, for those that accept the run
/// (`runner` returns `Some`); `obs` turns each run's result into the row's
/// observation. The runners are built here, once per table.
pub fn entries<'a, T: 'static>(
    variants: Variants,
    runner: impl Fn(&dyn System) -> Option<Runner<T>>,
    obs: impl Fn(T) -> Obs + Copy + 'a,
) -> Vec<Entry<'a>> {
    systems::ALL
        .iter()
        .filter(|s| variants == Variants::Include || !s.is_variant())
        .filter_map(|s| {
            let mut run = runner(*s)?;
            let entry: Entry<'a> = (s.name(), Box::new(move || obs(run())));
            Some(entry)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// w1

/// One table per worker count.
const TABLES: [(&str, usize); 3] = [("w1-1", 1), ("w1-2", 2), ("w1-4", 4)];

/// Requests per run; `--w1-n=N` sets another (for profiling under
/// callgrind).
fn w1_size(cfg: &Cfg) -> u64 {
    cfg.flag("--w1-n=").unwrap_or(cfg.size(1_000_000))
}

fn w1(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = w1_size(cfg);
    let want = sum_of(n, square);
    for (id, workers) in TABLES {
        if !cfg.wants(id) {
            continue;
        }
        let b = Batch {
            workers,
            n,
            work: Work::Square,
            want,
        };
        let systems = entries(
            Variants::Include,
            |s| s.batch(b),
            move |r| r.blocks(Obs::new(ns_per(r.elapsed, n)), n),
        );
        out.push(interleave(
            id,
            format!("W1 overhead: {n} trivial requests (square a u64), {workers} worker(s)"),
            "ns/request",
            cfg.rounds(5),
            systems,
        ));
    }
}

// ---------------------------------------------------------------------------
// w2

fn w2(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(5_000);
    let workers = 64;
    // `nap` returns its argument: the sum of 0..n.
    let want = n * n.saturating_sub(1) / 2;
    let ideal = Duration::from_millis(n) / workers as u32;
    let b = Batch {
        workers,
        n,
        work: Work::Nap,
        want,
    };
    // How requests are built does not matter next to a 1 ms sleep.
    let systems = entries(
        Variants::Skip,
        |s| s.batch(b),
        move |r| {
            let d = r.elapsed;
            Obs::new(ms(d)).with(
                "efficiency %",
                100.0 * ideal.as_secs_f64() / d.as_secs_f64(),
            )
        },
    );
    let mut t = interleave(
        "w2",
        format!("W2 latency-bound: {n} requests sleeping 1 ms, {workers} workers"),
        "ms",
        cfg.rounds(5),
        systems,
    );
    t.notes.push(format!(
        "Efficiency = ideal / measured, ideal = {n} x 1 ms / {workers} = {} ms. \
         `thread::sleep(1 ms)` itself takes longer than 1 ms (timer slack), so no system reaches 100%.",
        num(ms(ideal))
    ));
    out.push(t);
}

// ---------------------------------------------------------------------------
// w3

fn w3(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(20_000);
    let workers = 2;
    let one = calibrate_spin();
    let want = sum_of(n, spin);
    let serial_ms = Cell::new(f64::NAN);
    let serial = &serial_ms;
    // Not a system: the same work without a pool, first in every round so
    // that each system is compared with the serial time of its own round.
    let mut systems: Vec<Entry<'_>> = vec![(
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
    let b = Batch {
        workers,
        n,
        work: Work::Spin,
        want,
    };
    // How requests are built does not matter next to 50 us of work.
    systems.extend(entries(
        Variants::Skip,
        |s| s.batch(b),
        move |r| {
            let d = r.elapsed;
            Obs::new(ms(d)).with(
                "efficiency %",
                100.0 * serial.get() / workers as f64 / ms(d),
            )
        },
    ));
    let mut t = interleave(
        "w3",
        format!("W3 CPU-bound: {n} requests of ~50 us of arithmetic, {workers} workers"),
        "ms",
        cfg.rounds(3),
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
// w4

const SHRINK: Shrink = Shrink { from: 16, to: 2 };

/// How long after the shrink the busy workers' requests end.
const BUSY_FOR: Duration = Duration::from_millis(20);

fn w4(cfg: &Cfg, out: &mut Vec<Table>) {
    let rounds = cfg.rounds(5);
    let mut t = interleave(
        "w4-idle",
        "W4 resizing: 16 idle workers shrunk to 2, time until 14 threads have exited".into(),
        "us",
        rounds,
        entries(Variants::Skip, |s| s.idle_shrink(SHRINK), |o| o),
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
        entries(Variants::Skip, |s| s.busy_shrink(SHRINK, BUSY_FOR), |o| o),
    );
    t.notes.push(
        "Each worker is inside a request that ends 20 ms after the shrink (it sleeps until that \
         instant, so the figure includes the sleep's own overshoot); the value is the time from \
         that end until the 14 surplus threads are gone from /proc/self/task."
            .into(),
    );
    out.push(t);
    let idle_for = Duration::from_millis(cfg.size(2_000));
    let mut t = interleave(
        "w4-cpu",
        format!(
            "W4 idle: CPU used by an idle pool of 16 over {} s",
            idle_for.as_secs_f64()
        ),
        "us CPU",
        cfg.rounds(2),
        entries(Variants::Skip, |s| s.idle_cpu(SHRINK.from, idle_for), |o| o),
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
// w5

fn w5(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000_000);
    let job = PendingJob {
        workers: 1,
        n,
        count_memory: true,
    };
    let mut t = interleave(
        "w5",
        format!("W5 memory: {n} requests queued behind 1 blocked worker"),
        "bytes/request",
        cfg.rounds(2),
        entries(
            Variants::Include,
            |s| s.pending(job),
            move |p| p.memory_obs(n),
        ),
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

// ---------------------------------------------------------------------------
// w6

fn w6(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(500_000);
    let total = 2 * n;
    let mut t = interleave(
        "w6",
        format!("W6 contention: 2 threads each putting {n} trivial requests, 2 workers"),
        "ns/request",
        cfg.rounds(5),
        entries(
            Variants::Include,
            |s| s.contention(n),
            move |d: Duration| Obs::new(ns_per(d, total)),
        ),
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
// w7

fn w7(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(100_000);
    let mut t = interleave(
        "w7",
        format!("W7 latency: {n} round trips (put one request, wait for it), 1 worker"),
        "us/round trip",
        cfg.rounds(3),
        entries(Variants::Include, |s| s.round_trips(n), |o| o),
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
// scale_workers

fn scale_workers(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000) as usize;
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
        cfg.rounds(3),
        entries(Variants::Include, |s| s.spawn_workers(n), obs),
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
// scale_pending

fn scale_pending(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000_000);
    let job = PendingJob {
        workers: 2,
        n,
        count_memory: false,
    };
    let mut t = interleave(
        "scale-pending",
        format!(
            "Scale: {n} pending requests with callbacks (2 blocked workers), time to put and drain"
        ),
        "ms",
        cfg.rounds(3),
        entries(
            Variants::Include,
            |s| s.pending(job),
            move |p| p.time_obs(n),
        ),
    );
    t.notes.push(
        "Put: all requests queued while both workers are blocked. Drain: from opening the gate \
         until every result was handled (callbacks run / results received) on this thread."
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
                &format!("W1: {} trivial requests, ns per request", w1_size(&cfg)),
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
