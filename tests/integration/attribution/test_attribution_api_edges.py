"""Rough edges of the tracking API: listing referrals by several statuses, values Postgres
cannot store, and bodies that are not JSON, through the real app and database."""

from __future__ import annotations

from shared.http.problems import PROBLEM_JSON
from tests.integration.attribution.conftest import Tracking


async def _signups(tracking: Tracking) -> dict[str, str]:
    """One referral in each status: active, flagged, rejected, unattributed, pending."""
    _, code = await tracking.enroll(email="Ann@example.com")
    ids = {}
    for status, (customer, email) in {
        "active": ("c-active", None),
        "flagged": ("c-flagged", "a@mailinator.com"),  # disposable: flagged
        "rejected": ("c-rejected", "ann@example.com"),  # the referrer's own email: rejected
        "unattributed": ("c-none", None),
        "pending": ("c-waits", None),
    }.items():
        body: dict[str, object] = {"customer_id": customer, "referral_code": code, "email": email}
        if status == "unattributed":  # the company says it is its customer already
            body["existing_customer"] = True
        if status == "pending":  # a code attribution has not heard of (yet)
            body["referral_code"] = "NOPE-0000"
        response = await tracking.post("signups", body)
        assert response.json()["status"] == status, response.text
        ids[status] = response.json()["signup_id"]
    return ids


async def test_referrals_list_every_status_unless_filtered(tracking: Tracking) -> None:
    ids = await _signups(tracking)

    async def listed(**params: object) -> set[str]:
        response = await tracking.get("referrals", **params)
        assert response.status_code == 200, response.text
        return {item["referral_id"] for item in response.json()["items"]}

    assert await listed() == set(ids.values())
    assert await listed(status="flagged") == {ids["flagged"]}
    assert await listed(status=["active", "flagged"]) == {ids["active"], ids["flagged"]}
    assert await listed(status="rejected,unattributed") == {ids["rejected"], ids["unattributed"]}
    assert await listed(status="pending") == {ids["pending"]}
    # Pages walk every status in one order, none twice.
    first = (await tracking.get("referrals", limit=3)).json()
    rest = (await tracking.get("referrals", limit=3, cursor=first["next_cursor"])).json()
    seen = [i["referral_id"] for i in first["items"] + rest["items"]]
    assert sorted(seen) == sorted(ids.values()) and rest["next_cursor"] is None


async def test_an_unknown_status_is_refused_naming_the_parameter(tracking: Tracking) -> None:
    for value in ["pending_review", "active,bogus", ["active", "bogus"], "active,", ""]:
        response = await tracking.get("referrals", status=value)
        assert response.status_code == 422, value
        problem = response.json()
        # The answer names the parameter and the values it takes.
        assert problem["field"] == "status" and "unattributed" in problem["detail"], value


async def test_a_value_postgres_cannot_store_names_its_field(tracking: Tracking) -> None:
    _, code = await tracking.enroll()
    response = await tracking.post("signups", {"customer_id": "c\x00", "referral_code": code})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/unstorable-value")
    assert problem["field"] == "customer_id" and "NUL" in problem["detail"]


async def test_a_body_that_is_not_json(tracking: Tracking) -> None:
    as_text = await tracking.client.post(
        "/v1/signups",
        content=b'{"customer_id": "c1"}',
        headers={**tracking.auth, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415 and as_text.headers["content-type"] == PROBLEM_JSON
    assert as_text.json()["field"] == "Content-Type"
    broken = await tracking.client.post(
        "/v1/signups",
        content=b'{"customer_id":\n "c1",}',
        headers={**tracking.auth, "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    problem = broken.json()
    assert problem["field"] == "body" and problem["type"].endswith("/malformed-json")
    assert "line 2, column 7" in problem["detail"]  # the "}" after the comma
