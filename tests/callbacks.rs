//! Where and how often callbacks run: only on the thread that polls or
//! waits, exactly once per request, also for requests put by callbacks and
//! for waits made inside callbacks; and the counts `poll` and `wait` return.

use std::collections::HashSet;
use std::num::ParseIntError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use callpool::{
    make_fallible_requests, make_requests, PollError, RequestId, TaskError, ThreadPool, WaitError,
    WorkRequest,
};

mod common;
use common::one_way::{self, OpenOnDrop};
use common::*;

/// The worker index in a default thread name `callpool-worker-N`, if it is one.
fn worker_index(name: Option<&str>) -> Option<usize> {
    name?.strip_prefix("callpool-worker-")?.parse().ok()
}

// Callables run on the named worker threads; both result and error callbacks
// run on the thread that calls `wait`, never on a worker.
#[test]
fn callbacks_run_on_the_waiting_thread_and_callables_on_workers() {
    let pool = ThreadPool::new(4);
    let me = thread::current().id();
    let (tx, rx) = mpsc::channel::<(bool, Option<String>, ThreadId)>();
    for i in 0..200u32 {
        let (tx_ok, tx_err) = (tx.clone(), tx.clone());
        let request = WorkRequest::fallible(
            |i: u32| {
                let name = thread::current().name().map(str::to_owned);
                if i % 2 == 0 {
                    Ok(name)
                } else {
                    Err(name)
                }
            },
            i,
        )
        .on_result(move |_, name| tx_ok.send((true, name, thread::current().id())).unwrap())
        .on_error(move |_, err| {
            let TaskError::Failed(name) = err else {
                panic!("expected a failure, got {err:?}");
            };
            tx_err.send((false, name, thread::current().id())).unwrap();
        });
        pool.put_request(request).unwrap();
    }
    drop(tx);

    assert_eq!(pool.wait_timeout(HANG), Ok(200));
    let seen: Vec<_> = rx.try_iter().collect();
    assert_eq!(seen.len(), 200);
    assert_eq!(seen.iter().filter(|(ok, _, _)| *ok).count(), 100);
    for (_, name, callback_thread) in &seen {
        assert_eq!(
            *callback_thread, me,
            "a callback ran off the waiting thread"
        );
        let index = worker_index(name.as_deref());
        assert!(
            matches!(index, Some(0..=3)),
            "a callable ran on {name:?}, not on callpool-worker-0..3"
        );
    }
}

// Callbacks run on the thread that polls, not the one that put the requests.
#[test]
fn callbacks_run_on_the_thread_that_polls_not_the_one_that_put() {
    let pool = ThreadPool::new(2);
    let (tx, rx) = mpsc::channel();
    for i in 0..50u32 {
        let tx = tx.clone();
        pool.put_request(
            WorkRequest::new(|i: u32| i, i)
                .on_result(move |_, _| tx.send(thread::current().id()).unwrap()),
        )
        .unwrap();
    }
    drop(tx);

    let poller = thread::scope(|s| {
        s.spawn(|| {
            let mut handled = 0;
            while pool.pending() > 0 {
                handled += pool.poll_timeout(HANG).expect("poll_timeout failed");
            }
            assert_eq!(handled, 50);
            thread::current().id()
        })
        .join()
        .unwrap()
    });
    let callback_threads: Vec<ThreadId> = rx.try_iter().collect();
    assert_eq!(callback_threads.len(), 50);
    assert!(callback_threads.iter().all(|t| *t == poller));
}

// Each request's callable and callback run exactly once: nothing lost,
// nothing handled twice, for both `WorkRequest::new` and `make_requests`.
#[test]
fn every_request_runs_and_reports_exactly_once() {
    const N: usize = 10_000;
    let runs = hit_counters(N);
    let hits = hit_counters(N);
    let pool = ThreadPool::new(4);

    let (r, h) = (Arc::clone(&runs), Arc::clone(&hits));
    let shared = make_requests(
        move |i: usize| {
            r[i].fetch_add(1, Ordering::Relaxed);
            i
        },
        0..N / 2,
        move |_, i| {
            h[i].fetch_add(1, Ordering::Relaxed);
        },
        |id, err| panic!("request {id} failed: {err}"),
    );
    for request in shared {
        pool.put_request(request).unwrap();
    }
    for i in N / 2..N {
        let (r, h) = (Arc::clone(&runs), Arc::clone(&hits));
        let request = WorkRequest::new(
            move |i: usize| {
                r[i].fetch_add(1, Ordering::Relaxed);
                i
            },
            i,
        )
        .on_result(move |_, i| {
            h[i].fetch_add(1, Ordering::Relaxed);
        });
        pool.put_request(request).unwrap();
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(N));
    assert_each_once("callables", &runs);
    assert_each_once("callbacks", &hits);
    assert_eq!(pool.pending(), 0);
}

/// Puts link `depth` of a chain whose callback puts the next link.
fn put_link(pool: &Arc<ThreadPool>, depth: usize, last: usize, links: Arc<AtomicUsize>) {
    let next = Arc::clone(pool);
    let request = WorkRequest::new(|d: usize| d, depth).on_result(move |_, d| {
        links.fetch_add(1, Ordering::Relaxed);
        if d < last {
            put_link(&next, d + 1, last, links);
        }
    });
    pool.put_request(request).expect("put from a callback");
}

// Requests that callbacks put while `wait` runs are waited for by that same
// `wait`, and counted in what it returns.
#[test]
fn wait_also_waits_for_requests_put_by_callbacks() {
    const CHAIN: usize = 100;
    let pool = Arc::new(ThreadPool::new(2));
    let links = counter();
    put_link(&pool, 1, CHAIN, Arc::clone(&links));

    assert_eq!(pool.wait_timeout(HANG), Ok(CHAIN));
    assert_eq!(links.load(Ordering::Relaxed), CHAIN);
    assert_eq!(pool.pending(), 0);
}

// W11: `wait` called from inside a callback does not deadlock: the request
// whose callback is running is no longer pending, so the inner wait handles
// the other results and returns.
#[test]
fn wait_inside_a_callback_handles_the_rest() -> TestResult {
    let pool = Arc::new(ThreadPool::new(2));
    let door = Arc::new(one_way::Gate::default());
    let _open = OpenOnDrop(Arc::clone(&door));
    let (inner_tx, inner_rx) = mpsc::channel();

    // Queued first, so a worker takes it first; the other ten cannot finish
    // before its callback opens the door, so the inner wait must handle them.
    let (p, d) = (Arc::clone(&pool), Arc::clone(&door));
    pool.put_request(WorkRequest::new(|x: u32| x, 0).on_result(move |_, _| {
        d.open();
        inner_tx.send(p.wait_timeout(HANG)).unwrap();
    }))?;
    let later = counter();
    for i in 1..=10u32 {
        let (d, later) = (Arc::clone(&door), Arc::clone(&later));
        pool.put_request(
            WorkRequest::new(
                move |x: u32| {
                    d.pass();
                    x
                },
                i,
            )
            .on_result(move |_, _| {
                later.fetch_add(1, Ordering::Relaxed);
            }),
        )?;
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    assert_eq!(inner_rx.try_recv()?, Ok(10));
    assert_eq!(later.load(Ordering::Relaxed), 10);
    assert_eq!(pool.pending(), 0);
    Ok(())
}

/// The numbers of the requests whose callbacks ran, in order.
type Seen = Arc<Mutex<Vec<u32>>>;

/// Puts `n` requests on a pool of one worker, then a last one that holds
/// the worker, and returns once that last one runs: by then the first
/// `n` results are all in the result queue, so the next poll or wait
/// takes them in one run. Each callback records its request's number,
/// then calls `each` with it.
fn queue_results_together(
    pool: &Arc<ThreadPool>,
    n: u32,
    each: impl Fn(u32, &Arc<ThreadPool>) + Send + Sync + 'static,
) -> Result<(Seen, Gate), Box<dyn std::error::Error>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let each = Arc::new(each);
    for i in 0..n {
        let (seen, p, each) = (Arc::clone(&seen), Arc::clone(pool), Arc::clone(&each));
        pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(move |_, x| {
            seen.lock().unwrap().push(x);
            each(x, &p);
        }))?;
    }
    let (held, latch) = gate();
    let seen_last = Arc::clone(&seen);
    pool.put_request(
        WorkRequest::new(move |_: ()| latch.hold(), ())
            .on_result(move |_, ()| seen_last.lock().unwrap().push(n)),
    )?;
    held.await_start();
    Ok((seen, held))
}

/// Queues `n` results together (`queue_results_together`); request 0's
/// callback opens the gate that holds the last request, then calls
/// `inner` on the pool from inside itself. Returns what each callback
/// recorded and what `inner` returned.
fn call_from_the_first_callback<T: Send + 'static>(
    pool: &Arc<ThreadPool>,
    n: u32,
    inner: impl Fn(&ThreadPool) -> T + Send + Sync + 'static,
) -> Result<(Seen, mpsc::Receiver<T>), Box<dyn std::error::Error>> {
    let (inner_tx, inner_rx) = mpsc::channel();
    let inner_tx = Mutex::new(inner_tx);
    let opener: Arc<Mutex<Option<Gate>>> = Arc::default();
    let open = Arc::clone(&opener);
    let me = thread::current().id();
    let (seen, held) = queue_results_together(pool, n, move |x, p| {
        assert_eq!(thread::current().id(), me);
        if x == 0 {
            open.lock().unwrap().take().unwrap().open();
            inner_tx.lock().unwrap().send(inner(p)).unwrap();
        }
    })?;
    *opener.lock().unwrap() = Some(held);
    Ok((seen, inner_rx))
}

/// `wait` inside a callback handles every result it can reach (here the
/// last request's, which arrives while it waits), then returns
/// `HeldByCaller` instead of waiting for ever for the results taken off
/// the queue together with the callback's own: the outer `wait` handles
/// those once the callback returns, each once.
#[test]
fn wait_inside_a_callback_returns_for_results_its_caller_holds() -> TestResult {
    within_here("nested wait", || {
        let pool = Arc::new(ThreadPool::new(1));
        let (seen, inner) = call_from_the_first_callback(&pool, 5, |p| p.wait_timeout(HANG))?;
        // Requests 0 to 4 here; 5, the one the gate held, in the inner wait.
        assert_eq!(pool.wait_timeout(HANG), Ok(5));
        assert_eq!(
            inner.try_recv()?,
            Err(WaitError::HeldByCaller { pending: 4 }),
            "the inner wait handled request 5, then returned for 1 to 4"
        );
        assert_eq!(*seen.lock().unwrap(), [0, 5, 1, 2, 3, 4], "each once");
        assert_eq!(pool.pending(), 0);
        Ok(())
    })
}

/// `close` inside a callback returns once the workers are joined, though
/// results taken off the queue together with the callback's own are still
/// to be handled; the outer `wait` handles them once it returns.
#[test]
fn close_inside_a_callback_returns_and_the_caller_handles_the_rest() -> TestResult {
    within_here("nested close", || {
        let pool = Arc::new(ThreadPool::new(1));
        let (seen, inner) = call_from_the_first_callback(&pool, 3, |p| p.close())?;
        assert_eq!(pool.wait_timeout(HANG), Ok(3));
        assert!(matches!(inner.try_recv()?, Ok(())));
        assert_eq!(*seen.lock().unwrap(), [0, 3, 1, 2]);
        assert_eq!(pool.threads(), 0, "close joined the worker");
        assert_eq!(pool.pending(), 0);
        Ok(())
    })
}

// W12: `poll` never blocks and returns counts, not exceptions: Ok(0) while
// the request runs, the exact number of results ready, and NoResultsPending
// only when nothing is pending.
#[test]
fn poll_returns_exact_counts() -> TestResult {
    let pool = ThreadPool::new(1);
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));

    let handled = counter();
    let on_result = |handled: &Arc<AtomicUsize>| {
        let handled = Arc::clone(handled);
        move |_: RequestId, _: u32| {
            handled.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (first, latch) = gate();
    pool.put_request(
        WorkRequest::new(
            move |x: u32| {
                latch.hold();
                x
            },
            0,
        )
        .on_result(on_result(&handled)),
    )?;
    first.await_start();
    assert_eq!(pool.poll(), Ok(0));
    assert_eq!(pool.pending(), 1);

    // One worker runs requests in order and sends each result before it
    // takes the next: once the gated last one has started, the four before
    // it have their results ready.
    for i in 1..=3 {
        pool.put_request(WorkRequest::new(|x: u32| x, i).on_result(on_result(&handled)))?;
    }
    let (last, latch) = gate();
    pool.put_request(
        WorkRequest::new(
            move |x: u32| {
                latch.hold();
                x
            },
            4,
        )
        .on_result(on_result(&handled)),
    )?;
    first.open();
    last.await_start();
    assert_eq!(pool.poll(), Ok(4));
    assert_eq!(handled.load(Ordering::Relaxed), 4);
    assert_eq!(pool.pending(), 1);
    assert_eq!(pool.poll(), Ok(0));

    last.open();
    assert_eq!(pool.poll_timeout(HANG), Ok(1));
    assert_eq!(handled.load(Ordering::Relaxed), 5);
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    Ok(())
}

// `poll_timeout` blocks until a result is ready, then handles every ready
// result; it reports a timeout (with the pending count) when none comes, and
// NoResultsPending when nothing is pending.
#[test]
fn poll_timeout_waits_for_a_result_or_reports_why_not() -> TestResult {
    let pool = ThreadPool::new(1);
    assert_eq!(
        pool.poll_timeout(HANG),
        Err(PollError::NoResultsPending),
        "nothing is pending: no reason to block"
    );

    let (first, latch) = gate();
    pool.put_request(WorkRequest::new(
        move |x: u32| {
            latch.hold();
            x
        },
        0,
    ))?;
    first.await_start();
    // The request cannot finish before the gate opens: the timeout must pass.
    assert_eq!(
        pool.poll_timeout(Duration::from_millis(10)),
        Err(PollError::Timeout { pending: 1 })
    );

    for i in 1..=2 {
        pool.put_request(WorkRequest::new(|x: u32| x, i))?;
    }
    let (last, latch) = gate();
    pool.put_request(WorkRequest::new(
        move |x: u32| {
            latch.hold();
            x
        },
        3,
    ))?;
    first.open();
    last.await_start();
    assert_eq!(pool.poll_timeout(HANG), Ok(3), "all ready results at once");
    last.open();
    assert_eq!(pool.poll_timeout(HANG), Ok(1));
    assert_eq!(pool.poll_timeout(HANG), Err(PollError::NoResultsPending));
    Ok(())
}

// Model table, 0 workers: `poll` returns Ok(0), `poll_timeout` and `wait`
// report NoWorkersAvailable at once instead of hanging; after
// `create_workers` the requests run and are handled.
#[test]
fn no_workers_is_reported_not_waited_for() -> TestResult {
    let pool = ThreadPool::new(0);
    pool.put_request(WorkRequest::new(|x: u32| x, 1))?;
    pool.put_request(WorkRequest::new(|x: u32| x, 2))?;

    assert_eq!(pool.poll(), Ok(0));
    assert_eq!(
        pool.poll_timeout(HANG),
        Err(PollError::NoWorkersAvailable { pending: 2 })
    );
    assert_eq!(
        pool.wait_timeout(HANG),
        Err(WaitError::NoWorkersAvailable { pending: 2 })
    );
    assert_eq!(pool.pending(), 2);

    pool.create_workers(1)?;
    assert_eq!(pool.wait_timeout(HANG), Ok(2));
    Ok(())
}

/// Counts its drops and remembers the thread of the last one.
struct Tracked {
    drops: Arc<Mutex<Vec<ThreadId>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.lock().unwrap().push(thread::current().id());
    }
}

// W13: a request with no result callback has its value dropped, once, on
// the polling thread, silently (no error callback is called for it).
#[test]
fn a_result_without_a_callback_is_dropped() -> TestResult {
    let pool = ThreadPool::new(2);
    let drops = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..4 {
        let d = Arc::clone(&drops);
        pool.put_request(WorkRequest::new(move |()| Tracked { drops: d }, ()))?;
    }
    let d = Arc::clone(&drops);
    pool.put_request(
        WorkRequest::new(move |()| Tracked { drops: d }, ())
            .on_error(|id, err| panic!("request {id} got an error callback: {err:?}")),
    )?;

    assert_eq!(pool.wait_timeout(HANG), Ok(5));
    let drops = drops.lock().unwrap();
    assert_eq!(drops.len(), 5);
    assert!(drops.iter().all(|t| *t == thread::current().id()));
    Ok(())
}

// `make_requests` builds one request per item, each with its own automatic
// id, and submits nothing; once put, each item's result reaches the shared
// callback with that request's id.
#[test]
fn make_requests_builds_one_unsubmitted_request_per_item() -> TestResult {
    let pool = ThreadPool::new(2);
    let runs = counter();
    let (tx, rx) = mpsc::channel();
    let r = Arc::clone(&runs);
    let requests = make_requests(
        move |n: u64| {
            r.fetch_add(1, Ordering::Relaxed);
            n * 10
        },
        0..50u64,
        move |id, value| tx.send((id, value)).unwrap(),
        |id, err| panic!("request {id} failed: {err}"),
    );

    assert_eq!(requests.len(), 50);
    let ids: Vec<RequestId> = requests.iter().map(WorkRequest::id).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 50);
    assert!(ids.iter().all(|id| !id.is_user_chosen()));
    assert_eq!(runs.load(Ordering::Relaxed), 0);
    assert_eq!((pool.pending(), pool.queued()), (0, 0));

    for request in requests {
        pool.put_request(request)?;
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(50));
    assert_eq!(runs.load(Ordering::Relaxed), 50);
    let mut seen: Vec<(RequestId, u64)> = rx.try_iter().collect();
    seen.sort_by_key(|(id, _)| ids.iter().position(|i| i == id));
    let expected: Vec<(RequestId, u64)> =
        ids.iter().copied().zip((0..50).map(|n| n * 10)).collect();
    assert_eq!(seen, expected);
    Ok(())
}

// `make_fallible_requests`: `Ok` goes to the result callback, `Err` to the
// error callback as TaskError::Failed carrying the very error value (W7).
#[test]
fn make_fallible_requests_routes_ok_and_err() -> TestResult {
    let pool = ThreadPool::new(2);
    let (ok_tx, ok_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    let requests = make_fallible_requests(
        |s: &'static str| s.parse::<i32>(),
        ["1", "x", "3", "-4", ""],
        move |_, n| ok_tx.send(n).unwrap(),
        move |_, err: TaskError<ParseIntError>| err_tx.send(err).unwrap(),
    );
    assert_eq!(requests.len(), 5);
    for request in requests {
        pool.put_request(request)?;
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(5));
    let mut oks: Vec<i32> = ok_rx.try_iter().collect();
    oks.sort();
    assert_eq!(oks, [-4, 1, 3]);
    let mut errs: Vec<TaskError<ParseIntError>> = err_rx.try_iter().collect();
    errs.sort_by_key(|e| e.to_string());
    let expected = vec![
        TaskError::Failed("".parse::<i32>().unwrap_err()),
        TaskError::Failed("x".parse::<i32>().unwrap_err()),
    ];
    assert_eq!(errs, expected);
    Ok(())
}

// W7: a fallible request's `Err` goes only to its error callback as
// TaskError::Failed(value), its `Ok` only to its result callback, each
// tied to the right request id.
#[test]
fn fallible_requests_route_ok_and_err_to_separate_callbacks() -> TestResult {
    let pool = ThreadPool::new(3);
    let (tx, rx) = mpsc::channel();
    let mut expected = Vec::new();
    for i in 0..20u32 {
        let (tx_ok, tx_err) = (tx.clone(), tx.clone());
        let request = WorkRequest::fallible(
            |i: u32| {
                if i % 2 == 0 {
                    Ok(i)
                } else {
                    Err(format!("odd {i}"))
                }
            },
            i,
        )
        .on_result(move |id, v| tx_ok.send((id, Ok(v))).unwrap())
        .on_error(move |id, e| tx_err.send((id, Err(e))).unwrap());
        let id = pool.put_request(request)?;
        let outcome = if i % 2 == 0 {
            Ok(i)
        } else {
            Err(TaskError::Failed(format!("odd {i}")))
        };
        expected.push((id, outcome));
    }

    assert_eq!(pool.wait_timeout(HANG), Ok(20));
    let mut seen: Vec<_> = rx.try_iter().collect();
    seen.sort_by_key(|(id, _)| *id);
    expected.sort_by_key(|(id, _)| *id);
    assert_eq!(seen, expected);
    Ok(())
}

// W12: `wait` returns how many results it handled (Python returns None):
// Ok(0) at once when nothing is pending, failures count like results, and
// a second batch is counted on its own.
#[test]
fn wait_returns_the_number_of_results_handled() -> TestResult {
    let pool = ThreadPool::new(3);
    assert_eq!(pool.wait(), Ok(0));

    let errors = counter();
    for i in 0..12u32 {
        let errors = Arc::clone(&errors);
        pool.put_request(
            WorkRequest::fallible(|i: u32| if i < 7 { Ok(i) } else { Err(i) }, i).on_error(
                move |_, _| {
                    errors.fetch_add(1, Ordering::Relaxed);
                },
            ),
        )?;
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(12));
    assert_eq!(errors.load(Ordering::Relaxed), 5);
    assert_eq!(pool.wait_timeout(HANG), Ok(0));

    for i in 0..4u32 {
        pool.put_request(WorkRequest::new(|i: u32| i, i))?;
    }
    assert_eq!(pool.wait_timeout(HANG), Ok(4));
    Ok(())
}

/// A wait that times out inside a callback leaves a wake-up for the wait
/// running that callback; that one is suspended on this same thread, so
/// the token is not sent, also when a wait on another pool sits in
/// between. (It was: it filled a result queue of one, and a put blocked
/// in the same callback took it and sent it back for ever, ahead of the
/// stuck worker's result, at full CPU.)
#[test]
fn a_put_blocked_in_a_callback_does_not_pass_a_wake_up_around_for_ever() {
    for through_another_pool in [false, true] {
        let outcome = common::within("the blocked put in a callback", move || {
            let pool = common::one_worker_bounded(1, 1);
            let weak = pool.downgrade();
            let (tx, rx) = mpsc::channel();
            let body = move || {
                let p = weak.upgrade().unwrap();
                let (gate, latch) = common::gate();
                p.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                    .unwrap();
                gate.await_start();
                // The request queue is full now.
                p.put_request(WorkRequest::new(|x: u32| x, 3)).unwrap();
                let nested = p.wait_timeout(Duration::from_millis(10));
                // The worker ends the held request and gets stuck sending
                // its result; this put blocks until there is room.
                gate.open();
                let put = p.put_request(WorkRequest::new(|x: u32| x, 4)).map(|_| ());
                tx.send((nested.map(|_| ()), put)).unwrap();
            };
            let other = ThreadPool::new(1);
            pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
                if through_another_pool {
                    other
                        .put_request(WorkRequest::new(|x: u32| x, 2).on_result(move |_, _| body()))
                        .unwrap();
                    other.wait().unwrap();
                } else {
                    body();
                }
            }))
            .unwrap();
            let outer = pool.wait();
            (outer, rx.try_recv().unwrap(), pool.pending())
        });
        let (outer, (nested, put), pending) = outcome;
        let shape = if through_another_pool {
            "through another pool"
        } else {
            "direct"
        };
        assert!(
            matches!(nested, Err(WaitError::Timeout { .. })),
            "{shape}: {nested:?}"
        );
        assert!(put.is_ok(), "{shape}: {put:?}");
        assert!(outer.is_ok(), "{shape}: {outer:?}");
        assert_eq!(pending, 0, "{shape}");
    }
}

/// A wait running one of its callbacks is not blocked in the result
/// queue, so no wake token is sent for it: here a `poll_timeout` on the
/// main thread ends while another thread's wait is inside a callback that
/// waits for the main thread's next put. (A token was sent for it; it
/// filled the result queue of one, and the main thread's blocked put,
/// handling results to make room, took it and sent it back for ever, ahead
/// of the stuck worker's result.)
#[test]
fn a_wait_inside_its_callback_gets_no_wake_up_for_a_blocked_put_to_pass_around() {
    let (timed_out, put, waited, pending) =
        common::within("a put while another thread's wait runs a callback", || {
            let pool = common::one_worker_bounded(1, 1);
            let (inside_tx, inside_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
                inside_tx.send(()).unwrap();
                // Suspended here until the main thread's put went through.
                go_rx.recv().unwrap();
            }))
            .unwrap();
            let waiter = {
                let pool = pool.clone();
                thread::spawn(move || pool.wait())
            };
            inside_rx.recv().unwrap();
            let (gate, latch) = common::gate();
            pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .unwrap();
            gate.await_start();
            // The request queue is full now.
            pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
            let timed_out = pool.poll_timeout(Duration::from_millis(10));
            // The worker ends the held request and must find room for its
            // result; this put blocks until the request queue has room.
            gate.open();
            let put = pool
                .put_request(WorkRequest::new(|x: u32| x, 3))
                .map(|_| ());
            go_tx.send(()).unwrap();
            (timed_out, put, waiter.join().unwrap(), pool.pending())
        });
    assert!(
        matches!(timed_out, Err(PollError::Timeout { .. })),
        "{timed_out:?}"
    );
    assert!(put.is_ok(), "{put:?}");
    assert_eq!(
        waited,
        Ok(4),
        "the other thread's wait handles every result"
    );
    assert_eq!(pending, 0);
}

/// A put blocked on a full request queue handles results while it waits;
/// a `wait` in one of those callbacks cannot wait for the request that
/// put holds (counted pending, queued only once the callback returns): it
/// returns `HeldByCaller` instead of waiting for ever. The same holds for
/// the members a blocked `put_batch` has not queued yet.
#[test]
fn wait_inside_a_callback_run_by_a_blocked_put_returns_for_the_request_it_holds() {
    for batch in [false, true] {
        let (inner, pending, handled) = common::within("wait in a blocked put", move || {
            let pool = common::one_worker_bounded(1, 1);
            let weak = pool.downgrade();
            let (tx, rx) = mpsc::channel();
            let handled = Arc::new(AtomicUsize::new(0));
            let counted = Arc::clone(&handled);
            pool.put_request(WorkRequest::new(|x: u32| x, 0).on_result(move |_, _| {
                counted.fetch_add(1, Ordering::SeqCst);
                tx.send(weak.upgrade().unwrap().wait()).unwrap();
            }))
            .unwrap();
            // Nobody polls: the first result fills the result queue, the
            // worker gets stuck on the second, a third fills the request
            // queue, and a later put blocks and runs the first callback.
            let rest = (1..6u32).map(|i| {
                let counted = Arc::clone(&handled);
                WorkRequest::new(|x: u32| x, i).on_result(move |_, _| {
                    counted.fetch_add(1, Ordering::SeqCst);
                })
            });
            if batch {
                pool.put_batch(rest.collect::<Vec<_>>()).unwrap();
            } else {
                for request in rest {
                    pool.put_request(request).unwrap();
                }
            }
            pool.wait().unwrap();
            (
                rx.try_recv().unwrap(),
                pool.pending(),
                handled.load(Ordering::SeqCst),
            )
        });
        assert!(
            matches!(inner, Err(WaitError::HeldByCaller { .. })),
            "batch {batch}: {inner:?}"
        );
        assert_eq!((pending, handled), (0, 6), "batch {batch}");
    }
}

/// A `wait` inside a callback, while the results held below it are the
/// only ones left but one still running, is woken when another thread
/// waiting on a clone handles that one: it returns `HeldByCaller` rather
/// than wait for ever (a wake-up used to come only when nothing was left
/// pending).
#[test]
fn a_nested_wait_hears_when_another_waiter_handles_the_last_unheld_result() {
    let (inner, outer, pending) = common::within("nested wait beside a second waiter", || {
        let pool = ThreadPool::new(1);
        let (gate, latch) = common::gate();
        let gate = Arc::new(Mutex::new(Some(gate)));
        let (inner_tx, inner_rx) = mpsc::channel();
        let clone = pool.clone();
        let weak = pool.downgrade();
        let opener = Arc::clone(&gate);
        pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            let p = weak.upgrade().unwrap();
            // A second thread waits on a clone; the held request's gate
            // opens a little later, so that its result most likely goes to
            // whichever of the two waits is blocked (either must end well).
            let second = {
                let clone = clone.clone();
                thread::spawn(move || clone.wait())
            };
            let gate = opener.lock().unwrap().take().unwrap();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                gate.open();
            });
            inner_tx.send((p.wait(), second)).unwrap();
        }))
        .unwrap();
        pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        // The first two results are queued once the third request runs:
        // the next wait takes them together.
        gate.lock().unwrap().as_ref().unwrap().await_start();
        let outer = pool.wait();
        let (inner, second) = inner_rx.try_recv().unwrap();
        // The second waiter returns once the held result is handled too.
        assert!(second.join().unwrap().is_ok());
        (inner, outer, pool.pending())
    });
    // The second request's result, taken with the first's, is still held.
    assert_eq!(inner, Err(WaitError::HeldByCaller { pending: 1 }));
    assert!(outer.is_ok(), "{outer:?}");
    assert_eq!(pending, 0);
}

/// A `wait` inside a callback, with a result held below it, when the last
/// worker leaves and requests are still queued: it returns
/// `NoWorkersAvailable` (the held result is not among the stranded), and
/// so does the outer wait once it has handled the held one. (The nested
/// wait counted the held result as one that should be queued, never found
/// it there, and waited for ever.)
#[test]
fn a_nested_wait_hears_no_workers_when_the_rest_is_stranded() {
    let (nested, outer) = within("a nested wait with no worker left", || {
        let pool = ThreadPool::new(1);
        let (inside_tx, inside) = mpsc::channel::<()>();
        let nested = Arc::new(Mutex::new(None));
        let (p, seen) = (pool.clone(), Arc::clone(&nested));
        pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            inside_tx.send(()).unwrap();
            *seen.lock().unwrap() = Some(p.wait());
        }))
        .unwrap();
        pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        // When this starts, both results above are in the result queue:
        // the outer wait takes them in one run.
        let (gate, latch) = gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        gate.await_start();
        for i in 3..5u32 {
            pool.put_request(WorkRequest::new(|x: u32| x, i)).unwrap();
        }
        let leaver = {
            let pool = pool.clone();
            thread::spawn(move || {
                inside.recv().unwrap();
                // The only worker leaves after the held request, taking
                // nothing more: two requests stay queued.
                assert_eq!(pool.dismiss_workers(1), 1);
                gate.open();
            })
        };
        let outer = pool.wait();
        leaver.join().unwrap();
        let nested = nested.lock().unwrap().take();
        (nested, outer)
    });
    assert_eq!(
        nested,
        Some(Err(WaitError::NoWorkersAvailable { pending: 3 })),
        "the held result and the two queued"
    );
    assert_eq!(outer, Err(WaitError::NoWorkersAvailable { pending: 2 }));
}

/// A result callback that counts its calls in `called`.
fn counting<T>(called: &Arc<AtomicUsize>) -> impl FnOnce(RequestId, T) + Send + 'static {
    let called = Arc::clone(called);
    move |_, _| {
        called.fetch_add(1, Ordering::SeqCst);
    }
}

/// Two threads wait on one handle. One of them takes a run of results and
/// the first one's callback waits on the handle too, nested, until only
/// the held results are left; the other waiter handles the last result in
/// flight. The nested wait must hear that fall and return `HeldByCaller`,
/// and both outer waits then finish. (The fall used to be told by a wake
/// token through the result queue, which the other waiter could take and
/// keep: the nested wait slept on, and so did both waits, in most runs of
/// a thousand rounds. Nested waits now have a wake-up of their own.)
#[test]
fn a_nested_wait_hears_the_fall_when_another_waiter_handles_the_last_result() {
    const ROUNDS: usize = 1000;
    let nested = within("rounds of a nested wait beside another waiter", || {
        // One worker: what it delivers arrives in the order put.
        let pool = ThreadPool::new(1);
        let mut nested = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let (seen, called) = (Arc::new(Mutex::new(None)), counter());
            let (p, s, c) = (pool.clone(), Arc::clone(&seen), Arc::clone(&called));
            // The last request runs once the first one's callback has
            // begun: it is never in the run that callback's wait holds.
            let (go_tx, go) = mpsc::channel::<()>();
            pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
                c.fetch_add(1, Ordering::SeqCst);
                drop(go_tx);
                *s.lock().unwrap() = Some(p.wait());
            }))
            .unwrap();
            pool.put_request(WorkRequest::new(|x: u32| x, 2).on_result(counting(&called)))
                .unwrap();
            // Runs once the two above are in the result queue: whichever
            // waiter takes the queue first takes them in one run.
            let (delivered_tx, delivered) = mpsc::channel::<()>();
            pool.put_request(
                WorkRequest::new(move |_: ()| delivered_tx.send(()).unwrap(), ())
                    .on_result(counting(&called)),
            )
            .unwrap();
            delivered.recv().unwrap();
            pool.put_request(
                WorkRequest::new(move |_: ()| go.recv().unwrap_or(()), ())
                    .on_result(counting(&called)),
            )
            .unwrap();
            let start = Arc::new(std::sync::Barrier::new(2));
            let other = {
                let (pool, start) = (pool.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    pool.wait()
                })
            };
            start.wait();
            let mine = pool.wait();
            let theirs = other.join().unwrap();
            assert!(mine.is_ok() && theirs.is_ok(), "{mine:?} {theirs:?}");
            assert_eq!(called.load(Ordering::SeqCst), 4, "each callback once");
            assert_eq!(pool.pending(), 0);
            nested.push(seen.lock().unwrap().take());
        }
        nested
    });
    for seen in nested {
        assert!(
            // Held: the second result, and the third if it had arrived
            // when the run was taken.
            matches!(seen, Some(Err(WaitError::HeldByCaller { pending: 1 | 2 }))),
            "the nested wait ends once only held results are left: {seen:?}"
        );
    }
}

/// A wait on handle A inside a callback of handle B, itself run by a wait
/// on A that holds another result of A: the innermost wait must still see
/// that result held, and return `HeldByCaller` rather than wait for it.
/// (Only the innermost run on a thread was recorded, here B's, which hid
/// A's: the wait on A waited for ever for the result its own thread held.)
#[test]
fn a_wait_on_a_inside_a_callback_of_b_inside_a_callback_of_a_sees_what_a_holds() {
    let (inner, middle, outer) = within("A in B in A", || {
        let a = ThreadPool::new(1);
        let b = a.new_handle();
        let inner = Arc::new(Mutex::new(None));
        let middle = Arc::new(Mutex::new(None));
        // Two results of B in its queue, so that B's wait takes them in one
        // run: the first one's callback waits on A.
        let (a2, seen) = (a.clone(), Arc::clone(&inner));
        b.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            *seen.lock().unwrap() = Some(a2.wait());
        }))
        .unwrap();
        b.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        // Two results of A, taken in one run by A's wait below: the first
        // one's callback waits on B.
        let (b2, seen) = (b.clone(), Arc::clone(&middle));
        a.put_request(WorkRequest::new(|x: u32| x, 3).on_result(move |_, _| {
            *seen.lock().unwrap() = Some(b2.wait());
        }))
        .unwrap();
        a.put_request(WorkRequest::new(|x: u32| x, 4)).unwrap();
        // One worker runs them in order: once this one ran, all four
        // results are in their queues.
        let (done_tx, done) = mpsc::channel::<()>();
        a.new_handle()
            .put_request(WorkRequest::new(move |_: ()| done_tx.send(()).unwrap(), ()))
            .unwrap();
        done.recv().unwrap();
        let outer = a.wait();
        let inner = inner.lock().unwrap().take();
        let middle = middle.lock().unwrap().take();
        (inner, middle, outer)
    });
    assert_eq!(inner, Some(Err(WaitError::HeldByCaller { pending: 1 })));
    assert_eq!(middle, Some(Ok(2)), "B's wait handles both of B's results");
    assert_eq!(outer, Ok(2));
}

/// Two threads wait on one handle, and each holds a run of two results
/// whose first callback waits on the handle, nested: each nested wait's
/// `pending` is the other thread's held result and its own. Each must
/// return `HeldByCaller` (the results are held by callers, on this thread
/// or on another), and both outer waits then finish. (Each counted only
/// its own thread's held results, and they waited for each other for
/// ever.)
#[test]
fn nested_waits_on_two_threads_do_not_wait_for_each_others_held_results() {
    let (first, second, outer, other) = within("two nested waits", || {
        // One worker: what it delivers arrives in the order put, and a
        // request of another handle runs after everything put before it.
        let pool = ThreadPool::new(1);
        let markers = pool.new_handle();
        let delivered = {
            let markers = markers.clone();
            move || {
                let (tx, rx) = mpsc::channel::<()>();
                markers
                    .put_request(WorkRequest::new(move |_: ()| tx.send(()).unwrap(), ()))
                    .unwrap();
                rx.recv().unwrap();
            }
        };
        let (first, second) = (Arc::new(Mutex::new(None)), Arc::new(Mutex::new(None)));
        let (start_tx, start) = mpsc::channel::<()>();
        let (inside_tx, inside) = mpsc::channel::<()>();
        let (p, seen, wait_for_c_and_d) = (pool.clone(), Arc::clone(&first), delivered.clone());
        let seen_second = Arc::clone(&second);
        // a: taken with b by this thread; its callback puts c and d, has
        // the other thread take them, and waits on the handle once the
        // other thread is inside c's callback.
        pool.put_request(WorkRequest::new(|x: u32| x, 1).on_result(move |_, _| {
            let q = p.clone();
            p.put_request(WorkRequest::new(|x: u32| x, 3).on_result(move |_, _| {
                inside_tx.send(()).unwrap();
                *seen_second.lock().unwrap() = Some(q.wait());
            }))
            .unwrap();
            p.put_request(WorkRequest::new(|x: u32| x, 4)).unwrap();
            wait_for_c_and_d();
            start_tx.send(()).unwrap();
            inside.recv().unwrap();
            *seen.lock().unwrap() = Some(p.wait());
        }))
        .unwrap();
        pool.put_request(WorkRequest::new(|x: u32| x, 2)).unwrap();
        delivered();
        let other = {
            let pool = pool.clone();
            thread::spawn(move || {
                start.recv().unwrap();
                pool.wait()
            })
        };
        let outer = pool.wait();
        let other = other.join().unwrap();
        let first = first.lock().unwrap().take();
        let second = second.lock().unwrap().take();
        (first, second, outer, other)
    });
    for nested in [first, second] {
        assert!(
            matches!(
                nested,
                Some(Err(WaitError::HeldByCaller { pending: 1 | 2 }))
            ),
            "{nested:?}"
        );
    }
    assert_eq!(outer, Ok(2), "a and b");
    assert_eq!(other, Ok(2), "c and d");
}
