//! [`as_completed`]: the outcomes of tickets already submitted, in the
//! order their requests end.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::lookout::{self, Home};
use crate::request::{RequestId, TaskError};
use crate::ticket::{Listener, Ticket};
use crate::unwind;

/// Iterates over the outcomes of `tickets` in the order their requests end
/// (not the order of `tickets`), each with the ticket's position in
/// `tickets`. Blocks in `next` until one more has ended; ends after the last.
///
/// The tickets may come from different handles and pools. Nothing polls:
/// the thread that ends each request tells the iterator. With a bounded
/// result queue, the callbacks of the tickets' handles may run in `next`
/// meanwhile, as in [`Ticket::wait`] (a panic in one passes through, and
/// the iterator goes on after it). Dropping the iterator drops the tickets
/// left, which does not cancel them (see [`Ticket`]).
///
/// # Examples
///
/// ```
/// use callpool::ThreadPool;
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(3);
/// let tickets = [30u64, 10, 20]
///     .map(|ms| pool.submit(|ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms }, ms).unwrap());
/// let mut seen = Vec::new();
/// for (index, outcome) in callpool::as_completed(tickets) {
///     seen.push((index, outcome?));
/// }
/// seen.sort();
/// assert_eq!(seen, [(0, 30), (1, 10), (2, 20)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn as_completed<T, E, I>(tickets: I) -> AsCompleted<T, E>
where
    I: IntoIterator<Item = Ticket<T, E>>,
{
    let (done, ended) = flume::unbounded();
    let mut homes: Vec<Arc<dyn Home>> = Vec::new();
    let tickets: Vec<Option<Ticket<T, E>>> = tickets
        .into_iter()
        .enumerate()
        .map(|(key, ticket)| {
            ticket.listen(Listener {
                done: done.clone(),
                key,
            });
            // One per handle: its tickets share it.
            if let Some(home) = ticket.home() {
                let same = |known: &Arc<dyn Home>| {
                    std::ptr::eq(Arc::as_ptr(known).cast::<()>(), Arc::as_ptr(home).cast())
                };
                if !homes.iter().any(same) {
                    homes.push(Arc::clone(home));
                }
            }
            Some(ticket)
        })
        .collect();
    AsCompleted {
        left: tickets.len(),
        tickets,
        homes,
        nudges: done,
        ended,
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<T, E = std::convert::Infallible> {
    tickets: Vec<Option<Ticket<T, E>>>,
    left: usize,
    /// The handles the tickets were put through, where their result queues
    /// are bounded: `next` looks out for them while it blocks.
    homes: Vec<Arc<dyn Home>>,
    /// The keys of ended tickets, in the order they ended; `None` is a
    /// lookout's nudge (`crate::lookout::recv`).
    ended: flume::Receiver<Option<usize>>,
    nudges: flume::Sender<Option<usize>>,
}

impl<T, E> Iterator for AsCompleted<T, E> {
    type Item = (usize, Result<T, TaskError<E>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // On a worker thread, the tickets' requests still queued in its
        // pool run here first (as `Ticket::wait` does).
        if self.ended.is_empty() && crate::worker_thread::pool().is_some() {
            let ids: HashSet<RequestId> = self.tickets.iter().flatten().map(Ticket::id).collect();
            crate::pool::worker::help_here(|job| ids.contains(&job.id()));
        }
        // Each ticket left tells exactly once, so this returns with a key.
        let key = lookout::recv(&self.ended, &self.nudges, &self.homes)?;
        let ticket = self.tickets.get_mut(key)?.take()?;
        self.left -= 1;
        match ticket.try_result() {
            Ok(outcome) => Some((key, outcome)),
            Err(_) => unreachable!("a ticket tells it ended only once it has"),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T, E> ExactSizeIterator for AsCompleted<T, E> {}

/// The tickets left are the last owners of the outcomes not read: user
/// values, dropped here one at a time, contained, so that one panic
/// neither escapes the drop nor unwinds through the rest (a second panic
/// there would abort).
impl<T, E> Drop for AsCompleted<T, E> {
    fn drop(&mut self) {
        for ticket in self.tickets.drain(..) {
            unwind::drop_some("a ticket left in as_completed", ticket);
        }
    }
}

impl<T, E> fmt::Debug for AsCompleted<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}
