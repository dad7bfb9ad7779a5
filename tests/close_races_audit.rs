//! Every way a request or an outcome can be added while the pool closes
//! (`close`/`shutdown`, `shutdown_now`, the last handle's drop,
//! `dismiss_workers`), by an adder that no pending request of the handle
//! covers: another thread's puts of every kind, a ticket's callable putting
//! on the handle past the bounded queue's capacity, batches, a scope's
//! `put_then`, a collector's tree, streams and join halves put by a ticket's
//! callable, `map`'s chunks, `as_completed`/`imap` windows, and callbacks
//! that put. A put counts its request before it reads the lifecycle, so
//! either it is refused or the closer accounts for it.
//!
//! What each test checks, with exact counts: every request the pool
//! accepted ends exactly once (called back, cancelled to its callback,
//! handed back, or, never accepted, refused to its putter); a graceful
//! close has called back everything it accepted by the time it returns,
//! with nobody polling after it; nothing handed back ever runs, and after
//! `shutdown_now` returns at most one request per worker starts (the one it
//! had taken as the pool closed). Where the close lands is left to the
//! threads: no test depends on timing to pass.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use callpool::{
    BatchError, CollectorContext, Context, Emitter, PutError, ScopedPutError, ShutdownError,
    TaskError, ThreadPool, WorkRequest,
};
use common::{until, within, TestResult, HANG};

/// How each request of a round ended, by its index.
struct Ends {
    /// Its callable started.
    ran: Vec<AtomicUsize>,
    /// Its callable started after `shutdown_now` had returned.
    ran_late: Vec<AtomicUsize>,
    /// Its result callback ran.
    called: Vec<AtomicUsize>,
    /// Its error callback heard `Cancelled`.
    cancelled: Vec<AtomicUsize>,
    /// Handed back by `shutdown_now` or in `ShutdownError::Unrun`.
    handed_back: Vec<AtomicUsize>,
    /// Its put was refused (the request came back to the putter).
    refused: Vec<AtomicUsize>,
    /// Indices given out so far.
    next: AtomicUsize,
    /// Set once `shutdown_now` has returned.
    now_returned: AtomicBool,
}

const MAX: usize = 40_000;

fn counters(n: usize) -> Vec<AtomicUsize> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

fn load(v: &[AtomicUsize], i: usize) -> usize {
    v[i].load(Ordering::SeqCst)
}

fn bump(v: &[AtomicUsize], i: usize) {
    v[i].fetch_add(1, Ordering::SeqCst);
}

impl Ends {
    fn new() -> Arc<Ends> {
        Arc::new(Ends {
            ran: counters(MAX),
            ran_late: counters(MAX),
            called: counters(MAX),
            cancelled: counters(MAX),
            handed_back: counters(MAX),
            refused: counters(MAX),
            next: AtomicUsize::new(0),
            now_returned: AtomicBool::new(false),
        })
    }

    /// A fresh index, or `None` once `MAX` are given out.
    fn index(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        (i < MAX).then_some(i)
    }

    fn tried(&self) -> usize {
        self.next.load(Ordering::SeqCst).min(MAX)
    }

    fn ran(&self, i: usize) {
        bump(&self.ran, i);
        if self.now_returned.load(Ordering::SeqCst) {
            bump(&self.ran_late, i);
        }
    }

    fn hand_back(&self, requests: impl IntoIterator<Item = WorkRequest>) {
        for request in requests {
            bump(&self.handed_back, request.id().value() as usize);
        }
    }

    fn refuse(&self, request: &WorkRequest) {
        bump(&self.refused, request.id().value() as usize);
    }

    fn sum(v: &[AtomicUsize]) -> usize {
        v.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    /// Fails unless every index given out ended exactly one way, ran
    /// exactly when it was called back (so nothing handed back, cancelled
    /// or refused ran), and no more than `late_bound` started after
    /// `shutdown_now` returned.
    fn assert_each_once(&self, what: &str, late_bound: usize) {
        let tried = self.tried();
        let mut bad = Vec::new();
        for i in 0..tried {
            let ways = [
                load(&self.called, i),
                load(&self.cancelled, i),
                load(&self.handed_back, i),
                load(&self.refused, i),
            ];
            let ran = load(&self.ran, i);
            if ways.iter().sum::<usize>() != 1 || ran > 1 || ran != ways[0] {
                bad.push((i, ways, ran));
            }
        }
        assert!(
            bad.is_empty(),
            "{what}: {} of {tried} did not end exactly once; (index, [called, cancelled, handed back, refused], ran): {:?}",
            bad.len(),
            &bad[..bad.len().min(12)]
        );
        let late = Self::sum(&self.ran_late);
        assert!(
            late <= late_bound,
            "{what}: {late} requests started after shutdown_now returned (at most {late_bound}: one per worker)"
        );
    }
}

/// A request for index `i` that counts how it ends in `ends`.
fn request(i: usize, ends: &Arc<Ends>) -> WorkRequest {
    let (run, ok, err) = (Arc::clone(ends), Arc::clone(ends), Arc::clone(ends));
    WorkRequest::new(
        move |i: usize| {
            run.ran(i);
            i
        },
        i,
    )
    .with_id(i as u64)
    .on_result(move |_, i| bump(&ok.called, i))
    .on_error(move |id, e| {
        assert_eq!(e, TaskError::Cancelled, "request {id}");
        bump(&err.cancelled, id.value() as usize);
    })
    .into()
}

/// How a round stops the pool.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// `close`, on a clone, from the test's thread.
    Close,
    /// `shutdown_now` on a clone; another clone polls afterwards.
    Now,
}

const STOPS: [Stop; 2] = [Stop::Close, Stop::Now];

/// Stops `pool` as `stop` says, counting what comes back in `ends`.
fn stop_pool(stop: Stop, pool: ThreadPool, ends: &Ends) {
    match stop {
        Stop::Close => match within("close", move || {
            pool.close().map_err(|e| match e {
                ShutdownError::Unrun(unrun) => Ok(unrun),
                other => Err(other.to_string()),
            })
        }) {
            Ok(()) => {}
            Err(Ok(unrun)) => ends.hand_back(unrun),
            Err(Err(e)) => panic!("close: {e}"),
        },
        Stop::Now => {
            let back = pool.shutdown_now();
            ends.now_returned.store(true, Ordering::SeqCst);
            ends.hand_back(back);
        }
    }
}

/// After a graceful close: every accepted request was called back before
/// `close` returned, with nobody polling since. After `shutdown_now`: once
/// `survivor` (a clone of the stopped handle) has handled what was still
/// running.
fn settle(stop: Stop, survivor: &ThreadPool) {
    if let Stop::Now = stop {
        match survivor.wait_timeout(HANG) {
            Ok(_) | Err(callpool::WaitError::NoWorkersAvailable { .. }) => {}
            Err(e) => panic!("wait after shutdown_now: {e:?}"),
        }
    }
}

/// Waits until `n` requests of `ends` have been called back or refused,
/// polling `pool` (so the close may land anywhere after).
fn poll_until_called(pool: &ThreadPool, ends: &Ends, n: usize) {
    until(|| {
        let _ = pool.poll();
        Ends::sum(&ends.called) + Ends::sum(&ends.refused) >= n
    });
}

/// Puts of every kind, each on its own thread with its own clone of the
/// handle, on a bounded queue, racing `stop`: each thread puts until the
/// pool refuses it as shut down.
fn handle_puts_racing(stop: Stop, rounds: usize) -> TestResult {
    const WORKERS: usize = 2;
    for round in 0..rounds {
        let ends = Ends::new();
        let pool = ThreadPool::builder()
            .workers(WORKERS)
            .queue_capacity(8)
            .build()?;
        let mut putters = Vec::new();
        for kind in 0..3 {
            let (handle, ends) = (pool.clone(), Arc::clone(&ends));
            putters.push(thread::spawn(move || {
                while let Some(i) = ends.index() {
                    let put = match kind {
                        0 => handle.put_request(request(i, &ends)),
                        1 => handle.try_put_request(request(i, &ends)),
                        _ => handle.put_request_timeout(request(i, &ends), HANG),
                    };
                    match put {
                        Ok(_) => {}
                        Err(PutError::Full(r)) => ends.refuse(&r),
                        Err(PutError::ShutDown(r)) => {
                            ends.refuse(&r);
                            break;
                        }
                        Err(e) => panic!("put: {e:?}"),
                    }
                }
            }));
        }
        let survivor = pool.clone();
        poll_until_called(&pool, &ends, 1 + round * 7 % 200);
        stop_pool(stop, pool, &ends);
        for putter in putters {
            putter.join().expect("a putter panicked");
        }
        settle(stop, &survivor);
        ends.assert_each_once(&format!("{stop:?} round {round}"), WORKERS);
    }
    Ok(())
}

#[test]
fn handle_puts_of_every_kind_racing_close_each_end_once() -> TestResult {
    handle_puts_racing(Stop::Close, 30)
}

#[test]
fn handle_puts_of_every_kind_racing_shutdown_now_each_end_once() -> TestResult {
    handle_puts_racing(Stop::Now, 30)
}

/// A ticket's callable (counted on no handle) puts on a clone of the handle
/// from its worker, past the bounded queue's capacity, until refused.
#[test]
fn a_ticket_putting_past_the_capacity_racing_a_stop_each_request_ends_once() -> TestResult {
    const WORKERS: usize = 2;
    for stop in STOPS {
        for round in 0..40 {
            let ends = Ends::new();
            let pool = ThreadPool::builder()
                .workers(WORKERS)
                .queue_capacity(1)
                .build()?;
            let (handle, in_ticket) = (pool.clone(), Arc::clone(&ends));
            let ticket = pool.submit(
                move |()| {
                    let mut accepted = 0;
                    while let Some(i) = in_ticket.index() {
                        match handle.put_request(request(i, &in_ticket)) {
                            Ok(_) => accepted += 1,
                            Err(PutError::ShutDown(r)) => {
                                in_ticket.refuse(&r);
                                break;
                            }
                            Err(e) => panic!("put: {e:?}"),
                        }
                    }
                    accepted
                },
                (),
            )?;
            let survivor = pool.clone();
            poll_until_called(&pool, &ends, 1 + round * 13 % 300);
            stop_pool(stop, pool, &ends);
            // The callable stops at its first refusal; a ticket taken as
            // the pool closed is cancelled, and then put nothing.
            match ticket.wait_timeout(HANG).expect("hang") {
                Ok(_) | Err(TaskError::Cancelled) => {}
                Err(e) => panic!("ticket: {e:?}"),
            }
            settle(stop, &survivor);
            // The ticket's own start may come late too.
            ends.assert_each_once(&format!("{stop:?} round {round}"), WORKERS + 1);
        }
    }
    Ok(())
}

/// Batches of 300 (two chunks on an unbounded queue, one by one on a
/// bounded one) put from another thread until refused, racing a stop. A
/// batch the pool took ends with its batch-done callback exactly once.
fn batches_racing(stop: Stop, bounded: bool, rounds: usize) -> TestResult {
    const WORKERS: usize = 2;
    for round in 0..rounds {
        let ends = Ends::new();
        let mut builder = ThreadPool::builder().workers(WORKERS);
        if bounded {
            builder = builder.queue_capacity(16);
        }
        let pool = builder.build()?;
        let done = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(AtomicUsize::new(0));
        let (handle, e, d, t) = (
            pool.clone(),
            Arc::clone(&ends),
            Arc::clone(&done),
            Arc::clone(&taken),
        );
        let putter = thread::spawn(move || loop {
            let batch: Vec<WorkRequest> = (0..300)
                .filter_map(|_| e.index())
                .map(|i| request(i, &e))
                .collect();
            if batch.is_empty() {
                break;
            }
            match handle.put_batch(batch) {
                Ok(batch) => {
                    t.fetch_add(1, Ordering::SeqCst);
                    let d = Arc::clone(&d);
                    batch.on_done(move |_| {
                        d.fetch_add(1, Ordering::SeqCst);
                    });
                }
                Err(BatchError::ShutDown(back)) => {
                    back.iter().for_each(|r| e.refuse(r));
                    break;
                }
                Err(other) => panic!("put_batch: {other:?}"),
            }
        });
        let survivor = pool.clone();
        poll_until_called(&pool, &ends, 1 + round * 37 % 900);
        stop_pool(stop, pool, &ends);
        putter.join().expect("the putter panicked");
        settle(stop, &survivor);
        // What is left to poll (cancellations of a batch's rest) is polled.
        let _ = survivor.poll();
        let what = format!("{stop:?} bounded {bounded} round {round}");
        ends.assert_each_once(&what, WORKERS);
        until(|| done.load(Ordering::SeqCst) == taken.load(Ordering::SeqCst));
    }
    Ok(())
}

#[test]
fn batches_racing_close_each_member_ends_once() -> TestResult {
    batches_racing(Stop::Close, false, 30)?;
    batches_racing(Stop::Close, true, 15)
}

#[test]
fn batches_racing_shutdown_now_each_member_ends_once() -> TestResult {
    batches_racing(Stop::Now, false, 30)?;
    batches_racing(Stop::Now, true, 15)
}

/// A scope's body puts with `put_then` until refused while another thread
/// stops the pool: each accepted request's `then` runs exactly once (its
/// outcome, or `Cancelled` if swept), a refused one's never.
#[test]
fn scope_put_then_racing_a_stop_calls_each_accepted_then_once() -> TestResult {
    for stop in STOPS {
        for round in 0..40 {
            let ends = Ends::new();
            let pool = ThreadPool::new(2);
            let stopper = pool.clone();
            let (go_tx, go) = mpsc::channel::<()>();
            let stopper_ends = Arc::clone(&ends);
            let stopping = thread::spawn(move || {
                go.recv_timeout(HANG).expect("the body never started");
                stop_pool(stop, stopper, &stopper_ends);
            });
            let signal_at = round * 17 % 400;
            pool.scope(|s| {
                while let Some(i) = ends.index() {
                    if i == signal_at {
                        go_tx.send(()).unwrap();
                    }
                    let (run, then) = (Arc::clone(&ends), Arc::clone(&ends));
                    let put = s.put_then(
                        move |i: usize| {
                            run.ran(i);
                            i
                        },
                        i,
                        move |outcome: Result<usize, TaskError>| match outcome {
                            Ok(i) => bump(&then.called, i),
                            Err(TaskError::Cancelled) => bump(&then.cancelled, i),
                            Err(e) => panic!("{e:?}"),
                        },
                    );
                    match put {
                        Ok(_) => {}
                        Err(ScopedPutError::ShutDown(_)) => {
                            bump(&ends.refused, i);
                            break;
                        }
                        Err(e) => panic!("put_then: {e:?}"),
                    }
                }
                // Past the last index without a refusal: let the stop go.
                let _ = go_tx.send(());
            });
            stopping.join().expect("the stopper panicked");
            ends.assert_each_once(&format!("{stop:?} round {round}"), 2);
        }
    }
    Ok(())
}

/// A tree of `CollectorContext::add_with_context` requests growing while
/// the pool is stopped, or every worker dismissed (and new ones added):
/// every add, accepted or refused, ends in exactly one outcome, and the
/// collector's iterator ends.
#[derive(Clone, Copy, Debug)]
enum TreeStop {
    Close,
    Now,
    DismissAll,
}

fn grow(cx: &CollectorContext<'_, usize>, (depth, ends): (u32, Arc<Ends>)) -> usize {
    let Some(me) = ends.index() else {
        return usize::MAX;
    };
    ends.ran(me);
    if depth < 12 {
        for _ in 0..2 {
            // A refused add still ends, as `Cancelled`, on the collector.
            let _ = cx.add_with_context(grow, (depth + 1, Arc::clone(&ends)));
        }
    }
    me
}

#[test]
fn a_collector_tree_racing_a_stop_ends_each_add_once() -> TestResult {
    for stop in [TreeStop::Close, TreeStop::Now, TreeStop::DismissAll] {
        for round in 0..20 {
            let ends = Ends::new();
            let pool = ThreadPool::new(2);
            let stopper = pool.clone();
            let mut tree = pool.collector::<usize>();
            tree.put_with_context(grow, (0, Arc::clone(&ends)))?;
            let (started_tx, started) = mpsc::channel::<()>();
            let stopper_ends = Arc::clone(&ends);
            let target = 1 + round * 61 % 2000;
            let stopping = thread::spawn(move || {
                started.recv_timeout(HANG).expect("no outcome came");
                until(|| stopper_ends.tried() >= target);
                match stop {
                    TreeStop::Close => {
                        stopper.close().expect("close");
                    }
                    TreeStop::Now => {
                        // The collector's requests are not this handle's:
                        // cancelled to the collector, never handed back.
                        assert!(stopper.shutdown_now().is_empty());
                    }
                    TreeStop::DismissAll => {
                        stopper.dismiss_workers(stopper.workers());
                        stopper.create_workers(2).expect("create_workers");
                    }
                }
            });
            let (mut outcomes, mut ok, mut cancelled) = (0usize, 0usize, 0usize);
            let mut seen = std::collections::HashSet::new();
            within_tree(&mut tree, |id, outcome| {
                if outcomes == 0 {
                    let _ = started_tx.send(());
                }
                outcomes += 1;
                assert!(seen.insert(id), "{id} came out twice");
                match outcome {
                    Ok(_) => ok += 1,
                    Err(TaskError::Cancelled) => cancelled += 1,
                    Err(e) => panic!("{e:?}"),
                }
            });
            drop(started_tx);
            stopping.join().expect("the stopper panicked");
            // The root is one outcome; each add made one more.
            let ran = Ends::sum(&ends.ran);
            assert_eq!(
                ok, ran,
                "{stop:?} round {round}: outcomes Ok vs callables run"
            );
            let what = format!("{stop:?} round {round}: ok {ok} cancelled {cancelled}");
            assert!(
                ends.ran.iter().all(|r| r.load(Ordering::SeqCst) <= 1),
                "{what}"
            );
            assert_eq!(seen.len(), outcomes, "{what}");
        }
    }
    Ok(())
}

/// `wait_with` on the collector, turned into a failure if it hangs.
fn within_tree(
    tree: &mut callpool::Collector<'_, usize>,
    each: impl FnMut(callpool::RequestId, Result<usize, TaskError>),
) {
    common::within_here("the collector's wait", || {
        tree.wait_with(each);
    });
}

/// A streaming child with five items, put by a callable counted on no
/// handle (a ticket's, or a scope's), racing a graceful close: each stream
/// accepted had all its items and its end called back before `close`
/// returned.
#[test]
fn streams_put_by_uncounted_parents_racing_close_deliver_every_item() -> TestResult {
    const ITEMS: usize = 5;
    for scoped in [false, true] {
        for round in 0..60 {
            let ends = Ends::new();
            let items = Arc::new(counters(MAX));
            let pool = ThreadPool::new(2);
            let (e, it) = (Arc::clone(&ends), Arc::clone(&items));
            let parent = move |cx: &Context<'_>| {
                while let Some(i) = e.index() {
                    let (run, item, done) = (Arc::clone(&e), Arc::clone(&it), Arc::clone(&e));
                    let stream = WorkRequest::streaming(
                        move |i: usize, out: &Emitter<'_, usize>| {
                            run.ran(i);
                            for _ in 0..ITEMS {
                                out.emit(i)?;
                            }
                            Ok::<(), callpool::Closed>(())
                        },
                        i,
                    )
                    .with_id(i as u64)
                    .on_result(move |_, i| bump(&item, i))
                    .on_done(move |id| bump(&done.called, id.value() as usize));
                    match cx.put(stream) {
                        Ok(_) => {}
                        Err(PutError::ShutDown(r)) => {
                            e.refuse(&r);
                            break;
                        }
                        Err(err) => panic!("{err:?}"),
                    }
                }
            };
            let closer = pool.clone();
            let target = 1 + round * 11 % 100;
            let stopped = if scoped {
                let ends = Arc::clone(&ends);
                let stopping = thread::spawn(move || {
                    until(|| Ends::sum(&ends.ran) >= target);
                    closer.close().map_err(|e| e.to_string())
                });
                pool.scope(|s| {
                    s.put_with_context(move |cx: &Context<'_>, ()| parent(cx), ())
                        .expect("the pool is open");
                });
                stopping.join().expect("the closer panicked")
            } else {
                let ticket =
                    pool.submit_with_context(move |cx: &Context<'_>, ()| parent(cx), ())?;
                poll_until_called(&pool, &ends, target);
                let closed = closer.close().map_err(|e| e.to_string());
                assert_eq!(ticket.wait_timeout(HANG).expect("hang"), Ok(()));
                closed
            };
            stopped?;
            let what = format!("scoped {scoped} round {round}");
            ends.assert_each_once(&what, 0);
            for i in 0..ends.tried() {
                let expected = if load(&ends.called, i) == 1 { ITEMS } else { 0 };
                assert_eq!(load(&items, i), expected, "{what}: stream {i}'s items");
            }
        }
    }
    Ok(())
}

/// A ticket's callable that joins halves which each put a child on the
/// handle, racing a stop: each child ends once, and the ticket gets its
/// outcome.
#[test]
fn join_halves_putting_children_racing_a_stop_each_child_ends_once() -> TestResult {
    const WORKERS: usize = 2;
    for stop in STOPS {
        for round in 0..40 {
            let ends = Ends::new();
            let pool = ThreadPool::new(WORKERS);
            let e = Arc::clone(&ends);
            let ticket = pool.submit_with_context(
                move |cx: &Context<'_>, ()| {
                    let put = |cx: &Context<'_>| match e.index() {
                        None => false,
                        Some(i) => match cx.put(request(i, &e)) {
                            Ok(_) => true,
                            Err(PutError::ShutDown(r)) => {
                                e.refuse(&r);
                                false
                            }
                            Err(err) => panic!("{err:?}"),
                        },
                    };
                    loop {
                        let (a, b) = cx.join(|cx| put(cx), |cx| put(cx));
                        if !(a && b) {
                            break;
                        }
                    }
                },
                (),
            )?;
            let survivor = pool.clone();
            poll_until_called(&pool, &ends, 1 + round * 29 % 500);
            stop_pool(stop, pool, &ends);
            match ticket.wait_timeout(HANG).expect("hang") {
                Ok(()) | Err(TaskError::Cancelled) => {}
                Err(e) => panic!("ticket: {e:?}"),
            }
            settle(stop, &survivor);
            ends.assert_each_once(&format!("{stop:?} round {round}"), WORKERS);
        }
    }
    Ok(())
}

/// `map`, `as_completed` and `imap` running on other threads as the pool
/// closes: each gives one outcome per input it yields (`map`: per input),
/// an input's function ran iff its outcome is `Ok`, and each ends.
#[test]
fn map_and_windows_racing_a_stop_run_each_input_at_most_once() -> TestResult {
    const N: usize = 3_000;
    for stop in STOPS {
        for round in 0..15 {
            let pool = ThreadPool::new(2);
            let runs: Vec<Arc<Vec<AtomicUsize>>> = (0..3).map(|_| Arc::new(counters(N))).collect();
            let mut users = Vec::new();
            for (kind, ran) in runs.iter().enumerate() {
                let (handle, ran) = (pool.clone(), Arc::clone(ran));
                users.push(thread::spawn(move || {
                    let f = {
                        let ran = Arc::clone(&ran);
                        move |i: &usize| {
                            bump(&ran, *i);
                            *i
                        }
                    };
                    let outcomes: Vec<(usize, Result<usize, TaskError>)> = match kind {
                        0 => {
                            let ran = Arc::clone(&ran);
                            let out = handle.map(0..N, move |i: usize| {
                                bump(&ran, i);
                                i
                            });
                            assert_eq!(out.len(), N, "map gives one outcome per input");
                            out.into_iter().enumerate().collect()
                        }
                        1 => handle.as_completed(0..N, 4, f).collect(),
                        _ => {
                            let ran = Arc::clone(&ran);
                            let g = move |i: usize| {
                                bump(&ran, i);
                                i
                            };
                            (0..N).zip(handle.imap(0..N, 4, g)).collect()
                        }
                    };
                    let mut seen = vec![false; N];
                    for (i, outcome) in outcomes {
                        assert!(!seen[i], "kind {kind}: input {i} came out twice");
                        seen[i] = true;
                        let ran = load(&ran, i);
                        match outcome {
                            Ok(v) => assert_eq!((v, ran), (i, 1), "kind {kind}: input {i}"),
                            Err(TaskError::Cancelled) => {
                                assert_eq!(ran, 0, "kind {kind}: cancelled input {i} ran")
                            }
                            Err(e) => panic!("kind {kind}: input {i}: {e:?}"),
                        }
                    }
                    // Inputs never yielded never ran.
                    for (i, seen) in seen.iter().enumerate() {
                        if !seen {
                            assert_eq!(load(&ran, i), 0, "kind {kind}: unyielded input {i} ran");
                        }
                    }
                }));
            }
            let target = 1 + round * 97 % 2000;
            until(|| runs.iter().map(|r| Ends::sum(r)).sum::<usize>() >= target);
            let ends = Ends::new();
            stop_pool(stop, pool, &ends);
            for user in users {
                within("a map or window user", move || user.join().is_ok())
                    .then_some(())
                    .expect("a map or window user panicked");
            }
        }
    }
    Ok(())
}

/// Callbacks that each put one more request, run on a polling thread (a
/// clone) or inside the close's own wait, racing a graceful close: every
/// put accepted was called back by the time `close` returned and the
/// polling thread saw nothing pending.
#[test]
fn callbacks_that_put_racing_close_each_accepted_put_is_called_back() -> TestResult {
    fn chained(i: usize, ends: &Arc<Ends>, pool: callpool::WeakPool) -> WorkRequest {
        let (run, ok) = (Arc::clone(ends), Arc::clone(ends));
        WorkRequest::new(
            move |i: usize| {
                run.ran(i);
                i
            },
            i,
        )
        .with_id(i as u64)
        .on_result(move |_, i| {
            bump(&ok.called, i);
            let Some(handle) = pool.upgrade() else { return };
            let Some(next) = ok.index() else { return };
            match handle.put_request(chained(next, &ok, handle.downgrade())) {
                Ok(_) => {}
                Err(PutError::ShutDown(r)) => ok.refuse(&r),
                Err(e) => panic!("{e:?}"),
            }
        })
        .into()
    }
    for polled_elsewhere in [false, true] {
        for round in 0..40 {
            let ends = Ends::new();
            let pool = ThreadPool::new(2);
            for _ in 0..4 {
                let i = ends.index().unwrap();
                pool.put_request(chained(i, &ends, pool.downgrade()))?;
            }
            let poller = polled_elsewhere.then(|| {
                let handle = pool.clone();
                thread::spawn(move || {
                    while !handle.is_shut_down() || handle.pending() > 0 {
                        let _ = handle.poll();
                    }
                })
            });
            let target = 1 + round * 43 % 1500;
            if polled_elsewhere {
                until(|| Ends::sum(&ends.called) >= target);
            } else {
                poll_until_called(&pool, &ends, target);
            }
            let closed = pool.close();
            if let Some(poller) = poller {
                poller.join().expect("the poller panicked");
            }
            match closed {
                Ok(()) => {}
                Err(ShutdownError::Unrun(unrun)) => ends.hand_back(unrun),
                Err(e) => panic!("close: {e}"),
            }
            ends.assert_each_once(
                &format!("polled elsewhere {polled_elsewhere} round {round}"),
                0,
            );
        }
    }
    Ok(())
}
