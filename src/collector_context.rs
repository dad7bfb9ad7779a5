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
use crate::ticket::{sink_request, Arrived};
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
/// `worker_state`, and `put` on the pool handle), and `add`, which puts a
/// request whose outcome comes back to the same collector.
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
pub struct CollectorContext<'c, T, E = Infallible> {
    cx: &'c Context<'c>,
    outcomes: &'c flume::Sender<Option<Arrived<T, E>>>,
    added: &'c Arc<Added>,
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
        let (id, task) = sink_request(work, self.outcomes);
        // Before the put: the collector must count it before its outcome,
        // or its parent's, can arrive (see `Added`).
        self.added.push(id);
        self.cx.put(WorkRequest::from_task(task))
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
