//! Many inputs through one function with at most `limit` requests in
//! flight at once: [`ThreadPool::as_completed`] hands outcomes back as
//! they end, [`ThreadPool::imap`] in input order. (`ThreadPool::map`, for
//! every input at once, puts them in chunks instead: `crate::chunks`.)
//!
//! Both are built on tickets: each input is one ticket's request, so their
//! outcomes never mix with the handle's callbacks, and dropping the iterator
//! cancels, through the tickets, what has not started. Their `_fallible`
//! forms ([`ThreadPool::as_completed_fallible`],
//! [`ThreadPool::imap_fallible`]) are the same iterators over tickets of a
//! fallible request, as `submit_fallible`'s are: only how the worker calls
//! the function differs (`call`).

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::iter::Fuse;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use crate::error::PutError;
use crate::handle::ThreadPool;
use crate::lookout::{self, Home};
use crate::patience::Patience;
use crate::request::task::TaskBox;
use crate::request::{RequestId, TaskError, WorkRequest};
use crate::ticket::{Listener, Tell, Ticket};
use crate::unwind;

/// An input on its way, and the function to call on it: the worker
/// borrows both while the function runs, and the iterator takes the input
/// back with the outcome. A mutex, not an `Arc` alone, so that inputs need
/// only be `Send`: they are never shared, only handed over.
///
/// Once its request has ended (the worker let go of it), a cell carries
/// the next input: a window allocates at most one per place in it, and a
/// request takes no count of `f`'s `Arc` nor of the completion channel,
/// whose lines every worker and the iterator would otherwise write once
/// per input. The request's ticket tells its end through the cell (its
/// `Listener`), on the window's channel, with the cell's key: its place
/// in `Completions::flying`, which stays the cell's.
struct Cell<A, F> {
    input: Mutex<Option<A>>,
    f: Arc<F>,
    key: usize,
    /// `None` on it is a lookout's nudge (`crate::lookout::recv`).
    done: flume::Sender<Option<usize>>,
}

impl<A: Send, F: Send + Sync> Tell for Cell<A, F> {
    fn tell(&self) {
        // Disconnected: the iterator was dropped; nobody listens any more.
        let _ = self.done.send(Some(self.key));
    }
}

type Held<A, F> = Arc<Cell<A, F>>;

/// One request of [`Completions`] in flight, by key: its input and its
/// ticket; `None` for a free key.
type Flying<A, F, T, E> = Option<(Held<A, F>, Ticket<T, E>)>;

impl ThreadPool {
    /// Runs `f(&input)` for each input on the pool, with at most `limit` of
    /// them queued or running at once, and iterates over `(input, outcome)`
    /// in the order they end. For an `f` that returns a `Result`, see
    /// [`as_completed_fallible`](Self::as_completed_fallible).
    ///
    /// Inputs are pulled lazily: `limit` at the start, then one each time
    /// an outcome comes back, so an endless iterator of inputs works in
    /// bounded memory. They are pulled on the iterating thread, inside
    /// `next`, before it returns the outcome that freed the place: an
    /// input iterator that waits for the loop's body (a channel the body
    /// feeds with what each outcome found) blocks `next` for ever, with
    /// any `limit`, 1 included. For work that finds more work, use
    /// [`WorkRequest::with_context`](crate::WorkRequest::with_context) or
    /// a collector's [`CollectorContext::add`](crate::CollectorContext::add);
    /// to keep a limit while the loop's body finds the inputs, a loop over
    /// [`Collector::next_outcome`](crate::Collector::next_outcome).
    ///
    /// The outcomes go to the iterator, never to this handle's callbacks,
    /// and `pending` does not count them. `next` blocks until one more has
    /// ended (woken by the worker, with no periodic look);
    /// [`Completions::try_next`] looks without blocking, for a frame loop. With a bounded result queue, the handle's own callbacks may
    /// run here meanwhile (and a panic in one passes through): see
    /// [`Builder::result_capacity`](crate::Builder::result_capacity). The
    /// iterator loses nothing to such a panic, nor to one from the inputs
    /// themselves as `next` pulls the next input: `next` goes on after it
    /// (an outcome taken when the panic came is returned by the next call,
    /// and an input whose put it interrupted is put then, not cancelled).
    ///
    /// A `limit` of 0 means no limit: every input is put at once (bounded
    /// only by a bounded queue's capacity), so the inputs must be finite.
    ///
    /// Dropping the iterator half-way cancels the requests not yet started
    /// (they never run), lets the running ones finish on their workers
    /// without waiting for them, and drops their outcomes (and those that
    /// ended unread). An input or an outcome whose `Drop` panics as it is
    /// dropped there is logged, not propagated, as when a shutdown cancels
    /// it; the others are still dropped.
    ///
    /// If the pool is shut down meanwhile, the requests it cancelled come
    /// back as `(input, Err(TaskError::Cancelled))`, and so does the first
    /// input whose put the pool refuses; no input is pulled after that.
    ///
    /// As with any ticket, a request stuck in the queue of a pool with no
    /// worker left keeps `next` waiting until a worker is added.
    /// So does a put that finds the bounded queue full and no worker to
    /// empty it ([`PutError::NoWorkers`](crate::PutError::NoWorkers)):
    /// the input is kept, and put again once one of this iterator's
    /// requests queued before it has ended (a worker was added, or a
    /// shutdown cancelled it and refuses the put too). Only with none of
    /// them queued, nothing of the iterator's own would tell `next` that
    /// a worker came: that put is refused as by a shut-down pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4);
    /// let urls = (0..10).map(|i| format!("https://example.com/{i}"));
    /// let mut lengths = 0;
    /// for (url, outcome) in pool.as_completed(urls, 3, |url: &String| url.len()) {
    ///     let len = outcome?;
    ///     assert_eq!(len, url.len());
    ///     lengths += len;
    /// }
    /// assert_eq!(lengths, 10 * "https://example.com/0".len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_completed<I, F, T>(
        &self,
        inputs: I,
        limit: usize,
        f: F,
    ) -> Completions<'_, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(&I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Completions::new(self, inputs.into_iter(), limit, f, |f, input| Ok(f(input)))
    }

    /// Like [`as_completed`](Self::as_completed), for a function that
    /// returns a `Result`: an `Err(e)` comes back as
    /// `(input, Err(TaskError::Failed(e)))`, as it reaches a ticket of
    /// [`submit_fallible`](Self::submit_fallible), beside the
    /// [`Panicked`](TaskError::Panicked) and
    /// [`Cancelled`](TaskError::Cancelled) that `as_completed` gives. One
    /// `match` sees every way an input failed, with no
    /// `Result<Result<T, E>, TaskError>` to flatten.
    ///
    /// Everything else is as in `as_completed`: at most `limit` in flight
    /// (0: no limit), inputs pulled lazily, and dropping the iterator
    /// cancels what has not started.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(4);
    /// let inputs = ["1", "22", "x", "333"].map(String::from);
    /// let mut sum = 0;
    /// let mut bad = Vec::new();
    /// for (input, outcome) in pool.as_completed_fallible(inputs, 2, |s: &String| s.parse::<u32>()) {
    ///     match outcome {
    ///         Ok(n) => sum += n,
    ///         Err(TaskError::Failed(e)) => bad.push(format!("{input}: {e}")),
    ///         Err(e) => panic!("{input}: {e}"),
    ///     }
    /// }
    /// assert_eq!(sum, 356);
    /// assert_eq!(bad, ["x: invalid digit found in string"]);
    /// ```
    pub fn as_completed_fallible<I, F, T, E>(
        &self,
        inputs: I,
        limit: usize,
        f: F,
    ) -> Completions<'_, I::IntoIter, F, T, E>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(&I::Item) -> Result<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        Completions::new(self, inputs.into_iter(), limit, f, |f, input| f(input))
    }

    /// Runs `f(input)` for each input on the pool, with at most `limit` of
    /// them queued, running or ended but not yet yielded, and iterates over
    /// the outcomes in input order: later inputs already run while the
    /// iterator waits for an earlier one. For an `f` that returns a
    /// `Result`, see [`imap_fallible`](Self::imap_fallible).
    ///
    /// Inputs are pulled lazily, as in [`as_completed`](Self::as_completed);
    /// a `limit` of 0 means no limit (finite inputs only). Dropping the
    /// iterator cancels what has not started. As in `as_completed`, the
    /// handle's callbacks may run in `next` with a bounded result queue;
    /// [`InOrder::try_next`] looks without blocking, for a frame loop.
    ///
    /// If the pool is shut down meanwhile, the requests it cancelled come
    /// back as `Err(TaskError::Cancelled)` in their places, and so does the
    /// first input whose put the pool refuses; the iterator then ends, with
    /// no input pulled after that. So it may yield fewer outcomes than there
    /// are inputs (unlike [`map`](Self::map), which gives one per input):
    /// an outcome zipped with its input is still the right one, but a
    /// `zip` stops there.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4);
    /// let squares: Vec<u64> = pool
    ///     .imap(1..=1_000u64, 8, |n| n * n)
    ///     .take(5)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<I, F, T>(&self, inputs: I, limit: usize, f: F) -> InOrder<'_, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        InOrder::new(self, inputs.into_iter(), limit, f, |f, input| Ok(f(input)))
    }

    /// Like [`imap`](Self::imap), for a function that returns a `Result`:
    /// an `Err(e)` comes back as `Err(TaskError::Failed(e))` in its
    /// input's place, as it reaches a ticket of
    /// [`submit_fallible`](Self::submit_fallible) (see
    /// [`as_completed_fallible`](Self::as_completed_fallible)).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(4);
    /// let parsed: Vec<_> = pool.imap_fallible(["7", "-1", "9"], 2, str::parse::<u8>).collect();
    /// assert_eq!(parsed[0], Ok(7));
    /// assert!(matches!(parsed[1], Err(TaskError::Failed(_))));
    /// assert_eq!(parsed[2], Ok(9));
    /// ```
    pub fn imap_fallible<I, F, T, E>(
        &self,
        inputs: I,
        limit: usize,
        f: F,
    ) -> InOrder<'_, I::IntoIter, F, T, E>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> Result<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        InOrder::new(self, inputs.into_iter(), limit, f, |f, input| f(input))
    }
}

/// Whether one more request may be put: below the limit (0: no limit).
fn room(limit: usize, in_flight: usize) -> bool {
    limit == 0 || in_flight < limit
}

/// What became of an iterator's put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Put {
    /// Queued.
    Done,
    /// Refused for good (the pool shut down): the refused request, dropped
    /// with the error, told its ticket `Cancelled`.
    Refused,
    /// The bounded queue is full and no worker is there to empty it. The
    /// request is kept in `unput`, its ticket still in flight: a worker
    /// may be added, so it is put again once the iterator hears that one
    /// of its requests queued before it has ended (`went_in`).
    NoWorkers,
    /// The bounded queue is full, and the put was one that must not wait
    /// (`try_next`): the request is kept in `unput`, its ticket still in
    /// flight, and put again by the next call.
    Full,
}

/// How an iterator's put meets a full bounded queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PutHow {
    /// Waits for room, as `next` does (running the handle's callbacks
    /// while a worker is stuck on its full result queue).
    Block,
    /// Never waits and runs nothing here, as `try_next` must not: a full
    /// queue keeps the request for the next call.
    Try,
}

/// Puts an iterator's request, whose ticket is already in flight. If one
/// of the handle's callbacks panics while the put waits for room, the
/// request is kept in `unput`, to be put first on the next call, and the
/// panic goes on: it has not run, and must not come back as cancelled.
fn put_or_keep(
    pool: &ThreadPool,
    task: TaskBox,
    unput: &mut Option<WorkRequest>,
    how: PutHow,
) -> Put {
    put_again_or_keep(pool, WorkRequest::from_task(task), unput, how)
}

/// `put_or_keep` for a request kept before.
fn put_again_or_keep(
    pool: &ThreadPool,
    request: WorkRequest,
    unput: &mut Option<WorkRequest>,
    how: PutHow,
) -> Put {
    if how == PutHow::Try {
        // A try-put neither waits nor handles results: it never runs user
        // code, so no panic can interrupt it.
        return match pool.try_put_request(request) {
            Ok(_) => Put::Done,
            Err(PutError::Full(request)) => {
                *unput = Some(request);
                Put::Full
            }
            // Shut down (a ticket's request has no user id to clash, and a
            // try-put says `Full` before it looks for workers).
            Err(_) => Put::Refused,
        };
    }
    match pool.put_request_or_panic(request) {
        Ok(Ok(_)) => Put::Done,
        Ok(Err(PutError::NoWorkers(request))) => {
            *unput = Some(request);
            Put::NoWorkers
        }
        Ok(Err(_)) => Put::Refused,
        Err((request, payload)) => {
            *unput = Some(request);
            panic::resume_unwind(payload)
        }
    }
}

/// Whether a put went in, so that the next input may be pulled; `None`
/// if it was refused for good (the iterator then stops pulling).
///
/// After [`Put::NoWorkers`] the iterator may wait for a worker if another
/// of its requests is in flight besides the kept one (`in_flight` counts
/// both): that one is queued, running or ended, so it ends and tells the
/// iterator, which then puts the kept one again (a worker was added and
/// ran it, or a shutdown cancelled it and refuses the put too), with no
/// periodic look. Otherwise nothing the iterator waits on would tell it
/// that a worker came (the queue is full of other requests), and waiting
/// could last for ever even after a shutdown: the kept request is
/// dropped, which tells its ticket `Cancelled`, as for a refusal.
fn went_in(put: Put, in_flight: usize, unput: &mut Option<WorkRequest>) -> Option<bool> {
    match put {
        Put::Done => Some(true),
        // The caller looks again on its next call, not blocking: it needs
        // no word from a request of its own.
        Put::Full => Some(false),
        Put::NoWorkers if in_flight > 1 => Some(false),
        Put::NoWorkers => {
            log::debug!("callpool: a put found no worker and nothing else in flight; refused");
            // Its callable is dropped contained, by the cancel this drop makes.
            drop(unput.take());
            None
        }
        Put::Refused => None,
    }
}

/// The iterator of [`ThreadPool::as_completed`] and
/// [`ThreadPool::as_completed_fallible`]: `(input, outcome)` in the order
/// the requests end. `E` is the fallible function's error type.
/// [`try_next`](Self::try_next) looks without blocking, for a frame loop.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Completions<'p, I: Iterator, F, T, E = Infallible> {
    pool: &'p ThreadPool,
    /// `None` once exhausted, or once the pool refused a put.
    inputs: Option<Fuse<I>>,
    limit: usize,
    f: Arc<F>,
    /// How the worker calls `f`: `Ok` around a plain function's value, or
    /// a fallible one's `Result` as it is. A pointer, not a bound on `F`,
    /// since the two shapes of `F` cannot both be bounds of one impl.
    call: fn(&F, &I::Item) -> Result<T, E>,
    /// The requests in flight (a request kept in `unput` included), by key
    /// (their index here); `spare` holds the cells of the keys to reuse,
    /// so the table never outgrows `limit`.
    flying: Vec<Flying<I::Item, F, T, E>>,
    /// Cells of requests that ended, each with its free key, for the next
    /// inputs (see `Cell`).
    spare: Vec<Held<I::Item, F>>,
    /// The ids of the requests in `flying`, from the first help on a
    /// worker on (`run_one_here`): what a help looks for. Kept, not
    /// gathered per look (with a limit of `k`, `k` looks would cost
    /// `O(k^2)`), and not kept off the pool's workers, where nothing helps.
    flying_ids: Option<HashSet<RequestId>>,
    in_flight: usize,
    /// Each ticket tells its key here as it ends; `None` is a lookout's
    /// nudge (`crate::lookout::recv`).
    done: flume::Sender<Option<usize>>,
    ended: flume::Receiver<Option<usize>>,
    /// The pool handle, if `next` must look out for it (bounded results).
    home: Option<Arc<dyn Home>>,
    /// How long `next` looks before it blocks (`crate::patience`).
    patience: Patience,
    /// A request in flight whose put a callback's panic interrupted, that
    /// found no worker (`Put::NoWorkers`), or that `try_next` found no
    /// room for (`Put::Full`): put first on the next call (`put_or_keep`).
    unput: Option<WorkRequest>,
    /// An outcome taken when the refill after it panicked: the next call
    /// returns it.
    ready: Option<Completed<I::Item, T, E>>,
}

/// An input and its outcome, as [`Completions`] yields them.
type Completed<A, T, E> = (A, Result<T, TaskError<E>>);

impl<'p, I: Iterator, F, T, E> Completions<'p, I, F, T, E> {
    /// The iterator of `as_completed` and `as_completed_fallible`; `call`
    /// is how a worker calls `f` on an input.
    fn new(
        pool: &'p ThreadPool,
        inputs: I,
        limit: usize,
        f: F,
        call: fn(&F, &I::Item) -> Result<T, E>,
    ) -> Self {
        let (done, ended) = flume::unbounded();
        Completions {
            pool,
            inputs: Some(inputs.fuse()),
            limit,
            f: Arc::new(f),
            call,
            flying: Vec::new(),
            spare: Vec::new(),
            flying_ids: None,
            in_flight: 0,
            done,
            ended,
            patience: Patience::new(),
            home: pool.home(),
            unput: None,
            ready: None,
        }
    }
}

impl<I, F, T, E> Completions<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts requests for new inputs while there is room; none while a
    /// request kept for want of a worker (or of room, for `try_next`)
    /// waits to be put again.
    fn fill(&mut self, how: PutHow) {
        if let Some(request) = self.unput.take() {
            let put = put_again_or_keep(self.pool, request, &mut self.unput, how);
            if !self.went_in(put) {
                return;
            }
        }
        while room(self.limit, self.in_flight) {
            let Some(input) = self.inputs.as_mut().and_then(Iterator::next) else {
                self.inputs = None;
                return;
            };
            let held = self.cell_for(input);
            let (call, on_worker) = (self.call, Arc::clone(&held));
            // No home: this iterator looks out for the handle itself.
            let (ticket, task) = Ticket::with_request(
                move || {
                    // Poisoning only means `f` panicked (reported as such); the
                    // input is still there to hand back.
                    let input = on_worker.input.lock().unwrap_or_else(|e| e.into_inner());
                    call(
                        &on_worker.f,
                        input
                            .as_ref()
                            .expect("the input is taken only after the outcome"),
                    )
                },
                None,
            );
            let key = held.key;
            ticket.listen(Listener::Through(Arc::clone(&held) as Arc<dyn Tell>));
            if key == self.flying.len() {
                self.flying.push(None);
            }
            if let Some(ids) = &mut self.flying_ids {
                ids.insert(ticket.id());
            }
            self.flying[key] = Some((held, ticket));
            self.in_flight += 1;
            let put = put_or_keep(self.pool, task, &mut self.unput, how);
            if !self.went_in(put) {
                return;
            }
        }
    }

    /// A cell holding `input`: a spare one (a free key) if the worker of
    /// its last request has let go of it, else a new one with that key
    /// (or the next key, if none is free). The worker has let go of the
    /// callable's clone by the time the ticket tells (it is dropped when
    /// it returns), and of the ticket's only just after it told.
    fn cell_for(&mut self, input: I::Item) -> Held<I::Item, F> {
        let key = match self.spare.pop() {
            Some(mut cell) => match Arc::get_mut(&mut cell) {
                Some(unique) => {
                    *unique.input.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(input);
                    return cell;
                }
                None => cell.key,
            },
            None => self.flying.len(),
        };
        Arc::new(Cell {
            input: Mutex::new(Some(input)),
            f: Arc::clone(&self.f),
            key,
            done: self.done.clone(),
        })
    }

    /// Hands back the outcome of the request `key`, whose ticket told it
    /// ended, with its input, and pulls the next input into the slot it
    /// frees (putting it as `how` says).
    fn hand_back(&mut self, key: usize, how: PutHow) -> Option<Completed<I::Item, T, E>> {
        let (held, ticket) = self.flying.get_mut(key)?.take()?;
        if let Some(ids) = &mut self.flying_ids {
            ids.remove(&ticket.id());
        }
        self.in_flight -= 1;
        let outcome = ticket
            .try_result()
            .unwrap_or_else(|_| unreachable!("a ticket tells it ended only once it has"));
        // The worker let go of the input before the ticket heard.
        let input = held
            .input
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("each input is handed back once");
        self.spare.push(held);
        // A slot is free: pull the next input now, so that it runs while
        // the caller works on this outcome. A panic there (the inputs'
        // own, or a callback's while the put waits) leaves this outcome
        // for the next call.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| self.fill(how))) {
            self.ready = Some((input, outcome));
            panic::resume_unwind(payload);
        }
        Some((input, outcome))
    }

    /// The next `(input, outcome)` if one has ended, without blocking: for
    /// a loop that must not stop, such as a frame loop, which handles what
    /// has ended between frames. [`Poll::Ready`]`(Some(item))` is an
    /// outcome, `Ready(None)` says the iteration is over (every input
    /// pulled and handed back: what `next` says with `None`), and
    /// [`Poll::Pending`] says "nothing yet": requests are in flight, look
    /// again later (nothing wakes the caller; there is no waker).
    ///
    /// As `next` does, it pulls more inputs as slots free up and puts
    /// their requests, at most `limit` in flight, but it never waits to
    /// put: on a full bounded queue (`queue_capacity`) the input is kept,
    /// its request still counted in flight, and put by a later call
    /// (`try_next` or `next`). It may be mixed with `next`: each input
    /// comes back once either way.
    ///
    /// It is a look, not a wait: it runs none of the handle's callbacks
    /// (a bounded result queue: a worker stuck on it holds up what is
    /// queued behind it, so a frame loop on such a handle polls it too,
    /// with [`ThreadPool::poll`](crate::ThreadPool::poll)). On a worker
    /// thread of its pool, when nothing has ended, it runs one of its own
    /// requests still queued there, as
    /// [`Collector::poll_with`](crate::Collector::poll_with) does, so a
    /// loop of looks inside a callable never waits for a worker that is
    /// busy or looping too; elsewhere only the inputs' own iterator runs
    /// here, as it pulls.
    ///
    /// With requests in flight that no worker will run (all dismissed, or
    /// none yet; or a full queue that none empties), it says `Pending` at
    /// every call, as [`ThreadPool::poll`](crate::ThreadPool::poll) says
    /// `Ok(0)`; look at [`ThreadPool::workers`](crate::ThreadPool::workers)
    /// if the loop must notice.
    ///
    /// # Panics
    ///
    /// A panic from the inputs' iterator as it pulls passes through; an
    /// outcome taken before it comes back with the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::task::Poll;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut squares = pool.as_completed(1..=10u64, 3, |n: &u64| n * n);
    /// let mut total = 0;
    /// 'frames: loop {
    ///     // ... draw a frame, handle input ...
    ///     loop {
    ///         match squares.try_next() {
    ///             Poll::Ready(Some((n, square))) => total += square.unwrap_or_else(|e| panic!("{n}: {e}")),
    ///             Poll::Ready(None) => break 'frames, // every input is back
    ///             Poll::Pending => break,             // nothing more this frame
    ///         }
    ///     }
    /// #   std::thread::yield_now();
    /// }
    /// assert_eq!(total, 385);
    /// ```
    pub fn try_next(&mut self) -> Poll<Option<<Self as Iterator>::Item>> {
        if let Some(ready) = self.ready.take() {
            return Poll::Ready(Some(ready));
        }
        self.fill(PutHow::Try);
        if self.in_flight == 0 {
            return Poll::Ready(None);
        }
        let mut helped = false;
        loop {
            match self.ended.try_recv() {
                Ok(Some(key)) => return Poll::Ready(self.hand_back(key, PutHow::Try)),
                // A lookout's nudge, for a blocked `next` only.
                Ok(None) => continue,
                // Never disconnected: this iterator holds a sender. On a
                // worker of its own pool, nothing arrived may mean its
                // requests are queued behind this very callable: a loop of
                // looks would spin for ever, so one of them runs here
                // (as `Collector::poll_with` does), and this looks again.
                Err(_) if !helped && self.run_one_here() => helped = true,
                Err(_) => return Poll::Pending,
            }
        }
    }

    /// On a worker of its own pool: runs here one of its requests in
    /// flight that is still queued (`pool::worker::help`); whether it ran
    /// one. Elsewhere it runs nothing.
    fn run_one_here(&mut self) -> bool {
        if !self.pool.on_worker_thread() {
            return false;
        }
        let Completions {
            pool,
            flying,
            flying_ids,
            ..
        } = self;
        let ids = flying_ids
            .get_or_insert_with(|| flying.iter().flatten().map(|(_, t)| t.id()).collect());
        pool.help(|job| ids.contains(&job.id())) > 0
    }

    /// Whether a put went in (see the free `went_in`).
    fn went_in(&mut self, put: Put) -> bool {
        went_in(put, self.in_flight, &mut self.unput).unwrap_or_else(|| {
            self.refused();
            false
        })
    }

    /// The pool refused a put: its request comes back as cancelled, and no
    /// input is pulled after it.
    fn refused(&mut self) {
        log::debug!("callpool: as_completed stops pulling inputs: the pool refused a put");
        self.inputs = None;
    }
}

impl<I, F, T, E> Iterator for Completions<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Item = (I::Item, Result<T, TaskError<E>>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(ready) = self.ready.take() {
            return Some(ready);
        }
        self.fill(PutHow::Block);
        if self.in_flight == 0 {
            return None;
        }
        if let Some(key) = lookout::try_recv(&self.ended) {
            return self.hand_back(key, PutHow::Block);
        }
        // On a worker of its own pool, what is still queued runs here
        // first: queued behind the workers that wait for it, it could wait
        // for ever (`pool::worker::help`).
        self.run_one_here();
        // We hold a sender ourselves: this blocks until a ticket tells,
        // making room meanwhile for a worker stuck on the handle's full
        // result queue (a request in flight may be queued behind it).
        let key = lookout::recv(
            &self.ended,
            &self.done,
            self.home.as_slice(),
            &self.patience,
        )?;
        self.hand_back(key, PutHow::Block)
    }
}

impl<I: Iterator, F, T, E> Drop for Completions<'_, I, F, T, E> {
    fn drop(&mut self) {
        // An input's `Drop` is user code, run here for the inputs of
        // cancelled requests (and of those that ended unread), and so is
        // an outcome's, whose last owner is the ticket of a request that
        // ended unread: a panic there would leave the other values undone,
        // and a second one abort. Each value is dropped in a containment
        // of its own, as a sweep contains a cancelled request's: a panic
        // dropping one must not skip the next, nor unwind while it drops.
        for (held, ticket) in self.flying.drain(..).flatten() {
            unwind::contain("an input cancelled with its iterator", || {
                ticket.cancel();
            });
            unwind::drop_contained("an input left with its iterator", held);
            unwind::drop_contained("an outcome left with its iterator", ticket);
        }
        unwind::drop_some("an input left with its iterator", self.unput.take());
        unwind::drop_some("an outcome left with its iterator", self.ready.take());
    }
}

impl<I: Iterator, F, T, E> fmt::Debug for Completions<'_, I, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight)
            .field("inputs_left", &self.inputs.is_some())
            .finish_non_exhaustive()
    }
}

/// The iterator of [`ThreadPool::imap`] and [`ThreadPool::imap_fallible`]:
/// outcomes in input order. `E` is the fallible function's error type.
/// [`try_next`](Self::try_next) looks without blocking, for a frame loop.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct InOrder<'p, I: Iterator, F, T, E = Infallible> {
    pool: &'p ThreadPool,
    /// `None` once exhausted, or once the pool refused a put.
    inputs: Option<Fuse<I>>,
    limit: usize,
    f: Arc<F>,
    /// How the worker calls `f` (see `Completions::call`).
    call: fn(&F, I::Item) -> Result<T, E>,
    /// The requests in flight, oldest first.
    flying: VecDeque<Ticket<T, E>>,
    /// A request in flight, the last of `flying`, whose put a callback's
    /// panic interrupted, that found no worker, or that `try_next` found
    /// no room for (see `Completions::unput`).
    unput: Option<WorkRequest>,
}

impl<I, F, T, E> Iterator for InOrder<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Item = Result<T, TaskError<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill(PutHow::Block);
        // Popped only once it has its outcome: a panic in one of the
        // handle's callbacks run while it waits leaves it for the next call.
        let outcome = self.flying.front()?.wait_in_place();
        self.flying.pop_front();
        Some(outcome)
    }
}

impl<I, F, T, E> InOrder<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts the request kept last time, then requests for new inputs
    /// while there is room (putting them as `how` says).
    fn fill(&mut self, how: PutHow) {
        let mut pull = match self.unput.take() {
            Some(request) => {
                let put = put_again_or_keep(self.pool, request, &mut self.unput, how);
                self.went_in(put)
            }
            None => true,
        };
        // The oldest request is waited for by `next`; one kept for want of
        // a worker is the newest, so with another in flight the oldest is
        // another, whose end makes the next call put the kept one again.
        while pull && room(self.limit, self.flying.len()) {
            let Some(input) = self.inputs.as_mut().and_then(Iterator::next) else {
                self.inputs = None;
                break;
            };
            let (f, call) = (Arc::clone(&self.f), self.call);
            let (ticket, task) = Ticket::with_request(move || call(&f, input), self.pool.home());
            self.flying.push_back(ticket);
            let put = put_or_keep(self.pool, task, &mut self.unput, how);
            pull = self.went_in(put);
        }
    }

    /// The next outcome, in input order, if it has ended, without
    /// blocking: [`Poll::Ready`]`(Some(outcome))`, `Ready(None)` once the
    /// iteration is over (what `next` says with `None`), or
    /// [`Poll::Pending`] while the next input's request has not ended
    /// (later ones may have: they wait their turn). For a frame loop, as
    /// [`Completions::try_next`] is.
    ///
    /// As there, it pulls more inputs as slots free up but never waits to
    /// put one (a full bounded queue keeps it for a later call), and it
    /// runs none of the handle's callbacks: it is a look, not a wait. On a
    /// worker thread of its pool, the oldest request, if still queued,
    /// runs here (as in `Completions::try_next`). It may be mixed with
    /// `next`.
    ///
    /// # Panics
    ///
    /// A panic from the inputs' iterator as it pulls passes through; no
    /// outcome is lost to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::task::Poll;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut lines = pool.imap(1..=4u32, 2, |n| format!("line {n}"));
    /// let mut shown = Vec::new();
    /// 'frames: loop {
    ///     // ... draw a frame: the lines so far, in order ...
    ///     loop {
    ///         match lines.try_next() {
    ///             Poll::Ready(Some(line)) => shown.push(line?),
    ///             Poll::Ready(None) => break 'frames,
    ///             Poll::Pending => break,
    ///         }
    ///     }
    /// #   std::thread::yield_now();
    /// }
    /// assert_eq!(shown, ["line 1", "line 2", "line 3", "line 4"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Poll<Option<<Self as Iterator>::Item>> {
        self.fill(PutHow::Try);
        let Some(oldest) = self.flying.pop_front() else {
            return Poll::Ready(None);
        };
        // On a worker of its own pool, the oldest may be queued behind
        // this very callable: run here if so (see `Completions::try_next`).
        if !oldest.is_finished() && self.pool.on_worker_thread() {
            let id = oldest.id();
            self.pool.help(|job| job.id() == id);
        }
        match oldest.try_result() {
            Ok(outcome) => Poll::Ready(Some(outcome)),
            Err(not_yet) => {
                self.flying.push_front(not_yet);
                Poll::Pending
            }
        }
    }
}

impl<'p, I: Iterator, F, T, E> InOrder<'p, I, F, T, E> {
    /// The iterator of `imap` and `imap_fallible`; `call` is how a worker
    /// calls `f` on an input.
    fn new(
        pool: &'p ThreadPool,
        inputs: I,
        limit: usize,
        f: F,
        call: fn(&F, I::Item) -> Result<T, E>,
    ) -> Self {
        InOrder {
            pool,
            inputs: Some(inputs.fuse()),
            limit,
            f: Arc::new(f),
            call,
            flying: VecDeque::new(),
            unput: None,
        }
    }

    /// Whether a put went in (see the free `went_in`).
    fn went_in(&mut self, put: Put) -> bool {
        went_in(put, self.flying.len(), &mut self.unput).unwrap_or_else(|| {
            log::debug!("callpool: imap stops pulling inputs: the pool refused a put");
            self.inputs = None;
            false
        })
    }
}

impl<I: Iterator, F, T, E> Drop for InOrder<'_, I, F, T, E> {
    fn drop(&mut self) {
        for ticket in self.flying.drain(..) {
            // As for `Completions`: the ticket of a request that ended
            // unread is the last owner of its outcome.
            unwind::contain("an input cancelled with its iterator", || {
                ticket.cancel();
            });
            unwind::drop_contained("an outcome left with its iterator", ticket);
        }
        unwind::drop_some("an input left with its iterator", self.unput.take());
    }
}

impl<I: Iterator, F, T, E> fmt::Debug for InOrder<'_, I, F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InOrder")
            .field("limit", &self.limit)
            .field("in_flight", &self.flying.len())
            .field("inputs_left", &self.inputs.is_some())
            .finish_non_exhaustive()
    }
}
