//! The request FIFO's own scenarios (`src/pool/fifo.rs`), on a ring of one
//! slot and chunks of one request, so that every request behind the first
//! goes through the backlog and a refill. Each taker must see one putter's
//! requests in their put order, and each request is taken exactly once.

use super::*;
use crate::pool::fifo::Fifo;

type Tiny = Fifo<u64, 1, 1>;

/// Up to `n` takes, skipping the ones that met the FIFO empty.
fn take_up_to(fifo: &Tiny, n: usize) -> Vec<u64> {
    (0..n).filter_map(|_| fifo.pop()).collect()
}

/// `takes`: each taker's requests, the last one the driver's, taken after
/// every other taker ended. A take that happened after another sees a
/// later request, so within a taker the order is the put order, and the
/// driver's takes come after all the others'.
fn assert_in_order_and_once(takes: &[Vec<u64>], all: &[u64]) {
    for taken in takes {
        assert!(
            taken.windows(2).all(|w| w[0] < w[1]),
            "taken out of put order: {taken:?}"
        );
    }
    if let Some((driver, takers)) = takes.split_last() {
        let before = takers.iter().flatten().max();
        if let (Some(before), Some(after)) = (before, driver.first()) {
            assert!(before < after, "taken out of put order: {takes:?}");
        }
    }
    let mut seen: Vec<u64> = takes.iter().flatten().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, all, "a request was lost or taken twice");
}

/// (q1) One putter puts three requests one at a time while a taker takes:
/// the second and third wait in the backlog, and a put after a refill must
/// not pass what the refill moved.
pub(super) fn order_kept_through_a_refill() {
    let fifo = Arc::new(Tiny::new());
    let putter = {
        let fifo = Arc::clone(&fifo);
        thread::spawn(move || (1..=3).for_each(|job| fifo.push(job)))
    };
    let taker = {
        let fifo = Arc::clone(&fifo);
        thread::spawn(move || take_up_to(&fifo, 2))
    };
    putter.join().unwrap();
    let theirs = taker.join().unwrap();
    let rest = take_up_to(&fifo, 3);
    assert!(fifo.is_empty());
    assert_in_order_and_once(&[theirs, rest], &[1, 2, 3]);
}

/// (q2) A batch, then a single put, while two takers take at once: each
/// request once, each taker in order, the driver's takes after theirs.
pub(super) fn batch_and_two_takers() {
    let fifo = Arc::new(Tiny::new());
    let putter = {
        let fifo = Arc::clone(&fifo);
        thread::spawn(move || {
            fifo.push_many(&mut vec![1, 2]);
            fifo.push(3);
        })
    };
    let takers: Vec<_> = (0..2)
        .map(|_| {
            let fifo = Arc::clone(&fifo);
            thread::spawn(move || take_up_to(&fifo, 1))
        })
        .collect();
    putter.join().unwrap();
    let mut takes: Vec<Vec<u64>> = takers.into_iter().map(|t| t.join().unwrap()).collect();
    takes.push(take_up_to(&fifo, 3));
    assert!(fifo.is_empty());
    assert_in_order_and_once(&takes, &[1, 2, 3]);
}

/// (q3) A put racing a refill: 2 waits in the backlog behind an empty
/// ring while 3 is put and the driver takes. 2 must come out before 3,
/// and neither may be lost (a refill that counted 2 out before it was in
/// the ring would let 3 into the ring first, and 2 would find it full).
pub(super) fn put_races_a_refill() {
    let fifo = Arc::new(Tiny::new());
    fifo.push(1);
    fifo.push(2);
    assert_eq!(fifo.pop(), Some(1));
    let putter = {
        let fifo = Arc::clone(&fifo);
        thread::spawn(move || fifo.push(3))
    };
    let first = fifo.pop();
    putter.join().unwrap();
    let taken: Vec<u64> = first.into_iter().chain(take_up_to(&fifo, 3)).collect();
    assert!(fifo.is_empty());
    assert_in_order_and_once(&[taken], &[2, 3]);
}
