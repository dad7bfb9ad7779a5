//! The scaffolding the request-queue scenarios share: a [`Scenario`] (a
//! queue, its model workers with their dismissal flags, and the progress
//! they report), and the exactly-once check.
//!
//! The fixture does exactly what the scenarios used to spell out by hand,
//! in the same order (the same `Arc` clones, the same queue operations), so
//! that loom explores the same interleavings: it adds no thread and no
//! operation on the checker's primitives.

use super::*;

/// Progress the scenario's driver can wait for, on the checker's own
/// primitives (so waiting on it is part of the model, never a sleep).
pub(super) struct Progress {
    state: Mutex<ProgressState>,
    changed: Condvar,
}

#[derive(Default)]
struct ProgressState {
    /// Requests taken by any worker so far.
    taken: usize,
    /// Set by the driver to let a worker holding a request finish it.
    released: bool,
}

impl Progress {
    pub(super) fn new() -> Arc<Progress> {
        Arc::new(Progress {
            state: Mutex::new(ProgressState::default()),
            changed: Condvar::new(),
        })
    }

    pub(super) fn took_one(&self) {
        self.state.lock().unwrap().taken += 1;
        self.changed.notify_all();
    }

    pub(super) fn wait_taken(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        while state.taken < n {
            state = self.changed.wait(state).unwrap();
        }
    }

    pub(super) fn release(&self) {
        self.state.lock().unwrap().released = true;
        self.changed.notify_all();
    }

    pub(super) fn wait_released(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.released {
            state = self.changed.wait(state).unwrap();
        }
    }
}

/// A model worker's loop, as `worker::run` drives the queue: takes until
/// told to leave, reporting each request taken; returns what it took, in
/// order.
pub(super) fn work<Q: Queue>(queue: &Q, flag: &WorkerFlags, progress: &Progress) -> Vec<u64> {
    let mut taken = Vec::new();
    while let Some(job) = queue.take(flag, !taken.is_empty()) {
        taken.push(job);
        progress.took_one();
    }
    taken
}

/// A new worker's dismissal flag.
pub(super) fn flag() -> Arc<WorkerFlags> {
    Arc::new(WorkerFlags::new())
}

/// One request-queue scenario: the queue, the model workers started on it
/// (each with its dismissal flag), and the progress they report. The
/// driver is the thread that owns it; workers are numbered from 0 in the
/// order they were started.
pub(super) struct Scenario<Q: Queue> {
    pub(super) queue: Arc<Q>,
    pub(super) progress: Arc<Progress>,
    flags: Vec<Arc<WorkerFlags>>,
    /// `None` once joined.
    workers: Vec<Option<thread::JoinHandle<Vec<u64>>>>,
}

impl<Q: Queue> Scenario<Q> {
    pub(super) fn new(queue: Q) -> Scenario<Q> {
        Scenario {
            queue: Arc::new(queue),
            progress: Progress::new(),
            flags: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// Starts `n` more model workers (see [`work`]).
    pub(super) fn spawn_workers(&mut self, n: usize) {
        for _ in 0..n {
            let flag = flag();
            let (queue, worker_flag, progress) =
                (self.queue.clone(), flag.clone(), self.progress.clone());
            let worker = thread::spawn(move || work(&*queue, &worker_flag, &progress));
            self.flags.push(flag);
            self.workers.push(Some(worker));
        }
    }

    /// Puts `jobs`, each of which must be queued at once.
    pub(super) fn put(&self, jobs: impl IntoIterator<Item = u64>) {
        for job in jobs {
            assert!(matches!(self.queue.push(job), Push::Queued));
        }
    }

    /// Waits until the workers took `n` requests in all.
    pub(super) fn wait_taken(&self, n: usize) {
        self.progress.wait_taken(n);
    }

    /// Dismisses the workers numbered `which`, with one `dismiss`.
    pub(super) fn dismiss(&self, which: &[usize]) {
        let flags: Vec<&WorkerFlags> = which.iter().map(|&i| &*self.flags[i]).collect();
        self.queue.dismiss(&flags);
    }

    /// Dismisses every worker started so far, with one `dismiss`.
    pub(super) fn dismiss_all(&self) {
        let flags: Vec<&WorkerFlags> = self.flags.iter().map(|f| &**f).collect();
        self.queue.dismiss(&flags);
    }

    /// Joins every worker not joined yet, in the order they were started;
    /// returns what each took, by worker number. The queue, the flags and
    /// the progress stay alive (they drop with the scenario).
    pub(super) fn join_all(&mut self) -> Vec<Vec<u64>> {
        self.workers
            .iter_mut()
            .filter_map(Option::take)
            .map(|worker| worker.join().unwrap())
            .collect()
    }
}

/// Asserts that `lists` together hold each of `expected` exactly once:
/// nothing lost, nothing duplicated, nothing invented.
pub(super) fn assert_exactly_once(expected: impl IntoIterator<Item = u64>, lists: &[Vec<u64>]) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for &job in lists.iter().flatten() {
        *seen.entry(job).or_default() += 1;
    }
    let want: BTreeMap<u64, usize> = expected.into_iter().map(|j| (j, 1)).collect();
    assert_eq!(seen, want, "each request must end exactly once: {lists:?}");
}
