"""Clicks are the busiest topic: a consumer of ``link.clicked`` that stores a whole batch with
one inbox statement and one multi-row insert (see ``shared.messaging.batch`` for the
guarantees it keeps)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.attribution.repository.inputs import insert_clicks
from shared.contracts import LinkClicked
from shared.messaging.batch import BatchConsumer
from shared.messaging.envelope import Envelope


async def store_click(conn: asyncpg.Connection, event: LinkClicked, env: Envelope) -> None:
    """One click (the shared per-message path, used when a batch must be split)."""
    await insert_clicks(conn, [(event, env.trace.get("traceparent"))])


class ClickConsumer(BatchConsumer):
    """Consumes only ``link.clicked``: one multi-row insert per batch."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        await insert_clicks(conn, [(ev, env.trace.get("traceparent")) for env, ev in events])
