"""API keys. The admin key comes from the environment; per-program secret keys are created
through the links API, shown once, and stored (everywhere) only as SHA-256 hashes. Keys are
long random strings, so a fast hash is enough: there is nothing to brute-force."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from fastapi import Request

from shared.http.key_directory import KeyCheckUnavailable, KeyDirectory, KeyStatus
from shared.http.problems import Problem

PROGRAM_KEY_PREFIX = "rk_"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str
    key_hash: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_program_key() -> IssuedKey:
    key_id = secrets.token_hex(6)
    secret = f"{PROGRAM_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key_id=key_id, secret=secret, key_hash=hash_key(secret))


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "missing-credentials",
            "Send 'Authorization: Bearer <key>'",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def check_admin(request: Request, admin_key: str | None) -> None:
    token = bearer_token(request)
    if not admin_key or not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise Problem(403, "forbidden", "This call needs the admin key", field="Authorization")


# Keys checked a moment ago, remembered so a tracking call does not spend a round trip on its
# key: key hash -> (program id, monotonic expiry). Only valid keys are kept. A revocation
# handled by this process clears the cache; otherwise a revoked key is refused here within
# KEY_CACHE_TTL_S of the moment this process learns it (event, or links' answer).
KEY_CACHE_TTL_S = 2.0
_KEY_CACHE_SIZE = 10_000
_known_keys: dict[str, tuple[UUID, float]] = {}


def forget_cached_keys() -> None:
    _known_keys.clear()


def _refused() -> Problem:
    return Problem(403, "forbidden", "Unknown or revoked program key", field="Authorization")


async def key_status(conn: asyncpg.Connection | asyncpg.Pool, key_hash: str) -> KeyStatus | None:
    """This database's copy of a key (None: never heard of it)."""
    row = await conn.fetchrow(
        "SELECT program_id, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1",
        key_hash,
    )
    return None if row is None else KeyStatus(row["program_id"], row["revoked"])


async def _ask_links(directory: KeyDirectory, key_hash: str, local: KeyStatus | None) -> UUID:
    """Links' word on a key this service does not know, or has not had confirmed lately."""
    try:
        status = await directory.status(key_hash, known_here=local is not None)
    except KeyCheckUnavailable as exc:
        if local is not None:
            # Known from the issue event: the local copy stands while links cannot answer
            # (a revocation still arrives as an event).
            return local.program_id
        raise Problem(
            503,
            "key-check-unavailable",
            "This key has not reached this service yet and the links service, which issues "
            f"keys, could not confirm it ({exc}). Retry in a few seconds.",
            field="Authorization",
            headers={"Retry-After": str(round(directory.retry_after_s))},
        ) from exc
    if status is None or status.revoked:
        raise _refused()
    return status.program_id


async def program_for_key(
    conn: asyncpg.Connection | asyncpg.Pool, token: str, directory: KeyDirectory | None = None
) -> UUID:
    """The program a secret key belongs to, or a 403. With a ``directory`` (every service but
    links), links confirms the key: at once for a key whose event has not arrived yet, and
    again every ``key_check_ttl_s`` for the others."""
    key_hash = hash_key(token)
    now = time.monotonic()
    cached = _known_keys.get(key_hash)
    if cached is not None and cached[1] > now:
        return cached[0]
    local = await key_status(conn, key_hash)
    if local is not None and local.revoked:
        _known_keys.pop(key_hash, None)
        raise _refused()
    try:
        if directory is not None:
            program_id = await _ask_links(directory, key_hash, local)
        elif local is not None:
            program_id = local.program_id
        else:
            raise _refused()
    except Problem:
        _known_keys.pop(key_hash, None)
        raise
    if len(_known_keys) >= _KEY_CACHE_SIZE:
        _known_keys.clear()
    _known_keys[key_hash] = (program_id, now + KEY_CACHE_TTL_S)
    return program_id


async def revoke_key(conn: asyncpg.Connection, key_id: str, program_id: UUID) -> bool:
    """Revoke a key of this program; False if there is no such active key."""
    forget_cached_keys()
    revoked = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND program_id = $2 "
        "AND revoked_at IS NULL RETURNING true",
        key_id,
        program_id,
    )
    return bool(revoked)


async def store_key(conn: asyncpg.Connection, key_id: str, program_id: UUID, key_hash: str) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, program_id, key_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (key_id) DO NOTHING",
        key_id,
        program_id,
        key_hash,
    )


async def authorize_program(
    request: Request,
    pool: asyncpg.Pool,
    admin_key: str | None,
    program_id: UUID,
    directory: KeyDirectory | None = None,
) -> None:
    """Allow the admin key, or a secret key of this very program."""
    token = bearer_token(request)
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return
    if await program_for_key(pool, token, directory) != program_id:
        raise Problem(
            403, "forbidden", "This key belongs to another program", field="Authorization"
        )


# --- FastAPI dependencies: they run before the body is validated, so a caller without the
# right key learns nothing about the request shape (401/403 before 422).


def _admin_key_of(request: Request) -> str | None:
    key = request.app.state.runtime.settings.admin_api_key
    return key.get_secret_value() if key else None


def _directory_of(runtime: object) -> KeyDirectory | None:
    # Tests stand in a bare namespace for the runtime: no directory there.
    return getattr(runtime, "key_directory", None)


async def require_admin(request: Request) -> None:
    check_admin(request, _admin_key_of(request))


async def require_program_access(program_id: UUID, request: Request) -> UUID:
    """The admin key, or a secret key of the program named in the path."""
    runtime = request.app.state.runtime
    await authorize_program(
        request, runtime.pool, _admin_key_of(request), program_id, _directory_of(runtime)
    )
    return program_id


async def require_program_key(request: Request) -> UUID:
    """A program's secret key; the program it belongs to is the caller's program."""
    runtime = request.app.state.runtime
    return await program_for_key(runtime.pool, bearer_token(request), _directory_of(runtime))


async def require_any_key(request: Request) -> UUID | None:
    """The admin key (None: every program) or any program's secret key (its program): for
    routes whose resource names its program only once it is read."""
    token = bearer_token(request)
    admin = _admin_key_of(request)
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return None
    runtime = request.app.state.runtime
    return await program_for_key(runtime.pool, token, _directory_of(runtime))
