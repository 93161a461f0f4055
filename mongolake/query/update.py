"""MongoDB updates: parse once with :func:`parse_update`, apply many with :meth:`Update.apply`.

An update specification is one of

* an operator document ``{$set: {...}, $inc: {...}}`` (the update tree of
  :mod:`update_tree`, operators in :mod:`update_ops` / :mod:`update_array_ops`);
* a replacement document ``{a: 1}`` (``_id`` kept; changing it is an error);
* an aggregation pipeline ``[{$set: ...}, {$unset: ...}, {$replaceWith: ...}]``
  (:mod:`update_pipeline`).

Parsing raises :class:`~mongolake.errors.MongoError` with mongod's codes for bad
specifications; applying raises for documents the update cannot apply to. Applying
never mutates its input: it returns an :class:`UpdateResult` holding a new document.

:func:`upsert_document` builds the document an upsert inserts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING, values_equal
from mongolake.query.docpath import copy_value, fmt_elem, fmt_value, identical, is_array_filter, type_name
from mongolake.query.update_array_ops import AddToSetNode, PopNode, PullAllNode, PullNode, PushNode
from mongolake.query.update_ops import (ArithmeticNode, BitNode, CompareNode, CurrentDateNode, RenameNode,
                                        SetNode, UnsetNode)
from mongolake.query.update_tree import ApplyContext, ArrayNode, InternalNode, Node, ObjectNode, PlaceholderNode

__all__ = ["Update", "UpdateResult", "parse_update", "upsert_document", "MODIFIERS"]

MODIFIERS: dict[str, Callable[[str, Any], Node]] = {
    "$set": SetNode,
    "$setOnInsert": lambda n, v: SetNode(n, v, insert_only=True),
    "$unset": UnsetNode,
    "$inc": lambda n, v: ArithmeticNode(n, v, op="+"),
    "$mul": lambda n, v: ArithmeticNode(n, v, op="*"),
    "$min": lambda n, v: CompareNode(n, v, sign=-1),
    "$max": lambda n, v: CompareNode(n, v, sign=1),
    "$currentDate": CurrentDateNode,
    "$bit": BitNode,
    "$push": PushNode,
    "$addToSet": AddToSetNode,
    "$pop": PopNode,
    "$pull": PullNode,
    "$pullAll": PullAllNode,
    "$rename": None,  # type: ignore[dict-item]  (special: two nodes)
}

_ID_RE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
_DOLLAR_HINT = ("is not allowed in the context of an update's replacement document. Consider using an "
                "aggregation pipeline with $replaceWith.")


@dataclass
class UpdateResult:
    """What :meth:`Update.apply` produced.

    ``document``: the new document (a new dict, never the input object).
    ``modified``: False for a no-op (the document is unchanged, byte for byte).
    ``description``: the change-stream ``updateDescription``
    (``{updatedFields, removedFields, truncatedArrays}``), or None for a replacement.
    """

    document: dict
    modified: bool
    description: dict | None = field(default=None)


# -- array filters -------------------------------------------------------------------------------

def _filter_identifier(spec: dict) -> str:
    """The single top-level field name (before the first dot) an array filter uses."""
    names: set[str] = set()

    def collect(obj: dict) -> None:
        for k, v in obj.items():
            if k in ("$and", "$or", "$nor") and isinstance(v, list):
                for sub in v:
                    if isinstance(sub, dict):
                        collect(sub)
            elif k.startswith("$"):
                continue
            else:
                names.add(k.split(".", 1)[0])

    collect(spec)
    if not names:
        raise MongoError(ErrorCode.FailedToParse,
                         "Cannot use an expression without a top-level field name in arrayFilters")
    if len(names) > 1:
        a, b = sorted(names)[:2]
        raise MongoError(ErrorCode.FailedToParse, "Error parsing array filter :: caused by :: Expected a single "
                                                  f"top-level field name, found '{a}' and '{b}'")
    ident = names.pop()
    if not _ID_RE.match(ident):
        raise MongoError(ErrorCode.BadValue, "Error parsing array filter :: caused by :: The top-level field name "
                                             "must be an alphanumeric string beginning with a lowercase letter, "
                                             f"found '{ident}'")
    return ident


def _parse_array_filters(array_filters: Any) -> dict[str, Callable[[Any], bool]]:
    if array_filters is None:
        return {}
    if not isinstance(array_filters, list):
        raise MongoError(ErrorCode.TypeMismatch, "arrayFilters must be an array")
    from mongolake.query.filter import parse_filter
    from mongolake.query.matcher import compile_matcher

    out: dict[str, Callable[[Any], bool]] = {}
    for spec in array_filters:
        if not isinstance(spec, dict):
            raise MongoError(ErrorCode.TypeMismatch, f"Each array filter must be an object, found {type_name(spec)}")
        ident = _filter_identifier(spec)
        if ident in out:
            raise MongoError(ErrorCode.FailedToParse,
                             f"Found multiple array filters with the same top-level field name {ident}")
        match = compile_matcher(parse_filter(spec))
        out[ident] = (lambda m, i: (lambda el: bool(m({i: el}))))(match, ident)
    return out


# -- operator updates ----------------------------------------------------------------------------

def _check_path(parts: list[str], path: str) -> None:
    if path == "":
        raise MongoError(ErrorCode.EmptyFieldName, "An empty update path is not valid.")
    if any(p == "" for p in parts):
        raise MongoError(ErrorCode.EmptyFieldName,
                         f"The update path '{path}' contains an empty field name, which is not allowed.")
    positional = [i for i, p in enumerate(parts) if p == "$"]
    if len(positional) > 1:
        raise MongoError(ErrorCode.BadValue, f"Too many positional (i.e. '$') elements found in path '{path}'")
    if positional and positional[0] == 0:
        raise MongoError(ErrorCode.BadValue,
                         f"Cannot have positional (i.e. '$') element in the first position in path '{path}'")


def _merge_leaf(root: ObjectNode, path: str, leaf: Node, filters: dict, found: set[str]) -> bool:
    """mongod's UpdateObjectNode::parseAndMerge; returns whether the path is positional."""
    parts = path.split(".")

    def child_name(i: int) -> str:
        p = parts[i]
        if not is_array_filter(p):
            return p
        if i == 0:
            raise MongoError(ErrorCode.BadValue, "Cannot have array filter identifier (i.e. '$[<id>]') element in "
                                                 f"the first position in path '{path}'")
        ident = p[2:-1]
        if ident and ident not in filters:
            raise MongoError(ErrorCode.BadValue, f"No array filter found for identifier '{ident}' in path '{path}'")
        if ident:
            found.add(ident)
        return ident

    current: InternalNode = root
    for i in range(len(parts) - 1):
        name = child_name(i)
        child = current.get(name)
        want_array = is_array_filter(parts[i + 1])
        if child is not None:
            if (want_array and not isinstance(child, ArrayNode)) or \
                    (not want_array and not isinstance(child, ObjectNode)):
                raise MongoError(ErrorCode.ConflictingUpdateOperators,
                                 f"Updating the path '{path}' would create a conflict at '{'.'.join(parts[:i + 1])}'")
        else:
            child = ArrayNode() if want_array else ObjectNode()
            current.put(name, child)
        current = child  # type: ignore[assignment]
    name = child_name(len(parts) - 1)
    if current.get(name) is not None:
        raise MongoError(ErrorCode.ConflictingUpdateOperators,
                         f"Updating the path '{path}' would create a conflict at '{path}'")
    current.put(name, leaf)
    return "$" in parts


def _parse_operators(spec: dict, filters: dict) -> tuple[ObjectNode, bool]:
    root = ObjectNode()
    positional = False
    found: set[str] = set()
    for op, args in spec.items():
        if op not in MODIFIERS:
            raise MongoError(ErrorCode.FailedToParse, f"Unknown modifier: {op}. Expected a valid update modifier or "
                                                      "pipeline-style update specified as an array")
        if not isinstance(args, dict):
            raise MongoError(ErrorCode.FailedToParse,
                             f"Modifiers operate on fields but we found type {type_name(args)} instead. For "
                             f"example: {{$mod: {{<field>: ...}}}} not {{{fmt_elem(op, args)}}}")
        for path, value in args.items():
            if op == "$rename":
                parts = path.split(".")
                _check_path(parts, path)
                positional |= _merge_leaf(root, path, PlaceholderNode(), filters, found)
                if not isinstance(value, str):
                    raise MongoError(ErrorCode.BadValue,
                                     f"The 'to' field for $rename must be a string: {fmt_elem(path, value)}")
                _check_path(value.split("."), value)
                leaf = RenameNode(path, value)
                positional |= _merge_leaf(root, value, leaf, filters, found)
                continue
            parts = path.split(".")
            _check_path(parts, path)
            leaf = MODIFIERS[op](path, value)
            positional |= _merge_leaf(root, path, leaf, filters, found)
    for ident in filters:
        if ident not in found:
            raise MongoError(ErrorCode.FailedToParse, f"The array filter for identifier '{ident}' was not used in "
                                                      f"the update {fmt_value(spec)}")
    return root, positional


# -- the Update object -----------------------------------------------------------------------------

class Update:
    """A parsed update. ``kind`` is ``"operator"``, ``"replacement"`` or ``"pipeline"``.

    ``positional`` tells whether the update uses the positional ``$`` operator (the
    caller must then pass the matched array ``position`` to :meth:`apply`).
    """

    def __init__(self, kind: str, *, tree: ObjectNode | None = None, replacement: dict | None = None,
                 pipeline: Any = None, positional: bool = False, array_filters: dict | None = None,
                 collation: Any = None, spec: Any = None):
        self.kind = kind
        self.tree = tree
        self.replacement = replacement
        self.pipeline = pipeline
        self.positional = positional
        self.array_filters = array_filters or {}
        self.collation = collation
        self.spec = spec

    def __repr__(self) -> str:
        return f"Update({self.kind}, {self.spec!r})"

    def apply(self, doc: dict, *, position: int | None = None, is_insert: bool = False,
              now: Any = None, timestamp: Timestamp | None = None) -> UpdateResult:
        """Apply to ``doc`` (unchanged); ``position`` is the array index the query's
        positional match found, ``is_insert`` enables ``$setOnInsert``, ``now`` (an aware
        datetime) and ``timestamp`` fix ``$currentDate``/``$$NOW``/``$$CLUSTER_TIME``."""
        if self.kind == "operator":
            return self._apply_operators(doc, position, is_insert, now, timestamp)
        if self.kind == "replacement":
            new = _replace(doc, self.replacement, timestamp=timestamp, now=now)
            return UpdateResult(new, not identical(new, doc), None)
        from mongolake.query.update_pipeline import describe_diff

        out = self.pipeline(doc, now=now, timestamp=timestamp)
        if "_id" not in out and "_id" in doc:
            out = {"_id": doc["_id"], **out}
        new = _replace(doc, out, timestamp=None, now=now)
        modified = not identical(new, doc)
        return UpdateResult(new, modified, describe_diff(doc, new) if modified else _empty_description())

    def _apply_operators(self, doc: dict, position: int | None, is_insert: bool, now: Any,
                         timestamp: Any) -> UpdateResult:
        new = copy_value(doc)
        ctx = ApplyContext(new, matched=None if position is None else str(int(position)), is_insert=is_insert,
                           now=now, timestamp=timestamp, array_filters=self.array_filters,
                           collation=self.collation)
        self.tree.apply(ctx, ctx.holder, 0, [], [])  # type: ignore[union-attr]
        if not ctx.modified:
            return UpdateResult(new, False, _empty_description())
        desc = {"updatedFields": {k: copy_value(v) for k, v in ctx.log.updated.items()},
                "removedFields": list(ctx.log.removed), "truncatedArrays": []}
        return UpdateResult(new, True, desc)


def _empty_description() -> dict:
    return {"updatedFields": {}, "removedFields": [], "truncatedArrays": []}


def _replace(doc: dict, replacement: dict, *, timestamp: Any, now: Any) -> dict:
    """The document after a replacement: ``_id`` kept (first) and checked unchanged."""
    new: dict = {}
    if "_id" in replacement:
        if "_id" in doc and not values_equal(doc["_id"], replacement["_id"]):
            raise MongoError(ErrorCode.ImmutableField,
                             "After applying the update, the (immutable) field '_id' was found to have been altered "
                             f"to {fmt_elem('_id', replacement['_id'])}")
        new["_id"] = copy_value(replacement["_id"])
    elif "_id" in doc:
        new["_id"] = copy_value(doc["_id"])
    for k, v in replacement.items():
        if k == "_id":
            continue
        if timestamp is not None and isinstance(v, Timestamp) and v.time == 0 and v.inc == 0:
            v = timestamp
        new[k] = copy_value(v)
    return new


def _check_replacement(spec: dict) -> None:
    for k in spec:
        if isinstance(k, str) and k.startswith("$"):
            raise MongoError(ErrorCode.DollarPrefixedFieldName,
                             f"The dollar ($) prefixed field '{k}' in '{k}' {_DOLLAR_HINT}")
    _check_id_value(spec)


def _check_id_value(doc: dict) -> None:
    if "_id" not in doc:
        return
    v = doc["_id"]
    t = type_name(v)
    if t in ("array", "regex", "undefined"):
        raise MongoError(ErrorCode.InvalidIdField, f"The '_id' value cannot be of type {t}")


def parse_update(spec: Any, *, array_filters: list | None = None, upsert: bool = False, collation: Any = None,
                 multi: bool = False, let: dict | None = None) -> Update:
    """Parse an update specification (see the module docstring).

    ``array_filters`` are the raw ``arrayFilters`` documents; ``collation`` a parsed
    :class:`~mongolake.query.collation.Collation` (or None); ``multi`` rejects
    replacements like mongod; ``let`` holds constants for pipeline updates.
    """
    del upsert  # accepted for symmetry with the command; upserts go through upsert_document
    if isinstance(spec, list):
        if array_filters:
            raise MongoError(ErrorCode.FailedToParse, "arrayFilters may not be specified for pipeline-style updates")
        from mongolake.query.update_pipeline import parse_pipeline

        return Update("pipeline", pipeline=parse_pipeline(spec, let=let, collation=collation), collation=collation,
                      spec=spec)
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.FailedToParse, "Update argument must be either an object or an array")
    first = next(iter(spec), None)
    if first is not None and isinstance(first, str) and first.startswith("$"):
        filters = _parse_array_filters(array_filters)
        tree, positional = _parse_operators(spec, filters)
        return Update("operator", tree=tree, positional=positional, array_filters=filters, collation=collation,
                      spec=spec)
    if multi:
        raise MongoError(ErrorCode.FailedToParse, "multi update is not supported for replacement-style update")
    _check_replacement(spec)
    return Update("replacement", replacement=spec, collation=collation, spec=spec)


# -- upserts ---------------------------------------------------------------------------------------

def _equalities(filter_spec: dict, only_id: bool) -> list[tuple[str, Any]]:
    from mongolake.query import filter as qf

    eqs: list[tuple[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, qf.And):
            for c in node.children:
                walk(c)
        elif isinstance(node, qf.Or) and len(node.children) == 1:
            walk(node.children[0])
        elif isinstance(node, qf.Compare) and node.op == "$eq":
            eqs.append((node.path, node.value))
        elif isinstance(node, qf.In) and len(node.values) == 1 and not node.regexes:
            eqs.append((node.path, node.values[0]))

    walk(qf.parse_filter(filter_spec or {}))
    if only_id:
        kept = []
        for path, v in eqs:
            parts = path.split(".")
            if parts[0] != "_id":
                continue
            if len(parts) > 1:
                raise MongoError(111, f"field at '_id' must be exactly specified, field at sub-path '{path}'found")
            kept.append((path, v))
        eqs = kept
    eqs.sort(key=lambda e: e[0])
    seen: dict[str, Any] = {}
    for path, _ in eqs:
        parts = path.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in seen:
                msg = (f"both paths '{path}' and '{prefix}' are matched" if i < len(parts)
                       else f"path '{path}' is matched twice")
                raise MongoError(ErrorCode.NotSingleValueField, f"cannot infer query fields to set, {msg}")
        seen[path] = True
    return eqs


def _set_path(doc: dict, path: str, value: Any) -> None:
    cur: Any = doc
    parts = path.split(".")
    for i, p in enumerate(parts[:-1]):
        nxt = cur.get(p, MISSING) if isinstance(cur, dict) else MISSING
        if nxt is MISSING:
            for q in reversed(parts[i + 1:]):
                value = {q: value}
            cur[p] = value
            return
        if not isinstance(nxt, dict):
            raise MongoError(ErrorCode.PathNotViable, f"Cannot create field '{parts[i + 1]}' in element "
                                                      f"{{{fmt_elem(p, nxt)}}}")
        cur = nxt
    cur[parts[-1]] = value


def upsert_document(filter_spec: dict, update: Update | Any, *, now: Any = None,
                    timestamp: Timestamp | None = None, array_filters: list | None = None,
                    collation: Any = None) -> dict:
    """The document an upsert inserts when ``filter_spec`` matched nothing.

    Equality conditions of the filter (``{a: 1}``, ``{"b.c": {$eq: 2}}``, inside
    ``$and``; only ``_id`` for a replacement) seed the document, the update is applied
    with ``is_insert=True`` (so ``$setOnInsert`` applies), ``_id`` is moved first or
    generated as a new ObjectId.
    """
    if not isinstance(update, Update):
        update = parse_update(update, array_filters=array_filters, upsert=True, collation=collation)
    seed: dict = {}
    for path, value in _equalities(filter_spec, update.kind == "replacement"):
        _set_path(seed, path, copy_value(value))
    res = update.apply(seed, is_insert=True, now=now, timestamp=timestamp)
    doc = res.document
    if "_id" in doc:
        if next(iter(doc)) != "_id":
            doc = {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    else:
        doc = {"_id": ObjectId(), **doc}
    _check_id_value(doc)
    return doc
