"""Load generators: open loop (fixed arrival rate) and closed loop (saturation), Python or wrk.

The client runs on the same two cores as the servers, so it takes CPU from them: the ratios to
the reference ceiling are fair (both face the same client), absolute numbers are a floor.
Latency in the open loop is measured from each request's scheduled start, so a stalled server
shows up as latency instead of silently lowering the offered rate (no coordinated omission).
"""

import asyncio
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.rawhttp import ClientError, RawClient


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    duration: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    note: str = ""
    tool: str = "python"
    # wrk reports percentiles itself; Python ones are computed from latencies_ms.
    fixed_percentiles: dict[int, float] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def pct(self, p: int) -> float:
        if self.fixed_percentiles is not None:
            return self.fixed_percentiles[p]
        if not self.latencies_ms:
            return float("nan")
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, round(p / 100 * (len(data) - 1)))]

    def merge(self, other: "Result") -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.duration = max(self.duration, other.duration)
        self.latencies_ms += other.latencies_ms
        for k, v in other.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v


def client(base_url: str, connections: int) -> RawClient:
    return RawClient(base_url, connections)


async def _one(http: RawClient, req: Req, result: Result, ok: Sequence[int]) -> int:
    try:
        response = await http.request(req.method, req.path, headers=req.headers, json_body=req.body)
        status = response.status_code
    except ClientError:
        status = 0
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status not in ok:
        result.errors += 1
    return status


async def open_loop(
    base_url: str,
    name: str,
    requests: Sequence[Req],
    *,
    rate: float,
    duration: float,
    connections: int = 200,
    ok: Sequence[int] = (200,),
) -> Result:
    result = Result(name)
    total = int(rate * duration)
    rng = random.Random(1)
    async with client(base_url, connections) as http:
        started = time.perf_counter()

        async def fire(i: int) -> None:
            scheduled = started + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            await _one(http, rng.choice(requests), result, ok)
            result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
            result.requests += 1

        tasks = [asyncio.create_task(fire(i)) for i in range(total)]
        await asyncio.wait(tasks, timeout=duration + 15)
        for task in tasks:
            task.cancel()
        result.duration = time.perf_counter() - started
    return result


async def _closed(
    base_url: str,
    requests: Sequence[Req],
    concurrency: int,
    duration: float,
    seed: int,
    ok: Sequence[int],
) -> Result:
    result = Result("closed")
    rng = random.Random(seed)
    async with client(base_url, concurrency) as http:
        started = time.perf_counter()
        deadline = started + duration

        async def user() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await _one(http, rng.choice(requests), result, ok)
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.requests += 1

        await asyncio.gather(*(user() for _ in range(concurrency)))
        result.duration = time.perf_counter() - started
    return result


def _closed_process(args: tuple[str, list[Req], int, float, int, list[int]]) -> Result:
    base_url, requests, concurrency, duration, seed, ok = args
    return asyncio.run(_closed(base_url, requests, concurrency, duration, seed, ok))


def closed_loop_python(
    base_url: str,
    name: str,
    requests: Sequence[Req],
    *,
    concurrency: int,
    duration: float,
    processes: int = 2,
    ok: Sequence[int] = (200,),
) -> Result:
    per = max(1, concurrency // processes)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        parts = pool.map(
            _closed_process,
            [
                (base_url, list(requests), per, duration, seed, list(ok))
                for seed in range(processes)
            ],
        )
    result = Result(name, tool=f"python x{processes} processes")
    for part in parts:
        result.merge(part)
    return result


WRK_SCRIPT = r"""
local reqs = {}
local n = 0
init = function(args)
  local f = io.open(args[1], "r")
  for line in f:lines() do
    local path, auth = line:match("^(%S+)%s+(%S+)$")
    n = n + 1
    reqs[n] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. auth})
  end
  f:close()
  math.randomseed(os.time() + math.floor(os.clock() * 100000))
end
request = function()
  return reqs[math.random(n)]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %d, \"duration_us\": %d, \"p50\": %f, \"p95\": %f, \"p99\": %f, " ..
    "\"connect\": %d, \"read\": %d, \"write\": %d, \"status\": %d, \"timeout\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def wrk_path() -> str | None:
    """wrk if installed; installs it with apt when running as root and it is missing."""
    if os.environ.get("BENCH_NO_WRK"):
        return None
    found = shutil.which("wrk")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; trying `apt-get install -y wrk` ...", flush=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=180,
            check=False,
        )
    return shutil.which("wrk")


def closed_loop_wrk(
    wrk: str,
    base_url: str,
    name: str,
    requests: Sequence[Req],
    *,
    connections: int,
    duration: float,
) -> Result:
    """GETs only, each with a bearer token (the Lua script cycles through them at random)."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "script.lua"
        script.write_text(WRK_SCRIPT)
        reqs = Path(tmp) / "requests.txt"
        lines = []
        for req in requests:
            assert req.method == "GET"
            lines.append(f"{req.path} {req.headers['Authorization'].removeprefix('Bearer ')}")
        reqs.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{int(duration)}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url,
                "--",
                str(reqs),
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        name,
        requests=data["requests"],
        errors=errors,
        duration=data["duration_us"] / 1e6,
        tool=f"wrk -t2 -c{connections}",
        fixed_percentiles={50: data["p50"] / 1000, 95: data["p95"] / 1000, 99: data["p99"] / 1000},
    )
