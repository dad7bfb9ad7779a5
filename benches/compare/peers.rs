//! The "floor": the least a pool can do. Workers take boxed closures from
//! one flume channel and send each result back on a flume channel. No ids,
//! no callbacks, no resizing, no error handling: the bare hand-off.

use std::thread::{self, JoinHandle};

/// A closure for the floor, as its queue carries it.
pub type Thunk = Box<dyn FnOnce() -> u64 + Send>;

/// What the floor's queue carries: a bare closure (one result channel), or
/// a closure and the index of the result channel it answers on (W6).
pub trait FloorJob: Send + 'static {
    fn run(self) -> (usize, u64);
}

impl FloorJob for Thunk {
    fn run(self) -> (usize, u64) {
        (0, self())
    }
}

impl FloorJob for (usize, Thunk) {
    fn run(self) -> (usize, u64) {
        (self.0, (self.1)())
    }
}

pub struct Floor<J: FloorJob> {
    jobs: Option<flume::Sender<J>>,
    results: Vec<flume::Receiver<u64>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: FloorJob> Floor<J> {
    /// `workers` threads and `routes` result channels.
    pub fn new(workers: usize, routes: usize) -> Self {
        let (jobs, queue) = flume::unbounded::<J>();
        let (txs, results): (Vec<_>, Vec<_>) = (0..routes).map(|_| flume::unbounded()).unzip();
        let threads = (0..workers)
            .map(|_| {
                let (queue, txs) = (queue.clone(), txs.clone());
                thread::spawn(move || {
                    for job in queue.iter() {
                        let (route, value) = job.run();
                        let _ = txs[route].send(value);
                    }
                })
            })
            .collect();
        Floor {
            jobs: Some(jobs),
            results,
            threads,
        }
    }

    pub fn submit(&self, job: J) {
        if let Some(jobs) = &self.jobs {
            jobs.send(job).expect("floor workers gone");
        }
    }

    pub fn results(&self, route: usize) -> &flume::Receiver<u64> {
        &self.results[route]
    }

    /// Closes the queue and joins the workers (after what is queued).
    pub fn join(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            t.join().expect("floor worker panicked");
        }
    }
}
