//! Work that makes work: `WorkRequest::with_context` and `Context::put`.
//!
//! A request put through a context counts in its handle's `pending` at once,
//! waits in its worker's slot and is handed to the queue in batches of
//! [`BATCH`], sooner when another worker goes idle, at the latest when its
//! parent's callable returns (`pool::worker`, `Children`; `pool::nursery`).
//! The tests pin what that promises: `wait` never returns while a running
//! request can still add one; children go past a bounded queue's capacity
//! (with the result queue bounded too); resizing and dismissal lose none;
//! a closing pool cancels the ones still in a worker's slot (or hands them
//! back to `shutdown_now` on their handle) and refuses new ones, handing
//! them back; `cancel(id)` reaches them queued or held; an idle worker
//! starts a held one; ids stay unique; a parent's panic or error keeps its
//! children.
//!
//! Nothing here depends on timing: every step is forced by a gate, a
//! channel or a callback, and timeouts only turn a hang into a failure.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use callpool::{Context, PutError, RequestId, TaskError, ThreadPool, WaitError, WorkRequest};

use common::{assert_each_once, hit_counters, Dropped, HANG};

/// How many children a worker hands to the queue at once (`CHILD_BATCH` in
/// `src/pool/worker.rs`). The tests that need a child still in the worker's
/// slot, or already queued, say so and count on this number; if it
/// changes, they fail (a hang caught by `HANG`, or a wrong count), they do
/// not pass vacuously.
const BATCH: usize = 64;

const DELIBERATE: &str = "context: deliberate panic";

/// Waits until `done` holds, or fails after [`HANG`]: for a state that the
/// pool reaches on its own and the test cannot be told about (a shutdown on
/// another thread has begun; enough children have started).
fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(Instant::now() < deadline, "hang: {what}");
        thread::yield_now();
    }
}

// ---------------------------------------------------------------------------
// The ledger: what happened to each numbered request.
// ---------------------------------------------------------------------------

/// What happened to each of `n` numbered requests: how often its callable
/// started, how often its result callback ran, what its error callback
/// heard; whether any callback ran off the polling thread (the one that
/// made the ledger); and, for the shutdown tests, how many callables
/// started after `shutdown_now` had returned.
struct Ledger {
    polling: ThreadId,
    started: Vec<AtomicUsize>,
    results: Vec<AtomicUsize>,
    errors: Mutex<HashMap<usize, Vec<TaskError>>>,
    off_thread: AtomicUsize,
    shutdown_returned: AtomicBool,
    started_after_shutdown: AtomicUsize,
}

impl Ledger {
    fn new(n: usize) -> Arc<Ledger> {
        Arc::new(Ledger {
            polling: thread::current().id(),
            started: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            results: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            errors: Mutex::default(),
            off_thread: AtomicUsize::new(0),
            shutdown_returned: AtomicBool::new(false),
            started_after_shutdown: AtomicUsize::new(0),
        })
    }

    /// Called first thing by every callable.
    fn start(&self, i: usize) {
        // Checked before counting the start: a start counted here began
        // after `shutdown_now` returned if the flag is already set.
        if self.shutdown_returned.load(Ordering::SeqCst) {
            self.started_after_shutdown.fetch_add(1, Ordering::SeqCst);
        }
        self.started[i].fetch_add(1, Ordering::SeqCst);
    }

    fn on_polling_thread(&self) {
        if thread::current().id() != self.polling {
            self.off_thread.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn result(&self, i: usize) {
        self.on_polling_thread();
        self.results[i].fetch_add(1, Ordering::SeqCst);
    }

    fn error(&self, i: usize, e: TaskError) {
        self.on_polling_thread();
        self.errors.lock().unwrap().entry(i).or_default().push(e);
    }

    /// A child for item `i`: starts, returns `i`; both callbacks recorded.
    fn child(self: &Arc<Self>, i: usize) -> WorkRequest {
        self.child_then(i, |_| {})
    }

    /// A child for item `i` that runs `then(i)` after counting its start.
    fn child_then(
        self: &Arc<Self>,
        i: usize,
        then: impl FnOnce(usize) + Send + 'static,
    ) -> WorkRequest {
        self.numbered(i, None, then)
    }

    /// [`child_then`](Self::child_then) with the user-chosen id `id`.
    fn child_with_id(
        self: &Arc<Self>,
        i: usize,
        id: u64,
        then: impl FnOnce(usize) + Send + 'static,
    ) -> WorkRequest {
        self.numbered(i, Some(id), then)
    }

    fn numbered(
        self: &Arc<Self>,
        i: usize,
        id: Option<u64>,
        then: impl FnOnce(usize) + Send + 'static,
    ) -> WorkRequest {
        let (me, ok, err) = (Arc::clone(self), Arc::clone(self), Arc::clone(self));
        let request = WorkRequest::new(
            move |i: usize| {
                me.start(i);
                then(i);
                i
            },
            i,
        )
        .on_result(move |_, i| ok.result(i))
        .on_error(move |_, e| err.error(i, e));
        match id {
            Some(id) => request.with_id(id).into(),
            None => request.into(),
        }
    }

    fn started(&self, i: usize) -> usize {
        self.started[i].load(Ordering::SeqCst)
    }

    fn results(&self, i: usize) -> usize {
        self.results[i].load(Ordering::SeqCst)
    }

    fn errors(&self, i: usize) -> Vec<TaskError> {
        self.errors
            .lock()
            .unwrap()
            .get(&i)
            .cloned()
            .unwrap_or_default()
    }

    /// Each of `items` started once, its result callback ran once, its
    /// error callback never.
    fn assert_ran_once(&self, items: impl IntoIterator<Item = usize>) {
        for i in items {
            assert_eq!(
                (self.started(i), self.results(i), self.errors(i)),
                (1, 1, vec![]),
                "item {i}: (starts, results, errors)"
            );
        }
    }

    /// Each of `items` never started, and its error callback heard
    /// `Cancelled` exactly once.
    fn assert_cancelled_unstarted(&self, items: impl IntoIterator<Item = usize>) {
        for i in items {
            assert_eq!(
                (self.started(i), self.results(i), self.errors(i)),
                (0, 0, vec![TaskError::Cancelled]),
                "item {i}: (starts, results, errors)"
            );
        }
    }

    fn assert_all_callbacks_on_polling_thread(&self) {
        assert_eq!(
            self.off_thread.load(Ordering::SeqCst),
            0,
            "callbacks that ran off the polling thread"
        );
    }
}

/// What a parent saw when it put a request: the id it was given, or the
/// kind of refusal and the id of the request handed back.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Put {
    Ok(RequestId),
    ShutDown(RequestId),
    DuplicateId(RequestId),
    Other(String),
}

fn seen(put: Result<RequestId, PutError>) -> Put {
    match put {
        Ok(id) => Put::Ok(id),
        Err(PutError::ShutDown(r)) => Put::ShutDown(r.id()),
        Err(PutError::DuplicateId(r)) => Put::DuplicateId(r.id()),
        Err(other) => Put::Other(format!("{other:?}")),
    }
}

// ---------------------------------------------------------------------------
// Many children, deep trees.
// ---------------------------------------------------------------------------

/// One request adds 100,000: `wait` handles exactly those and the parent,
/// every callback once and on the waiting thread, and the squares add up.
#[test]
fn one_task_adds_a_hundred_thousand_tasks() {
    const N: u64 = 100_000;
    let pool = ThreadPool::new(4);
    let ledger = Ledger::new(N as usize + 1);
    let sum = Arc::new(AtomicU64::new(0));
    let hits = hit_counters(N as usize);
    let (parent_ledger, total, child_hits) =
        (Arc::clone(&ledger), Arc::clone(&sum), Arc::clone(&hits));
    let parent_result = Arc::clone(&ledger);
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, n: u64| {
                parent_ledger.start(N as usize);
                let mut refused = Vec::new();
                for i in 0..n {
                    let (ledger, sum, hits) = (
                        Arc::clone(&parent_ledger),
                        Arc::clone(&total),
                        Arc::clone(&child_hits),
                    );
                    let child =
                        WorkRequest::new(|i: u64| (i, i * i), i).on_result(move |_, (i, sq)| {
                            ledger.on_polling_thread();
                            hits[i as usize].fetch_add(1, Ordering::SeqCst);
                            sum.fetch_add(sq, Ordering::SeqCst);
                        });
                    if let Err(e) = cx.put(child) {
                        refused.push(format!("{e:?}"));
                    }
                }
                refused
            },
            N,
        )
        .on_result(move |_, refused: Vec<String>| {
            assert!(refused.is_empty(), "children refused: {refused:?}");
            parent_result.result(N as usize);
        }),
    )
    .unwrap();
    let waited = common::within_here("wait for 100,001 requests", || pool.wait());
    assert_eq!(waited, Ok(N as usize + 1));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once([N as usize]);
    assert_each_once("children's result callbacks", &hits);
    ledger.assert_all_callbacks_on_polling_thread();
    assert_eq!(sum.load(Ordering::SeqCst), (N - 1) * N * (2 * N - 1) / 6);
}

/// A complete tree of requests: node `k` (heap order) adds nodes `2k+1`
/// and `2k+2` until depth [`TREE_DEPTH`].
const TREE_DEPTH: u32 = 12;
const TREE_NODES: usize = (1 << (TREE_DEPTH + 1)) - 1;

fn depth(k: usize) -> u32 {
    (k + 1).ilog2()
}

fn tree_node(k: usize, ledger: &Arc<Ledger>) -> WorkRequest {
    let (me, ok, err) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    WorkRequest::with_context(
        move |cx: &Context<'_>, k: usize| {
            me.start(k);
            if depth(k) < TREE_DEPTH {
                for child in [2 * k + 1, 2 * k + 2] {
                    cx.put(tree_node(child, &me)).expect("the pool is open");
                }
            }
            k
        },
        k,
    )
    .on_result(move |_, k| ok.result(k))
    .on_error(move |_, e| err.error(k, e))
    .into()
}

/// Transitively added requests are waited for: `wait` handles all
/// 2^13 - 1 nodes, not fewer; and a loop of `poll_timeout` that stops when
/// `pending()` reads 0 handles all of them too, so `pending` never reads 0
/// while a node can still add one.
#[test]
fn wait_returns_only_when_the_whole_tree_has_been_handled() {
    let pool = ThreadPool::new(4);

    let ledger = Ledger::new(TREE_NODES);
    pool.put_request(tree_node(0, &ledger)).unwrap();
    let waited = common::within_here("wait for the tree", || pool.wait());
    assert_eq!(waited, Ok(TREE_NODES));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..TREE_NODES);
    ledger.assert_all_callbacks_on_polling_thread();

    let ledger = Ledger::new(TREE_NODES);
    pool.put_request(tree_node(0, &ledger)).unwrap();
    let handled = common::within_here("poll the tree", || {
        let mut handled = 0;
        while pool.pending() > 0 {
            handled += pool.poll_timeout(HANG).expect("a result within HANG");
        }
        handled
    });
    assert_eq!(handled, TREE_NODES, "pending() read 0 early");
    ledger.assert_ran_once(0..TREE_NODES);
    ledger.assert_all_callbacks_on_polling_thread();
}

// ---------------------------------------------------------------------------
// wait vs. a parent that can still add children.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    GateOpened,
    Child(usize),
    Parent,
    WaitReturned,
}

type Events = Arc<Mutex<Vec<Event>>>;

fn record<T>(events: &Events, event: Event) -> impl FnOnce(RequestId, T) + Send + 'static {
    let events = Arc::clone(events);
    move |_, _| events.lock().unwrap().push(event)
}

/// In each round a parent puts child 1, blocks on a gate, then puts child
/// 2. The other worker is busy with a blocker meanwhile, so child 1 stays
/// in the parent's slot (it would be handed off at once to a sleeping
/// worker). While the parent is held, another thread finds the blocker,
/// the parent and child 1 pending (`pending() == 3`), `poll` finds nothing
/// ready and `wait_timeout` times out with all three pending. The test
/// thread then releases the blocker and starts `wait`; the gate is opened
/// by a callback that this very `wait` runs (a sentinel request's), so the
/// wait has begun before the parent can put child 2, and it must return
/// only after child 2's callback.
#[test]
fn wait_never_returns_while_a_held_parent_can_still_put() {
    const ROUNDS: usize = 500;
    let pool = ThreadPool::new(2);
    for round in 0..ROUNDS {
        let events = Events::default();
        let (gate, latch) = common::gate();
        let (c1, c2) = (
            record(&events, Event::Child(1)),
            record(&events, Event::Child(2)),
        );
        let (blocker, blocked) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| blocked.hold(), ()))
            .unwrap();
        blocker.await_start();
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    cx.put(WorkRequest::new(|x: u8| x, 1).on_result(c1))
                        .expect("the pool is open");
                    latch.hold();
                    cx.put(WorkRequest::new(|x: u8| x, 2).on_result(c2))
                        .expect("the pool is open");
                },
                (),
            )
            .on_result(record(&events, Event::Parent)),
        )
        .unwrap();
        gate.await_start();
        thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(
                    pool.pending(),
                    3,
                    "round {round}: the blocker, the parent and child 1"
                );
                assert_eq!(pool.poll(), Ok(0), "round {round}: nothing is ready");
                assert_eq!(
                    pool.wait_timeout(Duration::from_millis(1)),
                    Err(WaitError::Timeout { pending: 3 }),
                    "round {round}"
                );
            });
        });
        let opened = Arc::clone(&events);
        pool.put_request(WorkRequest::new(|x: u8| x, 0).on_result(move |_, _| {
            opened.lock().unwrap().push(Event::GateOpened);
            gate.open();
        }))
        .unwrap();
        blocker.open();
        let waited = pool.wait_timeout(HANG);
        events.lock().unwrap().push(Event::WaitReturned);
        assert_eq!(waited, Ok(5), "round {round}");
        assert_eq!(pool.pending(), 0, "round {round}");
        let events = events.lock().unwrap().clone();
        assert_eq!(events.len(), 5, "round {round}: {events:?}");
        assert_eq!(events[0], Event::GateOpened, "round {round}: {events:?}");
        assert_eq!(events[4], Event::WaitReturned, "round {round}: {events:?}");
        let mut middle = events[1..4].to_vec();
        middle.sort_unstable();
        assert_eq!(
            middle,
            [Event::Child(1), Event::Child(2), Event::Parent],
            "round {round}: {events:?}"
        );
    }
}

/// The sharper edge: the parent's first [`BATCH`] children are queued while
/// it runs (a full batch is handed off), run on the other worker and are
/// handled by `wait` while the parent is held, so `pending()` comes down to
/// exactly 1, the parent alone. The callback of the last of them (whichever
/// that is) checks that and opens the gate; the parent then puts one more
/// child, and `wait` must not have returned before that child's callback.
#[test]
fn wait_never_returns_when_only_a_held_parent_is_pending() {
    const ROUNDS: usize = 200;
    let pool = Arc::new(ThreadPool::new(2));
    for round in 0..ROUNDS {
        let events = Events::default();
        let (gate, latch) = common::gate();
        let gate = Arc::new(Mutex::new(Some(gate)));
        let handled = Arc::new(AtomicUsize::new(0));
        let pending_at_gate = Arc::new(Mutex::new(None));
        let children: Vec<WorkRequest> = (0..BATCH)
            .map(|i| {
                let (events, gate, handled, pending_at_gate, pool) = (
                    Arc::clone(&events),
                    Arc::clone(&gate),
                    Arc::clone(&handled),
                    Arc::clone(&pending_at_gate),
                    Arc::clone(&pool),
                );
                WorkRequest::new(|i: usize| i, i)
                    .on_result(move |_, i| {
                        events.lock().unwrap().push(Event::Child(i));
                        if handled.fetch_add(1, Ordering::SeqCst) + 1 == BATCH {
                            let gate = gate.lock().unwrap().take().expect("one last child");
                            gate.await_start();
                            *pending_at_gate.lock().unwrap() = Some(pool.pending());
                            events.lock().unwrap().push(Event::GateOpened);
                            gate.open();
                        }
                    })
                    .into()
            })
            .collect();
        let last = record(&events, Event::Child(BATCH));
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                    for child in children {
                        cx.put(child).expect("the pool is open");
                    }
                    latch.hold();
                    cx.put(WorkRequest::new(|i: usize| i, BATCH).on_result(last))
                        .expect("the pool is open");
                },
                children,
            )
            .on_result(record(&events, Event::Parent)),
        )
        .unwrap();
        let waited = pool.wait_timeout(HANG);
        events.lock().unwrap().push(Event::WaitReturned);
        assert_eq!(waited, Ok(BATCH + 2), "round {round}");
        assert_eq!(pool.pending(), 0, "round {round}");
        assert_eq!(
            *pending_at_gate.lock().unwrap(),
            Some(1),
            "round {round}: pending() with every queued child handled and the parent held"
        );
        let events = events.lock().unwrap().clone();
        assert_eq!(events.len(), BATCH + 4, "round {round}: {events:?}");
        let mut first: Vec<Event> = events[..BATCH].to_vec();
        first.sort_unstable();
        assert_eq!(
            first,
            (0..BATCH).map(Event::Child).collect::<Vec<_>>(),
            "round {round}"
        );
        assert_eq!(
            events[BATCH],
            Event::GateOpened,
            "round {round}: {events:?}"
        );
        let mut then: Vec<Event> = events[BATCH + 1..BATCH + 3].to_vec();
        then.sort_unstable();
        assert_eq!(then, [Event::Child(BATCH), Event::Parent], "round {round}");
        assert_eq!(events[BATCH + 3], Event::WaitReturned, "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Bounded queues and resizing.
// ---------------------------------------------------------------------------

/// One worker, a queue of 1, a parent that adds 500 children: its puts
/// never wait for room (the only worker would wait for itself), the handed
/// off batches go past the capacity while the parent is held, a
/// `try_put_request` from outside meanwhile finds the queue full, a
/// blocking one waits until the children have been taken, and everything
/// runs once.
#[test]
fn children_go_past_a_bounded_queues_capacity() {
    const N: usize = 500;
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    // Children 0..N, the parent N, the outsider N + 1.
    let ledger = Ledger::new(N + 2);
    let (gate, latch) = common::gate();
    let (tx, puts) = mpsc::channel();
    let (me, parent) = (Arc::clone(&ledger), Arc::clone(&ledger));
    let children: Vec<WorkRequest> = (0..N).map(|i| ledger.child(i)).collect();
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                me.start(N);
                let puts: Vec<Put> = children.into_iter().map(|c| seen(cx.put(c))).collect();
                latch.hold();
                puts
            },
            children,
        )
        .on_result(move |_, puts| {
            parent.result(N);
            tx.send(puts).unwrap();
        }),
    )
    .unwrap();
    gate.await_start();
    // The only worker is held in the parent: the handed-off batches wait in
    // the queue, far past its capacity; the rest is in the worker's slot.
    assert_eq!(pool.queued(), N / BATCH * BATCH);
    assert_eq!(pool.pending(), N + 1);
    let outsider = match pool.try_put_request(ledger.child(N + 1)) {
        Err(PutError::Full(request)) => request,
        other => panic!("expected a full queue, got {other:?}"),
    };
    gate.open();
    common::within_here("a blocking put behind 500 children", || {
        pool.put_request(outsider).unwrap()
    });
    assert_eq!(pool.wait_timeout(HANG), Ok(N + 2));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..N + 2);
    ledger.assert_all_callbacks_on_polling_thread();
    let puts = puts.try_recv().unwrap();
    assert_eq!(puts.len(), N);
    assert!(puts.iter().all(|p| matches!(p, Put::Ok(_))), "{puts:?}");
}

/// What the resize storm has done, for the nodes that wait for it.
#[derive(Default)]
struct Storm {
    cycles: Mutex<u64>,
    advanced: Condvar,
    done: AtomicBool,
}

impl Storm {
    fn cycles(&self) -> u64 {
        *self.cycles.lock().unwrap()
    }

    fn advance(&self) {
        *self.cycles.lock().unwrap() += 1;
        self.advanced.notify_all();
    }

    /// Blocks until the storm completes a cycle that ends after this call.
    fn wait_for_a_cycle(&self) {
        let cycles = self.cycles.lock().unwrap();
        let from = *cycles;
        let (_cycles, timeout) = self
            .advanced
            .wait_timeout_while(cycles, HANG, |c| *c == from)
            .unwrap();
        assert!(!timeout.timed_out(), "hang: the resize storm stopped");
    }
}

const STORM_FAN_OUT: usize = 4;
const STORM_DEPTH: u32 = 6;
/// 4^0 + 4^1 + ... + 4^6.
const STORM_NODES: usize = (4usize.pow(STORM_DEPTH + 1) - 1) / 3;
/// Nodes at this depth (16 of them) each wait for a storm cycle, holding
/// their worker and their children, still in its slot: the storm is
/// forced to overlap the tree.
const STORM_WAIT_DEPTH: u32 = 2;

fn storm_node(k: usize, depth: u32, ledger: &Arc<Ledger>, storm: &Arc<Storm>) -> WorkRequest {
    let (me, ok, err) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    let storm = Arc::clone(storm);
    WorkRequest::with_context(
        move |cx: &Context<'_>, k: usize| {
            me.start(k);
            if depth < STORM_DEPTH {
                for j in 1..=STORM_FAN_OUT {
                    let child = storm_node(STORM_FAN_OUT * k + j, depth + 1, &me, &storm);
                    cx.put(child).expect("the pool is open");
                }
            }
            if depth == STORM_WAIT_DEPTH {
                storm.wait_for_a_cycle();
            }
            k
        },
        k,
    )
    .on_result(move |_, k| ok.result(k))
    .on_error(move |_, e| err.error(k, e))
    .into()
}

/// A tree of requests (fan-out 4, depth 6) grows while another thread, on
/// another handle, resizes the pool down to 1 and up to 4 and dismisses
/// workers in between, over and over; some nodes hold their worker (and
/// their children, still in its slot) until a storm cycle has passed.
/// Every node runs once and is handled once, and `wait` counts them all.
#[test]
fn a_growing_tree_survives_a_resize_storm() {
    let pool = ThreadPool::new(4);
    let ledger = Ledger::new(STORM_NODES);
    let storm = Arc::new(Storm::default());
    let resizer = pool.new_handle();
    let storm_side = Arc::clone(&storm);
    let storm_thread = thread::spawn(move || {
        while !storm_side.done.load(Ordering::SeqCst) {
            resizer.resize(1).unwrap();
            assert_eq!(resizer.workers(), 1);
            resizer.resize(4).unwrap();
            assert_eq!(resizer.workers(), 4);
            assert_eq!(resizer.dismiss_workers(3), 3);
            resizer.create_workers(1).unwrap();
            assert_eq!(resizer.dismiss_workers(1), 1);
            assert_eq!(resizer.workers(), 1);
            resizer.resize(4).unwrap();
            storm_side.advance();
        }
        resizer
    });
    pool.put_request(storm_node(0, 0, &ledger, &storm)).unwrap();
    let waited = pool.wait_timeout(HANG);
    storm.done.store(true, Ordering::SeqCst);
    let resizer = storm_thread.join().expect("the storm thread panicked");
    assert_eq!(waited, Ok(STORM_NODES));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..STORM_NODES);
    ledger.assert_all_callbacks_on_polling_thread();
    assert!(storm.cycles() >= 1);
    assert_eq!(pool.workers(), 4);
    drop(resizer);
}

// ---------------------------------------------------------------------------
// Shutdown.
// ---------------------------------------------------------------------------

/// The parent's report: how each of its puts went, and the put it tried
/// after the gate opened.
type Report = (Vec<Put>, Put);

/// A parent on a pool that puts `children`, holds on `latch`, then tries
/// to put `late`, and reports both (its result, `ledger` item `me`).
fn holding_parent(
    me: usize,
    ledger: &Arc<Ledger>,
    children: Vec<WorkRequest>,
    late: WorkRequest,
    latch: common::Latch,
    report: mpsc::Sender<Report>,
) -> WorkRequest {
    let (started, ok, err) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    WorkRequest::with_context(
        move |cx: &Context<'_>, (children, late): (Vec<WorkRequest>, WorkRequest)| {
            started.start(me);
            let puts = children.into_iter().map(|c| seen(cx.put(c))).collect();
            latch.hold();
            (puts, seen(cx.put(late)))
        },
        (children, late),
    )
    .on_result(move |_, seen: Report| {
        ok.result(me);
        report.send(seen).unwrap();
    })
    .on_error(move |_, e| err.error(me, e))
    .into()
}

fn assert_all_accepted(puts: &[Put], n: usize) {
    assert_eq!(puts.len(), n);
    assert!(puts.iter().all(|p| matches!(p, Put::Ok(_))), "{puts:?}");
}

/// `shutdown_now` (through a second handle) while the parent is held with
/// 10 children in its worker's slot: its sweep takes them from the slot,
/// each child's error callback hears `Cancelled` exactly once, none ever
/// starts, the
/// parent's own result still arrives, its put after the shutdown is
/// refused with that request, and `pending()` ends at 0.
#[test]
fn shutdown_now_cancels_children_still_in_the_workers_slot() {
    const N: usize = 10;
    const _: () = assert!(N < BATCH);
    let p = ThreadPool::new(1);
    let q = p.new_handle();
    // Children 0..N, the parent N, the late put N + 1.
    let ledger = Ledger::new(N + 2);
    let (gate, latch) = common::gate();
    let (tx, report) = mpsc::channel();
    let children = (0..N).map(|i| ledger.child(i)).collect();
    let late = ledger.child(N + 1);
    let late_id = late.id();
    p.put_request(holding_parent(N, &ledger, children, late, latch, tx))
        .unwrap();
    gate.await_start();
    assert_eq!(p.pending(), N + 1);
    assert_eq!(p.queued(), 0, "the children are still in the worker's slot");
    assert!(q.shutdown_now().is_empty(), "Q had nothing of its own");
    ledger.shutdown_returned.store(true, Ordering::SeqCst);
    assert_eq!(p.pending(), N + 1);
    gate.open();
    assert_eq!(p.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(p.pending(), 0);
    let (puts, late_put) = report.try_recv().unwrap();
    assert_all_accepted(&puts, N);
    assert_eq!(late_put, Put::ShutDown(late_id));
    ledger.assert_ran_once([N]);
    ledger.assert_cancelled_unstarted(0..N);
    // Handed back to the parent, which dropped it: no callback.
    assert_eq!(
        (
            ledger.started(N + 1),
            ledger.results(N + 1),
            ledger.errors(N + 1)
        ),
        (0, 0, vec![])
    );
    assert_eq!(ledger.started_after_shutdown.load(Ordering::SeqCst), 0);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// 200 children, so 3 full batches were handed to the queue before the
/// shutdown and 8 are still in the worker's slot. Three workers: the
/// parent holds one, children 0 and 1 (the first two queued) hold the
/// other two, so the other 190 wait in the queue when `shutdown_now`
/// sweeps it. Exactly children 0 and 1 run (they started before); the 190
/// swept and the 8 in the slot are cancelled, each once; nothing starts
/// after `shutdown_now` returned.
#[test]
fn shutdown_now_after_three_batches_were_handed_off() {
    const N: usize = 200;
    const QUEUED: usize = N / BATCH * BATCH;
    const _: () = assert!(QUEUED == 3 * BATCH && QUEUED < N);
    let p = ThreadPool::new(3);
    let q = p.new_handle();
    // Children 0..N, the parent N, the late put N + 1.
    let ledger = Ledger::new(N + 2);
    let (gate, latch) = common::gate();
    let (g0, l0) = common::gate();
    let (g1, l1) = common::gate();
    let mut latches = [Some(l0), Some(l1)];
    let children = (0..N)
        .map(|i| match latches.get_mut(i).and_then(Option::take) {
            Some(latch) => ledger.child_then(i, move |_| latch.hold()),
            None => ledger.child(i),
        })
        .collect();
    let (tx, report) = mpsc::channel();
    let late = ledger.child(N + 1);
    let late_id = late.id();
    p.put_request(holding_parent(N, &ledger, children, late, latch, tx))
        .unwrap();
    gate.await_start();
    g0.await_start();
    g1.await_start();
    assert_eq!(p.queued(), QUEUED - 2);
    assert_eq!(p.pending(), N + 1);
    assert!(q.shutdown_now().is_empty(), "Q had nothing of its own");
    ledger.shutdown_returned.store(true, Ordering::SeqCst);
    assert_eq!(p.queued(), 0, "swept");
    gate.open();
    g0.open();
    g1.open();
    assert_eq!(p.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(p.pending(), 0);
    let (puts, late_put) = report.try_recv().unwrap();
    assert_all_accepted(&puts, N);
    assert_eq!(late_put, Put::ShutDown(late_id));
    ledger.assert_ran_once([0, 1, N]);
    ledger.assert_cancelled_unstarted(2..N);
    assert_eq!(ledger.started_after_shutdown.load(Ordering::SeqCst), 0);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// The same without holding any child: workers run children while the
/// parent is still putting them, and `shutdown_now` lands at another point
/// in each round (after 0 to 190 children started). Each child ends
/// exactly once, ran or cancelled; every one that started before the
/// shutdown ran to its result; the last 8, held in the parent's slot
/// until a worker runs out of work and queues them, run or are cancelled
/// too, once each; and no more children start after
/// `shutdown_now` returned than there are other workers (each may have
/// taken one just before the pool closed: taking, not starting, is what
/// the shutdown orders).
#[test]
fn shutdown_now_while_children_run_ends_each_exactly_once() {
    const ROUNDS: usize = 20;
    const WORKERS: usize = 4;
    const N: usize = 200;
    const QUEUED: usize = N / BATCH * BATCH;
    for round in 0..ROUNDS {
        let p = ThreadPool::new(WORKERS);
        let q = p.new_handle();
        let ledger = Ledger::new(N + 2);
        let (gate, latch) = common::gate();
        // A little work each, so that some are still queued at the shutdown.
        let children = (0..N)
            .map(|i| {
                ledger.child_then(i, |_| {
                    for _ in 0..20 {
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let (tx, report) = mpsc::channel();
        let late = ledger.child(N + 1);
        let late_id = late.id();
        p.put_request(holding_parent(N, &ledger, children, late, latch, tx))
            .unwrap();
        gate.await_start();
        // Each round shuts down at another point: once at least `early`
        // of the queued children have started (they all would).
        let early = round * (QUEUED - 2) / (ROUNDS - 1);
        until("children to start", || {
            (0..QUEUED).filter(|&i| ledger.started(i) > 0).count() >= early
        });
        assert!(q.shutdown_now().is_empty());
        ledger.shutdown_returned.store(true, Ordering::SeqCst);
        gate.open();
        assert_eq!(p.wait_timeout(HANG), Ok(N + 1), "round {round}");
        assert_eq!(p.pending(), 0, "round {round}");
        let (puts, late_put) = report.try_recv().unwrap();
        assert_all_accepted(&puts, N);
        assert_eq!(late_put, Put::ShutDown(late_id), "round {round}");
        let ran = (0..QUEUED).filter(|&i| ledger.started(i) > 0).count();
        assert!(
            ran >= early,
            "round {round}: {ran} ran, {early} had started"
        );
        for i in 0..N {
            let ended = (ledger.started(i), ledger.results(i), ledger.errors(i));
            assert!(
                ended == (1, 1, vec![]) || ended == (0, 0, vec![TaskError::Cancelled]),
                "round {round}, child {i}: (starts, results, errors) = {ended:?}"
            );
        }
        ledger.assert_ran_once([N]);
        let late_starts = ledger.started_after_shutdown.load(Ordering::SeqCst);
        assert!(
            late_starts < WORKERS,
            "round {round}: {late_starts} children started after shutdown_now returned"
        );
        ledger.assert_all_callbacks_on_polling_thread();
    }
}

/// A graceful `shutdown` (through a second handle) begins while the parent
/// is held: its next `Context::put` is refused with `PutError::ShutDown`,
/// handing the request back (same id; put on another pool, it runs). The
/// [`BATCH`] children it had put before were handed to the queue, and the
/// drain runs them. (Children still in the worker's slot when the drain
/// begins: `a_graceful_shutdown_runs_children_still_in_the_workers_slot`.)
#[test]
fn context_put_after_graceful_shutdown_began_hands_the_request_back() {
    const N: usize = BATCH;
    let p = ThreadPool::new(2);
    let q = p.new_handle();
    // Children 0..N, the parent N, the late put N + 1.
    let ledger = Ledger::new(N + 2);
    let (gate, latch) = common::gate();
    let (back_tx, back) = mpsc::channel();
    let (report_tx, report) = mpsc::channel();
    let children: Vec<WorkRequest> = (0..N).map(|i| ledger.child(i)).collect();
    let late = ledger.child(N + 1);
    let late_id = late.id();
    let (started, ok) = (Arc::clone(&ledger), Arc::clone(&ledger));
    p.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, (children, late): (Vec<WorkRequest>, WorkRequest)| {
                started.start(N);
                let puts: Vec<Put> = children.into_iter().map(|c| seen(cx.put(c))).collect();
                latch.hold();
                let late_put = match cx.put(late) {
                    Err(PutError::ShutDown(request)) => {
                        let id = request.id();
                        back_tx.send(request).unwrap();
                        Put::ShutDown(id)
                    }
                    other => seen(other),
                };
                (puts, late_put)
            },
            (children, late),
        )
        .on_result(move |_, seen: Report| {
            ok.result(N);
            report_tx.send(seen).unwrap();
        }),
    )
    .unwrap();
    gate.await_start();
    let (shut_tx, shut) = mpsc::channel();
    thread::spawn(move || shut_tx.send(q.shutdown()));
    until("the graceful shutdown to begin", || p.is_shut_down());
    assert!(matches!(
        p.put_request(WorkRequest::new(|x: u8| x, 0)),
        Err(PutError::ShutDown(_))
    ));
    gate.open();
    let shut = shut.recv_timeout(HANG).expect("hang: shutdown");
    assert!(shut.is_ok(), "{shut:?}");
    assert_eq!(p.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(p.pending(), 0);
    let (puts, late_put) = report.try_recv().unwrap();
    assert_all_accepted(&puts, N);
    assert_eq!(late_put, Put::ShutDown(late_id));
    ledger.assert_ran_once(0..=N);
    // The request handed back is whole: put elsewhere, it runs.
    let handed_back = back.try_recv().unwrap();
    assert_eq!(handed_back.id(), late_id);
    assert_eq!(ledger.started(N + 1), 0);
    let elsewhere = ThreadPool::new(1);
    elsewhere.put_request(handed_back).unwrap();
    assert_eq!(elsewhere.wait_timeout(HANG), Ok(1));
    ledger.assert_ran_once([N + 1]);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// Children a parent put before a graceful `shutdown` began (each accepted:
/// `Ok(id)`, counted pending) and still in its worker's slot when the
/// drain begins are run by the drain, like any request accepted before it:
/// `shutdown` "lets the workers run everything queued", and
/// `docs/design.md` ("Work that makes work") says that a drain finds every
/// child in the shared queue and that only a batch meeting a *closed* pool
/// is cancelled. The pool here is draining, not closed, and the worker
/// whose slot holds the batch is still alive to drain it.
#[test]
fn a_graceful_shutdown_runs_children_still_in_the_workers_slot() {
    const N: usize = 10;
    const _: () = assert!(N < BATCH);
    let p = ThreadPool::new(1);
    let q = p.new_handle();
    // Children 0..N, the parent N.
    let ledger = Ledger::new(N + 1);
    let (gate, latch) = common::gate();
    let (tx, ids) = mpsc::channel();
    let children = (0..N).map(|i| ledger.child(i)).collect();
    p.put_request(parent_of(N, &ledger, children, latch, tx))
        .unwrap();
    gate.await_start();
    let ids = ids.try_recv().unwrap();
    assert_eq!(ids.len(), N, "every child accepted before the shutdown");
    assert_eq!(p.queued(), 0, "the children are still in the worker's slot");
    let (shut_tx, shut) = mpsc::channel();
    thread::spawn(move || shut_tx.send(q.shutdown()));
    until("the graceful shutdown to begin", || p.is_shut_down());
    gate.open();
    let shut = shut.recv_timeout(HANG).expect("hang: shutdown");
    assert!(shut.is_ok(), "{shut:?}");
    assert_eq!(p.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(p.pending(), 0);
    ledger.assert_ran_once(0..=N);
    ledger.assert_all_callbacks_on_polling_thread();
}

// ---------------------------------------------------------------------------
// Ids and panics.
// ---------------------------------------------------------------------------

/// `Context::put` refuses a user-chosen id already pending on the handle,
/// whether it was put from outside (and is running) or by the same parent
/// (and is still in its worker's slot), handing the request back; the
/// refused requests never run and hear nothing. Once handled, the ids are
/// free again.
#[test]
fn context_put_refuses_a_pending_user_id() {
    let pool = ThreadPool::new(2);
    // 0: id 7, from the test thread, held; 1: id 7 again, by the parent;
    // 2: id 8, by the parent; 3: id 8 again, by the parent; 4: the parent;
    // 5, 6: ids 7 and 8 again, after everything was handled.
    let ledger = Ledger::new(7);
    let (gate, latch) = common::gate();
    pool.put_request(ledger.child_with_id(0, 7, move |_| latch.hold()))
        .unwrap();
    gate.await_start();
    let children = vec![
        ledger.child_with_id(1, 7, |_| {}),
        ledger.child_with_id(2, 8, |_| {}),
        ledger.child_with_id(3, 8, |_| {}),
    ];
    let ids: Vec<RequestId> = children.iter().map(WorkRequest::id).collect();
    assert!(ids.iter().all(|id| id.is_user_chosen()));
    let (tx, seen_puts) = mpsc::channel();
    let (started, ok) = (Arc::clone(&ledger), Arc::clone(&ledger));
    let parent_id = pool
        .put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                    started.start(4);
                    let puts: Vec<Put> = children.into_iter().map(|c| seen(cx.put(c))).collect();
                    tx.send((cx.id(), puts)).unwrap();
                },
                children,
            )
            .with_id(70)
            .on_result(move |_, ()| ok.result(4)),
        )
        .unwrap();
    // Read while request 0 is still held, so id 7 is certainly pending.
    let (cx_id, puts) = seen_puts.recv_timeout(HANG).expect("hang: the parent");
    assert_eq!(cx_id, parent_id, "Context::id is the running request's");
    assert!(parent_id.is_user_chosen() && parent_id.value() == 70);
    assert_eq!(
        puts,
        [
            Put::DuplicateId(ids[0]),
            Put::Ok(ids[1]),
            Put::DuplicateId(ids[2])
        ]
    );
    assert_eq!(ids[0].value(), 7);
    assert_eq!(ids[2].value(), 8);
    gate.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(3));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once([0, 2, 4]);
    for refused in [1, 3] {
        assert_eq!(
            (
                ledger.started(refused),
                ledger.results(refused),
                ledger.errors(refused)
            ),
            (0, 0, vec![]),
            "refused item {refused}"
        );
    }
    pool.put_request(ledger.child_with_id(5, 7, |_| {}))
        .unwrap();
    pool.put_request(ledger.child_with_id(6, 8, |_| {}))
        .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    ledger.assert_ran_once([5, 6]);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// A parent that panics after putting children (one batch handed off
/// while it ran, the rest still in its worker's slot): its error callback
/// hears `Panicked` with its message, and every child still runs once. A
/// fallible parent that returns `Err` after putting children likewise.
#[test]
fn a_parent_that_fails_after_putting_children_keeps_them() {
    common::hide_panics_starting_with(DELIBERATE);
    const N: usize = BATCH + 36;
    let pool = ThreadPool::new(2);

    // Children 0..N, the parent N.
    let ledger = Ledger::new(N + 1);
    let children: Vec<WorkRequest> = (0..N).map(|i| ledger.child(i)).collect();
    let (started, ok, err) = (
        Arc::clone(&ledger),
        Arc::clone(&ledger),
        Arc::clone(&ledger),
    );
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                started.start(N);
                for child in children {
                    cx.put(child).expect("the pool is open");
                }
                panic!("{DELIBERATE} after {N} children");
            },
            children,
        )
        .on_result(move |_, ()| ok.result(N))
        .on_error(move |_, e| err.error(N, e)),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..N);
    assert_eq!(
        (ledger.started(N), ledger.results(N), ledger.errors(N)),
        (
            1,
            0,
            vec![TaskError::Panicked(format!(
                "{DELIBERATE} after {N} children"
            ))]
        )
    );
    ledger.assert_all_callbacks_on_polling_thread();

    let ledger = Ledger::new(N + 1);
    let children: Vec<WorkRequest> = (0..N).map(|i| ledger.child(i)).collect();
    let (tx, failure) = mpsc::channel();
    let (started, ok) = (Arc::clone(&ledger), Arc::clone(&ledger));
    pool.put_request(
        WorkRequest::fallible_with_context(
            move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                started.start(N);
                for child in children {
                    cx.put(child).map_err(|e| format!("{e:?}"))?;
                }
                Err::<(), _>("gave up after its children".to_string())
            },
            children,
        )
        .on_result(move |_, ()| ok.result(N))
        .on_error(move |_, e| tx.send(e).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..N);
    assert_eq!((ledger.started(N), ledger.results(N)), (1, 0));
    assert_eq!(
        failure.try_iter().collect::<Vec<_>>(),
        [TaskError::Failed("gave up after its children".to_string())]
    );
    ledger.assert_all_callbacks_on_polling_thread();
}

// ---------------------------------------------------------------------------
// Dismissal, cancel by id, both queues bounded, shutdown_now on its own handle.
// ---------------------------------------------------------------------------

/// A parent that puts children and holds, on `ledger` item `me`; the
/// children's ids go out on `ids` before it holds.
fn parent_of(
    me: usize,
    ledger: &Arc<Ledger>,
    children: Vec<WorkRequest>,
    latch: common::Latch,
    ids: mpsc::Sender<Vec<RequestId>>,
) -> WorkRequest {
    let (started, ok, err) = (Arc::clone(ledger), Arc::clone(ledger), Arc::clone(ledger));
    WorkRequest::with_context(
        move |cx: &Context<'_>, children: Vec<WorkRequest>| {
            started.start(me);
            let put = children
                .into_iter()
                .map(|c| cx.put(c).expect("the pool is open"))
                .collect();
            ids.send(put).unwrap();
            latch.hold();
        },
        children,
    )
    .on_result(move |_, ()| ok.result(me))
    .on_error(move |_, e| err.error(me, e))
    .into()
}

/// The only worker is dismissed while it runs a parent whose children are
/// still in its slot: it hands them to the queue when the parent returns,
/// before it leaves, so they wait there (`wait` says no worker is left
/// for them, after handling the parent) and the next worker runs them.
#[test]
fn a_dismissed_workers_children_wait_in_the_queue_for_the_next_worker() {
    const N: usize = 10;
    let pool = ThreadPool::new(1);
    // Children 0..N, the parent N.
    let ledger = Ledger::new(N + 1);
    let (gate, latch) = common::gate();
    let (tx, _ids) = mpsc::channel();
    let children = (0..N).map(|i| ledger.child(i)).collect();
    pool.put_request(parent_of(N, &ledger, children, latch, tx))
        .unwrap();
    gate.await_start();
    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!(pool.workers(), 0);
    gate.open();
    let joined = common::within_here("the dismissed worker to leave", || {
        pool.join_all_dismissed_workers()
    });
    assert_eq!(joined, 1);
    assert_eq!(pool.threads(), 0);
    assert_eq!(pool.queued(), N, "handed off before the worker left");
    assert_eq!(pool.pending(), N + 1);
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: N })
    );
    ledger.assert_ran_once([N]);
    assert!((0..N).all(|i| ledger.started(i) == 0));
    pool.create_workers(1).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(N));
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..=N);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// `cancel(id)` reaches a child whether it is queued or still held in its
/// worker's slot: one of the parent's first [`BATCH`] children (handed
/// off, waiting behind the held parent on the only worker) and the last
/// one (still in the slot while the parent runs) are cancelled, each
/// exactly once; every other child runs.
#[test]
fn cancel_by_id_reaches_a_context_child_queued_or_held() {
    const N: usize = BATCH + 1;
    let pool = ThreadPool::new(1);
    let ledger = Ledger::new(N + 1);
    let (gate, latch) = common::gate();
    let (tx, ids) = mpsc::channel();
    let children = (0..N).map(|i| ledger.child(i)).collect();
    pool.put_request(parent_of(N, &ledger, children, latch, tx))
        .unwrap();
    gate.await_start();
    let ids = ids.try_recv().unwrap();
    assert_eq!(pool.queued(), BATCH);
    assert!(pool.cancel(ids[3]), "a queued child");
    assert!(!pool.cancel(ids[3]), "once only");
    assert!(pool.cancel(ids[BATCH]), "a child in the worker's slot");
    assert!(!pool.cancel(ids[BATCH]), "once only");
    gate.open();
    assert_eq!(pool.wait_timeout(HANG), Ok(N + 1));
    assert_eq!(pool.pending(), 0);
    assert_eq!(pool.stats().cancelled, 2);
    ledger.assert_cancelled_unstarted([3, BATCH]);
    ledger.assert_ran_once((0..=N).filter(|&i| i != 3 && i != BATCH));
    ledger.assert_all_callbacks_on_polling_thread();
}

/// One worker, a request queue of 1 and a result queue of 1. The thread
/// that puts a parent (which adds 500 children, past the queue's capacity)
/// goes on putting 100 requests of its own, each of which blocks for room
/// while the worker blocks on the full result queue: the blocked puts
/// handle results to make room, as with plain puts, and everything runs
/// and is handled once, on this thread.
#[test]
fn a_thread_that_puts_and_polls_with_both_queues_bounded_and_children_past_capacity() {
    const N: usize = 500;
    const M: usize = 100;
    let pool = common::one_worker_bounded(1, 1);
    // Children 0..N, the parent N, the test thread's N + 1..N + 1 + M.
    let ledger = Ledger::new(N + 1 + M);
    let children: Vec<WorkRequest> = (0..N).map(|i| ledger.child(i)).collect();
    let (started, ok) = (Arc::clone(&ledger), Arc::clone(&ledger));
    common::within_here("puts and a wait with both queues bounded", || {
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, children: Vec<WorkRequest>| {
                    started.start(N);
                    for child in children {
                        cx.put(child).expect("the pool is open");
                    }
                },
                children,
            )
            .on_result(move |_, ()| ok.result(N)),
        )
        .unwrap();
        for j in N + 1..N + 1 + M {
            pool.put_request(ledger.child(j)).unwrap();
        }
        let waited = pool.wait_timeout(HANG).unwrap();
        assert!(waited <= N + 1 + M);
    });
    assert_eq!(pool.pending(), 0);
    ledger.assert_ran_once(0..N + 1 + M);
    ledger.assert_all_callbacks_on_polling_thread();
}

/// `shutdown_now` on the parent's own handle, while the parent holds 10
/// children in its worker's slot and 3 requests of the handle wait in the
/// queue: it hands back exactly those 13, the queued ones first, whole
/// (they run on another pool). None starts on this pool, and the parent,
/// which returns after the shutdown, finds nothing left to queue.
#[test]
fn shutdown_now_on_the_parents_own_handle_hands_back_what_was_queued_or_held() {
    const N: usize = 10;
    let p = ThreadPool::new(1);
    // To join the worker after P is gone.
    let q = p.new_handle();
    // Children 0..N, the parent N, the queued N + 1..N + 4.
    let ledger = Ledger::new(N + 4);
    let dropped = common::counter();
    let (gate, latch) = common::gate();
    let (tx, ids) = mpsc::channel();
    let children = (0..N)
        .map(|i| {
            let guard = Dropped(Arc::clone(&dropped));
            ledger.child_then(i, move |_| drop(guard))
        })
        .collect();
    p.put_request(parent_of(N, &ledger, children, latch, tx))
        .unwrap();
    gate.await_start();
    let held = ids.try_recv().unwrap();
    let queued: Vec<RequestId> = (N + 1..N + 4)
        .map(|j| p.put_request(ledger.child(j)).unwrap())
        .collect();
    assert_eq!(p.pending(), N + 4);
    assert_eq!(p.queued(), 3, "the children are held, not queued");
    let handed_back = p.shutdown_now();
    ledger.shutdown_returned.store(true, Ordering::SeqCst);
    assert_eq!(
        handed_back.iter().map(WorkRequest::id).collect::<Vec<_>>(),
        queued.iter().chain(&held).copied().collect::<Vec<_>>()
    );
    gate.open();
    let joined = common::within_here("the worker to leave", || q.join_all_dismissed_workers());
    assert_eq!(joined, 1);
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "handed back whole");
    for i in 0..N {
        assert_eq!(
            (ledger.started(i), ledger.results(i), ledger.errors(i)),
            (0, 0, vec![]),
            "child {i}"
        );
    }
    assert_eq!(ledger.started(N), 1);
    assert_eq!(ledger.started_after_shutdown.load(Ordering::SeqCst), 0);
    // The requests handed back are whole.
    ledger.shutdown_returned.store(false, Ordering::SeqCst);
    let elsewhere = ThreadPool::new(1);
    for request in handed_back {
        elsewhere.put_request(request).unwrap();
    }
    assert_eq!(elsewhere.wait_timeout(HANG), Ok(N + 3));
    assert_eq!(dropped.load(Ordering::SeqCst), N, "every child's work ran");
    ledger.assert_ran_once((0..N).chain(N + 1..N + 4));
    ledger.assert_all_callbacks_on_polling_thread();
}

/// A child that waits for a sibling put after it: the pool's other worker
/// runs one of the two, so the waiter hears from its sibling on another
/// thread instead of waiting for a worker that is busy with it. Each ends
/// once (two callbacks; `wait` counts the parent too). Guards any design
/// that keeps children near their parent's worker: they must stay within
/// reach of the idle one, or the waiter times out and this fails.
#[test]
fn a_child_waiting_for_a_sibling_put_after_it_is_not_stuck() {
    for _ in 0..20 {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::channel::<ThreadId>();
        let (done_tx, done) = mpsc::channel::<(&str, ThreadId, bool)>();
        let (waiter_done, sender_done) = (done_tx.clone(), done_tx);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let waiter = WorkRequest::new(
                    move |_: ()| {
                        let heard = rx.recv_timeout(HANG);
                        let me = thread::current().id();
                        (me, heard.is_ok_and(|sender| sender != me))
                    },
                    (),
                )
                .on_result(move |_, (me, heard)| waiter_done.send(("waiter", me, heard)).unwrap());
                let sender = WorkRequest::new(
                    move |_: ()| {
                        let me = thread::current().id();
                        tx.send(me).unwrap();
                        me
                    },
                    (),
                )
                .on_result(move |_, me| sender_done.send(("sender", me, true)).unwrap());
                cx.put(waiter).unwrap();
                cx.put(sender).unwrap();
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait_timeout(HANG), Ok(3));
        let mut ended: Vec<_> = done.try_iter().collect();
        ended.sort_by_key(|(who, ..)| *who);
        assert_eq!(ended.len(), 2, "{ended:?}");
        let [(_, sender, _), (_, waiter, heard)] = [ended[0], ended[1]];
        assert!(
            heard,
            "the waiter never heard from its sibling on another thread"
        );
        assert_ne!(sender, waiter);
    }
}

/// Children accepted while the pool was open, from a parent whose worker
/// was dismissed before a graceful shutdown began, run before the shutdown
/// returns: the parent's worker drains them itself, though the pool's
/// draining workers left when they found the queue empty.
#[test]
fn children_of_a_dismissed_workers_parent_run_when_a_shutdown_began_meanwhile() {
    common::within("children past a drain", || {
        let pool = Arc::new(ThreadPool::new(1));
        let ran = Arc::new(AtomicUsize::new(0));
        let (put_tx, put) = mpsc::channel();
        let (open, gate) = mpsc::channel::<()>();
        let children_ran = Arc::clone(&ran);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, _: ()| {
                for _ in 0..3 {
                    let ran = Arc::clone(&children_ran);
                    cx.put(WorkRequest::new(
                        move |_: ()| {
                            ran.fetch_add(1, Ordering::SeqCst);
                        },
                        (),
                    ))
                    .unwrap();
                }
                put_tx.send(()).unwrap();
                // Held until the drain's workers have left.
                let _ = gate.recv();
            },
            (),
        ))
        .unwrap();
        put.recv_timeout(HANG).unwrap();
        // The parent's worker is dismissed (busy: it leaves after this
        // request), and a new one takes its place.
        pool.resize(0).unwrap();
        pool.resize(1).unwrap();
        let closer = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.close())
        };
        // The new worker drains an empty queue and leaves: only the
        // parent's thread is left.
        while pool.threads() > 1 {
            thread::yield_now();
        }
        drop(open);
        let closed = closer.join().unwrap();
        assert!(closed.is_ok(), "{closed:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 3, "every accepted child ran");
    });
}

/// A child put while another worker sleeps with nothing to do starts while
/// its parent still runs: it is handed to the queue at once. (It waited
/// with its parent's worker until the parent's callable returned, so a parent
/// that waited for it waited for ever, and its deadline ran out with a
/// worker idle.)
#[test]
fn a_child_starts_while_its_parent_runs_when_a_worker_is_idle() {
    let pool = ThreadPool::new(2);
    until("both workers asleep", || pool.stats().idle == 2);
    let (started_tx, started) = mpsc::channel::<()>();
    let (seen_tx, seen) = mpsc::channel::<bool>();
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            cx.put(WorkRequest::new(
                move |_: ()| started_tx.send(()).unwrap(),
                (),
            ))
            .expect("the pool is open");
            seen_tx.send(started.recv_timeout(HANG).is_ok()).unwrap();
        },
        (),
    ))
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    assert_eq!(
        seen.recv(),
        Ok(true),
        "the child started while its parent ran"
    );
}

/// A child put while every other worker is busy is held in its worker's
/// slot; the moment another worker goes idle, that worker queues and runs
/// it, while its parent still runs. Here the parent waits for its child
/// (which it must not do on a pool whose other workers never go idle): a
/// child held until the parent returns would make that wait time out.
/// (Held children waited for their parent's callable, past deadlines, while
/// a worker that had been busy when they were put slept.)
#[test]
fn a_held_child_starts_when_another_worker_goes_idle_while_its_parent_runs() {
    let pool = ThreadPool::new(2);
    let (gate, latch) = common::gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    gate.await_start();
    let (put_tx, put) = mpsc::channel::<()>();
    let (ran_tx, ran) = mpsc::channel::<ThreadId>();
    let (seen_tx, seen) = mpsc::channel::<(ThreadId, Option<ThreadId>)>();
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            cx.put(WorkRequest::new(
                move |_: ()| ran_tx.send(thread::current().id()).unwrap(),
                (),
            ))
            .expect("the pool is open");
            put_tx.send(()).unwrap();
            let child = ran.recv_timeout(HANG).ok();
            seen_tx.send((thread::current().id(), child)).unwrap();
        },
        (),
    ))
    .unwrap();
    put.recv_timeout(HANG).expect("the parent put its child");
    assert_eq!(pool.queued(), 0, "the child is held, not queued");
    // The other worker ends its request, finds the queue empty, and looks
    // in the slots before it sleeps.
    gate.open();
    let (parent, child) = seen.recv_timeout(HANG * 2).unwrap();
    let child = child.expect("the child ran while its parent waited");
    assert_ne!(child, parent, "run by the other worker");
    assert_eq!(pool.wait_timeout(HANG), Ok(3));
    assert_eq!(pool.stats().completed, 3);
}

/// `cancel(id)` finds a child on its way from its worker's slot to the
/// queue: while the caller looks through a long queue, the parent puts
/// its 64th child, which hands the slot (with the child looked for) to
/// the queue. Every worker stays busy, so the child cannot start: `cancel`
/// must say `true` every round. (It looked in the queue, then the slots,
/// and missed a child moved between the two looks: a trial saw 105
/// misses in 300 rounds.) Over rounds, the 64th child comes at a
/// different moment of the look.
#[test]
fn cancel_finds_a_child_handed_to_the_queue_while_it_looks() {
    const ROUNDS: u64 = 30;
    const FILLERS: usize = 20_000;
    for round in 0..ROUNDS {
        let delay = Duration::from_micros(round * 50);
        let pool = ThreadPool::new(2);
        let (gate, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        gate.await_start();
        let (go_tx, go) = mpsc::channel::<()>();
        let (id_tx, id_rx) = mpsc::channel::<RequestId>();
        let (release_tx, release) = mpsc::channel::<()>();
        let started = Arc::new(AtomicBool::new(false));
        let x_started = Arc::clone(&started);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                go.recv_timeout(HANG).expect("the fillers are queued");
                let id = cx
                    .put(WorkRequest::new(
                        move |_: ()| x_started.store(true, Ordering::SeqCst),
                        (),
                    ))
                    .unwrap();
                id_tx.send(id).unwrap();
                let spin = Instant::now();
                while spin.elapsed() < delay {
                    std::hint::spin_loop();
                }
                for _ in 1..BATCH {
                    cx.put(WorkRequest::new(|_: ()| {}, ())).unwrap();
                }
                // Busy until the round is checked: the child cannot start.
                let _ = release.recv_timeout(HANG);
            },
            (),
        ))
        .unwrap();
        for _ in 0..FILLERS {
            pool.put_request(WorkRequest::new(|_: ()| {}, ())).unwrap();
        }
        go_tx.send(()).unwrap();
        let id = id_rx.recv_timeout(HANG).unwrap();
        let cancelled = pool.cancel(id);
        assert!(!started.load(Ordering::SeqCst));
        assert!(cancelled, "round {round}: the child was pending, unstarted");
        release_tx.send(()).unwrap();
        gate.open();
        // The blocker, the parent, the fillers and every child (the
        // cancelled one too: its error callback was handled).
        assert_eq!(pool.wait_timeout(HANG), Ok(FILLERS + 2 + BATCH));
        assert!(!started.load(Ordering::SeqCst), "a cancelled child ran");
        assert_eq!(pool.stats().cancelled, 1);
    }
}

/// `cancel_queued` cancels every request of its handle that no worker has
/// started, queued ones and the children a running callable holds alike:
/// none runs, each error callback hears `Cancelled` once, and the count
/// returned is exact. Another handle's requests and the running parent go
/// on, and the handle takes puts afterwards.
#[test]
fn cancel_queued_cancels_queued_requests_and_held_children_and_nothing_else() {
    const QUEUED: u64 = 10;
    const CHILDREN: u64 = 20;
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let counted = {
        let (ran, cancelled) = (Arc::clone(&ran), Arc::clone(&cancelled));
        move |id: u64| {
            let (ran, cancelled) = (Arc::clone(&ran), Arc::clone(&cancelled));
            WorkRequest::new(
                move |_: ()| {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .with_id(id)
            .on_error(move |rid, e| {
                assert_eq!(e, TaskError::Cancelled);
                cancelled.lock().unwrap().push(rid.value());
            })
        }
    };
    let (children_put_tx, children_put) = mpsc::channel();
    let (open, gate) = mpsc::channel::<()>();
    let parent_counted = counted.clone();
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            for id in 1..=CHILDREN {
                cx.put(parent_counted(1_000 + id)).unwrap();
            }
            children_put_tx.send(()).unwrap();
            gate.recv_timeout(HANG).unwrap();
        },
        (),
    ))
    .unwrap();
    children_put.recv_timeout(HANG).unwrap();
    for id in 1..=QUEUED {
        pool.put_request(counted(id)).unwrap();
    }
    let theirs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&theirs);
    other
        .put_request(WorkRequest::new(|x: u8| x, 1).on_result(move |_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    assert_eq!(pool.cancel_queued(), (QUEUED + CHILDREN) as usize);
    assert_eq!(pool.cancel_queued(), 0, "nothing left to cancel");
    open.send(()).unwrap();
    assert_eq!(
        pool.wait_timeout(HANG),
        Ok(1 + (QUEUED + CHILDREN) as usize)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no cancelled request ran");
    let mut heard = cancelled.lock().unwrap().clone();
    heard.sort_unstable();
    let expected: Vec<u64> = (1..=QUEUED)
        .chain((1..=CHILDREN).map(|id| 1_000 + id))
        .collect();
    assert_eq!(heard, expected, "each heard Cancelled exactly once");
    assert_eq!(other.wait_timeout(HANG), Ok(1));
    assert_eq!(
        theirs.load(Ordering::SeqCst),
        1,
        "the other handle's request ran"
    );
    pool.put_request(counted(99)).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "a put after it runs");
}

/// `cancel_queued`, called from a result callback that `wait` runs,
/// cancels the queued members of a batch: each error callback hears
/// `Cancelled` once, the batch's progress counts them cancelled and its
/// batch-done callback runs once, the running requests go on, and
/// `wait`'s count and `stats().cancelled` are exact.
#[test]
fn cancel_queued_from_a_callback_cancels_a_batchs_members_and_the_batch_ends() {
    const MEMBERS: u32 = 10;
    let outcome = common::within("cancel_queued from a callback", || {
        let pool = ThreadPool::new(2);
        let (open_tx, open) = mpsc::channel::<()>();
        let open = Arc::new(Mutex::new(open));
        let (cancelled_tx, cancelled) = mpsc::channel();
        let weak = pool.downgrade();
        // Runs first; its callback, run by `wait` below, cancels.
        let opener = Mutex::new(Some(open_tx));
        pool.put_request(WorkRequest::new(|_: ()| (), ()).on_result(move |_, ()| {
            let handle = weak.upgrade().expect("the handle is alive");
            cancelled_tx.send(handle.cancel_queued()).unwrap();
            drop(opener.lock().unwrap().take());
        }))
        .unwrap();
        let (started_tx, started) = mpsc::channel();
        for _ in 0..2 {
            let (open, started_tx) = (Arc::clone(&open), started_tx.clone());
            pool.put_request(WorkRequest::new(
                move |_: ()| {
                    started_tx.send(()).unwrap();
                    let _ = open.lock().unwrap().recv();
                },
                (),
            ))
            .unwrap();
        }
        // Both workers hold a gated request; the first request has ended.
        started.recv_timeout(HANG).unwrap();
        started.recv_timeout(HANG).unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let results = Arc::new(AtomicUsize::new(0));
        let (e, r) = (Arc::clone(&errors), Arc::clone(&results));
        let batch = pool
            .put_batch(callpool::make_requests(
                |n: u32| n,
                0..MEMBERS,
                move |_, _| {
                    r.fetch_add(1, Ordering::SeqCst);
                },
                move |_, err| e.lock().unwrap().push(err),
            ))
            .unwrap();
        let done = Arc::new(Mutex::new(Vec::new()));
        let d = Arc::clone(&done);
        batch.on_done(move |progress| d.lock().unwrap().push(progress));
        let waited = pool.wait();
        let progress = batch.progress();
        let stats = pool.stats();
        let done = done.lock().unwrap().clone();
        let errors = errors.lock().unwrap().clone();
        (
            waited,
            cancelled.try_iter().collect::<Vec<_>>(),
            (progress.done, progress.cancelled),
            done.iter()
                .map(|p| (p.done, p.cancelled))
                .collect::<Vec<_>>(),
            errors,
            results.load(Ordering::SeqCst),
            stats.cancelled,
        )
    });
    let (waited, cancelled, progress, done, errors, results, stats_cancelled) = outcome;
    assert_eq!(cancelled, vec![MEMBERS as usize]);
    assert_eq!(waited, Ok(3 + MEMBERS as usize));
    assert_eq!(progress, (0, MEMBERS as usize));
    assert_eq!(done, vec![(0, MEMBERS as usize)]);
    assert_eq!(errors, vec![TaskError::Cancelled; MEMBERS as usize]);
    assert_eq!(results, 0);
    assert_eq!(stats_cancelled, u64::from(MEMBERS));
}
