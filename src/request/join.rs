//! [`Context::join`]: a running request splits off a second piece of work,
//! which another worker may take while the request runs the first piece;
//! if none has taken it by then, the request runs it itself. So a
//! fork-join callable never waits for a worker that is not coming: with
//! one worker, or every other worker busy, `join` runs both pieces in turn.
//!
//! The offered piece (the *half*) is lent (`scope::lend::offer_while`,
//! which keeps its borrows sound) and carried by a [`HalfTask`] job through
//! the worker's slot and the queue. Whoever moves it out of its offer
//! first, under the offer's lock, runs it: a worker that took the job, or
//! the join itself. A job that finds it gone ends as a no-op; a sweep that
//! cancels the job leaves it for the join. So it runs at most once, and
//! exactly once unless the first piece panics: then its join drops it
//! unrun if nobody took it.
//!
//! ```text
//!   join ──► offer (slot, as a child) ──► run `a` here ──► claim the offer:
//!                                                            Open: take it back, run it here
//!   another worker takes the job: Open ──► Running ──► Ran ─► Running: wait for Ran
//! ```

use std::sync::Arc;

use crate::request::context::Context;
use crate::request::task::{Ended, Envelope, Route, Task, TaskBox};
use crate::request::{RequestId, WorkRequest};
use crate::scope::lend::{offer_while, Offered};

/// The job that carries an offered half through the worker's slot and the
/// queue: no callable, no outcome, no callback of its own (`Route::Parent`).
struct HalfTask {
    half: Arc<dyn Offered>,
    /// The request that called `join`: the half's context says its id, and
    /// what the half puts goes to that request's handle.
    parent: RequestId,
}

impl Task for HalfTask {
    fn run(&mut self, cx: &Context<'_>) {
        // Nothing, if its join took it back already. The worker stops
        // counting the half as running before its join can hear that it
        // is over (`Stats::running`): the join's request may end, and a
        // `wait` return, the moment it does.
        self.half.run(&Context::new(cx.spawner, self.parent), &|| {
            cx.spawner.piece_done()
        });
    }

    // Cancelled or dropped unrun (a sweep, a closed pool): the half stays
    // offered, and its join runs it.
    fn cancel(&mut self) {}

    fn release(&mut self) {}

    fn route(&self) -> Route {
        Route::Parent
    }

    fn report(&mut self, id: RequestId) {
        log::error!("callpool bug: the half {id} of a join routed to a handle");
    }

    fn ended(&self) -> Ended {
        // Never counted: a half is a piece of its request, not a request.
        Ended::Unstarted
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}

impl Context<'_> {
    /// Runs `a` and `b`, `b` possibly on another worker, and returns both
    /// results: fork-join that cannot wait for a worker that is not
    /// coming.
    ///
    /// `b` is offered to the pool's other workers as a child would be
    /// (see [`put`](Self::put)): an idle worker takes it. Meanwhile this
    /// worker runs `a`. If no worker has taken `b` by the time `a`
    /// returns, this worker takes it back and runs it itself; if one has,
    /// `join` waits for it to finish. So with one worker, or with every
    /// other worker busy, `join` runs `a` and then `b`, and never waits for
    /// a worker that may not come (a callable that waits for its own
    /// children through a channel does). Each half runs at most once, and
    /// `b` runs unless `a` panics first (see *Panics*). While the pool
    /// shuts down (it no longer accepts requests), `b` is not offered:
    /// `join` runs `a` and then `b` here.
    ///
    /// Both halves may borrow from the caller's stack (`b`'s captures must
    /// be [`Send`], since another worker may run it): what the callable
    /// owns, or, for a request put with
    /// [`Scope::put_with_context`](crate::Scope::put_with_context), what
    /// the thread that opened the scope owns. Each half gets a
    /// context of its own, on its worker, to put requests or `join` again:
    /// recursive divide-and-conquer nests `join` calls. What a half puts
    /// goes on the running request's handle, as this context's `put`
    /// does; [`id`](Self::id) in either half is the running request's.
    ///
    /// Each half may run on this worker: a guard from
    /// [`worker_state`](Self::worker_state) held across `join` makes the
    /// second half's own `worker_state` call panic (already borrowed)
    /// when it is taken back here. Take the state inside each half.
    ///
    /// A half is not a request: it has no id of its own to cancel, no
    /// callbacks, and is not counted in [`pending`](crate::ThreadPool::pending)
    /// nor in the requests ended that [`stats`](crate::ThreadPool::stats)
    /// counts (its request is). Only while its job waits in the shared
    /// queue for another worker (offered to a sleeping one, or queued with
    /// the request's children) is it one of the jobs
    /// [`queued`](crate::ThreadPool::queued) counts, until a worker takes
    /// that job, even if `join` has taken the half back meanwhile. Nothing
    /// stops it once offered: [`shutdown_now`](crate::ThreadPool::shutdown_now)
    /// and a pool closing leave it to this call, which runs it, as they
    /// let the running request finish.
    ///
    /// # Panics
    ///
    /// If `a` or `b` panics, `join` panics with that panic once both
    /// halves are over (with `a`'s if both do). If `a` panics, `b` is
    /// dropped unrun if no worker has taken it, and waited for if one has.
    /// In a request's callable, the request's error callback then hears
    /// [`TaskError::Panicked`](crate::TaskError::Panicked), as for any
    /// panic there.
    ///
    /// # Examples
    ///
    /// A sum over a slice the request owns, split in halves down to 1,000
    /// elements (the halves borrow it from the callable's stack):
    ///
    /// ```
    /// use callpool::{Context, ThreadPool, WorkRequest};
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
    /// pool.put_request(
    ///     WorkRequest::with_context(move |cx: &Context<'_>, ()| sum(cx, &xs), ())
    ///         .on_result(|_, total| assert_eq!(total, 100_000 * 100_001 / 2)),
    /// )?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The second half may run on another thread, so what it captures must
    /// be `Send`:
    ///
    /// ```compile_fail
    /// use callpool::{Context, ThreadPool, WorkRequest};
    /// use std::rc::Rc;
    ///
    /// let pool = ThreadPool::new(2);
    /// pool.put_request(WorkRequest::with_context(|cx: &Context<'_>, ()| {
    ///     let local = Rc::new(1);
    ///     cx.join(|_| 1, move |_| *local + 1)   // `Rc` is not `Send`
    /// }, ()))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// nor can it use the outer context, which belongs to this worker
    /// (each half gets its own):
    ///
    /// ```compile_fail
    /// use callpool::{Context, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(2);
    /// pool.put_request(WorkRequest::with_context(|cx: &Context<'_>, ()| {
    ///     cx.join(|_| 1, |_| cx.id().value())   // `&Context` is not `Send`
    /// }, ()))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Context<'_>) -> RA,
        B: FnOnce(&Context<'_>) -> RB + Send,
        RB: Send,
    {
        let mut b_value = None;
        let into = &mut b_value;
        let a_value = offer_while(
            self,
            move |cx: &Context<'_>| *into = Some(b(cx)),
            |half| {
                let task: Box<Envelope<dyn Task>> = Box::new(Envelope {
                    // No id of its own (nobody cancels a half by id; its
                    // join finds it in the slot by its box's address):
                    // taking none keeps the requests' ids contiguous and
                    // costs no shared counter.
                    id_value: 0,
                    task: HalfTask {
                        half,
                        parent: self.id(),
                    },
                });
                // Where the job's task lives: the box moves, its heap
                // address does not.
                let at = (&*task as *const Envelope<dyn Task>).cast::<()>();
                let offered = self
                    .spawner
                    .offer(WorkRequest::from_task(TaskBox::Boxed(task)));
                let a_value = a(self);
                // Still in this worker's slot (last, or behind children
                // `a` put), it leaves it now rather than travel through the
                // queue as a no-op.
                if offered {
                    self.spawner.reclaim(at);
                }
                a_value
            },
        );
        let b_value = b_value.expect("a join's second half ran, or its panic resumed");
        (a_value, b_value)
    }
}
