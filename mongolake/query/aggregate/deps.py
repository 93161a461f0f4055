"""Which fields of its input documents a pipeline reads (for column pruning).

:func:`source_fields` looks at the stages after the leading ``$match`` (which the
engine applies) and answers ``{path: use}`` when the pipeline's result depends
only on the values at those paths, or None when it may need anything else: the
whole document (``$$ROOT``, ``$$CURRENT``, ``$getField``, documents passed
through to the output), ``_id``, metadata, or the order of the fields.

``use`` is ``"value"`` when the value itself can reach the output (a group key,
``$first``, a projected field: its BSON type must be known exactly) or
``"number"`` when only its numeric value matters (a ``$match`` comparison, a
``$sort`` key, ``$avg``'s input: 5, ``Int64(5)`` and ``5.0`` behave alike).

Supported shapes: any run of ``$match`` / ``$sort`` / ``$skip`` / ``$limit``,
then a stage that builds new documents from those values: ``$group``,
``$bucket``, ``$sortByCount``, ``$count``, or a ``$project`` that excludes
``_id`` and includes at most one field as is (more would depend on the field
order of each stored document), the other fields being computed. Everything
after that stage reads only its output.
"""
from __future__ import annotations

from typing import Any

VALUE, NUMBER = "value", "number"
_OPAQUE = frozenset({"$getField", "$setField", "$unsetField", "$meta", "$function", "$accumulator", "$where"})
_FILTER_TOP = frozenset({"$and", "$or", "$nor"})


class _NeedsDocument(Exception):
    pass


class _Uses:
    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def add(self, path: str, use: str) -> None:
        if not path or path == "_id" or path.startswith("_id.") or path.startswith("$"):
            raise _NeedsDocument
        if self.paths.get(path) != VALUE:
            self.paths[path] = use

    # -- expressions ---------------------------------------------------------------------
    def expr(self, e: Any) -> None:
        if isinstance(e, str):
            if e.startswith("$$"):
                if e[2:].split(".", 1)[0] in ("ROOT", "CURRENT"):
                    raise _NeedsDocument
            elif e.startswith("$"):
                self.add(e[1:], VALUE)
        elif isinstance(e, list):
            for x in e:
                self.expr(x)
        elif isinstance(e, dict):
            for k, v in e.items():
                if k == "$literal":
                    continue
                if k in _OPAQUE:
                    raise _NeedsDocument
                if k == "vars" and isinstance(v, dict) and "CURRENT" in v:     # $let rebinding CURRENT
                    raise _NeedsDocument
                self.expr(v)

    # -- query filters -------------------------------------------------------------------
    def filter(self, f: Any) -> None:
        if not isinstance(f, dict):
            raise _NeedsDocument
        for k, v in f.items():
            if k in _FILTER_TOP:
                if not isinstance(v, list):
                    raise _NeedsDocument
                for sub in v:
                    self.filter(sub)
            elif k == "$expr":
                self.expr(v)
            elif k == "$comment":
                continue
            elif k.startswith("$"):
                raise _NeedsDocument                    # $text, $where, $jsonSchema, geo ...
            else:
                strict = isinstance(v, dict) and any(isinstance(op, str) and op in ("$type", "$elemMatch")
                                                     for op in v)
                self.add(k, VALUE if strict else NUMBER)

    # -- accumulators --------------------------------------------------------------------
    def accumulators(self, spec: dict, skip: tuple = ("_id",)) -> None:
        for out, acc in spec.items():
            if out in skip:
                continue
            if not isinstance(acc, dict) or len(acc) != 1:
                raise _NeedsDocument
            op, arg = next(iter(acc.items()))
            if op == "$avg" and isinstance(arg, str) and arg.startswith("$") and not arg.startswith("$$"):
                self.add(arg[1:], NUMBER)
            else:
                self.expr(arg)

    def project(self, spec: Any) -> None:
        if not isinstance(spec, dict) or spec.get("_id", True) not in (0, False):
            raise _NeedsDocument
        included = 0
        for k, v in spec.items():
            if k == "_id":
                continue
            if v is True or (isinstance(v, (int, float)) and not isinstance(v, bool) and v):
                included += 1
                self.add(k, VALUE)
            elif v is False or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                raise _NeedsDocument                    # exclusion: every other field goes out
            elif isinstance(v, dict) and v and not any(isinstance(x, str) and x.startswith("$") for x in v):
                raise _NeedsDocument                    # nested projection {a: {b: 1}}
            else:
                self.expr(v)
        if included > 1:
            raise _NeedsDocument


def source_fields(stages: list[tuple[str, Any]]) -> dict[str, str] | None:
    """``{path: "value" | "number"}`` read by ``stages`` (``(name, spec)`` pairs, the leading
    ``$match`` already removed), or None when the pipeline may need more than those values."""
    u = _Uses()
    try:
        for name, spec in stages:
            if name == "$match":
                u.filter(spec)
            elif name == "$sort":
                if not isinstance(spec, dict) or any(not isinstance(v, (int, float)) for v in spec.values()):
                    raise _NeedsDocument                # {$meta: ...}
                for k in spec:
                    u.add(k, NUMBER)
            elif name in ("$skip", "$limit"):
                continue
            elif name == "$group":
                u.expr(spec.get("_id"))
                u.accumulators(spec)
                return u.paths
            elif name == "$sortByCount":
                u.expr(spec)
                return u.paths
            elif name == "$bucket":
                u.expr(spec.get("groupBy"))
                u.accumulators(spec.get("output") or {}, skip=())
                return u.paths
            elif name == "$count":
                return u.paths
            elif name == "$project":
                u.project(spec)
                return u.paths
            else:
                return None
    except _NeedsDocument:
        return None
    return None                                         # the documents themselves are the output


__all__ = ["source_fields", "VALUE", "NUMBER"]
