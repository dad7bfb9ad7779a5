//! Scaffolding the request-queue scenarios share: progress the driver can
//! wait for on the checker's own primitives, model worker threads, and the
//! exactly-once check.

use super::*;

/// Progress the scenario's driver can wait for, on the checker's own
/// primitives (so waiting on it is part of the model, never a sleep).
pub(super) struct Progress {
    state: Mutex<ProgressState>,
    changed: Condvar,
}

#[derive(Default)]
pub(super) struct ProgressState {
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

/// A worker thread of the model: takes until told to leave, and returns
/// what it took, in order.
pub(super) fn spawn_worker<Q: Queue>(
    queue: &Arc<Q>,
    flag: &Arc<WorkerFlags>,
    progress: &Arc<Progress>,
) -> thread::JoinHandle<Vec<u64>> {
    let (queue, flag, progress) = (queue.clone(), flag.clone(), progress.clone());
    thread::spawn(move || {
        let mut taken = Vec::new();
        while let Some(job) = queue.take(&flag, !taken.is_empty()) {
            taken.push(job);
            progress.took_one();
        }
        taken
    })
}

pub(super) fn flag() -> Arc<WorkerFlags> {
    Arc::new(WorkerFlags::new())
}

/// Asserts that the given lists together hold each of `expected` exactly
/// once: nothing lost, nothing duplicated, nothing invented.
pub(super) fn assert_exactly_once(expected: impl IntoIterator<Item = u64>, lists: &[&[u64]]) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for list in lists {
        for &job in *list {
            *seen.entry(job).or_default() += 1;
        }
    }
    let want: BTreeMap<u64, usize> = expected.into_iter().map(|j| (j, 1)).collect();
    assert_eq!(seen, want, "each request must end exactly once: {lists:?}");
}
