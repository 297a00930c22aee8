"""The one place that maps topics to handlers in attribution: two consumer groups, the
service's own for referral inputs and ``CLICKS_CONSUMER`` for ``link.clicked``, stored a batch
at a time by ``click_ingest.ClickConsumer`` (one inbox statement and one multi-row insert)."""

from __future__ import annotations

import asyncpg

from services.attribution.click_ingest import ClickConsumer, store_click
from services.attribution.pii import Hasher
from services.attribution.settings import AttributionSettings
from shared.contracts import (
    LinkClicked,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
)
from shared.http.key_events import KEY_HANDLERS
from shared.messaging.consumer import Handler
from shared.messaging.envelope import Envelope
from shared.messaging.groups import ConsumerGroup


async def on_program_published(
    conn: asyncpg.Connection, event: ProgramPublished, _: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, status, definition) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        event.program_id,
        event.version,
        event.effective_from,
        event.status,
        event.definition.model_dump(mode="json"),
    )


def handlers(hasher: Hasher) -> dict[str, Handler]:
    """Handlers; those that see personal data hash it with ``hasher`` (the service's key)."""

    async def on_participant_enrolled(
        conn: asyncpg.Connection, event: ParticipantEnrolled, _: Envelope
    ) -> None:
        # Only the hash of the referrer's normalised email is kept, for the self-referral rule.
        await conn.execute(
            "INSERT INTO participants (participant_id, program_id, code, external_user_id, "
            "email_hash, variant) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            event.participant_id,
            event.program_id,
            event.code,
            event.external_user_id,
            hasher.email(event.email),
            event.variant,
        )

    async def on_participant_erased(
        conn: asyncpg.Connection, event: ParticipantErased, _: Envelope
    ) -> None:
        """Forget the person: their user id becomes an irreversible hash, their email hash
        goes, and so does everything hashed about their own signup as a customer. Referrals
        they made keep their ids (pseudonymous) so counts and the ledger still add up."""
        row = await conn.fetchrow(
            "SELECT external_user_id, erased_at FROM participants WHERE participant_id = $1",
            event.participant_id,
        )
        if row is None or row["erased_at"] is not None:
            return
        erased_id = "erased:" + hasher.hash("erased", f"{event.program_id}:{row[0]}")[:32]
        await conn.execute(
            "UPDATE participants SET external_user_id = $2, email_hash = NULL, "
            "erased_at = $3 WHERE participant_id = $1",
            event.participant_id,
            erased_id,
            event.erased_at,
        )
        own = await conn.fetch(
            "UPDATE signups SET customer_id = $3, email_hash = NULL, email_domain_hash = NULL, "
            "ip_hash = NULL, device_hash = NULL, user_agent_hash = NULL "
            "WHERE program_id = $1 AND customer_id = $2 RETURNING id",
            event.program_id,
            row["external_user_id"],
            erased_id,
        )
        await conn.execute(
            "UPDATE fraud_decisions SET rules = (SELECT coalesce(jsonb_agg(x - 'inputs'), "
            "'[]'::jsonb) FROM jsonb_array_elements(rules) x) WHERE signup_id = ANY($1::uuid[])",
            [r["id"] for r in own],
        )

    return {
        ProgramPublished.TOPIC: on_program_published,
        ParticipantEnrolled.TOPIC: on_participant_enrolled,
        ParticipantErased.TOPIC: on_participant_erased,
        **KEY_HANDLERS,
    }


def consumer_groups(settings: AttributionSettings) -> list[ConsumerGroup]:
    hasher = Hasher(settings.pii_hash_key.get_secret_value())
    return [
        ConsumerGroup(handlers(hasher)),
        # Clicks: their own group, so a click backlog never delays referral events, and
        # applied a batch at a time (see click_ingest).
        ConsumerGroup(
            {LinkClicked.TOPIC: store_click},
            name=CLICKS_CONSUMER,
            consumer=ClickConsumer,
            min_batch_size=500,
        ),
    ]


CLICKS_CONSUMER = "attribution-clicks"
