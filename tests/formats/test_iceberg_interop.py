"""Interoperability with pyiceberg: it reads MongoLake's Iceberg tables from their
metadata file (StaticTable) and by name through the SQLite SQL catalog, at the
latest and at older snapshots, prunes files with our column metrics, reads
schema-evolved tables, and decodes our manifests' metrics."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog.sql import SqlCatalog as PyIcebergSqlCatalog
from pyiceberg.expressions import And, EqualTo, GreaterThan, GreaterThanOrEqual, LessThan
from pyiceberg.table import StaticTable

from mongolake.formats.iceberg import IcebergFormat, IcebergTable
from mongolake.formats.iceberg.sqlcatalog import SqlCatalog
from mongolake.storage import open_storage
from tests.s3util import s3_options

from .conftest import SCHEMA, make_batch

STATS = ["_id", "_key", "age", "score", "profile", "seen"]
COLUMNS = ["_id", "_key", "_doc", "age", "score", "profile", "seen"]


def _ours(table: IcebergTable, version: int | None = None) -> list[dict]:
    snap = table.snapshot(version)
    parts = [table.open_data_file(f).read() for f in snap.files]
    if not parts:
        return []
    rows = pa.concat_tables(parts, promote_options="permissive").to_pylist()
    return sorted(({k: r.get(k) for k in snap.schema.names} for r in rows), key=lambda r: r["_id"])


def _theirs(arrow: pa.Table) -> list[dict]:
    return sorted(arrow.to_pylist(), key=lambda r: r["_id"])


def _build(tmp_path, catalog_uri: str | None = None) -> tuple[IcebergTable, list]:
    """A table with 4 appends, one copy-on-write update and one delete."""
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    table = IcebergFormat(catalog_uri=catalog_uri).create_table(storage, "db/coll", SCHEMA)
    files = []
    for i in range(4):
        f = table.write_data_file(make_batch(i * 100, 50), stats_columns=STATS)
        table.commit(adds=[f], app_id="wal", app_version=i)
        files.append(f)
    # update: rewrite file 1 without its first 10 rows, plus those rows changed in a new file
    old = table.open_data_file(files[1]).read()
    kept = table.write_data_file(old.slice(10), stats_columns=STATS)
    changed = make_batch(100, 10)
    changed = changed.set_column(changed.schema.get_field_index("age"), "age", pa.array([99] * 10, pa.int64()))
    upd = table.write_data_file(changed, stats_columns=STATS)
    table.commit(adds=[kept, upd], removes=[files[1]], operation="UPDATE")
    table.commit(removes=[files[0]], operation="DELETE")
    return table, files


def _metadata_uri(table: IcebergTable) -> str:
    return table.metadata_uri(table.refresh_state().version)


def test_static_table_reads_latest_and_older_snapshots(tmp_path):
    table, _ = _build(tmp_path)
    tbl = StaticTable.from_metadata(_metadata_uri(table))
    assert tbl.format_version == 2 and tbl.metadata.last_sequence_number == 6
    assert _theirs(tbl.scan().to_arrow()) == _ours(table)
    snaps = {s.sequence_number: s for s in tbl.snapshots()}
    assert sorted(snaps) == [1, 2, 3, 4, 5, 6]
    assert [snaps[v].summary.operation.value for v in range(1, 7)] == ["append"] * 4 + ["overwrite", "delete"]
    for v in range(1, 7):
        assert snaps[v].snapshot_id == table.snapshot(v).snapshot_id
        assert _theirs(tbl.scan(snapshot_id=snaps[v].snapshot_id).to_arrow()) == _ours(table, v)
    assert len(_ours(table)) == 150


def test_sql_catalog_opens_tables_by_name(tmp_path):
    uri = f"sqlite:///{tmp_path}/catalog.db"
    table, _ = _build(tmp_path, catalog_uri=uri)
    cat = PyIcebergSqlCatalog("mongolake", uri=uri)
    assert ("db",) in cat.list_namespaces() and cat.list_tables("db") == [("db", "coll")]
    tbl = cat.load_table("db.coll")
    assert tbl.metadata_location == _metadata_uri(table)
    assert _theirs(tbl.scan().to_arrow()) == _ours(table)
    # a handle opened later (also from the registered default format with the option set) keeps it current
    fmt = IcebergFormat(catalog_uri=uri)
    again = fmt.open_table(table.storage, "db/coll")
    again.commit(adds=[again.write_data_file(make_batch(1000, 5), stats_columns=STATS)])
    tbl = cat.load_table("db.coll")
    assert tbl.metadata_location.endswith("/v8.metadata.json") and len(tbl.scan().to_arrow()) == 155
    # the row never moves backwards (a slower writer registering an older version)
    ours = SqlCatalog(uri)
    assert not ours.register("db", "coll", table.metadata_uri(3))
    assert ours.lookup("db", "coll").endswith("/v8.metadata.json")


def test_table_property_names_the_catalog_and_identifier(tmp_path):
    uri = f"sqlite:///{tmp_path}/cat2.db"
    cat = PyIcebergSqlCatalog("mongolake", uri=uri)          # pyiceberg creates the catalog tables first
    cat.create_namespace("other")
    storage = open_storage(str(tmp_path / "s2"), fsync=False)
    t = IcebergFormat().create_table(storage, "x", SCHEMA, properties={
        "mongolake.iceberg.catalog-uri": uri, "mongolake.iceberg.namespace": "lake.mongo",
        "mongolake.iceberg.name": "people"})
    t.commit(adds=[t.write_data_file(make_batch(0, 3))])
    tbl = cat.load_table(("lake", "mongo", "people"))
    assert len(tbl.scan().to_arrow()) == 3
    assert sorted(cat.list_namespaces()) == [("lake",), ("other",)]


def test_plan_files_skips_files_our_bounds_exclude(tmp_path):
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    table = IcebergFormat().create_table(storage, "db/coll", SCHEMA)
    for i in range(5):                  # keys/ids/seen increase by file; ages 0..89 wrap
        table.commit(adds=[table.write_data_file(make_batch(i * 20, 20), stats_columns=STATS)])
    table.commit(adds=[table.write_data_file(make_batch(1000, 20), stats_columns=["_key"])])  # no age stats
    tbl = StaticTable.from_metadata(_metadata_uri(table))

    def planned(expr) -> int:
        return len(list(tbl.scan(row_filter=expr).plan_files()))

    assert planned(EqualTo("_id", "id000045")) == 1 + 1           # + the file without _id stats
    assert planned(EqualTo("_key", b"\x10" + (45).to_bytes(4, "big"))) == 1
    assert planned(GreaterThanOrEqual("age", 85)) == 1 + 1        # ages 80..89 of file 4 + the stats-less file
    assert planned(GreaterThan("age", 89)) == 1                    # only the stats-less file might match
    assert planned(And(GreaterThan("age", 20), LessThan("age", 40))) == 2 + 1
    assert planned(EqualTo("profile.level", 42)) == 1              # nested leaf bounds (0..9): none of ours
    assert planned(GreaterThan("seen", "2024-01-01T00:01:30+00:00")) == 1 + 1
    got = tbl.scan(row_filter=EqualTo("_key", b"\x10" + (45).to_bytes(4, "big"))).to_arrow()
    assert got.column("_id").to_pylist() == ["id000045"]


def test_schema_evolved_table_reads_fine(tmp_path):
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    table = IcebergFormat().create_table(storage, "db/coll", SCHEMA)
    table.commit(adds=[table.write_data_file(make_batch(0, 10), stats_columns=STATS)])
    evolved = pa.schema(list(SCHEMA.remove(SCHEMA.get_field_index("profile")))
                        + [pa.field("profile", pa.struct([("level", pa.int32()), ("name", pa.string()),
                                                          ("vip", pa.bool_())])),
                           pa.field("city", pa.string())])
    data = make_batch(10, 10)
    profile = pa.array([{"level": 1, "name": "n", "vip": True}] * 10, evolved.field("profile").type)
    data = data.set_column(data.schema.get_field_index("profile"), "profile", profile)
    data = data.append_column("city", pa.array(["Paris"] * 10))
    table.commit(adds=[table.write_data_file(data, stats_columns=STATS + ["city"])], schema=evolved)
    tbl = StaticTable.from_metadata(_metadata_uri(table))
    got = tbl.scan().to_arrow()
    assert got.schema.names == evolved.names and len(got) == 20
    cities = pc.fill_null(got.column("city"), "-").to_pylist()
    assert sorted(cities) == ["-"] * 10 + ["Paris"] * 10
    vip = [p["vip"] if p else None for p in got.column("profile").to_pylist()]
    assert vip.count(True) == 10
    # the new file's bounds exclude it; the old file has no metrics for the new column: might match
    assert len(list(tbl.scan(row_filter=EqualTo("city", "Rome")).plan_files())) == 1
    old = [s for s in tbl.snapshots() if s.sequence_number == 1][0]
    assert len(tbl.scan(snapshot_id=old.snapshot_id).to_arrow()) == 10


def test_pyiceberg_decodes_our_metrics(tmp_path):
    storage = open_storage(str(tmp_path / "store"), fsync=False)
    table = IcebergFormat().create_table(storage, "db/coll", SCHEMA)
    f = table.write_data_file(make_batch(0, 30), stats_columns=["_key", "age", "seen"])
    table.commit(adds=[f])
    tbl = StaticTable.from_metadata(_metadata_uri(table))
    (entry,) = [e for m in tbl.current_snapshot().manifests(tbl.io) for e in m.fetch_manifest_entry(tbl.io)]
    df = entry.data_file
    assert df.record_count == 30 and df.file_size_in_bytes == f.size and df.file_path.endswith(f.path)
    assert set(df.null_value_counts) == {2, 4, 7} == set(df.lower_bounds)    # _key, age, seen only
    assert df.null_value_counts[4] == f.null_count["age"] and entry.sequence_number == 1
    files = tbl.inspect.files().to_pylist()
    metrics = files[0]["readable_metrics"]
    assert metrics["_key"]["lower_bound"] == f.min_values["_key"] and metrics["age"]["upper_bound"] == 29
    assert metrics["seen"]["lower_bound"] == f.min_values["seen"]
    assert metrics["_doc"]["null_value_count"] is None


def test_static_table_on_s3(s3_server, s3_url):
    endpoint, _ = s3_server
    storage = open_storage(s3_url, **s3_options(endpoint))
    table = IcebergFormat().create_table(storage, "db/coll", SCHEMA)
    for i in range(2):
        table.commit(adds=[table.write_data_file(make_batch(i * 10, 10), stats_columns=STATS)])
    uri = _metadata_uri(table)
    assert uri.startswith(s3_url + "/db/coll/metadata/")
    tbl = StaticTable.from_metadata(uri, properties={"s3.endpoint": endpoint, "s3.access-key-id": "testing",
                                                     "s3.secret-access-key": "testing", "s3.region": "us-east-1"})
    assert _theirs(tbl.scan().to_arrow()) == _ours(table)


@pytest.mark.parametrize("version", [1, 2])
def test_our_file_lists_match_pyiceberg(tmp_path, version):
    """Our reader and pyiceberg agree on the files of every snapshot."""
    table, _ = _build(tmp_path)
    tbl = StaticTable.from_metadata(_metadata_uri(table))
    snap = [s for s in tbl.snapshots() if s.sequence_number == version][0]
    theirs = sorted(t.file.file_path.rsplit("/", 1)[1] for t in tbl.scan(snapshot_id=snap.snapshot_id).plan_files())
    ours = sorted(f.path.rsplit("/", 1)[1] for f in table.snapshot(version).files)
    assert theirs == ours
