"""Disaster recovery: re-publish what a service sent since a given time.

Sent outbox rows are kept for the retention period (7 days by default). Marking them unsent
again hands them back to the relay, which publishes them oldest first, as the first time.
Every consumer de-duplicates by event id, so a replay is always safe; it is how the platform
recovers when a broker loses data.

Usage: ``python -m shared.messaging.replay --since 2026-11-22T10:00:00Z [--topic T ...]``
(uses ``DATABASE_URL``; run it for each service whose events must be re-sent).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

import asyncpg

from shared.db import connect
from shared.settings import ServiceSettings


async def mark_for_replay(
    conn: asyncpg.Connection, since: datetime, topics: list[str] | None = None
) -> int:
    """Hand every event sent at or after ``since`` back to the relay; returns how many."""
    status = await conn.execute(
        "UPDATE outbox SET sent_at = NULL WHERE sent_at >= $1 "
        "AND ($2::text[] IS NULL OR topic = ANY($2::text[]))",
        since,
        topics,
    )
    count = int(status.split()[-1])
    if count:
        await conn.execute("SELECT pg_notify('outbox', '')")
    return count


async def _main(since: datetime, topics: list[str] | None) -> int:
    conn = await connect(ServiceSettings().database_url)
    try:
        return await mark_for_replay(conn, since, topics)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--since",
        required=True,
        type=datetime.fromisoformat,
        help="ISO 8601 time with offset, e.g. 2026-11-22T10:00:00+00:00",
    )
    parser.add_argument("--topic", action="append", help="only this topic (repeatable)")
    args = parser.parse_args()
    if args.since.tzinfo is None:
        parser.error("--since needs a UTC offset (e.g. Z or +00:00)")
    count = asyncio.run(_main(args.since, args.topic))
    print(f"{count} event(s) handed back to the relay")


if __name__ == "__main__":
    main()
