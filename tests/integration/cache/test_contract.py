"""The cache's behaviour tests, run on the memory backend and on real Redis (same assertions)."""

from __future__ import annotations

from tests.unit.cache.test_service import (
    test_a_cancelled_leader_does_not_fail_its_waiters,
    test_a_failing_load_fails_every_waiter_and_caches_nothing,
    test_a_late_delete_does_not_hide_a_newer_restore,
    test_a_load_racing_an_invalidation_is_not_cached,
    test_a_loaded_entity_without_version_is_refused,
    test_a_restore_replaces_a_versioned_tombstone_at_the_same_instant,
    test_a_slow_read_cannot_overwrite_a_newer_write,
    test_a_write_after_evict_restores,
    test_a_write_replaces_a_negative_entry,
    test_an_older_version_never_replaces_a_newer_one,
    test_bad_ids_are_refused_before_loading,
    test_bad_tags_are_refused,
    test_concurrent_misses_cause_one_load,
    test_each_caller_gets_its_own_copy,
    test_evict_hides_the_entity_and_blocks_stale_refills,
    test_invalidation_drops_exactly_the_tagged_entries,
    test_metrics_count_hits_misses_loads_and_invalidations,
    test_read_through_loads_once_then_serves_the_cached_value,
    test_same_version_is_ordered_by_timestamp,
    test_unserializable_loaded_values_are_refused_and_not_cached,
    test_write_through_invalidates_dependants_but_keeps_the_new_value,
)

# Re-exported so pytest collects them here, where the `cache` fixture is parametrized over
# memory and Redis. The clock-driven TTL tests stay unit-only: Redis expires on its own clock.
__all__ = [
    "test_a_cancelled_leader_does_not_fail_its_waiters",
    "test_a_failing_load_fails_every_waiter_and_caches_nothing",
    "test_a_late_delete_does_not_hide_a_newer_restore",
    "test_a_load_racing_an_invalidation_is_not_cached",
    "test_a_loaded_entity_without_version_is_refused",
    "test_a_restore_replaces_a_versioned_tombstone_at_the_same_instant",
    "test_a_slow_read_cannot_overwrite_a_newer_write",
    "test_a_write_after_evict_restores",
    "test_a_write_replaces_a_negative_entry",
    "test_an_older_version_never_replaces_a_newer_one",
    "test_bad_ids_are_refused_before_loading",
    "test_bad_tags_are_refused",
    "test_concurrent_misses_cause_one_load",
    "test_each_caller_gets_its_own_copy",
    "test_evict_hides_the_entity_and_blocks_stale_refills",
    "test_invalidation_drops_exactly_the_tagged_entries",
    "test_metrics_count_hits_misses_loads_and_invalidations",
    "test_read_through_loads_once_then_serves_the_cached_value",
    "test_same_version_is_ordered_by_timestamp",
    "test_unserializable_loaded_values_are_refused_and_not_cached",
    "test_write_through_invalidates_dependants_but_keeps_the_new_value",
]
