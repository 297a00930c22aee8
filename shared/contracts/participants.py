"""Participants (referrers) enrolled in a program."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from shared.contracts.base import Event


class ParticipantEnrolled(Event):
    """Carries what notifications needs to send a welcome with the link."""

    TOPIC: ClassVar[str] = "participant.enrolled"
    TYPE: ClassVar[str] = "participant.enrolled.v1"

    participant_id: UUID
    program_id: UUID
    external_user_id: str
    code: str
    link_url: str
    email: str | None = None
    name: str | None = None
    locale: str = "en"
    variant: str | None = None
    enrolled_at: datetime

    def key(self) -> str:
        """The participant id."""
        return str(self.participant_id)


class ParticipantErased(Event):
    """Every service drops or irreversibly hashes what it holds about this person; the
    rewards ledger keeps its amounts."""

    TOPIC: ClassVar[str] = "participant.erased"
    TYPE: ClassVar[str] = "participant.erased.v1"

    participant_id: UUID
    program_id: UUID
    erased_at: datetime
    # The participant's code (not personal data): it stops working everywhere.
    code: str | None = None

    def key(self) -> str:
        """The participant id."""
        return str(self.participant_id)
