"""The console's timeline of a participant's story: every dated fact of the story as one line,
newest first, so that a support agent reads what happened in order. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.links.insights.story_models import ParticipantStory

Amount = Callable[[int, str], str]


@dataclass(frozen=True)
class Moment:
    at: datetime
    # enrolment, share, signup, decision, purchase, refund, reward, milestone, ledger, message
    kind: str
    text: str


def _rules(rules: list[str]) -> str:
    return ", ".join(rules) or "no rule named"


def _signed(amount: Amount, value: int, unit: str) -> str:
    return f"{'-' if value < 0 else '+'}{amount(abs(value), unit)}"


def timeline(story: ParticipantStory, amount: Amount) -> list[Moment]:
    """Every dated fact, newest first (ties keep the order of a referral's life)."""
    who = story.participant
    moments = [Moment(who.enrolled_at, "enrolment", f"Enrolled with code {who.code}")]
    if who.erased_at:
        moments.append(Moment(who.erased_at, "enrolment", "Erased (personal data dropped)"))
    moments += [Moment(s.shared_at, "share", f"Shared on {s.channel}") for s in story.shares]
    for r in story.signups:
        friend = r.referee_customer_id or "an erased referrer's friend"
        if r.signed_up_at:
            moments.append(Moment(r.signed_up_at, "signup", f"{friend} signed up"))
        for decision, at in (("flagged", r.flagged_at), ("rejected", r.rejected_at)):
            if at:
                names = [f"{x.rule}{' (shadow)' if x.shadow else ''}" for x in r.rules
                         if x.decision == decision]  # fmt: skip
                moments.append(Moment(at, "decision", f"{friend} {decision}: {_rules(names)}"))
        for c in r.conversions:
            price = amount(c.amount, c.currency) if c.amount and c.currency else "an order"
            if c.converted_at:
                moments.append(Moment(c.converted_at, "purchase", f"{friend} bought {price}"))
            if c.reversed_at:
                moments.append(Moment(c.reversed_at, "refund", f"{friend}'s {price} refunded"))
    for w in story.rewards:
        what = w.perk or amount(w.amount, w.unit)
        whose = "referrer" if w.side == "referrer" else f"referee {w.recipient or ''}".strip()
        for at, verb in (
            (w.created_at, "granted"),
            (w.issued_at, "issued"),
            (w.failed_at, f"failed ({w.failure_reason})"),
            (w.reversed_at, (w.reversal_kind or "reversed").replace("_", " ")),
        ):
            if at:
                moments.append(Moment(at, "reward", f"Reward {what} to {whose} {verb}"))
    moments += [
        Moment(m.reached_at, "milestone", f"Milestone {m.threshold} reached")
        for m in story.milestones
    ]
    # Of the ledger's postings, those no other part tells: an operator's manual adjustment and a
    # redemption (grants, releases and reversals already show as the rewards' own moments).
    for p in (story.ledger.postings or []) if story.ledger else []:
        if p.kind == "adjustment":
            by = f" by {p.actor}" if p.actor else ""
            why = f": {p.reason}" if p.reason else ""
            text = f"Manual adjustment {_signed(amount, p.amount, p.unit)}{by}{why}"
            moments.append(Moment(p.at, "ledger", text))
        elif p.kind == "redemption":
            moments.append(Moment(p.at, "ledger", f"Redeemed {amount(abs(p.amount), p.unit)}"))
    for msg in story.messages or []:
        moments.append(
            Moment(msg.sent_at or msg.created_at, "message",
                   f"{msg.channel} message '{msg.trigger}': {msg.status}")
        )  # fmt: skip
    # Stable sort: facts of one instant keep the order they were listed in.
    return sorted(moments, key=lambda m: m.at, reverse=True)
