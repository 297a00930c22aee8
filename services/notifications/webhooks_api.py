"""Routes of the webhook endpoints a program registers: create (the secret is shown once), list
(with the disabled state), change or enable again, rotate the secret, delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request, Response

from services.notifications import webhook_endpoints
from services.notifications.models import (
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    SecretRotated,
)
from shared.http.auth import require_program_access
from shared.http.idempotency import MAX_KEY_LENGTH, run_idempotent
from shared.http.openapi import problem_responses
from shared.http.outbound import check_target
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["webhooks"])


def _out(row: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in row.items() if k != "previous_expires_at"}
    expires = row["previous_expires_at"]
    data["previous_secret_valid_until"] = (
        expires if expires and expires > datetime.now(UTC) else None
    )
    data["enabled"] = row["disabled_at"] is None
    return EndpointOut(**data).model_dump(mode="json")


async def _check(request: Request, url: str | None) -> None:
    """Where a URL may point (its form is the schema's): refused before it is stored."""
    if url is not None:
        try:
            await check_target(
                url, allow_private=runtime_of(request).settings.outbound_allow_private_networks
            )
        except ValueError as exc:  # TargetRefused, or a URL urlsplit cannot read
            raise Problem(422, "webhook-url-refused", str(exc), field="url") from exc


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
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", min_length=1, max_length=MAX_KEY_LENGTH
    ),
) -> Any:
    await _check(request, body.url)

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        row, secret = await webhook_endpoints.create(conn, program_id, body.url, body.event_types)
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
    rows = await webhook_endpoints.list_endpoints(runtime_of(request).pool, program_id)
    return [_out(r) for r in rows]


async def _get(request: Request, program_id: UUID, endpoint_id: UUID) -> dict[str, Any]:
    row = await webhook_endpoints.get(runtime_of(request).pool, program_id, endpoint_id)
    if row is None:
        raise Problem(
            404, "webhook-not-found", f"No webhook endpoint {endpoint_id}", field="endpoint_id"
        )
    return row


@router.get(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def get_endpoint(program_id: UUID, endpoint_id: UUID, request: Request) -> Any:
    return _out(await _get(request, program_id, endpoint_id))


@router.patch(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def update_endpoint(
    program_id: UUID, endpoint_id: UUID, body: EndpointPatch, request: Request
) -> Any:
    await _get(request, program_id, endpoint_id)
    await _check(request, body.url)
    await webhook_endpoints.update(
        runtime_of(request).pool,
        endpoint_id,
        url=body.url,
        event_types=body.event_types,
        enabled=body.enabled,
    )
    return _out(await _get(request, program_id, endpoint_id))


@router.post(
    "/programs/{program_id}/webhooks/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def rotate_secret(program_id: UUID, endpoint_id: UUID, request: Request) -> Any:
    """A new secret; the previous one keeps signing too (a second signature in the header)
    for the grace period, so receivers can switch without missing a message."""
    rt = runtime_of(request)
    await _get(request, program_id, endpoint_id)
    secret, until = await webhook_endpoints.rotate_secret(
        rt.pool,
        endpoint_id,
        rt.settings.notify_webhook_rotation_grace_s,  # type: ignore[attr-defined]
    )
    return SecretRotated(id=endpoint_id, secret=secret, previous_secret_valid_until=until)


@router.delete(
    "/programs/{program_id}/webhooks/{endpoint_id}",
    status_code=204,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def delete_endpoint(program_id: UUID, endpoint_id: UUID, request: Request) -> Response:
    await _get(request, program_id, endpoint_id)
    await webhook_endpoints.delete(runtime_of(request).pool, endpoint_id)
    return Response(status_code=204)
