"""Projections: ``parse_projection(spec) -> Projection`` with MongoDB 4.4+ rules.

Find projections support inclusion (``{a: 1}``), exclusion (``{a: 0}``), the
``_id`` rules (included by default; ``{_id: 0}`` allowed in an inclusion, ``{_id: 1}``
in an exclusion), dotted paths and sub-documents (``{"a.b": 1}`` = ``{a: {b: 1}}``),
``$slice`` (``n`` or ``[skip, limit]``), ``$elemMatch``, the positional ``a.$``,
computed fields (``{x: "$a"}``, ``{x: {$add: [...]}}``) and literals
(``{x: "text"}``; numbers and booleans mean include/exclude). ``{x: {$meta:
"textScore"}}`` (and the other metadata a document carries, see
:mod:`mongolake.query.meta`) adds the value to inclusion and exclusion projections
alike; ``textScore`` in a find without ``$text`` is error 40218.

Errors use mongod's codes: 31253/31254 mixing inclusion and exclusion, 31252/31310
expressions in an exclusion, 31250/31249 path collisions, 31255/31256/31276 and
31277 for positional/``$elemMatch`` misuse, 31271/31308 positional with a value...

The same machinery serves the aggregation ``$project`` (``find=False``: no
find-only operators, ``$slice`` is the expression) and ``$addFields``/``$set``
(:func:`parse_add_fields`).

Output order: an inclusion keeps the document's field order for included fields;
computed fields and ``$elemMatch`` results follow, in specification order (mongod
4.4+). An exclusion keeps the document's order.
"""
from __future__ import annotations

from typing import Any

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING
from mongolake.query.docpath import type_name
from mongolake.query.projection_parse import (POSITIONAL, Computed, ElemMatch, Parser, Slice, Tree,
                                              mark_computed)

__all__ = ["Projection", "parse_projection", "parse_add_fields", "AddFields"]

class Projection:
    """A parsed projection; :meth:`apply` projects one document."""

    def __init__(self, tree: Tree, kind: str, parser: Parser, spec: Any):
        self.tree = tree
        self.kind = kind  # "inclusion" or "exclusion"
        self.spec = spec
        self.positional = parser.has_positional
        self.has_computed = parser.has_computed
        self.has_elem_match = parser.has_elem_match
        self.has_meta = parser.has_meta

    def __repr__(self) -> str:
        return f"Projection({self.kind}, {self.spec!r})"

    @property
    def fields_needed(self) -> set[str] | None:
        """Top-level fields the projection reads (None: it may read any field)."""
        if self.kind == "exclusion" or self.has_computed:
            return None
        return {k for k, ch in self.tree.children.items() if ch is not False}

    def apply(self, doc: dict, *, position: int | None = None, variables: dict | None = None) -> dict:
        """The projected document (a new dict; ``doc`` is unchanged).

        ``position`` is the array index matched by the query (for ``a.$``);
        ``variables`` are expression variables (``NOW``, ``let`` constants ...).
        """
        if self.kind == "exclusion":
            out = _exclude(self.tree, doc)
            if self.has_meta:                  # {$meta: ...} fields in an exclusion projection
                return _expressions(self.tree, out, _State(doc, position, variables or {}), doc)
            return out
        state = _State(doc, position, variables or {})
        out = _include(self.tree, doc, state)
        return _expressions(self.tree, out, state, doc)


class _State:
    __slots__ = ("root", "position", "variables")

    def __init__(self, root: dict, position: int | None, variables: dict):
        self.root = root
        self.position = position
        self.variables = variables


def _positional_value(v: Any, state: _State) -> Any:
    if not isinstance(v, list):
        return v
    if state.position is None:
        raise MongoError(51246, "positional operator '.$' couldn't find a matching element in the array")
    if state.position >= len(v):
        raise MongoError(51247, "positional operator '.$' element mismatch")
    return [v[state.position]]


def _has_positional(tree: Tree) -> bool:
    return any(ch is POSITIONAL or (isinstance(ch, Tree) and _has_positional(ch)) for ch in tree.children.values())


def _include(tree: Tree, doc: dict, state: _State) -> dict:
    out: dict = {}
    for k, v in doc.items():
        ch = tree.children.get(k, MISSING)
        if ch is MISSING or ch is False:
            continue
        if ch is True:
            out[k] = v
        elif isinstance(ch, Tree):
            r = _include_value(ch, v, state)
            if r is not MISSING:
                out[k] = r
        elif isinstance(ch, Slice):
            out[k] = ch.apply(v)
        elif ch is POSITIONAL:
            out[k] = _positional_value(v, state)
    return out


def _include_value(tree: Tree, v: Any, state: _State) -> Any:
    if isinstance(v, dict):
        return _include(tree, v, state)
    if isinstance(v, list):
        if state is not None and _has_positional(tree):
            return _positional_value(v, state)
        out = []
        for el in v:
            if isinstance(el, (dict, list)):
                r = _include_value(tree, el, state)
                if r is not MISSING:
                    out.append(r)
        return out
    return MISSING


def _expressions(tree: Tree, out: dict, state: _State, source: Any) -> dict:
    """Second phase: computed fields and ``$elemMatch`` (appended or replaced in place)."""
    for k, ch in tree.children.items():
        if isinstance(ch, Computed):
            val = ch.fn(state.root, state.variables)
            if val is not MISSING:
                out[k] = val
            else:
                out.pop(k, None)
        elif isinstance(ch, ElemMatch):
            r = ch.apply(source.get(k, MISSING) if isinstance(source, dict) else MISSING)
            if r is not MISSING:
                out[k] = r
        elif isinstance(ch, Tree) and ch.has_computed:
            out[k] = _expressions_value(ch, out.get(k, MISSING), state)
    return out


def _expressions_value(tree: Tree, v: Any, state: _State) -> Any:
    if isinstance(v, dict):
        return _expressions(tree, dict(v), state, None)
    if isinstance(v, list):
        return [_expressions_value(tree, el, state) for el in v]
    return _expressions(tree, {}, state, None)


def _exclude(tree: Tree, doc: dict) -> dict:
    out: dict = {}
    for k, v in doc.items():
        ch = tree.children.get(k, MISSING)
        if ch is MISSING or ch is True:
            out[k] = v
        elif ch is False:
            continue
        elif isinstance(ch, Tree):
            out[k] = _exclude_value(ch, v)
        elif isinstance(ch, Slice):
            out[k] = ch.apply(v)
        else:
            out[k] = v
    return out


def _exclude_value(tree: Tree, v: Any) -> Any:
    if isinstance(v, dict):
        return _exclude(tree, v)
    if isinstance(v, list):
        return [_exclude_value(tree, el) for el in v]
    return v


def parse_projection(spec: Any, *, filter_spec: dict | None = None, find: bool = True) -> Projection:
    """Parse a find projection (``find=False``: an aggregation ``$project``).

    ``filter_spec`` (the query) lets positional projections be validated (31277).
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "projection must be an object")
    p = Parser(find, filter_spec, "project")
    for name, value in spec.items():
        if name == "_id" or name.startswith("_id."):
            p.id_specified = True
        p.element(p.root, name, value, "")
    kind = p.type
    if kind is None:
        if p.has_slice:
            kind = "inclusion" if p.id_included else "exclusion"
        elif p.has_elem_match:
            kind = "inclusion"
        elif p.id_included:
            kind = "inclusion"
        else:
            kind = "exclusion"
    if not p.id_specified and kind == "inclusion":
        p.root.children["_id"] = True
    if kind == "exclusion" and p.root.children.get("_id") is True:
        del p.root.children["_id"]
    mark_computed(p.root)
    return Projection(p.root, kind, p, spec)


class AddFields:
    """``$addFields``/``$set``: computed fields merged into the whole document."""

    def __init__(self, tree: Tree, spec: Any):
        self.tree = tree
        self.spec = spec

    def apply(self, doc: dict, *, variables: dict | None = None) -> dict:
        state = _State(doc, None, variables or {})
        return _expressions(self.tree, dict(doc), state, doc)


def parse_add_fields(spec: Any) -> AddFields:
    """Parse an ``$addFields``/``$set`` stage body (nested objects add sub-fields)."""
    if not isinstance(spec, dict):
        raise MongoError(40272, "$addFields specification stage must be an object, got " + type_name(spec))
    p = Parser(False, None, "addFields")
    for name, value in spec.items():
        p.element(p.root, name, value, "")
    mark_computed(p.root)
    return AddFields(p.root, spec)
