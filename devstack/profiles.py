"""Which broker a local run uses, and the settings the services need on it. Production
defaults in ``shared.settings`` are for a replicated Apache Kafka; a development broker
overrides only what it must, through the services' environment."""

from __future__ import annotations

import os
from typing import Literal

from devstack.embedded import AUTO_CREATED_PARTITIONS

BrokerKind = Literal["tansu", "kafka", "kafka-cluster"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("tansu", "kafka", "kafka-cluster")
CLUSTER_SIZE = 3
# Tansu answers a fetch only when its wait is over, even when data arrived meanwhile, so every
# idle consumer polls at this period. 15 ms cost 0.9 of a core in Tansu and 8-18 % in each
# service with no traffic at all; 50 ms costs 0.42 and 4-8 %, with the same latency at half
# the full rate (the CPU it frees makes up for the wait; docs/architecture.md).
TANSU_FETCH_MAX_WAIT_MS = 50


def broker_kind(value: str | None) -> BrokerKind:
    kind = (value or "tansu").strip().lower()
    if kind not in BROKER_KINDS:
        raise ValueError(f"unknown broker {value!r}: choose one of {', '.join(BROKER_KINDS)}")
    return kind  # type: ignore[return-value]


def kafka_nodes(kind: BrokerKind) -> int:
    return CLUSTER_SIZE if kind == "kafka-cluster" else 1


def broker_env(kind: BrokerKind) -> dict[str, str]:
    """Environment overrides for services (and tests, benches) on a development broker."""
    if kind == "tansu":
        return {
            # Tansu cannot answer InitProducerId and does not wake long polls on new data.
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_FETCH_MAX_WAIT_MS": str(TANSU_FETCH_MAX_WAIT_MS),
            # The count Tansu gives the topics it recreates after a restart (embedded.py).
            "KAFKA_TOPIC_PARTITIONS": str(AUTO_CREATED_PARTITIONS),
            "KAFKA_REPLICATION_FACTOR": "1",
            "KAFKA_MIN_INSYNC_REPLICAS": "1",
        }
    if kind == "kafka":
        return {"KAFKA_REPLICATION_FACTOR": "1", "KAFKA_MIN_INSYNC_REPLICAS": "1"}
    return {}  # the three-node cluster runs the production defaults


def settings_overrides(kind: BrokerKind) -> dict[str, object]:
    """``broker_env`` as ``ServiceSettings`` keyword arguments."""
    return {k.lower(): v for k, v in broker_env(kind).items()}


def broker_from_env() -> BrokerKind:
    return broker_kind(os.environ.get("BROKER"))
