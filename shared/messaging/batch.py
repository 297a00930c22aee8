"""A consumer for one busy topic whose events can be applied as a set (clicks): a whole poll
with one inbox statement and one statement of the subclass's, instead of one handler call per
message.

It keeps the shared consumer's guarantees: the inbox rows and the effects are written in one
transaction, offsets are committed after it (the shared loop does that), malformed messages go
to the DLQ, an infrastructure error re-reads the batch. If the set statement fails for any
other reason, the batch is applied again one message at a time through the per-message
handler, so one bad message cannot hold the others back."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from shared.contracts.base import Event
from shared.messaging.consumer import INFRA_ERRORS, EventConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.inbox import first_deliveries
from shared.metrics import EVENTS_CONSUMED
from shared.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# A batch span links to at most this many of its messages' traces.
_MAX_SPAN_LINKS = 128


class BatchConsumer(EventConsumer):
    """Consumes one topic: ``handlers`` holds its per-message handler (the fallback);
    subclasses implement :meth:`apply_batch`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(self.handlers) != 1:
            raise ValueError(f"{type(self).__name__} consumes exactly one topic")
        (self.topic,) = self.handlers

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        """Apply events seen for the first time (each once), inside the caller's transaction."""
        raise NotImplementedError

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        parsed, failed = self._parse_all(records)
        if parsed:
            try:
                await self._apply_set([(env, ev) for _, env, ev in parsed])
            except INFRA_ERRORS:
                raise
            except Exception as exc:  # isolate the bad message: one by one below
                log.warning("%s batch failed (%r); applying it message by message", self.topic, exc)
                await self.process_one_by_one([record for record, _, _ in parsed])
        for f in failed:
            await self._dead_letter(f)

    async def _apply_set(self, parsed: list[tuple[Envelope, Event]]) -> None:
        # One span for the batch, linked to the traces of the messages in it.
        links = []
        for env, _ in parsed[:_MAX_SPAN_LINKS]:
            context = trace.get_current_span(extract_context(env.trace)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
        with tracer.start_as_current_span(
            f"{self.topic} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": self.topic,
                "messaging.consumer.group.name": self.name,
                "messaging.batch.message_count": len(parsed),
            },
        ):
            # Canonical ids, so that they compare equal to what the inbox returns.
            ids = [str(uuid.UUID(env.id)) for env, _ in parsed]
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await first_deliveries(conn, self.name, [(i, self.topic) for i in ids])
                new: list[tuple[Envelope, Any]] = []
                for event_id, pair in zip(ids, parsed, strict=True):
                    if event_id in fresh:  # and once only, if the batch holds it twice
                        fresh.discard(event_id)
                        new.append(pair)
                if new:
                    await self.apply_batch(conn, new)
        EVENTS_CONSUMED.labels(self.name, self.topic, "applied").inc(len(new))
        EVENTS_CONSUMED.labels(self.name, self.topic, "duplicate").inc(len(parsed) - len(new))
