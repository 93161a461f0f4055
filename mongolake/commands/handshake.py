"""Handshake and server identity: hello/isMaster, buildInfo, ping, parameters."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import socket
import sys
import time

from bson.int64 import Int64

import mongolake
from mongolake.errors import ErrorCode, MongoError
from wire import compression

from .args import GENERIC_ARGS
from .context import Ctx
from .registry import REGISTRY, command

MAX_BSON = 16 * 1024 * 1024
MAX_MSG = 48_000_000
MAX_BATCH = 100_000
MAX_WIRE = 25


def _version_array() -> list[int]:
    return [int(x) for x in mongolake.MONGODB_COMPAT_VERSION.split(".")] + [0]


def hello_doc(ctx: Ctx, *, legacy: bool) -> dict:
    st = ctx.state
    eng = st.engine
    doc: dict = {}
    doc["ismaster" if legacy else "isWritablePrimary"] = True
    if legacy:
        pass
    doc["topologyVersion"] = {"processId": st.process_id, "counter": Int64(0)}
    if st.is_replset:
        addr = st.options.address
        ts = eng.cluster_time
        now = dt.datetime.now(dt.timezone.utc)
        doc.update({
            "hosts": [addr], "setName": st.options.replset, "setVersion": 1, "secondary": False,
            "primary": addr, "me": addr, "electionId": st.election_id,
            "lastWrite": {"opTime": {"ts": ts, "t": Int64(1)}, "lastWriteDate": now,
                          "majorityOpTime": {"ts": ts, "t": Int64(1)}, "majorityWriteDate": now},
        })
    doc.update({
        "maxBsonObjectSize": MAX_BSON, "maxMessageSizeBytes": MAX_MSG, "maxWriteBatchSize": MAX_BATCH,
        "localTime": dt.datetime.now(dt.timezone.utc), "logicalSessionTimeoutMinutes": 30,
        "connectionId": ctx.conn.id, "minWireVersion": 0, "maxWireVersion": MAX_WIRE, "readOnly": False,
    })
    asked = ctx.body.get("compression")
    if isinstance(asked, list):
        chosen = next((c for c in asked if c in compression.SUPPORTED), None)
        if chosen:
            ctx.conn.compressor = chosen
            doc["compression"] = [chosen]
    if "client" in ctx.body and isinstance(ctx.body["client"], dict):
        ctx.conn.state["client"] = ctx.body["client"]
    doc["ok"] = 1.0
    return doc


async def _await_topology_change(ctx: Ctx) -> None:
    """The awaitable hello of the SDAM monitoring spec: a monitor that already knows
    this server's current ``topologyVersion`` is answered only when it changes (never,
    on one node) or after ``maxAwaitTimeMS`` — not at once, which would make every
    driver's monitor spin."""
    tv = ctx.body.get("topologyVersion")
    wait_ms = ctx.body.get("maxAwaitTimeMS")
    if not isinstance(tv, dict) or wait_ms is None:
        return
    if isinstance(wait_ms, bool) or not isinstance(wait_ms, (int, float)) or wait_ms < 0:
        raise MongoError(ErrorCode.BadValue, "maxAwaitTimeMS must be a non-negative integer")
    if tv.get("processId") != ctx.state.process_id or tv.get("counter") != 0:
        return      # the client's view is stale: answer now
    try:
        await asyncio.wait_for(ctx.conn.wait_closed(), timeout=min(float(wait_ms), 60_000.0) / 1000)
    except asyncio.TimeoutError:
        pass


@command("hello", help="Describe this server and its role (handshake); awaitable with topologyVersion.",
         needs_auth=False)
async def hello(ctx: Ctx) -> dict:
    await _await_topology_change(ctx)
    return hello_doc(ctx, legacy=False)


@command("isMaster", "ismaster", help="Legacy handshake; same as hello with 'ismaster'.", needs_auth=False)
async def is_master(ctx: Ctx) -> dict:
    await _await_topology_change(ctx)
    doc = hello_doc(ctx, legacy=True)
    if ctx.body.get("helloOk") is True:
        doc["helloOk"] = True
    return doc


@command("ping", help="Check that the server answers.", needs_auth=False)
async def ping(ctx: Ctx) -> dict:
    return {"ok": 1.0}


@command("buildInfo", "buildinfo", help="Version and build of the server.", needs_auth=False)
async def build_info(ctx: Ctx) -> dict:
    return {
        "version": mongolake.MONGODB_COMPAT_VERSION, "gitVersion": "mongolake", "versionArray": _version_array(),
        "modules": [], "allocator": "system", "javascriptEngine": "none", "sysInfo": "deprecated",
        "openssl": {"running": "none", "compiled": "none"},
        "buildEnvironment": {"distarch": platform.machine(), "target_arch": platform.machine(),
                             "target_os": sys.platform},
        "bits": 64, "debug": False, "maxBsonObjectSize": MAX_BSON, "storageEngines": ["mongolake"],
        "mongolake": {"version": mongolake.__version__, "tableFormat": ctx.engine.table_format,
                      "python": platform.python_version()},
        "ok": 1.0,
    }


_PARAMS = {
    "featureCompatibilityVersion": {"version": "8.0"},
    "authenticationMechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
    "maxBSONDepth": 100,
    "internalQueryMaxBlockingSortMemoryUsageBytes": 100 * 1024 * 1024,
    "internalDocumentSourceGroupMaxMemoryBytes": 100 * 1024 * 1024,
    "transactionLifetimeLimitSeconds": 60,
    "logLevel": 0,
    "quiet": False,
    "cursorTimeoutMillis": Int64(600000),
    "enableTestCommands": 0,
    "maxIndexBuildMemoryUsageMegabytes": 200,
    "notablescan": False,
}
# parameters setParameter may change, with the type they are coerced to
_SETTABLE = {"logLevel": int, "quiet": bool, "cursorTimeoutMillis": int, "notablescan": bool,
             "internalQueryMaxBlockingSortMemoryUsageBytes": int, "maxIndexBuildMemoryUsageMegabytes": int,
             "internalDocumentSourceGroupMaxMemoryBytes": int,
             "transactionLifetimeLimitSeconds": int}
_NOT_PARAMS = {"getParameter", "setParameter", "comment"}


def parameters(ctx: Ctx) -> dict:
    """The server's parameters (the defaults above, as changed by setParameter)."""
    p = ctx.state.parameters
    if not p:
        p.update(_PARAMS)
        p["cursorTimeoutMillis"] = Int64(int(ctx.state.cursors.idle_timeout * 1000))
        from .failpoints import test_commands_enabled
        p["enableTestCommands"] = int(test_commands_enabled(ctx.state))
    return p


@command("getParameter", help="Read server parameters ('*' or {allParameters: true} for all; showDetails).",
         admin_only=True)
async def get_parameter(ctx: Ctx) -> dict:
    params = parameters(ctx)
    arg = ctx.arg
    details = isinstance(arg, dict) and bool(arg.get("showDetails"))
    if arg == "*" or (isinstance(arg, dict) and arg.get("allParameters")):
        names = list(params)
    else:
        names = [k for k in ctx.body if k not in _NOT_PARAMS and k not in GENERIC_ARGS and not k.startswith("$")]
        if not names or any(k not in params for k in names):
            raise MongoError(ErrorCode.InvalidOptions, "no option found to get")
    out: dict = {}
    for k in names:
        v = params[k]
        out[k] = {"value": v, "settableAtRuntime": k in _SETTABLE, "settableAtStartup": True} if details else v
    out["ok"] = 1.0
    return out


@command("setParameter", help="Change runtime parameters (logLevel, cursorTimeoutMillis, quiet, ...).",
         admin_only=True)
async def set_parameter(ctx: Ctx) -> dict:
    params = parameters(ctx)
    names = [k for k in ctx.body if k not in _NOT_PARAMS and k not in GENERIC_ARGS and not k.startswith("$")]
    if not names:
        raise MongoError(ErrorCode.InvalidOptions, "no option found to set, use help:true to see options ")
    out: dict = {}
    for k in names:
        if k not in params:
            raise MongoError(ErrorCode.InvalidOptions,
                             f"attempted to set unrecognized parameter [{k}], use help:true to see options ")
        if k not in _SETTABLE:
            raise MongoError(ErrorCode.InvalidOptions, f"not allowed to change [{k}] at runtime")
        v = ctx.body[k]
        typ = _SETTABLE[k]
        if typ is int and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise MongoError(ErrorCode.BadValue, f"{k} must be a non-negative number")
        if typ is bool and not isinstance(v, (bool, int, float)):
            raise MongoError(ErrorCode.BadValue, f"{k} must be a boolean")
        out.setdefault("was", params[k])
        params[k] = Int64(int(v)) if k == "cursorTimeoutMillis" else typ(v)
        if k == "cursorTimeoutMillis":
            ctx.state.cursors.idle_timeout = int(v) / 1000.0
        elif k == "logLevel":
            logging.getLogger("mongolake").setLevel(logging.DEBUG if int(v) > 0 else logging.INFO)
    out["ok"] = 1.0
    return out


@command("getCmdLineOpts", help="The server's command line.", admin_only=True)
async def get_cmd_line_opts(ctx: Ctx) -> dict:
    return {"argv": ctx.state.options.argv or ["mongolake"], "parsed": ctx.state.options.parsed, "ok": 1.0}


@command("hostInfo", help="Facts about the host machine.")
async def host_info(ctx: Ctx) -> dict:
    try:
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError):
        mem_mb = 0
    return {"system": {"currentTime": dt.datetime.now(dt.timezone.utc), "hostname": socket.gethostname(),
                       "cpuAddrSize": 64, "memSizeMB": Int64(mem_mb), "numCores": os.cpu_count() or 1,
                       "cpuArch": platform.machine(), "numaEnabled": False},
            "os": {"type": platform.system(), "name": platform.platform(), "version": platform.release()},
            "extra": {}, "ok": 1.0}


@command("whatsmyuri", help="The client's address as the server sees it.", needs_auth=False)
async def whats_my_uri(ctx: Ctx) -> dict:
    return {"you": ctx.conn.peer, "ok": 1.0}


# connectionStatus and logout: see auth.py


@command("listCommands", help="Every command this server knows, with help.", needs_auth=False)
async def list_commands(ctx: Ctx) -> dict:
    cmds = {}
    for name, c in sorted(REGISTRY.items()):
        cmds[name] = {"help": c.help, "adminOnly": c.admin_only, "requiresAuth": c.needs_auth,
                      "secondaryOk": True, "apiVersions": [], "deprecatedApiVersions": []}
    return {"commands": cmds, "ok": 1.0}


@command("getLog", help="Recent log lines ('global', 'startupWarnings') or '*' for the list.", admin_only=True)
async def get_log(ctx: Ctx) -> dict:
    which = ctx.arg
    if which == "*":
        return {"names": ["global", "startupWarnings"], "ok": 1.0}
    if which == "startupWarnings":
        lines = list(ctx.state.startup_warnings)
        return {"totalLinesWritten": len(lines), "log": lines, "ok": 1.0}
    if which == "global":
        return {"totalLinesWritten": ctx.state.log_total, "log": list(ctx.state.log_lines), "ok": 1.0}
    if not isinstance(which, str):
        raise MongoError(ErrorCode.TypeMismatch, "Argument to getLog must be of type String")
    raise MongoError(ErrorCode.InvalidOptions, f"No log named '{which}'")


@command("getFreeMonitoringStatus", help="Free monitoring is not offered (always disabled).")
async def free_monitoring(ctx: Ctx) -> dict:
    return {"state": "disabled", "ok": 1.0}


@command("serverStatus", help="Counters: opcounters, connections, memory, storage.")
async def server_status(ctx: Ctx) -> dict:
    import resource

    st = ctx.state
    eng = st.engine
    ru = resource.getrusage(resource.RUSAGE_SELF)
    rss_mb = 0
    try:
        with open("/proc/self/statm") as f:
            rss_mb = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except OSError:
        rss_mb = ru.ru_maxrss // 1024
    now = time.time()
    return {
        "host": socket.gethostname(), "version": mongolake.MONGODB_COMPAT_VERSION, "process": "mongolake",
        "pid": Int64(st.pid), "uptime": float(int(now - st.started)), "uptimeMillis": Int64(int((now - st.started) * 1000)),
        "uptimeEstimate": Int64(int(now - st.started)), "localTime": dt.datetime.now(dt.timezone.utc),
        "connections": {"current": st.connections_current, "available": 10000 - st.connections_current,
                        "totalCreated": st.connections_total},
        "opcounters": {k: Int64(v) for k, v in st.opcounters.items()},
        "mem": {"bits": 64, "resident": rss_mb, "virtual": rss_mb, "supported": True},
        "metrics": {"cursor": {"open": {"total": Int64(len(st.cursors.cursors))},
                               "timedOut": Int64(st.cursors.timed_out)}},
        "storageEngine": {"name": "mongolake", "supportsCommittedReads": True, "persistent": True,
                          "tableFormat": eng.table_format, "storage": eng.storage.url},
        "mongolake": {"walBytesWritten": Int64(eng.wal.bytes_written), "walFsyncs": Int64(eng.wal.fsyncs),
                      "flushes": Int64(eng.stats["flushes"]), "flushSeconds": eng.stats["flush_seconds"],
                      "cacheBytes": Int64(eng.cache.nbytes), "cacheHits": Int64(eng.cache.hits),
                      "cacheMisses": Int64(eng.cache.misses), "batches": Int64(eng.stats["batches"])},
        "ok": 1.0,
    }
