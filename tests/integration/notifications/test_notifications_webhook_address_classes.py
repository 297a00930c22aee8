"""Webhook endpoints at IPv6 forms of private IPv4 addresses (NAT64, 6to4, Teredo, mapped)
are refused by the real notifications API, at registration and at update."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from services.notifications.app import create_app
from services.notifications.settings import NotificationsSettings
from shared.settings import ServiceSettings
from tests.integration.kafka_helpers import migrated

ADMIN = {"Authorization": "Bearer admin"}
REFUSED = [
    # reported: accepted with 201 before
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[2002:7f00:1::]/",
    # the other carrying forms
    "http://[2001:0:4136:e378:8000:63bf:3f57:fefe]/",  # Teredo, client 192.168.1.1
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b:1::a00:1]/",
]


@pytest.fixture
async def notifications(settings: ServiceSettings) -> AsyncIterator[httpx.AsyncClient]:
    await migrated(settings.database_url, "notifications")
    app_settings = NotificationsSettings(
        **{
            **settings.model_dump(),
            "service_name": "notifications",
            "admin_api_key": SecretStr("admin"),
            "outbound_allow_private_networks": False,
        }
    )
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_registration_refuses_every_carrying_form(notifications: httpx.AsyncClient) -> None:
    program = uuid.uuid4()
    for url in REFUSED:
        response = await notifications.post(
            f"/v1/programs/{program}/webhooks", headers=ADMIN, json={"url": url}
        )
        assert response.status_code == 422, (url, response.text)
        assert response.json()["field"] == "url"
        assert "non-public" in response.json()["detail"]
    listed = await notifications.get(f"/v1/programs/{program}/webhooks", headers=ADMIN)
    assert listed.status_code == 200 and listed.json() == []


async def test_update_refuses_them_too(notifications: httpx.AsyncClient) -> None:
    program = uuid.uuid4()
    created = await notifications.post(
        f"/v1/programs/{program}/webhooks",
        headers=ADMIN,
        json={"url": "https://[2606:4700:4700::1111]/hook"},
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()["id"]
    for url in REFUSED[:4]:
        response = await notifications.patch(
            f"/v1/programs/{program}/webhooks/{endpoint}", headers=ADMIN, json={"url": url}
        )
        assert response.status_code == 422, (url, response.text)
    kept = await notifications.get(f"/v1/programs/{program}/webhooks/{endpoint}", headers=ADMIN)
    assert kept.json()["url"] == "https://[2606:4700:4700::1111]/hook"
