"""Iceberg v2 position delete files: written by ``commit(position_deletes=...)``, read
back by our snapshots (``DataFile.deletes``) and by pyiceberg (which applies them),
at the latest and at older snapshots; removing a data file drops its delete files;
vacuum keeps the live ones; summaries count them."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from pyiceberg.table import StaticTable

from mongolake.formats.base import CommitConflictError
from mongolake.formats.iceberg import IcebergFormat, IcebergTable
from mongolake.formats.iceberg.deletes import PATH_ID, POS_ID
from mongolake.formats.iceberg.manifest import CONTENT_DELETES
from mongolake.storage import open_storage

from .conftest import SCHEMA, make_batch

STATS = ["_id", "_key", "age", "score", "profile", "seen"]


def _ours(table: IcebergTable, version: int | None = None) -> list[str]:
    """Live ``_id`` values of a snapshot, deleted positions masked, sorted."""
    snap = table.snapshot(version)
    out = []
    for f in snap.files:
        ids = table.open_data_file(f).read(columns=["_id"]).column(0).to_pylist()
        dead = set(f.deletes)
        out += [v for i, v in enumerate(ids) if i not in dead]
    return sorted(out)


def _theirs(table: IcebergTable, version: int | None = None) -> list[str]:
    st = table.refresh_state()
    static = StaticTable.from_metadata(table.metadata_uri(st.version))
    sid = None if version is None else table.snapshot(version).snapshot_id
    return sorted(static.scan(snapshot_id=sid, selected_fields=("_id",)).to_arrow().column("_id").to_pylist())


@pytest.fixture
def table(tmp_path) -> IcebergTable:
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    t = IcebergFormat().create_table(storage, "db/coll", SCHEMA)
    return t


def test_position_deletes_read_by_us_and_pyiceberg(table):
    f1 = table.write_data_file(make_batch(0, 100), stats_columns=STATS, row_group_size=30)
    f2 = table.write_data_file(make_batch(100, 50), stats_columns=STATS)
    v1 = table.commit(adds=[f1, f2])
    assert table.supports_position_deletes
    # delete rows 3, 40 and 99 of f1 (unsorted, with a duplicate) and add their new versions
    upd = table.write_data_file(make_batch(1000, 2), stats_columns=STATS)
    v2 = table.commit(adds=[upd], position_deletes={f1.path: [99, 3, 40, 3]}, operation="UPDATE")
    snap = table.snapshot()
    by_path = {f.path: f for f in snap.files}
    assert by_path[f1.path].deletes == (3, 40, 99)
    assert by_path[f1.path].live_records == 97
    assert by_path[f2.path].deletes == ()
    assert snap.num_records == 97 + 50 + 2
    expected = sorted({f"id{i:06d}" for i in range(150)} - {"id000003", "id000040", "id000099"}
                      | {"id001000", "id001001"})
    assert _ours(table) == expected
    assert _theirs(table) == expected
    # the older snapshot still has every row, for us and for pyiceberg
    assert _ours(table, v1) == _theirs(table, v1) == sorted(f"id{i:06d}" for i in range(150))
    assert all(f.deletes == () for f in table.snapshot(v1).files)
    # a second delete file on the same data file: the union applies
    v3 = table.commit(position_deletes={f1.path: [0, 40]}, operation="DELETE")
    assert {f.path: f for f in table.snapshot().files}[f1.path].deletes == (0, 3, 40, 99)
    exp3 = [x for x in expected if x != "id000000"]
    assert _ours(table) == _theirs(table) == exp3
    assert _ours(table, v2) == _theirs(table, v2) == expected
    # a fresh handle (everything read from storage) sees the same
    fresh = IcebergFormat().open_table(table.storage, "db/coll")
    assert {f.path: f.deletes for f in fresh.snapshot().files} == {f.path: f.deletes for f in table.snapshot().files}
    assert {f.path: f.deletes for f in fresh.snapshot(v2).files} == {f.path: f.deletes
                                                                     for f in table.snapshot(v2).files}
    assert v3 == v2 + 1


def test_delete_file_layout_and_summary(table):
    f1 = table.write_data_file(make_batch(0, 20), stats_columns=STATS)
    table.commit(adds=[f1])
    table.commit(position_deletes={f1.path: [5, 1]}, operation="DELETE")
    st = table.refresh_state()
    summary = st.head.snapshot["summary"]
    assert summary["operation"] == "delete"
    assert summary["added-delete-files"] == "1"
    assert summary["added-position-deletes"] == "2"
    assert summary["total-delete-files"] == "1"
    assert summary["total-position-deletes"] == "2"
    assert summary["total-records"] == "20"
    delete_manifests = [mf for mf in st.head.manifests if mf.content == CONTENT_DELETES]
    assert len(delete_manifests) == 1 and delete_manifests[0].added_rows == 2
    (dpath, dlive), = st.head.deletes.items()
    t = pq.read_table(table.storage.local_path(table.storage_path(dpath)))
    fields = {f.name: int(f.metadata[b"PARQUET:field_id"]) for f in t.schema}
    assert fields == {"file_path": PATH_ID, "pos": POS_ID}
    assert t.column("pos").to_pylist() == [1, 5]
    assert t.column("file_path").to_pylist() == [table.uri(f1.path)] * 2
    assert not t.schema.field("pos").nullable
    # pyiceberg sees a delete file in the plan
    static = StaticTable.from_metadata(table.metadata_uri(st.version))
    tasks = list(static.scan().plan_files())
    assert len(tasks) == 1 and len(tasks[0].delete_files) == 1


def test_removing_data_file_drops_its_delete_files(table):
    f1 = table.write_data_file(make_batch(0, 30), stats_columns=STATS)
    f2 = table.write_data_file(make_batch(30, 30), stats_columns=STATS)
    table.commit(adds=[f1, f2])
    table.commit(position_deletes={f1.path: [0, 1], f2.path: [2]})
    assert len(table.refresh_state().head.deletes) == 2
    # compaction-style rewrite of f1 without its deleted rows
    data = table.open_data_file(f1).read()
    kept = table.write_data_file(data.slice(2), stats_columns=STATS)
    v = table.commit(adds=[kept], removes=[f1], operation="OPTIMIZE")
    st = table.refresh_state()
    assert len(st.head.deletes) == 1
    summary = st.head.snapshot["summary"]
    assert summary["removed-delete-files"] == "1" and summary["total-delete-files"] == "1"
    assert summary["total-position-deletes"] == "1"
    expected = sorted(f"id{i:06d}" for i in range(60) if i not in (0, 1, 32))
    assert _ours(table) == _theirs(table) == expected
    fresh = IcebergFormat().open_table(table.storage, "db/coll")
    assert len(fresh.refresh_state().head.deletes) == 1
    assert _ours(fresh, v) == expected
    # vacuum with no retention keeps the live delete file and drops the removed one
    out = table.vacuum(retention_seconds=0)
    assert any("delete-" in p for p in out["files"])
    assert _ours(table) == _theirs(table) == expected


def test_position_delete_conflicts(table):
    f1 = table.write_data_file(make_batch(0, 10), stats_columns=STATS)
    table.commit(adds=[f1])
    with pytest.raises(CommitConflictError):
        table.commit(position_deletes={"data/nope.parquet": [1]})
    other = IcebergFormat().open_table(table.storage, "db/coll")
    rv = table.snapshot().version
    other.commit(removes=[f1])
    with pytest.raises(CommitConflictError):
        table.commit(position_deletes={f1.path: [1]}, read_version=rv)
    assert table.snapshot().files == ()


def test_manifest_merge_keeps_delete_manifests_apart(tmp_path):
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    table = IcebergFormat().create_table(storage, "db/m", SCHEMA,
                                         properties={"commit.manifest.min-count-to-merge": "3"})
    files = []
    for i in range(4):
        f = table.write_data_file(make_batch(i * 10, 10), stats_columns=STATS)
        table.commit(adds=[f])
        files.append(f)
    for i, f in enumerate(files):
        table.commit(position_deletes={f.path: [i]})
    st = table.refresh_state()
    assert {mf.content for mf in st.head.manifests} == {0, 1}
    expected = sorted(f"id{i * 10 + j:06d}" for i in range(4) for j in range(10) if j != i)
    assert _ours(table) == _theirs(table) == expected
    fresh = IcebergFormat().open_table(storage, "db/m")
    assert _ours(fresh) == expected
    assert sum(len(f.deletes) for f in fresh.snapshot().files) == 4


def test_concurrent_position_deletes_on_one_file_all_apply(table):
    import threading

    f1 = table.write_data_file(make_batch(0, 200), stats_columns=STATS)
    table.commit(adds=[f1])
    handles = [IcebergFormat().open_table(table.storage, "db/coll") for _ in range(2)]
    errors = []

    def work(h, start):
        try:
            for k in range(8):
                h.commit(position_deletes={f1.path: [start + 2 * k]}, operation="DELETE")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(h, i)) for i, h in enumerate(handles)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (f,) = table.snapshot().files
    assert f.deletes == tuple(range(16))
    assert table.refresh_state().head.snapshot["summary"]["total-position-deletes"] == "16"
    expected = sorted(f"id{i:06d}" for i in range(16, 200))
    assert _ours(table) == _theirs(table) == expected
