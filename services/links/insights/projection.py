"""What a batch of events does to the read models, collected before anything is written, so
that a whole poll costs one statement per table instead of one or two per event.

Every handler of the projector adds the facts its event carries to a :class:`Projection`;
``projection_repository.write`` then applies them. Rows merge by order-free rules (see
``projection_repository``), so the events of a batch may be applied in any grouping. One
statement cannot update the same row twice (``ON CONFLICT DO UPDATE`` refuses it), so the
rows of one table are split into rounds: the first fact about each key, then the second, and
so on. Postgres itself merges every round, with the same rules as one event at a time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

# The read-model tables that merge facts by key, with their key columns.
KEYS: dict[str, tuple[str, ...]] = {
    "rm_participants": ("participant_id",),
    "rm_referrals": ("referral_id",),
    "rm_pending_referrals": ("referral_id",),
    "rm_conversions": ("conversion_id",),
    "rm_rewards": ("reward_id",),
    "rm_milestones": ("program_id", "referrer_id", "threshold"),
}

Row = dict[str, Any]


@dataclass
class Projection:
    """The facts of some events, by table, in the order the events came."""

    upserts: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    shares: list[Row] = field(default_factory=list)
    rules: list[Row] = field(default_factory=list)
    erased: list[UUID] = field(default_factory=list)  # participants whose referees are forgotten

    def upsert(self, table: str, **facts: Any) -> None:
        self.upserts[table].append(facts)

    def referee_referrers(self) -> set[UUID]:
        """Referrers of the rows that name a referee: erased referrers' referees are not kept."""
        named = {
            r["referrer_id"] for r in self.upserts["rm_referrals"] if r.get("referee_customer_id")
        }
        named |= {
            r["referrer_id"]
            for r in self.upserts["rm_rewards"]
            if r.get("side") == "referee" and r.get("recipient")
        }
        named.discard(None)
        return named

    def forget_referees_of(self, erased: set[UUID]) -> None:
        """No referee is named under a referrer erased before this batch (one erased in it is
        handled after the batch's rows are written, with those already there)."""
        for row in self.upserts["rm_referrals"]:
            if row.get("referrer_id") in erased:
                row["referee_customer_id"] = None
        for row in self.upserts["rm_rewards"]:
            if row.get("side") == "referee" and row.get("referrer_id") in erased:
                row["recipient"] = None


def rounds(table: str, rows: list[Row]) -> list[list[Row]]:
    """``rows`` split so that no round holds a key twice, each round sorted by key (two
    consumers during a rebalance then lock rows in the same order)."""
    key = KEYS[table]
    seen: dict[tuple[Any, ...], int] = defaultdict(int)
    split: list[list[Row]] = []
    for row in rows:
        k = tuple(row[c] for c in key)
        n = seen[k]
        seen[k] += 1
        if n == len(split):
            split.append([])
        split[n].append(row)
    for part in split:
        part.sort(key=lambda r: tuple(str(r[c]) for c in key))
    return split


def jsonable(row: Row) -> Row:
    """A row as JSON values (the statement reads them with ``jsonb_populate_recordset``)."""
    return {k: _jsonable(v) for k, v in row.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
