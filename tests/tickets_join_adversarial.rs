//! Trial tests: tickets driven as futures (several wakers, timeouts, a
//! select, `FuturesUnordered`, tokio), cancel handles racing waits, panics
//! with payloads that are not strings, `Context::join` under panics,
//! resizes and a borrowed worker state, and the builder at its limits.

mod common;

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use callpool::{Context, TaskError, ThreadPool, Ticket, WorkRequest};
use common::{within, Dropped, HANG};
use futures::future::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};

const QUIET: &str = "trial: ";

fn quiet() {
    common::hide_panics(|m| {
        m.is_none_or(|m| m.starts_with(QUIET) || m.contains("already borrowed"))
    });
}

/// A waker that counts its wakes.
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<Counting>, Waker) {
    let c = Arc::new(Counting(AtomicUsize::new(0)));
    (Arc::clone(&c), Waker::from(Arc::clone(&c)))
}

// ---------------------------------------------------------------------------
// Tickets as futures.
// ---------------------------------------------------------------------------

/// Many tickets in a `FuturesUnordered`, half of them cancelled from
/// another thread while the set is driven: each comes out exactly once,
/// cancelled exactly when its handle's cancel said so.
#[test]
fn futures_unordered_with_cancels_from_another_thread_yields_each_once() {
    within("futures unordered with cancels", || {
        for round in 0..40 {
            let pool = ThreadPool::new(2);
            const N: usize = 200;
            let tickets: Vec<Ticket<usize>> = (0..N)
                .map(|i| pool.submit(|i: usize| i, i).unwrap())
                .collect();
            let handles: Vec<_> = tickets.iter().map(Ticket::cancel_handle).collect();
            let canceller = thread::spawn(move || {
                handles
                    .iter()
                    .enumerate()
                    .map(|(i, h)| i % 2 == 1 && h.cancel())
                    .collect::<Vec<bool>>()
            });
            let mut set: FuturesUnordered<_> = tickets
                .into_iter()
                .enumerate()
                .map(|(i, t)| t.map(move |o| (i, o)))
                .collect();
            let outcomes = futures::executor::block_on(async {
                let mut v = vec![None; N];
                while let Some((i, o)) = set.next().await {
                    assert!(v[i].is_none(), "round {round}: ticket {i} twice");
                    v[i] = Some(o);
                }
                v
            });
            let cancelled = canceller.join().unwrap();
            for (i, o) in outcomes.into_iter().enumerate() {
                let o = o.unwrap_or_else(|| panic!("round {round}: ticket {i} lost"));
                if cancelled[i] {
                    assert_eq!(o, Err(TaskError::Cancelled), "round {round}: {i}");
                } else {
                    assert_eq!(o, Ok(i), "round {round}: {i}");
                }
            }
        }
    });
}

/// A ticket polled by one waker, then by another on another thread: the
/// request's end wakes the last waker once and the first never, and the
/// next poll has the outcome.
#[test]
fn a_ticket_polled_by_two_wakers_on_two_threads_wakes_the_last_once() {
    within("two wakers", || {
        let pool = ThreadPool::new(1);
        for round in 0..200u32 {
            let (gate, latch) = common::gate();
            let mut ticket = pool
                .submit(
                    move |n: u32| {
                        latch.hold();
                        n
                    },
                    round,
                )
                .unwrap();
            gate.await_start();
            let (first, w1) = counting_waker();
            assert!(ticket
                .poll_unpin(&mut TaskContext::from_waker(&w1))
                .is_pending());
            let (second, w2) = counting_waker();
            let mut ticket = thread::spawn(move || {
                assert!(ticket
                    .poll_unpin(&mut TaskContext::from_waker(&w2))
                    .is_pending());
                ticket
            })
            .join()
            .unwrap();
            gate.open();
            common::until(|| second.0.load(Ordering::SeqCst) > 0);
            let (_, w3) = counting_waker();
            let polled = ticket.poll_unpin(&mut TaskContext::from_waker(&w3));
            assert_eq!(polled, Poll::Ready(Ok(round)), "round {round}");
            assert_eq!(first.0.load(Ordering::SeqCst), 0, "round {round}");
            assert_eq!(second.0.load(Ordering::SeqCst), 1, "round {round}");
        }
    });
}

/// `(&mut ticket).await` under a tokio timeout that runs out, raced with
/// the request's end, then awaited again from another task: never hangs,
/// and the outcome comes out exactly once.
#[test]
fn a_ticket_timed_out_on_tokio_then_awaited_again_from_another_task() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    within("tokio timeouts", move || {
        let pool = ThreadPool::new(2);
        rt.block_on(async move {
            for round in 0..300u64 {
                let mut ticket = pool
                    .submit(
                        move |n: u64| {
                            if n % 3 == 0 {
                                thread::sleep(Duration::from_micros(50));
                            }
                            n
                        },
                        round,
                    )
                    .unwrap();
                let timed =
                    tokio::time::timeout(Duration::from_micros(round % 100), &mut ticket).await;
                match timed {
                    Ok(outcome) => assert_eq!(outcome, Ok(round)),
                    Err(_) => {
                        let outcome = tokio::spawn(ticket).await.unwrap();
                        assert_eq!(outcome, Ok(round));
                    }
                }
            }
        });
    });
}

/// A select between two tickets: the winner's outcome comes out, and
/// the loser, awaited or waited on after, still has its own.
#[test]
fn the_ticket_a_select_left_still_has_its_outcome() {
    within("select", || {
        let pool = ThreadPool::new(2);
        for round in 0..300u32 {
            let mut a = pool.submit(|n: u32| n, round).unwrap();
            let mut b = pool.submit(|n: u32| n + 1_000_000, round).unwrap();
            let (won_a, first) =
                match futures::executor::block_on(futures::future::select(&mut a, &mut b)) {
                    futures::future::Either::Left((x, _)) => (true, x),
                    futures::future::Either::Right((y, _)) => (false, y),
                };
            if won_a {
                assert_eq!(first, Ok(round));
                assert_eq!(b.wait(), Ok(round + 1_000_000));
            } else {
                assert_eq!(first, Ok(round + 1_000_000));
                assert_eq!(futures::executor::block_on(a), Ok(round));
            }
        }
    });
}

/// A cancel handle on one thread races a `wait_timeout` loop on another,
/// with a worker racing both: cancelled exactly when the handle said so,
/// run exactly when not, and the loop always ends.
#[test]
fn a_cancel_handle_races_a_wait_timeout_loop_and_a_worker() {
    within("cancel vs wait_timeout", || {
        let pool = ThreadPool::new(1);
        for round in 0..2_000usize {
            let ran = Arc::new(AtomicUsize::new(0));
            let r = Arc::clone(&ran);
            let ticket = pool
                .submit(
                    move |n: usize| {
                        r.fetch_add(1, Ordering::SeqCst);
                        n
                    },
                    round,
                )
                .unwrap();
            let handle = ticket.cancel_handle();
            let waiter = thread::spawn(move || {
                let mut ticket = ticket;
                loop {
                    match ticket.wait_timeout(Duration::from_micros(1)) {
                        Ok(outcome) => return outcome,
                        Err(back) => ticket = back,
                    }
                }
            });
            let cancelled = handle.cancel();
            let outcome = waiter.join().unwrap();
            if cancelled {
                assert_eq!(outcome, Err(TaskError::Cancelled), "round {round}");
                assert_eq!(ran.load(Ordering::SeqCst), 0, "round {round}");
            } else {
                assert_eq!(outcome, Ok(round), "round {round}");
                assert_eq!(ran.load(Ordering::SeqCst), 1, "round {round}");
            }
            assert!(!handle.cancel());
        }
    });
}

/// Panics whose payloads are not strings reach the ticket as `Panicked`
/// with the documented placeholder, and the worker lives on.
#[test]
fn non_string_panic_payloads_reach_the_ticket_and_the_worker_lives_on() {
    quiet();
    let pool = ThreadPool::new(1);
    let a = pool
        .submit(|()| -> u8 { std::panic::panic_any(42u32) }, ())
        .unwrap();
    assert!(matches!(a.wait(), Err(TaskError::Panicked(_))));
    let b = pool
        .submit(
            |()| -> u8 {
                std::panic::panic_any(Box::new(String::from("boxed")) as Box<dyn Any + Send>)
            },
            (),
        )
        .unwrap();
    assert!(matches!(b.wait(), Err(TaskError::Panicked(_))));
    let c = pool.submit(|n: u8| n, 9).unwrap();
    assert_eq!(c.wait(), Ok(9));
    assert_eq!(pool.workers(), 1);
}

// ---------------------------------------------------------------------------
// Context::join.
// ---------------------------------------------------------------------------

/// Both halves panic, the second on another worker or here: the first
/// half's panic reaches the request; each half's captures are dropped
/// exactly once.
#[test]
fn both_halves_panic_the_first_ones_panic_wins_and_each_capture_drops_once() {
    quiet();
    within("both halves panic", || {
        for workers in [1, 2, 3] {
            let pool = ThreadPool::new(workers);
            for round in 0..200 {
                let (a_drops, b_drops) = (common::counter(), common::counter());
                let (tx, rx) = mpsc::channel();
                let (ad, bd) = (Dropped(Arc::clone(&a_drops)), Dropped(Arc::clone(&b_drops)));
                pool.put_request(
                    WorkRequest::with_context(
                        move |cx: &Context<'_>, ()| {
                            cx.join(
                                move |_| {
                                    let _ad = ad;
                                    panic!("trial: a");
                                },
                                move |_| -> () {
                                    let _bd = bd;
                                    panic!("trial: b");
                                },
                            )
                        },
                        (),
                    )
                    .on_error(move |_, e| tx.send(e).unwrap()),
                )
                .unwrap();
                assert_eq!(pool.wait_timeout(HANG), Ok(1));
                let e = rx.try_recv().unwrap();
                assert_eq!(
                    e,
                    TaskError::Panicked("trial: a".into()),
                    "{workers} workers, round {round}"
                );
                assert_eq!(a_drops.load(Ordering::SeqCst), 1);
                assert_eq!(b_drops.load(Ordering::SeqCst), 1);
            }
        }
    });
}

/// The first half succeeds and the second panics, on another worker or
/// taken back here: the second's panic reaches the request, and the first
/// half's value is dropped exactly once.
#[test]
fn a_second_half_panic_drops_the_first_halfs_value_once() {
    quiet();
    within("b panics", || {
        for workers in [1, 2] {
            let pool = ThreadPool::new(workers);
            for _ in 0..200 {
                let a_drops = common::counter();
                let (tx, rx) = mpsc::channel();
                let ad = Arc::clone(&a_drops);
                pool.put_request(
                    WorkRequest::with_context(
                        move |cx: &Context<'_>, ()| {
                            cx.join(move |_| Dropped(ad), |_| -> () { panic!("trial: b") })
                        },
                        (),
                    )
                    .on_error(move |_, e| tx.send(e).unwrap()),
                )
                .unwrap();
                assert_eq!(pool.wait_timeout(HANG), Ok(1));
                assert_eq!(
                    rx.try_recv().unwrap(),
                    TaskError::Panicked("trial: b".into())
                );
                assert_eq!(a_drops.load(Ordering::SeqCst), 1);
            }
        }
    });
}

/// A worker state borrowed across a join, on one worker: the second half,
/// taken back here, finds it borrowed (the documented panic), and the
/// request fails with that panic, not a hang or a lost outcome.
#[test]
fn a_worker_state_held_across_a_join_makes_the_taken_back_half_panic() {
    quiet();
    let pool = ThreadPool::builder()
        .workers(1)
        .worker_state(|_| 0u64)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::with_context(
            |cx: &Context<'_>, ()| {
                let guard = cx.worker_state::<u64>().unwrap();
                let out = cx.join(|_| 1, |cx| *cx.worker_state::<u64>().unwrap() + 1);
                drop(guard);
                out
            },
            (),
        )
        .on_error(move |_, e| tx.send(e).unwrap()),
    )
    .unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    match rx.try_recv().unwrap() {
        TaskError::Panicked(m) => assert!(m.contains("already borrowed"), "{m}"),
        e => panic!("{e:?}"),
    }
}

fn count_leaves(cx: &Context<'_>, depth: u32, leaves: &AtomicUsize) {
    if depth == 0 {
        leaves.fetch_add(1, Ordering::SeqCst);
        return;
    }
    cx.join(
        |cx| count_leaves(cx, depth - 1, leaves),
        |cx| count_leaves(cx, depth - 1, leaves),
    );
}

/// Nested joins while `shutdown_now` is called and the pool is resized
/// down to one worker: every leaf runs exactly once and the request ends.
#[test]
fn nested_joins_under_shutdown_now_and_a_resize_run_every_leaf_once() {
    within("joins under shutdown_now", || {
        for round in 0..30 {
            let pool = ThreadPool::new(3);
            let leaves = Arc::new(AtomicUsize::new(0));
            let l = Arc::clone(&leaves);
            let (started_tx, started) = mpsc::channel();
            let ticket = pool
                .submit_with_context(
                    move |cx: &Context<'_>, ()| {
                        started_tx.send(()).unwrap();
                        count_leaves(cx, 12, &l)
                    },
                    (),
                )
                .unwrap();
            // Started: a request not started would be cancelled, rightly.
            started.recv().unwrap();
            if round % 2 == 0 {
                pool.resize(1).unwrap();
            }
            let _ = pool.clone().shutdown_now();
            assert_eq!(ticket.wait(), Ok(()), "round {round}");
            assert_eq!(leaves.load(Ordering::SeqCst), 1 << 12, "round {round}");
        }
    });
}

/// A join's half queued with the children its first half put (every
/// 64th child queues the slot) while the other worker is busy, then
/// `shutdown_now`: the children come back, the half does not (it is no
/// request), and its join runs it exactly once.
#[test]
fn shutdown_now_hands_back_the_children_queued_beside_a_half_but_not_the_half() {
    within("half queued beside children", || {
        const CHILDREN: usize = 64;
        let pool = ThreadPool::new(2);
        let (busy, busy_latch) = common::gate();
        pool.put_request(WorkRequest::new(move |()| busy_latch.hold(), ()))
            .unwrap();
        busy.await_start();
        let (parent, parent_latch) = common::gate();
        let b_runs = common::counter();
        let (child_calls, child_errors) = (common::counter(), common::counter());
        let (done_tx, done) = mpsc::channel();
        let runs = Arc::clone(&b_runs);
        let (calls, errors) = (Arc::clone(&child_calls), Arc::clone(&child_errors));
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    cx.join(
                        move |cx| {
                            for i in 0..CHILDREN {
                                let (calls, errors) = (Arc::clone(&calls), Arc::clone(&errors));
                                cx.put(
                                    WorkRequest::new(|i: usize| i, i)
                                        .on_result(move |_, _| {
                                            calls.fetch_add(1, Ordering::SeqCst);
                                        })
                                        .on_error(move |_, _| {
                                            errors.fetch_add(1, Ordering::SeqCst);
                                        }),
                                )
                                .unwrap();
                            }
                            parent_latch.hold();
                        },
                        move |_| {
                            runs.fetch_add(1, Ordering::SeqCst);
                        },
                    )
                },
                (),
            )
            .on_result(move |_, outcome| done_tx.send(outcome).unwrap()),
        )
        .unwrap();
        parent.await_start();
        let queued = pool.queued();
        let handed_back = pool.clone().shutdown_now();
        parent.open();
        busy.open();
        assert_eq!(pool.wait_timeout(HANG), Ok(2), "queued was {queued}");
        assert_eq!(done.try_recv(), Ok(((), ())));
        assert_eq!(b_runs.load(Ordering::SeqCst), 1);
        assert_eq!(handed_back.len(), CHILDREN, "queued was {queued}");
        assert_eq!(
            child_calls.load(Ordering::SeqCst) + child_errors.load(Ordering::SeqCst),
            0
        );
    });
}

/// A first half that catches the panic of a join nested in it (whose
/// half stays behind in the slot as a no-op): the outer join still gets
/// its own half, every leaf runs once, and nothing hangs.
#[test]
fn a_nested_join_panic_caught_in_the_first_half_leaves_the_outer_join_whole() {
    quiet();
    within("caught nested join panic", || {
        for workers in [1, 2, 3] {
            let pool = ThreadPool::new(workers);
            for round in 0..200 {
                let (a_runs, b_runs, inner_b) =
                    (common::counter(), common::counter(), common::counter());
                let (ar, br, ib) = (
                    Arc::clone(&a_runs),
                    Arc::clone(&b_runs),
                    Arc::clone(&inner_b),
                );
                let ticket = pool
                    .submit_with_context(
                        move |cx: &Context<'_>, ()| {
                            cx.join(
                                |cx| {
                                    let caught = std::panic::catch_unwind(
                                        std::panic::AssertUnwindSafe(|| {
                                            cx.join(
                                                |_| -> () { panic!("trial: inner a") },
                                                |_| {
                                                    ib.fetch_add(1, Ordering::SeqCst);
                                                },
                                            )
                                        }),
                                    );
                                    assert!(caught.is_err());
                                    ar.fetch_add(1, Ordering::SeqCst);
                                    let (x, y) = cx.join(|_| 1, |_| 2);
                                    x + y
                                },
                                |_| {
                                    br.fetch_add(1, Ordering::SeqCst);
                                    10
                                },
                            )
                        },
                        (),
                    )
                    .unwrap();
                assert_eq!(
                    ticket.wait(),
                    Ok((3, 10)),
                    "{workers} workers, round {round}"
                );
                assert_eq!(a_runs.load(Ordering::SeqCst), 1);
                assert_eq!(b_runs.load(Ordering::SeqCst), 1);
                assert!(inner_b.load(Ordering::SeqCst) <= 1);
            }
            assert_eq!(pool.wait_timeout(HANG), Ok(0));
        }
    });
}

/// `shutdown_now` called from inside a join's first half, on a handle of
/// its own pool, while the second half waits in the slot: the half is
/// neither handed back nor lost; the join runs it, and the ticket holds
/// both values.
#[test]
fn shutdown_now_from_inside_a_first_half_leaves_the_second_to_its_join() {
    within("shutdown_now inside a join", || {
        for round in 0..100 {
            let pool = ThreadPool::new(1 + round % 3);
            let inner = pool.clone();
            let (b_runs, handed) = (common::counter(), common::counter());
            let (br, hb) = (Arc::clone(&b_runs), Arc::clone(&handed));
            let ticket = pool
                .submit_with_context(
                    move |cx: &Context<'_>, ()| {
                        cx.join(
                            move |_| {
                                hb.store(inner.shutdown_now().len(), Ordering::SeqCst);
                                1
                            },
                            move |_| {
                                br.fetch_add(1, Ordering::SeqCst);
                                2
                            },
                        )
                    },
                    (),
                )
                .unwrap();
            assert_eq!(ticket.wait(), Ok((1, 2)), "round {round}");
            assert_eq!(b_runs.load(Ordering::SeqCst), 1, "round {round}");
            assert_eq!(handed.load(Ordering::SeqCst), 0, "round {round}");
        }
    });
}

/// `poll` and `poll_timeout` called from a result callback while other
/// results are on their way: each callback runs exactly once, nothing
/// hangs, and every request ends.
#[test]
fn polls_nested_in_a_callback_run_each_callback_once() {
    within("nested polls", || {
        for round in 0..100 {
            const N: usize = 50;
            let pool = ThreadPool::new(2);
            let hits = common::hit_counters(N);
            let weak = pool.downgrade();
            for i in 0..N {
                let (hits, weak) = (Arc::clone(&hits), weak.clone());
                pool.put_request(WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                    hits[i].fetch_add(1, Ordering::SeqCst);
                    if i % 7 == 0 {
                        if let Some(pool) = weak.upgrade() {
                            let _ = pool.poll();
                            let _ = pool.poll_timeout(Duration::from_millis(1));
                        }
                    }
                }))
                .unwrap();
            }
            let mut handled = 0;
            while pool.pending() > 0 {
                match pool.poll_timeout(HANG) {
                    Ok(n) => handled += n,
                    Err(callpool::PollError::NoResultsPending) => break,
                    Err(e) => panic!("round {round}: {e:?}"),
                }
            }
            assert_eq!(pool.pending(), 0);
            assert!(handled <= N);
            common::assert_each_once("callbacks", &hits);
        }
    });
}

/// One node of a random join tree: a leaf that may panic, a join of two
/// subtrees, or a subtree run under `catch_unwind`.
enum Node {
    Leaf { index: usize, panics: bool },
    Join(Box<Node>, Box<Node>),
    Catch(Box<Node>),
}

fn random_tree(rng: &mut common::Rng, depth: u32, leaves: &mut usize) -> Node {
    if depth == 0 || rng.chance(15) {
        let index = *leaves;
        *leaves += 1;
        return Node::Leaf {
            index,
            panics: rng.chance(10),
        };
    }
    let node = Node::Join(
        Box::new(random_tree(rng, depth - 1, leaves)),
        Box::new(random_tree(rng, depth - 1, leaves)),
    );
    if rng.chance(20) {
        Node::Catch(Box::new(node))
    } else {
        node
    }
}

/// What a tree's leaves record: runs, and drops of each leaf's capture.
struct Marks {
    runs: Vec<AtomicUsize>,
    drops: Arc<Vec<AtomicUsize>>,
    joins_entered: AtomicUsize,
    join_drops: Arc<AtomicUsize>,
}

struct LeafCapture(Arc<Vec<AtomicUsize>>, usize);

impl Drop for LeafCapture {
    fn drop(&mut self) {
        self.0[self.1].fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `node`; `Err` with the leaf index of the panic that came out.
fn run_tree(cx: &Context<'_>, node: &Node, marks: &Marks) -> Result<(), usize> {
    match node {
        Node::Leaf { index, panics } => {
            let capture = LeafCapture(Arc::clone(&marks.drops), *index);
            marks.runs[*index].fetch_add(1, Ordering::SeqCst);
            drop(capture);
            if *panics {
                panic!("trial: leaf {index}");
            }
            Ok(())
        }
        Node::Join(a, b) => {
            marks.joins_entered.fetch_add(1, Ordering::SeqCst);
            let (ca, cb) = (
                Dropped(Arc::clone(&marks.join_drops)),
                Dropped(Arc::clone(&marks.join_drops)),
            );
            let _ = cx.join(
                move |cx| {
                    let _ca = ca;
                    run_tree(cx, a, marks)
                },
                move |cx| {
                    let _cb = cb;
                    run_tree(cx, b, marks)
                },
            );
            Ok(())
        }
        Node::Catch(inner) => {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_tree(cx, inner, marks)
            })) {
                Ok(r) => r,
                Err(payload) => Err(leaf_of(
                    &payload.downcast::<String>().expect("a leaf's panic"),
                )),
            }
        }
    }
}

fn leaf_of(message: &str) -> usize {
    message
        .strip_prefix("trial: leaf ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a leaf's panic: {message}"))
}

/// The panic that came out of `node` in a run whose leaves ran `runs`
/// times, if any: a first half's, if it panicked, else the second's.
fn escaped(node: &Node, runs: &[usize]) -> Option<usize> {
    match node {
        Node::Leaf { index, panics } => (runs[*index] == 1 && *panics).then_some(*index),
        Node::Join(a, b) => escaped(a, runs).or_else(|| escaped(b, runs)),
        Node::Catch(_) => None,
    }
}

/// Fails unless the run is one the join's promises allow: each leaf ran
/// at most once; a subtree that was reached ran whole, but for a second
/// half after a first half that panicked, which either ran (whole, by
/// these rules) or did not run at all.
fn check_tree(node: &Node, runs: &[usize], reached: bool) {
    match node {
        Node::Leaf { index, .. } => {
            let expected = usize::from(reached);
            assert_eq!(runs[*index], expected, "leaf {index} (reached: {reached})");
        }
        Node::Join(a, b) => {
            check_tree(a, runs, reached);
            let b_ran = reached && (escaped(a, runs).is_none() || any_ran(b, runs));
            check_tree(b, runs, b_ran);
        }
        Node::Catch(inner) => check_tree(inner, runs, reached),
    }
}

fn any_ran(node: &Node, runs: &[usize]) -> bool {
    match node {
        Node::Leaf { index, .. } => runs[*index] > 0,
        Node::Join(a, b) => any_ran(a, runs) || any_ran(b, runs),
        Node::Catch(inner) => any_ran(inner, runs),
    }
}

/// Random join trees with panicking leaves and `catch_unwind` at random
/// nodes, on 1 to 3 workers: every leaf runs at most once and only a
/// first half's panic skips a second half; every capture is dropped
/// exactly once; the request's outcome is the panic the tree says.
#[test]
fn random_join_trees_with_panics_and_catches_keep_every_half_exactly_once() {
    quiet();
    within("random join trees", || {
        let mut rng = common::Rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..2_000 {
            let workers = 1 + round % 3;
            let pool = ThreadPool::new(workers);
            let mut count = 0;
            let tree = Arc::new(random_tree(&mut rng, 7, &mut count));
            let marks = Arc::new(Marks {
                runs: (0..count).map(|_| AtomicUsize::new(0)).collect(),
                drops: Arc::new((0..count).map(|_| AtomicUsize::new(0)).collect()),
                joins_entered: AtomicUsize::new(0),
                join_drops: common::counter(),
            });
            let (t, m) = (Arc::clone(&tree), Arc::clone(&marks));
            let ticket = pool
                .submit_with_context(move |cx: &Context<'_>, ()| run_tree(cx, &t, &m), ())
                .unwrap();
            let outcome = ticket.wait();
            let runs: Vec<usize> = marks
                .runs
                .iter()
                .map(|r| r.load(Ordering::SeqCst))
                .collect();
            check_tree(&tree, &runs, true);
            match (escaped(&tree, &runs), &outcome) {
                (None, Ok(_)) => {}
                (Some(leaf), Err(TaskError::Panicked(m))) if leaf_of(m) == leaf => {}
                (e, o) => panic!("round {round}: expected {e:?}, got {o:?}"),
            }
            for (i, r) in runs.iter().enumerate() {
                let d = marks.drops[i].load(Ordering::SeqCst);
                assert_eq!(d, *r, "round {round}: leaf {i} ran {r} times, dropped {d}");
            }
            // Each join's two captures: dropped exactly once each, run or not.
            assert_eq!(
                marks.join_drops.load(Ordering::SeqCst),
                2 * marks.joins_entered.load(Ordering::SeqCst),
                "round {round}"
            );
        }
    });
}

/// Every worker dismissed from inside a join's first half (`resize(0)`),
/// while the second half may already be queued for the worker dismissed
/// with it: the join still runs it exactly once, the request ends, and a
/// worker added later finds nothing of it left to run.
#[test]
fn resize_to_zero_inside_a_first_half_still_runs_the_second_once() {
    within("resize(0) inside a join", || {
        for round in 0..100 {
            let pool = ThreadPool::new(2);
            let inner = pool.clone();
            let b_runs = common::counter();
            let br = Arc::clone(&b_runs);
            let ticket = pool
                .submit_with_context(
                    move |cx: &Context<'_>, ()| {
                        cx.join(
                            move |_| {
                                inner.resize(0).unwrap();
                                1
                            },
                            move |_| {
                                br.fetch_add(1, Ordering::SeqCst);
                                2
                            },
                        )
                    },
                    (),
                )
                .unwrap();
            assert_eq!(ticket.wait(), Ok((1, 2)), "round {round}");
            assert_eq!(b_runs.load(Ordering::SeqCst), 1, "round {round}");
            pool.join_all_dismissed_workers();
            assert_eq!(pool.workers(), 0);
            pool.resize(1).unwrap();
            assert_eq!(pool.submit(|n: u8| n, 5).unwrap().wait(), Ok(5));
            common::until(|| pool.queued() == 0);
            assert_eq!(b_runs.load(Ordering::SeqCst), 1, "round {round}");
            let stats = pool.stats();
            assert_eq!(stats.completed, 2, "round {round}: {stats:?}");
        }
    });
}

// ---------------------------------------------------------------------------
// The builder at its limits.
// ---------------------------------------------------------------------------

/// A stack size no thread can have is an error at build, not a panic.
#[test]
fn a_stack_size_no_thread_can_have_is_an_error() {
    let built = std::panic::catch_unwind(|| {
        ThreadPool::builder()
            .workers(1)
            .stack_size(usize::MAX)
            .build()
            .map(|_| ())
    });
    assert!(matches!(built, Ok(Err(_))), "{built:?}");
    let built = std::panic::catch_unwind(|| {
        ThreadPool::builder()
            .workers(1)
            .stack_size(usize::MAX / 2)
            .build()
            .map(|_| ())
    });
    assert!(matches!(built, Ok(Err(_))), "{built:?}");
}

/// The same stack size on a pool built with no worker: adding one later
/// is an error too, and a submitted ticket does not hang once the pool
/// shuts down.
#[test]
fn a_stack_size_no_thread_can_have_fails_create_workers_cleanly() {
    let pool = ThreadPool::builder()
        .workers(0)
        .stack_size(usize::MAX)
        .build()
        .unwrap();
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.create_workers(1)));
    assert!(matches!(made, Ok(Err(_))), "{made:?}");
    assert_eq!(pool.workers(), 0);
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.resize(2)));
    assert!(matches!(made, Ok(Err(_))), "{made:?}");
    assert_eq!(pool.workers(), 0);
}

/// An autoscaling pool whose threads cannot start (a stack size no thread
/// can have; in practice, a process at its thread limit): a request put
/// there has no worker to run it, and `wait` says so
/// (`NoWorkersAvailable`), as it does on a pool with no worker, instead of
/// blocking until its timeout (or, without one, for ever).
#[test]
fn wait_on_an_autoscaling_pool_that_cannot_start_a_thread_says_no_workers() {
    let pool = ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(2)
        .stack_size(usize::MAX)
        .build()
        .unwrap();
    pool.put_request(WorkRequest::new(|n: u8| n, 1)).unwrap();
    assert_eq!(pool.workers(), 0);
    let waited = pool.wait_timeout(Duration::from_secs(5));
    assert_eq!(
        waited,
        Err(callpool::WaitError::NoWorkersAvailable { pending: 1 })
    );
}

/// The same pool with a full bounded queue: a put that would wait for a
/// worker is refused with `NoWorkers`, as on a pool with none, instead of
/// trying (and failing) to start a thread over and over until its
/// timeout (or, without one, for ever).
#[test]
fn a_put_on_a_full_autoscaling_pool_that_cannot_start_a_thread_is_refused() {
    let pool = ThreadPool::builder()
        .workers(0)
        .min_workers(0)
        .max_workers(2)
        .queue_capacity(1)
        .stack_size(usize::MAX)
        .build()
        .unwrap();
    pool.put_request(WorkRequest::new(|n: u8| n, 1)).unwrap();
    // Unfixed, the put looped past its timeout, failing a spawn each time.
    let (pool, second) = within(
        "a timed put on a pool that cannot start a thread",
        move || {
            let second =
                pool.put_request_timeout(WorkRequest::new(|n: u8| n, 2), Duration::from_secs(5));
            (pool, second)
        },
    );
    assert!(
        matches!(second, Err(callpool::PutError::NoWorkers(_))),
        "{second:?}"
    );
    assert_eq!(pool.workers(), 0);
}

/// A thread that keeps trying to add a worker the OS refuses, while
/// another waits on the pool: each try counts the thread for a moment
/// before its spawn fails, and a wait that looks then must still learn,
/// once the count is back to none, that nothing can run its request.
#[test]
fn a_wait_beside_failing_create_workers_says_no_workers() {
    let pool = ThreadPool::builder()
        .workers(0)
        .stack_size(usize::MAX)
        .build()
        .unwrap();
    pool.put_request(WorkRequest::new(|n: u8| n, 1)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tries = common::counter();
    let adder = {
        let (pool, stop, tries) = (pool.clone(), Arc::clone(&stop), Arc::clone(&tries));
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                assert!(pool.create_workers(1).is_err());
                tries.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    common::until(|| tries.load(Ordering::SeqCst) > 10);
    let no_workers = Err(callpool::WaitError::NoWorkersAvailable { pending: 1 });
    let mut waits = 0;
    let mut last = no_workers;
    while waits < 20_000 && last == no_workers {
        last = pool.wait_timeout(Duration::from_secs(5));
        waits += 1;
    }
    stop.store(true, Ordering::SeqCst);
    adder.join().unwrap();
    let tries = tries.load(Ordering::SeqCst);
    assert_eq!(
        last, no_workers,
        "wait {waits}, after {tries} failed spawns"
    );
}

/// Thread names with odd characters, an empty one and a very long one
/// build, and each worker is named `{prefix}-{index}` as documented.
#[test]
fn odd_thread_names_build_and_name_each_worker_prefix_dash_index() {
    let long = "x".repeat(4096);
    for prefix in ["näme %s\t\u{1F600}/\\", "", long.as_str(), "-", "a-1"] {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name(prefix)
            .build()
            .unwrap();
        for _ in 0..4 {
            let ticket = pool
                .submit_with_context(
                    |cx: &Context<'_>, ()| {
                        (
                            cx.worker_index().expect("on a worker"),
                            thread::current().name().map(str::to_owned),
                        )
                    },
                    (),
                )
                .unwrap();
            let (index, name) = ticket.wait().unwrap();
            assert!(index < 2);
            assert_eq!(name, Some(format!("{prefix}-{index}")));
        }
    }
}
