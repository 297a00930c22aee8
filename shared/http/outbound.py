"""Calls the platform makes to addresses companies give it (webhooks, fulfilment endpoints):
Standard Webhooks signing, and a guard against server-side request forgery."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


class TargetRefused(ValueError):
    """The URL points somewhere the platform must not call."""


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class SignedRequest:
    headers: dict[str, str]
    body: str


def sign(secret: str, message_id: str, timestamp: datetime, body: str) -> SignedRequest:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` per Standard Webhooks.
    Several secrets (rotation) sign with each, space-separated, as the spec allows."""
    signature = Webhook(secret).sign(message_id, timestamp, body)
    return SignedRequest(
        headers={
            "webhook-id": message_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        },
        body=body,
    )


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs, and hosts that resolve to private, loopback, link-local or
    otherwise non-global addresses unless the deployment allows them."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused("only absolute http(s) URLs can be called")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except socket.gaierror as exc:
        raise TargetRefused(f"host {parts.hostname!r} does not resolve") from exc
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            raise TargetRefused(f"host {parts.hostname!r} resolves to a non-public address")
