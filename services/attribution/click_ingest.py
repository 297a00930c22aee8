"""Clicks are the busiest topic: a consumer of ``link.clicked`` that stores a whole batch with
one inbox statement and one multi-row insert (see ``shared.messaging.batch`` for the
guarantees it keeps), then decides the pending signups that named those clicks (one indexed
lookup per batch, usually finding none)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.attribution import pending
from services.attribution.repository.inputs import insert_clicks
from shared.contracts import LinkClicked
from shared.messaging.batch import BatchConsumer
from shared.messaging.envelope import Envelope


async def store_click(conn: asyncpg.Connection, event: LinkClicked, env: Envelope) -> None:
    """One click (the shared per-message path, used when a batch must be split)."""
    await insert_clicks(conn, [(event, env.trace.get("traceparent"))])
    await pending.on_clicks(conn, [event.click_id])


class ClickConsumer(BatchConsumer):
    """Consumes only ``link.clicked``: one multi-row insert per batch."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await insert_clicks(conn, [(ev, env.trace.get("traceparent")) for env, ev in events])
        # Signups that named one of these clicks before it arrived are decided now.
        await pending.on_clicks(conn, [ev.click_id for _, ev in events])
