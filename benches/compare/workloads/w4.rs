//! W4 resizing: a pool of 16 shrunk to 2 while idle and while busy, and the
//! CPU an idle pool of 16 uses.

use std::time::Duration;

use super::{entries, Variants, Workload};
use crate::cfg::Cfg;
use crate::kinds::{Shrink, SHRINK_TIMEOUT};
use crate::report::{self, interleave, num, Table};
use crate::targets::{table, verdict};

pub const W4: Workload = Workload {
    id: "w4",
    run,
    targets,
    ..Workload::PLAIN
};

const SHRINK: Shrink = Shrink { from: 16, to: 2 };

/// How long after the shrink the busy workers' requests end.
const BUSY_FOR: Duration = Duration::from_millis(20);

fn run(cfg: &Cfg, out: &mut Vec<Table>) {
    let rounds = cfg.rounds(5);
    let mut t = interleave(
        "w4-idle",
        "W4 resizing: 16 idle workers shrunk to 2, time until 14 threads have exited".into(),
        "us",
        rounds,
        entries(Variants::Skip, |s| s.idle_shrink(SHRINK), |o| o),
    );
    t.notes.push(format!(
        "callpool: `dismiss_workers(14)`; threadpool: `set_num_threads(2)`; floor: 16 bare \
         threads each blocked on its own channel, 14 channels closed at once (the cost of \
         waking and ending 14 threads, with no pool around them). Measured by polling \
         the entries of /proc/self/task. A value of {} us means the threads had not exited \
         when the measurement gave up. `threads() = 2 after`: when callpool's own count of \
         running threads (`ThreadPool::threads`, decremented as a worker leaves its loop) \
         reached 2; the kernel then still has to tear the threads down.",
        SHRINK_TIMEOUT.as_micros()
    ));
    out.push(t);
    let mut t = interleave(
        "w4-busy",
        "W4 resizing: 16 busy workers shrunk to 2, time beyond the end of their request".into(),
        "us",
        rounds,
        entries(Variants::Skip, |s| s.busy_shrink(SHRINK, BUSY_FOR), |o| o),
    );
    t.notes.push(
        "Each worker is inside a request that ends 20 ms after the shrink (it sleeps until that \
         instant, so the figure includes the sleep's own overshoot); the value is the time from \
         that end until the 14 surplus threads are gone from /proc/self/task."
            .into(),
    );
    out.push(t);
    let idle_for = Duration::from_millis(cfg.size(2_000));
    let mut t = interleave(
        "w4-cpu",
        format!(
            "W4 idle: CPU used by an idle pool of 16 over {} s",
            idle_for.as_secs_f64()
        ),
        "us CPU",
        cfg.rounds(2),
        entries(Variants::Skip, |s| s.idle_cpu(SHRINK.from, idle_for), |o| o),
    );
    t.notes.push(
        "CPU: sum over the pool's threads of the first field of /proc/self/task/TID/schedstat \
         (ns on CPU); wake-ups: growth of voluntary + nonvoluntary context switches in \
         /proc/self/task/TID/status; ticks: utime+stime of the whole process from \
         /proc/self/stat (1 tick = 10 ms)."
            .into(),
    );
    out.push(t);
}

fn targets(tables: &[Table], lines: &mut Vec<String>) {
    if let Some(t) = table(tables, "w4-idle") {
        let v = t.median_of("callpool");
        let max = t
            .row("callpool")
            .map_or(f64::NAN, |r| report::min_max(&r.values).1);
        lines.push(format!(
            "W4 idle shrink: callpool median {} us, max {} us (target ≤ 1000 us: {})",
            num(v),
            num(max),
            verdict(max, |us| us <= 1000.0)
        ));
    }
    if let Some(t) = table(tables, "w4-busy") {
        let v = t.median_of("callpool");
        let floor = table(tables, "w4-idle").map_or(f64::NAN, |t| t.median_of("floor"));
        lines.push(format!(
            "W4 busy shrink: callpool's 14 threads gone {} us after their request ended \
             (target: at the end of the request; ending 14 bare threads takes {} us here, \
             the floor row of the idle shrink)",
            num(v),
            num(floor)
        ));
    }
    if let Some(t) = table(tables, "w4-cpu") {
        let cpu = t.median_of("callpool");
        let wakes = t.extra_median("callpool", "wake-ups (ctx switches)");
        lines.push(format!(
            "W4 idle CPU: callpool's 16 idle threads used {} us CPU and woke {} times \
             (target: no measurable CPU, no wake-up: {})",
            num(cpu),
            num(wakes),
            verdict(wakes, |w| w == 0.0)
        ));
    }
}
