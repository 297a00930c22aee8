"""Load drivers of the pipeline benchmark, cheap enough not to be the limit being measured.

- ``RawHttp``: keep-alive HTTP/1.1 over asyncio streams, no client library: a request costs
  tens of microseconds of the driver's CPU (httpx costs about ten times more).
- ``paced``: an open-loop sender: request ``i`` is due at ``start + i / rate`` whatever the
  answers do, on up to ``connections`` connections; a request sent late (every connection
  busy) is counted, so a fixed-rate phase can show that its offered rate really was fixed.
- ``wrk_conversions`` / ``wrk_baseline``: ``wrk`` (C, epoll) for the full-speed phase and for
  the driver's ceiling against ``/healthz``.

With several replicas of a service the load is split between them: ``RoundRobinHttp`` sends
request after request to the next replica, ``wrk_conversions`` runs one ``wrk`` per replica
with its share of the bodies and of the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

WRK = "/usr/bin/wrk"
LUA = Path(__file__).with_name("pipeline_conversions.lua")

T = TypeVar("T")


def round_robin(items: Sequence[T], n: int) -> list[list[T]]:
    """``items`` dealt to ``n`` parts in turn: sizes differ by one at most, order kept."""
    return [list(items[i::n]) for i in range(n)]


def shares(total: int, n: int) -> list[int]:
    """``total`` (connections) split in ``n`` near-equal parts, none below one."""
    return [max(1, total // n + (1 if i < total % n else 0)) for i in range(n)]


class RawHttp:
    """A small pool of keep-alive connections to one ``http://host:port``."""

    def __init__(self, base_url: str, connections: int, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.size = connections
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._opened = 0

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle.empty() and self._opened < self.size:
            self._opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self._idle.get()

    def busy(self) -> bool:
        return self._idle.empty() and self._opened >= self.size

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        reader, writer = await self._connection()
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if match is None:
                raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
            answer = await reader.readexactly(int(match.group(1)))
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        self._idle.put_nowait((reader, writer))
        return status, answer

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


class RoundRobinHttp:
    """The connections of a ``RawHttp`` per replica, shared out; each request goes to the next
    replica in turn (a load balancer's round robin)."""

    def __init__(self, base_urls: Sequence[str], connections: int, headers: dict[str, str]):
        self.pools = [
            RawHttp(url, size, headers)
            for url, size in zip(base_urls, shares(connections, len(base_urls)), strict=True)
        ]
        self._turn = 0

    def busy(self) -> bool:
        """Every connection of every replica is waiting for an answer."""
        return all(pool.busy() for pool in self.pools)

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        pool = self.pools[self._turn % len(self.pools)]
        self._turn += 1
        return await pool.post_json(path, body)

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()


async def post_all(
    http: RawHttp | RoundRobinHttp,
    path: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int,
) -> list[dict[str, Any]]:
    """Post every body as fast as the server answers (set-up, not measured)."""
    results: list[dict[str, Any]] = [{} for _ in bodies]
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(bodies):
            i = position
            position += 1
            status, answer = await http.post_json(path, json.dumps(bodies[i]).encode())
            if status not in (200, 201):
                raise RuntimeError(f"POST {path} -> {status}: {answer[:300]!r}")
            results[i] = json.loads(answer)

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return results


@dataclass
class PacedResult:
    answers: list[dict[str, Any]]
    sent_s: float  # first due time -> last request sent
    late: int  # requests sent more than 10 ms after their due time
    http_ms: list[float]  # send -> answer of each request


async def paced(
    http: RawHttp | RoundRobinHttp, path: str, bodies: Sequence[dict[str, Any]], rate: float
) -> PacedResult:
    """Open loop: one request every ``1/rate`` s, whether or not earlier ones were answered."""
    answers: list[dict[str, Any]] = [{} for _ in bodies]
    http_ms: list[float] = [0.0] * len(bodies)
    late = 0
    last_sent = 0.0

    async def one(i: int) -> None:
        sent = time.perf_counter()
        status, answer = await http.post_json(path, json.dumps(bodies[i]).encode())
        if status not in (200, 201):
            raise RuntimeError(f"POST {path} -> {status}: {answer[:300]!r}")
        http_ms[i] = (time.perf_counter() - sent) * 1000
        answers[i] = json.loads(answer)

    start = time.perf_counter()
    tasks = []
    for i in range(len(bodies)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.perf_counter() - due > 0.010 or http.busy():
            late += 1
        tasks.append(asyncio.create_task(one(i)))
        last_sent = time.perf_counter()
    await asyncio.gather(*tasks)
    return PacedResult(answers, last_sent - start, late, http_ms)


def _wrk(args: list[str], env: dict[str, str], timeout_s: float) -> str:
    done = subprocess.run(
        [WRK, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-500:]}")
    if done.stderr.strip():
        print(done.stderr.strip()[-1000:])
    return done.stdout


def wrk_baseline(url: str, seconds: int, threads: int, connections: int) -> float:
    """Answers per second that wrk gets from ``url`` (the driver's + server's HTTP ceiling)."""
    out = _wrk([f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url], {}, seconds + 30)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"no rate in wrk output: {out}")
    return float(match.group(1))


async def wrk_conversions(
    base_urls: Sequence[str],
    key: str,
    bodies: Sequence[dict[str, Any]],
    threads: int,
    connections: int,
    all_accepted: Callable[[], Awaitable[bool]],
    timeout_s: int = 300,
) -> list[str]:
    """Post each conversion once, as fast as attribution answers, until ``all_accepted``: one
    ``wrk`` per replica in ``base_urls`` with its share of the bodies and connections, all at
    once; returns each wrk's summary line (wrk runs for its duration unless interrupted)."""
    paths: list[str] = []
    procs: list[asyncio.subprocess.Process] = []
    try:
        for url, part, size in zip(
            base_urls,
            round_robin(bodies, len(base_urls)),
            shares(connections, len(base_urls)),
            strict=True,
        ):
            with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                f.write("\n".join(json.dumps(b) for b in part) + "\n")
                paths.append(f.name)
            procs.append(
                await asyncio.create_subprocess_exec(
                    WRK,
                    f"-t{min(threads, size)}",
                    f"-c{size}",
                    f"-d{timeout_s}s",
                    "--timeout",
                    "30s",
                    "-s",
                    str(LUA),
                    url,
                    env={
                        **os.environ,
                        "WRK_BODIES": f.name,
                        "WRK_THREADS": str(min(threads, size)),
                        "WRK_KEY": key,
                    },
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        while not await all_accepted():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 0.05)
                break  # every wrk ended by itself (its duration)
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        outputs = [await asyncio.wait_for(proc.communicate(), 30) for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        for path in paths:
            os.unlink(path)
    summaries = []
    for raw_out, raw_err in outputs:
        out, err = raw_out.decode(), raw_err.decode()
        if err.strip():
            print(err.strip()[-1000:])
        lines = [line for line in out.splitlines() if line.startswith("wrk:")]
        summaries.append(lines[-1] if lines else out)
    return summaries
