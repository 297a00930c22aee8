"""A participant's support story through the real links app (Postgres, broker), with the real
rewards and notifications apps served over HTTP next to it, each on its own database: links
creates the program and enrols, attribution's events are published as attribution would,
rewards issues the rewards and keeps the ledger, notifications logs the messages. Then
notifications stops, and the story says that its part is missing and answers the rest."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from devstack.embedded import free_port
from devstack.journey import settle
from services.links.settings import LinksSettings
from services.notifications.app import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.rewards.app import create_app as rewards_app
from services.rewards.settings import RewardsSettings
from shared.contracts import ReferralConverted, ReferralFlagged, ReferralRejected, ReferralSignedUp
from shared.contracts.referrals import RuleOutcome
from tests.integration.kafka_helpers import migrated
from tests.integration.links.conftest import ADMIN, Links, running_links
from tests.integration.links.test_links_insights_api import BROWSER, DEFINITION, PROBLEM, publish


@contextlib.asynccontextmanager
async def database(pg_server_url: str, component: str) -> AsyncIterator[str]:
    name = f"t_{component}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg_server_url)._replace(path=f"/{name}"))
    try:
        await migrated(url, component)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[uvicorn.Server]:
    """The app over real HTTP on ``port``, with its lifespan (pool, consumers, relay)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        await task


def _service_settings(
    links_settings: LinksSettings, database_url: str, port: int
) -> dict[str, Any]:
    keep = (
        "kafka_bootstrap_servers", "kafka_enable_idempotence", "kafka_fetch_max_wait_ms",
        "kafka_topic_partitions", "kafka_session_timeout_ms", "consumer_retry_backoff_s",
        "relay_poll_interval_s", "admin_api_key",
    )  # fmt: skip
    return {**{k: getattr(links_settings, k) for k in keep}, "database_url": database_url,
            "port": port}  # fmt: skip


def _attribution_events(
    program_id: uuid.UUID, a: uuid.UUID, b: uuid.UUID, a_user: str
) -> list[Any]:
    """B referred A (A is also somebody's friend); A referred customer-1, who bought for
    5000 USD, and customer-2, flagged by the velocity rule and then rejected."""
    now = datetime.now(UTC)
    r0, r1, r2, c1 = (uuid.uuid4() for _ in range(4))
    velocity = RuleOutcome(rule="velocity", action="review", reason="101 signups in an hour")
    return [
        ReferralSignedUp(referral_id=r0, program_id=program_id, referrer_id=b,
                         referee_customer_id=a_user, signed_up_at=now - timedelta(seconds=30)),
        ReferralSignedUp(referral_id=r1, program_id=program_id, referrer_id=a,
                         referee_customer_id="customer-1", signed_up_at=now, variant="a"),
        ReferralConverted(conversion_id=c1, referral_id=r1, program_id=program_id,
                          referrer_id=a, referee_customer_id="customer-1", order_id="o-1",
                          amount=5000, currency="USD", converted_at=now + timedelta(seconds=1),
                          program_version=1, variant="a"),
        ReferralSignedUp(referral_id=r2, program_id=program_id, referrer_id=a,
                         referee_customer_id="customer-2", signed_up_at=now, variant="a"),
        ReferralFlagged(referral_id=r2, program_id=program_id, referrer_id=a,
                        referee_customer_id="customer-2", rules=[velocity], flagged_at=now),
        ReferralRejected(referral_id=r2, program_id=program_id, referrer_id=a,
                         referee_customer_id="customer-2",
                         rules=[RuleOutcome(rule="velocity", action="reject"),
                                RuleOutcome(rule="same_ip_or_device", action="reject",
                                            shadow=True)],
                         rejected_at=now + timedelta(seconds=2)),
    ]  # fmt: skip


async def test_the_whole_story_then_a_partial_one_when_notifications_is_down(
    pg_server_url: str, links_settings: LinksSettings
) -> None:
    rewards_port, notifications_port = free_port(), free_port()
    settings = links_settings.model_copy(
        update={
            "rewards_url": f"http://127.0.0.1:{rewards_port}",
            "notifications_url": f"http://127.0.0.1:{notifications_port}",
        }
    )
    async with (
        database(pg_server_url, "rewards") as rewards_db,
        database(pg_server_url, "notifications") as notifications_db,
        serving(
            rewards_app(RewardsSettings(**_service_settings(settings, rewards_db, rewards_port))),
            rewards_port,
        ),
        serving(
            notifications_app(NotificationsSettings(
                **_service_settings(settings, notifications_db, notifications_port)
            )),
            notifications_port,
        ) as notifications,
        running_links(settings) as links,
    ):  # fmt: skip
        await _whole_then_partial(links, notifications)


async def _whole_then_partial(links: Links, notifications: uvicorn.Server) -> None:
    program = await links.program(**DEFINITION)
    pid = program["id"]
    a = (await links.enrol(pid, name="Alice Example", email="alice@example.com")).json()
    b = (await links.enrol(pid, name="Bob Example", email="bob@example.com")).json()
    shared = await links.http.post(
        f"/v1/programs/{pid}/participants/{a['id']}/shares",
        headers=links.admin, json={"channel": "whatsapp"},
    )  # fmt: skip
    assert shared.status_code == 201
    for agent in (BROWSER, BROWSER, "facebookexternalhit/1.1"):
        assert (await links.click(a["code"], headers={"User-Agent": agent})).status_code == 302
    await publish(
        links,
        _attribution_events(uuid.UUID(pid), uuid.UUID(a["id"]), uuid.UUID(b["id"]),
                            a["external_user_id"]),
    )  # fmt: skip
    url = f"/v1/programs/{pid}/participants/{a['id']}/story"

    async def story() -> dict[str, Any]:
        response = await links.http.get(url, headers=links.admin)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def settled(s: dict[str, Any]) -> bool:
        ledger = s["ledger"] or {}
        return bool(
            s["clicks"]["clicks"] == 3
            and len(s["signups"]) == 2
            and all(r["status"] in ("converted", "rejected") for r in s["signups"])
            and any(r["rules"] for r in s["signups"])
            and any(r["conversions"] for r in s["signups"])
            and len(s["rewards"]) >= 3
            and all(w["state"] == "issued" for w in s["rewards"])
            and s["milestones"]
            and ledger.get("balances", {}).get("USD") == 2000
            and s["participant"]["referred_by"]
            and {m["trigger"] for m in s["messages"] or []} >= {"welcome", "reward_issued"}
        )

    assert settled(await settle(story, settled))
    # An operator's goodwill grant on rewards: a posting no event tells links about.
    async with httpx.AsyncClient(base_url=links.settings.rewards_url) as rewards:
        adjusted = await rewards.post(
            f"/v1/programs/{pid}/participants/{a['id']}/adjustments", headers=links.admin,
            json={"kind": "goodwill", "amount": 300, "unit": "USD", "reason": "sorry for the wait"},
        )  # fmt: skip
    assert adjusted.status_code == 201, adjusted.text

    def adjusted_too(s: dict[str, Any]) -> bool:
        postings = (s["ledger"] or {}).get("postings") or []
        usd = s["ledger"]["balances"].get("USD") if s["ledger"] else None
        return any(p["kind"] == "adjustment" for p in postings) and usd == 2300

    whole = await settle(story, adjusted_too)
    assert adjusted_too(whole), (whole["ledger"], whole["parts"])
    assert whole["complete"] is True
    assert {p["part"]: (p["state"], p["detail"]) for p in whole["parts"]} == {
        "ledger": ("ok", None), "postings": ("ok", None), "messages": ("ok", None),
    }  # fmt: skip
    who = whole["participant"]
    assert (who["participant_id"], who["code"], who["name"]) == (
        a["id"],
        a["code"],
        "Alice Example",
    )
    assert who["referred_by"] == b["id"] and who["erased_at"] is None
    assert "email" not in who and "alice@example.com" not in str(whole)
    # Three redirects: two by one person (one invite), one by a bot.
    assert {k: whole["clicks"][k] for k in ("clicks", "attributable", "invites")} == {
        "clicks": 3, "attributable": 2, "invites": 1,
    }  # fmt: skip
    assert [s["channel"] for s in whole["shares"]] == ["whatsapp"]
    by_friend = {r["referee_customer_id"]: r for r in whole["signups"]}
    bought, refused = by_friend["customer-1"], by_friend["customer-2"]
    assert bought["status"] == "converted" and bought["rules"] == []
    [purchase] = bought["conversions"]
    assert (purchase["amount"], purchase["currency"], purchase["refunded"]) == (5000, "USD", 0)
    assert refused["status"] == "rejected" and refused["conversions"] == []
    assert [(x["decision"], x["rule"], x["action"], x["shadow"]) for x in refused["rules"]] == [
        ("flagged", "velocity", "review", False),
        ("rejected", "same_ip_or_device", "reject", True),
        ("rejected", "velocity", "reject", False),
    ]
    assert refused["rules"][0]["reason"] == "101 signups in an hour"
    # Rewards of both sides, as rewards issued them: A's 2000 USD, the friend's 1000 USD and
    # the milestone's perk; the ledger holds A's (the friend's is the friend's).
    sides = sorted((w["side"], w["recipient"], w["amount"], w["unit"]) for w in whole["rewards"])
    assert ("referee", "customer-1", 1000, "USD") in sides
    assert ("referrer", a["id"], 2000, "USD") in sides
    assert [m["threshold"] for m in whole["milestones"]] == [1]
    ledger = whole["ledger"]
    mine = {w["reward_id"] for w in whole["rewards"] if w["side"] == "referrer"}
    assert {w["reward_id"] for w in ledger["rewards"]} == mine
    # 2000 USD of the reward, 300 of the adjustment (and the milestone's perk, as PERK).
    assert ledger["balances"]["USD"] == 2300 and ledger["postings_truncated"] is False
    # The statement's postings agree with the ledger: the last running balance of each account
    # is what the ledger holds, and each posting moves it by its amount.
    postings = ledger["postings"]
    last: dict[tuple[str, str], int] = {}
    for p in postings:
        assert p["balance"] == last.get((p["role"], p["unit"]), 0) + p["amount"], p
        last[(p["role"], p["unit"])] = p["balance"]
    assert {u: b for (role, u), b in last.items() if role == "balances"} == ledger["balances"]
    assert {u: b for (role, u), b in last.items() if role == "pending" and b} == ledger["pending"]
    grants = [p for p in postings if p["kind"] == "grant" and p["role"] == "balances"]
    assert {p["reward_id"] for p in grants} <= mine and (2000, "USD") in {
        (p["amount"], p["unit"]) for p in grants
    }
    [manual] = [p for p in postings if p["kind"] == "adjustment"]
    assert (manual["amount"], manual["balance"], manual["reason"], manual["actor"]) == (
        300, 2300, "sorry for the wait", "admin",
    )  # fmt: skip
    messages = whole["messages"]
    assert {m["trigger"] for m in messages} >= {"welcome", "reward_issued"}

    # Notifications stops: the story still answers, without the messages, and says so.
    notifications.should_exit = True
    await settle(lambda: _refused(links.settings.notifications_url), lambda down: down, 20)
    partial = await story()
    assert partial["complete"] is False and partial["messages"] is None
    states = {p["part"]: (p["state"], p["detail"]) for p in partial["parts"]}
    assert states["messages"][0] == "unavailable"
    assert "notifications could not be reached" in states["messages"][1]
    assert states["ledger"] == ("ok", None)
    for part in ("participant", "clicks", "shares", "signups", "rewards", "milestones", "ledger"):
        assert partial[part] == whole[part], part

    # The console renders the same story, and says what is missing.
    login = await links.http.post("/console/login", data={"admin_key": ADMIN, "next": "/console"})
    assert login.status_code in (200, 303)
    page = await links.http.get(f"/console/programs/{pid}/participants/{a['id']}")
    assert page.status_code == 200
    assert 'data-testid="story-partial"' in page.text and 'data-part="messages"' in page.text
    assert f'data-referral="{refused["referral_id"]}" data-status="rejected"' in page.text
    assert 'data-unit="USD" data-balance="2300"' in page.text
    assert 'data-testid="postings"' in page.text
    adjustment_row = (
        'data-posting-kind="adjustment" data-role="balances" data-unit="USD" data-amount="300" '
        'data-running="2300"'
    )
    assert adjustment_row in page.text
    assert "sorry for the wait" in page.text
    found = await links.http.get(
        f"/console/programs/{pid}/find", params={"q": a["code"].lower()}, follow_redirects=False
    )
    assert found.headers["location"] == f"/console/programs/{pid}/participants/{a['id']}"


async def _refused(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            await client.get(f"{url}/healthz", timeout=1)
    except httpx.HTTPError:
        return True
    return False


@contextlib.asynccontextmanager
async def silent_server(heard: list[bytes]) -> AsyncIterator[int]:
    """Accepts connections, reads the request, never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await reader.readuntil(b"\r\n\r\n"))
        await asyncio.sleep(60)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_a_silent_or_absent_service_leaves_only_its_part_out(
    links_settings: LinksSettings,
) -> None:
    heard: list[bytes] = []
    async with silent_server(heard) as silent_port:
        settings = links_settings.model_copy(
            update={
                "rewards_url": f"http://127.0.0.1:{silent_port}",
                "notifications_url": f"http://127.0.0.1:{free_port()}",  # nothing listens
                "story_timeout_s": 0.5,
            }
        )
        async with running_links(settings) as links:
            program = await links.program()
            pid = program["id"]
            a = (await links.enrol(pid)).json()
            key = (await links.http.post(f"/v1/programs/{pid}/keys", headers=links.admin)).json()
            url = f"/v1/programs/{pid}/participants/{a['id']}/story"

            started = time.monotonic()
            response = await links.http.get(
                url, headers={"Authorization": f"Bearer {key['secret_key']}"}
            )
            took = time.monotonic() - started
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["complete"] is False
            assert (body["ledger"], body["messages"]) == (None, None)
            states = {p["part"]: (p["state"], p["detail"]) for p in body["parts"]}
            assert states["ledger"] == ("unavailable", "rewards did not answer within 0.5 s")
            assert states["postings"] == ("unavailable", "rewards did not answer within 0.5 s")
            assert states["messages"][0] == "unavailable"
            assert states["messages"][1].startswith("notifications could not be reached")
            # The silent server holds the connection for 60 s: the answer came after the
            # story's time limit (0.5 s) plus the reads, not after the silence.
            assert took < 15, took
            assert body["participant"]["code"] == a["code"]
            assert body["signups"] == [] and body["rewards"] == []
            # Rewards was asked with the caller's own key (the program's), not the admin key.
            assert heard and f"bearer {key['secret_key']}".lower().encode() in heard[0].lower()
            assert ADMIN.encode() not in heard[0]

            # Refused before anything is asked; an unknown participant is a named 404.
            other = await links.program()
            for path, headers, status, field in (
                (url, {}, 401, "Authorization"),
                (f"/v1/programs/{other['id']}/participants/{a['id']}/story", links.admin, 404,
                 "participant_id"),
                (f"/v1/programs/{pid}/participants/{uuid.uuid4()}/story", links.admin, 404,
                 "participant_id"),
                (f"/v1/programs/{uuid.uuid4()}/participants/{a['id']}/story", links.admin, 404,
                 None),
            ):  # fmt: skip
                refused = await links.http.get(path, headers=headers)
                assert refused.status_code == status, (path, refused.text)
                assert refused.headers["content-type"] == PROBLEM
                if field:
                    assert refused.json()["field"] == field
            wrong_program = await links.http.get(
                f"/v1/programs/{other['id']}/participants/{a['id']}/story",
                headers={"Authorization": f"Bearer {key['secret_key']}"},
            )
            assert wrong_program.status_code == 403
