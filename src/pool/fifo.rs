//! The request queue's FIFO: a ring allocated once, where workers take
//! requests, with a backlog of reusable chunks behind it for when puts
//! outrun the workers.
//!
//! Why not one segmented lock-free queue: it allocates a block every few
//! dozen requests on the putting thread and frees it on the worker that
//! empties it, and the two threads then meet on the allocator's lock
//! (`docs/performance.md`, "A request queue that reuses its memory"). Here
//! the ring's slots are reused, and the backlog's chunks go back to the
//! putters, so a steady stream allocates nothing, and a burst allocates one
//! chunk per [`CHUNK_LEN`] requests. A burst's chunks are freed only by a
//! worker about to sleep (`trim_spares`), never by one with requests to
//! run.
//!
//! The protocol (`docs/design.md`, "The request FIFO"):
//! - A put goes to the ring while the backlog is empty (`spilled` is 0) and
//!   the ring has room; otherwise to the backlog's last chunk, under its
//!   lock, counting itself in `spilled` there.
//! - A take pops the ring. When the ring is empty and `spilled` is not,
//!   one taker at a time (`refilling`) moves the backlog's first chunk into
//!   the ring, and only then counts those requests out of `spilled`.
//!
//! So a request in the backlog is never overtaken by one put after it: a
//! put that sees `spilled` at 0 comes after the refill that moved the last
//! backlogged request into the ring. Puts ordered by happens-before are
//! taken in their order; concurrent puts have none.

use std::collections::VecDeque;

use crate::sync::{AtomicUsize, Mutex, MutexGuard, Ordering};

/// Requests per backlog chunk: one allocation, and one turn of the
/// backlog's lock for the taker, per this many backlogged requests.
#[cfg(not(any(loom, shuttle)))]
const CHUNK_LEN: usize = 256;
/// The ring's slots: room for a chunk being moved in and for puts that
/// looked at `spilled` before a backlog began (they still try the ring).
#[cfg(not(any(loom, shuttle)))]
const RING_SLOTS: usize = 4 * CHUNK_LEN;

/// Under the checkers, a ring of 4: the request queue's scenarios (two or
/// three requests) stay in it, so their state spaces stay the size they
/// were; the shuttle storms (many requests) and the FIFO's own models
/// (`src/models/fifo.rs`, a ring of one slot) go through the backlog.
#[cfg(any(loom, shuttle))]
const CHUNK_LEN: usize = 1;
#[cfg(any(loom, shuttle))]
const RING_SLOTS: usize = 4;

/// Empty chunks kept for the next backlog once the workers go idle; the
/// rest are freed then (`trim_spares`), so a burst's memory does not stay
/// with the pool.
pub(crate) const SPARE_CHUNKS: usize = 4;
/// Surplus chunks a worker about to sleep frees before it looks for
/// requests again: about 80 µs of the allocator's work here
/// (`docs/performance.md`, "Freeing the backlog's chunks off the hot path").
pub(crate) const TRIM_STEP: usize = 32;
/// Room kept in the backlog's list of chunks once a backlog is gone.
const KEPT_LIST: usize = 16;

/// `RING` slots in the ring, `CHUNK` requests per backlog chunk; `CHUNK`
/// at most `RING`, so that an empty ring takes a whole chunk.
pub(crate) struct Fifo<J, const RING: usize = RING_SLOTS, const CHUNK: usize = CHUNK_LEN> {
    ring: Ring<J>,
    /// Requests in the backlog, and in a refill on their way to the ring.
    /// Raised under `backlog`'s lock, lowered after the refill's pushes.
    spilled: AtomicUsize,
    backlog: Mutex<Backlog<J>>,
    /// Held while moving a chunk into the ring: one refill at a time, so
    /// that a second taker waits instead of spinning, and the empty ring
    /// the refill found has room for the chunk (see `refill`).
    refilling: Mutex<()>,
}

struct Backlog<J> {
    chunks: VecDeque<Vec<J>>,
    spare: Vec<Vec<J>>,
}

impl<J> Backlog<J> {
    /// An empty chunk for the back of the backlog: a spare one if any.
    #[inline]
    fn fresh_chunk(&mut self, chunk_len: usize) -> Vec<J> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(chunk_len))
    }

    /// Appends to the backlog's last chunk, or to a new one of `chunk_len`.
    fn append(&mut self, job: J, chunk_len: usize) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < chunk_len => last.push(job),
            _ => {
                let mut chunk = self.fresh_chunk(chunk_len);
                chunk.push(job);
                self.chunks.push_back(chunk);
            }
        }
    }

    /// Appends `jobs` in their order to the backlog's last chunk while it
    /// has room, then to new ones of `chunk_len`; returns how many. A
    /// chunk's room is filled with one `extend`, not a look per request.
    fn append_all(&mut self, jobs: impl Iterator<Item = J>, chunk_len: usize) -> usize {
        let mut jobs = jobs.peekable();
        let mut n = 0;
        while jobs.peek().is_some() {
            let room = match self.chunks.back() {
                Some(last) if last.len() < chunk_len => chunk_len - last.len(),
                _ => {
                    let chunk = self.fresh_chunk(chunk_len);
                    self.chunks.push_back(chunk);
                    chunk_len
                }
            };
            let last = self
                .chunks
                .back_mut()
                .expect("a chunk was just made or found");
            let before = last.len();
            last.extend(jobs.by_ref().take(room));
            n += last.len() - before;
        }
        n
    }
}

impl<J, const RING: usize, const CHUNK: usize> Fifo<J, RING, CHUNK> {
    pub(crate) fn new() -> Self {
        const { assert!(0 < CHUNK && CHUNK <= RING) };
        Fifo {
            ring: Ring::new(RING),
            spilled: AtomicUsize::new(0),
            backlog: Mutex::new(Backlog {
                chunks: VecDeque::new(),
                spare: Vec::new(),
            }),
            refilling: Mutex::new(()),
        }
    }

    fn backlog(&self) -> MutexGuard<'_, Backlog<J>> {
        // No code panics under this lock but an allocation failure, which
        // aborts: a poisoned lock still guards consistent chunks.
        self.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `push_all` for one request, without the iterator's machinery: a
    /// single put's path, taken once per request.
    pub(crate) fn push(&self, job: J) {
        // SeqCst: as in `push_all`.
        let job = if self.spilled.load(Ordering::SeqCst) == 0 {
            match self.ring.push(job) {
                Ok(()) => return,
                Err(job) => job,
            }
        } else {
            job
        };
        let mut backlog = self.backlog();
        backlog.append(job, CHUNK);
        // SeqCst: as in `push_all`, under the lock.
        self.spilled.fetch_add(1, Ordering::SeqCst);
    }

    /// Pushes a batch in its order, with one turn of the backlog's lock for
    /// whatever the ring has no room for.
    pub(crate) fn push_many(&self, jobs: &mut Vec<J>) {
        self.push_all(jobs.drain(..));
    }

    /// Into the ring while nothing is backlogged and it has room; the rest
    /// (if any) onto the backlog, under one turn of its lock.
    fn push_all(&self, mut jobs: impl Iterator<Item = J>) {
        let mut first_left = None;
        // SeqCst: pairs with the refill's lowering of `spilled` after its
        // pushes, so a put that sees 0 queues behind what the refill moved.
        if self.spilled.load(Ordering::SeqCst) == 0 {
            first_left = jobs.find_map(|job| self.ring.push(job).err());
            if first_left.is_none() {
                return;
            }
        }
        let mut backlog = self.backlog();
        let n = backlog.append_all(first_left.into_iter().chain(jobs), CHUNK);
        // SeqCst: raised after the appends, still under the lock (a taker
        // only looks at the chunks under it). A put that reads `spilled`
        // after this goes to the backlog too; a taker that sees it above 0
        // finds the requests in the backlog once it takes the lock.
        self.spilled.fetch_add(n, Ordering::SeqCst);
    }

    /// The oldest request, or `None` if there was a moment, during the
    /// call, when the FIFO held none.
    pub(crate) fn pop(&self) -> Option<J> {
        loop {
            if let Some(job) = self.ring.pop() {
                return Some(job);
            }
            // SeqCst: read after the ring was seen empty; 0 means nothing
            // is backlogged either, at this moment.
            if self.spilled.load(Ordering::SeqCst) == 0 {
                return None;
            }
            self.refill();
        }
    }

    /// Moves the backlog's first chunk into the ring, if the ring is empty
    /// (else another refill has just filled it; the caller looks again).
    /// Out of line: inlined, its frame was set up by every `pop`, about 15
    /// instructions per request on the worker.
    #[inline(never)]
    fn refill(&self) {
        // Lock hand-off: waits for a refill under way, whose requests the
        // caller then finds in the ring.
        let _refilling = self.refilling.lock().unwrap_or_else(|e| e.into_inner());
        if !self.ring.is_empty() {
            return;
        }
        let Some(mut chunk) = self.backlog().chunks.pop_front() else {
            return;
        };
        let len = chunk.len();
        let mut jobs = chunk.drain(..);
        // The ring was empty and only refills add to it while `spilled` is
        // above 0, but for puts that read `spilled` before the backlog
        // began: a full ring sends what is left back to the front.
        let left = jobs.find_map(|job| self.ring.push(job).err());
        let rest: Vec<J> = left.into_iter().chain(jobs).collect();
        // SeqCst: after the pushes, so a put that sees the drop queues
        // behind them (see `push_all`).
        self.spilled.fetch_sub(len - rest.len(), Ordering::SeqCst);
        let mut backlog = self.backlog();
        if !rest.is_empty() {
            backlog.chunks.push_front(rest);
        }
        // Kept, however many: freeing a chunk here would put the
        // allocator's work (merging it with its free neighbours, and with
        // them every small block freed since) on a worker that has requests
        // waiting. Putters reuse them; a worker about to sleep frees the
        // surplus (`trim_spares`).
        backlog.spare.push(chunk);
        // The list of a long backlog's chunks goes too, once it is empty.
        if backlog.chunks.is_empty() && backlog.chunks.capacity() > KEPT_LIST {
            backlog.chunks.shrink_to(KEPT_LIST);
        }
    }

    /// Frees up to `at_most` of the empty chunks kept beyond
    /// [`SPARE_CHUNKS`]; returns whether more are left. For a worker about
    /// to sleep: it has nothing to run, so the allocator's work delays no
    /// request already queued, and in small steps (looking for requests
    /// between them) none that comes meanwhile for long.
    pub(crate) fn trim_spares(&self, at_most: usize) -> bool {
        let (surplus, long_list, more) = {
            let mut backlog = self.backlog();
            let extra = backlog.spare.len().saturating_sub(SPARE_CHUNKS);
            if extra == 0 {
                return false;
            }
            let keep = backlog.spare.len() - extra.min(at_most);
            let surplus = backlog.spare.split_off(keep);
            // The last step also lets go of the long list that held them:
            // the kept chunks move to one of their own size.
            let mut long_list = Vec::new();
            if extra <= at_most {
                let mut kept = Vec::with_capacity(SPARE_CHUNKS);
                kept.append(&mut backlog.spare);
                long_list = std::mem::replace(&mut backlog.spare, kept);
            }
            (surplus, long_list, extra > at_most)
        };
        // Freed outside the lock, which putters may be waiting for.
        drop((surplus, long_list));
        more
    }

    /// Empty chunks kept for reuse (for tests of who frees them).
    #[cfg(all(test, not(any(loom, shuttle))))]
    pub(crate) fn spare_chunks(&self) -> usize {
        self.backlog().spare.len()
    }

    /// Whether the FIFO holds no request: the ring is empty and nothing is
    /// backlogged. Two looks, each covered by the caller's fence (the
    /// queue's sleep and sweep protocols pair a fence with the putter's).
    pub(crate) fn is_empty(&self) -> bool {
        // SeqCst: read after the ring, as in `pop`.
        self.ring.is_empty() && self.spilled.load(Ordering::SeqCst) == 0
    }
}

/// The ring: crossbeam's bounded lock-free queue in the library; under the
/// checkers, which cannot see inside crossbeam's atomics, a bounded
/// `VecDeque` behind a model mutex. Both are linearizable bounded FIFOs.
#[cfg(not(any(loom, shuttle)))]
struct Ring<J>(crossbeam_queue::ArrayQueue<J>);

#[cfg(any(loom, shuttle))]
struct Ring<J>(Mutex<VecDeque<J>>, usize);

impl<J> Ring<J> {
    #[cfg(not(any(loom, shuttle)))]
    fn new(slots: usize) -> Ring<J> {
        Ring(crossbeam_queue::ArrayQueue::new(slots))
    }

    #[cfg(not(any(loom, shuttle)))]
    fn push(&self, job: J) -> Result<(), J> {
        self.0.push(job)
    }

    #[cfg(not(any(loom, shuttle)))]
    fn pop(&self) -> Option<J> {
        self.0.pop()
    }

    #[cfg(not(any(loom, shuttle)))]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(any(loom, shuttle))]
    fn new(slots: usize) -> Ring<J> {
        Ring(Mutex::new(VecDeque::with_capacity(slots)), slots)
    }

    #[cfg(any(loom, shuttle))]
    fn push(&self, job: J) -> Result<(), J> {
        let mut ring = self.0.lock().unwrap();
        if ring.len() == self.1 {
            return Err(job);
        }
        ring.push_back(job);
        Ok(())
    }

    #[cfg(any(loom, shuttle))]
    fn pop(&self) -> Option<J> {
        self.0.lock().unwrap().pop_front()
    }

    #[cfg(any(loom, shuttle))]
    fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    /// One putter, two takers, far more requests than the ring holds: each
    /// request is taken exactly once, and each taker sees them in the order
    /// they were put (a linearizable FIFO with one putter allows no other).
    #[test]
    fn one_putter_two_takers_keep_order_through_the_backlog() {
        const N: usize = 200_000;
        let fifo: Arc<Fifo<usize>> = Arc::new(Fifo::new());
        let taken = Arc::new(AtomicUsize::new(0));
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let (fifo, taken) = (Arc::clone(&fifo), Arc::clone(&taken));
                thread::spawn(move || {
                    let mut mine = Vec::new();
                    while taken.load(Ordering::Relaxed) < N {
                        if let Some(job) = fifo.pop() {
                            mine.push(job);
                            taken.fetch_add(1, Ordering::Relaxed);
                        } else {
                            thread::yield_now();
                        }
                    }
                    mine
                })
            })
            .collect();
        for i in 0..N {
            fifo.push(i);
        }
        let mut seen = vec![false; N];
        for taker in takers {
            let mine = taker.join().unwrap();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "taken out of order");
            for job in mine {
                assert!(!seen[job], "request {job} taken twice");
                seen[job] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "a request was lost");
        assert!(fifo.is_empty());
    }

    /// With no taker, a backlog of several chunks comes out in order, and
    /// after it the FIFO is empty; the chunks kept for reuse (once trimmed),
    /// and the room kept in the list of chunks, are capped.
    #[test]
    fn a_backlog_comes_out_in_order_and_keeps_few_chunks() {
        let fifo: Fifo<usize> = Fifo::new();
        let n = RING_SLOTS + 40 * CHUNK_LEN + 7;
        for i in 0..n {
            fifo.push(i);
        }
        assert_eq!(fifo.spilled.load(Ordering::SeqCst), n - RING_SLOTS);
        let out: Vec<usize> = std::iter::from_fn(|| fifo.pop()).collect();
        assert_eq!(out, (0..n).collect::<Vec<_>>());
        assert!(fifo.is_empty());
        assert_eq!(fifo.spilled.load(Ordering::SeqCst), 0);
        // Every emptied chunk is kept until a worker about to sleep trims
        // them: none was freed by a take.
        assert_eq!(fifo.backlog().spare.len(), 41);
        // Trimmed in steps: 37 beyond the kept ones, 16 at a time.
        assert!(fifo.trim_spares(16));
        assert_eq!(fifo.backlog().spare.len(), 41 - 16);
        assert!(fifo.trim_spares(16));
        assert!(!fifo.trim_spares(16));
        assert_eq!(fifo.backlog().spare.len(), SPARE_CHUNKS);
        assert!(!fifo.trim_spares(16));
        assert!(fifo.backlog().chunks.is_empty());
        assert!(fifo.backlog().chunks.capacity() <= KEPT_LIST);
    }

    /// A batch fills the ring, then goes to the backlog in one turn of its
    /// lock, filling each chunk before the next; single puts after it queue
    /// behind it, and a batch put while there is a backlog goes wholly
    /// behind it, into the last chunk's room first.
    #[test]
    fn batches_queue_in_order_around_the_ring() {
        let fifo: Fifo<usize> = Fifo::new();
        let n = RING_SLOTS + 3 * CHUNK_LEN + 5;
        fifo.push_many(&mut (0..n).collect());
        fifo.push(n);
        fifo.push_many(&mut (n + 1..n + 10).collect());
        assert_eq!(fifo.spilled.load(Ordering::SeqCst), n + 10 - RING_SLOTS);
        // Each chunk filled before the next began: full chunks, then one
        // holding the rest.
        let lens: Vec<usize> = fifo.backlog().chunks.iter().map(Vec::len).collect();
        assert_eq!(lens, [CHUNK_LEN, CHUNK_LEN, CHUNK_LEN, 15]);
        let out: Vec<usize> = std::iter::from_fn(|| fifo.pop()).collect();
        assert_eq!(out, (0..n + 10).collect::<Vec<_>>());
        assert!(fifo.is_empty());
    }

    /// Once the backlog is gone, puts go to the ring again.
    #[test]
    fn puts_return_to_the_ring_after_a_backlog() {
        let fifo: Fifo<usize> = Fifo::new();
        for i in 0..RING_SLOTS + 1 {
            fifo.push(i);
        }
        for i in 0..RING_SLOTS + 1 {
            assert_eq!(fifo.pop(), Some(i));
        }
        fifo.push(7);
        assert_eq!(fifo.spilled.load(Ordering::SeqCst), 0);
        assert_eq!(fifo.pop(), Some(7));
        assert_eq!(fifo.pop(), None);
    }
}
