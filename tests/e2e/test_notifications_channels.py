"""Notifications through the real services: emails to a real SMTP server in this process,
Standard Webhooks to a real HTTP receiver verified with the standardwebhooks library,
templates and preview, preferences and the one-click unsubscribe, share reminders, the
delivery log, a failing endpoint disabled, redelivery, metrics."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from devstack.journey import Urls, eventually, refer_friend
from devstack.stack import Stack
from tests.integration.notifications.receivers import SmtpServer, WebhookReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    try:
        yield server
    finally:
        server.stop()


def _ok(response: httpx.Response, *codes: int) -> Any:
    assert response.status_code in (codes or (200, 201)), (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json() if response.content else None


async def _program(
    http: httpx.AsyncClient, urls: Urls, admin: dict[str, str], notifications: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    program = _ok(
        await http.post(
            f"{urls.links}/v1/programs",
            headers=admin,
            json={
                "name": "Notify me",
                "definition": {
                    "destination_url": "https://shop.example.com/welcome",
                    "allowed_hosts": ["shop.example.com"],
                    "rewards": {
                        "referrer": {"amount": 2000, "unit": "USD"},
                        "referee": {"amount": 1000, "unit": "USD"},
                    },
                    "notifications": notifications,
                },
            },
        )
    )
    key = _ok(await http.post(f"{urls.links}/v1/programs/{program['id']}/keys", headers=admin))
    return program["id"], {"Authorization": f"Bearer {key['secret_key']}"}


async def _enrol(
    http: httpx.AsyncClient, urls: Urls, pid: str, server: dict[str, str], **body: Any
) -> dict[str, Any]:
    return _ok(  # type: ignore[no-any-return]
        await http.post(
            f"{urls.links}/v1/programs/{pid}/participants",
            headers=server,
            json={"external_user_id": f"u-{uuid.uuid4().hex[:8]}", **body},
        )
    )


def _mails(smtp: SmtpServer, to: str, subject_part: str = "") -> list[Any]:
    return [m for m in smtp.to(to) if subject_part in m["Subject"]]


async def _deliveries(
    http: httpx.AsyncClient, urls: Urls, pid: str, admin: dict[str, str], **query: str
) -> list[dict[str, Any]]:
    page = _ok(
        await http.get(
            f"{urls.notifications}/v1/programs/{pid}/deliveries", headers=admin, params=query
        )
    )
    return page["items"]  # type: ignore[no-any-return]


async def test_a_referral_is_told_by_email_and_signed_webhooks(
    stack: Stack, urls: Urls, smtp_server: SmtpServer, receiver: WebhookReceiver
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    address = f"ar-{uuid.uuid4().hex[:6]}@example.com"
    async with httpx.AsyncClient(timeout=10) as http:
        pid, server = await _program(http, urls, admin, {"share_reminder_days": 30})
        nbase = f"{urls.notifications}/v1/programs/{pid}"
        hook = _ok(
            await http.post(
                f"{nbase}/webhooks", headers=admin, json={"url": receiver.url(f"/{pid}")}
            ),
            201,
        )
        secret = hook["secret"]
        broken = _ok(
            await http.post(
                f"{nbase}/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/closed"}
            ),
            201,
        )
        # A private custom template for Arabic wins over the shipped one.
        _ok(
            await http.put(
                f"{nbase}/templates/referral_converted/ar",
                headers=admin,
                json={"subject": "شكرًا {{ name }}", "body": "طلب بقيمة {{ order_amount }}"},
            )
        )
        participant = await _enrol(http, urls, pid, server, email=address, name="Sara", locale="ar")
        welcome = await eventually(lambda: _async(_mails(smtp_server, address)))
        [mail] = welcome
        assert mail["Subject"] == "مرحبًا بك في برنامج الإحالة"
        assert '<html lang="ar" dir="rtl">' in mail.get_body(("html",)).get_content()
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # Click, signup, conversion through links and attribution.
        await refer_friend(http, urls, server, participant["code"], buy=True)
        thanks = await eventually(lambda: _async(_mails(smtp_server, address, "انضم صديق")))
        converted = await eventually(lambda: _async(_mails(smtp_server, address, "شكرًا Sara")))
        assert "49.99" in converted[0].get_body(("plain",)).get_content()
        reward = await eventually(lambda: _async(_mails(smtp_server, address, "لقد ربحت")))
        assert "20.00" in reward[0].get_body(("plain",)).get_content()
        assert len(thanks) == 1 and len(converted) == 1 and len(reward) == 1

        # Webhooks: every event once, each signature verified by the official library.
        wanted = {
            "participant.enrolled",
            "referral.signed_up",
            "referral.converted",
            "reward.issued",
        }

        def types() -> list[str]:
            return [
                Webhook(secret).verify(r.body, r.headers)["type"]
                for r in receiver.received(f"/{pid}")
            ]

        await eventually(
            lambda: _async(wanted <= set(types()) and types().count("reward.issued") == 2)
        )
        ids = [r.headers["webhook-id"] for r in receiver.received(f"/{pid}")]
        assert len(ids) == len(set(ids))

        # The endpoint on a closed port is retried, then disabled, visibly; the good one
        # got everything meanwhile.
        async def disabled() -> Any:
            got = _ok(await http.get(f"{nbase}/webhooks/{broken['id']}", headers=admin))
            return got if not got["enabled"] else None

        state = await eventually(disabled)
        assert state["disabled_reason"] == "3 consecutive failed deliveries"
        held = await _deliveries(http, urls, pid, admin, endpoint_id=broken["id"])
        assert held and all(d["status"] == "pending" for d in held)
        attempts = [a for d in held for a in d["attempt_log"]]
        assert attempts and all(a["status"] == "failed" and a["error"] for a in attempts)

        # Redelivery of one message: the same webhook-id again, still verifiable.
        [signed_up] = await _deliveries(
            http, urls, pid, admin, endpoint_id=hook["id"], trigger="referral.signed_up"
        )
        before = len(receiver.received(f"/{pid}"))
        _ok(await http.post(f"{nbase}/deliveries/{signed_up['id']}/redeliver", headers=admin), 202)
        await eventually(lambda: _async(len(receiver.received(f"/{pid}")) > before))
        again = receiver.received(f"/{pid}")[-1]
        assert Webhook(secret).verify(again.body, again.headers)["type"] == "referral.signed_up"
        assert ids.count(again.headers["webhook-id"]) == 1

        # Rotation: the next message carries both signatures.
        rotated = _ok(
            await http.post(f"{nbase}/webhooks/{hook['id']}/rotate-secret", headers=admin)
        )
        await _enrol(http, urls, pid, server)
        await eventually(
            lambda: _async(
                len(receiver.received(f"/{pid}")[-1].headers["webhook-signature"].split()) == 2
            )
        )
        last = receiver.received(f"/{pid}")[-1]
        for key in (secret, rotated["secret"]):
            assert (
                json.loads(last.body)["type"]
                == Webhook(key).verify(last.body, last.headers)["type"]
            )

        # The in-app feed holds the welcome and the reward only.
        feed = _ok(
            await http.get(f"{nbase}/participants/{participant['id']}/notifications", headers=admin)
        )
        assert sorted(i["kind"] for i in feed["items"]) == ["reward_issued", "welcome"]

        metrics = (await http.get(f"{urls.notifications}/metrics")).text
        assert 'notifications_sent_total{channel="email"}' in metrics
        assert "notifications_webhook_endpoints_disabled_total" in metrics
        assert 'notifications_retried_total{channel="webhook"}' in metrics
        assert 'notifications_pending{channel="email"}' in metrics


async def test_share_reminder_and_one_click_unsubscribe(
    stack: Stack, urls: Urls, smtp_server: SmtpServer
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    quiet = f"lv-{uuid.uuid4().hex[:6]}@example.com"
    async with httpx.AsyncClient(timeout=10) as http:
        # One reminder "day" is 5 s in this stack.
        pid, server = await _program(http, urls, admin, {"share_reminder_days": 1})
        person = await _enrol(http, urls, pid, server, email=quiet, locale="lv")
        [reminder] = await eventually(
            lambda: _async(_mails(smtp_server, quiet, "Jūsu draugi gaida")), timeout_s=40
        )
        assert person["link_url"] in reminder.get_body(("plain",)).get_content()
        url = reminder["List-Unsubscribe"].strip().strip("<>")  # may be folded
        assert "/unsubscribe/" in url
        # A GET only shows the button; the POST (RFC 8058 one-click) unsubscribes.
        page = await http.get(url)
        assert page.status_code == 200 and "<form" in page.text
        prefs_url = (
            f"{urls.notifications}/v1/programs/{pid}/participants/{person['id']}/preferences"
        )
        assert _ok(await http.get(prefs_url, headers=admin))["marketing"] is True
        done = await http.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
        assert _ok(await http.get(prefs_url, headers=admin)) == {
            "transactional": True,
            "marketing": False,
        }
        forged = await http.post(url[:-3] + "AAA")
        assert forged.status_code == 404


async def test_an_unsubscribed_participant_is_skipped_with_the_reason(
    stack: Stack, urls: Urls, smtp_server: SmtpServer
) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    address = f"zh-{uuid.uuid4().hex[:6]}@example.com"
    async with httpx.AsyncClient(timeout=10) as http:
        pid, server = await _program(http, urls, admin, {"share_reminder_days": 3})
        person = await _enrol(http, urls, pid, server, email=address, locale="zh")
        [welcome] = await eventually(lambda: _async(_mails(smtp_server, address)))
        assert welcome["Subject"] == "欢迎加入推荐计划"
        prefs_url = (
            f"{urls.notifications}/v1/programs/{pid}/participants/{person['id']}/preferences"
        )
        _ok(await http.patch(prefs_url, headers=admin, json={"marketing": False}))

        async def skipped() -> Any:
            rows = await _deliveries(
                http,
                urls,
                pid,
                admin,
                participant_id=person["id"],
                channel="email",
                trigger="share_reminder",
            )
            return rows or None

        [row] = await eventually(skipped, timeout_s=40)
        assert row["status"] == "skipped"
        assert row["reason"] == "unsubscribed from marketing messages"
        assert not _mails(smtp_server, address, "你的朋友在等你")


async def test_templates_are_checked_and_previewed(stack: Stack, urls: Urls) -> None:
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    pid = str(uuid.uuid4())
    base = f"{urls.notifications}/v1/programs/{pid}/templates"
    async with httpx.AsyncClient(timeout=10) as http:
        preview = _ok(
            await http.post(
                f"{base}/preview", headers=admin, json={"trigger": "reward_issued", "locale": "ar"}
            )
        )
        assert '<html lang="ar" dir="rtl">' in preview["html"]
        assert preview["subject"] == "لقد ربحت مكافأة"
        assert "US$" in preview["text"]
        bad = await http.put(
            f"{base}/welcome/en", headers=admin, json={"subject": "Hi", "body": "{% if %}"}
        )
        assert bad.status_code == 422 and bad.json()["field"] == "body"
        unknown = await http.post(f"{base}/preview", headers=admin, json={"trigger": "nope"})
        assert unknown.status_code == 422 and unknown.json()["field"] == "trigger"
        _ok(
            await http.put(
                f"{base}/welcome/lv",
                headers=admin,
                params={"variant": "b"},
                json={"subject": "Sveiki, {{ name }}!", "body": "Saite: {{ link_url }}"},
            )
        )
        variant = _ok(
            await http.post(
                f"{base}/preview",
                headers=admin,
                json={"trigger": "welcome", "locale": "lv", "variant": "b"},
            )
        )
        assert variant["subject"] == "Sveiki, Ada!"
        other = _ok(
            await http.post(
                f"{base}/preview",
                headers=admin,
                json={"trigger": "welcome", "locale": "lv", "variant": "a"},
            )
        )
        assert other["subject"] == "Laipni lūdzam ieteikumu programmā"
        listed = _ok(await http.get(base, headers=admin))
        assert [(t["trigger"], t["locale"], t["variant"]) for t in listed] == [
            ("welcome", "lv", "b")
        ]
        refused = await http.post(
            f"{urls.notifications}/v1/programs/{pid}/webhooks",
            headers=admin,
            json={"url": "ftp://example.com/x"},
        )
        assert refused.status_code == 422 and refused.json()["field"] == "url"


async def _async(value: Any) -> Any:
    return value


async def _status(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> bool:
    return (await http.get(url, headers=headers)).status_code == 200
