"""Routes for the platform's other services, not for clients: what links knows of a program
key, so a key works in every service before its ``apikey.issued`` event arrives there."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request

from services.links.programs import use_cases
from services.links.programs.models import KeyStatusOut
from shared.http.auth import require_admin
from shared.http.key_directory import INTERNAL_KEYS_PATH
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(tags=["internal"])


@router.get(
    INTERNAL_KEYS_PATH + "/{key_hash}",
    response_model=KeyStatusOut,
    dependencies=[Depends(require_admin)],
    responses=problem_responses(404),
)
async def key_status(
    request: Request,
    key_hash: str = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, hex"),
) -> Any:
    """The program of a key (by its SHA-256 hash) and whether it is revoked; 404 when links
    never issued it. Called by the other services with the admin key."""
    return await use_cases.key_status_of(runtime_of(request).pool, key_hash)
