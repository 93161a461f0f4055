"""Optimistic commits: build the actions of one version, put-if-absent the commit
file, and on a lost race re-read the winners, check for conflicts, and retry.

Conflicts (→ :class:`CommitConflictError`):

* a concurrent commit removed a file this commit removes (or it is gone already);
* a concurrent commit recorded a ``txn`` for the same ``app_id``;
* a concurrent commit replaced the table (new metadata id) or evolved the schema in a
  way that cannot be merged with this commit's schema change.

Everything else (concurrent appends, property changes, compatible schema additions)
is rebased: the commit is rebuilt on top of the new version and retried, at most
``MAX_ATTEMPTS`` times.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pyarrow as pa

from mongolake.formats.base import CommitConflictError, DataFile, TableError

from .log import Action, DeltaLog
from .schema import SchemaEvolutionError, arrow_to_delta, check_evolution, leaf_index, merge, schema_from_json
from .state import LogState, decode_path, encode_path
from .stats import encode_stats

ENGINE_INFO = "mongolake/0.1"
MAX_ATTEMPTS = 100
CDF_KEY = "delta.enableChangeDataFeed"
# operations that rearrange data without changing it (readers of changes skip them)
NO_DATA_CHANGE = {"OPTIMIZE", "COMPACT", "COMPACTION"}


@dataclass
class Intent:
    """What the caller wants to commit, independent of the version it lands at."""
    adds: Sequence[DataFile] = ()
    removes: Sequence[DataFile] = ()
    cdc: Sequence[DataFile] = ()
    schema: dict | None = None                      # Delta schema dict
    properties: dict[str, str] = field(default_factory=dict)
    app_id: str | None = None
    app_version: int | None = None
    operation: str = "WRITE"
    info: dict[str, Any] = field(default_factory=dict)
    read_version: int | None = None
    schema_changed_concurrently: bool = False


def check_conflicts(intent: Intent, base: LogState | None, winners: list[tuple[int, list[Action]]]) -> None:
    """Raise :class:`CommitConflictError` if a winning commit invalidates ``intent``.
    ``base`` is the state the winners apply to (None when unknown)."""
    ours = {f.path for f in intent.removes}
    for version, actions in winners:
        for a in actions:
            if a.get("remove") and ours:
                p = decode_path(a["remove"]["path"])
                if p in ours:
                    raise CommitConflictError(f"file {p!r} was removed by concurrent commit {version}")
            elif a.get("txn") and intent.app_id is not None and a["txn"].get("appId") == intent.app_id:
                raise CommitConflictError(f"concurrent commit {version} recorded a transaction for app "
                                          f"{intent.app_id!r}")
            elif a.get("metaData"):
                md = a["metaData"]
                known = base.metadata if base is not None else None
                if known is not None and md.get("id") != known.get("id"):
                    raise CommitConflictError(f"the table was replaced by concurrent commit {version}")
                if known is None or md.get("schemaString") != known.get("schemaString"):
                    intent.schema_changed_concurrently = True


def _new_schema_string(intent: Intent, base: LogState) -> str | None:
    if intent.schema is None:
        return None
    current = json.loads(base.metadata["schemaString"])
    if intent.schema_changed_concurrently:
        try:
            new = merge(intent.schema, current)
            check_evolution(current, new)
        except SchemaEvolutionError as e:
            raise CommitConflictError(f"a concurrent commit changed the schema: {e}") from e
    else:
        check_evolution(current, intent.schema)
        new = intent.schema
    text = json.dumps(new, separators=(",", ":"))
    return None if new == current else text


def _protocol_for(base: LogState, conf: dict[str, str]) -> Action | None:
    """A protocol upgrade when enabling change data feed needs one."""
    if conf.get(CDF_KEY, "false").lower() != "true":
        return None
    proto = dict(base.protocol)
    wv = proto.get("minWriterVersion", 2)
    if wv == 7:
        feats = list(proto.get("writerFeatures") or [])
        if "changeDataFeed" in feats:
            return None
        proto["writerFeatures"] = feats + ["changeDataFeed"]
        return proto
    if wv >= 4:
        return None
    proto["minWriterVersion"] = 4
    return proto


def build_actions(intent: Intent, base: LogState, ts: int) -> list[Action]:
    """The actions of the next version on top of ``base``; validates removes and schema."""
    base.check_writable()
    conf = base.configuration
    if intent.removes and conf.get("delta.appendOnly", "false").lower() == "true":
        raise TableError("the table is append-only (delta.appendOnly=true): files cannot be removed")
    for f in intent.removes:
        if f.path not in base.files:
            raise CommitConflictError(f"file {f.path!r} is no longer part of the table (version {base.version})")
    new_conf = {**conf, **{str(k): str(v) for k, v in intent.properties.items()}}
    schema_string = _new_schema_string(intent, base)
    schema = base.schema if schema_string is None else _schema_of(schema_string)
    data_change = intent.operation.upper() not in NO_DATA_CHANGE

    # Spark reads operationParameters as a string map: non-strings are JSON-encoded
    params = {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in intent.info.items()}
    commit_info: dict[str, Any] = {"timestamp": ts, "operation": intent.operation, "operationParameters": params}
    if intent.read_version is not None:
        commit_info["readVersion"] = intent.read_version
    commit_info.update(isolationLevel="Serializable", isBlindAppend=not intent.removes,
                       engineInfo=ENGINE_INFO, clientVersion=ENGINE_INFO)
    actions: list[Action] = [{"commitInfo": commit_info}]
    proto = _protocol_for(base, new_conf)
    if proto is not None:
        actions.append({"protocol": proto})
    if schema_string is not None or new_conf != conf:
        md = dict(base.metadata, configuration=new_conf)
        if schema_string is not None:
            md["schemaString"] = schema_string
        actions.append({"metaData": md})
    if intent.app_id is not None and intent.app_version is not None:
        actions.append({"txn": {"appId": intent.app_id, "version": int(intent.app_version), "lastUpdated": ts}})
    for f in intent.removes:
        old = base.files[f.path]
        # the add's path exactly as it was written (its URI encoding may differ from ours)
        rm = {"path": old["path"], "deletionTimestamp": ts, "dataChange": data_change,
              "extendedFileMetadata": True, "partitionValues": {}, "size": int(old.get("size") or f.size)}
        if old.get("tags"):
            rm["tags"] = old["tags"]
        actions.append({"remove": rm})
    for f in intent.adds:
        actions.append({"add": add_action(f, schema, data_change, ts)})
    for f in intent.cdc:
        cdc: dict[str, Any] = {"path": encode_path(f.path), "partitionValues": {}, "size": int(f.size),
                               "dataChange": False}
        if f.tags:
            cdc["tags"] = dict(f.tags)
        actions.append({"cdc": cdc})
    return actions


def add_action(f: DataFile, schema: pa.Schema, data_change: bool, ts: int) -> Action:
    known = leaf_index(schema)

    def keep(d: dict) -> dict:
        return {k: v for k, v in d.items() if k in known}

    stats, bin_tags = encode_stats(f.num_records, keep(f.min_values), keep(f.max_values), keep(f.null_count), schema)
    add: dict[str, Any] = {"path": encode_path(f.path), "partitionValues": {}, "size": int(f.size),
                           "modificationTime": int(f.modification_time or ts), "dataChange": data_change,
                           "stats": stats}
    tags = {**f.tags, **bin_tags}
    if tags:
        add["tags"] = tags
    return add


_SCHEMA_CACHE: dict[str, pa.Schema] = {}


def _schema_of(text: str) -> pa.Schema:
    s = _SCHEMA_CACHE.get(text)
    if s is None:
        s = _SCHEMA_CACHE[text] = schema_from_json(text)
        if len(_SCHEMA_CACHE) > 64:
            _SCHEMA_CACHE.pop(next(iter(_SCHEMA_CACHE)))
    return s


def read_winners(log: DeltaLog, after: int) -> list[tuple[int, list[Action]]]:
    """Commits after version ``after``, up to the newest one."""
    out = []
    v = after + 1
    while True:
        actions = log.read_commit(v)
        if actions is None:
            return out
        out.append((v, actions))
        v += 1


def run_commit(log: DeltaLog, intent: Intent, latest: LogState, clock=time.time
               ) -> tuple[LogState, list[tuple[int, list[Action]]], int]:
    """Commit ``intent`` on top of ``latest`` (the caller's newest state).

    Returns the new state, every commit observed (winners and ours) so the caller
    can update its caches, and how many races were lost. ``latest`` is never mutated.
    """
    base = latest
    seen: list[tuple[int, list[Action]]] = []
    if intent.read_version is not None:
        if intent.read_version > base.version:
            raise TableError(f"read_version {intent.read_version} is newer than the table ({base.version})")
        if intent.read_version < base.version:
            winners = [(v, log.read_commit(v)) for v in range(intent.read_version + 1, base.version + 1)]
            if any(a is None for _, a in winners):
                raise CommitConflictError(f"commits after read_version {intent.read_version} are no longer "
                                          f"available to check for conflicts")
            check_conflicts(intent, None, winners)
    if intent.schema is not None and not intent.schema_changed_concurrently:
        # a type change / drop against the current schema is the caller's error, not a race
        check_evolution(json.loads(base.metadata["schemaString"]), intent.schema)
    for attempt in range(MAX_ATTEMPTS):
        ts = max(int(clock() * 1000), (base.timestamp_ms or 0) + 1)
        actions = build_actions(intent, base, ts)
        version = base.version + 1
        if log.try_write_commit(version, actions):
            new = base.copy()
            new.apply(version, actions)
            seen.append((version, actions))
            return new, seen, attempt
        winners = read_winners(log, base.version)
        check_conflicts(intent, base, winners)
        new = base.copy()
        for v, acts in winners:
            new.apply(v, acts)
        base = new
        seen.extend(winners)
        time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
    raise CommitConflictError(f"gave up committing after {MAX_ATTEMPTS} lost races")


def intent_from(adds, removes, cdc, schema: pa.Schema | None, properties, app_id, app_version, operation,
                info, read_version) -> Intent:
    return Intent(adds=tuple(adds), removes=tuple(removes), cdc=tuple(cdc),
                  schema=None if schema is None else arrow_to_delta(schema),
                  properties=dict(properties or {}), app_id=app_id, app_version=app_version,
                  operation=operation, info=dict(info or {}), read_version=read_version)
