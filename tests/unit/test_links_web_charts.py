"""The server-drawn SVG charts: well-formed XML, bars proportional to counts, one point per
day per series, and something sensible for empty data and a single day."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.links.web.charts import hbars, intervals, lines, nice_step

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _bars(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//svg:rect[@class='bar']", NS)


def test_funnel_bars_are_proportional_to_counts() -> None:
    svg = hbars(
        [("enrolled", 200), ("clicked", 100), ("signed up", 50), ("converted", 0)],
        title="Funnel",
        share_of_first=True,
    )
    bars = _bars(_parse(svg))
    assert [b.get("data-count") for b in bars] == ["200", "100", "50", "0"]
    widths = [float(b.get("width", "nan")) for b in bars]
    assert widths[0] > 0
    assert widths[1] == pytest.approx(widths[0] / 2, abs=0.01)
    assert widths[2] == pytest.approx(widths[0] / 4, abs=0.01)
    assert widths[3] == 0.0
    counts = [t.text for t in _parse(svg).findall(".//svg:text[@class='count']", NS)]
    assert counts == ["200 (100%)", "100 (50%)", "50 (25%)", "0 (0%)"]


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=12))
def test_bar_widths_keep_the_ratios_of_any_counts(counts: list[int]) -> None:
    bars = _bars(_parse(hbars([(f"s{i}", c) for i, c in enumerate(counts)], title="t")))
    widths = [float(b.get("width", "nan")) for b in bars]
    top = max(counts)
    longest = max(widths)
    for count, width in zip(counts, widths, strict=True):
        assert 0.0 <= width <= longest
        if top:
            assert width == pytest.approx(longest * count / top, abs=0.01)
        else:
            assert width == 0.0


def test_labels_are_escaped() -> None:
    root = _parse(hbars([("<script>&\"'", 3)], title="a < b"))
    assert root.find("svg:title", NS).text == "a < b"  # type: ignore[union-attr]
    assert _bars(root)[0].get("data-label") == "<script>&\"'"


def test_empty_charts_say_so() -> None:
    root = _parse(hbars([], title="Rejections", empty_message="nothing rejected"))
    assert root.find(".//svg:text[@class='empty']", NS).text == "nothing rejected"  # type: ignore[union-attr]
    root = _parse(lines([], {}, title="Daily"))
    assert root.find(".//svg:text[@class='empty']", NS) is not None
    assert not root.findall(".//svg:polyline", NS)


def _days(n: int) -> list[date]:
    return [date(2026, 11, 1) + timedelta(days=i) for i in range(n)]


def test_daily_lines_have_one_point_per_day_per_series() -> None:
    days = _days(10)
    series = {
        "clicks": [float(i * 3) for i in range(10)],
        "signups": [float(i) for i in range(10)],
        "conversions": [0.0] * 10,
    }
    root = _parse(lines(days, series, title="Daily"))
    groups = root.findall(".//svg:g[@class='series']", NS)
    assert [g.get("data-series") for g in groups] == ["clicks", "signups", "conversions"]
    for group, values in zip(groups, series.values(), strict=True):
        polyline = group.find("svg:polyline", NS)
        assert polyline is not None
        assert len(polyline.get("points", "").split()) == 10
        points = group.findall("svg:circle[@class='point']", NS)
        assert [float(p.get("data-value", "nan")) for p in points] == values
    legend = [t.text for t in root.findall(".//svg:text[@class='legend-item']", NS)]
    assert legend == ["clicks", "signups", "conversions"]


def test_daily_lines_put_higher_values_higher_and_ticks_cover_the_peak() -> None:
    root = _parse(lines(_days(3), {"clicks": [0.0, 27.0, 9.0]}, title="Daily"))
    ys = [float(c.get("cy", "nan")) for c in root.findall(".//svg:circle", NS)]
    assert ys[1] < ys[2] < ys[0]  # SVG y grows downwards
    ticks = [t.text for t in root.findall(".//svg:g[@class='y-axis']/svg:text", NS)]
    assert ticks == ["0", "10", "20", "30"]  # step 10 covers 27 in 3 steps
    x_labels = [t.text for t in root.findall(".//svg:g[@class='x-axis']/svg:text", NS)]
    assert x_labels == ["01 Nov", "02 Nov", "03 Nov"]


def test_a_single_day_is_drawn_as_a_visible_point() -> None:
    root = _parse(lines(_days(1), {"clicks": [4.0]}, title="Daily"))
    [point] = root.findall(".//svg:circle[@class='point']", NS)
    assert float(point.get("cx", "nan")) > 48  # centred, not on the axis


def test_all_zero_series_still_have_a_scale() -> None:
    root = _parse(lines(_days(2), {"clicks": [0.0, 0.0]}, title="Daily"))
    ticks = [t.text for t in root.findall(".//svg:g[@class='y-axis']/svg:text", NS)]
    assert ticks == ["0", "1"]


def test_long_ranges_label_only_some_days() -> None:
    root = _parse(lines(_days(30), {"clicks": [1.0] * 30}, title="Daily"))
    labels = root.findall(".//svg:g[@class='x-axis']/svg:text", NS)
    assert 2 <= len(labels) <= 8
    assert labels[-1].text == "30 Nov"  # the last day is always labelled


def test_series_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="clicks"):
        lines(_days(3), {"clicks": [1.0]}, title="Daily")


@given(st.floats(0.001, 1e12))
def test_nice_step_covers_the_top_in_at_most_five_round_steps(top: float) -> None:
    step = nice_step(top)
    assert top / step <= 5 + 1e-9
    assert f"{step:.1e}"[:3] in ("1.0", "2.0", "5.0")


def test_missing_values_leave_gaps_and_negative_values_go_below_zero() -> None:
    # NPS per day: -50, no answers, 20, 40 -> two stretches, three points, a scale under 0.
    root = _parse(lines(_days(4), {"NPS": [-50.0, None, 20.0, 40.0]}, title="NPS"))
    polylines = root.findall(".//svg:polyline", NS)
    assert [len(p.get("points", "").split()) for p in polylines] == [1, 2]
    assert len(root.findall(".//svg:circle[@class='point']", NS)) == 3
    ticks = [t.text for t in root.findall(".//svg:g[@class='y-axis']/svg:text", NS)]
    assert ticks[0] == "-60" and "0" in ticks and ticks[-1] == "40"
    ys = {
        c.get("data-value"): float(c.get("cy", "nan")) for c in root.iter(f"{{{NS['svg']}}}circle")
    }
    assert ys["-50.0"] > ys["20.0"] > ys["40.0"]


def test_only_missing_values_is_an_empty_chart() -> None:
    root = _parse(lines(_days(2), {"NPS": [None, None]}, title="NPS"))
    assert root.find(".//svg:text[@class='empty']", NS) is not None


def test_intervals_place_the_estimate_inside_its_interval() -> None:
    root = _parse(
        intervals(
            [("A", 0.10, 0.08, 0.12), ("B", 0.13, 0.11, 0.15), ("C", None, None, None)], title="CI"
        )
    )
    groups = root.findall(".//svg:g[@class='interval']", NS)
    assert [g.get("data-label") for g in groups] == ["A", "B", "C"]
    for group in groups[:2]:
        ci = group.find("svg:line[@class='ci']", NS)
        dot = group.find("svg:circle[@class='estimate']", NS)
        assert ci is not None and dot is not None
        assert float(ci.get("x1", "nan")) < float(dot.get("cx", "nan")) < float(ci.get("x2", "nan"))
    assert groups[2].find("svg:circle", NS) is None  # no data, no dot
    a_dot, b_dot = (g.find("svg:circle", NS) for g in groups[:2])
    assert float(a_dot.get("cx", "nan")) < float(b_dot.get("cx", "nan"))  # type: ignore[union-attr]


def test_notes_follow_the_counts() -> None:
    root = _parse(hbars([("clicked", 10), ("signed up", 8)], title="t", notes=[None, "80%"]))
    counts = [t.text for t in root.findall(".//svg:text[@class='count']", NS)]
    assert counts == ["10", "8 (80%)"]
