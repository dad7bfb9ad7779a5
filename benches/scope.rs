//! Why callpool's scope lends borrows to its workers (the one `unsafe` in
//! the library, `src/scope/lend.rs`): what the safe ways of running
//! borrowing work on threads cost, side by side with it.
//!
//! The work: many small scopes in a row (a frame loop, a request handler),
//! each summing `PARTS` borrowed slices of one local buffer (64 KB, then
//! 1 MB) in parallel. Rows:
//!
//! * `callpool/scope (borrowing)`: `pool.scope`, callables borrow the slices;
//! * `callpool/scope (copying)`: the safe way on a pool without lending:
//!   each callable gets its slice copied (`to_vec`) so that it is `'static`;
//! * `std::thread::scope`: one scoped thread per part, spawned per scope;
//! * `rayon::scope`: rayon's own borrowing scope, on its pool.
//!
//! `cargo bench --bench scope` (add `-- --quick` for a short run). Prints
//! µs per scope: median and min-max over the rounds, each row run in the
//! same process, rounds interleaved.

use std::time::Instant;

const WORKERS: usize = 2;
const PARTS: usize = 8;
/// Buffer sizes in KB: copying costs more as the borrowed data grows.
const SIZES_KB: [usize; 2] = [64, 1024];

fn buffer(kb: usize, round: u64) -> Vec<u64> {
    (0..(kb * 1024 / 8) as u64).map(|i| i ^ round).collect()
}

fn expected(data: &[u64]) -> u64 {
    data.iter().fold(0u64, |a, b| a.wrapping_add(*b))
}

fn sum(part: &[u64]) -> u64 {
    part.iter().fold(0u64, |a, b| a.wrapping_add(*b))
}

type Runner = Box<dyn FnMut(&[u64]) -> u64>;

fn systems() -> Vec<(&'static str, Runner)> {
    let pool = callpool::ThreadPool::new(WORKERS);
    let copying = pool.clone();
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("a rayon pool");
    vec![
        (
            "callpool/scope (borrowing)",
            Box::new(move |data: &[u64]| {
                let mut total = 0u64;
                pool.scope(|s| {
                    for part in data.chunks(data.len() / PARTS) {
                        s.put(sum, part).expect("the pool is open");
                    }
                    s.wait_with(|_, part| total = total.wrapping_add(part.expect("no panic")));
                });
                total
            }),
        ),
        (
            "callpool/scope (copying)",
            Box::new(move |data: &[u64]| {
                let mut total = 0u64;
                copying.scope(|s| {
                    for part in data.chunks(data.len() / PARTS) {
                        let part = part.to_vec();
                        s.put(move |p: Vec<u64>| sum(&p), part)
                            .expect("the pool is open");
                    }
                    s.wait_with(|_, part| total = total.wrapping_add(part.expect("no panic")));
                });
                total
            }),
        ),
        (
            "std::thread::scope",
            Box::new(|data: &[u64]| {
                std::thread::scope(|s| {
                    let parts: Vec<_> = data
                        .chunks(data.len() / PARTS)
                        .map(|part| s.spawn(move || sum(part)))
                        .collect();
                    parts
                        .into_iter()
                        .map(|p| p.join().expect("no panic"))
                        .fold(0u64, |a, b| a.wrapping_add(b))
                })
            }),
        ),
        (
            "rayon::scope",
            Box::new(move |data: &[u64]| {
                let mut sums = [0u64; PARTS];
                rayon.scope(|s| {
                    for (slot, part) in sums.iter_mut().zip(data.chunks(data.len() / PARTS)) {
                        s.spawn(move |_| *slot = sum(part));
                    }
                });
                sums.iter().fold(0u64, |a, b| a.wrapping_add(*b))
            }),
        ),
    ]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("CALLPOOL_BENCH_QUICK").is_some();
    for kb in SIZES_KB {
        let (rounds, scopes) = match (quick, kb) {
            (true, _) => (2, 100),
            (false, 64) => (7, 5_000),
            (false, _) => (7, 500),
        };
        run(kb, rounds, scopes);
    }
}

fn run(kb: usize, rounds: usize, scopes: usize) {
    let mut systems = systems();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        let data = buffer(kb, round as u64);
        let want = expected(&data);
        for (i, (name, run)) in systems.iter_mut().enumerate() {
            let start = Instant::now();
            for _ in 0..scopes {
                let got = run(&data);
                if got != want {
                    eprintln!("MISMATCH in {name}: {got} != {want}");
                    std::process::exit(1);
                }
            }
            times[i].push(start.elapsed().as_secs_f64() * 1e6 / scopes as f64);
        }
    }
    println!(
        "#### Scopes in a row: {scopes} scopes of {PARTS} parts of a {kb} KB borrowed buffer, {WORKERS} workers, {rounds} rounds\n"
    );
    println!("| system | µs per scope, median | min – max | ÷ callpool/scope (borrowing) |");
    println!("|---|---:|---:|---:|");
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&times[0]);
    for ((name, _), t) in systems.iter().zip(&times) {
        let min = t.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.1} | {min:.1} – {max:.1} | {:.2} |",
            median(t),
            median(t) / base
        );
    }
    println!();
}
