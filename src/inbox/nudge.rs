//! A wake-up addressed to one thread: what a wait nested in a callback
//! blocks on (`Inbox::nested_waiter`). A token sent through the result
//! queue can be taken by any thread receiving from it, and a waiter keeps
//! the tokens it takes, so a token meant for the nested waiter could leave
//! it asleep for good.

use std::time::Instant;

use crate::sync::channel::{self, Receiver, RecvTimeoutError, Sender};

/// Wakes its [`Nudged`]. A nudge is kept until taken, and the nudges sent
/// before it is taken count as one.
pub(crate) struct Nudger(Sender<()>);

/// The waiting end of a [`Nudger`].
pub(crate) struct Nudged(Receiver<()>);

pub(crate) fn pair() -> (Nudger, Nudged) {
    let (tx, rx) = channel::bounded(1);
    (Nudger(tx), Nudged(rx))
}

impl Nudger {
    pub(crate) fn nudge(&self) {
        // Full: a nudge is waiting already. Disconnected: nobody waits.
        let _ = self.0.try_send(());
    }
}

impl Nudged {
    /// Takes a nudge, if one is waiting.
    pub(crate) fn try_take(&self) -> bool {
        self.0.try_recv().is_ok()
    }

    /// Blocks until nudged (`Ok`), or until `deadline`.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<(), RecvTimeoutError> {
        match deadline {
            // The nudger is registered while its waiter waits: never
            // disconnected, but said so rather than assumed.
            None => self.0.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self.0.recv_deadline(deadline),
        }
    }
}
