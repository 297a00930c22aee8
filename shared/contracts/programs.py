"""Program versions: written once through the links service, consumed by every service.
Each section's model lives in ``sections/`` with the service that owns it."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import Event
from shared.contracts.sections.attribution import AttributionPolicy
from shared.contracts.sections.fraud import FraudPolicy
from shared.contracts.sections.links import LinkPolicy
from shared.contracts.sections.notifications import NotificationPolicy
from shared.contracts.sections.rewards import RewardPolicy


class Variant(BaseModel):
    """An experiment arm: participants are assigned one at enrolment, by weight, and keep it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    weight: int = Field(default=1, ge=0, le=10_000)
    rewards: RewardPolicy | None = None
    notifications: NotificationPolicy | None = None


class ProgramDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    destination_url: str
    allowed_hosts: list[str] = []
    fallback_url: str | None = None
    click_id_param: str = "ref_click"
    links: LinkPolicy = LinkPolicy()
    attribution: AttributionPolicy = AttributionPolicy()
    fraud: FraudPolicy = FraudPolicy()
    rewards: RewardPolicy = RewardPolicy()
    notifications: NotificationPolicy = NotificationPolicy()
    variants: list[Variant] = []


class ProgramPublished(Event):
    """A new immutable version of a program, in force from ``effective_from``."""

    TOPIC: ClassVar[str] = "program.published"
    TYPE: ClassVar[str] = "program.published.v1"

    program_id: UUID
    version: int = Field(ge=1)
    effective_from: datetime
    name: str
    status: Literal["active", "paused"] = "active"
    definition: ProgramDefinition

    def key(self) -> str:
        """The program id."""
        return str(self.program_id)

    def subject(self) -> str:
        return f"program/{self.program_id}/v{self.version}"
