#!/usr/bin/env bash
# Optional, by hand, never in CI: type-checks the library and every test,
# example and benchmark for platforms this machine cannot run (Windows,
# macOS, FreeBSD), and runs clippy on the library for each, so code behind
# `cfg(unix)`, `cfg(target_os = "linux")` and their negations stays sound.
# Nothing is linked or run. Needs the nightly toolchain with `rust-src`
# (std is built from source for each target, `-Zbuild-std`); without it,
# it says so and exits 0 (skipped).
#
#   bash scripts/platforms.sh                       # all three
#   bash scripts/platforms.sh x86_64-apple-darwin   # one target
#
# Builds go to $CARGO_TARGET_DIR (default: target/platforms).
set -uo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/platforms}"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(x86_64-pc-windows-msvc x86_64-apple-darwin x86_64-unknown-freebsd)
fi

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q '^nightly'; then
    echo "platforms: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! rustup component add rust-src --toolchain nightly; then
    echo "platforms: skipped: the nightly rust-src component cannot be installed here"
    exit 0
fi

build_std=(-Zbuild-std=std,panic_abort)
failed=()
for t in "${targets[@]}"; do
    printf '\n==> %s: clippy on the library\n' "$t"
    cargo +nightly clippy "${build_std[@]}" --target "$t" --lib -- -D warnings || failed+=("$t clippy")
    printf '\n==> %s: check of every target (tests, examples, benches)\n' "$t"
    cargo +nightly check "${build_std[@]}" --target "$t" --all-targets || failed+=("$t check")
done

if [ ${#failed[@]} -gt 0 ]; then
    printf '\nplatforms: FAILED: %s\n' "${failed[*]}"
    exit 1
fi
printf '\nplatforms: passed (%s)\n' "${targets[*]}"
