"""The ownership registry: spec/data-ownership.md sections 2, 3, 5 and 6 as typed data.

Every policy number (TTL, retention, archival age, retry limit, rate limit, permission) lives here
and only here; code reads it from this module. `visualdm ownership show` renders it back to the
spec's tables, and a test fails when docs/data-ownership.md drifts from that rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum


class Domain(StrEnum):
    """The data domains of spec section 2."""

    CHARACTER = "character"
    FACTION = "faction"
    QUEST = "quest"
    SPATIAL = "spatial"
    AUTHENTICATION = "authentication"
    CACHE = "cache"


class System(StrEnum):
    """The systems that own domains and appear as rows of the permission matrix (spec 6.1)."""

    CHARACTER = "Character System"
    FACTION = "Faction System"
    QUEST = "Quest System"
    SPATIAL = "Spatial System"
    AUTHENTICATION = "Authentication System"
    CACHE = "Cache System"


class Module(StrEnum):
    """System modules: the principals that carry out work, each belonging to one system."""

    CHARACTER_CREATION = "character_creation"
    CHARACTER_MANAGEMENT = "character_management"
    FACTION_MANAGEMENT = "faction_management"
    WORLD_GENERATION = "world_generation"
    QUEST_GENERATION = "quest_generation"
    QUEST_MANAGEMENT = "quest_management"
    SPATIAL_MANAGEMENT = "spatial_management"
    AUTHENTICATION = "authentication"
    CACHE_MANAGEMENT = "cache_management"

    @property
    def spec_name(self) -> str:
        """The module's name as the spec writes it."""
        return _MODULE_TITLES[self]


_MODULE_TITLES = {
    Module.CHARACTER_CREATION: "Character Creation System",
    Module.CHARACTER_MANAGEMENT: "Character Management System",
    Module.FACTION_MANAGEMENT: "Faction Management System",
    Module.WORLD_GENERATION: "World Generation System",
    Module.QUEST_GENERATION: "Quest Generation System",
    Module.QUEST_MANAGEMENT: "Quest Management System",
    Module.SPATIAL_MANAGEMENT: "Spatial Management System",
    Module.AUTHENTICATION: "Authentication System",
    Module.CACHE_MANAGEMENT: "Cache Management System",
}


class Resource(StrEnum):
    """What permissions are granted on; finer than domains where spec 6.1 is."""

    CHARACTER = "character"
    CHARACTER_POSITION = "character_position"
    FACTION = "faction"
    FACTION_RELATION = "faction_relation"
    FACTION_MEMBERSHIP = "faction_membership"
    QUEST = "quest"
    QUEST_ASSIGNMENT = "quest_assignment"
    SPATIAL_INDEX = "spatial_index"
    AUTH_DATA = "auth_data"
    CACHED_DATA = "cached_data"


class Action(StrEnum):
    """What may be done to a resource. WRITE in the spec means CREATE, UPDATE and DELETE."""

    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


WRITE = frozenset({Action.CREATE, Action.UPDATE, Action.DELETE})
READ = frozenset({Action.READ})
ALL = READ | WRITE


class Role(StrEnum):
    """User roles carried in the JWT."""

    PLAYER = "player"
    GM = "gm"
    ADMIN = "admin"


class Scope(StrEnum):
    """How far a role's grant reaches: every row, or only rows the user owns."""

    ANY = "any"
    OWN = "own"


class DeletionKind(StrEnum):
    """How a domain's rows are deleted."""

    SOFT_THEN_PURGE = "soft delete, then permanent deletion after retention"
    IMMEDIATE = "immediate deletion when entities are removed"
    TTL_EXPIRY = "automatic expiration based on TTL"


class ArchivalKind(StrEnum):
    """What happens to old rows."""

    NONE = "none"
    COLD_STORAGE = "archived to cold storage"
    ANONYMIZE = "anonymized"


class CacheKind(StrEnum):
    """How a domain is cached."""

    READ_THROUGH_WRITE_THROUGH = "read-through, write-through for updates"
    IN_MEMORY_SPATIAL = "in-memory cache with spatial optimization"
    TOKEN_STORE = "token-based with Redis"  # noqa: S105 (a strategy name, not a secret)
    SELF = "N/A (is itself a cache)"


@dataclass(frozen=True)
class DomainPolicy:
    """One table of spec section 2, plus its consistency window from section 5.3."""

    domain: Domain
    authoritative_source: str
    owner: System
    owner_module: Module | None
    description: str
    creation: tuple[Module, ...]
    update: tuple[Module, ...]
    deletion: DeletionKind
    retention: timedelta | None
    archival: ArchivalKind
    archive_after_inactive: timedelta | None
    archival_note: str
    cache: CacheKind
    cache_ttl: timedelta | None
    consistency: str
    consistency_window: timedelta | None
    table: str | None


DAY = timedelta(days=1)
YEAR = timedelta(days=365)

DOMAINS: dict[Domain, DomainPolicy] = {
    p.domain: p
    for p in (
        DomainPolicy(
            domain=Domain.CHARACTER,
            authoritative_source="SQL Database (`characters` table)",
            owner=System.CHARACTER,
            owner_module=Module.CHARACTER_MANAGEMENT,
            description="Core character data including attributes, race, background, and base "
            "statistics",
            creation=(Module.CHARACTER_CREATION,),
            update=(Module.CHARACTER_MANAGEMENT,),
            deletion=DeletionKind.SOFT_THEN_PURGE,
            retention=timedelta(days=30),
            archival=ArchivalKind.COLD_STORAGE,
            archive_after_inactive=YEAR,
            archival_note="Characters inactive for 1+ year are archived to cold storage",
            cache=CacheKind.READ_THROUGH_WRITE_THROUGH,
            cache_ttl=timedelta(minutes=5),
            consistency="Immediate consistency for critical fields, 5-minute eventual consistency "
            "for derived attributes",
            consistency_window=timedelta(minutes=5),
            table="characters",
        ),
        DomainPolicy(
            domain=Domain.FACTION,
            authoritative_source="SQL Database (`factions` table)",
            owner=System.FACTION,
            owner_module=Module.FACTION_MANAGEMENT,
            description="Faction metadata, relationships, and hierarchies",
            creation=(Module.WORLD_GENERATION,),
            update=(Module.FACTION_MANAGEMENT,),
            deletion=DeletionKind.SOFT_THEN_PURGE,
            retention=timedelta(days=30),
            archival=ArchivalKind.NONE,
            archive_after_inactive=None,
            archival_note="None (factions are maintained for world continuity)",
            cache=CacheKind.READ_THROUGH_WRITE_THROUGH,
            cache_ttl=timedelta(minutes=15),
            consistency="15-minute eventual consistency",
            consistency_window=timedelta(minutes=15),
            table="factions",
        ),
        DomainPolicy(
            domain=Domain.QUEST,
            authoritative_source="SQL Database (`quests` table)",
            owner=System.QUEST,
            owner_module=Module.QUEST_MANAGEMENT,
            description="Quest definitions, objectives, requirements, and rewards",
            creation=(Module.QUEST_GENERATION,),
            update=(Module.QUEST_MANAGEMENT,),
            deletion=DeletionKind.SOFT_THEN_PURGE,
            retention=timedelta(days=30),
            archival=ArchivalKind.COLD_STORAGE,
            archive_after_inactive=timedelta(days=90),
            archival_note="Completed quests archived after 90 days of inactivity",
            cache=CacheKind.READ_THROUGH_WRITE_THROUGH,
            cache_ttl=timedelta(minutes=10),
            consistency="10-minute eventual consistency",
            consistency_window=timedelta(minutes=10),
            table="quests",
        ),
        DomainPolicy(
            domain=Domain.SPATIAL,
            authoritative_source="Spatial Database (RBush-based)",
            owner=System.SPATIAL,
            owner_module=Module.SPATIAL_MANAGEMENT,
            description="Spatial indexes and location-based queries for buildings and entities",
            creation=(Module.WORLD_GENERATION,),
            update=(Module.SPATIAL_MANAGEMENT,),
            deletion=DeletionKind.IMMEDIATE,
            retention=None,
            archival=ArchivalKind.NONE,
            archive_after_inactive=None,
            archival_note="None (spatial data is regenerated as needed)",
            cache=CacheKind.IN_MEMORY_SPATIAL,
            cache_ttl=None,
            consistency="1-second eventual consistency",
            consistency_window=timedelta(seconds=1),
            table=None,
        ),
        DomainPolicy(
            domain=Domain.AUTHENTICATION,
            authoritative_source="SQL Database (`users` table)",
            owner=System.AUTHENTICATION,
            owner_module=Module.AUTHENTICATION,
            description="User authentication, permissions, and security credentials",
            creation=(Module.AUTHENTICATION,),
            update=(Module.AUTHENTICATION,),
            deletion=DeletionKind.SOFT_THEN_PURGE,
            retention=timedelta(days=90),
            archival=ArchivalKind.ANONYMIZE,
            archive_after_inactive=YEAR,
            archival_note="Anonymized after 1 year of inactivity",
            cache=CacheKind.TOKEN_STORE,
            cache_ttl=timedelta(hours=24),
            consistency="Immediate consistency",
            consistency_window=timedelta(0),
            table="users",
        ),
        DomainPolicy(
            domain=Domain.CACHE,
            authoritative_source="Redis",
            owner=System.CACHE,
            owner_module=Module.CACHE_MANAGEMENT,
            description="Temporary storage for performance optimization",
            creation=(),
            update=(Module.CACHE_MANAGEMENT,),
            deletion=DeletionKind.TTL_EXPIRY,
            retention=None,
            archival=ArchivalKind.NONE,
            archive_after_inactive=None,
            archival_note="None (ephemeral data)",
            cache=CacheKind.SELF,
            cache_ttl=None,
            consistency="Varies by TTL (1-minute to 24-hour)",
            consistency_window=timedelta(hours=24),
            table=None,
        ),
    )
}

MODULE_SYSTEM: dict[Module, System | None] = {
    Module.CHARACTER_CREATION: System.CHARACTER,
    Module.CHARACTER_MANAGEMENT: System.CHARACTER,
    Module.FACTION_MANAGEMENT: System.FACTION,
    # World Generation belongs to no system of spec 6.1: it only creates (factions, the world).
    Module.WORLD_GENERATION: None,
    Module.QUEST_GENERATION: System.QUEST,
    Module.QUEST_MANAGEMENT: System.QUEST,
    Module.SPATIAL_MANAGEMENT: System.SPATIAL,
    Module.AUTHENTICATION: System.AUTHENTICATION,
    Module.CACHE_MANAGEMENT: System.CACHE,
}


@dataclass(frozen=True)
class SystemAccess:
    """A row of spec 6.1, as the spec words it and as resources."""

    system: System
    read_text: str
    write_text: str
    read: frozenset[Resource]
    write: frozenset[Resource]


R = Resource
SYSTEM_ACCESS: dict[System, SystemAccess] = {
    a.system: a
    for a in (
        SystemAccess(
            System.CHARACTER,
            "Character, Faction (members), Quest (assignments)",
            "Character",
            frozenset(
                {R.CHARACTER, R.CHARACTER_POSITION, R.FACTION_MEMBERSHIP, R.QUEST_ASSIGNMENT}
            ),
            frozenset({R.CHARACTER, R.CHARACTER_POSITION}),
        ),
        SystemAccess(
            System.FACTION,
            "Faction, Character (members)",
            "Faction, Character-Faction relationships",
            frozenset({R.FACTION, R.FACTION_RELATION, R.FACTION_MEMBERSHIP, R.CHARACTER}),
            # Spec 2.2: the Faction System owns faction relationships as well as membership.
            frozenset({R.FACTION, R.FACTION_RELATION, R.FACTION_MEMBERSHIP}),
        ),
        SystemAccess(
            System.QUEST,
            "Quest, Character (quest assignments)",
            "Quest, Character-Quest relationships",
            frozenset({R.QUEST, R.QUEST_ASSIGNMENT, R.CHARACTER}),
            frozenset({R.QUEST, R.QUEST_ASSIGNMENT}),
        ),
        SystemAccess(
            System.SPATIAL,
            "Spatial Index, Character (position)",
            "Spatial Index",
            frozenset({R.SPATIAL_INDEX, R.CHARACTER_POSITION}),
            frozenset({R.SPATIAL_INDEX}),
        ),
        SystemAccess(
            System.AUTHENTICATION,
            "Authentication Data",
            "Authentication Data",
            frozenset({R.AUTH_DATA}),
            frozenset({R.AUTH_DATA}),
        ),
        SystemAccess(
            System.CACHE,
            "All cached data",
            "All cached data",
            frozenset({R.CACHED_DATA}),
            frozenset({R.CACHED_DATA}),
        ),
    )
}


def _module_grants() -> dict[Module, dict[Resource, frozenset[Action]]]:
    """Split each system's 6.1 grants between its modules by section 2's responsibilities.

    Every module of a system gets the system's READs. The module responsible for updating a
    domain gets UPDATE and DELETE on the domain's own resource and full WRITE on the system's
    relationship resources (memberships, assignments, positions). Only the module responsible
    for creating a domain may CREATE its rows, even outside the owning system (World Generation
    creates factions and the spatial world).
    """
    grants: dict[Module, dict[Resource, set[Action]]] = {m: {} for m in Module}
    own_resources = set(_DOMAIN_RESOURCE.values())
    for module, system in MODULE_SYSTEM.items():
        if system is None:
            continue
        access = SYSTEM_ACCESS[system]
        mine = grants[module]
        for r in access.read:
            mine.setdefault(r, set()).add(Action.READ)
        if any(module in p.update for p in DOMAINS.values()):
            for r in access.write:
                actions = {Action.UPDATE, Action.DELETE} if r in own_resources else set(WRITE)
                mine.setdefault(r, set()).update(actions | {Action.READ})
    for p in DOMAINS.values():
        for module in p.creation:
            resource = _DOMAIN_RESOURCE[p.domain]
            grants[module].setdefault(resource, set()).update({Action.CREATE, Action.READ})
    return {m: {r: frozenset(a) for r, a in g.items()} for m, g in grants.items()}


_DOMAIN_RESOURCE = {
    Domain.CHARACTER: R.CHARACTER,
    Domain.FACTION: R.FACTION,
    Domain.QUEST: R.QUEST,
    Domain.SPATIAL: R.SPATIAL_INDEX,
    Domain.AUTHENTICATION: R.AUTH_DATA,
    Domain.CACHE: R.CACHED_DATA,
}

MODULE_GRANTS: dict[Module, dict[Resource, frozenset[Action]]] = _module_grants()


@dataclass(frozen=True)
class RoleGrant:
    """What a user role may do to a resource, and how far (any row, or only its own)."""

    actions: frozenset[Action]
    scope: Scope = Scope.ANY


WORLD_RESOURCES = (
    R.FACTION,
    R.FACTION_RELATION,
    R.FACTION_MEMBERSHIP,
    R.QUEST,
    R.QUEST_ASSIGNMENT,
    R.SPATIAL_INDEX,
)

SELF_SERVICE_ACTIONS = frozenset({Action.READ, Action.UPDATE, Action.DELETE})
"""What players and GMs may do to their own account: read, export, change password, delete."""

ROLE_GRANTS: dict[Role, dict[Resource, tuple[RoleGrant, ...]]] = {
    # A player reads the world and changes only its own characters (and their positions);
    # it manages its own account (spec 2.5: the Authentication System owns it, the user acts).
    Role.PLAYER: {
        R.AUTH_DATA: (RoleGrant(SELF_SERVICE_ACTIONS, Scope.OWN),),
        R.CHARACTER: (RoleGrant(READ), RoleGrant(WRITE, Scope.OWN)),
        R.CHARACTER_POSITION: (RoleGrant(READ), RoleGrant(WRITE, Scope.OWN)),
        **{r: (RoleGrant(READ),) for r in WORLD_RESOURCES},
    },
    # A game master runs the world: every character, faction, quest and world entity.
    Role.GM: {
        R.AUTH_DATA: (RoleGrant(SELF_SERVICE_ACTIONS, Scope.OWN),),
        R.CHARACTER: (RoleGrant(ALL),),
        R.CHARACTER_POSITION: (RoleGrant(ALL),),
        **{r: (RoleGrant(ALL),) for r in WORLD_RESOURCES},
    },
    # An admin manages users and roles and may read the world, but does not run it.
    Role.ADMIN: {
        R.AUTH_DATA: (RoleGrant(ALL),),
        R.CHARACTER: (RoleGrant(READ),),
        R.CHARACTER_POSITION: (RoleGrant(READ),),
        **{r: (RoleGrant(READ),) for r in WORLD_RESOURCES},
    },
}


@dataclass(frozen=True)
class IntegrationBoundary:
    """A table of spec section 3."""

    name: str
    integration_type: str
    exchange_format: str
    access_path: str
    validation: str
    auth: str
    rate_limit: str
    requests_per_window: int | None
    window: timedelta | None
    contracts: str


BOUNDARIES: tuple[IntegrationBoundary, ...] = (
    IntegrationBoundary(
        "Character System ↔ Faction System",
        "Bidirectional, Read/Write",
        "Internal Object Model",
        "Direct DB access through ORM",
        "Character and Faction IDs must exist and be valid",
        "System-level authorization",
        "None (internal system)",
        None,
        None,
        "Character System may read/update faction membership, Faction System may query member "
        "characters",
    ),
    IntegrationBoundary(
        "Character System ↔ Quest System",
        "Bidirectional, Read/Write",
        "Internal Object Model",
        "Direct DB access through ORM",
        "Character and Quest IDs must exist and be valid",
        "System-level authorization",
        "None (internal system)",
        None,
        None,
        "Character System may read quest assignments, Quest System may assign quests to characters",
    ),
    IntegrationBoundary(
        "Spatial System ↔ Character System",
        "Bidirectional, Read/Write",
        "Position Objects",
        "Direct Memory Access + Event Propagation",
        "Position coordinates must be valid, Entity IDs must exist",
        "System-level authorization",
        "None (internal system)",
        None,
        None,
        "Character System updates positions, Spatial System queries for nearest entities",
    ),
    IntegrationBoundary(
        "Authentication System ↔ Character System",
        "Unidirectional, Authentication → Character",
        "Token-based (JWT)",
        "API with token validation",
        "Valid authentication token required",
        "User-level authorization",
        "100 requests per minute per user",
        100,
        timedelta(minutes=1),
        "Authentication System validates user identity, Character System respects permissions",
    ),
    IntegrationBoundary(
        "Cache System ↔ All Systems",
        "Bidirectional, Read/Write",
        "Key-Value Pairs",
        "Redis Client (RedisService)",
        "Valid cache keys, serializable data",
        "System-level authorization",
        "None (performance-critical)",
        None,
        None,
        "Systems may cache data using standard patterns, must respect invalidation schemes",
    ),
)

API_RATE_LIMIT = BOUNDARIES[3]
"""The user-facing boundary whose rate limit the API enforces per user (and per IP if anonymous)."""


class Strategy(StrEnum):
    """Consistency and conflict strategies of spec 5.1 and 5.2."""

    TRANSACTION = "Transaction-based with database constraints ensuring referential integrity"
    LWW_TIMESTAMP = "Last-writer-wins with timestamp-based versioning"
    TTL_AND_EVENTS = "TTL-based expiration with event-driven invalidation for critical updates"
    OPTIMISTIC_LOCK = "Optimistic locking with version field, retry on conflict (max 3 attempts)"
    COLLISION = "Spatial collision detection with physics-based resolution"
    FIFO_QUEUE = "Queue-based processing with FIFO ordering"


CONSISTENCY: dict[str, Strategy] = {
    "Character-Faction Updates": Strategy.TRANSACTION,
    "Character-Quest Updates": Strategy.TRANSACTION,
    "Spatial Position Updates": Strategy.LWW_TIMESTAMP,
    "Cache-Database Consistency": Strategy.TTL_AND_EVENTS,
}

CONFLICTS: dict[str, Strategy] = {
    "Concurrent Character Updates": Strategy.OPTIMISTIC_LOCK,
    "Spatial Position Conflicts": Strategy.COLLISION,
    "Cache Value Conflicts": Strategy.LWW_TIMESTAMP,
    "Quest Assignment Conflicts": Strategy.FIFO_QUEUE,
}

POSITION_CLOCK_SKEW = timedelta(seconds=5)
"""How far ahead of the server's clock a position report's `at` may be: a later one would win
last-writer-wins against every honest report until then, so it is refused."""

MAX_WRITE_ATTEMPTS = 3
"""Optimistic locking: a server-side read-modify-write is tried at most this many times."""


@dataclass(frozen=True)
class InvalidationTrigger:
    """A row of spec 5.4: which change invalidates which cache tags."""

    event: str
    strategy: str
    tags: tuple[str, ...]


INVALIDATION: tuple[InvalidationTrigger, ...] = (
    InvalidationTrigger(
        "Character Update",
        "Tag-based invalidation for character:${id} and its dependencies",
        ("character:{id}",),
    ),
    InvalidationTrigger(
        "Faction Update",
        "Tag-based invalidation for faction:${id} and its member list",
        ("faction:{id}", "faction:{id}:members"),
    ),
    InvalidationTrigger(
        "Quest Update",
        "Tag-based invalidation for quest:${id} and character quest lists",
        ("quest:{id}", "quest:{id}:characters"),
    ),
    InvalidationTrigger(
        "Spatial Update", "Spatial radius invalidation for affected area", ("tile:{x}:{y}",)
    ),
    InvalidationTrigger("Authentication Change", "Immediate token invalidation", ("user:{id}",)),
)

NEGATIVE_CACHE_TTL = timedelta(seconds=30)
"""How long a 'not found' is remembered, so floods of lookups for missing IDs spare the database."""


class AuditLevel(StrEnum):
    """How an operation type is audited (spec 6.3)."""

    SENSITIVE_ONLY = "No logging for standard reads, logging for sensitive data access"
    CHANGED_FIELDS = (
        "All write operations logged with user/system ID, timestamp, and changed fields"
    )
    AFFECTED_RECORDS = (
        "All delete operations logged with user/system ID, timestamp, and affected records"
    )
    AUTH_ATTEMPTS = (
        "All authentication attempts (success/failure) logged with IP, timestamp, and user ID"
    )


AUDIT: dict[str, AuditLevel] = {
    "Read Operations": AuditLevel.SENSITIVE_ONLY,
    "Write Operations": AuditLevel.CHANGED_FIELDS,
    "Delete Operations": AuditLevel.AFFECTED_RECORDS,
    "Authentication Events": AuditLevel.AUTH_ATTEMPTS,
}

SENSITIVE_READS = frozenset({R.AUTH_DATA})
"""Reads of these resources by someone other than their subject are audited."""

REDACTED_FIELDS = frozenset({"password", "password_hash", "token", "secret"})
"""Field names whose values never reach the audit log."""

AUDIT_SEAL_BOUND = timedelta(seconds=1)
"""A committed audit entry is sealed into the hash chain within this time (one sealer at a
time across all processes); `audit verify` reports entries left unsealed for longer."""

AUDIT_SEAL_INTERVAL = timedelta(milliseconds=200)
"""How often each process's sealer looks for unsealed entries (well inside the bound)."""

OUTBOX_GRACE = timedelta(seconds=1)
"""An outbox event its writer has not acknowledged within this is delivered by any process's
relay (its writer died between commit and publication)."""

OUTBOX_RELAY_INTERVAL = timedelta(milliseconds=500)
"""How often each server's relay looks for events left behind."""

OUTBOX_ACK_INTERVAL = timedelta(milliseconds=50)
"""Acknowledgements of delivered events are gathered this long into one statement."""

OUTBOX_BATCH = 500
"""Outbox rows a relay recovers, or acknowledgements one statement sends, at a time."""

EVENT_DEDUPE_WINDOW = 100_000
"""Event ids each bus remembers to drop a second delivery (at-least-once outbox)."""

AUDIT_SEAL_BATCH = 2_000
"""Entries chained per sealing transaction; a full batch is followed by the next at once."""

AUTH_REQUIREMENTS: dict[str, str] = {
    "API ↔ Service Layer": "Valid JWT token with role-based permissions",
    "Service ↔ Domain Layer": "System-level authorization with service credentials",
    "Domain ↔ Database Layer": "Database credentials with limited-privilege accounts",
}


@dataclass(frozen=True)
class ModuleTables:
    """Which database tables hold a resource, for the least-privilege PostgreSQL roles."""

    tables: tuple[str, ...]
    columns: tuple[str, ...] | None = field(default=None)


RESOURCE_TABLES: dict[Resource, ModuleTables] = {
    R.CHARACTER: ModuleTables(("characters",)),
    # The Spatial System reads a character's position only, never the rest of the row.
    R.CHARACTER_POSITION: ModuleTables(
        ("characters",), ("id", "x", "y", "position_updated_at", "deleted_at")
    ),
    R.FACTION: ModuleTables(("factions",)),
    R.FACTION_RELATION: ModuleTables(("faction_relations",)),
    R.FACTION_MEMBERSHIP: ModuleTables(("character_factions",)),
    R.QUEST: ModuleTables(("quests",)),
    R.QUEST_ASSIGNMENT: ModuleTables(("character_quests",)),
    R.SPATIAL_INDEX: ModuleTables(("world_entities",)),
    R.AUTH_DATA: ModuleTables(("users",)),
    R.CACHED_DATA: ModuleTables(()),
}


def policy(domain: Domain) -> DomainPolicy:
    """Return the registry entry of `domain`."""
    return DOMAINS[domain]


def cache_ttl(domain: Domain) -> timedelta:
    """Return the cache TTL of `domain`; raises KeyError when the domain has none."""
    ttl = DOMAINS[domain].cache_ttl
    if ttl is None:
        raise KeyError(f"{domain} has no cache TTL")
    return ttl


def retention(domain: Domain) -> timedelta:
    """Return how long soft-deleted rows of `domain` are kept; KeyError if never soft-deleted."""
    kept = DOMAINS[domain].retention
    if kept is None:
        raise KeyError(f"{domain} is not soft-deleted")
    return kept


# --- Request limits (API and service) -------------------------------------------------------

PAGE_SIZE_DEFAULT = 50
"""Items in a list page when the caller does not ask for a size."""

PAGE_SIZE_MAX = 200
"""The largest list page a caller may ask for."""


# --- Authentication policy (auth/, users/) ---------------------------------------------------


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters for password hashes."""

    time_cost: int
    memory_kib: int
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16


ARGON2 = Argon2Params(time_cost=2, memory_kib=19 * 1024, parallelism=1)
"""OWASP's first Argon2id profile (m=19 MiB, t=2, p=1): ~30-40 ms per hash on the 2-core target.

argon2-cffi's default (64 MiB, t=3, p=4) costs ~120-170 ms there and p=4 cannot run in parallel
on 2 cores; the login throttle below bounds online guessing, this bounds offline cracking.
"""

PASSWORD_MIN_LENGTH = 12
"""Shortest password accepted (OWASP ASVS 4.0 V2.1.1)."""

PASSWORD_MAX_LENGTH = 128
"""Longest password accepted (ASVS V2.1.2); bounds the work one login request can cause."""


@dataclass(frozen=True)
class LoginThrottlePolicy:
    """After `max_failures` failed logins within `window`, refuse further tries until it ends."""

    max_failures: int
    window: timedelta


LOGIN_THROTTLE_ACCOUNT = LoginThrottlePolicy(max_failures=5, window=timedelta(minutes=15))
"""Failed logins tolerated per account name, whatever the source address."""

LOGIN_THROTTLE_IP = LoginThrottlePolicy(max_failures=50, window=timedelta(minutes=15))
"""Failed logins tolerated per client IP (higher: many users may share one NAT address)."""

LAST_SEEN_RESOLUTION = timedelta(hours=1)
"""last_seen_at is rewritten at most this often; inactivity is measured in months."""


# --- Cache System: operational limits of the cache service (issue 4) ---

CACHE_LOCAL_TTL = timedelta(seconds=30)
"""Longest a process-local (L1) copy lives; pub/sub drops it sooner, this bounds a lost message."""

CACHE_LOCAL_MAX_ENTRIES = 10_000
"""Most entries one process keeps in its L1 cache; the least recently used go first."""

CACHE_REDIS_TIMEOUT = timedelta(milliseconds=250)
"""Connect and command timeout for Redis: past it a request falls back to the database."""

CACHE_RETRY_AFTER = timedelta(seconds=1)
"""After a Redis error, how long requests skip the cache before it is tried again."""

CACHE_MAX_MISSED = 1_000
"""Invalidations remembered while Redis is unreachable; beyond it recovery purges the prefix."""


# --- Authentication: token clock tolerance ---------------------------------------------------

TOKEN_CLOCK_SKEW = timedelta(seconds=30)
"""How far in the future a token's iat may be: API machines' clocks differ by a little."""


# --- API: request size limit (issue 6) -------------------------------------------------------

MAX_REQUEST_BODY_BYTES = 64 * 1024
"""Largest request body the API reads; past it the answer is 413 and the rest is never read."""


# --- API: hostile input (issue 13) ------------------------------------------------------------

MAX_REQUEST_HEAD_BYTES = 16 * 1024
"""Largest request line plus header block the server buffers; past it the answer is 431.

Read before authentication, so it bounds what an anonymous connection can make a process hold.
16 KiB (Node's and h11's default) holds a bearer token and any browser's headers many times over.
"""

MAX_REQUEST_HEADERS = 100
"""Most header fields one request may carry (Apache's default); past it the answer is 431."""

INVENTORY_MAX = 1_000
"""Items a character's inventory holds at most (whether written or granted as rewards)."""

JSON_MAX_DEPTH = 32
"""Deepest nesting of a client-written JSON document (inventory, derived): arrays and objects."""

JSON_MAX_INTEGER = 2**53 - 1
"""Largest magnitude of an integer inside a client-written JSON document (RFC 7493 I-JSON):
every JSON reader, the audit chain's hashing included, holds it exactly."""

UNAVAILABLE_RETRY_AFTER = timedelta(seconds=1)
"""Retry-After of a 503 while the database or Redis does not answer (pool waits included)."""


# --- Spatial System: index, collisions, query cache, propagation (issue 5) -----------------

SPATIAL_CHARACTER_SIZE = 1.0
"""Width and height of a character's footprint in the spatial index (characters are points)."""

SPATIAL_COLLISION_ITERATIONS = 4
"""Push-outs tried for one move before it is refused as blocked (spec 5.2)."""

SPATIAL_TILE_SIZE = 256.0
"""Side of the square tiles that key cached spatial queries; an update drops the tiles it hits."""

SPATIAL_QUERY_CACHE_MAX_TILES = 16
"""Queries touching more tiles than this are answered from the index and never cached."""

SPATIAL_QUERY_CACHE_MAX_ENTRIES = 4_096
"""Cached spatial query results one process keeps; the least recently used go first."""

SPATIAL_QUERY_MAX_RESULTS = 1_000
"""Most entities one window, radius or path query returns."""

SPATIAL_NEAREST_MAX_K = 100
"""Largest k a nearest-entities query may ask for."""

SPATIAL_TOMBSTONES_MAX = 100_000
"""Removed entities remembered so a late, older update cannot bring them back."""

SPATIAL_STREAM_MAXLEN = 100_000
"""Approximate length the Redis stream of position changes is trimmed to (XADD MAXLEN ~)."""

SPATIAL_STREAM_BATCH = 1_000
"""Stream entries one XREAD fetches at most."""

SPATIAL_STREAM_BLOCK = timedelta(milliseconds=200)
"""How long one XREAD waits for new entries; well inside the 1-second consistency window."""

SPATIAL_SNAPSHOT_INTERVAL = timedelta(minutes=5)
"""How often a running process writes its index snapshot (started processes replay from it)."""

SPATIAL_REBUILD_BATCH = 10_000
"""Rows one fetch of the streamed rebuild query brings from the database."""

SPATIAL_WS_QUEUE_MAX = 256
"""Messages queued for one WebSocket subscriber; a client that falls further behind is dropped."""

SPATIAL_WS_AUTH_TIMEOUT = timedelta(seconds=5)
"""How long a WebSocket client has to send its token before it is disconnected."""


# --- Lifecycle jobs (issue 7): purge, archive, anonymize, the quest assignment queue ---------

# Queued assignment requests are Character-Quest relationships: the Quest System writes them.
RESOURCE_TABLES[R.QUEST_ASSIGNMENT] = ModuleTables(
    ("character_quests", "quest_assignment_requests")
)

ASSIGNMENT_QUEUE_SCAN = 32
"""Quests with pending requests a queue worker considers per claim (it locks the first free one)."""

LIFECYCLE_BATCH_SIZE = 5_000
"""Rows a lifecycle job handles per transaction (keyset batches: memory stays flat)."""

MAINTENANCE_INTERVAL = timedelta(hours=1)
"""How often the in-process scheduler runs the lifecycle jobs (one process at a time)."""

ASSIGNMENT_QUEUE_BATCH = 50
"""Requests of one quest a queue worker applies per transaction, in arrival order."""


# --- Authentication on Redis ----------------------------------------------------------------

AUTH_REDIS_TIMEOUT = timedelta(seconds=2)
"""How long a token check or rate-limit count waits for Redis before the request gets a 503.

Longer than the cache's: the cache can fall back to the database, authentication cannot (a
revoked token must never pass because Redis was slow), so it waits a little, then refuses.
"""

AUTH_GATE_MAX_BATCH = 128
"""Most requests one Redis script call admits together (bounds the time Redis spends on it)."""

TOKEN_VERIFY_CACHE_SIZE = 8_192
"""Signature-verified tokens a process remembers, so a token's HMAC and JSON are checked once.

Keyed by the whole token string, so a changed byte is verified afresh; expiry and revocation
are still checked on every request.
"""


# --- Bounds on in-process bookkeeping (cache and event streams) --------------------------------

CACHE_KEY_NAME_MAX = 200
"""Longest name or tag a cache key may carry; longer ones are refused as invalid keys."""

CACHE_PURGE_BATCH = 500
"""Keys per SCAN step and per UNLINK when the cache purges its prefix, so Redis never stalls."""

CACHE_MEMORY_SWEEP_EVERY = 1024
"""Writes between sweeps of expired entries in the memory backend, so dead keys cannot pile up."""

GC_YOUNG_THRESHOLD = 50_000
"""Allocations between young garbage collections in a serving process (CPython's default: 700).

A request makes hundreds of objects, so the default ran several young collections per request,
and every tenth promoted into a full collection of the heap.
"""

STREAM_LAG_SAMPLES = 100_000
"""Recent send-to-apply lags a stream consumer keeps for reporting (older ones are dropped)."""
