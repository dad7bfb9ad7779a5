//! An adversarial trial of user iterators and user values that misbehave:
//! input iterators that panic in `next()` part-way, whose `size_hint` lies
//! (more, fewer, or `(usize::MAX, None)`), that yield again after `None`
//! (not fused), fed to `make_requests`, `make_requests_with_input`,
//! `put_all`, `put_batch`, `map`, `imap`, `as_completed` (the window and
//! the free function over tickets), from the test thread, from a callback
//! on the polling thread and from a worker's callable. For each: no hang,
//! a panic passes to the caller only where the docs say it does, every
//! accepted request ends exactly once, every input pulled is run or dropped
//! exactly once, `pending()` returns to 0 and a follow-up request runs.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use callpool::{make_requests, make_requests_with_input, ThreadPool, WorkRequest};
use common::{hide_panics_starting_with, within, within_here};

const BOOM: &str = "misbehaving: ";

/// An input that counts its drops, per index.
struct Item {
    n: usize,
    drops: Arc<Vec<AtomicUsize>>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops[self.n].fetch_add(1, Ordering::SeqCst);
    }
}

/// Yields `Item`s `0..len`; panics once when asked for `panic_at` (without
/// using that index up), returns `None` once at `gap_at` (not fused), and
/// says `hint` as its `size_hint`.
struct Flaky {
    next: usize,
    len: usize,
    panic_at: Option<usize>,
    gap_at: Option<usize>,
    hint: (usize, Option<usize>),
    drops: Arc<Vec<AtomicUsize>>,
    pulled: Arc<AtomicUsize>,
}

impl Flaky {
    fn new(len: usize) -> Flaky {
        Flaky {
            next: 0,
            len,
            panic_at: None,
            gap_at: None,
            hint: (len, Some(len)),
            drops: Arc::new((0..len).map(|_| AtomicUsize::new(0)).collect()),
            pulled: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn panic_at(mut self, at: usize) -> Flaky {
        self.panic_at = Some(at);
        self
    }
    fn gap_at(mut self, at: Option<usize>) -> Flaky {
        self.gap_at = at;
        self
    }
    fn hint(mut self, hint: (usize, Option<usize>)) -> Flaky {
        self.hint = hint;
        self
    }
    /// Its drop counters and its count of items handed out.
    fn probes(&self) -> (Arc<Vec<AtomicUsize>>, Arc<AtomicUsize>) {
        (Arc::clone(&self.drops), Arc::clone(&self.pulled))
    }
}

impl Iterator for Flaky {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        if self.panic_at == Some(self.next) {
            self.panic_at = None;
            panic!("{BOOM}next panicked at {}", self.next);
        }
        if self.gap_at == Some(self.next) {
            self.gap_at = None;
            return None;
        }
        if self.next == self.len {
            return None;
        }
        self.next += 1;
        self.pulled.fetch_add(1, Ordering::SeqCst);
        Some(Item {
            n: self.next - 1,
            drops: Arc::clone(&self.drops),
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.hint
    }
}

fn quiet() {
    hide_panics_starting_with(BOOM);
}

fn drops(d: &[AtomicUsize]) -> Vec<usize> {
    d.iter().map(|c| c.load(Ordering::SeqCst)).collect()
}

/// Each of `len` inputs dropped once if below `n`, else never pulled.
fn first(n: usize, len: usize) -> Vec<usize> {
    (0..len).map(|i| usize::from(i < n)).collect()
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The pool is idle and still runs a request.
fn assert_usable(pool: &ThreadPool) {
    assert_eq!(within_wait(pool), 0, "nothing left to wait for");
    assert_eq!(pool.pending(), 0);
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::new(|n: u32| n + 1, 41).on_result(move |_, v| tx.send(v).unwrap()),
    )
    .unwrap();
    assert_eq!(within_wait(pool), 1);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [42]);
    assert_eq!(pool.pending(), 0);
}

fn within_wait(pool: &ThreadPool) -> usize {
    within_here("wait", || pool.wait().unwrap())
}

/// Requests that send their input's index to `ran` when run.
fn requests_of(inputs: Flaky, ran: mpsc::Sender<usize>) -> Vec<WorkRequest> {
    let ran = Mutex::new(ran);
    make_requests(
        move |item: Item| item.n,
        inputs,
        move |_, n| ran.lock().unwrap().send(n).unwrap(),
        |_, e| panic!("{e}"),
    )
}

/// One request per input, each sending its index to `ran` when run.
fn item_requests(inputs: Flaky, ran: mpsc::Sender<usize>) -> impl Iterator<Item = WorkRequest> {
    inputs.map(move |item| {
        let ran = ran.clone();
        WorkRequest::new(|item: Item| item.n, item)
            .on_result(move |_, n| ran.send(n).unwrap())
            .into()
    })
}

/// What `rx` got, sorted.
fn ran(rx: &mpsc::Receiver<usize>) -> Vec<usize> {
    let mut ran: Vec<usize> = rx.try_iter().collect();
    ran.sort();
    ran
}

/// Every request of `requests` runs exactly once; their ids all differ.
fn run_all_once(
    pool: &ThreadPool,
    requests: Vec<WorkRequest>,
    rx: &mpsc::Receiver<usize>,
    n: usize,
) {
    assert_eq!(requests.len(), n);
    let mut ids: Vec<u64> = requests.iter().map(|r| r.id().value()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "ids all distinct");
    assert_eq!(pool.put_all(requests).unwrap(), n);
    assert_eq!(within_wait(pool), n);
    assert_eq!(ran(rx), (0..n).collect::<Vec<_>>());
}

#[test]
fn make_requests_with_a_panicking_iterator_drops_what_it_pulled_once() {
    quiet();
    let inputs = Flaky::new(6).panic_at(3);
    let (dropped, pulled) = inputs.probes();
    let (tx, _rx) = mpsc::channel();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| requests_of(inputs, tx))).unwrap_err();
    assert!(message(&*caught).contains("next panicked at 3"));
    assert_eq!(pulled.load(Ordering::SeqCst), 3);
    assert_eq!(drops(&dropped), first(3, 6));

    // And the keyed form.
    let inputs = Flaky::new(6).panic_at(3);
    let (dropped, _) = inputs.probes();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        make_requests_with_input(|i: &Item| i.n, inputs, |_, _, _| {}, |_, _, _| {})
    }));
    assert!(caught.is_err());
    assert_eq!(drops(&dropped), first(3, 6));
}

#[test]
fn make_requests_with_lying_size_hints_makes_one_request_per_input() {
    let pool = ThreadPool::new(2);
    for hint in [(0, Some(0)), (100, Some(100)), (3, Some(1))] {
        let inputs = Flaky::new(5).hint(hint);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let requests = within("make_requests", move || requests_of(inputs, tx));
        run_all_once(&pool, requests, &rx, 5);
        assert_eq!(drops(&dropped), [1; 5], "hint {hint:?}");
    }
    assert_usable(&pool);
}

#[test]
fn make_requests_from_a_non_fused_iterator_stops_at_the_first_none() {
    let inputs = Flaky::new(6).gap_at(Some(2));
    let (dropped, pulled) = inputs.probes();
    let (tx, rx) = mpsc::channel();
    let requests = requests_of(inputs, tx);
    assert_eq!(pulled.load(Ordering::SeqCst), 2);
    let pool = ThreadPool::new(2);
    run_all_once(&pool, requests, &rx, 2);
    assert_eq!(drops(&dropped), first(2, 6));
    assert_usable(&pool);
}

#[test]
fn put_all_with_a_panicking_iterator_runs_what_it_put_exactly_once() {
    quiet();
    for bounded in [false, true] {
        let pool = pool_of(bounded);
        let inputs = Flaky::new(6).panic_at(3);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let requests = item_requests(inputs, tx);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| pool.put_all(requests))).unwrap_err();
        assert!(message(&*caught).contains("next panicked at 3"));
        assert_eq!(within_wait(&pool), 3);
        assert_eq!(ran(&rx), [0, 1, 2]);
        assert_eq!(drops(&dropped), first(3, 6));
        assert_usable(&pool);
    }
}

fn pool_of(bounded: bool) -> ThreadPool {
    if bounded {
        ThreadPool::builder()
            .workers(2)
            .queue_capacity(2)
            .build()
            .unwrap()
    } else {
        ThreadPool::new(2)
    }
}

#[test]
fn put_batch_with_a_panicking_iterator_puts_nothing() {
    quiet();
    for bounded in [false, true] {
        let pool = pool_of(bounded);
        let inputs = Flaky::new(6).panic_at(3);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let requests = item_requests(inputs, tx);
        let caught =
            panic::catch_unwind(AssertUnwindSafe(|| pool.put_batch(requests))).unwrap_err();
        assert!(message(&*caught).contains("next panicked at 3"));
        assert_eq!(within_wait(&pool), 0);
        assert_eq!(ran(&rx), []);
        assert_eq!(drops(&dropped), first(3, 6));
        assert_usable(&pool);
    }
}

#[test]
fn put_batch_with_lying_hints_and_gaps_puts_what_it_pulled() {
    for bounded in [false, true] {
        let pool = pool_of(bounded);
        for (hint, gap, n) in [
            ((0, Some(0)), None, 5),
            ((100, Some(100)), None, 5),
            ((5, Some(5)), Some(3), 3),
        ] {
            let inputs = Flaky::new(5).hint(hint).gap_at(gap);
            let (dropped, _) = inputs.probes();
            let (tx, rx) = mpsc::channel();
            let requests = item_requests(inputs, tx);
            let batch = within_here("put_batch", || pool.put_batch(requests).unwrap());
            assert_eq!(within_wait(&pool), n, "hint {hint:?}");
            let progress = batch.progress();
            assert_eq!((progress.total, progress.done), (n, n));
            assert_eq!(ran(&rx), (0..n).collect::<Vec<_>>());
            assert_eq!(drops(&dropped), first(n, 5));
        }
        assert_usable(&pool);
    }
}

#[test]
fn map_with_a_panicking_iterator_runs_nothing_and_the_pool_goes_on() {
    quiet();
    let pool = ThreadPool::new(2);
    let inputs = Flaky::new(6).panic_at(3);
    let (dropped, _) = inputs.probes();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.map(inputs, move |i: Item| {
            r.fetch_add(1, Ordering::SeqCst);
            i.n
        })
    }))
    .unwrap_err();
    assert!(message(&*caught).contains("next panicked at 3"));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(drops(&dropped), first(3, 6));
    assert_usable(&pool);
}

#[test]
fn map_with_lying_hints_and_gaps_gives_one_outcome_per_input() {
    let pool = ThreadPool::new(2);
    for (hint, gap, n) in [
        ((0, Some(0)), None, 7),
        ((1000, Some(1000)), None, 7),
        ((7, Some(7)), Some(4), 4),
    ] {
        let inputs = Flaky::new(7).hint(hint).gap_at(gap);
        let (dropped, _) = inputs.probes();
        let outcomes = within_here("map", || pool.map(inputs, |i: Item| i.n));
        let outcomes: Vec<usize> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(outcomes, (0..n).collect::<Vec<_>>(), "hint {hint:?}");
        assert_eq!(drops(&dropped), first(n, 7));
    }
    assert_usable(&pool);
}

/// Counts a panic caught from an input: it must be one of the inputs'
/// (`BOOM`), and no more of them than they threw.
fn caught_boom(payload: &(dyn std::any::Any + Send), caught: &mut usize, panics: usize) {
    assert!(message(payload).starts_with(BOOM), "{}", message(payload));
    *caught += 1;
    assert!(*caught <= panics, "more panics than the inputs threw");
}

/// Pulls `next` until the end, catching the inputs' panics (exactly
/// `panics` of them); gives each outcome's number.
fn drain_catching<It: Iterator>(
    mut it: It,
    panics: usize,
    n_of: impl Fn(It::Item) -> usize,
) -> Vec<usize> {
    let mut seen = Vec::new();
    let mut caught = 0;
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| it.next())) {
            Ok(Some(item)) => seen.push(n_of(item)),
            Ok(None) => break,
            Err(payload) => caught_boom(&*payload, &mut caught, panics),
        }
    }
    assert_eq!(caught, panics);
    seen
}

#[test]
fn imap_goes_on_after_its_inputs_panic_and_loses_nothing() {
    quiet();
    let pool = ThreadPool::new(2);
    for limit in [0, 1, 2, 3, 8] {
        for panic_at in [0, 1, 2, 5, 7] {
            let inputs = Flaky::new(8).panic_at(panic_at);
            let (dropped, _) = inputs.probes();
            let seen = within_here("imap", || {
                drain_catching(pool.imap(inputs, limit, |i: Item| i.n), 1, Result::unwrap)
            });
            assert_eq!(
                seen,
                (0..8).collect::<Vec<_>>(),
                "limit {limit}, panic at {panic_at}"
            );
            assert_eq!(drops(&dropped), [1; 8]);
            assert_usable(&pool);
        }
    }
}

#[test]
fn as_completed_goes_on_after_its_inputs_panic_and_loses_nothing() {
    quiet();
    let pool = ThreadPool::new(2);
    for limit in [0, 1, 2, 3, 8] {
        for panic_at in [0, 1, 2, 5, 7] {
            let inputs = Flaky::new(8).panic_at(panic_at);
            let (dropped, _) = inputs.probes();
            let mut seen = within_here("as_completed", || {
                let window = pool.as_completed(inputs, limit, |i: &Item| i.n);
                drain_catching(window, 1, |(item, out)| {
                    assert_eq!(out.unwrap(), item.n);
                    item.n
                })
            });
            seen.sort();
            assert_eq!(
                seen,
                (0..8).collect::<Vec<_>>(),
                "limit {limit}, panic at {panic_at}"
            );
            assert_eq!(drops(&dropped), [1; 8]);
            assert_usable(&pool);
        }
    }
}

#[test]
fn windows_stop_at_the_first_none_and_ignore_lying_hints() {
    let pool = ThreadPool::new(2);
    for (hint, gap, n) in [
        ((0, Some(0)), None, 6),
        ((usize::MAX, None), None, 6),
        ((usize::MAX, Some(usize::MAX)), None, 6),
        ((6, Some(6)), Some(2), 2),
        ((6, Some(6)), Some(0), 0),
    ] {
        for limit in [0, 2] {
            let inputs = Flaky::new(6).hint(hint).gap_at(gap);
            let (dropped, pulled) = inputs.probes();
            let seen: Vec<usize> = within_here("imap", || {
                pool.imap(inputs, limit, |i: Item| i.n)
                    .map(Result::unwrap)
                    .collect()
            });
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "imap, hint {hint:?}");
            assert_eq!(pulled.load(Ordering::SeqCst), n);
            assert_eq!(drops(&dropped), first(n, 6));

            let inputs = Flaky::new(6).hint(hint).gap_at(gap);
            let (dropped, pulled) = inputs.probes();
            let mut seen: Vec<usize> = within_here("as_completed", || {
                pool.as_completed(inputs, limit, |i: &Item| i.n)
                    .map(|(_, out)| out.unwrap())
                    .collect()
            });
            seen.sort();
            assert_eq!(
                seen,
                (0..n).collect::<Vec<_>>(),
                "as_completed, hint {hint:?}"
            );
            assert_eq!(pulled.load(Ordering::SeqCst), n);
            assert_eq!(drops(&dropped), first(n, 6));
        }
    }
    assert_usable(&pool);
}

#[test]
fn dropping_a_window_after_its_inputs_panicked_drops_every_input_once() {
    quiet();
    let pool = ThreadPool::new(2);
    for limit in [1, 3] {
        let inputs = Flaky::new(8).panic_at(3);
        let (dropped, pulled) = inputs.probes();
        let mut window = pool.imap(inputs, limit, |i: Item| i.n);
        let mut got = Vec::new();
        let caught = within_here("imap", || loop {
            match panic::catch_unwind(AssertUnwindSafe(|| window.next())) {
                Ok(Some(n)) => got.push(n.unwrap()),
                Ok(None) => panic!("ended before the inputs panicked"),
                Err(payload) => break payload,
            }
        });
        assert!(message(&*caught).contains("next panicked at 3"));
        drop(window);
        let pulled = pulled.load(Ordering::SeqCst);
        assert_eq!(pulled, 3);
        assert_eq!(drops(&dropped), first(pulled, 8), "limit {limit}");
        assert_usable(&pool);
    }
}

#[test]
fn as_completed_over_a_panicking_iterator_of_tickets_leaves_the_pool_whole() {
    quiet();
    let pool = ThreadPool::new(2);
    let runs = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let tickets = (0..6).map(|n| {
        if n == 3 {
            panic!("{BOOM}ticket iterator");
        }
        made.fetch_add(1, Ordering::SeqCst);
        let runs = Arc::clone(&runs);
        pool.submit(
            move |n: usize| {
                runs.fetch_add(1, Ordering::SeqCst);
                n
            },
            n,
        )
        .unwrap()
    });
    let caught = panic::catch_unwind(AssertUnwindSafe(|| callpool::as_completed(tickets)));
    assert!(caught.is_err());
    assert_eq!(made.load(Ordering::SeqCst), 3);
    // The tickets were dropped, not their requests: each of the three runs once.
    common::until(|| runs.load(Ordering::SeqCst) == 3);
    assert_usable(&pool);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[test]
fn a_callback_on_the_polling_thread_whose_put_all_iterator_panics() {
    quiet();
    let pool = Arc::new(ThreadPool::new(2));
    let inputs = Flaky::new(6).panic_at(3);
    let (dropped, _) = inputs.probes();
    let (tx, rx) = mpsc::channel();
    let weak = Arc::downgrade(&pool);
    let once = Mutex::new(Some((inputs, tx)));
    pool.put_request(WorkRequest::new(|()| (), ()).on_result(move |_, ()| {
        let (inputs, tx) = once.lock().unwrap().take().unwrap();
        let pool = weak.upgrade().unwrap();
        pool.put_all(item_requests(inputs, tx)).unwrap();
    }))
    .unwrap();
    // The callback's panic passes through `wait`, as a callback's does.
    let caught = within_here("wait", || {
        panic::catch_unwind(AssertUnwindSafe(|| pool.wait())).unwrap_err()
    });
    assert!(message(&*caught).contains("next panicked at 3"));
    assert_eq!(within_wait(&pool), 3);
    assert_eq!(ran(&rx), [0, 1, 2]);
    assert_eq!(drops(&dropped), first(3, 6));
    assert_usable(&pool);
}

#[test]
fn windows_map_and_put_all_on_a_worker_whose_inputs_panic() {
    quiet();
    let pool = Arc::new(ThreadPool::new(2));
    let weak = Arc::downgrade(&pool);
    let (tx, rx) = mpsc::channel();
    let ticket = pool
        .submit(
            move |()| {
                let pool = weak.upgrade().unwrap();
                let mut out = Vec::new();
                // imap on a worker: the inputs' panic is caught, the rest come.
                let inputs = Flaky::new(5).panic_at(2);
                let (dropped, _) = inputs.probes();
                out.push(drain_catching(
                    pool.imap(inputs, 2, |i: Item| i.n),
                    1,
                    Result::unwrap,
                ));
                out.push(drops(&dropped));
                // map on a worker with a panicking iterator: passes through.
                let inputs = Flaky::new(5).panic_at(2);
                let (dropped, _) = inputs.probes();
                let caught =
                    panic::catch_unwind(AssertUnwindSafe(|| pool.map(inputs, |i: Item| i.n)));
                assert!(caught.is_err());
                out.push(drops(&dropped));
                // put_all on a worker: the two put run.
                let inputs = Flaky::new(5).panic_at(2);
                let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                    pool.put_all(item_requests(inputs, tx))
                }));
                assert!(caught.is_err());
                out
            },
            (),
        )
        .unwrap();
    let out = within_here("the worker's windows", || ticket.wait().unwrap());
    assert_eq!(out[0], [0, 1, 2, 3, 4]);
    assert_eq!(out[1], [1; 5]);
    assert_eq!(out[2], first(2, 5));
    assert_eq!(within_wait(&pool), 2);
    assert_eq!(ran(&rx), [0, 1]);
    assert_usable(&pool);
}

/// Whether this process is the child that runs test `name` (an abort
/// there fails the parent, which asserts that the child ran); in the
/// parent, runs that child and says `false`.
fn in_child(name: &str) -> bool {
    const CHILD: &str = "CALLPOOL_MISBEHAVING_INPUTS_CHILD";
    if common::is_child(name, CHILD) {
        return true;
    }
    common::run_in_child(name, CHILD);
    false
}

/// Hints no input can hold: the functions that gather a user's iterator
/// into a `Vec` must not presize it by them (an allocation that fails
/// aborts the process; one past `isize::MAX` panics).
const HUGE_HINTS: [(usize, Option<usize>); 5] = [
    (1 << 40, None),
    (usize::MAX, None),
    (1 << 40, Some(usize::MAX)),
    (usize::MAX, Some(usize::MAX)),
    (1 << 40, Some(1 << 40)),
];

#[test]
fn huge_lying_size_hints_neither_abort_nor_panic() {
    const NAME: &str = "huge_lying_size_hints_neither_abort_nor_panic";
    if !in_child(NAME) {
        return;
    }
    let pool = ThreadPool::new(2);
    for hint in HUGE_HINTS {
        let inputs = Flaky::new(5).hint(hint);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let requests = requests_of(inputs, tx);
        run_all_once(&pool, requests, &rx, 5);
        assert_eq!(drops(&dropped), [1; 5], "make_requests, hint {hint:?}");

        let inputs = Flaky::new(5).hint(hint);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let requests = make_requests_with_input(
            |i: &Item| i.n,
            inputs,
            move |_, _, n| tx.lock().unwrap().send(n).unwrap(),
            |_, _, e| panic!("{e}"),
        );
        run_all_once(&pool, requests, &rx, 5);
        assert_eq!(
            drops(&dropped),
            [1; 5],
            "make_requests_with_input, hint {hint:?}"
        );

        let inputs = Flaky::new(5).hint(hint);
        let (dropped, _) = inputs.probes();
        let (tx, rx) = mpsc::channel();
        let batch = pool.put_batch(item_requests(inputs, tx)).unwrap();
        assert_eq!(within_wait(&pool), 5);
        assert_eq!(batch.progress().done, 5);
        assert_eq!(ran(&rx), [0, 1, 2, 3, 4]);
        assert_eq!(drops(&dropped), [1; 5], "put_batch, hint {hint:?}");

        let inputs = Flaky::new(5).hint(hint);
        let (dropped, _) = inputs.probes();
        let outcomes: Vec<usize> = pool
            .map(inputs, |i: Item| i.n)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(outcomes, [0, 1, 2, 3, 4], "map, hint {hint:?}");
        assert_eq!(drops(&dropped), [1; 5]);
    }
    assert_usable(&pool);
    common::child_ran(NAME);
}

/// Looks with `try_next` until the end, catching the inputs' panics
/// (exactly `panics` of them); gives each outcome's number.
fn look_catching<T>(
    mut look: impl FnMut() -> std::task::Poll<Option<T>>,
    panics: usize,
    n_of: impl Fn(T) -> usize,
) -> Vec<usize> {
    use std::task::Poll;
    let mut seen = Vec::new();
    let mut caught = 0;
    loop {
        match panic::catch_unwind(AssertUnwindSafe(&mut look)) {
            Ok(Poll::Ready(Some(item))) => seen.push(n_of(item)),
            Ok(Poll::Ready(None)) => break,
            Ok(Poll::Pending) => std::thread::yield_now(),
            Err(payload) => caught_boom(&*payload, &mut caught, panics),
        }
    }
    assert_eq!(caught, panics);
    seen
}

#[test]
fn try_next_goes_on_after_its_inputs_panic_and_loses_nothing() {
    quiet();
    let pool = ThreadPool::new(2);
    for limit in [0, 1, 3] {
        for panic_at in [0, 2, 7] {
            let inputs = Flaky::new(8).panic_at(panic_at);
            let (dropped, _) = inputs.probes();
            let mut window = pool.imap(inputs, limit, |i: Item| i.n);
            let seen = within_here("imap try_next", || {
                look_catching(|| window.try_next(), 1, Result::unwrap)
            });
            drop(window);
            assert_eq!(
                seen,
                (0..8).collect::<Vec<_>>(),
                "imap, limit {limit}, panic at {panic_at}"
            );
            assert_eq!(drops(&dropped), [1; 8]);

            let inputs = Flaky::new(8).panic_at(panic_at);
            let (dropped, _) = inputs.probes();
            let mut window = pool.as_completed(inputs, limit, |i: &Item| i.n);
            let mut seen = within_here("as_completed try_next", || {
                look_catching(
                    || window.try_next(),
                    1,
                    |(item, out)| {
                        assert_eq!(out.unwrap(), item.n);
                        item.n
                    },
                )
            });
            drop(window);
            seen.sort();
            assert_eq!(
                seen,
                (0..8).collect::<Vec<_>>(),
                "as_completed, limit {limit}, panic at {panic_at}"
            );
            assert_eq!(drops(&dropped), [1; 8]);
            assert_usable(&pool);
        }
    }
}

#[test]
fn a_bounded_queue_window_whose_inputs_panic_while_puts_wait_for_room() {
    quiet();
    // One worker, room for one queued request: puts of a wide window wait.
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    for panic_at in [1, 3, 6] {
        let inputs = Flaky::new(8).panic_at(panic_at);
        let (dropped, _) = inputs.probes();
        let seen = within_here("imap", || {
            drain_catching(pool.imap(inputs, 8, |i: Item| i.n), 1, Result::unwrap)
        });
        assert_eq!(seen, (0..8).collect::<Vec<_>>(), "panic at {panic_at}");
        assert_eq!(drops(&dropped), [1; 8]);
        let inputs = Flaky::new(8).panic_at(panic_at);
        let (dropped, _) = inputs.probes();
        let mut seen = within_here("as_completed", || {
            drain_catching(
                pool.as_completed(inputs, 8, |i: &Item| i.n),
                1,
                |(i, out)| {
                    assert_eq!(out.unwrap(), i.n);
                    i.n
                },
            )
        });
        seen.sort();
        assert_eq!(seen, (0..8).collect::<Vec<_>>(), "panic at {panic_at}");
        assert_eq!(drops(&dropped), [1; 8]);
        assert_usable(&pool);
    }
}

/// Panics when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{BOOM}bomb");
    }
}

/// Inputs whose drop panics, from an iterator that panics at input 3.
fn bombs(
    hint: (usize, Option<usize>),
) -> (impl Iterator<Item = (Item, Bomb)>, Arc<Vec<AtomicUsize>>) {
    let inputs = Flaky::new(6).panic_at(3).hint(hint);
    let (dropped, _) = inputs.probes();
    (inputs.map(|i| (i, Bomb)), dropped)
}

/// What the docs promise for a panic from the inputs: it passes through
/// (not an abort), and what was pulled is dropped once.
fn assert_passes(what: &str, f: impl FnOnce(), dropped: &[AtomicUsize]) {
    let caught = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_err();
    assert!(
        message(&*caught).contains("next panicked at 3"),
        "{what}: {}",
        message(&*caught)
    );
    assert_eq!(drops(dropped), first(3, 6), "{what}");
}

#[test]
fn an_iterator_panicking_after_inputs_whose_drop_panics_does_not_abort() {
    const NAME: &str = "an_iterator_panicking_after_inputs_whose_drop_panics_does_not_abort";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let pool = ThreadPool::new(2);
    for hint in [(6, Some(6)), (0, None)] {
        let (inputs, dropped) = bombs(hint);
        let f = || {
            drop(make_requests(
                |(i, _b): (Item, Bomb)| i.n,
                inputs,
                |_, _| {},
                |_, _| {},
            ))
        };
        assert_passes("make_requests", f, &dropped);

        let (inputs, dropped) = bombs(hint);
        let f = || {
            drop(make_requests_with_input(
                |(i, _b): &(Item, Bomb)| i.n,
                inputs,
                |_, _, _| {},
                |_, _, _| {},
            ))
        };
        assert_passes("make_requests_with_input", f, &dropped);

        let (inputs, dropped) = bombs(hint);
        let requests = inputs.map(|input| WorkRequest::new(|(i, _b): (Item, Bomb)| i.n, input));
        assert_passes("put_batch", || drop(pool.put_batch(requests)), &dropped);

        let (inputs, dropped) = bombs(hint);
        assert_passes(
            "map",
            || drop(pool.map(inputs, |(i, _b): (Item, Bomb)| i.n)),
            &dropped,
        );
    }
    assert_usable(&pool);
    common::child_ran(NAME);
}
