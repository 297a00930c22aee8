"""A consumer whose events can be applied as a set (clicks, read models): a whole poll with
one inbox statement and the subclass's statements for the set, instead of one handler call
per message.

It keeps the shared consumer's guarantees: the inbox rows and the effects are written in one
transaction, offsets are committed after it (the shared loop does that), malformed messages go
to the DLQ, an infrastructure error re-reads the batch. If the set statement fails for any
other reason, the batch is applied again one message at a time through the per-message
handler, so one bad message cannot hold the others back."""

from __future__ import annotations

import collections
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
    """Consumes the topics of ``handlers``, which hold the per-message handlers (the fallback);
    subclasses implement :meth:`apply_batch`."""

    async def apply_batch(
        self, conn: asyncpg.Connection, events: list[tuple[Envelope, Any]]
    ) -> None:
        """Apply events seen for the first time (each once), inside the caller's transaction."""
        raise NotImplementedError

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        parsed, failed = self._parse_all(records)
        if parsed:
            try:
                await self._apply_set(parsed)
            except INFRA_ERRORS:
                raise
            except Exception as exc:  # isolate the bad message: one by one below
                log.warning("%s batch failed (%r); applying it message by message", self.name, exc)
                await self.process_one_by_one([record for record, _, _ in parsed])
        for f in failed:
            await self._dead_letter(f)

    async def _apply_set(
        self, parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]]
    ) -> None:
        # One span for the batch, linked to the traces of the messages in it.
        links = []
        for _, env, _ in parsed[:_MAX_SPAN_LINKS]:
            context = trace.get_current_span(extract_context(env.trace)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
        topics = sorted({record.topic for record, _, _ in parsed})
        # Named after its topic, as a message's span is; a poll of several, after the group.
        destination = topics[0] if len(topics) == 1 else self.name
        with tracer.start_as_current_span(
            f"{destination} process",
            kind=SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": destination,
                "messaging.consumer.group.name": self.name,
                "messaging.batch.message_count": len(parsed),
            },
        ):
            # Canonical ids, so that they compare equal to what the inbox returns.
            ids = [str(uuid.UUID(env.id)) for _, env, _ in parsed]
            async with self.pool.acquire() as conn, conn.transaction():
                topic_of = [(i, r.topic) for i, (r, _, _) in zip(ids, parsed, strict=True)]
                fresh = await first_deliveries(conn, self.name, topic_of)
                new: list[tuple[Envelope, Any]] = []
                outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
                for event_id, (record, env, event) in zip(ids, parsed, strict=True):
                    if event_id in fresh:  # and once only, if the batch holds it twice
                        fresh.discard(event_id)
                        new.append((env, event))
                        outcomes[(record.topic, "applied")] += 1
                    else:
                        outcomes[(record.topic, "duplicate")] += 1
                if new:
                    await self.apply_batch(conn, new)
        for (topic, outcome), count in outcomes.items():
            EVENTS_CONSUMED.labels(self.name, topic, outcome).inc(count)
