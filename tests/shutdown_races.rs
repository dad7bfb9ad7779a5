//! The shutdown family (`shutdown`, `shutdown_timeout`, `shutdown_now`,
//! dropping every handle) racing with the newest features: `Context::join`,
//! children put through a `Context`, `Scope::put_with_context`, streams that
//! put and join through `Emitter::context`, batches, tickets and deadlines.
//! Many rounds per test, each with its own seed (printed on failure), on 1,
//! 2 and 4 workers, bounded and unbounded queues. Every user value is
//! counted when dropped, every request's ends are counted apart, and the
//! counts are checked exactly once the pool's threads are gone. Timeouts
//! only turn a hang into a failure.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{Context, Emitter, PutError, ShutdownError, TaskError, ThreadPool, WorkRequest};

use common::{within, within_here, Rng, HANG};

/// Rounds per configuration; `SHUTDOWN_RACES_ROUNDS` raises it.
fn rounds() -> usize {
    std::env::var("SHUTDOWN_RACES_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Room for every request of one round.
const CAP: usize = 8192;
/// Elements a parent's joins visit.
const SPAN: usize = 16;

/// Everything one round counts, per request number.
struct Ledger {
    next: AtomicUsize,
    started: Vec<AtomicUsize>,
    handed: Vec<AtomicUsize>,
    refused: Vec<AtomicUsize>,
    ok: Vec<AtomicUsize>,
    cancelled: Vec<AtomicUsize>,
    expired: Vec<AtomicUsize>,
    other_err: Vec<AtomicUsize>,
    drops: Vec<AtomicUsize>,
    /// Whether the request was put on the handle that shuts the pool down.
    own: Vec<AtomicBool>,
    stream: Vec<AtomicBool>,
    /// Element visits of each parent's joins.
    hits: Vec<AtomicUsize>,
    /// Items emitted (accepted) and delivered, per streaming request.
    emitted: Vec<AtomicUsize>,
    delivered: Vec<AtomicUsize>,
    ids: Mutex<HashMap<u64, usize>>,
}

fn counters(n: usize) -> Vec<AtomicUsize> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

impl Ledger {
    fn new() -> Arc<Ledger> {
        Arc::new(Ledger {
            next: AtomicUsize::new(0),
            started: counters(CAP),
            handed: counters(CAP),
            refused: counters(CAP),
            ok: counters(CAP),
            cancelled: counters(CAP),
            expired: counters(CAP),
            other_err: counters(CAP),
            drops: counters(CAP),
            own: (0..CAP).map(|_| AtomicBool::new(false)).collect(),
            stream: (0..CAP).map(|_| AtomicBool::new(false)).collect(),
            hits: counters(CAP * SPAN),
            emitted: counters(CAP),
            delivered: counters(CAP),
            ids: Mutex::new(HashMap::new()),
        })
    }

    fn alloc(&self, own: bool) -> usize {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        assert!(i < CAP, "too many requests in one round");
        self.own[i].store(own, Ordering::SeqCst);
        i
    }

    fn n(&self) -> usize {
        self.next.load(Ordering::SeqCst)
    }

    fn bump(v: &[AtomicUsize], i: usize) {
        v[i].fetch_add(1, Ordering::SeqCst);
    }

    fn get(v: &[AtomicUsize], i: usize) -> usize {
        v[i].load(Ordering::SeqCst)
    }

    fn remember(&self, request: &WorkRequest, i: usize) {
        self.ids.lock().unwrap().insert(request.id().value(), i);
    }

    /// A request handed back (by `shutdown_now`, `Unrun`, a refused put):
    /// counted, then dropped.
    fn hand_back(&self, requests: Vec<WorkRequest>, into: fn(&Ledger) -> &[AtomicUsize]) {
        for request in requests {
            let i = *self
                .ids
                .lock()
                .unwrap()
                .get(&request.id().value())
                .expect("a request handed back that was never put");
            Ledger::bump(into(self), i);
            drop(request);
        }
    }

    fn outcome<T>(&self, i: usize, outcome: Result<T, TaskError>) {
        match outcome {
            Ok(_) => Ledger::bump(&self.ok, i),
            Err(TaskError::Cancelled) => Ledger::bump(&self.cancelled, i),
            Err(TaskError::Expired) => Ledger::bump(&self.expired, i),
            Err(err) => {
                eprintln!("request {i}: unexpected error {err:?}");
                Ledger::bump(&self.other_err, i)
            }
        }
    }
}

/// A user value counted when dropped.
struct Tracked {
    i: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        Ledger::bump(&self.ledger.drops, self.i);
    }
}

fn tracked(ledger: &Arc<Ledger>, own: bool) -> Tracked {
    Tracked {
        i: ledger.alloc(own),
        ledger: Arc::clone(ledger),
    }
}

/// What a round's requests do.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// Children a leaf of a join puts, in percent.
    child_percent: u64,
    /// How deep children nest (a child may be a joining parent itself).
    depth: usize,
    /// Deadlines on leaf children, in percent.
    deadline_percent: u64,
}

/// A leaf child, or at depth > 0 a joining parent, on the context's handle.
fn child(cx: &Context<'_>, ledger: &Arc<Ledger>, own: bool, shape: Shape, seed: u64) {
    let t = tracked(ledger, own);
    let i = t.i;
    let request: WorkRequest = if shape.depth > 0 {
        let shape = Shape {
            depth: shape.depth - 1,
            ..shape
        };
        let on_ok = Arc::clone(ledger);
        let on_err = Arc::clone(ledger);
        WorkRequest::with_context(
            move |cx: &Context<'_>, t: Tracked| parent(cx, t, shape, seed),
            t,
        )
        .on_result(move |_, _| on_ok.outcome::<()>(i, Ok(())))
        .on_error(move |_, e| on_err.outcome::<()>(i, Err(e)))
        .into()
    } else {
        let on_ok = Arc::clone(ledger);
        let on_err = Arc::clone(ledger);
        let r = WorkRequest::new(
            |t: Tracked| {
                Ledger::bump(&t.ledger.started, t.i);
                t.i
            },
            t,
        )
        .on_result(move |_, _| on_ok.outcome::<()>(i, Ok(())))
        .on_error(move |_, e| on_err.outcome::<()>(i, Err(e)));
        if seed % 100 < shape.deadline_percent {
            r.timeout(Duration::from_micros(seed % 200)).into()
        } else {
            r.into()
        }
    };
    ledger.remember(&request, i);
    match cx.put(request) {
        Ok(_) => {}
        Err(PutError::ShutDown(request)) => {
            Ledger::bump(&ledger.refused, i);
            drop(request);
        }
        Err(other) => panic!("child put refused other than ShutDown: {other:?}"),
    }
}

/// Visits `range` of the parent's elements by halves with `join`, putting
/// children from some leaves.
fn visit(
    cx: &Context<'_>,
    t: &Tracked,
    range: std::ops::Range<usize>,
    shape: Shape,
    seed: u64,
) -> usize {
    if range.len() <= 2 {
        for e in range.clone() {
            Ledger::bump(&t.ledger.hits, t.i * SPAN + e);
        }
        let mut rng = Rng(seed ^ (range.start as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // (Beyond the ledger's room, no more children.)
        if rng.chance(shape.child_percent) && t.ledger.n() < CAP / 2 {
            let own = t.ledger.own[t.i].load(Ordering::SeqCst);
            child(cx, &t.ledger, own, shape, rng.next() | 1);
        }
        return range.len();
    }
    let mid = range.start + range.len() / 2;
    let (a, b) = cx.join(
        |cx| visit(cx, t, range.start..mid, shape, seed),
        |cx| visit(cx, t, mid..range.end, shape, seed),
    );
    a + b
}

fn parent(cx: &Context<'_>, t: Tracked, shape: Shape, seed: u64) {
    Ledger::bump(&t.ledger.started, t.i);
    assert_eq!(visit(cx, &t, 0..SPAN, shape, seed), SPAN);
}

fn parent_request(ledger: &Arc<Ledger>, own: bool, shape: Shape, seed: u64) -> WorkRequest {
    let t = tracked(ledger, own);
    let i = t.i;
    let on_ok = Arc::clone(ledger);
    let on_err = Arc::clone(ledger);
    let request: WorkRequest = WorkRequest::with_context(
        move |cx: &Context<'_>, t: Tracked| parent(cx, t, shape, seed),
        t,
    )
    .on_result(move |_, _| on_ok.outcome::<()>(i, Ok(())))
    .on_error(move |_, e| on_err.outcome::<()>(i, Err(e)))
    .into();
    ledger.remember(&request, i);
    request
}

/// A streaming request that joins and puts children through its emitter's
/// context, emitting from the first half.
fn stream_request(ledger: &Arc<Ledger>, own: bool, shape: Shape, seed: u64) -> WorkRequest {
    let t = tracked(ledger, own);
    let i = t.i;
    ledger.stream[i].store(true, Ordering::SeqCst);
    let on_item = Arc::clone(ledger);
    let on_err = Arc::clone(ledger);
    let request: WorkRequest = WorkRequest::streaming(
        move |t: Tracked, out: &Emitter<'_, usize>| -> Result<(), std::convert::Infallible> {
            Ledger::bump(&t.ledger.started, t.i);
            let cx = out.context();
            let emit = |v: usize| {
                if out.emit(v).is_ok() {
                    Ledger::bump(&t.ledger.emitted, t.i);
                }
            };
            let (a, b) = cx.join(
                |cx| {
                    emit(0);
                    visit(cx, &t, 0..SPAN / 2, shape, seed)
                },
                |cx| visit(cx, &t, SPAN / 2..SPAN, shape, seed),
            );
            emit(a + b);
            Ok(())
        },
        t,
    )
    .on_result(move |_, _| Ledger::bump(&on_item.delivered, i))
    .on_error(move |_, e| on_err.outcome::<()>(i, Err(e)))
    .into();
    ledger.remember(&request, i);
    request
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    Now,
    Graceful,
    Timeout,
    DropAll,
}

#[derive(Clone, Copy, Debug)]
struct Config {
    workers: usize,
    queue: Option<usize>,
    results: Option<usize>,
    ending: Ending,
}

fn build(config: Config, stopped: &Arc<AtomicUsize>) -> ThreadPool {
    let stopped = Arc::clone(stopped);
    let mut b = ThreadPool::builder()
        .workers(config.workers)
        .on_worker_stop(move |_| {
            stopped.fetch_add(1, Ordering::SeqCst);
        });
    if let Some(q) = config.queue {
        b = b.queue_capacity(q);
    }
    if let Some(r) = config.results {
        b = b.result_capacity(r);
    }
    b.build().unwrap()
}

fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG, "hang: {what}");
        thread::sleep(Duration::from_micros(200));
    }
}

fn spin(micros: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// One round: a putter thread and a poller on the other handle, puts on
/// the shutting handle from this thread, then the ending at a random point.
fn round(config: Config, seed: u64) {
    let mut rng = Rng(seed);
    let ledger = Ledger::new();
    let stopped = Arc::new(AtomicUsize::new(0));
    let pool = build(config, &stopped);
    let other = pool.new_handle();
    let shape = Shape {
        child_percent: rng.below(60),
        depth: rng.below(3) as usize,
        deadline_percent: rng.below(30),
    };
    let stop_putting = Arc::new(AtomicBool::new(false));

    // The other handle: a thread puts on it, polling as it goes, until the
    // pool refuses; then waits for all of its requests.
    let putter = {
        let ledger = Arc::clone(&ledger);
        let stop = Arc::clone(&stop_putting);
        let mut rng = Rng(rng.next() | 1);
        thread::spawn(move || {
            let mut batches = Vec::new();
            for _ in 0..rng.below(40) {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let requests: Vec<WorkRequest> = match rng.below(4) {
                    0 => vec![stream_request(&ledger, false, shape, rng.next())],
                    1 => (0..1 + rng.below(6))
                        .map(|_| parent_request(&ledger, false, shape, rng.next()))
                        .collect(),
                    _ => vec![parent_request(&ledger, false, shape, rng.next())],
                };
                if requests.len() > 1 {
                    match other.put_batch(requests) {
                        Ok(batch) => {
                            let done = Arc::new(AtomicUsize::new(0));
                            let d = Arc::clone(&done);
                            batch.on_done(move |_| {
                                d.fetch_add(1, Ordering::SeqCst);
                            });
                            if rng.chance(20) {
                                batch.cancel();
                            }
                            batches.push((batch, done));
                        }
                        Err(err) => ledger.hand_back(err.into_requests(), |l| &l.refused),
                    }
                } else {
                    for r in requests {
                        match other.put_request(r) {
                            Ok(_) => {}
                            Err(PutError::ShutDown(r)) => ledger.hand_back(vec![r], |l| &l.refused),
                            Err(e) => panic!("unexpected put error {e:?}"),
                        }
                    }
                }
                let _ = other.poll();
            }
            // Keeps polling until the ending: a bounded result queue that
            // nobody polls holds the workers back (by design).
            while !stop.load(Ordering::SeqCst) {
                let _ = other.poll_timeout(Duration::from_millis(1));
            }
            (other, batches)
        })
    };

    // This handle's requests, then the ending.
    let mut ours = 0;
    for _ in 0..rng.below(30) {
        let r = if rng.chance(20) {
            stream_request(&ledger, true, shape, rng.next())
        } else {
            parent_request(&ledger, true, shape, rng.next())
        };
        match pool.put_request(r) {
            Ok(_) => ours += 1,
            Err(e) => panic!("put on an open pool refused: {e:?}"),
        }
    }
    spin(rng.below(2_000));
    match config.ending {
        Ending::Now => {
            // A clone keeps this handle's results to poll: what the
            // shutdown cancels rather than hands back is seen.
            let clone = pool.clone();
            let back = within_here("shutdown_now", || pool.shutdown_now());
            ledger.hand_back(back, |l| &l.handed);
            let waited = within("the clone's wait", move || {
                let r = clone.wait();
                drop(clone);
                r
            });
            assert!(waited.is_ok(), "clone.wait: {waited:?}");
        }
        Ending::Graceful | Ending::Timeout => {
            let done = within_here("shutdown", || {
                if config.ending == Ending::Graceful {
                    pool.shutdown()
                } else {
                    pool.shutdown_timeout(HANG)
                }
            });
            match done {
                Ok(()) => {}
                Err(ShutdownError::Unrun(back)) => ledger.hand_back(back, |l| &l.handed),
                Err(e) => panic!("graceful shutdown failed: {e:?} (seed {seed})"),
            }
        }
        Ending::DropAll => drop(pool),
    }
    stop_putting.store(true, Ordering::SeqCst);
    let (other, batches) = putter.join().expect("the putter panicked");
    if config.ending == Ending::DropAll {
        drop(other);
    } else {
        let waited = within("other.wait", move || {
            let r = other.wait();
            drop(other);
            r
        });
        assert!(waited.is_ok(), "other.wait: {waited:?}");
    }
    until("the workers to exit", || {
        stopped.load(Ordering::SeqCst) == config.workers
    });
    // The ticket-less handles are gone; the pool with them once the
    // workers' last references go.
    batches_check(batches, config.ending);
    until("every value to be dropped", || {
        (0..ledger.n()).all(|i| Ledger::get(&ledger.drops, i) >= 1)
    });
    check(&ledger, config, ours, seed);
}

fn batches_check(batches: Vec<(callpool::Batch, Arc<AtomicUsize>)>, ending: Ending) {
    for (batch, done) in batches {
        let done = done.load(Ordering::SeqCst);
        assert!(done <= 1, "a batch-done callback ran {done} times");
        if ending != Ending::DropAll {
            let p = batch.progress();
            assert_eq!(
                p.ended(),
                p.total,
                "the other handle's batch never ended: {p:?}"
            );
            assert_eq!(done, 1, "{p:?}");
        }
    }
}

fn check(ledger: &Ledger, config: Config, ours: usize, seed: u64) {
    let n = ledger.n();
    let mut bad = Vec::new();
    let mut run = 0;
    for i in 0..n {
        let g = |v: &[AtomicUsize]| Ledger::get(v, i);
        let own = ledger.own[i].load(Ordering::SeqCst);
        let (started, handed, refused) =
            (g(&ledger.started), g(&ledger.handed), g(&ledger.refused));
        let (ok, cancelled, expired, other_err) = (
            g(&ledger.ok),
            g(&ledger.cancelled),
            g(&ledger.expired),
            g(&ledger.other_err),
        );
        let drops = g(&ledger.drops);
        run += started;
        let mut why = Vec::new();
        if drops != 1 {
            why.push(format!("dropped {drops} times"));
        }
        if other_err != 0 {
            why.push("failed other than cancelled/expired".to_string());
        }
        if started > 1 || handed > 1 || refused > 1 {
            why.push("started, handed back or refused twice".to_string());
        }
        let outcomes = ok + cancelled + expired;
        if outcomes > 1 {
            why.push(format!("{outcomes} outcomes"));
        }
        if ok == 1 && started == 0 {
            why.push("a result without a run".to_string());
        }
        if (cancelled + expired) == 1 && started == 1 {
            why.push("cancelled or expired after it ran".to_string());
        }
        if ledger.stream[i].load(Ordering::SeqCst) {
            let (e, d) = (g(&ledger.emitted), g(&ledger.delivered));
            if config.ending != Ending::DropAll && e != d {
                why.push(format!("emitted {e}, delivered {d}"));
            }
        }
        // A request that started visited its elements once each, its join
        // halves included (they stay with their join); one that did not,
        // none.
        let visits: Vec<usize> = (0..SPAN)
            .map(|e| Ledger::get(&ledger.hits, i * SPAN + e))
            .collect();
        let is_leaf = visits.iter().all(|&v| v == 0);
        if started == 1 && !is_leaf && visits.iter().any(|&v| v != 1) {
            why.push(format!("visits {visits:?}"));
        }
        if started == 0 && !is_leaf {
            why.push(format!("visits {visits:?} without a start"));
        }
        // Where its one end went.
        let ends = match (config.ending, own) {
            // This handle's results are discarded by shutdown_now: it ran,
            // or was handed back, or refused (a child).
            (Ending::Now, true) => {
                let stream = ledger.stream[i].load(Ordering::SeqCst);
                if !stream && started == 1 && ok != 1 {
                    why.push("ran, but no result callback".to_string());
                }
                (if stream {
                    started.max(outcomes)
                } else {
                    outcomes
                }) + handed
                    + refused
            }
            (Ending::Graceful | Ending::Timeout, true) => {
                let stream = ledger.stream[i].load(Ordering::SeqCst);
                if !stream && started == 1 && ok != 1 {
                    why.push("ran, but its result never reached its callback".to_string());
                }
                started.max(outcomes) + handed + refused
            }
            // Outcomes are discarded with the handles: at most one of each.
            (Ending::DropAll, _) => 1,
            (_, false) => {
                // A stream that succeeded has no end callback of its own.
                let stream = ledger.stream[i].load(Ordering::SeqCst);
                let ended = if stream {
                    started.max(outcomes)
                } else {
                    outcomes
                };
                if !stream && started == 1 && ok != 1 {
                    why.push("ran, but no result callback".to_string());
                }
                ended + refused
            }
        };
        if ends != 1 {
            why.push(format!(
                "ends {ends} (started {started} handed {handed} refused {refused} ok {ok} cancelled {cancelled} expired {expired})"
            ));
        }
        if !why.is_empty() {
            bad.push((i, own, why));
        }
    }
    assert!(
        bad.is_empty(),
        "seed {seed:#x}, {config:?}, {n} requests ({ours} put here first, {run} ran): {bad:#?}"
    );
}

fn configs(ending: Ending) -> Vec<Config> {
    let mut all = Vec::new();
    for workers in [1, 2, 4] {
        for (queue, results) in [
            (None, None),
            (Some(4), None),
            (Some(2), Some(2)),
            (None, Some(1)),
        ] {
            all.push(Config {
                workers,
                queue,
                results,
                ending,
            });
        }
    }
    all
}

fn run_all(ending: Ending, salt: u64) {
    for config in configs(ending) {
        for r in 0..rounds() {
            let seed =
                (salt << 32) ^ ((config.workers as u64) << 20) ^ ((r as u64 + 1) * 0x9E37_79B9);
            let seed = seed
                ^ ((config.queue.unwrap_or(0) as u64) << 8)
                ^ config.results.unwrap_or(0) as u64;
            round(config, seed | 1);
        }
    }
}

#[test]
fn joins_children_streams_and_batches_race_shutdown_now() {
    run_all(Ending::Now, 1);
}

#[test]
fn joins_children_streams_and_batches_race_graceful_shutdown() {
    run_all(Ending::Graceful, 2);
}

#[test]
fn joins_children_streams_and_batches_race_shutdown_timeout() {
    run_all(Ending::Timeout, 3);
}

#[test]
fn joins_children_streams_and_batches_race_dropping_every_handle() {
    run_all(Ending::DropAll, 4);
}

/// A scope's `put_with_context` requests join over a buffer on this
/// thread's stack and put children, while another thread shuts the pool
/// down at a random point (`shutdown_now` or `close` on another handle, or
/// dropping it); tickets and `as_completed` race the same ending. The scope
/// ends; each scoped request saw its slice once and reported its sum if it
/// ran, saw nothing and reported `Cancelled` if it was cancelled, saw
/// nothing and reported nothing if refused; each ticket, input and child
/// ran and was heard, or was cancelled, expired or refused, exactly once.
#[test]
fn scoped_joins_and_tickets_race_the_ending() {
    for workers in [1, 2, 4] {
        for (queue, results) in [(None, None), (Some(2), Some(1))] {
            for r in 0..rounds() {
                let seed = ((workers as u64) << 40)
                    ^ ((r as u64 + 7) * 0x9E37_79B9)
                    ^ queue.unwrap_or(0) as u64;
                scoped_round(workers, queue, results, seed | 1);
            }
        }
    }
}

fn scoped_round(workers: usize, queue: Option<usize>, results: Option<usize>, seed: u64) {
    let mut rng = Rng(seed);
    let stopped = Arc::new(AtomicUsize::new(0));
    let config = Config {
        workers,
        queue,
        results,
        ending: Ending::Now,
    };
    let pool = build(config, &stopped);
    let killer = pool.new_handle();
    let ticket_side = pool.new_handle();
    let ledger = Ledger::new();
    let how = rng.below(3);
    let delay = rng.below(3_000);
    let ending = thread::spawn(move || {
        spin(delay);
        match how {
            0 => drop(killer.shutdown_now()),
            1 => {
                let _ = killer.close();
            }
            _ => drop(killer),
        }
    });
    // Tickets on their own handle, from another thread.
    let tickets = {
        let ledger = Arc::clone(&ledger);
        let n = rng.below(40) as usize;
        thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..n {
                let t = tracked(&ledger, false);
                let i = t.i;
                let submitted = ticket_side.submit(
                    |t: Tracked| {
                        Ledger::bump(&t.ledger.started, t.i);
                        t.i
                    },
                    t,
                );
                // Refused, the request goes with the error (its value
                // dropped, which the ledger counts).
                match submitted {
                    Ok(ticket) => held.push((i, ticket)),
                    Err(_) => Ledger::bump(&ledger.refused, i),
                }
            }
            for (i, ticket) in held {
                let outcome = ticket.wait();
                if let Ok(got) = outcome {
                    assert_eq!(got, i, "a ticket heard another's result");
                }
                ledger.outcome(i, outcome);
            }
            // as_completed over inputs whose values are counted.
            let inputs: Vec<Tracked> = (0..n).map(|_| tracked(&ledger, false)).collect();
            let numbers: Vec<usize> = inputs.iter().map(|t| t.i).collect();
            let mut heard = Vec::new();
            for (t, outcome) in ticket_side.as_completed(inputs, 3, |t: &Tracked| {
                Ledger::bump(&t.ledger.started, t.i);
                t.i
            }) {
                if let Ok(got) = outcome {
                    assert_eq!(got, t.i, "an input heard another's result");
                }
                heard.push(t.i);
                ledger.outcome(t.i, outcome);
            }
            // Once the pool refuses a put, no input is pulled: those never
            // pulled are the last ones, never put (counted as refused).
            heard.sort_unstable();
            assert_eq!(
                heard,
                numbers[..heard.len()],
                "as_completed heard inputs {heard:?} of {numbers:?}"
            );
            for &i in &numbers[heard.len()..] {
                Ledger::bump(&ledger.refused, i);
            }
            ticket_side
        })
    };
    let parents = 1 + rng.below(24) as usize;
    let data: Vec<usize> = (0..parents * SPAN).collect();
    let hits: Vec<AtomicUsize> = counters(parents * SPAN);
    let mut refused = vec![false; parents];
    // Each scoped request's outcomes, by slice.
    let mut scoped: Vec<Vec<Result<usize, TaskError>>> = vec![Vec::new(); parents];
    let shape = Shape {
        child_percent: rng.below(40),
        depth: rng.below(2) as usize,
        deadline_percent: rng.below(20),
    };
    within_here("the scope", || {
        pool.scope(|s| {
            let mut slice_of = HashMap::new();
            for (p, slice) in data.chunks(SPAN).enumerate() {
                let hits = &hits;
                let ledger = &ledger;
                let seed = rng.next();
                let put = s.put_with_context(
                    move |cx: &Context<'_>, slice: &[usize]| {
                        scoped_visit(cx, slice, hits, ledger, shape, seed)
                    },
                    slice,
                );
                match put {
                    Ok(id) => {
                        slice_of.insert(id, p);
                    }
                    Err(_) => refused[p] = true,
                }
            }
            for (id, outcome) in s.outcomes() {
                let p = *slice_of
                    .get(&id)
                    .expect("an outcome of a request never put");
                scoped[p].push(outcome);
            }
        })
    });
    // The scoped requests' children went on this handle: their results
    // are handled here (a bounded result queue holds the workers back
    // until they are). Every one of them ends with its callback, so the
    // wait cannot find one stranded.
    let waited = within_here("the children's wait", || pool.wait());
    assert!(
        waited.is_ok(),
        "seed {seed:#x}: the children's wait: {waited:?}"
    );
    ending.join().unwrap();
    let ticket_side = tickets.join().expect("the ticket thread panicked");
    drop(ticket_side);
    drop(pool);
    until("the workers to exit", || {
        stopped.load(Ordering::SeqCst) == workers
    });
    until("every value to be dropped", || {
        (0..ledger.n()).all(|i| Ledger::get(&ledger.drops, i) >= 1)
    });
    // A slice whose request was put has one outcome: its sum, after a
    // visit of each element once; or `Cancelled`, with no visit. A refused
    // one has none, and no visit.
    for (p, slice) in hits.chunks(SPAN).enumerate() {
        let v: Vec<usize> = slice.iter().map(|h| h.load(Ordering::SeqCst)).collect();
        let outcomes = &scoped[p];
        let sum: usize = (p * SPAN..(p + 1) * SPAN).sum();
        let fine = match (refused[p], outcomes.as_slice()) {
            (true, []) => v.iter().all(|&x| x == 0),
            (false, [Ok(s)]) => *s == sum && v.iter().all(|&x| x == 1),
            (false, [Err(TaskError::Cancelled)]) => v.iter().all(|&x| x == 0),
            _ => false,
        };
        assert!(
            fine,
            "seed {seed:#x}: slice {p} (refused {}) outcomes {outcomes:?}, visits {v:?}",
            refused[p]
        );
    }
    // The tickets, the inputs and the children: each ran and was heard,
    // or was cancelled, expired or refused, exactly once.
    check(&ledger, config, 0, seed);
}

fn scoped_visit(
    cx: &Context<'_>,
    slice: &[usize],
    hits: &[AtomicUsize],
    ledger: &Arc<Ledger>,
    shape: Shape,
    seed: u64,
) -> usize {
    if slice.len() <= 2 {
        for &x in slice {
            hits[x].fetch_add(1, Ordering::SeqCst);
        }
        let mut rng = Rng(seed ^ (slice[0] as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if rng.chance(shape.child_percent) && ledger.n() < CAP / 2 {
            child(cx, ledger, false, shape, rng.next() | 1);
        }
        return slice.iter().sum();
    }
    let (l, r) = slice.split_at(slice.len() / 2);
    let (a, b) = cx.join(
        |cx| scoped_visit(cx, l, hits, ledger, shape, seed),
        |cx| scoped_visit(cx, r, hits, ledger, shape, seed),
    );
    a + b
}
