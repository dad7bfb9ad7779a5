//! The prose of `docs/guide.md`, `docs/from-python.md` and `README.md`,
//! claim by claim: each test quotes the sentence it checks and names its
//! section, and checks it exactly (counts, threads, error variants, log
//! records), with gates and channels for order; a timeout only turns a
//! hang into a failure.

mod common;

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use callpool::{
    make_requests, CommandError, Context, PollError, Progress, PutError, ShutdownError, TaskError,
    ThreadPool, WaitError, WorkRequest, MAX_WORKERS,
};
use common::one_way::{Gate as OneWay, OpenOnDrop};
use common::{counter, gate, hide_panics_starting_with, until, within, Dropped, TestResult, HANG};

// ---------------------------------------------------------------------------
// A logger that records every record with its level and thread, so that "is
// logged" claims are checked, each test finding its own records by a unique
// text or its own thread's name.

struct Recorder(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let thread = thread::current().name().unwrap_or("").to_owned();
        self.0
            .lock()
            .unwrap()
            .push((record.level(), thread, record.args().to_string()));
    }
    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));

fn recorder() -> &'static Recorder {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&RECORDER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    &RECORDER
}

/// The records whose message contains `text`.
fn logged(text: &str) -> Vec<(log::Level, String, String)> {
    recorder()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, m)| m.contains(text))
        .cloned()
        .collect()
}

fn here() -> thread::ThreadId {
    thread::current().id()
}

fn name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

/// A request that blocks its worker on `gate` until the test opens it and
/// says on `started` when it runs.
fn held(gate: &Arc<OneWay>, started: mpsc::Sender<()>) -> impl Fn(()) + Send + Sync + 'static {
    let gate = Arc::clone(gate);
    move |()| {
        let _ = started.send(());
        gate.pass();
    }
}

// ===========================================================================
// docs/guide.md, "Batches" and `Batch::on_done`

/// guide.md, *Batches*: "`pool.wait()?; // the batch-done callback runs in
/// here`"; `Batch::on_done`: "runs once, with the final `Progress`, when
/// every request of the batch has ended, after every one of their own
/// callbacks: ... with one thread polling, right after the last request's
/// callback".
#[test]
fn batch_done_runs_once_in_wait_after_every_member_callback() -> TestResult {
    let pool = ThreadPool::new(3);
    let member_callbacks = counter();
    let (done_tx, done_rx) = mpsc::channel();
    let m = Arc::clone(&member_callbacks);
    let m2 = Arc::clone(&member_callbacks);
    let batch = pool.put_batch(make_requests(
        |n: u64| {
            if n % 3 == 0 {
                panic!("guide-claims batch {n}")
            } else {
                n
            }
        },
        0..30u64,
        move |_, _| {
            m.fetch_add(1, Ordering::SeqCst);
        },
        move |_, _| {
            m2.fetch_add(1, Ordering::SeqCst);
        },
    ))?;
    let mc = Arc::clone(&member_callbacks);
    batch.on_done(move |p: Progress| {
        done_tx
            .send((here(), p, mc.load(Ordering::SeqCst)))
            .unwrap();
    });
    hide_panics_starting_with("guide-claims batch");
    pool.wait()?;
    let (thread, progress, callbacks_before) = done_rx.try_recv().expect("ran inside wait");
    assert_eq!(thread, here());
    assert_eq!(
        (
            progress.total,
            progress.done,
            progress.failed,
            progress.cancelled
        ),
        (30, 20, 10, 0)
    );
    assert_eq!(callbacks_before, 30, "after every member's callback");
    assert!(done_rx.try_recv().is_err(), "exactly once");
    Ok(())
}

/// `Batch::on_done`: "or here, at once, if the batch has already ended";
/// "a call after it ran is dropped unrun"; "a second call before it ran
/// replaces the first (which is dropped unrun)".
#[test]
fn batch_done_at_once_when_ended_and_only_once() -> TestResult {
    let pool = ThreadPool::new(1);
    let batch = pool.put_batch(make_requests(|n: u8| n, 0..4u8, |_, _| {}, |_, _| {}))?;
    pool.wait()?;
    let runs = counter();
    let r = Arc::clone(&runs);
    let caller = here();
    batch.on_done(move |p| {
        assert_eq!(here(), caller);
        assert_eq!(p.done, 4);
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "ran before on_done returned"
    );
    let dropped = counter();
    let d = Dropped(Arc::clone(&dropped));
    let r = Arc::clone(&runs);
    batch.on_done(move |_| {
        let _keep = &d;
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        (runs.load(Ordering::SeqCst), dropped.load(Ordering::SeqCst)),
        (1, 1)
    );

    // Replaced before it ran: the first is dropped unrun.
    let pool = ThreadPool::new(0);
    let batch = pool.put_batch(make_requests(|n: u8| n, 0..2u8, |_, _| {}, |_, _| {}))?;
    let (first, second) = (counter(), counter());
    let first_dropped = counter();
    let (f, s, fd) = (
        Arc::clone(&first),
        Arc::clone(&second),
        Dropped(Arc::clone(&first_dropped)),
    );
    batch.on_done(move |_| {
        let _keep = &fd;
        f.fetch_add(1, Ordering::SeqCst);
    });
    batch.on_done(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(first_dropped.load(Ordering::SeqCst), 1);
    pool.create_workers(1)?;
    pool.wait()?;
    assert_eq!(
        (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst)),
        (0, 1)
    );
    Ok(())
}

/// guide.md, *Which thread runs what*: a batch-done callback runs on "the
/// thread that shuts the pool down, if it hands the last members back";
/// `Progress::cancelled`: "Ended without starting (handed back by a
/// shutdown, too)".
#[test]
fn batch_done_on_the_shutting_thread_when_shutdown_hands_members_back() -> TestResult {
    for now in [false, true] {
        let pool = ThreadPool::new(0);
        let batch = pool.put_batch(make_requests(|n: u8| n, 0..3u8, |_, _| {}, |_, _| {}))?;
        let (tx, rx) = mpsc::channel();
        batch.on_done(move |p| tx.send((here(), p)).unwrap());
        let handed_back = if now {
            pool.shutdown_now().len()
        } else {
            match pool.shutdown() {
                Err(ShutdownError::Unrun(reqs)) => reqs.len(),
                other => panic!("expected Unrun, got {other:?}"),
            }
        };
        assert_eq!(handed_back, 3);
        let (thread, p) = rx.try_recv().expect("ran inside the shutdown");
        assert_eq!(thread, here());
        assert_eq!((p.total, p.cancelled, p.done), (3, 3, 0));
        assert!(batch.progress().is_complete());
    }
    Ok(())
}

// ===========================================================================
// docs/guide.md, "Which thread runs what"

/// guide.md, *Callbacks*: callbacks "run on the thread that calls `poll`,
/// `wait` or `shutdown` on the handle that put the request, never on a
/// worker"; *Which thread runs what*: "a streaming request's items: the
/// thread that polls the handle, one result callback call per item", and
/// *Streaming*: "one result callback per item, in order".
#[test]
fn callbacks_and_stream_items_run_on_the_polling_thread_in_order() -> TestResult {
    let pool = ThreadPool::new(3);
    let seen = Arc::new(Mutex::new(Vec::new()));
    for n in 0..40u32 {
        let seen = Arc::clone(&seen);
        pool.put_request(WorkRequest::new(|n: u32| n, n).on_result(move |_, n| {
            seen.lock().unwrap().push((here(), n));
        }))?;
    }
    let items = Arc::new(Mutex::new(Vec::new()));
    let it = Arc::clone(&items);
    pool.put_request(
        WorkRequest::streaming(
            |k: u32, out: &callpool::Emitter<'_, u32>| {
                for i in 0..k {
                    out.emit(i)?;
                }
                Ok::<_, callpool::Closed>(())
            },
            100,
        )
        .on_result(move |_, i| it.lock().unwrap().push((here(), i))),
    )?;
    pool.wait()?;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 40);
    assert!(seen.iter().all(|(t, _)| *t == here()));
    let items = items.lock().unwrap();
    assert_eq!(
        items.iter().map(|(_, i)| *i).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    assert!(items.iter().all(|(t, _)| *t == here()));
    Ok(())
}

/// One worker, a result queue of one, and two callback requests ahead:
/// the second's result can go in only once someone handles the first's.
/// Returns the pool and the receiver of the threads the callbacks ran on.
fn stuck_behind_full_results(
) -> Result<(ThreadPool, mpsc::Receiver<thread::ThreadId>), Box<dyn std::error::Error>> {
    let pool = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()?;
    let (tx, rx) = mpsc::channel();
    for n in 0..2u32 {
        let tx = tx.clone();
        pool.put_request(
            WorkRequest::new(|n: u32| n, n).on_result(move |_, _| tx.send(here()).unwrap()),
        )?;
    }
    Ok((pool, rx))
}

/// guide.md, *Which thread runs what*: result callbacks run, "with a
/// bounded result queue (`result_capacity`) also a thread blocked on that
/// handle in a ticket's `wait`, `map`, `imap`, `as_completed`, a collector
/// (its `poll_with` too), a scope ..., while a worker is stuck on the full
/// queue". Each way of waiting is put behind two callback requests on one
/// worker: its own request can run only after the first callback made
/// room, and nobody but the waiting thread can run it.
#[test]
fn waits_on_a_bounded_handle_run_its_callbacks_while_a_worker_is_stuck() -> TestResult {
    type Way = fn(&ThreadPool);
    let ways: [(&str, Way); 7] = [
        ("ticket wait", |p| {
            assert_eq!(p.submit(|n: u8| n, 1).unwrap().wait(), Ok(1))
        }),
        ("map", |p| assert_eq!(p.map(0..3u8, |n: u8| n).len(), 3)),
        ("imap", |p| {
            assert_eq!(p.imap(0..3u8, 1, |n: u8| n).count(), 3)
        }),
        ("as_completed", |p| {
            assert_eq!(p.as_completed(0..3u8, 1, |n: &u8| *n).count(), 3)
        }),
        ("collector wait_with", |p| {
            let mut c = p.collector::<u8>();
            c.put(|n: u8| n, 1).unwrap();
            assert_eq!(c.wait_with(|_, _| {}), 1);
        }),
        ("collector poll_with", |p| {
            let mut c = p.collector::<u8>();
            c.put(|n: u8| n, 1).unwrap();
            let mut got = 0;
            until(|| {
                got += c.poll_with(|_, _| {});
                got == 1
            });
        }),
        ("scope", |p| {
            p.scope(|s| {
                s.put(|n: u8| n, 1).unwrap();
            });
        }),
    ];
    for (what, way) in ways {
        let (pool, callbacks) = stuck_behind_full_results()?;
        let p = pool.clone();
        let ran_on = within(what, move || {
            way(&p);
            here()
        });
        assert_eq!(
            callbacks.try_recv(),
            Ok(ran_on),
            "{what}: the first callback made room"
        );
        pool.wait()?;
        assert_eq!(callbacks.try_recv().map(|_| ()), Ok(()), "{what}");
    }
    Ok(())
}

/// from-python.md, `joinAllDismissedWorkers`: "if one of them waits for
/// room in this handle's full result queue, it handles this handle's
/// results to make room"; guide.md's table names
/// `join_all_dismissed_workers` among the threads that run callbacks.
#[test]
fn join_all_dismissed_workers_makes_room_for_a_stuck_dismissed_worker() -> TestResult {
    let pool = ThreadPool::builder()
        .workers(1)
        .result_capacity(1)
        .build()?;
    let (tx, rx) = mpsc::channel();
    let t = tx.clone();
    pool.put_request(
        WorkRequest::new(|n: u8| n, 0).on_result(move |_, _| t.send(here()).unwrap()),
    )?;
    let (g, latch) = gate();
    pool.put_request(
        WorkRequest::new(move |_: ()| latch.hold(), ())
            .on_result(move |_, _| tx.send(here()).unwrap()),
    )?;
    g.await_start(); // the first result fills the queue
    assert_eq!(pool.dismiss_workers(1), 1);
    g.open(); // its result finds the queue full
    let p = pool.clone();
    let (joined, ran_on) = within("join", move || (p.join_all_dismissed_workers(), here()));
    assert_eq!(joined, 1);
    assert_eq!(rx.try_recv(), Ok(ran_on));
    // The second result, sent as the worker left, is handled by the join
    // or by this wait: once either way.
    pool.wait()?;
    assert!(rx.try_recv().is_ok());
    assert!(rx.try_recv().is_err());
    Ok(())
}

/// guide.md, *Tickets*: "No `poll` or `wait` on the handle is needed (the
/// handle does not even count the request), and no callback runs."
#[test]
fn a_ticket_is_not_pending_on_its_handle() -> TestResult {
    let pool = ThreadPool::new(0);
    let ticket = pool.submit(|n: u8| n + 1, 1)?;
    assert_eq!((pool.pending(), pool.queued()), (0, 1));
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    assert_eq!(pool.wait()?, 0);
    pool.create_workers(1)?;
    assert_eq!(ticket.wait(), Ok(2));
    Ok(())
}

// ===========================================================================
// docs/guide.md, "External commands"

fn scratch_file(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("callpool-guide-claims-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(tag);
    let _ = std::fs::remove_file(&path);
    path
}

/// guide.md, *External commands*: "`cancel()` keeps a queued command from
/// ever starting".
#[test]
fn a_cancelled_queued_command_never_starts() -> TestResult {
    let pool = ThreadPool::new(0);
    let marker = scratch_file("cancelled-command");
    let mut touch = Command::new("touch");
    touch.arg(&marker);
    let ticket = pool.submit_command(touch)?;
    assert!(ticket.cancel());
    pool.create_workers(1)?;
    // A later command on the one worker: once it has ended, the first has
    // been passed over.
    let after = pool.submit_command(Command::new("true"))?;
    assert!(within("a later command", move || after.wait()).is_ok());
    assert!(matches!(ticket.wait(), Err(TaskError::Cancelled)));
    assert!(!marker.exists(), "the cancelled command ran");
    Ok(())
}

/// guide.md, *External commands*: "`wait()` gives the `CommandOutput`, or
/// the `TaskError<CommandError>` the callback form's error callback would
/// have heard"; "A timeout or `shutdown_now` kills the program it
/// started": here a ticket's, killed by `shutdown_now`.
#[test]
fn a_command_ticket_hears_what_the_callback_form_hears() -> TestResult {
    let pool = ThreadPool::new(2);
    let (tx, rx) = mpsc::channel();
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    pool.put_request(
        WorkRequest::command_timeout(sleep, Duration::from_millis(50))
            .on_error(move |_, e| tx.send(format!("{e:?}")).unwrap()),
    )?;
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    let ticket = pool.submit_command_timeout(sleep, Duration::from_millis(50))?;
    let p = pool.clone();
    within("the callback form", move || p.wait())?;
    let by_callback = rx.try_recv()?;
    let by_ticket = format!(
        "{:?}",
        within("the ticket", move || ticket.wait()).unwrap_err()
    );
    assert_eq!(by_callback, by_ticket);
    assert!(by_ticket.starts_with("Failed(TimedOut"), "{by_ticket}");

    let started = scratch_file("killed-command");
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("touch '{}'; exec sleep 60", started.display()));
    let ticket = pool.submit_command(sh)?;
    until(|| started.exists());
    drop(pool.shutdown_now());
    assert!(matches!(
        within("the killed command", move || ticket.wait()),
        Err(TaskError::Failed(CommandError::Killed))
    ));
    Ok(())
}

// ===========================================================================
// Worker hooks and worker state (README.md, Builder rustdoc)

/// `Builder::on_worker_start`: "Runs `hook(index)` on each worker thread as
/// it starts, before it takes any request (`index` as in the thread's
/// name)"; `Context::worker_index`: "as in its thread's name and in the
/// start and stop hooks"; from-python.md, `WorkerThread`: "threads named
/// `callpool-worker-N`, `N` counting from 0 the workers the pool has
/// started, never reused after a dismissal".
#[test]
fn start_hook_runs_first_on_each_worker_with_its_name_index() -> TestResult {
    let started = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&started);
    let pool = ThreadPool::builder()
        .workers(2)
        .on_worker_start(move |index| s.lock().unwrap().push((index, name())))
        .build()?;
    let runs = Arc::new(Mutex::new(Vec::new()));
    let put = |pool: &ThreadPool| -> TestResult {
        for _ in 0..20 {
            let runs = Arc::clone(&runs);
            let started = Arc::clone(&started);
            pool.put_request(WorkRequest::with_context(
                move |cx: &Context<'_>, ()| {
                    let me = name();
                    let hooked = started.lock().unwrap().iter().any(|(_, n)| *n == me);
                    runs.lock().unwrap().push((cx.worker_index(), me, hooked));
                },
                (),
            ))?;
        }
        Ok(())
    };
    put(&pool)?;
    pool.wait()?;
    assert_eq!(pool.dismiss_workers(1), 1);
    pool.join_all_dismissed_workers();
    pool.create_workers(1)?;
    put(&pool)?;
    pool.wait()?;
    // The new worker may have run none of them, and so not have started yet.
    until(|| started.lock().unwrap().len() == 3);
    let mut started = started.lock().unwrap().clone();
    started.sort();
    assert_eq!(
        started,
        (0..3)
            .map(|i| (i, format!("callpool-worker-{i}")))
            .collect::<Vec<_>>()
    );
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 40);
    for (index, name, hooked) in runs.iter() {
        assert!(hooked, "a request ran before its worker's start hook");
        assert_eq!(*name, format!("callpool-worker-{}", index.unwrap()));
    }
    Ok(())
}

/// `Builder::worker_state`: "made by `make(index)` on the worker thread as
/// it starts and dropped there as it leaves"; "The state need not be
/// `Send`"; `Builder::on_worker_stop`: "Runs `hook(index)` on each worker
/// thread as it leaves ..., after its last request and after its
/// `worker_state` was dropped".
#[test]
fn state_is_made_and_dropped_on_its_worker_and_stop_hook_comes_last() -> TestResult {
    struct State {
        index: usize,
        _not_send: Rc<RefCell<u32>>,
        events: Arc<Mutex<Vec<String>>>,
    }
    impl Drop for State {
        fn drop(&mut self) {
            self.events
                .lock()
                .unwrap()
                .push(format!("drop {} {}", self.index, name()));
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let (e1, e2) = (Arc::clone(&events), Arc::clone(&events));
    let pool = ThreadPool::builder()
        .workers(2)
        .worker_state(move |index| {
            e1.lock().unwrap().push(format!("make {index} {}", name()));
            State {
                index,
                _not_send: Rc::new(RefCell::new(0)),
                events: Arc::clone(&e1),
            }
        })
        .on_worker_stop(move |index| e2.lock().unwrap().push(format!("stop {index} {}", name())))
        .build()?;
    for _ in 0..10 {
        let events = Arc::clone(&events);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let state = cx.worker_state::<State>().expect("made by the builder");
                *state._not_send.borrow_mut() += 1;
                events
                    .lock()
                    .unwrap()
                    .push(format!("run {} {}", state.index, name()));
            },
            (),
        ))?;
    }
    pool.shutdown()?;
    let events = events.lock().unwrap();
    for index in 0..2 {
        let me = format!("callpool-worker-{index}");
        let mine: Vec<&String> = events
            .iter()
            .filter(|e| e.ends_with(&format!(" {me}")))
            .collect();
        assert_eq!(
            mine.first().map(|s| s.as_str()),
            Some(format!("make {index} {me}").as_str())
        );
        let n = mine.len();
        assert_eq!(mine[n - 2], &format!("drop {index} {me}"));
        assert_eq!(mine[n - 1], &format!("stop {index} {me}"));
        assert!(mine[1..n - 2]
            .iter()
            .all(|e| e.starts_with(&format!("run {index} "))));
    }
    assert_eq!(events.iter().filter(|e| e.starts_with("run")).count(), 10);
    Ok(())
}

/// `Builder::on_worker_start`: "A panic in it is logged and the worker goes
/// on"; `Builder::worker_state`: "A panic in `make` is logged and that
/// worker has no state"; `Builder::on_worker_stop`: "A panic in it ... is
/// logged".
#[test]
fn panicking_hooks_and_state_makers_are_logged_and_the_worker_goes_on() -> TestResult {
    recorder();
    hide_panics_starting_with("guide-claims hook");
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("guide-hooks")
        .on_worker_start(|_| panic!("guide-claims hook: start"))
        .worker_state(|_| -> u32 { panic!("guide-claims hook: state") })
        .on_worker_stop(|_| panic!("guide-claims hook: stop"))
        .build()?;
    let (tx, rx) = mpsc::channel();
    pool.put_request(
        WorkRequest::with_context(
            |cx: &Context<'_>, ()| cx.worker_state::<u32>().is_none(),
            (),
        )
        .on_result(move |_, none| tx.send(none).unwrap()),
    )?;
    pool.wait()?;
    assert_eq!(
        rx.try_recv(),
        Ok(true),
        "the worker runs requests, with no state"
    );
    pool.shutdown()?;
    // Each logged as the panic of the code that panicked (a hook's was
    // once logged as a panicking `Drop`).
    for (what, says) in [
        ("start", "callpool: a worker start hook panicked: "),
        ("state", "callpool: making worker 0's state panicked: "),
        ("stop", "callpool: a worker stop hook panicked: "),
    ] {
        let found = logged(&format!("guide-claims hook: {what}"));
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        assert_eq!(found[0].0, log::Level::Error, "{what}");
        assert!(found[0].2.starts_with(says), "{what}: {found:?}");
    }
    Ok(())
}

/// `Builder::on_worker_stop`: "The thread counts as running until the hook
/// returns: `shutdown` and `join_all_dismissed_workers` wait for it, and
/// `shutdown_timeout` gives up on it at its timeout."
#[test]
fn a_stop_hook_holds_shutdown_and_join_until_it_returns() -> TestResult {
    for way in ["shutdown", "join", "shutdown_timeout"] {
        let hold = Arc::new(OneWay::default());
        let _open = OpenOnDrop(Arc::clone(&hold));
        let (in_hook_tx, in_hook) = mpsc::channel();
        let h = Arc::clone(&hold);
        let in_hook_tx = Mutex::new(in_hook_tx);
        let pool = ThreadPool::builder()
            .workers(1)
            .on_worker_stop(move |_| {
                in_hook_tx.lock().unwrap().send(()).unwrap();
                h.pass();
            })
            .build()?;
        let watcher = pool.clone();
        let (done_tx, done) = mpsc::channel();
        match way {
            "shutdown_timeout" => {
                let p = pool.clone();
                let r = p.shutdown_timeout(Duration::from_millis(20));
                assert!(
                    matches!(r, Err(ShutdownError::TimedOut { threads: 1, .. })),
                    "{r:?}"
                );
                in_hook.recv_timeout(HANG)?;
                hold.open();
                continue;
            }
            "shutdown" => {
                let p = pool.clone();
                thread::spawn(move || done_tx.send(p.shutdown().is_ok()).unwrap());
            }
            _ => {
                assert_eq!(pool.dismiss_workers(1), 1);
                let p = pool.clone();
                thread::spawn(move || done_tx.send(p.join_all_dismissed_workers() == 1).unwrap());
            }
        }
        in_hook.recv_timeout(HANG)?;
        assert_eq!(watcher.threads(), 1, "{way}: the thread still counts");
        assert!(
            done.try_recv().is_err(),
            "{way} returned while the stop hook ran"
        );
        hold.open();
        assert_eq!(done.recv_timeout(HANG), Ok(true), "{way}");
        assert_eq!(watcher.threads(), 0);
    }
    Ok(())
}

// ===========================================================================
// Stats (README.md: "`pool.stats()`: busy, idle and queued, the threads
// running a request now, and how many requests completed, failed, panicked
// or were cancelled"; `Stats`)

/// `Stats`: "The counts cover the pool's whole life and every handle"
/// (workers that have exited included); `failed`: "Requests that ran and
/// returned an error"; `panicked`: "Requests whose callable panicked".
#[test]
fn stats_count_every_handle_and_exited_workers() -> TestResult {
    hide_panics_starting_with("guide-claims stats");
    let pool = ThreadPool::new(2);
    let other = pool.new_handle();
    for n in 0..3u8 {
        pool.put_request(WorkRequest::new(|n: u8| n, n))?;
    }
    for _ in 0..2 {
        other.put_request(
            WorkRequest::fallible(|_: ()| Err::<u8, _>("no"), ()).on_error(|_, _| {}),
        )?;
    }
    other.put_request(
        WorkRequest::new(|_: ()| -> u8 { panic!("guide-claims stats") }, ()).on_error(|_, _| {}),
    )?;
    pool.wait()?;
    other.wait()?;
    assert_eq!(pool.dismiss_workers(2), 2);
    pool.join_all_dismissed_workers();
    let s = other.stats();
    assert_eq!((s.workers, s.threads), (0, 0));
    assert_eq!(
        (s.completed, s.failed, s.panicked, s.cancelled),
        (3, 2, 1, 0)
    );
    assert_eq!(pool.stats(), s);
    Ok(())
}

/// `Stats::cancelled`: "Requests ended before they started: cancelled (by
/// a sweep, `cancel`, a ticket) or expired. Requests handed back to the
/// caller unrun (by `shutdown_now`, in a refused put's error) are in none
/// of these counts"; "A request cancelled through its ticket ... is
/// counted here once a worker or a sweep reaches it".
#[test]
fn stats_cancelled_counts_what_ended_unstarted_and_nothing_handed_back() -> TestResult {
    let pool = ThreadPool::new(0);
    let a = pool.put_request(WorkRequest::new(|n: u8| n, 1).on_error(|_, _| {}))?;
    pool.put_request(WorkRequest::new(|n: u8| n, 2).on_error(|_, _| {}))?;
    pool.put_request(WorkRequest::new(|n: u8| n, 3).on_error(|_, _| {}))?;
    assert!(pool.cancel(a));
    assert_eq!(pool.cancel_queued(), 2);
    let expired = counter();
    let x = Arc::clone(&expired);
    pool.put_request(
        WorkRequest::new(|n: u8| n, 4)
            .deadline(Instant::now())
            .on_error(move |_, e| {
                assert_eq!(e, TaskError::Expired);
                x.fetch_add(1, Ordering::SeqCst);
            }),
    )?;
    let ticket = pool.submit(|n: u8| n, 5)?;
    assert!(ticket.cancel());
    pool.put_request(
        WorkRequest::new(|n: u8| n, 6)
            .with_id(66)
            .on_error(|_, _| {}),
    )?;
    let dup = pool.put_request(WorkRequest::new(|n: u8| n, 7).with_id(66));
    assert!(matches!(dup, Err(PutError::DuplicateId(_))));
    assert_eq!(
        pool.stats().cancelled,
        3,
        "the ticket's waits for a worker; nothing else ended"
    );
    pool.create_workers(1)?;
    // The three cancelled ones' error callbacks, the expired one's, 66's.
    assert_eq!(pool.wait()?, 5);
    let after = pool.submit(|n: u8| n, 8)?;
    assert_eq!(after.wait(), Ok(8)); // the one worker has passed the cancelled ticket
    assert_eq!(expired.load(Ordering::SeqCst), 1);
    let s = pool.stats();
    assert_eq!((s.cancelled, s.completed), (5, 2));

    let pool = ThreadPool::new(0);
    let watcher = pool.clone();
    pool.put_request(WorkRequest::new(|n: u8| n, 1))?;
    assert_eq!(pool.shutdown_now().len(), 1);
    assert_eq!(watcher.stats().cancelled, 0, "handed back, not ended");
    Ok(())
}

/// guide.md, *Fork-join*: halves are "not counted in `pending` nor as
/// requests in `stats` (only `queued` counts a half's job while it waits
/// in the queue)".
#[test]
fn join_halves_are_not_requests_in_stats_but_queued_counts_a_waiting_half() -> TestResult {
    let pool = ThreadPool::new(2);
    let busy = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&busy));
    let (busy_tx, busy_started) = mpsc::channel();
    pool.put_request(WorkRequest::new(held(&busy, busy_tx), ()))?;
    busy_started.recv_timeout(HANG)?;
    let left = Arc::new(OneWay::default());
    let _open_left = OpenOnDrop(Arc::clone(&left));
    let (left_tx, left_started) = mpsc::channel();
    let l = Arc::clone(&left);
    let left_tx = Mutex::new(left_tx);
    pool.put_request(
        WorkRequest::with_context(
            move |cx: &Context<'_>, ()| {
                let joined = cx.join(
                    |cx| {
                        // The 64th child sends the worker's slot, the half in
                        // it, to the queue.
                        for n in 0..64u8 {
                            cx.put(WorkRequest::new(|n: u8| n, n)).unwrap();
                        }
                        left_tx.lock().unwrap().send(()).unwrap();
                        l.pass();
                        1
                    },
                    |_| 2,
                );
                // Both halves done, with the other worker still busy.
                left_tx.lock().unwrap().send(()).unwrap();
                joined
            },
            (),
        )
        .on_result(|_, (a, b)| assert_eq!((a, b), (1, 2))),
    )?;
    left_started.recv_timeout(HANG)?;
    // The half's job is queued beside the 64 children; it is not pending.
    assert_eq!(
        (pool.queued(), pool.stats().queued, pool.pending()),
        (65, 65, 66)
    );
    left.open();
    left_started.recv_timeout(HANG)?;
    busy.open();
    assert_eq!(pool.wait()?, 66);
    let s = pool.stats();
    assert_eq!((s.completed, s.queued), (66, 0));
    Ok(())
}

/// guide.md, *Work that makes work*: "held children are `pending` on their
/// handle, but not counted in `queued()`", and "`cancel(id)` finds it
/// there".
#[test]
fn held_children_are_pending_not_queued_and_cancel_finds_them() -> TestResult {
    let pool = ThreadPool::new(2);
    let busy = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&busy));
    let (busy_tx, busy_started) = mpsc::channel();
    pool.put_request(WorkRequest::new(held(&busy, busy_tx), ()))?;
    busy_started.recv_timeout(HANG)?;
    let parent_gate = Arc::new(OneWay::default());
    let _open_parent = OpenOnDrop(Arc::clone(&parent_gate));
    let (ids_tx, ids) = mpsc::channel();
    let ids_tx = Mutex::new(ids_tx);
    let pg = Arc::clone(&parent_gate);
    let cancelled = counter();
    let c = Arc::clone(&cancelled);
    pool.put_request(WorkRequest::with_context(
        move |cx: &Context<'_>, ()| {
            let mut put = Vec::new();
            for n in 0..3u8 {
                let c = Arc::clone(&c);
                put.push(
                    cx.put(WorkRequest::new(|n: u8| n, n).on_error(move |_, e| {
                        assert_eq!(e, TaskError::Cancelled);
                        c.fetch_add(1, Ordering::SeqCst);
                    }))
                    .unwrap(),
                );
            }
            ids_tx.lock().unwrap().send(put).unwrap();
            pg.pass();
        },
        (),
    ))?;
    let ids = ids.recv_timeout(HANG)?;
    assert_eq!((pool.pending(), pool.queued()), (5, 0));
    assert!(pool.cancel(ids[1]));
    parent_gate.open();
    busy.open();
    assert_eq!(pool.wait()?, 5 - 1 + 1);
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    Ok(())
}

// ===========================================================================
// poll_timeout (guide.md, *A producer thread beside a polling thread*;
// from-python.md, `poll(block=True)`)

/// guide.md: "`poll_timeout` returns `NoResultsPending` at once, without
/// waiting out its timeout"; from-python.md: "block until at least one
/// result arrives, then handle every ready one".
#[test]
fn poll_timeout_returns_at_once_on_nothing_and_handles_every_ready_result() -> TestResult {
    let pool = ThreadPool::new(1);
    let p = pool.clone();
    let r = within("poll_timeout on nothing", move || {
        p.poll_timeout(Duration::from_secs(3600))
    });
    assert_eq!(r, Err(PollError::NoResultsPending));
    for n in 0..3u8 {
        pool.put_request(WorkRequest::new(|n: u8| n, n))?;
    }
    until(|| pool.stats().completed == 3);
    assert_eq!(pool.poll_timeout(HANG), Ok(3));
    assert_eq!(pool.pending(), 0);
    Ok(())
}

/// from-python.md, `NoWorkersAvailable`: "A non-blocking `poll` never
/// reports it; it returns `Ok(0)` (`poll_timeout(Duration::ZERO)` reports
/// it without blocking)"; W5: "The error carries `pending` ... They stay
/// queued: `create_workers(n)` followed by `wait()` runs them."
#[test]
fn no_workers_available_from_poll_timeout_and_wait_but_not_poll() -> TestResult {
    let pool = ThreadPool::new(0);
    pool.put_request(WorkRequest::new(|n: u8| n, 1))?;
    pool.put_request(WorkRequest::new(|n: u8| n, 2))?;
    assert_eq!(pool.poll(), Ok(0));
    assert_eq!(
        pool.poll_timeout(Duration::ZERO),
        Err(PollError::NoWorkersAvailable { pending: 2 })
    );
    assert_eq!(
        pool.poll_timeout(HANG),
        Err(PollError::NoWorkersAvailable { pending: 2 })
    );
    assert_eq!(
        pool.wait(),
        Err(WaitError::NoWorkersAvailable { pending: 2 })
    );
    assert_eq!(pool.queued(), 2);
    pool.create_workers(1)?;
    assert_eq!(pool.wait(), Ok(2));
    Ok(())
}

/// from-python.md W5: "`wait` ... report[s] `NoWorkersAvailable` only when
/// that count is zero and every result that was in flight has been
/// handled"; `dismissWorkers`: "busy ones exit after their current
/// request"; `dismissedWorkers`: "`threads() - workers()` is the number of
/// dismissed workers still running".
#[test]
fn no_workers_available_only_after_a_busy_dismissed_workers_result() -> TestResult {
    let pool = ThreadPool::new(1);
    let handled = counter();
    let h = Arc::clone(&handled);
    let (g, latch) = gate();
    pool.put_request(
        WorkRequest::new(move |_: ()| latch.hold(), ()).on_result(move |_, _| {
            h.fetch_add(1, Ordering::SeqCst);
        }),
    )?;
    pool.put_request(WorkRequest::new(|n: u8| n, 2))?;
    g.await_start();
    assert_eq!(pool.dismiss_workers(1), 1);
    assert_eq!((pool.workers(), pool.threads()), (0, 1));
    let p = pool.clone();
    let waiting = thread::spawn(move || p.wait());
    g.open();
    assert_eq!(
        waiting.join().unwrap(),
        Err(WaitError::NoWorkersAvailable { pending: 1 })
    );
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "the running request's result came first"
    );
    assert_eq!(
        pool.queued(),
        1,
        "the other stays queued: dismissed, the worker took nothing"
    );
    pool.create_workers(1)?;
    assert_eq!(pool.wait(), Ok(1));
    Ok(())
}

/// from-python.md W11: "Calling `wait`, `poll_timeout` or `shutdown` on one
/// of the pool's own **worker** threads (from inside a callable) returns
/// `OnWorkerThread`".
#[test]
fn wait_poll_timeout_and_shutdown_refuse_on_a_worker() -> TestResult {
    let pool = ThreadPool::new(1);
    let p = pool.clone();
    let ticket = pool.submit(
        move |_: ()| {
            (
                p.wait(),
                p.poll_timeout(HANG),
                p.clone()
                    .shutdown()
                    .map_err(|e| matches!(e, ShutdownError::OnWorkerThread)),
            )
        },
        (),
    )?;
    let (w, pt, sd) = within("the callable", move || ticket.wait()).unwrap();
    assert_eq!(w, Err(WaitError::OnWorkerThread));
    assert_eq!(pt, Err(PollError::OnWorkerThread));
    assert_eq!(sd, Err(true));
    assert!(!pool.is_shut_down());
    Ok(())
}

// ===========================================================================
// docs/from-python.md, the API mapping

/// `ThreadPool(num_workers)`: "`0` is allowed (requests wait for
/// `create_workers`). It panics if ... `workers > MAX_WORKERS` (4096); use
/// the builder to get an error instead"; W17: "`BuildError` for a thread
/// name containing NUL, a zero stack size, or more than `MAX_WORKERS`
/// workers"; `createWorkers`: "a shut-down pool refuses".
#[test]
fn worker_counts_and_settings_refused_as_documented() -> TestResult {
    assert_eq!(MAX_WORKERS, 4096);
    hide_panics_starting_with("");
    let panicked = std::panic::catch_unwind(|| ThreadPool::new(MAX_WORKERS + 1)).is_err();
    assert!(panicked);
    assert!(ThreadPool::builder()
        .workers(MAX_WORKERS + 1)
        .build()
        .is_err());
    assert!(ThreadPool::builder().thread_name("a\0b").build().is_err());
    assert!(ThreadPool::builder().stack_size(0).build().is_err());
    let pool = ThreadPool::new(2);
    let closer = pool.clone();
    closer.close()?;
    let refused = pool.create_workers(1).unwrap_err();
    assert!(refused.is_shut_down());
    Ok(())
}

/// `dismissWorkers(n)`: "returns how many it dismissed. Newest first, as in
/// Python. Asking for more than exist dismisses them all. Idle workers
/// exit at once"; `joinAllDismissedWorkers`: "returns how many threads
/// were joined since the last call, including those the pool reaped by
/// itself meanwhile".
#[test]
fn dismissal_is_newest_first_and_join_counts_reaped_threads() -> TestResult {
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&stopped);
    let pool = ThreadPool::builder()
        .workers(3)
        .on_worker_stop(move |i| s.lock().unwrap().push(i))
        .build()?;
    assert_eq!(pool.dismiss_workers(1), 1);
    let p = pool.clone();
    assert_eq!(
        within("join idle", move || p.join_all_dismissed_workers()),
        1
    );
    assert_eq!(*stopped.lock().unwrap(), vec![2]);
    assert_eq!(pool.dismiss_workers(1), 1);
    until(|| pool.threads() == 1);
    pool.create_workers(1)?; // reaps the exited worker 1
    assert_eq!(
        pool.join_all_dismissed_workers(),
        1,
        "reaped by the pool, counted here"
    );
    assert_eq!(pool.join_all_dismissed_workers(), 0);
    assert_eq!(pool.dismiss_workers(10), 2);
    assert_eq!(pool.join_all_dismissed_workers(), 2);
    let mut stopped = stopped.lock().unwrap().clone();
    assert_eq!(stopped[..2], [2, 1]);
    stopped.sort();
    assert_eq!(stopped, vec![0, 1, 2, 3]);
    Ok(())
}

/// `pool.workRequests`: "`pool.pending()`: this handle's requests that were
/// put and not yet handled (queued, running, or with a result waiting to
/// be polled)"; `poll()`: "It returns `Err(PollError::NoResultsPending)`
/// only when nothing was pending at the call"; W12: "the call that handles
/// the last result returns `Ok(n)`, and the next `poll()` reports
/// `NoResultsPending`"; `wait()`: "`Ok(0)` at once if nothing is pending".
#[test]
fn pending_poll_and_wait_counts() -> TestResult {
    let pool = ThreadPool::new(1);
    assert_eq!(pool.wait(), Ok(0));
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    let (g, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))?;
    g.await_start();
    assert_eq!((pool.pending(), pool.queued()), (1, 0));
    assert_eq!(pool.poll(), Ok(0), "pending, nothing ready: Ok(0)");
    g.open();
    until(|| pool.stats().completed == 1);
    assert_eq!(
        pool.pending(),
        1,
        "a result waiting to be polled is pending"
    );
    assert_eq!(pool.poll(), Ok(1));
    assert_eq!(pool.poll(), Err(PollError::NoResultsPending));
    Ok(())
}

/// `putRequest`: "From a callable on one of the pool's own workers it never
/// waits: the request goes in past the capacity. Errors: ... `NoWorkers`
/// (the queue is full and no thread is left to empty it). Every
/// `PutError` hands the request back"; `putRequest(req, block=False)`:
/// "`PutError::Full` at once"; `putRequest(req, timeout=t)`:
/// "`PutError::Timeout` ... with the request handed back".
#[test]
fn put_errors_hand_the_request_back_and_a_worker_never_waits() -> TestResult {
    let pool = ThreadPool::builder().workers(0).queue_capacity(1).build()?;
    pool.put_request(WorkRequest::new(|n: u8| n, 0))?;
    let same_id = |e: PutError, id: u64, what: &str| {
        let (ok, back) = match &e {
            PutError::Full(_) => (what == "full", e.into_request()),
            PutError::Timeout(_) => (what == "timeout", e.into_request()),
            PutError::NoWorkers(_) => (what == "no workers", e.into_request()),
            PutError::ShutDown(_) => (what == "shut down", e.into_request()),
            PutError::DuplicateId(_) => (what == "duplicate", e.into_request()),
            _ => (false, e.into_request()),
        };
        assert!(ok, "{what}");
        assert_eq!(back.id().value(), id, "{what}");
    };
    same_id(
        pool.try_put_request(WorkRequest::new(|n: u8| n, 1).with_id(1))
            .unwrap_err(),
        1,
        "full",
    );
    // With no worker at all, the timed put says so rather than wait
    // (`put_request_timeout`: "As `put_request`"); its `Timeout` is below,
    // in `bounded_puts_without_polls_and_the_other_handle_case`.
    same_id(
        pool.put_request_timeout(WorkRequest::new(|n: u8| n, 2).with_id(2), HANG)
            .unwrap_err(),
        2,
        "no workers",
    );
    let p = pool.clone();
    let e = within("a blocking put with no worker", move || {
        p.put_request(WorkRequest::new(|n: u8| n, 3).with_id(3))
            .unwrap_err()
    });
    same_id(e, 3, "no workers");

    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let p = pool.clone();
    pool.put_request(WorkRequest::new(
        move |_: ()| {
            for n in 0..5u8 {
                p.put_request(WorkRequest::new(|n: u8| n, n)).unwrap();
            }
        },
        (),
    ))?;
    let p = pool.clone();
    assert_eq!(
        within("a worker's puts past the capacity", move || p.wait()),
        Ok(6)
    );
    pool.put_request(WorkRequest::new(|n: u8| n, 0).with_id(7))?;
    let dup = pool
        .put_request(WorkRequest::new(|n: u8| n, 0).with_id(7))
        .unwrap_err();
    same_id(dup, 7, "duplicate");
    pool.wait()?;
    pool.put_request(WorkRequest::new(|n: u8| n, 0).with_id(7))?; // handled: free again
    pool.new_handle()
        .put_request(WorkRequest::new(|n: u8| n, 0).with_id(7))?; // other handle
    pool.close()?;
    same_id(
        pool.put_request(WorkRequest::new(|n: u8| n, 0).with_id(8))
            .unwrap_err(),
        8,
        "shut down",
    );
    Ok(())
}

/// `putRequest(req, timeout=t)`: "A timeout too large to represent blocks
/// without a limit".
#[test]
fn a_huge_put_timeout_blocks_rather_than_failing() -> TestResult {
    let pool = ThreadPool::builder().workers(1).queue_capacity(1).build()?;
    let (g, latch) = gate();
    pool.put_request(WorkRequest::new(move |_: ()| latch.hold(), ()))?;
    g.await_start();
    pool.put_request(WorkRequest::new(|n: u8| n, 1))?; // fills the queue
    let p = pool.clone();
    let put = thread::spawn(move || {
        p.put_request_timeout(WorkRequest::new(|n: u8| n, 2), Duration::MAX)
            .map(|_| ())
    });
    g.open();
    assert!(put.join().unwrap().is_ok());
    assert_eq!(pool.wait(), Ok(3));
    Ok(())
}

/// `WorkRequest(..., requestID=x)`: "`.with_id(x)`: a `u64`, kept exactly
/// as given"; `request.requestID`: "`is_user_chosen()` tells the two kinds
/// apart. It prints as the bare number"; W9: "An automatic id and a user
/// id with the same number are different ids, though both print as that
/// number"; `str(request)`: "`Debug` shows the id only: `WorkRequest {
/// id: RequestId(user 3), .. }`".
#[test]
fn ids_are_kept_print_bare_and_debug_as_documented() -> TestResult {
    let pool = ThreadPool::new(1);
    let auto = pool.put_request(WorkRequest::new(|n: u8| n, 0))?;
    let user = pool.put_request(WorkRequest::new(|n: u8| n, 0).with_id(auto.value()))?;
    assert_ne!(auto, user);
    assert_eq!(
        (
            auto.to_string(),
            auto.is_user_chosen(),
            user.is_user_chosen()
        ),
        (user.to_string(), false, true)
    );
    let max = pool.put_request(WorkRequest::new(|n: u8| n, 0).with_id(u64::MAX))?;
    assert_eq!(max.value(), u64::MAX);
    pool.wait()?;
    let req: WorkRequest = WorkRequest::new(|n: u8| n, 0).with_id(3).into();
    assert_eq!(
        format!("{req:?}"),
        "WorkRequest { id: RequestId(user 3), .. }"
    );
    Ok(())
}

/// `WorkRequest(..., callback=cb)`: "Without it, the value is dropped";
/// default `exc_callback`: "No `on_error`: the failure is logged at `error`
/// level through the `log` facade ... The failure never reaches
/// `on_result`."
#[test]
fn without_callbacks_values_are_dropped_and_failures_logged() -> TestResult {
    recorder();
    hide_panics_starting_with("guide-claims unhandled");
    let pool = ThreadPool::new(1);
    let dropped = counter();
    let d = Arc::clone(&dropped);
    pool.put_request(WorkRequest::new(move |_: ()| Dropped(Arc::clone(&d)), ()))?;
    let reached = counter();
    let r = Arc::clone(&reached);
    pool.put_request(
        WorkRequest::fallible(|_: ()| Err::<u8, _>("guide-claims unhandled error"), ()).on_result(
            move |_, _| {
                r.fetch_add(1, Ordering::SeqCst);
            },
        ),
    )?;
    pool.put_request(WorkRequest::new(
        |_: ()| -> u8 { panic!("guide-claims unhandled panic") },
        (),
    ))?;
    pool.wait()?;
    assert_eq!(
        (
            dropped.load(Ordering::SeqCst),
            reached.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    for text in [
        "guide-claims unhandled error",
        "guide-claims unhandled panic",
    ] {
        let found = logged(text);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        assert_eq!(found[0].0, log::Level::Error);
    }
    Ok(())
}

/// daemon worker threads: "dropping a pool never blocks"; W14: "dropping
/// the last handle: the same as `shutdown_now`, but with no handle left to
/// receive anything. Queued requests are discarded and a warning is
/// logged. It never blocks."
#[test]
fn dropping_the_last_handle_discards_queued_work_with_a_warning() -> TestResult {
    recorder();
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("guide-drop")
        .build()?;
    let hold = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&hold));
    let (tx, started) = mpsc::channel();
    pool.put_request(WorkRequest::new(held(&hold, tx), ()))?;
    started.recv_timeout(HANG)?;
    let discarded = counter();
    let ran = counter();
    let (d, r) = (Dropped(Arc::clone(&discarded)), Arc::clone(&ran));
    pool.put_request(WorkRequest::new(
        move |_: ()| {
            let _keep = &d;
            r.fetch_add(1, Ordering::SeqCst);
        },
        (),
    ))?;
    let me = name();
    let before = recorder()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, t, _)| *l == log::Level::Warn && *t == me)
        .count();
    within_here_drop(pool);
    assert_eq!(discarded.load(Ordering::SeqCst), 1);
    let warnings: Vec<_> = recorder()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, t, _)| *l == log::Level::Warn && *t == me)
        .cloned()
        .collect();
    assert_eq!(warnings.len(), before + 1, "{warnings:?}");
    hold.open();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    Ok(())
}

/// Drops `pool` on this thread, aborting the test binary on a hang.
fn within_here_drop(pool: ThreadPool) {
    common::within_here("dropping the pool", move || drop(pool));
}

/// W14: "`shutdown()`: ... Requests of this handle that no worker could run
/// (the pool had none) are handed back in `ShutdownError::Unrun`";
/// "`shutdown_now()`: ... hands back this handle's requests that no worker
/// had started. Unstarted requests of other handles are cancelled, so
/// their `on_error` gets `TaskError::Cancelled` at their next
/// `poll`/`wait`. ... Other handles still receive the results of their own
/// running requests."
#[test]
fn shutdown_hands_back_and_shutdown_now_cancels_other_handles() -> TestResult {
    let pool = ThreadPool::new(0);
    let mine = pool.put_request(WorkRequest::new(|n: u8| n, 1))?;
    match pool.shutdown() {
        Err(ShutdownError::Unrun(reqs)) => {
            assert_eq!(reqs.iter().map(|r| r.id()).collect::<Vec<_>>(), vec![mine]);
        }
        other => panic!("expected Unrun, got {other:?}"),
    }

    let pool = ThreadPool::new(1);
    let other = pool.new_handle();
    let (g, latch) = gate();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&outcomes);
    other.put_request(
        WorkRequest::new(move |_: ()| latch.hold(), ()).on_result(move |_, _| {
            o.lock().unwrap().push("running: result".to_string());
        }),
    )?;
    g.await_start();
    let o = Arc::clone(&outcomes);
    other.put_request(WorkRequest::new(|n: u8| n, 2).on_error(move |_, e| {
        o.lock().unwrap().push(format!("queued: {e:?}"));
    }))?;
    let a = pool.put_request(WorkRequest::new(|n: u8| n, 3))?;
    let back = pool.shutdown_now();
    assert_eq!(back.iter().map(|r| r.id()).collect::<Vec<_>>(), vec![a]);
    g.open();
    other.wait()?;
    let mut outcomes = outcomes.lock().unwrap().clone();
    outcomes.sort();
    assert_eq!(outcomes, ["queued: Cancelled", "running: result"]);
    Ok(())
}

/// W6: "A panic in a callback passes out of `poll`/`wait` to the caller.
/// ... That request is no longer pending, and the results not yet handled
/// are kept ... for the next `poll`/`wait`"; W11: "a callback may call
/// `wait()` (or `poll()`) on its own handle".
#[test]
fn a_panicking_callback_leaves_the_handle_consistent_and_wait_nests() -> TestResult {
    hide_panics_starting_with("guide-claims callback");
    let pool = ThreadPool::new(1);
    let hits = common::hit_counters(5);
    for i in 0..5 {
        pool.put_request(common::hit_request(i, &hits))?;
    }
    pool.put_request(
        WorkRequest::new(|n: u8| n, 0).on_result(|_, _| panic!("guide-claims callback")),
    )?;
    let p = pool.clone();
    let nested = Arc::new(Mutex::new(None));
    let n = Arc::clone(&nested);
    pool.put_request(WorkRequest::new(|n: u8| n, 0).on_result(move |_, _| {
        *n.lock().unwrap() = Some(p.wait().map(|_| ()).map_err(|e| e.to_string()));
    }))?;
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.wait()));
    assert!(first.is_err(), "the callback's panic passed out of wait");
    assert!(pool.pending() <= 6);
    pool.wait()?;
    assert_eq!(pool.pending(), 0);
    common::assert_each_once("callbacks", &hits);
    assert!(nested.lock().unwrap().is_some(), "the nested wait returned");
    Ok(())
}

/// W4: "Once `dismiss_workers` returns, no dismissed worker takes a request
/// from an open pool."
#[test]
fn a_dismissed_idle_worker_takes_nothing() -> TestResult {
    let pool = ThreadPool::new(2);
    until(|| pool.stats().idle == 2);
    assert_eq!(pool.dismiss_workers(1), 1);
    let ran_on = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..50 {
        let r = Arc::clone(&ran_on);
        pool.put_request(WorkRequest::with_context(
            move |cx: &Context<'_>, ()| r.lock().unwrap().push(cx.worker_index()),
            (),
        ))?;
    }
    pool.wait()?;
    assert!(ran_on.lock().unwrap().iter().all(|i| *i == Some(0)));
    Ok(())
}

/// W18: "200 puts with `queue_capacity(1)` and `result_capacity(1)`, with no
/// `poll` between them, complete without a deadlock"; "A blocked put
/// handles only its own handle's results ... put with
/// `put_request_timeout`, which hands the request back in
/// `PutError::Timeout` so that you can poll P and put again."
#[test]
fn bounded_puts_without_polls_and_the_other_handle_case() -> TestResult {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_capacity(1)
        .result_capacity(1)
        .build()?;
    let p = pool.clone();
    let hits = common::hit_counters(200);
    let h = Arc::clone(&hits);
    within("200 puts", move || {
        for i in 0..200 {
            p.put_request(common::hit_request(i, &h)).unwrap();
        }
        p.wait().unwrap();
    });
    common::assert_each_once("callbacks", &hits);

    let h = pool.new_handle();
    pool.put_request(WorkRequest::new(|n: u8| n, 1))?;
    pool.put_request(WorkRequest::new(|n: u8| n, 2))?;
    h.put_request(WorkRequest::new(|n: u8| n, 3))?;
    let e = h.put_request_timeout(WorkRequest::new(|n: u8| n, 4), Duration::from_millis(50));
    assert!(matches!(e, Err(PutError::Timeout(_))), "{e:?}");
    assert_eq!(pool.wait(), Ok(2));
    h.put_request(e.unwrap_err().into_request())?;
    assert_eq!(h.wait(), Ok(2));
    Ok(())
}

/// *Handles and the global pool*: "`poll()` on one handle never runs
/// another handle's callbacks"; "`callpool::global()` returns the one
/// handle ... configure it once, beforehand, with `configure_global`";
/// "`shutdown()` on such a handle only waits for that handle's requests,
/// and `shutdown_now()` takes only that handle's queued requests out; the
/// global pool keeps running"; `(none)` row: "`configure_global` checks the
/// settings as `build` does (`GlobalPoolError::InvalidSettings`), refuses
/// a second configuration (`AlreadyConfigured`) and refuses once the global
/// pool exists (`AlreadyInitialized`)". The only test here that touches
/// the global pool.
#[test]
fn global_pool_configuration_and_handles() -> TestResult {
    use callpool::{configure_global, global, GlobalPoolError};
    assert!(matches!(
        configure_global(ThreadPool::builder().stack_size(0)),
        Err(GlobalPoolError::InvalidSettings(_))
    ));
    configure_global(ThreadPool::builder().workers(2).thread_name("guide-global"))?;
    assert!(matches!(
        configure_global(ThreadPool::builder()),
        Err(GlobalPoolError::AlreadyConfigured)
    ));
    let g = global();
    assert_eq!(g.workers(), 2);
    let after = configure_global(ThreadPool::builder());
    assert!(
        matches!(after, Err(GlobalPoolError::AlreadyInitialized)),
        "{after:?}"
    );

    let hold = Arc::new(OneWay::default());
    let _open = OpenOnDrop(Arc::clone(&hold));
    let (tx, started) = mpsc::channel();
    let global_ran = counter();
    let gr = Arc::clone(&global_ran);
    g.put_request(
        WorkRequest::new(held(&hold, tx), ()).on_result(move |_, _| {
            gr.fetch_add(1, Ordering::SeqCst);
        }),
    )?;
    started.recv_timeout(HANG)?;
    let mine = g.new_handle();
    mine.put_request(WorkRequest::new(|n: u8| n, 1))?;
    assert_eq!(
        g.poll(),
        Ok(0),
        "the other handle's result is not this handle's"
    );
    within(
        "a handle's shutdown beside a running global request",
        move || mine.shutdown(),
    )?;
    assert!(!g.is_shut_down());
    let queued_here = g.new_handle();
    let back = queued_here.shutdown_now();
    assert!(back.is_empty());
    assert_eq!(
        g.submit(|n: u8| n + 1, 1)?.wait(),
        Ok(2),
        "the global pool keeps running"
    );
    hold.open();
    assert_eq!(g.wait(), Ok(1));
    assert_eq!(global_ran.load(Ordering::SeqCst), 1);
    Ok(())
}
