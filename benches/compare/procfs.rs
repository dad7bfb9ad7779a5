//! What the benchmark reads from `/proc` (Linux only, no libc crate).

use std::collections::HashMap;
use std::fs;

/// Threads of this process: entries of `/proc/self/task`.
pub fn task_count() -> usize {
    fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// This thread's id.
pub fn my_tid() -> u32 {
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time and context switches of one thread.
#[derive(Clone, Copy, Default, Debug)]
pub struct TaskStat {
    /// Nanoseconds on a CPU (first field of `schedstat`).
    pub cpu_ns: u64,
    /// Times it blocked (`voluntary_ctxt_switches`).
    pub voluntary: u64,
    /// Times it was preempted (`nonvoluntary_ctxt_switches`).
    pub involuntary: u64,
}

pub fn task_stat(tid: u32) -> Option<TaskStat> {
    let base = format!("/proc/self/task/{tid}");
    let sched = fs::read_to_string(format!("{base}/schedstat")).ok()?;
    let status = fs::read_to_string(format!("{base}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some(TaskStat {
        cpu_ns: sched.split_whitespace().next()?.parse().ok()?,
        voluntary: field("voluntary_ctxt_switches:"),
        involuntary: field("nonvoluntary_ctxt_switches:"),
    })
}

/// Every thread of the process but `except`.
pub fn all_tasks(except: u32) -> HashMap<u32, TaskStat> {
    let Ok(dir) = fs::read_dir("/proc/self/task") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&tid| tid != except)
        .filter_map(|tid| Some((tid, task_stat(tid)?)))
        .collect()
}

/// Sum of the growth of each thread present in both snapshots.
pub fn delta(before: &HashMap<u32, TaskStat>, after: &HashMap<u32, TaskStat>) -> TaskStat {
    let mut d = TaskStat::default();
    for (tid, a) in after {
        if let Some(b) = before.get(tid) {
            d.cpu_ns += a.cpu_ns.saturating_sub(b.cpu_ns);
            d.voluntary += a.voluntary.saturating_sub(b.voluntary);
            d.involuntary += a.involuntary.saturating_sub(b.involuntary);
        }
    }
    d
}

/// utime + stime of the whole process, in clock ticks (`/proc/self/stat`).
pub fn process_ticks() -> u64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime is field 14, stime 15; `rest` starts at field 3.
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub fn rss_bytes() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU model name and count of online CPUs.
pub fn machine() -> (String, usize) {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, cpus)
}
