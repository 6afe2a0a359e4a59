"""Every cell of the module permission matrix (spec 6.1 split by section 2), allowed and denied.

The expected table is written out here by hand from the spec, independently of the registry's
derivation, so a change to either shows up as a failing cell.
"""

from __future__ import annotations

import itertools

import pytest

from visualdm.access.policy import authorize, module_may, user_may
from visualdm.access.principals import SystemActor, UserActor
from visualdm.errors import PermissionDenied
from visualdm.ownership import Action, Module, Resource, Role

M, R = Module, Resource
# (module, resource) -> actions as letters: c=create r=read u=update d=delete.
EXPECTED: dict[tuple[Module, Resource], str] = {
    (M.CHARACTER_CREATION, R.CHARACTER): "cr",
    (M.CHARACTER_CREATION, R.CHARACTER_POSITION): "r",
    (M.CHARACTER_CREATION, R.FACTION_MEMBERSHIP): "r",
    (M.CHARACTER_CREATION, R.QUEST_ASSIGNMENT): "r",
    (M.CHARACTER_MANAGEMENT, R.CHARACTER): "rud",
    (M.CHARACTER_MANAGEMENT, R.CHARACTER_POSITION): "crud",
    (M.CHARACTER_MANAGEMENT, R.FACTION_MEMBERSHIP): "r",
    (M.CHARACTER_MANAGEMENT, R.QUEST_ASSIGNMENT): "r",
    (M.FACTION_MANAGEMENT, R.FACTION): "rud",
    (M.FACTION_MANAGEMENT, R.FACTION_RELATION): "crud",
    (M.FACTION_MANAGEMENT, R.FACTION_MEMBERSHIP): "crud",
    (M.FACTION_MANAGEMENT, R.CHARACTER): "r",
    (M.WORLD_GENERATION, R.FACTION): "cr",
    (M.WORLD_GENERATION, R.SPATIAL_INDEX): "cr",
    (M.QUEST_GENERATION, R.QUEST): "cr",
    (M.QUEST_GENERATION, R.QUEST_ASSIGNMENT): "r",
    (M.QUEST_GENERATION, R.CHARACTER): "r",
    (M.QUEST_MANAGEMENT, R.QUEST): "rud",
    (M.QUEST_MANAGEMENT, R.QUEST_ASSIGNMENT): "crud",
    (M.QUEST_MANAGEMENT, R.CHARACTER): "r",
    (M.SPATIAL_MANAGEMENT, R.SPATIAL_INDEX): "rud",
    (M.SPATIAL_MANAGEMENT, R.CHARACTER_POSITION): "r",
    (M.AUTHENTICATION, R.AUTH_DATA): "crud",
    (M.CACHE_MANAGEMENT, R.CACHED_DATA): "rud",
}
LETTER = {Action.CREATE: "c", Action.READ: "r", Action.UPDATE: "u", Action.DELETE: "d"}
CELLS = list(itertools.product(Module, Resource, Action))


@pytest.mark.parametrize(("module", "resource", "action"), CELLS)
def test_module_matrix_cell(module: Module, resource: Resource, action: Action) -> None:
    allowed = LETTER[action] in EXPECTED.get((module, resource), "")
    assert module_may(module, resource, action) is allowed
    if allowed:
        authorize(SystemActor("t"), module, resource, action)
    else:
        with pytest.raises(PermissionDenied):
            authorize(SystemActor("t"), module, resource, action)


def test_the_character_system_may_not_write_factions_or_memberships() -> None:
    for module in (M.CHARACTER_CREATION, M.CHARACTER_MANAGEMENT):
        for action in (Action.CREATE, Action.UPDATE, Action.DELETE):
            assert not module_may(module, R.FACTION, action)
            assert not module_may(module, R.FACTION_MEMBERSHIP, action)


PLAYER = UserActor(1, frozenset({Role.PLAYER}))
GM = UserActor(2, frozenset({Role.GM}))
ADMIN = UserActor(3, frozenset({Role.ADMIN}))


@pytest.mark.parametrize("action", [Action.CREATE, Action.UPDATE, Action.DELETE])
def test_players_write_only_their_own_characters(action: Action) -> None:
    assert user_may(PLAYER, R.CHARACTER, action, owner_id=1)
    assert not user_may(PLAYER, R.CHARACTER, action, owner_id=2)
    assert not user_may(PLAYER, R.CHARACTER, action, owner_id=None)
    assert user_may(GM, R.CHARACTER, action, owner_id=99)
    assert not user_may(ADMIN, R.CHARACTER, action, owner_id=3)


@pytest.mark.parametrize(
    "resource",
    [
        R.FACTION,
        R.FACTION_RELATION,
        R.FACTION_MEMBERSHIP,
        R.QUEST,
        R.QUEST_ASSIGNMENT,
        R.SPATIAL_INDEX,
    ],
)
def test_only_game_masters_write_the_world_but_everyone_reads_it(resource: Resource) -> None:
    for actor in (PLAYER, GM, ADMIN):
        assert user_may(actor, resource, Action.READ)
    for action in (Action.CREATE, Action.UPDATE, Action.DELETE):
        assert user_may(GM, resource, action)
        assert not user_may(PLAYER, resource, action, owner_id=1)
        assert not user_may(ADMIN, resource, action)


def test_both_checks_apply_to_a_user_request() -> None:
    # A GM may create factions, but not through a module that may not create them.
    authorize(GM, M.WORLD_GENERATION, R.FACTION, Action.CREATE)
    with pytest.raises(PermissionDenied):
        authorize(GM, M.FACTION_MANAGEMENT, R.FACTION, Action.CREATE)
    # The module may, but the player may not.
    with pytest.raises(PermissionDenied):
        authorize(PLAYER, M.WORLD_GENERATION, R.FACTION, Action.CREATE)
