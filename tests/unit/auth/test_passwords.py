"""Argon2id hashing with the registry's parameters, rehash detection and the password policy."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from visualdm.auth import passwords
from visualdm.errors import RuleViolation
from visualdm.ownership import ARGON2, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

GOOD = "correct horse battery"


async def test_a_hash_verifies_only_its_own_password() -> None:
    stored = await passwords.hash_password(GOOD)
    assert await passwords.verify_password(stored, GOOD)
    assert not await passwords.verify_password(stored, GOOD + "!")


async def test_hashes_are_argon2id_with_the_registry_parameters() -> None:
    stored = await passwords.hash_password(GOOD)
    assert stored.startswith("$argon2id$")
    assert f"m={ARGON2.memory_kib},t={ARGON2.time_cost},p={ARGON2.parallelism}" in stored
    assert not passwords.needs_rehash(stored)


def test_a_hash_made_with_other_parameters_needs_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(GOOD)
    assert passwords.needs_rehash(old)
    assert passwords.verify_sync(old, GOOD)


def test_a_malformed_hash_never_verifies_and_needs_rehash() -> None:
    assert not passwords.verify_sync("not-a-hash", GOOD)
    assert passwords.needs_rehash("not-a-hash")


async def test_an_unknown_account_is_verified_against_the_dummy_hash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    real = passwords.verify_sync

    def spy(stored: str, password: str) -> bool:
        seen.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_sync", spy)
    assert not await passwords.verify_password(None, "visualdm-dummy-password-for-timing")
    assert seen == [passwords.dummy_hash()]


async def test_an_over_long_password_is_refused_without_hashing_it_in_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stored = await passwords.hash_password(GOOD)
    lengths: list[int] = []
    real = passwords.verify_sync

    def spy(stored: str, password: str) -> bool:
        lengths.append(len(password))
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_sync", spy)
    assert not await passwords.verify_password(stored, GOOD + "x" * 10_000)
    assert lengths == [PASSWORD_MAX_LENGTH]


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("a" * (PASSWORD_MIN_LENGTH - 1), "at least"),
        ("a" * (PASSWORD_MAX_LENGTH + 1), "at most"),
        ("Aragorn-the-ranger-2026", "username"),
        ("xxARAGORNxxxxxxx", "username"),
    ],
)
def test_the_policy_refuses_short_long_and_username_passwords(password: str, rule: str) -> None:
    with pytest.raises(RuleViolation, match=rule):
        passwords.check_policy(password, username="aragorn")


def test_the_policy_accepts_a_password_at_the_limits() -> None:
    passwords.check_policy("b" * PASSWORD_MIN_LENGTH, username="aragorn")
    passwords.check_policy("b" * PASSWORD_MAX_LENGTH, username="aragorn")
