"""Program versions: written once through the links service, consumed by every service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import Amount, Event


class AttributionSettings(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    window_days: int = Field(default=90, ge=1, le=3650)
    model: Literal["first_click", "last_click"] = "last_click"


class RewardSettings(BaseModel):
    """What each side gets for one converted referral."""

    model_config = ConfigDict(extra="allow", frozen=True)

    referrer: Amount | None = None
    referee: Amount | None = None


class ProgramDefinition(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    destination_url: str
    allowed_hosts: list[str] = []
    fallback_url: str | None = None
    click_id_param: str = "ref_click"
    attribution: AttributionSettings = AttributionSettings()
    rewards: RewardSettings = RewardSettings()


class ProgramPublished(Event):
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
