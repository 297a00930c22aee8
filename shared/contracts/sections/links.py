"""Program section owned by links: codes and sharing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LinkPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
