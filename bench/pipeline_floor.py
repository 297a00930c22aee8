"""The least a conversion can cost in this design, beside the ``/healthz`` baseline of the same
run: how far apart the pipeline's target and its parts are.

``make bench-pipeline`` asks for conversions per second of at least 0.1 x the rate at which
``wrk`` gets answers from ``/healthz``. On a machine of C cores that leaves at most
``C / (0.1 x baseline)`` CPU seconds per conversion, for every process together. This script
measures, with nothing else running, what the parts every conversion must pass through cost at
their cheapest (CPU of every process involved: this one, the server, Postgres, the broker):

- ``http``: one ``POST`` with a small JSON body through a service app built like the four
  (``create_service_app``: its middleware, telemetry and problem handlers), whose route
  validates the body and answers; no database. ``/healthz`` on the same process beside it.
- ``transaction``: one transaction with one ``INSERT`` (asyncpg, a pool of 8, 8 at a time).
- ``produce``: one event sent with the services' producer settings (``acks=all``), envelope
  and all, batched by ``linger``; no outbox.
- ``consume``: one event read by the shared consumer loop with a handler that does nothing (its
  inbox row, its span, its parse, a poll of up to 200 events per transaction).

The floor of a conversion is one ``http`` and one ``transaction`` (the tracking call), plus
what the pipeline benchmark counts per conversion: 5 events produced and 9 consumed. It is a
floor: no business statement, no read model, no relay query, and batches as large as a backlog
gives. A first, smaller round warms the broker's JIT and the caches and is not counted; the
figures are medians of ``--rounds`` rounds, and ``floor_over_budget`` is the median of each
round's floor over that round's budget (the baseline moves with the machine's load). Last line:

    floor: baseline=<req/s> budget_ms=<x> floor_ms=<y> floor_over_budget=<y/x>
           best_ratio=<the ratio a conversion costing only the floor would reach>

    make bench-floor [ARGS="--rounds 3 --events 4000 --cores 2"]   (TEST_BROKER=kafka: Kafka)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from bench.servers import Infra, bench_infra, service_database, tree_cpu
from devstack.embedded import free_port, port_open
from devstack.profiles import broker_env
from shared.contracts import ReferralConverted, RewardCreated, RewardIssued
from shared.contracts.base import Event
from shared.db import create_pool
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.service import create_service_app
from shared.service import serve as run_service
from shared.settings import ServiceSettings

# What the pipeline benchmark counts per conversion (docs/capacity.md).
EVENTS_OUT, EVENTS_IN = 5, 9
# The fewest a conversion can do with: referral.converted and a reward.issued for each side,
# read by rewards (the conversion) and notifications (all three); no reward.created, no links
# read models.
LEAST_OUT, LEAST_IN = 3, 4
TARGET_RATIO = 0.1
_POST_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customer_id": "c-1", "order_id": "o-1", "amount": 5000, "currency": "USD"}'
"""


class FloorIn(BaseModel):
    customer_id: str
    order_id: str
    amount: int
    currency: str


router = APIRouter()


@router.post("/v1/floor", status_code=201)
async def floor(body: FloorIn) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "order_id": body.order_id, "status": "qualified"}


def serve() -> None:
    """The server process (``--serve``): a service app with the one route above."""
    settings = ServiceSettings()
    app = create_service_app(
        settings=settings,
        title="floor",
        routers=[router],
        relays_outbox=False,
        asks_links_about_keys=False,
    )
    run_service(app, settings)


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds of each process and its children (Postgres backends), and of this one."""
    return {"bench": time.process_time(), **{name: tree_cpu(pid) for name, pid in pids.items()}}


async def measured(
    pids: dict[str, int], work: Callable[[], Awaitable[int]]
) -> tuple[float, dict[str, float]]:
    """CPU ms per operation of every process, and the split, for ``work`` (returns the count)."""
    before = cpu_of(pids)
    n = await work()
    after = cpu_of(pids)
    split = {k: (after[k] - before[k]) * 1000 / n for k in after}
    return sum(split.values()), split


def conversion_events(program_id: uuid.UUID, i: int) -> list[Event]:
    """The five events a conversion publishes: the conversion, and a reward created and issued
    for each side."""
    now = datetime.now(UTC)
    referrer, conversion_id, referral_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events: list[Event] = [
        ReferralConverted(
            conversion_id=conversion_id, referral_id=referral_id, program_id=program_id,
            referrer_id=referrer, referee_customer_id=f"c{i}", order_id=f"o{i}", amount=5000,
            currency="USD", converted_at=now, program_version=1, sequence=1,
        )
    ]  # fmt: skip
    for side in ("referrer", "referee"):
        reward = {
            "reward_id": uuid.uuid4(), "conversion_id": conversion_id, "referral_id": referral_id,
            "program_id": program_id, "program_version": 1, "referrer_id": referrer,
            "side": side, "recipient": str(referrer) if side == "referrer" else f"c{i}",
            "amount": 2000, "unit": "USD", "rule": "base",
        }  # fmt: skip
        events.append(RewardCreated(**reward, status="issued", created_at=now))
        events.append(RewardIssued(**reward, issued_at=now))
    return events


async def produce(settings: ServiceSettings, events: list[Event]) -> int:
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for event in events:
            env = envelope_for(event, "/bench")
            futures.append(
                await producer.send(
                    event.TOPIC, value=env.data, key=event.key().encode(), headers=env.headers()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(events)


async def consume(settings: ServiceSettings, topics: set[str], n: int) -> int:
    pool = await create_pool(settings.database_url, max_size=4)
    producer = make_producer(settings)
    await producer.start()

    async def nothing(*_: Any) -> None:
        return None

    name = f"floor-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(
        name=name,
        pool=pool,
        producer=producer,
        handlers=dict.fromkeys(topics, nothing),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        count = "SELECT count(*) FROM processed_events WHERE consumer = $1"
        deadline = time.monotonic() + 300
        while await pool.fetchval(count, name) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("the consumer did not read every event")
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await producer.stop()
        await pool.close()
    return n


async def transactions(settings: ServiceSettings, n: int) -> int:
    pool = await create_pool(settings.database_url, min_size=8, max_size=8)
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            queue.pop()
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO processed_events (consumer, event_id, topic) VALUES ($1, $2, $3)",
                    "floor-tx",
                    uuid.uuid4(),
                    "floor",
                )

    try:
        await asyncio.gather(*(worker() for _ in range(8)))
    finally:
        await pool.close()
    return n


def start_server(infra: Infra, settings: ServiceSettings) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        **broker_env(infra.kind),  # type: ignore[arg-type]
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SERVICE_NAME": "floor",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.pipeline_floor", "--serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the floor service did not start")
        time.sleep(0.2)
    return proc, port


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> tuple[float, int]:
    """Answers per second and answers in all, as the pipeline's baseline runs wrk (2 threads)."""
    options = ["-t2", f"-c{connections}", f"-d{seconds}s"]
    if script is not None:
        options += ["-s", str(script)]
    out = subprocess.run(
        ["wrk", *options, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    answered = re.search(r"(\d+) requests in", out)
    if rate is None or answered is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk: {out}")
    return float(rate.group(1)), int(answered.group(1))


@dataclass
class Round:
    """One round: the ``/healthz`` rate, and CPU ms per operation of each part (all processes
    together, and split by process)."""

    baseline: float
    parts: dict[str, tuple[float, dict[str, float]]]

    def floor_ms(self, events_out: int = EVENTS_OUT, events_in: int = EVENTS_IN) -> float:
        p = {name: ms for name, (ms, _) in self.parts.items()}
        return p["http"] + p["transaction"] + events_out * p["produce"] + events_in * p["consume"]

    def budget_ms(self, cores: int) -> float:
        """CPU per conversion that conversions/s = TARGET_RATIO x baseline leaves on ``cores``."""
        return cores * 1000 / (TARGET_RATIO * self.baseline)


async def one_round(
    infra: Infra, settings: ServiceSettings, script: Path, args: argparse.Namespace
) -> Round:
    server, port = start_server(infra, settings)
    pids = {**infra.pids, "server": server.pid}
    base = f"http://127.0.0.1:{port}"
    try:
        wrk(f"{base}/healthz", 1, args.concurrency)  # warm up
        baseline, _ = await asyncio.to_thread(wrk, f"{base}/healthz", 3, args.concurrency)

        async def posts() -> int:
            _, n = await asyncio.to_thread(wrk, f"{base}/v1/floor", 3, args.concurrency, script)
            return n

        http = await measured(pids, posts)
    finally:
        server.terminate()
        server.wait(30)
    pids = dict(infra.pids)
    tx = await measured(pids, lambda: transactions(settings, args.events))
    program = uuid.uuid4()
    events = [e for i in range(-(-args.events // 5)) for e in conversion_events(program, i)]
    out = await measured(pids, lambda: produce(settings, events))
    topics = {e.TOPIC for e in events}
    into = await measured(pids, lambda: consume(settings, topics, len(events)))
    return Round(baseline, {"http": http, "transaction": tx, "produce": out, "consume": into})


async def main(args: argparse.Namespace, root: Path) -> None:
    async with bench_infra(root) as infra:
        print(f"broker: {infra.kind}")
        settings = await service_database(infra, "attribution")
        script = root / "post.lua"
        # The first round warms the JIT of a Kafka broker and the caches: not counted.
        await one_round(
            infra, settings, script, argparse.Namespace(**{**vars(args), "events": 500})
        )
        rounds = []
        for i in range(args.rounds):
            r = await one_round(infra, settings, script, args)
            rounds.append(r)
            parts = ", ".join(
                f"{name}={ms:.3f} ms ("
                + " ".join(f"{k}={v:.3f}" for k, v in split.items() if v >= 0.0005)
                + ")"
                for name, (ms, split) in r.parts.items()
            )
            print(f"[round {i + 1}] baseline={r.baseline:.0f} req/s; {parts}")
            print(
                f"[round {i + 1}] floor={r.floor_ms():.2f} ms/conversion "
                f"budget={r.budget_ms(args.cores):.2f} ms"
            )
    med = statistics.median
    part = {n: med(r.parts[n][0] for r in rounds) for n in rounds[0].parts}
    print(
        "floor: " + " ".join(f"{n}_ms={v:.3f}" for n, v in part.items())
        + f" events_out={EVENTS_OUT} events_in={EVENTS_IN}"
    )  # fmt: skip
    # Each round's floor against its own budget: the baseline moves with the machine's load.
    over = med(r.floor_ms() / r.budget_ms(args.cores) for r in rounds)
    print(
        f"floor: baseline={med(r.baseline for r in rounds):.0f} req/s "
        f"budget_ms={med(r.budget_ms(args.cores) for r in rounds):.2f} (ratio {TARGET_RATIO} on "
        f"{args.cores} cores) floor_ms={med(r.floor_ms() for r in rounds):.2f} "
        f"floor_over_budget={over:.2f} best_ratio={TARGET_RATIO / over:.3f}"
    )
    least = med(r.floor_ms(LEAST_OUT, LEAST_IN) / r.budget_ms(args.cores) for r in rounds)
    print(
        f"floor: with the fewest events ({LEAST_OUT} out, {LEAST_IN} in) "
        f"floor_ms={med(r.floor_ms(LEAST_OUT, LEAST_IN) for r in rounds):.2f} "
        f"floor_over_budget={least:.2f} left_for_the_business_ms="
        f"{med(r.budget_ms(args.cores) - r.floor_ms(LEAST_OUT, LEAST_IN) for r in rounds):.2f}"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=4000, help="events and transactions")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    root = Path(tempfile.mkdtemp(prefix="refplat-floor-"))
    root.chmod(0o755)
    (root / "post.lua").write_text(_POST_LUA)
    try:
        asyncio.run(main(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    cli()
