"""The update tree: internal nodes, the leaf base class and the apply machinery.

Parsing an operator update builds a tree as mongod does (``UpdateObjectNode``,
``UpdateArrayNode``, leaf ``ModifierNode``\\ s): one node per path component, a
positional child for ``$``, array nodes for ``$[]``/``$[<id>]``. Applying walks the
tree over a private deep copy of the document, children in field-name order (so
new fields are appended in lexicographic order, exactly like mongod), and records
an update description (``updatedFields``/``removedFields``) as change streams show.

Locations are ``(holder, key)`` pairs: ``holder[key]`` is the element (``holder`` a
dict or a list). ``taken`` is the path that exists, ``to_create`` the components
below ``holder[key]`` that do not (exist yet).
"""
from __future__ import annotations

from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING
from mongolake.query.docpath import child_value, dotted, fmt_elem, parse_index

MAX_PADDING = 1_500_000

NOOP = "noop"
NORMAL = "normal"


class Appended:
    """Result of an update that only appended ``n`` elements to an array."""

    __slots__ = ("n",)

    def __init__(self, n: int):
        self.n = n


class LogBuilder:
    """Collects ``updatedFields`` / ``removedFields`` like mongod's v2 log builder."""

    def __init__(self) -> None:
        self.updated: dict[str, Any] = {}
        self.removed: list[str] = []
        self.suspended = 0

    def set(self, path: list[str], value: Any) -> None:
        """Record ``path`` as updated to ``value`` (a live reference, copied at the end)."""
        if self.suspended:
            return
        p = dotted(path)
        for i in range(1, len(path)):
            if dotted(path[:i]) in self.updated:
                return  # an enclosing value was already recorded: it includes this change
        prefix = p + "."
        for k in [k for k in self.updated if k.startswith(prefix)]:
            del self.updated[k]
        self.removed = [r for r in self.removed if r != p and not r.startswith(prefix)]
        self.updated[p] = value

    def unset(self, path: list[str]) -> None:
        if not self.suspended:
            p = dotted(path)
            self.updated.pop(p, None)
            if p not in self.removed:
                self.removed.append(p)


class ApplyContext:
    """Per-document state of one ``Update.apply``."""

    def __init__(self, root: dict, *, matched: str | None, is_insert: bool, now: Any, timestamp: Any,
                 array_filters: dict[str, Callable[[Any], bool]], collation: Any):
        self.root = root
        self.holder = [root]
        self.matched = matched
        self.is_insert = is_insert
        self.now = now
        self.timestamp = timestamp
        self.array_filters = array_filters
        self.collation = collation
        self.log = LogBuilder()
        self.modified = False


def conflict(path: list[str]) -> MongoError:
    return MongoError(ErrorCode.ConflictingUpdateOperators, f"Update created a conflict at '{dotted(path)}'")


class Node:
    """Base of all update nodes."""

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        raise NotImplementedError


def _locate(value: Any, part: str) -> tuple[bool, Any]:
    """(exists, key) of child ``part`` of a dict/list value."""
    if isinstance(value, dict):
        if part in value:
            return True, part
        return False, None
    if isinstance(value, list):
        i = parse_index(part)
        if i is not None and i < len(value):
            return True, i
    return False, None


class InternalNode(Node):
    children: dict[str, Node]

    def _apply_child(self, ctx: ApplyContext, child: Node, field: str, holder: Any, key: Any,
                     taken: list[str], to_create: list[str]) -> tuple[Any, Any, list[str], list[str]]:
        if to_create:
            child.apply(ctx, holder, key, taken, to_create + [field])
            # the child may have created ``to_create``: continue below it if so
            cur_holder, cur_key = holder, key
            for part in to_create:
                ok, k = _locate(cur_holder[cur_key], part)
                if not ok:
                    return holder, key, taken, to_create
                cur_holder, cur_key = cur_holder[cur_key], k
            return cur_holder, cur_key, taken + to_create, []
        elem = holder[key]
        ok, k = _locate(elem, field)
        if ok:
            child.apply(ctx, elem, k, taken + [field], [])
        else:
            child.apply(ctx, holder, key, taken, [field])
        return holder, key, taken, to_create


class ObjectNode(InternalNode):
    """A document level: named children (and the positional ``$`` child)."""

    def __init__(self) -> None:
        self.children: dict[str, Node] = {}
        self.positional: Node | None = None
        self._order: list[str] | None = None

    def get(self, name: str) -> Node | None:
        if name == "$":
            return self.positional
        return self.children.get(name)

    def put(self, name: str, node: Node) -> None:
        if name == "$":
            self.positional = node
        else:
            self.children[name] = node
        self._order = None

    def order(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self.children)
        return self._order

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        pending = self.positional is not None
        matched = ctx.matched
        if pending and matched is None:
            raise MongoError(ErrorCode.BadValue, "The positional operator did not find the match needed from the query.")
        for name in self.order():
            child = self.children[name]
            if pending and name == matched:
                child = merge_nodes(self.positional, child, taken + to_create + [name])
                pending = False
            elif pending and matched < name:
                holder, key, taken, to_create = self._apply_child(ctx, self.positional, matched, holder, key,
                                                                  taken, to_create)
                pending = False
            holder, key, taken, to_create = self._apply_child(ctx, child, name, holder, key, taken, to_create)
        if pending:
            self._apply_child(ctx, self.positional, matched, holder, key, taken, to_create)


class ArrayNode(InternalNode):
    """An array level reached through ``$[]`` (identifier "") or ``$[<id>]``."""

    def __init__(self) -> None:
        self.children: dict[str, Node] = {}

    def get(self, name: str) -> Node | None:
        return self.children.get(name)

    def put(self, name: str, node: Node) -> None:
        self.children[name] = node

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        if to_create:
            raise MongoError(ErrorCode.BadValue, f"The path '{dotted(taken + to_create)}' must exist in the "
                                                 "document in order to apply array updates.")
        arr = holder[key]
        if not isinstance(arr, list):
            name = taken[-1] if taken else ""
            raise MongoError(ErrorCode.BadValue, f"Cannot apply array updates to non-array element "
                                                 f"{fmt_elem(name, arr)}")
        matching: list[tuple[int, list[Node]]] = []
        for i, el in enumerate(arr):
            nodes = []
            for ident in sorted(self.children):
                if ident == "" or ctx.array_filters[ident](el):
                    nodes.append(self.children[ident])
            if nodes:
                matching.append((i, nodes))
        quiet = len(matching) > 1
        if quiet:
            ctx.log.suspended += 1
        modified_at: list[int] = []
        try:
            for i, nodes in matching:
                path = taken + [str(i)]
                node = nodes[0]
                for other in nodes[1:]:
                    node = merge_nodes(node, other, path)
                before = ctx.modified
                ctx.modified = False
                node.apply(ctx, arr, i, path, [])
                if ctx.modified:
                    modified_at.append(i)
                ctx.modified = before or ctx.modified
        finally:
            if quiet:
                ctx.log.suspended -= 1
        if quiet and modified_at:
            if len(modified_at) > 1:
                ctx.log.set(taken, arr)
            else:
                ctx.log.set(taken + [str(modified_at[0])], arr[modified_at[0]])


def merge_nodes(a: Node, b: Node, path: list[str]) -> Node:
    """Merge two subtrees that apply to the same element (positional/array filters)."""
    if isinstance(a, ObjectNode) and isinstance(b, ObjectNode):
        m = ObjectNode()
        m.children = dict(a.children)
        for k, v in b.children.items():
            m.children[k] = merge_nodes(m.children[k], v, path + [k]) if k in m.children else v
        if a.positional is not None and b.positional is not None:
            m.positional = merge_nodes(a.positional, b.positional, path + ["$"])
        else:
            m.positional = a.positional or b.positional
        return m
    if isinstance(a, ArrayNode) and isinstance(b, ArrayNode):
        m2 = ArrayNode()
        m2.children = dict(a.children)
        for k, v in b.children.items():
            m2.children[k] = merge_nodes(m2.children[k], v, path + [f"$[{k}]"]) if k in m2.children else v
        return m2
    raise conflict(path)


def create_path(holder: Any, key: Any, taken: list[str], to_create: list[str], value: Any) -> None:
    """Create ``to_create`` under ``holder[key]`` ending in ``value`` (mongod's createPathAt)."""
    elem = holder[key]
    first = to_create[0]
    for part in reversed(to_create[1:]):
        value = {part: value}
    if isinstance(elem, dict):
        elem[first] = value
        return
    name = taken[-1] if taken else ""
    if isinstance(elem, list):
        idx = parse_index(first)
        if idx is None:
            raise MongoError(ErrorCode.PathNotViable, f"Cannot create field '{first}' in element "
                                                      f"{{{fmt_elem(name, elem)}}}")
        if idx - len(elem) > MAX_PADDING:
            raise MongoError(34, f"can't backfill more than {MAX_PADDING} elements")
        if idx > len(elem):
            elem.extend([None] * (idx - len(elem)))
        elem.append(value)
        return
    raise MongoError(ErrorCode.PathNotViable, f"Cannot create field '{first}' in element {{{fmt_elem(name, elem)}}}")


def check_viability(elem: Any, taken: list[str], to_create: list[str]) -> None:
    """Fail when ``to_create`` could not even be created below ``elem`` (mongod's checkViability)."""
    if isinstance(elem, dict):
        return
    if isinstance(elem, list) and parse_index(to_create[0]) is not None:
        return
    name = taken[-1] if taken else ""
    raise MongoError(ErrorCode.PathNotViable,
                     f"Cannot use the part ({to_create[0]}) of ({dotted(taken)}.{dotted(to_create)}) to traverse "
                     f"the element ({{{fmt_elem(name, elem)}}})")


def immutable_error(taken: list[str]) -> MongoError:
    return MongoError(ErrorCode.ImmutableField,
                      f"Performing an update on the path '{dotted(taken)}' would modify the immutable field '_id'")


class Leaf(Node):
    """A modifier at the end of a path (mongod's ModifierNode).

    Subclasses implement :meth:`update_existing` (returns NOOP, NORMAL or
    :class:`Appended`) and, when ``allow_creation``, :meth:`new_value`.
    """

    allow_creation = True
    allow_non_viable = False
    insert_only = False

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        raise NotImplementedError

    def new_value(self, ctx: ApplyContext) -> Any:
        raise NotImplementedError

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        if self.insert_only and not ctx.is_insert:
            return
        if to_create:
            self.apply_nonexistent(ctx, holder, key, taken, to_create)
        else:
            self.apply_existing(ctx, holder, key, taken)

    def apply_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> None:
        res = self.update_existing(ctx, holder, key, taken)
        if res == NOOP:
            return
        if taken[0] == "_id":
            raise immutable_error(taken)
        ctx.modified = True
        value = holder[key]
        if isinstance(res, Appended):
            for i in range(len(value) - res.n, len(value)):
                ctx.log.set(taken + [str(i)], value[i])
        else:
            ctx.log.set(taken, value)

    def apply_nonexistent(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str],
                          to_create: list[str]) -> None:
        elem = holder[key]
        if not self.allow_creation:
            if not self.allow_non_viable:
                check_viability(elem, taken, to_create)
            return
        value = self.new_value(ctx)
        create_path(holder, key, taken, to_create, value)
        record_creation(ctx, holder, key, taken, to_create)


def record_creation(ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
    """Checks and logging after ``to_create`` was created below ``holder[key]``."""
    elem = holder[key]
    if taken and taken[0] == "_id":
        raise MongoError(ErrorCode.ImmutableField,
                         f"Updating the path '{dotted(taken)}' to {fmt_elem(taken[-1], elem)} would modify the "
                         "immutable field '_id'")
    if not taken and to_create[0].startswith("$"):
        raise MongoError(ErrorCode.DollarPrefixedFieldName,
                         f"The dollar ($) prefixed field '{to_create[0]}' in '{to_create[0]}' is not allowed in the "
                         "context of an update's replacement document. Consider using an aggregation pipeline "
                         "with $replaceWith.")
    ctx.modified = True
    if isinstance(elem, list):
        ctx.log.set(taken, elem)
    else:
        ctx.log.set(taken + [to_create[0]], child_value(elem, to_create[0]))


class PlaceholderNode(Leaf):
    """Occupies the source path of a ``$rename`` so that conflicts are detected; does nothing."""

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        return None


__all__ = ["ApplyContext", "ArrayNode", "Appended", "Leaf", "LogBuilder", "MISSING", "NOOP", "NORMAL", "Node",
           "ObjectNode", "PlaceholderNode", "check_viability", "create_path", "merge_nodes", "record_creation",
           "immutable_error", "conflict"]
