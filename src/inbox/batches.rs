//! The progress of a handle's batches (`ThreadPool::put_batch`): which
//! requests belong to which batch, how many of them ended and how, and the
//! batch-done callback, run once by the thread that handles the last one.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::request::task::Ended;
use crate::request::RequestId;
use crate::sync::{AtomicUsize, Ordering};

/// How far a batch has got: of its `total` requests, how many ended with a
/// result (`done`), with an error or a panic (`failed`), or without ever
/// starting (`cancelled`: cancelled, expired, or swept by a closing pool).
/// The rest are queued or running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Requests in the batch.
    pub total: usize,
    /// Ended with a result (its callback has run or is running).
    pub done: usize,
    /// Ended with an error or a panic.
    pub failed: usize,
    /// Ended without starting.
    pub cancelled: usize,
}

impl Progress {
    /// Requests that have ended, however.
    pub fn ended(&self) -> usize {
        self.done + self.failed + self.cancelled
    }

    /// Whether every request of the batch has ended.
    pub fn is_complete(&self) -> bool {
        self.ended() >= self.total
    }
}

/// A batch-done callback.
pub(crate) type OnDone = Box<dyn FnOnce(Progress) + Send>;

/// One batch: its members (fixed once it is put) and its count.
pub(crate) struct BatchState {
    pub(crate) members: HashSet<RequestId>,
    count: Mutex<Count>,
}

struct Count {
    progress: Progress,
    on_done: Option<OnDone>,
    /// The batch-done callback has run, or been taken to run.
    finished: bool,
}

impl BatchState {
    pub(crate) fn new(members: HashSet<RequestId>) -> Arc<BatchState> {
        let total = members.len();
        Arc::new(BatchState {
            members,
            count: Mutex::new(Count {
                progress: Progress {
                    total,
                    ..Progress::default()
                },
                on_done: None,
                finished: false,
            }),
        })
    }

    fn count(&self) -> MutexGuard<'_, Count> {
        // Only counters and a moved box under this lock: never torn.
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn progress(&self) -> Progress {
        self.count().progress
    }

    /// Counts one member's end; the batch-done callback if that completed
    /// the batch.
    fn ended(&self, how: Ended) -> Option<(OnDone, Progress)> {
        let mut count = self.count();
        match how {
            Ended::Succeeded => count.progress.done += 1,
            Ended::Failed | Ended::Panicked => count.progress.failed += 1,
            Ended::Unstarted => count.progress.cancelled += 1,
        }
        self.take_if_complete(&mut count)
    }

    fn take_if_complete(&self, count: &mut Count) -> Option<(OnDone, Progress)> {
        if count.finished || !count.progress.is_complete() || count.on_done.is_none() {
            return None;
        }
        count.finished = true;
        let on_done = count.on_done.take()?;
        Some((on_done, count.progress))
    }

    /// Sets the batch-done callback; hands it back to run at once if the
    /// batch is complete already. A second one replaces the first if that
    /// has not run; once one has run, later ones are dropped.
    pub(crate) fn on_done(&self, on_done: OnDone) -> Option<(OnDone, Progress)> {
        let mut count = self.count();
        if count.finished {
            return None;
        }
        count.on_done = Some(on_done);
        self.take_if_complete(&mut count)
    }
}

/// A handle's batches that still have members to end.
#[derive(Default)]
pub(crate) struct Batches {
    list: Mutex<Vec<Arc<BatchState>>>,
    /// `list.len()`, so that handling a result of a handle without batches
    /// costs one load.
    active: AtomicUsize,
}

impl Batches {
    fn list(&self) -> MutexGuard<'_, Vec<Arc<BatchState>>> {
        // Pushes and removals of `Arc`s only: never torn.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn add(&self, batch: Arc<BatchState>) {
        let mut list = self.list();
        list.push(batch);
        // Under the lock; Relaxed: a hint that a result's handler confirms
        // under the lock. A batch is added before its members are queued,
        // so their results come after.
        self.active.store(list.len(), Ordering::Relaxed);
    }

    /// Counts the end of request `id` in its batch, if it is in one; the
    /// batch-done callback if that completed the batch.
    /// `how` is asked only when the handle has a batch: a handle without
    /// one pays a single load per result.
    pub(crate) fn ended(
        &self,
        id: RequestId,
        how: impl FnOnce() -> Ended,
    ) -> Option<(OnDone, Progress)> {
        // Relaxed: see `add`; the member's outcome came after its batch was
        // added, through the result queue's synchronisation.
        if self.active.load(Ordering::Relaxed) == 0 {
            return None;
        }
        // Counted under the list's lock (then the batch's: always in that
        // order), so that of two threads ending a batch's last two members,
        // the one that completes it also removes it.
        let mut list = self.list();
        let at = list.iter().position(|b| b.members.contains(&id))?;
        let done = list[at].ended(how());
        if list[at].progress().is_complete() {
            list.swap_remove(at);
            self.active.store(list.len(), Ordering::Relaxed);
        }
        done
    }
}

impl fmt::Debug for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchState")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
