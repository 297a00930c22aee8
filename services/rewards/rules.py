"""Reward rules: pure functions from a program version's reward policy, one conversion and
what the referrer and recipients already have, to the rewards it gives. No I/O.

Rule types: fixed amount per side; percentage of the conversion amount with a maximum;
tiers by the referrer's converted count; milestones (once per referrer, taken back per the
program's policy when refunds bring the count below them); caps per recipient (lifetime,
calendar month) and a program budget. A capped reward is *partially* granted:
the line carries what was asked (``requested``) and what fits under every cap (``amount``);
a line whose ``amount`` is 0 is recorded with status ``capped``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from shared.contracts.sections.rewards import (
    Milestone,
    MilestoneReversal,
    RewardPolicy,
    SideReward,
)

Side = Literal["referrer", "referee"]
BASE_RULE = "base"


def milestone_rule(threshold: int) -> str:
    return f"milestone:{threshold}"


@dataclass(frozen=True)
class RewardLine:
    side: Side
    recipient: str
    amount: int
    unit: str
    rule: str = BASE_RULE
    requested: int | None = None
    perk: str | None = None

    @property
    def asked(self) -> int:
        return self.amount if self.requested is None else self.requested


@dataclass(frozen=True)
class Granted:
    """What one recipient already holds from base rules, in the side's unit."""

    lifetime: int = 0
    this_month: int = 0


@dataclass(frozen=True)
class History:
    """The state the rules read: counted by the caller from its tables."""

    converted_before: int = 0
    referrer: Granted = Granted()
    referee: Granted = Granted()
    budget_used: int = 0
    milestones_granted: frozenset[int] = field(default_factory=frozenset)


def policy_of(definition: dict[str, Any], variant: str | None) -> RewardPolicy:
    """The variant's rule set when it has one, else the version's."""
    for arm in definition.get("variants") or []:
        if variant is not None and arm.get("name") == variant and arm.get("rewards") is not None:
            return RewardPolicy.model_validate(arm["rewards"])
    return RewardPolicy.model_validate(definition.get("rewards") or {})


def base_amount(side: SideReward, *, conversion_amount: int, converted_before: int) -> int:
    """Before caps: the highest tier reached, else the fixed amount; or a percentage of the
    conversion amount (floor), at most ``max_amount``."""
    if side.percent_bp is not None:
        amount = conversion_amount * side.percent_bp // 10_000
        return amount if side.max_amount is None else min(amount, side.max_amount)
    reached = [t for t in side.tiers if t.min_converted <= converted_before]
    if reached:
        return max(reached, key=lambda t: t.min_converted).amount
    return side.amount


def room_under_caps(side: SideReward, granted: Granted) -> int | None:
    """How much more this recipient may get, or None when uncapped."""
    rooms = []
    if side.lifetime_cap is not None:
        rooms.append(side.lifetime_cap - granted.lifetime)
    if side.monthly_cap is not None:
        rooms.append(side.monthly_cap - granted.this_month)
    return max(0, min(rooms)) if rooms else None


def _fit(requested: int, *rooms: int | None) -> int:
    limits = [r for r in rooms if r is not None]
    return max(0, min([requested, *limits]))


def milestones_due(
    milestones: list[Milestone], *, converted_count: int, granted: frozenset[int]
) -> list[Milestone]:
    """Every milestone reached by ``converted_count`` and not granted yet, lowest first; a
    late or repeated conversion cannot grant one twice."""
    return sorted(
        (m for m in milestones if m.threshold <= converted_count and m.threshold not in granted),
        key=lambda m: m.threshold,
    )


def rewards_for(
    policy: RewardPolicy,
    *,
    referrer_id: UUID,
    referee_customer_id: str,
    conversion_amount: int = 0,
    sequence: int = 1,
    history: History = History(),
) -> list[RewardLine]:
    """The lines one conversion gives. A side whose requested amount is 0 gets no line; a
    line cut to 0 by a cap is kept (it is recorded as ``capped``)."""
    budget_left = None if policy.budget is None else max(0, policy.budget - history.budget_used)
    lines: list[RewardLine] = []

    def budget_room(unit: str) -> int | None:
        return budget_left if unit == policy.budget_unit else None

    if sequence == 1 or policy.recurring:
        for side_name, side, recipient, granted in (
            ("referrer", policy.referrer, str(referrer_id), history.referrer),
            ("referee", policy.referee, referee_customer_id, history.referee),
        ):
            if side is None:
                continue
            requested = base_amount(
                side,
                conversion_amount=conversion_amount,
                converted_before=history.converted_before,
            )
            if requested <= 0:
                continue
            amount = _fit(requested, room_under_caps(side, granted), budget_room(side.unit))
            if budget_left is not None and side.unit == policy.budget_unit:
                budget_left -= amount
            lines.append(
                RewardLine(side_name, recipient, amount, side.unit, BASE_RULE, requested)  # type: ignore[arg-type]
            )

    # Milestones count converted referrals, so a recurring purchase does not advance them.
    count = history.converted_before + (1 if sequence == 1 else 0)
    for m in milestones_due(
        policy.milestones, converted_count=count, granted=history.milestones_granted
    ):
        if m.perk is not None:
            lines.append(
                RewardLine(
                    "referrer", str(referrer_id), 1, "PERK", milestone_rule(m.threshold), 1, m.perk
                )
            )
            continue
        assert m.amount is not None and m.unit is not None
        amount = _fit(m.amount, budget_room(m.unit))
        if budget_left is not None and m.unit == policy.budget_unit:
            budget_left -= amount
        lines.append(
            RewardLine(
                "referrer", str(referrer_id), amount, m.unit, milestone_rule(m.threshold), m.amount
            )
        )
    return lines


# A milestone reward in one of these states has not reached the referrer yet.
NOT_YET_ISSUED = frozenset({"pending", "available", "capped"})


def milestone_reversed(
    *, threshold: int, converted_count: int, status: str, policy: MilestoneReversal
) -> bool:
    """Whether a milestone reward is taken back now that the referrer has ``converted_count``
    converted referrals left: only below its threshold, only while it still holds something
    (not reversed or failed), and only as the program's policy allows for its state."""
    if converted_count >= threshold or status in ("reversed", "failed"):
        return False
    if policy == "reverse":
        return True
    return policy == "before_issue" and status in NOT_YET_ISSUED


def milestone_threshold(rule: str) -> int:
    """The threshold of a ``milestone:<n>`` rule."""
    return int(rule.split(":", 1)[1])


def next_milestone(policy: RewardPolicy, converted_count: int) -> Milestone | None:
    """The first milestone not reached yet (the scoreboard's "N more to go")."""
    ahead = [m for m in policy.milestones if m.threshold > converted_count]
    return min(ahead, key=lambda m: m.threshold) if ahead else None


def initial_state(amount: int, hold: timedelta, fulfilment: str) -> str:
    """Where a new reward starts: ``capped`` (nothing left under the caps), ``pending`` (on
    hold), ``issued`` (internal balance, no hold) or ``available`` (another channel)."""
    if amount == 0:
        return "capped"
    if hold > timedelta(0):
        return "pending"
    return "issued" if fulfilment == "ledger" else "available"
