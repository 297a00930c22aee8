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
