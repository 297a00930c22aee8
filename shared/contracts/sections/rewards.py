"""Program section owned by rewards: what each side gets, and when."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.contracts.base import Amount


class RewardPolicy(BaseModel):
    """What each side gets for one converted referral."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    referrer: Amount | None = None
    referee: Amount | None = None
