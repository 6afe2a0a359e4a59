"""Least-privilege PostgreSQL roles (spec 6.2): one NOLOGIN role per module, GRANTs from the matrix.

Units of work `SET LOCAL ROLE` to their module's role, so the database itself refuses what the
permission matrix does not allow. The audit log is INSERT-only for every module role, and none
may touch the chain head.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from visualdm.db.engine import role_name
from visualdm.db.registry import metadata
from visualdm.ownership import MODULE_GRANTS, RESOURCE_TABLES, Action, Module

_PRIVILEGE = {
    Action.READ: "SELECT",
    Action.CREATE: "INSERT",
    Action.UPDATE: "UPDATE",
    Action.DELETE: "DELETE",
}


def grant_statements(prefix: str) -> list[str]:
    """SQL that (re)creates every module role with exactly the matrix's grants; idempotent."""
    tables = sorted(metadata().tables)
    statements: list[str] = []
    for module in Module:
        role = role_name(prefix, module)
        statements.append(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f'CREATE ROLE "{role}" NOLOGIN; END IF; '
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        statements.append(f'GRANT "{role}" TO CURRENT_USER')
        statements.append(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        statements.append(f'REVOKE ALL ON {", ".join(tables)} FROM "{role}"')
        for resource, actions in sorted(MODULE_GRANTS[module].items()):
            place = RESOURCE_TABLES[resource]
            for table in place.tables:
                for action in sorted(actions):
                    privilege = _PRIVILEGE[action]
                    if place.columns and action is not Action.DELETE:
                        cols = ", ".join(place.columns)
                        statements.append(f'GRANT {privilege} ({cols}) ON {table} TO "{role}"')
                    else:
                        statements.append(f'GRANT {privilege} ON {table} TO "{role}"')
        # Every module appends (unsealed) entries to the audit log, and nothing more: sealing
        # them into the chain is the sealer's, which no module role can impersonate.
        statements.append(f'GRANT INSERT ON audit_log TO "{role}"')
        # Every module's transaction writes its domain events to the outbox (insert only).
        statements.append(f'GRANT INSERT ON outbox_events TO "{role}"')
        statements.append(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        if module is Module.AUTHENTICATION:
            # Anonymization (spec 2.5) erases the personal fields of audit entries about a user.
            # The chain covers only their digest, so the log stays verifiable; the role may find
            # the entries by their non-personal key columns and null `personal`, nothing else.
            statements.append(
                f"GRANT SELECT (seq, actor_user_id, entity, entity_id, personal), "
                f'UPDATE (personal) ON audit_log TO "{role}"'
            )
    return statements


async def provision_roles(engine: AsyncEngine, prefix: str) -> list[str]:
    """Create or refresh the module roles and their grants; returns the role names."""
    async with engine.begin() as conn:
        # Role creation is cluster-wide: serialize concurrent provisioners (tests, deploys).
        await conn.execute(text("SELECT pg_advisory_xact_lock(7425001)"))
        for statement in grant_statements(prefix):
            await conn.execute(text(statement))
    return [role_name(prefix, m) for m in Module]
