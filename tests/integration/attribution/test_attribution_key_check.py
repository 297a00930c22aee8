"""Attribution asking links about program keys, with links out of reach: a key this service
has not heard of is refused (503, fail closed) with a problem that says what to do; a key it
knows from its event keeps working."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from devstack.embedded import free_port
from services.attribution.app import create_app
from services.attribution.settings import AttributionSettings
from shared.http.auth import forget_cached_keys, new_program_key
from shared.http.problems import PROBLEM_JSON
from shared.settings import ServiceSettings
from tests.integration.attribution.conftest import Tracking
from tests.integration.kafka_helpers import migrated


@pytest.fixture
async def links_down(settings: ServiceSettings) -> AsyncIterator[Tracking]:
    """The attribution app with LINKS_INTERNAL_URL on a port nothing listens on."""
    await migrated(settings.database_url, "attribution")
    app_settings = AttributionSettings(
        **{
            **settings.model_dump(),
            "service_name": "attribution",
            "admin_api_key": SecretStr("test-admin"),
            "links_internal_url": f"http://127.0.0.1:{free_port()}",
            "key_check_timeout_s": 0.5,
        }
    )
    forget_cached_keys()
    app = create_app(app_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            t = Tracking(client, app.state.runtime.pool, app.state.runtime)
            await t.publish_program()
            yield t


async def test_links_down_refuses_a_key_not_known_here_and_keeps_known_ones(
    links_down: Tracking,
) -> None:
    links_down.key = new_program_key().secret  # issued by links, its event not arrived
    response = await links_down.get("referrals")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["type"].endswith("/key-check-unavailable")
    assert problem["field"] == "Authorization"
    assert "Retry in a few seconds" in problem["detail"]

    await links_down.issue_key()  # a key whose apikey.issued event has been applied
    assert (await links_down.get("referrals")).status_code == 200
    # Refused, not let through, however often it is tried.
    links_down.key = new_program_key().secret
    statuses = {(await links_down.get("referrals")).status_code for _ in range(5)}
    assert statuses == {503}
