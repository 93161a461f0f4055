"""Turning results into the table, the JSON document and the target verdicts."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time

from bench.workloads import WORKLOADS, Result

LARGE_N = 1_000_000


def machine_info() -> dict:
    """What the figures came from: CPU, cores, memory, Python, pymongo, commit, load."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    import pymongo
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gib, "os": platform.platform(),
        "python": platform.python_version(), "pymongo": pymongo.version, "commit": commit,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def fmt_value(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def ratio(results: dict, workload: str, a: str, b: str) -> float | None:
    """How many times better server ``a`` is than ``b`` (>1 = ``a`` better), or None."""
    ra, rb = results.get(workload, {}).get(a), results.get(workload, {}).get(b)
    if not isinstance(ra, Result) or not isinstance(rb, Result) or not ra.value or not rb.value:
        return None
    w = WORKLOADS.get(workload)
    return rb.value / ra.value if w is not None and not w.higher_is_better else ra.value / rb.value


def scan_vs_decode(result) -> float | None:
    """A full_scan result's rate over the client's decode rate of the same documents."""
    if not isinstance(result, Result):
        result = Result(**result) if isinstance(result, dict) else None
    decode = result.extra.get("client_decode_docs_per_s") if result is not None else None
    return result.value / decode if result is not None and result.value and decode else None


def targets(results: dict, n: int) -> list[dict]:
    """The issue's targets, each with the measured ratio and met / not met / not measured."""
    def ml(w):
        r = results.get(w, {}).get("mongolake")
        return r.value if isinstance(r, Result) else None

    out = []

    def add(name, value, threshold, at_large=False):
        if value is None:
            status = "not measured"
        else:
            status = "met" if value >= threshold else "not met"
            if at_large and n < LARGE_N:
                status += f" at N={n:,} (target is at N=1,000,000: run --large)"
        out.append({"target": name, "ratio": value, "threshold": threshold, "status": status})

    add("find_one by _id >= 0.6x floor", ratio(results, "find_id", "mongolake", "floor"), 0.6)
    add("insert_many >= 0.8x floor", ratio(results, "insert_many", "mongolake", "floor"), 0.8)
    add("insert_many >= 8x NX-27017", ratio(results, "insert_many", "mongolake", "peer"), 8)
    add("count_documents (1M docs) >= 50x NX-27017", ratio(results, "count_range", "mongolake", "peer"), 50, True)
    add("$match+$group (1M docs) >= 50x NX-27017", ratio(results, "match_group", "mongolake", "peer"), 50, True)
    add("full scan >= 0.7x client decode", scan_vs_decode(results.get("full_scan", {}).get("mongolake")), 0.7)
    one, many = ml("insert_one_1"), ml("insert_one_16")
    add("insert_one 16 clients >= 5x 1 client", many / one if one and many else None, 5)
    return out


def check_mismatches(results: dict, labels: dict) -> list[str]:
    """Workloads whose answer-derived check differs between servers."""
    out = []
    for w, per_server in results.items():
        checks = {s: r.check for s, r in per_server.items() if isinstance(r, Result) and r.value is not None
                  and r.check is not None}
        if len({json.dumps(c, default=str) for c in checks.values()}) > 1:
            out.append(f"{w}: " + ", ".join(f"{labels.get(s, s)}={c}" for s, c in checks.items()))
    return out


def render_table(doc: dict) -> str:
    """The human-readable report (see run.build_document for ``doc``)."""
    servers = doc["servers"]
    keys = [k for k in servers]
    labels = {k: servers[k]["label"] for k in keys}
    meta, m = doc["meta"], doc["meta"]["machine"]
    lines = [
        f"MongoLake benchmark: N={meta['n']:,} documents (~{meta['doc_bytes']:.0f} B BSON each)"
        f"{' [quick]' if meta['quick'] else ''}",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; Python {m['python']}, "
        f"pymongo {m['pymongo']}; commit {m['commit']}; load avg at start {m['loadavg_at_start']}",
    ]
    for k in keys:
        s = servers[k]
        state = s["describe"] if s["available"] else f"UNAVAILABLE: {s['reason']}"
        extra = ""
        if s.get("loaded") is not None and s["loaded"] != meta["n"]:
            extra = f" (loaded {s['loaded']:,} docs)"
        if s.get("flush_seconds") is not None:
            extra += f"; flush after load {s['flush_seconds']:.2f} s"
        if s.get("flush_changes_seconds") is not None:
            extra += f"; flush after the updates/deletes {s['flush_changes_seconds']:.2f} s"
        lines.append(f"  {labels[k]}: {state}{extra}")
    ratio_cols = ([(k, f"ML/{labels[k]}") for k in keys if k != "mongolake" and not k.startswith("mongolake-")]
                  if "mongolake" in keys else [])
    first_fmt = servers.get("mongolake", {}).get("table_format")
    format_cols = [(k, f"{servers[k].get('table_format')}/{first_fmt}") for k in keys if k.startswith("mongolake-")]
    header = ["workload", "unit", *[labels[k] for k in keys], *[c for _, c in ratio_cols + format_cols]]
    rows = []
    notes = []
    for w, per in doc["results"].items():
        wl = WORKLOADS[w]
        row = [wl.title, wl.unit]
        for k in keys:
            r = per.get(k)
            if r is None:
                row.append("-" if servers[k]["available"] else "n/a")
            else:
                row.append(fmt_value(r["value"]))
                if r.get("note"):
                    notes.append(f"{wl.name} on {labels[k]}: {r['note']}")
        for k, _ in ratio_cols:
            row.append(fmt_ratio(doc["ratios"].get(w, {}).get(k)))
        for k, _ in format_cols:
            row.append(fmt_ratio(doc.get("format_ratios", {}).get(w, {}).get(k)))
        rows.append(row)
        if w == "full_scan":
            for field, title in (("client_decode_docs_per_s", "  client decode, server's batches"),
                                 ("client_decode_101_docs_per_s", "  client decode, 101-doc batches")):
                rows.append([title, "docs/s", *[fmt_value(per[k]["extra"].get(field)) if k in per else ""
                                                for k in keys], *[""] * len(ratio_cols + format_cols)])
            rows.append(["  full scan / decode (server's batches)", "ratio",
                         *[fmt_ratio(scan_vs_decode(per[k])) if k in per else "" for k in keys],
                         *[""] * len(ratio_cols + format_cols)])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt_row = lambda r: "  ".join(str(c).ljust(widths[i]) if i < 2 else str(c).rjust(widths[i])  # noqa: E731
                                  for i, c in enumerate(r)).rstrip()
    lines += ["", fmt_row(header), "  ".join("-" * w for w in widths), *map(fmt_row, rows)]
    lines.append("ratios > 1 mean MongoLake is better (faster, or lower latency); '-' = not applicable, "
                 "n/a = not measured")
    if format_cols:
        lines.append(f"ML/x ratios use the first format ({first_fmt}); a <format>/{first_fmt} ratio > 1 means "
                     f"MongoLake on that format is better than on {first_fmt}")
    if notes:
        lines += ["", "notes:", *[f"  {n}" for n in notes]]
    if doc["check_mismatches"]:
        lines += ["", "ANSWER MISMATCHES (same query, different answers):",
                  *[f"  {x}" for x in doc["check_mismatches"]]]
    lines += ["", "targets:"]
    for t in doc["targets"]:
        val = "" if t["ratio"] is None else f": {t['ratio']:.2f}x"
        lines.append(f"  [{t['status']}] {t['target']}{val}")
    return "\n".join(lines)
