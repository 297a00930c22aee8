"""Import routes (the program's secret key): bulk import of existing customer ids from a CSV
or JSON Lines upload, its progress and its error report."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request

from services.attribution.customer_imports import CUSTOMERS
from shared.http.auth import require_program_key
from shared.http.idempotency import MAX_KEY_LENGTH
from shared.http.openapi import problem_responses
from shared.imports import api as imports
from shared.imports.models import ImportOut
from shared.imports.upload import format_of, receive, replay
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["imports"])


# Not under /imports/ as in links: one SDK calls every service, so no path may be served twice
# (and /imports/{import_id} would claim /imports/customers for GET too).
PROGRESS = "/v1/customers/imports"


@router.post(
    "/customers/imports",
    status_code=202,
    response_model=ImportOut,
    responses={**imports.ACCEPTED, **problem_responses(400, 409, 413, 415, 422)},
    openapi_extra=imports.UPLOAD_BODY,
)
async def import_customers(
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    """Import the program's existing customers (CSV with a `customer_id` column, or JSON Lines
    with a `customer_id` field; other columns ignored), so that none of them is ever counted
    as referred: a later signup of one is recorded with `reason: existing_customer` (when the
    program excludes existing customers, the default). Only a keyed hash of each id is kept.
    Streamed and spooled; applied in the background (202, `Location: /v1/customers/imports/{id}`); a
    customer imported before is counted `existing`."""
    fmt = format_of(request.headers.get("content-type"))
    pool = runtime_of(request).pool
    if (job := await replay(pool, program_id, CUSTOMERS.name, idempotency_key)) is not None:
        return imports.accepted(job, replayed=True, base=PROGRESS)
    job = await receive(pool, CUSTOMERS, program_id, fmt, request.stream(), idempotency_key)
    request.app.state.import_runner.wake()
    return imports.accepted(job, replayed=False, base=PROGRESS)


router.include_router(imports.progress_routes(require_program_key, base="/customers/imports"))
