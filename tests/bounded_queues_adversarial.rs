//! Adversarial trial: pools whose request queue *and* result queues are
//! bounded (capacities 1-2), with several handles (clones and new handles)
//! on one pool, several threads polling and waiting on one handle at once,
//! callbacks that put (every blocking form, `try_put_request`,
//! `put_request_timeout`, `put_batch`) onto full queues of their own
//! handle or of another, callbacks that wait or poll on another handle,
//! tickets, windows and `map` waited for inside callbacks, collectors,
//! scopes and as-completed windows read on threads that also put,
//! autoscaling pools growing and retiring under that load, `resize`,
//! `dismiss_workers` and joins of dismissed workers while threads are
//! blocked in puts and waits, and `shutdown` / `shutdown_now` / `close`
//! from another thread or from a callback while threads are blocked.
//!
//! Each scenario keeps a ledger: every request ends exactly once, in
//! exactly one way (its result callback, its error callback, or handed
//! back to the caller), its callable runs only on a worker and at most
//! once, and its callbacks run only on a thread that handles its handle's
//! results (polls or waits on it, or is blocked on it in a put or a
//! lookout, as the docs list). Timing never decides a pass: a round that
//! hangs is turned into a failure by `common::within_progress`. Where a
//! scenario would meet a deadlock the docs name as the user's own (a
//! thread waiting on one handle while workers wait on another's full
//! result queue that only it polls), the round is built to avoid it and
//! says so; `BQ_SCALE=n` multiplies the rounds for long local runs.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use callpool::{
    PollError, PutError, ShutdownError, TaskError, ThreadPool, WaitError, WeakPool, WorkRequest,
};
use common::Rng;

/// The worker threads' name prefix: a callable must run on a thread named so.
const WORKER: &str = "bq-worker";

/// How each request of a scenario ended, and where its code ran.
struct Ledger {
    /// Times the callable ran.
    ran: Vec<AtomicUsize>,
    /// Times the result callback (or a ticket's `Ok`) was heard.
    ok: Vec<AtomicUsize>,
    /// Times `TaskError::Cancelled` was heard.
    cancelled: Vec<AtomicUsize>,
    /// Any other error heard (none is expected here).
    other: Vec<AtomicUsize>,
    /// Times it was handed back to the test and not put again.
    back: Vec<AtomicUsize>,
    /// Request id (value) to index, for error callbacks and hand-backs.
    ids: Mutex<HashMap<u64, usize>>,
    /// The threads allowed to run callbacks.
    pollers: Mutex<HashSet<ThreadId>>,
    /// Callbacks run off the pollers, callables run off the workers.
    stray: Mutex<Vec<String>>,
    /// Batches put, and batch-done callbacks heard.
    batches_put: AtomicUsize,
    other_done: AtomicUsize,
}

impl Ledger {
    fn new(n: usize) -> Arc<Ledger> {
        let zeros = || (0..n).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Ledger {
            ran: zeros(),
            ok: zeros(),
            cancelled: zeros(),
            other: zeros(),
            back: zeros(),
            ids: Mutex::new(HashMap::new()),
            pollers: Mutex::new(HashSet::new()),
            stray: Mutex::new(Vec::new()),
            batches_put: AtomicUsize::new(0),
            other_done: AtomicUsize::new(0),
        })
    }

    fn len(&self) -> usize {
        self.ran.len()
    }

    /// The current thread may run this scenario's callbacks.
    fn poller(&self) {
        self.pollers.lock().unwrap().insert(thread::current().id());
    }

    fn on_poller(&self, what: &str, i: usize) {
        if !self
            .pollers
            .lock()
            .unwrap()
            .contains(&thread::current().id())
        {
            let name = thread::current().name().map(str::to_owned);
            self.stray
                .lock()
                .unwrap()
                .push(format!("{what} of {i} on {name:?}"));
        }
    }

    fn ran_on_worker(&self, i: usize) {
        self.ran[i].fetch_add(1, Ordering::SeqCst);
        let name = thread::current().name().unwrap_or("").to_owned();
        if !name.starts_with(WORKER) {
            self.stray
                .lock()
                .unwrap()
                .push(format!("callable of {i} on {name:?}"));
        }
    }

    fn error(&self, i: usize, e: &TaskError) {
        match e {
            TaskError::Cancelled => self.cancelled[i].fetch_add(1, Ordering::SeqCst),
            _ => self.other[i].fetch_add(1, Ordering::SeqCst),
        };
    }

    /// Request `i`: its callable runs `work` (on a worker), its result
    /// callback runs `then` (on a poller) after counting.
    fn request_then(
        self: &Arc<Self>,
        i: usize,
        work: impl FnOnce() + Send + 'static,
        then: impl FnOnce(usize) + Send + 'static,
    ) -> WorkRequest {
        let (a, b, c) = (Arc::clone(self), Arc::clone(self), Arc::clone(self));
        let request: WorkRequest = WorkRequest::new(
            move |i: usize| {
                a.ran_on_worker(i);
                work();
                i
            },
            i,
        )
        .on_result(move |_, i| {
            b.on_poller("result callback", i);
            b.ok[i].fetch_add(1, Ordering::SeqCst);
            then(i);
        })
        .on_error(move |id, e| {
            let i = c.index(id.value());
            c.on_poller("error callback", i);
            c.error(i, &e);
        })
        .into();
        self.ids.lock().unwrap().insert(request.id().value(), i);
        request
    }

    fn request(self: &Arc<Self>, i: usize) -> WorkRequest {
        self.request_then(i, || {}, |_| {})
    }

    fn index(&self, id: u64) -> usize {
        self.ids.lock().unwrap()[&id]
    }

    /// A request handed back for good.
    fn handed_back(&self, request: WorkRequest) {
        let i = self.index(request.id().value());
        self.back[i].fetch_add(1, Ordering::SeqCst);
    }

    /// A ticket's outcome for request `i`.
    fn ticket<T>(&self, i: usize, outcome: Result<T, TaskError>) {
        match outcome {
            Ok(_) => self.ok[i].fetch_add(1, Ordering::SeqCst),
            Err(e) => {
                self.error(i, &e);
                0
            }
        };
    }

    /// Every request ended exactly once, in exactly one way; a request
    /// ran exactly when it was heard `Ok`; all code ran where it should.
    fn check(&self, what: &str) {
        let mut bad = Vec::new();
        for i in 0..self.len() {
            let get = |v: &Vec<AtomicUsize>| v[i].load(Ordering::SeqCst);
            let (ran, ok, cancelled, other, back) = (
                get(&self.ran),
                get(&self.ok),
                get(&self.cancelled),
                get(&self.other),
                get(&self.back),
            );
            if ok + cancelled + other + back != 1 || ran != ok || other != 0 {
                bad.push((i, ran, ok, cancelled, other, back));
            }
        }
        assert!(
            bad.is_empty(),
            "{what}: requests not ended exactly once, (i, ran, ok, cancelled, other, back): {bad:?}"
        );
        let stray = self.stray.lock().unwrap();
        assert!(
            stray.is_empty(),
            "{what}: code ran on the wrong thread: {stray:?}"
        );
    }

    fn count(&self, of: &[AtomicUsize]) -> usize {
        of.iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }
}

/// A pool of `workers` whose request queue holds `queue` and each result
/// queue `results`.
fn bounded(workers: usize, queue: usize, results: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .queue_capacity(queue)
        .result_capacity(results)
        .thread_name(WORKER)
        .build()
        .unwrap()
}

/// A pool of one or two workers whose request and result queues hold one
/// or two each, drawn from `rng`.
fn small_bounded(rng: &mut Rng) -> ThreadPool {
    bounded(
        1 + rng.below(2) as usize,
        1 + rng.below(2) as usize,
        1 + rng.below(2) as usize,
    )
}

/// A second thread polling `pool`'s clone for the ledger until `put_all`
/// is set and nothing is pending.
fn waiter_until_done(
    pool: &ThreadPool,
    ledger: &Arc<Ledger>,
    put_all: &Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let (pool, ledger, put_all) = (pool.clone(), Arc::clone(ledger), Arc::clone(put_all));
    thread::spawn(move || {
        ledger.poller();
        wait_until_done(&pool, &put_all);
    })
}

/// Waits on `pool` (a clone of the scenario's handle) until `done` is set
/// and nothing is pending, treating `NoWorkersAvailable` as "not yet".
fn wait_until_done(pool: &ThreadPool, done: &AtomicBool) {
    wait_until(pool, || done.load(Ordering::SeqCst));
}

/// Waits on `pool` until `finished()` held before a wait that found
/// nothing pending. (`wait` may return while a callback runs on another
/// thread, whose puts are pending again afterwards: the docs say so.)
fn wait_until(pool: &ThreadPool, finished: impl Fn() -> bool) {
    loop {
        let finished = finished();
        match pool.wait() {
            Ok(_) => {}
            Err(WaitError::NoWorkersAvailable { .. }) => thread::yield_now(),
            Err(e) => panic!("wait: {e:?}"),
        }
        if finished && pool.pending() == 0 {
            return;
        }
        thread::yield_now();
    }
}

/// Spawns a thread named `name` (so a stray callback says where it ran).
fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap()
}

/// Runs `round` for each of `rounds` rounds; fails if a round hangs (no
/// round ends for `common::HANG`), however long all of them take.
fn trial(what: &str, rounds: usize, mut round: impl FnMut(usize) + Send + 'static) {
    let ended = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ended);
    common::within_progress(
        what,
        move || ended.load(Ordering::SeqCst),
        move || {
            for r in 0..rounds {
                round(r);
                counted.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
}

/// How many times to repeat a racy scenario: `n`, times `BQ_SCALE` if set
/// (for long local runs).
fn rounds(n: usize) -> usize {
    let scale = std::env::var("BQ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    n * scale
}

// ---------------------------------------------------------------------------
// Several threads putting and polling one handle.
// ---------------------------------------------------------------------------

/// Three threads put on clones of one handle, one with `put_request`, one
/// with `put_request_timeout` (a refusal put again), one with
/// `try_put_request` and a `poll` when full (every other round, all three
/// with `put_request`); two more wait on clones. Both
/// queues hold one or two, so the putters must make room for the workers.
#[test]
fn three_putters_and_two_waiters_on_clones_of_one_bounded_handle() {
    let mut rng = Rng(0xb0_0111);
    trial("three putters, two waiters", rounds(20), move |round| {
        let pool = small_bounded(&mut rng);
        let per = 20;
        let ledger = Ledger::new(3 * per);
        let done = Arc::new(AtomicUsize::new(0));
        let putters: Vec<_> = (0..3)
            .map(|how| {
                let (pool, ledger, done) = (pool.clone(), Arc::clone(&ledger), Arc::clone(&done));
                thread::spawn(move || {
                    ledger.poller();
                    for k in 0..per {
                        let mut request = ledger.request(how * per + k);
                        loop {
                            // Every other round all three block: no timed
                            // retry or poll there to rescue a lost wake-up.
                            let put = match if round % 2 == 0 { 0 } else { how } {
                                0 => pool.put_request(request),
                                1 => pool.put_request_timeout(request, Duration::from_micros(50)),
                                _ => pool.try_put_request(request),
                            };
                            match put {
                                Ok(_) => break,
                                Err(PutError::Timeout(r)) => request = r,
                                Err(PutError::Full(r)) => {
                                    let _ = pool.poll();
                                    request = r;
                                }
                                Err(e) => panic!("put: {e:?}"),
                            }
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let all_put = Arc::new(AtomicBool::new(false));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (pool, ledger, all_put) =
                    (pool.clone(), Arc::clone(&ledger), Arc::clone(&all_put));
                thread::spawn(move || {
                    ledger.poller();
                    wait_until_done(&pool, &all_put);
                })
            })
            .collect();
        for p in putters {
            p.join().unwrap();
        }
        all_put.store(true, Ordering::SeqCst);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert_eq!(pool.pending(), 0, "round {round}");
        ledger.check(&format!("round {round}"));
    });
}

/// Puts `request` on `pool` the `how`-th way (0: `put_request`, 1:
/// `put_request_timeout`, put again at each timeout, 2: `try_put_request`,
/// with a `poll` of the same handle at each refusal, which inside a
/// callback is a nested poll). Any other refusal is the caller's.
fn put_somehow(pool: &ThreadPool, how: usize, mut request: WorkRequest) -> Result<(), PutError> {
    loop {
        let put = match how % 3 {
            0 => pool.put_request(request),
            1 => pool.put_request_timeout(request, Duration::from_micros(20)),
            _ => pool.try_put_request(request),
        };
        match put {
            Ok(_) => return Ok(()),
            Err(PutError::Timeout(r)) => request = r,
            Err(PutError::Full(r)) => {
                match pool.poll() {
                    Ok(_) | Err(PollError::NoResultsPending) => {}
                    Err(e) => panic!("poll: {e:?}"),
                }
                request = r;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A tree of requests whose result callbacks put two children each onto
/// their own handle with both queues full: every third way blocking,
/// timed or refused-and-polled (every other round, all blocking), some as
/// a batch of two, some followed by a nested `wait`; while two or three
/// threads wait on clones of the handle (any of them may be the one
/// running a callback that blocks); on a fixed pool, and on an
/// autoscaling one.
#[test]
fn callbacks_put_children_onto_their_own_full_queues_under_several_waiters() {
    let mut rng = Rng(0xb0_0112);
    trial(
        "callbacks putting onto full queues",
        rounds(20),
        move |round| {
            let (queue, results) = (1 + rng.below(2) as usize, 1 + rng.below(2) as usize);
            let pool = if round % 4 < 2 {
                bounded(1 + rng.below(2) as usize, queue, results)
            } else {
                // Autoscaling, retiring its workers between bursts.
                ThreadPool::builder()
                    .min_workers(0)
                    .max_workers(2)
                    .keep_alive(Duration::from_micros(50))
                    .queue_capacity(queue)
                    .result_capacity(results)
                    .thread_name(WORKER)
                    .build()
                    .unwrap()
            };
            let (roots, depth) = (2, 4);
            let total = roots * ((1 << (depth + 1)) - 1);
            let ledger = Ledger::new(total);
            let next = Arc::new(AtomicUsize::new(roots));
            fn node(
                ledger: &Arc<Ledger>,
                pool: WeakPool,
                next: &Arc<AtomicUsize>,
                i: usize,
                depth: u32,
                mixed: bool,
            ) -> WorkRequest {
                let (l, n) = (Arc::clone(ledger), Arc::clone(next));
                ledger.request_then(
                    i,
                    || {},
                    move |i| {
                        if depth == 0 {
                            return;
                        }
                        let Some(handle) = pool.upgrade() else { return };
                        let child = || {
                            let c = n.fetch_add(1, Ordering::SeqCst);
                            (c, node(&l, pool.clone(), &n, c, depth - 1, mixed))
                        };
                        if i % 4 == 3 {
                            // Both children as one batch (blocking member by
                            // member, holding the rest), its end counted.
                            let batch = handle
                                .put_batch([child().1, child().1])
                                .expect("a batch of children");
                            l.batches_put.fetch_add(1, Ordering::SeqCst);
                            let (l, total) = (Arc::clone(&l), batch.progress().total);
                            assert_eq!(total, 2);
                            batch.on_done(move |p| {
                                assert_eq!((p.total, p.done), (2, 2));
                                l.other_done.fetch_add(1, Ordering::SeqCst);
                            });
                            return;
                        }
                        for _ in 0..2 {
                            let (c, request) = child();
                            // Every other round only blocking puts, which
                            // no timed retry or poll rescues.
                            let how = if mixed { i + c } else { 0 };
                            put_somehow(&handle, how, request).expect("a child's put");
                        }
                        if i % 5 == 4 {
                            // A nested wait: for everything but what the
                            // frames below callbacks hold, on any thread.
                            match handle.wait() {
                                Ok(_) | Err(WaitError::HeldByCaller { .. }) => {}
                                Err(e) => panic!("a nested wait: {e:?}"),
                            }
                        }
                    },
                )
            }
            let waiters: Vec<_> = (0..1 + rng.below(2))
                .map(|_| {
                    let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
                    thread::spawn(move || {
                        ledger.poller();
                        let all = ledger.len();
                        wait_until(&pool, || ledger.count(&ledger.ok) == all);
                    })
                })
                .collect();
            ledger.poller();
            for r in 0..roots {
                let root = node(&ledger, pool.downgrade(), &next, r, depth, round % 2 == 1);
                put_somehow(&pool, r, root).unwrap();
            }
            wait_until(&pool, || ledger.count(&ledger.ok) == total);
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(next.load(Ordering::SeqCst), total);
            ledger.check(&format!("round {round}"));
            // Each batch's end was heard once.
            let batches = ledger.batches_put.load(Ordering::SeqCst);
            assert!(batches > 0);
            assert_eq!(
                ledger.other_done.load(Ordering::SeqCst),
                batches,
                "round {round}"
            );
        },
    );
}

// ---------------------------------------------------------------------------
// Tickets, collectors and windows beside puts on a bounded handle.
// ---------------------------------------------------------------------------

/// Result callbacks submit a ticket on their own handle (a blocking
/// submit on a full queue) and wait for it, or read an as-completed
/// window or a `map` (each a lookout: it makes room for workers stuck on
/// the full result queue), while two threads wait on clones of that
/// handle and a third puts on it.
#[test]
fn tickets_waited_for_inside_callbacks_while_others_wait_and_put() {
    let mut rng = Rng(0xb0_0113);
    trial("tickets inside callbacks", rounds(60), move |round| {
        let pool = small_bounded(&mut rng);
        let n = 24;
        // Requests 0..n, and their tickets n..2n.
        let ledger = Ledger::new(2 * n);
        let put_all = Arc::new(AtomicBool::new(false));
        let request = |i: usize| {
            let (l, weak) = (Arc::clone(&ledger), pool.downgrade());
            ledger.request_then(
                i,
                || {},
                move |i| {
                    let handle = weak.upgrade().expect("the pool lives");
                    let l2 = Arc::clone(&l);
                    let f = move |t: usize| {
                        l2.ran_on_worker(t);
                        t
                    };
                    // A ticket's wait, an as-completed window's, or `map`'s:
                    // each a lookout for this handle.
                    match i % 3 {
                        0 => {
                            let ticket = handle.submit(f, n + i).expect("a ticket's submit");
                            l.ticket(n + i, ticket.wait());
                        }
                        1 => {
                            let window = handle.as_completed([n + i], 1, move |&t: &usize| f(t));
                            for (t, outcome) in window {
                                l.ticket(t, outcome);
                            }
                        }
                        _ => {
                            for outcome in handle.map([n + i], f) {
                                l.ticket(n + i, outcome);
                            }
                        }
                    }
                },
            )
        };
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (pool, ledger, put_all) =
                    (pool.clone(), Arc::clone(&ledger), Arc::clone(&put_all));
                thread::spawn(move || {
                    ledger.poller();
                    wait_until_done(&pool, &put_all);
                })
            })
            .collect();
        let putter = {
            let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
            let requests: Vec<_> = (n / 2..n).map(request).collect();
            thread::spawn(move || {
                ledger.poller();
                for r in requests {
                    pool.put_request(r).unwrap();
                }
            })
        };
        ledger.poller();
        for i in 0..n / 2 {
            pool.put_request(request(i)).unwrap();
        }
        putter.join().unwrap();
        put_all.store(true, Ordering::SeqCst);
        wait_until_done(&pool, &put_all);
        for w in waiters {
            w.join().unwrap();
        }
        ledger.check(&format!("round {round}"));
    });
}

/// One thread reads a collector while it also puts plain requests on the
/// same handle (blocking, both queues full), some of them from the
/// collector's own callbacks; another waits on a clone.
/// The collector's callbacks stay on its thread; the plain requests'
/// callbacks run on either thread, never on a worker.
#[test]
fn a_collector_read_on_a_thread_that_also_puts() {
    let mut rng = Rng(0xb0_0114);
    trial("collector and puts", rounds(60), move |round| {
        let pool = small_bounded(&mut rng);
        let n = 16;
        // Plain requests 0..n, collector requests n..2n, plain requests
        // put by the collector's callbacks 2n..2n + n/2.
        let ledger = Ledger::new(2 * n + n / 2);
        let put_all = Arc::new(AtomicBool::new(false));
        let waiter = waiter_until_done(&pool, &ledger, &put_all);
        ledger.poller();
        let me = thread::current().id();
        let mut ids = HashMap::new();
        let mut collector = pool.collector::<usize>();
        for k in 0..n {
            let l = Arc::clone(&ledger);
            let f = move |i: usize| {
                l.ran_on_worker(i);
                i
            };
            if k % 2 == 0 {
                let id = collector.put(f, n + k).unwrap();
                ids.insert(id, n + k);
            } else {
                // Its callback (on this thread) puts a plain request,
                // blocking on the full queue.
                let (ledger, pool) = (&ledger, &pool);
                collector
                    .put_then(f, n + k, move |outcome| {
                        assert_eq!(thread::current().id(), me);
                        ledger.ticket(n + k, outcome);
                        pool.put_request(ledger.request(2 * n + k / 2)).unwrap();
                    })
                    .unwrap();
            }
            pool.put_request(ledger.request(k)).unwrap();
            if rng.chance(30) {
                collector.poll_with(|id, outcome| {
                    assert_eq!(thread::current().id(), me);
                    ledger.ticket(ids[&id], outcome);
                });
            }
        }
        collector.wait_with(|id, outcome| {
            assert_eq!(thread::current().id(), me);
            ledger.ticket(ids[&id], outcome);
        });
        drop(collector);
        put_all.store(true, Ordering::SeqCst);
        wait_until_done(&pool, &put_all);
        waiter.join().unwrap();
        ledger.check(&format!("round {round}"));
    });
}

/// An as-completed window and an `imap` read on a thread that puts a
/// plain request (blocking, both queues full) for each outcome it reads;
/// another thread waits on a clone.
#[test]
fn windows_read_on_a_thread_that_puts_for_each_outcome() {
    let mut rng = Rng(0xb0_0115);
    trial("windows and puts", rounds(60), move |round| {
        let pool = small_bounded(&mut rng);
        let n = 12;
        // Plain requests 0..2n; window inputs 2n..3n, imap's 3n..4n.
        let ledger = Ledger::new(4 * n);
        let put_all = Arc::new(AtomicBool::new(false));
        let waiter = waiter_until_done(&pool, &ledger, &put_all);
        ledger.poller();
        let limit = 1 + rng.below(3) as usize;
        let l = Arc::clone(&ledger);
        let mut k = 0;
        for (input, outcome) in pool.as_completed(2 * n..3 * n, limit, move |&i: &usize| {
            l.ran_on_worker(i);
            i
        }) {
            ledger.ticket(input, outcome);
            pool.put_request(ledger.request(k)).unwrap();
            k += 1;
        }
        let l = Arc::clone(&ledger);
        let inputs = 3 * n..4 * n;
        for (input, outcome) in inputs
            .clone()
            .zip(pool.imap(inputs, limit, move |i: usize| {
                l.ran_on_worker(i);
                i
            }))
        {
            ledger.ticket(input, outcome);
            pool.put_request(ledger.request(k)).unwrap();
            k += 1;
        }
        assert_eq!(k, 2 * n);
        put_all.store(true, Ordering::SeqCst);
        wait_until_done(&pool, &put_all);
        waiter.join().unwrap();
        ledger.check(&format!("round {round}"));
    });
}

// ---------------------------------------------------------------------------
// Workers dismissed, resized and scaled while threads are blocked.
// ---------------------------------------------------------------------------

/// Puts `request` with `put_request`, putting it again after each
/// `NoWorkers` (a pool resized to 0 comes back).
fn put_until_workers_come_back(pool: &ThreadPool, mut request: WorkRequest) {
    loop {
        match pool.put_request(request) {
            Ok(_) => return,
            Err(PutError::NoWorkers(r)) => {
                request = r;
                thread::yield_now();
            }
            Err(e) => panic!("put: {e:?}"),
        }
    }
}

/// While a putter blocks on the full request queue, two threads wait on
/// clones, a fourth waits on tickets in turn, a fifth reads a collector
/// and a sixth an as-completed window, another thread resizes
/// the pool to 0 and back (or dismisses every worker and creates them
/// again, at times joining the dismissed ones through A or through a new
/// handle) over and over. Puts refused `NoWorkers` are put again; waits
/// told `NoWorkersAvailable` wait again; every request still ends once.
#[test]
fn resizes_to_zero_and_back_while_threads_block_in_puts_and_waits() {
    let mut rng = Rng(0xb0_0116);
    trial("resizes under blocked threads", rounds(100), move |round| {
        let workers = 1 + rng.below(2) as usize;
        let pool = bounded(
            workers,
            1 + rng.below(2) as usize,
            1 + rng.below(2) as usize,
        );
        let n = 24;
        // Plain requests 0..n, tickets n..n + n/2, a collector's the next
        // n/2, a window's inputs the last n/2.
        let ledger = Ledger::new(n + 3 * (n / 2));
        let put_all = Arc::new(AtomicBool::new(false));
        let collector = {
            let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
            spawn("collector", move || {
                // A lookout: it runs the handle's callbacks when a worker
                // is stuck on its full result queue.
                ledger.poller();
                let mut collector = pool.collector::<usize>();
                let mut ids = HashMap::new();
                for i in n + n / 2..2 * n {
                    let l = Arc::clone(&ledger);
                    let mut work = Some(move |i: usize| {
                        l.ran_on_worker(i);
                        i
                    });
                    let id = loop {
                        match collector.try_put(work.take().unwrap(), i) {
                            Ok(id) => break id,
                            Err(refused) => {
                                assert!(refused.is_full() || refused.is_no_workers());
                                work = Some(refused.into_parts().0);
                                // Outcomes arrived meanwhile: here, not on
                                // the handle's pollers.
                                collector.poll_with(|id, outcome| ledger.ticket(ids[&id], outcome));
                                thread::yield_now();
                            }
                        }
                    };
                    ids.insert(id, i);
                }
                collector.wait_with(|id, outcome| ledger.ticket(ids[&id], outcome));
            })
        };
        // A window: under a pool resized to 0 it may end early, at the
        // first input a full queue with no worker refuses, which comes
        // back `Cancelled` (its docs); the inputs after it are never pulled.
        let window = {
            let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
            spawn("window", move || {
                ledger.poller(); // a lookout too
                let pulled = Arc::new(AtomicUsize::new(0));
                let (l, p) = (Arc::clone(&ledger), Arc::clone(&pulled));
                let inputs = (2 * n..2 * n + n / 2).inspect(move |_| {
                    p.fetch_add(1, Ordering::SeqCst);
                });
                for (input, outcome) in pool.as_completed(inputs, 2, move |&i: &usize| {
                    l.ran_on_worker(i);
                    i
                }) {
                    ledger.ticket(input, outcome);
                }
                // Never pulled: handed back, as it were.
                for i in 2 * n + pulled.load(Ordering::SeqCst)..2 * n + n / 2 {
                    ledger.back[i].fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (pool, ledger, put_all) =
                    (pool.clone(), Arc::clone(&ledger), Arc::clone(&put_all));
                thread::spawn(move || {
                    ledger.poller();
                    wait_until_done(&pool, &put_all);
                })
            })
            .collect();
        let tickets = {
            let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
            thread::spawn(move || {
                ledger.poller();
                for t in n..n + n / 2 {
                    let l = Arc::clone(&ledger);
                    let mut work = Some(move |t: usize| {
                        l.ran_on_worker(t);
                        t
                    });
                    let ticket = loop {
                        match pool.try_submit(work.take().unwrap(), t) {
                            Ok(ticket) => break ticket,
                            Err(refused) => {
                                assert!(refused.is_full() || refused.is_no_workers());
                                work = Some(refused.into_parts().0);
                                let _ = pool.poll();
                                thread::yield_now();
                            }
                        }
                    };
                    ledger.ticket(t, ticket.wait());
                }
            })
        };
        let stop = Arc::new(AtomicBool::new(false));
        let resizer = {
            let (pool, stop, ledger) = (pool.clone(), Arc::clone(&stop), Arc::clone(&ledger));
            let other = pool.new_handle();
            let mut rng = Rng(rng.next() | 1);
            spawn("resizer", move || {
                // A join through A runs A's callbacks while a dismissed
                // worker is stuck on A's full result queue.
                ledger.poller();
                while !stop.load(Ordering::SeqCst) {
                    if rng.chance(50) {
                        pool.resize(0).unwrap();
                    } else {
                        pool.dismiss_workers(workers);
                    }
                    match rng.below(4) {
                        0 => drop(pool.join_all_dismissed_workers()),
                        // Through B, which has no results: it waits for
                        // A's waiters to make room.
                        1 => drop(other.join_all_dismissed_workers()),
                        _ => {}
                    }
                    for _ in 0..rng.below(20) {
                        thread::yield_now();
                    }
                    if rng.chance(50) {
                        pool.resize(workers).unwrap();
                    } else {
                        pool.create_workers(workers).unwrap();
                    }
                    for _ in 0..rng.below(50) {
                        thread::yield_now();
                    }
                }
                pool.resize(workers).unwrap();
            })
        };
        ledger.poller();
        for i in 0..n {
            put_until_workers_come_back(&pool, ledger.request(i));
        }
        tickets.join().unwrap();
        collector.join().unwrap();
        window.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        resizer.join().unwrap();
        put_all.store(true, Ordering::SeqCst);
        wait_until_done(&pool, &put_all);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(pool.workers(), workers);
        ledger.check(&format!("round {round}"));
    });
}

/// An autoscaling pool (0 to 2 workers, a keep-alive of 100 µs) with both
/// queues bounded: putters block, waiters wait, a ticket is waited for,
/// the pool retires its workers between bursts and a third thread
/// dismisses every worker now and then. Its docs promise that a put and
/// a wait start a worker: no `NoWorkers`, no `NoWorkersAvailable`.
#[test]
fn an_autoscaling_pool_grows_and_retires_under_blocked_puts_and_waits() {
    let mut rng = Rng(0xb0_0117);
    trial("autoscaling under bounded load", rounds(40), move |round| {
        let pool = ThreadPool::builder()
            .min_workers(0)
            .max_workers(2)
            .keep_alive(Duration::from_micros(100))
            .queue_capacity(1 + rng.below(2) as usize)
            .result_capacity(1 + rng.below(2) as usize)
            .thread_name(WORKER)
            .build()
            .unwrap();
        let n = 24;
        // Plain requests 0..2n, tickets 2n..3n.
        let ledger = Ledger::new(3 * n);
        let stop = Arc::new(AtomicBool::new(false));
        let dismisser = {
            let (pool, stop) = (pool.clone(), Arc::clone(&stop));
            let mut rng = Rng(rng.next() | 1);
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if rng.chance(50) {
                        pool.dismiss_workers(2);
                    } else {
                        pool.resize(0).unwrap();
                    }
                    for _ in 0..rng.below(200) {
                        thread::yield_now();
                    }
                }
            })
        };
        let waiter_done = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (pool, ledger, done) =
                (pool.clone(), Arc::clone(&ledger), Arc::clone(&waiter_done));
            thread::spawn(move || {
                ledger.poller();
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    pool.wait().expect("an autoscaling pool's wait");
                    if finished && pool.pending() == 0 {
                        break;
                    }
                    thread::yield_now();
                }
            })
        };
        let putters: Vec<_> = (0..2)
            .map(|p| {
                let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
                let pause = rng.below(3);
                thread::spawn(move || {
                    ledger.poller();
                    for k in 0..n {
                        pool.put_request(ledger.request(p * n + k))
                            .expect("an autoscaling pool's put");
                        if k % 8 == 7 {
                            // Let the workers go idle and retire.
                            thread::sleep(Duration::from_micros(100 * pause));
                        }
                    }
                })
            })
            .collect();
        ledger.poller();
        for t in 2 * n..3 * n {
            let l = Arc::clone(&ledger);
            let ticket = pool
                .submit(
                    move |t: usize| {
                        l.ran_on_worker(t);
                        t
                    },
                    t,
                )
                .expect("an autoscaling pool's submit");
            ledger.ticket(t, ticket.wait());
        }
        for p in putters {
            p.join().unwrap();
        }
        waiter_done.store(true, Ordering::SeqCst);
        waiter.join().unwrap();
        stop.store(true, Ordering::SeqCst);
        dismisser.join().unwrap();
        pool.wait().expect("the last wait");
        ledger.check(&format!("round {round}"));
    });
}

// ---------------------------------------------------------------------------
// Shutdowns from another thread while threads are blocked.
// ---------------------------------------------------------------------------

/// What a shutdown scenario sets up: a pool of `workers` held on a gate,
/// its request queue full, and threads blocked on handle A: a put, a
/// wait, a ticket's wait and a collector's, and a put in the first held
/// request's callback. Indices: 0..workers the held requests, then the
/// queued ones (the ticket's last), then the collector's, the blocked
/// put's, the blocked batch's two and the callback's put.
struct Blocked {
    pool: ThreadPool,
    gate: Arc<common::one_way::Gate>,
    ledger: Arc<Ledger>,
    threads: Vec<thread::JoinHandle<()>>,
}

fn blocked_threads(rng: &mut Rng) -> Blocked {
    let workers = 1 + rng.below(2) as usize;
    let queue = 1 + rng.below(2) as usize;
    let pool = bounded(workers, queue, 1 + rng.below(2) as usize);
    let gate = Arc::new(common::one_way::Gate::default());
    // Held, queued (the last a ticket's), the collector's, the blocked
    // put's, the blocked batch's two, and one that the first held
    // request's callback puts (blocking, on whichever thread runs it).
    let ledger = Ledger::new(workers + queue + 5);
    ledger.poller();
    let mut threads = Vec::new();
    let in_callback = workers + queue + 4;
    for i in 0..workers {
        let g = Arc::clone(&gate);
        let (l, weak) = (Arc::clone(&ledger), pool.downgrade());
        let then = move |i| {
            let Some(pool) = weak.upgrade().filter(|_| i == 0) else {
                return;
            };
            match pool.put_request(l.request(in_callback)) {
                Ok(_) => {}
                Err(PutError::ShutDown(r)) => l.handed_back(r),
                Err(e) => panic!("a put in a callback: {e:?}"),
            }
        };
        pool.put_request(ledger.request_then(i, move || g.pass(), then))
            .unwrap();
    }
    common::until(|| pool.queued() == 0 && pool.stats().busy == workers);
    let (ticket_i, collector_i, put_i) =
        (workers + queue - 1, workers + queue, workers + queue + 1);
    // The queue: `queue - 1` plain requests and a ticket's.
    for i in workers..workers + queue - 1 {
        pool.put_request(ledger.request(i)).unwrap();
    }
    let l = Arc::clone(&ledger);
    let ticket = pool
        .submit(
            move |t: usize| {
                l.ran_on_worker(t);
                t
            },
            ticket_i,
        )
        .unwrap();
    assert_eq!(pool.queued(), queue);
    // A thread waits on the ticket: a lookout, which runs A's callbacks
    // whenever a worker is stuck on A's full result queue.
    let l = Arc::clone(&ledger);
    threads.push(spawn("ticket", move || {
        l.poller();
        l.ticket(ticket_i, ticket.wait());
    }));
    // A collector's put blocks on the full queue, then the collector waits.
    let (p, l) = (pool.clone(), Arc::clone(&ledger));
    threads.push(spawn("collector", move || {
        l.poller();
        let mut collector = p.collector::<usize>();
        let l2 = Arc::clone(&l);
        match collector.put(
            move |i: usize| {
                l2.ran_on_worker(i);
                i
            },
            collector_i,
        ) {
            Ok(_) => {
                collector.wait_with(|_, outcome| l.ticket(collector_i, outcome));
            }
            Err(PutError::ShutDown(r)) => {
                // Handed back: not the collector's any more (dropped, it
                // sends a `Cancelled` the collector does not count).
                drop(r);
                l.back[collector_i].fetch_add(1, Ordering::SeqCst);
                assert_eq!(collector.wait_with(|_, _| panic!("an outcome")), 0);
            }
            Err(e) => panic!("collector put: {e:?}"),
        }
    }));
    // A put blocks on the full queue.
    let (p, l) = (pool.clone(), Arc::clone(&ledger));
    threads.push(spawn("putter", move || {
        l.poller();
        match p.put_request(l.request(put_i)) {
            Ok(_) => {}
            Err(PutError::ShutDown(r)) => l.handed_back(r),
            Err(e) => panic!("blocked put: {e:?}"),
        }
    }));
    // A batch of two blocks on the full queue, holding its members.
    let (p, l) = (pool.clone(), Arc::clone(&ledger));
    threads.push(spawn("batch", move || {
        l.poller();
        let members = [l.request(put_i + 1), l.request(put_i + 2)];
        match p.put_batch(members) {
            Ok(_) => {}
            Err(callpool::BatchError::ShutDown(back)) => {
                for r in back {
                    l.handed_back(r);
                }
            }
            Err(e) => panic!("blocked batch: {e:?}"),
        }
    }));
    // Two threads wait on clones of A.
    for _ in 0..2 {
        let (p, l) = (pool.clone(), Arc::clone(&ledger));
        threads.push(spawn("waiter", move || {
            l.poller();
            match p.wait() {
                Ok(_) | Err(WaitError::NoWorkersAvailable { .. }) => {}
                Err(e) => panic!("wait: {e:?}"),
            }
        }));
    }
    Blocked {
        pool,
        gate,
        ledger,
        threads,
    }
}

/// `shutdown_now` through a clone of A, or through a new handle B, from a
/// thread of its own while A's threads are blocked in a put, two waits, a
/// ticket's wait and a collector's; the gate opens before or after it.
/// A's queued requests come back in the returned `Vec` (through A) or are
/// cancelled to their callbacks (through B); each request ends once.
#[test]
fn shutdown_now_from_another_thread_while_threads_block_in_puts_and_waits() {
    let mut rng = Rng(0xb0_0118);
    trial(
        "shutdown_now under blocked threads",
        rounds(100),
        move |round| {
            let Blocked {
                pool,
                gate,
                ledger,
                threads,
            } = blocked_threads(&mut rng);
            let through_clone = rng.chance(50);
            let open_first = rng.chance(30);
            let closer = if through_clone {
                pool.clone()
            } else {
                pool.new_handle()
            };
            for _ in 0..rng.below(100) {
                thread::yield_now();
            }
            if open_first {
                gate.open();
            }
            let l = Arc::clone(&ledger);
            let back = spawn("shutdown_now", move || {
                for r in closer.shutdown_now() {
                    l.handed_back(r);
                }
            });
            back.join().unwrap();
            gate.open();
            for t in threads {
                t.join().unwrap();
            }

            // What the waits left (they may have returned early, told
            // `NoWorkersAvailable` by a pool whose workers had all left).
            match pool.wait() {
                Ok(_) | Err(WaitError::NoWorkersAvailable { pending: 0 }) => {}
                Err(e) => panic!("round {round}: the last wait: {e:?}"),
            }
            assert_eq!(pool.pending(), 0, "round {round}");
            ledger.check(&format!("round {round}, through clone {through_clone}"));
        },
    );
}

/// A graceful `shutdown` (through a clone of A, which then handles A's
/// results too, or through a new handle B, which waits for A's threads to
/// poll) from a thread of its own while A's threads are blocked as above.
/// Everything queued still runs; the blocked put is refused or lands
/// before the shutdown; each request ends once.
#[test]
fn graceful_shutdown_from_another_thread_while_threads_block_in_puts_and_waits() {
    let mut rng = Rng(0xb0_0119);
    trial(
        "shutdown under blocked threads",
        rounds(100),
        move |round| {
            let Blocked {
                pool,
                gate,
                ledger,
                threads,
            } = blocked_threads(&mut rng);
            let through_clone = rng.chance(50);
            let closer = if through_clone {
                pool.clone()
            } else {
                pool.new_handle()
            };
            for _ in 0..rng.below(100) {
                thread::yield_now();
            }
            let l = Arc::clone(&ledger);
            let shut = spawn("shutdown", move || {
                l.poller();
                match closer.shutdown() {
                    Ok(()) => {}
                    Err(ShutdownError::Unrun(unrun)) => panic!("unrun: {}", unrun.len()),
                    Err(e) => panic!("shutdown: {e:?}"),
                }
            });
            for _ in 0..rng.below(100) {
                thread::yield_now();
            }
            gate.open();
            for t in threads {
                t.join().unwrap();
            }
            // A's waiters may have returned before the blocked put landed (the
            // pool was still open): its result, and the batch's, wait for a
            // poll of A, which a shutdown through B waits for (its docs say
            // so). This thread polls A for them.
            match pool.wait() {
                Ok(_) | Err(WaitError::NoWorkersAvailable { pending: 0 }) => {}
                Err(e) => panic!("round {round}: the last wait: {e:?}"),
            }
            shut.join().unwrap();
            assert_eq!(pool.pending(), 0, "round {round}");
            ledger.check(&format!("round {round}, through clone {through_clone}"));
            // Nothing was cancelled but the batch's second member (its
            // docs: a shutdown after the first member was queued cancels
            // those not yet queued): every request queued before the
            // shutdown ran.
            let second = ledger.len() - 2;
            let cancelled =
                ledger.count(&ledger.cancelled) - ledger.cancelled[second].load(Ordering::SeqCst);
            assert_eq!(cancelled, 0, "round {round}");
        },
    );
}

/// One thread, and nobody else, puts on two handles A and B of one pool
/// (plain requests with `try_put_request`, tickets with `try_submit`),
/// never blocking in a put; when the queue is full it reads the
/// as-completed set of the tickets it holds, which looks out for both
/// handles (it was given a ticket of each first) and so makes room for
/// workers stuck on either full result queue. Then it polls both.
#[test]
fn as_completed_over_tickets_of_two_bounded_handles_makes_room_on_both() {
    let mut rng = Rng(0xb0_011a);
    trial("as_completed over two handles", rounds(100), move |round| {
        let pool = small_bounded(&mut rng);
        let handles = [pool.clone(), pool.new_handle()];
        let n = 40;
        let ledger = Ledger::new(n);
        ledger.poller();
        // A ticket of each handle first: the set looks out for the
        // handles of the tickets pushed to it (and only those: with
        // tickets of A alone, workers stuck on B's queue, which this
        // thread alone polls, wait for ever, as the docs say).
        let mut keys = HashMap::new();
        let mut set = callpool::as_completed(Vec::<callpool::Ticket<usize>>::new());
        for (i, handle) in handles.iter().enumerate() {
            let l = Arc::clone(&ledger);
            let ticket = handle
                .submit(
                    move |i: usize| {
                        l.ran_on_worker(i);
                        i
                    },
                    i,
                )
                .unwrap();
            keys.insert(set.push(ticket), i);
        }
        let mut in_set = 2;
        for i in 2..n {
            let handle = &handles[rng.below(2) as usize];
            if rng.chance(50) {
                let mut request = ledger.request(i);
                loop {
                    match handle.try_put_request(request) {
                        Ok(_) => break,
                        Err(PutError::Full(r)) => request = r,
                        Err(e) => panic!("put: {e:?}"),
                    }
                    let (key, outcome) = match set.next() {
                        Some(next) => next,
                        None => {
                            // No ticket held: poll both handles.
                            let _ = handles[0].poll();
                            let _ = handles[1].poll();
                            thread::yield_now();
                            continue;
                        }
                    };
                    in_set -= 1;
                    ledger.ticket(keys[&key], outcome);
                }
            } else {
                let l = Arc::clone(&ledger);
                let mut work = Some(move |i: usize| {
                    l.ran_on_worker(i);
                    i
                });
                loop {
                    match handle.try_submit(work.take().unwrap(), i) {
                        Ok(ticket) => {
                            keys.insert(set.push(ticket), i);
                            in_set += 1;
                            break;
                        }
                        Err(refused) => {
                            assert!(refused.is_full(), "{refused:?}");
                            work = Some(refused.into_parts().0);
                        }
                    }
                    match set.next() {
                        Some((key, outcome)) => {
                            in_set -= 1;
                            ledger.ticket(keys[&key], outcome);
                        }
                        None => {
                            let _ = handles[0].poll();
                            let _ = handles[1].poll();
                            thread::yield_now();
                        }
                    }
                }
            }
        }
        for (key, outcome) in set.by_ref() {
            in_set -= 1;
            ledger.ticket(keys[&key], outcome);
        }
        assert_eq!(in_set, 0);
        // Both handles polled in turn: a `wait` on one would wait for
        // ever on workers stuck on the other's full result queue (the
        // docs say so).
        while handles.iter().any(|h| h.pending() > 0) {
            for handle in &handles {
                match handle.poll() {
                    Ok(_) | Err(PollError::NoResultsPending) => {}
                    Err(e) => panic!("poll: {e:?}"),
                }
            }
            thread::yield_now();
        }
        ledger.check(&format!("round {round}"));
    });
}

/// A scope read on a thread that also puts plain requests on the same
/// handle between its scoped puts (blocking, both queues full), while
/// another thread waits on a clone; the scope's end is a lookout too.
#[test]
fn a_scope_on_a_thread_that_also_puts_beside_a_waiter() {
    let mut rng = Rng(0xb0_011b);
    trial("scope and puts", rounds(40), move |round| {
        let pool = small_bounded(&mut rng);
        let n = 16;
        // Plain 0..n, scoped n..2n.
        let ledger = Ledger::new(2 * n);
        let put_all = Arc::new(AtomicBool::new(false));
        let waiter = waiter_until_done(&pool, &ledger, &put_all);
        ledger.poller();
        let me = thread::current().id();
        let borrowed: Vec<usize> = (n..2 * n).collect();
        pool.scope(|s| {
            for (k, i) in borrowed.iter().enumerate() {
                let l = Arc::clone(&ledger);
                s.put_then(
                    move |i: &usize| {
                        l.ran_on_worker(*i);
                        *i
                    },
                    i,
                    |outcome| {
                        assert_eq!(thread::current().id(), me);
                        ledger.ticket(*i, outcome);
                    },
                )
                .unwrap();
                pool.put_request(ledger.request(k)).unwrap();
            }
        });
        put_all.store(true, Ordering::SeqCst);
        wait_until_done(&pool, &put_all);
        waiter.join().unwrap();
        ledger.check(&format!("round {round}"));
    });
}

/// A result callback closes the pool (`shutdown_now` through a clone or a
/// new handle, or `close`) while it may be run by a put blocked on the
/// full request queue (which holds its own request), by a `wait` on
/// another thread, or by the final `wait`. The blocked put is refused or
/// lands; each request ends once, in one way.
#[test]
fn a_callback_closes_the_pool_while_a_put_is_blocked_on_the_full_queue() {
    let mut rng = Rng(0xb0_011c);
    trial(
        "closing from a callback beside a blocked put",
        rounds(200),
        move |round| {
            let pool = bounded(1 + rng.below(2) as usize, 1, 1 + rng.below(2) as usize);
            let n = 16;
            let ledger = Ledger::new(n);
            let closer = rng.below(n as u64) as usize;
            let how = rng.below(3);
            let weak = pool.downgrade();
            let requests: Vec<WorkRequest> = (0..n)
                .map(|i| {
                    let (l, weak) = (Arc::clone(&ledger), weak.clone());
                    ledger.request_then(
                        i,
                        || {},
                        move |i| {
                            if i != closer {
                                return;
                            }
                            let Some(handle) = weak.upgrade() else { return };
                            let back = match how {
                                0 => handle.shutdown_now(),
                                1 => handle.new_handle().shutdown_now(),
                                _ => match handle.close() {
                                    Ok(()) => Vec::new(),
                                    Err(ShutdownError::Unrun(back)) => back,
                                    Err(e) => panic!("close: {e:?}"),
                                },
                            };
                            for r in back {
                                l.handed_back(r);
                            }
                        },
                    )
                })
                .collect();
            let waiter = {
                let (pool, ledger) = (pool.clone(), Arc::clone(&ledger));
                spawn("waiter", move || {
                    ledger.poller();
                    let _ = pool.wait();
                })
            };
            ledger.poller();
            for r in requests {
                match pool.put_request(r) {
                    Ok(_) => {}
                    Err(PutError::ShutDown(r)) => ledger.handed_back(r),
                    Err(e) => panic!("round {round}: put: {e:?}"),
                }
            }
            match pool.wait() {
                Ok(_) | Err(WaitError::NoWorkersAvailable { pending: 0 }) => {}
                Err(e) => panic!("round {round}: wait: {e:?}"),
            }
            waiter.join().unwrap();
            assert_eq!(pool.pending(), 0, "round {round}");
            ledger.check(&format!("round {round}, closed by {closer} the way {how}"));
        },
    );
}

/// A pool resized to 0 (not autoscaling), its request queue full with a
/// plain request, a ticket's and a collector's or a scope's (whichever
/// comes first), and threads blocked on the ticket, the collector and the
/// scope (which can only wait: no worker is left), and a `wait` told `NoWorkersAvailable`; then another thread
/// shuts it down, gracefully or not, through a clone or a new handle.
/// Every blocked thread returns; the plain request comes back to the
/// caller (through A) or is cancelled (through B); the rest are cancelled.
#[test]
fn a_pool_resized_to_zero_with_blocked_threads_then_shut_down_from_elsewhere() {
    let mut rng = Rng(0xb0_011d);
    trial(
        "zero workers, blocked threads, shutdown",
        rounds(200),
        move |round| {
            let pool = bounded(1 + rng.below(2) as usize, 3, 1 + rng.below(2) as usize);
            pool.resize(0).unwrap();
            pool.join_all_dismissed_workers();
            // 0 plain, 1 ticket, 2 collector, 3 scope.
            let ledger = Ledger::new(4);
            ledger.poller();
            pool.try_put_request(ledger.request(0)).unwrap();
            let l = Arc::clone(&ledger);
            let ticket = pool
                .try_submit(
                    move |i: usize| {
                        l.ran_on_worker(i);
                        i
                    },
                    1,
                )
                .unwrap_or_else(|_| panic!("a ticket's put"));
            let mut threads = Vec::new();
            let l = Arc::clone(&ledger);
            threads.push(spawn("ticket", move || l.ticket(1, ticket.wait())));
            let (p, l) = (pool.clone(), Arc::clone(&ledger));
            threads.push(spawn("collector", move || {
                let mut collector = p.collector::<usize>();
                let l2 = Arc::clone(&l);
                collector
                    .try_put(
                        move |i: usize| {
                            l2.ran_on_worker(i);
                            i
                        },
                        2,
                    )
                    .map_or_else(
                        |refused| {
                            // The closer came first, or the scope took
                            // the queue's last place.
                            assert!(refused.is_shut_down() || refused.is_full(), "{refused:?}");
                            l.back[2].fetch_add(1, Ordering::SeqCst);
                        },
                        |_| {
                            let heard = collector.wait_with(|_, outcome| l.ticket(2, outcome));
                            assert_eq!(heard, 1);
                        },
                    );
            }));
            let (p, l) = (pool.clone(), Arc::clone(&ledger));
            threads.push(spawn("scope", move || {
                let l2 = Arc::clone(&l);
                p.scope(|s| {
                    // The queue may be full by now: a full queue refuses a
                    // scope's put at once when no worker is left.
                    let put = s.put_then(
                        move |i: usize| {
                            l2.ran_on_worker(i);
                            i
                        },
                        3,
                        |outcome| l.ticket(3, outcome),
                    );
                    if put.is_err() {
                        l.back[3].fetch_add(1, Ordering::SeqCst);
                    }
                });
            }));
            assert_eq!(
                pool.wait(),
                Err(WaitError::NoWorkersAvailable { pending: 1 }),
                "round {round}"
            );
            for _ in 0..rng.below(100) {
                thread::yield_now();
            }
            let through_clone = rng.chance(50);
            let graceful = rng.chance(50);
            let closer = if through_clone {
                pool.clone()
            } else {
                pool.new_handle()
            };
            let l = Arc::clone(&ledger);
            spawn("closer", move || {
                let back = if graceful {
                    match closer.shutdown() {
                        Ok(()) => Vec::new(),
                        Err(ShutdownError::Unrun(back)) => back,
                        Err(e) => panic!("shutdown: {e:?}"),
                    }
                } else {
                    closer.shutdown_now()
                };
                for r in back {
                    l.handed_back(r);
                }
            })
            .join()
            .unwrap();
            for t in threads {
                t.join().unwrap();
            }
            match pool.wait() {
                Ok(_) | Err(WaitError::NoWorkersAvailable { pending: 0 }) => {}
                Err(e) => panic!("round {round}: the last wait: {e:?}"),
            }
            ledger.check(&format!("round {round}, through clone {through_clone}"));
            assert_eq!(ledger.count(&ledger.ran), 0, "round {round}");
            // The plain request came back through A, or was cancelled to
            // its callback through B.
            let back = ledger.back[0].load(Ordering::SeqCst);
            assert_eq!(back, usize::from(through_clone), "round {round}");
        },
    );
}

/// The deadlock `put_request`'s docs name, and their way out: a thread
/// puts on handle P (a bounded result queue it does not poll yet), then
/// on handle H with both queues full; `put_request_timeout` hands the
/// request back, the thread polls P and puts again, and everything runs.
#[test]
fn the_documented_way_out_of_the_two_handle_wait() {
    let mut rng = Rng(0xb0_011e);
    trial("two-handle way out", rounds(40), move |round| {
        let pool = bounded(1 + rng.below(2) as usize, 1, 1);
        let (p, h) = (pool.clone(), pool.new_handle());
        let n = 12;
        let ledger = Ledger::new(2 * n);
        ledger.poller();
        for k in 0..n {
            put_somehow(&p, 1, ledger.request(k)).unwrap();
            let mut request = ledger.request(n + k);
            loop {
                match h.put_request_timeout(request, Duration::from_micros(200)) {
                    Ok(_) => break,
                    Err(PutError::Timeout(r)) => {
                        let _ = p.poll();
                        request = r;
                    }
                    Err(e) => panic!("put: {e:?}"),
                }
            }
        }
        while p.pending() + h.pending() > 0 {
            let _ = p.poll();
            let _ = h.poll();
            thread::yield_now();
        }
        ledger.check(&format!("round {round}"));
    });
}

/// Each of two handles has a thread of its own waiting on it; their
/// callbacks poll the other handle (running its callbacks there, nested
/// in their own); a third thread puts on both handles, blocking on the
/// full queue. Every blocking wait is on a handle some thread polls, so
/// nothing waits for ever.
#[test]
fn callbacks_poll_the_other_handle_while_each_has_a_waiter_and_a_third_thread_puts() {
    let mut rng = Rng(0xb0_011f);
    trial("cross-polling callbacks", rounds(100), move |round| {
        let pool = small_bounded(&mut rng);
        let handles = [pool.clone(), pool.new_handle()];
        let n = 24;
        let ledger = Ledger::new(n);
        let requests: Vec<(usize, WorkRequest)> = (0..n)
            .map(|i| {
                let other = handles[1 - i % 2].downgrade();
                let request = ledger.request_then(
                    i,
                    || {},
                    move |_| {
                        if let Some(other) = other.upgrade() {
                            match other.poll() {
                                Ok(_) | Err(PollError::NoResultsPending) => {}
                                Err(e) => panic!("poll: {e:?}"),
                            }
                        }
                    },
                );
                (i % 2, request)
            })
            .collect();
        let put_all = Arc::new(AtomicBool::new(false));
        let waiters: Vec<_> = handles
            .iter()
            .map(|h| {
                let (h, ledger, put_all) = (h.clone(), Arc::clone(&ledger), Arc::clone(&put_all));
                spawn("waiter", move || {
                    ledger.poller();
                    wait_until_done(&h, &put_all);
                })
            })
            .collect();
        let (hs, l) = (handles.clone(), Arc::clone(&ledger));
        spawn("putter", move || {
            l.poller();
            for (which, request) in requests {
                hs[which].put_request(request).unwrap();
            }
        })
        .join()
        .unwrap();
        put_all.store(true, Ordering::SeqCst);
        for w in waiters {
            w.join().unwrap();
        }
        ledger.check(&format!("round {round}"));
    });
}

/// Two handles A and B, each with a thread of its own waiting on it.
/// Each result callback puts a follow-up onto the *other* handle with
/// `put_request_timeout`, and at each timeout polls its own handle (a
/// nested poll) before it puts again: the way out that `put_request`'s
/// docs give for a thread blocked on one handle while workers wait on
/// another's full result queue, taken inside callbacks on both sides.
#[test]
fn callbacks_put_onto_the_other_handle_with_timeouts_and_poll_their_own() {
    let mut rng = Rng(0xb0_0120);
    trial("cross-handle puts in callbacks", rounds(50), move |round| {
        let pool = small_bounded(&mut rng);
        let handles = [pool.clone(), pool.new_handle()];
        // Chains of `hops` requests, alternating between the handles.
        let (chains, hops) = (6, 6);
        let ledger = Ledger::new(chains * hops);
        fn hop(
            ledger: &Arc<Ledger>,
            handles: [WeakPool; 2],
            chain: usize,
            hop_i: usize,
            hops: usize,
        ) -> WorkRequest {
            let l = Arc::clone(ledger);
            ledger.request_then(
                chain * hops + hop_i,
                || {},
                move |_| {
                    if hop_i + 1 == hops {
                        return;
                    }
                    let (own, other) = (hop_i % 2, 1 - hop_i % 2);
                    let (Some(own), Some(other_h)) =
                        (handles[own].upgrade(), handles[other].upgrade())
                    else {
                        return;
                    };
                    let mut request = hop(&l, handles, chain, hop_i + 1, hops);
                    loop {
                        match other_h.put_request_timeout(request, Duration::from_micros(100)) {
                            Ok(_) => return,
                            Err(PutError::Timeout(r)) => {
                                match own.poll() {
                                    Ok(_) | Err(PollError::NoResultsPending) => {}
                                    Err(e) => panic!("poll: {e:?}"),
                                }
                                request = r;
                            }
                            Err(e) => panic!("put: {e:?}"),
                        }
                    }
                },
            )
        }
        let weak = [handles[0].downgrade(), handles[1].downgrade()];
        let finished = {
            let ledger = Arc::clone(&ledger);
            move || ledger.count(&ledger.ok) == chains * hops
        };
        let waiters: Vec<_> = handles
            .iter()
            .map(|h| {
                let (h, ledger, finished) = (h.clone(), Arc::clone(&ledger), finished.clone());
                spawn("waiter", move || {
                    ledger.poller();
                    wait_until(&h, finished);
                })
            })
            .collect();
        ledger.poller();
        // Every chain starts on A, put from here with a timeout too (the
        // waiters poll both handles).
        for chain in 0..chains {
            let mut request = hop(&ledger, weak.clone(), chain, 0, hops);
            loop {
                match handles[0].put_request_timeout(request, Duration::from_micros(100)) {
                    Ok(_) => break,
                    Err(PutError::Timeout(r)) => request = r,
                    Err(e) => panic!("put: {e:?}"),
                }
            }
        }
        for w in waiters {
            w.join().unwrap();
        }
        ledger.check(&format!("round {round}"));
    });
}

/// A thread keeps one request of handle A in flight at a time, so no
/// worker can get stuck on A's queue while it runs A's callbacks; each
/// callback puts requests on handle B (blocking on the full queue) and
/// waits on B, while another thread waits on a clone of B too and a third
/// puts on B: two waiters on B, one of them inside A's callback.
#[test]
fn callbacks_of_one_handle_wait_on_another_beside_its_own_waiter() {
    let mut rng = Rng(0xb0_0121);
    trial(
        "callbacks waiting on another handle",
        rounds(60),
        move |round| {
            let pool = small_bounded(&mut rng);
            let (a, b) = (pool.clone(), pool.new_handle());
            let n = 8;
            // A's requests 0..n; B's: n..3n put by A's callbacks, 3n..4n by the
            // third thread.
            let ledger = Ledger::new(4 * n);
            let done = Arc::new(AtomicBool::new(false));
            let b_waiter = {
                let (b, ledger, done) = (b.clone(), Arc::clone(&ledger), Arc::clone(&done));
                spawn("b waiter", move || {
                    ledger.poller();
                    wait_until_done(&b, &done);
                })
            };
            let b_putter = {
                let (b, ledger) = (b.clone(), Arc::clone(&ledger));
                spawn("b putter", move || {
                    ledger.poller();
                    for i in 3 * n..4 * n {
                        b.put_request(ledger.request(i)).unwrap();
                    }
                })
            };
            ledger.poller();
            for k in 0..n {
                let (l, b) = (Arc::clone(&ledger), b.downgrade());
                let request = ledger.request_then(
                    k,
                    || {},
                    move |k| {
                        let b = b.upgrade().unwrap();
                        for i in [n + 2 * k, n + 2 * k + 1] {
                            b.put_request(l.request(i)).unwrap();
                        }
                        match b.wait() {
                            Ok(_) => {}
                            Err(e) => panic!("a wait on B in A's callback: {e:?}"),
                        }
                    },
                );
                a.put_request(request).unwrap();
                assert_eq!(a.wait(), Ok(1), "round {round}");
            }
            b_putter.join().unwrap();
            done.store(true, Ordering::SeqCst);
            b_waiter.join().unwrap();
            b.wait().unwrap();
            ledger.check(&format!("round {round}"));
        },
    );
}

// ---------------------------------------------------------------------------
// Every blocking put makes room, on the calling thread.
// ---------------------------------------------------------------------------

/// Each way of putting that may block on a full request queue, called by
/// the only thread that handles the handle's results, while the only
/// worker is stuck sending to the full result queue and the request queue
/// is full behind it: the put can only return once it has run the ready
/// callbacks itself (on the calling thread), as `put_request`'s docs say
/// of it and of the forms that block "like `put_request`".
#[test]
fn every_blocking_put_form_makes_room_for_a_stuck_worker() {
    const FORMS: usize = 14;
    let mut form = 0;
    trial("every blocking put form", FORMS, move |_| {
        let pool = bounded(1, 1, 1);
        // 0: its result fills the result queue; 1: its worker gets stuck;
        // 2: fills the request queue; 3: what the form under trial puts.
        let ledger = Ledger::new(4);
        ledger.poller();
        let me = thread::current().id();
        pool.put_request(ledger.request(0)).unwrap();
        let (ran_tx, ran) = std::sync::mpsc::channel();
        pool.put_request(ledger.request_then(1, move || ran_tx.send(()).unwrap(), |_| {}))
            .unwrap();
        // Request 1 ran, so request 0's result fills the result queue and
        // the worker is stuck (or about to be) sending 1's.
        ran.recv().unwrap();
        pool.try_put_request(ledger.request(2)).unwrap();
        let l = Arc::clone(&ledger);
        let f = move |i: usize| {
            l.ran_on_worker(i);
            i
        };
        let long = common::HANG * 2;
        let mut ticket = None;
        match form {
            0 => {
                pool.put_request(ledger.request(3)).unwrap();
            }
            1 => {
                pool.put_request_timeout(ledger.request(3), long).unwrap();
            }
            2 => assert_eq!(pool.put_all([ledger.request(3)]).unwrap(), 1),
            3 => drop(pool.put_batch([ledger.request(3)]).unwrap()),
            4 => {
                pool.execute(move || {
                    f(3);
                })
                .unwrap();
            }
            5 => {
                pool.execute_timeout(
                    move || {
                        f(3);
                    },
                    long,
                )
                .unwrap();
            }
            6 => ticket = Some(pool.submit(f, 3).unwrap()),
            7 => ticket = Some(pool.submit_timeout(f, 3, long).unwrap()),
            8 => ticket = Some(pool.submit_with_context(move |_, i| f(i), 3).unwrap()),
            9 | 10 => {
                let mut collector = pool.collector::<usize>();
                if form == 9 {
                    collector.put(f, 3).unwrap();
                } else {
                    collector.put_timeout(f, 3, long).unwrap();
                }
                assert_eq!(ledger.ok[0].load(Ordering::SeqCst), 1, "form {form}");
                collector.wait_with(|_, outcome| ledger.ticket(3, outcome));
            }
            11 => pool.scope(|s| {
                s.put_then(f, 3, |outcome| {
                    assert_eq!(thread::current().id(), me);
                    ledger.ticket(3, outcome);
                })
                .unwrap();
                assert_eq!(ledger.ok[0].load(Ordering::SeqCst), 1, "form {form}");
            }),
            12 => {
                for (i, outcome) in pool.as_completed([3], 1, move |&i: &usize| f(i)) {
                    ledger.ticket(i, outcome);
                }
            }
            _ => {
                for outcome in pool.map([3], f) {
                    ledger.ticket(3, outcome);
                }
            }
        }
        // The put returned: the only way room came was this thread
        // handling request 0's result (and so its callback ran here).
        assert_eq!(ledger.ok[0].load(Ordering::SeqCst), 1, "form {form}");
        if let Some(ticket) = ticket {
            ledger.ticket(3, ticket.wait());
        }
        pool.wait().unwrap();
        if matches!(form, 4 | 5) {
            // An executed request has no callback: count its end here.
            ledger.ok[3].fetch_add(1, Ordering::SeqCst);
        }
        ledger.check(&format!("form {form}"));
        form += 1;
    });
}

/// A stream on a result queue of one or two, handled by two threads
/// waiting on clones; some of its item callbacks wait for a ticket of the
/// same handle, queued behind the stream (a lookout, which makes room by
/// taking the stream's next items for later). Its items are still heard
/// once each, in order, one callback at a time, then its end.
#[test]
fn stream_items_whose_callbacks_wait_for_tickets_beside_a_second_poller() {
    let mut rng = Rng(0xb0_0122);
    trial(
        "stream items waiting for tickets",
        rounds(40),
        move |round| {
            let pool = small_bounded(&mut rng);
            let items = 40;
            let heard = Arc::new(Mutex::new(Vec::new()));
            let inside = Arc::new(AtomicUsize::new(0));
            let overlapped = Arc::new(AtomicUsize::new(0));
            let tickets_ok = Arc::new(AtomicUsize::new(0));
            let every = 1 + rng.below(8) as usize;
            let (h, h2, ins, over, ok) = (
                Arc::clone(&heard),
                Arc::clone(&heard),
                Arc::clone(&inside),
                Arc::clone(&overlapped),
                Arc::clone(&tickets_ok),
            );
            let weak = pool.downgrade();
            pool.put_request(
                WorkRequest::streaming(
                    |n: usize, out: &callpool::Emitter<'_, usize>| {
                        (0..n).try_for_each(|i| out.emit(i)).map_err(|_| "closed")
                    },
                    items,
                )
                .on_result(move |_, i| {
                    if ins.fetch_add(1, Ordering::SeqCst) != 0 {
                        over.fetch_add(1, Ordering::SeqCst);
                    }
                    h.lock().unwrap().push(Some(i));
                    if i % every == 0 {
                        let pool = weak.upgrade().unwrap();
                        let ticket = pool.submit(|i: usize| i * 2, i).unwrap();
                        assert_eq!(ticket.wait(), Ok(i * 2));
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    ins.fetch_sub(1, Ordering::SeqCst);
                })
                .on_done(move |_| h2.lock().unwrap().push(None)),
            )
            .unwrap();
            let other = {
                let pool = pool.clone();
                spawn("second poller", move || {
                    let _ = pool.wait();
                })
            };
            let _ = pool.wait();
            other.join().unwrap();
            pool.wait().unwrap();
            let mut want: Vec<Option<usize>> = (0..items).map(Some).collect();
            want.push(None);
            assert_eq!(*heard.lock().unwrap(), want, "round {round}");
            assert_eq!(overlapped.load(Ordering::SeqCst), 0, "round {round}");
            let waited = (0..items).filter(|i| i % every == 0).count();
            assert_eq!(tickets_ok.load(Ordering::SeqCst), waited, "round {round}");
        },
    );
}
