"""The projection parser: specification -> tree of nodes (see :mod:`projection`).

Node kinds in a :class:`Tree`: ``True`` (include), ``False`` (exclude),
:class:`Computed` (expression), :class:`Slice` (find ``$slice``), :class:`ElemMatch`
(find ``$elemMatch``), :data:`POSITIONAL` (find ``a.$``), or a nested :class:`Tree`.
"""
from __future__ import annotations

from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING, is_number, to_number
from mongolake.query.docpath import fmt_elem, type_name

_META_NAMES = ("textScore", "searchScore", "searchHighlights", "searchSequenceToken", "randVal", "sortKey",
               "recordId", "indexKey", "geoNearDistance", "geoNearPoint", "vectorSearchScore", "score",
               "scoreDetails")
# metadata a projection can read from a document (MetaDoc); the others answer NotImplemented
_META_PROJECTABLE = ("textScore", "searchScore", "geoNearDistance", "geoNearPoint", "vectorSearchScore")


class Tree:
    """An internal node of the projection: children by field name (specification order)."""

    __slots__ = ("children", "has_computed")

    def __init__(self) -> None:
        self.children: dict[str, Any] = {}
        self.has_computed = False


class Computed:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[dict, dict], Any]):
        self.fn = fn


class Slice:
    __slots__ = ("skip", "limit")

    def __init__(self, skip: int | None, limit: int):
        self.skip = skip
        self.limit = limit

    def apply(self, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        if self.skip is None:
            n = self.limit
            return v[:n] if n >= 0 else v[max(0, len(v) + n):]
        start = self.skip if self.skip >= 0 else max(0, len(v) + self.skip)
        return v[start:start + self.limit]


class ElemMatch:
    __slots__ = ("field", "fn")

    def __init__(self, field: str, fn: Callable[[dict], bool]):
        self.field = field
        self.fn = fn

    def apply(self, v: Any) -> Any:
        if not isinstance(v, list):
            return MISSING
        for el in v:
            if self.fn({self.field: [el]}):
                return [el]
        return MISSING


class Positional:
    __slots__ = ()


POSITIONAL = Positional()


def _compile_expression(spec: Any) -> Callable[[dict, dict], Any]:
    from mongolake.query.expressions import compile_expression

    return compile_expression(spec)


def _check_field_path(path: str) -> list[str]:
    parts = path.split(".")
    for p in parts:
        if p == "":
            raise MongoError(15998, "FieldPath field names may not be empty strings.")
        if p.startswith("$"):
            raise MongoError(16410, "FieldPath field names may not start with '$'. Consider using $getField or "
                                    "$setField.")
    return parts


def _first_positional(path: str) -> tuple[int, int] | None:
    i = path.find(".$.")
    if i != -1:
        return i, i + 3
    if path.endswith(".$"):
        return len(path) - 2, len(path)
    if path == "$":
        return 0, 1
    return None


class Parser:
    def __init__(self, find: bool, filter_spec: dict | None, mode: str):
        self.find = find
        self.filter_spec = filter_spec
        self.mode = mode  # "project" or "addFields"
        self.type: str | None = None
        self.id_specified = False
        self.id_included = False
        self.id_excluded = False
        self.has_positional = False
        self.has_elem_match = False
        self.has_slice = False
        self.has_meta = False
        self.has_computed = False
        self.root = Tree()

    # -- tree building ------------------------------------------------------------------------
    def add(self, parent: Tree, path: str, node: Any) -> None:
        parts = _check_field_path(path)
        cur = parent
        for i, p in enumerate(parts[:-1]):
            child = cur.children.get(p)
            if child is None:
                child = Tree()
                cur.children[p] = child
            elif not isinstance(child, Tree):
                raise MongoError(31249, f"Path collision at {path} remaining portion {'.'.join(parts[i + 1:])}")
            cur = child
        if parts[-1] in cur.children:
            raise MongoError(31250, f"Path collision at {path}")
        cur.children[parts[-1]] = node

    def subtree(self, parent: Tree, path: str) -> Tree:
        parts = _check_field_path(path)
        cur = parent
        for i, p in enumerate(parts):
            child = cur.children.get(p)
            if child is None:
                child = Tree()
                cur.children[p] = child
            elif not isinstance(child, Tree):
                raise MongoError(31250, f"Path collision at {path}")
            cur = child
        return cur

    # -- elements -------------------------------------------------------------------------------
    def element(self, parent: Tree, name: str, value: Any, prefix: str) -> None:
        pos = _first_positional(name)
        if pos is not None and not self.find:
            raise MongoError(31324, "Cannot use positional projection in aggregation projection")
        if isinstance(value, dict):
            if pos is not None:
                raise MongoError(31271, "positional projection cannot be used with an expression or sub object")
            self.sub_object(parent, name, value, prefix)
        elif self.mode == "project" and (isinstance(value, bool) or is_number(value)):
            truthy = bool(value) if isinstance(value, bool) else to_number(value) != 0
            if truthy:
                self.inclusion(parent, name, prefix, pos)
            else:
                self.exclusion(parent, name)
        else:
            if pos is not None:
                raise MongoError(31308, "positional projection cannot be used with a literal")
            self.computed(parent, name, value)

    def computed(self, parent: Tree, name: str, spec: Any) -> None:
        if self.mode == "project" and self.type == "exclusion":
            raise MongoError(31310, f"Cannot use an expression {fmt_elem(name, spec)} in an exclusion projection")
        fn = _compile_expression(spec)
        self.add(parent, name, Computed(fn))
        self.has_computed = True
        if self.mode == "project":
            self.type = "inclusion"

    def inclusion(self, parent: Tree, name: str, prefix: str, pos: tuple[int, int] | None) -> None:
        top_id = name == "_id" and parent is self.root
        if pos is None:
            self.add(parent, name, True)
            if top_id:
                self.id_included = True
        else:
            if self.has_positional:
                raise MongoError(31276, "Cannot specify more than one positional projection per query.")
            if self.has_elem_match:
                raise MongoError(31256, "Cannot specify positional operator and $elemMatch.")
            full = prefix + name
            if self.filter_spec is not None:
                match_field = full.split(".", 1)[0]
                if match_field not in _filter_fields(self.filter_spec):
                    raise MongoError(31277, f"Positional projection '{name}' does not match the query document.")
            if name.endswith(".$."):
                raise MongoError(31270, "Path cannot end with '.$.'")
            begin, end = pos
            rest = name[end:]
            if _first_positional(rest) is not None or rest == "$":
                raise MongoError(31287, f"Cannot use positional operator twice: {name}")
            self.add(parent, name[:begin], POSITIONAL)
            self.has_positional = True
        if not top_id:
            if self.type == "exclusion":
                raise MongoError(31253, f"Cannot do inclusion on field {name} in exclusion projection")
            self.type = "inclusion"

    def exclusion(self, parent: Tree, name: str) -> None:
        self.add(parent, name, False)
        if name == "_id" and parent is self.root:
            self.id_excluded = True
            return
        if self.type == "inclusion":
            raise MongoError(31254, f"Cannot do exclusion on field {name} in inclusion projection")
        self.type = "exclusion"

    def sub_object(self, parent: Tree, name: str, obj: dict, prefix: str) -> None:
        if len(obj) == 1:
            op = next(iter(obj))
            if op.startswith("$"):
                self.operator(parent, name, op, obj[op], obj)
                return
        if self.mode == "addFields" and not obj:
            self.computed(parent, name, obj)
            return
        if self.mode == "project" and not obj:
            raise MongoError(51270, "An empty sub-projection is not a valid value. Found empty object at path")
        sub = self.subtree(parent, name)
        for k, v in obj.items():
            self.element(sub, k, v, prefix + name + ".")

    def operator(self, parent: Tree, name: str, op: str, arg: Any, obj: dict) -> None:
        if self.find and self.mode == "project" and op == "$slice":
            try:
                node = self.find_slice(arg)
            except MongoError as find_error:
                try:
                    self.computed(parent, name, obj)
                except MongoError as exc:
                    raise MongoError(exc.code, f"Invalid $slice syntax. The given syntax {{ $slice: {arg!r} }} did "
                                               f"not match the find() syntax because :: {find_error.message} :: The "
                                               "given syntax did not match the expression $slice syntax. :: caused "
                                               f"by :: {exc.message}") from None
                return
            self.add(parent, name, node)
            self.has_slice = True
            return
        if op == "$elemMatch" and self.mode == "project":
            if not self.find:
                raise MongoError(168, "Cannot use $elemMatch in this context")
            if not isinstance(arg, dict):
                raise MongoError(31274, f"elemMatch: Invalid argument, object required, but got {type_name(arg)}")
            if self.has_positional:
                raise MongoError(31255, "Cannot specify positional operator and $elemMatch.")
            if parent is not self.root or "." in name:
                raise MongoError(31275, "Cannot use $elemMatch projection on a nested field.")
            from mongolake.query.filter import parse_filter
            from mongolake.query.matcher import compile_matcher

            fn = compile_matcher(parse_filter({name: {"$elemMatch": arg}}))
            self.add(parent, name, ElemMatch(name, fn))
            self.has_elem_match = True
            return
        if op == "$meta":
            if arg not in _META_NAMES:
                raise MongoError(17308, f"Unsupported argument to $meta: {arg}")
            self.meta(parent, name, arg)
            return
        if self.mode == "project" and self.type == "exclusion":
            raise MongoError(31252, "Cannot use expression other than $meta in exclusion projection")
        self.computed(parent, name, obj)

    def meta(self, parent: Tree, name: str, arg: str) -> None:
        """``{name: {$meta: arg}}``: the document's metadata (``textScore`` ...), allowed in
        inclusion and exclusion projections alike; it does not decide the projection's kind."""
        if arg not in _META_PROJECTABLE:
            raise MongoError(ErrorCode.NotImplemented, f"$meta projection of '{arg}' is not supported")
        if self.find and arg == "textScore" and self.filter_spec is not None \
                and not _has_text(self.filter_spec):
            raise MongoError(40218, "query requires text score metadata, but it is not available")
        from mongolake.query.meta import get_meta

        def fn(doc: dict, _variables: dict) -> Any:
            return get_meta(doc, arg, MISSING)
        self.add(parent, name, Computed(fn))
        self.has_computed = True
        self.has_meta = True

    @staticmethod
    def find_slice(arg: Any) -> Slice:
        if is_number(arg) and not isinstance(arg, bool):
            return Slice(None, _clamp_int(arg))
        if isinstance(arg, list):
            if len(arg) != 2:
                raise MongoError(31272, "$slice array argument should be of form [skip, limit]")
            skip, limit = arg
            if not is_number(skip) or isinstance(skip, bool):
                raise MongoError(31257, f"$slice expects the skip argument to be a number, got {type_name(skip)}")
            if not is_number(limit) or isinstance(limit, bool):
                raise MongoError(31258, f"$slice expects the limit argument to be a number, got {type_name(limit)}")
            if _clamp_int(limit) <= 0:
                raise MongoError(31259, f"$slice limit must be positive, got {_clamp_int(limit)}")
            return Slice(_clamp_int(skip), _clamp_int(limit))
        raise MongoError(31273, "$slice only supports numbers and [skip, limit] arrays")


def _clamp_int(v: Any) -> int:
    """mongod's numberInt(): truncation, clamped to the int32 range."""
    n = to_number(v)
    try:
        i = int(n)
    except (ValueError, OverflowError):
        return 0
    return max(-(2**31), min(2**31 - 1, i))


def _has_text(spec: Any) -> bool:
    """Whether a query holds ``$text`` (at the top level or under ``$and``/``$or``/``$nor``)."""
    if not isinstance(spec, dict):
        return False
    if "$text" in spec:
        return True
    return any(_has_text(sub) for k in ("$and", "$or", "$nor") if isinstance(spec.get(k), list)
               for sub in spec[k])


def _filter_fields(spec: dict) -> set[str]:
    out: set[str] = set()
    for k, v in spec.items():
        if k in ("$and", "$or", "$nor") and isinstance(v, list):
            for sub in v:
                if isinstance(sub, dict):
                    out |= _filter_fields(sub)
        elif not k.startswith("$"):
            out.add(k.split(".", 1)[0])
    return out


def mark_computed(tree: Tree) -> bool:
    found = False
    for ch in tree.children.values():
        if isinstance(ch, Tree):
            found |= mark_computed(ch)
        elif isinstance(ch, Computed):
            found = True
    tree.has_computed = found
    return found
