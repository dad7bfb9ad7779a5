//! Loom's seeded self-checks: each runs a scenario with a seeded bug (the
//! queue [`Replica`] with one [`Bug`], or a caller misusing the shipped
//! inbox, [`inbox::Misuse`]) in a child process, and asserts that loom
//! caught it there.
//!
//! A deadlock found by loom aborts the whole test process ("panic in a
//! destructor during cleanup"), hence the child: this test binary again,
//! filtered to [`seeded_child`]. The child prints a marker line naming its
//! model before it runs it, and the parent asserts the marker as well as
//! the failure, so a filter that matches nothing (a child that runs no
//! test, and passes) can never count as a caught bug.

use super::under_loom::{broken, check};
use super::*;

/// The seeded models, by name: the scenario with its bug, and what loom
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
        "g4_wake_before_exit" => (
            || check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::WakeBeforeExit)),
            "deadlock",
        ),
        "g7_keep_without_wake" => (
            || check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::KeepWithoutWake)),
            "deadlock",
        ),
        "g12_lifecycle_read_first" => (
            || {
                check(|| {
                    inbox::shutdown_meets_a_child_of_an_uncounted_parent(
                        inbox::Misuse::LifecycleReadFirst,
                    )
                })
            },
            "the shutdown's wait returned before an accepted child was handled",
        ),
        "g8_child_counted_late" => (
            || {
                check(|| {
                    inbox::wait_covers_a_child_added_by_a_running_parent(
                        inbox::Misuse::ChildCountedLate,
                    )
                })
            },
            "wait returned before the child was handled",
        ),
        "t4_lookout_never_registers" => (
            || {
                check(|| {
                    ticket::holder_makes_room_for_a_stuck_worker(ticket::Lookout::NeverRegisters)
                })
            },
            "deadlock",
        ),
        "s1_retirement_without_second_look" => (
            || {
                check(|| {
                    scale::last_worker_retires_as_a_request_arrives(scale::without_second_look)
                })
            },
            "a queued request was left with no live worker",
        ),
        "n1_holder_ignores_sleepers" => (
            || {
                check(|| {
                    nursery::held_child_meets_a_sleeper(nursery::Seed::HolderIgnoresSleepers, 1)
                })
            },
            "deadlock",
        ),
        "n1_sleeper_ignores_held" => (
            || check(|| nursery::held_child_meets_a_sleeper(nursery::Seed::SleeperIgnoresHeld, 1)),
            "deadlock",
        ),
        "n2_cancel_looks_in_the_queue_first" => (
            || check(|| nursery::cancel_meets_a_hand_off(nursery::Order::QueueFirst)),
            "cancel missed a child on its way to the queue",
        ),
        "s3_retirement_blind_to_held_children" => (
            || check(|| scale::a_worker_retires_as_a_child_is_held(scale::blind_to_held)),
            "a child was left with no worker but its busy parent's",
        ),
        "c1_push_after_put" => (
            || {
                check(|| {
                    collector::added_request_ends_before_its_parent(collector::Misuse::PushAfterPut)
                })
            },
            "an added request's outcome arrived before the collector could count it",
        ),
        "cs1_piece_before_count" => (
            || {
                check(|| {
                    collector::added_stream_emits_around_its_parent(
                        collector::StreamMisuse::PieceBeforeCount,
                    )
                })
            },
            "an added stream's piece arrived before the collector could count it",
        ),
        "sl1_detached_lender" => (
            || check(|| lend::a_lent_request_lends_a_child(lend::Misuse::DetachedLender)),
            "a lent request ran after its scope's wait had ended",
        ),
        "j1_half_withdrawn_after_its_run" => (
            || check(|| lend::a_half_is_done_before_its_join_hears(lend::HalfDone::AfterRun)),
            "while the half's thread still counted itself running",
        ),
        "w1_look_then_take" => (
            || check(|| help::help_races_a_worker_and_a_cancel(help::Take::LookThenTake)),
            "each request must end exactly once",
        ),
        "w2_lifecycle_read_before_the_take" => (
            || check(|| help::help_races_the_close(help::Place::Queue, help::Read::BeforeTake)),
            "a request taken after the pool closed ran",
        ),
        "r1_exit_unraised" => (
            || {
                check(|| {
                    threads::a_worker_runs_and_leaves_as_a_waiter_looks::<threads::ExitUnraised>(
                        threads::Os::Gives,
                    )
                })
            },
            "the waiter took a request a worker ran for stranded",
        ),
        _ => return None,
    };
    Some(model)
}

const CHILD_ENV: &str = "CALLPOOL_SEEDED_MODEL";

/// The line the child prints before it runs the model `name`.
fn marker(name: &str) -> String {
    format!("CALLPOOL-SEEDED-RAN {name}")
}

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
    println!("{}", marker(&name));
    model();
}

/// Runs the seeded model `name` in a child process and asserts that
/// loom caught its bug: the child ran it (its marker), and failed saying
/// `expected`.
fn expect_caught(name: &str) {
    let (_, expected) = seeded(name).expect("unknown seeded model");
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "models::seeded::seeded_child",
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
        text.contains(&marker(name)),
        "the child process never ran the seeded model {name}:\n{text}"
    );
    assert!(
        !output.status.success(),
        "loom missed the seeded bug {name}:\n{text}"
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
fn seeded_g4_waking_before_the_exit_is_counted_is_caught() {
    expect_caught("g4_wake_before_exit");
}

#[test]
fn seeded_g7_overflow_without_a_wake_token_is_caught() {
    expect_caught("g7_keep_without_wake");
}

#[test]
fn seeded_n1_holder_ignoring_sleepers_is_caught() {
    expect_caught("n1_holder_ignores_sleepers");
}

#[test]
fn seeded_n1_sleeper_ignoring_held_children_is_caught() {
    expect_caught("n1_sleeper_ignores_held");
}

#[test]
fn seeded_n2_cancel_looking_in_the_queue_first_is_caught() {
    expect_caught("n2_cancel_looks_in_the_queue_first");
}

#[test]
fn seeded_s3_retirement_blind_to_held_children_is_caught() {
    expect_caught("s3_retirement_blind_to_held_children");
}

#[test]
fn seeded_g8_child_counted_late_is_caught() {
    expect_caught("g8_child_counted_late");
}

#[test]
fn seeded_g12_lifecycle_read_first_is_caught() {
    expect_caught("g12_lifecycle_read_first");
}

/// The marker check is what makes the others trustworthy: a child whose
/// filter matches no test passes (0 tests run) and prints no marker.
#[test]
fn seeded_child_that_runs_nothing_is_not_taken_for_caught() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["models::seeded::no_such_test", "--exact", "--ignored"])
        .env(CHILD_ENV, "a_notify_before_queueing")
        .output()
        .expect("could not start the child test process");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        !text.contains(&marker("a_notify_before_queueing")),
        "{text}"
    );
}

#[test]
fn seeded_s1_retirement_without_second_look_is_caught() {
    expect_caught("s1_retirement_without_second_look");
}

#[test]
fn seeded_t4_a_lookout_that_never_registers_is_caught() {
    expect_caught("t4_lookout_never_registers");
}

#[test]
fn seeded_c1_push_after_put_is_caught() {
    expect_caught("c1_push_after_put");
}

#[test]
fn seeded_cs1_piece_before_count_is_caught() {
    expect_caught("cs1_piece_before_count");
}

#[test]
fn seeded_sl1_a_detached_lender_is_caught() {
    expect_caught("sl1_detached_lender");
}

#[test]
fn seeded_j1_a_half_withdrawn_after_its_run_is_caught() {
    expect_caught("j1_half_withdrawn_after_its_run");
}

#[test]
fn seeded_w1_look_then_take_is_caught() {
    expect_caught("w1_look_then_take");
}

#[test]
fn seeded_r1_an_exit_that_does_not_raise_the_exits_is_caught() {
    expect_caught("r1_exit_unraised");
}

#[test]
fn seeded_w2_lifecycle_read_before_the_take_is_caught() {
    expect_caught("w2_lifecycle_read_before_the_take");
}
