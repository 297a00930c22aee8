"""A participant's erasure: the ledger keeps its amounts (accounts carry only the pseudonymous
participant id and hashed referee ids); what links this person to the people they referred,
the referees' customer ids in clear, is replaced by a one-way hash."""

from __future__ import annotations

import hashlib

import asyncpg

from services.rewards import repository as repo
from services.rewards.ledger import ERASED_PREFIX
from shared.contracts import ParticipantErased


def _hashed(value: str) -> str:
    return ERASED_PREFIX + hashlib.sha256(value.encode()).hexdigest()


async def erase_participant(conn: asyncpg.Connection, event: ParticipantErased) -> None:
    await repo.conversions.record_erasure(conn, event.participant_id, event.erased_at)
    for clear in await repo.conversions.referees_in_clear(
        conn, event.program_id, event.participant_id
    ):
        await repo.conversions.replace_referee(
            conn, event.program_id, event.participant_id, clear, _hashed(clear)
        )
