"""Program section owned by notifications: what to send, on which channels, and reminders."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class NotificationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Email participants who gave an address (the in-app feed and webhooks are always on).
    email: bool = True
    # Remind to share this many days after enrolment if the link had no click; None: never.
    share_reminder_days: int | None = Field(default=3, ge=1, le=365)
    # "One more referral unlocks the next milestone" (thresholds come from the rewards section).
    milestone_nudge: bool = True
    # "Your pending reward is now available" when a held reward is released.
    reward_available: bool = True
    # At most this many marketing emails (reminders, nudges) per participant per 24 hours.
    marketing_per_day: int = Field(default=2, ge=0, le=100)
    # Where ops messages go (reward failed, referral flagged), besides the program's webhooks.
    ops_emails: list[EmailAddress] = Field(default=[], max_length=20)
