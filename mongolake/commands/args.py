"""Argument checking shared by command handlers.

MongoDB parses commands strictly (IDL): an unknown top-level field is
UnrecognizedCommandField (40415), a field of the wrong type is TypeMismatch (14).
``GENERIC_ARGS`` are the fields any command may carry (sessions, concerns, API
version, gossip of cluster time, ...).
"""
from __future__ import annotations

from typing import Any, Iterable

from mongolake.errors import ErrorCode, MongoError

GENERIC_ARGS = frozenset({
    "$db", "lsid", "txnNumber", "$clusterTime", "$readPreference", "apiVersion", "apiStrict",
    "apiDeprecationErrors", "comment", "maxTimeMS", "readConcern", "writeConcern", "autocommit",
    "startTransaction", "$audit", "$client", "mayBypassWriteBlocking", "stmtId", "stmtIds",
    "clientOperationKey", "databaseVersion", "shardVersion", "$queryOptions", "rawData",
})

_BSON_TYPE = {bool: "bool", int: "int", float: "double", str: "string", dict: "object", list: "array",
              bytes: "binData", type(None): "null"}


def type_name(v: Any) -> str:
    from bson.int64 import Int64
    if isinstance(v, Int64):
        return "long"
    for t, name in _BSON_TYPE.items():
        if type(v) is t:
            return name
    return type(v).__name__


def check_fields(cmd_name: str, body: dict, allowed: Iterable[str]) -> None:
    """Refuse top-level fields that are neither the command's own nor generic."""
    allowed = set(allowed)
    for k in body:
        if k == cmd_name or k in allowed or k in GENERIC_ARGS or k.startswith("$"):
            continue
        raise MongoError(ErrorCode.UnrecognizedCommandField, f"BSON field '{cmd_name}.{k}' is an unknown field.")


def check_sub_fields(where: str, doc: dict, allowed: Iterable[str]) -> None:
    """Refuse unknown fields of a sub-document (a write statement, an option object)."""
    allowed = set(allowed)
    for k in doc:
        if k not in allowed:
            raise MongoError(ErrorCode.UnrecognizedCommandField, f"BSON field '{where}.{k}' is an unknown field.")


def int_arg(cmd: str, body: dict, name: str, default: int | None = 0, *, minimum: int = 0) -> int | None:
    """An integral number (int, long or a whole double), at least ``minimum``."""
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{cmd}.{name}' is the wrong type '{type_name(v)}', expected types "
                         "'[long, int, decimal, double]'")
    if v != v or v in (float("inf"), float("-inf")) or v != int(v):
        raise MongoError(ErrorCode.BadValue, f"BSON field '{cmd}.{name}' value must be an integer, got {v}")
    v = int(v)
    if v < minimum:
        raise MongoError(ErrorCode.BadValue,
                         f"BSON field '{name}' value must be >= {minimum}, actual value '{v}'")
    return v


def doc_arg(cmd: str, body: dict, name: str) -> dict | None:
    """An optional object argument (None when absent or null)."""
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{cmd}.{name}' is the wrong type '{type_name(v)}', expected type 'object'")
    return v


def bool_arg(cmd: str, body: dict, name: str, default: bool = False) -> bool:
    """A boolean option; numbers are accepted as MongoDB does (non-zero = true)."""
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return bool(v)
    raise MongoError(ErrorCode.TypeMismatch,
                     f"BSON field '{cmd}.{name}' is the wrong type '{type_name(v)}', expected types "
                     "'[bool, long, int, decimal, double]'")


def str_arg(cmd: str, body: dict, name: str) -> str:
    v = body.get(name)
    if not isinstance(v, str):
        if v is None:
            raise MongoError(ErrorCode.FailedToParse,
                             f"BSON field '{cmd}.{name}' is missing but a required field")
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{cmd}.{name}' is the wrong type '{type_name(v)}', expected type 'string'")
    return v
