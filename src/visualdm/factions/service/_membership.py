"""Faction membership: joining, leaving, standing, and member lists of live characters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.db.idset import IdSet
from visualdm.db.inserts import inserted
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict, NotFound, RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.factions import repository as repo
from visualdm.factions.models import CharacterFaction
from visualdm.factions.schemas import SCORE_MAX, SCORE_MIN, MembershipPage, MembershipRead, Rank
from visualdm.factions.service._common import ASSOCIATE, MANAGEMENT, MEMBERSHIP, members_tag
from visualdm.ownership import Action, Domain, Resource


def _membership_read(row: CharacterFaction) -> MembershipRead:
    return MembershipRead.model_validate(row)


def _rank(rank: str) -> str:
    try:
        return TypeAdapter(Rank).validate_python(rank)
    except ValidationError:
        raise RuleViolation("rank must be 1 to 50 characters", rank=rank) from None


def _membership_written(
    uow: UnitOfWork,
    actor: Actor,
    row: CharacterFaction,
    action: str,
    changes: dict[str, Any],
    event: str,
) -> None:
    audit.record(
        uow,
        actor=actor,
        action=action,
        entity=MEMBERSHIP,
        entity_id=f"{row.faction_id}:{row.character_id}",
        changes=changes,
    )
    cache.invalidate(uow, [members_tag(row.faction_id)])
    uow.publish(
        DomainEvent(
            event,
            MEMBERSHIP,
            f"{row.faction_id}:{row.character_id}",
            uow.clock.now(),
            _membership_read(row).model_dump(mode="json"),
        )
    )


async def _insert_membership(
    uow: UnitOfWork, faction_id: int, character_id: int, rank: str, standing: int = 0
) -> CharacterFaction | None:
    """Insert a membership; None if the pair already exists (found first, or by a racer)."""
    if await repo.membership(uow.session, faction_id, character_id) is not None:
        return None
    row = CharacterFaction(
        faction_id=faction_id,
        character_id=character_id,
        rank=rank,
        standing=standing,
        joined_at=uow.clock.now(),
    )
    return row if await inserted(uow.session, row) else None


async def join_faction(
    uow: UnitOfWork, *, actor: Actor, faction_id: int, character_id: int, rank: str = "member"
) -> MembershipRead:
    """Make a live character a member of a live faction; NotFound, or Conflict if already one."""
    rank = _rank(rank)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.CREATE)
        await repo.get_live(uow.session, faction_id)
        await characters.ensure_live(uow, [character_id])
        row = await _insert_membership(uow, faction_id, character_id, rank)
        if row is None:
            raise Conflict(
                f"character {character_id} is already a member of faction {faction_id}",
                faction_id=faction_id,
                character_id=character_id,
            )
        new = _membership_read(row).model_dump(mode="json")
        changes = {k: {"old": None, "new": v} for k, v in new.items()}
        _membership_written(uow, actor, row, "join", changes, "faction.member_joined")
        return _membership_read(row)


async def leave_faction(
    uow: UnitOfWork, *, actor: Actor, faction_id: int, character_id: int
) -> None:
    """End a membership of a live faction; NotFound if the faction or membership is not there."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.DELETE)
        await repo.get_live(uow.session, faction_id)
        row = await repo.membership(uow.session, faction_id, character_id, for_update=True)
        if row is None:
            raise NotFound(
                MEMBERSHIP,
                f"{faction_id}:{character_id}",
                f"character {character_id} is not a member of faction {faction_id}",
            )
        record = _membership_read(row).model_dump(mode="json")
        await uow.session.delete(row)
        await uow.session.flush()
        _membership_written(uow, actor, row, "leave", {"record": record}, "faction.member_left")


async def adjust_standing(
    uow: UnitOfWork, *, actor: Actor, faction_id: int, character_id: int, delta: int
) -> MembershipRead:
    """Add `delta` to a character's standing (clamped to -100..100), joining as an associate.

    Meant for quest rewards inside the caller's transaction; NotFound for a missing or deleted
    faction or character.
    """
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.UPDATE)
        await repo.get_live(uow.session, faction_id)
        await characters.ensure_live(uow, [character_id])
        row = await repo.membership(uow.session, faction_id, character_id, for_update=True)
        if row is None:
            authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.CREATE)
            row = await _insert_membership(uow, faction_id, character_id, ASSOCIATE, _clamp(delta))
            if row is not None:
                new = _membership_read(row).model_dump(mode="json")
                changes = {k: {"old": None, "new": v} for k, v in new.items()}
                _membership_written(uow, actor, row, "join", changes, "faction.member_joined")
                return _membership_read(row)
            # A concurrent writer made the membership first: adjust theirs.
            row = await repo.membership(uow.session, faction_id, character_id, for_update=True)
            if row is None:
                raise Conflict(f"membership of {character_id} in {faction_id} changed; retry")
        before = row.standing
        row.standing = _clamp(before + delta)
        if row.standing != before:
            await uow.session.flush()
            changes = {"standing": {"old": before, "new": row.standing}}
            _membership_written(uow, actor, row, "update", changes, "faction.standing_changed")
        return _membership_read(row)


def _clamp(standing: int) -> int:
    return max(SCORE_MIN, min(SCORE_MAX, standing))


async def list_members(
    uow: UnitOfWork,
    *,
    actor: Actor,
    faction_id: int,
    cursor: str | None = None,
    limit: int | None = None,
) -> MembershipPage:
    """Return one page of a live faction's memberships of live characters, by join order."""
    size = page_size(limit)
    after = decode_cursor(cursor)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.READ)
        await repo.get_live(uow.session, faction_id)
        name = f"{faction_id}:members:{after or 0}:{size}"

        async def load_page() -> list[Any]:
            rows = await repo.members_page(uow.session, faction_id, after=after, limit=size + 1)
            return [{"row_id": r.id, **_membership_read(r).model_dump(mode="json")} for r in rows]

        # The stored rows change only with this faction's memberships; which of them are shown
        # also depends on the characters, so the filtered view carries each member's tag too.
        fetched = await cache.read_list_through(
            uow, Domain.FACTION, name, load_page, tags=[members_tag(faction_id)]
        )
        page = fetched[:size]
        member_ids = [item["character_id"] for item in page]

        async def load_live() -> list[Any]:
            live = await characters.live_ids(uow, member_ids)
            return [item for item in page if item["character_id"] in live]

        shown = await cache.read_list_through(
            uow,
            Domain.FACTION,
            f"{name}:live",
            load_live,
            tags=[members_tag(faction_id), *(f"character:{cid}" for cid in member_ids)],
        )
        more = len(fetched) > size
        return MembershipPage(
            items=[MembershipRead.model_validate(item) for item in shown],
            next_cursor=next_cursor([m["row_id"] for m in page], more),
        )


async def memberships_of(
    uow: UnitOfWork, *, actor: Actor, character_id: int
) -> list[MembershipRead]:
    """Return a live character's memberships of live factions; NotFound if it is not live."""
    return await memberships_of_characters(uow, actor=actor, character_ids=[character_id])


async def memberships_of_characters(
    uow: UnitOfWork, *, actor: Actor, character_ids: Sequence[int]
) -> list[MembershipRead]:
    """Return live characters' memberships of live factions, by character, then faction, in
    one query; NotFound for the first character that is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.READ)
        ids = list(character_ids)
        if not ids:
            return []
        await characters.ensure_live(uow, ids)
        rows = await repo.memberships_of(uow.session, IdSet(ids, uow.db.dialect))
        return [_membership_read(r) for r in rows]


async def is_member(uow: UnitOfWork, *, character_id: int, faction_id: int) -> bool:
    """Whether a membership row links them in a live faction; a system check, no actor.

    The character's own liveness is not checked: callers hold a live character already.
    """
    return faction_id in await factions_joined(
        uow, character_id=character_id, faction_ids=[faction_id]
    )


async def factions_joined(
    uow: UnitOfWork, *, character_id: int, faction_ids: Sequence[int]
) -> set[int]:
    """Which of `faction_ids` are live factions the character belongs to, in one query; a
    system check, no actor (the character's own liveness is the caller's to know)."""
    if not faction_ids:
        return set()
    async with uow.acting_as(MANAGEMENT):
        ids = IdSet(list(faction_ids), uow.db.dialect)
        return await repo.live_factions_joined(uow.session, character_id, ids)
