"""Manual adjustments by an operator: a goodwill grant or a correction of a participant's
balance, with the reason given and the acting key recorded on the ledger entry."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg

from services.rewards import ledger
from services.rewards import repository as repo
from services.rewards.models import AdjustmentIn, AdjustmentOut
from shared.http.auth import PROGRAM_KEY_PREFIX
from shared.http.problems import Problem, not_found


async def adjust(
    conn: asyncpg.Connection,
    program_id: UUID,
    participant_id: UUID,
    body: AdjustmentIn,
    actor: str,
) -> tuple[int, AdjustmentOut]:
    """201 with the new adjustment; 200 with the first one when its ``reference`` was sent
    before with the same content (409 with other content). A correction down may not leave
    the balance negative (409). The referrer lock orders it with redemptions and clawbacks."""
    if not await repo.participants.belongs(conn, participant_id, program_id):
        raise not_found("participant", participant_id, "participant_id")
    if body.amount == 0 or (body.kind == "goodwill" and body.amount < 0):
        raise Problem(
            422,
            "invalid-amount",
            "A goodwill grant is positive; a correction is positive or negative, never 0",
            field="amount",
        )
    await repo.locks.lock_referrer(conn, program_id, participant_id)
    if body.reference is not None:
        earlier = await repo.adjustments.by_reference(conn, program_id, body.reference)
        if earlier is not None:
            return 200, await _replayed(conn, earlier, participant_id, body)
    held = await ledger.participant_balance(conn, program_id, participant_id, body.unit)
    if held + body.amount < 0:
        raise Problem(
            409, "insufficient-balance", f"The balance is {held} {body.unit}", field="amount"
        )
    row = await repo.adjustments.insert(
        conn,
        uuid.uuid4(),
        program_id,
        participant_id,
        body.kind,
        body.amount,
        body.unit,
        body.reason,
        actor,
        body.reference,
    )
    if row is None:  # the same reference, for another participant, committed meanwhile
        raise _reused()
    await ledger.adjust(conn, row["id"], program_id, participant_id, body.amount, body.unit, actor)
    return 201, _out(row, held + body.amount)


async def acting_key(conn: asyncpg.Connection, token: str, *, admin: bool) -> str:
    """``admin`` for the admin key, else ``key:<key_id>`` of the (already authorized) program
    key. A key accepted but not known here yet is named by the id its secret starts with
    (``rk_<key_id>_...``)."""
    if admin:
        return "admin"
    key_id = await repo.adjustments.key_id(conn, token)
    if key_id is None and token.startswith(PROGRAM_KEY_PREFIX):
        key_id = token[len(PROGRAM_KEY_PREFIX) :].split("_", 1)[0]
    return f"key:{key_id or 'unknown'}"


async def _replayed(
    conn: asyncpg.Connection, earlier: asyncpg.Record, participant_id: UUID, body: AdjustmentIn
) -> AdjustmentOut:
    sent: dict[str, Any] = {
        "participant_id": participant_id,
        "kind": body.kind,
        "amount": body.amount,
        "unit": body.unit,
        "reason": body.reason,
    }
    if any(earlier[k] != v for k, v in sent.items()):
        raise _reused()
    held = await ledger.participant_balance(
        conn, earlier["program_id"], participant_id, earlier["unit"]
    )
    return _out(earlier, held)


def _reused() -> Problem:
    return Problem(
        409,
        "adjustment-reference-reused",
        "This reference names another adjustment of the program",
        field="reference",
    )


def _out(row: asyncpg.Record, balance: int) -> AdjustmentOut:
    return AdjustmentOut(
        id=row["id"],
        participant_id=row["participant_id"],
        kind=row["kind"],
        amount=row["amount"],
        unit=row["unit"],
        reason=row["reason"],
        actor=row["actor"],
        reference=row["reference"],
        created_at=row["created_at"],
        balance=balance,
    )
