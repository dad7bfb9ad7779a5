//! An autoscaling pool's retirement racing a put (`src/pool/scale.rs`), on
//! the shipped `Autoscale` decisions and the real request queue, with a
//! model roster in place of the registry's threads: (s1)-(s2); and racing
//! a running callable's child held in its worker's slot, (s3).
//! `docs/design.md`, "Autoscaling".

use super::*;
use crate::pool::queue::Retirement;
use crate::pool::scale::{Autoscale, Roster, Scale};

/// The registry as the decisions see it: live workers' flags under the
/// model's mutex (the registry's lock).
pub(super) struct Workers {
    live: Vec<Arc<WorkerFlags>>,
}

/// `Workers` locked, for one caller: `me` is the worker asking to retire.
pub(super) struct Locked<'a> {
    workers: &'a mut Workers,
    queue: &'a RequestQueue<u64>,
    me: Option<&'a Arc<WorkerFlags>>,
}

impl Roster for Locked<'_> {
    fn live(&self) -> usize {
        self.workers.live.len()
    }

    fn open(&self) -> bool {
        self.queue.lifecycle() == Lifecycle::Open
    }

    fn retire_me(&mut self) -> bool {
        let Some(me) = self.me else {
            return false;
        };
        let Some(at) = self.workers.live.iter().position(|w| Arc::ptr_eq(w, me)) else {
            return false;
        };
        let me = self.workers.live.remove(at);
        self.queue.dismiss(std::iter::once(&*me));
        true
    }

    fn start_one(&mut self) {
        self.workers.live.push(Arc::new(WorkerFlags::new()));
    }
}

/// How a worker whose keep-alive passed decides to leave: the shipped
/// decision, or a seeded broken one.
pub(super) type Retire = fn(&Autoscale, &mut Locked<'_>, &RequestQueue<u64>) -> bool;

/// The shipped decision.
pub(super) fn shipped(
    autoscale: &Autoscale,
    roster: &mut Locked<'_>,
    queue: &RequestQueue<u64>,
) -> bool {
    autoscale.retire_idle(roster, queue, || false) == Retirement::Retired
}

/// Seeded bug: a retirement that publishes the smaller count and leaves
/// without looking at the FIFO again (the half of the store-buffering pair
/// on the worker's side missing). The scenarios must catch it.
pub(super) fn without_second_look(
    autoscale: &Autoscale,
    roster: &mut Locked<'_>,
    queue: &RequestQueue<u64>,
) -> bool {
    if !roster.open() || roster.live() == 0 || !queue.fifo_is_empty() {
        return false;
    }
    if !roster.retire_me() {
        return false;
    }
    autoscale.publish(roster.live());
    true
}

/// What the scenarios check at the end, with every thread joined: a
/// request still queued has a live worker to take it (a worker that stayed
/// goes back to the queue, a started one begins there), and every worker
/// that retired was dismissed, so it takes nothing more.
fn nothing_stranded(queue: &RequestQueue<u64>, workers: &Workers, retired: &[Arc<WorkerFlags>]) {
    if !queue.fifo_is_empty() {
        assert!(
            !workers.live.is_empty(),
            "a queued request was left with no live worker"
        );
    }
    for flags in retired {
        assert!(flags.is_dismissed(), "a retired worker was not dismissed");
    }
}

/// A put as `ThreadPool::put` does it on an autoscaling pool: push
/// (which fences), then the lock-free look, then growing under the lock.
fn put(queue: &RequestQueue<u64>, autoscale: &Autoscale, workers: &Mutex<Workers>, job: u64) {
    assert!(matches!(queue.push(job), Push::Queued));
    grow_for_it(queue, autoscale, workers);
}

/// After a push, as `Pool::grow_for_backlog` does: the lock-free look,
/// then growing under the lock.
fn grow_for_it(queue: &RequestQueue<u64>, autoscale: &Autoscale, workers: &Mutex<Workers>) {
    if autoscale.may_need_worker(queue) {
        let mut workers = workers.lock().unwrap();
        autoscale.grow(
            &mut Locked {
                workers: &mut workers,
                queue,
                me: None,
            },
            1,
        );
    }
}

/// The shared state of a scenario: the queue, the decisions with their
/// bounds, and a roster of `live` workers (published, as the pool does
/// once it started them).
fn setup(
    live: usize,
    max: usize,
) -> (
    Arc<RequestQueue<u64>>,
    Arc<Autoscale>,
    Arc<Mutex<Workers>>,
    Vec<Arc<WorkerFlags>>,
) {
    let queue = Arc::new(RequestQueue::new(None));
    let autoscale = Arc::new(Autoscale::new(Scale {
        min: 0,
        max,
        keep_alive: None,
    }));
    let flags: Vec<_> = (0..live).map(|_| Arc::new(WorkerFlags::new())).collect();
    autoscale.publish(live);
    let workers = Arc::new(Mutex::new(Workers {
        live: flags.clone(),
    }));
    (queue, autoscale, workers, flags)
}

/// A worker whose keep-alive passed asks to retire, as
/// `Pool::retire_idle` does: under the registry's lock.
fn spawn_retiring(
    retire: impl FnOnce(&Autoscale, &mut Locked<'_>, &RequestQueue<u64>) -> bool + Send + 'static,
    queue: &Arc<RequestQueue<u64>>,
    autoscale: &Arc<Autoscale>,
    workers: &Arc<Mutex<Workers>>,
    me: &Arc<WorkerFlags>,
) -> thread::JoinHandle<bool> {
    let (queue, autoscale, workers, me) = (
        Arc::clone(queue),
        Arc::clone(autoscale),
        Arc::clone(workers),
        Arc::clone(me),
    );
    thread::spawn(move || {
        let mut workers = workers.lock().unwrap();
        retire(
            &autoscale,
            &mut Locked {
                workers: &mut workers,
                queue: &queue,
                me: Some(&me),
            },
            &queue,
        )
    })
}

/// (s1) The pool's only worker (minimum 0, maximum 1) retires while a put
/// queues a request: either the worker stays, or someone starts a worker
/// for the request, and never more than the maximum.
pub(super) fn last_worker_retires_as_a_request_arrives(retire: Retire) {
    let (queue, autoscale, workers, flags) = setup(1, 1);
    let worker = spawn_retiring(retire, &queue, &autoscale, &workers, &flags[0]);
    put(&queue, &autoscale, &workers, 1);
    let retired = worker.join().unwrap();
    let workers = workers.lock().unwrap();
    let gone: Vec<_> = flags.iter().filter(|_| retired).cloned().collect();
    nothing_stranded(&queue, &workers, &gone);
    assert!(workers.live.len() <= 1, "the pool grew past its maximum");
}

/// (s2) Both workers of a pool of at most 2 retire while a put from
/// another thread queues a request: nothing stranded, never more than the
/// maximum.
pub(super) fn two_workers_retire_as_a_request_arrives(retire: Retire) {
    let (queue, autoscale, workers, flags) = setup(2, 2);
    let first = spawn_retiring(retire, &queue, &autoscale, &workers, &flags[0]);
    let second = spawn_retiring(retire, &queue, &autoscale, &workers, &flags[1]);
    put(&queue, &autoscale, &workers, 1);
    let retired = [first.join().unwrap(), second.join().unwrap()];
    let workers = workers.lock().unwrap();
    let gone: Vec<_> = flags
        .iter()
        .zip(retired)
        .filter(|(_, retired)| *retired)
        .map(|(flags, _)| Arc::clone(flags))
        .collect();
    nothing_stranded(&queue, &workers, &gone);
    assert!(workers.live.len() <= 2, "the pool grew past its maximum");
}

/// How a worker whose keep-alive passed decides to leave, for (s3): it is
/// given the look at children held in slots.
pub(super) type RetireHeld =
    fn(&Autoscale, &mut Locked<'_>, &RequestQueue<u64>, &dyn Fn() -> bool) -> bool;

/// The shipped decision, looking at the slots.
pub(super) fn shipped_held(
    autoscale: &Autoscale,
    roster: &mut Locked<'_>,
    queue: &RequestQueue<u64>,
    held: &dyn Fn() -> bool,
) -> bool {
    autoscale.retire_idle(roster, queue, held) == Retirement::Retired
}

/// Seeded bug: the shipped decision blind to held children (as before
/// `retire_idle` looked at the slots). (s3) must catch it.
pub(super) fn blind_to_held(
    autoscale: &Autoscale,
    roster: &mut Locked<'_>,
    queue: &RequestQueue<u64>,
    _: &dyn Fn() -> bool,
) -> bool {
    autoscale.retire_idle(roster, queue, || false) == Retirement::Retired
}

/// (s3) A running parent (on worker P, busy) puts a child into its slot
/// while the pool's other worker W (minimum 0, maximum 2) retires: the
/// child's worker hands it off if the pool may grow (`Autoscale::may_grow`
/// after `Nursery::hold`, as `Children::spawn` does), and grows for it as
/// a hand-off does; W looks at the slots before and after it publishes the
/// smaller count. At the end a child still held or queued has a worker
/// besides its busy parent's: W stayed, or one was started.
pub(super) fn a_worker_retires_as_a_child_is_held(retire: RetireHeld) {
    use crate::pool::nursery::Nursery;
    let (queue, autoscale, workers, flags) = setup(2, 2);
    let nursery = Arc::new(Nursery::<u64>::default());
    let slot = nursery.join(64);
    let worker = {
        let nursery = Arc::clone(&nursery);
        let retire =
            move |autoscale: &Autoscale, roster: &mut Locked<'_>, queue: &RequestQueue<u64>| {
                retire(autoscale, roster, queue, &|| nursery.any())
            };
        spawn_retiring(retire, &queue, &autoscale, &workers, &flags[1])
    };
    let first = nursery.hold(&slot, 1);
    let due = first && {
        crate::sync::seq_cst_pair();
        !queue.none_to_wake() || autoscale.may_grow()
    };
    if due {
        let pushed = nursery.queue_from(&slot, |jobs| queue.push_many(jobs, Admit::UntilClosed));
        assert!(pushed.is_none_or(|pushed| matches!(pushed, Push::Queued)));
        grow_for_it(&queue, &autoscale, &workers);
    }
    let retired = worker.join().unwrap();
    let workers = workers.lock().unwrap();
    if nursery.any() || !queue.fifo_is_empty() {
        assert!(
            workers.live.len() >= 2,
            "a child was left with no worker but its busy parent's"
        );
    }
    if retired {
        assert!(
            flags[1].is_dismissed(),
            "a retired worker was not dismissed"
        );
    }
    assert!(workers.live.len() <= 2, "the pool grew past its maximum");
}
