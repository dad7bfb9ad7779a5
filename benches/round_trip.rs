//! One request at a time, with some work in it: a ticket's round trip
//! (`submit`, then `Ticket::wait`) against the callback path's
//! (`put_request`, then `ThreadPool::wait`) and a window of one
//! (`ThreadPool::as_completed` with a limit of 1), side by side in one
//! process.
//!
//! The suite's W7 (`benches/compare`) times round trips of trivial work,
//! which often end before the submitting thread even starts to wait. With
//! a microsecond or more of work the waiter must wait: it spins for a
//! while, then parks and is woken, which costs several microseconds more.
//! Rows: work of 0, 1, 3 and 8 µs (a busy loop on the clock), on 1 and 2
//! workers. Columns: µs per round trip (median and min-max over the
//! rounds, interleaved), and how often the submitting thread blocked per
//! round trip (`voluntary_ctxt_switches` of `/proc/thread-self/status`;
//! `-` where that file cannot be read).
//!
//! `cargo bench --bench round_trip` (add `-- --quick` for a short run).

use std::time::{Duration, Instant};

use callpool::{ThreadPool, WorkRequest};

/// Works for `ns` nanoseconds of wall time; returns how many loops that took.
fn busy(ns: u64) -> u64 {
    let start = Instant::now();
    let mut loops = 0u64;
    while start.elapsed() < Duration::from_nanos(ns) {
        loops = loops.wrapping_add(1);
    }
    loops
}

/// How the submitting thread does `n` round trips of `work_ns` each.
type Trips = fn(&ThreadPool, u64, u64);

fn tickets(pool: &ThreadPool, n: u64, work_ns: u64) {
    for _ in 0..n {
        pool.submit(busy, work_ns)
            .expect("the pool is open")
            .wait()
            .expect("no failure");
    }
}

fn window(pool: &ThreadPool, n: u64, work_ns: u64) {
    for (_, outcome) in pool.as_completed(0..n, 1, move |_: &u64| busy(work_ns)) {
        outcome.expect("no failure");
    }
}

fn callbacks(pool: &ThreadPool, n: u64, work_ns: u64) {
    for _ in 0..n {
        pool.put_request(WorkRequest::new(busy, work_ns).on_result(|_, _| {}))
            .expect("the pool is open");
        pool.wait().expect("no failure");
    }
}

/// The submitting thread's voluntary context switches so far: each one a
/// block and a later wake-up.
fn blocks() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
}

/// µs per round trip, and blocks per round trip if they could be read.
fn measure(pool: &ThreadPool, trips: Trips, n: u64, work_ns: u64) -> (f64, Option<f64>) {
    let blocks_before = blocks();
    let start = Instant::now();
    trips(pool, n, work_ns);
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let per_trip = blocks_before
        .zip(blocks())
        .map(|(before, after)| (after - before) as f64 / n as f64);
    (us, per_trip)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (rounds, n) = if quick { (3, 2_000) } else { (7, 20_000) };
    let ways: [(&str, Trips); 3] = [
        ("submit + Ticket::wait", tickets),
        ("put_request + wait", callbacks),
        ("as_completed, limit 1", window),
    ];
    println!("One request at a time: {n} round trips per round, {rounds} rounds, interleaved.\n");
    println!("| workers | work | way | µs/round trip (median) | min – max | blocks/round trip (median) |");
    println!("|---:|---:|---|---:|---|---:|");
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        for work_us in [0u64, 1, 3, 8] {
            let work_ns = work_us * 1_000;
            let mut times = vec![Vec::new(); ways.len()];
            let mut blocked = vec![Vec::new(); ways.len()];
            for _ in 0..rounds {
                for (way, (_, trips)) in ways.iter().enumerate() {
                    let (us, per_trip) = measure(&pool, *trips, n, work_ns);
                    times[way].push(us);
                    blocked[way].extend(per_trip);
                }
            }
            for (way, (name, _)) in ways.iter().enumerate() {
                let min = times[way].iter().copied().fold(f64::INFINITY, f64::min);
                let max = times[way].iter().copied().fold(0.0, f64::max);
                let blocks = if blocked[way].is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.3}", median(&mut blocked[way]))
                };
                println!(
                    "| {workers} | {work_us} µs | {name} | {:.2} | {min:.2} – {max:.2} | {blocks} |",
                    median(&mut times[way])
                );
            }
        }
        pool.shutdown().expect("shutdown");
    }
}
