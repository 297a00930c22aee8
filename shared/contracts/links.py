"""Clicks on referral links. Keyed by link code."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contracts.base import Event


class LinkClicked(Event):
    """Every redirect is one click with its own ``click_id`` (also its ``ce_id``, so a replay
    from the gateway's spill file is dropped by the consumer's inbox)."""

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
    # Hash of (IP, user agent) with a daily rotating salt; never the IP itself.
    visitor_hash: str | None = None
    # False for a repeat by the same visitor on the same code within an hour (per gateway
    # replica; ``visitor_hash`` lets a consumer de-duplicate across replicas).
    unique: bool = True
    # Why ``attributable`` is false: "bot", "prefetch" or "head".
    non_attributable_reason: str | None = None

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
