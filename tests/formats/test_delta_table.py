"""DeltaTable behaviour on memory, filesystem (and S3 where marked): create/open,
commits, snapshots and time travel, caching cost, checkpoints, schema evolution,
in-process conflicts, history, vacuum, log expiry, change data."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mongolake.formats.base import (CommitConflictError, SnapshotNotFoundError, TableError, TableExistsError,
                                    TableNotFoundError)
from mongolake.formats.delta import DeltaTable
from mongolake.storage import MemoryStorage

from .conftest import SCHEMA, CountingStorage, make_batch

STATS = ["_id", "_key", "age", "score", "profile", "seen"]


def _commit_batch(table, start, n=20, **kw):
    f = table.write_data_file(make_batch(start, n), stats_columns=STATS)
    return table.commit(adds=[f], **kw), f


def _log_names(storage, root="t"):
    return sorted(i.path.rsplit("/", 1)[1] for i in storage.list(f"{root}/_delta_log/"))


def test_create_open_exists(any_storage, delta):
    assert not delta.table_exists(any_storage, "db/c")
    with pytest.raises(TableNotFoundError):
        delta.open_table(any_storage, "db/c")
    t = delta.create_table(any_storage, "db/c", SCHEMA, properties={"mongolake.ns": "db.c"})
    assert delta.table_exists(any_storage, "db/c")
    with pytest.raises(TableExistsError):
        delta.create_table(any_storage, "db/c", SCHEMA)
    snap = delta.open_table(any_storage, "db/c/").snapshot()
    assert snap.version == 0 and snap.files == () and snap.properties == {"mongolake.ns": "db.c"}
    assert snap.schema.names == SCHEMA.names and snap.schema.field("profile").type == SCHEMA.field("profile").type
    assert t.snapshot().version == 0
    # round trip one commit on every backend, including S3
    v, f = _commit_batch(t, 0)
    fresh = delta.open_table(any_storage, "db/c").snapshot()
    assert v == 1 and fresh.files == (f,) and fresh.num_records == 20
    assert delta.open_table(any_storage, "db/c").open_data_file(f).read().num_rows == 20


def test_commit_round_trips_stats_tags_and_app_versions(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    f = t.write_data_file(make_batch(0, 50), stats_columns=STATS, tags={"level": "0"})
    assert f.path.startswith("part-") and f.path.endswith(".zstd.parquet")
    v = t.commit(adds=[f], app_id="wal", app_version=42, info={"documents": 50, "note": "x"})
    snap = DeltaTable(storage, "t").snapshot()           # a fresh handle parses the log
    assert v == 1 and snap.version == 1
    (got,) = snap.files
    assert got == f
    assert got.min_values["_key"] == b"\x10\x00\x00\x00\x00" and got.max_values["_key"] == b"\x10\x00\x00\x00\x31"
    assert got.tags == {"level": "0"} and "_doc" not in got.null_count
    assert snap.app_versions == {"wal": 42}
    commit = json.loads(storage.read("t/_delta_log/00000000000000000001.json").decode().splitlines()[0])
    info = commit["commitInfo"]
    assert info["engineInfo"] == "mongolake/0.1" and info["operation"] == "WRITE"
    assert info["operationParameters"] == {"documents": "50", "note": "x"}


def test_time_travel_by_version_and_timestamp(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    files = []
    for i in range(4):
        time.sleep(0.005)
        files.append(_commit_batch(t, i * 20)[1])
    t.commit(removes=[files[0]], operation="DELETE")
    fresh = DeltaTable(storage, "t")
    for v in range(1, 5):
        assert [f.path for f in fresh.snapshot(v).files] == [f.path for f in files[:v]]
    assert [f.path for f in fresh.snapshot().files] == [f.path for f in files[1:]]
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(6)
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(-1)
    hist = {c.version: c.timestamp_ms for c in fresh.history()}
    at = datetime.fromtimestamp(hist[2] / 1000, tz=timezone.utc)
    assert fresh.snapshot(timestamp=at).version == 2
    assert fresh.snapshot(timestamp=at + timedelta(microseconds=999)).version == 2
    assert fresh.snapshot(timestamp=datetime.now(timezone.utc) + timedelta(days=1)).version == 5
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert [c.version for c in fresh.history()] == [5, 4, 3, 2, 1, 0]
    assert [c.operation for c in fresh.history(limit=2)] == ["DELETE", "WRITE"]
    assert fresh.history()[-1].operation == "CREATE TABLE"


def test_snapshot_is_cheap_and_incremental():
    inner = MemoryStorage()
    counting = CountingStorage(inner)
    from mongolake.formats.delta import DeltaFormat

    DeltaFormat().create_table(inner, "t", SCHEMA)
    t = DeltaTable(counting, "t")
    other = DeltaTable(inner, "t")
    s1 = t.snapshot()
    counting.reset()
    for _ in range(5):
        assert t.snapshot() is s1                      # cached object, nothing changed
    assert dict(counting.calls) == {"read": 5}          # one read attempt of the next commit each
    for i in range(3):
        _commit_batch(other, i * 20)
    counting.reset()
    s2 = t.snapshot()
    assert s2.version == 3 and len(s2.files) == 3
    # 3 new commits + the miss after them + the _last_checkpoint hint: no listing, no re-reading
    assert dict(counting.calls) == {"read": 5}
    counting.reset()
    v = t.commit(adds=[t.write_data_file(make_batch(100, 5))])
    assert t.snapshot().version == v and counting.calls["list"] == 0
    counting.reset()
    _commit_batch(other, 500)
    assert t.cached_snapshot().version == v and not counting.calls      # no I/O at all
    assert t.snapshot().version == v + 1


@pytest.mark.parametrize("interval", [None, 3])
def test_checkpoints_and_replay_from_them(storage, delta, interval):
    props = {} if interval is None else {"delta.checkpointInterval": str(interval)}
    t = delta.create_table(storage, "t", SCHEMA, properties=props)
    every = interval or 10
    files = [_commit_batch(t, i * 20, app_id="wal", app_version=i)[1] for i in range(every + 2)]
    t.commit(removes=files[:2], operation="DELETE")
    names = _log_names(storage)
    assert f"{every:020d}.checkpoint.parquet" in names and "_last_checkpoint" in names
    hint = json.loads(storage.read("t/_delta_log/_last_checkpoint"))
    assert hint["version"] >= every and hint["numOfAddFiles"] >= 1
    expected = t.snapshot()
    counting = CountingStorage(storage)
    fresh = DeltaTable(counting, "t").snapshot()
    assert fresh.files == expected.files and fresh.app_versions == expected.app_versions == {"wal": every + 1}
    assert fresh.properties == expected.properties and fresh.timestamp_ms == expected.timestamp_ms
    commit_reads = counting.calls["read"]
    # hint + checkpoint + commits after it + the miss + the checkpointed commit (its timestamp)
    assert commit_reads <= expected.version - hint["version"] + 4      # not a replay from version 0
    # older versions: from the checkpoint and from plain JSON replay
    assert [f.path for f in DeltaTable(storage, "t").snapshot(2).files] == [f.path for f in files[:2]]
    assert len(DeltaTable(storage, "t").snapshot(every + 1).files) == every + 1


def test_checkpoint_keeps_tombstones_for_vacuum(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA, properties={"delta.checkpointInterval": "2"})
    _, f1 = _commit_batch(t, 0)
    t.commit(removes=[f1])                                # version 2: checkpoint with a tombstone
    assert "00000000000000000002.checkpoint.parquet" in _log_names(storage)
    fresh = DeltaTable(storage, "t")
    assert fresh.vacuum(retention_seconds=3600)["files_deleted"] == 0
    assert storage.exists(fresh.file_path(f1))


def test_schema_evolution_add_columns_and_refuse_type_change(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    _commit_batch(t, 0)
    evolved = pa.schema(list(SCHEMA.remove(SCHEMA.get_field_index("profile")))
                        + [pa.field("profile", pa.struct([("level", pa.int32()), ("name", pa.string()),
                                                          ("vip", pa.bool_())])),
                           pa.field("city", pa.string())])
    data = make_batch(100, 10).append_column("city", pa.array(["Paris"] * 10))
    f = t.write_data_file(data, stats_columns=STATS + ["city"])
    v = t.commit(adds=[f], schema=evolved)
    snap = DeltaTable(storage, "t").snapshot()
    assert v == 2 and snap.schema.field("city").type == pa.string()
    assert snap.schema.field("profile").type.field("vip").type == pa.bool_()
    assert snap.files[1].min_values["city"] == "Paris" and "city" not in snap.files[0].null_count
    bad = evolved.set(evolved.get_field_index("age"), pa.field("age", pa.string()))
    with pytest.raises(TableError, match="age"):
        t.commit(schema=bad)
    with pytest.raises(TableError, match="dropped"):
        t.commit(schema=pa.schema([("_id", pa.string())]))
    with pytest.raises(TableError, match="age"):        # data of the wrong type for the table
        t.write_data_file(pa.table({"age": ["x"]}))
    assert t.snapshot().version == 2


def test_conflicts_between_handles(storage, delta):
    delta.create_table(storage, "t", SCHEMA)
    a, b = DeltaTable(storage, "t"), DeltaTable(storage, "t")
    _, f1 = _commit_batch(a, 0)
    base = b.snapshot().version
    # a concurrent append does not conflict: b rebases on top of it
    _commit_batch(a, 100)
    v = b.commit(adds=[b.write_data_file(make_batch(200, 5))], read_version=base)
    assert v == base + 2
    # removing a file someone else removed meanwhile conflicts
    a.commit(removes=[f1], read_version=v)
    with pytest.raises(CommitConflictError, match="removed"):
        b.commit(removes=[f1], read_version=v)
    with pytest.raises(CommitConflictError):
        b.commit(removes=[f1])                          # without read_version: it is simply gone
    # a concurrent transaction of the same application conflicts
    cur = b.snapshot().version
    a.commit(app_id="wal", app_version=1)
    with pytest.raises(CommitConflictError, match="wal"):
        b.commit(app_id="wal", app_version=2, read_version=cur)
    with pytest.raises(TableError):
        b.commit(read_version=cur + 100)
    assert DeltaTable(storage, "t").snapshot().app_versions == {"wal": 1}


def test_concurrent_schema_changes_merge_or_conflict(storage, delta):
    delta.create_table(storage, "t", SCHEMA)
    a, b = DeltaTable(storage, "t"), DeltaTable(storage, "t")
    base = b.snapshot().version
    a.commit(schema=SCHEMA.append(pa.field("x", pa.int64())))
    b.commit(schema=SCHEMA.append(pa.field("y", pa.string())), read_version=base)
    assert DeltaTable(storage, "t").snapshot().schema.names[-2:] == ["y", "x"]
    base = b.snapshot().version
    a.commit(schema=a.snapshot().schema.append(pa.field("z", pa.int64())))
    with pytest.raises(CommitConflictError, match="schema"):
        b.commit(schema=b.snapshot(base).schema.append(pa.field("z", pa.string())), read_version=base)


def test_vacuum_respects_retention_and_dry_run(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    _, f1 = _commit_batch(t, 0)
    _, f2 = _commit_batch(t, 100)
    t.commit(removes=[f1])
    orphan = t.write_data_file(make_batch(500, 3))        # written, never committed
    time.sleep(0.02)
    assert t.vacuum(retention_seconds=3600) == {"files_deleted": 0, "bytes_deleted": 0, "files": [],
                                                "dry_run": False}
    dry = t.vacuum(retention_seconds=0, dry_run=True)
    assert sorted(dry["files"]) == sorted([f1.path, orphan.path]) and dry["bytes_deleted"] == f1.size + orphan.size
    assert storage.exists(t.file_path(f1))
    done = t.vacuum(retention_seconds=0)
    assert done["files_deleted"] == 2 and not storage.exists(t.file_path(f1))
    assert storage.exists(t.file_path(f2)) and storage.exists("t/_delta_log/00000000000000000000.json")
    assert t.open_data_file(t.snapshot().files[0]).read().num_rows == 20


def test_change_data_files(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA, properties={"delta.enableChangeDataFeed": "true"})
    proto = json.loads(storage.read("t/_delta_log/00000000000000000000.json").decode().splitlines()[1])
    assert proto == {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}}
    changes = make_batch(0, 5).append_column("_change_type", pa.array(["insert"] * 5))
    cdc = t.write_data_file(changes, subdir="_change_data", stats_columns=[])
    assert cdc.path.startswith("_change_data/part-")
    f = t.write_data_file(make_batch(0, 5))
    v = t.commit(adds=[f], cdc=[cdc])
    actions = [json.loads(line) for line in storage.read(f"t/_delta_log/{v:020d}.json").decode().splitlines()]
    (c,) = [a["cdc"] for a in actions if "cdc" in a]
    assert c["path"] == cdc.path and c["dataChange"] is False and c["size"] == cdc.size
    assert [x.path for x in t.snapshot().files] == [f.path]     # change files are not table files
    time.sleep(0.02)
    assert cdc.path in t.vacuum(retention_seconds=0, dry_run=True)["files"]
    assert cdc.path not in t.vacuum(retention_seconds=3600, dry_run=True)["files"]


def test_enabling_cdf_later_upgrades_protocol(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    v = t.commit(properties={"delta.enableChangeDataFeed": "true"}, operation="SET TBLPROPERTIES")
    actions = [json.loads(x) for x in storage.read(f"t/_delta_log/{v:020d}.json").decode().splitlines()]
    assert {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4}} in actions
    assert t.snapshot().properties["delta.enableChangeDataFeed"] == "true"


def test_expire_snapshots_drops_old_log(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA, properties={"delta.checkpointInterval": "3"})
    for i in range(7):
        _commit_batch(t, i * 20)
    res = t.expire_snapshots(older_than_ms=int(time.time() * 1000) + 1000)
    assert res["earliest_version"] == 6 and res["snapshots_expired"] == 6
    names = _log_names(storage)
    assert "00000000000000000000.json" not in names and "00000000000000000006.checkpoint.parquet" in names
    fresh = DeltaTable(storage, "t")
    assert fresh.snapshot().version == 7 and len(fresh.snapshot().files) == 7
    assert len(fresh.snapshot(6).files) == 6
    with pytest.raises(SnapshotNotFoundError):
        fresh.snapshot(4)
    assert [c.version for c in fresh.history()] == [7, 6]
    assert t.expire_snapshots(older_than_ms=0)["snapshots_expired"] == 0


@pytest.mark.parametrize("codec,label", [("zstd", "zstd"), ("snappy", "snappy"), ("gzip", "gzip"),
                                         ("lz4", "lz4"), ("none", "uncompressed")])
def test_write_data_file_codecs_and_row_groups(codec, label, delta):
    storage = MemoryStorage()
    t = delta.create_table(storage, "t", SCHEMA)
    f = t.write_data_file(make_batch(0, 100), compression=codec, row_group_size=30)
    assert f.path.endswith(f".{label}.parquet") and f.num_records == 100
    meta = t.open_data_file(f).metadata
    assert meta.num_row_groups == 4
    col = meta.row_group(0).column(meta.schema.names.index("age"))
    assert col.statistics is not None and col.statistics.has_min_max
    expected = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    assert col.compression == expected
    with pytest.raises(TableError):
        t.write_data_file(make_batch(0, 1), compression="brotli-ish")


def test_ns_timestamps_are_stored_as_microseconds(delta):
    storage = MemoryStorage()
    t = delta.create_table(storage, "t", pa.schema([("ts", pa.timestamp("us", tz="UTC"))]))
    data = pa.table({"ts": pa.array([1_000_000_000_000_000_000], pa.timestamp("ns"))})
    f = t.write_data_file(data)
    read = t.open_data_file(f).read()
    assert read.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert pq.ParquetFile(storage.open_input(t.file_path(f))).metadata.num_rows == 1
    with pytest.raises(TableError):       # sub-microsecond precision would be lost
        t.write_data_file(pa.table({"ts": pa.array([1_000_000_000_000_000_001], pa.timestamp("ns"))}))


def test_open_without_last_checkpoint_hint_uses_listing(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA, properties={"delta.checkpointInterval": "2"})
    for i in range(5):
        _commit_batch(t, i * 20)
    storage.delete("t/_delta_log/_last_checkpoint")
    storage.delete("t/_delta_log/00000000000000000000.json")    # only the checkpoints can rebuild it
    counting = CountingStorage(storage)
    snap = DeltaTable(counting, "t").snapshot()
    assert snap.version == 5 and len(snap.files) == 5 and counting.calls["list"] == 1


def _append_actions(storage, version, actions):
    data = "".join(json.dumps(a) + "\n" for a in actions).encode()
    storage.write_conditional(f"t/_delta_log/{version:020d}.json", data, None)


def test_unsupported_protocol_features_are_refused(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    _commit_batch(t, 0)
    _append_actions(storage, 2, [{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                                               "readerFeatures": ["deletionVectors"],
                                               "writerFeatures": ["deletionVectors"]}}])
    with pytest.raises(TableError, match="deletionVectors"):
        DeltaTable(storage, "t").snapshot()
    assert len(DeltaTable(storage, "t").snapshot(1).files) == 1     # older versions stay readable


def test_writing_refuses_constraints_but_reading_works(storage, delta):
    t = delta.create_table(storage, "t", SCHEMA)
    md = json.loads(storage.read("t/_delta_log/00000000000000000000.json").decode().splitlines()[2])["metaData"]
    md["configuration"] = {"delta.constraints.positive": "age > 0"}
    _append_actions(storage, 1, [{"metaData": md}])
    fresh = DeltaTable(storage, "t")
    assert fresh.snapshot().properties == {"delta.constraints.positive": "age > 0"}
    with pytest.raises(TableError, match="CHECK"):
        fresh.commit(adds=[fresh.write_data_file(make_batch(0, 1))])
    md["configuration"] = {"delta.appendOnly": "true"}
    _append_actions(storage, 2, [{"metaData": md}])
    _, f = _commit_batch(fresh, 0)
    with pytest.raises(TableError, match="append-only"):
        fresh.commit(removes=[f])
