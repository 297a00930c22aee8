"""The CRM mapping of docs/crm.md against real webhooks: a converted referral through the four
services, delivered to a receiver in this test, signed (checked with the standardwebhooks
library), and every field the mapping table names is in the payload of its event type."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from devstack.journey import Urls, eventually, refer_friend
from devstack.stack import Stack
from tests.integration.notifications.receivers import WebhookReceiver

CRM_DOC = Path(__file__).resolve().parents[2] / "docs" / "crm.md"
_ROW = re.compile(r"^\| `([a-z_.]+)` \| `data\.([a-z_]+)` \|")


def mapping() -> dict[str, set[str]]:
    """Event type -> the payload fields the mapping table of docs/crm.md names."""
    fields: dict[str, set[str]] = {}
    for line in CRM_DOC.read_text().splitlines():
        if match := _ROW.match(line):
            fields.setdefault(match[1], set()).add(match[2])
    return fields


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text}"
    return response.json()


async def test_webhooks_carry_every_field_of_the_crm_mapping(
    stack: Stack, urls: Urls, receiver: WebhookReceiver
) -> None:
    table = mapping()
    wanted = {"participant.enrolled", "referral.signed_up", "referral.converted", "reward.issued"}
    assert set(table) == wanted, "the table maps these four event types"
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        program = _ok(
            await http.post(
                f"{urls.links}/v1/programs",
                headers=admin,
                json={
                    "name": "CRM",
                    "definition": {
                        "destination_url": "https://shop.example.com/welcome",
                        "allowed_hosts": ["shop.example.com"],
                        "rewards": {
                            "referrer": {"amount": 2000, "unit": "USD"},
                            "referee": {"amount": 1000, "unit": "USD"},
                        },
                    },
                },
            )
        )
        pid = program["id"]
        path = f"/crm/{pid}"
        hook = _ok(
            await http.post(
                f"{urls.notifications}/v1/programs/{pid}/webhooks",
                headers=admin,
                json={"url": receiver.url(path), "event_types": sorted(wanted)},
            )
        )
        key = _ok(await http.post(f"{urls.links}/v1/programs/{pid}/keys", headers=admin))
        server = {"Authorization": f"Bearer {key['secret_key']}"}
        user_id = f"user-{uuid.uuid4().hex[:8]}"
        ana = _ok(
            await http.post(
                f"{urls.links}/v1/programs/{pid}/participants",
                headers=server,
                json={"external_user_id": user_id},
            )
        )
        friend = await refer_friend(http, urls, server, ana["code"], buy=True)

        def payloads() -> list[dict[str, Any]]:
            verifier = Webhook(hook["secret"])
            return [verifier.verify(r.body, r.headers) for r in receiver.received(path)]

        async def arrived() -> list[dict[str, Any]] | None:
            got = payloads()
            types = [p["type"] for p in got]
            complete = wanted <= set(types) and types.count("reward.issued") == 2
            return got if complete else None

        got = await eventually(arrived, timeout_s=45)

    for message in got:
        data = message["data"]
        missing = {f for f in table[message["type"]] if data.get(f) is None}
        assert not missing, f"{message['type']} lacks {missing}: {data}"
    by_type = {m["type"]: m["data"] for m in got if m["type"] != "reward.issued"}
    assert by_type["participant.enrolled"]["external_user_id"] == user_id
    for name in ("referral.signed_up", "referral.converted"):
        assert by_type[name]["referrer_external_user_id"] == user_id
        assert by_type[name]["referee_customer_id"] == friend
        assert by_type[name]["referrer_id"] == ana["id"]
    assert by_type["referral.signed_up"]["referral_status"] == "signed_up"
    assert by_type["referral.converted"]["referral_status"] == "converted"
    assert by_type["referral.converted"]["amount"] == 4999
    rewards = {m["data"]["side"]: m["data"] for m in got if m["type"] == "reward.issued"}
    assert (rewards["referrer"]["amount"], rewards["referrer"]["recipient"]) == (2000, ana["id"])
    assert (rewards["referee"]["amount"], rewards["referee"]["recipient"]) == (1000, friend)
    referral = by_type["referral.converted"]["referral_id"]
    assert {r["referral_id"] for r in rewards.values()} == {referral}
    assert {r["reward_status"] for r in rewards.values()} == {"issued"}
