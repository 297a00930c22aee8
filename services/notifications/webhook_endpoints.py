"""Webhook endpoints a program registers: create (the secret is shown once), read (with the
disabled state), change, enable again (held messages go out), rotate the secret, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.notifications.repository import Conn, deliveries, endpoints
from shared.http.outbound import new_webhook_secret


async def create(
    conn: Conn, program_id: UUID, url: str, event_types: list[str]
) -> tuple[dict[str, Any], str]:
    """The endpoint and its secret (shown to the caller once)."""
    secret = new_webhook_secret()
    return await endpoints.create(conn, program_id, url, event_types, secret), secret


async def list_endpoints(conn: Conn, program_id: UUID) -> list[dict[str, Any]]:
    return await endpoints.list_all(conn, program_id)


async def get(conn: Conn, program_id: UUID, endpoint_id: UUID) -> dict[str, Any] | None:
    return await endpoints.get(conn, program_id, endpoint_id)


async def update(
    pool: asyncpg.Pool,
    endpoint_id: UUID,
    *,
    url: str | None,
    event_types: list[str] | None,
    enabled: bool | None,
) -> None:
    """Changes what is given (None: left as is), in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        if url is not None:
            await endpoints.set_url(conn, endpoint_id, url)
        if event_types is not None:
            await endpoints.set_event_types(conn, endpoint_id, event_types)
        if enabled is True:
            # Held messages go out again from now on, each with a fresh retry schedule.
            await endpoints.enable(conn, endpoint_id)
            await deliveries.restart_for_endpoint(conn, endpoint_id)
        elif enabled is False:
            await endpoints.disable_on_request(conn, endpoint_id)


async def rotate_secret(conn: Conn, endpoint_id: UUID, grace_s: float) -> tuple[str, datetime]:
    """A new secret; the previous one keeps signing too (a second signature in the header)
    for ``grace_s``, so receivers can switch without missing a message. Returns the secret
    and when the previous one stops signing."""
    secret = new_webhook_secret()
    until = datetime.now(UTC) + timedelta(seconds=grace_s)
    await endpoints.rotate_secret(conn, endpoint_id, secret, until)
    return secret, until


async def delete(pool: asyncpg.Pool, endpoint_id: UUID) -> None:
    """The endpoint, and its pending messages skipped."""
    async with pool.acquire() as conn, conn.transaction():
        await deliveries.skip_for_endpoint(conn, endpoint_id, "endpoint deleted")
        await endpoints.delete(conn, endpoint_id)
