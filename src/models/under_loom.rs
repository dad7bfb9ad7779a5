//! Loom: every interleaving of the small scenarios (up to the preemption
//! bound), and the seeded self-checks, each in a child process.

use super::*;

/// Runs `model` under loom with a bounded preemption count (3 unless
/// `LOOM_MAX_PREEMPTIONS` sets it).
fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(model);
}

fn real() -> RequestQueue<u64> {
    RequestQueue::new(None)
}

fn real_bounded() -> RequestQueue<u64> {
    RequestQueue::new(Some(1))
}

fn broken(bug: Bug) -> Replica {
    Replica::new(None, bug)
}

#[test]
fn a_taken_by_exactly_one_worker() {
    check(|| taken_once(real()));
}

#[test]
fn a_taken_once_or_left_when_dismissed_at_once() {
    check(|| taken_once_or_left(real()));
}

#[test]
fn h_extract_puts_the_others_back_and_wakes_a_worker() {
    check(|| extracted(real()));
}

#[test]
fn i_count_racing_the_closing_sweep_strands_nothing() {
    check(|| counted_while_swept(real()));
}

#[test]
fn j_two_handles_counting_at_once_count_exactly() {
    check(|| counted_twice(real()));
}

#[test]
fn b_idle_worker_dismissed_exits() {
    check(|| idle_dismissed(real()));
}

#[test]
fn b_one_of_two_idle_workers_dismissed() {
    check(|| one_of_two_dismissed(real()));
}

#[test]
fn c_busy_worker_dismissed_takes_nothing_more() {
    check(|| busy_dismissed(real()));
}

#[test]
fn d_draining_runs_everything_queued() {
    check(|| drained(real()));
}

#[test]
fn k_put_racing_a_drain_is_refused_or_run() {
    check(|| put_racing_drain(real()));
}

#[test]
fn e_close_sweeps_whatever_no_worker_took() {
    check(|| closed(real()));
}

#[test]
fn f_blocked_put_woken_by_take() {
    check(|| blocked_put(real_bounded()));
}

#[test]
fn f_two_blocked_puts_both_let_in() {
    check(|| two_blocked_puts(real_bounded()));
}

#[test]
fn f_blocked_put_woken_when_last_thread_exits() {
    check(|| blocked_put_no_workers(real_bounded()));
}

// The wait protocol, on the shipped inbox (`inbox.rs`).

#[test]
fn g1_wait_woken_by_last_result() {
    check(inbox::wait_woken_by_last_result);
}

#[test]
fn g2_two_waiters_on_one_handle_both_return() {
    check(inbox::two_waiters);
}

#[test]
fn g3_waiter_woken_when_another_thread_handles_the_last_result() {
    check(|| inbox::other_handles_the_last_result(inbox::Misuse::None));
}

#[test]
fn g4_waiter_told_when_the_last_thread_exits() {
    check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::None));
}

/// The race shuttle once found (see `under_shuttle`).
#[test]
fn g5_two_waiters_while_the_last_thread_exits() {
    check(inbox::two_waiters_last_thread_exit);
}

#[test]
fn g6_sweep_overflows_a_full_result_queue() {
    check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::None));
}

// Self-checks: the same scenarios over a copy with one seeded bug must
// fail. A deadlock found by loom aborts the whole test process ("panic
// in a destructor during cleanup"), so each seeded model runs in a child
// process (this test binary, filtered to `seeded_child`), and the test
// checks that the child failed for the expected reason.

/// The seeded models, by name: the scenario, the bug, and what loom
/// must report.
fn seeded(name: &str) -> Option<(fn(), &'static str)> {
    let model: (fn(), &'static str) = match name {
        "a_notify_before_queueing" => (
            || check(|| taken_once(broken(Bug::NotifyBeforeQueueing))),
            "deadlock",
        ),
        "b_dismiss_without_lock" => (
            || check(|| idle_dismissed(broken(Bug::DismissWithoutLock))),
            "deadlock",
        ),
        "b_dismiss_notifies_one" => (
            || check(|| one_of_two_dismissed(broken(Bug::DismissNotifiesOne))),
            "deadlock",
        ),
        "c_pop_before_dismiss_check" => (
            || check(|| busy_dismissed(broken(Bug::PopBeforeDismissCheck))),
            "a dismissed worker took another request",
        ),
        "d_drain_leaves_early" => (
            || check(|| drained(broken(Bug::DrainLeavesEarly))),
            "draining workers left requests queued",
        ),
        "e_push_checks_open_unlocked" => (
            || check(|| closed(broken(Bug::PushChecksOpenUnlocked))),
            "a request was queued after the final sweep",
        ),
        "f_take_forgets_putters" => (
            || check(|| blocked_put(Replica::new(Some(1), Bug::TakeForgetsPutters))),
            "deadlock",
        ),
        "g3_other_acts_as_waiter" => (
            || check(|| inbox::other_handles_the_last_result(inbox::Misuse::OtherActsAsWaiter)),
            "deadlock",
        ),
        "g6_keep_without_wake" => (
            || check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::KeepWithoutWake)),
            "deadlock",
        ),
        "g4_wake_before_exit" => (
            || check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::WakeBeforeExit)),
            "deadlock",
        ),
        _ => return None,
    };
    Some(model)
}

const CHILD_ENV: &str = "CALLPOOL_SEEDED_MODEL";

/// Runs the seeded model named by `CALLPOOL_SEEDED_MODEL`; only ever
/// started by [`expect_caught`], in a child process.
#[test]
#[ignore = "run in a child process by the seeded_* self-checks"]
fn seeded_child() {
    let Ok(name) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (model, _) = seeded(&name).expect("unknown seeded model");
    // The parent checks this line: proof that the filter matched this
    // test and the model really started.
    println!("CALLPOOL-SEEDED-RAN {name}");
    model();
}

/// Runs the seeded model `name` in a child process and asserts that
/// loom caught its bug: the child failed, saying `expected`.
fn expect_caught(name: &str) {
    let (_, expected) = seeded(name).expect("unknown seeded model");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "models::under_loom::seeded_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("could not start the child test process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "loom missed the seeded bug {name}:\n{text}"
    );
    assert!(
        text.contains(&format!("CALLPOOL-SEEDED-RAN {name}")),
        "the child process never ran the seeded model {name}:\n{text}"
    );
    assert!(
        text.contains(expected),
        "the seeded model {name} failed, but not with {expected:?}:\n{text}"
    );
}

#[test]
fn seeded_a_notify_before_queueing_is_caught() {
    expect_caught("a_notify_before_queueing");
}

#[test]
fn seeded_b_dismiss_without_lock_is_caught() {
    expect_caught("b_dismiss_without_lock");
}

#[test]
fn seeded_b_dismiss_notifying_one_is_caught() {
    expect_caught("b_dismiss_notifies_one");
}

#[test]
fn seeded_c_pop_before_dismiss_check_is_caught() {
    expect_caught("c_pop_before_dismiss_check");
}

#[test]
fn seeded_d_drain_leaving_early_is_caught() {
    expect_caught("d_drain_leaves_early");
}

#[test]
fn seeded_e_unlocked_open_check_is_caught() {
    expect_caught("e_push_checks_open_unlocked");
}

#[test]
fn seeded_f_take_forgetting_putters_is_caught() {
    expect_caught("f_take_forgets_putters");
}

#[test]
fn seeded_g3_a_non_waiter_handling_as_a_waiter_is_caught() {
    expect_caught("g3_other_acts_as_waiter");
}

#[test]
fn seeded_g6_overflow_without_a_wake_token_is_caught() {
    expect_caught("g6_keep_without_wake");
}

#[test]
fn seeded_g4_waking_before_the_exit_is_counted_is_caught() {
    expect_caught("g4_wake_before_exit");
}

/// The replica without its bug's trigger passes the scenarios its
/// self-checks use, so a self-check fails because of the bug alone.
#[test]
fn replica_passes_where_its_bug_is_not_triggered() {
    check(|| taken_once(broken(Bug::DrainLeavesEarly)));
    check(|| idle_dismissed(broken(Bug::NotifyBeforeQueueing)));
    check(|| busy_dismissed(broken(Bug::DrainLeavesEarly)));
    check(|| drained(broken(Bug::PushChecksOpenUnlocked)));
    check(|| closed(broken(Bug::DrainLeavesEarly)));
    check(|| blocked_put(Replica::new(Some(1), Bug::DrainLeavesEarly)));
}
