//! Streaming requests: a callable that emits several results, each handed
//! to the result callback on the polling thread as soon as it is polled,
//! in the order emitted; then, if the callable fails or panics, the error
//! callback once.
//!
//! Each item travels on its own through the handle's result queue (so a
//! bounded queue holds a fast emitter back), as a closure that hands it to
//! the request's [`Deliveries`], shared by the items and the request's end.

use std::cell::Cell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::request::context::{Closed, Context, Item};
use crate::request::task::{attempt, Ended, Route, Task};
use crate::request::{RequestId, TaskError, WorkRequest};
use crate::unwind::{self, Callback, FirstPanic};

/// Hands a streaming callable's results to the request's result callback,
/// one by one, in order ([`WorkRequest::streaming`]). A stream into a
/// collector gets a [`CollectorEmitter`](crate::CollectorEmitter) instead
/// ([`Collector::put_streaming`](crate::Collector::put_streaming)).
///
/// It belongs to the worker running the request, so it is not `Sync`: a
/// `&Emitter` cannot go to another thread.
///
/// ```compile_fail
/// use callpool::{Emitter, WorkRequest};
///
/// let request = WorkRequest::streaming(|n: u32, out: &Emitter<'_, u32>| {
///     std::thread::scope(|s| { s.spawn(|| out.emit(n)); }); // `&Emitter` is not `Send`
///     Ok::<(), callpool::Closed>(())
/// }, 1);
/// # drop(request);
/// ```
pub struct Emitter<'a, T> {
    cx: &'a Context<'a>,
    send: &'a dyn Fn(RequestId, T) -> Item,
    _item: PhantomData<fn(T)>,
}

impl<'a, T> Emitter<'a, T> {
    /// Sends `item` to the request's result callback, which runs on the
    /// thread that polls the handle. Items arrive in the order emitted,
    /// even when several threads poll the handle. On a bounded result
    /// queue this blocks while the queue is full (the queue's
    /// back-pressure), as a finished request's result would.
    ///
    /// # Errors
    ///
    /// [`Closed`] when the handle is gone (the item is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Closed, Emitter, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let id = pool.put_request(
    ///     WorkRequest::streaming(|words: &'static str, out: &Emitter<'_, (callpool::RequestId, &str)>| {
    ///         for word in words.split(' ') {
    ///             out.emit((out.id(), word))?; // `id` is the request's, as `put_request` returned it
    ///         }
    ///         Ok::<_, Closed>(())
    ///     }, "one two three")
    ///     .on_result(move |_, item| tx.send(item).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [(id, "one"), (id, "two"), (id, "three")]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Once the handle that put the request is gone, `emit` says so, and the
    /// callable can stop:
    ///
    /// ```
    /// use callpool::{Closed, Emitter, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let handle = pool.new_handle();
    /// let (started, has_started) = mpsc::channel();
    /// let (open, gate) = mpsc::channel::<()>();
    /// let (tx, rx) = mpsc::channel();
    /// handle.put_request(WorkRequest::streaming(move |_: (), out: &Emitter<'_, u32>| {
    ///     started.send(()).unwrap();
    ///     let _ = gate.recv();
    ///     tx.send(out.emit(1)).unwrap();
    ///     Ok::<_, Closed>(())
    /// }, ()))?;
    /// has_started.recv()?;
    /// drop(handle); // nobody is left to receive its items
    /// drop(open);
    /// assert_eq!(rx.recv()?, Err(Closed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn emit(&self, item: T) -> Result<(), Closed> {
        let item = (self.send)(self.cx.id(), item);
        self.cx.spawner.emit(item)
    }

    /// The id of the streaming request.
    ///
    /// See [`emit`](Self::emit) for an example.
    pub fn id(&self) -> RequestId {
        self.cx.id()
    }

    /// The running request's [`Context`], so that a streaming callable can
    /// also add work: [`put`](Context::put) requests on the same handle
    /// (a `wait` there covers them), split itself with
    /// [`join`](Context::join), or reach the worker's state.
    ///
    /// The emitter stays on this worker (it is not `Send`): emit from the
    /// first half of a `join` or after it returns, and let the second half
    /// return what it found.
    ///
    /// # Examples
    ///
    /// A crawl step that streams what it found and puts a request per
    /// link it follows:
    ///
    /// ```
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// static PAGES: AtomicUsize = AtomicUsize::new(0);
    ///
    /// fn count(_: callpool::RequestId, _page: u32) {
    ///     PAGES.fetch_add(1, Ordering::Relaxed);           // on the polling thread
    /// }
    ///
    /// fn visit(page: u32, out: &Emitter<'_, u32>) -> Result<(), std::convert::Infallible> {
    ///     out.emit(page).ok();                             // this page's item
    ///     for link in [2 * page, 2 * page + 1].into_iter().filter(|&l| l < 64) {
    ///         let follow = WorkRequest::streaming(visit, link).on_result(count);
    ///         out.context().put(follow).expect("the pool is open");
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// pool.put_request(WorkRequest::streaming(visit, 1).on_result(count))?;
    /// pool.wait()?;                                        // covers every follow-up
    /// assert_eq!(PAGES.load(Ordering::Relaxed), 63);       // pages 1 to 63
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The second half of a join may run on another worker, so it cannot
    /// emit:
    ///
    /// ```compile_fail
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    ///
    /// fn split(n: u32, out: &Emitter<'_, u32>) -> Result<(), std::convert::Infallible> {
    ///     out.context().join(|_| out.emit(n), |_| out.emit(n + 1)); // `&Emitter` is not `Send`
    ///     Ok(())
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// pool.put_request(WorkRequest::streaming(split, 1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn context(&self) -> &Context<'a> {
        self.cx
    }
}

impl<T> fmt::Debug for Emitter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("id", &self.cx.id())
            .finish()
    }
}

impl WorkRequest {
    /// Starts a request whose callable emits several results through an
    /// [`Emitter`]: each one reaches the result callback (an `FnMut`) on
    /// the polling thread as soon as that thread polls, in the order
    /// emitted, not all at the end. If the callable returns `Err` or
    /// panics half-way, the items emitted so far are delivered first, then
    /// the error callback runs once.
    ///
    /// Each item counts as a result handled in what `poll` and `wait`
    /// return, and so does the request's end; the request is pending until
    /// its end is handled.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let (tx, rx) = mpsc::channel();
    /// pool.put_request(
    ///     WorkRequest::streaming(|n: u32, out: &Emitter<'_, u32>| {
    ///         for i in 0..n {
    ///             out.emit(i * i)?;
    ///         }
    ///         Ok::<_, callpool::Closed>(())
    ///     }, 5)
    ///     .on_result(move |_, sq| tx.send(sq).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn streaming<F, A, T, E>(callable: F, arg: A) -> StreamRequest<F, A, T, E>
    where
        F: FnOnce(A, &Emitter<'_, T>) -> Result<(), E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        StreamRequest {
            callable,
            arg,
            on_result: None,
            on_error: None,
            on_done: None,
            id: None,
            deadline: None,
            _types: PhantomData,
        }
    }
}

/// A result callback of a streaming request.
type ItemCallback<T> = Box<dyn FnMut(RequestId, T) + Send>;
/// An error callback of a streaming request.
type ErrorCallback<E> = Box<dyn FnOnce(RequestId, TaskError<E>) + Send>;
/// The success callback of a streaming request.
type DoneCallback = Box<dyn FnOnce(RequestId) + Send>;

/// A streaming request under construction ([`WorkRequest::streaming`]);
/// turned into a [`WorkRequest`] by `into()` or by a `put_request` method.
///
/// It takes a result and an error callback, a deadline to start by
/// ([`deadline`](Self::deadline), [`timeout`](Self::timeout)) and a
/// user-chosen id ([`with_id`](Self::with_id)), as a [`Request`] does;
/// unlike one, it has no [`timed`](crate::Request::timed). Its success
/// has a callback of its own ([`on_done`](Self::on_done)), run after its
/// last item.
///
/// [`Request`]: crate::Request
#[must_use = "a request does nothing until it is put on a pool"]
pub struct StreamRequest<F, A, T, E = Infallible> {
    callable: F,
    arg: A,
    on_result: Option<ItemCallback<T>>,
    on_error: Option<ErrorCallback<E>>,
    on_done: Option<DoneCallback>,
    id: Option<u64>,
    deadline: Option<Instant>,
    _types: PhantomData<fn() -> (T, E)>,
}

impl<F, A, T, E> StreamRequest<F, A, T, E> {
    /// Chooses this request's id, as [`Request::with_id`](crate::Request::with_id)
    /// does: kept exactly as given; a handle refuses a second pending
    /// request with the same user-chosen id.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, PutError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let numbers = |n: u32, out: &Emitter<'_, u32>| (0..n).try_for_each(|i| out.emit(i));
    /// let id = pool.put_request(
    ///     WorkRequest::streaming(numbers, 3).with_id(7).on_result(|id, _| assert_eq!(id.value(), 7)),
    /// )?;
    /// assert_eq!((id.value(), id.is_user_chosen()), (7, true));
    /// let again = pool.put_request(WorkRequest::streaming(numbers, 3).with_id(7));
    /// assert!(matches!(again, Err(PutError::DuplicateId(_)))); // the first is still pending
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// Gives the request a deadline to *start* by, as
    /// [`Request::deadline`](crate::Request::deadline) does: if no worker
    /// has taken it by `at`, the callable never runs, no item is emitted,
    /// and the error callback hears [`TaskError::Expired`]. A stream that
    /// started in time runs to its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, TaskError, ThreadPool, WorkRequest};
    /// use std::time::Instant;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// pool.put_request(
    ///     WorkRequest::streaming(|_: (), _out: &Emitter<'_, u32>| -> Result<(), callpool::Closed> {
    ///         unreachable!("expired before it started")
    ///     }, ())
    ///     .deadline(Instant::now())
    ///     .on_error(move |_, err| tx.send(err).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.recv()?, TaskError::Expired);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// Like [`deadline`](Self::deadline), `timeout` from now. A timeout too
    /// large for the clock means no deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let numbers = |n: u32, out: &Emitter<'_, u32>| (0..n).try_for_each(|i| out.emit(i));
    /// pool.put_request(
    ///     WorkRequest::streaming(numbers, 3)
    ///         .timeout(Duration::MAX) // too large for the clock: no deadline
    ///         .on_result(move |_, i| tx.send(i).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Sets the callback that receives each emitted item, on the polling
    /// thread. Without one, items are dropped. Like a request's
    /// [`on_result`](crate::Request::on_result), it travels with the
    /// request and so must be `Send + 'static` (no `Rc`, no borrowed
    /// local): send what it sees through a channel or share an `Arc`.
    ///
    /// # Examples
    ///
    /// The callback is an `FnMut`, called once per item, in order; each item
    /// counts in what `wait` returns, and so does the stream's end (unless
    /// a put blocked inside a callback handled it: see
    /// [`ThreadPool::wait`](crate::ThreadPool::wait)):
    ///
    /// ```
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let pool = ThreadPool::new(1);
    /// let items = Arc::new(Mutex::new(Vec::new()));
    /// let mut seen = 0;
    /// let kept = Arc::clone(&items);
    /// pool.put_request(
    ///     WorkRequest::streaming(|n: u32, out: &Emitter<'_, u32>| (1..=n).try_for_each(|i| out.emit(i * 10)), 3)
    ///         .on_result(move |_, item| {
    ///             seen += 1; // state of its own, kept from one item to the next
    ///             kept.lock().unwrap().push((seen, item));
    ///         }),
    /// )?;
    /// assert_eq!(pool.wait()?, 4); // three items and the end
    /// assert_eq!(*items.lock().unwrap(), [(1, 10), (2, 20), (3, 30)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_result(mut self, callback: impl FnMut(RequestId, T) + Send + 'static) -> Self {
        self.on_result = Some(Box::new(callback));
        self
    }

    /// Sets the callback that receives the failure, panic or cancellation,
    /// once, after every item emitted before it. Without one, it is logged.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, TaskError, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let failed = tx.clone();
    /// pool.put_request(
    ///     WorkRequest::streaming(|_: (), out: &Emitter<'_, u32>| {
    ///         out.emit(1).map_err(|_| "closed")?;
    ///         out.emit(2).map_err(|_| "closed")?;
    ///         Err("disk full")
    ///     }, ())
    ///     .on_result(move |_, n| tx.send(format!("item {n}")).unwrap())
    ///     .on_error(move |_, err| {
    ///         assert_eq!(err, TaskError::Failed("disk full"));
    ///         failed.send(err.to_string()).unwrap();
    ///     }),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(
    ///     rx.try_iter().collect::<Vec<_>>(),
    ///     ["item 1", "item 2", "request failed: disk full"],
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_error(
        mut self,
        callback: impl FnOnce(RequestId, TaskError<E>) + Send + 'static,
    ) -> Self {
        self.on_error = Some(Box::new(callback));
        self
    }

    /// Sets the callback that hears the stream's success (its callable
    /// returned `Ok`), once, on the polling thread, after every item it
    /// emitted. A stream that fails, panics, expires or is cancelled
    /// calls its error callback instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Emitter, ThreadPool, WorkRequest};
    /// use std::sync::mpsc;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let done = tx.clone();
    /// pool.put_request(
    ///     WorkRequest::streaming(|n: u32, out: &Emitter<'_, String>| {
    ///         (0..n).try_for_each(|i| out.emit(format!("page {i}")))
    ///     }, 2)
    ///     .on_result(move |_, page| tx.send(page).unwrap())
    ///     .on_done(move |_| done.send("done".to_string()).unwrap()),
    /// )?;
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["page 0", "page 1", "done"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_done(mut self, callback: impl FnOnce(RequestId) + Send + 'static) -> Self {
        self.on_done = Some(Box::new(callback));
        self
    }
}

impl<F, A, T, E> fmt::Debug for StreamRequest<F, A, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamRequest")
            .field("on_result", &self.on_result.is_some())
            .field("on_error", &self.on_error.is_some())
            .field("on_done", &self.on_done.is_some())
            .field("id", &self.id)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<F, A, T, E> From<StreamRequest<F, A, T, E>> for WorkRequest
where
    F: FnOnce(A, &Emitter<'_, T>) -> Result<(), E> + Send + 'static,
    A: Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
{
    fn from(request: StreamRequest<F, A, T, E>) -> WorkRequest {
        let on_result: ItemCallback<T> = request.on_result.unwrap_or_else(|| Box::new(|_, _| {}));
        let task = StreamTask {
            work: Some((request.callable, request.arg)),
            deliveries: Deliveries::new(on_result),
            emitted: 0,
            on_error: request.on_error,
            on_done: request.on_done,
            outcome: None,
            deadline: request.deadline,
            user_id: request.id.is_some(),
        };
        WorkRequest::from_task(Box::new(crate::request::task::Envelope {
            id_value: request.id.unwrap_or_else(|| RequestId::next_auto().value()),
            task,
        }))
    }
}

/// What a streaming request hands to its callbacks on the polling thread.
enum Delivery<T, E> {
    Item(RequestId, T),
    /// The request failed: its error callback runs after every item.
    Failed(RequestId, Option<ErrorCallback<E>>, TaskError<E>),
    /// The request succeeded: its success callback runs after every item.
    Done(RequestId, DoneCallback),
}

/// A streaming request's result callback and the deliveries waiting for
/// it, shared by its items and its end, each numbered in the order the
/// request made them. A delivery takes its place in the queue; the thread
/// that then finds the callback there, and the queue's first place
/// filled, takes the callback out and runs the queue in order, as far as
/// it is filled, before it puts the callback back. A delivery that finds
/// the callback out leaves itself to that thread: the callback is running
/// further down this thread's stack (it polls or waits on its own handle)
/// or on another polling thread. One whose place comes after an empty one
/// waits there for the thread that fills that one: another thread polling
/// the same handle took the earlier message. No lock is held while a
/// callback runs, so no case waits on itself, and the order holds.
struct Deliveries<T, E> {
    inner: Mutex<Queue<T, E>>,
}

struct Queue<T, E> {
    /// Out while a thread runs the queue.
    callback: Option<ItemCallback<T>>,
    /// The number of the delivery in `places[0]`.
    first: u64,
    places: VecDeque<Option<Delivery<T, E>>>,
}

impl<T, E> Queue<T, E> {
    /// Puts delivery number `number` in its place.
    fn place(&mut self, number: u64, delivery: Delivery<T, E>) {
        let Some(at) = number
            .checked_sub(self.first)
            .and_then(|at| usize::try_from(at).ok())
        else {
            log::error!("callpool bug: a streaming request's delivery came twice");
            return;
        };
        if self.places.len() <= at {
            self.places.resize_with(at + 1, || None);
        }
        self.places[at] = Some(delivery);
    }

    /// The next delivery in order, if it has come.
    fn next(&mut self) -> Option<Delivery<T, E>> {
        let next = self.places.front_mut()?.take()?;
        self.places.pop_front();
        self.first += 1;
        Some(next)
    }

    fn next_has_come(&self) -> bool {
        self.places.front().is_some_and(Option::is_some)
    }
}

/// The result callback and the deliveries never made are user values,
/// dropped wherever the last reference to the queue goes (a worker, a
/// sweep, a handle's queue): each on its own, contained.
impl<T, E> Drop for Queue<T, E> {
    fn drop(&mut self) {
        unwind::drop_some(
            "a streaming request's result callback",
            self.callback.take(),
        );
        for place in self.places.drain(..) {
            unwind::drop_some("a streamed item or error never delivered", place);
        }
    }
}

impl<T, E> Deliveries<T, E> {
    fn new(callback: ItemCallback<T>) -> Arc<Deliveries<T, E>> {
        Arc::new(Deliveries {
            inner: Mutex::new(Queue {
                callback: Some(callback),
                first: 0,
                places: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T, E>> {
        // Only moves happen under this lock, never user code: not torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts delivery number `number` in its place, then runs the queue if
    /// its next delivery has come and no other frame or thread is running
    /// it. A callback's panic is held until the rest of the queue has run
    /// (no later delivery may be coming to run it), then goes on.
    fn deliver(&self, number: u64, delivery: Delivery<T, E>) {
        let mut callback = {
            let mut queue = self.lock();
            queue.place(number, delivery);
            if !queue.next_has_come() {
                return;
            }
            match queue.callback.take() {
                Some(callback) => callback,
                None => return,
            }
        };
        let mut panicked = FirstPanic::default();
        loop {
            let next = {
                let mut queue = self.lock();
                match queue.next() {
                    Some(next) => next,
                    // Not come yet, and the callback back, in one step: a
                    // delivery placed after this either came before (and
                    // ran here) or finds the callback there.
                    None => {
                        queue.callback = Some(callback);
                        break;
                    }
                }
            };
            // The callback is out of the queue, and the deliveries after
            // this one still to run: a later panic must not skip them.
            panicked.catch("a callback of a streaming request", || match next {
                Delivery::Item(id, item) => callback(id, item),
                Delivery::Failed(id, Some(on_error), err) => on_error(id, err),
                Delivery::Failed(id, None, _) => {
                    log::error!(
                        "callpool: streaming request {id} failed and has no error callback"
                    );
                }
                Delivery::Done(id, on_done) => on_done(id),
            });
        }
        panicked.resume();
    }
}

/// A streaming request with its types known; boxed as a `dyn Task`.
struct StreamTask<F, A, T, E> {
    work: Option<(F, A)>,
    deliveries: Arc<Deliveries<T, E>>,
    /// Items emitted: the number of the request's failure, if it fails.
    emitted: u64,
    on_error: Option<ErrorCallback<E>>,
    on_done: Option<DoneCallback>,
    /// How it ended: `None` until it has; `Some(Ok(()))` on success.
    outcome: Option<Result<(), TaskError<E>>>,
    /// The deadline to start by, if any.
    deadline: Option<Instant>,
    /// Whether the user chose the id.
    user_id: bool,
}

impl<F, A, T, E> StreamTask<F, A, T, E> {
    /// Ends the request without running it (cancelled, or expired): the
    /// outcome first, and then the callable and its input, each contained
    /// on its own (as in `release`): dropped together, a panic in the
    /// second while the first unwinds would abort.
    fn end_unrun(&mut self, why: TaskError<E>) {
        self.outcome = Some(Err(why));
        if let Some((callable, arg)) = self.work.take() {
            unwind::drop_contained("an unrun streaming request's callable", callable);
            unwind::drop_contained("an unrun streaming request's input", arg);
        }
    }
}

impl<F, A, T, E> Task for StreamTask<F, A, T, E>
where
    F: FnOnce(A, &Emitter<'_, T>) -> Result<(), E> + Send,
    A: Send,
    T: Send + 'static,
    E: Send + 'static,
{
    fn run(&mut self, cx: &Context<'_>) {
        if self.deadline.is_some_and(|at| Instant::now() >= at) {
            // Never started: dropped as a cancelled one is, each contained.
            self.end_unrun(TaskError::Expired);
            return;
        }
        let Some((callable, arg)) = self.work.take() else {
            return;
        };
        let deliveries = &self.deliveries;
        // Only this worker emits (an `Emitter` is neither `Send` nor `Sync`).
        let emitted = Cell::new(0);
        let send = |id: RequestId, item: T| -> Item {
            let deliveries = Arc::clone(deliveries);
            let number = emitted.get();
            emitted.set(number + 1);
            Callback::new(move |()| deliveries.deliver(number, Delivery::Item(id, item)))
        };
        let emitter = Emitter {
            cx,
            send: &send,
            _item: PhantomData,
        };
        self.outcome = Some(attempt(|| callable(arg, &emitter)).map_err(TaskError::from));
        self.emitted = emitted.get();
    }

    fn cancel(&mut self) {
        self.end_unrun(TaskError::Cancelled);
    }

    fn route(&self) -> Route {
        Route::Inbox
    }

    fn release(&mut self) {
        // One user value at a time (see `unwind::drop_contained`); the
        // result callback and undelivered items go with the last reference
        // to the deliveries (see `Queue`'s `Drop`).
        if let Some((callable, arg)) = self.work.take() {
            unwind::drop_contained("a streaming request's callable", callable);
            unwind::drop_contained("a streaming request's input", arg);
        }
        unwind::drop_some("a streaming request's error callback", self.on_error.take());
        unwind::drop_some(
            "a streaming request's success callback",
            self.on_done.take(),
        );
        unwind::drop_some("a streaming request's outcome", self.outcome.take());
    }

    fn report(&mut self, id: RequestId) {
        match self.outcome.take() {
            // After every item, even one left to a callback further down
            // this thread's stack.
            Some(Ok(())) => {
                if let Some(on_done) = self.on_done.take() {
                    self.deliveries
                        .deliver(self.emitted, Delivery::Done(id, on_done));
                }
            }
            Some(Err(err)) => self.deliveries.deliver(
                self.emitted,
                Delivery::Failed(id, self.on_error.take(), err),
            ),
            None => log::error!("callpool bug: streaming request {id} reported without running"),
        }
    }

    fn ended(&self) -> Ended {
        match &self.outcome {
            Some(Ok(())) => Ended::Succeeded,
            Some(Err(TaskError::Cancelled | TaskError::Expired)) | None => Ended::Unstarted,
            Some(Err(TaskError::Panicked(_))) => Ended::Panicked,
            Some(Err(_)) => Ended::Failed,
        }
    }

    fn user_chosen_id(&self) -> bool {
        self.user_id
    }
}
