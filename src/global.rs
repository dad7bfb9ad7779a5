//! The process-wide default pool, made on first use.

use std::sync::Mutex;

use once_cell::sync::OnceCell;

use crate::builder::{Builder, Checked};
use crate::error::GlobalPoolError;
use crate::handle::ThreadPool;

/// The global pool's one shared handle.
static GLOBAL: OnceCell<ThreadPool> = OnceCell::new();
/// Settings given by `configure_global`, already checked, taken by the
/// first `global()`. Held while the pool is made, so a configuration can
/// never slip in between "not made yet" and "made without it".
static SETTINGS: Mutex<Option<Checked>> = Mutex::new(None);

/// The handle of the process-wide pool, which is made on first use with one
/// worker per available core (or the settings given to
/// [`configure_global`]).
///
/// Every call returns the same handle, so code anywhere in the program (a
/// callback putting a follow-up included) puts on the results domain that
/// the program's `wait()` on `global()` covers. For a results domain of
/// your own on the same workers, so that independent parts of a program
/// never run each other's callbacks, ask for one: `global().new_handle()`.
///
/// The global pool lives as long as the process; its workers never keep
/// the process alive, and no handle of it shuts it down: on `global()`, a
/// clone of it or a `new_handle`, [`close`](ThreadPool::close) and
/// [`shutdown`](ThreadPool::shutdown) only wait for that handle's
/// requests, and [`shutdown_now`](ThreadPool::shutdown_now) only hands
/// them back; the pool stays open for everyone. Its settings were checked by
/// [`configure_global`]; if the OS refuses some of its threads, the pool
/// keeps those it could start and logs an error.
///
/// # Examples
///
/// ```
/// use callpool::WorkRequest;
///
/// // A callback that puts a follow-up on the global pool: the outer wait
/// // covers it, since both go to the one global handle.
/// callpool::global().put_request(WorkRequest::new(|x: u8| x + 1, 1).on_result(|_, y| {
///     callpool::global()
///         .put_request(WorkRequest::new(|y: u8| y * 10, y).on_result(|_, z| assert_eq!(z, 20)))
///         .unwrap();
/// }))?;
/// assert_eq!(callpool::global().wait()?, 2);
///
/// // A results domain of its own, on the same workers.
/// let mine = callpool::global().new_handle();
/// mine.put_request(WorkRequest::new(|x: u8| x, 3))?;
/// assert_eq!(callpool::global().pending(), 0);
/// mine.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn global() -> &'static ThreadPool {
    match GLOBAL.get() {
        Some(handle) => handle,
        None => {
            let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
            GLOBAL.get_or_init(|| make_global(settings.take()))
        }
    }
}

fn make_global(settings: Option<Checked>) -> ThreadPool {
    let checked = match settings {
        Some(checked) => checked,
        None => match Builder::new().validate() {
            Ok(checked) => checked,
            Err(e) => unreachable!("default settings are valid: {e}"),
        },
    };
    let (owner, started) = checked.start(true);
    if let Err(e) = started {
        log::error!("callpool: global pool started with fewer workers: {e}");
    }
    ThreadPool::from_owner(owner)
}

/// Sets the global pool's settings. Call it once, before the first
/// [`global`]; every setting of the builder applies, as in a pool it
/// builds: the worker count and autoscaling bounds, queue capacities,
/// names, stack size, `quiet_panics`, the worker hooks and `worker_state`.
/// The settings are checked here, as [`Builder::build`] checks them.
///
/// # Errors
///
/// [`GlobalPoolError::AlreadyInitialized`] once the global pool exists;
/// [`GlobalPoolError::AlreadyConfigured`] after an earlier call whose
/// settings were accepted (those still apply);
/// [`GlobalPoolError::InvalidSettings`] for settings `build` would refuse
/// (the global pool is then still unconfigured).
///
/// # Examples
///
/// ```
/// use callpool::{configure_global, GlobalPoolError, ThreadPool};
///
/// // In a fresh process this succeeds; here other examples may have run first.
/// let _ = configure_global(ThreadPool::builder().workers(2));
/// let _pool = callpool::global();
/// assert!(matches!(
///     configure_global(ThreadPool::builder()),
///     Err(GlobalPoolError::AlreadyInitialized)
/// ));
/// ```
pub fn configure_global(builder: Builder) -> Result<(), GlobalPoolError> {
    let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    if GLOBAL.get().is_some() {
        return Err(GlobalPoolError::AlreadyInitialized);
    }
    if settings.is_some() {
        return Err(GlobalPoolError::AlreadyConfigured);
    }
    // Checked only while unconfigured, so that `InvalidSettings` means
    // that the global pool is still unconfigured.
    let checked = builder
        .validate()
        .map_err(GlobalPoolError::InvalidSettings)?;
    *settings = Some(checked);
    Ok(())
}
