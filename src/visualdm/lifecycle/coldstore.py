"""Cold storage through fsspec: gzip JSON Lines files, written durably and verified by re-reading.

A local directory by default (settings data_dir/"archive"), any fsspec URL otherwise. A file is
written under a temporary name, flushed and fsynced, then renamed into place, so a crash leaves
either no file or a whole one; the manifest is replaced the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

END = "_end"
MANIFEST = "manifest.json"


class CorruptArchive(ValueError):
    """An archive file is missing, truncated or does not match its checksum."""


@dataclass(frozen=True)
class Written:
    """A verified archive file: its checksum, size and record count."""

    sha256: str
    size: int
    count: int


def _fsync(handle: IO[bytes]) -> None:
    raw: Any = getattr(handle, "f", handle)
    os.fsync(raw.fileno())


class ColdStore:
    """Archive files under one fsspec URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.local = isinstance(self.fs, LocalFileSystem)

    def _path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def _put(self, name: str, write: Any) -> None:
        path = self._path(name)
        tmp = path + ".tmp"
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if self.local:
                _fsync(handle)
        self.fs.mv(tmp, path)
        if self.local:
            fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def write_records(self, name: str, records: Iterable[dict[str, Any]]) -> Written:
        """Write `records` durably as `name` and re-read them; CorruptArchive if they differ."""
        count = 0

        def write(handle: IO[bytes]) -> None:
            nonlocal count
            with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as gz:
                for record in records:
                    gz.write(orjson.dumps(record) + b"\n")
                    count += 1
                gz.write(orjson.dumps({END: True, "count": count}) + b"\n")

        self._put(name, write)
        written = self.verify(name)
        if written.count != count:
            raise CorruptArchive(f"{name} holds {written.count} records, {count} were written")
        return written

    def read_records(self, name: str) -> Iterator[dict[str, Any]]:
        """Yield the records of `name`; raises CorruptArchive if it is truncated or unreadable."""
        count = 0
        try:
            with self.fs.open(self._path(name), "rb") as handle, gzip.open(handle, "rb") as gz:
                for line in gz:
                    item = orjson.loads(line)
                    if item.get(END):
                        if item["count"] != count:
                            raise CorruptArchive(f"{name}: trailer says {item['count']} records")
                        return
                    count += 1
                    yield item
        except (OSError, EOFError, orjson.JSONDecodeError) as exc:
            raise CorruptArchive(f"{name} cannot be read: {exc}") from exc
        raise CorruptArchive(f"{name} has no trailer (truncated)")

    def verify(self, name: str, sha256: str | None = None) -> Written:
        """Re-read `name` whole; raises CorruptArchive if unreadable or its checksum differs."""
        digest, size = hashlib.sha256(), 0
        try:
            with self.fs.open(self._path(name), "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise CorruptArchive(f"{name} cannot be read: {exc}") from exc
        if sha256 is not None and digest.hexdigest() != sha256:
            raise CorruptArchive(f"{name} does not match its checksum")
        count = sum(1 for _ in self.read_records(name))
        return Written(digest.hexdigest(), size, count)

    def remove(self, name: str) -> None:
        """Delete `name` and any half-written temporary of it."""
        for path in (self._path(name), self._path(name) + ".tmp"):
            if self.fs.exists(path):
                self.fs.rm(path)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace manifest.json atomically."""
        body = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        self._put(MANIFEST, lambda handle: handle.write(body))

    def read_manifest(self) -> dict[str, Any]:
        """Return manifest.json ({} when none was written yet)."""
        path = self._path(MANIFEST)
        if not self.fs.exists(path):
            return {}
        with self.fs.open(path, "rb") as handle:
            found: dict[str, Any] = orjson.loads(handle.read())
            return found
