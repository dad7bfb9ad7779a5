//! One pool handle's side of the request flow: its pending requests, its
//! result queue, and how waiters on it are woken. [`receive`] is the
//! receiving half (poll, wait); this module is what every thread that sends
//! to the handle uses.
//!
//! Workers hold an `Arc<Inbox>` per request (inside the [`Job`]) to send
//! the finished request back, or, for one whose outcome nobody hears, to
//! count it out of `pending` (`end_in_place`); everything else here is
//! touched by the threads that use the handle, and by sweeps that cancel
//! its requests.
//! The protocol is written in `docs/design.md` ("Deliver and handle",
//! "Waiting"); `src/models/inbox.rs` model-checks this code as it ships.

pub(crate) mod batches;
mod held;
mod nudge;
pub(crate) mod receive;

use std::cell::Cell;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::inbox::batches::{Finished, Tally};
use crate::inbox::nudge::{Nudged, Nudger};
use crate::lookout::Lookouts;
use crate::request::context::Item;
use crate::request::task::{BoxedTask, Route, SharedJob, TaskBox};
use crate::request::{RequestId, WorkRequest};
use crate::sync::channel::{self, Receiver, Sender, TrySendError};
use crate::sync::{
    seq_cst_pair, AtomicBool, AtomicUsize, CachePadded, Mutex, MutexGuard, Ordering,
};

/// How many emptied boxes of executed requests a handle keeps for its
/// executing thread at most (see `Inbox::keep_spent`): a few pages, while
/// nobody executes on it any more.
const SPENT_KEPT: usize = 1024;

/// A request on its way through the pool: queued or running. 24 bytes
/// whichever kind (the enum's tag hides in `inbox`'s pointer), which keeps
/// the request queue's blocks small enough for the allocator's fast path
/// (`docs/performance.md`, "Tickets, round 2").
pub(crate) enum Job {
    /// A request in a box of its own, and the handle it belongs to: its
    /// outcome goes back there, or (a collector's) straight to its
    /// channel; what its callable adds goes to that handle.
    Boxed { task: BoxedTask, inbox: Arc<Inbox> },
    /// A ticket's request, shared with the ticket: it settles its outcome
    /// there, is never counted on a handle, and adds nothing, so it needs
    /// no handle.
    Shared(SharedJob),
}

impl Job {
    /// The job for `task`, put on the handle whose inbox is `inbox`, and
    /// its id. A request whose outcome comes back to that handle is
    /// counted pending there first, so its result can never arrive
    /// unannounced (model weakness W10); a collector's or a ticket's is
    /// not the handle's to count. `Err` hands `task` back, counted
    /// nowhere, if its user-chosen id is pending there already.
    #[inline]
    pub(crate) fn register(task: TaskBox, inbox: &Arc<Inbox>) -> Result<(RequestId, Job), TaskBox> {
        match task {
            TaskBox::Boxed(task) => {
                let id = task.id();
                if task.route().counted() && inbox.register(id).is_err() {
                    return Err(TaskBox::Boxed(task));
                }
                let inbox = Arc::clone(inbox);
                Ok((id, Job::Boxed { task, inbox }))
            }
            TaskBox::Shared(job) => Ok((job.id(), Job::Shared(job))),
        }
    }

    #[inline]
    pub(crate) fn id(&self) -> RequestId {
        match self {
            Job::Boxed { task, .. } => task.id(),
            Job::Shared(job) => job.id(),
        }
    }

    /// The request again, as a put takes it (the handle's reference let
    /// go of).
    #[inline]
    pub(crate) fn into_task(self) -> TaskBox {
        match self {
            Job::Boxed { task, .. } => TaskBox::Boxed(task),
            Job::Shared(job) => TaskBox::Shared(job),
        }
    }

    pub(crate) fn into_request(self) -> WorkRequest {
        WorkRequest::from_task(self.into_task())
    }

    /// The handle this request counts as pending on (its outcome comes
    /// back there), if it counts on one rather than going to a ticket or
    /// a collector.
    #[inline]
    pub(crate) fn counted_on(&self) -> Option<&Arc<Inbox>> {
        match self {
            Job::Boxed { task, inbox } if task.route().counted() => Some(inbox),
            _ => None,
        }
    }

    /// Whether the request counts as pending on the handle of `inbox`.
    #[inline]
    pub(crate) fn counted_on_inbox(&self, inbox: &Arc<Inbox>) -> bool {
        self.counted_on().is_some_and(|own| Arc::ptr_eq(own, inbox))
    }

    /// Whether it is a request, rather than the half of a join (a piece of
    /// a running request, counted nowhere: `request::join`).
    pub(crate) fn is_request(&self) -> bool {
        !matches!(self, Job::Boxed { task, .. } if task.route() == Route::Parent)
    }

    /// Whether it is the half of a join whose boxed task lives at `task`
    /// (`request::join`). Only a half is matched: once that half is
    /// dropped (run by another worker), a child's box may take its address.
    pub(crate) fn is_half_at(&self, task: *const ()) -> bool {
        matches!(self, Job::Boxed { task: own, .. }
            if own.route() == Route::Parent && std::ptr::addr_eq(&**own, task))
    }

    /// Ends the request's pending life on its handle without an outcome
    /// (handed back or refused), if it was counted there.
    pub(crate) fn unregister(&self) {
        if let Some(inbox) = self.counted_on() {
            inbox.unregister(self.id());
        }
    }

    /// Ends the request unrun as cancelled, and sends the outcome where it
    /// goes: back to its handle without ever blocking (see `hand_over`), or
    /// to its ticket.
    pub(crate) fn cancel(self) {
        match self {
            Job::Boxed { mut task, inbox } => {
                task.cancel();
                match task.route() {
                    Route::Inbox => inbox.hand_over(Msg::Done(task)),
                    Route::InPlace => inbox.end_in_place(task),
                    // A collector's request settled its outcome already.
                    Route::Ticket | Route::Parent => {}
                }
            }
            Job::Shared(mut job) => job.cancel(),
        }
    }
}

/// Requests of a handle taken out of the queue unrun, to go back to the
/// user (a shutdown's), and the batch-done callbacks that completed: the
/// caller runs those once it holds the requests, or drops them (while
/// unwinding).
pub(crate) struct HandedBack {
    pub(crate) requests: Vec<WorkRequest>,
    pub(crate) finished: Finished,
}

/// What arrives on a handle's result queue.
pub(crate) enum Msg {
    /// The request ran, or was cancelled (the pool closed before a worker
    /// took it); the outcome is inside the task. 16 bytes, like a result.
    Done(BoxedTask),
    /// An item a streaming request emitted: calling it hands the item to
    /// the request's result callback. Not a result: it ends nothing.
    Item(Item),
    /// Re-check: the last pending request was handled by another thread,
    /// the pool ran out of threads, or outcomes wait in the overflow.
    Wake,
}

/// A handle's pending requests and its waiters (see `Inbox::counts`).
struct Counts {
    pending: AtomicUsize,
    /// Threads blocked in `wait`, `wait_timeout` or `poll_timeout` on this
    /// handle, or about to block: not from the moment they handle results
    /// until they are about to block again (see `WaiterGuard::off_duty`).
    waiters: AtomicUsize,
}

/// A handle's pending requests and the sending half of its queues.
pub(crate) struct Inbox {
    /// Unique per inbox, for telling handles apart in logs.
    pub(crate) serial: u64,
    results: Sender<Msg>,
    /// Requests put and not yet handled (or handed back, or ended in
    /// place), and the threads blocked in `wait` or `poll_timeout` on this
    /// handle. Both are written by the handle's threads, but for the
    /// workers' and sweeps' count-outs of requests whose outcome nobody
    /// hears (`end_in_place`); they sit on their own cache line, away from
    /// the reference count and sender that workers touch per request with
    /// a result.
    counts: CachePadded<Counts>,
    /// Workers blocked sending to this handle's full (bounded) result queue.
    stuck_senders: AtomicUsize,
    /// The handle's results are going (`close_results`): no sender may
    /// block on its result queue any more.
    results_closing: AtomicBool,
    /// With a bounded result queue: the threads that handle this handle's
    /// results but block elsewhere, for a stuck worker to nudge.
    lookouts: Option<Arc<Lookouts>>,
    /// Outcomes that could not go through the result queue: cancellations
    /// a sweep made while the queue was full (a sweep never blocks), and
    /// messages a panicking callback left unhandled. The receiving side
    /// handles them after the queue (see `receive`).
    overflow: Mutex<VecDeque<Msg>>,
    /// Whether `overflow` may hold messages (lets the common path skip its lock).
    overflowed: AtomicUsize,
    /// User-chosen ids of pending requests. Automatic ids are unique by
    /// construction and never enter this set, so the common path takes no
    /// lock. Not part of any wake-up protocol, so a plain std mutex.
    user_ids: std::sync::Mutex<HashSet<u64>>,
    /// The handle's batches still running (`ThreadPool::put_batch`).
    pub(crate) batches: batches::Batches,
    /// Waiters inside a callback whose caller holds results of this
    /// handle: each must re-check whenever `pending` falls, not only at
    /// zero, to see when only held results are left (`HeldByCaller`).
    /// Each is woken by a nudge of its own (`nudge`), for that and for
    /// every message sent to the result queue, never by a token there:
    /// another waiter could take the token and keep it. Read by workers
    /// after each send; written only as nested waits come and go, so off
    /// the line of `counts`.
    nested: AtomicUsize,
    /// The nested waiters' nudgers, registered before they are counted in
    /// `nested`.
    nudgers: Mutex<Vec<Arc<Nudger>>>,
    /// The results held below the nested waits open on this handle, on
    /// every thread (`held::Mark`). They are handled only once one of
    /// those waits returns, so a nested wait that waited for them would
    /// wait for ever: two threads, each with a nested wait over a run of
    /// its own, waited for each other's. A nested wait returns
    /// `HeldByCaller` once `pending` is no more than this.
    held_nested: AtomicUsize,
    /// Emptied boxes of executed requests (`Route::InPlace`) that workers
    /// ran, handed back in batches for the thread that executes the next
    /// one to free: the thread that made them, in the common case, whose
    /// allocator then reuses them on its own (`take_spent`).
    spent: std::sync::Mutex<Vec<BoxedTask>>,
    /// Whether `spent` may hold boxes: one look per execute, no lock.
    spent_waiting: std::sync::atomic::AtomicBool,
}

impl Inbox {
    /// A new inbox whose result queue holds at most `capacity` results
    /// (`None`: unbounded).
    pub(crate) fn new(capacity: Option<usize>) -> (Arc<Inbox>, Receiver<Msg>) {
        // A std atomic even under the checkers: only uniqueness matters.
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let (results_tx, results_rx) = match capacity {
            Some(cap) => channel::bounded(cap),
            None => channel::unbounded(),
        };
        let inbox = Arc::new(Inbox {
            // Relaxed: only uniqueness matters.
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            results: results_tx,
            counts: CachePadded::new(Counts {
                pending: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
            }),
            stuck_senders: AtomicUsize::new(0),
            results_closing: AtomicBool::new(false),
            lookouts: capacity.map(|_| Arc::default()),
            overflow: Mutex::new(VecDeque::new()),
            overflowed: AtomicUsize::new(0),
            user_ids: std::sync::Mutex::new(HashSet::new()),
            batches: batches::Batches::default(),
            nested: AtomicUsize::new(0),
            nudgers: Mutex::new(Vec::new()),
            held_nested: AtomicUsize::new(0),
            spent: std::sync::Mutex::new(Vec::new()),
            spent_waiting: std::sync::atomic::AtomicBool::new(false),
        });
        (inbox, results_rx)
    }

    /// Counts a request as pending. Fails if its user-chosen id is already
    /// pending here.
    #[inline]
    pub(crate) fn register(&self, id: RequestId) -> Result<(), ()> {
        if id.is_user_chosen() && !self.take_user_id(id) {
            return Err(());
        }
        // SeqCst: pairs with the waiter's `waiters` increment (see `unregister`).
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Counts `n` requests as pending in one step; `user_ids` are the
    /// numbers of those whose id the user chose. Fails, counting none, if
    /// one of them is already pending here.
    pub(crate) fn register_many(&self, n: usize, user_ids: &[u64]) -> Result<(), ()> {
        if !user_ids.is_empty() {
            let mut pending = self.user_ids();
            for (i, id) in user_ids.iter().enumerate() {
                if !pending.insert(*id) {
                    for taken in &user_ids[..i] {
                        pending.remove(taken);
                    }
                    return Err(());
                }
            }
        }
        // SeqCst: as in `register`.
        self.counts.pending.fetch_add(n, Ordering::SeqCst);
        Ok(())
    }

    /// Ends a request's pending life (handled, handed back, or ended in
    /// place: `end_in_place`, on a worker or a sweep). When that
    /// leaves nothing pending, wakes the blocked waiters (the caller is not
    /// one of them: a waiter is not counted while it handles results).
    #[inline]
    pub(crate) fn unregister(&self, id: RequestId) {
        if id.is_user_chosen() {
            self.free_user_id(id);
        }
        self.end_pending();
    }

    /// [`unregister`](Self::unregister) for a request whose id is
    /// automatic: no user-chosen id to free.
    #[inline]
    pub(crate) fn end_pending(&self) {
        // SeqCst on both sides (here: decrement then read `waiters`; a waiter:
        // increment `waiters` then read `pending`): one of the two must see
        // the other, so a waiter either sees zero or gets a token.
        let before = self.counts.pending.fetch_sub(1, Ordering::SeqCst);
        seq_cst_pair();
        if before == 1 {
            self.wake_waiters();
        } else {
            self.nudge_nested();
        }
    }

    /// Ends a request whose outcome nobody hears (`Route::InPlace`), on
    /// the thread that ran or cancelled it: what its box still holds goes
    /// first, then its pending life, so a `wait` that returns finds it
    /// gone entirely.
    #[inline]
    pub(crate) fn end_in_place(&self, task: BoxedTask) {
        let id = task.id();
        drop(task);
        self.unregister(id);
    }

    /// Takes emptied boxes of executed requests from a worker, for this
    /// handle's executing thread to free (`take_spent`); gives them back if
    /// they would take it past [`SPENT_KEPT`] (nobody is executing here any
    /// more), for the worker to free itself. They hold nothing of the user's.
    pub(crate) fn keep_spent(&self, boxes: &mut Vec<BoxedTask>) {
        // A plain std mutex: memory only, in no wake-up protocol.
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        // The whole batch must fit: batches come in any size below
        // `SPENT_BATCH` (a worker hands back early when it switches handle
        // or idles), so a look at `len()` alone would pass the bound.
        if spent.len() + boxes.len() <= SPENT_KEPT {
            spent.append(boxes);
            // Relaxed: a hint; `take_spent` reads the boxes under the lock.
            self.spent_waiting
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Frees, on this thread, the emptied boxes workers handed back
    /// (`keep_spent`); a look and nothing more when there are none.
    #[inline]
    pub(crate) fn take_spent(&self) {
        // Relaxed: a hint; a box missed now is freed at a later look. A
        // load first: the swap's locked step only when there are some.
        if self
            .spent_waiting
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.free_spent();
        }
    }

    /// [`take_spent`](Self::take_spent) when boxes may be waiting; out of
    /// line, so that the look inlined into every execute sets up no frame
    /// for the lock and the frees (about 10 instructions per executed
    /// child, `docs/performance.md`).
    #[inline(never)]
    fn free_spent(&self) {
        if self
            .spent_waiting
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            let boxes = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|e| e.into_inner()));
            drop(boxes);
        }
    }

    /// Ends the pending life of this handle's requests taken out of the
    /// queue unrun, to be handed back to the user. Each is counted in its
    /// batch (as cancelled: it never started) before it stops being
    /// pending, as a handled result is (see `receive`).
    pub(crate) fn hand_back(&self, jobs: Vec<Job>) -> HandedBack {
        let mut tally = Tally::default();
        let mut finished = Finished::default();
        let requests = jobs
            .into_iter()
            .map(|job| {
                if self.batches.may_hold(&tally) {
                    // Counted cancelled, and out of its batch: put again
                    // (the global pool stays open), it is a request of
                    // its own.
                    let ended = self.batches.handed_back(job.id(), &mut tally);
                    finished.append(ended);
                }
                job.unregister();
                job.into_request()
            })
            .collect();
        finished.extend(self.batches.flush(&mut tally));
        HandedBack { requests, finished }
    }

    /// Sends one wake token per waiter. Every counted waiter is blocked or
    /// about to look at the result queue: a wait that runs callbacks is not
    /// counted meanwhile, and re-checks everything when it is counted again
    /// (a token sent for it could have gone round for ever between blocked
    /// puts that handle results: `WaiterGuard::off_duty`).
    /// The nested waiters, never counted, are nudged instead.
    pub(crate) fn wake_waiters(&self) {
        let waiters = self.counts.waiters.load(Ordering::SeqCst);
        for _ in 0..waiters {
            // Full: the waiters have messages to wake them anyway.
            // Disconnected: the handle is gone, so nobody waits.
            let _ = self.results.try_send(Msg::Wake);
        }
        self.nudge_nested();
    }

    /// Nudges the nested waiters, if there are any (`Inbox::nested`):
    /// called after each change they must see (`pending` fell, a message
    /// was sent, no thread is left).
    #[inline]
    fn nudge_nested(&self) {
        // SeqCst, after the caller's SeqCst write of `pending` or the
        // thread count: the pair with a nested waiter, which raises
        // `nested`, then reads those. After a send, the queue's lock
        // orders it with the waiter's look at the queue instead.
        if self.nested.load(Ordering::SeqCst) > 0 {
            self.nudge_all_nested();
        }
    }

    #[cold]
    fn nudge_all_nested(&self) {
        for nudger in self.nudgers().iter() {
            nudger.nudge();
        }
    }

    fn nudgers(&self) -> MutexGuard<'_, Vec<Arc<Nudger>>> {
        // Only `push`, `retain` and nudges, which cannot panic, run under
        // this lock, so poisoning is ignored.
        self.nudgers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pending(&self) -> usize {
        self.counts.pending.load(Ordering::SeqCst)
    }

    /// Counts a waiter as nested (see `Inbox::nested`), with `below`
    /// results held below it on its thread (`Inbox::held_nested`), until
    /// the guard drops; it blocks on the returned nudge from now on, and
    /// reads `pending`, `held_nested` and the thread count, and looks at
    /// the result queue, again after this.
    pub(crate) fn nested_waiter(&self, below: usize) -> (NestedGuard<'_>, Nudged) {
        let (nudger, nudged) = nudge::pair();
        let nudger = Arc::new(nudger);
        let mark = held::Mark::new(self.serial, below);
        // Registered before counted: whoever sees the count finds it.
        self.nudgers().push(Arc::clone(&nudger));
        self.nested.fetch_add(1, Ordering::SeqCst);
        if mark.added > 0 {
            // SeqCst, then `nested` read (`nudge_nested`): the pair with
            // another nested waiter, which raised `nested`, then reads
            // this; either it sees what this adds, or is nudged to.
            self.held_nested.fetch_add(mark.added, Ordering::SeqCst);
            seq_cst_pair();
            self.nudge_nested();
        }
        seq_cst_pair();
        let guard = NestedGuard {
            inbox: self,
            nudger,
            mark,
        };
        (guard, nudged)
    }

    /// The results held below the nested waits open on this handle, on
    /// every thread (`Inbox::held_nested`).
    pub(crate) fn held_nested(&self) -> usize {
        self.held_nested.load(Ordering::SeqCst)
    }

    /// Registers the caller as a blocked waiter until the guard drops.
    pub(crate) fn waiter(&self) -> WaiterGuard<'_> {
        self.counts.waiters.fetch_add(1, Ordering::SeqCst);
        seq_cst_pair();
        WaiterGuard {
            inbox: self,
            counted: Cell::new(true),
        }
    }

    /// For a worker: sends a finished request back to the handle. If the
    /// handle's bounded result queue is full, first calls `stuck` to wake
    /// whoever may be the thread that must make room (blocked putters, a
    /// joiner), then blocks: that is the result queue's back-pressure. If
    /// the handle is gone, the request is dropped.
    #[inline]
    pub(crate) fn deliver(&self, msg: Msg, stuck: impl FnOnce()) {
        self.send_from_worker(msg, stuck);
    }

    /// `deliver`, saying whether the handle was still there to take it.
    // Inlined: once per request on the worker, whose loop is the pool's
    // hot path; the full queue's wait stays out of line.
    #[inline]
    pub(crate) fn send_from_worker(&self, msg: Msg, stuck: impl FnOnce()) -> bool {
        match self.results.try_send(msg) {
            Ok(()) => {
                self.nudge_nested();
                true
            }
            Err(TrySendError::Full(msg)) => self.send_when_full(msg, stuck),
            Err(TrySendError::Disconnected(msg)) => {
                self.discard(msg);
                false
            }
        }
    }

    #[cold]
    fn send_when_full(&self, msg: Msg, stuck: impl FnOnce()) -> bool {
        // SeqCst, then the locks `stuck` and the lookouts take: a putter
        // or joiner checks this count under that lock before it sleeps, a
        // lookout after it registered under it (design.md).
        self.stuck_senders.fetch_add(1, Ordering::SeqCst);
        // SeqCst: the read of the pair with `close_results` (its store,
        // then its read of `stuck_senders`): either it waits for this send,
        // receiving until it is done, or this sees the results going.
        if self.results_closing.load(Ordering::SeqCst) {
            self.stuck_senders.fetch_sub(1, Ordering::SeqCst);
            self.discard(msg);
            return false;
        }
        if let Some(lookouts) = &self.lookouts {
            lookouts.nudge_all();
        }
        stuck();
        let sent = self.results.send(msg);
        self.stuck_senders.fetch_sub(1, Ordering::SeqCst);
        match sent {
            Ok(()) => {
                self.nudge_nested();
                true
            }
            Err(channel::SendError(msg)) => {
                self.discard(msg);
                false
            }
        }
    }

    /// For any thread that is not a worker (a sweep): sends an outcome back
    /// without ever blocking. When the result queue is full, the outcome
    /// goes to the overflow, and a wake token follows it so that a waiter
    /// that already emptied the queue looks there (see `receive`).
    pub(crate) fn hand_over(&self, msg: Msg) {
        match self.results.try_send(msg) {
            Ok(()) => self.nudge_nested(),
            Err(TrySendError::Disconnected(msg)) => self.discard(msg),
            Err(TrySendError::Full(msg)) => {
                self.keep(std::iter::once(msg));
                // Full: a message is in the queue, so the receiver will come
                // back after taking it, and look at the overflow then.
                let _ = self.results.try_send(Msg::Wake);
                self.nudge_nested();
            }
        }
    }

    /// Puts messages in the overflow (see `hand_over`, `receive`).
    pub(crate) fn keep(&self, msgs: impl IntoIterator<Item = Msg>) {
        let mut overflow = self.overflow();
        overflow.extend(msgs);
        if !overflow.is_empty() {
            // Under the lock; SeqCst: read by the receiver after it emptied
            // the result queue, whose lock orders it after this store when
            // the wake token that follows found the queue full.
            self.overflowed.store(1, Ordering::SeqCst);
        }
    }

    /// Whether the overflow may hold messages.
    pub(crate) fn may_have_overflow(&self) -> bool {
        // SeqCst: see `keep`.
        self.overflowed.load(Ordering::SeqCst) != 0
    }

    /// Takes what waits in the overflow, if anything may.
    pub(crate) fn take_overflow(&self) -> Option<Msg> {
        if !self.may_have_overflow() {
            return None;
        }
        let mut overflow = self.overflow();
        let msg = overflow.pop_front();
        if overflow.is_empty() {
            self.overflowed.store(0, Ordering::SeqCst);
        }
        msg
    }

    fn overflow(&self) -> MutexGuard<'_, VecDeque<Msg>> {
        // Only `extend` and `pop_front` run under this lock, on messages
        // that are moved, never dropped, so poisoning is ignored.
        self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lookouts of a handle with a bounded result queue (`None`:
    /// unbounded, where no worker ever gets stuck).
    pub(crate) fn lookouts(&self) -> Option<&Arc<Lookouts>> {
        self.lookouts.as_ref()
    }

    /// The last handle of this results domain is going, its result queue
    /// with it: once this returns, no worker is blocked sending to that
    /// queue or will be (they discard), so the queue's receiver goes with
    /// no sender blocked in it. `flume` 0.12 can panic there: dropping the
    /// receiver marks the channel disconnected before it takes its lock,
    /// and a blocked sender that sees the mark takes its message back while
    /// the receiver's drop still expects it in the sender's slot (seen in
    /// `tests/shutdown_races.rs`, dropping every handle with a result queue
    /// of 1: the process aborted). Receives (and drops) what the senders
    /// that came before the mark send meanwhile.
    pub(crate) fn close_results(&self, receiver: &channel::Receiver<Msg>) {
        // SeqCst: the write of the pair with `send_when_full`.
        self.results_closing.store(true, Ordering::SeqCst);
        loop {
            // Dropped here as the receiver's drop would have: each outcome's
            // user values are contained (`Envelope`'s `Drop`).
            while receiver.try_recv().is_ok() {}
            if self.stuck_senders.load(Ordering::SeqCst) == 0 {
                break;
            }
            crate::sync::yield_now();
        }
    }

    pub(crate) fn has_stuck_senders(&self) -> bool {
        self.stuck_senders.load(Ordering::SeqCst) > 0
    }

    fn discard(&self, msg: Msg) {
        if let Msg::Done(task) = msg {
            log::trace!(
                "callpool: outcome of request {} discarded: handle {} was dropped",
                task.id(),
                self.serial
            );
        }
    }

    /// Passes on a wake-up that a thread that is not waiting took off the
    /// queue, if a waiter may need it (see `wake_waiters`).
    pub(crate) fn forward_wake(&self) {
        if self.counts.waiters.load(Ordering::SeqCst) > 0 {
            let _ = self.results.try_send(Msg::Wake);
        }
    }

    /// Takes a user-chosen id for a request put here; whether it was
    /// free. Out of line: `register`, inlined into every put, locks
    /// nothing for an automatic id.
    #[inline(never)]
    fn take_user_id(&self, id: RequestId) -> bool {
        self.user_ids().insert(id.value())
    }

    /// Frees a user-chosen id as its request ends (see `take_user_id`).
    #[inline(never)]
    fn free_user_id(&self, id: RequestId) {
        self.user_ids().remove(&id.value());
    }

    fn user_ids(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        // A panic while holding this lock can only come from a failed
        // allocation in the set; the set itself stays valid, so poisoning is
        // ignored.
        self.user_ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps a thread counted in `Inbox::waiters` while it may block; on the
/// way out it passes a wake-up on to the other waiters, in case it took
/// one meant for them.
pub(crate) struct WaiterGuard<'a> {
    inbox: &'a Inbox,
    /// Whether the waiter is counted now: not from the moment it handles
    /// results until it is about to block again (`off_duty`, `on_duty`).
    counted: Cell<bool>,
}

impl WaiterGuard<'_> {
    /// Stops counting the waiter, if it is counted: it is about to handle
    /// results, and their callbacks may block anywhere (in a put on this
    /// handle, on another thread's progress), where a wake token sent for
    /// it would never be taken, or be taken by a blocked put and passed
    /// round for ever ahead of a stuck worker's result. It stays uncounted
    /// while it goes on handling and looking at the queue (no locked
    /// instruction per run of results), and is counted again only before
    /// it blocks (`on_duty`).
    pub(crate) fn off_duty(&self) {
        if self.counted.replace(false) {
            // SeqCst with the rest of `waiters`' pairs; being seen late
            // only costs one wasted token.
            self.inbox.counts.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Counts the waiter again if it was not; returns whether it had to.
    /// If so, the waiter looks at everything again (`pending` first)
    /// before it blocks: a result handled elsewhere while it was not
    /// counted sent it no token.
    pub(crate) fn on_duty(&self) -> bool {
        if self.counted.get() {
            return false;
        }
        // SeqCst, then `pending` read by the waiter: the pair in `unregister`.
        self.inbox.counts.waiters.fetch_add(1, Ordering::SeqCst);
        seq_cst_pair();
        self.counted.set(true);
        true
    }
}

/// Keeps a waiter counted in `Inbox::nested`, its nudger registered and
/// what is held below it counted in `Inbox::held_nested`, while it waits.
pub(crate) struct NestedGuard<'a> {
    inbox: &'a Inbox,
    nudger: Arc<Nudger>,
    mark: held::Mark,
}

impl Drop for NestedGuard<'_> {
    fn drop(&mut self) {
        // Its thread handles what it held from now on: each of those
        // falls of `pending` nudges the other nested waiters.
        self.inbox
            .held_nested
            .fetch_sub(self.mark.added, Ordering::SeqCst);
        self.inbox.nested.fetch_sub(1, Ordering::SeqCst);
        self.inbox
            .nudgers()
            .retain(|nudger| !Arc::ptr_eq(nudger, &self.nudger));
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        if self.counted.get() {
            self.inbox.counts.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        self.inbox.wake_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::Job;

    /// A queued job stays 24 bytes with the ticket's kind beside the boxed
    /// one: 31 of them with their state words make a queue block of 1,000
    /// bytes, inside the allocator's per-thread cache (a 32-byte job made
    /// the callback path 7-10% slower: `docs/performance.md`).
    #[test]
    fn a_job_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Job>(), 24);
    }
}
