//! [`make_requests_with_input`] and [`make_fallible_requests_with_input`]:
//! like `make_requests`, with each request's input handed back to its
//! callback, whatever the outcome (so a download loop can say which URL
//! failed without an id-to-URL map).

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use crate::gather::gather;
use crate::request::context::Context;
use crate::request::task::{attempt, Ended, Envelope, Failure, Recipe, Route, Task};
use crate::request::{RequestId, TaskError, WorkRequest};
use crate::unwind;

/// Makes one request per item of `args`, all sharing `callable` (which
/// borrows its input) and the two callbacks, which get the input back with
/// the outcome: `on_result(id, input, value)`, or `on_error(id, input,
/// error)` for a panic or a cancellation. Nothing is submitted: put the
/// requests on a pool yourself (or with [`ThreadPool::put_batch`]).
///
/// For a single request made with [`WorkRequest::new`] or
/// [`WorkRequest::fallible`], move a copy of what identifies it (the URL)
/// into each callback: the callable gets its own copy as its argument.
///
/// [`ThreadPool::put_batch`]: crate::ThreadPool::put_batch
///
/// # Examples
///
/// ```
/// use callpool::{make_requests_with_input, ThreadPool};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let failed = tx.clone();
/// let urls = ["https://a.example", "not a url", "https://b.example"].map(String::from);
/// let requests = make_requests_with_input(
///     |url: &String| if url.starts_with("https://") { url.len() } else { panic!("bad url") },
///     urls,
///     move |_, url, len| tx.send(format!("{url}: {len} bytes")).unwrap(),
///     move |_, url, err| failed.send(format!("{url} failed: {err}")).unwrap(),
/// );
/// let pool = ThreadPool::builder().workers(2).quiet_panics(true).build()?;
/// pool.put_all(requests)?;
/// pool.wait()?;
/// let mut lines: Vec<String> = rx.try_iter().collect();
/// lines.sort();
/// assert_eq!(lines[2], "not a url failed: request panicked: bad url");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_requests_with_input<F, I, T, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(&I::Item) -> T + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    R: Fn(RequestId, I::Item, T) + Send + Sync + 'static,
    X: Fn(RequestId, I::Item, TaskError) + Send + Sync + 'static,
{
    keyed_requests(
        move |input: &I::Item| Ok::<T, Infallible>(callable(input)),
        args,
        on_result,
        on_error,
    )
}

/// [`make_requests_with_input`] for a callable that returns a `Result`:
/// an `Err(e)` reaches `on_error` as [`TaskError::Failed(e)`], with the
/// input it came from.
///
/// [`TaskError::Failed(e)`]: TaskError::Failed
///
/// # Examples
///
/// ```
/// use callpool::{make_fallible_requests_with_input, TaskError, ThreadPool};
/// use std::sync::mpsc;
///
/// let (tx, rx) = mpsc::channel();
/// let failed = tx.clone();
/// let requests = make_fallible_requests_with_input(
///     |text: &String| text.parse::<u32>(),
///     ["1", "two", "3"].map(String::from),
///     move |_, text, n| tx.send(format!("{text} = {n}")).unwrap(),
///     move |_, text, err: TaskError<_>| failed.send(format!("{text}: {err}")).unwrap(),
/// );
/// let pool = ThreadPool::new(2);
/// pool.put_all(requests)?;
/// pool.wait()?;
/// let mut lines: Vec<String> = rx.try_iter().collect();
/// lines.sort();
/// assert_eq!(lines, ["1 = 1", "3 = 3", "two: request failed: invalid digit found in string"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn make_fallible_requests_with_input<F, I, T, E, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(&I::Item) -> Result<T, E> + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    E: fmt::Debug + Send + 'static,
    R: Fn(RequestId, I::Item, T) + Send + Sync + 'static,
    X: Fn(RequestId, I::Item, TaskError<E>) + Send + Sync + 'static,
{
    keyed_requests(callable, args, on_result, on_error)
}

/// Both forms: one request per input, sharing one recipe.
fn keyed_requests<F, I, T, E, R, X>(
    callable: F,
    args: I,
    on_result: R,
    on_error: X,
) -> Vec<WorkRequest>
where
    F: Fn(&I::Item) -> Result<T, E> + Send + Sync + 'static,
    I: IntoIterator,
    I::Item: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    R: Fn(RequestId, I::Item, T) + Send + Sync + 'static,
    X: Fn(RequestId, I::Item, TaskError<E>) + Send + Sync + 'static,
{
    let recipe = Arc::new(Recipe {
        callable,
        on_result,
        on_error,
    });
    // Gathered, not collected: the inputs' hint or a panic may not abort.
    gather(args.into_iter().map(|input| {
        WorkRequest::from_task(Box::new(Envelope {
            id_value: RequestId::next_auto().value(),
            task: KeyedTask {
                input: Some(input),
                outcome: None,
                recipe: Some(Arc::clone(&recipe)),
            },
        }))
    }))
}

/// A request of [`make_requests_with_input`] (or its fallible form): its
/// input, kept beside the outcome until both go to a callback.
struct KeyedTask<A, T, E, F, R, X> {
    input: Option<A>,
    /// `None` until it ran or was cancelled.
    outcome: Option<Result<T, Failure<E>>>,
    /// `None` once released.
    recipe: Option<Arc<Recipe<F, R, X>>>,
}

impl<A, T, E, F, R, X> Task for KeyedTask<A, T, E, F, R, X>
where
    A: Send,
    T: Send,
    E: Send,
    F: Fn(&A) -> Result<T, E> + Send + Sync,
    R: Fn(RequestId, A, T) + Send + Sync,
    X: Fn(RequestId, A, TaskError<E>) + Send + Sync,
{
    fn run(&mut self, _cx: &Context<'_>) {
        if let (None, Some(input), Some(recipe)) = (&self.outcome, &self.input, &self.recipe) {
            let callable = &recipe.callable;
            self.outcome = Some(attempt(|| callable(input)));
        }
    }

    fn cancel(&mut self) {
        self.outcome = Some(Err(Failure::Cancelled));
    }

    fn route(&self) -> Route {
        Route::Inbox
    }

    fn release(&mut self) {
        // One user value at a time (see `unwind::drop_contained`).
        unwind::drop_some("a request's input", self.input.take());
        unwind::drop_some("a request's outcome", self.outcome.take());
        unwind::drop_some("a batch's callable and callbacks", self.recipe.take());
    }

    fn report(&mut self, id: RequestId) {
        match (self.input.take(), self.outcome.take(), &self.recipe) {
            (Some(input), Some(Ok(value)), Some(recipe)) => (recipe.on_result)(id, input, value),
            (Some(input), Some(Err(failure)), Some(recipe)) => {
                (recipe.on_error)(id, input, failure.into())
            }
            _ => log::error!("callpool bug: request {id} reported twice or without running"),
        }
    }

    fn ended(&self) -> Ended {
        match &self.outcome {
            Some(Ok(_)) => Ended::Succeeded,
            Some(Err(Failure::Cancelled | Failure::Expired)) | None => Ended::Unstarted,
            Some(Err(Failure::Panicked(_))) => Ended::Panicked,
            Some(Err(_)) => Ended::Failed,
        }
    }

    fn user_chosen_id(&self) -> bool {
        false
    }
}
