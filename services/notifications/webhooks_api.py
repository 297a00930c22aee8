"""Webhook endpoints a program registers: create (the secret is shown once), list (with the
disabled state), enable again, rotate the secret, delete."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import TOPICS
from shared.http.auth import require_program_access
from shared.http.idempotency import run_idempotent
from shared.http.outbound import check_target, new_webhook_secret
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["webhooks"])
_COLUMNS = (
    "id, program_id, url, event_types, consecutive_failures, disabled_at, disabled_reason, "
    "created_at, previous_expires_at"
)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    # Empty: every event type.
    event_types: list[str] = Field(default=[], max_length=50)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = None


class EndpointOut(BaseModel):
    id: UUID
    program_id: UUID
    url: str
    event_types: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    previous_secret_valid_until: datetime | None = None


class EndpointCreated(EndpointOut):
    secret: str


class SecretRotated(BaseModel):
    id: UUID
    secret: str
    previous_secret_valid_until: datetime


def _out(row: asyncpg.Record) -> dict[str, Any]:
    data = {k: row[k] for k in row.keys() if k != "previous_expires_at"}
    expires = row["previous_expires_at"]
    data["previous_secret_valid_until"] = (
        expires if expires and expires > datetime.now(UTC) else None
    )
    data["enabled"] = row["disabled_at"] is None
    return EndpointOut(**data).model_dump(mode="json")


async def _check(request: Request, url: str | None, event_types: list[str] | None) -> None:
    if url is not None:
        if any(ord(c) < 0x21 or c == "\x7f" for c in url):
            raise Problem(422, "webhook-url-refused", "the URL has spaces or controls", field="url")
        try:
            await check_target(
                url, allow_private=runtime_of(request).settings.outbound_allow_private_networks
            )
        except ValueError as exc:  # TargetRefused, or a URL urlsplit cannot read
            raise Problem(422, "webhook-url-refused", str(exc), field="url") from exc
    for i, name in enumerate(event_types or []):
        if name not in TOPICS:
            raise Problem(
                422, "unknown-event-type", f"No event type {name!r}", field=f"event_types.{i}"
            )


@router.post(
    "/programs/{program_id}/webhooks",
    status_code=201,
    response_model=EndpointCreated,
    dependencies=[Depends(require_program_access)],
)
async def create_endpoint(
    program_id: UUID,
    body: EndpointIn,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    await _check(request, body.url, body.event_types)

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        secret = new_webhook_secret()
        row = await conn.fetchrow(
            "INSERT INTO webhook_endpoints (id, program_id, url, event_types, secret) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            uuid.uuid4(),
            program_id,
            body.url,
            body.event_types,
            secret,
        )
        return 201, {**_out(row), "secret": secret}

    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"webhooks:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.get(
    "/programs/{program_id}/webhooks",
    response_model=list[EndpointOut],
    dependencies=[Depends(require_program_access)],
)
async def list_endpoints(program_id: UUID, request: Request) -> Any:
    rows = await runtime_of(request).pool.fetch(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE program_id = $1 ORDER BY created_at",
        program_id,
    )
    return [_out(r) for r in rows]


async def _get(request: Request, program_id: UUID, endpoint_id: UUID) -> asyncpg.Record:
    row = await runtime_of(request).pool.fetchrow(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND program_id = $2",
        endpoint_id,
        program_id,
    )
    if row is None:
        raise Problem(
            404, "webhook-not-found", f"No webhook endpoint {endpoint_id}", field="endpoint_id"
        )
    return row


@router.get(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    dependencies=[Depends(require_program_access)],
)
async def get_endpoint(program_id: UUID, endpoint_id: UUID, request: Request) -> Any:
    return _out(await _get(request, program_id, endpoint_id))


@router.patch(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    dependencies=[Depends(require_program_access)],
)
async def update_endpoint(
    program_id: UUID, endpoint_id: UUID, body: EndpointPatch, request: Request
) -> Any:
    await _get(request, program_id, endpoint_id)
    await _check(request, body.url, body.event_types)
    pool = runtime_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        if body.url is not None:
            await conn.execute(
                "UPDATE webhook_endpoints SET url = $2 WHERE id = $1", endpoint_id, body.url
            )
        if body.event_types is not None:
            await conn.execute(
                "UPDATE webhook_endpoints SET event_types = $2 WHERE id = $1",
                endpoint_id,
                body.event_types,
            )
        if body.enabled is True:
            # Held messages go out again from now on, each with a fresh retry schedule.
            await conn.execute(
                "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, "
                "consecutive_failures = 0 WHERE id = $1",
                endpoint_id,
            )
            await conn.execute(
                "UPDATE deliveries SET attempts = 0, next_attempt_at = now() "
                "WHERE endpoint_id = $1 AND status = 'pending'",
                endpoint_id,
            )
        elif body.enabled is False:
            await conn.execute(
                "UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now()), "
                "disabled_reason = coalesce(disabled_reason, 'disabled on request') WHERE id = $1",
                endpoint_id,
            )
    return _out(await _get(request, program_id, endpoint_id))


@router.post(
    "/programs/{program_id}/webhooks/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    dependencies=[Depends(require_program_access)],
)
async def rotate_secret(program_id: UUID, endpoint_id: UUID, request: Request) -> Any:
    """A new secret; the previous one keeps signing too (a second signature in the header)
    for the grace period, so receivers can switch without missing a message."""
    rt = runtime_of(request)
    await _get(request, program_id, endpoint_id)
    secret = new_webhook_secret()
    until = datetime.now(UTC) + timedelta(
        seconds=rt.settings.notify_webhook_rotation_grace_s  # type: ignore[attr-defined]
    )
    await rt.pool.execute(
        "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, "
        "secret = $2 WHERE id = $1",
        endpoint_id,
        secret,
        until,
    )
    return SecretRotated(id=endpoint_id, secret=secret, previous_secret_valid_until=until)


@router.delete(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    status_code=204,
    dependencies=[Depends(require_program_access)],
)
async def delete_endpoint(program_id: UUID, endpoint_id: UUID, request: Request) -> Response:
    await _get(request, program_id, endpoint_id)
    pool = runtime_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE deliveries SET status = 'skipped', reason = 'endpoint deleted' "
            "WHERE endpoint_id = $1 AND status = 'pending'",
            endpoint_id,
        )
        await conn.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id)
    return Response(status_code=204)
