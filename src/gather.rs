//! Gathering a user's iterator into a `Vec` without trusting its
//! `size_hint`.
//!
//! `collect` presizes its vector by the hint's lower bound (or, for an
//! exact hint, collects a `Vec` in place). The hint is the user's code and
//! may lie: a lower bound of `1 << 40` makes `collect` ask for terabytes,
//! and a failed allocation aborts the process, where a lie must cost at
//! most a slower gather. An exact hint of a size an honest input can have
//! keeps `collect`'s fast paths; any other grows the vector as it fills.

/// The largest exact hint trusted: what a real `Vec` of requests or
/// inputs may hold (so a batch of millions still collects in place) while
/// a vector presized by a lie this big can still be allocated.
const TRUSTED: usize = 1 << 24;

/// `iter.collect()`, presized only by an exact hint up to [`TRUSTED`].
pub(crate) fn gather<I: Iterator>(iter: I) -> Vec<I::Item> {
    match iter.size_hint() {
        (lower, Some(upper)) if lower == upper && lower <= TRUSTED => iter.collect(),
        _ => Unhinted(iter).collect(),
    }
}

/// An iterator that hides its inner one's hint.
struct Unhinted<I>(I);

impl<I: Iterator> Iterator for Unhinted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
}
