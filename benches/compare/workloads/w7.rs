//! W7 latency: round trips of one request at a time on 1 worker, and how
//! often each side blocks per round trip.

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::report::{interleave, median, num, Table};
use crate::targets::{table, verdict};

pub const W7: Workload = Workload {
    id: "w7",
    run,
    targets,
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(100_000);
    let mut t = interleave(
        "w7",
        format!("W7 latency: {n} round trips (put one request, wait for it), 1 worker"),
        "us/round trip",
        cfg.rounds(3),
        entries(Variants::Include, |s| s.round_trips(n), |o| o),
    );
    t.notes.push(
        "Blocks/rt: growth of `voluntary_ctxt_switches` (each one a block and a later wake-up) \
         of the submitting thread, and summed over the other threads (the worker), per round \
         trip. CPU us/rt: growth of the first field of `/proc/self/task/TID/schedstat` (ns on a \
         CPU), summed over every thread of the process, per round trip: a side that spins \
         instead of blocking pays here. callpool: `put_request` then `wait`; peers: submit then \
         `recv`."
            .into(),
    );
    out.push(t);
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    let Some(t) = table(tables, "w7") else { return };
    let r = median(&t.per_round(|v| v("callpool") / v("floor")));
    let sb = t.extra_median("callpool", "submitter blocks/rt");
    let wb = t.extra_median("callpool", "worker blocks/rt");
    lines.push(format!(
        "W7: callpool {} us/rt, callpool ÷ floor = {r:.2} (target ≤ 1.30: {}); \
         blocks per round trip: submitter {}, worker {} (target ≤ 1 each: {})",
        num(t.median_of("callpool")),
        verdict(r, |r| r <= 1.3),
        num(sb),
        num(wb),
        verdict(sb.max(wb), |b| b <= 1.05)
    ));
}
