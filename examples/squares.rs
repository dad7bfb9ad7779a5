//! Work that makes work: the "ThreadDistributor" demo. One task, running on
//! a worker, adds 1,000,000 squaring tasks to the pool through its
//! [`Context`]; their results come back to the main thread, whose callbacks
//! count and sum them. The sum is checked against the closed form
//! `n(n-1)(2n-1)/6` (the squares of `0..n`), and the time is printed beside
//! the same work done with `rayon::scope` and `spawn`, in the same run and
//! on as many workers.
//!
//! `WorkRequest::with_context` gives the callable a `&Context`;
//! `cx.put(request)` puts a request on the handle the running one came from.
//! Each one counts as pending at once, so `pool.wait()` on the main thread
//! returns only after the parent and every task it added, with every
//! callback run. The worker hands the added requests to the queue in
//! batches, not one at a time.
//!
//! A second callpool run adds the tasks with `cx.execute`: work whose
//! outcome nobody hears, each task adding its square where it runs, as
//! rayon's do; `wait` covers them all the same.
//!
//! Every side adds with `fetch_add` on an `AtomicU64`: callpool's callbacks
//! all run on the main thread, so there it is never contended; the tasks of
//! `execute` and rayon run on every worker, so there the workers share it.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example squares
//! ```
//!
//! It takes well under a second here; the times are one run each on a
//! machine that may be busy, not a benchmark (for that, see
//! `cargo bench --bench compare -- w8` and `docs/performance.md`).

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::Instant;

use callpool::{Context, ThreadPool, WorkRequest};

/// How many squaring tasks the one parent task adds.
const N: u64 = 1_000_000;

/// The sum of `i * i` for `i` in `0..n`: `n(n-1)(2n-1)/6`.
fn closed_form(n: u64) -> u128 {
    let n = u128::from(n);
    n * n.saturating_sub(1) * (2 * n).saturating_sub(1) / 6
}

fn square(i: u64) -> u64 {
    i * i
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let workers = thread::available_parallelism().map_or(2, |n| n.get());
    let want = closed_form(N);
    println!("{N} squares of 0..{N} on {workers} worker(s); expected sum {want}\n");

    // callpool: the callbacks run on this thread (in `wait`), so statics
    // are the simplest place to add into.
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static SUM: AtomicU64 = AtomicU64::new(0);
    let pool = ThreadPool::new(workers);
    let started = Instant::now();
    pool.put_request(WorkRequest::with_context(
        |cx: &Context<'_>, n: u64| {
            for i in 0..n {
                cx.put(WorkRequest::new(square, i).on_result(|_, sq| {
                    COUNT.fetch_add(1, Relaxed);
                    SUM.fetch_add(sq, Relaxed);
                }))
                .expect("the pool is open");
            }
        },
        N,
    ))?;
    pool.wait()?;
    let took = started.elapsed();
    pool.shutdown()?;
    let (count, sum) = (COUNT.load(Relaxed), SUM.load(Relaxed));
    report("callpool (Context::put)", count, sum, want, took)?;

    // callpool, with no outcome to hear: each task adds its square where it
    // runs, as rayon's do below, and nothing comes back to this thread;
    // `wait` still covers every task added.
    static EXEC_COUNT: AtomicU64 = AtomicU64::new(0);
    static EXEC_SUM: AtomicU64 = AtomicU64::new(0);
    let pool = ThreadPool::new(workers);
    let started = Instant::now();
    pool.execute_with_context(|cx: &Context<'_>| {
        for i in 0..N {
            cx.execute(move || {
                EXEC_COUNT.fetch_add(1, Relaxed);
                EXEC_SUM.fetch_add(square(i), Relaxed);
            })
            .expect("the pool is open");
        }
    })?;
    pool.wait()?;
    let exec_took = started.elapsed();
    pool.shutdown()?;
    let (count, sum) = (EXEC_COUNT.load(Relaxed), EXEC_SUM.load(Relaxed));
    report("callpool (execute)", count, sum, want, exec_took)?;

    // rayon: one spawned task spawns the others into the same scope.
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;
    let (count, sum) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    rayon_pool.install(|| {
        rayon::scope(|s| {
            let (count, sum) = (&count, &sum);
            s.spawn(move |s| {
                for i in 0..N {
                    s.spawn(move |_| {
                        count.fetch_add(1, Relaxed);
                        sum.fetch_add(square(i), Relaxed);
                    });
                }
            });
        });
    });
    let rayon_took = started.elapsed();
    report(
        "rayon (scope + spawn)",
        count.into_inner(),
        sum.into_inner(),
        want,
        rayon_took,
    )?;

    println!(
        "\ncallpool took {:.2}x rayon's time in this run ({:.2}x with execute)",
        took.as_secs_f64() / rayon_took.as_secs_f64(),
        exec_took.as_secs_f64() / rayon_took.as_secs_f64()
    );
    Ok(())
}

/// Prints one side's count, sum and time; an error if either is wrong.
fn report(
    name: &str,
    count: u64,
    sum: u64,
    want: u128,
    took: std::time::Duration,
) -> Result<(), Box<dyn Error>> {
    let ok = count == N && u128::from(sum) == want;
    println!(
        "{name:<24} {count} results, sum {sum} ({}), {took:.2?} ({:.0} ns per task)",
        if ok { "correct" } else { "WRONG" },
        took.as_nanos() as f64 / N as f64,
    );
    if ok {
        Ok(())
    } else {
        Err(
            format!("{name}: {count} results summing to {sum}, expected {N} summing to {want}")
                .into(),
        )
    }
}
