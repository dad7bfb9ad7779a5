//! The summary against the targets of issue 3: each workload states its own
//! targets (`Workload::targets`); this puts them in issue 3's order under
//! one heading.

use crate::report::{median, min_max, num, ratio, Table, BASELINE, FLOORS};
use crate::workloads::{self, Workload};

/// The summary's order of workloads: the headline targets (overhead, then
/// memory) first; workloads not named here follow in run order.
const ORDER: &[&str] = &["w1", "w5", "w4", "w6", "w7", "w2", "w3"];

/// A target's verdict on `value`, which `meets` judges: "not run" when the
/// value is NaN (a system it needs was left out by `--system`).
pub fn verdict(value: f64, meets: impl FnOnce(f64) -> bool) -> &'static str {
    if value.is_nan() {
        "not run"
    } else if meets(value) {
        "met"
    } else {
        "MISSED"
    }
}

/// The table `id` of this run, if it ran.
pub fn table<'t>(tables: &'t [Table], id: &str) -> Option<&'t Table> {
    tables.iter().find(|t| t.id == id)
}

/// W2's and W3's target: callpool keeps its workers as busy as the floor.
pub fn efficiency(tables: &[Table], id: &str, lines: &mut Vec<String>) {
    let Some(t) = table(tables, id) else { return };
    let cp = t.extra_median("callpool", "efficiency %");
    let fl = t.extra_median("floor", "efficiency %");
    lines.push(format!(
        "{}: efficiency callpool {}%, floor {}%, callpool ÷ floor = {:.3} (target ≥ 0.97: {})",
        id.to_uppercase(),
        num(cp),
        num(fl),
        cp / fl,
        verdict(cp / fl, |r| r >= 0.97)
    ));
}

pub fn summary(tables: &[Table], quick: bool) -> String {
    let mut s = String::from("## Targets (issue 3), from this run\n\n");
    if quick {
        s.push_str("QUICK MODE: sizes are 100x smaller; these verdicts mean nothing.\n\n");
    }
    let mut order: Vec<&Workload> = workloads::ALL.to_vec();
    order.sort_by_key(|w| {
        ORDER
            .iter()
            .position(|&id| id == w.id)
            .unwrap_or(ORDER.len())
    });
    for w in order {
        let mut lines = Vec::new();
        (w.targets)(tables, &mut lines);
        for line in lines {
            s.push_str("- ");
            s.push_str(&line);
            s.push('\n');
        }
    }
    s.push_str(&floors(tables));
    s
}

/// Tables whose floor target in issue 3 is callpool ÷ floor ≤ 1.30 (W2 and
/// W3 compare efficiencies instead, ≥ 0.97).
fn floor_target(id: &str) -> bool {
    id.starts_with("w1-") || ["w5", "w6", "w7"].contains(&id)
}

/// Median and min – max of per-round ratios, as "0.80 (0.75 – 0.91)".
fn spread(v: &[f64]) -> String {
    let (lo, hi) = min_max(v);
    format!("{} ({} – {})", ratio(median(v)), ratio(lo), ratio(hi))
}

/// Issue 13: every table's callpool ÷ floor next to callpool ÷
/// floor/crossbeam (and the floors against each other), issue 3's floor
/// targets read against the crossbeam floor too, and the batch put against
/// the crossbeam floor.
fn floors(tables: &[Table]) -> String {
    let [flume, crossbeam] = FLOORS;
    let mut s = format!(
        "\n## Against the two floors (issue 13), from this run\n\n\
         Medians of the per-round ratios, min – max in brackets. `{flume}`: the bare \
         hand-off on flume; `{crossbeam}`: the same on crossbeam-channel.\n\n"
    );
    for t in tables {
        // Tables without both rows, or whose ratios are all 0 / 0 (idle CPU).
        if FLOORS
            .iter()
            .all(|f| median(&t.ratios_to(BASELINE, f)).is_nan())
        {
            continue;
        }
        let mut parts: Vec<String> = FLOORS
            .iter()
            .filter(|f| t.ran(f))
            .map(|f| format!("{BASELINE} ÷ {f} = {}", spread(&t.ratios_to(BASELINE, f))))
            .collect();
        if t.ran(flume) && t.ran(crossbeam) {
            parts.push(format!(
                "{crossbeam} ÷ {flume} = {}",
                spread(&t.ratios_to(crossbeam, flume))
            ));
            if floor_target(t.id) {
                let r = median(&t.ratios_to(BASELINE, crossbeam));
                parts.push(format!(
                    "issue 3's ≤ 1.30 against {crossbeam}: {}",
                    verdict(r, |r| r <= 1.3)
                ));
            } else if ["w2", "w3"].contains(&t.id) {
                let e = t.extra_median(BASELINE, "efficiency %")
                    / t.extra_median(crossbeam, "efficiency %");
                parts.push(format!(
                    "efficiency {BASELINE} ÷ {crossbeam} = {e:.3} (≥ 0.97: {})",
                    verdict(e, |e| e >= 0.97)
                ));
            }
        }
        s.push_str(&format!("- {}: {}\n", t.id, parts.join("; ")));
    }
    // The ways of putting many requests at once against the cheapest bare
    // hand-off (issue 13: below it): the batch put (callbacks per request)
    // and `map` (every input at once, in chunks).
    for t in tables {
        for batch in ["callpool/put_batch", "callpool/map"] {
            if !t.ran(batch) || !t.ran(crossbeam) {
                continue;
            }
            let r = t.ratios_to(batch, crossbeam);
            let below = r.iter().filter(|&&x| x < 1.0).count();
            s.push_str(&format!(
                "- {}: {batch} {} ns/req, {crossbeam} {} ns/req; {batch} ÷ {crossbeam} = {} \
                 (below in {below} of {} rounds; issue 13 target < 1.00: {})\n",
                t.id,
                num(t.median_of(batch)),
                num(t.median_of(crossbeam)),
                spread(&r),
                r.len(),
                verdict(median(&r), |m| m < 1.0)
            ));
        }
    }
    s
}
