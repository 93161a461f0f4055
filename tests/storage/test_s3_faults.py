"""S3 under faults: a real HTTP proxy in front of moto answers 503/500, drops
connections or cuts bodies; the backend must retry, give up cleanly with
TransientStorageError, and never expose a half-written object."""
from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from mongolake.storage import NotFoundError, StorageError, TransientStorageError, VersionMismatchError
from mongolake.storage.s3 import S3Storage
from tests.s3util import make_client, s3_options


def _is(method: str, needle: str = ""):
    return lambda m, p: m == method and needle in p


def test_throttling_is_retried_then_succeeds(faulty_s3, fault_proxy):
    fault_proxy.fail(2, status=503, code="SlowDown", match=_is("PUT"))
    faulty_s3.write("a", b"data")
    assert fault_proxy.outcomes("PUT") == ["error", "error", "forward"]
    fault_proxy.fail(3, status=500, code="InternalError", match=_is("GET"))
    assert faulty_s3.read("a") == b"data"
    assert fault_proxy.outcomes("GET") == ["error"] * 3 + ["forward"]


@pytest.mark.parametrize("status,code", [(429, "TooManyRequests"), (503, "ServiceUnavailable"),
                                         (400, "RequestTimeout"), (504, "GatewayTimeout")])
def test_other_transient_errors_are_retried(faulty_s3, fault_proxy, status, code):
    faulty_s3.write("a", b"data")
    fault_proxy.fail(1, status=status, code=code, match=_is("GET"))
    assert faulty_s3.read_range("a", 1, 2) == b"at"


def test_dropped_connections_and_cut_bodies_are_retried(faulty_s3, fault_proxy):
    payload = os.urandom(200_000)
    fault_proxy.fail(1, kind="drop", match=_is("PUT"))
    faulty_s3.write("big", payload)
    fault_proxy.fail(1, kind="drop", match=_is("HEAD"))
    assert faulty_s3.stat("big").size == len(payload)
    fault_proxy.fail(2, kind="truncate", match=_is("GET"))
    before = faulty_s3.bytes_read
    assert faulty_s3.read("big") == payload
    assert faulty_s3.bytes_read - before == len(payload)   # cut bodies are not counted
    assert fault_proxy.outcomes("GET") == ["truncate", "truncate", "forward"]


def test_retries_run_out_with_transient_error(faulty_s3, fault_proxy):
    faulty_s3.write("a", b"data")
    fault_proxy.clear()
    fault_proxy.fail(100, status=503, code="SlowDown")
    with pytest.raises(TransientStorageError) as ei:
        faulty_s3.read("a")
    err = ei.value
    assert "SlowDown" in str(err) and "4 attempts" in str(err) and "s3://" in str(err)
    assert isinstance(err.__cause__, ClientError)
    assert len(fault_proxy.requests) == 4            # max_attempts, no hidden botocore retries
    with pytest.raises(TransientStorageError):
        faulty_s3.list()
    with pytest.raises(TransientStorageError):
        faulty_s3.write_conditional("b", b"x", None)


def test_unreachable_endpoint_is_transient(s3_url):
    import socket

    with socket.socket() as s:   # bound but not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        store = S3Storage.from_url(s3_url, **s3_options(f"http://127.0.0.1:{port}", base_delay=0.001,
                                                         max_attempts=2))
        with pytest.raises(TransientStorageError) as ei:
            store.read("x")
    assert isinstance(ei.value.__cause__, EndpointConnectionError)


def test_non_retryable_errors_are_clear(faulty_s3, fault_proxy, s3_server):
    fault_proxy.fail(1, status=403, code="AccessDenied")
    with pytest.raises(StorageError) as ei:
        faulty_s3.read("a")
    assert not isinstance(ei.value, (TransientStorageError, NotFoundError))
    assert "access denied" in str(ei.value).lower()
    assert len(fault_proxy.requests) == 1             # not retried

    missing_bucket = S3Storage.from_url("s3://no-such-bucket/x", **s3_options(s3_server[0]))
    for op in (lambda: missing_bucket.read("a"), lambda: missing_bucket.write("a", b"x"),
               lambda: missing_bucket.list()):
        with pytest.raises(StorageError) as ei:
            op()
        assert not isinstance(ei.value, (TransientStorageError, NotFoundError))
        assert "no-such-bucket" in str(ei.value) and "does not exist" in str(ei.value)


def test_failed_write_leaves_nothing_half_written(faulty_s3, fault_proxy, s3_server, s3_url):
    raw = make_client(s3_server[0])
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    fault_proxy.fail(100, status=500, code="InternalError", match=_is("PUT"))
    with pytest.raises(TransientStorageError):
        faulty_s3.write("new", b"x" * 10_000)
    with pytest.raises(TransientStorageError):
        faulty_s3.write_conditional("cond", b"y" * 10_000, None)
    fault_proxy.clear()
    assert not faulty_s3.exists("new") and not faulty_s3.exists("cond")
    assert raw.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0
    # replacing an object: a failed write keeps the old one whole
    faulty_s3.write("keep", b"old contents")
    fault_proxy.fail(100, kind="drop", match=_is("PUT"))
    with pytest.raises(TransientStorageError):
        faulty_s3.write("keep", b"new contents that never arrive")
    fault_proxy.clear()
    assert faulty_s3.read("keep") == b"old contents"


def test_ambiguous_conditional_write_that_landed_is_a_success(faulty_s3, fault_proxy):
    # the PUT reaches the store, but the client sees a 500 and retries: the retry meets 412
    fault_proxy.fail(1, kind="after", status=500, code="InternalError", match=_is("PUT"))
    v1 = faulty_s3.write_conditional("log/0", b"commit 0", None)
    assert v1 == faulty_s3.stat("log/0").version and faulty_s3.read("log/0") == b"commit 0"
    assert fault_proxy.outcomes("PUT") == ["after", "forward"]
    fault_proxy.fail(1, kind="after", status=503, code="SlowDown", match=_is("PUT"))
    v2 = faulty_s3.write_conditional("log/0", b"commit 0 v2", v1)
    assert v2 == faulty_s3.stat("log/0").version and faulty_s3.read("log/0") == b"commit 0 v2"


def test_ambiguous_failure_does_not_hide_a_real_conflict(faulty_s3, fault_proxy):
    faulty_s3.write_conditional("log/1", b"someone else's commit", None)
    fault_proxy.fail(1, status=500, code="InternalError", match=_is("PUT"))   # not applied
    with pytest.raises(VersionMismatchError):
        faulty_s3.write_conditional("log/1", b"my commit", None)
    assert faulty_s3.read("log/1") == b"someone else's commit"


def test_multipart_write_completes_only_on_success(s3_server, s3_url, fault_proxy):
    raw = make_client(s3_server[0])
    bucket = s3_url[len("s3://"):].split("/", 1)[0]
    mib = 1024 * 1024
    store = S3Storage.from_url(s3_url, **s3_options(fault_proxy.endpoint_url, base_delay=0.001, max_delay=0.01,
                                                     max_attempts=3, multipart_threshold=6 * mib,
                                                     multipart_chunksize=5 * mib))
    payload = os.urandom(11 * mib)
    fault_proxy.fail(1, status=503, code="SlowDown", match=_is("PUT", "partNumber=2"))
    store.write("big.parquet", payload)
    assert store.read("big.parquet") == payload
    puts = [p for m, p, _ in fault_proxy.requests if m == "PUT"]
    assert len(puts) == 4 and all("partNumber=" in p for p in puts)      # 3 parts + 1 retry
    # a part that keeps failing: nothing becomes visible, the upload is aborted
    fault_proxy.clear()
    fault_proxy.fail(100, status=500, code="InternalError", match=_is("PUT", "partNumber=3"))
    with pytest.raises(TransientStorageError):
        store.write("other.parquet", payload)
    assert not store.exists("other.parquet")
    assert store.read("big.parquet") == payload
    assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert any(m == "DELETE" and "uploadId=" in p for m, p, _ in fault_proxy.requests)
    # completing succeeds on the store but the answer is lost: the retry must not fail
    fault_proxy.clear()
    fault_proxy.fail(1, kind="after", status=500, code="InternalError", match=_is("POST", "uploadId="))
    store.write("third.parquet", payload[::-1])
    assert store.read("third.parquet") == payload[::-1]
    assert fault_proxy.outcomes("POST")[-2:] == ["after", "forward"]


def test_list_and_delete_prefix_retry(faulty_s3, fault_proxy):
    for i in range(12):
        faulty_s3.write(f"d/{i:02d}", b"x")
    faulty_s3.list_page_size = 5
    fault_proxy.fail(1, status=503, code="SlowDown", match=lambda m, p: m == "GET" and "continuation-token" in p)
    assert [f.path for f in faulty_s3.list("d/")] == [f"d/{i:02d}" for i in range(12)]
    fault_proxy.fail(1, status=503, code="SlowDown", match=_is("POST", "delete"))
    assert faulty_s3.delete_prefix("d/") == 12
    assert faulty_s3.list() == []
