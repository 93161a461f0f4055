"""Columnar execution of ``[$match?, $group]`` in Arrow, when provably identical.

The group runs on shredded columns instead of decoded documents when every
field it touches (group key, accumulator inputs) is a shredded column that is
*exact* in every file that can match and in the memtable rows, and the filter's
Arrow pushdown is exact in every such file. Then Arrow's values are exactly the
documents' values, nulls are exactly null-or-missing, and ``$sum``/``$avg``/
``$min``/``$max``/``$count`` over them equal MongoDB's (which ignore non-numeric
values for ``$sum``/``$avg`` and null/missing for ``$min``/``$max``).
Anything else answers None and the caller runs the pipeline document by document.
"""
from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Iterator

import bson
from bson.int64 import Int64
from bson.objectid import ObjectId
import pyarrow as pa
import pyarrow.compute as pc

from mongolake.query import columns, zonemap
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.pushdown import pushdown

if TYPE_CHECKING:
    from .engine import Engine

_ARROW_AGG = {"$sum": "sum", "$avg": "mean", "$min": "min", "$max": "max"}
_KEY_KINDS = ("int", "double", "string", "bool", "date")      # objectId columns hold hex, not ObjectIds


def _field(arg: Any) -> str | None:
    if isinstance(arg, str) and arg.startswith("$") and not arg.startswith("$$") and len(arg) > 1:
        return arg[1:]
    return None


def plan_group(spec: dict, specs: dict) -> tuple[str | None, list[tuple[str, str, str | None]]] | None:
    """``(key_path_or_None, [(out_field, op, path_or_None)])`` or None when not columnar."""
    key = spec.get("_id")
    if key is None:
        key_path = None
    else:
        key_path = _field(key)
        if key_path is None or key_path not in specs or specs[key_path].kind not in _KEY_KINDS:
            return None
    accs = []
    for out, acc in spec.items():
        if out == "_id":
            continue
        if not isinstance(acc, dict) or len(acc) != 1:
            return None
        op, arg = next(iter(acc.items()))
        if op == "$count" and arg == {}:
            accs.append((out, "count", None))
            continue
        if op == "$sum" and isinstance(arg, (int, float)) and not isinstance(arg, bool) and arg == 1:
            accs.append((out, "count", None))
            continue
        path = _field(arg)
        if op not in _ARROW_AGG or path is None or path not in specs:
            return None
        if op in ("$sum", "$avg") and specs[path].kind != "int":
            # integer sums are exact in any order; double sums depend on the order of
            # additions, so those stay on the document path (MongoDB's own summation)
            return None
        if op in ("$min", "$max") and specs[path].kind not in _KEY_KINDS:
            return None
        accs.append((out, op, path))
    return key_path, accs


def _flat(t: pa.Table) -> pa.Table:
    while any(pa.types.is_struct(f.type) for f in t.schema):
        t = t.flatten()
    return t


def group(engine: "Engine", db: str, coll: str, match: dict | None, spec: dict) -> list[dict] | None:
    c = engine.get_collection(db, coll)
    if c is None:
        return None
    planned = plan_group(spec, c.specs)
    if planned is None:
        return None
    key_path, accs = planned
    paths = sorted({p for p in [key_path, *(a[2] for a in accs)] if p})
    plan = engine.plan(c, match or {})
    view, snapshot = engine._state(c)
    parts: list[pa.Table] = []
    # memtable rows: shred them the same way a flush would; every needed column must be exact
    live = [(e.doc, bson.decode(e.doc, CODEC_OPTIONS)) for e in view.values() if e.doc is not None]
    if plan.matcher is not None:
        live = [x for x in live if plan.matcher(x[1])]
    if live:
        need = {p: c.specs[p] for p in paths}
        t, exact = columns.build_table([x[0] for x in live], [x[1] for x in live], need)
        if not set(paths) <= exact:
            return None
        parts.append(_flat(t).select(paths) if paths else pa.table({"_n": pa.nulls(t.num_rows)}))
    shadow = pa.array(list(view.keys()), pa.binary()) if view else None
    for f in snapshot.files:
        if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
            continue
        exact_cols = set(f.null_count)
        if not set(paths) <= exact_cols:
            return None
        fi = engine.reader.info(c.table, f)
        fspecs = fi.file_specs(plan.specs)
        arrow_expr, exact = pushdown(plan.expr, fspecs, exact_cols) if plan.expr is not None else (None, True)
        if not exact:
            return None
        cols = sorted({"_key", *(p.split(".", 1)[0] for p in paths), *(plan.top_columns & fi.top)})
        t = fi.pf.read(columns=cols)
        if arrow_expr is not None:
            t = t.filter(arrow_expr)
        if shadow is not None and t.num_rows:
            t = t.filter(pc.invert(pc.is_in(t.column("_key"), value_set=shadow)))
        t = _flat(t)
        parts.append(t.select(paths) if paths else pa.table({"_n": pa.nulls(t.num_rows)}))
    if not parts:
        return []
    data = pa.concat_tables(parts, promote_options="permissive")
    if data.num_rows == 0:
        return []
    return _aggregate(data, key_path, accs)


def _aggregate(data: pa.Table, key_path: str | None, accs: list) -> list[dict]:
    min0 = pc.ScalarAggregateOptions(min_count=0)
    if key_path is None:
        doc: dict[str, Any] = {"_id": None}
        for out, op, path in accs:
            if op == "count":
                doc[out] = data.num_rows
            elif op == "$sum":
                doc[out] = pc.sum(data.column(path), min_count=0).as_py()
            elif op == "$avg":
                col = data.column(path)
                n = pc.count(col).as_py()
                doc[out] = pc.sum(col).as_py() / n if n else None
            else:
                doc[out] = getattr(pc, _ARROW_AGG[op])(data.column(path)).as_py()
        return [doc]
    wanted: dict[tuple, str] = {}            # (column, function) -> result column name
    aggs = []

    def need(col: Any, fn: str, opts: Any = None) -> str:
        name = "count_all" if fn == "count_all" else f"{col}_{fn}"
        if (str(col), fn) not in wanted:
            wanted[(str(col), fn)] = name
            aggs.append((col, fn, opts) if opts is not None else (col, fn))
        return name

    for _out, op, path in accs:
        if op == "count":
            need([], "count_all")
        elif op == "$sum":
            need(path, "sum", min0)
        elif op == "$avg":                       # exact integer sum / count, as MongoDB divides
            need(path, "sum", min0)
            need(path, "count")
        else:
            need(path, _ARROW_AGG[op])
    res = data.group_by(key_path, use_threads=False).aggregate(aggs)
    col = {n: res.column(n).to_pylist() for n in set(wanted.values())}
    key_vals = res.column(key_path).to_pylist()
    out_docs = []
    for r in range(res.num_rows):
        d: dict[str, Any] = {"_id": key_vals[r]}
        for out, op, path in accs:
            if op == "count":
                v = col["count_all"][r]
            elif op == "$avg":
                n = col[f"{path}_count"][r]
                v = col[f"{path}_sum"][r] / n if n else None
            elif op == "$sum":
                v = col[f"{path}_sum"][r]
                v = 0 if v is None else v
            else:
                v = col[f"{path}_{_ARROW_AGG[op]}"][r]
            d[out] = v
        out_docs.append(d)
    return out_docs


def top_k(engine: "Engine", db: str, coll: str, match: dict | None, sort: dict, k: int) -> list[bytes] | None:
    """The first ``k`` documents (raw BSON) of ``match`` ordered by ``sort`` — one field,
    ascending or descending — computed on the shredded column when it is exact in every
    candidate file and the memtable rows (nulls/missing first ascending, last descending,
    as MongoDB orders them), reading ``_doc`` only for the winners. None: not applicable."""
    if len(sort) != 1 or k <= 0:
        return None
    (path, direction), = sort.items()
    c = engine.get_collection(db, coll)
    if c is None or direction not in (1, -1) or path not in c.specs or c.specs[path].kind not in _KEY_KINDS:
        return None
    plan = engine.plan(c, match or {})
    view, snapshot = engine._state(c)
    order = "ascending" if direction == 1 else "descending"
    nulls = "at_start" if direction == 1 else "at_end"
    parts: list[pa.Table] = []
    live = [(e.doc, bson.decode(e.doc, CODEC_OPTIONS)) for e in view.values() if e.doc is not None]
    if plan.matcher is not None:
        live = [x for x in live if plan.matcher(x[1])]
    if live:
        t, exact = columns.build_table([x[0] for x in live], [x[1] for x in live], {path: c.specs[path]})
        if path not in exact:
            return None
        t = _flat(t).select(["_key", path])
        if c.specs[path].kind == "double" and pc.any(pc.is_nan(t.column(path))).as_py():
            return None
        parts.append(t)
    shadow = pa.array(list(view.keys()), pa.binary()) if view else None
    for f in snapshot.files:
        if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
            continue
        exact_cols = set(f.null_count)
        if path not in exact_cols:
            return None
        fi = engine.reader.info(c.table, f)
        fspecs = fi.file_specs(plan.specs)
        arrow_expr, exact = pushdown(plan.expr, fspecs, exact_cols) if plan.expr is not None else (None, True)
        if not exact:
            return None
        cols = sorted({"_key", path.split(".", 1)[0], *(plan.top_columns & fi.top)})
        t = fi.pf.read(columns=cols)
        if arrow_expr is not None:
            t = t.filter(arrow_expr)
        if shadow is not None and t.num_rows:
            t = t.filter(pc.invert(pc.is_in(t.column("_key"), value_set=shadow)))
        t = _flat(t).select(["_key", path])
        if c.specs[path].kind == "double" and pc.any(pc.is_nan(t.column(path))).as_py():
            return None                       # MongoDB puts NaN below every number: keep its order
        if t.num_rows > k:                    # keep each part small
            t = t.take(pc.sort_indices(t, sort_keys=[(path, order, nulls)])[:k])
        parts.append(t)
    if not parts:
        return []
    data = pa.concat_tables(parts, promote_options="permissive")
    idx = pc.sort_indices(data, sort_keys=[(path, order, nulls)])[:k]
    out = []
    for key in data.column("_key").take(idx).to_pylist():
        raw = engine.lookup_key(c, key)
        if raw is not None:
            out.append(raw)
    return out


# --- column pruning -----------------------------------------------------------------------------------

# kinds whose Arrow value gives back the document's exact BSON value (type included); an int
# column cannot tell int32 from a small int64, a double column holds ints too: those are read
# from columns only where the pipeline uses nothing but their numeric value
_EXACT_KINDS = ("string", "bool", "objectId", "date")
_INT32 = (-(1 << 31), (1 << 31) - 1)


def prune_plan(c: Any, uses: dict[str, str]) -> list[str] | None:
    """The shredded columns to read for a pipeline reading ``uses`` (see
    mongolake.query.aggregate.deps), or None when one of them is not a column of a fitting kind."""
    if not uses:
        return []
    for path, use in uses.items():
        spec = c.specs.get(path)
        if spec is None or (use != "number" and spec.kind not in _EXACT_KINDS):
            return None
    return sorted(uses)


def _py_values(col: pa.ChunkedArray, kind: str) -> list:
    vals = col.to_pylist()
    if kind == "objectId":
        return [ObjectId(v) for v in vals]
    if kind == "date":
        return [v.replace(tzinfo=_dt.timezone.utc) for v in vals]
    if kind == "int":
        lo, hi = _INT32
        return [v if lo <= v <= hi else Int64(v) for v in vals]
    return vals


def _rows(t: pa.Table, paths: list[str], specs: dict) -> Iterator[dict]:
    t = _flat(t)
    cols = [_py_values(t.column(p), specs[p].kind) for p in paths]
    if all("." not in p for p in paths):
        for row in zip(*cols):
            yield dict(zip(paths, row))
        return
    parts = [p.split(".") for p in paths]
    for row in zip(*cols):
        d: dict = {}
        for ps, v in zip(parts, row):
            cur = d
            for p in ps[:-1]:
                cur = cur.setdefault(p, {})
            cur[ps[-1]] = v
        yield d


def scan_pruned(engine: "Engine", db: str, coll: str, match: dict | None, paths: list[str],
                stats: Any = None) -> Iterator[dict] | None:
    """The documents matching ``match`` in the order the document path reads them (files,
    then memtable rows), reduced to ``paths`` when read from columns: a file whose columns
    are all exact *without nulls* (so no missing field either) and whose filter pushdown is
    exact yields ``{path: value}`` documents built from those columns, never reading ``_doc``;
    other files and the memtable yield decoded documents. None when the read would not be a
    plain scan (an index, an ``_id`` lookup or a special index answers the filter)."""
    from .reads import id_point_keys
    from mongolake.query.filter import index_requirement

    c = engine.get_collection(db, coll)
    if c is None or id_point_keys(match) is not None:
        return None
    plan = engine.plan(c, match or {})
    if index_requirement(plan.expr) is not None or engine._index_plan(c, plan, match, None) is not None:
        return None
    return _scan_pruned(engine, c, plan, paths, stats)


def _scan_pruned(engine: "Engine", c: Any, plan: Any, paths: list[str], stats: Any) -> Iterator[dict]:
    from mongolake import deadline

    view, snapshot = engine._state(c)
    matcher = plan.matcher
    mem_hits = []
    for e in view.values():
        if e.doc is not None:
            d = bson.decode(e.doc, CODEC_OPTIONS)
            if matcher is None or matcher(d):
                mem_hits.append(d)
    if stats is not None:
        stats.memtable_docs = len(mem_hits)
        stats.files_from_columns = stats.files_from_documents = 0
    shadow = pa.array(list(view.keys()), pa.binary()) if view else None
    need_top = sorted({p.split(".", 1)[0] for p in paths})
    for f in snapshot.files:
        if stats is not None:
            stats.files_total += 1
        if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
            continue
        fi = engine.reader.info(c.table, f)
        exact_cols = set(f.null_count)
        fspecs = fi.file_specs(plan.specs)
        arrow_expr, exact = pushdown(plan.expr, fspecs, exact_cols) if plan.expr is not None else (None, True)
        columnar_file = exact and all(p in exact_cols and f.null_count[p] == 0 for p in paths)
        if stats is not None:
            stats.files_scanned += 1
            stats.pushdown_exact_files += int(exact)
            if columnar_file:
                stats.files_from_columns += 1
            else:
                stats.files_from_documents += 1
        cols = {"_key", *(plan.top_columns & fi.top)}
        cols.update(need_top if columnar_file else ("_doc",))
        cols_l = sorted(cols)
        for rg in range(fi.md.num_row_groups):
            deadline.check()
            if stats is not None:
                stats.row_groups_total += 1
            if plan.expr is not None and not zonemap.might_match(
                    plan.expr, fi.rowgroup_stats(rg, exact_cols, fspecs), fspecs):
                continue
            t = fi.pf.read_row_group(rg, columns=cols_l)
            if stats is not None:
                stats.row_groups_scanned += 1
                stats.rows_read += t.num_rows
            if arrow_expr is not None:
                t = t.filter(arrow_expr)
            if shadow is not None and t.num_rows:
                t = t.filter(pc.invert(pc.is_in(t.column("_key"), value_set=shadow)))
            if not t.num_rows:
                continue
            if columnar_file:
                yield from _rows(t, paths, plan.specs)
                continue
            raws = t.column("_doc").to_pylist()
            if stats is not None:
                stats.docs_decoded += len(raws)
            for raw in raws:
                d = bson.decode(raw, CODEC_OPTIONS)
                if exact or matcher is None or matcher(d):
                    yield d
    yield from mem_hits
