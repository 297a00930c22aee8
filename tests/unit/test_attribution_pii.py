"""Email normalisation and keyed hashing of personal data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.pii import Hasher, normalise_email, normalise_ip


@pytest.mark.parametrize(
    ("email", "normalised"),
    [
        ("John.Doe@Gmail.com", "johndoe@gmail.com"),
        ("john.doe+promo@googlemail.com", "johndoe@gmail.com"),
        ("j.o.h.n+a+b@GMAIL.COM", "john@gmail.com"),
        ("John.Doe+tag@example.com", "john.doe@example.com"),
        ("  Anna@Example.ORG ", "anna@example.org"),
        ("a.b@outlook.com", "a.b@outlook.com"),
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_normalise_email(email: str, normalised: str) -> None:
    assert normalise_email(email) == normalised


_local = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                 min_size=1, max_size=20)  # fmt: skip
_domain = st.sampled_from(["gmail.com", "googlemail.com", "example.com", "Mail.Example.org"])
_tag = st.text(alphabet="abcxyz0123456789.+", max_size=10)


@given(_local, _domain)
def test_normalising_is_idempotent(local: str, domain: str) -> None:
    once = normalise_email(f"{local}@{domain}")
    assert normalise_email(once) == once
    assert once == once.lower()


@given(_local, _domain, _tag)
def test_tags_and_case_never_change_the_mailbox(local: str, domain: str, tag: str) -> None:
    plain = normalise_email(f"{local}@{domain}")
    assert normalise_email(f"{local.upper()}+{tag}@{domain.upper()}") == plain


@given(_local, st.sampled_from(["gmail.com", "googlemail.com"]), st.data())
def test_dots_do_not_matter_where_the_provider_ignores_them(
    local: str, domain: str, data: st.DataObject
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(local)))
    dotted = local[:position] + "." + local[position:]
    assert normalise_email(f"{dotted}@{domain}") == normalise_email(f"{local}@gmail.com")
    assert "." not in normalise_email(f"{dotted}@{domain}").split("@")[0]


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=9)


# Built with an inner dot rather than filtered for one, so hypothesis never runs dry.
@given(st.tuples(_word, _word).map(lambda parts: ".".join(parts)))
def test_dots_matter_elsewhere(local: str) -> None:
    assert normalise_email(f"{local}@example.com") != normalise_email(
        f"{local.replace('.', '')}@example.com"
    )


def test_hashes_are_keyed_and_separated_by_kind() -> None:
    a, b = Hasher("key-a"), Hasher("key-b")
    assert a.email("X.Y@gmail.com") == a.email("xy+1@googlemail.com")
    assert a.email("x@example.com") != b.email("x@example.com")
    assert a.hash("ip", "1.2.3.4") != a.hash("email", "1.2.3.4")
    assert a.ip("::ffff:1.2.3.4") == a.ip("1.2.3.4")
    assert a.email(None) is None and a.ip(None) is None
    assert "example" not in (a.email("x@example.com") or "")


def test_normalise_ip() -> None:
    assert normalise_ip("2001:DB8::1") == "2001:db8::1"
    with pytest.raises(ValueError):
        normalise_ip("not-an-ip")
