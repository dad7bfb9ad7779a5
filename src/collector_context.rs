//! [`CollectorContext`]: what a request put with
//! [`Collector::put_with_context`](crate::Collector::put_with_context)
//! sees, to add more requests whose outcomes come back to the same
//! collector (work that makes work, its results read as one iterator), and
//! [`Added`], the ids of those requests on their way to the collector's
//! count.

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::error::PutError;
use crate::request::{Context, RequestId, WorkRequest};
// The checkers' own under `--cfg loom`/`shuttle`, for the model of this
// protocol (`models::collector`).
use crate::sync::{Mutex, MutexGuard};
use crate::ticket::{sink_request_ending, Arrived, Ending, OneOutcome};
use crate::unwind::Apart;

/// The ids of requests added from workers, not yet counted by their
/// collector. A request's id goes in before the request is put, so before
/// any outcome that depends on it is sent: its own, and its parent's (sent
/// once the parent's callable has returned). The collector takes the ids
/// out after it receives each outcome and before it counts that one out,
/// and so it never finds nothing pending while an added request is still
/// to come.
#[derive(Default)]
pub(crate) struct Added(Mutex<Vec<RequestId>>);

impl Added {
    fn ids(&self) -> MutexGuard<'_, Vec<RequestId>> {
        // Nothing panics while it is held (no user code runs under it).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, id: RequestId) {
        self.ids().push(id);
    }

    /// Hands the ids added since the last call to `count`.
    pub(crate) fn take(&self, count: impl FnMut(RequestId)) {
        let mut ids = self.ids();
        if !ids.is_empty() {
            ids.drain(..).for_each(count);
        }
    }

    /// How many ids wait to be counted.
    pub(crate) fn len(&self) -> usize {
        self.ids().len()
    }
}

/// What a request put with
/// [`Collector::put_with_context`](crate::Collector::put_with_context) is
/// given: the worker's [`Context`] (it dereferences to one: `join`,
/// `worker_state`, and `put` and `execute` on the pool handle, whose
/// `wait` covers those, not the collector), and `add`, which puts a
/// request whose outcome comes back to the same collector
/// ([`add_streaming`](Self::add_streaming): one that emits any number of
/// the collector's items). A streaming request's
/// [`CollectorEmitter`](crate::CollectorEmitter) dereferences to one.
///
/// Requests added here count as pending on the collector from the moment
/// they are added, so its [`outcomes`](crate::Collector::outcomes) and
/// [`wait_with`](crate::Collector::wait_with) end only once every request
/// added, and every one those added in turn, has been handled. They have
/// no per-request callback: their outcomes come out of `outcomes` and
/// `wait_with`. An added request goes through the worker's own queue
/// first, as a `Context::put` child does.
///
/// # Examples
///
/// A walk of a tree whose nodes are discovered as it goes, its results
/// read as one iterator:
///
/// ```
/// use callpool::{CollectorContext, ThreadPool};
///
/// // Node n has children 2n+1 and 2n+2, up to 1,000 nodes.
/// fn visit(cx: &CollectorContext<'_, u64>, node: u64) -> u64 {
///     for child in [2 * node + 1, 2 * node + 2] {
///         if child < 1_000 {
///             cx.add_with_context(visit, child).expect("the pool is open");
///         }
///     }
///     node
/// }
///
/// let pool = ThreadPool::new(4);
/// let mut nodes = pool.collector::<u64>();
/// nodes.put_with_context(visit, 0)?;
/// let mut seen: Vec<u64> = nodes.outcomes().map(|(_, node)| node.unwrap()).collect();
/// seen.sort_unstable();
/// assert_eq!(seen, (0..1_000).collect::<Vec<_>>());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Like the [`Context`] it holds, it is not `Sync`: a `&CollectorContext`
/// stays on the worker running its request.
///
/// ```compile_fail
/// use callpool::{CollectorContext, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let mut nodes = pool.collector::<u64>();
/// nodes.put_with_context(|cx: &CollectorContext<'_, u64>, n: u64| {
///     std::thread::scope(|s| { s.spawn(|| cx.add(|n: u64| n, n + 1)); }); // `&CollectorContext` is not `Send`
///     n
/// }, 0)?;
/// # Ok::<(), callpool::PutError>(())
/// ```
pub struct CollectorContext<'c, T, E = Infallible> {
    cx: &'c Context<'c>,
    pub(crate) outcomes: &'c flume::Sender<Option<Arrived<T, E>>>,
    pub(crate) added: &'c Arc<Added>,
}

impl<'c, T, E> CollectorContext<'c, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    pub(crate) fn new(
        cx: &'c Context<'c>,
        outcomes: &'c flume::Sender<Option<Arrived<T, E>>>,
        added: &'c Arc<Added>,
    ) -> Self {
        CollectorContext {
            cx,
            outcomes,
            added,
        }
    }

    /// Adds `callable(arg)`; its outcome comes back to the collector.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] once the pool no longer accepts requests (or
    /// [`PutError::DuplicateId`], never for these automatic ids). The
    /// request in the error still counts on the collector: dropped, it
    /// ends there as [`TaskError::Cancelled`](crate::TaskError::Cancelled).
    ///
    /// # Examples
    ///
    /// One request per directory, which adds one per file it lists:
    ///
    /// ```
    /// use callpool::{CollectorContext, ThreadPool};
    ///
    /// fn list(cx: &CollectorContext<'_, String>, dir: &'static str) -> String {
    ///     for file in ["a", "b"] {
    ///         cx.add(move |file: &str| format!("{dir}/{file}"), file).expect("the pool is open");
    ///     }
    ///     dir.to_string()
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut paths = pool.collector::<String>();
    /// paths.put_with_context(list, "src")?;
    /// let mut all: Vec<String> = paths.outcomes().map(|(_, path)| path.unwrap()).collect();
    /// all.sort_unstable();
    /// assert_eq!(all, ["src", "src/a", "src/b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Refused once the pool is shut down, the request still ends on the
    /// collector, as `Cancelled`:
    ///
    /// ```
    /// use callpool::{CollectorContext, PutError, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let stopper = pool.clone();
    /// let mut results = pool.collector::<u32>();
    /// results.put_with_context(move |cx: &CollectorContext<'_, u32>, n: u32| {
    ///     drop(stopper.shutdown_now());
    ///     let refused = cx.add(|n: u32| n + 1, n);
    ///     assert!(matches!(refused, Err(PutError::ShutDown(_))));
    ///     n
    /// }, 1)?;
    /// let mut outcomes: Vec<_> = results.outcomes().map(|(_, outcome)| outcome).collect();
    /// outcomes.sort_by_key(Result::is_err);
    /// assert_eq!(outcomes, [Ok(1), Err(TaskError::Cancelled)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<F, A>(&self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
    {
        let arg = Apart::new(arg);
        self.add_work(move |_: &Context<'_>| Ok(callable(arg.into_inner())))
    }

    /// [`add`](Self::add) for a callable that returns a `Result`: an
    /// `Err(e)` comes back as [`TaskError::Failed(e)`](crate::TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorContext, TaskError, ThreadPool};
    ///
    /// fn parse_all(cx: &CollectorContext<'_, u32, String>, words: &'static str) -> Result<u32, String> {
    ///     for word in words.split(' ') {
    ///         cx.add_fallible(|w: &str| w.parse().map_err(|_| format!("{w:?}")), word)
    ///             .map_err(|e| e.to_string())?;
    ///     }
    ///     Ok(0)
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut numbers = pool.fallible_collector::<u32, String>();
    /// numbers.put_fallible_with_context(parse_all, "4 five 6")?;
    /// let (mut parsed, mut bad) = (Vec::new(), Vec::new());
    /// numbers.wait_with(|_, outcome| match outcome {
    ///     Ok(n) => parsed.push(n),
    ///     Err(TaskError::Failed(word)) => bad.push(word),
    ///     Err(other) => panic!("{other}"),
    /// });
    /// parsed.sort_unstable();
    /// assert_eq!(parsed, [0, 4, 6]); // the parent's 0 among them
    /// assert_eq!(bad, ["\"five\""]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_fallible<F, A>(&self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        let arg = Apart::new(arg);
        self.add_work(move |_: &Context<'_>| callable(arg.into_inner()))
    }

    /// [`add`](Self::add) for a callable that is given a
    /// `CollectorContext` in turn, to add more.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorContext, ThreadPool};
    ///
    /// fn countdown(cx: &CollectorContext<'_, u32>, n: u32) -> u32 {
    ///     if n > 0 {
    ///         cx.add_with_context(countdown, n - 1).expect("the pool is open");
    ///     }
    ///     n
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut counted = pool.collector::<u32>();
    /// counted.put_with_context(countdown, 5)?;
    /// let mut all: Vec<u32> = counted.outcomes().map(|(_, n)| n.unwrap()).collect();
    /// all.sort_unstable();
    /// assert_eq!(all, [0, 1, 2, 3, 4, 5]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_with_context<F, A>(&self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(&CollectorContext<'_, T, E>, A) -> T + Send + 'static,
        A: Send + 'static,
    {
        let run = with_context(callable, arg, self.outcomes.clone(), Arc::clone(self.added));
        self.add_work(move |cx: &Context<'_>| Ok(run(cx)))
    }

    /// [`add_with_context`](Self::add_with_context) for a callable that
    /// returns a `Result`.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// Halves an even number, adding a request for the half, until it reaches
    /// 1 or fails on an odd number:
    ///
    /// ```
    /// use callpool::{CollectorContext, TaskError, ThreadPool};
    ///
    /// fn halve(cx: &CollectorContext<'_, u32, String>, n: u32) -> Result<u32, String> {
    ///     if n > 1 && n % 2 == 1 {
    ///         return Err(format!("{n} is odd"));
    ///     }
    ///     if n > 1 {
    ///         cx.add_fallible_with_context(halve, n / 2).map_err(|e| e.to_string())?;
    ///     }
    ///     Ok(n)
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut halves = pool.fallible_collector::<u32, String>();
    /// halves.put_fallible_with_context(halve, 24)?;
    /// let (mut even, mut failed) = (Vec::new(), Vec::new());
    /// halves.wait_with(|_, outcome| match outcome {
    ///     Ok(n) => even.push(n),
    ///     Err(TaskError::Failed(why)) => failed.push(why),
    ///     Err(other) => panic!("{other}"),
    /// });
    /// even.sort_unstable();
    /// assert_eq!(even, [6, 12, 24]);
    /// assert_eq!(failed, ["3 is odd"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_fallible_with_context<F, A>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(&CollectorContext<'_, T, E>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        let run = with_context(callable, arg, self.outcomes.clone(), Arc::clone(self.added));
        self.add_work(run)
    }

    fn add_work<W>(&self, work: W) -> Result<RequestId, PutError>
    where
        W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
    {
        self.add_ending::<OneOutcome, W>(work)
    }

    /// [`add_work`](Self::add_work) for a request that ends as `K` says
    /// (one outcome, or a stream's end after its items).
    pub(crate) fn add_ending<K, W>(&self, work: W) -> Result<RequestId, PutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    {
        let (id, task) = sink_request_ending::<K, W, T, E>(work, self.outcomes);
        // Before the put: the collector must count it before its outcome,
        // or its parent's, can arrive (see `Added`).
        self.added.push(id);
        self.cx.put(WorkRequest::from_task(task))
    }

    /// [`Context::join`] whose halves are each given a `CollectorContext`
    /// of the same collector, so that either can [`add`](Self::add)
    /// requests whose outcomes come back to it: a divide-and-conquer step
    /// that adds a request for each piece it finds. As with
    /// `Context::join`, `b` may run on another worker (so it must be
    /// `Send`), and both have run when this returns; what they added is
    /// pending on the collector from the moment it was added, so its
    /// outcomes end the collector's reading no sooner than their own.
    /// (`Context::join` is still there through `Deref`:
    /// `cx.context().join(..)` gives the halves a plain [`Context`].)
    ///
    /// # Panics
    ///
    /// As [`Context::join`]: a panic in either half passes on here once
    /// both halves are over (`a`'s if both panic). If `a` panics, `b` is
    /// dropped unrun if no worker has taken it, and waited for if one has.
    ///
    /// # Examples
    ///
    /// Split a range in halves down to pieces of 100 and add one request
    /// per piece, wherever the split ran:
    ///
    /// ```
    /// use callpool::{CollectorContext, ThreadPool};
    ///
    /// fn split(cx: &CollectorContext<'_, u64>, (lo, hi): (u64, u64)) {
    ///     if hi - lo <= 100 {
    ///         cx.add(|(lo, hi): (u64, u64)| (lo..hi).sum::<u64>(), (lo, hi))
    ///             .expect("the pool is open");
    ///     } else {
    ///         let mid = lo + (hi - lo) / 2;
    ///         cx.join(|cx| split(cx, (lo, mid)), |cx| split(cx, (mid, hi)));
    ///     }
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let mut sums = pool.collector::<u64>();
    /// sums.put_with_context(|cx: &CollectorContext<'_, u64>, range| { split(cx, range); 0 }, (0, 10_000))?;
    /// let (mut pieces, mut total) = (0, 0);
    /// for (_, sum) in sums.outcomes() {
    ///     pieces += 1;
    ///     total += sum?;
    /// }
    /// assert_eq!((pieces, total), (128 + 1, 10_000 * 9_999 / 2)); // the root's 0 too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&CollectorContext<'_, T, E>) -> RA,
        B: FnOnce(&CollectorContext<'_, T, E>) -> RB + Send,
        RB: Send,
    {
        let (outcomes, added) = (self.outcomes, self.added);
        self.cx.join(
            |cx| a(&CollectorContext::new(cx, outcomes, added)),
            |cx| b(&CollectorContext::new(cx, outcomes, added)),
        )
    }

    /// The worker's [`Context`] this dereferences to, by name: for
    /// [`Context::join`] with plain halves, which [`join`](Self::join)
    /// hides.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, CollectorContext, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut out = pool.collector::<u32>();
    /// out.put_with_context(|cx: &CollectorContext<'_, u32>, n: u32| {
    ///     let (a, b) = cx.context().join(|_: &Context<'_>| n, |_: &Context<'_>| n + 1);
    ///     a + b
    /// }, 20)?;
    /// assert_eq!(out.outcomes().map(|(_, n)| n.unwrap()).collect::<Vec<_>>(), [41]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn context(&self) -> &Context<'c> {
        self.cx
    }
}

impl<T, E> fmt::Debug for CollectorContext<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorContext")
            .field("id", &self.cx.id())
            .finish_non_exhaustive()
    }
}

impl<'c, T, E> Deref for CollectorContext<'c, T, E> {
    type Target = Context<'c>;

    fn deref(&self) -> &Context<'c> {
        self.cx
    }
}

/// The work of a request given a [`CollectorContext`]: `callable(cx, arg)`
/// on the worker, with the collector's channel and its ids of added
/// requests.
pub(crate) fn with_context<F, A, R, T, E>(
    callable: F,
    arg: A,
    outcomes: flume::Sender<Option<Arrived<T, E>>>,
    added: Arc<Added>,
) -> impl FnOnce(&Context<'_>) -> R + Send + 'static
where
    F: FnOnce(&CollectorContext<'_, T, E>, A) -> R + Send + 'static,
    A: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let arg = Apart::new(arg);
    move |cx: &Context<'_>| {
        let cx = CollectorContext::new(cx, &outcomes, &added);
        callable(&cx, arg.into_inner())
    }
}
