"""The charts of the console's program page, drawn on the server as SVG."""

from __future__ import annotations

from typing import Any

from services.links.insights.models import ExperimentReport, NpsReport, ProgramAnalytics
from services.links.web import charts
from services.links.web.i18n import translator

STAGE_NAMES = {
    "enrolled": "Enrolled",
    "shared": "Shared",
    "clicked": "Clicked (invites)",
    "signed_up": "Signed up",
    "converted": "Converted",
    "rewarded": "Rewarded",
}


_NUM = translator("en").number


# Drawn at about the width of a console card, so that the charts' text is not scaled down.
CARD_CHART_WIDTH = 480
# The stages counted in referrals, with the one each is a share of.
_RATE_OF = {"signed_up": "clicked", "converted": "signed_up", "rewarded": "converted"}


def funnel_notes(analytics: ProgramAnalytics) -> list[str | None]:
    """ "80% of clicked" after the stages whose counts are referrals; enrolled, shared and
    clicked count different things (participants, invited visitors), so no rate there."""
    counts = {s.stage: s.count for s in analytics.funnel}
    notes: list[str | None] = []
    for s in analytics.funnel:
        before = _RATE_OF.get(s.stage)
        if before and counts.get(before):
            notes.append(f"{100 * s.count / counts[before]:.0f}% of {before.replace('_', ' ')}")
        else:
            notes.append(None)
    return notes


def program_charts(
    analytics: ProgramAnalytics, nps: NpsReport, experiments: ExperimentReport
) -> dict[str, Any]:
    days = [p.day for p in analytics.daily]
    daily = analytics.daily
    return {
        "funnel": charts.hbars(
            [(STAGE_NAMES[s.stage], s.count) for s in analytics.funnel],
            title="Funnel",
            width=CARD_CHART_WIDTH,
            label_width=120,
            notes=funnel_notes(analytics),
            fmt=_NUM,
        ),
        "rejections": charts.hbars(
            sorted(analytics.rejections_by_reason.items(), key=lambda kv: (-kv[1], kv[0])),
            title="Rejections by fraud reason",
            width=CARD_CHART_WIDTH,
            fmt=_NUM,
            empty_message="no rejections in this range",
        ),
        "reach": charts.lines(
            days,
            {
                "enrolled": [p.enrolled for p in daily],
                "shares": [p.shares for p in daily],
                "clicks": [p.clicks for p in daily],
            },
            title="Enrolments, shares and clicks per day",
            width=CARD_CHART_WIDTH,
            fmt=_NUM,
        ),
        "outcomes": charts.lines(
            days,
            {
                "signups": [p.signups for p in daily],
                "conversions": [p.conversions for p in daily],
                "rewards issued": [p.rewards_issued for p in daily],
            },
            title="Signups, conversions and rewards issued per day",
            width=CARD_CHART_WIDTH,
            fmt=_NUM,
        ),
        "nps": charts.lines(
            [p.day for p in nps.daily],
            {"NPS": [p.nps for p in nps.daily]},
            title="NPS per day",
            width=CARD_CHART_WIDTH,
            height=200,
            empty_message="no answers in this range",
        ),
        "intervals": charts.intervals(
            [
                (v.variant, v.participant_conversion_rate, v.ci_low, v.ci_high)
                for v in experiments.variants
            ],
            title="Conversion rate per variant with its 95% interval",
        ),
    }
