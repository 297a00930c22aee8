"""The console's support story page and ROI, rendered from model instances (queries and the
calls to other services replaced; no database, broker or network)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.links.insights import reports, stats, story
from services.links.insights import story_repository as stories
from services.links.insights.story_models import (
    DecisionRule,
    LedgerReward,
    ParticipantStory,
    PartState,
    Posting,
    StoryClicks,
    StoryConversion,
    StoryLedger,
    StoryMessage,
    StoryMilestone,
    StoryParticipant,
    StoryReward,
    StoryShare,
    StorySignup,
)
from services.links.programs import repository
from services.links.web.story_timeline import timeline
from tests.unit.test_links_web_console import PROGRAM, _analytics, _experiments, _nps
from tests.unit.test_links_web_scoreboard import ADMIN_KEY, assert_well_formed, make_app

ALICE, FRIEND_REF, REJECTED_REF = uuid.UUID(int=21), uuid.UUID(int=31), uuid.UUID(int=32)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)


def sample_story(*, partial: bool = False) -> ParticipantStory:
    reward = dict(
        referral_id=FRIEND_REF, conversion_id=uuid.UUID(int=41), rule="base", perk=None,
        unit="USD", program_version=1, created_at=at(12, 1), available_at=None, issued_at=None,
        reversed_at=None, reversal_kind=None, reversed_amount=None, failed_at=None,
        failure_reason=None,
    )  # fmt: skip
    parts = [
        PartState(part="ledger", source="rewards", state="ok"),
        PartState(part="postings", source="rewards", state="ok"),
        PartState(part="messages", source="notifications", state="ok"),
    ]
    account = f"participant:{PROGRAM}:{ALICE}"
    # A grant of 2500, then an operator takes 500 back: the balance the ledger shows (2000).
    postings = [
        Posting(at=at(12, 1), kind="grant", account=account, role="balances", unit="USD",
                amount=2500, balance=2500, reward_id=uuid.UUID(int=61)),
        Posting(at=at(14), kind="adjustment", account=account, role="balances", unit="USD",
                amount=-500, balance=2000, actor="admin", reason="double <grant>"),
    ]  # fmt: skip
    if partial:
        parts[1] = PartState(
            part="postings", source="rewards", state="not_offered",
            detail="this rewards version offers no ledger statement",
        )  # fmt: skip
        parts[2] = PartState(
            part="messages", source="notifications", state="unavailable",
            detail="notifications could not be reached (ConnectError)",
        )  # fmt: skip
    return ParticipantStory(
        participant=StoryParticipant(
            participant_id=ALICE, program_id=PROGRAM, external_user_id="user-<alice>",
            code="ALICE2026", name="Alice <Example>", locale="en", variant="a",
            enrolled_at=at(9), leaderboard_opt_in=True,
        ),
        clicks=StoryClicks(clicks=4, attributable=3, invites=2, daily=[]),
        shares=[StoryShare(share_id=uuid.UUID(int=51), channel="whatsapp", shared_at=at(9, 20))],
        signups=[
            StorySignup(
                referral_id=REJECTED_REF, referee_customer_id="customer-0002",
                status="rejected", status_at=at(13), signed_up_at=at(11, 30),
                flagged_at=at(11, 30), rejected_at=at(13),
                rules=[
                    DecisionRule(decision="flagged", rule="velocity", action="review",
                                 shadow=False, reason="101 signups in an hour"),
                    DecisionRule(decision="rejected", rule="same_ip", action="reject",
                                 shadow=True, reason=""),
                ],
                conversions=[],
            ),
            StorySignup(
                referral_id=FRIEND_REF, referee_customer_id="customer-0001",
                status="converted", status_at=at(12), signed_up_at=at(11), flagged_at=None,
                rejected_at=None, rules=[],
                conversions=[StoryConversion(
                    conversion_id=uuid.UUID(int=41), sequence=1, amount=5000, currency="USD",
                    converted_at=at(12), program_version=1, refunded=0, reversed_at=None,
                )],
            ),
        ],
        rewards=[
            StoryReward(reward_id=uuid.UUID(int=61), side="referrer", recipient=str(ALICE),
                        amount=2000, state="issued", **{**reward, "issued_at": at(12, 1)}),
            StoryReward(reward_id=uuid.UUID(int=62), side="referee", recipient="customer-0001",
                        amount=1000, state="pending", **reward),
        ],
        milestones=[StoryMilestone(threshold=1, reached_at=at(12, 2), perk="sticker",
                                   amount=None, unit=None)],
        ledger=StoryLedger(
            balances={"USD": 2000}, pending={},
            rewards=[LedgerReward(reward_id=uuid.UUID(int=61), side="referrer", rule="base",
                                  amount=2000, unit="USD", status="issued",
                                  fulfilment="ledger")],
            postings=None if partial else postings,
        ),
        messages=None if partial else [
            StoryMessage(message_id=uuid.UUID(int=71), channel="email", trigger="welcome",
                         category="transactional", status="sent", reason=None, attempts=1,
                         created_at=at(9), sent_at=at(9, 1)),
        ],
        parts=parts,
        complete=not partial,
    )  # fmt: skip


@pytest.fixture
def stories_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"partial": False}

    async def get_program(conn: object, program_id: uuid.UUID) -> Any:
        return {"name": "Spring", "status": "active"} if program_id == PROGRAM else None

    async def participant_story(
        pool: object, program_id: uuid.UUID, participant_id: uuid.UUID, sources: Any
    ) -> Any:
        seen["token"] = sources.token
        if participant_id != ALICE:
            return None
        return sample_story(partial=seen["partial"])

    async def find_participant(conn: object, program_id: uuid.UUID, text: str) -> Any:
        return ALICE if text in ("ALICE2026", "user-<alice>") else None

    async def program_analytics(
        conn: object, program_id: uuid.UUID, since: date, until: date
    ) -> Any:
        a = _analytics(since, until)
        roi = stats.roi_lines({"USD": 96_000, "EUR": 0}, {"USD": 24_000, "MB": 500})
        return a.model_copy(update={"roi": roi})

    async def experiment_report(conn: object, program_id: uuid.UUID, version: Any = None) -> Any:
        report = _experiments()
        roi = stats.roi_lines({"USD": 30_000}, {"USD": 12_000})
        return report.model_copy(
            update={"variants": [v.model_copy(update={"roi": roi}) for v in report.variants]}
        )

    async def nps_report(conn: object, program_id: uuid.UUID, since: date, until: date) -> Any:
        return _nps(since)

    monkeypatch.setattr(repository, "get_program", get_program)
    monkeypatch.setattr(story, "participant_story", participant_story)
    monkeypatch.setattr(stories, "find_participant", find_participant)
    monkeypatch.setattr(reports, "program_analytics", program_analytics)
    monkeypatch.setattr(reports, "experiment_report", experiment_report)
    monkeypatch.setattr(reports, "nps_report", nps_report)
    return seen


@pytest.fixture
def client(stories_seen: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(make_app()) as c:
        login = c.post("/console/login", data={"admin_key": ADMIN_KEY, "next": "/console"},
                       follow_redirects=False)  # fmt: skip
        assert login.status_code == 303
        yield c


def test_the_story_page_renders_every_part(
    client: TestClient, stories_seen: dict[str, Any]
) -> None:
    response = client.get(f"/console/programs/{PROGRAM}/participants/{ALICE}")
    assert response.status_code == 200
    html = response.text
    assert_well_formed(html)
    # The console asks the other services with the admin key it signed in with.
    assert stories_seen["token"] == ADMIN_KEY
    assert "Alice &lt;Example&gt;" in html and "<Example>" not in html  # escaped
    assert 'data-testid="story-partial"' not in html
    statuses = dict(re.findall(r'data-referral="([0-9a-f-]+)" data-status="(\w+)"', html))
    assert statuses == {str(REJECTED_REF): "rejected", str(FRIEND_REF): "converted"}
    assert re.findall(r'data-rule="(\w+)"', html) == ["velocity", "same_ip"]
    assert "reject (shadow)" in html and "101 signups in an hour" in html
    assert "$50.00" in html  # the friend's purchase
    sides = re.findall(r'data-state="(\w+)" data-side="(\w+)"', html)
    assert sides == [("issued", "referrer"), ("pending", "referee")]
    assert re.search(r'data-unit="USD" data-balance="2000"', html)
    assert 'data-message="00000000-0000-0000-0000-000000000047" data-status="sent"' in html
    # The statement's postings, oldest first; the last running balance is the balance.
    postings = re.findall(
        r'data-posting-kind="(\w+)" data-role="(\w+)" data-unit="USD" data-amount="(-?\d+)" '
        r'data-running="(-?\d+)"',
        html,
    )
    assert postings == [("grant", "balances", "2500", "2500"),
                        ("adjustment", "balances", "-500", "2000")]  # fmt: skip
    assert "double &lt;grant&gt;" in html and "(admin)" in html and "-$5.00" in html
    assert "first 2 shown" not in html  # not truncated
    kinds = re.findall(r'<tr data-kind="(\w+)">', html)
    # Newest first: the adjustment (14:00), the rejection (13:00), the milestone (12:02) ...
    # the enrolment (09:00).
    assert kinds[:3] == ["ledger", "decision", "milestone"] and kinds[-1] == "enrolment"
    assert sorted(set(kinds)) == sorted(
        {"enrolment", "share", "signup", "decision", "purchase", "reward", "milestone", "ledger",
         "message"}
    )  # fmt: skip
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_a_partial_story_says_which_part_is_missing(
    client: TestClient, stories_seen: dict[str, Any]
) -> None:
    stories_seen["partial"] = True
    html = client.get(f"/console/programs/{PROGRAM}/participants/{ALICE}").text
    assert_well_formed(html)
    banner = re.search(r'data-testid="story-partial">(.*?)</p>', html, flags=re.S)
    assert banner and 'data-part="messages"' in banner.group(1)
    assert "notifications could not be reached (ConnectError)" in banner.group(1)
    assert 'data-part="ledger"' not in banner.group(1)
    # The rest is still there.
    assert re.search(r'data-unit="USD" data-balance="2000"', html)
    assert "data-message=" not in html
    # An older rewards without a statement: no postings table, and the page says why.
    assert 'data-testid="postings"' not in html
    assert "postings: this rewards version offers no ledger statement" in html


def test_unknown_participants_and_programs_are_404_pages(client: TestClient) -> None:
    assert client.get(f"/console/programs/{PROGRAM}/participants/{uuid.uuid4()}").status_code == 404
    other = client.get(f"/console/programs/{uuid.uuid4()}/participants/{ALICE}")
    assert other.status_code == 404 and "No such program" in other.text


def test_the_finder_goes_to_the_story_by_code_or_user_id(client: TestClient) -> None:
    for q in ("ALICE2026", "user-<alice>"):
        found = client.get(f"/console/programs/{PROGRAM}/find", params={"q": q},
                           follow_redirects=False)  # fmt: skip
        assert found.status_code == 303
        assert found.headers["location"] == f"/console/programs/{PROGRAM}/participants/{ALICE}"
    missing = client.get(f"/console/programs/{PROGRAM}/find", params={"q": "nobody"})
    assert missing.status_code == 404 and "No such participant" in missing.text


def test_strangers_go_to_the_login() -> None:
    with TestClient(make_app()) as c:
        for path in (f"/console/programs/{PROGRAM}/participants/{ALICE}",
                     f"/console/programs/{PROGRAM}/find?q=x"):  # fmt: skip
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/console/login")


def test_the_program_page_shows_roi_per_unit_and_variant(client: TestClient) -> None:
    html = client.get(f"/console/programs/{PROGRAM}?since=2026-11-01&until=2026-11-10").text
    assert_well_formed(html)
    rows = re.findall(
        r'data-unit="(\w+)" data-revenue="(-?\d+)" data-cost="(-?\d+)" data-roi="([^"]*)"', html
    )
    # USD: (96000 - 24000) / 24000 = 3.0; EUR refunded to 0, no cost; MB: cost, no revenue.
    assert rows == [("EUR", "0", "0", ""), ("MB", "0", "500", ""), ("USD", "96000", "24000", "3.0")]
    assert "300.0%" in html and "$960.00" in html
    # Per variant: (30000 - 12000) / 12000 = 150%.
    assert re.findall(r'data-testid="variant-roi">([^<]*)<', html) == ["USD 150.0%", "USD 150.0%"]
    assert f'action="/console/programs/{PROGRAM}/find"' in html


def test_the_timeline_is_newest_first_and_names_rules() -> None:
    moments = timeline(sample_story(), lambda n, unit: f"{n} {unit}")
    assert [m.at for m in moments] == sorted((m.at for m in moments), reverse=True)
    texts = [m.text for m in moments]
    assert "customer-0002 rejected: same_ip (shadow)" in texts
    assert "customer-0002 flagged: velocity" in texts
    assert "customer-0001 bought 5000 USD" in texts
    assert "Reward 1000 USD to referee customer-0001 granted" in texts
    assert "email message 'welcome': sent" in texts
    assert "Manual adjustment -500 USD by admin: double <grant>" in texts
    # Grants show once, as the reward's own moment; a redemption only the ledger tells.
    assert [m.kind for m in moments].count("ledger") == 1
    sample = sample_story()
    assert sample.ledger is not None and sample.ledger.postings is not None
    spent = sample.ledger.postings[-1].model_copy(
        update={"kind": "redemption", "amount": -700, "actor": None, "reason": None}
    )
    ledger = sample.ledger.model_copy(update={"postings": [spent]})
    moments = timeline(sample.model_copy(update={"ledger": ledger}), lambda n, u: f"{n} {u}")
    assert [m.text for m in moments if m.kind == "ledger"] == ["Redeemed 700 USD"]
