"""Vanity codes, experiment variants, share links and QR codes."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links.participants.codes import CODE_CHARS_RE, new_code, vanity_problem
from services.links.participants.sharing import qr_png, qr_svg, share_url
from services.links.programs.experiments import assign_variant
from shared.contracts.programs import Variant


@pytest.mark.parametrize("code", ["Alice", "spring-2026", "ABCD", "a1b2c3d4" * 4])
def test_good_vanity_codes(code: str) -> None:
    assert vanity_problem(code) is None
    assert CODE_CHARS_RE.match(code)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("abc", "4-32"),
        ("a" * 33, "4-32"),
        ("-abc", "4-32"),
        ("abc-", "4-32"),
        ("ab--cd", "4-32"),
        ("ab cd", "4-32"),
        ("ab/cd", "4-32"),
        ("héllo", "4-32"),
        ("admin", "reserved"),
        ("ADMIN", "reserved"),
        ("sup-port", "reserved"),
        ("healthz", "reserved"),
    ],
)
def test_bad_vanity_codes(code: str, why: str) -> None:
    problem = vanity_problem(code)
    assert problem is not None and why in problem


def test_random_codes_honour_a_longer_length_and_never_go_below_the_minimum() -> None:
    assert len(new_code(16)) == 16
    assert len(new_code(3)) == 9


VARIANTS = [Variant(name="a", weight=1), Variant(name="b", weight=3), Variant(name="off", weight=0)]


@given(user=st.text(min_size=1, max_size=40))
def test_assignment_is_deterministic_and_never_picks_a_zero_weight(user: str) -> None:
    first = assign_variant("prog", user, VARIANTS)
    assert first == assign_variant("prog", user, VARIANTS)
    assert first in {"a", "b"}


def test_assignment_follows_the_weights() -> None:
    counts = Counter(assign_variant("prog", f"user-{i}", VARIANTS) for i in range(4000))
    assert 0.2 < counts["a"] / 4000 < 0.3
    assert counts["off"] == 0


def test_no_variants_no_assignment() -> None:
    assert assign_variant("prog", "u", []) is None


def test_share_links_and_qr_codes() -> None:
    url = share_url("https://ref.example.com/r/ABC", "whatsapp")
    assert url == "https://ref.example.com/r/ABC?ch=whatsapp"
    assert b"<svg" in qr_svg(url)
    assert qr_png(url).startswith(b"\x89PNG")
