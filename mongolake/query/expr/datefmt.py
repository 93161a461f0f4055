"""``$dateToString`` and ``$dateFromString``: MongoDB date format specifiers and date-string parsing."""
from __future__ import annotations

import datetime as _dt
import re
from functools import lru_cache
from typing import Any

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import Node, ParseState, compile_node, err, fold, register
from mongolake.query.expr.datecore import UTC, from_local, resolve_tz, to_datetime
from mongolake.query.expr.values import type_name

ConversionFailure = 241
DEFAULT_FORMAT = "%Y-%m-%dT%H:%M:%S.%LZ"
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_SPECIFIERS = set("dGHjLmMSuUVwYzZbB%")


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def validate_format(fmt: str, op: str = "$dateToString") -> None:
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt):
                raise err(18535, "Unmatched '%' at end of format string")
            if fmt[i + 1] not in _SPECIFIERS:
                raise err(18536, f"Invalid format character '%{fmt[i + 1]}' in format string")
            i += 2
        else:
            i += 1


def format_date(d: _dt.datetime, fmt: str, tz: _dt.tzinfo) -> str:
    """Render instant ``d`` in ``tz`` with MongoDB's ``$dateToString`` specifiers."""
    loc = d.astimezone(tz)
    if not 0 <= loc.year <= 9999:
        raise err(18537, "Could not convert date to string: date component was outside the supported range of "
                         "0-9999")
    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        spec = fmt[i + 1]
        i += 2
        if spec == "d":
            out.append(f"{loc.day:02d}")
        elif spec == "G":
            out.append(f"{loc.isocalendar()[0]:04d}")
        elif spec == "H":
            out.append(f"{loc.hour:02d}")
        elif spec == "j":
            out.append(f"{loc.timetuple().tm_yday:03d}")
        elif spec == "L":
            out.append(f"{loc.microsecond // 1000:03d}")
        elif spec == "m":
            out.append(f"{loc.month:02d}")
        elif spec == "M":
            out.append(f"{loc.minute:02d}")
        elif spec == "S":
            out.append(f"{loc.second:02d}")
        elif spec == "u":
            out.append(str(loc.isoweekday()))
        elif spec == "U":
            out.append(loc.strftime("%U"))
        elif spec == "V":
            out.append(f"{loc.isocalendar()[1]:02d}")
        elif spec == "w":
            out.append(str(loc.isoweekday() % 7 + 1))
        elif spec == "Y":
            out.append(f"{loc.year:04d}")
        elif spec in ("z", "Z"):
            minutes = int((loc.utcoffset() or _dt.timedelta(0)).total_seconds() // 60)
            sign = "-" if minutes < 0 else "+"
            if spec == "z":
                out.append(f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}")
            else:
                out.append(f"{sign}{abs(minutes):03d}")
        elif spec == "b":
            out.append(_MONTHS[loc.month - 1][:3])
        elif spec == "B":
            out.append(_MONTHS[loc.month - 1])
        elif spec == "%":
            out.append("%")
    return "".join(out)


@register("$dateToString")
def _parse_date_to_string(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(18629, "$dateToString only supports an object as its argument")
    for k in args:
        if k not in ("date", "format", "timezone", "onNull"):
            raise err(18534, f"Unrecognized parameter to $dateToString: {k}")
    if "date" not in args:
        raise err(18628, "Missing 'date' parameter to $dateToString")
    date = compile_node(args["date"], ps)
    fmt = compile_node(args["format"], ps) if "format" in args else None
    tz = compile_node(args["timezone"], ps) if "timezone" in args else None
    on_null = compile_node(args["onNull"], ps) if "onNull" in args else None

    def node(s: dict) -> Any:
        f = DEFAULT_FORMAT
        if fmt is not None:
            f = fmt(s)
            if _nullish(f):
                return None
            if not isinstance(f, str):
                raise err(18533, f"$dateToString requires that 'format' be a string, found: {type_name(f)} with "
                                 f"value {f!r}")
            validate_format(f)
        zone = UTC
        if tz is not None:
            zone = resolve_tz(tz(s))
            if zone is None:
                return None
        d = date(s)
        if _nullish(d):
            return on_null(s) if on_null is not None else None
        return format_date(to_datetime(d), f, zone)

    return fold(node, [n for n in (date, fmt, tz, on_null) if n is not None])


# --- parsing ---------------------------------------------------------------------------

_TZ_SUFFIX = r"(?P<tz>Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
_DEFAULT_PATTERNS = [
    re.compile(r"^(?P<Y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
               r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<frac>\d+))?)?)?\s*" + _TZ_SUFFIX + r"$"),
    re.compile(r"^(?P<Y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})"
               r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<frac>\d+))?)?)?\s*" + _TZ_SUFFIX + r"$"),
    re.compile(r"^(?P<m>\d{1,2})[/-](?P<d>\d{1,2})[/-](?P<Y>\d{4})"
               r"(?:[T ](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<frac>\d+))?)?)?\s*" + _TZ_SUFFIX + r"$"),
    re.compile(r"^(?P<Y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})?)?" + _TZ_SUFFIX
               + r"$"),
]
_MONTH_NAME_RE = re.compile(
    r"^(?:(?P<B>[A-Za-z]+)\.? +(?P<d>\d{1,2})(?:st|nd|rd|th)?,? +(?P<Y>\d{4})|"
    r"(?P<d2>\d{1,2}) +(?P<B2>[A-Za-z]+)\.? +(?P<Y2>\d{4}))"
    r"(?: +(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<frac>\d+))?)?)?\s*" + _TZ_SUFFIX + r"$")


def _month_from_name(name: str) -> int:
    low = name.lower()
    for i, m in enumerate(_MONTHS):
        if m.lower() == low or m[:3].lower() == low[:3] and len(low) >= 3 and m.lower().startswith(low):
            return i + 1
    raise _ParseError(f"The timezone could not be found in the database; unknown month '{name}'")


class _ParseError(Exception):
    pass


def _tz_from_suffix(tz: str | None) -> _dt.tzinfo | None:
    if not tz:
        return None
    if tz in ("Z", "z", "UTC", "GMT"):
        return UTC
    return resolve_tz(tz if ":" in tz or len(tz) != 5 else tz[:3] + ":" + tz[3:])


@lru_cache(maxsize=128)
def _format_regex(fmt: str) -> re.Pattern:
    validate_format(fmt, "$dateFromString")
    pieces = {
        "Y": r"(?P<Y>\d{4})", "m": r"(?P<m>\d{1,2})", "d": r"(?P<d>\d{1,2})", "H": r"(?P<H>\d{1,2})",
        "M": r"(?P<M>\d{1,2})", "S": r"(?P<S>\d{1,2})", "L": r"(?P<frac>\d{1,3})", "j": r"(?P<j>\d{1,3})",
        "z": r"(?P<tz>[+-]\d{2}:?\d{2})", "Z": r"(?P<tzmin>[+-]\d{1,4})", "G": r"(?P<G>\d{4})",
        "V": r"(?P<V>\d{1,2})", "u": r"(?P<u>\d)", "w": r"(?P<w>\d)", "U": r"(?P<U>\d{1,2})",
        "b": r"(?P<B>[A-Za-z]{3})", "B": r"(?P<B>[A-Za-z]+)", "%": "%",
    }
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            out.append(pieces[fmt[i + 1]])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def _build(g: dict, tz_param: _dt.tzinfo | None, text: str) -> _dt.datetime:
    tz_str = g.get("tz")
    tz_in_string = _tz_from_suffix(tz_str)
    if g.get("tzmin"):
        minutes = int(g["tzmin"])
        tz_in_string = _dt.timezone(_dt.timedelta(minutes=minutes))
    if tz_in_string is not None and tz_param is not None:
        raise _ParseError("you cannot pass in a date/time string with GMT offset together with a timezone argument")
    tz = tz_in_string or tz_param or UTC
    frac = g.get("frac") or "0"
    ms = int((frac + "00")[:3]) if g.get("frac") else 0
    h, mi, sec = int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0)
    try:
        if g.get("G"):
            base = _dt.date.fromisocalendar(int(g["G"]), int(g.get("V") or 1), int(g.get("u") or 1))
            wall = _dt.datetime.combine(base, _dt.time(h, mi, sec, ms * 1000))
        else:
            if not g.get("Y"):
                raise _ParseError("an incomplete date/time string has been found, with elements missing")
            y = int(g["Y"])
            if g.get("j"):
                wall = _dt.datetime(y, 1, 1, h, mi, sec, ms * 1000) + _dt.timedelta(days=int(g["j"]) - 1)
            else:
                month = _month_from_name(g["B"]) if g.get("B") else int(g.get("m") or 1)
                wall = _dt.datetime(y, month, int(g.get("d") or 1), h, mi, sec, ms * 1000)
    except ValueError as e:
        raise _ParseError(f"The parsed date was invalid ({e})") from None
    return from_local(wall, tz)


def parse_date_string(text: str, fmt: str | None, tz: Any) -> _dt.datetime:
    """Parse a date string like ``$dateFromString`` (``tz`` a zone name, tzinfo or None)."""
    tz_param = tz if isinstance(tz, _dt.tzinfo) or tz is None else resolve_tz(tz)
    if tz == "UTC":
        tz_param = None
    try:
        if fmt is not None:
            m = _format_regex(fmt).match(text)
            if not m:
                raise _ParseError(f"Error parsing date string '{text}' with format '{fmt}'")
            return _build(m.groupdict(), tz_param, text)
        for pat in _DEFAULT_PATTERNS:
            m = pat.match(text.strip())
            if m:
                return _build(m.groupdict(), tz_param, text)
        m = _MONTH_NAME_RE.match(text.strip())
        if m:
            g = m.groupdict()
            if g.get("B2"):
                g["B"], g["d"], g["Y"] = g["B2"], g["d2"], g["Y2"]
            return _build(g, tz_param, text)
        raise _ParseError("Unexpected character")
    except _ParseError as e:
        raise err(ConversionFailure, f"Error parsing date string '{text}'; {e}") from None


@register("$dateFromString")
def _parse_date_from_string(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(40540, "$dateFromString only supports an object as an argument")
    for k in args:
        if k not in ("dateString", "format", "timezone", "onError", "onNull"):
            raise err(40541, f"Unrecognized argument to $dateFromString: {k}")
    if "dateString" not in args:
        raise err(40542, "Missing 'dateString' parameter to $dateFromString")
    ds = compile_node(args["dateString"], ps)
    fmt = compile_node(args["format"], ps) if "format" in args else None
    tz = compile_node(args["timezone"], ps) if "timezone" in args else None
    on_error = compile_node(args["onError"], ps) if "onError" in args else None
    on_null = compile_node(args["onNull"], ps) if "onNull" in args else None

    def node(s: dict) -> Any:
        zone = None
        if tz is not None:
            zone = resolve_tz(tz(s))
            if zone is None:
                return None
        f = None
        if fmt is not None:
            f = fmt(s)
            if _nullish(f):
                return None
            if not isinstance(f, str):
                raise err(40684, f"$dateFromString requires that 'format' be a string, found: {type_name(f)} with "
                                 f"value {f!r}")
            validate_format(f, "$dateFromString")
        text = ds(s)
        if _nullish(text):
            return on_null(s) if on_null is not None else None
        try:
            if not isinstance(text, str):
                raise err(ConversionFailure, f"$dateFromString requires that 'dateString' be a string, found: "
                                             f"{type_name(text)} with value {text!r}")
            return parse_date_string(text, f, zone)
        except Exception as e:  # noqa: BLE001 - only ConversionFailure is caught by onError
            if on_error is not None and getattr(e, "code", None) == ConversionFailure:
                return on_error(s)
            raise

    return fold(node, [n for n in (ds, fmt, tz, on_error, on_null) if n is not None])
