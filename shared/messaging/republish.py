"""Disaster recovery: re-publish every event a service sent since a given time.

Sent outbox rows are kept for the retention period (7 days by default). Marking them unsent
again hands them back to the relay, which publishes them oldest first, as the first time.
Every consumer de-duplicates by event id, so re-publishing is always safe; it is how the platform
recovers when a broker loses data.

A broker that lost its data has lost its topics too, and a broker with automatic topic creation
turned off (as production Kafka should be) refuses the relay's sends until they exist; so the
command first creates every missing topic and DLQ twin (``KAFKA_TOPIC_PARTITIONS`` partitions),
as the services do when they start. ``--no-create-topics`` skips that (no broker access needed).

Usage: ``python -m shared.messaging.republish --since 2026-11-22T10:00:00Z [--topic T ...]``
(uses ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS``; run it for each service whose events
must be re-sent).
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

import asyncpg

from shared.db import connect
from shared.messaging.producer import ensure_topics
from shared.settings import ServiceSettings


async def mark_unsent_since(
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


async def republish_since(
    settings: ServiceSettings,
    since: datetime,
    topics: list[str] | None = None,
    *,
    create_topics: bool = True,
) -> tuple[list[str], int]:
    """Create missing topics (unless told not to), then hand the events back to the relay.
    Returns the topics created and how many events will be re-published."""
    created = await ensure_topics(settings) if create_topics else []
    conn = await connect(settings.database_url)
    try:
        return created, await mark_unsent_since(conn, since, topics)
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
    parser.add_argument(
        "--no-create-topics",
        dest="create_topics",
        action="store_false",
        help="do not create missing topics first",
    )
    args = parser.parse_args()
    if args.since.tzinfo is None:
        parser.error("--since needs a UTC offset (e.g. Z or +00:00)")
    created, count = asyncio.run(
        republish_since(ServiceSettings(), args.since, args.topic, create_topics=args.create_topics)
    )
    print(f"{len(created)} topic(s) created; {count} event(s) handed back to the relay")


if __name__ == "__main__":
    main()
