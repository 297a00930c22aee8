"""Tracked requests per second against the real attribution service.

Starts the whole stack as real processes (embedded PostgreSQL and broker, the four services,
as in the e2e tests; TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS use other servers),
creates a program through links (velocity limits off, so the load is not flagged), a key and
some participants, then:

1. baseline: C concurrent clients call ``GET /v1/clicks/{id}`` (key check + one indexed read,
   a 404) for S seconds: what the HTTP stack, auth and pool allow;
2. tracked: C concurrent clients each loop signup (typed code, email, IP, device: every fraud
   rule evaluated) then conversion (qualification, outbox event) for S seconds;
3. clicks: K ``link.clicked`` events produced straight onto the topic, timed until the running
   attribution consumer has stored them all.

Prints requests per second, latency percentiles and the ratio tracked / baseline.

    python -m bench.attribution_load [--clients 16] [--seconds 15] [--clicks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from devstack.journey import Urls, eventually
from devstack.stack import Stack, StackConfig, database_url_for
from shared.contracts import LinkClicked
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.settings import ServiceSettings

PARTICIPANTS = 50


async def _setup(urls: Urls, admin_key: str) -> tuple[str, str, list[tuple[str, str]]]:
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(timeout=30) as http:
        program = (
            await http.post(
                f"{urls.links}/v1/programs",
                headers=admin,
                json={
                    "name": "load",
                    "definition": {
                        "destination_url": "https://shop.example.com/",
                        "allowed_hosts": ["shop.example.com"],
                        "rewards": {"referrer": {"amount": 100, "unit": "USD"}},
                        "fraud": {"velocity": {"per_referrer_hour": None,
                                               "per_referrer_day": None, "per_ip_day": None}},
                    },
                },
            )
        ).json()  # fmt: skip
        pid = program["id"]
        key = (await http.post(f"{urls.links}/v1/programs/{pid}/keys", headers=admin)).json()
        server = {"Authorization": f"Bearer {key['secret_key']}"}
        participants = []
        for i in range(PARTICIPANTS):
            p = (
                await http.post(
                    f"{urls.links}/v1/programs/{pid}/participants",
                    headers=server,
                    json={"external_user_id": f"load-{i}-{uuid.uuid4().hex[:6]}"},
                )
            ).json()
            participants.append((p["id"], p["code"]))
        return pid, key["secret_key"], participants


async def _wait_known(stack: Stack, n: int) -> None:
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        await eventually(
            lambda: _at_least(conn, "SELECT count(*) FROM participants", n), timeout_s=120
        )
        await eventually(lambda: _at_least(conn, "SELECT count(*) FROM api_keys", 1))
    finally:
        await conn.close()


async def _at_least(conn: asyncpg.Connection, sql: str, n: int) -> bool:
    return bool(await conn.fetchval(sql) >= n)


async def _run(
    clients: int, seconds: float, step: Callable[[httpx.AsyncClient, int], Awaitable[int]]
) -> tuple[int, list[float], int]:
    """Run ``step`` in a loop on ``clients`` connections; (requests, latencies, errors)."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0}

    async def client(n: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            i = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                done = await step(http, n * 10_000_000 + i)
                latencies.append((time.perf_counter() - started) / max(done, 1))
                if done < 0:
                    counts["errors"] += 1
                counts["requests"] += abs(done)
                i += 1

    await asyncio.gather(*[client(n) for n in range(clients)])
    return counts["requests"], latencies, counts["errors"]


def _report(name: str, requests: int, seconds: float, latencies: list[float], errors: int) -> float:
    rps = requests / seconds
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 2 else [0.0] * 99
    print(
        f"{name:<10} {requests:>7} requests in {seconds:.1f}s = {rps:8.1f} req/s   "
        f"p50 {q[49] * 1000:6.1f} ms  p95 {q[94] * 1000:6.1f} ms  errors {errors}"
    )
    return rps


async def _clicks(
    stack: Stack, program_id: str, participants: list[tuple[str, str]], k: int
) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=stack.bootstrap, kafka_enable_idempotence=not stack.embedded_broker
    )
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    conn = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
    try:
        before = await conn.fetchval("SELECT count(*) FROM clicks")
        started = time.perf_counter()
        for i in range(k):
            pid, code = participants[i % len(participants)]
            event = LinkClicked(
                click_id=uuid.uuid4(), code=code, program_id=uuid.UUID(program_id),
                participant_id=uuid.UUID(pid), clicked_at=datetime.now(UTC),
                visitor_hash=uuid.uuid4().hex,
            )  # fmt: skip
            env = envelope_for(event, "/bench")
            await producer.send(
                event.TOPIC, value=env.data, key=code.encode(), headers=env.headers()
            )
        await producer.flush()
        produced = time.perf_counter() - started
        await eventually(
            lambda: _at_least(conn, "SELECT count(*) FROM clicks", before + k), timeout_s=900
        )
        elapsed = time.perf_counter() - started
        print(
            f"clicks     {k:>7} link.clicked stored in {elapsed:.1f}s = {k / elapsed:8.1f} clicks/s"
            f"   (producing alone took {produced:.1f}s)"
        )
    finally:
        await conn.close()
        await producer.stop()


async def bench(stack: Stack, clients: int, seconds: float, clicks: int) -> None:
    urls = Urls.local(stack.config.ports)
    program_id, key, participants = await _setup(urls, stack.admin_api_key)
    await _wait_known(stack, len(participants))
    auth = {"Authorization": f"Bearer {key}"}
    base = f"{urls.attribution}/v1"

    async def baseline(http: httpx.AsyncClient, _: int) -> int:
        r = await http.get(f"{base}/clicks/{uuid.uuid4()}", headers=auth)
        return 1 if r.status_code == 404 else -1

    async def tracked(http: httpx.AsyncClient, i: int) -> int:
        customer = f"c-{i}"
        _, code = random.choice(participants)
        s = await http.post(
            f"{base}/signups",
            headers=auth,
            json={"customer_id": customer, "referral_code": code,
                  "email": f"{customer}@example.com", "ip": f"10.{i % 250}.{i // 250 % 250}.9",
                  "device_id": f"d-{i}"},
        )  # fmt: skip
        c = await http.post(
            f"{base}/conversions",
            headers={**auth, "Idempotency-Key": f"order-{i}"},
            json={"customer_id": customer, "order_id": f"order-{i}", "amount": 1999,
                  "currency": "USD"},
        )  # fmt: skip
        ok = s.status_code == 201 and c.status_code == 201
        return 2 if ok else -2

    await _run(clients, 2, baseline)  # warm-up: connections, prepared statements
    base_rps = _report("baseline", *_with_time(await _run(clients, seconds, baseline), seconds))
    tracked_rps = _report("tracked", *_with_time(await _run(clients, seconds, tracked), seconds))
    print(f"ratio tracked/baseline: {tracked_rps / base_rps:.2f}  "
          f"(signup+conversion pairs/s: {tracked_rps / 2:.1f}, {clients} clients)")  # fmt: skip
    if clicks:
        await _clicks(stack, program_id, participants, clicks)


def _with_time(
    result: tuple[int, list[float], int], seconds: float
) -> tuple[int, float, list[float], int]:
    requests, latencies, errors = result
    return requests, seconds, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clicks", type=int, default=20_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="refplat-bench-"))
    root.chmod(0o755)
    stack = Stack(StackConfig.for_tests(root))
    try:
        stack.start_infra()
        asyncio.run(stack.prepare())
        stack.start_services()
        asyncio.run(stack.wait_ready(timeout_s=90))
        asyncio.run(bench(stack, args.clients, args.seconds, args.clicks))
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
