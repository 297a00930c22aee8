"""Program section owned by attribution: how referrals are attributed and qualified."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.base import Amount


class Qualification(BaseModel):
    """Which purchases of a referred customer count as a conversion.

    The first qualifying purchase is ``sequence`` 1. With ``recurring_months`` > 0, later
    purchases within that many calendar months of the first qualifying one also qualify, each
    published as its own ``referral.converted`` with the next ``sequence``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A purchase qualifies only if it is at least this much, in this currency.
    min_amount: Amount | None = None
    # A purchase qualifies only within this many days of the signup (None: no limit).
    within_days: int | None = Field(default=None, ge=1, le=3650)
    # 0: only the first qualifying purchase converts; N: recurring purchases for N months.
    recurring_months: int = Field(default=0, ge=0, le=120)


class AttributionPolicy(BaseModel):
    """How a signup is attributed to a referrer.

    - ``window_days``: a click older than this at signup is not attributed.
    - ``model``: with ``last_click`` the click the signup names wins; with ``first_click`` the
      earliest attributable click of the same visitor (same ``visitor_hash``) in this program
      within the window wins, which may belong to another referrer.
    - ``allow_code_without_click``: a referral code typed by the user attributes the signup.
    - ``exclude_existing_customers``: a signup the company reports as an existing customer
      (``existing_customer: true``) is recorded but not attributed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_days: int = Field(default=90, ge=1, le=3650)
    model: Literal["first_click", "last_click"] = "last_click"
    allow_code_without_click: bool = True
    exclude_existing_customers: bool = True
    qualification: Qualification = Qualification()
