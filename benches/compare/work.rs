//! What the requests compute: the work functions every system runs, and
//! `Work`, which names one so a system picks it once per run.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

pub fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

pub fn nap(x: u64) -> u64 {
    thread::sleep(Duration::from_millis(1));
    x
}

/// Iterations of `spin` that take about 50 us here (set by calibration).
pub static SPIN_ITERS: AtomicU64 = AtomicU64::new(1);

pub fn spin(x: u64) -> u64 {
    let mut v = x ^ 0x9E37_79B9_7F4A_7C15;
    for _ in 0..black_box(SPIN_ITERS.load(Relaxed)) {
        v = v
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        v ^= v >> 29;
    }
    v
}

/// Sets `SPIN_ITERS` so that one `spin` takes about 50 us; returns the time
/// one then takes.
pub fn calibrate_spin() -> Duration {
    let time = |iters: u64| {
        SPIN_ITERS.store(iters, Relaxed);
        let mut best = Duration::MAX;
        for i in 0..20 {
            let t = Instant::now();
            black_box(spin(i));
            best = best.min(t.elapsed());
        }
        best
    };
    let probe = 20_000;
    let d = time(probe);
    let iters = ((probe as f64) * 50e-6 / d.as_secs_f64()).max(1.0) as u64;
    SPIN_ITERS.store(iters, Relaxed);
    time(iters)
}

pub fn sum_of(n: u64, f: impl Fn(u64) -> u64) -> u64 {
    (0..n).fold(0u64, |s, i| s.wrapping_add(f(i)))
}

/// One of the work functions, as data. A system turns it back into the
/// function item with `with_work!` once per run, so each timed loop is
/// compiled for that function (inlined, nothing captured) rather than
/// calling through a pointer per request.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    Square,
    Nap,
    Spin,
}

/// `with_work!(work, |f| expr)`: evaluates `expr` with `f` bound to the
/// function item `work` names (a zero-sized, `Copy` value).
macro_rules! with_work {
    ($work:expr, |$f:ident| $body:expr) => {
        match $work {
            $crate::work::Work::Square => {
                let $f = $crate::work::square;
                $body
            }
            $crate::work::Work::Nap => {
                let $f = $crate::work::nap;
                $body
            }
            $crate::work::Work::Spin => {
                let $f = $crate::work::spin;
                $body
            }
        }
    };
}
pub(crate) use with_work;
