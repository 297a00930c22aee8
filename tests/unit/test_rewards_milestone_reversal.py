"""Milestones taken back when refunds bring the referrer's converted count below them: the
pure decision per policy and reward state, and the policy field's default and validation."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.rewards.rules import NOT_YET_ISSUED, milestone_reversed, milestone_threshold
from shared.contracts.sections.rewards import MilestoneReversal, RewardPolicy

STATUSES = ["pending", "available", "capped", "issued", "reversed", "failed"]
POLICIES = list(get_args(MilestoneReversal))


@given(
    threshold=st.integers(min_value=1, max_value=50),
    count=st.integers(min_value=0, max_value=60),
    status=st.sampled_from(STATUSES),
    policy=st.sampled_from(POLICIES),
)
def test_reversed_iff_below_threshold_and_the_policy_allows(
    threshold: int, count: int, status: str, policy: MilestoneReversal
) -> None:
    allowed = {
        "keep": False,
        "reverse": status not in ("reversed", "failed"),
        "before_issue": status in NOT_YET_ISSUED,
    }[policy]
    decided = milestone_reversed(
        threshold=threshold, converted_count=count, status=status, policy=policy
    )
    assert decided == (count < threshold and allowed)


@pytest.mark.parametrize(
    ("status", "policy", "expected"),
    [
        ("pending", "before_issue", True),
        ("available", "before_issue", True),
        ("capped", "before_issue", True),
        ("issued", "before_issue", False),
        ("issued", "reverse", True),
        ("pending", "reverse", True),
        ("pending", "keep", False),
        ("issued", "keep", False),
        ("reversed", "reverse", False),
        ("failed", "reverse", False),
    ],
)
def test_each_state_under_each_policy(
    status: str, policy: MilestoneReversal, expected: bool
) -> None:
    assert milestone_reversed(threshold=5, converted_count=4, status=status, policy=policy) is (
        expected
    )
    # At or above the threshold nothing is taken back, whatever the policy.
    assert not milestone_reversed(threshold=5, converted_count=5, status=status, policy=policy)


def test_the_policy_defaults_to_reverse_before_issue_and_is_validated() -> None:
    assert RewardPolicy().milestone_reversal == "before_issue"
    assert RewardPolicy.model_validate({"milestone_reversal": "reverse"}).milestone_reversal == (
        "reverse"
    )
    with pytest.raises(ValidationError):
        RewardPolicy.model_validate({"milestone_reversal": "sometimes"})


def test_milestone_threshold_reads_the_rule() -> None:
    assert milestone_threshold("milestone:10") == 10
