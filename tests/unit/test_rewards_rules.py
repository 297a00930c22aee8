"""Reward rules: fixed amounts per side (the original format keeps working)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rewards.rules import RewardLine, rewards_for
from shared.contracts.sections.rewards import RewardPolicy
from shared.contracts.sections.rewards import SideReward as Amount

REFERRER = uuid.UUID(int=7)
REFEREE = "cust-42"


def _rewards(settings: RewardPolicy) -> list[RewardLine]:
    return [
        RewardLine(x.side, x.recipient, x.amount, x.unit)
        for x in rewards_for(settings, referrer_id=REFERRER, referee_customer_id=REFEREE)
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (RewardPolicy(), []),
        (
            RewardPolicy(referrer=Amount(amount=2000, unit="USD")),
            [RewardLine("referrer", str(REFERRER), 2000, "USD")],
        ),
        (
            RewardPolicy(referee=Amount(amount=500, unit="MB")),
            [RewardLine("referee", REFEREE, 500, "MB")],
        ),
        (
            RewardPolicy(
                referrer=Amount(amount=2000, unit="USD"), referee=Amount(amount=1000, unit="EUR")
            ),
            [
                RewardLine("referrer", str(REFERRER), 2000, "USD"),
                RewardLine("referee", REFEREE, 1000, "EUR"),
            ],
        ),
        (
            RewardPolicy(
                referrer=Amount(amount=0, unit="USD"), referee=Amount(amount=0, unit="USD")
            ),
            [],
        ),
        (
            RewardPolicy(
                referrer=Amount(amount=0, unit="USD"), referee=Amount(amount=1, unit="USD")
            ),
            [RewardLine("referee", REFEREE, 1, "USD")],
        ),
    ],
    ids=["none", "referrer-only", "referee-only", "both", "zero-amounts", "zero-referrer"],
)
def test_rewards_for(settings: RewardPolicy, expected: list[RewardLine]) -> None:
    assert _rewards(settings) == expected


def test_rewards_from_a_published_definition() -> None:
    settings = RewardPolicy.model_validate(
        {"referrer": {"amount": 2000, "unit": "USD"}, "referee": None}
    )
    assert _rewards(settings) == [RewardLine("referrer", str(REFERRER), 2000, "USD")]


amounts = st.none() | st.builds(
    Amount,
    amount=st.integers(min_value=0, max_value=10**12),
    unit=st.sampled_from(["USD", "EUR", "MB", "MONTH", "PERK"]),
)


@given(referrer=amounts, referee=amounts, referee_id=st.text(min_size=1, max_size=20))
def test_every_line_is_positive_and_sides_are_unique(
    referrer: Amount | None, referee: Amount | None, referee_id: str
) -> None:
    lines = rewards_for(
        RewardPolicy(referrer=referrer, referee=referee),
        referrer_id=REFERRER,
        referee_customer_id=referee_id,
    )
    assert all(line.amount > 0 for line in lines)
    sides = [line.side for line in lines]
    assert len(sides) == len(set(sides))
    expected = {}
    if referrer is not None and referrer.amount > 0:
        expected["referrer"] = RewardLine("referrer", str(REFERRER), referrer.amount, referrer.unit)
    if referee is not None and referee.amount > 0:
        expected["referee"] = RewardLine("referee", referee_id, referee.amount, referee.unit)
    assert {
        line.side: RewardLine(line.side, line.recipient, line.amount, line.unit) for line in lines
    } == expected
    assert all(line.rule == "base" and line.amount == line.asked for line in lines)
