"""Streaming stages: ``$match``, ``$limit``, ``$skip``, ``$count``, ``$sample``, ``$documents``,
``$replaceRoot``/``$replaceWith``, ``$redact`` and ``$unwind``."""
from __future__ import annotations

import random
from itertools import islice
from typing import Any, Iterator

from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import split_field_path
from mongolake.query.expr.numeric import INT, as_int64, int_result, kind
from mongolake.query.expr.values import type_name


# --- $match --------------------------------------------------------------------------------


class MatchStage(Stage):
    name = "$match"

    def __init__(self, spec: dict, tree: Any):
        super().__init__(spec)
        self.tree = tree

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        from mongolake.query.matcher import compile_matcher

        m = compile_matcher(self.tree, variables=env.variables)
        return (d for d in docs if m(d))


@stage("$match")
def _parse_match(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(15959, "the match filter must be an expression in an object")
    from mongolake.query.filter import parse_filter

    if opts.let_vars is not None:
        _check_expr_variables(spec, opts)
    return MatchStage(spec, parse_filter(spec, in_aggregation=True))


def _check_expr_variables(spec: Any, opts: ParseOptions) -> None:
    """Compile every ``$expr`` inside a filter so undefined variables fail at parse time (17276)."""
    if isinstance(spec, dict):
        for k, v in spec.items():
            if k == "$expr":
                opts.expr(v)
            else:
                _check_expr_variables(v, opts)
    elif isinstance(spec, list):
        for v in spec:
            _check_expr_variables(v, opts)


# --- $limit / $skip ---------------------------------------------------------------------------


def _count_arg(spec: Any, stage_name: str) -> int:
    if kind(spec) is None:
        if stage_name == "$limit":
            raise MongoError(15957, "the limit must be specified as a number")
        raise MongoError(15972, "Argument to $skip must be a number")
    n = as_int64(spec)
    if n is None:
        raise MongoError(5107201 if stage_name == "$limit" else 5107200,
                         f"invalid argument to {stage_name} stage: Cannot represent as a 64-bit integer: "
                         f"{stage_name}: {spec}")
    return n


class LimitStage(Stage):
    name = "$limit"

    def __init__(self, n: int):
        super().__init__(n)
        self.n = n

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        return islice(docs, self.n)


class SkipStage(Stage):
    name = "$skip"

    def __init__(self, n: int):
        super().__init__(n)
        self.n = n

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        return islice(docs, self.n, None)


@stage("$limit")
def _parse_limit(spec: Any, opts: ParseOptions) -> Stage:
    n = _count_arg(spec, "$limit")
    if n <= 0:
        raise MongoError(15958, "the limit must be positive")
    return LimitStage(n)


@stage("$skip")
def _parse_skip(spec: Any, opts: ParseOptions) -> Stage:
    n = _count_arg(spec, "$skip")
    if n < 0:
        raise MongoError(15956, "Argument to $skip cannot be negative")
    return SkipStage(n)


# --- $count ---------------------------------------------------------------------------------------


class CountStage(Stage):
    name = "$count"

    def __init__(self, field: str):
        super().__init__(field)
        self.field = field

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        n = 0
        for _ in docs:
            n += 1
        if n:
            yield {self.field: int_result(n, INT)}


@stage("$count")
def _parse_count(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, str) or not spec:
        raise MongoError(40156, "the count field must be a non-empty string")
    if spec.startswith("$"):
        raise MongoError(40158, "the count field cannot be a $-prefixed path")
    if "." in spec:
        raise MongoError(40160, "the count field cannot contain '.'")
    if "\0" in spec:
        raise MongoError(40159, "the count field cannot contain a null byte")
    return CountStage(spec)


# --- $sample --------------------------------------------------------------------------------------


class SampleStage(Stage):
    name = "$sample"
    blocking = True

    def __init__(self, spec: Any, size: int):
        super().__init__(spec)
        self.size = size

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        budget = env.budget("$sample")
        reservoir: list[dict] = []
        k = self.size
        if k == 0:
            for _ in docs:
                pass
            return
        for i, d in enumerate(docs):
            if i < k:
                reservoir.append(d)
                budget.add(d)
            else:
                j = random.randint(0, i)
                if j < k:
                    reservoir[j] = d
        random.shuffle(reservoir)
        yield from reservoir


@stage("$sample")
def _parse_sample(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(28745, "the $sample stage specification must be an object")
    size = MISSING
    for k, v in spec.items():
        if k != "size":
            raise MongoError(28748, f"unrecognized option to $sample: {k}")
        size = v
    if size is MISSING:
        raise MongoError(28749, "$sample stage must specify a size")
    if kind(size) is None:
        raise MongoError(28746, "size argument to $sample must be a number")
    n = as_int64(size)
    if n is None or n < 0:
        raise MongoError(28747, "size argument to $sample must not be negative")
    return SampleStage(spec, n)


# --- $documents -----------------------------------------------------------------------------------


class DocumentsStage(Stage):
    name = "$documents"
    position = "first"

    def __init__(self, spec: Any, node: Any):
        super().__init__(spec)
        self.node = node

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        value = self.node(env.scope({}))
        if type(value) is not list:
            raise MongoError(5858203, "error during lookup: $documents: an array is expected")
        for d in value:
            if type(d) is not dict:
                raise MongoError(40228, f"'newRoot' expression must evaluate to an object, but resulting value was: "
                                        f"{d!r}. Type of resulting value: '{type_name(d)}'")
            yield d


@stage("$documents")
def _parse_documents(spec: Any, opts: ParseOptions) -> Stage:
    return DocumentsStage(spec, opts.expr(spec))


# --- $replaceRoot / $replaceWith ------------------------------------------------------------------


class ReplaceRootStage(Stage):
    name = "$replaceRoot"

    def __init__(self, spec: Any, node: Any, name: str):
        super().__init__(spec)
        self.node = node
        self.name = name

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        fn = env.evaluator(self.node)
        for d in docs:
            v = fn(d)
            if type(v) is not dict:
                shown = "MISSING" if v is MISSING else repr(v)
                raise MongoError(40228, f"'newRoot' expression must evaluate to an object, but resulting value "
                                        f"was: {shown}. Type of resulting value: '{type_name(v)}'. Input "
                                        f"document: {d!r}")
            yield v


@stage("$replaceRoot")
def _parse_replace_root(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(40229, f"expected an object as specification for $replaceRoot stage, got "
                                f"{type_name(spec)}")
    for k in spec:
        if k != "newRoot":
            raise MongoError(40415, f"BSON field '$replaceRoot.{k}' is an unknown field.")
    if "newRoot" not in spec:
        raise MongoError(40414, "BSON field '$replaceRoot.newRoot' is missing but a required field")
    return ReplaceRootStage(spec, opts.expr(spec["newRoot"]), "$replaceRoot")


@stage("$replaceWith")
def _parse_replace_with(spec: Any, opts: ParseOptions) -> Stage:
    return ReplaceRootStage(spec, opts.expr(spec), "$replaceWith")


# --- $redact --------------------------------------------------------------------------------------


class RedactStage(Stage):
    name = "$redact"

    def __init__(self, spec: Any, node: Any):
        super().__init__(spec)
        self.node = node

    def _decide(self, sub: dict, s: dict) -> str:
        s["CURRENT"] = sub
        v = self.node(s)
        if v not in ("descend", "prune", "keep") or not isinstance(v, str):
            raise MongoError(17053, "$redact's expression should not return anything aside from the variables "
                                    f"$$KEEP, $$DESCEND, and $$PRUNE, but returned {v!r}")
        return v

    def _redact_doc(self, doc: dict, s: dict) -> dict | None:
        action = self._decide(doc, s)
        if action == "prune":
            return None
        if action == "keep":
            return doc
        out = {}
        for k, v in doc.items():
            if type(v) is dict:
                r = self._redact_doc(v, s)
                if r is not None:
                    out[k] = r
            elif type(v) is list:
                out[k] = self._redact_array(v, s)
            else:
                out[k] = v
        return out

    def _redact_array(self, arr: list, s: dict) -> list:
        out = []
        for el in arr:
            if type(el) is dict:
                r = self._redact_doc(el, s)
                if r is not None:
                    out.append(r)
            elif type(el) is list:
                out.append(self._redact_array(el, s))
            else:
                out.append(el)
        return out

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        for d in docs:
            s = env.scope(d)
            r = self._redact_doc(d, s)
            if r is not None:
                yield r


@stage("$redact")
def _parse_redact(spec: Any, opts: ParseOptions) -> Stage:
    return RedactStage(spec, opts.expr(spec))


# --- $unwind --------------------------------------------------------------------------------------


def get_nested(doc: Any, parts: list[str]) -> Any:
    """A nested field reached through documents only (no array traversal)."""
    v = doc
    for p in parts:
        if type(v) is not dict:
            return MISSING
        v = v.get(p, MISSING)
        if v is MISSING:
            return MISSING
    return v


def set_nested(doc: dict, parts: list[str], value: Any) -> dict:
    """A copy of ``doc`` with ``parts`` set to ``value`` (documents along the path copied; MISSING removes)."""
    out = dict(doc)
    if len(parts) == 1:
        if value is MISSING:
            out.pop(parts[0], None)
        else:
            out[parts[0]] = value
        return out
    head = parts[0]
    sub = out.get(head)
    out[head] = set_nested(sub if type(sub) is dict else {}, parts[1:], value)
    return out


class UnwindStage(Stage):
    name = "$unwind"

    def __init__(self, spec: Any, path: list[str], index_field: list[str] | None, preserve: bool):
        super().__init__(spec)
        self.path = path
        self.index_field = index_field
        self.preserve = preserve

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        path, idx, preserve = self.path, self.index_field, self.preserve
        single = len(path) == 1 and idx is None
        p0 = path[0]
        for d in docs:
            v = d.get(p0, MISSING) if single else get_nested(d, path)
            if type(v) is list:
                if v:
                    for i, el in enumerate(v):
                        if single:
                            out = dict(d)
                            out[p0] = el
                        else:
                            out = set_nested(d, path, el)
                            if idx is not None:
                                out = set_nested(out, idx, Int64(i))
                        yield out
                elif preserve:
                    out = set_nested(d, path, MISSING)
                    yield set_nested(out, idx, None) if idx is not None else out
            elif v is None or v is MISSING:
                if preserve:
                    yield set_nested(d, idx, None) if idx is not None else d
            else:
                yield set_nested(d, idx, None) if idx is not None else d


@stage("$unwind")
def _parse_unwind(spec: Any, opts: ParseOptions) -> Stage:
    index_field = None
    preserve = False
    if isinstance(spec, str):
        path = spec
    elif isinstance(spec, dict):
        path = MISSING
        for k, v in spec.items():
            if k == "path":
                if not isinstance(v, str):
                    raise MongoError(28808, f"expected a string as the path for $unwind stage, got {type_name(v)}")
                path = v
            elif k == "includeArrayIndex":
                if not isinstance(v, str):
                    raise MongoError(28810, f"expected a non-empty string for the includeArrayIndex  option to "
                                            f"$unwind stage, got {type_name(v)}")
                if not v:
                    raise MongoError(28810, "expected a non-empty string for the includeArrayIndex  option to "
                                            "$unwind stage, got string")
                if v.startswith("$"):
                    raise MongoError(28822, f"includeArrayIndex option to $unwind stage should not be prefixed "
                                            f"with a '$': {v}")
                index_field = split_field_path(v)
            elif k == "preserveNullAndEmptyArrays":
                if not isinstance(v, bool):
                    raise MongoError(28809, f"expected a boolean for the preserveNullAndEmptyArrays option to "
                                            f"$unwind stage, got {type_name(v)}")
                preserve = v
            else:
                raise MongoError(28811, f"unrecognized option to $unwind stage: {k}")
        if path is MISSING:
            raise MongoError(28812, "no path specified to $unwind stage")
    else:
        raise MongoError(15981, f"expected either a string or an object as specification for $unwind stage, got "
                                f"{type_name(spec)}")
    if not path:
        raise MongoError(40352, "FieldPath cannot be constructed with empty string")
    if not path.startswith("$"):
        raise MongoError(28818, f"path option to $unwind stage should be prefixed with a '$': {path}")
    return UnwindStage(spec, split_field_path(path[1:]), index_field, preserve)


__all__ = ["MatchStage", "LimitStage", "SkipStage", "CountStage", "UnwindStage", "get_nested", "set_nested",
           "ErrorCode"]
