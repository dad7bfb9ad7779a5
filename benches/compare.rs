//! Side-by-side benchmarks: callpool and its peers on the same workloads, in
//! the same process, interleaved round by round (issue 3). This file runs
//! the workloads and prints what they measured.
//!
//! ```text
//! cargo bench --bench compare                 # full suite (a few minutes)
//! cargo bench --bench compare -- --quick      # every size /100, 1 round
//! CALLPOOL_BENCH_QUICK=1 cargo bench --bench compare
//! cargo bench --bench compare -- w1 w7        # only some workloads
//! cargo bench --bench compare -- w1-1 --system=callpool   # one table, one system
//! ```
//!
//! Systems live in `compare/systems/`, one file each, behind the `System`
//! trait; workloads in `compare/workloads/`, one file each. Every result
//! comes back to the submitting thread, which counts and sums them and
//! stops the whole suite on a mismatch.
//!
//! `docs/performance.md` explains the method and records a full run.

#[path = "compare/alloc.rs"]
mod alloc;
#[path = "compare/cfg.rs"]
mod cfg;
#[path = "compare/harness.rs"]
mod harness;
#[path = "compare/kinds.rs"]
mod kinds;
#[path = "compare/peers.rs"]
mod peers;
#[path = "compare/procfs.rs"]
mod procfs;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/systems/mod.rs"]
mod systems;
#[path = "compare/targets.rs"]
mod targets;
#[path = "compare/work.rs"]
mod work;
#[path = "compare/workloads/mod.rs"]
mod workloads;

use std::time::Instant;

use cfg::Cfg;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

fn main() {
    let cfg = Cfg::from_env();
    let (model, cpus) = procfs::machine();
    let started = Instant::now();
    println!(
        "# callpool side-by-side benchmarks{}\n\nMachine: {cpus} CPU(s), {model}; rustc release profile.\n",
        if cfg.quick {
            " (QUICK MODE: sizes /100, not for judging speed)"
        } else {
            ""
        }
    );
    let mut tables = Vec::new();
    for w in workloads::ALL {
        if !cfg.wants(w.id) {
            continue;
        }
        eprintln!(
            "== {} ({:.0} s so far)",
            w.id,
            started.elapsed().as_secs_f64()
        );
        let before = tables.len();
        (w.run)(&cfg, &mut tables);
        for t in &tables[before..] {
            println!("{}", t.markdown());
        }
    }
    println!("{}", targets::summary(&tables, cfg.quick));
    if !cfg.quick {
        for w in workloads::ALL {
            (w.files)(&cfg, &tables);
        }
    }
    println!("\nTotal time: {:.0} s", started.elapsed().as_secs_f64());
}
