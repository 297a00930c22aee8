"""The streamed row reader (no I/O): whatever the chunking, a CSV or JSON Lines upload reads
back the rows that were written, each with its number in the file, and every data row is
either a row or an error."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.problems import Problem
from shared.imports.models import Columns, Row, RowError
from shared.imports.reader import CsvRows, JsonLines, _quotes_open, parser_for, read_rows

COLUMNS = Columns(required=("external_user_id",), optional=("email", "name"))
# Cell text as CRMs write it: anything printable, commas, quotes and line breaks included.
cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from([",", '"', "\n", "\r", " "]),
    max_size=12,
)


def _read(data: bytes, fmt: str, cuts: list[int], columns: Columns = COLUMNS) -> list[object]:
    """Everything read from ``data`` arriving in pieces cut at ``cuts``."""

    async def chunks() -> AsyncIterator[bytes]:
        start = 0
        for cut in sorted({min(c, len(data)) for c in cuts}):
            yield data[start:cut]
            start = cut
        yield data[start:]

    async def collect() -> list[object]:
        parser = parser_for(fmt, columns)
        return [item async for items in read_rows(chunks(), parser) for item in items]

    return asyncio.run(collect())


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue().encode()


def _expected(cell: str) -> str | None:
    return cell.strip() or None


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(cells, cells, cells), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_csv_reads_back_what_was_written_whatever_the_chunks(
    rows: list[tuple[str, str, str]], cuts: list[int]
) -> None:
    data = _csv(["name", "External User ID", "email", "plan"], [[n, u, e, "x"] for u, e, n in rows])
    items = _read(data, "csv", cuts)
    read = [i for i in items if isinstance(i, Row)]
    assert not [i for i in items if isinstance(i, RowError)]
    assert [(r.values["external_user_id"], r.values["email"], r.values["name"]) for r in read] == [
        (_expected(u), _expected(e), _expected(n)) for u, e, n in rows
    ]
    numbers = [r.number for r in read]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 2  # the header is row 1


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.fixed_dictionaries({"external_user_id": cells, "email": cells}),
            st.integers(),  # not an object: an error of its row
            st.fixed_dictionaries({"external_user_id": st.lists(st.integers(), max_size=1)}),
        ),
        min_size=1,
        max_size=20,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_every_json_line_is_a_row_or_an_error_of_that_line(
    values: list[object], cuts: list[int]
) -> None:
    data = "".join(json.dumps(v) + "\n" for v in values).encode()
    items = _read(data, "jsonl", cuts)
    assert len(items) == len(values)  # rows + errors == lines
    for line, (value, item) in enumerate(zip(values, items, strict=True), start=1):
        assert (item.number if isinstance(item, Row) else item.row) == line  # type: ignore[union-attr]
        if isinstance(value, dict) and isinstance(value["external_user_id"], str):
            assert isinstance(item, Row)
            assert item.values["external_user_id"] == _expected(value["external_user_id"])
        else:
            assert isinstance(item, RowError)


def test_a_character_cut_between_chunks_is_read_whole() -> None:
    data = "external_user_id,name\r\nu-1,Zoë Ōtsuka\r\n".encode()
    for cut in range(len(data)):
        [row] = _read(data, "csv", [cut])
        assert isinstance(row, Row) and row.values["name"] == "Zoë Ōtsuka"


def test_a_byte_order_mark_and_header_spelling_are_ignored() -> None:
    [row] = _read(b"\xef\xbb\xbfExternal-User ID ,E-Mail\nu-1,\n", "csv", [])
    assert row == Row(2, {"external_user_id": "u-1", "email": None, "name": None})


def test_bad_bytes_and_nul_characters_are_errors_of_their_row() -> None:
    items = _read(b"external_user_id,name\nu-1,ok\nu-2,bad\xff\nu-3,nul\x00\nu-4,ok\n", "csv", [])
    assert items[0] == Row(2, {"external_user_id": "u-1", "email": None, "name": "ok"})
    assert items[1] == RowError(3, "name", "is not valid UTF-8")
    assert items[2] == RowError(4, "name", "contains a NUL character")
    assert isinstance(items[3], Row) and items[3].number == 5


def test_row_numbers_count_records_not_lines_and_skip_blank_lines() -> None:
    items = _read(b'external_user_id,name\n\nu-1,"two\nlines"\nu-2,x', "csv", [])
    assert [(i.number, i.values["name"]) for i in items] == [(3, "two\nlines"), (4, "x")]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "fmt", "status", "field"),
    [
        (b"email\na@example.com\n", "csv", 422, "external_user_id"),
        (b"external_user_id,External User ID\nu\n", "csv", 422, "external_user_id"),
        (b"", "csv", 422, "body"),
        (b"\n \n", "jsonl", 422, "body"),
        (b"external_user_id\n" + b"u" * 70_000, "csv", 413, "body"),
        (b'external_user_id\n"' + b"u\n" * 40_000, "csv", 413, "body"),
        (b'{"external_user_id": "' + b"u" * 70_000 + b'"}\n', "jsonl", 413, "body"),
    ],
)
def test_uploads_that_cannot_be_read_are_refused(
    data: bytes, fmt: str, status: int, field: str
) -> None:
    with pytest.raises(Problem) as refused:
        _read(data, fmt, [7, 20_000])
    assert (refused.value.status, refused.value.field) == (status, field)


def test_a_line_nested_too_deeply_is_an_error_of_its_row() -> None:
    items = _read(b"[" * 50_000 + b"\n" + b'{"external_user_id": "u"}\n', "jsonl", [])
    assert isinstance(items[0], RowError) and items[0].row == 1
    assert isinstance(items[1], Row) and items[1].number == 2


def test_unknown_columns_are_listed_as_ignored() -> None:
    parser = CsvRows(COLUMNS)
    parser.feed("Plan,external_user_id,Notes\ngold,u-1,x\n")
    assert parser.ignored_columns == ["plan", "notes"]
    lines = JsonLines(COLUMNS)
    lines.feed('{"external_user_id": 7, "crm": 1}\n{"crm": 2, "tier": 3}\n')
    assert lines.ignored_columns == ["crm", "tier"]


@pytest.mark.parametrize(
    ("line", "in_quotes", "starts", "still_open"),
    [
        ('a,"b\n', False, True, True),
        ('a,"b""c"\n', False, True, False),
        ('O"Brien,x\n', False, True, False),  # a quote inside an unquoted field is literal
        ('"x\n', False, True, True),
        ('"x\n', True, False, False),  # on a continuation line it closes the field
        ('end"" still,\n', True, False, True),
    ],
)
def test_quotes_are_followed_as_csv_reads_them(
    line: str, in_quotes: bool, starts: bool, still_open: bool
) -> None:
    assert _quotes_open(line, in_quotes, starts_record=starts) is still_open
