"""Every management and tracking route refuses a call without a key, before anything else
(body validation included). Routes are discovered from the apps, so a new route without a
key check fails this test."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from services.attribution.app import create_app as attribution_app
from services.links.app import create_app as links_app
from services.notifications.app import create_app as notifications_app
from services.rewards.app import create_app as rewards_app
from shared.settings import ServiceSettings

APPS = {
    "links": links_app,
    "attribution": attribution_app,
    "rewards": rewards_app,
    "notifications": notifications_app,
}


# Public on purpose: the unguessable token in the path is the credential; Stripe's deliveries
# are authenticated by their signature (tests/integration/attribution/test_attribution_stripe.py).
PUBLIC = {
    ("links", "GET", "/v1/scoreboards/{token}"),
    ("attribution", "POST", "/v1/stripe/{endpoint_id}/events"),
}


def _routes() -> list[tuple[str, str, str]]:
    """Every documented /v1 operation of every service, from its OpenAPI document, but the
    few that are public by design."""
    found = []
    for name, factory in APPS.items():
        for path, operations in factory().openapi()["paths"].items():
            if path.startswith("/v1/"):
                found.extend(
                    (name, method.upper(), path)
                    for method in sorted(operations)
                    if (name, method.upper(), path) not in PUBLIC
                )
    return found


def test_public_routes_are_documented() -> None:
    for name, method, path in PUBLIC:
        assert method.lower() in APPS[name]().openapi()["paths"][path]


ROUTES = _routes()


def test_there_are_routes_to_check() -> None:
    assert {name for name, _, _ in ROUTES} == set(APPS)


@pytest.mark.parametrize(("service", "method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer "])
async def test_route_refuses_a_call_without_a_key(
    service: str, method: str, path: str, authorization: str | None
) -> None:
    app: FastAPI = APPS[service]()
    # No lifespan: a missing key must be refused before the database is ever touched.
    app.state.runtime = SimpleNamespace(
        settings=ServiceSettings(admin_api_key=SecretStr("admin-secret")), pool=None
    )
    url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
    headers = {"Authorization": authorization} if authorization is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(method, url, headers=headers, content=b"{not json")
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "Authorization"
