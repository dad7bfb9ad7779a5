//! [`make_requests`]: many requests that share one callable and one pair of
//! callbacks.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use crate::gather::gather;
use crate::request::id::RequestId;
use crate::request::task::{Envelope, Recipe, SharedTask, Stage};
use crate::request::task_error::TaskError;
use crate::request::WorkRequest;

/// Makes one request per item of `args`, all sharing `callable` and the two
/// callbacks. Nothing is submitted: put the requests on a pool yourself.
///
/// The callable and callbacks are shared (behind one `Arc`), so they are `Fn`
/// and `Sync`. Each request gets its own automatic id, known at once from
/// [`WorkRequest::id`]. For a callable that returns `Result`, use
/// [`make_fallible_requests`].
///
/// # Examples
///
/// ```
/// use callpool::{make_requests, ThreadPool};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let sum = Arc::clone(&total);
/// let pool = ThreadPool::new(4);
/// let reqs = make_requests(
///     |n: u64| n * n,
///     0..100,
///     move |_id, square| { sum.fetch_add(square, Ordering::Relaxed); },
///     |id, err| eprintln!("#{id} failed: {err}"),
/// );
/// assert_eq!(reqs.len(), 100);
/// for r in reqs {
///     pool.put_request(r)?;
/// }
/// pool.wait()?;
/// assert_eq!(total.load(Ordering::Relaxed), (0..100u64).map(|n| n * n).sum());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_requests<F, I, T, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    R: Fn(RequestId, T) + Send + Sync + 'static,
    X: Fn(RequestId, TaskError) + Send + Sync + 'static,
{
    make_fallible_requests(
        move |arg| Ok::<T, Infallible>(callable(arg)),
        args,
        on_result,
        on_error,
    )
}

/// Like [`make_requests`], for a callable that returns `Result`: `Ok` goes to
/// `on_result`, `Err` to `on_error` as [`TaskError::Failed`].
///
/// # Examples
///
/// ```
/// use callpool::{make_fallible_requests, TaskError, ThreadPool};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let tx2 = tx.clone();
/// let reqs = make_fallible_requests(
///     |s: &'static str| s.parse::<i32>(),
///     ["1", "x", "3"],
///     move |_, n| tx.send(Ok(n)).unwrap(),
///     move |_, err: TaskError<_>| tx2.send(Err(err.to_string())).unwrap(),
/// );
/// let pool = ThreadPool::new(2);
/// for r in reqs {
///     pool.put_request(r)?;
/// }
/// pool.wait()?;
/// let mut got: Vec<_> = rx.try_iter().collect();
/// got.sort();
/// assert_eq!(got.len(), 3);
/// assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_fallible_requests<F, I, T, E, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(I::Item) -> Result<T, E> + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
    R: Fn(RequestId, T) + Send + Sync + 'static,
    X: Fn(RequestId, TaskError<E>) + Send + Sync + 'static,
{
    let recipe = Arc::new(Recipe {
        callable,
        on_result,
        on_error,
    });
    let args = args.into_iter();
    // The ids of as many requests as `args` says it holds at least, taken
    // in one step: one atomic read-modify-write instead of one per request,
    // and ids next to each other (which `put_batch` keeps as a bitmap).
    // (Capped: an iterator whose hint lies must not use up the id space;
    // it is gathered, not collected, so that it aborts nothing either.)
    let mut ids = RequestId::next_autos(args.size_hint().0.min(u32::MAX as usize));
    gather(args.map(|arg| {
        let id_value = ids.next().unwrap_or_else(|| RequestId::next_auto().value());
        WorkRequest::from_task(Box::new(Envelope {
            id_value,
            task: SharedTask {
                stage: Stage::Ready(arg),
                recipe: Some(Arc::clone(&recipe)),
            },
        }))
    }))
}
