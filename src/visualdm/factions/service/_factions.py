"""Faction services: CRUD and soft delete, the acyclic hierarchy, relations and membership.

Creation runs as the World Generation System, everything else as the Faction Management System
(spec 2.2); each call authorizes the module and the user, and audits what it writes. Deleting a
faction is soft: its children keep their parent_id and its memberships and relations stay
stored, but they vanish from every read of the deleted faction until it is restored.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.retry import flush_versioned
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict, NotFound, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent
from visualdm.factions import repository as repo
from visualdm.factions.models import CharacterFaction, Faction, FactionRelation
from visualdm.factions.schemas import (
    SCORE_MAX,
    SCORE_MIN,
    FactionCreate,
    FactionFilter,
    FactionPage,
    FactionRead,
    FactionUpdate,
    MembershipPage,
    MembershipRead,
    Rank,
    RelationRead,
    Stance,
)
from visualdm.ownership import Action, Domain, Module, Resource

ENTITY = "faction"
RELATION = "faction_relation"
MEMBERSHIP = "faction_membership"
CREATION = Module.WORLD_GENERATION
MANAGEMENT = Module.FACTION_MANAGEMENT
ASSOCIATE = "associate"


def tags_of(faction_id: int) -> list[str]:
    """Cache tags a change to this faction invalidates (spec 5.4: it and its member list)."""
    return [f"faction:{faction_id}", members_tag(faction_id)]


def members_tag(faction_id: int) -> str:
    """The cache tag of a faction's member list."""
    return f"faction:{faction_id}:members"


def to_read(row: Faction) -> FactionRead:
    """Return the API view of a row."""
    return FactionRead.model_validate(row)


def _snapshot(row: Faction) -> dict[str, Any]:
    return to_read(row).model_dump(mode="json")


def _after_write(uow: UnitOfWork, row: Faction, event: str, changes: dict[str, Any]) -> None:
    cache.write_through(
        uow,
        Domain.FACTION,
        row.id,
        _snapshot(row),
        version=row.version,
        tags=tags_of(row.id),
    )
    uow.publish(DomainEvent(event, ENTITY, row.id, uow.clock.now(), {"changed": sorted(changes)}))


async def _check_parent(uow: UnitOfWork, faction_id: int | None, parent_id: int) -> None:
    """Refuse a missing or deleted parent, the faction itself, or one of its descendants."""
    if parent_id == faction_id:
        raise RuleViolation(f"faction {faction_id} cannot be its own parent", parent_id=parent_id)
    if await repo.get(uow.session, parent_id) is None:
        raise NotFound(ENTITY, parent_id, f"parent faction {parent_id} not found")
    if faction_id is not None and faction_id in await repo.ancestor_ids(uow.session, parent_id):
        raise RuleViolation(
            f"making {parent_id} the parent of {faction_id} would create a cycle "
            f"({parent_id} is below {faction_id})",
            faction_id=faction_id,
            parent_id=parent_id,
        )


async def create_faction(uow: UnitOfWork, *, actor: Actor, data: FactionCreate) -> FactionRead:
    """Create a faction; NotFound if `data.parent_id` is not a live faction."""
    async with uow.acting_as(CREATION):
        authorize(actor, CREATION, Resource.FACTION, Action.CREATE)
        if data.parent_id is not None:
            await _check_parent(uow, None, data.parent_id)
        now = uow.clock.now()
        row = Faction(**data.model_dump(), created_at=now, updated_at=now)
        uow.session.add(row)
        await uow.session.flush()
        snapshot = _snapshot(row)
        audit.record_created(uow, actor=actor, entity=ENTITY, entity_id=row.id, values=snapshot)
        _after_write(uow, row, "faction.created", snapshot)
        return to_read(row)


async def get_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> FactionRead:
    """Return a live faction; NotFound if missing or soft-deleted."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)

        async def load() -> dict[str, Any] | None:
            row = await repo.get(uow.session, faction_id)
            return None if row is None else _snapshot(row)

        value = await cache.read_through(
            uow, Domain.FACTION, faction_id, load, tags=tags_of(faction_id)
        )
        if value is None:
            raise NotFound(ENTITY, faction_id)
        return FactionRead.model_validate(value)


async def list_factions(
    uow: UnitOfWork,
    *,
    actor: Actor,
    filters: FactionFilter | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> FactionPage:
    """Return one page of live factions matching `filters`, ordered by id."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        size = page_size(limit)
        rows, more = await repo.list_page(
            uow.session, filters or FactionFilter(), after=decode_cursor(cursor), limit=size
        )
        return FactionPage(
            items=[to_read(r) for r in rows],
            next_cursor=next_cursor([r.id for r in rows], more),
        )


async def update_faction(
    uow: UnitOfWork,
    *,
    actor: Actor,
    faction_id: int,
    changes: FactionUpdate,
    expected_version: int | None = None,
) -> FactionRead:
    """Apply a partial update; RuleViolation on a cycle, VersionConflict if a version is stale."""
    given = changes.model_dump(exclude_unset=True)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.UPDATE)
        if given.get("parent_id") is not None:
            # Taken before reading anything, so the ancestor walk sees every committed move.
            await repo.lock_tree(uow.session)
        row = await repo.get_live(uow.session, faction_id, fresh=True)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(ENTITY, faction_id, current_version=row.version)
        before = _snapshot(row)
        for name, value in given.items():
            if value is None and name != "parent_id":
                raise RuleViolation(f"{name} cannot be null", field=name)
        if given.get("parent_id") is not None and given["parent_id"] != row.parent_id:
            await _check_parent(uow, faction_id, given["parent_id"])
        for name, value in given.items():
            setattr(row, name, value)
        changed = audit.diff(before, _snapshot(row))
        if not changed:
            return to_read(row)
        row.updated_at = uow.clock.now()
        await flush_versioned(uow, Faction, ENTITY, faction_id)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=row.id, changes=changed
        )
        _after_write(uow, row, "faction.updated", changed)
        return to_read(row)


async def delete_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> None:
    """Soft-delete a faction; its children, relations and memberships are kept but hidden."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.DELETE)
        row = await repo.get_live(uow.session, faction_id, fresh=True)
        kept_children = [c.id for c in await repo.children_of(uow.session, faction_id)]
        members = await repo.member_count(uow.session, faction_id)
        row.deleted_at = uow.clock.now()
        await flush_versioned(uow, Faction, ENTITY, faction_id)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=row.id,
            changes={
                "record": _snapshot(row),
                "soft": True,
                "children_kept": kept_children,
                "memberships_kept": members,
            },
        )
        cache.evict(uow, Domain.FACTION, row.id, tags=tags_of(row.id), version=row.version)
        uow.publish(DomainEvent("faction.deleted", ENTITY, row.id, uow.clock.now()))


async def restore_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> FactionRead:
    """Bring back a soft-deleted faction (with its hidden memberships and relations)."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.UPDATE)
        row = await repo.get_deleted(uow.session, faction_id)
        deleted_at = row.deleted_at
        row.deleted_at = None
        row.updated_at = uow.clock.now()
        await flush_versioned(uow, Faction, ENTITY, faction_id)
        audit.record(
            uow,
            actor=actor,
            action="restore",
            entity=ENTITY,
            entity_id=row.id,
            changes={"deleted_at": {"old": deleted_at, "new": None}},
        )
        _after_write(uow, row, "faction.restored", {"deleted_at": None})
        return to_read(row)


async def ancestors(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> list[FactionRead]:
    """Return the live parent chain of a live faction, nearest first; a deleted one cuts it."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        await repo.get_live(uow.session, faction_id)
        chain = await repo.ancestor_ids(uow.session, faction_id)
        live = await repo.live_by_ids(uow.session, chain)
        result: list[FactionRead] = []
        for ancestor_id in chain:
            if ancestor_id not in live:
                break
            result.append(to_read(live[ancestor_id]))
        return result


async def children(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> list[FactionRead]:
    """Return the live direct children of a live faction, by id; NotFound if it is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        await repo.get_live(uow.session, faction_id)
        return [to_read(r) for r in await repo.children_of(uow.session, faction_id)]


# --- Relations -------------------------------------------------------------------------------


def _relation_read(row: FactionRelation, faction_id: int) -> RelationRead:
    other = row.faction_b_id if row.faction_a_id == faction_id else row.faction_a_id
    return RelationRead(
        faction_id=faction_id,
        other_id=other,
        stance=Stance(row.stance),
        score=row.score,
        updated_at=row.updated_at,
    )


def _pair(faction_id: int, other_id: int) -> tuple[int, int]:
    if faction_id == other_id:
        raise RuleViolation(f"faction {faction_id} cannot have a relation with itself")
    return min(faction_id, other_id), max(faction_id, other_id)


async def set_relation(
    uow: UnitOfWork,
    *,
    actor: Actor,
    faction_id: int,
    other_id: int,
    stance: Stance | str,
    score: int,
) -> RelationRead:
    """Set how two live factions stand (symmetric); RuleViolation on self or bad stance/score."""
    a, b = _pair(faction_id, other_id)
    try:
        stance = Stance(stance)
    except ValueError:
        raise RuleViolation(f"unknown stance {stance!r}", stance=stance) from None
    if not SCORE_MIN <= score <= SCORE_MAX:
        raise RuleViolation(f"score must be between {SCORE_MIN} and {SCORE_MAX}", score=score)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_RELATION, Action.UPDATE)
        await repo.get_live(uow.session, a)
        await repo.get_live(uow.session, b)
        after = {"stance": stance.value, "score": score}
        row = await repo.relation(uow.session, a, b, for_update=True)
        if row is None:
            row = await _create_relation(uow, actor, a, b, stance, score)
            if row is not None:
                return _relation_read(row, faction_id)
            # A concurrent writer created the row first: update theirs.
            row = await repo.relation(uow.session, a, b, for_update=True)
            if row is None:
                raise Conflict(f"the relation of factions {a} and {b} changed; try again")
        changed = audit.diff({"stance": row.stance, "score": row.score}, after)
        if changed:
            row.stance, row.score, row.updated_at = stance.value, score, uow.clock.now()
            await uow.session.flush()
            _relation_written(uow, actor, row, "update", changed)
        return _relation_read(row, faction_id)


async def _create_relation(
    uow: UnitOfWork, actor: Actor, a: int, b: int, stance: Stance, score: int
) -> FactionRelation | None:
    """Insert and audit the pair's row; None if a concurrent writer inserted it first."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_RELATION, Action.CREATE)
        row = FactionRelation(
            faction_a_id=a,
            faction_b_id=b,
            stance=stance.value,
            score=score,
            updated_at=uow.clock.now(),
        )
        try:
            async with uow.session.begin_nested():
                uow.session.add(row)
                await uow.session.flush()
        except IntegrityError:
            return None
        changed = audit.diff({}, {"stance": row.stance, "score": row.score})
        _relation_written(uow, actor, row, "create", changed)
        return row


def _relation_written(
    uow: UnitOfWork, actor: Actor, row: FactionRelation, action: str, changed: dict[str, Any]
) -> None:
    key = f"{row.faction_a_id}:{row.faction_b_id}"
    audit.record(uow, actor=actor, action=action, entity=RELATION, entity_id=key, changes=changed)
    cache.invalidate(uow, [f"faction:{row.faction_a_id}", f"faction:{row.faction_b_id}"])
    uow.publish(
        DomainEvent(
            "faction.relation_set",
            RELATION,
            key,
            uow.clock.now(),
            {"stance": row.stance, "score": row.score},
        )
    )


async def get_relation(
    uow: UnitOfWork, *, actor: Actor, faction_id: int, other_id: int
) -> RelationRead:
    """Return how two live factions stand; NotFound if either is gone or none was ever set."""
    a, b = _pair(faction_id, other_id)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_RELATION, Action.READ)
        await repo.get_live(uow.session, a)
        await repo.get_live(uow.session, b)
        row = await repo.relation(uow.session, a, b)
        if row is None:
            raise NotFound(RELATION, f"{a}:{b}", f"factions {a} and {b} have no relation set")
        return _relation_read(row, faction_id)


async def list_relations(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> list[RelationRead]:
    """Return a live faction's relations with other live factions, by the other's id."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_RELATION, Action.READ)
        await repo.get_live(uow.session, faction_id)
        rows = await repo.relations_of(uow.session, faction_id)
        return [_relation_read(r, faction_id) for r in rows]


# --- Membership ------------------------------------------------------------------------------


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
    try:
        async with uow.session.begin_nested():
            uow.session.add(row)
            await uow.session.flush()
    except IntegrityError:
        return None
    return row


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
            live = await _live_characters(uow, member_ids)
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


async def _live_characters(uow: UnitOfWork, character_ids: list[int]) -> set[int]:
    """Which of `character_ids` are live, asked of the Character System (one call if all are)."""
    remaining = list(dict.fromkeys(character_ids))
    while remaining:
        try:
            await characters.ensure_live(uow, remaining)
        except NotFound as missing:
            if missing.entity_id not in remaining:
                raise
            remaining = [cid for cid in remaining if cid != missing.entity_id]
            continue
        break
    return set(remaining)


async def memberships_of(
    uow: UnitOfWork, *, actor: Actor, character_id: int
) -> list[MembershipRead]:
    """Return a live character's memberships of live factions; NotFound if it is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION_MEMBERSHIP, Action.READ)
        await characters.ensure_live(uow, [character_id])
        return [_membership_read(r) for r in await repo.memberships_of(uow.session, character_id)]


async def is_member(uow: UnitOfWork, *, character_id: int, faction_id: int) -> bool:
    """Whether a membership row links them in a live faction; a system check, no actor.

    The character's own liveness is not checked: callers hold a live character already.
    """
    async with uow.acting_as(MANAGEMENT):
        if await repo.get(uow.session, faction_id) is None:
            return False
        return await repo.membership(uow.session, faction_id, character_id) is not None
