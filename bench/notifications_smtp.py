"""How many emails per second the notifications sender delivers to a local SMTP server.

Starts an embedded PostgreSQL (or uses TEST_DATABASE_URL) and a local SMTP server in its own
process (aiosmtpd with the ``Sink`` handler: it accepts and drops), records N welcome emails
through the service's own consumer handler (``participant.enrolled``: template rendering,
preferences, the delivery row), then runs the real sender loop (claims with SKIP LOCKED,
a pool of SMTP connections, one attempt row and one status update per message) and times it
until no email is pending.

Baseline, measured in the same run against the same server: the same messages built and
sent straight with aiosmtplib over the same number of connections, with no database. The
ratio says what the durable bookkeeping (claim, attempt row, status) costs on top of SMTP.
Rounds alternate baseline and sender and the best of each is kept: the machine is shared.

    python -m bench.notifications_smtp [N] [CONNECTIONS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import asyncpg
from pydantic import SecretStr

from devstack.embedded import EmbeddedPostgres, free_port
from services.notifications.consumers import consumer_groups
from services.notifications.delivery import Sender
from services.notifications.email import build_message
from services.notifications.settings import NotificationsSettings
from shared.contracts import ParticipantEnrolled
from shared.db import create_pool
from shared.messaging.outbox import envelope_for
from shared.migrate import migrate


def _smtp_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc


async def _wait_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("SMTP server did not start")


async def _enqueue(pool: asyncpg.Pool, settings: NotificationsSettings, n: int) -> float:
    [group] = consumer_groups(settings)
    on_enrolled = group.handlers[ParticipantEnrolled.TOPIC]
    program_id = uuid.uuid4()
    started = time.perf_counter()
    for i in range(0, n, 200):
        async with pool.acquire() as conn, conn.transaction():  # one consumer batch
            for j in range(i, min(n, i + 200)):
                pid = uuid.uuid4()
                event = ParticipantEnrolled(
                    participant_id=pid,
                    program_id=program_id,
                    external_user_id=f"u{j}",
                    code=f"CODE{j}",
                    link_url=f"https://ref.example.com/r/CODE{j}",
                    email=f"user{j}@example.com",
                    locale=("en", "ar", "zh", "lv")[j % 4],
                    enrolled_at=datetime.now(UTC),
                )
                await on_enrolled(conn, event, envelope_for(event, "/bench"))
    return time.perf_counter() - started


async def _baseline(settings: NotificationsSettings, pool: asyncpg.Pool, n: int) -> float:
    """The same messages (read beforehand), built and sent straight over the same number of
    SMTP connections: everything the sender does except claiming and recording."""
    rows = await pool.fetch(
        "SELECT id, address, payload FROM deliveries WHERE channel = 'email' LIMIT $1", n
    )
    queue: asyncio.Queue[asyncpg.Record] = asyncio.Queue()
    for row in rows:
        queue.put_nowait(row)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname=settings.smtp_host, port=settings.smtp_port)
        await client.connect()
        try:
            while not queue.empty():
                row = queue.get_nowait()
                message = build_message(
                    delivery_id=row["id"],
                    sender=settings.notify_mail_from,
                    to=row["address"],
                    payload=row["payload"],
                )
                await client.send_message(message)
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(settings.smtp_connections)))
    return time.perf_counter() - started


async def _run_sender(pool: asyncpg.Pool, settings: NotificationsSettings) -> float:
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(Sender(pool, settings).run(stop))
    while True:  # polling the database: the sender runs as it does in the service
        pending = await pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE channel = 'email' AND status = 'pending'"
        )
        if not pending:
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    failed = await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'failed'")
    if failed:
        raise RuntimeError(f"{failed} emails failed")
    return elapsed


async def main(n: int, connections: int, rounds: int, root: Path) -> None:
    pg = None
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        pg = EmbeddedPostgres(root / "pg", free_port())
        pg.start()
        server_url = pg.url
    port = free_port()
    smtp = _smtp_server(port)
    try:
        admin = await asyncpg.connect(server_url)
        name = f"bench_notify_{uuid.uuid4().hex[:6]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = server_url.rsplit("/", 1)[0] + f"/{name}"
        await migrate("notifications", dsn)
        await _wait_port(port)
        settings = NotificationsSettings(
            database_url=dsn,
            admin_api_key=SecretStr("bench"),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_connections=connections,
            notify_sender_batch_size=200,
            notify_sender_poll_interval_s=0.01,
        )
        pool = await create_pool(dsn, max_size=connections + 6)
        enqueue_s = await _enqueue(pool, settings, n)
        # Alternate the two, several rounds, best of each: the machine is shared and noisy.
        baselines, senders = [], []
        for _ in range(rounds):
            baselines.append(await _baseline(settings, pool, n))
            senders.append(await _run_sender(pool, settings))
            await pool.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, sent_at = NULL, "
                "next_attempt_at = now() WHERE channel = 'email'"
            )
        attempts = await pool.fetchval("SELECT count(*) FROM delivery_attempts")
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
        sender_s, baseline_s = min(senders), min(baselines)
        print(f"emails: {n} x {rounds} rounds, SMTP connections: {connections}")
        print(f"attempts recorded: {attempts} (one per email per round)")
        print(f"recorded by the consumer handler: {n / enqueue_s:8.0f} /s")
        print(
            f"sender (claim, send, record):     {n / sender_s:8.0f} emails/s (best; rounds: "
            + ", ".join(f"{n / t:.0f}" for t in senders)
            + ")"
        )
        print(
            f"baseline (aiosmtplib, no DB):     {n / baseline_s:8.0f} emails/s (best; rounds: "
            + ", ".join(f"{n / t:.0f}" for t in baselines)
            + ")"
        )
        print(f"ratio sender / baseline:          {baseline_s / sender_s:8.2f}")
    finally:
        smtp.terminate()
        smtp.wait(10)
        if pg is not None:
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    folder = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    folder.chmod(0o755)
    asyncio.run(main(count, conns, repeat, folder))
