//! W8 work that makes work (issue 11): one task, run by the pool, adds n
//! trivial tasks (square a u64) from inside it; every result is summed.
//! On 1, 2 and 4 workers.

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::ns_per;
use crate::kinds::Fanout;
use crate::report::{interleave, median, num, ratio, Obs, Table};
use crate::targets::{table, verdict};
use crate::work::{square, sum_of};

pub const W8: Workload = Workload {
    id: "w8",
    run,
    targets,
    ..Workload::PLAIN
};

/// One table per worker count.
const TABLES: [(&str, usize); 3] = [("w8-1", 1), ("w8-2", 2), ("w8-4", 4)];

/// Issue 11: callpool within this factor of rayon's time.
const MAX_OVER_RAYON: f64 = 1.5;

/// Issue 11 asks callpool to be "well ahead" of the old way (a handle
/// captured by the parent, one `put_request` per child); read here as the
/// old way taking at least this factor of callpool's time.
const MIN_SHARED_OVER_CALLPOOL: f64 = 1.25;

/// The floor that sends each result back in its child's box
/// (`systems/floor_fanout.rs`).
const BOX_FLOOR: &str = "floor/crossbeam+box";

/// How long the parent took to put its children, per child: the rest of
/// a run is the children's runs and their results' way back.
const PARENT_COLUMN: &str = "parent's puts ns/task";

/// Child tasks per run; `--w8-n=N` sets another (for profiling).
fn size(cfg: &Cfg) -> u64 {
    cfg.flag("--w8-n=").unwrap_or(cfg.size(1_000_000))
}

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = size(cfg);
    let want = sum_of(n, square);
    for (id, workers) in TABLES {
        if !cfg.wants(id) {
            continue;
        }
        let f = Fanout { workers, n, want };
        let mut t = interleave(
            id,
            format!(
                "W8 work that makes work: 1 task adds {n} trivial tasks (square a u64), \
                 {workers} worker(s)"
            ),
            "ns/task",
            cfg.rounds(5),
            entries(
                Variants::Include,
                |s| s.fanout(f),
                move |r| {
                    let obs = r.blocks(Obs::new(ns_per(r.elapsed, n)), n);
                    match r.put {
                        Some(put) => obs.with(PARENT_COLUMN, ns_per(put, n)),
                        None => obs,
                    }
                },
            ),
        );
        t.notes.push(
            "ns/task = wall time from putting the parent until every child's result was summed, \
             / n. callpool: one `WorkRequest::with_context` parent calls `cx.put` per child, \
             results summed by the callbacks on the thread in `wait`; callpool/shared-queue: \
             the parent holds an `Arc<ThreadPool>` clone and calls `put_request` per child; \
             threadpool: the parent holds a pool clone and calls `execute` per child, results \
             sent on an mpsc channel and summed by the submitting thread; rayon: `install` + \
             `scope`, one spawned task spawns the children into the scope, each adds into its \
             worker's own cache-padded count and sum (no shared atomic), summed after the scope; \
             floor, floor/crossbeam: bare threads on one job channel (flume, crossbeam), the \
             parent sends each child's box into it, the thread that runs a child frees the box \
             and sends the bare result back; floor/crossbeam+box: the same on crossbeam, each \
             result sent back in its child's box, which the submitting thread frees; \
             callpool/execute: the parent, put with `execute_with_context`, adds each child \
             with `cx.execute_with_context`, and each child adds into its worker's own count \
             and sum, as rayon's do; nothing comes back to the thread in `wait`. \
             Blocks per 1k req are per 1,000 children. parent's puts ns/task: from putting \
             the parent until its loop of puts ended (one clock read after the loop), / n; \
             the rest of ns/task is the children running and their results coming back, \
             which overlap the puts when there is a second worker."
                .into(),
        );
        out.push(t);
    }
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    for (id, _) in TABLES {
        let Some(t) = table(tables, id) else { continue };
        if !t.ran("callpool") {
            continue;
        }
        // One part per ratio whose two systems ran (`--system` may leave
        // some out): the ratio's median, its rounds, and the target if any.
        let mut parts = vec![format!(
            "{id} (issue 11): callpool {} ns/task",
            num(t.median_of("callpool"))
        )];
        let mut part = |num_sys: &str, den_sys: &str, target: Option<(&str, f64)>| {
            if !t.ran(num_sys) || !t.ran(den_sys) {
                return;
            }
            let rounds = t.ratios_to(num_sys, den_sys);
            let m = median(&rounds);
            let by_round = rounds
                .iter()
                .map(|&x| ratio(x))
                .collect::<Vec<_>>()
                .join(" ");
            let target = target.map_or(String::new(), |(op, bound)| {
                let met = |m: f64| if op == "≤" { m <= bound } else { m >= bound };
                format!(" (target {op} {bound:.2}: {})", verdict(m, met))
            });
            parts.push(format!(
                "{num_sys} ÷ {den_sys} = {m:.2} (rounds: {by_round}){target}"
            ));
        };
        part("callpool", "rayon", Some(("≤", MAX_OVER_RAYON)));
        part(
            "callpool/shared-queue",
            "callpool",
            Some(("≥", MIN_SHARED_OVER_CALLPOOL)),
        );
        part("threadpool", "callpool", None);
        // What rayon's lead is made of: the bare hand-off with each result
        // sent back in its child's box (as callpool must, to run the
        // callback on the polling thread) against rayon, and callpool
        // against that floor.
        part(BOX_FLOOR, "rayon", None);
        part("callpool", BOX_FLOOR, None);
        // Work nobody hears, summed where it runs as rayon's is: the same
        // target, for the way of writing W8 that matches rayon's.
        part("callpool/execute", "rayon", Some(("≤", MAX_OVER_RAYON)));
        lines.push(parts.join("; "));
    }
}
