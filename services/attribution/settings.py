from __future__ import annotations

from pydantic import SecretStr

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
