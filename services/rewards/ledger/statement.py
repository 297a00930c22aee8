"""Reading the ledger as a statement: the postings of a participant's accounts or of a whole
program, each with the holder's running balance, and the balances they add up to. The order
and the horizon are explained in ``services.rewards.statement``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from services.rewards.ledger import pending_account, program_account, recipient_account
from services.rewards.statement import Position

Executor = asyncpg.Connection | asyncpg.Pool

# The postings in the statement's scope: of a list of accounts, or of a program's entries
# (found through what each entry is about: a reward, a redemption or an adjustment).
_ACCOUNTS_SCOPE = (
    "SELECT entry_id, account, unit, amount FROM ledger_postings WHERE account = ANY($1::text[])"
)
_PROGRAM_SCOPE = """
SELECT p.entry_id, p.account, p.unit, p.amount FROM ledger_postings p WHERE p.entry_id IN (
    SELECT e.id FROM ledger_entries e JOIN rewards r ON r.id = e.reward_id
    WHERE r.program_id = $1
    UNION ALL SELECT e.id FROM ledger_entries e JOIN redemptions d ON d.id = e.redemption_id
    WHERE d.program_id = $1
    UNION ALL SELECT e.id FROM ledger_entries e JOIN adjustments a ON a.id = e.adjustment_id
    WHERE a.program_id = $1)
"""

# $1 scope, $2 horizon, $3-$6 the position after which to list, $7 unit, $8/$9 the first and
# last UTC day, $10 how many. The running balance is over every posting of the account before
# the line (in the statement's order), whatever the filters leave out.
_LINES_SQL = """
WITH scoped AS ({scope}),
lines AS (
    SELECT e.tx::text::bigint AS tx, p.entry_id, p.account, p.unit, -p.amount AS amount,
        sum(-p.amount) OVER (PARTITION BY p.account, p.unit ORDER BY e.tx, p.entry_id)
            AS balance,
        e.kind AS entry_kind, e.reward_id, e.redemption_id, e.adjustment_id, e.actor,
        e.created_at AS at
    FROM scoped p JOIN ledger_entries e ON e.id = p.entry_id
    WHERE e.tx < $2::text::xid8
)
SELECT l.*, a.reason FROM lines l LEFT JOIN adjustments a ON a.id = l.adjustment_id
WHERE (l.tx, l.entry_id, l.account, l.unit) > ($3, $4, $5, $6)
  AND ($7::text IS NULL OR l.unit = $7)
  AND ($8::date IS NULL OR l.at >= $8::date::timestamp AT TIME ZONE 'UTC')
  AND ($9::date IS NULL OR l.at < ($9::date + 1)::timestamp AT TIME ZONE 'UTC')
ORDER BY l.tx, l.entry_id, l.account, l.unit
LIMIT $10
"""

_BALANCES_SQL = """
WITH scoped AS ({scope})
SELECT p.account, p.unit, -sum(p.amount) AS balance
FROM scoped p JOIN ledger_entries e ON e.id = p.entry_id
WHERE e.tx < $2::text::xid8 AND ($3::text IS NULL OR p.unit = $3)
GROUP BY p.account, p.unit
"""

# How long a reader waits for the transactions in flight when it asked (normally a few
# milliseconds; only a stuck transaction reaches it).
HORIZON_WAIT_S = 5.0

# Before every line: the position of an empty statement.
START = Position(-1, 0, "", "")


@dataclass(frozen=True)
class Scope:
    """What a statement covers: ``accounts`` (a participant's), or all of ``program_id``'s."""

    program_id: UUID
    accounts: tuple[str, ...] | None = None

    def sql(self) -> str:
        return _PROGRAM_SCOPE if self.accounts is None else _ACCOUNTS_SCOPE

    def arg(self) -> Any:
        return self.program_id if self.accounts is None else list(self.accounts)


def participant_roles(
    program_id: UUID, participant_id: UUID, customer_hash: str | None
) -> dict[str, str]:
    """A participant's accounts → their role in the statement: what they hold and have on
    hold as a referrer and, when someone referred them, as that referee."""
    roles = {
        recipient_account(program_id, "referrer", str(participant_id)): "balances",
        pending_account(program_id, "referrer", str(participant_id)): "pending",
    }
    if customer_hash is not None:
        # The ledger names a referee by their hashed customer id (``ledger.recipient_account``).
        erased = f"erased:{customer_hash}"
        roles[recipient_account(program_id, "referee", erased)] = "referee_balances"
        roles[pending_account(program_id, "referee", erased)] = "referee_pending"
    return roles


_IN_FLIGHT = (
    "SELECT array_agg(x ORDER BY x) FROM unnest($1::bigint[]) x "
    "WHERE pg_xact_status(x::text::xid8) = 'in progress'"
)


async def horizon(conn: Executor) -> int:
    """A transaction id below which every entry is visible and no entry can still appear:
    the first id not yet handed out when the reader asked, once every transaction then in
    flight has ended, so a reader sees whatever was committed before it asked. A transaction
    that stays open past ``HORIZON_WAIT_S`` (a stuck one) is not waited for: the horizon is then the
    oldest still in flight, and the statement is late, never wrong."""
    snapshot = await conn.fetchrow(
        "SELECT pg_snapshot_xmax(s)::text::bigint AS next, "
        "array(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) AS open "
        "FROM pg_current_snapshot() s"
    )
    open_ids: list[int] | None = list(snapshot["open"]) or None
    deadline = time.monotonic() + HORIZON_WAIT_S
    pause = 0.002
    while open_ids and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
        open_ids = await conn.fetchval(_IN_FLIGHT, open_ids)
    return min(open_ids) if open_ids else int(snapshot["next"])


async def lines(
    conn: Executor,
    scope: Scope,
    *,
    as_of: int,
    after: Position,
    limit: int,
    unit: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[asyncpg.Record]:
    """Up to ``limit`` lines after ``after``, oldest first, of entries older than ``as_of``."""
    return await conn.fetch(
        _LINES_SQL.format(scope=scope.sql()),
        scope.arg(),
        str(as_of),
        after.tx,
        after.entry_id,
        after.account,
        after.unit,
        unit,
        since,
        until,
        limit,
    )


async def balances(
    conn: Executor, scope: Scope, *, as_of: int, unit: str | None = None
) -> list[tuple[str, str, int]]:
    """``(account, unit, balance)`` of every account in the scope, from entries older than
    ``as_of``."""
    rows = await conn.fetch(_BALANCES_SQL.format(scope=scope.sql()), scope.arg(), str(as_of), unit)
    return [(r["account"], r["unit"], int(r["balance"])) for r in rows]


async def program_cost(conn: Executor, program_id: UUID) -> list[asyncpg.Record]:
    """What the program's account was debited, net, per reward variant and unit (a grant
    debits it; a cancellation, clawback or failed delivery credits it back), and what manual
    adjustments cost (``adjustment`` true, no variant)."""
    return await conn.fetch(
        "SELECT false AS adjustment, r.variant, p.unit, sum(p.amount) AS cost "
        "FROM rewards r JOIN ledger_entries e ON e.reward_id = r.id "
        "JOIN ledger_postings p ON p.entry_id = e.id AND p.account = $2 "
        "WHERE r.program_id = $1 GROUP BY r.variant, p.unit "
        "UNION ALL SELECT true, NULL, p.unit, sum(p.amount) "
        "FROM adjustments a JOIN ledger_entries e ON e.adjustment_id = a.id "
        "JOIN ledger_postings p ON p.entry_id = e.id AND p.account = $2 "
        "WHERE a.program_id = $1 GROUP BY p.unit",
        program_id,
        program_account(program_id),
    )
