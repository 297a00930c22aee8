"""What each trigger says. Pure functions of the event (templates come with their issue)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import ParticipantEnrolled, RewardIssued


@dataclass(frozen=True)
class Message:
    kind: str
    title: str
    body: str


def format_amount(amount: int, unit: str) -> str:
    if unit in {"USD", "EUR", "GBP"}:
        return f"{amount / 100:.2f} {unit}"
    return f"{amount} {unit}"


def welcome(event: ParticipantEnrolled) -> Message:
    return Message(
        "welcome",
        "Welcome to the referral program",
        f"Share your link {event.link_url} with friends.",
    )


def reward_earned(event: RewardIssued) -> Message:
    return Message(
        "reward_issued",
        "You earned a reward",
        f"You earned {format_amount(event.amount, event.unit)} for a referral.",
    )
