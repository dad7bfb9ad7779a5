//! W5 memory: bytes per request while requests queue behind 1 blocked
//! worker, counted by the bench's allocator.

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::kinds::{PendingJob, HELD_COLUMN};
use crate::report::{interleave, num, Table};
use crate::targets::{table, verdict};

pub const W5: Workload = Workload {
    id: "w5",
    run,
    targets,
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000_000);
    let job = PendingJob {
        workers: 1,
        n,
        count_memory: true,
    };
    let mut t = interleave(
        "w5",
        format!("W5 memory: {n} requests queued behind 1 blocked worker"),
        "bytes/request",
        cfg.rounds(2),
        entries(
            Variants::Include,
            |s| s.pending(job),
            move |p| p.memory_obs(n),
        ),
    );
    t.notes.push(
        "Bytes/request: peak of (bytes allocated - bytes freed), counted by the bench's global \
         allocator from just before the first put until the last one returned, divided by the \
         number of requests. It counts requested sizes, not malloc's rounding or headers; the \
         malloc-held column counts what glibc's malloc held for the same blocks (usable size, \
         rounded up, plus its 8-byte size word per block). `callpool/make_requests` includes \
         the `Vec<WorkRequest>` that `make_requests` returns."
            .into(),
    );
    out.push(t);
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    let Some(t) = table(tables, "w5") else { return };
    let cp = t.median_of("callpool");
    let fl = t.median_of("floor");
    let cp_held = t.extra_median("callpool", HELD_COLUMN);
    let fl_held = t.extra_median("floor", HELD_COLUMN);
    lines.push(format!(
        "W5: callpool {} B/req, floor {} B/req, ratio {:.2} (target ≤ 1.30: {}); \
         as malloc holds them: {} and {} B/req, ratio {:.2} ({})",
        num(cp),
        num(fl),
        cp / fl,
        verdict(cp / fl, |r| r <= 1.3),
        num(cp_held),
        num(fl_held),
        cp_held / fl_held,
        verdict(cp_held / fl_held, |r| r <= 1.3)
    ));
}
