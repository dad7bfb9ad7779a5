//! Many inputs through one function: `ThreadPool::as_completed` (outcomes
//! as they end, at most `limit` in flight), `imap` (in input order), their
//! `_fallible` forms, and `map`; what dropping them half-way cancels, and
//! how they share a handle with callback requests and with a shutdown.
//!
//! Every step that must come before another is forced by a gate or a
//! channel; timeouts only turn a hang into a failure. On a pool of one
//! worker, requests start in the order they were put (FIFO).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::Poll;
use std::thread;

use callpool::{AsCompleted, Completions, InOrder, TaskError, ThreadPool, Ticket, WorkRequest};
use common::one_way::{Gate, OpenOnDrop};
use common::{assert_each_once, counter, hit_counters, within, within_here, Dropped, HANG};

const DELIBERATE: &str = "windows: deliberate panic";

fn quiet_deliberate_panics() {
    common::hide_panics_starting_with(DELIBERATE);
}

/// Counts the callables running at once, and the most ever seen.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A window's function body for the limit tests: the first `k` inputs
/// wait for each other (so exactly `k` run at once at the start), the
/// rest are busy a while; counts how many run at once.
struct Crowd {
    running: Concurrency,
    first: Barrier,
    k: usize,
}

impl Crowd {
    fn new(k: usize) -> Arc<Self> {
        Arc::new(Crowd {
            running: Concurrency::default(),
            first: Barrier::new(k),
            k,
        })
    }

    fn run(&self, i: usize) {
        self.running.enter();
        if i < self.k {
            self.first.wait();
        } else {
            busy_for(i);
        }
        self.running.leave();
    }

    /// The most that ran at once.
    fn max(&self) -> usize {
        self.running.max()
    }
}

fn busy_for(i: usize) {
    for _ in 0..(i % 5) * 20 {
        thread::yield_now();
    }
}

fn load(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}

fn loads(counters: &[AtomicUsize]) -> Vec<usize> {
    counters.iter().map(load).collect()
}

/// A `Sender` an `Fn + Sync` callable can send on.
type SharedSender<T> = Arc<Mutex<mpsc::Sender<T>>>;

fn shared_channel<T>() -> (SharedSender<T>, mpsc::Receiver<T>) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(Mutex::new(tx)), rx)
}

// ---------------------------------------------------------------------------
// as_completed.
// ---------------------------------------------------------------------------

/// 8 workers, limit 3, 200 inputs: never more than 3 callables at once
/// (and exactly 3 at the start: the first three wait for each other), never
/// more than 3 inputs pulled ahead of the outcomes handed back, and every
/// input back once with its own output.
#[test]
fn as_completed_never_runs_more_than_limit_at_once() {
    const K: usize = 3;
    const N: usize = 200;
    within("as_completed with a limit", || {
        let pool = ThreadPool::new(8);
        let crowd = Crowd::new(K);
        let pulled = counter();
        let (c, p) = (Arc::clone(&crowd), Arc::clone(&pulled));
        let inputs = (0..N).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let mut it = pool.as_completed(inputs, K, move |&i: &usize| {
            c.run(i);
            (i, i * i)
        });
        assert_eq!(load(&pulled), 0, "pulled before the first next");
        let hits = hit_counters(N);
        let mut yielded = 0;
        for (input, outcome) in &mut it {
            yielded += 1;
            assert_eq!(outcome, Ok((input, input * input)));
            hits[input].fetch_add(1, Ordering::SeqCst);
            assert_eq!(
                load(&pulled),
                N.min(yielded + K),
                "after {yielded} outcomes"
            );
        }
        assert_eq!(yielded, N);
        assert_each_once("as_completed items", &hits);
        assert_eq!(crowd.max(), K);
        assert_eq!(pool.pending(), 0);
    });
}

/// An endless iterator of inputs: after each outcome, exactly `limit`
/// more inputs have been pulled than outcomes handed back.
#[test]
fn as_completed_over_endless_inputs_pulls_only_limit_ahead() {
    const K: usize = 4;
    const N: usize = 300;
    within("as_completed over endless inputs", || {
        let pool = ThreadPool::new(3);
        let pulled = counter();
        let p = Arc::clone(&pulled);
        let inputs = (0u64..).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let mut it = pool.as_completed(inputs, K, |&i: &u64| i * 2);
        let mut seen = HashSet::new();
        for n in 1..=N {
            let (input, outcome) = it.next().expect("endless inputs ended");
            assert_eq!(outcome, Ok(input * 2));
            assert!(seen.insert(input), "input {input} came back twice");
            assert_eq!(load(&pulled), n + K, "after {n} outcomes");
        }
        // What came back is among what was pulled.
        assert!(seen.iter().all(|&i| i < (N + K) as u64));
        drop(it);
        assert_eq!(load(&pulled), N + K);
    });
}

/// A window's inputs and function under watch: counts the inputs pulled
/// and each input's runs, and holds chosen inputs at a gate, telling which
/// started, until the gate opens (or the fixture is dropped).
struct Watched {
    gate: Arc<Gate>,
    _open: OpenOnDrop,
    started_tx: SharedSender<usize>,
    started: mpsc::Receiver<usize>,
    ran: Arc<Vec<AtomicUsize>>,
    pulled: Arc<AtomicUsize>,
    n: usize,
}

impl Watched {
    fn new(n: usize) -> Self {
        let gate = Arc::new(Gate::default());
        let (started_tx, started) = shared_channel();
        Watched {
            _open: OpenOnDrop(Arc::clone(&gate)),
            gate,
            started_tx,
            started,
            ran: hit_counters(n),
            pulled: counter(),
            n,
        }
    }

    /// The inputs `0..n`, counted as they are pulled.
    fn inputs(&self) -> Inputs {
        let pulled = Arc::clone(&self.pulled);
        Box::new((0..self.n).inspect(move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        }))
    }

    /// For the window's function to call on its input: counts the run,
    /// and holds the inputs in `held` until the gate opens.
    fn hold(&self, held: &'static [usize]) -> Hold {
        let (gate, ran, started) = (
            Arc::clone(&self.gate),
            Arc::clone(&self.ran),
            Arc::clone(&self.started_tx),
        );
        Arc::new(move |i| {
            ran[i].fetch_add(1, Ordering::SeqCst);
            if held.contains(&i) {
                started.lock().unwrap().send(i).unwrap();
                gate.pass();
            }
        })
    }

    /// Waits until `k` held inputs have started; which, in order.
    fn await_held(&self, k: usize) -> Vec<usize> {
        let mut held: Vec<usize> = (0..k)
            .map(|_| {
                self.started
                    .recv_timeout(HANG)
                    .expect("a held request never started")
            })
            .collect();
        held.sort_unstable();
        held
    }

    fn pulled(&self) -> usize {
        load(&self.pulled)
    }

    fn runs(&self) -> Vec<usize> {
        loads(&self.ran)
    }
}

/// The inputs of a watched window.
type Inputs = Box<dyn Iterator<Item = usize>>;

/// What the function of a watched window calls on its input.
type Hold = Arc<dyn Fn(usize) + Send + Sync>;

/// An as-completed window over inputs 0..10 with limit 4 on two workers,
/// made by `window`, dropped with two requests running (held) and two
/// queued: the drop does not wait for the running ones, the queued ones
/// never run, the running ones run once, nothing more is pulled, and the
/// handle has nothing pending. `first` is input 0's outcome.
fn drop_as_completed_half_way<O, It>(
    pool: &ThreadPool,
    window: impl FnOnce(Inputs, Hold) -> It,
    first: (usize, O),
) where
    O: PartialEq + std::fmt::Debug,
    It: Iterator<Item = (usize, O)>,
{
    let watched = Watched::new(10);
    let mut it = window(watched.inputs(), watched.hold(&[1, 2]));
    // 0..4 pulled; 0 ends first (1 and 2 are held), and 4 is pulled
    // before 0 is handed back.
    assert_eq!(it.next(), Some(first));
    assert_eq!(watched.await_held(2), [1, 2]);
    assert_eq!(watched.pulled(), 5);
    // Both workers held: 3 and 4 are queued.
    assert_eq!(pool.queued(), 2);

    within_here("dropping the iterator", || drop(it));
    assert_eq!(pool.pending(), 0);
    // Cancelled, they stay queued until a worker reaches them.
    assert_eq!(pool.queued(), 2);
    watched.gate.open();
    pool.new_handle().shutdown().unwrap();
    assert_eq!(watched.runs(), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(watched.pulled(), 5);
}

#[test]
fn dropping_as_completed_half_way_cancels_the_queued_and_leaves_the_running() {
    within("as_completed dropped half-way", || {
        let pool = ThreadPool::new(2);
        drop_as_completed_half_way(
            &pool,
            |inputs, hold| {
                pool.as_completed(inputs, 4, move |&i: &usize| {
                    hold(i);
                    i
                })
            },
            (0, Ok(0)),
        );
    });
}

/// One handle, callback requests put between as_completed's steps: each
/// callback runs once, on `wait`, with its own value; each as_completed
/// item comes once, with its own; `wait` counts only the callback requests.
#[test]
fn as_completed_beside_callback_requests_on_one_handle() {
    const N: usize = 100;
    const OFFSET: usize = 1_000_000;
    within("as_completed beside callbacks", || {
        let pool = ThreadPool::new(4);
        let callbacks = hit_counters(N);
        let items = hit_counters(N);
        let mut it = pool.as_completed(0..N, 3, |&i: &usize| i + OFFSET);
        for i in 0..N {
            let c = Arc::clone(&callbacks);
            pool.put_request(WorkRequest::new(|i: usize| i, i).on_result(move |_, v| {
                assert!(v < N, "a callback got an as_completed value: {v}");
                c[v].fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
            let (input, outcome) = it.next().expect("as_completed ended early");
            assert_eq!(outcome, Ok(input + OFFSET));
            items[input].fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(it.next(), None);
        assert_each_once("as_completed items", &items);
        // No callback has run: nothing polled this handle.
        assert_eq!(loads(&callbacks), vec![0; N]);
        assert_eq!(pool.pending(), N);
        drop(it);
        assert_eq!(pool.wait_timeout(HANG), Ok(N));
        assert_each_once("callbacks", &callbacks);
        assert_eq!(pool.pending(), 0);
    });
}

#[test]
fn a_panicking_function_comes_back_as_panicked_with_its_input() {
    quiet_deliberate_panics();
    within("as_completed with a panicking function", || {
        let pool = ThreadPool::new(2);
        let mut seen: Vec<(String, Result<usize, TaskError>)> = pool
            .as_completed((0..10).map(|i| format!("input {i}")), 3, |s: &String| {
                if s == "input 3" {
                    panic!("{DELIBERATE} on {s}");
                }
                s.len()
            })
            .collect();
        seen.sort_by_key(|(s, _)| s[6..].parse::<usize>().unwrap());
        let expected: Vec<(String, Result<usize, TaskError>)> = (0..10)
            .map(|i| {
                let s = format!("input {i}");
                let outcome = if i == 3 {
                    Err(TaskError::Panicked(format!("{DELIBERATE} on input 3")))
                } else {
                    Ok(s.len())
                };
                (s, outcome)
            })
            .collect();
        assert_eq!(seen, expected);
        // The workers survived.
        assert_eq!(pool.workers(), 2);
    });
}

/// Another handle shuts the pool down now while as_completed has one
/// request running (held) and three queued: the queued ones come back
/// `Cancelled`, the running one with its value; the next input pulled is
/// refused by the closed pool and comes back `Cancelled` too, and then the
/// iteration ends. Every pulled input comes back exactly once.
#[test]
fn shutdown_now_from_another_handle_ends_as_completed() {
    const K: usize = 4;
    within("as_completed across shutdown_now", || {
        let pool = ThreadPool::new(1);
        let other = pool.new_handle();
        let watched = Watched::new(64);
        let hold = watched.hold(&[1]);
        let mut it = pool.as_completed(watched.inputs(), K, move |&i: &usize| {
            hold(i);
            i * 10
        });
        assert_eq!(it.next(), Some((0, Ok(0))));
        assert_eq!(watched.await_held(1), [1]);
        // 1 runs, held; 2, 3 and 4 are queued.
        assert_eq!(watched.pulled(), 5);
        assert_eq!(pool.queued(), 3);

        assert!(other.shutdown_now().is_empty());
        watched.gate.open();
        let mut rest: Vec<(usize, Result<usize, TaskError>)> = it.collect();
        rest.sort_by_key(|&(i, _)| i);
        // One input pulled after the shutdown: its put is refused.
        assert_eq!(watched.pulled(), 6);
        assert_eq!(
            rest,
            [
                (1, Ok(10)),
                (2, Err(TaskError::Cancelled)),
                (3, Err(TaskError::Cancelled)),
                (4, Err(TaskError::Cancelled)),
                (5, Err(TaskError::Cancelled)),
            ]
        );
        let mut expected_runs = vec![0; 64];
        expected_runs[0] = 1;
        expected_runs[1] = 1;
        assert_eq!(watched.runs(), expected_runs);
        assert_eq!(pool.pending(), 0);
    });
}

// ---------------------------------------------------------------------------
// imap and map.
// ---------------------------------------------------------------------------

/// Input 0 is held until inputs 1, 2 ended: imap still yields 0 first and
/// then the rest in input order. While it waits for 0, exactly `limit`
/// inputs are pulled; never more than `limit` callables run at once.
#[test]
fn imap_yields_in_input_order_with_at_most_limit_in_flight() {
    const K: usize = 3;
    const N: usize = 40;
    within("imap in input order", || {
        let pool = ThreadPool::new(8);
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let (ended_tx, ended) = shared_channel();
        let running = Arc::new(Concurrency::default());
        let pulled = counter();
        let (g, r, p) = (Arc::clone(&gate), Arc::clone(&running), Arc::clone(&pulled));
        let inputs = (0..N).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let mut it = pool.imap(inputs, K, move |i: usize| {
            r.enter();
            if i == 0 {
                g.pass();
            } else {
                busy_for(i);
            }
            r.leave();
            if i < K {
                ended_tx.lock().unwrap().send(i).unwrap();
            }
            i * 3
        });
        let (first, ended) = thread::scope(|s| {
            let (pulled, gate) = (&pulled, &gate);
            let opener = s.spawn(move || {
                // Opens the gate even if an assertion below fails, so that
                // the failure is reported rather than `next` left waiting.
                let _open = OpenOnDrop(Arc::clone(gate));
                // The later inputs of the first window end first.
                let mut first_ended: Vec<usize> = (1..K)
                    .map(|_| ended.recv_timeout(HANG).expect("an input never ended"))
                    .collect();
                first_ended.sort_unstable();
                assert_eq!(first_ended, (1..K).collect::<Vec<_>>());
                // imap waits for input 0 with exactly K in flight.
                assert_eq!(load(pulled), K);
                gate.open();
                ended
            });
            let first = it.next();
            (first, opener.join().unwrap())
        });
        assert_eq!(first, Some(Ok(0)));
        assert_eq!(ended.recv_timeout(HANG), Ok(0));
        let mut yielded = 1;
        assert_eq!(load(&pulled), K);
        for (i, outcome) in (&mut it).enumerate() {
            assert_eq!(outcome, Ok((i + 1) * 3));
            yielded += 1;
            assert_eq!(load(&pulled), N.min(yielded + K - 1), "after {yielded}");
        }
        assert_eq!(yielded, N);
        assert!(
            running.max() <= K,
            "{} callables ran at once",
            running.max()
        );
    });
}

#[test]
fn map_returns_outcomes_in_input_order() {
    quiet_deliberate_panics();
    within("map over 1,000 inputs", || {
        let pool = ThreadPool::new(4);
        let outcomes = pool.map(0..1_000, |i: usize| {
            // Later inputs often end before earlier ones.
            busy_for(1_000 - i);
            if i == 500 {
                panic!("{DELIBERATE} on 500");
            }
            i * 2
        });
        let expected: Vec<Result<usize, TaskError>> = (0..1_000)
            .map(|i| {
                if i == 500 {
                    Err(TaskError::Panicked(format!("{DELIBERATE} on 500")))
                } else {
                    Ok(i * 2)
                }
            })
            .collect();
        assert_eq!(outcomes, expected);
        assert_eq!(pool.pending(), 0);
    });
}

/// `map` puts its inputs in chunks (about four per worker, at most 1,024
/// inputs each): 100,000 inputs on 2 workers are 98 requests of up to
/// 1,024, and still each input runs exactly once, its outcome in its place.
#[test]
fn map_puts_many_inputs_as_few_requests_each_input_once() {
    const N: usize = 100_000;
    within("map over 100,000 inputs", || {
        let pool = ThreadPool::new(2);
        let hits = hit_counters(N);
        let seen = Arc::clone(&hits);
        let outcomes = pool.map(0..N, move |i: usize| {
            seen[i].fetch_add(1, Ordering::SeqCst);
            i * 3
        });
        assert_each_once("map's inputs", &hits);
        assert_eq!(outcomes.len(), N);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            assert_eq!(outcome, Ok(i * 3), "outcome {i}");
        }
        // The worker counts a request just after its ticket has heard, so
        // the last chunk's count may trail `map` by a moment.
        let chunks = N.div_ceil(1_024) as u64;
        while pool.stats().completed < chunks {
            thread::yield_now();
        }
        assert_eq!(
            pool.stats().completed,
            chunks,
            "requests run for {N} inputs"
        );
    });
}

/// A few inputs (no more than four per worker) are one request each, so
/// they run side by side: four inputs that each wait for all four to have
/// started end only if four workers run them at once.
#[test]
fn map_runs_a_few_inputs_side_by_side() {
    within("map over 4 inputs meeting at a barrier", || {
        let pool = ThreadPool::new(4);
        let barrier = Arc::new(Barrier::new(4));
        let outcomes = pool.map(0..4, move |i: usize| {
            barrier.wait();
            i
        });
        assert_eq!(outcomes, [Ok(0), Ok(1), Ok(2), Ok(3)]);
    });
}

/// `map` called inside a request on a pool of one worker: waiting there
/// for its chunks would never end (that worker is the one to run them),
/// so it runs the inputs in place, on that worker, and returns.
#[test]
fn map_inside_a_request_on_one_worker_runs_in_place() {
    within("map on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.new_handle();
        let (tx, rx) = mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |_: ()| {
                let me = thread::current().id();
                let outcomes = inner.map(0..10_000, move |n: u64| {
                    (n * n, thread::current().id() == me)
                });
                tx.send(outcomes).unwrap();
            },
            (),
        ))
        .unwrap();
        let outcomes = rx
            .recv_timeout(HANG)
            .expect("map inside a request never returned");
        assert_eq!(outcomes.len(), 10_000);
        for (n, outcome) in outcomes.into_iter().enumerate() {
            let n = n as u64;
            assert_eq!(outcome, Ok((n * n, true)), "input {n}");
        }
        pool.wait().unwrap();
    });
}

/// `map_fallible`: each input's `Err` is its own `Failed`, a panic its own
/// `Panicked`, in input order across many chunks; on a shut-down pool
/// every input is `Cancelled`, none run.
#[test]
fn map_fallible_gives_each_input_its_own_typed_end() {
    quiet_deliberate_panics();
    within("map_fallible", || {
        let pool = ThreadPool::new(2);
        let outcomes = pool.map_fallible(0..10_000usize, |i| match i % 1_000 {
            7 => Err(format!("no {i}")),
            9 => panic!("{DELIBERATE} on {i}"),
            _ => Ok(i * 3),
        });
        let expected: Vec<Result<usize, TaskError<String>>> = (0..10_000)
            .map(|i| match i % 1_000 {
                7 => Err(TaskError::Failed(format!("no {i}"))),
                9 => Err(TaskError::Panicked(format!("{DELIBERATE} on {i}"))),
                _ => Ok(i * 3),
            })
            .collect();
        assert_eq!(outcomes, expected);

        let other = pool.new_handle();
        pool.shutdown().expect("shutdown");
        let ran = counter();
        let seen = Arc::clone(&ran);
        let outcomes = other.map_fallible(0..100usize, move |i| {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(i)
        });
        assert_eq!(outcomes, vec![Err(TaskError::Cancelled); 100]);
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

/// On a pool that no longer accepts requests, `map` still gives one
/// outcome per input, each `Cancelled`, and runs none of them.
#[test]
fn map_on_a_shut_down_pool_cancels_every_input() {
    within("map after shutdown", || {
        let pool = ThreadPool::new(2);
        let other = pool.new_handle();
        pool.shutdown().expect("shutdown");
        let ran = counter();
        let seen = Arc::clone(&ran);
        let outcomes = other.map(0..5_000, move |i: usize| {
            seen.fetch_add(1, Ordering::SeqCst);
            i
        });
        assert_eq!(outcomes.len(), 5_000);
        assert!(outcomes.iter().all(|o| *o == Err(TaskError::Cancelled)));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    });
}

/// `map` on a pool with no worker and a bounded queue: the chunks fill
/// the queue, the next put finds it full with no worker to empty it, and
/// `map` waits for its oldest chunk instead of cancelling the rest; once
/// a worker is added, every input runs, each once. (A user's trial: 4 of
/// 10 inputs came back `Cancelled` on a pool that was still open.)
#[test]
fn map_on_a_bounded_queue_with_no_worker_waits_for_one() {
    within("map waiting for a worker", || {
        for fallible in [false, true] {
            let pool = ThreadPool::builder()
                .workers(0)
                .queue_capacity(2)
                .build()
                .unwrap();
            let adder = {
                let pool = pool.new_handle();
                thread::spawn(move || {
                    // The queue full of map's chunks; a little more for
                    // its next put to find no worker (the outcome does not
                    // depend on it).
                    while pool.queued() < 2 {
                        thread::sleep(std::time::Duration::from_millis(1));
                    }
                    thread::sleep(std::time::Duration::from_millis(20));
                    pool.create_workers(1).unwrap();
                })
            };
            let ran = counter();
            let seen = Arc::clone(&ran);
            let f = move |i: u32| {
                seen.fetch_add(1, Ordering::SeqCst);
                i * 10
            };
            // Each outcome's value, or its error's text.
            let outcomes: Vec<Result<u32, String>> = if fallible {
                pool.map_fallible(0..10u32, move |i| Ok::<_, String>(f(i)))
                    .into_iter()
                    .map(|o| o.map_err(|e| e.to_string()))
                    .collect()
            } else {
                pool.map(0..10u32, f)
                    .into_iter()
                    .map(|o| o.map_err(|e| e.to_string()))
                    .collect()
            };
            adder.join().unwrap();
            let expected: Vec<_> = (0..10u32).map(|i| Ok(i * 10)).collect();
            assert_eq!(outcomes, expected, "fallible: {fallible}");
            assert_eq!(load(&ran), 10, "fallible: {fallible}");
            assert!(!pool.is_shut_down());
        }
    });
}

/// A pool with no worker and a queue of one, full of the request of the
/// other handle returned beside it.
fn full_of_another_handles_request() -> (ThreadPool, ThreadPool) {
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(1)
        .build()
        .unwrap();
    let other = pool.new_handle();
    other.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
    (pool, other)
}

/// With none of its own chunks queued (the full queue holds another
/// handle's request) and no worker, nothing would tell `map` that a
/// worker came: its inputs are `Cancelled`, as a window's are, and none
/// runs.
#[test]
fn map_with_the_queue_full_of_other_requests_and_no_worker_cancels() {
    within("map behind another handle's request, no worker", || {
        let (pool, other) = full_of_another_handles_request();
        let ran = counter();
        let seen = Arc::clone(&ran);
        let outcomes = pool.map(0..3u32, move |i| {
            seen.fetch_add(1, Ordering::SeqCst);
            i
        });
        assert_eq!(outcomes, vec![Err(TaskError::Cancelled); 3]);
        assert_eq!(load(&ran), 0);
        assert_eq!(other.shutdown_now().len(), 1);
    });
}

/// imap dropped after its first outcome, with input 1 running (held) and
/// 2, 3 queued: the queued ones never run, nothing more is pulled.
#[test]
fn dropping_imap_half_way_cancels_the_rest() {
    imap_dropped_half_way(false);
}

/// Takes imap's first outcome (by `next`, or through a frame loop), then
/// drops it with input 1 running (held) and 2, 3 queued: the queued ones
/// never run, nothing more is pulled.
fn imap_dropped_half_way(by_frames: bool) {
    const K: usize = 4;
    within("imap dropped half-way", move || {
        let pool = ThreadPool::new(1);
        let watched = Watched::new(10);
        let hold = watched.hold(&[1]);
        let it = pool.imap(watched.inputs(), K, move |i: usize| {
            hold(i);
            i
        });
        let mut it: Box<dyn Iterator<Item = Result<usize, TaskError>> + '_> = if by_frames {
            Box::new(Frames(it))
        } else {
            Box::new(it)
        };
        assert_eq!(it.next(), Some(Ok(0)));
        assert_eq!(watched.await_held(1), [1]);
        assert_eq!(watched.pulled(), K);
        assert_eq!(pool.queued(), 2);
        within_here("dropping imap", || drop(it));
        assert_eq!(pool.pending(), 0);
        watched.gate.open();
        pool.shutdown().unwrap();
        assert_eq!(watched.runs(), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(watched.pulled(), K);
    });
}

/// A panic from the inputs while `as_completed` pulls the next one, after
/// it has taken an outcome to return: the outcome comes with the next
/// call, and every input pulled before and after comes back once. (It was
/// dropped: input 2 ran and was never yielded.)
#[test]
fn as_completed_keeps_an_outcome_when_pulling_the_next_input_panics() {
    quiet_deliberate_panics();
    let pool = ThreadPool::new(1);
    let inputs = (0..6u32).inspect(|&i| {
        if i == 3 {
            panic!("{DELIBERATE}: the inputs");
        }
    });
    let mut completions = pool.as_completed(inputs, 1, |i: &u32| i * 10);
    let mut seen = Vec::new();
    let mut panics = 0;
    within_here("as_completed after a panicking input", || loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| completions.next())) {
            Ok(Some((input, outcome))) => {
                assert_eq!(outcome, Ok(input * 10));
                seen.push(input);
            }
            Ok(None) => break,
            Err(_) => panics += 1,
        }
    });
    assert_eq!(panics, 1);
    assert_eq!(seen, [0, 1, 2, 4, 5], "each input that ran, once, in order");
}

/// A worker stuck on the handle's full result queue behind a callback that
/// panics, and a put of `as_completed` or `imap` blocked on the full
/// request queue, which runs that callback to make room: the panic passes
/// out of `next`, and the input whose put it interrupted is put on the
/// next call. Every input runs once and comes back `Ok`, none as
/// cancelled (the request was dropped, and came back as `Cancelled`
/// though the pool was open and it never ran).
#[test]
fn a_callback_panic_in_a_blocked_put_of_as_completed_or_imap_loses_no_input() {
    quiet_deliberate_panics();
    for in_order in [false, true] {
        let (outcomes, panics, ran, pending) = within("an iterator's blocked put", move || {
            let pool = common::one_worker_bounded(1, 1);
            let ran = hit_counters(4);
            let (gate, latch) = common::gate();
            pool.put_request(
                WorkRequest::new(move |_: ()| latch.hold(), ())
                    .on_result(|_, _| panic!("{DELIBERATE}: a callback")),
            )
            .unwrap();
            gate.await_start();
            // Queued behind the held request; its result will find the
            // result queue full of the first one's.
            pool.put_request(WorkRequest::new(|x: u32| x, 1)).unwrap();
            let f = {
                let ran = Arc::clone(&ran);
                move |i: usize| {
                    ran[i].fetch_add(1, Ordering::SeqCst);
                    i
                }
            };
            gate.open();
            let mut outcomes: Vec<(usize, Result<usize, TaskError>)> = Vec::new();
            let mut panics = 0;
            let mut step = |next: &mut dyn FnMut() -> Option<(usize, Result<usize, TaskError>)>| loop {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *next)) {
                    Ok(Some(item)) => outcomes.push(item),
                    Ok(None) => break,
                    Err(_) => panics += 1,
                }
            };
            if in_order {
                let mut it = pool.imap(0..4usize, 3, f).enumerate();
                step(&mut || it.next());
            } else {
                let mut it = pool.as_completed(0..4usize, 3, move |i: &usize| f(*i));
                step(&mut || it.next());
            }
            let waited = pool.wait();
            assert!(waited.is_ok(), "{waited:?}");
            outcomes.sort_by_key(|(i, _)| *i);
            (outcomes, panics, ran, pool.pending())
        });
        let shape = if in_order { "imap" } else { "as_completed" };
        assert_eq!(
            panics, 1,
            "{shape}: the callback's panic passed out of next once"
        );
        let expected: Vec<_> = (0..4).map(|i| (i, Ok(i))).collect();
        assert_eq!(
            outcomes, expected,
            "{shape}: every input once, none cancelled"
        );
        assert_each_once(shape, &ran);
        assert_eq!(pending, 0, "{shape}");
    }
}

// ---------------------------------------------------------------------------
// A full queue and no worker (`PutError::NoWorkers`).
// ---------------------------------------------------------------------------

/// An input and its outcome, as a window hands them back.
type Outcome = (usize, Result<usize, TaskError>);

/// What comes once a put of the window found the queue full and no worker.
#[derive(Clone, Copy, Debug)]
enum AfterNoWorkers {
    AddAWorker,
    ShutDownNow,
}

/// One worker, a queue of 2, limit 4, inputs 0..6: input 0 runs, held,
/// while 1 and 2 fill the queue; the worker is dismissed, then let go (a
/// dismissed worker takes no other request), so the put of input 3 finds
/// the queue full and no worker before the first `next` hands back input
/// 0. Then `then`. Returns the outcomes after input 0, by input, and how
/// many inputs were pulled in all.
fn window_after_no_workers(imap: bool, then: AfterNoWorkers) -> (Vec<Outcome>, usize) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let _open = OpenOnDrop(Arc::clone(&gate));
    let (started_tx, started) = shared_channel();
    let dismisser = {
        let (gate, other) = (Arc::clone(&gate), pool.new_handle());
        thread::spawn(move || {
            started.recv_timeout(HANG).expect("input 0 never started");
            assert_eq!(other.dismiss_workers(1), 1);
            gate.open();
            other
        })
    };
    let pulled = counter();
    let p = Arc::clone(&pulled);
    let inputs = (0..6usize).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let f = move |i: usize| {
        if i == 0 {
            started_tx.lock().unwrap().send(()).unwrap();
            gate.pass();
        }
        i * 10
    };
    let drive = |mut it: Box<dyn Iterator<Item = Outcome> + '_>| {
        assert_eq!(it.next(), Some((0, Ok(0))), "imap: {imap}");
        // Input 3 waits to be put again; none is pulled after it.
        assert_eq!(load(&pulled), 4, "imap: {imap}");
        let other = dismisser.join().unwrap();
        match then {
            AfterNoWorkers::AddAWorker => pool.create_workers(1).unwrap(),
            AfterNoWorkers::ShutDownNow => assert!(other.shutdown_now().is_empty()),
        }
        let mut rest: Vec<_> = it.collect();
        rest.sort_by_key(|&(i, _)| i);
        rest
    };
    let rest = if imap {
        drive(Box::new(pool.imap(inputs, 4, f).enumerate()))
    } else {
        drive(Box::new(
            pool.as_completed(inputs, 4, move |&i: &usize| f(i)),
        ))
    };
    (rest, load(&pulled))
}

/// A put that finds the queue full and no worker keeps its input (it is
/// not cancelled) and `next` waits; once a worker is added, every input
/// runs, each once.
#[test]
fn a_window_whose_put_finds_no_worker_goes_on_once_a_worker_is_added() {
    for imap in [false, true] {
        let (rest, pulled) = within("a window waiting for a worker", move || {
            window_after_no_workers(imap, AfterNoWorkers::AddAWorker)
        });
        let expected: Vec<_> = (1..6).map(|i| (i, Ok(i * 10))).collect();
        assert_eq!(rest, expected, "imap: {imap}");
        assert_eq!(pulled, 6, "imap: {imap}");
    }
}

/// A window waiting for a worker ends when the pool is shut down instead:
/// its queued requests and the input kept come back cancelled, and no
/// input is pulled after that.
#[test]
fn a_window_waiting_for_a_worker_ends_when_the_pool_is_shut_down() {
    for imap in [false, true] {
        let (rest, pulled) = within("a window waiting for a worker, shut down", move || {
            window_after_no_workers(imap, AfterNoWorkers::ShutDownNow)
        });
        let cancelled = |i| (i, Err(TaskError::Cancelled));
        assert_eq!(
            rest,
            [cancelled(1), cancelled(2), cancelled(3)],
            "imap: {imap}"
        );
        assert_eq!(pulled, 4, "imap: {imap}");
    }
}

/// With none of the window's own requests queued (the full queue holds
/// another handle's), nothing would tell `next` that a worker came: the
/// put that finds no worker is refused as by a shut-down pool, and the
/// window ends rather than wait for ever.
#[test]
fn a_window_with_nothing_queued_ends_when_its_put_finds_no_worker() {
    for imap in [false, true] {
        let (outcomes, pulled) = within("a window with nothing queued", move || {
            let (pool, other) = full_of_another_handles_request();
            let pulled = counter();
            let p = Arc::clone(&pulled);
            let inputs = (0..3usize).inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            });
            let outcomes: Vec<Outcome> = if imap {
                pool.imap(inputs, 2, |i| i).enumerate().collect()
            } else {
                pool.as_completed(inputs, 2, |&i: &usize| i).collect()
            };
            assert_eq!(other.shutdown_now().len(), 1);
            (outcomes, load(&pulled))
        });
        assert_eq!(outcomes, [(0, Err(TaskError::Cancelled))], "imap: {imap}");
        assert_eq!(pulled, 1, "imap: {imap}");
    }
}

// ---------------------------------------------------------------------------
// as_completed_fallible and imap_fallible.
// ---------------------------------------------------------------------------

/// The user's own error type: the fallible windows must hand it back as
/// it is, in `TaskError::Failed`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NotEven(usize);

/// Ok for an even input, the user's error for an odd one, and a panic
/// for every tenth.
fn even(i: usize) -> Result<usize, NotEven> {
    if i % 10 == 5 {
        panic!("{DELIBERATE} on {i}");
    }
    if i % 2 == 0 {
        Ok(i / 2)
    } else {
        Err(NotEven(i))
    }
}

fn expected_even(i: usize) -> Result<usize, TaskError<NotEven>> {
    if i % 10 == 5 {
        Err(TaskError::Panicked(format!("{DELIBERATE} on {i}")))
    } else if i % 2 == 0 {
        Ok(i / 2)
    } else {
        Err(TaskError::Failed(NotEven(i)))
    }
}

/// 100 inputs, limit 4: every input comes back once, with its own
/// outcome; an `Err` of the function as `TaskError::Failed` with the
/// user's value, a panic as `TaskError::Panicked`; and each is the very
/// outcome `submit_fallible` gives for the same input.
#[test]
fn as_completed_fallible_hands_back_the_users_error_and_a_panic_as_their_variants() {
    const N: usize = 100;
    quiet_deliberate_panics();
    within("as_completed_fallible", || {
        let pool = ThreadPool::new(3);
        let ran = hit_counters(N);
        let r = Arc::clone(&ran);
        let mut seen: Vec<(usize, Result<usize, TaskError<NotEven>>)> = pool
            .as_completed_fallible(0..N, 4, move |&i: &usize| {
                r[i].fetch_add(1, Ordering::SeqCst);
                even(i)
            })
            .collect();
        assert_eq!(seen.len(), N, "one outcome per input");
        seen.sort_by_key(|&(i, _)| i);
        let expected: Vec<_> = (0..N).map(|i| (i, expected_even(i))).collect();
        assert_eq!(seen, expected);
        assert_each_once("as_completed_fallible's function", &ran);
        for i in [4, 7, 15] {
            let ticket = pool.submit_fallible(even, i).unwrap();
            assert_eq!(ticket.wait(), seen[i].1, "input {i}");
        }
        assert_eq!(pool.pending(), 0);
        assert_eq!(pool.workers(), 3, "the workers survived the panics");
    });
}

/// 8 workers, limit 3: the first three inputs wait for each other, so
/// exactly 3 run at once at the start, and never more.
#[test]
fn as_completed_fallible_never_runs_more_than_limit_at_once() {
    const K: usize = 3;
    const N: usize = 120;
    within("as_completed_fallible with a limit", || {
        let pool = ThreadPool::new(8);
        let crowd = Crowd::new(K);
        let c = Arc::clone(&crowd);
        let hits = hit_counters(N);
        for (input, outcome) in pool.as_completed_fallible(0..N, K, move |&i: &usize| {
            c.run(i);
            if i % 3 == 0 {
                Err(NotEven(i))
            } else {
                Ok(i)
            }
        }) {
            let expected = if input % 3 == 0 {
                Err(TaskError::Failed(NotEven(input)))
            } else {
                Ok(input)
            };
            assert_eq!(outcome, expected);
            hits[input].fetch_add(1, Ordering::SeqCst);
        }
        assert_each_once("as_completed_fallible items", &hits);
        assert_eq!(crowd.max(), K);
    });
}

/// As `dropping_as_completed_half_way_cancels_the_queued_and_leaves_the_running`,
/// for the fallible form, whose function fails every input.
#[test]
fn dropping_as_completed_fallible_half_way_cancels_what_has_not_started() {
    within("as_completed_fallible dropped half-way", || {
        let pool = ThreadPool::new(2);
        drop_as_completed_half_way(
            &pool,
            |inputs, hold| {
                pool.as_completed_fallible(inputs, 4, move |&i: &usize| {
                    hold(i);
                    Err::<(), _>(NotEven(i))
                })
            },
            (0, Err(TaskError::Failed(NotEven(0)))),
        );
    });
}

/// imap_fallible: outcomes in input order, the user's error and a panic
/// as their variants, at most `limit` running at once, each input once.
#[test]
fn imap_fallible_yields_in_input_order_with_the_users_error() {
    const K: usize = 4;
    const N: usize = 100;
    quiet_deliberate_panics();
    within("imap_fallible", || {
        let pool = ThreadPool::new(8);
        let running = Arc::new(Concurrency::default());
        let ran = hit_counters(N);
        let (c, r) = (Arc::clone(&running), Arc::clone(&ran));
        let outcomes: Vec<_> = pool
            .imap_fallible(0..N, K, move |i: usize| {
                r[i].fetch_add(1, Ordering::SeqCst);
                c.enter();
                // Later inputs often end before earlier ones.
                busy_for(N - i);
                c.leave();
                even(i)
            })
            .collect();
        let expected: Vec<_> = (0..N).map(expected_even).collect();
        assert_eq!(outcomes, expected);
        assert_each_once("imap_fallible's function", &ran);
        assert!(running.max() <= K, "{} ran at once", running.max());
    });
}

// ---------------------------------------------------------------------------
// try_next: a look without blocking, for a frame loop.
// ---------------------------------------------------------------------------

/// The look the windows and `callpool::as_completed` share, so that one
/// frame loop drives any of them.
trait TryNext {
    type Item;
    fn try_next(&mut self) -> Poll<Option<Self::Item>>;
}

impl<I, F, T, E> TryNext for Completions<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Item = (I::Item, Result<T, TaskError<E>>);
    fn try_next(&mut self) -> Poll<Option<Self::Item>> {
        Completions::try_next(self)
    }
}

impl<I, F, T, E> TryNext for InOrder<'_, I, F, T, E>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Send + Sync + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    type Item = Result<T, TaskError<E>>;
    fn try_next(&mut self) -> Poll<Option<Self::Item>> {
        InOrder::try_next(self)
    }
}

impl<T, E> TryNext for AsCompleted<T, E> {
    type Item = (usize, Result<T, TaskError<E>>);
    fn try_next(&mut self) -> Poll<Option<Self::Item>> {
        AsCompleted::try_next(self)
    }
}

/// A frame loop as an iterator: each `next` looks with `try_next`, frame
/// after frame (yielding between them), until it says `Ready`. Dropping it
/// drops the window.
struct Frames<W>(W);

impl<W: TryNext> Iterator for Frames<W> {
    type Item = W::Item;
    fn next(&mut self) -> Option<W::Item> {
        loop {
            match self.0.try_next() {
                Poll::Ready(item) => return item,
                Poll::Pending => thread::yield_now(),
            }
        }
    }
}

/// A window borrowed, so that a frame loop can take a few and leave it.
impl<W: TryNext> TryNext for &mut W {
    type Item = W::Item;
    fn try_next(&mut self) -> Poll<Option<W::Item>> {
        (**self).try_next()
    }
}

/// Asserts that `frames` looks in a row all say "nothing yet".
fn assert_pending_for<W: TryNext>(window: &mut W, frames: usize, what: &str)
where
    W::Item: std::fmt::Debug,
{
    for frame in 0..frames {
        let look = window.try_next();
        assert!(look.is_pending(), "{what}, frame {frame}: {look:?}");
    }
}

/// `try_next` and `next` taken in turns over endless inputs, on 8
/// workers with limit 3: every input comes back once with its own
/// output, exactly 3 are pulled ahead of the outcomes handed back after
/// each (whichever call handed it back), and exactly 3 run at once at
/// the start (the first three wait for each other), never more.
#[test]
fn try_next_mixed_with_next_hands_each_input_back_once_within_the_limit() {
    const K: usize = 3;
    const N: usize = 200;
    within("try_next mixed with next", || {
        let pool = ThreadPool::new(8);
        let crowd = Crowd::new(K);
        let c = Arc::clone(&crowd);
        let pulled = counter();
        let p = Arc::clone(&pulled);
        let inputs = (0usize..).inspect(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        });
        let mut it = pool.as_completed(inputs, K, move |&i: &usize| {
            c.run(i);
            i * 2
        });
        let mut seen = HashSet::new();
        let (mut by_next, mut by_try) = (0, 0);
        for n in 1..=N {
            let (input, outcome) = if n % 2 == 0 {
                by_next += 1;
                it.next().expect("endless inputs ended")
            } else {
                by_try += 1;
                loop {
                    match it.try_next() {
                        Poll::Ready(item) => break item.expect("endless inputs ended"),
                        Poll::Pending => thread::yield_now(),
                    }
                }
            };
            assert_eq!(outcome, Ok(input * 2));
            assert!(seen.insert(input), "input {input} came back twice");
            assert_eq!(load(&pulled), n + K, "after {n} outcomes");
        }
        assert_eq!((by_next, by_try), (N / 2, N / 2));
        assert!(seen.iter().all(|&i| i < N + K));
        drop(it);
        assert_eq!(load(&pulled), N + K);
        assert_eq!(crowd.max(), K);
    });
}

/// One worker, limit 2, input 0 held at a gate and input 1 queued behind
/// it: every look while the gate is shut says "nothing yet" and returns
/// (a blocking one would hang here), pulls nothing more and runs nothing.
/// Once the gate opens, the frames hand each input back once and then
/// say `Ready(None)`, and keep saying it; `next` then says `None`.
#[test]
fn a_frame_loop_of_try_next_never_blocks_on_a_gated_request() {
    within("a frame loop over as_completed", || {
        let pool = ThreadPool::new(1);
        let watched = Watched::new(4);
        let hold = watched.hold(&[0]);
        let mut it = pool.as_completed(watched.inputs(), 2, move |&i: &usize| {
            hold(i);
            i * 10
        });
        assert_eq!(it.try_next(), Poll::Pending);
        assert_eq!(watched.await_held(1), [0]);
        assert_pending_for(&mut it, 50, "gate shut");
        assert_eq!(watched.pulled(), 2);
        assert_eq!(watched.runs(), [1, 0, 0, 0]);
        assert_eq!(pool.queued(), 1);

        watched.gate.open();
        let mut outcomes: Vec<Outcome> = Frames(&mut it).collect();
        outcomes.sort_by_key(|&(i, _)| i);
        let expected: Vec<Outcome> = (0..4).map(|i| (i, Ok(i * 10))).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(it.try_next(), Poll::Ready(None));
        assert_eq!(it.try_next(), Poll::Ready(None));
        assert_eq!(it.next(), None);
        assert_eq!(watched.runs(), [1, 1, 1, 1]);
        assert_eq!(watched.pulled(), 4);
        assert_eq!(pool.pending(), 0);
    });
}

/// Nothing to hand back: the first look says `Ready(None)`, for each
/// form, as `next` says `None`.
#[test]
fn try_next_says_ready_none_at_once_with_nothing_to_hand_back() {
    within("try_next with no inputs", || {
        let pool = ThreadPool::new(1);
        let mut completions = pool.as_completed(0..0usize, 2, |&i: &usize| i);
        assert_eq!(completions.try_next(), Poll::Ready(None));
        let mut fallible = pool.as_completed_fallible(0..0usize, 2, |&i: &usize| even(i));
        assert_eq!(fallible.try_next(), Poll::Ready(None));
        let mut in_order = pool.imap(0..0usize, 2, |i| i);
        assert_eq!(in_order.try_next(), Poll::Ready(None));
        let mut tickets = callpool::as_completed(Vec::<Ticket<u8>>::new());
        assert_eq!(tickets.try_next(), Poll::Ready(None));
        assert_eq!(pool.stats().completed, 0);
    });
}

/// The worker is held and another handle's request fills the queue of
/// one: the first look pulls input 0, finds no room, keeps it, and says
/// "nothing yet" (`next` would block in that put); later looks put it
/// again, still without room, and pull nothing more. Once the gate
/// opens, every input runs once and comes back `Ok`, none cancelled.
/// `imap` the same, its outcomes in input order.
#[test]
fn try_next_keeps_an_input_a_full_queue_has_no_room_for_and_never_blocks() {
    for in_order in [false, true] {
        let (outcomes, pulled, ran) = within("try_next on a full queue", move || {
            let pool = ThreadPool::builder()
                .workers(1)
                .queue_capacity(1)
                .build()
                .unwrap();
            let other = pool.new_handle();
            let (gate, latch) = common::gate();
            other
                .put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
                .unwrap();
            gate.await_start();
            other.put_request(WorkRequest::new(|x: u8| x, 1)).unwrap();
            assert_eq!(pool.queued(), 1);

            let pulled = counter();
            let p = Arc::clone(&pulled);
            let inputs = (0..4usize).inspect(move |_| {
                p.fetch_add(1, Ordering::SeqCst);
            });
            let ran = hit_counters(4);
            let r = Arc::clone(&ran);
            let f = move |i: usize| {
                r[i].fetch_add(1, Ordering::SeqCst);
                i * 10
            };
            let outcomes: Vec<Outcome> = if in_order {
                let mut it = pool.imap(inputs, 3, f);
                assert_pending_for(&mut it, 20, "imap, queue full");
                assert_eq!(load(&pulled), 1);
                gate.open();
                Frames(it).enumerate().collect()
            } else {
                let mut it = pool.as_completed(inputs, 3, move |&i: &usize| f(i));
                assert_pending_for(&mut it, 20, "as_completed, queue full");
                assert_eq!(load(&pulled), 1);
                gate.open();
                let mut outcomes: Vec<Outcome> = Frames(it).collect();
                outcomes.sort_by_key(|&(i, _)| i);
                outcomes
            };
            assert_eq!(other.wait_timeout(HANG), Ok(2));
            (outcomes, load(&pulled), ran)
        });
        let expected: Vec<Outcome> = (0..4).map(|i| (i, Ok(i * 10))).collect();
        assert_eq!(outcomes, expected, "in order: {in_order}");
        assert_eq!(pulled, 4, "in order: {in_order}");
        assert_each_once("the function", &ran);
    }
}

/// As `dropping_as_completed_half_way_cancels_the_queued_and_leaves_the_running`,
/// its outcome taken by a frame loop: dropped with two requests running
/// and two queued, the queued ones never run and nothing more is pulled.
#[test]
fn dropping_a_frame_loop_half_way_cancels_what_has_not_started() {
    within("a frame loop dropped half-way", || {
        let pool = ThreadPool::new(2);
        drop_as_completed_half_way(
            &pool,
            |inputs, hold| {
                Frames(pool.as_completed(inputs, 4, move |&i: &usize| {
                    hold(i);
                    i
                }))
            },
            (0, Ok(0)),
        );
    });
}

/// imap in a frame loop, input 0 held on one of two workers while 1 and
/// 2 run on the other: every look says "nothing yet" (whatever of 1 and 2
/// has ended waits its turn) and pulls nothing past the limit; once the
/// gate opens, the outcomes come in input order, each once, and then
/// `Ready(None)`.
#[test]
fn imap_try_next_waits_for_the_oldest_input() {
    const K: usize = 3;
    within("imap in a frame loop", || {
        let pool = ThreadPool::new(2);
        let watched = Watched::new(10);
        let hold = watched.hold(&[0]);
        let mut it = pool.imap(watched.inputs(), K, move |i: usize| {
            hold(i);
            i * 10
        });
        assert_eq!(it.try_next(), Poll::Pending);
        assert_eq!(watched.await_held(1), [0]);
        // 1 and 2 have run (or are running): their outcomes wait for 0's.
        common::until(|| watched.runs()[1..K] == [1, 1]);
        assert_pending_for(&mut it, 50, "imap, input 0 held");
        assert_eq!(watched.pulled(), K);
        watched.gate.open();
        let outcomes: Vec<_> = Frames(&mut it).collect();
        let expected: Vec<Result<usize, TaskError>> = (0..10).map(|i| Ok(i * 10)).collect();
        assert_eq!(outcomes, expected);
        assert_eq!(it.try_next(), Poll::Ready(None));
        assert_eq!(it.next(), None);
        assert_eq!(watched.runs(), vec![1; 10]);
    });
}

/// As `dropping_imap_half_way_cancels_the_rest`, its first outcome taken
/// by a frame loop: dropped with input 1 running (held) and 2, 3 queued,
/// the queued ones never run and nothing more is pulled.
#[test]
fn dropping_an_imap_frame_loop_half_way_cancels_the_rest() {
    imap_dropped_half_way(true);
}

/// `callpool::as_completed` over tickets, the first held at a gate on the
/// only worker and the rest queued behind it: every look says "nothing
/// yet" while the gate is shut; then `next` and frames taken in turns hand
/// each ticket back once, with its index, and the last look says
/// `Ready(None)`.
#[test]
fn as_completed_over_tickets_try_next_mixed_with_next() {
    within("as_completed over tickets in a frame loop", || {
        let pool = ThreadPool::new(1);
        let (gate, latch) = common::gate();
        let mut tickets = vec![pool
            .submit(
                move |_: ()| {
                    latch.hold();
                    0usize
                },
                (),
            )
            .unwrap()];
        gate.await_start();
        for n in 1..4usize {
            tickets.push(pool.submit(|n: usize| n * 10, n).unwrap());
        }
        let mut it = callpool::as_completed(tickets);
        assert_pending_for(&mut it, 50, "tickets, gate shut");
        gate.open();
        let mut seen = Vec::new();
        for turn in 0..4 {
            let item = if turn % 2 == 0 {
                it.next()
            } else {
                Frames(&mut it).next()
            };
            seen.push(item.expect("a ticket was lost"));
        }
        assert_eq!(it.try_next(), Poll::Ready(None));
        assert_eq!(it.next(), None);
        seen.sort_by_key(|&(i, _)| i);
        assert_eq!(seen, [(0, Ok(0)), (1, Ok(10)), (2, Ok(20)), (3, Ok(30))]);
        assert_eq!(pool.pending(), 0);
    });
}

/// On the only worker of its pool, inside a callable: the window's
/// request is queued behind that very worker, so a look that finds
/// nothing ended runs it here, on that worker, and hands its outcome back
/// at once (a loop of looks would otherwise spin for ever). The same for
/// imap and for `callpool::as_completed` over tickets.
#[test]
fn try_next_on_a_worker_of_its_pool_runs_its_queued_request_there() {
    within("try_next on the only worker", || {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let (tx, rx) = mpsc::channel();
        pool.put_request(WorkRequest::new(
            move |()| {
                let worker = thread::current().id();
                let here = move |i: usize| (i, thread::current().id());

                let mut it = inner.as_completed(0..1usize, 1, move |&i: &usize| here(i));
                let Poll::Ready(completed) = it.try_next() else {
                    panic!("as_completed: the look did not run its request");
                };
                assert_eq!(it.try_next(), Poll::Ready(None));

                let mut it = inner.imap(0..1usize, 1, here);
                let Poll::Ready(in_order) = it.try_next() else {
                    panic!("imap: the look did not run its request");
                };
                assert_eq!(it.try_next(), Poll::Ready(None));

                let ticket = inner.submit(here, 0).unwrap();
                let mut it = callpool::as_completed([ticket]);
                let Poll::Ready(tickets) = it.try_next() else {
                    panic!("tickets: the look did not run the request");
                };
                assert_eq!(it.try_next(), Poll::Ready(None));

                tx.send((worker, completed, in_order, tickets)).unwrap();
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait(), Ok(1));
        let (worker, completed, in_order, tickets) = rx.recv().unwrap();
        assert_eq!(completed, Some((0, Ok((0, worker)))));
        assert_eq!(in_order, Some(Ok((0, worker))));
        assert_eq!(tickets, Some((0, Ok((0, worker)))));
        assert_eq!(pool.stats().completed, 4);
    });
}

/// A window carries each next input in the place the last one left
/// (`Completions` reuses its cells): every input still comes back once,
/// with its own outcome, and is dropped once, by the caller; the function
/// is dropped once in all, by the time the iterator is dropped.
#[test]
fn as_completed_hands_back_every_input_once_and_drops_the_function_once() {
    let pool = ThreadPool::new(2);
    let inputs_dropped = Arc::new(AtomicUsize::new(0));
    let f_dropped = Arc::new(AtomicUsize::new(0));
    let captured = Dropped(Arc::clone(&f_dropped));
    let n = 2_000;
    let inputs = (0..n).map(|i| (i, Dropped(Arc::clone(&inputs_dropped))));
    let f = move |input: &(u64, Dropped)| {
        let _keep = &captured;
        input.0 * 3
    };
    let mut seen = Vec::new();
    let mut completions = pool.as_completed(inputs, 3, f);
    for ((i, input), outcome) in completions.by_ref() {
        assert_eq!(
            outcome.expect("no failure"),
            i * 3,
            "input {i} got another's outcome"
        );
        seen.push(i);
        drop(input);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "each input handed back once"
    );
    assert_eq!(
        load(&inputs_dropped),
        n as usize,
        "each input dropped once, by the caller"
    );
    drop(completions);
    assert_eq!(
        load(&f_dropped),
        1,
        "the function is dropped once, with its iterator"
    );
    pool.shutdown().expect("shutdown");
}
