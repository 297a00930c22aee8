"""Rewards under duplicate deliveries, two consumer instances, and a process killed with
SIGKILL in the middle of its work and restarted: no reward lost, none duplicated, caps never
exceeded, milestones once, the ledger balanced."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from devstack.embedded import free_port
from devstack.journey import Urls, eventually
from devstack.stack import Stack, database_url_for
from shared.contracts import ReferralConverted
from shared.contracts.base import Event
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.settings import ServiceSettings
from tests.conftest import OUTPUT_DIR
from tests.e2e.test_rewards_scenarios import create_program

REFERRERS = 5
PER_REFERRER = 60
CAP = 5_000  # 10 rewards of 500 per referrer; the other 50 are capped


async def _send(stack: Stack, deliveries: list[tuple[Event, str]]) -> None:
    """Send events with the given ce_id (a repeated id is a redelivery the inbox catches; a
    new id for the same conversion is a duplicate only the constraints catch)."""
    producer = make_producer(
        ServiceSettings(
            kafka_bootstrap_servers=stack.bootstrap,
            kafka_enable_idempotence=not stack.embedded_broker,
        )
    )
    await producer.start()
    try:
        for event, event_id in deliveries:
            env = envelope_for(event, "/tests/e2e")
            headers = [(k, event_id.encode() if k == "ce_id" else v) for k, v in env.headers()]
            await producer.send(
                event.TOPIC, value=env.data, key=event.key().encode(), headers=headers
            )
        await producer.flush()
    finally:
        await producer.stop()


def _second_instance(stack: Stack) -> subprocess.Popen[bytes]:
    env = {**stack.service_env("rewards"), "PORT": str(free_port())}
    log = open(OUTPUT_DIR / "e2e-logs" / "rewards-second.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "services.rewards"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_no_reward_lost_or_duplicated_through_kills_and_duplicates(
    stack: Stack, urls: Urls
) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        program = await create_program(
            http,
            urls,
            stack.admin_api_key,
            {
                "referrer": {"amount": 500, "unit": "MB", "lifetime_cap": CAP},
                "referee": {"amount": 500, "unit": "MB"},
                "milestones": [{"threshold": 25, "perk": "badge"}],
            },
        )
    pid = uuid.UUID(program.id)
    referrers = [uuid.uuid4() for _ in range(REFERRERS)]
    start = datetime.now(UTC) + timedelta(seconds=1)
    events = [
        ReferralConverted(
            conversion_id=uuid.uuid4(),
            referral_id=uuid.uuid4(),
            program_id=pid,
            referrer_id=referrer,
            referee_customer_id=f"rel-{uuid.uuid4().hex[:10]}",
            order_id=f"rel-{i}-{n}",
            amount=1000,
            currency="USD",
            converted_at=start + timedelta(milliseconds=n),
        )
        for i, referrer in enumerate(referrers)
        for n in range(PER_REFERRER)
    ]
    rng = random.Random(5)
    deliveries: list[tuple[Event, str]] = []
    for event in events:
        event_id = str(uuid.uuid4())
        deliveries.append((event, event_id))
        roll = rng.random()
        if roll < 0.15:
            deliveries.append((event, event_id))  # redelivered: same ce_id
        elif roll < 0.30:
            deliveries.append((event, str(uuid.uuid4())))  # republished: new ce_id
    # Wait for the program to reach rewards, so the work below is rewarding, not waiting.
    dsn = database_url_for(stack.server_url, "rewards")
    conn = await asyncpg.connect(dsn)
    second = _second_instance(stack)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT 1 FROM program_versions WHERE program_id = $1", pid)
        )
        await _send(stack, deliveries[: len(deliveries) // 2])

        async def some_work_done() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM conversions WHERE program_id = $1", pid)
            return n >= 20

        await eventually(some_work_done, timeout_s=60)
        assert second.poll() is None, "the second consumer instance died"
        stack.stop_service("rewards", signal.SIGKILL)  # mid-batch, no goodbye
        at_kill = await conn.fetchval("SELECT count(*) FROM conversions WHERE program_id = $1", pid)
        assert at_kill < len(events)  # work was left for the survivors
        await _send(stack, deliveries[len(deliveries) // 2 :])
        stack.start_service("rewards")
        await stack.wait_ready(timeout_s=60, services=("rewards",))

        expected_rows = len(events) * 2 + REFERRERS

        async def all_rewarded() -> bool:
            n = await conn.fetchval("SELECT count(*) FROM rewards WHERE program_id = $1", pid)
            return n >= expected_rows

        await eventually(all_rewarded, timeout_s=120)
        # Let any late duplicate processing land before judging.
        await eventually(
            lambda: conn.fetchval("SELECT count(*) = 0 FROM outbox WHERE sent_at IS NULL"),
            timeout_s=30,
        )

        rows = await conn.fetch(
            "SELECT conversion_id, rule, side, recipient, amount, status, referrer_id "
            "FROM rewards WHERE program_id = $1",
            pid,
        )
        assert len(rows) == expected_rows
        keys = [(r["conversion_id"], r["rule"], r["side"]) for r in rows]
        assert len(keys) == len(set(keys))
        base = [r for r in rows if r["rule"] == "base"]
        assert {e.conversion_id for e in events} == {r["conversion_id"] for r in base}
        for referrer in referrers:
            mine = [r for r in base if r["side"] == "referrer" and r["referrer_id"] == referrer]
            assert len(mine) == PER_REFERRER
            assert sum(r["amount"] for r in mine) == CAP  # never more, and nothing lost
            milestones = [r for r in rows if r["rule"] != "base" and r["referrer_id"] == referrer]
            assert len(milestones) == 1
        assert {r["amount"] for r in base if r["side"] == "referee"} == {500}
        unbalanced = await conn.fetch(
            "SELECT entry_id FROM ledger_postings GROUP BY entry_id, unit HAVING sum(amount) <> 0"
        )
        assert unbalanced == []
        # Each reward was announced once.
        issued = await conn.fetch(
            "SELECT headers->>'ce_subject' AS subject, count(*) AS n FROM outbox "
            "WHERE topic = 'reward.issued' AND key = ANY($1::text[]) GROUP BY 1",
            [str(r) for r in referrers],
        )
        assert len(issued) == sum(r["status"] == "issued" for r in rows)
        assert {r["n"] for r in issued} == {1}
        assert second.poll() is None
    finally:
        await conn.close()
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(5)
        if stack.processes.get("rewards") is None:
            stack.start_service("rewards")
            await stack.wait_ready(timeout_s=60, services=("rewards",))
