"""Program section owned by notifications: what to send, on which channels, and reminders."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class NotificationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
