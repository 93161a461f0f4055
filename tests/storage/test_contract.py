"""The StorageBackend contract, checked identically on memory, filesystem and S3 (moto)."""
from __future__ import annotations

import io
import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mongolake.storage import FileInfo, NotFoundError, VersionMismatchError


def test_write_read_overwrite(backend):
    assert not backend.exists("a/b/c.bin")
    backend.write("a/b/c.bin", b"first")
    assert backend.exists("a/b/c.bin")
    assert backend.read("a/b/c.bin") == b"first"
    backend.write("a/b/c.bin", b"second, longer")
    assert backend.read("a/b/c.bin") == b"second, longer"
    backend.write_atomic("a/b/c.bin", b"third")
    assert backend.read("a/b/c.bin") == b"third"


def test_binary_empty_and_unicode(backend):
    blob = bytes(range(256)) * 4
    backend.write("bin", blob)
    backend.write("empty", b"")
    backend.write("dé/ü snow ☃.txt", "☃".encode())
    assert backend.read("bin") == blob
    assert backend.read("empty") == b""
    assert backend.stat("empty").size == 0
    assert backend.read("dé/ü snow ☃.txt") == "☃".encode()
    assert [f.path for f in backend.list("dé/")] == ["dé/ü snow ☃.txt"]


def test_missing_objects(backend):
    with pytest.raises(NotFoundError):
        backend.read("nope")
    with pytest.raises(NotFoundError):
        backend.read_range("nope", 0, 10)
    with pytest.raises(NotFoundError):
        backend.read_range("nope", 0, 0)
    with pytest.raises(NotFoundError):
        backend.stat("nope")
    with pytest.raises(NotFoundError):
        backend.copy("nope", "dst")
    with pytest.raises(NotFoundError):
        backend.move("nope", "dst")
    assert not backend.exists("dst")
    # NotFoundError is also a FileNotFoundError for callers that expect one
    with pytest.raises(FileNotFoundError):
        backend.read("nope")
    backend.delete("nope")   # ignored


def test_folder_is_not_an_object(backend):
    backend.write("dir/file", b"x")
    assert not backend.exists("dir")
    with pytest.raises(NotFoundError):
        backend.stat("dir")
    with pytest.raises(NotFoundError):
        backend.read("dir")


def test_stat_and_versions(backend):
    backend.write("s", b"12345")
    info = backend.stat("s")
    assert isinstance(info, FileInfo)
    assert (info.path, info.size) == ("s", 5)
    assert info.mtime > 1e9 and isinstance(info.version, str) and info.version
    backend.write("s", b"other")
    assert backend.stat("s").version != info.version
    assert backend.list()[0].version == backend.stat("s").version


def test_read_range(backend):
    data = bytes(range(100))
    backend.write("r", data)
    assert backend.read_range("r", 0, 10) == data[:10]
    assert backend.read_range("r", 37, 20) == data[37:57]
    assert backend.read_range("r", 90, 50) == data[90:]       # short at the end
    assert backend.read_range("r", 100, 5) == b""             # at the end
    assert backend.read_range("r", 250, 5) == b""             # past the end
    assert backend.read_range("r", 5, 0) == b""
    backend.write("empty", b"")
    assert backend.read_range("empty", 0, 10) == b""
    with pytest.raises(ValueError):
        backend.read_range("r", -1, 5)
    with pytest.raises(ValueError):
        backend.read_range("r", 0, -5)


def test_list_prefix_semantics(backend):
    for p in ["a/1", "a/2/x", "a/2/y", "ab", "abc/1", "b/1", "top"]:
        backend.write(p, p.encode())
    assert [f.path for f in backend.list()] == ["a/1", "a/2/x", "a/2/y", "ab", "abc/1", "b/1", "top"]
    assert [f.path for f in backend.list("a/")] == ["a/1", "a/2/x", "a/2/y"]
    assert [f.path for f in backend.list("a")] == ["a/1", "a/2/x", "a/2/y", "ab", "abc/1"]
    assert [f.path for f in backend.list("a/2/")] == ["a/2/x", "a/2/y"]
    assert [f.path for f in backend.list("ab")] == ["ab", "abc/1"]
    assert backend.list("zzz/") == []
    assert backend.list("top/") == []
    sizes = {f.path: f.size for f in backend.list()}
    assert sizes["a/2/x"] == 5


def test_put_if_absent(backend):
    v1 = backend.write_conditional("log/000.json", b"one", None)
    assert v1 == backend.stat("log/000.json").version
    with pytest.raises(VersionMismatchError):
        backend.write_conditional("log/000.json", b"two", None)
    assert backend.read("log/000.json") == b"one"
    backend.delete("log/000.json")
    v2 = backend.write_conditional("log/000.json", b"three", None)
    assert backend.read("log/000.json") == b"three" and v2 == backend.stat("log/000.json").version


def test_if_match(backend):
    v1 = backend.write_conditional("meta", b"v1", None)
    v2 = backend.write_conditional("meta", b"v2", v1)
    assert v2 != v1 and backend.read("meta") == b"v2"
    assert backend.stat("meta").version == v2
    with pytest.raises(VersionMismatchError):   # stale version
        backend.write_conditional("meta", b"v3", v1)
    assert backend.read("meta") == b"v2"
    backend.write("meta", b"unconditional")     # changes the version too
    with pytest.raises(VersionMismatchError):
        backend.write_conditional("meta", b"v3", v2)
    with pytest.raises(VersionMismatchError):   # expected a version, object is missing
        backend.write_conditional("missing", b"x", v2)
    assert not backend.exists("missing")
    v4 = backend.write_conditional("meta", b"v4", backend.stat("meta").version)
    assert backend.read("meta") == b"v4" and backend.stat("meta").version == v4


def test_put_if_absent_thread_race(backend):
    """Threads of one process: exactly one winner per path."""
    n_threads, rounds = 6, 10
    barrier = threading.Barrier(n_threads)
    wins: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for r in range(rounds):
            barrier.wait(timeout=30)
            try:
                backend.write_conditional(f"race/{r}", str(i).encode(), None)
                with lock:
                    wins.append((r, i))
            except VersionMismatchError:
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(r for r, _ in wins) == list(range(rounds))
    for r, i in wins:
        assert backend.read(f"race/{r}") == str(i).encode()


def test_delete_and_delete_prefix(backend):
    for p in ["t/a", "t/b/c", "t/b/d", "tx", "u/1"]:
        backend.write(p, b"x")
    backend.delete("t/a")
    assert not backend.exists("t/a")
    assert backend.delete_prefix("t/") == 2
    assert [f.path for f in backend.list()] == ["tx", "u/1"]
    assert backend.delete_prefix("t/") == 0
    backend.write("t/b/new", b"y")             # the folder can be used again
    assert backend.read("t/b/new") == b"y"


def test_copy_and_move(backend):
    backend.write("src/a", b"payload")
    backend.copy("src/a", "dst/a")
    assert backend.read("dst/a") == b"payload" and backend.read("src/a") == b"payload"
    backend.write("src/a", b"changed")
    assert backend.read("dst/a") == b"payload"     # a copy, not a link
    backend.move("src/a", "moved/deep/a")
    assert not backend.exists("src/a")
    assert backend.read("moved/deep/a") == b"changed"
    backend.write("other", b"old")
    backend.move("moved/deep/a", "other")          # replaces
    assert backend.read("other") == b"changed"
    backend.copy("other", "other")                 # onto itself: a no-op
    backend.move("other", "other")
    assert backend.read("other") == b"changed"


def test_open_input_seek_read(backend):
    data = bytes(range(200))
    backend.write("f", data)
    with backend.open_input("f") as f:
        assert f.seekable() and f.readable()
        assert f.read(10) == data[:10]
        f.seek(-20, os.SEEK_END)
        assert f.read() == data[-20:]
        f.seek(50)
        assert f.tell() == 50
        f.seek(5, os.SEEK_CUR)
        assert f.read(5) == data[55:60]
        assert f.read(0) == b""
    with pytest.raises(NotFoundError):
        backend.open_input("nope")


def test_parquet_through_open_input(backend):
    table = pa.table({"k": list(range(1000)), "s": [f"row {i}" for i in range(1000)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=250)
    backend.write("t/part-0.parquet", buf.getvalue())
    with backend.open_input("t/part-0.parquet") as f:
        pf = pq.ParquetFile(f)
        assert pf.metadata.num_rows == 1000 and pf.metadata.num_row_groups == 4
        assert pf.read_row_group(2).column("k").to_pylist() == list(range(500, 750))
        assert pf.read().equals(table)


def test_bytes_read_counts_reads(backend):
    backend.write("c", b"x" * 1000)
    before = backend.bytes_read
    backend.read("c")
    backend.read_range("c", 100, 50)
    assert backend.bytes_read - before == 1050
