"""S3-specific behaviour: configuration from options and AWS_* variables, ranged
reads of Parquet footers, the bytes_read counter."""
from __future__ import annotations

import io
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mongolake.storage import open_storage
from mongolake.storage.s3 import S3Storage
from tests.s3util import make_client, s3_options

_AWS_VARS = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_PROFILE"]


@pytest.fixture
def clean_env(monkeypatch):
    for var in _AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    # never let boto's credential chain ask an instance-metadata service (not loopback)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    return monkeypatch


def test_from_url_parses_bucket_and_prefix():
    opts = s3_options("http://127.0.0.1:9")
    s = S3Storage.from_url("s3://bkt/some/prefix/", **opts)
    assert (s.bucket, s.prefix, s.url) == ("bkt", "some/prefix", "s3://bkt/some/prefix")
    s = S3Storage.from_url("s3://bkt", **opts)
    assert (s.bucket, s.prefix, s.url) == ("bkt", "", "s3://bkt")
    with pytest.raises(TypeError):
        S3Storage.from_url("s3://bkt", no_such_option=1)


def test_configuration_from_environment(clean_env, s3_server):
    endpoint, bucket = s3_server
    clean_env.setenv("AWS_ENDPOINT_URL", endpoint)
    clean_env.setenv("AWS_ACCESS_KEY_ID", "env-key")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    clean_env.setenv("AWS_MAX_ATTEMPTS", "3")
    s = open_storage(f"s3://{bucket}/env-test")
    assert s.endpoint_url == endpoint and s.region == "eu-west-1" and s.max_attempts == 3
    creds = s._client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == ("env-key", "env-secret")
    s.write("x", b"via env")
    assert make_client(endpoint).get_object(Bucket=bucket, Key="env-test/x")["Body"].read() == b"via env"
    clean_env.setenv("AWS_REGION", "ap-south-1")            # AWS_REGION wins over AWS_DEFAULT_REGION
    clean_env.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")   # the S3-specific one wins
    s2 = open_storage(f"s3://{bucket}/env-test")
    assert s2.region == "ap-south-1" and s2.endpoint_url == "http://127.0.0.1:1"
    # explicit options win over the environment
    s3 = open_storage(f"s3://{bucket}/env-test", endpoint_url=endpoint, region="us-east-2",
                      access_key_id="opt-key", secret_access_key="opt-secret", session_token="tok")
    creds = s3._client._request_signer._credentials
    assert (s3.endpoint_url, s3.region) == (endpoint, "us-east-2")
    assert (creds.access_key, creds.secret_key, creds.token) == ("opt-key", "opt-secret", "tok")


def test_addressing_style(clean_env):
    def style(**kw):
        return S3Storage("bkt", access_key_id="k", secret_access_key="s", **kw)._client.meta.config.s3[
            "addressing_style"]
    assert style(endpoint_url="http://minio:9000") == "path"          # S3-compatible: path-style
    assert style(endpoint_url="https://acc.r2.cloudflarestorage.com", path_style=False) == "virtual"
    assert style(endpoint_url="https://acc.r2.cloudflarestorage.com", path_style="true") == "path"
    assert style(region="us-east-1") == "auto"                       # AWS: boto's choice
    assert style(endpoint_url="https://s3.eu-west-1.amazonaws.com") == "auto"
    # botocore's own retries are off: ours decide and report
    plain = S3Storage("bkt", region="us-east-1", access_key_id="k", secret_access_key="s")
    assert plain._client.meta.config.retries["total_max_attempts"] == 1


def _parquet_bytes(rows: int) -> tuple[bytes, pa.Table]:
    table = pa.table({"k": pa.array(range(rows), pa.int64()),
                      "blob": pa.array([os.urandom(200) for _ in range(rows)], pa.binary())})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=rows // 8, compression="none")
    return buf.getvalue(), table


def test_parquet_footer_read_fetches_only_the_tail(s3_storage):
    data, table = _parquet_bytes(8000)                  # ~1.7 MB, 8 row groups
    s3_storage.write("t/part.parquet", data)
    before_bytes, before_gets = s3_storage.bytes_read, s3_storage.get_requests
    with s3_storage.open_input("t/part.parquet") as f:
        meta = pq.ParquetFile(f).metadata
    footer_bytes = s3_storage.bytes_read - before_bytes
    assert meta.num_rows == 8000 and meta.num_row_groups == 8
    assert 0 < footer_bytes < len(data) // 10, (footer_bytes, len(data))
    assert s3_storage.get_requests - before_gets <= 3
    # one row group: more than the footer, far less than the file
    before_bytes = s3_storage.bytes_read
    with s3_storage.open_input("t/part.parquet") as f:
        rg = pq.ParquetFile(f).read_row_group(5)
    one_group = s3_storage.bytes_read - before_bytes
    assert rg.column("k").to_pylist() == list(range(5000, 6000))
    assert rg.column("blob").to_pylist() == table.column("blob").to_pylist()[5000:6000]
    assert len(data) // 8 < one_group < len(data) // 3, (one_group, len(data))


def test_bytes_read_counts_whole_and_ranged_gets(s3_storage):
    s3_storage.write("a", b"0123456789")
    start = s3_storage.bytes_read
    assert s3_storage.read_range("a", 2, 3) == b"234"
    assert s3_storage.read("a") == b"0123456789"
    s3_storage.stat("a")                                # HEAD fetches no body
    assert s3_storage.bytes_read - start == 13


def test_folder_markers_and_foreign_keys_are_not_listed(s3_storage, s3_server, s3_url):
    bucket, prefix = s3_url[len("s3://"):].split("/", 1)
    raw = make_client(s3_server[0])
    raw.put_object(Bucket=bucket, Key=f"{prefix}/folder/", Body=b"")     # console-made folder marker
    raw.put_object(Bucket=bucket, Key=f"{prefix}/bad//key", Body=b"")    # not a valid MongoLake path
    raw.put_object(Bucket=bucket, Key=f"{prefix}-sibling/x", Body=b"")   # beside the prefix, not below
    s3_storage.write("folder/real", b"r")
    assert [f.path for f in s3_storage.list()] == ["folder/real"]
    assert s3_storage.delete_prefix("") == 1


def test_large_listing_paginates(s3_storage):
    s3_storage.list_page_size = 10
    for i in range(35):
        s3_storage.write(f"many/{i:03d}", b"")
    got = s3_storage.list("many/")
    assert [f.path for f in got] == [f"many/{i:03d}" for i in range(35)]
    assert s3_storage.delete_prefix("many/") == 35 and s3_storage.list() == []
