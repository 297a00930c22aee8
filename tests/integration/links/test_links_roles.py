"""The two roles a links process can play apart (``LINKS_ROLE``), each with the real database
and broker: the gateway alone answers redirects, captures clicks onto ``link.clicked`` and
serves QR codes, with no consumer group and no management routes or pages; the insights role
runs the projector's consumer groups and the APIs and pages, and never answers a redirect."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from services.links.app import create_app
from services.links.gateway.api import Gateway
from services.links.settings import LinksSettings
from shared.contracts import LinkClicked
from tests.integration.kafka_helpers import read_topic
from tests.integration.links.conftest import ADMIN, DEFINITION

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}


@contextlib.asynccontextmanager
async def serving(
    settings: LinksSettings, role: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One process's app of ``role``, served as ``python -m services.links`` serves it."""
    app = create_app(settings.model_copy(update={"links_role": role}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(
            app=Gateway(app, app.state.slot), client=("198.51.100.9", 5000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://links.test") as http:
            yield app, http


async def test_the_gateway_role_alone_redirects_and_publishes_the_click(
    links_settings: LinksSettings,
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with serving(links_settings, "insights") as (insights, management):
        program = await management.post(
            "/v1/programs", headers=admin, json={"name": "roles", "definition": DEFINITION}
        )
        assert program.status_code == 201, program.text
        enrolled = await management.post(
            f"/v1/programs/{program.json()['id']}/participants",
            headers=admin,
            json={"external_user_id": f"user-{uuid.uuid4().hex[:8]}"},
        )
        assert enrolled.status_code == 201, enrolled.text
        code = enrolled.json()["code"]
        # The insights role consumes and never redirects.
        assert {c.name for c in insights.state.runtime.consumers} == {"links", "links-clicks"}
        assert (await management.get(f"/r/{code}")).status_code == 404
        assert insights.state.slot.redirector is None

    async with serving(links_settings, "gateway") as (gateway, http):
        assert gateway.state.runtime.consumers == []
        await asyncio.wait_for(gateway.state.invalidator.positioned.wait(), 15)
        response = await http.get(f"/r/{code}", headers=BROWSER)
        assert response.status_code == 302
        location = urlsplit(response.headers["location"])
        assert location.hostname == "shop.example.com"
        click_id = parse_qs(location.query)["ref_click"][0]

        qr = await http.get(f"/qr/{code}.svg")
        assert qr.status_code == 200
        assert qr.headers["content-type"] == "image/svg+xml"
        assert (await http.get("/healthz")).status_code == 200
        # Nothing else of links is served here.
        assert (
            await http.get(f"/v1/programs/{program.json()['id']}", headers=admin)
        ).status_code == 404
        assert (await http.get("/console/login")).status_code == 404
        assert "/v1/programs" not in gateway.openapi()["paths"]

        records = await read_topic(links_settings, LinkClicked.TOPIC, expect=1, timeout_s=20)
    clicks = [LinkClicked.model_validate_json(r.value) for r in records]
    assert [(str(c.click_id), c.code, c.attributable) for c in clicks] == [(click_id, code, True)]
