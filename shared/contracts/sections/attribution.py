"""Program section owned by attribution: how referrals are attributed and qualified."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AttributionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(default=90, ge=1, le=3650)
    model: Literal["first_click", "last_click"] = "last_click"
