//! An adversarial audit of batches (`ThreadPool::put_batch`, `Batch`):
//! cancels racing the workers and each other, batch-done callbacks set
//! from other threads, replaced, panicking or re-entering the pool,
//! member callbacks that panic, user-chosen ids used again while the
//! batch still runs, ids far apart, bounded queues, shutdowns from
//! other threads and handles, workers dismissed or retired mid-batch,
//! and handles dropped early. Every test counts each member's end
//! exactly (by its input), checks the progress against those counts, and
//! checks that each callback ran once and on the thread that polled.

mod common;

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use callpool::{
    make_fallible_requests_with_input, make_requests, make_requests_with_input, Batch, BatchError,
    Context, PollError, Progress, TaskError, ThreadPool, WaitError, WorkRequest,
};
use common::one_way::{Gate, OpenOnDrop};
use common::{counter, gate, until, within, Dropped, PanicsOnDrop};

/// The prefix of this file's deliberate panics (hidden from the output).
const PANIC: &str = "batches_adversarial:";

/// Hides this file's deliberate panics: those with its prefix, and the
/// failures the smoke test of the helpers provokes.
fn quiet() {
    common::hide_panics(|message| {
        message.is_some_and(|m| {
            m.starts_with(PANIC)
                || m.contains("not ended exactly once")
                || m.contains("off the polling thread")
                || m.contains("progress against the callbacks")
        })
    });
}

/// A progress as (total, done, failed, cancelled).
fn counts(p: Progress) -> (usize, usize, usize, usize) {
    (p.total, p.done, p.failed, p.cancelled)
}

/// Records every call of the batch-done callbacks it makes: the thread and
/// the progress.
#[derive(Clone, Default)]
struct DoneLog(Arc<Mutex<Vec<(ThreadId, Progress)>>>);

impl DoneLog {
    fn callback(&self) -> impl FnOnce(Progress) + Send + 'static {
        let log = Arc::clone(&self.0);
        move |p| log.lock().unwrap().push((thread::current().id(), p))
    }

    fn calls(&self) -> Vec<(ThreadId, Progress)> {
        self.0.lock().unwrap().clone()
    }

    /// The one call; fails unless there was exactly one.
    fn once(&self) -> (ThreadId, Progress) {
        let calls = self.calls();
        assert_eq!(calls.len(), 1, "batch-done callback calls: {calls:?}");
        calls[0]
    }
}

/// Each member's end, by its input (`0..n`): how many results, failures
/// (an `Err` or a panic), cancellations and expiries its callbacks heard,
/// and how many callbacks ran on a thread other than the one expected to
/// poll.
struct Ends {
    results: Vec<AtomicUsize>,
    failed: Vec<AtomicUsize>,
    cancelled: Vec<AtomicUsize>,
    expired: Vec<AtomicUsize>,
    poller: ThreadId,
    elsewhere: AtomicUsize,
}

impl Ends {
    /// For `n` members whose callbacks must run on `poller`.
    fn new(n: usize, poller: ThreadId) -> Arc<Ends> {
        let zeros = || (0..n).map(|_| AtomicUsize::new(0)).collect();
        Arc::new(Ends {
            results: zeros(),
            failed: zeros(),
            cancelled: zeros(),
            expired: zeros(),
            poller,
            elsewhere: AtomicUsize::new(0),
        })
    }

    fn here(&self) {
        if thread::current().id() != self.poller {
            self.elsewhere.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn error(&self, n: usize, err: &TaskError<usize>) {
        self.here();
        let slot = match err {
            TaskError::Failed(_) | TaskError::Panicked(_) => &self.failed,
            TaskError::Cancelled => &self.cancelled,
            TaskError::Expired => &self.expired,
            other => panic!("an error of a kind this file does not know: {other:?}"),
        };
        slot[n].fetch_add(1, Ordering::SeqCst);
    }

    fn sum(slots: &[AtomicUsize]) -> usize {
        slots.iter().map(|s| s.load(Ordering::SeqCst)).sum()
    }

    /// (results, failed, cancelled, expired) over every member.
    fn totals(&self) -> (usize, usize, usize, usize) {
        (
            Self::sum(&self.results),
            Self::sum(&self.failed),
            Self::sum(&self.cancelled),
            Self::sum(&self.expired),
        )
    }

    /// How many callbacks ran, of every kind.
    fn ended(&self) -> usize {
        let (r, f, c, e) = self.totals();
        r + f + c + e
    }

    /// Fails unless every member's callbacks ran exactly once in all, and
    /// all of them on the polling thread.
    fn assert_each_once(&self) {
        let bad: Vec<(usize, [usize; 4])> = (0..self.results.len())
            .map(|i| {
                let each = [&self.results, &self.failed, &self.cancelled, &self.expired]
                    .map(|slots| slots[i].load(Ordering::SeqCst));
                (i, each)
            })
            .filter(|(_, each)| each.iter().sum::<usize>() != 1)
            .collect();
        assert!(bad.is_empty(), "members not ended exactly once: {bad:?}");
        assert_eq!(
            self.elsewhere.load(Ordering::SeqCst),
            0,
            "callbacks ran off the polling thread"
        );
    }

    /// Checks `progress` against the callbacks that ran: what the batch
    /// counts as done, failed and cancelled (expired included) is what the
    /// members' callbacks heard.
    fn assert_matches(&self, progress: Progress) {
        let (results, failed, cancelled, expired) = self.totals();
        assert_eq!(
            (progress.done, progress.failed, progress.cancelled),
            (results, failed, cancelled + expired),
            "progress against the callbacks"
        );
    }
}

/// `n` members with inputs `0..n`, each ending in `ends` by its input;
/// `work` is the callable (an `Err` fails the member).
fn members(
    n: usize,
    ends: &Arc<Ends>,
    work: impl Fn(&usize) -> Result<usize, usize> + Send + Sync + 'static,
) -> Vec<WorkRequest> {
    let (ok, err) = (Arc::clone(ends), Arc::clone(ends));
    make_fallible_requests_with_input(
        work,
        0..n,
        move |_, n, value| {
            assert_eq!(n, value, "a member's result is its own");
            ok.here();
            ok.results[n].fetch_add(1, Ordering::SeqCst);
        },
        move |_, n, e| err.error(n, &e),
    )
}

/// Waits on `pool` until nothing is pending, catching the panics of
/// callbacks on the way; returns the messages of those panics.
fn wait_through_panics(pool: &ThreadPool) -> Vec<String> {
    let mut panics = Vec::new();
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| pool.wait())) {
            Ok(Ok(_)) => return panics,
            Ok(Err(e)) => panic!("wait: {e:?}"),
            Err(payload) => panics.push(message(&*payload)),
        }
    }
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "?".into())
}

/// Counts members started, and holds each at `gate` until it opens.
fn held(started: &Arc<AtomicUsize>, gate: &Arc<Gate>) -> impl Fn(&usize) -> Result<usize, usize> {
    let (started, gate) = (Arc::clone(started), Arc::clone(gate));
    move |n: &usize| {
        started.fetch_add(1, Ordering::SeqCst);
        gate.pass();
        Ok(*n)
    }
}

// ---------------------------------------------------------------------------
// Batch::cancel against the workers, other cancels, and panicking callbacks.
// ---------------------------------------------------------------------------

/// A thread cancels the batch again and again while two workers run it
/// and this thread waits: every member ends once (run or cancelled, never
/// both, never neither), what the cancels returned is exactly what was
/// cancelled, and the batch-done callback runs once, here, with counts
/// that match the callbacks.
#[test]
fn cancels_racing_the_workers_while_this_thread_waits_count_exactly() {
    for round in 0..20 {
        within("cancels racing the workers", move || {
            const N: usize = 20_000;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let started = counter();
            let batch = pool
                .put_batch(members(N, &ends, held(&started, &gate)))
                .unwrap();
            let log = DoneLog::default();
            batch.on_done(log.callback());
            let canceller = {
                let (batch, gate) = (batch.clone(), Arc::clone(&gate));
                thread::spawn(move || {
                    gate.open();
                    let mut cancelled = 0;
                    for _ in 0..200 {
                        cancelled += batch.cancel();
                        thread::yield_now();
                    }
                    cancelled
                })
            };
            let handled = pool.wait().unwrap();
            let cancelled = canceller.join().unwrap();
            assert_eq!(handled, N, "round {round}");
            ends.assert_each_once();
            let progress = batch.progress();
            assert_eq!(
                counts(progress),
                (N, N - cancelled, 0, cancelled),
                "round {round}"
            );
            ends.assert_matches(progress);
            assert_eq!(
                started.load(Ordering::SeqCst),
                N - cancelled,
                "round {round}"
            );
            assert_eq!(log.once(), (me, progress), "round {round}");
            assert_eq!(pool.stats().cancelled, cancelled as u64, "round {round}");
        });
    }
}

/// Two threads cancel the same batch at the same moment while both
/// workers hold a member each: between them they cancel every queued
/// member exactly once, and later cancels (and one after the batch ended)
/// cancel nothing.
#[test]
fn two_simultaneous_cancels_split_the_queued_members_exactly() {
    for round in 0..50 {
        within("two cancels at once", move || {
            const N: usize = 2_000;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let started = counter();
            let batch = pool
                .put_batch(members(N, &ends, held(&started, &gate)))
                .unwrap();
            until(|| started.load(Ordering::SeqCst) == 2);
            let barrier = Arc::new(Barrier::new(2));
            let cancels: Vec<_> = (0..2)
                .map(|_| {
                    let (batch, barrier) = (batch.clone(), Arc::clone(&barrier));
                    thread::spawn(move || {
                        barrier.wait();
                        batch.cancel() + batch.cancel()
                    })
                })
                .collect();
            let cancelled: usize = cancels.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(cancelled, N - 2, "round {round}: every queued member, once");
            assert_eq!(batch.cancel(), 0, "round {round}");
            gate.open();
            assert_eq!(pool.wait(), Ok(N), "round {round}");
            assert_eq!(batch.cancel(), 0, "round {round}: after the end");
            ends.assert_each_once();
            let progress = batch.progress();
            assert_eq!(counts(progress), (N, 2, 0, N - 2), "round {round}");
            ends.assert_matches(progress);
            assert_eq!(batch.cancel(), 0, "round {round}");
            assert_eq!(batch.progress(), progress, "round {round}");
        });
    }
}

/// The batch is cancelled while two of its members run, and every
/// cancelled member's error callback panics: each panic comes out of a
/// `wait` on this thread, one per cancelled member; the running members
/// end normally; the counts stay exact through the panics and the
/// batch-done callback runs once, here.
#[test]
fn cancelled_members_whose_error_callbacks_panic_still_end_the_batch_once() {
    quiet();
    within("panicking error callbacks", || {
        const N: usize = 50;
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let ok = Arc::clone(&ends);
        let err = Arc::clone(&ends);
        let requests = make_fallible_requests_with_input(
            held(&started, &gate),
            0..N,
            move |_, n, _| {
                ok.here();
                ok.results[n].fetch_add(1, Ordering::SeqCst);
            },
            move |_, n, e: TaskError<usize>| {
                err.error(n, &e);
                panic!("{PANIC} error callback of {n}");
            },
        );
        let batch = pool.put_batch(requests).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        until(|| started.load(Ordering::SeqCst) == 2);
        assert_eq!(batch.cancel(), N - 2);
        gate.open();
        let panics = wait_through_panics(&pool);
        assert_eq!(panics.len(), N - 2, "{panics:?}");
        assert!(panics.iter().all(|p| p.starts_with(PANIC)), "{panics:?}");
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 2, 0, N - 2));
        ends.assert_matches(progress);
        assert_eq!(log.once(), (me, progress));
        assert_eq!(pool.pending(), 0);
    });
}

/// A member's error callback cancels the rest of its batch at the first
/// failure (a common pattern: stop on the first error). The cancel runs
/// on the polling thread, inside a callback: what it returns is exactly
/// what ends cancelled, and every member ends once.
#[test]
fn a_member_callback_that_cancels_its_own_batch_counts_exactly() {
    within("cancel from a member's callback", || {
        const N: usize = 1_000;
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let slot: Arc<OnceLock<Batch>> = Arc::new(OnceLock::new());
        let cancelled_by_callback = counter();
        let (ok, err, s, c) = (
            Arc::clone(&ends),
            Arc::clone(&ends),
            Arc::clone(&slot),
            Arc::clone(&cancelled_by_callback),
        );
        let requests = make_fallible_requests_with_input(
            |n: &usize| if *n == 10 { Err(*n) } else { Ok(*n) },
            0..N,
            move |_, n, _| {
                ok.here();
                ok.results[n].fetch_add(1, Ordering::SeqCst);
            },
            move |_, n, e: TaskError<usize>| {
                err.error(n, &e);
                if matches!(e, TaskError::Failed(_)) {
                    let batch = s.get().expect("set before any poll");
                    c.fetch_add(batch.cancel(), Ordering::SeqCst);
                    // Inside a member's callback the batch has not ended.
                    assert!(!batch.progress().is_complete());
                }
            },
        );
        let batch = pool.put_batch(requests).unwrap();
        assert!(slot.set(batch.clone()).is_ok());
        let log = DoneLog::default();
        batch.on_done(log.callback());
        assert_eq!(pool.wait(), Ok(N));
        ends.assert_each_once();
        let cancelled = cancelled_by_callback.load(Ordering::SeqCst);
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, N - 1 - cancelled, 1, cancelled));
        ends.assert_matches(progress);
        assert_eq!(log.once(), (me, progress));
        // The batch holds its own handle through the callbacks' captures
        // only while members are left: the slot is the last holder.
        drop(slot);
    });
}

// ---------------------------------------------------------------------------
// The batch-done callback: set from other threads, replaced, panicking,
// re-entering the pool.
// ---------------------------------------------------------------------------

/// Another thread sets the batch-done callback just as this thread's
/// `wait` completes the batch: it runs exactly once, with the full count,
/// either here (the poller completed the batch after it was set) or on
/// the setting thread (the batch had ended: it runs at once, inside
/// `on_done`); never twice, never not at all.
#[test]
fn on_done_set_from_another_thread_racing_the_completion_runs_once() {
    let (mut here, mut there) = (0, 0);
    for round in 0..300 {
        let (was_here, was_there) = within("on_done racing the end", move || {
            const N: usize = 64;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let batch = pool
                .put_batch(make_requests(|n: usize| n, 0..N, |_, _| {}, |_, _| {}))
                .unwrap();
            let log = DoneLog::default();
            let barrier = Arc::new(Barrier::new(2));
            let setter = {
                let (batch, barrier, log) = (batch.clone(), Arc::clone(&barrier), log.clone());
                thread::spawn(move || {
                    barrier.wait();
                    batch.on_done(log.callback());
                    // Once `on_done` returns, a callback it ran at once has
                    // run: none runs on this thread later.
                    (thread::current().id(), log.calls().len())
                })
            };
            barrier.wait();
            assert_eq!(pool.wait(), Ok(N));
            let (setter_id, seen_by_setter) = setter.join().unwrap();
            let (thread, progress) = log.once();
            assert_eq!(counts(progress), (N, N, 0, 0), "round {round}");
            assert_eq!(batch.progress(), progress, "round {round}");
            if thread == setter_id {
                assert_eq!(seen_by_setter, 1, "round {round}: ran inside on_done");
                (0, 1)
            } else {
                assert_eq!(thread, me, "round {round}: ran on neither thread");
                (1, 0)
            }
        });
        here += was_here;
        there += was_there;
    }
    assert_eq!(here + there, 300);
}

/// Eight threads set a batch-done callback each before the batch can end
/// (no worker yet): exactly one runs, once, on the polling thread; each
/// of the seven others is dropped unrun exactly once; and one set after
/// the end is dropped unrun too.
#[test]
fn many_threads_setting_on_done_leave_exactly_one_to_run() {
    for round in 0..50 {
        within("on_done from eight threads", move || {
            const K: usize = 8;
            let pool = ThreadPool::new(0);
            let me = thread::current().id();
            let batch = pool
                .put_batch(make_requests(|n: u8| n, 0..10, |_, _| {}, |_, _| {}))
                .unwrap();
            let (ran, dropped) = (Arc::new(Mutex::new(Vec::new())), counter());
            let barrier = Arc::new(Barrier::new(K));
            let setters: Vec<_> = (0..K)
                .map(|k| {
                    let (batch, barrier, ran) =
                        (batch.clone(), Arc::clone(&barrier), Arc::clone(&ran));
                    let token = Dropped(Arc::clone(&dropped));
                    thread::spawn(move || {
                        barrier.wait();
                        batch.on_done(move |p| {
                            let _token = token;
                            ran.lock().unwrap().push((k, thread::current().id(), p));
                        });
                    })
                })
                .collect();
            for setter in setters {
                setter.join().unwrap();
            }
            assert!(ran.lock().unwrap().is_empty(), "round {round}: ran early");
            assert_eq!(dropped.load(Ordering::SeqCst), K - 1, "round {round}");
            pool.create_workers(1).unwrap();
            assert_eq!(pool.wait(), Ok(10));
            let ran = ran.lock().unwrap().clone();
            assert_eq!(ran.len(), 1, "round {round}: {ran:?}");
            assert_eq!(ran[0].1, me, "round {round}");
            assert_eq!(counts(ran[0].2), (10, 10, 0, 0), "round {round}");
            assert_eq!(dropped.load(Ordering::SeqCst), K, "round {round}");
            let late = Dropped(Arc::clone(&dropped));
            batch.on_done(move |_| {
                let _late = late;
                panic!("{PANIC} a second batch-done callback ran");
            });
            assert_eq!(dropped.load(Ordering::SeqCst), K + 1, "round {round}");
        });
    }
}

/// A batch-done callback replaced before the end, and one set after it,
/// whose captures panic when dropped: each drop is contained (`on_done`
/// returns normally), happens once, and the callback that runs runs once.
#[test]
fn replaced_and_late_batch_done_callbacks_with_panicking_drops_are_contained() {
    quiet();
    within("panicking drops of on_done", || {
        let pool = ThreadPool::new(0);
        let batch = pool
            .put_batch(make_requests(|n: u8| n, 0..3, |_, _| {}, |_, _| {}))
            .unwrap();
        let drops = counter();
        let bomb = PanicsOnDrop(Arc::clone(&drops), PANIC);
        batch.on_done(move |_| {
            let _bomb = bomb;
            panic!("{PANIC} the replaced callback ran");
        });
        let log = DoneLog::default();
        batch.on_done(log.callback());
        assert_eq!(drops.load(Ordering::SeqCst), 1, "replaced: dropped once");
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(3));
        assert_eq!(counts(log.once().1), (3, 3, 0, 0));
        let bomb = PanicsOnDrop(Arc::clone(&drops), PANIC);
        batch.on_done(move |_| {
            let _bomb = bomb;
            panic!("{PANIC} the late callback ran");
        });
        assert_eq!(drops.load(Ordering::SeqCst), 2, "late: dropped once");
        assert_eq!(log.calls().len(), 1);
    });
}

/// A batch-done callback that panics: the panic comes out of the `wait`
/// that completed the batch, on this thread, once; the batch is complete
/// and exact, nothing is pending, and the next `wait` has nothing to do.
#[test]
fn a_panicking_on_done_passes_out_of_wait_once_and_leaves_the_batch_complete() {
    quiet();
    for workers in [1, 2] {
        within("a panicking on_done", move || {
            const N: usize = 500;
            let pool = ThreadPool::new(workers);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let batch = pool.put_batch(members(N, &ends, |n| Ok(*n))).unwrap();
            let calls = Arc::new(Mutex::new(Vec::new()));
            let c = Arc::clone(&calls);
            batch.on_done(move |p| {
                c.lock().unwrap().push((thread::current().id(), p));
                panic!("{PANIC} on_done");
            });
            let panics = wait_through_panics(&pool);
            assert_eq!(panics, [format!("{PANIC} on_done")], "workers {workers}");
            ends.assert_each_once();
            let progress = batch.progress();
            assert_eq!(counts(progress), (N, N, 0, 0));
            assert_eq!(*calls.lock().unwrap(), [(me, progress)]);
            assert_eq!(pool.pending(), 0);
            assert_eq!(pool.wait(), Ok(0));
        });
    }
}

/// The last member's result callback panics: the batch-done callback
/// still runs, once, here, before the member's panic reaches the caller
/// of `wait`; if the batch-done callback panics too, the member's panic
/// (the first) is the one that comes out.
#[test]
fn the_last_members_panic_comes_out_after_the_batch_done_callback_ran() {
    quiet();
    for done_panics in [false, true] {
        within("the last member panics", move || {
            let pool = ThreadPool::new(1);
            let me = thread::current().id();
            // One worker: results come in order, the member with input 2
            // last.
            let batch = pool
                .put_batch(make_requests(
                    |n: u32| n,
                    0..3u32,
                    |_, n| {
                        if n == 2 {
                            panic!("{PANIC} the last member's callback");
                        }
                    },
                    |_, _| {},
                ))
                .unwrap();
            let calls = Arc::new(Mutex::new(Vec::new()));
            let c = Arc::clone(&calls);
            batch.on_done(move |p| {
                c.lock().unwrap().push((thread::current().id(), p));
                if done_panics {
                    panic!("{PANIC} on_done");
                }
            });
            let panics = wait_through_panics(&pool);
            assert_eq!(panics.len(), 1, "{panics:?}");
            assert!(
                panics[0].contains("the last member's callback"),
                "the member's panic comes out: {panics:?}"
            );
            let progress = batch.progress();
            assert_eq!(counts(progress), (3, 3, 0, 0));
            assert_eq!(*calls.lock().unwrap(), [(me, progress)]);
            assert_eq!(pool.wait(), Ok(0));
        });
    }
}

/// A batch-done callback that re-enters the pool: it reads and cancels
/// its own batch (nothing left), sets another batch-done callback on it
/// (dropped unrun), puts a second batch with a batch-done callback of its
/// own, and waits on the handle. Nothing deadlocks; the nested `wait`
/// returns as documented for a callback (`Ok`, or `HeldByCaller` when
/// only results held by the call below are left); both batches end
/// exactly, each batch-done callback once, on this thread.
#[test]
fn a_batch_done_callback_that_puts_a_batch_and_waits_does_not_deadlock() {
    for workers in [1, 2, 3] {
        within("a re-entrant on_done", move || {
            const N: usize = 300;
            let pool = ThreadPool::new(workers);
            let me = thread::current().id();
            let (outer_ends, inner_ends) = (Ends::new(N, me), Ends::new(N, me));
            let outer = pool.put_batch(members(N, &outer_ends, |n| Ok(*n))).unwrap();
            let inner_log = DoneLog::default();
            let inner_slot: Arc<OnceLock<Batch>> = Arc::new(OnceLock::new());
            let nested_wait = Arc::new(Mutex::new(None));
            let late_dropped = counter();
            let outer_calls = Arc::new(Mutex::new(Vec::new()));
            {
                let (pool, own, inner_ends, inner_log, inner_slot, nested_wait, late, calls) = (
                    pool.clone(),
                    outer.clone(),
                    Arc::clone(&inner_ends),
                    inner_log.clone(),
                    Arc::clone(&inner_slot),
                    Arc::clone(&nested_wait),
                    Dropped(Arc::clone(&late_dropped)),
                    Arc::clone(&outer_calls),
                );
                outer.on_done(move |p| {
                    calls.lock().unwrap().push((thread::current().id(), p));
                    assert_eq!(own.progress(), p, "exact in the batch-done callback");
                    assert_eq!(own.cancel(), 0);
                    own.on_done(move |_| {
                        let _late = late;
                        panic!("{PANIC} a second batch-done callback ran");
                    });
                    let inner = pool.put_batch(members(N, &inner_ends, |n| Ok(*n))).unwrap();
                    inner.on_done(inner_log.callback());
                    *nested_wait.lock().unwrap() = Some(pool.wait());
                    assert!(inner_slot.set(inner).is_ok());
                });
            }
            pool.wait().unwrap();
            assert_eq!(pool.pending(), 0);
            outer_ends.assert_each_once();
            inner_ends.assert_each_once();
            let outer_progress = outer.progress();
            assert_eq!(counts(outer_progress), (N, N, 0, 0));
            assert_eq!(*outer_calls.lock().unwrap(), [(me, outer_progress)]);
            assert_eq!(late_dropped.load(Ordering::SeqCst), 1);
            match nested_wait.lock().unwrap().take() {
                Some(Ok(_) | Err(WaitError::HeldByCaller { .. })) => {}
                other => panic!("the nested wait: {other:?}"),
            }
            let inner = inner_slot.get().expect("the inner batch was put");
            let inner_progress = inner.progress();
            assert_eq!(counts(inner_progress), (N, N, 0, 0));
            assert_eq!(inner_log.once(), (me, inner_progress));
        });
    }
}

/// The batch-done callback set inside the last member's own result
/// callback, on the polling thread: it runs once, here, with the full
/// count (at once, or right after that callback).
#[test]
fn on_done_set_inside_the_last_members_callback_runs_once_here() {
    within("on_done from the last callback", || {
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let slot: Arc<OnceLock<Batch>> = Arc::new(OnceLock::new());
        let log = DoneLog::default();
        let (s, l) = (Arc::clone(&slot), log.clone());
        let batch = pool
            .put_batch(make_requests(
                |n: u32| n,
                0..5u32,
                move |_, n| {
                    if n == 4 {
                        s.get().unwrap().on_done(l.callback());
                    }
                },
                |_, _| {},
            ))
            .unwrap();
        assert!(slot.set(batch.clone()).is_ok());
        assert_eq!(pool.wait(), Ok(5));
        let progress = batch.progress();
        assert_eq!(counts(progress), (5, 5, 0, 0));
        assert_eq!(log.once(), (me, progress));
    });
}

// ---------------------------------------------------------------------------
// Member callbacks that panic: the progress is exact after every poll.
// ---------------------------------------------------------------------------

/// One thread polls while members' callbacks panic now and then: after
/// every `poll`, whether it returned or a panic came out of it, the
/// progress counts exactly the callbacks that have run (the progress is
/// documented exact once the polling thread is done), and the batch-done
/// callback runs once, here, at the end.
#[test]
fn progress_is_exact_after_every_poll_even_one_a_panic_ended() {
    quiet();
    within("poll through panics", || {
        const N: usize = 3_000;
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let (ok, err) = (Arc::clone(&ends), Arc::clone(&ends));
        let batch = pool
            .put_batch(make_fallible_requests_with_input(
                |n: &usize| if n % 3 == 0 { Err(*n) } else { Ok(*n) },
                0..N,
                move |_, n, _| {
                    ok.here();
                    ok.results[n].fetch_add(1, Ordering::SeqCst);
                    if n % 7 == 0 {
                        panic!("{PANIC} result callback {n}");
                    }
                },
                move |_, n, e: TaskError<usize>| {
                    err.error(n, &e);
                    if n % 11 == 0 {
                        panic!("{PANIC} error callback {n}");
                    }
                },
            ))
            .unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        let mut panics = 0;
        let mut polls = 0usize;
        while pool.pending() > 0 {
            polls += 1;
            // `poll` and `poll_timeout` in turn: each hands its counts to
            // the batch before it returns.
            let polled = panic::catch_unwind(AssertUnwindSafe(|| {
                if polls % 2 == 0 {
                    pool.poll()
                } else {
                    pool.poll_timeout(Duration::from_millis(1))
                }
            }));
            match polled {
                Ok(Ok(_) | Err(PollError::Timeout { .. } | PollError::NoResultsPending)) => {}
                Ok(Err(e)) => panic!("poll: {e:?}"),
                Err(_) => panics += 1,
            }
            let progress = batch.progress();
            assert_eq!(progress.ended(), ends.ended(), "after a poll");
            ends.assert_matches(progress);
            assert_eq!(progress.is_complete(), !log.calls().is_empty());
            thread::yield_now();
        }
        let expected = (0..N)
            .filter(|n| (n % 3 != 0 && n % 7 == 0) || (n % 3 == 0 && n % 11 == 0))
            .count();
        assert_eq!(panics, expected);
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, N - N.div_ceil(3), N.div_ceil(3), 0));
        assert_eq!(log.once(), (me, progress));
    });
}

// ---------------------------------------------------------------------------
// User-chosen ids, duplicates, foreign requests.
// ---------------------------------------------------------------------------

/// Each member's user-chosen id is used again inside that member's own
/// result callback (free from the moment the callback starts), before the
/// polling thread has added the member's end to the batch: by a single
/// request for even ids, by a new batch of one for odd ones. None of
/// those is counted in the first batch, nor cancelled by it; each new
/// batch counts its own member; no "counted in a batch that had ended"
/// error is logged.
#[test]
fn user_ids_used_again_inside_the_members_callbacks_are_never_counted_twice() {
    common::logs::install();
    within("ids used again in callbacks", || {
        const N: u64 = 40;
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let again = common::hit_counters(N as usize);
        let small: Arc<Mutex<Vec<Batch>>> = Arc::default();
        let small_log = DoneLog::default();
        let requests: Vec<WorkRequest> = (0..N)
            .map(|id| {
                let (pool, again, small, small_log) = (
                    pool.clone(),
                    Arc::clone(&again),
                    Arc::clone(&small),
                    small_log.clone(),
                );
                WorkRequest::new(|n: u64| n, id)
                    .with_id(1_000 + id)
                    .on_result(move |rid, n| {
                        assert_eq!(thread::current().id(), me);
                        assert_eq!(rid.value(), 1_000 + n);
                        let again = Arc::clone(&again);
                        let request = WorkRequest::new(|n: u64| n, n)
                            .with_id(1_000 + n)
                            .on_result(move |_, n| {
                                again[n as usize].fetch_add(1, Ordering::SeqCst);
                            });
                        if n % 2 == 0 {
                            pool.put_request(request).expect("the id is free again");
                        } else {
                            let batch = pool.put_batch([request]).expect("the id is free again");
                            batch.on_done(small_log.callback());
                            small.lock().unwrap().push(batch);
                        }
                    })
                    .into()
            })
            .collect();
        let batch = pool.put_batch(requests).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        assert_eq!(pool.wait(), Ok(2 * N as usize));
        common::assert_each_once("a request with an id used again", &again);
        let progress = batch.progress();
        assert_eq!(counts(progress), (N as usize, N as usize, 0, 0));
        assert_eq!(log.once(), (me, progress));
        assert_eq!(batch.cancel(), 0);
        let small = small.lock().unwrap();
        assert_eq!(small.len(), N as usize / 2);
        for b in small.iter() {
            assert_eq!(counts(b.progress()), (1, 1, 0, 0));
        }
        let small_calls = small_log.calls();
        assert_eq!(small_calls.len(), N as usize / 2);
        assert!(small_calls
            .iter()
            .all(|(t, p)| *t == me && counts(*p) == (1, 1, 0, 0)));
        assert_eq!(
            common::logs::error_with(&["had ended"]),
            None,
            "an outcome was counted in a batch that had ended"
        );
        assert_eq!(common::logs::error_with(&["callpool bug"]), None);
    });
}

/// A batch whose user-chosen id clashes with a pending request, or
/// repeats inside the batch with a request of every other kind around
/// it, is refused whole: every request handed back in order, nothing
/// pending, no callback ever runs (not even when the handed-back requests
/// are dropped), and the pending request is unaffected. Once it has
/// ended, the same requests go in as a batch and run once each.
#[test]
fn duplicate_ids_hand_the_whole_batch_back_and_nothing_runs() {
    within("duplicate ids", || {
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let ran = counter();
        let ends = Ends::new(6, me);
        let (held_gate, latch) = gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()).with_id(5))
            .unwrap();
        held_gate.await_start();
        let batch_of = |ids: [Option<u64>; 6]| -> Vec<WorkRequest> {
            let mut requests = members(6, &ends, {
                let ran = Arc::clone(&ran);
                move |n| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(*n)
                }
            });
            for (i, id) in ids.into_iter().enumerate() {
                if let Some(id) = id {
                    let ends = Arc::clone(&ends);
                    let ran = Arc::clone(&ran);
                    requests[i] = WorkRequest::new(
                        move |n: usize| {
                            ran.fetch_add(1, Ordering::SeqCst);
                            n
                        },
                        i,
                    )
                    .with_id(id)
                    .on_result(move |_, n| {
                        ends.here();
                        ends.results[n].fetch_add(1, Ordering::SeqCst);
                    })
                    .on_error(move |_, _| panic!("{PANIC} no member is cancelled"))
                    .into();
                }
            }
            requests
        };
        for ids in [
            [None, None, Some(5), None, None, None],
            [Some(7), None, None, None, None, Some(7)],
            [None, Some(8), Some(9), Some(8), None, None],
        ] {
            let requests = batch_of(ids);
            let wanted: Vec<_> = requests.iter().map(WorkRequest::id).collect();
            match pool.put_batch(requests) {
                Err(BatchError::DuplicateId(back)) => {
                    assert_eq!(back.iter().map(WorkRequest::id).collect::<Vec<_>>(), wanted);
                    drop(back);
                }
                other => panic!("{ids:?}: {other:?}"),
            }
            assert_eq!(pool.pending(), 1, "{ids:?}");
            assert_eq!(pool.queued(), 0, "{ids:?}");
        }
        assert_eq!(ends.ended(), 0, "a refused member's callback ran");
        held_gate.open();
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
        // The clash is gone: the same ids go in now.
        let batch = pool
            .put_batch(batch_of([None, None, Some(5), None, None, None]))
            .unwrap();
        assert_eq!(pool.wait(), Ok(6));
        ends.assert_each_once();
        assert_eq!(counts(batch.progress()), (6, 6, 0, 0));
    });
}

/// A collector's request (handed back by a refused collector put) has no
/// place in a batch: the batch is refused whole as `NotBatchable`, in
/// order, nothing pending, nothing run.
#[test]
fn a_batch_holding_a_collectors_request_is_not_batchable() {
    let closed = ThreadPool::new(1);
    closed.close().unwrap();
    let foreign = {
        let mut collector = closed.collector::<u8>();
        match collector.put(|n: u8| n, 1) {
            Err(e) => e.into_request(),
            Ok(_) => panic!("a closed pool took a collector's put"),
        }
    };
    let pool = ThreadPool::new(1);
    let ran = counter();
    let r = Arc::clone(&ran);
    let mut requests = make_requests(
        move |n: u8| {
            r.fetch_add(1, Ordering::SeqCst);
            n
        },
        0..4,
        |_, _| {},
        |_, _| {},
    );
    requests.insert(2, foreign);
    let wanted: Vec<_> = requests.iter().map(WorkRequest::id).collect();
    match pool.put_batch(requests) {
        Err(BatchError::NotBatchable(back)) => {
            assert_eq!(back.iter().map(WorkRequest::id).collect::<Vec<_>>(), wanted)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((pool.pending(), pool.queued()), (0, 0));
    assert_eq!(pool.wait(), Ok(0));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------
// Members' ids far apart, and sizes.
// ---------------------------------------------------------------------------

/// Members whose automatic ids lie far apart (made at different times,
/// with thousands of requests made in between, some of them before the
/// first member), with user-chosen ones among them, interleaved with a
/// second batch whose ids fall in the gaps: `Batch::cancel` finds every
/// queued member of its own batch and none of the other's, and each
/// batch counts exactly its own.
#[test]
fn members_with_ids_far_apart_are_found_counted_and_cancelled() {
    within("far ids", || {
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        // Inputs 0..60 for the first batch, 60..120 for the second.
        let ends = Ends::new(120, me);
        let make = |range: std::ops::Range<usize>| -> Vec<WorkRequest> {
            let (ok, err) = (Arc::clone(&ends), Arc::clone(&ends));
            make_requests_with_input(
                |n: &usize| *n,
                range,
                move |_, n, _| {
                    ok.here();
                    ok.results[n].fetch_add(1, Ordering::SeqCst);
                },
                move |_, n, e| {
                    assert_eq!(e, TaskError::Cancelled);
                    err.error(n, &TaskError::Cancelled)
                },
            )
        };
        let user = |n: usize, id: u64| -> WorkRequest {
            let (ok, err) = (Arc::clone(&ends), Arc::clone(&ends));
            WorkRequest::new(|n: usize| n, n)
                .with_id(id)
                .on_result(move |_, n| {
                    ok.here();
                    ok.results[n].fetch_add(1, Ordering::SeqCst);
                })
                .on_error(move |_, _| err.error(n, &TaskError::Cancelled))
                .into()
        };
        // Below the first member's id.
        let below = make(0..10);
        let first = make(10..30);
        let gap_a = make(60..80);
        let burned: Vec<_> = make_requests(|n: u32| n, 0..10_000, |_, _| {}, |_, _| {});
        drop(burned);
        let far = make(30..50);
        let gap_b = make(80..110);
        let burned: Vec<_> = make_requests(|n: u32| n, 0..100_000, |_, _| {}, |_, _| {});
        drop(burned);
        let farther = make(50..55);
        let users: Vec<WorkRequest> = (55..60).map(|n| user(n, 1 << 40 | n as u64)).collect();
        let other_users: Vec<WorkRequest> = (110..120).map(|n| user(n, n as u64)).collect();
        // Shuffled: the bitmap starts at whichever automatic id comes first.
        let mut mine: Vec<WorkRequest> = Vec::new();
        let mut parts = [far, users, first, farther, below];
        let mut r = common::Rng(0x5eed);
        while parts.iter().any(|p| !p.is_empty()) {
            let p = r.below(parts.len() as u64) as usize;
            if !parts[p].is_empty() {
                let i = r.below(parts[p].len() as u64) as usize;
                mine.push(parts[p].remove(i));
            }
        }
        let theirs: Vec<WorkRequest> = gap_a.into_iter().chain(gap_b).chain(other_users).collect();
        // The worker held, so that every member is queued.
        let (held_gate, latch) = gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        held_gate.await_start();
        let mine = pool.put_batch(mine).unwrap();
        let theirs = pool.put_batch(theirs).unwrap();
        let (mine_log, theirs_log) = (DoneLog::default(), DoneLog::default());
        mine.on_done(mine_log.callback());
        theirs.on_done(theirs_log.callback());
        assert_eq!(mine.cancel(), 60, "every queued member of its own");
        assert_eq!(mine.cancel(), 0);
        held_gate.open();
        assert_eq!(pool.wait(), Ok(1 + 60 + 60));
        ends.assert_each_once();
        let (results, _, cancelled, _) = ends.totals();
        assert_eq!((results, cancelled), (60, 60));
        for n in 0..60 {
            assert_eq!(ends.cancelled[n].load(Ordering::SeqCst), 1, "member {n}");
        }
        assert_eq!(counts(mine.progress()), (60, 0, 0, 60));
        assert_eq!(counts(theirs.progress()), (60, 60, 0, 0));
        assert_eq!(mine_log.once(), (me, mine.progress()));
        assert_eq!(theirs_log.once(), (me, theirs.progress()));
    });
}

/// An empty batch is complete at once, cancels nothing, and runs one
/// batch-done callback at once; a batch of one ends exactly, its callback
/// on the polling thread.
#[test]
fn batches_of_zero_and_one() {
    within("zero and one", || {
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let empty = pool.put_batch(Vec::<WorkRequest>::new()).unwrap();
        assert_eq!(empty.cancel(), 0);
        assert_eq!(counts(empty.progress()), (0, 0, 0, 0));
        let log = DoneLog::default();
        empty.on_done(log.callback());
        assert_eq!(log.once(), (me, empty.progress()));
        empty.on_done(|_| panic!("{PANIC} a second batch-done callback ran"));
        assert_eq!(pool.pending(), 0);

        let ends = Ends::new(1, me);
        let one = pool.put_batch(members(1, &ends, |n| Ok(*n))).unwrap();
        let log = DoneLog::default();
        one.on_done(log.callback());
        assert_eq!(pool.wait(), Ok(1));
        ends.assert_each_once();
        assert_eq!(log.once(), (me, one.progress()));
        assert_eq!(counts(one.progress()), (1, 1, 0, 0));
        assert_eq!(counts(empty.progress()), (0, 0, 0, 0));
    });
}

/// A batch of 100,000 on two workers, watched from another thread while
/// it runs: the progress never goes back, never counts more than the
/// total, and ends exact, with one batch-done callback on the polling
/// thread.
#[test]
fn a_batch_of_a_hundred_thousand_counts_exactly_and_never_goes_back() {
    const N: usize = 100_000;
    let ended = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&ended);
    common::within_progress(
        "a hundred thousand",
        move || e.load(Ordering::SeqCst),
        move || {
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let batch = pool
                .put_batch(members(N, &ends, |n| {
                    if n % 10 == 0 {
                        Err(*n)
                    } else {
                        Ok(*n)
                    }
                }))
                .unwrap();
            let log = DoneLog::default();
            batch.on_done(log.callback());
            let stop = Arc::new(AtomicBool::new(false));
            let watcher = {
                let (batch, stop, ended) = (batch.clone(), Arc::clone(&stop), Arc::clone(&ended));
                thread::spawn(move || {
                    let mut last = Progress::default();
                    let mut looks = 0usize;
                    while !stop.load(Ordering::SeqCst) {
                        let now = batch.progress();
                        assert_eq!(now.total, N);
                        assert!(now.ended() <= N, "{now:?}");
                        assert!(
                            now.done >= last.done
                                && now.failed >= last.failed
                                && now.cancelled >= last.cancelled,
                            "went back: {last:?} then {now:?}"
                        );
                        ended.store(now.ended(), Ordering::SeqCst);
                        last = now;
                        looks += 1;
                        thread::yield_now();
                    }
                    looks
                })
            };
            assert_eq!(pool.wait(), Ok(N));
            stop.store(true, Ordering::SeqCst);
            assert!(watcher.join().unwrap() > 0);
            ends.assert_each_once();
            let progress = batch.progress();
            assert_eq!(counts(progress), (N, N - N / 10, N / 10, 0));
            ends.assert_matches(progress);
            assert_eq!(log.once(), (me, progress));
        },
    );
}

// ---------------------------------------------------------------------------
// Bounded queues.
// ---------------------------------------------------------------------------

/// A bounded queue with no worker: the members that fit are queued, those
/// a full queue refuses because no worker is left are cancelled (their
/// callbacks hear `Cancelled` on the next poll, here), and the batch is
/// returned; once a worker starts, the queued ones run. The batch counts
/// both exactly and ends once.
#[test]
fn a_full_queue_with_no_worker_cancels_the_rest_of_the_batch_and_it_still_ends() {
    within("no workers", || {
        const N: usize = 7;
        let pool = ThreadPool::builder()
            .workers(0)
            .queue_capacity(3)
            .build()
            .unwrap();
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let batch = pool.put_batch(members(N, &ends, |n| Ok(*n))).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        assert_eq!(pool.queued(), 3);
        assert_eq!(pool.pending(), N);
        assert_eq!(batch.progress().ended(), 0, "nothing handled yet");
        assert_eq!(pool.poll(), Ok(N - 3));
        assert_eq!(counts(batch.progress()), (N, 0, 0, N - 3));
        for n in 0..N {
            let wanted = usize::from(n >= 3);
            assert_eq!(
                ends.cancelled[n].load(Ordering::SeqCst),
                wanted,
                "member {n}"
            );
        }
        assert_eq!(
            pool.wait(),
            Err(WaitError::NoWorkersAvailable { pending: 3 })
        );
        pool.create_workers(1).unwrap();
        assert_eq!(pool.wait(), Ok(3));
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 3, 0, N - 3));
        ends.assert_matches(progress);
        assert_eq!(log.once(), (me, progress));
    });
}

/// `put_batch` on a bounded request queue and a result queue of one, with
/// one worker: the put must handle this handle's results while it waits
/// for room, and does so on this thread; with a batch already running on
/// the handle, both batches count exactly and each batch-done callback
/// runs once, here.
#[test]
fn a_blocked_batch_put_handles_results_here_and_counts_both_batches() {
    within("blocked put", || {
        const N: usize = 400;
        let pool = common::one_worker_bounded(2, 1);
        let me = thread::current().id();
        let (first_ends, second_ends) = (Ends::new(N, me), Ends::new(N, me));
        let first = pool.put_batch(members(N, &first_ends, |n| Ok(*n))).unwrap();
        let first_log = DoneLog::default();
        first.on_done(first_log.callback());
        let second = pool
            .put_batch(members(N, &second_ends, |n| {
                if n % 4 == 0 {
                    Err(*n)
                } else {
                    Ok(*n)
                }
            }))
            .unwrap();
        let second_log = DoneLog::default();
        second.on_done(second_log.callback());
        pool.wait().unwrap();
        first_ends.assert_each_once();
        second_ends.assert_each_once();
        assert_eq!(counts(first.progress()), (N, N, 0, 0));
        assert_eq!(counts(second.progress()), (N, N - N / 4, N / 4, 0));
        // The first batch ended inside the second's put, at the latest.
        assert_eq!(first_log.once(), (me, first.progress()));
        assert_eq!(second_log.once(), (me, second.progress()));
    });
}

/// A callback of a running batch panics while a second batch's put waits
/// for room (the wait runs the handle's callbacks): the panic leaves
/// `put_batch`, the second batch's members not yet queued are cancelled,
/// and every member of both batches still ends exactly once, the first
/// batch's count exact and its batch-done callback run once, here.
#[test]
fn a_panic_while_a_batch_put_waits_for_room_loses_no_member_of_either_batch() {
    quiet();
    within("panic in a blocked put", || {
        const N: usize = 60;
        let pool = common::one_worker_bounded(4, 1);
        let me = thread::current().id();
        // The worker held by another handle's request, so that the first
        // batch goes in whole before any of its members runs.
        let other = pool.new_handle();
        let (held_gate, latch) = gate();
        other
            .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        held_gate.await_start();
        let first_ends = Ends::new(3, me);
        let ok = Arc::clone(&first_ends);
        let err = Arc::clone(&first_ends);
        let first = pool
            .put_batch(make_fallible_requests_with_input(
                |n: &usize| Ok::<_, usize>(*n),
                0..3,
                move |_, n, _| {
                    ok.here();
                    ok.results[n].fetch_add(1, Ordering::SeqCst);
                    if n == 1 {
                        panic!("{PANIC} a callback run by a blocked put");
                    }
                },
                move |_, n, e| err.error(n, &e),
            ))
            .unwrap();
        let first_log = DoneLog::default();
        first.on_done(first_log.callback());
        held_gate.open();
        // Sixty members through a queue of four: the worker must send the
        // first batch's three results through a result queue of one, so
        // this put handles them, and member 1's callback panics in it.
        let second_ends = Ends::new(N, me);
        let put = panic::catch_unwind(AssertUnwindSafe(|| {
            pool.put_batch(members(N, &second_ends, |n| Ok(*n)))
        }));
        match put {
            Err(payload) => assert_eq!(
                message(&*payload),
                format!("{PANIC} a callback run by a blocked put")
            ),
            Ok(other) => panic!("the callback's panic did not come out: {other:?}"),
        }
        assert!(wait_through_panics(&pool).is_empty());
        assert_eq!(other.wait(), Ok(1));
        first_ends.assert_each_once();
        second_ends.assert_each_once();
        let (second_results, _, second_cancelled, _) = second_ends.totals();
        assert!(
            second_cancelled > 0,
            "nothing of the second batch was cancelled"
        );
        assert_eq!(second_results + second_cancelled, N);
        let progress = first.progress();
        assert_eq!(counts(progress), (3, 3, 0, 0));
        assert_eq!(first_log.once(), (me, progress));
        assert_eq!(pool.pending(), 0);
    });
}

// ---------------------------------------------------------------------------
// Shutdowns from other threads and handles.
// ---------------------------------------------------------------------------

/// A clone of the handle is shut down with `shutdown_now` on another
/// thread while a member runs and the rest are queued, and this thread
/// waits: the queued members come back to that thread (counted
/// cancelled there, their callbacks never run), the running one ends
/// normally here, and the batch-done callback runs once, here, when that
/// last member is handled.
#[test]
fn shutdown_now_of_a_clone_hands_the_queued_members_back_and_the_batch_ends_here() {
    within("shutdown_now of a clone", || {
        const N: usize = 100;
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let batch = pool
            .put_batch(members(N, &ends, held(&started, &gate)))
            .unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        let shutter = {
            let (clone, started, gate) = (pool.clone(), Arc::clone(&started), Arc::clone(&gate));
            thread::spawn(move || {
                until(|| started.load(Ordering::SeqCst) == 1);
                let back = clone.shutdown_now();
                gate.open();
                back
            })
        };
        assert_eq!(pool.wait(), Ok(1));
        let back = shutter.join().unwrap();
        assert_eq!(back.len(), N - 1);
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 1, 0, N - 1));
        assert_eq!(log.once(), (me, progress));
        assert_eq!(ends.totals(), (1, 0, 0, 0), "handed back: no callback");
        assert_eq!(ends.results[0].load(Ordering::SeqCst), 1);
        assert_eq!(batch.cancel(), 0);
        drop(back);
        assert_eq!(ends.totals(), (1, 0, 0, 0), "dropped: no callback either");
    });
}

/// The same race left open: the gate opens as the clone is shut down, so
/// workers may start more members before the queue is swept. Every
/// member ends once, run (its callback here) or handed back (counted
/// cancelled, no callback); the batch-done callback runs once, on this
/// thread or on the thread that shut down (if the hand-back completed
/// the batch), never elsewhere.
#[test]
fn shutdown_now_of_a_clone_racing_the_workers_ends_every_member_once() {
    for round in 0..100 {
        within("shutdown_now racing", move || {
            const N: usize = 300;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let started = counter();
            let batch = pool
                .put_batch(members(N, &ends, held(&started, &gate)))
                .unwrap();
            let log = DoneLog::default();
            batch.on_done(log.callback());
            let shutter = {
                let (clone, gate) = (pool.clone(), Arc::clone(&gate));
                thread::spawn(move || {
                    gate.open();
                    let back = clone.shutdown_now();
                    (thread::current().id(), back)
                })
            };
            let handled = pool.wait().unwrap();
            let (shutter_id, back) = shutter.join().unwrap();
            let (results, failed, cancelled, expired) = ends.totals();
            assert_eq!((failed, cancelled, expired), (0, 0, 0), "round {round}");
            assert_eq!(handled, results, "round {round}");
            assert_eq!(results + back.len(), N, "round {round}");
            let progress = batch.progress();
            assert_eq!(
                counts(progress),
                (N, results, 0, back.len()),
                "round {round}"
            );
            let (thread, done) = log.once();
            assert_eq!(done, progress, "round {round}");
            assert!(thread == me || thread == shutter_id, "round {round}");
            let mut back_inputs = HashSet::new();
            for r in &back {
                assert!(
                    back_inputs.insert(r.id()),
                    "round {round}: handed back twice"
                );
            }
            for n in 0..N {
                assert!(
                    ends.results[n].load(Ordering::SeqCst) <= 1,
                    "round {round}: member {n}"
                );
            }
        });
    }
}

/// Another handle of the pool stops it with `shutdown_now` while this
/// handle's batch is half-run: the queued members are cancelled to their
/// error callbacks, which run here as this thread waits; the running ones
/// end normally; the batch ends once, here.
#[test]
fn shutdown_now_of_another_handle_cancels_the_queued_members_to_their_callbacks() {
    within("shutdown_now of another handle", || {
        const N: usize = 200;
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let batch = pool
            .put_batch(members(N, &ends, held(&started, &gate)))
            .unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        until(|| started.load(Ordering::SeqCst) == 2);
        let other = pool.new_handle();
        let stopper = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || {
                let back = other.shutdown_now();
                gate.open();
                back.len()
            })
        };
        assert_eq!(pool.wait(), Ok(N));
        assert_eq!(stopper.join().unwrap(), 0, "nothing of the other handle's");
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 2, 0, N - 2));
        ends.assert_matches(progress);
        assert_eq!(log.once(), (me, progress));
        assert!(matches!(
            pool.put_batch(make_requests(|n: u8| n, 0..2, |_, _| {}, |_, _| {})),
            Err(BatchError::ShutDown(back)) if back.len() == 2
        ));
    });
}

/// Another handle shuts the pool down gracefully on another thread while
/// this handle's batch runs and this thread polls: the queue drains, so
/// every member runs, once, and the batch ends once, here.
#[test]
fn a_graceful_shutdown_of_another_handle_lets_the_whole_batch_run() {
    within("graceful shutdown of another handle", || {
        const N: usize = 2_000;
        let pool = ThreadPool::new(2);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let batch = pool.put_batch(members(N, &ends, |n| Ok(*n))).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        let other = pool.new_handle();
        let stopper = thread::spawn(move || other.shutdown());
        assert_eq!(pool.wait(), Ok(N));
        assert!(stopper.join().unwrap().is_ok());
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, N, 0, 0));
        assert_eq!(log.once(), (me, progress));
    });
}

// ---------------------------------------------------------------------------
// Workers dismissed, retired, started late.
// ---------------------------------------------------------------------------

/// A batch put on a pool with no worker waits whole; every worker is then
/// dismissed mid-batch (two busy ones finish their member first), `wait`
/// says no worker is left with the rest still queued, and new workers
/// finish it: every member once, the counts exact at each step, the
/// batch-done callback once, here.
#[test]
fn dismissing_every_worker_mid_batch_and_starting_new_ones_loses_nothing() {
    within("dismissed mid-batch", || {
        const N: usize = 1_000;
        let pool = ThreadPool::new(0);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let batch = pool
            .put_batch(members(N, &ends, held(&started, &gate)))
            .unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        assert_eq!(
            pool.wait(),
            Err(WaitError::NoWorkersAvailable { pending: N })
        );
        pool.create_workers(2).unwrap();
        until(|| started.load(Ordering::SeqCst) == 2);
        assert_eq!(pool.dismiss_workers(2), 2);
        gate.open();
        pool.join_all_dismissed_workers();
        assert_eq!(
            pool.wait(),
            Err(WaitError::NoWorkersAvailable { pending: N - 2 })
        );
        assert_eq!(counts(batch.progress()), (N, 2, 0, 0));
        assert!(log.calls().is_empty());
        pool.create_workers(3).unwrap();
        assert_eq!(pool.wait(), Ok(N - 2));
        ends.assert_each_once();
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, N, 0, 0));
        assert_eq!(log.once(), (me, progress));
    });
}

/// An autoscaling pool whose idle workers retire between and during
/// batches (a short keep-alive): batch after batch, some put while no
/// worker is left, each counts exactly and ends once, here.
#[test]
fn batches_on_an_autoscaling_pool_whose_workers_retire_count_exactly() {
    within("autoscaling", || {
        let pool = ThreadPool::builder()
            .workers(0)
            .min_workers(0)
            .max_workers(3)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        let me = thread::current().id();
        for round in 0..30 {
            let n = 1 + round * 37 % 500;
            let ends = Ends::new(n, me);
            let batch = pool
                .put_batch(members(n, &ends, move |i| {
                    // Now and then a pause, long enough for idle workers
                    // to retire meanwhile.
                    if i % 97 == 0 {
                        thread::sleep(Duration::from_millis(3));
                    }
                    Ok(*i)
                }))
                .unwrap();
            let log = DoneLog::default();
            batch.on_done(log.callback());
            assert_eq!(pool.wait(), Ok(n), "round {round}");
            ends.assert_each_once();
            let progress = batch.progress();
            assert_eq!(counts(progress), (n, n, 0, 0), "round {round}");
            assert_eq!(log.once(), (me, progress), "round {round}");
            if round % 3 == 0 {
                // Idle long enough for every worker to retire.
                let deadline = Instant::now() + common::HANG;
                while pool.threads() > 0 && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(2));
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------
// Children put through a member's Context.
// ---------------------------------------------------------------------------

/// A member puts children through its `Context`, then holds its worker:
/// `Batch::cancel` cancels exactly the queued members, never a child; the
/// children run; the batch's total and counts never include them.
#[test]
fn batch_cancel_reaches_the_members_and_never_their_children() {
    within("children and cancel", || {
        const N: usize = 20;
        const CHILDREN: usize = 5;
        let pool = ThreadPool::new(1);
        let me = thread::current().id();
        let (held_gate, latch) = gate();
        let latch = Mutex::new(Some(latch));
        let children_ran = counter();
        let children_heard = counter();
        let cancelled = counter();
        let (ran, heard) = (Arc::clone(&children_ran), Arc::clone(&children_heard));
        let first = WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                for i in 0..CHILDREN {
                    let (ran, heard) = (Arc::clone(&ran), Arc::clone(&heard));
                    cx.put(
                        WorkRequest::new(
                            move |i: usize| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                i
                            },
                            i,
                        )
                        .on_result(move |_, _| {
                            assert_eq!(thread::current().id(), me);
                            heard.fetch_add(1, Ordering::SeqCst);
                        }),
                    )
                    .unwrap();
                }
                if let Some(latch) = latch.lock().unwrap().take() {
                    latch.hold();
                }
            },
            (),
        );
        let c = Arc::clone(&cancelled);
        let rest = make_requests(
            |n: usize| n,
            1..N,
            |_, _| {},
            move |_, e| {
                assert_eq!(e, TaskError::Cancelled);
                assert_eq!(thread::current().id(), me);
                c.fetch_add(1, Ordering::SeqCst);
            },
        );
        let batch = pool
            .put_batch(std::iter::once(first.into()).chain(rest))
            .unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        held_gate.await_start();
        assert_eq!(batch.cancel(), N - 1, "the queued members, and no child");
        assert_eq!(pool.pending(), N + CHILDREN);
        held_gate.open();
        assert_eq!(pool.wait(), Ok(N + CHILDREN));
        assert_eq!(children_ran.load(Ordering::SeqCst), CHILDREN);
        assert_eq!(children_heard.load(Ordering::SeqCst), CHILDREN);
        assert_eq!(cancelled.load(Ordering::SeqCst), N - 1);
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 1, 0, N - 1));
        assert_eq!(log.once(), (me, progress));
    });
}

// ---------------------------------------------------------------------------
// Handles dropped early.
// ---------------------------------------------------------------------------

/// Every `Batch` handle dropped before the batch ends: the batch still
/// ends, and the batch-done callback set before still runs, once, here.
#[test]
fn a_batch_whose_handles_are_all_dropped_still_runs_its_batch_done_callback() {
    within("Batch dropped", || {
        const N: usize = 500;
        let pool = ThreadPool::new(0);
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let batch = pool.put_batch(members(N, &ends, |n| Ok(*n))).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        let clone = batch.clone();
        drop(batch);
        drop(clone);
        pool.create_workers(2).unwrap();
        assert_eq!(pool.wait(), Ok(N));
        ends.assert_each_once();
        let (thread, progress) = log.once();
        assert_eq!(thread, me);
        assert_eq!(counts(progress), (N, N, 0, 0));
    });
}

/// The pool's only handle is dropped while its batch runs: nobody is left
/// to poll, so the batch-done callback never runs, and it is dropped
/// (its captures freed) exactly once when the last `Batch` goes, on no
/// panic; meanwhile the `Batch` still answers (`progress`, `cancel`,
/// `on_done`) without blocking.
#[test]
fn the_pools_handle_dropped_mid_batch_frees_the_batch_done_callback_once() {
    within("handle dropped", || {
        const N: usize = 50;
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let ran_any = counter();
        let r = Arc::clone(&ran_any);
        let g = Arc::clone(&gate);
        let s = Arc::clone(&started);
        let batch = pool
            .put_batch(make_requests(
                move |n: usize| {
                    s.fetch_add(1, Ordering::SeqCst);
                    g.pass();
                    n
                },
                0..N,
                move |_, _| {
                    r.fetch_add(1, Ordering::SeqCst);
                },
                |_, _| {},
            ))
            .unwrap();
        let dropped = counter();
        let ran = Arc::new(AtomicBool::new(false));
        let (token, flag) = (Dropped(Arc::clone(&dropped)), Arc::clone(&ran));
        batch.on_done(move |_| {
            let _token = token;
            flag.store(true, Ordering::SeqCst);
        });
        until(|| started.load(Ordering::SeqCst) == 1);
        drop(pool);
        gate.open();
        assert_eq!(batch.cancel(), 0, "the pool swept its queue as it went");
        assert_eq!(counts(batch.progress()), (N, 0, 0, 0));
        // A second callback replaces the first, which is dropped now.
        let (token, flag) = (Dropped(Arc::clone(&dropped)), Arc::clone(&ran));
        batch.on_done(move |_| {
            let _token = token;
            flag.store(true, Ordering::SeqCst);
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        drop(batch);
        // The worker may still hold the handle's inbox for a moment.
        until(|| dropped.load(Ordering::SeqCst) == 2);
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(ran_any.load(Ordering::SeqCst), 0);
    });
}

/// Smoke check that the helpers here catch what they claim to: a member
/// ended twice, a callback off the polling thread, and a progress that
/// disagrees with the callbacks each fail.
#[test]
fn the_end_counters_catch_double_ends_and_wrong_threads() {
    quiet();
    let me = thread::current().id();
    let ends = Ends::new(2, me);
    ends.results[0].fetch_add(1, Ordering::SeqCst);
    ends.cancelled[0].fetch_add(1, Ordering::SeqCst);
    ends.results[1].fetch_add(1, Ordering::SeqCst);
    assert!(panic::catch_unwind(AssertUnwindSafe(|| ends.assert_each_once())).is_err());
    let ends = Ends::new(1, me);
    let e = Arc::clone(&ends);
    thread::spawn(move || e.error(0, &TaskError::Cancelled))
        .join()
        .unwrap();
    assert!(panic::catch_unwind(AssertUnwindSafe(|| ends.assert_each_once())).is_err());
    let off = Progress::default();
    assert!(panic::catch_unwind(AssertUnwindSafe(|| ends.assert_matches(off))).is_err());
}

/// One thread polls. A run of results holds two members of a batch and
/// then a result outside the batch (a plain request's, or an item of a
/// stream outside it), whose callback polls the handle until the batch's
/// last member has been handled: once that nested `poll` has returned,
/// the batch's progress is exact and complete, and its batch-done
/// callback has run, right after the last member's callback. (The two
/// members counted by the outer run were added to the batch only once the
/// outsider's callback had returned: the nested poll saw the batch one
/// third done with nothing pending, and a loop polling until the batch was
/// complete would have polled for ever.)
#[test]
fn a_nested_poll_in_a_non_members_callback_sees_the_batch_complete() {
    for streaming in [false, true] {
        within("nested poll", move || nested_poll_round(streaming));
    }
}

fn nested_poll_round(streaming: bool) {
    let pool = ThreadPool::new(2);
    let me = thread::current().id();
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let slot: Arc<OnceLock<Batch>> = Arc::new(OnceLock::new());
    let log = DoneLog::default();
    let seen = Arc::new(Mutex::new(None));
    // The last member holds the second worker until the outsider's
    // callback lets it go.
    let (last_started_tx, last_started) = mpsc::channel::<()>();
    let (last_go_tx, last_go) = mpsc::channel::<()>();
    let (last_started_tx, last_go) = (Mutex::new(last_started_tx), Mutex::new(last_go));
    // The outsider holds the first worker until the last member has
    // started, so that its result comes after the first two members'.
    let (outsider_go_tx, outsider_go) = mpsc::channel::<()>();
    let callback = {
        let (pool, slot, seen, order, log) = (
            pool.clone(),
            Arc::clone(&slot),
            Arc::clone(&seen),
            Arc::clone(&order),
            log.clone(),
        );
        let last_go_tx = Mutex::new(Some(last_go_tx));
        move || {
            order.lock().unwrap().push("outsider".to_string());
            if let Some(go) = last_go_tx.lock().unwrap().take() {
                go.send(()).unwrap();
            }
            // Polls until the last member's callback has run.
            while !order.lock().unwrap().iter().any(|o| o == "member 2") {
                pool.poll().unwrap();
                thread::yield_now();
            }
            *seen.lock().unwrap() = Some((
                slot.get().unwrap().progress(),
                log.calls().len(),
                pool.pending(),
            ));
        }
    };
    if streaming {
        pool.put_request(
            WorkRequest::streaming(
                move |_: (), out: &callpool::Emitter<'_, ()>| {
                    outsider_go.recv().unwrap();
                    out.emit(())
                },
                (),
            )
            .on_result(move |_, ()| callback()),
        )
        .unwrap();
    } else {
        pool.put_request(
            WorkRequest::new(move |_: ()| outsider_go.recv().unwrap(), ())
                .on_result(move |_, ()| callback()),
        )
        .unwrap();
    }
    let o = Arc::clone(&order);
    let batch = pool
        .put_batch(make_requests(
            move |n: u32| {
                if n == 2 {
                    last_started_tx.lock().unwrap().send(()).unwrap();
                    last_go.lock().unwrap().recv().unwrap();
                }
                n
            },
            0..3u32,
            move |_, n| o.lock().unwrap().push(format!("member {n}")),
            |_, _| {},
        ))
        .unwrap();
    assert!(slot.set(batch.clone()).is_ok());
    let (o, l) = (Arc::clone(&order), log.callback());
    batch.on_done(move |p| {
        o.lock().unwrap().push("done".to_string());
        l(p)
    });
    // Taken by the first worker once the outsider has returned (the
    // second holds the last member): the outsider's result, or item, has
    // been sent by then, after the first two members'.
    let (after_tx, after) = mpsc::channel::<()>();
    pool.put_request(WorkRequest::new(
        move |_: ()| after_tx.send(()).unwrap(),
        (),
    ))
    .unwrap();
    last_started.recv_timeout(common::HANG).unwrap();
    outsider_go_tx.send(()).unwrap();
    after.recv_timeout(common::HANG).unwrap();
    // One run: the two members, then the outsider.
    pool.wait().unwrap();
    let (seen, done_calls, pending) = seen
        .lock()
        .unwrap()
        .take()
        .expect("the outsider's callback ran");
    let order = order.lock().unwrap().clone();
    assert_eq!(
        counts(seen),
        (3, 3, 0, 0),
        "streaming {streaming}: the progress once the nested poll handled the last member \
         ({pending} pending): {order:?}"
    );
    assert_eq!(done_calls, 1, "streaming {streaming}: on_done had run");
    assert_eq!(log.once().0, me);
    assert_eq!(
        order[..5],
        ["member 0", "member 1", "outsider", "member 2", "done"],
        "streaming {streaming}"
    );
}

// ---------------------------------------------------------------------------
// More shutdowns, streams, the global pool.
// ---------------------------------------------------------------------------

/// A bounded queue, its worker held by another handle, and a batch put
/// blocked for room after two members went in, when the pool shuts down
/// on another thread: through another handle (the two queued members are
/// cancelled to their callbacks) or through a clone of this one (they are
/// handed back to that thread, counted cancelled). Either way `put_batch`
/// returns the batch, the members it had not queued are cancelled to
/// their callbacks, every member ends once, and the batch ends once, here.
#[test]
fn a_shutdown_under_a_blocked_batch_put_cancels_the_rest_and_the_batch_ends() {
    for through_clone in [false, true] {
        within("a shutdown under a blocked put", move || {
            const N: usize = 10;
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(2)
                .build()
                .unwrap();
            let me = thread::current().id();
            let other = pool.new_handle();
            let (held_gate, latch) = gate();
            other
                .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .unwrap();
            held_gate.await_start();
            let shutter = {
                let (pool, other) = (pool.clone(), other.clone());
                thread::spawn(move || {
                    // Both members that fit are queued, the third blocks.
                    until(|| pool.queued() == 2 && pool.pending() == N);
                    // Give the put a moment to block for room: whether it
                    // has or not, the outcome must be the same.
                    thread::sleep(Duration::from_millis(5));
                    if through_clone {
                        drop(other);
                        pool.shutdown_now().len()
                    } else {
                        drop(pool);
                        other.shutdown_now().len()
                    }
                })
            };
            let ends = Ends::new(N, me);
            let batch = pool.put_batch(members(N, &ends, |n| Ok(*n))).unwrap();
            let log = DoneLog::default();
            batch.on_done(log.callback());
            let back = shutter.join().unwrap();
            held_gate.open();
            let handled = pool.wait().unwrap();
            let (results, failed, cancelled, expired) = ends.totals();
            assert_eq!((results, failed, expired), (0, 0, 0));
            if through_clone {
                assert_eq!((back, cancelled, handled), (2, N - 2, N - 2));
                for n in 0..2 {
                    assert_eq!(ends.cancelled[n].load(Ordering::SeqCst), 0, "handed back");
                }
            } else {
                assert_eq!((back, cancelled, handled), (0, N, N));
                ends.assert_each_once();
            }
            let progress = batch.progress();
            assert_eq!(
                counts(progress),
                (N, 0, 0, N),
                "through a clone: {through_clone}"
            );
            assert_eq!(log.once(), (me, progress));
            assert_eq!(pool.pending(), 0);
        });
    }
}

/// `shutdown_now` on the only handle while a member runs: the queued
/// members come back, counted cancelled; the running member's outcome is
/// discarded with the handle's results, so the batch never completes (as
/// documented) and its batch-done callback never runs. That callback is
/// not leaked: once the `Batch` and the running member are gone, it is
/// dropped, exactly once, and its captures' panicking `Drop` is contained.
#[test]
fn a_batch_that_can_never_complete_drops_its_batch_done_callback_once() {
    quiet();
    within("never complete", || {
        const N: usize = 8;
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let started = counter();
        let me = thread::current().id();
        let ends = Ends::new(N, me);
        let batch = pool
            .put_batch(members(N, &ends, held(&started, &gate)))
            .unwrap();
        let (ran, drops) = (Arc::new(AtomicBool::new(false)), counter());
        let (flag, bomb) = (Arc::clone(&ran), PanicsOnDrop(Arc::clone(&drops), PANIC));
        batch.on_done(move |_| {
            let _bomb = bomb;
            flag.store(true, Ordering::SeqCst);
        });
        until(|| started.load(Ordering::SeqCst) == 1);
        let back = pool.shutdown_now();
        assert_eq!(back.len(), N - 1);
        let progress = batch.progress();
        assert_eq!(counts(progress), (N, 0, 0, N - 1));
        assert!(!ran.load(Ordering::SeqCst));
        drop(back);
        gate.open();
        drop(batch);
        until(|| drops.load(Ordering::SeqCst) == 1);
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(ends.ended(), 0, "no member's callback ran");
    });
}

/// A batch of streaming members, each ending another way: all items
/// delivered then success (two of them), a failure after some items, a
/// panic after some items whose item callback panics too, and one past
/// its deadline. Items count nothing in the batch; each member's end
/// counts once, by how it ended; every callback runs here.
#[test]
fn streaming_members_count_once_each_by_how_they_ended() {
    quiet();
    within("streaming members", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .quiet_panics(true)
            .build()
            .unwrap();
        let me = thread::current().id();
        let items = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let dones = Arc::new(Mutex::new(Vec::new()));
        let stream = |kind: u8| -> WorkRequest {
            let (items, errors, dones) =
                (Arc::clone(&items), Arc::clone(&errors), Arc::clone(&dones));
            let request = WorkRequest::streaming(
                move |kind: u8, out: &callpool::Emitter<'_, (u8, u8)>| {
                    for i in 0..3 {
                        out.emit((kind, i)).map_err(|_| "closed")?;
                    }
                    match kind {
                        2 => Err("failed after three items"),
                        3 => panic!("{PANIC} a stream panicked after three items"),
                        _ => Ok(()),
                    }
                },
                kind,
            )
            .on_result(move |_, (kind, i)| {
                assert_eq!(thread::current().id(), me);
                items.lock().unwrap().push((kind, i));
                if kind == 3 && i == 1 {
                    panic!("{PANIC} an item callback");
                }
            })
            .on_error(move |_, e| {
                assert_eq!(thread::current().id(), me);
                errors.lock().unwrap().push((kind, e));
            })
            .on_done(move |_| {
                assert_eq!(thread::current().id(), me);
                dones.lock().unwrap().push(kind);
            });
            if kind == 4 {
                request.deadline(Instant::now()).into()
            } else {
                request.into()
            }
        };
        let batch = pool.put_batch((0..5).map(stream)).unwrap();
        let log = DoneLog::default();
        batch.on_done(log.callback());
        let panics = wait_through_panics(&pool);
        assert_eq!(panics, [format!("{PANIC} an item callback")]);
        let mut items = items.lock().unwrap().clone();
        items.sort_unstable();
        let all: Vec<(u8, u8)> = (0..4).flat_map(|k| (0..3).map(move |i| (k, i))).collect();
        assert_eq!(items, all);
        let mut errors = errors.lock().unwrap().clone();
        errors.sort_by_key(|(kind, _)| *kind);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(
            errors[0],
            (2, TaskError::Failed("failed after three items"))
        );
        assert!(
            matches!(&errors[1], (3, TaskError::Panicked(m)) if m.contains("a stream panicked"))
        );
        assert_eq!(errors[2], (4, TaskError::Expired));
        let mut dones = dones.lock().unwrap().clone();
        dones.sort_unstable();
        assert_eq!(dones, [0, 1]);
        let progress = batch.progress();
        assert_eq!(counts(progress), (5, 2, 2, 1));
        assert_eq!(log.once(), (me, progress));
    });
}

/// The environment variable that marks a child process (`run_in_child`).
const CHILD_ENV: &str = "BATCHES_ADVERSARIAL_CHILD";

/// On the global pool, `shutdown_now` on a handle hands back its queued
/// members while one still runs, and they are put again, on the same
/// handle, as a second batch whose ids are the first batch's. Each batch
/// counts only its own: the second completes alone (the first still
/// waits for its running member), `Batch::cancel` on the first leaves
/// the second's members alone, and each batch-done callback runs once,
/// on the polling thread.
#[test]
fn members_handed_back_by_the_global_pool_and_put_again_as_a_new_batch() {
    const NAME: &str = "members_handed_back_by_the_global_pool_and_put_again_as_a_new_batch";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(ThreadPool::builder().workers(2)).unwrap();
    let global = callpool::global();
    let me = thread::current().id();
    const N: usize = 6;
    let ends = Ends::new(N, me);
    // Worker 1 holds member 0; worker 2 is held by another handle's
    // request, so the other members stay queued.
    let gate0 = Arc::new(Gate::default());
    let _open0 = OpenOnDrop(Arc::clone(&gate0));
    let started = counter();
    let (held_w, latch_w) = gate();
    let other = global.new_handle();
    other.execute(move || latch_w.hold()).unwrap();
    held_w.await_start();
    let (s, g) = (Arc::clone(&started), Arc::clone(&gate0));
    let first = global
        .put_batch(members(N, &ends, move |n| {
            if *n == 0 {
                s.fetch_add(1, Ordering::SeqCst);
                g.pass();
            }
            Ok(*n)
        }))
        .unwrap();
    let first_log = DoneLog::default();
    first.on_done(first_log.callback());
    until(|| started.load(Ordering::SeqCst) == 1);
    let back = global.clone().shutdown_now();
    assert_eq!(back.len(), N - 1);
    assert_eq!(counts(first.progress()), (N, 0, 0, N - 1));
    let second = global.put_batch(back).unwrap();
    let second_log = DoneLog::default();
    second.on_done(second_log.callback());
    assert_eq!(
        first.cancel(),
        0,
        "the requests put again are not the first batch's"
    );
    held_w.open();
    while second_log.calls().is_empty() {
        global.poll_timeout(common::HANG).unwrap();
    }
    assert_eq!(counts(second.progress()), (N - 1, N - 1, 0, 0));
    assert_eq!(second_log.once(), (me, second.progress()));
    assert!(!first.progress().is_complete(), "{:?}", first.progress());
    gate0.open();
    global.wait().unwrap();
    ends.assert_each_once();
    assert_eq!(counts(first.progress()), (N, 1, 0, N - 1));
    assert_eq!(first_log.once(), (me, first.progress()));
    assert_eq!(second.cancel(), 0);
    other.wait().unwrap();
    common::child_ran(NAME);
}

/// A batch of many chunks is being put while a clone of the handle is
/// shut down with `shutdown_now` on another thread: either the pool
/// refused the first chunk (every request handed back to the putter,
/// none to the other thread, nothing run) or the batch is returned, and
/// then every member ends exactly once: run (its callback here), handed
/// back to the other thread (counted cancelled, no callback), or
/// cancelled to its callback (here); the counts match, and the batch-done
/// callback runs once.
#[test]
fn a_batch_put_racing_shutdown_now_of_a_clone_ends_every_member_once() {
    let (mut refused, mut returned) = (0, 0);
    for round in 0..60 {
        let was_returned = within("a put racing shutdown_now", move || {
            const N: usize = 5_000;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let ends = Ends::new(N, me);
            let requests = members(N, &ends, |n| Ok(*n));
            let barrier = Arc::new(Barrier::new(2));
            let shutter = {
                let (clone, barrier) = (pool.clone(), Arc::clone(&barrier));
                thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..(round % 7) * 50 {
                        std::hint::spin_loop();
                    }
                    let back = clone.shutdown_now();
                    (thread::current().id(), back)
                })
            };
            barrier.wait();
            let put = pool.put_batch(requests);
            let batch = match put {
                Err(BatchError::ShutDown(back)) => {
                    let (_, theirs) = shutter.join().unwrap();
                    assert_eq!((back.len(), theirs.len()), (N, 0), "round {round}");
                    assert_eq!(pool.pending(), 0, "round {round}");
                    drop(back);
                    assert_eq!(ends.ended(), 0, "round {round}");
                    return false;
                }
                Err(e) => panic!("round {round}: {e:?}"),
                Ok(batch) => batch,
            };
            let log = DoneLog::default();
            batch.on_done(log.callback());
            pool.wait().unwrap();
            let (shutter_id, back) = shutter.join().unwrap();
            let (results, failed, cancelled, expired) = ends.totals();
            assert_eq!((failed, expired), (0, 0), "round {round}");
            assert_eq!(results + cancelled + back.len(), N, "round {round}");
            for n in 0..N {
                let heard = ends.results[n].load(Ordering::SeqCst)
                    + ends.cancelled[n].load(Ordering::SeqCst);
                assert!(heard <= 1, "round {round}: member {n} heard {heard} times");
            }
            assert_eq!(ends.elsewhere.load(Ordering::SeqCst), 0, "round {round}");
            let progress = batch.progress();
            assert_eq!(
                counts(progress),
                (N, results, 0, cancelled + back.len()),
                "round {round}"
            );
            let (thread, done) = log.once();
            assert_eq!(done, progress, "round {round}");
            assert!(thread == me || thread == shutter_id, "round {round}");
            assert_eq!(pool.pending(), 0, "round {round}");
            true
        });
        if was_returned {
            returned += 1;
        } else {
            refused += 1;
        }
    }
    assert_eq!(refused + returned, 60);
}

/// Two handles of one pool use the same user-chosen ids: one handle's
/// `Batch::cancel` cancels exactly its own members, never the other
/// handle's requests with the same ids, and each side ends exactly.
#[test]
fn batch_cancel_leaves_another_handles_requests_with_the_same_ids_alone() {
    within("same ids on two handles", || {
        const N: u64 = 30;
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let (held_gate, latch) = gate();
        other
            .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        held_gate.await_start();
        let (mine_cancelled, theirs_ran) = (counter(), counter());
        let mine: Vec<WorkRequest> = (0..N)
            .map(|i| {
                let c = Arc::clone(&mine_cancelled);
                WorkRequest::new(|i: u64| i, i)
                    .with_id(i)
                    .on_error(move |_, e| {
                        assert_eq!(e, TaskError::Cancelled);
                        c.fetch_add(1, Ordering::SeqCst);
                    })
                    .into()
            })
            .collect();
        for i in 0..N {
            let r = Arc::clone(&theirs_ran);
            other
                .put_request(
                    WorkRequest::new(|i: u64| i, i)
                        .with_id(i)
                        .on_result(move |_, _| {
                            r.fetch_add(1, Ordering::SeqCst);
                        }),
                )
                .unwrap();
        }
        let batch = pool.put_batch(mine).unwrap();
        assert_eq!(batch.cancel(), N as usize);
        held_gate.open();
        assert_eq!(pool.wait(), Ok(N as usize));
        assert_eq!(other.wait(), Ok(N as usize + 1));
        assert_eq!(mine_cancelled.load(Ordering::SeqCst), N as usize);
        assert_eq!(theirs_ran.load(Ordering::SeqCst), N as usize);
        assert_eq!(counts(batch.progress()), (N as usize, 0, 0, N as usize));
    });
}

/// A batch-done callback shuts the pool down through a clone of the
/// handle while a second batch has two members running and eight queued:
/// with `shutdown_now` the eight come back to the callback, counted
/// cancelled in their batch; with `shutdown` they run as the pool drains
/// (their callbacks run inside it, here). Either way nothing deadlocks,
/// the second batch ends exactly, and each batch-done callback runs
/// once, on this thread.
#[test]
fn a_batch_done_callback_that_shuts_the_pool_down_ends_the_other_batch_exactly() {
    for graceful in [false, true] {
        within("on_done shuts the pool down", move || {
            const N: usize = 10;
            let pool = ThreadPool::new(2);
            let me = thread::current().id();
            let (x_gate, y_gate) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
            let (_open_x, _open_y) = (
                OpenOnDrop(Arc::clone(&x_gate)),
                OpenOnDrop(Arc::clone(&y_gate)),
            );
            let (x_started, y_started) = (counter(), counter());
            let (x_ends, y_ends) = (Ends::new(1, me), Ends::new(N, me));
            let x = pool
                .put_batch(members(1, &x_ends, held(&x_started, &x_gate)))
                .unwrap();
            until(|| x_started.load(Ordering::SeqCst) == 1);
            let y = pool
                .put_batch(members(N, &y_ends, held(&y_started, &y_gate)))
                .unwrap();
            let y_log = DoneLog::default();
            y.on_done(y_log.callback());
            let x_calls = Arc::new(Mutex::new(Vec::new()));
            {
                let (clone, y, y_gate, calls) = (
                    pool.clone(),
                    y.clone(),
                    Arc::clone(&y_gate),
                    Arc::clone(&x_calls),
                );
                x.on_done(move |p| {
                    let shut = if graceful {
                        y_gate.open();
                        clone.shutdown().map(|()| 0).map_err(|e| format!("{e:?}"))
                    } else {
                        let back = clone.shutdown_now();
                        y_gate.open();
                        Ok(back.len())
                    };
                    calls
                        .lock()
                        .unwrap()
                        .push((thread::current().id(), p, shut, y.progress()));
                });
            }
            x_gate.open();
            // The first worker, free again, takes the second batch's
            // second member: two run, eight are queued.
            until(|| y_started.load(Ordering::SeqCst) == 2);
            pool.wait().unwrap();
            x_ends.assert_each_once();
            let x_calls = x_calls.lock().unwrap().clone();
            assert_eq!(x_calls.len(), 1, "graceful {graceful}");
            let (thread, x_progress, shut, y_seen) = x_calls[0].clone();
            assert_eq!((thread, counts(x_progress)), (me, (1, 1, 0, 0)));
            let y_progress = y.progress();
            if graceful {
                assert_eq!(shut, Ok(0));
                y_ends.assert_each_once();
                assert_eq!(counts(y_progress), (N, N, 0, 0));
                assert_eq!(counts(y_seen), (N, N, 0, 0), "drained inside the shutdown");
            } else {
                assert_eq!(shut, Ok(N - 2));
                assert_eq!(y_ends.totals(), (2, 0, 0, 0));
                assert_eq!(counts(y_progress), (N, 2, 0, N - 2));
                assert_eq!(counts(y_seen), (N, 0, 0, N - 2));
            }
            assert_eq!(y_log.once(), (me, y_progress), "graceful {graceful}");
            assert_eq!(pool.pending(), 0);
        });
    }
}

/// Every batch put by `batches_put_by_callbacks_inside_blocked_batch_puts_all_end_once`,
/// with its members' ends and its size.
type PutBatches = Arc<Mutex<Vec<(Batch, Arc<Ends>, usize)>>>;

/// On a bounded queue with one worker and a result queue of one, members'
/// result callbacks put batches of their own, whose puts block for room
/// inside the callbacks (and so run further callbacks, which put further
/// batches): nothing deadlocks, every batch's members end once each, and
/// every batch-done callback runs once, on this thread.
#[test]
fn batches_put_by_callbacks_inside_blocked_batch_puts_all_end_once() {
    within("nested blocked batch puts", || {
        let pool = common::one_worker_bounded(2, 1);
        let me = thread::current().id();
        let all: PutBatches = Arc::default();
        let log = DoneLog::default();
        /// A batch of `n` members; members 0 and 1 each put a batch of
        /// `n - 1`, down to batches of one.
        fn put(pool: &ThreadPool, n: usize, me: ThreadId, all: &PutBatches, log: &DoneLog) {
            let ends = Ends::new(n, me);
            let (ok, err) = (Arc::clone(&ends), Arc::clone(&ends));
            let (p, a, l) = (pool.clone(), Arc::clone(all), log.clone());
            let requests = make_fallible_requests_with_input(
                |i: &usize| Ok::<_, usize>(*i),
                0..n,
                move |_, i, _| {
                    ok.here();
                    ok.results[i].fetch_add(1, Ordering::SeqCst);
                    if i < 2 && n > 1 {
                        put(&p, n - 1, me, &a, &l);
                    }
                },
                move |_, i, e| err.error(i, &e),
            );
            let batch = pool.put_batch(requests).unwrap();
            batch.on_done(log.callback());
            all.lock().unwrap().push((batch, ends, n));
        }
        put(&pool, 6, me, &all, &log);
        pool.wait().unwrap();
        assert_eq!(pool.pending(), 0);
        let all = all.lock().unwrap();
        // Batches of 6, then 2 of 5, 4 of 4, 8 of 3, 16 of 2, 32 of 1.
        assert_eq!(all.len(), 63);
        for (batch, ends, n) in all.iter() {
            ends.assert_each_once();
            assert_eq!(counts(batch.progress()), (*n, *n, 0, 0));
        }
        let calls = log.calls();
        assert_eq!(calls.len(), 63);
        assert!(calls
            .iter()
            .all(|(t, p)| *t == me && p.is_complete() && p.done == p.total));
    });
}
