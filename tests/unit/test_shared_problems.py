"""RFC 9457 problem documents from a tiny app: no lifespan, no database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.exceptions._base import DataError as ClientDataError
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from services.links.programs.models import ProgramCreate
from shared.http.problems import PROBLEM_JSON, TYPE_BASE, Problem, install_problem_handlers
from shared.http.unstorable import unstorable_field

SECRET = "db password is hunter2 for alice@example.com"


class Order(BaseModel):
    order_id: str = Field(min_length=1)
    amount: int = Field(ge=0)


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/conflict")
    async def conflict() -> None:
        raise Problem(409, "already-exists", "Order order-1 exists", field="order_id", id="o-1")

    @app.get("/auth")
    async def auth() -> None:
        raise Problem(
            401, "missing-credentials", "Send a key", headers={"WWW-Authenticate": "Bearer"}
        )

    @app.get("/teapot")
    async def teapot() -> None:
        raise Problem(418, "teapot", "I am a teapot")

    @app.get("/http")
    async def http() -> None:
        raise HTTPException(status_code=403, detail="nope")

    @app.post("/orders")
    async def orders(body: Order) -> dict[str, str]:
        return {"order_id": body.order_id}

    @app.post("/programs")
    async def programs(body: ProgramCreate) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET)

    @app.post("/batch")
    async def batch(body: list[Order]) -> int:
        return len(body)

    @app.post("/store")
    async def store(body: dict[str, Any], note: str = "") -> None:
        # What asyncpg raises when Postgres refuses a value (its message quotes the value).
        raise asyncpg.exceptions.CharacterNotInRepertoireError(SECRET)

    @app.post("/encode")
    async def encode(body: dict[str, Any]) -> None:
        # What asyncpg raises before sending an integer its column cannot hold.
        raise ClientDataError(
            "invalid input for query argument $2: 3000000000 (value out of int32 range)"
        )

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # In process: the ASGI app is called directly, nothing listens on a socket.
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith(TYPE_BASE)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_problem_raised_by_a_route(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/conflict"), 409)
    assert body == {
        "type": TYPE_BASE + "already-exists",
        "title": "Conflict",
        "status": 409,
        "detail": "Order order-1 exists",
        "instance": "/conflict",
        "field": "order_id",
        "id": "o-1",
    }


async def test_problem_headers_are_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth")
    body = _problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["title"] == "Unauthorized"
    assert body["type"] == TYPE_BASE + "missing-credentials"
    assert "field" not in body


async def test_unknown_status_gets_a_generic_title(client: httpx.AsyncClient) -> None:
    assert _problem(await client.get("/teapot"), 418)["title"] == "Error"


async def test_http_exception_becomes_a_problem(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/http"), 403)
    assert body["type"] == TYPE_BASE + "forbidden"
    assert body["detail"] == "nope"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/no/such/route"), 404)
    assert body["type"] == TYPE_BASE + "not-found"
    assert body["title"] == "Not found"
    assert body["instance"] == "/no/such/route"


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    body = _problem(await client.delete("/conflict"), 405)
    assert body["type"] == TYPE_BASE + "method-not-allowed"


async def test_validation_error_names_the_field(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/orders", json={"order_id": "o-1", "amount": -5}), 422)
    assert body["type"] == TYPE_BASE + "validation-error"
    assert body["title"] == "Unprocessable content"
    assert body["field"] == "amount"
    assert body["detail"].startswith("amount: ")
    assert body["errors"] == [{"field": "amount", "message": body["detail"][len("amount: ") :]}]


async def test_validation_error_lists_every_field(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/orders", json={"order_id": "", "amount": "x"}), 422)
    assert sorted(e["field"] for e in body["errors"]) == ["amount", "order_id"]
    assert body["field"] == body["errors"][0]["field"]


async def test_missing_body_is_a_422_problem(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/orders"), 422)
    assert body["field"] == "body"


async def test_bad_path_parameter_names_it(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/items/abc"), 422)
    assert body["field"] == "item_id"


async def test_nested_field_path_is_dotted(client: httpx.AsyncClient) -> None:
    payload = {"name": "p", "definition": {"destination_url": "https://a.example/", "x": 1}}
    body = _problem(await client.post("/programs", json=payload), 422)
    assert body["field"] == "definition.x"
    payload = {
        "name": "p",
        "definition": {"destination_url": "https://a.example/", "click_id_param": "1bad"},
    }
    body = _problem(await client.post("/programs", json=payload), 422)
    assert body["field"] == "definition.click_id_param"


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"destination_url": "javascript:alert(1)"}, "definition.destination_url"),
        (
            {"destination_url": "https://evil.example/", "allowed_hosts": ["shop.example"]},
            "definition.destination_url",
        ),
        (
            {"destination_url": "https://a.example/", "fallback_url": "ftp://a.example/"},
            "definition.fallback_url",
        ),
    ],
)
async def test_url_validation_error_names_the_url_field(
    client: httpx.AsyncClient, definition: dict, field: str
) -> None:
    body = _problem(
        await client.post("/programs", json={"name": "p", "definition": definition}), 422
    )
    assert body["field"] == field


async def test_url_validation_error_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    payload = {"name": "p", "definition": {"destination_url": "javascript:alert(1)"}}
    body = _problem(await client.post("/programs", json=payload), 422)
    assert "absolute http(s) URL" in body["detail"]


async def test_unexpected_exception_is_a_500_problem_without_details(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="shared.http.problems"):
        response = await client.get("/boom")
    body = _problem(response, 500)
    assert body["type"] == TYPE_BASE + "internal-error"
    assert body["title"] == "Internal server error"
    assert body["instance"] == "/boom"
    for leak in ("hunter2", "alice@example.com", "RuntimeError", "Traceback"):
        assert leak not in response.text
    # The operator still gets the error, with its traceback, in the server log.
    (record,) = [r for r in caplog.records if r.name == "shared.http.problems"]
    assert record.getMessage() == "unhandled error on GET /boom"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_a_list_index_at_the_top_of_the_body_is_not_a_bare_number(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/batch", json=[{"order_id": "o", "amount": 1}, {"amount": 1}])
    body = _problem(response, 422)
    assert body["field"] == "body.1.order_id"


async def test_an_unstorable_value_names_its_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/store", json={"order": {"lines": ["ok", "bad\x00"]}})
    body = _problem(response, 422)
    assert body["type"] == TYPE_BASE + "unstorable-value"
    assert body["field"] == "order.lines.1" and "NUL" in body["detail"]
    assert SECRET not in response.text
    big = _problem(await client.post("/store", json={"amount": 2**63}), 422)
    assert big["field"] == "amount" and "range" in big["detail"]
    query = _problem(await client.post("/store?note=a%00b", json={}), 422)
    assert query["field"] == "note"
    narrow = _problem(await client.post("/encode", json={"a": 1, "b": 3_000_000_000}), 422)
    assert narrow["field"] == "b" and "2147483647" in narrow["detail"]
    unknown = _problem(await client.post("/store", json={"fine": 1}), 422)
    assert "field" not in unknown and SECRET not in unknown["detail"]


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ({"a": "x", "b": [1, {"c": "y\x00"}]}, ("b.1.c", "NUL")),
        ({"a": 2**63 - 1, "b": -(2**63), "c": True}, None),
        ({"a": -(2**63) - 1}, ("a", "range")),
        ("\x00", ("body", "NUL")),
        ({"k\x00": 1}, ("k\\u0000", "NUL")),
        ([1, 2**64], ("body.1", "range")),
    ],
)
def test_unstorable_field(body: Any, found: tuple[str, str] | None) -> None:
    result = unstorable_field(body)
    if found is None:
        assert result is None
    else:
        assert result is not None and result[0] == found[0] and found[1] in result[1]
