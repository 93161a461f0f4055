"""Table state reconstructed by log replay: protocol, metadata, live files,
tombstones, application transactions — and its conversion to a :class:`Snapshot`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote, unquote

import pyarrow as pa

from mongolake.formats.base import DataFile, Snapshot, TableError

from .log import Action
from .schema import schema_from_json
from .stats import decode_stats

# reader-side table features we can honour (they change nothing for us)
READER_FEATURES = {"timestampNtz", "vacuumProtocolCheck"}
# writer-side features we can honour as long as the table does not actually use them
WRITER_FEATURES = {"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns",
                   "timestampNtz", "vacuumProtocolCheck"}


def decode_path(p: str) -> str:
    if "://" in p or p.startswith("/"):
        raise TableError(f"absolute data file paths are not supported: {p!r}")
    return unquote(p)


def encode_path(p: str) -> str:
    return quote(p, safe="/")


@dataclass
class LogState:
    """Mutable replay state; copy() before applying commits to a state that was published."""
    version: int = -1
    timestamp_ms: int | None = None
    protocol: Action | None = None
    metadata: Action | None = None
    files: dict[str, Action] = field(default_factory=dict)        # path -> add action
    tombstones: dict[str, Action] = field(default_factory=dict)   # path -> remove action
    txns: dict[str, Action] = field(default_factory=dict)         # appId -> txn action
    _datafiles: dict[str, DataFile] = field(default_factory=dict)
    _schema: pa.Schema | None = None
    _snapshot: Snapshot | None = None

    def copy(self) -> "LogState":
        return LogState(self.version, self.timestamp_ms, self.protocol, self.metadata, dict(self.files),
                        dict(self.tombstones), dict(self.txns), dict(self._datafiles), self._schema, None)

    # -- replay ----------------------------------------------------------------------
    def apply(self, version: int, actions: list[Action]) -> None:
        """Apply the actions of commit (or checkpoint) ``version``."""
        ts = None
        for a in actions:
            if "add" in a and a["add"]:
                add = a["add"]
                p = decode_path(add["path"])
                self.files[p] = add
                self.tombstones.pop(p, None)
                self._datafiles.pop(p, None)
            elif "remove" in a and a["remove"]:
                rm = a["remove"]
                p = decode_path(rm["path"])
                self.files.pop(p, None)
                self._datafiles.pop(p, None)
                self.tombstones[p] = rm
            elif "metaData" in a and a["metaData"]:
                if self.metadata is None or a["metaData"].get("schemaString") != self.metadata.get("schemaString"):
                    self._schema = None
                self.metadata = a["metaData"]
            elif "protocol" in a and a["protocol"]:
                self.protocol = a["protocol"]
            elif "txn" in a and a["txn"]:
                self.txns[a["txn"]["appId"]] = a["txn"]
            elif "commitInfo" in a and a["commitInfo"]:
                ci = a["commitInfo"]
                t = ci.get("inCommitTimestamp", ci.get("timestamp"))
                if isinstance(t, int):
                    ts = t
        self.version = version
        self.timestamp_ms = ts
        self._snapshot = None

    def expire_tombstones(self, older_than_ms: int) -> None:
        self.tombstones = {p: r for p, r in self.tombstones.items()
                           if (r.get("deletionTimestamp") or 0) >= older_than_ms}

    # -- derived ------------------------------------------------------------------------
    @property
    def configuration(self) -> dict[str, str]:
        return dict((self.metadata or {}).get("configuration") or {})

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            if self.metadata is None:
                raise TableError(f"Delta log has no metaData action at version {self.version}")
            self._schema = schema_from_json(self.metadata["schemaString"])
        return self._schema

    def check_readable(self) -> None:
        """Raise :class:`TableError` if reading this table needs features we lack."""
        if self.protocol is None or self.metadata is None:
            raise TableError(f"Delta log is missing protocol or metaData at version {self.version}")
        rv = self.protocol.get("minReaderVersion", 1)
        if rv > 3:
            raise TableError(f"Delta reader version {rv} is not supported")
        if rv == 2 or (rv == 3 and "columnMapping" in (self.protocol.get("readerFeatures") or [])):
            if self.configuration.get("delta.columnMapping.mode", "none") != "none":
                raise TableError("Delta column mapping is not supported")
        if rv == 3:
            missing = set(self.protocol.get("readerFeatures") or []) - READER_FEATURES - {"columnMapping"}
            if missing:
                raise TableError(f"unsupported Delta reader features: {sorted(missing)}")
        if self.metadata.get("partitionColumns"):
            raise TableError("partitioned Delta tables are not supported")

    def check_writable(self) -> None:
        """Raise :class:`TableError` if writing needs features we cannot honour."""
        self.check_readable()
        wv = self.protocol.get("minWriterVersion", 2)
        if wv in (5, 6) or wv > 7:
            raise TableError(f"Delta writer version {wv} is not supported")
        if wv == 7:
            missing = set(self.protocol.get("writerFeatures") or []) - WRITER_FEATURES
            if missing:
                raise TableError(f"unsupported Delta writer features: {sorted(missing)}")
        conf = self.configuration
        if any(k.startswith("delta.constraints.") for k in conf):
            raise TableError("Delta CHECK constraints are not supported for writing")
        for meta in _fields_meta(self.metadata["schemaString"]):
            if "delta.invariants" in meta or "delta.generationExpression" in meta:
                raise TableError("Delta column invariants/generated columns are not supported for writing")

    def datafile(self, path: str, footer_rows: Callable[[str], int]) -> DataFile:
        df = self._datafiles.get(path)
        if df is None:
            add = self.files[path]
            if add.get("deletionVector"):
                raise TableError(f"Delta deletion vectors are not supported ({path})")
            num, mins, maxs, nulls, tags = decode_stats(add.get("stats"), add.get("tags"), self.schema)
            if num is None:
                num = footer_rows(path)
            df = DataFile(path=path, size=int(add.get("size") or 0), num_records=num, min_values=mins,
                          max_values=maxs, null_count=nulls, modification_time=int(add.get("modificationTime") or 0),
                          tags=tags)
            self._datafiles[path] = df
        return df

    def to_snapshot(self, footer_rows: Callable[[str], int]) -> Snapshot:
        if self._snapshot is None:
            self.check_readable()
            files = tuple(self.datafile(p, footer_rows) for p in self.files)
            self._snapshot = Snapshot(
                version=self.version, timestamp_ms=int(self.timestamp_ms or 0), schema=self.schema, files=files,
                properties=self.configuration,
                app_versions={k: int(t["version"]) for k, t in self.txns.items()})
        return self._snapshot


def _fields_meta(schema_string: str) -> list[dict[str, Any]]:
    """Every field's metadata dict, recursively."""
    out: list[dict[str, Any]] = []

    def walk(t: Any) -> None:
        if isinstance(t, dict):
            if t.get("type") == "struct":
                for f in t.get("fields", []):
                    out.append(f.get("metadata") or {})
                    walk(f.get("type"))
            elif t.get("type") == "array":
                walk(t.get("elementType"))
            elif t.get("type") == "map":
                walk(t.get("keyType"))
                walk(t.get("valueType"))

    walk(json.loads(schema_string))
    return out
