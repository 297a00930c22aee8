"""Calls the platform makes to addresses companies give it (webhooks, fulfilment endpoints):
Standard Webhooks signing, and a guard against server-side request forgery."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from shared.http.addresses import is_public_address
from shared.http.urls import UrlRefused, checked_web_url

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


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address a name resolves to (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _public_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        addresses = await resolver(host, port)
    except OSError as exc:
        raise TargetRefused(f"host {host!r} does not resolve") from exc
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise TargetRefused(f"host {host!r} resolves to a non-public address")
    return addresses


async def check_target(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Refuse URLs the platform would not store (see ``shared.http.urls``), and hosts that
    resolve to private, loopback, link-local or otherwise non-public addresses unless the
    deployment allows them. The connection itself is checked again: :func:`outbound_client`."""
    try:
        target = checked_web_url(url)
    except UrlRefused as exc:
        raise TargetRefused(f"the URL {exc}") from exc
    if not allow_private:
        await _public_addresses(target.host, target.port, resolver)


class _CheckedNetwork(httpcore.AsyncNetworkBackend):
    """Connects only to an address it has just checked, so a name that resolved to a public
    address when it was checked and to a private one now (DNS rebinding) is refused. TLS still
    verifies and sends SNI for the name: httpcore takes those from the request's URL."""

    def __init__(self, resolver: Resolver) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):  # the connect timeout covers the look-up
                addresses = await _public_addresses(host, port, self._resolver)
        except TargetRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls go to public TCP addresses only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, resolver: Resolver) -> None:
        super().__init__()
        # httpx does not take a network backend; its pool does (httpcore's public API).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_CheckedNetwork(resolver),
        )


def outbound_client(
    *, timeout: float, allow_private: bool, resolver: Resolver = resolve
) -> httpx.AsyncClient:
    """The HTTP client for calls to addresses companies give the platform: no redirects
    followed, no proxy from the environment (the proxy would connect, unchecked), and unless
    private networks are allowed, connections only to public addresses."""
    transport = None if allow_private else _CheckedTransport(resolver)
    return httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
