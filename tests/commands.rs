//! Requests that run an external program (`WorkRequest::command`,
//! `WorkRequest::command_timeout`): output and exit status, a program that
//! does not exist, a child killed by a signal, a timeout, a child that
//! fills both pipes, and `shutdown_now` killing a running child.
//!
//! Every test takes [`serial`] and ends with [`assert_no_children`]: with
//! one test at a time, every child process of this binary (zombies
//! included) is that test's, so "none left" is exact. The only timeouts
//! turn a hang into a failure.

#![cfg(target_os = "linux")]

use std::fs;
use std::io::ErrorKind;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use callpool::{CommandError, CommandOutput, Context, Request, TaskError, ThreadPool, WorkRequest};

mod common;
use common::{within, HANG};

/// A bound for tests whose child would sleep 30 s if it were not killed:
/// reaching it means the kill did not happen.
const NOT_KILLED: Duration = Duration::from_secs(20);

/// Held by every test of this file, so that the children of this process
/// are the running test's alone.
fn serial() -> MutexGuard<'static, ()> {
    // One test at a time; a test that failed holding it poisons nothing
    // the next one reads.
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pids of this process's children, zombies included: the `children`
/// file of every thread (a child belongs to the thread that started it).
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("a task entry").path().join("children");
        // A thread that has just exited has no file any more.
        if let Ok(list) = fs::read_to_string(path) {
            pids.extend(list.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
    }
    pids
}

fn assert_no_children() {
    assert_eq!(children(), Vec::<u32>::new(), "child processes left behind");
}

type Outcome = Result<CommandOutput, TaskError<CommandError>>;

/// `request` with callbacks that send its outcome to the returned receiver.
fn observed<W, R, X>(
    request: Request<W, CommandOutput, CommandError, R, X>,
) -> (WorkRequest, Receiver<Outcome>)
where
    W: FnOnce(&Context<'_>) -> Result<CommandOutput, CommandError> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let on_error = tx.clone();
    let request = request
        .on_result(move |_, output| tx.send(Ok(output)).unwrap())
        .on_error(move |_, err| on_error.send(Err(err)).unwrap())
        .into();
    (request, rx)
}

/// Runs `request` on a pool of one worker and returns its outcome.
fn outcome<W, R, X>(request: Request<W, CommandOutput, CommandError, R, X>) -> Outcome
where
    W: FnOnce(&Context<'_>) -> Result<CommandOutput, CommandError> + Send + 'static,
{
    let pool = ThreadPool::new(1);
    let (request, outcome) = observed(request);
    pool.put_request(request).unwrap();
    assert_eq!(pool.wait_timeout(HANG), Ok(1));
    outcome.try_recv().unwrap()
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

#[test]
fn a_non_zero_exit_is_a_result_with_both_outputs() {
    let _serial = serial();
    let output = outcome(WorkRequest::command(sh("echo out; echo err >&2; exit 3")))
        .expect("a non-zero exit is a result");
    assert_eq!(output.status.code(), Some(3));
    assert!(!output.success());
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
    assert_eq!(output.stdout_lossy(), "out\n");
    assert_eq!(output.stderr_lossy(), "err\n");
    assert_no_children();
}

#[test]
fn a_command_that_ends_before_its_timeout_is_a_result() {
    let _serial = serial();
    let output = outcome(WorkRequest::command_timeout(sh("echo done"), HANG))
        .expect("the command ended in time");
    assert!(output.success());
    assert_eq!(output.stdout, b"done\n");
    assert_eq!(output.stderr, b"");
    assert_no_children();
}

#[test]
fn a_program_that_does_not_exist_is_a_spawn_error() {
    let _serial = serial();
    let program = "callpool-test-no-such-program";
    let err = match outcome(WorkRequest::command(Command::new(program))) {
        Err(TaskError::Failed(err)) => err,
        other => panic!("expected a spawn error, got {other:?}"),
    };
    let CommandError::Spawn { program: p, source } = &err else {
        panic!("expected a spawn error, got {err:?}");
    };
    assert_eq!(p, program);
    assert_eq!(source.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!("cannot start \"{program}\": {source}")
    );
    assert_no_children();
}

#[test]
fn a_child_killed_by_a_signal_is_signalled() {
    let _serial = serial();
    match outcome(WorkRequest::command(sh("kill -9 $$"))) {
        Err(TaskError::Failed(CommandError::Signalled { signal })) => assert_eq!(signal, 9),
        other => panic!("expected a signal, got {other:?}"),
    }
    assert_no_children();
}

#[test]
fn a_command_past_its_timeout_is_killed_and_reaped() {
    let _serial = serial();
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    let timeout = Duration::from_millis(200);
    let pool = ThreadPool::new(1);
    let (request, outcome) = observed(WorkRequest::command_timeout(sleep, timeout));
    let started = Instant::now();
    pool.put_request(request).unwrap();
    assert_eq!(pool.wait_timeout(NOT_KILLED), Ok(1));
    assert!(started.elapsed() < NOT_KILLED);
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::TimedOut {
            after,
            stdout,
            stderr,
        })) => {
            assert_eq!(after, timeout);
            assert_eq!(stdout, b"");
            assert_eq!(stderr, b"");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_no_children();
}

/// A child that writes 10 MiB to stderr, then 10 MiB to stdout: reading
/// the pipes one after the other would leave it blocked on a full pipe
/// whichever is read first.
#[test]
fn a_child_filling_both_pipes_completes() {
    let _serial = serial();
    const MIB_10: usize = 10 * 1024 * 1024;
    let script = format!(
        "head -c {MIB_10} /dev/zero | tr '\\0' e >&2; head -c {MIB_10} /dev/zero | tr '\\0' o"
    );
    let output = outcome(WorkRequest::command(sh(&script))).expect("the command completes");
    assert!(output.success());
    assert_eq!(output.stdout.len(), MIB_10);
    assert_eq!(output.stderr.len(), MIB_10);
    assert!(output.stdout.iter().all(|&b| b == b'o'));
    assert!(output.stderr.iter().all(|&b| b == b'e'));
    assert_no_children();
}

/// `shutdown_now` kills a running child; the request was put by another
/// handle (the shut-down handle's results are discarded), which receives
/// `Killed`. The child tells the test its pid through a FIFO once it runs,
/// so the test knows the command is running without sleeping.
#[test]
fn shutdown_now_kills_a_running_command() {
    let _serial = serial();
    let fifo = std::env::temp_dir().join(format!("callpool-commands-{}", std::process::id()));
    let _ = fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");

    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$ > \"$1\"; exec sleep 30", "sh"])
        .arg(&fifo);
    let (request, outcome) = observed(WorkRequest::command(cmd));
    other.put_request(request).unwrap();
    let path = fifo.clone();
    // Opening the FIFO waits until the child opens it to write.
    let pid: u32 = within("the child to start", move || fs::read_to_string(path))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(children(), vec![pid]);

    assert!(pool.shutdown_now().is_empty());
    assert_eq!(other.wait_timeout(NOT_KILLED), Ok(1));
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected the command to be killed, got {other:?}"),
    }
    fs::remove_file(&fifo).unwrap();
    assert_no_children();
}

/// A shell script past its timeout whose own child (`sleep`) keeps the
/// pipes open after the shell is killed: the worker gives up on the pipes
/// a second after the kill, and `TimedOut` still holds what the script
/// wrote before it (it held nothing: the readers handed their bytes over
/// only at the end of the pipe, which never came in time).
#[test]
fn a_timed_out_script_whose_child_holds_the_pipes_keeps_its_output() {
    let _serial = serial();
    let marker = std::env::temp_dir().join(format!("callpool-held-{}", std::process::id()));
    let _ = fs::remove_file(&marker);
    let mut cmd = Command::new("sh");
    // The grandchild's pid reaches the marker only after both echoes.
    cmd.args([
        "-c",
        "echo before; echo warn >&2; sleep 30 & echo $! > \"$1\"; wait",
        "sh",
    ])
    .arg(&marker);
    let pool = ThreadPool::new(1);
    let (request, outcome) = observed(WorkRequest::command_timeout(
        cmd,
        Duration::from_millis(500),
    ));
    pool.put_request(request).unwrap();
    assert_eq!(pool.wait_timeout(NOT_KILLED), Ok(1));
    let (stdout, stderr) = match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::TimedOut { stdout, stderr, .. })) => (stdout, stderr),
        other => panic!("expected a timeout, got {other:?}"),
    };
    // The shell is dead, so the marker is complete if it was written.
    let grandchild = fs::read_to_string(&marker).unwrap_or_default();
    if let Ok(pid) = grandchild.trim().parse::<u32>() {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        assert_eq!(stdout, b"before\n");
        assert_eq!(stderr, b"warn\n");
    } else {
        // The timeout came before the script got that far (a very slow
        // start): what was read is still a prefix of what was written.
        assert!(b"before\n".starts_with(&stdout));
        assert!(b"warn\n".starts_with(&stderr));
    }
    let _ = fs::remove_file(&marker);
    assert_no_children();
}
