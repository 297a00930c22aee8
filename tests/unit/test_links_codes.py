"""Referral codes: random, unguessable, unambiguous."""

from __future__ import annotations

import math
from collections import Counter

from services.links.participants.codes import ALPHABET, CODE_LENGTH, MIN_CODE_LENGTH, new_code

AMBIGUOUS = set("0O1IL")


def test_alphabet_has_no_ambiguous_or_repeated_characters() -> None:
    assert not AMBIGUOUS & set(ALPHABET)
    assert not AMBIGUOUS & set(ALPHABET.lower())
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert ALPHABET == ALPHABET.upper()
    assert ALPHABET.isalnum()


def test_entropy() -> None:
    # Even the shortest code a program may configure is at least 40 bits.
    assert MIN_CODE_LENGTH * math.log2(len(ALPHABET)) >= 40
    assert len(new_code(1)) == MIN_CODE_LENGTH
    assert CODE_LENGTH * math.log2(len(ALPHABET)) >= 40


def test_codes_have_the_length_and_alphabet() -> None:
    for _ in range(1000):
        code = new_code()
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
        assert not AMBIGUOUS & set(code)


def test_ten_thousand_codes_are_unique_and_use_the_whole_alphabet() -> None:
    codes = [new_code() for _ in range(10_000)]
    assert len(set(codes)) == len(codes)
    counts = Counter("".join(codes))
    assert set(counts) == set(ALPHABET)
    # 100k characters over 30 symbols: about 3333 each; a biased generator would show.
    expected = 10_000 * CODE_LENGTH / len(ALPHABET)
    assert all(0.8 * expected < n < 1.2 * expected for n in counts.values())
