"""The ``s3://`` backend: MinIO or any S3 endpoint through the ``minio`` client.

minio is a blocking client, so every call runs in a worker thread; uploads stream through
:class:`SyncReader` one part at a time (multipart upload of unknown length), downloads are read
from the HTTP response in blocks. The bucket is created at start-up when missing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error

from builtin_plugins.storage.backends import ObjectInfo, ObjectNotFound, StorageError, check_key
from builtin_plugins.storage.config import StorageSettings
from builtin_plugins.storage.streams import BLOCK, SyncReader

MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}
LIST_BATCH = 1000


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where objects live: endpoint, credentials, bucket and key prefix, from URL plus settings."""

    endpoint: str
    bucket: str
    prefix: str
    access_key: str | None
    secret_key: str | None
    region: str
    secure: bool

    @classmethod
    def parse(cls, url: str, settings: StorageSettings) -> S3Location:
        parts = urlsplit(url)
        path = parts.path.strip("/")
        bucket, _, prefix = path.partition("/")
        if not bucket:
            raise StorageError("TD_STORAGE_URL names no bucket: expected s3://key:secret@host:port/bucket[/prefix]")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secure = settings.s3_secure
        if secure is None:
            secure = query.get("secure", "true").lower() not in ("false", "0", "no")
        access = settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
        secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
        return cls(
            endpoint=parts.netloc.rsplit("@", 1)[-1],
            bucket=bucket,
            prefix=f"{prefix}/" if prefix else "",
            access_key=access or (unquote(parts.username) if parts.username else None),
            secret_key=secret or (unquote(parts.password) if parts.password else None),
            region=settings.s3_region or query.get("region", "us-east-1"),
            secure=secure,
        )


def _http_client(settings: StorageSettings) -> urllib3.PoolManager:
    timeout = urllib3.Timeout(connect=10, read=120)
    retries = urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504])
    if not settings.s3_verify_tls:
        return urllib3.PoolManager(timeout=timeout, retries=retries, maxsize=20, cert_reqs=ssl.CERT_NONE)
    ca = str(settings.s3_ca_file) if settings.s3_ca_file else certifi.where()
    return urllib3.PoolManager(timeout=timeout, retries=retries, maxsize=20, cert_reqs="CERT_REQUIRED", ca_certs=ca)


class S3Backend:
    """Objects in one S3 bucket, under an optional key prefix."""

    scheme = "s3"

    def __init__(self, url: str, settings: StorageSettings) -> None:
        self.location = loc = S3Location.parse(url, settings)
        self.settings = settings
        self._http = _http_client(settings)
        self.client = Minio(
            loc.endpoint,
            access_key=loc.access_key,
            secret_key=loc.secret_key,
            secure=loc.secure,
            region=loc.region,
            http_client=self._http,
        )
        self.signer = self.client
        if settings.s3_public_url:
            public = urlsplit(settings.s3_public_url)
            self.signer = Minio(
                public.netloc,
                access_key=loc.access_key,
                secret_key=loc.secret_key,
                secure=public.scheme == "https",
                region=loc.region,
            )

    def _name(self, key: str) -> str:
        return self.location.prefix + check_key(key)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except S3Error as exc:
            if exc.code in MISSING:
                raise ObjectNotFound(str(args[1]) if len(args) > 1 else exc.code) from None
            raise StorageError(f"S3 {exc.code}: {exc.message}") from exc

    async def start(self) -> None:
        bucket = self.location.bucket
        if not await self._call(self.client.bucket_exists, bucket):
            if not self.settings.s3_create_bucket:
                raise StorageError(f"bucket {bucket!r} does not exist and s3_create_bucket is off")
            await self._call(self.client.make_bucket, bucket, self.location.region)

    async def close(self) -> None:
        await asyncio.to_thread(self._http.clear)

    async def check(self) -> None:
        if not await self._call(self.client.bucket_exists, self.location.bucket):
            raise StorageError(f"bucket {self.location.bucket!r} is missing")

    async def put(self, key: str, chunks: AsyncIterable[bytes], content_type: str) -> int:
        reader = SyncReader(chunks, asyncio.get_running_loop(), exact=False)
        await self._call(
            self.client.put_object,
            self.location.bucket,
            self._name(key),
            reader,
            -1,
            content_type=content_type,
            part_size=self.settings.s3_part_size_bytes,
            num_parallel_uploads=1,
        )
        return reader.bytes_read

    async def read(self, key: str) -> AsyncIterator[bytes]:
        response = await self._call(self.client.get_object, self.location.bucket, self._name(key))
        try:
            while True:
                block = await asyncio.to_thread(response.read, BLOCK)
                if not block:
                    return
                yield block
        finally:
            response.close()
            await asyncio.to_thread(response.release_conn)

    async def stat(self, key: str) -> ObjectInfo:
        result = await self._call(self.client.stat_object, self.location.bucket, self._name(key))
        return ObjectInfo(key, int(result.size or 0))

    async def delete(self, key: str) -> None:
        try:
            await self._call(self.client.remove_object, self.location.bucket, self._name(key))
        except ObjectNotFound:
            return

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        listing = self.client.list_objects(self.location.bucket, prefix=self.location.prefix + prefix, recursive=True)
        skip = len(self.location.prefix)

        def batch() -> list[ObjectInfo]:
            found = []
            for item in listing:
                found.append(ObjectInfo(str(item.object_name)[skip:], int(item.size or 0)))
                if len(found) >= LIST_BATCH:
                    break
            return found

        while True:
            items = await self._call(batch)
            for info in items:
                yield info
            if len(items) < LIST_BATCH:
                return

    async def presigned_url(self, key: str, expires: timedelta, filename: str, content_type: str) -> str | None:
        disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        return await self._call(
            self.signer.presigned_get_object,
            self.location.bucket,
            self._name(key),
            expires=expires,
            response_headers={"response-content-disposition": disposition, "response-content-type": content_type},
        )
