//! Scoped requests that put more borrowing requests into their own scope
//! (`Scope::put_scoped`, `ScopeContext`): a walk over a tree that stays on
//! the caller's stack runs each node exactly once, on the workers, and
//! every outcome comes out on the scope's thread; the scope waits for the
//! whole tree, whatever a node, the body or a shutdown does meanwhile.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::{self, ThreadId};

use callpool::{ScopeContext, ScopedPutError, TaskError, ThreadPool};
use common::{assert_each_once, within, within_here};

const DELIBERATE: &str = "scope_context: deliberate panic";

/// A binary tree in a vector that the test owns: node `i`'s children are
/// `2i+1` and `2i+2`, below `values.len()`. The nodes' requests borrow it.
struct Tree {
    values: Vec<u64>,
    /// How many times each node's callable ran.
    runs: Vec<AtomicUsize>,
    /// A node whose callable panics after it has put its children.
    panic_at: Option<usize>,
    /// A node whose callable shuts the pool down (the handle is taken
    /// once) before it puts its children.
    stop_at: Option<(usize, Mutex<Option<ThreadPool>>)>,
    /// Child puts the pool refused.
    refused: AtomicUsize,
    /// A gate every node but the root passes before it runs.
    hold: Option<common::one_way::Gate>,
}

impl Tree {
    /// A full binary tree of `depth` levels below the root:
    /// `2^(depth+1) - 1` nodes, node `i` holding the value `i + 1`.
    fn full(depth: u32) -> Tree {
        let n = (1usize << (depth + 1)) - 1;
        Tree {
            values: (1..=n as u64).collect(),
            runs: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            panic_at: None,
            stop_at: None,
            refused: AtomicUsize::new(0),
            hold: None,
        }
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn sum(&self) -> u64 {
        self.values.iter().sum()
    }

    fn ran(&self) -> usize {
        self.runs.iter().map(|r| r.load(Ordering::SeqCst)).sum()
    }
}

type Visit = (usize, u64, ThreadId);

/// A tree's depth: `normal`, or at most 3 under Miri, which is slow.
fn depth(normal: u32) -> u32 {
    if cfg!(miri) {
        normal.min(3)
    } else {
        normal
    }
}

/// One node's request: counts its run, puts a request for each child
/// (borrowing the tree), and returns its index, value and thread.
fn walk<'env>(sc: &ScopeContext<'_, 'env, Visit>, (tree, i): (&'env Tree, usize)) -> Visit {
    if let (Some(hold), true) = (&tree.hold, i > 0) {
        hold.pass();
    }
    tree.runs[i].fetch_add(1, Ordering::SeqCst);
    if let Some((at, stopper)) = &tree.stop_at {
        if *at == i {
            let stopper = stopper.lock().unwrap().take().expect("taken once");
            drop(stopper.shutdown_now());
        }
    }
    for child in [2 * i + 1, 2 * i + 2] {
        if child < tree.len() {
            match sc.put_scoped(walk, (tree, child)) {
                Ok(_) => {}
                Err(ScopedPutError::ShutDown(_)) => {
                    tree.refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(other) => panic!("unexpected refusal {other}"),
            }
        }
    }
    if tree.panic_at == Some(i) {
        panic!("{DELIBERATE}: node {i}");
    }
    (i, tree.values[i], thread::current().id())
}

/// The whole tree of depth 10 (2,047 nodes) walked from one root request:
/// every node's callable runs exactly once, on a worker; exactly one
/// outcome per node comes out of `wait_with`, on the scope's thread, into
/// a `&mut` local; the sum is the tree's.
fn walk_the_whole_tree(workers: usize) {
    let pool = ThreadPool::new(workers);
    let tree = Tree::full(depth(10));
    let n = tree.len();
    let me = thread::current().id();
    let mut seen = vec![0usize; n];
    let (mut count, mut sum, mut elsewhere) = (0, 0, 0);
    within_here("the walk", || {
        pool.scope(|s| {
            s.put_scoped(walk, (&tree, 0)).unwrap();
            s.wait_with(|_, visit| {
                assert_eq!(thread::current().id(), me, "an outcome handled elsewhere");
                let (i, value, ran_on) = visit.unwrap();
                seen[i] += 1;
                count += 1;
                sum += value;
                if ran_on != me {
                    elsewhere += 1;
                }
            });
            assert_eq!(s.pending(), 0);
        });
    });
    if !cfg!(miri) {
        assert_eq!(n, 2_047);
    }
    assert_eq!(count, n);
    assert_eq!(sum, (n * (n + 1) / 2) as u64);
    assert!(seen.iter().all(|&k| k == 1), "an outcome lost or doubled");
    assert_each_once("node callables", &tree.runs);
    assert_eq!(elsewhere, n, "every callable ran on a worker");
}

#[test]
fn a_borrowed_tree_is_walked_once_per_node_on_one_worker() {
    walk_the_whole_tree(1);
}

#[test]
fn a_borrowed_tree_is_walked_once_per_node_on_four_workers() {
    walk_the_whole_tree(4);
}

/// Outcomes nobody reads in the body are still waited for: the scope
/// returns only after the whole tree ran, and `outcomes()` read afterwards
/// in a second scope sees its own tree whole.
#[test]
fn the_scope_waits_for_every_node_even_unread() {
    within("unread", || {
        let pool = ThreadPool::new(2);
        let tree = Tree::full(8);
        pool.scope(|s| {
            s.put_scoped(walk, (&tree, 0)).unwrap();
        });
        assert_each_once("node callables", &tree.runs);
        let again = Tree::full(6);
        let total: u64 = pool.scope(|s| {
            s.put_scoped(walk, (&again, 0)).unwrap();
            s.outcomes().map(|(_, visit)| visit.unwrap().1).sum()
        });
        assert_eq!(total, again.sum());
        assert_each_once("second tree's callables", &again.runs);
    });
}

/// What keeps the scope from returning while the tree grows is its own
/// count of loans, which a node's children join before the node's own
/// loan goes back, not its collector: with the collector swapped out
/// (through `DerefMut`) and parked beyond the scope, the scope still waits
/// until every node has run.
#[test]
fn the_scope_waits_for_the_tree_even_with_its_collector_swapped_out() {
    within("swapped collector", || {
        let pool = ThreadPool::new(2);
        let mut tree = Tree::full(depth(7));
        tree.hold = Some(common::one_way::Gate::default());
        let gate = common::one_way::Gate::default();
        let mut parked = None;
        thread::scope(|t| {
            let (gate, tree) = (&gate, &tree);
            let (waiting_tx, waiting) = mpsc::channel::<()>();
            // Opens the root's gate once the body has returned, and the
            // other nodes' a little after the root has put its children:
            // the scope is most likely in its wait by then (the pauses
            // only make the test sharper).
            t.spawn(move || {
                let _ = waiting.recv_timeout(common::HANG);
                thread::sleep(std::time::Duration::from_millis(20));
                gate.open();
                thread::sleep(std::time::Duration::from_millis(50));
                tree.hold.as_ref().expect("held").open();
            });
            pool.scope(|s| {
                s.put_scoped(
                    move |sc: &ScopeContext<'_, '_, Visit>, _: ()| {
                        gate.pass();
                        walk(sc, (tree, 0))
                    },
                    (),
                )
                .unwrap();
                let mut decoy = pool.collector::<Visit>();
                std::mem::swap(&mut **s, &mut decoy);
                assert_eq!(s.pending(), 0);
                // Out of the scope's reach: its drain sees nothing pending.
                parked = Some(decoy);
                waiting_tx.send(()).unwrap();
            });
            assert_each_once("node callables, as the scope returned", &tree.runs);
        });
        let mut parked = parked.expect("parked");
        let n = tree.len();
        assert_eq!(parked.wait_with(|_, visit| assert!(visit.is_ok())), n);
    });
}

/// A child is pending on the scope from the moment it is put, before its
/// parent returns: `pending()` on the scope's thread counts both while the
/// parent waits, and the child's outcome comes out like the parent's.
#[test]
fn a_child_counts_as_pending_from_the_moment_it_is_put() {
    within("pending", || {
        let pool = ThreadPool::new(2);
        let (put_tx, put) = mpsc::channel::<()>();
        let (ack_tx, ack) = mpsc::channel::<()>();
        let gate = common::one_way::Gate::default();
        let mut outcomes = Vec::new();
        pool.scope(|s| {
            let gate = &gate;
            s.put_scoped(
                move |sc: &ScopeContext<'_, '_, &str>, _: ()| {
                    sc.put(
                        move |_: ()| {
                            gate.pass();
                            "child"
                        },
                        (),
                    )
                    .unwrap();
                    put_tx.send(()).unwrap();
                    ack.recv_timeout(common::HANG).unwrap();
                    "parent"
                },
                (),
            )
            .unwrap();
            put.recv_timeout(common::HANG).unwrap();
            assert_eq!(s.pending(), 2, "the child is counted while its parent runs");
            ack_tx.send(()).unwrap();
            let first = s.next_outcome().map(|(_, o)| o.unwrap());
            assert_eq!(first, Some("parent"), "the child is held at the gate");
            assert_eq!(s.pending(), 1);
            gate.open();
            s.wait_with(|_, outcome| outcomes.push(outcome.unwrap()));
            assert_eq!(s.pending(), 0);
        });
        assert_eq!(outcomes, ["child"]);
    });
}

/// A node that panics after putting its children: its outcome is
/// `Panicked`, its children and every other node still run, once each,
/// and nothing is lost; the scope itself does not panic.
#[test]
fn a_panicking_node_is_its_own_outcome_and_the_rest_still_run() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking node", || {
        let pool = ThreadPool::new(3);
        let mut tree = Tree::full(6);
        tree.panic_at = Some(5);
        let (mut ok, mut panicked) = (Vec::new(), Vec::new());
        pool.scope(|s| {
            let root = s.put_scoped(walk, (&tree, 0)).unwrap();
            s.wait_with(|id, visit| match visit {
                Ok((i, _, _)) => ok.push(i),
                Err(TaskError::Panicked(message)) => {
                    assert_ne!(id, root);
                    panicked.push(message);
                }
                Err(other) => panic!("unexpected outcome {other:?}"),
            });
        });
        assert_each_once("node callables", &tree.runs);
        assert_eq!(panicked.len(), 1);
        assert!(panicked[0].contains("node 5"), "{panicked:?}");
        ok.sort_unstable();
        let expected: Vec<usize> = (0..tree.len()).filter(|&i| i != 5).collect();
        assert_eq!(ok, expected);
    });
}

/// The body panics while the tree's requests are held at a gate: the
/// panic passes out of `scope` only after every node ran (each once), and
/// nothing runs after it (the pool is joined, the counts unchanged).
#[test]
fn a_panicking_body_waits_for_the_whole_tree_then_panics() {
    common::hide_panics_starting_with(DELIBERATE);
    within("panicking body", || {
        let pool = ThreadPool::new(2);
        let tree = Tree::full(depth(5));
        let gate = common::one_way::Gate::default();
        let (started_tx, started) = mpsc::channel::<()>();
        let (panicked_tx, panicked) = mpsc::channel::<()>();
        let result = thread::scope(|t| {
            let gate = &gate;
            // Opens the gate a little after the body panicked; the pause
            // only makes the test sharper (the scope is waiting by then).
            t.spawn(move || {
                let _ = panicked.recv_timeout(common::HANG);
                thread::sleep(std::time::Duration::from_millis(20));
                gate.open();
            });
            panic::catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    let tree = &tree;
                    s.put_scoped(
                        move |sc: &ScopeContext<'_, '_, Visit>, _: ()| {
                            started_tx.send(()).unwrap();
                            gate.pass();
                            walk(sc, (tree, 0))
                        },
                        (),
                    )
                    .unwrap();
                    started.recv_timeout(common::HANG).unwrap();
                    panicked_tx.send(()).unwrap();
                    panic!("{DELIBERATE}: the body");
                })
            }))
        });
        let payload = result.expect_err("the body's panic passes on");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("the body"), "{message}");
        assert_each_once("node callables", &tree.runs);
        pool.shutdown().unwrap();
        assert_each_once("node callables after the pool joined", &tree.runs);
    });
}

/// Another handle shuts the pool down from inside node 10's callable (2's
/// under Miri) while the tree grows: every node runs at most once; each
/// child put either
/// went in (and ends as its node's outcome, or as `Cancelled` if swept
/// unrun) or was refused (`ScopedPutError::ShutDown`, and it still ends as
/// `Cancelled`, as a refused `CollectorContext::add` does); so exactly one
/// outcome per put, and the scope returns.
fn shutdown_while_the_tree_grows(workers: usize) {
    let pool = ThreadPool::new(workers);
    let mut tree = Tree::full(depth(9));
    let stop_at = if cfg!(miri) { 2 } else { 10 };
    tree.stop_at = Some((stop_at, Mutex::new(Some(pool.new_handle()))));
    let (mut ran, mut cancelled) = (Vec::new(), 0);
    within_here("the walk under shutdown", || {
        pool.scope(|s| {
            s.put_scoped(walk, (&tree, 0)).unwrap();
            s.wait_with(|_, visit| match visit {
                Ok((i, _, _)) => ran.push(i),
                Err(TaskError::Cancelled) => cancelled += 1,
                Err(other) => panic!("unexpected outcome {other:?}"),
            });
        });
    });
    assert!(
        tree.runs.iter().all(|r| r.load(Ordering::SeqCst) <= 1),
        "a node ran twice"
    );
    ran.sort_unstable();
    let ran_nodes: Vec<usize> = (0..tree.len())
        .filter(|&i| tree.runs[i].load(Ordering::SeqCst) == 1)
        .collect();
    assert_eq!(
        ran, ran_nodes,
        "a node ran without its outcome, or the reverse"
    );
    assert!(ran.contains(&stop_at), "the stopping node ran");
    // Every node that ran put (or tried to put) its children: one outcome
    // per node that ran, one per child put, none else.
    let children_tried: usize = ran_nodes
        .iter()
        .map(|&i| {
            [2 * i + 1, 2 * i + 2]
                .iter()
                .filter(|&&c| c < tree.len())
                .count()
        })
        .sum();
    assert_eq!(
        ran.len() + cancelled,
        1 + children_tried,
        "outcomes lost or doubled"
    );
    // The stopping node puts after the shutdown: both its children are
    // refused.
    assert!(tree.refused.load(Ordering::SeqCst) >= 2);
    assert!(cancelled >= tree.refused.load(Ordering::SeqCst));
    assert!(ran.len() < tree.len(), "the shutdown stopped the tree");
}

#[test]
fn shutdown_while_a_scoped_tree_grows_on_one_worker() {
    shutdown_while_the_tree_grows(1);
}

#[test]
fn shutdown_while_a_scoped_tree_grows_on_four_workers() {
    shutdown_while_the_tree_grows(4);
}

/// A scope opened inside the only worker's callable walks its tree there:
/// the waiting worker runs the scope's requests, the children included,
/// so the walk never waits for a worker that is waiting too.
#[test]
fn a_scoped_tree_inside_the_only_workers_callable_runs_there() {
    within("nested", || {
        let pool = ThreadPool::new(1);
        let mut outer = pool.collector::<(u64, usize)>();
        let inner_pool = pool.new_handle();
        outer
            .put(
                move |_: ()| {
                    let tree = Tree::full(6);
                    let total: u64 = inner_pool.scope(|s| {
                        s.put_scoped(walk, (&tree, 0)).unwrap();
                        s.outcomes().map(|(_, visit)| visit.unwrap().1).sum()
                    });
                    (total, tree.ran())
                },
                (),
            )
            .unwrap();
        let (_, outcome) = outer.next_outcome().expect("one request");
        assert_eq!(outcome.unwrap(), (127 * 128 / 2, 127));
    });
}

/// A `join` in a scoped request splits a borrowed slice; each half puts a
/// request per piece into the scope, from whichever worker ran it.
#[test]
fn join_halves_put_borrowing_pieces_into_the_scope() {
    fn split<'env>(sc: &ScopeContext<'_, 'env, u64>, xs: &'env [u64], pieces: &'env AtomicUsize) {
        if xs.len() <= 64 {
            pieces.fetch_add(1, Ordering::SeqCst);
            sc.put(|xs: &[u64]| xs.iter().sum(), xs).unwrap();
        } else {
            let (a, b) = xs.split_at(xs.len() / 2);
            sc.join(|sc| split(sc, a, pieces), |sc| split(sc, b, pieces));
        }
    }
    within("join", || {
        let pool = ThreadPool::new(4);
        let xs: Vec<u64> = (0..8_192).collect();
        let pieces = AtomicUsize::new(0);
        let (mut outcomes, mut total) = (0, 0);
        pool.scope(|s| {
            let (xs, pieces) = (&xs[..], &pieces);
            s.put_scoped(
                move |sc: &ScopeContext<'_, '_, u64>, _: ()| {
                    split(sc, xs, pieces);
                    0
                },
                (),
            )
            .unwrap();
            s.wait_with(|_, sum| {
                outcomes += 1;
                total += sum.unwrap();
            });
        });
        assert_eq!(pieces.load(Ordering::SeqCst), 128);
        assert_eq!((outcomes, total), (128 + 1, 8_192 * 8_191 / 2));
    });
}

/// Fallible forms: a failing child's `Err` comes out as `Failed`, once.
#[test]
fn a_failing_scoped_child_is_failed_once() {
    fn check<'env>(
        sc: &ScopeContext<'_, 'env, u32, String>,
        xs: &'env [u32],
    ) -> Result<u32, String> {
        if let [x] = xs {
            return if x % 7 == 0 {
                Err(format!("{x}"))
            } else {
                Ok(*x)
            };
        }
        let (a, b) = xs.split_at(xs.len() / 2);
        sc.put_fallible_scoped(check, a)
            .map_err(|e| e.to_string())?;
        sc.put_fallible_scoped(check, b)
            .map_err(|e| e.to_string())?;
        Ok(0)
    }
    within("fallible", || {
        let pool = ThreadPool::new(2);
        let xs: Vec<u32> = (1..=100).collect();
        let (mut sum, mut failed) = (0, Vec::new());
        pool.fallible_scope(|s| {
            s.put_fallible_scoped(check, &xs[..]).unwrap();
            s.wait_with(|_, outcome| match outcome {
                Ok(n) => sum += n,
                Err(TaskError::Failed(x)) => failed.push(x.parse::<u32>().unwrap()),
                Err(other) => panic!("unexpected outcome {other:?}"),
            });
        });
        failed.sort_unstable();
        assert_eq!(failed, (1..=14).map(|k| 7 * k).collect::<Vec<_>>());
        assert_eq!(sum, 5_050 - 7 * 105);
    });
}

/// 100,000 children of one scoped request (1,000 requests of 100 leaves
/// each), each borrowing its slot of a vector on the caller's stack and
/// counting there: all run once, all outcomes come out.
#[test]
fn a_hundred_thousand_borrowing_children() {
    within("100,000", || walk_flat(1_000, 100));
}

/// A million, for a manual run: `cargo test --release --test scope_context
/// -- --ignored`.
#[test]
#[ignore = "long: a million scoped requests"]
fn a_million_borrowing_children() {
    within("a million", || walk_flat(1_000, 1_000));
}

fn walk_flat(fan: usize, leaves: usize) {
    let pool = ThreadPool::new(4);
    let hits: Vec<AtomicUsize> = (0..fan * leaves).map(|_| AtomicUsize::new(0)).collect();
    let mut count = 0usize;
    let mut sum = 0u64;
    pool.scope(|s| {
        let hits = &hits[..];
        s.put_scoped(
            move |sc: &ScopeContext<'_, '_, u64>, _: ()| {
                for group in hits.chunks(leaves) {
                    sc.put_scoped(
                        |sc: &ScopeContext<'_, '_, u64>, group: &[AtomicUsize]| {
                            for hit in group {
                                sc.put(
                                    |hit: &AtomicUsize| {
                                        // Read after the scope, which waited for it.
                                        hit.fetch_add(1, Ordering::Relaxed);
                                        1
                                    },
                                    hit,
                                )
                                .unwrap();
                            }
                            0
                        },
                        group,
                    )
                    .unwrap();
                }
                0
            },
            (),
        )
        .unwrap();
        s.wait_with(|_, n| {
            count += 1;
            sum += n.unwrap();
        });
    });
    assert_eq!(count, 1 + fan + fan * leaves);
    assert_eq!(sum, (fan * leaves) as u64);
    assert_each_once("leaves", &hits);
}
