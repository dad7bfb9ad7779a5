//! Lookouts: threads that handle a handle's results but are blocked
//! somewhere else (on a ticket, or on a collector's channel). A worker
//! stuck sending to that handle's full result queue can only go on once
//! one of them makes room, so it nudges them all; each looks at the
//! handle's results before it blocks again. Protocol: `docs/design.md`,
//! "Lookouts".

use std::sync::Arc;

use crate::patience::Patience;
use crate::sync::{Mutex, MutexGuard, Thread};

/// How to wake one lookout.
pub(crate) enum Nudge {
    /// A thread parked (waiting on a ticket).
    Unpark(Thread),
    /// Anything else: a message on the channel the thread blocks on.
    Call(Box<dyn Fn() + Send + Sync>),
}

impl Nudge {
    fn give(&self) {
        match self {
            Nudge::Unpark(thread) => thread.unpark(),
            Nudge::Call(call) => call(),
        }
    }
}

/// A handle as its lookouts need it: what a thread blocked on a ticket or
/// a collector's channel must be able to do for the handle it was put
/// through.
pub(crate) trait Home: Send + Sync {
    /// The handle's lookouts; `None` if no worker can get stuck on it (its
    /// result queue is unbounded, or it is gone).
    fn lookouts(&self) -> Option<Arc<Lookouts>>;
    /// If a worker is stuck on the handle's full result queue, handles the
    /// results ready there on this thread (running their callbacks; never
    /// on a worker thread) and returns `true`.
    fn make_room(&self) -> bool;
}

/// The lookouts of one handle.
#[derive(Default)]
pub(crate) struct Lookouts {
    watching: Mutex<Watching>,
}

#[derive(Default)]
struct Watching {
    /// Keys are never reused, so a `Watch` removes only its own nudge.
    next_key: u64,
    nudges: Vec<(u64, Nudge)>,
}

/// A lookout on duty: its nudge is given until this is dropped.
pub(crate) struct Watch {
    lookouts: Arc<Lookouts>,
    key: u64,
}

impl Lookouts {
    fn watching(&self) -> MutexGuard<'_, Watching> {
        // Only pushes, removals and nudges run under this lock; a nudge
        // is an unpark or a send on an unbounded channel, which do not
        // panic, so a poisoned lock still holds a valid list.
        self.watching.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `nudge` given whenever a worker gets stuck, until the watch is
    /// dropped. The caller looks at the handle's stuck senders *after*
    /// this returns: a worker counts itself stuck before it takes this
    /// lock to nudge, so either it finds this nudge or the caller finds
    /// its count.
    pub(crate) fn watch(self: &Arc<Self>, nudge: Nudge) -> Watch {
        let mut watching = self.watching();
        let key = watching.next_key;
        watching.next_key += 1;
        watching.nudges.push((key, nudge));
        Watch {
            lookouts: Arc::clone(self),
            key,
        }
    }

    /// For a worker about to block on the full result queue: nudges every
    /// lookout. A nudge is kept until its thread looks (an unpark token, a
    /// queued message), so one given before the thread blocks is not lost.
    pub(crate) fn nudge_all(&self) {
        for (_, nudge) in &self.watching().nudges {
            nudge.give();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watching = self.lookouts.watching();
        if let Some(at) = watching.nudges.iter().position(|(key, _)| *key == self.key) {
            watching.nudges.swap_remove(at);
        }
    }
}

/// Receives the next message from `messages`, on which `None` is a nudge,
/// while looking out for `homes` (those with a bounded result queue, from
/// `ThreadPool::home`): whenever a worker is stuck on one of their full
/// result queues, this thread makes room there before it blocks again.
/// `None` if every sender is gone. It looks for a while before it blocks,
/// as long as `patience` says (the receiving iterator's own), so that an
/// outcome a worker is about to send costs no block and wake-up.
// Inlined: the common case (unbounded result queues, no home) is a plain
// receive, once per outcome in as_completed's and a collector's loops.
#[inline]
pub(crate) fn recv<M: Send + 'static>(
    messages: &flume::Receiver<Option<M>>,
    nudges: &flume::Sender<Option<M>>,
    homes: &[Arc<dyn Home>],
    patience: &Patience,
) -> Option<M> {
    let look = || match messages.try_recv() {
        Ok(Some(message)) => Some(Some(message)),
        // A stale nudge, or nothing yet: look again.
        Ok(None) | Err(flume::TryRecvError::Empty) => None,
        Err(flume::TryRecvError::Disconnected) => Some(None),
    };
    // Before any watch is set: a worker stuck meanwhile is seen by the
    // first look at the homes below, as it is without the spin.
    let blocking = match patience.spin(None, look) {
        Ok(received) => return received,
        Err(blocking) => blocking,
    };
    let received = if homes.is_empty() {
        plain_recv(messages)
    } else {
        recv_looking_out(messages, nudges, homes)
    };
    patience.woke(blocking);
    received
}

#[inline(never)]
fn recv_looking_out<M: Send + 'static>(
    messages: &flume::Receiver<Option<M>>,
    nudges: &flume::Sender<Option<M>>,
    homes: &[Arc<dyn Home>],
) -> Option<M> {
    // On duty before the first `make_room`: see `Lookouts::watch`.
    let watches: Vec<Watch> = homes
        .iter()
        .filter_map(|home| {
            let lookouts = home.lookouts()?;
            let nudges = nudges.clone();
            // Unbounded: never blocks. Disconnected: nobody receives any
            // more, so nobody needs the nudge.
            Some(lookouts.watch(Nudge::Call(Box::new(move || {
                let _ = nudges.send(None);
            }))))
        })
        .collect();
    if watches.is_empty() {
        // Every handle is gone: no worker can get stuck on them any more.
        return plain_recv(messages);
    }
    loop {
        let mut made_room = false;
        for home in homes {
            made_room |= home.make_room();
        }
        let next = if made_room {
            // Room made: look again before blocking (a worker may still
            // be counted stuck until its send returns).
            match messages.try_recv() {
                Ok(next) => next,
                Err(flume::TryRecvError::Empty) => None,
                Err(flume::TryRecvError::Disconnected) => return None,
            }
        } else {
            messages.recv().ok()?
        };
        if let Some(message) = next {
            return Some(message);
        }
    }
}

/// The message already waiting, if any, skipping stale nudges: a nudge
/// left from an earlier blocking receive is no message, and a caller that
/// took it for one (`is_empty`) would skip what it does before it blocks.
pub(crate) fn try_recv<M>(messages: &flume::Receiver<Option<M>>) -> Option<M> {
    messages.try_iter().flatten().next()
}

/// A blocking receive that skips stale nudges.
#[inline]
fn plain_recv<M>(messages: &flume::Receiver<Option<M>>) -> Option<M> {
    loop {
        if let Some(message) = messages.recv().ok()? {
            return Some(message);
        }
    }
}
