//! Lending borrowed work to the workers (a scope's requests, the half a
//! `Context::join` offers): the one place in callpool that erases a
//! lifetime, and what makes that sound.
//!
//! A worker thread outlives any one call, so the request queue holds only
//! `'static` work. [`with_loans`] hands its body [`Loans`] for the
//! lifetime `'env` of what the caller borrows; each [`Loans::lend`] turns
//! work that borrows for `'env` into a `'static` [`Lent`] and counts it on
//! a latch, and a `Lent` gives its loan back only once the work inside it
//! has been dropped (run or not). `with_loans` does not return, nor
//! unwind, before every loan is back. So no work reaches past `'env`: the
//! argument `std::thread::scope` makes for its threads, here for queued
//! requests.
//!
//! `Loans` cannot leave the call that made it: it carries a brand, a
//! lifetime `'l` that the body must accept for every choice
//! (`for<'l>`), so no type outside the body can name it, and `Loans` is
//! invariant in `'l` and in `'env`.
//!
//! A `Lent` that is never dropped (leaked) keeps `with_loans` waiting for
//! ever: a hang, never a dangling borrow.

use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::request::Context;

/// Loans not yet given back, and a condition variable to wait for none.
#[derive(Debug, Default)]
struct Latch {
    out: Mutex<Out>,
    back: Condvar,
}

#[derive(Debug, Default)]
struct Out {
    loans: usize,
    /// Whether `with_loans` waits for the last loan: only then is there
    /// someone to notify (a notification is a system call, and a join
    /// that ran its half itself gives the loan back before it waits).
    waited_for: bool,
}

impl Latch {
    fn out(&self) -> MutexGuard<'_, Out> {
        // Poison-free: the count changes only by whole steps that cannot panic.
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn give_back(&self) {
        let mut out = self.out();
        out.loans -= 1;
        if out.loans == 0 && out.waited_for {
            // Under the lock: the waiter cannot miss it between its look
            // and its wait.
            self.back.notify_all();
        }
    }

    fn wait_all_back(&self) {
        let mut out = self.out();
        while out.loans > 0 {
            out.waited_for = true;
            out = self.back.wait(out).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The right to lend work that borrows for `'env`, inside one
/// [`with_loans`] call (the brand `'l`).
#[derive(Debug)]
pub(crate) struct Loans<'l, 'env> {
    latch: Arc<Latch>,
    /// Invariant in `'l`: a brand no other call's `Loans` shares.
    brand: PhantomData<fn(&'l ()) -> &'l ()>,
    /// Invariant in `'env`: a `Loans<'l, 'env>` must never pass for a
    /// `Loans<'l, 'shorter>`, or work could borrow what dies before the wait.
    env: PhantomData<fn(&'env ()) -> &'env ()>,
}

/// Runs `body` with [`Loans`] for `'env`, then waits until every loan is
/// back, whether `body` returned or is unwinding. `'env` is a parameter of
/// this function, so it outlives the whole call, the wait included.
pub(crate) fn with_loans<'env, R>(body: impl for<'l> FnOnce(Loans<'l, 'env>) -> R) -> R {
    /// Waits when dropped: on the way out, by return or by unwinding.
    struct AllBack(Arc<Latch>);
    impl Drop for AllBack {
        fn drop(&mut self) {
            self.0.wait_all_back();
        }
    }
    let latch = Arc::new(Latch::default());
    let _all_back = AllBack(Arc::clone(&latch));
    body(Loans {
        latch,
        brand: PhantomData,
        env: PhantomData,
    })
}

impl<'env> Loans<'_, 'env> {
    /// Makes `work`, which may borrow for `'env`, into `'static` work that
    /// gives its loan back once it is dropped.
    pub(crate) fn lend<R>(
        &self,
        work: impl FnOnce() -> R + Send + 'env,
    ) -> Lent<dyn FnOnce() -> R + Send> {
        self.latch.out().loans += 1;
        let work: Box<dyn FnOnce() -> R + Send + 'env> = Box::new(work);
        // SAFETY: only the lifetime bound of the trait object changes (same
        // layout, same vtable). The box is dropped, run or not, before
        // `Lent::drop` gives the loan back, and `with_loans` (whose
        // `'env` outlives its whole call) waits for every loan, so nothing
        // the work borrows is used after `'env`. Only `with_loans` makes a
        // `Loans`, which cannot outlive its call (the brand) nor pass for a
        // shorter `'env` (invariance), so `'env` is always that call's.
        #[allow(unsafe_code)]
        let work: Box<dyn FnOnce() -> R + Send + 'static> = unsafe { std::mem::transmute(work) };
        self.loan(work)
    }

    /// [`lend`](Self::lend) for work that runs in a worker's [`Context`]
    /// (a half that `Context::join` offers to other workers).
    pub(crate) fn lend_in_context(
        &self,
        work: impl FnOnce(&Context<'_>) + Send + 'env,
    ) -> Lent<dyn FnOnce(&Context<'_>) + Send> {
        self.latch.out().loans += 1;
        let work: Box<dyn FnOnce(&Context<'_>) + Send + 'env> = Box::new(work);
        // SAFETY: as in `lend`: only the trait object's lifetime bound
        // changes, and the same `Lent` and `with_loans` keep every borrow
        // inside `'env`.
        #[allow(unsafe_code)]
        let work: Box<dyn FnOnce(&Context<'_>) + Send + 'static> =
            unsafe { std::mem::transmute(work) };
        self.loan(work)
    }

    /// The loan of `work`, counted out already.
    fn loan<W: ?Sized>(&self, work: Box<W>) -> Lent<W> {
        Lent {
            work: Some(work),
            latch: Arc::clone(&self.latch),
        }
    }
}

/// Work lent by a scope or a join, `'static` for the queue (`W` is the
/// work's trait object type); gives its loan back when dropped, after the
/// work itself.
pub(crate) struct Lent<W: ?Sized> {
    work: Option<Box<W>>,
    latch: Arc<Latch>,
}

impl<W: ?Sized> Lent<W> {
    /// The work, to be run at once by the caller, which holds `self` (and
    /// so the loan) until the work is gone.
    fn work(&mut self) -> Box<W> {
        self.work
            .take()
            .expect("a Lent runs once: its runs take it by value")
    }
}

impl<R> Lent<dyn FnOnce() -> R + Send> {
    /// Runs the work; the loan goes back as this returns or unwinds.
    pub(crate) fn run(mut self) -> R {
        self.work()()
    }
}

impl Lent<dyn FnOnce(&Context<'_>) + Send> {
    /// Runs the work in `cx`; the loan goes back as this returns or unwinds.
    pub(crate) fn run_in(mut self, cx: &Context<'_>) {
        self.work()(cx)
    }
}

impl<W: ?Sized> Drop for Lent<W> {
    fn drop(&mut self) {
        /// Gives the loan back even if dropping the work panics.
        struct GiveBack<'a>(&'a Latch);
        impl Drop for GiveBack<'_> {
            fn drop(&mut self) {
                self.0.give_back();
            }
        }
        let _give_back = GiveBack(&self.latch);
        // The work (and everything it borrows) goes first.
        self.work = None;
    }
}

impl<W: ?Sized> std::fmt::Debug for Lent<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("ran", &self.work.is_none())
            .finish()
    }
}
