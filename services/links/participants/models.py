"""Request and response models of participants and their shares and erasure."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.links.participants.codes import vanity_problem


class ParticipantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_user_id: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    name: str | None = Field(default=None, max_length=200)
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    code: str | None = Field(
        default=None,
        max_length=32,
        description="A vanity code (4-32 letters, digits, inner hyphens); random if omitted",
    )
    leaderboard_opt_in: bool = Field(
        default=False, description="Show the name on the program's leaderboard (masked if not)"
    )

    @field_validator("code")
    @classmethod
    def _vanity(cls, code: str | None) -> str | None:
        if code is not None and (problem := vanity_problem(code)):
            raise ValueError(problem)
        return code


class ParticipantOut(BaseModel):
    id: UUID
    program_id: UUID
    external_user_id: str
    code: str
    link_url: str
    locale: str
    variant: str | None = None
    share_links: dict[str, str] = Field(default={}, description="The link per share channel")
    qr_svg_url: str
    qr_png_url: str
    erased: bool = False
    leaderboard_opt_in: bool = False
    scoreboard_url: str | None = Field(
        default=None,
        description="The public scoreboard page; its token is the secret (None once erased)",
    )


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")


class ShareOut(BaseModel):
    share_id: UUID
    participant_id: UUID
    channel: str
    shared_at: datetime


class ErasureOut(BaseModel):
    participant_id: UUID
    erased_at: datetime
