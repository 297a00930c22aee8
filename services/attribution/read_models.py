"""What attribution keeps of links' events: program versions and participants, and what it
forgets when a participant is erased. Handlers that see personal data hash it first."""

from __future__ import annotations

import asyncpg

from services.attribution import pending
from services.attribution.pii import Hasher
from services.attribution.repository import inputs, referrals
from shared.contracts import ParticipantEnrolled, ParticipantErased, ProgramPublished
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await inputs.insert_program_version(
        conn,
        event.program_id,
        event.version,
        event.effective_from,
        event.status,
        event.definition.model_dump(mode="json"),
    )


def participant_handlers(hasher: Hasher) -> dict[str, Handler]:
    """Handlers of participant events; personal data is hashed with ``hasher`` (the
    service's key)."""

    async def on_participant_enrolled(
        conn: asyncpg.Connection, event: ParticipantEnrolled, _: Envelope
    ) -> None:
        # Only the hash of the referrer's normalised email is kept, for the self-referral rule.
        await inputs.insert_participant(
            conn,
            event.participant_id,
            event.program_id,
            event.code,
            event.external_user_id,
            hasher.email(event.email),
            event.variant,
        )
        # Signups that typed this code before the enrolment reached us are decided now.
        await pending.on_code(conn, event.program_id, event.code)

    async def on_participant_erased(
        conn: asyncpg.Connection, event: ParticipantErased, _: Envelope
    ) -> None:
        """Forget the person: their user id becomes an irreversible hash, their email hash
        goes, and so does everything hashed about their own signup as a customer. Referrals
        they made keep their ids (pseudonymous) so counts and the ledger still add up."""
        row = await inputs.participant(conn, event.participant_id)
        if row is None or row["erased_at"] is not None:
            return
        user_id = row["external_user_id"]
        erased_id = "erased:" + hasher.hash("erased", f"{event.program_id}:{user_id}")[:32]
        await inputs.erase_participant(conn, event.participant_id, erased_id, event.erased_at)
        await referrals.forget_customer(conn, event.program_id, user_id, erased_id)

    return {
        ParticipantEnrolled.TOPIC: on_participant_enrolled,
        ParticipantErased.TOPIC: on_participant_erased,
    }
