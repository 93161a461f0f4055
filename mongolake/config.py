"""Every configuration option of MongoLake, defined once.

The table :data:`OPTIONS` generates, so they cannot drift apart:

* the command-line flags (``--memtable-size``),
* the environment variables (``MONGOLAKE_MEMTABLE_SIZE``),
* the keys of the optional TOML config file (``memtable_size = 64``, or grouped:
  ``[s3] endpoint = "..."`` is the option ``s3_endpoint``),
* the reference in ``docs/configuration.md`` (:func:`render_markdown`).

One precedence rule: **flag > environment > config file > default**. Values are
converted and validated when they are read; :func:`load` raises
:class:`ConfigError` (a clear message naming the option and where its value came
from) and :func:`check_environment` checks paths and S3 before a command starts.
"""
from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlparse

ENV_PREFIX = "MONGOLAKE_"
CONFIG_ENV = "MONGOLAKE_CONFIG"
DOC_BEGIN = "<!-- BEGIN GENERATED OPTIONS (python -m mongolake.config --update-docs docs/configuration.md) -->"
DOC_END = "<!-- END GENERATED OPTIONS -->"


class ConfigError(Exception):
    """An invalid configuration; ``str(e)`` is meant for the operator."""


@dataclass(frozen=True)
class Option:
    name: str                      # attribute, TOML key; flag and env variable derive from it
    kind: str                      # str | int | float | bool | choice
    default: Any
    help: str
    group: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    admin: bool = False            # also accepted by the admin commands (inspect, compact, ...)
    secret: bool = False           # never logged or reported by getCmdLineOpts
    default_doc: str | None = None  # how the docs describe a computed default

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


GROUPS = {
    "server": "Server", "storage": "Storage and tables", "s3": "S3, MinIO, Cloudflare R2",
    "log": "Logging", "metrics": "Metrics", "compact": "Background compaction",
    "security": "Security and limits (see [security](security.md))",
}

O = Option
OPTIONS: tuple[Option, ...] = (
    # -- server --
    O("host", "str", "127.0.0.1", "address to listen on (`0.0.0.0` for every interface)", "server"),
    O("port", "int", 27017, "TCP port (`0` = any free port)", "server", minimum=0, maximum=65535),
    O("replset", "str", "rs0", "replica-set name reported by `hello`", "server"),
    O("standalone", "bool", False, "report a standalone server instead of a replica-set primary", "server"),
    O("advertise", "str", None, "address reported in `hello`'s `hosts`/`me`/`primary`", "server",
      default_doc="`host:port`"),
    O("max_connections", "int", 10000, "connections accepted at once", "server", minimum=1),
    O("shutdown_timeout", "float", 10.0, "seconds SIGTERM/SIGINT waits for requests in flight before closing "
      "connections", "server", minimum=0),
    O("slow_ms", "int", 100, "operations slower than this many milliseconds are logged (MongoDB's `slowms`; "
      "the `profile` command changes it at run time)", "server", minimum=0),
    O("enable_test_commands", "bool", False, "enable the test commands `configureFailPoint` and "
      "`waitForFailPoint` (fail points that fail, delay or cut commands to exercise drivers' error handling; "
      "never in production); refused with `auth` unless `allow_test_commands_with_auth`", "server"),
    O("allow_test_commands_with_auth", "bool", False, "allow `enable_test_commands` together with `auth` "
      "(any client could then configure fail points)", "server"),
    # -- security and limits --
    O("auth", "bool", False, "require authentication (SCRAM-SHA-256/SHA-1) and enforce users' roles on every "
      "command", "security"),
    O("root_username", "str", None, "create this user with the `root` role at start if it does not exist",
      "security"),
    O("root_password", "str", None, "password of `root_username` (used once, to derive its salted "
      "credentials; never stored)", "security", secret=True),
    O("tls_mode", "choice", None, "`disabled`, `allow` (TLS and plain connections on the same port) or "
      "`require`", "security", choices=("disabled", "allow", "require"),
      default_doc="`require` with a certificate, else `disabled`"),
    O("tls_cert_file", "str", None, "PEM file of the server certificate (chain); may also hold the key",
      "security"),
    O("tls_key_file", "str", None, "PEM file of the certificate's private key", "security",
      default_doc="in `tls_cert_file`"),
    O("tls_ca_file", "str", None, "PEM file of the CAs that sign client certificates; clients must then "
      "present one (see `tls_allow_no_client_cert`)", "security"),
    O("tls_allow_no_client_cert", "bool", False, "with `tls_ca_file`, also accept clients without a "
      "certificate", "security"),
    O("idle_timeout", "float", 1800.0, "seconds after which a connection with no request (and nothing "
      "running) is closed (`0` = never)", "security", minimum=0),
    O("max_concurrent_ops", "int", 32, "expensive operations (reads, aggregations, index builds, compaction, "
      "drops) run at once; others wait for a slot", "security", minimum=1),
    O("agg_memory_limit", "int", 100 * 1024 * 1024, "bytes of documents or group state one blocking "
      "aggregation stage holds in memory (MongoDB's 100 MB); past it `$sort`, `$group`, `$bucket` and "
      "`$sortByCount` spill to `spill_dir` (`allowDiskUse`, the default) and every blocking stage fails with "
      "292 without `allowDiskUse`; `setParameter internalQueryMaxBlockingSortMemoryUsageBytes` sets the "
      "`$sort` limit at run time", "security", minimum=1024),
    O("regex_time_limit_ms", "int", 1000, "milliseconds one evaluation of a complex regular expression may "
      "take before the query fails (51156): catastrophic backtracking cannot stall the server", "security",
      minimum=1),
    # -- storage --
    O("storage", "str", "./.mongolake", "where tables live: a path, `file://…`, `memory://name`, "
      "`s3://bucket/prefix` (see [storage](storage.md), [S3](s3.md))", "storage", admin=True),
    O("wal_dir", "str", None, "local folder of the write-ahead log; always local disk, also when tables live "
      "on S3", "storage", admin=True,
      default_doc="`<storage>/_mongolake/wal` for a local path, else `./.mongolake-wal/<store>` "
      "(e.g. `./.mongolake-wal/s3-bucket-prefix`)"),
    O("spill_dir", "str", None, "folder of the temporary files of aggregation stages that spill to disk "
      "(deleted when their cursor ends or is killed)", "storage",
      default_doc="`<storage>/_mongolake/tmp` for a local path, else `<system temp>/mongolake-spill`"),
    O("format", "choice", "delta", "table format of new collections (per collection: `createCollection` "
      "option `tableFormat`)", "storage", choices=("delta", "iceberg"), admin=True),
    O("sync", "choice", "always", "WAL durability: `always` (fsync, shared by concurrent writers, before "
      "every acknowledgement), `interval` (acknowledge at once, fsync every 100 ms: a crash may lose the "
      "last 100 ms), `none` (never fsync: tests and benchmarks only)", "storage",
      choices=("always", "interval", "none")),
    O("flush_interval", "float", 30.0, "seconds between background flushes of memtables to table commits",
      "storage", minimum=0.01),
    O("memtable_size", "int", 64, "MB of BSON in memtables that triggers a flush", "storage", minimum=1),
    O("cache_size", "int", 256, "MB of the read cache (Parquet footers, per-row-group key lists and document "
      "columns)", "storage", minimum=1, admin=True),
    O("compression", "choice", "zstd", "Parquet codec of new data files", "storage",
      choices=("zstd", "snappy", "gzip", "lz4", "none"), admin=True),
    O("row_group_rows", "int", 4096, "rows per Parquet row group; a point read fetches one row group of the "
      "`_doc` column, so smaller groups mean smaller reads on S3 (and larger footers)", "storage",
      minimum=16, admin=True),
    O("file_rows", "int", 1 << 20, "rows per data file written by a flush or a compaction", "storage",
      minimum=1024, admin=True),
    # -- S3 --
    O("s3_endpoint", "str", None, "S3 endpoint URL (MinIO `http://minio:9000`, R2 "
      "`https://<account>.r2.cloudflarestorage.com`)", "s3", admin=True,
      default_doc="`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, else AWS"),
    O("s3_region", "str", None, "S3 region (`auto` for R2)", "s3", admin=True,
      default_doc="`AWS_REGION`, `AWS_DEFAULT_REGION`, boto's config"),
    O("s3_path_style", "choice", "auto", "path-style addressing (`auto`: on for a non-AWS endpoint)", "s3",
      choices=("auto", "true", "false"), admin=True),
    O("s3_access_key_id", "str", None, "access key", "s3", admin=True, secret=True,
      default_doc="`AWS_ACCESS_KEY_ID`, profiles, roles"),
    O("s3_secret_access_key", "str", None, "secret key", "s3", admin=True, secret=True,
      default_doc="`AWS_SECRET_ACCESS_KEY`"),
    O("s3_session_token", "str", None, "session token of temporary credentials", "s3", admin=True,
      secret=True, default_doc="`AWS_SESSION_TOKEN`"),
    O("s3_max_attempts", "int", 8, "attempts per S3 request (first try included) before an error", "s3",
      minimum=1, admin=True),
    O("s3_connect_timeout", "float", 5.0, "seconds to connect to the S3 endpoint", "s3", minimum=0.1,
      admin=True),
    # -- logging --
    O("log_level", "choice", "info", "least severe level logged", "log",
      choices=("debug", "info", "warning", "error"), admin=True),
    O("log_format", "choice", "text", "`text` (one readable line) or `json` (one JSON object per line, "
      "MongoDB-style fields `t`, `s`, `c`, `msg`, `attr`)", "log", choices=("text", "json"), admin=True),
    O("log_file", "str", None, "append the log to this file", "log", default_doc="standard error", admin=True),
    # -- metrics --
    O("metrics_port", "int", None, "serve Prometheus metrics at `http://<metrics-host>:<port>/metrics` "
      "(`0` = any free port)", "metrics", minimum=0, maximum=65535, default_doc="off"),
    O("metrics_host", "str", "127.0.0.1", "address of the metrics endpoint", "metrics"),
    # -- background compaction --
    O("compact_interval", "float", 300.0, "seconds between checks for small files (`0` = no background "
      "compaction)", "compact", minimum=0),
    O("compact_min_files", "int", 16, "compact a collection when it has at least this many small files",
      "compact", minimum=2),
    O("compact_target_size", "int", 128, "MB of the files compaction writes; files below half of it count "
      "as small", "compact", minimum=1, admin=True),
)
del O
BY_NAME = {o.name: o for o in OPTIONS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Config:
    """Resolved option values (attribute access) plus where each one came from."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str], config_file: str | None = None):
        self._values = values
        self.sources = sources
        self.config_file = config_file

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)

    def set(self, name: str, value: Any, source: str) -> None:
        self._values[name] = value
        self.sources[name] = source

    def as_dict(self, *, mask_secrets: bool = True) -> dict[str, Any]:
        out = {}
        for name, v in self._values.items():
            opt = BY_NAME.get(name)
            out[name] = "***" if (mask_secrets and opt is not None and opt.secret and v is not None) else v
        return out

    def storage_options(self) -> dict[str, Any]:
        """Options for :func:`mongolake.storage.open_storage` of the configured storage URL."""
        if not str(self.storage).startswith("s3://"):
            return {}
        out: dict[str, Any] = {"max_attempts": self.s3_max_attempts, "connect_timeout": self.s3_connect_timeout}
        for key, name in (("endpoint_url", "s3_endpoint"), ("region", "s3_region"),
                          ("access_key_id", "s3_access_key_id"), ("secret_access_key", "s3_secret_access_key"),
                          ("session_token", "s3_session_token")):
            if self.get(name) is not None:
                out[key] = self.get(name)
        if self.s3_path_style != "auto":
            out["path_style"] = self.s3_path_style == "true"
        return out


# -- conversion ------------------------------------------------------------------

def convert(opt: Option, raw: Any, where: str) -> Any:
    """Turn ``raw`` (a string from a flag or the environment, or a TOML value) into
    ``opt``'s type; :class:`ConfigError` names ``opt`` and ``where`` on failure."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{opt.name} ({where}): {why}")

    if isinstance(raw, str) and opt.kind != "str":
        raw = raw.strip()
    if opt.kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise bad(f"{raw!r} is not a boolean (use true or false)")
    if opt.kind in ("int", "float"):
        if isinstance(raw, bool):
            raise bad(f"{raw!r} is not a number")
        try:
            v: Any = int(raw) if opt.kind == "int" else float(raw)
        except (TypeError, ValueError):
            raise bad(f"{raw!r} is not {'an integer' if opt.kind == 'int' else 'a number'}") from None
        if opt.kind == "int" and isinstance(raw, float) and raw != int(raw):
            raise bad(f"{raw!r} is not an integer")
        if opt.minimum is not None and v < opt.minimum:
            raise bad(f"{v} is below the minimum {opt.minimum:g}")
        if opt.maximum is not None and v > opt.maximum:
            raise bad(f"{v} is above the maximum {opt.maximum:g}")
        return v
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise bad(f"{raw!r} is not a string")
    v = str(raw)
    if opt.kind == "choice":
        low = v.lower()
        if low not in opt.choices:
            raise bad(f"{v!r} is not one of {', '.join(opt.choices)}")
        return low
    return v


def _suggest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_config_file(path: str) -> dict[str, Any]:
    """The options of a TOML file as ``{name: value}``; ``[group] key`` is ``group_key``.
    Unknown keys are errors."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, dict):
                    raise ConfigError(f"config file {path}: [{key}.{sub}] nests too deep; use [{key}] {sub} = …")
                out[f"{key}_{sub}"] = v
        else:
            out[key] = value
    names = list(BY_NAME)
    for name in out:
        if name not in BY_NAME:
            raise ConfigError(f"config file {path}: unknown option {name!r}{_suggest(name, names)}")
    return out


def load(flags: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None,
         config_file: str | None = None, names: list[str] | None = None) -> Config:
    """Resolve every option in ``names`` (default: all) by precedence: ``flags``
    (already parsed command-line values, as strings or typed) > ``env``
    (``MONGOLAKE_*``, default ``os.environ``) > the TOML ``config_file`` (default
    ``$MONGOLAKE_CONFIG``) > the default. Raises :class:`ConfigError`."""
    flags = dict(flags or {})
    env = os.environ if env is None else env
    if config_file is None:
        config_file = env.get(CONFIG_ENV) or None
    file_values = read_config_file(config_file) if config_file else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS if names is None else [BY_NAME[n] for n in names]:
        if opt.name in flags and flags[opt.name] is not None:
            values[opt.name] = convert(opt, flags[opt.name], f"flag {opt.flag}")
            sources[opt.name] = "flag"
        elif env.get(opt.env, "") != "":
            values[opt.name] = convert(opt, env[opt.env], f"environment {opt.env}")
            sources[opt.name] = "env"
        elif opt.name in file_values:
            values[opt.name] = convert(opt, file_values[opt.name], f"config file {config_file}")
            sources[opt.name] = "file"
        else:
            values[opt.name] = opt.default
            sources[opt.name] = "default"
    cfg = Config(values, sources, config_file)
    validate(cfg)
    return cfg


def unknown_env(env: Mapping[str, str] | None = None) -> list[str]:
    """``MONGOLAKE_*`` variables that name no option (warned about: test suites use
    a few of their own)."""
    env = os.environ if env is None else env
    known = {o.env for o in OPTIONS} | {CONFIG_ENV}
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)


def unknown_env_message(name: str) -> str:
    return f"environment variable {name} is not a MongoLake option{_suggest(name, [o.env for o in OPTIONS])}"


# -- validation -------------------------------------------------------------------

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")


def validate_storage_url(url: str) -> None:
    """Refuse storage URLs that cannot work, before anything touches them."""
    if not url:
        raise ConfigError("storage: empty storage URL")
    if url.startswith("s3://"):
        bucket = url[5:].partition("/")[0]
        if not bucket:
            raise ConfigError(f"storage: {url!r} has no bucket (use s3://bucket/prefix)")
        if not _BUCKET.match(bucket):
            raise ConfigError(f"storage: {bucket!r} in {url!r} is not a valid S3 bucket name")
        return
    if url.startswith("memory://"):
        return
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"storage: unsupported URL scheme {scheme!r} in {url!r} "
                          "(use a path, file://, memory:// or s3://bucket/prefix)")


def validate(cfg: Config) -> None:
    if "storage" in cfg.sources:
        validate_storage_url(cfg.storage)
    ep = cfg.get("s3_endpoint")
    if ep is not None:
        u = urlparse(ep)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"s3_endpoint ({cfg.sources['s3_endpoint']}): {ep!r} is not an http(s):// URL")
        try:
            u.port
        except ValueError:
            raise ConfigError(f"s3_endpoint ({cfg.sources['s3_endpoint']}): bad port in {ep!r}") from None
    if cfg.get("enable_test_commands") and cfg.get("auth") and not cfg.get("allow_test_commands_with_auth"):
        raise ConfigError("enable_test_commands: test commands let any client fail or stall commands, so they are "
                          "refused together with auth (set allow_test_commands_with_auth to allow both)")
    if cfg.get("tls_mode") in ("allow", "require") and not cfg.get("tls_cert_file"):
        raise ConfigError(f"tls_mode {cfg.tls_mode}: needs tls_cert_file (and tls_key_file unless the key is in "
                          "the certificate file)")
    wal = cfg.get("wal_dir")
    if wal is not None and "://" in wal:
        raise ConfigError(f"wal_dir: {wal!r} must be a local folder (the WAL always lives on local disk)")


def local_path(url: str) -> str | None:
    """The local folder of a filesystem storage URL, else None."""
    if url.startswith("file://"):
        return url[len("file://"):]
    return None if "://" in url else url


def default_wal_dir(storage_url: str) -> str:
    """``<storage>/_mongolake/wal`` for a local store; for any other store a folder
    per store below ``./.mongolake-wal`` (so two stores never share a WAL)."""
    local = local_path(storage_url)
    if local is not None:
        return os.path.join(os.path.abspath(local), "_mongolake", "wal")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", storage_url).strip("-")
    return os.path.abspath(os.path.join(".mongolake-wal", slug))


def _check_writable(what: str, path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".mongolake-write-check-{os.getpid()}")
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"{what} {path!r} is not writable: {e.strerror or e}") from None


def check_environment(cfg: Config) -> None:
    """Check that the storage and WAL folders are writable and that S3 answers
    (a quick probe: 2 attempts, connect timeout at most 3 s); raise
    :class:`ConfigError` otherwise."""
    local = local_path(cfg.storage)
    if local is not None:
        _check_writable("storage path", local)
    _check_writable("WAL folder (wal_dir)", cfg.wal_dir or default_wal_dir(cfg.storage))
    if cfg.storage.startswith("s3://"):
        from mongolake.storage import StorageError, open_storage

        opts = {**cfg.storage_options(), "max_attempts": min(2, cfg.s3_max_attempts),
                "connect_timeout": min(3.0, cfg.s3_connect_timeout), "read_timeout": 10.0}
        try:
            probe = open_storage(cfg.storage, **opts)
        except ValueError as e:
            raise ConfigError(f"storage {cfg.storage!r}: {e}") from None
        try:
            probe.list("_mongolake/catalog")
        except StorageError as e:
            endpoint = getattr(probe, "endpoint_url", None) or "AWS"
            raise ConfigError(f"cannot use S3 storage {cfg.storage} (endpoint {endpoint}): {e}") from None
        finally:
            probe.close()


# -- documentation ---------------------------------------------------------------

def _doc_default(opt: Option) -> str:
    if opt.default_doc is not None:
        return opt.default_doc
    if opt.default is None:
        return "unset"
    if isinstance(opt.default, bool):
        return "`true`" if opt.default else "`false`"
    if isinstance(opt.default, float) and opt.default == int(opt.default):
        return f"`{int(opt.default)}`"
    return f"`{opt.default}`"


def render_markdown() -> str:
    """The option reference of ``docs/configuration.md`` (one table per group)."""
    lines = []
    for group, title in GROUPS.items():
        lines += [f"### {title}", "", "| flag | environment | TOML key | default | meaning |", "|---|---|---|---|---|"]
        for o in OPTIONS:
            if o.group != group:
                continue
            flag = f"`{o.flag}`" if o.kind != "bool" else f"`{o.flag}` / `--no-{o.flag[2:]}`"
            meaning = o.help
            if o.kind == "choice" and not all(f"`{c}`" in o.help for c in o.choices):
                meaning += f" ({', '.join('`%s`' % c for c in o.choices)})"
            if o.name == "storage":
                meaning += "; the admin commands take it as their first argument"
            elif o.admin:
                meaning += "; also for the admin commands"
            key = o.name if not o.name.startswith(group + "_") else f"{o.name} or [{group}] {o.name[len(group) + 1:]}"
            lines.append(f"| {flag} | `{o.env}` | `{key}` | {_doc_default(o)} | {meaning} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def update_docs(path: str) -> bool:
    """Replace the generated part of ``path``; return whether it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    new = text[:start] + "\n" + render_markdown() + text[end:]
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text


if __name__ == "__main__":   # python -m mongolake.config [--update-docs docs/configuration.md]
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--update-docs":
        print("updated" if update_docs(sys.argv[2]) else "unchanged")
    else:
        sys.stdout.write(render_markdown())
