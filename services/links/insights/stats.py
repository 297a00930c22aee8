"""The numbers behind the analytics: viral coefficient, NPS, confidence intervals and the
experiment test. Pure functions, no I/O, so that each can be checked by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.links.insights.models import K_DEFINITION, KFactor, RoiLine

# A normal approximation needs this much data in each arm before its p-value means anything.
MIN_ARM_SIZE = 30
MIN_EXPECTED = 5
ALPHA = 0.05
NOT_ENOUGH_DATA = "not enough data yet"


def k_factor(participants: int, invites: int, conversions: int) -> KFactor:
    """K = (invites / participants) * (conversions / invites). It equals conversions per
    participant; both factors are returned too, since they call for different fixes (more
    sharing, or a better landing page)."""
    _non_negative(participants=participants, invites=invites, conversions=conversions)
    per_participant = invites / participants if participants else None
    rate = conversions / invites if invites else None
    # With no invites K is still defined (0 if nobody converted); conversions can exist
    # without a click (a code typed at checkout), so K is conversions per participant.
    value = conversions / participants if participants else None
    return KFactor(
        value=value,
        participants=participants,
        invites=invites,
        conversions=conversions,
        invites_per_participant=per_participant,
        invite_conversion_rate=rate,
        definition=K_DEFINITION,
    )


def roi_lines(revenue: dict[str, int], cost: dict[str, int]) -> list[RoiLine]:
    """Revenue against reward cost, one line per unit, sorted: amounts of different units are
    never combined. ROI = (revenue - cost) / cost, defined only where the unit is a currency
    someone paid in (it appears in ``revenue``, even at 0 after refunds) and the cost is
    positive; an MB or PERK cost, or a cost in a currency with no referred revenue, gets
    None rather than a ratio against another currency."""
    lines = []
    for unit in sorted(revenue.keys() | cost.keys()):
        earned, spent = revenue.get(unit, 0), cost.get(unit, 0)
        ratio = (earned - spent) / spent if unit in revenue and spent > 0 else None
        lines.append(RoiLine(unit=unit, revenue=earned, reward_cost=spent, roi=ratio))
    return lines


@dataclass(frozen=True)
class NpsSummary:
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None  # None without responses


def nps_from_counts(promoters: int, passives: int, detractors: int) -> NpsSummary:
    _non_negative(promoters=promoters, passives=passives, detractors=detractors)
    total = promoters + passives + detractors
    score = 100.0 * (promoters - detractors) / total if total else None
    return NpsSummary(total, promoters, passives, detractors, score)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval for a proportion: unlike p ± z·se it stays inside [0, 1] and
    is sensible for small n and for 0 or n successes. None when n is 0."""
    _non_negative(successes=successes, n=n)
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    if n == 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp rounding noise only (e.g. 1.0000000000000002 when successes == n).
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


@dataclass(frozen=True)
class TwoProportionResult:
    enough_data: bool
    p1: float | None
    p2: float | None
    z: float | None  # positive when the second arm converts better
    p_value: float | None  # two-sided
    reason: str | None = None  # why there is no test, when enough_data is False


def two_proportion_test(s1: int, n1: int, s2: int, n2: int) -> TwoProportionResult:
    """Pooled two-proportion z-test of arm 2 against arm 1, two-sided p from the normal
    distribution. Refuses (enough_data=False) when an arm has fewer than 30 units, or when
    either arm expects fewer than 5 successes or 5 failures under the pooled rate: there
    the normal approximation is poor and a p-value would mislead."""
    for s, n, name in ((s1, n1, "1"), (s2, n2, "2")):
        _non_negative(successes=s, n=n)
        if s > n:
            raise ValueError(f"arm {name}: successes ({s}) cannot exceed n ({n})")
    p1 = s1 / n1 if n1 else None
    p2 = s2 / n2 if n2 else None
    if min(n1, n2) < MIN_ARM_SIZE:
        return TwoProportionResult(
            False, p1, p2, None, None, f"an arm has fewer than {MIN_ARM_SIZE}"
        )
    pooled = (s1 + s2) / (n1 + n2)
    # Expected count n_i * pooled >= 5, in integers so that exactly 5 is not 4.999999.
    total_n, total_s = n1 + n2, s1 + s2
    expected_ok = all(
        n * k >= MIN_EXPECTED * total_n for n in (n1, n2) for k in (total_s, total_n - total_s)
    )
    if not expected_ok:
        return TwoProportionResult(
            False, p1, p2, None, None, f"fewer than {MIN_EXPECTED} expected successes or failures"
        )
    assert p1 is not None and p2 is not None
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p2 - p1) / se
    p_value = min(1.0, math.erfc(abs(z) / math.sqrt(2)))
    return TwoProportionResult(True, p1, p2, z, p_value)


def format_p(p_value: float) -> str:
    """Two significant digits, never scientific notation: 0.012, 0.41, < 0.001."""
    if p_value < 0.001:
        return "< 0.001"
    return f"= {p_value:.2g}"  # .2g uses exponents only below 1e-4, excluded above


def verdict(
    result: TwoProportionResult, control: str, challenger: str, alpha: float = ALPHA
) -> str:
    """The sentence for the console: which arm converts better, or why we cannot say."""
    if not result.enough_data or result.p_value is None or result.z is None:
        return NOT_ENOUGH_DATA
    if result.p_value >= alpha or result.z == 0:
        return f"no significant difference yet (p {format_p(result.p_value)})"
    winner = challenger if result.z > 0 else control
    return f"variant {winner} converts better (p {format_p(result.p_value)})"


@dataclass(frozen=True)
class Arm:
    name: str
    successes: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None


@dataclass(frozen=True)
class ExperimentVerdict:
    sentence: str
    p_value: float | None
    best: str | None  # the variant with the highest observed rate (None without data)


def experiment_verdict(arms: Sequence[Arm], alpha: float = ALPHA) -> ExperimentVerdict:
    """Compare the best variant with the first (control). When the control itself is best,
    it is compared with the runner-up, so the test is always between the top arm and
    another one. One test only: no multiple-comparison correction is needed."""
    measured = [a for a in arms if a.n > 0]
    best = max(measured, key=lambda a: (a.rate, -arms.index(a))).name if measured else None
    if len(arms) < 2 or best is None:
        return ExperimentVerdict(NOT_ENOUGH_DATA, None, best)
    control = arms[0]
    if best == control.name:
        others = [a for a in arms[1:] if a.n > 0] or list(arms[1:])
        challenger = max(others, key=lambda a: (a.rate or 0.0, -arms.index(a)))
    else:
        challenger = next(a for a in arms if a.name == best)
    result = two_proportion_test(control.successes, control.n, challenger.successes, challenger.n)
    return ExperimentVerdict(
        verdict(result, control.name, challenger.name, alpha), result.p_value, best
    )


def _non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, not {value}")
