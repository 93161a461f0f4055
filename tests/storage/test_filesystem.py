"""Filesystem-specific guarantees: temp files never show, versions never repeat,
folders pruned by another process do not break later writes."""
from __future__ import annotations

import os

import pytest

from mongolake.storage import FileStorage, VersionMismatchError


def test_versions_never_repeat_for_same_size_rewrites(tmp_path):
    fs = FileStorage(str(tmp_path), fsync=False)
    seen = set()
    version = fs.write_conditional("meta", b"v000", None)
    seen.add(version)
    for i in range(1, 200):       # same size, fast: a coarse clock would repeat mtimes
        version = fs.write_conditional("meta", f"v{i:03d}".encode(), version)
        assert version not in seen
        seen.add(version)
    assert fs.stat("meta").version == version
    with pytest.raises(VersionMismatchError):
        fs.write_conditional("meta", b"late", sorted(seen - {version})[0])


def test_no_temp_or_lock_files_visible(tmp_path):
    fs = FileStorage(str(tmp_path))
    v = fs.write_conditional("d/a", b"1", None)
    fs.write_conditional("d/a", b"2", v)
    fs.write("d/b", b"3")
    assert [f.path for f in fs.list()] == ["d/a", "d/b"]
    leftovers = [n for n in os.listdir(tmp_path / "d") if n.startswith(".tmp-")]
    assert leftovers == []
    fs.delete("d/a")
    assert sorted(os.listdir(tmp_path / "d")) == ["b"]   # the lock file went with it


def test_lost_conditional_write_leaves_no_temp_file(tmp_path):
    fs = FileStorage(str(tmp_path))
    fs.write_conditional("x", b"1", None)
    with pytest.raises(VersionMismatchError):
        fs.write_conditional("x", b"2", None)
    with pytest.raises(VersionMismatchError):
        fs.write_conditional("x", b"2", "0-0-0")
    assert sorted(os.listdir(tmp_path)) == ["x", "x.mllock"]
    assert fs.read("x") == b"1"


def test_write_after_another_instance_pruned_the_folder(tmp_path):
    a = FileStorage(str(tmp_path))
    b = FileStorage(str(tmp_path))
    a.write("db/coll/_log/0", b"x")          # a now believes the folder exists
    assert b.delete_prefix("db/") == 1
    assert not (tmp_path / "db").exists()
    a.write("db/coll/_log/1", b"y")
    a.write_conditional("db/coll/_log/2", b"z", None)
    assert [f.path for f in b.list("db/")] == ["db/coll/_log/1", "db/coll/_log/2"]


def test_local_path_and_open_input_are_real_files(tmp_path):
    fs = FileStorage(str(tmp_path))
    fs.write("a/b", b"abc")
    assert open(fs.local_path("a/b"), "rb").read() == b"abc"
    with fs.open_input("a/b") as f:
        assert f.read() == b"abc"
