"""Bad paths are refused with InvalidPathError before any I/O happens."""
from __future__ import annotations

import os

import pytest

from mongolake.storage import FileStorage, InvalidPathError, MemoryStorage, validate_path
from mongolake.storage.base import validate_prefix
from mongolake.storage.s3 import S3Storage
from tests.s3util import s3_options

BAD_PATHS = [
    "", "..", ".", "../escape", "a/../../escape", "a/..", "./a", "a/./b", "/etc/passwd", "/abs",
    "a\\b", "..\\..\\escape", "nul\x00byte", "line\nbreak", "tab\tname", "bell\x07", "del\x7f", "c1\x85ctl",
    "a//b", "trailing/", "lone\ud800surrogate",
]
BAD_PREFIXES = ["..", "../", "a/../", "/abs/", "a\\", "x\x00", "a//"]


def _every_operation(storage, bad):
    yield lambda: storage.read(bad)
    yield lambda: storage.read_range(bad, 0, 1)
    yield lambda: storage.exists(bad)
    yield lambda: storage.stat(bad)
    yield lambda: storage.write(bad, b"x")
    yield lambda: storage.write_atomic(bad, b"x")
    yield lambda: storage.write_conditional(bad, b"x", None)
    yield lambda: storage.write_conditional(bad, b"x", "1")
    yield lambda: storage.delete(bad)
    yield lambda: storage.copy(bad, "ok")
    yield lambda: storage.copy("ok", bad)
    yield lambda: storage.move("ok", bad)
    yield lambda: storage.open_input(bad)


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_validate_path_refuses(bad):
    with pytest.raises(InvalidPathError):
        validate_path(bad)
    assert issubclass(InvalidPathError, ValueError)


@pytest.mark.parametrize("good", ["a", "a/b/c.parquet", "_delta_log/00000000000000000000.json", "dé/☃",
                                  "a..b", "..a", "a.", "name with spaces", "x=1/y=%2F"])
def test_validate_path_accepts(good):
    assert validate_path(good) == good


def test_validate_prefix():
    assert validate_prefix("") == "" and validate_prefix("a/") == "a/" and validate_prefix("a/b") == "a/b"
    for bad in BAD_PREFIXES:
        with pytest.raises(InvalidPathError):
            validate_prefix(bad)


def test_filesystem_refuses_and_creates_nothing_outside(tmp_path):
    root = tmp_path / "inner" / "root"
    fs = FileStorage(str(root))
    fs.write("ok", b"fine")
    before = sorted(p for p in tmp_path.rglob("*"))
    for bad in BAD_PATHS:
        for op in _every_operation(fs, bad):
            with pytest.raises(InvalidPathError):
                op()
    for bad in BAD_PREFIXES:
        with pytest.raises(InvalidPathError):
            fs.list(bad)
        with pytest.raises(InvalidPathError):
            fs.delete_prefix(bad)
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "escape").exists() and not (tmp_path / "inner" / "escape").exists()
    assert fs.read("ok") == b"fine"
    assert [f.path for f in fs.list()] == ["ok"]


def test_memory_refuses():
    m = MemoryStorage()
    m.write("ok", b"fine")
    for bad in BAD_PATHS:
        for op in _every_operation(m, bad):
            with pytest.raises(InvalidPathError):
                op()
    assert [f.path for f in m.list()] == ["ok"]


def test_s3_refuses_without_any_request(fault_proxy, s3_url):
    s3 = S3Storage.from_url(s3_url, **s3_options(fault_proxy.endpoint_url))
    for bad in BAD_PATHS:
        for op in _every_operation(s3, bad):
            with pytest.raises(InvalidPathError):
                op()
    for bad in BAD_PREFIXES:
        with pytest.raises(InvalidPathError):
            s3.list(bad)
        with pytest.raises(InvalidPathError):
            s3.delete_prefix(bad)
    with pytest.raises(InvalidPathError):     # S3's key limit is 1024 bytes
        s3.write("k" * 1100, b"x")
    assert fault_proxy.requests == []


def test_s3_url_prefix_is_validated():
    for bad in ["s3://bucket/../x", "s3://bucket/a//b", "s3://bucket/a\\b"]:
        with pytest.raises(InvalidPathError):
            S3Storage.from_url(bad, **s3_options("http://127.0.0.1:9"))
    for bad in ["s3://", "s3:///prefix", "http://bucket/x"]:
        with pytest.raises(ValueError):
            S3Storage.from_url(bad, **s3_options("http://127.0.0.1:9"))


def test_filesystem_root_itself_is_not_an_object(tmp_path):
    fs = FileStorage(str(tmp_path))
    assert not os.listdir(tmp_path)
    with pytest.raises(InvalidPathError):
        fs.write("", b"x")
