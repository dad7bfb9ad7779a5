//! Shuttle: the small scenarios again, the bigger ones, random and PCT
//! schedules, and the seeded self-checks.

use super::*;
use crate::pool::thread_count::ThreadCount;

/// Schedules per random check, and per PCT check (depth 3).
const RANDOM: usize = 3000;
const PCT: usize = 3000;

/// The schedulers' seed: fixed, so CI explores the same schedules every
/// run; set `CALLPOOL_SHUTTLE_SEED` to explore others.
fn seed() -> u64 {
    std::env::var("CALLPOOL_SHUTTLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00ca_11b0_0150_0001)
}

/// Runs `model` under the random scheduler, then the PCT scheduler
/// (depth 3). A failure prints the schedule to replay it.
fn check(model: impl Fn() + Send + Sync + 'static) {
    let model = std::sync::Arc::new(model);
    let m = model.clone();
    shuttle::check_random_with_seed(move || m(), seed(), RANDOM);
    let pct = shuttle::scheduler::PctScheduler::new_from_seed(seed(), 3, PCT);
    shuttle::Runner::new(pct, Default::default()).run(move || model());
}

fn real() -> RequestQueue<u64> {
    RequestQueue::new(None)
}

fn real_bounded(cap: usize) -> RequestQueue<u64> {
    RequestQueue::new(Some(cap))
}

// The loom scenarios, under shuttle too (cheap, and a second opinion).

#[test]
fn small_scenarios() {
    check(|| taken_once(real()));
    check(|| taken_once_or_left(real()));
    check(|| idle_dismissed(real()));
    check(|| one_of_two_dismissed(real()));
    check(|| busy_dismissed(real()));
    check(|| spinner_dismissed(real()));
    check(|| dismissed_before_drain(real()));
    check(|| drained(real()));
    check(|| closed(real()));
    check(|| put_racing_drain(real()));
    check(|| extracted(real()));
    check(|| helped(real()));
    check(|| helped_while_swept(real()));
    check(|| counted_while_swept(real()));
    check(|| counted_twice(real()));
    check(|| blocked_put(real_bounded(1)));
    check(|| two_blocked_puts(real_bounded(1)));
    check(|| blocked_put_no_workers(real_bounded(1)));
    check(|| batch_wakes_sleepers(real()));
    check(|| batch_racing_close(real()));
    check(|| children_meet_a_drain(real()));
}

#[test]
fn wait_protocol_scenarios() {
    check(inbox::wait_woken_by_last_result);
    check(inbox::two_waiters);
    check(inbox::waiter_and_poller);
    check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::None));
    check(|| inbox::other_handles_the_last_result());
    check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::None));
}

#[test]
fn n1_a_held_child_reaches_a_worker_going_to_sleep() {
    check(|| nursery::held_child_meets_a_sleeper(nursery::Seed::None, 1));
}

#[test]
fn n1_two_held_children_reach_a_worker_going_to_sleep() {
    check(|| nursery::held_child_meets_a_sleeper(nursery::Seed::None, 2));
}

#[test]
fn n2_cancel_finds_a_child_on_its_way_to_the_queue() {
    check(|| nursery::cancel_meets_a_hand_off(nursery::Order::SlotsFirst));
}

#[test]
fn n3_a_child_held_as_the_pool_closes_is_taken_or_seen_closed() {
    check(|| nursery::a_child_held_as_the_pool_closes(false));
    check(|| nursery::a_child_held_as_the_pool_closes(true));
}

#[test]
fn g8_wait_covers_a_child_added_by_a_running_parent() {
    check(|| inbox::wait_covers_a_child_added_by_a_running_parent(inbox::Misuse::None));
}

#[test]
fn g12_shutdown_meets_a_child_of_an_uncounted_parent() {
    check(|| inbox::shutdown_meets_a_child_of_an_uncounted_parent(inbox::Misuse::None));
}

#[test]
fn g9_nested_wait_beside_another_waiter() {
    check(inbox::nested_wait_beside_another_waiter);
}

#[test]
fn g10_nested_wait_woken_by_a_result() {
    check(inbox::nested_wait_woken_by_a_result);
}

#[test]
fn g11_nested_waits_on_two_threads() {
    check(inbox::nested_waits_on_two_threads);
}

#[test]
fn g13_executed_request_ends_in_place_beside_a_result() {
    check(|| inbox::executed_request_ends_in_place_beside_a_result(inbox::Misuse::None));
}

#[test]
#[should_panic(expected = "wait returned before the executed request ran")]
fn seeded_g13_ended_before_run_is_caught() {
    check(|| inbox::executed_request_ends_in_place_beside_a_result(inbox::Misuse::EndedBeforeRun));
}

#[test]
#[should_panic(expected = "wait returned before the child was handled")]
fn seeded_g8_child_counted_late_is_caught() {
    check(|| inbox::wait_covers_a_child_added_by_a_running_parent(inbox::Misuse::ChildCountedLate));
}

#[test]
#[should_panic(expected = "the shutdown's wait returned before an accepted child was handled")]
fn seeded_g12_lifecycle_read_first_is_caught() {
    check(|| {
        inbox::shutdown_meets_a_child_of_an_uncounted_parent(inbox::Misuse::LifecycleReadFirst)
    });
}

#[test]
fn ticket_scenarios() {
    check(ticket::cancel_races_start);
    check(ticket::cancel_races_sweep);
    check(ticket::dropped_job_wakes_the_waiter);
    check(|| ticket::holder_makes_room_for_a_stuck_worker(ticket::Lookout::Registers));
}

#[test]
fn fifo_scenarios() {
    check(fifo::order_kept_through_a_refill);
    check(fifo::batch_and_two_takers);
    check(fifo::put_races_a_refill);
}

/// Finds a race in the wait protocol (see `docs/reliability.md`,
/// "Bugs found"): waiter A takes the last result off the channel; before
/// A deregisters it, the worker exits, the token wakes waiter B, which
/// sees no thread and one request pending, and returns
/// `NoWorkersAvailable { pending: 1 }` for a request that ran (A handles
/// it an instant later). Replay: the failing schedule printed by this
/// test with `CALLPOOL_SHUTTLE_SEED` unset.
#[test]
fn wait_two_waiters_while_the_last_thread_exits() {
    check(inbox::two_waiters_last_thread_exit);
}

#[test]
fn many_requests_unbounded() {
    check(|| many_requests(real(), 2, 25, 4, true));
    check(|| many_requests(real(), 2, 25, 4, false));
}

#[test]
fn many_requests_bounded() {
    check(|| many_requests(real_bounded(2), 3, 10, 3, true));
    check(|| many_requests(real_bounded(2), 3, 10, 3, false));
}

#[test]
fn resize_storm_bounded() {
    check(|| resize_storm(real_bounded(3), 30, 12));
}

#[test]
fn resize_storm_capacity_one() {
    check(|| resize_storm(real_bounded(1), 20, 12));
}

#[test]
fn close_storm_unbounded() {
    check(|| close_storm(real(), 10));
}

// Self-checks: the big scenarios over the seeded broken copy fail.

#[test]
#[should_panic(expected = "deadlock")]
fn seeded_storm_dismiss_without_lock_is_caught() {
    check(|| resize_storm(Replica::new(Some(3), Bug::DismissWithoutLock), 30, 12));
}

#[test]
#[should_panic(expected = "deadlock")]
fn seeded_storm_take_forgetting_putters_is_caught() {
    check(|| resize_storm(Replica::new(Some(1), Bug::TakeForgetsPutters), 20, 12));
}

#[test]
#[should_panic(expected = "deadlock")]
fn seeded_many_notify_before_queueing_is_caught() {
    check(|| {
        many_requests(
            Replica::new(None, Bug::NotifyBeforeQueueing),
            2,
            25,
            4,
            true,
        )
    });
}

#[test]
#[should_panic(expected = "deadlock")]
fn seeded_g4_waking_before_the_exit_is_counted_is_caught() {
    check(|| inbox::waiter_and_last_thread_exit(inbox::Misuse::WakeBeforeExit));
}

#[test]
#[should_panic(expected = "deadlock")]
fn seeded_g7_overflow_without_a_wake_token_is_caught() {
    check(|| inbox::sweep_overflows_a_full_result_queue(inbox::Misuse::KeepWithoutWake));
}

#[test]
#[should_panic(expected = "a request was queued after the final sweep")]
fn seeded_close_unlocked_open_check_is_caught() {
    check(|| close_storm(Replica::new(None, Bug::PushChecksOpenUnlocked), 10));
}

#[test]
fn scale_scenarios() {
    check(|| scale::last_worker_retires_as_a_request_arrives(scale::shipped));
    check(|| scale::two_workers_retire_as_a_request_arrives(scale::shipped));
    check(|| scale::a_worker_retires_as_a_child_is_held(scale::shipped_held));
}

#[test]
#[should_panic(expected = "a child was left with no worker but its busy parent's")]
fn seeded_s3_retirement_blind_to_held_children_is_caught() {
    check(|| scale::a_worker_retires_as_a_child_is_held(scale::blind_to_held));
}

#[test]
#[should_panic(expected = "a queued request was left with no live worker")]
fn seeded_s1_retirement_without_second_look_is_caught() {
    check(|| scale::last_worker_retires_as_a_request_arrives(scale::without_second_look));
}

#[test]
fn thread_count_scenarios() {
    for os in [threads::Os::Gives, threads::Os::GivesOne] {
        check(move || threads::a_worker_runs_and_leaves_as_a_waiter_looks::<ThreadCount>(os));
    }
    check(threads::a_pool_that_can_start_no_thread_strands_the_request::<ThreadCount>);
}

#[test]
#[should_panic(expected = "the waiter took a request a worker ran for stranded")]
fn seeded_r1_an_exit_that_does_not_raise_the_exits_is_caught() {
    check(|| {
        threads::a_worker_runs_and_leaves_as_a_waiter_looks::<threads::ExitUnraised>(
            threads::Os::Gives,
        )
    });
}

#[test]
fn collector_scenarios() {
    check(|| collector::added_request_ends_before_its_parent(collector::Misuse::None));
    check(|| collector::added_stream_emits_around_its_parent(collector::StreamMisuse::None));
}

#[test]
fn lend_scenarios() {
    check(|| lend::a_lent_request_lends_a_child(lend::Misuse::None));
    check(|| lend::a_half_is_done_before_its_join_hears(lend::HalfDone::Shipped));
}

#[test]
#[should_panic(expected = "while the half's thread still counted itself running")]
fn seeded_j1_a_half_withdrawn_after_its_run_is_caught() {
    check(|| lend::a_half_is_done_before_its_join_hears(lend::HalfDone::AfterRun));
}

#[test]
#[should_panic(expected = "a lent request ran after its scope's wait had ended")]
fn seeded_sl1_a_detached_lender_is_caught() {
    check(|| lend::a_lent_request_lends_a_child(lend::Misuse::DetachedLender));
}

#[test]
#[should_panic(expected = "an added request's outcome arrived before the collector could count it")]
fn seeded_c1_push_after_put_is_caught() {
    check(|| collector::added_request_ends_before_its_parent(collector::Misuse::PushAfterPut));
}

#[test]
#[should_panic(expected = "an added stream's piece arrived before the collector could count it")]
fn seeded_cs1_piece_before_count_is_caught() {
    check(|| {
        collector::added_stream_emits_around_its_parent(collector::StreamMisuse::PieceBeforeCount)
    });
}

#[test]
fn help_scenarios() {
    check(|| help::help_races_a_worker_and_a_cancel(help::Take::Shipped));
    check(|| help::help_races_the_close(help::Place::Queue, help::Read::AfterTake));
    check(|| help::help_races_the_close(help::Place::Slot, help::Read::AfterTake));
}

#[test]
#[should_panic(expected = "each request must end exactly once")]
fn seeded_w1_look_then_take_is_caught() {
    check(|| help::help_races_a_worker_and_a_cancel(help::Take::LookThenTake));
}

#[test]
#[should_panic(expected = "a request taken after the pool closed ran")]
fn seeded_w2_lifecycle_read_before_the_take_is_caught() {
    check(|| help::help_races_the_close(help::Place::Queue, help::Read::BeforeTake));
}
