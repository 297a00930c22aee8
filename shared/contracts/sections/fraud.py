"""Program section owned by attribution: fraud rules and what each does when it fires.

Every rule has an ``action`` (``allow``: record only, ``flag``: hold for review, ``reject``)
and ``shadow`` (the decision is recorded but not enforced), so a rule can be tried out on real
traffic before it is switched on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["allow", "flag", "reject"]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action = "flag"
    shadow: bool = False


class VelocityRule(Rule):
    """Fires when a referrer's signups in the last hour/day, or an IP's signups in the last
    day, exceed the limit (this signup included). ``None`` switches a limit off."""

    per_referrer_hour: int | None = Field(default=100, ge=1)
    per_referrer_day: int | None = Field(default=500, ge=1)
    per_ip_day: int | None = Field(default=20, ge=1)


class TooFastRule(Rule):
    """Fires when the signup arrives less than ``min_seconds`` after the click. It is in shadow
    by default: the signup time is when the company's backend calls, not when the user acted."""

    min_seconds: int = Field(default=3, ge=0, le=3600)
    shadow: bool = True


class FraudPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    self_referral: Rule = Rule(action="reject")
    disposable_email: Rule = Rule(action="flag")
    same_ip_or_device: Rule = Rule(action="flag")
    velocity: VelocityRule = VelocityRule()
    bot_click: Rule = Rule(action="reject")
    too_fast: TooFastRule = TooFastRule()
