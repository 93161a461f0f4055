"""IcebergTable behaviour on memory, filesystem (and S3 where marked): create/open,
metadata layout, commits, statistics, snapshots and time travel, caching cost,
manifest merging, schema evolution, in-process conflicts, history, vacuum, snapshot
expiry, change data."""
from __future__ import annotations

import io
import json
import time
from datetime import datetime, timedelta, timezone

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mongolake.formats.base import (CommitConflictError, SnapshotNotFoundError, TableError, TableExistsError,
                                    TableNotFoundError, get_format)
from mongolake.formats.iceberg import IcebergFormat, IcebergTable
from mongolake.storage import MemoryStorage

from .conftest import SCHEMA, CountingStorage, make_batch

STATS = ["_id", "_key", "age", "score", "profile", "seen"]


@pytest.fixture
def ice():
    return get_format("iceberg")


def _commit_batch(table, start, n=20, **kw):
    f = table.write_data_file(make_batch(start, n), stats_columns=STATS)
    return table.commit(adds=[f], **kw), f


def _metadata(storage, version, root="t"):
    return json.loads(storage.read(f"{root}/metadata/v{version}.metadata.json"))


def _avro(storage, uri, root="t"):
    rel = uri[uri.index(f"/{root}/metadata/") + 1:]
    return fastavro.reader(io.BytesIO(storage.read(rel)))


def _field_ids(schema: pa.Schema) -> list[int]:
    out = []

    def walk(f: pa.Field) -> None:
        out.append(int(f.metadata[b"PARQUET:field_id"]))
        t = f.type
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                walk(t.field(i))
        elif pa.types.is_map(t):
            walk(t.key_field)
            walk(t.item_field)
        elif pa.types.is_list(t):
            walk(t.value_field)

    for f in schema:
        walk(f)
    return out


def test_registered_and_create_open_exists(any_storage, ice):
    assert isinstance(ice, IcebergFormat)
    assert not ice.table_exists(any_storage, "db/c")
    with pytest.raises(TableNotFoundError):
        ice.open_table(any_storage, "db/c")
    t = ice.create_table(any_storage, "db/c", SCHEMA, properties={"mongolake.ns": "db.c"})
    assert ice.table_exists(any_storage, "db/c")
    with pytest.raises(TableExistsError):
        ice.create_table(any_storage, "db/c", SCHEMA)
    snap = ice.open_table(any_storage, "db/c/").snapshot()
    assert snap.version == 0 and snap.files == () and snap.properties == {"mongolake.ns": "db.c"}
    assert snap.schema.names == SCHEMA.names and snap.schema.field("profile").type == SCHEMA.field("profile").type
    assert snap.snapshot_id is None and t.snapshot().version == 0
    v, f = _commit_batch(t, 0)
    fresh = ice.open_table(any_storage, "db/c").snapshot()
    assert v == 1 and fresh.files == (f,) and fresh.num_records == 20 and fresh.snapshot_id is not None
    assert ice.open_table(any_storage, "db/c").open_data_file(f).read().num_rows == 20
    assert any_storage.read("db/c/metadata/version-hint.text") == b"2"


def test_metadata_layout(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    md = _metadata(storage, 1)
    assert md["format-version"] == 2 and md["last-sequence-number"] == 0 and md["snapshots"] == []
    assert md["location"].endswith("/t") and "://" in md["location"]
    assert md["partition-specs"] == [{"spec-id": 0, "fields": []}] and md["default-sort-order-id"] == 0
    fields = md["schemas"][0]["fields"]
    assert [f["id"] for f in fields] == [1, 2, 3, 4, 5, 6, 7]
    profile = next(f for f in fields if f["name"] == "profile")
    assert [(c["id"], c["name"], c["type"]) for c in profile["type"]["fields"]] == [(8, "level", "int"),
                                                                                     (9, "name", "string")]
    assert md["last-column-id"] == 9 and next(f for f in fields if f["name"] == "seen")["type"] == "timestamptz"
    _commit_batch(t, 0, app_id="wal", app_version=7, info={"documents": 20})
    md = _metadata(storage, 2)
    (snap,) = md["snapshots"]
    assert md["current-snapshot-id"] == snap["snapshot-id"] == md["refs"]["main"]["snapshot-id"]
    assert snap["sequence-number"] == 1 == md["last-sequence-number"] and "parent-snapshot-id" not in snap
    s = snap["summary"]
    assert s["operation"] == "append" and s["added-data-files"] == "1" and s["added-records"] == "20"
    assert s["total-records"] == "20" and s["mongolake.app.wal"] == "7" and s["mongolake.operation"] == "WRITE"
    assert json.loads(s["mongolake.info"]) == {"documents": "20"}
    assert md["snapshot-log"] == [{"timestamp-ms": snap["timestamp-ms"], "snapshot-id": snap["snapshot-id"]}]
    assert md["metadata-log"][0]["metadata-file"].endswith("/t/metadata/v1.metadata.json")
    lst = _avro(storage, snap["manifest-list"])
    assert lst.metadata["sequence-number"] == "1" and lst.metadata["format-version"] == "2"
    (mf,) = list(lst)
    assert mf["added_files_count"] == 1 and mf["sequence_number"] == 1 and mf["content"] == 0
    entries = list(_avro(storage, mf["manifest_path"]))
    assert [e["status"] for e in entries] == [1] and entries[0]["sequence_number"] is None  # inherited


def test_statistics_only_for_exact_columns_and_binary_key_bounds(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    f = t.write_data_file(make_batch(0, 50), stats_columns=["_key", "profile"], tags={"level": "0"})
    assert set(f.null_count) == {"_key", "profile.level", "profile.name"}
    t.commit(adds=[f])
    (got,) = IcebergTable(storage, "t").snapshot().files
    assert got == f and got.tags == {"level": "0"}
    assert got.min_values["_key"] == b"\x10\x00\x00\x00\x00" and got.max_values["_key"] == b"\x10\x00\x00\x00\x31"
    entry = list(_avro(storage, list(_avro(storage, _metadata(storage, 2)["snapshots"][0]["manifest-list"]))[0]
                       ["manifest_path"]))[0]["data_file"]
    ids = {kv["key"] for kv in entry["null_value_counts"]}
    assert ids == {2, 8, 9}                                    # _key, profile.level, profile.name only
    assert {kv["key"] for kv in entry["lower_bounds"]} == {2, 8, 9} == {kv["key"] for kv in entry["value_counts"]}
    lower = {kv["key"]: kv["value"] for kv in entry["lower_bounds"]}
    assert lower[2] == b"\x10\x00\x00\x00\x00" and lower[8] == (1).to_bytes(4, "little")
    # long binary keys and strings are truncated to bounds that still bound
    long_key = pa.table({"_key": pa.array([b"\x01" * 300, b"\x02" + b"\xff" * 299], pa.binary()),
                         "_id": ["a" * 40, "b" * 40]})
    g = t.write_data_file(long_key, stats_columns=["_key", "_id"])
    assert len(g.min_values["_key"]) == 128 and g.max_values["_key"] == b"\x03"
    assert g.min_values["_id"] == "a" * 32 and g.max_values["_id"] == "b" * 31 + "c"
    t.commit(adds=[g])
    assert IcebergTable(storage, "t").snapshot().files[1] == g


def test_time_travel_by_version_snapshot_id_and_timestamp(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    files = []
    for i in range(4):
        time.sleep(0.005)
        files.append(_commit_batch(t, i * 20)[1])
    t.commit(removes=[files[0]], operation="DELETE")
    fresh = IcebergTable(storage, "t")
    for v in range(1, 5):
        assert [f.path for f in fresh.snapshot(v).files] == [f.path for f in files[:v]]
    latest = fresh.snapshot()
    assert latest.version == 5 and [f.path for f in latest.files] == [f.path for f in files[1:]]
    assert fresh.snapshot(0).files == () and fresh.snapshot(0).schema.names == SCHEMA.names
    ids = {s["sequence-number"]: s["snapshot-id"] for s in _metadata(storage, 6)["snapshots"]}
    assert {v: fresh.snapshot(v).snapshot_id for v in range(1, 6)} == ids
    assert all(fresh.snapshot_by_id(sid).version == v for v, sid in ids.items())
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot_by_id(12345)
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(6)
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(-1)
    hist = {c.version: c.timestamp_ms for c in fresh.history()}
    at = datetime.fromtimestamp(hist[2] / 1000, tz=timezone.utc)
    assert fresh.snapshot(timestamp=at).version == 2
    assert fresh.snapshot(timestamp=at + timedelta(microseconds=999)).version == 2
    assert fresh.snapshot(timestamp=datetime.now(timezone.utc) + timedelta(days=1)).version == 5
    assert fresh.snapshot(timestamp=datetime.fromtimestamp(hist[0] / 1000, tz=timezone.utc)).version == 0
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert [c.version for c in fresh.history()] == [5, 4, 3, 2, 1, 0]
    assert [c.operation for c in fresh.history(limit=2)] == ["DELETE", "WRITE"]
    assert fresh.history()[-1].operation == "CREATE TABLE"
    summary = _metadata(storage, 6)["snapshots"][-1]["summary"]
    assert summary["operation"] == "delete" and summary["deleted-data-files"] == "1"


def test_snapshot_is_cheap_and_incremental():
    inner = MemoryStorage()
    counting = CountingStorage(inner)
    IcebergFormat().create_table(inner, "t", SCHEMA)
    t = IcebergTable(counting, "t")
    other = IcebergTable(inner, "t")
    s1 = t.snapshot()
    counting.reset()
    for _ in range(5):
        assert t.snapshot() is s1                      # cached object, nothing changed
    assert dict(counting.calls) == {"read": 5}          # one read attempt of the next metadata each
    for i in range(3):
        _commit_batch(other, i * 20)
    counting.reset()
    s2 = t.snapshot()
    assert s2.version == 3 and len(s2.files) == 3
    # next metadata + hint + newer metadata + miss, the manifest list and the 3 manifests: no listing
    assert dict(counting.calls) == {"read": 4 + 1 + 3}
    counting.reset()
    v = t.commit(adds=[t.write_data_file(make_batch(100, 5))])
    assert t.snapshot().version == v and counting.calls["list"] == 0
    assert counting.calls["read"] == 2                  # the race probe before committing + the miss after
    counting.reset()
    _commit_batch(other, 500)
    assert t.cached_snapshot().version == v and not counting.calls      # no I/O at all
    assert t.snapshot().version == v + 1


def test_manifests_are_merged(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA, properties={"commit.manifest.min-count-to-merge": "4"})
    files = [_commit_batch(t, i * 10, n=10)[1] for i in range(9)]
    md = _metadata(storage, 10)
    manifests = list(_avro(storage, md["snapshots"][-1]["manifest-list"]))
    assert len(manifests) <= 5
    fresh = IcebergTable(storage, "t").snapshot()
    assert [f.path for f in fresh.files] == [f.path for f in files] and fresh.files == t.snapshot().files
    # a delete rewrites only the manifest holding the file
    t.commit(removes=[files[4]])
    fresh = IcebergTable(storage, "t").snapshot()
    assert [f.path for f in fresh.files] == [f.path for f in files if f is not files[4]]


def test_schema_evolution_add_columns_and_refuse_type_change(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    _commit_batch(t, 0)
    evolved = pa.schema(list(SCHEMA.remove(SCHEMA.get_field_index("profile")))
                        + [pa.field("profile", pa.struct([("level", pa.int32()), ("name", pa.string()),
                                                          ("vip", pa.bool_())])),
                           pa.field("city", pa.string())])
    data = make_batch(100, 10).append_column("city", pa.array(["Paris"] * 10))
    f = t.write_data_file(data, stats_columns=STATS + ["city"])
    v = t.commit(adds=[f], schema=evolved)
    snap = IcebergTable(storage, "t").snapshot()
    assert v == 2 and snap.schema.field("city").type == pa.string()
    assert snap.schema.field("profile").type.field("vip").type == pa.bool_()
    assert snap.files[1].min_values["city"] == "Paris" and "city" not in snap.files[0].null_count
    md = _metadata(storage, 3)
    ids = {f["name"]: f["id"] for f in md["schemas"][-1]["fields"]}
    assert md["current-schema-id"] == 1 and ids["city"] == 10 and md["last-column-id"] == 11
    # the data file carries the id the commit gave the new column
    pf = pq.ParquetFile(storage.local_path(t.file_path(f)) or storage.open_input(t.file_path(f)))
    assert pf.schema_arrow.field("city").metadata[b"PARQUET:field_id"] == b"10"
    bad = evolved.set(evolved.get_field_index("age"), pa.field("age", pa.string()))
    with pytest.raises(TableError, match="age"):
        t.commit(schema=bad)
    with pytest.raises(TableError, match="dropped"):
        t.commit(schema=pa.schema([("_id", pa.string())]))
    with pytest.raises(TableError, match="age"):        # data of the wrong type for the table
        t.write_data_file(pa.table({"age": ["x"]}))
    assert t.snapshot().version == 2
    assert IcebergTable(storage, "t").snapshot(1).schema.names == SCHEMA.names   # old versions keep theirs


def test_pending_field_ids_survive_across_commits(storage, ice):
    """A file written with a new column before another commit lands still gets its id."""
    t = ice.create_table(storage, "t", SCHEMA)
    early = t.write_data_file(make_batch(0, 3).append_column("x", pa.array([1, 2, 3], pa.int64())))
    _commit_batch(t, 100)                               # a commit without the new column
    late = t.write_data_file(make_batch(200, 3).append_column("y", pa.array(["a"] * 3)))
    t.commit(adds=[early, late], schema=SCHEMA.append(pa.field("x", pa.int64())).append(pa.field("y", pa.string())))
    md = _metadata(storage, 3)
    ids = {f["name"]: f["id"] for f in md["schemas"][-1]["fields"]}
    meta = {n: t.open_data_file(g).schema_arrow.field(n).metadata[b"PARQUET:field_id"]
            for g, n in ((early, "x"), (late, "y"))}
    assert meta == {"x": str(ids["x"]).encode(), "y": str(ids["y"]).encode()} and ids["x"] != ids["y"]


def test_conflicts_between_handles(storage, ice):
    ice.create_table(storage, "t", SCHEMA)
    a, b = IcebergTable(storage, "t"), IcebergTable(storage, "t")
    _, f1 = _commit_batch(a, 0)
    base = b.snapshot().version
    _commit_batch(a, 100)                               # a concurrent append: b rebases on top of it
    v = b.commit(adds=[b.write_data_file(make_batch(200, 5))], read_version=base)
    assert v == base + 2
    a.commit(removes=[f1], read_version=v)
    with pytest.raises(CommitConflictError, match="removed"):
        b.commit(removes=[f1], read_version=v)
    with pytest.raises(CommitConflictError):
        b.commit(removes=[f1])                          # without read_version: it is simply gone
    cur = b.snapshot().version
    a.commit(app_id="wal", app_version=1)
    with pytest.raises(CommitConflictError, match="wal"):
        b.commit(app_id="wal", app_version=2, read_version=cur)
    with pytest.raises(TableError):
        b.commit(read_version=cur + 100)
    assert IcebergTable(storage, "t").snapshot().app_versions == {"wal": 1}
    b.commit(app_id="other", app_version=5)             # app versions are carried forward
    assert IcebergTable(storage, "t").snapshot().app_versions == {"wal": 1, "other": 5}


def test_concurrent_schema_changes_merge_or_conflict(storage, ice):
    ice.create_table(storage, "t", SCHEMA)
    a, b = IcebergTable(storage, "t"), IcebergTable(storage, "t")
    base = b.snapshot().version
    a.commit(schema=SCHEMA.append(pa.field("x", pa.int64())))
    b.commit(schema=SCHEMA.append(pa.field("y", pa.string())), read_version=base)
    assert IcebergTable(storage, "t").snapshot().schema.names[-2:] == ["y", "x"]
    base = b.snapshot().version
    a.commit(schema=a.snapshot().schema.append(pa.field("z", pa.int64())))
    with pytest.raises(CommitConflictError, match="schema"):
        b.commit(schema=b.snapshot(base).schema.append(pa.field("z", pa.string())), read_version=base)


def test_vacuum_expires_superseded_snapshots_and_deletes_unreferenced_files(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    _, f1 = _commit_batch(t, 0)
    _, f2 = _commit_batch(t, 100)
    t.commit(removes=[f1])
    orphan = t.write_data_file(make_batch(500, 3))        # written, never committed
    time.sleep(0.02)
    kept = t.vacuum(retention_seconds=3600)
    assert kept["files_deleted"] == 0 and kept["files"] == [] and kept["snapshots_expired"] == 0
    dry = t.vacuum(retention_seconds=0, dry_run=True)
    assert sorted(dry["files"]) == sorted([f1.path, orphan.path]) and dry["bytes_deleted"] == f1.size + orphan.size
    assert storage.exists(t.file_path(f1)) and len(t.history()) == 4
    done = t.vacuum(retention_seconds=0)
    assert done["files_deleted"] == 2 and not storage.exists(t.file_path(f1)) and done["snapshots_expired"] == 2
    assert done["metadata_files_deleted"] >= 2
    assert storage.exists(t.file_path(f2)) and t.open_data_file(t.snapshot().files[0]).read().num_rows == 20
    fresh = IcebergTable(storage, "t")
    assert [c.version for c in fresh.history()] == [3] and fresh.snapshot().files == (f2,)
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(1)


def test_change_data_files_are_kept_and_listed(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    changes = make_batch(0, 5).append_column("_change_type", pa.array(["insert"] * 5))
    cdc = t.write_data_file(changes, subdir="_change_data", stats_columns=[], tags={"from": "1"})
    assert cdc.path.startswith("data/_change_data/part-")
    f = t.write_data_file(make_batch(0, 5))
    v = t.commit(adds=[f], cdc=[cdc])
    t.commit(adds=[t.write_data_file(make_batch(10, 5))])
    assert [x.path for x in t.snapshot(v).files] == [f.path]       # change files are not table files
    assert "_change_type" not in t.snapshot().schema.names
    fresh = IcebergTable(storage, "t")
    (got,) = fresh.changes(0)
    assert got[0] == v and got[1].path == cdc.path and got[1].num_records == 5 and got[1].tags == {"from": "1"}
    assert fresh.changes(v) == [] and fresh.changes(0, until_version=0) == []
    assert fresh.changes(-1) == fresh.changes(0)                # "from the beginning", as Delta's
    assert fresh.open_data_file(got[1]).read().column("_change_type").to_pylist() == ["insert"] * 5
    time.sleep(0.02)
    assert cdc.path not in t.vacuum(retention_seconds=3600, dry_run=True)["files"]
    t.vacuum(retention_seconds=0)
    with pytest.raises(SnapshotNotFoundError):
        fresh.changes(0)                                # a stream cannot resume before the kept history
    assert fresh.changes(2) == []


def test_expire_snapshots(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    files = [_commit_batch(t, i * 20)[1] for i in range(5)]
    t.commit(removes=files[:2])
    before = {i.path for i in storage.list("t/metadata/")}
    res = t.expire_snapshots(older_than_ms=int(time.time() * 1000) + 1000, min_snapshots=2)
    assert res["snapshots_expired"] == 4 and res["earliest_version"] == 5 and res["files_deleted"] >= 4
    after = {i.path for i in storage.list("t/metadata/")}
    assert len(before - after) == res["files_deleted"]
    fresh = IcebergTable(storage, "t")
    assert fresh.snapshot().version == 6 and len(fresh.snapshot().files) == 3
    assert len(fresh.snapshot(5).files) == 5 and storage.exists(t.file_path(files[0]))  # data: vacuum's job
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(4)
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(0)
    assert [c.version for c in fresh.history()] == [6, 5]
    assert t.expire_snapshots(older_than_ms=0)["snapshots_expired"] == 0
    assert fresh.vacuum(retention_seconds=0)["files"] and not storage.exists(t.file_path(files[0]))


@pytest.mark.parametrize("codec,label", [("zstd", "zstd"), ("snappy", "snappy"), ("none", "uncompressed")])
def test_write_data_file_codecs_row_groups_and_field_ids(codec, label, ice):
    storage = MemoryStorage()
    t = ice.create_table(storage, "t", SCHEMA.append(pa.field("tags", pa.list_(pa.string())))
                         .append(pa.field("m", pa.map_(pa.string(), pa.int64()))))
    data = make_batch(0, 100).append_column("tags", pa.array([["a"]] * 100)).append_column(
        "m", pa.array([[("k", 1)]] * 100, pa.map_(pa.string(), pa.int64())))
    f = t.write_data_file(data, compression=codec, row_group_size=30)
    assert f.path.endswith(f".{label}.parquet") and f.num_records == 100
    assert "tags" not in f.null_count and "m" not in f.null_count       # no stats inside lists/maps
    pf = t.open_data_file(f)
    assert pf.metadata.num_row_groups == 4
    assert sorted(_field_ids(pf.schema_arrow)) == list(range(1, 15))   # every field, nested ones too
    col = pf.metadata.row_group(0).column(pf.metadata.schema.names.index("age"))
    assert col.compression == {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    with pytest.raises(TableError):
        t.write_data_file(make_batch(0, 1), compression="brotli-ish")


def test_ns_timestamps_are_stored_as_microseconds(ice):
    storage = MemoryStorage()
    t = ice.create_table(storage, "t", pa.schema([("ts", pa.timestamp("us", tz="UTC"))]))
    f = t.write_data_file(pa.table({"ts": pa.array([1_000_000_000_000_000_000], pa.timestamp("ns"))}))
    assert t.open_data_file(f).read().schema.field("ts").type == pa.timestamp("us", tz="UTC")
    with pytest.raises(TableError):       # sub-microsecond precision would be lost
        t.write_data_file(pa.table({"ts": pa.array([1_000_000_000_000_000_001], pa.timestamp("ns"))}))
    with pytest.raises(TableError):
        ice.create_table(storage, "u", pa.schema([("n", pa.uint64())]))


def test_open_without_version_hint_uses_listing(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    for i in range(3):
        _commit_batch(t, i * 20)
    storage.delete("t/metadata/version-hint.text")
    counting = CountingStorage(storage)
    snap = IcebergTable(counting, "t").snapshot()
    assert snap.version == 3 and len(snap.files) == 3 and counting.calls["list"] == 1
    storage.write("t/metadata/version-hint.text", b"2")                # a stale hint: probed past
    assert IcebergTable(storage, "t").snapshot().version == 3


def test_foreign_delete_files_and_partitions_are_refused(storage, ice):
    t = ice.create_table(storage, "t", SCHEMA)
    _commit_batch(t, 0)
    md = _metadata(storage, 2)
    md["partition-specs"] = [{"spec-id": 0, "fields": [{"source-id": 4, "field-id": 1000, "name": "age",
                                                         "transform": "identity"}]}]
    storage.write_conditional("t/metadata/v3.metadata.json", json.dumps(md).encode(), None)
    with pytest.raises(TableError, match="partitioned"):
        IcebergTable(storage, "t").snapshot()


def test_lagging_handle_recovers_when_the_next_metadata_file_is_gone(storage, ice, monkeypatch):
    from mongolake.formats.iceberg import table as table_mod

    t = ice.create_table(storage, "t", SCHEMA)
    lagging = IcebergTable(storage, "t")
    assert lagging.snapshot().version == 0
    for i in range(3):
        _commit_batch(t, i * 20)
    storage.delete("t/metadata/v2.metadata.json")            # as a vacuum would, long after
    assert lagging.snapshot().version == 0                    # the probe misses, hint not re-read yet
    monkeypatch.setattr(table_mod, "HINT_RECHECK_SECONDS", 0.0)
    assert lagging.snapshot().version == 3 and len(lagging.snapshot().files) == 3


def test_threads_writing_new_columns_get_distinct_field_ids(storage, ice):
    import threading

    t = ice.create_table(storage, "t", SCHEMA)
    files: dict[str, object] = {}

    def write(name: str) -> None:
        for _ in range(5):
            files[name] = t.write_data_file(make_batch(0, 2).append_column(name, pa.array([1, 2], pa.int64())))

    threads = [threading.Thread(target=write, args=(f"c{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ids = {n: t.open_data_file(f).schema_arrow.field(n).metadata[b"PARQUET:field_id"] for n, f in files.items()}
    assert len(set(ids.values())) == 4
    evolved = SCHEMA
    for n in sorted(files):
        evolved = evolved.append(pa.field(n, pa.int64()))
    t.commit(adds=list(files.values()), schema=evolved)
    md = _metadata(storage, 2)
    assert {f["name"]: str(f["id"]).encode() for f in md["schemas"][-1]["fields"] if f["name"] in files} == ids


def test_table_at_the_storage_root(storage, ice):
    t = ice.create_table(storage, "", SCHEMA)
    _, f = _commit_batch(t, 0)
    t.commit(removes=[f])
    fresh = ice.open_table(storage, "")
    assert fresh.snapshot().files == () and fresh.open_data_file(fresh.snapshot(1).files[0]).read().num_rows == 20
    assert fresh.vacuum(retention_seconds=0)["files"] == [f.path] and not storage.exists(f.path)
