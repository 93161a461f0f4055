"""Safety net: pruning + pushdown + residual matching == matching every document.

Random documents (mixed types under the same names, nested documents, nested
arrays, nulls, missing fields, NaN, big integers, decimals) are shredded with
``infer_columns``/``build_table`` and written to Parquet files with several
small row groups. For random filters over every supported operator, the ids
found by (file zone map -> row-group zone map -> Arrow pushdown -> residual
matcher on ``_doc`` where the pushdown is inexact) must be exactly the ids the
matcher accepts when applied to every document.

Set MONGOLAKE_HYPOTHESIS_EXAMPLES to run more examples locally.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import random

import bson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mongolake.query.bsonorder import CODEC_OPTIONS, MISSING
from mongolake.query.columns import build_table, infer_columns
from mongolake.query.filter import parse_filter
from mongolake.query.keystring import encode_key
from mongolake.query.matcher import compile_matcher
from mongolake.query.paths import iter_path
from mongolake.query.pushdown import pushdown
from mongolake.query.zonemap import file_stats, might_match, rowgroup_stats

EXAMPLES = int(os.environ.get("MONGOLAKE_HYPOTHESIS_EXAMPLES", "100"))
UTC = dt.timezone.utc
OIDS = [ObjectId(bytes([i] * 12)) for i in (1, 5, 9, 200)]
DATES = [dt.datetime(2020, 1, d, tzinfo=UTC) for d in (1, 2, 15)] + [dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)]
STRINGS = ["", "a", "ab", "abc", "b", "ba", "Z", "a\x00", "é"]
BIG = [2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1, -(2 ** 63)]

scalars = st.one_of(
    st.integers(-3, 6),
    st.sampled_from(BIG),
    st.integers(-3, 6).map(Int64),
    st.sampled_from([0.5, -1.5, 2.0, 3.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e300, 2.0 ** 53]),
    st.sampled_from(STRINGS),
    st.booleans(),
    st.none(),
    st.sampled_from(DATES),
    st.sampled_from(OIDS),
    st.sampled_from([Decimal128("2"), Decimal128("2.5"), Decimal128("NaN"), Decimal128("-0")]),
)


def values(depth: int = 2):
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars, scalars, scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y", "0"]), inner, max_size=2),
    )


HOMOGENEOUS = {
    "int": st.one_of(st.integers(-3, 6), st.sampled_from(BIG), st.integers(-3, 6).map(Int64)),
    "double": st.one_of(st.sampled_from([0.5, -1.5, 2.0, -0.0, float("inf"), 1e300, 0.1, 2.01]),
                        st.integers(-3, 6).map(float)),
    "intdouble": st.one_of(st.integers(-3, 6), st.sampled_from([0.5, -1.5, 2.5] + BIG)),
    "string": st.sampled_from(STRINGS),
    "bool": st.booleans(),
    "date": st.sampled_from(DATES),
    "oid": st.sampled_from(OIDS),
}
PROFILES = ["mixed", "int", "double"] + list(HOMOGENEOUS)


@st.composite
def documents(draw):
    """Fields are usually of one type per example (so columns are often exact),
    with occasional pollution by other types, arrays, documents, nulls, missing."""
    prof = {f: draw(st.sampled_from(PROFILES)) for f in ("a", "b", "c", "n.x", "n.y")}

    def field_value(name):
        r = draw(st.integers(0, 19))
        if r == 0:
            return None
        if r == 1 or prof[name] == "mixed":
            return draw(values())
        return draw(HOMOGENEOUS[prof[name]])

    docs = []
    for _ in range(draw(st.integers(1, 14))):
        d = {}
        for f in ("a", "b", "c"):
            if draw(st.integers(0, 7)):
                d[f] = field_value(f)
        r = draw(st.integers(0, 9))
        if r >= 3:
            d["n"] = {k: field_value("n." + k) for k in ("x", "y") if draw(st.integers(0, 5))}
        elif r == 2:
            d["n"] = draw(values())
        docs.append(d)
    return docs


def id_for(i: int, kind: int):
    return [i, f"s{i:02d}", ObjectId(i.to_bytes(12, "big")), i + 0.5, Int64(1000 + i),
            dt.datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC) + dt.timedelta(seconds=i)][kind]


PATHS = ["a", "a", "a", "b", "b", "c", "c", "n", "n.x", "n.x", "n.y", "a.0", "a.x", "n.0", "_id", "_id"]
TYPES = ["number", "null", "array", "int", "long", "double", "string", "bool", "date", "objectId",
         "decimal", "object", 16, 1]
REGEXES = ["^a", "^ab", "b", "^a.*", "a$", "^$", "^é", "^ab?c", "^a\\d", "^b+", "^a|b"]
cmp_values = st.one_of(scalars, st.integers(-3, 6), st.sampled_from(STRINGS + DATES + OIDS + [0.5, 2.5]), st.sampled_from([MinKey(), MaxKey()]), st.lists(scalars, max_size=2),
                       st.integers(-3, 6).map(lambda i: id_for(abs(i), abs(i) % 5)))


def near(v):
    """Values that compare interestingly with ``v``: itself in other numeric
    types, neighbours, prefixes, the next millisecond."""
    out = [v]
    if isinstance(v, bool) or v is None:
        return out
    if isinstance(v, (int, float)) and v == v:
        out += [v + 0.5, v - 0.5, float(v), v + 1, v - 1]
        if abs(v) != float("inf"):
            out.append(Decimal128(f"{float(v)!r}1"))          # no double has this value
        if abs(v) < 1e18:
            out += [Decimal128(str(v)), Int64(int(v)) if isinstance(v, int) or float(v).is_integer() else v]
    elif isinstance(v, str):
        out += [v[:-1], v + "a", v + "\x00"]
    elif isinstance(v, dt.datetime):
        out += [v + dt.timedelta(milliseconds=1), v - dt.timedelta(milliseconds=1)]
    return out


def pool_of(docs):
    """Scalars in the documents (also inside arrays and sub-documents), with neighbours."""
    out = []

    def visit(x):
        if isinstance(x, dict):
            for y in x.values():
                visit(y)
        elif isinstance(x, list):
            for y in x:
                visit(y)
        else:
            out.extend(near(x))
    for d in docs:
        visit(d)
    return out


@st.composite
def leaf_filters(draw, vals=cmp_values):
    path = draw(st.sampled_from(PATHS))
    kind = draw(st.integers(0, 15))
    v = draw(vals)
    if kind == 0:
        return {path: v}
    if kind == 1:
        return {path: {draw(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"])): v}}
    if kind == 2:
        items = draw(st.lists(vals, max_size=3))
        if draw(st.booleans()):
            items.append(Regex(draw(st.sampled_from(REGEXES))))
        return {path: {draw(st.sampled_from(["$in", "$nin"])): items}}
    if kind == 3:
        return {path: {"$exists": draw(st.booleans())}}
    if kind == 4:
        return {path: {"$type": draw(st.sampled_from(TYPES))}}
    if kind == 5:
        return {path: {"$size": draw(st.integers(0, 2))}}
    if kind == 6:
        return {path: {"$regex": draw(st.sampled_from(REGEXES)), "$options": draw(st.sampled_from(["", "i", "s"]))}}
    if kind == 7:
        return {path: {"$mod": [draw(st.sampled_from([2, 3, -3])), draw(st.integers(-1, 1))]}}
    if kind == 8:
        return {path: {"$elemMatch": {draw(st.sampled_from(["$gt", "$lte", "$eq"])): v}}}
    if kind == 9:
        return {path: {"$elemMatch": {"x": v}}}
    if kind == 10:
        return {path: {"$all": draw(st.lists(scalars, min_size=1, max_size=2))}}
    if kind == 11:
        return {path: {"$not": {draw(st.sampled_from(["$gt", "$eq", "$lt"])): v}}}
    if kind == 12:
        op = draw(st.sampled_from(["$bitsAllSet", "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear"]))
        return {path: {op: draw(st.sampled_from([0, 1, 3, 6, [0, 2], [63], [70]]))}}
    if kind == 13:
        lo, hi = draw(vals), draw(vals)
        return {path: {draw(st.sampled_from(["$gt", "$gte"])): lo, draw(st.sampled_from(["$lt", "$lte"])): hi}}
    if kind == 14:
        return {path: {"$not": {"$regex": draw(st.sampled_from(REGEXES))}}}
    return {path: {"$exists": True, "$ne": v}}


def filters(vals=cmp_values):
    return st.recursive(
        leaf_filters(vals),
        lambda sub: st.one_of(
            st.builds(lambda op, xs: {op: xs}, st.sampled_from(["$and", "$or", "$nor"]),
                      st.lists(sub, min_size=1, max_size=3)),
            st.builds(lambda a, b: {**a, **b}, sub, sub),
        ),
        max_leaves=4,
    )


class _File:
    """One written data file: its row groups (read back into one table with a
    ``_rg`` column, so that a filter is evaluated once per file) and statistics."""

    def __init__(self, raw: list[bytes], docs: list[dict], specs, rg_size: int):
        order = sorted(range(len(docs)), key=lambda i: encode_key(docs[i]["_id"]))
        table, self.exact = build_table([raw[i] for i in order], [docs[i] for i in order], specs)
        buf = io.BytesIO()
        pq.write_table(table, buf, row_group_size=rg_size)
        pf = pq.ParquetFile(io.BytesIO(buf.getvalue()))
        md = pf.metadata
        self.stats = file_stats(md, self.exact, specs)
        self.rg_stats = [rowgroup_stats(md, i, self.exact, specs) for i in range(md.num_row_groups)]
        groups = [pf.read_row_group(i) for i in range(md.num_row_groups)]
        self.rg_keys = [set(t.column("_key").to_pylist()) for t in groups]
        self.table = pa.concat_tables(
            t.append_column("_rg", pa.array([i] * t.num_rows, pa.int32())) for i, t in enumerate(groups))
        self.keys = set().union(*self.rg_keys)


def _check_all(queries, decoded, files, specs):
    """Check many filters; all pushdown expressions of a file are evaluated in one
    Arrow projection (one boolean column per filter)."""
    trees = [parse_filter(q) for q in queries]
    matchers = [compile_matcher(t) for t in trees]
    expected = [{encode_key(d["_id"]) for d in decoded if m(d)} for m in matchers]
    got = [set() for _ in queries]
    for f in files:
        plans = {}
        for qi, (q, tree) in enumerate(zip(queries, trees)):
            if not might_match(tree, f.stats, specs):
                assert not (f.keys & expected[qi]), f"file pruned wrongly for {q}"
                continue
            live = set()
            for i, stats in enumerate(f.rg_stats):
                if might_match(tree, stats, specs):
                    live.add(i)
                else:
                    assert not (f.rg_keys[i] & expected[qi]), f"row group pruned wrongly for {q}"
            expr, is_exact = pushdown(tree, specs, f.exact)
            plans[qi] = (live, expr, is_exact)
        columns = {"_rg": pc.field("_rg"), "_key": pc.field("_key"), "_doc": pc.field("_doc")}
        columns.update({f"q{qi}": expr for qi, (_, expr, _) in plans.items() if expr is not None})
        out = ds.dataset(f.table).to_table(columns=columns)
        rgs, keys, docs = (out.column(c).to_pylist() for c in ("_rg", "_key", "_doc"))
        for qi, (live, expr, is_exact) in plans.items():
            kept = out.column(f"q{qi}").to_pylist() if expr is not None else [True] * len(keys)
            # the pushdown alone, on every row of the file: a superset, exact when it says so
            pushed = {key for key, k in zip(keys, kept) if k is True}
            wanted = expected[qi] & f.keys
            assert wanted <= pushed, f"pushdown dropped matching rows for {queries[qi]}: {expr}"
            assert not is_exact or pushed == wanted, f"inexact pushdown claimed exact for {queries[qi]}: {expr}"
            for rg, key, raw_doc, k in zip(rgs, keys, docs, kept):
                if k is True and rg in live and (is_exact or matchers[qi](bson.decode(raw_doc, CODEC_OPTIONS))):
                    got[qi].add(key)
    for q, e, g in zip(queries, expected, got):
        assert g == e, (f"filter {q}: missing {len(e - g)}, extra {len(g - e)}"
                        f" (exact columns: {[sorted(f.exact) for f in files]})")


def path_pool(decoded, path):
    """The values found at ``path`` (MongoDB path semantics), with neighbours."""
    parts = tuple(path.split("."))
    out = []
    for d in decoded:
        for v, _ in iter_path(d, parts):
            if not isinstance(v, (dict, list)) and v is not MISSING:
                out.extend(near(v))
    return out


MASKS = [0, 1, 3, 6, [0, 2], [63], [70]]
SYSTEMATIC = [  # (v, w: values near the column's data; r: a random.Random)
    lambda v, w, r: {"$eq": v}, lambda v, w, r: {"$ne": v}, lambda v, w, r: {"$gt": v},
    lambda v, w, r: {"$gte": v}, lambda v, w, r: {"$lt": v}, lambda v, w, r: {"$lte": v},
    lambda v, w, r: {"$in": [v, w]}, lambda v, w, r: {"$nin": [v, w]},
    lambda v, w, r: {"$gte": v, "$lt": w}, lambda v, w, r: {"$not": {"$gt": v}},
    lambda v, w, r: {"$type": r.choice(TYPES)}, lambda v, w, r: {"$not": {"$type": r.choice(TYPES)}},
    lambda v, w, r: {"$exists": r.random() < 0.5},
    lambda v, w, r: {"$in": [v, None]}, lambda v, w, r: {"$nin": [v, None]},
    lambda v, w, r: {"$regex": r.choice(REGEXES)}, lambda v, w, r: {"$not": {"$regex": r.choice(REGEXES)}},
    lambda v, w, r: {"$in": [v, Regex(r.choice(REGEXES))]},
    lambda v, w, r: {"$mod": [r.choice([2, 3, -3]), r.choice([-1, 0, 1])]},
    lambda v, w, r: {r.choice(["$bitsAllSet", "$bitsAnySet", "$bitsAllClear", "$bitsAnyClear"]): r.choice(MASKS)},
    lambda v, w, r: {"$size": r.choice([0, 1])}, lambda v, w, r: {"$elemMatch": {"$gte": v}},
]


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          derandomize=os.environ.get("MONGOLAKE_HYPOTHESIS_RANDOM") is None,
          phases=[Phase.explicit, Phase.generate] if os.environ.get("MONGOLAKE_HYPOTHESIS_NOSHRINK") else list(Phase),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(docs=documents(), id_kinds=st.lists(st.integers(0, 5), min_size=14, max_size=14),
       split=st.integers(1, 3), infer_prefix=st.integers(1, 14), rg_size=st.integers(1, 4),
       data=st.data())
def test_pruning_pushdown_residual_equals_matcher(docs, id_kinds, split, infer_prefix, rg_size, data):
    raw = []
    for i, d in enumerate(docs):
        d = dict(d)
        d["_id"] = id_for(i, id_kinds[i])
        raw.append(bson.encode(d))
    decoded = [bson.decode(r, CODEC_OPTIONS) for r in raw]
    specs = infer_columns(decoded[:infer_prefix], {})
    specs.update(infer_columns(decoded, specs, max_columns=len(specs) + 2))
    files = []
    for f in range(split):
        idx = list(range(f, len(docs), split))
        if idx:
            files.append(_File([raw[i] for i in idx], [decoded[i] for i in idx], specs, rg_size))

    pool = pool_of(decoded) + [d["_id"] for d in decoded]
    rnd = random.Random(data.draw(st.integers(0, 2 ** 32)))     # uniform picks (hypothesis favours the first items)
    from_pool = st.just(0).map(lambda _: rnd.choice(pool))
    vals = st.one_of(from_pool, from_pool, cmp_values)
    # every comparison operator on every column path (and _id) against values near the data
    queries = []
    for path in list(specs) + ["_id"]:
        local = path_pool(decoded, path) or pool
        for make in SYSTEMATIC:
            for _ in range(2):
                v, w = (rnd.choice(local) if rnd.random() < 0.8 else rnd.choice(pool) for _ in range(2))
                queries.append({path: make(v, w, rnd)})
    # then random filters over all operators, alone and combined
    queries += data.draw(st.lists(st.one_of(leaf_filters(vals), filters(vals)), min_size=4, max_size=12))
    _check_all(queries, decoded, files, specs)
