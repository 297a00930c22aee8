"""The names the delivery log's ``trigger`` filter accepts. Rows are stored under a template
trigger (``referral_signed_up``, ``share_reminder``: email, in-app and ops messages) or, for
webhook messages, under the event type (``referral.signed_up``). The README's trigger table
names events by their dotted names; such a name stands for every message the event caused:
its webhook messages and its participant or ops messages."""

from __future__ import annotations

from services.notifications.catalog import TRIGGERS
from shared.contracts import TOPICS

# Messages an event causes under a template trigger not named after it.
_ALSO: dict[str, tuple[str, ...]] = {
    "participant.enrolled": ("welcome",),
    "reward.issued": ("reward_available",),
}


def _stored(name: str) -> tuple[str, ...]:
    if name in TRIGGERS:
        return (name,)
    own = name.replace(".", "_")
    return (name, *((own,) if own in TRIGGERS else ()), *_ALSO.get(name, ()))


# Every accepted name -> the trigger values of the rows it selects.
FILTER_NAMES: dict[str, tuple[str, ...]] = {n: _stored(n) for n in (*TRIGGERS, *TOPICS)}


def stored_triggers(names: list[str]) -> list[str]:
    """The stored trigger values the accepted ``names`` select (every name must be one of
    ``FILTER_NAMES``)."""
    return list(dict.fromkeys(t for n in names for t in FILTER_NAMES[n]))
