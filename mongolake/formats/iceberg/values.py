"""Iceberg's single-value binary serialization (column bounds in manifests).

=====================  ==============================================================
Iceberg type           bytes
=====================  ==============================================================
boolean                1 byte, 0 or 1
int, date              4 bytes little-endian (date: days since 1970-01-01)
long, time, timestamp  8 bytes little-endian (time/timestamp: microseconds)
float, double          IEEE 754, 4 / 8 bytes little-endian
string                 UTF-8 bytes
binary, fixed, uuid    the bytes themselves
decimal(p,s)           unscaled value, two's complement big-endian, minimum bytes
=====================  ==============================================================

Decoding tolerates promoted types (an ``int`` bound read for a ``long`` column, a
``float`` bound for a ``double``), as the spec allows. Undecodable bounds decode to
None (the column then simply has no bound: "might match").
"""
from __future__ import annotations

import math
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DAY = date(1970, 1, 1)
_US = timedelta(microseconds=1)


def _micros(v: datetime) -> int:
    if v.tzinfo is None:
        v = v.replace(tzinfo=timezone.utc)
    d = v - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _decimal_scale(itype: str) -> int:
    return int(itype[itype.index(",") + 1:itype.index(")")])


def encode_value(itype: str, v: Any) -> bytes | None:
    """The bound bytes of ``v`` for a column of Iceberg type ``itype`` (None when
    the value cannot be a bound of that type)."""
    try:
        if itype == "boolean":
            return b"\x01" if v else b"\x00" if isinstance(v, bool) else None
        if itype in ("int", "long"):
            if not isinstance(v, int) or isinstance(v, bool):
                return None
            return struct.pack("<i" if itype == "int" else "<q", v)
        if itype in ("float", "double"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                return None
            return struct.pack("<f" if itype == "float" else "<d", float(v))
        if itype == "date":
            if isinstance(v, datetime) or not isinstance(v, date):
                return None
            return struct.pack("<i", (v - _EPOCH_DAY).days)
        if itype in ("timestamp", "timestamptz"):
            return struct.pack("<q", _micros(v)) if isinstance(v, datetime) else None
        if itype == "string":
            return v.encode("utf-8") if isinstance(v, str) else None
        if itype == "binary" or itype.startswith("fixed") or itype == "uuid":
            return bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else None
        if itype.startswith("decimal"):
            if not isinstance(v, Decimal) or not v.is_finite():
                return None
            unscaled = int(v.scaleb(_decimal_scale(itype)))
            n = max(1, (unscaled + (unscaled < 0)).bit_length() // 8 + 1)
            return unscaled.to_bytes(n, "big", signed=True)
    except (struct.error, OverflowError, ValueError, InvalidOperation, UnicodeEncodeError):
        return None
    return None


def decode_value(itype: str, b: bytes) -> Any:
    """The Python value of bound bytes ``b`` (None when undecodable)."""
    try:
        if itype == "boolean":
            return b != b"\x00" if len(b) == 1 else None
        if itype in ("int", "long", "date", "timestamp", "timestamptz"):
            if len(b) == 4:
                n = struct.unpack("<i", b)[0]
            elif len(b) == 8:
                n = struct.unpack("<q", b)[0]
            else:
                return None
            if itype == "date":
                return _EPOCH_DAY + timedelta(days=n)
            if itype in ("timestamp", "timestamptz"):
                return _EPOCH + n * _US
            return n
        if itype in ("float", "double"):
            if len(b) == 4:
                x = struct.unpack("<f", b)[0]
            elif len(b) == 8:
                x = struct.unpack("<d", b)[0]
            else:
                return None
            return None if math.isnan(x) else x
        if itype == "string":
            return b.decode("utf-8")
        if itype == "binary" or itype.startswith("fixed") or itype == "uuid":
            return bytes(b)
        if itype.startswith("decimal"):
            return Decimal(int.from_bytes(b, "big", signed=True)).scaleb(-_decimal_scale(itype))
    except (struct.error, OverflowError, ValueError, UnicodeDecodeError):
        return None
    return None
