//! What executed requests leave behind in memory. A worker hands the
//! emptied boxes of executed requests back to their handle, for the thread
//! that executes the next one to free; these tests count the live heap (a
//! counting allocator, read in a child process where nothing else runs)
//! and check that the boxes never pile up: not while one thread executes
//! for ever, not once it stops executing, and not after the pool is gone.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use callpool::{Context, ThreadPool};
use common::heap::live;

const CHILD_ENV: &str = "EXECUTE_MEMORY_CHILD";

#[global_allocator]
static ALLOCATOR: common::heap::Counting = common::heap::Counting;

/// How much the live heap may move between samples: the emptied boxes a
/// handle keeps (1,024 of 48-byte blocks) and a worker's batch, twice over.
const SLACK: isize = 256 * 1024;

/// One thread executes 200,000 closures in rounds of 2,000, waiting after
/// each; then executes 20,000 more and only waits, never executing again;
/// then drops the pool. The live heap stays flat throughout (the boxes go
/// back and are freed as it executes), what is left once it stops
/// executing is bounded, and dropping the pool frees it.
#[test]
fn emptied_boxes_never_pile_up() {
    const NAME: &str = "emptied_boxes_never_pile_up";
    if !common::is_child(NAME, CHILD_ENV) {
        common::run_in_child(NAME, CHILD_ENV);
        return;
    }
    let before_pool = live();
    let pool = ThreadPool::new(2);
    let sum = Arc::new(AtomicU64::new(0));
    let mut samples = Vec::new();
    for round in 0..100u64 {
        for i in 0..2_000u64 {
            let sum = Arc::clone(&sum);
            pool.execute(move || {
                sum.fetch_add(round * 2_000 + i, Ordering::Relaxed);
            })
            .unwrap();
        }
        assert_eq!(pool.wait(), Ok(0));
        if round % 10 == 9 {
            samples.push(live());
        }
    }
    assert_eq!(sum.load(Ordering::Relaxed), (0..200_000u64).sum::<u64>());
    let most = *samples.iter().max().unwrap();
    assert!(
        most - samples[0] <= SLACK,
        "the live heap grew by {} bytes while executing (samples {samples:?})",
        most - samples[0]
    );

    // Work that adds work, none of it heard: the children's boxes go back
    // to the handle too, freed as the parent's worker executes more.
    pool.execute_with_context(|cx: &Context<'_>| {
        for _ in 0..20_000 {
            cx.execute(|| {}).expect("the pool is open");
        }
    })
    .unwrap();
    assert_eq!(pool.wait(), Ok(0));
    // The children went through the queue's backlog, whose emptied chunks
    // the workers free before they sleep (`trim_spares`), after `wait`
    // has returned: measured before that, the heap holds them, as many as
    // the parent outran the other worker by, and the sample depends on
    // the scheduler. Both workers asleep, they have freed them.
    common::until(|| pool.stats().idle == 2);
    let stopped = live();
    assert!(
        stopped - samples[0] <= SLACK,
        "{} bytes left once nobody executes any more",
        stopped - samples[0]
    );
    assert_eq!(pool.stats().completed, 200_000 + 1 + 20_000);

    pool.shutdown().unwrap();
    drop(sum);
    let after = live();
    assert!(
        after - before_pool <= 64 * 1024,
        "{} bytes still live after the pool was dropped",
        after - before_pool
    );
    common::child_ran(NAME);
}
