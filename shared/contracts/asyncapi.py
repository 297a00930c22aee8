"""The event contracts as one AsyncAPI 3 document (docs/asyncapi.json).

``python -m shared.contracts.asyncapi`` rewrites it; a test fails when it is out of step with
the models, so the published contract is always the one the code speaks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.contracts import EVENTS

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"

PRODUCERS = {
    "program.published": "links",
    "participant.enrolled": "links",
    "participant.erased": "links",
    "apikey.issued": "links",
    "apikey.revoked": "links",
    "link.clicked": "links",
    "link.shared": "links",
    "referral.signed_up": "attribution",
    "referral.pending": "attribution",
    "referral.converted": "attribution",
    "referral.flagged": "attribution",
    "referral.rejected": "attribution",
    "referral.reversed": "attribution",
    "reward.created": "rewards",
    "reward.issued": "rewards",
    "reward.reversed": "rewards",
    "reward.failed": "rewards",
    "milestone.reached": "rewards",
}

_CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode, plus W3C trace context.",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "De-duplication key"},
        "ce_source": {"type": "string", "description": "The producing service"},
        "ce_type": {"type": "string", "description": "Contract name and major version"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string"},
        "tracestate": {"type": "string"},
    },
}


def _name(event: type) -> str:
    return event.__name__


def document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(e, "serialization") for e in EVENTS], ref_template="#/components/schemas/{model}"
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event in EVENTS:
        name = _name(event)
        key_doc = (event.key.__doc__ or "").strip()
        messages[name] = {
            "name": event.TYPE,
            "title": name,
            "summary": (event.__doc__ or "").strip().split("\n")[0] or event.TYPE,
            "contentType": "application/json",
            "headers": _CE_HEADERS,
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": key_doc or "Partition key"}}
            },
        }
        channels[event.TOPIC] = {
            "address": event.TOPIC,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "description": f"Published by {PRODUCERS[event.TOPIC]}; "
            f"dead letters go to {event.TOPIC}.dlq.",
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{event.TOPIC}"},
            "messages": [{"$ref": f"#/channels/{event.TOPIC}/messages/{name}"}],
            "x-producer": PRODUCERS[event.TOPIC],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Referral platform events",
            "version": "1.0.0",
            "description": "Every event the services publish. Envelope: CloudEvents 1.0 in "
            "Kafka binary mode; ce_id is the de-duplication key; referral and reward topics "
            "are keyed by the referrer id.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas["$defs"]},
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            print(f"{DOC_PATH} is out of date: run python -m shared.contracts.asyncapi")
            return 1
        return 0
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
