"""The ledger statement's pure parts (no I/O): the opaque cursor, the public kind of each
entry, the totals per account role, and the CSV lines finance downloads.

Lines are ordered by the transaction that wrote them, then entry, account and unit: a reader
lists only the entries of transactions that had ended when it read (``horizon``), and any
entry that shows up later belongs to a transaction at or past that horizon, so it sorts after
every line already read. Pages therefore never repeat a line nor skip one, whatever is written
meanwhile."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.http.problems import Problem

# Ledger entry kind → the kind a statement shows.
_KINDS = {
    "issue": "grant",
    "accrue": "grant",
    "release": "release",
    "cancel": "cancel",
    "clawback": "clawback",
    "payout": "payout",
    "failed": "failed",
    "redeem": "redemption",
    "adjustment": "adjustment",
}
KINDS = frozenset(_KINDS.values()) | {"refund_adjustment"}


def public_kind(entry_kind: str) -> str:
    """``adjust:<refund>`` (a partial refund shrinking a percentage reward) is
    ``refund_adjustment``; an entry kind this version does not know is shown as it is."""
    if entry_kind.startswith("adjust:"):
        return "refund_adjustment"
    return _KINDS.get(entry_kind, entry_kind)


@dataclass(frozen=True, order=True)
class Position:
    """The last line a page showed: (transaction, entry, account, unit)."""

    tx: int
    entry_id: int
    account: str
    unit: str


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.tx, position.entry_id, position.account, position.unit])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names, or a 422 naming the ``cursor`` field (like a parameter
    that fails its schema)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tx, entry_id, account, unit = json.loads(raw)
        if not all(type(v) is int and 0 <= v < 2**63 for v in (tx, entry_id)):
            raise ValueError
        if not all(isinstance(v, str) and "\x00" not in v for v in (account, unit)):
            raise ValueError
    except (ValueError, TypeError, RecursionError):
        raise Problem(
            422, "invalid-cursor", "This cursor was not given by this API", field="cursor"
        ) from None
    return Position(tx, entry_id, account, unit)


def program_role(account: str) -> str:
    """The role of a program's account in its statement's totals."""
    kind = account.split(":", 1)[0]
    if kind == "program":
        return "cost"
    if kind == "payout":
        return "paid_out"
    return "liability"  # pending, participant, referee: what the program still owes


def fold_totals(
    balances: Iterable[tuple[str, str, int]],
    role_of: Callable[[str], str | None],
    *,
    roles: Iterable[str],
    drop_zero: Iterable[str] = (),
) -> dict[str, dict[str, int]]:
    """Sum ``(account, unit, balance)`` into ``{role: {unit: balance}}`` by each account's
    role (``role_of``; None skips the account). ``cost`` is the program's expense, the
    opposite of its account's balance. Roles in ``drop_zero`` leave out units that sum to 0,
    as the balance endpoints do."""
    totals: dict[str, dict[str, int]] = {role: {} for role in roles}
    for account, unit, balance in balances:
        role = role_of(account)
        if role is None:
            continue
        value = -balance if role == "cost" else balance
        totals[role][unit] = totals[role].get(unit, 0) + value
    for role in set(drop_zero) & totals.keys():
        totals[role] = {u: v for u, v in totals[role].items() if v}
    return {role: dict(sorted(units.items())) for role, units in totals.items()}


CSV_COLUMNS = (
    "entry_id",
    "at",
    "kind",
    "entry_kind",
    "account",
    "role",
    "unit",
    "amount",
    "balance",
    "reward_id",
    "redemption_id",
    "adjustment_id",
    "actor",
    "reason",
)


def csv_lines(lines: Iterable[Mapping[str, Any]], *, header: bool) -> str:
    """Statement lines as CSV text (RFC 4180, CRLF), with the header row when asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow(["" if line.get(c) is None else _cell(line[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, str):
        # Free text a spreadsheet would run as a formula is kept as text.
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
