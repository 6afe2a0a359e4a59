"""Faction relations: how two live factions stand towards each other (symmetric, scored)."""

from __future__ import annotations

from typing import Any

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.db.inserts import inserted
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict, NotFound, RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.factions import repository as repo
from visualdm.factions.models import FactionRelation
from visualdm.factions.schemas import SCORE_MAX, SCORE_MIN, RelationRead, Stance
from visualdm.factions.service._common import MANAGEMENT, RELATION
from visualdm.ownership import Action, Resource


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
        if not await inserted(uow.session, row):
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
