"""Index snapshots: atomic (temp file, fsync, rename) and checksummed (sha256 in a header line).

A snapshot holds every entity and the id of the last stream entry applied, so a starting process
loads it and replays the stream from there. A file whose checksum, size or layout is wrong is
refused as a whole.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from visualdm.errors import RuleViolation
from visualdm.spatial.index import Placed

MAGIC = b"VDMSPATIAL1"
FORMAT = "visualdm.spatial/1"
FILE_NAME = "spatial.snapshot"


class CorruptSnapshot(RuleViolation):
    """The snapshot file is truncated, altered or not a snapshot at all."""

    code = "corrupt_snapshot"


@dataclass(frozen=True)
class Snapshot:
    """The content of a snapshot file."""

    entities: list[Placed]
    stream_id: str | None


def encode(snapshot: Snapshot) -> bytes:
    """The bytes of a snapshot file: header line, then the JSON body."""
    body = orjson.dumps(
        {
            "format": FORMAT,
            "stream_id": snapshot.stream_id,
            "entities": [e.to_json() for e in snapshot.entities],
        }
    )
    digest = hashlib.sha256(body).hexdigest()
    return MAGIC + f" sha256={digest} bytes={len(body)}\n".encode() + body


def decode(data: bytes) -> Snapshot:
    """Parse and verify snapshot bytes; raises CorruptSnapshot."""
    header, sep, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not sep or len(parts) != 3 or parts[0] != MAGIC:
        raise CorruptSnapshot("not a spatial snapshot (bad header)")
    try:
        digest = parts[1].removeprefix(b"sha256=").decode()
        size = int(parts[2].removeprefix(b"bytes="))
    except ValueError as exc:
        raise CorruptSnapshot("not a spatial snapshot (bad header)") from exc
    if len(body) != size:
        raise CorruptSnapshot(f"snapshot is truncated: {len(body)} of {size} bytes")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CorruptSnapshot("snapshot checksum mismatch: the file was altered or damaged")
    try:
        raw: dict[str, Any] = orjson.loads(body)
        if raw["format"] != FORMAT:
            raise CorruptSnapshot(f"unknown snapshot format {raw['format']!r}")
        entities = [Placed.from_json(e) for e in raw["entities"]]
        stream_id = raw["stream_id"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptSnapshot(f"snapshot body is malformed: {exc}") from exc
    return Snapshot(entities, None if stream_id is None else str(stream_id))


def write(path: Path, snapshot: Snapshot) -> None:
    """Write `snapshot` to `path` atomically: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(encode(snapshot))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read(path: Path) -> Snapshot:
    """Read and verify the snapshot at `path`; raises CorruptSnapshot or FileNotFoundError."""
    return decode(Path(path).read_bytes())
