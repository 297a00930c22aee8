"""Per-program secret keys. Only the SHA-256 of the key travels; the key is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contracts.base import Event


class ApiKeyIssued(Event):
    TOPIC: ClassVar[str] = "apikey.issued"
    TYPE: ClassVar[str] = "apikey.issued.v1"

    key_id: str
    program_id: UUID
    key_hash: str
    created_at: datetime

    def key(self) -> str:
        """The program id."""
        return str(self.program_id)


class ApiKeyRevoked(Event):
    """The key stops working in every service as soon as each has applied this event."""

    TOPIC: ClassVar[str] = "apikey.revoked"
    TYPE: ClassVar[str] = "apikey.revoked.v1"

    key_id: str
    program_id: UUID
    revoked_at: datetime

    def key(self) -> str:
        """The program id."""
        return str(self.program_id)
