//! The ways a handle hands out outcomes other than through callbacks:
//! [`Ticket`]s for single requests (external commands among them), and
//! cancelling a queued request by id.

use std::fmt;
use std::process::Command;
use std::time::Duration;

use crate::command::{self, CommandError, CommandOutput};
use crate::error::{PutError, TrySubmitError};
use crate::handle::{PutMode, ThreadPool};
use crate::inbox::Job;
use crate::request::task::TaskBox;
use crate::request::Context;
use crate::request::{RequestId, WorkRequest};
use crate::ticket::{
    Call, Fallible, FallibleInContext, InContext, Plain, PlainInContext, Standalone, Ticket,
};
use crate::unwind::Payload;

impl ThreadPool {
    /// Puts `callable(arg)` on the pool and returns a [`Ticket`] for its
    /// outcome; no callback is needed.
    ///
    /// The outcome goes straight to the ticket: this handle never counts the
    /// request in [`pending`](Self::pending), and [`wait`](Self::wait) does
    /// not wait for it. A panic reaches the ticket as
    /// [`TaskError::Panicked`](crate::TaskError::Panicked) with its message.
    /// Like [`put_request`](Self::put_request), it blocks while a bounded
    /// queue is full.
    ///
    /// # Errors
    ///
    /// [`PutError::ShutDown`] at once on a pool that was shut down, and the
    /// other errors of [`put_request`](Self::put_request). The request
    /// handed back in the error has no ticket any more: put it again only
    /// for its effects.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4);
    /// let tickets: Vec<_> = (1..=4u64).map(|n| pool.submit(|n: u64| n * n, n)).collect::<Result<_, _>>()?;
    /// let squares: Vec<u64> = tickets.into_iter().map(|t| t.wait()).collect::<Result<_, _>>()?;
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit<F, A, T>(&self, callable: F, arg: A) -> Result<Ticket<T>, PutError>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.submit_work(Call::<_, _, Plain>::new(callable, arg))
    }

    /// Like [`submit`](Self::submit), but never blocks: when a bounded
    /// request queue ([`queue_capacity`](crate::Builder::queue_capacity))
    /// is full, it submits nothing and hands `callable` and `arg` back,
    /// uncalled, in the error, to be submitted again later (or run
    /// elsewhere). The counterpart of
    /// [`try_put_request`](Self::try_put_request) for tickets.
    ///
    /// Called from one of this pool's own workers it is refused on a full
    /// queue too, as `try_put_request` is (where `submit` would go past
    /// the capacity).
    ///
    /// # Errors
    ///
    /// A [`TrySubmitError`] holding `callable` and `arg`:
    /// [`is_full`](TrySubmitError::is_full) when the bounded queue has no
    /// room, [`is_shut_down`](TrySubmitError::is_shut_down) on a pool that
    /// was shut down.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let queued = pool.try_submit(|n: u64| n + 1, 1)?; // the queue's one place
    /// let (callable, arg) = match pool.try_submit(|n: u64| n * n, 7) {
    ///     Err(full) if full.is_full() => full.into_parts(), // nothing was lost
    ///     other => panic!("expected a full queue, got {other:?}"),
    /// };
    /// drop(open);
    /// assert_eq!(busy.wait(), Ok(()));
    /// assert_eq!(queued.wait(), Ok(2)); // the queue has room again
    /// assert_eq!(pool.try_submit(callable, arg)?.wait(), Ok(49));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit<F, A, T>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<Ticket<T>, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.try_submit_call(Call::<_, _, Plain>::new(callable, arg))
    }

    /// Like [`submit`](Self::submit), for a callable that returns a
    /// `Result`: an `Err(e)` reaches the ticket as
    /// [`TaskError::Failed(e)`](crate::TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let ticket = pool.submit_fallible(|s: &'static str| s.parse::<u8>(), "300")?;
    /// assert!(matches!(ticket.wait(), Err(TaskError::Failed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_fallible<F, A, T, E>(&self, callable: F, arg: A) -> Result<Ticket<T, E>, PutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.submit_work(Call::<_, _, Fallible>::new(callable, arg))
    }

    /// [`try_submit`](Self::try_submit) for a callable that returns a
    /// `Result`, as [`submit_fallible`](Self::submit_fallible) is for
    /// [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As [`try_submit`](Self::try_submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let ticket = pool.try_submit_fallible(|s: &'static str| s.parse::<u8>(), "300")?;
    /// assert!(matches!(ticket.wait(), Err(TaskError::Failed(_))));
    ///
    /// pool.close();
    /// let refused = pool.try_submit_fallible(|s: &'static str| s.parse::<u8>(), "7").unwrap_err();
    /// assert!(refused.is_shut_down());
    /// assert_eq!(refused.into_parts().1, "7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit_fallible<F, A, T, E>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.try_submit_call(Call::<_, _, Fallible>::new(callable, arg))
    }

    /// Like [`submit`](Self::submit), for a callable that is given the
    /// running request's [`Context`], as
    /// [`WorkRequest::with_context`](crate::WorkRequest::with_context)'s
    /// is: to split its work with [`Context::join`], use the worker's
    /// [`worker_state`](Context::worker_state), or put requests of its own
    /// with [`Context::put`].
    ///
    /// Requests it puts go on this handle, as any put through a context
    /// does: each is counted in [`pending`](Self::pending) the moment it is
    /// put, and its callbacks run on the thread that polls this handle.
    /// The ticket's own request is never counted there, so
    /// [`wait`](Self::wait) called before the callable has put them may
    /// return without them. Its children are counted before the ticket
    /// has its outcome, so a `wait` called after the ticket's covers every
    /// one of them (and what they put in turn): wait for the ticket, then
    /// for the handle. With a bounded result queue
    /// ([`result_capacity`](crate::Builder::result_capacity)) the ticket's
    /// wait may run some of their callbacks itself, to make room for a
    /// worker stuck on the full queue: the handle's `wait` then counts only
    /// the ones left.
    ///
    /// Once a graceful [`shutdown`](Self::shutdown) has begun, `cx.put`
    /// refuses children ([`PutError::ShutDown`]), and every child it
    /// accepted before is called back before `shutdown` returns. On a
    /// handle of the [`global`](crate::global) pool, which keeps running,
    /// `shutdown` waits only for what is pending when it looks: a callable
    /// still running then may put children whose outcomes are discarded
    /// with the handle. Wait for the ticket first.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = ThreadPool::new(2);
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let to_sum = Arc::clone(&sum);
    /// let ticket = pool.submit_with_context(move |cx: &Context<'_>, n: u64| {
    ///     for i in 1..=n {
    ///         let sum = Arc::clone(&to_sum);
    ///         cx.put(WorkRequest::new(|i: u64| i * i, i)
    ///             .on_result(move |_, square| { sum.fetch_add(square, Ordering::Relaxed); }))
    ///             .expect("the pool is open");
    ///     }
    ///     n   // how many it put
    /// }, 10)?;
    /// assert_eq!(ticket.wait(), Ok(10));
    /// assert_eq!(pool.wait()?, 10);     // the children, counted before the ticket ended
    /// assert_eq!(sum.load(Ordering::Relaxed), 385);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Fork-join, with the outcome in the ticket:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool};
    ///
    /// fn sum(cx: &Context<'_>, v: &[u64]) -> u64 {
    ///     if v.len() <= 1_000 {
    ///         return v.iter().sum();
    ///     }
    ///     let (left, right) = v.split_at(v.len() / 2);
    ///     let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
    ///     a + b
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let numbers: Vec<u64> = (1..=100_000).collect();
    /// let ticket = pool.submit_with_context(|cx: &Context<'_>, v: Vec<u64>| sum(cx, &v), numbers)?;
    /// assert_eq!(ticket.wait(), Ok(5_000_050_000));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_with_context<F, A, T>(&self, callable: F, arg: A) -> Result<Ticket<T>, PutError>
    where
        F: FnOnce(&Context<'_>, A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.submit_in_context(Call::<_, _, PlainInContext>::new(callable, arg))
    }

    /// [`submit_with_context`](Self::submit_with_context) for a callable
    /// that returns a `Result`, as [`submit_fallible`](Self::submit_fallible)
    /// is for [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, PutError, TaskError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let ticket = pool.submit_fallible_with_context(|cx: &Context<'_>, n: u32| {
    ///     cx.put(WorkRequest::new(|n: u32| n + 1, n).with_id(7))?;
    ///     cx.put(WorkRequest::new(|n: u32| n + 2, n).with_id(7))?; // the id is taken
    ///     Ok::<_, PutError>(())
    /// }, 1)?;
    /// assert!(matches!(ticket.wait(), Err(TaskError::Failed(PutError::DuplicateId(_)))));
    /// assert_eq!(pool.wait()?, 1);      // the first child
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_fallible_with_context<F, A, T, E>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<Ticket<T, E>, PutError>
    where
        F: FnOnce(&Context<'_>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.submit_in_context(Call::<_, _, FallibleInContext>::new(callable, arg))
    }

    /// [`submit_with_context`](Self::submit_with_context) that never
    /// blocks, as [`try_submit`](Self::try_submit) is for
    /// [`submit`](Self::submit): on a full bounded request queue it submits
    /// nothing and hands `callable` and `arg` back, uncalled. Called from
    /// one of this pool's own workers it is refused on a full queue too
    /// (inside a callable, [`Context::put`] goes past the capacity
    /// instead).
    ///
    /// # Errors
    ///
    /// As [`try_submit`](Self::try_submit): a [`TrySubmitError`] holding
    /// `callable` and `arg`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let fan_out = |cx: &Context<'_>, n: u64| {
    ///     for i in 0..n {
    ///         cx.put(WorkRequest::new(|i: u64| i * i, i)).expect("the pool is open");
    ///     }
    ///     n
    /// };
    /// let queued = pool.try_submit_with_context(fan_out, 2)?; // the queue's one place
    /// let (callable, arg) = match pool.try_submit_with_context(fan_out, 3) {
    ///     Err(full) if full.is_full() => full.into_parts(), // nothing was lost
    ///     other => panic!("expected a full queue, got {other:?}"),
    /// };
    /// drop(open);
    /// assert_eq!((busy.wait(), queued.wait()), (Ok(()), Ok(2)));
    /// assert_eq!(pool.wait()?, 2);      // its children: the queue has room again
    /// assert_eq!(pool.try_submit_with_context(callable, arg)?.wait(), Ok(3));
    /// assert_eq!(pool.wait()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit_with_context<F, A, T>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<Ticket<T>, TrySubmitError<F, A>>
    where
        F: FnOnce(&Context<'_>, A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.submit_in_context_in(
            Call::<_, _, PlainInContext>::new(callable, arg),
            PutMode::Try,
        )
    }

    /// [`try_submit_with_context`](Self::try_submit_with_context) for a
    /// callable that returns a `Result`, as
    /// [`submit_fallible`](Self::submit_fallible) is for
    /// [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As [`try_submit`](Self::try_submit).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, PutError, TaskError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let ticket = pool.try_submit_fallible_with_context(|cx: &Context<'_>, n: u32| {
    ///     cx.put(WorkRequest::new(|n: u32| n + 1, n).with_id(7))?;
    ///     cx.put(WorkRequest::new(|n: u32| n + 2, n).with_id(7))?; // the id is taken
    ///     Ok::<_, PutError>(())
    /// }, 1)?;
    /// assert!(matches!(ticket.wait(), Err(TaskError::Failed(PutError::DuplicateId(_)))));
    /// assert_eq!(pool.wait()?, 1);      // the first child
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit_fallible_with_context<F, A, T, E>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        F: FnOnce(&Context<'_>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.submit_in_context_in(
            Call::<_, _, FallibleInContext>::new(callable, arg),
            PutMode::Try,
        )
    }

    /// [`submit_with_context`](Self::submit_with_context) that waits at
    /// most `timeout` for room in a full bounded queue, as
    /// [`submit_timeout`](Self::submit_timeout) is for
    /// [`submit`](Self::submit): then it submits nothing and hands
    /// `callable` and `arg` back. While it waits, this thread handles the
    /// handle's ready results, as a blocked put does. Called from one of
    /// this pool's own workers it does not wait, as
    /// [`submit_timeout`](Self::submit_timeout) does not: the request goes
    /// in past the capacity at once.
    ///
    /// # Errors
    ///
    /// As [`submit_timeout`](Self::submit_timeout): a [`TrySubmitError`]
    /// holding `callable` and `arg`.
    ///
    /// # Panics
    ///
    /// As [`submit_timeout`](Self::submit_timeout): a panic in one of the
    /// handle's callbacks run while it waits passes through; `callable`
    /// and `arg` are then dropped, unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let queued = pool.submit(|n: u64| n + 1, 1)?; // the queue's one place
    /// let put_one = |cx: &Context<'_>, n: u64| cx.put(WorkRequest::new(|n: u64| n, n)).is_ok();
    /// let late = pool.submit_with_context_timeout(put_one, 7, Duration::from_millis(10));
    /// let (callable, arg) = match late {
    ///     Err(refused) if refused.is_timed_out() => refused.into_parts(),
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// };
    /// drop(open);
    /// assert_eq!((busy.wait(), queued.wait()), (Ok(()), Ok(2)));
    /// let again = pool.submit_with_context_timeout(callable, arg, Duration::from_secs(60))?;
    /// assert_eq!(again.wait(), Ok(true));
    /// assert_eq!(pool.wait()?, 1);      // its child
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_with_context_timeout<F, A, T>(
        &self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<Ticket<T>, TrySubmitError<F, A>>
    where
        F: FnOnce(&Context<'_>, A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.submit_in_context_in(
            Call::<_, _, PlainInContext>::new(callable, arg),
            PutMode::within(timeout),
        )
    }

    /// [`submit_with_context_timeout`](Self::submit_with_context_timeout)
    /// for a callable that returns a `Result`, as
    /// [`submit_fallible`](Self::submit_fallible) is for
    /// [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Panics
    ///
    /// As [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Examples
    ///
    /// A full queue with no worker to empty it is refused at once, not
    /// waited on until the timeout:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::time::Duration;
    ///
    /// let put_child = |cx: &Context<'_>, n: u64| cx.put(WorkRequest::new(|n: u64| n * n, n));
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    /// let first = pool.submit_fallible_with_context_timeout(put_child, 3, Duration::from_secs(60))?;
    /// let refused = pool
    ///     .submit_fallible_with_context_timeout(put_child, 4, Duration::from_secs(60))
    ///     .unwrap_err();
    /// assert!(refused.is_no_workers());
    /// let (callable, arg) = refused.into_parts();
    /// pool.create_workers(1)?;
    /// assert!(first.wait().is_ok());    // the child's id
    /// let again = pool.submit_fallible_with_context_timeout(callable, arg, Duration::from_secs(60))?;
    /// assert!(again.wait().is_ok());
    /// assert_eq!(pool.wait()?, 2);      // the two children
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_fallible_with_context_timeout<F, A, T, E>(
        &self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        F: FnOnce(&Context<'_>, A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.submit_in_context_in(
            Call::<_, _, FallibleInContext>::new(callable, arg),
            PutMode::within(timeout),
        )
    }

    /// Like [`submit`](Self::submit), but waits at most `timeout` for room
    /// in a full bounded queue; then, as [`try_submit`](Self::try_submit)
    /// does, it submits nothing and hands `callable` and `arg` back. The
    /// counterpart of [`put_request_timeout`](Self::put_request_timeout)
    /// for tickets: while it waits, this thread handles the handle's ready
    /// results as a blocked put does. Called from one of this pool's own
    /// workers it does not wait: the request goes in past the capacity at
    /// once, as from [`submit`](Self::submit) (a worker waiting for room
    /// could wait for itself); [`try_submit`](Self::try_submit) is the
    /// form that a full queue refuses there.
    ///
    /// # Errors
    ///
    /// A [`TrySubmitError`] holding `callable` and `arg`:
    /// [`is_timed_out`](TrySubmitError::is_timed_out) when the queue stayed
    /// full until `timeout`, [`is_no_workers`](TrySubmitError::is_no_workers)
    /// when it is full with no worker left to empty it,
    /// [`is_shut_down`](TrySubmitError::is_shut_down) on a pool that was
    /// shut down.
    ///
    /// # Panics
    ///
    /// A panic in one of the handle's callbacks run while it waits passes
    /// through; `callable` and `arg` are then dropped, unrun.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move |_: ()| { let _ = gate.recv(); }, ())?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let queued = pool.submit(|n: u64| n + 1, 1)?; // the queue's one place
    /// let late = pool.submit_timeout(|n: u64| n * n, 7, Duration::from_millis(10));
    /// let (callable, arg) = match late {
    ///     Err(refused) if refused.is_timed_out() => refused.into_parts(),
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// };
    /// drop(open);
    /// assert_eq!((busy.wait(), queued.wait()), (Ok(()), Ok(2)));
    /// let again = pool.submit_timeout(callable, arg, Duration::from_secs(60))?;
    /// assert_eq!(again.wait(), Ok(49));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout<F, A, T>(
        &self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<Ticket<T>, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
    {
        self.submit_call_in(
            Call::<_, _, Plain>::new(callable, arg),
            PutMode::within(timeout),
        )
    }

    /// [`submit_timeout`](Self::submit_timeout) for a callable that
    /// returns a `Result`, as [`submit_fallible`](Self::submit_fallible)
    /// is for [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// As [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Panics
    ///
    /// As [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Examples
    ///
    /// A full queue with no worker to empty it is refused at once, not
    /// waited on until the timeout:
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let parse = |s: &'static str| s.parse::<u8>();
    /// let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    /// let first = pool.submit_fallible_timeout(parse, "7", Duration::from_secs(60))?;
    /// let refused = pool.submit_fallible_timeout(parse, "300", Duration::from_secs(60)).unwrap_err();
    /// assert!(refused.is_no_workers());
    /// let (callable, arg) = refused.into_parts();
    /// pool.create_workers(1)?;
    /// assert_eq!(first.wait(), Ok(7));
    /// let again = pool.submit_fallible_timeout(callable, arg, Duration::from_secs(60))?;
    /// assert!(matches!(again.wait(), Err(TaskError::Failed(_))));   // 300 is no u8
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_fallible_timeout<F, A, T, E>(
        &self,
        callable: F,
        arg: A,
        timeout: Duration,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'static,
        A: Send + 'static,
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        self.submit_call_in(
            Call::<_, _, Fallible>::new(callable, arg),
            PutMode::within(timeout),
        )
    }

    /// Runs `cmd` on a worker as [`WorkRequest::command`](crate::WorkRequest::command) does, and returns
    /// a [`Ticket`] for its outcome instead of calling callbacks:
    /// `ticket.wait()` gives the [`CommandOutput`] (a non-zero exit is an
    /// output too), or the [`TaskError`](crate::TaskError) whose `Failed` holds the
    /// [`CommandError`], the error a command request's error callback
    /// receives.
    ///
    /// As for [`submit`](Self::submit), the ticket's outcome never reaches
    /// this handle ([`wait`](Self::wait) does not wait for it), and the
    /// put blocks while a bounded queue is full.
    /// [`Ticket::cancel`] before a worker has taken the command means it
    /// never starts; [`shutdown_now`](Self::shutdown_now) kills it while it
    /// runs ([`CommandError::Killed`]). Everything
    /// [`WorkRequest::command`](crate::WorkRequest::command) says of pipes, stdin and the processes a
    /// command starts holds here too.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit): a [`PutError`] if the request was not
    /// put. The request handed back in it has no ticket any more.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::process::Command;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "echo hello; exit 3"]);
    /// let ticket = pool.submit_command(cmd)?;
    /// let output = ticket.wait()?;
    /// assert_eq!(output.status.code(), Some(3));
    /// assert_eq!(output.stdout_lossy(), "hello\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_command(
        &self,
        cmd: Command,
    ) -> Result<Ticket<CommandOutput, CommandError>, PutError> {
        self.submit_fallible(|cmd| command::run(cmd, None), cmd)
    }

    /// [`submit_command`](Self::submit_command), killing the program if it
    /// has not finished `timeout` after it started, as
    /// [`WorkRequest::command_timeout`](crate::WorkRequest::command_timeout) does: the ticket's outcome is then
    /// [`CommandError::TimedOut`], with the output written until the kill.
    ///
    /// # Errors
    ///
    /// As [`submit_command`](Self::submit_command).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CommandError, TaskError, ThreadPool};
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut sleep = Command::new("sleep");
    /// sleep.arg("30");
    /// let ticket = pool.submit_command_timeout(sleep, Duration::from_millis(100))?;
    /// match ticket.wait() {
    ///     Err(TaskError::Failed(CommandError::TimedOut { after, .. })) => {
    ///         assert_eq!(after, Duration::from_millis(100));
    ///     }
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_command_timeout(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Ticket<CommandOutput, CommandError>, PutError> {
        self.submit_fallible(move |cmd| command::run(cmd, Some(timeout)), cmd)
    }

    /// Puts a ticket's request; the ticket if it was put.
    fn submit_work<W, T, E>(&self, work: W) -> Result<Ticket<T, E>, PutError>
    where
        W: Standalone<T, E> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (ticket, task) = Ticket::with_request(work, self.home());
        self.put_task(task)?;
        Ok(ticket)
    }

    /// A ticket's put for work given the running request's context.
    fn submit_in_context<W, T, E>(&self, work: W) -> Result<Ticket<T, E>, PutError>
    where
        W: InContext<T, E> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (ticket, task) = Ticket::in_context(work, self.home());
        self.put_task(task)?;
        Ok(ticket)
    }

    /// Puts a ticket's request without blocking; the ticket if it was put,
    /// or the callable and argument back if not.
    fn try_submit_call<F, A, M, T, E>(
        &self,
        call: Call<F, A, M>,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        Call<F, A, M>: Standalone<T, E> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.submit_call_in(call, PutMode::Try)
    }

    /// A ticket's put in `mode`, handing the call back if it is refused.
    fn submit_call_in<F, A, M, T, E>(
        &self,
        call: Call<F, A, M>,
        mode: PutMode,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        Call<F, A, M>: Standalone<T, E> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let put = |task| self.put(WorkRequest::from_task(task), mode);
        Ticket::put_or_take_back(call, self.home(), put).map_err(handed_back)
    }

    /// `submit_call_in` for work given the running request's context.
    fn submit_in_context_in<F, A, M, T, E>(
        &self,
        call: Call<F, A, M>,
        mode: PutMode,
    ) -> Result<Ticket<T, E>, TrySubmitError<F, A>>
    where
        Call<F, A, M>: InContext<T, E> + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let put = |task| self.put(WorkRequest::from_task(task), mode);
        Ticket::put_in_context_or_take_back(call, self.home(), put).map_err(handed_back)
    }

    /// Puts a request made inside the crate, as `put_request` does.
    pub(crate) fn put_task(&self, task: TaskBox) -> Result<RequestId, PutError> {
        self.put(WorkRequest::from_task(task), PutMode::Block)
    }

    /// `put_task`, but if one of the handle's callbacks panics while the
    /// put waits for room, the request comes back with the panic, not put,
    /// for the caller to put again later (an iterator whose ticket for it
    /// is already out).
    pub(crate) fn put_request_or_panic(
        &self,
        request: WorkRequest,
    ) -> Result<Result<RequestId, PutError>, (WorkRequest, Payload)> {
        self.put_request_in_or_panic(request, PutMode::Block)
    }

    /// [`put_request_or_panic`](Self::put_request_or_panic) that waits for
    /// room as `mode` says.
    pub(crate) fn put_request_in_or_panic(
        &self,
        request: WorkRequest,
        mode: PutMode,
    ) -> Result<Result<RequestId, PutError>, (WorkRequest, Payload)> {
        self.put_or_panic(request, mode)
            .map_err(|(job, payload)| (job.into_request(), payload))
    }

    /// [`put_request_or_panic`](Self::put_request_or_panic) that waits at
    /// most `timeout` for room (`try_put_request`'s way, never waiting,
    /// with `None`).
    pub(crate) fn put_request_within_or_panic(
        &self,
        request: WorkRequest,
        timeout: Option<Duration>,
    ) -> Result<Result<RequestId, PutError>, (WorkRequest, Payload)> {
        let mode = timeout.map_or(PutMode::Try, PutMode::within);
        self.put_request_in_or_panic(request, mode)
    }

    /// Cancels the request `id` of this handle if it is still queued (or,
    /// for a child that a running callable put, still held in its worker's
    /// slot: see [`Context::put`](crate::Context::put)): it never runs, and
    /// its error callback hears
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled) exactly once,
    /// on the thread that next polls this handle; an executed request
    /// ([`execute`](Self::execute)), which has no callback, has its callable
    /// dropped here, on this thread. Returns whether it was
    /// found (queued, or held). A request that is running or has ended, an id this handle
    /// never put, a ticket's request (cancel it with [`Ticket::cancel`]),
    /// or a request put through a [`Collector`](crate::Collector) or a
    /// [`Scope`](crate::Scope) (their outcomes never reach this handle's
    /// callbacks) gives `false` and changes nothing.
    ///
    /// It looks through the workers' slots and then the queue, so it costs
    /// time in proportion to the requests queued, and
    /// requests put by other threads while it looks may go ahead of older
    /// ones. A worker takes a request and a cancel removes it in one step
    /// each, on the queue itself (or under the slot's lock), so exactly one
    /// of them gets it.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// pool.put_request(WorkRequest::new(move |_: ()| { let _ = gate.recv(); }, ()))?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let id = pool.put_request(
    ///     WorkRequest::new(|_: ()| unreachable!("cancelled"), ())
    ///         .on_error(move |_, err| tx.send(err).unwrap()),
    /// )?;
    /// assert!(pool.cancel(id));
    /// assert!(!pool.cancel(id)); // once only
    /// drop(open);
    /// pool.wait()?;
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [TaskError::Cancelled]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self, id: RequestId) -> bool {
        self.cancel_unstarted(|job| job.id() == id) > 0
    }

    /// Cancels every request of this handle that no worker has started:
    /// those queued, and the children that running callables put and
    /// their workers still hold (see [`Context::put`](crate::Context::put)).
    /// None of them runs; each one's error callback hears
    /// [`TaskError::Cancelled`](crate::TaskError::Cancelled) exactly once,
    /// on the thread that next polls this handle (an executed request's
    /// callable is dropped here, on this thread). Returns how many.
    ///
    /// The pool stays open: requests that are running go on (and may put
    /// more children, which this does not reach), and later puts are
    /// accepted. Python's `concurrent.futures` has this as
    /// `shutdown(cancel_futures=True)`; here it takes `&self`, so a
    /// callback can call it (to stop a crawl after N pages, say) and the
    /// handle stays usable. Other handles' requests, tickets (cancel each
    /// with [`Ticket::cancel`](crate::Ticket::cancel)), and requests put
    /// through a [`Collector`](crate::Collector) or a
    /// [`Scope`](crate::Scope) are not touched. It costs time in
    /// proportion to the requests queued, as [`cancel`](Self::cancel)
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// pool.put_request(WorkRequest::new(move |_: ()| { let _ = gate.recv(); }, ()))?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// for i in 0..10 {
    ///     let tx = tx.clone();
    ///     pool.put_request(WorkRequest::new(|i: u32| i, i).on_error(move |_, e| tx.send(e).unwrap()))?;
    /// }
    /// assert_eq!(pool.cancel_queued(), 10);
    /// drop(open);
    /// assert_eq!(pool.wait()?, 11);
    /// assert_eq!(rx.try_iter().filter(|e| *e == TaskError::Cancelled).count(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_queued(&self) -> usize {
        self.cancel_unstarted(|_| true)
    }

    /// Cancels this handle's unstarted requests that `which` picks; how
    /// many.
    fn cancel_unstarted(&self, which: impl Fn(&Job) -> bool) -> usize {
        let inbox = self.inbox();
        let pool = self.shared();
        let found = pool.take_unstarted(|job| job.counted_on_inbox(inbox) && which(job));
        let cancelled = found.len();
        pool.count_cancelled(cancelled);
        for job in found {
            log::debug!("callpool: request {} cancelled by its handle", job.id());
            job.cancel();
        }
        cancelled
    }
}

/// A refused ticket's put: the error, with the callable and its argument
/// handed back uncalled.
fn handed_back<F, A, M>((refused, call): (PutError, Call<F, A, M>)) -> TrySubmitError<F, A> {
    let (callable, arg) = call.into_parts();
    TrySubmitError::new(&refused, callable, arg)
}
