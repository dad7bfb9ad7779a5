//! How long a waiting thread looks for what it waits for before it
//! blocks: a handle's waiter at its result queue (`inbox::receive`), a
//! ticket's holder at its slot (`ticket::slot`). Only a matter of speed:
//! what is received, and when a waiter returns, are the wait protocols'.
//!
//! A block and its wake-up cost a round trip about 6 µs of wall time and
//! 8-10 µs of CPU time on the VM measured, while a lone request on an idle
//! worker comes back within about a microsecond: a waiter that spins a
//! little first takes the result without blocking. A waiter whose results
//! come later than that would only burn the CPU its workers may need, so
//! each waiter remembers how long its waits turned out to be (a handle for
//! its waits, a thread for its ticket waits) and spins less (down to a
//! quick look) while they are long, more again once they are short.
//! Measurements: `docs/performance.md`, "Round trips, round 2" and
//! "A ticket's wait spins first".

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a waiter spins: about what blocking and being woken costs
/// here (a round trip that blocks takes 6-7 µs more than one that spins),
/// so a spin that fails costs at most about what it could have saved.
const MAX_SPIN: Duration = Duration::from_micros(10);
/// The shortest: a few looks, so that a waiter whose waits were long still
/// notices when its results start coming quickly.
const MIN_SPIN: Duration = Duration::from_nanos(500);
/// The most that being woken is taken to cost: how long a blocked waiter
/// may take to run again after what it waits for came. On the VM measured,
/// a waiter whose only worker ended its request 5 µs into the wait ran
/// again 11-12 µs later. Its estimate ([`Patience`]'s `wake_ns`) starts
/// here and follows the shortest blocks seen.
const MAX_WAKE: Duration = Duration::from_micros(15);
/// `spin_loop` pauses between two looks, doubling from 1 up to this (about
/// 0.4 µs here): the first looks come quickly, and later ones leave what
/// is looked at (a result queue's lock, a ticket's) to the workers that
/// write to it.
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

/// A waiter's memory of how long its waits last, which sets how long the
/// next one spins.
#[derive(Debug)]
pub(crate) struct Patience {
    /// How long the next wait spins, in nanoseconds (between [`MIN_SPIN`]
    /// and [`MAX_SPIN`]). A std atomic even under the checkers, and
    /// `Relaxed`: only a hint for speed, read and written by whichever of
    /// the waiter's threads waits; a lost update costs one spin's length.
    spin_ns: AtomicU32,
    /// What being woken costs, about, in nanoseconds: the shortest block
    /// lately (a block is the rest of the wait plus the wake-up), at most
    /// [`MAX_WAKE`]. Each longer block lets it grow by an eighth, so it
    /// follows a machine that got slower. Atomic and `Relaxed` as
    /// `spin_ns`.
    wake_ns: AtomicU32,
}

/// A waiter that gave up spinning and is about to block: how long it
/// looked, and when it gave up.
#[derive(Debug)]
pub(crate) struct Blocking {
    looked: Duration,
    since: Instant,
}

impl Patience {
    pub(crate) fn new() -> Patience {
        Patience {
            spin_ns: AtomicU32::new(nanos(MAX_SPIN)),
            wake_ns: AtomicU32::new(nanos(MAX_WAKE)),
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
        let since = Instant::now();
        Err(Blocking {
            looked: since - start,
            since,
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
            looked: Duration::ZERO,
            since: Instant::now(),
        })
    }

    /// One look with `try_take`, no spin: for a waiter that has just spun
    /// and looks once more before it blocks.
    pub(crate) fn look<T>(&self, try_take: impl FnOnce() -> Option<T>) -> Result<T, Blocking> {
        try_take().ok_or_else(|| Blocking {
            looked: Duration::ZERO,
            since: Instant::now(),
        })
    }

    /// A waiter that blocked after its spin was woken: adjusts the next
    /// spins to how long it looked and blocked.
    pub(crate) fn woke(&self, blocking: Blocking) {
        self.adjust(blocking.looked, blocking.since.elapsed());
    }

    /// If what woke a blocked waiter came within [`MAX_SPIN`] of the wait's
    /// start, a longer spin would have caught it, so the next spins twice
    /// as long (up to [`MAX_SPIN`]); if it came later, spinning that long
    /// only burnt CPU, so the next spins half as long (down to
    /// [`MIN_SPIN`]). When it came is known only up to the wake-up's cost,
    /// which `blocked` includes: the estimate of that cost is taken off.
    /// (Taking nothing off, a machine whose wake-ups cost more than
    /// [`MAX_SPIN`] shortened every spin to the floor, and blocked at
    /// every wait of a few microseconds.)
    fn adjust(&self, looked: Duration, blocked: Duration) {
        // Relaxed, here and below: hints (see the fields).
        let wake = self.wake_ns.load(Ordering::Relaxed);
        let wake = nanos(blocked)
            .min(wake.saturating_add(wake / 8))
            .min(nanos(MAX_WAKE));
        self.wake_ns.store(wake, Ordering::Relaxed);
        let came_after = looked + blocked.saturating_sub(Duration::from_nanos(wake.into()));
        let current = self.spin_ns.load(Ordering::Relaxed);
        let next = if came_after <= MAX_SPIN {
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
        patience.adjust(MAX_SPIN, 100 * MAX_SPIN);
        assert_eq!(patience.length(), MAX_SPIN / 2);
        for _ in 0..64 {
            patience.adjust(MAX_SPIN, 100 * MAX_SPIN);
        }
        assert_eq!(
            patience.length(),
            MIN_SPIN,
            "the spin never goes below its floor"
        );
        patience.adjust(MIN_SPIN, Duration::ZERO);
        assert_eq!(patience.length(), 2 * MIN_SPIN);
        for _ in 0..64 {
            patience.adjust(Duration::ZERO, MAX_SPIN / 2);
        }
        assert_eq!(patience.length(), MAX_SPIN, "nor above its ceiling");
    }

    /// On a machine where being woken takes 12 µs, a wait whose result
    /// comes 5 µs in blocks for 12 µs more than the spin: the spin
    /// lengthens back from its floor all the same, once the shortest block
    /// has shown what a wake-up costs. Results that come 25 µs in shorten
    /// it on the same machine.
    #[test]
    fn the_cost_of_being_woken_is_not_taken_for_a_late_result() {
        let wake = Duration::from_micros(12);
        let patience = Patience::new();
        for _ in 0..64 {
            patience.adjust(MAX_SPIN, Duration::from_micros(15) + wake);
        }
        assert_eq!(patience.length(), MIN_SPIN, "results at 25 µs");
        // Results at 5 µs, each block the rest of the 5 µs and the wake-up,
        // until the spin is long enough to catch them.
        let came = Duration::from_micros(5);
        let mut blocks = 0;
        while patience.length() < came {
            let looked = patience.length();
            patience.adjust(looked, came - looked + wake);
            blocks += 1;
            assert!(blocks < 16, "the spin did not lengthen");
        }
    }

    /// Where being woken is cheap, the estimate follows it down: a result
    /// that comes 15 µs in (5 µs after a full spin) shortens the spin,
    /// although the block was shorter than the most a wake-up may cost.
    #[test]
    fn a_cheap_wake_up_is_learnt_from_the_shortest_block() {
        let patience = Patience::new();
        patience.adjust(MAX_SPIN, Duration::from_micros(1));
        assert_eq!(patience.length(), MAX_SPIN);
        patience.adjust(MAX_SPIN, Duration::from_micros(6));
        assert_eq!(patience.length(), MAX_SPIN / 2, "came 15 µs in");
    }
}
