"""A real S3-compatible HTTP server for the tests: moto's standalone server, in its own process."""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.services.proof_storage import S3Storage, s3_client
from tests.live import free_port

KEY_ID = SECRET = "testing"  # moto accepts any credentials; real ones must never be in tests
REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def client_for(endpoint: str) -> Any:
    return s3_client(endpoint=endpoint, region=REGION, key_id=KEY_ID, secret=SECRET)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    bucket = f"proofs-{uuid.uuid4().hex[:12]}"
    client_for(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_storage(s3_endpoint: str, s3_bucket: str) -> S3Storage:
    return S3Storage(client_for(s3_endpoint), s3_bucket)
