//! `RequestId`: how a request is named among a handle's pending requests.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The next automatic id's value.
static NEXT_AUTO: AtomicU64 = AtomicU64::new(1);

/// Identifies a request among the pending requests of a pool handle.
///
/// Every [`WorkRequest`](crate::WorkRequest) gets an id when it is made: either one chosen by the
/// user ([`Request::with_id`](crate::Request::with_id)), kept exactly as given, or an automatic one,
/// unique in the whole process for its lifetime. An automatic id and a
/// user-chosen id with the same number are different ids; both print as the
/// bare number.
///
/// # Examples
///
/// ```
/// use callpool::WorkRequest;
///
/// let auto: callpool::WorkRequest = WorkRequest::new(|x: u8| x, 1).into();
/// assert!(!auto.id().is_user_chosen());
///
/// let mine: callpool::WorkRequest = WorkRequest::new(|x: u8| x, 1).with_id(42).into();
/// assert_eq!(mine.id().value(), 42);
/// assert_eq!(mine.id().to_string(), "42");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId {
    value: u64,
    user_chosen: bool,
}

impl RequestId {
    /// A fresh automatic id.
    pub(crate) fn next_auto() -> Self {
        // Relaxed: uniqueness needs only the atomicity of fetch_add; no other
        // memory is published through this counter.
        let value = NEXT_AUTO.fetch_add(1, Ordering::Relaxed);
        RequestId {
            value,
            user_chosen: false,
        }
    }

    /// The values of `n` fresh automatic ids, taken with one `fetch_add`
    /// (for requests made together, see `make_requests`).
    pub(crate) fn next_autos(n: usize) -> std::ops::Range<u64> {
        // Relaxed: as in `next_auto`.
        let first = NEXT_AUTO.fetch_add(n as u64, Ordering::Relaxed);
        first..first + n as u64
    }

    pub(crate) fn from_parts(value: u64, user_chosen: bool) -> Self {
        RequestId { value, user_chosen }
    }

    /// The id's number.
    ///
    /// # Examples
    ///
    /// An automatic id and a user-chosen one with the same number are
    /// different ids, so one handle takes both at once:
    ///
    /// ```
    /// use callpool::{ThreadPool, WorkRequest};
    ///
    /// let pool = ThreadPool::new(1);
    /// let auto = pool.put_request(WorkRequest::new(|n: u32| n, 1))?;
    /// let mine = pool.put_request(WorkRequest::new(|n: u32| n, 2).with_id(auto.value()))?;
    /// assert_eq!(mine.value(), auto.value());
    /// assert_ne!(mine, auto);
    /// assert!(mine.is_user_chosen() && !auto.is_user_chosen());
    /// assert_eq!(mine.to_string(), auto.to_string()); // both print as the bare number
    /// pool.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value(self) -> u64 {
        self.value
    }

    /// Whether the user chose this id (rather than the pool).
    ///
    /// See [`value`](Self::value) for an example.
    pub fn is_user_chosen(self) -> bool {
        self.user_chosen
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.user_chosen { "user" } else { "auto" };
        write!(f, "RequestId({kind} {})", self.value)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}
