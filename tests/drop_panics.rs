//! A panic in a user value's `Drop` (a panic payload, a result nobody
//! polled, a callable's captured state dropped by a sweep) is contained
//! where it happens: the worker lives, the sweep finishes, and every request
//! is accounted for exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use callpool::{TaskError, ThreadPool, WorkRequest};

const BOMB: &str = "drop_panics: bomb";

/// Panics when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{BOMB}");
    }
}

/// Whether this process is the child that runs test `name` (an abort
/// there fails the parent, which asserts that the child ran); in the
/// parent, runs that child and says `false`.
fn in_child(name: &str) -> bool {
    const CHILD: &str = "CALLPOOL_DROP_PANICS_CHILD";
    if common::is_child(name, CHILD) {
        return true;
    }
    common::run_in_child(name, CHILD);
    false
}

fn quiet() {
    common::hide_panics(|message| message.is_none_or(|m| m.starts_with(BOMB)));
}

#[test]
fn a_panic_payload_whose_drop_panics_reaches_the_error_callback() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    pool.put_request(
        WorkRequest::new(|_: ()| std::panic::panic_any(Bomb), ())
            .on_error(move |_, e| seen.lock().unwrap().push(e)),
    )
    .unwrap();
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(1));
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(matches!(&errors[0], TaskError::Panicked(m) if m == "panic payload of unknown type"));
    // The worker lived: it runs the next request.
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.threads(), 1);
    pool.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(1));
}

/// Results whose `Drop` panics, for a handle dropped before it polled them:
/// they are dropped on the worker (or wherever the handle's queue goes),
/// and the other handle's requests still run.
/// With `callback_bombs`, each request's result callback captures a
/// `Bomb` too: two values of one request whose `Drop`s panic, each
/// contained on its own (the second escaped, or aborted the process when
/// the first was still unwinding).
fn unpolled_bombs(drop_while_queued: bool, callback_bombs: bool) {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let other = pool.new_handle();
    let gate = Arc::new(common::one_way::Gate::default());
    let _open = common::one_way::OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = mpsc::channel();
    let g = Arc::clone(&gate);
    // Holds the worker until the gate opens.
    pool.put_request(WorkRequest::new(
        move |_: ()| {
            started_tx.send(()).unwrap();
            g.pass();
        },
        (),
    ))
    .unwrap();
    started.recv_timeout(common::HANG).unwrap();
    for _ in 0..2 {
        let request = WorkRequest::new(|_: ()| Bomb, ());
        if callback_bombs {
            let bomb = Bomb;
            other
                .put_request(request.on_result(move |_, _| {
                    let _bomb = &bomb;
                }))
                .unwrap();
        } else {
            other.put_request(request).unwrap();
        }
    }
    if drop_while_queued {
        drop(other);
        gate.open();
    } else {
        gate.open();
        // Both bombs ran and sit in `other`'s result queue, not polled.
        let probe = Arc::clone(&pool);
        common::within("the bombs to run", move || {
            while probe.queued() > 0 {
                std::thread::yield_now();
            }
        });
        drop(other);
    }
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(1));
    the_one_worker_still_runs_requests(&pool);
}

/// `pool`'s one worker is alive and runs new requests.
fn the_one_worker_still_runs_requests(pool: &Arc<ThreadPool>) {
    for i in 0..3u8 {
        pool.put_request(WorkRequest::new(move |_: ()| i, ()))
            .unwrap();
    }
    let waiter = Arc::clone(pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(3));
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.threads(), 1, "a worker died");
}

#[test]
fn results_whose_drop_panics_on_a_dropped_handle_leave_the_worker_alive() {
    unpolled_bombs(false, false);
}

#[test]
fn queued_requests_of_a_dropped_handle_whose_results_panic_when_dropped() {
    unpolled_bombs(true, false);
}

/// `shutdown_now` cancels another handle's queued requests; one of them
/// holds a value whose `Drop` panics. The sweep goes on: every request of
/// that handle reaches its error callback with `Cancelled` exactly once.
#[test]
fn a_panicking_drop_during_a_shutdown_now_sweep_loses_nothing() {
    quiet();
    let a = ThreadPool::new(1);
    let b = Arc::new(a.new_handle());
    let (latch_gate, latch) = common::gate();
    a.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    latch_gate.await_start();
    let cancelled = Arc::new(AtomicUsize::new(0));
    for i in 0..4u32 {
        let bomb = (i == 1).then(|| Bomb);
        let c = Arc::clone(&cancelled);
        b.put_request(
            WorkRequest::new(
                move |x: u32| {
                    let _keep = &bomb;
                    x
                },
                i,
            )
            .on_result(|_, _| panic!("cancelled requests never run"))
            .on_error(move |_, e| {
                assert!(matches!(e, TaskError::Cancelled));
                c.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    let unstarted = common::within("shutdown_now", move || a.shutdown_now().len());
    assert_eq!(unstarted, 0);
    latch_gate.open();
    let waiter = Arc::clone(&b);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(4));
    assert_eq!(cancelled.load(Ordering::SeqCst), 4);
    assert_eq!(b.pending(), 0);
}

/// `map` on a pool that refuses its chunks drops the inputs it never put,
/// on the caller's thread: a panic in their `Drop` is contained there too,
/// and every input still has its `Cancelled` outcome.
#[test]
fn map_on_a_shut_down_pool_contains_its_inputs_drop_panics() {
    quiet();
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    pool.shutdown().unwrap();
    let outcomes = common::within("map of bombs", move || {
        other.map((0..3_000).map(|_| Bomb), |_bomb: Bomb| 0u8)
    });
    assert_eq!(outcomes.len(), 3_000);
    assert!(outcomes.iter().all(|o| *o == Err(TaskError::Cancelled)));
}

/// A request that returns a `Bomb` once `gate` hands it a message (or is
/// dropped): its outcome is made only after the test has let go of it.
fn bomb_after(gate: mpsc::Receiver<()>) -> impl FnOnce(()) -> Bomb + Send + 'static {
    move |_: ()| {
        let _ = gate.recv();
        Bomb
    }
}

/// The pool's one worker is alive: it runs another ticket.
fn assert_worker_alive(pool: &Arc<ThreadPool>) {
    let next = pool.submit(|n: u32| n + 1, 1).unwrap();
    assert_eq!(
        common::within("the next ticket", move || next.wait()),
        Ok(2)
    );
    assert_eq!(pool.workers(), 1);
    assert_eq!(pool.threads(), 1, "a worker died");
}

#[test]
fn an_outcome_whose_ticket_was_dropped_panics_when_dropped_and_the_worker_lives() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let (open, gate) = mpsc::channel();
    let ticket = pool.submit(bomb_after(gate), ()).unwrap();
    // The ticket goes first: the worker holds the last reference to the
    // outcome, and drops it.
    drop(ticket);
    drop(open);
    assert_worker_alive(&pool);
}

#[test]
fn an_outcome_whose_collector_was_dropped_panics_when_dropped_and_the_worker_lives() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let (open, gate) = mpsc::channel();
    {
        let mut bombs = pool.collector::<Bomb>();
        bombs.put(bomb_after(gate), ()).unwrap();
    }
    drop(open);
    assert_worker_alive(&pool);
}

/// Puts a request that holds the pool's one worker until the returned
/// sender is dropped; returns once the worker has started it.
fn hold_the_worker(pool: &ThreadPool) -> mpsc::Sender<()> {
    let (open, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    pool.put_request(WorkRequest::new(
        move |_: ()| {
            started_tx.send(()).unwrap();
            let _ = gate.recv();
        },
        (),
    ))
    .unwrap();
    started.recv_timeout(common::HANG).unwrap();
    open
}

#[test]
fn a_scoped_request_whose_input_panics_when_cancelled_still_ends_the_scope() {
    quiet();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        // Holds the worker, so that the scoped request stays queued.
        let open = hold_the_worker(&pool);
        let mut heard = Vec::new();
        pool.scope(|s| {
            s.put_then(
                |b: Bomb| {
                    std::mem::forget(b);
                    1u32
                },
                Bomb,
                |outcome| heard.push(outcome),
            )
            .unwrap();
            // Cancels the queued request, dropping its `Bomb`.
            drop(other.shutdown_now());
            drop(open);
        });
        done_tx.send(heard).unwrap();
    });
    let heard = done
        .recv_timeout(common::HANG)
        .expect("the scope never returned");
    assert_eq!(heard, vec![Err(TaskError::Cancelled)]);
}

#[test]
fn a_streaming_request_whose_input_panics_when_cancelled_hears_cancelled_once() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let open = hold_the_worker(&pool);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let id = pool
        .put_request(
            WorkRequest::streaming(
                |b: Bomb, _out: &callpool::Emitter<'_, u32>| {
                    std::mem::forget(b);
                    Ok::<_, callpool::Closed>(())
                },
                Bomb,
            )
            .on_error(move |_, e| seen.lock().unwrap().push(e)),
        )
        .unwrap();
    assert!(pool.cancel(id));
    drop(open);
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(2));
    assert_eq!(*errors.lock().unwrap(), vec![TaskError::Cancelled]);
}

#[test]
fn a_worker_state_whose_drop_panics_does_not_skip_the_stop_hook() {
    quiet();
    let stopped = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&stopped);
    let pool = ThreadPool::builder()
        .workers(3)
        .worker_state(|_| Bomb)
        .on_worker_stop(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!(pool.join_all_dismissed_workers(), 1);
    assert_eq!(stopped.load(Ordering::SeqCst), 1);
    common::within("shutdown", move || pool.shutdown()).unwrap();
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
}

/// An input whose `Drop` panics unless it is number 0.
struct Boom(u32);

impl Drop for Boom {
    fn drop(&mut self) {
        if self.0 != 0 {
            panic!("{BOMB}: input {}", self.0);
        }
    }
}

/// Dropping an `as_completed` or `imap` iterator cancels its queued
/// inputs; an input whose `Drop` panics there is logged, not propagated,
/// so several of them cannot abort the process (a second panic while the
/// first unwinds would), and the pool goes on.
#[test]
fn dropping_a_window_with_inputs_that_panic_when_dropped_goes_on() {
    quiet();
    for imap in [false, true] {
        let (done_tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            let pool = ThreadPool::new(1);
            let (open, gate) = mpsc::channel::<()>();
            let gate = Mutex::new(gate);
            // Input 0 ends at once; input 1 holds the worker; 2 and 3 wait
            // in the queue.
            let f = move |input: &Boom| {
                if input.0 == 1 {
                    let _ = gate.lock().unwrap().recv();
                }
                input.0
            };
            let inputs = (0..4).map(Boom);
            if imap {
                let mut it = pool.imap(inputs, 4, move |input: Boom| f(&input));
                assert_eq!(it.next().map(|r| r.ok()), Some(Some(0)));
                drop(it);
            } else {
                let mut it = pool.as_completed(inputs, 4, f);
                let (input, outcome) = it.next().unwrap();
                assert_eq!((input.0, outcome), (0, Ok(0)));
                drop(it);
            }
            drop(open);
            let ticket = pool.submit(|x: u32| x + 1, 1).unwrap();
            done_tx.send(ticket.wait()).unwrap();
        });
        assert_eq!(done.recv_timeout(common::HANG), Ok(Ok(2)), "imap: {imap}");
    }
}

/// A worker hook's or state maker's captures whose `Drop` panics, dropped
/// with the pool (here at the end of `shutdown`, on this thread): logged,
/// not propagated.
#[test]
fn hooks_whose_captures_panic_when_dropped_do_not_fail_the_shutdown() {
    quiet();
    let (start, stop, state) = (Boom(1), Boom(2), Boom(3));
    let pool = ThreadPool::builder()
        .workers(2)
        .on_worker_start(move |_| {
            let _ = &start;
        })
        .on_worker_stop(move |_| {
            let _ = &stop;
        })
        .worker_state(move |_| {
            let _ = &state;
        })
        .build()
        .unwrap();
    pool.put_request(WorkRequest::new(|x: u32| x, 1)).unwrap();
    let shut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.shutdown()));
    assert!(
        matches!(shut, Ok(Ok(()))),
        "{:?}",
        shut.map_err(|_| "panicked")
    );
}

/// A waker whose `wake` panics.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("{BOMB}: a waker");
    }
}

/// Registers a waker that panics on a ticket still queued or running.
fn poll_with_a_panicking_waker<T>(ticket: &mut callpool::Ticket<T>) {
    use std::future::Future;
    let waker = std::task::Waker::from(Arc::new(PanickingWaker));
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(std::pin::Pin::new(ticket).poll(&mut cx).is_pending());
}

/// A ticket's waker that panics is user code like any other: woken by the
/// worker, it does not take the worker down; woken by `shutdown_now`'s
/// sweep, it does not escape, and the sweep still cancels the other
/// handles' requests.
#[test]
fn a_waker_that_panics_takes_down_neither_a_worker_nor_a_sweep() {
    quiet();
    // On the worker, as it ends the queued request: the next one still runs.
    let pool = ThreadPool::new(1);
    let open = hold_the_worker(&pool);
    let mut queued = pool.submit(|x: u32| x + 1, 1).unwrap();
    poll_with_a_panicking_waker(&mut queued);
    drop(open);
    let next = pool.submit(|x: u32| x * 2, 21).unwrap();
    assert_eq!(next.wait_timeout(common::HANG).ok(), Some(Ok(42)));
    assert_eq!(pool.workers(), 1);

    // In a sweep: no panic out of shutdown_now, the other handle hears.
    let pool = ThreadPool::new(0);
    let other = pool.new_handle();
    let mut queued = pool.submit(|x: u32| x, 1).unwrap();
    poll_with_a_panicking_waker(&mut queued);
    let (tx, rx) = mpsc::channel();
    other
        .put_request(WorkRequest::new(|x: u32| x, 2).on_error(move |_, e| tx.send(e).unwrap()))
        .unwrap();
    let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.shutdown_now()));
    assert!(swept.is_ok(), "the waker's panic escaped shutdown_now");
    assert_eq!(other.wait_timeout(common::HANG), Ok(1));
    assert_eq!(rx.try_recv(), Ok(TaskError::Cancelled));
}

/// A graceful shutdown interrupted by a panicking callback drops this
/// handle's queued requests and the batch-done callbacks it completes,
/// while the panic unwinds: a `Drop` that panics among them is contained
/// (two of them would abort the process), and the callback's panic is what
/// passes out.
#[test]
fn a_shutdown_unwinding_from_a_callback_contains_the_drops_of_what_it_sweeps() {
    quiet();
    let pool = ThreadPool::new(1);
    pool.put_request(
        WorkRequest::new(|x: u32| x, 0).on_result(|_, _| panic!("{BOMB}: the callback")),
    )
    .unwrap();
    let (gate, latch) = common::gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    for n in 1..=2 {
        let (bomb, ran) = (Boom(n), Arc::clone(&ran));
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                let _ = &bomb;
                ran.fetch_add(1, Ordering::SeqCst);
            },
            (),
        ))
        .unwrap();
    }
    let batch = pool.put_batch([WorkRequest::new(|x: u32| x, 3)]).unwrap();
    let bomb = Boom(4);
    batch.on_done(move |_| {
        let _ = &bomb;
    });
    // The first result is queued once the gated request runs.
    gate.await_start();
    let shut = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.shutdown()));
    let payload = shut.expect_err("the callback's panic passes out");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some(format!("{BOMB}: the callback").as_str())
    );
    gate.open();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "swept, never run");
}

/// A streaming request's items and a batch-done callback that nobody will
/// handle (their handle was dropped while the requests ran) are dropped
/// with the handle's queues on the worker that lets go of them last: an
/// item's or a callback's capture whose `Drop` panics is contained there
/// (one killed the worker, two aborted the process).
#[test]
fn items_and_batch_callbacks_of_a_dropped_handle_leave_the_worker_alive() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let other = pool.new_handle();
    let (gate, latch) = common::gate();
    other
        .put_request(
            WorkRequest::streaming(
                move |n: u32, out: &callpool::Emitter<'_, Boom>| {
                    for i in 1..=n {
                        out.emit(Boom(i))?;
                    }
                    latch.hold();
                    Ok::<_, callpool::Closed>(())
                },
                2,
            )
            .on_result(|_, item| std::mem::forget(item)),
        )
        .unwrap();
    let batch = other.put_batch([WorkRequest::new(|x: u32| x, 0)]).unwrap();
    let bomb = Boom(3);
    batch.on_done(move |_| {
        let _ = &bomb;
    });
    // Both items are in `other`'s result queue once the stream holds.
    gate.await_start();
    drop(batch);
    drop(other);
    gate.open();
    // The worker lets go of `other`'s queues (the last reference to them)
    // before it sleeps: once it is idle, they were dropped there.
    let probe = Arc::clone(&pool);
    common::within("the worker to go idle", move || {
        while probe.stats().idle == 0 {
            std::thread::yield_now();
        }
    });
    the_one_worker_still_runs_requests(&pool);
}

/// `map` holds the last reference to its function: a panic in the `Drop`
/// of what the function captures is contained there, and every outcome
/// comes back (it was propagated, throwing all of them away). The same in
/// place, on a worker of the pool.
#[test]
fn maps_function_whose_captures_panic_when_dropped_loses_no_outcome() {
    quiet();
    let pool = Arc::new(ThreadPool::new(2));
    let bomb = Boom(1);
    let outcomes = pool.map(0..1_000u32, move |x: u32| {
        let _ = &bomb;
        x * 2
    });
    assert_eq!(outcomes.len(), 1_000);
    assert!(outcomes
        .iter()
        .enumerate()
        .all(|(i, o)| *o == Ok(2 * i as u32)));
    let inner = Arc::clone(&pool);
    let ticket = pool
        .submit(
            move |_: ()| {
                let bomb = Boom(2);
                inner.map(0..10u32, move |x: u32| {
                    let _ = &bomb;
                    x + 1
                })
            },
            (),
        )
        .unwrap();
    let outcomes = ticket.wait().expect("the callable did not panic");
    assert_eq!(outcomes, (1..=10u32).map(Ok).collect::<Vec<_>>());
}

/// A request whose deadline passed while it was queued is not run; its
/// work, dropped on the worker instead, panics in `Drop`: contained, the
/// error callback hears `Expired` once and the worker lives. (The panic
/// ended the worker, and the outcome was lost: `wait` hung.)
#[test]
fn an_expired_request_whose_work_panics_when_dropped_still_reports_expired() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let open = hold_the_worker(&pool);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let bomb = Bomb;
    pool.put_request(
        WorkRequest::new(
            move |_: ()| {
                let _bomb = &bomb;
            },
            (),
        )
        .deadline(std::time::Instant::now())
        .on_error(move |_, e| seen.lock().unwrap().push(e)),
    )
    .unwrap();
    drop(open);
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(2));
    assert_eq!(*errors.lock().unwrap(), [TaskError::Expired]);
    the_one_worker_still_runs_requests(&pool);
}

/// A result and its callback, both panicking when dropped, of requests
/// whose handle is dropped while they are queued or once they ran: the
/// worker lives, and the drop on this thread neither panics nor aborts.
#[test]
fn a_result_and_its_callback_both_panicking_when_dropped_are_each_contained() {
    unpolled_bombs(true, true);
    unpolled_bombs(false, true);
}

/// A streaming request whose result callback's captures panic in `Drop`,
/// let go of on the worker (its handle dropped while it ran) or by a
/// `shutdown_now` sweep (queued): contained. The worker lives, and the
/// sweep goes on to cancel another handle's request. (The callback was
/// dropped by drop glue, outside any containment: the worker died, and
/// `shutdown_now` panicked with that handle's request left pending.)
#[test]
fn a_streams_result_callback_that_panics_when_dropped_is_contained() {
    quiet();
    // On the worker.
    let pool = Arc::new(ThreadPool::new(1));
    let other = pool.new_handle();
    let (go, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let bomb = Bomb;
    other
        .put_request(
            WorkRequest::streaming(
                move |_: (), _out: &callpool::Emitter<'_, u32>| {
                    started_tx.send(()).unwrap();
                    let _ = gate.recv();
                    Ok::<_, ()>(())
                },
                (),
            )
            .on_result(move |_, _| {
                let _bomb = &bomb;
            }),
        )
        .unwrap();
    started.recv_timeout(common::HANG).unwrap();
    drop(other);
    drop(go);
    the_one_worker_still_runs_requests(&pool);

    // By a sweep.
    let pool = ThreadPool::new(1);
    let open = hold_the_worker(&pool);
    let other = pool.new_handle();
    let bomb = Bomb;
    other
        .put_request(
            WorkRequest::streaming(
                |_: (), _out: &callpool::Emitter<'_, u32>| Ok::<_, ()>(()),
                (),
            )
            .on_result(move |_, _| {
                let _bomb = &bomb;
            }),
        )
        .unwrap();
    drop(other);
    let third = pool.new_handle();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    third
        .put_request(
            WorkRequest::new(|x: u8| x, 1).on_error(move |_, e| seen.lock().unwrap().push(e)),
        )
        .unwrap();
    pool.shutdown_now();
    drop(open);
    assert_eq!(common::within("wait", move || third.wait()), Ok(1));
    assert_eq!(*errors.lock().unwrap(), [TaskError::Cancelled]);
}

/// A panic payload that panics when dropped (`panic_any`).
struct PayloadBomb;

impl Drop for PayloadBomb {
    fn drop(&mut self) {
        panic!("{BOMB}: a payload");
    }
}

/// Takes a panic out of `f`, leaking its payload (which may panic when
/// dropped), and says whether there was one.
fn panicked(f: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => false,
        Err(payload) => {
            std::mem::forget(payload);
            true
        }
    }
}

/// Two of a stream's items whose callbacks panic with payloads that panic
/// when dropped, run one after the other by one frame (the first item's
/// callback polls, so the later items queue up behind it): the first panic
/// goes on once that frame has run the rest; the second payload is dropped
/// contained, and every later item and the error still arrive. (Its drop
/// escaped with the result callback taken out of the queue: the later
/// items and the error were lost.)
#[test]
fn a_second_panic_payload_that_panics_when_dropped_stops_no_stream() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let items = Arc::new(Mutex::new(Vec::new()));
    let errors = common::counter();
    let (seen, failed) = (Arc::clone(&items), Arc::clone(&errors));
    let (emitted_tx, emitted) = mpsc::channel::<()>();
    let (go_tx, go) = mpsc::channel::<()>();
    let inner = Arc::clone(&pool);
    pool.put_request(
        WorkRequest::streaming(
            move |_: (), out: &callpool::Emitter<'_, u32>| {
                out.emit(0).unwrap();
                let _ = go.recv_timeout(common::HANG);
                for i in 1..6 {
                    out.emit(i).unwrap();
                }
                emitted_tx.send(()).unwrap();
                Err::<(), _>("the end")
            },
            (),
        )
        .on_result(move |_, i| {
            seen.lock().unwrap().push(i);
            if i == 0 {
                go_tx.send(()).unwrap();
                emitted.recv_timeout(common::HANG).unwrap();
                // Items 1 to 5 and the end reach the queue while this
                // frame runs it: this frame runs them after this returns.
                let _ = inner.poll();
            }
            if i == 1 || i == 2 {
                std::panic::panic_any(PayloadBomb);
            }
        })
        .on_error(move |_, _| {
            failed.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    let waiter = Arc::clone(&pool);
    let panics = common::within("the stream's items", move || {
        let mut panics = 0;
        while panicked(|| {
            waiter.wait().unwrap();
        }) {
            panics += 1;
        }
        panics
    });
    assert_eq!(panics, 1, "the first panic passed out of wait, once");
    assert_eq!(*items.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(errors.load(Ordering::SeqCst), 1);
}

/// The same in a scope: two callbacks panic with payloads that panic when
/// dropped; the scope still waits for the third request, which ends only
/// after both, and runs its callback.
#[test]
fn a_second_panic_payload_that_panics_when_dropped_stops_no_scope() {
    quiet();
    let pool = ThreadPool::new(2);
    let panicking = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    let (panicking, ran) = (&panicking, &ran);
    let scope_panicked = panicked(|| {
        pool.scope(|s| {
            for _ in 0..2 {
                s.put_then(
                    |_: ()| (),
                    (),
                    move |_| {
                        panicking.fetch_add(1, Ordering::SeqCst);
                        std::panic::panic_any(PayloadBomb);
                    },
                )
                .unwrap();
            }
            s.put_then(
                move |_: ()| {
                    let deadline = std::time::Instant::now() + common::HANG;
                    while panicking.load(Ordering::SeqCst) < 2
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::yield_now();
                    }
                },
                (),
                move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                },
            )
            .unwrap();
        });
    });
    assert!(scope_panicked);
    assert_eq!(panicking.load(Ordering::SeqCst), 2);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the third callback ran once");
}

/// An outcome whose `Drop` panics unless it is number 0; counts its drops.
struct LoudOutcome(u32, Arc<AtomicUsize>);

impl Drop for LoudOutcome {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        if self.0 != 0 {
            panic!("{BOMB}: outcome {}", self.0);
        }
    }
}

/// Dropping an `as_completed` or `imap` iterator whose requests ended but
/// were never read drops their outcomes there, the ticket being their last
/// owner: three of them panicking in `Drop` are each contained, none
/// escapes, and each is dropped exactly once. (Uncontained, the first panic unwound
/// out of the iterator's `Drop` and the second aborted the process, hence
/// the child process.)
#[test]
fn dropping_a_window_with_unread_outcomes_that_panic_when_dropped_goes_on() {
    const NAME: &str = "dropping_a_window_with_unread_outcomes_that_panic_when_dropped_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    for imap in [false, true] {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&dropped);
        let escaped = common::within_here("dropping the window", || {
            // One worker, FIFO: the ticket put after the window's four
            // requests ends only once all four have ended (settled).
            let pool = ThreadPool::new(1);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let f = move |n: u32| LoudOutcome(n, Arc::clone(&d));
                if imap {
                    let mut it = pool.imap(0..4u32, 4, f);
                    assert_eq!(it.next().map(|r| r.map(|o| o.0)), Some(Ok(0)));
                    assert_eq!(pool.submit(|x: u32| x + 1, 1).unwrap().wait(), Ok(2));
                    drop(it);
                } else {
                    let mut it = pool.as_completed(0..4u32, 4, move |n: &u32| f(*n));
                    let (input, outcome) = it.next().unwrap();
                    assert_eq!((input, outcome.map(|o| o.0)), (0, Ok(0)));
                    assert_eq!(pool.submit(|x: u32| x + 1, 1).unwrap().wait(), Ok(2));
                    drop(it);
                }
            }))
            .is_err()
        });
        assert!(!escaped, "a panic escaped the drop (imap: {imap})");
        // Outcome 0, read and dropped by the caller, and 1, 2 and 3.
        assert_eq!(dropped.load(Ordering::SeqCst), 4, "imap: {imap}");
    }
    common::child_ran(NAME);
}

/// An outcome that reached a collector's channel but was never taken, the
/// collector dropped while another of its requests still runs: that
/// request's worker holds the channel's last sender, so the outcome left
/// in the channel used to be dropped on the worker as its request was let
/// go of, outside any containment, and the panic killed the worker.
#[test]
fn an_unread_outcome_of_a_dropped_collector_panics_when_dropped_and_the_worker_lives() {
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let (open, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    {
        let mut bombs = pool.collector::<Option<Bomb>>();
        bombs.put(|_: ()| Some(Bomb), ()).unwrap();
        bombs
            .put(
                move |_: ()| {
                    started_tx.send(()).unwrap();
                    let _ = gate.recv();
                    None
                },
                (),
            )
            .unwrap();
        // One worker, FIFO: the bomb's outcome is in the channel by now.
        started.recv_timeout(common::HANG).unwrap();
    }
    drop(open);
    assert_worker_alive(&pool);
}

/// Dropping a collector whose requests are still pending drops the
/// callbacks given with them, unrun: two of them panicking in `Drop` are
/// each contained, none escapes, and each is dropped exactly once.
/// (Uncontained, the first panic unwound out of the collector's drop and
/// the second aborted the process, hence the child process.)
#[test]
fn dropping_a_collector_with_callbacks_that_panic_when_dropped_goes_on() {
    const NAME: &str = "dropping_a_collector_with_callbacks_that_panic_when_dropped_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(1);
    let open = hold_the_worker(&pool);
    let escaped = common::within_here("dropping the collector", || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut collector = pool.collector::<u32>();
            for n in 1..=2 {
                let loud = LoudOutcome(n, Arc::clone(&dropped));
                collector
                    .put_then(|n: u32| n, n, move |_| drop(loud))
                    .unwrap();
            }
            assert_eq!(collector.pending(), 2);
            drop(collector);
        }))
        .is_err()
    });
    assert!(!escaped, "a panic escaped the collector's drop");
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    drop(open);
    pool.wait().unwrap();
    common::child_ran(NAME);
}

/// A queued streaming request cancelled by id drops its callable and its
/// input unrun: both panicking in `Drop` are each contained, and the error
/// callback hears `Cancelled` once. (Dropped together, the second panic
/// came while the first unwound and aborted the process, hence the child
/// process.)
#[test]
fn a_cancelled_stream_whose_callable_and_input_both_panic_when_dropped_goes_on() {
    const NAME: &str =
        "a_cancelled_stream_whose_callable_and_input_both_panic_when_dropped_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let open = hold_the_worker(&pool);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let captured = Bomb;
    let id = pool
        .put_request(
            WorkRequest::streaming(
                move |b: Bomb, _out: &callpool::Emitter<'_, u32>| {
                    let _captured = &captured;
                    std::mem::forget(b);
                    Ok::<_, callpool::Closed>(())
                },
                Bomb,
            )
            .on_error(move |_, e| seen.lock().unwrap().push(e)),
        )
        .unwrap();
    assert!(pool.cancel(id));
    drop(open);
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(2));
    assert_eq!(*errors.lock().unwrap(), vec![TaskError::Cancelled]);
    common::child_ran(NAME);
}

/// Dropping a `callpool::as_completed` iterator over tickets whose
/// outcomes were never read drops those outcomes there: three panicking
/// in `Drop` are each contained, none escapes, and each is dropped exactly
/// once. (Uncontained, the first unwound out of the iterator's drop and
/// the second aborted the process, hence the child process.)
#[test]
fn dropping_as_completed_over_tickets_with_outcomes_that_panic_when_dropped_goes_on() {
    const NAME: &str =
        "dropping_as_completed_over_tickets_with_outcomes_that_panic_when_dropped_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(1);
    let tickets: Vec<_> = (1..=3u32)
        .map(|n| {
            let d = Arc::clone(&dropped);
            pool.submit(move |n: u32| LoudOutcome(n, d), n).unwrap()
        })
        .collect();
    // One worker, FIFO: all three have ended once this one has.
    assert_eq!(pool.submit(|x: u32| x + 1, 1).unwrap().wait(), Ok(2));
    let escaped = common::within_here("dropping the iterator", || {
        let completed = callpool::as_completed(tickets);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(completed))).is_err()
    });
    assert!(!escaped, "a panic escaped the iterator's drop");
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
    common::child_ran(NAME);
}

/// A request cancelled before it ran drops its callable and its argument
/// unrun: both panicking in `Drop` are each contained, for every way of
/// making a request from a callable and an argument, and each hears
/// `Cancelled` once. (The two travelled in one closure: the argument's
/// panic came while the callable's unwound and aborted the process, hence
/// the child process.)
#[test]
fn a_cancelled_request_whose_callable_and_argument_both_panic_when_dropped_goes_on() {
    const NAME: &str =
        "a_cancelled_request_whose_callable_and_argument_both_panic_when_dropped_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let open = hold_the_worker(&pool);
    type Heard = Arc<Mutex<Vec<(&'static str, bool)>>>;
    let errors: Heard = Arc::default();
    /// Records which kind of request heard its error, and whether it
    /// was `Cancelled`.
    fn heard<E>(
        errors: &Heard,
        kind: &'static str,
    ) -> impl FnOnce(callpool::RequestId, TaskError<E>) {
        let errors = Arc::clone(errors);
        move |_, e| {
            errors
                .lock()
                .unwrap()
                .push((kind, matches!(e, TaskError::Cancelled)))
        }
    }
    let callable = Bomb;
    let ids = [
        pool.put_request(
            WorkRequest::new(move |b: Bomb| drop((b, &callable)), Bomb)
                .on_error(heard(&errors, "new")),
        ),
        pool.put_request({
            let callable = Bomb;
            WorkRequest::fallible(
                move |b: Bomb| {
                    drop((b, &callable));
                    Ok::<_, String>(())
                },
                Bomb,
            )
            .on_error(heard(&errors, "fallible"))
        }),
        pool.put_request({
            let callable = Bomb;
            WorkRequest::with_context(
                move |_: &callpool::Context<'_>, b: Bomb| drop((b, &callable)),
                Bomb,
            )
            .on_error(heard(&errors, "with_context"))
        }),
        pool.put_request({
            let callable = Bomb;
            WorkRequest::fallible_with_context(
                move |_: &callpool::Context<'_>, b: Bomb| {
                    drop((b, &callable));
                    Ok::<_, String>(())
                },
                Bomb,
            )
            .on_error(heard(&errors, "fallible_with_context"))
        }),
    ]
    .map(Result::unwrap);
    for id in ids {
        assert!(pool.cancel(id));
    }
    let ticket = {
        let callable = Bomb;
        pool.submit(move |b: Bomb| drop((b, &callable)), Bomb)
            .unwrap()
    };
    assert!(ticket.cancel());
    // A scoped request, cancelled by a `shutdown_now` of another handle.
    let other = pool.new_handle();
    let mut scoped = Vec::new();
    pool.scope(|s| {
        let callable = Bomb;
        s.put_then(
            move |b: Bomb| drop((b, &callable)),
            Bomb,
            |outcome| scoped.push(outcome),
        )
        .unwrap();
        drop(other.shutdown_now());
        drop(open);
    });
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(5));
    let mut errors = errors.lock().unwrap().clone();
    errors.sort_by_key(|(kind, _)| *kind);
    assert_eq!(
        errors,
        ["fallible", "fallible_with_context", "new", "with_context"].map(|kind| (kind, true))
    );
    assert_eq!(ticket.wait(), Err(TaskError::Cancelled));
    assert_eq!(scoped, vec![Err(TaskError::Cancelled)]);
    common::child_ran(NAME);
}

/// The other two ways a request's callable and argument are dropped
/// unrun: expired when a worker takes it, and handed back by
/// `shutdown_now` and then dropped by the user. Both panicking in `Drop`
/// are each contained there too (the expired one's error callback hears
/// `Expired`), hence the child process.
#[test]
fn an_expired_or_handed_back_request_whose_callable_and_argument_both_panic_goes_on() {
    const NAME: &str =
        "an_expired_or_handed_back_request_whose_callable_and_argument_both_panic_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let pool = Arc::new(ThreadPool::new(1));
    let open = hold_the_worker(&pool);
    let (tx, expired) = mpsc::channel();
    let callable = Bomb;
    pool.put_request(
        WorkRequest::new(move |b: Bomb| drop((b, &callable)), Bomb)
            .deadline(std::time::Instant::now())
            .on_error(move |_, e| tx.send(e).unwrap()),
    )
    .unwrap();
    drop(open);
    let waiter = Arc::clone(&pool);
    assert_eq!(common::within("wait", move || waiter.wait()), Ok(2));
    assert_eq!(expired.try_iter().collect::<Vec<_>>(), [TaskError::Expired]);
    let open = hold_the_worker(&pool);
    let callable = Bomb;
    pool.put_request(WorkRequest::new(move |b: Bomb| drop((b, &callable)), Bomb))
        .unwrap();
    let pool = Arc::into_inner(pool).expect("the only handle");
    let back = pool.shutdown_now();
    assert_eq!(back.len(), 1);
    drop(back);
    drop(open);
    common::child_ran(NAME);
}

/// A result callback that panics (which `wait` passes on) beside an error
/// callback whose capture panics when dropped, and the other way round:
/// the callback not called is dropped first, contained, so the two
/// panics never unwind together (that aborted the process in a
/// trial), the first reaches the caller of `wait`, and the pool goes on.
#[test]
fn a_panicking_callback_beside_the_other_callback_whose_drop_panics_goes_on() {
    const NAME: &str = "a_panicking_callback_beside_the_other_callback_whose_drop_panics_goes_on";
    if !in_child(NAME) {
        return;
    }
    quiet();
    const CALLBACK: &str = "drop_panics: the callback called panics";
    common::hide_panics(|message| message.is_none_or(|m| m.starts_with(BOMB) || m == CALLBACK));
    let pool = ThreadPool::new(1);
    for fails in [false, true] {
        // The callback called panics; only the other one holds a bomb (a
        // bomb inside the panicking callback itself is the user's own two
        // panics in one value, which no library can part).
        let (result_bomb, error_bomb) = if fails {
            (Some(Bomb), None)
        } else {
            (None, Some(Bomb))
        };
        pool.put_request(
            WorkRequest::fallible(
                move |fails: bool| if fails { Err("failed") } else { Ok(()) },
                fails,
            )
            .on_result(move |_, ()| {
                let _keep = &result_bomb;
                panic!("{CALLBACK}");
            })
            .on_error(move |_, _: TaskError<&str>| {
                let _keep = &error_bomb;
                panic!("{CALLBACK}");
            }),
        )
        .unwrap();
        let passed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.wait()));
        let payload = passed.expect_err("the callback's panic reaches wait's caller");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(CALLBACK)
        );
        assert_eq!(pool.pending(), 0, "fails: {fails}");
    }
    assert_eq!(pool.submit(|x: u32| x + 1, 1).unwrap().wait(), Ok(2));
    common::child_ran(NAME);
}

/// Counts its drop, then panics.
struct CountedBomb(Arc<AtomicUsize>);

impl Drop for CountedBomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("{BOMB}");
    }
}

/// A collector's `try_put` keeps its callable and argument where a refused
/// put can take them back; cancelled unrun instead (closed with no
/// worker), both are dropped, each on its own: two panicking `Drop`s that
/// unwound together would abort the process.
#[test]
fn a_collector_try_put_cancelled_unrun_drops_its_callable_and_argument_apart() {
    const NAME: &str = "a_collector_try_put_cancelled_unrun_drops_its_callable_and_argument_apart";
    if !in_child(NAME) {
        return;
    }
    quiet();
    let dropped = common::counter();
    let pool = ThreadPool::new(0);
    let mut c = pool.collector::<u32>();
    let capture = CountedBomb(Arc::clone(&dropped));
    let id = c
        .try_put(
            move |arg: CountedBomb| {
                let _both = (&capture, arg);
                1
            },
            CountedBomb(Arc::clone(&dropped)),
        )
        .unwrap_or_else(|_| panic!("an unbounded queue has room"));
    pool.close().unwrap();
    assert_eq!(c.next_outcome(), Some((id, Err(TaskError::Cancelled))));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the callable's capture and the argument"
    );
    common::child_ran(NAME);
}

/// A scope ends with outcomes nobody read: it drops them, as a dropped
/// collector does, and two of them panicking in `Drop` are each contained
/// (logged), so the scope returns its body's value, and every outcome is
/// dropped exactly once. (Uncontained, the first panic passed out of the
/// scope as if a callback had panicked.)
#[test]
fn a_scopes_unread_outcomes_that_panic_when_dropped_do_not_panic_the_scope() {
    quiet();
    common::logs::install();
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(2);
    let marker = "a scope's unread outcome";
    let returned = common::within_here("the scope", || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                for n in 0..=2 {
                    let dropped = Arc::clone(&dropped);
                    // Outcomes 1 and 2 panic when dropped; 0 does not.
                    s.put(move |n: u32| LoudOutcome(n, dropped), n).unwrap();
                }
                "the body's value"
            })
        }))
    });
    assert_eq!(
        returned.ok(),
        Some("the body's value"),
        "a panic escaped the scope"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 3, "each dropped once");
    let logged = common::logs::records()
        .into_iter()
        .filter(|(_, text)| text.contains(marker) && text.contains(BOMB))
        .count();
    assert_eq!(logged, 2, "each contained panic is logged");
}
