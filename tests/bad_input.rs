//! A demanding user's audit: bad input (zero, huge, past, far-future, empty,
//! unknown, duplicate), calls on a shut-down pool, from worker threads and
//! from callbacks, the errors that refuse work (do they hand it back, say
//! something useful, travel through `?`), and the traits the docs promise.
//! Written from README.md, docs/guide.md, docs/from-python.md and the
//! rustdoc only. Every assertion is of exact behaviour; timeouts only turn
//! a hang into a failure.

mod common;

use std::error::Error;
use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use callpool::{
    make_requests, BatchError, BuildError, CancelHandle, CommandError, CommandOutput,
    GlobalPoolError, PollError, Progress, PutError, RequestId, ScopedPutError, ShutdownError,
    SpawnError, Stats, TaskError, ThreadPool, Ticket, TrySubmitError, WaitError, WeakPool,
    WorkRequest, MAX_WORKERS,
};
use common::{counter, hit_counters, one_way, within, HANG};

// ---------------------------------------------------------------------------
// (d) Traits the docs promise, checked at compile time.
// ---------------------------------------------------------------------------

fn send_sync_static<T: Send + Sync + 'static>() {}
fn debug<T: Debug>() {}
fn clone<T: Clone>() {}
fn send<T: Send>() {}

/// A `?` into the error type that anyhow-style code uses.
fn boxed<E: Error + Send + Sync + 'static>(e: E) -> Box<dyn Error + Send + Sync> {
    let r: Result<(), Box<dyn Error + Send + Sync>> = (|| Err(e)?)();
    r.unwrap_err()
}

#[test]
fn errors_are_send_sync_static_debug_and_display() {
    send_sync_static::<PutError>();
    send_sync_static::<BatchError>();
    send_sync_static::<PollError>();
    send_sync_static::<WaitError>();
    send_sync_static::<SpawnError>();
    send_sync_static::<BuildError>();
    send_sync_static::<ShutdownError>();
    send_sync_static::<GlobalPoolError>();
    send_sync_static::<ScopedPutError>();
    send_sync_static::<CommandError>();
    send_sync_static::<callpool::Closed>();
    send_sync_static::<TaskError>();
    send_sync_static::<TaskError<std::num::ParseIntError>>();
    send_sync_static::<TaskError<CommandError>>();
    // "Send and Sync whenever the callable and the argument are Send".
    type Parts = (Box<dyn FnOnce(u32) -> u32 + Send>, std::cell::Cell<u32>);
    send_sync_static::<TrySubmitError<Parts, u32>>();
    send_sync_static::<TrySubmitError<fn(u32) -> u32, std::cell::Cell<u32>>>();
}

#[test]
fn handles_tickets_and_values_have_the_documented_traits() {
    // "ThreadPool is Send + Sync ... cheaply Clone".
    send_sync_static::<ThreadPool>();
    clone::<ThreadPool>();
    debug::<ThreadPool>();
    send_sync_static::<WeakPool>();
    clone::<WeakPool>();
    debug::<WeakPool>();
    // "CancelHandle is Clone + Send + Sync".
    send_sync_static::<CancelHandle>();
    clone::<CancelHandle>();
    debug::<CancelHandle>();
    // A ticket travels to the thread (or task) that waits on it.
    send::<Ticket<u32>>();
    send::<Ticket<String, std::io::Error>>();
    debug::<Ticket<u32>>();
    // "A clone follows the same batch, so another thread can watch it".
    send_sync_static::<callpool::Batch>();
    clone::<callpool::Batch>();
    debug::<callpool::Batch>();
    // Plain values a user keeps, compares and prints.
    for_values::<Progress>();
    for_values::<Stats>();
    for_values::<RequestId>();
    for_values::<callpool::Timing>();
    send_sync_static::<WorkRequest>();
    debug::<WorkRequest>();
    debug::<callpool::Builder>();
    clone::<callpool::Builder>();
    send_sync_static::<callpool::Builder>();
    debug::<CommandOutput>();
    clone::<CommandOutput>();
    debug::<callpool::AsCompleted<u32>>();
    send::<callpool::AsCompleted<u32>>();
}

fn for_values<T: Copy + Debug + PartialEq + Send + Sync + 'static>() {}

#[test]
fn iterators_collectors_and_scopes_print_with_debug() {
    let pool = ThreadPool::new(1);
    let window = pool.as_completed(0..3u32, 2, |n: &u32| *n);
    assert!(!format!("{window:?}").is_empty());
    assert_eq!(window.count(), 3);
    let in_order = pool.imap(0..3u32, 2, |n: u32| n);
    assert!(!format!("{in_order:?}").is_empty());
    assert_eq!(in_order.map(Result::unwrap).collect::<Vec<_>>(), [0, 1, 2]);
    let mut collector = pool.collector::<u32>();
    assert!(!format!("{collector:?}").is_empty());
    collector.put(|n: u32| n, 1).unwrap();
    assert!(!format!("{:?}", collector.outcomes()).is_empty());
    pool.scope(|s: &mut callpool::Scope<'_, '_, u32>| {
        assert!(!format!("{s:?}").is_empty());
    });
    let request = WorkRequest::new(|n: u32| n, 1).with_id(5);
    assert!(format!("{request:?}").contains('5'), "{request:?}");
    let stream = WorkRequest::streaming(
        |_: (), _: &callpool::Emitter<'_, u32>| Ok::<_, callpool::Closed>(()),
        (),
    );
    assert!(!format!("{stream:?}").is_empty());
}

// ---------------------------------------------------------------------------
// (a) Builder settings at their edges: refused with an error, or working.
// ---------------------------------------------------------------------------

#[test]
fn builder_edges_are_errors_not_panics() {
    let refused = |b: callpool::Builder| -> String {
        let e = b.build().expect_err("refused");
        e.to_string()
    };
    let too_many = refused(ThreadPool::builder().workers(MAX_WORKERS + 1));
    assert!(
        too_many.contains(&(MAX_WORKERS + 1).to_string()),
        "{too_many}"
    );
    let swapped = refused(
        ThreadPool::builder()
            .workers(1)
            .min_workers(3)
            .max_workers(2),
    );
    assert!(
        swapped.contains("min_workers 3") && swapped.contains("max_workers 2"),
        "{swapped}"
    );
    let outside = refused(
        ThreadPool::builder()
            .workers(5)
            .min_workers(1)
            .max_workers(2),
    );
    assert!(outside.contains('5'), "{outside}");
    let zero_keep = refused(ThreadPool::builder().workers(1).keep_alive(Duration::ZERO));
    assert!(zero_keep.contains("keep_alive"), "{zero_keep}");
    let zero_stack = refused(ThreadPool::builder().workers(1).stack_size(0));
    assert!(zero_stack.contains("stack"), "{zero_stack}");
    let nul = refused(ThreadPool::builder().thread_name("a\0b"));
    assert!(nul.contains("NUL"), "{nul}");
    let huge_max = refused(ThreadPool::builder().workers(1).max_workers(usize::MAX));
    assert!(huge_max.contains(&MAX_WORKERS.to_string()), "{huge_max}");
}

#[test]
fn zero_workers_and_unbounded_capacity_zero_work() {
    within("zero workers", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(0)
            .result_capacity(0)
            .build()
            .unwrap();
        assert_eq!(pool.workers(), 0);
        // Capacity 0 is unbounded: many puts go in without a worker.
        for n in 0..100u32 {
            pool.try_put_request(WorkRequest::new(move |_: ()| n, ()))
                .unwrap();
        }
        assert_eq!(
            pool.wait(),
            Err(WaitError::NoWorkersAvailable { pending: 100 })
        );
        assert_eq!(
            pool.wait_timeout(Duration::ZERO),
            Err(WaitError::NoWorkersAvailable { pending: 100 })
        );
        assert_eq!(
            pool.poll_timeout(Duration::MAX),
            Err(PollError::NoWorkersAvailable { pending: 100 })
        );
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(100));
    });
}

#[test]
fn huge_capacities_and_keep_alive_are_clamped_not_overflowed() {
    within("huge settings", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(2)
            .keep_alive(Duration::MAX)
            .queue_capacity(usize::MAX)
            .result_capacity(usize::MAX)
            .build()
            .unwrap();
        let hits = hit_counters(50);
        for i in 0..50 {
            pool.put_request(common::hit_request(i, &hits)).unwrap();
        }
        assert_eq!(pool.wait(), Ok(50));
        common::assert_each_once("callbacks", &hits);
        pool.shutdown().unwrap();
    });
}

#[test]
fn a_tiny_stack_size_still_runs_requests() {
    within("tiny stack", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .stack_size(1)
            .build()
            .unwrap();
        let t = pool.submit(|n: u64| n * 2, 21).unwrap();
        assert_eq!(t.wait(), Ok(42));
        pool.shutdown().unwrap();
    });
}

#[test]
fn worker_counts_at_their_edges() {
    within("worker counts", || {
        let pool = ThreadPool::new(2);
        // More than exist: all of them.
        assert_eq!(pool.dismiss_workers(usize::MAX), 2);
        assert_eq!(pool.dismiss_workers(1), 0);
        assert_eq!(pool.workers(), 0);
        pool.resize(0).unwrap();
        assert_eq!(pool.workers(), 0);
        let e = pool.create_workers(usize::MAX).unwrap_err();
        assert_eq!(
            (e.created(), e.is_os_error(), e.is_shut_down()),
            (0, false, false)
        );
        assert!(e.to_string().contains(&MAX_WORKERS.to_string()), "{e}");
        let e = pool.resize(MAX_WORKERS + 1).unwrap_err();
        assert_eq!(e.created(), 0);
        assert_eq!(pool.workers(), 0, "a refused resize starts nobody");
        pool.create_workers(0).unwrap();
        pool.resize(1).unwrap();
        assert_eq!(pool.workers(), 1);
        assert_eq!(pool.submit(|n: u8| n, 3).unwrap().wait(), Ok(3));
        pool.join_all_dismissed_workers();
        assert_eq!(pool.threads(), 1);
    });
}

// ---------------------------------------------------------------------------
// (a) Durations and deadlines at their edges.
// ---------------------------------------------------------------------------

#[test]
fn zero_and_max_timeouts_on_an_idle_handle() {
    within("idle timeouts", || {
        let pool = ThreadPool::new(1);
        assert_eq!(pool.wait_timeout(Duration::ZERO), Ok(0));
        assert_eq!(pool.wait_timeout(Duration::MAX), Ok(0));
        assert_eq!(
            pool.poll_timeout(Duration::ZERO),
            Err(PollError::NoResultsPending)
        );
        assert_eq!(
            pool.poll_timeout(Duration::MAX),
            Err(PollError::NoResultsPending)
        );
        assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    });
}

#[test]
fn zero_and_max_timeouts_with_work_in_flight() {
    within("busy timeouts", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let gate = Arc::new(one_way::Gate::default());
        let g = Arc::clone(&gate);
        let (started_tx, started) = mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                started_tx.send(()).unwrap();
                g.pass();
            },
            (),
        ))
        .unwrap();
        started.recv().unwrap();
        pool.put_request(WorkRequest::new(|n: u8| n, 1)).unwrap(); // fills the queue
        assert_eq!(
            pool.wait_timeout(Duration::ZERO),
            Err(WaitError::Timeout { pending: 2 })
        );
        assert_eq!(
            pool.poll_timeout(Duration::ZERO),
            Err(PollError::Timeout { pending: 2 })
        );
        match pool.put_request_timeout(WorkRequest::new(|n: u8| n, 2).with_id(9), Duration::ZERO) {
            Err(PutError::Timeout(r)) => assert_eq!(r.id().value(), 9),
            other => panic!("expected a timeout, got {other:?}"),
        }
        match pool.try_submit(|n: u8| n, 3) {
            Err(e) if e.is_full() => assert_eq!(e.into_parts().1, 3),
            other => panic!("expected a full queue, got {other:?}"),
        }
        match pool.submit_timeout(|n: u8| n, 4, Duration::ZERO) {
            Err(e) if e.is_timed_out() => assert_eq!(e.into_parts().1, 4),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // The id refused above is free: nothing of it stayed pending.
        assert_eq!(pool.pending(), 2);
        let opener = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || gate.open())
        };
        // Duration::MAX is "for ever": it blocks for room, then puts.
        let id = pool
            .put_request_timeout(WorkRequest::new(|n: u8| n, 2).with_id(9), Duration::MAX)
            .unwrap();
        assert_eq!(id.value(), 9);
        let ticket = pool.submit_timeout(|n: u8| n, 4, Duration::MAX).unwrap();
        assert_eq!(pool.wait_timeout(Duration::MAX), Ok(3));
        assert_eq!(ticket.wait_timeout(Duration::MAX).unwrap(), Ok(4));
        opener.join().unwrap();
    });
}

#[test]
fn deadlines_in_the_past_and_far_future() {
    within("deadlines", || {
        let pool = ThreadPool::new(1);
        let (tx, rx) = mpsc::channel();
        let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or_else(Instant::now);
        enum When {
            At(Instant),
            In(Duration),
        }
        for (name, when) in [
            ("past", When::At(long_ago)),
            ("now", When::At(Instant::now())),
            ("zero", When::In(Duration::ZERO)),
            ("far", When::At(far)),
            ("max", When::In(Duration::MAX)),
        ] {
            let (ok, err) = (tx.clone(), tx.clone());
            let request = WorkRequest::new(|_: ()| "ran", ())
                .on_result(move |_, v| ok.send((name, Ok(v))).unwrap())
                .on_error(move |_, e| err.send((name, Err(e))).unwrap());
            let request = match when {
                When::At(at) => request.deadline(at),
                When::In(d) => request.timeout(d),
            };
            pool.put_request(request).unwrap();
        }
        assert_eq!(pool.wait(), Ok(5));
        let mut seen: Vec<(&str, Result<&str, TaskError>)> = rx.try_iter().collect();
        seen.sort_by_key(|(name, _)| *name);
        assert_eq!(
            seen,
            [
                ("far", Ok("ran")),
                ("max", Ok("ran")),
                ("now", Err(TaskError::Expired)),
                ("past", Err(TaskError::Expired)),
                ("zero", Err(TaskError::Expired)),
            ]
        );
    });
}

#[test]
fn ticket_timeouts_at_their_edges() {
    within("ticket timeouts", || {
        let pool = ThreadPool::new(0);
        let ticket = pool.submit(|n: u32| n + 1, 1).unwrap();
        let ticket = ticket
            .wait_timeout(Duration::ZERO)
            .expect_err("not run yet");
        let ticket = ticket.try_result().expect_err("not run yet");
        assert!(!ticket.is_finished());
        pool.create_workers(1).unwrap();
        assert_eq!(ticket.wait_timeout(Duration::MAX).unwrap(), Ok(2));
    });
}

/// A ticket whose request runs on `pool` and waits, once it has started,
/// until the returned gate opens.
fn running_on_a_gate(pool: &ThreadPool) -> (Arc<one_way::Gate>, Ticket<()>) {
    let gate = Arc::new(one_way::Gate::default());
    let g = Arc::clone(&gate);
    let (started_tx, started) = mpsc::channel();
    let running = pool
        .submit(
            move |_: ()| {
                started_tx.send(()).unwrap();
                g.pass();
            },
            (),
        )
        .unwrap();
    started.recv().unwrap();
    (gate, running)
}

#[test]
fn shutdown_timeouts_at_their_edges() {
    within("shutdown timeouts", || {
        let pool = ThreadPool::new(2);
        assert_eq!(pool.submit(|n: u8| n, 1).unwrap().wait(), Ok(1));
        pool.clone().shutdown_timeout(Duration::MAX).unwrap();
        assert!(pool.is_shut_down());
        // One worker held on a gate, a ticket queued behind it: a
        // zero timeout gives up at once, reporting the running thread.
        let pool = ThreadPool::new(1);
        let (gate, running) = running_on_a_gate(&pool);
        let queued = pool.submit(|n: u8| n, 7).unwrap();
        match pool.shutdown_timeout(Duration::ZERO) {
            Err(ShutdownError::TimedOut { threads: 1, .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        gate.open();
        assert_eq!(running.wait(), Ok(()));
        // What became of the request still queued at the timeout: the
        // shutdown consumed the last handle, and "dropping the last handle
        // with requests queued discards them".
        assert_eq!(queued.wait(), Err(TaskError::Cancelled));

        // The same with another handle keeping the pool: it goes on
        // draining, and the queued ticket runs.
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (gate, running) = running_on_a_gate(&pool);
        let queued = pool.submit(|n: u8| n, 7).unwrap();
        assert!(matches!(
            pool.shutdown_timeout(Duration::ZERO),
            Err(ShutdownError::TimedOut { threads: 1, .. })
        ));
        assert!(other.is_shut_down());
        gate.open();
        assert_eq!(running.wait(), Ok(()));
        assert_eq!(queued.wait(), Ok(7));
        drop(other);
    });
}

// ---------------------------------------------------------------------------
// (a) Empty inputs and limits of zero.
// ---------------------------------------------------------------------------

#[test]
fn empty_inputs_and_zero_limits() {
    within("empty inputs", || {
        let pool = ThreadPool::new(2);
        assert!(pool.map(Vec::<u32>::new(), |n: u32| n).is_empty());
        assert!(pool
            .map_fallible(Vec::<u32>::new(), |n: u32| Ok::<_, ()>(n))
            .is_empty());
        assert_eq!(
            pool.as_completed(Vec::<u32>::new(), 3, |n: &u32| *n)
                .count(),
            0
        );
        assert_eq!(pool.imap(Vec::<u32>::new(), 0, |n: u32| n).count(), 0);
        let mut empty = pool.as_completed(Vec::<u32>::new(), 0, |n: &u32| *n);
        assert_eq!(empty.try_next(), Poll::Ready(None));
        let mut tickets = callpool::as_completed(Vec::<Ticket<u32>>::new());
        assert_eq!(tickets.len(), 0);
        assert!(matches!(tickets.try_next(), Poll::Ready(None)));
        assert_eq!(tickets.cancel_rest(), 0);
        assert!(tickets.next().is_none());
        // A limit of 0 is "no limit": every input comes back once.
        let mut seen: Vec<u32> = pool
            .as_completed(0..100u32, 0, |n: &u32| *n * 2)
            .map(|(n, out)| {
                assert_eq!(out, Ok(n * 2));
                n
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        let in_order: Vec<u32> = pool
            .imap(0..100u32, 0, |n: u32| n)
            .map(Result::unwrap)
            .collect();
        assert_eq!(in_order, (0..100).collect::<Vec<_>>());
        // An empty batch is complete at once, and its done callback runs
        // in `on_done` (it has ended).
        let batch = pool.put_batch(Vec::<WorkRequest>::new()).unwrap();
        assert!(batch.progress().is_complete());
        assert_eq!(batch.progress().total, 0);
        let ran = counter();
        let r = Arc::clone(&ran);
        batch.on_done(move |p| {
            assert_eq!(p.total, 0);
            r.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(batch.cancel(), 0);
        assert_eq!(pool.put_all(Vec::<WorkRequest>::new()).unwrap(), 0);
        assert_eq!(pool.cancel_queued(), 0);
        assert_eq!(pool.wait(), Ok(0));
        let mut collector = pool.collector::<u32>();
        assert_eq!(collector.outcomes().count(), 0);
        assert_eq!(collector.poll_with(|_, _| unreachable!()), 0);
        assert_eq!(collector.wait_with(|_, _| unreachable!()), 0);
        let n = pool.scope(|s: &mut callpool::Scope<'_, '_, u32>| s.wait_with(|_, _| {}));
        assert_eq!(n, 0);
        // make_requests over nothing makes nothing.
        assert!(make_requests(|n: u32| n, 0..0u32, |_, _| {}, |_, _| {}).is_empty());
    });
}

// ---------------------------------------------------------------------------
// (a) Cancels of unknown and finished ids; user-chosen duplicate ids.
// ---------------------------------------------------------------------------

#[test]
fn cancel_of_unknown_and_finished_ids_changes_nothing() {
    within("cancel unknown", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let id = pool.put_request(WorkRequest::new(|n: u8| n, 1)).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert!(!pool.cancel(id), "already handled");
        let foreign = other
            .put_request(WorkRequest::new(|n: u8| n, 1).with_id(77))
            .unwrap();
        other.wait().unwrap();
        assert!(!pool.cancel(foreign), "another handle's, and ended");
        let made: WorkRequest = WorkRequest::new(|n: u8| n, 1).into();
        assert!(!pool.cancel(made.id()), "never put");
        let ticket = pool.submit(|n: u8| n, 2).unwrap();
        let ticket_id = ticket.id();
        let handle = ticket.cancel_handle();
        assert_eq!(ticket.wait(), Ok(2));
        assert!(!pool.cancel(ticket_id));
        assert!(!handle.cancel(), "ended and its ticket gone");
        assert_eq!(handle.id(), ticket_id);
        assert_eq!(pool.stats().cancelled, 0);
        assert_eq!(pool.pending(), 0);
    });
}

#[test]
fn duplicate_user_ids_are_refused_and_handed_back() {
    within("duplicate ids", || {
        let pool = ThreadPool::new(0);
        pool.put_request(WorkRequest::new(|n: u8| n, 1).with_id(5))
            .unwrap();
        let e = pool
            .put_request(WorkRequest::new(|n: u8| n, 2).with_id(5))
            .unwrap_err();
        assert!(matches!(e, PutError::DuplicateId(_)));
        assert!(e.to_string().contains('5'), "{e}");
        let back = e.into_request();
        assert_eq!((back.id().value(), back.id().is_user_chosen()), (5, true));
        // An automatic id with the same number is another id.
        assert_eq!(pool.pending(), 1);
        // A batch with the id twice, or with a pending one: all handed back, in order.
        let twice = vec![
            WorkRequest::new(|n: u8| n, 1).with_id(6).into(),
            WorkRequest::new(|n: u8| n, 2).with_id(7).into(),
            WorkRequest::new(|n: u8| n, 3).with_id(6).into(),
        ];
        let back = pool.put_batch::<Vec<WorkRequest>>(twice).unwrap_err();
        assert!(back.to_string().contains('3'), "{back}");
        let ids: Vec<u64> = back
            .into_requests()
            .iter()
            .map(|r| r.id().value())
            .collect();
        assert_eq!(ids, [6, 7, 6]);
        let clash = vec![WorkRequest::new(|n: u8| n, 1).with_id(5)];
        assert!(matches!(pool.put_batch(clash), Err(BatchError::DuplicateId(r)) if r.len() == 1));
        assert_eq!(pool.pending(), 1, "refused batches leave nothing pending");
        // Another handle has ids of its own.
        let other = pool.new_handle();
        other
            .put_request(WorkRequest::new(|n: u8| n, 1).with_id(5))
            .unwrap();
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(other.wait(), Ok(1));
        // Once ended, the id is free again.
        pool.put_request(WorkRequest::new(|n: u8| n, 1).with_id(5))
            .unwrap();
        assert_eq!(pool.wait(), Ok(1));
    });
}

// ---------------------------------------------------------------------------
// (a, b) Every call on a shut-down pool: an error that hands the work back,
// or a documented no-op; never a panic or a hang.
// ---------------------------------------------------------------------------

#[test]
fn every_call_on_a_shut_down_pool() {
    within("shut-down pool", || {
        let pool = ThreadPool::new(1);
        let keep = pool.clone();
        pool.shutdown().unwrap();
        let pool = keep;
        assert!(pool.is_shut_down());
        let e = pool
            .put_request(WorkRequest::new(|n: u8| n, 1).with_id(3))
            .unwrap_err();
        assert!(matches!(e, PutError::ShutDown(_)), "{e:?}");
        assert!(e.to_string().contains("shut down"), "{e}");
        assert_eq!(e.into_request().id().value(), 3);
        assert!(matches!(
            pool.try_put_request(WorkRequest::new(|n: u8| n, 1)),
            Err(PutError::ShutDown(_))
        ));
        assert!(matches!(
            pool.put_request_timeout(WorkRequest::new(|n: u8| n, 1), Duration::ZERO),
            Err(PutError::ShutDown(_))
        ));
        assert!(matches!(
            pool.submit(|n: u8| n, 1),
            Err(PutError::ShutDown(_))
        ));
        let refused = pool.try_submit(|n: u8| n + 1, 9).unwrap_err();
        assert!(refused.is_shut_down() && !refused.is_full());
        assert!(refused.to_string().contains("shut down"), "{refused}");
        let (f, arg) = refused.into_parts();
        assert_eq!(f(arg), 10);
        assert!(pool
            .submit_timeout(|n: u8| n, 1, Duration::MAX)
            .unwrap_err()
            .is_shut_down());
        assert!(matches!(
            pool.submit_command(std::process::Command::new("true")),
            Err(PutError::ShutDown(_))
        ));
        let batch = make_requests(|n: u8| n, 0..3u8, |_, _| {}, |_, _| {});
        match pool.put_batch(batch) {
            Err(BatchError::ShutDown(back)) => assert_eq!(back.len(), 3),
            other => panic!("expected ShutDown, got {other:?}"),
        }
        assert!(matches!(
            pool.put_all([WorkRequest::new(|n: u8| n, 1)]),
            Err(PutError::ShutDown(_))
        ));
        let e = pool.create_workers(1).unwrap_err();
        assert!(
            e.is_shut_down() && e.to_string().contains("shut down"),
            "{e}"
        );
        assert!(pool.resize(3).unwrap_err().is_shut_down());
        assert_eq!(pool.dismiss_workers(usize::MAX), 0);
        assert_eq!(pool.join_all_dismissed_workers(), 0);
        assert_eq!(pool.wait(), Ok(0));
        assert_eq!(pool.wait_timeout(Duration::MAX), Ok(0));
        assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
        assert_eq!(
            pool.poll_timeout(Duration::MAX),
            Err(PollError::NoResultsPending)
        );
        assert_eq!(pool.cancel_queued(), 0);
        // Outcomes-without-callbacks forms: each input comes back Cancelled.
        assert_eq!(
            pool.map(0..3u8, |n: u8| n),
            vec![Err(TaskError::Cancelled); 3]
        );
        let window: Vec<_> = pool.as_completed(0..3u8, 2, |n: &u8| *n).collect();
        // "the first input whose put the pool refuses" comes back
        // Cancelled, and "no input is pulled after that".
        assert_eq!(window, [(0, Err(TaskError::Cancelled))]);
        // imap as as_completed: the refused input's Cancelled, then the
        // end: fewer outcomes than inputs (unlike map, one per input).
        let in_order: Vec<_> = pool.imap(0..3u8, 2, |n: u8| n).collect();
        assert_eq!(in_order, [Err(TaskError::Cancelled)]);
        let mut collector = pool.collector::<u8>();
        assert!(matches!(
            collector.put(|n: u8| n, 1),
            Err(PutError::ShutDown(_))
        ));
        assert_eq!(collector.pending(), 0);
        drop(collector);
        let word = String::from("borrowed");
        pool.scope(|s: &mut callpool::Scope<'_, '_, usize>| {
            let e = s.put(|w: &String| w.len(), &word).unwrap_err();
            assert!(matches!(e, ScopedPutError::ShutDown(_)));
            assert!(e.to_string().contains("shut down"), "{e}");
        });
        // Shutting down again: nothing left to do.
        pool.close().unwrap();
        assert!(pool.clone().shutdown_now().is_empty());
        pool.shutdown_timeout(Duration::ZERO).unwrap();
    });
}

// ---------------------------------------------------------------------------
// (a) Calls from a worker thread of the same pool: the documented
// OnWorkerThread errors, run-here forms, or puts past the capacity.
// ---------------------------------------------------------------------------

#[test]
fn blocking_calls_from_a_worker_thread_return_errors() {
    within("worker-thread calls", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(1)
            .build()
            .unwrap();
        let inner = pool.clone();
        let report = pool
            .submit(
                move |_: ()| {
                    let mut r: Vec<String> = Vec::new();
                    r.push(format!("{:?}", inner.poll()));
                    r.push(format!("{:?}", inner.poll_timeout(Duration::MAX)));
                    r.push(format!("{:?}", inner.wait()));
                    r.push(format!("{:?}", inner.wait_timeout(Duration::MAX)));
                    r.push(format!("{:?}", inner.close()));
                    r.push(format!("{:?}", inner.clone().shutdown()));
                    r.push(format!(
                        "{:?}",
                        inner.clone().shutdown_timeout(Duration::MAX)
                    ));
                    // Waits that run the work here instead.
                    let t = inner.submit(|n: u8| n + 1, 1).unwrap();
                    r.push(format!("{:?}", t.wait()));
                    r.push(format!("{:?}", inner.map(0..3u8, |n: u8| n)));
                    r.push(format!(
                        "{:?}",
                        inner.imap(0..3u8, 1, |n: u8| n).collect::<Vec<_>>()
                    ));
                    let mut c = inner.collector::<u8>();
                    c.put(|n: u8| n, 4).unwrap();
                    r.push(format!(
                        "{:?}",
                        c.outcomes().map(|(_, o)| o).collect::<Vec<_>>()
                    ));
                    // Puts past the bounded capacity rather than wait for itself.
                    for n in 0..5u8 {
                        inner
                            .put_request(WorkRequest::new(move |_: ()| n, ()))
                            .unwrap();
                    }
                    r.push(format!("{}", inner.join_all_dismissed_workers()));
                    r
                },
                (),
            )
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(
            report,
            [
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Err(OnWorkerThread)",
                "Ok(2)",
                "[Ok(0), Ok(1), Ok(2)]",
                "[Ok(0), Ok(1), Ok(2)]",
                "[Ok(4)]",
                "0",
            ]
        );
        assert!(
            !pool.is_shut_down(),
            "a refused shutdown shuts nothing down"
        );
        assert_eq!(pool.wait(), Ok(5));
        let e = ShutdownError::OnWorkerThread;
        assert!(e.to_string().contains("worker"), "{e}");
    });
}

// ---------------------------------------------------------------------------
// (a) Calls from inside a callback of the same handle.
// ---------------------------------------------------------------------------

#[test]
fn calls_from_inside_a_callback_neither_hang_nor_panic() {
    within("callback calls", || {
        let pool = ThreadPool::new(2);
        let weak = pool.downgrade();
        let (tx, rx) = mpsc::channel();
        // The child put from the callback: either the cancel found it
        // queued (then it never ran and heard `Cancelled`), or a worker
        // had taken it (then it ran and its result was heard).
        let (child_ran, child_result, child_cancelled) = (counter(), counter(), counter());
        let (ran, result, cancelled) = (
            Arc::clone(&child_ran),
            Arc::clone(&child_result),
            Arc::clone(&child_cancelled),
        );
        let child_request = Mutex::new(Some(
            WorkRequest::new(
                move |n: u8| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    n
                },
                2,
            )
            .on_result(move |_, n| {
                assert_eq!(n, 2);
                result.fetch_add(1, Ordering::SeqCst);
            })
            .on_error(move |_, e| {
                assert_eq!(e, TaskError::Cancelled);
                cancelled.fetch_add(1, Ordering::SeqCst);
            }),
        ));
        pool.put_request(WorkRequest::new(|n: u8| n, 1).on_result(move |id, _| {
            let pool = weak.upgrade().expect("alive");
            let mut r: Vec<String> = Vec::new();
            r.push(format!("{:?}", pool.cancel(id)));
            r.push(format!("{:?}", pool.poll()));
            r.push(format!("{:?}", pool.wait()));
            r.push(format!("{:?}", pool.wait_timeout(Duration::ZERO)));
            let child = child_request.lock().unwrap().take().expect("one callback");
            let child = pool.put_request(child).unwrap();
            let found = pool.cancel(child);
            // Cancelled or not, the child is pending until its end is heard.
            r.push(format!("{found:?} {}", pool.pending()));
            r.push(format!(
                "{:?}",
                pool.submit(|n: u8| n * 3, 3).unwrap().wait()
            ));
            r.push(format!("{:?}", pool.map(0..2u8, |n: u8| n)));
            tx.send(r).unwrap();
        }))
        .unwrap();
        pool.wait().unwrap();
        let r = rx.recv().unwrap();
        assert_eq!(r[0], "false", "its own request has ended");
        assert_eq!(r[1], "Err(NoResultsPending)");
        assert_eq!(r[2], "Ok(0)");
        assert_eq!(r[3], "Ok(0)");
        let ends = [&child_ran, &child_result, &child_cancelled].map(|c| c.load(Ordering::SeqCst));
        match r[4].as_str() {
            "true 1" => assert_eq!(
                ends,
                [0, 0, 1],
                "a cancelled child: (ran, result, cancelled)"
            ),
            "false 1" => assert_eq!(
                ends,
                [1, 1, 0],
                "a child not cancelled: (ran, result, cancelled)"
            ),
            other => panic!("cancel and pending from the callback: {other}"),
        }
        assert_eq!(r[5], "Ok(9)");
        assert_eq!(r[6], "[Ok(0), Ok(1)]");
        assert_eq!(pool.pending(), 0);
    });
}

// ---------------------------------------------------------------------------
// (b) What the errors say, through `?` into a boxed error.
// ---------------------------------------------------------------------------

/// The messages of `e` and of each of its sources, outermost first.
fn chain(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

#[test]
fn errors_say_something_useful_through_question_mark() {
    let build = ThreadPool::builder()
        .workers(MAX_WORKERS + 1)
        .build()
        .unwrap_err();
    let boxed_build = boxed(build);
    let msgs = chain(&*boxed_build);
    assert!(msgs[0].contains(&(MAX_WORKERS + 1).to_string()), "{msgs:?}");
    let global =
        GlobalPoolError::InvalidSettings(ThreadPool::builder().stack_size(0).build().unwrap_err());
    let msgs = chain(&*boxed(global));
    assert!(msgs[0].contains("stack size"), "{msgs:?}");
    // The chain says the reason twice (the outer message ends with the
    // source's, and `source` returns it too): reported, not asserted here.
    assert!(msgs[0].ends_with(msgs[1].as_str()), "{msgs:?}");
    let spawn = ThreadPool::new(0).create_workers(usize::MAX).unwrap_err();
    assert!(chain(&*boxed(spawn))[0].contains("at most"));
    for (e, want) in [
        (boxed(PollError::NoResultsPending), "no results pending"),
        (
            boxed(PollError::Timeout { pending: 1 }),
            "1 request pending",
        ),
        (
            boxed(WaitError::NoWorkersAvailable { pending: 2 }),
            "2 pending requests",
        ),
        (
            boxed(WaitError::HeldByCaller { pending: 1 }),
            "1 pending result is held",
        ),
        (
            boxed(ShutdownError::TimedOut {
                threads: 1,
                pending: 0,
            }),
            "1 thread running",
        ),
        (boxed(TaskError::<std::convert::Infallible>::Expired), ""),
        (boxed(TaskError::<std::convert::Infallible>::Cancelled), ""),
    ] {
        assert!(
            !e.to_string().is_empty() && e.to_string().contains(want),
            "{e}"
        );
    }
    let failed: TaskError<std::num::ParseIntError> =
        TaskError::Failed("x".parse::<u8>().unwrap_err());
    let msgs = chain(&*boxed(failed));
    assert!(msgs.iter().any(|m| m.contains("invalid digit")), "{msgs:?}");
}

#[test]
fn refusals_hand_every_request_back_with_its_callbacks() {
    within("hand back", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(1)
            .build()
            .unwrap();
        let ran = counter();
        let request = |n: u32| {
            let ran = Arc::clone(&ran);
            WorkRequest::new(|n: u32| n, n).on_result(move |_, _| {
                ran.fetch_add(1, Ordering::SeqCst);
            })
        };
        pool.try_put_request(request(1)).unwrap();
        let full = pool.try_put_request(request(2)).unwrap_err();
        assert!(
            matches!(full, PutError::Full(_)) && full.to_string().contains("full"),
            "{full}"
        );
        // No worker and a full queue: a blocking put would never end.
        let none = pool.put_request(full.into_request()).unwrap_err();
        assert!(matches!(none, PutError::NoWorkers(_)), "{none:?}");
        assert!(none.to_string().contains("no worker"), "{none}");
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        // The request handed back twice still runs, once, with its callback.
        pool.put_request(none.into_request()).unwrap();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        // Unrun requests come back from a shutdown of a pool with no worker.
        pool.dismiss_workers(1);
        pool.put_request(request(3)).unwrap();
        match pool.shutdown() {
            Err(ShutdownError::Unrun(back)) => {
                assert_eq!(back.len(), 1);
                let e = ShutdownError::Unrun(back);
                assert!(e.to_string().contains("1 queued request never ran"), "{e}");
            }
            other => panic!("expected Unrun, got {other:?}"),
        }
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    });
}

// ---------------------------------------------------------------------------
// A ticket awaited to the end, then waited on: the documented panic of
// `Future::poll` after `Ready` reaches `wait`, `wait_timeout` and
// `try_result` too.
// ---------------------------------------------------------------------------

#[test]
fn a_ticket_awaited_to_ready_then_waited_on_panics_as_documented() {
    common::hide_panics_starting_with("callpool: the ticket's outcome was already taken");
    let pool = ThreadPool::new(1);
    for how in ["wait", "wait_timeout", "try_result"] {
        let mut ticket = pool.submit(|n: u8| n, 1).unwrap();
        assert_eq!(futures::executor::block_on(&mut ticket), Ok(1));
        assert!(ticket.is_finished());
        assert!(!ticket.cancel());
        let ticket = Mutex::new(Some(ticket));
        let panicked = std::panic::catch_unwind(|| {
            let t = ticket.lock().unwrap().take().unwrap();
            match how {
                "wait" => drop(t.wait()),
                "wait_timeout" => drop(t.wait_timeout(HANG)),
                _ => drop(t.try_result()),
            }
        });
        assert!(panicked.is_err(), "{how} after Ready");
    }
}
