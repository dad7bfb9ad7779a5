//! Adversarial trials of external commands (`WorkRequest::command`,
//! `submit_command`, their timeouts, `shutdown_now`'s kill), of the
//! as-completed iterator and its windows (`Completions`, `InOrder`) and of
//! `map` and its chunks, with panics, cancellation half-way and a pool of
//! one worker.
//!
//! The command tests, and the one that runs in a child process, take
//! [`serial`], so the children of this process are the running test's
//! alone. Timeouts only turn a hang into a failure.

#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use callpool::{CommandError, CommandOutput, TaskError, ThreadPool, Ticket};

mod common;
use common::{until, within, HANG};

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
    let cmd = yes_behind_sleep(&marker);
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
    assert_yes_ends_unread(pid, "the abandoned pipe's reader");
    until(|| threads_named("-stderr").is_empty() && threads_named("-stdout").is_empty());
    let _ = fs::remove_file(&marker);
    pool.shutdown().unwrap();
    assert_no_children();
}

/// As [`a_killed_commands_writing_grandchild_is_not_read_and_kept_for_ever`],
/// the kill by `shutdown_now` instead of a timeout: the request ends
/// `Killed`, with no output to hand back, and the reader of the pipe the
/// background job writes to must stop all the same.
#[test]
fn a_command_killed_by_shutdown_now_leaves_no_reader_keeping_its_grandchilds_output() {
    let _serial = serial();
    let marker = marker("yes-killed");
    let cmd = yes_behind_sleep(&marker);
    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let ticket = other.submit_command(cmd).unwrap();
    let pid = pid_in(&marker);
    let _kill = KillOnDrop(pid);
    assert!(pool.shutdown_now().is_empty());
    match waited(ticket) {
        Err(TaskError::Failed(CommandError::Killed)) => {}
        other => panic!("expected a kill, got {other:?}"),
    }
    assert_yes_ends_unread(pid, "the killed command's reader");
    let _ = fs::remove_file(&marker);
    assert_no_children();
    assert_no_command_threads_left();
}

/// A script whose background job (not in a group of its own, so a kill of
/// the script misses it) writes `callpool` to the inherited stderr pipe for
/// ever; its pid goes in `marker`, and the script sleeps 30 s.
fn yes_behind_sleep(marker: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "yes callpool >&2 & echo $! > \"$1\"; exec sleep 30",
        "sh",
    ])
    .arg(marker);
    cmd
}

/// Waits until the `yes` of [`yes_behind_sleep`] (`pid`) ends on its closed
/// pipe, failing instead if the live heap passes [`HEAP_BOUND`] first: a
/// reader (`who`) that kept reading would keep what `yes` writes.
fn assert_yes_ends_unread(pid: u32, who: &str) {
    until(|| has_ended(pid) || common::heap::live() > HEAP_BOUND);
    assert!(
        common::heap::live() <= HEAP_BOUND,
        "{who} keeps what yes writes: {} MiB",
        common::heap::live() >> 20
    );
    assert!(has_ended(pid));
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Waits for the readers and exit watchers of every command to be gone.
fn assert_no_command_threads_left() {
    until(|| {
        threads_named("-stdout").is_empty()
            && threads_named("-stderr").is_empty()
            && threads_named("-exit").is_empty()
    });
}

/// Many commands of every kind on two workers, as callbacks and as
/// tickets: each ends exactly once with its own outcome (exit code and
/// output, a spawn error, a timeout, a signal), the statistics count them
/// exactly, and no child or helper thread is left.
#[test]
fn many_mixed_commands_on_two_workers_each_end_once_with_their_own_outcome() {
    let _serial = serial();
    let pool = ThreadPool::builder().workers(2).build().unwrap();
    let n = 48;
    let mut tickets = Vec::new();
    for i in 0..n {
        let ticket = match i % 6 {
            // Exits with its own number, on both pipes.
            0 | 1 => pool.submit_command(sh(&format!("echo {i}; echo e{i} >&2; exit {}", i % 7))),
            2 => pool.submit_command(Command::new(format!("callpool-no-such-program-{i}"))),
            3 => pool.submit_command_timeout(
                sh(&format!("echo {i}; exec sleep 30")),
                Duration::from_millis(50),
            ),
            4 => pool.submit_command(sh("kill -9 $$")),
            // Closes both pipes and runs on a little: the exit watch.
            _ => pool.submit_command(sh(&format!("echo {i}; exec >&- 2>&-; sleep 0.05; exit 5"))),
        };
        tickets.push(ticket.unwrap());
    }
    let (mut completed, mut failed) = (0, 0);
    for (i, ticket) in tickets.into_iter().enumerate() {
        let outcome = waited(ticket);
        match (i % 6, outcome) {
            (0 | 1, Ok(out)) => {
                assert_eq!(out.status.code(), Some((i % 7) as i32), "#{i}");
                assert_eq!(out.stdout_lossy(), format!("{i}\n"));
                assert_eq!(out.stderr_lossy(), format!("e{i}\n"));
                completed += 1;
            }
            (2, Err(TaskError::Failed(CommandError::Spawn { program, .. }))) => {
                assert_eq!(program, format!("callpool-no-such-program-{i}").as_str());
                failed += 1;
            }
            (3, Err(TaskError::Failed(CommandError::TimedOut { stdout, .. }))) => {
                assert!(format!("{i}\n").as_bytes().starts_with(&stdout), "#{i}");
                failed += 1;
            }
            (4, Err(TaskError::Failed(CommandError::Signalled { signal }))) => {
                assert_eq!(signal, 9);
                failed += 1;
            }
            (5, Ok(out)) => {
                assert_eq!(out.status.code(), Some(5));
                assert_eq!(out.stdout_lossy(), format!("{i}\n"));
                completed += 1;
            }
            (kind, other) => panic!("#{i} (kind {kind}): unexpected {other:?}"),
        }
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.failed, stats.panicked),
        (completed, failed, 0)
    );
    assert_eq!(stats.completed + stats.failed, n as u64);
    pool.shutdown().unwrap();
    assert_no_children();
    assert_no_command_threads_left();
}

/// Timeouts at their limits: `Duration::MAX` (no deadline can be
/// computed) runs the command to its end; `Duration::ZERO` ends it
/// `TimedOut` or, if it was quicker than the first look, with its output;
/// neither panics or leaves a child.
#[test]
fn command_timeouts_of_zero_and_max_neither_panic_nor_leave_a_child() {
    let _serial = serial();
    let pool = ThreadPool::new(2);
    for _ in 0..10 {
        let max = pool
            .submit_command_timeout(sh("echo max"), Duration::MAX)
            .unwrap();
        let zero = pool
            .submit_command_timeout(sh("echo zero"), Duration::ZERO)
            .unwrap();
        assert_eq!(waited(max).expect("no deadline").stdout, b"max\n");
        match waited(zero) {
            Ok(out) => assert_eq!(out.stdout, b"zero\n"),
            Err(TaskError::Failed(CommandError::TimedOut { after, stdout, .. })) => {
                assert_eq!(after, Duration::ZERO);
                assert!(b"zero\n".starts_with(&stdout));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    pool.shutdown().unwrap();
    assert_no_children();
}

/// Both pipes filled far past their 64 KiB at once, 8 MiB each: every byte
/// arrives, in order, and the request ends.
#[test]
fn a_command_writing_megabytes_to_both_pipes_gets_every_byte() {
    let _serial = serial();
    let pool = ThreadPool::new(1);
    let ticket = pool
        .submit_command(sh(
            "yes out | head -c 8388608 & yes err | head -c 8388608 >&2; wait",
        ))
        .unwrap();
    let out = waited(ticket).expect("the command ends");
    assert!(out.success());
    assert_eq!(out.stdout.len(), 8 << 20);
    assert_eq!(out.stderr.len(), 8 << 20);
    assert!(out.stdout.chunks(4).all(|c| c == b"out\n"));
    assert!(out.stderr.chunks(4).all(|c| c == b"err\n"));
    drop(pool);
    assert_no_children();
    assert_no_command_threads_left();
}

/// `shutdown_now` at a different moment each round, while commands are
/// queued, starting and running on two workers: every ticket ends exactly
/// once, `Killed` (running, or taken just before the close) or
/// `Cancelled` (not started), never with the output of a `sleep 30` that
/// ran to its end; and no child is left once the tickets have ended.
#[test]
fn shutdown_now_racing_command_starts_leaves_every_ticket_killed_or_cancelled() {
    let _serial = serial();
    let mut rng = common::Rng(0x5EED_0106);
    for round in 0..30 {
        let pool = ThreadPool::new(2);
        let other = pool.new_handle();
        let tickets: Vec<_> = (0..5)
            .map(|_| other.submit_command(sh("exec sleep 30")).unwrap())
            .collect();
        for _ in 0..rng.below(3_000) {
            std::hint::spin_loop();
        }
        if rng.chance(30) {
            std::thread::sleep(Duration::from_millis(rng.below(20)));
        }
        assert!(pool.shutdown_now().is_empty(), "round {round}");
        let (mut killed, mut cancelled) = (0, 0);
        for ticket in tickets {
            match waited(ticket) {
                Err(TaskError::Failed(CommandError::Killed)) => killed += 1,
                Err(TaskError::Cancelled) => cancelled += 1,
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(killed + cancelled, 5, "round {round}");
        assert!(
            killed <= 2 + 2,
            "round {round}: {killed} killed on two workers"
        );
        assert_no_children();
    }
    assert_no_command_threads_left();
}

/// The last handle dropped while commands run and more are queued: the
/// running ones are not killed (dropping kills nothing) but end on their
/// own, each reaped; the queued ones are cancelled to their tickets; no
/// child or helper thread is left once they have ended.
#[test]
fn dropping_the_pool_while_commands_run_reaps_them_all() {
    let _serial = serial();
    for round in 0..5 {
        let pool = ThreadPool::new(2);
        let tickets: Vec<_> = (0..6)
            .map(|i| {
                pool.submit_command(sh(&format!("sleep 0.1; echo {i}")))
                    .unwrap()
            })
            .collect();
        until(|| children().len() == 2);
        drop(pool);
        let (mut ran, mut cancelled) = (0, 0);
        for (i, ticket) in tickets.into_iter().enumerate() {
            match waited(ticket) {
                Ok(out) => {
                    assert_eq!(out.stdout_lossy(), format!("{i}\n"), "round {round}");
                    ran += 1;
                }
                Err(TaskError::Cancelled) => cancelled += 1,
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!(ran + cancelled, 6);
        assert!(
            ran >= 2,
            "round {round}: the two running commands were not left to end"
        );
        until(|| children().is_empty());
    }
    assert_no_command_threads_left();
}

// ---------------------------------------------------------------------------
// As-completed, its windows, and map.
// ---------------------------------------------------------------------------

/// From inside a callable of a pool of one worker whose request queue
/// holds one request, `as_completed` (limits 0, 1, 3), `imap` and `map`,
/// with `f` panicking on every fifth input: every input comes back once,
/// with its own outcome (the panic as `Panicked`), `imap` and `map` in
/// input order, and nothing hangs: the waiting worker runs its own
/// requests, and a put that finds the queue full does not wait for ever.
#[test]
fn windows_and_map_inside_a_callable_of_a_one_worker_bounded_pool() {
    common::hide_panics_starting_with("cwa:");
    for limit in [0, 1, 3] {
        let pool = ThreadPool::builder()
            .workers(1)
            .queue_capacity(1)
            .build()
            .unwrap();
        let inner = pool.clone();
        let ticket = pool
            .submit(
                move |_: ()| {
                    let f = |n: &u32| {
                        assert!(n % 5 != 4, "cwa: input {n}");
                        n * 10
                    };
                    let mut done: Vec<(u32, Result<u32, TaskError>)> =
                        inner.as_completed(0..20u32, limit, f).collect();
                    done.sort_by_key(|(n, _)| *n);
                    let in_order: Vec<_> = inner.imap(0..20u32, limit, move |n| f(&n)).collect();
                    let mapped = inner.map(0..20u32, move |n| f(&n));
                    (done, in_order, mapped)
                },
                (),
            )
            .unwrap();
        let (done, in_order, mapped) = within("the windows on one worker", move || ticket.wait())
            .expect("the outer callable ends");
        let expected = |n: u32| {
            if n % 5 == 4 {
                Err(TaskError::Panicked(format!("cwa: input {n}")))
            } else {
                Ok(n * 10)
            }
        };
        assert_eq!(
            done,
            (0..20).map(|n| (n, expected(n))).collect::<Vec<_>>(),
            "limit {limit}"
        );
        assert_eq!(
            in_order,
            (0..20).map(expected).collect::<Vec<_>>(),
            "limit {limit}"
        );
        assert_eq!(
            mapped,
            (0..20).map(expected).collect::<Vec<_>>(),
            "limit {limit}"
        );
        let stats = pool.stats();
        assert_eq!(stats.queued, 0);
        pool.shutdown().unwrap();
    }
}

/// An input that counts its drops and the calls of `f` on it.
struct Input {
    n: u32,
    _dropped: common::Dropped,
}

/// `as_completed` (or `imap`) dropped half-way, each round at a different
/// moment, with the later inputs held on a gate so that some are running,
/// some queued: every input pulled is dropped exactly once; those that ran
/// plus those cancelled are exactly those pulled; the statistics say the
/// same once the gate opens and the workers have passed the cancelled
/// ones; and no more than `limit` inputs were pulled past the outcomes read.
#[test]
fn a_window_dropped_half_way_accounts_for_every_input_exactly() {
    let mut rng = common::Rng(0xC0FF_EE06);
    for round in 0..40 {
        let imap = round % 2 == 1;
        let limit = 1 + rng.below(8) as usize;
        let read = rng.below(12) as usize;
        let pool = ThreadPool::new(2);
        let gate = Arc::new(common::one_way::Gate::default());
        let _open = common::one_way::OpenOnDrop(Arc::clone(&gate));
        let (pulled, dropped, ran) = (common::counter(), common::counter(), common::counter());
        let inputs = {
            let (pulled, dropped) = (Arc::clone(&pulled), Arc::clone(&dropped));
            (0..1_000u32).map(move |n| {
                pulled.fetch_add(1, Ordering::SeqCst);
                Input {
                    n,
                    _dropped: common::Dropped(Arc::clone(&dropped)),
                }
            })
        };
        let f = {
            let (gate, ran) = (Arc::clone(&gate), Arc::clone(&ran));
            move |input: &Input| {
                if input.n as usize >= read {
                    gate.pass();
                }
                ran.fetch_add(1, Ordering::SeqCst);
                input.n
            }
        };
        let got = if imap {
            let mut window = pool.imap(inputs, limit, move |input: Input| f(&input));
            let got: Vec<_> = window.by_ref().take(read).map(|o| o.unwrap()).collect();
            assert_eq!(got, (0..read as u32).collect::<Vec<_>>(), "round {round}");
            got.len()
        } else {
            let mut window = pool.as_completed(inputs, limit, f);
            let mut got: Vec<_> = window
                .by_ref()
                .take(read)
                .map(|(input, o)| (input.n, o.unwrap()))
                .collect();
            got.sort();
            assert_eq!(got, (0..read as u32).map(|n| (n, n)).collect::<Vec<_>>());
            got.len()
        };
        assert_eq!(got, read);
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(
            pulled <= read + limit,
            "round {round}: {pulled} pulled, {read} read, limit {limit}"
        );
        gate.open();
        until(|| dropped.load(Ordering::SeqCst) == pulled);
        pool.wait().unwrap();
        // The workers pass the cancelled places once they reach them.
        until(|| pool.stats().queued == 0 && pool.stats().busy == 0);
        let ran = ran.load(Ordering::SeqCst);
        let stats = pool.stats();
        assert!(ran >= read && ran <= pulled, "round {round}: ran {ran}");
        assert_eq!(
            (stats.completed, stats.cancelled),
            (ran as u64, (pulled - ran) as u64),
            "round {round} (imap {imap}, limit {limit}, read {read}): pulled {pulled}"
        );
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            pulled,
            "round {round}: dropped twice"
        );
    }
}

// ---------------------------------------------------------------------------
// Builder settings at their limits.
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// A scope while another thread shuts the pool down.
// ---------------------------------------------------------------------------

/// A scope puts requests that borrow its caller's data while another
/// thread, through a clone of the handle (which shares its results),
/// closes the pool, shuts it down with a short timeout, or shuts it down
/// now, each round at a different moment. Every put the pool accepted
/// comes back to the scope exactly once, with its own value or
/// `Cancelled`; the closer never takes a scope's outcome; a put after the
/// close is refused; and neither side hangs.
#[test]
fn a_scope_running_while_another_thread_shuts_the_pool_down_gets_each_outcome_once() {
    use std::collections::{HashMap, HashSet};
    let data: Vec<u64> = (0..300).collect();
    let mut rng = common::Rng(0x5C0B_E106);
    for round in 0..200 {
        let pool = ThreadPool::new(2);
        let closer = pool.clone();
        let mode = round % 3;
        let data_len = data.len();
        // The closer starts once the scope has put this many.
        let after = rng.below(data.len() as u64 + 20) as usize;
        let put = Arc::new(AtomicUsize::new(0));
        let seen_put = Arc::clone(&put);
        let closing = Arc::new(AtomicUsize::new(0));
        let closing_now = Arc::clone(&closing);
        let shut = std::thread::spawn(move || {
            while seen_put.load(Ordering::SeqCst) < after.min(data_len) {
                std::hint::spin_loop();
            }
            closing_now.store(1, Ordering::SeqCst);
            match mode {
                0 => closer.close().map_err(|e| e.to_string()),
                1 => match closer.shutdown_timeout(Duration::from_millis(1)) {
                    Err(callpool::ShutdownError::TimedOut { .. }) | Ok(()) => Ok(()),
                    Err(e) => Err(e.to_string()),
                },
                _ => {
                    assert!(
                        closer.shutdown_now().is_empty(),
                        "a scope's request handed back"
                    );
                    Ok(())
                }
            }
        });
        let (accepted, seen, refused) = common::within_here("the scope", || {
            pool.scope(|s| {
                let mut accepted = HashSet::new();
                let mut refused = false;
                for x in &data {
                    let work = |x: &u64| {
                        for _ in 0..2_000 {
                            std::hint::spin_loop();
                        }
                        *x * 2
                    };
                    match s.put(work, x) {
                        Ok(id) => {
                            assert!(accepted.insert(id));
                            if put.fetch_add(1, Ordering::SeqCst) + 1 == after {
                                // Go on putting only as the close begins.
                                until(|| closing.load(Ordering::SeqCst) == 1);
                            }
                        }
                        Err(_) => {
                            refused = true;
                            break;
                        }
                    }
                }
                let mut seen: HashMap<_, usize> = HashMap::new();
                s.wait_with(|id, outcome| {
                    match outcome {
                        Ok(v) => assert_eq!(v % 2, 0),
                        Err(TaskError::Cancelled) => {}
                        Err(e) => panic!("round {round}: #{id}: {e:?}"),
                    }
                    *seen.entry(id).or_default() += 1;
                });
                (accepted, seen, refused)
            })
        });
        assert_eq!(
            within("the closer", move || shut.join()).unwrap(),
            Ok(()),
            "round {round}"
        );
        let ids: HashSet<_> = seen.keys().copied().collect();
        assert_eq!(
            ids, accepted,
            "round {round} (mode {mode}): outcomes lost or foreign"
        );
        assert!(
            seen.values().all(|&n| n == 1),
            "round {round}: an outcome came twice"
        );
        assert!(refused || accepted.len() == data.len());
    }
}

// ---------------------------------------------------------------------------
// The global pool, configured to autoscale with bounded queues.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "CALLPOOL_CWA_CHILD";

/// `configure_global` with autoscaling (one worker, up to three, a short
/// keep-alive) and request and result queues of two, then
/// `callpool::global()` from eight threads at once, each putting callback
/// requests, tickets and an `imap` window on its own handle and waiting:
/// every callback runs once on its own thread, every ticket and window
/// outcome is its own, nothing hangs on the small queues, and the pool's
/// counts are exact. In a child process: the global pool is the process's.
#[test]
fn a_global_pool_configured_to_autoscale_with_bounded_queues_serves_many_threads() {
    const NAME: &str =
        "a_global_pool_configured_to_autoscale_with_bounded_queues_serves_many_threads";
    if !common::is_child(NAME, CHILD_ENV) {
        // The child process is this process's child: the command tests
        // count those.
        let _serial = serial();
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    callpool::configure_global(
        ThreadPool::builder()
            .workers(1)
            .min_workers(1)
            .max_workers(3)
            .keep_alive(Duration::from_millis(5))
            .queue_capacity(2)
            .result_capacity(2),
    )
    .unwrap();
    assert!(std::ptr::eq(callpool::global(), callpool::global()));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                // `global()` is one handle for the whole process (its
                // callbacks run on whichever thread waits on it): each
                // thread takes a results domain of its own.
                let pool = callpool::global().new_handle();
                let me = std::thread::current().id();
                let hits = common::hit_counters(40);
                let wrong_thread = common::counter();
                for i in 0..40 {
                    let hits = Arc::clone(&hits);
                    let wrong = Arc::clone(&wrong_thread);
                    pool.put_request(
                        callpool::WorkRequest::new(move |i: usize| i + 1, i).on_result(
                            move |_, v| {
                                if std::thread::current().id() != me {
                                    wrong.fetch_add(1, Ordering::SeqCst);
                                }
                                hits[v - 1].fetch_add(1, Ordering::SeqCst);
                            },
                        ),
                    )
                    .unwrap();
                }
                let tickets: Vec<_> = (0..20u64)
                    .map(|i| pool.submit(move |n: u64| n * 3, t * 1000 + i).unwrap())
                    .collect();
                let window: Vec<_> = pool.imap(0..30u64, 4, move |n| n + t).collect();
                // The puts and the window ran callbacks while they waited
                // for room: `wait` counts only those it handled itself.
                // The puts and the window ran callbacks while they waited
                // for room: `wait` counts only those it handled itself.
                assert!(pool.wait().unwrap() <= 40);
                assert_eq!(pool.pending(), 0);
                common::assert_each_once("callbacks", &hits);
                assert_eq!(wrong_thread.load(Ordering::SeqCst), 0);
                for (i, ticket) in tickets.into_iter().enumerate() {
                    assert_eq!(ticket.wait(), Ok((t * 1000 + i as u64) * 3));
                }
                assert_eq!(window, (0..30).map(|n| Ok(n + t)).collect::<Vec<_>>());
            })
        })
        .collect();
    for thread in threads {
        within("a thread of the global pool", move || thread.join()).unwrap();
    }
    let stats = callpool::global().stats();
    // 8 threads: 40 callbacks, 20 tickets, 30 window inputs each.
    assert_eq!(
        (stats.completed, stats.failed, stats.panicked),
        (8 * 90, 0, 0)
    );
    assert!(stats.workers >= 1 && stats.workers <= 3, "{stats:?}");
    common::child_ran(NAME);
}

/// Handles of one pool with bounded request and result queues, one per
/// thread, each putting callback requests and waiting: every callback must
/// run on the thread that put it and waits on its handle (README: "its
/// callback runs on the thread that calls `poll` or `wait`"), and a
/// `wait` counts only its own handle's results.
#[test]
fn callbacks_of_handles_on_bounded_queues_run_on_their_own_handles_thread() {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(2)
        .result_capacity(2)
        .build()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let handle = pool.new_handle();
            std::thread::spawn(move || {
                let me = std::thread::current().id();
                let (elsewhere, hits) = (common::counter(), common::hit_counters(200));
                for i in 0..200 {
                    let (elsewhere, hits) = (Arc::clone(&elsewhere), Arc::clone(&hits));
                    let request =
                        callpool::WorkRequest::new(|i: usize| i, i).on_result(move |_, i| {
                            if std::thread::current().id() != me {
                                elsewhere.fetch_add(1, Ordering::SeqCst);
                            }
                            hits[i].fetch_add(1, Ordering::SeqCst);
                        });
                    handle.put_request(request).unwrap();
                }
                let waited = handle.wait().unwrap();
                common::assert_each_once("callbacks", &hits);
                (elsewhere.load(Ordering::SeqCst), waited)
            })
        })
        .collect();
    let ends: Vec<(usize, usize)> = threads
        .into_iter()
        .map(|t| within("a handle's thread", move || t.join()).unwrap())
        .collect();
    assert!(
        ends.iter()
            .all(|&(elsewhere, waited)| elsewhere == 0 && waited <= 200),
        "(callbacks run on another handle's thread, wait's count) per handle: {ends:?}"
    );
}

/// Panics when dropped: a capture of `map`'s function.
struct BombOnDrop;

impl Drop for BombOnDrop {
    fn drop(&mut self) {
        panic!("cwa: a capture of map's function dropped");
    }
}

/// `map` whose function's capture panics when dropped, the last reference
/// to it let go on the caller or on a worker, whichever ends last: `map`
/// returns every outcome, no panic reaches the caller, and both workers
/// live on.
#[test]
fn map_whose_functions_capture_panics_when_dropped_loses_nothing() {
    common::hide_panics_starting_with("cwa:");
    let pool = ThreadPool::new(2);
    for round in 0..30 {
        let bomb = BombOnDrop;
        let outcomes = pool.map(0..(round * 37 + 1), move |n: u32| {
            let _keep = &bomb;
            n + 1
        });
        assert_eq!(
            outcomes,
            (1..=(round * 37 + 1)).map(Ok).collect::<Vec<_>>(),
            "round {round}"
        );
    }
    let tickets: Vec<_> = (0..4)
        .map(|n| pool.submit(|n: u32| n, n).unwrap())
        .collect();
    for (n, t) in tickets.into_iter().enumerate() {
        assert_eq!(t.wait(), Ok(n as u32));
    }
    assert_eq!(pool.stats().workers, 2);
}
