"""Date expression operators: parts, ``$dateToParts``/``$dateFromParts``, ``$dateTrunc``,
``$dateAdd``/``$dateSubtract`` and ``$dateDiff`` (formatting lives in :mod:`.datefmt`)."""
from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

from bson.int64 import Int64

from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.core import Node, ParseState, arg_list, arity_error, compile_node, const, err, fold, register
from mongolake.query.expr.datecore import (
    UNIT_MS, UTC, add_months, clamp_day, from_local, offset_ms, parse_start_of_week, parse_unit, resolve_tz,
    to_datetime,
)
from mongolake.query.expr.numeric import as_int, as_int64, kind
from mongolake.query.expr.values import ms_to_date, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


_PARTS: dict[str, Callable[[_dt.datetime], int]] = {
    "$year": lambda d: d.year,
    "$month": lambda d: d.month,
    "$dayOfMonth": lambda d: d.day,
    "$hour": lambda d: d.hour,
    "$minute": lambda d: d.minute,
    "$second": lambda d: d.second,
    "$millisecond": lambda d: d.microsecond // 1000,
    "$dayOfWeek": lambda d: d.isoweekday() % 7 + 1,
    "$dayOfYear": lambda d: d.timetuple().tm_yday,
    "$week": lambda d: int(d.strftime("%U")),
    "$isoWeek": lambda d: d.isocalendar()[1],
    "$isoWeekYear": lambda d: d.isocalendar()[0],
    "$isoDayOfWeek": lambda d: d.isoweekday(),
}


def _date_and_tz(args: Any, ps: ParseState, name: str, extra: tuple = ()) -> tuple[Node, Node | None, dict]:
    """Parse ``<date>`` / ``[<date>]`` / ``{date, timezone, ...}`` argument forms."""
    if isinstance(args, dict) and args and not str(next(iter(args))).startswith("$"):
        for k in args:
            if k not in ("date", "timezone") + extra:
                raise err(40535, f"unrecognized option to {name}: \"{k}\"")
        if "date" not in args:
            raise err(40539, f"missing 'date' argument to {name}, provided: {args}")
        tz = compile_node(args["timezone"], ps) if "timezone" in args else None
        return compile_node(args["date"], ps), tz, args
    lst = arg_list(args)
    if len(lst) != 1:
        raise arity_error(name, 1, len(lst))
    return compile_node(lst[0], ps), None, {}


def _localize(d: Any, tz_node: Node | None, s: dict) -> _dt.datetime | None:
    dt = to_datetime(d)
    if tz_node is None:
        return dt.astimezone(UTC)
    tz = resolve_tz(tz_node(s))
    if tz is None:
        return None
    return dt.astimezone(tz)


def _part_parser(name: str, fn: Callable[[_dt.datetime], int]) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        date, tz, _ = _date_and_tz(args, ps, name)

        def node(s: dict) -> Any:
            d = date(s)
            if _nullish(d):
                return None
            loc = _localize(d, tz, s)
            return None if loc is None else fn(loc)

        return fold(node, [date] + ([tz] if tz else []))


for _n, _f in _PARTS.items():
    _part_parser(_n, _f)


@register("$dateToParts")
def _parse_date_to_parts(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(40524, "$dateToParts only supports an object as its argument")
    date, tz, raw = _date_and_tz(args, ps, name, ("iso8601",))
    iso = compile_node(raw["iso8601"], ps) if "iso8601" in raw else const(False)

    def node(s: dict) -> Any:
        d = date(s)
        if _nullish(d):
            return None
        loc = _localize(d, tz, s)
        if loc is None:
            return None
        flag = iso(s)
        if _nullish(flag):
            return None
        if not isinstance(flag, bool):
            raise err(40521, f"iso8601 must evaluate to a bool, found {type_name(flag)}")
        tail = {"hour": loc.hour, "minute": loc.minute, "second": loc.second,
                "millisecond": loc.microsecond // 1000}
        if flag:
            y, w, wd = loc.isocalendar()
            return {"isoWeekYear": y, "isoWeek": w, "isoDayOfWeek": wd, **tail}
        return {"year": loc.year, "month": loc.month, "day": loc.day, **tail}

    return node


_NATURAL = ("year", "month", "day")
_ISO = ("isoWeekYear", "isoWeek", "isoDayOfWeek")
_TIME = ("hour", "minute", "second", "millisecond")


@register("$dateFromParts")
def _parse_date_from_parts(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(40519, "$dateFromParts only supports an object as its argument")
    for k in args:
        if k not in _NATURAL + _ISO + _TIME + ("timezone",):
            raise err(40518, f"Unrecognized argument to $dateFromParts: {k}")
    natural = any(k in args for k in _NATURAL)
    iso = any(k in args for k in _ISO)
    if natural and iso:
        raise err(40489, "$dateFromParts does not allow mixing natural dates with ISO dates")
    if "year" not in args and "isoWeekYear" not in args:
        raise err(40516, "$dateFromParts requires either 'year' or 'isoWeekYear' to be present")
    fields = (_ISO if iso else _NATURAL) + _TIME
    defaults = {"month": 1, "day": 1, "isoWeek": 1, "isoDayOfWeek": 1}
    nodes = {f: compile_node(args[f], ps) if f in args else const(defaults.get(f, 0)) for f in fields}
    tz_node = compile_node(args["timezone"], ps) if "timezone" in args else None

    def node(s: dict) -> Any:
        vals = {}
        for f, n in nodes.items():
            v = n(s)
            if _nullish(v):
                return None
            if kind(v) is None or as_int(v) is None:
                raise err(40515, f"'{f}' must evaluate to an integer, found {type_name(v)} with value {v}")
            i = as_int(v)
            if f in ("year", "isoWeekYear"):
                if not 1 <= i <= 9999:
                    raise err(40523, f"'{f}' must evaluate to an integer in the range 1 to 9999, found {i}")
            elif not -32768 <= i <= 32767:
                raise err(31034, f"'{f}' must evaluate to a value in the range [-32768, 32767]; value {i} is not "
                                 "in range")
            vals[f] = i
        tz = UTC
        if tz_node is not None:
            tz = resolve_tz(tz_node(s))
            if tz is None:
                return None
        delta = _dt.timedelta(hours=vals["hour"], minutes=vals["minute"], seconds=vals["second"],
                              milliseconds=vals["millisecond"])
        try:
            if iso:
                base = _dt.datetime.combine(_dt.date.fromisocalendar(vals["isoWeekYear"], 1, 1), _dt.time())
                wall = base + _dt.timedelta(weeks=vals["isoWeek"] - 1, days=vals["isoDayOfWeek"] - 1) + delta
            else:
                y, m = add_months(vals["year"], 1, vals["month"] - 1)
                wall = _dt.datetime(y, m, 1) + _dt.timedelta(days=vals["day"] - 1) + delta
        except (OverflowError, ValueError):
            raise err(40523, "$dateFromParts: date out of range") from None
        return from_local(wall, tz)

    return fold(node, list(nodes.values()) + ([tz_node] if tz_node else []))


# --- $dateTrunc / $dateAdd / $dateSubtract / $dateDiff -------------------------------

_REF = _dt.datetime(2000, 1, 1)
_UNIT_MONTHS = {"year": 12, "quarter": 3, "month": 1}


def _obj_args(args: Any, name: str, allowed: tuple, required: tuple, ps: ParseState) -> dict[str, Node]:
    if not isinstance(args, dict):
        raise err(5439007 if name == "$dateTrunc" else 5166400, f"{name} only supports an object as its argument")
    for k in args:
        if k not in allowed:
            raise err(5439007 if name == "$dateTrunc" else 5166401, f"Unrecognized argument to {name}: {k}. "
                                                                     f"Expected arguments are {', '.join(allowed)}")
    for k in required:
        if k not in args:
            raise err(5439008 if name == "$dateTrunc" else 5166402, f"{name} requires '{k}' to be present")
    return {k: compile_node(v, ps) for k, v in args.items()}


def truncate_date(d: _dt.datetime, unit: str, bin_size: int, tz: _dt.tzinfo, start_of_week: int = 6) -> Any:
    """MongoDB's $dateTrunc: bins of ``bin_size`` units counted from 2000-01-01 (in ``tz``)."""
    loc = d.astimezone(tz)
    wall = loc.replace(tzinfo=None)
    if unit in _UNIT_MONTHS:
        months = (wall.year - 2000) * 12 + wall.month - 1
        size = _UNIT_MONTHS[unit] * bin_size
        start = months - months % size
        y, m = add_months(2000, 1, start)
        return from_local(_dt.datetime(y, m, 1), tz)
    if unit in ("week", "day"):
        ref = _REF
        days_unit = 1
        if unit == "week":
            ref = _REF + _dt.timedelta(days=(start_of_week - _REF.weekday()) % 7)
            days_unit = 7
        days = (wall.date() - ref.date()).days
        size = days_unit * bin_size
        start = days - days % size
        return from_local(ref + _dt.timedelta(days=start), tz)
    step = UNIT_MS[unit] * bin_size
    off = offset_ms(d, tz)
    ms = date_ms(d) + off
    ref_ms = date_ms(_REF.replace(tzinfo=UTC))
    start = ms - (ms - ref_ms) % step
    return ms_to_date(start - off)


def add_to_date(d: _dt.datetime, unit: str, amount: int, tz: _dt.tzinfo) -> Any:
    """MongoDB's $dateAdd: calendar units in ``tz`` wall-clock time, the others as fixed durations."""
    if unit in _UNIT_MONTHS:
        loc = d.astimezone(tz)
        y, m = add_months(loc.year, loc.month, amount * _UNIT_MONTHS[unit])
        if not 1 <= y <= 9999:
            raise err(5166406, f"$dateAdd overflowed")
        wall = loc.replace(tzinfo=None, year=y, month=m, day=clamp_day(y, m, loc.day))
        return from_local(wall, tz)
    if unit in ("day", "week") and tz is not UTC:
        loc = d.astimezone(tz)
        wall = loc.replace(tzinfo=None) + _dt.timedelta(days=amount * (7 if unit == "week" else 1))
        return from_local(wall, tz)
    return ms_to_date(date_ms(d) + amount * UNIT_MS[unit])


def diff_dates(a: _dt.datetime, b: _dt.datetime, unit: str, tz: _dt.tzinfo, start_of_week: int = 6) -> int:
    """MongoDB's $dateDiff: number of ``unit`` boundaries crossed from ``a`` to ``b``."""
    la, lb = a.astimezone(tz).replace(tzinfo=None), b.astimezone(tz).replace(tzinfo=None)
    if unit == "year":
        return lb.year - la.year
    if unit == "quarter":
        return (lb.year * 4 + (lb.month - 1) // 3) - (la.year * 4 + (la.month - 1) // 3)
    if unit == "month":
        return (lb.year * 12 + lb.month) - (la.year * 12 + la.month)
    if unit == "week":
        def week_index(w: _dt.datetime) -> int:
            days = (w.date() - _dt.date(2000, 1, 1)).days
            shift = (_dt.date(2000, 1, 1).weekday() - start_of_week) % 7
            return (days + shift) // 7
        return week_index(lb) - week_index(la)
    if unit == "day":
        return (lb.date() - la.date()).days
    step = UNIT_MS[unit]
    ma, mb = date_ms(a) + offset_ms(a, tz), date_ms(b) + offset_ms(b, tz)
    return mb // step - ma // step


def _common(vals: dict, name: str, s: dict, unit_key: str = "unit") -> tuple | None:
    unit = vals.get(unit_key)
    if _nullish(unit):
        return None
    unit = parse_unit(unit, name)
    tz = UTC
    if "timezone" in vals:
        tz = resolve_tz(vals["timezone"])
        if tz is None:
            return None
    sow = 6
    if unit == "week":
        v = vals.get("startOfWeek", "sunday")
        if _nullish(v):
            return None
        sow = parse_start_of_week(v, name)
    return unit, tz, sow


@register("$dateTrunc")
def _parse_date_trunc(args: Any, ps: ParseState, name: str) -> Node:
    nodes = _obj_args(args, name, ("date", "unit", "binSize", "timezone", "startOfWeek"), ("date", "unit"), ps)

    def node(s: dict) -> Any:
        vals = {k: n(s) for k, n in nodes.items()}
        d = vals["date"]
        if _nullish(d):
            return None
        d = to_datetime(d)
        common = _common(vals, name, s)
        if common is None:
            return None
        unit, tz, sow = common
        bs = vals.get("binSize", 1)
        if _nullish(bs):
            return None
        if kind(bs) is None or as_int64(bs) is None:
            raise err(5439017, f"$dateTrunc requires 'binSize' to be a 64-bit integer, but got value '{bs}' of type "
                               f"{type_name(bs)}")
        if as_int64(bs) <= 0:
            raise err(5439018, f"$dateTrunc requires 'binSize' to be greater than 0, but got value {as_int64(bs)}")
        return truncate_date(d, unit, as_int64(bs), tz, sow)

    return fold(node, list(nodes.values()))


def _add_parser(name: str, sign: int) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        nodes = _obj_args(args, name, ("startDate", "unit", "amount", "timezone"), ("startDate", "unit", "amount"), ps)

        def node(s: dict) -> Any:
            vals = {k: n(s) for k, n in nodes.items()}
            d, amount = vals["startDate"], vals["amount"]
            if _nullish(d) or _nullish(amount) or _nullish(vals["unit"]):
                return None
            d = to_datetime(d)
            common = _common(vals, name, s)
            if common is None:
                return None
            unit, tz, _ = common
            if kind(amount) is None or as_int64(amount) is None:
                raise err(5166405, f"{name} expects integer amount of time units")
            return add_to_date(d, unit, sign * as_int64(amount), tz)

        return fold(node, list(nodes.values()))


_add_parser("$dateAdd", 1)
_add_parser("$dateSubtract", -1)


@register("$dateDiff")
def _parse_date_diff(args: Any, ps: ParseState, name: str) -> Node:
    nodes = _obj_args(args, name, ("startDate", "endDate", "unit", "timezone", "startOfWeek"),
                      ("startDate", "endDate", "unit"), ps)

    def node(s: dict) -> Any:
        vals = {k: n(s) for k, n in nodes.items()}
        a, b = vals["startDate"], vals["endDate"]
        if _nullish(a) or _nullish(b):
            return None
        a, b = to_datetime(a), to_datetime(b)
        common = _common(vals, name, s)
        if common is None:
            return None
        unit, tz, sow = common
        return Int64(diff_dates(a, b, unit, tz, sow))

    return fold(node, list(nodes.values()))
