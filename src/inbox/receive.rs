//! The receiving half of a handle: handling results on the calling thread
//! (`poll`) and blocking until there are none left to wait for (`wait`).
//! The wait protocol is in `docs/design.md`, "Waiting".

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use once_cell::sync::OnceCell;

use crate::error::WaitError;
use crate::inbox::batches::{Batches, Finished, Tally};
use crate::inbox::held::{self, OpenRun};
use crate::inbox::nudge::Nudged;
use crate::inbox::{Inbox, Msg, WaiterGuard};
use crate::lookout::Home;
use crate::patience::{Blocking, Patience};
use crate::request::task::{Envelope, Task};
use crate::request::{timing, RequestId};
use crate::sync::channel::{Receiver, RecvTimeoutError};
use crate::unwind::{self, FirstPanic};

/// What the wait protocol needs to know about the pool's threads.
pub(crate) trait Threads {
    /// Whether the calling thread is one of the pool's workers (where
    /// blocking on results could deadlock the pool).
    fn on_worker_thread(&self) -> bool;
    /// Threads still running; once 0, no result can arrive but those
    /// already sent (or being handled by another thread of this handle).
    fn running(&self) -> usize;
    /// With no thread left: whether the `pending` requests of `inbox` are
    /// all stuck in the request queue, with no one to run or cancel them.
    fn stranded(&self, inbox: &Arc<Inbox>, pending: usize) -> bool;
}

/// When a blocking receive may return.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Until {
    /// After it handled at least one result (`poll_timeout`).
    AnyHandled,
    /// When nothing is pending (`wait`).
    NothingPending,
}

/// A handle's result queue, receiving side, and its inbox.
pub(crate) struct Results {
    // Field order is drop order: the receiver goes first, so that nothing
    // can block sending to this handle's (possibly full) result queue once
    // the handle is being dropped.
    receiver: Receiver<Msg>,
    inbox: Arc<Inbox>,
    /// How long a waiter looks at the result queue before it blocks.
    patience: Patience,
    /// The handle as its lookouts see it, made once, for the tickets put
    /// through it when its result queue is bounded (`crate::lookout`).
    home: OnceCell<Arc<dyn Home>>,
}

impl Drop for Results {
    /// The last handle of a results domain is going: its pending requests'
    /// outcomes will be discarded. Said once, with their number.
    fn drop(&mut self) {
        let pending = self.inbox.pending();
        if pending > 0 {
            log::warn!(
                "callpool: handle dropped with {pending} requests pending; their outcomes \
                 are discarded, and those not started never run if the pool's last handle \
                 goes (wait before dropping it)"
            );
        }
        if self.inbox.lookouts().is_some() {
            // A bounded result queue, where workers may block: none must be
            // blocked in it as the receiver goes (`Inbox::close_results`).
            self.inbox.close_results(&self.receiver);
        }
    }
}

impl Results {
    /// A new handle's inbox and results, with a result queue of at most
    /// `capacity` (`None`: unbounded).
    pub(crate) fn new(capacity: Option<usize>) -> Results {
        let (inbox, receiver) = Inbox::new(capacity);
        Results {
            receiver,
            inbox,
            patience: Patience::new(),
            home: OnceCell::new(),
        }
    }

    pub(crate) fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// The handle as its lookouts see it; `make` makes it the first time.
    pub(crate) fn home(&self, make: impl FnOnce() -> Arc<dyn Home>) -> &Arc<dyn Home> {
        self.home.get_or_init(make)
    }

    /// Blocks until `until` holds, or `deadline`; handles results on this
    /// thread meanwhile and returns how many.
    pub(crate) fn block(
        &self,
        threads: &impl Threads,
        deadline: Option<Instant>,
        until: Until,
    ) -> Result<usize, WaitError> {
        if threads.on_worker_thread() {
            return Err(WaitError::OnWorkerThread);
        }
        // Counted as a waiter before reading `pending`: see `Inbox::unregister`.
        let waiter = self.inbox.waiter();
        // Once results are held below this wait: counted as nested, woken
        // by a nudge of its own at each fall of `pending` (to compare
        // again) and at each message sent, and no longer counted as a
        // waiter (`Inbox::nested`).
        let mut nested = None;
        let mut handled = 0;
        // What this thread has counted in a batch, kept for the whole wait
        // (and flushed at the end of each run of results: `handle_run`).
        let mut tally = Tally::default();
        // Set when the waiter was counted again after a spin that found
        // nothing: its next look is a single one.
        let mut look_once = false;
        loop {
            handled += self.handle_run(threads, Some(&waiter), &mut tally);
            let pending = self.inbox.pending();
            if may_return(until, handled, pending) {
                return Ok(handled);
            }
            // Called from a callback of this handle's: what the frame below
            // holds can only be handled once the callback returns, so a
            // wait for it would be for ever. (Its count may include items
            // and wake-ups: then this returns a little early, never late.)
            let below = held::below(self.inbox.serial);
            if all_held(pending, below) {
                return Err(WaitError::HeldByCaller { pending });
            }
            if below > 0 && nested.is_none() {
                nested = Some(self.inbox.nested_waiter(below));
                // No token is sent for it from now on. One it takes, it
                // keeps (as any waiter does), and passes one on as it
                // leaves: a token was meant for a waiter that cannot
                // finish before this nested wait does, since results
                // held below it are pending.
                waiter.off_duty();
                // Everything read again after counting in: a result
                // handled on another thread in between either shows then
                // or nudges us.
                continue;
            }
            // Once nested, what every nested wait on the handle holds
            // below it (this one's included): those results are handled
            // only once one of those waits returns.
            let held = || match nested {
                Some(_) => self.inbox.held_nested(),
                None => below,
            };
            let held_now = held();
            if all_held(pending, held_now) {
                return Err(WaitError::HeldByCaller { pending });
            }
            if threads.running() == 0 {
                if let Some(ended) = self.with_no_thread_left(
                    threads,
                    &waiter,
                    &mut tally,
                    until,
                    &mut handled,
                    held,
                ) {
                    return ended;
                }
            }
            // Looks for a while first (only a matter of speed: see
            // `patience`), then blocks with no timeout but the caller's: a
            // result, or a wake-up (the last request was handled elsewhere,
            // no thread is left, or an outcome went to the overflow).
            // A nested waiter may be nudged again and again by other
            // threads' progress, so that no look comes up empty and the
            // spin never reaches its deadline: checked here too.
            if nested.is_some() && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(WaitError::Timeout { pending });
            }
            let nudged = nested.as_ref().map(|(_, nudged)| nudged);
            let looked = match nudged {
                None => self.look(look_once, deadline, || self.receiver.try_recv().ok()),
                // A nudge is a wake-up of this waiter's own: the loop
                // re-checks. (A look of its own, so that the common
                // waiter's spin does not pay for the look at the nudge.)
                Some(nudged) => self.look(look_once, deadline, || {
                    let nudge = || nudged.try_take().then_some(Msg::Wake);
                    self.receiver.try_recv().ok().or_else(nudge)
                }),
            };
            look_once = false;
            let msg = match looked {
                Ok(msg) => Some(msg),
                Err(blocking) => {
                    // Not counted since it handled results: counted again
                    // before it blocks, then everything looked at again (a
                    // result handled elsewhere meanwhile sent it no token),
                    // with one look at the queue: it has spun already.
                    // (A nested waiter is never counted again.)
                    if nudged.is_none() && waiter.on_duty() {
                        look_once = true;
                        continue;
                    }
                    self.block_once(nudged, deadline, blocking)?
                }
            };
            match msg {
                // A wake-up a waiter takes, counted or not, is its own: the
                // loop re-checks everything, and if it was meant for
                // another waiter, this one passes one on as it leaves
                // (`WaiterGuard`). (Passed on at once while not counted, it
                // would come straight back to this loop's next look, for as
                // long as the other waiter did not look: a spin.)
                Some(Msg::Wake) | None => {}
                Some(msg) => {
                    waiter.off_duty();
                    // A panic here leaves nothing taken but this message
                    // (and flushes the tally); the waiter guard passes a
                    // wake-up on as it unwinds. The loop's next
                    // `handle_run` flushes the tally and, if that was the
                    // last result, finds the queue empty (a look, no
                    // drain) and returns.
                    let rest = std::iter::empty();
                    handled += self.handle_guarded(threads, msg, true, rest, None, &mut tally);
                }
            }
        }
    }

    /// `block`'s look once no thread is left: whatever was in flight is
    /// in the result queue now, or in the hands of another thread handling
    /// this handle's results (which wakes us when it has: see `handle`).
    /// Handles it, adding to `handled`; then whether the wait ends
    /// (`Some`), with `held` what the callers below hold.
    fn with_no_thread_left(
        &self,
        threads: &impl Threads,
        waiter: &WaiterGuard<'_>,
        tally: &mut Tally,
        until: Until,
        handled: &mut usize,
        held: impl Fn() -> usize,
    ) -> Option<Result<usize, WaitError>> {
        *handled += self.handle_run(threads, Some(waiter), tally);
        // One read decides both: another waiter may handle the last result
        // between two reads, and 0 pending is never stranded.
        let pending = self.inbox.pending();
        if may_return(until, *handled, pending) {
            return Some(Ok(*handled));
        }
        // What the frames below hold is handled once the callback returns:
        // only the rest must be stranded (it was never queued, so a count
        // of all of them never matched).
        let held_now = held();
        if all_held(pending, held_now) {
            return Some(Err(WaitError::HeldByCaller { pending }));
        }
        if threads.stranded(&self.inbox, pending - held_now) {
            return Some(Err(WaitError::NoWorkersAvailable { pending }));
        }
        None
    }

    /// A waiter's block, after its look came up empty: until a message
    /// (`None` when every sender is gone), a nudge of a nested waiter's
    /// own (`nudged`, read as a wake-up), or `deadline`.
    fn block_once(
        &self,
        nudged: Option<&Nudged>,
        deadline: Option<Instant>,
        blocking: Blocking,
    ) -> Result<Option<Msg>, WaitError> {
        let received = match (nudged, deadline) {
            (Some(nudged), deadline) => nudged.wait(deadline).map(|()| Some(Msg::Wake)),
            (None, None) => Ok(self.receiver.recv().ok()),
            (None, Some(deadline)) => self.receiver.recv_deadline(deadline).map(Some),
        };
        let msg = match received {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => {
                return Err(WaitError::Timeout {
                    pending: self.inbox.pending(),
                })
            }
            Err(RecvTimeoutError::Disconnected) => None,
        };
        self.patience.woke(blocking);
        Ok(msg)
    }

    /// Looks at the queue with `take` once (`look_once`) or for a while
    /// (see `patience`).
    #[inline(always)]
    fn look(
        &self,
        look_once: bool,
        deadline: Option<Instant>,
        take: impl FnMut() -> Option<Msg>,
    ) -> Result<Msg, Blocking> {
        if look_once {
            self.patience.look(take)
        } else {
            self.patience.spin(deadline, take)
        }
    }

    /// Handles the messages ready now, without blocking: the overflow,
    /// everything in the result queue (taken with one lock, after a look),
    /// then the overflow again. The last look is needed: a sweep puts an
    /// outcome in the overflow and then a wake token in the queue, or finds
    /// the queue full; either way a receiver that empties the queue after
    /// it looks at the overflow after it too.
    pub(crate) fn handle_ready(&self, threads: &impl Threads) -> usize {
        self.handle_run(threads, None, &mut Tally::default())
    }

    /// `handle_ready` for a put blocked on a full request queue that holds
    /// `holding` requests of this handle, counted pending but not yet
    /// queued: a `wait` in one of the callbacks run here must not wait
    /// for them (they are queued once it returns), as for held results.
    pub(crate) fn handle_ready_holding(&self, threads: &impl Threads, holding: usize) -> usize {
        let _held = (holding > 0).then(|| OpenRun::open(self.inbox.serial, holding));
        self.handle_run(threads, None, &mut Tally::default())
    }

    /// `handle_ready`, counting the batch members among the results in
    /// `tally`, which it then flushes to their batch: one lock for the run,
    /// not one per result (`Batches::ended`). A `waiter` stops being
    /// counted as it handles them (`WaiterGuard::off_duty`), and keeps the
    /// wake-ups among them; any other caller passes them on.
    fn handle_run(
        &self,
        threads: &impl Threads,
        waiter: Option<&WaiterGuard<'_>>,
        tally: &mut Tally,
    ) -> usize {
        let by_waiter = waiter.is_some();
        // One look at the queue per run: each takes the queue's lock, which
        // the workers take to send.
        let queued = !self.receiver.is_empty();
        if !queued && tally.is_empty() && !self.inbox.may_have_overflow() {
            // Nothing to do (the common look of a waiter about to block).
            // The overflow's second look below is not needed: an outcome
            // goes there only when the queue is full, so a message is in
            // the queue then, and the next look finds it.
            return 0;
        }
        if let Some(waiter) = waiter {
            waiter.off_duty();
        }
        // In a timed request's callback, the callbacks run here read their
        // own requests' timing, not that one's.
        timing::hidden(|| self.handle_messages(threads, by_waiter, queued, tally))
    }

    /// The rest of `handle_run`: the overflow, then what the queue holds
    /// (if `queued`), then the overflow again, then the batch-done
    /// callbacks these completed.
    fn handle_messages(
        &self,
        threads: &impl Threads,
        by_waiter: bool,
        queued: bool,
        tally: &mut Tally,
    ) -> usize {
        // The overflow first: after a callback panicked, it holds the
        // rest of that run, older than anything queued since, and a stream's
        // items and its end must be handled in the order they were sent.
        let mut handled = self.handle_overflow(threads, by_waiter, tally);
        // Drained only when something is there: a drain takes the queue's
        // buffer with it, and the next result sent would allocate another.
        // (What came since the look is left for the next run.)
        if queued {
            let mut batch = self.receiver.drain();
            // A wait in one of their callbacks must know what this frame
            // still holds (see `held`); a run of one holds nothing more.
            let run = (batch.len() > 1).then(|| OpenRun::open(self.inbox.serial, batch.len()));
            while let Some(msg) = batch.next() {
                if let Some(run) = &run {
                    run.left(batch.len());
                }
                let held = run.as_ref();
                handled += self.handle_guarded(threads, msg, by_waiter, &mut batch, held, tally);
            }
        }
        handled += self.handle_overflow(threads, by_waiter, tally);
        // Every result of the run is handled: a batch-done callback that
        // panics here loses nothing.
        self.flush(tally);
        handled
    }

    /// Handles what the overflow holds, oldest first; how many results.
    fn handle_overflow(&self, threads: &impl Threads, by_waiter: bool, tally: &mut Tally) -> usize {
        let mut handled = 0;
        while let Some(msg) = self.inbox.take_overflow() {
            handled +=
                self.handle_guarded(threads, msg, by_waiter, std::iter::empty(), None, tally);
        }
        handled
    }

    /// Handles one message; if its callback panics, keeps `rest` (taken off
    /// the queue with it, and counted held in `run`) in the overflow before
    /// the panic goes on, so that no result is lost, and wakes waiters to
    /// look there.
    fn handle_guarded(
        &self,
        threads: &impl Threads,
        msg: Msg,
        by_waiter: bool,
        rest: impl Iterator<Item = Msg>,
        run: Option<&OpenRun>,
        tally: &mut Tally,
    ) -> usize {
        match panic::catch_unwind(AssertUnwindSafe(|| {
            self.handle(threads, msg, by_waiter, tally)
        })) {
            Ok(n) => n,
            Err(payload) => {
                self.inbox.keep(rest);
                // No longer held here: a wait in a batch-done callback that
                // the flush below runs must not count them.
                if let Some(run) = run {
                    run.left(0);
                }
                self.inbox.wake_waiters();
                // What was counted goes to its batch before the panic goes
                // on; if that completes it, its callback runs first, and a
                // panic of that callback is the one logged and dropped.
                unwind::resume_after(payload, "a batch-done callback", || self.flush(tally))
            }
        }
    }

    /// Handles one message and returns how many results it was (0 or 1).
    /// An outcome first ends its pending life (so a panicking or re-entrant
    /// callback finds the pool consistent), then runs its callback. A wake-up
    /// taken by a thread that is not waiting is passed on to the waiters; a
    /// waiter keeps it (see `block`).
    fn handle(
        &self,
        threads: &impl Threads,
        msg: Msg,
        by_waiter: bool,
        tally: &mut Tally,
    ) -> usize {
        match msg {
            Msg::Wake => {
                if !by_waiter {
                    self.inbox.forward_wake();
                }
                0
            }
            // An item is a result handled (so a `poll_timeout` returns for
            // it), though it ends no request.
            Msg::Item(item) => {
                // An item ends no request: what this thread counted goes
                // to its batch first, so that a `poll` or `wait` nested in
                // the item's callback finds the batch's count whole (see
                // `Batches::ended_in`).
                if !tally.is_empty() {
                    self.flush(tally);
                }
                item.call(());
                1
            }
            Msg::Done(mut task) => {
                let id = task.id();
                // Counted in its batch, if it has one, while it is still
                // pending: until it is not, no other request of this
                // handle can have its id, so a user-chosen id used again
                // later is never counted for it. A handle without batches
                // pays one load here, a member in the middle of its
                // batch's run a bit test and a count.
                let batches = &self.inbox.batches;
                let finished = if !batches.may_hold(tally)
                    || batches.count_in_run(id, || task.ended(), tally)
                {
                    None
                } else {
                    Some(count_member(batches, &task, id, tally))
                };
                self.inbox.unregister(id);
                // With no thread left, a waiter that found this result gone
                // from the queue waits for us to finish with it: tell it.
                if threads.running() == 0 {
                    self.inbox.wake_waiters();
                }
                log::trace!("callpool: handling result of request {id}");
                match finished {
                    Some(finished) if !finished.is_empty() => report_last(&mut task, id, finished),
                    _ => task.report(id),
                }
                1
            }
        }
    }

    /// Adds what `tally` counted to its batch; runs the batch-done callback
    /// if that completed the batch.
    fn flush(&self, tally: &mut Tally) {
        if let Some((on_done, progress)) = self.inbox.batches.flush(tally) {
            on_done.call(progress);
        }
    }
}

/// Counts the end of request `id` of a handle that has batches, off the
/// common path (see `Batches::ended`): the batch-done callbacks to run
/// after its own.
#[inline(never)]
fn count_member(
    batches: &Batches,
    task: &Envelope<dyn Task>,
    id: RequestId,
    tally: &mut Tally,
) -> Finished {
    batches.ended(id, || task.ended(), tally)
}

/// Reports the outcome of the last member of a batch: its batch-done
/// callback runs after the request's own, even if that one panics.
#[inline(never)]
fn report_last(task: &mut Envelope<dyn Task>, id: RequestId, finished: Finished) {
    let mut panicked = FirstPanic::default();
    panicked.catch("a result callback", || task.report(id));
    panicked.catch("a batch-done callback", || finished.run());
    panicked.resume();
}

/// Whether all that is `pending` is held by the frames of callbacks below
/// the wait (`held` of them, if any): results that can be handled only once
/// those callbacks return, so the wait returns `HeldByCaller`.
fn all_held(pending: usize, held: usize) -> bool {
    held > 0 && pending <= held
}

/// Whether a blocking receive may return, given one reading of `pending`.
fn may_return(until: Until, handled: usize, pending: usize) -> bool {
    pending == 0 || (until == Until::AnyHandled && handled > 0)
}
