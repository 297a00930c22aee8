"""The names the delivery log's ``trigger`` filter accepts and the rows each selects."""

from __future__ import annotations

from services.notifications.catalog import TRIGGERS
from services.notifications.trigger_names import FILTER_NAMES, stored_triggers
from shared.contracts import TOPICS


def test_every_template_trigger_and_event_name_is_accepted() -> None:
    assert set(FILTER_NAMES) == set(TRIGGERS) | set(TOPICS)


def test_a_name_selects_only_values_rows_are_stored_under() -> None:
    for name, stored in FILTER_NAMES.items():
        assert stored and set(stored) <= set(TRIGGERS) | set(TOPICS), name
        assert name in stored  # a name always selects its own rows


def test_an_event_name_selects_the_messages_it_caused() -> None:
    assert stored_triggers(["referral.signed_up"]) == ["referral.signed_up", "referral_signed_up"]
    assert stored_triggers(["participant.enrolled"]) == ["participant.enrolled", "welcome"]
    assert stored_triggers(["reward.issued"]) == [
        "reward.issued",
        "reward_issued",
        "reward_available",
    ]
    assert stored_triggers(["welcome", "participant.enrolled"]) == [
        "welcome",
        "participant.enrolled",
    ]
    # Every template trigger is reachable from itself.
    assert all(stored_triggers([t]) == [t] for t in TRIGGERS)
