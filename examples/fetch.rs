//! The threaded-GET-requests program every pool tutorial has, done with
//! callpool: fetch 100 URLs, first one after the other, then through the
//! pool with `as_completed` and a limit, and compare the times.
//!
//! So that it runs anywhere (no network), the example starts a small HTTP
//! server of its own on a free local port ([`tiny_http`]), whose every
//! response takes 50 ms, as a slow remote server's would. The client is
//! [`ureq`], a blocking HTTP client: exactly the kind of work a thread
//! pool is for. One URL of the 100 does not exist; its 404 comes back as
//! an error, on the main thread, beside the input that caused it.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example fetch
//! ```

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use callpool::ThreadPool;

/// How long the server takes to answer each request.
const LATENCY: Duration = Duration::from_millis(50);
/// How many URLs the client fetches.
const URLS: usize = 100;
/// How many fetches may be in flight at once (and the server's threads).
const LIMIT: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let (server, base) = start_server(LIMIT)?;
    let urls: Vec<String> = (0..URLS)
        .map(|i| match i {
            42 => format!("{base}/missing"),
            _ => format!("{base}/page/{i}"),
        })
        .collect();

    // One after the other, on this thread.
    let started = Instant::now();
    let mut serial_ok = 0;
    for url in &urls {
        if fetch(url).is_ok() {
            serial_ok += 1;
        }
    }
    let serial = started.elapsed();
    println!("serial:     {serial_ok}/{URLS} fetched in {serial:.2?}");

    // Through the pool: at most LIMIT requests in flight, outcomes in the
    // order they finish, each with its URL.
    let pool = ThreadPool::new(LIMIT);
    let started = Instant::now();
    let (mut fetched, mut bytes, mut failed) = (0, 0, Vec::new());
    for (url, outcome) in pool.as_completed(urls, LIMIT, |url: &String| fetch(url)) {
        match outcome {
            Ok(Ok(body)) => {
                fetched += 1;
                bytes += body.len();
            }
            // The fetch returned an error (here: the 404).
            Ok(Err(err)) => failed.push(format!("{url}: {err}")),
            // The fetch panicked, or was cancelled (not in this example).
            Err(err) => failed.push(format!("{url}: {err}")),
        }
    }
    let pooled = started.elapsed();
    println!("pooled:     {fetched}/{URLS} fetched ({bytes} bytes) in {pooled:.2?}, at most {LIMIT} at a time");
    println!(
        "speed-up:   {:.1}x",
        serial.as_secs_f64() / pooled.as_secs_f64()
    );
    for failure in &failed {
        println!("failed:     {failure}");
    }
    assert_eq!((fetched, failed.len()), (URLS - 1, 1));

    pool.shutdown()?;
    server.stop();
    Ok(())
}

/// GETs `url` and returns its body; a status other than 2xx is an error.
fn fetch(url: &str) -> Result<String, ureq::Error> {
    ureq::get(url).call()?.body_mut().read_to_string()
}

/// A local HTTP server answering `/page/N` after [`LATENCY`], and 404 to
/// anything else, on `threads` threads.
struct LocalServer {
    server: Arc<tiny_http::Server>,
    threads: Vec<thread::JoinHandle<()>>,
}

fn start_server(threads: usize) -> Result<(LocalServer, String), Box<dyn std::error::Error>> {
    let server =
        tiny_http::Server::http("127.0.0.1:0").map_err(|e| e as Box<dyn std::error::Error>)?;
    let server = Arc::new(server);
    let port = server
        .server_addr()
        .to_ip()
        .ok_or("the server has no IP address")?
        .port();
    let threads = (0..threads)
        .map(|_| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                // `recv` fails once the server is unblocked: stop then.
                while let Ok(request) = server.recv() {
                    thread::sleep(LATENCY);
                    let response = match request.url().strip_prefix("/page/") {
                        Some(n) => tiny_http::Response::from_string(format!("page {n}\n")),
                        None => {
                            tiny_http::Response::from_string("not found\n").with_status_code(404)
                        }
                    };
                    let _ = request.respond(response);
                }
            })
        })
        .collect();
    Ok((
        LocalServer { server, threads },
        format!("http://127.0.0.1:{port}"),
    ))
}

impl LocalServer {
    fn stop(self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}
