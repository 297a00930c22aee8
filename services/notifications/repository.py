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


async def definition(conn: Conn, program_id: UUID, version: int | None = None) -> dict[str, Any]:
    """A version's definition, or the one in force now; {} before the program is known."""
    if version is not None:
        value = await conn.fetchval(
            "SELECT definition FROM programs WHERE program_id = $1 AND version = $2",
            program_id,
            version,
        )
        if value is not None:
            return value  # type: ignore[no-any-return]
    value = await conn.fetchval(
        "SELECT definition FROM programs WHERE program_id = $1 "
        "ORDER BY (effective_from <= now()) DESC, effective_from DESC, version DESC LIMIT 1",
        program_id,
    )
    return value or {}


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
    chain = locale_chain(locale)
    found: dict[tuple[str, str], asyncpg.Record] = {}
    if program_id is not None:
        rows = await conn.fetch(
            "SELECT locale, variant, subject, body, html FROM templates "
            "WHERE program_id = $1 AND trigger = $2 AND locale = ANY($3::text[]) "
            "AND variant = ANY($4::text[])",
            program_id,
            trigger,
            chain,
            [variant or "", ""],
        )
        found = {(r["locale"], r["variant"]): r for r in rows}

    def own(locales: list[str]) -> Source | None:
        for loc in locales:
            for var in ([variant] if variant else []) + [""]:
                if (r := found.get((loc, var))) is not None:
                    return Source(r["subject"], r["body"], r["html"])
        return None

    native = [loc for loc in chain if loc != "en"]
    if (source := own(native)) is not None:
        return source
    if any(trigger in DEFAULTS.get(loc, {}) for loc in native):
        return Source(*default_template(trigger, locale))
    if (source := own(["en"])) is not None:
        return source
    return Source(*default_template(trigger, "en"))


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
