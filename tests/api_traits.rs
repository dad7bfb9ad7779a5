//! The traits the public types promise, checked at compile time: a change
//! that loses one (a field that is not `Send`, a dropped derive) fails to
//! build this file. What a type must *not* implement (the collector and
//! the worker-side contexts are not `Send`/`Sync`) is a `compile_fail`
//! example in that type's documentation.
//!
//! The checks are generic where the type is: each holds for every type
//! argument that meets the stated bounds, not for one instance.

use std::convert::Infallible;
use std::error::Error;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::hash::Hash;

use callpool::{
    AsCompleted, Batch, BatchError, BuildError, Builder, CancelHandle, Closed, CommandError,
    CommandOutput, Completions, GlobalPoolError, InOrder, InstallError, PollError, Progress,
    PutError, Request, RequestId, ScopedPutError, ShutdownError, SpawnError, Stats, StreamRequest,
    TaskError, ThreadPool, Ticket, Timing, TrySubmitError, WaitError, WeakPool, WorkRequest,
};
use callpool::{Collector, CollectorContext, CollectorEmitter, Context, Emitter, Outcomes, Scope};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn debug<T: Debug + ?Sized>() {}

/// What `?` needs to take an error into `Box<dyn Error + Send + Sync>`,
/// as the crate docs' *Errors* section promises of every error.
fn error<T: Error + Display + Send + Sync + 'static>() {}

/// A shared handle: any thread may hold, clone and use one.
fn handle<T: Clone + Debug + Send + Sync + Unpin + 'static>() {}

/// A plain value: a snapshot, a setting, an id.
fn value<T: Copy + Debug + PartialEq + Eq + Hash + Send + Sync + Unpin + 'static>() {}

#[test]
fn handles_are_shared_across_threads() {
    handle::<ThreadPool>();
    handle::<WeakPool>();
    handle::<Batch>();
    handle::<CancelHandle>();
    // Settings, too, may be made on one thread and built on another.
    handle::<Builder>();
}

#[test]
fn values_are_copy_eq_hash() {
    value::<RequestId>();
    value::<Timing>();
    value::<Stats>();
    value::<Progress>();
    value::<Closed>();
    value::<ScopedPutError>();
    value::<InstallError>();
    value::<PollError>();
    value::<WaitError>();
    fn ordered<T: Ord + Display>() {}
    ordered::<RequestId>();
}

#[test]
fn defaults() {
    fn default<T: Default>() {}
    default::<Builder>();
    default::<Stats>();
    default::<Progress>();
    default::<Closed>();
    default::<WeakPool>();
    // A default weak handle is a handle to no pool.
    assert!(WeakPool::default().upgrade().is_none());
    assert_eq!(Progress::default().ended(), 0);
}

#[test]
fn every_error_goes_into_a_boxed_send_sync_error() {
    error::<PutError>();
    error::<ScopedPutError>();
    error::<InstallError>();
    error::<BatchError>();
    error::<PollError>();
    error::<WaitError>();
    error::<SpawnError>();
    error::<BuildError>();
    error::<ShutdownError>();
    error::<GlobalPoolError>();
    error::<CommandError>();
    error::<Closed>();
    error::<TaskError>();
    error::<TaskError<CommandError>>();
    fn task_error<E: Error + Send + Sync + 'static>() {
        error::<TaskError<E>>();
    }
    task_error::<std::io::Error>();
    // Its parts need only be `Send`, as the type's docs say.
    fn try_submit_error<F: Send + 'static, A: Send + 'static>() {
        error::<TrySubmitError<F, A>>();
    }
    try_submit_error::<fn(u32) -> u32, std::cell::Cell<u32>>();
}

#[test]
fn task_errors_compare_as_their_failure_does() {
    fn comparable<E: Clone + Debug + Eq + Hash>() {
        fn check<T: Clone + Debug + Eq + Hash>() {}
        check::<TaskError<E>>();
    }
    comparable::<String>();
    comparable::<Infallible>();
    fn debug_only<E: Debug>() {
        debug::<TaskError<E>>();
    }
    debug_only::<std::io::Error>();
}

#[test]
fn requests_travel_to_workers() {
    fn shared<T: Debug + Send + Sync + 'static>() {}
    shared::<WorkRequest>();
    shared::<CommandOutput>();
    fn cloned<T: Clone + Eq>() {}
    cloned::<CommandOutput>();
    // A typed request is `Send` and `Sync` when its closures are, and
    // `Debug` whatever they are.
    fn request<W: Send + Sync, T, E, R: Send + Sync, X: Send + Sync>() {
        send::<Request<W, T, E, R, X>>();
        sync::<Request<W, T, E, R, X>>();
        debug::<Request<W, T, E, R, X>>();
    }
    request::<fn(), u32, Infallible, fn(), fn()>();
    fn stream<F: Send, A: Send, T, E>() {
        send::<StreamRequest<F, A, T, E>>();
        debug::<StreamRequest<F, A, T, E>>();
    }
    stream::<fn(), u32, u32, Infallible>();
}

#[test]
fn tickets_move_between_threads_and_executors() {
    fn ticket<T: Send + 'static, E: Send + 'static>() {
        send::<Ticket<T, E>>();
        sync::<Ticket<T, E>>();
        unpin::<Ticket<T, E>>();
        debug::<Ticket<T, E>>();
        fn future<F: Future<Output = Result<T, TaskError<E>>>, T, E>() {}
        future::<Ticket<T, E>, T, E>();

        send::<AsCompleted<T, E>>();
        debug::<AsCompleted<T, E>>();
        fn exact<I: ExactSizeIterator<Item = (usize, Result<T, TaskError<E>>)>, T, E>() {}
        exact::<AsCompleted<T, E>, T, E>();
    }
    ticket::<Vec<u8>, std::io::Error>();
}

#[test]
fn windows_move_between_threads() {
    // `Debug` asks nothing of the inputs, the function or the outcomes.
    fn windows<I: Iterator + Send, F: Send + Sync, T: Send, E: Send>()
    where
        I::Item: Send,
    {
        send::<Completions<'_, I, F, T, E>>();
        send::<InOrder<'_, I, F, T, E>>();
        debug::<Completions<'_, I, F, T, E>>();
        debug::<InOrder<'_, I, F, T, E>>();
    }
    windows::<std::vec::IntoIter<String>, fn(&String) -> usize, usize, Infallible>();
}

#[test]
fn thread_bound_types_still_print() {
    // Not `Send`: see the `compile_fail` examples on each. Their `Debug`
    // asks nothing of `T` and `E`.
    fn local<T: 'static, E: 'static>() {
        debug::<Collector<'static, T, E>>();
        debug::<Outcomes<'static, 'static, T, E>>();
        debug::<Scope<'static, 'static, T, E>>();
        debug::<CollectorContext<'static, T, E>>();
        debug::<CollectorEmitter<'static, T, E>>();
        debug::<Emitter<'static, T>>();
    }
    local::<std::rc::Rc<u8>, std::rc::Rc<u8>>();
    debug::<Context<'static>>();
}

/// A callback's panic passes through `wait` with the pool consistent, so
/// the handle may be used inside `catch_unwind` as it is, and again after.
#[test]
fn a_panic_through_wait_is_caught_without_assert_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<ThreadPool>();

    let pool = ThreadPool::new(1);
    pool.put_request(WorkRequest::new(|n: u32| n, 1).on_result(|_, _| panic!("in a callback")))
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    pool.put_request(WorkRequest::new(|n: u32| n, 2).on_result(move |_, n| tx.send(n).unwrap()))
        .unwrap();
    let caught = std::panic::catch_unwind(|| pool.wait());
    assert!(caught.is_err(), "the callback's panic passes through wait");
    // The panicking request was handled; the other one is handled by the
    // next wait (or was, before the panic): exactly once either way.
    pool.wait().unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2]);
    assert_eq!(pool.pending(), 0);
}
