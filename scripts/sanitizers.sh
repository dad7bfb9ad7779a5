#!/usr/bin/env bash
# Optional, by hand, never in CI: ThreadSanitizer (with build-std) and Miri
# on a few small tests. Needs the nightly toolchain with the `rust-src` and
# `miri` components; if they cannot be installed here, it says so and exits
# 0 (skipped). Results are noted in docs/reliability.md.
#
#   bash scripts/sanitizers.sh            # both
#   bash scripts/sanitizers.sh tsan       # ThreadSanitizer only
#   bash scripts/sanitizers.sh miri       # Miri only
#   MIRI_SEEDS=0..8 bash scripts/sanitizers.sh miri   # several schedules each
#   bash scripts/sanitizers.sh tsan install           # every test of tests/install.rs
#   bash scripts/sanitizers.sh tsan install timeout   # its tests whose name contains "timeout"
#   bash scripts/sanitizers.sh miri lib pool::fifo    # the library's unit tests, filtered
#
# With a FILE (a test file's name, or "lib" for the library's unit tests)
# and an optional FILTER (cargo test's substring match), one tool runs on
# those tests instead of its list below.
#
# Builds go to $CARGO_TARGET_DIR (default: target/sanitizers), apart from
# the normal ones, since the flags rebuild everything.
set -uo pipefail
cd "$(dirname "$0")/.."

usage="usage: bash scripts/sanitizers.sh [all|tsan|miri] | {tsan|miri} FILE [FILTER]"
what="${1:-all}"
only_file="${2:-}"
only_filter="${3:-}"
case "$what" in
    all | tsan | miri) ;;
    *) echo "$usage" >&2; exit 2 ;;
esac
if [[ -n "$only_file" && "$what" == all ]]; then
    echo "$usage" >&2
    exit 2
fi
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/sanitizers}"

step() { printf '\n==> %s\n' "$*"; }

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q '^nightly'; then
    echo "sanitizers: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! rustup component add rust-src miri --toolchain nightly; then
    echo "sanitizers: skipped: the nightly rust-src and miri components cannot be installed here"
    exit 0
fi

failed=()

# Small tests with real concurrency: puts, polls and waits from several
# threads, dismissal of busy workers, shutdown joining everything.
tsan_tests=(
    "handles concurrent_puts_and_polls_on_one_handle_lose_nothing"
    "handles two_waiters_on_one_handle_both_return"
    "resize busy_dismissed_worker_finishes_its_request_then_exits"
    "shutdown shutdown_runs_everything_and_joins_every_thread"
    "faults a_callback_that_dismisses_its_own_pools_workers"
    "tickets ticket_cancel_racing_a_worker_exactly_one_wins_each_round"
    "lib pool::fifo::tests::one_putter_two_takers_keep_order_through_the_backlog"
    "streaming two_pollers_see_a_streams_items_in_order"
    "batches two_pollers_finish_a_batch_and_on_done_runs_once"
    "tickets waits_outside_the_result_queue_make_room_for_a_worker_stuck_on_it"
    "callbacks a_nested_wait_hears_the_fall_when_another_waiter_handles_the_last_result"
    "callbacks nested_waits_on_two_threads_do_not_wait_for_each_others_held_results"
    "nested_waits nested_scopes_recurse_on_a_two_worker_pool"
    "nested_waits shutdown_now_while_a_worker_runs_its_scopes_requests_cancels_the_rest"
    "collector outcomes_end_only_after_every_request_added_transitively"
    "collector an_added_request_that_ends_before_its_parent_is_counted"
    "ticket_context cancel_racing_a_worker_exactly_one_wins_and_only_a_run_puts_its_child"
    "execute wait_covers_executed_requests_which_run_once_each_on_workers"
    "execute wait_never_returns_while_an_executed_request_can_still_add_one"
    "execute children_executed_across_resizes_and_dismissals_run_once_each"
    "collector_streams a_tree_of_streams_adding_streams_ends_each_request_once"
    "stats_running halves_of_joins_run_by_other_workers_leave_nothing_running"
    "scope_context a_borrowed_tree_is_walked_once_per_node_on_four_workers"
    "install join_from_outside_splits_a_borrowed_slice_on_every_pool_size"
)

# Miri is slow: a few tests with few requests.
miri_tests=(
    "faults shutdown_without_workers_cancels_other_handles_queued_requests"
    "handles two_waiters_on_one_handle_both_return"
    "resize busy_dismissed_worker_finishes_its_request_then_exits"
    "scope a_scope_waits_for_its_lent_requests_even_with_its_collector_swapped_out"
    "scope a_panicking_body_waits_for_the_borrowing_requests"
    "scope a_refused_put_drops_its_request_inside_the_scope"
    "scope_context a_borrowed_tree_is_walked_once_per_node_on_four_workers"
    "scope_context the_scope_waits_for_the_tree_even_with_its_collector_swapped_out"
    "scope_context a_panicking_body_waits_for_the_whole_tree_then_panics"
    "scope_context shutdown_while_a_scoped_tree_grows_on_four_workers"
    "nested_waits a_scope_inside_the_only_workers_callable_runs_its_requests_there"
    "collector an_added_request_that_ends_before_its_parent_is_counted"
    "ticket_context waited_for_inside_a_callable_on_a_one_worker_pool_it_runs_there"
    "execute cancel_ends_a_queued_executed_request_unrun"
    "execute shutdown_now_hands_queued_executed_requests_back"
)

# The tests a step runs: a listed entry "FILE NAME" is that one test; a
# FILE and FILTER given on the command line are every test whose name
# contains FILTER (all of them without one).
exact=(--exact)
if [[ -n "$only_file" ]]; then
    tsan_tests=("$only_file $only_filter")
    miri_tests=("$only_file $only_filter")
    exact=()
fi

# Sets `which` (the cargo target) and `pick` (libtest's filter) for an entry.
select_tests() {
    read -r file name <<<"$1"
    # "lib": a unit test inside the library.
    if [[ "$file" == lib ]]; then which=(--lib); else which=(--test "$file"); fi
    pick=()
    if [[ -n "$name" ]]; then pick=("${exact[@]}" "$name"); fi
}

if [[ "$what" == all || "$what" == tsan ]]; then
    for t in "${tsan_tests[@]}"; do
        select_tests "$t"
        step "ThreadSanitizer: ${which[*]} $name"
        if ! RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
            TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
            cargo +nightly test -Zbuild-std --target "$target" "${which[@]}" -- "${pick[@]}"; then
            failed+=("tsan: $file $name")
        fi
    done
fi

if [[ "$what" == all || "$what" == miri ]]; then
    cargo +nightly miri setup || { echo "sanitizers: miri setup failed"; exit 1; }
    miriflags="${MIRIFLAGS:-}"
    if [[ -n "${MIRI_SEEDS:-}" ]]; then
        miriflags="$miriflags -Zmiri-many-seeds=$MIRI_SEEDS"
    fi
    for t in "${miri_tests[@]}"; do
        select_tests "$t"
        step "Miri: ${which[*]} $name"
        if ! MIRIFLAGS="$miriflags" cargo +nightly miri test "${which[@]}" -- "${pick[@]}"; then
            failed+=("miri: $file $name")
        fi
    done
fi

echo
if ((${#failed[@]})); then
    printf 'sanitizers: FAILED:\n'
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
echo "sanitizers: all passed"
