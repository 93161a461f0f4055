"""Date helpers shared by the date operators: time zones, coercion, calendar arithmetic."""
from __future__ import annotations

import calendar
import datetime as _dt
import re
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson.datetime_ms import DatetimeMS
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.core import err
from mongolake.query.expr.values import ms_to_date, type_name

UTC = _dt.timezone.utc
_OFFSET_RE = re.compile(r"^([+-])(\d{2})(?::?(\d{2}))?$")


@lru_cache(maxsize=256)
def _tz_from_string(name: str) -> _dt.tzinfo:
    if name in ("UTC", "GMT", "Z", "Etc/UTC", "Etc/GMT"):
        return UTC
    m = _OFFSET_RE.match(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise err(40485, f'unrecognized time zone identifier: "{name}"') from None


def resolve_tz(tz: Any) -> _dt.tzinfo | None:
    """A tzinfo for a ``timezone`` argument (None for null/missing input, meaning "result is null")."""
    if tz is None or tz is MISSING:
        return None
    if not isinstance(tz, str):
        raise err(40517, f"timezone must evaluate to a string, found {type_name(tz)}")
    return _tz_from_string(tz)


def to_datetime(v: Any, op: str = "") -> _dt.datetime:
    """Coerce a date-like value (date, Timestamp, ObjectId) to an aware UTC datetime."""
    if isinstance(v, _dt.datetime):
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    if isinstance(v, DatetimeMS):
        d = ms_to_date(int(v))
        if isinstance(d, _dt.datetime):
            return d
        raise err(18537, "Could not convert date to string: date component was outside the supported range "
                         "of 0-9999")
    if isinstance(v, Timestamp):
        return _dt.datetime.fromtimestamp(v.time, UTC)
    if isinstance(v, ObjectId):
        return v.generation_time
    raise err(16006, f"can't convert from BSON type {type_name(v)} to Date")


def local(d: _dt.datetime, tz: _dt.tzinfo) -> _dt.datetime:
    """The wall-clock time of instant ``d`` in ``tz`` (aware)."""
    return d.astimezone(tz)


def from_local(wall: _dt.datetime, tz: _dt.tzinfo) -> _dt.datetime:
    """The UTC instant of a naive wall-clock time in ``tz`` (first occurrence on ambiguity)."""
    return wall.replace(tzinfo=tz).astimezone(UTC)


def add_months(y: int, m: int, delta: int) -> tuple[int, int]:
    """(year, month) ``delta`` months after (y, m)."""
    total = y * 12 + (m - 1) + delta
    return total // 12, total % 12 + 1


def clamp_day(y: int, m: int, d: int) -> int:
    return min(d, calendar.monthrange(y, m)[1])


def days_in_year(y: int) -> int:
    return 366 if calendar.isleap(y) else 365


def utc_ms(d: Any) -> int:
    return date_ms(d)


def offset_ms(d: _dt.datetime, tz: _dt.tzinfo) -> int:
    off = d.astimezone(tz).utcoffset() or _dt.timedelta(0)
    return int(off.total_seconds() * 1000)


DAY_NAMES = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "wednesday": 2, "wed": 2, "thursday": 3, "thu": 3,
    "friday": 4, "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}

UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond")
UNIT_MS = {"week": 7 * 86400000, "day": 86400000, "hour": 3600000, "minute": 60000, "second": 1000,
           "millisecond": 1}


def parse_unit(v: Any, op: str) -> str:
    if not isinstance(v, str):
        raise err(5439013 if op != "$dateAdd" else 5166403,
                  f"{op} requires 'unit' to be a string, but got {type_name(v)}")
    if v not in UNITS:
        raise err(ErrorBadValue, f"unknown time unit value: {v}")
    return v


def parse_start_of_week(v: Any, op: str) -> int:
    if not isinstance(v, str):
        raise err(5439015, f"{op} requires 'startOfWeek' to be a string, but got {type_name(v)}")
    day = DAY_NAMES.get(v.lower())
    if day is None:
        raise err(5439016, f"{op} parameter 'startOfWeek' value cannot be recognized as a day of a week: {v}")
    return day


ErrorBadValue = 2
