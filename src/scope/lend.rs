//! Lending borrowed work to the workers: a scope's requests ([`with_loans`])
//! and the half a `Context::join` offers ([`offer_while`]). The one place
//! in callpool that erases lifetimes (once for each), and what makes that
//! sound.
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
//! Lent work may lend in turn, from a worker (a scope's request that puts
//! requests into its own scope, `ScopeContext`): it carries a [`Lender`],
//! made by [`Loans::lender`], which counts on the same latch. A lend made
//! so is counted while the lending work runs, so while that work's own
//! loan is still out (it goes back only after the work is dropped, and the
//! work is running): the count never falls to zero between the two, and
//! `with_loans`'s wait cannot end early. By induction over the tree, while
//! anything lent can still lend, the count is above zero. A `Lender` has
//! no brand, so the crate keeps it where one cannot be misused: it lives
//! only inside work lent from its own `Loans` (which is dropped, with it,
//! before that work's loan goes back), and user code sees it only through
//! a `&ScopeContext` whose lifetime the callable must accept for every
//! choice (its own brand), that is invariant in `'env` (a borrow of the
//! callable's own locals, shorter than `'env`, cannot be lent) and that is
//! neither `Send` nor `Sync` (it stays on the worker, inside the call).
//! `Lender` itself is `Send` and `Sync` (an `Arc` of a mutex and a
//! condition variable, and a `PhantomData` of a function pointer), so the
//! work that carries it may go to any worker, and a join's halves may
//! share one.
//!
//! A `Lent` that is never dropped (leaked) keeps `with_loans` waiting for
//! ever: a hang, never a dangling borrow.
//!
//! [`offer_while`] lends one piece of work to whichever thread takes it
//! first: another thread, through the `'static` [`Offered`] it hands out,
//! or the lender itself, which takes it back if it is still there when its
//! own part is done. The work lives only inside its [`Offer`]'s state, and
//! moves out of it under the offer's lock; `offer_while` does not return,
//! nor unwind, before it has taken the work back (and run or dropped it) or
//! seen the thread that took it finish (which drops it before it says so).
//! So an `Offered` that outlives the call (a stale job in a queue) holds
//! no work any more, only an ended state: no borrow reaches past `'env`.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, PoisonError};

use crate::request::Context;
use crate::sync;
use crate::unwind;

/// Loans not yet given back, and a condition variable to wait for none.
/// On the checkers' primitives under loom and shuttle: model (sl1) runs
/// the real latch.
#[derive(Debug)]
struct Latch {
    out: sync::Mutex<Out>,
    back: sync::Condvar,
}

impl Default for Latch {
    fn default() -> Latch {
        Latch {
            out: sync::Mutex::new(Out::default()),
            back: sync::Condvar::new(),
        }
    }
}

#[derive(Debug, Default)]
struct Out {
    loans: usize,
    /// Whether `with_loans` waits for the last loan: only then is there
    /// someone to notify (std's condition variable makes a system call
    /// for every notification).
    waited_for: bool,
}

impl Latch {
    fn out(&self) -> sync::MutexGuard<'_, Out> {
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
    pub(crate) fn lend<R>(&self, work: impl FnOnce(&Context<'_>) -> R + Send + 'env) -> Lent<R> {
        lend(&self.latch, work)
    }

    /// A [`Lender`] on this call's latch, to move into work lent from
    /// here, so that it can lend in its turn from its worker.
    pub(crate) fn lender(&self) -> Lender<'env> {
        Lender {
            latch: Arc::clone(&self.latch),
            env: PhantomData,
        }
    }
}

/// The right to lend for `'env` from inside lent work, on a worker: the
/// same latch as the [`Loans`] that made it, without the brand. Sound only
/// where the crate keeps it (see the module's doc): moved into work lent
/// from its own `Loans` or `Lender`, and handed to user code only by
/// reference, behind a `ScopeContext`, while that work runs.
#[derive(Debug)]
pub(crate) struct Lender<'env> {
    latch: Arc<Latch>,
    /// Invariant in `'env`, as `Loans` is: a `Lender<'env>` must never pass
    /// for a `Lender<'shorter>`, or lent work could lend a borrow of its
    /// own locals, which die before its children end.
    env: PhantomData<fn(&'env ()) -> &'env ()>,
}

impl<'env> Lender<'env> {
    /// As [`Loans::lend`]. Called only while the work that holds this
    /// lender runs, so while that work's own loan is out: the count this
    /// adds to is above zero, and `with_loans`'s wait cannot end before
    /// the new loan is back.
    pub(crate) fn lend<R>(&self, work: impl FnOnce(&Context<'_>) -> R + Send + 'env) -> Lent<R> {
        lend(&self.latch, work)
    }

    /// Another lender on the same latch, for a child's work to carry.
    pub(crate) fn lender(&self) -> Lender<'env> {
        Lender {
            latch: Arc::clone(&self.latch),
            env: PhantomData,
        }
    }
}

/// Model (sl1)'s seeded misuse: a lender on a latch of its own, which no
/// `with_loans` waits for.
#[cfg(all(test, any(loom, shuttle)))]
impl Lender<'_> {
    pub(crate) fn detached() -> Self {
        Lender {
            latch: Arc::default(),
            env: PhantomData,
        }
    }
}

/// Counts a loan on `latch` and makes `work` `'static`.
fn lend<'env, R>(
    latch: &Arc<Latch>,
    work: impl FnOnce(&Context<'_>) -> R + Send + 'env,
) -> Lent<R> {
    latch.out().loans += 1;
    let work: Work<'env, R> = Box::new(work);
    // SAFETY: only the lifetime bound of the trait object changes (same
    // layout, same vtable). The box is dropped, run or not, before
    // `Lent::drop` gives the loan back, and `with_loans` (whose `'env`
    // outlives its whole call) waits for every loan, so nothing the work
    // borrows is used after `'env`. The latch is that call's: only
    // `with_loans` makes a `Loans`, which cannot outlive its call (the
    // brand) nor pass for a shorter `'env` (invariance). A `Lender` on it
    // (invariant in `'env` too) lends only while the lent work that holds
    // it runs: the loan counted here is counted before that work's own
    // goes back, so the wait cannot see zero loans in between.
    #[allow(unsafe_code)]
    let work: Work<'static, R> = unsafe { std::mem::transmute(work) };
    Lent {
        work: Some(work),
        latch: Arc::clone(latch),
    }
}

/// A scope's work, run in its worker's context (a scoped request may put
/// and join), borrowing for `'env`.
type Work<'env, R> = Box<dyn FnOnce(&Context<'_>) -> R + Send + 'env>;

/// Work lent by a scope, `'static` for the queue; gives its loan back when
/// dropped, after the work itself.
pub(crate) struct Lent<R> {
    work: Option<Work<'static, R>>,
    latch: Arc<Latch>,
}

impl<R> Lent<R> {
    /// Runs the work in `cx`; the loan goes back as this returns or
    /// unwinds.
    pub(crate) fn run(mut self, cx: &Context<'_>) -> R {
        let work = self
            .work
            .take()
            .expect("a Lent runs once: `run` takes it by value");
        work(cx)
    }
}

impl<R> Drop for Lent<R> {
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

impl<R> std::fmt::Debug for Lent<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("ran", &self.work.is_none())
            .finish()
    }
}

/// Work offered by [`offer_while`], as the threads it is handed to see it.
pub(crate) trait Offered: Send + Sync {
    /// On a thread that took the offer: runs the work in `cx`, unless its
    /// lender took it back first (then nothing is left to do). Calls
    /// `done` once either way: after the work, before the lender can hear
    /// that it is over.
    fn run(&self, cx: &Context<'_>, done: &dyn Fn());
}

/// One piece of lent work and where it is in its life.
/// On the checkers' primitives under the models, as the latch is
/// (`models::lend`, (j1)).
struct Offer<F> {
    state: sync::Mutex<OfferState<F>>,
    /// Signalled when a thread that took the work has run it, if the
    /// lender waits for it.
    ran: sync::Condvar,
}

enum OfferState<F> {
    /// Nobody has taken it yet.
    Open(F),
    /// A thread took it and runs it; `true` once the lender waits for it
    /// (only then is there someone to notify).
    Running(bool),
    /// The thread that took it ran it (and dropped it); `Some` holds its
    /// panic, for the lender to resume.
    Ran(Option<Box<dyn Any + Send>>),
    /// The lender took it back.
    TakenBack,
}

/// What the lender finds when its own part is done.
enum Claim<F> {
    /// Nobody took the work: here it is.
    Mine(F),
    /// A thread ran it; `Some` holds its panic.
    Ran(Option<Box<dyn Any + Send>>),
}

impl<F> Offer<F> {
    fn state(&self) -> sync::MutexGuard<'_, OfferState<F>> {
        // Poison-free: the work runs outside the lock, and no step under it
        // panics.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the work back if nobody took it, else waits until the thread
    /// that took it has run it. Called once, by the lender.
    fn claim(&self) -> Claim<F> {
        let mut state = self.state();
        loop {
            match std::mem::replace(&mut *state, OfferState::TakenBack) {
                OfferState::Open(work) => return Claim::Mine(work),
                OfferState::Ran(panic) => return Claim::Ran(panic),
                OfferState::Running(_) => {
                    *state = OfferState::Running(true);
                    state = self.ran.wait(state).unwrap_or_else(PoisonError::into_inner);
                }
                OfferState::TakenBack => unreachable!("an offer is claimed once, by its lender"),
            }
        }
    }
}

impl<F: FnOnce(&Context<'_>) + Send> Offered for Offer<F> {
    fn run(&self, cx: &Context<'_>, done: &dyn Fn()) {
        let work = {
            let mut state = self.state();
            match std::mem::replace(&mut *state, OfferState::Running(false)) {
                OfferState::Open(work) => work,
                ended => {
                    *state = ended;
                    drop(state);
                    done();
                    return;
                }
            }
        };
        // The call consumes the work, so it is dropped (returned or
        // unwound) before `Ran` is set: the lender, which waits for `Ran`,
        // never returns while it is alive.
        let panic = panic::catch_unwind(AssertUnwindSafe(|| work(cx))).err();
        // Before `Ran`: once the lender hears it, its request may end and
        // be heard of, and whatever `done` says must be true by then.
        done();
        let mut state = self.state();
        let waited_for = matches!(*state, OfferState::Running(true));
        *state = OfferState::Ran(panic);
        if waited_for {
            // Under the lock: the lender cannot miss it between its look
            // and its wait.
            self.ran.notify_all();
        }
    }
}

/// Before `body`'s panic leaves `offer_while`: the work is taken back and
/// dropped, or, if a thread runs it, waited for.
struct Settle<'a, F> {
    offer: &'a Offer<F>,
    armed: bool,
}

impl<F> Drop for Settle<'_, F> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match self.offer.claim() {
            Claim::Mine(work) => unwind::drop_contained("the offered half of a join", work),
            Claim::Ran(panic) => unwind::drop_contained("a join half's panic", panic),
        }
    }
}

/// Offers `work`, which may borrow for `'env`, to other threads: `body`
/// gets it as a `'static` [`Offered`] to hand them, and does its own part.
/// Then, if nobody took the work, runs it here in `cx`; if a thread did,
/// waits until it has run it, and resumes its panic here. If `body`
/// panics, the work is taken back and dropped (or waited for) before the
/// panic goes on.
pub(crate) fn offer_while<'env, F, R>(
    cx: &Context<'_>,
    work: F,
    body: impl FnOnce(Arc<dyn Offered>) -> R,
) -> R
where
    F: FnOnce(&Context<'_>) + Send + 'env,
{
    let offer = Arc::new(Offer {
        state: sync::Mutex::new(OfferState::Open(work)),
        ran: sync::Condvar::new(),
    });
    let shared: Arc<dyn Offered + 'env> = offer.clone();
    // SAFETY: only the lifetime bound of the trait object changes (same
    // layout, same vtable). The work, the only thing in it that borrows
    // for `'env`, lives in the offer's state until it moves out under the
    // offer's lock: to this function, which runs or drops it before it
    // returns or unwinds (`claim`, `Settle`), or to a thread that took it,
    // which drops it before it sets `Ran`, which `claim` waits for. `'env`
    // outlives this call (it bounds a parameter's type), so once this call
    // is over the shared offer holds an ended state and no work, and its
    // `run` does nothing.
    #[allow(unsafe_code)]
    let shared: Arc<dyn Offered + 'static> = unsafe { std::mem::transmute(shared) };
    let mut settle = Settle {
        offer: &offer,
        armed: true,
    };
    let value = body(shared);
    settle.armed = false;
    match offer.claim() {
        Claim::Mine(work) => work(cx),
        Claim::Ran(None) => {}
        Claim::Ran(Some(panic)) => panic::resume_unwind(panic),
    }
    value
}
