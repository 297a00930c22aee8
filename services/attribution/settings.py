from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr

from services.attribution.occurred import TimeBounds
from shared.settings import ServiceSettings

# Used only when PII_HASH_KEY is not set (dev and tests). Production sets its own secret: with
# a public key the hashes are only as strong as an unsalted SHA-256.
DEV_PII_HASH_KEY = "refplat-dev-pii-hash-key"


class AttributionSettings(ServiceSettings):
    service_name: str = "attribution"
    port: int = 8002
    # HMAC-SHA256 key for emails, IPs, device ids and user agents stored by attribution.
    pii_hash_key: SecretStr = SecretStr(DEV_PII_HASH_KEY)
    # How long a signup naming an unknown click or code waits for it before it is given up
    # (unattributed, click_never_arrived / code_never_arrived). See the README for the choice.
    pending_signup_limit_s: float = 6 * 3600.0
    # How often the pending sweep runs: give up overdue signups, and decide any whose click or
    # code arrived while the signup was being recorded.
    pending_sweep_interval_s: float = 5.0
    # A signup's occurred_at may be at most this old (a late import still counts; an ancient
    # one would be judged against windows nobody remembers).
    signup_max_age_s: float = 30 * 24 * 3600.0
    # Bounds of a conversion's or refund's `occurred_at`: older than this many days is refused
    # (a late import the program no longer prices), and so is more than this many seconds in
    # the future (clock skew between the caller's machines and ours).
    occurred_at_max_age_days: float = Field(default=90.0, gt=0, le=36_500)
    occurred_at_clock_skew_s: float = Field(default=300.0, ge=0, le=86_400)
    # A Stripe event whose signature is older than this is refused (a replayed capture);
    # Stripe's own libraries default to 300 s.
    stripe_signature_tolerance_s: int = Field(default=300, ge=1, le=86_400)

    def signup_time_bounds(self) -> TimeBounds:
        return TimeBounds(
            max_age=timedelta(seconds=self.signup_max_age_s),
            clock_skew=timedelta(seconds=self.occurred_at_clock_skew_s),
        )

    def time_bounds(self) -> TimeBounds:
        return TimeBounds(
            max_age=timedelta(days=self.occurred_at_max_age_days),
            clock_skew=timedelta(seconds=self.occurred_at_clock_skew_s),
        )
