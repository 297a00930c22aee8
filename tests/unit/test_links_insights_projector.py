"""Pure parts of the analytics projector and queries: batch click counting, the rules that
name a rejection, masking, date ranges and CSV cells."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links.insights.exports import cell, to_csv
from services.links.insights.projection import Projection, jsonable, rounds
from services.links.insights.projection_repository import upsert_sql
from services.links.insights.projector import click_counts, rule_names
from services.links.insights.ranges import date_range, day_bounds
from services.links.insights.scoreboards import mask
from shared.contracts import LinkClicked
from shared.contracts.referrals import RuleOutcome
from shared.http.problems import Problem

P, A, B = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _click(pid: uuid.UUID, at: datetime, **kw: object) -> LinkClicked:
    return LinkClicked(
        click_id=uuid.uuid4(), code="CODE", program_id=P, participant_id=pid, clicked_at=at,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_clicks_are_counted_per_participant_and_utc_day() -> None:
    noon = datetime(2026, 11, 2, 12, tzinfo=UTC)
    # 01:30 on the 3rd at UTC+3 is 22:30 on the 2nd in UTC: the same UTC day.
    late = datetime(2026, 11, 3, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    counts = click_counts(
        [
            _click(A, noon),
            _click(A, late, unique=False),
            _click(A, noon, attributable=False),
            _click(B, noon + timedelta(days=1)),
        ]
    )
    assert counts == {
        (A, date(2026, 11, 2)): (P, 3, 2, 1),
        (B, date(2026, 11, 3)): (P, 1, 1, 1),
    }


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3)), max_size=40))
def test_batch_counts_add_up_to_the_clicks(flags: list[tuple[bool, bool, int]]) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    clicks = [_click(A, base + timedelta(days=d), attributable=a, unique=u) for a, u, d in flags]
    counts = click_counts(clicks)
    assert sum(c[1] for c in counts.values()) == len(flags)
    assert sum(c[2] for c in counts.values()) == sum(a for a, _, _ in flags)
    assert sum(c[3] for c in counts.values()) == sum(a and u for a, u, _ in flags)
    assert all(c[1] >= c[2] >= c[3] >= 0 for c in counts.values())


def test_a_rejection_is_named_by_its_enforced_rejecting_rules() -> None:
    rules = [
        RuleOutcome(rule="velocity", action="reject"),
        RuleOutcome(rule="same_ip", action="reject", shadow=True),
        RuleOutcome(rule="disposable_email", action="review"),
    ]
    assert rule_names(rules, "reject") == ["velocity"]
    assert rule_names([RuleOutcome(rule="x", action="review")], "reject") == ["x"]
    assert rule_names([], "reject") == ["unspecified"]


def test_upserts_merge_each_column_its_own_way() -> None:
    sql = upsert_sql("t", ("id",), {"a": "first", "b": "earliest", "c": "sum"})
    assert sql.startswith(
        "INSERT INTO t (id, a, b, c) SELECT id, a, b, c FROM jsonb_populate_recordset(NULL::t, $1"
    )
    assert "ON CONFLICT (id) DO UPDATE" in sql
    assert "a = coalesce(t.a, EXCLUDED.a)" in sql
    assert "b = least(t.b, EXCLUDED.b)" in sql
    assert "c = t.c + EXCLUDED.c" in sql


@pytest.mark.parametrize(
    ("text", "masked"),
    [("customer-42", "cu•••42"), ("Alice Example", "Al•••le"), ("bob", "b•••"),
     ("abcdef", "ab•••"), ("", "•••"), (None, "•••")],
)  # fmt: skip
def test_mask(text: str | None, masked: str) -> None:
    assert mask(text) == masked


@given(st.text(min_size=8, max_size=60))
def test_a_masked_id_hides_its_middle(text: str) -> None:
    masked = mask(text)
    assert masked == text[:2] + "•••" + text[-2:]
    assert len(masked) < len(text) or len(text) <= 8


def test_day_bounds_and_default_range() -> None:
    start, end = day_bounds(date(2026, 11, 1), date(2026, 11, 2))
    assert start == datetime(2026, 11, 1, tzinfo=UTC)
    assert end == datetime(2026, 11, 3, tzinfo=UTC)
    since, until = date_range(None, date(2026, 11, 30))
    assert (since, until) == (date(2026, 11, 1), date(2026, 11, 30))  # 30 days inclusive
    with pytest.raises(Problem) as reversed_range:
        date_range(date(2026, 11, 2), date(2026, 11, 1))
    assert reversed_range.value.field == "since"
    with pytest.raises(Problem):
        date_range(date(2020, 1, 1), date(2026, 1, 1))


def test_csv_cells_are_quoted_and_formulas_defused() -> None:
    when = datetime(2026, 11, 2, 12, tzinfo=UTC)
    text = to_csv([["id", "name", "at", "n"], ['a,"b"', "=1+1", when, -5], [None, "-x", "", 0]])
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ['a,"b"', "'=1+1", "2026-11-02T12:00:00+00:00", "-5"]
    assert rows[2] == ["", "'-x", "", "0"]
    assert cell(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"


@given(st.lists(st.integers(0, 5), max_size=60))
def test_rounds_hold_each_key_once_and_keep_every_fact_in_order(keys: list[int]) -> None:
    ids = [uuid.UUID(int=k) for k in keys]
    rows = [{"reward_id": rid, "n": n} for n, rid in enumerate(ids)]
    split = rounds("rm_rewards", rows)
    assert sum(len(part) for part in split) == len(rows)
    for part in split:
        in_part = [r["reward_id"] for r in part]
        assert len(in_part) == len(set(in_part))
        assert in_part == sorted(in_part, key=str)
    # The k-th fact about a row is in round k: Postgres merges them in the order they came.
    for rid in set(ids):
        ns = [r["n"] for part in split for r in part if r["reward_id"] == rid]
        assert ns == sorted(ns)
    assert len(split) == max((ids.count(i) for i in set(ids)), default=0)


def test_referees_of_an_erased_referrer_are_not_written() -> None:
    p = Projection()
    p.upsert("rm_referrals", referral_id=B, referrer_id=A, referee_customer_id="customer-1")
    p.upsert("rm_referrals", referral_id=P, referrer_id=B, referee_customer_id="customer-2")
    p.upsert("rm_rewards", reward_id=B, referrer_id=A, side="referee", recipient="customer-1")
    p.upsert("rm_rewards", reward_id=P, referrer_id=A, side="referrer", recipient=str(A))
    assert p.referee_referrers() == {A, B}
    p.forget_referees_of({A})
    assert [r["referee_customer_id"] for r in p.upserts["rm_referrals"]] == [None, "customer-2"]
    assert [r["recipient"] for r in p.upserts["rm_rewards"]] == [None, str(A)]


def test_rows_go_to_postgres_as_json_values() -> None:
    at = datetime(2026, 11, 2, 12, tzinfo=UTC)
    row = jsonable({"id": A, "at": at, "day": date(2026, 11, 2), "n": 3, "rules": ["x"]})
    assert row == {
        "id": str(A), "at": "2026-11-02T12:00:00+00:00", "day": "2026-11-02", "n": 3,
        "rules": ["x"],
    }  # fmt: skip
