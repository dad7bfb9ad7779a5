#!/usr/bin/env python3
"""W1 on the model: the Python `threadpool` module (PyPI `threadpool`, the
library callpool's API follows), timed the way benches/compare times W1.

N requests of a trivial function (square, wrapped to 64 bits) are put one
after another with `pool.putRequest(WorkRequest(square, [i], callback=cb))`,
then `pool.wait()` polls until every result has been handed to `cb`, which
counts and sums them on this thread. The time from the first put to the
return of `wait` / N is the figure (ns per request). A wrong count or sum
exits 1, as the Rust suite does. `--make-requests` builds the requests with
`makeRequests` first (inside the timed region), as `callpool/make_requests`
does.

    python3 benches/python_threadpool.py                  # N = 1,000,000; 1, 2, 4 workers
    python3 benches/python_threadpool.py --n 100000 --rounds 3 --workers 1

Without the module installed (`pip install threadpool`) it says so and exits
0: it is a comparison, not a test. Issue 13 asks callpool to be at least 100x
faster than this per request; compare its figures with the callpool rows of
`cargo bench --bench compare -- w1` on the same machine (docs/performance.md,
"Round 2 suite").
"""

import argparse
import statistics
import sys
import time

try:
    import threadpool
except ImportError:
    print(
        "python_threadpool: the `threadpool` module is not installed "
        "(`pip install threadpool`); nothing was measured."
    )
    sys.exit(0)

MASK = (1 << 64) - 1


def square(x):
    return (x * x) & MASK


def one_run(n, workers, make_requests):
    """One timed run: ns per request."""
    pool = threadpool.ThreadPool(workers, poll_timeout=0.1)
    time.sleep(0.005)  # let the workers reach their loop, as the suite does
    got = [0, 0]  # count, sum

    def cb(_request, result):
        got[0] += 1
        got[1] = (got[1] + result) & MASK

    start = time.perf_counter()
    if make_requests:
        for req in threadpool.makeRequests(square, range(n), cb):
            pool.putRequest(req)
    else:
        for i in range(n):
            pool.putRequest(threadpool.WorkRequest(square, [i], callback=cb))
    pool.wait()
    elapsed = time.perf_counter() - start
    pool.dismissWorkers(workers, do_join=True)
    want = sum(square(i) for i in range(n)) & MASK
    if got != [n, want]:
        print(
            f"MISMATCH in python threadpool: {got[0]} results summing to {got[1]}, "
            f"expected {n} summing to {want}",
            file=sys.stderr,
        )
        sys.exit(1)
    return elapsed * 1e9 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="requests per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument(
        "--make-requests",
        action="store_true",
        help="build the requests with makeRequests first",
    )
    args = ap.parse_args()
    way = "makeRequests + putRequest" if args.make_requests else "putRequest(WorkRequest(...))"
    print(
        f"# Python threadpool {getattr(threadpool, '__version__', '?')} on "
        f"Python {sys.version.split()[0]}: W1, {args.n} requests, {way}, then wait()\n"
    )
    print("| workers | median ns/request | min – max ns/request | rounds |")
    print("|---:|---:|---:|---|")
    for workers in args.workers:
        runs = []
        for _ in range(args.rounds):
            runs.append(one_run(args.n, workers, args.make_requests))
            print(f"  [python w1-{workers}] {runs[-1]:.0f} ns/request", file=sys.stderr)
        print(
            f"| {workers} | {statistics.median(runs):.0f} | {min(runs):.0f} – {max(runs):.0f} | "
            + " ".join(f"{r:.0f}" for r in runs)
            + " |"
        )


if __name__ == "__main__":
    main()
