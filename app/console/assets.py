"""The console's static files: read once, served by content hash, cached long, with SRI."""

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    integrity: str  # the SRI value the page's <script>/<link> carries
    version: str  # part of the URL: a changed file is a new URL, so caches never serve it stale


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


def vendored() -> dict[str, dict[str, str]]:
    """The pinned third-party files with their version and recorded integrity (vendor.json)."""
    data: dict[str, dict[str, str]] = json.loads((STATIC_DIR / "vendor.json").read_text())
    return data


@lru_cache
def assets() -> dict[str, Asset]:
    recorded = vendored()
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if media_type is None:
            continue
        body = path.read_bytes()
        # A vendored file is served under the hash recorded when it was pinned: if the file on
        # disk ever differs, the browser refuses it rather than run something unreviewed.
        integrity = recorded.get(path.name, {}).get("integrity") or sri(body)
        version = hashlib.sha256(body).hexdigest()[:12]
        found[path.name] = Asset(path.name, body, media_type, integrity, version)
    return found
