//! A new user's trial of work that makes work, written from the docs alone
//! (the README, `docs/guide.md`, `docs/from-python.md` and the rustdoc):
//! the programs someone coming from Python's `threadpool` and from the
//! "ThreadDistributor" pattern (one task adds a million tasks, each yields
//! results into one output queue that `results()` reads) writes first.
//!
//! - a crawler over a generated graph, each node's task adding tasks for
//!   its neighbours and streaming its findings;
//! - the ThreadDistributor demo, its results read as one iterator (a
//!   collector), and with `wait` covering everything added transitively;
//! - a batch with progress, a cancel half-way and a batch-done callback;
//! - a scope whose callbacks mutate `&mut` locals and an `Rc<RefCell<_>>`;
//! - `Context::join` for a divide-and-conquer sum;
//! - a request that both streams and adds children.
//!
//! Each asserts what the docs promise: exact counts, order where promised,
//! which thread ran the callbacks, and that `wait` (or a collector's
//! iterator) ends only after everything added transitively has ended.

mod common;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};

use callpool::{
    make_requests, Closed, CollectorContext, Context, Emitter, RequestId, TaskError, ThreadPool,
    WorkRequest,
};
use common::{within, within_here, TestResult};

// ---------------------------------------------------------------------------
// A generated graph: node n links to a few others, with cycles and shared
// neighbours, so a crawl must remember what it has seen.
// ---------------------------------------------------------------------------

const NODES: usize = 2_000;

fn links(n: usize) -> Vec<usize> {
    let a = (n * 7 + 3) % NODES;
    let b = (n * 13 + 11) % NODES;
    let c = (n + 1) % NODES;
    vec![a, b, c]
}

/// What a page "contains": a few words, streamed one by one.
fn words(n: usize) -> Vec<String> {
    (0..(n % 3) + 1).map(|k| format!("w{n}.{k}")).collect()
}

/// The nodes reachable from 0, found serially: what the crawls must find.
fn reachable() -> HashSet<usize> {
    let mut seen = HashSet::from([0]);
    let mut todo = vec![0];
    while let Some(n) = todo.pop() {
        for m in links(n) {
            if seen.insert(m) {
                todo.push(m);
            }
        }
    }
    seen
}

/// One node's task: claims the node (each node is crawled once), streams
/// its words, and puts a task per neighbour not claimed yet.
fn crawl_node(
    node: usize,
    out: &Emitter<'_, (usize, String)>,
    shared: &Arc<Crawl>,
) -> Result<(), Closed> {
    shared.visits[node].fetch_add(1, Ordering::Relaxed);
    for word in words(node) {
        out.emit((node, word))?;
    }
    for next in links(node) {
        if !shared.claimed[next].swap(true, Ordering::Relaxed) {
            out.context()
                .put(crawl_request(shared, next))
                .expect("the pool is open");
        }
    }
    shared.ended.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

struct Crawl {
    claimed: Vec<AtomicBool>,
    visits: Vec<AtomicUsize>,
    ended: AtomicUsize,
    found: Mutex<mpsc::Sender<(ThreadId, usize, String)>>,
    done: Mutex<mpsc::Sender<(ThreadId, RequestId)>>,
}

fn crawl_request(shared: &Arc<Crawl>, node: usize) -> WorkRequest {
    let found = shared.found.lock().unwrap().clone();
    let done = shared.done.lock().unwrap().clone();
    let shared = Arc::clone(shared);
    WorkRequest::streaming(
        move |n: usize, out: &Emitter<'_, _>| crawl_node(n, out, &shared),
        node,
    )
    .on_result(move |_, (n, word)| found.send((thread::current().id(), n, word)).unwrap())
    .on_done(move |id| done.send((thread::current().id(), id)).unwrap())
    .on_error(|id, e| panic!("#{id} failed: {e}"))
    .into()
}

/// The crawl of the generated graph with streaming requests that put their
/// neighbours' requests through `out.context()`: every reachable node is
/// crawled exactly once, every word arrives on the thread in `wait`, a
/// node's words in the order emitted, each node's end after its words, and
/// `wait` returns only once every task added transitively has ended.
#[test]
fn crawler_streams_findings_and_wait_covers_every_page_added() -> TestResult {
    within_here("the crawl", || -> TestResult {
        let pool = ThreadPool::new(3);
        let (found_tx, found_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let shared = Arc::new(Crawl {
            claimed: (0..NODES).map(|_| AtomicBool::new(false)).collect(),
            visits: (0..NODES).map(|_| AtomicUsize::new(0)).collect(),
            ended: AtomicUsize::new(0),
            found: Mutex::new(found_tx),
            done: Mutex::new(done_tx),
        });
        shared.claimed[0].store(true, Ordering::Relaxed);
        pool.put_request(crawl_request(&shared, 0))?;
        let handled = pool.wait()?;

        let want = reachable();
        // `wait` has returned: every task added, transitively, has ended.
        assert_eq!(shared.ended.load(Ordering::SeqCst), want.len());
        assert_eq!(pool.pending(), 0);
        for (n, visits) in shared.visits.iter().enumerate() {
            let expected = usize::from(want.contains(&n));
            assert_eq!(visits.load(Ordering::Relaxed), expected, "node {n}");
        }
        let here = thread::current().id();
        let mut per_node: HashMap<usize, Vec<String>> = HashMap::new();
        for (thread, n, word) in found_rx.try_iter() {
            assert_eq!(thread, here, "a result callback ran off the waiting thread");
            per_node.entry(n).or_default().push(word);
        }
        assert_eq!(per_node.len(), want.len());
        for (n, got) in &per_node {
            assert_eq!(got, &words(*n), "node {n}'s words, in the order emitted");
        }
        let ends: Vec<_> = done_rx.try_iter().collect();
        assert_eq!(ends.len(), want.len(), "one on_done per page");
        assert!(ends.iter().all(|(thread, _)| *thread == here));
        // Each item counts as a result handled, and so does each end.
        let items: usize = want.iter().map(|&n| words(n).len()).sum();
        assert_eq!(handled, items + want.len());
        Ok(())
    })
}

/// The same crawl fed to one collector (`put_with_context` and
/// `CollectorContext::add_with_context`), its findings read as one
/// iterator, as the guide's "distributor" row says: the iterator ends only
/// once every node added, transitively, has been handled.
#[test]
fn crawler_into_a_collector_reads_every_page_as_one_iterator() -> TestResult {
    within_here("the collector crawl", || -> TestResult {
        let claimed: Arc<Vec<AtomicBool>> =
            Arc::new((0..NODES).map(|_| AtomicBool::new(false)).collect());
        claimed[0].store(true, Ordering::Relaxed);

        // A collector is typed by what each task returns: here one page's
        // words, as a `Vec` (a stream put with `put_streaming` would emit
        // them one by one: `tests/collector_streams.rs`).
        fn page(
            cx: &CollectorContext<'_, (usize, Vec<String>)>,
            (node, claimed): (usize, Arc<Vec<AtomicBool>>),
        ) -> (usize, Vec<String>) {
            for next in links(node) {
                if !claimed[next].swap(true, Ordering::Relaxed) {
                    cx.add_with_context(page, (next, Arc::clone(&claimed)))
                        .expect("the pool is open");
                }
            }
            (node, words(node))
        }

        let pool = ThreadPool::new(3);
        let mut pages = pool.collector::<(usize, Vec<String>)>();
        pages.put_with_context(page, (0, Arc::clone(&claimed)))?;
        let mut seen = HashMap::new();
        for (_, outcome) in pages.outcomes() {
            let (node, found) = outcome?;
            assert!(seen.insert(node, found).is_none(), "node {node} came twice");
        }
        let want = reachable();
        assert_eq!(seen.len(), want.len());
        for (node, found) in &seen {
            assert!(want.contains(node));
            assert_eq!(found, &words(*node));
        }
        assert_eq!(pages.pending(), 0);
        // The collector's requests are not the handle's.
        assert_eq!(pool.pending(), 0);
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// The ThreadDistributor demo.
// ---------------------------------------------------------------------------

/// How many squaring tasks the initial task adds (a million in the Python
/// demo and in `examples/squares.rs`; fewer here to stay quick in debug).
const SQUARES: u64 = 20_000;

fn sum_of_squares(n: u64) -> u64 {
    n * (n - 1) * (2 * n - 1) / 6
}

/// `distributor.add_task(InitializeTask)` then `results()`: one task adds
/// `SQUARES` tasks to one collector, and `outcomes()` yields every square
/// once, plus the initial task's own outcome (a collector hands back every
/// request's, the parent's too: Python's `yield None` has to be a value of
/// the collector's type here, so it is `None` in an `Option`).
#[test]
fn distributor_results_read_as_an_iterator_over_everything_added() -> TestResult {
    within_here("the distributor demo", || -> TestResult {
        fn initialize(cx: &CollectorContext<'_, Option<u64>>, n: u64) -> Option<u64> {
            for i in 0..n {
                cx.add(|i: u64| Some(i * i), i).expect("the pool is open");
            }
            None
        }
        let pool = ThreadPool::new(4);
        let mut squares = pool.collector::<Option<u64>>();
        squares.put_with_context(initialize, SQUARES)?;
        let (mut count, mut sum, mut nones) = (0, 0, 0);
        for (_, outcome) in squares.outcomes() {
            match outcome? {
                Some(sq) => {
                    count += 1;
                    sum += sq;
                }
                None => nones += 1,
            }
        }
        assert_eq!((count, nones), (SQUARES, 1));
        assert_eq!(sum, sum_of_squares(SQUARES));
        Ok(())
    })
}

/// A collector's `pending` counts what a running task has added, from the
/// moment it is added (the `put_with_context` rustdoc: "Every request added
/// counts as pending here from the moment it is added"), before the
/// iterator has looked.
#[test]
fn distributor_pending_counts_tasks_added_while_the_parent_still_runs() -> TestResult {
    within_here("pending while adding", || -> TestResult {
        let pool = ThreadPool::new(1);
        let (added_tx, added_rx) = mpsc::channel::<()>();
        let (open, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let mut squares = pool.collector::<u64>();
        squares.put_with_context(
            move |cx: &CollectorContext<'_, u64>, n: u64| {
                for i in 0..n {
                    cx.add(|i: u64| i * i, i).expect("the pool is open");
                }
                added_tx.send(()).unwrap();
                let _ = gate.lock().unwrap().recv();
                n
            },
            5,
        )?;
        added_rx.recv_timeout(common::HANG)?;
        // One worker, busy with the parent: nothing added has run, and the
        // parent has not ended, so all six are pending.
        assert_eq!(squares.pending(), 6);
        drop(open);
        let mut all: Vec<u64> = squares.outcomes().map(|(_, n)| n.unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 4, 5, 9, 16]);
        Ok(())
    })
}

/// The same demo with callbacks: `WorkRequest::with_context` and
/// `cx.put`, every callback on the thread in `wait`, and `wait` returning
/// only after every task added has ended and every callback has run.
/// Then with `cx.execute` (work nobody hears), which `wait` covers too.
#[test]
fn distributor_with_callbacks_and_execute_wait_covers_all_added() -> TestResult {
    within_here("the distributor with callbacks", || -> TestResult {
        let pool = ThreadPool::new(4);
        let here = thread::current().id();
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let parent_ran = Arc::clone(&ran);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, n: u64| {
                for i in 0..n {
                    let tx = tx.clone();
                    let ran = Arc::clone(&parent_ran);
                    cx.put(
                        WorkRequest::new(
                            move |i: u64| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                i * i
                            },
                            i,
                        )
                        .on_result(move |_, sq| tx.send((thread::current().id(), sq)).unwrap()),
                    )
                    .expect("the pool is open");
                }
            },
            SQUARES,
        ))?;
        let handled = pool.wait()?;
        assert_eq!(handled as u64, SQUARES + 1, "the parent and every child");
        assert_eq!(ran.load(Ordering::SeqCst) as u64, SQUARES);
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got.len() as u64, SQUARES);
        assert!(
            got.iter().all(|(t, _)| *t == here),
            "callbacks run on the waiting thread"
        );
        assert_eq!(
            got.iter().map(|(_, sq)| sq).sum::<u64>(),
            sum_of_squares(SQUARES)
        );

        // `cx.execute`: nothing comes back, `wait` covers it and handles 0.
        let total = Arc::new(AtomicUsize::new(0));
        let t = Arc::clone(&total);
        pool.execute_with_context(move |cx: &Context<'_>| {
            for i in 0..SQUARES as usize {
                let t = Arc::clone(&t);
                cx.execute(move || {
                    t.fetch_add(i * i, Ordering::SeqCst);
                })
                .expect("the pool is open");
            }
        })?;
        assert_eq!(pool.wait()?, 0);
        assert_eq!(total.load(Ordering::SeqCst) as u64, sum_of_squares(SQUARES));
        Ok(())
    })
}

/// `wait` covers a chain of tasks each adding the next, 500 deep: when it
/// returns, the last one has ended (nothing is left for a later `wait`).
#[test]
fn wait_covers_a_chain_added_one_by_one() -> TestResult {
    within_here("the chain", || -> TestResult {
        fn link(cx: &Context<'_>, depth: u32, ended: Arc<AtomicUsize>) {
            if depth > 0 {
                let next = Arc::clone(&ended);
                cx.put(WorkRequest::with_context(
                    move |cx, d| link(cx, d, next),
                    depth - 1,
                ))
                .expect("the pool is open");
            }
            ended.fetch_add(1, Ordering::SeqCst);
        }
        let pool = ThreadPool::new(2);
        let ended = Arc::new(AtomicUsize::new(0));
        let e = Arc::clone(&ended);
        pool.put_request(WorkRequest::with_context(move |cx, d| link(cx, d, e), 499))?;
        assert_eq!(pool.wait()?, 500);
        assert_eq!(ended.load(Ordering::SeqCst), 500);
        assert_eq!(pool.wait()?, 0);
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// A batch with progress, a cancel half-way, and a batch-done callback.
// ---------------------------------------------------------------------------

/// A one-way gate a shared (`Fn + Sync`) callable can wait on.
#[derive(Default)]
struct Door {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Door {
    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// 200 requests on one worker; request 100 waits at a door. The main
/// thread polls until the batch's progress says 100 have ended, cancels
/// the rest (99 still queued: 100 is running), opens the door, and waits.
/// Exact counts: 101 done, 99 cancelled; each cancelled request's error
/// callback hears `Cancelled` once; the batch-done callback runs once, on
/// this thread, after every member's callback, with the final progress.
#[test]
fn batch_progress_cancel_half_way_and_done_callback() -> TestResult {
    within_here("the batch", || -> TestResult {
        let pool = ThreadPool::new(1);
        let door = Arc::new(Door::default());
        let at_door = Arc::clone(&door);
        let here = thread::current().id();
        let (ok_tx, ok_rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        let heard = Arc::new(AtomicUsize::new(0));
        let (ok_heard, err_heard) = (Arc::clone(&heard), Arc::clone(&heard));
        let requests = make_requests(
            move |n: u32| {
                if n == 100 {
                    at_door.pass();
                }
                n
            },
            0..200u32,
            move |_, n| {
                ok_heard.fetch_add(1, Ordering::SeqCst);
                ok_tx.send((thread::current().id(), n)).unwrap()
            },
            move |_, e| {
                err_heard.fetch_add(1, Ordering::SeqCst);
                err_tx.send((thread::current().id(), e)).unwrap()
            },
        );
        let batch = pool.put_batch(requests)?;
        assert_eq!(batch.progress().total, 200);
        let (done_tx, done_rx) = mpsc::channel();
        let seen = Arc::clone(&heard);
        batch.on_done(move |progress| {
            let before = seen.load(Ordering::SeqCst);
            done_tx
                .send((thread::current().id(), progress, before))
                .unwrap()
        });

        // Progress is counted as this thread handles results: poll.
        while batch.progress().ended() < 100 {
            match pool.poll_timeout(common::HANG) {
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        assert_eq!(batch.progress().ended(), 100);
        let cancelled = batch.cancel();
        assert_eq!(cancelled, 99, "101..200 were queued; 100 is running");
        door.open();
        pool.wait()?;

        let progress = batch.progress();
        assert!(progress.is_complete());
        assert_eq!(
            (progress.done, progress.failed, progress.cancelled),
            (101, 0, 99)
        );
        let oks: Vec<_> = ok_rx.try_iter().collect();
        let errs: Vec<_> = err_rx.try_iter().collect();
        assert_eq!(oks.len(), 101);
        assert_eq!(errs.len(), 99);
        assert!(oks.iter().all(|(t, _)| *t == here));
        assert!(errs
            .iter()
            .all(|(t, e)| *t == here && *e == TaskError::Cancelled));
        let mut values: Vec<u32> = oks.into_iter().map(|(_, n)| n).collect();
        values.sort_unstable();
        assert_eq!(values, (0..=100).collect::<Vec<_>>());
        let dones: Vec<_> = done_rx.try_iter().collect();
        assert_eq!(dones.len(), 1, "one batch-done callback");
        assert_eq!(
            dones[0],
            (here, progress, 200),
            "after every member's callback"
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// A scope whose callbacks mutate locals.
// ---------------------------------------------------------------------------

/// Callables borrow a local buffer; one `put_then` callback mutates a
/// `&mut` local, the others share an `Rc<RefCell<_>>`; `wait_with` takes
/// the rest with an `FnMut` over another `&mut` local. Every callback runs
/// on this thread, each request's once, and by the time `scope` returns.
#[test]
fn scope_callbacks_mutate_mut_locals_and_an_rc_refcell() -> TestResult {
    within_here("the scope", || -> TestResult {
        let pool = ThreadPool::new(3);
        let here = thread::current().id();
        let lines: Vec<String> = (0..60).map(|i| format!("line {i}")).collect();
        let mut longest = 0usize; // one `put_then` may hold `&mut longest`
        let lengths = Rc::new(RefCell::new(Vec::new())); // the others share this
        let mut others = 0usize; // `wait_with`'s FnMut
        let mut threads = Vec::new();
        pool.scope(|s| {
            s.put_then(
                |c: &[String]| c.iter().map(String::len).max().unwrap_or(0),
                &lines[..],
                |n| longest = n.unwrap(),
            )?;
            for chunk in lines.chunks(10) {
                let lengths = Rc::clone(&lengths);
                s.put_then(
                    |c: &[String]| c.iter().map(String::len).sum::<usize>(),
                    chunk,
                    move |n| {
                        lengths
                            .borrow_mut()
                            .push((thread::current().id(), n.unwrap()))
                    },
                )?;
            }
            for line in &lines[..5] {
                s.put(|l: &String| l.len(), line)?;
            }
            s.wait_with(|_, n| {
                threads.push(thread::current().id());
                others += n.unwrap();
            });
            Ok::<_, callpool::ScopedPutError>(())
        })?;
        assert_eq!(longest, 7);
        let lengths = Rc::try_unwrap(lengths)
            .expect("the scope dropped its callbacks")
            .into_inner();
        assert_eq!(lengths.len(), 6);
        assert!(lengths.iter().all(|(t, _)| *t == here));
        let total: usize = lines.iter().map(String::len).sum();
        assert_eq!(lengths.iter().map(|(_, n)| n).sum::<usize>(), total);
        assert_eq!(others, 5 * 6);
        assert_eq!(threads, vec![here; 5]);
        assert_eq!(lines.len(), 60); // still ours
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Context::join.
// ---------------------------------------------------------------------------

fn sum(cx: &Context<'_>, xs: &[u64]) -> u64 {
    if xs.len() <= 1_000 {
        return xs.iter().sum();
    }
    let (left, right) = xs.split_at(xs.len() / 2);
    let (a, b) = cx.join(|cx| sum(cx, left), |cx| sum(cx, right));
    a + b
}

/// A divide-and-conquer sum three ways: a callback request, a ticket
/// (`submit_with_context`), and a scope over a vector the test owns.
#[test]
fn join_sums_by_divide_and_conquer_three_ways() -> TestResult {
    within_here("the sums", || -> TestResult {
        let pool = ThreadPool::new(3);
        let xs: Vec<u64> = (1..=200_000).collect();
        let want = 200_000 * 200_001 / 2;

        let owned = xs.clone();
        let (tx, rx) = mpsc::channel();
        pool.put_request(
            WorkRequest::with_context(move |cx: &Context<'_>, ()| sum(cx, &owned), ())
                .on_result(move |_, total| tx.send(total).unwrap()),
        )?;
        assert_eq!(pool.wait()?, 1, "halves are not requests");
        assert_eq!(rx.try_recv()?, want);

        let owned = xs.clone();
        let ticket =
            pool.submit_with_context(|cx: &Context<'_>, v: Vec<u64>| sum(cx, &v), owned)?;
        assert_eq!(ticket.wait(), Ok(want));

        let mut total = 0;
        pool.scope(|s| {
            s.put_with_context(sum, &xs[..])?;
            s.wait_with(|_, part| total += part.expect("no panic"));
            Ok::<_, callpool::ScopedPutError>(())
        })?;
        assert_eq!(total, want);
        Ok(())
    })
}

/// On one worker `join` "simply runs `a`, then `b`": every half runs on
/// that worker, and each `a` before its `b`.
#[test]
fn join_on_one_worker_runs_a_then_b_there() -> TestResult {
    within_here("join on one worker", || -> TestResult {
        fn walk(cx: &Context<'_>, depth: u32, path: u32, log: &Mutex<Vec<(ThreadId, u32)>>) {
            log.lock().unwrap().push((thread::current().id(), path));
            if depth > 0 {
                cx.join(
                    |cx| walk(cx, depth - 1, path * 2, log),
                    |cx| walk(cx, depth - 1, path * 2 + 1, log),
                );
            }
        }
        let pool = ThreadPool::new(1);
        let log = Mutex::new(Vec::new());
        pool.scope(|s| {
            s.put_with_context(
                |cx: &Context<'_>, log: &Mutex<Vec<(ThreadId, u32)>>| {
                    walk(cx, 4, 1, log);
                    thread::current().id()
                },
                &log,
            )?;
            let worker = s.next_outcome().expect("one request").1.unwrap();
            let log = log.lock().unwrap();
            assert_eq!(log.len(), 31);
            assert!(log.iter().all(|(t, _)| *t == worker));
            // Depth first, `a` (the even path) before `b`: a pre-order walk.
            let paths: Vec<u32> = log.iter().map(|(_, p)| *p).collect();
            let mut want = Vec::new();
            fn preorder(p: u32, depth: u32, out: &mut Vec<u32>) {
                out.push(p);
                if depth > 0 {
                    preorder(p * 2, depth - 1, out);
                    preorder(p * 2 + 1, depth - 1, out);
                }
            }
            preorder(1, 4, &mut want);
            assert_eq!(paths, want);
            Ok::<_, callpool::ScopedPutError>(())
        })?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// A request that streams and adds children.
// ---------------------------------------------------------------------------

/// A streaming request emits its items and puts a child per item; its
/// items come in the order emitted, then its `on_done`; the children's
/// callbacks run on this thread too, and `wait` covers all of them.
#[test]
fn a_stream_that_adds_children_is_covered_by_wait() -> TestResult {
    within_here("stream and children", || -> TestResult {
        #[derive(Debug, PartialEq)]
        enum Heard {
            Item(u32),
            Done,
            Child(u32),
        }
        let pool = ThreadPool::new(2);
        let here = thread::current().id();
        let (tx, rx) = mpsc::channel();
        let children_tx = tx.clone();
        let done_tx = tx.clone();
        let id = pool.put_request(
            WorkRequest::streaming(
                move |n: u32, out: &Emitter<'_, u32>| {
                    for i in 0..n {
                        out.emit(i)?;
                        let tx = children_tx.clone();
                        out.context()
                            .put(WorkRequest::new(|i: u32| i * 10, i).on_result(move |_, v| {
                                tx.send((thread::current().id(), Heard::Child(v))).unwrap()
                            }))
                            .expect("the pool is open");
                    }
                    Ok::<_, Closed>(())
                },
                50,
            )
            .on_result(move |_, i| tx.send((thread::current().id(), Heard::Item(i))).unwrap())
            .on_done(move |_| done_tx.send((thread::current().id(), Heard::Done)).unwrap()),
        )?;
        let handled = pool.wait()?;
        assert_eq!(handled, 50 + 1 + 50, "items, the stream's end, children");
        let heard: Vec<_> = rx.try_iter().collect();
        assert!(heard.iter().all(|(t, _)| *t == here));
        let stream: Vec<&Heard> = heard
            .iter()
            .map(|(_, h)| h)
            .filter(|h| !matches!(h, Heard::Child(_)))
            .collect();
        let mut want: Vec<Heard> = (0..50).map(Heard::Item).collect();
        want.push(Heard::Done);
        assert_eq!(stream, want.iter().collect::<Vec<_>>());
        let mut children: Vec<u32> = heard
            .iter()
            .filter_map(|(_, h)| match h {
                Heard::Child(v) => Some(*v),
                _ => None,
            })
            .collect();
        children.sort_unstable();
        assert_eq!(children, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        assert!(id.value() > 0);
        Ok(())
    })
}

/// A crawl stopped after N pages, the guide's way ("give the callables a
/// stop flag ... set it, then cancel what is queued"), from a callback:
/// after `wait`, every request put ended once (ran, or `Cancelled`), and
/// each one that ran was heard once.
#[test]
fn crawl_stopped_from_a_callback_with_a_flag_and_cancel_queued() -> TestResult {
    let outcome = within(
        "the stopped crawl",
        || -> Result<(usize, usize, usize), String> {
            let pool = ThreadPool::new(2);
            let stop = Arc::new(AtomicBool::new(false));
            let put = Arc::new(AtomicUsize::new(0));
            let ran = Arc::new(AtomicUsize::new(0));
            let cancelled = Arc::new(AtomicUsize::new(0));
            let pages = Arc::new(AtomicUsize::new(0));

            #[derive(Clone)]
            struct Crawler {
                pool: callpool::WeakPool,
                stop: Arc<AtomicBool>,
                put: Arc<AtomicUsize>,
                ran: Arc<AtomicUsize>,
                cancelled: Arc<AtomicUsize>,
                pages: Arc<AtomicUsize>,
            }
            fn request(c: &Crawler, node: usize) -> WorkRequest {
                c.put.fetch_add(1, Ordering::SeqCst);
                let (c1, c2, c3) = (c.clone(), c.clone(), c.clone());
                WorkRequest::with_context(
                    move |cx: &Context<'_>, n: usize| {
                        c1.ran.fetch_add(1, Ordering::SeqCst);
                        for m in [2 * n + 1, 2 * n + 2] {
                            if c1.stop.load(Ordering::SeqCst) {
                                break;
                            }
                            cx.put(request(&c1, m)).expect("the pool is open");
                        }
                        n
                    },
                    node,
                )
                .on_result(move |_, _| {
                    // Stop after 100 pages: set the flag, then cancel the queue.
                    if c2.pages.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                        c2.stop.store(true, Ordering::SeqCst);
                        if let Some(pool) = c2.pool.upgrade() {
                            pool.cancel_queued();
                        }
                    }
                })
                .on_error(move |_, e| {
                    assert_eq!(e, TaskError::Cancelled);
                    c3.cancelled.fetch_add(1, Ordering::SeqCst);
                })
                .into()
            }
            let crawler = Crawler {
                pool: pool.downgrade(),
                stop,
                put: Arc::clone(&put),
                ran: Arc::clone(&ran),
                cancelled: Arc::clone(&cancelled),
                pages: Arc::clone(&pages),
            };
            pool.put_request(request(&crawler, 0))
                .map_err(|e| e.to_string())?;
            pool.wait().map_err(|e| e.to_string())?;
            let (put, ran, cancelled) = (
                put.load(Ordering::SeqCst),
                ran.load(Ordering::SeqCst),
                cancelled.load(Ordering::SeqCst),
            );
            assert_eq!(
                pages.load(Ordering::SeqCst),
                ran,
                "each page that ran was heard once"
            );
            Ok((put, ran, cancelled))
        },
    )?;
    let (put, ran, cancelled) = outcome;
    assert_eq!(put, ran + cancelled, "every request ended once");
    assert!(ran >= 100);
    Ok(())
}

// ---------------------------------------------------------------------------
// Edges a new user meets next.
// ---------------------------------------------------------------------------

/// Keeps one of `pool`'s workers busy until the returned door opens;
/// returns once that worker has started.
fn occupy_a_worker(pool: &ThreadPool) -> Result<Arc<Door>, Box<dyn std::error::Error>> {
    let busy = Arc::new(Door::default());
    let b = Arc::clone(&busy);
    let (started_tx, started_rx) = mpsc::channel();
    pool.execute(move || {
        started_tx.send(()).unwrap();
        b.pass();
    })?;
    started_rx.recv_timeout(common::HANG)?;
    Ok(busy)
}

/// The guide: a child waits in its worker's slot while every other worker
/// is busy; "`cancel(id)` finds it there (held children are `pending` on
/// their handle, but not counted in `queued()`)".
#[test]
fn a_held_child_is_pending_not_queued_and_cancel_finds_it() -> TestResult {
    within_here("held children", || -> TestResult {
        let pool = ThreadPool::new(2);
        let busy = occupy_a_worker(&pool)?; // the other worker is busy
        let parent_door = Arc::new(Door::default());
        let p = Arc::clone(&parent_door);
        let (ids_tx, ids_rx) = mpsc::channel();
        let (heard_tx, heard_rx) = mpsc::channel();
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, n: u32| {
                let mut ids = Vec::new();
                for i in 0..n {
                    let heard = heard_tx.clone();
                    let heard_err = heard_tx.clone();
                    ids.push(
                        cx.put(
                            WorkRequest::new(|i: u32| i, i)
                                .on_result(move |_, i| heard.send(Ok(i)).unwrap())
                                .on_error(move |_, e| heard_err.send(Err(e)).unwrap()),
                        )
                        .expect("the pool is open"),
                    );
                }
                ids_tx.send(ids).unwrap();
                p.pass();
            },
            5,
        ))?;
        let ids = ids_rx.recv_timeout(common::HANG)?;
        // The executed request, the parent and its five children.
        assert_eq!(pool.pending(), 7);
        assert_eq!(pool.queued(), 0, "held children are not queued");
        assert!(pool.cancel(ids[2]), "cancel finds a held child");
        assert!(!pool.cancel(ids[2]), "only once");
        parent_door.open();
        busy.open();
        assert_eq!(
            pool.wait()?,
            6,
            "the parent and five children (the executed one counts 0)"
        );
        let mut heard: Vec<_> = heard_rx.try_iter().collect();
        heard.sort_by_key(|h| format!("{h:?}"));
        assert_eq!(
            heard,
            [Err(TaskError::Cancelled), Ok(0), Ok(1), Ok(3), Ok(4)]
        );
        Ok(())
    })
}

/// A parent that panics after putting children: the children were
/// pending from the moment they were put, so they still end, each once,
/// and the parent's error callback hears the panic.
#[test]
fn children_of_a_panicking_parent_still_end_once() -> TestResult {
    common::hide_panics_starting_with("parent gives up");
    within_here("a panicking parent", || -> TestResult {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::channel();
        let parent_tx = tx.clone();
        pool.put_request(
            WorkRequest::with_context(
                move |cx: &Context<'_>, n: u32| {
                    for i in 0..n {
                        let tx = tx.clone();
                        cx.put(
                            WorkRequest::new(|i: u32| i, i)
                                .on_result(move |_, i| tx.send(format!("child {i}")).unwrap()),
                        )
                        .expect("the pool is open");
                    }
                    panic!("parent gives up");
                },
                3,
            )
            .on_error(move |_, e| parent_tx.send(format!("parent: {e}")).unwrap()),
        )?;
        assert_eq!(pool.wait()?, 4);
        let mut heard: Vec<String> = rx.try_iter().collect();
        heard.sort();
        assert_eq!(heard.len(), 4, "{heard:?}");
        assert_eq!(heard[..3], ["child 0", "child 1", "child 2"]);
        assert!(heard[3].starts_with("parent: ") && heard[3].contains("parent gives up"));
        Ok(())
    })
}

/// The same in a collector: the added requests and the parent's panic all
/// come out of the one iterator.
#[test]
fn a_collector_parent_that_panics_after_adding_still_yields_every_outcome() -> TestResult {
    common::hide_panics_starting_with("initializer gives up");
    within_here("a panicking collector parent", || -> TestResult {
        let pool = ThreadPool::new(2);
        let mut results = pool.collector::<u32>();
        results.put_with_context(
            |cx: &CollectorContext<'_, u32>, n: u32| -> u32 {
                for i in 0..n {
                    cx.add(|i: u32| i, i).expect("the pool is open");
                }
                panic!("initializer gives up");
            },
            4,
        )?;
        let (mut ok, mut panicked) = (Vec::new(), 0);
        for (_, outcome) in results.outcomes() {
            match outcome {
                Ok(n) => ok.push(n),
                Err(TaskError::Panicked(msg)) => {
                    assert!(msg.contains("initializer gives up"));
                    panicked += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        ok.sort_unstable();
        assert_eq!((ok, panicked), (vec![0, 1, 2, 3], 1));
        Ok(())
    })
}

/// `Collector`'s rustdoc: "Requests put with `put_with_context` go on
/// adding theirs ..., so a tree of work runs to its end" after the
/// collector is dropped.
#[test]
fn a_tree_fed_to_a_dropped_collector_runs_to_its_end() -> TestResult {
    within_here("a dropped collector's tree", || -> TestResult {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        fn node(cx: &CollectorContext<'_, u32>, (n, door): (u32, Arc<Door>)) -> u32 {
            door.pass();
            RAN.fetch_add(1, Ordering::SeqCst);
            for child in [2 * n + 1, 2 * n + 2] {
                if child < 255 {
                    cx.add_with_context(node, (child, Arc::clone(&door)))
                        .expect("the pool is open");
                }
            }
            n
        }
        let pool = ThreadPool::new(2);
        let door = Arc::new(Door::default());
        let mut tree = pool.collector::<u32>();
        tree.put_with_context(node, (0, Arc::clone(&door)))?;
        drop(tree);
        door.open();
        common::until(|| RAN.load(Ordering::SeqCst) == 255);
        Ok(())
    })
}

/// A `CollectorContext` is a `Context` too: its `put` goes to the handle,
/// whose `wait` covers it (the collector's iterator does not wait for it),
/// and whose callbacks run on the thread that waits on the handle.
#[test]
fn a_collector_context_put_goes_to_the_handle_and_wait_covers_it() -> TestResult {
    within_here("collector context put", || -> TestResult {
        let pool = ThreadPool::new(2);
        let here = thread::current().id();
        let (tx, rx) = mpsc::channel();
        let mut results = pool.collector::<u32>();
        results.put_with_context(
            move |cx: &CollectorContext<'_, u32>, n: u32| {
                for i in 0..n {
                    cx.add(|i: u32| i, i).expect("the pool is open");
                    let tx = tx.clone();
                    cx.put(
                        WorkRequest::new(|i: u32| i + 100, i)
                            .on_result(move |_, v| tx.send((thread::current().id(), v)).unwrap()),
                    )
                    .expect("the pool is open");
                }
                n
            },
            10,
        )?;
        assert_eq!(results.outcomes().count(), 11);
        assert_eq!(pool.wait()?, 10);
        let heard: Vec<_> = rx.try_iter().collect();
        assert_eq!(heard.len(), 10);
        assert!(heard.iter().all(|(t, _)| *t == here));
        Ok(())
    })
}

/// The guide: a scope "covers the requests put in it, not the ones they
/// put ...: `pool.wait()` covers them".
#[test]
fn what_a_scoped_request_puts_is_covered_by_the_handles_wait() -> TestResult {
    within_here("scope children", || -> TestResult {
        let pool = ThreadPool::new(2);
        let here = thread::current().id();
        let (tx, rx) = mpsc::channel();
        let data: Vec<u32> = (0..20).collect();
        let mut parts = 0;
        pool.scope(|s| {
            for chunk in data.chunks(5) {
                let tx = tx.clone();
                s.put_with_context(
                    move |cx: &Context<'_>, c: &[u32]| {
                        let total: u32 = c.iter().sum();
                        cx.put(
                            WorkRequest::new(|t: u32| t * 2, total).on_result(move |_, v| {
                                tx.send((thread::current().id(), v)).unwrap()
                            }),
                        )
                        .expect("the pool is open");
                        total
                    },
                    chunk,
                )?;
            }
            s.wait_with(|_, t| parts += t.unwrap());
            Ok::<_, callpool::ScopedPutError>(())
        })?;
        assert_eq!(parts, 190);
        assert_eq!(pool.wait()?, 4);
        let heard: Vec<_> = rx.try_iter().collect();
        assert!(heard.iter().all(|(t, _)| *t == here));
        assert_eq!(heard.iter().map(|(_, v)| v).sum::<u32>(), 380);
        Ok(())
    })
}

/// A stream that panics half-way after putting children: "the items
/// emitted so far are delivered first, then the error callback runs
/// once"; its children, pending from when they were put, still end.
#[test]
fn a_stream_that_panics_half_way_delivers_its_items_then_one_error() -> TestResult {
    common::hide_panics_starting_with("stream gives up");
    within_here("a panicking stream", || -> TestResult {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::channel();
        let (item_tx, err_tx, done_tx) = (tx.clone(), tx.clone(), tx.clone());
        pool.put_request(
            WorkRequest::streaming(
                move |n: u32, out: &Emitter<'_, u32>| -> Result<(), Closed> {
                    for i in 0..n {
                        out.emit(i)?;
                        let tx = tx.clone();
                        out.context()
                            .put(
                                WorkRequest::new(|i: u32| i, i)
                                    .on_result(move |_, i| tx.send(format!("child {i}")).unwrap()),
                            )
                            .expect("the pool is open");
                    }
                    panic!("stream gives up");
                },
                3,
            )
            .on_result(move |_, i| item_tx.send(format!("item {i}")).unwrap())
            .on_done(move |_| done_tx.send("done".to_string()).unwrap())
            .on_error(move |_, e| err_tx.send(format!("error: {e}")).unwrap()),
        )?;
        pool.wait()?;
        let heard: Vec<String> = rx.try_iter().collect();
        let stream: Vec<&String> = heard.iter().filter(|h| !h.starts_with("child")).collect();
        assert_eq!(stream.len(), 4, "{heard:?}");
        assert_eq!(stream[..3], ["item 0", "item 1", "item 2"]);
        assert!(stream[3].starts_with("error: ") && stream[3].contains("stream gives up"));
        let mut children: Vec<&String> = heard.iter().filter(|h| h.starts_with("child")).collect();
        children.sort();
        assert_eq!(children, ["child 0", "child 1", "child 2"]);
        Ok(())
    })
}

/// The Python way to make work: a result callback puts the links a page
/// found (through a `WeakPool`, as the README says callbacks should), and
/// the Python demo's loop of `poll()` until `NoResultsPending` drives it.
/// `NoResultsPending` comes only when nothing was pending at the call, and
/// a follow-up is pending from its put, so the loop ends only after the
/// last page: every reachable node crawled once, on this thread.
#[test]
fn python_style_crawl_from_callbacks_ends_its_poll_loop_after_the_last_page() -> TestResult {
    within_here("the callback crawl", || -> TestResult {
        // A first try kept the seen set in an `Rc<RefCell<_>>`, since every
        // callback runs on this thread: it does not compile (E0277 at
        // `on_result`: a callback travels inside its request, so it must be
        // `Send`). As `on_result`'s rustdoc now says, share an `Arc`.
        fn page_arc(
            pool: callpool::WeakPool,
            seen: Arc<Mutex<HashSet<usize>>>,
            here: ThreadId,
            node: usize,
        ) -> WorkRequest {
            WorkRequest::new(links, node)
                .on_result(move |_, found| {
                    assert_eq!(thread::current().id(), here);
                    let strong = pool.upgrade().expect("the pool is alive");
                    for next in found {
                        if seen.lock().unwrap().insert(next) {
                            let req = page_arc(pool.clone(), Arc::clone(&seen), here, next);
                            strong.put_request(req).expect("the pool is open");
                        }
                    }
                })
                .into()
        }
        let pool = ThreadPool::new(3);
        let seen = Arc::new(Mutex::new(HashSet::from([0])));
        let here = thread::current().id();
        pool.put_request(page_arc(pool.downgrade(), Arc::clone(&seen), here, 0))?;
        let mut handled = 0;
        loop {
            match pool.poll() {
                Ok(n) => handled += n,
                Err(callpool::PollError::NoResultsPending) => break,
                Err(e) => return Err(e.into()),
            }
            thread::yield_now();
        }
        let want = reachable();
        assert_eq!(*seen.lock().unwrap(), want);
        assert_eq!(handled, want.len());
        assert_eq!(pool.pending(), 0);
        Ok(())
    })
}

/// A distributor on bounded queues: the one task's million adds do not
/// wait for room (from-python: "From a callable on one of the pool's own
/// workers it never waits: the request goes in past the capacity"), so
/// one worker cannot deadlock on its own adds, and the collector's
/// iterator still yields every outcome.
#[test]
fn a_distributor_on_bounded_queues_does_not_deadlock_on_its_own_adds() -> TestResult {
    let (count, sum) = within("bounded distributor", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(4)
            .result_capacity(2)
            .build()
            .unwrap();
        fn initialize(cx: &CollectorContext<'_, u64>, n: u64) -> u64 {
            for i in 0..n {
                cx.add(|i: u64| i * i, i).expect("the pool is open");
            }
            0
        }
        let mut squares = pool.collector::<u64>();
        squares.put_with_context(initialize, 5_000).unwrap();
        let (mut count, mut sum) = (0u64, 0u64);
        for (_, sq) in squares.outcomes() {
            count += 1;
            sum += sq.unwrap();
        }
        (count, sum)
    });
    assert_eq!((count, sum), (5_001, sum_of_squares(5_000)));
    Ok(())
}

/// `cancel_queued` reaches "the children that running callables put and
/// their workers still hold", executed ones too, each once; and `stats`
/// counts them as cancelled, the rest as completed.
#[test]
fn cancel_queued_reaches_held_children_and_stats_count_them() -> TestResult {
    within_here("cancel held children", || -> TestResult {
        let pool = ThreadPool::new(2);
        let busy = occupy_a_worker(&pool)?; // the other worker is busy
        let parent_door = Arc::new(Door::default());
        let p = Arc::clone(&parent_door);
        let (put_tx, put_rx) = mpsc::channel();
        let (heard_tx, heard_rx) = mpsc::channel();
        let executed = Arc::new(AtomicUsize::new(0));
        let ex = Arc::clone(&executed);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, n: u32| {
                for i in 0..n {
                    let heard = heard_tx.clone();
                    cx.put(
                        WorkRequest::new(|i: u32| i, i)
                            .on_error(move |_, e| heard.send(e).unwrap()),
                    )
                    .expect("the pool is open");
                    let ex = Arc::clone(&ex);
                    cx.execute(move || {
                        ex.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("the pool is open");
                }
                put_tx.send(()).unwrap();
                p.pass();
            },
            4,
        ))?;
        put_rx.recv_timeout(common::HANG)?;
        assert_eq!(pool.cancel_queued(), 8, "four children, four executed ones");
        assert_eq!(pool.cancel_queued(), 0);
        parent_door.open();
        busy.open();
        assert_eq!(pool.wait()?, 5, "the parent and four cancelled children");
        let heard: Vec<_> = heard_rx.try_iter().collect();
        assert_eq!(heard, vec![TaskError::Cancelled; 4]);
        assert_eq!(executed.load(Ordering::SeqCst), 0);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled, stats.failed), (2, 8, 0));
        Ok(())
    })
}

/// A child given a deadline that has passed by the time a worker could
/// start it never runs: its error callback hears `Expired` (the guide:
/// "if no worker has taken it by then it never runs"), held child or not.
#[test]
fn a_child_whose_deadline_passed_while_held_expires() -> TestResult {
    within_here("expired child", || -> TestResult {
        let pool = ThreadPool::new(1);
        let (tx, rx) = mpsc::channel();
        let ran = Arc::new(AtomicBool::new(false));
        let r = Arc::clone(&ran);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let r = Arc::clone(&r);
                cx.put(
                    WorkRequest::new(move |()| r.store(true, Ordering::SeqCst), ())
                        .deadline(std::time::Instant::now())
                        .on_error(move |_, e| tx.send(e).unwrap()),
                )
                .expect("the pool is open");
            },
            (),
        ))?;
        assert_eq!(pool.wait()?, 2);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [TaskError::Expired]);
        assert!(!ran.load(Ordering::SeqCst));
        Ok(())
    })
}

/// Stats over the trial's kinds of work on one fresh pool: a collector
/// tree, a stream with children, join halves (not requests) and executed
/// children all count once each as completed.
#[test]
fn stats_count_each_request_of_a_tree_once() -> TestResult {
    within_here("stats", || -> TestResult {
        let pool = ThreadPool::new(2);
        let mut found = pool.collector::<u32>();
        fn grow(cx: &CollectorContext<'_, u32>, n: u32) -> u32 {
            for next in [2 * n, 2 * n + 1] {
                if next < 64 {
                    cx.add_with_context(grow, next).expect("the pool is open");
                }
            }
            let (a, b) = cx.join(|_| n, |_| n);
            a + b - n
        }
        found.put_with_context(grow, 1)?;
        assert_eq!(found.outcomes().count(), 63);
        pool.put_request(WorkRequest::streaming(
            |n: u32, out: &Emitter<'_, u32>| {
                for i in 0..n {
                    out.emit(i)?;
                    out.context().execute(|| {}).expect("the pool is open");
                }
                Ok::<_, Closed>(())
            },
            5,
        ))?;
        pool.wait()?;
        let stats = pool.stats();
        assert_eq!(
            (
                stats.completed,
                stats.failed,
                stats.panicked,
                stats.cancelled
            ),
            (63 + 1 + 5, 0, 0, 0)
        );
        Ok(())
    })
}

/// The distributor's `stop()` is a graceful `shutdown`: begun while a tree
/// of work still grows, it refuses the children put after it began
/// (`PutError::ShutDown`, the request handed back) and runs every one
/// accepted before, held ones too ("A request accepted here runs even if
/// a graceful shutdown begins before its batch is queued"), with its
/// callback run by the time `shutdown` returns.
#[test]
fn a_graceful_shutdown_mid_tree_runs_every_accepted_child_and_refuses_the_rest() -> TestResult {
    let (accepted, refused, ran, heard) = within("shutdown mid-tree", || {
        #[derive(Clone)]
        struct Tally {
            accepted: Arc<AtomicUsize>,
            refused: Arc<AtomicUsize>,
            ran: Arc<AtomicUsize>,
            heard: Arc<AtomicUsize>,
            first_wave: mpsc::Sender<()>,
        }
        fn node(t: Tally, n: u64) -> WorkRequest {
            let heard = Arc::clone(&t.heard);
            WorkRequest::with_context(
                move |cx: &Context<'_>, n: u64| {
                    t.ran.fetch_add(1, Ordering::SeqCst);
                    if n == 64 {
                        let _ = t.first_wave.send(());
                    }
                    for child in [2 * n, 2 * n + 1] {
                        if child < 1 << 14 {
                            match cx.put(node(t.clone(), child)) {
                                Ok(_) => t.accepted.fetch_add(1, Ordering::SeqCst),
                                Err(callpool::PutError::ShutDown(_)) => {
                                    t.refused.fetch_add(1, Ordering::SeqCst)
                                }
                                Err(e) => panic!("{e}"),
                            };
                        }
                    }
                },
                n,
            )
            .on_result(move |_, ()| {
                heard.fetch_add(1, Ordering::SeqCst);
            })
            .into()
        }
        let pool = ThreadPool::new(2);
        let (first_wave, started) = mpsc::channel();
        let t = Tally {
            accepted: Arc::new(AtomicUsize::new(1)),
            refused: Arc::new(AtomicUsize::new(0)),
            ran: Arc::new(AtomicUsize::new(0)),
            heard: Arc::new(AtomicUsize::new(0)),
            first_wave,
        };
        pool.put_request(node(t.clone(), 1)).unwrap();
        started.recv_timeout(common::HANG).unwrap();
        pool.shutdown().unwrap();
        let load = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        (
            load(&t.accepted),
            load(&t.refused),
            load(&t.ran),
            load(&t.heard),
        )
    });
    assert_eq!(ran, accepted, "every accepted request ran, once");
    assert_eq!(
        heard, accepted,
        "and its callback ran before shutdown returned"
    );
    // Every node of the full tree was either accepted or refused, once:
    // a refused node's subtree was never reached.
    assert!(accepted + refused < 1 << 14);
    assert!(accepted >= 64);
    Ok(())
}

/// Work that makes work nested in a callable, on a pool of one worker:
/// the guide says the waiting worker runs its own queued requests itself,
/// so a collector tree read inside a callable, a scope that joins, and a
/// ticket waited for after the callable put children of its own all end.
#[test]
fn nested_work_that_makes_work_on_one_worker_ends() -> TestResult {
    let (tree, sum, ticket, children) = within("nested on one worker", || {
        fn grow(cx: &CollectorContext<'_, u32>, n: u32) -> u32 {
            for next in [2 * n, 2 * n + 1] {
                if next < 128 {
                    cx.add_with_context(grow, next).expect("the pool is open");
                }
            }
            n
        }
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let (tx, rx) = mpsc::channel();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&heard);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                // Children of its own first: held in this worker's slot.
                for i in 0..10u32 {
                    let h = Arc::clone(&h);
                    cx.put(WorkRequest::new(|i: u32| i, i).on_result(move |_, _| {
                        h.fetch_add(1, Ordering::SeqCst);
                    }))
                    .expect("the pool is open");
                }
                // A collector tree read here, on the worker.
                let mut found = inner.collector::<u32>();
                found.put_with_context(grow, 1).expect("the pool is open");
                let tree = found.outcomes().count();
                // A scope whose request joins, over a local.
                let xs: Vec<u64> = (1..=10_000).collect();
                let mut sum_total = 0;
                inner
                    .scope(|s| {
                        s.put_with_context(sum, &xs[..])?;
                        s.wait_with(|_, part| sum_total += part.unwrap());
                        Ok::<_, callpool::ScopedPutError>(())
                    })
                    .expect("the pool is open");
                // A ticket submitted and waited for here.
                let ticket = inner.submit(|n: u64| n * n, 12).expect("open").wait();
                tx.send((tree, sum_total, ticket)).unwrap();
            },
            (),
        ))
        .unwrap();
        assert_eq!(pool.wait().unwrap(), 11);
        let (tree, sum, ticket) = rx.try_recv().unwrap();
        (tree, sum, ticket, heard.load(Ordering::SeqCst))
    });
    assert_eq!(tree, 127);
    assert_eq!(sum, 10_000 * 10_001 / 2);
    assert_eq!(ticket, Ok(144));
    assert_eq!(children, 10);
    Ok(())
}

/// A batch whose members make work: streams that emit items and put
/// children. The batch counts its members only, each once (a stream's
/// items are not members), its batch-done callback comes after every
/// member's end, and `wait` covers the children too.
#[test]
fn a_batch_of_streams_that_put_children_counts_members_once() -> TestResult {
    within_here("a batch of streams", || -> TestResult {
        let pool = ThreadPool::new(2);
        let here = thread::current().id();
        let (tx, rx) = mpsc::channel();
        let members: Vec<WorkRequest> = (0..10u32)
            .map(|m| {
                let (item_tx, done_tx, child_tx) = (tx.clone(), tx.clone(), tx.clone());
                WorkRequest::streaming(
                    move |m: u32, out: &Emitter<'_, u32>| {
                        for i in 0..5 {
                            out.emit(m * 10 + i)?;
                        }
                        let child_tx = child_tx.clone();
                        out.context()
                            .put(WorkRequest::new(|m: u32| m, m).on_result(move |_, m| {
                                child_tx.send(format!("child {m}")).unwrap()
                            }))
                            .expect("the pool is open");
                        Ok::<_, Closed>(())
                    },
                    m,
                )
                .on_result(move |_, i| item_tx.send(format!("item {i}")).unwrap())
                .on_done(move |_| done_tx.send(format!("end {m}")).unwrap())
                .into()
            })
            .collect();
        let batch = pool.put_batch(members)?;
        let (done_tx, done_rx) = mpsc::channel();
        let ended = tx.clone();
        batch.on_done(move |p| {
            ended.send("batch done".to_string()).unwrap();
            done_tx.send((thread::current().id(), p)).unwrap();
        });
        let handled = pool.wait()?;
        assert_eq!(handled, 10 * 5 + 10 + 10, "items, ends, children");
        let progress = batch.progress();
        assert_eq!(
            (
                progress.total,
                progress.done,
                progress.failed,
                progress.cancelled
            ),
            (10, 10, 0, 0)
        );
        let dones: Vec<_> = done_rx.try_iter().collect();
        assert_eq!(dones, [(here, progress)]);
        let heard: Vec<String> = rx.try_iter().collect();
        let batch_at = heard.iter().position(|h| h == "batch done").expect("heard");
        let last_end = heard
            .iter()
            .rposition(|h| h.starts_with("end "))
            .expect("ends");
        assert!(
            batch_at > last_end,
            "the batch is done after its last member: {heard:?}"
        );
        for m in 0..10u32 {
            let want: Vec<String> = (0..5).map(|i| format!("item {}", m * 10 + i)).collect();
            let mine: Vec<&String> = heard.iter().filter(|h| want.contains(h)).collect();
            assert_eq!(
                mine,
                want.iter().collect::<Vec<_>>(),
                "member {m}'s items in order"
            );
            let end_at = heard.iter().position(|h| *h == format!("end {m}")).unwrap();
            let last_item = heard.iter().position(|h| *h == want[4]).unwrap();
            assert!(end_at > last_item);
        }
        assert_eq!(heard.iter().filter(|h| h.starts_with("child ")).count(), 10);
        Ok(())
    })
}

/// A task that puts a batch (or a ticket) of follow-ups through a clone of
/// the handle, then thinks better of it: on one worker nothing it put has
/// started, so `Batch::cancel` cancels every member and `Ticket::cancel`
/// answers `true`; the batch ends all cancelled, its done callback on the
/// thread in `wait`.
#[test]
fn a_task_cancels_the_batch_and_ticket_it_put() -> TestResult {
    within_here("cancel from a task", || -> TestResult {
        let pool = ThreadPool::new(1);
        let inner = pool.clone();
        let (tx, rx) = mpsc::channel();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&heard);
        pool.put_request(WorkRequest::with_context(
            move |_: &Context<'_>, ()| {
                let h2 = Arc::clone(&h);
                let batch = inner
                    .put_batch(make_requests(
                        |n: u32| n,
                        0..10u32,
                        |_, _| panic!("cancelled: never runs"),
                        move |_, e| {
                            assert_eq!(e, TaskError::Cancelled);
                            h2.fetch_add(1, Ordering::SeqCst);
                        },
                    ))
                    .expect("the pool is open");
                let ticket = inner.submit(|n: u32| n, 1).expect("the pool is open");
                let batch_cancelled = batch.cancel();
                let ticket_cancelled = ticket.cancel();
                tx.send((batch, batch_cancelled, ticket_cancelled, ticket.wait()))
                    .unwrap();
            },
            (),
        ))?;
        let (batch, n, ticket_cancelled, ticket) = rx.recv_timeout(common::HANG)?;
        let (done_tx, done_rx) = mpsc::channel();
        batch.on_done(move |p| done_tx.send((thread::current().id(), p)).unwrap());
        assert_eq!(pool.wait()?, 11, "the task and its ten cancelled members");
        assert_eq!(
            (n, ticket_cancelled, ticket),
            (10, true, Err(TaskError::Cancelled))
        );
        assert_eq!(heard.load(Ordering::SeqCst), 10);
        let p = batch.progress();
        assert_eq!((p.total, p.done, p.cancelled), (10, 0, 10));
        let dones: Vec<_> = done_rx.try_iter().collect();
        assert_eq!(dones, [(thread::current().id(), p)]);
        Ok(())
    })
}

/// The distributor's results taken the other ways a collector offers: one
/// at a time with `next_outcome`, in a frame loop with `try_next_outcome`,
/// and with `poll_with` while `pending() > 0`. Each ends only after every
/// task added, transitively (a chain of adders here, so each parent ends
/// before its child is taken), and yields each outcome once.
#[test]
fn distributor_results_one_at_a_time_and_in_a_frame_loop() -> TestResult {
    within_here("distributor, other readers", || -> TestResult {
        fn adder(cx: &CollectorContext<'_, u64>, n: u64) -> u64 {
            if n > 0 {
                cx.add_with_context(adder, n - 1).expect("the pool is open");
            }
            for i in 0..10 {
                cx.add(|i: u64| 1000 + i, i).expect("the pool is open");
            }
            n
        }
        let pool = ThreadPool::new(3);
        // 51 adders (50 down to 0), each adding 10 leaves.
        let want_total = 51 + 510;

        let mut results = pool.collector::<u64>();
        results.put_with_context(adder, 50)?;
        let mut ids = HashSet::new();
        while let Some((id, outcome)) = results.next_outcome() {
            outcome?;
            assert!(ids.insert(id));
        }
        assert_eq!(ids.len(), want_total);

        results.put_with_context(adder, 50)?;
        let mut ids = HashSet::new();
        loop {
            match results.try_next_outcome() {
                std::task::Poll::Ready(Some((id, outcome))) => {
                    outcome?;
                    assert!(ids.insert(id));
                }
                std::task::Poll::Ready(None) => break,
                std::task::Poll::Pending => thread::yield_now(),
            }
        }
        assert_eq!(ids.len(), want_total);

        results.put_with_context(adder, 50)?;
        let mut ids = HashSet::new();
        while results.pending() > 0 {
            results.poll_with(|id, outcome| {
                outcome.unwrap();
                assert!(ids.insert(id));
            });
            thread::yield_now();
        }
        assert_eq!(ids.len(), want_total);
        Ok(())
    })
}

/// Waiting for one tree of work while another runs on the same workers:
/// put each root on a handle of its own (`new_handle`); what a callable
/// puts through its `Context` goes on its own request's handle, so that
/// handle's `wait` covers its tree alone, and never the other tree.
#[test]
fn one_tree_per_handle_is_waited_for_alone() -> TestResult {
    within_here("a tree per handle", || -> TestResult {
        fn walk(cx: &Context<'_>, depth: u32, door: Option<Arc<Door>>, ended: Arc<AtomicUsize>) {
            if let Some(door) = &door {
                door.pass();
            }
            if depth > 0 {
                for _ in 0..2 {
                    let (door, ended) = (door.clone(), Arc::clone(&ended));
                    cx.put(WorkRequest::with_context(
                        move |cx, d| walk(cx, d, door, ended),
                        depth - 1,
                    ))
                    .expect("the pool is open");
                }
            }
            ended.fetch_add(1, Ordering::SeqCst);
        }
        let pool = ThreadPool::new(3);
        let slow = pool.new_handle();
        let door = Arc::new(Door::default());
        let (slow_ended, fast_ended) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (d, e) = (Arc::clone(&door), Arc::clone(&slow_ended));
        slow.put_request(WorkRequest::with_context(
            move |cx, depth| walk(cx, depth, Some(d), e),
            4,
        ))?;
        let e = Arc::clone(&fast_ended);
        pool.put_request(WorkRequest::with_context(
            move |cx, depth| walk(cx, depth, None, e),
            6,
        ))?;
        assert_eq!(pool.wait()?, 127);
        assert_eq!(fast_ended.load(Ordering::SeqCst), 127);
        assert_eq!(
            slow_ended.load(Ordering::SeqCst),
            0,
            "the other tree is held at its door"
        );
        assert!(slow.pending() > 0);
        door.open();
        assert_eq!(slow.wait()?, 31);
        assert_eq!(slow_ended.load(Ordering::SeqCst), 31);
        Ok(())
    })
}

/// A distributor user's first try at "wait for my children" inside a
/// task: `wait` on a clone of the handle, on a worker. It does not hang:
/// it returns `WaitError::OnWorkerThread`, whose message says what to use
/// instead; the children still run and the outer `wait` covers them.
#[test]
fn waiting_for_children_inside_a_task_is_refused_with_advice() -> TestResult {
    within_here("wait inside a task", || -> TestResult {
        let pool = ThreadPool::new(2);
        let inner = pool.clone();
        let (tx, rx) = mpsc::channel();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, n: u32| {
                for _ in 0..n {
                    let r = Arc::clone(&r);
                    cx.execute(move || {
                        r.fetch_add(1, Ordering::SeqCst);
                    })
                    .expect("the pool is open");
                }
                tx.send(inner.wait()).unwrap();
            },
            8,
        ))?;
        pool.wait()?;
        let refused = rx.try_recv()?;
        assert_eq!(refused, Err(callpool::WaitError::OnWorkerThread));
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains("collector") && message.contains("scope"),
            "{message}"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 8);
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Streams and trees beside bounded result queues.
// ---------------------------------------------------------------------------

/// A stream stuck on a full bounded result queue (one worker) while this
/// thread reads a collector whose request is queued behind it: the guide's
/// "Which thread runs what" says the collector runs the handle's callbacks
/// then, so the worker goes on; every item is heard once.
#[test]
fn a_stream_on_a_full_result_queue_does_not_stall_a_collector() {
    let heard = within("collector beside a stuck stream", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .result_capacity(1)
            .build()
            .unwrap();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&heard);
        pool.put_request(
            WorkRequest::streaming(
                |n: u32, out: &Emitter<'_, u32>| {
                    for i in 0..n {
                        out.emit(i)?;
                    }
                    Ok::<_, Closed>(())
                },
                100,
            )
            .on_result(move |_, _| {
                h.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        let mut c = pool.collector::<u32>();
        c.put(|n: u32| n, 7).unwrap();
        let got: Vec<_> = c.outcomes().map(|(_, o)| o.unwrap()).collect();
        assert_eq!(got, [7]);
        pool.wait().unwrap();
        heard.load(Ordering::SeqCst)
    });
    assert_eq!(heard, 100);
}

/// The same for a tree of children on a full bounded result queue, while
/// this thread waits for tickets and scopes.
#[test]
fn a_tree_on_a_full_result_queue_does_not_stall_tickets_and_scopes() {
    let heard = within("ticket beside a stuck tree", || {
        let pool = ThreadPool::builder()
            .workers(2)
            .result_capacity(1)
            .build()
            .unwrap();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&heard);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, n: u32| {
                for i in 0..n {
                    let h = Arc::clone(&h);
                    cx.put(WorkRequest::new(|i: u32| i, i).on_result(move |_, _| {
                        h.fetch_add(1, Ordering::SeqCst);
                    }))
                    .unwrap();
                }
            },
            500,
        ))
        .unwrap();
        for _ in 0..20 {
            assert_eq!(pool.submit(|n: u32| n + 1, 1).unwrap().wait(), Ok(2));
            let mut t = 0;
            pool.scope(|s| {
                s.put(|n: u32| n, 3).unwrap();
                s.wait_with(|_, n| t += n.unwrap());
            });
            assert_eq!(t, 3);
        }
        pool.wait().unwrap();
        heard.load(Ordering::SeqCst)
    });
    assert_eq!(heard, 500);
}

/// `Emitter::context`: "emit from the first half of a `join` or after it
/// returns, and let the second half return what it found".
#[test]
fn a_stream_emits_from_the_first_half_of_a_join_and_after() {
    let items = within("stream join", || {
        let pool = ThreadPool::new(2);
        let (tx, rx) = mpsc::channel();
        pool.put_request(
            WorkRequest::streaming(
                |n: u64, out: &Emitter<'_, u64>| {
                    let (a, b) = out.context().join(|_| out.emit(1).map(|_| n), |_| n * 2);
                    out.emit(a? + b)?;
                    Ok::<_, Closed>(())
                },
                10,
            )
            .on_result(move |_, i| tx.send(i).unwrap()),
        )
        .unwrap();
        pool.wait().unwrap();
        rx.try_iter().collect::<Vec<_>>()
    });
    assert_eq!(items, [1, 30]);
}
