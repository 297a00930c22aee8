"""Reward rules beyond fixed amounts: percentages, tiers, caps, budget, milestones, variants,
and the policy model's validation. Table-driven cases and Hypothesis properties."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.rewards.rules import (
    Granted,
    History,
    RewardLine,
    base_amount,
    initial_state,
    milestones_due,
    next_milestone,
    policy_of,
    rewards_for,
)
from shared.contracts.programs import ProgramDefinition
from shared.contracts.sections.rewards import Milestone, RewardPolicy, SideReward, Tier

REFERRER = uuid.UUID(int=7)
REFEREE = "cust-42"


def _lines(policy: RewardPolicy, **kw: object) -> list[RewardLine]:
    return rewards_for(policy, referrer_id=REFERRER, referee_customer_id=REFEREE, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("side", "conversion_amount", "before", "expected"),
    [
        (SideReward(amount=2000, unit="USD"), 4999, 0, 2000),
        (SideReward(unit="USD", percent_bp=1000), 4999, 0, 499),
        (SideReward(unit="USD", percent_bp=1000, max_amount=300), 4999, 0, 300),
        (SideReward(unit="USD", percent_bp=10_000), 0, 0, 0),
        (
            SideReward(
                amount=1000,
                unit="USD",
                tiers=[Tier(min_converted=5, amount=1500), Tier(min_converted=10, amount=2000)],
            ),
            0,
            4,
            1000,
        ),
        (
            SideReward(
                amount=1000,
                unit="USD",
                tiers=[Tier(min_converted=10, amount=2000), Tier(min_converted=5, amount=1500)],
            ),
            0,
            7,
            1500,
        ),
        (
            SideReward(amount=1000, unit="USD", tiers=[Tier(min_converted=5, amount=1500)]),
            0,
            12,
            1500,
        ),
    ],
    ids=["fixed", "percent", "percent-max", "percent-of-zero", "below-tier", "mid-tier", "top"],
)
def test_base_amount(side: SideReward, conversion_amount: int, before: int, expected: int) -> None:
    assert (
        base_amount(side, conversion_amount=conversion_amount, converted_before=before) == expected
    )


def test_dropbox_lifetime_cap_grants_the_rest_then_capped_lines() -> None:
    policy = RewardPolicy(
        referrer=SideReward(amount=500, unit="MB", lifetime_cap=16_000),
        referee=SideReward(amount=500, unit="MB"),
    )
    [referrer, referee] = _lines(policy, history=History(referrer=Granted(lifetime=15_800)))
    assert (referrer.amount, referrer.requested, referrer.asked) == (200, 500, 500)
    assert (referee.amount, referee.asked) == (500, 500)
    [referrer, _] = _lines(policy, history=History(referrer=Granted(lifetime=16_000)))
    assert referrer.amount == 0 < referrer.asked


def test_monthly_cap_and_budget() -> None:
    policy = RewardPolicy(
        referrer=SideReward(amount=2000, unit="USD", monthly_cap=5000),
        referee=SideReward(amount=2000, unit="USD"),
        budget=3000,
        budget_unit="USD",
    )
    [referrer, referee] = _lines(policy, history=History(referrer=Granted(this_month=4000)))
    # 1000 left this month; the budget (3000) then leaves 2000 for the referee.
    assert (referrer.amount, referee.amount) == (1000, 2000)
    [referrer, referee] = _lines(policy, history=History(budget_used=2500))
    assert (referrer.amount, referee.amount) == (500, 0)


def test_tesla_milestones_once_each_and_caught_up_when_late() -> None:
    policy = RewardPolicy(
        milestones=[
            Milestone(threshold=5, perk="event invitation"),
            Milestone(threshold=10, perk="founders edition"),
        ]
    )
    assert _lines(policy, history=History(converted_before=3)) == []
    [five] = _lines(policy, history=History(converted_before=4))
    assert (five.rule, five.perk, five.unit, five.amount) == (
        "milestone:5",
        "event invitation",
        "PERK",
        1,
    )
    assert (
        _lines(policy, history=History(converted_before=5, milestones_granted=frozenset({5}))) == []
    )
    # Both were missed (e.g. the first grant was rolled back): both come now, lowest first.
    assert [line.rule for line in _lines(policy, history=History(converted_before=11))] == [
        "milestone:5",
        "milestone:10",
    ]
    # A recurring purchase does not advance the count.
    assert _lines(policy, sequence=2, history=History(converted_before=4)) == []


def test_recurring_purchases_rewarded_only_when_asked() -> None:
    once = RewardPolicy(referrer=SideReward(amount=100, unit="USD"))
    assert _lines(once, sequence=2) == []
    again = RewardPolicy(referrer=SideReward(amount=100, unit="USD"), recurring=True)
    assert [line.amount for line in _lines(again, sequence=2)] == [100]


def test_variant_selects_its_rule_set_and_falls_back() -> None:
    definition = ProgramDefinition.model_validate(
        {
            "destination_url": "https://shop.example.com/",
            "rewards": {"referrer": {"amount": 2000, "unit": "USD"}},
            "variants": [
                {"name": "control"},
                {"name": "generous", "rewards": {"referrer": {"amount": 5000, "unit": "USD"}}},
            ],
        }
    ).model_dump(mode="json")
    assert policy_of(definition, "generous").referrer.amount == 5000  # type: ignore[union-attr]
    assert policy_of(definition, "control").referrer.amount == 2000  # type: ignore[union-attr]
    assert policy_of(definition, None).referrer.amount == 2000  # type: ignore[union-attr]
    assert policy_of(definition, "unknown").referrer.amount == 2000  # type: ignore[union-attr]


def test_next_milestone() -> None:
    policy = RewardPolicy(
        milestones=[Milestone(threshold=10, perk="b"), Milestone(threshold=5, perk="a")]
    )
    assert next_milestone(policy, 0).threshold == 5  # type: ignore[union-attr]
    assert next_milestone(policy, 5).threshold == 10  # type: ignore[union-attr]
    assert next_milestone(policy, 10) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"milestones": [{"threshold": 5}]},
        {"milestones": [{"threshold": 5, "perk": "x", "amount": 1, "unit": "USD"}]},
        {"milestones": [{"threshold": 5, "amount": 1}]},
        {"milestones": [{"threshold": 5, "perk": "a"}, {"threshold": 5, "perk": "b"}]},
        {"budget": 100},
        {"fulfilment": {"kind": "webhook"}},
        {"hold_days": -1},
        {"referrer": {"amount": 1.5, "unit": "USD"}},
        {"referrer": {"amount": 1, "unit": "USD", "percent_bp": 0}},
        {"surprise": True},
    ],
)
def test_invalid_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RewardPolicy.model_validate(bad)


def test_the_original_format_stays_valid() -> None:
    policy = RewardPolicy.model_validate(
        {"referrer": {"amount": 2000, "unit": "USD"}, "referee": {"amount": 2000, "unit": "USD"}}
    )
    assert policy.hold_days == 0 and policy.fulfilment.kind == "ledger"


# --- properties -------------------------------------------------------------------------


def _simulate(policy: RewardPolicy, amounts: list[int]) -> tuple[list[RewardLine], int, int]:
    """Feed conversions in order, keeping the history as the service does."""
    referrer_total = budget_used = 0
    granted_milestones: set[int] = set()
    out: list[RewardLine] = []
    for count, amount in enumerate(amounts):
        lines = _lines(
            policy,
            conversion_amount=amount,
            history=History(
                converted_before=count,
                referrer=Granted(lifetime=referrer_total, this_month=referrer_total),
                budget_used=budget_used,
                milestones_granted=frozenset(granted_milestones),
            ),
        )
        for line in lines:
            if line.rule == "base" and line.side == "referrer":
                referrer_total += line.amount
            if policy.budget_unit == line.unit:
                budget_used += line.amount
            if line.rule.startswith("milestone:"):
                granted_milestones.add(int(line.rule.split(":")[1]))
        out.extend(lines)
    return out, referrer_total, budget_used


caps = st.none() | st.integers(min_value=0, max_value=20_000)


@given(
    amount=st.integers(min_value=0, max_value=5_000),
    percent=st.none() | st.integers(min_value=1, max_value=20_000),
    lifetime=caps,
    monthly=caps,
    budget=caps,
    conversions=st.lists(st.integers(min_value=0, max_value=100_000), max_size=60),
)
def test_the_sum_granted_never_exceeds_any_cap_whatever_the_order(
    amount: int,
    percent: int | None,
    lifetime: int | None,
    monthly: int | None,
    budget: int | None,
    conversions: list[int],
) -> None:
    policy = RewardPolicy(
        referrer=SideReward(
            amount=amount,
            unit="USD",
            percent_bp=percent,
            lifetime_cap=lifetime,
            monthly_cap=monthly,
        ),
        referee=SideReward(amount=amount, unit="USD"),
        budget=budget,
        budget_unit=None if budget is None else "USD",
    )
    lines, referrer_total, budget_used = _simulate(policy, conversions)
    for limit in (lifetime, monthly):
        if limit is not None:
            assert referrer_total <= limit
    if budget is not None:
        assert budget_used <= budget
    assert all(0 <= line.amount <= line.asked for line in lines)
    # Nothing is silently dropped: every conversion gives a line per side with something asked.
    if amount > 0 and percent is None:
        assert len(lines) == 2 * len(conversions)


@given(
    thresholds=st.sets(st.integers(min_value=1, max_value=30), max_size=6),
    counts=st.lists(st.integers(min_value=0, max_value=40), max_size=50),
)
def test_each_milestone_is_granted_at_most_once_in_any_order(
    thresholds: set[int], counts: list[int]
) -> None:
    milestones = [Milestone(threshold=t, perk=f"perk {t}") for t in thresholds]
    granted: set[int] = set()
    for count in counts:  # conversions seen out of order, duplicated...
        for m in milestones_due(milestones, converted_count=count, granted=frozenset(granted)):
            assert m.threshold not in granted
            assert m.threshold <= count
            granted.add(m.threshold)
    reached = max(counts, default=0)
    assert granted == {t for t in thresholds if t <= reached}


@given(
    base=st.integers(min_value=0, max_value=10_000),
    steps=st.lists(
        st.tuples(st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=500)),
        max_size=6,
        unique_by=lambda s: s[0],
    ),
)
def test_increasing_tiers_give_non_decreasing_amounts(
    base: int, steps: list[tuple[int, int]]
) -> None:
    # Build tiers whose amounts grow with their thresholds.
    tiers, amount = [], base
    for threshold, increase in sorted(steps):
        amount += increase
        tiers.append(Tier(min_converted=threshold, amount=amount))
    side = SideReward(amount=base, unit="USD", tiers=tiers)
    amounts = [base_amount(side, conversion_amount=0, converted_before=n) for n in range(60)]
    assert amounts == sorted(amounts)
    assert amounts[0] == base


@pytest.mark.parametrize(
    ("amount", "hold_days", "fulfilment", "expected"),
    [
        (0, 14, "ledger", "capped"),  # a cap left nothing: no hold, no channel
        (500, 14, "webhook", "pending"),
        (500, 0, "ledger", "issued"),  # the internal balance is delivered at once
        (500, 0, "webhook", "available"),
        (500, 0, "coupon_pool", "available"),
    ],
)
def test_initial_state(amount: int, hold_days: float, fulfilment: str, expected: str) -> None:
    assert initial_state(amount, timedelta(days=hold_days), fulfilment) == expected
