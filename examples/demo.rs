//! The Python `threadpool` module's own demo (`python -m threadpool`), in Rust.
//!
//! It builds 40 requests of `do_something(data)`. Each one sleeps a random
//! 10-500 ms (the Python demo sleeps 1-5 s), computes
//! `round(random() * data, 5)` and fails when that value is greater than 5.
//! The first 20 come from [`make_fallible_requests`], as Python's
//! `makeRequests` does; the next 20 are made one by one with
//! [`WorkRequest::fallible`], `on_result` and `on_error` (Python's
//! `((arg,), {})` form: in Rust every request takes one typed argument).
//!
//! A pool of 3 workers runs them while the main thread loops: it sleeps
//! 50 ms, calls [`ThreadPool::poll`] (which runs the callbacks of every
//! finished request, *on this thread*) and prints the number of worker
//! threads. At iteration 10 it adds 3 workers; at iteration 20 it dismisses
//! 2, which leave after their current request, so the thread count falls
//! gradually while the live worker count drops at once. The loop ends when
//! `poll` reports [`PollError::NoResultsPending`]; the dismissed workers are
//! then joined and the pool is shut down.
//!
//! Failures reach the error callback as [`TaskError::Failed`]; they are never
//! passed to the result callback. At the end the demo checks that every
//! request was handled exactly once, by exactly one of its two callbacks, on
//! the main thread.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example demo
//! RUST_LOG=debug cargo run --release --example demo   # also shows workers starting, being dismissed and exiting
//! ```
//!
//! The run is random (durations, values, completion order) and takes about
//! 2-3 seconds.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callpool::{make_fallible_requests, PollError, RequestId, TaskError, ThreadPool, WorkRequest};

/// A tiny xorshift64 generator per thread, so the demo needs no RNG crate.
mod rng {
    use super::*;

    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }

    /// Seeds from the clock and the thread's id, hashed with the standard
    /// library's randomly keyed hasher. Never zero (xorshift would stay at 0).
    fn seed() -> u64 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        RandomState::new().hash_one((nanos, thread::current().id())) | 1
    }

    fn next_u64() -> u64 {
        STATE.with(|state| {
            let mut x = state.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.set(x);
            x
        })
    }

    /// Uniform in `[0, 1)`, like Python's `random.random()`.
    pub fn random() -> f64 {
        (next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`, like Python's `random.randint(lo, hi)` (the
    /// modulo bias is irrelevant here).
    pub fn randint(lo: u64, hi: u64) -> u64 {
        lo + next_u64() % (hi - lo + 1)
    }
}

/// The demo's failure, Python's `RuntimeError("Something extraordinary happened!")`.
#[derive(Debug)]
struct Extraordinary {
    value: f64,
}

impl fmt::Display for Extraordinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Something extraordinary happened! ({} > 5)", self.value)
    }
}

impl Error for Extraordinary {}

/// The work: runs on a worker thread.
fn do_something(data: u64) -> Result<f64, Extraordinary> {
    thread::sleep(Duration::from_millis(rng::randint(10, 500)));
    let value = (rng::random() * data as f64 * 1e5).round() / 1e5;
    if value > 5.0 {
        Err(Extraordinary { value })
    } else {
        Ok(value)
    }
}

/// What the callbacks saw: each request's outcome, recorded once.
struct Tally {
    main: ThreadId,
    outcomes: Mutex<HashMap<RequestId, bool>>,
}

impl Tally {
    fn record(&self, id: RequestId, ok: bool) {
        assert_eq!(
            thread::current().id(),
            self.main,
            "callbacks run on the polling thread"
        );
        let before = self.outcomes.lock().unwrap().insert(id, ok);
        assert!(before.is_none(), "request #{id} handled twice");
    }

    /// Python's `print_result(request, result)`.
    fn print_result(&self, id: RequestId, value: f64) {
        println!("**** Result from request #{id}: {value}");
        self.record(id, true);
    }

    /// Python's `handle_exception(request, exc_info)`.
    fn handle_exception(&self, id: RequestId, err: TaskError<Extraordinary>) {
        println!("**** Exception occurred in request #{id}: {err}");
        self.record(id, false);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let started = Instant::now();
    let tally = Arc::new(Tally {
        main: thread::current().id(),
        outcomes: Mutex::new(HashMap::new()),
    });

    // The first 20 requests share one callable and one pair of callbacks.
    let data: Vec<u64> = (0..20).map(|_| rng::randint(1, 10)).collect();
    let (on_result, on_error) = (Arc::clone(&tally), Arc::clone(&tally));
    let mut requests = make_fallible_requests(
        do_something,
        data,
        move |id, value| on_result.print_result(id, value),
        move |id, err| on_error.handle_exception(id, err),
    );
    // The next 20 are made one by one, each with its own callbacks.
    for _ in 0..20 {
        let (on_result, on_error) = (Arc::clone(&tally), Arc::clone(&tally));
        requests.push(
            WorkRequest::fallible(do_something, rng::randint(1, 10))
                .on_result(move |id, value| on_result.print_result(id, value))
                .on_error(move |id, err| on_error.handle_exception(id, err))
                .into(),
        );
    }

    println!("Creating thread pool with 3 worker threads.");
    let pool = ThreadPool::new(3);
    let mut put = Vec::with_capacity(requests.len());
    for request in requests {
        let id = pool.put_request(request)?;
        println!("Work request #{id} added.");
        put.push(id);
    }

    let mut i = 0;
    loop {
        thread::sleep(Duration::from_millis(50));
        match pool.poll() {
            Ok(_handled) => {}
            Err(PollError::NoResultsPending) => {
                println!("**** No pending results.");
                break;
            }
            Err(e) => return Err(e.into()),
        }
        println!("Main thread working...");
        // Live workers first: `threads` (live + dismissed still finishing)
        // read afterwards is never smaller.
        let workers = pool.workers();
        let threads = pool.threads();
        println!("(active worker threads: {threads}; live workers: {workers})");
        if i == 10 {
            println!("**** Adding 3 more worker threads...");
            pool.create_workers(3)?;
        }
        if i == 20 {
            println!("**** Dismissing 2 worker threads...");
            pool.dismiss_workers(2);
        }
        i += 1;
    }

    println!("Joining all dismissed worker threads...");
    let joined = pool.join_all_dismissed_workers();
    println!("Joined {joined} dismissed worker threads.");
    pool.shutdown()?;

    let outcomes = tally.outcomes.lock().unwrap();
    let results = outcomes.values().filter(|&&ok| ok).count();
    let errors = outcomes.len() - results;
    println!(
        "Summary: {} requests, {results} results, {errors} errors, in {:.2} s.",
        put.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(results + errors, 40, "every request handled");
    assert!(
        put.iter().all(|id| outcomes.contains_key(id)),
        "each request handled by one of its own callbacks"
    );
    Ok(())
}
