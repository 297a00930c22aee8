"""Attribution's consumers over the real broker: malformed clicks go to the DLQ, two consumer
instances store each click once, and an erased participant is forgotten."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.attribution.click_ingest import ClickConsumer, store_click
from services.attribution.consumers import CLICKS_CONSUMER
from shared.contracts import LinkClicked, dlq_topic
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import envelope_for
from shared.settings import ServiceSettings
from tests.factories import link_clicked, participant_erased
from tests.integration.attribution.conftest import Tracking, apply
from tests.integration.kafka_helpers import read_topic, running, wait_for

TOPIC = LinkClicked.TOPIC


def _click_event(tracking: Tracking, participant_id: uuid.UUID) -> LinkClicked:
    return link_clicked(
        tracking.program_id, participant_id, code="CODE1234", visitor_hash=uuid.uuid4().hex
    )


async def _send(tracking: Tracking, env: Envelope, key: bytes = b"CODE1234") -> None:
    await tracking.runtime.producer.send_and_wait(
        TOPIC, value=env.data, key=key, headers=env.headers()
    )


async def test_malformed_clicks_go_to_the_dlq_and_the_next_click_is_stored(
    tracking: Tracking, settings: ServiceSettings
) -> None:
    referrer, _ = await tracking.enroll()
    good = _click_event(tracking, referrer)
    missing_fields = Envelope(
        type=LinkClicked.TYPE, source="/test", data=json.dumps({"click_id": "nope"}).encode()
    )
    await _send(tracking, missing_fields)
    await tracking.runtime.producer.send_and_wait(TOPIC, value=b"{not json", key=b"CODE1234")
    await _send(tracking, envelope_for(good, "/test"))
    await wait_for(
        lambda: tracking.count("SELECT count(*) FROM clicks WHERE click_id = $1", good.click_id)
    )
    dead = await read_topic(settings, dlq_topic(TOPIC), expect=2)
    assert sorted(r.value for r in dead) == sorted([missing_fields.data, b"{not json"])
    for record in dead:
        headers = dict(record.headers)
        assert headers["dlq_consumer"] == CLICKS_CONSUMER.encode()
        assert headers["dlq_error_type"] == b"PoisonMessage"
    assert await tracking.count("SELECT count(*) FROM clicks") == 1


async def test_two_consumer_instances_store_every_click_once(
    tracking: Tracking, settings: ServiceSettings
) -> None:
    referrer, _ = await tracking.enroll()
    # A second instance of the same consumer group next to the app's own.
    second = ClickConsumer(
        handlers={LinkClicked.TOPIC: store_click},
        name=CLICKS_CONSUMER,
        pool=tracking.pool,
        producer=tracking.runtime.producer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        batch_size=50,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    envs = [envelope_for(_click_event(tracking, referrer), "/test") for _ in range(300)]
    async with running(second.run):
        # Every click sent twice, under different keys (so to different partitions/instances).
        sends = [_send(tracking, env, key=f"k{i % 7}".encode()) for i, env in enumerate(envs)]
        sends += [_send(tracking, env, key=f"j{i % 5}".encode()) for i, env in enumerate(envs)]
        await asyncio.gather(*sends)
        await wait_for(
            lambda: _count_is(tracking, _PROCESSED_CLICKS, 300),
            timeout_s=60,
        )
    assert await tracking.count("SELECT count(*) FROM clicks") == 300
    assert (
        await tracking.count(
            "SELECT count(DISTINCT click_id) FROM clicks WHERE click_id = ANY($1::uuid[])",
            [LinkClicked.model_validate_json(e.data).click_id for e in envs],
        )
        == 300
    )


_PROCESSED_CLICKS = (
    "SELECT count(*) FROM processed_events WHERE topic = 'link.clicked' "
    f"AND consumer = '{CLICKS_CONSUMER}'"
)


async def _count_is(tracking: Tracking, sql: str, n: int) -> bool:
    return await tracking.count(sql) >= n


async def test_an_erased_participant_is_forgotten(tracking: Tracking) -> None:
    referrer, code = await tracking.enroll(external_user_id="ref-42", email="ref@example.com")
    # The referrer is also a customer of the program (their own signup, with fingerprints).
    await tracking.post(
        "signups",
        {"customer_id": "ref-42", "referral_code": code, "email": "ref@example.com",
         "ip": "192.0.2.1", "existing_customer": True, "billing_customer_id": "cus_ref42"},
    )  # fmt: skip
    await tracking.post(
        "signups", {"customer_id": "ref-42-friend", "referral_code": code, "ip": "192.0.2.1"}
    )
    stored = "SELECT count(*) FROM signups WHERE billing_customer_id = 'cus_ref42'"
    assert await tracking.count(stored) == 1
    event = participant_erased(tracking.program_id, referrer)
    await apply(tracking.pool, event)
    await apply(tracking.pool, event)  # a second delivery changes nothing more
    row = await tracking.pool.fetchrow(
        "SELECT * FROM participants WHERE participant_id = $1", referrer
    )
    assert row["external_user_id"].startswith("erased:") and row["email_hash"] is None
    assert await tracking.count("SELECT count(*) FROM signups WHERE customer_id = 'ref-42'") == 0
    own = await tracking.pool.fetchrow(
        "SELECT * FROM signups WHERE customer_id = $1", row["external_user_id"]
    )
    assert own["ip_hash"] is None and own["email_hash"] is None
    assert own["billing_customer_id"] is None
    # The friend's referral (same IP as the referrer: flagged) keeps the pseudonymous id.
    friend = await tracking.pool.fetchrow(
        "SELECT * FROM signups WHERE customer_id = 'ref-42-friend'"
    )
    assert friend["candidate_referrer_id"] == referrer and friend["status"] == "flagged"
    # And the erased participant's code credits nobody any more.
    later = await tracking.post("signups", {"customer_id": "late", "referral_code": code})
    assert later.json()["attributed"] is False and later.json()["reason"] == "referrer_erased"


async def test_a_failing_batch_is_applied_message_by_message(
    tracking: Tracking, settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    referrer, _ = await tracking.enroll()
    consumer = ClickConsumer(
        handlers={LinkClicked.TOPIC: store_click},
        name="clicks-fallback",
        pool=tracking.pool,
        producer=tracking.runtime.producer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
    )

    async def broken(*_: object) -> None:
        raise ValueError("batch statement refused")

    monkeypatch.setattr(consumer, "apply_batch", broken)
    events = [_click_event(tracking, referrer) for _ in range(3)]
    records = [
        ConsumerRecord(TOPIC, 0, i, 0, 0, b"k", env.data, None, 1, len(env.data),
                       env.headers())
        for i, env in enumerate(envelope_for(e, "/test") for e in events)
    ]  # fmt: skip
    await consumer.process(records)
    await consumer.process(records)  # a redelivery: the inbox keeps it to one each
    assert await tracking.count(
        "SELECT count(*) FROM clicks WHERE click_id = ANY($1::uuid[])",
        [e.click_id for e in events],
    ) == 3  # fmt: skip


async def test_a_signup_links_to_the_trace_of_its_click(
    tracking: Tracking, span_exporter: InMemorySpanExporter
) -> None:
    referrer, _ = await tracking.enroll()
    event = _click_event(tracking, referrer)
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    env = Envelope(
        type=LinkClicked.TYPE,
        source="/test",
        data=event.model_dump_json().encode(),
        trace={"traceparent": f"00-{trace_id}-{span_id}-01"},
    )
    async with tracking.pool.acquire() as conn:
        await store_click(conn, event, env)
    span_exporter.clear()
    response = await tracking.post(
        "signups", {"customer_id": "c1", "click_id": str(event.click_id)}
    )
    assert response.json()["attributed"] is True
    linked = [
        s for s in span_exporter.get_finished_spans()
        if any(format(link.context.trace_id, "032x") == trace_id for link in s.links)
    ]  # fmt: skip
    assert linked, [s.name for s in span_exporter.get_finished_spans()]
