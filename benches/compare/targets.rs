//! The summary against the targets of issue 3: each workload states its own
//! targets (`Workload::targets`); this puts them in issue 3's order under
//! one heading.

use crate::report::{num, Table};
use crate::workloads::{self, Workload};

/// The summary's order of workloads: the headline targets (overhead, then
/// memory) first; workloads not named here follow in run order.
const ORDER: &[&str] = &["w1", "w5", "w4", "w6", "w7", "w2", "w3"];

pub fn verdict(ok: bool) -> &'static str {
    if ok {
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
        verdict(cp / fl >= 0.97)
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
    s
}
