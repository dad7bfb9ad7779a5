//! [`ScopeContext`]: what a request put with
//! [`Scope::put_scoped`](crate::Scope::put_scoped) sees, to put more
//! requests into the same scope that may borrow for the scope's `'env`
//! (a walk over a borrowed tree, as `rayon::Scope::spawn` nests), their
//! outcomes read on the scope's thread like the scope's others. The
//! lending it does from the worker is argued in `lend.rs`; the counting of
//! what it puts is the collector's (`Added`).

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::collector_context::{Added, CollectorContext};
use crate::collector_stream::{self, CollectorEmitter};
use crate::error::ScopedPutError;
use crate::request::context::Closed;
use crate::request::{Context, RequestId};
use crate::scope::lend::Lender;
use crate::ticket::{Arrived, Ending, OneOutcome, Streamed};
use crate::unwind::Apart;

/// What a request put with [`Scope::put_scoped`](crate::Scope::put_scoped)
/// (or [`ScopeContext::put_scoped`]) is given: [`put`](Self::put) and its
/// kin, which put requests into the same scope whose callables, like the
/// scope's own, may borrow what outlives the scope (`'env`), and the
/// [`CollectorContext`] of the scope's collector, which it dereferences to
/// (`add` for `'static` requests, the worker's [`Context`] for `id`,
/// `worker_state` and `put` on the pool handle).
///
/// What is put here counts as pending on the scope from the moment it is
/// put, so the scope's [`outcomes`](crate::Collector::outcomes),
/// [`wait_with`](crate::Collector::wait_with) and its end wait for it, and
/// for all it puts in turn. Its outcome comes out of them, on the scope's
/// thread, as `(id, outcome)`: there is no per-request callback (a
/// callback stays on the scope's thread, and this runs on a worker). It
/// goes through the worker's own queue first, as a `Context::put` child
/// does.
///
/// # Examples
///
/// A walk over a tree that stays the caller's: each node's request puts
/// one for each child, borrowing it.
///
/// ```
/// use callpool::{ScopeContext, ThreadPool};
///
/// struct Node { value: u64, children: Vec<Node> }
///
/// fn sum<'env>(sc: &ScopeContext<'_, 'env, u64>, node: &'env Node) -> u64 {
///     for child in &node.children {
///         sc.put_scoped(sum, child).expect("the pool is open");
///     }
///     node.value
/// }
///
/// let leaf = |value| Node { value, children: Vec::new() };
/// let tree = Node { value: 1, children: vec![leaf(2), Node { value: 3, children: vec![leaf(4)] }] };
/// let pool = ThreadPool::new(4);
/// let mut total = 0;
/// pool.scope(|s| {
///     s.put_scoped(sum, &tree)?;
///     s.wait_with(|_, value| total += value.unwrap());
///     Ok::<_, callpool::ScopedPutError>(())
/// })?;
/// assert_eq!(total, 1 + 2 + 3 + 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// What a child borrows must outlive the scope: not a local of the
/// callable that puts it,
///
/// ```compile_fail
/// use callpool::{ScopeContext, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// pool.scope(|s| {
///     s.put_scoped(|sc: &ScopeContext<'_, '_, usize>, _: ()| {
///         let local = vec![1, 2, 3];
///         sc.put(|v: &Vec<i32>| v.len(), &local).unwrap(); // `local` dies before the child ends
///         0
///     }, ()).unwrap();
/// });
/// ```
///
/// a `ScopeContext` cannot leave the callable it was given to, not even
/// on its own thread,
///
/// ```compile_fail
/// use callpool::{ScopeContext, ThreadPool};
/// use std::cell::Cell;
///
/// thread_local! {
///     static KEPT: Cell<Option<&'static ScopeContext<'static, 'static, u32>>> = Cell::new(None);
/// }
/// let pool = ThreadPool::new(1);
/// pool.scope(|s| {
///     s.put_scoped(|sc: &ScopeContext<'_, '_, u32>, _: ()| {
///         KEPT.with(|kept| kept.set(Some(sc))); // borrowed data escapes the callable
///         0
///     }, ()).unwrap();
/// });
/// ```
///
/// nor go to another thread (a `&ScopeContext` is not `Send`),
///
/// ```compile_fail
/// use callpool::{ScopeContext, ThreadPool};
///
/// let pool = ThreadPool::new(1);
/// pool.scope(|s| {
///     s.put_scoped(|sc: &ScopeContext<'_, '_, u32>, _: ()| {
///         std::thread::scope(|t| { t.spawn(|| sc.put(|n: u32| n, 1)); });
///         0
///     }, ()).unwrap();
/// });
/// ```
///
/// and what a child takes to its worker must be `Send`:
///
/// ```compile_fail
/// use callpool::{ScopeContext, ThreadPool};
/// use std::rc::Rc;
///
/// let pool = ThreadPool::new(1);
/// pool.scope(|s| {
///     s.put_scoped(|sc: &ScopeContext<'_, '_, u32>, _: ()| {
///         let shared = Rc::new(5);
///         sc.put(move |_: ()| *shared, ()).unwrap(); // `Rc` cannot be sent between threads
///         0
///     }, ()).unwrap();
/// });
/// ```
pub struct ScopeContext<'c, 'env, T, E = Infallible> {
    cx: CollectorContext<'c, T, E>,
    /// Counts this request's children on the scope's latch; invariant in
    /// `'env`, and so is this type.
    lender: &'c Lender<'env>,
}

impl<'c, 'env, T, E> ScopeContext<'c, 'env, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts `callable(arg)` into the scope; it may borrow what outlives
    /// the scope, and its outcome comes out of the scope's
    /// [`outcomes`](crate::Collector::outcomes) (or `wait_with`,
    /// `next_outcome`) on the scope's thread.
    ///
    /// # Errors
    ///
    /// [`ScopedPutError::ShutDown`] once the pool no longer accepts
    /// requests. As for [`CollectorContext::add`], the request was counted
    /// on the scope as it was put: it has been dropped unrun by the time
    /// this returns (what it borrows cannot be handed back), and its
    /// outcome, [`TaskError::Cancelled`](crate::TaskError::Cancelled),
    /// comes out of the scope like any other.
    ///
    /// # Examples
    ///
    /// Each request counts the words of one line of a borrowed text, and
    /// puts one request per word to measure it:
    ///
    /// ```
    /// use callpool::{ScopeContext, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let text = String::from("a bb\nccc");
    /// let mut lengths = Vec::new();
    /// pool.scope(|s| {
    ///     for line in text.lines() {
    ///         s.put_scoped(|sc: &ScopeContext<'_, '_, usize>, line: &str| {
    ///             for word in line.split(' ') {
    ///                 sc.put(|w: &str| w.len(), word).expect("the pool is open"); // borrows `text`
    ///             }
    ///             0
    ///         }, line)?;
    ///     }
    ///     s.wait_with(|_, n| lengths.push(n.unwrap()));
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// lengths.sort_unstable();
    /// assert_eq!(lengths, [0, 0, 1, 2, 3]); // the two lines' own 0s too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Refused once the pool is shut down, the request still ends in the
    /// scope, as `Cancelled`:
    ///
    /// ```
    /// use callpool::{ScopeContext, ScopedPutError, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let stopper = pool.new_handle();
    /// let word = String::from("kept");
    /// let mut outcomes = Vec::new();
    /// pool.scope(|s| {
    ///     s.put_scoped(|sc: &ScopeContext<'_, '_, usize>, word: &String| {
    ///         drop(stopper.shutdown_now());
    ///         let refused = sc.put(|w: &String| w.len(), word);
    ///         assert!(matches!(refused, Err(ScopedPutError::ShutDown(_))));
    ///         1
    ///     }, &word)?;
    ///     s.wait_with(|_, outcome| outcomes.push(outcome));
    ///     Ok::<_, ScopedPutError>(())
    /// })?;
    /// outcomes.sort_by_key(Result::is_err);
    /// assert_eq!(outcomes, [Ok(1), Err(TaskError::Cancelled)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put<F, A>(&self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> T + Send + 'env,
        A: Send + 'env,
    {
        let arg = Apart::new(arg);
        self.lend_ending::<OneOutcome, _>(move |_: &Context<'_>| Ok(callable(arg.into_inner())))
    }

    /// [`put`](Self::put) for a callable that returns a `Result`: an
    /// `Err(e)` comes back as
    /// [`TaskError::Failed(e)`](crate::TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ScopeContext, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let words = vec![String::from("7"), String::from("x")];
    /// let (mut parsed, mut failed) = (Vec::new(), 0);
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_scoped(|sc: &ScopeContext<'_, '_, u32, String>, words: &[String]| {
    ///         for word in words {
    ///             sc.put_fallible(|w: &String| w.parse().map_err(|_| format!("bad {w}")), word)
    ///                 .map_err(|e| e.to_string())?;
    ///         }
    ///         Ok(0)
    ///     }, &words[..]).unwrap();
    ///     s.wait_with(|_, outcome| match outcome {
    ///         Ok(n) => parsed.push(n),
    ///         Err(TaskError::Failed(_)) => failed += 1,
    ///         Err(other) => panic!("{other}"),
    ///     });
    /// });
    /// parsed.sort_unstable();
    /// assert_eq!((parsed, failed), (vec![0, 7], 1));
    /// ```
    pub fn put_fallible<F, A>(&self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'env,
        A: Send + 'env,
    {
        let arg = Apart::new(arg);
        self.lend_ending::<OneOutcome, _>(move |_: &Context<'_>| callable(arg.into_inner()))
    }

    /// [`put`](Self::put) for a callable that is given a `ScopeContext` in
    /// turn, to put more into the scope: recursion over borrowed data.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// A binary split of a borrowed slice down to pieces of 1,000, one
    /// outcome per piece (and a 0 for each split):
    ///
    /// ```
    /// use callpool::{ScopeContext, ThreadPool};
    ///
    /// fn split<'env>(sc: &ScopeContext<'_, 'env, u64>, xs: &'env [u64]) -> u64 {
    ///     if xs.len() <= 1_000 {
    ///         return xs.iter().sum();
    ///     }
    ///     let (left, right) = xs.split_at(xs.len() / 2);
    ///     sc.put_scoped(split, left).expect("the pool is open");
    ///     sc.put_scoped(split, right).expect("the pool is open");
    ///     0
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let xs: Vec<u64> = (1..=100_000).collect();
    /// let total: u64 = pool.scope(|s| {
    ///     s.put_scoped(split, &xs[..]).unwrap();
    ///     s.outcomes().map(|(_, sum)| sum.unwrap()).sum()
    /// });
    /// assert_eq!(total, 100_000 * 100_001 / 2);
    /// ```
    pub fn put_scoped<F, A>(&self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> T + Send + 'env,
        A: Send + 'env,
    {
        let run = self.scoped(callable, arg);
        self.lend_ending::<OneOutcome, _>(move |cx: &Context<'_>| Ok(run(cx)))
    }

    /// [`put_scoped`](Self::put_scoped) for a callable that returns a
    /// `Result`.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// Halves a borrowed list until a piece is one number, failing on a
    /// negative one:
    ///
    /// ```
    /// use callpool::{ScopeContext, TaskError, ThreadPool};
    ///
    /// fn check<'env>(sc: &ScopeContext<'_, 'env, i32, String>, xs: &'env [i32]) -> Result<i32, String> {
    ///     match xs {
    ///         [x] if *x < 0 => Err(format!("{x} is negative")),
    ///         [x] => Ok(*x),
    ///         _ => {
    ///             let (a, b) = xs.split_at(xs.len() / 2);
    ///             for half in [a, b] {
    ///                 sc.put_fallible_scoped(check, half).map_err(|e| e.to_string())?;
    ///             }
    ///             Ok(0)
    ///         }
    ///     }
    /// }
    ///
    /// let pool = ThreadPool::new(2);
    /// let xs = vec![1, 2, -3, 4];
    /// let (mut sum, mut failed) = (0, Vec::new());
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_scoped(check, &xs[..]).unwrap();
    ///     s.wait_with(|_, outcome| match outcome {
    ///         Ok(n) => sum += n,
    ///         Err(TaskError::Failed(why)) => failed.push(why),
    ///         Err(other) => panic!("{other}"),
    ///     });
    /// });
    /// assert_eq!((sum, failed), (7, vec!["-3 is negative".to_string()]));
    /// ```
    pub fn put_fallible_scoped<F, A>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> Result<T, E> + Send + 'env,
        A: Send + 'env,
    {
        let run = self.scoped(callable, arg);
        self.lend_ending::<OneOutcome, _>(run)
    }

    /// [`put`](Self::put) for a callable that emits any number of the
    /// scope's items through `out`, as
    /// [`Scope::put_streaming`](crate::Scope::put_streaming) puts one.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ScopeContext, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let text = String::from("one two three");
    /// let mut words = Vec::new();
    /// pool.scope(|s| {
    ///     s.put_scoped(|sc: &ScopeContext<'_, '_, String>, text| {
    ///         // The child borrows `text` too.
    ///         sc.put_streaming(|text: &str, out: &CollectorEmitter<'_, String>| {
    ///             for word in text.split(' ') {
    ///                 out.emit(word.to_uppercase())?;
    ///             }
    ///             Ok::<(), Closed>(())
    ///         }, text).expect("the pool is open");
    ///         "parent".to_string()
    ///     }, &text[..])?;
    ///     s.wait_with(|_, word| words.push(word.unwrap()));
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// words.sort_unstable();
    /// assert_eq!(words, ["ONE", "THREE", "TWO", "parent"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_streaming<F, A>(&self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'env,
        A: Send + 'env,
    {
        let run = collector_stream::streaming(
            callable,
            arg,
            self.cx.outcomes.clone(),
            Arc::clone(self.cx.added),
        );
        self.lend_ending::<Streamed, _>(move |cx: &Context<'_>| collector_stream::stopped(run(cx)))
    }

    /// [`put_streaming`](Self::put_streaming) for a callable that may
    /// fail: an `Err(e)` part-way comes after the items emitted before it,
    /// as [`TaskError::Failed(e)`](crate::TaskError::Failed), once.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorEmitter, ScopeContext, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let text = String::from("1 2 x 4");
    /// let mut outcomes = Vec::new();
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_scoped(|sc: &ScopeContext<'_, '_, u32, String>, text: &str| {
    ///         sc.put_fallible_streaming(|text: &str, out: &CollectorEmitter<'_, u32, String>| {
    ///             for word in text.split(' ') {
    ///                 out.emit(word.parse().map_err(|_| format!("bad {word}"))?)
    ///                     .map_err(|e| e.to_string())?;
    ///             }
    ///             Ok(())
    ///         }, text).map_err(|e| e.to_string())?;
    ///         Ok(0)
    ///     }, &text[..]).unwrap();
    ///     s.wait_with(|_, outcome| outcomes.push(outcome));
    /// });
    /// outcomes.retain(|o| o != &Ok(0)); // the parent's
    /// assert_eq!(outcomes, [Ok(1), Ok(2), Err(TaskError::Failed("bad x".to_string()))]);
    /// ```
    pub fn put_fallible_streaming<F, A>(
        &self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'env,
        A: Send + 'env,
    {
        let run = collector_stream::streaming(
            callable,
            arg,
            self.cx.outcomes.clone(),
            Arc::clone(self.cx.added),
        );
        self.lend_ending::<Streamed, _>(run)
    }

    /// [`Context::join`] whose halves are each given a `ScopeContext` of
    /// the same scope, so that either can [`put`](Self::put) into it: a
    /// divide-and-conquer step over borrowed data that puts a request for
    /// each piece it finds. As with `Context::join`, `b` may run on
    /// another worker (so it must be `Send`), and both have run when this
    /// returns. (`CollectorContext::join` and `Context::join` are still
    /// there: [`collector_context`](Self::collector_context)`().join(..)`,
    /// [`context`](CollectorContext::context)`().join(..)`.)
    ///
    /// # Panics
    ///
    /// As [`Context::join`]: a panic in either half passes on here once
    /// both have ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ScopeContext, ThreadPool};
    ///
    /// fn split<'env>(sc: &ScopeContext<'_, 'env, u64>, xs: &'env [u64]) {
    ///     if xs.len() <= 100 {
    ///         sc.put(|xs: &[u64]| xs.iter().sum(), xs).expect("the pool is open");
    ///     } else {
    ///         let (a, b) = xs.split_at(xs.len() / 2);
    ///         sc.join(|sc| split(sc, a), |sc| split(sc, b));
    ///     }
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let xs: Vec<u64> = (0..10_000).collect();
    /// let (mut pieces, mut total) = (0, 0);
    /// pool.scope(|s| {
    ///     s.put_scoped(|sc: &ScopeContext<'_, '_, u64>, xs: &[u64]| { split(sc, xs); 0 }, &xs[..])?;
    ///     s.wait_with(|_, sum| { pieces += 1; total += sum.unwrap() });
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// assert_eq!((pieces, total), (128 + 1, 10_000 * 9_999 / 2)); // the root's 0 too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&ScopeContext<'_, 'env, T, E>) -> RA,
        B: FnOnce(&ScopeContext<'_, 'env, T, E>) -> RB + Send,
        RB: Send,
    {
        let (outcomes, added, lender) = (self.cx.outcomes, self.cx.added, self.lender);
        self.cx.context().join(
            |cx| a(&ScopeContext::new(cx, outcomes, added, lender)),
            |cx| b(&ScopeContext::new(cx, outcomes, added, lender)),
        )
    }

    /// The [`CollectorContext`] this dereferences to, by name: for its
    /// [`join`](CollectorContext::join), which [`join`](Self::join) hides.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CollectorContext, ScopeContext, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let total: u32 = pool.scope(|s| {
    ///     s.put_scoped(|sc: &ScopeContext<'_, '_, u32>, n: u32| {
    ///         // Halves that may only `add` `'static` requests.
    ///         let (a, b) = sc.collector_context().join(
    ///             |cx: &CollectorContext<'_, u32>| cx.add(|n: u32| n, n).map(|_| 1),
    ///             |cx: &CollectorContext<'_, u32>| cx.add(|n: u32| n + 1, n).map(|_| 1),
    ///         );
    ///         a.unwrap() + b.unwrap()
    ///     }, 10).unwrap();
    ///     s.outcomes().map(|(_, n)| n.unwrap()).sum()
    /// });
    /// assert_eq!(total, 2 + 10 + 11);
    /// ```
    pub fn collector_context(&self) -> &CollectorContext<'c, T, E> {
        &self.cx
    }

    pub(crate) fn new(
        cx: &'c Context<'c>,
        outcomes: &'c flume::Sender<Option<Arrived<T, E>>>,
        added: &'c Arc<Added>,
        lender: &'c Lender<'env>,
    ) -> Self {
        ScopeContext {
            cx: CollectorContext::new(cx, outcomes, added),
            lender,
        }
    }

    /// The work of a child that is given a `ScopeContext` of this scope.
    fn scoped<F, A, R>(&self, callable: F, arg: A) -> impl FnOnce(&Context<'_>) -> R + Send + 'env
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> R + Send + 'env,
        A: Send + 'env,
    {
        scoped(
            callable,
            arg,
            self.cx.outcomes.clone(),
            Arc::clone(self.cx.added),
            self.lender.lender(),
        )
    }

    /// Lends `work` from this worker and puts it into the scope, as
    /// `CollectorContext::add` puts `'static` work: its id is counted on
    /// the scope before it is put.
    fn lend_ending<K, W>(&self, work: W) -> Result<RequestId, ScopedPutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'env,
    {
        // Counted on the scope's latch while this request's own loan is
        // out (see `lend.rs`).
        let lent = self.lender.lend(work);
        self.cx
            .add_ending::<K, _>(move |cx: &Context<'_>| lent.run(cx))
            .map_err(ScopedPutError::from_refused)
    }
}

impl<T, E> fmt::Debug for ScopeContext<'_, '_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeContext")
            .field("id", &self.cx.id())
            .finish_non_exhaustive()
    }
}

impl<'c, T, E> Deref for ScopeContext<'c, '_, T, E> {
    type Target = CollectorContext<'c, T, E>;

    fn deref(&self) -> &CollectorContext<'c, T, E> {
        &self.cx
    }
}

/// The work of a request given a [`ScopeContext`]: `callable(sc, arg)` on
/// the worker, with the scope's channel, its ids of added requests and a
/// lender on its latch.
pub(crate) fn scoped<'env, F, A, R, T, E>(
    callable: F,
    arg: A,
    outcomes: flume::Sender<Option<Arrived<T, E>>>,
    added: Arc<Added>,
    lender: Lender<'env>,
) -> impl FnOnce(&Context<'_>) -> R + Send + 'env
where
    F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> R + Send + 'env,
    A: Send + 'env,
    T: Send + 'static,
    E: Send + 'static,
{
    let arg = Apart::new(arg);
    move |cx: &Context<'_>| {
        let sc = ScopeContext::new(cx, &outcomes, &added, &lender);
        callable(&sc, arg.into_inner())
    }
}
