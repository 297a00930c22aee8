"""The double-entry ledger: every movement is one entry whose postings sum to zero.

Accounts of a program ``P`` (debits positive, credits negative):
- ``program:P:rewards``: the program's reward expense; debited when a reward is granted;
- ``pending:P:<recipient>``: granted but on hold;
- ``participant:P:<id>`` / ``referee:P:<hash>``: what a recipient holds (their balance);
- ``payout:P:<channel>``: what left the platform (webhook, coupon, redemption).

Entry kinds, one per (reward, kind): ``issue`` (program → recipient, no hold), ``accrue``
(program → pending), ``release`` (pending → recipient), ``cancel`` (back to program),
``clawback`` and ``adjust:<refund>`` (recipient → program), ``payout`` (recipient →
payout), ``failed`` (recipient → program); ``redeem`` is per redemption."""

from __future__ import annotations

import hashlib
from uuid import UUID

import asyncpg

ERASED_PREFIX = "erased:"


def program_account(program_id: UUID) -> str:
    return f"program:{program_id}:rewards"


def _holder(side: str, recipient: str) -> str:
    # Referee customer ids are the company's identifiers of other people: the append-only
    # ledger never holds them in clear (erasure could not remove them later).
    if side == "referrer":
        return recipient
    if recipient.startswith(ERASED_PREFIX):  # already the hash (participant erased)
        return "h" + recipient[len(ERASED_PREFIX) :][:32]
    return "h" + hashlib.sha256(recipient.encode()).hexdigest()[:32]


def recipient_account(program_id: UUID, side: str, recipient: str) -> str:
    kind = "participant" if side == "referrer" else "referee"
    return f"{kind}:{program_id}:{_holder(side, recipient)}"


def pending_account(program_id: UUID, side: str, recipient: str) -> str:
    return f"pending:{program_id}:{side}:{_holder(side, recipient)}"


def payout_account(program_id: UUID, channel: str) -> str:
    return f"payout:{program_id}:{channel}"


def liability_prefixes(program_id: UUID) -> list[str]:
    """LIKE patterns of the accounts whose credit the program still owes."""
    return [f"pending:{program_id}:%", f"participant:{program_id}:%", f"referee:{program_id}:%"]


async def post(
    conn: asyncpg.Connection,
    *,
    reward_id: UUID | None,
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    unit: str,
    redemption_id: UUID | None = None,
) -> int:
    """Debit one account and credit another by ``amount``. Unique per (reward, kind).
    One statement, so one round trip."""
    entry_id: int = await conn.fetchval(
        "WITH e AS (INSERT INTO ledger_entries (reward_id, kind, redemption_id) "
        "VALUES ($1, $2, $3) RETURNING id), "
        "p AS (INSERT INTO ledger_postings (entry_id, account, unit, amount) "
        "SELECT e.id, v.account, $6, v.amount FROM e, "
        "(VALUES ($4::text, $7::bigint), ($5::text, -$7::bigint)) AS v (account, amount)) "
        "SELECT id FROM e",
        reward_id,
        kind,
        redemption_id,
        debit,
        credit,
        unit,
        amount,
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


async def balance(conn: asyncpg.Connection, account: str, unit: str) -> int:
    value = await conn.fetchval(
        "SELECT -coalesce(sum(amount), 0) FROM ledger_postings WHERE account = $1 AND unit = $2",
        account,
        unit,
    )
    return int(value)
