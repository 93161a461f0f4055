"""Set expression operators (arrays treated as sets, equality by BSON value)."""
from __future__ import annotations

from typing import Any

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import err, fixed, variadic
from mongolake.query.expr.values import hash_key, truthy, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def _unique(values: list) -> dict:
    out: dict = {}
    for v in values:
        out.setdefault(hash_key(v), v)
    return out


@variadic("$setUnion")
def op_set_union(arrays: list) -> Any:
    out: dict = {}
    for a in arrays:
        if _nullish(a):
            return None
        if type(a) is not list:
            raise err(17043, f"All operands of $setUnion must be arrays. One argument is of type: {type_name(a)}")
        for v in a:
            out.setdefault(hash_key(v), v)
    return list(out.values())


@variadic("$setIntersection")
def op_set_intersection(arrays: list) -> Any:
    result: dict | None = None
    null_seen = False
    for a in arrays:
        if _nullish(a):
            null_seen = True
            continue
        if type(a) is not list:
            raise err(17047, "All operands of $setIntersection must be arrays. One argument is of type: "
                             + type_name(a))
        u = _unique(a)
        result = u if result is None else {k: v for k, v in result.items() if k in u}
    if null_seen:
        return None
    return list(result.values()) if result is not None else []


@fixed("$setDifference", 2)
def op_set_difference(a: Any, b: Any) -> Any:
    if _nullish(a) or _nullish(b):
        return None
    if type(a) is not list:
        raise err(17048, f"both operands of $setDifference must be arrays. First argument is of type: "
                         f"{type_name(a)}")
    if type(b) is not list:
        raise err(17049, f"both operands of $setDifference must be arrays. Second argument is of type: "
                         f"{type_name(b)}")
    exclude = _unique(b)
    return [v for k, v in _unique(a).items() if k not in exclude]


@variadic("$setEquals", 2)
def op_set_equals(arrays: list) -> bool:
    sets = []
    for a in arrays:
        if type(a) is not list:
            raise err(17044, f"All operands of $setEquals must be arrays. One argument is of type: "
                             f"{type_name(a)}")
        sets.append(set(_unique(a)))
    return all(s == sets[0] for s in sets[1:])


@fixed("$setIsSubset", 2)
def op_set_is_subset(a: Any, b: Any) -> bool:
    if type(a) is not list:
        raise err(17046, f"both operands of $setIsSubset must be arrays. First argument is of type: "
                         f"{type_name(a)}")
    if type(b) is not list:
        raise err(17042, f"both operands of $setIsSubset must be arrays. Second argument is of type: "
                         f"{type_name(b)}")
    return set(_unique(a)) <= set(_unique(b))


@fixed("$anyElementTrue", 1)
def op_any_element_true(a: Any) -> bool:
    if type(a) is not list:
        raise err(17041, f"$anyElementTrue's argument must be an array, but is {type_name(a)}")
    return any(truthy(v) for v in a)


@fixed("$allElementsTrue", 1)
def op_all_elements_true(a: Any) -> bool:
    if type(a) is not list:
        raise err(17040, f"$allElementsTrue's argument must be an array, but is {type_name(a)}")
    return all(truthy(v) for v in a)
