"""Pure decisions: a program's notification settings, whether a message goes out (and why
not), when to try again, when an endpoint is given up on, and which milestone is next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from shared.contracts.sections.notifications import NotificationPolicy


def policy_of(definition: dict[str, Any], variant: str | None = None) -> NotificationPolicy:
    """The notifications section of a program definition, the variant's own if it has one."""
    section = definition.get("notifications") or {}
    for v in definition.get("variants") or []:
        if variant and v.get("name") == variant and v.get("notifications") is not None:
            section = v["notifications"]
    try:
        return NotificationPolicy.model_validate(section)
    except pydantic.ValidationError:
        return NotificationPolicy()


def milestone_thresholds(definition: dict[str, Any]) -> list[int]:
    rewards = definition.get("rewards") or {}
    return sorted(int(m["threshold"]) for m in rewards.get("milestones") or [] if "threshold" in m)


def hold_days(definition: dict[str, Any]) -> float:
    return float((definition.get("rewards") or {}).get("hold_days") or 0)


@dataclass(frozen=True)
class Recipient:
    has_address: bool
    erased: bool
    subscribed: bool  # to this message's category
    marketing_sent_last_day: int


def skip_reason(
    *,
    channel: str,
    category: str,
    recipient: Recipient,
    email_enabled: bool,
    marketing_per_day: int,
) -> str | None:
    """None when the message should go out, otherwise why not (kept in the delivery log).
    Preferences and caps are about email: the in-app feed is the app's own page."""
    if recipient.erased:
        return "participant erased"
    if channel != "email":
        return None
    if not email_enabled:
        return "email disabled for this program"
    if not recipient.has_address:
        return "no email address"
    if not recipient.subscribed:
        return f"unsubscribed from {category} messages"
    if category == "marketing" and recipient.marketing_sent_last_day >= marketing_per_day:
        return f"frequency cap: {marketing_per_day} marketing emails per 24 hours"
    return None


def retry_delay(attempts: int, schedule: Sequence[float]) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones, or None: give up."""
    if attempts < 1 or attempts > len(schedule):
        return None
    return float(schedule[attempts - 1])


def should_disable(consecutive_failures: int, limit: int) -> bool:
    return consecutive_failures >= limit


def permanent_smtp_failure(code: int | None) -> bool:
    """5xx replies are final (bad address, refused); 4xx and no reply are worth retrying."""
    return code is not None and 500 <= code < 600


def next_threshold(thresholds: Sequence[int], converted: int) -> int | None:
    """The smallest milestone not reached yet with ``converted`` converted referrals."""
    ahead = [t for t in thresholds if t > converted]
    return min(ahead) if ahead else None


def one_away(thresholds: Sequence[int], converted: int) -> int | None:
    """The threshold one more converted referral reaches, if any."""
    nxt = next_threshold(thresholds, converted)
    return nxt if nxt is not None and nxt - converted == 1 else None


# The status a webhook states besides its event (docs/crm.md): a CRM or an integration tool
# copies it into a field instead of mapping event types itself. The referral statuses are those
# of the links support story.
_WEBHOOK_STATUS = {
    "referral.signed_up": {"referral_status": "signed_up"},
    "referral.flagged": {"referral_status": "pending_review"},
    "referral.converted": {"referral_status": "converted"},
    "reward.issued": {"reward_status": "issued"},
    "reward.failed": {"reward_status": "failed"},
}


def webhook_status(event_type: str) -> dict[str, str]:
    """``referral_status`` or ``reward_status`` for a webhook of ``event_type`` ({} for others)."""
    return _WEBHOOK_STATUS.get(event_type, {})
