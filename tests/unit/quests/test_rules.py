"""Quest rules that need no database: the status lifecycle, draft visibility, schema validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from visualdm.access.principals import SystemActor, UserActor
from visualdm.ownership import Role
from visualdm.quests.models import QUEST_STATUSES
from visualdm.quests.schemas import QuestCreate, QuestUpdate, Requirements, Rewards
from visualdm.quests.service import TRANSITIONS, sees_drafts


def test_every_status_has_a_lifecycle_entry_and_none_leads_back_to_draft() -> None:
    assert set(TRANSITIONS) == set(QUEST_STATUSES)
    assert all(set(targets) <= set(QUEST_STATUSES) for targets in TRANSITIONS.values())
    assert not any("draft" in targets for targets in TRANSITIONS.values())
    assert TRANSITIONS["completed"] == TRANSITIONS["failed"] == frozenset()


def test_every_status_is_reachable_from_draft() -> None:
    reached, frontier = {"draft"}, ["draft"]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()] - reached:
            reached.add(nxt)
            frontier.append(nxt)
    assert reached == set(QUEST_STATUSES)


@pytest.mark.parametrize(
    ("roles", "sees"),
    [
        ({Role.PLAYER}, False),
        ({Role.ADMIN}, False),
        ({Role.GM}, True),
        ({Role.PLAYER, Role.GM}, True),
    ],
)
def test_only_users_who_may_edit_quests_see_drafts(roles: set[Role], sees: bool) -> None:
    assert sees_drafts(UserActor(1, frozenset(roles))) is sees


def test_system_callers_see_drafts() -> None:
    assert sees_drafts(SystemActor("job"))


def test_faction_ids_may_not_repeat() -> None:
    with pytest.raises(ValidationError, match="listed twice"):
        Requirements(factions=[1, 1])
    with pytest.raises(ValidationError, match="appears twice"):
        Rewards.model_validate({"faction_standing": [{"faction_id": 2, "delta": 1}] * 2})


def test_standing_rewards_stay_within_the_standing_scale() -> None:
    Rewards.model_validate({"faction_standing": [{"faction_id": 2, "delta": -200}]})
    with pytest.raises(ValidationError):
        Rewards.model_validate({"faction_standing": [{"faction_id": 2, "delta": 201}]})


def test_objectives_need_unique_ids_and_positive_targets() -> None:
    with pytest.raises(ValidationError, match="unique"):
        QuestUpdate.model_validate({"objectives": [{"id": "a"}, {"id": "a"}]})
    with pytest.raises(ValidationError):
        QuestCreate.model_validate({"title": "T", "objectives": [{"id": "a", "target": 0}]})
    made = QuestCreate.model_validate({"title": " T ", "objectives": [{"id": "a"}]})
    assert (made.title, made.objectives[0].target, made.status) == ("T", 1, "draft")


def test_an_update_remembers_which_fields_were_given() -> None:
    lifted = QuestUpdate.model_validate({"max_assignees": None})
    assert lifted.model_dump(exclude_unset=True) == {"max_assignees": None}
    assert QuestUpdate().model_dump(exclude_unset=True) == {}
