//! Requests that run an external program (`WorkRequest::command`,
//! `WorkRequest::command_timeout`): output and exit status, a program that
//! does not exist, a child killed by a signal, a timeout, a child that
//! fills both pipes, and `shutdown_now` killing a running child; and the
//! same as tickets (`ThreadPool::submit_command`,
//! `submit_command_timeout`), whose queued command a cancel keeps from
//! ever starting.
//!
//! Every test takes [`serial`] and ends with [`assert_no_children`]: with
//! one test at a time, every child process of this binary (zombies
//! included) is that test's, so "none left" is exact. The only timeouts
//! turn a hang into a failure.

#![cfg(target_os = "linux")]

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use callpool::{
    CommandError, CommandOutput, Context, Request, TaskError, ThreadPool, Ticket, WorkRequest,
};

mod common;
use common::{until, within, HANG};

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

/// A program that runs far longer than any timeout of these tests.
fn sleep_30() -> Command {
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    sleep
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

/// `{:?}` shows a stream as text when it is UTF-8 and as bytes otherwise,
/// so a printed outcome is readable.
#[test]
fn an_outputs_debug_shows_utf8_as_text_and_other_bytes_as_bytes() {
    let _serial = serial();
    let output = outcome(WorkRequest::command(sh(
        r"printf 'h\303\251'; printf '\377' >&2",
    )))
    .expect("a result");
    assert_eq!(
        (output.stdout.as_slice(), output.stderr.as_slice()),
        ("hé".as_bytes(), &[255u8][..])
    );
    let shown = format!("{output:?}");
    assert!(shown.contains(r#"stdout: "hé", stderr: [255]"#), "{shown}");
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
    let timeout = Duration::from_millis(200);
    let pool = ThreadPool::new(1);
    let (request, outcome) = observed(WorkRequest::command_timeout(sleep_30(), timeout));
    let started = Instant::now();
    pool.put_request(request).unwrap();
    assert_eq!(pool.wait_timeout(NOT_KILLED), Ok(1));
    assert!(started.elapsed() < NOT_KILLED);
    assert_timed_out_silently(outcome.try_recv().unwrap(), timeout);
    assert_no_children();
}

/// `outcome` is a kill by `timeout` of a program that wrote nothing.
fn assert_timed_out_silently(outcome: Outcome, timeout: Duration) {
    match outcome {
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
    let (fifo, cmd) = pid_to_fifo_then_sleep();
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (request, outcome) = observed(WorkRequest::command(cmd));
    other.put_request(request).unwrap();
    await_the_child(&fifo);

    assert!(pool.shutdown_now().is_empty());
    assert_eq!(other.wait_timeout(NOT_KILLED), Ok(1));
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected the command to be killed, got {other:?}"),
    }
    fs::remove_file(&fifo).unwrap();
    assert_no_children();
}

/// A new FIFO in the temporary directory, named `name` and this process.
fn fifo(name: &str) -> PathBuf {
    let fifo = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    fifo
}

/// The pid a command writes to `fifo`, once it has written it. Opening the
/// FIFO waits until the command opens it to write.
fn pid_from(fifo: &Path, what: &str) -> u32 {
    let path = fifo.to_owned();
    within(what, move || fs::read_to_string(path))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A FIFO, and a command that writes its pid to it and then sleeps 30 s.
fn pid_to_fifo_then_sleep() -> (PathBuf, Command) {
    let fifo = fifo("callpool-commands");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo $$ > \"$1\"; exec sleep 30", "sh"])
        .arg(&fifo);
    (fifo, cmd)
}

/// Returns once the command of [`pid_to_fifo_then_sleep`] runs, checking
/// that it is this process's only child.
fn await_the_child(fifo: &Path) {
    let pid = pid_from(fifo, "the child to start");
    assert_eq!(children(), vec![pid]);
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

/// Whether process `pid` has ended: gone, or a zombie that its new parent
/// (init, once its own parent was killed) has not reaped yet.
fn has_ended(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// `sh -c SCRIPT` in a process group of its own, with the pid of the
/// `sleep 600` it starts in the background written to `marker` and then
/// waited for; `prelude` runs first. The sleep outlasts [`HANG`] by far, so
/// a wait for it to end fails unless it was killed.
fn group_script(prelude: &str, marker: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    let script = format!("{prelude} sleep 600 & echo $! > \"$1\"; wait");
    cmd.args(["-c", &script, "sh"]).arg(marker).process_group(0);
    cmd
}

/// A command in a process group of its own (`process_group(0)`) past its
/// timeout: the kill goes to the whole group, so the `sleep` the script
/// started dies with it (killing the shell alone left it running, holding
/// the pipes), and `TimedOut` holds all the script wrote.
#[test]
fn a_timed_out_command_in_its_own_process_group_is_killed_with_what_it_started() {
    let _serial = serial();
    let marker = std::env::temp_dir().join(format!("callpool-group-{}", std::process::id()));
    let _ = fs::remove_file(&marker);
    let cmd = group_script("echo before;", &marker);
    let outcome = outcome(WorkRequest::command_timeout(
        cmd,
        Duration::from_millis(500),
    ));
    let stdout = match outcome {
        Err(TaskError::Failed(CommandError::TimedOut { stdout, .. })) => stdout,
        other => panic!("expected a timeout, got {other:?}"),
    };
    // The shell is dead, so the marker is complete if it was written.
    let grandchild = fs::read_to_string(&marker).unwrap_or_default();
    let _ = fs::remove_file(&marker);
    if let Ok(pid) = grandchild.trim().parse::<u32>() {
        let _left = KillOnDrop(pid);
        until(|| has_ended(pid));
        assert_eq!(stdout, b"before\n");
    } else {
        // The timeout came before the script got that far (a very slow
        // start): no `sleep` was started, and what was read is a prefix.
        assert!(b"before\n".starts_with(&stdout));
    }
    assert_no_children();
}

/// `shutdown_now` kills a running command's whole process group, when the
/// command has one of its own. The script tells the test its background
/// `sleep`'s pid through a FIFO once it runs, so the kill comes while
/// both processes run, without a sleep in the test.
#[test]
fn shutdown_now_kills_a_command_with_what_it_started_in_its_own_process_group() {
    let _serial = serial();
    let fifo = fifo("callpool-group-fifo");
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (request, outcome) = observed(WorkRequest::command(group_script("", &fifo)));
    other.put_request(request).unwrap();
    let grandchild = pid_from(&fifo, "the script to start");
    let _left = KillOnDrop(grandchild);

    assert!(pool.shutdown_now().is_empty());
    assert_eq!(other.wait_timeout(NOT_KILLED), Ok(1));
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected the command to be killed, got {other:?}"),
    }
    until(|| has_ended(grandchild));
    fs::remove_file(&fifo).unwrap();
    assert_no_children();
}

/// A command that closes both its pipes and runs on, past its timeout: the
/// worker watches for its exit beside the deadline, so the timeout still
/// kills it (it was waited for in `wait()`, where no deadline reached it:
/// this test's 600 s sleep would have held the request for 600 s).
#[test]
fn a_command_that_closes_its_pipes_and_runs_on_is_still_killed_at_its_timeout() {
    let _serial = serial();
    let marker = std::env::temp_dir().join(format!("callpool-closed-{}", std::process::id()));
    let _ = fs::remove_file(&marker);
    let mut cmd = Command::new("sh");
    // The shell's pid is the sleep's: it execs it.
    cmd.args([
        "-c",
        "echo $$ > \"$1\"; exec >&- 2>&-; exec sleep 600",
        "sh",
    ])
    .arg(&marker);
    let pool = ThreadPool::new(1);
    let (request, outcome) = observed(WorkRequest::command_timeout(
        cmd,
        Duration::from_millis(300),
    ));
    pool.put_request(request).unwrap();
    let waited = pool.wait_timeout(NOT_KILLED);
    let pid = fs::read_to_string(&marker).unwrap_or_default();
    let _left = pid.trim().parse().ok().map(KillOnDrop);
    let _ = fs::remove_file(&marker);
    assert_eq!(waited, Ok(1), "the command outlived its timeout");
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::TimedOut { stdout, stderr, .. })) => {
            assert!(stdout.is_empty() && stderr.is_empty());
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_no_children();
}

/// The same command killed by `shutdown_now` rather than a timeout.
#[test]
fn shutdown_now_kills_a_command_that_closed_its_pipes_and_runs_on() {
    let _serial = serial();
    let fifo = fifo("callpool-closed-fifo");
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "exec >&- 2>&-; echo $$ > \"$1\"; exec sleep 600",
        "sh",
    ])
    .arg(&fifo);
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (request, outcome) = observed(WorkRequest::command(cmd));
    other.put_request(request).unwrap();
    // Written after both pipes were closed: the worker is past its reads.
    let pid = pid_from(&fifo, "the command to close its pipes");
    let _left = KillOnDrop(pid);

    assert!(pool.shutdown_now().is_empty());
    assert_eq!(
        other.wait_timeout(NOT_KILLED),
        Ok(1),
        "the command was not killed"
    );
    match outcome.try_recv().unwrap() {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected the command to be killed, got {other:?}"),
    }
    fs::remove_file(&fifo).unwrap();
    assert_no_children();
}

// ---------------------------------------------------------------------------
// Commands as tickets.
// ---------------------------------------------------------------------------

/// A ticket's outcome, or a failure if it did not end within `bound`.
fn waited(ticket: Ticket<CommandOutput, CommandError>, bound: Duration) -> Outcome {
    match ticket.wait_timeout(bound) {
        Ok(outcome) => outcome,
        Err(_) => panic!("hang: the command's ticket did not end within {bound:?}"),
    }
}

#[test]
fn a_command_ticket_gives_the_exit_status_and_both_outputs() {
    let _serial = serial();
    let pool = ThreadPool::new(1);
    let ticket = pool
        .submit_command(sh("echo out; echo err >&2; exit 3"))
        .unwrap();
    // A ticket is not the handle's: nothing pending there.
    assert_eq!(pool.pending(), 0);
    let output = waited(ticket, HANG).expect("a non-zero exit is a result");
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");

    let ticket = pool.submit_command_timeout(sh("echo done"), HANG).unwrap();
    let output = waited(ticket, HANG).expect("the command ended in time");
    assert!(output.success());
    assert_eq!(
        (output.stdout, output.stderr),
        (b"done\n".to_vec(), Vec::new())
    );
    assert_no_children();
}

#[test]
fn a_command_ticket_for_a_missing_program_fails_with_the_callback_forms_error() {
    let _serial = serial();
    let program = "callpool-test-no-such-program";
    let pool = ThreadPool::new(1);
    let from_ticket = waited(pool.submit_command(Command::new(program)).unwrap(), HANG);
    let from_callback = outcome(WorkRequest::command(Command::new(program)));
    for outcome in [from_ticket, from_callback] {
        match outcome {
            Err(TaskError::Failed(CommandError::Spawn { program: p, source })) => {
                assert_eq!(p, program);
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected a spawn error, got {other:?}"),
        }
    }
    match waited(pool.submit_command(sh("kill -9 $$")).unwrap(), HANG) {
        Err(TaskError::Failed(CommandError::Signalled { signal })) => assert_eq!(signal, 9),
        other => panic!("expected a signal, got {other:?}"),
    }
    assert_no_children();
}

#[test]
fn a_command_ticket_past_its_timeout_is_killed_and_reaped() {
    let _serial = serial();
    let timeout = Duration::from_millis(200);
    let pool = ThreadPool::new(1);
    let ticket = pool.submit_command_timeout(sleep_30(), timeout).unwrap();
    assert_timed_out_silently(waited(ticket, NOT_KILLED), timeout);
    assert_no_children();
}

/// One worker held on a gate; a command ticket queued behind it is
/// cancelled, so the command never starts: its marker file never appears,
/// and no child was ever started for it.
#[test]
fn a_cancelled_queued_command_ticket_never_runs() {
    let _serial = serial();
    let marker = std::env::temp_dir().join(format!("callpool-cancelled-{}", std::process::id()));
    let _ = fs::remove_file(&marker);
    let pool = ThreadPool::new(1);
    let (started_tx, started) = mpsc::channel();
    let (open, gate) = mpsc::channel::<()>();
    let busy = pool
        .submit(
            move |_: ()| {
                started_tx.send(()).unwrap();
                let _ = gate.recv();
            },
            (),
        )
        .unwrap();
    started
        .recv_timeout(HANG)
        .expect("the gated ticket never started");

    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo ran > \"$1\"", "sh"]).arg(&marker);
    let ticket = pool.submit_command(cmd).unwrap();
    assert!(ticket.cancel());
    assert!(!ticket.cancel(), "cancelled twice");
    assert!(matches!(waited(ticket, HANG), Err(TaskError::Cancelled)));

    drop(open);
    assert_eq!(busy.wait_timeout(HANG).expect("hang: busy"), Ok(()));
    // On one worker a command put after the cancelled one runs only once
    // the worker has passed it.
    let after = waited(pool.submit_command(sh("echo after")).unwrap(), HANG)
        .expect("the next command runs");
    assert_eq!(after.stdout, b"after\n");
    assert!(!marker.exists(), "the cancelled command ran");
    assert_no_children();
}

/// `shutdown_now` kills a command ticket's running child (the ticket was
/// submitted through another handle, which the shutdown leaves open).
#[test]
fn shutdown_now_kills_a_running_command_ticket() {
    let _serial = serial();
    let (fifo, cmd) = pid_to_fifo_then_sleep();
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let ticket = other.submit_command(cmd).unwrap();
    await_the_child(&fifo);

    assert!(pool.shutdown_now().is_empty());
    match waited(ticket, NOT_KILLED) {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected the command to be killed, got {other:?}"),
    }
    fs::remove_file(&fifo).unwrap();
    assert_no_children();
}
