"""Flush: frozen memtables become Parquet files and one table commit.

Copy-on-write: a data file holding any changed key is rewritten without those
rows; the memtable's live documents go to new files sorted by ``_key``. The
commit records the WAL boundary it covers (``app_version``), which is what
crash recovery compares against.

Merge-on-read, when the table format supports position deletes (Iceberg): a live
file of at least ``POSITION_DELETE_MIN_ROWS`` rows in which few rows changed (its
deleted rows, old and new, stay within ``POSITION_DELETE_MAX_FRACTION`` of it)
is not rewritten: the changed rows' positions are deleted instead, and their new
versions go to the new files like every other document. Compaction later rewrites
files with deletes.
"""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import bson
import pyarrow as pa
import pyarrow.compute as pc

from mongolake.formats.base import DataFile
from mongolake.query import columns
from mongolake.query.bsonorder import CODEC_OPTIONS

from . import softdelete as soft
from .changes import change_table
from .collection import WAL_APP_ID, Collection

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("mongolake.flush")
FIXED_STATS = ("_id", "_key")
CHUNK = 20_000            # documents decoded at once during a flush
SAMPLE = 2_000            # documents a flush chunk infers new columns from
# smaller files are cheaper to rewrite than to track deletes for (the variable lets test runs lower it)
POSITION_DELETE_MIN_ROWS = int(os.environ.get("MONGOLAKE_POSITION_DELETE_MIN_ROWS", "1000"))
POSITION_DELETE_MAX_FRACTION = 0.10     # above this share of deleted rows a file is rewritten


def _sample(docs: list) -> list:
    """Column inference looks at a spread sample: a field seen in no sampled document
    simply gets no column yet (pruning stays correct: no column, no statistics)."""
    if len(docs) <= SAMPLE:
        return docs
    step = len(docs) / SAMPLE
    return [docs[int(i * step)] for i in range(SAMPLE)]


def flush_collection(engine: "Engine", c: Collection, boundary: int) -> dict:
    frozen = list(c.frozen)
    merged = {}
    for mt in frozen:
        merged.update(mt.entries)
    keys = sorted(merged)
    snap = soft.live_view(c.snapshot)
    table = c.table
    adds: list[DataFile] = []
    removes: list[DataFile] = []
    rewritten_rows = 0
    position_deletes: dict[str, list[int]] = {}
    merge_on_read = bool(getattr(table, "supports_position_deletes", False))
    for f in snap.all_files:       # live files and tombstone files alike lose the changed keys
        if merge_on_read and not soft.is_tomb_file(f):
            hit, positions = engine.reader.key_positions(table, f, keys)
            if hit and _delete_by_position(f, len(positions)):
                position_deletes[f.path] = positions
                continue
        else:
            hit = engine.reader.contains_keys(table, f, keys)
        if not hit:
            continue
        t = engine.reader.parquet(table, f).read()
        t = t.filter(pc.invert(pc.is_in(t.column("_key"), value_set=pa.array(list(hit), pa.binary()))))
        removes.append(f)
        if t.num_rows:
            rewritten_rows += t.num_rows
            stats_cols = set(f.null_count) | set(FIXED_STATS)
            adds.append(table.write_data_file(t, stats_columns=sorted(stats_cols), compression=engine.compression,
                                              row_group_size=engine.row_group_rows,
                                              tags={soft.TOMB_TAG: "1"} if soft.is_tomb_file(f) else None))
    live = [merged[k].doc for k in keys if merged[k].doc is not None]
    tombs = [merged[k] for k in keys if merged[k].doc is None and merged[k].tomb is not None]
    specs = dict(c.specs)
    evolved = False
    for raws, deleted_ms in ((live, None), ([e.tomb for e in tombs], [e.deleted_ms for e in tombs])):
        for i in range(0, len(raws), engine.file_rows):
            # documents are decoded a chunk at a time: Arrow columns are far smaller than dicts
            parts, exacts = [], []
            for j in range(i, min(len(raws), i + engine.file_rows), CHUNK):
                chunk = raws[j:j + CHUNK]
                docs = [bson.decode(r, CODEC_OPTIONS) for r in chunk]
                new_specs = columns.infer_columns(_sample(docs), specs)
                if new_specs:
                    new_specs = {p: s for p, s in new_specs.items() if p not in soft.SYSTEM_COLUMNS}
                if new_specs:
                    specs.update(new_specs)
                    evolved = True
                t, exact = columns.build_table(chunk, docs, specs)
                del docs
                if deleted_ms is not None:          # tombstone rows: flag and deletion time
                    t = soft.add_system_columns(t, deleted_ms[j:j + CHUNK])
                parts.append(t)
                exacts.append(set(exact))
            t = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
            exact = set.intersection(*exacts) if exacts else set()
            if deleted_ms is None:
                adds.append(table.write_data_file(t, stats_columns=sorted(exact | set(FIXED_STATS)),
                                                  compression=engine.compression,
                                                  row_group_size=engine.row_group_rows))
            else:
                adds.append(table.write_data_file(t, stats_columns=sorted(exact | set(FIXED_STATS) | {soft.DELETED_AT}),
                                                  compression=engine.compression,
                                                  row_group_size=engine.row_group_rows, tags={soft.TOMB_TAG: "1"}))
            del parts, t
    new_system = bool(tombs) and not snap.has_system_columns
    schema = soft.table_schema(columns.arrow_schema(specs), snap, new_system) if evolved or new_system else None
    cdc = []
    changes = change_table(c, engine.changelog.batches_for_flush(c.flushed_seq, boundary), specs)
    if changes is not None:
        cdc.append(table.write_data_file(changes, subdir="_change_data", stats_columns=[],
                                         compression=engine.compression, row_group_size=engine.row_group_rows))
    t0 = time.time()
    info = {"documents": len(live), "deletes": len(keys) - len(live), "softDeletes": len(tombs),
            "rewrittenRows": rewritten_rows, "walSeq": boundary, "walSeqFrom": c.flushed_seq}
    extra = {}
    if position_deletes:
        info["positionDeletes"] = sum(len(p) for p in position_deletes.values())
        extra["position_deletes"] = position_deletes
    version = table.commit(adds=adds, removes=removes, schema=schema, app_id=WAL_APP_ID, app_version=boundary,
                           operation="WRITE", read_version=snap.version, cdc=cdc, info=info, **extra)
    new_snap = table.snapshot()
    with engine.lock:
        c.snapshot = new_snap
        c.specs = specs
        c.frozen = [m for m in c.frozen if all(m is not x for x in frozen)]
    engine.reader.forget_files(table, {f.path for f in removes})
    log.debug("flushed %s: v%d, %d docs, %d files added, %d removed, commit %.3fs", c.ns, version, len(live),
              len(adds), len(removes), time.time() - t0)
    return {"files_added": len(adds), "files_removed": len(removes), "documents": len(live), "version": version,
            "position_deletes": info.get("positionDeletes", 0)}


def _delete_by_position(f: DataFile, n: int) -> bool:
    """Whether deleting ``n`` more rows of live file ``f`` by position beats rewriting it."""
    return (f.num_records >= POSITION_DELETE_MIN_ROWS
            and len(f.deletes) + n <= POSITION_DELETE_MAX_FRACTION * f.num_records)
