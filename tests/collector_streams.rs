//! Streaming into a collector (`Collector::put_streaming`,
//! `CollectorContext::add_streaming` and their fallible forms): each
//! emitted item comes out as `(id, Ok(item))` in the order its request
//! emitted it; an error or a panic part-way comes after the items emitted
//! before it, once; a stream's return hands nothing on but counts it out;
//! the collector's loops never end while a stream (or what it added) can
//! still emit; a dropped collector makes `emit` say `Closed`; a stream
//! cancelled before it starts ends as `Cancelled`; and a fast emitter on a
//! pool with bounded queues, with the collector's thread putting too, does
//! not deadlock.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;

use callpool::{
    Closed, CollectorContext, CollectorEmitter, PutError, RequestId, TaskError, ThreadPool,
    WorkRequest,
};
use common::{by_request, counter, gate, hit_counters, within, Dropped};

const DELIBERATE: &str = "collector streams: deliberate panic";

/// A stream's emitter knows its request's id (through the context it
/// dereferences to), the one its put returned, and prints it.
#[test]
fn the_emitter_knows_its_requests_id() {
    within("id", || {
        let pool = ThreadPool::new(1);
        let mut ids = pool.collector::<(RequestId, String)>();
        let id = ids
            .put_streaming(
                |_: (), out: &CollectorEmitter<'_, (RequestId, String)>| {
                    out.emit((out.id(), format!("{out:?}")))
                },
                (),
            )
            .unwrap();
        let (from, item) = ids.next_outcome().unwrap();
        let (seen, printed) = item.unwrap();
        assert_eq!((from, seen), (id, id));
        assert!(printed.starts_with("CollectorEmitter"), "{printed}");
        assert_eq!(ids.next_outcome(), None);
    });
}

/// Emits `(n, 0)`, `(n, 1)`, ... `(n, count - 1)`.
fn numbered((n, count): (u32, u32), out: &CollectorEmitter<'_, (u32, u32)>) -> Result<(), Closed> {
    for i in 0..count {
        out.emit((n, i))?;
    }
    Ok(())
}

/// Several streams emitting at once on four workers: every item comes out
/// once, each request's in the order it emitted them, each under its own
/// id; plain requests in the same collector come out as before.
#[test]
fn items_come_out_once_each_in_each_requests_order() {
    within("order", || {
        let pool = ThreadPool::new(4);
        let mut collector = pool.collector::<(u32, u32)>();
        let mut streams = HashMap::new();
        for n in 0..8u32 {
            let id = collector.put_streaming(numbered, (n, 500)).unwrap();
            streams.insert(id, n);
        }
        let plain = collector.put(|n: u32| (n, u32::MAX), 99).unwrap();
        assert_eq!(collector.pending(), 9);
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), 9);
        assert_eq!(grouped[&plain], [Ok((99, u32::MAX))]);
        for (id, n) in streams {
            let expected: Vec<_> = (0..500).map(|i| Ok((n, i))).collect();
            assert_eq!(grouped[&id], expected, "request {n}'s items");
        }
        assert_eq!(collector.pending(), 0);
    });
}

/// A stream that emits nothing hands nothing on, and still stops counting:
/// the loops end, `wait_with` counts only what it handed on, and
/// `next_outcome` says `None`.
#[test]
fn zero_item_streams_end_without_an_outcome() {
    within("zero items", || {
        let pool = ThreadPool::new(2);
        let mut collector = pool.collector::<(u32, u32)>();
        for n in 0..50 {
            collector.put_streaming(numbered, (n, 0)).unwrap();
        }
        collector.put_streaming(numbered, (50, 3)).unwrap();
        assert_eq!(collector.pending(), 51);
        let mut seen = Vec::new();
        assert_eq!(collector.wait_with(|_, item| seen.push(item.unwrap())), 3);
        assert_eq!(seen, [(50, 0), (50, 1), (50, 2)]);
        assert_eq!(collector.pending(), 0);
        collector.put_streaming(numbered, (51, 0)).unwrap();
        assert_eq!(collector.next_outcome(), None);
        assert_eq!(collector.pending(), 0);
        // The handle's count never saw any of them.
        assert_eq!(pool.pending(), 0);
    });
}

/// `poll_with` counts items and errors, not a silent end, and a loop of it
/// ends once the streams have ended.
#[test]
fn poll_with_counts_items_and_ends_with_the_streams() {
    within("poll_with", || {
        let pool = ThreadPool::new(2);
        let mut collector = pool.collector::<(u32, u32)>();
        for n in 0..10 {
            collector.put_streaming(numbered, (n, n)).unwrap();
        }
        let (mut handled, mut seen) = (0, 0);
        while collector.pending() > 0 {
            handled += collector.poll_with(|_, item| {
                item.unwrap();
                seen += 1;
            });
            std::thread::yield_now();
        }
        assert_eq!((handled, seen), (45, 45)); // 0 + 1 + ... + 9
    });
}

/// An `Err` part-way: the items emitted before it, then the error once, and
/// nothing after; the same for each of several such requests.
#[test]
fn an_error_part_way_comes_after_the_items_before_it() {
    within("error part-way", || {
        let pool = ThreadPool::new(3);
        let mut collector = pool.fallible_collector::<u32, String>();
        let mut ids = HashMap::new();
        for n in 0..20u32 {
            let id = collector
                .put_fallible_streaming(
                    |n: u32, out: &CollectorEmitter<'_, u32, String>| {
                        for i in 0..n {
                            out.emit(i).map_err(|e| e.to_string())?;
                        }
                        Err(format!("stopped at {n}"))
                    },
                    n,
                )
                .unwrap();
            ids.insert(id, n);
        }
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), 20);
        for (id, n) in ids {
            let mut expected: Vec<_> = (0..n).map(Ok).collect();
            expected.push(Err(TaskError::Failed(format!("stopped at {n}"))));
            assert_eq!(grouped[&id], expected);
        }
        assert_eq!(collector.pending(), 0);
    });
}

/// A panic part-way: the items emitted before it, then `Panicked` with its
/// message, once. Infallible and fallible streams alike.
#[test]
fn a_panic_part_way_comes_after_the_items_before_it() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panic part-way", || {
        let pool = ThreadPool::new(2);
        let mut collector = pool.collector::<u32>();
        let infallible = collector
            .put_streaming(
                |n: u32, out: &CollectorEmitter<'_, u32>| {
                    out.emit(n)?;
                    out.emit(n + 1)?;
                    panic!("{DELIBERATE} after two");
                },
                10,
            )
            .unwrap();
        let grouped = by_request(collector.outcomes());
        assert_eq!(
            grouped[&infallible],
            [
                Ok(10),
                Ok(11),
                Err(TaskError::Panicked(format!("{DELIBERATE} after two")))
            ]
        );

        let mut fallible = pool.fallible_collector::<u32, String>();
        let id = fallible
            .put_fallible_streaming(
                |_: (), out: &CollectorEmitter<'_, u32, String>| -> Result<(), String> {
                    out.emit(1).map_err(|e| e.to_string())?;
                    panic!("{DELIBERATE} after one");
                },
                (),
            )
            .unwrap();
        assert_eq!(fallible.next_outcome(), Some((id, Ok(1))));
        assert_eq!(
            fallible.next_outcome(),
            Some((
                id,
                Err(TaskError::Panicked(format!("{DELIBERATE} after one")))
            ))
        );
        assert_eq!(fallible.next_outcome(), None);
    });
}

/// A tree of streaming requests that add streaming requests: node `n`
/// adds `2n + 1` and `2n + 2` below 300, then emits `n % 4` items and
/// fails with its number, so that its end shows. Every node's items come
/// out once, in order, then its end, exactly once and last.
#[test]
fn a_tree_of_streams_adding_streams_ends_each_request_once() {
    const NODES: u32 = 300;

    fn node(n: u32, out: &CollectorEmitter<'_, (u32, u32), u32>) -> Result<(), u32> {
        for child in [2 * n + 1, 2 * n + 2] {
            if child < NODES {
                out.add_fallible_streaming(node, child)
                    .expect("the pool is open");
            }
        }
        for i in 0..n % 4 {
            out.emit((n, i)).expect("the collector is here");
        }
        Err(n)
    }

    within("tree", || {
        let pool = ThreadPool::new(4);
        let mut collector = pool.fallible_collector::<(u32, u32), u32>();
        collector.put_fallible_streaming(node, 0).unwrap();
        let ends = hit_counters(NODES as usize);
        let mut items = 0;
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), NODES as usize, "one id per node");
        for outcomes in grouped.values() {
            let Some((Err(TaskError::Failed(n)), before)) = outcomes.split_last() else {
                panic!("a request's last outcome is not its end: {outcomes:?}");
            };
            ends[*n as usize].fetch_add(1, Ordering::SeqCst);
            let expected: Vec<_> = (0..n % 4).map(|i| Ok((*n, i))).collect();
            assert_eq!(before, expected, "node {n}'s items");
            items += before.len();
        }
        common::assert_each_once("ends", &ends);
        // 300 nodes: 75 of each remainder mod 4, so 75 * (0 + 1 + 2 + 3).
        assert_eq!(items, 450);
        assert_eq!(collector.pending(), 0);
    });
}

/// The same tree, infallible, read with `next_outcome` while the
/// collector's thread puts more streams as items come: every item once.
#[test]
fn an_infallible_tree_read_while_putting_more() {
    fn node(n: u32, out: &CollectorEmitter<'_, (u32, u32)>) -> Result<(), Closed> {
        if n < 100 {
            out.add_streaming(node, 2 * n + 1)
                .expect("the pool is open");
            out.add_streaming(node, 2 * n + 2)
                .expect("the pool is open");
        }
        out.emit((n, 0))?;
        out.emit((n, 1))
    }

    within("tree and puts", || {
        let pool = ThreadPool::new(3);
        let mut collector = pool.collector::<(u32, u32)>();
        collector.put_streaming(node, 0).unwrap();
        let mut roots = 1u32;
        let mut seen = HashMap::new();
        while let Some((_, item)) = collector.next_outcome() {
            let (n, i) = item.unwrap();
            // A second tree's root, whose nodes overlap the first's.
            if (n == 50 || n == 60) && i == 1 {
                roots += 1;
                collector.put_streaming(node, 149 + roots).unwrap();
            }
            *seen.entry((n, i)).or_insert(0) += 1;
        }
        assert_eq!(roots, 3);
        // The first tree: nodes 0..=200; the others: one node each (151, 152).
        let mut expected: HashMap<(u32, u32), i32> = HashMap::new();
        for n in (0..=200).chain([151, 152]) {
            for i in 0..2 {
                *expected.entry((n, i)).or_insert(0) += 1;
            }
        }
        assert_eq!(seen, expected);
        assert_eq!(collector.pending(), 0);
    });
}

/// While a stream runs (it has emitted one item and waits at a gate), it
/// is pending, `try_next_outcome` says "nothing yet" and not "nothing
/// pending", and `next_outcome` waits for its next item rather than
/// return `None`.
#[test]
fn a_running_stream_stays_pending_and_next_outcome_waits_for_it() {
    within("running stream", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let mut collector = pool.collector::<&str>();
        let id = collector
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, &str>| {
                    out.emit("before")?;
                    latch.hold();
                    out.emit("after")
                },
                (),
            )
            .unwrap();
        assert_eq!(collector.next_outcome(), Some((id, Ok("before"))));
        held.await_start();
        assert_eq!(collector.pending(), 1, "it still runs");
        assert_eq!(collector.try_next_outcome(), Poll::Pending);
        let mut none = 0;
        assert_eq!(collector.poll_with(|_, _| none += 1), 0);
        assert_eq!(none, 0);
        // Opened from elsewhere, while this thread waits (or before it
        // does: either way `next_outcome` must return the item).
        let opener = std::thread::spawn(move || held.open());
        assert_eq!(collector.next_outcome(), Some((id, Ok("after"))));
        assert_eq!(collector.next_outcome(), None);
        assert_eq!(collector.pending(), 0);
        opener.join().unwrap();
    });
}

/// A stream that has emitted nothing yet and waits at a gate keeps
/// `wait_with` waiting; so does one that its parent added and that has
/// not started yet (its parent has ended).
#[test]
fn wait_with_waits_for_a_stream_that_has_emitted_nothing_yet() {
    within("nothing yet", || {
        let pool = ThreadPool::new(2);
        let (held, latch) = gate();
        let mut collector = pool.collector::<u32>();
        collector
            .put_with_context(
                move |cx: &CollectorContext<'_, u32>, _: ()| {
                    cx.add_streaming(
                        move |_: (), out: &CollectorEmitter<'_, u32>| {
                            latch.hold();
                            out.emit(7)
                        },
                        (),
                    )
                    .expect("the pool is open");
                    1
                },
                (),
            )
            .unwrap();
        held.await_start();
        let opener = std::thread::spawn(move || held.open());
        let mut got = Vec::new();
        assert_eq!(collector.wait_with(|_, n| got.push(n.unwrap())), 2);
        got.sort_unstable();
        assert_eq!(got, [1, 7]);
        opener.join().unwrap();
    });
}

/// The collector dropped mid-stream: the stream's next `emit` says
/// `Closed`, the item is dropped once, the stream returns, and nothing
/// hangs.
#[test]
fn a_collector_dropped_mid_stream_makes_emit_say_closed() {
    within("dropped mid-stream", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let (said, heard) = mpsc::channel();
        let drops = counter();
        let mut collector = pool.collector::<Dropped>();
        let theirs = Arc::clone(&drops);
        let id = collector
            .put_streaming(
                move |_: (), out: &CollectorEmitter<'_, Dropped>| {
                    said.send(out.emit(Dropped(Arc::clone(&theirs)))).unwrap();
                    latch.hold();
                    let after = out.emit(Dropped(Arc::clone(&theirs)));
                    said.send(after).unwrap();
                    after?;
                    unreachable!("the collector is gone");
                },
                (),
            )
            .unwrap();
        let (from, first) = collector.next_outcome().unwrap();
        assert_eq!(from, id);
        drop(first);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        held.await_start();
        drop(collector);
        held.open();
        assert_eq!(heard.recv().unwrap(), Ok(()));
        assert_eq!(heard.recv().unwrap(), Err(Closed));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "the refused item was dropped"
        );
    });
}

/// The handle's `cancel` does not reach a stream put through a collector
/// (as for any collector's request): it runs. Streams that `shutdown_now`
/// finds unstarted end as one `Cancelled` each, their callables never
/// run; so does one added as the pool shuts down.
#[test]
fn a_stream_cancelled_before_it_starts_ends_cancelled_once() {
    within("cancelled", || {
        let ran = counter();
        let emit_one = {
            let ran = Arc::clone(&ran);
            move |n: u32, out: &CollectorEmitter<'_, u32>| {
                ran.fetch_add(1, Ordering::SeqCst);
                out.emit(n)
            }
        };

        // By id.
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let mut collector = pool.collector::<u32>();
        let id = collector.put_streaming(emit_one.clone(), 1).unwrap();
        assert!(
            !pool.cancel(id),
            "the handle's cancel does not reach a collector's request"
        );
        held.open();
        assert_eq!(collector.next_outcome(), Some((id, Ok(1))));
        assert_eq!(collector.next_outcome(), None);
        assert_eq!(ran.swap(0, Ordering::SeqCst), 1);

        // Handed back by `shutdown_now`, then dropped.
        let (held, latch) = gate();
        pool.execute(move || latch.hold()).unwrap();
        held.await_start();
        let ids: Vec<_> = (0..3)
            .map(|n| collector.put_streaming(emit_one.clone(), n).unwrap())
            .collect();
        // Cancelled there, as a ticket's request is, not handed back.
        assert!(pool.clone().shutdown_now().is_empty());
        held.open();
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), 3);
        for id in ids {
            assert_eq!(grouped[&id], [Err(TaskError::Cancelled)]);
        }
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no stream ran");

        // Added as the pool shuts down: refused, it still ends here.
        let pool = ThreadPool::new(1);
        let stopper = pool.clone();
        let mut collector = pool.collector::<u32>();
        let emit = emit_one.clone();
        let parent = collector
            .put_streaming(
                move |n: u32, out: &CollectorEmitter<'_, u32>| {
                    drop(stopper.shutdown_now());
                    let refused = out.add_streaming(emit, n + 1);
                    assert!(matches!(refused, Err(PutError::ShutDown(_))));
                    out.emit(n)
                },
                1,
            )
            .unwrap();
        let grouped = by_request(collector.outcomes());
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[&parent], [Ok(1)]);
        let (_, added) = grouped.iter().find(|(id, _)| **id != parent).unwrap();
        assert_eq!(added, &[Err(TaskError::Cancelled)]);
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no stream ran");
    });
}

/// A bounded pool (a request queue of 2 and a result queue of 1) where
/// streams emit fast, the handle's own requests fill its result queue, and
/// the collector's thread both puts (blocking on the full queue) and reads
/// the collector: nothing deadlocks, and everything arrives once.
#[test]
fn a_fast_emitter_on_bounded_queues_with_the_collectors_thread_putting() {
    const STREAMS: u32 = 4;
    const ITEMS: u32 = 5_000;
    const PLAIN: u32 = 200;
    within("bounded", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(2)
            .result_capacity(1)
            .build()
            .unwrap();
        let handled = hit_counters(PLAIN as usize);
        let mut collector = pool.collector::<(u32, u32)>();
        let mut streams = HashMap::new();
        for n in 0..STREAMS {
            streams.insert(collector.put_streaming(numbered, (n, ITEMS)).unwrap(), n);
        }
        let mut plain = HashMap::new();
        let mut got: HashMap<RequestId, Vec<(u32, u32)>> = HashMap::new();
        let mut next_plain = 0;
        loop {
            if next_plain < PLAIN {
                // The handle's own request, whose result goes through the
                // bounded result queue and is handled while this thread
                // blocks in a put or in the collector.
                let hits = Arc::clone(&handled);
                pool.put_request(WorkRequest::new(|i: u32| i, next_plain).on_result(
                    move |_, i| {
                        hits[i as usize].fetch_add(1, Ordering::SeqCst);
                    },
                ))
                .unwrap();
                plain.insert(
                    collector.put(|i: u32| (u32::MAX, i), next_plain).unwrap(),
                    next_plain,
                );
                next_plain += 1;
            }
            let Some((id, item)) = collector.next_outcome() else {
                break;
            };
            got.entry(id).or_default().push(item.unwrap());
        }
        pool.wait().unwrap();
        common::assert_each_once("the handle's callbacks", &handled);
        assert_eq!(got.len(), (STREAMS + PLAIN) as usize);
        for (id, n) in streams {
            let expected: Vec<_> = (0..ITEMS).map(|i| (n, i)).collect();
            assert_eq!(got[&id], expected);
        }
        for (id, i) in plain {
            assert_eq!(got[&id], [(u32::MAX, i)]);
        }
    });
}

/// A collector opened inside the only worker's callable: its streams are
/// run by that worker while it waits in the collector, and their items
/// come out there.
#[test]
fn streams_of_a_collector_on_the_only_worker_run_there() {
    within("on the only worker", || {
        let pool = ThreadPool::new(1);
        let theirs = pool.clone();
        let ticket = pool
            .submit(
                move |_: ()| {
                    let mut inner = theirs.collector::<(u32, u32)>();
                    for n in 0..3 {
                        inner.put_streaming(numbered, (n, 4)).unwrap();
                    }
                    let mut all: Vec<_> = inner.outcomes().map(|(_, item)| item.unwrap()).collect();
                    all.sort_unstable();
                    all
                },
                (),
            )
            .unwrap();
        let all = ticket.wait().unwrap();
        let expected: Vec<_> = (0..3).flat_map(|n| (0..4).map(move |i| (n, i))).collect();
        assert_eq!(all, expected);
    });
}

/// A scope's streams borrow the caller's data; their items come out in
/// order per request; what a stream adds comes back to the scope, which
/// waits for it; a panic in the body still lets every stream run to its
/// end first, and items nobody took are dropped there.
#[test]
fn a_scopes_streams_borrow_and_are_waited_for() {
    common::hide_panics_starting_with(DELIBERATE);
    within("scope streams", || {
        let pool = ThreadPool::new(3);
        let text: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
        let mut got: HashMap<RequestId, Vec<String>> = HashMap::new();
        let mut ids = Vec::new();
        let added = pool.scope(|s| {
            for chunk in text.chunks(7) {
                let id = s
                    .put_streaming(
                        |lines: &[String], out: &CollectorEmitter<'_, String>| {
                            lines.iter().try_for_each(|line| out.emit(line.clone()))
                        },
                        chunk,
                    )
                    .unwrap();
                ids.push(id);
            }
            // A stream that adds a 'static stream to the scope.
            let parent = s
                .put_streaming(
                    |first: &String, out: &CollectorEmitter<'_, String>| {
                        let owned = first.clone();
                        out.add_streaming(
                            move |_: (), out: &CollectorEmitter<'_, String>| {
                                out.emit(format!("added after {owned}"))
                            },
                            (),
                        )
                        .expect("the pool is open");
                        Ok(())
                    },
                    &text[0],
                )
                .unwrap();
            for (id, line) in s.outcomes() {
                got.entry(id).or_default().push(line.unwrap());
            }
            parent
        });
        let expected: Vec<Vec<String>> = text.chunks(7).map(<[String]>::to_vec).collect();
        for (id, lines) in ids.iter().zip(expected) {
            assert_eq!(got[id], lines);
        }
        assert!(!got.contains_key(&added), "the parent emitted nothing");
        assert_eq!(got.len(), ids.len() + 1);
        let (_, from_added) = got.iter().find(|(id, _)| !ids.contains(id)).unwrap();
        assert_eq!(from_added, &["added after line 0"]);

        // The body panics with streams still running: the scope waits for
        // them (each emits until its end), then the panic goes on.
        let emitted = counter();
        let (held, latch) = gate();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.put_streaming(
                    |count: &std::sync::atomic::AtomicUsize, out: &CollectorEmitter<'_, u32>| {
                        latch.hold();
                        for i in 0..100 {
                            out.emit(i)?;
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(())
                    },
                    &*emitted,
                )
                .unwrap();
                held.await_start();
                held.open();
                panic!("{DELIBERATE} in the body");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(
            emitted.load(Ordering::SeqCst),
            100,
            "the stream ran to its end"
        );
    });
}
