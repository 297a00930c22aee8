"""How fast the notifications consumer records what a conversion causes, and with how many SQL
statements.

Starts an embedded PostgreSQL (or uses TEST_DATABASE_URL), publishes a program and enrols N
referrers (not timed), then applies, through the service's own handlers and in consumer-sized
transactions (200 events, as one poll), what each conversion brings: ``referral.converted``
(email to the referrer), ``reward.issued`` for the referrer (feed item and email) and for the
referee (webhooks only). Every statement the handlers send is counted with asyncpg's query
logger.

Baseline, measured in the same run on the same database: the floor of any handler, one
``INSERT`` of the event's id and data per event in the same batch transactions. Rounds
alternate baseline and handlers; medians are printed (the machine is shared and noisy).

    python -m bench.notifications_events [N] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from devstack.embedded import EmbeddedPostgres, free_port
from services.notifications.consumers import consumer_groups
from services.notifications.settings import NotificationsSettings
from shared.contracts import ParticipantEnrolled, ProgramPublished, ReferralConverted, RewardIssued
from shared.contracts.base import Event
from shared.db import create_pool
from shared.messaging.outbox import envelope_for
from shared.migrate import migrate

BATCH = 200


def _conversion(program_id: uuid.UUID, referrer_id: uuid.UUID, i: int) -> list[Event]:
    now = datetime.now(UTC)
    conversion_id, referral_id = uuid.uuid4(), uuid.uuid4()
    converted = ReferralConverted(
        conversion_id=conversion_id,
        referral_id=referral_id,
        program_id=program_id,
        referrer_id=referrer_id,
        referee_customer_id=f"c{i}",
        order_id=f"o{i}",
        amount=5000,
        currency="USD",
        converted_at=now,
        program_version=1,
        sequence=1,
    )
    rewards = [
        RewardIssued(
            reward_id=uuid.uuid4(),
            conversion_id=conversion_id,
            referral_id=referral_id,
            program_id=program_id,
            program_version=1,
            referrer_id=referrer_id,
            side=side,
            recipient=str(referrer_id) if side == "referrer" else f"c{i}",
            amount=2000,
            unit="USD",
            issued_at=now,
            rule="base",
        )
        for side in ("referrer", "referee")
    ]
    return [converted, *rewards]


async def _apply(
    pool: asyncpg.Pool, table: dict[str, Any], events: list[Event], floor: bool
) -> tuple[float, int, float]:
    """Seconds, statements, CPU seconds of this process (the consumer's side)."""
    statements = 0

    def count(_: Any) -> None:
        nonlocal statements
        statements += 1

    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), BATCH):
        async with pool.acquire() as conn:
            conn.add_query_logger(count)
            try:
                async with conn.transaction():  # one consumer poll
                    for event in events[i : i + BATCH]:
                        env = envelope_for(event, "/bench")
                        if floor:
                            await conn.execute(
                                "INSERT INTO bench_floor (id, data) VALUES ($1, $2)",
                                env.id,
                                event.model_dump(mode="json"),
                            )
                        else:
                            await table[event.TOPIC](conn, event, env)
            finally:
                conn.remove_query_logger(count)
    # BEGIN and COMMIT are logged too: count what the handlers send.
    batches = -(-len(events) // BATCH)
    return (
        time.perf_counter() - started,
        statements - 2 * batches,
        time.process_time() - cpu,
    )


async def main(n: int, rounds: int, root: Path) -> None:
    pg = None
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pg = EmbeddedPostgres(root / "pg", free_port())
        pg.start()
        server_url = pg.url
    try:
        admin = await asyncpg.connect(server_url)
        name = f"bench_events_{uuid.uuid4().hex[:6]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = server_url.rsplit("/", 1)[0] + f"/{name}"
        await migrate("notifications", dsn)
        settings = NotificationsSettings(database_url=dsn, admin_api_key=SecretStr("bench"))
        pool = await create_pool(dsn, max_size=4)
        await pool.execute("CREATE TABLE bench_floor (id uuid PRIMARY KEY, data jsonb)")
        [group] = consumer_groups(settings)
        table = group.handlers
        program_id = uuid.uuid4()
        published = ProgramPublished.model_validate(
            {
                "program_id": program_id,
                "version": 1,
                "effective_from": datetime.now(UTC),
                "name": "Bench",
                "definition": {"destination_url": "https://shop.example.com/"},
            }
        )
        enrolments: list[Event] = [published]
        for j in range(n):
            enrolments.append(
                ParticipantEnrolled(
                    participant_id=uuid.uuid4(),
                    program_id=program_id,
                    external_user_id=f"u{j}",
                    code=f"CODE{j}",
                    link_url=f"https://ref.example.com/r/CODE{j}",
                    email=f"user{j}@example.com",
                    locale=("en", "ar", "zh", "lv")[j % 4],
                    enrolled_at=datetime.now(UTC),
                )
            )
        enrol_s, enrol_statements, _ = await _apply(pool, table, enrolments, floor=False)
        referrers = [e.participant_id for e in enrolments[1:] if isinstance(e, ParticipantEnrolled)]
        handler_s: list[float] = []
        floor_s: list[float] = []
        handler_cpu: list[float] = []
        statements = floor_statements = 0
        for _ in range(rounds):
            events = [e for i, pid in enumerate(referrers) for e in _conversion(program_id, pid, i)]
            elapsed, floor_statements, _ = await _apply(pool, table, events, floor=True)
            floor_s.append(elapsed)
            elapsed, statements, cpu = await _apply(pool, table, events, floor=False)
            handler_s.append(elapsed)
            handler_cpu.append(cpu)
        deliveries = await pool.fetchval("SELECT count(*) FROM deliveries")
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
        handled, floor = statistics.median(handler_s), statistics.median(floor_s)
        print(f"conversions: {n} x {rounds} rounds (3 events each), deliveries rows: {deliveries}")
        print(
            f"enrolments: {n / enrol_s:8.0f} /s, "
            f"{enrol_statements / len(enrolments):.1f} statements per event"
        )
        print(
            f"handlers:  {n / handled:8.0f} conversions/s (median; rounds: "
            + ", ".join(f"{n / t:.0f}" for t in handler_s)
            + f"), {statements / n:.1f} statements per conversion, "
            f"{1000 * statistics.median(handler_cpu) / n:.2f} ms consumer CPU per conversion"
        )
        print(
            f"baseline (one INSERT per event): {n / floor:8.0f} conversions/s (median; rounds: "
            + ", ".join(f"{n / t:.0f}" for t in floor_s)
            + f"), {floor_statements / n:.1f} statements per conversion"
        )
        print(f"ratio handlers / baseline:       {floor / handled:8.2f}")
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    folder = Path(tempfile.mkdtemp(prefix="bench-notify-events-"))
    folder.chmod(0o755)
    asyncio.run(main(count, repeat, folder))
