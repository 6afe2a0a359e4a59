"""Argon2id password hashes (parameters from the registry) and the password policy.

Hashing runs in a worker thread: argon2-cffi releases the GIL, so logins use every core and do
not stall the event loop for the ~30 ms a hash takes.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from visualdm.errors import RuleViolation
from visualdm.ownership import ARGON2, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from visualdm.storable import encodable


@cache
def hasher() -> PasswordHasher:
    """The Argon2id hasher configured from `ownership.ARGON2` (built on first use)."""
    return PasswordHasher(
        time_cost=ARGON2.time_cost,
        memory_cost=ARGON2.memory_kib,
        parallelism=ARGON2.parallelism,
        hash_len=ARGON2.hash_len,
        salt_len=ARGON2.salt_len,
        type=Type.ID,
    )


@cache
def dummy_hash() -> str:
    """A hash that no login matches, verified when the account is unknown (equal timing)."""
    return hasher().hash("visualdm-dummy-password-for-timing")


def check_policy(password: str, *, username: str) -> None:
    """Accept a new password or raise RuleViolation saying which rule it breaks."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise RuleViolation(
            f"password must be at least {PASSWORD_MIN_LENGTH} characters", field="password"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise RuleViolation(
            f"password must be at most {PASSWORD_MAX_LENGTH} characters", field="password"
        )
    if not encodable(password):
        raise RuleViolation("password must be valid Unicode text", field="password")
    if username and username.casefold() in password.casefold():
        raise RuleViolation("password must not contain the username", field="password")


def hash_sync(password: str) -> str:
    """Return a new Argon2id hash of `password` (blocking; prefer `hash_password`)."""
    return hasher().hash(password)


def verify_sync(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash`; a malformed hash never matches (blocking)."""
    try:
        return hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    """Return a new Argon2id hash of `password`, computed off the event loop."""
    return await asyncio.to_thread(hash_sync, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash, verify against a dummy so timing is the same."""
    if stored_hash is None or len(password) > PASSWORD_MAX_LENGTH or not encodable(password):
        # Same work whether or not the account exists; over-long input is never hashed in full,
        # nor is text with lone surrogates (JSON's "\ud800"), which has no UTF-8 form: no stored
        # password can be either, the policy refused it when it was set.
        stand_in = password[:PASSWORD_MAX_LENGTH].encode("utf-8", "replace").decode()
        await asyncio.to_thread(verify_sync, dummy_hash(), stand_in)
        return False
    return await asyncio.to_thread(verify_sync, stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    """Whether `stored_hash` was made with other parameters than the registry's current ones."""
    try:
        return hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
