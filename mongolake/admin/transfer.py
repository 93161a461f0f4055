"""``mongolake import`` / ``mongolake export``: JSON Lines (Extended JSON) and CSV.

JSON Lines is one Extended JSON document per line. Export writes canonical mode
by default — lossless for every BSON type the server stores, so an export
imported again gives byte-identical documents — or ``--relaxed`` (plain JSON
numbers and ISO dates; int32/int64/double distinctions are lost). Import reads
either mode.

CSV: export writes the ``--fields`` (dotted paths allowed; default: the
top-level fields of the first 1000 documents) with strings as they are, numbers
and booleans as text, null as ``null``, missing fields empty and any other value
as relaxed Extended JSON. Import takes the header line as field names (``a.b``
builds nested documents) and infers int, float, true/false and null unless
``--csv-strings``; cells starting with ``{`` or ``[`` are parsed as Extended
JSON; empty cells are left out. CSV is for spreadsheets, not for lossless copies.

Import writes through the engine (WAL, memtables, flush at the end) and refuses
to run while a server holds the store, like every admin command.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
from typing import Any, Iterator

import bson
from bson import json_util

from . import extjson
from .common import AdminError, Progress, add_store_args, open_store, split_ns

BATCH = 1000
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)?(\.[0-9]+)?([eE][-+]?[0-9]+)?$")


def add_import_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p, ns="1")
    p.add_argument("file", nargs="?", default="-", help="input file (default: standard input)")
    p.add_argument("--type", choices=("jsonl", "csv"), default=None,
                   help="input format (default: from the file name; jsonl otherwise)")
    p.add_argument("--drop", action="store_true", help="drop the collection first")
    p.add_argument("--continue-on-error", action="store_true",
                   help="skip bad lines and duplicate _ids (counted) instead of stopping at the first")
    p.add_argument("--csv-strings", action="store_true", help="CSV: keep every cell a string")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on standard error (default: when it is a terminal)")


def add_export_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p, ns="1")
    p.add_argument("file", nargs="?", default="-", help="output file (default: standard output)")
    p.add_argument("--type", choices=("jsonl", "csv"), default=None,
                   help="output format (default: from the file name; jsonl otherwise)")
    p.add_argument("--relaxed", action="store_true", help="relaxed Extended JSON (lossy for numbers and dates)")
    p.add_argument("--filter", default=None, metavar="JSON", help="only documents matching this query")
    p.add_argument("--fields", default=None, metavar="A,B.C", help="CSV: the columns")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on standard error (default: when it is a terminal)")


def _kind(args: argparse.Namespace) -> str:
    if args.type:
        return args.type
    return "csv" if str(args.file).lower().endswith(".csv") else "jsonl"


# -- reading ---------------------------------------------------------------------

def _jsonl_docs(f: io.TextIOBase) -> Iterator[tuple[int, Any]]:
    """``(line number, document or ExtJSONError)`` for each non-blank line."""
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            yield n, extjson.loads(line)
        except extjson.ExtJSONError as e:
            yield n, e


def _cell(v: str, strings: bool) -> Any:
    if strings:
        return v
    if _INT.match(v):
        n = int(v)
        return n if -2**63 <= n < 2**63 else v
    if v and v not in ("-", ".") and _FLOAT.match(v) and any(c.isdigit() for c in v):
        return float(v)
    if v in ("true", "false"):
        return v == "true"
    if v == "null":
        return None
    if v[:1] in ("{", "["):
        try:
            return extjson.loads('{"v": ' + v + "}")["v"]
        except extjson.ExtJSONError:
            return v
    return v


def _csv_docs(f: io.TextIOBase, strings: bool) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        return
    paths = [h.split(".") for h in header]
    for row in reader:
        n = reader.line_num
        if len(row) > len(header):
            yield n, extjson.ExtJSONError(f"{len(row)} cells but {len(header)} columns")
            continue
        doc: dict = {}
        for path, v in zip(paths, row):
            if v == "":
                continue
            d = doc
            for p in path[:-1]:
                d = d.setdefault(p, {})
                if not isinstance(d, dict):
                    break
            else:
                d[path[-1]] = _cell(v, strings)
        if doc:
            yield n, doc


def run_import(args: argparse.Namespace, cfg: Any) -> int:
    db, coll = split_ns(args.ns)
    kind = _kind(args)
    src = sys.stdin if args.file == "-" else None
    size = 0 if src is not None else os.path.getsize(args.file)
    imported = failed = 0
    with open_store(cfg, "import", engine=True, create=True) as st, \
            (src or open(args.file, encoding="utf-8", newline="" if kind == "csv" else None)) as f:
        eng = st.engine
        if args.drop:
            eng.drop_collection(db, coll)
        docs = _csv_docs(f, args.csv_strings) if kind == "csv" else _jsonl_docs(f)
        prog = Progress(f"import {args.ns}", enabled=args.progress)
        batch: list[tuple[int, dict]] = []

        def flush_batch() -> None:
            nonlocal imported, failed
            if not batch:
                return
            res = eng.insert(db, coll, [d for _n, d in batch], ordered=not args.continue_on_error, wait=False)
            imported += res.n
            if res.errors:
                failed += len(res.errors)
                i, err = res.errors[0]
                if not args.continue_on_error:
                    raise AdminError(f"line {batch[i][0]}: {err} ({imported} documents imported before it)")
            batch.clear()

        for n, doc in docs:
            if isinstance(doc, Exception):
                failed += 1
                if not args.continue_on_error:
                    flush_batch()
                    raise AdminError(f"line {n}: {doc} ({imported} documents imported before it)")
                continue
            batch.append((n, doc))
            if len(batch) >= BATCH:
                flush_batch()
                frac = (f.buffer.tell() / size) if size and hasattr(f, "buffer") and f.buffer.seekable() else None
                prog.update(imported, fraction=frac)
        flush_batch()
        prog.update(imported, fraction=1.0 if size else None, force=True)
        prog.finish()
    msg = f"imported {imported} documents into {args.ns}"
    print(msg + (f"; {failed} skipped" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


# -- writing ---------------------------------------------------------------------

_RELAXED = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED,
                                 datetime_conversion=bson.DatetimeConversion.DATETIME_MS,
                                 uuid_representation=bson.binary.UuidRepresentation.UNSPECIFIED)
_DECODE = bson.CodecOptions(datetime_conversion=bson.DatetimeConversion.DATETIME_MS,
                            uuid_representation=bson.binary.UuidRepresentation.UNSPECIFIED)
_MISSING = object()


def _get_path(doc: Any, path: list[str]) -> Any:
    for p in path:
        if isinstance(doc, dict) and p in doc:
            doc = doc[p]
        else:
            return _MISSING
    return doc


def _csv_text(v: Any) -> str:
    if v is _MISSING:
        return ""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if type(v) in (int, float) or isinstance(v, bson.Int64):
        return repr(float(v)) if isinstance(v, float) else str(int(v))
    return json_util.dumps(v, json_options=_RELAXED)


def run_export(args: argparse.Namespace, cfg: Any) -> int:
    db, coll = split_ns(args.ns)
    kind = _kind(args)
    flt = None
    if args.filter:
        try:
            flt = extjson.loads(args.filter)
        except extjson.ExtJSONError as e:
            raise AdminError(f"--filter: {e}") from None
    n = 0
    with open_store(cfg, "export", engine=True, flush_on_close=False) as st:
        eng = st.engine
        if eng.get_collection(db, coll) is None:
            raise AdminError(f"no collection {args.ns} in {st.storage.url}")
        total = eng.count(db, coll) if flt is None else None
        prog = Progress(f"export {args.ns}", total=total, enabled=args.progress)
        out = sys.stdout if args.file == "-" else open(args.file, "w", encoding="utf-8",
                                                      newline="" if kind == "csv" else None)
        try:
            rows = eng.find(db, coll, flt, as_raw=True)
            if kind == "csv":
                n = _write_csv(out, rows, args.fields, prog)
            else:
                relaxed, dumps, write = args.relaxed, extjson.dumps, out.write
                for raw in rows:
                    write(dumps(raw, relaxed=relaxed))
                    write("\n")
                    n += 1
                    if not n % BATCH:
                        prog.update(n)
        finally:
            if out is not sys.stdout:
                out.close()
            else:
                out.flush()
        prog.update(n, force=True)
        prog.finish()
    print(f"exported {n} documents from {args.ns}", file=sys.stderr)
    return 0


def _write_csv(out: Any, rows: Iterator[bytes], fields: str | None, prog: Progress) -> int:
    first: list[dict] = []
    it = iter(rows)
    if fields:
        names = [f for f in fields.split(",") if f]
    else:
        seen: dict[str, None] = {}
        for raw in it:
            d = bson.decode(raw, _DECODE)
            first.append(d)
            seen.update(dict.fromkeys(d))
            if len(first) >= 1000:
                break
        names = list(seen)
    w = csv.writer(out)
    w.writerow(names)
    paths = [n.split(".") for n in names]
    n = 0

    def docs() -> Iterator[dict]:
        yield from first
        for raw in it:
            yield bson.decode(raw, _DECODE)

    for d in docs():
        w.writerow([_csv_text(_get_path(d, p)) for p in paths])
        n += 1
        if not n % BATCH:
            prog.update(n)
    return n
