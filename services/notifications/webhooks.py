"""Webhook messages per Standard Webhooks: a JSON body ``{type, timestamp, data}``, a
``webhook-id`` stable across retries (receivers dedupe on it), signed with the endpoint's
current secret and, during a rotation, the previous one too."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx

from shared.http.outbound import TargetRefused, check_target, sign


def webhook_id(delivery_id: UUID) -> str:
    return f"msg_{delivery_id.hex}"


def body_for(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def signed_headers(
    secrets: list[str], message_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """Headers with one signature per secret, space-separated (the spec's rotation form)."""
    requests = [sign(secret, message_id, timestamp, body) for secret in secrets]
    headers = dict(requests[0].headers)
    headers["webhook-signature"] = " ".join(r.headers["webhook-signature"] for r in requests)
    return headers


class WebhookError(Exception):
    pass


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    secrets: list[str],
    message_id: str,
    body: str,
    allow_private: bool,
) -> int:
    """Send once. Returns the status code of a 2xx answer, raises WebhookError otherwise."""
    try:
        await check_target(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise WebhookError(f"refused target: {exc}") from exc
    headers = signed_headers(secrets, message_id, datetime.now(UTC), body)
    try:
        response = await client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"HTTP {response.status_code}")
    return response.status_code
