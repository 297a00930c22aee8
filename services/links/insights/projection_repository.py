"""Writes of the read models (``rm_*`` tables) by the projector: each statement upserts the
facts of a batch of events (a :class:`~services.links.insights.projection.Projection`) and
merges them with what is there by order-free rules, so events of one referral may arrive in
any order and grouping, and a replay rebuilds the same rows."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID

import asyncpg

from services.links.insights.projection import KEYS, Projection, Row, jsonable, rounds

# How each column merges an existing value with a newly seen one.
_MERGE = {
    "first": "coalesce({t}.{c}, EXCLUDED.{c})",
    "earliest": "least({t}.{c}, EXCLUDED.{c})",
    "greatest": "greatest({t}.{c}, EXCLUDED.{c})",
    "union": "ARRAY(SELECT DISTINCT x FROM unnest({t}.{c} || EXCLUDED.{c}) AS x ORDER BY x)",
    "sum": "{t}.{c} + EXCLUDED.{c}",
}


def upsert_sql(table: str, key: tuple[str, ...], columns: dict[str, str]) -> str:
    """INSERT of rows given as one JSON array (``$1``: objects named by column; ``key`` +
    ``columns`` are written, a missing one as NULL) that merges each on conflict. No two rows
    of one statement may have the same key (``projection.rounds``)."""
    names = ", ".join([*key, *columns])
    merges = ", ".join(
        f"{col} = " + _MERGE[how].format(t=table, c=col) for col, how in columns.items()
    )
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} "
        f"FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {merges}"
    )


def _insert_sql(table: str, columns: str) -> str:
    """INSERT of rows given as one JSON array, each written once."""
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, $1::text::jsonb) ON CONFLICT DO NOTHING"
    )


_MERGES: dict[str, dict[str, str]] = {
    "rm_participants": {
        "program_id": "first", "variant": "first", "enrolled_at": "earliest",
        "erased_at": "earliest",
    },
    "rm_referrals": {
        "program_id": "first", "referrer_id": "first", "referee_customer_id": "first",
        "variant": "first", "signed_up_at": "earliest", "flagged_at": "earliest",
        "flag_rules": "union", "rejected_at": "earliest", "reject_rules": "union",
    },
    "rm_pending_referrals": {
        "program_id": "first", "waiting_for": "first", "referral_code": "first",
        "signed_up_at": "earliest", "received_at": "earliest", "resolved_at": "earliest",
        "resolution": "first", "referrer_id": "first",
    },
    "rm_conversions": {
        "referral_id": "first", "program_id": "first", "referrer_id": "first",
        "order_amount": "first", "currency": "first", "converted_at": "earliest",
        "program_version": "first", "variant": "first", "sequence": "greatest",
        "refunded": "sum", "reversed_at": "earliest",
    },
    "rm_rewards": {
        "program_id": "first", "referrer_id": "first", "conversion_id": "first",
        "referral_id": "first", "program_version": "first", "side": "first",
        "recipient": "first", "unit": "first", "amount": "first", "initial_status": "first",
        "created_at": "earliest", "available_at": "earliest", "issued_amount": "first",
        "issued_at": "earliest", "reversed_amount": "greatest", "reversal_kind": "greatest",
        "reversed_at": "earliest", "failure_reason": "greatest", "failed_at": "earliest",
        "variant": "first", "rule": "first", "perk": "first",
    },
    "rm_milestones": {
        "reached_at": "earliest", "reward_id": "first", "perk": "first", "amount": "first",
        "unit": "first",
    },
}  # fmt: skip
_UPSERTS = {table: upsert_sql(table, KEYS[table], merges) for table, merges in _MERGES.items()}
_SHARES = _insert_sql("rm_shares", "share_id, program_id, participant_id, channel, shared_at")
_RULES = _insert_sql("rm_referral_rules", "referral_id, decision, rule, action, shadow, reason")
_ERASED = (
    "SELECT participant_id FROM rm_participants "
    "WHERE participant_id = ANY($1::uuid[]) AND erased_at IS NOT NULL"
)

_CLICKS = (
    "INSERT INTO rm_clicks_daily (participant_id, day, program_id, clicks, attributable, "
    "invites) SELECT * FROM unnest($1::uuid[], $2::date[], $3::uuid[], $4::bigint[], "
    "$5::bigint[], $6::bigint[]) "
    "ON CONFLICT (participant_id, day) DO UPDATE SET "
    "clicks = rm_clicks_daily.clicks + EXCLUDED.clicks, "
    "attributable = rm_clicks_daily.attributable + EXCLUDED.attributable, "
    "invites = rm_clicks_daily.invites + EXCLUDED.invites"
)


async def write(conn: asyncpg.Connection, projection: Projection) -> None:
    """Apply what a batch of events said: a statement per table and round, whatever the
    number of events. Participants first: an erasure in the batch is then recorded before
    its referrer's referees are forgotten, last, in rows old and new."""
    referrers = projection.referee_referrers()
    if referrers:
        rows = await conn.fetch(_ERASED, list(referrers))
        projection.forget_referees_of({r["participant_id"] for r in rows})
    for table in _UPSERTS:
        for part in rounds(table, projection.upserts.get(table, [])):
            await conn.execute(_UPSERTS[table], _json(part))
    if projection.shares:
        await conn.execute(_SHARES, _json(projection.shares))
    if projection.rules:
        await conn.execute(_RULES, _json(projection.rules))
    if projection.erased:
        await conn.execute(
            "UPDATE rm_referrals SET referee_customer_id = NULL "
            "WHERE referrer_id = ANY($1::uuid[]) AND referee_customer_id IS NOT NULL",
            projection.erased,
        )
        await conn.execute(
            "UPDATE rm_rewards SET recipient = NULL WHERE referrer_id = ANY($1::uuid[]) "
            "AND side = 'referee' AND recipient IS NOT NULL",
            projection.erased,
        )


def _json(rows: list[Row]) -> str:
    return json.dumps([jsonable(r) for r in rows])


async def add_daily_clicks(
    conn: asyncpg.Connection,
    rows: list[tuple[UUID, date, UUID, int, int, int]],
) -> None:
    """Add (participant, day, program, clicks, attributable, invites) rows to the daily
    counts, in one statement."""
    if rows:
        columns = list(zip(*rows, strict=True))
        await conn.execute(_CLICKS, *(list(c) for c in columns))
