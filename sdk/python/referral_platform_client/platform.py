"""The hand-written front of the generated client: one object for the four services (each has
its own base URL), error answers raised as typed ``ProblemError``s, and an ``Idempotency-Key``
on every write call that takes one (generated when the caller gives none, so a retry of that
call after a lost answer is applied once).

    platform = ReferralPlatform(ServiceUrls.local(), token=admin_key)
    program = platform.call(create_program.sync_detailed, body=ProgramCreate(...))

This file is copied into the generated package by ``sdk/build.py``; its imports are the
generated modules'."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import httpx

from .client import AuthenticatedClient
from .models.problem import Problem
from .problems import problem_from
from .types import UNSET, Response

T = TypeVar("T")
IDEMPOTENCY_PARAMETER = "idempotency_key"
# A keyed call is sent again after a transport error (its key makes the repeat harmless).
RETRIES = 2


@dataclass(frozen=True)
class ServiceUrls:
    links: str
    attribution: str
    rewards: str
    notifications: str

    @classmethod
    def local(cls, host: str = "127.0.0.1") -> ServiceUrls:
        """``make dev``'s default ports."""
        return cls(*(f"http://{host}:{port}" for port in (8001, 8002, 8003, 8004)))


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class ReferralPlatform:
    """``token``: the admin key (programs, keys) or a program's secret key (everything a
    program's server does: enrol, signups, conversions, balances)."""

    def __init__(self, urls: ServiceUrls, token: str, *, timeout_s: float = 10.0) -> None:
        self.urls = urls
        self.token = token
        self.timeout_s = timeout_s
        self._clients = {
            service: AuthenticatedClient(
                base_url=getattr(urls, service),
                token=token,
                timeout=httpx.Timeout(timeout_s),
                raise_on_unexpected_status=False,
            )
            for service in ("links", "attribution", "rewards", "notifications")
        }

    def with_token(self, token: str) -> ReferralPlatform:
        """The same services, called with another key."""
        return ReferralPlatform(self.urls, token, timeout_s=self.timeout_s)

    def client_for(self, endpoint: Callable[..., Any]) -> AuthenticatedClient:
        """The client of the service that serves ``endpoint`` (a generated function lives in
        ``referral_platform_client.api.<service>.<operation>``)."""
        service = endpoint.__module__.split(".")[-2]
        try:
            return self._clients[service]
        except KeyError:
            raise ValueError(f"{endpoint.__module__} is not a generated API call") from None

    # The answer's type is the endpoint's without ``Problem`` (never returned, raised) where a
    # type checker can infer it: when the endpoint has one success model. With two (a
    # conversion: ``ConversionOut | HeldOut``) it stays the whole union: narrow with isinstance.
    @overload
    def call(self, endpoint: Callable[..., Response[Problem | T]], /, **kwargs: Any) -> T: ...
    @overload
    def call(self, endpoint: Callable[..., Response[T]], /, **kwargs: Any) -> T: ...
    def call(self, endpoint: Callable[..., Response[Any]], /, **kwargs: Any) -> Any:
        """Call a generated ``*.sync_detailed`` function; its parsed answer, or a typed
        ``ProblemError`` for an error answer."""
        kwargs = _with_idempotency_key(endpoint, kwargs)
        client = self.client_for(endpoint)
        for attempt in range(RETRIES + 1):
            try:
                return _answer(endpoint(client=client, **kwargs))
            except httpx.TransportError:
                if attempt == RETRIES or not _takes_key(endpoint):
                    raise
        raise AssertionError("unreachable")

    @overload
    async def acall(
        self, endpoint: Callable[..., Awaitable[Response[Problem | T]]], /, **kwargs: Any
    ) -> T: ...
    @overload
    async def acall(
        self, endpoint: Callable[..., Awaitable[Response[T]]], /, **kwargs: Any
    ) -> T: ...
    async def acall(
        self, endpoint: Callable[..., Awaitable[Response[Any]]], /, **kwargs: Any
    ) -> Any:
        """``call`` for a generated ``*.asyncio_detailed`` function."""
        kwargs = _with_idempotency_key(endpoint, kwargs)
        client = self.client_for(endpoint)
        for attempt in range(RETRIES + 1):
            try:
                return _answer(await endpoint(client=client, **kwargs))
            except httpx.TransportError:
                if attempt == RETRIES or not _takes_key(endpoint):
                    raise
        raise AssertionError("unreachable")


def _takes_key(endpoint: Callable[..., Any]) -> bool:
    return IDEMPOTENCY_PARAMETER in inspect.signature(endpoint).parameters


def _with_idempotency_key(endpoint: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    if _takes_key(endpoint) and kwargs.get(IDEMPOTENCY_PARAMETER) in (None, UNSET):
        return {**kwargs, IDEMPOTENCY_PARAMETER: new_idempotency_key()}
    return kwargs


def _answer(response: Response[Any]) -> Any:
    if response.status_code >= 400:
        raise problem_from(response.status_code, response.content, httpx.Headers(response.headers))
    return response.parsed  # a success answer's model
