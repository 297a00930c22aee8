"""Reward rules: pure functions from a program version's reward settings and a conversion
to the rewards it gives. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from shared.contracts.sections.rewards import RewardPolicy

Side = Literal["referrer", "referee"]


@dataclass(frozen=True)
class RewardLine:
    side: Side
    recipient: str
    amount: int
    unit: str


def rewards_for(
    settings: RewardPolicy, *, referrer_id: UUID, referee_customer_id: str
) -> list[RewardLine]:
    """Fixed amounts per side; a side without an amount (or with zero) gets nothing."""
    lines: list[RewardLine] = []
    if settings.referrer is not None and settings.referrer.amount > 0:
        lines.append(
            RewardLine(
                "referrer", str(referrer_id), settings.referrer.amount, settings.referrer.unit
            )
        )
    if settings.referee is not None and settings.referee.amount > 0:
        lines.append(
            RewardLine(
                "referee", referee_customer_id, settings.referee.amount, settings.referee.unit
            )
        )
    return lines
