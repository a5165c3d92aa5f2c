//! The conformance suite: the contract of DESIGN.md as tests, written once
//! and run against every backend. A backend's test file implements
//! [`TestDb`] and expands [`conformance_tests!`].

#![allow(dead_code, reason = "each backend's test file uses what it needs")]

pub mod admin;
pub mod attempts;
pub mod cancel;
pub mod concurrency;
pub mod control;
pub mod fencing;
pub mod helpers;
pub mod input;
pub mod insight;
pub mod ledger;
pub mod lifecycle;
pub mod limits;
pub mod retention;
pub mod schedules;
pub mod unique;
pub mod worker;
pub mod workflows;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use taskq::{Backoff, Queue, QueueConfig, State};

/// What `stats` reports: each action and state with tasks, and how many.
pub async fn reported_stats(queue: &Queue) -> BTreeMap<(String, State), u64> {
    let mut reported = BTreeMap::new();
    for row in queue.stats().await.unwrap() {
        for state in State::ALL {
            if row.get(state) > 0 {
                reported.insert((row.action.clone(), state), row.get(state));
            }
        }
    }
    reported
}

/// A fresh, empty database of one backend; every queue it hands out
/// shares that database but has its own connections.
#[async_trait]
pub trait TestDb: Send + Sync {
    /// A new queue (own backend, own connections) on this database.
    async fn queue_with(&self, config: QueueConfig) -> Queue;

    /// A new queue with default settings.
    async fn queue(&self) -> Queue {
        self.queue_with(QueueConfig::default()).await
    }

    /// Moves the stored next tick of the schedule `name` back by `by`, as
    /// if no worker had looked at it for that long.
    async fn age_schedule(&self, name: &str, by: Duration);

    /// Moves the finish time of the finished tasks `ids` back by `by`.
    async fn age_finished(&self, ids: &[taskq::TaskId], by: Duration);
}

/// Starts a claim of `action` on `waiter` that waits up to 20 s, awaits
/// `settle` (time for the waiter to go idle), enqueues one such task on
/// `producer`, and returns how long the waiter took to claim it
/// (asserting that it did).
pub async fn claim_after_enqueue(
    waiter: &Queue,
    producer: &Queue,
    action: &'static str,
    settle: impl Future<Output = ()>,
) -> Duration {
    let claim = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let lease = waiter
                .claim_wait(action, Duration::from_secs(20))
                .await
                .unwrap();
            (lease.map(|l| l.id()), Instant::now())
        })
    };
    settle.await;
    let id = producer.enqueue(action, &1).await.unwrap();
    let enqueued = Instant::now();
    let (claimed, at) = claim.await.unwrap();
    assert_eq!(claimed, Some(id), "the waiter claimed the task");
    at.saturating_duration_since(enqueued)
}

/// Claims the oldest ready task of `action` (there must be one) and
/// completes it.
pub async fn claim_and_complete(queue: &Queue, action: &str) {
    let lease = queue.claim(action).await.unwrap().expect("a ready task");
    lease.complete().await.unwrap();
}

/// Settings under which a failed task is ready again at once.
pub fn no_backoff() -> QueueConfig {
    QueueConfig {
        backoff: Backoff {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        },
        ..QueueConfig::default()
    }
}

/// A lease short enough for expiry tests.
pub const SHORT_LEASE: Duration = Duration::from_millis(300);

/// Waits until a lease of [`SHORT_LEASE`] taken before the call has
/// certainly expired.
pub async fn outlive_short_lease() {
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(50)).await;
}

/// Expands to one `#[tokio::test]` per conformance test, each on a fresh
/// database from `$make().await`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            lifecycle::enqueue_then_claim_gives_the_task,
            insight::list_finds_tasks_by_the_text_of_their_last_error,
            insight::list_finds_the_follow_ups_of_a_task,
            insight::stats_say_since_when_the_oldest_ready_task_waits,
            insight::the_throughput_history_adds_up_per_minute_and_action,
            insight::a_worker_records_what_it_ran_in_the_history,
            insight::retry_and_delete_matching_take_every_task_a_filter_matches,
            lifecycle::empty_queue_claims_none,
            lifecycle::claims_oldest_first_by_not_before_then_id,
            lifecycle::future_tasks_wait_for_their_time,
            lifecycle::actions_are_separate_queues,
            lifecycle::complete_removes_the_task,
            lifecycle::retained_completion_keeps_a_succeeded_row,
            lifecycle::follow_ups_record_their_parent,
            lifecycle::fail_with_tries_left_backs_off,
            lifecycle::fail_on_last_try_fails_for_good,
            lifecycle::fail_permanently_ignores_tries_left,
            lifecycle::forever_never_fails,
            lifecycle::release_does_not_count_the_try,
            lifecycle::snooze_waits_without_counting,
            lifecycle::raw_payloads_round_trip,
            lifecycle::claim_many_takes_oldest_up_to_limit,
            lifecycle::batch_enqueue_is_all_or_nothing,
            lifecycle::migrate_is_idempotent,
            lifecycle::an_insert_is_claimed_at_once_only_when_nothing_older_is_ready,
            lifecycle::claim_wait_wakes_on_enqueue,
            lifecycle::claim_wait_sees_other_producers,
            fencing::expired_lease_is_claimed_again,
            fencing::stale_worker_is_refused_everything,
            fencing::stale_completion_creates_no_follow_ups,
            fencing::expiry_on_last_try_fails_the_task,
            fencing::requeue_expired_counts_what_it_moved,
            fencing::extend_keeps_the_task,
            fencing::deleted_task_loses_its_lease,
            fencing::repeated_expiry_backs_off,
            fencing::len_leaves_out_a_lease_that_expired_on_its_last_try,
            admin::len_counts_only_ready_tasks,
            admin::stats_count_per_action_and_state,
            admin::stats_stay_exact_through_every_transition,
            admin::get_returns_every_field,
            admin::list_filters_orders_and_pages,
            admin::list_pages_every_filter_in_either_order,
            admin::retry_requeues_a_failed_task,
            admin::retry_and_delete_report_what_is_wrong,
            admin::purge_removes_old_finished_tasks,
            input::bad_action_names_are_refused,
            input::bad_options_are_refused,
            input::bad_limits_and_states_are_refused,
            input::undecodable_payload_is_a_typed_error,
            input::text_with_nul_characters_is_stored_on_every_backend,
            input::an_invalid_follow_up_fails_the_try_with_its_reason,
            concurrency::concurrent_workers_complete_each_task_once,
            concurrency::concurrent_producers_get_distinct_ids,
            worker::worker_runs_handlers_for_several_actions,
            worker::a_handlers_result_is_kept_with_its_succeeded_task,
            workflows::a_diamond_runs_its_sink_once_after_both_branches,
            workflows::a_failed_dependency_cancels_the_subtree_unless_it_runs_anyway,
            workflows::dependencies_on_existing_tasks_start_from_their_states,
            workflows::a_fan_in_of_a_thousand_is_released_exactly_once,
            workflows::ends_other_than_completion_settle_dependents,
            workflows::a_dependency_whose_worker_died_runs_again_then_releases,
            workflows::a_cancellation_cascades_down_a_long_chain,
            worker::worker_respects_concurrency_limits,
            worker::a_worker_with_slow_handlers_holds_only_the_tasks_it_runs,
            worker::heartbeat_keeps_a_long_task_from_running_twice,
            worker::lost_lease_cancels_the_handler,
            worker::a_result_after_a_takeover_is_refused_and_counted,
            worker::shutdown_finishes_quick_tasks_and_releases_the_rest,
            worker::a_handler_that_stops_when_cancelled_at_shutdown_is_released,
            worker::a_panicking_handler_fails_the_try_and_the_worker_survives,
            worker::handler_follow_ups_record_their_parent,
            worker::an_idle_worker_starts_new_tasks_within_milliseconds,
            worker::an_idle_worker_takes_tasks_of_its_own_process_without_claims,
            worker::a_task_handed_over_never_overtakes_an_older_ready_one,
            worker::undecodable_payloads_fail_for_good,
            worker::retry_and_snooze_outcomes_are_applied,
            worker::invalid_follow_ups_fail_the_try_with_the_reason,
            unique::a_duplicate_returns_the_task_holding_its_key,
            unique::finished_tasks_count_when_the_key_says_so,
            unique::concurrent_enqueues_of_one_key_make_one_task,
            unique::retry_keeps_replaces_or_clears_the_key,
            unique::bad_unique_keys_are_refused,
            control::priorities_order_claims_before_not_before_and_id,
            control::many_waiting_tasks_do_not_hide_ready_ones_of_other_priorities,
            control::a_paused_action_is_not_claimed_until_resumed,
            control::stats_name_the_priorities_of_queued_tasks,
            cancel::tasks_that_have_not_started_end_cancelled_at_once,
            cancel::a_running_task_ends_cancelled_unless_it_completes,
            cancel::a_running_handler_hears_its_cancellation,
            cancel::a_handler_in_another_queue_hears_it_within_a_heartbeat,
            attempts::each_try_is_recorded_across_retries_and_expiries,
            attempts::only_the_newest_attempts_are_kept,
            attempts::a_running_task_shows_the_worker_that_holds_it,
            retention::purge_batches_take_the_longest_finished_first,
            retention::concurrent_purge_batches_remove_each_task_once,
            retention::workers_remove_exactly_the_finished_tasks_past_their_retention,
            schedules::declaring_a_schedule_again_changes_nothing_and_a_new_timing_moves_its_next_tick,
            schedules::concurrent_declarations_create_one_schedule,
            schedules::bad_schedules_and_unknown_names_are_refused,
            schedules::a_paused_schedule_enqueues_nothing_and_a_removed_one_is_gone,
            schedules::run_now_enqueues_at_once_and_leaves_the_ticks_alone,
            schedules::each_due_tick_is_enqueued_once_however_many_queues_tick,
            schedules::missed_ticks_follow_the_schedules_policy,
            schedules::workers_run_each_tick_of_a_schedule_once,
            limits::a_concurrency_limit_holds_across_queues,
            limits::an_expired_lease_gives_its_slot_back,
            limits::a_rate_limit_admits_a_bucket_then_its_rate,
            limits::a_busy_key_holds_back_only_its_own_tasks,
            limits::a_per_key_limit_never_runs_two_of_a_key,
            limits::a_paused_limited_action_is_not_claimed,
            limits::limits_are_set_listed_changed_and_refused_when_bad,
            helpers::drain_runs_every_ready_task_and_says_how_each_ended,
            helpers::drain_gives_up_on_a_task_that_never_ends,
            helpers::assertions_match_payload_fields_or_any_test,
        );
    };
    (@each $make:path; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = $make().await;
                conformance::$module::$name(&db).await;
            }
        )*
    };
}
