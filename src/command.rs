//! Requests that run an external program ([`WorkRequest::command`],
//! [`WorkRequest::command_timeout`], or as tickets
//! [`ThreadPool::submit_command`](crate::ThreadPool::submit_command),
//! [`submit_command_timeout`](crate::ThreadPool::submit_command_timeout)):
//! the child is started on a worker, two
//! helper threads read its stdout and stderr, the worker waits on one
//! channel for "both pipes closed" (and, for a child that runs on after
//! closing them, "exited"), its deadline or a kill from
//! [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now), and the
//! child is reaped before the request ends, on every path.
//! `docs/design.md`, "External commands".

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use flume::{Receiver, RecvTimeoutError, Sender};

use crate::request::{Context, Request, RequestId, TaskError, WorkRequest};
use crate::worker_thread;

/// How long a killed command's pipes may stay open after the child was
/// reaped. They close at once unless a process the child started (a shell's
/// background job) still holds them; the worker stops waiting for such a
/// pipe after this long, and keeps what its reader had read by then.
const PIPES_AFTER_KILL: Duration = Duration::from_secs(1);

/// What one pipe's reader has read so far. The reader appends each read
/// here rather than handing everything over at the end of the pipe, which
/// never comes while a process the child started holds the pipe open: the
/// worker that gives up on such a pipe still has the output written before
/// the kill. `None` once the worker has taken it.
type Sink = Arc<Mutex<Option<Vec<u8>>>>;

fn new_sink() -> Sink {
    Arc::new(Mutex::new(Some(Vec::new())))
}

/// Takes what `sink` holds, for good: a reader still running (its pipe held
/// open by a process the child started) finds nobody to read for any more
/// and stops, closing its end of the pipe, so a background job that writes
/// for ever (`yes &`) meets a closed pipe rather than filling the heap.
fn take(sink: &Sink) -> Vec<u8> {
    // Only appends happen under the lock, so a poisoned one is consistent.
    sink.lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default()
}

/// What an external program produced: how it exited and everything it wrote.
///
/// A non-zero exit is still a result: look at [`status`](Self::status).
/// Made by the requests of [`WorkRequest::command`] and
/// [`WorkRequest::command_timeout`].
///
/// # Examples
///
/// ```
/// use callpool::{ThreadPool, WorkRequest};
/// use std::process::Command;
///
/// let pool = ThreadPool::new(1);
/// let mut cmd = Command::new("sh");
/// cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
/// pool.put_request(WorkRequest::command(cmd).on_result(|_, output| {
///     assert_eq!(output.status.code(), Some(3));
///     assert!(!output.success());
///     assert_eq!(output.stdout, b"out\n");
///     assert_eq!(output.stderr_lossy(), "err\n");
///     // `{:?}` shows UTF-8 output as text, other output as bytes.
///     assert!(format!("{output:?}").contains(r#"stdout: "out\n", stderr: "err\n""#));
/// }))?;
/// pool.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// How the program exited. On unix it always exited by itself: a
    /// program killed by a signal is a [`CommandError::Signalled`].
    pub status: ExitStatus,
    /// Everything the program wrote to its standard output.
    pub stdout: Vec<u8>,
    /// Everything the program wrote to its standard error.
    pub stderr: Vec<u8>,
}

/// Shows each stream as text when it is UTF-8 (most programs' output), as
/// bytes otherwise, as `std::process::Output` does.
impl fmt::Debug for CommandOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandOutput")
            .field("status", &self.status)
            .field("stdout", &TextOrBytes(&self.stdout))
            .field("stderr", &TextOrBytes(&self.stderr))
            .finish()
    }
}

/// A stream's bytes, shown as a string if they are UTF-8.
struct TextOrBytes<'a>(&'a [u8]);

impl fmt::Debug for TextOrBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(text) => fmt::Debug::fmt(text, f),
            Err(_) => fmt::Debug::fmt(self.0, f),
        }
    }
}

impl CommandOutput {
    /// Whether the program exited with status 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::process::Command;
    ///
    /// let pool = ThreadPool::new(1);
    /// pool.put_request(WorkRequest::command(Command::new("true"))
    ///     .on_result(|_, output| assert!(output.success())))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The standard output as text, invalid UTF-8 replaced by `U+FFFD`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::process::Command;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut echo = Command::new("echo");
    /// echo.arg("hello");
    /// pool.put_request(WorkRequest::command(echo)
    ///     .on_result(|_, output| assert_eq!(output.stdout_lossy(), "hello\n")))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stdout_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// The standard error as text, invalid UTF-8 replaced by `U+FFFD`.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::process::Command;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "echo oops >&2"]);
    /// pool.put_request(WorkRequest::command(cmd)
    ///     .on_result(|_, output| assert_eq!(output.stderr_lossy(), "oops\n")))?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stderr_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }
}

/// Why an external program produced no [`CommandOutput`]. The error callback
/// of a command request receives it as
/// [`TaskError::Failed`](crate::TaskError::Failed).
///
/// # Examples
///
/// ```
/// use callpool::{CommandError, TaskError, ThreadPool, WorkRequest};
/// use std::process::Command;
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(1);
/// let (tx, rx) = mpsc::channel();
/// pool.put_request(WorkRequest::command(Command::new("no-such-program-here"))
///     .on_error(move |_, err| tx.send(err).unwrap()))?;
/// pool.wait()?;
/// match rx.recv()? {
///     TaskError::Failed(CommandError::Spawn { program, source }) => {
///         assert_eq!(program, "no-such-program-here");
///         assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
///     }
///     other => panic!("expected a spawn error, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandError {
    /// The program could not be started (not found, not executable, ...).
    Spawn {
        /// The program, as given to [`Command::new`].
        program: OsString,
        /// Why the operating system refused to start it.
        source: io::Error,
    },
    /// The program was killed by a signal it did not catch (unix only; a
    /// program this crate kills is [`TimedOut`](Self::TimedOut) or
    /// [`Killed`](Self::Killed) instead).
    Signalled {
        /// The signal's number (9 for `SIGKILL`).
        signal: i32,
    },
    /// The program had not finished when the timeout of
    /// [`WorkRequest::command_timeout`] passed, so it was killed.
    TimedOut {
        /// The timeout.
        after: Duration,
        /// What it wrote to its standard output before it was killed.
        stdout: Vec<u8>,
        /// What it wrote to its standard error before it was killed.
        stderr: Vec<u8>,
    },
    /// The program was killed because its pool was shut down with
    /// [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now).
    Killed,
    /// Reading the program's output, or waiting for it to exit, failed; or
    /// a thread to read its output could not be started.
    Io(io::Error),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Spawn { program, source } => {
                write!(f, "cannot start {program:?}: {source}")
            }
            CommandError::Signalled { signal } => write!(f, "killed by signal {signal}"),
            CommandError::TimedOut { after, .. } => {
                write!(f, "still running after {after:?}, killed")
            }
            CommandError::Killed => f.write_str("killed: the pool was shut down"),
            CommandError::Io(e) => write!(f, "i/o error while running the command: {e}"),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Spawn { source, .. } => Some(source),
            CommandError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl WorkRequest {
    /// Starts a request that runs `cmd` on a worker and collects its exit
    /// status and output as a [`CommandOutput`]; a non-zero exit is a
    /// result, not an error.
    ///
    /// The child's stdout and stderr are piped (replacing whatever `cmd`
    /// set) and read at the same time, so a program that writes a lot to
    /// both never blocks on a full pipe; all of it is kept in memory, as
    /// with [`Command::output`]. Its stdin is the null device: `Command`
    /// cannot tell whether a stdin was set on it, so one set on `cmd` is
    /// replaced too. The worker is busy until the program has exited and
    /// both pipes have closed.
    ///
    /// If the pool is shut down with
    /// [`ThreadPool::shutdown_now`](crate::ThreadPool::shutdown_now) while
    /// the program runs, it is killed (`SIGKILL` on unix) and the request
    /// fails with [`CommandError::Killed`]. A graceful shutdown,
    /// `shutdown_timeout` included, and dropping the pool kill nothing.
    ///
    /// A kill reaches only the child, not the processes it started, unless
    /// the child leads a process group of its own: on unix, give `cmd`
    /// [`process_group(0)`](std::os::unix::process::CommandExt::process_group)
    /// and a kill (by `shutdown_now` or a timeout) goes to the whole group,
    /// a shell script's background jobs and a build's compilers included.
    /// The group is then also out of reach of the terminal's Ctrl-C, as
    /// with any process group of its own.
    ///
    /// To kill a program that runs too long, use
    /// [`command_timeout`](Self::command_timeout):
    /// [`Request::timeout`] on a command request is, as on any request, a
    /// deadline to *start* by, and a program that started in time runs to
    /// its end however long it takes.
    ///
    /// # Errors
    ///
    /// The error callback receives [`TaskError::Failed`] with a
    /// [`CommandError`]: [`Spawn`](CommandError::Spawn) when the program
    /// cannot be started, [`Signalled`](CommandError::Signalled),
    /// [`Killed`](CommandError::Killed), or [`Io`](CommandError::Io).
    ///
    /// # Warning
    ///
    /// The worker waits for both pipes to close, then for the child to
    /// exit. A program that closes both pipes and keeps running is then
    /// waited for by a thread of its own (`-exit`), still within reach of
    /// a timeout and of `shutdown_now` on Linux; elsewhere neither reaches
    /// it any more. A process the child started that keeps the
    /// pipes open (`sh -c 'sleep 60 & echo started'`) keeps the request
    /// running until it closes them, as with [`Command::output`]. After a
    /// kill or a timeout the request ends within about a second, but that
    /// process runs on, and the two threads that read the pipes (named
    /// after the worker, `-stdout` and `-stderr`) stay blocked until it
    /// closes them, past the pool's
    /// [`shutdown`](crate::ThreadPool::shutdown), which joins the workers,
    /// not them; or until it writes to them: nothing is read or kept after
    /// the request has ended, the reader closes its end, and the process
    /// meets a closed pipe (`SIGPIPE`). A command in a process group of its own (above) leaves
    /// none of this behind: the kill ends the whole group, and with it the
    /// pipes.
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    /// use std::process::Command;
    ///
    /// let pool = ThreadPool::new(2);
    /// let mut cmd = Command::new("sh");
    /// cmd.args(["-c", "echo hello; exit 3"]);
    /// pool.put_request(
    ///     WorkRequest::command(cmd)
    ///         .on_result(|_, output| {
    ///             assert_eq!(output.status.code(), Some(3));
    ///             assert_eq!(output.stdout_lossy(), "hello\n");
    ///         })
    ///         .on_error(|id, err| panic!("{id}: {err}")),
    /// )?;
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn command(
        cmd: Command,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<CommandOutput, CommandError> + Send + 'static,
        CommandOutput,
        CommandError,
        impl FnOnce(RequestId, CommandOutput) + Send + 'static,
        impl FnOnce(RequestId, TaskError<CommandError>) + Send + 'static,
    > {
        WorkRequest::fallible(|cmd| run(cmd, None), cmd)
    }

    /// [`command`](Self::command), killing the program if it has not
    /// finished `timeout` after it started: the request then fails with
    /// [`CommandError::TimedOut`], which holds the output written until the
    /// kill.
    ///
    /// The worker does not poll: it sleeps on a channel until the pipes
    /// close, the deadline passes, or `shutdown_now` asks for the kill.
    /// After the kill it reaps the child and collects the rest of its
    /// output, waiting at most one more second for pipes that a process the
    /// child started keeps open (`sh -c 'echo started; sleep 60'`: killing
    /// the shell leaves `sleep` holding them); what was read by then is in
    /// the `TimedOut`. To kill such processes too, put the command in a
    /// process group of its own (see [`command`](Self::command)): the
    /// timeout then kills the whole group.
    ///
    /// `command` and `command_timeout` return requests of different types
    /// (their callables are not the same closure), so a `match` or an `if`
    /// that picks one at run time does not compile with the two arms as
    /// they are (E0308, "`match` arms have incompatible types"). Give each
    /// arm its callbacks and end it with `.into()` to a [`WorkRequest`],
    /// or attach the callbacks in a generic function of your own, as
    /// `examples/commands.rs` does (`printing`). The ticket forms,
    /// [`submit_command`](crate::ThreadPool::submit_command) and
    /// [`submit_command_timeout`](crate::ThreadPool::submit_command_timeout),
    /// both give a `Ticket<CommandOutput, CommandError>`.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command), and [`CommandError::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// use callpool::{CommandError, TaskError, ThreadPool, WorkRequest};
    /// use std::process::Command;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let (tx, rx) = mpsc::channel();
    /// let mut sleep = Command::new("sleep");
    /// sleep.arg("30");
    /// pool.put_request(WorkRequest::command_timeout(sleep, Duration::from_millis(100))
    ///     .on_error(move |_, err| tx.send(err).unwrap()))?;
    /// pool.wait()?;
    /// match rx.recv()? {
    ///     TaskError::Failed(CommandError::TimedOut { after, stdout, .. }) => {
    ///         assert_eq!(after, Duration::from_millis(100));
    ///         assert!(stdout.is_empty());
    ///     }
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A script whose background job must not outlive it, in a process
    /// group of its own (unix), so that the timeout kills both:
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use callpool::{CommandError, TaskError, ThreadPool};
    /// use std::os::unix::process::CommandExt;
    /// use std::process::Command;
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1);
    /// let mut script = Command::new("sh");
    /// script.args(["-c", "echo started; sleep 30 & wait"]).process_group(0);
    /// let ticket = pool.submit_command_timeout(script, Duration::from_millis(200))?;
    /// match ticket.wait() {
    ///     // All the script wrote before the kill (none if it was slow to start).
    ///     Err(TaskError::Failed(CommandError::TimedOut { stdout, .. })) => {
    ///         assert!(b"started\n".starts_with(&stdout));
    ///     }
    ///     other => panic!("expected a timeout, got {other:?}"),
    /// }
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // The long return type is the typed builder with its empty callback slots.
    #[allow(clippy::type_complexity)]
    pub fn command_timeout(
        cmd: Command,
        timeout: Duration,
    ) -> Request<
        impl FnOnce(&Context<'_>) -> Result<CommandOutput, CommandError> + Send + 'static,
        CommandOutput,
        CommandError,
        impl FnOnce(RequestId, CommandOutput) + Send + 'static,
        impl FnOnce(RequestId, TaskError<CommandError>) + Send + 'static,
    > {
        WorkRequest::fallible(move |cmd| run(cmd, Some(timeout)), cmd)
    }
}

/// What the worker running a command hears about it, on one channel.
enum Event {
    /// A reader reached the end of its pipe (or failed to read it); what
    /// it read is in its `Sink`.
    Closed(io::Result<()>),
    /// `shutdown_now`: kill the child.
    Kill,
    /// The child, still running when both its pipes had closed, has exited
    /// (not reaped: the worker reaps it). Only Linux watches for the exit
    /// (`Reaper::watch_exit`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Exited,
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Why the worker stopped waiting for the pipes.
enum End {
    PipesClosed,
    Deadline,
    Kill,
}

/// Runs `cmd` to its end on this thread (a worker); see
/// [`WorkRequest::command`]. `pub(crate)` for `shutdown_now`'s tests.
pub(crate) fn run(
    mut cmd: Command,
    timeout: Option<Duration>,
) -> Result<CommandOutput, CommandError> {
    let (events_tx, events) = flume::unbounded();
    // Registered before the spawn: a `shutdown_now` from here on reaches
    // this command (its kill waits in the channel until the child exists).
    let _registered = Registration::new(&events_tx)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let child = cmd.spawn().map_err(|source| CommandError::Spawn {
        program: cmd.get_program().to_owned(),
        source,
    })?;
    let mut child = Reaper::new(child);
    log::trace!(
        "callpool: command {:?} started as pid {}{}",
        cmd.get_program(),
        child.child.id(),
        if child.own_group {
            ", leading its own process group"
        } else {
            ""
        }
    );
    let mut output = Output::default();
    spawn_reader(
        child.child.stdout.take(),
        Stream::Stdout,
        &output.stdout,
        &events_tx,
    )?;
    spawn_reader(
        child.child.stderr.take(),
        Stream::Stderr,
        &output.stderr,
        &events_tx,
    )?;
    // Kept for a watch on the child's exit, which only a child that closes
    // both pipes and runs on needs (a reader always reports before it
    // goes, so this wait is never left to a disconnection).
    let exit_line = events_tx;

    let mut end = output.collect(&events, deadline);
    if let End::PipesClosed = end {
        // Almost always the child has exited already.
        if let Some(status) = child.try_wait().map_err(CommandError::Io)? {
            return output.into_result(status);
        }
        // It runs on with its pipes closed: watched for beside the deadline
        // and a kill. With no watch (not Linux, or no thread to watch with),
        // waited for below, out of reach of both.
        end = child
            .watch_exit(exit_line, &events, deadline)
            .unwrap_or(End::PipesClosed);
        if let End::PipesClosed = end {
            let status = child.wait().map_err(CommandError::Io)?;
            return output.into_result(status);
        }
    }
    if let Err(e) = child.kill_and_wait() {
        log::warn!("callpool: could not reap a killed command: {e}");
    }
    // The child is gone, so its pipes close now, unless a process it
    // started holds them: wait for the rest of its output, not for ever.
    let drain_until = Instant::now().checked_add(PIPES_AFTER_KILL);
    // A second kill for a killed child is nothing to act on.
    while let End::Kill = output.collect(&events, drain_until) {}
    match (end, timeout) {
        // There is a deadline only when there is a timeout.
        (End::Deadline, Some(after)) => Err(CommandError::TimedOut {
            after,
            stdout: take(&output.stdout),
            stderr: take(&output.stderr),
        }),
        _ => Err(CommandError::Killed),
    }
}

/// The next event, waiting until `deadline` if there is one.
fn next_event(
    events: &Receiver<Event>,
    deadline: Option<Instant>,
) -> Result<Event, RecvTimeoutError> {
    match deadline {
        Some(deadline) => events.recv_deadline(deadline),
        None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
    }
}

/// What the readers have read so far, and which pipes are still open.
struct Output {
    stdout: Sink,
    stderr: Sink,
    /// Pipes whose reader has not reported yet.
    open: usize,
    /// The first read error.
    error: Option<io::Error>,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            stdout: new_sink(),
            stderr: new_sink(),
            open: 2,
            error: None,
        }
    }
}

impl Output {
    /// Takes events until both pipes have closed, a kill is asked for, or
    /// `deadline` passes.
    fn collect(&mut self, events: &Receiver<Event>, deadline: Option<Instant>) -> End {
        while self.open > 0 {
            match next_event(events, deadline) {
                Ok(Event::Closed(read)) => {
                    self.open -= 1;
                    if let Err(e) = read {
                        self.error.get_or_insert(e);
                    }
                }
                Ok(Event::Kill) => return End::Kill,
                // Only watched for once both pipes have closed.
                Ok(Event::Exited) => {}
                Err(RecvTimeoutError::Timeout) => return End::Deadline,
                // Every sender is gone, so no reader is left to report.
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        End::PipesClosed
    }

    /// The request's outcome for a child that ended with `status`.
    fn into_result(mut self, status: ExitStatus) -> Result<CommandOutput, CommandError> {
        if let Some(e) = self.error.take() {
            return Err(CommandError::Io(e));
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                return Err(CommandError::Signalled { signal });
            }
        }
        Ok(CommandOutput {
            status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        })
    }
}

/// On every way out of `run` (`Killed`, an error, a panic), the readers
/// are told that nobody reads for them any more, as `take` tells them
/// after a timeout: otherwise a reader would keep appending, for a killed
/// command, the output of a background job that writes for ever.
impl Drop for Output {
    fn drop(&mut self) {
        take(&self.stdout);
        take(&self.stderr);
    }
}

/// Starts the thread that reads one of the child's pipes to its end into
/// `sink`, and reports the end on `events`. `None` (no pipe) reports an
/// empty, closed pipe.
fn spawn_reader(
    pipe: Option<impl Read + Send + 'static>,
    stream: Stream,
    sink: &Sink,
    events: &Sender<Event>,
) -> Result<(), CommandError> {
    let events = events.clone();
    let Some(mut pipe) = pipe else {
        let _ = events.send(Event::Closed(Ok(())));
        return Ok(());
    };
    let sink = Arc::clone(sink);
    // Named after the worker it reads for: `callpool-worker-3-stdout`.
    let name = format!(
        "{}-{}",
        thread::current().name().unwrap_or("callpool"),
        match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    );
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            // A pipe's buffer is 64 KiB on Linux: one read can empty it.
            let mut chunk = vec![0; 64 * 1024];
            let read = loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break Ok(()),
                    Ok(n) => match sink.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        Some(kept) => kept.extend_from_slice(&chunk[..n]),
                        // The worker took the output and gave up on this
                        // pipe: stop, and close it (below), so whatever
                        // still writes to it meets a closed pipe.
                        None => break Ok(()),
                    },
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            drop(pipe);
            // The worker may have stopped listening (after a kill, once
            // `PIPES_AFTER_KILL` has passed): it took what was read by then.
            let _ = events.send(Event::Closed(read));
        })
        .map(drop)
        // The `Reaper` kills and reaps the child on the way out, which also
        // ends a reader already started.
        .map_err(CommandError::Io)
}

/// Owns the child. Dropping it kills the child unless it was reaped, and
/// reaps it: no path out of `run`, a panic included, leaves a zombie or a
/// stray child behind.
struct Reaper {
    child: Child,
    /// The child leads a process group of its own (the user gave `cmd`
    /// `CommandExt::process_group(0)`, or it runs a new session): a kill
    /// then goes to the whole group, and so reaches what the child started.
    own_group: bool,
    /// `wait` has reaped the child: its pid may belong to another process
    /// from then on, so nothing is signalled by it any more.
    reaped: bool,
}

impl Reaper {
    fn new(child: Child) -> Reaper {
        // Read before the child is reaped, while its pid is still its own;
        // std's `spawn` returns once the child has set its group.
        #[cfg(unix)]
        let own_group = {
            let pid = rustix::process::Pid::from_child(&child);
            rustix::process::getpgid(Some(pid)).ok() == Some(pid)
        };
        #[cfg(not(unix))]
        let own_group = false;
        Reaper {
            child,
            own_group,
            reaped: false,
        }
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait();
        self.reaped |= status.is_ok();
        status
    }

    /// The child's status if it has exited (reaping it), without waiting.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.child.try_wait();
        self.reaped |= matches!(status, Ok(Some(_)));
        status
    }

    /// For a child that closed both pipes and runs on: waits, on `events`,
    /// for its exit (`PipesClosed`: it has exited and can be reaped at
    /// once), `deadline` or a kill. A thread of its own waits for the exit
    /// without reaping (`waitid` with `WNOWAIT`), so the child's pid stays
    /// its own while the worker may still signal it. Only on Linux; where
    /// no such wait exists, or no thread can be started, `Err`: the caller
    /// then waits for the exit itself.
    fn watch_exit(
        &self,
        exit_line: Sender<Event>,
        events: &Receiver<Event>,
        deadline: Option<Instant>,
    ) -> io::Result<End> {
        #[cfg(target_os = "linux")]
        {
            use rustix::io::Errno;
            use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
            let pid = Pid::from_child(&self.child);
            let name = format!("{}-exit", thread::current().name().unwrap_or("callpool"));
            thread::Builder::new().name(name).spawn(move || {
                let exited = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
                while let Err(Errno::INTR) = waitid(WaitId::Pid(pid), exited) {}
                // The worker may have stopped listening (it killed and
                // reaped the child, and then this wait ends too).
                let _ = exit_line.send(Event::Exited);
            })?;
            loop {
                match next_event(events, deadline) {
                    // Both readers have reported already: none comes.
                    Ok(Event::Closed(_)) => {}
                    Ok(Event::Exited) | Err(RecvTimeoutError::Disconnected) => {
                        return Ok(End::PipesClosed)
                    }
                    Ok(Event::Kill) => return Ok(End::Kill),
                    Err(RecvTimeoutError::Timeout) => return Ok(End::Deadline),
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (exit_line, events, deadline);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    fn kill_and_wait(&mut self) -> io::Result<ExitStatus> {
        if !self.reaped {
            self.kill_group();
        }
        // A kill fails only for a child that has exited and been reaped,
        // and then `wait` returns its status.
        let _ = self.child.kill();
        self.wait()
    }

    /// Kills every process of the child's own group, if it has one. The
    /// child is not reaped yet, so the group's id (its pid) is not anyone
    /// else's; a group with no process left is nothing to act on.
    fn kill_group(&self) {
        #[cfg(unix)]
        if self.own_group {
            let group = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // After a successful `wait` both calls return at once: std keeps the
        // status and never signals a reaped pid, and neither does `kill_group`.
        let _ = self.kill_and_wait();
    }
}

// ---------------------------------------------------------------------------
// The registry of running commands, for `shutdown_now`.
// ---------------------------------------------------------------------------

/// Running commands by pool, so that `shutdown_now` can kill them.
struct Registry {
    /// The kill line of each running command, keyed by (pool id, command
    /// number).
    running: BTreeMap<(u64, u64), Sender<Event>>,
    /// Pools whose commands `shutdown_now` killed. A worker of one of them
    /// that took a command request just before the pool closed must not
    /// start it. Pool ids are never reused, so this grows by one id per
    /// pool shut down with `shutdown_now`.
    killed: BTreeSet<u64>,
    /// The number the next registered command gets.
    next: u64,
}

/// One lock for the whole registry: it is taken twice per command (a
/// process start costs far more) and once per `shutdown_now`, and a kill
/// must see every registration made before it.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    running: BTreeMap::new(),
    killed: BTreeSet::new(),
    next: 0,
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while the lock is held (map updates and channel sends
    // that never block), so a poisoned registry is still consistent.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running command's entry in the registry, removed when dropped.
struct Registration {
    key: (u64, u64),
}

impl Registration {
    /// Registers a command about to start on a worker of a pool; `None` on
    /// a thread that is no pool's worker (no pool can shut it down).
    ///
    /// # Errors
    ///
    /// [`CommandError::Killed`] if `shutdown_now` has killed this pool's
    /// commands already.
    fn new(kill: &Sender<Event>) -> Result<Option<Registration>, CommandError> {
        let Some(pool) = worker_thread::pool() else {
            return Ok(None);
        };
        let mut registry = registry();
        if registry.killed.contains(&pool) {
            return Err(CommandError::Killed);
        }
        registry.next += 1;
        let key = (pool, registry.next);
        registry.running.insert(key, kill.clone());
        Ok(Some(Registration { key }))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().running.remove(&self.key);
    }
}

/// Kills every command running on a worker of pool `pool`, and any that
/// one of its workers starts later (`ThreadPool::shutdown_now`). Never
/// blocks: each kill is a message to the worker running the command.
pub(crate) fn kill_running(pool: u64) {
    let mut registry = registry();
    registry.killed.insert(pool);
    let mut killed = 0;
    for kill in registry
        .running
        .range((pool, 0)..=(pool, u64::MAX))
        .map(|(_, kill)| kill)
    {
        // A worker that has stopped listening is finishing on its own.
        if kill.send(Event::Kill).is_ok() {
            killed += 1;
        }
    }
    if killed > 0 {
        log::debug!("callpool: killing {killed} running commands of pool {pool}");
    }
}

/// Forgets pool `pool`'s mark of `kill_running`: the pool is gone, and so
/// are its workers, so none of them can start a command any more.
pub(crate) fn forget_pool(pool: u64) {
    registry().killed.remove(&pool);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send_sync_static<T: Send + Sync + 'static>() {}

    /// `shutdown_now` marks its pool's commands killed for good; once the
    /// pool is gone the mark goes too (each pool shut down this way kept
    /// about 20 bytes for the life of the process).
    #[test]
    fn a_pool_shut_down_now_leaves_no_mark_once_gone() {
        let pool = crate::ThreadPool::new(1);
        let id = pool
            .submit(|_: ()| worker_thread::pool(), ())
            .unwrap()
            .wait()
            .unwrap()
            .expect("a worker knows its pool");
        let keep = pool.clone();
        assert!(pool.shutdown_now().is_empty());
        assert!(registry().killed.contains(&id));
        keep.join_all_dismissed_workers();
        drop(keep);
        assert!(!registry().killed.contains(&id));
    }

    #[test]
    fn command_errors_can_travel_between_threads() {
        is_send_sync_static::<CommandError>();
        is_send_sync_static::<CommandOutput>();
    }

    #[test]
    fn off_a_worker_a_command_runs_unregistered() {
        let (kill, _) = flume::unbounded();
        assert!(matches!(Registration::new(&kill), Ok(None)));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2"]);
        let output = run(cmd, None).expect("sh runs");
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
    }
}
