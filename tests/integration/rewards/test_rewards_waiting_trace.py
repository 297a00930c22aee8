"""A purchase that reaches rewards before its program version is rewarded later, while the
publication is processed: its rewards' events still continue the purchase's trace (one trace
per referral for ops), and that span links to the publication that released it."""

from __future__ import annotations

import uuid

import asyncpg
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.integration.rewards.test_rewards_flow import conversion, convert, publish

_tracer = trace.get_tracer(__name__)


def _trace_id(span: trace.Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


async def test_a_waiting_purchase_is_rewarded_in_its_own_trace(
    pool: asyncpg.Pool, span_exporter: InMemorySpanExporter
) -> None:
    pid, referrer = uuid.uuid4(), uuid.uuid4()
    purchase = conversion(pid, referrer)
    with _tracer.start_as_current_span("deliver referral.converted") as delivery:
        await convert(pool, purchase)  # no version yet: it waits
    with _tracer.start_as_current_span("deliver program.published") as publication:
        await publish(pool, pid, {"referrer": {"amount": 500, "unit": "USD"}})
    purchase_trace, publication_trace = _trace_id(delivery), _trace_id(publication)
    assert purchase_trace != publication_trace

    # The referrer's events (reward.* are keyed by referrer), with the trace they carry.
    rows = await pool.fetch(
        "SELECT topic, headers->>'traceparent' AS traceparent FROM outbox WHERE key = $1",
        str(referrer),
    )
    assert {r["topic"] for r in rows} >= {"reward.created"}, rows
    for row in rows:
        assert row["traceparent"].split("-")[1] == purchase_trace, row["topic"]

    # Only this purchase's trace: another test's app may still be finishing its own work.
    waiting = [
        s
        for s in span_exporter.get_finished_spans()
        if s.name == "rewards.reward_waiting"
        and format(s.context.trace_id, "032x") == purchase_trace
    ]
    assert len(waiting) == 1
    assert [format(link.context.trace_id, "032x") for link in waiting[0].links] == [
        publication_trace
    ]
