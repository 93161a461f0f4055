"""Classic single-file Parquet checkpoints (``%020d.checkpoint.parquet``) and
``_last_checkpoint``; reading also accepts legacy multi-part checkpoints and the
``stats_parsed`` column other writers may produce.

The checkpoint has one row per action; each row sets exactly one of the columns
``protocol``, ``metaData``, ``txn``, ``add``, ``remove`` (the layout Spark and
delta-rs read; ``add.stats`` is the JSON string).
"""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .log import Action, DeltaLog
from .state import LogState, encode_path

_STR_MAP = pa.map_(pa.string(), pa.string())
_DV = pa.struct([pa.field("storageType", pa.string(), False), pa.field("pathOrInlineDv", pa.string(), False),
                 pa.field("offset", pa.int32()), pa.field("sizeInBytes", pa.int32(), False),
                 pa.field("cardinality", pa.int64(), False)])

CHECKPOINT_SCHEMA = pa.schema([
    pa.field("txn", pa.struct([pa.field("appId", pa.string(), False), pa.field("version", pa.int64(), False),
                               pa.field("lastUpdated", pa.int64())])),
    pa.field("add", pa.struct([
        pa.field("path", pa.string(), False), pa.field("partitionValues", _STR_MAP, False),
        pa.field("size", pa.int64(), False), pa.field("modificationTime", pa.int64(), False),
        pa.field("dataChange", pa.bool_(), False), pa.field("stats", pa.string()), pa.field("tags", _STR_MAP),
        pa.field("deletionVector", _DV), pa.field("baseRowId", pa.int64()),
        pa.field("defaultRowCommitVersion", pa.int64()), pa.field("clusteringProvider", pa.string())])),
    pa.field("remove", pa.struct([
        pa.field("path", pa.string(), False), pa.field("deletionTimestamp", pa.int64()),
        pa.field("dataChange", pa.bool_(), False), pa.field("extendedFileMetadata", pa.bool_()),
        pa.field("partitionValues", _STR_MAP), pa.field("size", pa.int64()), pa.field("stats", pa.string()),
        pa.field("tags", _STR_MAP), pa.field("deletionVector", _DV), pa.field("baseRowId", pa.int64()),
        pa.field("defaultRowCommitVersion", pa.int64())])),
    pa.field("metaData", pa.struct([
        pa.field("id", pa.string(), False), pa.field("name", pa.string()), pa.field("description", pa.string()),
        pa.field("format", pa.struct([pa.field("provider", pa.string(), False),
                                      pa.field("options", _STR_MAP, False)]), False),
        pa.field("schemaString", pa.string(), False),
        pa.field("partitionColumns", pa.list_(pa.field("element", pa.string(), False)), False),
        pa.field("createdTime", pa.int64()), pa.field("configuration", _STR_MAP, False)])),
    pa.field("protocol", pa.struct([
        pa.field("minReaderVersion", pa.int32(), False), pa.field("minWriterVersion", pa.int32(), False),
        pa.field("readerFeatures", pa.list_(pa.field("element", pa.string(), False))),
        pa.field("writerFeatures", pa.list_(pa.field("element", pa.string(), False)))])),
])

_MAP_KEYS = {"partitionValues", "tags", "options", "configuration"}


def _items(d: dict | None) -> list[tuple[str, str]] | None:
    return None if d is None else [(str(k), None if v is None else str(v)) for k, v in d.items()]


def _add_row(add: Action) -> dict[str, Any]:
    return {"add": {
        "path": add["path"], "partitionValues": _items(add.get("partitionValues") or {}),
        "size": int(add.get("size") or 0), "modificationTime": int(add.get("modificationTime") or 0),
        "dataChange": bool(add.get("dataChange", True)), "stats": _stats_text(add.get("stats")),
        "tags": _items(add.get("tags")), "deletionVector": add.get("deletionVector"),
        "baseRowId": add.get("baseRowId"), "defaultRowCommitVersion": add.get("defaultRowCommitVersion"),
        "clusteringProvider": add.get("clusteringProvider")}}


def _remove_row(rm: Action) -> dict[str, Any]:
    return {"remove": {
        "path": rm["path"], "deletionTimestamp": rm.get("deletionTimestamp"),
        "dataChange": bool(rm.get("dataChange", True)), "extendedFileMetadata": rm.get("extendedFileMetadata"),
        "partitionValues": _items(rm.get("partitionValues")), "size": rm.get("size"),
        "stats": _stats_text(rm.get("stats")), "tags": _items(rm.get("tags")),
        "deletionVector": rm.get("deletionVector"), "baseRowId": rm.get("baseRowId"),
        "defaultRowCommitVersion": rm.get("defaultRowCommitVersion")}}


def _stats_text(stats: Any) -> str | None:
    if stats is None or isinstance(stats, str):
        return stats
    return json.dumps(stats, separators=(",", ":"), default=_json_default)


def _metadata_row(md: Action) -> dict[str, Any]:
    fmt = md.get("format") or {"provider": "parquet", "options": {}}
    return {"metaData": {
        "id": md["id"], "name": md.get("name"), "description": md.get("description"),
        "format": {"provider": fmt.get("provider", "parquet"), "options": _items(fmt.get("options") or {})},
        "schemaString": md["schemaString"], "partitionColumns": list(md.get("partitionColumns") or []),
        "createdTime": md.get("createdTime"), "configuration": _items(md.get("configuration") or {})}}


def checkpoint_rows(state: LogState) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"protocol": dict(state.protocol)}, _metadata_row(state.metadata)]
    rows += [{"txn": {"appId": t["appId"], "version": int(t["version"]), "lastUpdated": t.get("lastUpdated")}}
             for t in state.txns.values()]
    rows += [_add_row(dict(a, path=encode_path(p))) for p, a in state.files.items()]
    rows += [_remove_row(dict(r, path=encode_path(p))) for p, r in state.tombstones.items()]
    return rows


def write_checkpoint(log: DeltaLog, state: LogState, *, tombstones_after_ms: int) -> dict[str, Any]:
    """Write the checkpoint of ``state`` (tombstones older than ``tombstones_after_ms``
    left out) and advance ``_last_checkpoint``. Returns the ``_last_checkpoint`` record."""
    st = state.copy()
    st.expire_tombstones(tombstones_after_ms)
    rows = checkpoint_rows(st)
    table = pa.Table.from_pylist(rows, schema=CHECKPOINT_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    data = sink.getvalue().to_pybytes()
    log.storage.write(log.checkpoint_path(state.version), data)
    info = {"version": state.version, "size": len(rows), "sizeInBytes": len(data), "numOfAddFiles": len(st.files)}
    log.write_last_checkpoint(info)
    return info


# -- reading ----------------------------------------------------------------------

def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    raise TypeError(type(v))


def _fix(value: Any, key: str | None = None) -> Any:
    """Arrow's ``to_pylist`` renders maps as lists of pairs: turn them back into dicts."""
    if isinstance(value, dict):
        return {k: _fix(v, k) for k, v in value.items()}
    if key in _MAP_KEYS and isinstance(value, list):
        return {k: v for k, v in value}
    return value


def read_checkpoint(log: DeltaLog, paths: list[str]) -> list[Action]:
    """The actions of a checkpoint (all its parts)."""
    actions: list[Action] = []
    for path in paths:
        table = pq.read_table(pa.BufferReader(log.storage.read(path)))
        names = set(table.column_names)
        for col in ("protocol", "metaData", "txn", "remove", "add"):
            if col not in names:
                continue
            arr = table.column(col)
            for row in arr.filter(pc.is_valid(arr)).to_pylist():
                row = _fix(row)
                if col == "add" and row.get("stats") is None and row.get("stats_parsed") is not None:
                    row["stats"] = _stats_text(row["stats_parsed"])
                row.pop("stats_parsed", None)
                row.pop("partitionValues_parsed", None)
                actions.append({col: row})
    return actions
