"""Date ranges of the reports: whole UTC days, ``since`` and ``until`` both included."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from shared.http.problems import Problem

DEFAULT_DAYS = 30
MAX_DAYS = 731
# Days outside these years are refused rather than overflowing date arithmetic.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)


def date_range(since: date | None, until: date | None) -> tuple[date, date]:
    """The JSON API's range: by default the last 30 days up to today; 422 when invalid."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Problem(
                422, "invalid-range", f"{name} must be between {EARLIEST} and {LATEST}", field=name
            )
    until = until or datetime.now(UTC).date()
    since = since or max(EARLIEST, until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise Problem(422, "invalid-range", "since must not be after until", field="since")
    if (until - since).days >= MAX_DAYS:
        raise Problem(
            422, "range-too-long", f"A range covers at most {MAX_DAYS} days", field="since"
        )
    return since, until


def forgiving_range(since: date | None, until: date | None) -> tuple[date, date]:
    """The console's range: the same rules, but a reversed range is turned round and a
    too-long one is cut to its last MAX_DAYS days instead of a 422."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        since, until = until, since
    return max(since, until - timedelta(days=MAX_DAYS - 1)), until


def day_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """[since 00:00 UTC, the day after until 00:00 UTC)."""
    start = datetime.combine(since, time(), UTC)
    return start, datetime.combine(until + timedelta(days=1), time(), UTC)
