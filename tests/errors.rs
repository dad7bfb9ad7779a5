//! Every public error is `Send + Sync + 'static`, so `?` carries it into
//! `Box<dyn Error + Send + Sync>` (or `anyhow::Error`), and the errors that
//! hand a request back still do so after crossing threads.

use std::error::Error;
use std::time::Duration;

use callpool::{
    BuildError, GlobalPoolError, PollError, PutError, ShutdownError, SpawnError, ThreadPool,
    WaitError, WorkRequest,
};

type AnyError = Box<dyn Error + Send + Sync + 'static>;

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn every_public_error_is_send_sync_and_static() {
    assert_send_sync::<PutError>();
    assert_send_sync::<ShutdownError>();
    assert_send_sync::<WaitError>();
    assert_send_sync::<PollError>();
    assert_send_sync::<SpawnError>();
    assert_send_sync::<BuildError>();
    assert_send_sync::<GlobalPoolError>();
    assert_send_sync::<WorkRequest>();
}

/// Each fallible call, with `?` into the boxed `Send + Sync` error.
fn uses_question_mark() -> Result<usize, AnyError> {
    let pool = ThreadPool::builder().workers(1).build()?;
    pool.put_request(WorkRequest::new(|x: u8| x, 1))?;
    pool.try_put_request(WorkRequest::new(|x: u8| x, 2))?;
    pool.put_request_timeout(WorkRequest::new(|x: u8| x, 3), Duration::from_secs(30))?;
    pool.create_workers(1)?;
    pool.resize(1)?;
    let mut handled = pool.wait()?;
    pool.put_request(WorkRequest::new(|x: u8| x, 4))?;
    handled += pool.wait_timeout(Duration::from_secs(30))?;
    assert!(matches!(pool.poll(), Err(PollError::NoResultsPending)));
    pool.shutdown()?;
    Ok(handled)
}

#[test]
fn errors_convert_with_question_mark() {
    assert_eq!(uses_question_mark().unwrap(), 4);
    // And an error really travels that way.
    let failing = || -> Result<(), AnyError> {
        ThreadPool::builder().stack_size(0).build()?;
        Ok(())
    };
    let err = failing().unwrap_err();
    assert!(err.downcast_ref::<BuildError>().is_some(), "{err}");
}

#[test]
fn wait_errors_convert_into_poll_errors() {
    let e: PollError = WaitError::Timeout { pending: 1 }.into();
    assert_eq!(e, PollError::Timeout { pending: 1 });
    let e: PollError = WaitError::NoWorkersAvailable { pending: 2 }.into();
    assert_eq!(e, PollError::NoWorkersAvailable { pending: 2 });
    let e: PollError = WaitError::OnWorkerThread.into();
    assert_eq!(e, PollError::OnWorkerThread);
}

/// A wait or poll refused on a worker says what works there instead, so
/// a user who met it inside a callable knows where to go.
#[test]
fn on_worker_thread_errors_name_the_waits_that_work_on_a_worker() {
    let pool = ThreadPool::new(1);
    let ticket = pool
        .submit(
            |p: ThreadPool| {
                (
                    p.wait().unwrap_err().to_string(),
                    p.poll().unwrap_err().to_string(),
                )
            },
            pool.clone(),
        )
        .unwrap();
    let (wait, poll) = ticket.wait().unwrap();
    for (shown, verb) in [(wait, "cannot wait"), (poll, "cannot poll")] {
        assert!(shown.starts_with(verb), "{shown}");
        assert!(
            shown.contains("wait with a ticket, collector, scope or as-completed iterator"),
            "{shown}"
        );
    }
}

/// A `PutError` borrowed by another thread still hands its request back.
#[test]
fn a_put_error_shared_across_threads_still_hands_the_request_back() {
    let pool = ThreadPool::builder()
        .workers(0)
        .queue_capacity(1)
        .build()
        .unwrap();
    pool.try_put_request(WorkRequest::new(|x: u8| x, 1))
        .unwrap();
    let err = pool
        .try_put_request(WorkRequest::new(|x: u8| x, 2).with_id(9))
        .unwrap_err();
    let seen = std::thread::scope(|s| {
        s.spawn(|| (err.to_string(), err.request().id().value()))
            .join()
            .unwrap()
    });
    assert_eq!(seen.1, 9);
    assert!(seen.0.contains("full"), "{}", seen.0);
    assert!(matches!(err, PutError::Full(_)));
    assert_eq!(err.into_request().id().value(), 9);
    assert_eq!(pool.shutdown_now().len(), 1);
}

/// The counts in error messages agree with their nouns: "1 request", "2
/// requests".
#[test]
fn messages_count_in_the_singular_and_the_plural() {
    let one_and_two = |make: fn(usize) -> String| (make(1), make(2));
    assert_eq!(
        one_and_two(|pending| WaitError::Timeout { pending }.to_string()),
        (
            "timed out with 1 request pending".to_owned(),
            "timed out with 2 requests pending".to_owned()
        )
    );
    assert_eq!(
        PollError::NoWorkersAvailable { pending: 1 }.to_string(),
        "no worker threads available for 1 pending request (add some with `create_workers` or `resize`)"
    );
    assert_eq!(
        one_and_two(|pending| PollError::HeldByCaller { pending }.to_string()),
        (
            "the 1 pending result is held by the call running this callback: handled once it returns"
                .to_owned(),
            "the 2 pending results are held by the call running this callback: handled once it returns"
                .to_owned()
        )
    );
    assert_eq!(
        ShutdownError::TimedOut {
            threads: 1,
            pending: 2
        }
        .to_string(),
        "shutdown timed out with 1 thread running and 2 requests pending"
    );
    let unrun = ShutdownError::Unrun(vec![WorkRequest::new(|()| (), ()).into()]);
    assert_eq!(
        unrun.to_string(),
        "1 queued request never ran: no workers were left to run it"
    );
}
