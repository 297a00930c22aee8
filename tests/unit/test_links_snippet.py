"""The browser snippet as the gateway serves it: headers for a cross-origin, SRI-pinned,
year-long-cached script, the ETag, the integrity endpoint, and what the file may not contain."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.links.app import _parts
from services.links.gateway import snippet
from services.links.settings import LinksSettings

# Version 1 is frozen: pages pin this hash. Changing the file means shipping v2 (a new static
# file and route), not editing this constant.
V1_INTEGRITY = "sha384-pNsmPw91xHQEku+qrhS82lCs950XTjpoWcGzQvNvMiE2HdEFtZTLIJJR13vajejk"


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(snippet.router)
    return TestClient(app)


def test_served_as_a_cacheable_cross_origin_script(client: TestClient) -> None:
    response = client.get("/snippet/v1/referral.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["access-control-allow-origin"] == "*"  # SRI cross-origin needs CORS
    assert response.headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert len(response.content) < 4096, "the snippet stays small"


def test_etag_revalidation(client: TestClient) -> None:
    etag = client.get("/snippet/v1/referral.js").headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get("/snippet/v1/referral.js", headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
    other = client.get("/snippet/v1/referral.js", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.content


def test_integrity_is_the_served_files_sha384_and_v1_is_frozen(client: TestClient) -> None:
    body = client.get("/snippet/v1/referral.js").content
    expected = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
    answer = client.get("/snippet/v1/integrity").json()
    assert answer == {"path": "/snippet/v1/referral.js", "integrity": expected, "bytes": len(body)}
    assert expected == V1_INTEGRITY, "v1 changed: ship the change as v2 (pages pin v1's hash)"


def test_no_dynamic_code_and_no_third_party_source() -> None:
    source = snippet.snippet_v1().body.decode()
    for banned in ("eval(", "Function(", "innerHTML", "document.write", 'setTimeout("', "://"):
        assert banned not in source, banned
    assert source.isascii()


@pytest.mark.parametrize(
    ("role", "served"), [("all", True), ("gateway", True), ("insights", False)]
)
def test_served_by_the_roles_that_serve_redirects(role: str, served: bool) -> None:
    routers, _ = _parts(role, LinksSettings(links_role=role))
    assert (snippet.router in routers) is served
