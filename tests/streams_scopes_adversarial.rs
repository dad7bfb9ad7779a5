//! Adversarial trial: streaming requests against bounded
//! result queues, cancels, shutdowns, dropped handles, resizes and
//! deadlines; scopes whose requests execute children; resizes and tickets
//! waited for inside callables. Timing never decides a pass: waits that
//! could hang are bounded by `common::within` (a hang is a failure).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use callpool::{Closed, Context, Emitter, TaskError, ThreadPool, WorkRequest};
use common::{counter, gate, within, Dropped};

const DELIBERATE: &str = "streams_scopes_adversarial: deliberate panic";

/// What a stream's callbacks saw, in the order they ran.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Item(usize),
    Done,
    Error(String),
}

type Log = Arc<Mutex<Vec<Heard>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// A stream of `n` items `0..n` that ends `Ok`, logging into `heard`.
fn counting_stream(n: usize, heard: &Log) -> WorkRequest {
    let (a, b, c) = (Arc::clone(heard), Arc::clone(heard), Arc::clone(heard));
    WorkRequest::streaming(
        |n: usize, out: &Emitter<'_, usize>| (0..n).try_for_each(|i| out.emit(i)),
        n,
    )
    .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
    .on_done(move |_| b.lock().unwrap().push(Heard::Done))
    .on_error(move |_, e| c.lock().unwrap().push(Heard::Error(e.to_string())))
    .into()
}

fn expect_full_stream(heard: &Log, n: usize) {
    let mut want: Vec<Heard> = (0..n).map(Heard::Item).collect();
    want.push(Heard::Done);
    assert_eq!(*heard.lock().unwrap(), want);
}

/// Every way a stream can end, on one handle: the wait's count (each item
/// and each end), the callbacks (each exactly once, after the items), and
/// the statistics are exact.
#[test]
fn every_end_of_a_stream_is_counted_once_in_wait_callbacks_and_stats() {
    common::hide_panics_starting_with(DELIBERATE);
    within("stream ends", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let ok = log();
        let failed = log();
        let panicked = log();
        let expired = log();
        let cancelled = log();
        pool.put_request(counting_stream(3, &ok)).unwrap();
        let (a, b) = (Arc::clone(&failed), Arc::clone(&failed));
        pool.put_request(
            WorkRequest::streaming(
                |_: (), out: &Emitter<'_, usize>| {
                    out.emit(0).map_err(|_| "closed")?;
                    out.emit(1).map_err(|_| "closed")?;
                    Err("half-way")
                },
                (),
            )
            .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
            .on_error(move |_, e| b.lock().unwrap().push(Heard::Error(e.to_string()))),
        )
        .unwrap();
        let (a, b) = (Arc::clone(&panicked), Arc::clone(&panicked));
        pool.put_request(
            WorkRequest::streaming(
                |_: (), out: &Emitter<'_, usize>| -> Result<(), Closed> {
                    out.emit(0)?;
                    panic!("{DELIBERATE}")
                },
                (),
            )
            .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
            .on_error(move |_, e| {
                assert!(matches!(e, TaskError::Panicked(_)), "{e:?}");
                b.lock().unwrap().push(Heard::Error("panicked".into()))
            }),
        )
        .unwrap();
        let e = Arc::clone(&expired);
        pool.put_request(
            WorkRequest::streaming(
                |_: (), _: &Emitter<'_, usize>| -> Result<(), Closed> { unreachable!("expired") },
                (),
            )
            .deadline(Instant::now())
            .on_error(move |_, err| e.lock().unwrap().push(Heard::Error(err.to_string()))),
        )
        .unwrap();
        let c = Arc::clone(&cancelled);
        let doomed = pool
            .put_request(
                WorkRequest::streaming(
                    |_: (), _: &Emitter<'_, usize>| -> Result<(), Closed> {
                        unreachable!("cancelled")
                    },
                    (),
                )
                .on_error(move |_, err| c.lock().unwrap().push(Heard::Error(err.to_string()))),
            )
            .unwrap();
        assert!(pool.cancel(doomed));
        held.open();
        // 3 items + end, 2 items + end, 1 item + end, expired, cancelled.
        assert_eq!(pool.wait().unwrap(), 4 + 3 + 2 + 1 + 1);
        expect_full_stream(&ok, 3);
        assert_eq!(
            *failed.lock().unwrap(),
            [
                Heard::Item(0),
                Heard::Item(1),
                Heard::Error(TaskError::Failed("half-way").to_string())
            ]
        );
        assert_eq!(
            *panicked.lock().unwrap(),
            [Heard::Item(0), Heard::Error("panicked".into())]
        );
        assert_eq!(
            *expired.lock().unwrap(),
            [Heard::Error(TaskError::<Closed>::Expired.to_string())]
        );
        assert_eq!(
            *cancelled.lock().unwrap(),
            [Heard::Error(TaskError::<Closed>::Cancelled.to_string())]
        );
        let stats = pool.stats();
        // The gate's executed request and the stream that succeeded.
        assert_eq!(
            (
                stats.completed,
                stats.failed,
                stats.panicked,
                stats.cancelled
            ),
            (2, 1, 1, 2),
            "{stats:?}"
        );
        assert_eq!(pool.pending(), 0);
    });
}

/// `cancel_queued` cancels each queued stream exactly once (no item, one
/// `Cancelled`), and the count it returns is exact.
#[test]
fn cancel_queued_ends_each_queued_stream_once_without_items() {
    within("cancel_queued streams", || {
        for _round in 0..20 {
            let pool = ThreadPool::new(1);
            let (held, latch) = gate();
            pool.execute(move || latch.hold()).unwrap();
            held.await_start();
            let logs: Vec<Log> = (0..40).map(|_| log()).collect();
            for heard in &logs {
                pool.put_request(counting_stream(5, heard)).unwrap();
            }
            assert_eq!(pool.cancel_queued(), 40);
            held.open();
            assert_eq!(pool.wait().unwrap(), 40);
            for heard in &logs {
                assert_eq!(
                    *heard.lock().unwrap(),
                    [Heard::Error(TaskError::<Closed>::Cancelled.to_string())]
                );
            }
            assert_eq!(pool.stats().cancelled, 40);
        }
    });
}

/// Streams on a result queue of 1 while the pool shrinks to one worker
/// and grows again: every stream's items arrive once, in order, then its
/// end, and `wait` counts them all.
#[test]
fn streams_on_a_full_result_queue_survive_resizes() {
    within("resize under streams", || {
        for round in 0..10 {
            let pool = ThreadPool::builder()
                .workers(4)
                .result_capacity(1)
                .build()
                .unwrap();
            let logs: Vec<Log> = (0..12).map(|_| log()).collect();
            for heard in &logs {
                pool.put_request(counting_stream(200, heard)).unwrap();
            }
            pool.resize(1).unwrap();
            let mut handled = pool.poll_timeout(Duration::from_secs(30)).unwrap();
            pool.resize(3).unwrap();
            assert_eq!(pool.dismiss_workers(2), 2);
            pool.resize(if round % 2 == 0 { 0 } else { 2 }).unwrap();
            if round % 2 == 0 {
                // No worker left: what is pending needs one.
                handled += pool.poll().unwrap();
                pool.resize(1).unwrap();
            }
            handled += pool.wait().unwrap();
            assert_eq!(handled, 12 * 201);
            for heard in &logs {
                expect_full_stream(heard, 200);
            }
            assert_eq!(pool.pending(), 0);
            assert_eq!(pool.stats().completed, 12);
        }
    });
}

/// An autoscaling pool (no worker at rest, up to 3, a short keep-alive)
/// runs streams on a bounded result queue while its workers come and go:
/// nothing lost, nothing twice, order kept.
#[test]
fn streams_on_an_autoscaling_pool_with_a_bounded_result_queue() {
    within("autoscale under streams", || {
        let pool = ThreadPool::builder()
            .min_workers(0)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .result_capacity(2)
            .build()
            .unwrap();
        for _round in 0..30 {
            let logs: Vec<Log> = (0..6).map(|_| log()).collect();
            for heard in &logs {
                pool.put_request(counting_stream(50, heard)).unwrap();
            }
            assert_eq!(pool.wait().unwrap(), 6 * 51);
            for heard in &logs {
                expect_full_stream(heard, 50);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(pool.stats().completed, 30 * 6);
    });
}

/// Every item a stream emits is dropped exactly once, wherever it ends:
/// delivered, emitted after its handle is gone (`Closed`), or left in a
/// bounded result queue when the handle is dropped.
#[test]
fn every_emitted_item_is_dropped_once_when_the_handle_goes_mid_stream() {
    within("items dropped once", || {
        for round in 0..50 {
            let pool = ThreadPool::builder()
                .workers(1)
                .result_capacity(1 + round % 3)
                .build()
                .unwrap();
            let keep = pool.new_handle();
            let drops = counter();
            let made = counter();
            let handled = counter();
            let (closed_tx, closed_rx) = mpsc::channel();
            let (d, m) = (Arc::clone(&drops), Arc::clone(&made));
            let h = Arc::clone(&handled);
            pool.put_request(
                WorkRequest::streaming(
                    move |_: (), out: &Emitter<'_, Dropped>| {
                        let mut sent = 0usize;
                        loop {
                            m.fetch_add(1, Ordering::SeqCst);
                            if out.emit(Dropped(Arc::clone(&d))).is_err() {
                                break;
                            }
                            sent += 1;
                        }
                        closed_tx.send(sent).unwrap();
                        Err::<(), _>(Closed)
                    },
                    (),
                )
                .on_result(move |_, item| {
                    h.fetch_add(1, Ordering::SeqCst);
                    drop(item);
                }),
            )
            .unwrap();
            // Take a few items, then let go of the handle mid-stream.
            for _ in 0..round % 4 {
                pool.poll_timeout(Duration::from_secs(30)).unwrap();
            }
            drop(pool);
            let sent = closed_rx.recv().unwrap();
            // The worker is free again: it serves the other handle.
            let (tx, rx) = mpsc::channel();
            keep.put_request(
                WorkRequest::new(|x: u8| x, 7).on_result(move |_, x| tx.send(x).unwrap()),
            )
            .unwrap();
            assert_eq!(keep.wait().unwrap(), 1);
            assert_eq!(rx.recv().unwrap(), 7);
            assert!(handled.load(Ordering::SeqCst) <= sent);
            common::until(|| drops.load(Ordering::SeqCst) == made.load(Ordering::SeqCst));
            assert_eq!(drops.load(Ordering::SeqCst), sent + 1, "round {round}");
        }
    });
}

/// `shutdown_now` hands queued streams back whole: put on another pool,
/// each delivers all its items in order, then its end. The stream that was
/// running on the closed pool hears `Closed` and its callbacks never run.
#[test]
fn shutdown_now_hands_back_queued_streams_that_run_whole_elsewhere() {
    within("shutdown_now streams", || {
        for _round in 0..20 {
            let pool = ThreadPool::builder()
                .workers(1)
                .result_capacity(1)
                .build()
                .unwrap();
            let (started_tx, started_rx) = mpsc::channel();
            let (closed_tx, closed_rx) = mpsc::channel();
            let running = log();
            let (a, b) = (Arc::clone(&running), Arc::clone(&running));
            pool.put_request(
                WorkRequest::streaming(
                    move |_: (), out: &Emitter<'_, usize>| {
                        started_tx.send(()).unwrap();
                        let mut i = 0;
                        while out.emit(i).is_ok() {
                            i += 1;
                        }
                        closed_tx.send(i).unwrap();
                        Ok::<_, Closed>(())
                    },
                    (),
                )
                .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
                .on_done(move |_| b.lock().unwrap().push(Heard::Done)),
            )
            .unwrap();
            started_rx.recv().unwrap();
            let logs: Vec<Log> = (0..5).map(|_| log()).collect();
            for heard in &logs {
                pool.put_request(counting_stream(30, heard)).unwrap();
            }
            let back = pool.shutdown_now();
            assert_eq!(back.len(), 5);
            closed_rx.recv().unwrap();
            assert!(running.lock().unwrap().is_empty());
            let other = ThreadPool::builder()
                .workers(2)
                .result_capacity(1)
                .build()
                .unwrap();
            for request in back {
                other.put_request(request).unwrap();
            }
            assert_eq!(other.wait().unwrap(), 5 * 31);
            for heard in &logs {
                expect_full_stream(heard, 30);
            }
        }
    });
}

/// Streams put by executed children (`Context::execute_with_context`) of an
/// executed request: `wait` covers them all, and counts only the streams'
/// items and ends (executed requests have no result to handle).
#[test]
fn streams_put_from_executed_children_are_covered_by_wait() {
    within("streams from executed children", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(3)
            .build()
            .unwrap();
        for _round in 0..20 {
            let logs: Arc<Vec<Log>> = Arc::new((0..16).map(|_| log()).collect());
            let l = Arc::clone(&logs);
            pool.execute_with_context(move |cx: &Context<'_>| {
                for k in 0..16 {
                    let l = Arc::clone(&l);
                    cx.execute_with_context(move |cx| {
                        cx.put(counting_stream(k, &l[k])).unwrap();
                    })
                    .unwrap();
                }
            })
            .unwrap();
            let items: usize = (0..16).sum();
            assert_eq!(pool.wait().unwrap(), items + 16);
            for (k, heard) in logs.iter().enumerate() {
                expect_full_stream(heard, k);
            }
        }
    });
}

/// A stream's own `out.context().execute(..)` children: covered by `wait`,
/// and the stream's items still arrive in order around them.
#[test]
fn a_stream_that_executes_children_between_its_items() {
    within("stream executing children", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(1)
            .build()
            .unwrap();
        for _round in 0..20 {
            let ran = counter();
            let heard = log();
            let (a, b) = (Arc::clone(&heard), Arc::clone(&heard));
            let r = Arc::clone(&ran);
            pool.put_request(
                WorkRequest::streaming(
                    move |n: usize, out: &Emitter<'_, usize>| {
                        for i in 0..n {
                            let r = Arc::clone(&r);
                            out.context()
                                .execute(move || {
                                    r.fetch_add(1, Ordering::SeqCst);
                                })
                                .unwrap();
                            out.emit(i)?;
                        }
                        Ok::<_, Closed>(())
                    },
                    100,
                )
                .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
                .on_done(move |_| b.lock().unwrap().push(Heard::Done)),
            )
            .unwrap();
            assert_eq!(pool.wait().unwrap(), 101);
            assert_eq!(ran.load(Ordering::SeqCst), 100);
            expect_full_stream(&heard, 100);
        }
    });
}

/// Streams in a batch: the batch's progress counts each stream once by
/// how it ended (not per item), and its batch-done callback runs once.
#[test]
fn a_batch_of_streams_counts_each_stream_once() {
    common::hide_panics_starting_with(DELIBERATE);
    within("batch of streams", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(2)
            .build()
            .unwrap();
        let mut requests: Vec<WorkRequest> = Vec::new();
        let logs: Vec<Log> = (0..10).map(|_| log()).collect();
        for heard in &logs {
            requests.push(counting_stream(7, heard));
        }
        for k in 0..4 {
            requests.push(
                WorkRequest::streaming(
                    move |_: (), out: &Emitter<'_, usize>| {
                        out.emit(k).map_err(|_| "closed")?;
                        if k % 2 == 0 {
                            panic!("{DELIBERATE}");
                        }
                        Err("failed")
                    },
                    (),
                )
                .on_error(|_, _| {})
                .into(),
            );
        }
        let batch = pool.put_batch(requests).unwrap();
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |p| tx.send(p).unwrap());
        assert_eq!(pool.wait().unwrap(), 10 * 8 + 4 * 2);
        let p = rx.recv().unwrap();
        assert!(rx.try_recv().is_err());
        assert_eq!((p.total, p.done, p.failed, p.cancelled), (14, 10, 4, 0));
        for heard in &logs {
            expect_full_stream(heard, 7);
        }
    });
}

/// A stream whose deadline passes while it is queued behind a busy worker
/// expires: no item, `Expired` once, counted cancelled. `.timeout` as
/// `.deadline`.
#[test]
fn streams_that_expire_in_the_queue_emit_nothing() {
    within("expiring streams", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let logs: Vec<Log> = (0..20).map(|_| log()).collect();
        for heard in &logs {
            let (a, b) = (Arc::clone(heard), Arc::clone(heard));
            pool.put_request(
                WorkRequest::streaming(
                    |n: usize, out: &Emitter<'_, usize>| (0..n).try_for_each(|i| out.emit(i)),
                    3,
                )
                .timeout(Duration::from_millis(1))
                .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
                .on_error(move |_, e| b.lock().unwrap().push(Heard::Error(e.to_string()))),
            )
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        held.open();
        assert_eq!(pool.wait().unwrap(), 20);
        for heard in &logs {
            assert_eq!(
                *heard.lock().unwrap(),
                [Heard::Error(TaskError::<Closed>::Expired.to_string())]
            );
        }
        assert_eq!(pool.stats().cancelled, 20);
    });
}

/// Many streams on a bounded result queue, polled by two threads at once,
/// with callables that fail or panic half-way and item callbacks that
/// panic: each stream's callbacks see every item once, in order, then
/// exactly one end (a panicking item callback still saw its item); the
/// handled counts of the two threads add up to every item and end.
#[test]
fn two_pollers_on_a_bounded_queue_with_panics_everywhere() {
    common::hide_panics_starting_with(DELIBERATE);
    within("two pollers with panics", || {
        let mut rng = common::Rng(0x5eed_0105);
        for round in 0..30 {
            let pool = ThreadPool::builder()
                .workers(2)
                .result_capacity(1 + (round % 3))
                .build()
                .unwrap();
            let streams = 8;
            let logs: Vec<Log> = (0..streams).map(|_| log()).collect();
            let mut want = Vec::new();
            let mut messages = 0;
            for heard in &logs {
                let n = rng.below(60) as usize;
                let how = rng.below(3); // 0: ok, 1: Err, 2: panic
                let bad_item = if rng.chance(30) {
                    Some(rng.below(n as u64 + 1) as usize)
                } else {
                    None
                };
                let (a, b, c) = (Arc::clone(heard), Arc::clone(heard), Arc::clone(heard));
                pool.put_request(
                    WorkRequest::streaming(
                        move |n: usize, out: &Emitter<'_, usize>| {
                            for i in 0..n {
                                out.emit(i).map_err(|_| "closed")?;
                            }
                            match how {
                                0 => Ok(()),
                                1 => Err("failed"),
                                _ => panic!("{DELIBERATE} in a callable"),
                            }
                        },
                        n,
                    )
                    .on_result(move |_, i| {
                        a.lock().unwrap().push(Heard::Item(i));
                        if bad_item == Some(i) {
                            panic!("{DELIBERATE} in a callback");
                        }
                    })
                    .on_done(move |_| b.lock().unwrap().push(Heard::Done))
                    .on_error(move |_, e| {
                        let what = match e {
                            TaskError::Failed(_) => "failed",
                            TaskError::Panicked(_) => "panicked",
                            _ => "other",
                        };
                        c.lock().unwrap().push(Heard::Error(what.into()))
                    }),
                )
                .unwrap();
                let mut w: Vec<Heard> = (0..n).map(Heard::Item).collect();
                w.push(match how {
                    0 => Heard::Done,
                    1 => Heard::Error("failed".into()),
                    _ => Heard::Error("panicked".into()),
                });
                want.push(w);
                messages += n + 1;
            }
            let handled = Arc::new(AtomicUsize::new(0));
            let poll_all = |pool: ThreadPool, handled: Arc<AtomicUsize>| {
                move || loop {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.wait())) {
                        Ok(Ok(n)) => {
                            handled.fetch_add(n, Ordering::SeqCst);
                            if pool.pending() == 0 {
                                break;
                            }
                        }
                        Ok(Err(e)) => panic!("{e:?}"),
                        Err(_) => {} // a callback's panic; the rest stays
                    }
                }
            };
            let helper = std::thread::spawn(poll_all(pool.clone(), Arc::clone(&handled)));
            poll_all(pool.clone(), Arc::clone(&handled))();
            helper.join().unwrap();
            for (k, heard) in logs.iter().enumerate() {
                assert_eq!(*heard.lock().unwrap(), want[k], "round {round}, stream {k}");
            }
            // A callback that panicked was handled, but the call it ran in
            // returned no count: at most the messages, never more.
            assert!(handled.load(Ordering::SeqCst) <= messages);
            assert_eq!(pool.pending(), 0);
        }
    });
}

// ---------------------------------------------------------------------------
// Scopes whose requests execute children.
// ---------------------------------------------------------------------------

/// A scope's requests execute children through their context: the scope
/// does not wait for those (the doc says so), but the handle's `wait`
/// does, with nothing to count; a child's panic is counted and logged,
/// never passed to the scope.
#[test]
fn a_scopes_executed_children_are_the_handles_to_wait_for() {
    common::hide_panics_starting_with(DELIBERATE);
    within("scope children", || {
        let pool = ThreadPool::new(2);
        for round in 0..20u64 {
            let ran = counter();
            let data: Vec<u64> = (0..10).collect();
            let mut sum = 0;
            pool.scope(|s| {
                for x in &data {
                    let ran = Arc::clone(&ran);
                    s.put_with_context(
                        move |cx: &Context<'_>, x: &u64| {
                            for j in 0..10 {
                                let ran = Arc::clone(&ran);
                                cx.execute(move || {
                                    if j == 9 && round % 5 == 0 {
                                        panic!("{DELIBERATE} in a scope's child");
                                    }
                                    ran.fetch_add(1, Ordering::SeqCst);
                                })
                                .unwrap();
                            }
                            *x
                        },
                        x,
                    )
                    .unwrap();
                }
                s.wait_with(|_, v| sum += v.unwrap());
            });
            assert_eq!(sum, 45);
            assert_eq!(pool.wait(), Ok(0));
            let want = if round % 5 == 0 { 90 } else { 100 };
            assert_eq!(ran.load(Ordering::SeqCst), want, "round {round}");
        }
        let stats = pool.stats();
        assert_eq!(stats.panicked, 4 * 10);
        // 20 rounds of 10 scope requests and 100 children, less the panics.
        assert_eq!(stats.completed, 20 * 110 - 40);
    });
}

/// A scope opened inside a callable of a one-worker pool: its requests run
/// on that worker (nobody else could), and what they execute waits in its
/// slot until the callable returns; the handle's `wait` covers all of it.
#[test]
fn a_scope_inside_a_one_worker_callable_with_executed_children() {
    within("nested scope children", || {
        let pool = ThreadPool::new(1);
        for _round in 0..20 {
            let ran = counter();
            let (h, r) = (pool.clone(), Arc::clone(&ran));
            let (tx, rx) = mpsc::channel();
            pool.execute(move || {
                let xs: Vec<u32> = (1..=8).collect();
                let mut total = 0;
                h.scope(|s| {
                    for x in &xs {
                        let r = Arc::clone(&r);
                        s.put_with_context(
                            move |cx: &Context<'_>, x: &u32| {
                                let r2 = Arc::clone(&r);
                                cx.execute_with_context(move |cx| {
                                    let r3 = Arc::clone(&r2);
                                    cx.execute(move || {
                                        r3.fetch_add(1, Ordering::SeqCst);
                                    })
                                    .unwrap();
                                    r2.fetch_add(1, Ordering::SeqCst);
                                })
                                .unwrap();
                                let (a, b) = cx.join(|_| *x, |_| *x);
                                a + b
                            },
                            x,
                        )
                        .unwrap();
                    }
                    s.wait_with(|_, v| total += v.unwrap());
                });
                tx.send(total).unwrap();
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(rx.recv().unwrap(), 72);
            assert_eq!(ran.load(Ordering::SeqCst), 16);
        }
    });
}

/// `shutdown_now` on a clone of a scope's handle while the scope's requests
/// are queued: none of them is handed back (they borrow the scope's
/// stack), each ends once in the scope (run or `Cancelled`), and the scope
/// returns.
#[test]
fn shutdown_now_during_a_scope_hands_back_none_of_its_requests() {
    within("shutdown_now in a scope", || {
        for round in 0..30 {
            let pool = ThreadPool::new(1);
            let (held, latch) = gate();
            let other = pool.new_handle();
            other.execute(move || latch.hold()).unwrap();
            held.await_start();
            let words: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
            let stopper = pool.clone();
            let mut outcomes = Vec::new();
            let back = pool.scope(|s| {
                for w in &words {
                    s.put(|w: &String| w.len(), w).unwrap();
                }
                let back = stopper.shutdown_now();
                if round % 2 == 0 {
                    held.open();
                }
                s.wait_with(|_, o| outcomes.push(o));
                back.len()
            });
            held.open();
            assert_eq!(back, 0, "a lent request was handed back");
            assert_eq!(outcomes.len(), 6);
            assert!(
                outcomes.iter().all(|o| *o == Err(TaskError::Cancelled)),
                "{outcomes:?}"
            );
            assert_eq!(words.len(), 6);
        }
    });
}

/// A panic in the scope's body while its requests are queued behind a busy
/// worker: the scope waits for them, then the panic passes on; the
/// borrowed data is intact and nothing runs after the scope.
#[test]
fn a_panicking_scope_body_still_waits_for_its_requests() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking scope body", || {
        let pool = ThreadPool::new(1);
        for _round in 0..20 {
            let (held, latch) = gate();
            pool.execute(move || latch.hold()).unwrap();
            held.await_start();
            let ran = counter();
            let xs = vec![1u32, 2, 3];
            let r = Arc::clone(&ran);
            let opener = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                held.open();
            });
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.scope(|s| {
                    for x in &xs {
                        let r = Arc::clone(&r);
                        s.put(
                            move |x: &u32| {
                                r.fetch_add(1, Ordering::SeqCst);
                                *x
                            },
                            x,
                        )
                        .unwrap();
                    }
                    panic!("{DELIBERATE} in a scope's body");
                })
            }));
            assert!(caught.is_err());
            // Every request ran before the scope returned.
            assert_eq!(ran.load(Ordering::SeqCst), 3);
            opener.join().unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(ran.load(Ordering::SeqCst), 3);
        }
    });
}

// ---------------------------------------------------------------------------
// Tickets waited for inside callables; resizes with tickets.
// ---------------------------------------------------------------------------

/// On a one-worker pool, a callable submits tickets and waits for each, or
/// reads them with `as_completed`: each request runs on the waiting worker
/// itself, and every outcome arrives once.
#[test]
fn tickets_waited_inside_a_one_worker_callable() {
    within("tickets inside", || {
        let pool = ThreadPool::new(1);
        for round in 0..20u64 {
            let h = pool.clone();
            let (tx, rx) = mpsc::channel();
            pool.execute(move || {
                let tickets: Vec<_> = (0..10u64)
                    .map(|i| h.submit(|i: u64| i * i, i).unwrap())
                    .collect();
                let total: u64 = if round % 2 == 0 {
                    tickets.into_iter().map(|t| t.wait().unwrap()).sum()
                } else {
                    callpool::as_completed(tickets)
                        .map(|(_, o)| o.unwrap())
                        .sum()
                };
                tx.send(total).unwrap();
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(rx.recv().unwrap(), 285);
        }
    });
}

/// Tickets submitted while the pool is resized down to nothing and back:
/// each ticket's wait returns its outcome once the worker is back.
#[test]
fn tickets_survive_a_resize_to_zero_and_back() {
    within("tickets and resize", || {
        let pool = ThreadPool::new(2);
        for _round in 0..30 {
            pool.resize(0).unwrap();
            let tickets: Vec<_> = (0..20u32)
                .map(|i| pool.submit(|i: u32| i + 1, i).unwrap())
                .collect();
            assert_eq!(pool.queued(), 20);
            pool.resize(2).unwrap();
            let sum: u32 = tickets.into_iter().map(|t| t.wait().unwrap()).sum();
            assert_eq!(sum, 210);
        }
        assert_eq!(pool.stats().completed, 600);
    });
}

// ---------------------------------------------------------------------------
// The global pool (a child process: one configuration per process).
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "STREAMS_SCOPES_ADVERSARIAL_CHILD";

/// A one-worker global pool: tickets waited for inside its callables run
/// on the waiting worker; a stream on it is covered by `global().wait()`;
/// `shutdown_now` on a clone of the global handle hands back only the
/// handle's queued requests (executed and streaming ones too), leaves the
/// pool open, and the requests handed back run when put again.
#[test]
fn the_global_pool_with_tickets_streams_and_shutdown_now() {
    const NAME: &str = "the_global_pool_with_tickets_streams_and_shutdown_now";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(ThreadPool::builder().workers(1).result_capacity(2)).unwrap();
    let global = callpool::global();
    // Tickets inside a callable of the one worker.
    let (tx, rx) = mpsc::channel();
    global
        .execute(move || {
            let tickets: Vec<_> = (0..5u32)
                .map(|i| callpool::global().submit(|i: u32| i * 2, i).unwrap())
                .collect();
            tx.send(tickets.into_iter().map(|t| t.wait().unwrap()).sum::<u32>())
                .unwrap();
        })
        .unwrap();
    assert_eq!(rx.recv().unwrap(), 20);
    // A stream on the bounded result queue.
    let heard = log();
    global.put_request(counting_stream(100, &heard)).unwrap();
    assert_eq!(global.wait().unwrap(), 101);
    expect_full_stream(&heard, 100);
    // shutdown_now on a clone, with the worker held.
    let (held, latch) = gate();
    global.execute(move || latch.hold()).unwrap();
    held.await_start();
    let ran = counter();
    let r = Arc::clone(&ran);
    global
        .execute(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let streamed = log();
    global.put_request(counting_stream(3, &streamed)).unwrap();
    let mine = global.new_handle();
    let theirs = log();
    mine.put_request(counting_stream(4, &theirs)).unwrap();
    let back = global.clone().shutdown_now();
    assert_eq!(back.len(), 2);
    assert!(!global.is_shut_down());
    held.open();
    assert_eq!(mine.wait().unwrap(), 5);
    expect_full_stream(&theirs, 4);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    for request in back {
        global.put_request(request).unwrap();
    }
    assert_eq!(global.wait().unwrap(), 4, "the stream's 3 items and end");
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    expect_full_stream(&streamed, 3);
    common::child_ran(NAME);
}

// ---------------------------------------------------------------------------
// More streams: callbacks that put on a full queue, timed polls, batches.
// ---------------------------------------------------------------------------

/// One worker, a request queue of 1 and a result queue of 1: each item's
/// callback puts a follow-up, which blocks on the full request queue while
/// the worker is busy with the stream, and handles results while it
/// waits (among them the stream's next items, which must wait for the
/// callback running below). Nothing deadlocks, every item and follow-up is
/// handled once, and the items keep their order.
#[test]
fn item_callbacks_that_put_on_a_full_queue_while_the_stream_runs() {
    within("callbacks putting on a full queue", || {
        for _round in 0..10 {
            let pool = common::one_worker_bounded(1, 1);
            let weak = pool.downgrade();
            let heard = log();
            let follow = counter();
            let (a, b, f) = (Arc::clone(&heard), Arc::clone(&heard), Arc::clone(&follow));
            pool.put_request(
                WorkRequest::streaming(
                    |n: usize, out: &Emitter<'_, usize>| (0..n).try_for_each(|i| out.emit(i)),
                    200,
                )
                .on_result(move |_, i| {
                    a.lock().unwrap().push(Heard::Item(i));
                    let f = Arc::clone(&f);
                    weak.upgrade()
                        .unwrap()
                        .put_request(WorkRequest::new(|i: usize| i, i).on_result(move |_, _| {
                            f.fetch_add(1, Ordering::SeqCst);
                        }))
                        .unwrap();
                })
                .on_done(move |_| b.lock().unwrap().push(Heard::Done)),
            )
            .unwrap();
            // 200 items, the stream's end and 200 follow-ups are handled,
            // but those a callback's blocked put handled count in no
            // `wait`: the put handled them, and returns only its id.
            let handled = pool.wait().unwrap();
            assert!((1..=401).contains(&handled), "{handled}");
            assert_eq!(pool.pending(), 0);
            expect_full_stream(&heard, 200);
            assert_eq!(follow.load(Ordering::SeqCst), 200);
        }
    });
}

/// `poll_timeout` returns as soon as one item of a still-running stream is
/// handled; `pending` counts the stream until its end is handled; a
/// `wait_timeout` that gives up keeps what it handled.
#[test]
fn timed_polls_and_pending_follow_a_stream_item_by_item() {
    within("timed polls", || {
        let pool = ThreadPool::new(1);
        let (step_tx, step_rx) = mpsc::channel::<()>();
        let heard = log();
        let (a, b) = (Arc::clone(&heard), Arc::clone(&heard));
        pool.put_request(
            WorkRequest::streaming(
                move |n: usize, out: &Emitter<'_, usize>| {
                    for i in 0..n {
                        step_rx.recv().unwrap();
                        out.emit(i)?;
                    }
                    step_rx.recv().unwrap();
                    Ok::<_, Closed>(())
                },
                3,
            )
            .on_result(move |_, i| a.lock().unwrap().push(Heard::Item(i)))
            .on_done(move |_| b.lock().unwrap().push(Heard::Done)),
        )
        .unwrap();
        for i in 0..3 {
            step_tx.send(()).unwrap();
            assert_eq!(pool.poll_timeout(common::HANG), Ok(1), "item {i}");
            assert_eq!(pool.pending(), 1);
            assert_eq!(heard.lock().unwrap().len(), i + 1);
        }
        assert!(matches!(
            pool.wait_timeout(Duration::from_millis(5)),
            Err(callpool::WaitError::Timeout { pending: 1 })
        ));
        step_tx.send(()).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        expect_full_stream(&heard, 3);
    });
}

/// `Batch::cancel` on a batch of streams queued behind a busy worker:
/// it says how many it stopped, each of those hears `Cancelled` once and
/// emits nothing, and the batch's progress and done callback agree.
#[test]
fn batch_cancel_stops_queued_streams_once() {
    within("batch cancel streams", || {
        for _round in 0..20 {
            let pool = ThreadPool::new(1);
            let (held, latch) = gate();
            pool.execute(move || latch.hold()).unwrap();
            held.await_start();
            let logs: Vec<Log> = (0..30).map(|_| log()).collect();
            let batch = pool
                .put_batch(
                    logs.iter()
                        .map(|heard| counting_stream(4, heard))
                        .collect::<Vec<_>>(),
                )
                .unwrap();
            let (tx, rx) = mpsc::channel();
            batch.on_done(move |p| tx.send(p).unwrap());
            assert_eq!(batch.cancel(), 30);
            assert_eq!(batch.cancel(), 0);
            held.open();
            assert_eq!(pool.wait().unwrap(), 30);
            let p = rx.recv().unwrap();
            assert_eq!((p.total, p.done, p.failed, p.cancelled), (30, 0, 0, 30));
            for heard in &logs {
                assert_eq!(
                    *heard.lock().unwrap(),
                    [Heard::Error(TaskError::<Closed>::Cancelled.to_string())]
                );
            }
        }
    });
}
/// On the global pool, `shutdown_now` on a handle hands back its queued
/// batch members (counted cancelled in their batch) and the pool stays
/// open, so they may be put again on the same handle. Put again, a member
/// is a new request: its end must not be counted in the batch a second
/// time. (It was: the batch counted the re-put member's end as done, so
/// with a failing member still running, the batch completed early, with
/// that failure never counted and the re-put member counted twice.)
#[test]
fn a_batch_member_handed_back_by_the_global_pool_and_put_again_counts_once() {
    const NAME: &str = "a_batch_member_handed_back_by_the_global_pool_and_put_again_counts_once";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(ThreadPool::builder().workers(2)).unwrap();
    let global = callpool::global();
    // Worker 1 holds member A (which will fail); worker 2 is held by an
    // executed request, so member B stays queued.
    let (held_a, latch_a) = gate();
    let (held_w, latch_w) = gate();
    let latch_a = Mutex::new(Some(latch_a));
    let members: Vec<WorkRequest> = vec![
        WorkRequest::fallible(
            move |_: ()| {
                latch_a.lock().unwrap().take().unwrap().hold();
                Err::<u8, _>("A failed")
            },
            (),
        )
        .on_error(|_, _| {})
        .into(),
        WorkRequest::new(|_: ()| 2u8, ()).into(),
    ];
    let other = global.new_handle();
    other.execute(move || latch_w.hold()).unwrap();
    held_w.await_start();
    let batch = global.put_batch(members).unwrap();
    held_a.await_start();
    let (tx, rx) = mpsc::channel();
    batch.on_done(move |p| tx.send(p).unwrap());
    let back = global.clone().shutdown_now();
    assert_eq!(back.len(), 1, "member B, queued");
    assert_eq!(batch.progress().cancelled, 1);
    // B, put again on the same handle, runs on worker 2 while A still runs.
    for request in back {
        global.put_request(request).unwrap();
    }
    held_w.open();
    assert_eq!(global.poll_timeout(common::HANG), Ok(1));
    assert!(
        !batch.progress().is_complete(),
        "the batch completed while its member A still runs: {:?}",
        batch.progress()
    );
    held_a.open();
    assert_eq!(global.wait(), Ok(1));
    let p = rx.recv().unwrap();
    assert_eq!(
        (p.total, p.done, p.failed, p.cancelled),
        (2, 0, 1, 1),
        "{p:?}"
    );
    assert_eq!(batch.progress(), p);
    other.wait().unwrap();
    common::child_ran(NAME);
}

/// The same on the global pool once the hand-back completed the batch (its
/// done callback ran in `shutdown_now`): the members put again are requests
/// of their own, which `Batch::cancel` must leave alone. (It cancelled
/// them: they still matched the batch's members.)
#[test]
fn batch_cancel_leaves_members_put_again_after_a_global_hand_back_alone() {
    const NAME: &str = "batch_cancel_leaves_members_put_again_after_a_global_hand_back_alone";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(ThreadPool::builder().workers(1)).unwrap();
    let global = callpool::global();
    let (held, latch) = gate();
    let other = global.new_handle();
    other.execute(move || latch.hold()).unwrap();
    held.await_start();
    let ran = counter();
    let members: Vec<WorkRequest> = (0..3)
        .map(|_| {
            let r = Arc::clone(&ran);
            WorkRequest::new(
                move |_: ()| {
                    r.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .into()
        })
        .collect();
    let batch = global.put_batch(members).unwrap();
    let (tx, rx) = mpsc::channel();
    batch.on_done(move |p| tx.send(p).unwrap());
    let back = global.clone().shutdown_now();
    assert_eq!(back.len(), 3);
    let p = rx.try_recv().expect("the hand-back completed the batch");
    assert_eq!((p.total, p.cancelled), (3, 3));
    for request in back {
        global.put_request(request).unwrap();
    }
    assert_eq!(batch.cancel(), 0, "requests put again are not the batch's");
    held.open();
    assert_eq!(global.wait(), Ok(3));
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    assert_eq!(batch.progress(), p);
    other.wait().unwrap();
    common::child_ran(NAME);
}
