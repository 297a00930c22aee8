"""Request and response models of the links API."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.contracts.programs import ProgramDefinition


class ProgramDefinitionIn(ProgramDefinition):
    """A definition as a company writes it; the redirect may only ever go to allowed hosts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destination_url: str = Field(max_length=2000)
    click_id_param: str = Field(default="ref_click", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$")

    @model_validator(mode="after")
    def _check_urls(self) -> ProgramDefinitionIn:
        hosts = {h.lower() for h in self.allowed_hosts}
        errors: list[InitErrorDetails] = []
        for name in ("destination_url", "fallback_url"):
            url = getattr(self, name)
            if url is None:
                continue
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                message = "must be an absolute http(s) URL"
            elif hosts and parts.hostname.lower() not in hosts:
                message = f"host {parts.hostname!r} is not in allowed_hosts"
            else:
                continue
            # Reported at the field itself so that the problem document names it.
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError("url_not_allowed", message),  # type: ignore[arg-type]
                    loc=(name,),
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
    effective_from: datetime | None = None


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: ProgramDefinitionIn
    effective_from: datetime | None = None


class ProgramOut(BaseModel):
    id: UUID
    name: str
    status: str
    version: int
    effective_from: datetime
    definition: ProgramDefinition


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


class ParticipantOut(BaseModel):
    id: UUID
    program_id: UUID
    external_user_id: str
    code: str
    link_url: str
    locale: str
