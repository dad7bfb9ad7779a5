//! A performance-minded Rust user's trial (from rayon, crossbeam and
//! tokio's `spawn_blocking`): a service with many small jobs, results back
//! on one thread, tokio tasks awaiting tickets, a bounded queue for
//! back-pressure, the global pool used from a library, and the builder
//! options such a service sets. Written from the README, the guide and
//! the API docs only; each test asserts what those promise: counts, which
//! thread ran what, order where promised. Time never decides a result.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use callpool::{Context, PollError, PutError, TaskError, ThreadPool, WorkRequest};
use common::one_way::{Gate as OneWay, OpenOnDrop};
use common::{assert_each_once, gate, hit_counters, until, within, TestResult};

// ---------------------------------------------------------------------
// (b) Tickets awaited from tokio.

/// Many tickets awaited at once by one task (`join_all`) and two by
/// `tokio::join!`, on a multi-threaded runtime: each outcome is its own
/// request's, in the order of the futures given.
#[test]
fn tickets_awaited_together_from_tokio_each_get_their_own_outcome() {
    within("join_all of tickets", || {
        let pool = ThreadPool::new(3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let runs = hit_counters(500);
        let tickets: Vec<_> = (0..500u64)
            .map(|n| {
                let runs = Arc::clone(&runs);
                pool.submit(
                    move |n: u64| {
                        runs[n as usize].fetch_add(1, Ordering::SeqCst);
                        n * n
                    },
                    n,
                )
                .unwrap()
            })
            .collect();
        let outcomes = rt.block_on(async {
            tokio::spawn(futures::future::join_all(tickets))
                .await
                .unwrap()
        });
        let expected: Vec<_> = (0..500u64).map(|n| Ok(n * n)).collect();
        assert_eq!(outcomes, expected);
        assert_each_once("callables", &runs);

        let a = pool.submit(|s: &'static str| s.len(), "four").unwrap();
        let b = pool
            .submit_fallible(|s: &'static str| s.parse::<u8>(), "x")
            .unwrap();
        let (a, b) = rt.block_on(async { tokio::join!(a, b) });
        assert_eq!(a, Ok(4));
        assert!(matches!(b, Err(TaskError::Failed(_))));
        // Tickets are not the handle's results.
        assert_eq!(pool.pending(), 0);
    });
}

/// The docs: dropping a ticket does not cancel its request. A future
/// dropped by tokio (a `timeout` around the ticket itself, which owns it)
/// is such a drop: the request still runs, once. Around `&mut ticket`, the
/// ticket stays with the caller, who can cancel it.
#[test]
fn a_ticket_future_dropped_by_tokio_still_runs_its_request_once() {
    within("dropped ticket futures", || {
        let pool = ThreadPool::new(1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (busy, latch) = gate();
        let blocker = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
        busy.await_start();

        let ran = common::counter();
        let r = Arc::clone(&ran);
        let dropped = pool
            .submit(move |_: ()| r.fetch_add(1, Ordering::SeqCst), ())
            .unwrap();
        let timed_out = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(1), dropped)
                .await
                .is_err()
        });
        assert!(timed_out, "the worker is held: it cannot have run yet");

        let never = common::counter();
        let n = Arc::clone(&never);
        let mut kept = pool
            .submit(move |_: ()| n.fetch_add(1, Ordering::SeqCst), ())
            .unwrap();
        let kept_timed_out = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(1), &mut kept)
                .await
                .is_err()
        });
        assert!(kept_timed_out);
        assert!(kept.cancel(), "still queued behind the held worker");

        busy.open();
        assert_eq!(blocker.wait(), Ok(()));
        // One more request behind both: once it has run, so has the
        // dropped one (one worker, queue order).
        assert_eq!(pool.submit(|_: ()| 7, ()).unwrap().wait(), Ok(7));
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(rt.block_on(kept), Err(TaskError::Cancelled));
        assert_eq!(never.load(Ordering::SeqCst), 0);
        assert_eq!(pool.stats().cancelled, 1);
    });
}

/// A ticket awaited after its pool shut down: one that ended before is
/// ready with its value; one whose request `shutdown_now` discarded is
/// `Cancelled`, and one discarded because the last handle was dropped
/// ends too, so no awaiting task hangs.
#[test]
fn tickets_awaited_after_the_pool_shut_down_end() {
    within("tickets after shutdown", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();

        let pool = ThreadPool::new(1);
        let done = pool.submit(|n: u8| n + 1, 1).unwrap();
        pool.shutdown().unwrap();
        assert_eq!(rt.block_on(done), Ok(2));

        let pool = ThreadPool::new(0);
        let ran = common::counter();
        let r = Arc::clone(&ran);
        let discarded = pool
            .submit(move |_: ()| r.fetch_add(1, Ordering::SeqCst), ())
            .unwrap();
        let handed_back = pool.shutdown_now();
        assert!(
            handed_back.is_empty(),
            "a ticket's request is not a WorkRequest to hand back"
        );
        assert_eq!(rt.block_on(discarded), Err(TaskError::Cancelled));
        assert_eq!(ran.load(Ordering::SeqCst), 0);

        // The task awaits first, then the pool goes: the waker must fire.
        let pool = ThreadPool::new(0);
        let orphan = pool.submit(|_: ()| 1, ()).unwrap();
        let (tx, rx) = mpsc::channel::<()>();
        let dropper = thread::spawn(move || {
            rx.recv().unwrap();
            drop(pool);
        });
        let outcome = rt.block_on(async move {
            let task = tokio::spawn(orphan);
            tokio::task::yield_now().await;
            tx.send(()).unwrap();
            task.await.unwrap()
        });
        dropper.join().unwrap();
        assert_eq!(outcome, Err(TaskError::Cancelled));
    });
}

// ---------------------------------------------------------------------
// (c) Back-pressure: a bounded request queue fed by four producers.

/// Four producers put 1,000 requests through a queue of 4, each by a
/// different way (a blocking put, `try_put_request` retried on `Full`
/// with the request it hands back, `put_request_timeout` retried on
/// `Timeout`, and `put_all`), while this thread polls. Every request runs
/// once, every callback once, all on this thread (the result queue is
/// unbounded), and nothing is left.
#[test]
fn four_producers_through_a_bounded_queue_lose_nothing() {
    within("four producers", || {
        const PER: usize = 250;
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(4)
            .build()
            .unwrap();
        let runs = hit_counters(4 * PER);
        let callbacks = hit_counters(4 * PER);
        let callback_threads = Arc::new(Mutex::new(HashSet::new()));
        let request = {
            let (runs, callbacks, threads) = (
                Arc::clone(&runs),
                Arc::clone(&callbacks),
                Arc::clone(&callback_threads),
            );
            move |i: usize| -> WorkRequest {
                let (runs, callbacks, threads) = (
                    Arc::clone(&runs),
                    Arc::clone(&callbacks),
                    Arc::clone(&threads),
                );
                WorkRequest::new(
                    move |i: usize| {
                        runs[i].fetch_add(1, Ordering::SeqCst);
                        i
                    },
                    i,
                )
                .on_result(move |_, i| {
                    callbacks[i].fetch_add(1, Ordering::SeqCst);
                    threads.lock().unwrap().insert(thread::current().id());
                })
                .into()
            }
        };
        let (refusals_tx, refusals) = mpsc::channel::<&'static str>();
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let pool = pool.clone();
                let request = request.clone();
                let refusals = refusals_tx.clone();
                thread::spawn(move || {
                    let mine = p * PER..(p + 1) * PER;
                    match p {
                        0 => {
                            for i in mine {
                                pool.put_request(request(i)).unwrap();
                            }
                        }
                        1 => {
                            for i in mine {
                                let mut r = request(i);
                                loop {
                                    match pool.try_put_request(r) {
                                        Ok(_) => break,
                                        Err(PutError::Full(back)) => {
                                            refusals.send("full").unwrap();
                                            r = back;
                                            thread::yield_now();
                                        }
                                        Err(e) => panic!("{e}"),
                                    }
                                }
                            }
                        }
                        2 => {
                            for i in mine {
                                let mut r = request(i);
                                loop {
                                    match pool.put_request_timeout(r, Duration::from_micros(50)) {
                                        Ok(_) => break,
                                        Err(PutError::Timeout(back)) => {
                                            refusals.send("timeout").unwrap();
                                            r = back;
                                        }
                                        Err(e) => panic!("{e}"),
                                    }
                                }
                            }
                        }
                        _ => assert_eq!(pool.put_all(mine.map(&request)).unwrap(), PER),
                    }
                })
            })
            .collect();
        drop(refusals_tx);
        let mut handled = 0;
        while producers.iter().any(|p| !p.is_finished()) {
            match pool.poll_timeout(Duration::from_millis(5)) {
                Ok(n) => handled += n,
                Err(PollError::Timeout { .. }) => {}
                Err(PollError::NoResultsPending) => thread::sleep(Duration::from_micros(200)),
                Err(e) => panic!("{e}"),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        handled += pool.wait().unwrap();
        assert_eq!(handled, 4 * PER);
        assert_each_once("callables", &runs);
        assert_each_once("callbacks", &callbacks);
        assert_eq!(
            *callback_threads.lock().unwrap(),
            HashSet::from([thread::current().id()]),
            "with an unbounded result queue, only the polling thread runs callbacks"
        );
        assert_eq!(pool.pending(), 0);
        assert_eq!(pool.stats().completed, 4 * PER as u64);
        // How often the queue pushed back is the scheduler's to decide.
        let _ = refusals.try_iter().count();
    });
}

/// The same with a bounded result queue as well: callbacks may then run
/// on a producer blocked in its put (the guide says so), but each still
/// runs once, and only on threads that put or poll on the handle.
#[test]
fn four_producers_with_a_bounded_result_queue_lose_nothing() {
    within("four producers, bounded results", || {
        const PER: usize = 250;
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(4)
            .result_capacity(2)
            .build()
            .unwrap();
        let callbacks = hit_counters(4 * PER);
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let (producer_ids_tx, producer_ids) = mpsc::channel::<ThreadId>();
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let pool = pool.clone();
                let (callbacks, threads) = (Arc::clone(&callbacks), Arc::clone(&threads));
                let ids = producer_ids_tx.clone();
                thread::spawn(move || {
                    ids.send(thread::current().id()).unwrap();
                    for i in p * PER..(p + 1) * PER {
                        let (callbacks, threads) = (Arc::clone(&callbacks), Arc::clone(&threads));
                        pool.put_request(WorkRequest::new(|i: usize| i, i).on_result(
                            move |_, i| {
                                callbacks[i].fetch_add(1, Ordering::SeqCst);
                                threads.lock().unwrap().insert(thread::current().id());
                            },
                        ))
                        .unwrap();
                    }
                })
            })
            .collect();
        drop(producer_ids_tx);
        while producers.iter().any(|p| !p.is_finished()) {
            match pool.poll_timeout(Duration::from_millis(5)) {
                Ok(_) | Err(PollError::Timeout { .. }) => {}
                Err(PollError::NoResultsPending) => thread::sleep(Duration::from_micros(200)),
                Err(e) => panic!("{e}"),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        pool.wait().unwrap();
        assert_each_once("callbacks", &callbacks);
        let mut allowed: HashSet<ThreadId> = producer_ids.iter().collect();
        allowed.insert(thread::current().id());
        assert!(threads.lock().unwrap().is_subset(&allowed));
    });
}

// ---------------------------------------------------------------------
// (a) The batching advice, as behaviour: `map` keeps input order and
// fails only the input that panicked; a batch reports every member once.

#[test]
fn map_and_put_batch_account_for_every_input() {
    common::hide_panics_starting_with("trial78:");
    within("map and put_batch", || {
        let pool = ThreadPool::new(2);
        let out = pool.map(0..10_000u64, |n: u64| {
            if n == 4_321 {
                panic!("trial78: one input");
            }
            n * 2
        });
        assert_eq!(out.len(), 10_000);
        for (n, o) in out.iter().enumerate() {
            if n == 4_321 {
                assert_eq!(o, &Err(TaskError::Panicked("trial78: one input".into())));
            } else {
                assert_eq!(o, &Ok(n as u64 * 2));
            }
        }

        let hits = hit_counters(1_000);
        let batch = pool
            .put_batch((0..1_000).map(|i| common::hit_request(i, &hits)))
            .unwrap();
        let (done_tx, done_rx) = mpsc::channel();
        batch.on_done(move |p| done_tx.send((p.done, thread::current().id())).unwrap());
        pool.wait().unwrap();
        assert_each_once("batch callbacks", &hits);
        // The last member's outcome was handled by this thread's wait.
        assert_eq!(done_rx.try_recv(), Ok((1_000, thread::current().id())));
        assert!(batch.progress().is_complete());
    });
}

// ---------------------------------------------------------------------
// (d) The global pool from a library.

/// What a library does: it takes a results domain of its own on the
/// global pool, so that its waits never run, or wait for, the program's
/// callbacks. Closing that handle (or `shutdown_now` on another) leaves
/// the global pool open for everyone. The settings given to
/// `configure_global` before first use apply (names, worker count).
mod library {
    use callpool::{ThreadPool, WorkRequest};
    use std::sync::mpsc;

    pub fn squares(ns: &[u64]) -> Vec<u64> {
        let pool: ThreadPool = callpool::global().new_handle();
        let (tx, rx) = mpsc::channel();
        for &n in ns {
            let tx = tx.clone();
            pool.put_request(
                WorkRequest::new(|n: u64| n * n, n).on_result(move |_, sq| tx.send(sq).unwrap()),
            )
            .unwrap();
        }
        pool.wait().unwrap();
        // Only this handle's requests: the global pool stays open.
        pool.shutdown().unwrap();
        let mut out: Vec<u64> = rx.try_iter().collect();
        out.sort_unstable();
        out
    }
}

#[test]
fn the_global_pool_from_a_library_keeps_domains_apart() {
    within("global pool", || {
        // Only this test in this binary touches the global pool, so the
        // configuration is accepted (the binary's first use).
        callpool::configure_global(
            ThreadPool::builder()
                .workers(2)
                .thread_name("trial78-global"),
        )
        .unwrap();
        assert!(matches!(
            callpool::configure_global(ThreadPool::builder()),
            Err(callpool::GlobalPoolError::AlreadyConfigured)
        ));
        let global = callpool::global();
        assert_eq!(global.workers(), 2);
        let name = global
            .submit(|_: ()| thread::current().name().map(str::to_owned), ())
            .unwrap()
            .wait()
            .unwrap()
            .unwrap();
        assert!(name.starts_with("trial78-global-"), "{name}");

        // The program's own request on the global handle, held open while
        // the library runs: the library's wait neither waits for it nor
        // runs its callback.
        let (hold, latch) = gate();
        let callback_ran = common::counter();
        let c = Arc::clone(&callback_ran);
        global
            .put_request(
                WorkRequest::new(move |_: ()| latch.hold(), ()).on_result(move |_, ()| {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap();
        hold.await_start();
        assert_eq!(library::squares(&[1, 2, 3]), vec![1, 4, 9]);
        assert_eq!(callback_ran.load(Ordering::SeqCst), 0);
        assert_eq!(global.pending(), 1);

        // `shutdown_now` on another handle hands back only its own.
        let other = global.new_handle();
        other.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
        let _ = other.shutdown_now();
        hold.open();
        assert_eq!(global.wait().unwrap(), 1);
        assert_eq!(callback_ran.load(Ordering::SeqCst), 1);
        assert!(!global.is_shut_down());
        assert_eq!(global.submit(|n: u8| n, 5).unwrap().wait(), Ok(5));
        assert!(matches!(
            callpool::configure_global(ThreadPool::builder()),
            Err(callpool::GlobalPoolError::AlreadyInitialized)
        ));
    });
}

// ---------------------------------------------------------------------
// (e) Builder options.

/// Names are `{prefix}-{N}`, `N` counted from 0 and never reused after a
/// resize down and up; the start hook runs on the worker, with the index
/// of its name, before it takes a request; the state is made on the
/// worker with its index, seen by its requests, and dropped on it before
/// the stop hook runs there.
#[test]
fn names_hooks_and_worker_state_do_what_their_docs_say() {
    within("builder options", || {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        enum Event {
            Start(usize, String),
            StateMade(usize, String),
            StateDropped(usize, String),
            Stop(usize, String),
        }
        let events = Arc::new(Mutex::new(Vec::new()));
        let name = || thread::current().name().unwrap_or("").to_owned();
        struct State {
            index: usize,
            events: Arc<Mutex<Vec<Event>>>,
        }
        impl Drop for State {
            fn drop(&mut self) {
                let name = thread::current().name().unwrap_or("").to_owned();
                self.events
                    .lock()
                    .unwrap()
                    .push(Event::StateDropped(self.index, name));
            }
        }
        let (e1, e2, e3) = (
            Arc::clone(&events),
            Arc::clone(&events),
            Arc::clone(&events),
        );
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("svc")
            .stack_size(256 * 1024)
            .on_worker_start(move |i| e1.lock().unwrap().push(Event::Start(i, name())))
            .worker_state(move |i| {
                e2.lock().unwrap().push(Event::StateMade(i, name()));
                State {
                    index: i,
                    events: Arc::clone(&e2),
                }
            })
            .on_worker_stop(move |i| e3.lock().unwrap().push(Event::Stop(i, name())))
            .build()
            .unwrap();
        let seen = |pool: &ThreadPool| {
            let t = pool.submit(|_: ()| thread::current().name().map(str::to_owned), ());
            t.unwrap().wait().unwrap().unwrap()
        };
        let first = seen(&pool);
        assert!(first == "svc-0" || first == "svc-1", "{first}");

        // A request sees its worker's own state, index and name agreeing.
        let (tx, rx) = mpsc::channel();
        for _ in 0..20 {
            let tx = tx.clone();
            pool.put_request(WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    let state = cx.worker_state::<State>().expect("set by the builder");
                    tx.send((state.index, cx.worker_index(), name())).unwrap();
                },
                (),
            ))
            .unwrap();
        }
        // The requests have no callbacks: a callable that panicked (no
        // state, say) would end quietly, so each must have reported.
        assert_eq!(pool.wait(), Ok(20));
        let reports: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            reports.len(),
            20,
            "requests that saw their worker: {reports:?}"
        );
        for (index, worker_index, name) in reports {
            assert_eq!(Some(index), worker_index);
            assert_eq!(name, format!("svc-{index}"));
        }

        pool.resize(0).unwrap();
        pool.join_all_dismissed_workers();
        pool.resize(1).unwrap();
        assert_eq!(seen(&pool), "svc-2", "numbers are never reused");
        pool.shutdown().unwrap();

        let events = events.lock().unwrap().clone();
        for i in 0..3 {
            let n = format!("svc-{i}");
            let mine: Vec<_> = events
                .iter()
                .filter(|e| match e {
                    Event::Start(j, _)
                    | Event::StateMade(j, _)
                    | Event::StateDropped(j, _)
                    | Event::Stop(j, _) => *j == i,
                })
                .cloned()
                .collect();
            assert_eq!(
                mine,
                vec![
                    Event::Start(i, n.clone()),
                    Event::StateMade(i, n.clone()),
                    Event::StateDropped(i, n.clone()),
                    Event::Stop(i, n),
                ],
                "worker {i}, in this order, each once, on its own thread"
            );
        }
        assert_eq!(events.len(), 12);
    });
}

/// `stack_size` applies to the workers: a recursion that needs far more
/// than the platform's default thread stack (2 MiB for Rust threads)
/// runs on a worker given 64 MiB.
#[test]
fn stack_size_gives_workers_the_stack_asked_for() {
    within("stack size", || {
        fn deep(n: u32) -> u64 {
            let pad = std::hint::black_box([n as u8; 1024]);
            if n == 0 {
                0
            } else {
                deep(n - 1) + u64::from(pad[0] & 1)
            }
        }
        let pool = ThreadPool::builder()
            .workers(1)
            .stack_size(64 << 20)
            .build()
            .unwrap();
        // About 1 KiB a frame: some 16 MiB.
        let out = pool.submit(|n: u32| deep(n), 16_000).unwrap().wait();
        assert_eq!(out, Ok(8_000));
    });
}

/// Autoscaling: from 1 worker it grows while requests wait, never past
/// `max_workers`, and idle workers above `min_workers` leave after
/// `keep_alive` (their stop hook runs), down to the minimum and no
/// further.
#[test]
fn autoscaling_grows_to_max_and_shrinks_to_min() {
    within("autoscaling", || {
        let (started, stopped) = (common::counter(), common::counter());
        let (b, s) = (Arc::clone(&started), Arc::clone(&stopped));
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(4)
            .keep_alive(Duration::from_millis(20))
            .on_worker_start(move |_| {
                b.fetch_add(1, Ordering::SeqCst);
            })
            .on_worker_stop(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let gate = Arc::new(OneWay::default());
        let _open_on_failure = OpenOnDrop(Arc::clone(&gate));
        let running = common::counter();
        let most = Arc::new(AtomicUsize::new(0));
        let tickets: Vec<_> = (0..12)
            .map(|_| {
                let (gate, running, most) =
                    (Arc::clone(&gate), Arc::clone(&running), Arc::clone(&most));
                pool.submit(
                    move |_: ()| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        gate.pass();
                        running.fetch_sub(1, Ordering::SeqCst);
                    },
                    (),
                )
                .unwrap()
            })
            .collect();
        until(|| running.load(Ordering::SeqCst) == 4);
        assert_eq!(pool.workers(), 4, "grown to max_workers, not past it");
        gate.open();
        for t in tickets {
            assert_eq!(t.wait(), Ok(()));
        }
        assert_eq!(most.load(Ordering::SeqCst), 4);
        assert_eq!(started.load(Ordering::SeqCst), 4);
        until(|| stopped.load(Ordering::SeqCst) == 3);
        assert_eq!(pool.workers(), 1, "down to min_workers");
        // (A worker may be started for this one if the last is not asleep
        // yet as it is put: the docs promise no more than that.)
        assert_eq!(pool.submit(|n: u8| n, 3).unwrap().wait(), Ok(3));
        pool.shutdown().unwrap();
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            started.load(Ordering::SeqCst)
        );
    });
}

/// The guide's round trip, one request at a time, from one thread: every
/// callback runs on it, in put order (one at a time, so order is
/// promised by the wait).
#[test]
fn one_at_a_time_round_trips_run_callbacks_in_order_here() -> TestResult {
    let pool = ThreadPool::new(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let here = thread::current().id();
    for n in 0..200u32 {
        let seen = Arc::clone(&seen);
        pool.put_request(WorkRequest::new(|n: u32| n, n).on_result(move |_, n| {
            assert_eq!(thread::current().id(), here);
            seen.lock().unwrap().push(n);
        }))?;
        assert_eq!(pool.wait()?, 1);
    }
    assert_eq!(*seen.lock().unwrap(), (0..200).collect::<Vec<_>>());
    Ok(())
}

/// from-python.md: a put from a callable on one of the pool's own workers
/// never waits for room; it goes in past the capacity. A full queue of 1
/// on a pool of 1, whose only worker puts ten follow-ups: none is lost.
#[test]
fn a_worker_put_goes_past_a_full_bounded_queue() {
    within("a worker's put on a full queue", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let hits = hit_counters(10);
        let (weak, h) = (pool.downgrade(), Arc::clone(&hits));
        pool.put_request(
            WorkRequest::new(
                move |_: ()| {
                    let pool = weak.upgrade().expect("the test holds the pool");
                    for i in 0..10 {
                        pool.put_request(common::hit_request(i, &h)).unwrap();
                    }
                    pool.queued()
                },
                (),
            )
            .on_result(|_, queued| assert_eq!(queued, 10, "past the capacity of 1")),
        )
        .unwrap();
        assert_eq!(pool.wait().unwrap(), 11);
        assert_each_once("follow-ups", &hits);
    });
}

/// A graceful shutdown drains the queue: tickets queued behind a busy
/// worker when it begins end with their values, awaited after it.
#[test]
fn tickets_queued_at_a_graceful_shutdown_end_with_their_values() {
    within("tickets at shutdown", || {
        let pool = ThreadPool::new(1);
        let (busy, latch) = gate();
        let first = pool.submit(move |_: ()| latch.hold(), ()).unwrap();
        busy.await_start();
        let queued: Vec<_> = (0..5u32)
            .map(|n| pool.submit(|n: u32| n + 100, n).unwrap())
            .collect();
        let closer = pool.clone();
        let shutting = thread::spawn(move || closer.shutdown());
        until(|| pool.is_shut_down());
        assert!(matches!(
            pool.submit(|n: u32| n, 0),
            Err(PutError::ShutDown(_))
        ));
        busy.open();
        shutting.join().unwrap().unwrap();
        let outcomes = futures::executor::block_on(futures::future::join_all(queued));
        assert_eq!(outcomes, (100..105).map(Ok).collect::<Vec<_>>());
        assert_eq!(first.wait(), Ok(()));
    });
}
