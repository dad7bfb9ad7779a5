//! Scale (workers): create many workers, then dismiss them; time, heap and
//! RSS per worker.

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::harness::ms;
use crate::kinds::Spawned;
use crate::report::{interleave, Obs, Table};

pub const SCALE_WORKERS: Workload = Workload {
    id: "scale-workers",
    run,
    ..Workload::PLAIN
};

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let n = cfg.size(1_000) as usize;
    let obs = move |s: Spawned| {
        Obs::new(ms(s.create + s.dismiss))
            .with("create ms", ms(s.create))
            .with("dismiss ms", ms(s.dismiss))
            .with("heap B/worker", s.heap as f64 / n as f64)
            .with("RSS KiB/worker", s.rss as f64 / 1024.0 / n as f64)
    };
    let mut t = interleave(
        "scale-workers",
        format!("Scale: create {n} workers, then dismiss them"),
        "ms",
        cfg.rounds(3),
        entries(Variants::Include, |s| s.spawn_workers(n), obs),
    );
    t.notes.push(
        "Create: from the call until /proc/self/task shows every new thread. Dismiss: \
         callpool `dismiss_workers(n)` + `join_all_dismissed_workers()`, threadpool and rayon: \
         drop the pool, floor: close its queue and join; each until the threads are gone from \
         /proc/self/task. Heap: net bytes allocated while creating (counting allocator); RSS: \
         growth of VmRSS."
            .into(),
    );
    out.push(t);
}
