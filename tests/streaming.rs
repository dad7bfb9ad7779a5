//! Streaming requests: each emitted item reaches the result callback on the
//! polling thread, in order, as soon as it is polled; a failure or a panic
//! half-way delivers the items emitted so far, then the error callback once;
//! a bounded result queue holds a fast emitter back without deadlocking a
//! thread that both puts and polls.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use callpool::{Closed, Emitter, TaskError, ThreadPool, WorkRequest};
use common::{counter, gate, within};

const DELIBERATE: &str = "streaming: deliberate panic";

/// Items arrive in emission order, on the polling thread, one callback per
/// item; the request counts once in `wait`.
#[test]
fn items_arrive_in_order_on_the_polling_thread() {
    within("order", || {
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        pool.put_request(
            WorkRequest::streaming(
                |n: u32, out: &Emitter<'_, u32>| {
                    for i in 0..n {
                        out.emit(i)?;
                    }
                    Ok::<_, Closed>(())
                },
                10_000,
            )
            .on_result(move |_, i| {
                assert_eq!(thread::current().id(), me);
                s.lock().unwrap().push(i);
            })
            .on_error(|id, err| panic!("{id}: {err:?}")),
        )
        .unwrap();
        // Each item counts as a result handled, and so does the end.
        assert_eq!(pool.wait(), Ok(10_001));
        assert_eq!(*seen.lock().unwrap(), (0..10_000).collect::<Vec<_>>());
    });
}

/// An item is handled as soon as the handle is polled, while the callable
/// is still running: the callable waits (on a gate) until the poller has
/// seen its first item.
#[test]
fn an_item_is_handled_before_the_request_ends() {
    within("early", || {
        let pool = ThreadPool::new(1);
        let (seen_tx, seen_rx) = mpsc::channel::<()>();
        let (held, latch) = gate();
        pool.put_request(
            WorkRequest::streaming(
                move |_: (), out: &Emitter<'_, &'static str>| {
                    out.emit("first")?;
                    latch.hold();
                    out.emit("second")?;
                    Ok::<_, Closed>(())
                },
                (),
            )
            .on_result(move |_, item| {
                if item == "first" {
                    seen_tx.send(()).unwrap();
                }
            }),
        )
        .unwrap();
        held.await_start();
        // The request is still running (held); poll until the first item
        // has been handled here.
        while seen_rx.try_recv().is_err() {
            pool.poll_timeout(common::HANG).ok();
        }
        assert_eq!(pool.pending(), 1, "still running");
        held.open();
        assert_eq!(pool.wait(), Ok(2), "the second item and the end");
    });
}

/// A panic half-way: the items emitted before it arrive, then the error
/// callback once with the panic's message.
#[test]
fn a_panic_half_way_delivers_the_items_so_far_then_the_error_once() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (items, errors) = (Arc::clone(&log), Arc::clone(&log));
    pool.put_request(
        WorkRequest::streaming(
            |_: (), out: &Emitter<'_, u32>| -> Result<(), Closed> {
                for i in 0..3 {
                    out.emit(i)?;
                }
                panic!("{DELIBERATE}");
            },
            (),
        )
        .on_result(move |_, i| items.lock().unwrap().push(format!("item {i}")))
        .on_error(move |_, err: TaskError<Closed>| {
            errors.lock().unwrap().push(format!("error {err}"));
        }),
    )
    .unwrap();
    assert_eq!(pool.wait(), Ok(4));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "item 0".to_string(),
            "item 1".into(),
            "item 2".into(),
            format!("error request panicked: {DELIBERATE}"),
        ]
    );
}

/// An `Err` half-way: same, with `Failed`.
#[test]
fn an_error_half_way_delivers_the_items_so_far_then_the_error_once() {
    let pool = ThreadPool::new(1);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (items, errors) = (Arc::clone(&log), Arc::clone(&log));
    pool.put_request(
        WorkRequest::streaming(
            |_: (), out: &Emitter<'_, u32>| {
                out.emit(1).map_err(|_| "closed")?;
                out.emit(2).map_err(|_| "closed")?;
                Err("bad input")
            },
            (),
        )
        .on_result(move |_, i| items.lock().unwrap().push(format!("item {i}")))
        .on_error(move |_, err| errors.lock().unwrap().push(format!("{err:?}"))),
    )
    .unwrap();
    pool.wait().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["item 1", "item 2", "Failed(\"bad input\")"]
    );
}

/// With a result queue of 2, a fast emitter of 10,000 items is held back
/// (never more than the queue's capacity ahead of the poller), and a thread
/// that both puts (on a full bounded request queue) and polls does not
/// deadlock.
#[test]
fn a_bounded_result_queue_holds_a_fast_emitter_back_without_deadlock() {
    within("backpressure", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .result_capacity(2)
            .build()
            .unwrap();
        let emitted = counter();
        let handled = counter();
        let max_ahead = counter();
        let (e, h, m) = (
            Arc::clone(&emitted),
            Arc::clone(&handled),
            Arc::clone(&max_ahead),
        );
        let e2 = Arc::clone(&emitted);
        pool.put_request(
            WorkRequest::streaming(
                move |n: usize, out: &Emitter<'_, usize>| {
                    for i in 0..n {
                        e.fetch_add(1, Ordering::SeqCst);
                        out.emit(i)?;
                    }
                    Ok::<_, Closed>(())
                },
                10_000,
            )
            .on_result(move |_, i| {
                let done = h.fetch_add(1, Ordering::SeqCst) + 1;
                assert_eq!(i + 1, done, "in order");
                let ahead = e2.load(Ordering::SeqCst) - done;
                m.fetch_max(ahead, Ordering::SeqCst);
            }),
        )
        .unwrap();
        // Puts on the full request queue while the stream runs: each put
        // handles this handle's items while it waits for room.
        let plain = counter();
        for i in 0..20u32 {
            let plain = Arc::clone(&plain);
            pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                plain.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        pool.wait().unwrap();
        assert_eq!(pool.pending(), 0);
        assert_eq!(plain.load(Ordering::SeqCst), 20);
        assert_eq!(handled.load(Ordering::SeqCst), 10_000);
        // Two in the queue, one being handed over, one being emitted.
        assert!(
            max_ahead.load(Ordering::SeqCst) <= 4,
            "{} items ahead of the poller",
            max_ahead.load(Ordering::SeqCst)
        );
    });
}

/// Once the handle is gone, `emit` says `Closed`, so the callable can stop.
#[test]
fn emit_says_closed_once_the_handle_is_gone() {
    within("closed", || {
        let pool = ThreadPool::new(1);
        let keep = pool.new_handle();
        let (held, latch) = gate();
        let (result_tx, result_rx) = mpsc::channel();
        pool.put_request(WorkRequest::streaming(
            move |_: (), out: &Emitter<'_, u8>| {
                latch.hold();
                let mut closed_after = 0;
                while out.emit(1).is_ok() {
                    closed_after += 1;
                    if closed_after > 1_000_000 {
                        break;
                    }
                }
                result_tx.send(closed_after).unwrap();
                Ok::<_, Closed>(())
            },
            (),
        ))
        .unwrap();
        held.await_start();
        drop(pool);
        held.open();
        assert_eq!(
            result_rx.recv().unwrap(),
            0,
            "the first emit after the drop fails"
        );
        drop(keep);
    });
}

#[test]
fn items_stay_in_order_when_their_callback_panics_part_way() {
    common::hide_panics_starting_with(DELIBERATE);
    // A panicking callback leaves the rest of its run aside; what arrives
    // meanwhile must not overtake it. Many rounds: whether anything
    // arrives meanwhile is up to the threads.
    for round in 0..200 {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(1 + round % 4)
            .build()
            .unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (seen, ended) = (Arc::clone(&got), Arc::clone(&got));
        pool.put_request(
            WorkRequest::streaming(
                |n: u32, out: &Emitter<'_, u32>| {
                    for i in 0..n {
                        out.emit(i)?;
                    }
                    Err::<(), _>(Closed)
                },
                50,
            )
            .on_result(move |_, v| {
                seen.lock().unwrap().push(v);
                if v % 10 == 5 {
                    panic!("{DELIBERATE}: item {v}");
                }
            })
            // The end, marked as 1000, comes after every item.
            .on_error(move |_, _| ended.lock().unwrap().push(1000)),
        )
        .unwrap();
        let mut panics = 0;
        let pool = Arc::new(pool);
        loop {
            let waiter = Arc::clone(&pool);
            let waited = within("wait", move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waiter.wait()))
            });
            match waited {
                Ok(handled) => {
                    handled.unwrap();
                    break;
                }
                Err(_) => panics += 1,
            }
        }
        let expected: Vec<u32> = (0..50).chain([1000]).collect();
        assert_eq!(*got.lock().unwrap(), expected, "round {round}");
        assert_eq!(panics, 5, "round {round}");
        assert_eq!(pool.pending(), 0);
    }
}

/// Puts on `pool` a streaming request that emits item 0, waits until that
/// item's callback has begun, then emits `1..n` and ends (with an error if
/// `fails`): item 0 is taken off the queue alone, and the rest arrive
/// while its callback runs. Each item's callback records it in the list
/// returned (the error as `u32::MAX`), then calls `each` with it and the
/// pool.
fn emit_the_rest_during_the_first_callback(
    pool: &Arc<ThreadPool>,
    n: u32,
    fails: bool,
    each: impl Fn(u32, &ThreadPool) + Send + 'static,
) -> Arc<Mutex<Vec<u32>>> {
    let (go_tx, go) = mpsc::channel::<()>();
    let mut go_tx = Some(go_tx);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (items, errors, inner) = (Arc::clone(&seen), Arc::clone(&seen), Arc::clone(pool));
    pool.put_request(
        WorkRequest::streaming(
            move |_: (), out: &Emitter<'_, u32>| -> Result<(), String> {
                out.emit(0).map_err(|e| e.to_string())?;
                let _ = go.recv();
                for i in 1..n {
                    out.emit(i).map_err(|e| e.to_string())?;
                }
                if fails {
                    Err("half-way".into())
                } else {
                    Ok(())
                }
            },
            (),
        )
        .on_result(move |_, i| {
            items.lock().unwrap().push(i);
            // Dropping the sender lets the callable go on.
            drop(go_tx.take());
            each(i, &inner);
        })
        .on_error(move |_, _| errors.lock().unwrap().push(u32::MAX)),
    )
    .unwrap();
    seen
}

/// `wait` inside a streaming request's result callback does not wait on
/// itself: the stream's later items, and its error, are left to the
/// callback's own frame, which runs them in order once the callback
/// returns. The inner `wait` returns once nothing is pending.
#[test]
fn wait_inside_a_streaming_callback_returns_and_the_items_stay_in_order() {
    let pool = Arc::new(ThreadPool::new(1));
    let me = thread::current().id();
    let inner = Arc::new(Mutex::new(None));
    let waited = Arc::clone(&inner);
    let seen = emit_the_rest_during_the_first_callback(&pool, 5, true, move |i, pool| {
        assert_eq!(thread::current().id(), me);
        if i == 0 {
            *waited.lock().unwrap() = Some(pool.wait_timeout(common::HANG));
        }
    });
    common::within_here("wait in a streaming callback", || {
        assert_eq!(pool.wait_timeout(common::HANG), Ok(1));
    });
    // Items 1 to 4 and the end, handled by the inner wait.
    assert_eq!(*inner.lock().unwrap(), Some(Ok(5)));
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3, 4, u32::MAX]);
    assert_eq!(pool.pending(), 0);
}

/// Polls the handle from a callback until `n` more results were handled.
fn poll_for(pool: &ThreadPool, n: usize) {
    let mut handled = 0;
    while handled < n {
        handled += pool.poll_timeout(common::HANG).unwrap();
    }
}

/// `poll` inside a streaming request's result callback: it takes the
/// stream's next items off the queue and leaves them to the callback's own
/// frame, which runs them in order; nothing blocks, nothing is lost.
#[test]
fn poll_inside_a_streaming_callback_leaves_the_next_items_in_order() {
    let pool = Arc::new(ThreadPool::new(1));
    let seen = emit_the_rest_during_the_first_callback(&pool, 3, false, |i, pool| {
        if i == 0 {
            // Items 1 and 2, and the end.
            poll_for(pool, 3);
        }
    });
    common::within_here("poll in a streaming callback", || {
        assert_eq!(pool.wait_timeout(common::HANG), Ok(1));
    });
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2], "each once, in order");
    assert_eq!(pool.pending(), 0);
}

/// Items left to a callback's frame by a `poll` inside it, one of whose
/// callbacks panics: the rest of them still run, in order, then the panic
/// passes out of the outer call. Nothing is lost.
#[test]
fn a_panic_among_items_left_to_the_outer_callback_runs_the_rest_first() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = Arc::new(ThreadPool::new(1));
    let seen = emit_the_rest_during_the_first_callback(&pool, 4, false, |i, pool| match i {
        0 => poll_for(pool, 4),
        1 => panic!("{DELIBERATE}"),
        _ => {}
    });
    let waited = common::within_here("wait", || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.wait_timeout(common::HANG)
        }))
    });
    assert!(
        waited.is_err(),
        "item 1's panic passed out of the outer wait"
    );
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3], "each once, in order");
    assert_eq!(pool.pending(), 0);
}

/// Two threads polling one handle: each item of a stream may be handled
/// by either, but the callbacks still see every item once, in order, and
/// the error after the last. Over many rounds, so that the two threads
/// take the stream's messages in every interleaving.
#[test]
fn two_pollers_see_a_streams_items_in_order() {
    within("two pollers", || {
        for round in 0..50 {
            let pool = Arc::new(ThreadPool::new(1));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (items, errors) = (Arc::clone(&seen), Arc::clone(&seen));
            pool.put_request(
                WorkRequest::streaming(
                    |n: i64, out: &Emitter<'_, i64>| -> Result<(), String> {
                        for i in 0..n {
                            out.emit(i).map_err(|e| e.to_string())?;
                        }
                        Err("end".into())
                    },
                    2_000,
                )
                .on_result(move |_, i| items.lock().unwrap().push(i))
                .on_error(move |_, _| errors.lock().unwrap().push(-1)),
            )
            .unwrap();
            let other = Arc::clone(&pool);
            let helper = thread::spawn(move || while other.poll().is_ok() {});
            while pool.poll().is_ok() {}
            helper.join().unwrap();
            let mut want: Vec<i64> = (0..2_000).collect();
            want.push(-1);
            let got = seen.lock().unwrap();
            assert!(
                *got == want,
                "round {round}: {} of {} callbacks, the first out of place at {:?}",
                got.len(),
                want.len(),
                got.iter().zip(&want).position(|(got, want)| got != want)
            );
        }
    });
}

/// A poller's item callback panics after another thread handled the
/// stream's end: the rest of the poller's run (an item) waits for the next
/// call, with nothing pending. A `poll` then handles it. (It answered
/// `NoResultsPending` and left the item unhandled.)
#[test]
fn poll_handles_a_streams_items_left_after_its_end_by_a_panic() {
    common::hide_panics_starting_with(DELIBERATE);
    let (polled, seen) = within("items left after the end", || {
        let pool = ThreadPool::new(1);
        let (two_sent_tx, two_sent) = mpsc::channel::<()>();
        let (go_tx, go) = mpsc::channel::<()>();
        let (inside_tx, inside) = mpsc::channel::<()>();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let (go_tx, ended) = (Mutex::new(Some(go_tx)), Mutex::new(ended));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        pool.put_request(
            WorkRequest::streaming(
                move |_: (), out: &Emitter<'_, u32>| {
                    out.emit(0)?;
                    out.emit(1)?;
                    two_sent_tx.send(()).unwrap();
                    go.recv().unwrap();
                    Ok::<_, Closed>(())
                },
                (),
            )
            .on_result(move |_, k| {
                s.lock().unwrap().push(k);
                if k == 0 {
                    // The poller, holding item 1: the stream may end, and
                    // another thread handles its end; then this panics.
                    go_tx.lock().unwrap().take().unwrap().send(()).unwrap();
                    inside_tx.send(()).unwrap();
                    ended.lock().unwrap().recv().unwrap();
                    panic!("{DELIBERATE}");
                }
            }),
        )
        .unwrap();
        two_sent.recv().unwrap();
        let poller = {
            let pool = pool.clone();
            thread::spawn(move || {
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    pool.poll_timeout(common::HANG)
                }));
                assert!(polled.is_err(), "item 0's callback panics");
            })
        };
        inside.recv().unwrap();
        // The stream's end: nothing is pending after it.
        pool.wait().unwrap();
        ended_tx.send(()).unwrap();
        poller.join().unwrap();
        let polled = pool.poll();
        let seen = seen.lock().unwrap().clone();
        (polled, seen)
    });
    assert_eq!(polled, Ok(1), "item 1, left by the panic");
    assert_eq!(seen, [0, 1]);
}

/// A streaming callable adds work through its emitter's context while it
/// emits: a child put between two items, and a join whose halves sum. The items arrive in order, the child's callback
/// runs once, and `wait` covers the child: it handles the three items,
/// the stream's end and the child.
#[test]
fn a_streaming_callable_puts_and_joins_through_its_context() {
    within("stream and put", || {
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let items = Arc::new(Mutex::new(Vec::new()));
        let child_results = counter();
        let (s, c) = (Arc::clone(&items), Arc::clone(&child_results));
        pool.put_request(
            WorkRequest::streaming(
                move |n: u64, out: &Emitter<'_, u64>| {
                    out.emit(0)?;
                    let c = Arc::clone(&c);
                    out.context()
                        .put(WorkRequest::new(|x: u64| x + 1, n).on_result(move |_, x| {
                            assert_eq!(x, n + 1);
                            c.fetch_add(1, Ordering::SeqCst);
                        }))
                        .expect("the pool is open");
                    let (a, b) = out
                        .context()
                        .join(|_| (0..n).sum::<u64>(), |_| (n..2 * n).sum::<u64>());
                    out.emit(a + b)?;
                    out.emit(2)?;
                    Ok::<_, Closed>(())
                },
                1_000,
            )
            .on_result(move |_, i| {
                assert_eq!(thread::current().id(), me);
                s.lock().unwrap().push(i);
            }),
        )
        .unwrap();
        assert_eq!(pool.wait_timeout(common::HANG), Ok(5));
        assert_eq!(*items.lock().unwrap(), [0, 1_999_000, 2]);
        assert_eq!(child_results.load(Ordering::SeqCst), 1);
    });
}

/// A streaming request whose deadline passed before a worker took it never
/// runs: no item, and its error callback hears `Expired` once, under the
/// id the user chose. One taken in time streams every item. A second
/// pending stream with the same chosen id is refused.
#[test]
fn a_streams_deadline_and_chosen_id_work_as_a_requests_do() {
    use std::time::{Duration, Instant};
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    gate.await_start();
    let ran = counter();
    let events = Arc::new(Mutex::new(Vec::new()));
    let stream = |deadline: Instant, id: u64| {
        let (ran, items, errors) = (Arc::clone(&ran), Arc::clone(&events), Arc::clone(&events));
        WorkRequest::streaming(
            move |n: u32, out: &Emitter<'_, u32>| {
                ran.fetch_add(1, Ordering::SeqCst);
                (0..n).try_for_each(|i| out.emit(i))
            },
            3,
        )
        .deadline(deadline)
        .with_id(id)
        .on_result(move |rid, i| items.lock().unwrap().push((rid.value(), Ok(i))))
        .on_error(move |rid, e| errors.lock().unwrap().push((rid.value(), Err(e))))
    };
    // Expired while the worker is held.
    pool.put_request(stream(Instant::now(), 7)).unwrap();
    let in_time = Instant::now() + Duration::from_secs(3600);
    pool.put_request(stream(in_time, 8)).unwrap();
    match pool.put_request(stream(in_time, 8)) {
        Err(callpool::PutError::DuplicateId(_)) => {}
        other => panic!("a second pending id 8 was not refused: {other:?}"),
    }
    gate.open();
    // The gated request, the expired stream's end, and the other's three
    // items and its end.
    assert_eq!(within("wait", move || pool.wait()), Ok(6));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "only the stream in time ran");
    assert_eq!(
        *events.lock().unwrap(),
        [
            (7, Err(TaskError::Expired)),
            (8, Ok(0)),
            (8, Ok(1)),
            (8, Ok(2))
        ]
    );
}

/// `on_done` runs once, on the polling thread, after every item of a
/// stream that succeeded; a stream that fails, or is cancelled before it
/// starts, calls its error callback instead and never `on_done`.
#[test]
fn on_done_follows_the_last_item_of_a_stream_that_succeeded_and_only_that() {
    let pool = ThreadPool::new(1);
    let here = thread::current().id();
    let events = Arc::new(Mutex::new(Vec::new()));
    let stream = |n: u32, fail: bool| {
        let (items, errors, done) = (
            Arc::clone(&events),
            Arc::clone(&events),
            Arc::clone(&events),
        );
        WorkRequest::streaming(
            move |n: u32, out: &Emitter<'_, u32>| {
                (0..n).try_for_each(|i| out.emit(i)).map_err(|_| "closed")?;
                if fail {
                    Err("failed")
                } else {
                    Ok(())
                }
            },
            n,
        )
        .on_result(move |id, i| {
            items
                .lock()
                .unwrap()
                .push(format!("{} item {i}", id.value()))
        })
        .on_error(move |id, e| {
            errors
                .lock()
                .unwrap()
                .push(format!("{} error {e}", id.value()))
        })
        .on_done(move |id| {
            assert_eq!(thread::current().id(), here);
            done.lock().unwrap().push(format!("{} done", id.value()));
        })
    };
    pool.put_request(stream(3, false).with_id(1)).unwrap();
    pool.put_request(stream(2, true).with_id(2)).unwrap();
    // Waits here, on this thread (the callbacks' thread).
    assert_eq!(pool.wait_timeout(common::HANG), Ok(7));
    // Cancelled before it starts: the worker is held.
    let (gate, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    gate.await_start();
    let id = pool.put_request(stream(2, false).with_id(3)).unwrap();
    assert!(pool.cancel(id));
    gate.open();
    assert_eq!(pool.wait_timeout(common::HANG), Ok(2));
    assert_eq!(
        *events.lock().unwrap(),
        [
            "1 item 0",
            "1 item 1",
            "1 item 2",
            "1 done",
            "2 item 0",
            "2 item 1",
            "2 error request failed: failed",
            "3 error request cancelled before it started"
        ]
    );
}
