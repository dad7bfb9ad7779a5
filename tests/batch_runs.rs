//! Batches whose outcomes are counted in runs: a batch queued in several
//! chunks, batches interleaved with each other and with single requests on
//! one handle, and callbacks that panic part-way through a run.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use callpool::{make_requests, Progress, ThreadPool, WorkRequest};
use common::{gate, hide_panics_starting_with, hit_counters, within};

/// A batch much larger than one chunk, cancelled while its first request
/// runs: every later chunk's requests are found and cancelled once.
#[test]
fn a_batch_of_many_chunks_is_cancelled_whole_behind_its_running_first() {
    within("many chunks", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let hold: WorkRequest = WorkRequest::new(move |_: ()| latch.hold(), ()).into();
        let ran = common::counter();
        let r = Arc::clone(&ran);
        let rest = make_requests(
            move |n: usize| {
                r.fetch_add(1, Ordering::SeqCst);
                n
            },
            0..2000,
            |_, _| {},
            |_, _| {},
        );
        let batch = pool.put_batch(std::iter::once(hold).chain(rest)).unwrap();
        held.await_start();
        assert_eq!(batch.cancel(), 2000);
        held.open();
        assert_eq!(pool.wait(), Ok(2001));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        let progress = batch.progress();
        assert_eq!(
            (progress.total, progress.done, progress.cancelled),
            (2001, 1, 2000)
        );
    });
}

/// Two batches and single requests, their outcomes interleaved on one
/// handle: each batch counts only its own, and each batch-done callback
/// runs once, after every one of its members' callbacks.
#[test]
fn interleaved_batches_each_count_their_own_and_finish_once() {
    for workers in [1, 2, 3] {
        within("interleaved", move || {
            let pool = ThreadPool::new(workers);
            let seen = Arc::new([common::counter(), common::counter()]);
            let finished: Arc<Mutex<Vec<(usize, Progress, usize)>>> = Arc::default();
            let mut batches = Vec::new();
            for b in 0..2 {
                let s = Arc::clone(&seen);
                let requests = make_requests(
                    |n: usize| n,
                    0..700,
                    move |_, _| {
                        s[b].fetch_add(1, Ordering::SeqCst);
                    },
                    |_, _| {},
                );
                // Single requests between and among the batches.
                for i in 0..50 {
                    pool.put_request(WorkRequest::new(|x: usize| x, i)).unwrap();
                }
                let batch = pool.put_batch(requests).unwrap();
                let (s, f) = (Arc::clone(&seen), Arc::clone(&finished));
                batch.on_done(move |progress| {
                    let callbacks = s[b].load(Ordering::SeqCst);
                    f.lock().unwrap().push((b, progress, callbacks));
                });
                batches.push(batch);
            }
            assert_eq!(pool.wait(), Ok(2 * 700 + 100));
            let mut finished = finished.lock().unwrap().clone();
            finished.sort_by_key(|f| f.0);
            assert_eq!(finished.len(), 2, "each batch-done callback runs once");
            for (b, progress, callbacks) in finished {
                assert_eq!((progress.total, progress.done), (700, 700), "batch {b}");
                assert_eq!(
                    callbacks, 700,
                    "batch {b}: every member's callback ran first"
                );
                assert_eq!(batches[b].progress(), progress);
            }
        });
    }
}

/// Result callbacks that panic in the middle of a run: each panic comes
/// out of `poll`, the batch still counts every member once, and its
/// batch-done callback runs once with the full count.
#[test]
fn panicking_callbacks_leave_the_batch_count_right() {
    hide_panics_starting_with("batch callback");
    within("panics", || {
        let pool = ThreadPool::new(2);
        let hits = hit_counters(300);
        let h = Arc::clone(&hits);
        let batch = pool
            .put_batch(make_requests(
                |n: usize| n,
                0..300,
                move |_, n: usize| {
                    h[n].fetch_add(1, Ordering::SeqCst);
                    if n % 7 == 0 {
                        panic!("batch callback {n}");
                    }
                },
                |_, _| {},
            ))
            .unwrap();
        let done: Arc<Mutex<Vec<Progress>>> = Arc::default();
        let d = Arc::clone(&done);
        batch.on_done(move |p| d.lock().unwrap().push(p));
        let mut panics = 0;
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| pool.wait())) {
                Ok(result) => {
                    result.unwrap();
                    break;
                }
                Err(_) => panics += 1,
            }
        }
        assert_eq!(panics, (0..300).filter(|n| n % 7 == 0).count());
        common::assert_each_once("batch request", &hits);
        let done = done.lock().unwrap().clone();
        assert_eq!(done.len(), 1, "the batch-done callback runs once");
        assert_eq!((done[0].total, done[0].done), (300, 300));
        assert_eq!(batch.progress(), done[0]);
    });
}

/// An empty batch is complete at once: its batch-done callback runs
/// where it is set, and the handle's later results are not counted in it.
#[test]
fn an_empty_batch_is_done_at_once() {
    within("empty", || {
        let pool = ThreadPool::new(1);
        let batch = pool.put_batch(Vec::<WorkRequest>::new()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        batch.on_done(move |p| tx.send(p).unwrap());
        let progress = rx.try_recv().expect("ran at once, here");
        assert_eq!((progress.total, progress.ended()), (0, 0));
        assert!(progress.is_complete());
        pool.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(batch.progress(), progress);
    });
}
