//! The process-wide default pool, made on first use.

use std::sync::{Arc, Mutex};

use once_cell::sync::OnceCell;

use crate::builder::{Builder, Checked};
use crate::error::GlobalPoolError;
use crate::handle::ThreadPool;
use crate::pool::PoolOwner;

static GLOBAL: OnceCell<Arc<PoolOwner>> = OnceCell::new();
/// Settings given by `configure_global`, already checked, taken by the
/// first `global()`. Held while the pool is made, so a configuration can
/// never slip in between "not made yet" and "made without it".
static SETTINGS: Mutex<Option<Checked>> = Mutex::new(None);

/// A new handle on the process-wide pool, which is made on first use with
/// one worker per available core (or the settings given to
/// [`configure_global`]).
///
/// Each call returns a handle with its own pending requests, so independent
/// parts of a program share the workers and never run each other's
/// callbacks. The global pool lives as long as the process; its workers
/// never keep the process alive. Its settings were checked by
/// [`configure_global`]; if the OS refuses some of its threads, the pool
/// keeps those it could start and logs an error.
///
/// # Examples
///
/// ```
/// use callpool::WorkRequest;
///
/// let mine = callpool::global();
/// let theirs = callpool::global();
/// mine.put_request(WorkRequest::new(|x: u8| x + 1, 1).on_result(|_, y| assert_eq!(y, 2)))?;
/// assert_eq!(theirs.pending(), 0);
/// mine.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn global() -> ThreadPool {
    let owner = match GLOBAL.get() {
        Some(owner) => owner,
        None => {
            let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
            GLOBAL.get_or_init(|| make_global(settings.take()))
        }
    };
    ThreadPool::from_owner(Arc::clone(owner))
}

fn make_global(settings: Option<Checked>) -> Arc<PoolOwner> {
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
    owner
}

/// Sets the global pool's settings. Call it once, before the first
/// [`global`]; the worker count, queue capacities, names and stack size all
/// apply. The settings are checked here, as [`Builder::build`] checks them.
///
/// # Errors
///
/// [`GlobalPoolError::AlreadyInitialized`] once the global pool exists;
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
    let checked = builder
        .validate()
        .map_err(GlobalPoolError::InvalidSettings)?;
    let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    if GLOBAL.get().is_some() {
        return Err(GlobalPoolError::AlreadyInitialized);
    }
    *settings = Some(checked);
    Ok(())
}
