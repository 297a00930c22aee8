"""Programs, participants, sharing and erasure through the API, with the events they publish."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.contracts import (
    LinkShared,
    ParticipantEnrolled,
    ParticipantErased,
    ProgramPublished,
)
from shared.http.auth import hash_key
from tests.integration.kafka_helpers import read_topic
from tests.integration.links.conftest import Links

BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"}


async def test_versions_are_published_listed_and_scheduled(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    v2 = await links.http.post(
        f"/v1/programs/{pid}/versions",
        headers=links.admin,
        json={
            "definition": {"destination_url": "https://shop.example.com/v2",
                           "allowed_hosts": ["shop.example.com"]},
            "effective_from": later,
        },
    )  # fmt: skip
    assert v2.status_code == 201 and v2.json()["version"] == 2
    assert v2.json()["in_force"] is False
    # Still version 1 in force: the redirect goes to its destination.
    code = (await links.enrol(pid)).json()["code"]
    response = await links.click(code, headers=BROWSER)
    assert response.headers["location"].startswith("https://shop.example.com/welcome")
    current = (await links.http.get(f"/v1/programs/{pid}", headers=links.admin)).json()
    assert current["version"] == 1 and current["latest_version"] == 2
    page = await links.http.get(f"/v1/programs/{pid}/versions?limit=1", headers=links.admin)
    assert [v["version"] for v in page.json()["items"]] == [1]
    rest = await links.http.get(
        f"/v1/programs/{pid}/versions?cursor={page.json()['next_cursor']}", headers=links.admin
    )
    assert [v["version"] for v in rest.json()["items"]] == [2]
    assert rest.json()["next_cursor"] is None
    records = await read_topic(links.settings, ProgramPublished.TOPIC, expect=2)
    published = [ProgramPublished.model_validate_json(r.value) for r in records]
    assert sorted(p.version for p in published) == [1, 2]


async def test_effective_from_in_the_past_is_refused(links: Links) -> None:
    program = await links.program()
    response = await links.http.post(
        f"/v1/programs/{program['id']}/versions",
        headers=links.admin,
        json={
            "definition": {"destination_url": "https://shop.example.com/"},
            "effective_from": "2020-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "effective_from"


async def test_a_paused_program_sends_friends_to_its_fallback_and_takes_no_enrolments(
    links: Links,
) -> None:
    program = await links.program()
    pid = program["id"]
    code = (await links.enrol(pid)).json()["code"]
    assert (await links.click(code, headers=BROWSER)).status_code == 302  # cached now
    paused = await links.http.post(f"/v1/programs/{pid}/pause", headers=links.admin)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    response = await links.click(code, headers=BROWSER)
    assert response.headers["location"] == "https://shop.example.com/sorry"
    refused = await links.enrol(pid)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/program-paused")
    again = await links.http.post(f"/v1/programs/{pid}/pause", headers=links.admin)
    assert again.status_code == 409
    resumed = await links.http.post(f"/v1/programs/{pid}/resume", headers=links.admin)
    assert resumed.json()["status"] == "active" and resumed.json()["version"] == 3
    response = await links.click(code, headers=BROWSER)
    assert response.headers["location"].startswith("https://shop.example.com/welcome")
    assert (await links.enrol(pid)).status_code == 201


async def test_vanity_codes_are_checked_unique_and_not_reserved(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    ok = await links.enrol(pid, code="Summer-Sam")
    assert ok.status_code == 201 and ok.json()["code"] == "Summer-Sam"
    for code, status in [("summer-sam", 409), ("admin", 422), ("a b", 422), ("ab", 422),
                         ("-lead", 422), ("x" * 33, 422)]:  # fmt: skip
        response = await links.enrol(pid, code=code)
        assert response.status_code == status, code
        assert response.json()["field"] == "code"


async def test_enrolment_is_idempotent_and_carries_the_variant(links: Links) -> None:
    program = await links.program(
        variants=[{"name": "control", "weight": 1}, {"name": "double", "weight": 1}]
    )
    pid = program["id"]
    first = await links.enrol(pid, external_user_id="u-1", email="a@b.example", name="Ann")
    again = await links.enrol(pid, external_user_id="u-1")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["code"] == again.json()["code"]
    assert first.json()["variant"] == again.json()["variant"] in {"control", "double"}
    others = [(await links.enrol(pid)).json()["variant"] for _ in range(20)]
    assert set(Counter(others)) == {"control", "double"}
    records = await read_topic(links.settings, ParticipantEnrolled.TOPIC, expect=21)
    events = {e.external_user_id: e for e in
              (ParticipantEnrolled.model_validate_json(r.value) for r in records)}  # fmt: skip
    assert events["u-1"].variant == first.json()["variant"]
    assert events["u-1"].email == "a@b.example" and events["u-1"].link_url.endswith(
        f"/r/{first.json()['code']}"
    )


async def test_shares_are_published_and_unknown_channels_refused(links: Links) -> None:
    program = await links.program(links={"channels": ["email", "whatsapp"]})
    participant = (await links.enrol(program["id"])).json()
    assert set(participant["share_links"]) == {"email", "whatsapp"}
    path = f"/v1/programs/{program['id']}/participants/{participant['id']}/shares"
    ok = await links.http.post(path, headers=links.admin, json={"channel": "email"})
    assert ok.status_code == 201
    bad = await links.http.post(path, headers=links.admin, json={"channel": "x"})
    assert bad.status_code == 422 and bad.json()["field"] == "channel"
    [record] = await read_topic(links.settings, LinkShared.TOPIC, expect=1)
    shared = LinkShared.model_validate_json(record.value)
    assert (shared.channel, shared.code) == ("email", participant["code"])


async def test_qr_codes_of_a_link(links: Links) -> None:
    program = await links.program()
    participant = (await links.enrol(program["id"])).json()
    svg = await links.http.get(f"/qr/{participant['code']}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    png = await links.http.get(f"/qr/{participant['code']}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert (await links.http.get("/qr/NOSUCHCODE.svg")).status_code == 404


async def test_erasure_drops_personal_data_and_stops_the_link(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    participant = (
        await links.enrol(pid, external_user_id="erase-me", email="e@x.example", name="Eve")
    ).json()
    code = participant["code"]
    assert (await links.click(code, headers=BROWSER)).status_code == 302
    path = f"/v1/programs/{pid}/participants/{participant['id']}"
    # A program key may not erase: the admin key is needed.
    key = (await links.http.post(f"/v1/programs/{pid}/keys", headers=links.admin)).json()
    forbidden = await links.http.delete(
        path, headers={"Authorization": f"Bearer {key['secret_key']}"}
    )
    assert forbidden.status_code == 403
    erased = await links.http.delete(path, headers=links.admin)
    assert erased.status_code == 200
    assert (await links.http.delete(path, headers=links.admin)).status_code == 200
    # The link now goes to the fallback (this program has one), the QR code is gone.
    response = await links.click(code, headers=BROWSER)
    assert response.headers["location"] == "https://shop.example.com/sorry"
    assert (await links.http.get(f"/qr/{code}.svg")).status_code == 404
    conn = await asyncpg.connect(links.settings.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT email, name, external_user_id FROM participants WHERE id = $1",
            uuid.UUID(participant["id"]),
        )
    finally:
        await conn.close()
    assert row["email"] is None and row["name"] is None
    assert "erase-me" not in row["external_user_id"]
    [record] = await read_topic(links.settings, ParticipantErased.TOPIC, expect=1)
    event = ParticipantErased.model_validate_json(record.value)
    assert str(event.participant_id) == participant["id"] and event.code == code
    # The same user may enrol again and gets a new code.
    back = await links.enrol(pid, external_user_id="erase-me")
    assert back.status_code == 201 and back.json()["code"] != code


async def test_management_needs_the_right_key(links: Links) -> None:
    first = await links.program()
    second = await links.program()
    key = (await links.http.post(f"/v1/programs/{second['id']}/keys", headers=links.admin)).json()
    foreign = {"Authorization": f"Bearer {key['secret_key']}"}
    for method, path in [
        ("GET", f"/v1/programs/{first['id']}"),
        ("GET", f"/v1/programs/{first['id']}/versions"),
        ("POST", f"/v1/programs/{first['id']}/participants"),
    ]:
        response = await links.http.request(method, path, headers=foreign, json={})
        assert response.status_code == 403, path
    # A program key cannot pause (admin only), not even its own program.
    own = await links.http.post(f"/v1/programs/{second['id']}/pause", headers=foreign)
    assert own.status_code == 403


async def test_the_internal_key_endpoint_answers_for_a_key_hash(links: Links) -> None:
    program = await links.program()
    pid = program["id"]
    key = (await links.http.post(f"/v1/programs/{pid}/keys", headers=links.admin)).json()
    url = f"/v1/internal/keys/{hash_key(key['secret_key'])}"
    status = await links.http.get(url, headers=links.admin)
    assert status.status_code == 200
    assert status.json() == {
        "key_hash": hash_key(key["secret_key"]),
        "program_id": pid,
        "revoked": False,
    }
    # Only the platform's services (the admin key) may ask; a program key may not.
    own_key = {"Authorization": f"Bearer {key['secret_key']}"}
    assert (await links.http.get(url, headers=own_key)).status_code == 403
    deleted = await links.http.delete(
        f"/v1/programs/{pid}/keys/{key['key_id']}", headers=links.admin
    )
    assert deleted.status_code == 204
    assert (await links.http.get(url, headers=links.admin)).json()["revoked"] is True
    unknown = await links.http.get(f"/v1/internal/keys/{hash_key('rk_never')}", headers=links.admin)
    assert unknown.status_code == 404 and unknown.json()["field"] == "key_hash"
    malformed = await links.http.get("/v1/internal/keys/not-a-hash", headers=links.admin)
    assert malformed.status_code == 422 and malformed.json()["field"] == "key_hash"
