"""Where proof bytes live: a directory (the embedded default) or S3-compatible object storage."""

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from app.core.config import ProofStorageBackend, Settings


class ProofStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def keys_older_than(self, cutoff: datetime) -> Iterator[str]: ...

    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        """A URL that serves the object without this API's token; None where there is none."""
        ...


def _safe(key: str) -> str:
    # Keys are made by the service from ids and a uuid; refuse anything that could climb out.
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ValueError("invalid storage key")
    return key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _safe(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader or the orphan sweep never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys_older_than(self, cutoff: datetime) -> Iterator[str]:
        if not self.root.is_dir():
            return
        limit = cutoff.timestamp()
        for path in self.root.rglob("*"):
            if path.is_file() and path.stat().st_mtime < limit:
                # A temp file of a crashed write is an orphan like any other.
                yield path.relative_to(self.root).as_posix()

    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        return None


class S3Storage:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=_safe(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        response = self.client.get_object(Bucket=self.bucket, Key=_safe(key))
        body: bytes = response["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_safe(key))

    def keys_older_than(self, cutoff: datetime) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                modified: datetime = item["LastModified"]
                if modified.astimezone(UTC) < cutoff:
                    yield str(item["Key"])

    def presigned_url(self, key: str, ttl_seconds: int) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": _safe(key)}, ExpiresIn=ttl_seconds
        )
        return url


def s3_client(*, endpoint: str | None, region: str, key_id: str | None, secret: str | None) -> Any:
    # Imported here, by the one configuration that uses it: boto3 and botocore cost every API
    # process ~10 MB of memory at start (docs/performance.md), and most use local storage.
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        # Path-style works with every S3-compatible server (MinIO, R2, moto) and with AWS.
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


@lru_cache(maxsize=8)
def _build(
    backend: ProofStorageBackend,
    root: Path,
    bucket: str | None,
    endpoint: str | None,
    region: str,
    key_id: str | None,
    secret: str | None,
) -> ProofStorage:
    if backend == ProofStorageBackend.S3:
        if not bucket:
            raise RuntimeError("PROOF_STORAGE=s3 needs PROOF_S3_BUCKET")
        client = s3_client(endpoint=endpoint, region=region, key_id=key_id, secret=secret)
        return S3Storage(client, bucket)
    return LocalStorage(root)


def storage_for(settings: Settings) -> ProofStorage:
    """The storage the settings name; one client per configuration (boto3 clients are
    thread-safe and slow to build)."""
    return _build(
        settings.proof_storage,
        settings.proof_storage_dir,
        settings.proof_s3_bucket,
        settings.proof_s3_endpoint_url,
        settings.proof_s3_region,
        settings.proof_s3_access_key_id,
        secret.get_secret_value() if (secret := settings.proof_s3_secret_access_key) else None,
    )
