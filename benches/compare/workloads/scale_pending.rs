//! Scale (pending): many requests with callbacks queued behind 2 blocked
//! workers; time to put them and time to drain them.

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::kinds::PendingJob;
use crate::report::{interleave, Table};

pub const SCALE_PENDING: Workload = Workload {
    id: "scale-pending",
    run,
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000_000);
    let job = PendingJob {
        workers: 2,
        n,
        count_memory: false,
    };
    let mut t = interleave(
        "scale-pending",
        format!(
            "Scale: {n} pending requests with callbacks (2 blocked workers), time to put and drain"
        ),
        "ms",
        cfg.rounds(3),
        entries(
            Variants::Include,
            |s| s.pending(job),
            move |p| p.time_obs(n),
        ),
    );
    t.notes.push(
        "Put: all requests queued while both workers are blocked. Drain: from opening the gate \
         until every result was handled (callbacks run / results received) on this thread."
            .into(),
    );
    out.push(t);
}
