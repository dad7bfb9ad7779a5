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
    contain_logged(f, |message| {
        log::error!("callpool: a user value's Drop panicked ({what}): {message}")
    });
}

/// Calls user code (`what`, a worker hook or a waker) that must not unwind
/// into the library; a panic in it is logged as that code's and goes no
/// further.
pub(crate) fn call_contained(what: &str, f: impl FnOnce()) {
    contain_logged(f, |message| {
        log::error!("callpool: {what} panicked: {message}")
    });
}

fn contain_logged(f: impl FnOnce(), log: impl FnOnce(&str)) {
    // AssertUnwindSafe: after a panic nothing `f` touched is used again
    // except through values `f` left in a valid state (a replaced field).
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        log(&message(&payload));
        forget(payload);
    }
}

/// Drops `value`, a user value (or a panic payload, which may hold one),
/// contained as by [`contain`]. One value per call: a panic dropping one
/// must not leave the next to drop glue outside any containment, nor
/// unwind while another is dropped (a second panic aborts).
pub(crate) fn drop_contained<T>(what: &str, value: T) {
    contain(what, move || drop(value));
}

/// [`drop_contained`] for a value that may be gone already: `None` costs
/// a look, not a containment (this runs for every request).
#[inline]
pub(crate) fn drop_some<T>(what: &str, value: Option<T>) {
    if let Some(value) = value {
        drop_contained(what, value);
    }
}

/// An argument that travels in one closure with its callable (as
/// `WorkRequest::new` builds them), kept apart from it: dropped unrun, it
/// is dropped contained, so that a panicking `Drop` of the callable and
/// one of the argument never unwind together (the second would abort).
/// Two user values the library put in one closure are its to separate;
/// two inside one user value are the user's.
pub(crate) struct Apart<A>(Option<A>);

impl<A> Apart<A> {
    #[inline]
    pub(crate) fn new(arg: A) -> Apart<A> {
        Apart(Some(arg))
    }

    /// The argument, for the call.
    #[inline]
    pub(crate) fn into_inner(mut self) -> A {
        match self.0.take() {
            Some(arg) => arg,
            // Taken only here, which consumes it.
            None => unreachable!("an argument taken twice"),
        }
    }
}

impl<A> Drop for Apart<A> {
    fn drop(&mut self) {
        drop_some("a request's argument, unrun", self.0.take());
    }
}

/// The first of several panics caught while more user code still had to
/// run (the rest of a queue of callbacks): it goes on once they have run.
/// Each later one is logged and its payload dropped contained: it may be
/// a user value whose `Drop` panics too, and the code still to run must
/// not be skipped.
#[derive(Default)]
pub(crate) struct FirstPanic(Option<Payload>);

impl FirstPanic {
    /// Keeps `payload` if it is the first, else drops it contained.
    fn keep(&mut self, payload: Payload, what: &str) {
        if self.0.is_none() {
            self.0 = Some(payload);
        } else {
            drop_later(what, payload);
        }
    }

    /// `keep`s the panic of `f`, if it panics.
    pub(crate) fn catch(&mut self, what: &str, f: impl FnOnce()) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.keep(payload, what);
        }
    }

    /// The first panic, if any.
    pub(crate) fn into_inner(self) -> Option<Payload> {
        self.0
    }

    /// Goes on with the first panic, if there was one.
    pub(crate) fn resume(self) {
        if let Some(payload) = self.0 {
            panic::resume_unwind(payload);
        }
    }
}

/// Runs `f`, then goes on with `first`, a panic caught before it: a panic
/// of `f` is logged and dropped, as [`FirstPanic`] drops a later one.
pub(crate) fn resume_after(first: Payload, what: &str, f: impl FnOnce()) -> ! {
    // AssertUnwindSafe: the caller unwinds right after, with `first`.
    if let Err(later) = panic::catch_unwind(AssertUnwindSafe(f)) {
        drop_later(what, later);
    }
    panic::resume_unwind(first)
}

/// Logs and drops (contained) the payload of a panic of `what` that came
/// after another, which goes on.
fn drop_later(what: &str, payload: Payload) {
    log::error!("callpool: {what} panicked after another; this panic is dropped");
    drop_contained("a later panic's payload", payload);
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
            drop_contained("a callback dropped uncalled", f);
        }
    }
}

/// The message of a panic, for `TaskError::Panicked`. The payload is
/// dropped here, where its own `Drop` cannot escape.
pub(crate) fn into_message(payload: Payload) -> String {
    let text = message(&payload);
    drop_contained("a panic payload", payload);
    text
}

/// The message of a panic, its payload kept.
pub(crate) fn message(payload: &Payload) -> String {
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
