"""ETags are versions: reads send them, If-Match guards writes, If-None-Match saves a body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request, Response, status

from visualdm.errors import RuleViolation


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    """Put the version's ETag on the response."""
    response.headers["ETag"] = etag(version)


def expected_version(request: Request) -> int | None:
    """The version an If-Match header demands, or None; RuleViolation if it is not one of ours."""
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise RuleViolation("If-Match must be an ETag this API sent", header=raw)
    return int(value)


def not_modified(request: Request, version: int) -> bool:
    """Whether If-None-Match already names this version (answer 304)."""
    raw = request.headers.get("if-none-match")
    if raw is None:
        return False
    tags = {t.strip().removeprefix("W/") for t in raw.split(",")}
    return "*" in tags or etag(version) in tags


def not_modified_response(request: Request, version: int) -> Response | None:
    """The 304 answer (carrying the ETag) when If-None-Match already names `version`, else None."""
    if not not_modified(request, version):
        return None
    return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(version)})


def document_response(request: Request, document: Mapping[str, Any]) -> Response:
    """Answer with a validated JSON document as it is (no model round trip), or 304.

    The ETag is the document's `version`; If-None-Match naming it gives the 304.
    """
    version = int(document["version"])
    if (unchanged := not_modified_response(request, version)) is not None:
        return unchanged
    return Response(
        orjson.dumps(document), media_type="application/json", headers={"ETag": etag(version)}
    )
