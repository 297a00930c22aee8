"""The SSRF guard judges addresses by class: IPv6 forms that carry an IPv4 address are judged
as that IPv4 address. No DNS here: names resolve through a fake resolver."""

from __future__ import annotations

import pytest

from shared.http.addresses import carried_ipv4, is_public_address
from shared.http.outbound import TargetRefused, check_target

# The four URLs the issue reports as accepted (201) before.
REPORTED = [
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[2002:7f00:1::]/",
]


@pytest.mark.parametrize("url", REPORTED)
async def test_the_reported_nat64_and_6to4_urls_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused, match="non-public"):
        await check_target(url, allow_private=False)


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),  # NAT64 well-known prefix
        ("::ffff:7f00:1", ["127.0.0.1"]),  # IPv4-mapped
        ("::ffff:0:a00:1", ["10.0.0.1"]),  # IPv4-translated (SIIT)
        ("::c0a8:101", ["192.168.1.1"]),  # IPv4-compatible
        ("2002:7f00:1::", ["127.0.0.1"]),  # 6to4
        # Teredo: server 65.54.227.120, client stored inverted (~0xc0a80101 = 192.168.1.1)
        ("2001:0:4136:e378:8000:63bf:3f57:fefe", ["65.54.227.120", "192.168.1.1"]),
        ("2606:4700::1111", None),
    ],
)
def test_carried_ipv4(address: str, carried: list[str] | None) -> None:
    from ipaddress import IPv6Address

    found = carried_ipv4(IPv6Address(address))
    assert (None if found is None else [str(a) for a in found]) == carried


@pytest.mark.parametrize(
    "address",
    [
        # plain IPv4 and IPv6 non-public classes
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        # NAT64, well-known prefix and local-use prefix (RFC 8215)
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::a00:1",
        "64:ff9b:1::808:808",
        "64:ff9b:1:808:8:800::",
        # 6to4
        "2002:a9fe:a9fe::",
        "2002:7f00:1::",
        "2002:c0a8:101::1",
        # Teredo with a private client, and with a private server
        "2001:0:4136:e378:8000:63bf:3f57:fefe",
        "2001:0:a00:1:8000:63bf:f7f7:f7f7",
        # IPv4-mapped, -translated and -compatible
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0:a9fe:a9fe",
        "::127.0.0.1",
        "::a9fe:a9fe",
    ],
)
def test_non_public_in_every_form(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",  # NAT64 of a public IPv4
        "2002:808:808::1",  # 6to4 of a public IPv4
        "::ffff:8.8.8.8",
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, public server and client (8.8.8.8)
    ],
)
def test_public_in_every_form(address: str) -> None:
    assert is_public_address(address)


def _resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


async def test_a_name_resolving_to_a_nat64_loopback_is_refused() -> None:
    with pytest.raises(TargetRefused, match="non-public"):
        await check_target(
            "https://hooks.example/",
            allow_private=False,
            resolver=_resolving_to("2606:4700::1", "64:ff9b::7f00:1"),
        )


async def test_a_name_resolving_to_public_addresses_passes() -> None:
    await check_target(
        "https://hooks.example/in",
        allow_private=False,
        resolver=_resolving_to("93.184.215.14", "64:ff9b::808:808"),
    )


async def test_private_networks_allowed_skips_the_address_check_not_the_url_check() -> None:
    await check_target("http://[64:ff9b::7f00:1]/", allow_private=True)
    with pytest.raises(TargetRefused, match="backslash"):
        await check_target("http://hooks.example\\@127.0.0.1/", allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example/", "https://user:pw@hooks.example/", "http://0x7f.1/"]
)
async def test_urls_are_checked_as_browsers_read_them(url: str) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False, resolver=_resolving_to("93.184.215.14"))
