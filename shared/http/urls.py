"""The one check for every URL the platform stores, redirects to or calls.

Browsers parse URLs by the WHATWG URL standard; Python's ``urllib.parse`` does not (it reads
``https://evil.example\\@good.example/`` as a URL on good.example, a browser goes to
evil.example). A URL passes only if the WHATWG parser (ada) and Python's parser agree on its
scheme, host and port, so code that later splits it with ``urllib`` sees what a browser sees,
and the host that is checked is the one a browser would visit.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import ada_url

_DEFAULT_PORTS = {"http": 80, "https": 443}

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PORT = (
    r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
)
_H16 = "[0-9A-Fa-f]{1,4}"
# An IPv6 address in brackets, in the forms without an embedded dotted quad.
_IPV6 = r"\[(?:(?:H:){7}H|(?:H:){1,7}:|(?:H:){1,6}:H|(?:H:){1,5}(?::H){1,2}|(?:H:){1,4}(?::H){1,3}|(?:H:){1,3}(?::H){1,4}|(?:H:){1,2}(?::H){1,5}|H:(?::H){1,6}|:(?:(?::H){1,7}|:))\]".replace(  # noqa: E501
    "H", _H16
)
# What an OpenAPI document can say of a URL this module accepts: http(s), a host name whose
# last label starts with a letter (a numeric or hex last label is an IPv4 address to a browser,
# a name to Python), a dotted-quad IPv4 or a bracketed IPv6, a port up to 65535, and printable
# ASCII without "\" after it. Every URL it admits passes :func:`checked_url` (a property test
# holds them to it); the check still refuses more than a pattern can say (hosts outside
# ``allowed_hosts``).
WEB_URL_PATTERN = (
    r"^https?://"
    rf"(?:(?:[A-Za-z0-9_-]+\.)*[A-Za-z][A-Za-z0-9_-]*\.?|(?:{_OCTET}\.){{3}}{_OCTET}|{_IPV6})"
    rf"(?::{_PORT})?"
    r"(?:[/?#][!-\[\]-~]*)?$"
)


class UrlRefused(ValueError):
    """The URL is not one the platform stores, redirects to or calls."""


@dataclass(frozen=True)
class WebUrl:
    """An http(s) URL as a browser reads it."""

    href: str  # normalised by the WHATWG serialiser
    scheme: str
    host: str  # ASCII (punycode), lower case, IPv6 without brackets
    port: int  # the scheme's default when none is given
    has_userinfo: bool


def _forbidden_character(url: str) -> bool:
    # A browser drops tabs and newlines anywhere and reads "\" as "/"; Python strips some of
    # them too, and Unicode spaces and format characters hide what a reader sees.
    for char in url:
        if char == "\\" or char.isspace():
            return True
        if unicodedata.category(char) in {"Cc", "Cf", "Zs", "Zl", "Zp"}:
            return True
    return False


def _same_host(python_host: str, whatwg_host: str) -> bool:
    try:  # an IPv6 address has several spellings
        return ipaddress.IPv6Address(python_host) == ipaddress.IPv6Address(whatwg_host)
    except ValueError:
        pass
    try:  # IDNA-encoded, as WHATWG gives it
        return python_host.encode("idna").decode("ascii").lower() == whatwg_host
    except UnicodeError:
        return False


def _comparable(host: str) -> str:
    # good.example. and good.example are the same name in DNS.
    return host[:-1] if host.endswith(".") else host


def parse_web_url(url: str) -> WebUrl:
    """Parse an absolute http(s) URL as a browser would; refuse what parsers read differently."""
    if _forbidden_character(url):
        raise UrlRefused("must not contain backslashes, spaces or control characters")
    try:
        parts = urlsplit(url)
        python_port = parts.port
    except ValueError as exc:
        raise UrlRefused("must be an absolute http(s) URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UrlRefused("must be an absolute http(s) URL")
    try:
        whatwg = ada_url.parse_url(url)
    except ValueError as exc:
        raise UrlRefused("is not a valid URL") from exc
    host = whatwg["hostname"].removeprefix("[").removesuffix("]")
    port = int(whatwg["port"]) if whatwg["port"] else _DEFAULT_PORTS[scheme]
    same = (
        whatwg["protocol"] == f"{scheme}:"
        and _same_host(parts.hostname, host)
        and (python_port if python_port is not None else _DEFAULT_PORTS[scheme]) == port
    )
    if not same or not host:
        raise UrlRefused("is read differently by browsers and by servers")
    return WebUrl(
        href=whatwg["href"],
        scheme=scheme,
        host=host,
        port=port,
        has_userinfo=bool(whatwg["username"] or whatwg["password"] or "@" in parts.netloc),
    )


def normalised_host(host: str) -> str:
    """An ``allowed_hosts`` entry in the form :func:`parse_web_url` gives hosts."""
    try:
        parsed = ada_url.parse_url(f"http://{host}/")
    except ValueError:
        return host.lower()
    return _comparable(parsed["hostname"].removeprefix("[").removesuffix("]"))


def checked_web_url(url: str, *, allowed_hosts: Iterable[str] = ()) -> WebUrl:
    """The URL as a browser reads it, if it goes to an allowed host (any host when
    ``allowed_hosts`` is empty) with no credentials in it; else :class:`UrlRefused`."""
    parsed = parse_web_url(url)
    allowed = {normalised_host(h) for h in allowed_hosts}
    if allowed and _comparable(parsed.host) not in allowed:
        raise UrlRefused(f"host {parsed.host!r} is not in allowed_hosts")
    if parsed.has_userinfo:
        # https://good.example@evil.example/ reads as good.example to a person.
        raise UrlRefused("must not contain a user name or password")
    return parsed


def checked_url(url: str, *, allowed_hosts: Iterable[str] = ()) -> str:
    """:func:`checked_web_url`, normalised."""
    return checked_web_url(url, allowed_hosts=allowed_hosts).href
