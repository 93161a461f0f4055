"""``$project``, ``$addFields``/``$set`` and ``$unset``: aggregation projections.

A specification becomes a tree of :class:`_PNode`; inclusion trees copy the
listed fields (arrays are traversed, non-documents inside them dropped) and then
apply computed fields; exclusion trees copy everything but the listed fields;
``$addFields`` trees only apply computed fields.  Computed dotted fields under
an array set the field in every element, as MongoDB does.
"""
from __future__ import annotations

from typing import Any, Iterator

from mongolake.errors import MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import Node, split_field_path
from mongolake.query.meta import carry

INCLUDE, EXCLUDE, EXPR, SUB = "include", "exclude", "expr", "sub"


class _PNode:
    __slots__ = ("kind", "expr", "children", "computed")

    def __init__(self, kind: str, expr: Node | None = None):
        self.kind = kind
        self.expr = expr
        self.children: dict[str, _PNode] = {}
        self.computed = kind == EXPR


def _is_expression_object(v: Any) -> bool:
    return isinstance(v, dict) and len(v) >= 1 and str(next(iter(v))).startswith("$")


class _TreeBuilder:
    def __init__(self, stage_name: str, opts: ParseOptions, add_fields: bool):
        self.stage_name = stage_name
        self.opts = opts
        self.add_fields = add_fields
        self.root = _PNode(SUB)

    def _err(self, code: int, msg: str) -> MongoError:
        return MongoError(code, f"Invalid {self.stage_name} :: caused by :: {msg}")

    def add(self, parent: _PNode, path: str, value: Any, prefix: str = "") -> None:
        if path.startswith("$"):
            raise MongoError(16410, "FieldPath field names may not start with '$'. Consider using $getField or "
                                    "$setField.")
        parts = split_field_path(path)
        node = parent
        full = prefix
        for p in parts[:-1]:
            full = f"{full}.{p}" if full else p
            child = node.children.get(p)
            if child is None:
                child = node.children[p] = _PNode(SUB)
            elif child.kind != SUB:
                raise self._err(31250, f"Path collision at {full}")
            node = child
        leaf = parts[-1]
        full = f"{full}.{leaf}" if full else leaf
        if leaf in node.children and (node.children[leaf].kind != SUB or not isinstance(value, dict)
                                      or _is_expression_object(value)):
            raise self._err(31250, f"Path collision at {full}")
        if isinstance(value, dict) and not _is_expression_object(value):
            if not value:
                if self.add_fields:
                    node.children[leaf] = _PNode(EXPR, self.opts.expr({}))
                    return
                raise self._err(51270, f"An empty sub-projection is not a valid value. Found empty object at path")
            sub = node.children.get(leaf)
            if sub is None:
                sub = node.children[leaf] = _PNode(SUB)
            for k, v in value.items():
                self.add(sub, k, v, full)
            return
        if not self.add_fields and (isinstance(value, bool) or _is_number(value)):
            node.children[leaf] = _PNode(INCLUDE if _truthy_num(value) else EXCLUDE)
            return
        node.children[leaf] = _PNode(EXPR, self.opts.expr(value))


def _is_number(v: Any) -> bool:
    from mongolake.query.expr.numeric import kind
    return kind(v) is not None


def _truthy_num(v: Any) -> bool:
    from mongolake.query.expr.values import truthy
    return truthy(v)


def _mark_computed(node: _PNode) -> bool:
    c = node.kind == EXPR
    for ch in node.children.values():
        if _mark_computed(ch):
            c = True
    node.computed = c
    return c


def _kinds(node: _PNode, path: str = "") -> Iterator[tuple[str, str]]:
    for k, ch in node.children.items():
        full = f"{path}.{k}" if path else k
        if ch.kind == SUB:
            yield from _kinds(ch, full)
        else:
            yield full, ch.kind


# --- application -----------------------------------------------------------------------


def _include_value(node: _PNode, v: Any) -> Any:
    if type(v) is dict:
        return _include_doc(node, v)
    if type(v) is list:
        out = []
        for el in v:
            r = _include_value(node, el)
            if r is not MISSING:
                out.append(r)
        return out
    return MISSING


def _include_doc(node: _PNode, doc: dict) -> dict:
    out = {}
    children = node.children
    for k, v in doc.items():
        ch = children.get(k)
        if ch is None:
            continue
        if ch.kind == INCLUDE:
            out[k] = v
        elif ch.kind == SUB:
            r = _include_value(ch, v)
            if r is not MISSING:
                out[k] = r
    return out


def _apply_computed_value(node: _PNode, v: Any, s: dict) -> Any:
    if type(v) is dict:
        out = dict(v)
        _apply_computed(node, out, s)
        return out
    if type(v) is list:
        return [_apply_computed_value(node, el, s) for el in v]
    out = {}
    _apply_computed(node, out, s)
    return out


def _apply_computed(node: _PNode, out: dict, s: dict) -> None:
    for k, ch in node.children.items():
        if ch.kind == EXPR:
            v = ch.expr(s)  # type: ignore[misc]
            if v is MISSING:
                out.pop(k, None)
            else:
                out[k] = v
        elif ch.kind == SUB and ch.computed:
            out[k] = _apply_computed_value(ch, out.get(k, MISSING), s)


def _exclude_value(node: _PNode, v: Any) -> Any:
    if type(v) is dict:
        return _exclude_doc(node, v)
    if type(v) is list:
        return [_exclude_value(node, el) for el in v]
    return v


def _exclude_doc(node: _PNode, doc: dict) -> dict:
    out = {}
    children = node.children
    for k, v in doc.items():
        ch = children.get(k)
        if ch is None:
            out[k] = v
        elif ch.kind == SUB:
            out[k] = _exclude_value(ch, v)
    return out


class ProjectStage(Stage):
    """``$project`` in inclusion or exclusion mode."""

    name = "$project"

    def __init__(self, spec: Any, tree: _PNode, inclusion: bool):
        super().__init__(spec)
        self.tree = tree
        self.inclusion = inclusion

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        tree = self.tree
        if not self.inclusion:
            for d in docs:
                yield carry(d, _exclude_doc(tree, d))
            return
        computed = tree.computed
        s = dict(env.variables)
        for d in docs:
            out = _include_doc(tree, d)
            if computed:
                s["ROOT"] = s["CURRENT"] = d
                _apply_computed(tree, out, s)
            yield carry(d, out)


class AddFieldsStage(Stage):
    """``$addFields`` / ``$set``."""

    name = "$addFields"

    def __init__(self, spec: Any, tree: _PNode, name: str):
        super().__init__(spec)
        self.tree = tree
        self.name = name

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        tree = self.tree
        s = dict(env.variables)
        for d in docs:
            out = dict(d)
            s["ROOT"] = s["CURRENT"] = d
            _apply_computed(tree, out, s)
            yield carry(d, out)


def build_projection(spec: Any, opts: ParseOptions, stage_name: str = "$project") -> ProjectStage:
    if not isinstance(spec, dict):
        raise MongoError(15969, f"{stage_name} specification must be an object")
    if not spec:
        raise MongoError(51272, f"Invalid {stage_name} :: caused by :: projection specification must have at "
                                "least one field")
    b = _TreeBuilder(stage_name, opts, add_fields=False)
    for k, v in spec.items():
        b.add(b.root, k, v)
    root = b.root
    _mark_computed(root)
    mode = None
    pre = f"Invalid {stage_name} :: caused by :: "
    for p, k in _kinds(root):
        if p == "_id":
            continue
        if k == EXCLUDE:
            if mode == "inclusion":
                raise MongoError(31254, f"{pre}Cannot do exclusion on field {p} in inclusion projection")
            mode = "exclusion"
        else:
            if mode == "exclusion":
                if k == EXPR:
                    raise MongoError(31252, f"{pre}Cannot use expression other than $meta in exclusion projection")
                raise MongoError(31253, f"{pre}Cannot do inclusion on field {p} in exclusion projection")
            mode = "inclusion"
    id_node = root.children.get("_id")
    if mode is None:
        mode = "inclusion" if id_node is not None and id_node.kind in (INCLUDE, EXPR) else "exclusion"
    if mode == "exclusion":
        if id_node is not None and id_node.kind == EXPR:
            raise MongoError(31252, f"{pre}Cannot use expression other than $meta in exclusion projection")
        if id_node is not None and id_node.kind == INCLUDE:
            del root.children["_id"]
        return ProjectStage(spec, root, inclusion=False)
    if id_node is None:
        root.children = {"_id": _PNode(INCLUDE), **root.children}
    elif id_node.kind == EXCLUDE:
        del root.children["_id"]
    return ProjectStage(spec, root, inclusion=True)


def build_add_fields(spec: Any, opts: ParseOptions, name: str) -> AddFieldsStage:
    if not isinstance(spec, dict):
        raise MongoError(40272, f"{name} specification stage must be an object, got {type(spec).__name__}")
    b = _TreeBuilder(name, opts, add_fields=True)
    for k, v in spec.items():
        b.add(b.root, k, v)
    _mark_computed(b.root)
    return AddFieldsStage(spec, b.root, name)


@stage("$project")
def _parse_project(spec: Any, opts: ParseOptions) -> Stage:
    return build_projection(spec, opts)


@stage("$addFields")
def _parse_add_fields(spec: Any, opts: ParseOptions) -> Stage:
    return build_add_fields(spec, opts, "$addFields")


@stage("$set")
def _parse_set(spec: Any, opts: ParseOptions) -> Stage:
    return build_add_fields(spec, opts, "$set")


@stage("$unset")
def _parse_unset(spec: Any, opts: ParseOptions) -> Stage:
    if isinstance(spec, str):
        fields = [spec]
    elif isinstance(spec, list):
        if not spec:
            raise MongoError(31119, "$unset specification must be a string or an array with at least one field")
        if not all(isinstance(f, str) for f in spec):
            raise MongoError(31120, "$unset specification must be a string or an array containing only string "
                                    "values")
        fields = spec
    else:
        raise MongoError(31002, "$unset specification must be a string or an array")
    st = build_projection({f: 0 for f in fields}, opts, "$unset")
    st.name = "$unset"
    st.spec = spec
    return st
