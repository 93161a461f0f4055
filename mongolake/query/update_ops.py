"""Leaf update operators on single values: $set $setOnInsert $unset $inc $mul $min
$max $currentDate $bit $rename (array operators live in :mod:`update_array_ops`).

Each class validates its argument in ``__init__`` (raising MongoError at parse
time, with mongod's codes and messages) and implements the apply hooks of
:class:`mongolake.query.update_tree.Leaf`.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import update_arith as arith
from mongolake.query.collation import compare as collated_compare
from mongolake.query.docpath import (copy_value, dotted, fmt_elem, fmt_id, identical, is_array_filter,
                                     parse_index, type_name)
from mongolake.query.update_tree import (NOOP, NORMAL, ApplyContext, Leaf, create_path, immutable_error,
                                         record_creation)


class SetNode(Leaf):
    """``$set`` (and ``$setOnInsert`` with ``insert_only``)."""

    def __init__(self, name: str, value: Any, *, insert_only: bool = False):
        self.value = value
        self.insert_only = insert_only

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        if identical(holder[key], self.value):
            return NOOP
        holder[key] = copy_value(self.value)
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        return copy_value(self.value)


class UnsetNode(Leaf):
    """``$unset``: removes a field; an array element becomes null."""

    allow_creation = False
    allow_non_viable = True

    def __init__(self, name: str, value: Any):
        pass

    def apply_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> None:
        if taken[0] == "_id":
            raise immutable_error(taken)
        ctx.modified = True
        if isinstance(holder, list):
            holder[key] = None
            ctx.log.set(taken, None)
        else:
            del holder[key]
            ctx.log.unset(taken)


class ArithmeticNode(Leaf):
    """``$inc`` / ``$mul`` with mongod's numeric promotion (see :mod:`update_arith`)."""

    def __init__(self, name: str, value: Any, *, op: str):
        self.op = op
        self.opname = "$inc" if op == "+" else "$mul"
        if arith.num_kind(value) is None:
            verb = "increment" if op == "+" else "multiply"
            if isinstance(value, int) and not isinstance(value, bool):
                raise MongoError(ErrorCode.BadValue, f"{self.opname} argument {value} is out of the int64 range")
            raise MongoError(ErrorCode.TypeMismatch,
                             f"Cannot {verb} with non-numeric argument: {{{fmt_elem(name, value)}}}")
        self.value = value

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        cur = holder[key]
        if arith.num_kind(cur) is None:
            raise MongoError(ErrorCode.TypeMismatch,
                             f"Cannot apply {self.opname} to a value of non-numeric type. {{{fmt_id(ctx.root)}}} "
                             f"has the field '{taken[-1]}' of non-numeric type {type_name(cur)}")
        new = arith.add(cur, self.value) if self.op == "+" else arith.mul(cur, self.value)
        if new is not arith.INVALID and identical(new, cur):
            return NOOP
        if new is arith.INVALID:
            raise MongoError(ErrorCode.BadValue,
                             f"Failed to apply {self.opname} operations to current value "
                             f"({arith.debug_string(cur)}) for document {{{fmt_id(ctx.root)}}}")
        holder[key] = new
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        if self.op == "+":
            return self.value
        return arith.zero_like(self.value)


class CompareNode(Leaf):
    """``$min`` / ``$max``: replace when the new value sorts lower / higher."""

    def __init__(self, name: str, value: Any, *, sign: int):
        self.value = value
        self.sign = sign  # -1 for $min, +1 for $max

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        c = collated_compare(self.value, holder[key], ctx.collation)
        if c == 0 or (c > 0) != (self.sign > 0):
            return NOOP
        holder[key] = copy_value(self.value)
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        return copy_value(self.value)


def now_date(ctx: ApplyContext) -> _dt.datetime:
    now = ctx.now
    if now is None:
        now = _dt.datetime.now(_dt.timezone.utc)
        ctx.now = now
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def now_timestamp(ctx: ApplyContext) -> Timestamp:
    if ctx.timestamp is not None:
        return ctx.timestamp
    return Timestamp(int(now_date(ctx).timestamp()), 1)


class CurrentDateNode(Leaf):
    """``$currentDate``: ``true`` / ``{$type: "date"}`` or ``{$type: "timestamp"}``."""

    def __init__(self, name: str, value: Any):
        if isinstance(value, bool):
            self.is_date = True
        elif isinstance(value, dict):
            found = False
            self.is_date = True
            for k, v in value.items():
                if k != "$type":
                    raise MongoError(ErrorCode.BadValue, f"Unrecognized $currentDate option: {k}")
                if v in ("date", "timestamp"):
                    self.is_date = v == "date"
                    found = True
            if not found:
                raise MongoError(ErrorCode.BadValue, "The '$type' string field is required to be 'date' or "
                                                     "'timestamp': {$currentDate: {field : {$type: 'date'}}}")
        else:
            raise MongoError(ErrorCode.BadValue,
                             f"{type_name(value)} is not valid type for $currentDate. Please use a boolean ('true') "
                             "or a $type expression ({$type: 'timestamp/date'}).")

    def _value(self, ctx: ApplyContext) -> Any:
        return now_date(ctx) if self.is_date else now_timestamp(ctx)

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        holder[key] = self._value(ctx)
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        return self._value(ctx)


class BitNode(Leaf):
    """``$bit: {field: {and|or|xor: <int>}}``."""

    def __init__(self, name: str, value: Any):
        if not isinstance(value, dict):
            raise MongoError(ErrorCode.BadValue,
                             f"The $bit modifier is not compatible with a {type_name(value)}. You must pass in an "
                             "embedded document: {$bit: {field: {and/or/xor: #}}.")
        self.ops: list[tuple[str, Any]] = []
        for op, operand in value.items():
            if op not in ("and", "or", "xor"):
                raise MongoError(ErrorCode.BadValue,
                                 f"The $bit modifier only supports 'and', 'or', and 'xor', not '{op}' which is an "
                                 f"unknown operator: {{{fmt_elem(op, operand)}}}")
            if not arith.is_integral_kind(operand):
                raise MongoError(ErrorCode.BadValue,
                                 f"The $bit modifier field must be an Integer(32/64 bit); a '{type_name(operand)}' "
                                 f"is not supported here: {{{fmt_elem(op, operand)}}}")
            self.ops.append((op, operand))
        if not self.ops:
            raise MongoError(ErrorCode.BadValue, "You must pass in at least one bitwise operation. The format is: "
                                                 "{$bit: {field: {and/or/xor: #}}")

    def _apply_ops(self, v: Any) -> Any:
        for op, operand in self.ops:
            v = arith.bitop(v, operand, op)
        return v

    def update_existing(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str]) -> Any:
        cur = holder[key]
        if not arith.is_integral_kind(cur):
            raise MongoError(ErrorCode.BadValue,
                             f"Cannot apply $bit to a value of non-integral type.{fmt_id(ctx.root)} has the field "
                             f"{taken[-1]} of non-integer type {type_name(cur)}")
        new = self._apply_ops(cur)
        if identical(new, cur):
            return NOOP
        holder[key] = new
        return NORMAL

    def new_value(self, ctx: ApplyContext) -> Any:
        return self._apply_ops(0)


class RenameNode(Leaf):
    """``$rename: {from: to}``; this node sits at ``to``, a placeholder at ``from``."""

    def __init__(self, from_path: str, to_path: str):
        if "\0" in to_path:
            raise MongoError(ErrorCode.BadValue, "The 'to' field for $rename cannot contain an embedded null byte")
        spec = f"{{{fmt_elem(from_path, to_path)}}}"[1:-1]
        fparts, tparts = from_path.split("."), to_path.split(".")
        if fparts == tparts:
            raise MongoError(ErrorCode.BadValue, f"The source and target field for $rename must differ: {spec}")
        n = min(len(fparts), len(tparts))
        if fparts[:n] == tparts[:n]:
            raise MongoError(ErrorCode.BadValue,
                             f"The source and target field for $rename must not be on the same path: {spec}")
        if any(p == "$" or is_array_filter(p) for p in fparts):
            raise MongoError(ErrorCode.BadValue, f"The source field for $rename may not be dynamic: {from_path}")
        if any(p == "$" or is_array_filter(p) for p in tparts):
            raise MongoError(ErrorCode.BadValue, f"The destination field for $rename may not be dynamic: {to_path}")
        self.from_parts = fparts
        self.to_parts = tparts

    def _find_source(self, ctx: ApplyContext) -> tuple[Any, Any, list[Any]] | None:
        """(parent, key, ancestors) of the source element, None when missing; raises if non-viable."""
        cur: Any = ctx.root
        ancestors: list[tuple[str, Any]] = []
        parent, key = None, None
        for i, part in enumerate(self.from_parts):
            if isinstance(cur, dict):
                if part not in cur:
                    return None
                parent, key = cur, part
            elif isinstance(cur, list):
                idx = parse_index(part)
                if idx is None:
                    self._not_viable(i, cur)
                if idx >= len(cur):
                    return None
                parent, key = cur, idx
            else:
                self._not_viable(i, cur)
            ancestors.append((part, cur))
            cur = parent[key]
        return parent, key, ancestors

    def _not_viable(self, i: int, cur: Any) -> None:
        name = self.from_parts[i - 1] if i else ""
        raise MongoError(ErrorCode.PathNotViable,
                         f"cannot use the part ({name} of {dotted(self.from_parts)}) to traverse the element "
                         f"({{{fmt_elem(name, cur)}}})")

    def apply(self, ctx: ApplyContext, holder: Any, key: Any, taken: list[str], to_create: list[str]) -> None:
        found = self._find_source(ctx)
        if found is None:
            return
        parent, skey, ancestors = found
        # renaming through an array is not allowed (the renamed value itself may be an array)
        names = [ctx_name for ctx_name, _ in ancestors]
        for i, (_, container) in enumerate(ancestors):
            if i > 0 and isinstance(container, list):
                raise MongoError(ErrorCode.BadValue,
                                 f"The source field cannot be an array element, '{dotted(self.from_parts)}' in doc "
                                 f"with {fmt_id(ctx.root)} has an array field called '{names[i - 1]}'")
        # the destination may not be inside an array either
        vals: list[Any] = [ctx.root]
        for part in taken:
            c = vals[-1]
            vals.append(c[part] if isinstance(c, dict) else c[int(part)])
        last = len(taken) if to_create else len(taken) - 1
        for i in range(1, last + 1):
            if isinstance(vals[i], list):
                raise MongoError(ErrorCode.BadValue,
                                 f"The destination field cannot be an array element, '{dotted(self.to_parts)}' in "
                                 f"doc with {fmt_id(ctx.root)} has an array field called '{taken[i - 1]}'")
        value = parent[skey]
        if to_create:
            create_path(holder, key, taken, to_create, value)
            record_creation(ctx, holder, key, taken, to_create)
        elif not identical(holder[key], value):
            if taken[0] == "_id":
                raise immutable_error(taken)
            holder[key] = value
            ctx.log.set(taken, value)
        if self.from_parts[0] == "_id":
            raise MongoError(ErrorCode.ImmutableField,
                             f"Unsetting the path '{dotted(self.from_parts)}' using $rename would modify the "
                             "immutable field '_id'")
        del parent[skey]
        ctx.modified = True
        ctx.log.unset(self.from_parts)
