"""Return on investment through the real links app: conversions and rewards in several units
published as attribution and rewards would, and the analytics and experiment report checked
against hand-computed figures, one line per unit (never a sum across units)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.journey import settle
from shared.contracts import (
    ReferralConverted,
    ReferralReversed,
    ReferralSignedUp,
    RewardCreated,
    RewardReversed,
)
from tests.integration.links.conftest import Links
from tests.integration.links.test_links_insights_api import publish


def _events(program_id: uuid.UUID, a: uuid.UUID, b: uuid.UUID) -> list[Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    ids = {name: uuid.uuid4() for name in ("r1", "r2", "r3", "c1", "c2", "c3")}

    def referral(name: str, referrer: uuid.UUID) -> ReferralSignedUp:
        return ReferralSignedUp(referral_id=ids[name], program_id=program_id,
                                referrer_id=referrer, referee_customer_id=f"cust-{name}",
                                signed_up_at=now)  # fmt: skip

    def bought(conv: str, ref: str, referrer: uuid.UUID, amount: int, cur: str) -> Any:
        return ReferralConverted(conversion_id=ids[conv], referral_id=ids[ref],
                                 program_id=program_id, referrer_id=referrer,
                                 referee_customer_id=f"cust-{ref}", order_id=f"o-{conv}",
                                 amount=amount, currency=cur, converted_at=now,
                                 program_version=1)  # fmt: skip

    def refund(conv: str, ref: str, referrer: uuid.UUID, amount: int, cur: str, full: bool) -> Any:
        return ReferralReversed(refund_id=uuid.uuid4(), conversion_id=ids[conv],
                                referral_id=ids[ref], program_id=program_id, referrer_id=referrer,
                                order_id=f"o-{conv}", refunded_amount=amount, currency=cur,
                                full=full, reversed_at=now + timedelta(seconds=1))  # fmt: skip

    def reward(
        rid: uuid.UUID, conv: str, ref: str, referrer: uuid.UUID, side: str, amount: int, unit: str
    ) -> RewardCreated:
        return RewardCreated(reward_id=rid, conversion_id=ids[conv], referral_id=ids[ref],
                             program_id=program_id, program_version=1, referrer_id=referrer,
                             side=side, recipient=str(referrer) if side == "referrer"  # type: ignore[arg-type]
                             else f"cust-{ref}", amount=amount, unit=unit, status="issued",
                             created_at=now)  # fmt: skip

    clawed = uuid.uuid4()
    return [
        referral("r1", a), bought("c1", "r1", a, 10_000, "USD"),
        referral("r2", a), bought("c2", "r2", a, 8_000, "EUR"),
        refund("c2", "r2", a, 3_000, "EUR", full=False),
        referral("r3", b), bought("c3", "r3", b, 2_500, "USD"),
        refund("c3", "r3", b, 2_500, "USD", full=True),
        reward(uuid.uuid4(), "c1", "r1", a, "referrer", 1_500, "USD"),
        reward(uuid.uuid4(), "c1", "r1", a, "referee", 500, "MB"),
        reward(clawed, "c3", "r3", b, "referrer", 1_000, "EUR"),
        reward(uuid.uuid4(), "c3", "r3", b, "referee", 700, "USD"),
        RewardReversed(reward_id=clawed, conversion_id=ids["c3"], program_id=program_id,
                       referrer_id=b, side="referrer", recipient=str(b), amount=1_000,
                       unit="EUR", kind="clawed_back", reversed_at=now + timedelta(seconds=2)),
    ]  # fmt: skip


# By hand: revenue USD 10000 + (2500 - 2500) = 10000, EUR 8000 - 3000 = 5000, MB none.
# Cost USD 1500 + 700 = 2200, EUR 1000 - 1000 clawed back = 0, MB 500.
# ROI USD (10000 - 2200) / 2200; EUR no cost; MB no revenue: neither has a ratio.
EXPECTED = [
    {"unit": "EUR", "revenue": 5_000, "reward_cost": 0, "roi": None},
    {"unit": "MB", "revenue": 0, "reward_cost": 500, "roi": None},
    {"unit": "USD", "revenue": 10_000, "reward_cost": 2_200, "roi": 7_800 / 2_200},
]


async def test_roi_per_unit_for_the_program_and_its_variant(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    a = (await links.enrol(pid)).json()["id"]
    b = (await links.enrol(pid)).json()["id"]
    await publish(links, _events(uuid.UUID(pid), uuid.UUID(a), uuid.UUID(b)))
    today = datetime.now(UTC).date()

    async def analytics() -> httpx.Response:
        return await links.http.get(
            f"/v1/programs/{pid}/analytics?since={today}&until={today}", headers=links.admin
        )

    body = (await settle(analytics, lambda r: r.json()["roi"] == EXPECTED)).json()
    assert body["roi"] == EXPECTED
    assert body["reward_cost"] == {"EUR": 0, "MB": 500, "USD": 2_200}
    assert "never added" in body["roi_definition"]

    report = await links.http.get(f"/v1/programs/{pid}/experiments", headers=links.admin)
    [variant] = report.json()["variants"]  # no experiment: everyone in "default", all time
    assert variant["variant"] == "default" and variant["roi"] == EXPECTED

    # A day with nothing in it has no lines.
    yesterday = today - timedelta(days=1)
    empty = await links.http.get(
        f"/v1/programs/{pid}/analytics?since={yesterday}&until={yesterday}", headers=links.admin
    )
    assert empty.json()["roi"] == []
