"""Program URLs are judged as a browser reads them: the open redirect through
``https://evil.example\\@good.example/`` (Python reads good.example, browsers evil.example)
is refused where the program is written, so ``/r/{code}`` can never send anyone there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.links.conftest import Links

BACKSLASH_TRICK = "https://evil.example\\@good.example/"
GOOD = {
    "destination_url": "https://good.example/welcome",
    "allowed_hosts": ["good.example"],
    "fallback_url": "https://good.example/sorry",
}


def _assert_refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == field
    assert "backslash" in problem["detail"]


@pytest.mark.parametrize("name", ["destination_url", "fallback_url"])
async def test_a_program_with_the_backslash_trick_is_refused(links: Links, name: str) -> None:
    response = await links.http.post(
        "/v1/programs",
        headers=links.admin,
        json={"name": "trick", "definition": {**GOOD, name: BACKSLASH_TRICK}},
    )
    _assert_refused(response, f"definition.{name}")
    assert await links.app.state.runtime.pool.fetchval("SELECT count(*) FROM programs") == 0


async def test_a_version_with_the_backslash_trick_is_refused_and_the_redirect_stays(
    links: Links,
) -> None:
    program = await links.program(**GOOD)
    response = await links.http.post(
        f"/v1/programs/{program['id']}/versions",
        headers=links.admin,
        json={"definition": {**GOOD, "destination_url": BACKSLASH_TRICK}},
    )
    _assert_refused(response, "definition.destination_url")
    code = (await links.enrol(program["id"])).json()["code"]
    redirect = await links.click(code, headers={"User-Agent": "Mozilla/5.0 Chrome/126.0"})
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith("https://good.example/welcome?")


async def test_a_fulfilment_webhook_url_is_checked_the_same_way(links: Links) -> None:
    rewards = {"fulfilment": {"kind": "webhook", "webhook_url": "https://hooks.example\\@x/"}}
    response = await links.http.post(
        "/v1/programs",
        headers=links.admin,
        json={"name": "hook", "definition": {**GOOD, "rewards": rewards}},
    )
    _assert_refused(response, "definition.rewards.fulfilment.webhook_url")
