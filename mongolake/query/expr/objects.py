"""Object expression operators: ``$getField``, ``$setField``, ``$unsetField``, ``$mergeObjects``."""
from __future__ import annotations

from typing import Any

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import (
    Node, ParseState, compile_node, compile_variable, const_value, err, fold, is_const, register, variadic,
)
from mongolake.query.expr.values import type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def merge_objects(values: list, op: str = "$mergeObjects") -> dict:
    """Shallow merge left to right; null/missing inputs are ignored."""
    out: dict = {}
    for v in values:
        if _nullish(v):
            continue
        if type(v) is not dict:
            raise err(40400, f"{op} requires object inputs, but input {v!r} is of type {type_name(v)}")
        out.update(v)
    return out


variadic("$mergeObjects")(merge_objects)


def _field_arg(args: dict, name: str, ps: ParseState) -> str:
    f = args["field"]
    node = compile_node(f, ps)
    if not is_const(node) or not isinstance(const_value(node), str):
        raise err(5654601 if name == "$getField" else 4161106,
                  f"{name} requires 'field' to evaluate to a constant, but got a non-constant argument")
    return const_value(node)


def _obj_parser(name: str, allowed: tuple, required: tuple) -> Any:
    def deco(fn: Any) -> Any:
        @register(name)
        def parser(args: Any, ps: ParseState, opname: str) -> Node:
            if name == "$getField" and not isinstance(args, dict):
                args = {"field": args}
            if not isinstance(args, dict):
                raise err(4161100, f"{name} only supports an object as its argument")
            for k in args:
                if k not in allowed:
                    raise err(3041701 if name == "$getField" else 4161101,
                              f"{name} found an unknown argument: {k}")
            for k in required:
                if k not in args:
                    raise err(3041702 if name == "$getField" else 4161102,
                              f"{name} requires '{k}' to be specified")
            field = _field_arg(args, name, ps)
            inp = compile_node(args["input"], ps) if "input" in args else compile_variable("CURRENT", ps)
            val = compile_node(args["value"], ps) if "value" in args else None
            return fn(field, inp, val)
        return parser
    return deco


@_obj_parser("$getField", ("field", "input"), ("field",))
def _get_field(field: str, inp: Node, val: Any) -> Node:
    def node(s: dict) -> Any:
        obj = inp(s)
        if _nullish(obj):
            return None
        if type(obj) is not dict:
            return MISSING
        return obj.get(field, MISSING)
    return fold(node, [inp])


@_obj_parser("$setField", ("field", "input", "value"), ("field", "input", "value"))
def _set_field(field: str, inp: Node, val: Node) -> Node:
    def node(s: dict) -> Any:
        obj = inp(s)
        if _nullish(obj):
            return None
        if type(obj) is not dict:
            raise err(4161105, f"$setField requires 'input' to evaluate to type Object, but got {type_name(obj)}")
        v = val(s)
        out = dict(obj)
        if v is MISSING:
            out.pop(field, None)
        else:
            out[field] = v
        return out
    return fold(node, [inp, val])


@_obj_parser("$unsetField", ("field", "input"), ("field", "input"))
def _unset_field(field: str, inp: Node, val: Any) -> Node:
    def node(s: dict) -> Any:
        obj = inp(s)
        if _nullish(obj):
            return None
        if type(obj) is not dict:
            raise err(4161105, f"$unsetField requires 'input' to evaluate to type Object, but got "
                               f"{type_name(obj)}")
        out = dict(obj)
        out.pop(field, None)
        return out
    return fold(node, [inp])
