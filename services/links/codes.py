"""Referral codes: random, unguessable, and free of characters people confuse."""

from __future__ import annotations

import math
import secrets

# Crockford-style alphabet without 0/O, 1/I/L and U.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
ENTROPY_BITS = CODE_LENGTH * math.log2(len(ALPHABET))  # about 49 bits


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
