//! The `callpool/put_batch` system (W1, issue 13): the requests of
//! `callpool/make_requests` (built by `make_requests`, the `Vec` part of
//! what is timed), put with one `pool.put_batch(..)` instead of a
//! `put_request` each: on the default unbounded queue the whole batch is
//! queued with one reservation and one round of wake-ups. Then `wait()`,
//! and the callbacks add into an `Acc` on this thread, as for `callpool`.
//! The put alone is timed too (W1's `put ns/req` column).

use super::make_requests::put_made;
use super::{runner, Runner, System};
use crate::harness::Run;
use crate::kinds::Batch;
use crate::work::with_work;

pub struct PutBatch;

impl System for PutBatch {
    fn name(&self) -> &'static str {
        "callpool/put_batch"
    }

    /// Another way to put into the same pool: W1 only.
    fn is_variant(&self) -> bool {
        true
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }
}

fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    put_made(b, f, "callpool/put_batch", |pool, reqs| {
        // The `Batch` only follows the requests; dropping it changes nothing.
        drop(pool.put_batch(reqs).expect("put_batch"));
    })
}
