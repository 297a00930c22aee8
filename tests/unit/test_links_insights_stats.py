"""The analytics maths against cases worked out by hand (arithmetic in the comments), and
the invariants that must hold for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.links.insights.models import NpsAnswer
from services.links.insights.nps import category
from services.links.insights.stats import (
    NOT_ENOUGH_DATA,
    Arm,
    NpsSummary,
    experiment_verdict,
    format_p,
    k_factor,
    nps_from_counts,
    two_proportion_test,
    verdict,
    wilson_interval,
)


def nps(scores: list[int]) -> NpsSummary:
    """The NPS of answers, categorised as the service does it."""
    kinds = [category(s) for s in scores]
    return nps_from_counts(*(kinds.count(k) for k in ("promoter", "passive", "detractor")))


# --- K-factor


def test_k_factor_by_hand() -> None:
    # 50 participants brought 200 invites (unique attributable clicks), 20 of which converted:
    # invites per participant = 200 / 50 = 4; conversion rate of invites = 20 / 200 = 0.1;
    # K = 4 * 0.1 = 0.4 (= 20 conversions / 50 participants).
    k = k_factor(participants=50, invites=200, conversions=20)
    assert k.invites_per_participant == 4.0
    assert k.invite_conversion_rate == 0.1
    assert k.value == pytest.approx(0.4)
    assert "invites per participant" in k.definition


def test_k_factor_above_one_is_viral() -> None:
    # 10 participants, 300 invites, 15 conversions: 30 * 0.05 = 1.5 > 1.
    assert k_factor(10, 300, 15).value == pytest.approx(1.5)


def test_k_factor_without_participants_or_invites() -> None:
    empty = k_factor(0, 0, 0)
    assert empty.value is None and empty.invites_per_participant is None
    # Participants but nobody clicked yet: 0 invites each, no rate, K = 0.
    quiet = k_factor(5, 0, 0)
    assert quiet.invites_per_participant == 0.0
    assert quiet.invite_conversion_rate is None
    assert quiet.value == 0.0


def test_k_factor_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="invites"):
        k_factor(1, -1, 0)


@given(
    participants=st.integers(1, 10_000),
    invites=st.integers(1, 100_000),
    conversions=st.integers(0, 100_000),
)
def test_k_is_the_product_of_its_two_factors(
    participants: int, invites: int, conversions: int
) -> None:
    k = k_factor(participants, invites, conversions)
    assert k.invites_per_participant is not None and k.invite_conversion_rate is not None
    assert k.value == pytest.approx(k.invites_per_participant * k.invite_conversion_rate)


# --- NPS


def test_nps_by_hand() -> None:
    # 10 answers: promoters 10, 9, 9, 10 (4); passives 8, 7 (2); detractors 6, 0, 3, 5 (4).
    # NPS = 100 * (4 - 4) / 10 = 0.
    summary = nps([10, 9, 9, 8, 7, 6, 0, 3, 10, 5])
    assert (summary.promoters, summary.passives, summary.detractors) == (4, 2, 4)
    assert summary.responses == 10
    assert summary.nps == 0.0


def test_nps_mostly_promoters() -> None:
    # 10, 10, 10, 9 are promoters (4), 7 is passive: 100 * (4 - 0) / 5 = 80.
    assert nps([10, 10, 10, 9, 7]).nps == 80.0
    # All detractors: 100 * (0 - 3) / 3 = -100.
    assert nps([0, 6, 2]).nps == -100.0


def test_nps_boundaries_between_categories() -> None:
    # 6 is a detractor, 7 and 8 passives, 9 a promoter.
    summary = nps([6, 7, 8, 9])
    assert (summary.promoters, summary.passives, summary.detractors) == (1, 2, 1)
    assert summary.nps == 0.0


def test_nps_without_answers_is_undefined() -> None:
    assert nps([]).nps is None


@pytest.mark.parametrize("score", [-1, 11])
def test_nps_answers_outside_the_scale_are_refused(score: int) -> None:
    with pytest.raises(ValueError, match="score"):
        NpsAnswer(customer_id="c-1", score=score)


@given(st.lists(st.integers(0, 10), max_size=200))
def test_nps_is_between_minus_100_and_100(scores: list[int]) -> None:
    summary = nps(scores)
    assert summary.promoters + summary.passives + summary.detractors == len(scores)
    if scores:
        assert summary.nps is not None and -100.0 <= summary.nps <= 100.0
    assert nps_from_counts(summary.promoters, summary.passives, summary.detractors) == summary


# --- Wilson interval


def test_wilson_interval_by_hand() -> None:
    # 8 of 10, z = 1.96: p̂ = 0.8, z² = 3.8416, d = 1 + z²/n = 1.38416.
    # centre = (0.8 + 3.8416/20) / 1.38416 = 0.99208 / 1.38416 = 0.716738
    # half = (1.96 / 1.38416) * √(0.8·0.2/10 + 3.8416/400) = 1.416021 * √0.025604 = 0.226581
    # → (0.490157, 0.943319)
    low, high = wilson_interval(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.490157, abs=1e-6)
    assert high == pytest.approx(0.943319, abs=1e-6)


def test_wilson_interval_at_zero_and_all() -> None:
    # 0 of 10: centre = 0.19208 / 1.38416 = 0.138768, half = 1.416021 * √0.009604 = 0.138772
    # → (0, 0.277540); n of n mirrors it: (1 - 0.277540, 1).
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277540), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.722460, 1.0), abs=1e-6)


def test_wilson_interval_without_data() -> None:
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="exceed"):
        wilson_interval(3, 2)


@given(st.integers(1, 100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_estimate_within_0_1(case: tuple[int, int]) -> None:
    successes, n = case
    interval = wilson_interval(successes, n)
    assert interval is not None
    low, high = interval
    assert 0.0 <= low <= successes / n <= high <= 1.0


@given(st.integers(1, 1000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_narrows_with_more_data(case: tuple[int, int]) -> None:
    successes, n = case
    low, high = wilson_interval(successes, n)  # type: ignore[misc]
    low10, high10 = wilson_interval(successes * 10, n * 10)  # type: ignore[misc]
    assert high10 - low10 < high - low


# --- two-proportion test and verdict


def test_two_proportion_test_by_hand() -> None:
    # A: 100/1000 = 0.10, B: 130/1000 = 0.13. Pooled p = 230/2000 = 0.115.
    # se = √(0.115 * 0.885 * (1/1000 + 1/1000)) = √(0.101775 * 0.002) = √0.00020355 = 0.0142671
    # z = (0.13 - 0.10) / 0.0142671 = 2.10274; two-sided p = erfc(2.10274/√2) = 0.03549
    result = two_proportion_test(100, 1000, 130, 1000)
    assert result.enough_data
    assert result.z == pytest.approx(2.10274, abs=1e-5)
    assert result.p_value == pytest.approx(0.03549, abs=1e-5)
    assert verdict(result, "A", "B") == "variant B converts better (p = 0.035)"


def test_no_significant_difference_by_hand() -> None:
    # A: 40/400 = 0.10, B: 44/400 = 0.11. Pooled p = 84/800 = 0.105.
    # se = √(0.105 * 0.895 * 2/400) = √0.000469875 = 0.0216766; z = 0.01 / 0.0216766 = 0.46133
    # p = erfc(0.46133/√2) = 0.6446 → not significant at 0.05.
    result = two_proportion_test(40, 400, 44, 400)
    assert result.p_value == pytest.approx(0.6446, abs=1e-4)
    assert verdict(result, "A", "B") == "no significant difference yet (p = 0.64)"


def test_the_control_can_be_the_winner() -> None:
    # Mirror of the first case: z = -2.10274, so the control A converts better.
    result = two_proportion_test(130, 1000, 100, 1000)
    assert verdict(result, "A", "B") == "variant A converts better (p = 0.035)"


def test_not_enough_data_for_small_arms() -> None:
    # 29 participants in an arm: below the 30 minimum, whatever the rates.
    result = two_proportion_test(10, 29, 25, 100)
    assert not result.enough_data and result.p_value is None
    assert verdict(result, "A", "B") == NOT_ENOUGH_DATA


def test_not_enough_data_for_few_expected_successes() -> None:
    # 2/40 vs 3/40: pooled p = 5/80 = 0.0625, expected successes per arm = 40 * 0.0625 = 2.5 < 5.
    result = two_proportion_test(2, 40, 3, 40)
    assert not result.enough_data
    assert "expected" in (result.reason or "")
    # Nobody converted at all: expected successes 0, no test (and no division by zero).
    assert not two_proportion_test(0, 500, 0, 500).enough_data


def test_experiment_verdict_picks_the_best_variant_against_the_control() -> None:
    arms = [Arm("A", 100, 1000), Arm("B", 130, 1000), Arm("C", 105, 1000)]
    result = experiment_verdict(arms)
    assert result.best == "B"
    assert result.sentence == "variant B converts better (p = 0.035)"
    assert result.p_value == pytest.approx(0.03549, abs=1e-5)


def test_experiment_verdict_when_the_control_is_best_tests_the_runner_up() -> None:
    arms = [Arm("A", 130, 1000), Arm("B", 90, 1000), Arm("C", 100, 1000)]
    result = experiment_verdict(arms)
    assert result.best == "A"
    assert result.sentence == "variant A converts better (p = 0.035)"  # A vs C, as above


def test_experiment_verdict_with_one_variant_or_no_data() -> None:
    assert experiment_verdict([Arm("A", 50, 100)]).sentence == NOT_ENOUGH_DATA
    assert experiment_verdict([Arm("A", 0, 0), Arm("B", 0, 0)]).best is None
    assert experiment_verdict([Arm("A", 3, 20), Arm("B", 5, 20)]).sentence == NOT_ENOUGH_DATA


def test_p_values_are_written_with_two_significant_digits() -> None:
    assert format_p(0.012345) == "= 0.012"
    assert format_p(0.41) == "= 0.41"
    assert format_p(0.0004) == "< 0.001"
    assert format_p(1.0) == "= 1"


arm = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(arm, arm)
def test_two_proportion_test_is_symmetric_and_p_is_a_probability(
    a: tuple[int, int], b: tuple[int, int]
) -> None:
    forward = two_proportion_test(a[0], a[1], b[0], b[1])
    backward = two_proportion_test(b[0], b[1], a[0], a[1])
    assert forward.enough_data == backward.enough_data
    if forward.enough_data:
        assert forward.p_value is not None and backward.p_value is not None
        assert 0.0 <= forward.p_value <= 1.0
        assert forward.p_value == pytest.approx(backward.p_value)
        assert forward.z == pytest.approx(-backward.z)  # type: ignore[operator]


@given(st.integers(30, 5000), st.floats(0.1, 0.9))
def test_equal_rates_are_never_significant(n: int, rate: float) -> None:
    s = round(n * rate)
    assume(min(s, n - s) >= 5)
    result = two_proportion_test(s, n, s, n)
    assert result.p_value == pytest.approx(1.0)
    assert result.z == 0.0
    assert verdict(result, "A", "B").startswith("no significant difference")
    assert math.isfinite(result.z)  # type: ignore[arg-type]
