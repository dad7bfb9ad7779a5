//! [`ThreadPool::map`]: every input through one function, put as a few
//! requests of many inputs each (chunks) rather than one request per
//! input, with the outcomes back in input order.
//!
//! A request costs a few hundred nanoseconds of putting, queueing and
//! handing back; a trivial function costs a few. Grouping the inputs the
//! way Python's `multiprocessing.Pool.map` does (about four chunks per
//! worker) pays that cost once per chunk, while enough chunks remain for
//! every worker to have some and for one slow chunk not to hold the rest
//! back. Each chunk is one ticket's request; a panic in the function is
//! caught per input, so one bad input fails alone.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::PutError;
use crate::gather::gather;
use crate::handle::ThreadPool;
use crate::request::{TaskError, WorkRequest};
use crate::ticket::Ticket;
use crate::unwind;

/// Chunks per worker thread: enough for the workers to even out chunks of
/// unequal cost (as `multiprocessing.Pool.map` does).
const CHUNKS_PER_THREAD: usize = 4;

/// The most inputs in one chunk: beyond this the per-request cost is
/// already small against the inputs' own, while longer chunks would only
/// make the last one to end later.
const MAX_CHUNK: usize = 1024;

/// How many inputs go in one chunk, for `n` inputs on `threads` workers:
/// about [`CHUNKS_PER_THREAD`] chunks per worker, at least 1 and at most
/// [`MAX_CHUNK`] inputs each. So `n` inputs no more than
/// `CHUNKS_PER_THREAD` times the workers go one per request.
fn chunk_len(n: usize, threads: usize) -> usize {
    let chunks = threads.max(1).saturating_mul(CHUNKS_PER_THREAD);
    n.div_ceil(chunks).clamp(1, MAX_CHUNK)
}

/// One chunk's inputs. Dropped unrun (the pool refused or cancelled the
/// chunk), they are dropped one at a time, each `Drop` contained: a second
/// panicking `Drop` in one vector's drop would abort the process.
struct Inputs<A>(Vec<A>);

impl<A> Drop for Inputs<A> {
    fn drop(&mut self) {
        for input in self.0.drain(..) {
            unwind::drop_contained("an input of map", input);
        }
    }
}

/// Runs `f` over one chunk on a worker: one outcome per input, in order.
/// A panic is caught for its own input (one in an input's `Drop` too,
/// since `f` owns its input); the function is called again for the next
/// (as it would be by the next input's request).
fn run_chunk<A, T, E, F>(f: &F, mut inputs: Inputs<A>) -> Vec<Result<T, TaskError<E>>>
where
    F: Fn(A) -> Result<T, E>,
{
    inputs
        .0
        .drain(..)
        .map(|input| {
            // AssertUnwindSafe: after a panic `f` is only called again, as
            // separate requests sharing one `f` would call it.
            match panic::catch_unwind(AssertUnwindSafe(|| f(input))) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(TaskError::Failed(e)),
                Err(payload) => Err(TaskError::Panicked(unwind::into_message(payload))),
            }
        })
        .collect()
}

/// What a chunk that never ran gives each of its inputs: its own end
/// (never `Failed`: a chunk's function returns its outcomes, not an
/// error).
fn unrun<E>(chunk: &TaskError) -> TaskError<E> {
    match chunk {
        TaskError::Panicked(why) => TaskError::Panicked(why.clone()),
        TaskError::Expired => TaskError::Expired,
        _ => TaskError::Cancelled,
    }
}

/// One chunk on its way: how many inputs it holds, and its ticket.
type Flying<T, E> = (usize, Ticket<Vec<Result<T, TaskError<E>>>>);

impl ThreadPool {
    /// Runs `f(input)` for every input on the pool and returns the
    /// outcomes in input order, one per input, once all have ended:
    /// `ThreadPoolExecutor.map` or rayon's `par_iter().map().collect()` in
    /// one call. Collect the outcomes into a `Result<Vec<T>, _>` for the
    /// first error.
    ///
    /// The inputs and `f` must be `'static`, as any request's callable is,
    /// so `pool.map(&v, f)` over a local `v` does not compile (`v` "does not
    /// live long enough"): hand the inputs over by value (`v.clone()`, or
    /// `v` itself), or, to borrow as `v.par_iter()` does, put chunks of the
    /// slice in a [`scope`](Self::scope), whose callables may borrow.
    ///
    /// The inputs are put in chunks, as `multiprocessing.Pool.map` puts
    /// them: about four chunks per worker thread, at most 1,024 inputs
    /// each, every chunk one request that calls `f` on its inputs in turn.
    /// A handful of inputs (up to four per worker) therefore get a request
    /// each and run side by side, while a million trivial ones cost a
    /// thousand requests, not a million. A panic in `f` is the outcome of
    /// its own input only ([`TaskError::Panicked`]); the chunk goes on.
    /// Where each input should be a request of its own (slow inputs of
    /// very unequal cost, or a limit on how many run at once), use
    /// [`imap`](Self::imap) or [`as_completed`](Self::as_completed).
    ///
    /// Called on one of this pool's own workers (from inside a request),
    /// `map` runs the inputs there, in turn, instead of putting them:
    /// waiting on that worker for requests it may be the one to run would
    /// never end.
    ///
    /// The outcomes never reach this handle's callbacks, and
    /// [`pending`](Self::pending) does not count them. A chunk the pool
    /// never started (it was shut down, or refused the put) gives
    /// [`TaskError::Cancelled`] for each of its inputs; a chunk a worker
    /// has started runs to its end. [`stats`](Self::stats) counts the
    /// chunks, not the inputs: a chunk whose inputs panicked still counts
    /// as completed (not as panicked), a chunk the pool swept as cancelled
    /// (once, whatever its inputs), a refused one nowhere, and inputs run
    /// on the calling worker (above) nowhere either. On a pool with no
    /// worker (built with none, or all dismissed) `map` waits until one is
    /// added, also when its chunks fill a bounded queue
    /// ([`Builder::queue_capacity`](crate::Builder::queue_capacity)): it
    /// then waits for its oldest chunk before it puts the next. One case
    /// cannot wait: a bounded queue already full of other requests and no
    /// worker, where none of its own chunks is queued to say that a worker
    /// came; its inputs are then [`TaskError::Cancelled`], as a window's
    /// are ([`as_completed`](Self::as_completed)). With a bounded result
    /// queue, the handle's own callbacks may run here meanwhile (a panic
    /// in one passes through, and the outcomes are lost): see
    /// [`Builder::result_capacity`](crate::Builder::result_capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4);
    /// let lens: Vec<usize> = pool
    ///     .map(["a", "bb", "ccc"], |s: &str| s.len())
    ///     .into_iter()
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(lens, [1, 2, 3]);
    ///
    /// // A million inputs: about a thousand requests.
    /// let squares = pool.map(0..1_000_000u64, |n: u64| n * n);
    /// assert_eq!(squares.len(), 1_000_000);
    /// assert_eq!(squares[999_999], Ok(999_998_000_001));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I, F, T>(&self, inputs: I, f: F) -> Vec<Result<T, TaskError>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        self.map_chunks(inputs, move |input| Ok(f(input)))
    }

    /// [`map`](Self::map) for a function that returns a `Result`: an
    /// `Err(e)` is its input's outcome as
    /// [`TaskError::Failed(e)`](TaskError::Failed), as from
    /// [`submit_fallible`](Self::submit_fallible), so one `match` (or one
    /// `collect` into a `Result`) sees every way an input failed, with no
    /// `Result<Result<T, E>, TaskError>` to flatten.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let parsed = pool.map_fallible(["1", "x", "3"], |s: &str| s.parse::<u8>());
    /// assert_eq!(parsed[0], Ok(1));
    /// assert!(matches!(&parsed[1], Err(TaskError::Failed(e)) if e.to_string() == "invalid digit found in string"));
    /// assert_eq!(parsed[2], Ok(3));
    /// ```
    pub fn map_fallible<I, F, T, E>(&self, inputs: I, f: F) -> Vec<Result<T, TaskError<E>>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> Result<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.map_chunks(inputs, f)
    }

    /// Both forms of `map`.
    fn map_chunks<I, F, T, E>(&self, inputs: I, f: F) -> Vec<Result<T, TaskError<E>>>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> Result<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        if self.on_worker_thread() {
            // Waiting here for the chunks could wait for ever: this worker
            // may be the one that would run them, or all may be waiting.
            log::debug!("callpool: map on a worker of its own pool runs its inputs in place");
            let outcomes = run_chunk(&f, Inputs(gather(inputs.into_iter())));
            unwind::drop_contained("map's function", f);
            return outcomes;
        }
        // Gathered, not collected: the inputs' hint or a panic may not abort.
        let mut inputs = gather(inputs.into_iter()).into_iter();
        let n = inputs.len();
        let len = chunk_len(n, self.threads());
        let f = Arc::new(f);
        // Oldest first: a put that finds a full queue and no worker waits
        // for the oldest, whose outcomes come first anyway.
        let mut flying: VecDeque<Flying<T, E>> = VecDeque::with_capacity(n.div_ceil(len));
        let mut outcomes = Vec::with_capacity(n);
        loop {
            let chunk = Inputs(inputs.by_ref().take(len).collect());
            let count = chunk.0.len();
            if count == 0 {
                break;
            }
            let f = Arc::clone(&f);
            let (ticket, task) =
                Ticket::with_request(move || Ok(run_chunk(&*f, chunk)), self.home());
            flying.push_back((count, ticket));
            if !self.put_chunk(WorkRequest::from_task(task), &mut flying, &mut outcomes) {
                log::debug!("callpool: map stops putting chunks: the pool refused one");
                break;
            }
        }
        // The inputs after a refused chunk are never put: dropped unrun,
        // like the refused chunk's, and cancelled like them.
        let unput = inputs.len();
        drop(Inputs(inputs.collect()));
        for (count, ticket) in flying {
            collect(&mut outcomes, count, ticket.wait());
        }
        outcomes.extend((0..unput).map(|_| Err(TaskError::Cancelled)));
        // This is its last reference (each chunk's went with its request):
        // a panic in its captures' `Drop` must not throw the outcomes away.
        unwind::drop_contained("map's function", f);
        outcomes
    }

    /// Puts `map`'s newest chunk (the last of `flying`); whether it went
    /// in. A bounded queue full with no worker to empty it refuses a put
    /// (`PutError::NoWorkers`); while an older chunk is in flight, its
    /// end is waited for instead (its outcomes go to `outcomes`), and the
    /// put tried again: a worker was added and ran it, so there is room,
    /// or a shutdown cancelled it, and refuses the put too. With none in
    /// flight (the queue is full of other requests) nothing would say
    /// that a worker came: refused, as a window's put is. A refused
    /// request is dropped with its error, which tells its ticket
    /// `Cancelled`.
    fn put_chunk<T, E>(
        &self,
        mut request: WorkRequest,
        flying: &mut VecDeque<Flying<T, E>>,
        outcomes: &mut Vec<Result<T, TaskError<E>>>,
    ) -> bool {
        loop {
            match self.put_request(request) {
                Ok(_) => return true,
                Err(PutError::NoWorkers(back)) if flying.len() > 1 => {
                    let (count, oldest) = flying.pop_front().expect("more than one in flight");
                    collect(outcomes, count, oldest.wait());
                    request = back;
                }
                Err(_) => return false,
            }
        }
    }
}

/// A chunk's outcomes, in input order, onto `outcomes`.
fn collect<T, E>(
    outcomes: &mut Vec<Result<T, TaskError<E>>>,
    count: usize,
    chunk: Result<Vec<Result<T, TaskError<E>>>, TaskError>,
) {
    match chunk {
        Ok(chunk) => outcomes.extend(chunk),
        // Cancelled or expired before it started: so was each input.
        Err(e) => outcomes.extend((0..count).map(|_| Err(unrun(&e)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_inputs_go_one_per_request() {
        for threads in [0, 1, 2, 8] {
            for n in 0..=CHUNKS_PER_THREAD * threads.max(1) {
                assert_eq!(chunk_len(n, threads), 1, "n {n}, threads {threads}");
            }
        }
    }

    #[test]
    fn many_inputs_make_about_four_chunks_per_thread_of_at_most_max_chunk() {
        assert_eq!(chunk_len(1_000, 2), 125);
        assert_eq!(chunk_len(1_001, 2), 126);
        assert_eq!(chunk_len(1_000_000, 1), MAX_CHUNK);
        assert_eq!(chunk_len(usize::MAX, usize::MAX), 1);
        for n in [1, 7, 100, 4_097, 1_000_000] {
            for threads in [1, 3, 64] {
                let len = chunk_len(n, threads);
                assert!((1..=MAX_CHUNK).contains(&len));
                // At least two chunks per thread (rounding up the length
                // can cost up to half of the four), unless the inputs run
                // out first or the chunks are at their longest.
                let chunks = n.div_ceil(len);
                assert!(
                    chunks * 2 >= n.min(threads * CHUNKS_PER_THREAD) || len == MAX_CHUNK,
                    "n {n}, threads {threads}: {chunks} chunks of {len}"
                );
            }
        }
    }

    #[test]
    fn a_chunk_catches_each_panic_for_its_own_input() {
        let outcomes = run_chunk(
            &|n: u32| {
                assert!(n != 2, "chunk test: input 2");
                if n == 4 {
                    return Err("four");
                }
                Ok(n * 10)
            },
            Inputs(vec![1, 2, 3, 4]),
        );
        assert_eq!(
            outcomes,
            [
                Ok(10),
                Err(TaskError::Panicked("chunk test: input 2".into())),
                Ok(30),
                Err(TaskError::Failed("four")),
            ]
        );
    }
}
