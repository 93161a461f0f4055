"""``let`` variables of find, update, delete and findAndModify.

The engine's read/write API takes filters and updates but no variables, so the
command layer binds ``let`` (and an update statement's ``c`` constants) before
calling it: every ``$$name`` / ``$$name.path`` reference to a bound variable in
an *expression context* becomes ``{$literal: value}``. Expression contexts are
``$expr`` in filters (also under ``$and``/``$or``/``$nor``), computed fields of
a find projection and the stages of a pipeline-style update; references shadowed
by ``$let``, ``$map``, ``$filter`` or ``$reduce`` are left alone, and nothing
inside ``$literal`` is touched. ``$$CLUSTER_TIME`` is bound as well; ``$$NOW`` is
left to the matcher. References to names that are not bound stay as they are
and fail later with MongoDB's "Use of undefined variable" (17276).
"""
from __future__ import annotations

from typing import Any

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.expr.core import validate_var_name
from mongolake.query.expressions import compile_expression

from .args import type_name


def eval_let(let: Any, system: dict, what: str = "let") -> dict:
    """Evaluate a ``let`` document's expressions (in order; later ones may use earlier ones)."""
    if let is None:
        return {}
    if not isinstance(let, dict):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{what}' is the wrong type '{type_name(let)}', expected type 'object'")
    env = dict(system)
    out: dict = {}
    for name, spec in let.items():
        validate_var_name(name)
        value = compile_expression(spec)({}, env)
        env[name] = value
        out[name] = value
    return out


def _ref(s: str) -> str | None:
    if not s.startswith("$$") or len(s) == 2:
        return None
    return s[2:].split(".", 1)[0]


class _Binder:
    def __init__(self, variables: dict):
        self.variables = variables

    def value_of(self, ref: str) -> Any:
        return compile_expression(ref)({}, self.variables)

    def expr(self, node: Any, bound: frozenset) -> Any:
        if isinstance(node, str):
            name = _ref(node)
            if name is not None and name in bound:
                return {"$literal": self.value_of(node)}
            return node
        if isinstance(node, list):
            return [self.expr(x, bound) for x in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            op, arg = next(iter(node.items()))
            if op == "$literal":
                return node
            if op == "$let" and isinstance(arg, dict):
                local = arg.get("vars") if isinstance(arg.get("vars"), dict) else {}
                out = dict(arg)
                if isinstance(arg.get("vars"), dict):
                    out["vars"] = {k: self.expr(v, bound) for k, v in local.items()}
                if "in" in arg:
                    out["in"] = self.expr(arg["in"], bound - set(local))
                return {op: out}
            if op in ("$map", "$filter", "$reduce") and isinstance(arg, dict):
                if op == "$reduce":
                    shadow = {"value", "this"}
                else:
                    shadow = {arg.get("as", "this")} if isinstance(arg.get("as", "this"), str) else set()
                inner = bound - shadow
                out = {}
                for k, v in arg.items():
                    out[k] = self.expr(v, inner if k in ("in", "cond") else bound)
                return {op: out}
        return {k: self.expr(v, bound) for k, v in node.items()}

    def filter(self, spec: Any, bound: frozenset) -> Any:
        if not isinstance(spec, dict):
            return spec
        out = {}
        for k, v in spec.items():
            if k == "$expr":
                out[k] = self.expr(v, bound)
            elif k in ("$and", "$or", "$nor") and isinstance(v, list):
                out[k] = [self.filter(x, bound) for x in v]
            else:
                out[k] = v
        return out


class LetScope:
    """The variables of one command (or statement) and the rewriting helpers."""

    def __init__(self, variables: dict):
        self.variables = variables
        self._binder = _Binder(variables)
        self._bound = frozenset(variables)

    def __bool__(self) -> bool:
        return bool(self.variables)

    @classmethod
    def for_command(cls, ctx: Any, let: Any, what: str = "let") -> "LetScope":
        system = {"CLUSTER_TIME": ctx.engine.cluster_time}
        variables = eval_let(let, system, what)
        variables.setdefault("CLUSTER_TIME", system["CLUSTER_TIME"])
        return cls(variables)

    def with_constants(self, c: Any) -> "LetScope":
        """A scope extended by an update statement's ``c`` constants."""
        if c is None:
            return self
        extra = eval_let(c, self.variables, "c")
        return LetScope({**self.variables, **extra})

    def filter(self, spec: Any) -> Any:
        return self._binder.filter(spec, self._bound) if self.variables and isinstance(spec, dict) else spec

    def update(self, u: Any) -> Any:
        """Pipeline-style updates use variables; operator and replacement documents do not."""
        if self.variables and isinstance(u, list):
            return [self._binder.expr(stage, self._bound) for stage in u]
        return u

    def projection(self, proj: Any) -> Any:
        if not self.variables or not isinstance(proj, dict):
            return proj
        out = {}
        for k, v in proj.items():
            if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("$elemMatch", "$slice", "$meta"):
                out[k] = v
            else:
                out[k] = self._binder.expr(v, self._bound)
        return out
