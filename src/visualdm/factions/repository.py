"""Queries on factions, their relations and memberships; soft-deleted factions are invisible."""

from __future__ import annotations

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.db.idset import IdSet
from visualdm.db.text import ilike_contains
from visualdm.errors import NotFound
from visualdm.factions.models import CharacterFaction, Faction, FactionRelation
from visualdm.factions.schemas import FactionFilter

TREE_LOCK_KEY = 0x76646D_74726565
"""PostgreSQL advisory lock serializing re-parentings, so two cannot together close a cycle."""


async def get(session: AsyncSession, faction_id: int, *, fresh: bool = False) -> Faction | None:
    """Return the live faction, or None if missing or soft-deleted."""
    stmt = select(Faction).where(Faction.id == faction_id, Faction.deleted_at.is_(None))
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def get_live(session: AsyncSession, faction_id: int, *, fresh: bool = False) -> Faction:
    """Return the live faction; NotFound if missing or soft-deleted."""
    row = await get(session, faction_id, fresh=fresh)
    if row is None:
        raise NotFound("faction", faction_id)
    return row


async def get_deleted(session: AsyncSession, faction_id: int) -> Faction:
    """Return a soft-deleted faction (for restore); NotFound otherwise."""
    row = await session.scalar(
        select(Faction)
        .where(Faction.id == faction_id, Faction.deleted_at.is_not(None))
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("faction", faction_id, f"no deleted faction {faction_id}")
    return row


def list_query(filters: FactionFilter, *, after: int | None, limit: int) -> Select[Faction]:
    """Build the keyset-paginated list query for `filters`."""
    stmt = select(Faction).where(Faction.deleted_at.is_(None))
    if filters.parent_id is not None:
        stmt = stmt.where(Faction.parent_id == filters.parent_id)
    if filters.name_contains:
        stmt = stmt.where(ilike_contains(Faction.name, filters.name_contains))
    if after is not None:
        stmt = stmt.where(Faction.id > after)
    return stmt.order_by(Faction.id).limit(limit + 1)


async def list_page(
    session: AsyncSession, filters: FactionFilter, *, after: int | None, limit: int
) -> tuple[list[Faction], bool]:
    """Return up to `limit` factions after `after`, and whether more follow."""
    rows = list((await session.scalars(list_query(filters, after=after, limit=limit))).all())
    return rows[:limit], len(rows) > limit


async def lock_tree(session: AsyncSession) -> None:
    """Serialize hierarchy changes for the rest of the transaction (SQLite already does)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TREE_LOCK_KEY})


async def ancestor_ids(session: AsyncSession, faction_id: int) -> list[int]:
    """Return the parent chain above `faction_id`, nearest first, soft-deleted rows included.

    Reads committed column values (not the identity map), and stops if it meets a row twice.
    """
    chain: list[int] = []
    seen = {faction_id}
    current: int | None = faction_id
    while current is not None:
        current = await session.scalar(select(Faction.parent_id).where(Faction.id == current))
        if current is None or current in seen:
            break
        seen.add(current)
        chain.append(current)
    return chain


async def live_by_ids(session: AsyncSession, ids: list[int]) -> dict[int, Faction]:
    """Return the live factions among `ids`, by id."""
    if not ids:
        return {}
    rows = await session.scalars(
        select(Faction).where(Faction.id.in_(ids), Faction.deleted_at.is_(None))
    )
    return {r.id: r for r in rows.all()}


async def children_of(session: AsyncSession, faction_id: int) -> list[Faction]:
    """Return the live direct children of `faction_id`, by id."""
    rows = await session.scalars(
        select(Faction)
        .where(Faction.parent_id == faction_id, Faction.deleted_at.is_(None))
        .order_by(Faction.id)
    )
    return list(rows.all())


async def relation(
    session: AsyncSession, a: int, b: int, *, for_update: bool = False
) -> FactionRelation | None:
    """Return the relation row of the ordered pair (a < b), locking it if asked."""
    stmt = select(FactionRelation).where(
        FactionRelation.faction_a_id == a, FactionRelation.faction_b_id == b
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def relations_of(session: AsyncSession, faction_id: int) -> list[FactionRelation]:
    """Return the relations of `faction_id` with live factions, ordered by the other's id."""
    other = select(Faction.id).where(Faction.deleted_at.is_(None))
    as_a = select(FactionRelation).where(
        FactionRelation.faction_a_id == faction_id, FactionRelation.faction_b_id.in_(other)
    )
    as_b = select(FactionRelation).where(
        FactionRelation.faction_b_id == faction_id, FactionRelation.faction_a_id.in_(other)
    )
    rows = [*(await session.scalars(as_a)).all(), *(await session.scalars(as_b)).all()]
    return sorted(
        rows, key=lambda r: r.faction_b_id if r.faction_a_id == faction_id else r.faction_a_id
    )


async def membership(
    session: AsyncSession, faction_id: int, character_id: int, *, for_update: bool = False
) -> CharacterFaction | None:
    """Return the membership of `character_id` in `faction_id`, locking it if asked."""
    stmt = select(CharacterFaction).where(
        CharacterFaction.faction_id == faction_id, CharacterFaction.character_id == character_id
    )
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def members_page(
    session: AsyncSession, faction_id: int, *, after: int | None, limit: int
) -> list[CharacterFaction]:
    """Return up to `limit` memberships of `faction_id` after row id `after`, in join order."""
    stmt = select(CharacterFaction).where(CharacterFaction.faction_id == faction_id)
    if after is not None:
        stmt = stmt.where(CharacterFaction.id > after)
    return list((await session.scalars(stmt.order_by(CharacterFaction.id).limit(limit))).all())


async def live_factions_joined(
    session: AsyncSession, character_id: int, factions: IdSet
) -> set[int]:
    """Return which of `factions` are live and have `character_id` as a member."""
    rows = await session.scalars(
        select(CharacterFaction.faction_id)
        .join(Faction, Faction.id == CharacterFaction.faction_id)
        .where(
            CharacterFaction.character_id == character_id,
            factions.match(CharacterFaction.faction_id),
            Faction.deleted_at.is_(None),
        )
    )
    return set(rows.all())


async def memberships_of(session: AsyncSession, characters: IdSet) -> list[CharacterFaction]:
    """Return the memberships of `characters` in live factions, by character, then faction."""
    rows = await session.scalars(
        select(CharacterFaction)
        .join(Faction, Faction.id == CharacterFaction.faction_id)
        .where(characters.match(CharacterFaction.character_id), Faction.deleted_at.is_(None))
        .order_by(CharacterFaction.character_id, CharacterFaction.faction_id)
    )
    return list(rows.all())


async def member_count(session: AsyncSession, faction_id: int) -> int:
    """Return how many memberships `faction_id` has."""
    count = await session.scalar(
        select(func.count()).where(CharacterFaction.faction_id == faction_id)
    )
    return int(count or 0)
