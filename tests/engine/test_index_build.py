"""Index builds from a snapshot: writers keep going while a large index builds,
changes committed meanwhile are caught up (B-tree and special kinds alike), the
built index equals a scan, unique builds fail on duplicates (also ones written
during the build), and after a restart large collections build in the background."""
from __future__ import annotations

import random
import threading
import time

import pytest

from mongolake.engine.engine import Engine
from mongolake.engine.indexing import kinds
from mongolake.engine.reader import ScanStats
from mongolake.errors import MongoError
from mongolake.query import keystring

SPEC = {"v": 2, "key": {"a": 1}, "name": "a_1"}


class FakeKind:
    """A special index kind that remembers every document it was given."""

    kind = "fake"

    def __init__(self, spec: dict):
        self.spec, self.name = spec, spec["name"]
        self.docs: dict[bytes, dict] = {}
        self.finished = False

    def add(self, doc: dict, key: bytes) -> None:
        self.docs[key] = doc

    def remove(self, doc: dict, key: bytes) -> None:
        assert self.docs.get(key) == doc          # always the version it holds
        del self.docs[key]

    def finish_build(self) -> None:
        self.finished = True

    def describe(self) -> dict:
        return {"indexName": self.name}

    def entry_count(self) -> int:
        return len(self.docs)


def _open(path: str) -> Engine:
    return Engine(path, flush_interval=3600, row_group_rows=512).open()


def _load(e: Engine, n: int) -> None:
    for i in range(0, n, 5000):
        e.insert("db", "c", [{"_id": j, "a": j % 1000, "p": "x" * 40} for j in range(i, min(n, i + 5000))],
                 wait=False)
    e.flush()


def _index_state(e: Engine, c, name: str) -> list:
    ix = next(i for i in e.indexes.for_collection(c) if i.name == name)
    with e.lock:
        return sorted(ix.keys)


def _scan_state(e: Engine, field: str) -> list:
    return sorted((keystring.encode_key(d.get(field)), keystring.encode_key(d["_id"]))
                  for d in e.find("db", "c", {}, as_raw=False, hint={"$natural": 1}))


def test_writes_proceed_while_a_large_index_builds(tmp_path, monkeypatch):
    monkeypatch.setitem(kinds.INDEX_KINDS, "fake", f"{__name__}:FakeKind")
    e = _open(str(tmp_path / "store"))
    try:
        _load(e, 60_000)
        c = e.get_collection("db", "c")
        stop = threading.Event()
        lat: list[float] = []
        during_scan = [0]
        box: dict = {}

        def writer():
            r = random.Random(5)
            k = 0
            while not stop.is_set():
                k += 1
                t0 = time.perf_counter()
                if k % 3 == 0:
                    e.delete("db", "c", {"_id": r.randrange(60_000)}, limit=1)
                elif k % 3 == 1:
                    e.update("db", "c", {"_id": r.randrange(70_000)}, {"$set": {"a": r.randrange(2000)}},
                             upsert=True)
                else:
                    e.insert("db", "c", [{"_id": 100_000 + k, "a": r.randrange(2000)}])
                lat.append(time.perf_counter() - t0)
                ci = e.indexes._colls.get(c.uuid)
                if ci is not None and any(j.phase == "scan" for j in ci.jobs):
                    during_scan[0] += 1

        def build():
            t0 = time.perf_counter()
            box["added"] = e.indexes.create(c, [SPEC, {"v": 2, "key": {"a": "fake"}, "name": "fake"}])
            box["seconds"] = time.perf_counter() - t0

        w = threading.Thread(target=writer)
        w.start()
        b = threading.Thread(target=build)
        b.start()
        b.join(300)
        stop.set()
        w.join()
        assert [s["name"] for s in box["added"]] == ["a_1", "fake"]
        # writers committed while the build scanned: the lock was not held for the build
        assert during_scan[0] > 0
        assert max(lat) < box["seconds"]
        assert _index_state(e, c, "a_1") == _scan_state(e, "a")
        fake = e.indexes.special(c, "fake")[0]
        assert fake.finished
        assert {k: d for k, d in fake.docs.items()} == {
            keystring.encode_key(d["_id"]): d for d in e.find("db", "c", {}, as_raw=False)}
        st = ScanStats()
        got = sorted(d["_id"] for d in e.find("db", "c", {"a": 7}, as_raw=False, stats=st))
        assert st.index_name == "a_1" and got == sorted(
            d["_id"] for d in e.find("db", "c", {"a": 7}, as_raw=False, hint={"$natural": 1}))
    finally:
        e.close()


def test_unique_build_fails_on_duplicates_including_ones_written_during_the_build(tmp_path):
    e = _open(str(tmp_path / "store"))
    try:
        e.insert("db", "c", [{"_id": i, "u": i} for i in range(3000)])
        c = e.get_collection("db", "c")
        uspec = {"v": 2, "key": {"u": 1}, "name": "u_1", "unique": True}
        assert e.indexes.create(c, [uspec]) == [uspec]
        errs = e.insert("db", "c", [{"_id": 5000, "u": 7}]).errors       # enforced through the new index
        assert errs and errs[0][1].code == 11000
        e.set_indexes(c, [s for s in c.meta.indexes if s["name"] != "u_1"])
        e.insert("db", "c", [{"_id": 5002, "u": 9}])                   # now a duplicate
        with pytest.raises(MongoError) as ei:
            e.indexes.create(c, [uspec])
        assert ei.value.code == 11000 and ei.value.extra["keyValue"] == {"u": 9}
        assert [s["name"] for s in c.meta.indexes] == ["_id_"]          # nothing created
        e.delete("db", "c", {"_id": 5002})
        # a duplicate committed while the build runs (injected into its catch-up)
        from mongolake.engine.indexing import build as b
        orig = b.replay

        def replay(objs, buf, suspects=None):
            if not getattr(replay, "done", False):
                replay.done = True
                e.insert("db", "c", [{"_id": 6000, "u": 11}])
            return orig(objs, buf, suspects)

        b.replay = replay
        try:
            with pytest.raises(MongoError) as ei:
                e.indexes.create(c, [uspec])
        finally:
            b.replay = orig
        assert ei.value.code == 11000 and ei.value.extra["keyValue"] == {"u": 11}
        assert [s["name"] for s in c.meta.indexes] == ["_id_"]
        e.delete("db", "c", {"_id": 6000})
        assert e.indexes.create(c, [uspec]) == [uspec]
    finally:
        e.close()


def test_after_restart_large_collections_build_in_the_background(tmp_path):
    path = str(tmp_path / "store")
    e = _open(path)
    _load(e, 20_000)
    c = e.get_collection("db", "c")
    e.indexes.create(c, [SPEC, {"v": 2, "key": {"u": 1}, "name": "u_1", "unique": True, "sparse": True}])
    e.insert("db", "c", [{"_id": 50_000 + i, "a": 3, "u": i} for i in range(10)])
    e.close(flush=False)
    e = _open(path)
    try:
        e.indexes.inline_build_docs = 1000
        c = e.get_collection("db", "c")
        want = sorted(d["_id"] for d in e.find("db", "c", {"a": 3}, as_raw=False, hint={"$natural": 1}))
        st = ScanStats()
        got = sorted(d["_id"] for d in e.find("db", "c", {"a": 3}, as_raw=False, stats=st))
        assert got == want and len(want) == 30
        e.insert("db", "c", [{"_id": 60_000, "a": 3}])                  # during the build
        # the unique index is enforced while it builds (by a scan) and once built
        errs = e.insert("db", "c", [{"_id": 70_000, "u": 5}]).errors
        assert errs and errs[0][1].code == 11000
        assert e.indexes.wait_idle(c, 120)
        st = ScanStats()
        got = sorted(d["_id"] for d in e.find("db", "c", {"a": 3}, as_raw=False, stats=st))
        assert got == want + [60_000] and st.index_name == "a_1"
        assert e.indexes.stats["background_builds"] == 1
        errs = e.insert("db", "c", [{"_id": 70_001, "u": 6}]).errors
        assert errs and errs[0][1].code == 11000
        assert _index_state(e, c, "a_1") == _scan_state(e, "a")
    finally:
        e.close()


def test_arrow_sort_of_entries_equals_sorted():
    from mongolake.engine.indexing.index import desc_key
    from mongolake.engine.indexing.sortedkeys import ARROW_SORT_MIN, sort_items

    rnd = random.Random(2)
    vals = [None, "", "a", "a\x00", "ab", b"\x00", -1, 0, 2.5, 10 ** 20, [1, 2], {"k": "v"}, True, float("nan")]
    items = set()
    while len(items) < ARROW_SORT_MIN + 500:
        k = keystring.encode_key(rnd.choice(vals)) + keystring.encode_key(rnd.randint(0, 50))
        if rnd.random() < 0.5:
            k = desc_key(k)
        items.add((k, keystring.encode_key(rnd.randint(0, 10 ** 6))))
    items = list(items)
    assert sort_items(items) == sorted(items)
