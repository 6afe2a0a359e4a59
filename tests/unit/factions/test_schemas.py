"""Faction schemas refuse bad input before any service runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from visualdm.factions.schemas import FactionCreate, FactionFilter, FactionUpdate, Stance


def test_names_are_trimmed_and_must_not_be_empty() -> None:
    assert FactionCreate(name="  Harpers ").name == "Harpers"
    with pytest.raises(ValidationError):
        FactionCreate(name="   ")
    with pytest.raises(ValidationError):
        FactionCreate(name="x" * 101)


def test_unknown_fields_and_bad_ids_are_refused() -> None:
    with pytest.raises(ValidationError):
        FactionCreate(name="X", leader="me")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        FactionUpdate(parent_id=0)
    with pytest.raises(ValidationError):
        FactionFilter(parent_id=-1)


def test_an_explicit_null_parent_is_told_apart_from_no_change() -> None:
    assert FactionUpdate(parent_id=None).model_dump(exclude_unset=True) == {"parent_id": None}
    assert FactionUpdate(name="X").model_dump(exclude_unset=True) == {"name": "X"}


def test_stances_are_the_six_the_table_allows() -> None:
    assert [s.value for s in Stance] == [
        "allied",
        "friendly",
        "neutral",
        "unfriendly",
        "hostile",
        "war",
    ]
