"""The SDK build's document handling (``sdk/documents.py``) and the Python SDK's mapping of
error answers to typed exceptions (``sdk/python/referral_platform_client/problems.py``), on
hand-made documents and answers."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import httpx
import pytest

from sdk.documents import merge, service_document
from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "sdk_problems", REPO_ROOT / "sdk" / "python" / "referral_platform_client" / "problems.py"
)
assert _spec is not None and _spec.loader is not None
problems = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = problems  # dataclasses look their module up there
_spec.loader.exec_module(problems)


def _doc(paths: dict[str, Any], schemas: dict[str, Any], tag: str) -> dict[str, Any]:
    for ops in paths.values():
        for op in ops.values():
            op["tags"] = [tag]
    return {
        "openapi": "3.1.0",
        "info": {"title": tag, "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _op(op_id: str, ref: str) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "responses": {
            "200": {"content": {"application/json": {"schema": {"$ref": ref}}}},
        },
    }


PROBLEM = {"type": "object", "properties": {"status": {"type": "integer"}}}


def test_merge_keeps_shared_schemas_once_and_prefixes_clashing_ones() -> None:
    links = _doc(
        {"/v1/a": {"get": _op("get_a", "#/components/schemas/Thing")}},
        {"Thing": {"type": "object", "title": "links"}, "Problem": PROBLEM},
        "links",
    )
    rewards = _doc(
        {"/v1/b": {"get": _op("get_b", "#/components/schemas/Thing")}},
        {"Thing": {"type": "string"}, "Problem": PROBLEM},
        "rewards",
    )
    merged = merge({"links": links, "rewards": rewards})
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"LinksThing", "RewardsThing", "Problem"}
    a = merged["paths"]["/v1/a"]["get"]["responses"]["200"]["content"]["application/json"]
    b = merged["paths"]["/v1/b"]["get"]["responses"]["200"]["content"]["application/json"]
    assert a["schema"]["$ref"] == "#/components/schemas/LinksThing"
    assert b["schema"]["$ref"] == "#/components/schemas/RewardsThing"
    assert schemas["RewardsThing"] == {"type": "string"}


def test_merge_refuses_one_path_and_method_served_by_two_services() -> None:
    ref = "#/components/schemas/Problem"
    one = _doc({"/v1/x": {"get": _op("x", ref)}}, {"Problem": PROBLEM}, "links")
    two = _doc({"/v1/x": {"get": _op("y", ref)}}, {"Problem": PROBLEM}, "rewards")
    with pytest.raises(ValueError, match="GET /v1/x is served by two services"):
        merge({"links": one, "rewards": two})


def test_merge_names_an_operation_id_two_services_share_by_service() -> None:
    ref = "#/components/schemas/Problem"
    one = _doc({"/v1/x": {"post": _op("approve", ref)}}, {"Problem": PROBLEM}, "links")
    two = _doc({"/v1/y": {"post": _op("approve", ref)}}, {"Problem": PROBLEM}, "rewards")
    merged = merge({"links": one, "rewards": two})
    ids = {p: ops["post"]["operationId"] for p, ops in merged["paths"].items()}
    assert ids == {"/v1/x": "links_approve", "/v1/y": "rewards_approve"}


def test_service_document_keeps_the_public_api_named_by_handler() -> None:
    doc = service_document("attribution")
    assert "/v1/conversions" in doc["paths"]
    assert all(path.startswith("/v1/") for path in doc["paths"])
    post = doc["paths"]["/v1/conversions"]["post"]
    assert post["operationId"] == "conversion"
    assert post["tags"] == ["attribution"]
    refs = json.dumps(doc["paths"])
    # Every schema kept is used; every schema used is kept.
    assert "#/components/schemas/ConversionIn" in refs
    assert "ConversionIn" in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]
    links = service_document("links")
    assert not any(p.startswith(("/v1/internal/", "/r/", "/qr/", "/s/")) for p in links["paths"])


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "AuthError"),
        (403, "AuthError"),
        (404, "NotFoundError"),
        (409, "ConflictError"),
        (422, "ValidationError"),
        (429, "RateLimitError"),
        (500, "ProblemError"),
    ],
)
def test_error_answers_become_typed_problems(status: int, kind: str) -> None:
    body = {
        "type": "https://referral-platform.dev/problems/program-not-found",
        "title": "Not found",
        "status": status,
        "detail": "No program 42",
        "field": "program_id",
        "errors": [{"field": "program_id", "message": "unknown"}],
        "extra": 1,
    }
    error = problems.problem_from(
        status, json.dumps(body).encode(), httpx.Headers({"Retry-After": "3"})
    )
    assert type(error).__name__ == kind
    assert isinstance(error, problems.ProblemError)
    assert (error.status, error.kind, error.field) == (status, "program-not-found", "program_id")
    assert error.errors == (problems.FieldProblem("program_id", "unknown"),)
    assert error.body["extra"] == 1
    if status == 429:
        assert error.retry_after == 3.0


def test_an_answer_that_is_not_a_problem_document_is_still_a_problem() -> None:
    error = problems.problem_from(502, b"<html>Bad gateway</html>", httpx.Headers())
    assert type(error) is problems.ProblemError
    assert (error.status, error.type, error.title) == (502, "about:blank", "HTTP 502")
    assert "Bad gateway" in error.detail
