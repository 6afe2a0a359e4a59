"""A small, believable demo world built through the domain services (so it is audited too)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from pydantic import SecretStr
from sqlalchemy import func, select

from visualdm.access.principals import SystemActor, UserActor
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.characters.schemas import CharacterCreate
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate
from visualdm.ownership import Role
from visualdm.quests import service as quests
from visualdm.quests.schemas import Objective, QuestCreate, QuestUpdate, Requirements, Rewards
from visualdm.users import service as users
from visualdm.users.schemas import UserCreate

SEEDER = SystemActor("demo")

PLAYERS = ("ilsa", "marek", "tamsin", "oduya")
HEROES = [
    ("Brannoc Ashvale", "human", "soldier", "fighter"),
    ("Seren Vale", "elf", "sage", "wizard"),
    ("Pip Underbough", "halfling", "urchin", "rogue"),
    ("Thora Ironmane", "dwarf", "acolyte", "cleric"),
    ("Kestrel", "half-elf", "outlander", "ranger"),
    ("Maelis Dawnward", "human", "noble", "paladin"),
    ("Grik", "goblin", "criminal", "rogue"),
    ("Orla Fenwick", "gnome", "guild artisan", "artificer"),
]  # fmt: skip
NPCS = [
    ("Mayor Aldous Crane", "human"), ("Sister Wren", "human"), ("Vashka the Fence", "tiefling"),
    ("Old Tom Briar", "human"), ("Captain Ysolde Marr", "human"),
    ("Ferrin Quickfingers", "halfling"),
    ("Magister Oun", "elf"), ("Dagna Stonebreaker", "dwarf"), ("Hollow Jack", "human"),
    ("Lysa of the Reeds", "half-elf"), ("Brother Amsel", "human"), ("Nyx", "tiefling"),
    ("Harrow Blackwood", "human"), ("Tilda Copperkettle", "gnome"),
]  # fmt: skip


@dataclass
class SeedReport:
    """What the seeder created, and the demo accounts' generated passwords."""

    counts: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)


async def is_empty(uow: UnitOfWork) -> bool:
    """Whether the world has no characters yet (the seeder never mixes into a real campaign)."""
    count = await uow.session.scalar(select(func.count()).select_from(Character))
    return not count


async def seed(uow: UnitOfWork) -> SeedReport:
    """Create the demo world in this unit of work; Conflict if the database is not empty."""
    if not await is_empty(uow):
        raise Conflict("the database already holds a world; demo seed only fills an empty one")
    report = SeedReport()
    gm = await _account(uow, report, "gamemaster", Role.GM)
    players = [await _account(uow, report, name, Role.PLAYER) for name in PLAYERS]

    heroes = []
    for i, (name, race, background, cls) in enumerate(HEROES):
        owner = players[i % len(players)]
        made = await characters.create_character(
            uow, actor=owner, data=CharacterCreate(
                name=name, race=race, background=background, character_class=cls,
                strength=8 + (i * 3) % 9, dexterity=10 + i % 7, wisdom=9 + (i * 5) % 8,
                max_hp=8 + 2 * i, gold=10 * i,
            ),
        )  # fmt: skip
        heroes.append(made.id)
    npcs = []
    for i, (name, race) in enumerate(NPCS):
        made = await characters.create_character(
            uow, actor=gm, data=CharacterCreate(
                owner_id=gm.user_id, name=name, race=race, background="npc", level=1 + i % 6,
            ),
        )  # fmt: skip
        npcs.append(made.id)
    for i, cid in enumerate(heroes[:6]):
        await characters.set_position(uow, actor=gm, character_id=cid, x=10.0 * i, y=5.0 * i)

    crown = await factions.create_faction(
        uow, actor=gm, data=FactionCreate(name="The Crown of Eldmere", description="The realm.")
    )
    watch = await factions.create_faction(
        uow, actor=gm, data=FactionCreate(name="City Watch", parent_id=crown.id)
    )
    guild = await factions.create_faction(
        uow, actor=gm, data=FactionCreate(name="Thieves' Guild", description="Knives in the dark.")
    )
    temple = await factions.create_faction(
        uow, actor=gm, data=FactionCreate(name="Temple of the Dawn", parent_id=crown.id)
    )
    await factions.set_relation(
        uow, actor=gm, faction_id=watch.id, other_id=guild.id, stance="hostile", score=-70
    )
    await factions.set_relation(
        uow, actor=gm, faction_id=crown.id, other_id=temple.id, stance="allied", score=80
    )
    for cid in (heroes[0], heroes[5], npcs[4]):
        await factions.join_faction(uow, actor=gm, faction_id=watch.id, character_id=cid)
    for cid in (heroes[2], heroes[6], npcs[2], npcs[5]):
        await factions.join_faction(uow, actor=gm, faction_id=guild.id, character_id=cid)
    await factions.join_faction(
        uow, actor=gm, faction_id=temple.id, character_id=heroes[3], rank="acolyte"
    )

    plan = [
        ("The Missing Tax Ledger", "draft", None),
        ("Rats in the Granary", "available", None),
        ("Escort the Magister", "active", None),
        ("The Bell Tower Heist", "completed", guild.id),
        ("Ambush at Miller's Ford", "failed", None),
    ]
    quest_ids = []
    for title, final_status, reward_faction in plan:
        quest = await quests.create_quest(
            uow, actor=gm, data=QuestCreate(
                title=title, description=f"{title}: a job for brave souls.",
                objectives=[Objective(id="main", description=title, target=1)],
                requirements=Requirements(min_level=1),
                rewards=Rewards(xp=300, gold=25, faction_standing=(
                    [{"faction_id": reward_faction, "delta": 10}] if reward_faction else []
                )),
                max_assignees=4,
            ),
        )  # fmt: skip
        quest_ids.append(quest.id)
        for status in _path_to(final_status):
            await quests.update_quest(
                uow, actor=gm, quest_id=quest.id, changes=QuestUpdate(status=status)
            )
            if status == "active":
                await quests.assign_quest(
                    uow, actor=gm, quest_id=quest.id, character_id=heroes[len(quest_ids)]
                )
        if final_status == "completed":
            hero = heroes[len(quest_ids)]
            await quests.update_progress(
                uow, actor=gm, quest_id=quest.id, character_id=hero, progress={"main": 1}
            )
            await quests.complete_assignment(uow, actor=gm, quest_id=quest.id, character_id=hero)
            await quests.update_quest(
                uow, actor=gm, quest_id=quest.id, changes=QuestUpdate(status="completed")
            )
    report.counts = {
        "users": 1 + len(players),
        "characters": len(heroes) + len(npcs),
        "factions": 4,
        "quests": len(quest_ids),
    }
    return report


def _path_to(status: str) -> list[str]:
    """The status changes that take a new (draft) quest to `status`."""
    return {
        "draft": [],
        "available": ["available"],
        "active": ["available", "active"],
        "completed": ["available", "active"],
        "failed": ["available", "active", "failed"],
    }[status]


async def _account(uow: UnitOfWork, report: SeedReport, name: str, role: Role) -> UserActor:
    password = secrets.token_urlsafe(12)
    made = await users.create_user(
        uow,
        actor=SEEDER,
        data=UserCreate(username=name, password=SecretStr(password), email=f"{name}@demo.invalid"),
        roles=[role],
    )
    report.accounts[name] = password
    return UserActor(made.id, frozenset({role}), name)
