//! Containing user panics where they happen, and keeping those of quiet
//! workers out of the panic hook.
//!
//! A user's code runs in more places than its callable: a panic payload, a
//! result nobody polled, a callable's captured state dropped by a sweep, all
//! run the user's `Drop`s on whichever thread lets go of them. Each such
//! place goes through here, so that one bad value never takes a worker or a
//! sweep down: the panic is caught, logged, and its own payload (which may
//! panic again when dropped) is leaked rather than dropped.

use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

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

/// A boxed user callback that may be dropped uncalled (its handle gone,
/// its batch swept), on whichever thread lets go of it: often a worker, or
/// a thread already unwinding. What it captures is then dropped contained.
/// `None` once called (the same size: the box's pointer is never null).
pub(crate) struct Callback<A>(Option<Box<dyn FnOnce(A) + Send>>);

impl<A> Callback<A> {
    pub(crate) fn new(f: impl FnOnce(A) + Send + 'static) -> Callback<A> {
        Callback(Some(Box::new(f)))
    }

    /// Calls it: a panic in the call itself passes on.
    pub(crate) fn call(mut self, arg: A) {
        if let Some(f) = self.0.take() {
            f(arg);
        }
    }
}

impl<A> Drop for Callback<A> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            contain("a callback dropped uncalled", move || drop(f));
        }
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

thread_local! {
    /// Whether panics on this thread skip the panic hook (a worker of a
    /// pool built with `Builder::quiet_panics`).
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Keeps panics on the calling thread out of the panic hook from now on:
/// they are still caught and reported as usual (to the error callback, or
/// logged), only not printed. The first call installs, once per process, a
/// hook that calls the one it replaces for every thread but these.
pub(crate) fn quiet_this_thread() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|quiet| quiet.set(true));
}
