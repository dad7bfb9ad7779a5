//! A counting global allocator for the memory workloads (W5, scale).
//!
//! It wraps `std::alloc::System` and, only while switched on, keeps the
//! bytes currently allocated and their peak in atomics, twice: as requested
//! by the program, and as glibc's malloc really holds them (each block's
//! usable size, which malloc rounds up, plus the 8-byte size word it keeps
//! before each block), so that a design that saves bytes malloc would round
//! away anyway is not credited for it. Off glibc the second count is the
//! first. Switched off (the default, and during every timed workload), each
//! call costs one relaxed load of a flag nobody writes, so it does not
//! disturb the timings.
//!
//! `GlobalAlloc` is an `unsafe` trait and `malloc_usable_size` an `unsafe`
//! foreign call: these are the only `unsafe` in the benchmark, and they
//! live in the bench binary. The library itself is `#![forbid(unsafe_code)]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed since `start` (may dip below 0 when a
/// block allocated before `start` is freed).
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
/// The same, in bytes malloc holds for the blocks.
static HELD: AtomicIsize = AtomicIsize::new(0);
static HELD_PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: isize) {
    if ON.load(Relaxed) {
        let now = CURRENT.fetch_add(bytes, Relaxed) + bytes;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn held_grew(bytes: isize) {
    if bytes == 0 {
        return; // counting is off (or a realloc in place): no atomic write
    }
    let now = HELD.fetch_add(bytes, Relaxed) + bytes;
    HELD_PEAK.fetch_max(now, Relaxed);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc: the usable size of a block from `malloc` (at least the size
    /// asked for).
    fn malloc_usable_size(ptr: *mut u8) -> usize;
}

/// The bytes malloc holds for the block of `size` bytes at `ptr`: its
/// usable size and the size word before it. Read only while counting (it
/// costs a call).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn held(ptr: *mut u8, _size: usize) -> isize {
    if ptr.is_null() || !ON.load(Relaxed) {
        return 0;
    }
    // SAFETY: `ptr` is a live block from `System`, i.e. from glibc's
    // malloc family, which is what `malloc_usable_size` accepts.
    (unsafe { malloc_usable_size(ptr) } + std::mem::size_of::<usize>()) as isize
}

/// Off glibc: the requested size (no portable way to ask malloc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn held(ptr: *mut u8, size: usize) -> isize {
    if ptr.is_null() || !ON.load(Relaxed) {
        return 0;
    }
    size as isize
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the bookkeeping only reads sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
            held_grew(held(p, layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size() as isize);
            held_grew(held(p, layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let was_held = held(ptr, layout.size());
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        grew(-(layout.size() as isize));
        held_grew(-was_held);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was_held = held(ptr, layout.size());
        // SAFETY: same contract as our caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size as isize - layout.size() as isize);
            held_grew(held(p, new_size) - was_held);
        }
        p
    }
}

/// Starts counting from zero.
pub fn start() {
    CURRENT.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    HELD.store(0, Relaxed);
    HELD_PEAK.store(0, Relaxed);
    ON.store(true, Relaxed);
}

/// Stops counting.
pub fn stop() {
    ON.store(false, Relaxed);
}

/// Bytes allocated (net) since `start`.
pub fn current() -> isize {
    CURRENT.load(Relaxed)
}

/// Highest net bytes since `start`.
pub fn peak() -> isize {
    PEAK.load(Relaxed)
}

/// Highest net bytes malloc held since `start` (see the module comment).
pub fn held_peak() -> isize {
    HELD_PEAK.load(Relaxed)
}
