"""Clicks on referral links. Keyed by link code."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contracts.base import Event


class LinkClicked(Event):
    TOPIC: ClassVar[str] = "link.clicked"
    TYPE: ClassVar[str] = "link.clicked.v1"

    click_id: UUID
    code: str
    program_id: UUID
    participant_id: UUID
    clicked_at: datetime
    # Bots, prefetches and HEAD requests are redirected but never attributed.
    attributable: bool = True
    channel: str | None = None
    # Hash of (truncated IP, user agent) with a rotating salt; never the IP itself.
    visitor_hash: str | None = None

    def key(self) -> str:
        """The link code."""
        return self.code


class LinkShared(Event):
    """A participant shared their link on a channel (so invites can be counted)."""

    TOPIC: ClassVar[str] = "link.shared"
    TYPE: ClassVar[str] = "link.shared.v1"

    share_id: UUID
    program_id: UUID
    participant_id: UUID
    code: str
    channel: str
    shared_at: datetime

    def key(self) -> str:
        """The link code, like clicks."""
        return self.code
