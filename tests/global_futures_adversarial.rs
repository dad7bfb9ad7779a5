//! An adversarial trial of two things the bounded-queue trial
//! (`bounded_queues_adversarial.rs`) left out:
//!
//! - the process-wide pool (`callpool::global()`) configured with bounded
//!   request and result queues (and autoscaling): many threads putting on
//!   and polling its one `&'static` handle, callbacks that put back onto
//!   it, and `shutdown_now` through it (which hands this handle's queued
//!   requests back and leaves the pool open) while other threads are
//!   blocked in puts and waits, the same requests then put again. The
//!   global pool is configured once per process, so each of these tests
//!   re-runs itself in a child process of its own and asserts the child's
//!   marker;
//! - `Ticket`s awaited as futures (tokio's current-thread and multi-thread
//!   runtimes, `futures::executor`), which are not lookouts: behind a
//!   worker stuck on their handle's full result queue they wait until the
//!   handle is polled, as `Ticket`'s `Future` docs say; `as_completed`
//!   mixed with awaited tickets; a future dropped before its request ended
//!   (which still ends exactly once: run, or cancelled through its
//!   `CancelHandle`); one ticket polled by two executors in turn, only the
//!   last poll's waker woken; `tokio::time::timeout` around `&mut ticket`,
//!   then the same ticket awaited again.
//!
//! Every test asserts exact endings (each request once, in exactly one
//! way); timeouts only turn a hang into a failure.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use callpool::{configure_global, global, Builder, TaskError, ThreadPool, WorkRequest};

mod common;
use common::{
    assert_each_once, child_ran, counter, gate, hit_counters, is_child, run_in_child, until,
    within, within_here, Dropped,
};

/// The variable that tells a child process which test it runs.
const CHILD: &str = "CALLPOOL_GLOBAL_FUTURES_ADVERSARIAL_CHILD";

/// Runs `scenario` in a child process of its own (named `name`, the test's
/// name), with the global pool configured from `settings` first; in the
/// parent, runs the child and asserts that it ran the scenario to the end.
fn on_global(name: &str, settings: impl FnOnce() -> Builder, scenario: impl FnOnce()) {
    if is_child(name, CHILD) {
        configure_global(settings()).expect("a fresh child process configures the global pool");
        scenario();
        child_ran(name);
    } else {
        run_in_child(name, CHILD);
    }
}

/// A request for item `i` whose callable counts in `runs[i]` and whose
/// result callback counts in `hits[i]`.
fn counted(i: usize, runs: &Arc<Vec<AtomicUsize>>, hits: &Arc<Vec<AtomicUsize>>) -> WorkRequest {
    let (runs, hits) = (Arc::clone(runs), Arc::clone(hits));
    WorkRequest::new(
        move |i: usize| {
            runs[i].fetch_add(1, Ordering::SeqCst);
            i
        },
        i,
    )
    .on_result(move |_, i| {
        hits[i].fetch_add(1, Ordering::SeqCst);
    })
    .into()
}

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWake(AtomicUsize);

impl Wake for CountingWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWake {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `future` once with `waker`.
fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(waker))
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// The global pool with bounded queues.
// ---------------------------------------------------------------------------

/// Four threads put 100 requests each on the one global handle (request
/// queue 1, result queue 1, two workers), polling it now and then; every
/// callback of the first 400 puts a follow-up back onto it. Each thread
/// then waits on it. Every callable runs once and every callback runs
/// once; nothing hangs although every put may find both queues full.
#[test]
fn many_threads_put_and_poll_the_one_global_handle_with_queues_of_one() {
    const THREADS: usize = 4;
    const EACH: usize = 100;
    const FIRST: usize = THREADS * EACH;
    on_global(
        "many_threads_put_and_poll_the_one_global_handle_with_queues_of_one",
        || {
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(1)
                .result_capacity(1)
        },
        || {
            let runs = hit_counters(2 * FIRST);
            let hits = hit_counters(2 * FIRST);
            let start = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (runs, hits, start) =
                        (Arc::clone(&runs), Arc::clone(&hits), Arc::clone(&start));
                    thread::spawn(move || {
                        start.wait();
                        for k in 0..EACH {
                            let i = t * EACH + k;
                            let (runs2, hits2) = (Arc::clone(&runs), Arc::clone(&hits));
                            let first = WorkRequest::new(
                                {
                                    let runs = Arc::clone(&runs);
                                    move |i: usize| {
                                        runs[i].fetch_add(1, Ordering::SeqCst);
                                        i
                                    }
                                },
                                i,
                            )
                            .on_result(move |_, i| {
                                hits2[i].fetch_add(1, Ordering::SeqCst);
                                // Back onto the one global handle, from
                                // whichever thread runs this callback.
                                global()
                                    .put_request(counted(FIRST + i, &runs2, &hits2))
                                    .unwrap();
                            });
                            global().put_request(first).unwrap();
                            if k % 7 == 0 {
                                global().poll().unwrap();
                            }
                        }
                        global().wait().unwrap()
                    })
                })
                .collect();
            within_here("four threads putting on and waiting on global()", || {
                for t in threads {
                    t.join().unwrap();
                }
                // A callback still running on one thread as another's wait
                // returned may have put its follow-up after every wait
                // (see `wait`): handled here.
                global().wait().unwrap();
            });
            assert_each_once("callables", &runs);
            assert_each_once("callbacks", &hits);
            assert_eq!(global().pending(), 0);
            let stats = global().stats();
            assert_eq!(stats.completed, 2 * FIRST as u64);
            assert_eq!((stats.failed, stats.panicked, stats.cancelled), (0, 0, 0));
        },
    );
}

/// `shutdown_now` through (a clone of) the global handle while its one
/// worker is held, its request queue is full, three threads are blocked
/// putting onto it and two are blocked in `wait`: the queued requests come
/// back unrun, the pool stays open (the blocked puts go in, the waits
/// return once what they wait for ran), the requests handed back are put
/// again, and every request's callable and callback run exactly once. A
/// ticket queued on the global handle is not handed back (tickets never
/// are): it runs once.
#[test]
fn shutdown_now_through_global_while_others_block_in_puts_and_waits() {
    const QUEUED: usize = 2;
    const PUTTERS: usize = 3;
    const TOTAL: usize = QUEUED + PUTTERS;
    on_global(
        "shutdown_now_through_global_while_others_block_in_puts_and_waits",
        || {
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(QUEUED + 1)
                .result_capacity(1)
        },
        || {
            let runs = hit_counters(TOTAL);
            let hits = hit_counters(TOTAL);
            // The worker is held by a ticket's request: not counted on the
            // handle, so it takes nothing from `pending`.
            let (held, latch) = gate();
            let holder = global().submit(move |_: ()| latch.hold(), ()).unwrap();
            held.await_start();
            let queued_ticket = global().submit(|n: u32| n + 1, 1).unwrap();
            for i in 0..QUEUED {
                global().put_request(counted(i, &runs, &hits)).unwrap();
            }
            assert_eq!(global().queued(), QUEUED + 1);
            let putters: Vec<_> = (0..PUTTERS)
                .map(|p| {
                    let (runs, hits) = (Arc::clone(&runs), Arc::clone(&hits));
                    thread::spawn(move || {
                        global()
                            .put_request(counted(QUEUED + p, &runs, &hits))
                            .unwrap();
                    })
                })
                .collect();
            let waiters: Vec<_> = (0..2).map(|_| thread::spawn(|| global().wait())).collect();
            // The putters are blocked (the queue is full and stays so),
            // and the waiters have something to wait for.
            thread::sleep(Duration::from_millis(20));
            assert_eq!(global().queued(), QUEUED + 1);

            let back = global().clone().shutdown_now();
            assert!(!global().is_shut_down(), "the global pool stays open");
            // Exactly this handle's queued put requests come back (the
            // blocked putters could not get in before the take, the queue
            // being full): not the ticket, and none had run.
            assert_eq!(back.len(), QUEUED);
            for i in 0..TOTAL {
                assert_eq!(
                    runs[i].load(Ordering::SeqCst),
                    0,
                    "request {i} ran while held"
                );
            }
            // Each handed-back request is put again, on the open pool.
            held.open();
            for request in back {
                global().put_request(request).unwrap();
            }
            within_here("the putters, waiters and the global wait", || {
                for p in putters {
                    p.join().unwrap();
                }
                for w in waiters {
                    w.join().unwrap().unwrap();
                }
                global().wait().unwrap();
            });
            assert_each_once("callables", &runs);
            assert_each_once("callbacks", &hits);
            assert_eq!(holder.wait(), Ok(()));
            assert_eq!(
                queued_ticket.wait(),
                Ok(2),
                "a global ticket is not handed back"
            );
            assert_eq!(global().pending(), 0);
            assert_eq!(global().stats().cancelled, 0);
        },
    );
}

/// A callable on one of the global pool's workers calls `shutdown_now`
/// through `global()` while this handle's requests are queued (the request
/// queue full), and puts every request it got back again, from the
/// worker (a worker's blocking put never waits for room). Each request
/// runs once and its callback runs once, on the thread that waits.
#[test]
fn shutdown_now_through_global_from_a_worker_and_the_requests_put_again() {
    const N: usize = 6;
    on_global(
        "shutdown_now_through_global_from_a_worker_and_the_requests_put_again",
        || {
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(N)
                .result_capacity(1)
        },
        || {
            let runs = hit_counters(N);
            let hits = hit_counters(N);
            // Both workers held: one by the gate, one by the re-putter,
            // which waits on a second gate until the requests are queued.
            let (held, latch) = gate();
            let holder = global().submit(move |_: ()| latch.hold(), ()).unwrap();
            held.await_start();
            let (go, go_latch) = gate();
            let reputter = global()
                .submit(
                    move |_: ()| {
                        go_latch.hold();
                        let back = global().clone().shutdown_now();
                        let n = back.len();
                        for request in back {
                            global().put_request(request).unwrap();
                        }
                        n
                    },
                    (),
                )
                .unwrap();
            go.await_start();
            for i in 0..N {
                global().put_request(counted(i, &runs, &hits)).unwrap();
            }
            go.open();
            assert_eq!(
                within("the re-putting callable", move || reputter.wait()),
                Ok(N)
            );
            held.open();
            assert_eq!(within_here("wait on global", || global().wait()), Ok(N));
            assert_eq!(holder.wait(), Ok(()));
            assert_each_once("callables", &runs);
            assert_each_once("callbacks", &hits);
        },
    );
}

/// An awaited ticket is not a lookout: queued behind the global pool's one
/// worker, stuck sending a result to the full result queue (capacity 1)
/// that nobody polls, it stays pending (on a current-thread and on a
/// multi-thread tokio runtime), as `Ticket`'s `Future` docs warn ("keep
/// polling the handle meanwhile"). `tokio::time::timeout` gives it back;
/// once the handle is polled it ends, and the same ticket awaited again
/// gives its outcome, once.
#[test]
fn an_awaited_global_ticket_behind_a_stuck_worker_waits_for_a_poll_as_documented() {
    on_global(
        "an_awaited_global_ticket_behind_a_stuck_worker_waits_for_a_poll_as_documented",
        || {
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .result_capacity(1)
        },
        || {
            let hits = hit_counters(4);
            for round in 0..2 {
                // A's result fills the queue; the worker is stuck on B's.
                for i in 0..2 {
                    global()
                        .put_request(common::hit_request(2 * round + i, &hits))
                        .unwrap();
                }
                until(|| global().queued() == 0);
                let mut ticket = global().submit(|n: usize| n * 10, round).unwrap();
                let ticket = if round == 0 {
                    let rt = current_thread_runtime();
                    let timed = rt.block_on(async {
                        tokio::time::timeout(Duration::from_millis(30), &mut ticket).await
                    });
                    assert!(
                        timed.is_err(),
                        "ended without a poll of its handle: {timed:?}"
                    );
                    ticket
                } else {
                    // The ticket comes back from the task as a tuple's
                    // field: still pending, it is not to be awaited there.
                    let rt = multi_thread_runtime();
                    let (ticket,) = rt.block_on(async move {
                        tokio::spawn(async move {
                            let timed =
                                tokio::time::timeout(Duration::from_millis(30), &mut ticket).await;
                            assert!(timed.is_err(), "ended without a poll: {timed:?}");
                            (ticket,)
                        })
                        .await
                        .unwrap()
                    });
                    ticket
                };
                assert!(!ticket.is_finished());
                assert_eq!(global().queued(), 1, "still queued behind the stuck worker");
                // Awaited on the multi-thread runtime while this thread
                // polls the handle, as the docs say to.
                let rt = multi_thread_runtime();
                let awaited = rt.spawn(ticket);
                assert_eq!(within_here("wait on global", || global().wait()), Ok(2));
                let outcome = within_here("the awaited ticket", || rt.block_on(awaited)).unwrap();
                assert_eq!(outcome, Ok(round * 10));
            }
            assert_each_once("callbacks", &hits);
        },
    );
}

/// `as_completed` over some global tickets (a lookout: it handles the
/// global handle's ready results while a worker is stuck) mixed with other
/// global tickets awaited on a multi-thread runtime, while a thread puts
/// callback requests through both full queues (capacity 2 and 1) and then
/// waits. Every ticket's outcome is taken once, right; every callback runs
/// once.
#[test]
fn as_completed_mixed_with_awaited_global_tickets_under_full_queues() {
    const CALLBACKS: usize = 60;
    const TICKETS: usize = 40;
    on_global(
        "as_completed_mixed_with_awaited_global_tickets_under_full_queues",
        || {
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(2)
                .result_capacity(1)
        },
        || {
            let hits = hit_counters(CALLBACKS);
            let putter = {
                let hits = Arc::clone(&hits);
                thread::spawn(move || {
                    for i in 0..CALLBACKS {
                        global().put_request(common::hit_request(i, &hits)).unwrap();
                    }
                    global().wait().unwrap();
                })
            };
            let mut listed = Vec::new();
            let mut awaited = Vec::new();
            for i in 0..TICKETS {
                let ticket = global().submit(|n: usize| n * 3, i).unwrap();
                if i % 2 == 0 {
                    listed.push(ticket);
                } else {
                    awaited.push((i, ticket));
                }
            }
            let rt = multi_thread_runtime();
            let tasks: Vec<_> = awaited
                .into_iter()
                .map(|(i, t)| rt.spawn(async move { (i, t.await) }))
                .collect();
            within_here("as_completed, the putter and the awaited tickets", || {
                let mut seen = vec![0usize; TICKETS];
                for (k, outcome) in callpool::as_completed(listed) {
                    let i = 2 * k;
                    assert_eq!(outcome, Ok(i * 3));
                    seen[i] += 1;
                }
                putter.join().unwrap();
                // Whatever a callback on another thread put after the
                // putter's wait returned (nothing here): handled anyway.
                global().wait().unwrap();
                for task in tasks {
                    let (i, outcome) = rt.block_on(task).unwrap();
                    assert_eq!(outcome, Ok(i * 3));
                    seen[i] += 1;
                }
                assert!(seen.iter().all(|&n| n == 1), "outcomes taken: {seen:?}");
            });
            assert_each_once("callbacks", &hits);
        },
    );
}

/// An autoscaling global pool (0 to 2 workers, a short keep-alive, queues
/// of 1) that has shrunk to no worker at all: tickets submitted then and
/// awaited on a tokio runtime start a worker again and end, each once,
/// while callback requests put beside them are handled by a waiting
/// thread. Several rounds, each from an empty pool.
#[test]
fn awaited_tickets_on_an_autoscaling_global_pool_that_shrank_to_nothing() {
    const ROUNDS: usize = 3;
    const EACH: usize = 8;
    on_global(
        "awaited_tickets_on_an_autoscaling_global_pool_that_shrank_to_nothing",
        || {
            ThreadPool::builder()
                .workers(0)
                .min_workers(0)
                .max_workers(2)
                .keep_alive(Duration::from_millis(5))
                .queue_capacity(1)
                .result_capacity(1)
        },
        || {
            let hits = hit_counters(ROUNDS * EACH);
            let rt = multi_thread_runtime();
            for round in 0..ROUNDS {
                until(|| global().workers() == 0);
                let waiter = {
                    let hits = Arc::clone(&hits);
                    thread::spawn(move || {
                        for k in 0..EACH {
                            global()
                                .put_request(common::hit_request(round * EACH + k, &hits))
                                .unwrap();
                        }
                        global().wait().unwrap();
                    })
                };
                let tickets: Vec<_> = (0..EACH)
                    .map(|k| global().submit(move |n: usize| n + k, round).unwrap())
                    .collect();
                let outcomes = within_here("the awaited tickets", || {
                    rt.block_on(async move {
                        let mut outcomes = Vec::new();
                        for t in tickets {
                            outcomes.push(t.await);
                        }
                        outcomes
                    })
                });
                let expected: Vec<_> = (0..EACH).map(|k| Ok(round + k)).collect();
                assert_eq!(outcomes, expected);
                within_here("the waiting thread", || waiter.join().unwrap());
            }
            global().wait().unwrap();
            assert_each_once("callbacks", &hits);
        },
    );
}

// ---------------------------------------------------------------------------
// Tickets as futures, on pools of their own.
// ---------------------------------------------------------------------------

/// A ticket polled once (pending, behind a held worker) and then dropped
/// does not cancel its request: it runs exactly once. Through a
/// `CancelHandle` taken before the drop, the request is cancelled instead:
/// it never runs and its callable is dropped exactly once.
#[test]
fn a_ticket_future_dropped_before_it_ended_runs_or_is_cancelled_exactly_once() {
    let pool = common::one_worker_bounded(4, 1);
    let (held, latch) = gate();
    let holder = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
    held.await_start();
    let runs = counter();
    let dropped = counter();
    let make = |pool: &ThreadPool| {
        let (runs, captured) = (Arc::clone(&runs), Dropped(Arc::clone(&dropped)));
        pool.submit(
            move |_: ()| {
                let _captured = captured;
                runs.fetch_add(1, Ordering::SeqCst);
            },
            (),
        )
        .unwrap()
    };
    let wake = Arc::new(CountingWake::default());
    let waker = Waker::from(Arc::clone(&wake));

    // Dropped after a pending poll: still runs, once.
    let mut kept_running = make(&pool);
    assert!(poll_once(&mut kept_running, &waker).is_pending());
    drop(kept_running);
    // Dropped after a pending poll, then cancelled through its handle.
    let mut cancelled = make(&pool);
    assert!(poll_once(&mut cancelled, &waker).is_pending());
    let cancel = cancelled.cancel_handle();
    drop(cancelled);
    assert!(cancel.cancel());
    assert!(!cancel.cancel(), "cancelled once only");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the cancelled callable dropped here"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    held.open();
    assert_eq!(holder.wait(), Ok(()));
    // A later ticket behind both ends only after them (one worker, FIFO).
    assert_eq!(
        within("the last ticket", move || pool
            .submit(|n: u8| n, 7)
            .unwrap()
            .wait()),
        Ok(7)
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the dropped ticket's request ran once"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    // The stale waker of the dropped-but-run ticket may hear its end; the
    // cancelled one's heard nothing more than once either.
    assert!(wake.wakes() <= 2);
}

/// Many rounds of a race: a ticket polled pending, dropped, and its
/// `CancelHandle` used while a worker may be taking the request. Exactly
/// one of the two wins each round: cancelled (never run, callable dropped
/// once) or run (once).
#[test]
fn a_dropped_ticket_future_raced_by_its_cancel_handle_ends_one_way() {
    let pool = ThreadPool::builder()
        .workers(2)
        .queue_capacity(2)
        .result_capacity(1)
        .build()
        .unwrap();
    let waker = Waker::from(Arc::new(CountingWake::default()));
    let (mut won_cancel, mut won_run) = (0, 0);
    for _ in 0..300 {
        let runs = counter();
        let dropped = counter();
        let (r, captured) = (Arc::clone(&runs), Dropped(Arc::clone(&dropped)));
        let mut ticket = pool
            .submit(
                move |_: ()| {
                    let _captured = captured;
                    r.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .unwrap();
        let _ = poll_once(&mut ticket, &waker);
        let cancel = ticket.cancel_handle();
        drop(ticket);
        let cancelled = cancel.cancel();
        until(|| dropped.load(Ordering::SeqCst) == 1);
        let ran = runs.load(Ordering::SeqCst);
        if cancelled {
            assert_eq!(ran, 0, "cancelled and run");
            won_cancel += 1;
        } else {
            assert_eq!(ran, 1, "neither cancelled nor run");
            won_run += 1;
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
    assert_eq!(won_cancel + won_run, 300);
}

/// One ticket polled by two executors in turn: first by hand with one
/// waker, then with another (as a second runtime would), then by
/// `futures::executor::block_on`. Only the last poll's waker is woken,
/// once, when the request ends; the first runtime's is never woken.
#[test]
fn a_ticket_polled_by_two_executors_in_turn_wakes_only_the_last() {
    let pool = ThreadPool::new(1);
    let (held, latch) = gate();
    let mut ticket = pool
        .submit(
            move |_: ()| {
                latch.hold();
                5u8
            },
            (),
        )
        .unwrap();
    held.await_start();
    let (first, second) = (
        Arc::new(CountingWake::default()),
        Arc::new(CountingWake::default()),
    );
    assert!(poll_once(&mut ticket, &Waker::from(Arc::clone(&first))).is_pending());
    assert!(poll_once(&mut ticket, &Waker::from(Arc::clone(&second))).is_pending());
    held.open();
    until(|| second.wakes() == 1);
    assert_eq!(first.wakes(), 0, "a replaced waker was woken");
    assert_eq!(
        poll_once(&mut ticket, &Waker::from(Arc::clone(&second))),
        Poll::Ready(Ok(5))
    );
    assert_eq!(second.wakes(), 1);

    // A tokio runtime polls it, times out, and is dropped; then another
    // executor (futures') takes it to the end.
    let (held, latch) = gate();
    let mut ticket = pool
        .submit(
            move |_: ()| {
                latch.hold();
                6u8
            },
            (),
        )
        .unwrap();
    held.await_start();
    let rt = current_thread_runtime();
    let timed =
        rt.block_on(async { tokio::time::timeout(Duration::from_millis(5), &mut ticket).await });
    assert!(timed.is_err());
    drop(rt);
    let opener = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5));
        held.open();
    });
    let outcome = within_here("block_on after a dropped runtime", || {
        futures::executor::block_on(&mut ticket)
    });
    assert_eq!(outcome, Ok(6));
    opener.join().unwrap();
}

/// `tokio::time::timeout` around `&mut ticket` racing the request's end,
/// for many rounds of short timeouts, on a multi-thread runtime and a
/// current-thread one: when the timeout wins, the same ticket awaited
/// again gives the outcome; when the ticket wins, it was taken once. No
/// round sees the outcome twice, none loses it, none panics as a ticket
/// polled after `Ready`.
#[test]
fn timeout_around_an_awaited_ticket_then_awaited_again_takes_the_outcome_once() {
    let pool = ThreadPool::builder()
        .workers(2)
        .queue_capacity(4)
        .result_capacity(1)
        .build()
        .unwrap();
    for rt in [multi_thread_runtime(), current_thread_runtime()] {
        let pool = pool.clone();
        let (timed_out, in_time) = within_here("timeouts then awaits", || {
            rt.block_on(async move {
                let (mut timed_out, mut in_time) = (0, 0);
                for round in 0..300u64 {
                    let mut ticket = pool
                        .submit(
                            |n: u64| {
                                for _ in 0..(n % 5) * 200 {
                                    std::hint::spin_loop();
                                }
                                n
                            },
                            round,
                        )
                        .unwrap();
                    let wait = Duration::from_micros(round % 40);
                    let outcome = match tokio::time::timeout(wait, &mut ticket).await {
                        Ok(outcome) => {
                            in_time += 1;
                            outcome
                        }
                        Err(_) => {
                            timed_out += 1;
                            ticket.await
                        }
                    };
                    assert_eq!(outcome, Ok(round));
                }
                (timed_out, in_time)
            })
        });
        assert_eq!(timed_out + in_time, 300);
    }
}

/// A ticket awaited on a tokio runtime while its request fails, panics or
/// is cancelled by the pool's shutdown: the outcome arrives once, through
/// the waker, and says which.
#[test]
fn awaited_tickets_hear_failure_panic_and_a_closing_cancel() {
    common::hide_panics_starting_with("deliberate");
    let pool = common::one_worker_bounded(4, 1);
    let (held, latch) = gate();
    let holder = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
    held.await_start();
    let failing = pool.submit_fallible(|n: u8| Err::<u8, u8>(n), 3).unwrap();
    let panicking = pool
        .submit(|_: ()| -> u8 { panic!("deliberate") }, ())
        .unwrap();
    let rt = multi_thread_runtime();
    let failed = rt.spawn(failing);
    let panicked = rt.spawn(panicking);
    held.open();
    assert_eq!(rt.block_on(failed).unwrap(), Err(TaskError::Failed(3)));
    assert_eq!(
        rt.block_on(panicked).unwrap(),
        Err(TaskError::Panicked("deliberate".into()))
    );
    assert_eq!(holder.wait(), Ok(()));

    let (held, latch) = gate();
    let holder = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
    held.await_start();
    let queued = pool.submit(|n: u8| n, 1).unwrap();
    let cancelled = rt.spawn(queued);
    let back = pool.shutdown_now();
    assert!(back.is_empty(), "tickets are never handed back");
    assert_eq!(
        within_here("the cancelled ticket", || rt.block_on(cancelled)).unwrap(),
        Err(TaskError::Cancelled)
    );
    held.open();
    assert_eq!(holder.wait(), Ok(()));
}

/// Handles of the global pool other than `global()` itself
/// (`new_handle`), with bounded result queues: one dropped while the
/// global pool's one worker is stuck sending it a result frees the worker
/// (its results are discarded), and an awaited ticket queued behind it
/// ends; another's `shutdown_now` hands back only its own queued requests,
/// not `global()`'s, and the pool stays open.
#[test]
fn a_global_new_handle_dropped_or_shut_down_now_while_a_worker_is_stuck_on_it() {
    on_global(
        "a_global_new_handle_dropped_or_shut_down_now_while_a_worker_is_stuck_on_it",
        || {
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(4)
                .result_capacity(1)
        },
        || {
            let runs = hit_counters(8);
            let hits = hit_counters(8);
            // Dropped while the worker is stuck on its full result queue.
            let mine = global().new_handle();
            for i in 0..2 {
                mine.put_request(counted(i, &runs, &hits)).unwrap();
            }
            until(|| global().queued() == 0);
            let behind = global().submit(|n: u8| n + 1, 1).unwrap();
            drop(mine);
            let rt = current_thread_runtime();
            assert_eq!(
                within_here("the ticket behind the dropped handle's worker", || rt
                    .block_on(behind)),
                Ok(2)
            );
            assert_eq!(
                runs[0].load(Ordering::SeqCst) + runs[1].load(Ordering::SeqCst),
                2
            );
            assert_eq!(
                hits[0].load(Ordering::SeqCst) + hits[1].load(Ordering::SeqCst),
                0
            );

            // shutdown_now through a new handle: only its requests back.
            let (held, latch) = gate();
            let holder = global().submit(move |_: ()| latch.hold(), ()).unwrap();
            held.await_start();
            let other = global().new_handle();
            global().put_request(counted(2, &runs, &hits)).unwrap();
            other.put_request(counted(3, &runs, &hits)).unwrap();
            global().put_request(counted(4, &runs, &hits)).unwrap();
            other.put_request(counted(5, &runs, &hits)).unwrap();
            let back = other.clone().shutdown_now();
            assert_eq!(back.len(), 2);
            assert!(!global().is_shut_down() && !other.is_shut_down());
            held.open();
            for r in back {
                other.put_request(r).unwrap();
            }
            assert_eq!(within_here("wait on global", || global().wait()), Ok(2));
            assert_eq!(within_here("wait on the other", || other.wait()), Ok(2));
            assert_eq!(holder.wait(), Ok(()));
            for i in 2..6 {
                assert_eq!(runs[i].load(Ordering::SeqCst), 1, "request {i} runs");
                assert_eq!(hits[i].load(Ordering::SeqCst), 1, "request {i} callbacks");
            }
        },
    );
}

/// Cancels its ticket's request when dropped: the guard `Ticket`'s docs
/// advise for a task that must not leave its request running.
struct CancelOnDrop(callpool::CancelHandle);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A task that its executor abandoned while it awaited a ticket, with the
/// documented cancel guard in its future: its waker, kept in the ticket's
/// slot, is all that still owns it, so the waker's last drop drops the
/// guard, which cancels the ticket's request.
struct AbandonedTask {
    _guard: CancelOnDrop,
}

impl Wake for AbandonedTask {
    fn wake(self: Arc<Self>) {}
}

/// A ticket polled once by a task that then was abandoned (its waker the
/// last owner of its cancel guard), and then taken up elsewhere: polled
/// with another waker, waited for, or put in `as_completed`. The stale
/// waker's drop cancels the request through the guard; that must not
/// deadlock on the ticket's own lock (the new way of waiting used to
/// replace the waker, and drop it, while holding the slot's lock, which
/// the cancel takes again). The request ends cancelled, once, and the new
/// waiter hears it.
#[test]
fn a_stale_waker_whose_drop_cancels_its_ticket_does_not_deadlock_the_next_wait() {
    // Nothing runs: the request stays queued. Never dropped: on a failure
    // its drop would sweep (and cancel) the deadlocked ticket's request,
    // and hang on its lock instead of letting the test fail.
    let pool = std::mem::ManuallyDrop::new(ThreadPool::new(0));
    let abandoned = |ticket: &mut callpool::Ticket<u8>| {
        let task = Arc::new(AbandonedTask {
            _guard: CancelOnDrop(ticket.cancel_handle()),
        });
        assert!(poll_once(ticket, &Waker::from(task)).is_pending());
    };
    for how in 0..5 {
        let mut ticket = pool.submit(|n: u8| n, 1).unwrap();
        abandoned(&mut ticket);
        let outcome = within("the next wait after a stale waker", move || match how {
            // Another executor takes it up: a new waker replaces the old.
            0 => futures::executor::block_on(&mut ticket),
            1 => current_thread_runtime().block_on(async { (&mut ticket).await }),
            // A blocking wait replaces the waker with the thread.
            2 => ticket.wait(),
            // A completion iterator replaces it with its listener.
            3 => callpool::as_completed([ticket]).next().unwrap().1,
            // A wait whose deadline has passed clears it.
            _ => match ticket.wait_timeout(Duration::ZERO) {
                Ok(outcome) => outcome,
                Err(ticket) => ticket.wait(),
            },
        });
        assert_eq!(outcome, Err(TaskError::Cancelled), "way {how}");
    }
}

/// Threads that block on global tickets (`wait`, a lookout: it handles
/// the global handle's ready results while a worker is stuck) and put
/// callback requests through the full queues (capacity 1 each), with
/// nobody else polling until the end: every wait ends, every ticket's
/// outcome is right, every callback runs once.
#[test]
fn ticket_waits_on_global_are_lookouts_for_threads_that_never_poll() {
    const THREADS: usize = 4;
    const EACH: usize = 60;
    on_global(
        "ticket_waits_on_global_are_lookouts_for_threads_that_never_poll",
        || {
            ThreadPool::builder()
                .workers(2)
                .queue_capacity(1)
                .result_capacity(1)
        },
        || {
            let hits = hit_counters(THREADS * EACH);
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let hits = Arc::clone(&hits);
                    thread::spawn(move || {
                        for k in 0..EACH {
                            let i = t * EACH + k;
                            global().put_request(common::hit_request(i, &hits)).unwrap();
                            let ticket = global().submit(|n: usize| n + 1, i).unwrap();
                            assert_eq!(ticket.wait(), Ok(i + 1));
                        }
                    })
                })
                .collect();
            within_here("threads that put and wait on tickets", || {
                for t in threads {
                    t.join().unwrap();
                }
                global().wait().unwrap();
            });
            assert_each_once("callbacks", &hits);
        },
    );
}

/// `shutdown_now` through the global handle while a batch's requests are
/// queued: they come back counted as cancelled in the batch, whose
/// batch-done callback runs once, there; put again, each runs once and its
/// callback once, and the batch, already complete, counts nothing more.
#[test]
fn a_batch_handed_back_by_shutdown_now_through_global_then_put_again() {
    const N: usize = 5;
    on_global(
        "a_batch_handed_back_by_shutdown_now_through_global_then_put_again",
        || {
            ThreadPool::builder()
                .workers(1)
                .queue_capacity(N)
                .result_capacity(1)
        },
        || {
            let runs = hit_counters(N);
            let hits = hit_counters(N);
            let (held, latch) = gate();
            let holder = global().submit(move |_: ()| latch.hold(), ()).unwrap();
            held.await_start();
            let batch = global()
                .put_batch((0..N).map(|i| counted(i, &runs, &hits)))
                .unwrap();
            let finished = counter();
            let seen = Arc::clone(&finished);
            batch.on_done(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            });
            let back = global().clone().shutdown_now();
            assert_eq!(back.len(), N);
            assert_eq!(
                finished.load(Ordering::SeqCst),
                1,
                "batch-done ran in shutdown_now"
            );
            let progress = batch.progress();
            assert_eq!(
                (progress.total, progress.cancelled, progress.done),
                (N, N, 0)
            );
            assert!(progress.is_complete());
            held.open();
            for r in back {
                global().put_request(r).unwrap();
            }
            assert_eq!(within_here("wait on global", || global().wait()), Ok(N));
            assert_eq!(holder.wait(), Ok(()));
            assert_each_once("callables", &runs);
            assert_each_once("callbacks", &hits);
            let after = batch.progress();
            assert_eq!((after.total, after.cancelled, after.done), (N, N, 0));
            assert_eq!(finished.load(Ordering::SeqCst), 1);
        },
    );
}
