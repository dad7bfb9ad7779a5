//! Streaming into a collector: [`Collector::put_streaming`] and
//! [`CollectorContext::add_streaming`] (their fallible forms, and the
//! collector's `try_`, `_timeout` and `_then` ones) put a request whose callable emits any
//! number of the collector's items through a [`CollectorEmitter`]. Each item goes to the collector's
//! channel as it is emitted; the request's end follows its last item, and
//! only the end counts it out of the collector's pending set (protocol:
//! `docs/design.md`, "Collectors and scopes").

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::collector::Collector;
use crate::collector_context::{Added, CollectorContext};
use crate::error::{PutError, TrySubmitError};
use crate::request::context::Closed;
use crate::request::{Context, RequestId, TaskError};
use crate::ticket::{send_item, Arrived, Streamed};
use crate::unwind::Apart;

/// What a streaming request put through a collector is given
/// ([`Collector::put_streaming`], [`CollectorContext::add_streaming`]):
/// [`emit`](Self::emit), which sends one item to the collector, and,
/// through the [`CollectorContext`] it dereferences to, `add` and its
/// kin, which put more requests whose outcomes come back to the same
/// collector (a crawl step that streams what it found and adds a request
/// per link), and the worker's [`Context`].
///
/// It belongs to the worker running the request: a `&CollectorEmitter`
/// cannot go to another thread (so one request's items come out in the
/// order it emitted them).
///
/// ```compile_fail
/// use callpool::{Closed, CollectorEmitter, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// let mut numbers = pool.collector::<u32>();
/// numbers.put_streaming(|n: u32, out: &CollectorEmitter<'_, u32>| {
///     std::thread::scope(|s| { s.spawn(|| out.emit(n)); }); // `&CollectorEmitter` is not `Send`
///     Ok::<(), Closed>(())
/// }, 1)?;
/// # Ok::<(), callpool::PutError>(())
/// ```
pub struct CollectorEmitter<'c, T, E = Infallible> {
    cx: CollectorContext<'c, T, E>,
}

impl<'c, T, E> CollectorEmitter<'c, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Sends `item` to the collector: it comes out of
    /// [`outcomes`](Collector::outcomes) (and `next_outcome`, `wait_with`,
    /// `poll_with`) as `(id, Ok(item))`, after this request's earlier
    /// items, as soon as the collector's thread takes it; the request
    /// stays pending there. It never blocks: a collector's channel is
    /// unbounded (see [`Collector::put_streaming`]).
    ///
    /// # Errors
    ///
    /// [`Closed`] when the collector has been dropped: nobody will read
    /// the item (it is dropped), so the callable may as well stop.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut words = pool.collector::<&str>();
    /// let id = words.put_streaming(|text: &'static str, out: &CollectorEmitter<'_, &str>| {
    ///     for word in text.split(' ') {
    ///         out.emit(word)?;
    ///     }
    ///     Ok(())
    /// }, "one two three")?;
    /// let all: Vec<_> = words.outcomes().collect();
    /// assert_eq!(all, [(id, Ok("one")), (id, Ok("two")), (id, Ok("three"))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Once the collector is gone, `emit` says so:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = mpsc::channel::<()>();
    /// let (tx, rx) = mpsc::channel();
    /// let mut numbers = pool.collector::<u32>();
    /// numbers.put_streaming(move |_: (), out: &CollectorEmitter<'_, u32>| {
    ///     let _ = gate.recv();
    ///     tx.send(out.emit(1)).unwrap();
    ///     Ok(())
    /// }, ())?;
    /// drop(numbers); // nobody is left to read its items
    /// drop(open);
    /// assert_eq!(rx.recv()?, Err(Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit(&self, item: T) -> Result<(), Closed> {
        send_item(self.cx.outcomes, self.cx.id(), item)
    }
}

impl<'c, T, E> Deref for CollectorEmitter<'c, T, E> {
    type Target = CollectorContext<'c, T, E>;

    fn deref(&self) -> &CollectorContext<'c, T, E> {
        &self.cx
    }
}

impl<T, E> fmt::Debug for CollectorEmitter<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectorEmitter")
            .field("id", &self.cx.id())
            .finish_non_exhaustive()
    }
}

/// The work of a streaming request: `callable(arg, out)` on the worker,
/// `out` emitting to the collector's channel and adding through its ids
/// of added requests. `'env` is `'static` but for a scope's.
pub(crate) fn streaming<'env, F, A, R, T, E>(
    callable: F,
    arg: A,
    outcomes: flume::Sender<Option<Arrived<T, E>>>,
    added: Arc<Added>,
) -> impl FnOnce(&Context<'_>) -> R + Send + 'env
where
    F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> R + Send + 'env,
    A: Send + 'env,
    R: 'env,
    T: Send + 'static,
    E: Send + 'static,
{
    let arg = Apart::new(arg);
    let call = emitting(outcomes, added);
    move |cx: &Context<'_>| call(callable, arg.into_inner(), cx)
}

/// [`streaming`] with the callable and its argument given only on the
/// worker: for a put that keeps them apart from its work until a worker
/// takes them, and hands them back if refused (`try_put_streaming`).
fn emitting<'env, F, A, R, T, E>(
    outcomes: flume::Sender<Option<Arrived<T, E>>>,
    added: Arc<Added>,
) -> impl FnOnce(F, A, &Context<'_>) -> R + Send + 'env
where
    F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> R + 'env,
    A: 'env,
    R: 'env,
    T: Send + 'static,
    E: Send + 'static,
{
    move |callable: F, arg: A, cx: &Context<'_>| {
        let out = CollectorEmitter {
            cx: CollectorContext::new(cx, &outcomes, &added),
        };
        callable(arg, &out)
    }
}

/// An infallible stream's return: `Err(Closed)` (its collector is gone,
/// or it passed on a handle's `Emitter` saying so) ends it as `Ok` does.
pub(crate) fn stopped<E>(_: Result<(), Closed>) -> Result<(), E> {
    Ok(())
}

impl<'a, T, E> Collector<'a, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts `callable(arg, out)`, a request that emits any number of this
    /// collector's items (none included) through `out`, a
    /// [`CollectorEmitter`], instead of returning one: the
    /// ThreadDistributor task that yields several results into one queue.
    ///
    /// Each item comes out of [`outcomes`](Self::outcomes),
    /// [`next_outcome`](Self::next_outcome),
    /// [`wait_with`](Self::wait_with) and [`poll_with`](Self::poll_with)
    /// as `(id, Ok(item))`, `id` being this request's, as soon as this
    /// thread takes it, in the order the callable emitted it (items of
    /// different requests interleave as they come). The request counts as
    /// pending until its callable has returned and that end has been
    /// taken here, so those loops never end while it can still emit:
    ///
    /// * a return (`Ok(())`, or `Err(Closed)`, which `emit`'s `?` passes
    ///   on once the collector is gone) hands nothing more on;
    /// * a panic part-way hands on the items emitted before it, then
    ///   `(id, Err(TaskError::Panicked(..)))` once;
    /// * ended before it started (by
    ///   [`shutdown_now`](crate::ThreadPool::shutdown_now), or discarded
    ///   with the pool's queue), it emits nothing and ends as
    ///   `(id, Err(TaskError::Cancelled))`, as any request of a collector
    ///   does ([`ThreadPool::cancel`](crate::ThreadPool::cancel) does not
    ///   reach a collector's requests).
    ///
    /// `out` dereferences to a [`CollectorContext`], so the callable can
    /// also [`add`](CollectorContext::add) requests to this collector,
    /// streaming ones included
    /// ([`add_streaming`](CollectorContext::add_streaming)): each counts
    /// as pending from the moment it is added.
    ///
    /// Every item and every error counts as an outcome handled in what
    /// [`wait_with`](Self::wait_with) and [`poll_with`](Self::poll_with)
    /// return; a stream's return, which hands nothing on, does not.
    ///
    /// Back-pressure: none. A collector's channel is unbounded: its
    /// outcomes never go through the handle's result queue, so
    /// [`Builder::result_capacity`](crate::Builder::result_capacity) does
    /// not bound them, nor a stream's items, and `emit` never blocks. A
    /// callable that emits faster than this thread reads piles its items
    /// up in memory: emit fewer, larger items (a `Vec` per batch), or
    /// hold the callable back yourself.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// Each request emits the multiples of its number below 20; one emits
    /// none:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// fn multiples(n: u32, out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
    ///     for m in (n..20).step_by(n as usize) {
    ///         out.emit(m)?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut found = pool.collector::<u32>();
    /// let sevens = found.put_streaming(multiples, 7)?;
    /// let none = found.put_streaming(multiples, 25)?;
    /// let mut by_request = std::collections::HashMap::new();
    /// for (id, m) in found.outcomes() {
    ///     by_request.entry(id).or_insert_with(Vec::new).push(m?);
    /// }
    /// assert_eq!(by_request[&sevens], [7, 14]); // in the order emitted
    /// assert!(!by_request.contains_key(&none));  // it ended, handing nothing on
    /// assert_eq!(found.pending(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A crawl: each page streams the words it found and adds a streaming
    /// request per link, all read as one iterator:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// // Page n links to 2n and 2n+1 below 32, and holds the words "n:a", "n:b".
    /// fn crawl(page: u32, out: &CollectorEmitter<'_, String>) -> Result<(), Closed> {
    ///     for link in [2 * page, 2 * page + 1] {
    ///         if link < 32 {
    ///             out.add_streaming(crawl, link).expect("the pool is open");
    ///         }
    ///     }
    ///     for word in ["a", "b"] {
    ///         out.emit(format!("{page}:{word}"))?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let mut words = pool.collector::<String>();
    /// words.put_streaming(crawl, 1)?;
    /// assert_eq!(words.outcomes().count(), 2 * 31); // pages 1 to 31
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_streaming<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
    {
        let run = streaming(callable, arg, self.sender().clone(), self.added());
        self.put_ending::<Streamed, _>(move |cx: &Context<'_>| stopped(run(cx)), None)
    }

    /// [`put_streaming`](Self::put_streaming) for a callable that may
    /// fail: an `Err(e)` part-way hands on the items emitted before it,
    /// then `(id, Err(TaskError::Failed(e)))` once, and ends the request;
    /// `Ok(())` hands nothing more on.
    ///
    /// `emit`'s [`Closed`] (the collector is gone) is not an `E`: map it
    /// to one, or stop with `Ok(())`, as below.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, TaskError, ThreadPool};
    ///
    /// fn parse(text: &'static str, out: &CollectorEmitter<'_, u32, String>) -> Result<(), String> {
    ///     for word in text.split(' ') {
    ///         let n = word.parse().map_err(|_| format!("bad number {word:?}"))?;
    ///         if out.emit(n).is_err() {
    ///             return Ok(()); // the collector is gone
    ///         }
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut numbers = pool.fallible_collector::<u32, String>();
    /// let id = numbers.put_fallible_streaming(parse, "1 2 x 4")?;
    /// let all: Vec<_> = numbers.outcomes().collect();
    /// assert_eq!(all, [
    ///     (id, Ok(1)),
    ///     (id, Ok(2)),
    ///     (id, Err(TaskError::Failed("bad number \"x\"".to_string()))),
    /// ]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_streaming<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
    {
        let run = streaming(callable, arg, self.sender().clone(), self.added());
        self.put_ending::<Streamed, _>(run, None)
    }

    /// Like [`put_streaming`](Self::put_streaming), but never blocks: on a
    /// full bounded queue ([`queue_capacity`](crate::Builder::queue_capacity))
    /// it puts nothing and hands `callable` and `arg` back, uncalled, in
    /// the error, to put again once there is room, as
    /// [`try_put`](Self::try_put) does for a request with one outcome. On
    /// one of this pool's own workers a full queue refuses it too.
    ///
    /// # Errors
    ///
    /// As [`try_put`](Self::try_put): a [`TrySubmitError`] holding
    /// `callable` and `arg`. Nothing refused is pending here, and nothing
    /// of it comes out of [`outcomes`](Self::outcomes).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// fn count_to(n: u32, out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
    ///     (1..=n).try_for_each(|i| out.emit(i))
    /// }
    ///
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    /// let mut counts = pool.collector::<u32>();
    /// let first = counts.try_put_streaming(count_to, 2)?;
    /// let refused = counts.try_put_streaming(count_to, 3).unwrap_err();
    /// assert!(refused.is_full());
    /// assert_eq!(counts.pending(), 1);                   // the refused one is not
    /// let (callable, n) = refused.into_parts();
    /// pool.create_workers(1)?;
    /// assert_eq!(counts.next_outcome(), Some((first, Ok(1))));
    /// let again = counts.try_put_streaming(callable, n)?; // room again
    /// let rest: Vec<_> = counts.outcomes().collect();
    /// assert_eq!(rest, [(first, Ok(2)), (again, Ok(1)), (again, Ok(2)), (again, Ok(3))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_streaming<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_stream(callable, arg, None)
    }

    /// [`try_put_streaming`](Self::try_put_streaming) for a callable that
    /// may fail, as [`put_fallible_streaming`](Self::put_fallible_streaming)
    /// puts one.
    ///
    /// # Errors
    ///
    /// As [`try_put`](Self::try_put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, TaskError, ThreadPool};
    ///
    /// fn digits(text: &'static str, out: &CollectorEmitter<'_, u32, char>) -> Result<(), char> {
    ///     for c in text.chars() {
    ///         let Ok(()) = out.emit(c.to_digit(10).ok_or(c)?) else { break };
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut read = pool.fallible_collector::<u32, char>();
    /// let id = read.try_put_fallible_streaming(digits, "12x")?;
    /// let all: Vec<_> = read.outcomes().collect();
    /// assert_eq!(all, [(id, Ok(1)), (id, Ok(2)), (id, Err(TaskError::Failed('x')))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_put_fallible_streaming<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
    {
        let call = emitting(self.sender().clone(), self.added());
        self.try_put_parts::<Streamed, _, _, _>(callable, arg, call, None)
    }

    /// Like [`put_streaming`](Self::put_streaming), but waits at most
    /// `timeout` for room in a full bounded queue; then it puts nothing
    /// and hands `callable` and `arg` back, uncalled, in the error, as
    /// [`put_timeout`](Self::put_timeout) does for a request with one
    /// outcome (and handles results while it waits, and never waits on
    /// one of this pool's own workers, as that does).
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Self::put_timeout): a [`TrySubmitError`] holding
    /// `callable` and `arg`. Nothing refused is pending here.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    /// use std::time::Duration;
    ///
    /// fn count_to(n: u32, out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
    ///     (1..=n).try_for_each(|i| out.emit(i))
    /// }
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// // The worker waits on the gate; a second request fills the queue.
    /// pool.execute(move || { let _ = gate.recv(); })?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let mut counts = pool.collector::<u32>();
    /// let first = counts.put_streaming(count_to, 1)?;
    /// let refused = counts
    ///     .put_streaming_timeout(count_to, 2, Duration::from_millis(10))
    ///     .unwrap_err();
    /// assert!(refused.is_timed_out());
    /// assert_eq!(counts.pending(), 1);                    // the refused one is not
    /// drop(open);
    /// assert_eq!(counts.next_outcome(), Some((first, Ok(1))));
    /// let (callable, n) = refused.into_parts();
    /// let again = counts.put_streaming_timeout(callable, n, Duration::from_secs(5))?;
    /// let rest: Vec<_> = counts.outcomes().collect();
    /// assert_eq!(rest, [(again, Ok(1)), (again, Ok(2))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_streaming_timeout<F, A>(
        &mut self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
    {
        self.try_put_stream(callable, arg, Some(timeout))
    }

    /// [`put_streaming_timeout`](Self::put_streaming_timeout) for a
    /// callable that may fail, as
    /// [`put_fallible_streaming`](Self::put_fallible_streaming) puts one.
    ///
    /// # Errors
    ///
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, TaskError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// fn halves(n: u32, out: &CollectorEmitter<'_, u32, String>) -> Result<(), String> {
    ///     let mut n = n;
    ///     while n > 1 {
    ///         if n % 2 == 1 {
    ///             return Err(format!("{n} is odd"));
    ///         }
    ///         n /= 2;
    ///         out.emit(n).map_err(|e| e.to_string())?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut halved = pool.fallible_collector::<u32, String>();
    /// let id = halved.put_fallible_streaming_timeout(halves, 12, Duration::from_secs(5))?;
    /// let all: Vec<_> = halved.outcomes().collect();
    /// assert_eq!(all, [(id, Ok(6)), (id, Ok(3)), (id, Err(TaskError::Failed("3 is odd".to_string())))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_streaming_timeout<F, A>(
        &mut self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
    {
        let call = emitting(self.sender().clone(), self.added());
        self.try_put_parts::<Streamed, _, _, _>(callable, arg, call, Some(timeout))
    }

    /// The try and timeout forms of `put_streaming`: an infallible
    /// stream's `Closed` ends it as a return does.
    fn try_put_stream<F, A>(
        &mut self,
        callable: F,
        arg: A,
        timeout: Option<Duration>,
    ) -> Result<RequestId, TrySubmitError<F, A>>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
    {
        let call = emitting(self.sender().clone(), self.added());
        self.try_put_parts::<Streamed, _, _, _>(
            callable,
            arg,
            move |callable: F, arg, cx: &Context<'_>| stopped(call(callable, arg, cx)),
            timeout,
        )
    }

    /// [`put_streaming`](Self::put_streaming) with a callback that stays
    /// on this thread, as [`put_then`](Self::put_then) puts a request with
    /// one outcome: each item the stream emits goes to `each`, as
    /// `Ok(item)`, in the order emitted, *instead of* coming out of
    /// [`outcomes`](Self::outcomes) (as `put_then`'s outcome does); so
    /// does its ending error, once, after them: a panic part-way
    /// ([`TaskError::Panicked`]), or [`TaskError::Cancelled`] for a stream
    /// ended before it started. A stream that returns calls `each` no
    /// more. `each` runs when this collector takes the item (in
    /// `outcomes`, `next_outcome`, `try_next_outcome`, `wait_with`,
    /// `poll_with`, or as a [`scope`](crate::ThreadPool::scope) ends), and is
    /// dropped, here, once the stream's end has been taken.
    ///
    /// The stream counts as pending until its end has been taken, as any
    /// stream does: `outcomes` runs `each` for its items and goes on
    /// waiting until it ends. What its callable adds through `out`
    /// ([`add`](CollectorContext::add) and its kin) has no callback: it
    /// comes out of `outcomes` as usual. Each item and the ending error
    /// count as one outcome handled in what
    /// [`wait_with`](Self::wait_with) and [`poll_with`](Self::poll_with)
    /// return.
    ///
    /// `each` is `FnMut` and need be neither `Send` nor `'static`; it
    /// holds what it borrows until the collector is dropped (so no two
    /// callbacks may hold one `&mut` local: share it through a `RefCell`,
    /// as for `put_then`). A collector dropped before the stream ends
    /// calls `each` no more: it is dropped with the collector, and what
    /// the stream emits afterwards meets [`Closed`].
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); `each` is dropped uncalled (a panic in its
    /// `Drop` is logged at error level and goes no further).
    ///
    /// # Panics
    ///
    /// A panic in `each` passes through the call that ran it (as one in
    /// `put_then`'s callback does); `each` stays, and is called again for
    /// the stream's next item. So does a panic in dropping it once the
    /// stream has ended.
    ///
    /// # Examples
    ///
    /// `each` borrows a local mutably and runs on this thread; the plain
    /// request's outcome still comes out of `outcomes`:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// fn split(text: &'static str, out: &CollectorEmitter<'_, String>) -> Result<(), Closed> {
    ///     text.split(' ').try_for_each(|word| out.emit(word.to_string()))
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let here = std::thread::current().id();
    /// let mut words = Vec::new();
    /// let mut found = pool.collector::<String>();
    /// found.put_streaming_then(split, "one two three", |word| {
    ///     assert_eq!(std::thread::current().id(), here);
    ///     words.push(word.unwrap());
    /// })?;
    /// found.put(|_: ()| "plain".to_string(), ())?;
    /// let plain: Vec<_> = found.outcomes().map(|(_, word)| word.unwrap()).collect();
    /// drop(found); // ends the callback's borrow of `words`
    /// assert_eq!(words, ["one", "two", "three"]);
    /// assert_eq!(plain, ["plain"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_streaming_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        each: C,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
        C: FnMut(Result<T, TaskError<E>>) + 'a,
    {
        let run = streaming(callable, arg, self.sender().clone(), self.added());
        self.put_streamed_each(move |cx: &Context<'_>| stopped(run(cx)), Box::new(each))
    }

    /// [`put_streaming_then`](Self::put_streaming_then) for a callable
    /// that may fail: an `Err(e)` part-way goes to `each` after the items
    /// emitted before it, as [`TaskError::Failed(e)`](TaskError::Failed),
    /// once.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); `each` is dropped uncalled.
    ///
    /// # Panics
    ///
    /// As [`put_streaming_then`](Self::put_streaming_then).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, TaskError, ThreadPool};
    /// use std::cell::RefCell;
    ///
    /// fn parse(text: &'static str, out: &CollectorEmitter<'_, u32, String>) -> Result<(), String> {
    ///     for word in text.split(' ') {
    ///         let n = word.parse().map_err(|_| format!("bad number {word:?}"))?;
    ///         out.emit(n).map_err(|e| e.to_string())?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let seen = RefCell::new(Vec::new()); // shared by both callbacks
    /// let mut numbers = pool.fallible_collector::<u32, String>();
    /// let good = numbers.put_fallible_streaming_then(parse, "1 2", |n| seen.borrow_mut().push(n))?;
    /// let bad = numbers.put_fallible_streaming_then(parse, "3 x 4", |n| seen.borrow_mut().push(n))?;
    /// let handled = numbers.wait_with(|_, _| unreachable!("both streams have a callback"));
    /// assert_eq!(handled, 4); // 1, 2, 3 and the error
    /// let mut seen = seen.take();
    /// seen.sort_by_key(|n| format!("{n:?}"));
    /// assert_eq!(seen, [Err(TaskError::Failed("bad number \"x\"".to_string())), Ok(1), Ok(2), Ok(3)]);
    /// # let _ = (good, bad);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_streaming_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        each: C,
    ) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
        C: FnMut(Result<T, TaskError<E>>) + 'a,
    {
        let run = streaming(callable, arg, self.sender().clone(), self.added());
        self.put_streamed_each(run, Box::new(each))
    }
}

impl<T, E> CollectorContext<'_, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Adds a streaming request to the collector, as
    /// [`Collector::put_streaming`] puts one: `callable(arg, out)` emits
    /// any number of items through `out`, each coming out of the collector
    /// as `(id, Ok(item))`, and may add more in turn. It counts as pending
    /// on the collector from now until its end has been taken there.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add): refused, the request still counts on the
    /// collector, and ends there as
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled) when the one
    /// in the error is dropped.
    ///
    /// # Examples
    ///
    /// A directory request adds a streaming request per file, which emits
    /// the file's lines:
    ///
    /// ```
    /// use callpool::{Closed, CollectorContext, CollectorEmitter, ThreadPool};
    ///
    /// fn lines(text: &'static str, out: &CollectorEmitter<'_, String>) -> Result<(), Closed> {
    ///     text.lines().try_for_each(|line| out.emit(line.to_string()))
    /// }
    ///
    /// fn list(cx: &CollectorContext<'_, String>, files: [&'static str; 2]) -> String {
    ///     for text in files {
    ///         cx.add_streaming(lines, text).expect("the pool is open");
    ///     }
    ///     "listed".to_string()
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut found = pool.collector::<String>();
    /// found.put_with_context(list, ["a\nb", "c"])?;
    /// let mut all: Vec<String> = found.outcomes().map(|(_, line)| line.unwrap()).collect();
    /// all.sort_unstable();
    /// assert_eq!(all, ["a", "b", "c", "listed"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_streaming<F, A>(&self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'static,
        A: Send + 'static,
    {
        let run = streaming(callable, arg, self.outcomes.clone(), Arc::clone(self.added));
        self.add_ending::<Streamed, _>(move |cx: &Context<'_>| stopped(run(cx)))
    }

    /// [`add_streaming`](Self::add_streaming) for a callable that may
    /// fail, as [`Collector::put_fallible_streaming`] puts one.
    ///
    /// # Errors
    ///
    /// As [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, TaskError, ThreadPool};
    ///
    /// fn countdown(n: u32, out: &CollectorEmitter<'_, u32, String>) -> Result<(), String> {
    ///     if n == 0 {
    ///         return Err("lift-off".to_string());
    ///     }
    ///     out.emit(n).map_err(|e| e.to_string())?;
    ///     out.add_fallible_streaming(countdown, n - 1).map_err(|e| e.to_string())?;
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut counted = pool.fallible_collector::<u32, String>();
    /// counted.put_fallible_streaming(countdown, 3)?;
    /// let (mut items, mut errors) = (Vec::new(), Vec::new());
    /// counted.wait_with(|_, outcome| match outcome {
    ///     Ok(n) => items.push(n),
    ///     Err(TaskError::Failed(why)) => errors.push(why),
    ///     Err(other) => panic!("{other}"),
    /// });
    /// items.sort_unstable();
    /// assert_eq!((items, errors), (vec![1, 2, 3], vec!["lift-off".to_string()]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_fallible_streaming<F, A>(&self, callable: F, arg: A) -> Result<RequestId, PutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
    {
        let run = streaming(callable, arg, self.outcomes.clone(), Arc::clone(self.added));
        self.add_ending::<Streamed, _>(run)
    }
}
