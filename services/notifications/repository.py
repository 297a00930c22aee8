"""Queries of the read models: program definitions, participants, preferences, templates."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import pydantic

from services.notifications.catalog import DEFAULTS, default_template, locale_chain
from services.notifications.render import Source
from shared.contracts.sections.notifications import NotificationPolicy

Conn = asyncpg.Connection | asyncpg.Pool


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


async def participant(conn: Conn, participant_id: UUID) -> Participant | None:
    row = await conn.fetchrow(
        "SELECT participant_id, program_id, email, name, locale, link_url, variant, "
        "erased_at IS NOT NULL AS erased FROM participants WHERE participant_id = $1",
        participant_id,
    )
    return Participant(**dict(row)) if row else None


# Definitions by (program, version). A published version never changes (``programs`` rows are
# only ever inserted, ON CONFLICT DO NOTHING), so once read it is kept for the process's life:
# no invalidation is needed. Which version is in force is still asked of the database each
# time (it moves with effective_from and with publications handled by other replicas).
# The dicts are shared: callers only read them.
_DEFINITIONS: dict[tuple[UUID, int], dict[str, Any]] = {}
_DEFINITIONS_MAX = 4096


async def definition_of_version(
    conn: Conn, program_id: UUID, version: int
) -> dict[str, Any] | None:
    """A published version's definition (cached: versions are immutable), None if unknown."""
    key = (program_id, version)
    if (cached := _DEFINITIONS.get(key)) is not None:
        return cached
    value = await conn.fetchval(
        "SELECT definition FROM programs WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    )
    if value is not None:
        if len(_DEFINITIONS) >= _DEFINITIONS_MAX:
            _DEFINITIONS.clear()  # simplest bound; refilled by the next reads
        _DEFINITIONS[key] = value
    return value  # type: ignore[no-any-return]


# The version in force now, as a scalar subquery on ``$1`` (the program id).
IN_FORCE = (
    "SELECT version FROM programs WHERE program_id = {program} "
    "ORDER BY (effective_from <= now()) DESC, effective_from DESC, version DESC LIMIT 1"
)


async def definition(conn: Conn, program_id: UUID, version: int | None = None) -> dict[str, Any]:
    """A version's definition, or the one in force now; {} before the program is known."""
    if version is not None:
        value = await definition_of_version(conn, program_id, version)
        if value is not None:
            return value
    in_force = await conn.fetchval(IN_FORCE.format(program="$1"), program_id)
    if in_force is None:
        return {}
    return await definition_of_version(conn, program_id, in_force) or {}


def policy_of(definition: dict[str, Any], variant: str | None = None) -> NotificationPolicy:
    """The notifications section, the variant's own if it has one."""
    section = definition.get("notifications") or {}
    for v in definition.get("variants") or []:
        if variant and v.get("name") == variant and v.get("notifications") is not None:
            section = v["notifications"]
    try:
        return NotificationPolicy.model_validate(section)
    except pydantic.ValidationError:
        return NotificationPolicy()


def milestone_thresholds(definition: dict[str, Any]) -> list[int]:
    rewards = definition.get("rewards") or {}
    return sorted(int(m["threshold"]) for m in rewards.get("milestones") or [] if "threshold" in m)


def hold_days(definition: dict[str, Any]) -> float:
    return float((definition.get("rewards") or {}).get("hold_days") or 0)


async def subscribed(conn: Conn, participant_id: UUID, category: str) -> bool:
    value = await conn.fetchval(
        "SELECT subscribed FROM preferences WHERE participant_id = $1 AND category = $2",
        participant_id,
        category,
    )
    return True if value is None else bool(value)


async def marketing_sent_last_day(conn: Conn, participant_id: UUID) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE participant_id = $1 AND channel = 'email' "
            "AND category = 'marketing' AND status IN ('pending', 'sent') "
            "AND created_at > now() - interval '24 hours'",
            participant_id,
        )
    )


async def template(
    conn: Conn, program_id: UUID | None, trigger: str, locale: str | None, variant: str | None
) -> Source:
    """Most specific first: the program's template in the reader's locale (its variant, then
    any variant), the shipped default in the reader's language, then the program's English,
    then the shipped English."""
    found: dict[tuple[str, str], Source] = {}
    if program_id is not None:
        rows = await conn.fetch(
            "SELECT locale, variant, subject, body, html FROM templates "
            "WHERE program_id = $1 AND trigger = $2 AND locale = ANY($3::text[]) "
            "AND variant = ANY($4::text[])",
            program_id,
            trigger,
            locale_chain(locale),
            [variant or "", ""],
        )
        found = {(r[0], r[1]): Source(r[2], r[3], r[4]) for r in rows}
    return choose_template(found, trigger, locale, variant)


def choose_template(
    found: dict[tuple[str, str], Source], trigger: str, locale: str | None, variant: str | None
) -> Source:
    """The resolution of ``template`` over the program's templates of this trigger, keyed by
    (locale, variant); keys outside the reader's locale chain and variant are ignored."""
    chain = locale_chain(locale)

    def own(locales: list[str]) -> Source | None:
        for loc in locales:
            for var in ([variant] if variant else []) + [""]:
                if (source := found.get((loc, var))) is not None:
                    return source
        return None

    native = [loc for loc in chain if loc != "en"]
    if (source := own(native)) is not None:
        return source
    if any(trigger in DEFAULTS.get(loc, {}) for loc in native):
        return Source(*default_template(trigger, locale))
    if (source := own(["en"])) is not None:
        return source
    return Source(*default_template(trigger, "en"))


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
    trigger: what ``participant``, ``definition``, ``subscribed``, ``marketing_sent_last_day``
    and ``template`` read, in one round trip; None when the participant is unknown. With
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


def ops_key(address: str) -> str:
    """A recipient key for an ops address that does not carry the address itself."""
    return "ops:" + hashlib.sha256(address.lower().encode()).hexdigest()[:24]


async def schedule_reminder(
    conn: asyncpg.Connection,
    *,
    program_id: UUID,
    participant_id: UUID,
    kind: str,
    dedupe: str,
    due_at: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO reminders (id, program_id, participant_id, kind, dedupe, data, due_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        uuid.uuid4(),
        program_id,
        participant_id,
        kind,
        dedupe,
        data or {},
        due_at,
    )
