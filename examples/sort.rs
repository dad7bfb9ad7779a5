//! Fork-join on the pool over a vector this thread owns: a quicksort put
//! in with `ThreadPool::install`, whose halves go to `Context::join`,
//! beside the same quicksort on `rayon::join` and run serially, timed in
//! the same run.
//!
//! `cargo run --release --example sort`
//!
//! Each sort gets its own copy of the same 4,000,000 pseudo-random numbers;
//! each result is checked against `sort_unstable`'s.

use std::time::{Duration, Instant};

use callpool::{Context, ThreadPool};

const N: usize = 4_000_000;
/// Slices this short are sorted serially: a join costs under a tenth of a
/// microsecond, sorting 4,096 numbers about a hundred microseconds.
const LEAF: usize = 4_096;

/// Three-way partition around the middle element: returns `(below,
/// above)` with `v[..below]` less than the pivot, `v[above..]` greater,
/// and the values equal to it between, in place already (so many equal
/// values cannot make the sort quadratic).
fn partition(v: &mut [u32]) -> (usize, usize) {
    let pivot = v[v.len() / 2];
    let (mut below, mut i, mut above) = (0, 0, v.len());
    while i < above {
        if v[i] < pivot {
            v.swap(below, i);
            below += 1;
            i += 1;
        } else if v[i] > pivot {
            above -= 1;
            v.swap(i, above);
        } else {
            i += 1;
        }
    }
    (below, above)
}

/// Sorts a short slice here, or partitions a long one and hands the two
/// sides (the values equal to the pivot in place between them) to `sides`.
fn step(v: &mut [u32], sides: impl FnOnce(&mut [u32], &mut [u32])) {
    if v.len() <= LEAF {
        v.sort_unstable();
        return;
    }
    let (below, above) = partition(v);
    let (low, rest) = v.split_at_mut(below);
    sides(low, &mut rest[above - below..]);
}

fn callpool_sort(cx: &Context<'_>, v: &mut [u32]) {
    step(v, |low, high| {
        cx.join(|cx| callpool_sort(cx, low), |cx| callpool_sort(cx, high));
    });
}

fn serial_sort(v: &mut [u32]) {
    step(v, |low, high| {
        serial_sort(low);
        serial_sort(high);
    });
}

fn rayon_sort(v: &mut [u32]) {
    step(v, |low, high| {
        rayon::join(|| rayon_sort(low), || rayon_sort(high));
    });
}

fn numbers() -> Vec<u32> {
    // xorshift: the same numbers every run, no dependency.
    let mut x: u32 = 2_463_534_242;
    (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let input = numbers();

    let mut want = input.clone();
    want.sort_unstable();

    let mut serial = input.clone();
    let start = Instant::now();
    serial_sort(&mut serial);
    let serial_time = start.elapsed();
    assert!(serial == want, "the serial sort differs");

    let pool = ThreadPool::new(workers);
    let mut by_callpool = input.clone();
    let start = Instant::now();
    // `install` runs the first call on a worker, borrowing `by_callpool`,
    // and returns once the whole sort has ended.
    pool.install(|cx| callpool_sort(cx, &mut by_callpool))?;
    let callpool_time = start.elapsed();
    assert!(by_callpool == want, "callpool's sort differs");

    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;
    let mut by_rayon = input;
    let start = Instant::now();
    rayon_pool.install(|| rayon_sort(&mut by_rayon));
    let rayon_time = start.elapsed();
    assert!(by_rayon == want, "rayon's sort differs");

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("sorted {N} numbers on {workers} workers, leaves of {LEAF}:");
    println!("  the same quicksort, serial  {:8.1} ms", ms(serial_time));
    println!("  callpool Context::join      {:8.1} ms", ms(callpool_time));
    println!("  rayon::join                 {:8.1} ms", ms(rayon_time));
    println!("all three agree with sort_unstable");
    Ok(())
}
