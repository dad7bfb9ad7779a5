//! W3 CPU-bound: requests of about 50 us of arithmetic on 2 workers, each
//! round also run serially on this thread as the yardstick of efficiency.

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::{check, ms};
use crate::kinds::Batch;
use crate::report::{interleave, num, Entry, Obs, Table};
use crate::targets::efficiency;
use crate::work::{calibrate_spin, spin, sum_of, Work, SPIN_ITERS};

pub const W3: Workload = Workload {
    id: "w3",
    run,
    targets: |tables, lines| efficiency(tables, "w3", lines),
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(20_000);
    let workers = 2;
    let one = calibrate_spin();
    let want = sum_of(n, spin);
    let serial_ms = Cell::new(f64::NAN);
    let serial = &serial_ms;
    // Not a system: the same work without a pool, first in every round so
    // that each system is compared with the serial time of its own round.
    let mut systems: Vec<Entry<'_>> = vec![(
        "serial (no pool)",
        Box::new(move || {
            let t = Instant::now();
            let sum = sum_of(n, spin);
            let d = t.elapsed();
            check("serial", n, n, sum, want);
            serial.set(ms(d));
            Obs::new(ms(d)).with("efficiency %", 100.0 / workers as f64)
        }),
    )];
    let b = Batch {
        workers,
        n,
        work: Work::Spin,
        want,
        settle: None,
    };
    // How requests are built does not matter next to 50 us of work.
    systems.extend(entries(
        Variants::Skip,
        |s| s.batch(b),
        move |r| {
            let d = r.elapsed;
            Obs::new(ms(d)).with(
                "efficiency %",
                100.0 * serial.get() / workers as f64 / ms(d),
            )
        },
    ));
    let mut t = interleave(
        "w3",
        format!("W3 CPU-bound: {n} requests of ~50 us of arithmetic, {workers} workers"),
        "ms",
        cfg.rounds(3),
        systems,
    );
    t.notes.push(format!(
        "One request: {} iterations of a multiply-xorshift loop, {} us at calibration. \
         Efficiency = (serial time of the same round / {workers}) / measured.",
        SPIN_ITERS.load(Relaxed),
        num(one.as_secs_f64() * 1e6)
    ));
    out.push(t);
}
