"""open_storage picks the backend from the URL."""
from __future__ import annotations

import pytest

from mongolake.storage import FileStorage, MemoryStorage, open_storage
from mongolake.storage.s3 import S3Storage
from tests.s3util import s3_options


def test_memory_urls_share_one_store_per_name():
    a = open_storage("memory://open-storage-test-a")
    assert isinstance(a, MemoryStorage)
    a.write("x", b"1")
    assert open_storage("memory://open-storage-test-a").read("x") == b"1"
    assert not open_storage("memory://open-storage-test-b").exists("x")


def test_plain_path_and_file_url(tmp_path):
    p = open_storage(str(tmp_path / "plain"))
    assert isinstance(p, FileStorage) and p.root == str(tmp_path / "plain")
    p.write("f", b"data")
    assert (tmp_path / "plain" / "f").read_bytes() == b"data"
    f = open_storage(f"file://{tmp_path / 'plain'}")
    assert isinstance(f, FileStorage) and f.read("f") == b"data"
    assert f.local_path("f") == str(tmp_path / "plain" / "f")
    nofsync = open_storage(str(tmp_path / "x"), fsync=False)
    assert nofsync.fsync is False


def test_s3_url():
    s = open_storage("s3://my-bucket/tables/prod", **s3_options("http://127.0.0.1:9"))
    assert isinstance(s, S3Storage)
    assert (s.bucket, s.prefix, s.url) == ("my-bucket", "tables/prod", "s3://my-bucket/tables/prod")
    assert s.local_path("a") is None


@pytest.mark.parametrize("url", ["http://host/x", "gs://bucket/x", "hdfs://nn/x", "ftp://h/x"])
def test_unknown_scheme_is_refused(url):
    with pytest.raises(ValueError):
        open_storage(url)
