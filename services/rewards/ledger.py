"""The double-entry ledger: every movement is one entry whose postings sum to zero."""

from __future__ import annotations

from uuid import UUID

import asyncpg


def program_account(program_id: UUID) -> str:
    return f"program:{program_id}:rewards"


def recipient_account(program_id: UUID, side: str, recipient: str) -> str:
    kind = "participant" if side == "referrer" else "referee"
    return f"{kind}:{program_id}:{recipient}"


async def post(
    conn: asyncpg.Connection,
    *,
    reward_id: UUID,
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    unit: str,
) -> int:
    """Debit one account and credit another by ``amount``. Unique per (reward, kind)."""
    entry_id: int = await conn.fetchval(
        "INSERT INTO ledger_entries (reward_id, kind) VALUES ($1, $2) RETURNING id",
        reward_id,
        kind,
    )
    await conn.executemany(
        "INSERT INTO ledger_postings (entry_id, account, unit, amount) VALUES ($1, $2, $3, $4)",
        [(entry_id, debit, unit, amount), (entry_id, credit, unit, -amount)],
    )
    return entry_id


async def balances(conn: asyncpg.Connection | asyncpg.Pool, account: str) -> dict[str, int]:
    """What the ledger owes the account holder, per unit (credits are negative postings)."""
    rows = await conn.fetch(
        "SELECT unit, -sum(amount) AS balance FROM ledger_postings WHERE account = $1 "
        "GROUP BY unit ORDER BY unit",
        account,
    )
    return {r["unit"]: int(r["balance"]) for r in rows}
