"""Handshake and server identity: hello/isMaster, buildInfo, ping, parameters."""
from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import sys
import time

from bson.int64 import Int64

import mongolake
from mongolake.errors import ErrorCode, MongoError
from wire import compression

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


@command("hello", help="Describe this server and its role (handshake).", needs_auth=False)
async def hello(ctx: Ctx) -> dict:
    return hello_doc(ctx, legacy=False)


@command("isMaster", "ismaster", help="Legacy handshake; same as hello with 'ismaster'.", needs_auth=False)
async def is_master(ctx: Ctx) -> dict:
    return hello_doc(ctx, legacy=True)


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
    "transactionLifetimeLimitSeconds": 60,
    "logLevel": 0,
    "quiet": False,
    "cursorTimeoutMillis": Int64(600000),
    "enableTestCommands": 0,
}


@command("getParameter", help="Read server parameters.", admin_only=True)
async def get_parameter(ctx: Ctx) -> dict:
    arg = ctx.arg
    out: dict = {}
    if arg == "*" or (isinstance(arg, dict) and arg.get("allParameters")):
        out.update(_PARAMS)
    else:
        for k in ctx.body:
            if k in _PARAMS:
                out[k] = _PARAMS[k]
            elif k not in ("getParameter", "$db", "lsid", "$clusterTime", "$readPreference", "comment",
                           "apiVersion"):
                raise MongoError(ErrorCode.InvalidOptions, "no option found to get")
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


@command("connectionStatus", help="Authenticated users and roles of this connection.", needs_auth=False)
async def connection_status(ctx: Ctx) -> dict:
    info = {"authenticatedUsers": [], "authenticatedUserRoles": []}
    if ctx.body.get("showPrivileges"):
        info["authenticatedUserPrivileges"] = []
    return {"authInfo": info, "ok": 1.0}


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
        return {"totalLinesWritten": 0, "log": [], "ok": 1.0}
    if which == "global":
        lines = ctx.state.log_lines[-1024:]
        return {"totalLinesWritten": len(ctx.state.log_lines), "log": lines, "ok": 1.0}
    raise MongoError(ErrorCode.InvalidOptions, f"no RamLog named: {which}")


@command("logout", help="End authentication on this connection.", needs_auth=False)
async def logout(ctx: Ctx) -> dict:
    ctx.conn.state.pop("user", None)
    return {"ok": 1.0}


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
