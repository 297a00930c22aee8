"""Bulk import of existing customer ids through the real attribution app: the upload, its
progress and error report, idempotency, and a later signup of an imported customer, which is
not referred."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from shared.http.auth import new_program_key
from tests.factories import api_key_issued
from tests.integration.attribution.conftest import Tracking, apply


async def _upload(
    tracking: Tracking, body: bytes, content_type: str = "text/csv", **headers: str
) -> httpx.Response:
    return await tracking.client.post(
        "/v1/customers/imports",
        content=body,
        headers={**tracking.auth, "Content-Type": content_type, **headers},
    )


async def _finished(tracking: Tracking, location: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = (await tracking.client.get(location, headers=tracking.auth)).json()
        if job["status"] in ("completed", "failed"):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


async def test_imported_customers_are_never_referred(tracking: Tracking) -> None:
    body = (
        "Customer ID,Email,Plan\n"
        "cus_001,a@example.com,gold\n"
        "cus_002,,\n"
        ",nobody@example.com,\n"
        f"{'x' * 201},,\n"
        "cus_001,,\n"
    ).encode()
    response = await _upload(tracking, body, **{"Idempotency-Key": "crm-1"})
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    job = await _finished(tracking, location)
    assert job["status"] == "completed" and job["ignored_columns"] == ["email", "plan"]
    assert (job["rows_total"], job["rows_created"], job["rows_existing"], job["rows_failed"]) == (
        5, 2, 1, 2)  # fmt: skip
    errors = (await tracking.client.get(f"{location}/errors", headers=tracking.auth)).json()
    assert [(e["row"], e["field"]) for e in errors["items"]] == [
        (4, "customer_id"),
        (5, "customer_id"),
    ]
    # Only keyed hashes are stored.
    stored = await tracking.pool.fetch("SELECT customer_hash FROM imported_customers")
    assert len(stored) == 2 and not any("cus_" in r["customer_hash"] for r in stored)

    referrer, _ = await tracking.enroll()
    click = await tracking.click(referrer)
    imported = await tracking.post("signups", {"customer_id": "cus_002", "click_id": str(click)})
    assert imported.status_code == 201
    assert (imported.json()["attributed"], imported.json()["reason"]) == (
        False, "existing_customer")  # fmt: skip
    new = await tracking.post("signups", {"customer_id": "cus_003", "click_id": str(click)})
    assert new.json()["attributed"] is True

    # The same key again: the same job, nothing read; the same rows again: nothing new.
    retried = await _upload(tracking, b"garbage", **{"Idempotency-Key": "crm-1"})
    assert retried.headers["location"] == location
    assert retried.headers["idempotent-replayed"] == "true"
    again = await _upload(tracking, b'{"customer_id": "cus_001"}\n{"customer_id": 4}\n',
                          "application/x-ndjson")  # fmt: skip
    job = await _finished(tracking, again.headers["location"])
    assert (job["rows_created"], job["rows_existing"]) == (1, 1)
    assert await tracking.count("SELECT count(*) FROM imported_customers") == 3


async def test_an_import_is_the_programs_own(tracking: Tracking) -> None:
    response = await _upload(tracking, b"customer_id\nc-1\n")
    location = response.headers["location"]
    other = new_program_key()
    await apply(tracking.pool, api_key_issued(uuid.uuid4(), key_id=other.key_id,
                                              key_hash=other.key_hash))  # fmt: skip
    foreign = await tracking.client.get(
        location, headers={"Authorization": f"Bearer {other.secret}"}
    )
    assert foreign.status_code == 404 and foreign.json()["field"] == "import_id"
    wrong_type = await _upload(tracking, b"customer_id\nc-1\n", "application/json")
    assert wrong_type.status_code == 415 and wrong_type.json()["field"] == "Content-Type"
    no_column = await _upload(tracking, b"id\nc-1\n")
    assert no_column.status_code == 422 and no_column.json()["field"] == "customer_id"
