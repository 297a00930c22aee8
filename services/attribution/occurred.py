"""When a tracked purchase or refund happened: the caller's ``occurred_at`` (default: when it
was received), within bounds. A little in the future is clock skew between the company's
machines and ours; far in the past is an import the program no longer accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.http.problems import Problem

FIELD = "occurred_at"


@dataclass(frozen=True)
class TimeBounds:
    """How far ``occurred_at`` may be from the time the event was received."""

    max_age: timedelta = timedelta(days=90)
    clock_skew: timedelta = timedelta(minutes=5)


def occurred_at(given: datetime | None, received_at: datetime, bounds: TimeBounds) -> datetime:
    """The time the event happened: ``given``, or ``received_at`` when it is omitted.
    Refused (422 naming ``occurred_at``) beyond the clock skew in the future or older than
    the maximum age."""
    if given is None:
        return received_at
    if given > received_at + bounds.clock_skew:
        raise Problem(
            422,
            "occurred-in-the-future",
            f"occurred_at is more than {_human(bounds.clock_skew)} in the future",
            field=FIELD,
        )
    if given < received_at - bounds.max_age:
        raise Problem(
            422,
            "occurred-too-long-ago",
            f"occurred_at is older than the maximum age of {_human(bounds.max_age)}",
            field=FIELD,
        )
    return given


def not_before(occurred: datetime, earliest: datetime, bounds: TimeBounds) -> bool:
    """Whether something that happened at ``occurred`` can follow what happened at
    ``earliest`` (a purchase its signup, a refund its purchase), allowing for clock skew
    between the two systems that reported them."""
    return occurred >= earliest - bounds.clock_skew


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} days"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
