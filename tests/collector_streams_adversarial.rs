//! Adversarial trial of streams into collectors and scopes
//! (`Collector::put_streaming`, `CollectorContext::add_streaming`,
//! `Scope::put_streaming`, `CollectorEmitter`): items whose `Drop`
//! panics, dropped unread at every place an item can be let go of; a
//! stream that emits while its collector is being dropped and after; emits
//! from a `join` half; deep trees read with every reader mixed; a million
//! items read slowly; callbacks of plain requests beside streams; scopes
//! that panic or lend `&mut` slices; shutdowns, closes and dismissals
//! while streams run or wait; the global pool; `pending()` and `stats()`
//! exactness. Each request must end exactly once, each item be delivered
//! or dropped exactly once, and nothing may hang.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;

use callpool::{Closed, Collector, CollectorEmitter, PutError, RequestId, TaskError, ThreadPool};
use common::{by_request, counter, gate, within};

const DELIBERATE: &str = "collector streams adversarial: deliberate panic";

/// An item whose `Drop` counts, then panics when `panics` is set.
struct Bomb {
    n: u32,
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics && !std::thread::panicking() {
            panic!("{DELIBERATE}: a dropped item {}", self.n);
        }
    }
}

fn bomb(n: u32, drops: &Arc<AtomicUsize>) -> Bomb {
    Bomb {
        n,
        drops: Arc::clone(drops),
        panics: true,
    }
}

/// Items whose `Drop` panics, emitted and never read, dropped with the
/// collector's channel when the collector is dropped (the stream still
/// running holds the channel's last sender), and items emitted once the
/// collector is gone (`emit` says `Closed`): each is dropped exactly once,
/// no panic escapes the worker or the dropping thread, and the stream ends
/// as it returned (counted as completed once).
#[test]
fn panicking_items_unread_when_the_collector_goes_are_dropped_once() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking items, collector dropped", || {
        let pool = ThreadPool::new(1);
        let drops = counter();
        let (held, latch) = gate();
        let (tx, rx) = mpsc::channel();
        let mut items = pool.collector::<Bomb>();
        let theirs = Arc::clone(&drops);
        items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, Bomb>| {
                    for n in 0..5 {
                        out.emit(bomb(n, &theirs)).expect("the collector is alive");
                    }
                    latch.hold();
                    // The collector is gone now: each emit says so, its item
                    // dropped there.
                    let after: Vec<_> = (5..8).map(|n| out.emit(bomb(n, &theirs))).collect();
                    tx.send(after).unwrap();
                    Ok(())
                },
                (),
            )
            .unwrap();
        held.await_start();
        assert_eq!(items.pending(), 1);
        drop(items);
        // Nothing was dropped yet: the running stream holds the channel.
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        held.open();
        assert_eq!(rx.recv().unwrap(), vec![Err(Closed); 3]);
        pool.wait().unwrap();
        pool.close().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 8, "each item dropped once");
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.panicked), (1, 0));
    });
}

/// Items whose `Drop` panics, taken by a scope's drain (nobody read them)
/// while the body panicked: the body's panic is the one that goes on, and
/// each item is dropped exactly once.
#[test]
fn a_panicking_scope_drops_each_unread_item_once() {
    common::hide_panics_starting_with(DELIBERATE);
    within("scope body panics, items panic on drop", || {
        let pool = ThreadPool::new(2);
        let drops = counter();
        let emitted = counter();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                for chunk in 0..4u32 {
                    s.put_streaming(
                        |(chunk, drops, emitted): (u32, &Arc<AtomicUsize>, &AtomicUsize),
                         out: &CollectorEmitter<'_, Bomb>| {
                            for n in 0..50 {
                                let mut item = bomb(chunk * 100 + n, drops);
                                item.panics = false; // only the first chunk's panic
                                item.panics = chunk == 0 && n == 0;
                                out.emit(item)?;
                                emitted.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(())
                        },
                        (chunk, &drops, &*emitted),
                    )
                    .unwrap();
                }
                panic!("{DELIBERATE} in the body");
            })
        }));
        let payload = caught.expect_err("the scope panics");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            message.contains("in the body"),
            "the body's panic goes on: {message}"
        );
        assert_eq!(emitted.load(Ordering::SeqCst), 200);
        assert_eq!(drops.load(Ordering::SeqCst), 200, "each item dropped once");
    });
}

/// A stream emits, then panics, and what it captured panics as it is
/// dropped during the unwind (no abort: a capture's `Drop` is not run
/// while panicking here, the `Bomb` skips it), and a second stream returns
/// `Ok` and then its capture's `Drop` panics: the items come first, then
/// one `Panicked` for each; the stats count each stream once.
#[test]
fn a_stream_panicking_after_emitting_and_in_its_captures_drop_ends_once() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panics after emitting", || {
        let pool = ThreadPool::new(2);
        let drops = counter();
        let mut items = pool.collector::<u32>();
        let capture = bomb(100, &drops);
        let first = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    let _held = &capture;
                    out.emit(1)?;
                    out.emit(2)?;
                    panic!("{DELIBERATE} after two items");
                },
                (),
            )
            .unwrap();
        let capture = bomb(200, &drops);
        let second = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    let _held = &capture;
                    out.emit(3)?;
                    Ok(()) // `capture` is dropped as the call returns: it panics
                },
                (),
            )
            .unwrap();
        let mut got: HashMap<RequestId, Vec<Result<u32, String>>> = HashMap::new();
        for (id, outcome) in items.outcomes() {
            got.entry(id)
                .or_default()
                .push(outcome.map_err(|e| match e {
                    TaskError::Panicked(_) => "panicked".to_string(),
                    other => other.to_string(),
                }));
        }
        assert_eq!(got[&first], [Ok(1), Ok(2), Err("panicked".to_string())]);
        assert_eq!(got[&second], [Ok(3), Err("panicked".to_string())]);
        assert_eq!(items.pending(), 0);
        drop(items);
        pool.close().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.failed, stats.panicked), (0, 0, 2));
    });
}

/// `Err(Closed)` from the callable while the collector is alive (passed
/// on from elsewhere) ends an infallible stream as `Ok` does: nothing
/// handed on after its items, counted out, counted as completed once
/// however many items it emitted.
#[test]
fn closed_returned_while_the_collector_is_alive_ends_like_ok() {
    within("Closed while alive", || {
        let pool = ThreadPool::new(2);
        let mut items = pool.collector::<u32>();
        let id = items
            .put_streaming(
                |_: (), out: &CollectorEmitter<'_, u32>| {
                    for n in 0..100 {
                        out.emit(n)?;
                    }
                    Err(Closed)
                },
                (),
            )
            .unwrap();
        let all: Vec<_> = items.outcomes().collect();
        let expected: Vec<_> = (0..100).map(|n| (id, Ok(n))).collect();
        assert_eq!(all, expected);
        assert_eq!(items.pending(), 0);
        assert_eq!(items.next_outcome(), None);
        drop(items);
        pool.close().unwrap();
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.failed, stats.panicked), (1, 0, 0));
    });
}

/// A million items from two streams, and plain requests beside them, read
/// by a thread that stops to put more every so often: nothing lost,
/// nothing reordered within a request, every plain outcome once.
#[test]
fn a_million_items_read_slowly_lose_nothing_and_keep_their_order() {
    const EACH: u32 = 500_000;
    let progress = counter();
    let seen = Arc::clone(&progress);
    common::within_progress(
        "a million items",
        move || progress.load(Ordering::SeqCst),
        move || {
            let pool = ThreadPool::new(2);
            let mut items = pool.collector::<u32>();
            let mut streams = HashMap::new();
            for which in 0..2u32 {
                let id = items
                    .put_streaming(
                        move |_: (), out: &CollectorEmitter<'_, u32>| {
                            (0..EACH).try_for_each(|n| out.emit(which * EACH + n))
                        },
                        (),
                    )
                    .unwrap();
                streams.insert(id, which * EACH);
            }
            let mut plain = HashMap::new();
            let mut read = 0usize;
            while let Some((id, outcome)) = items.next_outcome() {
                let n = outcome.unwrap();
                seen.fetch_add(1, Ordering::Relaxed);
                if let Some(next) = streams.get_mut(&id) {
                    assert_eq!(n, *next, "request {id}'s items in order");
                    *next += 1;
                } else {
                    assert!(
                        plain.insert(id, n).is_none(),
                        "one outcome per plain request"
                    );
                }
                read += 1;
                if read % 50_000 == 0 {
                    // Slow: put a plain request, and let the streams run ahead.
                    let at = items.put(|n: u32| n, u32::MAX - read as u32).unwrap();
                    plain.insert(at, 0);
                    plain.remove(&at);
                    std::thread::yield_now();
                }
            }
            for (which, next) in streams.values().enumerate() {
                let _ = which;
                assert_eq!(next % EACH, 0, "a stream emitted all its items");
            }
            let mut ends: Vec<_> = streams.values().copied().collect();
            ends.sort_unstable();
            assert_eq!(ends, [EACH, 2 * EACH]);
            assert_eq!(plain.len(), 20, "every plain request's outcome once");
            assert_eq!(items.pending(), 0);
        },
    );
}

/// Streams beside plain requests with callbacks on the same collector:
/// each callback runs exactly once with its request's outcome; no item
/// ever reaches a callback; `wait_with`'s count is items plus outcomes.
#[test]
fn put_then_callbacks_run_once_and_items_never_reach_them() {
    within("put_then beside streams", || {
        let pool = ThreadPool::new(3);
        let called: Vec<Cell<u32>> = (0..20).map(|_| Cell::new(0)).collect();
        let called = &called;
        let mut items = pool.collector::<u32>();
        let mut streams = HashMap::new();
        for i in 0..20u32 {
            items
                .put_then(
                    |i: u32| 1_000_000 + i,
                    i,
                    move |outcome| {
                        assert_eq!(outcome, Ok(1_000_000 + i));
                        called[i as usize].set(called[i as usize].get() + 1);
                    },
                )
                .unwrap();
            let id = items
                .put_streaming(
                    move |i: u32, out: &CollectorEmitter<'_, u32>| {
                        (0..i).try_for_each(|n| out.emit(n))
                    },
                    i,
                )
                .unwrap();
            streams.insert(id, (i, 0u32));
        }
        let handled = items.wait_with(|id, item| {
            let n = item.unwrap();
            let (count, next) = streams.get_mut(&id).expect("only streams' items come here");
            assert!(n < *count);
            assert_eq!(n, *next);
            *next += 1;
        });
        assert_eq!(handled, (0..20).sum::<usize>() + 20);
        for (count, next) in streams.values() {
            assert_eq!(count, next);
        }
        assert!(called.iter().all(|c| c.get() == 1));
    });
}

/// A scope's streams lend `&mut` chunks of the caller's slice, write them
/// and emit what they wrote: after the scope, the slice holds every write.
#[test]
fn scope_streams_borrow_mut_slices() {
    within("&mut slices", || {
        let pool = ThreadPool::new(3);
        let mut data: Vec<u32> = (0..100).collect();
        let mut got: HashMap<RequestId, Vec<u32>> = HashMap::new();
        pool.scope(|s| {
            for chunk in data.chunks_mut(7) {
                s.put_streaming(
                    |chunk: &mut [u32], out: &CollectorEmitter<'_, u32>| {
                        for x in chunk.iter_mut() {
                            *x *= 2;
                            out.emit(*x)?;
                        }
                        Ok(())
                    },
                    chunk,
                )
                .unwrap();
            }
            s.wait_with(|id, n| got.entry(id).or_default().push(n.unwrap()));
        });
        assert_eq!(data, (0..100).map(|n| n * 2).collect::<Vec<_>>());
        let mut all: Vec<Vec<u32>> = got.into_values().collect();
        all.sort_unstable();
        let expected: Vec<Vec<u32>> = data.chunks(7).map(<[u32]>::to_vec).collect();
        assert_eq!(all, expected);
    });
}

/// Emits from the first half of a `join` (which runs on the stream's own
/// thread, the only half that can see the emitter), while the second half
/// runs anywhere: the items come out in the order emitted, before the
/// stream's later ones.
#[test]
fn emits_from_a_join_half_keep_their_order() {
    within("emit inside join", || {
        let pool = ThreadPool::new(2);
        let mut items = pool.collector::<u32>();
        let id = items
            .put_streaming(
                |_: (), out: &CollectorEmitter<'_, u32>| {
                    out.emit(0)?;
                    let (a, b) = out.join(
                        |_| (1..50).try_for_each(|n| out.emit(n)),
                        |_| (0..1000u64).sum::<u64>(),
                    );
                    a?;
                    out.emit(u32::try_from(b).unwrap())?;
                    Ok(())
                },
                (),
            )
            .unwrap();
        let all: Vec<_> = items.outcomes().collect();
        let mut expected: Vec<_> = (0..50).map(|n| (id, Ok(n))).collect();
        expected.push((id, Ok(499_500)));
        assert_eq!(all, expected);
    });
}

/// Depth of [`a_ten_deep_tree_on_the_only_worker_read_every_way`].
const DEPTH: u32 = 10;

/// Each level emits `(level, i)` for i in 0..3, adding the next level (a
/// fallible stream at odd levels, which fails at its end) between items.
fn level(level: u32, out: &CollectorEmitter<'_, (u32, u32), String>) -> Result<(), String> {
    out.emit((level, 0)).map_err(|e| e.to_string())?;
    if level + 1 < DEPTH {
        out.add_fallible_streaming(self::level, level + 1)
            .map_err(|e| e.to_string())?;
    }
    out.emit((level, 1)).map_err(|e| e.to_string())?;
    out.emit((level, 2)).map_err(|e| e.to_string())?;
    if level % 2 == 1 {
        return Err(format!("level {level} fails"));
    }
    Ok(())
}

/// What a tree of [`level`]s handed out, in the order read.
type TreeOutcomes = Vec<(RequestId, Result<(u32, u32), TaskError<String>>)>;

/// Reads `tree` to its end by `try_next_outcome`, `poll_with`,
/// `next_outcome` and, for the last outcomes, `wait_with`, in turn. Each
/// reader that says "nothing pending" must find `pending()` at 0: the
/// reading never ends before the last end. On the pool's only worker
/// (`alone`), `try_next_outcome` never says `Pending`: it runs what is
/// queued itself.
fn read_every_way(
    tree: &mut callpool::Collector<'_, (u32, u32), String>,
    alone: bool,
) -> TreeOutcomes {
    let mut got = TreeOutcomes::new();
    let mut turn = 0u32;
    loop {
        turn += 1;
        match turn % 4 {
            0 => match tree.next_outcome() {
                Some(arrival) => got.push(arrival),
                None => break,
            },
            1 => match tree.try_next_outcome() {
                Poll::Ready(Some(arrival)) => got.push(arrival),
                Poll::Ready(None) => break,
                Poll::Pending => assert!(!alone, "Pending on the only worker"),
            },
            2 => {
                let before = got.len();
                let handled = tree.poll_with(|id, o| got.push((id, o)));
                assert_eq!(
                    handled,
                    got.len() - before,
                    "poll_with counts what it handed out"
                );
                if handled == 0 && tree.pending() == 0 {
                    break;
                }
            }
            _ => {
                if got.len() > 30 {
                    let before = got.len();
                    let handled = tree.wait_with(|id, o| got.push((id, o)));
                    assert_eq!(
                        handled,
                        got.len() - before,
                        "wait_with counts what it handed out"
                    );
                    break;
                }
            }
        }
    }
    assert_eq!(
        tree.pending(),
        0,
        "the reading ended with something pending"
    );
    assert_eq!(tree.next_outcome(), None);
    assert_eq!(tree.try_next_outcome(), Poll::Ready(None));
    got
}

/// Checks a tree of [`level`]s: one request per level, each handing out its
/// three items in order, and an odd level's error after them, once.
fn check_levels(got: &TreeOutcomes) {
    let mut by_level: HashMap<u32, (RequestId, Vec<Result<u32, String>>)> = HashMap::new();
    let mut level_of: HashMap<RequestId, u32> = HashMap::new();
    for (id, outcome) in got {
        let l = match outcome {
            Ok((l, _)) => *l,
            Err(_) => level_of[id],
        };
        level_of.insert(*id, l);
        let entry = by_level.entry(l).or_insert((*id, Vec::new()));
        assert_eq!(entry.0, *id, "one request per level");
        entry
            .1
            .push(outcome.clone().map(|(_, i)| i).map_err(|e| e.to_string()));
    }
    assert_eq!(by_level.len(), DEPTH as usize);
    for l in 0..DEPTH {
        let mut expected = vec![Ok(0), Ok(1), Ok(2)];
        if l % 2 == 1 {
            expected.push(Err(format!(
                "{}",
                TaskError::Failed(format!("level {l} fails"))
            )));
        }
        assert_eq!(by_level[&l].1, expected, "level {l}");
    }
}

/// A collector opened on the only worker of its pool, its stream adding
/// streams ten deep, read by every reader in turn: the waiting worker runs
/// them all itself; per request the items come in order and its error
/// last; the reading ends exactly after the last end; the stats count
/// each stream once.
#[test]
fn a_ten_deep_tree_on_the_only_worker_read_every_way() {
    within("ten deep on one worker", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let ticket = pool
            .submit(
                move |_: ()| {
                    let mut tree = theirs.fallible_collector::<(u32, u32), String>();
                    tree.put_fallible_streaming(level, 0).unwrap();
                    read_every_way(&mut tree, true)
                },
                (),
            )
            .unwrap();
        check_levels(&ticket.wait().unwrap());
        pool.close().unwrap();
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.failed), (1 + 5, 5));
    });
}

/// The same tree on three workers, read from a thread of its own, for
/// twenty rounds.
#[test]
fn a_ten_deep_tree_on_three_workers_read_every_way() {
    within("ten deep on three workers", || {
        let pool = ThreadPool::new(3);
        for _ in 0..20 {
            let mut tree = pool.fallible_collector::<(u32, u32), String>();
            tree.put_fallible_streaming(level, 0).unwrap();
            check_levels(&read_every_way(&mut tree, false));
        }
    });
}

/// A stream added from a stream, and a plain add, while the collector's
/// thread reads through `try_next_outcome` from a non-worker thread: the
/// pending count, read where a gate pins it, is exact.
#[test]
fn pending_is_exact_where_a_gate_pins_it() {
    within("pending exactness", || {
        let pool = ThreadPool::new(2);
        let (first, first_latch) = gate();
        let (second, second_latch) = gate();
        let (added_tx, added_rx) = mpsc::channel();
        let mut items = pool.collector::<u32>();
        let parent = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    out.emit(1)?;
                    let child = out
                        .add_streaming(
                            move |_: (), out: &CollectorEmitter<'_, u32>| {
                                second_latch.hold();
                                out.emit(2)
                            },
                            (),
                        )
                        .unwrap();
                    added_tx.send(child).unwrap();
                    first_latch.hold();
                    Ok(())
                },
                (),
            )
            .unwrap();
        first.await_start();
        let child = added_rx.recv().unwrap();
        second.await_start();
        assert_eq!(items.pending(), 2, "the parent and the child it added");
        assert_eq!(items.next_outcome(), Some((parent, Ok(1))));
        assert_eq!(items.pending(), 2);
        assert_eq!(items.try_next_outcome(), Poll::Pending);
        first.open();
        // The parent's end arrives: it counts out, nothing handed on.
        common::until(|| {
            assert_eq!(items.try_next_outcome(), Poll::Pending);
            items.pending() == 1
        });
        second.open();
        assert_eq!(items.next_outcome(), Some((child, Ok(2))));
        assert_eq!(items.next_outcome(), None);
        assert_eq!(items.pending(), 0);
        drop(items);
        pool.close().unwrap();
        assert_eq!(pool.stats().completed, 2);
    });
}

/// `shutdown_now` while one stream runs and others are queued: the running
/// one goes on emitting to the live collector and ends once; each queued
/// one ends `Cancelled` once and emits nothing; what a running stream adds
/// after the shutdown is refused and ends `Cancelled` once; no hang.
#[test]
fn shutdown_now_while_streams_run_and_wait() {
    within("shutdown_now", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let ran = counter();
        let mut items = pool.collector::<u32>();
        let (refused_tx, refused_rx) = mpsc::channel();
        let running = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    out.emit(0)?;
                    latch.hold();
                    for n in 1..10 {
                        out.emit(n)?;
                    }
                    let refused = out
                        .add_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(99), ());
                    let id = match refused {
                        Err(err @ PutError::ShutDown(_)) => err.request().id(),
                        other => panic!("refused after a shutdown: {other:?}"),
                    };
                    refused_tx.send(id).unwrap();
                    Ok(())
                },
                (),
            )
            .unwrap();
        let mut queued = Vec::new();
        for _ in 0..5 {
            let ran = Arc::clone(&ran);
            queued.push(
                items
                    .put_streaming(
                        move |_: (), out: &CollectorEmitter<'_, u32>| {
                            ran.fetch_add(1, Ordering::SeqCst);
                            out.emit(1000)
                        },
                        (),
                    )
                    .unwrap(),
            );
        }
        held.await_start();
        assert_eq!(items.pending(), 6);
        let unstarted = pool.clone().shutdown_now();
        assert!(
            unstarted.is_empty(),
            "a collector's requests are not handed back"
        );
        held.open();
        let got = by_request(items.outcomes());
        let refused = refused_rx.recv().unwrap();
        let expected: Vec<_> = (0..10).map(Ok).collect();
        assert_eq!(got[&running], expected);
        for id in &queued {
            assert_eq!(got[id], [Err(TaskError::Cancelled)]);
        }
        assert_eq!(got[&refused], [Err(TaskError::Cancelled)]);
        assert_eq!(got.len(), 7);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        assert_eq!(items.pending(), 0);
    });
}

/// `dismiss_workers` (all of them) while a stream runs and others wait:
/// the running one finishes; the waiting ones stay pending, queued, until
/// a worker is added, then run; each ends once.
#[test]
fn dismissing_every_worker_while_streams_run_then_adding_one() {
    within("dismiss while streaming", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let mut items = pool.collector::<u32>();
        let first = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    latch.hold();
                    (0..3).try_for_each(|n| out.emit(n))
                },
                (),
            )
            .unwrap();
        let second = items
            .put_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(7), ())
            .unwrap();
        held.await_start();
        assert_eq!(pool.dismiss_workers(1), 1);
        held.open();
        assert_eq!(items.next_outcome(), Some((first, Ok(0))));
        assert_eq!(items.next_outcome(), Some((first, Ok(1))));
        assert_eq!(items.next_outcome(), Some((first, Ok(2))));
        common::until(|| pool.stats().threads == 0);
        // The first's end has arrived or will; the second waits for a worker.
        common::until(|| {
            let _ = items.try_next_outcome();
            items.pending() == 1
        });
        assert_eq!(items.try_next_outcome(), Poll::Pending);
        pool.resize(1).unwrap();
        assert_eq!(items.next_outcome(), Some((second, Ok(7))));
        assert_eq!(items.next_outcome(), None);
    });
}

/// `close` from another thread while a stream runs: the running stream
/// still delivers every item to the live collector, and `close` returns
/// once it has ended.
#[test]
fn close_while_a_stream_runs_delivers_everything() {
    within("close while streaming", || {
        let pool = ThreadPool::new(2);
        let (held, latch) = gate();
        let mut items = pool.collector::<u32>();
        let id = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    latch.hold();
                    (0..1000).try_for_each(|n| out.emit(n))
                },
                (),
            )
            .unwrap();
        held.await_start();
        let closer = pool.clone();
        let closing = std::thread::spawn(move || closer.close());
        held.open();
        let all: Vec<_> = items.outcomes().collect();
        let expected: Vec<_> = (0..1000).map(|n| (id, Ok(n))).collect();
        assert_eq!(all, expected);
        closing.join().unwrap().unwrap();
    });
}

/// The collector is dropped while one of its callbacks' captures is being
/// dropped, and that `Drop` lets a running stream emit: the stream's
/// items emitted while the collector's drop is under way are dropped once
/// (its channel is still there), and later ones hear `Closed`.
#[test]
fn a_stream_emitting_while_its_collector_is_being_dropped() {
    common::hide_panics_starting_with(DELIBERATE);
    within("emit during the collector's drop", || {
        struct OnDrop(Option<Box<dyn FnOnce()>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if let Some(f) = self.0.take() {
                    f();
                }
            }
        }
        let pool = ThreadPool::new(2);
        let drops = counter();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (said_tx, said_rx) = mpsc::channel();
        let (held, latch) = gate();
        let mut items = pool.collector::<Bomb>();
        let theirs = Arc::clone(&drops);
        items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, Bomb>| {
                    latch.hold();
                    go_rx.recv().unwrap();
                    said_tx.send(out.emit(bomb(1, &theirs))).unwrap();
                    go_rx.recv().unwrap();
                    said_tx.send(out.emit(bomb(2, &theirs))).unwrap();
                    Ok(())
                },
                (),
            )
            .unwrap();
        let said_rx = Arc::new(std::sync::Mutex::new(said_rx));
        let during = Arc::new(std::sync::Mutex::new(None));
        let during_here = Arc::clone(&during);
        let said_here = Arc::clone(&said_rx);
        let go = go_tx.clone();
        let on_drop = OnDrop(Some(Box::new(move || {
            go.send(()).unwrap();
            *during_here.lock().unwrap() = Some(said_here.lock().unwrap().recv().unwrap());
        })));
        // A callback never called: dropped with the collector.
        items
            .put_then(
                |n: u32| bomb(n, &Arc::new(AtomicUsize::new(0))),
                0,
                move |_| {
                    let _keep = &on_drop;
                },
            )
            .unwrap();
        held.await_start();
        held.open();
        drop(items);
        assert_eq!(
            *during.lock().unwrap(),
            Some(Ok(())),
            "emitted while the drop ran"
        );
        // The collector is gone now: the next emit says so.
        go_tx.send(()).unwrap();
        assert_eq!(said_rx.lock().unwrap().recv().unwrap(), Err(Closed));
        pool.close().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 2, "each item dropped once");
    });
}

/// A stream's id is not the handle's to cancel (`cancel` does not reach
/// a collector's requests): it stays queued, runs, and emits.
#[test]
fn cancel_by_id_does_not_reach_a_queued_stream() {
    within("cancel a stream by id", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let mut items = pool.collector::<u32>();
        let id = items
            .put_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(5), ())
            .unwrap();
        assert!(!pool.cancel(id));
        held.open();
        assert_eq!(items.outcomes().collect::<Vec<_>>(), [(id, Ok(5))]);
    });
}

/// The global pool, in a child process (a global pool is one per
/// process): a collector's stream tree and a scope's streams there.
#[test]
fn streams_on_the_global_pool() {
    const NAME: &str = "streams_on_the_global_pool";
    const CHILD_ENV: &str = "CALLPOOL_COLLECTOR_STREAMS_ADVERSARIAL_CHILD";
    if !common::is_child(NAME, CHILD_ENV) {
        let output = common::run_in_child(NAME, CHILD_ENV);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("GLOBAL-STREAMS 62 45"), "{stdout}");
        return;
    }
    fn crawl(page: u32, out: &CollectorEmitter<'_, u32>) -> Result<(), Closed> {
        for link in [2 * page, 2 * page + 1] {
            if link < 32 {
                out.add_streaming(crawl, link).expect("the pool is open");
            }
        }
        out.emit(page)?;
        out.emit(page)
    }
    let pool = callpool::global();
    let mut pages = pool.collector::<u32>();
    pages.put_streaming(crawl, 1).unwrap();
    let count = pages.outcomes().count();
    let data: Vec<u32> = (0..10).collect();
    let sum: u32 = pool.scope(|s| {
        for chunk in data.chunks(3) {
            s.put_streaming(
                |xs: &[u32], out: &CollectorEmitter<'_, u32>| {
                    xs.iter().try_for_each(|&x| out.emit(x))
                },
                chunk,
            )
            .unwrap();
        }
        s.outcomes().map(|(_, x)| x.unwrap()).sum()
    });
    println!("GLOBAL-STREAMS {count} {sum}");
    common::child_ran(NAME);
}

/// A long stream adds a stream and goes on emitting until the one it
/// added has started: with a worker free, the added one runs meanwhile
/// (it does not wait in the adding worker's slot for the adder to end).
#[test]
fn an_added_stream_starts_while_its_adder_still_emits() {
    within("added starts while the adder runs", || {
        let pool = ThreadPool::new(2);
        let mut items = pool.collector::<u32>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    out.add_streaming(
                        move |_: (), out: &CollectorEmitter<'_, u32>| {
                            started_tx.send(()).unwrap();
                            out.emit(1)
                        },
                        (),
                    )
                    .unwrap();
                    // Bounded only to turn a hang into a failure.
                    let started = started_rx.recv_timeout(common::HANG);
                    assert!(started.is_ok(), "the added stream never started");
                    out.emit(0)
                },
                (),
            )
            .unwrap();
        let mut all: Vec<u32> = items.outcomes().map(|(_, n)| n.unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1]);
    });
}

/// What a racing tree's stream reports: the ids it added (accepted or
/// refused), so the reader can check that each one ended exactly once.
type AddedIds = Arc<std::sync::Mutex<Vec<RequestId>>>;

/// A stream of a tree that grows until the pool closes: emits its node,
/// adds two children while the pool takes them (a refused one is dropped
/// here, so it ends `Cancelled`), and emits its node again.
fn grow(node: u32, out: &CollectorEmitter<'_, u32>, added: &AddedIds) -> Result<(), Closed> {
    out.emit(node)?;
    if node < 4_000 {
        for child in [2 * node + 1, 2 * node + 2] {
            let theirs = Arc::clone(added);
            match out.add_streaming(
                move |child: u32, out: &CollectorEmitter<'_, u32>| grow(child, out, &theirs),
                child,
            ) {
                Ok(id) => added.lock().unwrap().push(id),
                Err(refused) => {
                    added.lock().unwrap().push(refused.request().id());
                    assert!(
                        matches!(refused, PutError::ShutDown(_)),
                        "refused for a closed pool only"
                    );
                }
            }
        }
    }
    out.emit(node)
}

/// Checks a racing tree's outcomes: every request (the root and each id
/// added) ended exactly once, either emitting its node twice or ending
/// `Cancelled` with nothing emitted.
fn check_tree(
    root: RequestId,
    got: &HashMap<RequestId, Vec<Result<u32, TaskError>>>,
    added: &AddedIds,
) {
    let added = added.lock().unwrap();
    let mut ids: Vec<RequestId> = added.clone();
    ids.push(root);
    assert_eq!(
        got.len(),
        ids.len(),
        "every request, and nothing else, came out"
    );
    for id in &ids {
        let outcomes = &got[id];
        match outcomes.as_slice() {
            [Err(TaskError::Cancelled)] => {}
            [Ok(a), Ok(b)] => assert_eq!(a, b, "request {id}'s node twice"),
            other => panic!("request {id} ended as {other:?}"),
        }
    }
}

/// Grows a tree of streams on a two-worker pool and reads it to the end,
/// while `stop`, on another thread, stops the pool once `after` items
/// have been read; checks that each request ended exactly once, and
/// returns what `stop` returned.
fn stop_a_growing_tree<R: Send + 'static>(
    after: u64,
    stop: impl FnOnce(ThreadPool) -> R + Send + 'static,
) -> R {
    let pool = ThreadPool::new(2);
    let added: AddedIds = Arc::default();
    let mut items = pool.collector::<u32>();
    let theirs = Arc::clone(&added);
    let root = items
        .put_streaming(
            move |node: u32, out: &CollectorEmitter<'_, u32>| grow(node, out, &theirs),
            0,
        )
        .unwrap();
    let closer = pool.clone();
    let read = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&read);
    let closing = std::thread::spawn(move || {
        common::until(|| seen.load(Ordering::SeqCst) as u64 >= after);
        stop(closer)
    });
    let mut got: HashMap<RequestId, Vec<Result<u32, TaskError>>> = HashMap::new();
    while let Some((id, outcome)) = items.next_outcome() {
        read.fetch_add(1, Ordering::SeqCst);
        got.entry(id).or_default().push(outcome);
    }
    let stopped = closing.join().unwrap();
    check_tree(root, &got, &added);
    stopped
}

/// `close` from another thread while a tree of streams grows: each
/// request ends exactly once (ran to its end, or refused and
/// `Cancelled`), the collector's reading ends, and `close` returns.
#[test]
fn close_while_a_tree_of_streams_grows() {
    within("close during a growing tree", || {
        for round in 0..20u64 {
            stop_a_growing_tree(round * 20, |pool| pool.close()).unwrap();
        }
    });
}

/// `shutdown_now` from another thread while a tree of streams grows: no
/// request of the collector is handed back (they are cancelled to it), and
/// each request ends exactly once; the reading ends.
#[test]
fn shutdown_now_while_a_tree_of_streams_grows() {
    within("shutdown_now during a growing tree", || {
        for round in 0..20u64 {
            let handed_back = stop_a_growing_tree(round * 20, |pool| pool.shutdown_now().len());
            assert_eq!(handed_back, 0, "nothing of the collector's handed back");
        }
    });
}

/// `close` on a pool with no worker, streams queued: none is handed back
/// in the error (a collector's request is its collector's), each ends
/// `Cancelled` once, its callable and argument dropped unrun once.
#[test]
fn close_with_no_worker_cancels_queued_streams_to_their_collector() {
    within("close with no worker", || {
        let pool = ThreadPool::new(0);
        let dropped = counter();
        let mut items = pool.collector::<u32>();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let capture = common::Dropped(Arc::clone(&dropped));
            let arg = common::Dropped(Arc::clone(&dropped));
            ids.push(
                items
                    .put_streaming(
                        move |_arg: common::Dropped, out: &CollectorEmitter<'_, u32>| {
                            let _keep = &capture;
                            out.emit(1)
                        },
                        arg,
                    )
                    .unwrap(),
            );
        }
        assert!(
            pool.close().is_ok(),
            "nothing of a collector's is handed back"
        );
        let mut got: Vec<_> = items.outcomes().collect();
        got.sort_unstable_by_key(|(id, _)| *id);
        let expected: Vec<_> = ids
            .iter()
            .map(|&id| (id, Err(TaskError::Cancelled)))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(dropped.load(Ordering::SeqCst), 6);
        assert_eq!(pool.stats().completed, 0);
    });
}

/// A scope opened in the only worker's callable: its streams, and the
/// streams they add, run on that worker while the scope waits; the body
/// panics before reading anything, and still every stream ran to its
/// end, and every item was dropped once, before the panic goes on.
#[test]
fn a_scope_on_the_only_worker_whose_body_panics_runs_every_stream() {
    common::hide_panics_starting_with(DELIBERATE);
    within("scope on the only worker", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let drops = counter();
        let ran = counter();
        let (drops2, ran2) = (Arc::clone(&drops), Arc::clone(&ran));
        let ticket = pool
            .submit(
                move |_: ()| {
                    let data: Vec<u32> = (0..12).collect();
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        theirs.scope(|s| {
                            for chunk in data.chunks(4) {
                                let (drops, ran) = (Arc::clone(&drops2), Arc::clone(&ran2));
                                s.put_streaming(
                                    move |xs: &[u32], out: &CollectorEmitter<'_, Bomb>| {
                                        ran.fetch_add(1, Ordering::SeqCst);
                                        let (d, r) = (Arc::clone(&drops), Arc::clone(&ran));
                                        out.add_streaming(
                                            move |first: u32, out: &CollectorEmitter<'_, Bomb>| {
                                                r.fetch_add(1, Ordering::SeqCst);
                                                out.emit(bomb(first + 1000, &d))
                                            },
                                            xs[0],
                                        )
                                        .expect("the pool is open");
                                        xs.iter().try_for_each(|&x| out.emit(bomb(x, &drops)))
                                    },
                                    chunk,
                                )
                                .unwrap();
                            }
                            panic!("{DELIBERATE} in a scope on a worker");
                        })
                    }))
                    .is_err()
                },
                (),
            )
            .unwrap();
        assert!(ticket.wait().unwrap(), "the body's panic went on");
        assert_eq!(ran.load(Ordering::SeqCst), 6);
        assert_eq!(drops.load(Ordering::SeqCst), 15, "each item dropped once");
    });
}

/// What a stream captured is dropped before its end is heard: once the
/// collector's reading has ended, every capture is gone.
#[test]
fn a_streams_captures_are_gone_when_the_reading_ends() {
    within("captures dropped before the end", || {
        let pool = ThreadPool::new(3);
        let dropped = counter();
        let mut items = pool.collector::<u32>();
        for n in 0..50 {
            let capture = common::Dropped(Arc::clone(&dropped));
            items
                .put_streaming(
                    move |n: u32, out: &CollectorEmitter<'_, u32>| {
                        let _keep = &capture;
                        out.emit(n)
                    },
                    n,
                )
                .unwrap();
        }
        assert_eq!(items.outcomes().count(), 50);
        assert_eq!(dropped.load(Ordering::SeqCst), 50);
    });
}

/// `resize(0)` while the only worker waits in a collector of its own
/// callable, streams queued: that worker, dismissed but still running the
/// callable, runs them itself; nothing hangs.
#[test]
fn resize_to_zero_while_the_only_worker_waits_in_its_collector() {
    within("resize(0) during a worker's collector", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let (held, latch) = gate();
        let ticket = pool
            .submit(
                move |_: ()| {
                    let mut inner = theirs.collector::<u32>();
                    for n in 0..3u32 {
                        inner
                            .put_streaming(
                                move |n: u32, out: &CollectorEmitter<'_, u32>| {
                                    out.add_streaming(
                                        |n: u32, out: &CollectorEmitter<'_, u32>| out.emit(n),
                                        n + 100,
                                    )
                                    .map(|_| ())
                                    .or_else(|refused| {
                                        drop(refused);
                                        Ok(())
                                    })?;
                                    out.emit(n)
                                },
                                n,
                            )
                            .unwrap();
                    }
                    latch.hold();
                    inner.outcomes().map(|(_, n)| n).collect::<Vec<_>>()
                },
                (),
            )
            .unwrap();
        held.await_start();
        pool.resize(0).unwrap();
        held.open();
        let all = ticket.wait().unwrap();
        let mut oks: Vec<u32> = all.into_iter().map(Result::unwrap).collect();
        oks.sort_unstable();
        assert_eq!(oks, [0, 1, 2, 100, 101, 102]);
        assert_eq!(pool.stats().completed, 1 + 6);
    });
}

/// A stream refused by its collector's closed pool (not pending there:
/// "nothing refused is pending") and put again on another pool, as a
/// refused request may be: its items reach a collector that ignores them,
/// and each is dropped once there; an item's panicking `Drop` is
/// contained, as every user value the collector lets go of is, and does
/// not come out of the collector's reading.
#[test]
fn a_strangers_items_are_dropped_contained() {
    common::hide_panics_starting_with(DELIBERATE);
    within("a refused stream put again elsewhere", || {
        let pool = ThreadPool::new(1);
        let elsewhere = ThreadPool::new(1);
        let drops = counter();
        let (held, latch) = gate();
        let mut items = pool.collector::<Bomb>();
        let ours = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, Bomb>| {
                    latch.hold();
                    out.emit(Bomb {
                        n: 0,
                        drops: counter(),
                        panics: false,
                    })
                },
                (),
            )
            .unwrap();
        held.await_start();
        assert!(pool.clone().shutdown_now().is_empty());
        let theirs = Arc::clone(&drops);
        let refused = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, Bomb>| {
                    (1..4).try_for_each(|n| out.emit(bomb(n, &theirs)))
                },
                (),
            )
            .expect_err("the pool is shut down");
        assert!(matches!(refused, PutError::ShutDown(_)));
        assert_eq!(items.pending(), 1);
        elsewhere.put_request(refused.into_request()).unwrap();
        elsewhere.close().unwrap();
        held.open();
        only_ours_come_out(&mut items, ours);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "each stranger's item dropped once"
        );
    });
}

/// Reads `items` to its end: only `ours`, whose value is bomb 0, comes
/// out; what a stranger sent is not handed on.
fn only_ours_come_out(items: &mut Collector<'_, Bomb>, ours: RequestId) {
    let got: Vec<(RequestId, u32)> = items
        .outcomes()
        .map(|(id, item)| (id, item.unwrap().n))
        .collect();
    assert_eq!(got, [(ours, 0)]);
}

/// The same for a plain request refused and put again elsewhere: its
/// outcome, a user value whose `Drop` panics, is dropped contained by the
/// collector that does not count it.
#[test]
fn a_strangers_outcome_is_dropped_contained() {
    common::hide_panics_starting_with(DELIBERATE);
    within("a refused put put again elsewhere", || {
        let pool = ThreadPool::new(1);
        let elsewhere = ThreadPool::new(1);
        let drops = counter();
        let (held, latch) = gate();
        let mut items = pool.collector::<Bomb>();
        let ours = items
            .put(
                move |_: ()| {
                    latch.hold();
                    Bomb {
                        n: 0,
                        drops: counter(),
                        panics: false,
                    }
                },
                (),
            )
            .unwrap();
        held.await_start();
        assert!(pool.clone().shutdown_now().is_empty());
        let theirs = Arc::clone(&drops);
        let refused = items
            .put(move |n: u32| bomb(n, &theirs), 1)
            .expect_err("the pool is shut down");
        elsewhere.put_request(refused.into_request()).unwrap();
        elsewhere.close().unwrap();
        held.open();
        only_ours_come_out(&mut items, ours);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "the stranger's outcome dropped once"
        );
    });
}

/// A stream that shuts its own pool down (`shutdown_now` from its
/// callable, on its worker): its queued siblings end `Cancelled` once, it
/// goes on emitting to its live collector, and its later `add_streaming`
/// is refused; the reading ends with each request ended once. It shuts
/// the pool down only once its siblings are queued: the only worker may
/// start it before the test's next put, which the shutdown would refuse.
#[test]
fn a_stream_that_shuts_its_pool_down_now() {
    within("shutdown_now from a stream", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let mut items = pool.collector::<u32>();
        let (siblings_queued, latch) = gate();
        let stopper = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    out.emit(1)?;
                    latch.hold();
                    assert!(theirs.shutdown_now().is_empty());
                    out.emit(2)?;
                    match out
                        .add_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(9), ())
                    {
                        Err(PutError::ShutDown(_)) => {}
                        other => panic!("an add after the shutdown: {other:?}"),
                    }
                    out.emit(3)
                },
                (),
            )
            .unwrap();
        let queued: Vec<RequestId> = (0..4)
            .map(|_| {
                items
                    .put_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(7), ())
                    .unwrap()
            })
            .collect();
        siblings_queued.open();
        let got = by_request(items.outcomes());
        assert_eq!(got[&stopper], [Ok(1), Ok(2), Ok(3)]);
        for id in &queued {
            assert_eq!(got[id], [Err(TaskError::Cancelled)]);
        }
        // The refused add ended `Cancelled` too, under its own id.
        assert_eq!(got.len(), 1 + queued.len() + 1);
        let cancelled = got
            .values()
            .filter(|o| o.as_slice() == [Err(TaskError::Cancelled)])
            .count();
        assert_eq!(cancelled, queued.len() + 1);
        assert_eq!(items.pending(), 0);
    });
}

/// A scope with plain requests whose callbacks panic beside streams whose
/// items' `Drop` panics: every callback runs once, every item is dropped
/// once, every stream runs to its end, and the first of those panics
/// goes on.
#[test]
fn a_scopes_panicking_callbacks_beside_streams() {
    common::hide_panics_starting_with(DELIBERATE);
    within("callbacks panic in a scope with streams", || {
        let pool = ThreadPool::new(2);
        let drops = counter();
        let called = Cell::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                for n in 0..5u32 {
                    s.put_then(
                        |n: u32| Bomb {
                            n,
                            drops: counter(),
                            panics: false,
                        },
                        n,
                        |_| {
                            called.set(called.get() + 1);
                            panic!("{DELIBERATE}: callback");
                        },
                    )
                    .unwrap();
                    s.put_streaming(
                        |(n, drops): (u32, &Arc<AtomicUsize>), out: &CollectorEmitter<'_, Bomb>| {
                            (0..10).try_for_each(|i| out.emit(bomb(n * 10 + i, drops)))
                        },
                        (n, &drops),
                    )
                    .unwrap();
                }
            })
        }));
        let payload = caught.expect_err("a callback's panic goes on");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        // The first panic the drain met: a callback's or an unread item's.
        assert!(
            message.starts_with(DELIBERATE)
                && (message.contains("callback") || message.contains("a dropped item")),
            "{message}"
        );
        assert_eq!(called.get(), 5, "every callback ran once");
        assert_eq!(drops.load(Ordering::SeqCst), 50, "every item dropped once");
    });
}

/// An `add_streaming` refused (the pool shut down) while its stream runs:
/// the refused request stays pending on the collector, exactly, for as
/// long as its error is held (here, sent out of the stream and held by
/// this thread), and ends `Cancelled` once it is dropped; never before.
#[test]
fn a_refused_add_stays_pending_while_its_error_is_held() {
    within("a refused add's error held", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let (err_tx, err_rx) = mpsc::channel();
        let mut items = pool.collector::<u32>();
        let parent = items
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, u32>| {
                    assert!(theirs.shutdown_now().is_empty());
                    let refused = out
                        .add_streaming(|_: (), out: &CollectorEmitter<'_, u32>| out.emit(9), ())
                        .expect_err("the pool is shut down");
                    err_tx.send(refused).unwrap();
                    out.emit(1)
                },
                (),
            )
            .unwrap();
        let refused = err_rx.recv().unwrap();
        let child = refused.request().id();
        assert_eq!(items.next_outcome(), Some((parent, Ok(1))));
        // The parent's end comes next; the child is still pending.
        common::until(|| {
            assert_eq!(items.try_next_outcome(), Poll::Pending);
            items.pending() == 1
        });
        assert_eq!(items.try_next_outcome(), Poll::Pending);
        drop(refused);
        assert_eq!(
            items.next_outcome(),
            Some((child, Err(TaskError::Cancelled)))
        );
        assert_eq!(items.next_outcome(), None);
        assert_eq!(items.pending(), 0);
    });
}

/// A scope's stream refused by a closed pool: the callable and its
/// argument (a borrow, and a value it owns) are dropped by the time the
/// put returns; nothing is pending; the scope returns.
#[test]
fn a_scopes_refused_stream_is_dropped_inside_the_put() {
    within("a scope's refused stream", || {
        let pool = ThreadPool::new(1);
        pool.close().unwrap();
        let dropped = counter();
        let local = String::from("borrowed");
        pool.scope(|s| {
            let capture = common::Dropped(Arc::clone(&dropped));
            let refused = s.put_streaming(
                move |(text, _owned): (&String, common::Dropped),
                      out: &CollectorEmitter<'_, usize>| {
                    let _keep = &capture;
                    out.emit(text.len())
                },
                (&local, common::Dropped(Arc::clone(&dropped))),
            );
            assert!(refused.is_err());
            assert_eq!(dropped.load(Ordering::SeqCst), 2);
            assert_eq!(s.pending(), 0);
            assert_eq!(s.next_outcome(), None);
        });
        assert_eq!(local, "borrowed");
    });
}

/// An item that panics as it is dropped, even while its thread unwinds.
struct AlwaysBomb(Arc<AtomicUsize>);

impl Drop for AlwaysBomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("{DELIBERATE}: an item dropped while unwinding");
    }
}

/// A collector dropped while its callable unwinds (the callable that
/// opened it panics), its streams' items unread, each of whose `Drop`
/// panics even then: each is dropped once, contained, and the process
/// lives on (a child process, in case it aborts); the callable's panic is
/// its outcome.
#[test]
fn unread_items_dropped_while_unwinding_are_contained() {
    const NAME: &str = "unread_items_dropped_while_unwinding_are_contained";
    const CHILD_ENV: &str = "CALLPOOL_COLLECTOR_STREAMS_ADVERSARIAL_CHILD";
    if !common::is_child(NAME, CHILD_ENV) {
        let output = common::run_in_child(NAME, CHILD_ENV);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("UNWOUND 6 panicked"), "{stdout}");
        return;
    }
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let theirs = pool.clone();
    let drops = counter();
    let counted = Arc::clone(&drops);
    let ticket = pool
        .submit(
            move |_: ()| {
                let mut items = theirs.collector::<AlwaysBomb>();
                for _ in 0..2 {
                    let drops = Arc::clone(&counted);
                    items
                        .put_streaming(
                            move |_: (), out: &CollectorEmitter<'_, AlwaysBomb>| {
                                (0..3).try_for_each(|_| out.emit(AlwaysBomb(Arc::clone(&drops))))
                            },
                            (),
                        )
                        .unwrap();
                }
                // Both streams have ended (their items are in the channel):
                // the stats say so before their ends are sent.
                while theirs.stats().completed < 2 {
                    std::thread::yield_now();
                }
                panic!("{DELIBERATE}: the callable that owns the collector");
            },
            (),
        )
        .unwrap();
    let outcome = ticket.wait();
    let how = match outcome {
        Err(TaskError::Panicked(_)) => "panicked",
        _ => "other",
    };
    pool.close().unwrap();
    println!("UNWOUND {} {how}", drops.load(Ordering::SeqCst));
    common::child_ran(NAME);
}
