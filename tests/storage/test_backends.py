"""The object-storage backends directly: streaming put/read, listing, failure atomicity, keys."""

from __future__ import annotations

from datetime import timedelta

import pytest

from builtin_plugins.storage.backends import FileBackend, ObjectNotFound, StorageError, check_key
from builtin_plugins.storage.config import StorageSettings
from builtin_plugins.storage.s3 import S3Backend, S3Location


@pytest.fixture
async def store(storage_kind, storage_url, tmp_path):
    if storage_kind == "file":
        backend = FileBackend(tmp_path / "objects")
    else:
        backend = S3Backend(storage_url, StorageSettings(s3_part_size_bytes=5 * 1024 * 1024))
    await backend.start()
    yield backend
    await backend.close()


async def chunks(total: int, size: int = 100_000):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield bytes([sent % 251]) * n
        sent += n


async def test_put_read_stat_list_delete(store):
    written = await store.put("a/b/one", chunks(12 * 1024 * 1024), "application/octet-stream")
    assert written == 12 * 1024 * 1024  # more than two S3 parts
    await store.put("a/two", chunks(10), "text/plain")
    await store.put("z/three", chunks(0), "text/plain")
    assert (await store.stat("a/b/one")).size == written
    data = b"".join([block async for block in store.read("a/two")])
    assert data == b"\x00" * 10
    big = 0
    async for block in store.read("a/b/one"):
        assert len(block) <= 1024 * 1024
        big += len(block)
    assert big == written
    assert [(i.key, i.size) for i in [x async for x in store.list("a/")]] == [("a/b/one", written), ("a/two", 10)]
    assert [i.key async for i in store.list()] == ["a/b/one", "a/two", "z/three"]
    await store.delete("a/two")
    await store.delete("a/two")  # missing is fine
    with pytest.raises(ObjectNotFound):
        await store.stat("a/two")
    with pytest.raises(ObjectNotFound):
        async for _ in store.read("a/two"):
            pass


async def test_failing_stream_stores_nothing(store, tmp_path):
    async def broken():
        yield b"x" * 6 * 1024 * 1024
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await store.put("half", broken(), "text/plain")
    assert [i.key async for i in store.list()] == []
    if isinstance(store, FileBackend):
        assert list((tmp_path / "objects" / ".tmp").iterdir()) == []


async def test_presigned_urls(store, storage_kind):
    await store.put("p", chunks(3), "text/plain")
    url = await store.presigned_url("p", timedelta(minutes=5), "p.txt", "text/plain")
    assert (url is None) == (storage_kind == "file")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b", ".tmp/x", "a\x00"])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(StorageError):
        check_key(key)


def test_s3_url_and_settings():
    location = S3Location.parse(
        "s3://AK:S%2FK@minio:9000/bucket/some/prefix?region=eu-west-1&secure=false", StorageSettings()
    )
    assert (location.endpoint, location.bucket, location.prefix) == ("minio:9000", "bucket", "some/prefix/")
    assert (location.access_key, location.secret_key, location.region, location.secure) == (
        "AK",
        "S/K",
        "eu-west-1",
        False,
    )
    overridden = S3Location.parse(
        "s3://AK:SK@s3.example.com/b",
        StorageSettings(s3_access_key="other", s3_secret_key="secret", s3_region="us-west-2", s3_secure=True),
    )
    assert (overridden.access_key, overridden.region, overridden.secure, overridden.prefix) == (
        "other",
        "us-west-2",
        True,
        "",
    )
    with pytest.raises(StorageError, match="no bucket"):
        S3Location.parse("s3://AK:SK@host", StorageSettings())
