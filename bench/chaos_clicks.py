"""Clicks and the redirect cache across broker restarts (the chaos run drives no clicks).

Clicks do not go through an outbox: the links gateway journals them locally and deletes a
journal segment once the broker acknowledged it, so the outbox replay cannot send them again.
This run measures what that means, in four phases of clicks on one code:

- ``before``: the broker is up the whole time;
- ``restart``: the broker crashes and restarts (empty log) while the clicks are answered;
- ``outage``: the broker is down for a few seconds while the clicks are answered (they go to
  the spill file) and comes back empty;
- ``after``: the broker is up again.

For each phase it prints how many clicks were answered with a redirect and how many reached
attribution's ``clicks`` table. Then it checks that the redirect cache reader of links still
follows ``program.published`` on the new broker (its invalidation counter moves).

    python -m bench.chaos_clicks [--clicks N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from bench.chaos import _retrying, chaos_program
from devstack.stack import Stack, StackConfig, database_url_for
from shared.contracts import ProgramPublished
from shared.messaging.producer import ensure_topics


async def _click(http: httpx.AsyncClient, url: str, n: int) -> int:
    """``n`` clicks, 10 at a time; returns how many were answered with a redirect."""
    answered = 0
    headers = {"User-Agent": "Mozilla/5.0"}
    for start in range(0, n, 10):
        batch = [http.get(url, headers=headers) for _ in range(min(10, n - start))]
        for response in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(response, httpx.Response) and response.status_code == 302:
                answered += 1
    return answered


async def _settled_count(db: asyncpg.Connection, want: int, timeout_s: float = 45) -> int:
    """Clicks stored, once they reach ``want`` or stop growing for 5 s."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = int(await db.fetchval("SELECT count(*) FROM clicks"))
        if n >= want:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > 5:
            return n
        await asyncio.sleep(0.2)
    return last


async def _metric(http: httpx.AsyncClient, base: str, name: str) -> float:
    text = (await http.get(f"{base}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if re.match(rf"{name}(\{{.*\}})? ", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run(clicks: int, root: Path) -> dict[str, Any]:
    config = StackConfig.for_tests(root)
    config.extra_env.setdefault("KAFKA_SESSION_TIMEOUT_MS", "3000")
    # Every click comes from 127.0.0.1: lift the per-address limit.
    config.extra_env.update(REDIRECT_RATE_PER_S="100000", REDIRECT_BURST="100000")
    stack = Stack(config)
    report: dict[str, Any] = {}
    try:
        await stack.start()
        assert stack.broker is not None
        links = stack.url("links")
        admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
        async with httpx.AsyncClient(timeout=10) as http:
            program, server = await chaos_program(http, links, admin, "clicks")
            participant = await _retrying(
                http,
                "POST",
                f"{links}/v1/programs/{program['id']}/participants",
                headers=server,
                json={"external_user_id": "clicker"},
            )
            url = f"{links}/r/{participant['code']}"
            db = await asyncpg.connect(database_url_for(stack.server_url, "attribution"))
            try:
                stored = 0
                for phase in ("before", "restart", "outage", "after"):
                    if phase == "restart":
                        clicking = asyncio.create_task(_click(http, url, clicks))
                        await asyncio.sleep(0.3)
                        await stack.restart_broker()
                        answered = await clicking
                    elif phase == "outage":
                        await asyncio.to_thread(stack.broker.stop)
                        answered = await _click(http, url, clicks)
                        await asyncio.sleep(3)
                        await asyncio.to_thread(stack.broker.start)
                        await ensure_topics(stack.topic_settings())
                    else:
                        answered = await _click(http, url, clicks)
                    total = await _settled_count(db, stored + answered)
                    report[phase] = {"answered": answered, "stored": total - stored}
                    stored = total
            finally:
                await db.close()
            for name in ("clicks_spilled_total", "clicks_replayed_total"):
                report[name] = await _metric(http, links, name)

            # Another replica's program change, as the redirect cache reader sees it.
            invalidations = "redirect_cache_invalidations_total"
            before = await _metric(http, links, invalidations)
            producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
            await producer.start()
            try:
                await producer.send_and_wait(
                    ProgramPublished.TOPIC,
                    json.dumps({"program_id": str(uuid.uuid4())}).encode(),
                    key=b"chaos-clicks",
                )
            finally:
                await producer.stop()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if await _metric(http, links, invalidations) > before:
                    break
                await asyncio.sleep(0.2)
            report["cache_reader_follows_new_broker"] = (
                await _metric(http, links, invalidations) > before
            )
    finally:
        stack.stop()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="refplat-chaos-clicks-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    try:
        report = asyncio.run(run(args.clicks, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for phase in ("before", "restart", "outage", "after"):
        r = report[phase]
        print(f"{phase:8} answered={r['answered']} stored={r['stored']}")
    print(
        f"spilled={report['clicks_spilled_total']:.0f} "
        f"replayed={report['clicks_replayed_total']:.0f} "
        f"cache_reader_follows_new_broker={report['cache_reader_follows_new_broker']}"
    )
    return 0 if report["cache_reader_follows_new_broker"] else 1


if __name__ == "__main__":
    sys.exit(main())
