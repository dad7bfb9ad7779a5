//! A collector's added requests (`src/collector_context.rs`, [`Added`]),
//! (c1): a request put with `Collector::put_with_context` adds one whose
//! outcome comes back to the same collector, and that added request may
//! end before its parent. The collector's loop must not end, nor drop an
//! outcome as not its own, while the added request's outcome is still to
//! come (`docs/design.md`, "Collectors and scopes").
//!
//! What runs as shipped: the parent's work ([`collector_context::with_context`]
//! over the real [`sink_request`]), its real [`CollectorContext::add`]
//! (the id pushed to the real [`Added`], then the put), both requests'
//! real boxes, which send their outcomes on a real `flume` channel, and
//! the real `Added::take`. What is a replica, and why:
//!
//! * the collector's loop, `Collector::next_arrival` (`count_added` before
//!   each look and after each outcome arrives): a `Collector` lives on a
//!   `ThreadPool`, whose worker threads are `std` threads the checkers
//!   cannot drive; the replica is that loop's counting, line for line,
//!   over a plain `HashSet` as the collector keeps it;
//! * the receive: the collector's channel is `flume`, whose blocking
//!   `recv` the checkers cannot see into. A model worker rings a bell on
//!   the checker's primitives once its request's box has run (the box's
//!   send is its last step, and the worker does nothing else between), and
//!   the collector takes the outcome with `try_recv` once a bell rang;
//! * the workers: two model threads run the boxes as `worker::execute`
//!   does (`TaskBox::run`), one handed the parent, the other taking what
//!   the parent put through its [`Spawner`] (a model queue).
//!
//! The seeded misuse ([`Misuse::PushAfterPut`]) adds the request by hand
//! with the two steps of `CollectorContext::add_work` swapped: the id goes
//! to `Added` after the put, so the added request can end, and its outcome
//! be met, before the collector can count it.
//!
//! (cs1) is the same with streams (`collector_stream.rs`): the parent is a
//! streaming request, put as `Collector::put_streaming` puts it (the real
//! `streaming` work over the real `sink_request_ending`), that adds a
//! streaming request through its real `CollectorEmitter::add_streaming`
//! and emits; the added one emits twice. Items do not count a request
//! out; only its end does. The replica of the collector's loop is
//! `next_arrival` with `take_piece`, and its seeded misuse
//! ([`StreamMisuse::PieceBeforeCount`]) looks at a piece before it counts
//! the added ids, so an added stream's item can be met before its id is
//! counted, and is dropped as a stranger's.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc as StdArc;

use super::*;
use crate::collector_context::{self, Added, CollectorContext};
use crate::collector_stream::{self, CollectorEmitter};
use crate::request::context::{Closed, Item, Refusal, Spawner};
use crate::request::ended::Ended;
use crate::request::task::TaskBox;
use crate::request::{Context, RequestId, WorkRequest};
use crate::ticket::{sink_request, sink_request_ending, Arrived, Piece, Streamed};

/// How the parent adds its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Misuse {
    /// Through `CollectorContext::add`, as shipped.
    None,
    /// By hand, the id pushed to `Added` only after the put.
    PushAfterPut,
}

/// The model pool: the queue a parent's put lands in, and the bell each
/// worker rings once a request's box has run (its outcome is sent).
pub(super) struct ModelPool {
    queue: Mutex<VecDeque<TaskBox>>,
    queued: Condvar,
    rung: Mutex<usize>,
    rang: Condvar,
}

impl ModelPool {
    pub(super) fn new() -> Arc<ModelPool> {
        Arc::new(ModelPool {
            queue: Mutex::new(VecDeque::new()),
            queued: Condvar::new(),
            rung: Mutex::new(0),
            rang: Condvar::new(),
        })
    }

    /// A model worker's take: blocks until a request is queued.
    pub(super) fn take(&self) -> TaskBox {
        let mut queue = self.queue.lock().unwrap();
        loop {
            if let Some(task) = queue.pop_front() {
                return task;
            }
            queue = self.queued.wait(queue).unwrap();
        }
    }

    /// Runs `task` on this model worker, as `worker::execute` does, and
    /// rings the bell: its outcome is on the collector's channel.
    pub(super) fn execute(&self, mut task: TaskBox) {
        task.run(self);
        *self.rung.lock().unwrap() += 1;
        self.rang.notify_all();
    }

    /// Blocks until more than `heard` bells have rung.
    fn wait_rung(&self, heard: usize) {
        let mut rung = self.rung.lock().unwrap();
        while *rung <= heard {
            rung = self.rang.wait(rung).unwrap();
        }
    }
}

/// A running request's puts go to the model queue (a worker's
/// `Children::spawn` queues them, for any worker to take).
impl Spawner for ModelPool {
    fn spawn(&self, request: WorkRequest) -> Result<RequestId, Refusal> {
        let id = request.id();
        self.queue.lock().unwrap().push_back(request.into_task());
        self.queued.notify_all();
        Ok(id)
    }

    fn emit(&self, _item: Item) -> Result<(), Closed> {
        Err(Closed)
    }

    fn worker_state(&self) -> Option<&RefCell<Box<dyn Any>>> {
        None
    }

    fn worker_index(&self) -> Option<usize> {
        None
    }

    fn count(&self, _ended: Ended) {}

    fn offer(&self, _half: WorkRequest) -> bool {
        false
    }

    fn reclaim(&self, _half: *const ()) {}
}

/// (c1) The collector puts parent 1 with a context; the parent adds
/// request 2 and returns, and the added request may run on the other
/// worker and end before its parent. The collector's loop (the replica of
/// `Collector::next_arrival`) ends only once both outcomes have been
/// handled, each once, and never meets an outcome it has not counted (no
/// put is refused here, so such an outcome would be dropped as a refused
/// put's, and the loop would then wait for it for ever).
pub(super) fn added_request_ends_before_its_parent(misuse: Misuse) {
    let pool = ModelPool::new();
    let (sender, receiver) = flume::unbounded::<Option<Arrived<u64, Infallible>>>();
    let added = StdArc::new(Added::default());
    // `Collector::put_with_context`: the parent's work, counted pending
    // before its put.
    let work = {
        // The seeded misuse's own copies, to add by hand.
        let (outcomes, ids) = (sender.clone(), StdArc::clone(&added));
        collector_context::with_context(
            move |cx: &CollectorContext<'_, u64>, n: u64| {
                match misuse {
                    Misuse::None => {
                        cx.add(|x: u64| x, n + 1).expect("the model pool is open");
                    }
                    Misuse::PushAfterPut => {
                        let (id, task) = sink_request(move |_: &Context<'_>| Ok(n + 1), &outcomes);
                        cx.put(WorkRequest::from_task(task))
                            .expect("the model pool is open");
                        ids.push(id);
                    }
                }
                n
            },
            1,
            sender.clone(),
            StdArc::clone(&added),
        )
    };
    let (parent_id, parent) = sink_request(
        move |cx: &Context<'_>| Ok::<_, Infallible>(work(cx)),
        &sender,
    );
    let mut pending = HashSet::from([parent_id]);
    let parents_worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || pool.execute(parent))
    };
    let other_worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let task = pool.take();
            pool.execute(task);
        })
    };
    // `next_arrival`, until nothing is pending.
    let count_added = |pending: &mut HashSet<RequestId>| {
        added.take(|id| {
            pending.insert(id);
        })
    };
    let mut heard = 0;
    let mut handled = Vec::new();
    loop {
        count_added(&mut pending);
        if pending.is_empty() {
            break;
        }
        pool.wait_rung(heard);
        heard += 1;
        let arrived = receiver
            .try_recv()
            .expect("a bell rings once its outcome was sent")
            .expect("no lookout here sends a nudge");
        let (id, piece) = arrived.open();
        count_added(&mut pending);
        assert!(
            pending.remove(&id),
            "an added request's outcome arrived before the collector could count it"
        );
        let Piece::End(outcome) = piece else {
            panic!("neither request streams")
        };
        handled.push((id, outcome.expect("both requests succeed")));
    }
    parents_worker.join().unwrap();
    other_worker.join().unwrap();
    handled.sort_unstable_by_key(|&(_, value)| value);
    assert_eq!(
        handled.len(),
        2,
        "the collector ended with an outcome to come"
    );
    assert_eq!(handled[0], (parent_id, 1));
    assert_eq!(handled[1].1, 2);
    assert!(receiver.try_recv().is_err());
    assert_eq!(added.len(), 0);
}

/// How the replica of the collector's loop takes a stream's piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StreamMisuse {
    /// As shipped: the added ids counted after each piece arrives, before
    /// it is looked at (`take_message`, `next_arrival`).
    None,
    /// The piece looked at first.
    PieceBeforeCount,
}

/// (cs1) The collector puts streaming parent 1; it adds streaming request
/// 11, which runs on the other worker and emits 11 and 12; the parent
/// then emits 1 (once the added one's items are sent) and returns, its
/// end racing the added one's. The collector's loop (the replica of
/// `next_arrival` with `take_piece`) hands on each item once, each
/// request's in order, never meets a piece of a request it has not
/// counted, and ends only once both ends have come.
pub(super) fn added_stream_emits_around_its_parent(misuse: StreamMisuse) {
    let pool = ModelPool::new();
    let (sender, receiver) = flume::unbounded::<Option<Arrived<u64, Infallible>>>();
    let added = StdArc::new(Added::default());
    // `Collector::put_streaming`: the parent's work, counted pending
    // before its put.
    // The added stream's items go before its parent's one: the checkers
    // cannot see into the channel, so only a step they see (this flag)
    // can put the parent's send after them.
    let emitted = Arc::new((Mutex::new(false), Condvar::new()));
    let work = collector_stream::streaming(
        move |n: u64, out: &CollectorEmitter<'_, u64>| -> Result<(), Closed> {
            let told = Arc::clone(&emitted);
            out.add_streaming(
                move |m: u64, out: &CollectorEmitter<'_, u64>| {
                    out.emit(m)?;
                    out.emit(m + 1)?;
                    *told.0.lock().unwrap() = true;
                    told.1.notify_all();
                    Ok(())
                },
                n + 10,
            )
            .expect("the model pool is open");
            let mut done = emitted.0.lock().unwrap();
            while !*done {
                done = emitted.1.wait(done).unwrap();
            }
            drop(done);
            out.emit(n)
        },
        1,
        sender.clone(),
        StdArc::clone(&added),
    );
    let (parent_id, parent) = sink_request_ending::<Streamed, _, u64, Infallible>(
        move |cx: &Context<'_>| collector_stream::stopped(work(cx)),
        &sender,
    );
    let mut pending = HashSet::from([parent_id]);
    let parents_worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || pool.execute(parent))
    };
    let other_worker = {
        let pool = Arc::clone(&pool);
        thread::spawn(move || {
            let task = pool.take();
            pool.execute(task);
        })
    };
    let count_added = |pending: &mut HashSet<RequestId>| {
        added.take(|id| {
            pending.insert(id);
        })
    };
    let (mut items, mut ended) = (Vec::new(), Vec::new());
    let mut heard = 0;
    loop {
        count_added(&mut pending);
        if pending.is_empty() {
            break;
        }
        // The blocking receive: a box's sends all come before its bell, so
        // with the channel empty the next message comes by the next bell.
        // Items come without one, and may be met at any look.
        let message = loop {
            if let Ok(message) = receiver.try_recv() {
                break message;
            }
            pool.wait_rung(heard);
            heard += 1;
        };
        let (id, piece) = message.expect("no lookout here sends a nudge").open();
        if misuse == StreamMisuse::None {
            count_added(&mut pending);
        }
        let known = match piece {
            Piece::Item(item) => {
                items.push((id, item));
                pending.contains(&id)
            }
            Piece::Done => {
                ended.push(id);
                pending.remove(&id)
            }
            Piece::End(_) => panic!("neither stream fails"),
        };
        assert!(
            known,
            "an added stream's piece arrived before the collector could count it"
        );
    }
    parents_worker.join().unwrap();
    other_worker.join().unwrap();
    let of = |which: bool| -> Vec<u64> {
        items
            .iter()
            .filter(|(id, _)| (*id == parent_id) == which)
            .map(|&(_, item)| item)
            .collect()
    };
    assert_eq!(of(true), [1]);
    assert_eq!(of(false), [11, 12], "the added stream's items, in order");
    assert_eq!(ended.len(), 2, "the collector ended with a stream to come");
    assert!(ended.contains(&parent_id));
    assert!(items.iter().all(|(id, _)| ended.contains(id)));
    assert!(receiver.try_recv().is_err());
    assert_eq!(added.len(), 0);
}
