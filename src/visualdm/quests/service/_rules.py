"""What an assignment asks of a character, and what completing it grants, via their owners."""

from __future__ import annotations

from visualdm.access.principals import Actor
from visualdm.characters import service as characters
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import RuleViolation
from visualdm.factions import service as factions
from visualdm.quests.models import Quest
from visualdm.quests.schemas import Requirements, Rewards
from visualdm.quests.service._common import QUEST_SYSTEM


async def check_requirements(uow: UnitOfWork, quest: Quest, character_id: int) -> None:
    """Raise RuleViolation naming the first requirement of `quest` the character does not meet."""
    needs = Requirements.model_validate(quest.requirements)
    if needs.min_level is not None:
        character = await characters.get_character(
            uow, actor=QUEST_SYSTEM, character_id=character_id
        )
        if character.level < needs.min_level:
            raise RuleViolation(
                f"quest {quest.id} requires level {needs.min_level}; character {character_id} "
                f"is level {character.level}",
                requirement="min_level",
                required=needs.min_level,
                actual=character.level,
            )
    held = await factions.factions_joined(
        uow, character_id=character_id, faction_ids=needs.factions
    )
    for faction_id in needs.factions:
        if faction_id not in held:
            raise RuleViolation(
                f"quest {quest.id} requires membership of faction {faction_id}; character "
                f"{character_id} is not a member (or the faction no longer exists)",
                requirement="factions",
                faction_id=faction_id,
            )


async def grant_rewards(uow: UnitOfWork, actor: Actor, character_id: int, rewards: Rewards) -> None:
    """Grant xp, gold and items through the Character System, standing through Factions."""
    if rewards.xp or rewards.gold or rewards.items:
        await characters.grant_rewards(
            uow,
            actor=actor,
            character_id=character_id,
            xp=rewards.xp,
            gold=rewards.gold,
            items=rewards.items,
        )
    for standing in rewards.faction_standing:
        await factions.adjust_standing(
            uow,
            actor=actor,
            faction_id=standing.faction_id,
            character_id=character_id,
            delta=standing.delta,
        )
