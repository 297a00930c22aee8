"""Participants (from ``participant.enrolled``), their clicks and converted referrals, their
email preferences, and the one-statement read that a message to a participant needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from services.notifications.render import Source
from services.notifications.repository import Conn
from services.notifications.repository.programs import IN_FORCE


@dataclass(frozen=True)
class Participant:
    participant_id: UUID
    program_id: UUID
    email: str | None
    locale: str
    link_url: str
    variant: str | None
    name: str | None
    erased: bool


async def insert(
    conn: asyncpg.Connection,
    *,
    participant_id: UUID,
    program_id: UUID,
    email: str | None,
    name: str | None,
    locale: str,
    link_url: str,
    variant: str | None,
    enrolled_at: datetime,
) -> None:
    # DO NOTHING: an erasure's tombstone row keeps a late enrolment from bringing data back.
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, email, name, locale, "
        "link_url, variant, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT DO NOTHING",
        participant_id,
        program_id,
        email,
        name,
        locale,
        link_url,
        variant,
        enrolled_at,
    )


async def get(conn: Conn, participant_id: UUID) -> Participant | None:
    row = await conn.fetchrow(
        "SELECT participant_id, program_id, email, name, locale, link_url, variant, "
        "erased_at IS NOT NULL AS erased FROM participants WHERE participant_id = $1",
        participant_id,
    )
    return Participant(**dict(row)) if row else None


async def program_of(conn: Conn, participant_id: UUID) -> UUID | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT program_id FROM participants WHERE participant_id = $1", participant_id
    )


async def erase(conn: asyncpg.Connection, participant_id: UUID, program_id: UUID) -> None:
    """Email and name gone, and a tombstone row (inserted if the enrolment has not arrived)
    so that a late enrolment event does not bring them back."""
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, link_url, erased_at) "
        "VALUES ($1, $2, '', now()) ON CONFLICT DO NOTHING",
        participant_id,
        program_id,
    )
    await conn.execute(
        "UPDATE participants SET email = NULL, name = NULL, erased_at = coalesce(erased_at, now()) "
        "WHERE participant_id = $1",
        participant_id,
    )
    await conn.execute("DELETE FROM preferences WHERE participant_id = $1", participant_id)


async def count_click(conn: asyncpg.Connection, participant_id: UUID) -> None:
    await conn.execute(
        "INSERT INTO participant_clicks (participant_id, clicks) VALUES ($1, 1) "
        "ON CONFLICT (participant_id) DO UPDATE SET clicks = participant_clicks.clicks + 1",
        participant_id,
    )


async def clicks(conn: Conn, participant_id: UUID) -> int | None:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT clicks FROM participant_clicks WHERE participant_id = $1", participant_id
    )


async def one_short_of(
    conn: asyncpg.Connection, program_id: UUID, thresholds: list[int]
) -> list[tuple[UUID, int]]:
    """(participant, converted referrals) of the program's participants one conversion short
    of one of ``thresholds``."""
    rows = await conn.fetch(
        "SELECT participant_id, converted FROM participant_progress WHERE program_id = $1 "
        "AND converted + 1 = ANY($2::int[])",
        program_id,
        thresholds,
    )
    return [(r["participant_id"], r["converted"]) for r in rows]


async def preferences(conn: Conn, participant_id: UUID) -> dict[str, bool]:
    """The categories the participant has a stored choice for (no row: subscribed)."""
    rows = await conn.fetch(
        "SELECT category, subscribed FROM preferences WHERE participant_id = $1", participant_id
    )
    return {r["category"]: r["subscribed"] for r in rows}


async def set_preference(
    conn: Conn, program_id: UUID, participant_id: UUID, category: str, value: bool, source: str
) -> None:
    await conn.execute(
        "INSERT INTO preferences (participant_id, program_id, category, subscribed, source) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (participant_id, category) DO UPDATE "
        "SET subscribed = EXCLUDED.subscribed, source = EXCLUDED.source, updated_at = now()",
        participant_id,
        program_id,
        category,
        value,
        source,
    )


@dataclass(frozen=True)
class Audience:
    """What a message to one participant needs to know, read in one statement."""

    who: Participant
    version: int | None  # of the participant's program in force now; None: not published
    templates: dict[tuple[str, str], Source]  # the program's, for this trigger and variant
    subscribed: bool  # to the trigger's category
    marketing_sent_last_day: int  # counted only for marketing messages


_AUDIENCE = (
    "SELECT p.participant_id, p.program_id, p.email, p.name, p.locale, p.link_url, p.variant, "
    "p.erased_at IS NOT NULL AS erased, "
    f"({IN_FORCE.format(program='p.program_id')}) AS version, "
    "coalesce((SELECT subscribed FROM preferences f WHERE f.participant_id = p.participant_id "
    "AND f.category = $2), true) AS subscribed, "
    "CASE WHEN $2 = 'marketing' THEN (SELECT count(*) FROM deliveries d "
    "WHERE d.participant_id = p.participant_id AND d.channel = 'email' "
    "AND d.category = 'marketing' AND d.status IN ('pending', 'sent') "
    "AND d.created_at > now() - interval '24 hours') ELSE 0 END AS marketing_sent, "
    "ARRAY(SELECT ARRAY[t.locale, t.variant, t.subject, t.body, t.html] FROM templates t "
    "WHERE t.program_id = p.program_id AND t.trigger = $3 "
    "AND t.variant IN (coalesce(p.variant, ''), '')) AS templates"
)
# The same, counting a first purchase in participant_progress in the same round trip; one row
# whether or not the participant is known (the count does not wait for the enrolment).
_AUDIENCE_COUNTING = (
    "WITH progress AS (INSERT INTO participant_progress (participant_id, program_id, converted) "
    "VALUES ($1, $4, 1) ON CONFLICT (participant_id) DO UPDATE "
    "SET converted = participant_progress.converted + 1 RETURNING converted) "
    + _AUDIENCE
    + ", (SELECT converted FROM progress) AS converted "
    "FROM (SELECT $1::uuid AS id) one LEFT JOIN participants p ON p.participant_id = one.id"
)
_AUDIENCE = _AUDIENCE + " FROM participants p WHERE p.participant_id = $1"


async def audience(
    conn: Conn,
    participant_id: UUID,
    trigger: str,
    category: str,
    *,
    count_conversion_in: UUID | None = None,
) -> tuple[Audience | None, int | None]:
    """The participant, the version in force of their program, their preference for the
    category, their marketing emails of the last 24 hours and the program's templates of the
    trigger, in one round trip; None when the participant is unknown. With
    ``count_conversion_in`` (a program id), the statement also adds one to the participant's
    converted referrals and the count after it is returned second."""
    if count_conversion_in is None:
        row = await conn.fetchrow(_AUDIENCE, participant_id, category, trigger)
        converted = None
    else:
        row = await conn.fetchrow(
            _AUDIENCE_COUNTING, participant_id, category, trigger, count_conversion_in
        )
        assert row is not None  # the LEFT JOIN returns one row
        converted = row["converted"]
    if row is None or row["participant_id"] is None:
        return None, converted
    return Audience(
        who=Participant(
            participant_id=row["participant_id"],
            program_id=row["program_id"],
            email=row["email"],
            locale=row["locale"],
            link_url=row["link_url"],
            variant=row["variant"],
            name=row["name"],
            erased=row["erased"],
        ),
        version=row["version"],
        templates={(t[0], t[1]): Source(t[2], t[3], t[4]) for t in row["templates"]},
        subscribed=bool(row["subscribed"]),
        marketing_sent_last_day=int(row["marketing_sent"]),
    ), converted
