//! How long a thread waiting for results looks at its result queue before
//! it blocks. Only a matter of speed: what is received, and when a waiter
//! returns, are the wait protocol's (`inbox::receive`).
//!
//! A block and its wake-up cost a round trip about 6 µs of wall time and
//! 8-10 µs of CPU time on the VM measured, while a lone request on an idle
//! worker comes back within about a microsecond: a waiter that spins a
//! little first takes the result without blocking. A waiter whose results come
//! later than that would only burn the CPU its workers may need, so each
//! handle remembers how long its waits turned out to be and spins less
//! (down to a quick look) while they are long, more again once they are
//! short. Measurements: `docs/performance.md`, "Round trips, round 2".

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a waiter spins: about what blocking and being woken costs
/// here (a round trip that blocks takes 6-7 µs more than one that spins),
/// so a spin that fails costs at most about what it could have saved.
const MAX_SPIN: Duration = Duration::from_micros(10);
/// The shortest: a few looks, so that a handle whose waits were long still
/// notices when its results start coming quickly.
const MIN_SPIN: Duration = Duration::from_nanos(500);
/// `spin_loop` pauses between two looks, doubling from 1 up to this (about
/// 0.4 µs here): the first looks come quickly, and later ones leave the
/// result queue's lock to the workers sending to it.
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const MAX_PAUSES: u32 = 16;

/// `yield_now` calls, each followed by a look, between a spin that found
/// nothing and blocking. When the workers keep every core busy (CPU-bound
/// requests), a yield hands this core to a worker, and the waiter comes
/// back to results that arrived meanwhile instead of being woken for each
/// one: a wake-up costs the sending worker a system call and both threads
/// a context switch per result. With idle cores a yield returns at once
/// and costs about as much as a look. Measured: `docs/performance.md`,
/// "Waiting on busy cores".
#[cfg_attr(any(loom, shuttle), allow(dead_code))]
const YIELDS: u32 = 4;

/// A handle's memory of how long its waits last, which sets how long the
/// next one spins.
#[derive(Debug)]
pub(crate) struct Patience {
    /// How long the next wait spins, in nanoseconds (between [`MIN_SPIN`]
    /// and [`MAX_SPIN`]). A std atomic even under the checkers, and
    /// `Relaxed`: only a hint for speed, read and written by whichever of
    /// the handle's threads waits; a lost update costs one spin's length.
    spin_ns: AtomicU32,
}

/// A waiter that gave up spinning and is about to block, and when.
#[derive(Debug)]
pub(crate) struct Blocking {
    since: Instant,
}

impl Patience {
    pub(crate) fn new() -> Patience {
        Patience {
            spin_ns: AtomicU32::new(nanos(MAX_SPIN)),
        }
    }

    /// Looks for a message with `try_take` until one comes, the spin's
    /// length has passed, or `deadline`; then yields the core
    /// [`YIELDS`] times, looking after each. `Err`: nothing came; the
    /// caller blocks, then reports how long with [`woke`](Self::woke).
    #[cfg(not(any(loom, shuttle)))]
    pub(crate) fn spin<T>(
        &self,
        deadline: Option<Instant>,
        mut try_take: impl FnMut() -> Option<T>,
    ) -> Result<T, Blocking> {
        // Relaxed: a hint (see the field).
        let length = Duration::from_nanos(self.spin_ns.load(Ordering::Relaxed).into());
        let start = Instant::now();
        let end = deadline.map_or(start + length, |deadline| deadline.min(start + length));
        let mut pauses = 1;
        loop {
            if let Some(msg) = try_take() {
                return Ok(msg);
            }
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            pauses = (pauses * 2).min(MAX_PAUSES);
            if Instant::now() >= end {
                break;
            }
        }
        for _ in 0..YIELDS {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break;
            }
            std::thread::yield_now();
            if let Some(msg) = try_take() {
                return Ok(msg);
            }
        }
        Err(Blocking {
            since: Instant::now(),
        })
    }

    /// Under the checkers: one look, no clock. The spin only ever takes
    /// what a blocking receive would have taken at once, and this one look
    /// is where a waiter does so without blocking.
    #[cfg(any(loom, shuttle))]
    pub(crate) fn spin<T>(
        &self,
        _deadline: Option<Instant>,
        mut try_take: impl FnMut() -> Option<T>,
    ) -> Result<T, Blocking> {
        try_take().ok_or_else(|| Blocking {
            since: Instant::now(),
        })
    }

    /// One look with `try_take`, no spin: for a waiter that has just spun
    /// and looks once more before it blocks.
    pub(crate) fn look<T>(&self, try_take: impl FnOnce() -> Option<T>) -> Result<T, Blocking> {
        try_take().ok_or_else(|| Blocking {
            since: Instant::now(),
        })
    }

    /// A waiter that blocked after its spin was woken: adjusts the next
    /// spins to how long it blocked.
    pub(crate) fn woke(&self, blocking: Blocking) {
        self.adjust(blocking.since.elapsed());
    }

    /// If what woke a blocked waiter came soon after it gave up spinning, a
    /// longer spin would have caught it, so the next spins twice as long (up
    /// to [`MAX_SPIN`]); if it came later, spinning that long only burnt
    /// CPU, so the next spins half as long (down to [`MIN_SPIN`]).
    fn adjust(&self, blocked: Duration) {
        // Relaxed, here and below: a hint (see the field).
        let current = self.spin_ns.load(Ordering::Relaxed);
        let next = if blocked < MAX_SPIN {
            current.saturating_mul(2).min(nanos(MAX_SPIN))
        } else {
            (current / 2).max(nanos(MIN_SPIN))
        };
        self.spin_ns.store(next, Ordering::Relaxed);
    }

    /// How long the next wait spins.
    #[cfg(all(test, not(any(loom, shuttle))))]
    fn length(&self) -> Duration {
        Duration::from_nanos(self.spin_ns.load(Ordering::Relaxed).into())
    }
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;

    /// A spin returns what its first look finds, and gives up by a
    /// deadline that has passed after that one look. (How many looks fit
    /// in a spin is up to the clock, so nothing here counts on more.)
    #[test]
    fn a_spin_takes_what_it_finds_and_respects_a_passed_deadline() {
        let patience = Patience::new();
        assert_eq!(patience.spin(None, || Some(7)).ok(), Some(7));
        let mut looks = 0;
        let past = Instant::now();
        let got = patience.spin(Some(past), || {
            looks += 1;
            None::<u32>
        });
        assert!(got.is_err());
        assert_eq!(looks, 1, "a deadline that has passed allows one look");
    }

    /// Long waits shorten the spin down to its floor; short ones lengthen
    /// it back up to its ceiling.
    #[test]
    fn long_waits_shorten_the_spin_and_short_ones_lengthen_it() {
        let patience = Patience::new();
        assert_eq!(patience.length(), MAX_SPIN);
        patience.adjust(100 * MAX_SPIN);
        assert_eq!(patience.length(), MAX_SPIN / 2);
        for _ in 0..64 {
            patience.adjust(100 * MAX_SPIN);
        }
        assert_eq!(
            patience.length(),
            MIN_SPIN,
            "the spin never goes below its floor"
        );
        patience.adjust(Duration::ZERO);
        assert_eq!(patience.length(), 2 * MIN_SPIN);
        for _ in 0..64 {
            patience.adjust(MAX_SPIN / 2);
        }
        assert_eq!(patience.length(), MAX_SPIN, "nor above its ceiling");
    }
}
