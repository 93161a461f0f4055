"""Fixtures for the table-format tests: storage backends (memory, filesystem, S3 via
moto), a storage wrapper that counts calls, and small MongoLake-shaped tables."""
from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from mongolake.formats.base import get_format
from mongolake.storage import FileStorage, MemoryStorage, StorageBackend, open_storage
from tests.s3util import moto_s3_server, s3_options

SCHEMA = pa.schema([
    ("_id", pa.string()),
    ("_key", pa.binary()),
    ("_doc", pa.binary()),
    ("age", pa.int64()),
    ("score", pa.float64()),
    ("profile", pa.struct([("level", pa.int32()), ("name", pa.string())])),
    ("seen", pa.timestamp("us", tz="UTC")),
])
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def make_batch(start: int, n: int, schema: pa.Schema = SCHEMA) -> pa.Table:
    """``n`` MongoLake-shaped rows with keys ``start..start+n-1`` (every 7th age null)."""
    rows = range(start, start + n)
    cols = {
        "_id": [f"id{i:06d}" for i in rows],
        "_key": [b"\x10" + i.to_bytes(4, "big") for i in rows],
        "_doc": [f"doc{i}".encode() for i in rows],
        "age": [None if i % 7 == 0 else i % 90 for i in rows],
        "score": [i / 4 for i in rows],
        "profile": [None if i % 5 == 0 else {"level": i % 10, "name": f"user{i}"} for i in rows],
        "seen": [T0 + timedelta(seconds=i, microseconds=123) for i in rows],
    }
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in schema if f.name in cols}, schema=pa.schema(
        [f for f in schema if f.name in cols]))


class CountingStorage(StorageBackend):
    """Delegates to another backend and counts calls per method name."""

    def __init__(self, inner: StorageBackend):
        self.inner = inner
        self.url = inner.url
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1

    def reset(self) -> None:
        self.calls.clear()

    def read(self, path):
        self._count("read")
        return self.inner.read(path)

    def read_range(self, path, start, length):
        self._count("read_range")
        return self.inner.read_range(path, start, length)

    def exists(self, path):
        self._count("exists")
        return self.inner.exists(path)

    def stat(self, path):
        self._count("stat")
        return self.inner.stat(path)

    def list(self, prefix=""):
        self._count("list")
        return self.inner.list(prefix)

    def write(self, path, data):
        self._count("write")
        return self.inner.write(path, data)

    def write_conditional(self, path, data, expected_version):
        self._count("write_conditional")
        return self.inner.write_conditional(path, data, expected_version)

    def delete(self, path):
        self._count("delete")
        return self.inner.delete(path)

    def local_path(self, path):
        return self.inner.local_path(path)


@pytest.fixture(scope="session")
def s3_server():
    """``(endpoint_url, bucket)`` of a moto S3 server on 127.0.0.1 (one per session)."""
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def s3_url(s3_server) -> str:
    return f"s3://{s3_server[1]}/delta-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", "file"])
def storage(request, tmp_path) -> StorageBackend:
    """A fresh memory or filesystem backend."""
    if request.param == "memory":
        return MemoryStorage()
    return FileStorage(str(tmp_path / "store"), fsync=False)


@pytest.fixture(params=["memory", "file", "s3"])
def any_storage(request, tmp_path) -> StorageBackend:
    """A fresh backend of each kind including S3 (moto)."""
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "file":
        yield FileStorage(str(tmp_path / "store"), fsync=False)
    else:
        url = request.getfixturevalue("s3_url")
        s = open_storage(url, **s3_options(request.getfixturevalue("s3_server")[0]))
        yield s
        s.close()


@pytest.fixture
def fs(tmp_path) -> FileStorage:
    """A filesystem backend (for interoperability tests with delta-rs)."""
    return FileStorage(str(tmp_path / "store"), fsync=False)


@pytest.fixture
def delta():
    return get_format("delta")
