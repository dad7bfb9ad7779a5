//! The `callpool/submit` system: the same pool as `callpool`, each request
//! put with `pool.submit(f, i)`, its `Ticket` kept in a `Vec`; then every
//! ticket is `wait`ed on in turn and the values summed on the submitting
//! thread (the ticket path's honest counterpart of the callback path's
//! counted sum). In W7, one ticket at a time: `submit`, then `wait`.

use callpool::ThreadPool;

use super::{runner, Runner, System};
use crate::harness::{check, warm_up, Probe, Run};
use crate::kinds::{time_round_trips, Batch};
use crate::report::Obs;
use crate::work::{square, sum_of, with_work};

pub struct Submit;

impl System for Submit {
    fn name(&self) -> &'static str {
        "callpool/submit"
    }

    fn is_variant(&self) -> bool {
        true
    }

    fn batch(&self, b: Batch) -> Option<Runner<Run>> {
        runner(move || with_work!(b.work, |f| batch(b, f)))
    }

    fn round_trips(&self, n: u64) -> Option<Runner<Obs>> {
        runner(move || round_trips(n))
    }
}

/// The `Vec` of tickets is sized up front, as the callback path needs no
/// container at all; growing it would charge the ticket path for copying.
/// A ticket whose outcome is an error is not counted, so the check fails.
fn batch<F>(b: Batch, f: F) -> Run
where
    F: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    let (workers, n, want) = (b.workers, b.n, b.want);
    let pool = ThreadPool::new(workers);
    warm_up(workers);
    let mut tickets = Vec::with_capacity(n as usize);
    let probe = Probe::start();
    for i in 0..n {
        tickets.push(pool.submit(f, i).expect("submit"));
    }
    let (mut count, mut sum) = (0u64, 0u64);
    for t in tickets {
        if let Ok(v) = t.wait() {
            count += 1;
            sum = sum.wrapping_add(v);
        }
    }
    let el = probe.stop();
    check("callpool/submit", count, n, sum, want);
    pool.shutdown().expect("shutdown");
    el
}

/// W7 through a ticket: `submit` one request, `wait` for its ticket, then
/// the next; the values summed on the submitting thread.
fn round_trips(n: u64) -> Obs {
    let pool = ThreadPool::new(1);
    warm_up(1);
    let (mut count, mut sum) = (0u64, 0u64);
    let obs = time_round_trips(n, || {
        for i in 0..n {
            if let Ok(v) = pool.submit(square, i).expect("submit").wait() {
                count += 1;
                sum = sum.wrapping_add(v);
            }
        }
    });
    check("callpool/submit W7", count, n, sum, sum_of(n, square));
    pool.shutdown().expect("shutdown");
    obs
}
