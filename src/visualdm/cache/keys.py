"""Cache key names (`vdm:v1:character:42`), tag validation and the orjson value codec.

Everything that reaches Redis is named and encoded here, so a bad key or an unserializable value
fails loudly at the boundary instead of being stored (spec 3.5: valid keys, serializable data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from visualdm.errors import RuleViolation
from visualdm.ownership import CACHE_KEY_NAME_MAX, Domain

SCHEMA = "v1"  # bump when the stored layout changes, so old entries are simply never read
_SEGMENT = r"[A-Za-z0-9_.\-]+"
_NAME = re.compile(rf"^{_SEGMENT}(:{_SEGMENT})*$")
_PREFIX = re.compile(rf"^{_SEGMENT}$")
MAX_NAME_LENGTH = CACHE_KEY_NAME_MAX


class InvalidCacheKey(RuleViolation):
    """A cache key, tag or list name is malformed (empty, too long, bad characters, bad id)."""

    code = "invalid_cache_key"


class UnserializableCacheValue(RuleViolation):
    """A value cannot be cached: not JSON-serializable, or missing its integer `version`."""

    code = "unserializable_cache_value"


def check_name(kind: str, name: str) -> str:
    """Return `name` if it is a valid tag or list name; raises InvalidCacheKey."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidCacheKey(f"invalid cache {kind} {name!r}: 1-{MAX_NAME_LENGTH} characters")
    if not _NAME.match(name):
        raise InvalidCacheKey(
            f"invalid cache {kind} {name!r}: use segments of letters, digits, _ . - joined by ':'"
        )
    return name


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    """Return the tags, validated and de-duplicated in order; raises InvalidCacheKey."""
    if isinstance(tags, str):
        raise InvalidCacheKey(f"cache tags must be a sequence of strings, not the string {tags!r}")
    return tuple(dict.fromkeys(check_name("tag", t) for t in tags))


def check_id(entity_id: int) -> int:
    """Return `entity_id` if it is a positive int (bools refused); raises InvalidCacheKey."""
    if isinstance(entity_id, bool) or not isinstance(entity_id, int) or entity_id < 1:
        raise InvalidCacheKey(f"invalid cache entity id {entity_id!r}: a positive integer")
    return entity_id


@dataclass(frozen=True)
class CacheKeys:
    """Names every Redis key and channel under `{prefix}:v1:`."""

    prefix: str

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise InvalidCacheKey(f"invalid cache prefix {self.prefix!r}")

    @property
    def root(self) -> str:
        """The namespace every key of this cache starts with."""
        return f"{self.prefix}:{SCHEMA}:"

    def entity(self, domain: Domain, entity_id: int) -> str:
        """Key of one entity, e.g. `vdm:v1:character:42`."""
        return f"{self.root}{Domain(domain).value}:{check_id(entity_id)}"

    def listing(self, domain: Domain, name: str) -> str:
        """Key of a cached list or relation query, e.g. `vdm:v1:faction:list:3:members`."""
        return f"{self.root}{Domain(domain).value}:list:{check_name('list name', name)}"

    def tag_set(self, tag: str) -> str:
        """Key of the Redis set holding the entry keys that carry `tag`."""
        return f"{self.root}tag:{tag}"

    def tag_generation(self, tag: str) -> str:
        """Key of the counter bumped on each invalidation of `tag` (guards racing fills)."""
        return f"{self.root}gen:{tag}"

    @property
    def channel(self) -> str:
        """Pub/sub channel carrying invalidations between processes."""
        return f"{self.root}invalidations"


def own_tag(domain: Domain, entity_id: int) -> str:
    """The tag every entity entry carries, `character:42`, so invalidating it drops the entry."""
    return f"{Domain(domain).value}:{check_id(entity_id)}"


def tag_domain(tag: str) -> str:
    """The metric label of a tag: its first segment (`faction` for `faction:3:members`)."""
    return tag.split(":", 1)[0]


def encode(value: Any) -> bytes:
    """Serialize a JSON-able value with orjson; raises UnserializableCacheValue."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise UnserializableCacheValue(f"cache value is not JSON-serializable: {exc}") from exc


def decode(payload: bytes) -> Any:
    """Deserialize a payload written by `encode` (each caller gets its own copy)."""
    return orjson.loads(payload)


def entity_version(value: Mapping[str, Any]) -> int:
    """Return the integer `version` a cached entity carries; raises UnserializableCacheValue."""
    if not isinstance(value, Mapping):
        raise UnserializableCacheValue(f"cached entities are mappings, got {type(value).__name__}")
    version = value.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise UnserializableCacheValue(
            f"cached entities carry an integer 'version' for last-writer-wins, got {version!r}"
        )
    return version
