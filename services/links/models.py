"""Request and response models of the links API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from services.links.codes import vanity_problem
from shared.contracts.programs import ProgramDefinition
from shared.http.urls import UrlRefused, checked_url


class ProgramDefinitionIn(ProgramDefinition):
    """A definition as a company writes it; the redirect may only ever go to allowed hosts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination_url: str = Field(max_length=2000)
    click_id_param: str = Field(default="ref_click", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$")

    allowed_hosts: list[str] = Field(default=[], max_length=50)

    @model_validator(mode="after")
    def _check_urls(self) -> ProgramDefinitionIn:
        errors: list[InitErrorDetails] = []
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("duplicate_variant", "variant names must be unique"),  # type: ignore[arg-type]
                    loc=("variants",),
                    input=names,
                )
            )
        elif self.variants and sum(v.weight for v in self.variants) == 0:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("zero_weights", "at least one variant needs a weight"),  # type: ignore[arg-type]
                    loc=("variants",),
                    input=names,
                )
            )
        # Redirect targets must be on allowed_hosts; fulfilment webhooks may be anywhere.
        urls: list[tuple[tuple[str | int, ...], str | None, list[str]]] = [
            (("destination_url",), self.destination_url, self.allowed_hosts),
            (("fallback_url",), self.fallback_url, self.allowed_hosts),
            (("rewards", "fulfilment", "webhook_url"), self.rewards.fulfilment.webhook_url, []),
        ]
        for i, variant in enumerate(self.variants):
            if variant.rewards is not None:
                loc = ("variants", i, "rewards", "fulfilment", "webhook_url")
                urls.append((loc, variant.rewards.fulfilment.webhook_url, []))
        for loc, url, allowed in urls:
            if url is None:
                continue
            try:
                checked_url(url, allowed_hosts=allowed)
                continue
            except UrlRefused as exc:
                message = str(exc)
            # Reported at the field itself so that the problem document names it.
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("url_not_allowed", message),  # type: ignore[arg-type]
                    loc=loc,
                    input=url,
                )
            )
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


class ProgramCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    definition: ProgramDefinitionIn
    effective_from: datetime | None = Field(
        default=None, description="Now (the default) or a future time, with a time zone"
    )


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: ProgramDefinitionIn
    effective_from: datetime | None = Field(
        default=None, description="Now (the default) or a future time, with a time zone"
    )


class ProgramOut(BaseModel):
    id: UUID
    name: str
    status: Literal["active", "paused"]
    version: int = Field(description="The version this answer shows")
    effective_from: datetime
    in_force: bool = Field(description="Whether that version is the one in force now")
    latest_version: int
    definition: ProgramDefinition


class VersionOut(BaseModel):
    version: int
    effective_from: datetime
    status: Literal["active", "paused"]
    created_at: datetime
    definition: ProgramDefinition


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class KeyOut(BaseModel):
    key_id: str
    program_id: UUID
    secret_key: str = Field(description="Shown once; only its hash is stored")


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
