"""Checking import rows and what a batch makes of them (no I/O): each data row is staged or
refused, never both, never neither; links checks a row as its enrolment API checks a body;
the bulk helpers draw codes and outbox envelopes as the one-at-a-time ones do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.customer_imports import CUSTOMERS
from services.links.participants.bulk_enrolment import PARTICIPANTS
from services.links.participants.codes import ALPHABET, new_codes
from shared.contracts import ParticipantEnrolled
from shared.http.problems import Problem
from shared.imports.models import InvalidRow, Row, RowError
from shared.imports.runner import BatchResult
from shared.imports.upload import FORMATS, _Spool, format_of
from shared.messaging.outbox import outbox_row, outbox_rows

values = st.fixed_dictionaries(
    {
        "external_user_id": st.one_of(st.none(), st.text(max_size=5), st.just("x" * 201)),
        "email": st.one_of(st.none(), st.sampled_from(["a@example.com", "nope", "b@c"])),
        "name": st.one_of(st.none(), st.text(max_size=5)),
        "locale": st.one_of(st.none(), st.sampled_from(["en", "pt-BR", "english!"])),
        "code": st.one_of(st.none(), st.sampled_from(["ALICE-2024", "admin", "a b"])),
        "leaderboard_opt_in": st.one_of(st.none(), st.sampled_from(["true", "no", "maybe"])),
    }
)


@given(st.lists(st.one_of(values, st.just("unreadable")), max_size=30))
def test_every_row_is_staged_or_refused(items: list[Any]) -> None:
    spool = _Spool(pool=None, kind=PARTICIPANTS, program_id=uuid.uuid4())  # type: ignore[arg-type]
    for number, item in enumerate(items, start=2):
        spool.add(RowError(number, None, "x") if item == "unreadable" else Row(number, item))
    assert spool.received == len(items)
    assert len(spool.rows) + spool.failed == spool.received  # rows_done + errors == rows
    assert {e.row for e in spool.errors} | {n for n, _ in spool.rows} == set(
        range(2, len(items) + 2)
    )
    assert not {e.row for e in spool.errors} & {n for n, _ in spool.rows}


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"external_user_id": None}, "external_user_id"),
        ({"external_user_id": "u", "email": "nope"}, "email"),
        ({"external_user_id": "u", "locale": "english!"}, "locale"),
        ({"external_user_id": "u", "code": "admin"}, "code"),
        ({"external_user_id": "u", "leaderboard_opt_in": "maybe"}, "leaderboard_opt_in"),
    ],
)
def test_a_participant_row_is_checked_as_the_enrolment_api_checks_a_body(
    row: dict[str, str | None], field: str
) -> None:
    with pytest.raises(InvalidRow) as refused:
        PARTICIPANTS.validate({**dict.fromkeys(PARTICIPANTS.columns.names), **row})
    assert [f for f, _ in refused.value.problems] == [field]


def test_a_participant_row_gets_the_apis_defaults() -> None:
    clean = PARTICIPANTS.validate(
        {
            **dict.fromkeys(PARTICIPANTS.columns.names),
            "external_user_id": "u",
            "leaderboard_opt_in": "yes",
        }
    )
    assert (clean["locale"], clean["leaderboard_opt_in"]) == ("en", "true")


def test_a_customer_row_needs_an_id_a_signup_would_take() -> None:
    assert CUSTOMERS.validate({"customer_id": "cus_1"}) == {"customer_id": "cus_1"}
    for bad in (None, "x" * 201):
        with pytest.raises(InvalidRow):
            CUSTOMERS.validate({"customer_id": bad})


def test_failed_rows_count_rows_not_errors() -> None:
    result = BatchResult(
        errors=[RowError(2, "a", "x"), RowError(2, "b", "y"), RowError(5, None, "z")]
    )
    assert result.failed == 2


def test_only_the_upload_types_are_accepted() -> None:
    assert format_of("text/csv; charset=utf-8") == "csv"
    assert format_of("application/x-ndjson") == "jsonl"
    with pytest.raises(Problem) as refused:
        format_of("application/json")
    assert refused.value.status == 415 and refused.value.extra["accepted"] == list(FORMATS)


@pytest.mark.parametrize("length", [9, 10, 32])
def test_bulk_codes_are_random_codes_of_the_alphabet(length: int) -> None:
    codes = new_codes(2000, length)
    assert len(set(codes)) == 2000
    assert all(len(c) == length and set(c) <= set(ALPHABET) for c in codes)
    # Every symbol turns up at every position: nothing is fixed by the conversion.
    assert all({c[i] for c in codes} == set(ALPHABET) for i in range(length))


def test_batched_outbox_rows_carry_what_single_ones_do() -> None:
    event = ParticipantEnrolled(
        participant_id=uuid.uuid4(), program_id=uuid.uuid4(), external_user_id="u", code="ABC",
        link_url="https://ref.example.com/r/ABC", enrolled_at=datetime.now(UTC),
    )  # fmt: skip
    single = outbox_row(event, source="/services/links")
    [batched] = outbox_rows([event], source="/services/links")
    assert batched[1:3] == single[1:3] and batched[4] == single[4]
    volatile = {"ce_id", "ce_time"}
    assert {k: v for k, v in batched[3].items() if k not in volatile} == {
        k: v for k, v in single[3].items() if k not in volatile
    }
    assert batched[3]["ce_id"] == batched[0] != single[0]
