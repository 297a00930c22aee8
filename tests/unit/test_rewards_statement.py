"""The ledger statement's pure parts: the cursor, the public kinds, the totals per role and
the CSV lines."""

from __future__ import annotations

import csv
import io
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.rewards.statement import (
    CSV_COLUMNS,
    KINDS,
    Position,
    csv_lines,
    decode_cursor,
    encode_cursor,
    fold_totals,
    program_role,
    public_kind,
)
from shared.http.problems import Problem

# Text Postgres can store (what account names and units are).
storable = st.characters(exclude_characters="\x00")
positions = st.builds(
    Position,
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.text(storable, max_size=80),
    st.text(storable, max_size=16),
)


@given(positions)
def test_a_cursor_names_its_position(position: Position) -> None:
    assert decode_cursor(encode_cursor(position)) == position


@given(st.text(max_size=200))
def test_a_cursor_not_given_by_the_api_is_a_422_naming_it(cursor: str) -> None:
    try:
        position = decode_cursor(cursor)
    except Problem as problem:
        assert problem.status == 422 and problem.field == "cursor"
    else:  # by chance a well-formed one: it names a position like any other
        assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize(
    "kind",
    [
        *("issue", "accrue", "release", "cancel", "clawback", "payout", "failed", "redeem"),
        *("adjustment", f"adjust:{uuid4()}"),
    ],
)
def test_every_ledger_kind_has_a_public_kind(kind: str) -> None:
    assert public_kind(kind) in KINDS


PROGRAM = "p1"
ACCOUNTS = [
    f"program:{PROGRAM}:rewards",
    f"pending:{PROGRAM}:referrer:a",
    f"participant:{PROGRAM}:a",
    f"referee:{PROGRAM}:hb",
    f"payout:{PROGRAM}:redemption",
    f"payout:{PROGRAM}:webhook",
]
# One entry: (debit account, credit account, unit, amount), as ``ledger.post`` writes it.
entries = st.lists(
    st.tuples(
        st.sampled_from(ACCOUNTS),
        st.sampled_from(ACCOUNTS),
        st.sampled_from(["USD", "MB"]),
        st.integers(min_value=1, max_value=10**9),
    ),
    max_size=40,
)


def balances_of(ledger: list[tuple[str, str, str, int]]) -> list[tuple[str, str, int]]:
    """What the balances query returns: per account and unit, minus the sum of postings."""
    sums: dict[tuple[str, str], int] = {}
    for debit, credit, unit, amount in ledger:
        sums[debit, unit] = sums.get((debit, unit), 0) + amount
        sums[credit, unit] = sums.get((credit, unit), 0) - amount
    return [(account, unit, -total) for (account, unit), total in sums.items()]


@given(entries)
def test_a_programs_cost_is_what_it_owes_plus_what_it_paid_out(
    ledger: list[tuple[str, str, str, int]],
) -> None:
    totals = fold_totals(balances_of(ledger), program_role, roles=("cost", "liability", "paid_out"))
    for unit in {u for _, _, u, _ in ledger}:
        cost = totals["cost"].get(unit, 0)
        assert cost == totals["liability"].get(unit, 0) + totals["paid_out"].get(unit, 0)


@given(entries)
def test_totals_per_role_sum_their_accounts_and_skip_others(
    ledger: list[tuple[str, str, str, int]],
) -> None:
    roles = {ACCOUNTS[2]: "balances", ACCOUNTS[1]: "pending"}
    balances = balances_of(ledger)
    totals = fold_totals(balances, roles.get, roles=("balances", "pending"), drop_zero=["pending"])
    for account, role in roles.items():
        expected = {u: b for a, u, b in balances if a == account}
        if role == "pending":
            expected = {u: b for u, b in expected.items() if b}
        assert totals[role] == expected


@given(st.lists(st.text(max_size=30), max_size=5), st.integers(-(10**12), 10**12))
def test_csv_lines_read_back_with_text_kept_from_formulas(reasons: list[str], amount: int) -> None:
    lines = [{"amount": amount, "reason": r, "kind": "adjustment"} for r in reasons]
    text = csv_lines([], header=True) + csv_lines(lines, header=False)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(lines)
    for row, reason in zip(rows, reasons, strict=True):
        assert list(row) == list(CSV_COLUMNS)
        assert row["amount"] == str(amount)
        if reason[:1] in ("=", "+", "-", "@", "\t", "\r"):
            assert row["reason"] == "'" + reason
        else:
            assert row["reason"] == reason
