"""The AsyncAPI document is generated from the contract models and kept in step."""

from __future__ import annotations

import json

from shared.contracts import EVENTS
from shared.contracts.asyncapi import DOC_PATH, document, render


def test_committed_document_matches_the_models() -> None:
    assert DOC_PATH.read_text() == render(), "run: python -m shared.contracts.asyncapi"


def test_every_event_has_a_channel_an_operation_and_a_schema() -> None:
    doc = json.loads(render())
    assert doc["asyncapi"].startswith("3.")
    for event in EVENTS:
        assert doc["channels"][event.TOPIC]["address"] == event.TOPIC
        message = doc["components"]["messages"][event.__name__]
        assert message["name"] == event.TYPE
        schema = doc["components"]["schemas"][event.__name__]
        assert set(schema["required"]) <= set(schema["properties"])
        assert doc["operations"][f"publish{event.__name__}"]["action"] == "send"


def test_money_is_an_integer_in_the_contract() -> None:
    schemas = document()["components"]["schemas"]
    assert schemas["ReferralConverted"]["properties"]["amount"]["type"] == "integer"
    assert schemas["RewardIssued"]["properties"]["amount"]["type"] == "integer"
