"""Query parameters given once, repeated or comma-separated, and the schema pattern that
states their values."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from shared.http.openapi import some_of
from shared.http.params import listed

NAMES = ["active", "flagged", "referral.signed_up"]


def test_listed_splits_dedupes_and_keeps_the_order() -> None:
    assert listed(None) == [] and listed([]) == []
    assert listed(["flagged"]) == ["flagged"]
    assert listed(["flagged,active", "active", " flagged "]) == ["flagged", "active"]


@given(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5))
def test_some_of_admits_exactly_comma_separated_known_names(names: list[str]) -> None:
    pattern = re.compile(some_of(NAMES))
    assert pattern.fullmatch(",".join(names))
    assert not pattern.fullmatch(",".join([*names, "bogus"]))
    assert not pattern.fullmatch(",".join(names) + ",")
    assert not pattern.fullmatch("referral_signed_up")  # the dot is literal


def test_some_of_refuses_the_empty_string() -> None:
    assert not re.fullmatch(some_of(NAMES), "")
