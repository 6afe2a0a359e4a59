"""Quest services on SQLite and PostgreSQL: CRUD, drafts, lifecycle, soft delete, locking, audit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.conftest import UowFactory
from tests.integration.quests.conftest import Cast, audit_of, make_quest
from visualdm.errors import Conflict, NotFound, PermissionDenied, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent, InProcessBus
from visualdm.quests import service
from visualdm.quests.schemas import QuestCreate, QuestFilter, QuestUpdate

OBJECTIVES = [{"id": "wolves", "description": "Slay wolves", "target": 5}]


async def test_a_gm_creates_a_quest_that_everyone_can_read(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(
        uow, cast.gm, objectives=OBJECTIVES, rewards={"xp": 300, "items": ["pelt"]}
    )
    async with uow() as u:
        got = await service.get_quest(u, actor=cast.alice, quest_id=qid)
    assert (got.title, got.status, got.version) == ("Wolves", "available", 1)
    assert got.objectives[0].target == 5
    assert (got.rewards.xp, got.rewards.items) == (300, ["pelt"])
    entries = await audit_of(uow, "quest", qid)
    assert [e.action for e in entries] == ["create"]
    assert entries[0].module == "quest_generation"
    assert entries[0].changes["title"] == {"old": None, "new": "Wolves"}


async def test_players_cannot_create_change_or_delete_quests(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(uow, cast.gm)
    with pytest.raises(PermissionDenied):
        await make_quest(uow, cast.alice)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.alice, quest_id=qid, changes=QuestUpdate(title="Mine")
            )
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.delete_quest(u, actor=cast.alice, quest_id=qid)
    async with uow() as u:
        assert (await service.get_quest(u, actor=cast.alice, quest_id=qid)).title == "Wolves"


async def test_drafts_are_invisible_to_players_but_not_to_gms(uow: UowFactory, cast: Cast) -> None:
    draft = await make_quest(uow, cast.gm, "Secret", status="draft")
    public = await make_quest(uow, cast.gm, "Public")
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.get_quest(u, actor=cast.alice, quest_id=draft)
        with pytest.raises(NotFound):
            await service.assignments_of_quest(u, actor=cast.alice, quest_id=draft)
        seen_by_player = await service.list_quests(u, actor=cast.alice)
        drafts_for_player = await service.list_quests(
            u, actor=cast.alice, filters=QuestFilter(status="draft")
        )
        seen_by_gm = await service.list_quests(u, actor=cast.gm)
        assert (await service.get_quest(u, actor=cast.gm, quest_id=draft)).status == "draft"
    assert [q.id for q in seen_by_player.items] == [public]
    assert drafts_for_player.items == []
    assert [q.id for q in seen_by_gm.items] == [draft, public]


def test_invalid_quests_are_rejected_before_reaching_the_database() -> None:
    with pytest.raises(ValidationError):
        QuestCreate(title="  ")
    with pytest.raises(ValidationError):
        QuestCreate.model_validate({"title": "X", "status": "unknown"})
    with pytest.raises(ValidationError):
        QuestCreate.model_validate({"title": "X", "objectives": OBJECTIVES * 2})
    with pytest.raises(ValidationError):
        QuestCreate.model_validate({"title": "X", "rewards": {"gold": -1}})
    with pytest.raises(ValidationError):
        QuestCreate.model_validate({"title": "X", "max_assignees": 0})
    with pytest.raises(ValidationError):
        QuestUpdate.model_validate({"surprise": 1})


async def test_update_changes_only_given_fields_and_audits_old_and_new(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, description="Old", max_assignees=2)
    async with uow() as u:
        got = await service.update_quest(
            u,
            actor=cast.gm,
            quest_id=qid,
            changes=QuestUpdate(title="Dire wolves", max_assignees=None),
        )
    assert (got.title, got.description, got.max_assignees, got.version) == (
        "Dire wolves",
        "Old",
        None,
        2,
    )
    last = (await audit_of(uow, "quest", qid))[-1]
    assert last.action == "update"
    assert last.module == "quest_management"
    assert last.changes == {
        "title": {"old": "Wolves", "new": "Dire wolves"},
        "max_assignees": {"old": 2, "new": None},
    }
    with pytest.raises(RuleViolation, match="title cannot be null"):
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.gm, quest_id=qid, changes=QuestUpdate.model_validate({"title": None})
            )


async def test_status_follows_the_lifecycle_and_completion_is_stamped(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, status="draft")

    async def move(status: str) -> str:
        async with uow() as u:
            changes = QuestUpdate.model_validate({"status": status})
            return (
                await service.update_quest(u, actor=cast.gm, quest_id=qid, changes=changes)
            ).status

    with pytest.raises(Conflict, match="cannot go from draft to active"):
        await move("active")
    assert await move("available") == "available"
    with pytest.raises(Conflict, match="cannot go from available to draft"):
        await move("draft")
    assert await move("active") == "active"
    assert await move("completed") == "completed"
    with pytest.raises(Conflict, match="it is final"):
        await move("failed")
    async with uow() as u:
        got = await service.get_quest(u, actor=cast.gm, quest_id=qid)
    assert got.completed_at is not None
    statuses = [e.changes.get("status") for e in await audit_of(uow, "quest", qid)][1:]
    assert statuses == [
        {"old": "draft", "new": "available"},
        {"old": "available", "new": "active"},
        {"old": "active", "new": "completed"},
    ]


async def test_a_stale_version_is_a_conflict_that_reports_the_current_version(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm)
    async with uow() as u:
        await service.update_quest(
            u, actor=cast.gm, quest_id=qid, changes=QuestUpdate(title="B"), expected_version=1
        )
    with pytest.raises(VersionConflict) as caught:
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.gm, quest_id=qid, changes=QuestUpdate(title="C"), expected_version=1
            )
    assert caught.value.current_version == 2
    async with uow() as u:
        assert (await service.get_quest(u, actor=cast.gm, quest_id=qid)).title == "B"
    assert len(await audit_of(uow, "quest", qid)) == 2


async def test_soft_deleted_quests_vanish_and_can_be_restored(uow: UowFactory, cast: Cast) -> None:
    keep = await make_quest(uow, cast.gm, "Keep")
    gone = await make_quest(uow, cast.gm, "Gone")
    async with uow() as u:
        await service.delete_quest(u, actor=cast.gm, quest_id=gone)
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.get_quest(u, actor=cast.gm, quest_id=gone)
        assert [q.id for q in (await service.list_quests(u, actor=cast.gm)).items] == [keep]
        with pytest.raises(NotFound):
            await service.update_quest(
                u, actor=cast.gm, quest_id=gone, changes=QuestUpdate(title="x")
            )
        with pytest.raises(NotFound):
            await service.delete_quest(u, actor=cast.gm, quest_id=gone)
    delete_entry = (await audit_of(uow, "quest", gone))[-1]
    assert delete_entry.action == "delete"
    assert delete_entry.changes["record"]["title"] == "Gone"
    async with uow() as u:
        restored = await service.restore_quest(u, actor=cast.gm, quest_id=gone)
    assert restored.title == "Gone"
    assert (await audit_of(uow, "quest", gone))[-1].action == "restore"
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.restore_quest(u, actor=cast.gm, quest_id=keep)
        with pytest.raises(NotFound):
            await service.get_quest(u, actor=cast.gm, quest_id=9999)


async def test_list_filters_and_cursor_pagination_visit_every_match_once(
    uow: UowFactory, cast: Cast
) -> None:
    ids = [await make_quest(uow, cast.gm, f"Hunt {i}") for i in range(7)]
    await make_quest(uow, cast.gm, "Escort", status="active")
    seen: list[int] = []
    cursor = None
    async with uow() as u:
        while True:
            page = await service.list_quests(
                u,
                actor=cast.alice,
                filters=QuestFilter(status="available"),
                cursor=cursor,
                limit=3,
            )
            seen += [q.id for q in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ids
        hunts = await service.list_quests(
            u, actor=cast.gm, filters=QuestFilter(title_contains="UNT 1")
        )
        assert [q.title for q in hunts.items] == ["Hunt 1"]
        literal = await service.list_quests(
            u, actor=cast.gm, filters=QuestFilter(title_contains="%")
        )
        assert literal.items == []
        with pytest.raises(RuleViolation):
            await service.list_quests(u, actor=cast.gm, cursor="not-a-cursor")
        with pytest.raises(RuleViolation):
            await service.list_quests(u, actor=cast.gm, limit=0)


async def test_writes_publish_events_only_after_commit(
    uow: UowFactory, cast: Cast, bus: InProcessBus
) -> None:
    seen: list[DomainEvent] = []

    async def collect(event: DomainEvent) -> None:
        seen.append(event)

    bus.subscribe("quest.", collect)
    qid = await make_quest(uow, cast.gm)

    async def fail_after_update() -> None:
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.gm, quest_id=qid, changes=QuestUpdate(title="Z")
            )
            raise RuntimeError("the request failed after the service call")

    with pytest.raises(RuntimeError):
        await fail_after_update()
    assert [(e.name, e.entity_id) for e in seen] == [("quest.created", qid)]
