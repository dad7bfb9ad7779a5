//! State-machine property tests: random sequences of operations on a pool
//! with two handles, checked against a simple model after every step.
//!
//! Each case builds a pool (0-3 workers; request queue unbounded or 2;
//! result queues unbounded or 1), then runs 1-40 operations on handle `A`
//! (and, when result queues are unbounded, on a second handle `B`): puts of
//! requests that succeed, panic, fail, sleep a little, or whose result
//! callback panics; puts reusing a pending id; poll, wait, create, dismiss,
//! resize, join; then `shutdown`, `shutdown_now` or dropping both handles.
//! After every step:
//!
//! * `workers()` and `pending()` (both handles) equal the model's;
//! * with no thread left, `queued()` is exactly the pending requests that
//!   never started;
//! * every callback that ran, ran once, on this (the polling) thread, for a
//!   pending request of the right handle, with the outcome its kind implies;
//! * `poll` and `wait` return the number of callbacks they ran.
//!
//! At the end every request has ended exactly once: a result, an error
//! (`Failed` or `Panicked`), a cancellation, handed back (a put error, or
//! `shutdown`/`shutdown_now`), or discarded with its handle (then it must
//! have started, or the whole pool was dropped); and every request's box has
//! been freed (nothing leaked, nothing still held by the pool).
//!
//! Slow requests only sleep a few milliseconds; no check depends on when
//! they finish: where timing decides (which requests a dismissed worker took
//! before leaving) the model accepts each outcome but still checks the
//! accounting. Timeouts (30 s) only turn a hang into a failure.
//!
//! 256 cases from a fixed seed (`CALLPOOL_PROPTEST_SEED` to change it); no
//! failure-persistence files.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use callpool::{
    PollError, PutError, RequestId, ShutdownError, TaskError, ThreadPool, WaitError, WorkRequest,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};

mod common;
use common::HANG;

/// The marker of every deliberate panic, which the quiet hook silences.
const DELIBERATE: &str = "props: deliberate";

fn quiet_panics() {
    common::hide_panics_starting_with(DELIBERATE);
}

/// Turns a hang in an operation that has no timeout of its own (a blocking
/// put, a join, a drop) into a failure: if no step finishes for [`HANG`]
/// and a bit, prints the step and aborts the test process.
fn watchdog_step(what: impl FnOnce() -> String) {
    static STEP: Mutex<Option<(Instant, String)>> = Mutex::new(None);
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        thread::spawn(|| loop {
            thread::sleep(Duration::from_secs(1));
            let step = STEP.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((since, what)) = &*step {
                if since.elapsed() > HANG + Duration::from_secs(30) {
                    eprintln!(
                        "props: hang: no progress for {:?} in step {what}",
                        since.elapsed()
                    );
                    std::process::abort();
                }
            }
        });
    });
    *STEP.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), what()));
}

fn is_deliberate(payload: &(dyn std::any::Any + Send)) -> bool {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .is_some_and(|m| m.starts_with(DELIBERATE))
}

// ---------------------------------------------------------------------------
// Operations.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ok,
    Panics,
    Fails,
    /// Sleeps this many milliseconds, then succeeds.
    Slow(u8),
    /// Succeeds; its result callback panics.
    CallbackPanics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    A,
    B,
}

#[derive(Clone, Debug)]
enum Op {
    Put(Side, Kind, bool),
    /// A put reusing the user id of the `n`-th pending request of `A`.
    PutDuplicate(usize),
    Poll(Side),
    Wait(Side),
    Create(usize),
    Dismiss(usize),
    Resize(usize),
    JoinDismissed,
}

#[derive(Clone, Copy, Debug)]
enum End {
    Shutdown,
    ShutdownNow,
    DropBoth,
}

#[derive(Clone, Debug)]
struct Scenario {
    workers: usize,
    queue_capacity: usize,
    result_capacity: usize,
    ops: Vec<Op>,
    end: End,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Ok),
        2 => Just(Kind::Panics),
        2 => Just(Kind::Fails),
        1 => (1u8..=3).prop_map(Kind::Slow),
        1 => Just(Kind::CallbackPanics),
    ]
}

/// With unbounded result queues, ops on a second handle `B` and
/// `join_all_dismissed_workers` join in. With a bounded one, neither: one
/// thread polls both handles here, so workers stuck on `B`'s full queue
/// would starve `A`, and joining a dismissed worker stuck on `A`'s full
/// queue never returns (`tests/faults.rs`, `docs/reliability.md`).
fn op(unbounded_results: bool) -> BoxedStrategy<Op> {
    let a_ops = prop_oneof![
        6 => (kind(), any::<bool>()).prop_map(|(k, user)| Op::Put(Side::A, k, user)),
        1 => (0usize..4).prop_map(Op::PutDuplicate),
        2 => Just(Op::Poll(Side::A)),
        2 => Just(Op::Wait(Side::A)),
        2 => (0usize..=3).prop_map(Op::Create),
        2 => (0usize..=4).prop_map(Op::Dismiss),
        2 => (0usize..=4).prop_map(Op::Resize),
    ];
    if !unbounded_results {
        return a_ops.boxed();
    }
    prop_oneof![
        17 => a_ops,
        1 => Just(Op::JoinDismissed),
        3 => (kind(), any::<bool>()).prop_map(|(k, user)| Op::Put(Side::B, k, user)),
        1 => Just(Op::Poll(Side::B)),
        1 => Just(Op::Wait(Side::B)),
    ]
    .boxed()
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        0usize..=3,
        prop_oneof![Just(0usize), Just(2)],
        prop_oneof![Just(0usize), Just(1)],
    )
        .prop_flat_map(|(workers, queue_capacity, result_capacity)| {
            let unbounded_results = result_capacity == 0;
            let end = prop_oneof![
                Just(End::Shutdown),
                Just(End::ShutdownNow),
                Just(End::DropBoth)
            ];
            (prop::collection::vec(op(unbounded_results), 1..40), end).prop_map(
                move |(ops, end)| Scenario {
                    workers,
                    queue_capacity,
                    result_capacity,
                    ops,
                    end,
                },
            )
        })
}

// ---------------------------------------------------------------------------
// What the requests record.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Result(u64),
    Failed,
    Panicked,
    Cancelled,
}

struct Event {
    label: u64,
    id: RequestId,
    outcome: Outcome,
    thread: ThreadId,
}

#[derive(Clone, Default)]
struct Records {
    /// Every callback that ran, in order.
    events: Arc<Mutex<Vec<Event>>>,
    /// Labels of the requests whose callable started.
    started: Arc<Mutex<BTreeSet<u64>>>,
    /// Held by every request's callable and callbacks: when only this one
    /// is left, the pool holds no request any more.
    token: Arc<()>,
}

impl Records {
    fn record(&self, label: u64, id: RequestId, outcome: Outcome) {
        self.events.lock().unwrap().push(Event {
            label,
            id,
            outcome,
            thread: thread::current().id(),
        });
    }

    fn request(&self, label: u64, kind: Kind, user_id: Option<u64>) -> WorkRequest {
        let (started, token) = (self.started.clone(), self.token.clone());
        let (on_result, on_error) = (self.clone(), self.clone());
        let request = WorkRequest::fallible(
            move |x: u64| -> Result<u64, String> {
                let _held = &token;
                started.lock().unwrap().insert(x);
                match kind {
                    Kind::Ok | Kind::CallbackPanics => Ok(x * 2),
                    Kind::Fails => Err(format!("failed {x}")),
                    Kind::Panics => panic!("{DELIBERATE} panic in request {x}"),
                    Kind::Slow(ms) => {
                        thread::sleep(Duration::from_millis(ms.into()));
                        Ok(x * 2)
                    }
                }
            },
            label,
        )
        .on_result(move |id, value| {
            on_result.record(label, id, Outcome::Result(value));
            if kind == Kind::CallbackPanics {
                panic!("{DELIBERATE} panic in the result callback of {label}");
            }
        })
        .on_error(move |id, err| {
            let outcome = match err {
                TaskError::Failed(_) => Outcome::Failed,
                TaskError::Panicked(_) => Outcome::Panicked,
                TaskError::Cancelled => Outcome::Cancelled,
                other => panic!("an outcome this model does not make: {other:?}"),
            };
            on_error.record(label, id, outcome);
        });
        match user_id {
            Some(id) => request.with_id(id).into(),
            None => request.into(),
        }
    }
}

// ---------------------------------------------------------------------------
// The model.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Called,
    HandedBack,
    /// Dropped by a put whose blocked wait ran a panicking callback.
    DroppedByPut,
    /// Discarded with its handle (`shutdown_now`, a panic out of
    /// `shutdown`, or dropping the pool).
    Discarded,
    /// Left queued, never run nor cancelled, while its handle lives: only
    /// after a result callback panicked out of another handle's `shutdown`
    /// (a library bug, `tests/faults.rs`,
    /// `shutdown_interrupted_by_a_panicking_callback_strands_other_handles`).
    Stranded,
}

struct Req {
    side: Side,
    kind: Kind,
    id: RequestId,
    fate: Option<Fate>,
}

struct Model {
    scenario_queue_bounded: bool,
    workers: usize,
    reqs: BTreeMap<u64, Req>,
    next_label: u64,
    seen_events: usize,
    main: ThreadId,
    /// After the end operation: cancellations are allowed.
    closed: bool,
}

impl Model {
    fn pending(&self, side: Side) -> BTreeSet<u64> {
        self.reqs
            .iter()
            .filter(|(_, r)| r.side == side && r.fate.is_none())
            .map(|(&l, _)| l)
            .collect()
    }

    fn label_of(&self, id: RequestId, side: Side) -> u64 {
        let matches: Vec<u64> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.id == id && r.side == side && r.fate.is_none())
            .map(|(&l, _)| l)
            .collect();
        assert_eq!(
            matches.len(),
            1,
            "request {id:?} handed back is not pending once"
        );
        matches[0]
    }

    fn end(&mut self, label: u64, fate: Fate) {
        let req = self.reqs.get_mut(&label).expect("unknown request");
        assert_eq!(req.fate, None, "request {label} ended twice: {fate:?}");
        req.fate = Some(fate);
    }

    /// Takes in the callbacks that ran since the last step; returns how
    /// many per side.
    fn absorb(&mut self, records: &Records) -> BTreeMap<Side, usize> {
        let events = records.events.lock().unwrap();
        let mut per_side = BTreeMap::from([(Side::A, 0), (Side::B, 0)]);
        for event in &events[self.seen_events..] {
            assert_eq!(event.thread, self.main, "a callback ran on another thread");
            let req = self
                .reqs
                .get(&event.label)
                .expect("callback of an unknown request");
            assert_eq!(event.id, req.id, "callback got the wrong id");
            let expected_ok = match req.kind {
                Kind::Ok | Kind::Slow(_) | Kind::CallbackPanics => {
                    event.outcome == Outcome::Result(event.label * 2)
                }
                Kind::Fails => event.outcome == Outcome::Failed,
                Kind::Panics => event.outcome == Outcome::Panicked,
            };
            let cancelled_ok =
                event.outcome == Outcome::Cancelled && self.closed && req.side == Side::B;
            assert!(
                expected_ok || cancelled_ok,
                "request {} of kind {:?} ended as {:?}",
                event.label,
                req.kind,
                event.outcome
            );
            *per_side.get_mut(&req.side).unwrap() += 1;
            let label = event.label;
            self.end(label, Fate::Called);
        }
        self.seen_events = events.len();
        per_side
    }
}

/// Polls `cond` until it holds; panics (a hang) after [`HANG`].
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "hang: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// Running one scenario.
// ---------------------------------------------------------------------------

fn run(s: &Scenario) {
    let records = Records::default();
    let a = ThreadPool::builder()
        .workers(s.workers)
        .queue_capacity(s.queue_capacity)
        .result_capacity(s.result_capacity)
        .build()
        .expect("pool");
    let b = a.new_handle();
    let mut m = Model {
        scenario_queue_bounded: s.queue_capacity > 0,
        workers: s.workers,
        reqs: BTreeMap::new(),
        next_label: 1,
        seen_events: 0,
        main: thread::current().id(),
        closed: false,
    };
    let handle = |side: Side| if side == Side::A { &a } else { &b };

    for (i, op) in s.ops.iter().enumerate() {
        watchdog_step(|| format!("{i} ({op:?}) of {s:?}"));
        match *op {
            Op::Put(side, kind, user) => {
                let label = m.next_label;
                m.next_label += 1;
                let request = records.request(label, kind, user.then_some(label));
                put(&mut m, handle(side), side, label, kind, request);
            }
            Op::PutDuplicate(n) => {
                let pending_user: Vec<(u64, RequestId)> = m
                    .reqs
                    .iter()
                    .filter(|(_, r)| r.side == Side::A && r.fate.is_none() && r.id.is_user_chosen())
                    .map(|(&l, r)| (l, r.id))
                    .collect();
                if pending_user.is_empty() {
                    continue;
                }
                let (_, id) = pending_user[n % pending_user.len()];
                let label = m.next_label;
                m.next_label += 1;
                let request = records.request(label, Kind::Ok, Some(id.value()));
                m.reqs.insert(
                    label,
                    Req {
                        side: Side::A,
                        kind: Kind::Ok,
                        id,
                        fate: None,
                    },
                );
                match a.put_request(request) {
                    Err(PutError::DuplicateId(r)) => {
                        assert_eq!(r.id(), id);
                        m.end(label, Fate::HandedBack);
                    }
                    other => panic!("a duplicate id was not refused: {other:?}"),
                }
            }
            Op::Poll(side) => {
                let pending_before = m.pending(side).len();
                let got = panic::catch_unwind(AssertUnwindSafe(|| handle(side).poll()));
                let ran = m.absorb(&records)[&side];
                match got {
                    Ok(Ok(n)) => assert_eq!(n, ran, "poll's count"),
                    Ok(Err(PollError::NoResultsPending)) => assert_eq!(pending_before, 0),
                    Ok(Err(e)) => panic!("poll: {e}"),
                    Err(payload) => assert!(is_deliberate(&*payload), "poll panicked"),
                }
            }
            Op::Wait(side) => {
                let got = panic::catch_unwind(AssertUnwindSafe(|| handle(side).wait_timeout(HANG)));
                let ran = m.absorb(&records)[&side];
                let pool = handle(side);
                match got {
                    Ok(Ok(n)) => {
                        assert_eq!(n, ran, "wait's count");
                        assert_eq!(pool.pending(), 0);
                    }
                    Ok(Err(WaitError::NoWorkersAvailable { pending })) => {
                        assert_eq!(m.workers, 0, "NoWorkersAvailable with live workers");
                        assert_eq!(pending, m.pending(side).len());
                        assert_eq!(pool.threads(), 0);
                    }
                    Ok(Err(e)) => panic!("wait: {e}"),
                    Err(payload) => assert!(is_deliberate(&*payload), "wait panicked"),
                }
            }
            Op::Create(n) => {
                a.create_workers(n).expect("create_workers");
                m.workers += n;
            }
            Op::Dismiss(n) => {
                assert_eq!(a.dismiss_workers(n), n.min(m.workers));
                m.workers -= n.min(m.workers);
            }
            Op::Resize(n) => {
                a.resize(n).expect("resize");
                m.workers = n;
            }
            Op::JoinDismissed => {
                a.join_all_dismissed_workers();
                assert_eq!(
                    a.threads(),
                    m.workers,
                    "threads after joining the dismissed"
                );
            }
        }
        check_counts(&mut m, &records, &a, &b);
    }

    // The end.
    watchdog_step(|| format!("the end ({:?}) of {s:?}", s.end));
    m.closed = true;
    match s.end {
        End::Shutdown => {
            let got = panic::catch_unwind(AssertUnwindSafe(move || a.shutdown_timeout(HANG)));
            m.absorb(&records);
            let mut interrupted = false;
            match got {
                Ok(Ok(())) => {}
                Ok(Err(ShutdownError::Unrun(requests))) => {
                    assert!(!requests.is_empty());
                    assert_eq!(m.workers, 0, "requests unrun with live workers");
                    for r in requests {
                        let label = m.label_of(r.id(), Side::A);
                        assert!(!records.started.lock().unwrap().contains(&label));
                        m.end(label, Fate::HandedBack);
                    }
                }
                Ok(Err(e)) => panic!("shutdown: {e}"),
                Err(payload) => {
                    // A result callback panicked out of shutdown; the
                    // handle is gone and its other outcomes with it.
                    assert!(is_deliberate(&*payload), "shutdown panicked");
                    for label in m.pending(Side::A) {
                        m.end(label, Fate::Discarded);
                    }
                    interrupted = true;
                }
            }
            assert_eq!(
                m.pending(Side::A),
                BTreeSet::new(),
                "shutdown left requests of A"
            );
            finish_b(&mut m, &records, b, interrupted);
        }
        End::ShutdownNow => {
            let requests = a.shutdown_now();
            m.absorb(&records);
            for r in requests {
                let label = m.label_of(r.id(), Side::A);
                m.end(label, Fate::HandedBack);
            }
            let running = m.pending(Side::A);
            for &label in &running {
                m.end(label, Fate::Discarded);
            }
            finish_b(&mut m, &records, b, false);
            // Every request of A that was not handed back had started.
            let started = records.started.lock().unwrap();
            for label in running {
                assert!(
                    started.contains(&label),
                    "request {label} neither ran nor came back"
                );
            }
        }
        End::DropBoth => {
            drop(a);
            drop(b);
            for side in [Side::A, Side::B] {
                for label in m.pending(side) {
                    m.end(label, Fate::Discarded);
                }
            }
        }
    }

    // Nothing leaked: every request's box was freed.
    eventually("request boxes freed", || {
        Arc::strong_count(&records.token) == 1
    });
    let leftover: Vec<u64> = m
        .reqs
        .iter()
        .filter(|(_, r)| r.fate.is_none())
        .map(|(&l, _)| l)
        .collect();
    assert_eq!(leftover, Vec::<u64>::new(), "requests that never ended");
    assert_eq!(
        records.events.lock().unwrap().len(),
        m.seen_events,
        "a callback ran after its handle was gone"
    );
}

fn put(m: &mut Model, pool: &ThreadPool, side: Side, label: u64, kind: Kind, request: WorkRequest) {
    let id = request.id();
    m.reqs.insert(
        label,
        Req {
            side,
            kind,
            id,
            fate: None,
        },
    );
    let got = panic::catch_unwind(AssertUnwindSafe(|| pool.put_request(request)));
    m.absorb_put(label, id, got);
}

impl Model {
    fn absorb_put(
        &mut self,
        label: u64,
        id: RequestId,
        got: std::thread::Result<Result<RequestId, PutError>>,
    ) {
        match got {
            Ok(Ok(got_id)) => assert_eq!(got_id, id),
            Ok(Err(PutError::NoWorkers(r))) => {
                assert!(
                    self.scenario_queue_bounded,
                    "NoWorkers on an unbounded queue"
                );
                assert_eq!(self.workers, 0, "NoWorkers with live workers");
                assert_eq!(r.id(), id);
                self.end(label, Fate::HandedBack);
            }
            Ok(Err(e)) => panic!("put: {e}"),
            Err(payload) => {
                // A callback run while the put waited for room panicked: the
                // request being put was dropped.
                assert!(is_deliberate(&*payload), "put panicked");
                self.end(label, Fate::DroppedByPut);
            }
        }
    }
}

fn check_counts(m: &mut Model, records: &Records, a: &ThreadPool, b: &ThreadPool) {
    m.absorb(records);
    assert_eq!(a.workers(), m.workers, "workers()");
    assert_eq!(b.workers(), m.workers, "workers() on the other handle");
    assert_eq!(a.pending(), m.pending(Side::A).len(), "pending() of A");
    assert_eq!(b.pending(), m.pending(Side::B).len(), "pending() of B");
    if a.threads() == 0 {
        // No thread: nothing runs, so the pending requests that never
        // started are exactly the queued ones.
        let started = records.started.lock().unwrap();
        let unstarted = m
            .reqs
            .iter()
            .filter(|(l, r)| r.fate.is_none() && !started.contains(l))
            .count();
        assert_eq!(a.queued(), unstarted, "queued() with no thread left");
    }
}

/// After `A` shut the pool down: `B`'s requests all end (run, or cancelled
/// when swept), then every thread exits.
///
/// `shutdown_interrupted`: a result callback panicked out of `A`'s
/// `shutdown`, which then never closed the pool nor swept it. `B`'s queued
/// requests are then stranded (a library bug, see `Fate::Stranded`); this
/// accepts that outcome, exactly: it must be every unstarted one of `B`.
fn finish_b(m: &mut Model, records: &Records, b: ThreadPool, shutdown_interrupted: bool) {
    // Each panicking result callback passes out of `wait`; the next `wait`
    // carries on with the rest.
    for _ in 0..=m.pending(Side::B).len() {
        let got = panic::catch_unwind(AssertUnwindSafe(|| b.wait_timeout(HANG)));
        let ran = m.absorb(records)[&Side::B];
        match got {
            Ok(Ok(n)) => {
                assert_eq!(n, ran);
                break;
            }
            Ok(Err(WaitError::NoWorkersAvailable { pending })) if shutdown_interrupted => {
                let started = records.started.lock().unwrap().clone();
                let stranded: Vec<u64> = m
                    .pending(Side::B)
                    .into_iter()
                    .filter(|l| !started.contains(l))
                    .collect();
                assert_eq!(pending, stranded.len());
                assert_eq!(pending, m.pending(Side::B).len());
                // Still queued: these, and `A`'s unstarted ones (gone with
                // `A`, never swept either).
                let a_unstarted = m
                    .reqs
                    .iter()
                    .filter(|(l, r)| {
                        r.side == Side::A && r.fate == Some(Fate::Discarded) && !started.contains(l)
                    })
                    .count();
                assert_eq!(b.queued(), pending + a_unstarted);
                for label in stranded {
                    m.end(label, Fate::Stranded);
                }
                break;
            }
            Ok(Err(e)) => panic!("wait on B after shutdown: {e}"),
            Err(payload) => assert!(is_deliberate(&*payload), "wait on B panicked"),
        }
    }
    assert_eq!(
        m.pending(Side::B),
        BTreeSet::new(),
        "B's requests did not all end"
    );
    let stranded = m
        .reqs
        .values()
        .filter(|r| r.fate == Some(Fate::Stranded))
        .count();
    assert_eq!(b.pending(), stranded);
    eventually("every worker thread exits", || b.threads() == 0);
    drop(b);
}

#[test]
fn random_operation_sequences_match_the_model() {
    quiet_panics();
    // A seed that does not parse is an error, not the default seed: that
    // would run the usual cases while the caller believes others ran.
    let seed: u64 = match std::env::var("CALLPOOL_PROPTEST_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("CALLPOOL_PROPTEST_SEED={s:?} is not a u64: {e}")),
        Err(std::env::VarError::NotPresent) => 0x5eed_ca11_b001,
        Err(e) => panic!("CALLPOOL_PROPTEST_SEED: {e}"),
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let result = runner.run(&scenario(), |s| {
        run(&s);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Two handles, joins, and a graceful shutdown with the other handle's
/// requests drained.
#[test]
fn a_fixed_sequence_with_two_handles_matches_the_model() {
    quiet_panics();
    let s = Scenario {
        workers: 2,
        queue_capacity: 0,
        result_capacity: 0,
        ops: vec![
            Op::Put(Side::B, Kind::Ok, true),
            Op::Put(Side::A, Kind::Slow(3), true),
            Op::Put(Side::B, Kind::Panics, false),
            Op::Dismiss(2),
            Op::JoinDismissed,
            Op::Put(Side::A, Kind::Fails, false),
            Op::Put(Side::B, Kind::Ok, false),
            Op::Wait(Side::A),
            Op::Create(1),
            Op::Poll(Side::B),
            Op::Put(Side::A, Kind::CallbackPanics, true),
            Op::Resize(3),
            Op::JoinDismissed,
        ],
        end: End::ShutdownNow,
    };
    run(&s);
}

/// The model's own bookkeeping, on a fixed sequence, so a mistake in the
/// model shows up as a plain test failure rather than a shrunk case.
#[test]
fn a_fixed_sequence_matches_the_model() {
    quiet_panics();
    let s = Scenario {
        workers: 1,
        queue_capacity: 2,
        result_capacity: 1,
        ops: vec![
            Op::Put(Side::A, Kind::Ok, true),
            Op::Put(Side::A, Kind::Panics, false),
            Op::Put(Side::A, Kind::Fails, true),
            Op::PutDuplicate(0),
            Op::Wait(Side::A),
            Op::Resize(0),
            Op::Put(Side::A, Kind::Slow(2), false),
            Op::Put(Side::A, Kind::Ok, false),
            Op::Put(Side::A, Kind::Ok, false),
            Op::Wait(Side::A),
            Op::Create(2),
            Op::Put(Side::A, Kind::CallbackPanics, false),
            Op::Wait(Side::A),
            Op::Wait(Side::A),
            Op::Dismiss(1),
        ],
        end: End::Shutdown,
    };
    run(&s);
}
