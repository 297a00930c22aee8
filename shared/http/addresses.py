"""Which IP addresses the platform may call: judged by address class, not by ``is_global``
alone. IPv6 forms that carry an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped, -translated
and -compatible) reach that IPv4 host through a translator or tunnel, so they are judged as
the IPv4 they carry: ``64:ff9b::7f00:1`` is loopback, not a global address."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
# RFC 8215: a network's own translator, with a prefix length only that network knows, so the
# carried IPv4 cannot be read reliably; it is local use, never a public destination.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291, deprecated


def _low_ipv4(ip: IPv6Address) -> IPv4Address:
    return IPv4Address(int(ip) & 0xFFFF_FFFF)


def carried_ipv4(ip: IPv6Address) -> list[IPv4Address] | None:
    """The IPv4 addresses an IPv6 address leads to (Teredo: server and client), or None
    when it is a plain IPv6 address."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64_WELL_KNOWN or ip in _IPV4_TRANSLATED or ip in _IPV4_COMPATIBLE:
        return [_low_ipv4(ip)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:  # the client is stored inverted; ipaddress undoes that
        server, client = ip.teredo
        return [server, client]
    return None


def _is_public_ipv4(ip: IPv4Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public_address(address: str) -> bool:
    """True only for an address on the public internet, whatever form it is written in."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone index is link-local anyway
    if isinstance(ip, IPv4Address):
        return _is_public_ipv4(ip)
    if ip in _NAT64_LOCAL_USE or "%" in address:
        return False
    carried = carried_ipv4(ip)
    if carried is not None:
        return all(_is_public_ipv4(v4) for v4 in carried)
    return ip.is_global and not ip.is_multicast
