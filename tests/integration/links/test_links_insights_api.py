"""The analytics JSON APIs of the links service, running in-process against a real Postgres
and broker: participants, shares and clicks go through the API and the redirect; attribution's
and rewards' events are published to the broker as those services would. Every figure is
checked against a hand count (see analytics_story)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.journey import settle
from services.links.insights import console
from services.links.insights.dlq import dlq_sizes
from services.links.insights.exports import COLUMNS
from services.links.programs.experiments import assign_variant
from shared.contracts import ParticipantEnrolled, ReferralSignedUp
from shared.contracts.base import Event
from shared.contracts.programs import Variant
from shared.messaging.outbox import envelope_for
from tests.integration.kafka_helpers import read_topic
from tests.integration.links.analytics_story import new_story, referrals, rewards
from tests.integration.links.conftest import Links

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"
DEFINITION: dict[str, Any] = {
    "links": {
        "channels": ["email", "whatsapp", "copy"],
        "embed_origins": ["https://blog.example.com"],
        "invite_promoters": True,
    },
    "rewards": {
        "referrer": {"amount": 2000, "unit": "USD"},
        "referee": {"amount": 1000, "unit": "USD"},
        "milestones": [
            {"threshold": 1, "perk": "sticker"},
            {"threshold": 3, "amount": 5000, "unit": "USD"},
        ],
    },
    "variants": [{"name": "a"}, {"name": "b"}],
}
PROBLEM = "application/problem+json"


async def publish(links: Links, events: list[Event]) -> None:
    producer = links.app.state.runtime.producer
    for event in events:
        env = envelope_for(event, "/test")
        await producer.send_and_wait(
            event.TOPIC, value=env.data, key=event.key().encode(), headers=env.headers()
        )


def _user_in(program_id: str, variant: str) -> str:
    """An external user id that the program's experiment assigns to ``variant``."""
    arms = [Variant(name="a"), Variant(name="b")]
    for i in range(1000):
        user = f"user-{variant}-{i}"
        if assign_variant(program_id, user, arms) == variant:
            return user
    raise AssertionError("no user found")


async def _story_program(links: Links) -> tuple[dict[str, Any], Any]:
    """The story's program through the API: A (opted in) and B enrolled, A's two shares and
    the redirects; then attribution's and rewards' events on the broker."""
    program = await links.program(**DEFINITION)
    pid = program["id"]
    a = await links.enrol(
        pid, external_user_id=_user_in(pid, "a"), name="Alice Example", email="alice@example.com",
        leaderboard_opt_in=True,
    )  # fmt: skip
    b = await links.enrol(
        pid, external_user_id=_user_in(pid, "b"), name="Bob Example", email="bob@example.com"
    )
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    a_out, b_out = a.json(), b.json()
    assert a_out["leaderboard_opt_in"] is True and b_out["leaderboard_opt_in"] is False
    assert a_out["scoreboard_url"].startswith("https://ref.example.com/s/")
    assert (a_out["variant"], b_out["variant"]) == ("a", "b")
    for channel in ("email", "whatsapp"):
        shared = await links.http.post(
            f"/v1/programs/{pid}/participants/{a_out['id']}/shares",
            headers=links.admin,
            json={"channel": channel},
        )
        assert shared.status_code == 201
    # A: a person twice (one unique visit), another person, a bot. B: one person.
    for code, agent in (
        (a_out["code"], BROWSER),
        (a_out["code"], BROWSER),
        (a_out["code"], BROWSER + " Edg/126.0"),
        (a_out["code"], "facebookexternalhit/1.1"),
        (b_out["code"], BROWSER),
    ):
        assert (await links.click(code, headers={"User-Agent": agent})).status_code == 302
    story = new_story(uuid.UUID(pid), uuid.UUID(a_out["id"]), uuid.UUID(b_out["id"]),
                      day=datetime.now(UTC).date())  # fmt: skip
    await publish(links, [*reversed(rewards(story)), *referrals(story)])
    return {"program": program, "a": a_out, "b": b_out}, story


async def test_scoreboard_leaderboard_analytics_and_experiments(links: Links) -> None:
    made, story = await _story_program(links)
    pid, a, b = made["program"]["id"], made["a"], made["b"]
    today = story.day
    tomorrow = today + timedelta(days=1)

    async def analytics() -> httpx.Response:
        return await links.http.get(
            f"/v1/programs/{pid}/analytics?since={today}&until={tomorrow}", headers=links.admin
        )

    expected_funnel = {
        "enrolled": 2, "shared": 1, "clicked": 3, "signed_up": 3, "converted": 1, "rewarded": 2,
    }  # fmt: skip
    response = await settle(
        analytics,
        lambda r: {s["stage"]: s["count"] for s in r.json()["funnel"]} == expected_funnel,
    )
    body = response.json()
    assert {s["stage"]: s["count"] for s in body["funnel"]} == expected_funnel
    assert [s["stage"] for s in body["funnel"]] == list(expected_funnel)
    assert body["rejections_by_reason"] == {"velocity": 1}
    assert body["flagged"] == 1
    assert body["reward_cost"] == {"USD": 2000}  # 2000 + 2000 - 2000 clawed back
    assert body["cost_per_acquired_customer"] == {"USD": 2000.0}
    # Revenue: R1's 5000 + R3's 4000 - 4000 refunded = 5000 USD; ROI (5000 - 2000) / 2000.
    assert body["roi"] == [{"unit": "USD", "revenue": 5000, "reward_cost": 2000, "roi": 1.5}]
    k = body["k_factor"]
    assert (k["participants"], k["invites"], k["conversions"]) == (2, 3, 1)
    assert k["invites_per_participant"] == 1.5
    assert abs(k["invite_conversion_rate"] - 1 / 3) < 1e-12
    assert k["value"] == 0.5 and "invites per participant" in k["definition"]
    days = {d["day"]: d for d in body["daily"]}
    assert list(days) == [str(today), str(tomorrow)]
    assert days[str(today)] == {
        "day": str(today), "enrolled": 2, "shares": 2, "clicks": 3, "signups": 2,
        "conversions": 1, "rewards_issued": 1,
    }  # fmt: skip
    assert days[str(tomorrow)] == {
        "day": str(tomorrow), "enrolled": 0, "shares": 0, "clicks": 0, "signups": 1,
        "conversions": 0, "rewards_issued": 1,
    }  # fmt: skip

    # A's scoreboard, by the token of the URL given at enrolment (no key).
    token = a["scoreboard_url"].rsplit("/", 1)[1]
    board = (await links.http.get(f"/v1/scoreboards/{token}")).json()
    assert board["participant_id"] == a["id"] and board["display_name"] == "Alice Example"
    assert (board["clicks"], board["unique_clicks"]) == (3, 2)
    assert (board["signups"], board["conversions"]) == (2, 1)
    assert board["link_url"] == a["link_url"] and board["qr_svg_url"] == a["qr_svg_url"]
    assert [s["channel"] for s in board["shares"]] == ["email", "whatsapp", "copy"]
    assert board["embed_origins"] == ["https://blog.example.com"]
    friends = {f["name"]: f["status"] for f in board["friends"]}
    assert friends == {"cu•••01": "converted", "cu•••02": "rejected"}
    # The referee's reward (W2) is the friend's, not A's.
    assert board["rewards"] == [
        {"unit": "USD", "pending": 0, "available": 0, "issued": 2000, "reversed": 0, "failed": 0}
    ]
    assert board["next_milestone"] == {
        "threshold": 3, "converted": 1, "remaining": 2, "perk": None, "amount": 5000,
        "unit": "USD",
    }  # fmt: skip
    assert board["leaderboard"][0]["is_you"] and board["leaderboard"][0]["rank"] == 1

    unknown = await links.http.get("/v1/scoreboards/not-a-token")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM and unknown.json()["field"] == "token"

    # The leaderboard: A opted in and shows the name; B did not and is masked.
    board_b = (await links.http.get(f"/v1/programs/{pid}/leaderboard", headers=links.admin)).json()
    assert [(r["rank"], r["converted"], r["signups"]) for r in board_b] == [(1, 1, 2), (2, 0, 1)]
    assert board_b[0]["name"] == "Alice Example"
    assert board_b[1]["name"] != "Bob Example" and "•••" in board_b[1]["name"]
    assert not any(r["is_you"] for r in board_b)
    no_key = await links.http.get(f"/v1/programs/{pid}/leaderboard")
    assert no_key.status_code == 401 and no_key.headers["content-type"] == PROBLEM

    # Experiments: A is the only participant of "a", B of "b".
    report = (await links.http.get(f"/v1/programs/{pid}/experiments", headers=links.admin)).json()
    arms = {v["variant"]: v for v in report["variants"]}
    assert list(arms) == ["a", "b"]
    assert {k: arms["a"][k] for k in ("participants", "sharers", "clicks", "signups",
                                       "conversions")} == {
        "participants": 1, "sharers": 1, "clicks": 2, "signups": 2, "conversions": 1}  # fmt: skip
    assert arms["a"]["participant_conversion_rate"] == 1.0
    assert arms["a"]["click_conversion_rate"] == 0.5
    assert arms["a"]["reward_cost_per_conversion"] == {"USD": 2000.0}
    assert arms["a"]["k_factor"]["value"] == 1.0
    # A: 5000 USD bought against W1's 2000; B: 4000 refunded, W3 clawed back: 0 against 0.
    assert arms["a"]["roi"] == [{"unit": "USD", "revenue": 5000, "reward_cost": 2000, "roi": 1.5}]
    assert arms["b"]["roi"] == [{"unit": "USD", "revenue": 0, "reward_cost": 0, "roi": None}]
    assert (arms["b"]["participants"], arms["b"]["conversions"]) == (1, 0)
    assert arms["b"]["participant_conversion_rate"] == 0.0
    # Wilson 95% for 0/1: [0, 1.96^2 / (1 + 1.96^2)] = [0, 0.7934].
    assert arms["b"]["ci_low"] == 0.0 and abs(arms["b"]["ci_high"] - 0.7934) < 1e-4
    assert report["verdict"] == "not enough data yet" and report["p_value"] is None
    assert report["best"] == "a"
    bad_version = await links.http.get(
        f"/v1/programs/{pid}/experiments?version=9", headers=links.admin
    )
    assert bad_version.status_code == 404 and bad_version.json()["field"] == "version"

    # Erasing B: the scoreboard URL stops working at once, and B leaves the leaderboard.
    token_b = b["scoreboard_url"].rsplit("/", 1)[1]
    assert (await links.http.get(f"/v1/scoreboards/{token_b}")).status_code == 200
    erased = await links.http.delete(
        f"/v1/programs/{pid}/participants/{b['id']}", headers=links.admin
    )
    assert erased.status_code == 200
    gone = await links.http.get(f"/v1/scoreboards/{token_b}")
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM
    after = await links.http.get(f"/v1/programs/{pid}/participants/{b['id']}", headers=links.admin)
    assert after.json()["scoreboard_url"] is None

    async def leaders() -> httpx.Response:
        return await links.http.get(f"/v1/programs/{pid}/leaderboard", headers=links.admin)

    remaining = await settle(leaders, lambda r: len(r.json()) == 1)
    assert [r["name"] for r in remaining.json()] == ["Alice Example"]


async def test_nps_answers_report_and_promoter_invitation(links: Links) -> None:
    program = await links.program(**DEFINITION)
    pid = program["id"]
    url = f"/v1/programs/{pid}/nps"
    at = datetime.now(UTC).replace(microsecond=0)

    too_high = await links.http.post(
        url, headers=links.admin, json={"customer_id": "c-1", "score": 11}
    )
    assert too_high.status_code == 422
    assert too_high.headers["content-type"] == PROBLEM
    assert too_high.json()["field"] == "score"

    answers = [("c-detractor", 3), ("c-passive", 8)]
    for customer, score in answers:
        r = await links.http.post(
            url, headers=links.admin,
            json={"customer_id": customer, "score": score, "answered_at": at.isoformat()},
        )  # fmt: skip
        assert r.status_code == 201 and r.json()["invited_participant_id"] is None
    promoter = {
        "customer_id": "c-promoter", "score": 10, "email": "promoter@example.com",
        "name": "Pat", "locale": "lv", "answered_at": at.isoformat(),
    }  # fmt: skip
    first = await links.http.post(
        url, headers={**links.admin, "Idempotency-Key": "nps-1"}, json=promoter
    )
    assert first.status_code == 201, first.text
    invited = first.json()["invited_participant_id"]
    assert invited is not None and first.json()["category"] == "promoter"
    # The same request again (same key): the first answer, replayed.
    again = await links.http.post(
        url, headers={**links.admin, "Idempotency-Key": "nps-1"}, json=promoter
    )
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    # The same answer without a key: recognised by (customer, time), not counted twice.
    same = await links.http.post(url, headers=links.admin, json=promoter)
    assert same.status_code == 200 and same.json()["response_id"] == first.json()["response_id"]
    # A second answer later by the same promoter: recorded, but no second enrolment.
    later = {**promoter, "score": 9, "answered_at": (at + timedelta(minutes=5)).isoformat()}
    second = await links.http.post(url, headers=links.admin, json=later)
    assert second.status_code == 201 and second.json()["invited_participant_id"] is None

    participant = await links.http.get(
        f"/v1/programs/{pid}/participants/{invited}", headers=links.admin
    )
    assert participant.status_code == 200
    assert participant.json()["external_user_id"] == "c-promoter"
    assert participant.json()["locale"] == "lv"
    records = await read_topic(links.settings, ParticipantEnrolled.TOPIC, expect=2, timeout_s=3)
    enrolled = [ParticipantEnrolled.model_validate_json(r.value) for r in records]
    mine = [e for e in enrolled if e.external_user_id == "c-promoter"]
    assert len(mine) == 1 and mine[0].email == "promoter@example.com"
    assert str(mine[0].participant_id) == invited

    report = (await links.http.get(url, headers=links.admin)).json()
    # 3, 8, 10, 9: promoters 2, passives 1, detractors 1: NPS = 100 * (2 - 1) / 4 = 25.
    assert (report["responses"], report["promoters"], report["passives"],
            report["detractors"]) == (4, 2, 1, 1)  # fmt: skip
    assert report["nps"] == 25.0
    assert report["daily"] == [{"day": str(at.date()), "responses": 4, "nps": 25.0}]


async def test_nps_does_not_enrol_unless_the_program_invites_promoters(links: Links) -> None:
    program = await links.program()
    r = await links.http.post(
        f"/v1/programs/{program['id']}/nps",
        headers=links.admin,
        json={"customer_id": "c-fan", "score": 10},
    )
    assert r.status_code == 201 and r.json()["invited_participant_id"] is None
    missing = await links.http.post(
        f"/v1/programs/{uuid.uuid4()}/nps", headers=links.admin,
        json={"customer_id": "c-fan", "score": 10},
    )  # fmt: skip
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_csv_exports(links: Links) -> None:
    made, story = await _story_program(links)
    pid = made["program"]["id"]
    # A referee id that needs quoting and that a spreadsheet would run as a formula.
    tricky = '=HYPERLINK("http://x.example"),"a"'
    await publish(
        links,
        [ReferralSignedUp(referral_id=uuid.uuid4(), program_id=story.program_id,
                          referrer_id=story.b, referee_customer_id=tricky,
                          signed_up_at=story.at(1, 16))],
    )  # fmt: skip

    async def fetch(kind: str) -> httpx.Response:
        return await links.http.get(f"/v1/programs/{pid}/export/{kind}.csv", headers=links.admin)

    referrals_csv = await settle(lambda: fetch("referrals"), lambda r: r.text.count("\r\n") == 5)
    assert referrals_csv.status_code == 200
    assert referrals_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in referrals_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(referrals_csv.text)))
    assert rows[0] == list(COLUMNS["referrals"])
    by_referee = {r[3]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert set(by_referee) == {"customer-0001", "customer-0002", "customer-0003", "'" + tricky}
    assert by_referee["customer-0001"]["status"] == "converted"
    assert by_referee["customer-0001"]["referrer_code"] == made["a"]["code"]
    assert by_referee["customer-0002"]["reject_rules"] == "velocity"
    assert by_referee["customer-0003"]["status"] == "reversed"
    assert "@" not in referrals_csv.text  # no emails, referee ids only

    rewards_csv = await settle(lambda: fetch("rewards"), lambda r: r.text.count("\r\n") == 5)
    rows = list(csv.reader(io.StringIO(rewards_csv.text)))
    assert rows[0] == list(COLUMNS["rewards"])
    states = {(r[4], r[10], r[9]) for r in rows[1:]}  # side, state, amount
    assert states == {
        ("referrer", "issued", "2000"), ("referee", "pending", "1000"),
        ("referrer", "reversed", "2000"), ("referee", "failed", "1000"),
    }  # fmt: skip
    unknown = await links.http.get(
        f"/v1/programs/{uuid.uuid4()}/export/rewards.csv", headers=links.admin
    )
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


async def test_console_overview_shows_funnels_failed_rewards_and_dlq_sizes(links: Links) -> None:
    made, story = await _story_program(links)
    pid = uuid.UUID(made["program"]["id"])
    # A message the links consumer cannot parse goes to the DLQ, and the console counts it.
    producer = links.app.state.runtime.producer
    await producer.send_and_wait(ReferralSignedUp.TOPIC, value=b"{not json", key=b"x")
    pool = links.app.state.runtime.pool

    async def overview() -> Any:
        return await console.console_overview(pool, await dlq_sizes(links.settings, max_age_s=0))

    def settled(o: Any) -> bool:
        # Partitions are applied concurrently: wait for the whole story, not just its end.
        mine = [p for p in o.programs if p.program_id == pid]
        return bool(
            o.dlq.get("referral.signed_up.dlq") == 1
            and o.failed_rewards
            and mine
            and (mine[0].participants, mine[0].conversions) == (2, 1)
            and [s.count for s in mine[0].funnel] == [2, 1, 3, 3, 1, 2]
        )

    result = await settle(overview, settled)
    assert result.dlq["referral.signed_up.dlq"] == 1
    assert result.dlq["reward.created.dlq"] == 0  # every DLQ topic is listed
    [summary] = [p for p in result.programs if p.program_id == pid]
    assert (summary.participants, summary.conversions, summary.status) == (2, 1, "active")
    assert [s.count for s in summary.funnel] == [2, 1, 3, 3, 1, 2]
    [failed] = result.failed_rewards
    assert (failed.reward_id, failed.reason, failed.amount) == (story.id("w4"), "webhook", 1000)
    assert failed.since == story.at(1, 13)
    # W2 is on hold until D+10: pending, not stuck.
    assert result.stuck_rewards == []
