"""Experiment variants: a participant is assigned one at enrolment, deterministically from
(program, external user id), in proportion to the variants' weights, and keeps it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from shared.contracts.programs import Variant


def assign_variant(
    program_id: str, external_user_id: str, variants: Sequence[Variant]
) -> str | None:
    total = sum(v.weight for v in variants)
    if total <= 0:
        return None
    digest = hashlib.sha256(f"{program_id}:{external_user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        if point < variant.weight:
            return variant.name
        point -= variant.weight
    raise AssertionError("unreachable: point < total")
