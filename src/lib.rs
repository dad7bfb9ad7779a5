//! A callback-driven thread pool.
//!
//! You hand callpool *requests*: a callable, its argument, and callbacks for
//! its result and its failure. Worker threads run the callables; each outcome
//! comes back to the pool handle that put the request, and its callback runs
//! on the thread that calls [`ThreadPool::poll`] or [`ThreadPool::wait`] on
//! that handle, never on a worker. Your callbacks therefore run where your
//! program's state lives, one at a time per polling thread, without locks of
//! their own.
//!
//! This is the model of Python's classic `threadpool` module (`makeRequests`,
//! `putRequest`, `poll`, `wait`, `createWorkers`, `dismissWorkers`), done the
//! Rust way and with its known weaknesses fixed: idle workers sleep without
//! periodic wake-ups and leave at once when dismissed; a panicking callable
//! reaches the error callback and the worker lives on; a panicking callback
//! leaves the pool consistent; bounded queues cannot deadlock a thread that
//! both puts and polls; ids are unique; nothing is lost or handled twice.
//! `docs/from-python.md` maps the two APIs.
//!
//! The pool resizes at run time ([`ThreadPool::create_workers`],
//! [`ThreadPool::dismiss_workers`], [`ThreadPool::resize`]), shuts down
//! gracefully ([`ThreadPool::shutdown`]) or at once handing unstarted work
//! back ([`ThreadPool::shutdown_now`]), and never blocks when dropped.
//! Several handles ([`ThreadPool::new_handle`], [`global`]) can share one set
//! of workers, each with its own pending requests.
//!
//! Beside callbacks, the same pool hands outcomes back without them:
//! [`ThreadPool::submit`] returns a [`Ticket`] (wait on it, cancel it, or
//! `.await` it from any runtime; [`ThreadPool::submit_with_context`] gives
//! its callable a [`Context`]; [`as_completed`] yields the outcomes of
//! tickets as they end, and takes more with [`AsCompleted::push`] while
//! it does); [`ThreadPool::as_completed`] runs a
//! function over many inputs with at most `k` in flight and yields each
//! outcome as it finishes, [`ThreadPool::imap`] in input order, and
//! [`ThreadPool::map`] runs them all in chunks of many inputs per request.
//! Requests can be cancelled while queued
//! ([`ThreadPool::cancel`]) and given a deadline to start by
//! ([`Request::deadline`]). Work with no outcome to hear goes in with
//! [`ThreadPool::execute`]: `wait` covers it, and nothing comes back.
//!
//! Work can make work: a callable made with [`WorkRequest::with_context`]
//! puts follow-ups on its own handle through its [`Context`], and `wait`
//! covers them all ([`Context::execute`] adds work nobody hears);
//! [`Context::join`] splits a request's work in two,
//! fork-join style, and never waits for a worker that is not coming
//! ([`Scope::put_with_context`] does it over data your thread owns).
//! [`WorkRequest::streaming`] emits many results from one
//! request; [`ThreadPool::put_batch`] puts many at once and gives a
//! [`Batch`] with progress, cancel and a batch-done callback;
//! [`ThreadPool::collector`] and [`ThreadPool::scope`] take outcomes back
//! typed, with callbacks that stay on your thread (neither `Send` nor
//! `'static`); a [`Scope`]'s callables may borrow from your stack too,
//! and one put with [`Scope::put_scoped`] can put more that borrow into
//! the same scope through its [`ScopeContext`]. A
//! collector's request can add requests to it
//! ([`Collector::put_with_context`]) and emit any number of its items
//! ([`Collector::put_streaming`]), all read as one iterator. The
//! guide (`docs/guide.md`) says when to use which.
//!
//! A request can also run an external program
//! ([`WorkRequest::command`], [`WorkRequest::command_timeout`], or
//! [`ThreadPool::submit_command`] for a ticket): its exit
//! status and output come back as a [`CommandOutput`], or a
//! [`CommandError`] says why there is none; the program is killed on a
//! timeout or by [`ThreadPool::shutdown_now`], and always reaped.
//!
//! # Examples
//!
//! ```
//! use callpool::{make_requests, ThreadPool, WorkRequest};
//!
//! let pool = ThreadPool::new(4);
//! let reqs = make_requests(|n: u64| n * n, 0..100,
//!     |id, square| println!("#{id}: {square}"),
//!     |id, err| eprintln!("#{id} failed: {err}"));
//! for r in reqs {
//!     pool.put_request(r)?;
//! }
//! pool.put_request(WorkRequest::new(|s: String| s.len(), "hello".into())
//!     .on_result(|_, n| assert_eq!(n, 5)))?;
//! pool.create_workers(2)?;
//! pool.dismiss_workers(3);
//! pool.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Errors
//!
//! Every error is `Send + Sync + 'static` ([`TaskError<E>`] when `E`
//! is; [`TrySubmitError`] when its callable and argument are `Send`), so `?` takes it into a
//! `Box<dyn Error + Send + Sync>`. A [`TaskError<E>`] is an `Error` only
//! when `E` is one: a fallible callable that returns `Err("text")` or an
//! `Err(String)` gives a `TaskError<&str>` or `TaskError<String>`, which
//! `?` cannot convert (`&str` and `String` are not `Error`s); take it
//! with `.map_err(|e| e.to_string())?`, or give the callable an error type
//! of its own. Every error says everything in its
//! `Display`: one that wraps another (a [`TaskError::Failed`], a
//! [`BuildError`] from a thread the OS refused, a [`CommandError`] from
//! an I/O error) ends its message with the wrapped one's, so `{}` alone is
//! the whole story, as an error callback prints it. `source()` also
//! returns the wrapped error, for code that inspects it (a [`BuildError`]'s
//! is the [`SpawnError`]); a reporter that prints the whole chain (such as
//! `anyhow`'s `{:#}`) therefore repeats it.
//!
//! # Logging
//!
//! callpool logs through the [`log`] facade: `trace` as each result is
//! handled (on the polling thread), `debug` for worker lifecycle, `warn`
//! for discarded or cancelled work, `error` for failures nobody has a
//! callback for. It never prints. Workers log nothing per request: a
//! logging call reads the `log` crate's level, a global, and a worker
//! reading it per request would share its cache line with whatever the
//! program keeps next to it.

// One module erases a lifetime (`scope/lend.rs`, which says why that is
// sound); everything else is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

mod builder;
mod chunks;
mod collector;
mod collector_context;
mod collector_stream;
mod command;
mod error;
mod gather;
mod global;
mod handle;
mod inbox;
mod lookout;
#[cfg(all(test, any(loom, shuttle)))]
mod models;
mod patience;
mod pool;
mod request;
mod scope;
mod sync;
mod ticket;
mod unwind;
mod window;
mod worker_thread;

pub use builder::{Builder, DEFAULT_THREAD_NAME, MAX_CAPACITY, MAX_WORKERS};
pub use collector::{Collector, Outcomes};
pub use collector_context::CollectorContext;
pub use collector_stream::CollectorEmitter;
pub use command::{CommandError, CommandOutput};
pub use error::{
    BatchError, BuildError, GlobalPoolError, InstallError, PollError, PutError, ScopedPutError,
    ShutdownError, SpawnError, TrySubmitError, WaitError,
};
pub use global::{configure_global, global};
pub use handle::{Batch, Stats, ThreadPool, WeakPool};
pub use inbox::batches::Progress;
pub use request::timing;
pub use request::{
    make_fallible_requests, make_fallible_requests_with_input, make_requests,
    make_requests_with_input, Closed, Context, Emitter, Request, RequestId, StreamRequest,
    TaskError, Timing, WorkRequest,
};
pub use scope::{Scope, ScopeContext};
pub use ticket::{as_completed, AsCompleted, CancelHandle, Ticket};
pub use window::{Completions, InOrder};

/// The examples of `docs/guide.md`, run as doc tests so that the guide
/// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
pub struct GuideExamples;

/// The examples of `README.md`, run as doc tests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
