"""Character services: create, read, list, update, soft delete, restore, XP and positions.

Creation runs as the Character Creation System, everything else as the Character Management
System (spec 2.1); each call authorizes the module and the user, and audits what it writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor, UserActor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import repository as repo
from visualdm.characters.models import Character
from visualdm.characters.rules import level_for_xp
from visualdm.characters.schemas import (
    CharacterCreate,
    CharacterFilter,
    CharacterPage,
    CharacterRead,
    CharacterUpdate,
    Position,
    PositionResult,
)
from visualdm.db.inserts import inserted
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.db.versioned import retry_on_conflict, stale, store_row, update_versioned
from visualdm.errors import NotFound, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent
from visualdm.ownership import (
    INVENTORY_MAX,
    POSITION_CLOCK_SKEW,
    Action,
    Domain,
    Module,
    Resource,
)
from visualdm.storable import INT32_MAX

ENTITY = "character"
_TABLE = Character.__table__
CREATION = Module.CHARACTER_CREATION
MANAGEMENT = Module.CHARACTER_MANAGEMENT


def tags_of(character_id: int) -> list[str]:
    """Cache tags a change to this character invalidates (spec 5.4: it and its dependants)."""
    return [f"character:{character_id}"]


def to_read(row: Character | Row[Any] | Mapping[str, Any]) -> CharacterRead:
    """Return the API view of a row (an ORM object, a Core row or a mapping of its columns)."""
    columns: Mapping[Any, Any] | None = (
        row._mapping if isinstance(row, Row) else row if isinstance(row, Mapping) else None
    )
    if columns is not None:
        data = {c: columns[c] for c in CharacterRead.model_fields if c in columns}
        x, y, at = columns["x"], columns["y"], columns["position_updated_at"]
    else:
        assert isinstance(row, Character)
        data = {c: getattr(row, c) for c in CharacterRead.model_fields if hasattr(row, c)}
        x, y, at = row.x, row.y, row.position_updated_at
    data["position"] = _position(x, y, at)
    return CharacterRead.model_validate(data)


def _position(x: float | None, y: float | None, at: datetime | None) -> Position | None:
    """The stored position, or None while the character has never been placed."""
    if x is None or y is None or at is None:
        return None
    return Position(x=x, y=y, updated_at=at)


def _snapshot(value: CharacterRead) -> dict[str, Any]:
    """What the audit log records of a character: every field but its position."""
    return value.model_dump(mode="json", exclude={"position"})


def _after_write(
    uow: UnitOfWork, value: CharacterRead, event: str, changes: Mapping[str, Any]
) -> CharacterRead:
    """Queue the cache write-through and the event of a stored change; returns `value`."""
    cache.write_through(
        uow,
        Domain.CHARACTER,
        value.id,
        value.model_dump(mode="json"),
        version=value.version,
        tags=tags_of(value.id),
    )
    uow.publish(DomainEvent(event, ENTITY, value.id, uow.clock.now(), {"changed": sorted(changes)}))
    return value


async def create_character(
    uow: UnitOfWork, *, actor: Actor, data: CharacterCreate
) -> CharacterRead:
    """Create a character owned by `data.owner_id` (default: the calling user)."""
    owner_id = data.owner_id
    if owner_id is None and isinstance(actor, UserActor):
        owner_id = actor.user_id
    async with uow.acting_as(CREATION):
        authorize(actor, CREATION, Resource.CHARACTER, Action.CREATE, owner_id=owner_id)
        now = uow.clock.now()
        fields = data.model_dump(exclude={"owner_id", "hp"})
        row = Character(
            **fields,
            owner_id=owner_id,
            hp=data.max_hp if data.hp is None else data.hp,
            xp=0,
            created_at=now,
            updated_at=now,
            last_active_at=now,
        )
        if not await inserted(uow.session, row):
            raise RuleViolation(f"owner {owner_id} is not an existing user", owner_id=owner_id)
        value = to_read(row)
        snapshot = _snapshot(value)
        audit.record_created(uow, actor=actor, entity=ENTITY, entity_id=row.id, values=snapshot)
        return _after_write(uow, value, "character.created", snapshot)


async def get_character(uow: UnitOfWork, *, actor: Actor, character_id: int) -> CharacterRead:
    """Return a live character; NotFound if missing or soft-deleted."""
    document = await get_character_document(uow, actor=actor, character_id=character_id)
    return CharacterRead.model_validate(document)


async def get_character_document(
    uow: UnitOfWork, *, actor: Actor, character_id: int
) -> Mapping[str, Any]:
    """Return a live character as the JSON document of its `CharacterRead` (what the cache
    holds, already validated when it was cached); NotFound if missing or soft-deleted."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.CHARACTER, Action.READ)

        async def load() -> dict[str, Any] | None:
            row = await repo.read_live(uow, character_id)
            return None if row is None else to_read(row).model_dump(mode="json")

        value = await cache.read_through(
            uow, Domain.CHARACTER, character_id, load, tags=tags_of(character_id)
        )
        if value is None:
            raise NotFound(ENTITY, character_id)
        return value


async def list_characters(
    uow: UnitOfWork,
    *,
    actor: Actor,
    filters: CharacterFilter | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> CharacterPage:
    """Return one page of live characters matching `filters`, ordered by id."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.CHARACTER, Action.READ)
        size = page_size(limit)
        rows, more = await repo.list_page(
            uow, filters or CharacterFilter(), after=decode_cursor(cursor), limit=size
        )
        return CharacterPage(
            items=[to_read(r) for r in rows],
            next_cursor=next_cursor([r.id for r in rows], more),
        )


async def update_character(
    uow: UnitOfWork,
    *,
    actor: Actor,
    character_id: int,
    changes: CharacterUpdate,
    expected_version: int | None = None,
) -> CharacterRead:
    """Apply a partial update; VersionConflict if `expected_version` is stale (or a racer wins
    every try when none was given)."""
    given = changes.model_dump(exclude_unset=True)
    for name, value in given.items():
        if value is None:
            raise RuleViolation(f"{name} cannot be null", field=name)
    async with uow.acting_as(MANAGEMENT):

        async def attempt(lock: bool) -> tuple[CharacterRead, dict[str, Any]] | None:
            row = (await repo.read_live_row(uow, character_id, lock=lock))._mapping
            authorize(
                actor, MANAGEMENT, Resource.CHARACTER, Action.UPDATE, owner_id=row["owner_id"]
            )
            if expected_version is not None and row["version"] != expected_version:
                raise VersionConflict(ENTITY, character_id, current_version=row["version"])
            hp, max_hp = given.get("hp", row["hp"]), given.get("max_hp", row["max_hp"])
            if hp > max_hp:
                raise RuleViolation("hp cannot exceed max_hp", hp=hp, max_hp=max_hp)
            now = uow.clock.now()
            values = {**given, "updated_at": now, "last_active_at": now}
            version = await store_row(uow, _TABLE, character_id, row["version"], values)
            if version is None:
                if expected_version is not None:
                    # The client's version is the condition: a racer means a conflict.
                    raise await stale(uow, Character, ENTITY, character_id)
                return None
            changed = audit.diff({k: row[k] for k in given}, given)
            return to_read({**row, **values, "version": version}), changed

        read, changed = await retry_on_conflict(uow, Character, ENTITY, character_id, attempt)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=read.id, changes=changed
        )
        return _after_write(uow, read, "character.updated", changed)


def _check_within_columns(values: Mapping[str, Any]) -> None:
    """Refuse a grant whose sums the columns cannot hold (a rule, not a driver error)."""
    for name in ("xp", "gold"):
        if values.get(name, 0) > INT32_MAX:
            raise RuleViolation(f"{name} would exceed {INT32_MAX}", field=name, value=values[name])
    if len(values.get("inventory", ())) > INVENTORY_MAX:
        raise RuleViolation(f"an inventory holds at most {INVENTORY_MAX} items", field="inventory")


async def grant_xp(
    uow: UnitOfWork, *, actor: Actor, character_id: int, amount: int
) -> CharacterRead:
    """Add `amount` XP (levelling up as earned), retrying version conflicts up to the limit."""
    if amount <= 0:
        raise RuleViolation("XP grants must be positive", amount=amount)
    return await grant_rewards(uow, actor=actor, character_id=character_id, xp=amount)


async def delete_character(uow: UnitOfWork, *, actor: Actor, character_id: int) -> None:
    """Soft-delete a character; it vanishes from reads until restored or purged."""
    async with uow.acting_as(MANAGEMENT):

        async def attempt(lock: bool) -> Character | None:
            row = await repo.get_live(uow.session, character_id, fresh=True, lock=lock)
            authorize(actor, MANAGEMENT, Resource.CHARACTER, Action.DELETE, owner_id=row.owner_id)
            stored = await update_versioned(uow, row, {"deleted_at": uow.clock.now()})
            return row if stored else None

        row = await retry_on_conflict(uow, Character, ENTITY, character_id, attempt)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=row.id,
            changes={"record": _snapshot(to_read(row)), "soft": True},
        )
        cache.evict(uow, Domain.CHARACTER, row.id, tags=tags_of(row.id), version=row.version)
        uow.publish(DomainEvent("character.deleted", ENTITY, row.id, uow.clock.now()))


async def restore_character(uow: UnitOfWork, *, actor: Actor, character_id: int) -> CharacterRead:
    """Bring back a soft-deleted character that has not been purged yet."""
    async with uow.acting_as(MANAGEMENT):

        async def attempt(_lock: bool) -> tuple[Character, datetime | None] | None:
            row = await repo.get_deleted(uow.session, character_id)
            authorize(actor, MANAGEMENT, Resource.CHARACTER, Action.UPDATE, owner_id=row.owner_id)
            deleted_at = row.deleted_at
            values = {"deleted_at": None, "updated_at": uow.clock.now()}
            return (row, deleted_at) if await update_versioned(uow, row, values) else None

        row, deleted_at = await retry_on_conflict(uow, Character, ENTITY, character_id, attempt)
        audit.record(
            uow,
            actor=actor,
            action="restore",
            entity=ENTITY,
            entity_id=row.id,
            changes={"deleted_at": {"old": deleted_at, "new": None}},
        )
        return _after_write(uow, to_read(row), "character.restored", {"deleted_at": None})


async def set_position(
    uow: UnitOfWork,
    *,
    actor: Actor,
    character_id: int,
    x: float,
    y: float,
    at: datetime | None = None,
) -> PositionResult:
    """Move a character (last-writer-wins by `at`); an older report is ignored and said so."""
    now = uow.clock.now()
    at = at or now
    if at.tzinfo is None:
        raise RuleViolation("position timestamps must carry a time zone")
    if at > now + POSITION_CLOCK_SKEW:
        raise RuleViolation(
            f"position reported for {at.isoformat()}, later than the server's clock allows",
            at=at.isoformat(),
        )
    async with uow.acting_as(MANAGEMENT):
        owner_id = await repo.owner_of_live(uow, character_id)
        authorize(actor, MANAGEMENT, Resource.CHARACTER_POSITION, Action.UPDATE, owner_id=owner_id)
        if not await repo.move_if_newer(uow, character_id, x=x, y=y, at=at):
            return PositionResult(
                applied=False,
                reason="a newer position is already stored",
                position=_position(*await repo.position_of(uow, character_id)),
            )
        audit.record(
            uow,
            actor=actor,
            action="move",
            entity=ENTITY,
            entity_id=character_id,
            changes={"x": x, "y": y, "at": at},
        )
        # A move is not a deletion: drop the cached copy (and lists holding it), leave no tombstone.
        cache.invalidate(uow, tags_of(character_id))
        uow.publish(
            DomainEvent(
                "character.moved",
                ENTITY,
                character_id,
                now,
                {"x": x, "y": y, "at": at.isoformat()},
            )
        )
        return PositionResult(applied=True, position=Position(x=x, y=y, updated_at=at))


async def live_ids(uow: UnitOfWork, character_ids: list[int]) -> set[int]:
    """Return which of `character_ids` are live characters, in one query."""
    async with uow.acting_as(MANAGEMENT):
        return await repo.live_ids(uow.session, character_ids)


async def ensure_live(uow: UnitOfWork, character_ids: list[int]) -> None:
    """Raise NotFound for the first of `character_ids` that is missing or soft-deleted."""
    found = await live_ids(uow, character_ids)
    for cid in character_ids:
        if cid not in found:
            raise NotFound(ENTITY, cid)


async def grant_rewards(
    uow: UnitOfWork,
    *,
    actor: Actor,
    character_id: int,
    xp: int = 0,
    gold: int = 0,
    items: tuple[Any, ...] | list[Any] = (),
) -> CharacterRead:
    """Add XP (levelling up), gold and inventory items at once, retrying version conflicts."""
    if xp < 0 or gold < 0:
        raise RuleViolation("rewards cannot be negative", xp=xp, gold=gold)
    if not (xp or gold or items):
        raise RuleViolation("a reward grant must give XP, gold or items")
    async with uow.acting_as(MANAGEMENT):

        async def attempt(lock: bool) -> tuple[Character, dict[str, Any]] | None:
            row = await repo.get_live(uow.session, character_id, fresh=True, lock=lock)
            authorize(actor, MANAGEMENT, Resource.CHARACTER, Action.UPDATE, owner_id=row.owner_id)
            before = {
                "xp": row.xp,
                "level": row.level,
                "gold": row.gold,
                "inventory": row.inventory,
            }
            now = uow.clock.now()
            values: dict[str, Any] = {
                "xp": row.xp + xp,
                "level": max(row.level, level_for_xp(row.xp + xp)),
                "gold": row.gold + gold,
                "updated_at": now,
                "last_active_at": now,
            }
            if items:
                values["inventory"] = [*row.inventory, *items]
            _check_within_columns(values)
            if not await update_versioned(uow, row, values):
                return None
            after = {"xp": row.xp, "level": row.level, "gold": row.gold, "inventory": row.inventory}
            return row, audit.diff(before, after)

        row, changed = await retry_on_conflict(uow, Character, ENTITY, character_id, attempt)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=row.id, changes=changed
        )
        return _after_write(uow, to_read(row), "character.updated", changed)
