"""authorize(): the module matrix (spec 6.1) and the user role grants, read from the registry."""

from __future__ import annotations

from visualdm.access.principals import Actor, UserActor
from visualdm.errors import PermissionDenied
from visualdm.ownership import MODULE_GRANTS, ROLE_GRANTS, Action, Module, Resource, Scope


def module_may(module: Module, resource: Resource, action: Action) -> bool:
    """Whether spec 6.1 (as split by section 2's responsibilities) lets `module` do `action`."""
    return action in MODULE_GRANTS[module].get(resource, frozenset())


def user_may(
    actor: UserActor, resource: Resource, action: Action, *, owner_id: int | None = None
) -> bool:
    """Whether any of the user's roles grants `action` on `resource` (OWN grants need ownership)."""
    for role in actor.roles:
        for grant in ROLE_GRANTS[role].get(resource, ()):
            if action not in grant.actions:
                continue
            if grant.scope is Scope.ANY or (owner_id is not None and owner_id == actor.user_id):
                return True
    return False


def authorize(
    actor: Actor,
    module: Module,
    resource: Resource,
    action: Action,
    *,
    owner_id: int | None = None,
) -> None:
    """Check both the module matrix and, for users, the role grants; raises PermissionDenied."""
    if not module_may(module, resource, action):
        raise PermissionDenied(
            f"the {module.spec_name} may not {action} {resource}",
            module=module.value,
            resource=resource.value,
            action=action.value,
        )
    if isinstance(actor, UserActor) and not user_may(actor, resource, action, owner_id=owner_id):
        raise PermissionDenied(
            f"user {actor.user_id} may not {action} this {resource}",
            resource=resource.value,
            action=action.value,
        )
