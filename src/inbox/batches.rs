//! The progress of a handle's batches (`ThreadPool::put_batch`): which
//! requests belong to which batch, how many of them ended and how, and the
//! batch-done callback, run once by the thread that handles the last one.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::request::task::Ended;
use crate::request::RequestId;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::unwind::{Callback, FirstPanic};

/// How far a batch has got: of its `total` requests, how many ended with a
/// result (`done`), with an error or a panic (`failed`), or without ever
/// starting (`cancelled`: cancelled, expired, swept by a closing pool, or
/// handed back by a shutdown).
/// The rest are queued or running.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Progress {
    /// Requests in the batch.
    pub total: usize,
    /// Ended with a result (its callback has run or is running).
    pub done: usize,
    /// Ended with an error or a panic.
    pub failed: usize,
    /// Ended without starting (handed back by a shutdown, too).
    pub cancelled: usize,
}

impl Progress {
    /// Requests that have ended, however.
    ///
    /// # Examples
    ///
    /// A batch's progress is counted as the handle handles its results, so
    /// nothing has ended before the first `poll` or `wait`:
    ///
    /// ```
    /// use callpool::{make_fallible_requests, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2);
    /// let batch = pool.put_batch(make_fallible_requests(
    ///     |n: u32| if n < 8 { Ok(n) } else { Err(n) },
    ///     0..10,
    ///     |_, _| {},
    ///     |_, _| {},
    /// ))?;
    /// let before = batch.progress();
    /// assert_eq!((before.total, before.ended()), (10, 0));
    /// assert!(!before.is_complete());
    /// pool.wait()?;
    /// let after = batch.progress();
    /// assert_eq!((after.done, after.failed, after.cancelled, after.ended()), (8, 2, 0, 10));
    /// assert!(after.is_complete());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ended(&self) -> usize {
        self.done + self.failed + self.cancelled
    }

    /// Whether every request of the batch has ended.
    ///
    /// See [`ended`](Self::ended) for an example.
    pub fn is_complete(&self) -> bool {
        self.ended() >= self.total
    }
}

/// A batch-done callback; dropped uncalled (its handle gone, or swept by a
/// shutdown that unwinds), what it captures is dropped contained.
pub(crate) type OnDone = Callback<Progress>;

/// Bits in one word of a member bitmap (`Members::bits`).
const WORD_BITS: u64 = u64::BITS as u64;

/// Automatic ids by the block of this many they fall in: a result's batch
/// is looked for among those with a member in its id's block. One word's
/// worth, so that each word of a bitmap spans at most two blocks
/// (`Members::blocks` relies on it).
const BLOCK: u64 = WORD_BITS;

/// Which requests belong to a batch.
///
/// Automatic ids come from one process-wide counter, so the ids of requests
/// made together lie close: they are kept as a bitmap over their range,
/// where a membership test is a shift and a mask (a hash set would hash
/// every id on the put, and again for every outcome). Automatic ones too
/// far apart for a bitmap of at most about 8 bytes per member go in a set.
/// Both stay fixed: an automatic id is never made again.
///
/// A user-chosen id can be used again once its request has ended, so the
/// user-chosen members are those not yet ended: each leaves the set as its
/// end is counted ([`claim`](Self::claim)), before it stops being pending
/// on the handle, which is what keeps a later request with its id out.
///
/// An automatic id comes back in one case: a member handed back unrun by a
/// shutdown (counted cancelled) and put again, as a request of its own,
/// with its id. On the global pool the handle stays open for that put, so
/// such a member is [`withdrawn`](Self::withdraw): the batch no longer
/// counts it, nor cancels it.
pub(crate) struct Members {
    /// The number of ids.
    len: usize,
    /// The first automatic id that `bits` covers.
    lo: u64,
    /// Bit `i` set: automatic id `lo + i` is a member.
    bits: Vec<u64>,
    /// Every other automatic member.
    far: HashSet<u64>,
    /// The user-chosen members not yet ended.
    user: Mutex<HashSet<u64>>,
    /// Whether there were user-chosen members: the lock is taken only then.
    any_user: bool,
    /// Automatic members handed back by a shutdown: no longer members.
    withdrawn: Mutex<HashSet<u64>>,
    /// Whether any member was withdrawn: the lock is taken only then.
    /// (Relaxed: a member is withdrawn before its request is handed back
    /// to the user, so before any later put of it, and before its outcome.)
    any_withdrawn: AtomicBool,
}

impl Members {
    /// The members with these ids, or `None` if an id is there twice. One
    /// pass: the bitmap starts at the first automatic id and grows as long
    /// as it stays within about a word per member so far; ids below that
    /// first one, or too far above, go in the set.
    pub(crate) fn new<I>(ids: I) -> Option<Members>
    where
        I: IntoIterator<Item = RequestId>,
    {
        let mut members = Members {
            len: 0,
            lo: 0,
            bits: Vec::new(),
            far: HashSet::new(),
            user: Mutex::new(HashSet::new()),
            any_user: false,
            withdrawn: Mutex::new(HashSet::new()),
            any_withdrawn: AtomicBool::new(false),
        };
        for id in ids {
            members.len += 1;
            if !members.insert(id) {
                return None;
            }
        }
        Some(members)
    }

    /// Adds `id`; `false` if it is a member already.
    fn insert(&mut self, id: RequestId) -> bool {
        if id.is_user_chosen() {
            self.any_user = true;
            return self.user_mut().insert(id.value());
        }
        if self.bits.is_empty() {
            self.lo = id.value();
        }
        if let Some(at) = id.value().checked_sub(self.lo) {
            let word = at / WORD_BITS;
            if word <= self.len as u64 {
                let word = word as usize;
                if word >= self.bits.len() {
                    self.bits.resize(word + 1, 0);
                }
                let mask = 1 << (at % WORD_BITS);
                // The bitmap may have grown over an id the set took
                // earlier, when it was too far above: look there too.
                if self.bits[word] & mask != 0 || self.far.contains(&id.value()) {
                    return false;
                }
                self.bits[word] |= mask;
                return true;
            }
        }
        // Never under the bitmap: it covers at most a word per member
        // before this one, and this id is further (or below the first
        // automatic id).
        self.far.insert(id.value())
    }

    /// Where automatic id `id` sits in `bits`, if it is in their range.
    fn bit(&self, id: RequestId) -> Option<(usize, u64)> {
        let at = id.value().checked_sub(self.lo)?;
        let word = usize::try_from(at / WORD_BITS).ok()?;
        (word < self.bits.len()).then_some((word, 1 << (at % WORD_BITS)))
    }

    /// Whether `id` is a member that has not ended (for an automatic id:
    /// a member at all).
    // Inlined into `claim`, which every result of a batch goes through.
    #[inline]
    pub(crate) fn contains(&self, id: RequestId) -> bool {
        if id.is_user_chosen() {
            return self.any_user && self.user().contains(&id.value());
        }
        let member = self
            .bit(id)
            .is_some_and(|(word, mask)| self.bits[word] & mask != 0)
            || (!self.far.is_empty() && self.far.contains(&id.value()));
        member && !(self.any_withdrawn.load(Ordering::Relaxed) && self.is_withdrawn(id))
    }

    /// Whether automatic member `id` was withdrawn (see
    /// [`withdraw`](Self::withdraw)): only after a shutdown handed some
    /// back, so out of the line of every other result.
    #[cold]
    #[inline(never)]
    fn is_withdrawn(&self, id: RequestId) -> bool {
        self.withdrawn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id.value())
    }

    /// Takes automatic member `id`, whose end was just counted as it was
    /// handed back unrun, out of the batch: put again (its id with it), it
    /// is a request of its own, not counted, nor cancelled, a second time.
    /// (A user-chosen member left already, as its end was counted.)
    fn withdraw(&self, id: RequestId) {
        if id.is_user_chosen() || !self.contains(id) {
            return;
        }
        self.withdrawn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.value());
        self.any_withdrawn.store(true, Ordering::Relaxed);
    }

    /// [`contains`](Self::contains), for the end of request `id`, which is
    /// then counted: a user-chosen member leaves the set, so that a later
    /// request with its id is not taken for it.
    fn claim(&self, id: RequestId) -> bool {
        if id.is_user_chosen() {
            return self.any_user && self.user().remove(&id.value());
        }
        self.contains(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The blocks of [`BLOCK`] automatic ids (`id / BLOCK`) where the
    /// bitmap has members, each once, in increasing order: at most two per
    /// word of the bitmap, which need not start at a block's first id.
    fn blocks(&self) -> impl Iterator<Item = u64> + '_ {
        let first = self.lo / BLOCK;
        let offset = self.lo % BLOCK;
        // The bits of a word that fall in its first block.
        let low = u64::MAX >> offset;
        let mut last = None;
        self.bits
            .iter()
            .enumerate()
            .flat_map(move |(word, &bits)| {
                let block = first + word as u64;
                [(block, bits & low), (block + 1, bits & !low)]
            })
            .filter(|&(_, bits)| bits != 0)
            .map(|(block, _)| block)
            .filter(move |&block| last.replace(block) != Some(block))
    }

    /// Whether some members are not in the bitmap (automatic ones far
    /// apart, or user-chosen).
    fn is_scattered(&self) -> bool {
        self.any_user || !self.far.is_empty()
    }

    /// The numbers of the user-chosen ids not yet ended.
    pub(crate) fn user_chosen(&self) -> Vec<u64> {
        if !self.any_user {
            return Vec::new();
        }
        self.user().iter().copied().collect()
    }

    fn user(&self) -> MutexGuard<'_, HashSet<u64>> {
        // Inserts and removals of numbers only: never torn.
        self.user.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn user_mut(&mut self) -> &mut HashSet<u64> {
        self.user.get_mut().unwrap_or_else(|e| e.into_inner())
    }
}

/// One batch: its members and its count.
pub(crate) struct BatchState {
    pub(crate) members: Members,
    count: Mutex<Count>,
}

struct Count {
    progress: Progress,
    on_done: Option<OnDone>,
    /// The batch-done callback has run, or been taken to run.
    finished: bool,
}

impl BatchState {
    pub(crate) fn new(members: Members) -> Arc<BatchState> {
        let total = members.len();
        Arc::new(BatchState {
            members,
            count: Mutex::new(Count {
                progress: Progress {
                    total,
                    ..Progress::default()
                },
                on_done: None,
                finished: false,
            }),
        })
    }

    fn count(&self) -> MutexGuard<'_, Count> {
        // Only counters and a moved box under this lock: never torn.
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn progress(&self) -> Progress {
        self.count().progress
    }

    /// Adds ends a thread has counted (see [`Tally`]): `None` if the
    /// batch had ended already (so they were not its members: a user-chosen
    /// id used again); else whether they completed the batch, and the
    /// batch-done callback if it is to run now.
    fn add(&self, counted: &Progress) -> Option<(bool, Option<(OnDone, Progress)>)> {
        let mut count = self.count();
        if count.progress.is_complete() {
            return None;
        }
        count.progress.done += counted.done;
        count.progress.failed += counted.failed;
        count.progress.cancelled += counted.cancelled;
        let completed = count.progress.is_complete();
        Some((completed, self.take_if_complete(&mut count)))
    }

    /// Members not yet counted as ended.
    fn left(&self) -> usize {
        let count = self.count();
        count.progress.total.saturating_sub(count.progress.ended())
    }

    fn take_if_complete(&self, count: &mut Count) -> Option<(OnDone, Progress)> {
        if count.finished || !count.progress.is_complete() || count.on_done.is_none() {
            return None;
        }
        count.finished = true;
        let on_done = count.on_done.take()?;
        Some((on_done, count.progress))
    }

    /// Sets the batch-done callback; hands it back to run at once if the
    /// batch is complete already. A second one replaces the first if that
    /// has not run; once one has run, later ones are dropped.
    pub(crate) fn on_done(&self, on_done: OnDone) -> Option<(OnDone, Progress)> {
        let mut count = self.count();
        let (ready, unrun) = if count.finished {
            (None, Some(on_done))
        } else {
            let replaced = count.on_done.replace(on_done);
            (self.take_if_complete(&mut count), replaced)
        };
        // A callback dropped unrun is user code (its captures' `Drop`):
        // after the count's lock is released, which that code may need
        // (`Batch::progress`), and contained.
        drop(count);
        crate::unwind::drop_some("a batch-done callback dropped unrun", unrun);
        ready
    }
}

/// A handle's batches that still have members to end.
///
/// A result that is not a member of the batch its thread counts in is
/// looked for among the filed batches that have a member in its id's
/// block of [`BLOCK`] automatic ids (at most `BLOCK` of them, as an id
/// belongs to one batch), not among all of them: a handle with many batches running
/// (batches of one request, say) would otherwise look through every one of
/// them for each result, and again to drop each completed batch.
#[derive(Default)]
pub(crate) struct Batches {
    filed: Mutex<Filed>,
    /// How many batches are filed, so that handling a result of a handle
    /// without batches costs one load.
    active: AtomicUsize,
    /// Filed batches looked at, to find a result's batch or to drop one.
    #[cfg(test)]
    looked: std::sync::atomic::AtomicUsize,
}

/// The filed batches, by where their members are.
#[derive(Default)]
struct Filed {
    /// For each block of [`BLOCK`] automatic ids (`id / BLOCK`), the
    /// batches whose bitmap has a member there.
    by_block: HashMap<u64, Vec<Arc<BatchState>>>,
    /// The batches with members outside their bitmap (automatic ones far
    /// apart, or user-chosen), in the order filed: looked through in turn.
    scattered: Vec<Arc<BatchState>>,
    len: usize,
}

impl Batches {
    fn filed(&self) -> MutexGuard<'_, Filed> {
        // Pushes and removals of `Arc`s only: never torn.
        self.filed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn look(&self) {
        #[cfg(test)]
        self.looked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn add(&self, batch: Arc<BatchState>) {
        let mut filed = self.filed();
        for block in batch.members.blocks() {
            filed
                .by_block
                .entry(block)
                .or_default()
                .push(Arc::clone(&batch));
        }
        if batch.members.is_scattered() {
            filed.scattered.push(batch);
        }
        filed.len += 1;
        // Under the lock; Relaxed: a hint that a result's handler confirms
        // under the lock. A batch is added before its members are queued,
        // so their results come after.
        self.active.store(filed.len, Ordering::Relaxed);
    }

    /// Stops following a batch: it is complete, or none of its members
    /// was queued (the pool refused it whole).
    pub(crate) fn remove(&self, batch: &Arc<BatchState>) {
        let mut filed = self.filed();
        let mut found = false;
        for block in batch.members.blocks() {
            if let Some(there) = filed.by_block.get_mut(&block) {
                found |= self.unfile(there, batch);
                if there.is_empty() {
                    filed.by_block.remove(&block);
                }
            }
        }
        if batch.members.is_scattered() {
            found |= self.unfile(&mut filed.scattered, batch);
        }
        if found {
            filed.len -= 1;
        }
        // Under the lock; Relaxed: see `add`.
        self.active.store(filed.len, Ordering::Relaxed);
    }

    /// Takes `batch` out of one list of filed batches; whether it was there.
    fn unfile(&self, list: &mut Vec<Arc<BatchState>>, batch: &Arc<BatchState>) -> bool {
        let mut found = false;
        list.retain(|b| {
            self.look();
            let it = Arc::ptr_eq(b, batch);
            found |= it;
            !it
        });
        found
    }

    /// The filed batch of which `id` is a member, if any (for a
    /// user-chosen id, whose end is now counted: see [`Members::claim`]).
    fn find(&self, id: RequestId) -> Option<Arc<BatchState>> {
        let filed = self.filed();
        // A user-chosen id is never in a bitmap.
        let near = if id.is_user_chosen() {
            None
        } else {
            filed.by_block.get(&(id.value() / BLOCK))
        };
        near.into_iter()
            .flatten()
            .chain(&filed.scattered)
            .find(|b| {
                self.look();
                b.members.claim(id)
            })
            .map(Arc::clone)
    }

    #[cfg(all(test, not(any(loom, shuttle))))]
    fn filed_len(&self) -> usize {
        let filed = self.filed();
        assert_eq!(
            filed.by_block.is_empty() && filed.scattered.is_empty(),
            filed.len == 0
        );
        filed.len
    }

    /// Whether a result may be a batch's: the tally holds a batch, or the
    /// handle has one. One load when it has none.
    #[inline]
    pub(crate) fn may_hold(&self, tally: &Tally) -> bool {
        // Relaxed: see `add`; the member's outcome came after its batch was
        // added, through the result queue's synchronisation.
        tally.batch.is_some() || self.active.load(Ordering::Relaxed) != 0
    }

    /// Counts the end of request `id` in `tally`, if it is a member of a
    /// batch; returns the batch-done callbacks that are to run after the
    /// request's own (at most two). `how` is asked only of a member.
    ///
    /// A member of the tally's batch is counted there, without a lock; a
    /// member of another batch is found among the filed ones (under their
    /// lock), and the tally's counts go to their batch before it switches.
    /// Asked only when `may_hold`.
    #[inline]
    pub(crate) fn ended(
        &self,
        id: RequestId,
        how: impl FnOnce() -> Ended,
        tally: &mut Tally,
    ) -> Finished {
        self.ended_in(id, how, tally, |_| {})
    }

    /// [`ended`](Self::ended), calling `member` with the batch `id` is
    /// counted in (before the count, which may complete the batch and let
    /// go of it): no reference to it is taken on the way, since every
    /// result of a batch comes through here.
    fn ended_in(
        &self,
        id: RequestId,
        how: impl FnOnce() -> Ended,
        tally: &mut Tally,
        member: impl FnOnce(&BatchState),
    ) -> Finished {
        let mut finished = Finished::default();
        if tally.claims(id) {
            if let Some(batch) = &tally.batch {
                member(batch);
            }
            finished.extend(self.count(tally, how()));
            return finished;
        }
        // Relaxed: see `add`; the member's outcome came after its batch was
        // added, through the result queue's synchronisation.
        if self.active.load(Ordering::Relaxed) == 0 {
            return finished;
        }
        if let Some(previous) = self.switch(id, tally) {
            if let Some(batch) = &tally.batch {
                member(batch);
            }
            finished.extend(previous);
            finished.extend(self.count(tally, how()));
        } else {
            // A member of no batch: what this thread counted goes to its
            // batch before this request's callback runs. A `poll` or
            // `wait` nested in that callback may handle the batch's last
            // members, and must find the batch's count whole; otherwise
            // the batch completes only once the callback returns, and
            // meanwhile it looks short with nothing pending (a loop that
            // polls until it completes would poll for ever).
            finished.extend(self.flush(tally));
        }
        finished
    }

    /// [`ended`](Self::ended) for a request handed back unrun (counted
    /// cancelled), which then leaves its batch (see [`Members::withdraw`]):
    /// put again with its id, it is not counted a second time, nor
    /// cancelled by [`Batch::cancel`](crate::Batch::cancel), even once the
    /// batch is complete.
    pub(crate) fn handed_back(&self, id: RequestId, tally: &mut Tally) -> Finished {
        self.ended_in(
            id,
            || Ended::Unstarted,
            tally,
            |batch| {
                batch.members.withdraw(id);
            },
        )
    }

    /// [`ended`](Self::ended)'s common case, without building a
    /// [`Finished`]: counts the end of `id` if it is a member of the
    /// tally's batch that leaves more of its members to end, and says
    /// whether it did. If not, nothing is counted, and the caller takes
    /// `ended`'s full path.
    #[inline]
    pub(crate) fn count_in_run(
        &self,
        id: RequestId,
        how: impl FnOnce() -> Ended,
        tally: &mut Tally,
    ) -> bool {
        if tally.left <= 1 || !tally.claims(id) {
            return false;
        }
        tally.add(how());
        tally.left -= 1;
        true
    }

    /// For a result that is not a member of the tally's batch: if it is a
    /// member of another, flushes the tally and points it at that batch,
    /// and returns what the flush finished (`Some(None)`: nothing).
    fn switch(&self, id: RequestId, tally: &mut Tally) -> Option<Option<(OnDone, Progress)>> {
        let batch = self.find(id)?;
        let previous = self.flush(tally);
        tally.left = batch.left();
        tally.batch = Some(batch);
        Some(previous)
    }

    /// Counts one end of a member of the tally's batch; if this thread now
    /// holds the batch's last ends, completes the batch at once, so its
    /// callback runs right after this request's.
    fn count(&self, tally: &mut Tally, how: Ended) -> Option<(OnDone, Progress)> {
        tally.add(how);
        tally.left = tally.left.saturating_sub(1);
        if tally.left == 0 {
            self.flush(tally)
        } else {
            None
        }
    }

    /// Adds what `tally` counted to its batch (one lock). If that completed
    /// the batch, stops following it and returns its batch-done
    /// callback to run.
    pub(crate) fn flush(&self, tally: &mut Tally) -> Option<(OnDone, Progress)> {
        let counted = std::mem::take(&mut tally.counted);
        if counted.ended() == 0 {
            return None;
        }
        let batch = tally.batch.as_ref()?;
        // Counted under the batch's lock: of two threads adding a batch's
        // last ends, exactly one completes it, and that one removes it.
        match batch.add(&counted) {
            Some((false, done)) => done,
            Some((true, done)) => {
                self.remove(batch);
                tally.batch = None;
                done
            }
            None => {
                log::error!(
                    "callpool: {} outcomes counted in a batch that had ended (a user-chosen id used again?)",
                    counted.ended()
                );
                tally.batch = None;
                None
            }
        }
    }
}

/// What a thread handling a run of results has counted in one batch and
/// not yet added to it: the batch's lock is taken once per run (and once
/// per switch between batches), not once per result. Flushed
/// (`Batches::flush`) before the thread stops handling results, before a
/// panic in a callback goes on, and before the callback of a result of no
/// batch or of a stream's item (which may poll the handle itself).
#[derive(Default)]
pub(crate) struct Tally {
    batch: Option<Arc<BatchState>>,
    /// Ends counted since the last flush (`total` unused).
    counted: Progress,
    /// Members of `batch` not ended when this thread last looked, less
    /// those it has counted since: at zero, it holds the batch's last ends.
    left: usize,
}

impl Tally {
    /// Whether it holds no ends not yet flushed.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.counted.ended() == 0
    }

    /// Whether `id` is a member of the tally's batch, whose end is now to
    /// be counted (see [`Members::claim`]).
    fn claims(&self, id: RequestId) -> bool {
        self.batch.as_ref().is_some_and(|b| b.members.claim(id))
    }

    /// Counts one end, by how it ended.
    #[inline]
    fn add(&mut self, how: Ended) {
        match how {
            Ended::Succeeded => self.counted.done += 1,
            Ended::Failed | Ended::Panicked => self.counted.failed += 1,
            Ended::Unstarted => self.counted.cancelled += 1,
        }
    }
}

/// Batch-done callbacks to run, with their final progress, in the order
/// their batches completed. Empty (and not allocated) but when a batch
/// completes.
#[derive(Default)]
pub(crate) struct Finished(Vec<(OnDone, Progress)>);

impl Finished {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn extend(&mut self, done: Option<(OnDone, Progress)>) {
        self.0.extend(done);
    }

    pub(crate) fn append(&mut self, other: Finished) {
        self.0.extend(other.0);
    }

    /// Runs them, in the order their batches completed; a panic in one
    /// goes on once the others have run. They read no request's timing,
    /// even run in a timed request's callback (a `shutdown_now` there).
    pub(crate) fn run(self) {
        let mut panicked = FirstPanic::default();
        crate::request::timing::hidden(|| {
            for (on_done, progress) in self.0 {
                panicked.catch("a batch-done callback", || on_done.call(progress));
            }
        });
        panicked.resume();
    }
}

impl fmt::Debug for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchState")
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::Members;
    use crate::request::RequestId;

    fn auto(value: u64) -> RequestId {
        RequestId::from_parts(value, false)
    }

    fn user(value: u64) -> RequestId {
        RequestId::from_parts(value, true)
    }

    #[test]
    fn close_automatic_ids_are_members_and_their_neighbours_are_not() {
        let ids = [auto(100), auto(102), auto(230), user(101)];
        let members = Members::new(ids.iter().copied()).unwrap();
        assert_eq!(members.len(), 4);
        assert!(!members.bits.is_empty(), "close ids go in the bitmap");
        for id in ids {
            assert!(members.contains(id), "{id:?}");
        }
        for id in [
            auto(99),
            auto(101),
            auto(231),
            auto(5000),
            user(100),
            user(102),
        ] {
            assert!(!members.contains(id), "{id:?}");
        }
        assert_eq!(members.user_chosen(), [101]);
    }

    #[test]
    fn ids_far_apart_go_in_the_set() {
        let ids = [auto(1), auto(u64::MAX), auto(1 << 40)];
        let members = Members::new(ids.iter().copied()).unwrap();
        // The first id starts the bitmap; the others, too far above it for
        // a word per member, go in the set.
        assert_eq!(members.bits.len(), 1, "a bitmap would be too large");
        assert_eq!(members.far.len(), 2);
        for id in ids {
            assert!(members.contains(id), "{id:?}");
        }
        assert!(!members.contains(auto(2)));
        assert!(!members.contains(user(1)));
        assert!(members.user_chosen().is_empty());
    }

    /// The one-pass member set against a plain set of ids: refused exactly
    /// when an id comes twice; otherwise it contains exactly the ids
    /// given, and its bitmap stays within about a word per member. Ids
    /// are drawn close together (as a batch's are) with some far away and
    /// some user-chosen, in any order.
    #[test]
    fn the_member_set_matches_a_plain_set() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        use std::collections::HashSet;

        let id = prop_oneof![
            6 => (0u64..300).prop_map(auto),
            1 => (0u64..u64::MAX / 2).prop_map(auto),
            1 => (0u64..300).prop_map(user),
        ];
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 2_000,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        runner
            .run(&proptest::collection::vec(id, 0..200), |ids| {
                let mut plain = HashSet::new();
                let twice = !ids.iter().all(|id| plain.insert(*id));
                match Members::new(ids.iter().copied()) {
                    None => prop_assert!(twice, "refused without a repeat"),
                    Some(members) => {
                        prop_assert!(!twice, "a repeated id was taken");
                        prop_assert_eq!(members.len(), ids.len());
                        prop_assert!(members.bits.len() <= ids.len() + 1);
                        // The blocks the bitmap's members fall in, each
                        // once, in order.
                        let mut blocks: Vec<u64> = ids
                            .iter()
                            .filter(|id| !id.is_user_chosen() && !members.far.contains(&id.value()))
                            .map(|id| id.value() / super::BLOCK)
                            .collect();
                        blocks.sort_unstable();
                        blocks.dedup();
                        prop_assert_eq!(members.blocks().collect::<Vec<_>>(), blocks);
                        prop_assert_eq!(
                            members.is_scattered(),
                            ids.iter()
                                .any(|id| id.is_user_chosen() || members.far.contains(&id.value()))
                        );
                        for probe in (0..310).flat_map(|v| [auto(v), user(v)]).chain(ids.clone()) {
                            prop_assert_eq!(
                                members.contains(probe),
                                plain.contains(&probe),
                                "{:?}",
                                probe
                            );
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    /// A user-chosen member is claimed once: after its end is counted, the
    /// id is no longer a member. Automatic members stay members.
    #[test]
    fn a_user_chosen_member_is_claimed_once() {
        let members = Members::new([user(5), auto(9)]).unwrap();
        assert!(members.contains(user(5)));
        assert!(members.claim(user(5)));
        assert!(!members.contains(user(5)) && !members.claim(user(5)));
        assert!(members.claim(auto(9)) && members.contains(auto(9)));
        assert!(!members.claim(user(9)));
        assert_eq!(members.len(), 2);
    }

    /// Finding the batch of a result, and dropping a completed batch,
    /// look at a bounded number of filed batches however many are filed:
    /// 2,000 batches of one request each, their ends counted last batch
    /// first (as two workers may end them), each looks at most at the 64
    /// batches with a member among its result's 64 neighbouring ids, not
    /// at every batch still filed.
    #[test]
    fn many_batches_are_found_and_dropped_without_a_scan() {
        use super::{BatchState, Batches, Tally};
        use crate::request::task::Ended;
        const B: u64 = 2_000;
        let batches = Batches::default();
        let filed: Vec<_> = (0..B)
            .map(|i| {
                let batch = BatchState::new(Members::new([auto(1_000 + i)]).unwrap());
                batches.add(std::sync::Arc::clone(&batch));
                batch
            })
            .collect();
        for i in (0..B).rev() {
            let mut tally = Tally::default();
            let finished = batches.ended(auto(1_000 + i), || Ended::Succeeded, &mut tally);
            assert!(finished.is_empty(), "no batch-done callback was set");
            assert!(tally.is_empty(), "a batch of one completes at its end");
        }
        // An id of no batch is looked for, and found in none.
        let mut tally = Tally::default();
        batches.ended(auto(1_000 + B), || Ended::Succeeded, &mut tally);
        assert!(tally.is_empty());
        for batch in &filed {
            let progress = batch.progress();
            assert_eq!((progress.total, progress.done), (1, 1));
        }
        assert_eq!(
            batches.filed_len(),
            0,
            "every batch dropped as it completed"
        );
        let looked = batches.looked.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            looked <= 2 * 64 * B as usize,
            "looked at {looked} batches for {B} results"
        );
    }

    #[test]
    fn an_id_twice_is_refused() {
        assert!(Members::new([auto(7), auto(8), auto(7)].into_iter()).is_none());
        assert!(Members::new([user(7), auto(8), user(7)].into_iter()).is_none());
        assert!(Members::new([user(7), auto(7)].into_iter()).is_some());
        assert!(Members::new(std::iter::empty()).is_some());
        // 200 is too far above 0 for a bitmap of two members: the set
        // takes it, and it is still found there once the bitmap has grown
        // over it.
        let spread = [auto(0), auto(200), auto(1), auto(2), auto(3)];
        let members = Members::new(spread).unwrap();
        assert!(members.contains(auto(200)) && !members.contains(auto(199)));
        assert!(Members::new([auto(0), auto(200), auto(1), auto(2), auto(200)]).is_none());
    }
}
