//! Batches: one put for many requests, progress counts, cancelling what has
//! not started, and a batch-done callback that runs once on a polling
//! thread.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use callpool::{
    make_fallible_requests, make_requests, Batch, BatchError, PutError, RequestId, TaskError,
    ThreadPool, WorkRequest,
};
use common::{gate, hit_counters, within};

/// Every request of a batch ends once, its own callback runs, the progress
/// counts each kind exactly, and the batch-done callback runs once, on the
/// polling thread, after the last request's own callback.
#[test]
fn progress_counts_each_end_and_on_done_runs_once_after_the_last_callback() {
    within("batch", || {
        let pool = ThreadPool::new(3);
        let hits = hit_counters(300);
        let order = Arc::new(Mutex::new(Vec::new()));
        let (ok_hits, err_hits, ok_order) =
            (Arc::clone(&hits), Arc::clone(&hits), Arc::clone(&order));
        let requests = make_fallible_requests(
            |n: usize| if n % 3 == 0 { Err(n) } else { Ok(n) },
            0..300,
            move |_, n: usize| {
                ok_hits[n].fetch_add(1, Ordering::SeqCst);
                ok_order.lock().unwrap().push("callback");
            },
            move |_, err: TaskError<usize>| match err {
                TaskError::Failed(n) => {
                    err_hits[n].fetch_add(1, Ordering::SeqCst);
                }
                other => panic!("{other:?}"),
            },
        );
        let batch = pool.put_batch(requests).unwrap();
        let me = thread::current().id();
        let (done_order, done_calls) = (Arc::clone(&order), Arc::new(Mutex::new(Vec::new())));
        let calls = Arc::clone(&done_calls);
        batch.on_done(move |progress| {
            calls
                .lock()
                .unwrap()
                .push((thread::current().id(), progress));
            done_order.lock().unwrap().push("done");
        });
        assert_eq!(pool.wait(), Ok(300));
        common::assert_each_once("batch request", &hits);
        let calls = done_calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 1);
        let (thread, progress) = calls[0];
        assert_eq!(thread, me);
        assert_eq!(
            (
                progress.total,
                progress.done,
                progress.failed,
                progress.cancelled
            ),
            (300, 200, 100, 0)
        );
        assert!(progress.is_complete());
        assert_eq!(batch.progress(), progress);
        assert_eq!(order.lock().unwrap().last(), Some(&"done"));
        // Once complete, a new on_done runs at once, here.
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |p| tx.send(p).unwrap());
        assert!(
            rx.try_recv().is_err(),
            "a batch-done callback runs once only"
        );
    });
}

/// Cancelling a batch while its first request runs: the queued ones never
/// run, each error callback hears `Cancelled` once, and the counts agree.
#[test]
fn cancel_ends_the_queued_requests_once_each_and_leaves_the_running_one() {
    within("cancel", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let ran = hit_counters(50);
        let cancelled = hit_counters(50);
        let (ran2, cancelled2) = (Arc::clone(&ran), Arc::clone(&cancelled));
        let hold: WorkRequest = WorkRequest::new(move |_: ()| latch.hold(), ()).into();
        let rest = make_requests(
            move |n: usize| {
                ran2[n].fetch_add(1, Ordering::SeqCst);
                n
            },
            0..50,
            |_, _| {},
            move |_, err: TaskError| {
                assert_eq!(err, TaskError::Cancelled);
                // Which one: cancelled requests do not carry their input,
                // so count them all in slot 0.
                cancelled2[0].fetch_add(1, Ordering::SeqCst);
            },
        );
        let batch = pool.put_batch(std::iter::once(hold).chain(rest)).unwrap();
        held.await_start();
        assert_eq!(batch.cancel(), 50);
        assert_eq!(batch.cancel(), 0, "nothing left to cancel");
        held.open();
        assert_eq!(pool.wait(), Ok(51));
        assert_eq!(
            ran.iter().map(|h| h.load(Ordering::SeqCst)).sum::<usize>(),
            0
        );
        assert_eq!(cancelled[0].load(Ordering::SeqCst), 50);
        let progress = batch.progress();
        assert_eq!(
            (progress.done, progress.failed, progress.cancelled),
            (1, 0, 50)
        );
    });
}

/// On a bounded queue the batch goes in one by one, blocking for room, and
/// still ends whole.
#[test]
fn a_batch_on_a_bounded_queue_runs_each_once() {
    within("bounded", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(4)
            .result_capacity(4)
            .build()
            .unwrap();
        let hits = hit_counters(500);
        let h = Arc::clone(&hits);
        let batch = pool
            .put_batch(make_requests(
                |n: usize| n,
                0..500,
                move |_, n: usize| {
                    h[n].fetch_add(1, Ordering::SeqCst);
                },
                |_, _| {},
            ))
            .unwrap();
        pool.wait().unwrap();
        common::assert_each_once("bounded batch request", &hits);
        assert_eq!(batch.progress().done, 500);
    });
}

/// Refused whole: a shut-down pool, or a duplicate user id; every request
/// comes back, in order, and nothing stays counted.
#[test]
fn a_refused_batch_hands_every_request_back() {
    let pool = ThreadPool::new(1);
    let twice = vec![
        WorkRequest::new(|x: u8| x, 1).with_id(7).into(),
        WorkRequest::new(|x: u8| x, 2).with_id(7).into(),
    ];
    match pool.put_batch::<Vec<WorkRequest>>(twice) {
        Err(BatchError::DuplicateId(back)) => assert_eq!(back.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.pending(), 0);
    let other = pool.new_handle();
    drop(other.shutdown_now());
    let requests = make_requests(|n: u8| n, 0..10, |_, _| {}, |_, _| {});
    assert_handed_back_whole(&pool, requests);
}

/// The same on a bounded queue, where a batch goes in one request at a
/// time: a shut-down pool refuses the first, and every request comes back,
/// none cancelled to its callback.
#[test]
fn a_closed_bounded_pool_hands_a_whole_batch_back() {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(4)
        .build()
        .unwrap();
    pool.close().unwrap();
    let errors = common::counter();
    let on_error = Arc::clone(&errors);
    let requests = make_requests(
        |n: u8| n,
        0..3,
        |_, _| {},
        move |_, _| {
            on_error.fetch_add(1, Ordering::SeqCst);
        },
    );
    assert_handed_back_whole(&pool, requests);
    assert_eq!(pool.poll(), Err(callpool::PollError::NoResultsPending));
    assert_eq!(errors.load(Ordering::SeqCst), 0);
}

/// Puts `requests` as a batch on `pool`, which has shut down: every one
/// comes back in `BatchError::ShutDown`, in order, and none is pending.
fn assert_handed_back_whole(pool: &ThreadPool, requests: Vec<WorkRequest>) {
    let wanted: Vec<RequestId> = requests.iter().map(WorkRequest::id).collect();
    match pool.put_batch(requests) {
        Err(BatchError::ShutDown(back)) => {
            assert_eq!(back.iter().map(WorkRequest::id).collect::<Vec<_>>(), wanted)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.pending(), 0);
}

/// A ticket's request (handed back by a refused `submit`) has no place in
/// a batch: the batch is refused whole, every request handed back in its
/// order, wherever the ticket's request stands, and nothing counted.
#[test]
fn a_batch_holding_a_tickets_request_is_refused_whole() {
    let closed = ThreadPool::new(1);
    drop(closed.new_handle().shutdown_now());
    let tickets_request = || {
        closed
            .submit(|n: u8| n, 9)
            .expect_err("a shut-down pool refuses")
            .into_request()
    };
    let pool = ThreadPool::new(1);
    for at in [0, 3, 5] {
        let mut requests = make_requests(|n: u8| n, 0..5, |_, _| {}, |_, _| {});
        requests.insert(at, tickets_request());
        let wanted: Vec<RequestId> = requests.iter().map(WorkRequest::id).collect();
        match pool.put_batch(requests) {
            Err(BatchError::NotBatchable(back)) => {
                assert_eq!(back.iter().map(WorkRequest::id).collect::<Vec<_>>(), wanted)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pool.pending(), 0);
    }
}

/// A batch that both repeats a user-chosen id and holds a ticket's
/// request is refused as `NotBatchable` wherever the repeat stands: the
/// ticket's request is what no fix of the ids would let in.
#[test]
fn a_repeated_id_before_a_tickets_request_is_still_not_batchable() {
    let closed = ThreadPool::new(1);
    drop(closed.new_handle().shutdown_now());
    let pool = ThreadPool::new(1);
    let with_id = |id| WorkRequest::new(|n: u8| n, 1).with_id(id).into();
    let mut requests: Vec<WorkRequest> = vec![with_id(7), with_id(7)];
    requests.push(
        closed
            .submit(|n: u8| n, 9)
            .expect_err("a shut-down pool refuses")
            .into_request(),
    );
    match pool.put_batch(requests) {
        Err(BatchError::NotBatchable(back)) => assert_eq!(back.len(), 3),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.pending(), 0);
}

/// Two threads poll one handle while a batch ends: the batch-done callback
/// still runs exactly once.
#[test]
fn two_pollers_finish_a_batch_and_on_done_runs_once() {
    for _ in 0..50 {
        within("two pollers", || {
            let pool = Arc::new(ThreadPool::new(2));
            let batch = pool
                .put_batch(make_requests(|n: u32| n, 0..200, |_, _| {}, |_, _| {}))
                .unwrap();
            let runs = common::counter();
            let r = Arc::clone(&runs);
            batch.on_done(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            });
            let other = {
                let pool = Arc::clone(&pool);
                thread::spawn(move || pool.wait())
            };
            let mine = pool.wait().unwrap();
            let theirs = other.join().unwrap().unwrap();
            assert_eq!(mine + theirs, 200);
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        });
    }
}

#[test]
fn a_batch_put_from_a_worker_of_its_own_bounded_pool_goes_past_the_capacity() {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let inner = pool.clone();
    let (put_tx, put) = mpsc::channel();
    let ran = hit_counters(10);
    let hits = Arc::clone(&ran);
    pool.put_request(WorkRequest::new(
        move |_: ()| {
            // Ten requests on a queue of two, from the pool's only worker:
            // blocking for room would wait for itself.
            let batch = inner.put_batch((0..10).map(|i| common::hit_request(i, &hits)));
            put_tx.send(batch.map(|b| b.progress().total).ok()).unwrap();
        },
        (),
    ))
    .unwrap();
    assert_eq!(
        put.recv_timeout(common::HANG)
            .expect("the batch put blocked"),
        Some(10)
    );
    assert_eq!(within("wait", move || pool.wait()), Ok(11));
    common::assert_each_once("batch request", &ran);
}

#[test]
fn a_callback_panic_in_a_blocked_batch_put_cancels_the_rest_and_loses_nothing() {
    common::hide_panics_starting_with("batches: callback");
    // A full result queue makes the put handle results while it waits for
    // room, and request 0's callback panics there.
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_capacity(2)
            .result_capacity(1)
            .build()
            .unwrap(),
    );
    let ended = Arc::new(Mutex::new(Vec::new()));
    let (ok, err) = (Arc::clone(&ended), Arc::clone(&ended));
    let requests = make_requests(
        |n: u32| n,
        0..50u32,
        move |_, n| {
            ok.lock().unwrap().push(Ok(n));
            assert_ne!(n, 0, "batches: callback of request 0");
        },
        move |id, e| err.lock().unwrap().push(Err((id, e))),
    );
    let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.put_batch(requests)));
    assert!(put.is_err(), "the callback's panic leaves put_batch");
    let waiter = Arc::clone(&pool);
    let handled = within("wait", move || waiter.wait());
    assert!(handled.is_ok(), "{handled:?}");
    assert_eq!(pool.pending(), 0);
    let ended = ended.lock().unwrap();
    // Every request ended once: run (its callback) or cancelled.
    assert_eq!(ended.len(), 50, "{ended:?}");
    assert!(ended
        .iter()
        .all(|e| matches!(e, Ok(_) | Err((_, TaskError::Cancelled)))));
    assert!(ended.iter().any(|e| e.is_err()), "none was cancelled");
}

/// Members that never ran, handed back by `shutdown_now`, end the batch
/// as cancelled: the batch completes, and its batch-done callback runs
/// once, on the thread that shut the pool down, before it returns.
#[test]
fn members_handed_back_by_shutdown_now_complete_the_batch() {
    within("handed back", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let ran = common::counter();
        let ran_in = Arc::clone(&ran);
        // The worker is held by a request outside the batch, so that every
        // member is still queued when the pool shuts down.
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        let members = make_requests(
            move |n: u32| {
                ran_in.fetch_add(1, Ordering::SeqCst);
                n
            },
            0..5,
            |_, _| {},
            |_, err| panic!("no member is cancelled to its callback: {err:?}"),
        );
        let member_ids: Vec<RequestId> = members.iter().map(WorkRequest::id).collect();
        let batch = pool.put_batch(members).unwrap();
        let me = thread::current().id();
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |progress| tx.send((thread::current().id(), progress)).unwrap());
        held.await_start();
        let back = pool.shutdown_now();
        held.open();
        let mut back_ids: Vec<RequestId> = back.iter().map(WorkRequest::id).collect();
        back_ids.sort();
        assert_eq!(back_ids, member_ids, "the queued members come back");
        let (thread, progress) = rx
            .try_recv()
            .expect("on_done ran before shutdown_now returned");
        assert_eq!(thread, me);
        assert_eq!((progress.total, progress.cancelled), (5, 5));
        assert!(rx.try_recv().is_err(), "on_done ran once");
        assert_eq!(batch.progress(), progress);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

/// `shutdown` on a pool with no worker hands every member back: the batch
/// ends as cancelled, and its batch-done callback runs once.
#[test]
fn members_handed_back_by_shutdown_complete_the_batch() {
    within("unrun", || {
        let pool = ThreadPool::new(0);
        let batch = pool
            .put_batch(make_requests(|n: u32| n, 0..4, |_, _| {}, |_, _| {}))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |progress| tx.send(progress).unwrap());
        match pool.shutdown() {
            Err(callpool::ShutdownError::Unrun(back)) => assert_eq!(back.len(), 4),
            other => panic!("{other:?}"),
        }
        let progress = rx.try_recv().expect("on_done ran in shutdown");
        assert_eq!((progress.total, progress.cancelled), (4, 4));
        assert!(progress.is_complete());
        assert!(rx.try_recv().is_err());
    });
}

/// A batch knows a user-chosen member only until it ends: a later request
/// of the same handle with that id is neither counted in the batch nor
/// cancelled by `Batch::cancel`.
#[test]
fn a_user_chosen_id_used_again_is_not_taken_for_the_ended_member() {
    within("id reuse", || {
        let pool = ThreadPool::new(1);
        let (first_done_tx, first_done) = mpsc::channel();
        let (held, latch) = gate();
        let members: Vec<WorkRequest> = vec![
            WorkRequest::new(|x: u32| x, 1)
                .with_id(10)
                .on_result(move |_, _| first_done_tx.send(()).unwrap())
                .into(),
            WorkRequest::new(move |_: ()| latch.hold(), ())
                .with_id(11)
                .into(),
        ];
        let batch = pool.put_batch(members).unwrap();
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |progress| tx.send(progress).unwrap());
        // Member 10 ends and is handled; member 11 then holds the worker.
        while first_done.try_recv().is_err() {
            pool.poll().unwrap();
            thread::yield_now();
        }
        held.await_start();
        // Another request with id 10: queued behind the held member.
        let (again_tx, again) = mpsc::channel();
        pool.put_request(
            WorkRequest::new(|x: u32| x, 2)
                .with_id(10)
                .on_result(move |_, x| again_tx.send(x).unwrap()),
        )
        .unwrap();
        assert_eq!(batch.cancel(), 0, "the later request is not a member");
        assert_eq!(batch.progress().ended(), 1);
        held.open();
        assert_eq!(pool.wait(), Ok(2));
        assert_eq!(again.try_recv(), Ok(2), "the later request ran");
        let progress = batch.progress();
        assert_eq!(
            (progress.total, progress.done, progress.cancelled),
            (2, 2, 0)
        );
        let done = rx.try_recv().expect("on_done ran");
        assert_eq!(done, progress);
        assert!(rx.try_recv().is_err());
    });
}

/// Two batches completed at once by a shutdown (their members handed
/// back), the first one's batch-done callback panicking: the second's
/// still runs, once, and the panic goes on after it. (It never ran.)
#[test]
fn a_panicking_batch_done_callback_skips_no_other_batch() {
    common::hide_panics_starting_with("batches: first on_done");
    for graceful in [false, true] {
        let pool = ThreadPool::new(0);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let batches: Vec<_> = (0..2)
            .map(|_| {
                pool.put_batch(make_requests(|x: u32| x, 0..3, |_, _| {}, |_, _| {}))
                    .unwrap()
            })
            .collect();
        for (i, batch) in batches.iter().enumerate() {
            let calls = Arc::clone(&calls);
            batch.on_done(move |_| {
                calls.lock().unwrap().push(i);
                if i == 0 {
                    panic!("batches: first on_done");
                }
            });
        }
        let shut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if graceful {
                let _ = pool.shutdown();
            } else {
                drop(pool.shutdown_now());
            }
        }));
        let how = if graceful { "shutdown" } else { "shutdown_now" };
        assert!(shut.is_err(), "{how}: the first callback's panic goes on");
        assert_eq!(
            *calls.lock().unwrap(),
            [0, 1],
            "{how}: each batch-done callback once"
        );
        assert!(batches[1].progress().is_complete(), "{how}");
    }
}

/// Two threads poll one handle. A batch member's result callback panics
/// after the other member's callback ran on the other thread, and the
/// batch-done callback, run by the panicking thread's flush of its count,
/// panics too: the member's panic, which came first, must reach its
/// caller (the later one is logged and dropped). It was silently replaced
/// by the batch-done callback's.
#[test]
fn a_callbacks_panic_is_not_replaced_by_the_batch_done_callbacks() {
    common::hide_panics_starting_with("panic of ");
    let caught = within("two pollers, two panics", || {
        let pool = ThreadPool::new(1);
        let (a_started_tx, a_started) = mpsc::channel::<()>();
        let (b_done_tx, b_done) = mpsc::channel::<()>();
        let (a_started, b_done) = (Mutex::new(a_started), Mutex::new(b_done));
        let (a_started_tx, b_done_tx) = (Mutex::new(a_started_tx), Mutex::new(b_done_tx));
        let batch = pool
            .put_batch(make_requests(
                // B runs once A's callback has begun: their results come
                // apart, to whichever thread polls first.
                move |x: u32| {
                    if x == 1 {
                        a_started.lock().unwrap().recv().unwrap();
                    }
                    x
                },
                0..2u32,
                move |_, x| {
                    if x == 0 {
                        a_started_tx.lock().unwrap().send(()).unwrap();
                        b_done.lock().unwrap().recv().unwrap();
                        panic!("panic of A's callback");
                    }
                    b_done_tx.lock().unwrap().send(()).unwrap();
                },
                |_, _| {},
            ))
            .unwrap();
        batch.on_done(|_| panic!("panic of the batch-done callback"));
        let caught = Arc::new(Mutex::new(Vec::new()));
        let pollers: Vec<_> = (0..2)
            .map(|_| {
                let (pool, caught) = (pool.clone(), Arc::clone(&caught));
                thread::spawn(move || {
                    while pool.pending() > 0 {
                        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            pool.poll_timeout(std::time::Duration::from_millis(1))
                        }));
                        if let Err(payload) = polled {
                            let message = payload.downcast_ref::<&str>().map(|s| s.to_string());
                            caught.lock().unwrap().push(message);
                        }
                    }
                })
            })
            .collect();
        for poller in pollers {
            poller.join().unwrap();
        }
        let caught = caught.lock().unwrap().clone();
        caught
    });
    assert!(
        caught.contains(&Some("panic of A's callback".to_owned())),
        "A's panic reached no caller: {caught:?}"
    );
}

/// Reads the progress of the batch it holds when dropped.
struct ReadsProgress(Arc<Mutex<Option<Arc<Batch>>>>);

impl Drop for ReadsProgress {
    fn drop(&mut self) {
        if let Some(batch) = self.0.lock().unwrap().as_ref() {
            let _ = batch.progress();
        }
    }
}

/// A batch-done callback replaced by a second `on_done` is dropped after
/// the batch's lock is released: a captured value whose `Drop` reads the
/// batch's progress does not deadlock. (It was dropped under the lock:
/// in a trial, every run.)
#[test]
fn replacing_on_done_drops_the_first_callback_outside_the_batchs_lock() {
    let pool = ThreadPool::new(0);
    let batch = Arc::new(pool.put_batch([WorkRequest::new(|x: u32| x, 1)]).unwrap());
    let cell = Arc::new(Mutex::new(Some(Arc::clone(&batch))));
    let reads = ReadsProgress(Arc::clone(&cell));
    batch.on_done(move |_| drop(reads));
    let second = Arc::clone(&batch);
    within("a second on_done", move || second.on_done(|_| {}));
    cell.lock().unwrap().take();
    assert_eq!(pool.shutdown_now().len(), 1);
}

/// A clone of a `Batch` follows the same batch: cancelled through a clone
/// on another thread, the members not started are cancelled once each, and
/// the original sees the same progress.
#[test]
fn a_clone_of_a_batch_cancels_and_reads_the_same_batch() {
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    let hold = WorkRequest::new(move |_: ()| latch.hold(), ());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let members = make_requests(
        |n: u32| n,
        0..10,
        |_, _| {},
        move |id, err| seen.lock().unwrap().push((id, err)),
    );
    let batch = pool
        .put_batch(std::iter::once(hold.into()).chain(members))
        .unwrap();
    gate.await_start();
    let clone = batch.clone();
    let cancelled = within("a cancel on another thread", move || clone.cancel());
    assert_eq!(cancelled, 10);
    gate.open();
    assert_eq!(pool.wait_timeout(common::HANG), Ok(11));
    let progress = batch.progress();
    assert_eq!((progress.done, progress.cancelled), (1, 10));
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 10);
    assert!(errors.iter().all(|(_, err)| *err == TaskError::Cancelled));
}

/// A member that a full bounded queue refuses because no worker is left
/// keeps its user-chosen id until it has ended, cancelled: a put of that
/// id racing the refusal, on another thread, is refused (`DuplicateId`,
/// or `Full` once the member has ended), never taken for the member, and
/// the member's error callback hears `Cancelled` once and the batch
/// completes. (The refusal freed the id and took it again: a put of the
/// id in between made the member vanish, its callback never called and
/// its batch never complete, with a "callpool bug" log line, in a trial,
/// about one round in two; every run of 15 failed, by round 12.) Each
/// round races once; the rounds only make the race likely, and pass or
/// fail never depends on timing.
#[test]
fn a_refused_members_id_stays_taken_against_a_racing_put() {
    within("refused members against a racing put", || {
        for round in 0..200 {
            let pool = ThreadPool::builder()
                .workers(0)
                .queue_capacity(1)
                .build()
                .unwrap();
            // The queue full, from another handle: nothing else is pending
            // on `pool`.
            let filler = pool.new_handle();
            filler.put_request(WorkRequest::new(|x: u8| x, 0)).unwrap();
            let errors = Arc::new(Mutex::new(Vec::new()));
            let (racing, stop) = (AtomicBool::new(false), AtomicBool::new(false));
            let batch = thread::scope(|s| {
                s.spawn(|| {
                    racing.store(true, Ordering::SeqCst);
                    while !stop.load(Ordering::SeqCst) {
                        match pool.try_put_request(WorkRequest::new(|x: u8| x, 1).with_id(7)) {
                            Err(PutError::DuplicateId(_) | PutError::Full(_)) => {}
                            other => panic!("round {round}: the racing put: {other:?}"),
                        }
                    }
                });
                while !racing.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                let batch = loop {
                    let seen = Arc::clone(&errors);
                    let member = WorkRequest::new(|x: u8| x, 2)
                        .with_id(7)
                        .on_error(move |id, err| seen.lock().unwrap().push((id, err)));
                    match pool.put_batch([member]) {
                        // The racing put held the id at that moment.
                        Err(BatchError::DuplicateId(_)) => continue,
                        other => break other,
                    }
                };
                stop.store(true, Ordering::SeqCst);
                batch
            });
            let batch = batch.unwrap();
            assert_eq!(pool.wait(), Ok(1), "round {round}");
            let progress = batch.progress();
            assert_eq!(
                (progress.total, progress.cancelled, progress.ended()),
                (1, 1, 1),
                "round {round}"
            );
            let errors = errors.lock().unwrap();
            assert_eq!(errors.len(), 1, "round {round}");
            assert_eq!(errors[0].0.value(), 7, "round {round}");
            assert_eq!(errors[0].1, TaskError::Cancelled, "round {round}");
            assert_eq!(filler.shutdown_now().len(), 1);
        }
    });
}

/// The same race on the hand-back path: a batch whose first member blocks
/// for room when the pool shuts down is handed back whole, its member with
/// a user-chosen id among the requests, however a put of that id on
/// another thread races the refusal. (The member vanished: `put_batch`
/// returned `Ok`, with a batch that never completes, and the member was
/// never called back nor handed back, in a trial: every run of 5 failed,
/// by round 4.) Each round races once; pass or fail never depends on
/// timing.
#[test]
fn a_batch_refused_by_a_shutdown_hands_back_its_member_against_a_racing_put() {
    within("a refused batch against a racing put", || {
        for round in 0..200 {
            let pool = common::one_worker_bounded(1, 0);
            let other = pool.new_handle();
            // The worker held, the queue full, both from another handle.
            let (held, latch) = gate();
            other
                .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .unwrap();
            held.await_start();
            other.put_request(WorkRequest::new(|x: u8| x, 0)).unwrap();
            let (go, racing, stop) = (
                AtomicBool::new(false),
                AtomicBool::new(false),
                AtomicBool::new(false),
            );
            let refused = thread::scope(|s| {
                let putting = s.spawn(|| {
                    let member = WorkRequest::new(|x: u8| x, 2).with_id(7);
                    pool.put_batch([member])
                });
                // The batch's member counted pending (nothing else is on
                // `pool` yet): its put is about to block for room.
                while pool.pending() == 0 {
                    thread::yield_now();
                }
                s.spawn(|| {
                    while !go.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    racing.store(true, Ordering::SeqCst);
                    while !stop.load(Ordering::SeqCst) {
                        match pool.try_put_request(WorkRequest::new(|x: u8| x, 1).with_id(7)) {
                            Err(
                                PutError::DuplicateId(_)
                                | PutError::Full(_)
                                | PutError::ShutDown(_),
                            ) => {}
                            other => panic!("round {round}: the racing put: {other:?}"),
                        }
                    }
                });
                go.store(true, Ordering::SeqCst);
                while !racing.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                // The pool shuts down under the blocked put.
                let back = other.shutdown_now();
                held.open();
                let refused = putting.join().unwrap();
                stop.store(true, Ordering::SeqCst);
                assert_eq!(back.len(), 1, "round {round}: the queued one");
                refused
            });
            match refused {
                Err(BatchError::ShutDown(back)) => {
                    let ids: Vec<_> = back.iter().map(|r| r.id().value()).collect();
                    assert_eq!(ids, [7], "round {round}");
                }
                other => panic!("round {round}: {other:?}"),
            }
            assert_eq!(pool.pending(), 0, "round {round}");
        }
    });
}

/// A batch counts its own requests only: what a member puts through its
/// `Context` is the handle's. The batch completes, and its done callback
/// runs, while those children are still held at a gate; the handle's
/// `pending` counts them, and `wait` covers them.
#[test]
fn a_members_children_are_the_handles_not_the_batchs() {
    use callpool::Context;
    use common::one_way::{Gate, OpenOnDrop};
    use std::sync::atomic::AtomicUsize;

    within("batch with children", || {
        let pool = ThreadPool::new(2);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let children_ended = Arc::new(AtomicUsize::new(0));
        let members: Vec<_> = (0..2)
            .map(|_| {
                let (gate, ended) = (Arc::clone(&gate), Arc::clone(&children_ended));
                WorkRequest::with_context(
                    move |cx: &Context<'_>, ()| {
                        for _ in 0..2 {
                            let (gate, ended) = (Arc::clone(&gate), Arc::clone(&ended));
                            cx.put(WorkRequest::new(
                                move |()| {
                                    gate.pass();
                                    ended.fetch_add(1, Ordering::SeqCst);
                                },
                                (),
                            ))
                            .unwrap();
                        }
                    },
                    (),
                )
            })
            .collect();
        let batch = pool.put_batch(members).unwrap();
        let done_ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done_ran);
        batch.on_done(move |_| flag.store(true, Ordering::SeqCst));
        while !done_ran.load(Ordering::SeqCst) {
            pool.poll().unwrap();
            thread::yield_now();
        }
        // The batch is complete with its two members; their four children
        // cannot have ended (the gate is shut) and are the handle's.
        let progress = batch.progress();
        assert_eq!((progress.total, progress.done), (2, 2));
        assert!(progress.is_complete());
        assert_eq!(children_ended.load(Ordering::SeqCst), 0);
        assert_eq!(pool.pending(), 4);
        gate.open();
        assert_eq!(pool.wait().unwrap(), 4);
        assert_eq!(children_ended.load(Ordering::SeqCst), 4);
        assert_eq!(batch.progress(), progress);
    });
}
