"""Attribution policy: pure decisions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID


@dataclass(frozen=True)
class Click:
    click_id: UUID
    program_id: UUID
    participant_id: UUID
    clicked_at: datetime
    attributable: bool


@dataclass(frozen=True)
class Decision:
    referrer_id: UUID | None
    reason: str

    @property
    def attributed(self) -> bool:
        return self.referrer_id is not None


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


def version_in_force(versions: list[tuple[int, datetime]], at: datetime) -> int | None:
    """The highest version whose ``effective_from`` is not after ``at``."""
    eligible = [v for v, effective_from in versions if effective_from <= at]
    return max(eligible) if eligible else None
