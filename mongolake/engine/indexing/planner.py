"""Choosing a secondary index for a filter, and the key ranges to scan.

Only top-level conjuncts are used: ``Compare`` (``$eq $gt $gte $lt $lte``) and
``$in`` without regexes, whose index bounds come from
:func:`keystring.key_range` (MongoDB's type bracketing). Every candidate is
re-checked with the full matcher, so bounds only have to be a superset:

* equality / ``$in`` on a prefix of the key pattern, then optionally one range on
  the next (ascending) field;
* two range conjuncts on one field are intersected only while the index is not
  multikey (``{a: {$gt: 5, $lt: 10}}`` matches ``a: [1, 20]``);
* a sparse index is used only when its leading bounds exclude null (a missing
  field could match); a partial index only when the query contains every
  top-level condition of its ``partialFilterExpression``; a hashed field only for
  equality. A ``hint`` forces an index (a full index scan when no bounds apply).

**Sort.** A plan *provides* a sort ``{f1: d1, f2: d2, ...}`` (no in-memory sort,
the walk stops after the limit) when the index is not multikey and has no
hashed field, the sort fields are consecutive index fields — every index field
before them bound to a single point — and the directions all agree with the
key pattern (forward walk) or all disagree (backward walk). A trailing ``_id``
is provided too when every index field after the sort fields is a single point:
entries are ``(index key, _key)`` pairs, so equal index keys come in ``_id``
order. Without a bounding predicate an index is chosen for its order only when
the query has a limit (walking a whole index and fetching each document costs
more than a scan and a sort).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

import bson

from mongolake.query import keystring
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.filter import And, Compare, In, Node, is_regex

from .index import NULL_KEY, SecondaryIndex, desc_key

Range = tuple[bytes | None, bool, bytes | None, bool]
FULL: Range = (None, True, None, True)
MAX_PREFIXES = 4096


@dataclass
class IndexPlan:
    index: SecondaryIndex
    ranges: list[Range]
    bounds: dict[str, Any] = field(default_factory=dict)     # for explain
    score: int = 0
    points: list[bool] = field(default_factory=list)         # per field: bound to a single point
    direction: int = 1                                       # -1: walk the index backwards
    sorted: bool = False                                     # the walk's order is the query's sort


def conjuncts(expr: Node | None) -> list[Node]:
    if expr is None:
        return []
    return list(expr.children) if isinstance(expr, And) else [expr]


def _field_preds(expr: Node | None) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in conjuncts(expr):
        if isinstance(n, Compare) and not is_regex(n.value):
            out.setdefault(n.path, []).append(n)
        elif isinstance(n, In) and not n.regexes and n.values:
            out.setdefault(n.path, []).append(n)
    return out


def _eq_keys(preds: list[Node]) -> list[bytes] | None:
    """Keys of an equality or ``$in`` conjunct on a field (the smallest one), or None."""
    best = None
    for p in preds:
        if isinstance(p, Compare) and p.op == "$eq":
            ks = [keystring.encode_key(p.value)]
        elif isinstance(p, In):
            ks = sorted({keystring.encode_key(v) for v in p.values})
        else:
            continue
        if best is None or len(ks) < len(best):
            best = ks
    return best


def _range(preds: list[Node], multikey: bool) -> Range | None:
    """A range over one field from its comparison conjuncts, or None."""
    rs = []
    for p in preds:
        if isinstance(p, Compare) and p.op in ("$gt", "$gte", "$lt", "$lte"):
            r = keystring.key_range(p.op, p.value)
            if r is not None:
                rs.append(r)
    if not rs:
        return None
    if multikey or len(rs) == 1:
        return rs[0]
    lo, lo_incl, hi, hi_incl = rs[0]
    for a, ai, b, bi in rs[1:]:
        if a is not None and (lo is None or a > lo or (a == lo and not ai)):
            lo, lo_incl = a, ai
        if b is not None and (hi is None or b < hi or (b == hi and not bi)):
            hi, hi_incl = b, bi
    if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_incl and hi_incl))):
        return rs[0]            # empty intersection: keep one side, the matcher decides
    return lo, lo_incl, hi, hi_incl


def _pfe_implied(pfe: dict, spec: dict | None) -> bool:
    if not spec:
        return False
    have = set()
    items = list(spec.items())
    for k, v in spec.items():
        if k == "$and" and isinstance(v, list):
            items += [i for c in v if isinstance(c, dict) for i in c.items()]
    for k, v in items:
        try:
            have.add(bson.encode({k: v}, codec_options=CODEC_OPTIONS))
        except Exception:
            pass
    try:
        return all(bson.encode({k: v}, codec_options=CODEC_OPTIONS) in have for k, v in pfe.items())
    except Exception:
        return False


def _contains_null(ranges: list[Range]) -> bool:
    for lo, lo_incl, hi, hi_incl in ranges:
        above = lo is None or lo < NULL_KEY or (lo_incl and NULL_KEY.startswith(lo))
        below = hi is None or hi > NULL_KEY or (hi_incl and NULL_KEY.startswith(hi))
        if above and below:
            return True
    return False


def plan_for(ix: SecondaryIndex, expr: Node | None, spec: dict | None, hinted: bool = False,
             unbounded: bool = False) -> IndexPlan | None:
    """The plan of one index, or None when it does not help (``unbounded``: keep
    a plan without bounds too, for its order)."""
    preds = _field_preds(expr)
    prefixes: list[bytes] = [b""]
    bounds: dict[str, Any] = {}
    ranges: list[Range] | None = None
    score = 0
    points = [False] * len(ix.fields)
    for i, f in enumerate(ix.fields):
        fp = preds.get(f, [])
        eq = _eq_keys(fp)
        if eq is not None and len(prefixes) * len(eq) <= MAX_PREFIXES:
            if ix.desc[i]:
                eq = sorted(desc_key(k) for k in eq)
            prefixes = [p + k for p, k in product(prefixes, eq)]
            bounds[f] = f"{len(eq)} point(s)"
            points[i] = len(eq) == 1
            score += 3
            continue
        is_hashed = ix.spec["key"][f] == "hashed"
        r = None if (ix.desc[i] or is_hashed) else _range(fp, ix.multikey)
        if r is not None:
            lo, lo_incl, hi, hi_incl = r
            ranges = [(p + lo if lo is not None else (p or None), lo_incl if lo is not None else True,
                       p + hi if hi is not None else (p or None), hi_incl if hi is not None else True)
                      for p in prefixes]
            bounds[f] = "range"
            score += 1
        break
    if ranges is None:
        ranges = [(p, True, p, True) for p in prefixes] if prefixes != [b""] else [FULL]
    if not score and not hinted and not unbounded:
        return None
    if ix.hashed and not hinted and any(ix.spec["key"][f] == "hashed" and bounds.get(f) == "range"
                                        for f in ix.fields):
        return None
    if ix.sparse and not hinted:
        lead = ix.fields[0]
        if lead not in bounds or _contains_null(_lead_ranges(ix, preds)):
            return None
    if ix.partial is not None and not hinted and not _pfe_implied(ix.spec["partialFilterExpression"], spec):
        return None
    ranges.sort(key=lambda r: (r[0] is not None, r[0] or b""))
    return IndexPlan(ix, ranges, bounds, score, points)


def sort_direction(p: IndexPlan, sort: list[tuple[str, Any]]) -> int | None:
    """1 / -1 when walking ``p`` forwards / backwards yields ``sort``'s order, else None."""
    ix = p.index
    if ix.multikey or ix.hashed or not sort:
        return None
    items = list(sort)
    tail_id = None
    if items[-1][0] == "_id" and "_id" not in ix.fields:
        tail_id = items.pop()[1]
    if any(isinstance(d, bool) or d not in (1, -1) for _f, d in items) or tail_id not in (None, 1, -1):
        return None
    i = 0
    if items:
        while i < len(ix.fields) and ix.fields[i] != items[0][0]:
            if not p.points[i]:
                return None
            i += 1
        if i + len(items) > len(ix.fields):
            return None
    sign = None
    for k, (f, d) in enumerate(items):
        if ix.fields[i + k] != f:
            return None
        s = d * (-1 if ix.desc[i + k] else 1)
        if sign is None:
            sign = s
        elif s != sign:
            return None
    if tail_id is not None:
        if not all(p.points[i + len(items):]):
            return None
        if sign is None:
            sign = tail_id
        elif tail_id != sign:
            return None
    return sign


def _lead_ranges(ix: SecondaryIndex, preds: dict[str, list[Node]]) -> list[Range]:
    fp = preds.get(ix.fields[0], [])
    eq = _eq_keys(fp)
    if eq is not None:
        if ix.desc[0]:
            return [(NULL_KEY, True, NULL_KEY, True)] if NULL_KEY in eq else []
        return [(k, True, k, True) for k in eq]
    r = _range(fp, ix.multikey)
    return [r] if r is not None else [FULL]


def choose(indexes: list[SecondaryIndex], expr: Node | None, spec: dict | None,
           hint: Any = None, sort: list[tuple[str, Any]] | None = None, sort_only: bool = False
           ) -> IndexPlan | None:
    """The best index plan for a filter (and ``sort``), the hinted index's plan, or
    None (collection scan). Plans are ranked by their bounds, then by providing the
    sort; ``sort_only``: a plan without bounds may win for its order alone."""
    if hint is not None:
        for ix in indexes:
            if hint == ix.name or (isinstance(hint, dict) and list(hint.items()) == list(ix.spec["key"].items())):
                p = plan_for(ix, expr, spec, hinted=True)
                if p is not None and sort:
                    _set_order(p, sort)
                return p
        return None
    best = None
    for ix in indexes:
        p = plan_for(ix, expr, spec, unbounded=bool(sort and sort_only))
        if p is None:
            continue
        if sort:
            _set_order(p, sort)
        if not p.score and not p.sorted:
            continue
        if best is None or (p.score, p.sorted) > (best.score, best.sorted):
            best = p
    return best


def _set_order(p: IndexPlan, sort: list[tuple[str, Any]]) -> None:
    d = sort_direction(p, sort)
    if d is not None:
        p.direction, p.sorted = d, True
