"""``mongolake inspect / check / compact / vacuum / ping`` on a stopped server's store."""
from __future__ import annotations

import json
import os

import pytest

from mongolake import cli
from mongolake.engine import Engine
from tests.serverutil import running_server


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def store(tmp_path):
    """A store with db.c in three data files (three flushes) and db.other."""
    path = str(tmp_path / "lake")
    with Engine(path, sync="none") as eng:
        for k in range(3):
            eng.insert("db", "c", [{"_id": k * 100 + i, "v": i, "s": f"x{i}"} for i in range(100)])
            eng.flush()
        eng.insert("db", "other", [{"_id": 1}])
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def table_files(store: str, coll: str = "c") -> list[str]:
    return sorted(f for f in os.listdir(os.path.join(store, "db", coll)) if f.endswith(".parquet"))


def test_inspect_store_and_collection(store, capsys):
    code, out, _ = run(capsys, "inspect", store)
    assert code == 0
    assert "db.c " in out and "db.other" in out and "300" in out
    code, out, _ = run(capsys, "inspect", store, "--json")
    info = json.loads(out)
    c = next(x for x in info["collections"] if x["ns"] == "db.c")
    assert (c["files"], c["documents"], c["small_files"], c["format"]) == (3, 300, 3, "delta")
    code, out, _ = run(capsys, "inspect", store, "db.c", "--json")
    d = json.loads(out)
    assert d["documents"] == 300 and len(d["files"]) == 3 and d["version"] >= 3
    assert [v["operation"] for v in d["versions"]][-1] == "CREATE TABLE"
    assert "_doc: binary" in d["schema"] and "v: int64" in d["schema"]
    v = next(s for s in d["stats"] if s["column"] == "v")
    assert (v["min"], v["max"], v["exact"]) == (0, 99, True)
    code, out, _ = run(capsys, "inspect", store, "db.c")
    assert "versions (newest first):" in out and "column statistics" in out
    assert run(capsys, "inspect", store, "db.missing")[0] == 1
    code, _, err = run(capsys, "inspect", store, "nodot")
    assert code == 1 and "not a namespace" in err


def test_check_finds_missing_truncated_and_corrupt_files(store, capsys):
    code, out, _ = run(capsys, "check", store, "--deep")
    assert code == 0 and "no damage found" in out
    files = table_files(store)
    os.remove(os.path.join(store, "db", "c", files[0]))
    with open(os.path.join(store, "db", "c", files[1]), "r+b") as f:
        f.truncate(100)
    code, out, _ = run(capsys, "check", store)
    assert code == 1
    assert f"missing data file {files[0]}" in out
    assert f"size mismatch {files[1]}: the log says" in out and "the store has 100" in out
    assert "db.other: ok" in out and "1 damaged" in out


def test_check_deep_reads_footers(store, capsys):
    path = os.path.join(store, "db", "c", table_files(store)[2])
    data = bytearray(open(path, "rb").read())
    data[-8:-4] = b"\xff\xff\xff\x7f"                 # footer length: garbage, same file size
    open(path, "wb").write(bytes(data))
    assert run(capsys, "check", store)[0] == 0         # sizes still match
    code, out, _ = run(capsys, "check", store, "db.c", "--deep", "--json")
    res = json.loads(out)
    assert code == 1 and res["damaged"] == 1
    assert "unreadable Parquet footer" in res["collections"][0]["damage"][0]


def test_check_reports_wal_corruption(store, capsys):
    eng = Engine(store).open()
    eng.insert("db", "other", [{"_id": i} for i in range(2, 5)])
    eng.close(flush=False)                              # the writes stay in the WAL (a crash)
    code, out, _ = run(capsys, "check", store)
    assert code == 0 and "(1 records)" in out
    wal = os.path.join(store, "_mongolake", "wal")
    seg = max((n for n in os.listdir(wal) if n.endswith(".log")), key=lambda n: os.path.getsize(os.path.join(wal, n)))
    path = os.path.join(wal, seg)
    data = bytearray(open(path, "rb").read())
    open(path, "wb").write(bytes(data) + b"\x40\x00\x00\x00abcd")        # a torn last record: a warning
    code, out, _ = run(capsys, "check", store)
    assert code == 0 and "torn record at byte" in out and "dropped at the next start" in out
    data[10] ^= 0xFF                                    # a flipped bit inside an acknowledged record
    open(path, "wb").write(bytes(data))
    code, out, _ = run(capsys, "check", store)
    assert code == 1 and "CRC mismatch in the record at byte 0" in out


def test_compact_dry_run_then_compact_then_vacuum(store, capsys):
    code, out, _ = run(capsys, "compact", store, "db.c", "--dry-run")
    assert code == 0 and "would rewrite 3 of 3 files" in out
    assert len(table_files(store)) == 3
    code, out, _ = run(capsys, "compact", store, "db.c", "--json")
    res = json.loads(out)[0]
    assert code == 0 and (res["files_rewritten"], res["files_after"]) == (3, 1)
    assert len(table_files(store)) == 4                 # the old files stay until a vacuum
    new_file = json.loads(run(capsys, "inspect", store, "db.c", "--json")[1])["files"][0]["path"]
    code, out, _ = run(capsys, "vacuum", store, "db.c", "--retention-hours", "0", "--dry-run", "--json")
    doomed = json.loads(out)[0]["files"]
    assert code == 0 and len(table_files(store)) == 4
    # the three rewritten data files, and the flushes' change-data files
    assert sorted(f for f in doomed if "/" not in f) == [f for f in table_files(store) if f != new_file]
    assert all(f.startswith("_change_data/") for f in doomed if "/" in f)
    code, out, _ = run(capsys, "vacuum", store, "db.c", "--retention-hours", "0")
    assert code == 0 and f"deleted {len(doomed)} files" in out
    assert len(table_files(store)) == 1
    with Engine(store) as eng:
        assert eng.count("db", "c") == 300 and eng.get("db", "c", 250)["v"] == 50
    assert run(capsys, "check", store, "--deep")[0] == 0


def test_ping(tmp_path, capsys):
    with running_server(str(tmp_path / "lake")) as srv:
        code, out, _ = run(capsys, "ping", "--port", str(srv.port))
        assert code == 0 and out.strip() == f"127.0.0.1:{srv.port} ok"
    code, _, err = run(capsys, "ping", "--port", str(srv.port), "--timeout", "0.5")
    assert code == 1 and "does not answer" in err
