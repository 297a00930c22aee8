"""Clicks are the busiest topic: a consumer of ``link.clicked`` that stores a whole batch with
one inbox statement and one multi-row insert (see ``shared.messaging.batch`` for the
guarantees it keeps)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.contracts import LinkClicked
from shared.messaging.batch import BatchConsumer
from shared.messaging.envelope import Envelope

_INSERT = (
    "INSERT INTO clicks (click_id, code, program_id, participant_id, clicked_at, attributable, "
    "channel, visitor_hash, traceparent) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], "
    "$6::boolean[], $7::text[], $8::text[], $9::text[]) ON CONFLICT (click_id) DO NOTHING"
)


async def store_click(conn: asyncpg.Connection, event: LinkClicked, env: Envelope) -> None:
    """One click (the shared per-message path, used when a batch must be split)."""
    await conn.execute(
        _INSERT,
        [event.click_id],
        [event.code],
        [event.program_id],
        [event.participant_id],
        [event.clicked_at],
        [event.attributable],
        [event.channel],
        [event.visitor_hash],
        [env.trace.get("traceparent")],
    )


class ClickConsumer(BatchConsumer):
    """Consumes only ``link.clicked``: one multi-row insert per batch."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await conn.execute(
            _INSERT,
            [ev.click_id for _, ev in events],
            [ev.code for _, ev in events],
            [ev.program_id for _, ev in events],
            [ev.participant_id for _, ev in events],
            [ev.clicked_at for _, ev in events],
            [ev.attributable for _, ev in events],
            [ev.channel for _, ev in events],
            [ev.visitor_hash for _, ev in events],
            [env.trace.get("traceparent") for env, _ in events],
        )
