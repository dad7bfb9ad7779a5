//! Lends made from a worker (`scope/lend.rs`'s `Lender`, through a
//! [`ScopeContext`]), (sl1): a scope's request, itself lent, puts a child
//! into the same scope that borrows for the scope's `'env`, and the child
//! runs on another worker. `with_loans` must not return before the child
//! has ended, or the child could use what it borrows after the scope's
//! caller has let it go (`docs/design.md`, "Lends from a worker").
//!
//! What runs as shipped: the real `with_loans`, `Loans::lend`,
//! `Loans::lender` and the latch they count on (on the checker's
//! primitives), the parent's work as `Scope::put_scoped` makes it (the
//! real `scope::context::scoped`), its real `ScopeContext::put` (the
//! lend on the parent's `Lender`, the id pushed to the real `Added`, the
//! put), and both requests' real boxes over the real `sink_request`. What
//! is a replica: the workers, two model threads over the collector
//! models' [`ModelPool`] (one handed the parent, the other taking what the
//! parent put), and the caller's borrowed data, a model flag that the
//! caller clears once `with_loans` has returned, and that every lent
//! callable checks as it runs. The scope's drain, which reads outcomes
//! before the wait, is left out on purpose: the latch alone must hold
//! (a scope's collector may have been swapped out, `tests/scope_context.rs`).
//!
//! The seeded misuse ([`Misuse::DetachedLender`]) gives the parent a
//! lender on a latch of its own, so the child's loan is counted where
//! nobody waits.
//!
//! (j1), [`a_half_is_done_before_its_join_hears`]: a join's half offered
//! by the real `offer_while` and run by another thread through the real
//! `Offered::run`, whose `done` stands for the worker's withdrawal of its
//! take (`Stats::running`). Once the join has heard that the half ran,
//! its request may end and a `wait` return: the half's thread must have
//! stopped counting itself running by then. Seeded: the withdrawal after
//! `run` returns, as the worker once did ([`HalfDone::AfterRun`]).

use std::convert::Infallible;
use std::sync::Arc as StdArc;

use super::collector::ModelPool;
use super::*;
use crate::collector_context::Added;
use crate::request::context::{Detached, Spawner};
use crate::request::{Context, RequestId, WorkRequest};
use crate::scope::context::scoped;
use crate::scope::lend::{self, Lender};
use crate::scope::ScopeContext;
use crate::sync::AtomicBool;
use crate::ticket::{sink_request, Arrived};

/// Which lender the parent carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Misuse {
    /// The scope's own (`Loans::lender`), as shipped.
    None,
    /// One on a latch of its own.
    DetachedLender,
}

/// The caller's borrowed data, as the lent callables see it: `alive`
/// until `with_loans` has returned, and whether a callable ran after.
struct Borrowed {
    alive: AtomicBool,
    used_late: AtomicBool,
}

impl Borrowed {
    /// What a lent callable does as it runs: uses the caller's data.
    fn use_it(&self) {
        if !self.alive.load(Ordering::SeqCst) {
            self.used_late.store(true, Ordering::SeqCst);
        }
    }
}

/// (sl1) The scope lends parent 1 and queues it; on one model worker the
/// parent puts child 2 through its `ScopeContext` and returns; the other
/// model worker takes the child and runs it. The caller's wait in
/// `with_loans` ends only after both have ended, so neither ever finds
/// the caller's data gone.
pub(super) fn a_lent_request_lends_a_child(misuse: Misuse) {
    let pool = ModelPool::new();
    let (sender, _receiver) = flume::unbounded::<Option<Arrived<u64, Infallible>>>();
    let added = StdArc::new(Added::default());
    let data = Arc::new(Borrowed {
        alive: AtomicBool::new(true),
        used_late: AtomicBool::new(false),
    });
    let workers = lend::with_loans(|loans| {
        let lender = match misuse {
            Misuse::None => loans.lender(),
            Misuse::DetachedLender => Lender::detached(),
        };
        let parents = Arc::clone(&data);
        let run = scoped(
            move |sc: &ScopeContext<'_, '_, u64>, n: u64| {
                parents.use_it();
                let childs = Arc::clone(&parents);
                sc.put(
                    move |x: u64| {
                        childs.use_it();
                        x
                    },
                    n + 1,
                )
                .expect("the model pool is open");
                n
            },
            1,
            sender.clone(),
            StdArc::clone(&added),
            lender,
        );
        let parent = loans.lend(move |cx: &Context<'_>| Ok::<_, Infallible>(run(cx)));
        let (_, task) = sink_request(move |cx: &Context<'_>| parent.run(cx), &sender);
        let workers = [0, 1].map(|_| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                let task = pool.take();
                pool.execute(task);
            })
        });
        let queued = Spawner::spawn(&*pool, WorkRequest::from_task(task));
        assert!(queued.is_ok(), "the model pool is open");
        // The body returns at once: `with_loans` waits on the way out.
        workers
    });
    // The caller lets go of its data, then sees both workers end.
    data.alive.store(false, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(
        !data.used_late.load(Ordering::SeqCst),
        "a lent request ran after its scope's wait had ended"
    );
}

/// When the half's thread withdraws its count of itself as running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HalfDone {
    /// Through `Offered::run`'s `done`, before `Ran`: as shipped.
    Shipped,
    /// After `run` has returned, `Ran` set by then.
    AfterRun,
}

/// (j1) A join offers its half (the real `offer_while`); another thread
/// counts itself running, takes the offer and runs it (the real
/// `Offered::run`), and withdraws the count as `how` says. If that thread
/// ran the half (the work sees its context's id), then once `offer_while`
/// has returned, the join having heard `Ran`, the count must be
/// withdrawn. If the join took the half back first, the other thread's
/// look at the emptied offer may come later: that stale take is the
/// exception `Stats::running` names.
pub(super) fn a_half_is_done_before_its_join_hears(how: HalfDone) {
    let joiner = RequestId::from_parts(1, true);
    let helper = RequestId::from_parts(2, true);
    let running = Arc::new(AtomicBool::new(false));
    let ran_by_helper = Arc::new(AtomicBool::new(false));
    let cx = Context::new(&Detached, joiner);
    let seen = Arc::clone(&ran_by_helper);
    let half = move |cx: &Context<'_>| {
        if cx.id() == helper {
            seen.store(true, Ordering::SeqCst);
        }
    };
    let counted = Arc::clone(&running);
    let other = lend::offer_while(&cx, half, move |offered| {
        thread::spawn(move || {
            let cx = Context::new(&Detached, helper);
            // The worker's take (`Tally::take`), then the half's job.
            counted.store(true, Ordering::SeqCst);
            let withdraw = || counted.store(false, Ordering::SeqCst);
            match how {
                HalfDone::Shipped => offered.run(&cx, &withdraw),
                HalfDone::AfterRun => {
                    offered.run(&cx, &|| {});
                    withdraw();
                }
            }
        })
    });
    // The join has heard the half is over (or ran it itself).
    if ran_by_helper.load(Ordering::SeqCst) {
        assert!(
            !running.load(Ordering::SeqCst),
            "the join heard its half was over while the half's thread still counted itself running"
        );
    }
    other.join().unwrap();
}
