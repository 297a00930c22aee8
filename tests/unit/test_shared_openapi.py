"""What every service's OpenAPI document says about errors (shared.http.openapi), and the
answers behind it: problem+json everywhere, the bearer key, 405 with every method of the
path, 400 for a body that is not JSON."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from shared.http.problems import PROBLEM_JSON
from shared.settings import ServiceSettings
from tests.unit.test_api_auth import APPS

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_error_is_documented_as_a_problem_document(service: str) -> None:
    doc = APPS[service]().openapi()
    assert set(doc["components"]["schemas"]["Problem"]["required"]) >= {
        "type",
        "title",
        "status",
        "detail",
    }
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    errors = 0
    for path, operations in doc["paths"].items():
        if path.startswith("/r/"):
            continue  # the redirect answers browsers, with a page
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    errors += 1
                    assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM}}, (
                        f"{method} {path} {status}"
                    )
            if "security" in operation:
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
    assert errors


def test_route_level_statuses_and_constraints_are_in_the_document() -> None:
    doc = APPS["rewards"]().openapi()
    approve = doc["paths"]["/v1/programs/{program_id}/rewards/{reward_id}/approve"]["post"]
    assert {"401", "403", "404", "409", "422"} <= set(approve["responses"])
    assert "503" in approve["responses"]  # a key links must confirm, links out of reach
    redeem = doc["paths"]["/v1/programs/{program_id}/participants/{participant_id}/redemptions"]
    assert {"400", "415", "422"} <= set(redeem["post"]["responses"])
    assert approve["security"] == [{"bearerKey": []}]
    coupons = doc["components"]["schemas"]["CouponsIn"]["properties"]["codes"]["items"]
    assert coupons["pattern"] == r"^[^\x00]*[^\x00\s][^\x00]*$" and coupons["maxLength"] == 200


def test_links_never_answers_503_for_a_key() -> None:
    doc = APPS["links"]().openapi()
    assert not any("503" in op["responses"] for ops in doc["paths"].values() for op in ops.values())


def _app(service: str) -> FastAPI:
    app: FastAPI = APPS[service]()
    # No lifespan: the admin key is checked before the database is ever touched.
    app.state.runtime = SimpleNamespace(
        settings=ServiceSettings(admin_api_key=SecretStr("admin-secret")), pool=None
    )
    return app


async def _call(app: FastAPI, method: str, url: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, url, **kwargs)  # type: ignore[arg-type]


async def test_405_names_every_method_of_the_path() -> None:
    # GET and PATCH are two routes; Starlette's own answer named only the first.
    url = f"/v1/programs/{uuid.uuid4()}/participants/{uuid.uuid4()}/preferences"
    response = await _call(_app("notifications"), "DELETE", url)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"
    assert response.headers["content-type"] == PROBLEM_JSON
    options = await _call(_app("notifications"), "OPTIONS", "/unsubscribe/x")
    assert options.headers["allow"] == "GET, POST"


async def test_a_body_that_is_not_json_is_a_bad_request() -> None:
    response = await _call(
        _app("rewards"),
        "POST",
        f"/v1/programs/{uuid.uuid4()}/coupons",
        headers={"Authorization": "Bearer admin-secret", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/malformed-json")
    assert response.json()["field"] == "body"
    assert "line 1, column 2 (position 1)" in response.json()["detail"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_body_sent_as_another_media_type_is_415(content_type: str | None) -> None:
    headers = {"Authorization": "Bearer admin-secret"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await _call(
        _app("rewards"),
        "POST",
        f"/v1/programs/{uuid.uuid4()}/coupons",
        headers=headers,
        content=b'{"codes": ["A"]}',
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["field"] == "Content-Type"
    assert "application/json" in response.json()["detail"]


async def test_a_body_that_is_not_utf8_is_a_bad_request_with_its_position() -> None:
    response = await _call(
        _app("rewards"),
        "POST",
        f"/v1/programs/{uuid.uuid4()}/coupons",
        headers={"Authorization": "Bearer admin-secret", "Content-Type": "application/json"},
        content=b'{"codes": ["\xff"]}',
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert "not UTF-8 text at line 1, column 13 (position 12)" in response.json()["detail"]
