"""CPU per request and the whole-list scenario of `make bench` (issue 12).

CPU per request: N sequential keep-alive requests on one connection, the API processes' CPU time
from /proc before and after, divided by N; the median of 3 blocks. One connection stays on one
worker process, so a conditional GET finds the ETag that process issued.

Whole list: GET /v1/orders without `limit` as an ordinary store's owner (every order of the
store, streamed) against the ceiling's /ref/store_orders, which selects and serialises the
same rows with the same names, 4 clients in a closed loop for a fixed time.
"""

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import servers
from bench.rawhttp import RawClient, RawResponse


@dataclass
class Cost:
    name: str
    target: str
    ms: float
    status: int
    blocks: list[float]


def _cpu(server: servers.Server) -> float:
    return sum(servers.cpu_seconds(pid) for pid in server.workers())


async def _sequential(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    n: int,
    prepare: Callable[[RawResponse], dict[str, str]] | None,
    server: servers.Server,
) -> tuple[list[float], int]:
    blocks: list[float] = []
    status = 0
    async with RawClient(base_url, 1) as http:
        extra: dict[str, str] = {}
        if prepare is not None:
            extra = prepare(await http.request(method, path, headers=headers))
        for _ in range(20):  # warm: the principal cache, the statement cache
            await http.request(method, path, headers={**headers, **extra})
        for _ in range(3):
            before = _cpu(server)
            for _ in range(n):
                response = await http.request(method, path, headers={**headers, **extra})
                status = response.status_code
            blocks.append((_cpu(server) - before) / n * 1000)
    return blocks, status


def cpu_per_request(
    server: servers.Server,
    name: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    n: int,
    prepare: Callable[[RawResponse], dict[str, str]] | None = None,
) -> Cost:
    blocks, status = asyncio.run(
        _sequential(server.base_url, method, path, headers, n, prepare, server)
    )
    return Cost(name, server.name, statistics.median(blocks), status, blocks)


def if_none_match(first: RawResponse) -> dict[str, str]:
    tag = first.headers.get("etag")
    return {"If-None-Match": tag} if tag else {}


async def _closed(
    base_url: str, path: str, headers: dict[str, str], seconds: float
) -> tuple[int, int, float, int, list[float]]:
    done = rows = errors = 0
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    async with RawClient(base_url, 4, timeout=60) as http:

        async def worker() -> None:
            nonlocal done, rows, errors
            while time.monotonic() < deadline:
                sent = time.monotonic()
                response = await http.get(path, headers=headers)
                latencies.append((time.monotonic() - sent) * 1000)
                if response.status_code != 200:
                    errors += 1
                    continue
                done += 1
                rows = response.content.count(b'"id":')

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(4)))
        return done, rows, time.monotonic() - started, errors, latencies


def whole_list(
    server: servers.Server, path: str, headers: dict[str, str], seconds: float
) -> tuple[float, int, int, list[float]]:
    """(lists per second, rows per list, errors, latencies in ms)."""
    done, rows, elapsed, errors, latencies = asyncio.run(
        _closed(server.base_url, path, headers, seconds)
    )
    return done / elapsed if elapsed else 0.0, rows, errors, latencies
