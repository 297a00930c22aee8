"""What the participant routes do besides enrolment: read one, record a share, erase one, and
find the link a QR code encodes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.links.participants import repository as repo
from services.links.participants.codes import CODE_CHARS_RE
from services.links.participants.enrolment import participant_out
from services.links.participants.models import ErasureOut, ShareCreate, ShareOut
from services.links.participants.sharing import channels_of, share_url
from services.links.programs import repository as programs
from services.links.settings import EVENT_SOURCE
from shared.contracts import LinkShared, ParticipantErased
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue


async def _participant(conn: Any, program_id: UUID, participant_id: UUID) -> Any:
    row = await repo.get_participant(conn, participant_id)
    if row is None or row["program_id"] != program_id:
        raise Problem(
            404, "participant-not-found", f"No participant {participant_id}", field="participant_id"
        )
    return row


async def get_participant(
    pool: asyncpg.Pool, base_url: str, program_id: UUID, participant_id: UUID
) -> dict[str, Any]:
    row = await _participant(pool, program_id, participant_id)
    current = await programs.in_force(pool, program_id, datetime.now(UTC))
    return participant_out(base_url, row, current["definition"] if current else {})


async def record_share(
    pool: asyncpg.Pool, program_id: UUID, participant_id: UUID, body: ShareCreate
) -> ShareOut:
    """The participant shared their link on a channel: published as ``link.shared``."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _participant(pool, program_id, participant_id)
        if row["erased_at"] is not None:
            raise Problem(
                409, "participant-erased", "This participant was erased", field="participant_id"
            )
        current = await programs.in_force(conn, program_id, datetime.now(UTC))
        channels = channels_of(current["definition"] if current else {})
        if body.channel not in channels:
            raise Problem(
                422,
                "unknown-channel",
                f"channel must be one of: {', '.join(channels)}",
                field="channel",
            )
        event = LinkShared(
            share_id=uuid.uuid4(),
            program_id=program_id,
            participant_id=participant_id,
            code=row["code"],
            channel=body.channel,
            shared_at=datetime.now(UTC),
        )
        await enqueue(conn, event, source=EVENT_SOURCE)
    return ShareOut(
        share_id=event.share_id,
        participant_id=participant_id,
        channel=event.channel,
        shared_at=event.shared_at,
    )


async def erase(pool: asyncpg.Pool, program_id: UUID, participant_id: UUID) -> ErasureOut:
    """Drop the participant's personal data and publish ``participant.erased`` (idempotent)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _participant(pool, program_id, participant_id)
        if row["erased_at"] is not None:
            return ErasureOut(participant_id=participant_id, erased_at=row["erased_at"])
        erased = await repo.erase_participant(conn, participant_id)
        assert erased is not None
        await enqueue(
            conn,
            ParticipantErased(
                participant_id=participant_id,
                program_id=program_id,
                code=erased["code"],
                erased_at=erased["erased_at"],
            ),
            source=EVENT_SOURCE,
        )
    return ErasureOut(participant_id=participant_id, erased_at=erased["erased_at"])


async def qr_target(pool: asyncpg.Pool, base_url: str, code: str) -> str:
    """The share link a QR code encodes (channel ``qr``); 404 for an unknown or erased code."""
    row = await repo.find_code(pool, code) if CODE_CHARS_RE.match(code) else None
    if row is None or not row["active"]:
        raise Problem(404, "code-not-found", "No such code", field="code")
    return share_url(f"{base_url.rstrip('/')}/r/{row['code']}", "qr")
