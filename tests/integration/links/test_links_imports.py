"""Bulk enrolment through the real links app (Postgres, broker, outbox, the import runner):
CSV and JSON Lines uploads, idempotency, the error report, the refusals, and 100,000 rows
streamed as the request body."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.integration.links.conftest import Links

CSV = "text/csv"


async def _upload(
    links: Links, program_id: str, body: Any, content_type: str = CSV, **headers: str
) -> httpx.Response:
    return await links.http.post(
        f"/v1/programs/{program_id}/imports/participants",
        headers={**links.admin, "Content-Type": content_type, **headers},
        content=body,
    )


async def _finished(links: Links, location: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = (await links.http.get(location, headers=links.admin)).json()
        if job["status"] in ("completed", "failed"):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


async def _errors(links: Links, location: str) -> list[tuple[int, str | None]]:
    page = (await links.http.get(f"{location}/errors", headers=links.admin)).json()
    return [(e["row"], e["field"]) for e in page["items"]]


async def _enrolled(links: Links, program_id: str) -> int:
    pool = links.app.state.runtime.pool
    return int(
        await pool.fetchval("SELECT count(*) FROM participants WHERE program_id = $1", program_id)
    )


async def test_a_csv_export_enrols_its_rows_and_reports_the_bad_ones(links: Links) -> None:
    program = await links.program()
    body = (
        "\ufeffExternal User ID,Email,Name,Locale,Code,Plan\r\n"  # a BOM, as Excel writes
        "u-1,a@example.com,Ann,en,,gold\r\n"
        'u-2,,"Bo, ""the"" builder\nsecond line",lv,BOBS-LINK,silver\r\n'
        "u-3,not-an-email,,,,\r\n"
        "\r\n"
        ",b@example.com,,,,\r\n"
        "u-4,,,en,admin,\r\n"
        "u-5,,,xx_YY,,\r\n"
        "u-1,,,,,\r\n"  # named again: the first row enrolled u-1
        "u-6,,Zoë,,,"  # no line break at the end
    ).encode()
    response = await _upload(links, program["id"], body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/imports/{job['id']}"
    assert job["rows_total"] == 8 and job["ignored_columns"] == ["plan"]
    job = await _finished(links, response.headers["location"])
    assert job["status"] == "completed"
    assert (job["rows_created"], job["rows_existing"], job["rows_failed"]) == (3, 1, 4)
    assert job["rows_done"] == job["rows_total"] == 8
    assert await _errors(links, response.headers["location"]) == [
        (4, "email"),
        (6, "external_user_id"),
        (7, "code"),
        (8, "locale"),
    ]
    pool = links.app.state.runtime.pool
    bob = await pool.fetchrow("SELECT * FROM participants WHERE external_user_id = 'u-2'")
    assert (bob["name"], bob["code"], bob["locale"]) == ('Bo, "the" builder\nsecond line',
                                                         "BOBS-LINK", "lv")  # fmt: skip
    assert await pool.fetchval("SELECT name FROM participants WHERE external_user_id = 'u-6'") == (
        "Zoë"
    )
    enrolled = await pool.fetch(
        "SELECT payload FROM outbox WHERE topic = 'participant.enrolled' ORDER BY id"
    )
    users = sorted(json.loads(bytes(r["payload"]))["external_user_id"] for r in enrolled)
    assert users == ["u-1", "u-2", "u-6"]
    csv_report = await links.http.get(
        f"{response.headers['location']}/errors?format=csv", headers=links.admin
    )
    assert csv_report.headers["content-type"].startswith("text/csv")
    assert csv_report.text.splitlines()[0] == "row,field,message"
    assert len(csv_report.text.splitlines()) == 5
