"""Amazon S3 and S3-compatible object stores (MinIO, Cloudflare R2, Ceph, moto) via boto3.

``s3://bucket/prefix``: every path is a key below ``prefix/``.

* Writes are single ``PutObject`` calls (atomic: readers see the old object or the
  new one), or for large unconditional objects a multipart upload that is only
  completed once every part is stored (aborted otherwise), so nothing half-written
  is ever visible.
* ``write_conditional``: put-if-absent is ``PutObject`` with ``If-None-Match: *``;
  if-version is ``If-Match: <etag>``. ``412 PreconditionFailed``, ``409
  ConditionalRequestConflict`` and (for If-Match) ``404`` become
  :class:`VersionMismatchError`. The version of an object is its ETag.
* Retries: botocore's own retries are switched off; every call goes through
  :meth:`S3Storage._call`, which retries throttling, 5xx, timeouts and broken
  connections with exponential backoff and full jitter and, when the attempts run
  out, raises :class:`TransientStorageError` whose ``__cause__`` is the last error.
  A conditional write whose earlier attempt failed ambiguously (the server may
  have applied it) and then meets 412/404 checks whether the stored object is
  byte-for-byte its own data, and if so reports success instead of a false conflict.
"""
from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                 HTTPClientError, IncompleteReadError, NoCredentialsError,
                                 PartialCredentialsError, ResponseStreamingError)

from .base import (FileInfo, InvalidPathError, NotFoundError, StorageBackend, StorageError, TransientStorageError,
                   VersionMismatchError, check_range, validate_path, validate_prefix)

T = TypeVar("T")

MiB = 1024 * 1024
_MAX_KEY_BYTES = 1024
_MAX_PUT_BYTES = 5 * 1024 * MiB
_MIN_PART_BYTES = 5 * MiB
_MAX_PARTS = 10_000

_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException", "ServiceUnavailable",
    "InternalError", "RequestTimeout", "RequestTimeoutException", "BadDigest", "IncompleteBody",
    "XAmzContentSHA256Mismatch", "PriorRequestNotComplete", "OperationAborted",
})
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_ACCESS_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                           "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled"})
_NETWORK_ERRORS = (BotoConnectionError, HTTPClientError, ResponseStreamingError, IncompleteReadError)


class _PartialBatchFailure(Exception):
    """Some keys of a DeleteObjects batch failed with a retryable error."""


def _error_info(e: ClientError) -> tuple[str, int, str]:
    err = e.response.get("Error", {}) or {}
    status = int((e.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode") or 0)
    code = str(err.get("Code") or status or "Unknown")
    return code, status, str(err.get("Message") or "")


def _is_transient(code: str, status: int) -> bool:
    return code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS


def _truthy(v: Any) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("1", "true", "yes", "on", "path")


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _new_session(**kw: Any) -> boto3.session.Session:
    """A fresh boto3 session (its own credential resolution) that shares botocore's
    JSON model loader, so opening another S3Storage does not re-parse the S3 model."""
    global _shared_loader
    with _loader_lock:
        if _shared_loader is None:
            _shared_loader = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _shared_loader)
    return boto3.session.Session(botocore_session=core, **kw)


def _is_aws_endpoint(endpoint_url: str | None) -> bool:
    if not endpoint_url:
        return True
    host = urlparse(endpoint_url).hostname or ""
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


class S3Storage(StorageBackend):
    """Objects in ``bucket`` under ``prefix``. Thread-safe (one shared boto3 client).

    Options (all optional; defaults in brackets):
    ``endpoint_url`` [``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` / AWS],
    ``region`` [``AWS_REGION`` / ``AWS_DEFAULT_REGION`` / boto's config],
    ``access_key_id``, ``secret_access_key``, ``session_token`` [boto's credential chain:
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, profiles, roles],
    ``path_style`` [True for a non-AWS endpoint, else boto's automatic choice],
    ``max_attempts`` [``AWS_MAX_ATTEMPTS`` or 8, first try included], ``base_delay`` [0.1 s],
    ``max_delay`` [5 s], ``connect_timeout`` [5 s], ``read_timeout`` [30 s],
    ``multipart_threshold`` [64 MiB], ``multipart_chunksize`` [16 MiB], ``list_page_size`` [1000],
    ``max_pool_connections`` [32], ``client`` (a ready boto3 S3 client, overrides the rest).
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, session_token: str | None = None,
                 path_style: bool | None = None, max_attempts: int | None = None, base_delay: float = 0.1,
                 max_delay: float = 5.0, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 multipart_threshold: int = 64 * MiB, multipart_chunksize: int = 16 * MiB,
                 list_page_size: int = 1000, max_pool_connections: int = 32):
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name: {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_path(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self._root = prefix + "/" if prefix else ""
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if max_attempts is None:
            max_attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 8)
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if multipart_chunksize < _MIN_PART_BYTES:
            raise ValueError(f"multipart_chunksize must be >= {_MIN_PART_BYTES} (S3's minimum part size)")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.list_page_size = list_page_size
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
            "AWS_ENDPOINT_URL") or None
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
        self._stats_lock = threading.Lock()
        self.bytes_read = 0
        self.get_requests = 0
        if client is not None:
            self._client = client
            return
        path_style = _truthy(path_style)
        if path_style is None and not _is_aws_endpoint(self.endpoint_url):
            path_style = True   # MinIO, R2, Ceph, moto: path-style works without DNS set-up
        addressing = "auto" if path_style is None else ("path" if path_style else "virtual")
        # Non-AWS stores may not know boto's newer default CRC checksums; Content-MD5 is sent instead.
        checksums = "when_supported" if _is_aws_endpoint(self.endpoint_url) else "when_required"
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},   # retries are ours (_call)
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            max_pool_connections=max_pool_connections, signature_version="s3v4",
            s3={"addressing_style": addressing},
            request_checksum_calculation=checksums, response_checksum_validation=checksums,
        )
        session = _new_session(aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                               aws_session_token=session_token, region_name=self.region)
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "S3Storage":
        """``s3://bucket`` or ``s3://bucket/some/prefix``; ``options`` as in the class doc."""
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"S3 URL has no bucket: {url!r}")
        return cls(bucket, prefix, **options)

    def __repr__(self) -> str:
        return f"S3Storage({self.url!r}, endpoint_url={self.endpoint_url!r})"

    # -- plumbing --------------------------------------------------------------
    def _key(self, path: str) -> str:
        validate_path(path)
        key = self._root + path
        if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
            raise InvalidPathError(f"S3 key longer than {_MAX_KEY_BYTES} bytes: {path!r}")
        return key

    def _where(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._root}{path}"

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))))

    def _call(self, op: str, path: str, fn: Callable[[int], T], *, conditional: bool = False,
              if_match: bool = False) -> T:
        """Run ``fn(attempt)`` with retries of transient failures; translate errors.

        ``attempt`` counts from 1; ``attempt > 1`` means every earlier attempt failed
        transiently (non-transient errors are raised at once).
        """
        last: BaseException | None = None
        for attempt in range(1, self.max_attempts + 1):
            try:
                return fn(attempt)
            except ClientError as e:
                code, status, _msg = _error_info(e)
                if not _is_transient(code, status):
                    raise self._translate(op, path, e, conditional=conditional, if_match=if_match) from e
                last = e
            except (_PartialBatchFailure, *_NETWORK_ERRORS) as e:
                last = e
            except (NoCredentialsError, PartialCredentialsError) as e:
                raise StorageError(f"S3 {op} {self._where(path)}: no usable AWS credentials ({e}); pass "
                                   "access_key_id/secret_access_key or set AWS_ACCESS_KEY_ID/"
                                   "AWS_SECRET_ACCESS_KEY") from e
            except BotoCoreError as e:
                raise StorageError(f"S3 {op} {self._where(path)} failed: {e}") from e
            if attempt < self.max_attempts:
                self._backoff(attempt)
        assert last is not None
        raise TransientStorageError(
            f"S3 {op} {self._where(path)} still failing after {self.max_attempts} attempts: "
            f"{self._describe(last)}") from last

    @staticmethod
    def _describe(e: BaseException) -> str:
        if isinstance(e, ClientError):
            code, status, msg = _error_info(e)
            return f"{code} (HTTP {status}){': ' + msg if msg else ''}"
        return f"{type(e).__name__}: {e}"

    def _translate(self, op: str, path: str, e: ClientError, *, conditional: bool, if_match: bool) -> StorageError:
        code, status, msg = _error_info(e)
        where = self._where(path)
        if code == "NoSuchBucket":
            return StorageError(f"S3 bucket {self.bucket!r} does not exist (endpoint "
                                f"{self.endpoint_url or 'AWS'}): {op} {where}")
        if conditional and (code in _PRECONDITION_CODES or status in (409, 412)
                            or (if_match and (code in _NOT_FOUND_CODES or status == 404))):
            return VersionMismatchError(f"conditional {op} of {where} lost: {code} (HTTP {status})")
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchUpload"):
            return NotFoundError(path)
        if code in _ACCESS_CODES or status == 403:
            return StorageError(f"S3 access denied: {op} {where}: {code}{': ' + msg if msg else ''} "
                                "(check the credentials, the region and the bucket policy)")
        return StorageError(f"S3 {op} {where} failed: {code} (HTTP {status}){': ' + msg if msg else ''}")

    def _count(self, data: bytes) -> bytes:
        with self._stats_lock:
            self.bytes_read += len(data)
            self.get_requests += 1
        return data

    def _get(self, key: str, **kw: Any) -> tuple[bytes, dict]:
        resp = self._client.get_object(Bucket=self.bucket, Key=key, **kw)
        return self._count(resp["Body"].read()), resp

    # -- reads -----------------------------------------------------------------
    def read(self, path: str) -> bytes:
        key = self._key(path)
        return self._call("read", path, lambda _a: self._get(key)[0])

    def read_range(self, path: str, start: int, length: int) -> bytes:
        check_range(start, length)
        key = self._key(path)
        if length == 0:
            self.stat(path)   # NotFoundError if missing
            return b""

        def attempt(_a: int) -> bytes:
            try:
                return self._get(key, Range=f"bytes={start}-{start + length - 1}")[0]
            except ClientError as e:
                if _error_info(e)[0] == "InvalidRange":   # start at/after the end (object exists)
                    return b""
                raise
        return self._call("read_range", path, attempt)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
            return True
        except NotFoundError:
            return False

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        resp = self._call("stat", path, lambda _a: self._client.head_object(Bucket=self.bucket, Key=key))
        return FileInfo(path, int(resp["ContentLength"]), resp["LastModified"].timestamp(), resp["ETag"])

    def list(self, prefix: str = "") -> list[FileInfo]:
        validate_prefix(prefix)
        out: list[FileInfo] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._root + prefix,
                                  "MaxKeys": self.list_page_size}
        while True:
            page = self._call("list", prefix, lambda _a: self._client.list_objects_v2(**kwargs))
            for obj in page.get("Contents", []) or []:
                rel = obj["Key"][len(self._root):]
                try:
                    validate_path(rel)   # skip folder markers ("a/") and keys other tools wrote
                except InvalidPathError:
                    continue
                out.append(FileInfo(rel, int(obj["Size"]), obj["LastModified"].timestamp(), obj["ETag"]))
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
        out.sort(key=lambda f: f.path)
        return out

    # -- writes ----------------------------------------------------------------
    def write(self, path: str, data: bytes) -> None:
        key = self._key(path)
        data = bytes(data)
        if len(data) > self.multipart_threshold:
            self._multipart_put(path, key, data)
            return
        md5 = _md5_b64(data)
        self._call("write", path, lambda _a: self._client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5))

    def write_conditional(self, path: str, data: bytes, expected_version: str | None) -> str:
        key = self._key(path)
        data = bytes(data)
        if len(data) > _MAX_PUT_BYTES:
            raise StorageError(f"conditional writes are single PUTs, at most 5 GiB: {self._where(path)}")
        cond = {"IfNoneMatch": "*"} if expected_version is None else {"IfMatch": expected_version}
        md5 = _md5_b64(data)

        def attempt(n: int) -> str:
            try:
                resp = self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5, **cond)
                return resp["ETag"]
            except ClientError as e:
                code, status, _ = _error_info(e)
                lost = code in _PRECONDITION_CODES or status in (409, 412) or (
                    expected_version is not None and (code in _NOT_FOUND_CODES or status == 404))
                if n > 1 and lost:
                    etag = self._landed(key, data)
                    if etag is not None:
                        return etag
                raise
        return self._call("write_conditional", path, attempt, conditional=True,
                          if_match=expected_version is not None)

    def _landed(self, key: str, data: bytes) -> str | None:
        """After an ambiguous failure: the stored ETag if the object holds exactly ``data``."""
        try:
            body, resp = self._get(key)
        except (ClientError, BotoCoreError):
            return None
        return resp["ETag"] if body == data else None

    def _multipart_put(self, path: str, key: str, data: bytes) -> None:
        chunk = max(self.multipart_chunksize, -(-len(data) // _MAX_PARTS))
        upload_id = self._call("create_multipart_upload", path, lambda _a: self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key)["UploadId"])
        try:
            parts = []
            for number, offset in enumerate(range(0, len(data), chunk), start=1):
                body = data[offset:offset + chunk]
                md5 = _md5_b64(body)
                etag = self._call("upload_part", path, lambda _a: self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                    ContentMD5=md5)["ETag"])
                parts.append({"ETag": etag, "PartNumber": number})

            def complete(n: int) -> None:
                try:
                    self._client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                           MultipartUpload={"Parts": parts})
                except ClientError as e:
                    # an earlier, ambiguous attempt may have completed it already
                    if n > 1 and _error_info(e)[0] == "NoSuchUpload":
                        head = self._client.head_object(Bucket=self.bucket, Key=key)
                        if int(head["ContentLength"]) == len(data):
                            return
                    raise
            self._call("complete_multipart_upload", path, complete)
        except BaseException:
            try:
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:   # best effort: a lifecycle rule should clean up what remains
                pass
            raise

    def delete(self, path: str) -> None:
        key = self._key(path)
        self._call("delete", path, lambda _a: self._client.delete_object(Bucket=self.bucket, Key=key))

    def delete_prefix(self, prefix: str) -> int:
        items = self.list(prefix)
        keys = [self._root + info.path for info in items]
        for i in range(0, len(keys), 1000):
            pending = keys[i:i + 1000]

            def attempt(_a: int) -> None:
                nonlocal pending
                resp = self._client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in pending], "Quiet": True})
                errors = resp.get("Errors", []) or []
                hard = [e for e in errors if e.get("Code") not in _TRANSIENT_CODES]
                if hard:
                    e = hard[0]
                    raise StorageError(f"S3 delete_prefix {self._where(prefix)}: could not delete "
                                       f"{len(hard)} objects, e.g. {e.get('Key')}: {e.get('Code')} "
                                       f"{e.get('Message', '')}")
                pending = [e["Key"] for e in errors]
                if pending:
                    raise _PartialBatchFailure(f"{len(pending)} keys failed transiently, e.g. "
                                               f"{errors[0].get('Key')}: {errors[0].get('Code')}")
            self._call("delete_prefix", prefix, attempt)
        return len(items)

    def copy(self, src: str, dst: str) -> None:
        """Server-side copy (objects up to 5 GiB)."""
        skey, dkey = self._key(src), self._key(dst)
        if skey == dkey:   # S3 refuses a copy onto itself
            self.stat(src)
            return
        self._call("copy", src, lambda _a: self._client.copy_object(
            Bucket=self.bucket, Key=dkey, CopySource={"Bucket": self.bucket, "Key": skey}))

    def move(self, src: str, dst: str) -> None:
        """Server-side copy, then delete (S3 has no rename: not atomic)."""
        self.copy(src, dst)
        if src != dst:
            self.delete(src)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass
