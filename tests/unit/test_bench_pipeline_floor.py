"""The floor benchmark's arithmetic: what a conversion may cost at the target ratio, and the
floor composed from its parts."""

from __future__ import annotations

import pytest

from bench.pipeline_floor import EVENTS_IN, EVENTS_OUT, Round


def _round(baseline: float) -> Round:
    parts = {
        "http": (1.0, {"server": 1.0}),
        "transaction": (0.5, {"bench": 0.3, "postgres": 0.2}),
        "produce": (0.2, {"bench": 0.1, "tansu": 0.1}),
        "consume": (0.3, {"bench": 0.2, "tansu": 0.1}),
    }
    return Round(baseline, parts)


def test_the_budget_is_what_the_target_ratio_leaves_each_conversion_on_the_cores() -> None:
    # 2,000 answers/s on /healthz: the target is 200 conversions/s, 2 cores give 10 ms each.
    assert _round(2000).budget_ms(2) == pytest.approx(10.0)
    assert _round(4000).budget_ms(2) == pytest.approx(5.0)
    assert _round(2000).budget_ms(4) == pytest.approx(20.0)


def test_the_floor_is_one_call_one_transaction_and_the_events_of_a_conversion() -> None:
    r = _round(2000)
    assert r.floor_ms() == pytest.approx(1.0 + 0.5 + EVENTS_OUT * 0.2 + EVENTS_IN * 0.3)
    assert r.floor_ms(events_out=3, events_in=4) == pytest.approx(1.0 + 0.5 + 0.6 + 1.2)
