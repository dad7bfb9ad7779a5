//! W2 latency-bound: requests that sleep 1 ms on 64 workers; how close each
//! system comes to keeping all workers busy.

use std::time::Duration;

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::ms;
use crate::kinds::Batch;
use crate::report::{interleave, num, Obs, Table};
use crate::targets::efficiency;
use crate::work::Work;

pub const W2: Workload = Workload {
    id: "w2",
    run,
    targets: |tables, lines| efficiency(tables, "w2", lines),
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(5_000);
    let workers = 64;
    // `nap` returns its argument: the sum of 0..n.
    let want = n * n.saturating_sub(1) / 2;
    let ideal = Duration::from_millis(n) / workers as u32;
    let b = Batch {
        workers,
        n,
        work: Work::Nap,
        want,
        settle: None,
    };
    // How requests are built does not matter next to a 1 ms sleep.
    let systems = entries(
        Variants::Skip,
        |s| s.batch(b),
        move |r| {
            let d = r.elapsed;
            Obs::new(ms(d)).with(
                "efficiency %",
                100.0 * ideal.as_secs_f64() / d.as_secs_f64(),
            )
        },
    );
    let mut t = interleave(
        "w2",
        format!("W2 latency-bound: {n} requests sleeping 1 ms, {workers} workers"),
        "ms",
        cfg.rounds(5),
        systems,
    );
    t.notes.push(format!(
        "Efficiency = ideal / measured, ideal = {n} x 1 ms / {workers} = {} ms. \
         `thread::sleep(1 ms)` itself takes longer than 1 ms (timer slack), so no system reaches 100%.",
        num(ms(ideal))
    ));
    out.push(t);
}
