"""``mongolake import`` / ``export``: JSON Lines (canonical Extended JSON) round trips
byte for byte; CSV; errors; progress.

The lossless round trip runs on 20,000 documents in CI (about 10 s here); set
``MONGOLAKE_TRANSFER_DOCS=100000`` for the full 100,000 (about a minute on two busy
cores, measured lossless as well).
"""
from __future__ import annotations

import csv
import json
import os

import bson
import pytest

from mongolake import cli
from mongolake.admin import extjson
from mongolake.engine import Engine
from mongolake.query.bsonorder import CODEC_OPTIONS
from tests.admin.bsontypes import every_type, mixed

pytestmark = pytest.mark.usefixtures("restore_logging")

N_DOCS = int(os.environ.get("MONGOLAKE_TRANSFER_DOCS", "20000"))


def test_import_export_round_trip_is_lossless(tmp_path, capsys):
    raws = [bson.encode(mixed(i), codec_options=CODEC_OPTIONS) for i in range(N_DOCS)]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        f.writelines(extjson.dumps(r) + "\n" for r in raws)
    store = str(tmp_path / "lake")
    assert cli.main(["import", store, "app.things", str(src)]) == 0
    assert f"imported {N_DOCS} documents into app.things" in capsys.readouterr().err
    # the documents are in the table (flushed, nothing left in the WAL), byte for byte
    with Engine(store) as eng:
        assert eng.stats["recovered_batches"] == 0
        stored = {bson.decode(r, CODEC_OPTIONS)["_id"]: r for r in eng.find("app", "things", as_raw=True)}
    assert len(stored) == N_DOCS
    assert all(stored[i] == raws[i] for i in range(N_DOCS))
    assert cli.main(["export", store, "app.things", str(out)]) == 0
    assert f"exported {N_DOCS} documents" in capsys.readouterr().err
    exported = out.read_text(encoding="utf-8").splitlines()
    by_id = {extjson.loads(ln)["_id"]: ln for ln in exported}
    assert len(exported) == N_DOCS
    assert by_id.keys() == set(range(N_DOCS))
    # same text as the input, and the text parses back to the same BSON
    assert all(by_id[i] == extjson.dumps(raws[i]) for i in range(N_DOCS))
    assert all(bson.encode(extjson.loads(by_id[i]), codec_options=CODEC_OPTIONS) == raws[i] for i in range(0, N_DOCS, 97))


def test_every_type_document_through_the_store(tmp_path):
    doc = every_type(42)
    raw = bson.encode(doc, codec_options=CODEC_OPTIONS)
    src = tmp_path / "one.jsonl"
    src.write_text(extjson.dumps(raw) + "\n")
    store = str(tmp_path / "lake")
    assert cli.main(["import", store, "db.one", str(src)]) == 0
    out = tmp_path / "one.out.jsonl"
    assert cli.main(["export", store, "db.one", str(out)]) == 0
    assert out.read_text() == src.read_text()
    relaxed = tmp_path / "relaxed.jsonl"
    assert cli.main(["export", store, "db.one", str(relaxed), "--relaxed"]) == 0
    r = json.loads(relaxed.read_text())
    assert r["int32"] == 42 and r["int64"] == 42 and r["double"] == 43.5
    assert r["date"] == {"$date": "2024-02-29T12:30:15.123Z"}


def test_export_filter_and_missing_collection(tmp_path, capsys):
    store = str(tmp_path / "lake")
    with Engine(store) as eng:
        eng.insert("db", "c", [{"_id": i, "even": i % 2 == 0} for i in range(10)])
    out = tmp_path / "even.jsonl"
    assert cli.main(["export", store, "db.c", str(out), "--filter", '{"even": true}']) == 0
    assert sorted(json.loads(ln)["_id"]["$numberInt"] for ln in out.read_text().splitlines()) == \
        sorted(str(i) for i in range(0, 10, 2))
    assert cli.main(["export", store, "db.nope", str(out)]) == 1
    assert "no collection db.nope" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "no-such-store"), "db.c"]) == 1
    assert "no store at" in capsys.readouterr().err


def test_csv_export_and_import(tmp_path):
    store = str(tmp_path / "lake")
    with Engine(store) as eng:
        eng.insert("db", "people", [{"_id": i, "name": f"n,{i}\"q", "age": 20 + i, "score": i / 4,
                                     "vip": i % 2 == 0, "addr": {"city": f"c{i}"}, "nothing": None}
                                    for i in range(5)])
    out = tmp_path / "people.csv"
    assert cli.main(["export", store, "db.people", str(out), "--fields", "_id,name,age,score,vip,addr.city,nothing,x"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["_id", "name", "age", "score", "vip", "addr.city", "nothing", "x"]
    assert rows[2] == ["1", 'n,1"q', "21", "0.25", "false", "c1", "null", ""]
    assert cli.main(["import", store, "db.copy", str(out)]) == 0
    with Engine(store) as eng:
        got = sorted(eng.find("db", "copy", as_raw=False), key=lambda d: d["_id"])
    assert got[1] == {"_id": 1, "name": 'n,1"q', "age": 21, "score": 0.25, "vip": False, "addr": {"city": "c1"},
                      "nothing": None}
    assert cli.main(["import", store, "db.strings", str(out), "--csv-strings"]) == 0
    with Engine(store) as eng:
        assert eng.get("db", "strings", "1") is not None and eng.get("db", "strings", 1) is None


def test_import_stops_at_the_first_bad_line_unless_told(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"_id": 1}\n{"_id": 2}\n{"_id": {"$numberInt": "nope"}}\n{"_id": 4}\n\n{"_id": 1}\n')
    store = str(tmp_path / "lake")
    assert cli.main(["import", store, "db.c", str(src)]) == 1
    assert "line 3: bad $numberInt 'nope' (2 documents imported before it)" in capsys.readouterr().err
    assert cli.main(["import", store, "db.d", str(src), "--continue-on-error"]) == 1
    assert "imported 3 documents into db.d; 2 skipped" in capsys.readouterr().err
    with Engine(store) as eng:
        assert eng.count("db", "c") == 2 and eng.count("db", "d") == 3
    src.write_text('{"_id": 5}\n{"_id": 5}\n')
    assert cli.main(["import", store, "db.e", str(src)]) == 1
    assert "line 2: E11000 duplicate key" in capsys.readouterr().err
    assert cli.main(["import", store, "db.c", str(src), "--drop", "--continue-on-error"]) == 1
    with Engine(store) as eng:
        assert [d["_id"] for d in eng.find("db", "c", as_raw=False)] == [5]


def test_progress_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"_id": {i}}}\n' for i in range(2500)))
    assert cli.main(["import", str(tmp_path / "lake"), "db.c", str(src), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "import db.c: 100.0% 2,500 docs (" in err
    assert cli.main(["export", str(tmp_path / "lake"), "db.c", str(tmp_path / "o.jsonl"), "--progress"]) == 0
    assert "export db.c: 100.0% 2,500 docs" in capsys.readouterr().err

