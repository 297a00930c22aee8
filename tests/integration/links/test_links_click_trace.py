"""A click's trace context travels with it: on ``link.clicked`` (also after a journal replay),
into attribution's ``clicks.traceparent``, and to the link on the signup span that names it."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack.embedded import EmbeddedBroker
from services.attribution.app import create_app as create_attribution
from services.attribution.click_ingest import store_click
from services.attribution.settings import AttributionSettings
from services.links.gateway.click_trace import SPAN_NAME
from services.links.settings import LinksSettings
from shared.contracts import LinkClicked
from shared.messaging.envelope import Envelope
from shared.messaging.producer import ensure_topics
from tests.integration.attribution.conftest import Tracking
from tests.integration.kafka_helpers import migrated, read_topic, wait_for
from tests.integration.links.conftest import Links, running_links
from tests.integration.links.test_links_click_capture import BROWSER, _click_id, _segments

TOPIC = LinkClicked.TOPIC
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@contextlib.asynccontextmanager
async def attribution(pg_server_url: str, links: Links) -> AsyncIterator[Tracking]:
    """Attribution in-process on a database of its own (its tables share names with links')."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(pg_server_url)._replace(path=f"/{name}"))
    try:
        await migrated(dsn, "attribution")
        settings = AttributionSettings(
            service_name="attribution",
            database_url=dsn,
            kafka_bootstrap_servers=links.settings.kafka_bootstrap_servers,
            kafka_enable_idempotence=False,
            kafka_session_timeout_ms=3000,
            consumer_retry_backoff_s=0.01,
        )
        app = create_attribution(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Tracking(client, app.state.runtime.pool, app.state.runtime)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _headers(record: object) -> dict[str, bytes]:
    return dict(record.headers)  # type: ignore[attr-defined]


async def _published(links: Links, ids: list[str]) -> dict[str, object]:
    records = await read_topic(links.settings, TOPIC, expect=len(ids), timeout_s=30)
    by_id = {_headers(r)["ce_id"].decode(): r for r in records}
    assert set(ids) <= set(by_id)
    return {i: by_id[i] for i in ids}


async def test_a_signup_span_links_to_the_context_its_click_carried(
    links: Links, pg_server_url: str, span_exporter: InMemorySpanExporter
) -> None:
    program = await links.program()
    code = (await links.enrol(program["id"])).json()["code"]
    span_exporter.clear()
    plain = _click_id(await links.click(code, headers=BROWSER))
    traced = _click_id(await links.click(code, headers={**BROWSER, "traceparent": CALLER}))
    forged = _click_id(await links.click(code, headers={**BROWSER, "traceparent": "00-zz-1-01"}))
    records = await _published(links, [plain, traced, forged])

    # A click without a trace of its own carries the span the writer made for it.
    traceparent = _headers(records[plain])["traceparent"].decode()
    _, trace_id, span_id, _ = traceparent.split("-")
    spans = [
        s for s in span_exporter.get_finished_spans()
        if s.name == SPAN_NAME and format(s.context.span_id, "016x") == span_id
    ]  # fmt: skip
    assert len(spans) == 1 and spans[0].kind is SpanKind.PRODUCER
    assert format(spans[0].context.trace_id, "032x") == trace_id
    assert not {"client.address", "user_agent.original"} & set(spans[0].attributes or {})
    # A click whose request was traced carries the caller's context; a malformed one is ignored.
    assert _headers(records[traced])["traceparent"] == CALLER.encode()
    assert _headers(records[forged])["traceparent"].startswith(b"00-")
    assert b"zz" not in _headers(records[forged])["traceparent"]

    async with attribution(pg_server_url, links) as tracking:
        tracking.program_id = uuid.UUID(program["id"])
        await tracking.publish_program()
        await tracking.issue_key()
        record = records[plain]
        env = Envelope.from_kafka(record.headers, record.value)  # type: ignore[attr-defined]
        async with tracking.pool.acquire() as conn, conn.transaction():
            await store_click(conn, LinkClicked.model_validate_json(env.data), env)
        stored = await tracking.pool.fetchval(
            "SELECT traceparent FROM clicks WHERE click_id = $1", uuid.UUID(plain)
        )
        assert stored == traceparent

        span_exporter.clear()
        response = await tracking.post("signups", {"customer_id": "c1", "click_id": plain})
        assert response.status_code == 201, response.text
        links_to_click = [
            link for s in span_exporter.get_finished_spans() for link in s.links
            if link.context.span_id == spans[0].context.span_id
            and link.context.trace_id == spans[0].context.trace_id
        ]  # fmt: skip
        assert links_to_click, [s.name for s in span_exporter.get_finished_spans()]


async def test_a_replayed_click_keeps_its_traceparent_and_old_journal_lines_still_replay(
    links_settings: LinksSettings, controlled_broker: EmbeddedBroker
) -> None:
    async with running_links(links_settings) as links:
        program = await links.program()
        code = (await links.enrol(program["id"])).json()["code"]
        controlled_broker.stop()
        ids = [_click_id(await links.click(code, headers=BROWSER)) for _ in range(5)]
        # Shutting down with the broker away: the clicks stay in the journal.
    segments = _segments(links_settings)
    journaled = {}
    for line in b"".join(p.read_bytes() for p in segments).splitlines():
        value, _, traceparent = line.partition(b"\t")
        journaled[json.loads(value)["click_id"]] = traceparent
    assert set(ids) <= set(journaled) and all(journaled[i].startswith(b"00-") for i in ids)
    # A line as journals held it before clicks carried a trace: the JSON value alone.
    old = json.loads(b"".join(segments[0].read_bytes().splitlines()[:1]).split(b"\t")[0])
    old["click_id"] = str(uuid.uuid4())
    (Path(segments[0]).with_name("clicks-000000000000.log")).write_text(json.dumps(old) + "\n")

    controlled_broker.start()
    await ensure_topics(links_settings)
    async with running_links(links_settings) as links:
        await wait_for(lambda: _true(not _segments(links_settings)), timeout_s=30)
        records = await _published(links, [*ids, old["click_id"]])
    for i in ids:
        assert _headers(records[i])["traceparent"] == journaled[i]
    assert "traceparent" not in _headers(records[old["click_id"]])


async def _true(value: bool) -> bool:
    return value
