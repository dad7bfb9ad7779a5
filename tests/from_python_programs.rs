//! A new user's trial (from Python's `threadpool` and `concurrent.futures`):
//! six programs written the way such a user writes them first, from the
//! README, the guide, from-python.md and the API docs only, each asserting
//! exactly what it was promised: counts, order where promised, and which
//! thread ran what.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use callpool::{PollError, TaskError, ThreadPool, WeakPool, WorkRequest};
use common::{one_way, until, within};

/// The names of this process's threads that start with `prefix`, as the
/// system lists them, sorted.
fn os_thread_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

fn os_threads_named(prefix: &str) -> usize {
    os_thread_names(prefix).len()
}

// ---------------------------------------------------------------------------
// (a) Seed 003, "Python Programming by Example", ch11_08 and ch11_05:
//
//     q = queue.Queue()
//     with concurrent.futures.ThreadPoolExecutor(max_workers=3) as executor:
//         for i in range(1, 15):
//             executor.submit(perform, q, a, b, c)   # perform: q.put(a*b*10 - c*2)
//     while not q.empty(): print(q.get())
//
// and the named-worker queue of ch11_05 (`print('run job', job, 'from', name)`).
// ---------------------------------------------------------------------------

/// `with ThreadPoolExecutor(3)`: the `with` block's exit is `shutdown()`,
/// which runs every submitted callable (the tickets were dropped at once,
/// as Python drops the futures), and the queue then holds all 14 results,
/// each computed once on one of the three named workers.
#[test]
fn a_seed_ch11_executor_with_a_result_queue() {
    within("ch11_08", || {
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name("ch11")
            .build()
            .unwrap();
        let (q, results) = mpsc::channel();
        let mut expected = Vec::new();
        for i in 1..15i64 {
            let (a, b, c) = (i % 10 + 1, (i * 7) % 10 + 1, (i * 3) % 10 + 1);
            expected.push((i, a * b * 10 - c * 2));
            let q = q.clone();
            // The ticket is dropped, as Python drops the future: the work
            // still runs (the guide: dropping a ticket does not cancel).
            // `let _ =` here is clippy's `let_underscore_future`: a ticket
            // is a `Future`.
            drop(
                pool.submit(
                    move |(i, a, b, c): (i64, i64, i64, i64)| {
                        thread::sleep(Duration::from_millis((i % 3) as u64));
                        let name = thread::current().name().map(String::from);
                        q.send((i, a * b * 10 - c * 2, name)).unwrap();
                    },
                    (i, a, b, c),
                )
                .unwrap(),
            );
        }
        drop(q);
        pool.shutdown().unwrap(); // `with` exits: shutdown(wait=True)

        let mut got: Vec<(i64, i64, Option<String>)> = results.try_iter().collect();
        got.sort();
        let values: Vec<(i64, i64)> = got.iter().map(|(i, v, _)| (*i, *v)).collect();
        assert_eq!(values, expected, "every job once, with its value");
        let names: BTreeSet<String> = got.into_iter().map(|(_, _, n)| n.unwrap()).collect();
        assert!(
            names.is_subset(&["ch11-0", "ch11-1", "ch11-2"].map(String::from).into()),
            "worker names are {{prefix}}-{{N}} from 0: {names:?}"
        );
        assert_eq!(os_threads_named("ch11-"), 0, "shutdown joined every worker");
    });
}

/// ch11_05 with callbacks instead of a shared queue: 15 jobs, 3 named
/// workers; each job's callback runs on this thread and hears the name of
/// the worker that ran it. The Python program's `if q.empty(): break` race
/// does not exist: `wait` returns after the 15th callback.
#[test]
fn a_seed_ch11_named_workers_report_to_the_main_thread() {
    within("ch11_05", || {
        let pool = ThreadPool::builder()
            .workers(3)
            .thread_name("ch11q")
            .build()
            .unwrap();
        let here = thread::current().id();
        let runs = Arc::new(Mutex::new(Vec::new()));
        for job in 0..15u32 {
            let runs = Arc::clone(&runs);
            pool.put_request(
                WorkRequest::new(
                    |job: u32| (job, thread::current().name().unwrap().to_owned()),
                    job,
                )
                .on_result(move |_, (job, name)| {
                    assert_eq!(thread::current().id(), here);
                    runs.lock().unwrap().push((job, name));
                }),
            )
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(15));
        let runs = runs.lock().unwrap();
        let jobs: BTreeSet<u32> = runs.iter().map(|(j, _)| *j).collect();
        assert_eq!(jobs, (0..15).collect());
        assert_eq!(runs.len(), 15);
        assert!(runs.iter().all(|(_, n)| n.starts_with("ch11q-")));
        drop(runs);
        pool.shutdown().unwrap();
    });
}

// ---------------------------------------------------------------------------
// (b) Downloads: per-request deadlines and timeouts, and a retry of failures.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum FetchError {
    Transient(String),
    NotFound(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A fake download: `flaky-N` fails on its first two attempts, `gone-N`
/// always, the rest succeed at once with their body.
fn fake_fetch((url, attempt): (String, u32)) -> Result<String, FetchError> {
    if url.starts_with("flaky") && attempt < 3 {
        Err(FetchError::Transient(url))
    } else if url.starts_with("gone") {
        Err(FetchError::NotFound(url))
    } else {
        Ok(format!("<body of {url}>"))
    }
}

type Log = Arc<Mutex<Vec<(String, u32, Result<String, String>)>>>;

/// One attempt at `url`, whose error callback puts the next attempt (up
/// to three) on the same handle, through a `WeakPool` as the README says.
fn attempt(url: String, n: u32, pool: WeakPool, log: Log, here: ThreadId) -> WorkRequest {
    let on_ok = {
        let (url, log) = (url.clone(), Arc::clone(&log));
        move |_, body: String| {
            assert_eq!(thread::current().id(), here);
            log.lock().unwrap().push((url, n, Ok(body)));
        }
    };
    WorkRequest::fallible(fake_fetch, (url.clone(), n))
        .timeout(Duration::from_secs(3600)) // a deadline to start by
        .on_result(on_ok)
        .on_error(move |_, err: TaskError<FetchError>| {
            assert_eq!(thread::current().id(), here);
            log.lock()
                .unwrap()
                .push((url.clone(), n, Err(err.to_string())));
            let retry = matches!(err, TaskError::Failed(FetchError::Transient(_)))
                || err == TaskError::Expired;
            if retry && n < 3 {
                let again = attempt(url, n + 1, pool.clone(), log, here);
                pool.upgrade()
                    .expect("the pool is alive while we wait")
                    .put_request(again)
                    .unwrap();
            }
        })
        .into()
}

/// 12 URLs: flaky ones succeed on the third attempt, gone ones fail once
/// and are not retried (not transient), the rest succeed first time; the
/// retries are put by callbacks during `wait`, which waits for them too.
#[test]
fn b_downloads_with_retries_from_the_error_callback() {
    within("downloads", || {
        let pool = ThreadPool::new(3);
        let here = thread::current().id();
        let log: Log = Arc::default();
        let urls: Vec<String> = (0..12)
            .map(|i| match i % 4 {
                0 => format!("flaky-{i}"),
                1 => format!("gone-{i}"),
                _ => format!("ok-{i}"),
            })
            .collect();
        for url in &urls {
            pool.put_request(attempt(
                url.clone(),
                1,
                pool.downgrade(),
                Arc::clone(&log),
                here,
            ))
            .unwrap();
        }
        // 3 flaky * 3 attempts + 3 gone + 6 ok
        assert_eq!(pool.wait(), Ok(18));
        let log = log.lock().unwrap();
        let mut attempts: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (url, n, _) in log.iter() {
            attempts.entry(url).or_default().push(*n);
        }
        for url in &urls {
            let expected: &[u32] = if url.starts_with("flaky") {
                &[1, 2, 3]
            } else {
                &[1]
            };
            assert_eq!(attempts[url.as_str()], expected, "{url}");
        }
        let ok = log.iter().filter(|(_, _, r)| r.is_ok()).count();
        assert_eq!(ok, 9, "6 ok at once, 3 flaky at the third attempt");
        // In the order they ended, which three workers do not promise.
        let mut gone: Vec<_> = log
            .iter()
            .filter(|(u, _, _)| u.starts_with("gone"))
            .map(|(_, _, r)| r.clone())
            .collect();
        gone.sort();
        assert_eq!(
            gone,
            ["gone-1", "gone-5", "gone-9"]
                .map(|u| Err(format!("request failed: NotFound(\"{u}\")")))
                .to_vec()
        );
    });
}

/// The `concurrent.futures` way: `future.result(timeout=..)`. A download
/// stuck on its server: `wait_timeout` hands the ticket back, `cancel`
/// says `false` (it is running: a running callable cannot be stopped),
/// and the ticket still gets its outcome later. A request given a start
/// deadline (`timeout`) while the only worker is stuck never runs:
/// `Expired`, and retried once the worker is free it succeeds.
#[test]
fn b_downloads_with_a_result_timeout_and_a_start_deadline() {
    within("timeouts", || {
        let pool = ThreadPool::new(1);
        let server = Arc::new(one_way::Gate::default());
        let _open = one_way::OpenOnDrop(Arc::clone(&server));
        let (started_tx, started) = mpsc::channel();
        let stuck = {
            let server = Arc::clone(&server);
            pool.submit_fallible(
                move |url: String| {
                    started_tx.send(()).unwrap();
                    server.pass();
                    fake_fetch((url, 1))
                },
                "ok-slow".to_owned(),
            )
            .unwrap()
        };
        started.recv().unwrap();

        // Nothing can end it while the server is stuck: handed back.
        let stuck = match stuck.wait_timeout(Duration::from_millis(20)) {
            Err(ticket) => ticket,
            Ok(outcome) => panic!("the stuck download ended: {outcome:?}"),
        };
        assert!(!stuck.cancel(), "a running request cannot be cancelled");

        // A request that must start within 10 ms, behind the stuck one.
        let (tx, rx) = mpsc::channel();
        let ran = common::counter();
        let r = Arc::clone(&ran);
        let tx2 = tx.clone();
        pool.put_request(
            WorkRequest::fallible(
                move |arg| {
                    r.fetch_add(1, Ordering::SeqCst);
                    fake_fetch(arg)
                },
                ("ok-late".to_owned(), 1),
            )
            .deadline(Instant::now() + Duration::from_millis(10))
            .on_result(move |_, body| tx2.send(Ok(body)).unwrap())
            .on_error(move |_, err| tx.send(Err(err)).unwrap()),
        )
        .unwrap();
        thread::sleep(Duration::from_millis(20)); // the deadline passes
        server.open();
        assert_eq!(
            stuck.wait(),
            Ok("<body of ok-slow>".to_owned()),
            "a ticket whose wait_timeout ran out still gets its outcome"
        );
        assert_eq!(pool.wait(), Ok(1));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [Err(TaskError::Expired)]);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "an expired request never runs"
        );

        // The retry, with no deadline, runs.
        let again = pool
            .submit_fallible(fake_fetch, ("ok-late".to_owned(), 2))
            .unwrap();
        assert_eq!(again.wait(), Ok("<body of ok-late>".to_owned()));
    });
}

// ---------------------------------------------------------------------------
// (c) A producer thread puts while the main thread polls; bounded queue.
// ---------------------------------------------------------------------------

/// What a producer thread beside a polling thread saw: per request, how
/// many times its callback ran; per thread name, how many callbacks ran
/// there; and how many results this (the polling) thread handled.
struct ProducerRun {
    hits: Arc<Vec<AtomicUsize>>,
    threads: BTreeMap<String, usize>,
    handled: usize,
}

/// A thread named "producer" puts `N` requests on a clone of `pool` while
/// this thread polls. The Python loop `while True: poll() except
/// NoResultsPending: break` would stop early whenever the producer is
/// behind: `NoResultsPending` means "nothing pending now", not "no more to
/// come". So this loop stops only once the producer has finished and
/// `wait` has handled the rest.
fn producer_beside_poller(pool: &ThreadPool, n: usize) -> ProducerRun {
    let hits = common::hit_counters(n);
    let threads = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let producer = {
        let pool = pool.clone();
        let hits = Arc::clone(&hits);
        let threads = Arc::clone(&threads);
        thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                for i in 0..n {
                    let hits = Arc::clone(&hits);
                    let threads = Arc::clone(&threads);
                    pool.put_request(WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                        hits[i].fetch_add(1, Ordering::SeqCst);
                        let name = thread::current().name().unwrap_or("?").to_owned();
                        *threads.lock().unwrap().entry(name).or_default() += 1;
                    }))
                    .unwrap();
                }
            })
            .unwrap()
    };
    let mut handled = 0;
    while !producer.is_finished() {
        match pool.poll_timeout(Duration::from_millis(5)) {
            Ok(n) => handled += n,
            Err(PollError::Timeout { .. }) => {}
            // Nothing pending right now (the producer is behind), and
            // `poll_timeout` returns at once then: without a pause this
            // loop spun, hundreds of thousands of times a run.
            Err(PollError::NoResultsPending) => thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    producer.join().unwrap();
    handled += pool.wait().unwrap();
    let threads = threads.lock().unwrap().clone();
    ProducerRun {
        hits,
        threads,
        handled,
    }
}

/// 500 requests through a queue of 4 while this thread polls: every
/// callback runs exactly once, and (the result queue being unbounded) none
/// on the producer thread.
#[test]
fn c_a_producer_thread_puts_while_main_polls() {
    within("producer", || {
        const N: usize = 500;
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(4)
            .build()
            .unwrap();
        let here = thread::current().id();
        let run = producer_beside_poller(&pool, N);
        assert_eq!(run.handled, N);
        common::assert_each_once("callbacks", &run.hits);
        assert_eq!(
            run.threads.keys().collect::<Vec<_>>(),
            [&thread::current().name().unwrap_or("?").to_owned()],
            "every callback on this thread ({here:?})"
        );
    });
}

/// The same with a bounded result queue too: now the producer's blocked
/// put handles results itself (from-python, W18), so some callbacks may
/// run on the producer thread; each still runs once, and only on the two
/// threads that use the handle.
#[test]
fn c_with_a_bounded_result_queue_a_blocked_put_runs_callbacks() {
    within("producer, bounded results", || {
        const N: usize = 500;
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_capacity(4)
            .result_capacity(4)
            .build()
            .unwrap();
        let main_name = thread::current().name().unwrap_or("?").to_owned();
        let run = producer_beside_poller(&pool, N);
        common::assert_each_once("callbacks", &run.hits);
        assert_eq!(run.threads.values().sum::<usize>(), N);
        assert!(run
            .threads
            .keys()
            .all(|name| *name == main_name || name == "producer"));
        // `handled` counts only this thread's share.
        assert_eq!(
            run.handled,
            run.threads.get(&main_name).copied().unwrap_or(0)
        );
    });
}

// ---------------------------------------------------------------------------
// (d) Cancel everything on the first error.
// ---------------------------------------------------------------------------

/// The `concurrent.futures` habit: keep the futures, and on the first
/// failure cancel the others. With tickets moved into
/// `callpool::as_completed`, their ids are all that is left, and the
/// handle's `cancel(id)` and `cancel_queued` do not reach tickets.
#[test]
fn d_a_tickets_id_is_not_cancelled_by_the_handle() {
    within("ticket ids", || {
        let pool = ThreadPool::new(1);
        let gate = Arc::new(one_way::Gate::default());
        let _open = one_way::OpenOnDrop(Arc::clone(&gate));
        let (started_tx, started) = mpsc::channel();
        let g = Arc::clone(&gate);
        let busy = pool
            .submit(
                move |_: ()| {
                    started_tx.send(()).unwrap();
                    g.pass()
                },
                (),
            )
            .unwrap();
        started.recv().unwrap();
        let queued = pool.submit(|n: u32| n, 7).unwrap();
        assert!(
            !pool.cancel(queued.id()),
            "the handle does not cancel a ticket"
        );
        assert_eq!(pool.cancel_queued(), 0, "nor does cancel_queued");
        gate.open();
        assert_eq!(busy.wait(), Ok(()));
        assert_eq!(queued.wait(), Ok(7), "it ran");
    });
}

/// The same habit with the tickets handed to `callpool::as_completed`:
/// on the first failure, `cancel_rest` cancels every ticket the iterator
/// still holds that has not started. One worker: ticket 0 fails, ticket 1
/// holds the worker, tickets 2..20 are queued behind it. Exactly 18 are
/// cancelled (none of them runs), ticket 1 ends with its value, and every
/// ticket still comes out of the iterator once.
#[test]
fn d_cancel_the_rest_of_as_completed_tickets_on_the_first_error() {
    within("cancel_rest", || {
        let pool = ThreadPool::new(1);
        let gate = Arc::new(one_way::Gate::default());
        let _open = one_way::OpenOnDrop(Arc::clone(&gate));
        let ran = common::hit_counters(20);
        let (started_tx, started) = mpsc::channel();
        let job = || {
            let (ran, gate, started_tx) = (Arc::clone(&ran), Arc::clone(&gate), started_tx.clone());
            move |i: usize| {
                ran[i].fetch_add(1, Ordering::SeqCst);
                match i {
                    0 => Err(format!("input {i} is bad")),
                    1 => {
                        started_tx.send(()).unwrap();
                        gate.pass();
                        Ok(i)
                    }
                    _ => Ok(i),
                }
            }
        };
        let mut tickets = vec![
            pool.submit_fallible(job(), 0).unwrap(),
            pool.submit_fallible(job(), 1).unwrap(),
        ];
        started.recv().unwrap(); // ticket 0 has ended, ticket 1 holds the worker
        for i in 2..20 {
            tickets.push(pool.submit_fallible(job(), i).unwrap());
        }

        let mut outcomes = callpool::as_completed(tickets);
        let mut seen = BTreeMap::new();
        let mut cancelled_by_us = None;
        while let Some((index, outcome)) = outcomes.next() {
            if outcome.is_err() && cancelled_by_us.is_none() {
                cancelled_by_us = Some(outcomes.cancel_rest());
                gate.open();
            }
            assert!(
                seen.insert(index, outcome).is_none(),
                "ticket {index} twice"
            );
        }
        assert_eq!(cancelled_by_us, Some(18));
        assert_eq!(seen.len(), 20);
        assert_eq!(
            seen[&0],
            Err(TaskError::Failed("input 0 is bad".to_owned()))
        );
        assert_eq!(seen[&1], Ok(1), "a running ticket is not cancelled");
        assert!((2..20).all(|i| seen[&i] == Err(TaskError::Cancelled)));
        let counts: Vec<usize> = ran.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let mut expected = vec![0; 20];
        expected[..2].fill(1);
        assert_eq!(counts, expected, "no cancelled ticket ran");
    });
}

/// The way that works: `as_completed_fallible` over the inputs, and
/// `break` on the first error: dropping the iterator cancels what has not
/// started. One worker and a limit of 1, so the order is the input order:
/// inputs 0..=3 ran once each. Input 4 was put as input 3's outcome came
/// back (the iterator refills the slot an outcome frees before it hands
/// the outcome over), so it ran once or was cancelled by the drop,
/// depending on whether the worker took it first; no later input was put.
#[test]
fn d_stop_at_the_first_error_by_dropping_as_completed() {
    within("first error", || {
        let pool = ThreadPool::new(1);
        let ran = common::hit_counters(20);
        let r = Arc::clone(&ran);
        let mut first_error = None;
        for (input, outcome) in pool.as_completed_fallible(0..20usize, 1, move |&i: &usize| {
            r[i].fetch_add(1, Ordering::SeqCst);
            if i == 3 {
                Err(format!("input {i} is bad"))
            } else {
                Ok(i * 10)
            }
        }) {
            if let Err(e) = outcome {
                first_error = Some((input, e));
                break;
            }
        }
        assert_eq!(
            first_error,
            Some((3, TaskError::Failed("input 3 is bad".to_owned())))
        );
        let counts: Vec<usize> = ran.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(counts[..4], [1; 4], "inputs 0..=3 ran once each");
        assert!(counts[4] <= 1, "input 4 ran {} times", counts[4]);
        assert_eq!(counts[5..], [0; 15], "no input after 4 was put");
    });
}

// ---------------------------------------------------------------------------
// (e) A pipeline: stage-1 results feed stage-2 requests, from callbacks.
// ---------------------------------------------------------------------------

/// Stage 1 counts a line's words; its result callback (on this thread)
/// puts stage 2 (square the count) on the same handle through a
/// `WeakPool`. One `wait` covers both stages: it handles 2N outcomes, and
/// every callback of both stages runs on this thread.
#[test]
fn e_a_two_stage_pipeline_put_from_callbacks() {
    within("pipeline", || {
        const N: usize = 200;
        let pool = ThreadPool::new(3);
        let here = thread::current().id();
        let (tx, rx) = mpsc::channel();
        let stage1_ran = common::counter();
        for i in 0..N {
            let weak = pool.downgrade();
            let tx = tx.clone();
            let s1 = Arc::clone(&stage1_ran);
            let line = vec!["w"; i % 7 + 1].join(" ");
            pool.put_request(
                WorkRequest::new(|line: String| line.split_whitespace().count(), line).on_result(
                    move |_, words| {
                        assert_eq!(thread::current().id(), here);
                        s1.fetch_add(1, Ordering::SeqCst);
                        let stage2 =
                            WorkRequest::new(|w: usize| w * w, words).on_result(move |_, sq| {
                                assert_eq!(thread::current().id(), here);
                                tx.send((i, sq)).unwrap();
                            });
                        weak.upgrade().unwrap().put_request(stage2).unwrap();
                    },
                ),
            )
            .unwrap();
        }
        drop(tx);
        assert_eq!(pool.wait(), Ok(2 * N));
        assert_eq!(stage1_ran.load(Ordering::SeqCst), N);
        let mut out: Vec<(usize, usize)> = rx.try_iter().collect();
        out.sort();
        let expected: Vec<(usize, usize)> = (0..N).map(|i| (i, (i % 7 + 1).pow(2))).collect();
        assert_eq!(out, expected);
        pool.shutdown().unwrap();
    });
}

// ---------------------------------------------------------------------------
// (f) Resize while busy, then shut down and check every thread exits.
// ---------------------------------------------------------------------------

/// Four workers each busy on a gated request; `resize(1)` drops
/// `workers()` to 1 at once, while the three dismissed threads finish
/// their request (none is cut short: 4 results). Ten more requests put
/// then run on the survivor only (the newest are dismissed first, so
/// worker 0 stays). `resize(3)` grows it back; `shutdown` runs the rest
/// and leaves no thread behind.
#[test]
fn f_resize_while_busy_then_shut_down_cleanly() {
    within("resize", || {
        let pool = ThreadPool::builder()
            .workers(4)
            .thread_name("tr75f")
            .build()
            .unwrap();
        until(|| os_threads_named("tr75f-") == 4); // each names itself as it starts
        let gate = Arc::new(one_way::Gate::default());
        let _open = one_way::OpenOnDrop(Arc::clone(&gate));
        let started = common::counter();
        let names = Arc::new(Mutex::new(Vec::new()));
        for i in 0..4u32 {
            let (gate, started, names) =
                (Arc::clone(&gate), Arc::clone(&started), Arc::clone(&names));
            pool.put_request(WorkRequest::new(
                move |i: u32| {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                    names
                        .lock()
                        .unwrap()
                        .push((i, thread::current().name().unwrap().to_owned()));
                },
                i,
            ))
            .unwrap();
        }
        until(|| started.load(Ordering::SeqCst) == 4);
        pool.resize(1).unwrap();
        assert_eq!(pool.workers(), 1);
        assert_eq!(pool.threads(), 4, "dismissed workers finish their request");

        let after = Arc::new(Mutex::new(Vec::new()));
        for i in 4..14u32 {
            let after = Arc::clone(&after);
            pool.put_request(WorkRequest::new(
                move |i: u32| {
                    after
                        .lock()
                        .unwrap()
                        .push((i, thread::current().name().unwrap().to_owned()))
                },
                i,
            ))
            .unwrap();
        }
        gate.open();
        assert_eq!(pool.wait(), Ok(14));
        assert_eq!(names.lock().unwrap().len(), 4);
        let after = after.lock().unwrap().clone();
        assert_eq!(
            after.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (4..14).collect::<Vec<_>>(),
            "one worker left: queue order"
        );
        assert!(
            after.iter().all(|(_, n)| n == "tr75f-0"),
            "only the oldest worker is left: {after:?}"
        );
        pool.join_all_dismissed_workers();
        assert_eq!(pool.threads(), 1);
        // Joined, a thread may still be listed by the system for a moment
        // (it is reaped after it wakes its joiner): waited for, not assumed.
        until(|| os_threads_named("tr75f-") == 1);

        pool.resize(3).unwrap();
        assert_eq!((pool.workers(), pool.threads()), (3, 3));
        // Worker numbers are never reused: the two new ones are 4 and 5.
        until(|| os_threads_named("tr75f-") == 3);
        assert_eq!(os_thread_names("tr75f-"), ["tr75f-0", "tr75f-4", "tr75f-5"]);
        let done = common::counter();
        for _ in 0..30 {
            let done = Arc::clone(&done);
            pool.put_request(WorkRequest::call(move || {
                done.fetch_add(1, Ordering::SeqCst);
            }))
            .unwrap();
        }
        let weak = pool.downgrade();
        pool.shutdown().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 30);
        assert!(weak.upgrade().is_none());
        // Every worker thread exits (as above, the system may list a
        // joined thread for a moment).
        until(|| os_threads_named("tr75f-") == 0);
    });
}
