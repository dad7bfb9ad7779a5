//! An adversarial review of `AsCompleted::push`: a set of tickets the loop
//! that reads their outcomes adds to. Each attack checks, with exact
//! counts, that every index is given once (the one after the last given),
//! every outcome comes back once with the index its push gave, `len` and
//! `size_hint` say what is left, and that nothing hangs: pushes mixed with
//! `next`, `try_next` and `cancel_rest`; pushes after `next` said `None`;
//! tickets already ended, cancelled, or from a pool shut down before or
//! after the push; bounded result queues whose callbacks must run inside
//! `next` (panicking too); the set used inside a callable on one of the
//! pool's own workers, where only help can run a pushed ticket; a set
//! dropped half-way; and the memory a pushing loop keeps.
//!
//! Steps that must come before others are forced by gates and channels;
//! a watchdog aborts the process after 60 s without progress, so that a
//! hang is a failure, never a wait; time decides nothing else.

mod common;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use callpool::{AsCompleted, TaskError, ThreadPool, Ticket, WorkRequest};
use common::heap::live;
use common::{counter, gate, Rng};

const DELIBERATE: &str = "as_completed_push: deliberate panic";
const CHILD_ENV: &str = "AS_COMPLETED_PUSH_CHILD";

fn quiet() {
    common::hide_panics_starting_with(DELIBERATE);
}

// ---------------------------------------------------------------------------
// Live heap bytes, for the memory-bound attacks (read in a child process,
// where nothing else runs).
// ---------------------------------------------------------------------------

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

// ---------------------------------------------------------------------------
// The watchdog: aborts after 60 s without progress.
// ---------------------------------------------------------------------------

const STALL: Duration = Duration::from_secs(60);

struct Watchdog {
    progress: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watchdog {
    fn new(what: &'static str) -> Watchdog {
        let progress = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&progress), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let mut seen = p.load(Ordering::SeqCst);
            let mut since = Instant::now();
            while !s.load(Ordering::SeqCst) {
                thread::park_timeout(Duration::from_millis(200));
                let now = p.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    since = Instant::now();
                } else if since.elapsed() > STALL {
                    eprintln!("hang: {what} made no progress for {STALL:?} (at {now})");
                    std::process::abort();
                }
            }
        });
        Watchdog {
            progress,
            stop,
            thread: Some(thread),
        }
    }

    fn tick(&self) {
        self.progress.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Book-keeping: what each index stands for, and that each comes back once.
// ---------------------------------------------------------------------------

/// What a pushed ticket's request does.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Ok,
    Fail,
    Panic,
}

/// The set's next outcome: through `next`, or (`looks`) through a loop of
/// `try_next` looks until one is ready.
fn next_or_look<T, E>(
    set: &mut AsCompleted<T, E>,
    looks: bool,
) -> Option<(usize, Result<T, TaskError<E>>)> {
    if !looks {
        return set.next();
    }
    loop {
        match set.try_next() {
            Poll::Ready(item) => return item,
            Poll::Pending => thread::yield_now(),
        }
    }
}

/// A ticket on `pool` whose request holds a worker until its gate opens,
/// then returns `value`; returned once the worker has started it.
fn held<T: Send + 'static>(pool: &ThreadPool, value: T) -> (Ticket<T>, common::Gate) {
    let (gate, latch) = gate();
    let ticket = pool
        .submit(
            move |l: common::Latch| {
                l.hold();
                value
            },
            latch,
        )
        .unwrap();
    gate.await_start();
    (ticket, gate)
}

/// The work behind index `i`: `Ok(v)`, `Err(v)` or a panic, by kind.
fn work(kind: Kind, v: u64) -> impl FnOnce(u64) -> Result<u64, u64> + Send + 'static {
    move |x: u64| {
        assert_eq!(x, v);
        match kind {
            Kind::Ok => Ok(v),
            Kind::Fail => Err(v),
            Kind::Panic => panic!("{DELIBERATE} {v}"),
        }
    }
}

/// The set under attack and what the test expects of it.
struct Book {
    set: AsCompleted<u64, u64>,
    /// The next index `push` must return.
    next_index: usize,
    /// Index -> (value, kind, may have been cancelled).
    out: HashMap<usize, (u64, Kind, bool)>,
    /// Indexes handed back (each once).
    back: Vec<bool>,
    cancelled_told: usize,
    cancelled_seen: usize,
}

impl Book {
    fn new(set: AsCompleted<u64, u64>, first: &[(u64, Kind)]) -> Book {
        let mut book = Book {
            set,
            next_index: first.len(),
            out: HashMap::new(),
            back: vec![false; first.len()],
            cancelled_told: 0,
            cancelled_seen: 0,
        };
        for (i, &(v, kind)) in first.iter().enumerate() {
            book.out.insert(i, (v, kind, false));
        }
        book.check_len();
        book
    }

    fn push(&mut self, ticket: Ticket<u64, u64>, v: u64, kind: Kind, cancelled: bool) {
        let index = self.set.push(ticket);
        assert_eq!(index, self.next_index, "push gave the wrong index");
        self.next_index += 1;
        self.back.push(false);
        assert!(self.out.insert(index, (v, kind, cancelled)).is_none());
        if cancelled {
            self.cancelled_told += 1;
        }
        self.check_len();
    }

    fn cancel_rest(&mut self) {
        let n = self.set.cancel_rest();
        self.cancelled_told += n;
        if n > 0 {
            for (_, (_, _, may)) in self.out.iter_mut() {
                *may = true;
            }
        }
        self.check_len();
    }

    fn check_len(&self) {
        assert_eq!(self.set.len(), self.out.len(), "len");
        assert_eq!(
            self.set.size_hint(),
            (self.out.len(), Some(self.out.len())),
            "size_hint"
        );
    }

    fn take(&mut self, (index, outcome): (usize, Result<u64, TaskError<u64>>)) {
        assert!(index < self.next_index, "index {index} never given");
        assert!(!self.back[index], "index {index} handed back twice");
        self.back[index] = true;
        let (v, kind, may_cancel) = self
            .out
            .remove(&index)
            .unwrap_or_else(|| panic!("index {index} not expected"));
        match outcome {
            Err(TaskError::Cancelled) => {
                assert!(may_cancel, "index {index} cancelled, never asked to");
                self.cancelled_seen += 1;
            }
            Ok(got) => assert_eq!((kind, got), (Kind::Ok, v), "index {index}"),
            Err(TaskError::Failed(got)) => {
                assert_eq!((kind, got), (Kind::Fail, v), "index {index}")
            }
            Err(TaskError::Panicked(message)) => {
                assert_eq!(kind, Kind::Panic, "index {index}");
                assert_eq!(message, format!("{DELIBERATE} {v}"));
            }
            Err(other) => panic!("index {index}: unexpected {other:?}"),
        }
        self.check_len();
    }

    fn next(&mut self) -> bool {
        match self.set.next() {
            Some(item) => {
                self.take(item);
                true
            }
            None => {
                assert!(
                    self.out.is_empty(),
                    "next said None with {:?} left",
                    self.out
                );
                self.check_len();
                false
            }
        }
    }

    fn try_next(&mut self) -> Poll<bool> {
        match self.set.try_next() {
            Poll::Ready(Some(item)) => {
                self.take(item);
                Poll::Ready(true)
            }
            Poll::Ready(None) => {
                assert!(
                    self.out.is_empty(),
                    "try_next said Ready(None) with {:?} left",
                    self.out
                );
                Poll::Ready(false)
            }
            Poll::Pending => {
                assert!(!self.out.is_empty(), "Pending with nothing left");
                Poll::Pending
            }
        }
    }

    fn drain(&mut self) {
        while self.next() {}
        assert_eq!(self.set.next(), None, "None again");
        assert_eq!(self.set.try_next(), Poll::Ready(None));
        assert!(self.back.iter().all(|&b| b), "an outcome never came back");
        assert_eq!(self.cancelled_seen, self.cancelled_told, "cancel counts");
    }
}

// ---------------------------------------------------------------------------
// Attack 1: pushes interleaved at random with next, try_next, cancel_rest,
// len and size_hint, over three pools and two handles of one (one with a
// bounded result queue whose callbacks need running), with tickets that
// succeed, fail, panic or were cancelled before the push.
// ---------------------------------------------------------------------------

#[test]
fn random_interleavings_give_each_index_once_and_each_outcome_once() {
    quiet();
    const ROUNDS: u64 = 400;
    let dog = Watchdog::new("random interleavings");
    let a = ThreadPool::new(2);
    let a2 = a.new_handle();
    let b = ThreadPool::new(1);
    let bounded = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let callbacks = counter();
    let mut callbacks_put = 0;
    let mut v = 0u64;
    let (mut cancelled_total, mut ready, mut pending) = (0, 0, 0);
    for round in 0..ROUNDS {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round + 1));
        let n_first = rng.below(4) as usize;
        let mut first = Vec::new();
        let mut tickets = Vec::new();
        for _ in 0..n_first {
            v += 1;
            first.push((v, Kind::Ok));
            tickets.push(a.submit_fallible(work(Kind::Ok, v), v).unwrap());
        }
        let mut book = Book::new(callpool::as_completed(tickets), &first);
        for _ in 0..60 {
            dog.tick();
            match rng.below(100) {
                0..=39 => {
                    v += 1;
                    let kind = match rng.below(10) {
                        0 => Kind::Fail,
                        1 => Kind::Panic,
                        _ => Kind::Ok,
                    };
                    let on = match rng.below(4) {
                        0 => &a,
                        1 => &a2,
                        2 => &b,
                        _ => &bounded,
                    };
                    let ticket = on.submit_fallible(work(kind, v), v).unwrap();
                    let cancelled = rng.chance(10) && ticket.cancel();
                    book.push(ticket, v, kind, cancelled);
                }
                40..=44 => {
                    // Callback requests on the bounded handle: its worker
                    // gets stuck on the result queue, and a ticket of that
                    // handle queued behind it needs `next` to make room.
                    let c = Arc::clone(&callbacks);
                    bounded
                        .put_request(WorkRequest::new(|x: u64| x, 0).on_result(move |_, _| {
                            c.fetch_add(1, Ordering::SeqCst);
                        }))
                        .unwrap();
                    callbacks_put += 1;
                }
                45..=69 => {
                    book.next();
                }
                70..=94 => match book.try_next() {
                    Poll::Ready(true) => ready += 1,
                    Poll::Pending => pending += 1,
                    Poll::Ready(false) => {}
                },
                _ => book.cancel_rest(),
            }
        }
        book.drain();
        cancelled_total += book.cancelled_seen;
        // Not fused: a push after None goes on, with the next index.
        v += 1;
        let ticket = b.submit_fallible(work(Kind::Ok, v), v).unwrap();
        book.push(ticket, v, Kind::Ok, false);
        book.drain();
    }
    bounded.wait().unwrap();
    assert_eq!(callbacks.load(Ordering::SeqCst), callbacks_put);
    // The rounds met what they were meant to.
    assert!(cancelled_total > 0 && ready > 0 && pending > 0);
    eprintln!("interleavings: {cancelled_total} cancelled, {ready} looks ready, {pending} pending");
}

// ---------------------------------------------------------------------------
// Attack 2: tickets ended, cancelled, or from a pool shut down (shutdown_now,
// the last handle dropped) before or after the push.
// ---------------------------------------------------------------------------

/// A pushed ticket that has ended already is told at once: `try_next`
/// hands it back without any wait, and so does a push after `None`.
#[test]
fn a_ticket_already_ended_or_cancelled_comes_back_at_once() {
    let dog = Watchdog::new("already ended");
    let pool = ThreadPool::new(1);
    let idle = ThreadPool::new(0);
    let mut set = callpool::as_completed(Vec::<Ticket<u64>>::new());
    assert_eq!(set.next(), None);
    assert_eq!(set.try_next(), Poll::Ready(None));
    for round in 0..300usize {
        dog.tick();
        let done = pool.submit(|x: u64| x, round as u64).unwrap();
        while !done.is_finished() {
            thread::yield_now();
        }
        let cancelled = idle.submit(|x: u64| x, 0).unwrap();
        assert!(cancelled.cancel());
        assert_eq!(set.push(done), 2 * round);
        assert_eq!(set.push(cancelled), 2 * round + 1);
        assert_eq!(set.len(), 2);
        let mut got = [
            set.try_next().map(Option::unwrap),
            set.try_next().map(Option::unwrap),
        ];
        got.sort_by_key(|item| match item {
            Poll::Ready((index, _)) => *index,
            Poll::Pending => usize::MAX,
        });
        assert_eq!(
            got,
            [
                Poll::Ready((2 * round, Ok(round as u64))),
                Poll::Ready((2 * round + 1, Err(TaskError::Cancelled)))
            ]
        );
        assert_eq!(set.try_next(), Poll::Ready(None));
        assert_eq!(set.len(), 0);
    }
}

/// Queued tickets of a pool that `shutdown_now` stops, or whose last
/// handle is dropped, before or after their push (or on another thread
/// meanwhile): each comes back once, `Cancelled` or with its outcome.
#[test]
fn tickets_of_a_pool_shut_down_before_or_after_the_push_come_back_once() {
    const ROUNDS: usize = 200;
    let dog = Watchdog::new("shut down");
    let other = ThreadPool::new(1);
    for round in 0..ROUNDS {
        dog.tick();
        let pool = ThreadPool::new(1);
        let (held, gate) = held(&pool, ());
        let ran = counter();
        let queued: Vec<Ticket<u64>> = (0..4u64)
            .map(|x| {
                let r = Arc::clone(&ran);
                pool.submit(
                    move |x: u64| {
                        r.fetch_add(1, Ordering::SeqCst);
                        x
                    },
                    x,
                )
                .unwrap()
            })
            .collect();
        let mut set = callpool::as_completed([other.submit(|x: u64| x, 100).unwrap()]);
        let mut queued = queued.into_iter();
        let how = round % 4;
        // Half the tickets pushed before the pool goes, half after.
        for _ in 0..2 {
            set.push(queued.next().unwrap());
        }
        let closer = match how {
            0 => {
                let _ = pool.shutdown_now();
                None
            }
            1 => {
                drop(pool);
                None
            }
            // On another thread, racing the pushes and reads.
            2 => Some(thread::spawn(move || drop(pool.shutdown_now()))),
            _ => Some(thread::spawn(move || drop(pool))),
        };
        for _ in 0..2 {
            set.push(queued.next().unwrap());
        }
        assert_eq!(set.len(), 5);
        gate.open();
        let mut seen: Vec<_> = set.by_ref().collect();
        seen.sort_by_key(|(index, _)| *index);
        assert_eq!(seen.len(), 5, "round {round}: {seen:?}");
        assert_eq!(seen[0], (0, Ok(100)));
        let mut ok = 0;
        for (i, (index, outcome)) in seen[1..].iter().enumerate() {
            assert_eq!(*index, i + 1);
            match outcome {
                Ok(x) => {
                    assert_eq!(*x, i as u64);
                    ok += 1;
                }
                Err(TaskError::Cancelled) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        if let Some(closer) = closer {
            closer.join().unwrap();
        }
        assert_eq!(held.wait(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), ok, "round {round}");
        if how == 0 || how == 1 {
            // Closed before the worker was let go: none of them ran.
            assert_eq!(ok, 0, "round {round}: a queued one ran after the close");
        }
        assert_eq!(set.next(), None);
    }
}

// ---------------------------------------------------------------------------
// Attack 3: bounded result queues whose callbacks must run inside `next`,
// with the handle first met in a push; callbacks that panic there.
// ---------------------------------------------------------------------------

/// Fills `pool`'s (one worker, result queue of one) result queue with
/// callback requests and returns once its worker is stuck (or about to be)
/// on the second: a ticket queued behind them needs someone to run the
/// callbacks.
fn stick(pool: &ThreadPool, callbacks: &Arc<AtomicUsize>, panicking: bool) -> usize {
    let (ran_tx, ran) = mpsc::channel();
    for i in 0..3u64 {
        let ran_tx = ran_tx.clone();
        let c = Arc::clone(callbacks);
        pool.put_request(
            WorkRequest::new(
                move |x: u64| {
                    let _ = ran_tx.send(x);
                    x
                },
                i,
            )
            .on_result(move |_, x| {
                c.fetch_add(1, Ordering::SeqCst);
                if panicking && x == 0 {
                    panic!("{DELIBERATE} in a callback");
                }
            }),
        )
        .unwrap();
    }
    assert_eq!(ran.recv_timeout(common::HANG), Ok(0));
    assert_eq!(ran.recv_timeout(common::HANG), Ok(1));
    3
}

#[test]
fn pushed_tickets_of_bounded_handles_get_their_callbacks_run_inside_next() {
    quiet();
    const ROUNDS: usize = 150;
    let dog = Watchdog::new("bounded result queues");
    let unbounded = ThreadPool::new(1);
    let pool = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let second = pool.new_handle();
    let callbacks = counter();
    let mut put = 0;
    let mut panics_in_next = 0;
    for round in 0..ROUNDS {
        dog.tick();
        let panicking = round % 3 == 0;
        let on = if round % 2 == 0 { &pool } else { &second };
        // The set starts with no home: its first bounded handle comes in a
        // push, after a `next` (and, half the time, after `None`).
        let mut set = callpool::as_completed([unbounded.submit(|x: u64| x, 7).unwrap()]);
        assert_eq!(set.next(), Some((0, Ok(7))));
        if round % 4 < 2 {
            assert_eq!(set.next(), None);
        }
        put += stick(on, &callbacks, panicking);
        let index = set.push(on.submit(|x: u64| x * 2, 21).unwrap());
        assert_eq!(index, 1);
        let index = set.push(unbounded.submit(|x: u64| x, 8).unwrap());
        assert_eq!(index, 2);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match panic::catch_unwind(AssertUnwindSafe(|| set.next())) {
                Ok(Some(item)) => seen.push(item),
                Ok(None) => panic!("round {round}: None with {} left", 2 - seen.len()),
                Err(_) => panics_in_next += 1,
            }
        }
        seen.sort_by_key(|(index, _)| *index);
        assert_eq!(seen, [(1, Ok(42)), (2, Ok(8))], "round {round}");
        assert_eq!(set.next(), None);
        // The callbacks left run here (a deliberate panic left to the
        // handle's wait if `next` did not meet it).
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| on.wait())) {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => panic!("wait: {e:?}"),
                Err(_) => {}
            }
        }
    }
    assert_eq!(callbacks.load(Ordering::SeqCst), put);
    // `next` ran callbacks for the set: the worker was stuck until it did.
    assert!(panics_in_next > 0, "no callback panic passed through next");
}

// ---------------------------------------------------------------------------
// Attack 4: the set inside a callable on the pool's own (only) worker: only
// help runs the tickets it pushes.
// ---------------------------------------------------------------------------

/// A walk of a binary tree of `nodes` nodes, at most `k` in flight, run
/// inside a callable on the only worker of `pool`: pushed children are
/// queued behind that very callable, and only `next` / `try_next`
/// running them on the spot gets them done. Returns the visit counts.
fn walk_inside(
    pool: &ThreadPool,
    nodes: usize,
    k: usize,
    looks: bool,
    seed: Option<(Ticket<u64>, common::Gate)>,
) -> Vec<usize> {
    let (seed, seed_gate) = match seed {
        Some((ticket, gate)) => (Some(ticket), Some(gate)),
        None => (None, None),
    };
    let inner = pool.clone();
    let ticket = pool
        .submit(
            move |seed: Option<Ticket<u64>>| {
                let visit = |n: u64| n;
                let mut set = callpool::as_completed(seed);
                let mut next_index = set.len();
                let mut todo = vec![0u64];
                let mut visits = vec![0usize; nodes];
                let mut node_of = HashMap::new();
                if next_index == 1 {
                    node_of.insert(0usize, u64::MAX);
                }
                loop {
                    while set.len() < k {
                        let Some(n) = todo.pop() else { break };
                        let index = set.push(inner.submit(visit, n).unwrap());
                        assert_eq!(index, next_index);
                        next_index += 1;
                        assert!(node_of.insert(index, n).is_none());
                    }
                    let Some((index, outcome)) = next_or_look(&mut set, looks) else {
                        break;
                    };
                    let n = node_of.remove(&index).expect("an index given");
                    let got = outcome.unwrap();
                    if n == u64::MAX {
                        continue;
                    }
                    assert_eq!(got, n);
                    visits[n as usize] += 1;
                    for m in [2 * n + 1, 2 * n + 2] {
                        if (m as usize) < nodes {
                            todo.push(m);
                        }
                    }
                }
                assert!(todo.is_empty() && node_of.is_empty());
                visits
            },
            seed,
        )
        .unwrap();
    if let Some(gate) = seed_gate {
        gate.open();
    }
    ticket.wait().unwrap()
}

#[test]
fn inside_a_callable_on_the_only_worker_pushed_tickets_are_helped() {
    const ROUNDS: usize = 120;
    let dog = Watchdog::new("help inside a callable");
    let other = ThreadPool::new(1);
    for round in 0..ROUNDS {
        dog.tick();
        let pool = ThreadPool::new(1);
        let looks = round % 2 == 1;
        // A third of the rounds start with a ticket of another pool, held
        // until the walk is submitted: the first `next` or look may then
        // build the set of ids to help before the pushes.
        let seed = (round % 3 == 0).then(|| held(&other, 5));
        let k = 1 + round % 4;
        let visits = walk_inside(&pool, 200, k, looks, seed);
        assert!(
            visits.iter().all(|&v| v == 1),
            "round {round} (k {k}, looks {looks}): {visits:?}"
        );
    }
}

/// Two callables, each on one of the two workers, each reading a set it
/// pushes to: every pushed ticket of theirs is queued behind both, so
/// each gets run by one of the two helping (never twice).
#[test]
fn two_workers_each_helping_their_own_pushed_tickets() {
    const ROUNDS: usize = 100;
    let dog = Watchdog::new("two helping workers");
    for round in 0..ROUNDS {
        dog.tick();
        let pool = ThreadPool::new(2);
        let runs = Arc::new((0..400).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let (started_tx, started) = mpsc::channel();
        let go = Arc::new(common::one_way::Gate::default());
        let mut outer = Vec::new();
        for half in 0..2u64 {
            let inner = pool.clone();
            let runs = Arc::clone(&runs);
            let started_tx = started_tx.clone();
            let go = Arc::clone(&go);
            outer.push(
                pool.submit(
                    move |half: u64| {
                        let _ = started_tx.send(());
                        go.pass();
                        let mut set = callpool::as_completed(Vec::<Ticket<u64>>::new());
                        let mut handed = 0;
                        for i in 0..200u64 {
                            let n = half * 200 + i;
                            let r = Arc::clone(&runs);
                            let index = set.push(
                                inner
                                    .submit(
                                        move |n: u64| {
                                            r[n as usize].fetch_add(1, Ordering::SeqCst);
                                            n
                                        },
                                        n,
                                    )
                                    .unwrap(),
                            );
                            assert_eq!(index, i as usize);
                            if i % 3 == 2 {
                                let (index, outcome) = set.next().unwrap();
                                assert_eq!(outcome, Ok(half * 200 + index as u64));
                                handed += 1;
                            }
                        }
                        for (index, outcome) in set {
                            assert_eq!(outcome, Ok(half * 200 + index as u64));
                            handed += 1;
                        }
                        handed
                    },
                    half,
                )
                .unwrap(),
            );
        }
        started.recv_timeout(common::HANG).unwrap();
        started.recv_timeout(common::HANG).unwrap();
        go.open();
        for t in outer {
            assert_eq!(t.wait(), Ok(200), "round {round}");
        }
        common::assert_each_once("run", &runs);
    }
}

// ---------------------------------------------------------------------------
// Attack 5: the set dropped half-way with pushed tickets left; outcomes whose
// `Drop` panics.
// ---------------------------------------------------------------------------

/// An outcome that counts its drops, and panics in its drop when asked.
struct Loud {
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for Loud {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics && !thread::panicking() {
            panic!("{DELIBERATE} in an outcome's drop");
        }
    }
}

#[test]
fn dropping_the_set_half_way_lets_pushed_requests_run_and_drops_their_outcomes() {
    quiet();
    const ROUNDS: usize = 100;
    let dog = Watchdog::new("dropped half-way");
    let pool = ThreadPool::new(2);
    for round in 0..ROUNDS {
        dog.tick();
        let (ran, drops) = (counter(), counter());
        let make = |i: usize| {
            let (r, d) = (Arc::clone(&ran), Arc::clone(&drops));
            pool.submit(
                move |i: usize| {
                    r.fetch_add(1, Ordering::SeqCst);
                    Loud {
                        drops: d,
                        panics: i % 3 == 0,
                    }
                },
                i,
            )
            .unwrap()
        };
        let mut set = callpool::as_completed((0..3).map(make));
        let mut read = 0;
        for i in 3..20 {
            assert_eq!(set.push(make(i)), i);
            if i % 4 == 0 {
                let item = set.next().unwrap();
                let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(item)));
                read += 1;
            }
        }
        // A worker held, so some are surely queued when the set goes.
        let (held, gate) = held(&pool, ());
        for i in 20..30 {
            assert_eq!(set.push(make(i)), i);
        }
        assert_eq!(set.len(), 30 - read);
        drop(set);
        gate.open();
        assert_eq!(held.wait(), Ok(()));
        // Everything runs; every outcome is dropped once (the handed-back
        // ones by the test, the rest by the set or on a worker).
        common::until(|| drops.load(Ordering::SeqCst) == 30);
        assert_eq!(ran.load(Ordering::SeqCst), 30, "round {round}");
        // The workers are still there.
        assert_eq!(pool.workers(), 2);
        assert_eq!(pool.submit(|x: u8| x, 1).unwrap().wait(), Ok(1));
        assert_eq!(drops.load(Ordering::SeqCst), 30);
    }
}

// ---------------------------------------------------------------------------
// Attack 6: cancel from other threads racing pushes and reads.
// ---------------------------------------------------------------------------

#[test]
fn cancel_handles_racing_pushes_and_reads_each_outcome_once() {
    const ROUNDS: usize = 300;
    let dog = Watchdog::new("racing cancels");
    let pool = ThreadPool::new(1);
    for round in 0..ROUNDS {
        dog.tick();
        let (tx, rx) = mpsc::channel::<callpool::CancelHandle>();
        let cancelled = counter();
        let c = Arc::clone(&cancelled);
        let canceller = thread::spawn(move || {
            for handle in rx {
                if handle.cancel() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let mut set = callpool::as_completed(Vec::<Ticket<u64>>::new());
        let mut seen = vec![0usize; 50];
        let mut got_cancelled = 0;
        for i in 0..50u64 {
            let ticket = pool.submit(|x: u64| x, i).unwrap();
            if i % 2 == 0 {
                tx.send(ticket.cancel_handle()).unwrap();
            }
            assert_eq!(set.push(ticket), i as usize);
            if let Poll::Ready(Some((index, outcome))) = set.try_next() {
                seen[index] += 1;
                match outcome {
                    Ok(x) => assert_eq!(x, index as u64),
                    Err(TaskError::Cancelled) => got_cancelled += 1,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        drop(tx);
        canceller.join().unwrap();
        for (index, outcome) in set.by_ref() {
            seen[index] += 1;
            match outcome {
                Ok(x) => assert_eq!(x, index as u64),
                Err(TaskError::Cancelled) => got_cancelled += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "round {round}: {seen:?}");
        assert_eq!(
            got_cancelled,
            cancelled.load(Ordering::SeqCst),
            "round {round}"
        );
        assert_eq!(set.len(), 0);
    }
}

// ---------------------------------------------------------------------------
// Attack 7: the memory a pushing loop keeps (in a child process, alone, so
// that the live-bytes count is this loop's).
// ---------------------------------------------------------------------------

/// Pushes `total` tickets, at most 4 in flight, each from `source(i)`;
/// returns the live heap bytes sampled after each tenth of the run (the
/// first tenth is the warm-up).
fn pushing_loop(total: usize, dog: &Watchdog, source: impl Fn(usize) -> Ticket<u64>) -> Vec<isize> {
    let mut set = callpool::as_completed([source(0)]);
    let mut pushed = 1;
    let mut handed = 0;
    let mut samples = Vec::new();
    while let Some((index, outcome)) = set.next() {
        assert_eq!(outcome, Ok(index as u64));
        handed += 1;
        while set.len() < 4 && pushed < total {
            assert_eq!(set.push(source(pushed)), pushed);
            pushed += 1;
        }
        if handed % (total / 10) == 0 {
            dog.tick();
            samples.push(live());
        }
    }
    assert_eq!(handed, total);
    samples
}

fn assert_flat(what: &str, samples: &[isize], slack: isize) {
    let base = samples[1];
    let most = *samples[1..].iter().max().unwrap();
    assert!(
        most - base <= slack,
        "{what}: live heap grew by {} bytes over the run (samples {samples:?})",
        most - base
    );
}

#[test]
fn a_million_pushes_keep_the_set_small() {
    const NAME: &str = "a_million_pushes_keep_the_set_small";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    let dog = Watchdog::new("a million pushes");
    let pool = ThreadPool::new(2);
    let bounded = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()
        .unwrap();
    let samples = pushing_loop(1_000_000, &dog, |i| {
        let on = if i % 2 == 0 { &pool } else { &bounded };
        on.submit(|x: u64| x, i as u64).unwrap()
    });
    assert_flat("a million pushes", &samples, 64 * 1024);
    drop(dog);
    common::child_ran(NAME);
}

/// One slow ticket among ten thousand quick ones stretches the set's span
/// (the oldest ticket not handed back to the newest); once it is handed
/// back the span is short again, and so is the memory the set holds: what
/// the long span took is given back, not kept for the rest of the loop.
#[test]
fn a_long_span_gives_its_memory_back() {
    const NAME: &str = "a_long_span_gives_its_memory_back";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    const QUICK: usize = 10_000;
    let dog = Watchdog::new("a long span");
    let pool = ThreadPool::new(2);
    let (held, latch) = gate();
    let slow = pool
        .submit(
            move |x: u64| {
                latch.hold();
                x
            },
            0,
        )
        .unwrap();
    held.await_start();
    let mut set = callpool::as_completed([slow]);
    let quick = |i: usize| pool.submit(|x: u64| x, i as u64).unwrap();
    // A few first, so that the set's first slots are made.
    for i in 1..=8 {
        assert_eq!(set.push(quick(i)), i);
        assert_eq!(set.next(), Some((i, Ok(i as u64))));
    }
    let before = live();
    for i in 9..9 + QUICK {
        assert_eq!(set.push(quick(i)), i);
        assert_eq!(set.next(), Some((i, Ok(i as u64))));
        if i % 1_000 == 0 {
            dog.tick();
        }
    }
    let stretched = live();
    // Sixteen bytes a slot, ten thousand slots at the least.
    assert!(
        stretched - before >= 16 * QUICK as isize,
        "the span took {} bytes",
        stretched - before
    );
    held.open();
    assert_eq!(set.next(), Some((0, Ok(0))));
    for i in 9 + QUICK..9 + QUICK + 8 {
        assert_eq!(set.push(quick(i)), i);
        assert_eq!(set.next(), Some((i, Ok(i as u64))));
    }
    let after = live();
    assert!(
        after - before <= 4 * 1024,
        "the set still holds {} bytes of its long span (before {before}, stretched {stretched}, after {after})",
        after - before
    );
    drop(dog);
    common::child_ran(NAME);
}

/// A loop that puts each request through a handle of its own (made for it
/// and dropped at once), on a pool with bounded result queues: the pool
/// keeps nothing per handle gone, and neither may the set.
#[test]
fn pushes_through_short_lived_bounded_handles_keep_the_set_small() {
    const NAME: &str = "pushes_through_short_lived_bounded_handles_keep_the_set_small";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    const TOTAL: usize = 20_000;
    let dog = Watchdog::new("short-lived handles");
    let pool = ThreadPool::builder()
        .workers(2)
        .result_capacity(1)
        .build()
        .unwrap();
    // The pool alone: tickets through short-lived handles, waited one by
    // one, keep nothing.
    let mut samples = Vec::new();
    for i in 0..TOTAL {
        let ticket = pool.new_handle().submit(|x: u64| x, i as u64).unwrap();
        assert_eq!(ticket.wait(), Ok(i as u64));
        if (i + 1) % (TOTAL / 10) == 0 {
            dog.tick();
            samples.push(live());
        }
    }
    assert_flat("the pool alone", &samples, 64 * 1024);
    // The same through a set fed for ever.
    let samples = pushing_loop(TOTAL, &dog, |i| {
        pool.new_handle().submit(|x: u64| x, i as u64).unwrap()
    });
    assert_flat("a set fed through short-lived handles", &samples, 64 * 1024);
    drop(dog);
    common::child_ran(NAME);
}

/// A future's waker registered on a ticket before its push is replaced by
/// the set's listener: the outcome comes out of the set.
#[test]
fn a_ticket_polled_as_a_future_before_its_push_still_comes_out() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let dog = Watchdog::new("polled before push");
    let pool = ThreadPool::new(1);
    for round in 0..200u64 {
        dog.tick();
        let (held, gate) = held(&pool, u64::MAX);
        let mut ticket = pool.submit(|x: u64| x, round).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(std::pin::Pin::new(&mut ticket).poll(&mut cx).is_pending());
        let mut set = callpool::as_completed([held]);
        assert_eq!(set.push(ticket), 1);
        gate.open();
        let mut seen: Vec<_> = set.by_ref().collect();
        seen.sort_by_key(|(index, _)| *index);
        assert_eq!(seen, [(0, Ok(u64::MAX)), (1, Ok(round))]);
    }
}

/// A set built and pushed to off the pool, holding tickets queued behind
/// the callable it is then moved into (on the pool's only worker): the
/// set never helped before, so its ids to help are gathered there, and
/// the tickets pushed inside afterwards (plain and given a context) join
/// them. Each runs once, here.
#[test]
fn a_set_moved_into_a_callable_helps_the_tickets_pushed_before_and_inside() {
    const ROUNDS: usize = 150;
    let dog = Watchdog::new("moved into a callable");
    for round in 0..ROUNDS {
        dog.tick();
        let pool = ThreadPool::new(1);
        let (holder, gate) = held(&pool, ());
        let runs = Arc::new((0..20).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let mut set = callpool::as_completed(Vec::<Ticket<u64>>::new());
        for i in 0..5u64 {
            let r = Arc::clone(&runs);
            let ticket = pool
                .submit(
                    move |i: u64| {
                        r[i as usize].fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                )
                .unwrap();
            assert_eq!(set.push(ticket), i as usize);
        }
        let inner = pool.clone();
        let r = Arc::clone(&runs);
        let looks = round % 2 == 0;
        // Queued behind `holder`; runs on the only worker once it ends, with
        // the five pushed tickets queued behind it in turn.
        let walker = pool
            .submit(
                move |mut set: AsCompleted<u64>| {
                    let mut seen = vec![0usize; 20];
                    let take = |set: &mut AsCompleted<u64>, seen: &mut Vec<usize>| {
                        let (index, outcome) = next_or_look(set, looks).expect("one left");
                        assert_eq!(outcome, Ok(index as u64));
                        seen[index] += 1;
                    };
                    take(&mut set, &mut seen);
                    for i in 5..20u64 {
                        let r = Arc::clone(&r);
                        let ticket = if i % 2 == 0 {
                            inner.submit(
                                move |i: u64| {
                                    r[i as usize].fetch_add(1, Ordering::SeqCst);
                                    i
                                },
                                i,
                            )
                        } else {
                            inner.submit_with_context(
                                move |_: &callpool::Context<'_>, i: u64| {
                                    r[i as usize].fetch_add(1, Ordering::SeqCst);
                                    i
                                },
                                i,
                            )
                        }
                        .unwrap();
                        assert_eq!(set.push(ticket), i as usize);
                        if i % 4 == 0 {
                            take(&mut set, &mut seen);
                        }
                    }
                    while set.len() > 0 {
                        take(&mut set, &mut seen);
                    }
                    assert_eq!(set.next(), None);
                    seen
                },
                set,
            )
            .unwrap();
        gate.open();
        assert_eq!(holder.wait(), Ok(()));
        let seen = walker.wait().unwrap();
        assert!(seen.iter().all(|&n| n == 1), "round {round}: {seen:?}");
        common::assert_each_once("run", &runs);
    }
}

/// `shutdown_now` on another thread while a callable on the pool's only
/// worker pushes tickets of that pool and reads them (helping): each
/// pushed ticket comes back once, run (here, by help) or cancelled (by
/// the sweep, or by a help that took it after the close), and pushes
/// after the close are refused, never lost.
#[test]
fn shutdown_now_while_a_callable_pushes_and_helps() {
    const ROUNDS: usize = 200;
    let dog = Watchdog::new("shutdown_now under a helping set");
    for round in 0..ROUNDS {
        dog.tick();
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let ran = counter();
        let r = Arc::clone(&ran);
        let (pushed_tx, pushed) = mpsc::channel();
        let walker = pool
            .submit(
                move |round: usize| {
                    let mut set = callpool::as_completed(Vec::<Ticket<u64>>::new());
                    let (mut ok, mut cancelled, mut refused) = (0, 0, 0);
                    for i in 0..60u64 {
                        let r = Arc::clone(&r);
                        match inner.submit(
                            move |i: u64| {
                                r.fetch_add(1, Ordering::SeqCst);
                                i
                            },
                            i,
                        ) {
                            Ok(ticket) => assert_eq!(set.push(ticket), i as usize - refused),
                            Err(_) => refused += 1,
                        }
                        if i == 10 {
                            let _ = pushed_tx.send(());
                        }
                        if i % (1 + round as u64 % 3) == 0 {
                            if set.len() == 0 {
                                assert_eq!(set.next(), None);
                                continue;
                            }
                            match set.next() {
                                Some((_, Ok(_))) => ok += 1,
                                Some((_, Err(TaskError::Cancelled))) => cancelled += 1,
                                other => panic!("{other:?}"),
                            }
                        }
                    }
                    for (_, outcome) in set.by_ref() {
                        match outcome {
                            Ok(_) => ok += 1,
                            Err(TaskError::Cancelled) => cancelled += 1,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    (ok, cancelled, refused)
                },
                round,
            )
            .unwrap();
        let walker_cancel = walker.cancel_handle();
        pushed.recv_timeout(common::HANG).unwrap();
        let _ = pool.shutdown_now();
        assert!(!walker_cancel.cancel(), "the walker had started");
        let (ok, cancelled, refused) = walker.wait().unwrap();
        assert_eq!(ok + cancelled + refused, 60, "round {round}");
        assert_eq!(ran.load(Ordering::SeqCst), ok, "round {round}");
    }
}
