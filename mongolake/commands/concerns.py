"""Read and write concerns: parsed and checked once per command at dispatch.

MongoLake is one node, so every acknowledged write is already "majority"
committed; ``j: true`` (and every acknowledged write while the WAL syncs
``always``, the default) is answered only after the WAL fsync. ``w: 0`` means no
reply (drivers send such writes with the OP_MSG moreToCome flag). A ``w`` that
one node cannot satisfy (a number above 1, an unknown tag) gives the write's
reply a ``writeConcernError`` after the write has been applied, as mongod does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mongolake.errors import ErrorCode, MongoError

READ_LEVELS = ("local", "majority", "linearizable", "available", "snapshot")


@dataclass(frozen=True)
class WriteConcern:
    w: Any = 1
    j: bool | None = None
    wtimeout: int = 0
    spec: dict | None = None

    @property
    def acknowledged(self) -> bool:
        return not (self.w == 0 and not self.j)

    def error(self) -> dict | None:
        """The ``writeConcernError`` a one-node server must report for this concern."""
        w = self.w
        if isinstance(w, str) and w != "majority":
            return {"code": 79, "codeName": "UnknownReplWriteConcern",
                    "errmsg": f"No write concern mode named '{w}' found in replica set configuration",
                    "errInfo": {"writeConcern": dict(self.spec or {})}}
        if isinstance(w, int) and w > 1:
            return {"code": 100, "codeName": "UnsatisfiableWriteConcern",
                    "errmsg": "Not enough data-bearing nodes", "errInfo": {"writeConcern": dict(self.spec or {})}}
        return None


DEFAULT_WRITE_CONCERN = WriteConcern()


def parse_write_concern(spec: Any) -> WriteConcern:
    if spec is None:
        return DEFAULT_WRITE_CONCERN
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'writeConcern' is the wrong type, expected type 'object'")
    w: Any = 1
    j = None
    wtimeout = 0
    for k, v in spec.items():
        if k == "w":
            if isinstance(v, bool):
                raise MongoError(ErrorCode.FailedToParse, "w has to be a number or a string")
            if isinstance(v, (int, float)):
                if v < 0 or v != int(v) or v > 50:
                    raise MongoError(ErrorCode.FailedToParse, f"w has to be a non-negative number and not greater "
                                     f"than 50; found: {v}")
                w = int(v)
            elif isinstance(v, str):
                w = v
            elif isinstance(v, dict):
                w = "custom"
            else:
                raise MongoError(ErrorCode.FailedToParse, "w has to be a number, a string or an object")
        elif k == "j":
            if not isinstance(v, (bool, int, float)):
                raise MongoError(ErrorCode.FailedToParse, "j must be numeric or a boolean value")
            j = bool(v)
        elif k in ("wtimeout", "wtimeoutMS"):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise MongoError(ErrorCode.FailedToParse, "wtimeout must be a number")
            wtimeout = int(v)
        elif k in ("fsync", "getLastError", "provenance", "wOpTime", "wElectionId", "getlasterror"):
            if k == "fsync" and v:
                j = True
        else:
            raise MongoError(ErrorCode.FailedToParse, f"unrecognized write concern field: {k}")
    return WriteConcern(w, j, wtimeout, spec)


def check_read_concern(spec: Any) -> None:
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'readConcern' is the wrong type, expected type 'object'")
    for k, v in spec.items():
        if k == "level":
            if not isinstance(v, str):
                raise MongoError(ErrorCode.TypeMismatch, "BSON field 'ReadConcern.level' is the wrong type, "
                                 "expected type 'string'")
            if v not in READ_LEVELS:
                raise MongoError(ErrorCode.BadValue, f"Enumeration value '{v}' for field 'ReadConcern.level' is "
                                 "not a valid value.")
        elif k in ("afterClusterTime", "atClusterTime", "afterOpTime", "provenance", "allowTransactionTableSnapshot",
                   "waitLastStableRecoveryTimestamp"):
            continue
        else:
            raise MongoError(ErrorCode.UnrecognizedCommandField, f"BSON field 'ReadConcern.{k}' is an unknown field.")
