"""Index snapshots: atomic (temp file, fsync, rename) and checksummed (sha256 in a header line).

A snapshot holds every entity and the id of the last stream entry applied, so a starting process
loads it and replays the stream from there. The body is a JSON part (stream id, keys, kinds)
followed by the entities' columns as raw little-endian arrays, so a million entities load in
well under a second (ADR 0009). A file whose checksum, size or layout is wrong is refused as a
whole.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from visualdm.errors import RuleViolation
from visualdm.spatial.columns import Columns
from visualdm.spatial.index import Placed

MAGIC = b"VDMSPATIAL2"
FORMAT = "visualdm.spatial/2"
FILE_NAME = "spatial.snapshot"
# Version 1 (a JSON object per entity) is still read; it is written no more.
_MAGIC_V1 = b"VDMSPATIAL1"
_FORMAT_V1 = "visualdm.spatial/1"
# The arrays after the JSON part, in order: (name, dtype, values per entity).
_ARRAYS = (
    ("geometry", "<f8", 4),
    ("at_us", "<i8", 1),
    ("kind_of", "<i4", 1),
    ("is_solid", "u1", 1),
)


class CorruptSnapshot(RuleViolation):
    """The snapshot file is truncated, altered or not a snapshot at all."""

    code = "corrupt_snapshot"


class Snapshot:
    """The content of a snapshot file: the entities (as columns) and the last stream entry."""

    def __init__(self, entities: Sequence[Placed] | Columns, stream_id: str | None) -> None:
        self.columns = entities if isinstance(entities, Columns) else Columns.of_placed(entities)
        self.stream_id = stream_id

    @property
    def entities(self) -> list[Placed]:
        """The entities as Placed objects."""
        return self.columns.placed()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.stream_id == other.stream_id and self.columns == other.columns

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside


def encode(snapshot: Snapshot) -> bytes:
    """The bytes of a snapshot file: header line, then the body (JSON part, raw arrays)."""
    c = snapshot.columns
    meta = orjson.dumps(
        {
            "format": FORMAT,
            "stream_id": snapshot.stream_id,
            "count": len(c),
            "kinds": c.kinds,
            "keys": c.keys,
        }
    )
    arrays = [
        np.ascontiguousarray(getattr(c, name), dtype=dtype).tobytes() for name, dtype, _ in _ARRAYS
    ]
    body = b"".join([len(meta).to_bytes(8, "little"), meta, *arrays])
    digest = hashlib.sha256(body).hexdigest()
    return MAGIC + f" sha256={digest} bytes={len(body)}\n".encode() + body


def decode(data: bytes) -> Snapshot:
    """Parse and verify snapshot bytes; raises CorruptSnapshot."""
    header, sep, body = data.partition(b"\n")
    parts = header.split(b" ")
    if not sep or len(parts) != 3 or parts[0] not in (MAGIC, _MAGIC_V1):
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
        return _decode_v1(body) if parts[0] == _MAGIC_V1 else _decode_body(body)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptSnapshot(f"snapshot body is malformed: {exc}") from exc


def _decode_body(body: bytes) -> Snapshot:
    size = int.from_bytes(body[:8], "little")
    meta: dict[str, Any] = orjson.loads(body[8 : 8 + size])
    if meta["format"] != FORMAT:
        raise CorruptSnapshot(f"unknown snapshot format {meta['format']!r}")
    n = int(meta["count"])
    keys, kinds = meta["keys"], meta["kinds"]
    if len(keys) != n or not all(isinstance(k, str) for k in kinds):
        raise ValueError("the key or kind list does not match the count")
    offset, arrays = 8 + size, {}
    for name, dtype, width in _ARRAYS:
        array = np.frombuffer(body, dtype=dtype, count=n * width, offset=offset)
        offset += array.nbytes
        arrays[name] = array.reshape(n, width) if width > 1 else array
    if offset != len(body):
        raise ValueError("trailing bytes after the arrays")
    kind_of = arrays["kind_of"].astype(np.int32)
    if n and (kind_of.min() < 0 or kind_of.max() >= len(kinds)):
        raise ValueError("a kind index is out of range")
    columns = Columns(
        keys=[str(k) for k in keys],
        kinds=kinds,
        kind_of=kind_of,
        geometry=arrays["geometry"].astype(np.float64),
        is_solid=arrays["is_solid"].astype(np.bool_),
        at_us=arrays["at_us"].astype(np.int64),
    )
    stream_id = meta["stream_id"]
    return Snapshot(columns, None if stream_id is None else str(stream_id))


def _decode_v1(body: bytes) -> Snapshot:
    raw: dict[str, Any] = orjson.loads(body)
    if raw["format"] != _FORMAT_V1:
        raise CorruptSnapshot(f"unknown snapshot format {raw['format']!r}")
    entities = [Placed.from_json(e) for e in raw["entities"]]
    stream_id = raw["stream_id"]
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
