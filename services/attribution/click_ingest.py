"""Clicks are the busiest topic: a consumer of ``link.clicked`` that stores a whole batch with
one inbox statement and one multi-row insert, instead of a savepoint, an inbox row and an
insert per message.

It keeps the shared consumer's guarantees: the inbox rows and the clicks are written in one
transaction, offsets are committed after it (the shared loop does that), malformed messages go
to the DLQ, an infrastructure error re-reads the batch. If the batch statement fails for any
other reason, the batch is applied again one message at a time by the shared path, so one bad
message cannot hold the others back."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from shared.contracts import LinkClicked
from shared.contracts.base import Event
from shared.messaging.consumer import INFRA_ERRORS, EventConsumer, FailedMessage, PoisonMessage
from shared.messaging.envelope import Envelope
from shared.metrics import EVENTS_CONSUMED
from shared.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

TOPIC = LinkClicked.TOPIC

_INSERT = (
    "INSERT INTO clicks (click_id, code, program_id, participant_id, clicked_at, attributable, "
    "channel, visitor_hash, traceparent) "
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::timestamptz[], "
    "$6::boolean[], $7::text[], $8::text[], $9::text[]) ON CONFLICT (click_id) DO NOTHING"
)
_INBOX = (
    "INSERT INTO processed_events (consumer, event_id, topic) "
    "SELECT $1, e, $2 FROM unnest($3::uuid[]) AS e ON CONFLICT DO NOTHING RETURNING event_id"
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


class ClickConsumer(EventConsumer):
    """Consumes only ``link.clicked``, a batch per transaction."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(handlers={TOPIC: store_click}, **kwargs)

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]] = []
        failed: list[FailedMessage] = []
        for record in records:
            try:
                env, event = self.parse(record)
            except PoisonMessage as exc:
                failed.append(FailedMessage(record, exc))
                continue
            parsed.append((record, env, event))
        if parsed:
            try:
                await self._apply_batch(parsed)
            except INFRA_ERRORS:
                raise
            except Exception as exc:  # isolate the bad message: one by one below
                log.warning("click batch failed (%r); applying it message by message", exc)
                await super().process([record for record, _, _ in parsed])
        for f in failed:
            await self._dead_letter(f)

    async def _apply_batch(self, parsed: list[tuple[Any, Envelope, Event]]) -> None:
        # One span for the batch, linked to the trace of every click in it.
        links = []
        for _, env, _ in parsed[:128]:
            context = trace.get_current_span(extract_context(env.trace)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
        with tracer.start_as_current_span(
            f"{TOPIC} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": TOPIC,
                "messaging.consumer.group.name": self.name,
                "messaging.batch.message_count": len(parsed),
            },
        ):
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = {
                    str(r["event_id"])
                    for r in await conn.fetch(
                        _INBOX, self.name, TOPIC, [env.id for _, env, _ in parsed]
                    )
                }
                new = [(env, ev) for _, env, ev in parsed if env.id in fresh]
                # The same event twice in one batch: the inbox returned it once.
                seen: set[str] = set()
                rows: list[tuple[Envelope, Any]] = []
                for env, ev in new:
                    if env.id not in seen:
                        seen.add(env.id)
                        rows.append((env, ev))
                if rows:
                    await conn.execute(
                        _INSERT,
                        [ev.click_id for _, ev in rows],
                        [ev.code for _, ev in rows],
                        [ev.program_id for _, ev in rows],
                        [ev.participant_id for _, ev in rows],
                        [ev.clicked_at for _, ev in rows],
                        [ev.attributable for _, ev in rows],
                        [ev.channel for _, ev in rows],
                        [ev.visitor_hash for _, ev in rows],
                        [env.trace.get("traceparent") for env, _ in rows],
                    )
        EVENTS_CONSUMED.labels(self.name, TOPIC, "applied").inc(len(rows))
        EVENTS_CONSUMED.labels(self.name, TOPIC, "duplicate").inc(len(parsed) - len(rows))
