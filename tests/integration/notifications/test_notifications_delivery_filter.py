"""The delivery log's ``trigger`` filter: template triggers, the dotted event names the README
uses (an event's webhook messages and the messages it caused), several at once, and a 422
naming the parameter for a name the API does not know."""

from __future__ import annotations

import uuid

import httpx

from shared.contracts import ReferralConverted
from tests.integration.notifications.conftest import NOW, World
from tests.integration.notifications.receivers import WebhookReceiver


async def test_the_trigger_filter(
    world: World, api: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    program_id = await world.program()
    await world.endpoint(program_id, receiver.url())
    enrolled = await world.enrol(program_id, email="ann@example.com")
    converted = ReferralConverted(
        conversion_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=enrolled.participant_id,
        referee_customer_id="cust-1",
        order_id="o-1",
        amount=4999,
        currency="USD",
        converted_at=NOW,
    )
    await world.apply(converted)

    async def listed(trigger: str | list[str]) -> list[tuple[str, str]]:
        response = await api.get(
            f"/v1/programs/{program_id}/deliveries", params={"trigger": trigger}
        )
        assert response.status_code == 200, response.text
        return sorted((d["trigger"], d["channel"]) for d in response.json()["items"])

    assert await listed("referral_converted") == [("referral_converted", "email")]
    assert await listed("referral.converted") == [
        ("referral.converted", "webhook"),
        ("referral_converted", "email"),
    ]
    assert await listed("participant.enrolled") == [
        ("participant.enrolled", "webhook"),
        ("welcome", "email"),
        ("welcome", "in_app"),
    ]
    both = await listed(["welcome", "referral.converted"])
    assert both == await listed("welcome,referral.converted")
    assert {t for t, _ in both} == {"welcome", "referral.converted", "referral_converted"}
    assert await listed("milestone.reached") == []  # known, nothing of it yet

    for unknown in ["referral.convert", "welcome,bogus", "Welcome"]:
        response = await api.get(
            f"/v1/programs/{program_id}/deliveries", params={"trigger": unknown}
        )
        assert response.status_code == 422, unknown
        assert response.json()["field"] == "trigger"
