"""Harness check of the benchmark suite: ``python -m bench --quick --json`` runs end to end.

Not a timed assertion: it proves that every server starts and stops, every workload
runs and reports, the peer is either measured or reported unavailable with a reason,
and the report renders.  Takes ~15-30 s on 2 cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import report
from bench.workloads import WORKLOADS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_mode_runs_every_workload_on_every_server():
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert doc["meta"]["n"] == 2000 and doc["meta"]["quick"] is True

    servers = doc["servers"]
    assert servers["mongolake"]["available"] and servers["floor"]["available"], servers
    assert servers["mongolake"]["loaded"] == 2000 and servers["floor"]["loaded"] == 2000
    peer = servers["peer"]
    if not peer["available"]:
        assert "NX-27017" in peer["reason"]  # said clearly, and the suite went on

    results = doc["results"]
    assert list(results) == list(WORKLOADS)
    for name, per_server in results.items():
        ml = per_server["mongolake"]
        if name == "change_stream":
            assert ml["value"] is not None or ml["note"].startswith("n/a"), ml
            continue
        assert isinstance(ml["value"], (int, float)) and ml["value"] > 0, (name, ml)
        assert ml["ops"] >= 1
        if peer["available"]:
            assert per_server["peer"]["value"] is not None or per_server["peer"]["note"], (name, per_server)
    for name in ("insert_many", "insert_one_1", "insert_one_16", "find_id", "full_scan"):
        assert results[name]["floor"]["value"] > 0, name
    assert "floor" not in results["find_eq"]  # the floor has no query engine: not run there

    # the floor and MongoLake agree on what they both answer
    for name in ("find_id", "full_scan", "insert_many"):
        assert results[name]["mongolake"]["check"] == results[name]["floor"]["check"], name
    assert results["full_scan"]["mongolake"]["check"] == 2000
    extra = results["full_scan"]["mongolake"]["extra"]
    assert extra["client_decode_docs_per_s"] > 0 and extra["client_decode_101_docs_per_s"] > 0
    assert len(doc["targets"]) == 7 and all(t["status"] for t in doc["targets"])

    table = report.render_table(doc)
    assert "find_one by _id" in table and "targets:" in table and "ML/floor" in table
