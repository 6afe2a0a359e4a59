"""/metrics counts requests by route template and status, and auth refusals."""

from __future__ import annotations

from tests.support.api import api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, f"no sample starting with {prefix!r}"
    return float(lines[0].rsplit(" ", 1)[1])


async def test_requests_latencies_and_auth_failures_are_counted(
    database: Database, clock: FrozenClock
) -> None:
    async with api_client(database, clock) as (client, runtime, _app):
        gm = await make_user(runtime, "gamemaster", Role.GM)
        for _ in range(3):
            assert (await client.get("/v1/characters", headers=gm.headers)).status_code == 200
        assert (await client.get("/v1/characters/77", headers=gm.headers)).status_code == 404
        assert (await client.get("/v1/characters")).status_code == 401
        text = (await client.get("/metrics")).text
    ok = 'vdm_http_requests_total{method="GET",route="/v1/characters",status="200"}'
    missing = (
        'vdm_http_requests_total{method="GET",route="/v1/characters/{character_id}",status="404"}'
    )
    assert _value(text, ok) == 3
    assert _value(text, missing) == 1
    assert _value(text, "vdm_auth_failures_total") == 1
    assert _value(text, 'vdm_http_request_seconds_count{method="GET",route="/v1/characters"}') == 4
