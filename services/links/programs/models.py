"""Request and response models of programs, versions and keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.contracts.programs import ProgramDefinition
from shared.http.urls import UrlRefused, checked_url

# What the schema can say of a URL the platform redirects to: absolute http(s), with a host
# and no user name or password, no spaces, backslashes or control characters. The host must
# also be in ``allowed_hosts`` and read alike by browsers and servers (checked below: 422).
WEB_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f\\/?#@]+([/?#][^\s\x00-\x1f\x7f\\]*)?$"


class ProgramDefinitionIn(ProgramDefinition):
    """A definition as a company writes it; the redirect may only ever go to allowed hosts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The pattern is documented, and checked_url below enforces it with a message per rule.
    destination_url: str = Field(max_length=2000, json_schema_extra={"pattern": WEB_URL})
    fallback_url: str | None = Field(
        default=None, max_length=2000, json_schema_extra={"pattern": WEB_URL}
    )
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


class KeyStatusOut(BaseModel):
    """What links knows of a key, for the other services (internal)."""

    key_hash: str
    program_id: UUID
    revoked: bool


class KeyOut(BaseModel):
    key_id: str
    program_id: UUID
    secret_key: str = Field(description="Shown once; only its hash is stored")
