"""Access tokens: HS256 only, every defect is NotAuthenticated, lifetime from the registry."""

from __future__ import annotations

import base64
import os
import stat
from datetime import timedelta
from pathlib import Path

import jwt
import orjson
import pytest

from visualdm.auth.tokens import InsecureConfiguration, TokenCodec, load_secret
from visualdm.clock import FrozenClock
from visualdm.errors import NotAuthenticated
from visualdm.ownership import DOMAINS, Domain, Role
from visualdm.settings import Settings

SECRET = "s" * 48
OTHER = "o" * 48
ROLES = frozenset({Role.GM})


@pytest.fixture
def codec(clock: FrozenClock) -> TokenCodec:
    return TokenCodec(SECRET, clock=clock)


def test_a_token_round_trips_and_lives_as_long_as_the_registry_says(
    codec: TokenCodec, clock: FrozenClock
) -> None:
    token, issued = codec.issue(42, ROLES)
    claims = codec.decode(token)
    assert claims == issued
    assert claims.user_id == 42
    assert claims.roles == ROLES
    assert claims.expires_at - claims.issued_at == DOMAINS[Domain.AUTHENTICATION].cache_ttl
    assert claims.issued_at == clock.now()


def test_each_token_has_its_own_jti(codec: TokenCodec) -> None:
    assert codec.issue(1, ROLES)[1].jti != codec.issue(1, ROLES)[1].jti


def test_an_expired_token_is_refused(codec: TokenCodec, clock: FrozenClock) -> None:
    token, _ = codec.issue(1, ROLES)
    clock.advance(timedelta(hours=24) - timedelta(seconds=1))
    codec.decode(token)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(NotAuthenticated):
        codec.decode(token)


def test_a_token_from_the_future_is_refused(codec: TokenCodec, clock: FrozenClock) -> None:
    token, _ = codec.issue(1, ROLES)
    clock.advance(timedelta(minutes=-5))
    with pytest.raises(NotAuthenticated):
        codec.decode(token)


def test_a_token_signed_with_another_key_is_refused(codec: TokenCodec, clock: FrozenClock) -> None:
    token, _ = TokenCodec(OTHER, clock=clock).issue(1, ROLES)
    with pytest.raises(NotAuthenticated):
        codec.decode(token)


def _unsigned(payload: dict[str, object]) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_an_alg_none_token_is_refused(codec: TokenCodec) -> None:
    good, _ = codec.issue(1, frozenset({Role.PLAYER}))
    payload = jwt.decode(good, options={"verify_signature": False})
    payload["roles"] = ["admin"]
    with pytest.raises(NotAuthenticated):
        codec.decode(_unsigned(payload))


def test_a_token_signed_with_the_right_key_but_another_algorithm_is_refused(
    clock: FrozenClock,
) -> None:
    key = "k" * 64  # long enough for HS512, so only the algorithm differs
    codec = TokenCodec(key, clock=clock)
    good, _ = codec.issue(1, ROLES)
    payload = jwt.decode(good, options={"verify_signature": False})
    forged = jwt.encode(payload, key, algorithm="HS512")
    checked = jwt.decode(forged, key, algorithms=["HS512"], options={"verify_exp": False})
    assert checked["sub"] == "1"
    with pytest.raises(NotAuthenticated):
        codec.decode(forged)


def test_a_tampered_payload_is_refused(codec: TokenCodec) -> None:
    good, _ = codec.issue(1, frozenset({Role.PLAYER}))
    header, _, signature = good.split(".")
    payload = jwt.decode(good, options={"verify_signature": False})
    payload["roles"] = ["admin"]
    body = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()
    with pytest.raises(NotAuthenticated):
        codec.decode(f"{header}.{body}.{signature}")


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "....", "é.é.é"])
def test_malformed_tokens_are_refused(codec: TokenCodec, token: str) -> None:
    with pytest.raises(NotAuthenticated):
        codec.decode(token)


@pytest.mark.parametrize(
    "change",
    [
        {"sub": "not-a-number"},
        {"roles": ["emperor"]},
        {"iat": "yesterday"},
        {"jti": ""},
        {"exp": None},
    ],
)
def test_well_signed_tokens_with_bad_claims_are_refused(
    codec: TokenCodec, change: dict[str, object]
) -> None:
    good, _ = codec.issue(1, ROLES)
    payload = {**jwt.decode(good, options={"verify_signature": False}), **change}
    with pytest.raises(NotAuthenticated):
        codec.decode(jwt.encode(payload, SECRET, algorithm="HS256"))


def test_a_token_without_a_jti_is_refused(codec: TokenCodec) -> None:
    good, _ = codec.issue(1, ROLES)
    payload = jwt.decode(good, options={"verify_signature": False})
    del payload["jti"]
    with pytest.raises(NotAuthenticated):
        codec.decode(jwt.encode(payload, SECRET, algorithm="HS256"))


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://db/vdm", redis_url="redis://r", data_dir=tmp_path
    )
    with pytest.raises(InsecureConfiguration, match="VDM_JWT_SECRET is required"):
        load_secret(settings)
    assert not (tmp_path / ".visualdm-secret").exists()


def test_a_short_configured_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InsecureConfiguration, match="at least"):
        load_secret(Settings(jwt_secret="short", data_dir=tmp_path))


def test_a_configured_secret_is_used(tmp_path: Path) -> None:
    assert load_secret(Settings(jwt_secret=SECRET, data_dir=tmp_path)) == SECRET


def test_embedded_mode_generates_a_private_secret_once_and_reuses_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_secret(settings)
    path = tmp_path / ".visualdm-secret"
    assert len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(settings) == first


def test_a_world_readable_secret_file_is_made_private(tmp_path: Path) -> None:
    first = load_secret(Settings(data_dir=tmp_path))
    path = tmp_path / ".visualdm-secret"
    os.chmod(path, 0o644)
    assert load_secret(Settings(data_dir=tmp_path)) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
