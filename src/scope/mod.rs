//! [`Scope`]: a collector whose requests may borrow from the caller's stack,
//! callables and callbacks alike, and which [`ThreadPool::scope`] always
//! drains and waits for before it returns. The lending itself (where
//! callpool erases lifetimes, for scopes and for `Context::join`, and why
//! that is sound) is `lend.rs`; `install.rs` builds `ThreadPool::install`
//! and `ThreadPool::join` on a scope of one request.

pub(crate) mod context;
mod install;
#[allow(unsafe_code)]
pub(crate) mod lend;

use std::convert::Infallible;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{self, AssertUnwindSafe};

use crate::collector::{Collector, LocalCallback};
use crate::collector_stream::{self, CollectorEmitter};
use crate::error::{PutError, ScopedPutError};
use crate::handle::{PutMode, ThreadPool};
use crate::request::context::Closed;
use crate::request::{Context, RequestId, TaskError};
use crate::ticket::{Ending, OneOutcome, Streamed};
use crate::unwind::Apart;
pub use context::ScopeContext;
use lend::Loans;

/// The requests of one [`ThreadPool::scope`] call: put work that borrows
/// from the caller (`put`, `put_then`), and take outcomes back on this
/// thread like a [`Collector`], which a `Scope` dereferences to.
///
/// `'env` is what the requests may borrow: anything that outlives the
/// `scope` call. `'scope` marks this one scope, so that two scopes cannot
/// be mixed up.
///
/// A scope is not `Send`: its callbacks run on the thread that opened it
/// and need not be `Send`, so no other thread may put through it.
///
/// ```compile_fail
/// let pool = callpool::ThreadPool::new(1);
/// pool.scope(|s: &mut callpool::Scope<'_, '_, u32>| {
///     std::thread::scope(|t| {
///         t.spawn(|| s.put(|n: u32| n, 1)); // `&mut Scope` is not `Send`
///     });
/// });
/// ```
pub struct Scope<'scope, 'env, T, E = Infallible> {
    collector: Collector<'env, T, E>,
    loans: Loans<'scope, 'env>,
}

impl ThreadPool {
    /// Runs `body` with a [`Scope`], then waits until every request put
    /// through it has ended and every callback given with it has run (on
    /// this thread), and returns `body`'s value.
    ///
    /// Callables put through the scope run on the pool's workers and may
    /// borrow from the caller's stack, as with `std::thread::scope`: they
    /// must be `Send`, and live as long as the `scope` call (not
    /// `'static`). Callbacks run on this thread and may borrow mutably;
    /// each callback given to a put holds its borrows until the scope
    /// ends, so only one of them may hold a given `&mut` (in a loop of
    /// puts, take the outcomes with [`wait_with`](Collector::wait_with)
    /// instead, or share the local through a `RefCell`).
    /// Outcomes without a callback are dropped, and an error among those is
    /// logged at error level (as is a panic in one's `Drop`, which goes no
    /// further, as when a [`Collector`] is dropped);
    /// [`wait_with`](Collector::wait_with) or
    /// [`outcomes`](Collector::outcomes) inside the body take them.
    ///
    /// A panic in `body` or in a callback passes on once every request has
    /// ended (the first panic, if several). A panic in a request does not:
    /// unlike `std::thread::scope` and `rayon::scope`, it is that
    /// request's outcome ([`TaskError::Panicked`]), logged at error level
    /// if nothing takes it. A request the pool refuses is
    /// dropped before `put` returns ([`ScopedPutError`]): it is never handed
    /// back, since what it borrows may not outlive the scope.
    ///
    /// Like `wait`, a scope whose requests no worker will ever run (every
    /// worker dismissed, the pool left open) waits until workers are added.
    ///
    /// A scope may be opened inside a callable of the same pool (nested
    /// divide and conquer): the worker that waits in it runs the scope's
    /// requests that no other worker has started yet itself, one at a time
    /// (leaving the rest to workers that come free meanwhile), so a scope
    /// never waits for a worker that waits too. Its callbacks run on that
    /// worker as well (the scope's thread). A request run so shares the
    /// worker with the callable that waits: its
    /// [`Context::worker_state`] is that worker's state, so a guard from
    /// it held across the scope makes the request's own `worker_state`
    /// call panic (already borrowed): take the state inside each request.
    /// And it runs on that worker's stack, about 1.4 KB per level of
    /// nesting in a release build and three times that in a debug one: a
    /// chain of scopes some hundreds of levels deep on one worker needs a
    /// larger [`stack_size`](crate::Builder::stack_size).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::collections::HashMap;
    ///
    /// let pool = ThreadPool::new(4);
    /// let texts = vec![String::from("a b"), String::from("c d e"), String::from("f g")];
    /// let mut histogram: HashMap<usize, usize> = HashMap::new();
    /// let mut longest = 0;
    /// pool.scope(|s| {
    ///     for text in &texts {
    ///         // The callable borrows `text` from the caller's stack.
    ///         s.put(|t: &String| t.split_whitespace().count(), text)?;
    ///     }
    ///     // One callback may borrow a local mutably; so may an `FnMut` handler.
    ///     s.put_then(|t: &String| t.len(), &texts[1], |n| longest = n.unwrap())?;
    ///     s.wait_with(|_, n| *histogram.entry(n.unwrap()).or_insert(0) += 1);
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// assert_eq!(histogram[&2], 2);
    /// assert_eq!(longest, 5);
    /// assert_eq!(texts.len(), 3); // still ours
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// What the compiler stops: a callable that borrows a value that dies
    /// inside the scope,
    ///
    /// ```compile_fail
    /// let pool = callpool::ThreadPool::new(1);
    /// pool.scope(|s| {
    ///     let text = String::from("short-lived");
    ///     s.put(|t: &String| t.len(), &text).unwrap(); // `text` must outlive the scope call
    /// });
    /// ```
    ///
    /// a value that is not `Send` moved to a worker,
    ///
    /// ```compile_fail
    /// use std::rc::Rc;
    /// let pool = callpool::ThreadPool::new(1);
    /// let shared = Rc::new(5);
    /// pool.scope(|s| {
    ///     s.put(move |_: ()| *shared, ()).unwrap(); // `Rc` cannot be sent between threads
    /// });
    /// ```
    ///
    /// and two scopes swapped, so that one would wait for the other's
    /// requests:
    ///
    /// ```compile_fail
    /// let pool = callpool::ThreadPool::new(1);
    /// pool.scope(|outer: &mut callpool::Scope<'_, '_, u8>| {
    ///     pool.scope(|inner: &mut callpool::Scope<'_, '_, u8>| std::mem::swap(outer, inner));
    /// });
    /// ```
    pub fn scope<'env, T, R>(
        &'env self,
        body: impl for<'scope> FnOnce(&mut Scope<'scope, 'env, T>) -> R,
    ) -> R
    where
        T: Send + 'static,
    {
        self.fallible_scope(body)
    }

    /// [`scope`](Self::scope) for callables that return `Result<T, E>` (an
    /// `Err` comes back as [`TaskError::Failed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let limit = 10;
    /// let mut errors = Vec::new();
    /// pool.fallible_scope(|s| {
    ///     for n in [3, 30] {
    ///         let check = |n: u32| if n <= limit { Ok(n) } else { Err(format!("{n} is over {limit}")) };
    ///         s.put_fallible(check, n).unwrap();
    ///     }
    ///     s.wait_with(|_, outcome| {
    ///         if let Err(TaskError::Failed(why)) = outcome {
    ///             errors.push(why);
    ///         }
    ///     });
    /// });
    /// assert_eq!(errors, ["30 is over 10"]);
    /// ```
    pub fn fallible_scope<'env, T, E, R>(
        &'env self,
        body: impl for<'scope> FnOnce(&mut Scope<'scope, 'env, T, E>) -> R,
    ) -> R
    where
        T: Send + 'static,
        E: fmt::Debug + Send + 'static,
    {
        // `with_loans` waits for every lent request after this returns or
        // unwinds; the drain before it runs the callbacks.
        lend::with_loans(|loans| {
            let mut scope = Scope {
                collector: Collector::new(self),
                loans,
            };
            // AssertUnwindSafe: on a panic the scope is only drained, and
            // the panic then goes on to the caller.
            let ran = panic::catch_unwind(AssertUnwindSafe(|| body(&mut scope)));
            let drained = scope.collector.drain();
            match (ran, drained) {
                (Err(payload), _) | (Ok(_), Err(payload)) => panic::resume_unwind(payload),
                (Ok(value), Ok(())) => value,
            }
        })
    }
}

impl<'env, T, E> Scope<'_, 'env, T, E>
where
    T: Send + 'static,
    E: Send + 'static,
{
    /// Puts `callable(arg)`, which may borrow from the caller; its outcome
    /// comes back to this scope.
    ///
    /// # Errors
    ///
    /// [`ScopedPutError`] if the pool refuses it (it blocks, like
    /// [`ThreadPool::put_request`], on a full bounded queue); the request
    /// has been dropped unrun by then.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ScopedPutError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let words = vec![String::from("apple"), String::from("fig")];
    /// let mut lengths = pool.scope(|s| {
    ///     for word in &words {
    ///         s.put(|w: &String| w.len(), word)?; // borrows `word` from `words`
    ///     }
    ///     Ok::<_, ScopedPutError>(s.outcomes().map(|(_, n)| n.unwrap()).collect::<Vec<_>>())
    /// })?;
    /// lengths.sort_unstable();
    /// assert_eq!(lengths, [3, 5]);
    ///
    /// pool.close()?;
    /// let refused = pool.scope(|s| s.put(|w: &String| w.len(), &words[0]));
    /// assert!(matches!(refused, Err(ScopedPutError::ShutDown(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> T + Send + 'env,
        A: Send + 'env,
    {
        let arg = Apart::new(arg);
        self.lend(move |_: &Context<'_>| Ok(callable(arg.into_inner())), None)
    }

    /// [`put`](Self::put) for a callable that returns a `Result`: an
    /// `Err(e)` comes back as [`TaskError::Failed(e)`](TaskError::Failed).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    /// use std::num::ParseIntError;
    ///
    /// let pool = ThreadPool::new(2);
    /// let text = String::from("1 2 x");
    /// let (mut sum, mut failed) = (0, 0);
    /// pool.fallible_scope(|s| {
    ///     for token in text.split(' ') {
    ///         s.put_fallible(|t: &str| t.parse::<u32>(), token).unwrap(); // borrows `text`
    ///     }
    ///     s.wait_with(|_, outcome: Result<u32, TaskError<ParseIntError>>| match outcome {
    ///         Ok(n) => sum += n,
    ///         Err(TaskError::Failed(_)) => failed += 1,
    ///         Err(other) => panic!("{other}"),
    ///     });
    /// });
    /// assert_eq!((sum, failed), (3, 1));
    /// ```
    pub fn put_fallible<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'env,
        A: Send + 'env,
    {
        let arg = Apart::new(arg);
        self.lend(move |_: &Context<'_>| callable(arg.into_inner()), None)
    }

    /// [`put`](Self::put) for a callable that also gets its worker's
    /// [`Context`]: fork-join over what the caller owns, with
    /// [`Context::join`], whose halves may borrow it too. What the
    /// callable puts through the context goes on the pool handle the scope
    /// was made from, as ordinary requests (`'static`, not waited for by
    /// the scope: `wait` on that handle). Split the work inside with
    /// `join`, or with a nested scope (see [`ThreadPool::scope`]).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// A sum over a vector that stays the caller's, split with `join`:
    ///
    /// ```
    /// use callpool::{Context, ThreadPool};
    ///
    /// fn sum(cx: &Context<'_>, xs: &[u64]) -> u64 {
    ///     if xs.len() <= 10_000 {
    ///         return xs.iter().sum();
    ///     }
    ///     let (left, right) = xs.split_at(xs.len() / 2);
    ///     let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
    ///     a + b
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let xs: Vec<u64> = (1..=1_000_000).collect();
    /// let mut total = 0;
    /// pool.scope(|s| {
    ///     s.put_with_context(sum, &xs[..])?;
    ///     s.wait_with(|_, part| total += part.expect("no panic"));
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// assert_eq!(total, 1_000_000 * 1_000_001 / 2);
    /// assert_eq!(xs.len(), 1_000_000); // still ours
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// What the callable puts through its context is `'static`: it cannot
    /// borrow what the scope lent (the scope does not wait for it),
    ///
    /// ```compile_fail
    /// use callpool::{Context, ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(2);
    /// let xs = vec![1, 2, 3];
    /// pool.scope(|s| {
    ///     s.put_with_context(|cx: &Context<'_>, xs: &[i32]| {
    ///         cx.put(WorkRequest::new(move |()| xs.len(), ())).unwrap(); // `xs` is not `'static`
    ///         0
    ///     }, &xs[..]).unwrap();
    /// });
    /// drop(xs);
    /// ```
    ///
    /// nor can a join half's value take a borrow past the scope:
    ///
    /// ```compile_fail
    /// use callpool::{Context, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let xs = vec![1, 2, 3];
    /// let mut kept: Option<&[i32]> = None;
    /// let keep = &mut kept;
    /// pool.scope(|s| {
    ///     s.put_with_context(move |cx: &Context<'_>, xs: &[i32]| {
    ///         let (a, ()) = cx.join(|_| xs, |_| ());
    ///         *keep = Some(a);
    ///         0
    ///     }, &xs[..]).unwrap();
    /// });
    /// drop(xs);                // `xs` is still borrowed by `kept`
    /// println!("{kept:?}");
    /// ```
    pub fn put_with_context<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(&Context<'_>, A) -> T + Send + 'env,
        A: Send + 'env,
    {
        let arg = Apart::new(arg);
        self.lend(
            move |cx: &Context<'_>| Ok(callable(cx, arg.into_inner())),
            None,
        )
    }

    /// [`put`](Self::put) for a callable that is given a
    /// [`ScopeContext`], through which it puts more requests into this
    /// scope that may borrow for `'env` too, and those in turn: a walk over
    /// a tree the caller owns, each node's request putting its children's,
    /// as `rayon::Scope::spawn` nests. Every request put so is pending here
    /// from the moment it is put: its outcome comes out of
    /// [`outcomes`](Collector::outcomes) (or `wait_with`, `next_outcome`)
    /// on this thread, and the scope ends only once all of them have.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// A depth-first walk over a borrowed tree, one request per node,
    /// the sum read here:
    ///
    /// ```
    /// use callpool::{ScopeContext, ThreadPool};
    ///
    /// /// Node `i`'s children are `2i+1` and `2i+2`, below `nodes.len()`.
    /// fn visit<'env>(sc: &ScopeContext<'_, 'env, u64>, (nodes, i): (&'env [u64], usize)) -> u64 {
    ///     for child in [2 * i + 1, 2 * i + 2] {
    ///         if child < nodes.len() {
    ///             sc.put_scoped(visit, (nodes, child)).expect("the pool is open");
    ///         }
    ///     }
    ///     nodes[i]
    /// }
    ///
    /// let pool = ThreadPool::new(4);
    /// let nodes: Vec<u64> = (1..=1_023).collect(); // a full tree of depth 10
    /// let (mut count, mut sum) = (0, 0);
    /// pool.scope(|s| {
    ///     s.put_scoped(visit, (&nodes[..], 0))?;
    ///     s.wait_with(|_, value| {
    ///         count += 1;
    ///         sum += value.unwrap();
    ///     });
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// assert_eq!((count, sum), (1_023, 1_023 * 1_024 / 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_scoped<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> T + Send + 'env,
        A: Send + 'env,
    {
        let run = self.scoped(callable, arg);
        self.lend(move |cx: &Context<'_>| Ok(run(cx)), None)
    }

    /// [`put_scoped`](Self::put_scoped) for a callable that returns a
    /// `Result`: an `Err(e)` comes back as
    /// [`TaskError::Failed(e)`](TaskError::Failed).
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
    /// let lines = vec![String::from("1 2"), String::from("3 x")];
    /// let (mut sum, mut bad) = (0, Vec::new());
    /// pool.fallible_scope(|s| {
    ///     for line in &lines {
    ///         s.put_fallible_scoped(|sc: &ScopeContext<'_, '_, u32, String>, line: &String| {
    ///             for word in line.split(' ') {
    ///                 sc.put_fallible(|w: &str| w.parse().map_err(|_| format!("bad {w}")), word)
    ///                     .map_err(|e| e.to_string())?;
    ///             }
    ///             Ok(0)
    ///         }, line).unwrap();
    ///     }
    ///     s.wait_with(|_, outcome| match outcome {
    ///         Ok(n) => sum += n,
    ///         Err(TaskError::Failed(why)) => bad.push(why),
    ///         Err(other) => panic!("{other}"),
    ///     });
    /// });
    /// assert_eq!((sum, bad), (6, vec!["bad x".to_string()]));
    /// ```
    pub fn put_fallible_scoped<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> Result<T, E> + Send + 'env,
        A: Send + 'env,
    {
        let run = self.scoped(callable, arg);
        self.lend(run, None)
    }

    /// [`put`](Self::put) with a callback for the outcome, run on this
    /// thread when the scope handles it (in
    /// [`wait_with`](Collector::wait_with), [`outcomes`](Collector::outcomes)
    /// or as the scope ends).
    ///
    /// The callback holds what it borrows until the scope ends, so in a
    /// loop of `put_then` calls no two may hold one `&mut` local (E0499,
    /// "mutably borrowed here in the previous iteration of the loop"):
    /// take the outcomes with [`wait_with`](Collector::wait_with) instead,
    /// or share the local through a `RefCell` (or an `Rc<RefCell<_>>`).
    ///
    /// For the same reason, what the callback borrows must be declared
    /// outside the `scope` call, not in its body (E0373, "closure may
    /// outlive the current function"). Do not take the compiler's advice
    /// to add `move` there: the callback would then count into its own
    /// copy of a `Copy` local, and the body's would stay as it was (rustc
    /// warns only that the "value captured by `n` is never read").
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); the callback is dropped unrun.
    ///
    /// # Examples
    ///
    /// The callback may borrow a local mutably, and runs at the latest as
    /// the scope ends:
    ///
    /// ```
    /// use callpool::{ScopedPutError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let data = vec![3, 1, 2];
    /// let mut max = None;
    /// pool.scope(|s| {
    ///     s.put_then(|d: &Vec<i32>| d.iter().copied().max(), &data, |m| max = m.unwrap())?;
    ///     Ok::<_, ScopedPutError>(())
    /// })?;
    /// assert_eq!(max, Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        then: C,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> T + Send + 'env,
        A: Send + 'env,
        C: FnOnce(Result<T, TaskError<E>>) + 'env,
    {
        let arg = Apart::new(arg);
        self.lend(
            move |_: &Context<'_>| Ok(callable(arg.into_inner())),
            Some(Box::new(then)),
        )
    }

    /// [`put_then`](Self::put_then) for a callable that returns a `Result`.
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ScopedPutError, TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let config = [String::from("port=80"), String::from("host=example.com")];
    /// let port = |line: &String| line.strip_prefix("port=").and_then(|p| p.parse::<u16>().ok()).ok_or("no port");
    /// let (mut first, mut second) = (None, None);
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_then(port, &config[0], |p| first = Some(p))?;
    ///     s.put_fallible_then(port, &config[1], |p| second = Some(p))?;
    ///     Ok::<_, ScopedPutError>(())
    /// })?;
    /// assert_eq!(first, Some(Ok(80)));
    /// assert_eq!(second, Some(Err(TaskError::Failed("no port"))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_fallible_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        then: C,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A) -> Result<T, E> + Send + 'env,
        A: Send + 'env,
        C: FnOnce(Result<T, TaskError<E>>) + 'env,
    {
        let arg = Apart::new(arg);
        self.lend(
            move |_: &Context<'_>| callable(arg.into_inner()),
            Some(Box::new(then)),
        )
    }

    /// [`put`](Self::put) for a callable that emits any number of the
    /// scope's items through `out`, as
    /// [`Collector::put_streaming`] puts one, and may borrow from the
    /// caller: each item comes out of [`outcomes`](Collector::outcomes)
    /// (or `wait_with`, `next_outcome`) as `(id, Ok(item))`, in the order
    /// emitted, as soon as this thread takes it; a panic part-way comes
    /// after the items emitted before it; a return hands nothing more on.
    /// Items this thread does not take before the scope ends are dropped
    /// there, as outcomes without a callback are.
    ///
    /// What `out` adds ([`add`](crate::CollectorContext::add) and its
    /// kin) is `'static`, and comes back to this scope too: the scope
    /// waits for it. A scope's channel is unbounded, as a collector's is:
    /// see [`Collector::put_streaming`].
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put).
    ///
    /// # Examples
    ///
    /// Each request streams the long lines of a chunk of a borrowed text:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let text: Vec<String> = (0..40).map(|i| "x".repeat(i)).collect();
    /// let mut long = Vec::new();
    /// pool.scope(|s| {
    ///     for chunk in text.chunks(10) {
    ///         // Borrows `chunk` from `text`; emits each long line's length.
    ///         s.put_streaming(|lines: &[String], out: &CollectorEmitter<'_, usize>| {
    ///             for line in lines.iter().filter(|l| l.len() >= 35) {
    ///                 out.emit(line.len())?;
    ///             }
    ///             Ok::<(), Closed>(())
    ///         }, chunk)?;
    ///     }
    ///     s.wait_with(|_, n| long.push(n.unwrap()));
    ///     Ok::<_, callpool::ScopedPutError>(())
    /// })?;
    /// long.sort_unstable();
    /// assert_eq!(long, [35, 36, 37, 38, 39]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_streaming<F, A>(&mut self, callable: F, arg: A) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'env,
        A: Send + 'env,
    {
        let outcomes = self.collector.sender().clone();
        let run = collector_stream::streaming(callable, arg, outcomes, self.collector.added());
        self.lend_ending::<Streamed, _>(
            move |cx: &Context<'_>| collector_stream::stopped(run(cx)),
            None,
        )
    }

    /// [`put_streaming`](Self::put_streaming) for a callable that may
    /// fail: an `Err(e)` part-way comes after the items emitted before it,
    /// as [`TaskError::Failed(e)`](TaskError::Failed), once.
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
    /// let pool = ThreadPool::new(1);
    /// let words = String::from("1 2 x 4");
    /// let mut outcomes = Vec::new();
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_streaming(|text: &str, out: &CollectorEmitter<'_, u32, String>| {
    ///         for word in text.split(' ') {
    ///             let n = word.parse().map_err(|_| format!("bad {word}"))?;
    ///             out.emit(n).map_err(|e| e.to_string())?;
    ///         }
    ///         Ok(())
    ///     }, &words[..]).unwrap(); // borrows `words`
    ///     s.wait_with(|_, outcome| outcomes.push(outcome));
    /// });
    /// assert_eq!(outcomes, [Ok(1), Ok(2), Err(TaskError::Failed("bad x".to_string()))]);
    /// ```
    pub fn put_fallible_streaming<F, A>(
        &mut self,
        callable: F,
        arg: A,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'env,
        A: Send + 'env,
    {
        let outcomes = self.collector.sender().clone();
        let run = collector_stream::streaming(callable, arg, outcomes, self.collector.added());
        self.lend_ending::<Streamed, _>(run, None)
    }

    /// [`put_streaming`](Self::put_streaming) with a callback that stays
    /// on this thread, as [`Collector::put_streaming_then`] puts one: each
    /// item goes to `each`, in the order emitted, instead of coming out of
    /// [`outcomes`](Collector::outcomes), and so does an ending error
    /// (a panic part-way, or `Cancelled`), once, after them. The scope
    /// runs `each` for whatever is left as it ends, and drops it once the
    /// stream has ended. `each` may borrow from the caller, mutably too;
    /// it holds its borrows until the scope ends (see
    /// [`put_then`](Self::put_then)).
    ///
    /// # Errors
    ///
    /// As [`put`](Self::put); `each` is dropped uncalled.
    ///
    /// # Panics
    ///
    /// As [`Collector::put_streaming_then`]: a panic in `each` passes
    /// through the call that ran it (as the scope ends: out of the
    /// `scope` call, once every request has ended), and `each` is called
    /// again for the stream's next item.
    ///
    /// # Examples
    ///
    /// The callback counts into a local, mutably borrowed; the callables
    /// borrow the text:
    ///
    /// ```
    /// use callpool::{Closed, CollectorEmitter, ScopedPutError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let text = String::from("a bb ccc dddd");
    /// let mut letters = 0;
    /// pool.scope(|s| {
    ///     s.put_streaming_then(|t: &str, out: &CollectorEmitter<'_, usize>| {
    ///         t.split(' ').try_for_each(|word| out.emit(word.len()))
    ///     }, &text[..], |n| letters += n.unwrap())?;
    ///     Ok::<_, ScopedPutError>(())
    /// })?;
    /// assert_eq!(letters, 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A local of the scope's body cannot be lent to `each`, which may run
    /// as the scope ends, after the body has returned (declare it before
    /// the `scope` call, as above; see [`put_then`](Self::put_then)):
    ///
    /// ```compile_fail
    /// use callpool::{Closed, CollectorEmitter, ScopedPutError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let letters = pool.scope(|s| {
    ///     let mut letters = 0;
    ///     s.put_streaming_then(|t: &str, out: &CollectorEmitter<'_, usize>| {
    ///         t.split(' ').try_for_each(|word| out.emit(word.len()))
    ///     }, "a bb", |n| letters += n.unwrap())?; // `letters` may not live long enough
    ///     s.wait_with(|_, _| {});
    ///     Ok::<_, ScopedPutError>(letters)
    /// });
    /// ```
    pub fn put_streaming_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        each: C,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), Closed> + Send + 'env,
        A: Send + 'env,
        C: FnMut(Result<T, TaskError<E>>) + 'env,
    {
        let outcomes = self.collector.sender().clone();
        let run = collector_stream::streaming(callable, arg, outcomes, self.collector.added());
        self.lend_streamed_each(
            move |cx: &Context<'_>| collector_stream::stopped(run(cx)),
            each,
        )
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
    ///
    /// let pool = ThreadPool::new(1);
    /// let words = String::from("1 2 x 4");
    /// let mut seen = Vec::new();
    /// pool.fallible_scope(|s| {
    ///     s.put_fallible_streaming_then(|text: &str, out: &CollectorEmitter<'_, u32, String>| {
    ///         for word in text.split(' ') {
    ///             let n = word.parse().map_err(|_| format!("bad {word}"))?;
    ///             out.emit(n).map_err(|e| e.to_string())?;
    ///         }
    ///         Ok(())
    ///     }, &words[..], |outcome| seen.push(outcome)).unwrap();
    /// });
    /// assert_eq!(seen, [Ok(1), Ok(2), Err(TaskError::Failed("bad x".to_string()))]);
    /// ```
    pub fn put_fallible_streaming_then<F, A, C>(
        &mut self,
        callable: F,
        arg: A,
        each: C,
    ) -> Result<RequestId, ScopedPutError>
    where
        F: FnOnce(A, &CollectorEmitter<'_, T, E>) -> Result<(), E> + Send + 'env,
        A: Send + 'env,
        C: FnMut(Result<T, TaskError<E>>) + 'env,
    {
        let outcomes = self.collector.sender().clone();
        let run = collector_stream::streaming(callable, arg, outcomes, self.collector.added());
        self.lend_streamed_each(run, each)
    }

    /// [`lend_ending`](Self::lend_ending) for a stream whose items go to
    /// `each`.
    fn lend_streamed_each<W, C>(&mut self, work: W, each: C) -> Result<RequestId, ScopedPutError>
    where
        W: FnOnce(&Context<'_>) -> Result<(), E> + Send + 'env,
        C: FnMut(Result<T, TaskError<E>>) + 'env,
    {
        let lent = self.loans.lend(work);
        self.collector
            .put_streamed_each(move |cx: &Context<'_>| lent.run(cx), Box::new(each))
            .map_err(ScopedPutError::from_refused)
    }

    /// The work of a request given a [`ScopeContext`] of this scope.
    fn scoped<F, A, R>(
        &mut self,
        callable: F,
        arg: A,
    ) -> impl FnOnce(&Context<'_>) -> R + Send + 'env
    where
        F: FnOnce(&ScopeContext<'_, 'env, T, E>, A) -> R + Send + 'env,
        A: Send + 'env,
    {
        let outcomes = self.collector.sender().clone();
        context::scoped(
            callable,
            arg,
            outcomes,
            self.collector.added(),
            self.loans.lender(),
        )
    }

    fn lend<W>(
        &mut self,
        work: W,
        then: Option<LocalCallback<'env, T, E>>,
    ) -> Result<RequestId, ScopedPutError>
    where
        W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'env,
    {
        self.lend_ending::<OneOutcome, W>(work, then)
    }

    /// [`lend`](Self::lend) with no callback, waiting for room as `mode`
    /// says (`ThreadPool::try_install`'s way). A refusal comes back whole:
    /// the caller drops it inside the scope's body, which gives the loan
    /// back (kept past the body, the scope would wait for it for ever).
    pub(crate) fn lend_in<W>(&mut self, work: W, mode: PutMode) -> Result<RequestId, PutError>
    where
        W: FnOnce(&Context<'_>) -> Result<T, E> + Send + 'env,
    {
        let lent = self.loans.lend(work);
        self.collector
            .put_ending_in::<OneOutcome, _>(move |cx: &Context<'_>| lent.run(cx), mode)
    }

    /// Lends `work`, which ends as `K` says, and puts it through the
    /// collector.
    fn lend_ending<K, W>(
        &mut self,
        work: W,
        then: Option<LocalCallback<'env, T, E>>,
    ) -> Result<RequestId, ScopedPutError>
    where
        K: Ending<T, E>,
        W: FnOnce(&Context<'_>) -> Result<K::Returns, E> + Send + 'env,
    {
        let lent = self.loans.lend(work);
        self.collector
            .put_ending::<K, _>(move |cx: &Context<'_>| lent.run(cx), then)
            .map_err(ScopedPutError::from_refused)
    }
}

impl<'env, T, E> Deref for Scope<'_, 'env, T, E> {
    type Target = Collector<'env, T, E>;

    fn deref(&self) -> &Self::Target {
        &self.collector
    }
}

impl<T, E> DerefMut for Scope<'_, '_, T, E> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.collector
    }
}

impl<T, E> fmt::Debug for Scope<'_, '_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("collector", &self.collector)
            .finish_non_exhaustive()
    }
}
