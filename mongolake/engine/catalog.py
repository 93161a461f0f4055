"""Server metadata: databases, collections (options, table format, indexes).

Kept in ``_mongolake/catalog.json`` in the storage, replaced with conditional
writes so two processes can never silently overwrite each other's changes.
A database exists while it has collections (as in MongoDB).
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid as _uuid
from dataclasses import dataclass, field
from typing import Any

from bson import json_util

from mongolake.errors import ErrorCode, MongoError
from mongolake.storage import NotFoundError, StorageBackend, VersionMismatchError

CATALOG_PATH = "_mongolake/catalog.json"
_JSON_OPTS = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True,
                                   tzinfo=json_util.DEFAULT_JSON_OPTIONS.tzinfo)

_DB_FORBIDDEN = set('/\\. "$*<>:|?\x00')
MAX_DB_NAME = 63
MAX_NS = 255


def validate_db_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid database name: '{name}'")
    if len(name) > MAX_DB_NAME:
        raise MongoError(ErrorCode.InvalidNamespace, f"db name is too long: '{name}'")
    bad = _DB_FORBIDDEN.intersection(name)
    if bad or any(ord(c) < 0x20 for c in name):
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid database name: '{name}'")
    return name


def validate_coll_name(db: str, name: Any, *, allow_system: bool = False) -> str:
    if not isinstance(name, str) or not name:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid collection name: '{name}'")
    if "$" in name or "\x00" in name or name.startswith(".") or any(ord(c) < 0x20 for c in name):
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid collection name: {name}")
    if name.startswith("system.") and not allow_system:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid collection name: {name}")
    if len(db) + 1 + len(name) > MAX_NS:
        raise MongoError(ErrorCode.InvalidNamespace, f"Fully qualified namespace is too long: {db}.{name}")
    return name


_SAFE = re.compile(r"[A-Za-z0-9_\-]")


def encode_name(name: str) -> str:
    """A folder name for a database or collection name: safe characters kept,
    everything else (including '.', '/', NUL, non-ASCII) as %XX of its UTF-8 bytes."""
    out = []
    for ch in name:
        if _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


@dataclass
class CollectionMeta:
    db: str
    name: str
    uuid: str
    path: str                          # table root in the storage
    format: str = "delta"
    created_ms: int = 0
    options: dict = field(default_factory=dict)
    indexes: list[dict] = field(default_factory=list)
    search_indexes: list[dict] = field(default_factory=list)   # createSearchIndexes definitions

    @property
    def ns(self) -> str:
        return f"{self.db}.{self.name}"

    def to_json(self) -> dict:
        out = {"uuid": self.uuid, "path": self.path, "format": self.format, "created": self.created_ms,
               "options": json.loads(json_util.dumps(self.options, json_options=_JSON_OPTS)),
               "indexes": json.loads(json_util.dumps(self.indexes, json_options=_JSON_OPTS))}
        if self.search_indexes:
            out["searchIndexes"] = json.loads(json_util.dumps(self.search_indexes, json_options=_JSON_OPTS))
        return out

    @classmethod
    def from_json(cls, db: str, name: str, d: dict) -> "CollectionMeta":
        return cls(db, name, d["uuid"], d["path"], d.get("format", "delta"), d.get("created", 0),
                   json_util.loads(json.dumps(d.get("options", {})), json_options=_JSON_OPTS),
                   json_util.loads(json.dumps(d.get("indexes", [])), json_options=_JSON_OPTS),
                   json_util.loads(json.dumps(d.get("searchIndexes", [])), json_options=_JSON_OPTS))


class Catalog:
    def __init__(self, storage: StorageBackend):
        self.storage = storage
        self._lock = threading.RLock()
        self._version: str | None = None
        self.collections: dict[tuple[str, str], CollectionMeta] = {}
        self.load()

    def load(self) -> None:
        with self._lock:
            try:
                info = self.storage.stat(CATALOG_PATH)
                data = json.loads(self.storage.read(CATALOG_PATH))
                self._version = info.version
            except NotFoundError:
                data = {"databases": {}}
                self._version = None
            cols = {}
            for db, dbd in data.get("databases", {}).items():
                for name, cd in dbd.get("collections", {}).items():
                    cols[(db, name)] = CollectionMeta.from_json(db, name, cd)
            self.collections = cols

    def _save(self) -> None:
        dbs: dict[str, Any] = {}
        for (db, name), meta in sorted(self.collections.items()):
            dbs.setdefault(db, {"collections": {}})["collections"][name] = meta.to_json()
        data = json.dumps({"format": 1, "databases": dbs}, indent=1, sort_keys=True).encode()
        try:
            self._version = self.storage.write_conditional(CATALOG_PATH, data, self._version)
        except VersionMismatchError:
            # someone else changed it (another process): our view is stale
            self.load()
            raise MongoError(ErrorCode.ConflictingOperationInProgress,
                             "the catalog was changed by another process; retry the operation")

    # -- queries -------------------------------------------------------------
    def get(self, db: str, name: str) -> CollectionMeta | None:
        return self.collections.get((db, name))

    def by_uuid(self, uuid: str) -> CollectionMeta | None:
        for meta in self.collections.values():
            if meta.uuid == uuid:
                return meta
        return None

    def databases(self) -> list[str]:
        return sorted({db for db, _ in self.collections})

    def list(self, db: str) -> list[CollectionMeta]:
        return [m for (d, _), m in sorted(self.collections.items()) if d == db]

    # -- changes -------------------------------------------------------------
    def create(self, db: str, name: str, *, fmt: str, options: dict | None = None,
               indexes: list[dict] | None = None) -> CollectionMeta:
        with self._lock:
            if (db, name) in self.collections:
                raise MongoError(ErrorCode.NamespaceExists, f"Collection {db}.{name} already exists.")
            meta = CollectionMeta(db, name, _uuid.uuid4().hex, f"{encode_name(db)}/{encode_name(name)}", fmt,
                                  int(time.time() * 1000), dict(options or {}), list(indexes or []))
            self.collections[(db, name)] = meta
            try:
                self._save()
            except BaseException:
                self.collections.pop((db, name), None)
                raise
            return meta

    def drop(self, db: str, name: str) -> CollectionMeta | None:
        with self._lock:
            meta = self.collections.pop((db, name), None)
            if meta is not None:
                try:
                    self._save()
                except BaseException:
                    self.collections[(db, name)] = meta
                    raise
            return meta

    def update(self, meta: CollectionMeta, *, new_db: str | None = None, new_name: str | None = None) -> None:
        """Persist a changed ``meta`` (options, indexes, path), optionally renaming it."""
        with self._lock:
            old_key = (meta.db, meta.name)
            snapshot = dict(self.collections)
            self.collections.pop(old_key, None)
            if new_db is not None:
                meta.db = new_db
            if new_name is not None:
                meta.name = new_name
            self.collections[(meta.db, meta.name)] = meta
            try:
                self._save()
            except BaseException:
                self.collections = snapshot
                meta.db, meta.name = old_key
                raise
