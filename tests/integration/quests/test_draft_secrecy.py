"""A draft quest is invisible to players even when they try to change it (no 403 oracle)."""

from __future__ import annotations

import pytest

from tests.conftest import UowFactory
from tests.integration.quests.conftest import Cast, make_quest
from visualdm.errors import NotFound, PermissionDenied
from visualdm.quests import service
from visualdm.quests.schemas import QuestUpdate


async def test_players_get_not_found_for_drafts_and_forbidden_for_visible_quests(
    uow: UowFactory, cast: Cast
) -> None:
    draft = await make_quest(uow, cast.gm, "Secret plot", status="draft")
    public = await make_quest(uow, cast.gm, "Rats", status="available")
    for attempt in (
        lambda u: service.update_quest(
            u, actor=cast.alice, quest_id=draft, changes=QuestUpdate(title="Leaked")
        ),
        lambda u: service.delete_quest(u, actor=cast.alice, quest_id=draft),
    ):
        with pytest.raises(NotFound):
            async with uow() as u:
                await attempt(u)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.alice, quest_id=public, changes=QuestUpdate(title="Mine")
            )
    async with uow() as u:
        kept = await service.get_quest(u, actor=cast.gm, quest_id=draft)
    assert kept.title == "Secret plot"
