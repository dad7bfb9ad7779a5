//! Collectors and scopes: outcomes typed and handled on the collector's
//! thread, callbacks that are neither `Send` nor `'static`, and a scope that
//! returns only when every request put in it has been accounted for.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::thread;

use callpool::{PutError, TaskError, ThreadPool};
use common::{counter, gate, hit_counters, within};

const DELIBERATE: &str = "collector: deliberate panic";

/// Each outcome comes back once, typed, on the collector's thread; the
/// handle's own count is not touched.
#[test]
fn outcomes_come_back_once_each_on_the_collectors_thread() {
    within("outcomes", || {
        let pool = ThreadPool::new(4);
        let me = thread::current().id();
        let mut collector = pool.collector::<u64>();
        let hits = hit_counters(1_000);
        let mut ids = HashMap::new();
        for n in 0..1_000u64 {
            let id = collector.put(|n: u64| n * n, n).unwrap();
            ids.insert(id, n);
        }
        assert_eq!(pool.pending(), 0, "the handle counts none of them");
        let mut handled = 0;
        for (id, outcome) in collector.outcomes() {
            assert_eq!(thread::current().id(), me);
            let n = ids[&id];
            assert_eq!(outcome, Ok(n * n));
            hits[n as usize].fetch_add(1, Ordering::SeqCst);
            handled += 1;
        }
        assert_eq!(handled, 1_000);
        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1));
        assert_eq!(collector.pending(), 0);
    });
}

/// Callbacks given with the request hold an `Rc<RefCell<_>>` (not `Send`)
/// and a `&mut` local through `wait_with`: they run here, each once.
#[test]
fn callbacks_that_stay_home_hold_rc_refcell_and_mut_locals() {
    let pool = ThreadPool::new(3);
    let me = thread::current().id();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut total = 0u64;
    let mut collector = pool.collector::<u64>();
    for n in 0..100u64 {
        let seen = Rc::clone(&seen);
        collector
            .put_then(
                |n: u64| n + 1,
                n,
                move |outcome| {
                    assert_eq!(thread::current().id(), me);
                    seen.borrow_mut().push(outcome.unwrap());
                },
            )
            .unwrap();
        collector.put(|n: u64| n, n).unwrap();
    }
    let handled = collector.wait_with(|_, outcome| total += outcome.unwrap());
    assert_eq!(handled, 200);
    assert_eq!(total, (0..100).sum::<u64>());
    let mut seen = seen.borrow().clone();
    seen.sort_unstable();
    assert_eq!(seen, (1..=100).collect::<Vec<u64>>());
}

/// Fallible callables, panics: each reaches the collector as its error.
#[test]
fn failures_and_panics_reach_the_collector() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let mut collector = pool.fallible_collector::<u32, String>();
    let bad = collector
        .put_fallible(|_: ()| Err("no".to_string()), ())
        .unwrap();
    let boom = collector
        .put(|_: ()| -> u32 { panic!("{DELIBERATE}") }, ())
        .unwrap();
    let good = collector.put_fallible(|n: u32| Ok(n), 3).unwrap();
    let mut got: HashMap<_, _> = collector.outcomes().collect();
    assert_eq!(got.remove(&bad), Some(Err(TaskError::Failed("no".into()))));
    assert_eq!(
        got.remove(&boom),
        Some(Err(TaskError::Panicked(DELIBERATE.into())))
    );
    assert_eq!(got.remove(&good), Some(Ok(3)));
    assert!(got.is_empty());
}

/// A scope returns only after every callback ran, even those of requests
/// still held by a gate when its body returned.
#[test]
fn a_scope_returns_after_every_callback_ran() {
    within("scope", || {
        let pool = ThreadPool::new(2);
        let (held, latch) = gate();
        let log = RefCell::new(Vec::new());
        // The gate opens only once the body has returned: the held request
        // is still running when the scope starts draining.
        let (body_done, body_returned) = std::sync::mpsc::channel::<()>();
        let opener = thread::spawn(move || {
            held.await_start();
            body_returned.recv().unwrap();
            held.open();
        });
        pool.scope(|s| {
            s.put_then(
                move |_: ()| latch.hold(),
                (),
                |_| log.borrow_mut().push("held"),
            )
            .unwrap();
            for _ in 0..10 {
                s.put_then(|_: ()| (), (), |_| log.borrow_mut().push("quick"))
                    .unwrap();
            }
            body_done.send(()).unwrap();
        });
        opener.join().unwrap();
        let log = log.into_inner();
        assert_eq!(log.len(), 11);
        assert_eq!(log.iter().filter(|l| **l == "held").count(), 1);
    });
}

/// A panicking callback: the others still run, then the panic passes on.
/// A panicking body: every request is still accounted for first.
#[test]
fn a_panic_in_a_scope_passes_on_after_everything_is_accounted_for() {
    common::hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(2);
    let ran = counter();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for i in 0..20u32 {
                let ran = &ran;
                s.put_then(
                    |i: u32| i,
                    i,
                    move |outcome| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        if outcome == Ok(7) {
                            panic!("{DELIBERATE} in a callback");
                        }
                    },
                )
                .unwrap();
            }
        })
    }));
    assert!(result.is_err());
    assert_eq!(ran.load(Ordering::SeqCst), 20, "every callback ran");

    let ran = counter();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for i in 0..20u32 {
                let ran = &ran;
                s.put_then(
                    |i: u32| i,
                    i,
                    move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    },
                )
                .unwrap();
            }
            panic!("{DELIBERATE} in the body");
        })
    }));
    let message = result.unwrap_err();
    assert!(message
        .downcast_ref::<String>()
        .is_some_and(|m| m.contains("in the body")));
    assert_eq!(ran.load(Ordering::SeqCst), 20, "every callback ran first");
}

/// A put the pool refuses comes back as an error, and its request never
/// counts: dropping the request it hands back does not disturb the rest.
#[test]
fn a_refused_put_is_not_counted() {
    within("refused", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let mut collector = pool.collector::<u8>();
        collector.put(|n: u8| n, 1).unwrap();
        collector.wait_with(|_, _| {});
        drop(other.shutdown_now());
        let refused = collector.put(|n: u8| n, 2);
        assert!(matches!(refused, Err(PutError::ShutDown(_))));
        drop(refused);
        assert_eq!(collector.pending(), 0);
        assert_eq!(collector.wait_with(|_, _| panic!("nothing pending")), 0);
    });
}

/// A collector's put that waits for room while one of the handle's
/// callbacks, run meanwhile to unblock a stuck worker, panics: the panic
/// goes on, and nothing was put. No outcome of it comes out of the
/// collector later, and a callback given with it never runs. (Its
/// `Cancelled` came out of `outcomes` under an id no put had returned, and
/// took the place of its callback.)
#[test]
fn a_collector_put_interrupted_by_a_callbacks_panic_put_nothing() {
    common::hide_panics_starting_with("collector: deliberate");
    let (interrupted, outcomes, then_ran) = within("interrupted collector put", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .result_capacity(1)
            .build()
            .unwrap();
        // Its result fills the result queue; its callback panics.
        pool.put_request(
            callpool::WorkRequest::new(|x: u32| x, 1)
                .on_result(|_, _| panic!("collector: deliberate")),
        )
        .unwrap();
        // Then the worker finishes this one and is stuck delivering it, with
        // the request queue full behind it.
        let (started, latch) = gate();
        pool.put_request(callpool::WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        started.await_start();
        pool.put_request(callpool::WorkRequest::new(|x: u32| x, 3))
            .unwrap();
        started.open();
        let then_ran = counter();
        let mut collector = pool.collector::<u32>();
        let ran = then_ran.clone();
        let interrupted = panic::catch_unwind(AssertUnwindSafe(|| {
            collector.put_then(
                |x: u32| x,
                4,
                move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
            )
        }))
        .is_err();
        let mut outcomes = Vec::new();
        collector.wait_with(|id, outcome| outcomes.push((id, outcome)));
        drop(collector);
        pool.wait().unwrap();
        assert_eq!(pool.pending(), 0);
        (interrupted, outcomes, then_ran.load(Ordering::SeqCst))
    });
    assert!(interrupted, "the callback's panic goes on through the put");
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert_eq!(then_ran, 0);
}

/// `poll_with` never waits: with every request held behind a busy worker
/// it handles nothing; once they run, polls between "frames" hand each
/// outcome without a callback to `each` and run each callback exactly
/// once, on this thread, over `Rc` state, until nothing is pending.
#[test]
fn poll_with_handles_what_has_arrived_without_waiting() {
    const N: u64 = 20;
    let pool = ThreadPool::new(1);
    let (gate, latch) = gate();
    pool.put_request(callpool::WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    gate.await_start();
    let here = thread::current().id();
    let called = Rc::new(RefCell::new(Vec::new()));
    let mut results = pool.collector::<u64>();
    for n in 0..N {
        if n % 2 == 0 {
            let called = Rc::clone(&called);
            results
                .put_then(
                    |n: u64| n,
                    n,
                    move |outcome| {
                        assert_eq!(thread::current().id(), here);
                        called.borrow_mut().push(outcome.unwrap());
                    },
                )
                .unwrap();
        } else {
            results.put(|n: u64| n, n).unwrap();
        }
    }
    let mut plain = Vec::new();
    assert_eq!(results.poll_with(|_, o| plain.push(o.unwrap())), 0);
    assert_eq!(results.pending() as u64, N);
    gate.open();
    let mut handled = 0;
    let deadline = std::time::Instant::now() + common::HANG;
    while results.pending() > 0 {
        assert!(std::time::Instant::now() < deadline, "outcomes never came");
        handled += results.poll_with(|_, o| plain.push(o.unwrap()));
        thread::yield_now();
    }
    assert_eq!(handled as u64, N);
    assert_eq!(results.poll_with(|_, _| unreachable!()), 0);
    let mut called = called.borrow().clone();
    called.sort_unstable();
    plain.sort_unstable();
    assert_eq!(called, (0..N).filter(|n| n % 2 == 0).collect::<Vec<_>>());
    assert_eq!(plain, (0..N).filter(|n| n % 2 == 1).collect::<Vec<_>>());
}

/// Work that makes work into one collector: a chain in which each request
/// adds the next, and a tree in which each adds two. `outcomes` never ends
/// while an added request can still add (it would yield fewer outcomes),
/// and yields each request once; rounds on two workers.
#[test]
fn outcomes_end_only_after_every_request_added_transitively() {
    fn chain(cx: &callpool::CollectorContext<'_, u32>, left: u32) -> u32 {
        if left > 0 {
            cx.add_with_context(chain, left - 1).unwrap();
        }
        left
    }
    fn tree(cx: &callpool::CollectorContext<'_, u32>, node: u32) -> u32 {
        for child in [2 * node + 1, 2 * node + 2] {
            if child < 255 {
                cx.add_with_context(tree, child).unwrap();
            }
        }
        node
    }
    within("added requests", || {
        let pool = ThreadPool::new(2);
        for _ in 0..200 {
            let mut outcomes = pool.collector::<u32>();
            outcomes.put_with_context(chain, 30).unwrap();
            let mut got: Vec<u32> = outcomes.outcomes().map(|(_, o)| o.unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, (0..=30).collect::<Vec<_>>());
            assert_eq!(outcomes.pending(), 0);

            let mut ids = std::collections::HashSet::new();
            let mut got = Vec::new();
            outcomes.put_with_context(tree, 0).unwrap();
            outcomes.wait_with(|id, o| {
                assert!(ids.insert(id), "{id} handled twice");
                got.push(o.unwrap());
            });
            got.sort_unstable();
            assert_eq!(got, (0..255).collect::<Vec<_>>());
        }
        // None of them touched the handle's own count.
        assert_eq!(pool.pending(), 0);
    });
}

/// An added request's typed error and panic come back as for a put one;
/// the context still joins and puts on the handle.
#[test]
fn added_requests_fail_and_panic_as_put_ones_do() {
    common::hide_panics_starting_with(DELIBERATE);
    within("added failures", || {
        let pool = ThreadPool::new(2);
        let handle_got = counter();
        let on_handle = std::sync::Arc::clone(&handle_got);
        let mut outcomes = pool.fallible_collector::<u32, String>();
        outcomes
            .put_fallible_with_context(
                move |cx, n: u32| {
                    cx.add_fallible(|n: u32| Err(format!("no {n}")), n + 1)
                        .unwrap();
                    cx.add(|_: ()| -> u32 { panic!("{DELIBERATE}") }, ())
                        .unwrap();
                    let (a, b) = cx.join(|_| n * 2, |_| n * 3);
                    cx.put(
                        callpool::WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
                            on_handle.fetch_add(1, Ordering::SeqCst);
                        }),
                    )
                    .unwrap();
                    Ok(a + b)
                },
                4,
            )
            .unwrap();
        let mut got: Vec<String> = outcomes
            .outcomes()
            .map(|(_, outcome)| match outcome {
                Ok(v) => format!("ok {v}"),
                Err(TaskError::Failed(why)) => why,
                Err(TaskError::Panicked(_)) => "panicked".to_string(),
                Err(other) => format!("{other:?}"),
            })
            .collect();
        got.sort();
        assert_eq!(got, ["no 5", "ok 20", "panicked"]);
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(handle_got.load(Ordering::SeqCst), 1);
    });
}

/// A request added after the pool closed is refused; dropped, it ends at
/// the collector as `Cancelled`, so the collector still ends.
#[test]
fn an_added_request_refused_as_the_pool_closes_ends_cancelled() {
    within("added after close", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = gate();
        let mut outcomes = pool.collector::<&'static str>();
        outcomes
            .put_with_context(
                move |cx, ()| {
                    latch.hold();
                    match cx.add(|_: ()| "ran", ()) {
                        Err(PutError::ShutDown(request)) => drop(request),
                        other => panic!("not refused: {other:?}"),
                    }
                    "parent"
                },
                (),
            )
            .unwrap();
        held.await_start();
        // `close` would wait for the parent; this returns at once.
        let handed_back = pool.clone().shutdown_now();
        assert!(handed_back.is_empty());
        held.open();
        let mut got: Vec<String> = outcomes.outcomes().map(|(_, o)| format!("{o:?}")).collect();
        got.sort();
        assert_eq!(got, ["Err(Cancelled)", "Ok(\"parent\")"]);
    });
}

/// A collector opened inside the only worker's callable, whose requests
/// add more: the worker runs them all itself.
#[test]
fn added_requests_of_a_collector_on_the_only_worker_run_there() {
    fn fan(cx: &callpool::CollectorContext<'_, u32>, n: u32) -> u32 {
        if n == 0 {
            for i in 1..=10 {
                cx.add_with_context(fan, i).unwrap();
            }
        }
        n
    }
    within("added on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let ticket = pool
            .submit(
                move |()| {
                    let mut outcomes = inner.collector::<u32>();
                    outcomes.put_with_context(fan, 0).unwrap();
                    let mut got: Vec<u32> = outcomes.outcomes().map(|(_, o)| o.unwrap()).collect();
                    got.sort_unstable();
                    got
                },
                (),
            )
            .unwrap();
        assert_eq!(ticket.wait().unwrap(), (0..=10).collect::<Vec<_>>());
    });
}

/// An added request whose outcome arrives before its parent's (the parent
/// waits for it to run): counted all the same, and handled once.
#[test]
fn an_added_request_that_ends_before_its_parent_is_counted() {
    within("child before parent", || {
        let pool = ThreadPool::new(2);
        for _ in 0..50 {
            let mut outcomes = pool.collector::<&'static str>();
            outcomes
                .put_with_context(
                    |cx, ()| {
                        let (ran_tx, ran) = std::sync::mpsc::channel();
                        cx.add(
                            move |()| {
                                ran_tx.send(()).unwrap();
                                "child"
                            },
                            (),
                        )
                        .unwrap();
                        // The other worker takes it once the slot is
                        // handed off; this one waits for it to have run.
                        ran.recv().unwrap();
                        "parent"
                    },
                    (),
                )
                .unwrap();
            let mut got: Vec<&str> = outcomes.outcomes().map(|(_, o)| o.unwrap()).collect();
            got.sort_unstable();
            assert_eq!(got, ["child", "parent"]);
        }
    });
}

/// A loop of `poll_with` that never polls the handle, with the collector's
/// request queued behind the handle's callback requests and the only
/// worker stuck on the handle's full result queue: each poll that finds
/// nothing arrived makes room there (running the handle's callbacks on
/// this thread, as `wait_with` would), so the loop ends. Every callback
/// runs once, and the collector's outcome comes back once.
#[test]
fn poll_with_makes_room_on_the_handles_full_result_queue() {
    within("poll_with behind a stuck worker", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .result_capacity(1)
            .build()
            .unwrap();
        let here = thread::current().id();
        let called = hit_counters(3);
        for i in 0..3usize {
            let called = std::sync::Arc::clone(&called);
            pool.put_request(
                callpool::WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                    assert_eq!(thread::current().id(), here);
                    called[i].fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap();
        }
        let mut results = pool.collector::<u64>();
        results.put(|n: u64| n * 3, 7).unwrap();
        let mut got = Vec::new();
        let mut handled = 0;
        while results.pending() > 0 {
            handled += results.poll_with(|_, o| got.push(o.unwrap()));
            thread::yield_now();
        }
        assert_eq!((handled, got), (1, vec![21]));
        drop(results);
        pool.wait().unwrap();
        assert!(called.iter().all(|c| c.load(Ordering::SeqCst) == 1));
        assert_eq!(pool.stats().completed, 4);
    });
}

/// `next_outcome` leaves the collector free between outcomes: a loop puts
/// the work each outcome found, with at most `LIMIT` in flight, and every
/// node of a tree is visited exactly once, its outcome handed back once,
/// on this thread.
#[test]
fn next_outcome_lets_the_loop_put_what_each_outcome_found() {
    const NODES: u64 = 2_000;
    const LIMIT: usize = 3;
    within("a walk fed by its own loop", || {
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let visits = hit_counters(NODES as usize);
        let counted = std::sync::Arc::clone(&visits);
        let visit = move |n: u64| {
            counted[n as usize].fetch_add(1, Ordering::SeqCst);
            [2 * n + 1, 2 * n + 2]
                .into_iter()
                .filter(|&m| m < NODES)
                .collect::<Vec<u64>>()
        };
        let mut walk = pool.collector::<Vec<u64>>();
        let mut frontier = vec![0];
        let (mut outcomes, mut most) = (0, 0);
        loop {
            while walk.pending() < LIMIT {
                let Some(n) = frontier.pop() else { break };
                walk.put(visit.clone(), n).unwrap();
            }
            most = most.max(walk.pending());
            let Some((_, found)) = walk.next_outcome() else {
                break;
            };
            assert_eq!(thread::current().id(), me);
            outcomes += 1;
            frontier.extend(found.unwrap());
        }
        assert!(frontier.is_empty());
        assert_eq!(outcomes, NODES);
        assert_eq!(most, LIMIT, "the limit was never reached, or passed");
        common::assert_each_once("visit", &visits);
        assert_eq!(walk.next_outcome(), None, "nothing pending: at once");
        assert_eq!(pool.pending(), 0, "the handle counts none of them");
    });
}

/// `next_outcome` runs the callbacks of requests put with one while it
/// waits, hands back only the others, and comes back in finishing order: a
/// request held on a gate comes after one put later. A callback's panic
/// passes through it and loses nothing: the next call goes on.
#[test]
fn next_outcome_runs_callbacks_meanwhile_and_a_panic_in_one_loses_nothing() {
    common::hide_panics_starting_with(DELIBERATE);
    within("next_outcome with callbacks", || {
        let pool = ThreadPool::new(2);
        let called = Rc::new(RefCell::new(Vec::new()));
        let mut c = pool.collector::<u32>();
        let (gate, slow) = put_held(&mut c, 1);
        let record = Rc::clone(&called);
        c.put_then(|n: u32| n, 2, move |v| record.borrow_mut().push(v))
            .unwrap();
        c.put_then(|n: u32| n, 3, |_| panic!("{DELIBERATE}"))
            .unwrap();
        let fast = c.put(|n: u32| n, 4).unwrap();
        // The two callbacks and the fast outcome come before the gated one;
        // the panicking callback's panic comes out of some call.
        let mut got = Vec::new();
        let mut panics = 0;
        while got.is_empty() || panics < 1 {
            match panic::catch_unwind(AssertUnwindSafe(|| c.next_outcome())) {
                Ok(Some(outcome)) => got.push(outcome),
                Ok(None) => panic!("ended with the gated request pending"),
                Err(_) => panics += 1,
            }
        }
        assert_eq!((got.as_slice(), panics), (&[(fast, Ok(4))][..], 1));
        gate.open();
        assert_eq!(c.next_outcome(), Some((slow, Ok(1))));
        assert_eq!(c.next_outcome(), None);
        assert_eq!(*called.borrow(), [Ok(2)]);
    });
}

/// `try_next_outcome` never blocks: `Pending` while outcomes are out,
/// `Ready(None)` once nothing is pending; callbacks of requests put with
/// one run as it finds their outcomes, and each outcome comes back once,
/// whether through it or through `next_outcome`.
#[test]
fn try_next_outcome_looks_without_blocking_and_hands_each_outcome_back_once() {
    use std::task::Poll;
    within("try_next_outcome", || {
        let pool = ThreadPool::new(2);
        let mut c = pool.collector::<u32>();
        let (gate, held) = put_held(&mut c, 0);
        let called = Rc::new(RefCell::new(0));
        for n in 1..=50u32 {
            if n % 2 == 0 {
                let called = Rc::clone(&called);
                c.put_then(|n: u32| n, n, move |v| *called.borrow_mut() += v.unwrap())
                    .unwrap();
            } else {
                c.put(|n: u32| n, n).unwrap();
            }
        }
        let mut seen = Vec::new();
        // Everything but the held one comes back through looks and waits,
        // one outcome at a time; the held one keeps it from `Ready(None)`.
        while seen.len() < 25 {
            match c.try_next_outcome() {
                Poll::Ready(Some((_, v))) => seen.push(v.unwrap()),
                Poll::Ready(None) => panic!("ended with the held request pending"),
                Poll::Pending if seen.len() % 2 == 0 => thread::yield_now(),
                Poll::Pending => seen.push(c.next_outcome().unwrap().1.unwrap()),
            }
        }
        // Looks run the callbacks of the even ones as their outcomes come,
        // and say `Pending` while the held one is out.
        let even_sum = (1..=25).map(|k| 2 * k).sum::<u32>();
        while *called.borrow() < even_sum {
            assert_eq!(c.try_next_outcome(), Poll::Pending);
            thread::yield_now();
        }
        assert_eq!(*called.borrow(), even_sum);
        assert_eq!(c.try_next_outcome(), Poll::Pending);
        assert_eq!(c.pending(), 1);
        gate.open();
        let last = loop {
            match c.try_next_outcome() {
                Poll::Ready(outcome) => break outcome,
                Poll::Pending => thread::yield_now(),
            }
        };
        assert_eq!(last, Some((held, Ok(0))));
        assert_eq!(c.try_next_outcome(), Poll::Ready(None));
        seen.sort_unstable();
        assert_eq!(seen, (1..=50).step_by(2).collect::<Vec<u32>>());
    });
}

/// Inside a callable on a pool of one worker, a loop of looks never waits
/// for a worker: with nothing arrived, each look runs one of the
/// collector's requests on the spot.
#[test]
fn try_next_outcome_on_the_only_worker_runs_its_requests_there() {
    use std::task::Poll;
    within("try_next_outcome on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.new_handle();
        let ticket = pool
            .submit(
                move |n: u32| {
                    let mut c = inner.collector::<u32>();
                    for k in 1..=n {
                        c.put(|k: u32| k * k, k).unwrap();
                    }
                    let mut sum = 0;
                    loop {
                        match c.try_next_outcome() {
                            Poll::Ready(Some((_, v))) => sum += v.unwrap(),
                            Poll::Ready(None) => break sum,
                            Poll::Pending => panic!("nothing ran on the only worker"),
                        }
                    }
                },
                10,
            )
            .unwrap();
        assert_eq!(ticket.wait_timeout(common::HANG).expect("hang"), Ok(385));
    });
}

/// Puts on `c` a request that returns `value` once its gate opens, and
/// returns when a worker has started it.
fn put_held(
    c: &mut callpool::Collector<'_, u32>,
    value: u32,
) -> (common::Gate, callpool::RequestId) {
    let (gate, latch) = gate();
    let id = c
        .put(
            move |latch: common::Latch| {
                latch.hold();
                value
            },
            latch,
        )
        .unwrap();
    gate.await_start();
    (gate, id)
}

/// `try_put` on a full bounded queue puts nothing and hands both parts
/// back uncalled; nothing refused is pending, no outcome of it ever comes
/// back, and the parts put again later run once. A closed pool refuses it
/// at once, with its parts.
#[test]
fn try_put_on_a_full_queue_hands_both_parts_back_and_nothing_comes_of_them() {
    within("try_put on a full queue", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(1)
            .build()
            .unwrap();
        let mut c = pool.collector::<u32>();
        let first = c
            .try_put(|n: u32| n, 1)
            .unwrap_or_else(|_| panic!("room for one"));
        let calls = counter();
        let token = std::sync::Arc::new(());
        let counted = std::sync::Arc::clone(&calls);
        let refused = c
            .try_put(
                move |(n, _token): (u32, std::sync::Arc<()>)| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    n * 10
                },
                (2, std::sync::Arc::clone(&token)),
            )
            .expect_err("the queue was full");
        assert!(refused.is_full() && !refused.is_shut_down(), "{refused}");
        assert_eq!(c.pending(), 1, "the refused one is not pending");
        let (times_ten, (n, arg_token)) = refused.into_parts();
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            2,
            "a copy of the argument stayed behind"
        );
        let refused = c
            .try_put(|s: &'static str| s.len() as u32, "3")
            .expect_err("still full");
        assert!(refused.is_full());
        assert_eq!(refused.into_parts().1, "3");

        pool.create_workers(1).unwrap();
        assert_eq!(c.next_outcome(), Some((first, Ok(1))));
        let again = c
            .try_put(times_ten, (n, arg_token))
            .unwrap_or_else(|_| panic!("room again"));
        assert_eq!(c.next_outcome(), Some((again, Ok(20))));
        assert_eq!(
            c.next_outcome(),
            None,
            "nothing of the refused puts came back"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            1,
            "the call dropped its argument"
        );

        pool.close().unwrap();
        let refused = c.try_put(|n: u32| n, 4).expect_err("the pool is closed");
        assert!(refused.is_shut_down(), "{refused}");
        assert_eq!(refused.into_parts().1, 4);
        assert_eq!(c.pending(), 0);
    });
}

/// `try_put` racing a `close` from another thread: every callable ends
/// exactly once, as an outcome (it ran), as `Cancelled` (it never ran),
/// or handed back refused (it never ran); nothing is lost or run twice.
#[test]
fn try_put_racing_close_ends_each_callable_exactly_once() {
    use std::sync::atomic::AtomicUsize;
    const ROUNDS: usize = 300;
    const EACH: usize = 40;
    within("try_put racing close", || {
        for round in 0..ROUNDS {
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .build()
                .unwrap();
            let closer = pool.new_handle();
            let runs =
                std::sync::Arc::new((0..EACH).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
            let after = round % EACH;
            let (go, started) = std::sync::mpsc::channel::<()>();
            let closing = thread::spawn(move || {
                let _ = started.recv();
                closer.close().unwrap();
            });
            let mut c = pool.collector::<usize>();
            let mut ended = vec![0usize; EACH];
            let mut ran_ok = 0;
            let mut refused_shut = 0;
            for i in 0..EACH {
                if i == after {
                    go.send(()).unwrap();
                }
                let r = std::sync::Arc::clone(&runs);
                let mut parts = Some((
                    move |i: usize| {
                        r[i].fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                ));
                while let Some((f, x)) = parts.take() {
                    match c.try_put(f, x) {
                        Ok(_) => {}
                        Err(refused) if refused.is_full() => {
                            parts = Some(refused.into_parts());
                            // Room comes as the worker takes one; take
                            // what has come back meanwhile.
                            if let std::task::Poll::Ready(Some((_, outcome))) = c.try_next_outcome()
                            {
                                match outcome {
                                    Ok(k) => {
                                        ended[k] += 1;
                                        ran_ok += 1;
                                    }
                                    Err(TaskError::Cancelled) => {}
                                    Err(e) => panic!("unexpected {e:?}"),
                                }
                            }
                            thread::yield_now();
                        }
                        Err(refused) => {
                            assert!(refused.is_shut_down(), "{refused}");
                            ended[refused.into_parts().1] += 1;
                            refused_shut += 1;
                        }
                    }
                }
            }
            let mut cancelled = 0;
            while let Some((_, outcome)) = c.next_outcome() {
                match outcome {
                    Ok(k) => {
                        ended[k] += 1;
                        ran_ok += 1;
                    }
                    Err(TaskError::Cancelled) => cancelled += 1,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            closing.join().unwrap();
            let runs_total: usize = runs.iter().map(|r| r.load(Ordering::SeqCst)).sum();
            assert_eq!(runs_total, ran_ok, "round {round}: runs and outcomes");
            assert!(
                runs.iter().all(|r| r.load(Ordering::SeqCst) <= 1),
                "round {round}: run twice"
            );
            assert_eq!(
                ran_ok + cancelled + refused_shut,
                EACH,
                "round {round}: each ended once"
            );
            assert!(ended.iter().all(|&n| n <= 1), "round {round}: {ended:?}");
        }
    });
}

/// `put_timeout` on a queue that stays full waits, then puts nothing and
/// hands both parts back uncalled, with nothing refused pending or ever
/// coming back; with no worker to empty the queue it refuses at once as
/// `is_no_workers`; put again once there is room, the parts run once.
#[test]
fn put_timeout_hands_both_parts_back_once_its_time_is_up() {
    within("put_timeout", || {
        let (pool, gate) = common::held_worker(1);
        let mut c = pool.collector::<u32>();
        let first = c.put(|n: u32| n, 1).unwrap();
        let calls = counter();
        let counted = std::sync::Arc::clone(&calls);
        let token = std::sync::Arc::new(());
        let refused = c
            .put_timeout(
                move |(n, _token): (u32, std::sync::Arc<()>)| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    n * 10
                },
                (2, std::sync::Arc::clone(&token)),
                std::time::Duration::from_millis(5),
            )
            .expect_err("the queue stayed full");
        assert!(refused.is_timed_out(), "{refused}");
        assert_eq!(c.pending(), 1, "the refused one is not pending");
        let (times_ten, (n, arg_token)) = refused.into_parts();
        assert_eq!(std::sync::Arc::strong_count(&token), 2);
        gate.open();
        assert_eq!(c.next_outcome(), Some((first, Ok(1))));
        let again = c
            .put_timeout(times_ten, (n, arg_token), common::HANG)
            .unwrap_or_else(|e| panic!("room again: {e}"));
        assert_eq!(c.next_outcome(), Some((again, Ok(20))));
        assert_eq!(
            c.next_outcome(),
            None,
            "nothing of the refused put came back"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(std::sync::Arc::strong_count(&token), 1);

        let idle = ThreadPool::builder()
            .workers(0)
            .queue_capacity(1)
            .build()
            .unwrap();
        let mut c = idle.collector::<u32>();
        c.put_timeout(|n: u32| n, 1, common::HANG).unwrap();
        let refused = c
            .put_timeout(|n: u32| n, 2, common::HANG)
            .expect_err("nobody empties the queue");
        assert!(refused.is_no_workers(), "{refused}");
        assert_eq!(refused.into_parts().1, 2);
        assert_eq!(c.pending(), 1);
    });
}

/// On a worker of its own pool, `put_timeout` never waits for room (the
/// worker could wait for itself): on a full queue its requests go past the
/// capacity, and the collector's outcomes all come back there.
#[test]
fn put_timeout_on_a_worker_goes_past_a_full_queue() {
    within("put_timeout on a worker", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let handle = pool.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        pool.execute(move || {
            let mut c = handle.collector::<u32>();
            let mut put = 0;
            for n in 0..5 {
                if c.put_timeout(|n: u32| n * n, n, common::HANG).is_ok() {
                    put += 1;
                }
            }
            let mut squares: Vec<u32> = c.outcomes().map(|(_, o)| o.unwrap()).collect();
            squares.sort_unstable();
            tx.send((put, squares)).unwrap();
        })
        .unwrap();
        let (put, squares) = rx.recv_timeout(common::HANG).expect("the callable ended");
        assert_eq!(put, 5);
        assert_eq!(squares, [0, 1, 4, 9, 16]);
        pool.wait().unwrap();
    });
}

/// `CollectorContext::join`: both halves add to the collector, wherever
/// they run (one worker: the join runs both; four: another worker may take
/// the second), and reading ends only after every added request's outcome.
#[test]
fn both_halves_of_a_collector_join_add_to_the_collector() {
    fn split(cx: &callpool::CollectorContext<'_, u64>, (lo, hi): (u64, u64)) -> u64 {
        if hi - lo <= 8 {
            cx.add(|(lo, hi): (u64, u64)| (lo..hi).sum::<u64>(), (lo, hi))
                .unwrap();
            return 1;
        }
        let mid = lo + (hi - lo) / 2;
        let (a, b) = cx.join(|cx| split(cx, (lo, mid)), |cx| split(cx, (mid, hi)));
        a + b
    }
    within("collector join", || {
        for workers in [1, 4] {
            let pool = ThreadPool::new(workers);
            for round in 0..50u64 {
                let hi = 1_000 + round;
                let mut sums = pool.collector::<u64>();
                let root = sums
                    .put_with_context(
                        // The root returns how many pieces it added.
                        |cx: &callpool::CollectorContext<'_, u64>, range| split(cx, range),
                        (0, hi),
                    )
                    .unwrap();
                let (mut added, mut total, mut pieces) = (0u64, 0u64, None);
                for (id, outcome) in sums.outcomes() {
                    let value = outcome.unwrap();
                    if id == root {
                        assert!(pieces.replace(value).is_none(), "the root ends once");
                    } else {
                        added += 1;
                        total += value;
                    }
                }
                assert_eq!(pieces, Some(added), "{workers} workers, round {round}");
                assert_eq!(total, hi * (hi - 1) / 2);
                assert_eq!(sums.pending(), 0);
            }
        }
    });
}

/// A half that panics after adding: what it added still comes back, the
/// parent's outcome is the panic, and reading ends after both.
#[test]
fn a_panicking_half_of_a_collector_join_keeps_what_it_added() {
    common::hide_panics_starting_with(DELIBERATE);
    within("collector join panic", || {
        let pool = ThreadPool::new(2);
        let mut out = pool.collector::<u32>();
        let root = out
            .put_with_context(
                |cx: &callpool::CollectorContext<'_, u32>, n: u32| {
                    cx.join(
                        |cx| cx.add(|n: u32| n + 1, n).unwrap(),
                        |cx| {
                            cx.add(|n: u32| n + 2, n).unwrap();
                            panic!("{DELIBERATE}: second half");
                        },
                    );
                    n
                },
                10,
            )
            .unwrap();
        let mut values = Vec::new();
        let mut root_outcome = None;
        for (id, outcome) in out.outcomes() {
            if id == root {
                root_outcome = Some(outcome);
            } else {
                values.push(outcome.unwrap());
            }
        }
        values.sort_unstable();
        assert_eq!(values, [11, 12]);
        assert!(matches!(root_outcome, Some(Err(TaskError::Panicked(_)))));
    });
}

/// A collector's `Debug` counts what `pending()` counts: requests added
/// from workers too, before the collector has looked at them.
#[test]
fn debug_counts_added_requests_as_pending_does() {
    within("collector debug", || {
        let pool = ThreadPool::new(2);
        let (held, latch) = gate();
        let (added_tx, added) = std::sync::mpsc::channel();
        let mut out = pool.collector::<u32>();
        out.put_with_context(
            move |cx: &callpool::CollectorContext<'_, u32>, n: u32| {
                cx.add(
                    move |n: u32| {
                        latch.hold();
                        n
                    },
                    n + 1,
                )
                .unwrap();
                cx.add(|n: u32| n, n + 2).unwrap();
                added_tx.send(()).unwrap();
                n
            },
            1,
        )
        .unwrap();
        added.recv().unwrap();
        held.await_start();
        assert_eq!(out.pending(), 3);
        assert!(
            format!("{out:?}").contains("pending: 3"),
            "{out:?} against pending() = 3"
        );
        held.open();
        assert_eq!(out.outcomes().count(), 3);
        assert!(format!("{out:?}").contains("pending: 0"), "{out:?}");
    });
}
