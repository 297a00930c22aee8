"""Referral codes: random, unguessable, and free of characters people confuse; or a vanity
code the company chooses, checked here."""

from __future__ import annotations

import re
import secrets

# Crockford-style alphabet without 0/O, 1/I/L and U.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # about 49 bits
MIN_CODE_LENGTH = 9  # 9 characters of this alphabet are 44 bits: never below 40

# What may appear after /r/ at all: anything else is a 404 without a database query.
CODE_CHARS_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Vanity codes: letters, digits and single inner hyphens, 4 to 32 characters.
VANITY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){3,31}$")

# Words a vanity code may not be: our own paths, and words that impersonate the operator.
RESERVED = frozenset(
    {
        "admin", "administrator", "api", "app", "assets", "auth", "billing", "docs", "healthz",
        "help", "login", "logout", "metrics", "null", "official", "openapi", "password", "qr",
        "r", "readyz", "root", "security", "signin", "signup", "static", "status", "support",
        "system", "undefined", "v1", "v2", "verify", "www",
    }
)  # fmt: skip


def new_code(length: int = CODE_LENGTH) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(max(length, MIN_CODE_LENGTH)))


def new_codes(count: int, length: int = CODE_LENGTH) -> list[str]:
    """``count`` codes as ``new_code`` draws them (uniform over the alphabet), from one read of
    the system's randomness instead of one per character: for bulk enrolment."""
    length = max(length, MIN_CODE_LENGTH)
    space = len(ALPHABET) ** length
    width = (space.bit_length() + 7) // 8 + 2  # two spare bytes: rejections are rare
    limit = (256**width // space) * space  # below this, value % space is uniform
    block = secrets.token_bytes(width * count)
    codes = []
    for i in range(count):
        value = int.from_bytes(block[i * width : (i + 1) * width], "big")
        if value >= limit:
            codes.append(new_code(length))
            continue
        value %= space
        chars = []
        for _ in range(length):
            value, digit = divmod(value, len(ALPHABET))
            chars.append(ALPHABET[digit])
        codes.append("".join(chars))
    return codes


def vanity_problem(code: str) -> str | None:
    """Why ``code`` cannot be a vanity code, or None if it can."""
    if not VANITY_RE.match(code):
        return "must be 4-32 letters or digits, with single hyphens only between them"
    if code.lower() in RESERVED or code.lower().replace("-", "") in RESERVED:
        return f"{code!r} is a reserved word"
    return None
