"""``Idempotency-Key`` for creating calls: the same key and body replays the first answer;
the same key with another body is refused. The key is stored in the same transaction as the
effect, so a failed request leaves no key behind and a concurrent duplicate waits on the
primary key and then replays."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi.responses import JSONResponse

from shared.http.problems import Problem

MAX_KEY_LENGTH = 255
Effect = Callable[[asyncpg.Connection], Awaitable[tuple[int, dict[str, Any]]]]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def run_idempotent(
    pool: asyncpg.Pool,
    *,
    scope: str,
    key: str | None,
    body: Any,
    effect: Effect,
) -> JSONResponse:
    """Run ``effect`` in a transaction; with a key, at most once per (scope, key)."""
    async with pool.acquire() as conn, conn.transaction():
        if key is None:
            status, response = await effect(conn)
            return JSONResponse(response, status_code=status)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Problem(
                400,
                "invalid-idempotency-key",
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters",
                field="Idempotency-Key",
            )
        fingerprint = request_fingerprint(body)
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true",
            scope,
            key,
            fingerprint,
        )
        if not claimed:
            row = await conn.fetchrow(
                "SELECT request_hash, status_code, response FROM idempotency_keys "
                "WHERE scope = $1 AND key = $2",
                scope,
                key,
            )
            if row["request_hash"] != fingerprint:
                raise Problem(
                    422,
                    "idempotency-key-reused",
                    "This Idempotency-Key was used with a different request body",
                    field="Idempotency-Key",
                )
            return JSONResponse(
                row["response"],
                status_code=row["status_code"],
                headers={"Idempotent-Replayed": "true"},
            )
        status, response = await effect(conn)
        await conn.execute(
            "UPDATE idempotency_keys SET status_code = $3, response = $4 "
            "WHERE scope = $1 AND key = $2",
            scope,
            key,
            status,
            response,
        )
        return JSONResponse(response, status_code=status)
