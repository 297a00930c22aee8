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

from services.links.insights import repository as repo

CHUNK_ROWS = 500

COLUMNS = {
    "referrals": (
        "referral_id", "referrer_id", "referrer_code", "referee_id", "variant", "status",
        "signed_up_at", "flagged_at", "rejected_at", "reject_rules", "converted_at",
        "reversed_at", "purchases", "order_amount", "currency",
    ),
    "rewards": (
        "reward_id", "referrer_id", "referral_id", "conversion_id", "side", "recipient", "rule",
        "perk", "unit", "amount", "state", "created_at", "available_at", "issued_at",
        "reversed_at", "reversal_kind", "reversed_amount", "failed_at", "failure_reason",
        "program_version", "variant",
    ),
}  # fmt: skip

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


async def export_csv(conn: asyncpg.Connection, kind: str, program_id: UUID) -> AsyncIterator[str]:
    """The ``kind`` export (``referrals`` or ``rewards``) of one program, a chunk at a time."""
    columns = COLUMNS[kind]
    yield to_csv([columns])
    async with conn.transaction():  # a cursor lives in a transaction
        chunk: list[list[Any]] = []
        async for record in repo.export_cursor(conn, kind, program_id, CHUNK_ROWS):
            chunk.append([record[c] for c in columns])
            if len(chunk) >= CHUNK_ROWS:
                yield to_csv(chunk)
                chunk = []
        if chunk:
            yield to_csv(chunk)
