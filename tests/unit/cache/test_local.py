"""The process-local L1 cache: TTL cap, LRU bound, tag index and the invalidation sequence."""

from __future__ import annotations

from datetime import timedelta

from visualdm.cache.backend import Kind, Stored
from visualdm.cache.local import LocalCache
from visualdm.clock import FrozenClock

V = Stored(Kind.VALUE, b"{}")
MINUTE = timedelta(minutes=1)


def test_entries_live_at_most_the_local_cap(clock: FrozenClock) -> None:
    local = LocalCache(clock, max_ttl=timedelta(seconds=30))
    local.put("k", V, ttl=MINUTE * 5, tags=(), seq=local.seq)
    clock.advance(timedelta(seconds=29))
    assert local.get("k") == V
    clock.advance(timedelta(seconds=2))
    assert local.get("k") is None


def test_least_recently_used_goes_first(clock: FrozenClock) -> None:
    local = LocalCache(clock, max_entries=2)
    local.put("a", V, ttl=MINUTE, tags=(), seq=local.seq)
    local.put("b", V, ttl=MINUTE, tags=(), seq=local.seq)
    local.get("a")
    local.put("c", V, ttl=MINUTE, tags=(), seq=local.seq)
    assert [local.get(k) is not None for k in "abc"] == [True, False, True]


def test_forgetting_a_tag_drops_its_entries_only(clock: FrozenClock) -> None:
    local = LocalCache(clock)
    local.put("a", V, ttl=MINUTE, tags=("t:1",), seq=local.seq)
    local.put("b", V, ttl=MINUTE, tags=("t:2",), seq=local.seq)
    local.forget(tags=["t:1"])
    assert (local.get("a"), local.get("b")) == (None, V)


def test_a_put_that_crossed_an_invalidation_is_refused(clock: FrozenClock) -> None:
    local = LocalCache(clock)
    seq = local.seq
    local.forget(keys=["other"])
    assert not local.put("k", V, ttl=MINUTE, tags=(), seq=seq)
    assert local.get("k") is None


def test_clear_empties_and_refuses_in_flight_puts(clock: FrozenClock) -> None:
    local = LocalCache(clock)
    seq = local.seq
    local.put("a", V, ttl=MINUTE, tags=("t",), seq=seq)
    local.clear()
    assert len(local) == 0
    assert not local.put("b", V, ttl=MINUTE, tags=(), seq=seq)
