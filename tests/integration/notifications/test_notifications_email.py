"""Email through a real SMTP server: headers, locale, at most once per event and recipient,
outages delay without losing or blocking."""

from __future__ import annotations

import asyncio
import uuid

from services.notifications.email import message_id
from shared.contracts import ReferralSignedUp, RewardIssued
from shared.messaging.outbox import envelope_for
from tests.integration.notifications.conftest import NOW, World


async def test_welcome_email_has_one_click_unsubscribe_and_a_stable_message_id(
    world: World,
) -> None:
    program_id = await world.program()
    enrolled = await world.enrol(program_id, email="ada@example.com")
    await world.send_all()
    [mail] = world.smtp.to("ada@example.com")
    assert mail["Subject"] == "Welcome to the referral program"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = mail["List-Unsubscribe"].strip()  # a long header may be folded
    assert unsubscribe.startswith("<https://notify.example.com/unsubscribe/")
    [delivery] = await world.deliveries(channel="email")
    assert mail["Message-ID"].strip() == message_id(delivery["id"])
    assert delivery["status"] == "sent"
    text = mail.get_body(("plain",)).get_content()
    assert enrolled.link_url in text
    html = mail.get_body(("html",)).get_content()
    assert 'dir="ltr"' in html and enrolled.link_url in html
    # The feed has the welcome too.
    feed = await world.pool.fetch("SELECT kind FROM notifications")
    assert [r["kind"] for r in feed] == ["welcome"]


async def test_arabic_mail_is_right_to_left_and_amounts_are_localized(world: World) -> None:
    program_id = await world.program()
    enrolled = await world.enrol(program_id, email="sara@example.com", locale="ar")
    await world.send_all()
    [mail] = world.smtp.to("sara@example.com")
    assert mail["Subject"] == "مرحبًا بك في برنامج الإحالة"
    html = mail.get_body(("html",)).get_content()
    assert '<html lang="ar" dir="rtl">' in html
    assert mail["Content-Language"] == "ar"
    await world.apply(
        RewardIssued(
            reward_id=uuid.uuid4(),
            conversion_id=uuid.uuid4(),
            referral_id=uuid.uuid4(),
            program_id=program_id,
            program_version=1,
            referrer_id=enrolled.participant_id,
            side="referrer",
            recipient=str(enrolled.participant_id),
            amount=2000,
            unit="USD",
            issued_at=NOW,
        )
    )
    await world.send_all()
    reward = world.smtp.to("sara@example.com")[-1]
    assert reward["Subject"] == "لقد ربحت مكافأة"
    assert "20.00\xa0US$" in reward.get_body(("plain",)).get_content()


async def test_a_redelivered_event_sends_one_email(world: World) -> None:
    program_id = await world.program()
    enrolled = await world.enrol(program_id, email="bo@example.com")
    event = ReferralSignedUp(
        referral_id=uuid.uuid4(),
        program_id=program_id,
        referrer_id=enrolled.participant_id,
        referee_customer_id="cust-1",
        signed_up_at=NOW,
    )
    env = envelope_for(event, "/test")
    await world.apply(event, env)
    await world.apply(event, env)  # redelivered
    # Two consumer instances at once (as if both had passed their inbox check).
    await asyncio.gather(world.apply(event, env), world.apply(event, env))
    await world.send_all()
    await world.send_all()
    thanks = [m for m in world.smtp.to("bo@example.com") if "thank you" in m["Subject"]]
    assert len(thanks) == 1
    rows = await world.deliveries(event_id=uuid.UUID(env.id))
    assert [(r["channel"], r["status"]) for r in rows] == [("email", "sent")]


async def test_a_down_smtp_server_delays_without_losing(world: World) -> None:
    program_id = await world.program()
    world.smtp.stop()
    await world.enrol(program_id, email="cy@example.com")
    await world.send_all()
    [pending] = await world.deliveries(channel="email")
    assert pending["status"] == "pending" and pending["attempts"] == 1
    assert "Connect" in pending["reason"] or "refused" in pending["reason"].lower()
    world.smtp.start()
    await world.send_all()
    [sent] = await world.deliveries(channel="email")
    assert sent["status"] == "sent"
    assert len(world.smtp.to("cy@example.com")) == 1
    attempts = await world.pool.fetch(
        "SELECT status, error FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        sent["id"],
    )
    assert [a["status"] for a in attempts] == ["failed", "sent"]
    assert attempts[0]["error"]


async def test_a_refused_recipient_fails_alone(world: World) -> None:
    program_id = await world.program()
    world.smtp.inbox.refusals.append("550 5.1.1 <gone@example.com> mailbox unavailable")
    await world.enrol(program_id, email="gone@example.com")
    await world.send_all()
    await world.enrol(program_id, email="here@example.com")
    await world.send_all()
    statuses = {r["status"]: r for r in await world.deliveries(channel="email")}
    assert set(statuses) == {"failed", "sent"}
    assert "550" in statuses["failed"]["reason"]
    assert "gone@example.com" not in statuses["failed"]["reason"]  # no address in the log
    assert len(world.smtp.to("here@example.com")) == 1


async def test_a_temporary_refusal_is_retried(world: World) -> None:
    program_id = await world.program()
    world.smtp.inbox.refusals.append("451 4.3.0 try again later")
    await world.enrol(program_id, email="dee@example.com")
    await world.send_all()
    [row] = await world.deliveries(channel="email")
    assert row["status"] == "pending" and "451" in row["reason"]
    await world.send_all()
    assert len(world.smtp.to("dee@example.com")) == 1


async def test_no_address_is_logged_as_skipped(world: World) -> None:
    program_id = await world.program()
    await world.enrol(program_id)
    [row] = await world.deliveries(channel="email")
    assert row["status"] == "skipped" and row["reason"] == "no email address"
