"""Commands MongoDB 8.0's mongod has that MongoLake does not implement.

The rule (documented in docs/compatibility.md):

* a command mongod 8.0 knows but MongoLake does not implement answers
  **NotImplemented (238)** with a message naming it — the names are listed here;
* any other name — a typo, a command removed before 8.0 (``getLastError``,
  ``eval``, ...), one that exists only on mongos (``isdbgrid``, ``addShard``) or
  only on Atlas (``atlasVersion``) — answers **CommandNotFound (59)**, exactly as
  mongod does. Tools probe for some of these and expect 59.

A few options of implemented commands are refused with 238 as well (views,
capped and time-series collections, ``fsync`` with ``lock``, text/geo indexes,
transactions); those are raised by the handlers themselves.
"""
from __future__ import annotations

_ROLES = "user-defined roles are not supported by MongoLake: grant its built-in roles (rolesInfo lists them)"
_REPL = "MongoLake is a single node: replica-set management is not supported"
_SHARD = "MongoLake is not sharded"
_JS = "server-side JavaScript is not supported by MongoLake"
_FLE = "queryable encryption is not supported by MongoLake"
_PLAN = "MongoLake has no plan cache"

NOT_IMPLEMENTED: dict[str, str] = {
    # authentication, users, roles (SCRAM and built-in roles are implemented: commands/auth.py)
    "authenticate": "only SCRAM-SHA-1 and SCRAM-SHA-256 through saslStart are supported by MongoLake "
                    "(no MONGODB-X509)",
    "createRole": _ROLES, "updateRole": _ROLES, "dropRole": _ROLES, "dropAllRolesFromDatabase": _ROLES,
    "grantPrivilegesToRole": _ROLES, "revokePrivilegesFromRole": _ROLES, "grantRolesToRole": _ROLES,
    "revokeRolesFromRole": _ROLES, "invalidateUserCache": "MongoLake keeps no user cache to invalidate",
    "rotateCertificates": "the TLS certificate is loaded at start; restart MongoLake to rotate it",
    # replication
    "replSetGetStatus": _REPL, "replSetGetConfig": _REPL, "replSetInitiate": _REPL, "replSetReconfig": _REPL,
    "replSetStepDown": _REPL, "replSetStepUp": _REPL, "replSetFreeze": _REPL, "replSetMaintenance": _REPL,
    "replSetSyncFrom": _REPL, "replSetAbortPrimaryCatchUp": _REPL, "replSetResizeOplog": _REPL,
    "appendOplogNote": _REPL, "applyOps": _REPL,
    # sharding commands a mongod answers
    "shardingState": _SHARD, "cleanupOrphaned": _SHARD, "analyzeShardKey": _SHARD,
    "configureQueryAnalyzer": _SHARD, "checkShardingIndex": _SHARD, "splitVector": _SHARD,
    # JavaScript
    "mapReduce": _JS + " (use an aggregation pipeline)",
    # collection shapes and maintenance not offered
    "cloneCollectionAsCapped": "capped collections are not supported by MongoLake",
    "convertToCapped": "capped collections are not supported by MongoLake",
    "reIndex": "MongoLake keeps no index structures to rebuild",
    "setIndexCommitQuorum": "MongoLake builds no indexes in the background",
    "autoCompact": "automatic compaction is configured on the server command line",
    "filemd5": "GridFS md5 computation is not supported by MongoLake",
    "dbHash": "dbHash is not supported by MongoLake",
    "dbCheck": "dbCheck is not supported by MongoLake",
    "validateDBMetadata": "validateDBMetadata is not supported by MongoLake",
    # plan cache
    "planCacheClear": _PLAN, "planCacheClearFilters": _PLAN, "planCacheListFilters": _PLAN,
    "planCacheSetFilter": _PLAN,
    # server administration
    "shutdown": "shut MongoLake down with SIGTERM (it flushes first)",
    "logRotate": "MongoLake logs to standard output; rotate it outside",
    "setFeatureCompatibilityVersion": "MongoLake always runs with featureCompatibilityVersion 8.0",
    "setDefaultRWConcern": "default read/write concerns are fixed in MongoLake",
    "setClusterParameter": "cluster parameters are not supported by MongoLake",
    "getClusterParameter": "cluster parameters are not supported by MongoLake",
    "setUserWriteBlockMode": "write blocking is not supported by MongoLake",
    "dropConnections": "dropConnections is not supported by MongoLake",
    "killAllSessionsByPattern": "killAllSessionsByPattern is not supported by MongoLake (use killSessions)",
    "setProfilingFilterGlobally": "the profiler is not supported by MongoLake",
    "getAuditConfig": "auditing is not supported by MongoLake", "setAuditConfig": "auditing is not supported by MongoLake",
    "connPoolStats": "MongoLake keeps no outgoing connection pools",
    "shardConnPoolStats": _SHARD,
    "clearLog": "clearLog is not supported by MongoLake",
    "top": "per-collection usage counters (top) are not kept by MongoLake",
    "lockInfo": "MongoLake has no lock manager to report on",
    "startRecordingTraffic": "traffic recording is not supported by MongoLake",
    "stopRecordingTraffic": "traffic recording is not supported by MongoLake",
    # search and encryption
    "compactStructuredEncryptionData": _FLE, "cleanupStructuredEncryptionData": _FLE,
}
