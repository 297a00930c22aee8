"""Bulk import of the company's existing customers: each row's customer id is kept as a keyed
hash (``pii.py``), so that a later signup of that customer is an existing customer
(``reason: existing_customer``, never referred) as if it had been sent with
``existing_customer: true``. Idempotent: a customer already imported is counted ``existing``."""

from __future__ import annotations

import asyncpg

from services.attribution.pii import Hasher
from services.attribution.repository import customers
from shared.imports.models import Columns, InvalidRow, Row
from shared.imports.runner import Apply, BatchResult
from shared.imports.upload import ImportKind

MAX_CUSTOMER_ID = 200  # as a signup's customer_id

COLUMNS = Columns(required=("customer_id",))


def check_row(values: dict[str, str | None]) -> dict[str, str | None]:
    customer_id = values["customer_id"]
    if customer_id is None:
        raise InvalidRow([("customer_id", "Field required")])
    if len(customer_id) > MAX_CUSTOMER_ID:
        raise InvalidRow([("customer_id", f"longer than {MAX_CUSTOMER_ID} characters")])
    return values


CUSTOMERS = ImportKind("customers", COLUMNS, check_row)


def customer_import(hasher: Hasher) -> Apply:
    """The runner's apply function for customers imports."""

    async def apply(conn: asyncpg.Connection, job: asyncpg.Record, rows: list[Row]) -> BatchResult:
        hashes = {hasher.customer(r.values["customer_id"] or "") for r in rows}
        created = await customers.insert_customers(
            conn, job["program_id"], job["id"], sorted(hashes)
        )
        return BatchResult(created=created, existing=len(rows) - created)

    return apply
