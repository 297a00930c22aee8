"""The consumer's lag gauge after a rebalance: partitions this member lost are forgotten, not
asked about (aiokafka asserts on the high-water mark of a partition it does not own)."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition

from shared.messaging.consumer import EventConsumer
from shared.metrics import CONSUMER_LAG

KEPT, LOST = TopicPartition("reward.issued", 0), TopicPartition("reward.issued", 1)


class _Member:
    """What the lag gauge asks of an aiokafka consumer that owns only ``KEPT`` now."""

    def assignment(self) -> set[TopicPartition]:
        return {KEPT}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp == KEPT, "Partition is not assigned"
        return 12


def test_lag_is_recorded_only_for_partitions_still_assigned() -> None:
    consumer = EventConsumer(
        name="lag-test", pool=None, producer=None, handlers={}, bootstrap_servers="unused:9092"
    )  # type: ignore[arg-type]
    consumer._positions = {KEPT: 10, LOST: 3}
    member: Any = _Member()
    consumer._record_lag(member)
    assert consumer._positions == {KEPT: 10}
    assert CONSUMER_LAG.labels("lag-test", "reward.issued", "0")._value.get() == 2
