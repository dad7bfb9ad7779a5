//! [`TaskError`]: why a request produced no result.

use std::convert::Infallible;
use std::fmt;

/// Why a request produced no result.
///
/// The error callback of a request receives one of these. `E` is the error
/// type of a fallible callable ([`WorkRequest::fallible`]); for an infallible
/// one it is [`Infallible`], so only [`Panicked`](TaskError::Panicked),
/// [`Cancelled`](TaskError::Cancelled) and [`Expired`](TaskError::Expired)
/// can occur.
///
/// It is an [`Error`](std::error::Error) when `E` is one, so `?` takes a
/// `TaskError<std::num::ParseIntError>` into a `Box<dyn Error>`. A
/// `TaskError<&str>` or `TaskError<String>` is not (neither `&str` nor
/// `String` is an `Error`): `?` on one does not compile; convert it with
/// `.map_err(|e| e.to_string())?`:
///
/// ```
/// let pool = callpool::ThreadPool::new(1);
/// let ticket = pool.submit_fallible(|n: u8| if n > 9 { Err("too big") } else { Ok(n) }, 3)?;
/// assert_eq!(ticket.wait().map_err(|e| e.to_string())?, 3); // `ticket.wait()?` does not compile
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```compile_fail
/// let pool = callpool::ThreadPool::new(1);
/// let ticket = pool.submit_fallible(|n: u8| if n > 9 { Err("too big") } else { Ok(n) }, 3)?;
/// ticket.wait()?; // `&str` is not an `Error`, so neither is `TaskError<&str>`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`WorkRequest::fallible`]: crate::WorkRequest::fallible
///
/// # Examples
///
/// ```
/// use callpool::{TaskError, ThreadPool, WorkRequest};
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(1);
/// let (tx, rx) = mpsc::channel();
/// pool.put_request(
///     WorkRequest::fallible(|n: i32| if n < 0 { Err("negative") } else { Ok(n) }, -1)
///         .on_error(move |_, err| tx.send(err).unwrap()),
/// )?;
/// pool.wait()?;
/// assert!(matches!(rx.recv()?, TaskError::Failed("negative")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskError<E = Infallible> {
    /// The callable returned `Err(e)`.
    Failed(E),
    /// The callable panicked; this is the panic message (or a placeholder
    /// when the payload was neither a `&str` nor a `String`).
    Panicked(String),
    /// The request was never started: the pool was shut down (by another
    /// handle, or with no worker left to drain it) before a worker took it.
    /// It is also what a request cancelled by the user hears
    /// ([`ThreadPool::cancel`](crate::ThreadPool::cancel),
    /// [`Ticket::cancel`](crate::Ticket::cancel)). When the last handle is
    /// dropped, queued requests are discarded with no callback, since no
    /// handle is left to run one.
    Cancelled,
    /// The request's deadline ([`Request::deadline`](crate::Request::deadline),
    /// [`Request::timeout`](crate::Request::timeout)) passed before a worker
    /// took it, so it was never started.
    Expired,
}

impl<E: fmt::Display> fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Failed(e) => write!(f, "request failed: {e}"),
            TaskError::Panicked(msg) => write!(f, "request panicked: {msg}"),
            TaskError::Cancelled => f.write_str("request cancelled before it started"),
            TaskError::Expired => f.write_str("request expired before it started"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for TaskError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskError::Failed(e) => Some(e),
            _ => None,
        }
    }
}
