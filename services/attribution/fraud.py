"""Fraud rules: pure functions of the facts gathered about one signup, no I/O.

Each rule looks at ``SignupFacts`` and either stays silent or fires with a reason and the inputs
it used (hashes only: emails, IPs and device ids never appear in clear). What a firing rule does
is the program version's ``FraudPolicy``: ``allow`` records it, ``flag`` holds the referral for
review, ``reject`` rejects it; in ``shadow`` mode it is recorded and not enforced. The outcome is
the strictest enforced action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from disposable_email_domains import blocklist

from shared.contracts.referrals import RuleOutcome
from shared.contracts.sections.fraud import FraudPolicy, Rule

_SEVERITY = {"allow": 0, "flag": 1, "reject": 2}


@dataclass(frozen=True)
class SignupFacts:
    """What is known when a signup is attributed to a referrer (hashes, never clear text).

    The referrer's IP and device hashes come from the referrer's own signup as a customer of
    this program (their external user id used as a customer id), the only place where the
    company showed us the referrer's IP or device."""

    customer_id: str
    referrer_external_user_id: str | None = None
    email_hash: str | None = None
    email_domain: str | None = None  # the domain only, to look it up in the disposable list
    # Judged on receipt when the domain is no longer at hand (a signup decided late).
    email_disposable: bool = False
    referrer_email_hash: str | None = None
    ip_hash: str | None = None
    device_hash: str | None = None
    referrer_ip_hashes: frozenset[str] = field(default_factory=frozenset)
    referrer_device_hashes: frozenset[str] = field(default_factory=frozenset)
    # Earlier signups attributed to the same referrer / from the same IP (this one excluded).
    referrer_signups_last_hour: int = 0
    referrer_signups_last_day: int = 0
    ip_signups_last_day: int = 0
    # None when the signup named no click (a typed code).
    click_attributable: bool | None = None
    seconds_since_click: float | None = None


@dataclass(frozen=True)
class Fired:
    rule: str
    action: str
    shadow: bool
    reason: str
    inputs: dict[str, Any]

    @property
    def enforced(self) -> bool:
        return not self.shadow and self.action != "allow"

    def outcome(self) -> RuleOutcome:
        return RuleOutcome(
            rule=self.rule, action=self.action, shadow=self.shadow, reason=self.reason
        )

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "enforced": self.enforced}


Check = Callable[[SignupFacts, Any], tuple[str, dict[str, Any]] | None]


def is_disposable(domain: str) -> bool:
    """The domain or any parent of it is in the maintained disposable-domains list."""
    parts = domain.lower().strip(".").split(".")
    return any(".".join(parts[i:]) in blocklist for i in range(len(parts) - 1))


def self_referral(facts: SignupFacts, _: Rule) -> tuple[str, dict[str, Any]] | None:
    same_id = (
        facts.referrer_external_user_id is not None
        and facts.customer_id == facts.referrer_external_user_id
    )
    same_email = facts.email_hash is not None and facts.email_hash == facts.referrer_email_hash
    if not (same_id or same_email):
        return None
    reason = "same customer id as the referrer" if same_id else "same email as the referrer"
    return reason, {"same_customer_id": same_id, "same_email": same_email,
                    "email_hash": facts.email_hash}  # fmt: skip


def disposable_email(facts: SignupFacts, _: Rule) -> tuple[str, dict[str, Any]] | None:
    if not facts.email_disposable and (
        facts.email_domain is None or not is_disposable(facts.email_domain)
    ):
        return None
    return "disposable email domain", {"email_hash": facts.email_hash}


def same_ip_or_device(facts: SignupFacts, _: Rule) -> tuple[str, dict[str, Any]] | None:
    same_ip = facts.ip_hash is not None and facts.ip_hash in facts.referrer_ip_hashes
    same_device = (
        facts.device_hash is not None and facts.device_hash in facts.referrer_device_hashes
    )
    if not (same_ip or same_device):
        return None
    reason = "same IP as the referrer" if same_ip else "same device as the referrer"
    return reason, {"same_ip": same_ip, "same_device": same_device, "ip_hash": facts.ip_hash,
                    "device_hash": facts.device_hash}  # fmt: skip


def velocity(facts: SignupFacts, rule: Any) -> tuple[str, dict[str, Any]] | None:
    # Counts exclude this signup, so "more than N" means count + 1 > N.
    checks = [
        ("referrer signups in the last hour", facts.referrer_signups_last_hour,
         rule.per_referrer_hour),
        ("referrer signups in the last day", facts.referrer_signups_last_day,
         rule.per_referrer_day),
        ("signups from this IP in the last day",
         facts.ip_signups_last_day if facts.ip_hash else 0, rule.per_ip_day),
    ]  # fmt: skip
    for label, earlier, limit in checks:
        if limit is not None and earlier + 1 > limit:
            return f"more than {limit} {label}", {
                "count": earlier + 1, "limit": limit, "ip_hash": facts.ip_hash}  # fmt: skip
    return None


def bot_click(facts: SignupFacts, _: Rule) -> tuple[str, dict[str, Any]] | None:
    if facts.click_attributable is not False:
        return None
    return "the click was a bot, prefetch or HEAD request", {"click_attributable": False}


def too_fast(facts: SignupFacts, rule: Any) -> tuple[str, dict[str, Any]] | None:
    if facts.seconds_since_click is None or facts.seconds_since_click >= rule.min_seconds:
        return None
    return f"signup less than {rule.min_seconds}s after the click", {
        "seconds_since_click": round(facts.seconds_since_click, 3),
        "min_seconds": rule.min_seconds}  # fmt: skip


RULES: dict[str, Check] = {
    "self_referral": self_referral,
    "disposable_email": disposable_email,
    "same_ip_or_device": same_ip_or_device,
    "velocity": velocity,
    "bot_click": bot_click,
    "too_fast": too_fast,
}


def evaluate(policy: FraudPolicy, facts: SignupFacts) -> list[Fired]:
    """Every rule that fired, in a stable order, with its configured action."""
    fired: list[Fired] = []
    for name, check in RULES.items():
        rule: Rule = getattr(policy, name)
        hit = check(facts, rule)
        if hit is not None:
            reason, inputs = hit
            fired.append(Fired(name, rule.action, rule.shadow, reason, inputs))
    return fired


def outcome(fired: list[Fired]) -> str:
    """The strictest enforced action: ``allow``, ``flag`` or ``reject``."""
    enforced = [f.action for f in fired if f.enforced]
    return max(enforced, key=_SEVERITY.__getitem__, default="allow")


def deciding_rule(fired: list[Fired]) -> str | None:
    """The first enforced rule whose action is the outcome (the rule that rejected or flagged
    the signup); None when nothing enforced fired."""
    decided = outcome(fired)
    return next((f.rule for f in fired if f.enforced and f.action == decided), None)
