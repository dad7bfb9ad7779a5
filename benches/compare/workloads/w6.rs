//! W6 contention: 2 threads each putting trivial requests into the same
//! pool of 2 workers, each taking back its own results.

use std::time::Duration;

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::ns_per;
use crate::report::{interleave, median, num, Obs, Table};
use crate::targets::{table, verdict};

pub const W6: Workload = Workload {
    id: "w6",
    run,
    targets,
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(500_000);
    let total = 2 * n;
    let mut t = interleave(
        "w6",
        format!("W6 contention: 2 threads each putting {n} trivial requests, 2 workers"),
        "ns/request",
        cfg.rounds(5),
        entries(
            Variants::Include,
            |s| s.contention(n),
            move |d: Duration| Obs::new(ns_per(d, total)),
        ),
    );
    t.notes.push(
        "callpool: one handle per submitting thread (`new_handle`), each thread puts its requests \
         and then `wait`s on its own handle, so each thread runs only its own callbacks. Peers: \
         one result channel per thread; the floor routes each result by a channel index carried \
         with the closure. ns/request = wall time / (2 x n)."
            .into(),
    );
    out.push(t);
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    let Some(t) = table(tables, "w6") else { return };
    let r = median(&t.per_round(|v| v("callpool") / v("floor")));
    lines.push(format!(
        "W6: callpool {} ns/req, callpool ÷ floor = {r:.2} (target ≤ 1.30: {})",
        num(t.median_of("callpool")),
        verdict(r, |r| r <= 1.3)
    ));
}
