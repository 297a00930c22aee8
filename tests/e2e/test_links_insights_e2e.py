"""Analytics against the running services: a referral goes links -> attribution -> rewards as
real processes over the real broker, and the links service's scoreboard, leaderboard,
analytics and exports reflect it (fed only by events)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx

from devstack.journey import Urls, run_journey, settle
from devstack.stack import Stack


async def test_a_referral_shows_on_the_scoreboard_and_in_the_analytics(
    stack: Stack, urls: Urls
) -> None:
    journey = await run_journey(urls, stack.admin_api_key, log=lambda _: None)
    pid = journey.program_id
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        participant = (
            await http.get(
                f"{urls.links}/v1/programs/{pid}/participants/{journey.participant_id}",
                headers=admin,
            )
        ).json()
        token = participant["scoreboard_url"].rsplit("/s/", 1)[1]

        async def scoreboard() -> dict[str, Any]:
            return (await http.get(f"{urls.links}/v1/scoreboards/{token}")).json()  # type: ignore[no-any-return]

        board = await settle(
            scoreboard,
            lambda b: (
                b.get("conversions") == 1 and any(r["issued"] == 2000 for r in b.get("rewards", []))
            ),
        )
        assert board["participant_id"] == journey.participant_id
        assert board["code"] == journey.code
        assert (board["clicks"], board["unique_clicks"]) == (1, 1)
        assert (board["signups"], board["conversions"]) == (1, 1)
        # The friend, masked: never the full customer id.
        [friend] = board["friends"]
        assert friend["status"] == "converted"
        assert friend["name"] != journey.customer_id and "•••" in friend["name"]
        assert friend["name"].startswith(journey.customer_id[:2])
        # Only the referrer's side is the participant's.
        assert board["rewards"] == [
            {"unit": "USD", "pending": 0, "available": 0, "issued": 2000, "reversed": 0,
             "failed": 0}
        ]  # fmt: skip
        assert [(r["rank"], r["converted"], r["is_you"]) for r in board["leaderboard"]] == [
            (1, 1, True)
        ]

        today = datetime.now(UTC).date()

        async def analytics() -> dict[str, Any]:
            return (  # type: ignore[no-any-return]
                await http.get(
                    f"{urls.links}/v1/programs/{pid}/analytics?since={today}&until={today}",
                    headers=admin,
                )
            ).json()

        # Both sides' rewards (2000 USD each) were issued at once (internal ledger, no hold).
        body = await settle(analytics, lambda b: b.get("reward_cost") == {"USD": 4000})
        assert {s["stage"]: s["count"] for s in body["funnel"]} == {
            "enrolled": 1, "shared": 0, "clicked": 1, "signed_up": 1, "converted": 1,
            "rewarded": 1,
        }  # fmt: skip
        assert body["reward_cost"] == {"USD": 4000}
        assert body["cost_per_acquired_customer"] == {"USD": 4000.0}
        assert body["k_factor"]["value"] == 1.0
        [day] = body["daily"]
        assert (day["enrolled"], day["clicks"], day["signups"], day["conversions"]) == (1, 1, 1, 1)
        assert day["rewards_issued"] == 2

        export = await http.get(
            f"{urls.links}/v1/programs/{pid}/export/referrals.csv", headers=admin
        )
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert [(r["referee_id"], r["status"]) for r in rows] == [
            (journey.customer_id, "converted")
        ]

        missing = await http.get(f"{urls.links}/v1/scoreboards/no-such-token")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
