//! [`as_completed`]: the outcomes of tickets already submitted, in the
//! order their requests end.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::task::Poll;

use crate::lookout::{self, Home};
use crate::patience::Patience;
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
/// # Panics
///
/// In `next`, for a ticket whose outcome was already taken by polling it
/// to `Ready` as a future (through `&mut ticket`), as [`Ticket::wait`]
/// panics; so too for such a ticket given to
/// [`push`](AsCompleted::push).
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
    let mut set = AsCompleted {
        tickets: VecDeque::new(),
        first_key: 0,
        left: 0,
        unended: None,
        homes: Vec::new(),
        nudges: done,
        ended,
        patience: Patience::new(),
    };
    for ticket in tickets {
        set.push(ticket);
    }
    set
}

/// Slots of a set's ticket span that are always kept, however short the
/// span: below this, giving memory back is not worth its copy.
const KEPT_SLOTS: usize = 64;

/// The iterator of [`as_completed`]. [`try_next`](Self::try_next) looks
/// without blocking, for a frame loop.
#[must_use = "dropping it drops the tickets, which does not cancel their requests; their outcomes are dropped"]
pub struct AsCompleted<T, E = std::convert::Infallible> {
    /// The tickets by index, from `first_key` on; `None` once handed back.
    /// Those handed back at the front are let go, so a set fed by
    /// [`push`](Self::push) for ever holds only the span from the oldest
    /// ticket not handed back to the newest.
    tickets: VecDeque<Option<Ticket<T, E>>>,
    /// The index of `tickets`' front.
    first_key: usize,
    left: usize,
    /// The ids of the tickets not handed back yet, from the first help on
    /// a worker on (`run_one_here`): what a help looks for. Kept, not
    /// gathered per look (`k` looks over `k` tickets would cost `O(k^2)`),
    /// and not kept off the pool's workers, where nothing helps.
    unended: Option<HashSet<RequestId>>,
    /// The handles the tickets were put through, where their result queues
    /// are bounded: `next` looks out for them while it blocks. Those gone
    /// with no ticket left are let go when a new one comes (`push`).
    homes: Vec<Arc<dyn Home>>,
    /// The keys of ended tickets, in the order they ended; `None` is a
    /// lookout's nudge (`crate::lookout::recv`).
    ended: flume::Receiver<Option<usize>>,
    nudges: flume::Sender<Option<usize>>,
    /// How long `next` looks before it blocks (`crate::patience`).
    patience: Patience,
}

impl<T, E> AsCompleted<T, E> {
    /// On a worker thread: runs here one of the tickets' requests still
    /// queued in that worker's pool (as `Ticket::wait` does); whether it
    /// ran one. Elsewhere it runs nothing.
    fn run_one_here(&mut self) -> bool {
        if crate::worker_thread::pool().is_none() {
            return false;
        }
        let AsCompleted {
            tickets, unended, ..
        } = self;
        let unended =
            unended.get_or_insert_with(|| tickets.iter().flatten().map(Ticket::id).collect());
        crate::pool::worker::help_here(|job| unended.contains(&job.id())) > 0
    }

    /// The outcome of the ticket `key`, which told it ended.
    fn hand_back(&mut self, key: usize) -> Option<(usize, Result<T, TaskError<E>>)> {
        let at = key.checked_sub(self.first_key)?;
        let ticket = self.tickets.get_mut(at)?.take()?;
        while let Some(None) = self.tickets.front() {
            self.tickets.pop_front();
            self.first_key += 1;
        }
        // A `VecDeque` never shrinks by itself: a set fed for ever would
        // keep what its longest span ever took (one slow ticket among
        // thousands of quick ones). Halved once a quarter full, its copies
        // cost O(1) per ticket, amortized.
        if self.tickets.capacity() > KEPT_SLOTS && self.tickets.len() * 4 < self.tickets.capacity()
        {
            self.tickets.shrink_to(self.tickets.len() * 2);
        }
        self.left -= 1;
        if let Some(unended) = &mut self.unended {
            unended.remove(&ticket.id());
        }
        match ticket.try_result() {
            Ok(outcome) => Some((key, outcome)),
            Err(_) => unreachable!("a ticket tells it ended only once it has"),
        }
    }

    /// Adds `ticket`: its outcome comes out of this iterator too, with the
    /// index returned here, the one after the last index given (a set
    /// made of `n` tickets gives its first push `n`). So the loop that
    /// reads the outcomes can add what each one found, which an input
    /// iterator cannot do ([`as_completed`]'s tickets are all submitted
    /// before the loop starts). After `next` has said `None`, a push makes
    /// it go on; the iterator is not fused.
    ///
    /// The ticket may come from any handle or pool, as in
    /// [`as_completed`]. The set holds only the tickets from the oldest
    /// not yet handed back to the newest, so a loop that pushes for ever
    /// runs in bounded memory while its tickets end about in turn.
    ///
    /// # Examples
    ///
    /// A walk where each visit returns the nodes it found, at most 4 in
    /// flight:
    ///
    /// ```
    /// use callpool::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2);
    /// let visit = |n: u32| if n < 50 { vec![2 * n, 2 * n + 1] } else { vec![] };
    /// let mut todo = Vec::new();
    /// let mut ended = callpool::as_completed([pool.submit(visit, 1)?]);
    /// let mut visited = 0;
    /// while let Some((_, found)) = ended.next() {
    ///     visited += 1;
    ///     todo.extend(found?);
    ///     while ended.len() < 4 {
    ///         let Some(n) = todo.pop() else { break };
    ///         ended.push(pool.submit(visit, n)?);
    ///     }
    /// }
    /// assert_eq!(visited, 99); // nodes 1..=99
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, ticket: Ticket<T, E>) -> usize {
        let key = self.first_key + self.tickets.len();
        ticket.listen(Listener::Channel {
            done: self.nudges.clone(),
            key,
        });
        // One per handle: its tickets share it.
        if let Some(home) = ticket.home() {
            let same = |known: &Arc<dyn Home>| {
                std::ptr::eq(Arc::as_ptr(known).cast::<()>(), Arc::as_ptr(home).cast())
            };
            if !self.homes.iter().any(same) {
                // A handle's home is held by the handle itself (its
                // results, `ThreadPool::home`) and by the slot of each of
                // its tickets: held here alone, the handle is gone and no
                // ticket of it is left, so no worker can get stuck on it
                // any more. Let go of those, or a set fed for ever through
                // short-lived handles (`new_handle` per request) would
                // keep one home per push, and look over each of them at
                // every push and blocking `next`. A count of 1 never rises
                // again: nothing else can reach that `Arc`.
                self.homes.retain(|known| Arc::strong_count(known) > 1);
                self.homes.push(Arc::clone(home));
            }
        }
        if let Some(unended) = &mut self.unended {
            unended.insert(ticket.id());
        }
        self.tickets.push_back(Some(ticket));
        self.left += 1;
        key
    }

    /// Cancels every ticket not handed back yet whose request has not
    /// started, as [`Ticket::cancel`] does to each; returns how many. Once
    /// the tickets are in the iterator, this is the way to stop the rest
    /// on the first failure (the handle's `cancel(id)` and `cancel_queued`
    /// do not reach tickets).
    ///
    /// Nothing is lost: each cancelled ticket still comes out of the
    /// iterator, as `Err(TaskError::Cancelled)`, and those already running
    /// come out with their outcomes. To stop reading instead, drop the
    /// iterator after this call.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let tickets = (0..50u32)
    ///     .map(|n| pool.submit_fallible(|n: u32| if n == 3 { Err("bad input") } else { Ok(n) }, n))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// let mut outcomes = callpool::as_completed(tickets);
    /// let (mut ok, mut cancelled) = (0, 0);
    /// while let Some((index, outcome)) = outcomes.next() {
    ///     match outcome {
    ///         Ok(_) => ok += 1,
    ///         Err(TaskError::Cancelled) => cancelled += 1,
    ///         Err(e) => {
    ///             assert_eq!((index, e), (3, TaskError::Failed("bad input")));
    ///             outcomes.cancel_rest();
    ///         }
    ///     }
    /// }
    /// assert_eq!(ok + cancelled, 49); // every other ticket came back once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_rest(&self) -> usize {
        self.tickets
            .iter()
            .flatten()
            .filter(|ticket| ticket.cancel())
            .count()
    }

    /// The next `(index, outcome)` if one more ticket's request has ended,
    /// without blocking: for a loop that must not stop, such as a frame
    /// loop. [`Poll::Ready`]`(Some(item))` is an outcome, `Ready(None)`
    /// says every ticket's outcome has been handed back (what `next` says
    /// with `None`), and [`Poll::Pending`] says "nothing yet": look again
    /// later (nothing wakes the caller; there is no waker). As
    /// [`Ticket::try_result`] is to [`Ticket::wait`].
    ///
    /// It is a look, not a wait: it runs none of a handle's callbacks
    /// (with a bounded result queue, a worker stuck on it holds up what is
    /// queued behind it, so a frame loop polls that handle too, with
    /// [`ThreadPool::poll`](crate::ThreadPool::poll)). On a worker thread
    /// of a pool, when nothing has ended, it runs one of the tickets'
    /// requests still queued there, as
    /// [`Collector::poll_with`](crate::Collector::poll_with) does, so a
    /// loop of looks inside a callable never waits for a worker that is
    /// busy or looping too; elsewhere it runs nothing. It may be mixed
    /// with `next`: each outcome comes back once either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::ThreadPool;
    /// use std::task::Poll;
    ///
    /// let pool = ThreadPool::new(2);
    /// let tickets = (1..=3u64).map(|n| pool.submit(|n: u64| n * 10, n)).collect::<Result<Vec<_>, _>>()?;
    /// let mut ended = callpool::as_completed(tickets);
    /// let mut seen = Vec::new();
    /// 'frames: loop {
    ///     // ... draw a frame, handle input ...
    ///     loop {
    ///         match ended.try_next() {
    ///             Poll::Ready(Some((index, outcome))) => seen.push((index, outcome?)),
    ///             Poll::Ready(None) => break 'frames, // every ticket is back
    ///             Poll::Pending => break,             // nothing more this frame
    ///         }
    ///     }
    /// #   std::thread::yield_now();
    /// }
    /// seen.sort();
    /// assert_eq!(seen, [(0, 10), (1, 20), (2, 30)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_next(&mut self) -> Poll<Option<<Self as Iterator>::Item>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let mut helped = false;
        loop {
            match self.ended.try_recv() {
                Ok(Some(key)) => return Poll::Ready(self.hand_back(key)),
                // A lookout's nudge, for a blocked `next` only.
                Ok(None) => continue,
                // Never disconnected: this iterator holds a sender. On a
                // worker thread, one of the tickets' requests still queued
                // in its pool runs here, and this looks again: behind this
                // very callable, a loop of looks would spin for ever.
                Err(_) if !helped && self.run_one_here() => helped = true,
                Err(_) => return Poll::Pending,
            }
        }
    }
}

impl<T, E> Iterator for AsCompleted<T, E> {
    type Item = (usize, Result<T, TaskError<E>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        if let Some(key) = lookout::try_recv(&self.ended) {
            return self.hand_back(key);
        }
        // On a worker thread, the tickets' requests still queued in its
        // pool run here first (as `Ticket::wait` does).
        self.run_one_here();
        // Each ticket left tells exactly once, so this returns with a key.
        let key = lookout::recv(&self.ended, &self.nudges, &self.homes, &self.patience)?;
        self.hand_back(key)
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

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use crate::ThreadPool;

    /// A set fed one ticket per outcome for ever holds only the tickets
    /// not handed back yet, not one place per ticket ever pushed.
    #[test]
    fn a_set_fed_for_ever_keeps_only_the_span_not_handed_back() {
        let pool = ThreadPool::new(1);
        let mut ended = super::as_completed([pool.submit(|n: u64| n, 0).unwrap()]);
        let mut most = 0;
        for n in 1..=10_000u64 {
            let (index, outcome) = ended.next().expect("one in flight");
            assert_eq!((index as u64, outcome), (n - 1, Ok(n - 1)));
            assert_eq!(ended.push(pool.submit(|n: u64| n, n).unwrap()), n as usize);
            most = most.max(ended.tickets.len());
        }
        assert_eq!(most, 1, "the handed-back tickets' places were kept");
        assert_eq!(ended.next(), Some((10_000, Ok(10_000))));
        assert_eq!((ended.next(), ended.tickets.len()), (None, 0));
    }

    /// A set fed for ever through short-lived handles with bounded result
    /// queues (one made per request, dropped once it is put) keeps the
    /// homes of the handles still there or with tickets left, not one per
    /// handle ever met: each would keep its `WeakPool` and the block of
    /// the handle's results, and be looked over at every push and
    /// blocking `next`.
    #[test]
    fn a_set_fed_through_short_lived_handles_lets_their_homes_go() {
        let pool = ThreadPool::builder()
            .workers(1)
            .result_capacity(1)
            .build()
            .unwrap();
        let mut ended = super::as_completed([pool.new_handle().submit(|n: u64| n, 0).unwrap()]);
        let mut most = 0;
        for n in 1..=2_000u64 {
            let (index, outcome) = ended.next().expect("one in flight");
            assert_eq!((index as u64, outcome), (n - 1, Ok(n - 1)));
            let ticket = pool.new_handle().submit(|n: u64| n, n).unwrap();
            assert_eq!(ended.push(ticket), n as usize);
            most = most.max(ended.homes.len());
        }
        // With one worker, the handle of the ticket before the last one
        // handed back has no ticket left: only the last two may be kept.
        assert!(most <= 3, "{most} homes kept for 2000 short-lived handles");
        assert_eq!(ended.next(), Some((2_000, Ok(2_000))));
        assert_eq!(ended.next(), None);
    }
}
