"""Personal data as attribution keeps it: never in clear, only as HMAC-SHA256 under the
``PII_HASH_KEY`` setting, so equal inputs compare equal and a leaked table cannot be reversed
by hashing a dictionary of emails or the IPv4 space without the key."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

# Providers that ignore dots in the local part (and alias one another's domains).
_DOT_BLIND = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(email: str) -> str:
    """Case-folded; ``+tag`` removed everywhere; dots removed where the provider ignores them.

    ``John.Doe+promo@GoogleMail.com`` and ``johndoe@gmail.com`` are the same mailbox."""
    local, sep, domain = email.strip().lower().rpartition("@")
    if not sep:
        return email.strip().lower()
    local = local.split("+", 1)[0]
    if domain in _DOT_BLIND:
        domain = _DOT_BLIND[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return email.strip().lower().rpartition("@")[2]


def normalise_ip(ip: str) -> str:
    """The canonical text of an address (so ``::ffff:1.2.3.4`` and ``1.2.3.4`` match)."""
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


class Hasher:
    """Keyed hashes, one domain label per kind so an email hash never equals an IP hash."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def hash(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def email(self, email: str | None) -> str | None:
        return self.hash("email", normalise_email(email)) if email else None

    def domain(self, email: str | None) -> str | None:
        return self.hash("domain", email_domain(email)) if email else None

    def ip(self, ip: str | None) -> str | None:
        return self.hash("ip", normalise_ip(ip)) if ip else None

    def device(self, device_id: str | None) -> str | None:
        return self.hash("device", device_id.strip()) if device_id else None

    def user_agent(self, user_agent: str | None) -> str | None:
        return self.hash("ua", user_agent) if user_agent else None

    def customer(self, customer_id: str) -> str:
        """A customer id the company told us of in bulk (imported existing customers)."""
        return self.hash("customer", customer_id)
