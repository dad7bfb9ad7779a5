//! The request queue's scenarios, each written once over [`Queue`]: small
//! ones that loom explores exhaustively, bigger ones for shuttle.

use super::*;

/// (a) A request is taken by exactly one worker. Two workers, two puts;
/// the driver waits until both were taken (a lost wake-up deadlocks here),
/// then dismisses both, which must then exit. Nothing is left queued.
pub(super) fn taken_once<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(2);
    s.put([1, 2]);
    s.wait_taken(2);
    s.dismiss_all();
    let taken = s.join_all();
    assert_eq!(s.queue.len(), 0);
    assert_exactly_once([1, 2], &taken);
}

/// (a') Dismissal racing with the puts: the two workers are dismissed right
/// after the puts; whatever they did not take is still queued, exactly once.
pub(super) fn taken_once_or_left<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(2);
    s.put([1, 2]);
    s.dismiss_all();
    let mut ended = s.join_all();
    ended.push(s.queue.take_all());
    assert_exactly_once([1, 2], &ended);
}

/// (h) A handle of a pool that stays open takes its own queued requests
/// out (`Pool::extract`, as a global-pool handle's shutdown does) while a
/// worker takes: the other handle's request goes back and is still taken
/// (a worker that met the queue empty meanwhile and slept must be woken: a
/// lost wake-up deadlocks the driver's wait); each request ends once.
pub(super) fn extracted<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.put([1, 2]);
    s.spawn_workers(1);
    let own = s.queue.take_own(&|job| *job == 2);
    s.wait_taken(2 - own.len());
    s.dismiss_all();
    let mut ended = s.join_all();
    assert_eq!(s.queue.len(), 0);
    ended.push(own);
    assert_exactly_once([1, 2], &ended);
}

/// (h2) A helping wait takes the first of its own queued requests
/// (`RequestQueue::take_first`) while a worker takes: the other handle's
/// request queued ahead of it goes back and is still taken (a worker that
/// met the queue empty meanwhile and slept must be woken: a lost wake-up
/// deadlocks the driver's wait); each request ends once.
pub(super) fn helped<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.put([1, 2]);
    s.spawn_workers(1);
    let own: Vec<u64> = s.queue.take_first(&|job| *job == 2).into_iter().collect();
    s.wait_taken(2 - own.len());
    s.dismiss_all();
    let mut ended = s.join_all();
    assert_eq!(s.queue.len(), 0);
    ended.push(own);
    assert_exactly_once([1, 2], &ended);
}

/// (h3) A helping wait's take racing the closing sweep (`shutdown_now`):
/// the request it looked past goes back and is swept, the one it took is
/// its own; none is left in the closed queue, each ends once.
pub(super) fn helped_while_swept<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    s.put([1, 2]);
    let helper = {
        let queue = s.queue.clone();
        thread::spawn(move || queue.take_first(&|job| *job == 2))
    };
    s.queue.advance(Lifecycle::Closed);
    let swept = s.queue.take_all();
    let helped: Vec<u64> = helper.join().unwrap().into_iter().collect();
    assert_eq!(s.queue.len(), 0, "a request was left in the closed queue");
    assert_exactly_once([1, 2], &[swept, helped]);
}

/// (i) A waiter with no thread left counts its queued requests
/// (`Pool::stranded`) while the closer sweeps (`shutdown_now`): the
/// count takes the requests out and puts them back, and the sweep must not
/// meet the queue empty meanwhile. Both requests are swept; none is left
/// stranded in the closed queue (the CI failure of 2026-11-22).
pub(super) fn counted_while_swept<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    s.put([1, 2]);
    let waiter = {
        let queue = s.queue.clone();
        thread::spawn(move || queue.count(&|_| true))
    };
    s.queue.advance(Lifecycle::Closed);
    let swept = s.queue.take_all();
    let counted = waiter.join().unwrap();
    assert!(counted <= 2);
    assert_eq!(s.queue.len(), 0, "a request was left in the closed queue");
    assert_exactly_once([1, 2], &[swept]);
}

/// (j) Two handles of a pool with no thread count their own queued requests
/// at once: each count is exact (an undercount sends a waiter to sleep on
/// results that never come), and both requests are still queued after.
pub(super) fn counted_twice<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    s.put([1, 2]);
    let other = {
        let queue = s.queue.clone();
        thread::spawn(move || queue.count(&|job| *job == 2))
    };
    assert_eq!(
        s.queue.count(&|job| *job == 1),
        1,
        "the first count was wrong"
    );
    assert_eq!(other.join().unwrap(), 1, "the second count was wrong");
    assert_eq!(s.queue.len(), 2);
    assert_exactly_once([1, 2], &[s.queue.take_all()]);
}

/// (b) Dismissing an idle worker wakes it and it exits: no lost wake-up
/// (a missed one leaves the join waiting for ever, which the checker
/// reports as a deadlock).
pub(super) fn idle_dismissed<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(1);
    s.dismiss_all();
    assert_eq!(s.join_all(), [[]]);
}

/// (b') Dismissing one of two idle workers: the dismissed one exits, the
/// other is still woken by the next put and takes it (the put's wake-up is
/// not spent on the leaving worker); then it is dismissed too.
pub(super) fn one_of_two_dismissed<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(2);
    s.dismiss(&[0]);
    s.put([1]);
    s.wait_taken(1);
    s.dismiss(&[1]);
    assert_eq!(s.join_all(), [vec![], vec![1]]);
    assert_eq!(s.queue.len(), 0);
}

/// A `busy_worker`'s thread: its two takes.
type BusyWorker = thread::JoinHandle<(Option<u64>, Option<u64>)>;

/// A worker that takes a request, stays busy with it until the driver
/// releases it (after dismissing it and queueing another), then looks
/// once more, as a worker that just ran one (it counts itself spinning
/// first); returns both takes. Each take that got a request is counted.
fn busy_worker<Q: Queue>(s: &Scenario<Q>, flag: &Arc<WorkerFlags>) -> BusyWorker {
    let (queue, flag, progress) = (s.queue.clone(), flag.clone(), s.progress.clone());
    thread::spawn(move || {
        let first = queue.take(&flag, false);
        progress.took_one();
        progress.wait_released();
        let second = queue.take(&flag, true);
        if second.is_some() {
            progress.took_one();
        }
        (first, second)
    })
}

/// Request 1 put and taken by a `busy_worker` (its flags returned with
/// it), then a second worker started beside it, idle.
fn busy_beside_idle<Q: Queue>(s: &mut Scenario<Q>) -> (Arc<WorkerFlags>, BusyWorker) {
    let busy_flag = flag();
    s.put([1]);
    let busy = busy_worker(s, &busy_flag);
    s.wait_taken(1);
    s.spawn_workers(1);
    (busy_flag, busy)
}

/// (c) Dismissing a busy worker: it finishes its request, then exits
/// without taking the request queued meanwhile, which the other worker (or
/// the final sweep) gets.
pub(super) fn busy_dismissed<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    let (busy_flag, busy) = busy_beside_idle(&mut s);
    s.queue.dismiss(&[&busy_flag]);
    s.put([2]);
    s.progress.release();
    let (first, second) = busy.join().unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(second, None, "a dismissed worker took another request");
    s.dismiss_all();
    let mut ended = s.join_all();
    ended.push(s.queue.take_all());
    assert_exactly_once([2], &ended);
}

/// (c3) A worker that ran a request counts itself spinning before its next
/// look, and is dismissed meanwhile, while a put lands and another worker
/// sleeps: the put may see it spinning and wake nobody, so as it leaves it
/// must wake the sleeper for the request (`pass_wake_on`); a lost wake-up
/// deadlocks the driver's wait. (The spin itself is off under loom: the
/// count, the fence and the look after it are what is checked.)
pub(super) fn spinner_dismissed<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    let (busy_flag, busy) = busy_beside_idle(&mut s);
    s.progress.release();
    s.queue.dismiss(&[&busy_flag]);
    s.put([2]);
    s.wait_taken(2);
    let (first, second) = busy.join().unwrap();
    assert_eq!(first, Some(1));
    s.dismiss_all();
    let mut ended = s.join_all();
    ended.push(second.into_iter().collect());
    ended.push(s.queue.take_all());
    assert_exactly_once([2], &ended);
}

/// (c') A worker dismissed while the pool is open, busy, then the pool
/// starts to drain: the worker does not drain with the others; the
/// request queued meanwhile stays for the final sweep.
pub(super) fn dismissed_before_drain<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    let busy_flag = flag();
    s.put([1]);
    let busy = busy_worker(&s, &busy_flag);
    s.wait_taken(1);
    s.queue.dismiss(&[&busy_flag]);
    s.put([2]);
    s.queue.advance(Lifecycle::Draining);
    s.progress.release();
    let (first, second) = busy.join().unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(
        second, None,
        "a worker dismissed before the drain took a request"
    );
    assert_eq!(s.queue.take_all(), [2]);
}

/// (d) Graceful drain, as `shutdown` does it: `advance(Draining)` then
/// dismiss every worker; the workers run everything queued, then exit.
pub(super) fn drained<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(1);
    s.put([1]);
    s.spawn_workers(1);
    s.put([2]);
    s.queue.advance(Lifecycle::Draining);
    s.dismiss_all();
    assert!(matches!(s.queue.push(3), Push::Closed(3)));
    let taken = s.join_all();
    assert_eq!(s.queue.len(), 0, "draining workers left requests queued");
    assert_exactly_once([1, 2], &taken);
}

/// (k) A put races a graceful shutdown (`advance(Draining)` + dismiss): it
/// is refused, or counted in before the draining worker can leave, and then
/// run. Never queued after the worker left (nothing would run it).
pub(super) fn put_racing_drain<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(1);
    let putter = {
        let queue = s.queue.clone();
        thread::spawn(move || match queue.push(1) {
            Push::Queued => Vec::new(),
            Push::Closed(job) => vec![job],
            Push::QueuedLate => panic!("the pool never closes here"),
            Push::Full(_) => unreachable!("unbounded"),
        })
    };
    s.queue.advance(Lifecycle::Draining);
    s.dismiss_all();
    let refused = putter.join().unwrap();
    let mut ended = s.join_all();
    assert_eq!(
        s.queue.len(),
        0,
        "a request was queued after the drain ended"
    );
    ended.push(refused);
    assert_exactly_once([1], &ended);
}

/// (e) Close, as `shutdown_now` does it: `advance(Closed)`, dismiss, sweep,
/// while a putter races with it. Every request is taken by a worker, swept,
/// or refused to the putter: exactly once, and nothing is stranded in the
/// queue after the sweep.
pub(super) fn closed<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(1);
    let putter = {
        let queue = s.queue.clone();
        thread::spawn(move || put_racing_close(&*queue, [1, 2]))
    };
    s.queue.advance(Lifecycle::Closed);
    s.dismiss_all();
    let swept = s.queue.take_all();
    let mut ended = s.join_all();
    let refused = putter.join().unwrap();
    assert_eq!(
        s.queue.len(),
        0,
        "a request was queued after the final sweep"
    );
    ended.extend([swept, refused]);
    assert_exactly_once([1, 2], &ended);
}

/// (l) A worker's batch hand-off (`push_many`, one reservation for two
/// requests) while two workers sleep: both requests are taken, once each
/// (a batch that woke one worker for two requests would still be taken by
/// it; one that woke none deadlocks the driver's wait).
pub(super) fn batch_wakes_sleepers<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(2);
    assert!(matches!(s.queue.push_many(vec![1, 2]), Push::Queued));
    s.wait_taken(2);
    s.dismiss_all();
    let taken = s.join_all();
    assert_eq!(s.queue.len(), 0);
    assert_exactly_once([1, 2], &taken);
}

/// (l') A batch hand-off racing a close: the batch is refused whole, or
/// queued and then run or swept (by the closer, or by the putter itself
/// when it pushed after the close, as `worker::children_pushed` does); nothing
/// is left in the closed queue and each request ends once.
pub(super) fn batch_racing_close<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(1);
    let putter = {
        let queue = s.queue.clone();
        thread::spawn(move || match queue.push_many(vec![1, 2]) {
            Push::Queued => Vec::new(),
            Push::QueuedLate => queue.take_all(),
            Push::Closed(jobs) | Push::Full(jobs) => jobs,
        })
    };
    s.queue.advance(Lifecycle::Closed);
    s.dismiss_all();
    let swept = s.queue.take_all();
    let mut ended = s.join_all();
    let refused = putter.join().unwrap();
    assert_eq!(
        s.queue.len(),
        0,
        "a request was queued after the final sweep"
    );
    ended.extend([swept, refused]);
    assert_exactly_once([1, 2], &ended);
}

/// (l'') A worker hands off its running request's children as a graceful
/// shutdown begins: children accepted before the drain are queued (not
/// refused), and the worker, draining, runs them before it leaves.
pub(super) fn children_meet_a_drain<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    s.put([1]);
    let flag = flag();
    let worker = {
        let (queue, flag, progress) = (s.queue.clone(), flag.clone(), s.progress.clone());
        thread::spawn(move || {
            let parent = queue.take(&flag, false).expect("the parent is queued");
            progress.took_one();
            let refused = match queue.push_children(vec![2, 3]) {
                Push::Queued => Vec::new(),
                Push::QueuedLate => queue.take_all(),
                Push::Closed(jobs) | Push::Full(jobs) => jobs,
            };
            let mut taken = vec![parent];
            taken.extend(work(&*queue, &flag, &progress));
            (taken, refused)
        })
    };
    s.wait_taken(1);
    s.queue.advance(Lifecycle::Draining);
    s.queue.dismiss(&[&*flag]);
    let (taken, refused) = worker.join().unwrap();
    assert!(
        refused.is_empty(),
        "children accepted before the drain were refused"
    );
    assert_eq!(s.queue.len(), 0);
    assert_exactly_once([1, 2, 3], &[taken]);
}

/// A putter racing a close: puts `jobs` into an unbounded queue and returns
/// those it was refused.
fn put_racing_close<Q: Queue>(queue: &Q, jobs: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut refused = Vec::new();
    for job in jobs {
        match queue.push(job) {
            Push::Queued => {}
            // Pushed after the close: the putter sweeps, as
            // `ThreadPool::put` does (what it finds counts as refused).
            Push::QueuedLate => refused.extend(queue.take_all()),
            Push::Closed(job) => refused.push(job),
            Push::Full(_) => unreachable!("unbounded"),
        }
    }
    refused
}

/// (f) A put blocked on a full queue (capacity 1) is woken when a worker
/// takes a request, and its request is then run, in order.
pub(super) fn blocked_put<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.put([1]);
    assert!(matches!(s.queue.push(2), Push::Full(2)));
    s.spawn_workers(1);
    assert!(s.queue.push_blocking(2, &|| 1).is_ok());
    s.wait_taken(2);
    s.dismiss_all();
    assert_eq!(s.join_all(), [[1, 2]]);
}

/// (f') Two puts blocked on a full queue, one worker: both are let in, one
/// at a time, and every request runs once.
pub(super) fn two_blocked_puts<Q: Queue>(queue: Q) {
    let mut s = Scenario::new(queue);
    s.put([1]);
    let putters: Vec<_> = [2, 3]
        .into_iter()
        .map(|job| {
            let queue = s.queue.clone();
            thread::spawn(move || assert!(queue.push_blocking(job, &|| 1).is_ok()))
        })
        .collect();
    s.spawn_workers(1);
    for p in putters {
        p.join().unwrap();
    }
    s.wait_taken(3);
    s.dismiss_all();
    assert_exactly_once([1, 2, 3], &s.join_all());
}

/// (f'') A put blocked on a full queue while the pool loses its last
/// thread: it is woken (`wake_putters`, as `Pool::worker_exited` does) and
/// gives up with `NoWorkers` instead of sleeping for ever.
pub(super) fn blocked_put_no_workers<Q: Queue>(queue: Q) {
    let s = Scenario::new(queue);
    let threads = Arc::new(AtomicUsize::new(1));
    let f1 = flag();
    s.put([1]);
    let w1 = {
        let (queue, flag, threads) = (s.queue.clone(), f1.clone(), threads.clone());
        thread::spawn(move || {
            // Dismissed before it takes anything, it exits like a worker:
            // the thread count first, then the putters are woken.
            let took = queue.take(&flag, false);
            threads.fetch_sub(1, Ordering::SeqCst);
            queue.wake_putters();
            took
        })
    };
    s.queue.dismiss(&[&f1]);
    let refused = {
        let threads = threads.clone();
        match s
            .queue
            .push_blocking(2, &move || threads.load(Ordering::SeqCst))
        {
            Ok(()) => None,
            Err(Blocked::NoWorkers(job)) => Some(job),
            Err(_) => unreachable!("open, no deadline, never stuck"),
        }
    };
    let took = w1.join().unwrap();
    let queued = s.queue.take_all();
    let ended = [
        took.into_iter().collect(),
        queued,
        refused.into_iter().collect(),
    ];
    assert_exactly_once([1, 2], &ended);
}

/// Many requests: `putters` threads put `each` requests apiece while
/// `workers` workers take them. With `wait_all`, the driver waits until
/// every request was taken while the pool is open (a request stranded beside
/// sleeping workers deadlocks here), then dismisses the workers; without it,
/// a graceful drain (advance to `Draining`, dismiss) runs what is left.
/// Either way every request runs exactly once and nothing is left.
#[cfg(all(shuttle, not(loom)))]
pub(super) fn many_requests<Q: Queue>(
    queue: Q,
    putters: u64,
    each: u64,
    workers: usize,
    wait_all: bool,
) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(workers);
    let putter_threads: Vec<_> = (0..putters)
        .map(|p| {
            let queue = s.queue.clone();
            thread::spawn(move || {
                for i in 0..each {
                    let job = p * each + i;
                    match queue.push(job) {
                        Push::Queued => {}
                        Push::Full(job) => assert!(queue.push_blocking(job, &|| 1).is_ok()),
                        Push::Closed(_) | Push::QueuedLate => {
                            unreachable!("open until the putters are done")
                        }
                    }
                }
            })
        })
        .collect();
    for p in putter_threads {
        p.join().unwrap();
    }
    if wait_all {
        s.wait_taken((putters * each) as usize);
    } else {
        s.queue.advance(Lifecycle::Draining);
    }
    s.dismiss_all();
    let taken = s.join_all();
    assert_eq!(s.queue.len(), 0, "draining workers left requests queued");
    assert_exactly_once(0..putters * each, &taken);
}

/// A resize storm: a resizer thread starts and dismisses workers at random
/// (between 0 and 3 live) while a putter puts `jobs` requests into a
/// bounded queue, blocking when it is full. Workers count themselves as
/// `Pool` does (counted before they start; on exit, the count first, then
/// `wake_putters`), so a put blocked while the last worker leaves gives up
/// with `NoWorkers`. The resizer joins the workers it dismisses at once (as
/// `join_all_dismissed_workers` would), so a dismissed worker that misses
/// its wake-up deadlocks the model. After the storm: at least one worker, a
/// graceful drain. Every request is taken exactly once or handed back to
/// the putter.
///
/// The workers come and go on the resizer's thread, so this scenario
/// manages them itself rather than through a [`Scenario`]'s driver.
#[cfg(all(shuttle, not(loom)))]
pub(super) fn resize_storm<Q: Queue>(queue: Q, jobs: u64, steps: usize) {
    use shuttle::rand::{thread_rng, Rng};

    struct Worker {
        flag: Arc<WorkerFlags>,
        handle: thread::JoinHandle<Vec<u64>>,
    }

    let s = Scenario::new(queue);
    let threads = Arc::new(AtomicUsize::new(0));
    let start = {
        let (queue, progress, threads) = (s.queue.clone(), s.progress.clone(), threads.clone());
        move || {
            let flag = flag();
            threads.fetch_add(1, Ordering::SeqCst);
            let handle = {
                let (queue, flag, progress, threads) = (
                    queue.clone(),
                    flag.clone(),
                    progress.clone(),
                    threads.clone(),
                );
                thread::spawn(move || {
                    let taken = work(&*queue, &flag, &progress);
                    threads.fetch_sub(1, Ordering::SeqCst);
                    queue.wake_putters();
                    taken
                })
            };
            Worker { flag, handle }
        }
    };
    let putter = {
        let (queue, threads) = (s.queue.clone(), threads.clone());
        thread::spawn(move || {
            let threads_left = move || threads.load(Ordering::SeqCst);
            let mut refused = Vec::new();
            for job in 0..jobs {
                match queue.push(job) {
                    Push::Queued => {}
                    Push::Full(job) => match queue.push_blocking(job, &threads_left) {
                        Ok(()) => {}
                        Err(Blocked::NoWorkers(job)) => refused.push(job),
                        Err(_) => unreachable!("open, no deadline, never stuck"),
                    },
                    Push::Closed(_) | Push::QueuedLate => {
                        unreachable!("open until the storm is over")
                    }
                }
            }
            refused
        })
    };
    let resizer = {
        let queue = s.queue.clone();
        thread::spawn(move || {
            let mut live: Vec<Worker> = Vec::new();
            let mut gone: Vec<Vec<u64>> = Vec::new();
            let mut rng = thread_rng();
            for _ in 0..steps {
                if live.is_empty() || (live.len() < 3 && rng.gen_bool(0.5)) {
                    live.push(start());
                } else {
                    let n = rng.gen_range(1..=live.len());
                    let leaving = live.split_off(live.len() - n);
                    queue.dismiss(&leaving.iter().map(|w| &*w.flag).collect::<Vec<_>>());
                    gone.extend(leaving.into_iter().map(|w| w.handle.join().unwrap()));
                }
            }
            if live.is_empty() {
                live.push(start());
            }
            (live, gone)
        })
    };
    let refused = putter.join().unwrap();
    let (live, gone) = resizer.join().unwrap();
    s.queue.advance(Lifecycle::Draining);
    s.queue
        .dismiss(&live.iter().map(|w| &*w.flag).collect::<Vec<_>>());
    let mut ended: Vec<Vec<u64>> = live.into_iter().map(|w| w.handle.join().unwrap()).collect();
    ended.extend(gone);
    assert_eq!(threads.load(Ordering::SeqCst), 0);
    let left = s.queue.take_all();
    assert_eq!(
        left,
        Vec::<u64>::new(),
        "draining workers left requests queued"
    );
    ended.push(refused);
    assert_exactly_once(0..jobs, &ended);
}

/// A close storm: two putters race with `shutdown_now`'s steps (close,
/// dismiss, sweep) while three workers take. Every request is run, swept or
/// refused, exactly once; nothing is queued after the sweep.
#[cfg(all(shuttle, not(loom)))]
pub(super) fn close_storm<Q: Queue>(queue: Q, each: u64) {
    let mut s = Scenario::new(queue);
    s.spawn_workers(3);
    let putters: Vec<_> = (0..2u64)
        .map(|p| {
            let queue = s.queue.clone();
            thread::spawn(move || put_racing_close(&*queue, p * each..(p + 1) * each))
        })
        .collect();
    shuttle::thread::yield_now();
    s.queue.advance(Lifecycle::Closed);
    s.dismiss_all();
    let swept = s.queue.take_all();
    let mut ended = s.join_all();
    ended.extend(putters.into_iter().map(|h| h.join().unwrap()));
    assert_eq!(
        s.queue.len(),
        0,
        "a request was queued after the final sweep"
    );
    ended.push(swept);
    assert_exactly_once(0..2 * each, &ended);
}
