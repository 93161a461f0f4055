"""``python -m bench --formats delta,iceberg``: MongoLake on each table format, side by side.

A harness check (not timed): both columns load the same documents, run the same
workloads, give the same answers, and the report has the ``iceberg/delta`` column.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import report
from bench.run import parse_args, session_specs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_formats_expand_the_mongolake_column():
    assert session_specs(["mongolake", "floor"], None) == [("mongolake", "mongolake", None), ("floor", "floor", None)]
    assert session_specs(["floor", "mongolake"], ["delta", "iceberg"]) == [
        ("floor", "floor", None), ("mongolake", "mongolake", "delta"), ("mongolake-iceberg", "mongolake", "iceberg")]
    args = parse_args(["--format", "iceberg", "--servers", "mongolake"])
    assert args.keys == ["mongolake"] and args.sessions == [("mongolake", "mongolake", "iceberg")]
    for bad in (["--formats", "parquet"], ["--formats", "delta,delta"], ["--formats", ","]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_delta_and_iceberg_side_by_side():
    only = "insert_many,find_id,find_eq,full_scan,update_many"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "-n", "600", "--formats", "delta,iceberg",
                           "--servers", "mongolake", "--only", only, "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    servers = doc["servers"]
    assert set(servers) == {"mongolake", "mongolake-iceberg"}
    assert servers["mongolake"]["table_format"] == "delta" and servers["mongolake-iceberg"]["table_format"] == "iceberg"
    for s in servers.values():
        assert s["available"] and s["loaded"] == 600 and "tables" in s["describe"]
        assert s["flush_seconds"] > 0 and s["flush_changes_seconds"] > 0
    for name in only.split(","):
        per = doc["results"][name]
        assert per["mongolake"]["value"] > 0 and per["mongolake-iceberg"]["value"] > 0, name
        assert per["mongolake"]["check"] == per["mongolake-iceberg"]["check"], name
        assert doc["format_ratios"][name]["mongolake-iceberg"] > 0
    assert doc["check_mismatches"] == []
    assert doc["results"]["full_scan"]["mongolake-iceberg"]["check"] == 600
    table = report.render_table(doc)
    assert "ML delta" in table and "ML iceberg" in table and "iceberg/delta" in table
