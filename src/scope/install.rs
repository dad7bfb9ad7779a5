//! [`ThreadPool::install`] and [`ThreadPool::join`]: one piece of work
//! that may borrow from the caller, run on the pool with a [`Context`],
//! its value handed back to the caller (its panic resumed there). Built
//! on a scope of one request, so the scope's lending, waiting and help
//! from a waiting worker are what make it sound and deadlock-free.

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use super::Scope;
use crate::error::InstallError;
use crate::handle::{PutMode, ThreadPool};
use crate::request::{Context, TaskError};
use crate::unwind;

impl ThreadPool {
    /// Runs `op` on one of the pool's workers, with that worker's
    /// [`Context`], and returns its value: the way into the pool from a
    /// thread that is not running a request, so that work from outside can
    /// [`join`](Context::join), put children, or read its worker's state.
    ///
    /// `op` may borrow from the caller's stack, as in a
    /// [`scope`](Self::scope) (it must be `Send`, and so must its value);
    /// this call returns once `op` has ended. If `op` panics, the panic
    /// passes on here, once `op` has ended, with its own payload (as
    /// `rayon::ThreadPool::install`'s does), and the pool counts the work
    /// as panicked in [`stats`](Self::stats). What `op` puts through its
    /// context belongs to this handle, as any request's children do: this
    /// call does not wait for them, `wait` does.
    ///
    /// On a full bounded queue it waits for room, handling this handle's
    /// results meanwhile, as [`put_request`](Self::put_request) does (a
    /// panic in one of their callbacks passes on here, `op` dropped
    /// unrun); [`try_install`](Self::try_install) refuses at once
    /// instead, and [`install_timeout`](Self::install_timeout) waits at
    /// most a timeout.
    ///
    /// Like a scope, called on one of this pool's workers it never waits
    /// for itself: if no other worker has started `op`, the calling worker
    /// runs it. On a worker of *another* pool it only waits, running
    /// nothing of its own pool meanwhile (unlike `rayon`'s `install`): two
    /// pools whose every worker installs into the other wait until a
    /// worker is added to one of them. A pool whose workers are all
    /// dismissed (and left open) waits until workers are added, once `op`
    /// is queued; a full bounded queue that no worker is left to empty
    /// refuses it instead ([`InstallError::NoWorkers`], from
    /// `install_timeout` too, at once).
    ///
    /// # Errors
    ///
    /// [`InstallError`] if the pool refuses the work (it has been shut
    /// down, or its bounded queue is full with no worker left to empty
    /// it), or if it was cancelled before it started (by a
    /// [`shutdown_now`](Self::shutdown_now) on any handle, or a shutdown
    /// with no worker left to drain the queue; `cancel` and
    /// `cancel_queued` do not reach it, as they do not reach a scope's
    /// requests). The work has been dropped unrun by then.
    ///
    /// # Examples
    ///
    /// A sum over a slice this thread owns, split on the pool:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool};
    ///
    /// fn sum(cx: &Context<'_>, xs: &[u64]) -> u64 {
    ///     if xs.len() <= 1_000 {
    ///         return xs.iter().sum();
    ///     }
    ///     let (left, right) = xs.split_at(xs.len() / 2);
    ///     let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
    ///     a + b
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let xs: Vec<u64> = (1..=100_000).collect();
    /// let total = pool.install(|cx| sum(cx, &xs))?; // borrows `xs`
    /// assert_eq!(total, 100_000 * 100_001 / 2);
    /// assert_eq!(xs.len(), 100_000); // still ours
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A panic in `op` comes out here:
    ///
    /// ```
    /// use std::panic::{self, AssertUnwindSafe};
    ///
    /// let pool = callpool::ThreadPool::new(1);
    /// let caught = panic::catch_unwind(AssertUnwindSafe(|| {
    ///     pool.install(|_| -> u32 { panic!("deliberate") })
    /// }));
    /// assert_eq!(caught.unwrap_err().downcast_ref::<&str>(), Some(&"deliberate"));
    /// assert_eq!(pool.install(|_| 7)?, 7); // the pool goes on
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// What `op` borrows must outlive the call, and a value that is not
    /// `Send` cannot go to a worker:
    ///
    /// ```compile_fail
    /// use std::rc::Rc;
    ///
    /// let pool = callpool::ThreadPool::new(1);
    /// let local = Rc::new(5);
    /// let n = pool.install(|_| *local + 1); // `Rc` cannot be shared between threads
    /// ```
    pub fn install<'env, F, R>(&'env self, op: F) -> Result<R, InstallError>
    where
        F: FnOnce(&Context<'_>) -> R + Send + 'env,
        R: Send + 'env,
    {
        self.install_in(op, PutMode::Block)
    }

    /// [`install`](Self::install) that never waits for room: on a full
    /// bounded queue it returns [`InstallError::Full`] at once, `op`
    /// dropped unrun, as [`try_put_request`](Self::try_put_request)
    /// refuses a request (on one of this pool's own workers too). Once
    /// `op` is queued, this call waits for it to end, as `install` does.
    ///
    /// # Errors
    ///
    /// As [`install`](Self::install), and [`InstallError::Full`] when the
    /// bounded queue has no room.
    ///
    /// # Examples
    ///
    /// A full queue refuses at once; `op` can be made again and installed
    /// once there is room:
    ///
    /// ```
    /// use callpool::{InstallError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// // The worker waits on the gate; a second request fills the queue.
    /// pool.execute(move || { let _ = gate.recv(); })?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// pool.execute(|| {})?;
    /// let words = ["pool", "of", "threads"];
    /// let refused = pool.try_install(|_| words.len());
    /// assert!(matches!(refused, Err(InstallError::Full(_))));
    /// drop(open);
    /// pool.wait()?; // the queue is empty again
    /// assert_eq!(pool.try_install(|_| words.len())?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_install<'env, F, R>(&'env self, op: F) -> Result<R, InstallError>
    where
        F: FnOnce(&Context<'_>) -> R + Send + 'env,
        R: Send + 'env,
    {
        self.install_in(op, PutMode::Try)
    }

    /// [`install`](Self::install) that waits at most `timeout` for room in
    /// a full bounded queue, handling this handle's results meanwhile as
    /// [`put_request_timeout`](Self::put_request_timeout) does; then it
    /// returns [`InstallError::Timeout`], `op` dropped unrun. The timeout
    /// bounds only the wait for room: once `op` is queued, this call waits
    /// for it to end, however long it runs (it may borrow from the
    /// caller's stack, so it cannot be left behind). On one of this
    /// pool's own workers it never waits for room, as `install` does not:
    /// the work goes past the queue's capacity (a worker waiting for room
    /// in a queue that only the workers empty could wait for itself), and
    /// the calling worker runs it if no other has started it.
    ///
    /// # Errors
    ///
    /// As [`install`](Self::install), and [`InstallError::Timeout`] when no
    /// room came in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{InstallError, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    /// let (open, gate) = std::sync::mpsc::channel::<()>();
    /// pool.execute(move || { let _ = gate.recv(); })?;
    /// # while pool.queued() > 0 { std::thread::yield_now(); }
    /// pool.execute(|| {})?; // the queue is full
    /// let refused = pool.install_timeout(|_| 1, Duration::from_millis(10));
    /// assert!(matches!(refused, Err(InstallError::Timeout(_))));
    /// drop(open); // room comes soon: the worker empties the queue
    /// assert_eq!(pool.install_timeout(|_| 2, Duration::from_secs(60))?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install_timeout<'env, F, R>(
        &'env self,
        op: F,
        timeout: Duration,
    ) -> Result<R, InstallError>
    where
        F: FnOnce(&Context<'_>) -> R + Send + 'env,
        R: Send + 'env,
    {
        self.install_in(op, PutMode::within(timeout))
    }

    /// `install` and its `try_` and `_timeout` forms: waits for room as
    /// `mode` says.
    fn install_in<'env, F, R>(&'env self, op: F, mode: PutMode) -> Result<R, InstallError>
    where
        F: FnOnce(&Context<'_>) -> R + Send + 'env,
        R: Send + 'env,
    {
        // `op`'s value (or panic) lands here, on the caller's stack: the
        // scope waits for the request, so the borrow cannot outlive it.
        let mut ran: Option<thread::Result<R>> = None;
        let slot = &mut ran;
        let ended = self.scope(|s: &mut Scope<'_, '_, ()>| {
            let put = s.lend_in(
                move |cx: &Context<'_>| {
                    // Caught here so that the caller gets the payload
                    // itself, not the message a request's panic keeps.
                    let ran = panic::catch_unwind(AssertUnwindSafe(|| op(cx)));
                    let message = ran.as_ref().err().map(unwind::message);
                    *slot = Some(ran);
                    // The request itself still ends as panicked, so that
                    // the pool counts it so (`stats().panicked`), as it
                    // counts any request's panic. `resume_unwind` runs no
                    // panic hook: nothing is printed twice.
                    if let Some(message) = message {
                        panic::resume_unwind(Box::new(message));
                    }
                    Ok(())
                },
                mode,
            );
            // A refused request is dropped here, inside the body: it holds
            // its loan, which the scope waits for.
            let id = put.map_err(InstallError::from_refused)?;
            let mut outcome = None;
            s.wait_with(|_, heard| outcome = Some(heard));
            Ok::<_, InstallError>((id, outcome))
        });
        let (id, outcome) = ended?;
        match ran {
            Some(Ok(value)) => Ok(value),
            Some(Err(payload)) => panic::resume_unwind(payload),
            // Never started: the only outcome a request that did not run
            // can have here (a scope's request has no deadline).
            None => {
                debug_assert!(matches!(outcome, Some(Err(TaskError::Cancelled))));
                Err(InstallError::Cancelled(id))
            }
        }
    }

    /// Runs `a` and `b` on the pool, in parallel where a worker is free,
    /// and returns both values: [`Context::join`] from a thread that is not
    /// running a request (it is `install(|cx| cx.join(a, b))`). Both may
    /// borrow from the caller's stack; each gets a context of its own.
    ///
    /// # Errors
    ///
    /// As [`install`](Self::install).
    ///
    /// # Panics
    ///
    /// As [`Context::join`]: a panic in either half passes on here once
    /// both halves are over (`a`'s if both panic). If `a` panics, `b` is
    /// dropped unrun if no other worker has taken it, and waited for if
    /// one has: unlike `rayon::join`, `b` is not sure to run.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = callpool::ThreadPool::new(2);
    /// let words = vec!["pool", "of", "threads"];
    /// let (letters, longest) = pool.join(
    ///     |_| words.iter().map(|w| w.len()).sum::<usize>(),
    ///     |_| words.iter().copied().max_by_key(|w| w.len()),
    /// )?;
    /// assert_eq!((letters, longest), (13, Some("threads")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join<'env, A, B, RA, RB>(&'env self, a: A, b: B) -> Result<(RA, RB), InstallError>
    where
        A: FnOnce(&Context<'_>) -> RA + Send + 'env,
        B: FnOnce(&Context<'_>) -> RB + Send + 'env,
        RA: Send + 'env,
        RB: Send + 'env,
    {
        self.install(move |cx| cx.join(a, b))
    }
}
