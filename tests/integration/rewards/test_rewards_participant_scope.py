"""A participant is read only under its own program's path: the rewards app in-process (its
real lifespan: pool, producer, consumer) over a fresh database and broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.rewards import consumers
from shared.contracts import ParticipantEnrolled
from tests.integration.rewards.conftest import ADMIN, Client
from tests.integration.rewards.test_rewards_flow import apply, conversion, convert, publish


def _enrolled(program_id: uuid.UUID) -> ParticipantEnrolled:
    participant_id = uuid.uuid4()
    return ParticipantEnrolled(
        participant_id=participant_id,
        program_id=program_id,
        external_user_id=f"u-{participant_id.hex[:6]}",
        code="ABCDEFGH23",
        link_url="https://ref.example.com/r/x",
        enrolled_at=datetime.now(UTC),
    )


async def test_another_programs_participant_is_not_found(
    app_client: Client,
) -> None:
    client, pool = app_client
    ours, theirs = uuid.uuid4(), uuid.uuid4()
    for program_id in (ours, theirs):
        await publish(pool, program_id, {"referrer": {"amount": 2000, "unit": "USD"}})
    enrolled = _enrolled(theirs)
    await apply(pool, consumers.on_participant_enrolled, enrolled)
    await convert(pool, conversion(theirs, enrolled.participant_id))
    # A referrer whose conversion arrived before (or without) its enrolment is known too.
    early = uuid.uuid4()
    await convert(pool, conversion(theirs, early))

    for participant_id in (enrolled.participant_id, early):
        own = await client.get(
            f"/v1/programs/{theirs}/participants/{participant_id}/rewards", headers=ADMIN
        )
        assert own.status_code == 200
        assert own.json()["balances"] == {"USD": 2000}

        path = f"/v1/programs/{ours}/participants/{participant_id}"
        read = await client.get(f"{path}/rewards", headers=ADMIN)
        spend = await client.post(
            f"{path}/redemptions", json={"amount": 1, "unit": "USD"}, headers=ADMIN
        )
        for response in (read, spend):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/participant-not-found")

    # Enrolled in our program, nothing earned yet: an empty balance, not a 404.
    newcomer = _enrolled(ours)
    await apply(pool, consumers.on_participant_enrolled, newcomer)
    fresh = await client.get(
        f"/v1/programs/{ours}/participants/{newcomer.participant_id}/rewards", headers=ADMIN
    )
    assert fresh.status_code == 200 and fresh.json()["rewards"] == []
    # Never heard of: not found.
    unknown = await client.get(
        f"/v1/programs/{ours}/participants/{uuid.uuid4()}/rewards", headers=ADMIN
    )
    assert unknown.status_code == 404
