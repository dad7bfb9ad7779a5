//! How many of a pool's threads run, and whether any ran across a look at
//! the request queue: the counts that `wait` trusts before it reports
//! `NoWorkersAvailable` (`Threads::stranded`), and a put blocked on a full
//! queue before it is refused `NoWorkers`. The registry
//! (`pool/registry.rs`) writes them, under its lock, as threads start and
//! exit; anyone reads them without it. Kept apart from the registry's
//! threads so that the models (`src/models/threads.rs`) check it as it
//! ships. `docs/design.md`, "Counting threads".

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// A pool's running threads, and how many have exited.
pub(crate) struct ThreadCount {
    /// Threads started and not yet exited: live workers, and dismissed
    /// ones still finishing.
    running: AtomicUsize,
    /// How many threads have exited, raised before each exit's count: a
    /// waiter that saw no thread tells "none throughout" from "none now,
    /// after one ran and left". A start needs no raise: the thread shows
    /// in `running` until its exit, which raises this.
    exits: AtomicU64,
}

impl ThreadCount {
    pub(crate) fn new() -> ThreadCount {
        ThreadCount {
            running: AtomicUsize::new(0),
            exits: AtomicU64::new(0),
        }
    }

    /// Counts a thread that started (the registry calls it once the OS
    /// gave the thread, before the thread can take a request).
    pub(crate) fn started(&self) {
        // SeqCst: see `running`.
        self.running.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a thread out as it leaves its loop; returns how many are
    /// left.
    pub(crate) fn exited(&self) -> usize {
        // SeqCst, and before the count falls: whoever reads the lower count
        // reads this raise too (the count's fall releases it), so a thread
        // that ran and left is never taken for none (`stranded`).
        self.exits.fetch_add(1, Ordering::SeqCst);
        // SeqCst: see `running`.
        let before = self.running.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "a thread counted out that was never counted in");
        before - 1
    }

    /// Threads still running (live workers and dismissed ones finishing).
    #[inline]
    pub(crate) fn running(&self) -> usize {
        // SeqCst: a waiter counts itself in (`Inbox::waiters`) and then
        // reads this; the last thread lowers it after its last result was
        // sent, then wakes the counted waiters (design.md, "Waiting").
        self.running.load(Ordering::SeqCst)
    }

    /// How many threads have exited so far, for [`no_thread_since`]
    /// (`SeqCst`: read before the look it brackets).
    ///
    /// [`no_thread_since`]: Self::no_thread_since
    pub(crate) fn changes(&self) -> u64 {
        self.exits.load(Ordering::SeqCst)
    }

    /// Whether no thread runs and none left since [`changes`] read
    /// `changes`: "no thread throughout", not just "none now" after one
    /// ran and left. An exit raises the count of exits before it lowers
    /// `running`, so a count of none read here shows with its exit; a
    /// thread that started since and is still there shows in `running`.
    ///
    /// [`changes`]: Self::changes
    pub(crate) fn no_thread_since(&self, changes: u64) -> bool {
        self.running() == 0 && self.changes() == changes
    }

    /// Whether requests are stranded, asked with no thread seen running:
    /// `queued` looks at the request queue and says whether all of them
    /// are still there (where only a thread could take them); `grow` then
    /// starts a worker for them if the pool can. Stranded if they were
    /// queued and no thread ran throughout: a worker started by `grow`,
    /// or by a put, shows in the count; one that took them, ran them and
    /// left before the last look (its keep-alive short) shows in the
    /// exits, read before the look at the queue.
    pub(crate) fn stranded(&self, queued: impl FnOnce() -> bool, grow: impl FnOnce()) -> bool {
        let changes = self.changes();
        if !queued() {
            return false;
        }
        grow();
        self.no_thread_since(changes)
    }
}
