"""Request and response bodies of Stripe events in."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

EventStatus = Literal["applied", "ignored", "unmatched", "failed"]
EVENT_STATUSES: tuple[str, ...] = get_args(EventStatus)

# Stripe's endpoint signing secrets read "whsec_" then random characters.
SECRET_PATTERN = r"^whsec_[A-Za-z0-9+/=_-]{8,200}$"
_SECRET_DOC = (
    "The endpoint's signing secret as Stripe shows it (whsec_...). Never shown again: answers "
    "give its fingerprint."
)


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str = Field(pattern=SECRET_PATTERN, description=_SECRET_DOC, repr=False)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_reference_id: bool = Field(
        default=True,
        description="Read the company's customer id from a Checkout Session's client_reference_id",
    )
    metadata_key: str | None = Field(
        default="customer_id",
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Read the company's customer id from this metadata key of the invoice, "
        "its subscription or the Checkout Session (null: metadata is not read)",
    )
    secret: str | None = Field(
        default=None,
        pattern=SECRET_PATTERN,
        description=_SECRET_DOC + " Or add it later.",
        repr=False,
    )


class SecretOut(BaseModel):
    fingerprint: str = Field(description="The first 16 hex digits of the secret's SHA-256")
    added_at: datetime


class EndpointOut(BaseModel):
    id: UUID
    program_id: UUID
    url_path: str = Field(description="Give Stripe this path on attribution's public address")
    client_reference_id: bool
    metadata_key: str | None
    secrets: list[SecretOut] = Field(description="At most two: the new and the retiring one")
    created_at: datetime


class EventOut(BaseModel):
    event_id: str
    endpoint_id: UUID
    type: str
    status: EventStatus = Field(
        description="applied (the platform's call was made), ignored (nothing to do: type not "
        "handled, customer not referred, ...), unmatched (no customer or order found: kept, "
        "re-apply it after fixing the mapping), failed (refused by the tracking rules: kept)"
    )
    reason: str
    order_id: str | None
    received_at: datetime
    applied_at: datetime | None
    attempts: int = Field(description="Deliveries and re-applications of this event")
    replay: bool = Field(default=False, description="This event had been received before")


class EventPage(BaseModel):
    items: list[EventOut]
