//! W1 overhead: trivial requests (square a u64) put one after another, then
//! all results collected, on 1, 2 and 4 workers; and the chart of it.

use std::time::Duration;

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::ns_per;
use crate::kinds::Batch;
use crate::report::{self, interleave, median, num, Obs, Table};
use crate::targets::{table, verdict};
use crate::work::{square, sum_of, Work};

pub const W1: Workload = Workload {
    id: "w1",
    run,
    targets,
    files,
};

/// The side columns of the systems that time their puts apart from the
/// wait after them.
const PUT_COLUMN: &str = "put ns/req";
const WAIT_COLUMN: &str = "wait ns/req";

/// One table per worker count.
const TABLES: [(&str, usize); 3] = [("w1-1", 1), ("w1-2", 2), ("w1-4", 4)];

/// Requests per run; `--w1-n=N` sets another (for profiling under
/// callgrind).
fn size(cfg: &Cfg) -> u64 {
    cfg.flag("--w1-n=").unwrap_or(cfg.size(1_000_000))
}

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = size(cfg);
    let want = sum_of(n, square);
    for (id, workers) in TABLES {
        if !cfg.wants(id) {
            continue;
        }
        let b = Batch {
            workers,
            n,
            work: Work::Square,
            want,
            settle: cfg.flag("--w1-settle-ms=").map(Duration::from_millis),
        };
        let systems = entries(
            Variants::Include,
            |s| s.batch(b),
            move |r| {
                let mut obs = r.blocks(Obs::new(ns_per(r.elapsed, n)), n);
                if let Some(put) = r.put {
                    obs = obs.with(PUT_COLUMN, ns_per(put, n));
                }
                if let Some(wait) = r.wait {
                    obs = obs.with(WAIT_COLUMN, ns_per(wait, n));
                }
                obs
            },
        );
        out.push(interleave(
            id,
            format!("W1 overhead: {n} trivial requests (square a u64), {workers} worker(s)"),
            "ns/request",
            cfg.rounds(5),
            systems,
        ));
    }
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    for (id, _) in TABLES {
        let Some(t) = table(tables, id) else { continue };
        let best_peer = median(&t.per_round(|v| v("threadpool").min(v("rayon")) / v("callpool")));
        let cp_over_floor = median(&t.per_round(|v| v("callpool") / v("floor")));
        lines.push(format!(
            "{id}: callpool {} ns/req; best of threadpool/rayon ÷ callpool = {:.2} (target ≥ 1.00: {}); \
             callpool ÷ floor = {:.2} (target ≤ 1.30: {})",
            num(t.median_of("callpool")),
            best_peer,
            verdict(best_peer, |r| r >= 1.0),
            cp_over_floor,
            verdict(cp_over_floor, |r| r <= 1.3),
        ));
        // Issue 10: what a ticket costs against a callback, per request.
        if t.ran("callpool/submit") {
            let ticket = median(&t.ratios("callpool/submit"));
            let others: Vec<String> = ["callpool/as_completed", "callpool/map"]
                .into_iter()
                .filter(|name| t.ran(name))
                .map(|name| format!("{name} ÷ callpool = {:.2}", median(&t.ratios(name))))
                .collect();
            lines.push(format!(
                "{id}: callpool/submit ÷ callpool = {ticket:.2} (issue 10 target ≤ 1.50: {}){}{}",
                verdict(ticket, |r| r <= 1.5),
                if others.is_empty() { "" } else { "; " },
                others.join("; "),
            ));
        }
        // Issue 11: the batch put against a loop of puts of the same
        // requests, end to end and the puts alone.
        let (batch, each) = ("callpool/put_batch", "callpool/make_requests");
        if t.ran(batch) && t.ran(each) {
            let whole = median(&t.per_round(|v| v(batch) / v(each)));
            let put = t.extra_median(batch, PUT_COLUMN) / t.extra_median(each, PUT_COLUMN);
            lines.push(format!(
                "{id}: {batch} ÷ {each} = {whole:.2} end to end (issue 11 target < 1.00: {}); \
                 the puts alone {} against {} ns/req, {put:.2} ({}); the waits after them {} \
                 against {} ns/req",
                verdict(whole, |r| r < 1.0),
                num(t.extra_median(batch, PUT_COLUMN)),
                num(t.extra_median(each, PUT_COLUMN)),
                verdict(put, |r| r < 1.0),
                num(t.extra_median(batch, WAIT_COLUMN)),
                num(t.extra_median(each, WAIT_COLUMN)),
            ));
        }
        if id == "w1-1" {
            let v = t.median_of("callpool");
            lines.push(format!(
                "w1-1: callpool with 1 worker {} ns/req (target < 100: {})",
                num(v),
                verdict(v, |v| v < 100.0)
            ));
        }
    }
}

/// `docs/perf-w1.svg`: ns per request against workers, one line per
/// system, when all three tables ran.
fn files(cfg: &Cfg, tables: &[Table]) {
    let w1: Vec<&Table> = tables.iter().filter(|t| t.id.starts_with("w1-")).collect();
    if w1.len() != TABLES.len() {
        return;
    }
    let names: Vec<String> = w1[0].rows.iter().map(|r| r.name.clone()).collect();
    let series: Vec<(String, Vec<(usize, f64)>)> = names
        .iter()
        .map(|name| {
            let pts = TABLES
                .iter()
                .zip(&w1)
                .map(|(&(_, w), t)| (w, t.median_of(name)))
                .collect();
            (name.clone(), pts)
        })
        .collect();
    let svg = report::svg_chart(
        &format!("W1: {} trivial requests, ns per request", size(cfg)),
        &series,
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/perf-w1.svg");
    match std::fs::write(path, svg) {
        Ok(()) => println!("Chart written to docs/perf-w1.svg"),
        Err(e) => eprintln!("could not write {path}: {e}"),
    }
}
