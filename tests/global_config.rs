//! `configure_global` checks its settings as `Builder::build` does and says
//! so at once; `global()` never falls back to other settings in silence.
//! One test: the global pool is made once per process.

use callpool::{configure_global, global, GlobalPoolError, ThreadPool, WorkRequest, MAX_WORKERS};

#[test]
fn invalid_global_settings_are_refused_when_configured() {
    let invalid = |builder| {
        matches!(
            configure_global(builder),
            Err(GlobalPoolError::InvalidSettings(_))
        )
    };
    assert!(invalid(ThreadPool::builder().thread_name("a\0b")));
    assert!(invalid(ThreadPool::builder().stack_size(0)));
    assert!(invalid(ThreadPool::builder().workers(MAX_WORKERS + 1)));

    // Refused settings leave the global pool unconfigured: these apply.
    assert!(configure_global(ThreadPool::builder().workers(2)).is_ok());
    // Accepted settings are not replaced by a second call, valid or not.
    assert!(matches!(
        configure_global(ThreadPool::builder().workers(3)),
        Err(GlobalPoolError::AlreadyConfigured)
    ));
    assert!(matches!(
        configure_global(ThreadPool::builder().stack_size(0)),
        Err(GlobalPoolError::AlreadyConfigured)
    ));
    let pool = global();
    assert_eq!(pool.workers(), 2);
    pool.put_request(WorkRequest::new(|x: u32| x + 1, 1))
        .unwrap();
    assert_eq!(pool.wait(), Ok(1));
    assert!(matches!(
        configure_global(ThreadPool::builder().workers(1)),
        Err(GlobalPoolError::AlreadyInitialized)
    ));
    assert_eq!(global().workers(), 2);
}
