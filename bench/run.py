"""MongoLake benchmark suite: MongoLake vs a wire-only floor vs NX-27017, same pymongo code.

Usage::

    python -m bench                      # N = 100,000 documents, all servers, all workloads
    python bench/run.py --quick          # N = 2,000, 0.3 s caps: proves the harness in < 1 min
    python -m bench --large              # N = 1,000,000
    python -m bench --only find_id,full_scan --servers mongolake,floor --json
    python -m bench --formats delta,iceberg --servers mongolake   # MongoLake on each table format, side by side

All servers run at once as child processes on 127.0.0.1, each in its own temporary
folder, but only one is ever under load: each workload runs on one server, then the
next (interleaved, so a row's figures are measured close in time), and every server is
stopped and its folder deleted at the end.  A server
that cannot be installed or started is reported as UNAVAILABLE and the suite carries
on with the others.  Progress goes to stderr; the table (or ``--json``) to stdout.

``--formats delta,iceberg`` (or ``--format iceberg``) runs one MongoLake server per table
format (``mongolake serve --format ...``): the first is the ``mongolake`` column the
other servers are compared with, the others are ``mongolake-<format>`` columns with a
``<format>/<first>`` ratio column.  Every column loads the same documents and runs the
same workloads, and their answers are checked against each other.
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
CHANGES = ("update_one", "update_many", "delete_many")  # followed by a timed flush (MongoLake)
FORMATS = ("delta", "iceberg")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N=2,000 and short caps (CI harness check)")
    p.add_argument("--large", action="store_true", help="N=1,000,000")
    p.add_argument("-n", "--docs", type=int, default=None, help="number of documents (overrides --quick/--large)")
    p.add_argument("--only", default=None, help="comma-separated workloads: " + ",".join(WORKLOADS))
    p.add_argument("--servers", default="mongolake,floor,peer", help="comma-separated: mongolake,floor,peer")
    p.add_argument("--seconds", type=float, default=None, help="time cap per workload (default 5, quick 0.3)")
    p.add_argument("--mongolake-args", default="", help="extra arguments for 'mongolake serve', e.g. '--sync interval'")
    p.add_argument("--formats", "--format", dest="formats", default=None,
                   help="comma-separated table formats for MongoLake, one column each: delta,iceberg "
                        "(default: the server's default, delta)")
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
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    bad = [f for f in args.formats or [] if f not in FORMATS]
    if bad or args.formats == [] or (args.formats and len(set(args.formats)) != len(args.formats)):
        p.error(f"bad --formats {bad or args.formats}; choose from {','.join(FORMATS)}")
    args.sessions = session_specs(args.server_keys, args.formats)
    args.keys = [key for key, _, _ in args.sessions]
    return args


def session_specs(server_keys: list[str], formats: list[str] | None) -> list[tuple[str, str, str | None]]:
    """``(result key, server kind, table format)`` per column: ``mongolake`` becomes one
    column per format (``mongolake``, then ``mongolake-<format>``)."""
    out = []
    for kind in server_keys:
        if kind == "mongolake" and formats:
            out += [("mongolake" if i == 0 else f"mongolake-{f}", kind, f) for i, f in enumerate(formats)]
        else:
            out.append((kind, kind, None))
    return out


def make_limits(args) -> tuple[int, Limits]:
    if args.quick:
        n, limits = 2_000, Limits(seconds=0.3, load_seconds=60, point_ops=300, heavy_ops=10, bulk_ops=2,
                                  stream_events=5)
    else:
        n, limits = (1_000_000 if args.large else 100_000), Limits()
    if args.docs is not None:
        n = args.docs
    if args.seconds is not None:
        limits.seconds = args.seconds
    return n, limits


def run_one(name: str, ctx: Ctx, label: str) -> Result:
    w = WORKLOADS[name]
    t0 = time.perf_counter()
    try:
        r = w.fn(ctx)
    except Exception as e:  # noqa: BLE001 - a failing workload is reported, not fatal
        r = Result(None, w.unit, note=f"error: {type(e).__name__}: {e}"[:300])
    extra = f" ({r.note})" if r.note else ""
    if r.extra.get("client_decode_docs_per_s"):
        extra += f" (client decode of the same docs: {r.extra['client_decode_docs_per_s']:,.0f} docs/s)"
    log(f"  {label:10s} {name:16s} {report.fmt_value(r.value):>12s} {w.unit:6s} {r.ops:>7,} ops "
        f"{time.perf_counter() - t0:6.1f} s{extra}")
    return r


class Session:
    """One server under test, its client and its workload context."""

    def __init__(self, key: str, args, n: int, limits: Limits, kind: str | None = None,
                 table_format: str | None = None) -> None:
        kind = kind or key
        extra = shlex.split(args.mongolake_args) if kind == "mongolake" else None
        self.srv = SERVERS[kind](extra, table_format=table_format) if table_format else SERVERS[kind](extra)
        self.key, self.label = key, self.srv.label
        self.info = {"label": self.label, "available": False, "reason": None, "describe": None, "loaded": None,
                     "flush_seconds": None, "table_format": table_format}
        self.results: dict[str, Result] = {}
        self.supported = [w for w in args.workloads if self.srv.supports is None or w in self.srv.supports]
        self.need_data = any(WORKLOADS[w].needs_data for w in self.supported)
        self.client = None
        self.ctx: Ctx | None = None
        self.n, self.limits = n, limits

    def start(self) -> bool:
        log(f"[{self.label}] starting")
        try:
            self.srv.start()
        except ServerUnavailable as e:
            self.info["reason"] = str(e).splitlines()[0] if str(e) else "unavailable"
            log(f"[{self.label}] UNAVAILABLE: {e}")
            return False
        self.info.update(available=True, describe=self.srv.describe())
        # connectTimeoutMS is also the monitor's hello timeout: a server busy for minutes on one
        # operation (NX-27017 counting 1M rows blocks its event loop) must not be marked down.
        self.client = MongoClient(self.srv.url, serverSelectionTimeoutMS=10_000, socketTimeoutMS=900_000,
                                  connectTimeoutMS=900_000, maxPoolSize=32)
        self.ctx = Ctx(self.client, self.n, self.limits)
        return True

    def wants(self, step: str) -> bool:
        if step == "insert_many":
            return self.need_data or "insert_many" in self.supported
        if step == "flush":
            return self.need_data
        if step == "flush_changes":
            return isinstance(self.srv, MongoLakeServer) and any(w in self.supported for w in CHANGES)
        return step in self.supported

    def run(self, step: str) -> None:
        if self.srv.proc is None or self.srv.proc.poll() is not None:
            if step not in ("flush", "flush_changes"):
                self.results[step] = Result(None, WORKLOADS[step].unit, note="server process died")
            return
        if step in ("flush", "flush_changes"):
            field = "flush_seconds" if step == "flush" else "flush_changes_seconds"
            t0 = time.perf_counter()
            self.srv.flush(self.client)
            self.info[field] = time.perf_counter() - t0
            log(f"  {self.label:10s} {step:16s} {self.info[field]:.2f} s")
            return
        r = run_one(step, self.ctx, self.label)
        if step == "insert_many":
            self.info["loaded"] = self.ctx.loaded
            if "insert_many" not in self.supported:
                return
        self.results[step] = r

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.srv.proc is not None and self.srv.proc.poll() is not None:
            self.info["reason"] = f"server exited during the run: {self.srv.log_tail(500)}"
        was_running = self.srv.proc is not None
        self.srv.stop()
        if was_running:
            log(f"[{self.label}] stopped")


def run_all(args, n: int, limits: Limits) -> tuple[dict, dict]:
    """Start every server, then run each step on all of them back to back, then stop them.

    Interleaving (rather than one server after another) keeps the figures compared in
    one row close in time, so drifting load on a shared machine skews ratios less; the
    order of the servers rotates from one workload to the next.
    """
    sessions = [Session(key, args, n, limits, kind, fmt) for key, kind, fmt in args.sessions]
    try:
        live = [s for s in sessions if s.start()]
        steps = ["insert_many", *[w for w in args.workloads if w in WRITE_FIRST[1:]], "flush",
                 *[w for w in args.workloads if w not in WRITE_FIRST], "flush_changes"]
        for i, step in enumerate(steps):
            k = i % len(live) if live else 0
            for s in live[k:] + live[:k]:
                if s.wants(step):
                    s.run(step)
    finally:
        for s in sessions:
            s.stop()
    return {s.key: s.info for s in sessions}, {s.key: s.results for s in sessions}


def build_document(args, n: int, limits: Limits, servers: dict, results: dict, machine: dict) -> dict:
    by_workload: dict[str, dict[str, Result]] = {}
    for w in args.workloads:
        by_workload[w] = {k: results[k][w] for k in args.keys if w in results.get(k, {})}
    ratios = {w: {k: report.ratio(by_workload, w, "mongolake", k) for k in args.keys if k != "mongolake"}
              for w in args.workloads}
    # other table formats against the first: > 1 = that format is better
    format_ratios = {w: {k: report.ratio(by_workload, w, k, "mongolake") for k in args.keys
                         if k.startswith("mongolake-")} for w in args.workloads}
    labels = {k: servers[k]["label"] for k in servers}
    return {
        "meta": {"n": n, "quick": args.quick, "large": args.large, "doc_bytes": dataset.average_bson_size(),
                 "limits": vars(limits), "workloads": args.workloads, "machine": machine,
                 "formats": args.formats},
        "servers": servers,
        "results": {w: {k: vars(r) for k, r in per.items()} for w, per in by_workload.items()},
        "ratios": ratios,
        "format_ratios": format_ratios,
        "targets": report.targets(by_workload, n),
        "check_mismatches": report.check_mismatches(by_workload, labels),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n, limits = make_limits(args)
    started = time.perf_counter()
    machine = report.machine_info()  # before the run: its load average is the one at the start
    log(f"MongoLake benchmark: N={n:,}, servers {','.join(args.keys)}, workloads {','.join(args.workloads)}")
    servers, results = run_all(args, n, limits)
    doc = build_document(args, n, limits, servers, results, machine)
    doc["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(doc, indent=1, default=str))
    else:
        print(report.render_table(doc))
        print(f"\n(total {doc['meta']['wall_seconds']} s)")
    return 0 if any(s["available"] for s in servers.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
