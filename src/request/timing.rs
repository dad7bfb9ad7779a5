//! Per-request timing, on request ([`Request::timed`](crate::Request::timed)):
//! how long a request waited in the queue, how long it ran, and on which
//! worker, readable by its callbacks through [`timing`]. Requests that do
//! not ask for it carry nothing and read no clock.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How one request went ([`timing`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Timing {
    /// From when the request was made (converted into a `WorkRequest`,
    /// usually as it is put) until a worker took it; for a request that
    /// never ran, until it was found expired or was cancelled. An expired
    /// request is found so when a worker takes it, which may be well
    /// after its deadline passed: nothing watches the clock meanwhile.
    pub queued: Duration,
    /// How long its callable ran (zero if it never started).
    pub running: Duration,
    /// The index of the worker that ran it (as in its thread's name), if
    /// one did.
    pub worker: Option<usize>,
}

thread_local! {
    /// The timing of the request whose callback is running on this thread.
    static CURRENT: Cell<Option<Timing>> = const { Cell::new(None) };
}

/// The [`Timing`] of the request whose callback is running on this thread,
/// if that request was made with [`Request::timed`](crate::Request::timed);
/// `None` anywhere else.
///
/// # Examples
///
/// ```
/// use callpool::{ThreadPool, WorkRequest};
///
/// let pool = ThreadPool::new(1);
/// pool.put_request(WorkRequest::new(|n: u64| n * 2, 21).timed().on_result(|_, n| {
///     let timing = callpool::timing().expect("a timed request");
///     assert_eq!(n, 42);
///     assert_eq!(timing.worker, Some(0));
///     println!("queued {:?}, ran {:?}", timing.queued, timing.running);
/// }))?;
/// pool.wait()?;
/// assert!(callpool::timing().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn timing() -> Option<Timing> {
    CURRENT.with(Cell::get)
}

/// Runs `report` with `timing` readable through [`timing`], and clears it
/// after, on unwinding too.
pub(crate) fn reporting<R>(timing: Option<Timing>, report: impl FnOnce() -> R) -> R {
    struct Clear(Option<Timing>);
    impl Drop for Clear {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let previous = CURRENT.with(|c| c.replace(timing));
    let _clear = Clear(previous);
    report()
}

/// Runs `run`, which runs callbacks of other requests (a handle's results,
/// a collector's), with no timing readable through [`timing`]: called in a
/// timed request's callback (which waits on a handle, say), the callbacks
/// it runs read their own request's timing, not that one's. Restored after,
/// on unwinding too. A thread with no timing set (the common case) pays one
/// look.
pub(crate) fn hidden<R>(run: impl FnOnce() -> R) -> R {
    if CURRENT.with(Cell::get).is_none() {
        return run();
    }
    reporting(None, run)
}

/// What a timed request records on its way; inside its box.
pub(crate) struct Clock {
    made: Instant,
    started: Option<Instant>,
    running: Duration,
    worker: Option<usize>,
}

impl Clock {
    pub(crate) fn start() -> Clock {
        Clock {
            made: Instant::now(),
            started: None,
            running: Duration::ZERO,
            worker: None,
        }
    }

    pub(crate) fn begin(&mut self, worker: Option<usize>) {
        self.started = Some(Instant::now());
        self.worker = worker;
    }

    pub(crate) fn end(&mut self) {
        if let Some(started) = self.started {
            self.running = started.elapsed();
        }
    }

    /// It stopped waiting without running (expired as a worker took it,
    /// or cancelled): its time queued ends now, not when it is reported.
    pub(crate) fn end_unstarted(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    pub(crate) fn timing(&self) -> Timing {
        Timing {
            queued: self
                .started
                .unwrap_or_else(Instant::now)
                .saturating_duration_since(self.made),
            running: self.running,
            worker: self.worker,
        }
    }
}
