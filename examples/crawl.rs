//! A crawler: work that discovers more work, and work that streams its
//! results. The "web" is a graph of 20,000 nodes made up on the spot from a
//! fixed seed (each node links to 1-4 others, chosen by a hash of its
//! number), so every run crawls the same nodes; the crawl starts at node 0.
//!
//! Each node is a request made with [`WorkRequest::with_context`]. Its
//! callable, on a worker, "fetches" the node (computes its links) and, for
//! each link to a node nobody has claimed yet (a shared `Vec<AtomicBool>`,
//! so each node is crawled once), puts a request for that node through
//! [`Context::put`]. For every node it also puts a *streaming* request
//! ([`WorkRequest::streaming`]) that emits the node's "words" (a few numbers
//! derived from it) one by one through an [`Emitter`]; each word reaches a
//! result callback that counts it on the main thread. Requests put through a
//! `Context` are pending on the handle from the moment they are put, so the
//! one `pool.wait()` returns only when the whole crawl, every word included,
//! has been handled.
//!
//! At the end the same graph is walked serially, on the main thread, and the
//! example checks that the pool crawled exactly the nodes reachable from
//! node 0, saw exactly their links, counted exactly their words, and that
//! `wait` handled one result per crawl, per stream's end and per word.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example crawl
//! ```
//!
//! It takes a fraction of a second.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::Instant;

use callpool::{Closed, Context, Emitter, RequestId, ThreadPool, WorkRequest};

/// Nodes in the graph.
const NODES: u32 = 20_000;
/// Where the crawl starts.
const START: u32 = 0;

/// SplitMix64's finaliser: a well-mixed hash of `x`, the same on every run.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The nodes `node` links to: 1-4 of them, repeats and self-links allowed
/// (the crawler meets them as already claimed). Nodes that no link points
/// to are never reached, so the crawl does not cover the whole graph.
fn links(node: u32) -> Vec<u32> {
    let h = mix(u64::from(node));
    (0..1 + h % 4)
        .map(|k| (mix(h ^ (k + 1)) % u64::from(NODES)) as u32)
        .collect()
}

/// The node's words: 1-8 numbers below 10,000.
fn words(node: u32) -> impl Iterator<Item = u64> {
    let h = mix(u64::from(node) ^ 0x5EED);
    (0..1 + h % 8).map(move |k| mix(h.wrapping_add(k)) % 10_000)
}

/// What the crawl shares: the claims, made on the workers, and the totals,
/// which only the callbacks (on the main thread) add to.
struct Crawl {
    visited: Vec<AtomicBool>,
    main: ThreadId,
    nodes: AtomicU64,
    links_seen: AtomicU64,
    links_followed: AtomicU64,
    words: AtomicU64,
    word_sum: AtomicU64,
    failures: AtomicU64,
}

impl Crawl {
    /// Claims `node` for crawling: true for the first caller only.
    fn claim(&self, node: u32) -> bool {
        // Relaxed: a read-modify-write, so exactly one claim sees `false`;
        // nothing else is published through the flag.
        !self.visited[node as usize].swap(true, Relaxed)
    }

    fn on_main_thread(&self) {
        assert_eq!(
            thread::current().id(),
            self.main,
            "callbacks run on the polling thread"
        );
    }

    fn crawled(&self, seen: usize, followed: usize) {
        self.on_main_thread();
        self.nodes.fetch_add(1, Relaxed);
        self.links_seen.fetch_add(seen as u64, Relaxed);
        self.links_followed.fetch_add(followed as u64, Relaxed);
    }

    fn word(&self, word: u64) {
        self.on_main_thread();
        self.words.fetch_add(1, Relaxed);
        self.word_sum.fetch_add(word, Relaxed);
    }

    fn failed(&self, what: &str, id: RequestId, err: impl Display) {
        eprintln!("{what} request #{id} failed: {err}");
        self.failures.fetch_add(1, Relaxed);
    }
}

/// The request that crawls `node`: on a worker, it fetches the node and puts
/// a request for each link not yet claimed, and one to stream the node's
/// words; its result, `(links seen, links followed)`, is counted on the main
/// thread.
fn crawl_request(node: u32, crawl: Arc<Crawl>) -> WorkRequest {
    let (on_result, on_error) = (Arc::clone(&crawl), Arc::clone(&crawl));
    WorkRequest::with_context(
        move |cx: &Context<'_>, node: u32| {
            let links = links(node);
            let mut followed = 0;
            for &link in &links {
                if crawl.claim(link) {
                    cx.put(crawl_request(link, Arc::clone(&crawl)))
                        .expect("the pool is open");
                    followed += 1;
                }
            }
            cx.put(words_request(node, crawl))
                .expect("the pool is open");
            (links.len(), followed)
        },
        node,
    )
    .on_result(move |_, (seen, followed)| on_result.crawled(seen, followed))
    .on_error(move |id, err| on_error.failed("crawl", id, err))
    .into()
}

/// The request that streams `node`'s words, one result callback per word.
fn words_request(node: u32, crawl: Arc<Crawl>) -> WorkRequest {
    let (on_result, on_error) = (Arc::clone(&crawl), crawl);
    WorkRequest::streaming(
        |node: u32, out: &Emitter<'_, u64>| {
            for word in words(node) {
                out.emit(word)?;
            }
            Ok::<_, Closed>(())
        },
        node,
    )
    .on_result(move |_, word| on_result.word(word))
    .on_error(move |id, err| on_error.failed("words", id, err))
    .into()
}

/// The same walk, serially: (nodes reachable, their links, their words,
/// the words' sum).
fn serial_walk() -> (u64, u64, u64, u64) {
    let mut visited = vec![false; NODES as usize];
    let mut queue = VecDeque::from([START]);
    visited[START as usize] = true;
    let (mut nodes, mut seen, mut words_count, mut word_sum) = (0, 0, 0, 0);
    while let Some(node) = queue.pop_front() {
        nodes += 1;
        for link in links(node) {
            seen += 1;
            if !visited[link as usize] {
                visited[link as usize] = true;
                queue.push_back(link);
            }
        }
        for word in words(node) {
            words_count += 1;
            word_sum += word;
        }
    }
    (nodes, seen, words_count, word_sum)
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let workers = thread::available_parallelism().map_or(2, |n| n.get());
    println!("crawling a {NODES}-node graph from node {START} on {workers} worker(s)");

    let crawl = Arc::new(Crawl {
        visited: (0..NODES).map(|_| AtomicBool::new(false)).collect(),
        main: thread::current().id(),
        nodes: AtomicU64::new(0),
        links_seen: AtomicU64::new(0),
        links_followed: AtomicU64::new(0),
        words: AtomicU64::new(0),
        word_sum: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    });
    let pool = ThreadPool::new(workers);
    let started = Instant::now();
    assert!(crawl.claim(START));
    pool.put_request(crawl_request(START, Arc::clone(&crawl)))?;
    // Covers every request the crawl puts, transitively: each is pending
    // from the moment its parent puts it.
    let handled = pool.wait()? as u64;
    let took = started.elapsed();
    pool.shutdown()?;

    let nodes = crawl.nodes.load(Relaxed);
    let seen = crawl.links_seen.load(Relaxed);
    let followed = crawl.links_followed.load(Relaxed);
    let words = crawl.words.load(Relaxed);
    let word_sum = crawl.word_sum.load(Relaxed);
    println!("nodes crawled:   {nodes}");
    println!("links followed:  {followed} to new nodes, of {seen} seen");
    println!("words counted:   {words} (sum {word_sum}), on the main thread");
    println!("results handled: {handled} by one wait(), in {took:.2?}");

    let (reachable, serial_seen, serial_words, serial_sum) = serial_walk();
    println!(
        "serial check:    {reachable} nodes reachable, {serial_seen} links, {serial_words} words"
    );
    assert_eq!(crawl.failures.load(Relaxed), 0, "no request failed");
    assert_eq!(nodes, reachable, "each reachable node crawled once");
    assert_eq!(
        crawl.visited.iter().filter(|v| v.load(Relaxed)).count() as u64,
        reachable,
        "claimed exactly the reachable nodes"
    );
    assert_eq!(
        followed,
        nodes - 1,
        "every node but the start found by one link"
    );
    assert_eq!(seen, serial_seen, "every link of every crawled node seen");
    assert_eq!(
        (words, word_sum),
        (serial_words, serial_sum),
        "every word counted"
    );
    // One result per crawl, one per word, and one per stream's end.
    assert_eq!(handled, nodes + words + nodes, "wait handled everything");
    Ok(())
}
