"""Table metadata JSON (format v2) and the filesystem ("Hadoop") catalog layout.

The catalog is the ``metadata/`` folder itself::

    metadata/v1.metadata.json       created with the table
    metadata/vN.metadata.json       one per commit, written with put-if-absent
    metadata/version-hint.text      the newest N (a hint: readers probe past it)

Whoever creates ``v{N+1}.metadata.json`` first owns version N+1; the loser re-reads
and retries. Every read and write goes through the :class:`StorageBackend`.
"""
from __future__ import annotations

import json
import re
import uuid
from mongolake.formats.base import TableError, TableNotFoundError
from mongolake.storage import NotFoundError, StorageBackend, VersionMismatchError

METADATA_DIR = "metadata"
DATA_DIR = "data"
HINT_FILE = "version-hint.text"
_VERSION_RE = re.compile(r"^v(\d+)\.metadata\.json$")
ENGINE = "mongolake/0.1"
APP_PREFIX = "mongolake.app."          # snapshot summary: app id -> version (the engine's WAL position)


def join(root: str, rel: str) -> str:
    return f"{root}/{rel}" if root else rel


def table_location(storage: StorageBackend, root: str) -> str:
    """The absolute URI of the table root (``file:///…``, ``s3://bucket/…``, ``memory://…``)."""
    local = storage.local_path(root) if root else None
    if local is not None:
        return "file://" + local
    base = storage.url
    if not root:
        return base.rstrip("/") if not base.endswith("://") else base
    return base + ("" if base.endswith("/") else "/") + root


def new_metadata(location: str, schema: dict, last_column_id: int, properties: dict[str, str],
                 now_ms: int) -> dict:
    """Metadata of a new, empty, unpartitioned, unsorted table (no snapshot yet)."""
    return {
        "format-version": 2, "table-uuid": str(uuid.uuid4()), "location": location,
        "last-sequence-number": 0, "last-updated-ms": now_ms, "last-column-id": last_column_id,
        "current-schema-id": schema.get("schema-id", 0), "schemas": [schema],
        "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
        "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": dict(properties), "snapshots": [], "snapshot-log": [], "metadata-log": [], "refs": {},
        "statistics": [], "partition-statistics": [],
    }


def check_supported(md: dict) -> None:
    """Raise :class:`TableError` for metadata this implementation cannot read correctly."""
    fv = md.get("format-version", 1)
    if fv not in (1, 2):
        raise TableError(f"Iceberg format version {fv} is not supported")
    for spec in md.get("partition-specs") or []:
        if spec.get("spec-id") == md.get("default-spec-id", 0) and spec.get("fields"):
            raise TableError("partitioned Iceberg tables are not supported")


def current_snapshot(md: dict) -> dict | None:
    sid = md.get("current-snapshot-id")
    ref = (md.get("refs") or {}).get("main")
    if ref is not None:
        sid = ref.get("snapshot-id")
    if sid is None or sid == -1:
        return None
    for s in reversed(md.get("snapshots") or []):     # usually the last one
        if s["snapshot-id"] == sid:
            return s
    raise TableError(f"Iceberg metadata names current snapshot {sid} but does not contain it")


def sequence_of(snap: dict | None) -> int:
    return 0 if snap is None else int(snap.get("sequence-number", 0))


def snapshots_sorted(md: dict) -> list[dict]:
    """Snapshots by sequence number (then timestamp)."""
    return sorted(md.get("snapshots") or [], key=lambda s: (s.get("sequence-number", 0), s["timestamp-ms"]))


def schema_by_id(md: dict, schema_id: int | None) -> dict:
    if schema_id is None:
        schema_id = md.get("current-schema-id", 0)
    for s in md.get("schemas") or []:
        if s.get("schema-id", 0) == schema_id:
            return s
    if "schema" in md:           # v1 metadata
        return md["schema"]
    raise TableError(f"Iceberg metadata has no schema {schema_id}")


def current_schema(md: dict) -> dict:
    return schema_by_id(md, md.get("current-schema-id"))


def encode(md: dict) -> bytes:
    return json.dumps(md, separators=(",", ":")).encode("utf-8")


class MetadataStore:
    """File-level access to one table's ``metadata/`` folder (the Hadoop catalog)."""

    def __init__(self, storage: StorageBackend, root: str):
        self.storage = storage
        self.root = root
        self.dir = join(root, METADATA_DIR)

    def path(self, version: int) -> str:
        return f"{self.dir}/v{version}.metadata.json"

    @property
    def hint_path(self) -> str:
        return f"{self.dir}/{HINT_FILE}"

    def read(self, version: int) -> dict | None:
        """Metadata version ``version``, or None when it does not exist."""
        try:
            data = self.storage.read(self.path(version))
        except NotFoundError:
            return None
        try:
            md = json.loads(data)
        except ValueError as e:
            raise TableError(f"corrupt Iceberg metadata {self.path(version)!r}: {e}") from e
        if not isinstance(md, dict):
            raise TableError(f"corrupt Iceberg metadata {self.path(version)!r}")
        return md

    def try_write(self, version: int, md: dict) -> bool:
        """Put-if-absent of ``v{version}.metadata.json``; False when another writer won it."""
        try:
            self.storage.write_conditional(self.path(version), encode(md), None)
        except VersionMismatchError:
            return False
        return True

    def read_hint(self) -> int | None:
        try:
            return int(self.storage.read(self.hint_path).decode().strip())
        except (NotFoundError, ValueError, UnicodeDecodeError):
            return None

    def write_hint(self, version: int) -> None:
        """Best effort: a stale hint only costs readers a few extra probes."""
        self.storage.write(self.hint_path, str(version).encode())

    def list_versions(self) -> list[int]:
        out = []
        for info in self.storage.list(self.dir + "/"):
            m = _VERSION_RE.match(info.path[len(self.dir) + 1:])
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def read_after(self, version: int) -> list[tuple[int, dict]]:
        """Every metadata version after ``version``, up to the newest."""
        out = []
        v = version + 1
        while True:
            md = self.read(v)
            if md is None:
                return out
            out.append((v, md))
            v += 1

    def newest_after(self, version: int) -> tuple[int, dict] | None:
        """The newest metadata version after ``version``, or None when there is none.
        Costs one read attempt when nothing changed; far behind, the hint skips ahead."""
        md = self.read(version + 1)
        if md is None:
            return None
        start = version + 1
        hint = self.read_hint()
        if hint is not None and hint > start:
            hinted = self.read(hint)
            if hinted is not None:
                start, md = hint, hinted
        newer = self.read_after(start)
        return newer[-1] if newer else (start, md)

    def latest(self) -> tuple[int, dict]:
        """(N, metadata) of the newest version; :class:`TableNotFoundError` if none."""
        hint = self.read_hint()
        if hint is not None:
            md = self.read(hint)
            if md is not None:
                newer = self.read_after(hint)
                return newer[-1] if newer else (hint, md)
        versions = self.list_versions()
        for v in reversed(versions):
            md = self.read(v)
            if md is not None:
                newer = self.read_after(v)
                return newer[-1] if newer else (v, md)
        raise TableNotFoundError(f"no Iceberg table at {self.root!r}")

    def exists(self) -> bool:
        if self.storage.exists(self.hint_path) or self.storage.exists(self.path(1)):
            return True
        return bool(self.list_versions())


def find_metadata_version(path: str) -> int | None:
    """N of a ``…/vN.metadata.json`` path."""
    m = _VERSION_RE.match(path.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def relativize(location: str, path: str, root_location: str | None = None) -> str:
    """A path inside the table relative to its root (``data/…``), from an absolute URI."""
    for loc in (location, root_location):
        prefix = loc if not loc or loc.endswith("/") else loc + "/"
        if loc and path.startswith(prefix):
            return path[len(prefix):]
    if "://" not in path and not path.startswith("/"):
        return path
    for marker in (f"/{DATA_DIR}/", f"/{METADATA_DIR}/"):
        i = path.rfind(marker)
        if i >= 0:           # the table was moved: keep the part under the table root
            return path[i + 1:]
    raise TableError(f"file {path!r} is outside the table location {location!r}")


def summary_int(snap: dict, key: str, default: int = 0) -> int:
    try:
        return int((snap.get("summary") or {}).get(key, default))
    except (TypeError, ValueError):
        return default


def props_int(md: dict, key: str, default: int) -> int:
    try:
        return int((md.get("properties") or {}).get(key, default))
    except (TypeError, ValueError):
        return default


def props_bool(md: dict, key: str, default: bool) -> bool:
    v = (md.get("properties") or {}).get(key)
    return default if v is None else str(v).lower() == "true"


def app_versions(snap: dict | None) -> dict[str, int]:
    """``app_id -> version`` recorded in a snapshot summary (``mongolake.app.<id>``)."""
    out: dict[str, int] = {}
    for k, v in ((snap or {}).get("summary") or {}).items():
        if k.startswith(APP_PREFIX):
            try:
                out[k[len(APP_PREFIX):]] = int(v)
            except (TypeError, ValueError):
                continue
    return out
