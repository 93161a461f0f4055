"""Fixtures for the storage tests: one moto S3 server per session, and a fresh
backend of each kind (memory, filesystem, S3) per test."""
from __future__ import annotations

import uuid

import pytest

from mongolake.storage import FileStorage, MemoryStorage, StorageBackend
from mongolake.storage.s3 import S3Storage
from tests.s3util import FaultProxy, moto_s3_server, s3_options


@pytest.fixture(scope="session")
def s3_server():
    """``(endpoint_url, bucket)`` of a moto S3 server on 127.0.0.1."""
    with moto_s3_server() as server:
        yield server


@pytest.fixture
def s3_url(s3_server) -> str:
    """A fresh, empty ``s3://bucket/prefix`` for one test."""
    _endpoint, bucket = s3_server
    return f"s3://{bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_storage(s3_server, s3_url) -> S3Storage:
    s = S3Storage.from_url(s3_url, **s3_options(s3_server[0], base_delay=0.01, max_attempts=4))
    yield s
    s.close()


@pytest.fixture
def fault_proxy(s3_server):
    with FaultProxy(s3_server[0]) as proxy:
        yield proxy


@pytest.fixture
def faulty_s3(fault_proxy, s3_url) -> S3Storage:
    """An S3 backend whose requests go through ``fault_proxy`` (4 attempts, short backoff)."""
    s = S3Storage.from_url(s3_url, **s3_options(fault_proxy.endpoint_url, base_delay=0.01, max_delay=0.05,
                                                max_attempts=4))
    yield s
    s.close()


@pytest.fixture(params=["memory", "file", "s3"])
def backend(request, tmp_path) -> StorageBackend:
    """A fresh, empty backend of each kind."""
    if request.param == "memory":
        yield MemoryStorage()
    elif request.param == "file":
        yield FileStorage(str(tmp_path / "root"))
    else:
        yield request.getfixturevalue("s3_storage")
