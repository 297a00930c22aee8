"""When a new program version may take effect: now, or a future time with a zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.http.problems import Problem

# Clocks differ a little between the caller and us: "now" may arrive slightly in the past.
CLOCK_SKEW = timedelta(minutes=5)


def effective_from(value: datetime | None, now: datetime) -> datetime:
    """``value`` or ``now`` when omitted; a time a little in the past counts as now."""
    if value is None:
        return now
    if value.tzinfo is None:
        raise Problem(
            422, "validation-error", "effective_from needs a time zone", field="effective_from"
        )
    if value < now - CLOCK_SKEW:
        raise Problem(
            422,
            "effective-from-in-the-past",
            "effective_from must be now or a future time",
            field="effective_from",
        )
    return max(value, now)
