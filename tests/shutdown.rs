//! Ending a pool: `shutdown`, `shutdown_timeout`, `shutdown_now`, and drop
//! (the Python module has none of these: W14).
//!
//! Every wait here is on a channel, a gate or a join; the only timeouts turn
//! a hang into a failure.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{PutError, ShutdownError, TaskError, ThreadPool, WorkRequest};

mod common;
use common::one_way::{Gate, OpenOnDrop};
use common::{within, HANG};

/// Opens `gate` if the test has not called [`Watchdog::disarm`] within
/// [`HANG`], so a call that blocks on a gated request returns and the test
/// fails instead of hanging.
struct Watchdog {
    disarm: mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn new(gate: &Arc<Gate>) -> Watchdog {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let (gate, flag) = (Arc::clone(gate), Arc::clone(&fired));
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(HANG) {
                flag.store(true, Ordering::SeqCst);
                gate.open();
            }
        });
        Watchdog { disarm, fired }
    }

    /// Stops the watchdog; panics if it had to open the gate.
    fn disarm(self, what: &str) {
        let _ = self.disarm.send(());
        assert!(
            !self.fired.load(Ordering::SeqCst),
            "{what} blocked until the watchdog released the request"
        );
    }
}

/// Sends on its channel when dropped: stored in a thread-local, it tells the
/// test that the thread has exited.
struct OnThreadExit(mpsc::Sender<()>);

impl Drop for OnThreadExit {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

thread_local! {
    static EXIT_SIGNAL: RefCell<Option<OnThreadExit>> = const { RefCell::new(None) };
}

/// Arranges for `tx` to hear when the current thread exits.
fn signal_on_thread_exit(tx: mpsc::Sender<()>) {
    EXIT_SIGNAL.with(|slot| *slot.borrow_mut() = Some(OnThreadExit(tx)));
}

/// A request that says it started, then blocks on `gate`; it counts its run
/// in `ran` and its callback in `called`.
fn blocking_request(
    gate: &Arc<Gate>,
    started: &mpsc::Sender<()>,
    ran: &Arc<AtomicUsize>,
    called: &Arc<AtomicUsize>,
) -> WorkRequest {
    let (gate, started) = (Arc::clone(gate), started.clone());
    let (ran, called) = (Arc::clone(ran), Arc::clone(called));
    WorkRequest::new(
        move |()| {
            started.send(()).unwrap();
            gate.pass();
            ran.fetch_add(1, Ordering::SeqCst);
        },
        (),
    )
    .on_result(move |_, ()| {
        called.fetch_add(1, Ordering::SeqCst);
    })
    .into()
}

/// Callbacks heard, as (user id, outcome), in the order they fired.
type Outcomes = Arc<Mutex<Vec<(u64, Result<(), TaskError>)>>>;

/// A request with user id `id` that counts its run in `ran`; any callback
/// it gets is recorded in `outcomes`.
fn counted_request(id: u64, ran: &Arc<AtomicUsize>, outcomes: &Outcomes) -> WorkRequest {
    let ran = Arc::clone(ran);
    let (ok, err) = (Arc::clone(outcomes), Arc::clone(outcomes));
    WorkRequest::new(
        move |()| {
            ran.fetch_add(1, Ordering::SeqCst);
        },
        (),
    )
    .with_id(id)
    .on_result(move |id, ()| ok.lock().unwrap().push((id.value(), Ok(()))))
    .on_error(move |id, e| err.lock().unwrap().push((id.value(), Err(e))))
    .into()
}

fn ids(requests: &[WorkRequest]) -> Vec<u64> {
    requests.iter().map(|r| r.id().value()).collect()
}

/// Puts `requests` on a fresh pool and waits: proves handed-back requests
/// are intact and can still run.
fn run_elsewhere(requests: Vec<WorkRequest>) -> usize {
    let n = requests.len();
    let pool = ThreadPool::new(1);
    for r in requests {
        pool.put_request(r).unwrap();
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(n));
    n
}

// `shutdown` runs every queued request, delivers every callback on the
// calling thread, and joins every worker thread (W14: no daemon threads
// killed with their work).
#[test]
fn shutdown_runs_everything_and_joins_every_thread() {
    let pool = ThreadPool::new(2);
    let observer = pool.new_handle();
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let ran = Arc::new(AtomicUsize::new(0));
    let callback_threads = Arc::new(Mutex::new(Vec::new()));

    let request = |blocking: bool| {
        let (gate, started) = (Arc::clone(&gate), started_tx.clone());
        let ran = Arc::clone(&ran);
        let threads = Arc::clone(&callback_threads);
        WorkRequest::new(
            move |()| {
                if blocking {
                    started.send(()).unwrap();
                    gate.pass();
                }
                ran.fetch_add(1, Ordering::SeqCst);
            },
            (),
        )
        .on_result(move |_, ()| threads.lock().unwrap().push(thread::current().id()))
    };
    // Both workers busy, so the rest is certainly queued at shutdown.
    for _ in 0..2 {
        pool.put_request(request(true)).unwrap();
    }
    for _ in 0..2 {
        started_rx.recv_timeout(HANG).unwrap();
    }
    for _ in 0..18 {
        pool.put_request(request(false)).unwrap();
    }
    assert_eq!(pool.queued(), 18);

    // Opens the gate once shutdown has begun, so shutdown itself has to
    // drain the queue.
    let watcher = pool.new_handle();
    let opener = {
        let gate = Arc::clone(&gate);
        thread::spawn(move || {
            let give_up = Instant::now() + HANG;
            while !watcher.is_shut_down() && Instant::now() < give_up {
                thread::sleep(Duration::from_millis(1));
            }
            gate.open();
        })
    };

    // Shut down from a helper thread, so a hang fails the test.
    let (result, shutdown_thread) = within("shutdown", move || {
        (pool.shutdown(), thread::current().id())
    });
    result.unwrap();
    opener.join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 20);
    let callback_threads = callback_threads.lock().unwrap();
    assert_eq!(callback_threads.len(), 20);
    assert!(callback_threads.iter().all(|&t| t == shutdown_thread));
    assert!(observer.is_shut_down());
    assert_eq!(observer.threads(), 0);
    assert_eq!(observer.workers(), 0);
    assert_eq!(observer.queued(), 0);
}

// After shutdown every put is refused with `PutError::ShutDown`, which hands
// the request back intact (W17: errors are values, not asserts), and no
// worker can be created.
#[test]
fn put_after_shutdown_hands_the_request_back() {
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    pool.shutdown().unwrap();
    assert!(other.is_shut_down());

    let ran = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let refused = match other.put_request(counted_request(77, &ran, &outcomes)) {
        Err(PutError::ShutDown(r)) => r,
        other => panic!("expected ShutDown, got {other:?}"),
    };
    assert_eq!(refused.id().value(), 77);
    assert!(refused.id().is_user_chosen());
    let refused = match other.try_put_request(refused) {
        Err(PutError::ShutDown(r)) => r,
        other => panic!("expected ShutDown, got {other:?}"),
    };
    let refused = match other.put_request_timeout(refused, HANG) {
        Err(PutError::ShutDown(r)) => r,
        other => panic!("expected ShutDown, got {other:?}"),
    };
    assert_eq!(other.pending(), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    let err = other.create_workers(1).unwrap_err();
    assert!(err.is_shut_down());
    assert_eq!((other.workers(), other.threads()), (0, 0));

    // The handed-back request still runs, with its callback, elsewhere.
    assert_eq!(run_elsewhere(vec![refused]), 1);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(*outcomes.lock().unwrap(), [(77, Ok(()))]);
}

// With no worker left, `shutdown` cannot run the queue: it hands back
// exactly this handle's queued requests, in order, in `ShutdownError::Unrun`
// (W5: stranded work is reported, never lost silently); another handle's
// queued request is cancelled to that handle.
#[test]
fn shutdown_without_workers_hands_back_unrun_requests() {
    let pool = ThreadPool::new(0);
    let other = pool.new_handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let other_outcomes = Arc::new(Mutex::new(Vec::new()));
    pool.put_request(counted_request(1, &ran, &outcomes))
        .unwrap();
    other
        .put_request(counted_request(100, &ran, &other_outcomes))
        .unwrap();
    pool.put_request(counted_request(2, &ran, &outcomes))
        .unwrap();
    pool.put_request(counted_request(3, &ran, &outcomes))
        .unwrap();
    assert_eq!(pool.queued(), 4);

    let unrun = match pool.shutdown() {
        Err(ShutdownError::Unrun(requests)) => requests,
        other => panic!("expected Unrun, got {other:?}"),
    };
    assert_eq!(ids(&unrun), [1, 2, 3]);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(outcomes.lock().unwrap().is_empty());
    assert_eq!(other.queued(), 0);

    assert_eq!(other.wait_timeout(HANG), Ok(1));
    assert_eq!(
        *other_outcomes.lock().unwrap(),
        [(100, Err(TaskError::Cancelled))]
    );

    assert_eq!(run_elsewhere(unrun), 3);
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    assert_eq!(outcomes.lock().unwrap().len(), 3);
}

// `shutdown_now` returns at once with exactly its handle's unstarted
// requests, in order; the running request finishes on its thread (its
// outcome is discarded: the handle is gone); another handle's queued
// requests are cancelled to it and never run (W20: queued work can be
// cancelled).
#[test]
fn shutdown_now_hands_back_unstarted_and_cancels_other_handles() {
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let running_ran = Arc::new(AtomicUsize::new(0));
    let running_called = Arc::new(AtomicUsize::new(0));
    pool.put_request(blocking_request(
        &gate,
        &started_tx,
        &running_ran,
        &running_called,
    ))
    .unwrap();
    started_rx.recv_timeout(HANG).unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let other_outcomes = Arc::new(Mutex::new(Vec::new()));
    pool.put_request(counted_request(1, &ran, &outcomes))
        .unwrap();
    other
        .put_request(counted_request(101, &ran, &other_outcomes))
        .unwrap();
    pool.put_request(counted_request(2, &ran, &outcomes))
        .unwrap();
    other
        .put_request(counted_request(102, &ran, &other_outcomes))
        .unwrap();
    pool.put_request(counted_request(3, &ran, &outcomes))
        .unwrap();
    assert_eq!(pool.queued(), 5);

    let watchdog = Watchdog::new(&gate);
    let unstarted = pool.shutdown_now();
    watchdog.disarm("shutdown_now");
    assert_eq!(ids(&unstarted), [1, 2, 3]);
    assert!(other.is_shut_down());
    assert_eq!(other.queued(), 0);
    // The running request is still blocked.
    assert_eq!(running_ran.load(Ordering::SeqCst), 0);
    assert_eq!(other.threads(), 1);

    assert_eq!(other.wait_timeout(HANG), Ok(2));
    assert_eq!(
        *other_outcomes.lock().unwrap(),
        [
            (101, Err(TaskError::Cancelled)),
            (102, Err(TaskError::Cancelled))
        ]
    );
    assert_eq!(other.pending(), 0);

    gate.open();
    let joiner = other.new_handle();
    assert_eq!(
        within("join_all_dismissed_workers", move || {
            joiner.join_all_dismissed_workers()
        }),
        1
    );
    assert_eq!(other.threads(), 0);
    assert_eq!(running_ran.load(Ordering::SeqCst), 1);
    assert_eq!(running_called.load(Ordering::SeqCst), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert!(outcomes.lock().unwrap().is_empty());

    assert_eq!(run_elsewhere(unstarted), 3);
    assert_eq!(ran.load(Ordering::SeqCst), 3);
}

// `shutdown_timeout` gives up on a request that never returns and reports
// `ShutdownError::TimedOut` with the threads still running and the requests
// still pending (W14: shutdown with a bound).
#[test]
fn shutdown_timeout_reports_a_request_that_never_returns() {
    let pool = ThreadPool::new(1);
    let observer = pool.new_handle();
    let gate = Arc::new(Gate::default());
    // Released only at the end of the test, so the thread can exit.
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let ran = Arc::new(AtomicUsize::new(0));
    let called = Arc::new(AtomicUsize::new(0));
    pool.put_request(blocking_request(&gate, &started_tx, &ran, &called))
        .unwrap();
    started_rx.recv_timeout(HANG).unwrap();
    // Queued behind the stuck request.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    pool.put_request(counted_request(1, &ran, &outcomes))
        .unwrap();

    let watchdog = Watchdog::new(&gate);
    let result = pool.shutdown_timeout(Duration::from_millis(50));
    watchdog.disarm("shutdown_timeout");
    match result {
        Err(ShutdownError::TimedOut { threads, pending }) => {
            assert_eq!((threads, pending), (1, 2));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(observer.is_shut_down());
    assert_eq!(observer.threads(), 1);
    assert_eq!(called.load(Ordering::SeqCst), 0);

    gate.open();
    let joiner = observer.new_handle();
    assert_eq!(
        within("join_all_dismissed_workers", move || {
            joiner.join_all_dismissed_workers()
        }),
        1
    );
    assert_eq!(observer.threads(), 0);
}

// Dropping the last handle never blocks, even with a request running and
// others queued (W14); the queued requests are discarded and never run, the
// running one finishes on its thread (no callback: the handle is gone), and
// that thread then exits.
#[test]
fn drop_returns_at_once_and_discards_queued_requests() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Gate::default());
    let _release = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started_rx) = mpsc::channel();
    let (exited_tx, exited_rx) = mpsc::channel();
    // Every callable owns a clone of `alive`; once all are dropped (run or
    // discarded), `alive_rx` disconnects.
    let (alive, alive_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicUsize::new(0));
    let called = Arc::new(AtomicUsize::new(0));

    let (running_gate, running_ran) = (Arc::clone(&gate), Arc::clone(&ran));
    let (running_alive, running_called) = (alive.clone(), Arc::clone(&called));
    pool.put_request(
        WorkRequest::new(
            move |()| {
                let _alive = running_alive;
                signal_on_thread_exit(exited_tx);
                started_tx.send(()).unwrap();
                running_gate.pass();
                running_ran.fetch_add(1, Ordering::SeqCst);
            },
            (),
        )
        .on_result(move |_, ()| {
            running_called.fetch_add(1, Ordering::SeqCst);
        }),
    )
    .unwrap();
    started_rx.recv_timeout(HANG).unwrap();

    for _ in 0..4 {
        let (alive, ran, called) = (alive.clone(), Arc::clone(&ran), Arc::clone(&called));
        pool.put_request(
            WorkRequest::new(
                move |()| {
                    let _alive = alive;
                    ran.fetch_add(1, Ordering::SeqCst);
                },
                (),
            )
            .on_result(move |_, ()| {
                called.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    assert_eq!(pool.queued(), 4);
    drop(alive);

    let watchdog = Watchdog::new(&gate);
    drop(pool);
    watchdog.disarm("dropping the pool");
    // Still blocked: the drop did not wait for it.
    assert_eq!(ran.load(Ordering::SeqCst), 0);

    gate.open();
    assert_eq!(
        alive_rx.recv_timeout(HANG),
        Err(mpsc::RecvTimeoutError::Disconnected),
        "a request was kept alive after the pool was dropped"
    );
    exited_rx
        .recv_timeout(HANG)
        .expect("the worker thread did not exit");
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(called.load(Ordering::SeqCst), 0);
}

// Puts from another handle race with `shutdown_now`: every put is either
// refused (and the request handed back) or gets exactly one outcome on its
// handle (run, or cancelled), never lost in the closed queue. Run many
// times to meet the put that pushes just after the closing sweep. The
// putter goes on until the shutdown refuses it (`put_until_refused`), so
// every round races, however the threads are scheduled.
#[test]
fn puts_racing_shutdown_now_are_refused_or_reported_exactly_once() {
    const ROUNDS: usize = 200;
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(2);
        let putter = pool.new_handle();
        let (started_tx, started_rx) = mpsc::channel();
        let racer = thread::spawn(move || {
            let outcomes: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
            let (accepted, refused) = put_until_refused(started_tx, |id| {
                let (ok, err) = (Arc::clone(&outcomes), Arc::clone(&outcomes));
                let request = WorkRequest::new(|x: u64| x, id)
                    .on_result(move |_, x| ok.lock().unwrap().push(x))
                    .on_error(move |rid, _| err.lock().unwrap().push(rid.value()))
                    .with_id(id);
                match putter.put_request(request) {
                    Ok(_) => true,
                    Err(PutError::ShutDown(back)) => {
                        assert_eq!(back.id().value(), id);
                        false
                    }
                    Err(e) => panic!("unexpected put error: {e}"),
                }
            });
            // Every accepted request's outcome reaches this handle.
            assert_eq!(putter.wait_timeout(HANG), Ok(accepted.len()));
            let mut seen = outcomes.lock().unwrap().clone();
            seen.sort_unstable();
            assert_eq!(
                seen, accepted,
                "each accepted request reported exactly once"
            );
            refused
        });
        started_rx.recv_timeout(HANG).unwrap();
        let unstarted = pool.shutdown_now();
        assert!(unstarted.is_empty(), "the closing handle put nothing");
        assert_eq!(racer.join().unwrap(), 1 + PUTS_AFTER_REFUSAL);
    }
}

/// Puts after the first refusal in `put_until_refused`: each must be
/// refused too, as a closed pool never opens again.
const PUTS_AFTER_REFUSAL: usize = 20;

/// Puts through `put` (which says whether the request was accepted) with
/// ids 0, 1, 2, ..., telling `started` after the 51st, until a put is
/// refused; then `PUTS_AFTER_REFUSAL` more, each of which must be refused.
/// So a shutdown made after `started` always meets a put, however the
/// threads are scheduled. Returns the accepted ids (0 up to the first
/// refused one: none is accepted after a refusal) and the refused count.
fn put_until_refused(
    started: mpsc::Sender<()>,
    mut put: impl FnMut(u64) -> bool,
) -> (Vec<u64>, usize) {
    let give_up = std::time::Instant::now() + HANG;
    let mut accepted = Vec::new();
    for id in 0u64.. {
        if !put(id) {
            for later in id + 1..=id + PUTS_AFTER_REFUSAL as u64 {
                assert!(
                    !put(later),
                    "put {later} accepted after put {id} was refused"
                );
            }
            return (accepted, 1 + PUTS_AFTER_REFUSAL);
        }
        accepted.push(id);
        if id == 50 {
            started.send(()).unwrap();
        }
        assert!(
            id % 1024 != 0 || std::time::Instant::now() < give_up,
            "the shutdown refused no put in {HANG:?}"
        );
    }
    unreachable!("ids run out")
}

// Puts from another handle race with a graceful `shutdown`: every put is
// either refused (and the request handed back) or runs (its result, never a
// cancellation, reaches its handle): a request counted in before the drain
// began is drained, one put after it is refused, and none is left behind
// in the queue for the final sweep to cancel. The putter goes on until
// the shutdown refuses it (`put_until_refused`), so every round races.
#[test]
fn puts_racing_graceful_shutdown_are_refused_or_run_exactly_once() {
    const ROUNDS: usize = 100;
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(2);
        let putter = pool.new_handle();
        let (started_tx, started_rx) = mpsc::channel();
        let racer = thread::spawn(move || {
            let ran: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
            let cancelled = Arc::new(AtomicUsize::new(0));
            let (accepted, refused) = put_until_refused(started_tx, |id| {
                let ran = Arc::clone(&ran);
                let cancelled = Arc::clone(&cancelled);
                let request = WorkRequest::new(|x: u64| x, id)
                    .on_result(move |_, x| ran.lock().unwrap().push(x))
                    .on_error(move |_, _| {
                        cancelled.fetch_add(1, Ordering::SeqCst);
                    });
                match putter.put_request(request) {
                    Ok(_) => true,
                    Err(PutError::ShutDown(back)) => {
                        drop(back);
                        false
                    }
                    Err(e) => panic!("unexpected put error: {e}"),
                }
            });
            assert_eq!(putter.wait_timeout(HANG), Ok(accepted.len()));
            assert_eq!(
                cancelled.load(Ordering::SeqCst),
                0,
                "an accepted request was cancelled"
            );
            let mut seen = ran.lock().unwrap().clone();
            seen.sort_unstable();
            assert_eq!(seen, accepted, "each accepted request ran exactly once");
            refused
        });
        started_rx.recv_timeout(HANG).unwrap();
        pool.shutdown().expect("the closing handle put nothing");
        assert_eq!(racer.join().unwrap(), 1 + PUTS_AFTER_REFUSAL);
    }
}

#[test]
fn shutdown_timeout_does_not_wait_past_its_timeout_for_a_stop_hook() {
    // The stop hook blocks until the test releases it, after the shutdown
    // returned: a shutdown that waited for the hook would hang here.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    let stopped_tx = std::sync::Mutex::new(stopped_tx);
    let pool = ThreadPool::builder()
        .workers(1)
        .on_worker_stop(move |_| {
            let _ = held.lock().unwrap().recv();
            stopped_tx.lock().unwrap().send(()).unwrap();
        })
        .build()
        .unwrap();
    let outcome = common::within("shutdown_timeout", move || {
        pool.shutdown_timeout(std::time::Duration::from_millis(20))
    });
    assert!(
        matches!(
            outcome,
            Err(ShutdownError::TimedOut {
                threads: 1,
                pending: 0
            })
        ),
        "{outcome:?}"
    );
    drop(release);
    stopped
        .recv_timeout(common::HANG)
        .expect("the stop hook ran once released");
}

/// `close` from a callback of a streaming request's item, on a pool whose
/// result queue holds two: the wait inside `close` ends early (the other
/// item taken with this one is held below it) while the stream still runs,
/// and its worker gets stuck on the full result queue that only this
/// thread reads. `close` must make room while it waits for the threads, and
/// every item still arrives once, in order. (It waited for the threads
/// alone, for ever.)
#[test]
fn close_from_a_streams_item_callback_makes_room_for_the_stream() {
    use callpool::{Closed, Emitter};
    const ITEMS: usize = 100;
    let (closed, seen, outer) = within("close in an item callback", || {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(1)
                .result_capacity(2)
                .build()
                .unwrap(),
        );
        let (two_sent_tx, two_sent) = mpsc::channel::<()>();
        let (go_tx, go) = mpsc::channel::<()>();
        let go_tx = Mutex::new(Some(go_tx));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(None));
        let (p, s, c) = (Arc::clone(&pool), Arc::clone(&seen), Arc::clone(&closed));
        pool.put_request(
            WorkRequest::streaming(
                move |n: usize, out: &Emitter<'_, usize>| {
                    for k in 0..n {
                        out.emit(k)?;
                        if k == 1 {
                            // Both items are queued: the wait takes them in
                            // one run; the rest come once it closes.
                            two_sent_tx.send(()).unwrap();
                            go.recv().unwrap();
                        }
                    }
                    Ok::<_, Closed>(())
                },
                ITEMS,
            )
            .on_result(move |_, k| {
                s.lock().unwrap().push(k);
                if let Some(go_tx) = go_tx.lock().unwrap().take() {
                    go_tx.send(()).unwrap();
                    *c.lock().unwrap() = Some(p.close());
                }
            }),
        )
        .unwrap();
        two_sent.recv().unwrap();
        let outer = pool.wait();
        let closed = closed.lock().unwrap().take();
        let seen = seen.lock().unwrap().clone();
        (closed, seen, outer)
    });
    assert!(matches!(closed, Some(Ok(()))), "{closed:?}");
    assert_eq!(
        seen,
        (0..ITEMS).collect::<Vec<_>>(),
        "each item once, in order"
    );
    assert!(outer.is_ok(), "{outer:?}");
}

// `shutdown_now` hands back every request its handle had queued, while
// another handle's puts race the close. (A put that landed as the pool
// closed swept the queue itself, sometimes between the close and the
// closer's own sweep, and cancelled the closing handle's requests to the
// handle that was handing them back: lost to both, in about 1 round in
// 25.) The racing handle puts from before the close until it is refused.
#[test]
fn shutdown_now_hands_back_all_its_queued_requests_while_puts_race_it() {
    const ROUNDS: usize = 200;
    const QUEUED: u64 = 500;
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let (started_tx, started) = mpsc::channel();
        let held = Arc::clone(&gate);
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                started_tx.send(()).unwrap();
                held.pass();
            },
            (),
        ))
        .unwrap();
        started.recv_timeout(HANG).unwrap();
        for id in 1..=QUEUED {
            pool.put_request(WorkRequest::new(|x: u64| x, 0).with_id(id))
                .unwrap();
        }
        let other = pool.new_handle();
        let (racing_tx, racing) = mpsc::channel();
        let putter = thread::spawn(move || loop {
            match other.put_request(WorkRequest::new(|x: u8| x, 0)) {
                Ok(_) => drop(racing_tx.send(())),
                Err(PutError::ShutDown(_)) => return,
                Err(e) => panic!("unexpected put error: {e}"),
            }
        });
        racing.recv_timeout(HANG).unwrap();
        let mut back = ids(&pool.shutdown_now());
        back.sort_unstable();
        assert_eq!(
            back,
            (1..=QUEUED).collect::<Vec<_>>(),
            "every queued request of the closing handle handed back, once"
        );
        gate.open();
        putter.join().unwrap();
    }
}

// A running callable's children hand-off that lands as `shutdown_now`
// closes the pool (`Push::QueuedLate`) must not sweep the queue before the
// closer does: it cancelled every request queued beside its children,
// the closing handle's included, to that handle, which `shutdown_now`
// had let go of, so they were neither run nor handed back, and nobody
// heard of them. The 50 requests queued behind the running one never
// start (one worker, busy with it), so all 50 come back in every round.
#[test]
fn a_late_children_hand_off_leaves_the_queue_to_shutdown_now() {
    const ROUNDS: usize = 1_000;
    let mut short = Vec::new();
    for round in 0..ROUNDS {
        let pool = ThreadPool::new(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let (started_tx, started) = mpsc::channel();
        // Puts children until the pool refuses: every 64th hands the
        // slot's children to the queue, racing the close.
        pool.put_request(WorkRequest::with_context(
            move |cx: &callpool::Context<'_>, ()| {
                started_tx.send(()).unwrap();
                while cx.put(WorkRequest::new(|n: u32| n, 0)).is_ok() {}
            },
            (),
        ))
        .unwrap();
        started.recv_timeout(HANG).unwrap();
        for i in 0..50u64 {
            let ran = Arc::clone(&ran);
            let request = WorkRequest::new(
                move |n: u64| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    n
                },
                i,
            )
            .with_id(i);
            pool.put_request(request).unwrap();
        }
        let back = pool.shutdown_now();
        // The children have automatic ids; the 50 chose theirs.
        let ours = back.iter().filter(|r| r.id().is_user_chosen()).count();
        if ours != 50 {
            short.push((round, ours));
        }
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a request queued behind the only worker ran"
        );
    }
    assert!(
        short.is_empty(),
        "rounds (round, handed back) that handed back fewer than the 50 queued: {short:?}"
    );
}

// A running callable puts children as fast as it can while `shutdown_now`
// closes the pool: every child whose put returned `Ok` is handed back
// (the one worker is busy with their parent, so none runs), and the
// callable hears a refusal for every other. (A child held in the slot
// just after the closer's sweep looked there, or refused at its hand-off
// as the pool closed, was cancelled to the closing handle, which nobody
// polls any more: lost.)
#[test]
fn every_child_put_as_shutdown_now_closes_is_handed_back_or_refused() {
    const ROUNDS: usize = 500;
    for round in 0..ROUNDS {
        let pool = ThreadPool::new(1);
        let (started_tx, started) = mpsc::channel();
        let (accepted_tx, accepted) = mpsc::channel();
        pool.put_request(WorkRequest::with_context(
            move |cx: &callpool::Context<'_>, ()| {
                let mut ok = Vec::new();
                loop {
                    match cx.put(WorkRequest::new(|n: u32| n, 0)) {
                        Ok(id) => ok.push(id.value()),
                        Err(PutError::ShutDown(_)) => break,
                        Err(e) => panic!("unexpected put error: {e}"),
                    }
                    if ok.len() == 1 {
                        started_tx.send(()).unwrap();
                    }
                }
                accepted_tx.send(ok).unwrap();
            },
            (),
        ))
        .unwrap();
        started.recv_timeout(HANG).unwrap();
        let back: Vec<u64> = pool.shutdown_now().iter().map(|r| r.id().value()).collect();
        let ok: Vec<u64> = accepted.recv_timeout(HANG).unwrap();
        // The child puts until refused, so `ok` grows with however long
        // this thread takes to close the pool: a million or more on a busy
        // machine. Look ids up in a sorted copy, not with `contains`, or
        // the check alone takes minutes there.
        let mut sorted = back.clone();
        sorted.sort_unstable();
        let missing: Vec<(usize, u64)> = ok
            .iter()
            .enumerate()
            .filter(|(_, id)| sorted.binary_search(id).is_err())
            .map(|(i, id)| (i, *id))
            .collect();
        assert!(
            missing.is_empty() && back.len() == ok.len(),
            "round {round}: ok {} back {} missing (index, id) {missing:?}",
            ok.len(),
            back.len()
        );
    }
}

/// Shuts down each pool it holds when dropped, in order, counting the
/// requests handed back.
struct ShutsDown(Vec<ThreadPool>, Arc<AtomicUsize>);

impl Drop for ShutsDown {
    fn drop(&mut self) {
        for pool in self.0.drain(..) {
            self.1
                .fetch_add(pool.shutdown_now().len(), Ordering::SeqCst);
        }
    }
}

/// A request on `on` that does nothing; its callable, dropped unrun, shuts
/// down `pools` in order.
fn put_shutting_down(on: &ThreadPool, pools: Vec<ThreadPool>, back: &Arc<AtomicUsize>) {
    let guard = ShutsDown(pools, Arc::clone(back));
    on.put_request(WorkRequest::new(move |_: ()| drop(guard), ()))
        .unwrap();
}

// A sweep drops a cancelled callable (user code) that shuts down another
// pool, then this pool again through a third handle: each close finishes.
// (The closer's mark on its thread was one value, cleared by the inner
// close of the other pool, so the close of this pool waited on the lock
// its own thread held.)
#[test]
fn a_cancelled_callable_that_closes_another_pool_then_this_one_does_not_deadlock() {
    within("close from a sweep, after another pool's close", || {
        let pool = ThreadPool::new(0);
        let other_pool = ThreadPool::new(0);
        let back = Arc::new(AtomicUsize::new(0));
        let putter = pool.new_handle();
        let (again, mine) = (pool.new_handle(), Arc::clone(&back));
        put_shutting_down(&putter, vec![other_pool, again], &mine);
        assert!(pool.shutdown_now().is_empty());
        assert_eq!(back.load(Ordering::SeqCst), 0);
    });
}

// Two pools whose sweeps each drop a callable that closes the other: the
// close of the first, run inside the second's sweep inside the first's,
// does not wait on its own thread.
#[test]
fn sweeps_of_two_pools_that_close_each_other_do_not_deadlock() {
    within("nested closes of two pools", || {
        let first = ThreadPool::new(0);
        let second = ThreadPool::new(0);
        let back = Arc::new(AtomicUsize::new(0));
        // Swept by `first`'s close: closes `second`, whose sweep drops the
        // next one, which closes `first` again.
        put_shutting_down(&second.new_handle(), vec![first.new_handle()], &back);
        put_shutting_down(&first.new_handle(), vec![second], &back);
        assert!(first.shutdown_now().is_empty());
        assert_eq!(back.load(Ordering::SeqCst), 0);
    });
}

/// Locks its mutex when dropped (a cancelled callable's `Drop` that logs
/// into a shared sink, say).
struct LocksWhenDropped(Arc<Mutex<()>>);

impl Drop for LocksWhenDropped {
    fn drop(&mut self) {
        drop(self.0.lock());
    }
}

// A cancelled callable's `Drop`, run by `shutdown_now`'s sweep, waits for a
// lock that a thread holds while it puts until refused. A put of that
// thread that lands as the pool closes sweeps again: it must not wait for
// the closer, who waits for it.
#[test]
fn a_sweeps_drop_that_waits_for_a_putter_racing_the_close_does_not_deadlock() {
    const ROUNDS: usize = 300;
    within("a sweep's drop waiting for a late putter", || {
        for _ in 0..ROUNDS {
            let pool = ThreadPool::new(0);
            let sink = Arc::new(Mutex::new(()));
            let dropped = LocksWhenDropped(Arc::clone(&sink));
            pool.new_handle()
                .put_request(WorkRequest::new(move |_: ()| drop(dropped), ()))
                .unwrap();
            let other = pool.new_handle();
            let (holding_tx, holding) = mpsc::channel();
            let putter = thread::spawn(move || {
                let _held = sink.lock().unwrap();
                holding_tx.send(()).unwrap();
                loop {
                    match other.put_request(WorkRequest::new(|x: u8| x, 0)) {
                        Ok(_) => {}
                        Err(PutError::ShutDown(_)) => return,
                        Err(e) => panic!("unexpected put error: {e}"),
                    }
                }
            });
            holding.recv_timeout(HANG).unwrap();
            assert!(pool.shutdown_now().is_empty());
            putter.join().unwrap();
        }
    });
}
