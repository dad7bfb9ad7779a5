//! An adversarial trial of collectors, keyed requests, deadlines, timing
//! and `stats()`: hostile but legal programs, each asserting exact
//! outcomes.
//!
//! - Keyed requests (`make_requests_with_input` and its fallible form):
//!   each input comes back exactly once in every ending (ok, failed,
//!   panicked, cancelled by `cancel`, swept by another handle's
//!   `shutdown_now`), or is dropped exactly once, with no callback, when
//!   its request is handed back and let go of; inputs whose `Drop`
//!   panics, in a callback and dropped unrun.
//! - Deadlines: zero, passed, far future, `Duration::MAX`; one that
//!   passes while the request waits in its parent worker's slot, in a
//!   batch, behind a full bounded queue; timed requests' records for each
//!   ending (ran, expired, cancelled), their worker index, and a timing
//!   hidden from the callbacks run inside a timed request's callback.
//! - `stats()`: exact at every quiet moment, after each kind of ending,
//!   refused and handed back ones included (in no count); a request
//!   counted before its callback hears how it ended, even a batch's
//!   member cancelled because the batch's put was refused part-way.
//! - Collectors: on bounded request and result queues from several
//!   threads at once, every put form; dropped while their requests are
//!   queued, running, or growing a `CollectorContext::add` chain (with
//!   outcomes whose `Drop` panics); trees that add transitively while the
//!   pool is resized through 0 and 1, or shut down (`shutdown_now`,
//!   `close`) at a chosen step; a put blocked on a full queue as the pool
//!   is shut down now; a collector on a worker dismissed or stopped under
//!   it; graceful shutdowns with its requests still queued.
//! - Two seeded mixes (`TRIAL_SEEDS=20000 cargo test --release --test
//!   collectors_deadlines_adversarial seeded` runs more): collector trees
//!   with stops, and one handle's requests with every kind of deadline,
//!   timed or keyed, cancelled, shut down now and put again elsewhere.
//!
//! Timing never decides a result: a deadline that must pass is waited
//! out before the request can be taken, and the hang bounds of `common`
//! only turn a hang into a failure.

mod common;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{
    make_fallible_requests_with_input, make_requests_with_input, CollectorContext, Context,
    PutError, RequestId, Stats, TaskError, ThreadPool, Timing, WorkRequest,
};
use common::{counter, gate, hide_panics_starting_with, until, within, Dropped};

const DELIBERATE: &str = "trial: deliberate";

fn quiet() {
    hide_panics_starting_with(DELIBERATE);
}

/// The ending counts of `stats()`, to compare in one assertion.
fn endings(stats: Stats) -> (u64, u64, u64, u64) {
    (
        stats.completed,
        stats.failed,
        stats.panicked,
        stats.cancelled,
    )
}

/// Sleeps until `at` has passed: a deadline that must be in the past
/// before a worker may take its request.
fn wait_past(at: Instant) {
    while Instant::now() <= at {
        thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------
// Keyed requests.
// ---------------------------------------------------------------------------

/// An input that says which item it is and counts its drops.
struct Input(usize, #[allow(dead_code)] Dropped);

/// How a keyed request's input came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Back {
    Ok,
    Failed,
    Panicked,
    Cancelled,
}

type Seen = Arc<Mutex<Vec<(usize, Back)>>>;

fn keyed_batch(n: usize, drops: &Arc<AtomicUsize>, seen: &Seen) -> Vec<WorkRequest> {
    let ok = Arc::clone(seen);
    let err = Arc::clone(seen);
    make_fallible_requests_with_input(
        |input: &Input| match input.0 % 4 {
            1 => Err(format!("item {}", input.0)),
            2 => panic!("{DELIBERATE}: item {}", input.0),
            _ => Ok(input.0 * 10),
        },
        (0..n).map(|i| Input(i, Dropped(Arc::clone(drops)))),
        move |_, input: Input, value| {
            assert_eq!(value, input.0 * 10);
            ok.lock().unwrap().push((input.0, Back::Ok));
        },
        move |_, input: Input, error: TaskError<String>| {
            let back = match error {
                TaskError::Failed(why) => {
                    assert_eq!(why, format!("item {}", input.0));
                    Back::Failed
                }
                TaskError::Panicked(_) => Back::Panicked,
                TaskError::Cancelled => Back::Cancelled,
                other => panic!("unexpected ending {other:?}"),
            };
            err.lock().unwrap().push((input.0, back));
        },
    )
}

/// Each input comes back once, to the callback its ending calls for: ok,
/// failed, panicked, or cancelled by `cancel` while queued; each is
/// dropped once (by the callback); `stats()` counts each ending exactly.
#[test]
fn keyed_inputs_come_back_once_in_every_ending() {
    quiet();
    within("keyed endings", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .quiet_panics(true)
            .build()
            .unwrap();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let drops = counter();
        let seen: Seen = Arc::default();
        let requests = keyed_batch(40, &drops, &seen);
        let ids: Vec<RequestId> = requests.iter().map(WorkRequest::id).collect();
        pool.put_all(requests).unwrap();
        // Every fifth cancelled while the worker is held.
        let cancelled: HashSet<usize> = (0..40).filter(|i| i % 5 == 0).collect();
        for &i in &cancelled {
            assert!(pool.cancel(ids[i]), "item {i} was queued");
        }
        held.open();
        assert_eq!(pool.wait().unwrap(), 40);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable_by_key(|&(i, _)| i);
        let expected: Vec<(usize, Back)> = (0..40)
            .map(|i| {
                let back = if cancelled.contains(&i) {
                    Back::Cancelled
                } else {
                    match i % 4 {
                        1 => Back::Failed,
                        2 => Back::Panicked,
                        _ => Back::Ok,
                    }
                };
                (i, back)
            })
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(drops.load(Ordering::SeqCst), 40, "each input dropped once");
        let count = |b: Back| expected.iter().filter(|&&(_, x)| x == b).count() as u64;
        assert_eq!(
            endings(pool.stats()),
            (
                count(Back::Ok) + 1, // and the held request
                count(Back::Failed),
                count(Back::Panicked),
                count(Back::Cancelled)
            )
        );
    });
}

/// Keyed requests handed back by `shutdown_now` are in no count; put on
/// another pool, each input comes back once there; dropped, each is
/// dropped once with no callback. Another handle's keyed requests, swept
/// by the same `shutdown_now`, hear `Cancelled` with their inputs and are
/// counted cancelled.
#[test]
fn keyed_inputs_handed_back_or_swept_by_shutdown_now_end_once() {
    within("keyed shutdown_now", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let (mine_drops, theirs_drops) = (counter(), counter());
        let (mine_seen, theirs_seen): (Seen, Seen) = (Arc::default(), Arc::default());
        // Items 0, 3, 4, 7, ... succeed; none panics or fails below 4k+1, 4k+2:
        // keep them to the ones that succeed, so the second pool runs them all.
        let mine: Vec<WorkRequest> = keyed_batch(12, &mine_drops, &mine_seen)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0 || i % 4 == 3)
            .map(|(_, r)| r)
            .collect();
        assert_eq!(
            mine_drops.load(Ordering::SeqCst),
            6,
            "the unput ones dropped"
        );
        pool.put_all(mine).unwrap();
        other
            .put_all(keyed_batch(8, &theirs_drops, &theirs_seen))
            .unwrap();
        let stopper = pool.clone();
        let back = stopper.shutdown_now();
        assert_eq!(back.len(), 6, "this handle's queued keyed requests");
        held.open();
        assert_eq!(other.wait().unwrap(), 8);
        until(|| pool.stats().completed == 1);
        let mut theirs = theirs_seen.lock().unwrap().clone();
        theirs.sort_unstable_by_key(|&(i, _)| i);
        assert_eq!(
            theirs,
            (0..8).map(|i| (i, Back::Cancelled)).collect::<Vec<_>>()
        );
        assert_eq!(theirs_drops.load(Ordering::SeqCst), 8);
        // The held request ran; the 8 swept were cancelled; the 6 handed
        // back are in no count.
        assert_eq!(endings(pool.stats()), (1, 0, 0, 8));
        assert!(mine_seen.lock().unwrap().is_empty());

        let mut back = back.into_iter();
        let again = ThreadPool::new(2);
        again.put_all(back.by_ref().take(3)).unwrap();
        assert_eq!(again.wait().unwrap(), 3);
        drop(back);
        assert_eq!(
            mine_seen.lock().unwrap().len(),
            3,
            "each put again came back once"
        );
        assert!(mine_seen
            .lock()
            .unwrap()
            .iter()
            .all(|&(_, b)| b == Back::Ok));
        assert_eq!(
            mine_drops.load(Ordering::SeqCst),
            12,
            "every input dropped once"
        );
        assert_eq!(endings(again.stats()), (3, 0, 0, 0));
    });
}

/// Keyed requests in a batch: `Batch::cancel` hands each queued input to
/// `on_error` with `Cancelled` once; a second batch handed back by
/// `shutdown_now` counts there as cancelled (its batch-done callback runs
/// then), hands no input to a callback, and put on another pool hands
/// each input back once there.
#[test]
fn keyed_requests_in_batches_cancelled_or_handed_back() {
    within("keyed batches", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let drops = counter();
        let seen: Seen = Arc::default();
        // Items 0, 3, 4, 7 succeed (see `keyed_batch`); cancelled, all the same.
        let cancelled = pool.put_batch(keyed_batch(8, &drops, &seen)).unwrap();
        assert_eq!(cancelled.cancel(), 8);
        let later_seen: Seen = Arc::default();
        let later = keyed_batch(8, &drops, &later_seen);
        let later: Vec<WorkRequest> = later
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0 || i % 4 == 3)
            .map(|(_, r)| r)
            .collect();
        let handed = pool.put_batch(later).unwrap();
        let (done_tx, done) = mpsc::channel();
        handed.on_done(move |progress| done_tx.send(progress).unwrap());
        // The cancelled ones' callbacks run here: `shutdown_now` would
        // discard this handle's results.
        assert_eq!(pool.poll().unwrap(), 8);
        let back = pool.clone().shutdown_now();
        assert_eq!(back.len(), 4);
        let progress = done
            .try_recv()
            .expect("the batch-done callback ran at shutdown_now");
        assert_eq!((progress.total, progress.cancelled), (4, 4));
        held.open();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable_by_key(|&(i, _)| i);
        assert_eq!(
            seen,
            (0..8).map(|i| (i, Back::Cancelled)).collect::<Vec<_>>()
        );
        assert!(later_seen.lock().unwrap().is_empty());
        let again = ThreadPool::new(2);
        again.put_all(back).unwrap();
        assert_eq!(again.wait().unwrap(), 4);
        let mut later_seen = later_seen.lock().unwrap().clone();
        later_seen.sort_unstable_by_key(|&(i, _)| i);
        assert_eq!(
            later_seen,
            [(0, Back::Ok), (3, Back::Ok), (4, Back::Ok), (7, Back::Ok)]
        );
        assert_eq!(drops.load(Ordering::SeqCst), 16, "every input dropped once");
        until(|| pool.stats().completed == 1);
        assert_eq!(endings(pool.stats()), (1, 0, 0, 8));
        assert_eq!(endings(again.stats()), (4, 0, 0, 0));
    });
}

/// `put_all` stops at the first refusal: the requests after it stay in
/// an iterator passed `by_ref`, to be put elsewhere, each input then
/// handed back once; passed by value, they are dropped with it, unrun,
/// and their inputs reach no callback.
#[test]
fn put_all_refused_part_way_leaves_the_rest_in_the_iterator() {
    within("put_all refused", || {
        let drops = counter();
        let seen: Seen = Arc::default();
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(2)
            .build()
            .unwrap();
        let mut requests = keyed_batch(8, &drops, &seen)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == 0 || i % 4 == 3)
            .map(|(_, r)| r);
        let refused = pool.put_all(requests.by_ref()).unwrap_err();
        assert!(matches!(refused, PutError::NoWorkers(_)), "{refused:?}");
        let rest: Vec<WorkRequest> = std::iter::once(refused.into_request())
            .chain(requests)
            .collect();
        assert_eq!(rest.len(), 2);
        let again = ThreadPool::new(1);
        again.put_all(rest).unwrap();
        again.wait().unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            4 + 2,
            "the four not kept, and two handed back"
        );

        // By value: the rest go with the iterator.
        let seen: Seen = Arc::default();
        let drops = counter();
        let refused = pool.put_all(keyed_batch(4, &drops, &seen)).unwrap_err();
        assert!(matches!(refused, PutError::NoWorkers(_)));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "all but the refused one, dropped unrun"
        );
        drop(refused);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
        assert!(seen.lock().unwrap().is_empty());
        assert_eq!(pool.shutdown_now().len(), 2);
    });
}

/// An input whose `Drop` panics.
struct Bomb(usize, Arc<AtomicUsize>);

impl Drop for Bomb {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        if !thread::panicking() {
            panic!("{DELIBERATE}: input {} dropped", self.0);
        }
    }
}

/// Inputs whose `Drop` panics: dropped unrun (handed back, then let go
/// of) the panics are contained; dropped by their callbacks, each panic
/// leaves `wait` and the rest are handled by the next `wait`. Each input
/// reaches one callback once and is dropped once.
#[test]
fn keyed_inputs_whose_drop_panics_are_each_handled_once() {
    quiet();
    within("panicking inputs", || {
        let drops = counter();
        let called = counter();
        let make = |n: usize| {
            let called = Arc::clone(&called);
            make_requests_with_input(
                |b: &Bomb| b.0,
                (0..n).map(|i| Bomb(i, Arc::clone(&drops))),
                move |_, input: Bomb, value| {
                    assert_eq!(input.0, value);
                    called.fetch_add(1, Ordering::SeqCst);
                    drop(input);
                },
                |_, _, error| panic!("unexpected {error}"),
            )
        };
        // Dropped unrun: handed back by shutdown_now, then let go of.
        let pool = ThreadPool::new(0);
        pool.put_all(make(5)).unwrap();
        let back = pool.shutdown_now();
        assert_eq!(back.len(), 5);
        drop(back);
        assert_eq!(drops.load(Ordering::SeqCst), 5);
        assert_eq!(called.load(Ordering::SeqCst), 0);

        // Dropped by the callbacks: each one's panic leaves a `wait`.
        let pool = ThreadPool::new(2);
        pool.put_all(make(6)).unwrap();
        let mut panics = 0;
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| pool.wait())) {
                Ok(result) => {
                    result.unwrap();
                    break;
                }
                Err(_) => panics += 1,
            }
            assert!(panics <= 6, "more panics than inputs");
        }
        assert_eq!(panics, 6);
        assert_eq!(called.load(Ordering::SeqCst), 6);
        assert_eq!(drops.load(Ordering::SeqCst), 11);
        assert_eq!(pool.pending(), 0);
        assert_eq!(endings(pool.stats()), (6, 0, 0, 0));
    });
}

// ---------------------------------------------------------------------------
// Deadlines and timing.
// ---------------------------------------------------------------------------

/// What the callbacks of requests heard: a tag, the outcome, and the
/// timing they read.
type Heard = Arc<Mutex<Vec<(u32, Result<u32, TaskError>, Option<Timing>)>>>;

/// Gives a `WorkRequest::new(.., u32)` callbacks that record in `heard`.
macro_rules! heard {
    ($heard:expr, $tag:expr, $request:expr) => {{
        let (ok, err) = (Arc::clone(&$heard), Arc::clone(&$heard));
        let tag: u32 = $tag;
        $request
            .on_result(move |_, v| ok.lock().unwrap().push((tag, Ok(v), callpool::timing())))
            .on_error(move |_, e| err.lock().unwrap().push((tag, Err(e), callpool::timing())))
    }};
}

fn sorted(heard: &Heard) -> Vec<(u32, Result<u32, TaskError>, Option<Timing>)> {
    let mut all = heard.lock().unwrap().clone();
    all.sort_by_key(|&(tag, _, _)| tag);
    all
}

/// A deadline of now, of zero, or already past expires; one far ahead, or
/// a timeout of `Duration::MAX` (no deadline), runs. A timed request that
/// expired ran on no worker, for no time; one that ran says its worker.
#[test]
fn deadlines_of_zero_past_far_and_max() {
    within("deadlines", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let calls = counter();
        let work = |n: u32| {
            let calls = Arc::clone(&calls);
            WorkRequest::new(
                move |n: u32| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    n
                },
                n,
            )
        };
        let heard: Heard = Arc::default();
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let far = now + Duration::from_secs(86_400);
        pool.put_request(heard!(heard, 0, work(0).deadline(now)))
            .unwrap();
        pool.put_request(heard!(heard, 1, work(1).timeout(Duration::ZERO)))
            .unwrap();
        pool.put_request(heard!(heard, 2, work(2).deadline(past)))
            .unwrap();
        pool.put_request(heard!(heard, 3, work(3).deadline(far)))
            .unwrap();
        pool.put_request(heard!(heard, 4, work(4).timeout(Duration::MAX)))
            .unwrap();
        pool.put_request(heard!(heard, 5, work(5).deadline(now).timed()))
            .unwrap();
        pool.put_request(heard!(heard, 6, work(6).timeout(Duration::MAX).timed()))
            .unwrap();
        pool.put_request(heard!(heard, 7, work(7).timed().deadline(far)))
            .unwrap();
        held.open();
        assert_eq!(pool.wait().unwrap(), 8);
        let all = sorted(&heard);
        let outcomes: Vec<_> = all.iter().map(|(tag, o, _)| (*tag, o.clone())).collect();
        use TaskError::Expired;
        assert_eq!(
            outcomes,
            [
                (0, Err(Expired)),
                (1, Err(Expired)),
                (2, Err(Expired)),
                (3, Ok(3)),
                (4, Ok(4)),
                (5, Err(Expired)),
                (6, Ok(6)),
                (7, Ok(7)),
            ]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        for (tag, _, timing) in &all {
            match tag {
                0..=4 => assert_eq!(*timing, None, "request {tag} is not timed"),
                5 => {
                    let t = timing.expect("timed");
                    assert_eq!((t.worker, t.running), (None, Duration::ZERO));
                }
                _ => assert_eq!(timing.expect("timed").worker, Some(0)),
            }
        }
        assert_eq!(endings(pool.stats()), (1 + 4, 0, 0, 4));
    });
}

/// Children put by `Context::put` wait in their worker's slot while the
/// parent runs (one worker: nobody else takes them); a deadline that
/// passes meanwhile expires them, one far ahead or none lets them run.
/// The same children, handed back by `shutdown_now` while the parent still
/// runs and put on another pool, expire there too, and the first pool
/// counts them nowhere.
#[test]
fn a_deadline_passes_while_children_wait_in_their_workers_slot() {
    within("children expire in the slot", || {
        for hand_back in [false, true] {
            let pool = ThreadPool::new(1);
            let heard: Heard = Arc::default();
            let at = Instant::now() + Duration::from_millis(20);
            let (children_put, put_done) = mpsc::channel();
            let (go_on, proceed) = mpsc::channel::<()>();
            let theirs = Arc::clone(&heard);
            pool.put_request(WorkRequest::with_context(
                move |cx: &Context<'_>, _: ()| {
                    let heard = theirs;
                    cx.put(heard!(
                        heard,
                        0,
                        WorkRequest::new(|n: u32| n, 0).deadline(at)
                    ))
                    .unwrap();
                    cx.put(heard!(heard, 1, WorkRequest::new(|n: u32| n, 1)))
                        .unwrap();
                    cx.put(heard!(
                        heard,
                        2,
                        WorkRequest::new(|n: u32| n, 2).deadline(at).timed()
                    ))
                    .unwrap();
                    cx.put(heard!(
                        heard,
                        3,
                        WorkRequest::new(|n: u32| n, 3).deadline(at + Duration::from_secs(86_400))
                    ))
                    .unwrap();
                    children_put.send(()).unwrap();
                    let _ = proceed.recv();
                    wait_past(at);
                },
                (),
            ))
            .unwrap();
            put_done.recv().unwrap();
            if hand_back {
                let back = pool.clone().shutdown_now();
                assert_eq!(back.len(), 4, "the four children, from the slot");
                drop(go_on);
                // The parent ends; its children, handed back, count nowhere.
                until(|| pool.stats().completed == 1);
                assert_eq!(endings(pool.stats()), (1, 0, 0, 0));
                let again = ThreadPool::new(1);
                again.put_all(back).unwrap();
                assert_eq!(again.wait().unwrap(), 4);
                assert_eq!(endings(again.stats()), (2, 0, 0, 2));
            } else {
                drop(go_on);
                assert_eq!(pool.wait().unwrap(), 5);
                assert_eq!(endings(pool.stats()), (3, 0, 0, 2));
            }
            let all = sorted(&heard);
            let outcomes: Vec<_> = all.iter().map(|(tag, o, _)| (*tag, o.clone())).collect();
            assert_eq!(
                outcomes,
                [
                    (0, Err(TaskError::Expired)),
                    (1, Ok(1)),
                    (2, Err(TaskError::Expired)),
                    (3, Ok(3))
                ],
                "handed back: {hand_back}"
            );
            let timing = all[2].2.expect("timed");
            assert_eq!((timing.worker, timing.running), (None, Duration::ZERO));
        }
    });
}

/// Members of a batch whose deadline passed expire: the batch counts them
/// cancelled, `stats()` too; the rest run.
#[test]
fn expired_members_of_a_batch_count_as_cancelled_there_and_in_stats() {
    within("batch deadlines", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let heard: Heard = Arc::default();
        let at = Instant::now() + Duration::from_millis(10);
        let members: Vec<WorkRequest> = (0..10u32)
            .map(|n| {
                let request = WorkRequest::new(|n: u32| n, n);
                if n % 2 == 0 {
                    heard!(heard, n, request.deadline(at)).into()
                } else {
                    heard!(heard, n, request).into()
                }
            })
            .collect();
        let batch = pool.put_batch(members).unwrap();
        wait_past(at);
        held.open();
        assert_eq!(pool.wait().unwrap(), 10);
        let progress = batch.progress();
        assert_eq!(
            (
                progress.total,
                progress.done,
                progress.failed,
                progress.cancelled
            ),
            (10, 5, 0, 5)
        );
        let all = sorted(&heard);
        for (tag, outcome, _) in &all {
            if tag % 2 == 0 {
                assert_eq!(*outcome, Err(TaskError::Expired));
            } else {
                assert_eq!(*outcome, Ok(*tag));
            }
        }
        assert_eq!(all.len(), 10);
        assert_eq!(endings(pool.stats()), (1 + 5, 0, 0, 5));
    });
}

/// A deadline that passes while the request waits behind a full bounded
/// queue (its put blocked for room, or it sat in the queue) expires it
/// once a worker takes it.
#[test]
fn a_deadline_passes_behind_a_full_queue() {
    within("deadline behind a full queue", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let heard: Heard = Arc::default();
        let at = Instant::now() + Duration::from_millis(20);
        pool.put_request(heard!(
            heard,
            0,
            WorkRequest::new(|n: u32| n, 0).deadline(at)
        ))
        .unwrap();
        let opener = thread::spawn(move || {
            wait_past(at);
            held.open();
        });
        // Blocks for room until the gate opens, past the deadline.
        pool.put_request_timeout(
            heard!(
                heard,
                1,
                WorkRequest::new(|n: u32| n, 1).deadline(at).timed()
            ),
            common::HANG,
        )
        .unwrap();
        pool.put_request(heard!(heard, 2, WorkRequest::new(|n: u32| n, 2)))
            .unwrap();
        opener.join().unwrap();
        assert_eq!(pool.wait().unwrap(), 3);
        let all = sorted(&heard);
        let outcomes: Vec<_> = all.iter().map(|(tag, o, _)| (*tag, o.clone())).collect();
        assert_eq!(
            outcomes,
            [
                (0, Err(TaskError::Expired)),
                (1, Err(TaskError::Expired)),
                (2, Ok(2))
            ]
        );
        assert_eq!(endings(pool.stats()), (2, 0, 0, 2));
    });
}

/// Timed requests on three workers: each one's worker is the one that ran
/// it, its running time covers what its callable measured of itself, and
/// its time queued fits between its making and its start.
#[test]
fn timed_records_agree_with_what_the_callable_saw() {
    within("timed records", || {
        let pool = ThreadPool::new(3);
        type Seen = (usize, Option<usize>, Instant, Duration, Instant);
        let records: Arc<Mutex<Vec<(Seen, Timing)>>> = Arc::default();
        for i in 0..60usize {
            let records = Arc::clone(&records);
            let made_before = Instant::now();
            pool.put_request(
                WorkRequest::with_context(
                    move |cx: &Context<'_>, i: usize| {
                        let start = Instant::now();
                        let mut x = 0u64;
                        for k in 0..(i as u64 * 200) {
                            x = x.wrapping_add(k * k);
                        }
                        std::hint::black_box(x);
                        (i, cx.worker_index(), start, start.elapsed())
                    },
                    i,
                )
                .timed()
                .on_result(move |_, (i, worker, start, ran)| {
                    let timing = callpool::timing().expect("timed");
                    records
                        .lock()
                        .unwrap()
                        .push(((i, worker, start, ran, made_before), timing));
                }),
            )
            .unwrap();
        }
        assert_eq!(pool.wait().unwrap(), 60);
        let records = records.lock().unwrap();
        assert_eq!(records.len(), 60);
        for &((i, worker, start, ran, made_before), timing) in records.iter() {
            assert!(
                worker.is_some_and(|w| w < 3),
                "request {i}: worker {worker:?}"
            );
            assert_eq!(timing.worker, worker, "request {i}");
            assert!(timing.running >= ran, "request {i}: {timing:?} < {ran:?}");
            assert!(
                timing.queued <= start.duration_since(made_before),
                "request {i}: queued {:?} longer than from before its making to its start",
                timing.queued
            );
        }
    });
}

/// Inside a timed request's callback, the callbacks run by a collector's
/// wait or by another handle's wait read their own timing (none, or
/// theirs), and the outer one reads its own again after.
#[test]
fn a_timed_callback_hides_its_timing_from_the_callbacks_it_runs() {
    within("hidden timing", || {
        let pool = ThreadPool::new(2);
        let other = pool.new_handle();
        type Read = Vec<(&'static str, Option<Timing>)>;
        let inner: Arc<Mutex<Read>> = Arc::default();
        for (what, timed) in [("other's untimed", false), ("other's timed", true)] {
            let inner = Arc::clone(&inner);
            let request = WorkRequest::new(|n: u32| n, 1);
            if timed {
                other
                    .put_request(request.timed().on_result(move |_, _| {
                        inner.lock().unwrap().push((what, callpool::timing()));
                    }))
                    .unwrap();
            } else {
                other
                    .put_request(request.on_result(move |_, _| {
                        inner.lock().unwrap().push((what, callpool::timing()));
                    }))
                    .unwrap();
            }
        }
        let (outer_tx, outer_rx) = mpsc::channel();
        let for_outer = Arc::clone(&inner);
        let pool_in = pool.clone();
        pool.put_request(
            WorkRequest::new(|n: u32| n, 0)
                .timed()
                .on_result(move |_, _| {
                    let before = callpool::timing().expect("timed");
                    let seen = RefCell::new(Vec::new());
                    let mut collector = pool_in.collector::<u32>();
                    for n in 0..3 {
                        collector
                            .put_then(
                                |n: u32| n,
                                n,
                                |_| seen.borrow_mut().push(callpool::timing()),
                            )
                            .unwrap();
                    }
                    collector.wait_with(|_, _| {});
                    drop(collector);
                    let in_collector = seen.into_inner();
                    other.wait().unwrap();
                    let after = callpool::timing();
                    for_outer
                        .lock()
                        .unwrap()
                        .push(("collector", in_collector.into_iter().flatten().next()));
                    outer_tx.send((before, after, 3)).unwrap();
                }),
        )
        .unwrap();
        assert_eq!(pool.wait().unwrap(), 1);
        let (before, after, _) = outer_rx.recv().unwrap();
        assert_eq!(after, Some(before), "the outer timing, restored");
        let inner = inner.lock().unwrap();
        let get = |what: &str| inner.iter().find(|(w, _)| *w == what).expect(what).1;
        assert_eq!(
            get("collector"),
            None,
            "the collector's callbacks read no timing"
        );
        assert_eq!(get("other's untimed"), None);
        let theirs = get("other's timed").expect("its own timing");
        assert!(theirs.worker.is_some());
        assert_ne!(Some(theirs), Some(before));
    });
}

// ---------------------------------------------------------------------------
// Collectors.
// ---------------------------------------------------------------------------

/// Three threads, each with a collector on its own handle of one pool
/// whose request queue holds 2 and result queues 1, put 160 requests each
/// by every put form (retrying the refused ones), beside handle requests
/// that fill the result queue: every outcome comes back once, to its own
/// collector, and `stats()` counts them exactly.
#[test]
fn collectors_from_several_threads_on_bounded_queues() {
    within("bounded collectors", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(2)
            .result_capacity(1)
            .build()
            .unwrap();
        const EACH: u32 = 160;
        let threads: Vec<_> = (0..3u32)
            .map(|t| {
                let handle = pool.new_handle();
                thread::spawn(move || {
                    let called_back = Arc::new(AtomicUsize::new(0));
                    let mut outcomes: HashMap<RequestId, Result<u32, TaskError<u32>>> =
                        HashMap::new();
                    let mut expected: HashMap<RequestId, Result<u32, TaskError<u32>>> =
                        HashMap::new();
                    let mut collector = handle.fallible_collector::<u32, u32>();
                    let record = |c: &mut callpool::Collector<'_, u32, u32>,
                                  outcomes: &mut HashMap<_, _>| {
                        if let std::task::Poll::Ready(Some((id, o))) = c.try_next_outcome() {
                            assert!(outcomes.insert(id, o).is_none(), "outcome twice");
                        }
                    };
                    for i in 0..EACH {
                        let n = t * 1_000 + i;
                        if i % 8 == 0 {
                            let called_back = Arc::clone(&called_back);
                            handle
                                .put_request(WorkRequest::new(|n: u32| n, n).on_result(
                                    move |_, _| {
                                        called_back.fetch_add(1, Ordering::SeqCst);
                                    },
                                ))
                                .unwrap();
                        }
                        let id = match i % 4 {
                            0 => collector.put(|n: u32| n + 1, n).unwrap(),
                            1 => {
                                let (mut f, mut a) = (|n: u32| n + 1, n);
                                loop {
                                    match collector.try_put(f, a) {
                                        Ok(id) => break id,
                                        Err(refused) => {
                                            assert!(refused.is_full());
                                            (f, a) = refused.into_parts();
                                            record(&mut collector, &mut outcomes);
                                        }
                                    }
                                }
                            }
                            2 => {
                                let (mut f, mut a) = (|n: u32| n + 1, n);
                                loop {
                                    match collector.put_timeout(f, a, Duration::from_micros(50)) {
                                        Ok(id) => break id,
                                        Err(refused) => {
                                            assert!(refused.is_timed_out(), "{refused:?}");
                                            (f, a) = refused.into_parts();
                                            record(&mut collector, &mut outcomes);
                                        }
                                    }
                                }
                            }
                            _ => collector.put_fallible(|n: u32| Err(n), n).unwrap(),
                        };
                        let want = if i % 4 == 3 {
                            Err(TaskError::Failed(n))
                        } else {
                            Ok(n + 1)
                        };
                        assert!(expected.insert(id, want).is_none(), "id given twice");
                    }
                    while let Some((id, o)) = collector.next_outcome() {
                        assert!(outcomes.insert(id, o).is_none(), "outcome twice");
                    }
                    assert_eq!(collector.pending(), 0);
                    handle.wait().unwrap();
                    assert_eq!(outcomes, expected);
                    assert_eq!(called_back.load(Ordering::SeqCst), (EACH / 8) as usize);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let each = u64::from(EACH);
        assert_eq!(
            endings(pool.stats()),
            (3 * (each * 3 / 4 + each / 8), 3 * each / 4, 0, 0)
        );
    });
}

/// An outcome whose `Drop` panics, counting its drops.
struct Loud(Arc<AtomicUsize>);

impl Drop for Loud {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        if !thread::panicking() {
            panic!("{DELIBERATE}: an unread outcome dropped");
        }
    }
}

/// A collector dropped while one of its requests runs, others are queued
/// and a `CollectorContext::add` chain is half grown: everything runs to
/// its end, once, each outcome (whose `Drop` panics) is dropped once,
/// contained, the workers live on, and `stats()` counts every request.
#[test]
fn a_collector_dropped_mid_chain_lets_everything_end_once() {
    quiet();
    within("dropped collector", || {
        let pool = ThreadPool::new(2);
        let ran = counter();
        let drops = counter();
        let (held, latch) = gate();
        let (chain_at_10, reached) = mpsc::channel::<()>();
        let (resume, go_on) = mpsc::channel::<()>();
        let go_on = Arc::new(Mutex::new(go_on));
        {
            let mut collector = pool.collector::<Loud>();
            let (r, d) = (Arc::clone(&ran), Arc::clone(&drops));
            collector
                .put(
                    move |_: ()| {
                        latch.hold();
                        r.fetch_add(1, Ordering::SeqCst);
                        Loud(d)
                    },
                    (),
                )
                .unwrap();
            held.await_start();
            /// A link's number, the counts, and the stop at link 10.
            type Link = (
                u32,
                Arc<AtomicUsize>,
                Arc<AtomicUsize>,
                mpsc::Sender<()>,
                Arc<Mutex<mpsc::Receiver<()>>>,
            );
            fn link(cx: &CollectorContext<'_, Loud>, (n, ran, drops, at_10, go_on): Link) -> Loud {
                if n == 10 {
                    at_10.send(()).unwrap();
                    go_on.lock().unwrap().recv().unwrap();
                }
                if n < 99 {
                    let next: Link = (
                        n + 1,
                        Arc::clone(&ran),
                        Arc::clone(&drops),
                        at_10.clone(),
                        go_on,
                    );
                    cx.add_with_context(link, next).unwrap();
                }
                ran.fetch_add(1, Ordering::SeqCst);
                Loud(drops)
            }
            collector
                .put_with_context(
                    link,
                    (0, Arc::clone(&ran), Arc::clone(&drops), chain_at_10, go_on),
                )
                .unwrap();
            for _ in 0..5 {
                let (r, d) = (Arc::clone(&ran), Arc::clone(&drops));
                collector
                    .put(
                        move |_: ()| {
                            r.fetch_add(1, Ordering::SeqCst);
                            Loud(d)
                        },
                        (),
                    )
                    .unwrap();
            }
            reached.recv().unwrap();
            // Dropped here: one request held, the chain at link 10.
        }
        resume.send(()).unwrap();
        held.open();
        let total = 1 + 100 + 5;
        until(|| drops.load(Ordering::SeqCst) == total);
        assert_eq!(ran.load(Ordering::SeqCst), total);
        until(|| pool.stats().completed == total as u64);
        assert_eq!(endings(pool.stats()), (total as u64, 0, 0, 0));
        // The workers live on.
        assert_eq!(pool.submit(|n: u32| n, 7).unwrap().wait(), Ok(7));
        assert_eq!(pool.stats().workers, 2);
    });
}

/// Node `n` of a tree of `N` adds `2n + 1` and `2n + 2`.
fn grow_tree(n: usize, limit: usize) -> Vec<usize> {
    [2 * n + 1, 2 * n + 2]
        .into_iter()
        .filter(|&m| m < limit)
        .collect()
}

/// A tree of 1,500 requests added transitively while another thread
/// resizes the pool through 0, 1 and up: every node comes back once, the
/// collector ends, and `stats()` counts each.
#[test]
fn a_collector_tree_grows_while_the_pool_is_resized_through_zero() {
    within("resized tree", || {
        const N: usize = 1_500;
        let pool = ThreadPool::new(2);
        let done = Arc::new(AtomicBool::new(false));
        let resizer = {
            let (pool, done) = (pool.clone(), Arc::clone(&done));
            thread::spawn(move || {
                for size in [0, 1, 3, 0, 1, 0, 2, 1].into_iter().cycle() {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    pool.resize(size).unwrap();
                    thread::sleep(Duration::from_micros(300));
                }
                pool.resize(2).unwrap();
            })
        };
        fn node(cx: &CollectorContext<'_, usize>, n: usize) -> usize {
            for m in grow_tree(n, N) {
                cx.add_with_context(node, m).unwrap();
            }
            n
        }
        let mut collector = pool.collector::<usize>();
        collector.put_with_context(node, 0).unwrap();
        let mut seen = vec![0u8; N];
        let mut ids = HashSet::new();
        for (id, outcome) in collector.outcomes() {
            assert!(ids.insert(id));
            seen[outcome.unwrap()] += 1;
        }
        done.store(true, Ordering::SeqCst);
        resizer.join().unwrap();
        assert!(seen.iter().all(|&s| s == 1), "a node not seen exactly once");
        assert_eq!(endings(pool.stats()), (N as u64, 0, 0, 0));
    });
}

/// How a tree stopped at a chosen step ended.
#[derive(Debug, Default)]
struct TreeEnd {
    ok: u64,
    cancelled: u64,
    ran: u64,
    refused: u64,
}

/// Runs a tree of `limit` nodes on a collector, calling `stop` on the
/// pool (from the node `at`'s callable when `inside`, else from the
/// collector's thread at the `at`th outcome); counts how it ended.
fn stopped_tree(limit: usize, at: usize, inside: bool, stop: fn(ThreadPool)) -> (TreeEnd, Stats) {
    let pool = ThreadPool::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let stopper = Arc::new(Mutex::new(Some(pool.clone())));
    type Shared = (
        Arc<AtomicUsize>,
        Arc<AtomicUsize>,
        Arc<Mutex<Option<ThreadPool>>>,
        usize,
        usize,
        Option<fn(ThreadPool)>,
    );
    fn node(cx: &CollectorContext<'_, usize>, (n, shared): (usize, Shared)) -> usize {
        let (ran, refused, stopper, limit, at, stop) = &shared;
        ran.fetch_add(1, Ordering::SeqCst);
        if let Some(stop) = stop.filter(|_| n == *at) {
            // Taken out first: the lock is not held while the pool stops.
            let pool = stopper.lock().unwrap().take();
            if let Some(pool) = pool {
                stop(pool);
            }
        }
        for m in grow_tree(n, *limit) {
            match cx.add_with_context(node, (m, shared.clone())) {
                Ok(_) => {}
                Err(PutError::ShutDown(_)) => {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        n
    }
    let shared: Shared = (
        Arc::clone(&ran),
        Arc::clone(&refused),
        Arc::clone(&stopper),
        limit,
        at,
        inside.then_some(stop),
    );
    let mut end = TreeEnd::default();
    {
        let mut collector = pool.collector::<usize>();
        collector.put_with_context(node, (0, shared)).unwrap();
        let mut ids = HashSet::new();
        let mut handled = 0;
        while let Some((id, outcome)) = collector.next_outcome() {
            assert!(ids.insert(id), "an outcome twice");
            handled += 1;
            match outcome {
                Ok(_) => end.ok += 1,
                Err(TaskError::Cancelled) => end.cancelled += 1,
                Err(other) => panic!("{other:?}"),
            }
            if !inside && handled == at {
                // Taken out first: held across `close`, the lock would
                // wait for a worker that waits for it.
                let pool = stopper.lock().unwrap().take();
                if let Some(pool) = pool {
                    stop(pool);
                }
            }
        }
    }
    end.ran = ran.load(Ordering::SeqCst) as u64;
    end.refused = refused.load(Ordering::SeqCst) as u64;
    (end, pool.stats())
}

/// A tree of collector requests stopped by `shutdown_now` from one of its
/// own callables, or by `close` or `shutdown_now` from the collector's
/// thread, at a chosen step: every request added ends once (ran, or
/// cancelled: swept, or refused to its `add`), the collector ends, and
/// `stats()` counts what ran and what was swept, not what was refused.
#[test]
fn a_collector_tree_stopped_at_a_chosen_step_ends_every_request_once() {
    within("stopped trees", || {
        let now = |pool: ThreadPool| drop(pool.shutdown_now());
        let close = |pool: ThreadPool| pool.close().unwrap();
        for (at, inside, stop, what) in [
            (0, true, now as fn(ThreadPool), "shutdown_now in the root"),
            (5, true, now, "shutdown_now in node 5"),
            (60, true, now, "shutdown_now in node 60"),
            (1, false, now, "shutdown_now after 1 outcome"),
            (30, false, now, "shutdown_now after 30 outcomes"),
            (1, false, close, "close after 1 outcome"),
            (30, false, close, "close after 30 outcomes"),
        ] {
            let (end, stats) = stopped_tree(400, at, inside, stop);
            assert_eq!(end.ok, end.ran, "{what}: {end:?}");
            assert!(end.refused <= end.cancelled, "{what}: {end:?}");
            assert!(end.ok + end.cancelled <= 400, "{what}: {end:?}");
            if at == 0 {
                // The root stops the pool before it adds its two children.
                assert_eq!((end.ok, end.cancelled, end.refused), (1, 2, 2), "{what}");
            }
            assert_eq!(
                endings(stats),
                (end.ran, 0, 0, end.cancelled - end.refused),
                "{what}: {end:?}"
            );
        }
    });
}

/// A collector's put blocked on a full queue as another thread shuts the
/// pool down now: the put is refused (nothing pending for it), the
/// accepted ones are swept and come back `Cancelled`, and the refused
/// request, put on another pool, runs there without reaching the
/// collector.
#[test]
fn a_collector_put_blocked_on_a_full_queue_meets_shutdown_now() {
    within("blocked collector put", || {
        for form in 0..3 {
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .build()
                .unwrap();
            let (held, latch) = gate();
            pool.execute(move || latch.hold()).unwrap();
            held.await_start();
            let ran = counter();
            let mut collector = pool.collector::<u32>();
            for n in 0..2 {
                let ran = Arc::clone(&ran);
                collector
                    .put(
                        move |n: u32| {
                            ran.fetch_add(1, Ordering::SeqCst);
                            n
                        },
                        n,
                    )
                    .unwrap();
            }
            let stopper = {
                let pool = pool.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(5));
                    let back = pool.shutdown_now();
                    held.open();
                    back.len()
                })
            };
            let ran_late = Arc::clone(&ran);
            let mut late = move |n: u32| {
                ran_late.fetch_add(1, Ordering::SeqCst);
                n
            };
            match form {
                0 => {
                    let refused = collector.put(late, 9).unwrap_err();
                    assert!(matches!(refused, PutError::ShutDown(_)), "{refused:?}");
                    let elsewhere = ThreadPool::new(1);
                    elsewhere.put_request(refused.into_request()).unwrap();
                    until(|| elsewhere.stats().completed == 1);
                    until(|| ran.load(Ordering::SeqCst) == 1);
                }
                1 => {
                    let refused = collector.put_timeout(late, 9, common::HANG).unwrap_err();
                    assert!(refused.is_shut_down(), "{refused:?}");
                    let (late, n) = refused.into_parts();
                    assert_eq!(late(n), 9);
                }
                _ => {
                    let refused = loop {
                        match collector.try_put(late, 9) {
                            Err(r) if r.is_full() => {
                                let (f, _) = r.into_parts();
                                late = f;
                                thread::yield_now();
                            }
                            other => break other.unwrap_err(),
                        }
                    };
                    assert!(refused.is_shut_down(), "{refused:?}");
                    drop(refused);
                }
            }
            assert_eq!(
                stopper.join().unwrap(),
                0,
                "a collector's requests are never handed back"
            );
            assert_eq!(collector.pending(), 2);
            let outcomes: Vec<_> = collector.outcomes().map(|(_, o)| o).collect();
            assert_eq!(
                outcomes,
                [Err(TaskError::Cancelled), Err(TaskError::Cancelled)]
            );
            assert_eq!(collector.next_outcome(), None);
            until(|| pool.stats().completed == 1);
            assert_eq!(endings(pool.stats()), (1, 0, 0, 2), "form {form}");
            assert_eq!(ran.load(Ordering::SeqCst), usize::from(form < 2));
        }
    });
}

/// A collector inside a callable, on a pool that another thread resizes
/// to 0 (dismissing the very worker running the callable) or shuts down
/// now, while the collector's requests are still queued: with no worker
/// left, it runs them itself, or hears them cancelled, each once, and
/// `stats()` counts them so.
#[test]
fn a_collector_on_a_dismissed_or_stopped_worker_ends_its_requests_there() {
    within("collector on a dismissed worker", || {
        for stop_now in [false, true] {
            let pool = ThreadPool::new(1);
            let (queued, all_queued) = mpsc::channel();
            let (go_on, stopped) = mpsc::channel::<()>();
            let me = pool.clone();
            let ticket = pool
                .submit(
                    move |_: ()| {
                        let here = thread::current().id();
                        let mut collector = me.collector::<thread::ThreadId>();
                        for _ in 0..30 {
                            collector.put(|_: ()| thread::current().id(), ()).unwrap();
                        }
                        queued.send(()).unwrap();
                        let _ = stopped.recv();
                        let (mut ran_here, mut cancelled) = (0, 0);
                        for (_, outcome) in collector.outcomes() {
                            match outcome {
                                Ok(id) => {
                                    assert_eq!(id, here, "ran by the collector's own thread");
                                    ran_here += 1;
                                }
                                Err(TaskError::Cancelled) => cancelled += 1,
                                Err(other) => panic!("{other:?}"),
                            }
                        }
                        (ran_here, cancelled)
                    },
                    (),
                )
                .unwrap();
            all_queued.recv().unwrap();
            if stop_now {
                drop(pool.clone().shutdown_now());
            } else {
                pool.resize(0).unwrap();
            }
            drop(go_on);
            let (ran_here, cancelled) = ticket.wait().unwrap();
            if stop_now {
                assert_eq!((ran_here, cancelled), (0, 30));
                until(|| pool.stats().completed == 1);
                assert_eq!(endings(pool.stats()), (1, 0, 0, 30));
            } else {
                assert_eq!((ran_here, cancelled), (30, 0));
                until(|| pool.stats().completed == 31);
                assert_eq!(endings(pool.stats()), (31, 0, 0, 0));
                assert_eq!(pool.workers(), 0);
            }
        }
    });
}

/// A timed request that never ran stops its time queued where it was
/// cancelled (by `cancel`, or swept by another handle's `shutdown_now`) or
/// found expired (before the next request on its one worker starts), not
/// when its callback runs, which here is well after.
#[test]
fn a_timed_request_that_never_ran_stops_its_clock_where_it_ended() {
    within("timing of unrun requests", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let heard: Heard = Arc::default();
        let made = Instant::now();
        let cancelled = pool
            .put_request(heard!(heard, 0, WorkRequest::new(|n: u32| n, 0).timed()))
            .unwrap();
        pool.put_request(heard!(
            heard,
            1,
            WorkRequest::new(|n: u32| n, 1).deadline(made).timed()
        ))
        .unwrap();
        let (started_tx, started_rx) = mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |_: ()| started_tx.send(Instant::now()).unwrap(),
            (),
        ))
        .unwrap();
        assert!(pool.cancel(cancelled));
        let after_cancel = Instant::now();
        held.open();
        let next_started = started_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(30));
        // (The executed request has no result to handle.)
        assert_eq!(pool.wait().unwrap(), 3);
        let all = sorted(&heard);
        let t0 = all[0].2.expect("timed");
        assert_eq!(all[0].1, Err(TaskError::Cancelled));
        assert!(t0.queued <= after_cancel - made, "cancelled: {t0:?}");
        let t1 = all[1].2.expect("timed");
        assert_eq!(all[1].1, Err(TaskError::Expired));
        assert!(t1.queued <= next_started - made, "expired: {t1:?}");

        // Swept from another handle by `shutdown_now`.
        let heard: Heard = Arc::default();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let made = Instant::now();
        other
            .put_request(heard!(heard, 2, WorkRequest::new(|n: u32| n, 2).timed()))
            .unwrap();
        drop(pool.shutdown_now());
        let after_sweep = Instant::now();
        held.open();
        thread::sleep(Duration::from_millis(30));
        assert_eq!(other.wait().unwrap(), 1);
        let all = sorted(&heard);
        let t2 = all[0].2.expect("timed");
        assert_eq!(all[0].1, Err(TaskError::Cancelled));
        assert_eq!((t2.worker, t2.running), (None, Duration::ZERO));
        assert!(t2.queued <= after_sweep - made, "swept: {t2:?}");
    });
}

// ---------------------------------------------------------------------------
// stats(): counted before anyone hears.
// ---------------------------------------------------------------------------

/// Runs a closure when dropped: user code in a request's captured state,
/// run wherever the request is let go of.
struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// A batch put on a full bounded queue with no worker to empty it is
/// cancelled through its handle, member by member, so that its callbacks
/// hear it. A callback that hears `Cancelled` (here on another thread,
/// polling while the put still cancels the next member, whose captured
/// state's `Drop` holds it there) finds its request counted in `stats()`,
/// as everywhere else in the pool: a request is counted before its
/// outcome is handed on. (It was counted only once every member had been
/// cancelled.)
#[test]
fn a_batch_cancelled_as_its_put_is_refused_is_counted_before_its_callbacks_hear() {
    within("refused batch counted", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(1)
            .build()
            .unwrap();
        // Fills the queue, which no worker will empty.
        pool.put_request(WorkRequest::new(|n: u32| n, 0)).unwrap();
        let (heard_tx, heard) = mpsc::channel();
        let counter_pool = pool.clone();
        let first = WorkRequest::new(|n: u32| n, 1).on_error(move |_, error| {
            heard_tx
                .send((error, counter_pool.stats().cancelled))
                .unwrap();
        });
        let (go_on, proceed) = mpsc::channel::<()>();
        let hold = OnDrop(Some(Box::new(move || {
            let _ = proceed.recv_timeout(common::HANG);
        })));
        let second = WorkRequest::new(
            move |n: u32| {
                let _hold = &hold;
                n
            },
            2,
        );
        let putter = {
            let pool = pool.clone();
            thread::spawn(move || {
                pool.put_batch(vec![WorkRequest::from(first), second.into()])
                    .expect("cancelled through the handle, not handed back")
            })
        };
        // The first member's callback runs here while the put is still
        // cancelling the second.
        let (error, counted) = loop {
            pool.poll().unwrap();
            if let Ok(heard) = heard.try_recv() {
                break heard;
            }
            thread::yield_now();
        };
        go_on.send(()).unwrap();
        let batch = putter.join().unwrap();
        assert_eq!(error, TaskError::Cancelled);
        assert!(
            counted >= 1,
            "the callback that heard Cancelled found it uncounted"
        );
        pool.poll().unwrap();
        let progress = batch.progress();
        assert_eq!((progress.total, progress.cancelled), (2, 2));
        assert_eq!(endings(pool.stats()), (0, 0, 0, 2));
        assert_eq!(
            pool.shutdown_now().len(),
            1,
            "the request that filled the queue"
        );
    });
}

// ---------------------------------------------------------------------------
// A seeded mix.
// ---------------------------------------------------------------------------

/// What a seeded tree's nodes share: counts of what ran and what was
/// refused, the size, and when to stop the pool (`stop_at`, node number)
/// and how.
struct Mix {
    ran: AtomicUsize,
    refused: AtomicUsize,
    limit: usize,
    stop_at: Option<usize>,
    stopper: Mutex<Option<ThreadPool>>,
}

/// A node: fails when `n % 7 == 3`, panics when `n % 11 == 5`, else
/// returns `n`; adds its children first (refused ones counted).
fn mixed_node(
    cx: &CollectorContext<'_, usize, usize>,
    (n, mix): (usize, Arc<Mix>),
) -> Result<usize, usize> {
    mix.ran.fetch_add(1, Ordering::SeqCst);
    if mix.stop_at == Some(n) {
        let pool = mix.stopper.lock().unwrap().take();
        if let Some(pool) = pool {
            drop(pool.shutdown_now());
        }
    }
    for m in grow_tree(n, mix.limit) {
        match cx.add_fallible_with_context(mixed_node, (m, Arc::clone(&mix))) {
            Ok(_) => {}
            Err(PutError::ShutDown(_)) => {
                mix.refused.fetch_add(1, Ordering::SeqCst);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    match n {
        _ if n % 11 == 5 => panic!("{DELIBERATE}: node {n}"),
        _ if n % 7 == 3 => Err(n),
        _ => Ok(n),
    }
}

/// Seeded rounds: pools of 1-3 workers, queues unbounded or of 1-3,
/// result queues unbounded or of 1-2 (with handle requests beside), roots
/// put by every put form, trees that fail and panic, and a stop at a
/// random point (none, `shutdown_now` from a node or from another thread,
/// `close` from the collector's thread, a resize through 0). Every request
/// added ends exactly once on its collector, the outcomes match the nodes
/// that ran, and `stats()` agrees at the end.
#[test]
fn seeded_collector_trees_with_stops_account_exactly() {
    // More with `TRIAL_SEEDS=100000 cargo test --release --test
    // collectors_deadlines_adversarial seeded`.
    let seeds: u64 = std::env::var("TRIAL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    quiet();
    for seed in 1..=seeds {
        within(&format!("seeded tree {seed}"), move || {
            let mut rng = common::Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut builder = ThreadPool::builder()
                .workers(1 + rng.below(3) as usize)
                .quiet_panics(true);
            if rng.chance(50) {
                builder = builder.queue_capacity(1 + rng.below(3) as usize);
            }
            if rng.chance(40) {
                builder = builder.result_capacity(1 + rng.below(2) as usize);
            }
            let pool = builder.build().unwrap();
            let stop = rng.below(5);
            let limit = 30 + rng.below(200) as usize;
            let roots = 1 + rng.below(4) as usize;
            let mix = Arc::new(Mix {
                ran: AtomicUsize::new(0),
                refused: AtomicUsize::new(0),
                limit,
                stop_at: (stop == 1).then(|| rng.below(limit as u64) as usize),
                stopper: Mutex::new(Some(pool.clone())),
            });
            let stop_after = rng.below(20) as usize;
            let outside = (stop == 2).then(|| {
                let (pool, spins) = (pool.clone(), rng.below(2_000));
                thread::spawn(move || {
                    for _ in 0..spins {
                        thread::yield_now();
                    }
                    drop(pool.shutdown_now());
                })
            });
            let beside = counter();
            let (mut ok, mut failed, mut panicked, mut cancelled) = (0u64, 0u64, 0u64, 0u64);
            let mut roots_refused = 0;
            {
                let mut collector = pool.fallible_collector::<usize, usize>();
                let mut ids = HashSet::new();
                let mut handled = 0;
                let mut tally = |outcome: Result<usize, TaskError<usize>>| match outcome {
                    Ok(_) => ok += 1,
                    Err(TaskError::Failed(_)) => failed += 1,
                    Err(TaskError::Panicked(_)) => panicked += 1,
                    Err(TaskError::Cancelled) => cancelled += 1,
                    Err(other) => panic!("seed {seed}: {other:?}"),
                };
                for _ in 0..roots {
                    let root_mix = (0, Arc::clone(&mix));
                    if rng.chance(30) {
                        let beside = Arc::clone(&beside);
                        let _ = pool.put_request(WorkRequest::new(|n: u32| n, 0).on_result(
                            move |_, _| {
                                beside.fetch_add(1, Ordering::SeqCst);
                            },
                        ));
                    }
                    match collector.put_fallible_with_context(mixed_node, root_mix) {
                        Ok(id) => assert!(ids.insert(id)),
                        Err(PutError::ShutDown(_)) => roots_refused += 1,
                        Err(other) => panic!("seed {seed}: {other:?}"),
                    }
                    if let std::task::Poll::Ready(Some((_, outcome))) = collector.try_next_outcome()
                    {
                        handled += 1;
                        tally(outcome);
                    }
                }
                while let Some((_, outcome)) = collector.next_outcome() {
                    handled += 1;
                    tally(outcome);
                    if handled == stop_after {
                        match stop {
                            3 => {
                                let pool = mix.stopper.lock().unwrap().take();
                                if let Some(pool) = pool {
                                    pool.close().unwrap();
                                }
                            }
                            4 => {
                                pool.resize(0).unwrap();
                                thread::yield_now();
                                pool.resize(1 + rng.below(2) as usize).unwrap();
                            }
                            _ => {}
                        }
                    }
                }
                assert_eq!(collector.pending(), 0);
            }
            if let Some(outside) = outside {
                outside.join().unwrap();
            }
            let _ = pool.wait();
            let ran = mix.ran.load(Ordering::SeqCst) as u64;
            let refused = mix.refused.load(Ordering::SeqCst) as u64;
            let what = format!(
                "seed {seed}: stop {stop}, roots {roots} ({roots_refused} refused), \
                 ok {ok} failed {failed} panicked {panicked} cancelled {cancelled}, \
                 ran {ran}, refused adds {refused}"
            );
            assert_eq!(ok + failed + panicked, ran, "{what}");
            assert!(refused <= cancelled, "{what}");
            let stats = pool.stats();
            let beside = beside.load(Ordering::SeqCst) as u64;
            // The handle's own requests beside ran (their callbacks ran in
            // the `wait` above, on a handle a clone of which stopped the
            // pool), or were handed back: in no count.
            assert_eq!(
                endings(stats),
                (ok + beside, failed, panicked, cancelled - refused),
                "{what}: {stats:?}"
            );
        });
    }
}

/// One pool, every way a request can end, each counted once where
/// `stats()` says: completed, failed, panicked (callbacks, executed,
/// keyed, collector's and tickets' requests alike), cancelled (`cancel`,
/// a ticket's cancel once a worker reaches it, expired), and in no count
/// when refused (a full queue's `try_put`, a closed pool's puts) or
/// handed back by `shutdown_now`. Checked after each `wait`.
#[test]
fn stats_count_every_kind_of_ending_once() {
    quiet();
    within("every ending", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(64)
            .quiet_panics(true)
            .build()
            .unwrap();
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        // A ticket cancelled while queued: counted once the worker reaches
        // it, before anything put after it (one worker, in order).
        let ticket = pool.submit(|n: u32| n, 1).unwrap();
        assert!(ticket.cancel());
        pool.put_request(WorkRequest::new(|n: u32| n, 1)).unwrap();
        pool.put_request(WorkRequest::fallible(|n: u32| Err::<u32, _>(n), 2))
            .unwrap();
        pool.put_request(
            WorkRequest::new(|_: u32| -> u32 { panic!("{DELIBERATE}: plain") }, 3)
                .on_error(|_, _| {}),
        )
        .unwrap();
        pool.put_request(WorkRequest::new(|n: u32| n, 4).deadline(Instant::now()))
            .unwrap();
        let doomed = pool.put_request(WorkRequest::new(|n: u32| n, 5)).unwrap();
        pool.execute(|| {}).unwrap();
        pool.execute(|| panic!("{DELIBERATE}: executed")).unwrap();
        let drops = counter();
        let seen: Seen = Arc::default();
        // Keyed 0..4: ok, failed, panicked, ok.
        pool.put_all(keyed_batch(4, &drops, &seen)).unwrap();
        let ok_ticket = pool.submit(|n: u32| n, 6).unwrap();
        let failing_ticket = pool
            .submit_fallible(|n: u32| Err::<u32, u32>(n), 7)
            .unwrap();
        let mut collector = pool.fallible_collector::<u32, u32>();
        collector.put(|n: u32| n, 8).unwrap();
        collector.put_fallible(|n: u32| Err(n), 9).unwrap();
        collector
            .put(|_: u32| -> u32 { panic!("{DELIBERATE}: collected") }, 10)
            .unwrap();
        assert!(pool.cancel(doomed));
        held.open();
        assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
        assert_eq!(ok_ticket.wait(), Ok(6));
        assert_eq!(failing_ticket.wait(), Err(TaskError::Failed(7)));
        assert_eq!(collector.wait_with(|_, _| {}), 3);
        pool.wait().unwrap();
        // completed: held, plain, executed, keyed 0 and 3, ticket, collector
        // failed: plain, keyed 1, ticket, collector
        // panicked: plain, executed, keyed 2, collector
        // cancelled: the ticket, the expired, the cancelled
        assert_eq!(endings(pool.stats()), (7, 4, 4, 3));

        // Refused: in no count.
        let full = ThreadPool::builder()
            .workers(0)
            .queue_capacity(1)
            .build()
            .unwrap();
        let mut refusing = full.collector::<u32>();
        refusing.try_put(|n: u32| n, 1).unwrap();
        assert!(refusing.try_put(|n: u32| n, 2).unwrap_err().is_full());
        assert!(matches!(
            full.try_put_request(WorkRequest::new(|n: u32| n, 3)),
            Err(PutError::Full(_))
        ));
        // Handed back: in no count either.
        let back = full.clone().shutdown_now();
        assert_eq!(
            back.len(),
            0,
            "the collector's request is swept, not handed back"
        );
        assert_eq!(
            refusing.next_outcome().map(|(_, o)| o),
            Some(Err(TaskError::Cancelled))
        );
        assert!(matches!(
            full.put_request(WorkRequest::new(|n: u32| n, 4)),
            Err(PutError::ShutDown(_))
        ));
        assert!(matches!(
            refusing.put(|n: u32| n, 5),
            Err(PutError::ShutDown(_))
        ));
        assert_eq!(endings(full.stats()), (0, 0, 0, 1));

        let handing = ThreadPool::new(0);
        handing
            .put_request(WorkRequest::new(|n: u32| n, 1))
            .unwrap();
        handing.put_all(keyed_batch(2, &drops, &seen)).unwrap();
        assert_eq!(handing.clone().shutdown_now().len(), 3);
        assert_eq!(endings(handing.stats()), (0, 0, 0, 0));
    });
}

/// How a request of the seeded handle rounds ended, by its callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Ok,
    Failed,
    Panicked,
    Cancelled,
    Expired,
}

fn end_of<T>(outcome: &Result<T, TaskError<u32>>) -> End {
    match outcome {
        Ok(_) => End::Ok,
        Err(TaskError::Failed(_)) => End::Failed,
        Err(TaskError::Panicked(_)) => End::Panicked,
        Err(TaskError::Cancelled) => End::Cancelled,
        Err(TaskError::Expired) => End::Expired,
        Err(other) => panic!("{other:?}"),
    }
}

/// One request's record: how many times its callable ran and its
/// callbacks were called, how it ended, and the timing its callback read.
#[derive(Default)]
struct Record {
    ran: AtomicUsize,
    heard: Mutex<Vec<(End, Option<Timing>)>>,
}

/// Seeded rounds of requests on one handle: deadlines of every kind
/// (none, passed, near, far, `Duration::MAX`), timed or not, keyed or
/// not, that succeed, fail or panic, some cancelled, and the pool shut
/// down now at a random point, what it hands back put on a second pool.
/// Each request ends exactly once, on one pool or the other; `Cancelled`
/// exactly when `cancel` said so; `Expired` only with a deadline, its
/// callable never run; a timed one's record agrees with its ending; and
/// each pool's `stats()` counts exactly what ended there.
#[test]
fn seeded_deadlines_timings_and_stats_on_one_handle() {
    quiet();
    let seeds: u64 = std::env::var("TRIAL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    for seed in 1..=seeds {
        within(&format!("seeded handle {seed}"), move || {
            let mut rng = common::Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let workers = 1 + rng.below(3) as usize;
            let pool = ThreadPool::builder()
                .workers(workers)
                .quiet_panics(true)
                .build()
                .unwrap();
            let n = 10 + rng.below(60) as usize;
            let records: Arc<Vec<Record>> = Arc::new((0..n).map(|_| Record::default()).collect());
            let mut ids = Vec::new();
            let mut may_expire = vec![false; n];
            let mut cancelled = vec![false; n];
            let stop_at = rng.chance(60).then(|| rng.below(n as u64) as usize);
            let mut back = Vec::new();
            for i in 0..n {
                let rec = Arc::clone(&records);
                let work = move |i: u32| -> Result<u32, u32> {
                    rec[i as usize].ran.fetch_add(1, Ordering::SeqCst);
                    match i % 7 {
                        2 => panic!("{DELIBERATE}: request {i}"),
                        1 | 4 if i % 5 == 1 => Err(i),
                        _ => Ok(i),
                    }
                };
                let request: WorkRequest = if rng.chance(20) {
                    let (ok, err) = (Arc::clone(&records), Arc::clone(&records));
                    make_fallible_requests_with_input(
                        move |i: &u32| work(*i),
                        [i as u32],
                        move |_, i: u32, _| {
                            ok[i as usize].heard.lock().unwrap().push((End::Ok, None))
                        },
                        move |_, i: u32, e| {
                            let end = end_of::<()>(&Err(e));
                            err[i as usize].heard.lock().unwrap().push((end, None));
                        },
                    )
                    .pop()
                    .unwrap()
                } else {
                    let (ok, err) = (Arc::clone(&records), Arc::clone(&records));
                    let mut request = WorkRequest::fallible(work, i as u32)
                        .on_result(move |_, v: u32| {
                            let t = callpool::timing();
                            ok[v as usize].heard.lock().unwrap().push((End::Ok, t));
                        })
                        .on_error(move |_, e: TaskError<u32>| {
                            let t = callpool::timing();
                            let end = end_of::<()>(&Err(e));
                            err[i].heard.lock().unwrap().push((end, t));
                        });
                    match rng.below(6) {
                        0 => {
                            request = request.deadline(Instant::now());
                            may_expire[i] = true;
                        }
                        1 => {
                            request = request.timeout(Duration::from_micros(rng.below(300)));
                            may_expire[i] = true;
                        }
                        2 => request = request.timeout(Duration::from_secs(86_400)),
                        3 => request = request.timeout(Duration::MAX),
                        _ => {}
                    }
                    if rng.chance(50) {
                        request = request.timed();
                    }
                    request.into()
                };
                ids.push(request.id());
                pool.put_request(request).unwrap();
                if rng.chance(15) {
                    let j = rng.below(i as u64 + 1) as usize;
                    if !cancelled[j] && pool.cancel(ids[j]) {
                        cancelled[j] = true;
                    }
                }
                if stop_at == Some(i) {
                    back = pool.clone().shutdown_now();
                    break;
                }
            }
            let _ = pool.wait();
            let back_ids: HashSet<RequestId> = back.iter().map(WorkRequest::id).collect();
            let first: Vec<Option<End>> = records
                .iter()
                .map(|r| r.heard.lock().unwrap().first().map(|h| h.0))
                .collect();
            let count = |e: End| first.iter().filter(|&&x| x == Some(e)).count() as u64;
            let what = format!("seed {seed}: {workers} workers, {n} requests, stop {stop_at:?}");
            assert_eq!(
                endings(pool.stats()),
                (
                    count(End::Ok),
                    count(End::Failed),
                    count(End::Panicked),
                    count(End::Cancelled) + count(End::Expired)
                ),
                "{what}: the first pool"
            );
            let again = ThreadPool::builder()
                .workers(2)
                .quiet_panics(true)
                .build()
                .unwrap();
            let handed = back.len();
            again.put_all(back).unwrap();
            again.wait().unwrap();
            let before: Vec<usize> = first.iter().map(|f| usize::from(f.is_some())).collect();
            let mut on_second = (0, 0, 0, 0);
            for (i, record) in records.iter().enumerate() {
                let heard = record.heard.lock().unwrap();
                let put = i < ids.len();
                if !put {
                    assert!(heard.is_empty(), "{what}: request {i} never put");
                    continue;
                }
                assert_eq!(heard.len(), 1, "{what}: request {i} heard {heard:?}");
                let (end, timing) = heard[0];
                let ran = record.ran.load(Ordering::SeqCst);
                assert_eq!(
                    ran,
                    usize::from(matches!(end, End::Ok | End::Failed | End::Panicked)),
                    "{what}: request {i} ended {end:?}"
                );
                assert_eq!(end == End::Cancelled, cancelled[i], "{what}: request {i}");
                if end == End::Expired {
                    assert!(
                        may_expire[i],
                        "{what}: request {i} expired with no deadline"
                    );
                }
                if let Some(t) = timing {
                    if ran == 1 {
                        assert!(
                            t.worker.is_some_and(|w| w < workers.max(2)),
                            "{what}: {t:?}"
                        );
                    } else {
                        assert_eq!((t.worker, t.running), (None, Duration::ZERO), "{what}");
                    }
                }
                if back_ids.contains(&ids[i]) {
                    assert_eq!(before[i], 0, "{what}: request {i} ended before handed back");
                    match end {
                        End::Ok => on_second.0 += 1,
                        End::Failed => on_second.1 += 1,
                        End::Panicked => on_second.2 += 1,
                        End::Cancelled | End::Expired => on_second.3 += 1,
                    }
                }
            }
            assert_eq!(
                on_second.0 + on_second.1 + on_second.2 + on_second.3,
                handed as u64,
                "{what}"
            );
            assert_eq!(endings(again.stats()), on_second, "{what}: the second pool");
        });
    }
}

/// A graceful shutdown with no worker to run what is queued hands the
/// handle's own request back (`Unrun`, in no count) and cancels the
/// collector's, each once, counted cancelled; a timed-out one leaves the
/// collector's requests to run once the held worker is free, refusing new
/// puts meanwhile.
#[test]
fn graceful_shutdowns_end_a_collectors_queued_requests_once() {
    within("graceful shutdowns", || {
        let pool = ThreadPool::new(0);
        let mut collector = pool.collector::<u32>();
        for n in 0..3 {
            collector.put(|n: u32| n, n).unwrap();
        }
        pool.put_request(WorkRequest::new(|n: u32| n, 9)).unwrap();
        match pool.clone().shutdown() {
            Err(callpool::ShutdownError::Unrun(back)) => assert_eq!(back.len(), 1),
            other => panic!("{other:?}"),
        }
        let outcomes: Vec<_> = collector.outcomes().map(|(_, o)| o).collect();
        assert_eq!(outcomes, vec![Err(TaskError::Cancelled); 3]);
        assert_eq!(endings(pool.stats()), (0, 0, 0, 3));
        drop(collector);

        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let mut collector = pool.collector::<u32>();
        for n in 0..3 {
            collector.put(|n: u32| n, n).unwrap();
        }
        let timed_out = pool.clone().shutdown_timeout(Duration::from_millis(5));
        assert!(matches!(
            timed_out,
            Err(callpool::ShutdownError::TimedOut { .. })
        ));
        assert!(matches!(
            collector.put(|n: u32| n, 7),
            Err(PutError::ShutDown(_))
        ));
        assert_eq!(collector.pending(), 3);
        held.open();
        let mut outcomes: Vec<u32> = collector.outcomes().map(|(_, o)| o.unwrap()).collect();
        outcomes.sort_unstable();
        assert_eq!(outcomes, [0, 1, 2]);
        until(|| pool.stats().completed == 4);
        assert_eq!(endings(pool.stats()), (4, 0, 0, 0));
    });
}

/// A timed request's callback that panics out of `wait` leaves no timing
/// behind on the thread: `timing()` reads `None` after, in an untimed
/// callback too, and the next timed callback reads its own.
#[test]
fn a_panicking_timed_callback_leaves_no_timing_behind() {
    quiet();
    within("timing after a panic", || {
        let pool = ThreadPool::new(1);
        pool.put_request(WorkRequest::new(|n: u32| n, 1).timed().on_result(|_, _| {
            assert!(callpool::timing().is_some());
            panic!("{DELIBERATE}: timed callback");
        }))
        .unwrap();
        assert!(panic::catch_unwind(AssertUnwindSafe(|| pool.wait())).is_err());
        assert_eq!(callpool::timing(), None);
        let heard: Heard = Arc::default();
        pool.put_request(heard!(heard, 0, WorkRequest::new(|n: u32| n, 0)))
            .unwrap();
        pool.wait().unwrap();
        pool.put_request(heard!(heard, 1, WorkRequest::new(|n: u32| n, 1).timed()))
            .unwrap();
        pool.wait().unwrap();
        let all = sorted(&heard);
        assert_eq!(all[0].2, None);
        assert_eq!(all[1].2.map(|t| t.worker), Some(Some(0)));
        assert_eq!(callpool::timing(), None);
        assert_eq!(endings(pool.stats()), (3, 0, 0, 0));
    });
}
