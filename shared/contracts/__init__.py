"""Event contracts: one module per topic family. ``EVENTS`` is the registry every other piece
(topic creation, consumers, the AsyncAPI document) reads from."""

from __future__ import annotations

from shared.contracts.apikeys import ApiKeyIssued, ApiKeyRevoked
from shared.contracts.base import Event
from shared.contracts.links import LinkClicked, LinkShared
from shared.contracts.participants import ParticipantEnrolled, ParticipantErased
from shared.contracts.programs import ProgramPublished
from shared.contracts.referrals import (
    ReferralConverted,
    ReferralFlagged,
    ReferralPending,
    ReferralRejected,
    ReferralReversed,
    ReferralSignedUp,
)
from shared.contracts.rewards import (
    MilestoneReached,
    RewardCreated,
    RewardFailed,
    RewardIssued,
    RewardReversed,
)

EVENTS: tuple[type[Event], ...] = (
    ProgramPublished,
    ParticipantEnrolled,
    ParticipantErased,
    ApiKeyIssued,
    ApiKeyRevoked,
    LinkClicked,
    LinkShared,
    ReferralSignedUp,
    ReferralPending,
    ReferralConverted,
    ReferralFlagged,
    ReferralRejected,
    ReferralReversed,
    RewardCreated,
    RewardIssued,
    RewardReversed,
    RewardFailed,
    MilestoneReached,
)
BY_TYPE: dict[str, type[Event]] = {e.TYPE: e for e in EVENTS}
TOPICS: tuple[str, ...] = tuple(dict.fromkeys(e.TOPIC for e in EVENTS))


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


__all__ = [
    "BY_TYPE",
    "EVENTS",
    "TOPICS",
    "ApiKeyIssued",
    "ApiKeyRevoked",
    "Event",
    "LinkClicked",
    "LinkShared",
    "MilestoneReached",
    "ParticipantEnrolled",
    "ParticipantErased",
    "ProgramPublished",
    "ReferralConverted",
    "ReferralFlagged",
    "ReferralPending",
    "ReferralRejected",
    "ReferralReversed",
    "ReferralSignedUp",
    "RewardCreated",
    "RewardFailed",
    "RewardIssued",
    "RewardReversed",
    "dlq_topic",
]
