//! A worker's pacing: whether it spins before sleeping when it runs out of
//! requests, and how long it pauses when it is close behind a stream of
//! puts. Only a matter of speed: every decision about taking, sleeping and
//! leaving is the request queue's (`pool::queue`).

use std::time::{Duration, Instant};

/// How many times an idle worker looks at the queue again, without the
/// lock, before it goes to sleep. Streams of short requests then pass from
/// putter to worker without a sleep and a wake-up per request; an idle
/// worker spins for a few microseconds at most, then sleeps until woken.
const SPIN_ROUNDS: u32 = 64;
/// Of those, how many busy-wait with `spin_loop` before yielding the CPU.
const SPIN_BEFORE_YIELD: u32 = 16;
/// After those rounds, how long the worker goes on busy-waiting before its
/// first yield. A yield is a system call (about 0.85 µs on the VM measured),
/// so a request that comes during one waits for it to return: round trips
/// whose next request came just after the quick rounds took about three
/// times as long. crossbeam-channel's receive busy-waits about as long
/// (127 pauses) before it yields.
const BUSY_SPIN: Duration = Duration::from_micros(3);
/// How long a worker that ran out of requests right behind a stream of puts
/// waits before it looks again. Looking reads the lines the putter is
/// writing (the FIFO's tail and newest slots): a worker that takes each
/// request the moment it appears makes every put wait for those lines to
/// come back. After the pause it finds a run of requests the putter has
/// finished with. Measurements and the alternatives: `docs/performance.md`,
/// "Catching up".
const CATCH_UP_PAUSE: Duration = Duration::from_micros(4);
/// A request that shows up within this many spin rounds after a worker ran
/// out (the busy-wait rounds: a few hundred nanoseconds) makes a quick
/// catch-up (see [`Pace`]). Counted in rounds, not read from the clock: a
/// clock reading at each end would delay every hand-off to a spinning
/// worker (`docs/performance.md`, "Catching up").
const QUICK_ROUNDS: u32 = SPIN_BEFORE_YIELD;
/// How many quick catch-ups in a row put a worker close behind a stream.
/// Two, not one: a lone request that happens to come quickly once does not
/// cost the next one a pause.
const QUICK_CATCH_UPS_TO_PAUSE: u16 = 2;
/// The most quick catch-ups in a row a worker needs before it pauses, after
/// its pauses kept finding a lone request. Round trips (put one request,
/// wait for it, put the next) make every catch-up quick once the waiter
/// spins, yet a pause finds nothing to gain there, only the 4 µs lost; at
/// this limit a pause costs such a round trip 4 ns on average.
const MAX_QUICK_CATCH_UPS_TO_PAUSE: u16 = 1024;
/// `spin_loop` pauses between two readings of the clock in the catch-up
/// pause (about 0.1 µs here).
const PAUSES_PER_CLOCK_READ: u32 = 8;

/// What a worker remembers from one take to the next about how requests
/// arrive, so that its spin fits the stream.
#[derive(Debug)]
pub(crate) struct Pace {
    /// It ran a request since it started: a stream is likely to go on, so it
    /// spins before sleeping. A new worker, or one woken from sleep that
    /// finds nothing, sleeps at once.
    pub(crate) just_ran: bool,
    /// Quick catch-ups in a row (up to `to_pause`): each time the worker ran
    /// out of requests, the next came within [`QUICK_ROUNDS`]; or, after a
    /// pause, more than one was waiting at once. At `to_pause` the worker is
    /// close behind a stream and pauses ([`CATCH_UP_PAUSE`]) before it looks
    /// again.
    quick_catch_ups: u16,
    /// How many quick catch-ups in a row make it pause: from
    /// [`QUICK_CATCH_UPS_TO_PAUSE`], doubled (up to
    /// [`MAX_QUICK_CATCH_UPS_TO_PAUSE`]) each time a pause found no more
    /// than a lone request, back to the start when one found a run.
    to_pause: u16,
}

impl Pace {
    /// A worker's pace before its first request.
    pub(crate) fn new() -> Pace {
        Pace {
            just_ran: false,
            quick_catch_ups: 0,
            to_pause: QUICK_CATCH_UPS_TO_PAUSE,
        }
    }

    /// Records that the worker ran a request.
    pub(crate) fn ran(&mut self) {
        self.just_ran = true;
    }

    pub(crate) fn close_behind(&self) -> bool {
        self.quick_catch_ups >= self.to_pause
    }

    /// Records how a spin for work ended (`quick`, as [`spin_for_work`]
    /// returns it). A worker that was close behind paused first: if the
    /// pause found a run of requests, it paid off; if not, the worker waits
    /// for twice as many quick catch-ups before the next.
    pub(crate) fn caught_up(&mut self, quick: bool) {
        if self.close_behind() {
            self.to_pause = if quick {
                QUICK_CATCH_UPS_TO_PAUSE
            } else {
                (self.to_pause * 2).min(MAX_QUICK_CATCH_UPS_TO_PAUSE)
            };
        }
        self.quick_catch_ups = if quick {
            (self.quick_catch_ups + 1).min(self.to_pause)
        } else {
            0
        };
    }

    /// Records that the worker goes to sleep: whatever stream it was close
    /// behind has ended. What its pauses taught it stays.
    pub(crate) fn slept(&mut self) {
        self.quick_catch_ups = 0;
    }
}

/// Busy-waits a little for something to show up (`arrived`: a request, a
/// dismissal, a lifecycle move), first without looking for
/// [`CATCH_UP_PAUSE`] if the worker is close behind a stream. Returns
/// whether this was a quick catch-up; `queued` is read only after a pause.
/// The pause delays a dismissal or shutdown by as much at most: it runs
/// outside the take, which `dismiss` waits for.
pub(crate) fn spin_for_work(
    close_behind: bool,
    arrived: impl Fn() -> bool,
    queued: impl FnOnce() -> usize,
) -> bool {
    if close_behind {
        let start = Instant::now();
        while start.elapsed() < CATCH_UP_PAUSE {
            for _ in 0..PAUSES_PER_CLOCK_READ {
                std::hint::spin_loop();
            }
        }
    }
    for round in 0..SPIN_ROUNDS {
        if arrived() {
            // After a pause: the stream went on if more than a lone request
            // was there at once (one look at the putters' count per pause).
            // Otherwise: if it came quickly.
            return if close_behind {
                round == 0 && queued() >= 2
            } else {
                round < QUICK_ROUNDS
            };
        }
        if round < SPIN_BEFORE_YIELD {
            std::hint::spin_loop();
        } else {
            // Whatever comes during the busy wait came slowly (not quick).
            if round == SPIN_BEFORE_YIELD && busy_wait(&arrived) {
                return false;
            }
            std::thread::yield_now();
        }
    }
    false
}

/// Busy-waits for up to [`BUSY_SPIN`] for something to show up; whether it
/// did. The clock is read only here, after the quick rounds. Off under
/// shuttle, where each look is a scheduling point: a number of looks set
/// by the clock would make the schedules impossible to replay.
fn busy_wait(arrived: &impl Fn() -> bool) -> bool {
    if cfg!(any(loom, shuttle)) {
        return false;
    }
    let start = Instant::now();
    while start.elapsed() < BUSY_SPIN {
        for _ in 0..PAUSES_PER_CLOCK_READ {
            std::hint::spin_loop();
        }
        if arrived() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker pauses only after two quick catch-ups in a row, and any slow
    /// one (or a sleep) ends it: a lone quick request costs no pause.
    #[test]
    fn pace_pauses_only_after_two_quick_catch_ups_in_a_row() {
        let mut pace = Pace::new();
        assert!(!pace.just_ran);
        pace.ran();
        assert!(pace.just_ran);
        pace.caught_up(true);
        assert!(!pace.close_behind(), "one quick catch-up is not a stream");
        pace.caught_up(false);
        pace.caught_up(true);
        assert!(!pace.close_behind(), "a slow one in between starts over");
        pace.caught_up(true);
        assert!(pace.close_behind());
        for _ in 0..1000 {
            pace.caught_up(true);
        }
        assert!(pace.close_behind(), "the count saturates, it never wraps");
        pace.caught_up(false);
        assert!(!pace.close_behind());
    }

    /// Pauses that find a lone request (round trips) make the next pause
    /// need twice as many quick catch-ups, up to a limit; one that finds a
    /// run (a stream) brings it back to two. A sleep forgets the stream,
    /// not the lesson.
    #[test]
    fn pauses_that_find_a_lone_request_grow_rarer() {
        let mut pace = Pace::new();
        pace.ran();
        let quick_in_a_row = |pace: &mut Pace, n: u16| {
            for _ in 0..n {
                assert!(!pace.close_behind());
                pace.caught_up(true);
            }
            assert!(pace.close_behind());
        };
        // Each pause finds a lone request (not quick): the next needs twice
        // as many quick catch-ups, up to the limit.
        let mut needed = QUICK_CATCH_UPS_TO_PAUSE;
        for _ in 0..20 {
            quick_in_a_row(&mut pace, needed);
            pace.caught_up(false);
            needed = (needed * 2).min(MAX_QUICK_CATCH_UPS_TO_PAUSE);
        }
        assert_eq!(needed, MAX_QUICK_CATCH_UPS_TO_PAUSE);
        pace.slept();
        quick_in_a_row(&mut pace, needed);
        assert!(pace.close_behind(), "the limit holds");
        // This pause found a run: the stream is back, and so is the pace.
        pace.caught_up(true);
        assert!(
            pace.close_behind(),
            "a pause that paid off keeps it close behind"
        );
        pace.caught_up(false);
        pace.slept();
        quick_in_a_row(&mut pace, 4);
    }
}
