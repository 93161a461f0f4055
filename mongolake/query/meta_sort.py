"""``$sort`` keys over document metadata (``{score: {$meta: "textScore"}}``) for the
aggregation ``$sort`` stage, and sorting of :class:`~mongolake.query.meta.MetaDoc`
documents (which the plain sort-key code, written for exact ``dict``\\ s, would
read as empty).

A ``$meta`` key sorts highest first; a document without the metadata is error
40218 for ``textScore`` (the pipeline has no ``$text``), as in MongoDB.
"""
from __future__ import annotations

from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.meta import MetaDoc

META_SORTABLE = ("textScore", "searchScore", "vectorSearchScore")
_PREFIX = "\x00$meta:"


def parse_fields(spec: Any) -> list[tuple[list[str], int]]:
    """``parse_sort_spec`` with ``$meta`` keys allowed: they become fields whose
    single path part names the metadata (descending)."""
    from mongolake.query.expr.sortspec import parse_sort_spec

    if not isinstance(spec, dict) or not any(_meta_name(v) for v in spec.values()):
        return parse_sort_spec(spec)
    fields: list[tuple[list[str], int]] = []
    for k, v in spec.items():
        name = _meta_name(v)
        if name:
            parse_sort_spec({k: 1})                 # the field name is still validated
            fields.append(([_PREFIX + name], -1))
        else:
            fields.extend(parse_sort_spec({k: v}))
    return fields


def _meta_name(v: Any) -> str | None:
    if isinstance(v, dict) and len(v) == 1 and v.get("$meta") in META_SORTABLE:
        return v["$meta"]
    return None


def make_key(fields: list[tuple[list[str], int]]) -> Callable[[Any], Any]:
    """``sortspec.make_key`` that also reads metadata fields and MetaDoc documents."""
    from mongolake.query.expr.sortspec import make_key as plain_key

    inner = plain_key(fields)
    metas = [p[0][len(_PREFIX):] for p, _d in fields if len(p) == 1 and p[0].startswith(_PREFIX)]

    def view(doc: Any) -> Any:
        if type(doc) is not MetaDoc:
            if metas:
                _missing(metas[0])
            return doc
        out = dict(doc)
        for name in metas:
            v = doc.meta.get(name)
            if v is None:
                if name == "textScore" and doc.meta.get("$textMatched") is not None:
                    v = 0.0
                else:
                    _missing(name)
            out[_PREFIX + name] = v
        return out

    def key(doc: Any) -> Any:
        return inner(view(doc))

    key.encode = lambda doc: inner.encode(view(doc))  # type: ignore[attr-defined]
    key.directions = inner.directions  # type: ignore[attr-defined]
    return key


def _missing(name: str) -> None:
    if name == "textScore":
        raise MongoError(40218, "query requires text score metadata, but it is not available")
    raise MongoError(ErrorCode.BadValue, f"query requires {name} metadata, but it is not available")
