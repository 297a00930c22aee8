"""Request and response bodies of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.notifications.catalog import TRIGGERS
from shared.contracts import TOPICS
from shared.http.openapi import STORABLE_TEXT, one_of
from shared.http.urls import WEB_URL_PATTERN

LOCALE = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
VARIANT = r"^[a-z0-9][a-z0-9_-]{0,31}$"
TRIGGER = one_of(TRIGGERS)
# What the schema can say of a webhook URL (see WEB_URL_PATTERN); where it may point is
# decided when registered and before each call (``shared.http.outbound``).
WEBHOOK_URL = WEB_URL_PATTERN
EventType = Annotated[str, Field(pattern=one_of(TOPICS))]


# ---- the feed and preferences ----


class NotificationOut(BaseModel):
    id: UUID
    kind: str
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class FeedOut(BaseModel):
    participant_id: UUID
    items: list[NotificationOut]


class Preferences(BaseModel):
    """Whether the participant wants email of each category (the default is yes)."""

    model_config = ConfigDict(extra="forbid")

    transactional: bool = True
    marketing: bool = True


class PreferencesPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactional: StrictBool | None = None
    marketing: StrictBool | None = None


# ---- templates ----


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500, pattern=STORABLE_TEXT)
    body: str = Field(min_length=1, max_length=50_000, pattern=STORABLE_TEXT)
    html: str | None = Field(default=None, max_length=200_000, pattern=STORABLE_TEXT)


class TemplateOut(TemplateIn):
    trigger: str
    locale: str
    variant: str | None
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str = Field(pattern=TRIGGER)
    locale: str = Field(default="en", pattern=LOCALE)
    variant: str | None = Field(default=None, pattern=VARIANT)
    # A draft to render instead of the stored template.
    subject: str | None = Field(default=None, max_length=500)
    body: str | None = Field(default=None, max_length=50_000)
    html: str | None = Field(default=None, max_length=200_000)
    variables: dict[str, Any] = {}


class PreviewOut(BaseModel):
    subject: str
    text: str
    html: str
    variables: dict[str, Any]


# ---- webhook endpoints ----


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, pattern=WEBHOOK_URL)
    # Empty: every event type.
    event_types: list[EventType] = Field(default=[], max_length=50)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None = None
    url: str | None = Field(default=None, min_length=1, max_length=2000, pattern=WEBHOOK_URL)
    event_types: list[EventType] | None = None


class EndpointOut(BaseModel):
    id: UUID
    program_id: UUID
    url: str
    event_types: list[str]
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    previous_secret_valid_until: datetime | None = None


class EndpointCreated(EndpointOut):
    secret: str


class SecretRotated(BaseModel):
    id: UUID
    secret: str
    previous_secret_valid_until: datetime


# ---- the delivery log ----


class AttemptOut(BaseModel):
    attempt: int
    status: str
    error: str | None
    started_at: datetime
    duration_ms: float


class DeliveryOut(BaseModel):
    id: UUID
    event_id: UUID
    participant_id: UUID | None
    channel: str
    trigger: str
    category: str
    endpoint_id: UUID | None
    status: str
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
