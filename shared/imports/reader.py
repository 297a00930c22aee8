"""The streamed row reader: bytes as they arrive → rows of the known columns, or the row's
error. Constant memory whatever the upload's size: only the record being read is kept.

CSV: RFC 4180 (a quoted field may hold commas, doubled quotes and line breaks), a header row
naming the columns (case, spaces and hyphens ignored: ``External User ID`` is
``external_user_id``), UTF-8 with or without a byte-order mark. JSON Lines: one object per
line; numbers are taken as text (CRMs export ids as numbers)."""

from __future__ import annotations

import codecs
import csv
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

from shared.http.problems import Problem
from shared.imports.models import Columns, Row, RowError

MAX_ROW_CHARS = 64 * 1024
Item = Row | RowError


def header_name(cell: str) -> str:
    return cell.strip().lower().replace(" ", "_").replace("-", "_")


def row_too_large(number: int, limit: int) -> Problem:
    return Problem(
        413,
        "row-too-large",
        f"Row {number} is longer than {limit} characters; the upload was stopped there",
        field="body",
        row=number,
    )


def _value_problem(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the decoder
            return "is not valid UTF-8"
    return None


class _Feed:
    """An iterator csv.reader can come back to after it ran dry (it is fed one whole record
    at a time, so it never stops inside one)."""

    def __init__(self) -> None:
        self.items: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.items:
            return self.items.popleft()
        raise StopIteration


class CsvRows:
    """Feed text in pieces of any size; get whole rows back. A record ends at a line break
    outside quotes: quotes are tracked only on lines that have one."""

    def __init__(self, columns: Columns, max_row_chars: int = MAX_ROW_CHARS) -> None:
        self.columns = columns
        self.max_row_chars = max_row_chars
        self.ignored_columns: list[str] = []
        self._positions: list[tuple[str, int]] | None = None  # header: (column, cell index)
        self._rest = ""  # text after the last line break
        self._record: list[str] = []  # lines of a record still inside quotes
        self._record_chars = 0
        self._in_quotes = False
        self._number = 0  # records started (the header is record 1)
        self._feed = _Feed()
        self._reader = csv.reader(self._feed)

    def feed(self, text: str) -> list[Item]:
        lines = (self._rest + text).split("\n")
        self._rest = lines.pop()
        if len(self._rest) > self.max_row_chars:
            raise row_too_large(self._number + 1, self.max_row_chars)
        records: list[str] = []
        for line in lines:
            if not self._record and '"' not in line:
                records.append(line)  # the common case: a whole record, nothing quoted
            else:
                self._line(line + "\n", records)
        return self._parse(records)

    def end(self) -> list[Item]:
        records: list[str] = []
        if self._rest:
            self._line(self._rest, records)
            self._rest = ""
        if self._record:  # an unterminated quoted field: csv takes it to the end of the data
            self._in_quotes = False
            records.append("".join(self._record))
        out = self._parse(records)
        if self._positions is None:
            raise Problem(422, "empty-upload", "The upload has no header row", field="body")
        return out

    def _line(self, line: str, records: list[str]) -> None:
        self._in_quotes = _quotes_open(line, self._in_quotes, starts_record=not self._record)
        self._record.append(line)
        self._record_chars += len(line)
        if self._in_quotes:
            if self._record_chars > self.max_row_chars:
                raise row_too_large(self._number + len(records) + 1, self.max_row_chars)
            return
        records.append("".join(self._record))
        self._record, self._record_chars = [], 0

    def _parse(self, records: list[str]) -> list[Item]:
        """Each record is whole, so csv reads exactly one row (``[]`` if blank) from each."""
        out: list[Item] = []
        self._feed.items.extend(records)
        for record in records:
            self._number += 1
            if len(record) > self.max_row_chars:
                raise row_too_large(self._number, self.max_row_chars)
            try:
                cells = next(self._reader)
            except csv.Error as exc:
                out.append(RowError(self._number, None, f"not readable as CSV: {exc}"))
                continue
            if self._positions is None:
                self._header(cells)
            elif cells and (len(cells) > 1 or cells[0].strip()):  # a blank line is no row
                out.append(self._row(record, cells))
        return out

    def _header(self, cells: list[str]) -> None:
        names = [header_name(c) for c in cells]
        if names and names[0].startswith("\ufeff"):
            names[0] = names[0][1:]
        for name in self.columns.required:
            if name not in names:
                raise Problem(
                    422,
                    "missing-column",
                    f"The header row has no {name!r} column (found: {', '.join(names)})",
                    field=name,
                )
        known = set(self.columns.names)
        for name in known:
            if names.count(name) > 1:
                raise Problem(
                    422, "duplicate-column", f"The header names {name!r} twice", field=name
                )
        self._positions = [(n, i) for i, n in enumerate(names) if n in known]
        self.ignored_columns = [n for n in names if n not in known]

    def _row(self, record: str, cells: list[str]) -> Item:
        assert self._positions is not None
        plain = record.isascii() and "\x00" not in record  # nothing to check in its values
        values: dict[str, str | None] = dict.fromkeys(self.columns.names)
        count = len(cells)
        for name, index in self._positions:
            if index < count and (value := cells[index].strip()):
                if not plain and (problem := _value_problem(value)):
                    return RowError(self._number, name, problem)
                values[name] = value
        return Row(self._number, values)


def _quotes_open(line: str, in_quotes: bool, *, starts_record: bool) -> bool:
    """Whether a quoted field is still open at the end of ``line``, as csv reads it: a quote
    opens a field only at its start; inside, a doubled quote is one quote character."""
    i = line.find('"')
    while i != -1:
        if in_quotes:
            if line.startswith('"', i + 1):
                i += 1  # an escaped quote
            else:
                in_quotes = False
        elif (i == 0 and starts_record) or (i > 0 and line[i - 1] == ","):
            in_quotes = True
        i = line.find('"', i + 1)
    return in_quotes


class JsonLines:
    """Feed text in pieces; get one row per non-blank line (its number is the line's)."""

    def __init__(self, columns: Columns, max_row_chars: int = MAX_ROW_CHARS) -> None:
        self.columns = columns
        self.max_row_chars = max_row_chars
        self.ignored_columns: list[str] = []
        self._ignored: set[str] = set()
        self._rest = ""
        self._number = 0
        self._seen_any = False

    def feed(self, text: str) -> list[Item]:
        lines = (self._rest + text).split("\n")
        self._rest = lines.pop()
        if len(self._rest) > self.max_row_chars:
            raise row_too_large(self._number + 1, self.max_row_chars)
        return [item for line in lines if (item := self._line(line)) is not None]

    def end(self) -> list[Item]:
        out = [item] if self._rest and (item := self._line(self._rest)) is not None else []
        self._rest = ""
        if not self._seen_any:
            raise Problem(422, "empty-upload", "The upload has no rows", field="body")
        return out

    def _line(self, line: str) -> Item | None:
        self._number += 1
        if len(line) > self.max_row_chars:
            raise row_too_large(self._number, self.max_row_chars)
        if not line.strip():
            return None
        self._seen_any = True
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            return RowError(self._number, None, f"not valid JSON: {exc}")
        if not isinstance(obj, dict):
            return RowError(self._number, None, "not a JSON object")
        for key in obj.keys() - self.columns.names - self._ignored:
            self._ignored.add(key)
            self.ignored_columns.append(key)
        values: dict[str, str | None] = {}
        for name in self.columns.names:
            value, problem = _json_value(obj.get(name))
            if problem:
                return RowError(self._number, name, problem)
            values[name] = value
        return Row(self._number, values)


def _json_value(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int | float):
        return str(value), None
    if not isinstance(value, str):
        return None, "must be a string or a number"
    value = value.strip()
    if problem := _value_problem(value):
        return None, problem
    return value or None, None


Parser = CsvRows | JsonLines


def parser_for(fmt: str, columns: Columns, max_row_chars: int = MAX_ROW_CHARS) -> Parser:
    return CsvRows(columns, max_row_chars) if fmt == "csv" else JsonLines(columns, max_row_chars)


async def read_rows(chunks: AsyncIterator[bytes], parser: Parser) -> AsyncIterator[list[Item]]:
    """The rows of an upload arriving as ``chunks``, a list per chunk that completed any.
    Undecodable bytes become an error of their row, not of the upload."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    started = False
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if not started and text:
            text, started = text.removeprefix("\ufeff"), True
        if items := parser.feed(text):
            yield items
    if items := parser.feed(decoder.decode(b"", final=True)) + parser.end():
        yield items
