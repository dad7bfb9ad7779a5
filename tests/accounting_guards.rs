//! Guards on what the pool counts and keeps, each where a small slip in
//! the library went unnoticed by the other test files: the statistics a
//! `wait` that returns finds for executed requests; the emptied boxes of
//! executed requests, freed by the next execute; how many workers an
//! autoscaling pool starts for requests no sleeper takes; how a batch
//! counts its members made with `make_requests_with_input` that were
//! cancelled; and the results a nested wait knows its caller holds.
//! Every count is exact; time only turns a hang into a failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callpool::{make_requests_with_input, TaskError, ThreadPool, WaitError, WorkRequest};
use common::{gate, until, within, Gate};

const CHILD_ENV: &str = "ACCOUNTING_GUARDS_CHILD";

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

/// `execute`: "counted before it stops being pending, so that a `wait`
/// that returns finds it in the statistics". Round after round of one
/// executed request and a `wait`, on a worker that is spinning or asleep
/// when the next comes: `completed` counts each by the time `wait`
/// returns, never one round late.
#[test]
fn a_wait_that_returns_finds_each_executed_request_counted() {
    within("executed requests, each waited for", || {
        let pool = ThreadPool::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        for round in 1..=20_000u64 {
            let ran = Arc::clone(&ran);
            pool.execute(move || {
                ran.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0));
            let stats = pool.stats();
            assert_eq!(
                stats.completed, round,
                "round {round}: wait returned before its executed request was counted"
            );
        }
        assert_eq!(ran.load(Ordering::Relaxed), 20_000);
    });
}

/// The box of an executed request, with its 64 KiB capture inline: big
/// enough that a few of them left unfreed stand out in the live heap.
const BIG: usize = 64 * 1024;

fn execute_big(pool: &ThreadPool, sum: &Arc<AtomicUsize>) {
    let bytes = [1u8; BIG];
    let sum = Arc::clone(sum);
    pool.execute(move || {
        sum.fetch_add(usize::from(bytes[BIG - 1]), Ordering::Relaxed);
    })
    .unwrap();
}

/// The emptied boxes a worker kept go back to their handle before it
/// sleeps, and the next `execute` on that handle frees them: ten boxes of
/// 64 KiB captures, fewer than a worker's batch of 64, are gone from the
/// live heap once the worker is asleep and one more request was executed
/// and waited for. (A worker that kept them until its batch filled, or an
/// `execute` that did not free what came back, would hold 640 KiB.)
#[test]
fn the_next_execute_frees_the_boxes_of_those_run_before() {
    const NAME: &str = "the_next_execute_frees_the_boxes_of_those_run_before";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    let pool = ThreadPool::new(1);
    let sum = Arc::new(AtomicUsize::new(0));
    // Warm up: the queue's blocks, the worker's vectors, the handle's list
    // of boxes, all allocated once before the measure.
    for _ in 0..100 {
        execute_big(&pool, &sum);
    }
    assert_eq!(pool.wait(), Ok(0));
    until(|| pool.stats().idle == 1);
    pool.execute(|| {}).unwrap();
    assert_eq!(pool.wait(), Ok(0));
    until(|| pool.stats().idle == 1);
    let before = common::heap::live();

    for _ in 0..10 {
        execute_big(&pool, &sum);
    }
    assert_eq!(pool.wait(), Ok(0));
    until(|| pool.stats().idle == 1);
    // This execute frees the ten boxes handed back as the worker went idle.
    pool.execute(|| {}).unwrap();
    assert_eq!(pool.wait(), Ok(0));
    until(|| pool.stats().idle == 1);
    let kept = common::heap::live() - before;
    assert_eq!(sum.load(Ordering::Relaxed), 110);
    assert!(
        kept < BIG as isize,
        "{kept} bytes still live: about {} boxes of the ten executed before were not freed",
        kept / BIG as isize
    );
    drop(pool);
    common::child_ran(NAME);
}

/// An autoscaling pool that nobody sleeps in.
fn autoscaling(max: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(max)
        .keep_alive(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// Puts a request that holds its worker until its gate opens, and waits
/// until a worker has started it.
fn put_held(pool: &ThreadPool) -> Gate {
    let (gate, latch) = gate();
    pool.execute(move || latch.hold()).unwrap();
    gate.await_start();
    gate
}

/// `max_workers`: "When a request is queued and no worker is asleep to
/// take it, the pool starts one more ... requests queued together (a
/// batch, or a task's children) start one each". With every worker held
/// busy, each put starts exactly one, and a batch of four exactly four:
/// never one more than the requests that wait.
#[test]
fn an_autoscaling_pool_starts_one_worker_per_request_no_sleeper_takes() {
    within("an autoscaling pool's growth", || {
        let pool = autoscaling(16);
        assert_eq!(pool.workers(), 0);
        let mut gates = Vec::new();
        for n in 1..=3 {
            gates.push(put_held(&pool));
            assert_eq!(pool.workers(), n, "after {n} held requests");
        }
        // Four at once, none for a sleeper: four more workers.
        let latches: Vec<_> = (0..4).map(|_| gate()).collect();
        let (gates4, held): (Vec<Gate>, Vec<_>) = latches.into_iter().unzip();
        let batch = held
            .into_iter()
            .map(|latch| WorkRequest::new(move |_: ()| latch.hold(), ()));
        pool.put_batch(batch).unwrap();
        for gate in &gates4 {
            gate.await_start();
        }
        assert_eq!(pool.workers(), 7, "after a batch of four held requests");
        for gate in gates.iter().chain(&gates4) {
            gate.open();
        }
        assert_eq!(pool.wait(), Ok(4));
        assert_eq!(pool.workers(), 7);
    });
}

/// `Progress`: a batch's member "ended ... without ever starting
/// (`cancelled`: cancelled, expired, ...)" is counted cancelled, one that
/// ended "with an error or a panic" failed. Members made with
/// `make_requests_with_input`, cancelled while queued, are counted
/// cancelled, as any request is, not failed; their error callbacks hear
/// `Cancelled` with their inputs.
#[test]
fn cancelled_members_with_their_inputs_are_counted_cancelled() {
    within("a batch of requests with their inputs, cancelled", || {
        let pool = ThreadPool::new(0);
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let errors = Arc::clone(&heard);
        let requests = make_requests_with_input(
            |n: &u32| n * 2,
            [1u32, 2, 3],
            |_, _, _| panic!("no request runs"),
            move |_, input, error| {
                errors
                    .lock()
                    .unwrap()
                    .push((input, matches!(error, TaskError::Cancelled)))
            },
        );
        let batch = pool.put_batch(requests).unwrap();
        assert_eq!(batch.cancel(), 3);
        assert_eq!(pool.poll(), Ok(3));
        let progress = batch.progress();
        assert_eq!(
            (
                progress.total,
                progress.done,
                progress.failed,
                progress.cancelled
            ),
            (3, 0, 0, 3)
        );
        let stats = pool.stats();
        assert_eq!((stats.failed, stats.cancelled), (0, 3));
        let mut heard = heard.lock().unwrap().clone();
        heard.sort_unstable();
        assert_eq!(heard, [(1, true), (2, true), (3, true)]);
    });
}

/// A `wait` nested in a callback counts the results its caller holds
/// (taken off the result queue in the same run as the callback's own) and
/// returns `HeldByCaller` rather than wait for them; so does a second
/// nested wait in the same callback after the first handled two results
/// in a run of its own, whose end must leave the count of held results as
/// the caller's run has it (cleared, the second wait would wait for ever
/// for a result only its caller can handle).
#[test]
fn a_second_nested_wait_still_counts_the_results_its_caller_holds() {
    let (first, second, outer) = within("two nested waits in one callback", || {
        let pool = ThreadPool::new(1);
        let (gate3, latch3) = gate();
        let (gate5, latch5) = gate();
        let gates = Arc::new(std::sync::Mutex::new(Some((gate3, gate5))));
        let (tx, rx) = std::sync::mpsc::channel();
        let (p, opener) = (pool.clone(), Arc::clone(&gates));
        pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            let (gate3, gate5) = opener.lock().unwrap().take().unwrap();
            // Once the fifth has started, the third's and fourth's results
            // are queued: the first wait takes them in a run of its own.
            gate3.open();
            gate5.await_start();
            gate5.open();
            let first = p.wait();
            let second = p.wait();
            tx.send((first, second)).unwrap();
        }))
        .unwrap();
        pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        pool.put_request(WorkRequest::new(move |_: ()| latch3.hold(), ()))
            .unwrap();
        pool.put_request(WorkRequest::new(|x: u32| x, 4)).unwrap();
        pool.put_request(WorkRequest::new(move |_: ()| latch5.hold(), ()))
            .unwrap();
        // Once the third has started, the first two results are queued:
        // the outer wait takes them in one run, and holds the second's
        // while the first's callback runs.
        gates
            .lock()
            .unwrap()
            .as_ref()
            .expect("the first callback has not run yet")
            .0
            .await_start();
        let outer = pool.wait();
        let (first, second) = rx.try_recv().unwrap();
        (first, second, outer)
    });
    assert_eq!(first, Err(WaitError::HeldByCaller { pending: 1 }));
    assert_eq!(second, Err(WaitError::HeldByCaller { pending: 1 }));
    assert_eq!(outer, Ok(2));
}
