//! Adversarial trials of external commands (`WorkRequest::command`,
//! `submit_command`, their timeouts, `shutdown_now`'s kill), of the
//! as-completed iterator and its windows (`Completions`, `InOrder`) and of
//! `map` and its chunks, with panics, cancellation half-way and a pool of
//! one worker.
//!
//! The command tests take [`serial`], so the children of this process are
//! the running test's alone. Timeouts only turn a hang into a failure.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use callpool::{CommandError, CommandOutput, TaskError, ThreadPool, Ticket};

mod common;
use common::{until, HANG};

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

/// Far more than any test here keeps: a heap past it grows without bound.
const HEAP_BOUND: isize = 256 << 20;

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pids of this process's children, zombies included.
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("a task entry").path().join("children");
        if let Ok(list) = fs::read_to_string(path) {
            pids.extend(list.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
    }
    pids
}

fn assert_no_children() {
    assert_eq!(children(), Vec::<u32>::new(), "child processes left behind");
}

/// The names of this process's threads whose name ends with `suffix`.
fn threads_named(suffix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for task in fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("a task entry").path().join("comm");
        if let Ok(name) = fs::read_to_string(path) {
            let name = name.trim_end().to_owned();
            if name.ends_with(suffix) {
                names.push(name);
            }
        }
    }
    names
}

type Outcome = Result<CommandOutput, TaskError<CommandError>>;

fn waited(ticket: Ticket<CommandOutput, CommandError>) -> Outcome {
    match ticket.wait_timeout(HANG) {
        Ok(outcome) => outcome,
        Err(_) => panic!("hang: the command's ticket did not end within {HANG:?}"),
    }
}

/// A file name of its own for `what`, removed if it was there.
fn marker(what: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("callpool-cwa-{what}-{}", std::process::id()));
    let _ = fs::remove_file(&path);
    path
}

/// The pid written to `marker`, once it is there.
fn pid_in(marker: &Path) -> u32 {
    let mut pid = None;
    until(|| {
        pid = fs::read_to_string(marker)
            .ok()
            .and_then(|s| s.strip_suffix('\n').and_then(|s| s.parse().ok()));
        pid.is_some()
    });
    pid.unwrap()
}

/// Whether process `pid` has ended: gone, or a zombie.
fn has_ended(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Kills process `pid` when dropped, in case a failing test left it running.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !has_ended(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

// ---------------------------------------------------------------------------
// External commands.
// ---------------------------------------------------------------------------

/// A script past its timeout whose background job (not in a group of its
/// own, so the kill misses it) writes for ever to the inherited stderr
/// pipe. The worker gives up on the pipes a second after the kill and takes
/// what was read; the reader must then stop reading: it went on appending
/// everything `yes` wrote to a buffer nobody would ever read again, without
/// bound (gigabytes a minute), and `yes`, whose pipe never filled, never
/// ended. With the reader gone, `yes` meets a closed pipe and ends.
#[test]
fn a_killed_commands_writing_grandchild_is_not_read_and_kept_for_ever() {
    let _serial = serial();
    let marker = marker("yes");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "yes callpool >&2 & echo $! > \"$1\"; exec sleep 30",
        "sh",
    ])
    .arg(&marker);
    let pool = ThreadPool::new(1);
    let ticket = pool
        .submit_command_timeout(cmd, Duration::from_millis(300))
        .unwrap();
    let pid = pid_in(&marker);
    let _kill = KillOnDrop(pid);
    match waited(ticket) {
        Err(TaskError::Failed(CommandError::TimedOut { stderr, .. })) => {
            assert!(
                stderr.starts_with(b"callpool\n"),
                "{:?}",
                &stderr[..20.min(stderr.len())]
            );
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // No reader is left to drain `yes`: it ends on the closed pipe. (A
    // reader that kept reading filled the heap at about 100 MiB a second
    // until the kernel killed the test.)
    until(|| has_ended(pid) || common::heap::live() > HEAP_BOUND);
    assert!(
        common::heap::live() <= HEAP_BOUND,
        "the abandoned pipe's reader keeps what yes writes: {} MiB",
        common::heap::live() >> 20
    );
    assert!(has_ended(pid));
    until(|| threads_named("-stderr").is_empty() && threads_named("-stdout").is_empty());
    let _ = fs::remove_file(&marker);
    pool.shutdown().unwrap();
    assert_no_children();
}
