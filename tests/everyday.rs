//! The traps a new user fell into, each shown gone: handles that share a
//! results domain by cloning, a shared handle that can shut the pool down,
//! a crawler whose callbacks put follow-ups without keeping the pool alive,
//! and one log line (not one per request) for a forgotten `wait`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpool::{PutError, ThreadPool, WorkRequest};
use common::within;

/// Clones share one results domain: what one clone puts, a `wait` on
/// another covers and runs the callbacks of.
#[test]
fn clones_share_one_results_domain() {
    let pool = ThreadPool::new(2);
    let clone = pool.clone();
    let ran = common::counter();
    for i in 0..100u32 {
        let ran = Arc::clone(&ran);
        clone
            .put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
    }
    assert_eq!(pool.pending(), 100);
    drop(clone);
    assert_eq!(pool.wait(), Ok(100));
    assert_eq!(ran.load(Ordering::SeqCst), 100);
}

/// `close(&self)` on a handle shared through an `Arc`: the work runs, the
/// pool refuses puts on every handle afterwards, and its threads are gone.
#[test]
fn a_shared_handle_can_close_the_pool() {
    within("close", || {
        let pool = Arc::new(ThreadPool::new(2));
        let other = Arc::clone(&pool);
        let ran = common::counter();
        for i in 0..50u32 {
            let ran = Arc::clone(&ran);
            other
                .put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                    ran.fetch_add(1, Ordering::SeqCst);
                }))
                .unwrap();
        }
        pool.close().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 50);
        assert_eq!(pool.threads(), 0);
        assert!(matches!(
            other.put_request(WorkRequest::new(|x: u32| x, 1)),
            Err(PutError::ShutDown(_))
        ));
    });
}

/// Threads whose name starts with `prefix`, from `/proc/self/task`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// A crawler whose callbacks put follow-ups through a `WeakPool`: dropping
/// the pool with a result never handled lets its workers exit (with an
/// `Arc<ThreadPool>` in the callback the cycle kept them alive for good).
#[test]
fn a_crawler_holding_a_weak_pool_does_not_keep_its_workers_alive() {
    within("crawler", || {
        const NAME: &str = "crawl-weak";
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name(NAME)
            .build()
            .unwrap();
        // A thread names itself as it starts: wait until all three have.
        while threads_named(NAME) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let weak = pool.downgrade();
        pool.put_request(WorkRequest::new(|n: u32| n, 1).on_result(move |_, n| {
            if let Some(pool) = weak.upgrade() {
                pool.put_request(WorkRequest::new(|n: u32| n + 1, n))
                    .unwrap();
            }
        }))
        .unwrap();
        // Never polled: the request's outcome, holding the callback and its
        // weak handle, is still in the result queue when the pool goes.
        drop(pool);
        while threads_named(NAME) > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// A logger that keeps the warnings callpool logs.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn && record.target().starts_with("callpool") {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Dropping a pool with 10,000 requests never waited for logs one warning
/// with their number, not one per request.
#[test]
fn a_forgotten_wait_logs_one_line() {
    static WARNINGS: Warnings = Warnings(Mutex::new(Vec::new()));
    log::set_logger(&WARNINGS).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let pool = ThreadPool::new(0);
    for i in 0..10_000u32 {
        pool.put_request(WorkRequest::new(|x: u32| x, i)).unwrap();
    }
    drop(pool);
    let warnings = WARNINGS.0.lock().unwrap().clone();
    // Other tests of this binary run alongside and may warn once each; a
    // warning per request would be thousands.
    let ours: Vec<_> = warnings.iter().filter(|w| w.contains("10000")).collect();
    assert_eq!(ours.len(), 1, "{warnings:?}");
    assert!(warnings.len() < 10, "{} warnings", warnings.len());
}

const CHILD: &str = "CALLPOOL_EVERYDAY_CHILD";

/// In a child process (a clean panic hook): a quiet pool's panics reach the
/// ticket with their message but print nothing; a default pool's print.
#[test]
fn quiet_panics_reach_the_callback_but_do_not_print() {
    const NAME: &str = "quiet_panics_reach_the_callback_but_do_not_print";
    if common::is_child(NAME, CHILD) {
        let quiet = ThreadPool::builder()
            .workers(1)
            .quiet_panics(true)
            .build()
            .unwrap();
        let ticket = quiet
            .submit(|_: ()| -> u8 { panic!("quiet-pool-panic") }, ())
            .unwrap();
        assert_eq!(
            ticket.wait(),
            Err(callpool::TaskError::Panicked("quiet-pool-panic".into()))
        );
        let loud = ThreadPool::new(1);
        let ticket = loud
            .submit(|_: ()| -> u8 { panic!("loud-pool-panic") }, ())
            .unwrap();
        assert!(ticket.wait().is_err());
        common::child_ran(NAME);
        return;
    }
    let output = common::run_in_child(NAME, CHILD);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("quiet-pool-panic"), "{stderr}");
    assert!(stderr.contains("loud-pool-panic"), "{stderr}");
}

/// Start and stop hooks run once per worker, on that worker, with its
/// index; through growth, dismissal and shutdown.
#[test]
fn worker_hooks_run_once_per_worker_on_that_worker() {
    within("hooks", || {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (starts, stops) = (Arc::clone(&events), Arc::clone(&events));
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("hooked")
            .on_worker_start(move |i| {
                let me = std::thread::current().name().unwrap().to_owned();
                starts.lock().unwrap().push(format!("start {i} on {me}"));
            })
            .on_worker_stop(move |i| {
                let me = std::thread::current().name().unwrap().to_owned();
                stops.lock().unwrap().push(format!("stop {i} on {me}"));
            })
            .build()
            .unwrap();
        pool.create_workers(1).unwrap();
        pool.dismiss_workers(1);
        pool.join_all_dismissed_workers();
        pool.shutdown().unwrap();
        let mut events = events.lock().unwrap().clone();
        events.sort();
        assert_eq!(
            events,
            [
                "start 0 on hooked-0",
                "start 1 on hooked-1",
                "start 2 on hooked-2",
                "stop 0 on hooked-0",
                "stop 1 on hooked-1",
                "stop 2 on hooked-2",
            ]
        );
    });
}

/// Zero-argument work, and a lazy `put_all` over a large input on a bounded
/// queue: never more queued than the capacity allows.
#[test]
fn call_and_put_all_with_back_pressure() {
    within("put_all", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(8)
            .build()
            .unwrap();
        let max_queued = Arc::new(AtomicUsize::new(0));
        let sum = Arc::new(AtomicUsize::new(0));
        let (m, p) = (Arc::clone(&max_queued), &pool);
        let requests = (0..100_000usize).map(|n| {
            m.fetch_max(p.queued(), Ordering::SeqCst);
            let sum = Arc::clone(&sum);
            WorkRequest::call(move || n).on_result(move |_, n| {
                sum.fetch_add(n, Ordering::SeqCst);
            })
        });
        assert_eq!(pool.put_all(requests).unwrap(), 100_000);
        pool.wait().unwrap();
        assert_eq!(sum.load(Ordering::SeqCst), (0..100_000).sum::<usize>());
        assert!(max_queued.load(Ordering::SeqCst) <= 8);
    });
}

/// The input comes back with every outcome, a cancellation included, so a
/// loop can say which input failed without an id-to-input map.
#[test]
fn callbacks_get_the_input_back_even_when_cancelled() {
    within("with input", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        held.await_start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ok, err) = (Arc::clone(&seen), Arc::clone(&seen));
        let requests = callpool::make_requests_with_input(
            |url: &String| url.len(),
            ["a", "bb", "ccc"].map(String::from),
            move |_, url, len| ok.lock().unwrap().push(format!("{url} {len}")),
            move |_, url, e| err.lock().unwrap().push(format!("{url} {e:?}")),
        );
        let ids: Vec<_> = requests.iter().map(WorkRequest::id).collect();
        pool.put_all(requests).unwrap();
        assert!(pool.cancel(ids[1]));
        held.open();
        pool.wait().unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["a 1", "bb Cancelled", "ccc 3"]);
    });
}

/// The fallible form: an `Err` comes back typed, a panic and a
/// cancellation as theirs, each with its input; `stats()` tells them apart.
#[test]
fn fallible_callbacks_get_the_input_back_with_each_kind_of_end() {
    common::hide_panics_starting_with("everyday: deliberate");
    within("fallible with input", || {
        let pool = ThreadPool::new(1);
        let (held, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        held.await_start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (ok, err) = (Arc::clone(&seen), Arc::clone(&seen));
        let requests = callpool::make_fallible_requests_with_input(
            |text: &String| match text.as_str() {
                "boom" => panic!("everyday: deliberate"),
                text => text.parse::<u8>(),
            },
            ["7", "x", "boom", "9"].map(String::from),
            move |_, text, n| ok.lock().unwrap().push(format!("{text} ok {n}")),
            move |_, text, e: callpool::TaskError<std::num::ParseIntError>| {
                let kind = match e {
                    callpool::TaskError::Failed(e) => format!("failed {e}"),
                    callpool::TaskError::Panicked(_) => "panicked".to_string(),
                    callpool::TaskError::Cancelled => "cancelled".to_string(),
                    other => format!("{other:?}"),
                };
                err.lock().unwrap().push(format!("{text} {kind}"));
            },
        );
        let ids: Vec<_> = requests.iter().map(WorkRequest::id).collect();
        pool.put_all(requests).unwrap();
        assert!(pool.cancel(ids[3]));
        held.open();
        assert_eq!(pool.wait(), Ok(5));
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(
            seen,
            [
                "7 ok 7",
                "9 cancelled",
                "boom panicked",
                "x failed invalid digit found in string"
            ]
        );
        let stats = pool.stats();
        assert_eq!(
            (
                stats.completed,
                stats.failed,
                stats.panicked,
                stats.cancelled
            ),
            (2, 1, 1, 1)
        );
    });
}

/// `stats()` counts each way a request ends exactly, over every handle,
/// and sees a busy and an idle worker.
#[test]
fn stats_count_each_end_exactly() {
    within("stats", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .quiet_panics(true)
            .build()
            .unwrap();
        let other = pool.new_handle();
        for i in 0..10u32 {
            other.put_request(WorkRequest::new(|x: u32| x, i)).unwrap();
        }
        for _ in 0..3 {
            pool.put_request(WorkRequest::fallible(|_: ()| Err::<u8, _>("no"), ()))
                .unwrap();
        }
        pool.put_request(
            WorkRequest::new(|_: ()| -> u8 { panic!("counted") }, ()).on_error(|_, _| {}),
        )
        .unwrap();
        pool.put_request(
            WorkRequest::new(|x: u8| x, 1)
                .deadline(std::time::Instant::now())
                .on_error(|_, _| {}),
        )
        .unwrap();
        other.wait().unwrap();
        pool.wait().unwrap();
        // Both workers held by gates (busy, none idle); a request queued
        // behind them is cancelled.
        let (a, a_latch) = common::gate();
        let (b, b_latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| a_latch.hold(), ()))
            .unwrap();
        pool.put_request(WorkRequest::new(move |_: ()| b_latch.hold(), ()))
            .unwrap();
        a.await_start();
        b.await_start();
        let queued = pool
            .put_request(WorkRequest::new(|x: u8| x, 2).on_error(|_, _| {}))
            .unwrap();
        assert!(pool.cancel(queued));
        let stats = pool.stats();
        assert_eq!(
            (stats.workers, stats.threads, stats.busy, stats.idle),
            (2, 2, 2, 0)
        );
        assert_eq!(stats.queued, 0);
        assert_eq!(
            (
                stats.completed,
                stats.failed,
                stats.panicked,
                stats.cancelled
            ),
            (10, 3, 1, 2),
            "{stats:?}"
        );
        a.open();
        b.open();
        pool.wait().unwrap();
        assert_eq!(pool.stats().completed, 12);
    });
}

/// Each worker has its own state (here an `Rc`, which is not `Send`: it
/// never leaves its thread), made once per worker and reused by every
/// request that worker runs.
#[test]
fn worker_state_is_made_once_per_worker_and_reused() {
    use callpool::Context;
    use std::cell::Cell;
    use std::rc::Rc;
    within("worker state", || {
        let made = common::counter();
        let m = Arc::clone(&made);
        let pool = ThreadPool::builder()
            .workers(3)
            .worker_state(move |index| {
                m.fetch_add(1, Ordering::SeqCst);
                (index, Rc::new(Cell::new(0usize)))
            })
            .build()
            .unwrap();
        let runs = Arc::new(Mutex::new(std::collections::HashMap::new()));
        for _ in 0..300 {
            let runs = Arc::clone(&runs);
            pool.put_request(
                WorkRequest::with_context(
                    |cx: &Context<'_>, _: ()| {
                        let state = cx.worker_state::<(usize, Rc<Cell<usize>>)>().unwrap();
                        state.1.set(state.1.get() + 1);
                        (state.0, state.1.get())
                    },
                    (),
                )
                .on_result(move |_, (index, count)| {
                    let mut runs = runs.lock().unwrap();
                    let best = runs.entry(index).or_insert(0);
                    *best = count.max(*best);
                }),
            )
            .unwrap();
        }
        pool.wait().unwrap();
        let total: usize = runs.lock().unwrap().values().sum();
        assert_eq!(total, 300, "each worker's count reached what it ran");
        // A type that is not the state: None, not a panic. (The answer
        // comes back as the result: a panic, or an assertion, in the
        // callable would only reach an error callback.)
        let answer = Arc::new(Mutex::new(None));
        let a = Arc::clone(&answer);
        pool.put_request(
            WorkRequest::with_context(
                |cx: &Context<'_>, _: ()| cx.worker_state::<String>().is_none(),
                (),
            )
            .on_result(move |_, none| *a.lock().unwrap() = Some(none))
            .on_error(|_, e| panic!("worker_state of another type: {e}")),
        )
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(
            *answer.lock().unwrap(),
            Some(true),
            "another type's state: None"
        );
        // Every worker has started (and made its state) once it is joined.
        pool.shutdown().unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 3);
    });
}

/// A timed request's callbacks read how long it was queued and ran, and on
/// which worker; an untimed one's read nothing, and nothing leaks past the
/// callback.
#[test]
fn a_timed_requests_callbacks_read_its_timing() {
    within("timing", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("timed")
            .build()
            .unwrap();
        let (held, latch) = common::gate();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (a, b) = (Arc::clone(&seen), Arc::clone(&seen));
        pool.put_request(
            WorkRequest::new(move |_: ()| latch.hold(), ())
                .timed()
                .on_result(move |_, _| a.lock().unwrap().push(callpool::timing())),
        )
        .unwrap();
        pool.put_request(
            WorkRequest::new(|x: u8| x, 1)
                .on_result(move |_, _| b.lock().unwrap().push(callpool::timing())),
        )
        .unwrap();
        held.await_start();
        // Held at least this long: its running time can only be longer.
        std::thread::sleep(Duration::from_millis(20));
        held.open();
        pool.wait().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let timed = seen[0].expect("the timed request's callback reads its timing");
        assert_eq!(timed.worker, Some(0));
        assert!(timed.running >= Duration::from_millis(20), "{timed:?}");
        assert_eq!(seen[1], None, "an untimed request reads nothing");
        assert_eq!(callpool::timing(), None);
    });
}

/// An expired timed request's time queued ends when a worker took it, not
/// when its error callback runs: here the callback runs after a pause that
/// began once the request had left the queue, and `queued` stays within
/// the time measured up to that pause.
#[test]
fn an_expired_requests_time_queued_ends_when_it_was_taken() {
    within("expired timing", || {
        let pool = ThreadPool::new(1);
        let seen = Arc::new(Mutex::new(None));
        let into = Arc::clone(&seen);
        let made = std::time::Instant::now();
        pool.put_request(
            WorkRequest::new(|x: u8| x, 1)
                .timed()
                .deadline(made)
                .on_error(move |_, err| *into.lock().unwrap() = Some((err, callpool::timing()))),
        )
        .unwrap();
        // The one worker takes requests in order: once the next one runs,
        // the expired one has been taken and ended.
        let (next_ran, ran) = std::sync::mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |_: ()| next_ran.send(()).unwrap(),
            (),
        ))
        .unwrap();
        ran.recv_timeout(common::HANG).unwrap();
        let taken_by = made.elapsed();
        std::thread::sleep(Duration::from_millis(50));
        pool.wait().unwrap();
        let (err, timing) = seen.lock().unwrap().take().expect("the error callback ran");
        assert_eq!(err, callpool::TaskError::Expired);
        let timing = timing.expect("a timed request");
        assert!(
            timing.queued <= taken_by,
            "{timing:?}, taken within {taken_by:?}"
        );
        assert_eq!((timing.running, timing.worker), (Duration::ZERO, None));
    });
}

/// An outcome taken from a ticket, a collector, a scope or `as_completed`
/// is already in `stats()`, as one handed to a callback is: the worker
/// counts it before it hands it over. (It counted after: right after a
/// ticket's `wait`, `completed` was one short in about 150 rounds of 2,000.)
#[test]
fn stats_count_an_outcome_before_it_reaches_a_ticket_collector_or_scope() {
    within("stats after each way of taking an outcome", || {
        let pool = ThreadPool::new(2);
        let mut expected = 0;
        for round in 0..300u32 {
            for kind in ["ticket", "collector", "scope", "as_completed"] {
                match kind {
                    "ticket" => {
                        pool.submit(|x: u32| x, round).unwrap().wait().unwrap();
                    }
                    "collector" => {
                        let mut collector = pool.collector::<u32>();
                        collector.put(|x: u32| x, round).unwrap();
                        collector.wait_with(|_, _| {});
                    }
                    "scope" => {
                        let input = round;
                        pool.scope(|s| {
                            s.put(|x: &u32| *x, &input).unwrap();
                        });
                    }
                    _ => {
                        let outcomes: Vec<_> =
                            pool.as_completed(0..1u32, 1, |x: &u32| *x).collect();
                        assert_eq!(outcomes.len(), 1);
                    }
                }
                expected += 1;
                assert_eq!(pool.stats().completed, expected, "{kind}, round {round}");
            }
        }
    });
}

/// A ticket cancelled while queued is counted in `stats().cancelled` once
/// the worker has passed it, as a cancelled callback request is. (With
/// the count moved before the hand-over, the worker no longer counted a
/// ticket it found cancelled.)
#[test]
fn stats_count_a_ticket_cancelled_while_queued() {
    within("a cancelled ticket counted", || {
        let pool = ThreadPool::new(1);
        let (gate, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        gate.await_start();
        let ticket = pool.submit(|x: u32| x, 1).unwrap();
        assert!(ticket.cancel());
        // Behind the ticket's request on the one worker: once it ran, the
        // worker has passed the cancelled one.
        pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        gate.open();
        pool.wait().unwrap();
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled), (2, 1), "{stats:?}");
    });
}

/// Callbacks that a timed request's callback runs by waiting (on another
/// handle, or on a collector) or through `Batch::on_done` read their own
/// request's timing: `None` for
/// an untimed one, not the timing of the callback they run inside; and the
/// outer callback reads its own again afterwards.
#[test]
fn callbacks_nested_in_a_timed_callback_read_their_own_timing() {
    within("nested timing", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .thread_name("timed")
            .build()
            .unwrap();
        let other = pool.new_handle();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = Arc::clone(&seen);
        other
            .put_request(
                WorkRequest::new(|x: u8| x, 1).on_result(move |_, _| {
                    inner.lock().unwrap().push(("untimed", callpool::timing()))
                }),
            )
            .unwrap();
        let outer = Arc::clone(&seen);
        pool.put_request(
            WorkRequest::new(|x: u8| x, 2)
                .timed()
                .on_result(move |_, _| {
                    let mine = callpool::timing();
                    outer.lock().unwrap().push(("outer", mine));
                    assert_eq!(other.wait(), Ok(1));
                    let mut collector = other.collector::<u8>();
                    let from_collector = Arc::clone(&outer);
                    collector
                        .put_then(
                            |x: u8| x,
                            3,
                            move |_| {
                                from_collector
                                    .lock()
                                    .unwrap()
                                    .push(("collector", callpool::timing()))
                            },
                        )
                        .unwrap();
                    assert_eq!(collector.wait_with(|_, _| {}), 1);
                    drop(collector);
                    // A batch that has ended runs its batch-done callback
                    // at once, here.
                    let batch = other.put_batch([WorkRequest::new(|x: u8| x, 4)]).unwrap();
                    assert_eq!(other.wait(), Ok(1));
                    let from_batch = Arc::clone(&outer);
                    batch.on_done(move |_| {
                        from_batch
                            .lock()
                            .unwrap()
                            .push(("batch done", callpool::timing()))
                    });
                    assert_eq!(callpool::timing(), mine, "the outer callback's own again");
                }),
        )
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0].0, "outer");
        assert_eq!(seen[0].1.expect("a timed request").worker, Some(0));
        assert_eq!(
            &seen[1..],
            [("untimed", None), ("collector", None), ("batch done", None)]
        );
        assert_eq!(callpool::timing(), None);
    });
}
