#!/usr/bin/env python3
"""A/B runs of the side-by-side suite: an earlier commit against the working tree.

This machine's two cores are noisy: one run against another, minutes
apart, says little. This builds the suite (`benches/compare.rs`) at BASE in
a worktree of its own and in the working tree, runs the two binaries one
after the other, RUNS times, with the same arguments, and prints for each
table and system the median over the runs of each build's median, the
ratio of the two medians (working tree / base), in how many pairs of runs
the working tree's figure was the lower (with a sign test's p: below 0.05,
a split that uneven comes by chance less than one time in twenty), and
every run's figure. Read the per-run figures before the ratio.

    python3 scripts/ab.py 03faec0 -- w1-1 w1-4 --system=callpool
    python3 scripts/ab.py HEAD~2 --runs 10 --column "CPU us/rt (median)" -- w7 --system=callpool
    python3 scripts/ab.py HEAD --column "÷ floor/crossbeam" -- w1 --system=callpool --system=floor/crossbeam
    python3 scripts/ab.py HEAD -- w1 --quick        # a few seconds: checks the script itself
    python3 scripts/ab.py main --instructions -- w8-1 --system=callpool --quick

A ratio column (`÷ floor/crossbeam`: each round's system ÷ floor, run in
the same process) is steadier than a time when the machine drifts between
runs; a time column is what to read when the floor itself changed.

The floors are the same code in both builds: when a floor's tree / base
is far from 1, the noise is that large. To see it before trusting a
difference, run the script once with BASE = HEAD on an unchanged tree (an
A/A run): both builds are then the same code, and every difference is
noise (docs/performance.md, "What scripts/ab.py can resolve").

With --instructions, each build runs once under valgrind's callgrind
(which runs one thread at a time) instead, and the script prints the
instructions each thread executed, numbered in the order the threads
started (1: the suite's own thread, which puts and polls). Noise from
other tenants does not enter these counts, so a change of a few percent
shows; but time spent waiting on another core is not counted, and a
spinning wait adds instructions that depend on the schedule: compare the
busy thread's count, and run twice to see the spread. Give --quick (the
suite's sizes /100) and one system: under valgrind it runs about fifty
times slower.

The base's worktree and build stay in target/ab/ (reused on the next call
with the same commit). The suite's full runs rewrite docs/perf-w1.svg; the
file is restored after each run. Never run in CI: timing decides nothing
there.
"""

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join("docs", "perf-w1.svg")


def run(cmd, cwd, env=None, capture=False):
    """Runs `cmd`; stops the script with its output if it fails."""
    done = subprocess.run(cmd, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        if capture:
            sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"ab: `{' '.join(cmd)}` failed in {cwd} (exit {done.returncode})")
    return done.stdout if capture else None


def bench_binary(tree, target_dir):
    """Builds the suite in `tree` and returns its executable's path."""
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir)
    out = run(["cargo", "bench", "--bench", "compare", "--no-run",
               "--message-format=json"], tree, env=env, capture=True)
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" \
                and message["target"]["name"] == "compare" and message.get("executable"):
            return message["executable"]
    sys.exit(f"ab: no benchmark executable found for {tree}")


def worktree(base):
    """A worktree of `base` under target/ab/, made or moved there once."""
    commit = run(["git", "rev-parse", "--verify", base + "^{commit}"], ROOT,
                 capture=True).strip()
    path = os.path.join(ROOT, "target", "ab", "base")
    if os.path.isdir(path):
        head = run(["git", "rev-parse", "HEAD"], path, capture=True).strip()
        if head != commit:
            run(["git", "checkout", "-q", "--detach", commit], path)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        run(["git", "worktree", "add", "-q", "--detach", path, commit], ROOT)
    return path, commit


def parse(output, column):
    """{(table, system): value} from the suite's markdown tables."""
    values, title, index = {}, None, None
    for line in output.splitlines():
        if line.startswith("### "):
            title, index = line[4:].strip(), None
        elif line.startswith("| system |"):
            headers = [h.strip() for h in line.strip().strip("|").split("|")]
            index = 1 if column is None else (
                headers.index(column) if column in headers else None)
        elif title and index is not None and line.startswith("| ") \
                and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            # A ratio cell reads "0.91 (0.85 – 1.24)": its first number.
            number = re.match(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", cells[index]) \
                if index < len(cells) else None
            if number:
                values[(title, cells[0])] = float(number.group(0))
    return values


@contextlib.contextmanager
def chart_kept(tree):
    """Restores `tree`'s W1 chart afterwards: a full run of the suite rewrites it."""
    chart = os.path.join(tree, CHART)
    kept = None
    if os.path.exists(chart):
        with open(chart, "rb") as f:
            kept = f.read()
    try:
        yield
    finally:
        if kept is not None:
            with open(chart, "wb") as f:
                f.write(kept)


def one_run(binary, tree, args, column):
    with chart_kept(tree):
        out = subprocess.run([binary] + args, cwd=tree, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if out.returncode != 0:
        sys.exit(f"ab: {binary} {' '.join(args)} failed (exit {out.returncode})")
    return parse(out.stdout, column)


def instructions(binary, tree, args, out_dir):
    """{thread number: instructions} for one run of `binary` under callgrind."""
    if shutil.which("valgrind") is None:
        sys.exit("ab: --instructions needs valgrind")
    os.makedirs(out_dir, exist_ok=True)
    for old in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, old))
    prefix = os.path.join(out_dir, "callgrind.out")
    with chart_kept(tree):
        run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
             f"--callgrind-out-file={prefix}", binary] + args, tree, capture=True)
    counts = {}
    for name in os.listdir(out_dir):
        thread = re.search(r"-(\d+)$", name)
        if not thread:
            continue
        with open(os.path.join(out_dir, name)) as f:
            total = next((int(line.split()[1]) for line in f
                          if line.startswith("summary:")), None)
        if total is not None:
            counts[int(thread.group(1))] = total
    return counts


def compare_instructions(builds, trees, args, commit):
    seen = {name: instructions(builds[name], trees[name], args,
                               os.path.join(ROOT, "target", "ab", "callgrind-" + name))
            for name in ("base", "tree")}
    print(f"base {commit[:10]} against the working tree; instructions per thread "
          f"under callgrind, one run each\n")
    print("| thread | base | tree | tree / base |")
    print("|---|---:|---:|---:|")
    rows = sorted(set(seen["base"]) | set(seen["tree"]))
    for thread in rows + ["all"]:
        base, tree = (sum(seen[n].values()) if thread == "all" else seen[n].get(thread)
                      for n in ("base", "tree"))
        ratio = f"{tree / base:.3f}" if base and tree is not None else "n/a"
        print(f"| {thread} | {base if base is not None else 'n/a'} "
              f"| {tree if tree is not None else 'n/a'} | {ratio} |")


def sign_test(base, tree):
    """In how many of the pairs of runs (base and tree, run one after the
    other) the tree's figure was the lower, and the two-sided sign test's p:
    how often a coin would split at least that unevenly. Ties are left out."""
    pairs = [(b, t) for b, t in zip(base, tree) if b != t]
    n = len(pairs)
    if n == 0:
        return "n/a"
    lower = sum(1 for b, t in pairs if t < b)
    tail = min(lower, n - lower)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(tail + 1)) / 2 ** n)
    return f"{lower} of {n} (p {p:.2g})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare the working tree against")
    parser.add_argument("--runs", type=int, default=6,
                        help="runs of each build, alternated (default 6)")
    parser.add_argument("--column", default=None,
                        help="the table column to compare (default: the median column)")
    parser.add_argument("--instructions", action="store_true",
                        help="count each thread's instructions under callgrind, once per "
                             "build, instead of timing runs")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    opts = parser.parse_args(argv[:cut])
    # After `--`: the suite's own arguments (workloads, --system=...).
    args = argv[cut + 1:]
    if shutil.which("cargo") is None:
        sys.exit("ab: cargo not found")

    base_tree, commit = worktree(opts.base)
    builds = {
        "base": bench_binary(base_tree, os.path.join(ROOT, "target", "ab", "target")),
        "tree": bench_binary(ROOT, os.path.join(ROOT, "target")),
    }
    trees = {"base": base_tree, "tree": ROOT}
    if opts.instructions:
        compare_instructions(builds, trees, args, commit)
        return
    seen = {"base": [], "tree": []}
    for n in range(opts.runs):
        for name in ("base", "tree"):
            print(f"ab: run {n + 1}/{opts.runs}, {name}", file=sys.stderr)
            seen[name].append(one_run(builds[name], trees[name], args, opts.column))

    # Every (table, system) seen in any run, in the order first seen.
    keys = dict.fromkeys(k for values in seen["base"] + seen["tree"] for k in values)
    print(f"base {commit[:10]} against the working tree; {opts.runs} alternated runs each; "
          f"column: {opts.column or 'median'}\n")
    print("| table | system | base | tree | tree / base | tree lower in (sign test p) "
          "| base runs | tree runs |")
    print("|---|---|---:|---:|---:|---|---|---|")
    for key in keys:
        figures = {name: [v[key] for v in seen[name] if key in v] for name in seen}
        if not figures["base"] or not figures["tree"]:
            continue
        base, tree = (statistics.median(figures[n]) for n in ("base", "tree"))
        ratio = f"{tree / base:.3f}" if base else "n/a"
        runs = {n: " ".join(f"{x:g}" for x in figures[n]) for n in figures}
        print(f"| {key[0]} | {key[1]} | {base:g} | {tree:g} | {ratio} "
              f"| {sign_test(figures['base'], figures['tree'])} "
              f"| {runs['base']} | {runs['tree']} |")


if __name__ == "__main__":
    main()
