"""A participant is read only under its own program's path (the real app, 404 otherwise)."""

from __future__ import annotations

import uuid

import httpx

from tests.integration.notifications.conftest import World


async def test_another_programs_participant_is_not_found(
    world: World, api: httpx.AsyncClient
) -> None:
    ours, theirs = await world.program(), await world.program()
    ada = (await world.enrol(theirs, email="ada@example.com")).participant_id
    own = await api.get(f"/v1/programs/{theirs}/participants/{ada}/notifications")
    assert own.status_code == 200 and [i["kind"] for i in own.json()["items"]] == ["welcome"]
    for path in ("notifications", "preferences"):
        response = await api.get(f"/v1/programs/{ours}/participants/{ada}/{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/participant-not-found")
    # Never heard of: not found either.
    unknown = await api.get(f"/v1/programs/{ours}/participants/{uuid.uuid4()}/notifications")
    assert unknown.status_code == 404
    # Enrolled in our program with nothing in the feed yet (erased items): empty, not 404.
    bo = (await world.enrol(ours)).participant_id
    await world.pool.execute("DELETE FROM notifications WHERE participant_id = $1", bo)
    empty = await api.get(f"/v1/programs/{ours}/participants/{bo}/notifications")
    assert empty.status_code == 200 and empty.json()["items"] == []
    # A reward told before the enrolment arrived is in the feed of its own program only.
    early = uuid.uuid4()
    await world.pool.execute(
        "INSERT INTO notifications (id, event_id, program_id, participant_id, kind, title, body) "
        "VALUES ($1, $1, $2, $3, 'reward_issued', 't', 'b')",
        uuid.uuid4(),
        ours,
        early,
    )
    seen = await api.get(f"/v1/programs/{ours}/participants/{early}/notifications")
    assert seen.status_code == 200 and len(seen.json()["items"]) == 1
    elsewhere = await api.get(f"/v1/programs/{theirs}/participants/{early}/notifications")
    assert elsewhere.status_code == 404
