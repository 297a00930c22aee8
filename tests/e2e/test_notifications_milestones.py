"""Milestones and ops messages through the real attribution and rewards services: the nudge
one referral before a milestone, the milestone itself, and a referral flagged by a fraud rule
reaching the program's ops address."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from devstack.journey import Urls, eventually, refer_friend
from devstack.stack import Stack
from tests.integration.notifications.receivers import SmtpServer


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text}"
    return response.json()


async def _program(
    http: httpx.AsyncClient, urls: Urls, admin: dict[str, str], **definition: Any
) -> tuple[str, dict[str, str]]:
    program = _ok(
        await http.post(
            f"{urls.links}/v1/programs",
            headers=admin,
            json={
                "name": "Milestones",
                "definition": {
                    "destination_url": "https://shop.example.com/welcome",
                    "allowed_hosts": ["shop.example.com"],
                    **definition,
                },
            },
        )
    )
    key = _ok(await http.post(f"{urls.links}/v1/programs/{program['id']}/keys", headers=admin))
    return program["id"], {"Authorization": f"Bearer {key['secret_key']}"}


async def test_one_away_then_the_milestone(stack: Stack, urls: Urls) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        pid, server = await _program(
            http,
            urls,
            admin,
            rewards={
                "referrer": {"amount": 500, "unit": "EUR"},
                "milestones": [{"threshold": 2, "perk": "Invitation"}],
            },
            notifications={"share_reminder_days": None},
        )
        person = _ok(
            await http.post(
                f"{urls.links}/v1/programs/{pid}/participants",
                headers=server,
                json={"external_user_id": f"u-{uuid.uuid4().hex[:8]}", "locale": "lv"},
            )
        )
        feed_url = (
            f"{urls.notifications}/v1/programs/{pid}/participants/{person['id']}/notifications"
        )

        async def feed_with(kind: str) -> Any:
            response = await http.get(feed_url, headers=admin)
            if response.status_code == 404:  # the enrolment has not reached notifications yet
                return None
            items = _ok(response)["items"]
            return items if any(i["kind"] == kind for i in items) else None

        await refer_friend(
            http, urls, server, person["code"], buy=True, amount=2500, currency="EUR"
        )
        items = await eventually(lambda: feed_with("milestone_nudge"))
        [nudge] = [i for i in items if i["kind"] == "milestone_nudge"]
        assert nudge["title"] == "Vēl tikai viens ieteikums"
        assert "pie 2" in nudge["body"]
        await refer_friend(
            http, urls, server, person["code"], buy=True, amount=2500, currency="EUR"
        )
        items = await eventually(lambda: feed_with("milestone_reached"))
        [reached] = [i for i in items if i["kind"] == "milestone_reached"]
        assert reached["title"] == "Jūs sasniedzāt 2 ieteikumus"
        assert "Invitation" in reached["body"]
        # Both referral rewards, and no "you earned 1 PERK" for the milestone's own grant.
        await eventually(
            lambda: _kinds_are(http, feed_url, admin, ["reward_issued", "reward_issued"])
        )
        kinds = sorted(i["kind"] for i in _ok(await http.get(feed_url, headers=admin))["items"])
        assert kinds == [
            "milestone_nudge",
            "milestone_reached",
            "reward_issued",
            "reward_issued",
            "welcome",
        ]


async def _kinds_are(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], wanted: list[str]
) -> bool:
    items = _ok(await http.get(url, headers=headers))["items"]
    return [i["kind"] for i in items if i["kind"] in set(wanted)] == wanted


async def test_a_flagged_referral_reaches_ops(
    stack: Stack, urls: Urls, smtp_server: SmtpServer
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    ops = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    async with httpx.AsyncClient(timeout=10) as http:
        pid, server = await _program(
            http,
            urls,
            admin,
            rewards={"referrer": {"amount": 500, "unit": "EUR"}},
            # Any signup within an hour of its click is held for review.
            fraud={"too_fast": {"min_seconds": 3600, "shadow": False, "action": "flag"}},
            notifications={"ops_emails": [ops], "share_reminder_days": None},
        )
        person = _ok(
            await http.post(
                f"{urls.links}/v1/programs/{pid}/participants",
                headers=server,
                json={"external_user_id": f"u-{uuid.uuid4().hex[:8]}"},
            )
        )
        await refer_friend(http, urls, server, person["code"], buy=False)

        async def ops_mail() -> Any:
            return [m for m in smtp_server.to(ops) if "held for review" in m["Subject"]]

        [mail] = await eventually(ops_mail)
        body = mail.get_body(("plain",)).get_content()
        assert "too_fast" in body
        assert mail["List-Unsubscribe"] is None
