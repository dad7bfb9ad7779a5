//! What a wait costs inside a callable of its own pool, against the same
//! wait from a thread outside the pool, side by side in one process.
//!
//! Inside a callable, a wait runs its own queued requests on the waiting
//! worker (`docs/design.md`, *A scope or collector on a worker of its own
//! pool*); with one worker it runs all of them. Outside, the pool's worker
//! runs them. Both should cost about the same per request, at any number
//! of requests: a wait whose cost per request grows with the number of
//! requests (a scan of the queue per request) shows as a ratio that grows
//! with `N`. Rows, for `N` requests of trivial work each:
//!
//! * `scope`: `ThreadPool::scope` with `put_then`, results summed by the
//!   callbacks;
//! * `tickets, callpool::as_completed`: `N` tickets, then their outcomes
//!   in the order they end;
//! * `ThreadPool::as_completed, limit N`: every input in flight at once;
//! * `ThreadPool::as_completed, limit 4, N others queued ahead`: the one
//!   case known to cost `O(N)` per request inside (a window behind a
//!   backlog; `docs/guide.md`), at a tenth of the sizes.
//!
//! `cargo bench --bench nested` (add `-- --quick` for a short run, or
//! `-- --n=2000 --n=8000` for other sizes). Prints
//! ns per request, outside and inside (median and min-max over the rounds,
//! interleaved), and inside ÷ outside per round (median and min-max).

use std::cell::Cell;
use std::time::Instant;

use callpool::{ThreadPool, WorkRequest};

/// How the `N` requests are made and waited for, on `pool`; returns the
/// sum of their results.
type Wait = fn(&ThreadPool, u64) -> u64;

fn scope(pool: &ThreadPool, n: u64) -> u64 {
    let sum = Cell::new(0u64);
    pool.scope(|s| {
        for i in 0..n {
            s.put_then(
                |i: u64| i * 2,
                i,
                |outcome| sum.set(sum.get() + outcome.expect("no failure")),
            )
            .expect("the pool is open");
        }
    });
    sum.get()
}

fn tickets(pool: &ThreadPool, n: u64) -> u64 {
    let tickets: Vec<_> = (0..n)
        .map(|i| pool.submit(|i: u64| i * 2, i).expect("the pool is open"))
        .collect();
    callpool::as_completed(tickets)
        .map(|(_, outcome)| outcome.expect("no failure"))
        .sum()
}

fn window(pool: &ThreadPool, n: u64) -> u64 {
    pool.as_completed(0..n, n as usize, |i: &u64| i * 2)
        .map(|(_, outcome)| outcome.expect("no failure"))
        .sum()
}

/// `as_completed` with a limit of 4, with `n` other requests (detached
/// tickets) queued just before: inside a callable on the only worker, the
/// known `O(q)` per request of a window behind a backlog of `q` (each next
/// request of the window goes behind the backlog, and the worker looks
/// past it again to find it). Outside the pool the worker runs the
/// backlog meanwhile.
fn window_behind_backlog(pool: &ThreadPool, n: u64) -> u64 {
    for _ in 0..n {
        drop(pool.submit(|()| (), ()).expect("the pool is open"));
    }
    pool.as_completed(0..n, 4, |i: &u64| i * 2)
        .map(|(_, outcome)| outcome.expect("no failure"))
        .sum()
}

/// Each wait, and by how much it divides the sizes: the window behind a
/// backlog costs `O(N)` per request inside, so it runs at a tenth of them.
const WAITS: [(&str, Wait, u64); 4] = [
    ("scope", scope, 1),
    ("tickets, callpool::as_completed", tickets, 1),
    ("ThreadPool::as_completed, limit N", window, 1),
    (
        "ThreadPool::as_completed, limit 4, N others queued ahead",
        window_behind_backlog,
        10,
    ),
];

/// Runs `wait` from this thread, outside the pool; the time it took.
fn outside(pool: &ThreadPool, wait: Wait, n: u64) -> f64 {
    let start = Instant::now();
    let sum = wait(pool, n);
    let elapsed = start.elapsed().as_secs_f64();
    check(sum, n);
    elapsed
}

/// Runs `wait` inside a callable on `pool`; the time from the put until
/// the callable's wait returned.
fn inside(pool: &ThreadPool, wait: Wait, n: u64) -> f64 {
    let (tx, rx) = std::sync::mpsc::channel();
    let inner = pool.clone();
    let start = Instant::now();
    pool.put_request(WorkRequest::new(
        move |()| {
            let sum = wait(&inner, n);
            tx.send((sum, start.elapsed().as_secs_f64()))
                .expect("the bench waits");
        },
        (),
    ))
    .expect("the pool is open");
    pool.wait().expect("the request ends");
    let (sum, elapsed) = rx.recv().expect("its result");
    check(sum, n);
    elapsed
}

fn check(sum: u64, n: u64) {
    if sum != n * (n - 1) {
        eprintln!("MISMATCH: {sum} != {}", n * (n - 1));
        std::process::exit(1);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("CALLPOOL_BENCH_QUICK").is_some();
    let (mut sizes, rounds): (Vec<u64>, usize) = if quick {
        (vec![1_000, 4_000], 2)
    } else {
        (vec![10_000, 40_000], 5)
    };
    // `--n=2000 --n=8000`: other sizes (an A/B against a build whose cost
    // grows with the square of N needs small ones).
    let chosen: Vec<u64> = std::env::args()
        .filter_map(|a| {
            a.strip_prefix("--n=")
                .map(|n| n.parse().expect("--n=NUMBER"))
        })
        .collect();
    if !chosen.is_empty() {
        sizes = chosen;
    }
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        println!("#### A wait inside a callable against the same wait outside, {workers} worker(s), {rounds} rounds\n");
        println!("| wait | N | outside, ns/request | min – max | inside, ns/request | min – max | inside ÷ outside | min – max |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, wait, divisor) in WAITS {
            for n in sizes.iter().map(|n| (n / divisor).max(2)) {
                let (mut out, mut ins, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..rounds {
                    let o = outside(&pool, wait, n) * 1e9 / n as f64;
                    let i = inside(&pool, wait, n) * 1e9 / n as f64;
                    out.push(o);
                    ins.push(i);
                    ratio.push(i / o);
                }
                let (o, i, r) = (stats(&out), stats(&ins), stats(&ratio));
                println!(
                    "| {name} | {n} | {:.0} | {:.0} – {:.0} | {:.0} | {:.0} – {:.0} | {:.2} | {:.2} – {:.2} |",
                    o.0, o.1, o.2, i.0, i.1, i.2, r.0, r.1, r.2
                );
            }
        }
        println!();
    }
}

/// Median, min and max.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}
