"""Interoperability with delta-rs (the ``deltalake`` package): it reads what we
write (every version, evolved schemas, stats, checkpoints, change data feed) and we
read what it writes (including its checkpoints)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable as RsTable
from deltalake import write_deltalake

from mongolake.formats.delta import DeltaTable

from .conftest import SCHEMA, make_batch

STATS = ["_id", "_key", "age", "score", "profile", "seen"]
PLAIN = ["_id", "_key", "_doc", "age", "score", "profile", "seen"]


def _rows(table: pa.Table, columns=PLAIN) -> list[dict]:
    return sorted(table.select([c for c in columns if c in table.column_names]).to_pylist(), key=lambda r: r["_id"])


def _rs_rows(uri: str, version: int | None = None, columns=PLAIN) -> list[dict]:
    dt = RsTable(uri, version=version)
    # delta-rs reads string/binary as view types: normalise for comparison
    t = dt.to_pyarrow_table()
    t = t.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_string_view(f.type) else
                                   pa.binary() if pa.types.is_binary_view(f.type) else f.type) for f in t.schema]))
    return _rows(t, columns)


def _build_history(t):
    """Versions 1..4: three appends, then a rewrite removing one file; returns the
    expected rows at each version."""
    expected = {0: []}
    files, rows = [], []
    for i in range(3):
        batch = make_batch(i * 50, 50)
        files.append(t.write_data_file(batch, stats_columns=STATS))
        t.commit(adds=[files[-1]])
        rows += batch.to_pylist()
        expected[i + 1] = sorted(rows, key=lambda r: r["_id"])
    kept = make_batch(0, 50).slice(10)
    t.commit(adds=[t.write_data_file(kept, stats_columns=STATS)], removes=[files[0]], operation="DELETE")
    rows = kept.to_pylist() + make_batch(50, 100).to_pylist()
    expected[4] = sorted(rows, key=lambda r: r["_id"])
    return expected


def test_delta_rs_reads_every_version(fs, delta):
    t = delta.create_table(fs, "db/c", SCHEMA)
    expected = _build_history(t)
    uri = fs.local_path("db/c")
    for v, rows in expected.items():
        assert _rs_rows(uri, v) == rows, f"version {v}"
    assert _rs_rows(uri) == expected[4]
    hist = RsTable(uri).history()
    assert [h["operation"] for h in hist][:2] == ["DELETE", "WRITE"]
    assert hist[0]["engineInfo"] == "mongolake/0.1"


def test_delta_rs_reads_checkpointed_table_and_schema_evolution(fs, delta):
    t = delta.create_table(fs, "c", SCHEMA, properties={"delta.checkpointInterval": "3"})
    expected = _build_history(t)                                # checkpoint at version 3
    evolved = SCHEMA.append(pa.field("city", pa.string()))
    data = make_batch(500, 5).append_column("city", pa.array(["Oslo"] * 5))
    v = t.commit(adds=[t.write_data_file(data, stats_columns=STATS + ["city"])], schema=evolved)   # 5
    t.commit(adds=[t.write_data_file(make_batch(600, 5), stats_columns=STATS)])                   # 6: checkpoint
    names = {i.path.rsplit("/", 1)[1] for i in fs.list("c/_delta_log/")}
    assert {"00000000000000000003.checkpoint.parquet", "00000000000000000006.checkpoint.parquet"} <= names
    uri = fs.local_path("c")
    for version in (2, 3, 4):
        assert _rs_rows(uri, version) == expected[version]
    at5 = _rs_rows(uri, 5, columns=PLAIN + ["city"])
    assert len(at5) == 145 and sum(r["city"] == "Oslo" for r in at5) == 5
    latest = RsTable(uri)
    assert latest.version() == 6
    rows = _rs_rows(uri, columns=PLAIN + ["city"])
    assert len(rows) == 150 - 10 + 10
    assert {r["city"] for r in rows} == {None, "Oslo"}
    assert [r["city"] for r in rows if r["_id"] >= "id000500" and r["_id"] < "id000600"] == ["Oslo"] * 5
    assert [f.name for f in latest.schema().fields] == SCHEMA.names + ["city"]
    assert v == 5


def test_delta_rs_parses_our_stats_exactly(fs, delta):
    t = delta.create_table(fs, "s", SCHEMA)
    files = []
    for i in range(3):
        files.append(t.write_data_file(make_batch(i * 100, 100), stats_columns=STATS))
    t.commit(adds=files)
    acts = pa.table(RsTable(fs.local_path("s")).get_add_actions(flatten=True)).to_pylist()
    by_path = {a["path"]: a for a in acts}
    for f in files:
        a = by_path[f.path]
        assert a["num_records"] == f.num_records and a["size_bytes"] == f.size
        for col in ("_id", "age", "score", "profile.level", "profile.name", "seen"):
            assert a[f"min.{col}"] == f.min_values[col], col
            assert a[f"max.{col}"] == f.max_values[col], col
            assert a[f"null_count.{col}"] == f.null_count[col], col
        assert a["null_count._key"] == 0 and "min._key" not in a   # binary bounds live in tags only


def test_delta_rs_prunes_files_with_our_stats(fs, delta):
    t = delta.create_table(fs, "p", SCHEMA)
    for i in range(4):
        t.commit(adds=[t.write_data_file(make_batch(i * 100, 100), stats_columns=STATS)])
    ds = RsTable(fs.local_path("p")).to_pyarrow_dataset()
    assert len(list(ds.get_fragments())) == 4
    assert len(list(ds.get_fragments(filter=pc.field("_id") < "id000050"))) == 1
    assert len(list(ds.get_fragments(filter=pc.field("score") > 80.0))) == 1       # scores 75..99.75
    assert len(list(ds.get_fragments(filter=pc.field("age") > 1000))) == 0
    assert ds.to_table(filter=pc.field("_id") < "id000050").num_rows == 50


def test_delta_rs_load_cdf(fs, delta):
    t = delta.create_table(fs, "cdf", SCHEMA, properties={"delta.enableChangeDataFeed": "true"})
    f = t.write_data_file(make_batch(0, 10))
    v1 = t.commit(adds=[f])
    # update 3 rows: rewrite the file, record pre/post images as change data
    old = make_batch(0, 3)
    new = old.set_column(old.schema.get_field_index("age"), "age", pa.array([100, 101, 102], pa.int64()))
    changes = pa.concat_tables([
        old.append_column("_change_type", pa.array(["update_preimage"] * 3)),
        new.append_column("_change_type", pa.array(["update_postimage"] * 3))])
    cdc = t.write_data_file(changes, subdir="_change_data", stats_columns=[])
    rewritten = pa.concat_tables([new, make_batch(3, 7)])
    v2 = t.commit(adds=[t.write_data_file(rewritten)], removes=[f], cdc=[cdc], operation="UPDATE")
    reader = RsTable(fs.local_path("cdf")).load_cdf(starting_version=v1)
    cdf = pa.table(reader.read_all() if hasattr(reader, "read_all") else reader)
    assert set(SCHEMA.names) | {"_change_type"} <= set(cdf.column_names)
    got = sorted((r["_commit_version"], str(r["_change_type"]), str(r["_id"]), r["age"])
                 for r in cdf.select(["_commit_version", "_change_type", "_id", "age"]).to_pylist())
    assert [g for g in got if g[0] == v1] == sorted((v1, "insert", f"id{i:06d}", None if i % 7 == 0 else i)
                                                    for i in range(10))
    assert [g for g in got if g[0] == v2] == sorted(
        [(v2, "update_preimage", f"id{i:06d}", None if i == 0 else i) for i in range(3)]
        + [(v2, "update_postimage", f"id{i:06d}", 100 + i) for i in range(3)])


def test_we_read_delta_rs_tables_and_checkpoints(tmp_path):
    from mongolake.storage import FileStorage

    uri = str(tmp_path / "store" / "rs")
    schema = pa.schema([("_id", pa.string()), ("n", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")),
                        ("p", pa.struct([("x", pa.int64())]))])

    def batch(lo, hi):
        return pa.table({"_id": [f"k{i:03d}" for i in range(lo, hi)], "n": list(range(lo, hi)),
                         "ts": pa.array([i * 1_000_123 for i in range(lo, hi)], pa.timestamp("us", tz="UTC")),
                         "p": [{"x": i} for i in range(lo, hi)]}, schema=schema)

    write_deltalake(uri, batch(0, 10))
    write_deltalake(uri, batch(10, 20), mode="append")
    RsTable(uri).create_checkpoint()
    write_deltalake(uri, batch(20, 30), mode="append")
    write_deltalake(uri, batch(30, 40), mode="overwrite")
    storage = FileStorage(str(tmp_path / "store"), fsync=False)
    ours = DeltaTable(storage, "rs")
    snap = ours.snapshot()
    assert snap.version == 3 and snap.num_records == 10
    (f,) = snap.files
    assert f.min_values["n"] == 30 and f.max_values["n"] == 39 and f.null_count["n"] == 0
    assert f.min_values["p.x"] == 30
    # delta-rs writes timestamps at millisecond precision: our max is widened to stay a bound
    assert f.max_values["ts"] >= batch(39, 40).column("ts")[0].as_py() >= f.min_values["ts"]
    assert ours.open_data_file(f).read().column("n").to_pylist() == list(range(30, 40))
    for v, n in ((0, 10), (1, 20), (2, 30), (3, 10)):
        assert DeltaTable(storage, "rs").snapshot(v).num_records == n
    # delete the JSON commits the checkpoint covers: the table must still open from it
    storage.delete("rs/_delta_log/00000000000000000000.json")
    storage.delete("rs/_delta_log/00000000000000000001.json")
    fresh = DeltaTable(storage, "rs")
    assert fresh.snapshot().num_records == 10 and fresh.snapshot(1).num_records == 20
    assert [c.version for c in fresh.history()] == [3, 2]          # 0 and 1 are gone
    # and we can append to a delta-rs table; delta-rs reads the result
    v = fresh.commit(adds=[fresh.write_data_file(batch(40, 45))])
    assert RsTable(uri).to_pyarrow_table().num_rows == 15 and RsTable(uri).version() == v


def test_delta_rs_appends_to_our_table(fs, delta):
    t = delta.create_table(fs, "mix", SCHEMA)
    t.commit(adds=[t.write_data_file(make_batch(0, 10), stats_columns=STATS)])
    write_deltalake(fs.local_path("mix"), make_batch(10, 5), mode="append")
    snap = t.snapshot()
    assert snap.version == 2 and snap.num_records == 15
    rs_file = [f for f in snap.files if f.num_records == 5][0]
    assert rs_file.min_values["age"] == 10 and "_key" not in rs_file.null_count
    ops = [c.operation for c in t.history()]
    assert ops == ["WRITE", "WRITE", "CREATE TABLE"]
    assert json.loads(fs.read("mix/_delta_log/00000000000000000002.json").splitlines()[0])["commitInfo"]


@pytest.mark.parametrize("codec", ["snappy", "gzip", "lz4", "none"])
def test_delta_rs_reads_every_codec(fs, delta, codec):
    t = delta.create_table(fs, codec, SCHEMA)
    t.commit(adds=[t.write_data_file(make_batch(0, 20), compression=codec)])
    assert _rs_rows(fs.local_path(codec)) == sorted(make_batch(0, 20).to_pylist(), key=lambda r: r["_id"])


def test_delta_rs_opens_table_after_log_expiry(fs, delta):
    t = delta.create_table(fs, "exp", SCHEMA, properties={"delta.checkpointInterval": "4"})
    for i in range(6):
        t.commit(adds=[t.write_data_file(make_batch(i * 10, 10))])
    assert t.expire_snapshots(older_than_ms=2 ** 62)["earliest_version"] == 4
    uri = fs.local_path("exp")
    assert RsTable(uri).to_pyarrow_table().num_rows == 60
    assert RsTable(uri, version=4).to_pyarrow_table().num_rows == 40
