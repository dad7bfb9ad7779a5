//! A new user's trial, coming from rust-threadpool and rayon with the docs
//! alone (README.md, the rustdoc, docs/guide.md's *Coming from
//! rust-threadpool*, the examples): the programs such a user writes first,
//! each asserting what the docs promise. Every row of the guide's
//! migration table is here, most beside the rust-threadpool call it
//! replaces (a dev-dependency), so that a difference the table names is
//! seen on both sides: counts, `join` as `wait`, resizing, panics, what
//! a dropped pool does with its queue, `execute` after shutdown. Then
//! rust-threadpool's README programs (a channel fan-in, a barrier), a pool
//! shared between threads (clones against `new_handle`), rayon's `scope`
//! and `join` (a sort and a sum) and `par_iter().map().collect()` through
//! `map` and `imap`, the global pool (in a child process), the builder's
//! names, stack size and hooks, the error types as `?` and an
//! `anyhow`-style reporter use them, and the traits a user expects of the
//! public types.

mod common;

use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::{Debug, Display};
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use callpool::{
    BatchError, BuildError, Builder, CancelHandle, CommandError, Context, GlobalPoolError,
    PollError, PutError, ScopedPutError, ShutdownError, SpawnError, Stats, TaskError, ThreadPool,
    Ticket, TrySubmitError, WaitError, WeakPool, WorkRequest,
};
use common::{
    counter, gate, hide_panics_starting_with, hit_counters, logs, one_way, until, within, Dropped,
    TestResult,
};

const DELIBERATE: &str = "new user: deliberate panic";

/// What a hook saw: its index and its thread's name.
type Seen = Arc<Mutex<Vec<(usize, Option<String>)>>>;

/// Names the threads the hooks saw start or stop, by index.
fn recorder() -> Seen {
    Arc::new(Mutex::new(Vec::new()))
}

// ---------------------------------------------------------------------------
// The migration table, row by row.
// ---------------------------------------------------------------------------

/// Row 1: rust-threadpool's `new(0)` panics; callpool's is a pool with no
/// worker yet, whose requests wait until `create_workers` adds one.
#[test]
fn new_with_zero_workers_is_a_pool_that_waits_for_create_workers() -> TestResult {
    hide_panics_starting_with("Thread pool count");
    let theirs = panic::catch_unwind(|| threadpool::ThreadPool::new(0));
    assert!(theirs.is_err(), "rust-threadpool panics on 0 threads");

    let pool = ThreadPool::new(0);
    let ran = counter();
    let r = Arc::clone(&ran);
    pool.execute(move || {
        r.fetch_add(1, Ordering::SeqCst);
    })?;
    assert_eq!((pool.workers(), pool.queued(), pool.pending()), (0, 1, 1));
    assert_eq!(
        pool.wait(),
        Err(WaitError::NoWorkersAvailable { pending: 1 }),
        "wait says why it cannot return instead of hanging"
    );
    pool.create_workers(1)?;
    assert_eq!(
        within("wait after create_workers", move || pool.wait()),
        Ok(0)
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    Ok(())
}

/// Row 2: `with_name(name, n)` names every thread `name`; callpool's
/// builder names them `name-0`, `name-1`, ... as the table says, and the
/// hooks' index is that number. `stack_size` is rust-threadpool's
/// `thread_stack_size`: a callable that needs a deep stack gets one.
#[test]
fn thread_names_are_numbered_and_the_hooks_see_each_index_once() -> TestResult {
    let theirs = threadpool::ThreadPool::with_name("worker".into(), 2);
    let (tx, rx) = channel();
    for _ in 0..2 {
        let tx = tx.clone();
        theirs.execute(move || {
            tx.send(thread::current().name().map(str::to_owned))
                .unwrap()
        });
    }
    theirs.join();
    assert!(rx.try_iter().all(|name| name.as_deref() == Some("worker")));

    let started = recorder();
    let stopped = recorder();
    let (s, t) = (Arc::clone(&started), Arc::clone(&stopped));
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name("worker")
        .stack_size(32 << 20)
        .on_worker_start(move |i| {
            let name = thread::current().name().map(str::to_owned);
            s.lock().unwrap().push((i, name));
        })
        .on_worker_stop(move |i| {
            let name = thread::current().name().map(str::to_owned);
            t.lock().unwrap().push((i, name));
        })
        .build()?;
    // 4 MiB on the stack (copied once more by `black_box` in a debug
    // build): past the 2 MiB a spawned thread gets by default.
    let deep = pool.submit(
        |fill: u8| {
            let big = std::hint::black_box([fill; 4 << 20]);
            big.iter().map(|&b| usize::from(b)).sum::<usize>()
        },
        1,
    )?;
    assert_eq!(deep.wait(), Ok(4 << 20));
    pool.shutdown()?; // joins every worker, so every hook has run
    let expected: BTreeSet<(usize, Option<String>)> =
        (0..4).map(|i| (i, Some(format!("worker-{i}")))).collect();
    for (what, seen) in [("start", started), ("stop", stopped)] {
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "one {what} hook per worker: {seen:?}");
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{what}"
        );
    }
    Ok(())
}

/// Row 3 and 4: `execute` then `join` is `execute` then `wait`: every
/// closure has run when `wait` returns, which handles (and counts) no
/// result for them; and the pool is used again after, as rust-threadpool's
/// is after `join`.
#[test]
fn execute_then_wait_is_execute_then_join_and_the_pool_goes_on() -> TestResult {
    let pool = ThreadPool::builder()
        .workers(4)
        .thread_name("worker")
        .build()?;
    let theirs = threadpool::ThreadPool::new(4);
    for round in 1..=3usize {
        let hits = hit_counters(100);
        let their_hits = hit_counters(100);
        for i in 0..100 {
            let h = Arc::clone(&hits);
            pool.execute(move || {
                h[i].fetch_add(1, Ordering::SeqCst);
            })?;
            let h = Arc::clone(&their_hits);
            theirs.execute(move || {
                h[i].fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(pool.wait()?, 0, "round {round}: no result to handle");
        theirs.join();
        common::assert_each_once("executed closure", &hits);
        common::assert_each_once("rust-threadpool's closure", &their_hits);
        assert_eq!((pool.pending(), pool.queued()), (0, 0));
        assert_eq!(pool.stats().completed, 100 * round as u64);
    }
    Ok(())
}

/// Row 6: `queued_count()`, `active_count()`, `max_count()` are
/// `queued()`, `stats().running`, `workers()`: with two workers held on a
/// gate and three closures behind them, both pools say 3 queued, 2
/// active, 2 at most, and 0 active once joined. (`busy` also counts a
/// worker that is looking for work a moment before it sleeps, so it is
/// read until it settles.)
#[test]
fn queued_busy_and_workers_count_what_rust_threadpool_counts() -> TestResult {
    let gate = Arc::new(one_way::Gate::default());
    let _open = one_way::OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = channel();

    let pool = ThreadPool::new(2);
    let theirs = threadpool::ThreadPool::new(2);
    for _ in 0..2 {
        let (g, s) = (Arc::clone(&gate), started_tx.clone());
        pool.execute(move || {
            s.send(()).unwrap();
            g.pass();
        })?;
        let (g, s) = (Arc::clone(&gate), started_tx.clone());
        theirs.execute(move || {
            s.send(()).unwrap();
            g.pass();
        });
    }
    for _ in 0..4 {
        started.recv_timeout(common::HANG)?;
    }
    for _ in 0..3 {
        pool.execute(|| {})?;
        theirs.execute(|| {});
    }
    assert_eq!(theirs.queued_count(), 3);
    assert_eq!(theirs.active_count(), 2);
    assert_eq!(theirs.max_count(), 2);
    assert_eq!(pool.queued(), 3);
    assert_eq!(pool.stats().running, 2);
    until(|| pool.stats().busy == 2);
    assert_eq!(pool.workers(), 2);
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.workers, stats.threads), (3, 2, 2));

    gate.open();
    theirs.join();
    pool.wait()?;
    assert_eq!((theirs.queued_count(), theirs.active_count()), (0, 0));
    assert_eq!((pool.queued(), pool.stats().running), (0, 0));
    until(|| {
        let stats = pool.stats();
        (stats.busy, stats.idle) == (0, 2)
    });
    Ok(())
}

/// Row 5: `set_num_threads(n)` is `resize(n)`: extra workers leave at
/// once if idle, after their request if busy, and the queued closures
/// stay queued for those that remain (none is lost, none run twice).
#[test]
fn resize_is_set_num_threads_and_a_busy_worker_leaves_after_its_closure() -> TestResult {
    let gate = Arc::new(one_way::Gate::default());
    let _open = one_way::OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = channel();
    let pool = ThreadPool::new(3);
    for _ in 0..3 {
        let (g, s) = (Arc::clone(&gate), started_tx.clone());
        pool.execute(move || {
            s.send(()).unwrap();
            g.pass();
        })?;
    }
    for _ in 0..3 {
        started.recv_timeout(common::HANG)?;
    }
    let hits = hit_counters(20);
    for i in 0..20 {
        let h = Arc::clone(&hits);
        pool.execute(move || {
            h[i].fetch_add(1, Ordering::SeqCst);
        })?;
    }
    pool.resize(1)?; // all three are busy: two leave after their closure
    assert_eq!((pool.workers(), pool.threads()), (1, 3));
    assert_eq!(pool.queued(), 20, "a dismissed worker takes no new closure");
    gate.open();
    pool.wait()?;
    common::assert_each_once("closure queued across the resize", &hits);
    assert_eq!(pool.join_all_dismissed_workers(), 2);
    assert_eq!((pool.workers(), pool.threads()), (1, 1));

    pool.resize(4)?; // and up again, as set_num_threads(4)
    assert_eq!(pool.workers(), 4);
    let mut theirs = threadpool::ThreadPool::new(1);
    theirs.set_num_threads(4);
    assert_eq!(theirs.max_count(), 4);
    Ok(())
}

/// Row 7: a panicking job. rust-threadpool counts it in `panic_count` and
/// replaces the thread; callpool counts it in `stats().panicked`, keeps
/// the worker, and logs it at error level with its message; with a
/// ticket or an error callback the message reaches the caller as
/// `TaskError::Panicked`.
#[test]
fn a_panicking_job_is_counted_logged_and_reaches_a_ticket_or_error_callback() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    logs::install();
    let theirs = threadpool::ThreadPool::new(1);
    theirs.execute(|| panic!("{DELIBERATE} (rust-threadpool)"));
    theirs.join();
    assert_eq!(theirs.panic_count(), 1);

    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("lone")
        .build()?;
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = Arc::clone(&names);
    pool.execute(move || {
        n.lock()
            .unwrap()
            .push(thread::current().name().map(str::to_owned));
        panic!("{DELIBERATE} in an executed closure 5b1e");
    })?;
    pool.wait()?;
    assert_eq!(pool.stats().panicked, 1);
    assert!(
        logs::error_with(&["5b1e"]).is_some(),
        "the executed closure's panic is logged at error level: {:?}",
        logs::records()
    );

    let ticket = pool.submit(|_: ()| -> u32 { panic!("{DELIBERATE} in a ticket") }, ())?;
    assert_eq!(
        ticket.wait(),
        Err(TaskError::Panicked(format!("{DELIBERATE} in a ticket")))
    );
    let (tx, rx) = channel();
    pool.put_request(
        WorkRequest::new(
            |_: ()| -> u32 { panic!("{DELIBERATE} in a callback's request") },
            (),
        )
        .on_error(move |_, e: TaskError| tx.send(e).unwrap()),
    )?;
    pool.wait()?;
    assert_eq!(
        rx.try_recv()?,
        TaskError::Panicked(format!("{DELIBERATE} in a callback's request"))
    );
    // The same worker lives on: it ran every one of them and runs the next.
    let n = Arc::clone(&names);
    pool.execute(move || {
        n.lock()
            .unwrap()
            .push(thread::current().name().map(str::to_owned))
    })?;
    pool.wait()?;
    assert_eq!(
        *names.lock().unwrap(),
        [Some("lone-0".to_owned()), Some("lone-0".to_owned())]
    );
    assert_eq!((pool.stats().panicked, pool.workers()), (3, 1));
    Ok(())
}

/// Row 8: dropping the pool. rust-threadpool's workers go on through the
/// queue; callpool's last handle closes the pool at once: the closure
/// that is running finishes, the queued ones never run and are dropped.
#[test]
fn dropping_the_last_handle_runs_no_queued_closure_unlike_rust_threadpool() -> TestResult {
    // rust-threadpool: the queue is drained after the drop.
    let (their_gate, their_latch) = gate();
    let theirs = threadpool::ThreadPool::new(1);
    theirs.execute(move || their_latch.hold());
    their_gate.await_start();
    let (ran_tx, ran) = channel();
    for i in 0..5 {
        let tx = ran_tx.clone();
        theirs.execute(move || tx.send(i).unwrap());
    }
    drop(theirs);
    their_gate.open();
    let drained: Vec<i32> = (0..5)
        .map(|_| ran.recv_timeout(common::HANG).unwrap())
        .collect();
    assert_eq!(drained, [0, 1, 2, 3, 4]);

    // callpool: the queue is discarded.
    let (stopped_tx, stopped) = channel();
    let pool = ThreadPool::builder()
        .workers(1)
        .on_worker_stop(move |i| stopped_tx.send(i).unwrap())
        .build()?;
    let (held, latch) = gate();
    let finished = counter();
    let f = Arc::clone(&finished);
    pool.execute(move || {
        latch.hold();
        f.fetch_add(1, Ordering::SeqCst);
    })?;
    held.await_start();
    let ran = counter();
    let dropped = counter();
    for _ in 0..5 {
        let (r, d) = (Arc::clone(&ran), Dropped(Arc::clone(&dropped)));
        pool.execute(move || {
            let _d = d;
            r.fetch_add(1, Ordering::SeqCst);
        })?;
    }
    drop(pool); // never blocks, though a closure is running
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        5,
        "the queued closures are dropped"
    );
    held.open();
    assert_eq!(stopped.recv_timeout(common::HANG)?, 0, "the worker leaves");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the running closure finished"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no queued closure ran");
    Ok(())
}

/// Row 3 again: `execute` on a pool that is shut down is refused with the
/// request handed back, never silently dropped (rust-threadpool has no
/// shutdown; its `execute` cannot fail). The closure handed back runs
/// exactly once when put on another pool. `shutdown` takes the handle by
/// value, so the program shuts down through a clone, or with `close`.
#[test]
fn execute_after_shutdown_hands_the_closure_back_to_put_elsewhere() -> TestResult {
    let pool = ThreadPool::new(2);
    pool.clone().shutdown()?;
    assert!(pool.is_shut_down());
    let ran = counter();
    let r = Arc::clone(&ran);
    let refused = match pool.execute(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }) {
        Err(PutError::ShutDown(request)) => request,
        other => panic!("expected ShutDown, got {other:?}"),
    };
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let elsewhere = ThreadPool::new(1);
    elsewhere.put_request(refused)?;
    assert_eq!(elsewhere.wait()?, 0, "still a request nobody hears");
    assert_eq!(ran.load(Ordering::SeqCst), 1);

    let closed = ThreadPool::new(1);
    closed.close()?;
    let err = closed.execute(|| {}).unwrap_err();
    assert!(matches!(err, PutError::ShutDown(_)));
    assert!(err.to_string().contains("shut down"), "{err}");
    Ok(())
}

/// The table's advice, "`wait` or `shutdown` first": a graceful
/// `shutdown` (here through a clone, from another thread) runs every
/// closure still queued, each once, and a closure executed on another
/// clone meanwhile is refused with the request handed back, not lost.
#[test]
fn graceful_shutdown_runs_every_queued_closure_and_refuses_later_ones() -> TestResult {
    let pool = ThreadPool::new(1);
    let (held, latch) = gate();
    pool.execute(move || latch.hold())?;
    held.await_start();
    let hits = hit_counters(10);
    for i in 0..10 {
        let h = Arc::clone(&hits);
        pool.execute(move || {
            h[i].fetch_add(1, Ordering::SeqCst);
        })?;
    }
    let closer = pool.clone();
    let shutting = thread::spawn(move || closer.shutdown());
    until(|| pool.is_shut_down());
    let late = counter();
    let l = Arc::clone(&late);
    let refused = pool.execute(move || {
        l.fetch_add(1, Ordering::SeqCst);
    });
    assert!(matches!(refused, Err(PutError::ShutDown(_))), "{refused:?}");
    held.open();
    within("the graceful shutdown", move || shutting.join().unwrap())?;
    common::assert_each_once("closure queued at the shutdown", &hits);
    assert_eq!(late.load(Ordering::SeqCst), 0);
    assert_eq!((pool.threads(), pool.pending()), (0, 0));
    Ok(())
}

/// `shutdown_now` hands back the closures no worker started, as requests
/// that run, each once, when put on another pool.
#[test]
fn shutdown_now_hands_back_unstarted_closures_to_run_elsewhere() -> TestResult {
    let pool = ThreadPool::new(0);
    let hits = hit_counters(7);
    for i in 0..7 {
        let h = Arc::clone(&hits);
        pool.execute(move || {
            h[i].fetch_add(1, Ordering::SeqCst);
        })?;
    }
    let unstarted = pool.shutdown_now();
    assert_eq!(unstarted.len(), 7);
    let elsewhere = ThreadPool::new(2);
    for request in unstarted {
        elsewhere.put_request(request)?;
    }
    assert_eq!(elsewhere.wait()?, 0);
    common::assert_each_once("closure handed back by shutdown_now", &hits);
    Ok(())
}

/// rust-threadpool's `join` called from one of its own jobs deadlocks;
/// callpool's `wait` (and `shutdown`) there returns `OnWorkerThread`, and
/// the pool goes on.
#[test]
fn wait_or_shutdown_inside_a_closure_is_refused_not_a_deadlock() -> TestResult {
    let pool = ThreadPool::new(2);
    let (tx, rx) = channel();
    let p = pool.clone();
    pool.execute(move || {
        let waited = p.wait();
        let shut = p.clone().shutdown();
        tx.send((waited, shut)).unwrap();
    })?;
    let (waited, shut) = rx.recv_timeout(common::HANG)?;
    assert_eq!(waited, Err(WaitError::OnWorkerThread));
    assert!(
        matches!(shut, Err(ShutdownError::OnWorkerThread)),
        "{shut:?}"
    );
    assert!(waited.unwrap_err().to_string().contains("worker"));
    within("wait after the refused calls", move || {
        assert_eq!(pool.wait(), Ok(0));
        assert!(!pool.is_shut_down());
    });
    Ok(())
}

/// `active_count()` reads 0 after rust-threadpool's `join`, and so does
/// `stats().running` after `wait`; `stats().busy` counts threads not
/// asleep, so a worker still looking for work a moment after `wait`
/// counts too: it settles to 0, and a held worker is busy.
#[test]
fn busy_settles_to_the_workers_running_a_closure() -> TestResult {
    let pool = ThreadPool::new(3);
    for _ in 0..30 {
        pool.execute(|| {})?;
    }
    pool.wait()?;
    assert_eq!(pool.stats().running, 0);
    until(|| pool.stats().busy == 0);
    let (held, latch) = gate();
    pool.execute(move || latch.hold())?;
    held.await_start();
    assert_eq!(pool.stats().running, 1);
    // One snapshot: its gauges are read one after the other.
    until(|| {
        let stats = pool.stats();
        (stats.busy, stats.idle) == (1, 2)
    });
    held.open();
    pool.wait()?;
    until(|| pool.stats().busy == 0);
    Ok(())
}

/// Several threads `wait` on clones at once while a producer executes on
/// another: each returns only once every closure put before it started
/// waiting has run, as rust-threadpool's `join` from several threads.
#[test]
fn several_threads_wait_on_clones_at_once() -> TestResult {
    let pool = ThreadPool::new(2);
    for _round in 0..20 {
        let hits = hit_counters(200);
        for i in 0..200 {
            let h = Arc::clone(&hits);
            pool.execute(move || {
                h[i].fetch_add(1, Ordering::SeqCst);
            })?;
        }
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (pool, hits) = (pool.clone(), Arc::clone(&hits));
                thread::spawn(move || {
                    let waited = pool.wait();
                    let all = hits.iter().all(|h| h.load(Ordering::SeqCst) == 1);
                    (waited, all)
                })
            })
            .collect();
        for w in waiters {
            let (waited, all) = within("a waiter", move || w.join().unwrap());
            assert_eq!(waited, Ok(0));
            assert!(all, "a wait returned before every closure had run");
        }
    }
    Ok(())
}

/// The hooks' index is the number in the thread's name, and it is never
/// reused: after `resize(0)` and `resize(2)` the new workers are `-2` and
/// `-3`, each started and stopped once.
#[test]
fn resized_workers_get_new_numbers_in_their_names_and_hooks() -> TestResult {
    let started = recorder();
    let stopped = recorder();
    let (s, t) = (Arc::clone(&started), Arc::clone(&stopped));
    let pool = ThreadPool::builder()
        .workers(2)
        .thread_name("r")
        .on_worker_start(move |i| {
            s.lock()
                .unwrap()
                .push((i, thread::current().name().map(str::to_owned)))
        })
        .on_worker_stop(move |i| {
            t.lock()
                .unwrap()
                .push((i, thread::current().name().map(str::to_owned)))
        })
        .build()?;
    pool.resize(0)?;
    assert_eq!(pool.join_all_dismissed_workers(), 2);
    pool.resize(2)?;
    pool.shutdown()?;
    let expected: BTreeSet<(usize, Option<String>)> =
        (0..4).map(|i| (i, Some(format!("r-{i}")))).collect();
    for (what, seen) in [("start", started), ("stop", stopped)] {
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "{what}: {seen:?}");
        assert_eq!(
            seen.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{what}"
        );
    }
    Ok(())
}

/// rust-threadpool's `ThreadPool::default()` (a thread per CPU) is the
/// builder's default: a worker per available core.
#[test]
fn the_default_pool_has_a_worker_per_core() -> TestResult {
    let pool = ThreadPool::builder().build()?;
    assert_eq!(pool.workers(), thread::available_parallelism()?.get());
    Ok(())
}

/// A job that executes through a clone of the pool (rust-threadpool's
/// habit) puts on the shared queue: `queued()` counts those closures as
/// `queued_count()` does.
#[test]
fn closures_executed_from_a_job_through_a_clone_are_queued() -> TestResult {
    let theirs = threadpool::ThreadPool::new(1);
    let (tx, rx) = channel();
    let t = theirs.clone();
    theirs.execute(move || {
        for _ in 0..3 {
            t.execute(|| {});
        }
        tx.send(t.queued_count()).unwrap();
    });
    assert_eq!(rx.recv_timeout(common::HANG)?, 3);

    let pool = ThreadPool::new(1);
    let p = pool.clone();
    let seen = pool.submit(
        move |()| {
            for _ in 0..3 {
                p.execute(|| {}).unwrap();
            }
            (p.queued(), p.pending())
        },
        (),
    )?;
    assert_eq!(seen.wait(), Ok((3, 3)));
    assert_eq!(pool.wait()?, 0);
    Ok(())
}

/// A thread that executes on a `new_handle` of its own and drops it
/// without waiting: its closures still run, since the pool lives on
/// through another handle (only the last handle's drop discards).
#[test]
fn a_dropped_handle_that_was_not_the_last_leaves_its_closures_to_run() -> TestResult {
    let pool = ThreadPool::new(2);
    let (tx, rx) = channel();
    let own = pool.new_handle();
    thread::spawn(move || {
        for i in 0..5 {
            let tx = tx.clone();
            own.execute(move || tx.send(i).unwrap()).unwrap();
        }
        // `own` is dropped here, its closures perhaps still queued.
    })
    .join()
    .unwrap();
    let mut got: Vec<i32> = (0..5)
        .map(|_| rx.recv_timeout(common::HANG).unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    drop(pool);
    Ok(())
}

/// `resize(0)` with a closure running and three queued: `wait` waits for
/// the running one to end, then says that no worker is left for the three.
#[test]
fn wait_with_every_worker_dismissed_waits_for_the_running_closure_then_reports() -> TestResult {
    let pool = ThreadPool::new(1);
    let (held, latch) = gate();
    let done = counter();
    let d = Arc::clone(&done);
    pool.execute(move || {
        latch.hold();
        d.fetch_add(1, Ordering::SeqCst);
    })?;
    held.await_start();
    for _ in 0..3 {
        pool.execute(|| {})?;
    }
    pool.resize(0)?;
    let p = pool.clone();
    let waiter = thread::spawn(move || p.wait());
    held.open();
    let waited = within("wait with no worker left", move || waiter.join().unwrap());
    assert_eq!(waited, Err(WaitError::NoWorkersAvailable { pending: 3 }));
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "wait waited for the running closure"
    );
    pool.create_workers(1)?;
    assert_eq!(
        within("wait once a worker is back", move || pool.wait()),
        Ok(0)
    );
    Ok(())
}

/// An `execute` blocked on a full bounded queue is refused, with the
/// request handed back, once another thread closes the pool, without
/// waiting for room.
#[test]
fn an_execute_blocked_on_a_full_queue_is_refused_when_the_pool_closes() -> TestResult {
    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let (held, latch) = gate();
    pool.execute(move || latch.hold())?;
    held.await_start();
    pool.execute(|| {})?; // the queue is full now
    let ran = counter();
    let r = Arc::clone(&ran);
    let p = pool.clone();
    let blocked = thread::spawn(move || {
        p.execute(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
    });
    let closer = pool.clone();
    let closing = thread::spawn(move || closer.close());
    let refused = within("the blocked execute", move || blocked.join().unwrap());
    assert!(matches!(refused, Err(PutError::ShutDown(_))), "{refused:?}");
    held.open();
    within("the close", move || closing.join().unwrap())?;
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    Ok(())
}

/// A start or stop hook that panics (rayon's `start_handler` would abort
/// the thread) is logged, and its worker goes on: the one worker whose
/// start hook panicked still runs every closure, and a graceful shutdown
/// still ends in `Ok`.
#[test]
fn a_panicking_hook_is_logged_and_its_worker_goes_on() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    logs::install();
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("hooked")
        .on_worker_start(|_| panic!("{DELIBERATE} in a start hook 71aa"))
        .on_worker_stop(|_| panic!("{DELIBERATE} in a stop hook 71ab"))
        .build()?;
    let name = pool.submit(|()| thread::current().name().map(str::to_owned), ())?;
    assert_eq!(name.wait()?.as_deref(), Some("hooked-0"));
    pool.shutdown()?;
    for mark in ["71aa", "71ab"] {
        assert!(
            logs::error_with(&[mark]).is_some(),
            "{mark}: {:?}",
            logs::records()
        );
    }
    Ok(())
}

/// A job that executes follow-ups through a clone on a bounded queue
/// (rust-threadpool's queue is unbounded) does not wait for room on its
/// own worker, which would wait for itself: the follow-ups go in past the
/// capacity, and `try_execute` there says the queue is full.
#[test]
fn a_job_executing_on_a_full_bounded_queue_does_not_wait_for_itself() -> TestResult {
    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let p = pool.clone();
    let ran = counter();
    let r = Arc::clone(&ran);
    let seen = pool.submit(
        move |()| {
            for _ in 0..3 {
                let r = Arc::clone(&r);
                p.execute(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            let refused = matches!(p.try_execute(|| {}), Err(PutError::Full(_)));
            (p.queued(), refused)
        },
        (),
    )?;
    assert_eq!(within("the job", move || seen.wait()), Ok((3, true)));
    assert_eq!(within("the wait", move || pool.wait()), Ok(0));
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    Ok(())
}

// ---------------------------------------------------------------------------
// rust-threadpool's README programs.
// ---------------------------------------------------------------------------

/// rust-threadpool's first README example, unchanged but for the `?`:
/// fan out with `execute`, fan in through a channel.
#[test]
fn readme_channel_fan_out_fan_in() -> TestResult {
    let n_workers = 4;
    let n_jobs = 8;
    let pool = ThreadPool::new(n_workers);
    let (tx, rx) = channel();
    for _ in 0..n_jobs {
        let tx = tx.clone();
        pool.execute(move || {
            tx.send(1)
                .expect("channel will be there waiting for the pool");
        })?;
    }
    assert_eq!(rx.iter().take(n_jobs).sum::<i32>(), 8);
    // The channel is empty now, and nothing is pending on the pool.
    pool.wait()?;
    assert!(rx.try_recv().is_err());
    Ok(())
}

/// rust-threadpool's second README example: more workers than jobs, each
/// job waiting on a barrier, which only holds if every job runs at once
/// (a pool that ran fewer at a time would hang, and `within` fails).
#[test]
fn readme_barrier_needs_every_job_running_at_once() -> TestResult {
    within("the barrier example", || -> Result<(), String> {
        let n_workers = 42;
        let n_jobs = 23;
        let pool = ThreadPool::new(n_workers);
        let an_atomic = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(n_jobs + 1));
        for _ in 0..n_jobs {
            let barrier = barrier.clone();
            let an_atomic = an_atomic.clone();
            pool.execute(move || {
                an_atomic.fetch_add(1, Ordering::Relaxed);
                barrier.wait();
            })
            .map_err(|e| e.to_string())?;
        }
        barrier.wait();
        assert_eq!(an_atomic.load(Ordering::SeqCst), 23);
        pool.wait().map_err(|e| e.to_string())?;
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------
// A pool shared between threads.
// ---------------------------------------------------------------------------

/// Clones share one results domain: closures executed through clones on
/// four threads are all covered by one `wait` on the original, as
/// rust-threadpool's `join` covers its clones. A `new_handle` has its
/// requests of its own: the original's `wait` does not wait for them, and
/// the new handle's `wait` does.
#[test]
fn wait_covers_every_clone_but_not_a_new_handle() -> TestResult {
    let pool = ThreadPool::new(3);
    let hits = hit_counters(400);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (pool, hits) = (pool.clone(), Arc::clone(&hits));
            thread::spawn(move || {
                for i in 100 * t..100 * (t + 1) {
                    let h = Arc::clone(&hits);
                    pool.execute(move || {
                        h[i].fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.wait()?, 0);
    common::assert_each_once("closure executed through a clone", &hits);

    let own = pool.new_handle();
    let (held, latch) = gate();
    own.execute(move || latch.hold())?;
    held.await_start();
    assert_eq!((pool.pending(), own.pending()), (0, 1));
    assert_eq!(
        pool.wait()?,
        0,
        "returns at once: the new handle's closure is not its"
    );
    assert_eq!(own.pending(), 1);
    held.open();
    assert_eq!(within("the new handle's wait", move || own.wait()), Ok(0));
    Ok(())
}

/// The rust-threadpool habit of giving a job a clone of the pool to
/// execute follow-ups: `wait` covers the follow-ups too (each is put
/// before its parent ends), as `join` does.
#[test]
fn a_closure_that_executes_through_a_clone_is_covered_by_wait() -> TestResult {
    let pool = ThreadPool::new(2);
    let hits = hit_counters(64);
    fn spread(pool: ThreadPool, i: usize, hits: Arc<Vec<AtomicUsize>>) {
        hits[i].fetch_add(1, Ordering::SeqCst);
        for child in [2 * i + 1, 2 * i + 2] {
            if child < hits.len() {
                let (p, h) = (pool.clone(), Arc::clone(&hits));
                pool.execute(move || spread(p, child, h)).unwrap();
            }
        }
    }
    for _ in 0..20 {
        let hits = hit_counters(64);
        let (p, h) = (pool.clone(), Arc::clone(&hits));
        pool.execute(move || spread(p, 0, h))?;
        assert_eq!(pool.wait()?, 0);
        common::assert_each_once("follow-up executed through a clone", &hits);
    }
    drop(hits);
    Ok(())
}

// ---------------------------------------------------------------------------
// rayon: scope, join, par_iter.
// ---------------------------------------------------------------------------

/// rayon's `scope(|s| s.spawn(..))` over mutable chunks of a local: a
/// callpool scope's callables borrow the chunks, and the local is the
/// caller's again after.
#[test]
fn scope_borrows_mutable_chunks_as_rayon_scope_does() -> TestResult {
    let pool = ThreadPool::new(4);
    let mut v: Vec<u64> = (0..1_000).collect();
    let factor = 3; // borrowed by every callable
    pool.scope(|s| {
        for chunk in v.chunks_mut(100) {
            s.put(
                |c: &mut [u64]| c.iter_mut().for_each(|x| *x *= factor),
                chunk,
            )?;
        }
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(v, (0..1_000).map(|x| x * 3).collect::<Vec<u64>>());

    // rayon's spawns that each write their own local: closures with no
    // argument of their own, `()` as the argument.
    let (mut a, mut b) = (0u64, String::new());
    pool.scope(|s| {
        s.put(|()| a = 42, ())?;
        s.put(|()| b.push_str("done"), ())?;
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!((a, b.as_str()), (42, "done"));
    Ok(())
}

/// Unlike `rayon::scope`, a panic in a scope's request does not pass on:
/// the scope returns, and the panic is that request's outcome, logged at
/// error level when nothing takes it; `wait_with` takes it as
/// `TaskError::Panicked`.
#[test]
fn a_panicking_request_in_a_scope_is_its_outcome_not_the_scopes_panic() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    logs::install();
    let pool = ThreadPool::new(2);
    let v = vec![1u32, 2, 3];
    let returned = pool.scope(|s| {
        s.put(
            |v: &Vec<u32>| -> u32 { panic!("{DELIBERATE} in a scope 9c4d {}", v.len()) },
            &v,
        )?;
        Ok::<_, ScopedPutError>(7)
    })?;
    assert_eq!(returned, 7);
    assert!(
        logs::error_with(&["9c4d"]).is_some(),
        "an untaken panic is logged: {:?}",
        logs::records()
    );
    let mut seen = Vec::new();
    pool.scope(|s| {
        s.put(
            |v: &Vec<u32>| -> u32 { panic!("{DELIBERATE} taken {}", v.len()) },
            &v,
        )?;
        s.wait_with(|_, outcome| seen.push(outcome));
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(
        seen,
        [Err(TaskError::Panicked(format!("{DELIBERATE} taken 3")))]
    );
    Ok(())
}

/// `rayon::join` recursion: a sum and a quicksort over data the caller
/// owns, through a scope's `put_with_context` and `Context::join`.
#[test]
fn join_recursion_sums_and_sorts_data_the_caller_owns() -> TestResult {
    fn sum(cx: &Context<'_>, xs: &[u64]) -> u64 {
        if xs.len() <= 1_000 {
            return xs.iter().sum();
        }
        let (left, right) = xs.split_at(xs.len() / 2);
        let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
        a + b
    }
    fn quicksort(cx: &Context<'_>, v: &mut [u32]) {
        if v.len() <= 500 {
            v.sort_unstable();
            return;
        }
        let pivot = v[v.len() / 2];
        let (mut below, mut i, mut above) = (0, 0, v.len());
        while i < above {
            if v[i] < pivot {
                v.swap(below, i);
                below += 1;
                i += 1;
            } else if v[i] > pivot {
                above -= 1;
                v.swap(i, above);
            } else {
                i += 1;
            }
        }
        let (low, rest) = v.split_at_mut(below);
        let high = &mut rest[above - below..];
        cx.join(|cx| quicksort(cx, low), |cx| quicksort(cx, high));
    }

    for workers in [1, 3] {
        let pool = ThreadPool::new(workers);
        let xs: Vec<u64> = (1..=200_000).collect();
        let mut total = 0;
        pool.scope(|s| {
            s.put_with_context(sum, &xs[..])?;
            s.wait_with(|_, part| total += part.expect("no panic"));
            Ok::<_, ScopedPutError>(())
        })?;
        assert_eq!(total, 200_000 * 200_001 / 2, "{workers} workers");

        let mut v: Vec<u32> = (0..100_000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) % 5_000)
            .collect();
        let mut expected = v.clone();
        expected.sort_unstable();
        pool.scope(|s| {
            s.put_with_context(quicksort, &mut v[..])?;
            Ok::<_, ScopedPutError>(())
        })?;
        assert_eq!(v, expected, "{workers} workers");
    }
    Ok(())
}

/// `Context::join` on one worker "simply runs `a`, then `b`", both on
/// that worker, and a panic in `b` comes out of `join` to the request.
#[test]
fn join_on_one_worker_runs_a_then_b_there_and_passes_a_panic_on() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(1);
    let order = pool
        .submit_with_context(
            |cx: &Context<'_>, ()| {
                let here = thread::current().id();
                assert_eq!(cx.worker_index(), Some(0), "rayon's current_thread_index");
                let log = Mutex::new(Vec::new());
                cx.join(
                    |_| {
                        log.lock()
                            .unwrap()
                            .push(("a", thread::current().id() == here))
                    },
                    |_| {
                        log.lock()
                            .unwrap()
                            .push(("b", thread::current().id() == here))
                    },
                );
                log.into_inner().unwrap()
            },
            (),
        )?
        .wait()?;
    assert_eq!(order, [("a", true), ("b", true)]);

    let failed = pool.submit_with_context(
        |cx: &Context<'_>, ()| cx.join(|_| 1, |_| -> u32 { panic!("{DELIBERATE} in b") }),
        (),
    )?;
    assert_eq!(
        failed.wait(),
        Err(TaskError::Panicked(format!("{DELIBERATE} in b")))
    );
    Ok(())
}

/// rayon's `scope` inside a `spawn`: a job opens a scope of its own pool
/// (and `map`s, and waits for a ticket) on one worker and on two; the
/// worker that waits runs its own requests, so nothing waits for a
/// worker that waits too.
#[test]
fn a_scope_map_and_ticket_inside_a_job_of_the_same_pool_finish() -> TestResult {
    for workers in [1, 2] {
        let pool = ThreadPool::new(workers);
        let p = pool.clone();
        let (tx, rx) = channel();
        pool.execute(move || {
            let mut v: Vec<u64> = (0..1_000).collect();
            p.scope(|s| {
                for c in v.chunks_mut(100) {
                    s.put(|c: &mut [u64]| c.iter_mut().for_each(|x| *x += 1), c)
                        .unwrap();
                }
            });
            let doubled: Vec<u64> = p
                .map(0..100u64, |x| x * 2)
                .into_iter()
                .map(Result::unwrap)
                .collect();
            let ticket = p.submit(|x: u64| x * 3, 5).unwrap().wait();
            tx.send((v.iter().sum::<u64>(), doubled.iter().sum::<u64>(), ticket))
                .unwrap();
        })?;
        let got = within("the nested job", move || rx.recv().unwrap());
        assert_eq!(got, (500_500, 9_900, Ok(15)), "{workers} workers");
        pool.wait()?;
    }
    Ok(())
}

/// rayon's `join` habits on more than one worker: a deep `fib` whose every
/// leaf is counted once, and a panic in `a` that comes out of `join` with
/// `a`'s message while `b` (which borrows the caller's stack) ran at most
/// once, whichever worker took it.
#[test]
fn join_on_many_workers_counts_every_leaf_and_passes_a_panic_in_a_on() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    fn fib(cx: &Context<'_>, n: u32, leaves: &AtomicUsize) -> u64 {
        if n < 2 {
            leaves.fetch_add(1, Ordering::Relaxed);
            return u64::from(n);
        }
        let (a, b) = cx.join(|cx| fib(cx, n - 1, leaves), |cx| fib(cx, n - 2, leaves));
        a + b
    }
    let pool = ThreadPool::new(4);
    let leaves = AtomicUsize::new(0);
    let mut value = 0;
    pool.scope(|s| {
        s.put_with_context(
            |cx: &Context<'_>, leaves: &AtomicUsize| fib(cx, 20, leaves),
            &leaves,
        )?;
        s.wait_with(|_, v| value = v.expect("no panic"));
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(value, 6_765);
    assert_eq!(leaves.load(Ordering::Relaxed), 10_946, "fib(21) leaves");

    for round in 0..200 {
        let b_ran = AtomicUsize::new(0);
        let mut outcome = None;
        pool.scope(|s| {
            s.put_with_context(
                |cx: &Context<'_>, b_ran: &AtomicUsize| {
                    cx.join(
                        |_| -> u32 { panic!("{DELIBERATE} in a, round {round}") },
                        |_| b_ran.fetch_add(1, Ordering::SeqCst),
                    )
                    .0
                },
                &b_ran,
            )?;
            s.wait_with(|_, o| outcome = Some(o));
            Ok::<_, ScopedPutError>(())
        })?;
        assert_eq!(
            outcome,
            Some(Err(TaskError::Panicked(format!(
                "{DELIBERATE} in a, round {round}"
            ))))
        );
        assert!(b_ran.load(Ordering::SeqCst) <= 1, "round {round}");
    }
    Ok(())
}

/// `v.par_iter().map(f).collect::<Vec<_>>()` becomes `pool.map(inputs,
/// f)`: outcomes in input order, one `Result` each, and a panic fails its
/// own input only; `imap` is the same in order with at most `k` in flight.
/// `map` takes `'static` inputs: a borrowed `Vec` goes in as clones (or
/// through a scope).
#[test]
fn par_iter_map_collect_through_map_and_imap() -> TestResult {
    hide_panics_starting_with(DELIBERATE);
    let pool = ThreadPool::new(4);
    let words: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    let lens: Vec<usize> = pool
        .map(words.clone(), |w: String| w.len())
        .into_iter()
        .collect::<Result<_, _>>()?;
    let expected: Vec<usize> = words.iter().map(String::len).collect();
    assert_eq!(lens, expected);

    let outcomes = pool.map(0..10u32, |n: u32| {
        if n == 7 {
            panic!("{DELIBERATE} on 7");
        }
        n * n
    });
    for (n, outcome) in (0..10u32).zip(&outcomes) {
        if n == 7 {
            assert_eq!(
                outcome,
                &Err(TaskError::Panicked(format!("{DELIBERATE} on 7")))
            );
        } else {
            assert_eq!(outcome, &Ok(n * n));
        }
    }

    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (f, m) = (Arc::clone(&in_flight), Arc::clone(&most));
    let squares: Vec<u64> = pool
        .imap(0..200u64, 3, move |n: u64| {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            thread::yield_now();
            f.fetch_sub(1, Ordering::SeqCst);
            n * n
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(squares, (0..200u64).map(|n| n * n).collect::<Vec<_>>());
    assert!(most.load(Ordering::SeqCst) <= 3, "at most 3 in flight");

    // The borrowing form: chunks of a local through a scope, in order.
    let mut lens = vec![0usize; words.len()];
    pool.scope(|s| {
        for (out, chunk) in lens.chunks_mut(1_000).zip(words.chunks(1_000)) {
            s.put(
                |(out, chunk): (&mut [usize], &[String])| {
                    for (o, w) in out.iter_mut().zip(chunk) {
                        *o = w.len();
                    }
                },
                (out, chunk),
            )?;
        }
        Ok::<_, ScopedPutError>(())
    })?;
    assert_eq!(lens, expected);
    Ok(())
}

// ---------------------------------------------------------------------------
// The global pool, in a child process.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "CALLPOOL_NEW_USER_FROM_RUST_THREADPOOL_CHILD";

/// `configure_global` then `global()`: the settings apply (two workers,
/// named `g-0`, `g-1`), a second configuration is refused, a `shutdown`
/// of a clone of the global handle waits for that handle's requests and
/// leaves the pool open, and `execute` on it is covered by its `wait`.
#[test]
fn global_pool_takes_its_settings_and_no_handle_shuts_it_down() {
    const NAME: &str = "global_pool_takes_its_settings_and_no_handle_shuts_it_down";
    if !common::is_child(NAME, CHILD_ENV) {
        let out = common::run_in_child(NAME, CHILD_ENV);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("global names: [\"g-0\", \"g-1\"]"),
            "{stdout}"
        );
        return;
    }
    let started = recorder();
    let s = Arc::clone(&started);
    callpool::configure_global(Builder::new().workers(2).thread_name("g").on_worker_start(
        move |i| {
            s.lock()
                .unwrap()
                .push((i, thread::current().name().map(str::to_owned)))
        },
    ))
    .unwrap();
    assert!(matches!(
        callpool::configure_global(Builder::new().workers(3)),
        Err(GlobalPoolError::AlreadyConfigured)
    ));
    let pool = callpool::global();
    assert_eq!(pool.workers(), 2);
    assert!(matches!(
        callpool::configure_global(Builder::new()),
        Err(GlobalPoolError::AlreadyInitialized)
    ));
    let hits = hit_counters(50);
    for i in 0..50 {
        let h = Arc::clone(&hits);
        pool.execute(move || {
            h[i].fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    assert_eq!(
        callpool::global().wait(),
        Ok(0),
        "rayon::spawn, then a wait"
    );
    common::assert_each_once("closure on the global pool", &hits);
    pool.clone().shutdown().unwrap();
    assert!(!pool.is_shut_down(), "no handle shuts the global pool down");
    assert_eq!(
        callpool::global().submit(|n: u32| n + 1, 1).unwrap().wait(),
        Ok(2)
    );
    until(|| started.lock().unwrap().len() == 2);
    let mut names: Vec<String> = started
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.clone().unwrap())
        .collect();
    names.sort();
    println!("global names: {names:?}");
    common::child_ran(NAME);
}

/// On the global pool, `shutdown_now` through a clone of a `new_handle`
/// hands back that handle's queued closures only: another handle's run,
/// the pool stays open, and the handle that was "shut down" executes
/// again; `close` on `global()` waits for its closures and closes nothing.
#[test]
fn global_shutdown_now_hands_back_one_handles_closures_and_closes_nothing() {
    const NAME: &str = "global_shutdown_now_hands_back_one_handles_closures_and_closes_nothing";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(Builder::new().workers(1)).unwrap();
    let mine = callpool::global().new_handle();
    let (held, latch) = gate();
    mine.execute(move || latch.hold()).unwrap();
    held.await_start();
    let mine_hits = hit_counters(3);
    for i in 0..3 {
        let h = Arc::clone(&mine_hits);
        mine.execute(move || {
            h[i].fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let other_hits = hit_counters(2);
    for i in 0..2 {
        let h = Arc::clone(&other_hits);
        callpool::global()
            .execute(move || {
                h[i].fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    let handed_back = mine.clone().shutdown_now();
    assert_eq!(handed_back.len(), 3, "this handle's queued closures only");
    held.open();
    callpool::global().close().unwrap();
    common::assert_each_once("another handle's closure", &other_hits);
    assert!(!callpool::global().is_shut_down());
    for request in handed_back {
        mine.put_request(request).unwrap();
    }
    mine.wait().unwrap();
    common::assert_each_once("a closure handed back and put again", &mine_hits);
    common::child_ran(NAME);
}

// ---------------------------------------------------------------------------
// Errors, as `?` and a reporter use them.
// ---------------------------------------------------------------------------

fn is_error<T: Error + Display + Debug + Send + Sync + 'static>() {}

/// Every error type is an `Error + Send + Sync + 'static`, so `?` takes it
/// into `Box<dyn Error + Send + Sync>` (what `anyhow::Error::from` needs
/// too); a `TaskError<E>` when `E` is one.
#[test]
fn every_error_type_goes_through_question_mark_and_into_a_reporter() {
    is_error::<PutError>();
    is_error::<PollError>();
    is_error::<WaitError>();
    is_error::<SpawnError>();
    is_error::<BuildError>();
    is_error::<ShutdownError>();
    is_error::<BatchError>();
    is_error::<ScopedPutError>();
    is_error::<GlobalPoolError>();
    is_error::<CommandError>();
    is_error::<TaskError>();
    is_error::<TaskError<std::num::ParseIntError>>();
    is_error::<TrySubmitError<fn(u32) -> u32, u32>>();

    fn program() -> Result<u32, Box<dyn Error + Send + Sync>> {
        let pool = ThreadPool::builder().workers(1).build()?;
        let n = pool
            .submit_fallible(|s: &'static str| s.parse::<u32>(), "12")?
            .wait()?;
        pool.execute(|| {})?;
        pool.wait()?;
        let m = pool
            .submit_fallible(|s: &'static str| s.parse::<u32>(), "x")?
            .wait()?;
        Ok(n + m)
    }
    let err = program().unwrap_err();
    assert_eq!(
        err.to_string(),
        "request failed: invalid digit found in string"
    );
    // The wrapped error is the source too, so a reporter that walks the
    // chain (anyhow's `{:#}`) prints its message twice, as the crate docs
    // say it will.
    let source = err
        .source()
        .expect("the wrapped ParseIntError is the source");
    assert!(source.downcast_ref::<std::num::ParseIntError>().is_some());
    let chain: Vec<String> = std::iter::successors(Some(&*err as &dyn Error), |e| (*e).source())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        chain.join(": "),
        "request failed: invalid digit found in string: invalid digit found in string"
    );
}

// ---------------------------------------------------------------------------
// The traits of the public types.
// ---------------------------------------------------------------------------

fn shared<T: Clone + Debug + Send + Sync + 'static>() {}
fn sendable<T: Debug + Send + 'static>() {}

/// A pool handle moves to and is shared between threads, and clones, as
/// rust-threadpool's does; so do a weak handle, a cancel handle and the
/// builder. A ticket moves to another thread (to wait there); `Stats` is a
/// plain value.
#[test]
fn public_types_have_the_traits_a_user_expects() {
    shared::<ThreadPool>();
    shared::<WeakPool>();
    shared::<CancelHandle>();
    shared::<Builder>();
    shared::<Stats>();
    shared::<callpool::Batch>();
    shared::<callpool::Progress>();
    shared::<callpool::RequestId>();
    shared::<TaskError>();
    shared::<WaitError>();
    shared::<PollError>();
    sendable::<Ticket<u32>>();
    // What `dbg!` may be given: a callable's context, a scope, a collector.
    fn debug<T: Debug + ?Sized>() {}
    debug::<Context<'static>>();
    debug::<callpool::Scope<'static, 'static, u32>>();
    debug::<callpool::Collector<'static, u32>>();
    debug::<callpool::AsCompleted<u32>>();
    sendable::<WorkRequest>();
    let pool = ThreadPool::new(1);
    let shown = format!("{pool:?}");
    assert!(shown.contains("workers: 1"), "{shown}");
    let t = pool.submit(|n: u32| n, 5).unwrap();
    let waited = thread::spawn(move || t.wait()).join().unwrap();
    assert_eq!(waited, Ok(5));
}
