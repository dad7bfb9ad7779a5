//! A batch with a progress bar, cancelled half-way.
//!
//! 200 requests, numbered 0-199, each sleep 5-50 ms (durations drawn from a
//! small xorshift generator with a fixed seed, so every run has the same
//! ones). They are made by [`make_requests_with_input`], whose callbacks get
//! each request's input (its number) back with its outcome, and put at once
//! with [`ThreadPool::put_batch`], which returns a [`Batch`].
//!
//! The main thread loops on [`ThreadPool::poll_timeout`] (50 ms at most per
//! call; the callbacks run in it, on this thread) and after each call feeds
//! [`Batch::progress`] to an [`indicatif`] progress bar. As soon as it sees
//! that at least 100 requests have ended, or that you pressed Ctrl-C (a
//! handler set with the [`ctrlc`] crate raises a flag the loop reads
//! after each poll), it calls [`Batch::cancel`]: the
//! requests still queued never run, and their error callbacks hear
//! `Cancelled` (the few already running finish). The callback given to
//! [`Batch::on_done`] prints the final [`Progress`] once, when the last
//! request of the batch has ended. At the end the example checks that every
//! request ended exactly once (done + cancelled + failed = 200), each by one
//! of its callbacks with its own number, and that `on_done` ran once.
//!
//! The bar draws on stderr; when stderr is not a terminal (in CI, or with
//! `2>/dev/null`) indicatif hides it, and only the lines on stdout remain.
//! A second Ctrl-C ends the program at once, as an unhandled one would.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example progress
//! ```
//!
//! It takes about a second.

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{make_requests_with_input, Batch, PollError, Progress, TaskError, ThreadPool};
use indicatif::{ProgressBar, ProgressStyle};

/// Requests in the batch.
const REQUESTS: usize = 200;
/// Cancel what is still queued once this many have ended.
const CANCEL_AFTER: usize = 100;
/// Worker threads (the requests sleep, so more than the cores is fine).
const WORKERS: usize = 4;

/// xorshift64 with a fixed seed: the same durations on every run, and no
/// RNG crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi` (the modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A request's input: its number and how long it sleeps.
struct Job {
    number: usize,
    sleep: Duration,
}

/// How each request ended, by number, as its callback saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ended {
    Done,
    Cancelled,
    Failed,
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let jobs: Vec<Job> = (0..REQUESTS)
        .map(|number| Job {
            number,
            sleep: Duration::from_millis(rng.range(5, 50)),
        })
        .collect();
    let work: Duration = jobs.iter().map(|job| job.sleep).sum();
    println!(
        "{REQUESTS} requests sleeping 5-50 ms each ({} ms in all) on {WORKERS} workers; \
         cancelling after {CANCEL_AFTER} have ended, or on Ctrl-C",
        work.as_millis()
    );

    // Filled by the callbacks, on this thread.
    let ended: Arc<Mutex<Vec<Option<Ended>>>> = Arc::new(Mutex::new(vec![None; REQUESTS]));
    let record = |ended: &Arc<Mutex<Vec<Option<Ended>>>>| {
        let ended = Arc::clone(ended);
        move |number: usize, how: Ended| {
            let before = ended.lock().unwrap()[number].replace(how);
            assert!(before.is_none(), "request {number} ended twice");
        }
    };
    let (on_result, on_error) = (record(&ended), record(&ended));
    let requests = make_requests_with_input(
        |job: &Job| thread::sleep(job.sleep),
        jobs,
        move |_, job, ()| on_result(job.number, Ended::Done),
        move |id, job, err| match err {
            TaskError::Cancelled => on_error(job.number, Ended::Cancelled),
            err => {
                eprintln!("request #{id} (number {}) failed: {err}", job.number);
                on_error(job.number, Ended::Failed);
            }
        },
    );

    let pool = ThreadPool::new(WORKERS);
    let started = Instant::now();
    let batch: Batch = pool.put_batch(requests)?;

    let bar = ProgressBar::new(REQUESTS as u64);
    bar.set_style(ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} ended: {msg}",
    )?);
    let done_calls = Arc::new(AtomicUsize::new(0));
    let final_progress = Arc::new(Mutex::new(None));
    {
        let (bar, done_calls, final_progress) = (
            bar.clone(),
            Arc::clone(&done_calls),
            Arc::clone(&final_progress),
        );
        // Runs on this thread, inside the poll that handles the batch's
        // last outcome.
        batch.on_done(move |progress: Progress| {
            bar.suspend(|| println!("on_done: {progress:?}"));
            done_calls.fetch_add(1, Relaxed);
            *final_progress.lock().unwrap() = Some(progress);
        });
    }

    // Relaxed: a flag read after each poll, guarding no other data.
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        ctrlc::set_handler(move || {
            if interrupted.swap(true, Relaxed) {
                std::process::exit(130);
            }
        })?;
    }

    let mut cancel = None;
    loop {
        match pool.poll_timeout(Duration::from_millis(50)) {
            Ok(_) | Err(PollError::Timeout { .. }) => {}
            Err(PollError::NoResultsPending) => break,
            Err(err) => return Err(err.into()),
        }
        let progress = batch.progress();
        bar.set_message(format!(
            "{} done, {} cancelled, {} failed",
            progress.done, progress.cancelled, progress.failed
        ));
        bar.set_position(progress.ended() as u64);
        let by_hand = interrupted.load(Relaxed);
        if cancel.is_none() && (by_hand || progress.ended() >= CANCEL_AFTER) {
            let cancelled = batch.cancel();
            bar.suspend(|| {
                println!(
                    "cancel{} after {} ended ({:.2?}): {cancelled} queued ones cancelled, {} left to finish",
                    if by_hand { " (Ctrl-C)" } else { "" },
                    progress.ended(),
                    started.elapsed(),
                    REQUESTS - progress.ended() - cancelled
                )
            });
            cancel = Some((progress, cancelled));
        }
    }
    // Cleared: the lines below say where it ended, and stdout's next line
    // would otherwise start at the end of the bar's.
    bar.finish_and_clear();
    let took = started.elapsed();
    pool.shutdown()?;

    let progress = batch.progress();
    let ended = ended.lock().unwrap();
    let numbers =
        |how: Ended| -> Vec<usize> { (0..REQUESTS).filter(|&n| ended[n] == Some(how)).collect() };
    let (done, cancelled, failed) = (
        numbers(Ended::Done).len(),
        numbers(Ended::Cancelled).len(),
        numbers(Ended::Failed).len(),
    );
    println!(
        "in {took:.2?}: {done} done, {cancelled} cancelled (numbers {}), {failed} failed",
        ranges(&numbers(Ended::Cancelled))
    );

    assert_eq!(progress.total, REQUESTS);
    assert_eq!(
        progress.done + progress.cancelled + progress.failed,
        REQUESTS,
        "every request ended"
    );
    assert!(
        ended.iter().all(Option::is_some),
        "every number reached a callback"
    );
    assert_eq!(
        (done, cancelled, failed),
        (progress.done, progress.cancelled, progress.failed),
        "the callbacks saw what the batch counted"
    );
    assert_eq!(failed, 0, "nothing failed");
    let (at_cancel, cancelled_then) = cancel.expect("the cancel happened");
    assert_eq!(
        cancelled_then, progress.cancelled,
        "cancelled only by Batch::cancel"
    );
    // Everything that had ended when the cancel came had run; whatever
    // ran after it had started before it (or finished, unhandled yet).
    assert_eq!(
        at_cancel.done,
        at_cancel.ended(),
        "nothing cancelled before the cancel"
    );
    assert!(progress.done >= at_cancel.done);
    assert_eq!(done_calls.load(Relaxed), 1, "on_done ran once");
    assert_eq!(*final_progress.lock().unwrap(), Some(progress));
    Ok(())
}

/// Sorted numbers as runs: "100-103, 105, 107-199".
fn ranges(numbers: &[usize]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &n in numbers {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    if runs.is_empty() {
        return "none".to_string();
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&(first, last)| match first == last {
            true => first.to_string(),
            false => format!("{first}-{last}"),
        })
        .collect();
    runs.join(", ")
}
