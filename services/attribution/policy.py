"""Attribution policy: pure decisions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from shared.contracts.sections.attribution import Qualification


@dataclass(frozen=True)
class Click:
    click_id: UUID
    program_id: UUID
    participant_id: UUID
    clicked_at: datetime
    attributable: bool
    visitor_hash: str | None = None
    traceparent: str | None = None


@dataclass(frozen=True)
class Decision:
    referrer_id: UUID | None
    reason: str


# Reasons that mean "not known yet": the signup waits for what it names (pending).
WAITING_FOR = {"unknown_click": "click", "unknown_code": "code"}
# What a pending signup is given up with when it waited too long, by what it waited for.
NEVER_ARRIVED = {"click": "click_never_arrived", "code": "code_never_arrived"}


def attribute_click(
    click: Click | None, *, program_id: UUID, signed_up_at: datetime, window_days: int
) -> Decision:
    """Whether a signup that names ``click`` is attributed to the click's referrer."""
    if click is None:
        return Decision(None, "unknown_click")
    if click.program_id != program_id:
        return Decision(None, "click_of_another_program")
    if not click.attributable:
        return Decision(None, "non_attributable_click")
    if signed_up_at < click.clicked_at:
        return Decision(None, "click_after_signup")
    if signed_up_at - click.clicked_at > timedelta(days=window_days):
        return Decision(None, "click_outside_window")
    return Decision(click.participant_id, "click")


def first_click(
    named: Click, visitor_clicks: list[Click], *, signed_up_at: datetime, window_days: int
) -> Click:
    """Under first-click, the earliest attributable click by the same visitor in the program
    within the window before the signup; the named click when there is none earlier."""
    earliest = signed_up_at - timedelta(days=window_days)
    candidates = [
        c
        for c in visitor_clicks
        if c.attributable
        and c.program_id == named.program_id
        and earliest <= c.clicked_at <= named.clicked_at
    ]
    return min(candidates, key=lambda c: (c.clicked_at, str(c.click_id)), default=named)


def add_months(at: datetime, months: int) -> datetime:
    """``at`` plus calendar months, the day clamped to the end of a shorter month."""
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    days_in_month = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return at.replace(year=year, month=month, day=min(at.day, days_in_month[month - 1]))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@dataclass(frozen=True)
class Qualifying:
    qualified: bool
    reason: str
    sequence: int | None = None


def qualify(
    rules: Qualification,
    *,
    signed_up_at: datetime,
    converted_at: datetime,
    amount: int,
    currency: str,
    earlier: list[datetime],
) -> Qualifying:
    """Whether a purchase converts the referral, and as which ``sequence``.

    ``earlier`` holds the times of the referral's earlier qualifying purchases (the first is
    sequence 1). Without recurring months only the first qualifying purchase converts."""
    if rules.within_days is not None and converted_at - signed_up_at > timedelta(
        days=rules.within_days
    ):
        return Qualifying(False, "outside_qualifying_days")
    if rules.min_amount is not None and (
        currency != rules.min_amount.unit or amount < rules.min_amount.amount
    ):
        return Qualifying(False, "below_minimum_amount")
    if not earlier:
        return Qualifying(True, "first_purchase", 1)
    if rules.recurring_months == 0:
        return Qualifying(False, "already_converted")
    if converted_at > add_months(min(earlier), rules.recurring_months):
        return Qualifying(False, "recurring_period_over")
    return Qualifying(True, "recurring_purchase", len(earlier) + 1)
