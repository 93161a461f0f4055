"""Array update operators: $push (with $each $slice $sort $position), $addToSet,
$pop, $pull and $pullAll.

``$pull`` with a condition uses the query matcher (:mod:`mongolake.query.filter`
and :mod:`mongolake.query.matcher`), imported lazily when such a ``$pull`` is parsed.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from bson.regex import Regex

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import bsonorder
from mongolake.query.collation import compare as collated_compare
from mongolake.query.docpath import copy_value, dotted, fmt_elem, fmt_id, fmt_value, type_name
from mongolake.query.update_tree import NOOP, NORMAL, Appended, ApplyContext, Leaf

# query operators that take a path (mongod's parsePathAcceptingKeyword); a $pull
# condition starting with one of them is matched against each element itself
_LOGICAL_TOP = {"$and", "$or", "$nor", "$expr", "$where", "$text", "$comment", "$jsonSchema", "$alwaysTrue",
                "$alwaysFalse", "$sampleRate"}


def _integer_arg(v: Any) -> int | None:
    """mongod's parseIntegerElementToLong: integral numbers only."""
    if isinstance(v, bool) or not bsonorder.is_number(v):
        return None
    n = bsonorder.to_number(v)
    try:
        i = int(n)
    except (ValueError, OverflowError):
        return None
    if i != n:
        return None
    return i


def _sort_direction(v: Any) -> int | None:
    if isinstance(v, bool) or not bsonorder.is_number(v):
        return None
    n = float(bsonorder.to_number(v))
    return int(n) if n in (1.0, -1.0) else None


class PushNode(Leaf):
    """``$push``."""

    def __init__(self, name: str, value: Any):
        self.slice: int | None = None
        self.sort: Any = None  # None, int direction, or list of (parts, dir)
        self.position: int | None = None
        if isinstance(value, dict) and "$each" in value:
            seen = set()
            for clause in value:
                if clause not in ("$each", "$slice", "$sort", "$position"):
                    raise MongoError(ErrorCode.BadValue, f"Unrecognized clause in $push: {clause}")
                if clause in seen:
                    raise MongoError(ErrorCode.BadValue, f"Only one {clause} is supported.")
                seen.add(clause)
            each = value["$each"]
            if not isinstance(each, list):
                raise MongoError(ErrorCode.BadValue, "The argument to $each in $push must be an array but it was "
                                                     f"of type: {type_name(each)}")
            self.values = each
            if "$slice" in value:
                s = _integer_arg(value["$slice"])
                if s is None:
                    raise MongoError(ErrorCode.BadValue, "The value for $slice must be an integer value but was "
                                                         f"given type: {type_name(value['$slice'])}")
                self.slice = s
            if "$sort" in value:
                self.sort = self._parse_sort(value["$sort"])
            if "$position" in value:
                p = _integer_arg(value["$position"])
                if p is None:
                    raise MongoError(ErrorCode.BadValue, "The value for $position must be an integer value, not of "
                                                         f"type: {type_name(value['$position'])}")
                self.position = p
        else:
            self.values = [value]

    @staticmethod
    def _parse_sort(spec: Any) -> Any:
        if isinstance(spec, dict):
            if not spec:
                raise MongoError(ErrorCode.BadValue, "The $sort pattern is empty when it should be a set of fields.")
            pattern = []
            for field, d in spec.items():
                direction = _sort_direction(d)
                if direction is None:
                    raise MongoError(ErrorCode.BadValue, "The $sort element value must be either 1 or -1")
                if not field:
                    raise MongoError(ErrorCode.BadValue, "The $sort field cannot be empty")
                parts = field.split(".")
                if any(not p for p in parts):
                    raise MongoError(ErrorCode.BadValue,
                                     f"The $sort field is a dotted field but has an empty part: {field}")
                pattern.append((parts, direction))
            return pattern
        if bsonorder.is_number(spec) and not isinstance(spec, bool):
            direction = _sort_direction(spec)
            if direction is None:
                raise MongoError(ErrorCode.BadValue, "The $sort element value must be either 1 or -1")
            return direction
        raise MongoError(ErrorCode.BadValue, "The $sort is invalid: use 1/-1 to sort the whole element, or "
                                             "{field:1/-1} to sort embedded fields")

    def _sort(self, arr: list, collation: Any) -> list:
        if isinstance(self.sort, int):
            d = self.sort
            return sorted(arr, key=functools.cmp_to_key(lambda a, b: d * collated_compare(a, b, collation)))
        pattern = self.sort

        def extract(el: Any) -> list:
            out = []
            for parts, _ in pattern:
                v: Any = el if isinstance(el, dict) else {}
                for p in parts:
                    if isinstance(v, dict):
                        v = v.get(p, None)
                    elif isinstance(v, list):
                        idx = int(p) if p.isdigit() else None
                        v = v[idx] if idx is not None and idx < len(v) else None
                    else:
                        v = None
                        break
                out.append(v)
            return out

        def cmp(a: list, b: list) -> int:
            for (x, y, (_, d)) in zip(a, b, pattern):
                c = collated_compare(x, y, collation)
                if c:
                    return c * d
            return 0

        keyed = [(extract(el), el) for el in arr]
        keyed.sort(key=functools.cmp_to_key(lambda p, q: cmp(p[0], q[0])))
        return [el for _, el in keyed]

    def _push(self, ctx: ApplyContext, arr: list) -> Any:
        n = len(arr)
        values = [copy_value(v) for v in self.values]
        result: Any = NOOP
        if values:
            pos = self.position
            if n == 0:
                arr.extend(values)
                result = NORMAL
            elif pos is None or pos > n:
                arr.extend(values)
                result = Appended(len(values))
            else:
                if pos < 0:
                    pos = max(0, n + pos)
                arr[pos:pos] = values
                result = NORMAL
        if self.sort is not None:
            arr[:] = self._sort(arr, ctx.collation)
            result = NORMAL
        if self.slice is not None and len(arr) > abs(self.slice):
            if self.slice >= 0:
                del arr[self.slice:]
            else:
                del arr[:len(arr) + self.slice]
            result = NORMAL
        return result

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        arr = holder[key]
        if not isinstance(arr, list):
            raise MongoError(ErrorCode.BadValue, f"The field '{dotted(taken)}' must be an array but is of type "
                                                 f"{type_name(arr)} in document {{{fmt_id(ctx.root)}}}")
        return self._push(ctx, arr)

    def new_value(self, ctx: ApplyContext) -> Any:
        arr: list = []
        self._push(ctx, arr)
        return arr


class AddToSetNode(Leaf):
    """``$addToSet`` (with ``$each``)."""

    def __init__(self, name: str, value: Any):
        if isinstance(value, dict) and value and next(iter(value)) == "$each":
            each = value["$each"]
            if not isinstance(each, list):
                raise MongoError(ErrorCode.TypeMismatch, "The argument to $each in $addToSet must be an array but it "
                                                         f"was of type {type_name(each)}")
            if len(value) > 1:
                raise MongoError(ErrorCode.BadValue,
                                 f"Found unexpected fields after $each in $addToSet: {fmt_value(value)}")
            self.values = list(each)
        else:
            self.values = [value]
        self._deduped: dict[int, list] = {}

    def _unique(self, collation: Any) -> list:
        key = id(collation)
        if key not in self._deduped:
            out: list = []
            for v in self.values:
                if not any(collated_compare(v, o, collation) == 0 for o in out):
                    out.append(v)
            self._deduped[key] = out
        return self._deduped[key]

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        arr = holder[key]
        if not isinstance(arr, list):
            raise MongoError(ErrorCode.BadValue, f"Cannot apply $addToSet to non-array field. Field named "
                                                 f"'{taken[-1]}' has non-array type {type_name(arr)}")
        added = [v for v in self._unique(ctx.collation)
                 if not any(collated_compare(e, v, ctx.collation) == 0 for e in arr)]
        if not added:
            return NOOP
        arr.extend(copy_value(v) for v in added)
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        return [copy_value(v) for v in self._unique(ctx.collation)]


class PopNode(Leaf):
    """``$pop: {a: 1}`` removes the last element, ``-1`` the first."""

    allow_creation = False

    def __init__(self, name: str, value: Any):
        if isinstance(value, bool) or not bsonorder.is_number(value):
            raise MongoError(ErrorCode.FailedToParse, f"Expected a number in: {fmt_elem(name, value)}")
        n = bsonorder.to_number(value)
        if n not in (1, -1):
            raise MongoError(ErrorCode.FailedToParse, f"$pop expects 1 or -1, found: {fmt_value(value)}")
        self.front = n < 0

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        arr = holder[key]
        if not isinstance(arr, list):
            raise MongoError(ErrorCode.TypeMismatch, f"Path '{dotted(taken)}' contains an element of non-array "
                                                     f"type '{type_name(arr)}'")
        if not arr:
            return NOOP
        del arr[0 if self.front else -1]
        return NORMAL


class _CullingNode(Leaf):
    """Removes the elements of an array that ``self.matches``."""

    allow_creation = False

    def matches(self, el: Any, ctx: ApplyContext) -> bool:
        raise NotImplementedError

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        arr = holder[key]
        if not isinstance(arr, list):
            raise MongoError(ErrorCode.BadValue, "Cannot apply $pull to a non-array value")
        kept = [el for el in arr if not self.matches(el, ctx)]
        if len(kept) == len(arr):
            return NOOP
        arr[:] = kept
        return NORMAL


def _compile_condition(spec: dict) -> Callable[[dict], bool]:
    from mongolake.query.filter import parse_filter
    from mongolake.query.matcher import compile_matcher

    return compile_matcher(parse_filter(spec))


class PullNode(_CullingNode):
    """``$pull``: a value (exact equality), a query on document elements, or an operator condition."""

    _WRAP = "__mongolake_pull_element"

    def __init__(self, name: str, value: Any):
        self.value = value
        self.kind = "eq"
        self.fn: Callable[[dict], bool] | None = None
        if isinstance(value, dict):
            first = next(iter(value), None)
            if first is None or not first.startswith("$") or first in _LOGICAL_TOP:
                self.kind = "object"
                self.fn = _compile_condition(value)
            else:
                self.kind = "wrapped"
                self.fn = _compile_condition({self._WRAP: value})
        elif isinstance(value, (Regex, re.Pattern)):
            self.kind = "wrapped"
            self.fn = _compile_condition({self._WRAP: value})

    def matches(self, el: Any, ctx: ApplyContext) -> bool:
        if self.kind == "eq":
            return collated_compare(el, self.value, ctx.collation) == 0
        if self.kind == "object":
            return isinstance(el, dict) and self.fn(el)
        return self.fn({self._WRAP: el})


class PullAllNode(_CullingNode):
    """``$pullAll: {a: [values]}``."""

    def __init__(self, name: str, value: Any):
        if not isinstance(value, list):
            raise MongoError(ErrorCode.BadValue, f"$pullAll requires an array argument but was given a "
                                                 f"{type_name(value)}")
        self.values = value

    def matches(self, el: Any, ctx: ApplyContext) -> bool:
        return any(collated_compare(el, v, ctx.collation) == 0 for v in self.values)
