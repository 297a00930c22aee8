"""Program section owned by attribution: fraud rules and what each does when it fires."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FraudPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
