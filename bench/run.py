"""MongoLake benchmark suite: MongoLake vs a wire-only floor vs NX-27017, same pymongo code.

Usage::

    python -m bench                      # N = 100,000 documents, all servers, all workloads
    python bench/run.py --quick          # N = 2,000, short caps: proves the harness in < 1 min
    python -m bench --large              # N = 1,000,000
    python -m bench --only find_id,full_scan --servers mongolake,floor --json

Servers run one after another (never concurrently) as child processes on 127.0.0.1,
each in its own temporary folder, and are stopped and deleted afterwards.  A server
that cannot be installed or started is reported as UNAVAILABLE and the suite carries
on with the others.  Progress goes to stderr; the table (or ``--json``) to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

if __package__ in (None, ""):  # python bench/run.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pymongo import MongoClient  # noqa: E402

from bench import dataset, report  # noqa: E402
from bench.peers import NX27017Server  # noqa: E402
from bench.servers import FloorServer, MongoLakeServer, ServerUnavailable  # noqa: E402
from bench.workloads import WORKLOADS, Ctx, Limits, Result  # noqa: E402

SERVERS = {"mongolake": MongoLakeServer, "floor": FloorServer, "peer": NX27017Server}
WRITE_FIRST = ("insert_many", "insert_one_1", "insert_one_16")  # before the flush


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N=2,000 and short caps (CI harness check)")
    p.add_argument("--large", action="store_true", help="N=1,000,000")
    p.add_argument("-n", "--docs", type=int, default=None, help="number of documents (overrides --quick/--large)")
    p.add_argument("--only", default=None, help="comma-separated workloads: " + ",".join(WORKLOADS))
    p.add_argument("--servers", default="mongolake,floor,peer", help="comma-separated: mongolake,floor,peer")
    p.add_argument("--seconds", type=float, default=None, help="time cap per workload (default 5, quick 0.5)")
    p.add_argument("--mongolake-args", default="", help="extra arguments for 'mongolake serve', e.g. '--sync interval'")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = p.parse_args(argv)
    args.server_keys = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in args.server_keys if s not in SERVERS]
    if bad or not args.server_keys:
        p.error(f"unknown server(s) {bad}; choose from {','.join(SERVERS)}")
    names = list(WORKLOADS) if not args.only else [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in names if w not in WORKLOADS]
    if bad or not names:
        p.error(f"unknown workload(s) {bad}; choose from {','.join(WORKLOADS)}")
    args.workloads = [w for w in WORKLOADS if w in names]  # execution order
    return args


def make_limits(args) -> tuple[int, Limits]:
    if args.quick:
        n, limits = 2_000, Limits(seconds=0.5, load_seconds=60, point_ops=500, heavy_ops=20, bulk_ops=2,
                                  stream_events=5)
    else:
        n, limits = (1_000_000 if args.large else 100_000), Limits()
    if args.docs is not None:
        n = args.docs
    if args.seconds is not None:
        limits.seconds = args.seconds
    return n, limits


def run_one(name: str, ctx: Ctx) -> Result:
    w = WORKLOADS[name]
    t0 = time.perf_counter()
    try:
        r = w.fn(ctx)
    except Exception as e:  # noqa: BLE001 - a failing workload is reported, not fatal
        r = Result(None, w.unit, note=f"error: {type(e).__name__}: {e}"[:300])
    extra = f" ({r.note})" if r.note else ""
    if r.extra.get("client_decode_docs_per_s"):
        extra += f" (client decode of the same docs: {r.extra['client_decode_docs_per_s']:,.0f} docs/s)"
    log(f"    {name:16s} {report.fmt_value(r.value):>12s} {w.unit:6s} {r.ops:>7,} ops "
        f"{time.perf_counter() - t0:6.1f} s{extra}")
    return r


def run_server(key: str, args, n: int, limits: Limits) -> tuple[dict, dict[str, Result]]:
    """Start one server, run the selected workloads against it, stop it."""
    extra = shlex.split(args.mongolake_args) if key == "mongolake" else None
    srv = SERVERS[key](extra)
    info = {"label": srv.label, "available": False, "reason": None, "describe": None, "loaded": None,
            "flush_seconds": None}
    results: dict[str, Result] = {}
    supported = [w for w in args.workloads if srv.supports is None or w in srv.supports]
    log(f"[{srv.label}] starting")
    try:
        srv.start()
    except ServerUnavailable as e:
        info["reason"] = str(e).splitlines()[0] if str(e) else "unavailable"
        log(f"[{srv.label}] UNAVAILABLE: {e}")
        return info, results
    info.update(available=True, describe=srv.describe())
    client = MongoClient(srv.url, serverSelectionTimeoutMS=10_000, socketTimeoutMS=900_000, maxPoolSize=32)
    try:
        ctx = Ctx(client, n, limits, flush=lambda: srv.flush(client))
        need_data = any(WORKLOADS[w].needs_data for w in supported)
        if need_data or "insert_many" in supported:
            r = run_one("insert_many", ctx)
            info["loaded"] = ctx.loaded
            if "insert_many" in supported:
                results["insert_many"] = r
        for w in supported:
            if w in WRITE_FIRST[1:]:
                results[w] = run_one(w, ctx)
        if need_data:
            t0 = time.perf_counter()
            srv.flush(client)
            info["flush_seconds"] = time.perf_counter() - t0
            log(f"    flush            {info['flush_seconds']:.2f} s")
        for w in supported:
            if w in WRITE_FIRST:
                continue
            if srv.proc is None or srv.proc.poll() is not None:
                results[w] = Result(None, WORKLOADS[w].unit, note="server process died")
                continue
            results[w] = run_one(w, ctx)
    finally:
        client.close()
        died = srv.proc is not None and srv.proc.poll() is not None
        if died:
            info["reason"] = f"server exited during the run: {srv.log_tail(500)}"
        srv.stop()
        log(f"[{srv.label}] stopped")
    return info, results


def build_document(args, n: int, limits: Limits, servers: dict, results: dict) -> dict:
    by_workload: dict[str, dict[str, Result]] = {}
    for w in args.workloads:
        by_workload[w] = {k: results[k][w] for k in args.server_keys if w in results.get(k, {})}
    ratios = {w: {k: report.ratio(by_workload, w, "mongolake", k) for k in args.server_keys if k != "mongolake"}
              for w in args.workloads}
    labels = {k: servers[k]["label"] for k in servers}
    return {
        "meta": {"n": n, "quick": args.quick, "large": args.large, "doc_bytes": dataset.average_bson_size(),
                 "limits": vars(limits), "workloads": args.workloads, "machine": report.machine_info()},
        "servers": servers,
        "results": {w: {k: vars(r) for k, r in per.items()} for w, per in by_workload.items()},
        "ratios": ratios,
        "targets": report.targets(by_workload, n),
        "check_mismatches": report.check_mismatches(by_workload, labels),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n, limits = make_limits(args)
    started = time.perf_counter()
    log(f"MongoLake benchmark: N={n:,}, servers {','.join(args.server_keys)}, workloads {','.join(args.workloads)}")
    servers, results = {}, {}
    for key in args.server_keys:
        servers[key], results[key] = run_server(key, args, n, limits)
    doc = build_document(args, n, limits, servers, results)
    doc["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        print(report.render_table(doc))
        print(f"\n(total {doc['meta']['wall_seconds']} s)")
    return 0 if any(s["available"] for s in servers.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
