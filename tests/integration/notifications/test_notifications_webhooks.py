"""Webhooks to a real HTTP receiver, verified with the standardwebhooks library: signatures,
rotation, retries, disabling, redelivery, and one endpoint never blocking another."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook

from services.notifications.metrics import update_gauges
from shared.contracts import ReferralConverted
from tests.integration.notifications.conftest import NOW, World
from tests.integration.notifications.receivers import WebhookReceiver


def _converted(program_id: uuid.UUID, referrer_id: uuid.UUID) -> ReferralConverted:
    return ReferralConverted(
        conversion_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=referrer_id,
        referee_customer_id="cust-9",
        order_id=f"o-{uuid.uuid4().hex[:6]}",
        amount=4999,
        currency="USD",
        converted_at=NOW,
    )


async def test_signed_and_verified_with_standardwebhooks(
    world: World, receiver: WebhookReceiver
) -> None:
    program_id = await world.program()
    _, secret = await world.endpoint(program_id, receiver.url())
    enrolled = await world.enrol(program_id)
    await world.apply(_converted(program_id, enrolled.participant_id))
    await world.send_all()
    received = receiver.received()
    assert len(received) == 2
    payloads = [Webhook(secret).verify(r.body, r.headers) for r in received]
    assert sorted(p["type"] for p in payloads) == ["participant.enrolled", "referral.converted"]
    converted = next(p for p in payloads if p["type"] == "referral.converted")
    assert converted["data"]["amount"] == 4999
    assert all(r.headers["webhook-id"].startswith("msg_") for r in received)


async def test_rotation_signs_with_both_secrets(world: World, receiver: WebhookReceiver) -> None:
    program_id = await world.program()
    endpoint_id, old = await world.endpoint(program_id, receiver.url())
    new = "whsec_" + "A" * 43 + "="
    await world.pool.execute(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2, "
        "previous_expires_at = $3 WHERE id = $1",
        endpoint_id,
        new,
        datetime.now(UTC) + timedelta(hours=1),
    )
    await world.enrol(program_id)
    await world.send_all()
    [request] = receiver.received()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == (
            "participant.enrolled"
        )


async def test_failing_endpoint_is_retried_then_disabled_and_others_still_get_theirs(
    world: World, receiver: WebhookReceiver
) -> None:
    program_id = await world.program()
    broken, _ = await world.endpoint(program_id, receiver.url("/broken"))
    healthy, _ = await world.endpoint(program_id, receiver.url("/ok"))
    # The broken one points at a closed port: connection refused on every try.
    await world.pool.execute(
        "UPDATE webhook_endpoints SET url = 'http://127.0.0.1:9/broken' WHERE id = $1", broken
    )
    await world.enrol(program_id)
    for _ in range(4):
        await world.send_all()
    assert len(receiver.received("/ok")) == 1
    row = await world.pool.fetchrow("SELECT * FROM webhook_endpoints WHERE id = $1", broken)
    assert row["disabled_at"] is not None and "3 consecutive" in row["disabled_reason"]
    [held] = await world.deliveries(endpoint_id=broken)
    assert held["status"] == "pending"  # held while disabled, not lost
    attempts = await world.pool.fetch(
        "SELECT status FROM delivery_attempts WHERE delivery_id = $1", held["id"]
    )
    assert [a["status"] for a in attempts] == ["failed"] * 3
    await update_gauges(world.pool)
    assert REGISTRY.get_sample_value("notifications_disabled_webhook_endpoints") == 1
    assert REGISTRY.get_sample_value("notifications_pending", {"channel": "webhook"}) == 1
    healthy_row = await world.pool.fetchrow(
        "SELECT consecutive_failures, disabled_at FROM webhook_endpoints WHERE id = $1", healthy
    )
    assert healthy_row["disabled_at"] is None
    # Fixed and enabled again: the held message goes out.
    await world.pool.execute(
        "UPDATE webhook_endpoints SET url = $2, disabled_at = NULL WHERE id = $1",
        broken,
        receiver.url("/broken"),
    )
    await world.send_all()
    assert len(receiver.received("/broken")) == 1


async def test_gives_up_after_the_schedule_and_redelivery_resends_the_same_id(
    world: World, receiver: WebhookReceiver
) -> None:
    world.settings.notify_webhook_disable_after = 100
    program_id = await world.program()
    _, secret = await world.endpoint(program_id, receiver.url())
    receiver.statuses.extend([503] * 5)
    await world.enrol(program_id)
    for _ in range(6):
        await world.send_all()
    [row] = await world.deliveries(channel="webhook")
    assert row["status"] == "failed" and row["reason"] == "HTTP 503"
    assert row["attempts"] == 5  # the first try and four retries
    await world.pool.execute(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() "
        "WHERE id = $1",
        row["id"],
    )
    await world.send_all()
    last = receiver.received()[-1]
    assert Webhook(secret).verify(last.body, last.headers)["type"] == "participant.enrolled"
    ids = {r.headers["webhook-id"] for r in receiver.received()}
    assert len(ids) == 1
    assert json.loads(last.body)["data"]["program_id"] == str(program_id)


async def test_event_type_filter(world: World, receiver: WebhookReceiver) -> None:
    program_id = await world.program()
    await world.endpoint(program_id, receiver.url(), event_types=["referral.converted"])
    enrolled = await world.enrol(program_id)
    await world.apply(_converted(program_id, enrolled.participant_id))
    await world.send_all()
    assert [json.loads(r.body)["type"] for r in receiver.received()] == ["referral.converted"]
