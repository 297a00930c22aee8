"""Request and response models of the tracking API."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.base import MinorUnits, UnitCode


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    click_id: UUID | None = None
    referral_code: str | None = Field(default=None, min_length=4, max_length=64)

    @model_validator(mode="after")
    def _one_source(self) -> SignupIn:
        if self.click_id is None and self.referral_code is None:
            raise ValueError("give click_id or referral_code")
        return self


class SignupOut(BaseModel):
    signup_id: UUID
    customer_id: str
    attributed: bool
    referrer_id: UUID | None
    reason: str = Field(description="Why the signup was or was not attributed")


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=200)
    order_id: str = Field(min_length=1, max_length=200)
    amount: MinorUnits
    currency: UnitCode


class ConversionOut(BaseModel):
    conversion_id: UUID
    referral_id: UUID
    referrer_id: UUID
    order_id: str
    program_version: int | None


class ClickOut(BaseModel):
    click_id: UUID
    code: str
    participant_id: UUID
    attributable: bool
