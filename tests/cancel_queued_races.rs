//! `cancel_queued` racing puts, clones, children held in workers' slots,
//! streams and `shutdown_now`; `Collector::poll_with` with panicking
//! callbacks and other handles; a stream's `deadline`, `with_id` and
//! `on_done`. Each test counts every request's end: nothing lost, nothing
//! run or heard twice.

mod common;

use std::collections::{HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Instant;

use callpool::{Closed, Context, Emitter, PutError, RequestId, TaskError, ThreadPool, WorkRequest};
use common::{gate, hide_panics_starting_with, within, Rng, TestResult};

/// What became of request `i`: ran (its result heard), or cancelled (its
/// error callback heard `Cancelled`); anything else is counted in `other`.
struct Ends {
    ran: Vec<AtomicUsize>,
    cancelled: Vec<AtomicUsize>,
    other: AtomicUsize,
}

impl Ends {
    fn new(n: usize) -> Arc<Ends> {
        Arc::new(Ends {
            ran: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            cancelled: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            other: AtomicUsize::new(0),
        })
    }

    fn request(self: &Arc<Ends>, i: usize) -> WorkRequest {
        let (on_ok, on_err) = (Arc::clone(self), Arc::clone(self));
        WorkRequest::new(|i: usize| i, i)
            .on_result(move |_, i| {
                on_ok.ran[i].fetch_add(1, Ordering::SeqCst);
            })
            .on_error(move |_, err| match err {
                TaskError::Cancelled => {
                    on_err.cancelled[i].fetch_add(1, Ordering::SeqCst);
                }
                _ => {
                    on_err.other.fetch_add(1, Ordering::SeqCst);
                }
            })
            .into()
    }

    fn ran(&self) -> usize {
        self.ran.iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }

    fn cancelled(&self) -> usize {
        self.cancelled
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .sum()
    }

    /// Each of the first `n` requests ended exactly once, except those in
    /// `handed_back`, which never ended.
    fn assert_each_once(&self, n: usize, handed_back: &HashSet<usize>) {
        assert_eq!(self.other.load(Ordering::SeqCst), 0, "an unexpected error");
        for i in 0..n {
            let ends =
                self.ran[i].load(Ordering::SeqCst) + self.cancelled[i].load(Ordering::SeqCst);
            let want = usize::from(!handed_back.contains(&i));
            assert_eq!(
                ends,
                want,
                "request {i}: {ends} ends, handed back: {}",
                want == 0
            );
        }
    }
}

// ---------------------------------------------------------------------------
// cancel_queued
// ---------------------------------------------------------------------------

/// Puts on one clone race `cancel_queued` on another: each request runs or
/// is cancelled, once; the cancels' returns, the `Cancelled`s heard and
/// `stats().cancelled` agree.
#[test]
fn cancel_queued_racing_puts_on_a_clone_ends_each_request_once() -> TestResult {
    within("cancel_queued racing puts", || {
        for round in 0..20 {
            const N: usize = 2_000;
            let pool = ThreadPool::new(2);
            let ends = Ends::new(N);
            let putter = pool.clone();
            let to_put = Arc::clone(&ends);
            let done = Arc::new(AtomicBool::new(false));
            let finished = Arc::clone(&done);
            let puts = thread::spawn(move || {
                for i in 0..N {
                    putter.put_request(to_put.request(i)).unwrap();
                }
                finished.store(true, Ordering::SeqCst);
            });
            let mut returned = 0;
            while !done.load(Ordering::SeqCst) {
                returned += pool.cancel_queued();
            }
            puts.join().unwrap();
            returned += pool.cancel_queued();
            assert_eq!(pool.wait().unwrap(), N, "round {round}");
            assert_eq!(pool.pending(), 0);
            ends.assert_each_once(N, &HashSet::new());
            assert_eq!(ends.cancelled(), returned, "round {round}");
            assert_eq!(pool.stats().cancelled, returned as u64, "round {round}");
            assert_eq!(pool.stats().completed, ends.ran() as u64, "round {round}");
        }
    });
    Ok(())
}

/// Two threads call `cancel_queued` at once on clones of one handle: the
/// queued requests are split between them, none cancelled twice.
#[test]
fn cancel_queued_twice_at_once_on_clones_cancels_each_once() -> TestResult {
    within("two cancel_queued at once", || {
        for _ in 0..50 {
            const N: usize = 500;
            let pool = ThreadPool::new(1);
            let (g, latch) = gate();
            pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .unwrap();
            g.await_start();
            let ends = Ends::new(N);
            for i in 0..N {
                pool.put_request(ends.request(i)).unwrap();
            }
            let barrier = Arc::new(Barrier::new(2));
            let cancellers: Vec<_> = (0..2)
                .map(|_| {
                    let (clone, barrier) = (pool.clone(), Arc::clone(&barrier));
                    thread::spawn(move || {
                        barrier.wait();
                        clone.cancel_queued()
                    })
                })
                .collect();
            let total: usize = cancellers.into_iter().map(|t| t.join().unwrap()).sum();
            assert_eq!(total, N);
            g.open();
            assert_eq!(pool.wait().unwrap(), N + 1);
            ends.assert_each_once(N, &HashSet::new());
            assert_eq!(ends.cancelled(), N);
            assert_eq!(pool.stats().cancelled, N as u64);
        }
    });
    Ok(())
}

/// A running callable's children, held in its worker's slot (fewer than a
/// hand-off batch) and queued (a full batch of 64 went to the queue), are
/// all reached; children put after the cancel run.
#[test]
fn cancel_queued_reaches_children_held_in_a_slot_and_queued() -> TestResult {
    for k in [1usize, 10, 63, 64, 100, 200] {
        let pool = ThreadPool::new(1);
        let ends = Ends::new(2 * k);
        let (g, latch) = gate();
        let (put_tx, put_rx) = mpsc::channel::<()>();
        let (more_tx, more_rx) = mpsc::channel::<()>();
        let (more_done_tx, more_done_rx) = mpsc::channel::<()>();
        let children = Arc::clone(&ends);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                for i in 0..k {
                    cx.put(children.request(i)).unwrap();
                }
                put_tx.send(()).unwrap();
                more_rx.recv().unwrap();
                for i in k..2 * k {
                    cx.put(children.request(i)).unwrap();
                }
                more_done_tx.send(()).unwrap();
                latch.hold();
            },
            (),
        ))?;
        put_rx.recv_timeout(common::HANG)?;
        assert_eq!(pool.pending(), k + 1);
        assert_eq!(pool.cancel_queued(), k, "k = {k}");
        more_tx.send(())?;
        more_done_rx.recv_timeout(common::HANG)?;
        g.await_start();
        g.open();
        assert_eq!(within_wait(&pool), 2 * k + 1);
        for i in 0..k {
            assert_eq!(
                ends.cancelled[i].load(Ordering::SeqCst),
                1,
                "k = {k}, child {i}"
            );
        }
        for i in k..2 * k {
            assert_eq!(ends.ran[i].load(Ordering::SeqCst), 1, "k = {k}, child {i}");
        }
        ends.assert_each_once(2 * k, &HashSet::new());
        assert_eq!(pool.stats().cancelled, k as u64);
    }
    Ok(())
}

fn within_wait(pool: &ThreadPool) -> usize {
    let pool = pool.clone();
    within("wait", move || pool.wait().unwrap())
}

/// A callable cancels its own handle's unstarted requests, its own held
/// children among them: none of those runs, each is heard cancelled once,
/// on the polling thread.
#[test]
fn cancel_queued_from_a_callable_cancels_its_own_held_children() -> TestResult {
    for workers in [1, 2, 4] {
        const K: usize = 40;
        let pool = ThreadPool::new(workers);
        let weak = pool.downgrade();
        let ends = Ends::new(K);
        let children = Arc::clone(&ends);
        let (tx, rx) = mpsc::channel();
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    for i in 0..K {
                        cx.put(children.request(i)).unwrap();
                    }
                    weak.upgrade().expect("the pool is alive").cancel_queued()
                },
                (),
            )
            .on_result(move |_, n| tx.send(n).unwrap()),
        )?;
        assert_eq!(within_wait(&pool), K + 1);
        let cancelled = rx.try_recv()?;
        // With other workers, children queued before the cancel may have
        // started; the rest are cancelled.
        if workers == 1 {
            assert_eq!(cancelled, K);
        }
        ends.assert_each_once(K, &HashSet::new());
        assert_eq!(ends.cancelled(), cancelled);
        assert_eq!(ends.ran(), K - cancelled);
        assert_eq!(pool.stats().cancelled, cancelled as u64);
    }
    Ok(())
}

/// A queued stream cancelled by `cancel_queued` emits nothing, its error
/// callback hears `Cancelled` once, and its `on_done` never runs.
#[test]
fn cancel_queued_stream_hears_cancelled_and_not_done() -> TestResult {
    let pool = ThreadPool::new(1);
    let (g, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))?;
    g.await_start();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let (items, errors, done) = (Arc::clone(&heard), Arc::clone(&heard), Arc::clone(&heard));
    let id = pool.put_request(
        WorkRequest::streaming(
            |n: u32, out: &Emitter<'_, u32>| -> Result<(), Closed> {
                (0..n).try_for_each(|i| out.emit(i))
            },
            3,
        )
        .with_id(7)
        .on_result(move |_, i| items.lock().unwrap().push(format!("item {i}")))
        .on_error(move |_, e| errors.lock().unwrap().push(format!("error {e:?}")))
        .on_done(move |_| done.lock().unwrap().push("done".into())),
    )?;
    assert_eq!(id.value(), 7);
    assert_eq!(pool.cancel_queued(), 1);
    assert_eq!(pool.cancel_queued(), 0);
    g.open();
    assert_eq!(within_wait(&pool), 2);
    assert_eq!(*heard.lock().unwrap(), ["error Cancelled"]);
    // The id is free again once its cancellation was handled.
    pool.put_request(WorkRequest::new(|n: u32| n, 1).with_id(7))?;
    assert_eq!(within_wait(&pool), 1);
    Ok(())
}

/// A full bounded result queue: the cancellations go past it (never
/// blocking the canceller) and a waiter on another thread hears every one.
#[test]
fn cancel_queued_with_a_full_result_queue_blocks_nobody() -> TestResult {
    const N: usize = 50;
    let pool = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()?;
    let (g, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))?;
    g.await_start();
    let ends = Ends::new(N);
    for i in 0..N {
        pool.put_request(ends.request(i))?;
    }
    let canceller = pool.clone();
    assert_eq!(
        within("cancel_queued", move || canceller.cancel_queued()),
        N
    );
    g.open();
    assert_eq!(within_wait(&pool), N + 1);
    ends.assert_each_once(N, &HashSet::new());
    assert_eq!(ends.cancelled(), N);
    Ok(())
}

/// `cancel_queued` on a clone while `shutdown_now` runs on another, with
/// parents putting children as the pool closes: every request and child
/// runs, is cancelled, is handed back or is refused to its parent, exactly
/// one of these.
#[test]
fn cancel_queued_racing_shutdown_now_loses_nothing() -> TestResult {
    within("cancel_queued racing shutdown_now", || {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..200 {
            race_cancel_with_shutdown_now(round, &mut rng);
        }
    });
    Ok(())
}

/// The same race for many more rounds (about a minute): run with
/// `cargo test --release --test cancel_queued_races -- --ignored`.
#[test]
#[ignore = "long stress"]
fn cancel_queued_racing_shutdown_now_loses_nothing_long() -> TestResult {
    let rounds = common::counter();
    let progress = Arc::clone(&rounds);
    common::within_progress(
        "cancel_queued racing shutdown_now, long",
        move || progress.load(Ordering::SeqCst),
        move || {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            for round in 0..50_000 {
                race_cancel_with_shutdown_now(round, &mut rng);
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    Ok(())
}

fn race_cancel_with_shutdown_now(round: usize, rng: &mut Rng) {
    const TOP: usize = 100;
    const PARENTS: usize = 4;
    const PER_PARENT: usize = 50;
    const N: usize = TOP + PARENTS * PER_PARENT;
    let workers = 1 + rng.below(3) as usize;
    let pool = ThreadPool::new(workers);
    let ends = Ends::new(N);
    let refused = Arc::new(Mutex::new(HashSet::new()));
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let ids = Arc::new(Mutex::new(HashMap::new()));
    let parents_cancelled = common::counter();
    for p in 0..PARENTS {
        let (children, refused, ids) = (Arc::clone(&ends), Arc::clone(&refused), Arc::clone(&ids));
        let accepted = Arc::clone(&accepted);
        let parent_cancelled = Arc::clone(&parents_cancelled);
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    for c in 0..PER_PARENT {
                        let i = TOP + p * PER_PARENT + c;
                        let request = children.request(i);
                        ids.lock().unwrap().insert(request.id(), i);
                        match cx.put(request) {
                            Ok(_) => accepted.lock().unwrap().insert(i),
                            Err(_) => refused.lock().unwrap().insert(i),
                        };
                        if c % 8 == 0 {
                            thread::yield_now();
                        }
                    }
                },
                (),
            )
            .on_error(move |_, e| {
                assert_eq!(e, TaskError::Cancelled);
                parent_cancelled.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
    }
    for i in 0..TOP {
        let request = ends.request(i);
        ids.lock().unwrap().insert(request.id(), i);
        pool.put_request(request).unwrap();
    }
    let clone = pool.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let canceller = thread::spawn(move || {
        let mut n = 0;
        while !stopped.load(Ordering::SeqCst) {
            n += clone.cancel_queued();
            thread::yield_now();
        }
        (clone, n)
    });
    for _ in 0..rng.below(200) {
        thread::yield_now();
    }
    let back = pool.shutdown_now();
    stop.store(true, Ordering::SeqCst);
    let (clone, cancelled_by_us) = canceller.join().unwrap();
    let ids = ids.lock().unwrap();
    // (Parents are not in `ids`: a parent handed back put no child.)
    let handed_back: HashSet<usize> = back
        .iter()
        .filter_map(|r| ids.get(&r.id()).copied())
        .collect();
    let parents_back = back.iter().filter(|r| !ids.contains_key(&r.id())).count();
    assert!(parents_back <= PARENTS);
    assert_eq!(
        handed_back.len() + parents_back,
        back.len(),
        "round {round}: handed back twice"
    );
    drop(back);
    // A parent still running takes this lock: not held across the wait.
    drop(ids);
    // The clone hears what ran and what was cancelled; the workers finish
    // what they run and exit.
    let waited = clone.wait_timeout(common::HANG);
    if waited.is_err() {
        let missing: Vec<usize> = (0..N)
            .filter(|i| {
                ends.ran[*i].load(Ordering::SeqCst) + ends.cancelled[*i].load(Ordering::SeqCst) == 0
                    && !handed_back.contains(i)
                    && (*i < TOP || accepted.lock().unwrap().contains(i))
            })
            .collect();
        panic!(
            "round {round} ({workers} workers): stats {:?}, pending {}, handed back {}, parents back {parents_back}, refused {}, cancelled by us {cancelled_by_us}, missing {missing:?}",
            clone.stats(),
            clone.pending(),
            handed_back.len(),
            refused.lock().unwrap().len(),
        );
    }
    let refused = refused.lock().unwrap();
    assert!(
        handed_back.is_disjoint(&refused),
        "round {round}: a child handed back and refused"
    );
    let accepted = accepted.lock().unwrap();
    assert!(accepted.is_disjoint(&refused), "round {round}");
    // Children never put (their parent was handed back or cancelled) and
    // refused ones never end; the others end once unless handed back.
    let not_ending: HashSet<usize> = (0..N)
        .filter(|i| handed_back.contains(i) || (*i >= TOP && !accepted.contains(i)))
        .collect();
    ends.assert_each_once(N, &not_ending);
    // What our cancels took, and perhaps more that the close cancelled.
    let heard = ends.cancelled() + parents_cancelled.load(Ordering::SeqCst);
    assert!(
        heard >= cancelled_by_us,
        "round {round}: {heard} < {cancelled_by_us}"
    );
    assert_eq!(clone.pending(), 0, "round {round}");
}

// ---------------------------------------------------------------------------
// Collector::poll_with
// ---------------------------------------------------------------------------

/// A callback that panics in `poll_with` passes through; the outcomes not
/// yet handled stay for the next call, and none is handled twice.
#[test]
fn poll_with_a_panicking_callback_keeps_the_rest() -> TestResult {
    hide_panics_starting_with("cancel_queued_races: deliberate");
    const N: u64 = 20;
    let pool = ThreadPool::new(2);
    let heard = std::cell::RefCell::new(Vec::new());
    let mut results = pool.collector::<u64>();
    for n in 0..N {
        let heard = &heard;
        if n % 2 == 0 {
            results.put_then(
                |n: u64| n,
                n,
                move |r| {
                    let n = r.unwrap();
                    heard.borrow_mut().push(n);
                    if n % 4 == 0 {
                        panic!("cancel_queued_races: deliberate {n}");
                    }
                },
            )?;
        } else {
            results.put(|n: u64| n, n)?;
        }
    }
    let mut handled = 0;
    let mut panics = 0;
    common::within_here("poll_with", || {
        while results.pending() > 0 {
            match panic::catch_unwind(AssertUnwindSafe(|| {
                results.poll_with(|_, r| heard.borrow_mut().push(r.unwrap()))
            })) {
                Ok(n) => handled += n,
                Err(_) => panics += 1,
            }
            thread::yield_now();
        }
    });
    assert_eq!(panics, 5);
    assert_eq!(results.poll_with(|_, _| unreachable!()), 0);
    drop(results);
    let mut heard = heard.into_inner();
    heard.sort_unstable();
    assert_eq!(heard, (0..N).collect::<Vec<_>>());
    // A call that a callback panicked out of returned no count.
    assert!(handled <= N as usize - 5, "{handled}");
    Ok(())
}

/// A collector on one handle hears only its own requests: the requests of
/// another handle of the same pool, and of the handle itself, go to their
/// callbacks, and a `poll_with` never takes them.
#[test]
fn poll_with_hears_only_its_own_requests() -> TestResult {
    let pool = ThreadPool::new(2);
    let other = pool.new_handle();
    let on_pool = common::counter();
    let on_other = common::counter();
    let mut results = pool.collector::<u32>();
    for n in 0..10u32 {
        let (a, b) = (Arc::clone(&on_pool), Arc::clone(&on_other));
        pool.put_request(WorkRequest::new(|n: u32| n, n).on_result(move |_, _| {
            a.fetch_add(1, Ordering::SeqCst);
        }))?;
        other.put_request(WorkRequest::new(|n: u32| n, n).on_result(move |_, _| {
            b.fetch_add(1, Ordering::SeqCst);
        }))?;
        results.put(|n: u32| n + 100, n)?;
    }
    let mut got = Vec::new();
    common::within_here("poll_with", || {
        while results.pending() > 0 {
            results.poll_with(|_, r| got.push(r.unwrap()));
            thread::yield_now();
        }
    });
    got.sort_unstable();
    assert_eq!(got, (100..110).collect::<Vec<_>>());
    assert_eq!(within_wait(&pool), 10);
    let other_clone = other.clone();
    assert_eq!(
        within("other wait", move || other_clone.wait().unwrap()),
        10
    );
    assert_eq!(on_pool.load(Ordering::SeqCst), 10);
    assert_eq!(on_other.load(Ordering::SeqCst), 10);
    // The collector's requests never counted on the handle.
    assert_eq!(pool.pending(), 0);
    Ok(())
}

/// A handle's callback, run by a `wait` nested in a collector's callback
/// during `poll_with`, and `cancel_queued` from that callback: the
/// collector's own requests are not cancelled.
#[test]
fn poll_with_callback_that_waits_and_cancels_on_the_handle() -> TestResult {
    let pool = ThreadPool::new(1);
    let ends = Ends::new(10);
    let cancelled = std::cell::Cell::new(None);
    let mut results = pool.collector::<u32>();
    let (g, latch) = gate();
    results.put(
        move |_: ()| {
            latch.hold();
            0
        },
        (),
    )?;
    g.await_start();
    for n in 1..=5u32 {
        let (pool, cancelled) = (&pool, &cancelled);
        results.put_then(
            |n: u32| n,
            n,
            move |_| {
                if cancelled.get().is_none() {
                    cancelled.set(Some(pool.cancel_queued()));
                }
            },
        )?;
    }
    for i in 0..10 {
        pool.put_request(ends.request(i))?;
    }
    g.open();
    let mut got = 0;
    common::within_here("poll_with", || {
        while results.pending() > 0 {
            got += results.poll_with(|_, r| assert_eq!(r, Ok(0)));
            thread::yield_now();
        }
    });
    assert_eq!(got, 6, "every collector request ran");
    assert_eq!(within_wait(&pool), 10);
    let cancelled = cancelled.get().expect("a callback ran");
    ends.assert_each_once(10, &HashSet::new());
    assert_eq!(ends.cancelled(), cancelled);
    Ok(())
}

// ---------------------------------------------------------------------------
// StreamRequest: deadline, timeout, with_id, on_done
// ---------------------------------------------------------------------------

type Heard = Arc<Mutex<Vec<String>>>;

// The typed builder's own type, with its callable's.
#[allow(clippy::type_complexity)]
fn stream(
    heard: &Heard,
    tag: &'static str,
    n: u32,
    fail: bool,
) -> callpool::StreamRequest<
    impl FnOnce(u32, &Emitter<'_, u32>) -> Result<(), String> + Send + 'static,
    u32,
    u32,
    String,
> {
    let (items, errors, done) = (Arc::clone(heard), Arc::clone(heard), Arc::clone(heard));
    WorkRequest::streaming(
        move |n: u32, out: &Emitter<'_, u32>| {
            for i in 0..n {
                out.emit(i).map_err(|_| "closed".to_string())?;
            }
            if fail {
                Err("failed".to_string())
            } else {
                Ok(())
            }
        },
        n,
    )
    .on_result(move |_, i| items.lock().unwrap().push(format!("{tag} {i}")))
    .on_error(move |_, e| errors.lock().unwrap().push(format!("{tag} error {e:?}")))
    .on_done(move |_| done.lock().unwrap().push(format!("{tag} done")))
}

/// A user-chosen id already pending on the handle refuses a stream, and a
/// plain request, with it; the refused stream can be put once it is free.
#[test]
fn stream_with_a_duplicate_chosen_id_is_refused_and_can_be_put_later() -> TestResult {
    let pool = ThreadPool::new(1);
    let heard: Heard = Arc::default();
    let (g, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()).with_id(5))?;
    g.await_start();
    let again = match pool.put_request(stream(&heard, "a", 2, false).with_id(5)) {
        Err(PutError::DuplicateId(r)) => r,
        other => panic!("expected DuplicateId, got {other:?}"),
    };
    assert_eq!(again.id().value(), 5);
    let first = pool.put_request(stream(&heard, "b", 2, false).with_id(6))?;
    assert_eq!(first.value(), 6);
    assert!(matches!(
        pool.put_request(WorkRequest::new(|n: u32| n, 1).with_id(6)),
        Err(PutError::DuplicateId(_))
    ));
    assert!(matches!(
        pool.put_request(stream(&heard, "c", 2, false).with_id(6)),
        Err(PutError::DuplicateId(_))
    ));
    assert_eq!(pool.pending(), 2);
    g.open();
    assert_eq!(within_wait(&pool), 1 + 3);
    // Now 5 is free: the refused stream goes in and runs.
    pool.put_request(again)?;
    assert_eq!(within_wait(&pool), 3);
    assert_eq!(
        *heard.lock().unwrap(),
        ["b 0", "b 1", "b done", "a 0", "a 1", "a done"]
    );
    Ok(())
}

/// A stream whose deadline passes while another stream runs never starts:
/// no item, `Expired` once, no `on_done`; the running one ends normally.
#[test]
fn stream_deadline_passes_while_another_stream_runs() -> TestResult {
    let pool = ThreadPool::new(1);
    let heard: Heard = Arc::default();
    let (g, latch) = gate();
    let (items, done) = (Arc::clone(&heard), Arc::clone(&heard));
    pool.put_request(
        WorkRequest::streaming(
            move |n: u32, out: &Emitter<'_, u32>| -> Result<(), Closed> {
                out.emit(0)?;
                latch.hold();
                (1..n).try_for_each(|i| out.emit(i))
            },
            3,
        )
        .on_result(move |_, i| items.lock().unwrap().push(format!("a {i}")))
        .on_done(move |_| done.lock().unwrap().push("a done".into())),
    )?;
    g.await_start();
    let deadline = Instant::now();
    pool.put_request(stream(&heard, "b", 3, false).deadline(deadline))?;
    pool.put_request(stream(&heard, "c", 1, false).timeout(std::time::Duration::MAX))?;
    // Nothing can run it before the deadline: the one worker is held.
    while Instant::now() <= deadline {
        thread::yield_now();
    }
    let before = pool.stats().cancelled;
    g.open();
    // a: 3 items and its end; b: its end; c: 1 item and its end.
    assert_eq!(within_wait(&pool), 4 + 1 + 2);
    let heard = heard.lock().unwrap().clone();
    assert_eq!(
        heard,
        [
            "a 0",
            "a 1",
            "a 2",
            "a done",
            "b error Expired",
            "c 0",
            "c done"
        ]
    );
    assert_eq!(pool.stats().cancelled, before + 1);
    Ok(())
}

/// `on_done` never runs after an error or a panic; the error callback runs
/// once, after every item.
#[test]
fn stream_on_done_not_after_an_error_or_a_panic() -> TestResult {
    hide_panics_starting_with("cancel_queued_races: deliberate");
    let pool = ThreadPool::builder()
        .workers(2)
        .quiet_panics(true)
        .build()?;
    let heard: Heard = Arc::default();
    pool.put_request(stream(&heard, "f", 2, true))?;
    assert_eq!(within_wait(&pool), 3);
    let (items, errors, done) = (Arc::clone(&heard), Arc::clone(&heard), Arc::clone(&heard));
    pool.put_request(
        WorkRequest::streaming(
            |_: (), out: &Emitter<'_, u32>| -> Result<(), Closed> {
                out.emit(9)?;
                panic!("cancel_queued_races: deliberate stream panic");
            },
            (),
        )
        .on_result(move |_, i| items.lock().unwrap().push(format!("p {i}")))
        .on_error(move |_, e| {
            errors.lock().unwrap().push(match e {
                TaskError::Panicked(_) => "p panicked".into(),
                other => format!("p {other:?}"),
            })
        })
        .on_done(move |_| done.lock().unwrap().push("p done".into())),
    )?;
    assert_eq!(within_wait(&pool), 2);
    assert_eq!(
        *heard.lock().unwrap(),
        [
            "f 0",
            "f 1",
            "f error Failed(\"failed\")",
            "p 9",
            "p panicked"
        ]
    );
    let stats = pool.stats();
    assert_eq!((stats.failed, stats.panicked, stats.completed), (1, 1, 0));
    Ok(())
}

/// A bounded result queue of one holds the emitter back while the handle
/// waits; `on_done` comes once, after the last item.
#[test]
fn stream_on_done_after_the_last_item_with_a_blocked_emitter() -> TestResult {
    const N: u32 = 200;
    for results in [1, 2] {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(results)
            .build()?;
        let heard: Heard = Arc::default();
        pool.put_request(stream(&heard, "s", N, false))?;
        pool.put_request(stream(&heard, "t", N, false))?;
        assert_eq!(within_wait(&pool), 2 * (N as usize + 1));
        let heard = heard.lock().unwrap().clone();
        for tag in ["s", "t"] {
            let mine: Vec<&String> = heard.iter().filter(|h| h.starts_with(tag)).collect();
            let want: Vec<String> = (0..N)
                .map(|i| format!("{tag} {i}"))
                .chain([format!("{tag} done")])
                .collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>());
        }
    }
    Ok(())
}

/// A panic in `on_done` passes out of `wait`, once; the stream is no
/// longer pending, the next `wait` handles the rest, and no later callback
/// is lost.
#[test]
fn stream_on_done_panic_passes_through_and_leaves_the_handle_consistent() -> TestResult {
    hide_panics_starting_with("cancel_queued_races: deliberate");
    let pool = ThreadPool::new(1);
    let heard: Heard = Arc::default();
    let (items, errors) = (Arc::clone(&heard), Arc::clone(&heard));
    pool.put_request(
        WorkRequest::streaming(
            |n: u32, out: &Emitter<'_, u32>| -> Result<(), Closed> {
                (0..n).try_for_each(|i| out.emit(i))
            },
            2,
        )
        .on_result(move |_, i| items.lock().unwrap().push(format!("p {i}")))
        .on_error(move |_, e| errors.lock().unwrap().push(format!("p {e:?}")))
        .on_done(|_| panic!("cancel_queued_races: deliberate on_done panic")),
    )?;
    pool.put_request(stream(&heard, "q", 1, false))?;
    let waited = pool.clone();
    let first = within("wait", move || {
        panic::catch_unwind(AssertUnwindSafe(|| waited.wait())).is_err()
    });
    assert!(first, "the panic in on_done passed out of wait");
    let rest = within_wait(&pool);
    assert_eq!(pool.pending(), 0);
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard, ["p 0", "p 1", "q 0", "q done"], "after {rest} more");
    assert_eq!(pool.stats().completed, 2);
    Ok(())
}

/// `RequestId` of a stream with a chosen id is the one given, and a
/// stream without one takes an automatic id unlike any other.
#[test]
fn stream_ids_chosen_and_automatic() -> TestResult {
    let pool = ThreadPool::new(1);
    let heard: Heard = Arc::default();
    let a = pool.put_request(stream(&heard, "a", 0, false))?;
    let b = pool.put_request(stream(&heard, "b", 0, false).with_id(a.value()))?;
    assert_eq!(b.value(), a.value());
    assert_ne!(a, b, "a chosen id is not an automatic one");
    let seen: Arc<Mutex<Vec<RequestId>>> = Arc::default();
    let s = Arc::clone(&seen);
    pool.put_request(
        WorkRequest::streaming(
            |_: (), out: &Emitter<'_, ()>| -> Result<(), Closed> { out.emit(()) },
            (),
        )
        .with_id(u64::MAX)
        .on_result(move |id, ()| s.lock().unwrap().push(id))
        .on_done({
            let s = Arc::clone(&seen);
            move |id| s.lock().unwrap().push(id)
        }),
    )?;
    within_wait(&pool);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|id| id.value() == u64::MAX));
    Ok(())
}

/// Children that running callables put on 1 to 4 workers (held, handed
/// off in batches, queued by idle workers) race `cancel_queued` on a
/// clone: every child put runs or is cancelled, once, and every parent
/// runs or is cancelled (then it puts none).
#[test]
fn cancel_queued_racing_children_ends_each_child_once() -> TestResult {
    within("cancel_queued racing children", || {
        for round in 0..40 {
            const PARENTS: usize = 4;
            const PER_PARENT: usize = 150;
            const N: usize = PARENTS * PER_PARENT;
            let workers = 1 + round % 4;
            let pool = ThreadPool::new(workers);
            let ends = Ends::new(N);
            let put: Arc<Vec<AtomicBool>> =
                Arc::new((0..N).map(|_| AtomicBool::new(false)).collect());
            let parents = Ends::new(PARENTS);
            for p in 0..PARENTS {
                let (children, put) = (Arc::clone(&ends), Arc::clone(&put));
                let (ran, cancelled) = (Arc::clone(&parents), Arc::clone(&parents));
                pool.put_request(
                    WorkRequest::with_context(
                        move |cx: &Context<'_>, ()| {
                            for c in 0..PER_PARENT {
                                let i = p * PER_PARENT + c;
                                cx.put(children.request(i)).unwrap();
                                put[i].store(true, Ordering::SeqCst);
                                if c % 16 == 0 {
                                    thread::yield_now();
                                }
                            }
                        },
                        (),
                    )
                    .on_result(move |_, ()| {
                        ran.ran[p].fetch_add(1, Ordering::SeqCst);
                    })
                    .on_error(move |_, e| {
                        assert_eq!(e, TaskError::Cancelled);
                        cancelled.cancelled[p].fetch_add(1, Ordering::SeqCst);
                    }),
                )
                .unwrap();
            }
            let canceller = pool.clone();
            let done = Arc::new(AtomicBool::new(false));
            let stop = Arc::clone(&done);
            let cancels = thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += canceller.cancel_queued();
                    thread::yield_now();
                }
                n
            });
            pool.wait().unwrap();
            done.store(true, Ordering::SeqCst);
            let cancelled = cancels.join().unwrap();
            // What the canceller's last look cancelled after the wait.
            pool.wait().unwrap();
            assert_eq!(pool.pending(), 0, "round {round}");
            parents.assert_each_once(PARENTS, &HashSet::new());
            let never_put: HashSet<usize> =
                (0..N).filter(|&i| !put[i].load(Ordering::SeqCst)).collect();
            ends.assert_each_once(N, &never_put);
            assert_eq!(
                ends.cancelled() + parents.cancelled(),
                cancelled,
                "round {round}"
            );
            assert_eq!(pool.stats().cancelled, cancelled as u64, "round {round}");
        }
    });
    Ok(())
}
