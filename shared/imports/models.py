"""What an import is told about and tells: the columns it reads, a row's errors, the job's
progress as the API answers it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

ImportStatus = Literal["receiving", "queued", "running", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class RowError:
    """One thing wrong with one row. ``row`` is the row's number in the file as a spreadsheet
    or an editor shows it (a CSV header is row 1; in JSON Lines, the line); ``field`` is the
    column, or None when the row as a whole could not be read."""

    row: int
    field: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Row:
    """A data row as read: its number and the value of every known column (None: empty or
    absent), surrounding white space removed."""

    number: int
    values: dict[str, str | None]


@dataclass(frozen=True)
class Columns:
    """The columns (CSV) or fields (JSON Lines) an import reads; any other is ignored."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.required + self.optional


class InvalidRow(Exception):
    """Raised by an import's validator: ``(field, message)`` for each problem of the row."""

    def __init__(self, problems: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


class ImportOut(BaseModel):
    id: UUID
    program_id: UUID
    kind: str = Field(description="`participants` or `customers`")
    format: Literal["csv", "jsonl"]
    status: ImportStatus = Field(
        description="receiving (the upload is being read), queued, running, completed or "
        "failed (see `failure`)"
    )
    rows_received: int = Field(description="Data rows read from the upload so far")
    rows_total: int | None = Field(
        description="Data rows in the upload: known once it is fully received, null before"
    )
    rows_done: int = Field(description="rows_created + rows_existing + rows_failed")
    rows_created: int = Field(description="Rows that enrolled or recorded someone new")
    rows_existing: int = Field(description="Rows naming someone already there (nothing done)")
    rows_failed: int = Field(description="Rows refused: see GET /v1/imports/{id}/errors")
    ignored_columns: list[str] = Field(description="Columns of the upload this import ignores")
    failure: str | None = Field(default=None, description="Why a failed import stopped")
    created_at: datetime
    received_at: datetime | None = None
    finished_at: datetime | None = None


class RowErrorOut(BaseModel):
    row: int = Field(description="The row's number in the file (a CSV header is row 1)")
    field: str | None = Field(description="The column, or null when the row was unreadable")
    message: str


class RowErrorPage(BaseModel):
    items: list[RowErrorOut]
    next_after: str | None = Field(
        description="Pass as `after` for the next page; null on the last one"
    )
