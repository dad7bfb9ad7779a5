//! Containing user panics where they happen.
//!
//! A user's code runs in more places than its callable: a panic payload, a
//! result nobody polled, a callable's captured state dropped by a sweep, all
//! run the user's `Drop`s on whichever thread lets go of them. Each such
//! place goes through here, so that one bad value never takes a worker or a
//! sweep down: the panic is caught, logged, and its own payload (which may
//! panic again when dropped) is leaked rather than dropped.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// A panic payload, as `catch_unwind` returns it.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Runs `f`, which drops or replaces user values; a panic in it is logged
/// (naming `what`) and goes no further.
pub(crate) fn contain(what: &str, f: impl FnOnce()) {
    // AssertUnwindSafe: after a panic nothing `f` touched is used again
    // except through values `f` left in a valid state (a replaced field).
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        log::error!(
            "callpool: a user value's Drop panicked ({what}): {}",
            message(&payload)
        );
        forget(payload);
    }
}

/// The message of a panic, for `TaskError::Panicked`. The payload is
/// dropped here, where its own `Drop` cannot escape.
pub(crate) fn into_message(payload: Payload) -> String {
    let text = message(&payload);
    contain("a panic payload", move || drop(payload));
    text
}

fn message(payload: &Payload) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic payload of unknown type".to_owned()
    }
}

/// Leaks a payload whose `Drop` already panicked once: dropping it again
/// could panic again, and there is nowhere left to report that.
fn forget(payload: Payload) {
    std::mem::forget(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("unwind test: bomb");
        }
    }

    #[test]
    fn a_panicking_drop_is_contained() {
        let mut reached = false;
        contain("a bomb", || drop(Bomb));
        contain("nothing", || reached = true);
        assert!(reached);
    }

    #[test]
    fn a_payload_whose_drop_panics_still_gives_a_message() {
        let payload: Payload = Box::new(Bomb);
        assert_eq!(into_message(payload), "panic payload of unknown type");
        let payload: Payload = Box::new(String::from("text"));
        assert_eq!(into_message(payload), "text");
    }
}
