//! The streaming forms of a collector's put beside `put_streaming`:
//! `try_put_streaming` and `put_streaming_timeout` (and their fallible
//! forms) hand a refused stream's callable and argument back, uncalled, to
//! put again, whose items then all arrive; `put_streaming_then` (and its
//! fallible form, and the scope's) hands each item, then the ending error
//! once, to a callback on the collector's thread instead of `outcomes`,
//! and drops the callback once the stream has ended; a collector dropped
//! mid-stream drops the callback, never to call it again; what such a
//! stream adds comes out of `outcomes` as usual.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use callpool::{Closed, CollectorEmitter, TaskError, ThreadPool};
use common::{by_request, counter, gate, held_worker, within, Dropped, HANG};

const DELIBERATE: &str = "collector stream forms: deliberate panic";

/// A short wait that a put on a queue held full by a gate always uses up:
/// it only bounds the test, never decides it.
const SHORT: Duration = Duration::from_millis(20);

/// A stream's argument: its label, how many items it emits, and the count
/// of its callable's calls (a refused one must not be called).
type Job = (u32, u32, Arc<AtomicUsize>);

/// Emits `(label, 0)`, ..., `(label, n - 1)`.
fn numbered((label, n, calls): Job, out: &CollectorEmitter<'_, (u32, u32)>) -> Result<(), Closed> {
    calls.fetch_add(1, Ordering::SeqCst);
    (0..n).try_for_each(|i| out.emit((label, i)))
}

/// [`numbered`] on a fallible collector, ending with `Err(label)`.
fn numbered_then_fail(
    (label, n, calls): Job,
    out: &CollectorEmitter<'_, (u32, u32), u32>,
) -> Result<(), u32> {
    calls.fetch_add(1, Ordering::SeqCst);
    for i in 0..n {
        if out.emit((label, i)).is_err() {
            return Ok(());
        }
    }
    Err(label)
}

fn items(label: u32, n: u32) -> Vec<(u32, u32)> {
    (0..n).map(|i| (label, i)).collect()
}

/// A full queue (its one worker held by a gate, its one slot taken)
/// refuses `try_put_streaming` and `try_put_fallible_streaming` at once,
/// handing back the callable and the argument uncalled; nothing refused is
/// pending, nor sends anything. Put again once the gate opens, each
/// stream's items all arrive, in order, once.
#[test]
fn a_full_queue_hands_a_streams_callable_and_arg_back_to_put_again() {
    within("try_put_streaming", || {
        let (pool, held) = held_worker(1);
        let calls = counter();
        let mut collector = pool.collector::<(u32, u32)>();
        let first = collector
            .try_put_streaming(numbered, (1, 3, Arc::clone(&calls)))
            .unwrap();
        let refused = collector
            .try_put_streaming(numbered, (2, 4, Arc::clone(&calls)))
            .unwrap_err();
        assert!(refused.is_full(), "{refused}");
        assert_eq!(collector.pending(), 1);
        let (callable, (label, n, theirs)) = refused.into_parts();
        assert_eq!((label, n), (2, 4));

        let mut fallible = pool.fallible_collector::<(u32, u32), u32>();
        let refused_fallible = fallible
            .try_put_fallible_streaming(numbered_then_fail, (3, 2, Arc::clone(&calls)))
            .unwrap_err();
        assert!(refused_fallible.is_full(), "{refused_fallible}");
        assert_eq!(fallible.pending(), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing has run yet");

        held.open();
        // The queue empties as the worker goes on; a blocking put waits
        // for the room.
        let again = collector
            .put_streaming_timeout(callable, (label, n, theirs), HANG)
            .unwrap();
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), 2, "{grouped:?}");
        assert_eq!(
            grouped[&first],
            items(1, 3).into_iter().map(Ok).collect::<Vec<_>>()
        );
        assert_eq!(
            grouped[&again],
            items(2, 4).into_iter().map(Ok).collect::<Vec<_>>()
        );

        let (callable, arg) = refused_fallible.into_parts();
        let id = fallible.put_fallible_streaming(callable, arg).unwrap();
        let all: Vec<_> = fallible.outcomes().collect();
        assert_eq!(
            all,
            [
                (id, Ok((3, 0))),
                (id, Ok((3, 1))),
                (id, Err(TaskError::Failed(3)))
            ]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3, "each stream called once");
        assert_eq!(
            (collector.next_outcome(), fallible.next_outcome()),
            (None, None)
        );
    });
}

/// A shut-down pool refuses `try_put_streaming` too, and hands the parts
/// back: nothing is called, nothing pending, nothing comes out.
#[test]
fn a_shut_down_pool_hands_a_streams_parts_back() {
    within("try_put_streaming after close", || {
        let pool = ThreadPool::new(1);
        let calls = counter();
        let mut collector = pool.collector::<(u32, u32)>();
        pool.close().unwrap();
        let refused = collector
            .try_put_streaming(numbered, (1, 2, Arc::clone(&calls)))
            .unwrap_err();
        assert!(refused.is_shut_down(), "{refused}");
        let refused = collector
            .put_streaming_timeout(numbered, (1, 2, Arc::clone(&calls)), SHORT)
            .unwrap_err();
        assert!(refused.is_shut_down(), "{refused}");
        assert_eq!(collector.pending(), 0);
        assert_eq!(collector.next_outcome(), None);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    });
}

/// With the queue held full by a gate, `put_streaming_timeout` and
/// `put_fallible_streaming_timeout` refuse once their wait is over (the
/// refusal is certain: nothing frees the queue meanwhile), handing the
/// parts back uncalled; put again after the gate opens, every item
/// arrives, once, in order.
#[test]
fn a_timeout_put_refuses_while_the_queue_stays_full() {
    within("put_streaming_timeout", || {
        let (pool, held) = held_worker(1);
        let calls = counter();
        let mut collector = pool.fallible_collector::<(u32, u32), u32>();
        let first = collector
            .put_fallible_streaming_timeout(numbered_then_fail, (1, 2, Arc::clone(&calls)), HANG)
            .unwrap();
        let refused = collector
            .put_fallible_streaming_timeout(numbered_then_fail, (2, 3, Arc::clone(&calls)), SHORT)
            .unwrap_err();
        assert!(refused.is_timed_out(), "{refused}");
        assert_eq!(collector.pending(), 1);

        let mut plain = pool.collector::<(u32, u32)>();
        let refused_plain = plain
            .put_streaming_timeout(numbered, (3, 5, Arc::clone(&calls)), SHORT)
            .unwrap_err();
        assert!(refused_plain.is_timed_out(), "{refused_plain}");
        assert_eq!(plain.pending(), 0);
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        held.open();
        let (callable, arg) = refused.into_parts();
        let again = collector
            .put_fallible_streaming_timeout(callable, arg, HANG)
            .unwrap();
        let grouped = by_request(collector.outcomes());
        assert_eq!(
            grouped[&first],
            [Ok((1, 0)), Ok((1, 1)), Err(TaskError::Failed(1))]
        );
        assert_eq!(
            grouped[&again],
            [
                Ok((2, 0)),
                Ok((2, 1)),
                Ok((2, 2)),
                Err(TaskError::Failed(2))
            ]
        );
        assert_eq!(grouped.len(), 2);

        let (callable, arg) = refused_plain.into_parts();
        let id = plain.put_streaming_timeout(callable, arg, HANG).unwrap();
        let all: Vec<_> = plain.outcomes().collect();
        let expected: Vec<_> = items(3, 5).into_iter().map(|i| (id, Ok(i))).collect();
        assert_eq!(all, expected);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    });
}

/// `put_streaming_then`: every item goes to the callback, on the
/// collector's thread, in the order emitted, exactly once, and none comes
/// out of `outcomes`, which still hands on the plain requests' (a plain
/// stream's items included) and ends only once the then-stream has ended.
/// Each item counts as one handled. The callback is dropped once the
/// stream has ended, before the collector is.
#[test]
fn a_then_streams_items_go_to_its_callback_in_order_on_this_thread() {
    within("put_streaming_then", || {
        const N: u32 = 500;
        let pool = ThreadPool::new(2);
        let here = thread::current().id();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let callback_drops = counter();
        let calls = counter();
        let mut collector = pool.collector::<(u32, u32)>();
        let record = Rc::clone(&seen);
        let kept = Dropped(Arc::clone(&callback_drops));
        let streamed = collector
            .put_streaming_then(numbered, (1, N, Arc::clone(&calls)), move |item| {
                let _ = &kept;
                assert_eq!(thread::current().id(), here);
                record.borrow_mut().push(item);
            })
            .unwrap();
        let plain = collector.put(|label: u32| (label, 0), 2).unwrap();
        let plain_stream = collector
            .put_streaming(numbered, (3, 4, Arc::clone(&calls)))
            .unwrap();
        let grouped = by_request(collector.outcomes());
        assert!(!grouped.contains_key(&streamed), "{grouped:?}");
        assert_eq!(grouped[&plain], [Ok((2, 0))]);
        assert_eq!(
            grouped[&plain_stream],
            items(3, 4).into_iter().map(Ok).collect::<Vec<_>>()
        );
        assert_eq!(
            *seen.borrow(),
            items(1, N).into_iter().map(Ok).collect::<Vec<_>>()
        );
        assert_eq!(collector.pending(), 0);
        assert_eq!(
            callback_drops.load(Ordering::SeqCst),
            1,
            "the callback goes once its stream has ended"
        );

        // Counted: one per item, through `wait_with`.
        let record = Rc::clone(&seen);
        collector
            .put_streaming_then(numbered, (4, 7, Arc::clone(&calls)), move |item| {
                record.borrow_mut().push(item)
            })
            .unwrap();
        assert_eq!(collector.wait_with(|_, o| panic!("not ours: {o:?}")), 7);
        assert_eq!(seen.borrow().len() as u32, N + 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    });
}

/// The callback of a then-stream that fails or panics part-way gets its
/// items, then the error, once, last; a `&mut` local works as well as an
/// `Rc`.
#[test]
fn a_then_streams_ending_error_comes_once_after_its_items() {
    common::hide_panics_starting_with(DELIBERATE);
    within("then-stream errors", || {
        let pool = ThreadPool::new(2);
        let calls = counter();
        let mut failed = Vec::new();
        let mut panicked = Vec::new();
        {
            let mut collector = pool.fallible_collector::<(u32, u32), u32>();
            collector
                .put_fallible_streaming_then(
                    numbered_then_fail,
                    (1, 3, Arc::clone(&calls)),
                    |outcome| failed.push(outcome),
                )
                .unwrap();
            collector
                .put_fallible_streaming_then(
                    |n: u32, out: &CollectorEmitter<'_, (u32, u32), u32>| -> Result<(), u32> {
                        for i in 0..n {
                            out.emit((2, i)).map_err(|_| 0u32)?;
                        }
                        panic!("{DELIBERATE} after {n}");
                    },
                    2,
                    |outcome| panicked.push(outcome),
                )
                .unwrap();
            assert_eq!(collector.wait_with(|_, o| panic!("not ours: {o:?}")), 4 + 3);
        }
        assert_eq!(
            failed,
            [
                Ok((1, 0)),
                Ok((1, 1)),
                Ok((1, 2)),
                Err(TaskError::Failed(1))
            ]
        );
        assert_eq!(
            panicked,
            [
                Ok((2, 0)),
                Ok((2, 1)),
                Err(TaskError::Panicked(format!("{DELIBERATE} after 2")))
            ]
        );

        // The infallible form too.
        let mut infallible = Vec::new();
        {
            let mut collector = pool.collector::<u32>();
            collector
                .put_streaming_then(
                    |_: (), out: &CollectorEmitter<'_, u32>| {
                        out.emit(7)?;
                        panic!("{DELIBERATE} after one");
                    },
                    (),
                    |outcome| infallible.push(outcome),
                )
                .unwrap();
            assert_eq!(collector.outcomes().count(), 0);
        }
        assert_eq!(
            infallible,
            [
                Ok(7),
                Err(TaskError::Panicked(format!("{DELIBERATE} after one")))
            ]
        );
    });
}

/// A panic in the callback passes through the loop that ran it, and the
/// callback stays: the stream's next items still go to it, none lost,
/// none twice, none out of `outcomes`.
#[test]
fn a_panicking_callback_stays_for_the_next_items() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking callback", || {
        let pool = ThreadPool::new(1);
        let calls = counter();
        let seen = RefCell::new(Vec::new());
        let mut collector = pool.collector::<(u32, u32)>();
        collector
            .put_streaming_then(numbered, (1, 5, Arc::clone(&calls)), |item| {
                let item = item.unwrap();
                seen.borrow_mut().push(item);
                if item.1 == 1 {
                    panic!("{DELIBERATE} at item 1");
                }
            })
            .unwrap();
        let first = panic::catch_unwind(AssertUnwindSafe(|| {
            collector.wait_with(|_, o| panic!("not ours: {o:?}"))
        }));
        assert!(first.is_err(), "the callback's panic passes through");
        let rest = collector.wait_with(|_, o| panic!("not ours: {o:?}"));
        assert_eq!(rest, 3);
        drop(collector);
        assert_eq!(seen.into_inner(), items(1, 5));
    });
}

/// A collector dropped while a then-stream runs: the callback, called for
/// the first item, is dropped with the collector (nothing it holds is
/// leaked) and never called again; the stream's later `emit` says
/// `Closed`, and what it would have emitted is dropped.
#[test]
fn a_collector_dropped_mid_then_stream_drops_the_callback() {
    within("dropped mid then-stream", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let (said, heard) = mpsc::channel();
        let item_drops = counter();
        let callback_drops = counter();
        let called = Rc::new(Cell::new(0));
        let mut collector = pool.collector::<Dropped>();
        let theirs = Arc::clone(&item_drops);
        let kept = Dropped(Arc::clone(&callback_drops));
        let count = Rc::clone(&called);
        collector
            .put_streaming_then(
                move |_: (), out: &CollectorEmitter<'_, Dropped>| {
                    out.emit(Dropped(Arc::clone(&theirs)))?;
                    latch.hold();
                    let after = out.emit(Dropped(Arc::clone(&theirs)));
                    said.send(after).unwrap();
                    after
                },
                (),
                move |item| {
                    let _ = &kept;
                    drop(item.unwrap());
                    count.set(count.get() + 1);
                },
            )
            .unwrap();
        held.await_start();
        let deadline = std::time::Instant::now() + HANG;
        while called.get() == 0 {
            assert!(std::time::Instant::now() < deadline, "the item never came");
            assert_eq!(collector.poll_with(|_, _| panic!("not ours")), called.get());
            thread::yield_now();
        }
        assert_eq!(item_drops.load(Ordering::SeqCst), 1);
        assert_eq!(callback_drops.load(Ordering::SeqCst), 0);
        drop(collector);
        assert_eq!(
            callback_drops.load(Ordering::SeqCst),
            1,
            "dropped with the collector"
        );
        held.open();
        assert_eq!(heard.recv_timeout(HANG).unwrap(), Err(Closed));
        pool.shutdown().unwrap();
        assert_eq!(called.get(), 1, "never called after the drop");
        assert_eq!(
            item_drops.load(Ordering::SeqCst),
            2,
            "the refused item was dropped"
        );
        assert_eq!(callback_drops.load(Ordering::SeqCst), 1);
    });
}

/// What a then-stream adds (a plain request and a plain stream) has no
/// callback: it comes out of `outcomes`, exactly, while the then-stream's
/// own items go to its callback.
#[test]
fn what_a_then_stream_adds_comes_out_of_outcomes() {
    within("then-stream children", || {
        let pool = ThreadPool::new(2);
        let calls = counter();
        let theirs = Arc::clone(&calls);
        let mut own = Vec::new();
        let mut collector = pool.collector::<(u32, u32)>();
        let parent = collector
            .put_streaming_then(
                move |n: u32, out: &CollectorEmitter<'_, (u32, u32)>| {
                    for i in 0..n {
                        out.add(|i: u32| (10, i), i).expect("the pool is open");
                    }
                    out.add_streaming(numbered, (20, 2, Arc::clone(&theirs)))
                        .expect("the pool is open");
                    out.emit((1, 0))?;
                    out.emit((1, 1))
                },
                3,
                |item| own.push(item),
            )
            .unwrap();
        let mut children: Vec<_> = collector.outcomes().collect();
        assert!(children.iter().all(|(id, _)| *id != parent), "{children:?}");
        children.sort_by_key(|(_, outcome)| *outcome.as_ref().unwrap());
        let values: Vec<_> = children.into_iter().map(|(_, o)| o.unwrap()).collect();
        assert_eq!(values, [(10, 0), (10, 1), (10, 2), (20, 0), (20, 1)]);
        assert_eq!(collector.pending(), 0);
        drop(collector);
        assert_eq!(own, [Ok((1, 0)), Ok((1, 1))]);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}

/// A scope's then-streams: the callbacks borrow locals mutably, the
/// callables borrow the caller's data, and the scope runs the callbacks
/// for every item (and the error) before it returns, though the body took
/// nothing.
#[test]
fn a_scopes_then_streams_are_handled_before_it_returns() {
    common::hide_panics_starting_with(DELIBERATE);
    within("scope then-streams", || {
        let pool = ThreadPool::new(2);
        let words: Vec<String> = (0..50).map(|i| format!("w{i}")).collect();
        let mut lengths = Vec::new();
        let mut failed = Vec::new();
        pool.fallible_scope(|s| {
            s.put_streaming_then(
                |words: &[String], out: &CollectorEmitter<'_, usize, String>| {
                    words.iter().try_for_each(|w| out.emit(w.len()))
                },
                &words[..],
                |n| lengths.push(n),
            )
            .unwrap();
            s.put_fallible_streaming_then(
                |words: &[String], out: &CollectorEmitter<'_, usize, String>| {
                    out.emit(words.len()).map_err(|e| e.to_string())?;
                    Err(words[0].clone())
                },
                &words[..],
                |n| failed.push(n),
            )
            .unwrap();
        });
        let expected: Vec<_> = words.iter().map(|w| Ok(w.len())).collect();
        assert_eq!(lengths, expected);
        assert_eq!(failed, [Ok(50), Err(TaskError::Failed("w0".to_string()))]);
    });
}
