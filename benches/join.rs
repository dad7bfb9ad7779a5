//! What a fork-join costs: `Context::join` against `rayon::join` and the
//! same recursion run serially, side by side in one process.
//!
//! The work: the sum of `0..N` by halving down to leaves of `LEAF`
//! elements, one join per inner node (`N / LEAF - 1` joins). With leaves of
//! one element the time is nearly all joins; with 1,024 elements it is
//! mostly summing. Rows, each with 1 and 2 workers:
//!
//! * `callpool Context::join`: one request whose callable recurses with
//!   `cx.join`; the time includes its put and the `wait` for it;
//! * `rayon::join`: the same recursion inside `install` on a rayon pool;
//! * `serial`: the recursion with plain calls, for the work alone.
//!
//! `cargo bench --bench join` (add `-- --quick` for a short run). Prints ns
//! per join: median and min-max over the rounds, rounds interleaved, each
//! run after a 20 ms pause that lets the other systems' threads go idle.

use std::time::{Duration, Instant};

use callpool::{Context, ThreadPool, WorkRequest};

/// `N` and the leaf size: 2^20 joins with one-element leaves, and 4,095
/// joins over leaves of 1,024 elements.
const CASES: [(u64, u64); 2] = [(1 << 20, 1), (1 << 22, 1_024)];

/// `black_box` keeps the compiler from summing the range in closed form:
/// a leaf of 1,024 elements is real work. Never inlined, so that every
/// system runs the same machine code for it (inlined into each recursion,
/// its speed differed by 1.5x between systems).
#[inline(never)]
fn sum_leaf(lo: u64, hi: u64) -> u64 {
    (lo..hi).fold(0u64, |a, b| a.wrapping_add(std::hint::black_box(b)))
}

fn callpool_sum(cx: &Context<'_>, lo: u64, hi: u64, leaf: u64) -> u64 {
    if hi - lo <= leaf {
        return sum_leaf(lo, hi);
    }
    let mid = lo + (hi - lo) / 2;
    let (a, b) = cx.join(
        |cx| callpool_sum(cx, lo, mid, leaf),
        |cx| callpool_sum(cx, mid, hi, leaf),
    );
    a.wrapping_add(b)
}

fn rayon_sum(lo: u64, hi: u64, leaf: u64) -> u64 {
    if hi - lo <= leaf {
        return sum_leaf(lo, hi);
    }
    let mid = lo + (hi - lo) / 2;
    let (a, b) = rayon::join(|| rayon_sum(lo, mid, leaf), || rayon_sum(mid, hi, leaf));
    a.wrapping_add(b)
}

fn serial_sum(lo: u64, hi: u64, leaf: u64) -> u64 {
    if hi - lo <= leaf {
        return sum_leaf(lo, hi);
    }
    let mid = lo + (hi - lo) / 2;
    serial_sum(lo, mid, leaf).wrapping_add(serial_sum(mid, hi, leaf))
}

type Runner = Box<dyn FnMut(u64, u64) -> u64>;

/// The pause before each timed run (see `run`).
const QUIET: Duration = Duration::from_millis(20);

fn systems(workers: usize) -> Vec<(String, Runner)> {
    let pool = ThreadPool::new(workers);
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("a rayon pool");
    vec![
        (
            format!("callpool Context::join, {workers} workers"),
            Box::new(move |n, leaf| {
                let (tx, rx) = std::sync::mpsc::channel();
                pool.put_request(
                    WorkRequest::with_context(
                        move |cx: &Context<'_>, ()| callpool_sum(cx, 0, n, leaf),
                        (),
                    )
                    .on_result(move |_, total| tx.send(total).expect("the bench waits")),
                )
                .expect("the pool is open");
                pool.wait().expect("the request ends");
                rx.recv().expect("its result")
            }),
        ),
        (
            format!("rayon::join, {workers} workers"),
            Box::new(move |n, leaf| rayon.install(|| rayon_sum(0, n, leaf))),
        ),
    ]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("CALLPOOL_BENCH_QUICK").is_some();
    let rounds = if quick { 2 } else { 7 };
    for (n, leaf) in CASES {
        let n = if quick { n / 16 } else { n };
        run(n, leaf, rounds);
    }
}

fn run(n: u64, leaf: u64, rounds: usize) {
    let joins = (n / leaf - 1) as f64;
    let want = n.wrapping_mul(n.wrapping_sub(1)) / 2;
    let mut systems: Vec<(String, Runner)> = vec![(
        "serial".to_owned(),
        Box::new(|n, leaf| serial_sum(0, n, leaf)),
    )];
    systems.extend(systems_for_all());
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    for _ in 0..rounds {
        for (i, (name, run)) in systems.iter_mut().enumerate() {
            // The other systems' threads go quiet first: rayon's spin for a
            // while after their work, and on 2 cores they would take the
            // CPU from the system timed next.
            std::thread::sleep(QUIET);
            let start = Instant::now();
            let got = run(n, leaf);
            let elapsed = start.elapsed();
            if got != want {
                eprintln!("MISMATCH in {name}: {got} != {want}");
                std::process::exit(1);
            }
            times[i].push(elapsed.as_secs_f64() * 1e9 / joins);
        }
    }
    println!(
        "#### A tree of joins: the sum of 0..{n} in leaves of {leaf} ({joins} joins), {rounds} rounds\n"
    );
    println!("| system | ns per join, median | min – max |");
    println!("|---|---:|---:|");
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for ((name, _), t) in systems.iter().zip(&times) {
        let min = t.iter().copied().fold(f64::INFINITY, f64::min);
        let max = t.iter().copied().fold(0.0, f64::max);
        println!("| {name} | {:.1} | {min:.1} – {max:.1} |", median(t));
    }
    println!();
}

fn systems_for_all() -> Vec<(String, Runner)> {
    let mut all = systems(1);
    all.extend(systems(2));
    all
}
