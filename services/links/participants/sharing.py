"""Share links per channel and QR codes of a participant's link."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import segno

# Channels a share link may name; a program may narrow the list (links.channels).
DEFAULT_CHANNELS = (
    "email", "whatsapp", "x", "facebook", "linkedin", "messenger", "telegram", "sms", "copy",
    "qr", "other",
)  # fmt: skip


def channels_of(definition: dict[str, Any]) -> list[str]:
    """The share channels of a program definition (``links.channels``, else the defaults)."""
    return list((definition.get("links") or {}).get("channels") or DEFAULT_CHANNELS)


def share_url(link_url: str, channel: str) -> str:
    return f"{link_url}?{urlencode({'ch': channel})}"


def qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=8, border=2, xmldecl=True)
    return out.getvalue()


def qr_png(url: str, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()
