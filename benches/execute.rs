//! Fire and forget: the submitting thread hands over 1,000,000 trivial
//! closures with no outcome to hear, then waits for all of them, the way
//! rust-threadpool is used (`execute`, then `join`). callpool's
//! `ThreadPool::execute` + `wait` against rust-threadpool's `execute` +
//! `join` and rayon's `Scope::spawn` from the submitting thread inside one
//! `in_place_scope` (which returns when all have run), and the same
//! closures put as callpool requests whose empty outcome comes back to the
//! handle (`put_request` + `wait`), side by side in one process, rounds
//! interleaved.
//!
//! Each closure adds its square into a count and sum of the thread
//! running it (no shared atomic), and the run checks that every closure
//! ran once. Rows: 1, 2 and 4 workers. Columns: ns per closure (median and
//! min-max over the rounds), and each system's time ÷ callpool's, median
//! of the per-round ratios.
//!
//! `cargo bench --bench execute` (add `-- --quick` for a short run).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

thread_local! {
    /// This thread's count and sum, registered in `SUMS` on first use.
    static MINE: Cell<Option<Arc<[AtomicU64; 2]>>> = const { Cell::new(None) };
}

/// Every thread's count and sum, for the check after a run.
static SUMS: Mutex<Vec<Arc<[AtomicU64; 2]>>> = Mutex::new(Vec::new());

/// The closures' work: adds `i * i` to this thread's sum. Only this thread
/// writes its pair, so a relaxed load and store is enough; the run's end
/// (`wait`, `join`, the scope) orders the writes before the check.
#[inline]
fn add(i: u64) {
    MINE.with(|mine| {
        let pair = match mine.take() {
            Some(pair) => pair,
            None => {
                let pair = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
                SUMS.lock().unwrap().push(Arc::clone(&pair));
                pair
            }
        };
        pair[0].store(pair[0].load(Relaxed) + 1, Relaxed);
        pair[1].store(pair[1].load(Relaxed).wrapping_add(i * i), Relaxed);
        mine.set(Some(pair));
    });
}

/// Stops the bench unless every closure of the run ran once; resets the sums.
fn check(what: &str, n: u64) {
    let (count, sum) = SUMS.lock().unwrap().iter().fold((0, 0u64), |(c, s), pair| {
        (
            c + pair[0].swap(0, Relaxed),
            s.wrapping_add(pair[1].swap(0, Relaxed)),
        )
    });
    let want = (0..n).fold(0u64, |s, i| s.wrapping_add(i * i));
    assert_eq!(
        (count, sum),
        (n, want),
        "{what}: not every closure ran once"
    );
}

/// One timed run: ns per closure.
type Run = fn(usize, u64) -> f64;

fn callpool(workers: usize, n: u64) -> f64 {
    let pool = callpool::ThreadPool::new(workers);
    let start = Instant::now();
    for i in 0..n {
        pool.execute(move || add(i)).expect("the pool is open");
    }
    pool.wait().expect("every closure ran");
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    pool.shutdown().expect("shutdown");
    ns
}

/// The same closures as requests whose (empty) outcome comes back to the
/// handle, handled in `wait`: what `execute` saves, or costs.
fn callpool_put_request(workers: usize, n: u64) -> f64 {
    let pool = callpool::ThreadPool::new(workers);
    let start = Instant::now();
    for i in 0..n {
        pool.put_request(callpool::WorkRequest::call(move || add(i)))
            .expect("the pool is open");
    }
    pool.wait().expect("every closure ran");
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    pool.shutdown().expect("shutdown");
    ns
}

fn threadpool(workers: usize, n: u64) -> f64 {
    let pool = threadpool::ThreadPool::new(workers);
    let start = Instant::now();
    for i in 0..n {
        pool.execute(move || add(i));
    }
    pool.join();
    start.elapsed().as_nanos() as f64 / n as f64
}

fn rayon(workers: usize, n: u64) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("rayon pool");
    let start = Instant::now();
    // `in_place_scope`: the scope's own closure runs here, on the
    // submitting thread, so each spawn goes through the pool's injector
    // queue as a put from outside does; the scope returns once all have run.
    pool.in_place_scope(|s| {
        for i in 0..n {
            s.spawn(move |_| add(i));
        }
    });
    start.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (10_000, 2) } else { (1_000_000, 5) };
    let systems: [(&str, Run); 4] = [
        ("callpool execute + wait", callpool),
        ("callpool put_request + wait", callpool_put_request),
        ("threadpool execute + join", threadpool),
        ("rayon scope + spawn", rayon),
    ];
    println!("# Fire and forget: {n} closures, then wait for all; {rounds} rounds, interleaved\n");
    println!(
        "| workers | system | median ns/closure | min – max | ÷ callpool (median of rounds) |"
    );
    println!("|---:|---|---:|---:|---:|");
    for workers in [1, 2, 4] {
        let mut times = vec![Vec::new(); systems.len()];
        for _ in 0..rounds {
            for (k, (what, run)) in systems.iter().enumerate() {
                times[k].push(run(workers, n));
                check(what, n);
            }
        }
        for (k, (what, _)) in systems.iter().enumerate() {
            let ratios: Vec<f64> = times[k].iter().zip(&times[0]).map(|(t, c)| t / c).collect();
            let (lo, hi) = times[k]
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
            println!(
                "| {workers} | {what} | {:.1} | {lo:.1} – {hi:.1} | {:.2} |",
                median(times[k].clone()),
                median(ratios)
            );
        }
    }
}
