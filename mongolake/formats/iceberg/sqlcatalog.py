"""Registering tables in a SQL catalog (SQLite), so other engines open them by name.

The catalog uses the same tables as pyiceberg's ``SqlCatalog`` (and Iceberg Java's
``JdbcCatalog``)::

    iceberg_tables(catalog_name, table_namespace, table_name,
                   metadata_location, previous_metadata_location, iceberg_type)
    iceberg_namespace_properties(catalog_name, namespace, property_key, property_value)

so ``SqlCatalog("mongolake", uri="sqlite:////path/catalog.db").load_table("db.coll")``
finds a MongoLake table. The filesystem layout (``metadata/vN.metadata.json``) stays
the source of truth: after each commit the table's row is moved forward to the new
metadata file with an optimistic ``UPDATE … WHERE metadata_location = <old>``; it is
never moved backwards (a slower writer finishing later leaves the newer location).
"""
from __future__ import annotations

import sqlite3
import threading

from mongolake.formats.base import TableError

from .metadata import find_metadata_version

_DDL = (
    "CREATE TABLE IF NOT EXISTS iceberg_tables ("
    " catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,"
    " table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000),"
    " previous_metadata_location VARCHAR(1000), iceberg_type VARCHAR(5),"
    " PRIMARY KEY (catalog_name, table_namespace, table_name))",
    "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties ("
    " catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL,"
    " property_key VARCHAR(255) NOT NULL, property_value VARCHAR(1000) NOT NULL,"
    " PRIMARY KEY (catalog_name, namespace, property_key))",
)
NAMESPACE_PROPERTY = "mongolake.iceberg.namespace"
NAME_PROPERTY = "mongolake.iceberg.name"


def sqlite_path(uri: str) -> str:
    """The database file of ``sqlite:///relative.db``, ``sqlite:////abs.db`` or a plain path."""
    if uri.startswith("sqlite:///"):
        return uri[len("sqlite:///"):] or ":memory:"
    if "://" in uri:
        raise TableError(f"only SQLite SQL catalogs are supported (sqlite:///path), not {uri!r}")
    return uri


def identifier(root: str, properties: dict[str, str] | None = None) -> tuple[str, str]:
    """(namespace, table name): table properties ``mongolake.iceberg.namespace`` /
    ``mongolake.iceberg.name`` win; else the root's parent folders joined with '.'
    and its last folder (``db/coll`` -> ``("db", "coll")``; a single folder is in
    namespace ``default``)."""
    props = properties or {}
    parts = [p for p in root.split("/") if p]
    name = props.get(NAME_PROPERTY) or (parts[-1] if parts else "table")
    namespace = props.get(NAMESPACE_PROPERTY) or (".".join(parts[:-1]) if len(parts) > 1 else "default")
    return namespace, name


class SqlCatalog:
    """One SQLite catalog database; thread-safe, usable from several processes."""

    def __init__(self, uri: str, name: str = "mongolake"):
        self.uri = uri
        self.name = name
        self.path = sqlite_path(uri)
        self._lock = threading.Lock()
        self._ready = False
        self._has_type = True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if not self._ready:
            for stmt in _DDL:
                conn.execute(stmt)
            cols = {r[1] for r in conn.execute("PRAGMA table_info(iceberg_tables)")}
            self._has_type = "iceberg_type" in cols         # pyiceberg's older ("v0") layout lacks it
            self._ready = True
        return conn

    def register(self, namespace: str, table: str, metadata_location: str, *, force: bool = False) -> bool:
        """Point ``namespace.table`` at ``metadata_location``. Without ``force`` a row
        already at a newer version of the same table folder is left alone. Returns
        whether the row changed."""
        with self._lock:
            conn = self._connect()
            try:
                for _ in range(20):
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        changed = self._register_once(conn, namespace, table, metadata_location, force)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    if changed is None:          # lost the optimistic update: read again
                        conn.execute("ROLLBACK")
                        continue
                    conn.execute("COMMIT")
                    return changed
                raise TableError(f"could not register {namespace}.{table} in {self.uri}")
            finally:
                conn.close()

    def _register_once(self, conn: sqlite3.Connection, namespace: str, table: str, location: str,
                       force: bool) -> bool | None:
        key = (self.name, namespace, table)
        row = conn.execute("SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                           "table_namespace = ? AND table_name = ?", key).fetchone()
        conn.execute("INSERT OR IGNORE INTO iceberg_namespace_properties VALUES (?, ?, 'exists', 'true')",
                     (self.name, namespace))
        if row is None:
            if self._has_type:
                conn.execute("INSERT INTO iceberg_tables VALUES (?, ?, ?, ?, NULL, 'TABLE')", (*key, location))
            else:
                conn.execute("INSERT INTO iceberg_tables VALUES (?, ?, ?, ?, NULL)", (*key, location))
            return True
        old = row[0]
        if old == location:
            return False
        if not force and old and old.rsplit("/", 1)[0] == location.rsplit("/", 1)[0]:
            ov, nv = find_metadata_version(old), find_metadata_version(location)
            if ov is not None and nv is not None and ov >= nv:
                return False
        cur = conn.execute("UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
                           "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND "
                           "metadata_location IS ?", (location, old, *key, old))
        return True if cur.rowcount == 1 else None

    def lookup(self, namespace: str, table: str) -> str | None:
        """The registered metadata location, or None."""
        with self._lock:
            conn = self._connect()
            try:
                row = conn.execute("SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                                   "table_namespace = ? AND table_name = ?", (self.name, namespace, table)).fetchone()
            finally:
                conn.close()
        return row[0] if row else None

    def unregister(self, namespace: str, table: str) -> bool:
        with self._lock:
            conn = self._connect()
            try:
                cur = conn.execute("DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND "
                                   "table_name = ?", (self.name, namespace, table))
                return cur.rowcount > 0
            finally:
                conn.close()
