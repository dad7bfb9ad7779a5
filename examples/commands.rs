//! inparallel's example, "run `uname -a` on many servers", with local
//! commands instead of SSH.
//!
//! Each of the ten "servers" is a local `sh -c "sleep 0.N; uname -a"`, with
//! N shuffled, so the answers do not arrive in the order asked. Three more
//! show what goes wrong: `kilo` answers with a non-zero exit (a *result*:
//! the program ran), `lima` names a program that does not exist (an
//! *error*: it never ran), and `mike` hangs until its timeout kills it.
//!
//! A pool of 3 workers runs at most 3 commands at a time. The main thread
//! puts every request, then calls [`ThreadPool::wait`], which runs each
//! callback on the main thread as its command completes: the output is
//! printed in completion order.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example commands
//! RUST_LOG=trace cargo run --release --example commands   # also shows each command starting
//! ```
//!
//! It takes about 2 seconds.

use std::error::Error;
use std::process::Command;
use std::time::{Duration, Instant};

use callpool::{CommandError, CommandOutput, Context, Request, ThreadPool, WorkRequest};

/// The servers that answer, as inparallel's example lists them.
const SERVERS: [&str; 10] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
];

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

fn main() -> Result<(), Box<dyn Error>> {
    env_logger::init();
    let started = Instant::now();
    // At most 3 commands run at a time: one per worker.
    let pool = ThreadPool::new(3);

    let mut requests: Vec<(&str, WorkRequest)> = Vec::new();
    for (i, server) in SERVERS.into_iter().enumerate() {
        // Every delay from 0 to 0.9 s once, shuffled: the answers do not
        // come back in the order they were asked for.
        let script = format!("sleep 0.{}; uname -a", i * 7 % 10);
        requests.push((server, printing(server, WorkRequest::command(sh(&script)))));
    }
    let refused = sh("echo 'connection refused' >&2; exit 255");
    requests.push(("kilo", printing("kilo", WorkRequest::command(refused))));
    let missing = Command::new("callpool-example-no-such-ssh");
    requests.push(("lima", printing("lima", WorkRequest::command(missing))));
    let mut hangs = Command::new("sleep");
    hangs.arg("30");
    let timeout = Duration::from_millis(500);
    requests.push((
        "mike",
        printing("mike", WorkRequest::command_timeout(hangs, timeout)),
    ));

    for (server, request) in requests {
        let id = pool.put_request(request)?;
        println!("#{id}: asking {server}");
    }
    // Each callback runs here, on the main thread, as its command completes.
    let handled = pool.wait()?;
    pool.shutdown()?;
    println!(
        "{handled} servers answered or failed in {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// `request` with callbacks that print what `server` answered, or why it
/// did not.
fn printing<W, R, X>(
    server: &'static str,
    request: Request<W, CommandOutput, CommandError, R, X>,
) -> WorkRequest
where
    W: FnOnce(&Context<'_>) -> Result<CommandOutput, CommandError> + Send + 'static,
{
    request
        .on_result(move |id, output| {
            if output.success() {
                print!("#{id} {server}: {}", output.stdout_lossy());
            } else {
                // It ran and said no: a result, not an error.
                print!(
                    "#{id} {server}: {}, stderr: {}",
                    output.status,
                    output.stderr_lossy()
                );
            }
        })
        .on_error(move |id, err| println!("#{id} {server} failed: {err}"))
        .into()
}
