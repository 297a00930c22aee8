"""CSV exports of a program's referrals and rewards, for CRMs and finance, streamed from a
server-side cursor so that a large program never sits in memory.

The referral export names referees by the customer id the company sent (never an email: links
holds none for referees). Text cells that a spreadsheet would run as a formula (starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading apostrophe."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

CHUNK_ROWS = 500

REFERRAL_COLUMNS = (
    "referral_id", "referrer_id", "referrer_code", "referee_id", "variant", "status",
    "signed_up_at", "flagged_at", "rejected_at", "reject_rules", "converted_at", "reversed_at",
    "purchases", "order_amount", "currency",
)  # fmt: skip
_REFERRALS = """
SELECT r.referral_id, r.referrer_id, pa.code AS referrer_code,
       r.referee_customer_id AS referee_id, r.variant, r.status, r.signed_up_at, r.flagged_at,
       r.rejected_at, array_to_string(r.reject_rules, ';') AS reject_rules, r.converted_at,
       r.reversed_at, c.purchases, c.order_amount, c.currency
FROM rm_referral_states r
LEFT JOIN participants pa ON pa.id = r.referrer_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.converted_at IS NOT NULL) AS purchases,
           sum(x.order_amount) AS order_amount, min(x.currency) AS currency
    FROM rm_conversions x WHERE x.referral_id = r.referral_id
) c ON true
WHERE r.program_id = $1
ORDER BY r.signed_up_at NULLS LAST, r.referral_id
"""

REWARD_COLUMNS = (
    "reward_id", "referrer_id", "referral_id", "conversion_id", "side", "recipient", "rule",
    "perk", "unit", "amount", "state", "created_at", "available_at", "issued_at",
    "reversed_at", "reversal_kind", "reversed_amount", "failed_at", "failure_reason",
    "program_version", "variant",
)  # fmt: skip
_REWARDS = """
SELECT reward_id, referrer_id, referral_id, conversion_id, side, recipient, rule, perk, unit,
       value AS amount, state, created_at, available_at, issued_time AS issued_at,
       reversed_at, reversal_kind, reversed_amount, failed_at, failure_reason,
       program_version, variant
FROM rm_reward_states WHERE program_id = $1
ORDER BY created_at NULLS LAST, reward_id
"""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV cell: times in ISO 8601, text defused against spreadsheet formulas."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerows([[cell(v) for v in row] for row in rows])
    return out.getvalue()


async def _stream(
    conn: asyncpg.Connection, sql: str, columns: Sequence[str], *args: Any
) -> AsyncIterator[str]:
    yield to_csv([columns])
    async with conn.transaction():  # a cursor lives in a transaction
        chunk: list[list[Any]] = []
        async for record in conn.cursor(sql, *args, prefetch=CHUNK_ROWS):
            chunk.append([record[c] for c in columns])
            if len(chunk) >= CHUNK_ROWS:
                yield to_csv(chunk)
                chunk = []
        if chunk:
            yield to_csv(chunk)


def export_referrals_csv(conn: asyncpg.Connection, program_id: UUID) -> AsyncIterator[str]:
    return _stream(conn, _REFERRALS, REFERRAL_COLUMNS, program_id)


def export_rewards_csv(conn: asyncpg.Connection, program_id: UUID) -> AsyncIterator[str]:
    return _stream(conn, _REWARDS, REWARD_COLUMNS, program_id)
