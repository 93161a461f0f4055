"""Values that index keys and ``distinct`` are made of, by MongoDB's path rules."""
from __future__ import annotations

from typing import Any, Iterator

from mongolake.query.bsonorder import MISSING
from mongolake.query.paths import iter_path, split_path


def distinct_values(doc: dict, key: str) -> Iterator[Any]:
    """Values ``distinct`` counts for ``key``: array values contribute their elements."""
    for v, _ in iter_path(doc, split_path(key), traverse_leaf_arrays=True):
        if v is MISSING or isinstance(v, list):
            continue
        yield v


def index_key_values(doc: dict, fields: list[str], *, sparse: bool = False) -> tuple | None:
    """The key of ``doc`` in an index on ``fields`` (one value per field; a missing
    field indexes as null). None when a sparse index leaves the document out."""
    out = []
    present = False
    for f in fields:
        vals = [v for v, _ in iter_path(doc, split_path(f), traverse_leaf_arrays=False) if v is not MISSING]
        if vals:
            present = True
            out.append(vals[0] if len(vals) == 1 else vals)
        else:
            out.append(None)
    if sparse and not present:
        return None
    return tuple(out)
