"""``ProgramDefinitionIn``: a redirect may only go to an absolute http(s) URL on an allowed
host."""

from __future__ import annotations

import pydantic
import pytest

from services.links.participants.models import ParticipantCreate
from services.links.programs.models import ProgramCreate, ProgramDefinitionIn

HOSTS = ["shop.example.com", "www.shop.example.com"]


def _definition(**fields: object) -> ProgramDefinitionIn:
    data: dict[str, object] = {"destination_url": "https://shop.example.com/welcome"}
    data.update(fields)
    return ProgramDefinitionIn.model_validate(data)


def _error(**fields: object) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        _definition(**fields)
    return str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/welcome",
        "http://shop.example.com",
        "https://SHOP.Example.com/x?y=1#z",
        "https://www.shop.example.com:8443/",
    ],
)
def test_accepts_allowed_http_urls(url: str) -> None:
    d = _definition(destination_url=url, allowed_hosts=HOSTS, fallback_url=url)
    assert d.destination_url == url
    assert d.fallback_url == url


def test_allowed_hosts_are_case_insensitive() -> None:
    assert _definition(allowed_hosts=["Shop.EXAMPLE.com"]).allowed_hosts == ["Shop.EXAMPLE.com"]


def test_any_host_when_no_allowed_hosts_are_given() -> None:
    assert _definition(destination_url="https://anywhere.example/").allowed_hosts == []


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/",
        "https://shop.example.com.evil.example/",
        "https://evilshop.example.com/",
        "https://example.com/",
        "https://shop.example.com@evil.example/",
    ],
)
def test_rejects_a_destination_outside_allowed_hosts(url: str) -> None:
    assert "not in allowed_hosts" in _error(destination_url=url, allowed_hosts=HOSTS)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.domain)",
        "ftp://shop.example.com/file",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "mailto:someone@shop.example.com",
        "/relative/path",
        "shop.example.com/welcome",
        "//shop.example.com/welcome",
        "https:///no-host",
        "",
    ],
)
def test_rejects_a_destination_that_is_not_absolute_http(url: str) -> None:
    assert "absolute http(s) URL" in _error(destination_url=url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("javascript:alert(1)", "must be an absolute http(s) URL"),
        ("/sorry", "must be an absolute http(s) URL"),
        ("ftp://shop.example.com/", "must be an absolute http(s) URL"),
        ("https://evil.example/", "host 'evil.example' is not in allowed_hosts"),
    ],
)
def test_fallback_url_is_checked_the_same_way(url: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        _definition(fallback_url=url, allowed_hosts=HOSTS)
    [error] = caught.value.errors()
    assert error["loc"] == ("fallback_url",)
    assert error["msg"] == message


@pytest.mark.parametrize(
    "param", ["", "1ref", "_ref", "ref click", "ref&x=1", "ref=1", "a" * 41, "réf", "ref%20"]
)
def test_rejects_a_bad_click_id_param(param: str) -> None:
    assert "click_id_param" in _error(click_id_param=param)


@pytest.mark.parametrize("param", ["ref_click", "r", "rc-1", "R" + "a" * 39])
def test_accepts_a_good_click_id_param(param: str) -> None:
    assert _definition(click_id_param=param).click_id_param == param


def test_destination_has_a_length_limit() -> None:
    long = "https://shop.example.com/" + "a" * 2000
    assert "destination_url" in _error(destination_url=long)


def test_unknown_fields_are_refused() -> None:
    assert "destination" in _error(destination="https://shop.example.com/")


def test_program_create_nests_the_checks() -> None:
    with pytest.raises(pydantic.ValidationError):
        ProgramCreate.model_validate(
            {"name": "p", "definition": {"destination_url": "javascript:alert(1)"}}
        )
    with pytest.raises(pydantic.ValidationError):
        ProgramCreate.model_validate(
            {"name": "", "definition": {"destination_url": "https://a.b/"}}
        )
    ok = ProgramCreate.model_validate(
        {"name": "p", "definition": {"destination_url": "https://a.b/"}}
    )
    assert ok.definition.click_id_param == "ref_click"


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.d", "@c.d"])
def test_participant_email_is_checked(email: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        ParticipantCreate(external_user_id="u1", email=email)
