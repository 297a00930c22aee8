"""API keys and bearer-token checks, with a Request built from a bare ASGI scope."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from starlette.requests import Request

from shared.http.auth import (
    PROGRAM_KEY_PREFIX,
    bearer_token,
    check_admin,
    hash_key,
    new_program_key,
)
from shared.http.problems import Problem

ADMIN = "admin-key-0123456789"


def _request(authorization: str | None = None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_program_key_format() -> None:
    key = new_program_key()
    assert PROGRAM_KEY_PREFIX == "rk_"
    match = re.fullmatch(r"rk_(?P<key_id>[0-9a-f]{12})_(?P<random>[A-Za-z0-9_-]+)", key.secret)
    assert match, key.secret
    assert match["key_id"] == key.key_id
    random_part = match["random"]
    decoded = base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))
    assert len(decoded) >= 32
    assert key.key_hash == hash_key(key.secret)


def test_program_keys_differ() -> None:
    keys = [new_program_key() for _ in range(200)]
    assert len({k.secret for k in keys}) == 200
    assert len({k.key_id for k in keys}) == 200
    assert len({k.key_hash for k in keys}) == 200


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("rk_abc") == hashlib.sha256(b"rk_abc").hexdigest()
    assert hash_key("rk_abc") == hash_key("rk_abc")
    assert hash_key("rk_abc") != hash_key("rk_abd")
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(""))


def test_hash_does_not_contain_the_secret() -> None:
    key = new_program_key()
    assert key.secret not in key.key_hash


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("Bearer a b", "a b")],
)
def test_bearer_token(header: str, token: str) -> None:
    assert bearer_token(_request(header)) == token


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Bearer    ", "Basic abc", "abc"]
)
def test_bearer_token_missing_or_wrong_scheme_is_401(header: str | None) -> None:
    with pytest.raises(Problem) as caught:
        bearer_token(_request(header))
    problem = caught.value
    assert problem.status == 401
    assert problem.type == "missing-credentials"
    assert problem.field == "Authorization"
    assert problem.headers == {"WWW-Authenticate": "Bearer"}


def test_check_admin_accepts_the_admin_key() -> None:
    assert check_admin(_request(f"Bearer {ADMIN}"), ADMIN) is None


@pytest.mark.parametrize("token", ["wrong", ADMIN + "x", ADMIN[:-1], ADMIN.upper()])
def test_check_admin_rejects_another_key_with_403(token: str) -> None:
    with pytest.raises(Problem) as caught:
        check_admin(_request(f"Bearer {token}"), ADMIN)
    assert caught.value.status == 403
    assert caught.value.type == "forbidden"


@pytest.mark.parametrize("admin_key", [None, ""])
def test_check_admin_without_a_configured_key_refuses_everyone(admin_key: str | None) -> None:
    with pytest.raises(Problem) as caught:
        check_admin(_request("Bearer anything"), admin_key)
    assert caught.value.status == 403
    with pytest.raises(Problem) as caught:
        check_admin(_request("Bearer "), admin_key)
    assert caught.value.status == 401


@pytest.mark.parametrize("header", [None, "Basic " + ADMIN, ADMIN])
def test_check_admin_without_bearer_is_401(header: str | None) -> None:
    with pytest.raises(Problem) as caught:
        check_admin(_request(header), ADMIN)
    assert caught.value.status == 401
