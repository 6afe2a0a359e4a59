"""Character services on SQLite and PostgreSQL: CRUD, soft delete, locking, positions, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from tests.conftest import UowFactory
from tests.support.world import SYSTEM, Cast, make_cast
from visualdm.access.principals import UserActor
from visualdm.audit.models import AuditEntry
from visualdm.characters import service
from visualdm.characters.models import Character
from visualdm.characters.schemas import CharacterCreate, CharacterFilter, CharacterUpdate
from visualdm.clock import FrozenClock
from visualdm.errors import NotFound, PermissionDenied, RuleViolation, VersionConflict
from visualdm.ownership import MAX_WRITE_ATTEMPTS


@pytest.fixture
async def cast(uow: UowFactory) -> Cast:
    """A game master and two players."""
    return await make_cast(uow)


async def _create(uow: UowFactory, actor: UserActor, name: str = "Aria", **kw: object) -> int:
    async with uow() as u:
        made = await service.create_character(
            u,
            actor=actor,
            data=CharacterCreate(name=name, race="elf", **kw),  # type: ignore[arg-type]
        )
    return made.id


async def _audit(uow: UowFactory, entity_id: int) -> list[AuditEntry]:
    async with uow() as u:
        rows = await u.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.seq)
        )
        return list(rows.all())


async def test_a_player_creates_a_character_they_own(uow: UowFactory, cast: Cast) -> None:
    cid = await _create(uow, cast.alice, strength=16)
    async with uow() as u:
        got = await service.get_character(u, actor=cast.bob, character_id=cid)
    assert got.owner_id == cast.alice.user_id
    assert got.strength == 16
    assert got.hp == got.max_hp
    assert got.version == 1
    entries = await _audit(uow, cid)
    assert [e.action for e in entries] == ["create"]
    assert entries[0].actor_user_id == cast.alice.user_id
    assert entries[0].module == "character_creation"


async def test_a_player_cannot_create_a_character_for_someone_else(
    uow: UowFactory, cast: Cast
) -> None:
    with pytest.raises(PermissionDenied):
        await _create(uow, cast.alice, owner_id=cast.bob.user_id)


async def test_an_unknown_owner_is_a_rule_violation_not_an_integrity_error(
    uow: UowFactory, cast: Cast
) -> None:
    with pytest.raises(RuleViolation, match="owner 9999"):
        await _create(uow, cast.gm, owner_id=9999)
    async with uow() as u:
        page = await service.list_characters(u, actor=cast.gm)
    assert page.items == []


def test_negative_or_out_of_range_ability_scores_are_rejected() -> None:
    with pytest.raises(ValidationError):
        CharacterCreate(name="X", race="orc", strength=-3)
    with pytest.raises(ValidationError):
        CharacterUpdate(wisdom=31)
    with pytest.raises(ValidationError):
        CharacterCreate(name="X", race="orc", unknown_field=1)  # type: ignore[call-arg]


async def test_update_changes_only_given_fields_and_audits_old_and_new(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.alice)
    async with uow() as u:
        got = await service.update_character(
            u,
            actor=cast.alice,
            character_id=cid,
            changes=CharacterUpdate(name="Aria II", wisdom=14),
        )
    assert (got.name, got.wisdom, got.race, got.version) == ("Aria II", 14, "elf", 2)
    last = (await _audit(uow, cid))[-1]
    assert last.action == "update"
    assert last.changes == {
        "name": {"old": "Aria", "new": "Aria II"},
        "wisdom": {"old": 10, "new": 14},
    }


async def test_a_player_cannot_change_another_players_character(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.alice)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.update_character(
                u, actor=cast.bob, character_id=cid, changes=CharacterUpdate(name="Mine")
            )
    async with uow() as u:
        await service.update_character(
            u, actor=cast.gm, character_id=cid, changes=CharacterUpdate(name="GM edit")
        )
        assert (await service.get_character(u, actor=cast.bob, character_id=cid)).name == "GM edit"


async def test_a_stale_version_is_a_conflict_that_reports_the_current_version(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.alice)
    async with uow() as u:
        await service.update_character(
            u,
            actor=cast.alice,
            character_id=cid,
            changes=CharacterUpdate(name="B"),
            expected_version=1,
        )
    with pytest.raises(VersionConflict) as caught:
        async with uow() as u:
            await service.update_character(
                u,
                actor=cast.alice,
                character_id=cid,
                changes=CharacterUpdate(name="C"),
                expected_version=1,
            )
    assert caught.value.current_version == 2
    async with uow() as u:
        assert (await service.get_character(u, actor=cast.alice, character_id=cid)).name == "B"


async def test_a_failed_update_leaves_no_partial_write_and_no_audit(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.alice, max_hp=20)
    with pytest.raises(RuleViolation):
        async with uow() as u:
            await service.update_character(
                u, actor=cast.alice, character_id=cid, changes=CharacterUpdate(name="Z", hp=25)
            )
    async with uow() as u:
        got = await service.get_character(u, actor=cast.alice, character_id=cid)
    assert (got.name, got.hp, got.version) == ("Aria", 20, 1)
    assert [e.action for e in await _audit(uow, cid)] == ["create"]


async def test_soft_deleted_characters_vanish_and_can_be_restored(
    uow: UowFactory, cast: Cast
) -> None:
    keep = await _create(uow, cast.alice, "Keep")
    gone = await _create(uow, cast.alice, "Gone")
    async with uow() as u:
        await service.delete_character(u, actor=cast.alice, character_id=gone)
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.get_character(u, actor=cast.alice, character_id=gone)
        listed = await service.list_characters(u, actor=cast.alice)
        assert [c.id for c in listed.items] == [keep]
        with pytest.raises(NotFound):
            await service.update_character(
                u, actor=cast.alice, character_id=gone, changes=CharacterUpdate(name="x")
            )
    delete_entry = (await _audit(uow, gone))[-1]
    assert delete_entry.action == "delete"
    assert delete_entry.changes["record"]["name"] == "Gone"
    async with uow() as u:
        restored = await service.restore_character(u, actor=cast.alice, character_id=gone)
    assert restored.name == "Gone"
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.restore_character(u, actor=cast.alice, character_id=keep)


async def test_list_filters_and_cursor_pagination_visit_every_match_once(
    uow: UowFactory, cast: Cast
) -> None:
    ids = [await _create(uow, cast.alice, f"Hero {i}", level=1 + i % 3) for i in range(7)]
    await _create(uow, cast.bob, "Other")
    seen: list[int] = []
    cursor = None
    async with uow() as u:
        while True:
            page = await service.list_characters(
                u,
                actor=cast.gm,
                filters=CharacterFilter(owner_id=cast.alice.user_id),
                cursor=cursor,
                limit=3,
            )
            seen += [c.id for c in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ids
        high = await service.list_characters(
            u, actor=cast.gm, filters=CharacterFilter(min_level=3, name_contains="hero")
        )
        assert [c.level for c in high.items] == [3, 3]
        with pytest.raises(RuleViolation):
            await service.list_characters(u, actor=cast.gm, cursor="not-a-cursor")
        with pytest.raises(RuleViolation):
            await service.list_characters(u, actor=cast.gm, limit=0)


async def test_granting_xp_levels_up_and_is_audited(uow: UowFactory, cast: Cast) -> None:
    cid = await _create(uow, cast.alice)
    async with uow() as u:
        got = await service.grant_xp(u, actor=cast.gm, character_id=cid, amount=1000)
    assert (got.xp, got.level) == (1000, 3)
    assert (await _audit(uow, cid))[-1].changes == {
        "xp": {"old": 0, "new": 1000},
        "level": {"old": 1, "new": 3},
    }
    with pytest.raises(RuleViolation):
        async with uow() as u:
            await service.grant_xp(u, actor=cast.gm, character_id=cid, amount=0)


async def test_grant_xp_gives_up_with_a_conflict_after_the_registry_limit(
    uow: UowFactory, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = await _create(uow, cast.alice)
    calls = 0
    original = service.repo.get_live

    async def always_stale(session, character_id, *, fresh=False, lock=False):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        row = await original(session, character_id, fresh=fresh, lock=lock)
        # Another writer commits between our read and our write: the stored version moves on.
        await session.execute(
            update(Character)
            .where(Character.id == character_id)
            .values(version=Character.version + 1)
            .execution_options(synchronize_session=False)
        )
        return row

    monkeypatch.setattr(service.repo, "get_live", always_stale)
    with pytest.raises(VersionConflict) as caught:
        async with uow() as u:
            await service.grant_xp(u, actor=cast.gm, character_id=cid, amount=10)
    assert calls == MAX_WRITE_ATTEMPTS
    assert caught.value.details["attempts"] == MAX_WRITE_ATTEMPTS
    monkeypatch.undo()
    async with uow() as u:
        assert (await service.get_character(u, actor=cast.gm, character_id=cid)).xp == 0


async def test_positions_are_last_writer_wins_by_timestamp(
    uow: UowFactory, cast: Cast, clock: FrozenClock
) -> None:
    cid = await _create(uow, cast.alice)
    t0 = clock.now()
    async with uow() as u:
        first = await service.set_position(u, actor=cast.alice, character_id=cid, x=5, y=6, at=t0)
    assert first.applied
    async with uow() as u:
        older = await service.set_position(
            u, actor=cast.alice, character_id=cid, x=1, y=1, at=t0 - timedelta(seconds=1)
        )
    assert not older.applied
    assert older.position is not None
    assert (older.position.x, older.position.y) == (5, 6)
    async with uow() as u:
        newer = await service.set_position(
            u, actor=cast.alice, character_id=cid, x=7, y=8, at=t0 + timedelta(seconds=1)
        )
        got = await service.get_character(u, actor=cast.alice, character_id=cid)
    assert newer.applied
    assert got.position is not None
    assert (got.position.x, got.position.y) == (7, 8)
    assert got.version == 1  # positions do not take part in optimistic locking
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.set_position(u, actor=cast.bob, character_id=cid, x=0, y=0)


async def test_system_actors_pass_role_checks_but_not_module_checks(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.alice)
    async with uow() as u:
        got = await service.update_character(
            u, actor=SYSTEM, character_id=cid, changes=CharacterUpdate(gold=5)
        )
    assert got.gold == 5


async def test_rewards_past_what_the_columns_hold_are_refused_and_change_nothing(
    uow: UowFactory, cast: Cast
) -> None:
    cid = await _create(uow, cast.gm)
    async with uow() as u:
        await service.update_character(
            u, actor=cast.gm, character_id=cid, changes=CharacterUpdate(gold=2**31 - 10)
        )
    with pytest.raises(RuleViolation, match="gold would exceed"):
        async with uow() as u:
            await service.grant_rewards(u, actor=cast.gm, character_id=cid, gold=100)
    with pytest.raises(RuleViolation, match="xp would exceed"):
        async with uow() as u:
            await service.grant_xp(u, actor=cast.gm, character_id=cid, amount=2**31)
    with pytest.raises(RuleViolation, match="at most"):
        async with uow() as u:
            await service.grant_rewards(u, actor=cast.gm, character_id=cid, items=[1] * 1001)
    async with uow() as u:
        after = await service.get_character(u, actor=cast.gm, character_id=cid)
    assert (after.gold, after.xp, after.inventory, after.version) == (2**31 - 10, 0, [], 2)
