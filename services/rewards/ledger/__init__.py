"""The double-entry ledger: every movement is one entry whose postings sum to zero.

Accounts of a program ``P`` (debits positive, credits negative):
- ``program:P:rewards``: the program's reward expense; debited when a reward is granted;
- ``pending:P:<side>:<holder>``: granted but on hold;
- ``participant:P:<id>`` / ``referee:P:h<hash>``: what a recipient holds (their balance);
- ``payout:P:<channel>``: what left the platform (webhook, coupon, redemption).

Entry kinds, one per (reward, kind): ``issue`` (program → recipient, no hold), ``accrue``
(program → pending), ``release`` (pending → recipient), ``cancel`` (back to program),
``clawback`` and ``adjust:<refund>`` (recipient → program), ``payout`` (recipient →
payout), ``failed`` (recipient → program); ``redeem`` is per redemption.

This module is the only code that reads or writes ``ledger_entries`` and ``ledger_postings``:
every posting, the first one of a reward included, and every balance go through it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg

ERASED_PREFIX = "erased:"

# A reward row (or the dict it was inserted from): id, program_id, side, recipient, amount,
# unit, status.
Reward = Mapping[str, Any]


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


def _liability_prefixes(program_id: UUID) -> list[str]:
    """LIKE patterns of the accounts whose credit the program still owes."""
    return [f"pending:{program_id}:%", f"participant:{program_id}:%", f"referee:{program_id}:%"]


def _holder_of(reward: Reward) -> str:
    return recipient_account(reward["program_id"], reward["side"], reward["recipient"])


def _pending_of(reward: Reward) -> str:
    return pending_account(reward["program_id"], reward["side"], reward["recipient"])


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
    adjustment_id: UUID | None = None,
    actor: str | None = None,
) -> int:
    """Debit one account and credit another by ``amount``. Unique per (reward, kind).
    One statement, so one round trip."""
    entry_id: int = await conn.fetchval(
        "WITH e AS (INSERT INTO ledger_entries (reward_id, kind, redemption_id, adjustment_id, "
        "actor) VALUES ($1, $2, $3, $8, $9) RETURNING id), "
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
        adjustment_id,
        actor,
    )
    return entry_id


async def grant(
    conn: asyncpg.Connection, insertion: tuple[str, str], rewards: Sequence[Reward]
) -> set[UUID]:
    """Insert new rewards with their first entries, in one statement (one round trip per
    conversion on the consumer's hot path): program → pending (``accrue``) when a reward
    starts on hold, program → recipient (``issue``) when it does not, no entry when it is
    ``capped``. ``insertion`` is the rewards' INSERT ... RETURNING id and its JSON argument
    (``repository.rewards.insertion``); a reward it does not insert gets no entry. Returns
    the ids inserted."""
    if not rewards:
        return set()
    insert_sql, rows = insertion
    firsts = [_first_entry(reward) for reward in rewards if reward["status"] != "capped"]
    inserted = await conn.fetch(
        f"WITH r AS ({insert_sql}), "
        "f AS (SELECT * FROM jsonb_to_recordset($2::text::jsonb) AS f (reward_id uuid, "
        "kind text, debit text, credit text, unit text, amount bigint)), "
        "e AS (INSERT INTO ledger_entries (reward_id, kind) "
        "SELECT f.reward_id, f.kind FROM f JOIN r ON r.id = f.reward_id RETURNING id, reward_id), "
        "p AS (INSERT INTO ledger_postings (entry_id, account, unit, amount) "
        "SELECT e.id, v.account, f.unit, v.amount FROM e JOIN f USING (reward_id), "
        "LATERAL (VALUES (f.debit, f.amount), (f.credit, -f.amount)) AS v (account, amount)) "
        "SELECT id FROM r",
        rows,
        json.dumps(firsts),
    )
    return {row["id"] for row in inserted}


def _first_entry(reward: Reward) -> dict[str, Any]:
    if reward["status"] == "pending":
        kind, credit = "accrue", _pending_of(reward)
    else:
        kind, credit = "issue", _holder_of(reward)
    return {
        "reward_id": str(reward["id"]),
        "kind": kind,
        "debit": program_account(reward["program_id"]),
        "credit": credit,
        "unit": reward["unit"],
        "amount": reward["amount"],
    }


async def release(conn: asyncpg.Connection, reward: Reward) -> None:
    """The hold ended: pending → recipient."""
    await _post_reward(conn, reward, "release", _pending_of(reward), _holder_of(reward))


async def pay_out(conn: asyncpg.Connection, reward: Reward, channel: str) -> None:
    """The reward left the platform (a coupon, a company's system): off the balance."""
    await _post_reward(
        conn, reward, "payout", _holder_of(reward), payout_account(reward["program_id"], channel)
    )


async def return_failed(conn: asyncpg.Connection, reward: Reward) -> None:
    """Fulfilment gave up: the amount goes back to the program, visibly."""
    await _post_reward(
        conn, reward, "failed", _holder_of(reward), program_account(reward["program_id"])
    )


async def take_back(
    conn: asyncpg.Connection, reward: Reward, kind: str, *, from_pending: bool, amount: int
) -> None:
    """``amount`` of the reward back to the program, from the pending account while it is on
    hold, else from the recipient's (``cancel``, ``clawback``, ``adjust:<refund>``)."""
    if amount <= 0:
        return
    account = _pending_of(reward) if from_pending else _holder_of(reward)
    await _post_reward(
        conn, reward, kind, account, program_account(reward["program_id"]), amount=amount
    )


async def held(conn: asyncpg.Connection, reward: Reward) -> int:
    """What the reward's recipient holds now in the reward's unit."""
    return await balance(conn, _holder_of(reward), reward["unit"])


async def taken_by_adjustments(conn: asyncpg.Connection, reward_id: UUID) -> int:
    """What partial refunds (``adjust:`` entries) took off a reward so far."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(p.amount), 0) FROM ledger_entries e "
        "JOIN ledger_postings p ON p.entry_id = e.id "
        "WHERE e.reward_id = $1 AND e.kind LIKE 'adjust:%' AND p.amount > 0",
        reward_id,
    )
    return int(value)


async def redeem(
    conn: asyncpg.Connection,
    redemption_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    amount: int,
    unit: str,
) -> None:
    """A participant spends part of their balance."""
    await post(
        conn,
        reward_id=None,
        redemption_id=redemption_id,
        kind="redeem",
        debit=recipient_account(program_id, "referrer", str(participant_id)),
        credit=payout_account(program_id, "redemption"),
        amount=amount,
        unit=unit,
    )


async def adjust(
    conn: asyncpg.Connection,
    adjustment_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    amount: int,
    unit: str,
    actor: str,
) -> None:
    """An operator's manual adjustment: program → participant when ``amount`` is positive
    (goodwill, a correction up), participant → program when negative (a correction down).
    The acting key is recorded on the entry."""
    holder = recipient_account(program_id, "referrer", str(participant_id))
    program = program_account(program_id)
    debit, credit = (program, holder) if amount > 0 else (holder, program)
    await post(
        conn,
        reward_id=None,
        adjustment_id=adjustment_id,
        actor=actor,
        kind="adjustment",
        debit=debit,
        credit=credit,
        amount=abs(amount),
        unit=unit,
    )


async def reversal_kinds(
    conn: asyncpg.Connection | asyncpg.Pool, reward_ids: list[UUID]
) -> dict[UUID, str]:
    """How each reward was taken back in full: ``clawed_back`` when an entry took it from
    the recipient, else ``cancelled`` (a reversed reward without such an entry never reached
    them). Only rewards with a ``cancel`` or ``clawback`` entry are listed."""
    rows = await conn.fetch(
        "SELECT reward_id, bool_or(kind = 'clawback') AS clawed FROM ledger_entries "
        "WHERE reward_id = ANY($1::uuid[]) AND kind IN ('cancel', 'clawback') GROUP BY reward_id",
        reward_ids,
    )
    return {r["reward_id"]: "clawed_back" if r["clawed"] else "cancelled" for r in rows}


async def _post_reward(
    conn: asyncpg.Connection,
    reward: Reward,
    kind: str,
    debit: str,
    credit: str,
    *,
    amount: int | None = None,
) -> None:
    await post(
        conn,
        reward_id=reward["id"],
        kind=kind,
        debit=debit,
        credit=credit,
        amount=reward["amount"] if amount is None else amount,
        unit=reward["unit"],
    )


async def participant_balance(
    conn: asyncpg.Connection, program_id: UUID, participant_id: UUID, unit: str
) -> int:
    """What a participant holds now in one unit."""
    return await balance(conn, recipient_account(program_id, "referrer", str(participant_id)), unit)


async def participant_balances(
    conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID, participant_id: UUID
) -> tuple[dict[str, int], dict[str, int]]:
    """What a participant holds, and what they have on hold (non-zero units only), per unit."""
    held_now = await balances(conn, recipient_account(program_id, "referrer", str(participant_id)))
    pending = await balances(conn, pending_account(program_id, "referrer", str(participant_id)))
    return held_now, {u: v for u, v in pending.items() if v}


async def referee_balances(
    conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID, customer_hash: str | None
) -> tuple[dict[str, int], dict[str, int]]:
    """What a participant holds and has on hold as someone's referee (by the hash of their
    customer id; nothing when it is not known)."""
    if customer_hash is None:
        return {}, {}
    hashed = ERASED_PREFIX + customer_hash  # the ledger's own name for a hashed referee
    held_now = await balances(conn, recipient_account(program_id, "referee", hashed))
    pending = await balances(conn, pending_account(program_id, "referee", hashed))
    return held_now, {u: v for u, v in pending.items() if v}


async def liabilities(conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID) -> dict[str, int]:
    """What the program still owes participants and referees (held or pending), per unit."""
    rows = await conn.fetch(
        "SELECT unit, -sum(amount) AS owed FROM ledger_postings "
        "WHERE account LIKE ANY($1::text[]) GROUP BY unit",
        _liability_prefixes(program_id),
    )
    return {r["unit"]: int(r["owed"]) for r in rows}


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
