"""The support story and ROI against the running services: a referral goes links ->
attribution -> rewards -> notifications as real processes over the real broker, and links'
story of the referrer holds every part, the ledger (with its statement's postings) and the
messages fetched from rewards and notifications over HTTP with the program's key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.journey import Urls, run_journey, settle
from devstack.stack import Stack


def _settled(story: dict[str, Any]) -> bool:
    ledger = story.get("ledger") or {}
    triggers = {m["trigger"] for m in story.get("messages") or []}
    return bool(
        story.get("signups")
        and story["signups"][0]["status"] == "converted"
        and len(story.get("rewards", [])) == 2
        and all(w["state"] == "issued" for w in story["rewards"])
        and ledger.get("balances", {}).get("USD") == 2000
        and {"welcome", "reward_issued"} <= triggers
    )


async def test_the_referrers_story_and_the_programs_roi(stack: Stack, urls: Urls) -> None:
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    pid = journey.program_id
    key = {"Authorization": f"Bearer {journey.program_key}"}
    async with httpx.AsyncClient(timeout=15) as http:

        async def story() -> dict[str, Any]:
            response = await http.get(
                f"{urls.links}/v1/programs/{pid}/participants/{journey.participant_id}/story",
                headers=key,
            )
            assert response.status_code == 200, response.text
            return response.json()  # type: ignore[no-any-return]

        body = await settle(story, _settled)
        assert _settled(body), body
        assert body["complete"] is True
        assert {p["part"]: p["state"] for p in body["parts"]}["messages"] == "ok"
        assert body["participant"]["code"] == journey.code
        assert body["clicks"]["invites"] == 1
        [signup] = body["signups"]
        assert signup["referee_customer_id"] == journey.customer_id
        [purchase] = signup["conversions"]
        assert (purchase["amount"], purchase["currency"]) == (4999, "USD")
        sides = sorted((w["side"], w["amount"], w["unit"]) for w in body["rewards"])
        assert sides == [("referee", 2000, "USD"), ("referrer", 2000, "USD")]
        # The ledger (rewards' own answer) holds the referrer's reward that links projected.
        referrer = [w["reward_id"] for w in body["rewards"] if w["side"] == "referrer"]
        assert [w["reward_id"] for w in body["ledger"]["rewards"]] == referrer
        # And its statement's postings, asked with the program's key: the referrer's reward,
        # the last running balance being the ledger's balance.
        assert {p["part"]: p["state"] for p in body["parts"]}["postings"] == "ok"
        postings = body["ledger"]["postings"]
        assert {p["reward_id"] for p in postings} == set(referrer)
        held = [p for p in postings if p["role"] == "balances"]
        assert held[-1]["balance"] == body["ledger"]["balances"]["USD"] == 2000

        today = datetime.now(UTC).date()
        analytics = (
            await http.get(
                f"{urls.links}/v1/programs/{pid}/analytics?since={today}&until={today}",
                headers=key,
            )
        ).json()
        # 4999 USD bought against 2000 + 2000 issued: (4999 - 4000) / 4000.
        assert analytics["roi"] == [
            {"unit": "USD", "revenue": 4999, "reward_cost": 4000, "roi": 999 / 4000}
        ]
