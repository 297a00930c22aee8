"""Builders of the common events for tests: every required field has a plausible default (fresh
ids, now), so a test names only the fields it is about. Each builder returns the contract
model itself, validated like any other; pass ``**fields`` to override or add fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.contracts import (
    ApiKeyIssued,
    LinkClicked,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralSignedUp,
)
from shared.contracts.programs import ProgramDefinition


def _now() -> datetime:
    return datetime.now(UTC)


def program_published(
    program_id: UUID | None = None,
    *,
    version: int = 1,
    definition: ProgramDefinition | None = None,
    **fields: Any,
) -> ProgramPublished:
    """A version of a program; ``definition`` defaults to one with only a destination URL."""
    return ProgramPublished(
        **{
            "program_id": program_id or uuid.uuid4(),
            "version": version,
            "effective_from": _now(),
            "name": "test program",
            "definition": definition
            or ProgramDefinition(destination_url="https://shop.example.com/"),
            **fields,
        }
    )


def participant_enrolled(
    program_id: UUID | None = None, participant_id: UUID | None = None, **fields: Any
) -> ParticipantEnrolled:
    """A participant with a fresh upper-case code and a link made of it."""
    participant_id = participant_id or uuid.uuid4()
    code = fields.pop("code", uuid.uuid4().hex[:10].upper())
    return ParticipantEnrolled(
        **{
            "participant_id": participant_id,
            "program_id": program_id or uuid.uuid4(),
            "external_user_id": f"user-{participant_id.hex[:8]}",
            "code": code,
            "link_url": f"https://l.example/r/{code}",
            "enrolled_at": _now(),
            **fields,
        }
    )


def participant_erased(program_id: UUID, participant_id: UUID, **fields: Any) -> ParticipantErased:
    return ParticipantErased(
        **{
            "participant_id": participant_id,
            "program_id": program_id,
            "erased_at": _now(),
            **fields,
        }
    )


def link_clicked(
    program_id: UUID | None = None, participant_id: UUID | None = None, **fields: Any
) -> LinkClicked:
    """An attributable click made now."""
    return LinkClicked(
        **{
            "click_id": uuid.uuid4(),
            "code": "CODE",
            "program_id": program_id or uuid.uuid4(),
            "participant_id": participant_id or uuid.uuid4(),
            "clicked_at": _now(),
            **fields,
        }
    )


def referral_signed_up(
    program_id: UUID | None = None, referrer_id: UUID | None = None, **fields: Any
) -> ReferralSignedUp:
    return ReferralSignedUp(
        **{
            "referral_id": uuid.uuid4(),
            "program_id": program_id or uuid.uuid4(),
            "referrer_id": referrer_id or uuid.uuid4(),
            "referee_customer_id": f"customer-{uuid.uuid4().hex[:8]}",
            "signed_up_at": _now(),
            **fields,
        }
    )


def referral_converted(
    program_id: UUID | None = None, referrer_id: UUID | None = None, **fields: Any
) -> ReferralConverted:
    """A first qualifying purchase of 49.99 USD."""
    return ReferralConverted(
        **{
            "conversion_id": uuid.uuid4(),
            "referral_id": uuid.uuid4(),
            "program_id": program_id or uuid.uuid4(),
            "referrer_id": referrer_id or uuid.uuid4(),
            "referee_customer_id": f"customer-{uuid.uuid4().hex[:8]}",
            "order_id": f"order-{uuid.uuid4().hex[:8]}",
            "amount": 4999,
            "currency": "USD",
            "converted_at": _now(),
            **fields,
        }
    )


def api_key_issued(
    program_id: UUID | None = None, *, key_hash: str = "0" * 64, **fields: Any
) -> ApiKeyIssued:
    """A program key; pass the ``key_hash`` of a key the test means to use."""
    return ApiKeyIssued(
        **{
            "key_id": f"key-{uuid.uuid4().hex[:8]}",
            "program_id": program_id or uuid.uuid4(),
            "key_hash": key_hash,
            "created_at": _now(),
            **fields,
        }
    )
