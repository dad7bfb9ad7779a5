//! `Builder`: a pool's settings, checked before any thread starts, and the
//! constructors of a [`ThreadPool`] that use it.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::error::{BuildError, SpawnError};
use crate::handle::ThreadPool;
use crate::pool::{Config, Pool, PoolOwner, Scale, StateMaker, WorkerHook};

/// The most live workers one pool may have. Far above any useful size; it
/// turns an absurd request (`create_workers(usize::MAX)`) into an error
/// instead of thousands of threads.
pub const MAX_WORKERS: usize = 4096;

/// The default thread name prefix; workers are named `callpool-worker-0`,
/// `callpool-worker-1`, ...
pub const DEFAULT_THREAD_NAME: &str = "callpool-worker";

/// The largest queue capacity a pool uses; larger settings are clamped to
/// it (no queue could ever hold that many requests anyway).
pub const MAX_CAPACITY: usize = usize::MAX / 4;

/// Settings for a [`ThreadPool`].
///
/// Defaults: one worker per available core, unbounded request and result
/// queues, threads named `callpool-worker-N`, the platform's stack size.
///
/// # Examples
///
/// ```
/// use callpool::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .workers(2)
///     .queue_capacity(100)      // `q_size` in the Python module
///     .result_capacity(100)     // `resq_size`
///     .thread_name("crawler")
///     .stack_size(256 * 1024)
///     .build()?;
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), callpool::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct Builder {
    workers: Option<usize>,
    queue_capacity: usize,
    result_capacity: usize,
    thread_name: String,
    stack_size: Option<usize>,
    quiet_panics: bool,
    on_worker_start: Option<WorkerHook>,
    on_worker_stop: Option<WorkerHook>,
    worker_state: Option<StateMaker>,
    min_workers: Option<usize>,
    max_workers: Option<usize>,
    keep_alive: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the default settings (the same as
    /// [`ThreadPool::builder`] and `Builder::default()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::Builder;
    ///
    /// let pool = Builder::new().build()?;
    /// // One worker per available core, as the defaults say.
    /// assert_eq!(pool.workers(), std::thread::available_parallelism()?.get());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Builder {
        Builder {
            workers: None,
            queue_capacity: 0,
            result_capacity: 0,
            thread_name: DEFAULT_THREAD_NAME.to_owned(),
            stack_size: None,
            quiet_panics: false,
            on_worker_start: None,
            on_worker_stop: None,
            worker_state: None,
            min_workers: None,
            max_workers: None,
            keep_alive: None,
        }
    }

    /// Worker threads to start (default: available parallelism, kept
    /// within [`min_workers`](Self::min_workers) and
    /// [`max_workers`](Self::max_workers) when either is set). Zero is
    /// allowed; requests then wait for [`ThreadPool::create_workers`].
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(0).build()?;
    /// let ticket = pool.submit(|n: u32| n + 1, 1)?;
    /// let ticket = ticket.try_result().expect_err("no worker to run it yet");
    /// pool.create_workers(1)?;
    /// assert_eq!(ticket.wait(), Ok(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Most requests the queue holds before a put blocks; 0 (the default)
    /// means unbounded. Values above [`MAX_CAPACITY`] are clamped to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool, WorkRequest};
    ///
    /// // No worker takes anything, so the queue fills up.
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(2).build()?;
    /// pool.try_put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// pool.try_put_request(WorkRequest::new(|n: u32| n, 2))?;
    /// assert!(matches!(pool.try_put_request(WorkRequest::new(|n: u32| n, 3)), Err(PutError::Full(_))));
    /// assert_eq!(pool.queued(), 2);
    ///
    /// // Any capacity builds; past MAX_CAPACITY it is as good as unbounded.
    /// assert!(ThreadPool::builder().workers(0).queue_capacity(usize::MAX).build().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "q_size")]
    pub fn queue_capacity(mut self, n: usize) -> Builder {
        self.queue_capacity = n;
        self
    }

    /// Most results each handle's result queue holds before workers wait
    /// for a poll; 0 (the default) means unbounded. Values above
    /// [`MAX_CAPACITY`] are clamped to it.
    ///
    /// A worker waiting for a poll is not left waiting by the thread that
    /// handles the results while that thread blocks elsewhere on the same
    /// handle: a blocked put, a ticket's `wait` (while its request is
    /// queued), `map`, `imap`, `as_completed`, a
    /// [`Collector`](crate::Collector) or a [`scope`](ThreadPool::scope)
    /// handles that handle's results (runs their callbacks) whenever a
    /// worker is stuck on its full result queue, so a thread that puts,
    /// waits and polls on one handle does not deadlock. They look after
    /// their own handle only: a thread that polls handle B while it waits
    /// on handle A can still wait for ever on workers stuck on B's queue.
    /// An awaited ticket looks after none (see [`Ticket`](crate::Ticket)).
    /// A callback that itself waits this way nests the next callbacks on
    /// its stack; very deep chains of such callbacks can overflow it.
    ///
    /// # Examples
    ///
    /// One thread puts 100 requests and never polls: both queues are full
    /// long before the last put, yet the puts go on, because they run the
    /// ready callbacks themselves.
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).result_capacity(1).build()?;
    /// let handled = Arc::new(AtomicUsize::new(0));
    /// for n in 0..100u32 {
    ///     let handled = Arc::clone(&handled);
    ///     pool.put_request(WorkRequest::new(|n: u32| n, n)
    ///         .on_result(move |_, _| { handled.fetch_add(1, Ordering::Relaxed); }))?;
    /// }
    /// // The callbacks of all but at most 3 have run: one request may wait
    /// // in the request queue, one on the worker, one in the result queue.
    /// assert!(pool.pending() <= 3);
    /// assert_eq!(handled.load(Ordering::Relaxed) + pool.pending(), 100);
    /// pool.wait()?;
    /// assert_eq!(handled.load(Ordering::Relaxed), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "resq_size")]
    pub fn result_capacity(mut self, n: usize) -> Builder {
        self.result_capacity = n;
        self
    }

    /// Prefix of the worker threads' names; worker `N` is `{prefix}-{N}`.
    /// `N` counts the workers this pool has started, from 0, and is never
    /// reused: after [`ThreadPool::resize`] down and up again (or
    /// [`ThreadPool::dismiss_workers`] then
    /// [`ThreadPool::create_workers`]) the new workers get new numbers, so
    /// a name in a log always means one thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let name = |_: ()| std::thread::current().name().map(str::to_owned);
    /// let pool = ThreadPool::builder().workers(1).thread_name("crawler").build()?;
    /// assert_eq!(pool.submit(name, ())?.wait()?.as_deref(), Some("crawler-0"));
    ///
    /// pool.resize(0)?;
    /// pool.join_all_dismissed_workers();   // crawler-0 is gone
    /// pool.resize(1)?;
    /// assert_eq!(pool.submit(name, ())?.wait()?.as_deref(), Some("crawler-1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Builder {
        self.thread_name = prefix.into();
        self
    }

    /// Stack size of each worker thread, in bytes (default: that of
    /// `std::thread::spawn`). Zero is refused by [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// // Room for a callable that keeps 4 MiB on its stack.
    /// let pool = ThreadPool::builder().workers(1).stack_size(16 << 20).build()?;
    /// let ticket = pool.submit(|fill: u8| {
    ///     let big = std::hint::black_box([fill; 4 << 20]);
    ///     big.iter().map(|&b| usize::from(b)).sum::<usize>()
    /// }, 1)?;
    /// assert_eq!(ticket.wait(), Ok(4 << 20));
    ///
    /// assert!(ThreadPool::builder().stack_size(0).build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Keeps panics in this pool's callables from printing (default:
    /// `false`). A panic is still caught and reaches the request's error
    /// callback as [`TaskError::Panicked`](crate::TaskError::Panicked) with
    /// its message (or is logged at error level when there is none); only
    /// the panic hook's output (the message and, under `RUST_BACKTRACE=1`,
    /// a backtrace per request) is skipped. Logged means through the `log`
    /// crate: with no logger installed, a quiet pool's panic in a request
    /// without an error callback shows nowhere but in
    /// [`stats`](crate::ThreadPool::stats)`().panicked`.
    ///
    /// The trade-off: the panic hook is process-wide, so the first quiet
    /// pool installs one (once) that skips its workers' panics and calls
    /// the hook it replaced for every other thread. A hook you set *after*
    /// that replaces it, and the workers print again. Panics in callpool's
    /// own code on those workers would not print either; they are logged.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(1).quiet_panics(true).build()?;
    /// let ticket = pool.submit(|_: ()| -> u8 { panic!("expected, and not printed") }, ())?;
    /// assert_eq!(ticket.wait(), Err(TaskError::Panicked("expected, and not printed".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn quiet_panics(mut self, quiet: bool) -> Builder {
        self.quiet_panics = quiet;
        self
    }

    /// Runs `hook(index)` on each worker thread as it starts, before it
    /// takes any request (`index` as in the thread's name): ThreadPoolExecutor's
    /// `initializer`, rayon's `start_handler`. A panic in it is logged and
    /// the worker goes on. It runs before the worker's
    /// [`worker_state`](Self::worker_state) is made; waiting in it for a
    /// [`Ticket`](crate::Ticket) of this pool runs that request on this
    /// worker if no worker has taken it (it sees no worker state).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let (started, stopped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (s, t) = (Arc::clone(&started), Arc::clone(&stopped));
    /// let pool = ThreadPool::builder()
    ///     .workers(3)
    ///     .on_worker_start(move |_index| { s.fetch_add(1, Ordering::SeqCst); })
    ///     .on_worker_stop(move |_index| { t.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// pool.shutdown()?;                  // joins every worker
    /// assert_eq!((started.load(Ordering::SeqCst), stopped.load(Ordering::SeqCst)), (3, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_worker_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Builder {
        self.on_worker_start = Some(WorkerHook(Arc::new(hook)));
        self
    }

    /// Gives each worker a state of its own, made by `make(index)` on the
    /// worker thread as it starts and dropped there as it leaves; a
    /// callable made with [`WorkRequest::with_context`](crate::WorkRequest::with_context)
    /// borrows it with [`Context::worker_state`](crate::Context::worker_state).
    /// The state need not be `Send`: it never leaves its thread. A panic in
    /// `make` is logged and that worker has no state.
    ///
    /// # Examples
    ///
    /// A state that is not `Send`, kept from one request to the next on
    /// its worker:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::rc::Rc;
    ///
    /// let pool = ThreadPool::builder()
    ///     .workers(1)
    ///     .worker_state(|index| (Rc::new(format!("worker {index}")), 0u32))
    ///     .build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for _ in 0..3 {
    ///     let tx = tx.clone();
    ///     pool.put_request(WorkRequest::with_context(|cx: &Context<'_>, _: ()| {
    ///         let mut state = cx.worker_state::<(Rc<String>, u32)>().expect("made at start");
    ///         state.1 += 1;                              // requests this worker has run
    ///         format!("{}: {}", state.0, state.1)
    ///     }, ()).on_result(move |_, line| tx.send(line).unwrap()))?;
    /// }
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["worker 0: 1", "worker 0: 2", "worker 0: 3"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_state<S: 'static>(
        mut self,
        make: impl Fn(usize) -> S + Send + Sync + 'static,
    ) -> Builder {
        self.worker_state = Some(StateMaker(Arc::new(move |index| Box::new(make(index)))));
        self
    }

    /// The fewest live workers an autoscaling pool keeps (default: the
    /// initial [`workers`](Self::workers), or `max_workers` if that is
    /// lower). Idle workers above it leave after
    /// [`keep_alive`](Self::keep_alive).
    ///
    /// Setting any of `min_workers`, [`max_workers`](Self::max_workers) or
    /// [`keep_alive`](Self::keep_alive) makes the pool autoscaling, even
    /// to the values they default to: `.workers(2).min_workers(2)
    /// .max_workers(2)` is not the pool `.workers(2)` makes. Workers that
    /// [`dismiss_workers`](ThreadPool::dismiss_workers) or
    /// [`resize`](ThreadPool::resize) took away come back when requests
    /// are queued with no worker asleep to take them (up to `max_workers`),
    /// and a `wait` on requests with no worker left starts one rather than
    /// report [`NoWorkersAvailable`](crate::WaitError::NoWorkersAvailable).
    /// To stop a pool from running requests, use a pool without these
    /// settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(2).min_workers(2).max_workers(2).build()?;
    /// assert_eq!(pool.dismiss_workers(2), 2);
    /// let ticket = pool.submit(|n: u32| n + 1, 1)?;   // starts a worker again
    /// assert_eq!(ticket.wait(), Ok(2));
    /// assert!(pool.workers() >= 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn min_workers(mut self, n: usize) -> Builder {
        self.min_workers = Some(n);
        self
    }

    /// The most live workers an autoscaling pool grows to (default: the
    /// initial [`workers`](Self::workers), or `min_workers` if that is
    /// higher). When a request is queued and no
    /// worker is asleep to take it, the pool starts one more, up to this;
    /// requests queued together (a batch, or a task's children) start one
    /// each, less those that sleeping workers take.
    /// `create_workers` and `resize` still set any count up to
    /// [`MAX_WORKERS`](crate::MAX_WORKERS); the bounds only steer the pool's
    /// own growing and shrinking. A `max_workers` of 0 is refused by
    /// [`build`](Self::build): unlike a queue capacity, 0 does not mean
    /// unbounded here, and a pool that could never start a worker by itself
    /// is a mistake.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::{Arc, RwLock};
    /// use std::time::Duration;
    ///
    /// // Starts with 1 worker, grows to 8 while requests wait, and idle
    /// // workers above 1 leave after 50 ms without work.
    /// let pool = ThreadPool::builder()
    ///     .workers(1)
    ///     .min_workers(1)
    ///     .max_workers(8)
    ///     .keep_alive(Duration::from_millis(50))
    ///     .build()?;
    /// let gate = Arc::new(RwLock::new(()));
    /// let closed = gate.write().unwrap();   // every request waits on it
    /// let tickets: Vec<_> = (0..8)
    ///     .map(|_| {
    ///         let gate = Arc::clone(&gate);
    ///         pool.submit(move |_: ()| drop(gate.read()), ())
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// assert!(pool.workers() > 1);          // it grew while they waited
    /// drop(closed);
    /// for t in tickets { t.wait()?; }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_workers(mut self, n: usize) -> Builder {
        self.max_workers = Some(n);
        self
    }

    /// How long an idle worker above [`min_workers`](Self::min_workers)
    /// waits for work before it leaves (tokio's `thread_keep_alive`). Its
    /// sleep is a timed wait of its own, no ticker thread; a worker at the
    /// minimum sleeps without a timeout, so an idle pool never wakes up.
    /// A zero `keep_alive` is refused by [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = ThreadPool::builder()
    ///     .workers(3)
    ///     .min_workers(1)
    ///     .keep_alive(Duration::from_millis(1))
    ///     .build()?;
    /// // Nothing to do: the two workers above the minimum leave.
    /// let give_up = Instant::now() + Duration::from_secs(60);
    /// while pool.workers() > 1 {
    ///     assert!(Instant::now() < give_up, "idle workers did not leave");
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// assert_eq!(pool.workers(), 1);
    ///
    /// assert!(ThreadPool::builder().keep_alive(Duration::ZERO).build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.keep_alive = Some(keep_alive);
        self
    }

    /// Runs `hook(index)` on each worker thread as it leaves (dismissed,
    /// or the pool shut down), after its last request and after its
    /// [`worker_state`](Self::worker_state) was dropped. A panic in it (or
    /// in the state's `Drop`) is logged. The thread counts as running until
    /// the hook returns: `shutdown` and
    /// [`join_all_dismissed_workers`](crate::ThreadPool::join_all_dismissed_workers)
    /// wait for it, and `shutdown_timeout` gives up on it at its timeout.
    /// As in the start hook, waiting in it for a request of this pool (an
    /// [`install`](crate::ThreadPool::install), a ticket's `wait`) runs
    /// that request on this thread if no worker has taken it (it sees no
    /// worker state): the last worker leaving never waits for itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::{Arc, Mutex};
    ///
    /// struct State(Arc<Mutex<Vec<String>>>);
    /// impl Drop for State {
    ///     fn drop(&mut self) { self.0.lock().unwrap().push("state dropped".into()); }
    /// }
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (for_state, for_hook) = (Arc::clone(&log), Arc::clone(&log));
    /// let pool = ThreadPool::builder()
    ///     .workers(1)
    ///     .worker_state(move |_| State(Arc::clone(&for_state)))
    ///     .on_worker_stop(move |index| for_hook.lock().unwrap().push(format!("worker {index} stopped")))
    ///     .build()?;
    /// pool.dismiss_workers(1);
    /// assert_eq!(pool.join_all_dismissed_workers(), 1);   // the hook has returned
    /// assert_eq!(*log.lock().unwrap(), ["state dropped", "worker 0 stopped"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_worker_stop(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Builder {
        self.on_worker_stop = Some(WorkerHook(Arc::new(hook)));
        self
    }

    /// Builds the pool and starts its workers.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for a thread name with a NUL byte, a zero stack size,
    /// more than [`MAX_WORKERS`] workers, autoscaling settings that cannot
    /// hold ([`min_workers`](Self::min_workers) above
    /// [`max_workers`](Self::max_workers), initial
    /// [`workers`](Self::workers) outside them, a `max_workers` of 0 or
    /// above [`MAX_WORKERS`], a zero [`keep_alive`](Self::keep_alive)), or
    /// a thread the OS refuses to start. Its message names the settings
    /// that conflict, as they were set. After an error, workers that had
    /// started are dismissed and exit on their own (they take no request).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{SpawnError, ThreadPool, MAX_WORKERS};
    /// use std::error::Error;
    ///
    /// let pool = ThreadPool::builder().workers(2).build()?;
    /// assert_eq!(pool.workers(), 2);
    ///
    /// assert!(ThreadPool::builder().thread_name("nul\0").build().is_err());
    /// assert!(ThreadPool::builder().min_workers(4).max_workers(2).build().is_err());
    /// assert!(ThreadPool::builder().workers(1).min_workers(2).build().is_err());
    /// let too_many = ThreadPool::builder().workers(MAX_WORKERS + 1).build().unwrap_err();
    /// let cause = too_many.source().and_then(|e| e.downcast_ref::<SpawnError>());
    /// assert_eq!(cause.map(SpawnError::created), Some(0));   // none was started
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let (owner, started) = self.validate()?.start(false);
        // On an error, dropping the owner stops the workers that started.
        started.map_err(BuildError::spawn)?;
        Ok(ThreadPool::from_owner(owner))
    }

    /// Checks every setting; the same checks for [`build`](Self::build) and
    /// [`configure_global`](crate::configure_global).
    pub(crate) fn validate(self) -> Result<Checked, BuildError> {
        if self.thread_name.contains('\0') {
            return Err(BuildError::invalid_name(self.thread_name));
        }
        if self.stack_size == Some(0) {
            return Err(BuildError::zero_stack_size());
        }
        // Unset, the count is the machine's parallelism, kept within the
        // autoscaling bounds that were set: `.max_workers(1)` alone is a
        // pool of one, on any machine.
        let workers = self.workers.unwrap_or_else(|| {
            let cores = thread::available_parallelism().map_or(1, |n| n.get());
            cores
                .max(self.min_workers.unwrap_or(0))
                .min(self.max_workers.unwrap_or(usize::MAX))
        });
        // The bounds first: a count above the limit that comes from an
        // oversized `min_workers` is named as that.
        let scale = self.scale(workers)?;
        if workers > MAX_WORKERS {
            return Err(BuildError::spawn(SpawnError::too_many(
                workers,
                MAX_WORKERS,
            )));
        }
        // 0 means unbounded; anything above MAX_CAPACITY is as good as
        // unbounded and is clamped, since flume computes `capacity + 1`.
        let nonzero = |n: usize| (n > 0).then_some(n.min(MAX_CAPACITY));
        Ok(Checked {
            workers,
            config: Config {
                thread_name: self.thread_name,
                stack_size: self.stack_size,
                queue_capacity: nonzero(self.queue_capacity),
                result_capacity: nonzero(self.result_capacity),
                max_workers: MAX_WORKERS,
                quiet_panics: self.quiet_panics,
                on_worker_start: self.on_worker_start,
                on_worker_stop: self.on_worker_stop,
                worker_state: self.worker_state,
                scale,
            },
        })
    }
}

impl Builder {
    /// The autoscaling bounds, checked against the initial `workers`;
    /// `None` when nothing asks the pool to grow or shrink by itself.
    fn scale(&self, workers: usize) -> Result<Option<Scale>, BuildError> {
        if self.min_workers.is_none() && self.max_workers.is_none() && self.keep_alive.is_none() {
            return Ok(None);
        }
        let refuse = |why: String| Err(BuildError::invalid_scale(why));
        // 0 is "unbounded" for the queue capacities, not here: a pool that
        // may never start a worker by itself is a mistake worth naming.
        if self.max_workers == Some(0) {
            return refuse(
                "max_workers 0 leaves no room for a worker (0 does not mean unbounded here)"
                    .to_owned(),
            );
        }
        if self.keep_alive == Some(Duration::ZERO) {
            return refuse("keep_alive must not be zero".to_owned());
        }
        for (name, bound) in [
            ("min_workers", self.min_workers),
            ("max_workers", self.max_workers),
        ] {
            if let Some(n) = bound.filter(|&n| n > MAX_WORKERS) {
                return refuse(format!("{name} {n} is above MAX_WORKERS ({MAX_WORKERS})"));
            }
        }
        // An unset bound follows the initial count, but never crosses the
        // other bound: what conflicts then is a count or bound the user set,
        // and each message below names only those (an unset `min` is at
        // most `workers`, an unset `max` at least `workers` and `min`, and
        // an unset `workers` lies within `min..=max` unless those cross).
        let max = self
            .max_workers
            .unwrap_or_else(|| workers.max(self.min_workers.unwrap_or(0)));
        let min = self.min_workers.unwrap_or_else(|| workers.min(max));
        if min > max {
            return refuse(format!("min_workers {min} is above max_workers {max}"));
        }
        if workers < min {
            return refuse(format!("workers {workers} is below min_workers {min}"));
        }
        if workers > max {
            return refuse(format!("workers {workers} is above max_workers {max}"));
        }
        Ok(Some(Scale {
            min,
            max,
            keep_alive: self.keep_alive,
        }))
    }
}

/// Settings that passed [`Builder::validate`]: starting a pool from them
/// can only fail if the OS refuses a thread.
#[derive(Debug)]
pub(crate) struct Checked {
    workers: usize,
    config: Config,
}

impl Checked {
    /// Makes the pool and starts its workers, returning the pool even if
    /// some did not start (the global pool keeps what it could start;
    /// `build` drops it, which stops them).
    pub(crate) fn start(self, global: bool) -> (Arc<PoolOwner>, Result<(), SpawnError>) {
        let pool = Pool::new(self.config);
        let owner = Arc::new(PoolOwner {
            pool: Arc::clone(&pool),
            global,
        });
        let started = pool.create_workers(self.workers);
        (owner, started)
    }
}

/// The constructors, here beside the settings they take.
impl ThreadPool {
    /// Creates a pool with `workers` threads, started now; the other settings
    /// are the [`Builder`] defaults (unbounded queues). Zero workers is
    /// allowed: requests wait until workers are created.
    ///
    /// # Panics
    ///
    /// If the operating system refuses to start a thread, or `workers`
    /// exceeds [`MAX_WORKERS`](crate::MAX_WORKERS). Use
    /// [`builder`](Self::builder) to get an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(2);
    /// assert_eq!(pool.workers(), 2);
    /// ```
    #[must_use = "the pool ends when its last handle is dropped"]
    pub fn new(workers: usize) -> ThreadPool {
        match Builder::new().workers(workers).build() {
            Ok(pool) => pool,
            Err(e) => panic!("callpool: {e}"),
        }
    }

    /// A [`Builder`] for a pool with custom settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::builder()
    ///     .workers(3)
    ///     .queue_capacity(64)
    ///     .thread_name("resizer")
    ///     .build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), callpool::BuildError>(())
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }
}
