"""Signed unsubscribe links: ``<participant>.<category>.<hmac>``, so the link works without a
login and cannot be forged for someone else.

Every participant email, transactional or marketing, carries a link for the marketing
category: a one-click unsubscribe (RFC 8058) stops marketing mail only. Links of the
transactional category were sent before that rule; they still verify, and also stop
marketing only. Transactional mail stops only by an explicit choice (the preferences API, or
the second button of the unsubscribe page)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

CATEGORIES = ("transactional", "marketing")
# The category of every link sent, and what a one-click unsubscribe turns off.
LINK_CATEGORY = "marketing"


def _mac(key: bytes, participant_id: UUID, category: str) -> str:
    digest = hmac.new(key, f"{participant_id}:{category}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def make_token(key: bytes, participant_id: UUID, category: str) -> str:
    return f"{participant_id}.{category}.{_mac(key, participant_id, category)}"


def read_token(key: bytes, token: str) -> tuple[UUID, str] | None:
    """(participant, category) of a valid token, or None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[1] not in CATEGORIES:
        return None
    try:
        participant_id = UUID(parts[0])
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _mac(key, participant_id, parts[1])):
        return None
    return participant_id, parts[1]
