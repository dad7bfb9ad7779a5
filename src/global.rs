//! The process-wide default pool, made on first use.

use std::sync::{Arc, Mutex};

use once_cell::sync::OnceCell;

use crate::builder::Builder;
use crate::error::GlobalPoolError;
use crate::pool::{Pool, ThreadPool};

static GLOBAL: OnceCell<Arc<Pool>> = OnceCell::new();
/// Settings given by `configure_global`, taken by the first `global()`.
/// Held while the pool is made, so a configuration can never slip in
/// between "not made yet" and "made without it".
static SETTINGS: Mutex<Option<Builder>> = Mutex::new(None);

/// A new handle on the process-wide pool, which is made on first use with
/// one worker per available core (or the settings given to
/// [`configure_global`]).
///
/// Each call returns a handle with its own pending requests, so independent
/// parts of a program share the workers and never run each other's
/// callbacks. The global pool lives as long as the process; its workers
/// never keep the process alive. If the OS refuses some of its threads, the
/// pool keeps those it could start and logs an error.
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
    let pool = match GLOBAL.get() {
        Some(pool) => pool,
        None => {
            let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
            GLOBAL.get_or_init(|| make_global(settings.take().unwrap_or_default()))
        }
    };
    ThreadPool::from_pool(Arc::clone(pool))
}

fn make_global(builder: Builder) -> Arc<Pool> {
    let (pool, started) = match builder.build_pool(true) {
        Ok(made) => made,
        Err(e) => {
            log::error!("callpool: invalid global pool settings ({e}); using the defaults");
            match Builder::new().build_pool(true) {
                Ok(made) => made,
                Err(e) => unreachable!("default settings are valid: {e}"),
            }
        }
    };
    if let Err(e) = started {
        log::error!("callpool: global pool started with fewer workers: {e}");
    }
    pool
}

/// Sets the global pool's settings. Call it once, before the first
/// [`global`]; the worker count, queue capacities, names and stack size all
/// apply.
///
/// # Errors
///
/// [`GlobalPoolError::AlreadyInitialized`] once the global pool exists.
///
/// # Examples
///
/// ```
/// use callpool::{configure_global, GlobalPoolError, ThreadPool};
///
/// // In a fresh process this succeeds; here other examples may have run first.
/// let _ = configure_global(ThreadPool::builder().workers(2));
/// let _pool = callpool::global();
/// assert_eq!(configure_global(ThreadPool::builder()), Err(GlobalPoolError::AlreadyInitialized));
/// ```
pub fn configure_global(builder: Builder) -> Result<(), GlobalPoolError> {
    let mut settings = SETTINGS.lock().unwrap_or_else(|e| e.into_inner());
    if GLOBAL.get().is_some() {
        return Err(GlobalPoolError::AlreadyInitialized);
    }
    *settings = Some(builder);
    Ok(())
}
