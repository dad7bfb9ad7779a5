//! The worker thread's loop: takes requests from the shared queue, runs
//! them, and sends each finished request back to the handle that put it.
//!
//! ```text
//!   start ──► BUSY ◄──────────────┐
//!              │ queue empty      │ request queued (notify_one)
//!              ▼                  │
//!             IDLE (condvar wait, no timeout) ──┘
//!              │ dismissed / pool closed (notify_all)
//!              ▼
//!   exit ◄── (draining? run what is queued first)
//! ```

use std::sync::Arc;
use std::thread;

use crate::inbox::{Inbox, Job, Msg};
use crate::pool::handshake::WorkerFlags;
use crate::pool::pace::Pace;
use crate::pool::Pool;
use crate::request::task::Route;

/// How many finished requests' handle references a worker keeps before
/// letting go of them together (see `run`).
const SPENT_BATCH: usize = 64;

/// The body of a worker thread. `flags` holds this worker's dismissal flag.
pub(crate) fn run(pool: &Pool, flags: &WorkerFlags) {
    // Accounts for the exit on every path, a panic in this loop included.
    let _exit = ExitGuard { pool };
    // Each job holds a reference to its handle's inbox, cloned by the
    // putting thread. Dropping it here at once would move the reference
    // count's cache line to this core for every request, and the next put
    // would wait to get it back; dropping them in batches moves it once per
    // batch. All are let go of before the worker sleeps, so a sleeping
    // worker keeps no handle's inbox (and the results in it) alive.
    let mut spent: Vec<Arc<Inbox>> = Vec::with_capacity(SPENT_BATCH);
    let mut pace = Pace::new();
    loop {
        if spent.len() == SPENT_BATCH {
            spent.clear();
        }
        let Some(job) = pool.queue.take(flags, &mut pace, || spent.clear()) else {
            break;
        };
        spent.push(execute(pool, job));
        pace.ran();
    }
}

/// Runs one request and sends it back to its handle; returns the job's
/// reference to that handle's inbox. A panic in the callable is caught
/// inside `run`; the worker lives on.
fn execute(pool: &Pool, job: Job) -> Arc<Inbox> {
    let Job { mut task, inbox } = job;
    log::trace!("callpool: running request {}", task.id());
    task.run();
    // A ticket's request has settled its outcome into the ticket already.
    if task.route() == Route::Inbox {
        inbox.deliver(Msg::Done(task), || pool.sender_stuck());
    }
    inbox
}

struct ExitGuard<'a> {
    pool: &'a Pool,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        log::debug!(
            "callpool: worker {} exiting",
            thread::current().name().unwrap_or("?")
        );
        self.pool.worker_exited(thread::current().id());
    }
}
