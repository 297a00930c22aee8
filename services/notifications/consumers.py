"""The one place that maps topics to handlers in notifications (the handlers are in
``handlers``)."""

from __future__ import annotations

from functools import partial

from services.notifications import handlers
from services.notifications.context import Context
from services.notifications.settings import NotificationsSettings
from shared.contracts import (
    LinkClicked,
    MilestoneReached,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
    ReferralConverted,
    ReferralFlagged,
    ReferralSignedUp,
    RewardFailed,
    RewardIssued,
)
from shared.http.key_events import KEY_HANDLERS
from shared.messaging.groups import ConsumerGroup


def consumer_groups(
    settings: NotificationsSettings, context: Context | None = None
) -> list[ConsumerGroup]:
    """One group for every topic. ``context`` (default: a new one for ``settings``) is what
    the handlers share with the reminder scheduler: the definitions cache."""
    ctx = context or Context(settings)
    return [
        ConsumerGroup(
            {
                ProgramPublished.TOPIC: partial(handlers.on_program_published, ctx),
                ParticipantEnrolled.TOPIC: partial(handlers.on_participant_enrolled, ctx),
                LinkClicked.TOPIC: handlers.on_link_clicked,
                ReferralSignedUp.TOPIC: partial(handlers.on_signed_up, ctx),
                ReferralConverted.TOPIC: partial(handlers.on_converted, ctx),
                RewardIssued.TOPIC: partial(handlers.on_reward_issued, ctx),
                MilestoneReached.TOPIC: partial(handlers.on_milestone, ctx),
                RewardFailed.TOPIC: partial(handlers.on_reward_failed, ctx),
                ReferralFlagged.TOPIC: partial(handlers.on_flagged, ctx),
                ParticipantErased.TOPIC: handlers.on_erased,
                **KEY_HANDLERS,
            }
        )
    ]
