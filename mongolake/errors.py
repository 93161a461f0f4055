"""One error model for the whole server, with MongoDB's real error codes.

Every layer raises :class:`MongoError` (or a subclass); the command dispatcher is
the single place that turns an exception into ``{ok: 0, errmsg, code, codeName}``.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any, Iterable


class ErrorCode(IntEnum):
    """MongoDB error codes; the member names are MongoDB's codeNames."""

    InternalError = 1
    BadValue = 2
    NoSuchKey = 4
    GraphContainsCycle = 5
    HostUnreachable = 6
    HostNotFound = 7
    UnknownError = 8
    FailedToParse = 9
    CannotMutateObject = 10
    UserNotFound = 11
    UnsupportedFormat = 12
    Unauthorized = 13
    TypeMismatch = 14
    Overflow = 15
    InvalidLength = 16
    ProtocolError = 17
    AuthenticationFailed = 18
    IllegalOperation = 20
    InvalidBSON = 22
    LockTimeout = 24
    NamespaceNotFound = 26
    IndexNotFound = 27
    PathNotViable = 28
    NonExistentPath = 29
    NoMatchingDocument = 47
    InvalidPath = 30
    RoleNotFound = 31
    CannotBackfillArray = 34
    NotExactValueField = 111
    InvalidPipelineOperator = 168
    ConversionFailure = 241
    QueryExceededMemoryLimitNoDiskUseAllowed = 292
    ConflictingUpdateOperators = 40
    CursorNotFound = 43
    NamespaceExists = 48
    MaxTimeMSExpired = 50
    DollarPrefixedFieldName = 52
    InvalidIdField = 53
    NotSingleValueField = 54
    InvalidDBRef = 55
    EmptyFieldName = 56
    DottedFieldName = 57
    CommandNotFound = 59
    ShardKeyNotFound = 61
    ImmutableField = 66
    CannotCreateIndex = 67
    IndexAlreadyExists = 68
    InvalidOptions = 72
    InvalidNamespace = 73
    IndexOptionsConflict = 85
    IndexKeySpecsConflict = 86
    NetworkTimeout = 89
    CallbackCanceled = 90
    ShutdownInProgress = 91
    OperationFailed = 96
    ConflictingOperationInProgress = 117
    WriteConflict = 112
    CommandNotSupported = 115
    NamespaceNotSharded = 118
    InvalidSyncSource = 119
    OplogStartMissing = 120
    DocumentValidationFailure = 121
    NotAReplicaSet = 123
    IncompatibleServerVersion = 124
    CommandFailed = 125
    ObjectIsBusy = 314
    InvalidViewDefinition = 182
    OptionNotSupportedOnView = 167
    CommandNotSupportedOnView = 166
    ViewDepthLimitExceeded = 165
    InvalidIndexSpecificationOption = 197
    CannotImplicitlyCreateCollection = 227
    SessionTransferIncomplete = 228
    NotImplemented = 238
    SnapshotTooOld = 239
    TransactionTooOld = 225
    NoSuchSession = 206
    Interrupted = 11601
    NoSuchTransaction = 251
    TransactionCommitted = 256
    TransactionTooLarge = 257
    OperationNotSupportedInTransaction = 263
    ChangeStreamFatalError = 280
    ChangeStreamHistoryLost = 286
    TransactionExceededLifetimeLimitSeconds = 290
    APIStrictError = 323
    ClientMarkedKilled = 46841
    InvalidUUID = 207
    InvalidResumeToken = 260
    ExceededMemoryLimit = 146
    QueryPlanKilled = 175
    UnrecognizedCommandField = 40415
    Location16755 = 16755
    DuplicateKey = 11000
    NotWritablePrimary = 10107
    InterruptedAtShutdown = 11600
    NotPrimaryNoSecondaryOk = 13435
    BSONObjectTooLarge = 10334
    Location15974 = 15974
    Location17276 = 17276
    Location51024 = 51024


# Codes that MongoDB marks as retryable for writes (RetryableWriteError label).
RETRYABLE_WRITE_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 134})
# Codes for which a change stream may resume (ResumableChangeStreamError label).
RESUMABLE_CHANGE_STREAM_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 234, 133, 43})


def code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"Location{code}"


class MongoError(Exception):
    """An error with a MongoDB code; ``labels`` become ``errorLabels``.

    ``extra`` holds additional reply fields (e.g. ``keyPattern``/``keyValue`` for
    duplicate keys); they are copied into the error document.
    """

    def __init__(self, code: int, message: str, labels: Iterable[str] = (), **extra: Any):
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.labels = list(labels)
        self.extra = extra

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    def to_doc(self) -> dict:
        doc: dict[str, Any] = {"ok": 0.0, "errmsg": self.message, "code": self.code, "codeName": self.code_name}
        doc.update(self.extra)
        if self.labels:
            doc["errorLabels"] = list(self.labels)
        return doc

    def to_write_error(self, index: int) -> dict:
        """The shape of one entry in a write command's ``writeErrors`` array."""
        doc: dict[str, Any] = {"index": index, "code": self.code, "codeName": self.code_name, "errmsg": self.message}
        doc.update(self.extra)
        return doc

    def __repr__(self) -> str:
        return f"MongoError({self.code_name}({self.code}), {self.message!r})"


def bad_value(msg: str) -> MongoError:
    return MongoError(ErrorCode.BadValue, msg)


def type_mismatch(msg: str) -> MongoError:
    return MongoError(ErrorCode.TypeMismatch, msg)


def failed_to_parse(msg: str) -> MongoError:
    return MongoError(ErrorCode.FailedToParse, msg)


def not_implemented(msg: str) -> MongoError:
    return MongoError(ErrorCode.NotImplemented, msg)


def duplicate_key(ns: str, index_name: str, key_pattern: dict, key_value: dict) -> MongoError:
    from bson import json_util  # local import: only on the error path

    shown = ", ".join(f"{k}: {json_util.dumps(v)}" for k, v in key_value.items())
    return MongoError(
        ErrorCode.DuplicateKey,
        f"E11000 duplicate key error collection: {ns} index: {index_name} dup key: {{ {shown} }}",
        keyPattern=key_pattern,
        keyValue=key_value,
    )
