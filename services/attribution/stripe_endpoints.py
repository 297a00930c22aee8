"""Use cases of a program's Stripe endpoints: create one, add a signing secret and retire an
old one (two at most at once, so Stripe's secret can be rolled without losing events), read
them back (secrets only as fingerprints) and list the events an endpoint received."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.repository import stripe as repo
from services.attribution.stripe_models import EndpointIn, EndpointOut, SecretOut
from services.attribution.stripe_webhooks import event_out
from shared.http.problems import Problem

MAX_SECRETS = 2


def fingerprint(secret: str) -> str:
    """What identifies a secret in answers and in the retire call. Secrets are long random
    strings, so a hash prefix gives nothing away."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _not_found() -> Problem:
    return Problem(404, "stripe-endpoint-not-found", "No such Stripe endpoint", field="endpoint_id")


def endpoint_out(row: Any) -> dict[str, Any]:
    return EndpointOut(
        id=row["id"],
        program_id=row["program_id"],
        url_path=f"/v1/stripe/{row['id']}/events",
        client_reference_id=row["client_reference_id"],
        metadata_key=row["metadata_key"],
        secrets=[SecretOut(**s) for s in row["shown"]],
        created_at=row["created_at"],
    ).model_dump(mode="json")


async def create(
    pool: asyncpg.Pool, program_id: UUID, body: EndpointIn, now: datetime
) -> dict[str, Any]:
    values = {
        "id": uuid.uuid4(),
        "program_id": program_id,
        "client_reference_id": body.client_reference_id,
        "metadata_key": body.metadata_key,
        "created_at": now,
    }
    async with pool.acquire() as conn, conn.transaction():
        await repo.insert_endpoint(conn, values)
        if body.secret is not None:
            secret = body.secret
            await repo.add_secret(conn, values["id"], fingerprint(secret), secret, now)
        row = await repo.endpoint(conn, values["id"])
    return endpoint_out(row)


async def get(pool: asyncpg.Pool, program_id: UUID, endpoint_id: UUID) -> dict[str, Any]:
    row = await repo.endpoint(pool, endpoint_id)
    if row is None or row["program_id"] != program_id:
        raise _not_found()
    return endpoint_out(row)


async def list_of(pool: asyncpg.Pool, program_id: UUID) -> list[dict[str, Any]]:
    return [endpoint_out(row) for row in await repo.endpoints_of(pool, program_id)]


async def add_secret(
    pool: asyncpg.Pool, program_id: UUID, endpoint_id: UUID, secret: str, now: datetime
) -> dict[str, Any]:
    """Add a secret (Stripe's new one while rolling it); both verify until the old one is
    retired. Adding one the endpoint holds already changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        if not await repo.lock_endpoint(conn, endpoint_id, program_id):
            raise _not_found()
        held = await repo.secret_count(conn, endpoint_id)
        added = await repo.add_secret(conn, endpoint_id, fingerprint(secret), secret, now)
        if added and held >= MAX_SECRETS:
            raise Problem(
                409,
                "too-many-stripe-secrets",
                f"An endpoint holds at most {MAX_SECRETS} secrets: retire the old one first",
                field="secret",
            )
        row = await repo.endpoint(conn, endpoint_id)
    return endpoint_out(row)


async def retire_secret(
    pool: asyncpg.Pool, program_id: UUID, endpoint_id: UUID, secret_fingerprint: str
) -> dict[str, Any]:
    """Stop accepting events signed with this secret."""
    async with pool.acquire() as conn, conn.transaction():
        if not await repo.lock_endpoint(conn, endpoint_id, program_id):
            raise _not_found()
        if not await repo.retire_secret(conn, endpoint_id, secret_fingerprint):
            raise Problem(
                404,
                "stripe-secret-not-found",
                "This endpoint holds no secret with this fingerprint",
                field="fingerprint",
            )
        row = await repo.endpoint(conn, endpoint_id)
    return endpoint_out(row)


async def events(
    pool: asyncpg.Pool,
    program_id: UUID,
    endpoint_id: UUID,
    statuses: list[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The endpoint's events, oldest first (``statuses``: only those)."""
    row = await repo.endpoint(pool, endpoint_id)
    if row is None or row["program_id"] != program_id:
        raise _not_found()
    return [event_out(r) for r in await repo.events_of(pool, endpoint_id, statuses, limit)]
