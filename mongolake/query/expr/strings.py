"""String expression operators (regular expressions live in :mod:`.regex`)."""
from __future__ import annotations

import datetime as _dt
from typing import Any

from bson.code import Code
from bson.decimal128 import Decimal128
from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import (
    Node, ParseState, compile_node, err, fixed, fold, ranged, register, variadic,
)
from mongolake.query.expr.numeric import DOUBLE, INT, LONG, as_int, kind
from mongolake.query.expr.values import is_date, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def format_double(f: float) -> str:
    """A double the way MongoDB prints it in string conversions."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f)) if f != 0 or str(f)[0] != "-" else "-0"
    r = repr(f)
    if "e" in r:
        mant, _, exp = r.partition("e")
        sign = exp[0] if exp[0] in "+-" else "+"
        digits = exp.lstrip("+-").lstrip("0") or "0"
        return f"{mant}e{sign}{digits}"
    return r


def format_date(v: Any) -> str:
    from mongolake.query.expr.values import ms_to_date
    from mongolake.query.bsonorder import date_ms

    d = v if isinstance(v, _dt.datetime) else ms_to_date(date_ms(v))
    if not isinstance(d, _dt.datetime):
        return str(d)
    d = d.astimezone(_dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def coerce_to_string(v: Any, op: str = "") -> str:
    """MongoDB's Value::coerceToString (used by $toLower, $substr, $strcasecmp...)."""
    if v is None or v is MISSING:
        return ""
    t = type(v)
    if t is str:
        return v
    k = kind(v)
    if k in (INT, LONG):
        return str(int(v))
    if k == DOUBLE:
        return format_double(v)
    if isinstance(v, Decimal128):
        return str(v)
    if is_date(v):
        return format_date(v)
    if isinstance(v, Timestamp):
        return f"Timestamp({v.time}, {v.inc})"
    if isinstance(v, Code):
        return str(v)
    raise err(16007, f"can't convert from BSON type {type_name(v)} to String")


@variadic("$concat")
def op_concat(values: list) -> Any:
    out = []
    for v in values:
        if _nullish(v):
            return None
        if type(v) is not str:
            raise err(16702, f"$concat only supports strings, not {type_name(v)}")
        out.append(v)
    return "".join(out)


def _utf8_len_prefix(s: str) -> list[int]:
    return [len(c.encode("utf-8")) for c in s]


@fixed("$substrBytes", 3)
def op_substr_bytes(s: Any, start: Any, length: Any) -> str:
    text = coerce_to_string(s, "$substrBytes")
    if kind(start) is None:
        raise err(16034, f"$substrBytes:  starting index must be a numeric type (is BSON type "
                         f"{type_name(start)})")
    if kind(length) is None:
        raise err(16035, f"$substrBytes:  length must be a numeric type (is BSON type {type_name(length)})")
    data = text.encode("utf-8")
    st = int(start)
    if st < 0:
        raise err(50752, f"$substrBytes: starting index must be non-negative (got: {st})")
    ln = int(length)
    if st >= len(data):
        return ""
    end = len(data) if ln < 0 else min(len(data), st + ln)

    def cont(i: int) -> bool:
        return i < len(data) and (data[i] & 0xC0) == 0x80

    if cont(st):
        raise err(28656, "$substrBytes:  Invalid range, starting index is a UTF-8 continuation byte.")
    if cont(end):
        raise err(28657, "$substrBytes:  Invalid range, ending index is in the middle of a UTF-8 character.")
    return data[st:end].decode("utf-8")


fixed("$substr", 3)(op_substr_bytes)


@fixed("$substrCP", 3)
def op_substr_cp(s: Any, start: Any, length: Any) -> str:
    text = coerce_to_string(s, "$substrCP")
    if kind(start) is None:
        raise err(34450, f"$substrCP: starting index must be a numeric type (is BSON type {type_name(start)})")
    st = as_int(start)
    if st is None:
        raise err(34451, f"$substrCP: starting index cannot be represented as a 32-bit integral value: {start}")
    if kind(length) is None:
        raise err(34452, f"$substrCP: length must be a numeric type (is BSON type {type_name(length)})")
    ln = as_int(length)
    if ln is None:
        raise err(34453, f"$substrCP: length cannot be represented as a 32-bit integral value: {length}")
    if ln < 0:
        raise err(34454, "$substrCP: length must be a nonnegative integer.")
    if st < 0:
        raise err(34455, "$substrCP: the starting index must be nonnegative integer.")
    return text[st:st + ln]


def _ascii_lower(s: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s) if not s.isascii() else s.lower()


def _ascii_upper(s: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s) if not s.isascii() else s.upper()


fixed("$toLower", 1)(lambda v: _ascii_lower(coerce_to_string(v)))
fixed("$toUpper", 1)(lambda v: _ascii_upper(coerce_to_string(v)))


@fixed("$strcasecmp", 2)
def op_strcasecmp(a: Any, b: Any) -> int:
    x, y = _ascii_upper(coerce_to_string(a)), _ascii_upper(coerce_to_string(b))
    return (x > y) - (x < y)


@fixed("$split", 2)
def op_split(s: Any, sep: Any) -> Any:
    if _nullish(s) or _nullish(sep):
        return None
    if type(s) is not str:
        raise err(40085, f"$split requires an expression that evaluates to a string as a first argument, "
                         f"found: {type_name(s)}")
    if type(sep) is not str:
        raise err(40086, f"$split requires an expression that evaluates to a string as a second argument, "
                         f"found: {type_name(sep)}")
    if sep == "":
        raise err(40087, "$split requires a non-empty separator")
    return s.split(sep)


@fixed("$strLenCP", 1)
def op_strlen_cp(s: Any) -> int:
    if type(s) is not str:
        raise err(34471, f"$strLenCP requires a string argument, found: {type_name(s)}")
    return len(s)


@fixed("$strLenBytes", 1)
def op_strlen_bytes(s: Any) -> int:
    if type(s) is not str:
        raise err(34473, f"$strLenBytes requires a string argument, found: {type_name(s)}")
    return len(s.encode("utf-8"))


def _index_of(name: str, codes: tuple[int, int, int, int], as_bytes: bool) -> None:
    def op(s: Any, sub: Any, start: Any = MISSING, end: Any = MISSING) -> Any:
        if _nullish(s):
            return None
        if type(s) is not str:
            raise err(codes[0], f"{name} requires a string as the first argument, found: {type_name(s)}")
        if type(sub) is not str:
            raise err(codes[1], f"{name} requires a string as the second argument, found: {type_name(sub)}")
        hay: Any = s.encode("utf-8") if as_bytes else s
        needle: Any = sub.encode("utf-8") if as_bytes else sub
        lo, hi = 0, len(hay)
        for label, v in (("starting", start), ("ending", end)):
            if v is MISSING:
                continue
            i = as_int(v) if kind(v) is not None else None
            if i is None:
                raise err(codes[2], f"{name} requires an integral {label} index, found a value of type: "
                                    f"{type_name(v)}, with value: {v}")
            if i < 0:
                raise err(codes[3], f"{name} requires a nonnegative {label} index, found: {i}")
            if label == "starting":
                lo = i
            else:
                hi = min(i, hi)
        if lo > len(hay) or lo > hi:
            return -1
        return hay.find(needle, lo, hi) if len(needle) <= hi - lo else -1

    ranged(name, 2, 4)(op)


_index_of("$indexOfCP", (40093, 40094, 40096, 40097), False)
_index_of("$indexOfBytes", (40091, 40092, 40096, 40097), True)

_WHITESPACE = "\0 \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
              "\u2028\u2029\u202f\u205f\u3000"


def _trim_parser(name: str, left: bool, right: bool) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        if not isinstance(args, dict):
            raise err(50696, f"{name} only supports an object as an argument, found: {type_name(args)}")
        for k in args:
            if k not in ("input", "chars"):
                raise err(50694, f"{name} found an unknown argument: {k}")
        if "input" not in args:
            raise err(50695, f"{name} requires an 'input' field")
        inp = compile_node(args["input"], ps)
        chars = compile_node(args["chars"], ps) if "chars" in args else None

        def node(s: dict) -> Any:
            v = inp(s)
            if _nullish(v):
                return None
            if type(v) is not str:
                raise err(50699, f"{name} requires its input to be a string, got {v!r} (of type "
                                 f"{type_name(v)}) instead.")
            cs = _WHITESPACE
            if chars is not None:
                c = chars(s)
                if _nullish(c):
                    return None
                if type(c) is not str:
                    raise err(50700, f"{name} requires 'chars' to be a string, got {c!r} (of type "
                                     f"{type_name(c)}) instead.")
                cs = c
            if left and right:
                return v.strip(cs)
            return v.lstrip(cs) if left else v.rstrip(cs)

        return fold(node, [inp] + ([chars] if chars else []))


_trim_parser("$trim", True, True)
_trim_parser("$ltrim", True, False)
_trim_parser("$rtrim", False, True)


def _replace_parser(name: str, all_: bool) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        if not isinstance(args, dict):
            raise err(51751, f"{name} requires an object as an argument, found: {type_name(args)}")
        for k in args:
            if k not in ("input", "find", "replacement"):
                raise err(51750, f"{name} found an unknown argument: {k}")
        for k, code in (("input", 51749), ("find", 51748), ("replacement", 51747)):
            if k not in args:
                raise err(code, f"{name} requires '{k}' to be specified")
        nodes = [compile_node(args[k], ps) for k in ("input", "find", "replacement")]

        def node(s: dict) -> Any:
            vals = [n(s) for n in nodes]
            for label, v, code in zip(("input", "find", "replacement"), vals, (51746, 51745, 51744)):
                if not _nullish(v) and type(v) is not str:
                    raise err(code, f"{name} requires that '{label}' be a string, found: {v!r}")
            if any(_nullish(v) for v in vals):
                return None
            inp, find, rep = vals
            return inp.replace(find, rep) if all_ else inp.replace(find, rep, 1)

        return fold(node, nodes)


_replace_parser("$replaceOne", False)
_replace_parser("$replaceAll", True)
