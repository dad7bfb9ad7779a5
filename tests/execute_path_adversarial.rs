//! An adversarial trial of the executed-request path after its trim
//! (`docs/performance.md`, *Frames on the executed child's path*): the
//! rarely taken branches of `execute`, `Context::execute` and their
//! context forms, where the worker's slot holds executed children, the
//! emptied boxes go back to their handle, and the queue refills and wakes
//! its putters. Children held in slots while the pool is resized to 0, 1
//! and up, its workers dismissed, shut down at once (`shutdown_now`, also
//! on the global pool), with a timeout, or gracefully (`close`, with the
//! parents' workers dismissed); executed requests beside callback
//! requests and tickets with user-chosen ids; bounded queues with blocked
//! putters while a slot hands off; a scope on the parent's worker sharing
//! its slot; autoscaling retirements; refused executed requests put again
//! every way; panics and panicking `Drop`s (counted, logged, never
//! printed); and the live heap after a million executed children. Every
//! count is exact; time only turns a hang into a failure. `EPA_SCALE=n`
//! runs the seeded scenarios n times as many rounds.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use callpool::{Context, PutError, ShutdownError, ThreadPool, WaitError, WorkRequest};
use common::one_way::{Gate, OpenOnDrop};
use common::PanicsOnDrop;
use common::{assert_each_once, counter, hit_counters, until, Rng};

const DELIBERATE: &str = "execute_path_adversarial: deliberate panic";

const CHILD_ENV: &str = "EXECUTE_PATH_ADVERSARIAL_CHILD";

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

/// Rounds of the seeded scenarios; `EPA_SCALE=n` runs n times as many.
fn rounds(base: usize) -> usize {
    base * std::env::var("EPA_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs a seeded scenario on another thread, failing if its rounds stop
/// moving for [`common::HANG`] (a hang), however long all of them take:
/// `EPA_SCALE` makes them as many as one likes.
fn scaled(what: &str, f: impl FnOnce(&AtomicUsize) + Send + 'static) {
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&progress);
    common::within_progress(
        what,
        move || seen.load(Ordering::SeqCst),
        move || f(&progress),
    );
}

/// A closure that counts its run in `hits[i]`.
fn hit(hits: &Arc<Vec<AtomicUsize>>, i: usize) -> impl FnOnce() + Send + 'static {
    let hits = Arc::clone(hits);
    move || {
        hits[i].fetch_add(1, Ordering::SeqCst);
    }
}

fn ran(hits: &[AtomicUsize]) -> usize {
    hits.iter().map(|h| h.load(Ordering::SeqCst)).sum()
}

/// Parents, each on a worker of its own, hold executed children in their
/// workers' slots (fewer than a batch, or more: then a batch went to the
/// queue) while blocked; meanwhile the pool is resized to 0, to 1, up,
/// or some of its workers dismissed (the ones running parents among
/// them). Then the parents go on and add more children. Every child runs
/// exactly once, `wait` covers them all (after workers are created
/// again, if none was left), and the statistics count each request once.
#[test]
fn executed_children_in_slots_survive_resizes_to_zero_one_and_up() {
    scaled("children in slots across resizes", |progress| {
        let mut rng = Rng(0x51_07_5e_ed);
        for round in 0..rounds(60) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(3) as usize;
            let pool = ThreadPool::new(workers);
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let parents = workers + rng.below(2) as usize;
            // Often one child alone, or a batch's edges (a hand-off due at
            // the 64th), and often nothing added after the resize.
            let before = [1, 1, 63, 64, 65, 1 + rng.below(130) as usize][rng.below(6) as usize];
            let after = [0, 0, 1, rng.below(70) as usize][rng.below(4) as usize];
            let per_parent = before + after;
            let hits = hit_counters(parents * per_parent);
            let started = counter();
            let held = counter();
            let all_started = Arc::new(Gate::default());
            let _open_too = OpenOnDrop(Arc::clone(&all_started));
            for p in 0..parents {
                let (hits, gate, started, held, all_started) = (
                    Arc::clone(&hits),
                    Arc::clone(&gate),
                    Arc::clone(&started),
                    Arc::clone(&held),
                    Arc::clone(&all_started),
                );
                pool.execute_with_context(move |cx: &Context<'_>| {
                    // Every worker holds a parent before any child is put,
                    // so that no child can run before the resize.
                    started.fetch_add(1, Ordering::SeqCst);
                    all_started.pass();
                    for j in 0..before {
                        cx.execute(hit(&hits, p * per_parent + j)).expect("open");
                    }
                    held.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                    for j in before..per_parent {
                        cx.execute(hit(&hits, p * per_parent + j)).expect("open");
                    }
                })
                .unwrap();
            }
            until(|| started.load(Ordering::SeqCst) == workers);
            all_started.open();
            until(|| held.load(Ordering::SeqCst) == workers);
            assert_eq!(pool.pending(), parents + workers * before, "round {round}");
            // `queued` counts the parents still queued and each callable's
            // batches of 64, not the children held in the slots.
            let queued = parents - workers + workers * (before / 64 * 64);
            assert_eq!(
                (pool.queued(), pool.stats().queued),
                (queued, queued),
                "round {round}"
            );
            let action = rng.below(5);
            match action {
                0 => pool.resize(0).unwrap(),
                1 => pool.resize(1).unwrap(),
                2 => pool.resize(workers + 2).unwrap(),
                3 => {
                    pool.dismiss_workers(rng.below(workers as u64 + 1) as usize);
                }
                _ => {
                    pool.dismiss_workers(workers);
                    pool.create_workers(1).unwrap();
                }
            }
            gate.open();
            if pool.workers() == 0 {
                // The dismissed workers finish their parents (handing the
                // children to the queue) and leave: what is left waits.
                until(|| pool.threads() == 0);
                let left = pool.pending();
                assert_eq!(
                    pool.wait(),
                    Err(WaitError::NoWorkersAvailable { pending: left }),
                    "round {round}"
                );
                // The parents not started, and every child of those that ran.
                assert_eq!(
                    left,
                    parents - workers + workers * per_parent,
                    "round {round}"
                );
                pool.resize(2).unwrap();
            }
            assert_eq!(pool.wait(), Ok(0), "round {round}, action {action}");
            assert_each_once("executed child", &hits);
            let stats = pool.stats();
            assert_eq!(
                (
                    stats.completed,
                    stats.cancelled,
                    stats.panicked,
                    stats.failed
                ),
                ((parents * (1 + per_parent)) as u64, 0, 0, 0),
                "round {round}, action {action}"
            );
            assert_eq!(pool.pending(), 0);
            pool.shutdown().unwrap();
        }
    });
}

/// What each executed request of [`shutdown_now_with_children_in_slots`]
/// did: ran (before `shutdown_now` returned, or after: a defect), or was
/// let go of unrun.
struct Outcomes {
    ran: Vec<AtomicUsize>,
    ran_late: AtomicUsize,
    dropped_unrun: Vec<AtomicUsize>,
}

/// A child's work: counts its run, or its drop unrun.
struct Child {
    i: usize,
    ran: bool,
    out: Arc<Outcomes>,
    late: Arc<AtomicBool>,
}

impl Child {
    fn run(mut self) {
        self.ran = true;
        self.out.ran[self.i].fetch_add(1, Ordering::SeqCst);
        if self.late.load(Ordering::SeqCst) {
            self.out.ran_late.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Child {
    /// Counts a drop unrun; one in three then panics, wherever the pool
    /// (or the user) lets go of it: it must be contained there.
    fn drop(&mut self) {
        if !self.ran {
            self.out.dropped_unrun[self.i].fetch_add(1, Ordering::SeqCst);
            if self.i % 3 == 0 && !thread::panicking() {
                panic!("{DELIBERATE}: a child dropped unrun");
            }
        }
    }
}

/// `shutdown_now` while parents on two handles (executed, tickets' with a
/// context, or callback requests with user-chosen ids) hold executed
/// children in their workers' slots, with more executed requests queued
/// behind: the
/// closing handle's unstarted requests come back (children included),
/// the other handle's are cancelled (counted in `stats()`, their work
/// dropped unrun), none starts after `shutdown_now` returns, and the
/// parents' later `cx.execute` calls are refused and handed back. Each
/// request ends exactly once: ran, handed back, or cancelled; a third of
/// them panic as they are dropped unrun, and each such panic is
/// contained where it happens.
#[test]
fn shutdown_now_with_children_in_slots() {
    common::hide_panics_starting_with(DELIBERATE);
    scaled("shutdown_now with children in slots", |progress| {
        let mut rng = Rng(0xdead_51075);
        for round in 0..rounds(60) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(3) as usize;
            let pool = ThreadPool::new(workers);
            let keep = pool.clone();
            let other = pool.new_handle();
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let late = Arc::new(AtomicBool::new(false));
            let per_parent = 1 + rng.below(80) as usize;
            let queued = rng.below(20) as usize;
            // Requests: per worker a parent and its children, then `queued`
            // executed requests per handle.
            let n = workers * (1 + per_parent) + 2 * queued;
            let out = Arc::new(Outcomes {
                ran: (0..n).map(|_| AtomicUsize::new(0)).collect(),
                ran_late: AtomicUsize::new(0),
                dropped_unrun: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            });
            let child = |i: usize| Child {
                i,
                ran: false,
                out: Arc::clone(&out),
                late: Arc::clone(&late),
            };
            let started = counter();
            let held_count = counter();
            let all_started = Arc::new(Gate::default());
            let _open_too = OpenOnDrop(Arc::clone(&all_started));
            let refused_later = counter();
            let on_other: Vec<bool> = (0..workers).map(|_| rng.chance(50)).collect();
            // Held children of the parents on each handle: the closing
            // handle's come back, the other's are cancelled.
            let (mut own_held, mut other_held) = (0, 0);
            let (mut own_results, mut other_results) = (0, 0);
            // Each parent's held children's ids, in the order it put them.
            let held_ids = Arc::new(Mutex::new(Vec::new()));
            let mut tickets = Vec::new();
            for (w, &on_other) in on_other.iter().enumerate() {
                let base = w * (1 + per_parent);
                let parent = child(base);
                let children: Vec<Child> = (1..=per_parent).map(|j| child(base + j)).collect();
                let held = rng.below(per_parent as u64 + 1) as usize;
                if on_other {
                    other_held += held;
                } else {
                    own_held += held;
                }
                let (gate, started, refused_later) = (
                    Arc::clone(&gate),
                    Arc::clone(&started),
                    Arc::clone(&refused_later),
                );
                let (all_started, held_count) = (Arc::clone(&all_started), Arc::clone(&held_count));
                let held_ids = Arc::clone(&held_ids);
                let work = move |cx: &Context<'_>| {
                    parent.run();
                    // Every worker holds a parent before any child is put:
                    // no child runs before the shutdown.
                    started.fetch_add(1, Ordering::SeqCst);
                    all_started.pass();
                    let mut children = children.into_iter();
                    let mut ids = Vec::new();
                    for c in children.by_ref().take(held) {
                        ids.push(cx.execute(move || c.run()).expect("open"));
                    }
                    held_ids.lock().unwrap().push((on_other, ids));
                    held_count.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                    for c in children {
                        match cx.execute(move || c.run()) {
                            Err(PutError::ShutDown(request)) => {
                                refused_later.fetch_add(1, Ordering::SeqCst);
                                drop(request);
                            }
                            other => panic!("expected ShutDown, got {other:?}"),
                        }
                    }
                };
                // The parent executed, a ticket's with a context, or a
                // callback request's with a user-chosen id: its children
                // count on its handle all the same.
                let on = if on_other { &other } else { &pool };
                match rng.below(3) {
                    0 => {
                        on.execute_with_context(work).unwrap();
                    }
                    1 => tickets.push(
                        on.submit_with_context(move |cx: &Context<'_>, ()| work(cx), ())
                            .unwrap(),
                    ),
                    _ => {
                        on.put_request(
                            WorkRequest::with_context(move |cx: &Context<'_>, ()| work(cx), ())
                                .with_id(w as u64),
                        )
                        .unwrap();
                        if on_other {
                            other_results += 1;
                        } else {
                            own_results += 1;
                        }
                    }
                }
            }
            until(|| started.load(Ordering::SeqCst) == workers);
            all_started.open();
            until(|| held_count.load(Ordering::SeqCst) == workers);
            let first_queued = workers * (1 + per_parent);
            let mut queued_ids = Vec::new();
            for q in 0..queued {
                let (a, b) = (child(first_queued + 2 * q), child(first_queued + 2 * q + 1));
                queued_ids.push(pool.execute(move || a.run()).unwrap());
                other.execute(move || b.run()).unwrap();
            }
            let back = pool.shutdown_now();
            late.store(true, Ordering::SeqCst);
            let handed_back = back.len();
            // As its docs say: the queued ones first, in their order (a
            // callable's every 64th child queued its batch, before the
            // executed requests were put), then the children the running
            // callables still held; each callable's in the order it put
            // them.
            let back_ids: Vec<_> = back.iter().map(WorkRequest::id).collect();
            let mut batched = HashSet::new();
            for (on_other, ids) in held_ids.lock().unwrap().iter() {
                let found: Vec<_> = back_ids
                    .iter()
                    .filter(|id| ids.contains(id))
                    .copied()
                    .collect();
                let expected: &[callpool::RequestId] = if *on_other { &[] } else { ids };
                assert_eq!(found, expected, "round {round}: a parent's held children");
                batched.extend(ids[..ids.len() / 64 * 64].iter().copied());
            }
            let in_queue =
                batched.len() - batched.iter().filter(|id| !back_ids.contains(id)).count();
            let (queue_part, slot_part) = back_ids.split_at(in_queue + queued);
            let (batch_part, queued_part) = queue_part.split_at(in_queue);
            assert!(
                batch_part.iter().all(|id| batched.contains(id)),
                "round {round}"
            );
            assert_eq!(queued_part, &queued_ids[..], "round {round}");
            assert!(
                !slot_part.iter().any(|id| batched.contains(id)),
                "round {round}"
            );
            drop(back);
            gate.open();
            until(|| keep.threads() == 0);
            assert_eq!(
                out.ran_late.load(Ordering::SeqCst),
                0,
                "round {round}: ran after shutdown_now"
            );
            let ran = ran(&out.ran);
            let unrun: usize = out
                .dropped_unrun
                .iter()
                .map(|d| d.load(Ordering::SeqCst))
                .sum();
            for i in 0..n {
                let (r, d) = (
                    out.ran[i].load(Ordering::SeqCst),
                    out.dropped_unrun[i].load(Ordering::SeqCst),
                );
                assert_eq!(
                    r + d,
                    1,
                    "round {round}: request {i} ran {r} times, dropped unrun {d} times"
                );
            }
            // The parents ran; nothing else could (every worker held one).
            assert_eq!(ran, workers, "round {round}");
            assert_eq!(ran + unrun, n);
            let refused = refused_later.load(Ordering::SeqCst);
            assert_eq!(handed_back, own_held + queued, "round {round}: handed back");
            assert_eq!(
                refused,
                workers * per_parent - own_held - other_held,
                "round {round}"
            );
            let stats = keep.stats();
            assert_eq!(
                stats.cancelled as usize,
                other_held + queued,
                "round {round}: cancelled"
            );
            assert_eq!(
                (stats.completed, stats.panicked, stats.failed),
                (ran as u64, 0, 0),
                "round {round}"
            );
            assert_eq!(
                stats.cancelled as usize + handed_back + refused,
                unrun,
                "round {round}: cancelled {} + handed back {handed_back} + refused {refused}",
                stats.cancelled
            );
            for t in tickets {
                assert_eq!(t.wait(), Ok(()), "round {round}");
            }
            // The callback parents' outcomes, each handle its own.
            assert_eq!(keep.wait(), Ok(own_results), "round {round}");
            assert_eq!(other.wait(), Ok(other_results), "round {round}");
            assert_eq!(keep.pending(), 0, "round {round}");
            assert_eq!(other.pending(), 0, "round {round}");
        }
    });
}

/// `shutdown_timeout` while parents hold executed children in their
/// workers' slots: it times out with exactly the parents and the held
/// children pending, and the pool accepts nothing more (the parents'
/// later `cx.execute` calls are refused). As the pool's last handle, the
/// pool closes: the held children never run, each dropped unrun once.
/// With another handle left, the workers go on: the held children all
/// run once, and that handle's `wait` and `stats()` count them.
#[test]
fn shutdown_timeout_with_children_in_slots() {
    scaled("shutdown_timeout with children in slots", |progress| {
        let mut rng = Rng(0x7173_5eed);
        for round in 0..rounds(40) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(3) as usize;
            let pool = ThreadPool::new(workers);
            let keep = if rng.chance(50) {
                Some(pool.clone())
            } else {
                None
            };
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let all_started = Arc::new(Gate::default());
            let _open_too = OpenOnDrop(Arc::clone(&all_started));
            let held = 1 + rng.below(70) as usize;
            let later = rng.below(20) as usize;
            let per = held + later;
            let hits = hit_counters(workers * per);
            let dropped = counter();
            let refused = counter();
            let started = counter();
            let held_count = counter();
            let parents_done = counter();
            for w in 0..workers {
                let (hits, gate, all_started, started, held_count) = (
                    Arc::clone(&hits),
                    Arc::clone(&gate),
                    Arc::clone(&all_started),
                    Arc::clone(&started),
                    Arc::clone(&held_count),
                );
                let (dropped, refused, parents_done) = (
                    Arc::clone(&dropped),
                    Arc::clone(&refused),
                    Arc::clone(&parents_done),
                );
                pool.execute_with_context(move |cx: &Context<'_>| {
                    let child = |i: usize| {
                        let d = common::Dropped(Arc::clone(&dropped));
                        let h = hit(&hits, w * per + i);
                        move || {
                            h();
                            drop(d);
                        }
                    };
                    // Every worker holds a parent before any child is put.
                    started.fetch_add(1, Ordering::SeqCst);
                    all_started.pass();
                    for i in 0..held {
                        cx.execute(child(i)).expect("open");
                    }
                    held_count.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                    for i in held..per {
                        match cx.execute(child(i)) {
                            Err(PutError::ShutDown(request)) => {
                                drop(request);
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                            other => panic!("expected ShutDown, got {other:?}"),
                        }
                    }
                    parents_done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
            until(|| started.load(Ordering::SeqCst) == workers);
            all_started.open();
            until(|| held_count.load(Ordering::SeqCst) == workers);
            match pool.shutdown_timeout(Duration::from_millis(1)) {
                Err(ShutdownError::TimedOut { threads, pending }) => {
                    assert_eq!(
                        (threads, pending),
                        (workers, workers * (1 + held)),
                        "round {round}"
                    );
                }
                other => panic!("round {round}: expected a timeout, got {other:?}"),
            }
            gate.open();
            until(|| parents_done.load(Ordering::SeqCst) == workers);
            assert_eq!(
                refused.load(Ordering::SeqCst),
                workers * later,
                "round {round}"
            );
            let ran_once = |i: usize| hits[i].load(Ordering::SeqCst);
            match keep {
                Some(keep) => {
                    // Draining for the handle left: every held child runs.
                    assert_eq!(keep.wait(), Ok(0), "round {round}");
                    for i in 0..workers * per {
                        let expected = usize::from(i % per < held);
                        assert_eq!(ran_once(i), expected, "round {round}: child {i}");
                    }
                    until(|| dropped.load(Ordering::SeqCst) == workers * per);
                    let stats = keep.stats();
                    assert_eq!(
                        (stats.completed, stats.cancelled),
                        ((workers * (1 + held)) as u64, 0),
                        "round {round}"
                    );
                    drop(keep);
                }
                None => {
                    // Closed: the held children are dropped unrun.
                    until(|| dropped.load(Ordering::SeqCst) == workers * per);
                    assert_eq!(ran(&hits), 0, "round {round}: a child ran after the close");
                }
            }
            assert_eq!(
                dropped.load(Ordering::SeqCst),
                workers * per,
                "round {round}"
            );
        }
    });
}

/// One worker runs, in a seeded order, callback requests with
/// user-chosen ids (some adding children with user-chosen ids and
/// executed children), executed requests (some cancelled while queued),
/// tickets and tickets with a context that execute children. An
/// executed request's end frees no user-chosen id and takes none: a put
/// is refused as `DuplicateId` exactly while an earlier request with its
/// id is pending, and every id is free again once `wait` returns. Each
/// request runs or is cancelled once; `stats()` counts it once.
#[test]
fn executed_requests_among_user_chosen_ids_on_one_worker() {
    scaled("user-chosen ids beside executed requests", |progress| {
        let mut rng = Rng(0x0001_d50f_e8ec);
        let pool = ThreadPool::new(1);
        let mut expected_completed = 0u64;
        let mut expected_cancelled = 0u64;
        for round in 0..rounds(80) {
            progress.fetch_add(1, Ordering::SeqCst);
            let (gate, latch) = common::gate();
            pool.execute(move || latch.hold()).unwrap();
            gate.await_start();
            expected_completed += 1;
            let ran = counter();
            let callbacks = counter();
            let mut pending_ids: HashSet<u64> = HashSet::new();
            let mut executed_ids = Vec::new();
            let mut tickets = Vec::new();
            let mut expected_ran = 0usize;
            // Child ids a parent puts, in the order the one worker runs
            // the parents: refused while pending, as the handle's are.
            let mut child_ids_put: HashSet<u64> = HashSet::new();
            let child_refusals = Arc::new(Mutex::new(Vec::new()));
            let mut expected_child_refusals = Vec::new();
            for step in 0..40 {
                match rng.below(6) {
                    0 | 1 => {
                        let id = rng.below(12);
                        let child_id = 1_000 + rng.below(6);
                        let executes = rng.below(4) as usize;
                        let with_child = rng.chance(50);
                        let (ran, callbacks, refusals) = (
                            Arc::clone(&ran),
                            Arc::clone(&callbacks),
                            Arc::clone(&child_refusals),
                        );
                        let request = WorkRequest::with_context(
                            move |cx: &Context<'_>, _: ()| {
                                ran.fetch_add(1, Ordering::SeqCst);
                                for _ in 0..executes {
                                    let ran = Arc::clone(&ran);
                                    cx.execute(move || {
                                        ran.fetch_add(1, Ordering::SeqCst);
                                    })
                                    .expect("open");
                                }
                                if with_child {
                                    let ran = Arc::clone(&ran);
                                    let child = WorkRequest::new(
                                        move |_: ()| {
                                            ran.fetch_add(1, Ordering::SeqCst);
                                        },
                                        (),
                                    )
                                    .with_id(child_id);
                                    match cx.put(child) {
                                        Ok(id) => assert_eq!(id.value(), child_id),
                                        Err(PutError::DuplicateId(_)) => {
                                            refusals.lock().unwrap().push((step, child_id))
                                        }
                                        Err(e) => panic!("{e:?}"),
                                    }
                                }
                            },
                            (),
                        )
                        .on_result(move |_, ()| {
                            callbacks.fetch_add(1, Ordering::SeqCst);
                        })
                        .with_id(id);
                        match pool.put_request(request) {
                            Ok(got) => {
                                assert!(
                                    pending_ids.insert(id),
                                    "round {round}: {id} accepted twice"
                                );
                                assert!(got.is_user_chosen() && got.value() == id);
                                expected_ran += 1 + executes;
                                expected_completed += 1 + executes as u64;
                                if with_child {
                                    if child_ids_put.insert(child_id) {
                                        expected_ran += 1;
                                        expected_completed += 1;
                                    } else {
                                        expected_child_refusals.push((step, child_id));
                                    }
                                }
                            }
                            Err(PutError::DuplicateId(_)) => {
                                assert!(
                                    pending_ids.contains(&id),
                                    "round {round}: {id} refused while free"
                                );
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                    2 => {
                        let ran = Arc::clone(&ran);
                        let id = pool
                            .execute(move || {
                                ran.fetch_add(1, Ordering::SeqCst);
                            })
                            .unwrap();
                        assert!(!id.is_user_chosen());
                        executed_ids.push(id);
                        expected_ran += 1;
                        expected_completed += 1;
                    }
                    3 => {
                        // Cancel an executed request still queued (the
                        // worker is held: all are).
                        if let Some(id) = executed_ids.pop() {
                            assert!(pool.cancel(id), "round {round}: a queued executed request");
                            assert!(!pool.cancel(id));
                            expected_ran -= 1;
                            expected_completed -= 1;
                            expected_cancelled += 1;
                        }
                    }
                    4 => {
                        let ran = Arc::clone(&ran);
                        tickets.push(
                            pool.submit_with_context(
                                move |cx: &Context<'_>, n: u64| {
                                    let ran2 = Arc::clone(&ran);
                                    cx.execute(move || {
                                        ran2.fetch_add(1, Ordering::SeqCst);
                                    })
                                    .expect("open");
                                    ran.fetch_add(1, Ordering::SeqCst);
                                    n + 1
                                },
                                step,
                            )
                            .unwrap(),
                        );
                        expected_ran += 2;
                        expected_completed += 2;
                    }
                    _ => {
                        let ran = Arc::clone(&ran);
                        tickets.push(
                            pool.submit(
                                move |n: u64| {
                                    ran.fetch_add(1, Ordering::SeqCst);
                                    n + 1
                                },
                                step,
                            )
                            .unwrap(),
                        );
                        expected_ran += 1;
                        expected_completed += 1;
                    }
                }
            }
            gate.open();
            let handled = pool.wait().unwrap();
            // The children with user-chosen ids are heard too.
            assert_eq!(
                handled,
                pending_ids.len() + child_ids_put.len(),
                "round {round}"
            );
            assert_eq!(callbacks.load(Ordering::SeqCst), pending_ids.len());
            for (k, t) in tickets.into_iter().enumerate() {
                assert!(t.wait().is_ok(), "round {round}: ticket {k}");
            }
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(ran.load(Ordering::SeqCst), expected_ran, "round {round}");
            assert_eq!(
                *child_refusals.lock().unwrap(),
                expected_child_refusals,
                "round {round}"
            );
            // Every id is free again.
            for id in pending_ids.iter().chain(child_ids_put.iter()) {
                pool.put_request(WorkRequest::new(|_: ()| (), ()).with_id(*id))
                    .unwrap();
                expected_completed += 1;
            }
            assert_eq!(pool.wait(), Ok(pending_ids.len() + child_ids_put.len()));
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled, stats.panicked),
                (expected_completed, expected_cancelled, 0),
                "round {round}"
            );
        }
    });
}

/// A bounded request queue (1 or 2 places), threads outside blocked
/// putting (`execute`, `execute_with_context`, `put_request`, and
/// `execute_timeout`, retried until accepted), while parents on the
/// workers add executed children past the capacity and their slots hand
/// them off: every putter returns, every request runs once, and nothing
/// is stranded (`wait` returns with all of it run).
#[test]
fn blocked_putters_are_woken_while_slots_hand_off_children() {
    scaled("bounded queue, blocked putters, slots", |progress| {
        let mut rng = Rng(0x0b10_c4ed);
        for round in 0..rounds(30) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(2) as usize;
            let capacity = 1 + rng.below(2) as usize;
            let pool = ThreadPool::builder()
                .workers(workers)
                .queue_capacity(capacity)
                .build()
                .unwrap();
            let putters = 2 + rng.below(3) as usize;
            let per_putter = 30 + rng.below(30) as usize;
            let parents = 1 + rng.below(3) as usize;
            let children = 50 + rng.below(150) as usize;
            let total_children = parents * children;
            let hits = hit_counters(parents + total_children + putters * per_putter);
            let callbacks = counter();
            let mut threads = Vec::new();
            for p in 0..parents {
                let hits = Arc::clone(&hits);
                let seed = rng.next();
                pool.execute_with_context(move |cx: &Context<'_>| {
                    hits[total_children + p].fetch_add(1, Ordering::SeqCst);
                    let mut rng = Rng(seed | 1);
                    for c in 0..children {
                        cx.execute(hit(&hits, p * children + c)).expect("open");
                        if rng.chance(5) {
                            thread::yield_now();
                        }
                    }
                })
                .unwrap();
            }
            for t in 0..putters {
                let pool = pool.clone();
                let hits = Arc::clone(&hits);
                let callbacks = Arc::clone(&callbacks);
                let seed = rng.next();
                threads.push(thread::spawn(move || {
                    let mut rng = Rng(seed | 1);
                    let base = parents + total_children + t * per_putter;
                    for k in 0..per_putter {
                        let a = base + k;
                        match rng.below(4) {
                            0 => {
                                pool.execute(hit(&hits, a)).unwrap();
                            }
                            1 => {
                                let h = hit(&hits, a);
                                pool.execute_with_context(move |cx: &Context<'_>| {
                                    h();
                                    let _ = cx;
                                })
                                .unwrap();
                            }
                            2 => {
                                let h = hit(&hits, a);
                                let callbacks = Arc::clone(&callbacks);
                                pool.put_request(WorkRequest::new(move |_: ()| h(), ()).on_result(
                                    move |_, ()| {
                                        callbacks.fetch_add(1, Ordering::SeqCst);
                                    },
                                ))
                                .unwrap();
                            }
                            _ => match pool
                                .execute_timeout(hit(&hits, a), Duration::from_micros(50))
                            {
                                Ok(_) => {}
                                // Handed back, still a request whose outcome
                                // nobody hears: put it the blocking way.
                                Err(PutError::Timeout(request)) => {
                                    pool.put_request(request).unwrap();
                                }
                                Err(e) => panic!("{e:?}"),
                            },
                        }
                    }
                }));
            }
            for t in threads {
                t.join().expect("a putter panicked");
            }
            let handled = pool.wait().unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(handled, callbacks.load(Ordering::SeqCst), "round {round}");
            assert_each_once("request", &hits);
            let stats = pool.stats();
            assert_eq!(
                (stats.completed as usize, stats.cancelled),
                (parents + total_children + putters * per_putter, 0),
                "round {round}"
            );
            assert_eq!((stats.queued, pool.pending()), (0, 0));
            pool.shutdown().unwrap();
        }
    });
}

/// Executed requests and executed children that panic, or whose
/// captures' `Drop` panics as they run (a panic of the request), or as
/// they are cancelled unrun (contained, the request cancelled): each
/// panicked one is counted in `stats().panicked` and logged at error
/// level with its id, nothing else hears it, and the workers survive: the
/// same threads run everything after.
#[test]
fn panicking_executed_requests_and_drops_leave_the_workers_alive() {
    common::hide_panics_starting_with(DELIBERATE);
    common::logs::install();
    scaled("panicking executed requests", |progress| {
        let mut rng = Rng(0x9a_41c5);
        let workers = 2;
        let pool = ThreadPool::new(workers);
        let threads = Arc::new(Mutex::new(HashSet::new()));
        let note = {
            let threads = Arc::clone(&threads);
            move || {
                threads.lock().unwrap().insert(thread::current().id());
            }
        };
        let mut panicked_ids = Vec::new();
        let mut completed = 0u64;
        let mut cancelled = 0u64;
        let drops = counter();
        let mut expected_drops = 0usize;
        let child_panics = Arc::new(Mutex::new(Vec::new()));
        let mut expected_child_panics = 0usize;
        for _round in 0..rounds(40) {
            progress.fetch_add(1, Ordering::SeqCst);
            // Both workers held: everything below waits in the queue.
            let gate = Arc::new(Gate::default());
            let _open = OpenOnDrop(Arc::clone(&gate));
            let holding = counter();
            for _ in 0..workers {
                let (n, gate, holding) = (note.clone(), Arc::clone(&gate), Arc::clone(&holding));
                pool.execute(move || {
                    n();
                    holding.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                })
                .unwrap();
            }
            until(|| holding.load(Ordering::SeqCst) == workers);
            completed += workers as u64;
            let mut queued = Vec::new();
            for _ in 0..20 {
                let n = note.clone();
                match rng.below(5) {
                    0 => {
                        let id = pool
                            .execute(move || {
                                n();
                                panic!("{DELIBERATE} in a callable");
                            })
                            .unwrap();
                        panicked_ids.push(id);
                    }
                    1 => {
                        let capture = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
                        expected_drops += 1;
                        let id = pool
                            .execute(move || {
                                n();
                                let _keep = &capture;
                            })
                            .unwrap();
                        queued.push((id, true));
                    }
                    2 => {
                        // Children that panic, one way or the other; half
                        // the parents panic too, after adding them (the
                        // children still run).
                        let k = 1 + rng.below(5) as usize;
                        expected_child_panics += k;
                        let parent_panics = rng.chance(50);
                        let drops = Arc::clone(&drops);
                        expected_drops += k.div_ceil(2);
                        let child_panics = Arc::clone(&child_panics);
                        let id = pool
                            .execute_with_context(move |cx: &Context<'_>| {
                                n();
                                for c in 0..k {
                                    let n = n.clone();
                                    let id = if c % 2 == 0 {
                                        let capture = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
                                        cx.execute(move || {
                                            n();
                                            let _keep = &capture;
                                        })
                                    } else {
                                        cx.execute(move || {
                                            n();
                                            panic!("{DELIBERATE} in a child");
                                        })
                                    };
                                    child_panics.lock().unwrap().push(id.expect("open"));
                                }
                                if parent_panics {
                                    panic!("{DELIBERATE} in a parent");
                                }
                            })
                            .unwrap();
                        if parent_panics {
                            panicked_ids.push(id);
                        } else {
                            completed += 1;
                        }
                    }
                    _ => {
                        let id = pool.execute(n).unwrap();
                        queued.push((id, false));
                    }
                }
            }
            // Cancel some queued ones: a panicking capture's `Drop` is
            // contained there, and the request counted cancelled.
            for (id, panics) in queued {
                if rng.chance(30) {
                    assert!(pool.cancel(id));
                    cancelled += 1;
                } else if panics {
                    panicked_ids.push(id);
                } else {
                    completed += 1;
                }
            }
            gate.open();
            assert_eq!(pool.wait(), Ok(0));
        }
        let stats = pool.stats();
        assert_eq!(
            (
                stats.completed,
                stats.cancelled,
                stats.panicked,
                stats.failed
            ),
            (
                completed,
                cancelled,
                (panicked_ids.len() + expected_child_panics) as u64,
                0
            )
        );
        assert_eq!(drops.load(Ordering::SeqCst), expected_drops);
        assert_eq!((stats.workers, stats.threads), (workers, workers));
        assert!(
            threads.lock().unwrap().len() <= workers,
            "a worker was replaced"
        );
        let ids = panicked_ids
            .iter()
            .chain(child_panics.lock().unwrap().iter())
            .copied()
            .collect::<Vec<_>>();
        // The ids the error records name as panicked executed requests,
        // read once (each record's look by id would be quadratic).
        let logged: HashSet<String> = common::logs::records()
            .into_iter()
            .filter(|(level, text)| *level == log::Level::Error && text.contains(DELIBERATE))
            .filter_map(|(_, text)| {
                let rest = text.split_once("executed request ")?.1;
                Some(rest.split_once(" panicked: ")?.0.to_owned())
            })
            .collect();
        for id in ids {
            assert!(
                logged.contains(&id.to_string()),
                "no error logged for executed request {id}"
            );
        }
        pool.shutdown().unwrap();
    });
}

/// The global pool (2 workers, a request queue of 2, in a child process
/// of its own). First, executed parents on handles of their own add
/// executed children past the capacity while this thread blocks
/// executing through the global handle itself: every request runs once
/// and each handle's `wait` covers its own. Then `shutdown_now` on a
/// handle whose two parents hold children in both workers' slots, with
/// two more of its executed requests queued: exactly those come back
/// (the global pool stays open), none of them runs, the parents' later
/// children are accepted and run, and put again through the global
/// handle the ones handed back run once each. `stats()` is exact.
#[test]
fn executed_children_on_the_global_pool() {
    const NAME: &str = "executed_children_on_the_global_pool";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    common::within_here("the global pool", || {
        callpool::configure_global(ThreadPool::builder().workers(2).queue_capacity(2)).unwrap();
        let global = callpool::global();
        let mut threads = Vec::new();
        for t in 0..3usize {
            threads.push(thread::spawn(move || {
                for round in 0..20usize {
                    let handle = callpool::global().new_handle();
                    let hits = hit_counters(1 + 100);
                    let h = Arc::clone(&hits);
                    handle
                        .execute_with_context(move |cx: &Context<'_>| {
                            h[0].fetch_add(1, Ordering::SeqCst);
                            for c in 1..=100 {
                                cx.execute(hit(&h, c)).expect("the global pool is open");
                            }
                        })
                        .unwrap();
                    assert_eq!(handle.wait(), Ok(0), "thread {t}, round {round}");
                    assert_each_once("executed request", &hits);
                    assert_eq!(handle.pending(), 0);
                }
            }));
        }
        let hits = hit_counters(500);
        for i in 0..500 {
            global.execute(hit(&hits, i)).unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(global.wait(), Ok(0));
        assert_each_once("executed request", &hits);
        let mut completed = 3 * 20 * 101 + 500;
        assert_eq!(global.stats().completed, completed);

        // shutdown_now on a handle of the global pool, its children held.
        let (held, later) = (10, 7);
        let hits = hit_counters(2 * (held + later) + 2);
        let handle = global.new_handle();
        let gate = Arc::new(Gate::default());
        let _open = OpenOnDrop(Arc::clone(&gate));
        let all_started = Arc::new(Gate::default());
        let _open_too = OpenOnDrop(Arc::clone(&all_started));
        let (started, held_count, parents_done) = (counter(), counter(), counter());
        for p in 0..2 {
            let (h, gate, all_started) = (
                Arc::clone(&hits),
                Arc::clone(&gate),
                Arc::clone(&all_started),
            );
            let (started, held_count, parents_done) = (
                Arc::clone(&started),
                Arc::clone(&held_count),
                Arc::clone(&parents_done),
            );
            handle
                .execute_with_context(move |cx: &Context<'_>| {
                    started.fetch_add(1, Ordering::SeqCst);
                    all_started.pass();
                    for c in 0..held {
                        cx.execute(hit(&h, p * (held + later) + c)).expect("open");
                    }
                    held_count.fetch_add(1, Ordering::SeqCst);
                    gate.pass();
                    for c in held..held + later {
                        cx.execute(hit(&h, p * (held + later) + c))
                            .expect("the global pool stays open");
                    }
                    parents_done.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
        until(|| started.load(Ordering::SeqCst) == 2);
        all_started.open();
        until(|| held_count.load(Ordering::SeqCst) == 2);
        let queued = 2 * (held + later);
        handle.execute(hit(&hits, queued)).unwrap();
        handle.execute(hit(&hits, queued + 1)).unwrap();
        let back = handle.shutdown_now();
        assert_eq!(back.len(), 2 * held + 2);
        gate.open();
        until(|| parents_done.load(Ordering::SeqCst) == 2);
        // The later children run, though nobody waits for them now.
        let later_ran = || {
            (0..2)
                .flat_map(|p| (held..held + later).map(move |c| p * (held + later) + c))
                .all(|i| hits[i].load(Ordering::SeqCst) == 1)
        };
        until(later_ran);
        assert_eq!(ran(&hits), 2 * later, "a request handed back ran");
        for request in back {
            global.put_request(request).unwrap();
        }
        assert_eq!(global.wait(), Ok(0));
        assert_each_once("executed request", &hits);
        completed += (2 + 2 * (held + later) + 2) as u64;
        // Both workers asleep: the later children, which nobody waits
        // for, are counted too.
        until(|| global.stats().idle == 2);
        let stats = global.stats();
        assert_eq!(
            (stats.completed, stats.cancelled, stats.panicked),
            (completed, 0, 0)
        );
    });
    common::child_ran(NAME);
}

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The live heap after executed work whose emptied boxes took every rare
/// way back: made on a thread that then exited (its handle living on,
/// then executing from another thread, then dropped with boxes kept);
/// made by a worker's `cx.execute` (a million children) on a worker that
/// is dismissed after; held by a busy worker for a handle dropped
/// meanwhile (the worker frees them when it switches handle). While the
/// pool lives, what it keeps is bounded; once it is dropped and its
/// threads are gone, the heap is exactly where it was.
#[test]
fn a_million_executed_children_leave_nothing_behind() {
    const NAME: &str = "a_million_executed_children_leave_nothing_behind";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    fn scenario(children: usize) -> (isize, isize) {
        let threads_before = os_threads();
        let pool = ThreadPool::new(2);
        let sum = Arc::new(AtomicUsize::new(0));
        let add = |sum: &Arc<AtomicUsize>| {
            let sum = Arc::clone(sum);
            move || {
                sum.fetch_add(1, Ordering::Relaxed);
            }
        };
        // Boxes made on a thread that exits, its handle living on.
        let maker = {
            let pool = pool.clone();
            let sum = Arc::clone(&sum);
            thread::spawn(move || {
                let handle = pool.new_handle();
                for _ in 0..5_000 {
                    handle.execute(add(&sum)).unwrap();
                }
                assert_eq!(handle.wait(), Ok(0));
                handle
            })
        };
        let handle = maker.join().unwrap();
        // Executed from this thread now: the boxes the other made are
        // freed here.
        for _ in 0..3_000 {
            handle.execute(add(&sum)).unwrap();
        }
        assert_eq!(handle.wait(), Ok(0));
        drop(handle);

        // A million children (in ten parents), made by the workers.
        for _ in 0..10 {
            let s = Arc::clone(&sum);
            pool.execute_with_context(move |cx: &Context<'_>| {
                for _ in 0..children / 10 {
                    let s = Arc::clone(&s);
                    cx.execute(move || {
                        s.fetch_add(1, Ordering::Relaxed);
                    })
                    .expect("open");
                }
            })
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(0));
        // Both workers idle: their batches of emptied boxes went back to
        // the handle (at most 1,024 kept there), none kept on a worker.
        until(|| pool.stats().idle == 2);
        let after_children = common::heap::live();
        // The workers that made them go; a new one executes more.
        pool.resize(0).unwrap();
        until(|| pool.threads() == 0);
        pool.resize(1).unwrap();
        for _ in 0..100 {
            pool.execute(add(&sum)).unwrap();
        }
        assert_eq!(pool.wait(), Ok(0));

        // A handle dropped while a busy worker holds its boxes.
        let other = pool.new_handle();
        for _ in 0..10 {
            other.execute(add(&sum)).unwrap();
        }
        let (gate, latch) = common::gate();
        pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))
            .unwrap();
        gate.await_start();
        assert_eq!(other.pending(), 0);
        drop(other);
        gate.open();
        for _ in 0..10 {
            pool.execute(add(&sum)).unwrap();
        }
        assert_eq!(pool.wait(), Ok(1));
        until(|| pool.stats().idle == 1);
        let kept = common::heap::live();
        drop(pool);
        until(|| os_threads() == threads_before);
        assert_eq!(
            sum.load(Ordering::Relaxed),
            5_000 + 3_000 + children / 10 * 10 + 100 + 10 + 10
        );
        (after_children, kept)
    }
    // Warm-up: whatever the first pools allocate once for the process.
    scenario(1_000);
    let before = common::heap::live();
    let (after_children, kept) = scenario(1_000_000);
    let after = common::heap::live();
    assert!(
        after_children - before <= 256 * 1024,
        "{} bytes kept by the idle pool after a million executed children",
        after_children - before
    );
    assert!(
        kept - before <= 256 * 1024,
        "{} bytes kept by the idle pool at the end",
        kept - before
    );
    assert_eq!(
        after - before,
        0,
        "bytes left after the pool and its threads were gone"
    );
    common::child_ran(NAME);
}

/// An executed parent waits in a scope of its own pool, on its worker:
/// the wait runs the scope's requests right there (`worker::help`), each
/// with a `Children` of its own over the same slot, and those requests
/// execute children too. The slot's children (the parent's held ones and
/// the helped requests') are handed off whichever request's end finds
/// them; the parent goes on adding after the scope. Every child runs
/// once and `wait` covers them all, on 1 or 2 workers.
#[test]
fn a_scope_inside_an_executed_request_shares_its_workers_slot() {
    scaled("a scope inside an executed request", |progress| {
        let mut rng = Rng(0x0005_c09e);
        for round in 0..rounds(40) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(2) as usize;
            let pool = ThreadPool::new(workers);
            let before = rng.below(80) as usize;
            let scoped = 1 + rng.below(6) as usize;
            let per_scoped = rng.below(10) as usize;
            let after = rng.below(80) as usize;
            let n = before + scoped * per_scoped + after;
            let hits = hit_counters(n);
            let scope_sum = Arc::new(AtomicUsize::new(0));
            let (h, inner, sum) = (Arc::clone(&hits), pool.clone(), Arc::clone(&scope_sum));
            pool.execute_with_context(move |cx: &Context<'_>| {
                for i in 0..before {
                    cx.execute(hit(&h, i)).expect("open");
                }
                let total = inner.scope(|s| {
                    for k in 0..scoped {
                        let h = Arc::clone(&h);
                        s.put_with_context(
                            move |cx: &Context<'_>, k: usize| {
                                for j in 0..per_scoped {
                                    cx.execute(hit(&h, before + k * per_scoped + j))
                                        .expect("open");
                                }
                                k + 1
                            },
                            k,
                        )
                        .unwrap();
                    }
                    let mut total = 0;
                    s.wait_with(|_, outcome| total += outcome.unwrap());
                    total
                });
                sum.store(total, Ordering::SeqCst);
                for i in 0..after {
                    cx.execute(hit(&h, before + scoped * per_scoped + i))
                        .expect("open");
                }
                drop(inner);
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0), "round {round}");
            assert_each_once("executed child", &hits);
            assert_eq!(scope_sum.load(Ordering::SeqCst), scoped * (scoped + 1) / 2);
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled),
                ((1 + scoped + n) as u64, 0),
                "round {round}"
            );
            pool.shutdown().unwrap();
        }
    });
}

/// An autoscaling pool (0 to 2 workers, a keep-alive of a millisecond)
/// whose parents add executed children slowly, with pauses in which the
/// other worker idles, may retire, and a new one may start for the
/// children: no child waits on a retired worker, every one runs once,
/// and `wait` covers them all; the pool then shrinks to nothing again.
#[test]
fn executed_children_across_autoscaling_retirements() {
    scaled("autoscaling and executed children", |progress| {
        let mut rng = Rng(0xa070_5ca1e);
        let pool = ThreadPool::builder()
            .min_workers(0)
            .max_workers(2)
            .keep_alive(Duration::from_millis(1))
            .build()
            .unwrap();
        let mut completed = 0u64;
        for round in 0..rounds(30) {
            progress.fetch_add(1, Ordering::SeqCst);
            let parents = 1 + rng.below(2) as usize;
            let per = 1 + rng.below(40) as usize;
            let hits = hit_counters(parents * per);
            for p in 0..parents {
                let h = Arc::clone(&hits);
                let seed = rng.next() | 1;
                pool.execute_with_context(move |cx: &Context<'_>| {
                    let mut rng = Rng(seed);
                    for c in 0..per {
                        cx.execute(hit(&h, p * per + c)).expect("open");
                        if rng.chance(10) {
                            thread::sleep(Duration::from_millis(2));
                        }
                    }
                })
                .unwrap();
            }
            assert_eq!(pool.wait(), Ok(0), "round {round}");
            assert_each_once("executed child", &hits);
            completed += (parents * (1 + per)) as u64;
            assert_eq!(pool.stats().completed, completed, "round {round}");
            if rng.chance(30) {
                until(|| pool.threads() == 0);
            }
        }
        until(|| pool.threads() == 0);
        assert_eq!(pool.pending(), 0);
    });
}

/// `workers` executed parents, one per worker, each of which executes
/// `held` children (held in its slot), then waits on `gate`, then tries
/// `later` more, each of which must be refused with `ShutDown`. `start`
/// returns once every parent holds its children; opening `gate` lets them
/// go on. Child `i` of parent `w` is `hits[w * per + i]`.
struct HoldingParents {
    gate: Arc<Gate>,
    hits: Arc<Vec<AtomicUsize>>,
    refused: Arc<AtomicUsize>,
    per: usize,
    _open: [OpenOnDrop; 2],
}

impl HoldingParents {
    fn start(pool: &ThreadPool, workers: usize, held: usize, later: usize) -> HoldingParents {
        let gate = Arc::new(Gate::default());
        let all_started = Arc::new(Gate::default());
        let per = held + later;
        let hits = hit_counters(workers * per);
        let (started, held_count, refused) = (counter(), counter(), counter());
        for w in 0..workers {
            let (h, gate, all_started) = (
                Arc::clone(&hits),
                Arc::clone(&gate),
                Arc::clone(&all_started),
            );
            let (started, held_count, refused) = (
                Arc::clone(&started),
                Arc::clone(&held_count),
                Arc::clone(&refused),
            );
            pool.execute_with_context(move |cx: &Context<'_>| {
                started.fetch_add(1, Ordering::SeqCst);
                all_started.pass();
                for i in 0..held {
                    cx.execute(hit(&h, w * per + i)).expect("open");
                }
                held_count.fetch_add(1, Ordering::SeqCst);
                gate.pass();
                for i in held..per {
                    match cx.execute(hit(&h, w * per + i)) {
                        Err(PutError::ShutDown(_)) => {
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        other => panic!("expected ShutDown, got {other:?}"),
                    }
                }
            })
            .unwrap();
        }
        // Every parent on its own worker before any holds children.
        until(|| started.load(Ordering::SeqCst) == workers);
        all_started.open();
        until(|| held_count.load(Ordering::SeqCst) == workers);
        HoldingParents {
            _open: [
                OpenOnDrop(Arc::clone(&gate)),
                OpenOnDrop(Arc::clone(&all_started)),
            ],
            gate,
            hits,
            refused,
            per,
        }
    }
}

/// `close()` (a graceful shutdown that keeps the handle) from another
/// thread while parents hold executed children in their slots: the held
/// children all run, the parents' later puts are refused, and the
/// handle's `stats()` counts exactly the parents and the held children.
#[test]
fn close_with_children_in_slots_runs_the_held_ones() {
    scaled("close with children in slots", |progress| {
        let mut rng = Rng(0xc105e);
        for round in 0..rounds(30) {
            progress.fetch_add(1, Ordering::SeqCst);
            let workers = 1 + rng.below(3) as usize;
            let pool = ThreadPool::new(workers);
            let held = rng.below(100) as usize;
            let later = 1 + rng.below(10) as usize;
            let parents = HoldingParents::start(&pool, workers, held, later);
            let (gate, hits, refused, per) =
                (&parents.gate, &parents.hits, &parents.refused, parents.per);
            let closer = {
                let pool = pool.clone();
                thread::spawn(move || pool.close())
            };
            // The close refuses puts before it waits: a put from here
            // sees it once the lifecycle moved.
            until(|| pool.is_shut_down());
            gate.open();
            closer.join().unwrap().unwrap();
            for i in 0..workers * per {
                let expected = usize::from(i % per < held);
                assert_eq!(
                    hits[i].load(Ordering::SeqCst),
                    expected,
                    "round {round}: child {i}"
                );
            }
            assert_eq!(refused.load(Ordering::SeqCst), workers * later);
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled, stats.threads),
                ((workers * (1 + held)) as u64, 0, 0),
                "round {round}"
            );
            assert_eq!(pool.pending(), 0);
        }
    });
}

/// In a child process with no logger: executed requests, children and
/// parents that panic, and captures whose `Drop` panics as they run or
/// are cancelled, are counted, and nothing of them reaches stderr (the
/// library logs, never prints; the deliberate panics' own messages are
/// kept from the panic hook, so only a print of the library's would
/// show). The workers live on.
#[test]
fn executed_panics_are_never_printed() {
    const NAME: &str = "executed_panics_are_never_printed";
    if !common::is_child(NAME, CHILD_ENV) {
        let output = common::run_in_child(NAME, CHILD_ENV);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("callpool") && !stderr.contains(DELIBERATE),
            "printed on stderr:\n{stderr}"
        );
        return;
    }
    common::hide_panics_starting_with(DELIBERATE);
    common::within_here("panics in a child process", || {
        let pool = ThreadPool::new(2);
        let drops = counter();
        for _ in 0..50 {
            pool.execute(|| panic!("{DELIBERATE} in a callable"))
                .unwrap();
            let capture = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
            pool.execute(move || {
                let _keep = &capture;
            })
            .unwrap();
            let d = Arc::clone(&drops);
            pool.execute_with_context(move |cx: &Context<'_>| {
                let capture = PanicsOnDrop(d, DELIBERATE);
                cx.execute(move || {
                    let _keep = &capture;
                })
                .unwrap();
                cx.execute(|| panic!("{DELIBERATE} in a child")).unwrap();
                panic!("{DELIBERATE} in a parent");
            })
            .unwrap();
        }
        // Cancelled with a panicking capture: contained where it drops.
        let (gate, latch) = common::gate();
        pool.execute(move || latch.hold()).unwrap();
        let (gate2, latch2) = common::gate();
        pool.execute(move || latch2.hold()).unwrap();
        gate.await_start();
        gate2.await_start();
        let capture = PanicsOnDrop(Arc::clone(&drops), DELIBERATE);
        let id = pool
            .execute(move || {
                let _keep = &capture;
            })
            .unwrap();
        assert!(pool.cancel(id));
        gate.open();
        gate2.open();
        assert_eq!(pool.wait(), Ok(0));
        let stats = pool.stats();
        assert_eq!(
            (
                stats.completed,
                stats.panicked,
                stats.cancelled,
                stats.workers
            ),
            (2, 50 * 5, 1, 2)
        );
        assert_eq!(drops.load(Ordering::SeqCst), 50 * 2 + 1);
        pool.shutdown().unwrap();
    });
    common::child_ran(NAME);
}

/// Workers dismissed (some or all) while their parents hold executed
/// children, then a graceful `close()` from another thread before the
/// parents return: each parent's worker hands its held children to the
/// draining queue, and a dismissed worker then drains too (the workers
/// not dismissed may have left already), so every held child runs once,
/// the later puts are refused, `close()` returns `Ok`, and `stats()` is
/// exact. (The edge: with every worker dismissed, children that all went
/// to the queue while the pool was open are handed back unrun.)
#[test]
fn dismissed_workers_drain_the_children_they_hand_off_at_close() {
    scaled(
        "dismissed workers draining handed-off children",
        |progress| {
            let mut rng = Rng(0xd15_a155ed);
            for round in 0..rounds(40) {
                progress.fetch_add(1, Ordering::SeqCst);
                let workers = 1 + rng.below(3) as usize;
                let pool = ThreadPool::new(workers);
                let held = [1, 63, 64, 65, rng.below(100) as usize][rng.below(5) as usize];
                let later = rng.below(5) as usize;
                let parents = HoldingParents::start(&pool, workers, held, later);
                let (gate, hits, refused, per) =
                    (&parents.gate, &parents.hits, &parents.refused, parents.per);
                let dismissed = 1 + rng.below(workers as u64) as usize;
                assert_eq!(pool.dismiss_workers(dismissed), dismissed);
                let closer = {
                    let pool = pool.clone();
                    thread::spawn(move || pool.close())
                };
                until(|| pool.is_shut_down());
                gate.open();
                // With every worker dismissed before the close, only a worker
                // that hands children off as the pool drains drains too. One
                // whose children all went to the queue while the pool was open
                // (exactly a batch of 64: its slot is empty when its parent
                // returns) leaves them queued with no worker left: the close
                // hands them back (`ShutdownError::Unrun`), as it does any
                // request queued while every worker was dismissed.
                let stranded = dismissed == workers && held % 64 == 0;
                let unrun = match closer.join().unwrap() {
                    Ok(()) => 0,
                    Err(ShutdownError::Unrun(back)) => back.len(),
                    Err(e) => panic!("round {round}: {e:?}"),
                };
                let what =
                    format!("round {round}, {held} held, {dismissed} of {workers} dismissed");
                assert_eq!(unrun, if stranded { workers * held } else { 0 }, "{what}");
                for i in 0..workers * per {
                    let expected = usize::from(i % per < held && !stranded);
                    assert_eq!(
                        hits[i].load(Ordering::SeqCst),
                        expected,
                        "{what}: child {i}"
                    );
                }
                assert_eq!(refused.load(Ordering::SeqCst), workers * later);
                let stats = pool.stats();
                let ran = if stranded {
                    workers
                } else {
                    workers * (1 + held)
                };
                assert_eq!(
                    (stats.completed, stats.cancelled, stats.threads),
                    (ran as u64, 0, 0),
                    "{what}"
                );
                assert_eq!(pool.pending(), 0);
            }
        },
    );
}

/// Executed requests refused by a full bounded queue (`try_execute`,
/// `execute_timeout`) come back as requests whose outcome nobody hears;
/// put again every way (`put_request`, `try_put_request`, `put_all`, a
/// running callable's `Context::put`, which takes the spawn's plain path,
/// and another pool's `put_request`), each runs exactly once on the pool
/// it was put on, `wait` there covers it, nothing comes back to a
/// callback, and each pool's `stats()` counts it once.
#[test]
fn refused_executed_requests_put_again_every_way() {
    scaled("refused executed requests put again", |progress| {
        for round in 0..rounds(20) {
            progress.fetch_add(1, Ordering::SeqCst);
            // One worker, held; a queue of 2.
            let (pool, held) = common::held_worker(2);
            let elsewhere = ThreadPool::new(1);
            let hits = hit_counters(2 + 6);
            pool.try_execute(hit(&hits, 0)).unwrap();
            pool.try_execute(hit(&hits, 1)).unwrap();
            let mut refused = Vec::new();
            for i in 2..8 {
                let request = if i % 2 == 0 {
                    match pool.try_execute(hit(&hits, i)) {
                        Err(PutError::Full(request)) => request,
                        other => panic!("expected Full, got {other:?}"),
                    }
                } else {
                    match pool.execute_timeout(hit(&hits, i), Duration::from_millis(1)) {
                        Err(PutError::Timeout(request)) => request,
                        other => panic!("expected Timeout, got {other:?}"),
                    }
                };
                refused.push(request);
            }
            assert_eq!(
                pool.pending(),
                3,
                "round {round}: a refused request stayed counted"
            );
            assert_eq!(ran(&hits), 0);
            held.open();
            assert_eq!(pool.wait(), Ok(0));
            let mut refused = refused.into_iter();
            pool.put_request(refused.next().unwrap()).unwrap();
            assert_eq!(pool.wait(), Ok(0));
            pool.try_put_request(refused.next().unwrap()).unwrap();
            assert_eq!(pool.wait(), Ok(0));
            assert_eq!(pool.put_all(vec![refused.next().unwrap()]).unwrap(), 1);
            let again = Mutex::new(Some(refused.next().unwrap()));
            pool.execute_with_context(move |cx: &Context<'_>| {
                let request = again.lock().unwrap().take().unwrap();
                cx.put(request).expect("open");
            })
            .unwrap();
            assert_eq!(pool.wait(), Ok(0));
            elsewhere.put_all(refused.by_ref()).unwrap();
            assert_eq!(elsewhere.wait(), Ok(0));
            assert_each_once("executed request", &hits);
            assert_eq!(pool.stats().completed, 1 + 2 + 4 + 1, "round {round}");
            assert_eq!(elsewhere.stats().completed, 2, "round {round}");
            assert_eq!((pool.pending(), elsewhere.pending()), (0, 0));
        }
    });
}

/// One worker, held, while executed requests queue past the FIFO's ring
/// (1,024 places) into its backlog's chunks (256 each), their numbers at
/// and around the ring's and chunks' edges; some are cancelled by id
/// from anywhere in the queue (which takes the FIFO apart and puts the
/// rest back). Released, the worker runs every one left exactly once and
/// in the order they were put: no refill skips, repeats or reorders a
/// chunk. `queued()` and `stats()` are exact.
#[test]
fn executed_requests_through_the_fifos_backlog_run_in_order() {
    scaled("the FIFO's backlog", |progress| {
        let mut rng = Rng(0xf1f0_bac0);
        let pool = ThreadPool::new(1);
        let mut completed = 0u64;
        let mut cancelled = 0u64;
        for round in 0..rounds(12) {
            progress.fetch_add(1, Ordering::SeqCst);
            let (gate, latch) = common::gate();
            pool.execute(move || latch.hold()).unwrap();
            gate.await_start();
            completed += 1;
            let edge = 1024 + 256 * rng.below(6) as usize;
            let n = (edge as i64 + rng.below(5) as i64 - 2) as usize;
            let order = Arc::new(Mutex::new(Vec::with_capacity(n)));
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                let order = Arc::clone(&order);
                ids.push(pool.execute(move || order.lock().unwrap().push(i)).unwrap());
            }
            assert_eq!(pool.queued(), n, "round {round}");
            let mut gone = HashSet::new();
            for _ in 0..rng.below(8) {
                let i = rng.below(n as u64) as usize;
                assert_eq!(
                    pool.cancel(ids[i]),
                    gone.insert(i),
                    "round {round}: request {i}"
                );
            }
            assert_eq!(pool.queued(), n - gone.len(), "round {round}");
            gate.open();
            assert_eq!(pool.wait(), Ok(0));
            let expected: Vec<usize> = (0..n).filter(|i| !gone.contains(i)).collect();
            let order = order.lock().unwrap();
            let wrong =
                (0..expected.len().max(order.len())).find(|&k| order.get(k) != expected.get(k));
            if let Some(at) = wrong {
                let window = |v: &[usize]| v[at.min(v.len())..(at + 8).min(v.len())].to_vec();
                panic!(
                    "round {round}, {n} queued: ran {} in all, first out of order at {at}: ran {:?}, put {:?}",
                    order.len(),
                    window(&order),
                    window(&expected)
                );
            }
            completed += expected.len() as u64;
            cancelled += gone.len() as u64;
            let stats = pool.stats();
            assert_eq!(
                (stats.completed, stats.cancelled),
                (completed, cancelled),
                "round {round}"
            );
        }
    });
}
