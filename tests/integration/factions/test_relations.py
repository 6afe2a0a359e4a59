"""Faction relations: one symmetric row per pair, bounded scores, never with oneself."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import UowFactory
from tests.integration.factions.conftest import Cast, audit_of, make_faction
from visualdm.errors import NotFound, PermissionDenied, RuleViolation
from visualdm.factions import service
from visualdm.factions.models import FactionRelation
from visualdm.factions.schemas import Stance


async def test_a_relation_reads_the_same_from_either_side(uow: UowFactory, cast: Cast) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    async with uow() as u:
        made = await service.set_relation(
            u, actor=cast.gm, faction_id=b, other_id=a, stance="hostile", score=-60
        )
    assert (made.faction_id, made.other_id, made.stance, made.score) == (b, a, Stance.HOSTILE, -60)
    async with uow() as u:
        from_a = await service.get_relation(u, actor=cast.alice, faction_id=a, other_id=b)
        from_b = await service.get_relation(u, actor=cast.alice, faction_id=b, other_id=a)
        rows = (await u.session.scalars(select(FactionRelation))).all()
    assert (from_a.other_id, from_b.other_id) == (b, a)
    assert (from_a.stance, from_a.score) == (from_b.stance, from_b.score) == (Stance.HOSTILE, -60)
    assert [(r.faction_a_id, r.faction_b_id) for r in rows] == [(a, b)]
    entries = await audit_of(uow, "faction_relation", f"{a}:{b}")
    assert [e.module for e in entries] == ["faction_management"]
    assert entries[0].changes == {
        "stance": {"old": None, "new": "hostile"},
        "score": {"old": None, "new": -60},
    }


async def test_setting_a_relation_again_updates_the_one_row_and_audits_the_change(
    uow: UowFactory, cast: Cast
) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    for stance, score in (("neutral", 0), ("allied", 80)):
        async with uow() as u:
            await service.set_relation(
                u, actor=cast.gm, faction_id=a, other_id=b, stance=stance, score=score
            )
    async with uow() as u:
        listed = await service.list_relations(u, actor=cast.gm, faction_id=b)
    assert [(r.other_id, r.stance, r.score) for r in listed] == [(a, Stance.ALLIED, 80)]
    last = (await audit_of(uow, "faction_relation", f"{a}:{b}"))[-1]
    assert (last.action, last.module) == ("update", "faction_management")
    assert last.changes == {
        "stance": {"old": "neutral", "new": "allied"},
        "score": {"old": 0, "new": 80},
    }


async def test_bad_relations_are_refused_without_writing(uow: UowFactory, cast: Cast) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    cases: list[tuple[type[Exception], int, str, int]] = [
        (RuleViolation, a, "allied", 10),  # with itself
        (RuleViolation, b, "allied", 101),
        (RuleViolation, b, "allied", -101),
        (RuleViolation, b, "smitten", 0),
        (NotFound, 9999, "war", 0),
    ]
    for error, other, stance, score in cases:
        with pytest.raises(error):
            async with uow() as u:
                await service.set_relation(
                    u, actor=cast.gm, faction_id=a, other_id=other, stance=stance, score=score
                )
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.set_relation(
                u, actor=cast.alice, faction_id=a, other_id=b, stance="war", score=-100
            )
    async with uow() as u:
        assert (await u.session.scalars(select(FactionRelation))).all() == []
        with pytest.raises(RuleViolation):
            await service.get_relation(u, actor=cast.gm, faction_id=a, other_id=a)
        with pytest.raises(NotFound, match="no relation"):
            await service.get_relation(u, actor=cast.gm, faction_id=a, other_id=b)
    assert await audit_of(uow, "faction_relation", f"{a}:{b}") == []


async def test_relations_with_a_deleted_faction_vanish_until_it_is_restored(
    uow: UowFactory, cast: Cast
) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    c = await make_faction(uow, cast.gm, "C")
    async with uow() as u:
        await service.set_relation(
            u, actor=cast.gm, faction_id=a, other_id=b, stance="friendly", score=30
        )
        await service.set_relation(
            u, actor=cast.gm, faction_id=a, other_id=c, stance="war", score=-100
        )
        await service.delete_faction(u, actor=cast.gm, faction_id=b)
    async with uow() as u:
        assert [
            r.other_id for r in await service.list_relations(u, actor=cast.gm, faction_id=a)
        ] == [c]
        with pytest.raises(NotFound):
            await service.get_relation(u, actor=cast.gm, faction_id=a, other_id=b)
        with pytest.raises(NotFound):
            await service.set_relation(
                u, actor=cast.gm, faction_id=b, other_id=c, stance="neutral", score=0
            )
    async with uow() as u:
        await service.restore_faction(u, actor=cast.gm, faction_id=b)
        back = await service.get_relation(u, actor=cast.gm, faction_id=b, other_id=a)
    assert (back.stance, back.score) == (Stance.FRIENDLY, 30)
