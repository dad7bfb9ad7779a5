//! The "floor": the least a pool can do. Workers take boxed closures from
//! one channel and send each result back on another channel. No ids, no
//! callbacks, no resizing, no error handling: the bare hand-off. The
//! channel is a type parameter (`Chan`): flume, as callpool's result queue
//! is (the `floor` row), or crossbeam-channel (`floor/crossbeam`, issue 13),
//! so that the floor is not one channel implementation's speed alone.

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

/// An unbounded MPMC channel the floor can be built on. Static dispatch
/// only: each floor's loops are compiled for its own channel's calls.
pub trait Chan: 'static {
    type Tx<T: Send + 'static>: Clone + Send + Sync + 'static;
    type Rx<T: Send + 'static>: Clone + Send + Sync + 'static;
    fn unbounded<T: Send + 'static>() -> (Self::Tx<T>, Self::Rx<T>);
    /// False if every receiver is gone.
    fn send<T: Send + 'static>(tx: &Self::Tx<T>, v: T) -> bool;
    /// `None` once the channel is empty and every sender is gone.
    fn recv<T: Send + 'static>(rx: &Self::Rx<T>) -> Option<T>;
}

/// flume, the channel callpool's result queues use.
pub struct Flume;

impl Chan for Flume {
    type Tx<T: Send + 'static> = flume::Sender<T>;
    type Rx<T: Send + 'static> = flume::Receiver<T>;
    fn unbounded<T: Send + 'static>() -> (Self::Tx<T>, Self::Rx<T>) {
        flume::unbounded()
    }
    #[inline]
    fn send<T: Send + 'static>(tx: &Self::Tx<T>, v: T) -> bool {
        tx.send(v).is_ok()
    }
    #[inline]
    fn recv<T: Send + 'static>(rx: &Self::Rx<T>) -> Option<T> {
        rx.recv().ok()
    }
}

/// crossbeam-channel (the channel std's `mpsc` was rebuilt from).
pub struct Crossbeam;

impl Chan for Crossbeam {
    type Tx<T: Send + 'static> = crossbeam_channel::Sender<T>;
    type Rx<T: Send + 'static> = crossbeam_channel::Receiver<T>;
    fn unbounded<T: Send + 'static>() -> (Self::Tx<T>, Self::Rx<T>) {
        crossbeam_channel::unbounded()
    }
    #[inline]
    fn send<T: Send + 'static>(tx: &Self::Tx<T>, v: T) -> bool {
        tx.send(v).is_ok()
    }
    #[inline]
    fn recv<T: Send + 'static>(rx: &Self::Rx<T>) -> Option<T> {
        rx.recv().ok()
    }
}

/// Receives `n` results on the submitting thread; returns their sum.
pub fn collect<C: Chan>(rx: &C::Rx<u64>, n: u64) -> u64 {
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(C::recv(rx).expect("result channel closed"));
    }
    sum
}

pub struct Floor<J: FloorJob, C: Chan = Flume> {
    jobs: Option<C::Tx<J>>,
    results: Vec<C::Rx<u64>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: FloorJob, C: Chan> Floor<J, C> {
    /// `workers` threads and `routes` result channels.
    pub fn new(workers: usize, routes: usize) -> Self {
        let (jobs, queue) = C::unbounded::<J>();
        let (txs, results): (Vec<_>, Vec<_>) = (0..routes).map(|_| C::unbounded()).unzip();
        let threads = (0..workers)
            .map(|_| {
                let (queue, txs) = (queue.clone(), txs.clone());
                thread::spawn(move || {
                    while let Some(job) = C::recv(&queue) {
                        let (route, value) = job.run();
                        let _ = C::send(&txs[route], value);
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
            assert!(C::send(jobs, job), "floor workers gone");
        }
    }

    pub fn results(&self, route: usize) -> &C::Rx<u64> {
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
