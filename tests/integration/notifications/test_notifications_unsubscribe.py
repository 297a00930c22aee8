"""The one-click unsubscribe of every participant mail (RFC 8058) stops marketing mail only;
transactional mail stops only by an explicit choice. Mail goes through a real SMTP server; the
link is posted to the real app (its lifespan on a real broker and the same database)."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from urllib.parse import urlsplit

import httpx

from services.notifications import reminders
from services.notifications.unsubscribe import make_token
from shared.contracts import MilestoneReached, ReferralConverted, ReferralSignedUp, RewardIssued
from tests.integration.notifications.conftest import NOW, World

ONE_CLICK = {"content": b"List-Unsubscribe=One-Click"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EVERY_PARTICIPANT_MAIL = {
    "welcome",
    "referral_signed_up",
    "referral_converted",
    "reward_issued",
    "milestone_reached",
    "milestone_nudge",
    "share_reminder",
}


def _reward(program_id: uuid.UUID, referrer_id: uuid.UUID) -> RewardIssued:
    return RewardIssued(
        reward_id=uuid.uuid4(),
        conversion_id=uuid.uuid4(),
        referral_id=uuid.uuid4(),
        program_id=program_id,
        program_version=1,
        referrer_id=referrer_id,
        side="referrer",
        recipient=str(referrer_id),
        amount=2000,
        unit="USD",
        issued_at=NOW,
    )


def _link(mail: EmailMessage) -> str:
    """The path of the mail's List-Unsubscribe URL (the app is mounted at its root)."""
    header = " ".join(mail["List-Unsubscribe"].split())  # a long header may be folded
    assert header.startswith("<https://notify.example.com/unsubscribe/") and header.endswith(">")
    return urlsplit(header[1:-1]).path


async def _preferences(api: httpx.AsyncClient, program_id: uuid.UUID, pid: uuid.UUID) -> object:
    response = await api.get(f"/v1/programs/{program_id}/participants/{pid}/preferences")
    assert response.status_code == 200
    return response.json()


async def _every_mail_to(world: World, address: str) -> tuple[uuid.UUID, uuid.UUID]:
    """One mail of each participant trigger, transactional and marketing, sent to ``address``."""
    program_id = await world.program(
        {
            "notifications": {"share_reminder_days": 1},
            "rewards": {"milestones": [{"threshold": 2, "perk": "Invitation"}]},
        }
    )
    ada = (await world.enrol(program_id, email=address)).participant_id
    referral = uuid.uuid4()
    await world.apply(
        ReferralSignedUp(
            referral_id=referral,
            program_id=program_id,
            referrer_id=ada,
            referee_customer_id="c-1",
            signed_up_at=NOW,
        )
    )
    await world.apply(
        ReferralConverted(
            conversion_id=uuid.uuid4(),
            referral_id=referral,
            program_id=program_id,
            referrer_id=ada,
            referee_customer_id="c-1",
            order_id="o-1",
            amount=1000,
            currency="EUR",
            converted_at=NOW,
        )
    )
    await world.apply(_reward(program_id, ada))
    await world.apply(
        MilestoneReached(
            program_id=program_id, referrer_id=ada, threshold=2, perk="Invitation", reached_at=NOW
        )
    )
    # The share reminder and the "one more referral" nudge (marketing), due now.
    await world.pool.execute("UPDATE reminders SET due_at = now() WHERE done_at IS NULL")
    await reminders.run_due(world.pool, world.context)
    await world.send_all()
    return program_id, ada


async def test_each_mails_one_click_link_stops_marketing_only(
    world: World, api: httpx.AsyncClient
) -> None:
    program_id, ada = await _every_mail_to(world, "ada@example.com")
    sent = await world.deliveries(channel="email", status="sent")
    assert {r["trigger"] for r in sent} == EVERY_PARTICIPANT_MAIL
    mails = world.smtp.to("ada@example.com")
    assert len(mails) == len(EVERY_PARTICIPANT_MAIL)
    for mail in mails:
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", mail["Subject"]
        await world.pool.execute("DELETE FROM preferences")
        response = await api.post(_link(mail), headers=FORM, **ONE_CLICK)
        assert response.status_code == 200, mail["Subject"]
        assert await _preferences(api, program_id, ada) == {
            "transactional": True,
            "marketing": False,
        }, mail["Subject"]

    # Unsubscribed by one click: the notices of one's own rewards still go, nudges do not.
    await world.apply(_reward(program_id, ada))
    await world.pool.execute(
        "INSERT INTO reminders (id, program_id, participant_id, kind, dedupe, due_at) "
        "VALUES ($1, $2, $3, 'share_reminder', 'again', now())",
        uuid.uuid4(),
        program_id,
        ada,
    )
    await reminders.run_due(world.pool, world.context)
    reward = (await world.deliveries(channel="email", trigger="reward_issued"))[-1]
    reminder = (await world.deliveries(channel="email", trigger="share_reminder"))[-1]
    assert reward["status"] == "pending" and reward["reason"] is None
    assert reminder["status"] == "skipped"
    assert reminder["reason"] == "unsubscribed from marketing messages"


async def test_transactional_mail_stops_only_by_an_explicit_choice(
    world: World, api: httpx.AsyncClient
) -> None:
    program_id = await world.program()
    ada = (await world.enrol(program_id, email="ada@example.com")).participant_id
    prefs = f"/v1/programs/{program_id}/participants/{ada}/preferences"
    # A link sent before the change named the transactional category: it stops marketing.
    old_link = f"/unsubscribe/{make_token(world.settings.unsubscribe_key(), ada, 'transactional')}"
    assert (await api.post(old_link, headers=FORM, **ONE_CLICK)).status_code == 200
    assert await _preferences(api, program_id, ada) == {"transactional": True, "marketing": False}
    # An unsubscribe never turns marketing back on, whatever was chosen before.
    await world.send_all()
    [welcome] = world.smtp.to("ada@example.com")
    assert (await api.post(_link(welcome), headers=FORM, **ONE_CLICK)).status_code == 200
    assert await _preferences(api, program_id, ada) == {"transactional": True, "marketing": False}
    # The page offers the explicit choice; a scanner's GET changes nothing.
    page = await api.get(_link(welcome))
    assert page.status_code == 200 and 'name="transactional" value="stop"' in page.text
    assert await _preferences(api, program_id, ada) == {"transactional": True, "marketing": False}
    # Explicitly: on the page, or through the preferences API.
    stop_all = await api.post(_link(welcome), headers=FORM, content=b"transactional=stop")
    assert stop_all.status_code == 200
    assert await _preferences(api, program_id, ada) == {"transactional": False, "marketing": False}
    assert (await api.patch(prefs, json={"transactional": True})).status_code == 200
    assert (await api.patch(prefs, json={"transactional": False})).json() == {
        "transactional": False,
        "marketing": False,
    }
