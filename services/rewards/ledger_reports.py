"""What finance reads from the ledger: a participant's or a program's statement (JSON pages
or one CSV download), and the return on the program's rewards per experiment variant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from services.rewards import repository as repo
from services.rewards.ledger import statement as ledger_statement
from services.rewards.ledger.statement import START, Scope
from services.rewards.models import (
    ParticipantStatementOut,
    ProgramStatementOut,
    RoiFigures,
    RoiOut,
    StatementLine,
    VariantRoi,
)
from services.rewards.statement import (
    Position,
    csv_lines,
    decode_cursor,
    encode_cursor,
    fold_totals,
    program_role,
    public_kind,
)
from shared.http.problems import not_found

PARTICIPANT_ROLES = ("balances", "pending", "referee_balances", "referee_pending")
PROGRAM_ROLES = ("cost", "liability", "paid_out")
CSV_PAGE = 500


@dataclass(frozen=True)
class Filters:
    unit: str | None = None
    since: date | None = None  # first UTC day
    until: date | None = None  # last UTC day, included


@dataclass(frozen=True)
class Page:
    totals: dict[str, dict[str, int]]
    lines: list[StatementLine]
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class Statement:
    """A statement's scope and how it names each account's role."""

    scope: Scope
    role_of: Callable[[str], str | None]
    roles: tuple[str, ...]
    drop_zero: tuple[str, ...] = ()


async def of_participant(pool: asyncpg.Pool, program_id: UUID, participant_id: UUID) -> Statement:
    """404 for a participant that is not the program's (as the rewards endpoint)."""
    if not await repo.participants.belongs(pool, participant_id, program_id):
        raise not_found("participant", participant_id, "participant_id")
    customer_hash = await repo.participants.customer_hash(pool, participant_id)
    roles = ledger_statement.participant_roles(program_id, participant_id, customer_hash)
    return Statement(
        Scope(program_id, tuple(roles)),
        roles.get,
        PARTICIPANT_ROLES,
        drop_zero=("pending", "referee_pending"),
    )


def of_program(program_id: UUID) -> Statement:
    return Statement(Scope(program_id), program_role, PROGRAM_ROLES)


async def page(
    pool: asyncpg.Pool, statement: Statement, cursor: str | None, limit: int, filters: Filters
) -> Page:
    """One page of lines after ``cursor``, the totals, and where the next page starts."""
    after = decode_cursor(cursor) if cursor else START
    as_of = await ledger_statement.horizon(pool)
    rows = await _lines(pool, statement, as_of, after, limit + 1, filters)
    balances = await ledger_statement.balances(
        pool, statement.scope, as_of=as_of, unit=filters.unit
    )
    totals = fold_totals(
        balances, statement.role_of, roles=statement.roles, drop_zero=statement.drop_zero
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(_position(rows[-1])) if rows else cursor
    return Page(totals, [_line(r, statement) for r in rows], next_cursor, more)


async def participant_page(
    pool: asyncpg.Pool,
    program_id: UUID,
    participant_id: UUID,
    cursor: str | None,
    limit: int,
    filters: Filters,
) -> ParticipantStatementOut:
    statement = await of_participant(pool, program_id, participant_id)
    found = await page(pool, statement, cursor, limit, filters)
    return ParticipantStatementOut(
        program_id=program_id, participant_id=participant_id, **vars(found)
    )


async def program_page(
    pool: asyncpg.Pool, program_id: UUID, cursor: str | None, limit: int, filters: Filters
) -> ProgramStatementOut:
    found = await page(pool, of_program(program_id), cursor, limit, filters)
    return ProgramStatementOut(program_id=program_id, **vars(found))


async def csv_rows(
    pool: asyncpg.Pool, statement: Statement, filters: Filters
) -> AsyncIterator[str]:
    """The whole statement as CSV, a page at a time, every page as of the same horizon."""
    as_of = await ledger_statement.horizon(pool)
    after = START
    yield csv_lines([], header=True)
    while True:
        rows = await _lines(pool, statement, as_of, after, CSV_PAGE, filters)
        if not rows:
            return
        yield csv_lines((_line(r, statement).model_dump() for r in rows), header=False)
        if len(rows) < CSV_PAGE:
            return
        after = _position(rows[-1])


async def _lines(
    pool: asyncpg.Pool,
    statement: Statement,
    as_of: int,
    after: Position,
    limit: int,
    filters: Filters,
) -> list[asyncpg.Record]:
    return await ledger_statement.lines(
        pool,
        statement.scope,
        as_of=as_of,
        after=after,
        limit=limit,
        unit=filters.unit,
        since=filters.since,
        until=filters.until,
    )


def _position(row: asyncpg.Record) -> Position:
    return Position(row["tx"], row["entry_id"], row["account"], row["unit"])


def _line(row: asyncpg.Record, statement: Statement) -> StatementLine:
    return StatementLine(
        entry_id=row["entry_id"],
        at=row["at"],
        kind=public_kind(row["entry_kind"]),
        entry_kind=row["entry_kind"],
        account=row["account"],
        role=statement.role_of(row["account"]) or "",
        unit=row["unit"],
        amount=row["amount"],
        balance=row["balance"],
        reward_id=row["reward_id"],
        redemption_id=row["redemption_id"],
        adjustment_id=row["adjustment_id"],
        actor=row["actor"],
        reason=row["reason"],
    )


async def roi(pool: asyncpg.Pool, program_id: UUID) -> RoiOut:
    """Revenue of the referred conversions against what their rewards cost, per variant and
    for the program. Currencies and units are never mixed: a return is given only where the
    revenue's currency is also a reward unit."""
    variants: dict[str | None, VariantRoi] = {}

    def of(variant: str | None) -> VariantRoi:
        return variants.setdefault(
            variant,
            VariantRoi(variant=variant, conversions=0, revenue={}, reward_cost={}, roi={}),
        )

    for r in await repo.conversions.revenue(pool, program_id):
        figures = of(r["variant"])
        figures.conversions += int(r["conversions"])
        figures.revenue[r["currency"]] = int(r["revenue"])
    adjustments: dict[str, int] = {}
    for r in await ledger_statement.program_cost(pool, program_id):
        if r["adjustment"]:
            adjustments[r["unit"]] = int(r["cost"])
        else:
            of(r["variant"]).reward_cost[r["unit"]] = int(r["cost"])
    program = RoiFigures(conversions=0, revenue={}, reward_cost=dict(adjustments), roi={})
    for figures in variants.values():
        program.conversions += figures.conversions
        _add(program.revenue, figures.revenue)
        _add(program.reward_cost, figures.reward_cost)
    for figures in (program, *variants.values()):
        figures.roi = returns(figures.revenue, figures.reward_cost)
    ordered = sorted(variants.values(), key=lambda v: (v.variant is not None, v.variant or ""))
    return RoiOut(program_id=program_id, program=program, variants=ordered, adjustments=adjustments)


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for unit, value in more.items():
        into[unit] = into.get(unit, 0) + value


def returns(revenue: dict[str, int], cost: dict[str, int]) -> dict[str, float]:
    """(revenue - cost) / cost per currency that is also a cost unit with a positive cost."""
    return {
        unit: round((revenue[unit] - spent) / spent, 4)
        for unit, spent in cost.items()
        if unit in revenue and spent > 0
    }
