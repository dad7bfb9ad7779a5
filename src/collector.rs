//! [`Collector`]: a typed results domain on a handle. Requests put through
//! it travel without callbacks; their outcomes come back to it, typed, and
//! are handled on the collector's thread by an iterator, by one `FnMut`
//! handler, or by per-request callbacks that never leave that thread (so
//! they need be neither `Send` nor `'static`). [`ThreadPool::scope`] is a
//! collector that is always drained.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::panic;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::collector_context::{self, Added, CollectorContext};
use crate::error::{PutError, TrySubmitError};
use crate::handle::{PutMode, ThreadPool};
use crate::lookout::{self, Home};
use crate::patience::Patience;
use crate::request::task::TaskBox;
use crate::request::{Context, RequestId, TaskError, WorkRequest};
use crate::ticket::{sink_request_ending, Arrived, Ending, OneOutcome, Piece, Streamed};
use crate::unwind::{self, Apart, FirstPanic};

/// A callback kept on the collector's thread, keyed by its request's id.
pub(crate) type LocalCallback<'a, T, E> = Box<dyn FnOnce(Result<T, TaskError<E>>) + 'a>;

/// A stream's callback kept on the collector's thread: called for each
/// item, then for the stream's error if it ends with one.
pub(crate) type EachCallback<'a, T, E> = Box<dyn FnMut(Result<T, TaskError<E>>) + 'a>;

/// The callback a request is put with, for the collector to keep until
/// the request ends.
enum Then<'a, T, E> {
    /// The request's one outcome goes to it.
    Once(LocalCallback<'a, T, E>),
    /// A stream's items go to it, and its ending error: it stays until
    /// the stream's end has been taken.
    Each(EachCallback<'a, T, E>),
}

/// An outcome taken for a request pending here, and whether the request
/// ends with it (`false`: a stream's item; the stream goes on).
type Taken<T, E> = (Arrival<T, E>, bool);

/// One outcome as the collector hands it on, with its request's id.
type Arrival<T, E> = (RequestId, Result<T, TaskError<E>>);

/// A typed results domain on a pool handle: put requests whose callables
/// return `T` (or `Result<T, E>`), and take their outcomes back on this
/// thread, in the order they finish. A request put with
/// [`put_streaming`](Self::put_streaming) emits any number of `T`s
/// instead, each taken back as it comes.
///
/// Only the work travels to the workers. What handles an outcome stays on
/// the thread that owns the collector: an iterator
/// ([`outcomes`](Self::outcomes)), one `FnMut` handler
/// ([`wait_with`](Self::wait_with)), or a callback given with the request
/// ([`put_then`](Self::put_then), or
/// [`put_streaming_then`](Self::put_streaming_then) for each item of a
/// stream) that may borrow local state, hold an `Rc`, and mutate what it
/// captures: it is neither `Send` nor `'static`.
/// The collector's outcomes never mix with the handle's callbacks, and the
/// handle's `pending` does not count them: the collector counts its own.
///
/// Dropping a collector with requests pending does not cancel them: they
/// run, and their outcomes (and callbacks) are dropped, failures and
/// panics among them unlogged. Requests put with
/// [`put_with_context`](Self::put_with_context) go on adding theirs
/// through [`CollectorContext::add`](crate::CollectorContext::add), so a
/// tree of work runs to its end. [`ThreadPool::scope`] cannot end that way.
///
/// # Examples
///
/// ```
/// use callpool::ThreadPool;
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let pool = ThreadPool::new(4);
/// let mut squares = pool.collector::<u64>();
/// let seen = Rc::new(RefCell::new(Vec::new()));   // not Send: stays here
/// for n in 0..10u64 {
///     let seen = Rc::clone(&seen);
///     squares.put_then(|n: u64| n * n, n, move |sq| seen.borrow_mut().push(sq.unwrap()))?;
/// }
/// let mut total = 0;                               // a plain local
/// for (_, outcome) in squares.outcomes() {         // requests without a callback only
///     total += outcome?;
/// }
/// squares.put(|n: u64| n + 1, 1)?;
/// squares.wait_with(|_, outcome| total += outcome.unwrap());
/// assert_eq!(seen.borrow().len(), 10);
/// assert_eq!(total, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A collector is not `Send`: its callbacks need not be, so it stays on
/// the thread that made it.
///
/// ```compile_fail
/// let pool = callpool::ThreadPool::new(1);
/// let squares = pool.collector::<u64>();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(squares)); // `Collector` is not `Send`
/// });
/// ```
#[must_use = "a collector does nothing until requests are put through it"]
pub struct Collector<'a, T, E = Infallible> {
    pool: &'a ThreadPool,
    /// The requests' outcomes; `None` is a lookout's nudge
    /// (`crate::lookout::recv`).
    sender: flume::Sender<Option<Arrived<T, E>>>,
    receiver: flume::Receiver<Option<Arrived<T, E>>>,
    /// Requests put and not yet handled here. A set, not a count: a refused
    /// request handed back in its `PutError` still reports `Cancelled` here
    /// when it is dropped, and that outcome must be told apart.
    pending: HashSet<RequestId>,
    /// Requests added from workers (`CollectorContext::add`) whose ids are
    /// not in `pending` yet; made by the first `put_with_context`.
    added: Option<Arc<Added>>,
    callbacks: HashMap<RequestId, LocalCallback<'a, T, E>>,
    /// The streams' callbacks (`put_streaming_then`), apart from the
    /// others: a one-outcome request's look at `callbacks` stays what it
    /// would be without streams.
    each_callbacks: HashMap<RequestId, EachCallback<'a, T, E>>,
    /// The pool handle, if a blocked receive must look out for it
    /// (bounded results).
    home: Option<Arc<dyn Home>>,
    /// How long its receives look before they block (`crate::patience`).
    patience: Patience,
}

impl ThreadPool {
    /// A [`Collector`] on this handle for requests whose callables return
    /// `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut lengths = pool.collector::<usize>();
    /// for word in ["a", "bb", "ccc"] {
    ///     lengths.put(|w: &str| w.len(), word)?;
    /// }
    /// // Counted by the collector, not by the handle.
    /// assert_eq!((lengths.pending(), pool.pending()), (3, 0));
    /// let mut all: Vec<usize> = lengths.outcomes().map(|(_, n)| n.unwrap()).collect();
    /// all.sort_unstable(); // they come in the order they finished
    /// assert_eq!(all, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn collector<T>(&self) -> Collector<'_, T> {
        Collector::new(self)
    }

    /// A [`Collector`] for callables that return `Result<T, E>` (an `Err`
    /// comes back as [`TaskError::Failed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::num::ParseIntError;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut parsed = pool.fallible_collector::<u32, ParseIntError>();
    /// for text in ["12", "twelve"] {
    ///     parsed.put_fallible(|s: &str| s.parse::<u32>(), text)?;
    /// }
    /// let (mut numbers, mut failed) = (Vec::new(), 0);
    /// parsed.wait_with(|_, outcome| match outcome {
    ///     Ok(n) => numbers.push(n),
    ///     Err(TaskError::Failed(_)) => failed += 1,
    ///     Err(other) => panic!("{other}"),
    /// });
    /// assert_eq!((numbers, failed), (vec![12], 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fallible_collector<T, E>(&self) -> Collector<'_, T, E> {
        Collector::new(self)
    }
}

impl<'a, T, E> Collector<'a, T, E> {
    pub(crate) fn new(pool: &'a ThreadPool) -> Collector<'a, T, E> {
        let (sender, receiver) = flume::unbounded();
        Collector {
            pool,
            sender,
            receiver,
            pending: HashSet::new(),
            added: None,
            callbacks: HashMap::new(),
            each_callbacks: HashMap::new(),
            home: pool.home(),
            patience: Patience::new(),
        }
    }

    /// Requests put through this collector whose outcomes it has not
    /// handled yet, with those their callables added
    /// ([`CollectorContext::add`](crate::CollectorContext::add)), each
    /// from the moment it was added.
    ///
    /// A request stays pending until its outcome is handled here, not
    /// merely until it has run; a streaming one
    /// ([`put_streaming`](Self::put_streaming)) until its end has been
    /// taken here: its items do not count it out.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut results = pool.collector::<u32>();
    /// let (ran, has_run) = mpsc::channel();
    /// results.put(move |n: u32| { ran.send(()).unwrap(); n }, 1)?;
    /// has_run.recv()?;                      // the callable has run...
    /// assert_eq!(results.pending(), 1);     // ...but its outcome is not handled yet
    /// assert_eq!(results.wait_with(|_, _| {}), 1);
    /// assert_eq!(results.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending(&self) -> usize {
        self.pending.len() + self.added.as_ref().map_or(0, |added| added.len())
    }

    /// Counts in `pending` the requests added from workers since the last
    /// look: before each look at whether anything is pending, and after
    /// each outcome arrives, before it is counted out (see `Added`).
    fn count_added(&mut self) {
        if let Some(added) = &self.added {
            let pending = &mut self.pending;
            added.take(|id| {
                pending.insert(id);
            });
        }
    }
}

impl<'a, T, E> Collector<'a, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts `callable(arg)`; its outcome comes back to this collector.
    ///
    /// # Errors
    ///
    /// As [`ThreadPool::put_request`] (it blocks likewise on a full bounded
    /// queue); the request handed back has nowhere to report to any more.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{PutError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut squares = pool.collector::<u64>();
    /// let id = squares.put(|n: u64| n * n, 12)?;
    /// let (from, square) = squares.outcomes().next().expect("one is pending");
    /// assert_eq!((from, square?), (id, 144));
    ///
    /// pool.close()?;
    /// assert!(matches!(squares.put(|n: u64| n * n, 3), Err(PutError::ShutDown(_))));
    /// assert_eq!(squares.pending(), 0);     // a refused request is not pending
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
    {
        let arg = Apart::new(arg);
        self.put_work(move |_: &Context<'_>| Ok(callable(arg.into_inner())), None)
    }

    /// Puts a callable that returns a `Result`: an `Err(e)` comes back as
    /// [`TaskError::Failed(e)`](TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut checked = pool.fallible_collector::<u32, String>();
    /// let check = |n: u32| if n % 2 == 0 { Ok(n) } else { Err(format!("{n} is odd")) };
    /// let even = checked.put_fallible(check, 4)?;
    /// let odd = checked.put_fallible(check, 5)?;
    /// let mut outcomes: Vec<_> = checked.outcomes().collect();
    /// outcomes.sort_by_key(|(id, _)| *id == odd);
    /// assert_eq!(outcomes, [(even, Ok(4)), (odd, Err(TaskError::Failed("5 is odd".to_string())))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        let arg = Apart::new(arg);
        self.put_work(move |_: &Context<'_>| callable(arg.into_inner()), None)
    }

    /// Like [`put`](Self::put), but never blocks: on a full bounded queue
    /// ([`queue_capacity`](crate::Builder::queue_capacity)) it puts nothing
    /// and hands `callable` and `arg` back, uncalled, in the error, to put
    /// again once there is room, as
    /// [`ThreadPool::try_submit`] does for a ticket. For a loop that must
    /// not stop (with [`try_next_outcome`](Self::try_next_outcome)). On
    /// one of this pool's own workers a full queue refuses it too.
    ///
    /// # Errors
    ///
    /// A [`TrySubmitError`] holding `callable` and `arg`:
    /// [`is_full`](TrySubmitError::is_full) when the bounded queue has no
    /// room, [`is_shut_down`](TrySubmitError::is_shut_down) on a pool that
    /// was shut down. Nothing refused is pending here.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    /// let mut squares = pool.collector::<u64>();
    /// let first = squares.try_put(|n: u64| n * n, 3)?;
    /// let refused = squares.try_put(|n: u64| n * n, 4).unwrap_err();
    /// assert!(refused.is_full());
    /// assert_eq!(squares.pending(), 1);              // the refused one is not
    /// let (square, n) = refused.into_parts();
    /// pool.create_workers(1)?;
    /// assert_eq!(squares.next_outcome(), Some((first, Ok(9))));
    /// let again = squares.try_put(square, n)?;       // room again
    /// assert_eq!(squares.next_outcome(), Some((again, Ok(16))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_parts::<OneOutcome, _, _, _>(
            callable,
            arg,
            |callable: F, arg, _: &Context<'_>| Ok(callable(arg)),
            None,
        )
    }

    /// [`try_put`](Self::try_put) for a callable that returns a `Result`,
    /// as [`put_fallible`](Self::put_fallible) is for [`put`](Self::put).
    ///
    /// # Errors
    ///
    /// As [`try_put`](Self::try_put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut parsed = pool.fallible_collector::<u8, std::num::ParseIntError>();
    /// let id = parsed.try_put_fallible(|s: &str| s.parse::<u8>(), "300")?;
    /// assert!(matches!(parsed.next_outcome(), Some((from, Err(TaskError::Failed(_)))) if from == id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_fallible<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_parts::<OneOutcome, _, _, _>(
            callable,
            arg,
            |callable: F, arg, _: &Context<'_>| callable(arg),
            None,
        )
    }

    /// Like [`put`](Self::put), but waits at most `timeout` for room in a
    /// full bounded queue; then it puts nothing and hands `callable` and
    /// `arg` back, uncalled, in the error, as
    /// [`ThreadPool::submit_timeout`] does for a ticket. While it waits it
    /// handles results as [`ThreadPool::put_request_timeout`] does. On one
    /// of this pool's own workers it never waits: a full queue takes the
    /// request past its capacity, as [`put`](Self::put) does there.
    ///
    /// # Errors
    ///
    /// A [`TrySubmitError`] holding `callable` and `arg`:
    /// [`is_timed_out`](TrySubmitError::is_timed_out) when no room came in
    /// time, [`is_no_workers`](TrySubmitError::is_no_workers) when a full
    /// queue has no worker to empty it,
    /// [`is_shut_down`](TrySubmitError::is_shut_down) on a pool that was
    /// shut down. Nothing refused is pending here.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// // The worker waits on the gate; a second request fills the queue.
    /// pool.execute(move || { let _ = gate.recv(); })?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let mut squares = pool.collector::<u64>();
    /// let first = squares.put(|n: u64| n * n, 3)?;
    /// let refused = squares
    ///     .put_timeout(|n: u64| n * n, 4, Duration::from_millis(10))
    ///     .unwrap_err();
    /// assert!(refused.is_timed_out());
    /// assert_eq!(squares.pending(), 1);              // the refused one is not
    /// drop(open);
    /// assert_eq!(squares.next_outcome(), Some((first, Ok(9))));
    /// let (square, n) = refused.into_parts();
    /// let again = squares.put_timeout(square, n, Duration::from_secs(5))?;
    /// assert_eq!(squares.next_outcome(), Some((again, Ok(16))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_timeout<F, A>(
        &mut self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_parts::<OneOutcome, _, _, _>(
            callable,
            arg,
            |callable: F, arg, _: &Context<'_>| Ok(callable(arg)),
            Some(timeout),
        )
    }

    /// [`put_timeout`](Self::put_timeout) for a callable that returns a
    /// `Result`, as [`put_fallible`](Self::put_fallible) is for
    /// [`put`](Self::put).
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut parsed = pool.fallible_collector::<u8, std::num::ParseIntError>();
    /// let id = parsed.put_fallible_timeout(|s: &str| s.parse::<u8>(), "7", Duration::from_secs(5))?;
    /// assert_eq!(parsed.next_outcome(), Some((id, Ok(7))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_timeout<F, A>(
        &mut self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_parts::<OneOutcome, _, _, _>(
            callable,
            arg,
            |callable: F, arg, _: &Context<'_>| callable(arg),
            Some(timeout),
        )
    }

    /// `try_put`'s and `put_timeout`'s way (and their streams'):
    /// `call(callable, arg, cx)` on a worker, for a request that ends as
    /// `K` says, or the two handed back if the put is refused (at once, or
    /// after `timeout`).
    pub(crate) fn try_put_parts<K, F, A, G>(
        &mut self,
        callable: F,
        arg: A,
        call: G,
        timeout: Option<Duration>,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        K: Ending<T, E>,
        F: Send + 'static,
        A: Send + 'static,
        G: FnOnce(F, A, &Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    {
        // The parts stay reachable from here until the put has answered:
        // a refused request's come out again (a closure cannot be opened).
        // The argument is kept apart from the callable, so that dropped
        // unrun (cancelled), their two `Drop`s never unwind together.
        let parts = Arc::new(std::sync::Mutex::new(Some((callable, Apart::new(arg)))));
        let theirs = Arc::clone(&parts);
        let work = move |cx: &Context<'_>| {
            let (callable, arg) = take_parts(&theirs).expect("taken back only from a refused put");
            call(callable, arg.into_inner(), cx)
        };
        let (id, task) = sink_request_ending::<K, _, T, E>(work, &self.sender);
        // Counted before the put: a worker may finish it before the put
        // returns.
        self.pending.insert(id);
        let request = WorkRequest::from_task(task);
        match self.pool.put_request_within_or_panic(request, timeout) {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(refused)) => {
                self.pending.remove(&id);
                let (callable, arg) = take_parts(&parts).expect("a refused request never ran");
                let error = TrySubmitError::new(&refused, callable, arg.into_inner());
                // Emptied: dropped, it would send a `Cancelled` that
                // nobody waits for, and a producer retrying on a full
                // queue would leave one in the channel per refusal.
                disown(refused.into_request());
                Err(error)
            }
            Err((request, payload)) => {
                self.forget_unput(id, request);
                if let Some((callable, arg)) = take_parts(&parts) {
                    unwind::drop_contained("a callable that was not put", callable);
                    unwind::drop_contained("an argument that was not put", arg);
                }
                panic::resume_unwind(payload)
            }
        }
    }

    /// Puts `callable(arg)` with a callback for its outcome that stays on
    /// this thread: it runs when this collector handles the outcome (in
    /// [`outcomes`](Self::outcomes), [`wait_with`](Self::wait_with) or at
    /// the end of a [`scope`](ThreadPool::scope)).
    ///
    /// The callback holds what it borrows until the collector is dropped,
    /// so in a loop of `put_then` calls no two may hold one `&mut` local
    /// (E0499): take the outcomes with [`wait_with`](Self::wait_with), or
    /// share the local through a `RefCell`, as below.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); the callback is dropped unrun (a panic in its
    /// `Drop` is logged at error level and goes no further).
    ///
    /// # Examples
    ///
    /// The callbacks share a `RefCell` local (neither `Send` nor `'static`),
    /// and run on this thread:
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::cell::RefCell;
    ///
    /// let pool = ThreadPool::new(2);
    /// let here = std::thread::current().id();
    /// let sizes = RefCell::new(Vec::new());
    /// let mut files = pool.collector::<usize>();
    /// for name in ["a.txt", "bb.txt"] {
    ///     files.put_then(|name: &str| name.len(), name, |size| {
    ///         assert_eq!(std::thread::current().id(), here);
    ///         sizes.borrow_mut().push(size.unwrap());
    ///     })?;
    /// }
    /// assert_eq!(files.wait_with(|_, _| unreachable!("every request has a callback")), 2);
    /// sizes.borrow_mut().sort_unstable();
    /// assert_eq!(*sizes.borrow(), [5, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_then<F, A, C>(&mut self, callable: F, arg: A, then: C) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
        C: FnOnce(Result<T, TaskError<E>>) + 'a,
    {
        let arg = Apart::new(arg);
        self.put_work(
            move |_: &Context<'_>| Ok(callable(arg.into_inner())),
            Some(Box::new(then)),
        )
    }

    /// [`put_then`](Self::put_then) for a callable that returns a `Result`.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::cell::Cell;
    ///
    /// let pool = ThreadPool::new(1);
    /// let failures = Cell::new(0);
    /// let mut checks = pool.fallible_collector::<u32, String>();
    /// let check = |n: u32| if n % 2 == 0 { Ok(n) } else { Err(format!("{n} is odd")) };
    /// checks.put_fallible_then(check, 3, |outcome| {
    ///     assert_eq!(outcome, Err(TaskError::Failed("3 is odd".to_string())));
    ///     failures.set(failures.get() + 1);
    /// })?;
    /// checks.wait_with(|_, _| unreachable!("the request has a callback"));
    /// assert_eq!(failures.get(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        then: C,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        C: FnOnce(Result<T, TaskError<E>>) + 'a,
    {
        let arg = Apart::new(arg);
        self.put_work(
            move |_: &Context<'_>| callable(arg.into_inner()),
            Some(Box::new(then)),
        )
    }

    /// Puts `callable(cx, arg)`, whose [`CollectorContext`] `cx` can add
    /// more requests whose outcomes come back to this collector too: work
    /// that makes work, read as one stream of outcomes. Every request added
    /// counts as pending here from the moment it is added, so
    /// [`outcomes`](Self::outcomes) and [`wait_with`](Self::wait_with) end
    /// only once all of them, transitively, have been handled.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// A walk that finds its work as it goes: each number under 100 adds
    /// its double and its double plus one.
    ///
    /// ```
    /// use callpool::{CollectorContext, ThreadPool};
    ///
    /// fn grow(cx: &CollectorContext<'_, u32>, n: u32) -> u32 {
    ///     for next in [2 * n, 2 * n + 1] {
    ///         if next < 100 {
    ///             cx.add_with_context(grow, next).expect("the pool is open");
    ///         }
    ///     }
    ///     n
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut found = pool.collector::<u32>();
    /// found.put_with_context(grow, 1)?;
    /// let mut all: Vec<u32> = found.outcomes().map(|(_, n)| n.unwrap()).collect();
    /// all.sort_unstable();
    /// assert_eq!(all, (1..100).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_with_context<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(&CollectorContext<'_, T, E>, A) -> T + Send + 'static,
        A: Send + 'static,
    {
        let run = collector_context::with_context(callable, arg, self.sender.clone(), self.added());
        self.put_work(move |cx: &Context<'_>| Ok(run(cx)), None)
    }

    /// [`put_with_context`](Self::put_with_context) for a callable that
    /// returns a `Result`: an `Err(e)` comes back as
    /// [`TaskError::Failed(e)`](TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// A request per file that adds a request per line; a bad line, or an
    /// empty file, comes back as [`TaskError::Failed`]:
    ///
    /// ```
    /// use callpool::{CollectorContext, TaskError, ThreadPool};
    ///
    /// fn check_line(line: &str) -> Result<usize, String> {
    ///     line.parse().map_err(|_| format!("bad line {line:?}"))
    /// }
    ///
    /// fn check_file(cx: &CollectorContext<'_, usize, String>, text: &'static str) -> Result<usize, String> {
    ///     if text.is_empty() {
    ///         return Err("empty file".to_string());
    ///     }
    ///     for line in text.lines() {
    ///         cx.add_fallible(check_line, line).map_err(|e| e.to_string())?;
    ///     }
    ///     Ok(text.lines().count())
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut checks = pool.fallible_collector::<usize, String>();
    /// checks.put_fallible_with_context(check_file, "1\n2\nx")?;
    /// checks.put_fallible_with_context(check_file, "")?;
    /// let (mut counts, mut errors) = (Vec::new(), Vec::new());
    /// checks.wait_with(|_, outcome| match outcome {
    ///     Ok(n) => counts.push(n),
    ///     Err(TaskError::Failed(why)) => errors.push(why),
    ///     Err(other) => panic!("{other}"),
    /// });
    /// counts.sort_unstable();
    /// errors.sort_unstable();
    /// assert_eq!(counts, [1, 2, 3]); // two good lines, and a file of 3 lines
    /// assert_eq!(errors, ["bad line \"x\"", "empty file"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_with_context<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(&CollectorContext<'_, T, E>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
    {
        let run = collector_context::with_context(callable, arg, self.sender.clone(), self.added());
        self.put_work(run, None)
    }

    /// The channel this collector's requests send to.
    pub(crate) fn sender(&self) -> &flume::Sender<Option<Arrived<T, E>>> {
        &self.sender
    }

    /// Where requests added from workers leave their ids for this
    /// collector to count.
    pub(crate) fn added(&mut self) -> Arc<Added> {
        Arc::clone(self.added.get_or_insert_with(Arc::default))
    }

    /// Puts `work`, which a worker runs in its [`Context`]; its outcome
    /// comes back here (to `then`, if given).
    pub(crate) fn put_work<W>(
        &mut self,
        work: W,
        then: Option<LocalCallback<'a, T, E>>,
    ) -> Result<RequestId, PutError>
    where
        W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'static,
    {
        self.put_ending::<OneOutcome, W>(work, then)
    }

    /// [`put_work`](Self::put_work) for a request that ends as `K` says
    /// (one outcome, or a stream's end after its items).
    pub(crate) fn put_ending<K, W>(
        &mut self,
        work: W,
        then: Option<LocalCallback<'a, T, E>>,
    ) -> Result<RequestId, PutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    {
        self.put_kept::<K, W>(work, then.map(Then::Once), PutMode::Block)
    }

    /// [`put_ending`](Self::put_ending) with no callback kept here, that
    /// waits for room as `mode` says (`ThreadPool::try_install`'s way).
    pub(crate) fn put_ending_in<K, W>(
        &mut self,
        work: W,
        mode: PutMode,
    ) -> Result<RequestId, PutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    {
        self.put_kept::<K, W>(work, None, mode)
    }

    /// Puts `work`, a stream whose items, and ending error if any, go to
    /// `each` here; `each` is dropped once the stream's end is taken.
    pub(crate) fn put_streamed_each<W>(
        &mut self,
        work: W,
        each: EachCallback<'a, T, E>,
    ) -> Result<RequestId, PutError>
    where
        W: FnOnce(&Context<'_>) -> Result<(), E> + Send + 'static,
    {
        self.put_kept::<Streamed, W>(work, Some(Then::Each(each)), PutMode::Block)
    }

    /// [`put_ending`](Self::put_ending) with what to keep here for the
    /// request's outcomes, if anything, and how long to wait for room.
    fn put_kept<K, W>(
        &mut self,
        work: W,
        then: Option<Then<'a, T, E>>,
        mode: PutMode,
    ) -> Result<RequestId, PutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'static,
    {
        let (id, task) = sink_request_ending::<K, W, T, E>(work, &self.sender);
        // Counted before the put: a worker may finish it before the put
        // returns.
        self.pending.insert(id);
        match self
            .pool
            .put_request_in_or_panic(WorkRequest::from_task(task), mode)
        {
            Ok(Ok(id)) => {
                match then {
                    Some(Then::Once(then)) => {
                        self.callbacks.insert(id, then);
                    }
                    Some(Then::Each(each)) => {
                        self.each_callbacks.insert(id, each);
                    }
                    None => {}
                }
                Ok(id)
            }
            Ok(Err(err)) => {
                // No longer ours: the `Cancelled` it reports when the
                // request in the error is dropped is ignored on arrival.
                self.pending.remove(&id);
                // The callback is dropped uncalled, here: contained, as the
                // refused request's own values are, so that its `Drop`
                // cannot unwind through the put and take the error (and
                // the request in it) with it.
                unwind::drop_contained("a collector callback that was not put", then);
                Err(err)
            }
            Err((request, payload)) => {
                self.forget_unput(id, request);
                unwind::drop_contained("a collector callback that was not put", then);
                panic::resume_unwind(payload)
            }
        }
    }

    /// For a put that one of the handle's callbacks interrupted with a
    /// panic while it waited for room: nothing was put, and the caller lets
    /// the panic go on. The request leaves the pending set (left there, its
    /// `Cancelled` would come out of `outcomes` under an id no put
    /// returned) and is disowned, so it sends nothing to the channel.
    fn forget_unput(&mut self, id: RequestId, request: WorkRequest) {
        self.pending.remove(&id);
        log::warn!("callpool: request {id} was not put: a callback panicked while the put waited");
        disown(request);
    }

    /// Blocks until the next outcome of a request put here arrives and
    /// handles it: runs its callback if it has one (and returns
    /// `Some(None)`), or returns it. `None` once nothing is pending.
    fn next_arrival(&mut self) -> Option<Option<Arrival<T, E>>> {
        let taken = loop {
            self.count_added();
            if self.pending.is_empty() {
                return None;
            }
            // We hold a sender ourselves, so this only returns with a
            // piece; every pending request sends exactly one end (it
            // settles, or is cancelled, or is dropped unrun), a stream's
            // after its items. Meanwhile this thread
            // makes room for a worker stuck on the handle's full result
            // queue: the request waited for may be queued behind it.
            let arrived = match self.help() {
                Some(Some(arrived)) => arrived,
                // A nudge, or requests run here: look again.
                Some(None) => continue,
                None => lookout::recv(
                    &self.receiver,
                    &self.sender,
                    self.home.as_slice(),
                    &self.patience,
                )?,
            };
            let (id, piece) = arrived.open();
            self.count_added();
            // A pending request's outcome first, matched in place; the
            // rest through `take_piece` (an outcome not pending is dropped
            // there, contained). A stream's end with nothing to hand on,
            // or what was dropped: look again.
            match piece {
                Piece::End(outcome) if self.pending.remove(&id) => break ((id, outcome), true),
                piece => {
                    if let Some(taken) = self.take_piece(id, piece) {
                        break taken;
                    }
                }
            }
        };
        Some(self.handle(taken))
    }

    /// On one of its pool's workers (a collector or a scope inside a
    /// callable), before this thread blocks for an outcome: what has
    /// arrived (`Some(None)` for a nudge), or else runs here one of this
    /// collector's requests that no worker has started (`Some(None)` if it
    /// ran one; the others stay queued for free workers). Blocking with
    /// them queued could wait for ever: every other worker may be busy, or
    /// waiting so too. `None`: nothing to do but block (only for requests
    /// that other workers are running).
    fn help(&self) -> Option<Option<Arrived<T, E>>> {
        if !self.pool.on_worker_thread() {
            return None;
        }
        if let Ok(arrived) = self.receiver.try_recv() {
            return Some(arrived);
        }
        self.run_one_here().then_some(None)
    }

    /// Runs here one of this collector's requests that no worker has
    /// started, if this is one of its pool's workers
    /// (`pool::worker::help`); whether it ran one.
    fn run_one_here(&self) -> bool {
        let pending = &self.pending;
        self.pool.help(|job| pending.contains(&job.id())) > 0
    }

    /// Handles an outcome of `id`, a request pending here until now (or
    /// still, for a stream's item): runs its callback if it has one (and
    /// returns `None`), or returns it.
    ///
    /// Called in a timed request's callback, a callback run here reads no
    /// timing (`hidden`): its request has none.
    fn handle(&mut self, ((id, outcome), ends): Taken<T, E>) -> Option<Arrival<T, E>> {
        if !ends {
            // A stream's item: its callback stays for the next item, and
            // for the end.
            return match self.each_callbacks.get_mut(&id) {
                Some(each) => {
                    crate::request::timing::hidden(|| each(outcome));
                    None
                }
                None => Some((id, outcome)),
            };
        }
        // Looked at first: a map's `remove` hashes the id even when the
        // map is empty, as it is for requests put without a callback.
        if !self.callbacks.is_empty() {
            if let Some(then) = self.callbacks.remove(&id) {
                crate::request::timing::hidden(|| then(outcome));
                return None;
            }
        }
        if !self.each_callbacks.is_empty() {
            if let Some(mut each) = self.each_callbacks.remove(&id) {
                crate::request::timing::hidden(|| each(outcome));
                return None;
            }
        }
        Some((id, outcome))
    }

    /// Handles the outcomes that have arrived, without waiting for more:
    /// hands each of a request put without a callback to `each`, and runs
    /// the others' callbacks; returns how many outcomes were handled (0
    /// when none has arrived). For a loop that does other work between
    /// looks, such as a frame loop; [`wait_with`](Self::wait_with) and
    /// [`outcomes`](Self::outcomes) block instead.
    ///
    /// On one of its pool's own workers (a collector inside a callable),
    /// when nothing has arrived it first runs here one of its requests
    /// that no worker has started, as `wait_with` does, and then handles
    /// that one's outcome: a loop of `poll_with` there never waits for a
    /// worker that is busy, or looping too. Elsewhere, when nothing has
    /// arrived and a worker is stuck on the handle's full result queue
    /// (see [`Builder::result_capacity`](crate::Builder::result_capacity)),
    /// it handles the handle's ready results here, running their
    /// callbacks, as `wait_with` does, so that the worker goes on.
    ///
    /// # Panics
    ///
    /// A panic in `each` or a callback passes through; the outcomes not
    /// yet handled stay for the next call. So does a panic in one of the
    /// handle's own callbacks run here.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let total = Rc::new(RefCell::new(0));   // neither Send nor Sync
    /// let mut results = pool.collector::<u64>();
    /// for n in 1..=10u64 {
    ///     let total = Rc::clone(&total);
    ///     results.put_then(|n: u64| n * n, n, move |sq| *total.borrow_mut() += sq.unwrap())?;
    /// }
    /// while results.pending() > 0 {
    ///     // ... draw a frame, handle input ...
    ///     results.poll_with(|_, _| unreachable!("every request has a callback"));
    /// #   std::thread::yield_now();
    /// }
    /// assert_eq!(*total.borrow(), 385);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_with(&mut self, mut each: impl FnMut(RequestId, Result<T, TaskError<E>>)) -> usize {
        let handled = self.take_arrived(&mut each);
        if handled > 0 || self.pending.is_empty() {
            return handled;
        }
        if !self.unblock_one() {
            return 0;
        }
        self.take_arrived(&mut each)
    }

    /// For a look that found nothing of its own: whether it moved one of
    /// this collector's requests on, so that a loop of looks never spins
    /// for ever. On a worker of its own pool the requests may be queued
    /// behind this very callable (one worker, or every other one busy):
    /// one of them runs here, as a blocking wait runs it. Elsewhere they
    /// may be queued behind a worker stuck on the handle's full result
    /// queue: room is made there, as a blocking wait makes it (what the
    /// freed worker runs next arrives for a later look).
    fn unblock_one(&self) -> bool {
        if self.pool.on_worker_thread() {
            self.run_one_here()
        } else {
            self.home.as_ref().is_some_and(|home| home.make_room())
        }
    }

    /// Handles what has arrived, without waiting: [`poll_with`](Self::poll_with)'s
    /// look at the receiver.
    fn take_arrived(&mut self, each: &mut impl FnMut(RequestId, Result<T, TaskError<E>>)) -> usize {
        let mut handled = 0;
        self.count_added();
        while !self.pending.is_empty() {
            let Some(message) = self.take_message() else {
                break;
            };
            let Some(taken) = message else {
                continue;
            };
            handled += 1;
            if let Some((id, outcome)) = self.handle(taken) {
                each(id, outcome);
            }
        }
        handled
    }

    /// What has arrived, up to the first outcome of a request put without
    /// a callback, which it returns; the callbacks of the others run on
    /// the way. `None`: no such outcome has arrived yet.
    fn next_arrived(&mut self) -> Option<Arrival<T, E>> {
        self.count_added();
        while !self.pending.is_empty() {
            let Some(taken) = self.take_message()? else {
                continue;
            };
            if let Some(arrival) = self.handle(taken) {
                return Some(arrival);
            }
        }
        None
    }

    /// One message off the receiver, without waiting: `None` when nothing
    /// is there, `Some(None)` for one that is not a pending request's
    /// outcome, or the outcome of one that stops being pending here.
    fn take_message(&mut self) -> Option<Option<Taken<T, E>>> {
        let message = self.receiver.try_recv().ok()?;
        // `None`: a lookout's nudge, for a blocked receive only.
        let Some(arrived) = message else {
            return Some(None);
        };
        let (id, piece) = arrived.open();
        self.count_added();
        Some(self.take_piece(id, piece))
    }

    /// Counts what request `id` sent: an outcome counts it out and is
    /// returned; a stream's item is returned and leaves it pending; a
    /// stream's end counts it out with nothing to return, and drops the
    /// stream's callback, if it has one (a panic in that drop passes
    /// through, as one in the callback would). Called after
    /// `count_added`, so `id` is found pending if it was added. `None`
    /// too for what a request not pending sent: a refused put's, dropped
    /// (see `put_work`, and `not_ours`).
    fn take_piece(&mut self, id: RequestId, piece: Piece<T, E>) -> Option<Taken<T, E>> {
        match piece {
            Piece::End(outcome) => {
                if self.pending.remove(&id) {
                    return Some(((id, outcome), true));
                }
                not_ours(outcome);
            }
            Piece::Item(item) => {
                if self.pending.contains(&id) {
                    return Some(((id, Ok(item)), false));
                }
                not_ours(item);
            }
            Piece::Done => {
                if self.pending.remove(&id) && !self.each_callbacks.is_empty() {
                    drop(self.each_callbacks.remove(&id));
                }
            }
        }
        None
    }

    /// Iterates over the outcomes of the requests put without a callback,
    /// in the order they finish, running the callbacks of the others as
    /// their outcomes arrive; ends when nothing is pending. Blocks in
    /// `next` (woken by the workers, never polling).
    ///
    /// # Examples
    ///
    /// The first outcome out is the first to finish: here the second
    /// request, since the first waits for a gate opened only once the second
    /// is out.
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let (open, gate) = mpsc::channel::<()>();
    /// let mut results = pool.collector::<&str>();
    /// let slow = results.put(move |_: ()| { let _ = gate.recv(); "slow" }, ())?;
    /// let fast = results.put(|_: ()| "fast", ())?;
    /// let mut outcomes = results.outcomes();
    /// assert_eq!(outcomes.next(), Some((fast, Ok("fast"))));
    /// drop(open);
    /// assert_eq!(outcomes.next(), Some((slow, Ok("slow"))));
    /// assert_eq!(outcomes.next(), None); // nothing pending
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn outcomes(&mut self) -> Outcomes<'_, 'a, T, E> {
        Outcomes { collector: self }
    }

    /// The next outcome of a request put without a callback, in the order
    /// they finish, as [`outcomes`](Self::outcomes)`().next()` gives it,
    /// but without keeping the collector borrowed: the loop that takes the
    /// outcomes can put more requests here as each one comes back (a crawl
    /// that puts the links each page found). Blocks until one arrives,
    /// running the callbacks of requests put with one meanwhile; `None`
    /// once nothing is pending.
    ///
    /// With [`pending`](Self::pending), it keeps at most `k` requests in
    /// flight while the loop's body finds the next inputs, which the
    /// input iterator of [`ThreadPool::as_completed`] cannot (it is pulled
    /// inside `next`, before the body runs).
    ///
    /// It returns only for outcomes of requests put without a callback: a
    /// callback runs inside it, and it goes on waiting. So in a loop that
    /// keeps `k` in flight, put the requests with [`put`](Self::put) and
    /// act on their outcomes in the loop: with
    /// [`put_then`](Self::put_then), the loop refills only once every
    /// request in flight has ended, and if the callbacks are what find the
    /// next inputs, `None` ("nothing pending") may come while they wait in
    /// the loop's list.
    ///
    /// # Panics
    ///
    /// As [`outcomes`](Self::outcomes): a panic in a callback run here
    /// passes through; the outcomes not yet handled stay for the next call.
    ///
    /// # Examples
    ///
    /// A walk over a graph, at most 2 nodes in flight, each visit
    /// returning the node's neighbours for the loop to put:
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::collections::HashSet;
    ///
    /// fn neighbours(n: u32) -> Vec<u32> {
    ///     [2 * n, 2 * n + 1].into_iter().filter(|&m| m < 20).collect()
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut visits = pool.collector::<Vec<u32>>();
    /// let mut seen = HashSet::from([1]);
    /// let mut frontier = vec![1];
    /// loop {
    ///     while visits.pending() < 2 {
    ///         let Some(n) = frontier.pop() else { break };
    ///         visits.put(neighbours, n)?;
    ///     }
    ///     let Some((_, found)) = visits.next_outcome() else { break }; // nothing in flight
    ///     frontier.extend(found?.into_iter().filter(|&m| seen.insert(m)));
    /// }
    /// assert_eq!(seen.len(), 19); // 1..=19
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_outcome(&mut self) -> Option<Arrival<T, E>> {
        self.outcomes().next()
    }

    /// [`next_outcome`](Self::next_outcome) without blocking, for a loop
    /// that must not stop (a frame loop) and puts more as outcomes come:
    /// [`Poll::Ready`]`(Some(outcome))` is the next outcome of a request
    /// put without a callback, `Ready(None)` says nothing is pending (what
    /// `next_outcome` says with `None`), and [`Poll::Pending`] says
    /// "nothing yet": look again later (nothing wakes the caller). The
    /// callbacks of requests put with one run here as their outcomes are
    /// found, as in [`poll_with`](Self::poll_with), which hands the
    /// outcomes to a closure instead and so cannot put from it.
    ///
    /// On one of its pool's own workers, when nothing has arrived, it
    /// first runs here one of its requests that no worker has started,
    /// and elsewhere it makes room on the handle's full result queue for a
    /// worker stuck there, as `poll_with` does.
    ///
    /// # Panics
    ///
    /// As [`poll_with`](Self::poll_with): a panic in a callback passes
    /// through; the outcomes not yet handled stay for the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::task::Poll;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut counts = pool.collector::<u32>();
    /// counts.put(|n: u32| n, 3)?;
    /// let mut total = 0;
    /// 'frames: loop {
    ///     // ... draw a frame, handle input ...
    ///     loop {
    ///         match counts.try_next_outcome() {
    ///             // Each outcome above 0 puts one more, one smaller.
    ///             Poll::Ready(Some((_, n))) => {
    ///                 let n = n?;
    ///                 total += n;
    ///                 if n > 0 {
    ///                     counts.put(|n: u32| n, n - 1)?;
    ///                 }
    ///             }
    ///             Poll::Ready(None) => break 'frames, // nothing pending
    ///             Poll::Pending => break,             // nothing more this frame
    ///         }
    ///     }
    /// #   std::thread::yield_now();
    /// }
    /// assert_eq!(total, 3 + 2 + 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next_outcome(&mut self) -> Poll<Option<Arrival<T, E>>> {
        if let Some(arrival) = self.next_arrived() {
            return Poll::Ready(Some(arrival));
        }
        if self.pending.is_empty() {
            return Poll::Ready(None);
        }
        if self.unblock_one() {
            if let Some(arrival) = self.next_arrived() {
                return Poll::Ready(Some(arrival));
            }
        }
        if self.pending.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// Blocks until nothing is pending, handing each outcome of a request
    /// put without a callback to `each`, and running the others'
    /// callbacks; returns how many outcomes were handled (each item a
    /// stream emitted counts as one; its return, which hands nothing on,
    /// does not).
    ///
    /// # Panics
    ///
    /// A panic in `each` or a callback passes through; the outcomes not
    /// yet handled stay for the next call. So does a panic in one of the
    /// handle's own callbacks, which run here while a worker is stuck on
    /// its full result queue (see
    /// [`Builder::result_capacity`](crate::Builder::result_capacity)).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::cell::Cell;
    ///
    /// let pool = ThreadPool::new(2);
    /// let called_back = Cell::new(0);
    /// let mut jobs = pool.collector::<u32>();
    /// for n in 1..=3 {
    ///     jobs.put(|n: u32| n * 10, n)?;
    /// }
    /// jobs.put_then(|n: u32| n, 7, |seven| {
    ///     assert_eq!(seven, Ok(7));
    ///     called_back.set(called_back.get() + 1);
    /// })?;
    /// let mut sum = 0;
    /// let handled = jobs.wait_with(|_, tens| sum += tens.unwrap());
    /// assert_eq!(handled, 4); // three handed to `each`, one to its callback
    /// assert_eq!((sum, called_back.get(), jobs.pending()), (60, 1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_with(&mut self, mut each: impl FnMut(RequestId, Result<T, TaskError<E>>)) -> usize {
        let mut handled = 0;
        while let Some(arrival) = self.next_arrival() {
            handled += 1;
            if let Some((id, outcome)) = arrival {
                each(id, outcome);
            }
        }
        handled
    }
}

impl<T, E> Collector<'_, T, E>
where
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
{
    /// Handles everything pending, as a scope ends: callbacks run, other
    /// outcomes are dropped (errors logged). A panicking callback does not
    /// stop the others; the first panic is returned. An unread outcome is
    /// a user value the scope lets go of, as a dropped collector does: a
    /// panic in its `Drop` is contained and logged, not the scope's.
    pub(crate) fn drain(&mut self) -> Result<(), Box<dyn std::any::Any + Send>> {
        let mut first_panic = FirstPanic::default();
        while !self.pending.is_empty() {
            first_panic.catch("a scope's callback", || {
                self.wait_with(|id, outcome| {
                    if let Err(err) = &outcome {
                        log::error!(
                            "callpool: scoped request {id} failed and has no callback: {err:?}"
                        );
                    }
                    unwind::drop_contained("a scope's unread outcome", outcome);
                });
            });
        }
        first_panic.into_inner().map_or(Ok(()), Err)
    }
}

/// A collector dropped with requests pending: the callbacks given with
/// them never run. They are user values, and may panic as they are
/// dropped: each goes on its own, contained, so that one panic neither
/// escapes the drop nor leaves the rest to drop glue (where a second one
/// would abort). The outcomes left in the channel are contained by
/// `Arrived` wherever the channel goes.
impl<T, E> Drop for Collector<'_, T, E> {
    fn drop(&mut self) {
        for (_, then) in self.callbacks.drain() {
            unwind::drop_contained("a collector callback that never ran", then);
        }
        for (_, each) in self.each_callbacks.drain() {
            unwind::drop_contained("a stream's collector callback", each);
        }
    }
}

/// The iterator of [`Collector::outcomes`]. It runs the collector's
/// callbacks, so, like the collector, it is not `Send`:
///
/// ```compile_fail
/// let pool = callpool::ThreadPool::new(1);
/// let mut squares = pool.collector::<u64>();
/// let outcomes = squares.outcomes();
/// std::thread::scope(|s| {
///     s.spawn(move || outcomes.count()); // `Outcomes` is not `Send`
/// });
/// ```
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Outcomes<'c, 'a, T, E> {
    collector: &'c mut Collector<'a, T, E>,
}

impl<T, E> Iterator for Outcomes<'_, '_, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    type Item = Arrival<T, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.collector.next_arrival()? {
                Some(item) => return Some(item),
                None => continue,
            }
        }
    }
}

impl<T, E> fmt::Debug for Collector<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `pending()`: requests added from workers count too.
        let added = self.added.as_ref().map_or(0, |added| added.len());
        f.debug_struct("Collector")
            .field("pending", &(self.pending.len() + added))
            .field(
                "with_callbacks",
                &(self.callbacks.len() + self.each_callbacks.len()),
            )
            .finish_non_exhaustive()
    }
}

impl<T, E> fmt::Debug for Outcomes<'_, '_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcomes")
            .field("pending", &self.collector.pending())
            .finish()
    }
}

/// Drops what a request not pending here sent: a refused put's request,
/// which its error hands back and which may be put again (on another
/// pool), still sends here. Its values are user values, the collector's
/// to let go of: contained, so that a stranger's `Drop` does not panic out
/// of this collector's reading.
#[cold]
fn not_ours<V>(value: V) {
    unwind::drop_contained("what a request not pending on its collector sent", value);
}

/// Lets go of a request that was never put, without the `Cancelled` its
/// drop would send to the collector (`Task::disown`); what it holds is
/// dropped contained.
fn disown(request: WorkRequest) {
    if let TaskBox::Boxed(mut task) = request.into_task() {
        task.task.disown();
        unwind::drop_contained("a request that was not put", task);
    }
}

/// A `try_put`'s parts, taken once: by the worker that runs the request,
/// or by the put that was refused. No user code runs under the lock, so a
/// poisoned one still holds them.
fn take_parts<F, A>(parts: &std::sync::Mutex<Option<(F, Apart<A>)>>) -> Option<(F, Apart<A>)> {
    parts.lock().unwrap_or_else(|e| e.into_inner()).take()
}
