//! The worker thread: takes requests from the shared queue, runs them, and
//! sends each finished request back to the handle that put it.
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

use crate::inbox::{Job, Msg};
use crate::queue::WorkerFlags;
use crate::shared::Shared;

/// The body of a worker thread. `flags` holds this worker's dismissal flag.
pub(crate) fn run(shared: Arc<Shared>, flags: Arc<WorkerFlags>) {
    shared.mark_worker_thread();
    // Accounts for the exit on every path, a panic in this loop included.
    let _exit = ExitGuard { shared: &shared };
    let mut just_ran = false;
    while let Some(job) = shared.queue.take(&flags, just_ran) {
        execute(&shared, job);
        just_ran = true;
    }
}

/// Runs one request and sends it back to its handle. A panic in the
/// callable is caught inside `run`; the worker lives on.
fn execute(shared: &Shared, job: Job) {
    let Job { mut task, inbox } = job;
    log::trace!("callpool: running request {}", task.id());
    task.task.run();
    inbox.deliver(Msg::Done(task), || shared.sender_stuck());
}

struct ExitGuard<'a> {
    shared: &'a Shared,
}

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        log::debug!(
            "callpool: worker {} exiting",
            thread::current().name().unwrap_or("?")
        );
        self.shared.worker_exited(thread::current().id());
    }
}
