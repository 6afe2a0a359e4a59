"""Key naming, tag validation and the value codec reject what Redis must never hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visualdm.cache import keys as k
from visualdm.errors import RuleViolation
from visualdm.ownership import Domain


def test_entity_keys_are_versioned_under_the_prefix() -> None:
    assert k.CacheKeys("vdm").entity(Domain.CHARACTER, 42) == "vdm:v1:character:42"


def test_list_and_tag_keys_live_in_their_own_namespaces() -> None:
    keys = k.CacheKeys("vdm")
    assert keys.listing(Domain.FACTION, "3:members") == "vdm:v1:faction:list:3:members"
    assert keys.tag_set("faction:3") == "vdm:v1:tag:faction:3"
    assert keys.tag_generation("faction:3") == "vdm:v1:gen:faction:3"


@pytest.mark.parametrize("bad", [0, -1, True, "1", 1.0, None])
def test_bad_entity_ids_are_refused(bad: object) -> None:
    with pytest.raises(k.InvalidCacheKey):
        k.CacheKeys("vdm").entity(Domain.CHARACTER, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a b", "x" * 201, "a::b", ":a", "a:", "*", "a\nb", "é"])
def test_bad_tags_are_refused_with_a_rule_violation(bad: str) -> None:
    with pytest.raises(RuleViolation, match="invalid cache tag"):
        k.check_tags([bad])


def test_a_bare_string_is_not_a_tag_list() -> None:
    with pytest.raises(k.InvalidCacheKey, match="sequence of strings"):
        k.check_tags("character:1")


def test_tags_are_deduplicated_in_order() -> None:
    assert k.check_tags(["b:1", "a:2", "b:1"]) == ("b:1", "a:2")


def test_negative_tile_coordinates_are_valid_tags() -> None:
    assert k.check_tags(["tile:-3:7"]) == ("tile:-3:7",)


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(k.InvalidCacheKey):
        k.CacheKeys("vdm:*")


@pytest.mark.parametrize("bad", [{1, 2}, object(), {1: "non-string key"}, b"bytes"])
def test_unserializable_values_are_refused(bad: object) -> None:
    with pytest.raises(k.UnserializableCacheValue, match="not JSON-serializable"):
        k.encode({"version": 1, "x": bad})


def test_values_round_trip_as_json() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert k.decode(k.encode({"version": 1, "at": at})) == {
        "version": 1,
        "at": "2026-01-01T00:00:00+00:00",
    }


@pytest.mark.parametrize("bad", [{}, {"version": "1"}, {"version": True}, {"version": None}])
def test_entities_must_carry_an_integer_version(bad: dict[str, object]) -> None:
    with pytest.raises(k.UnserializableCacheValue, match="version"):
        k.entity_version(bad)
