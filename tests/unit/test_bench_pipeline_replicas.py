"""The pure parts of the pipeline benchmark's ``--replicas``: splitting the load, labelling the
runs and replicas, and summing the per-replica events and the sampled lock waits."""

from __future__ import annotations

import pytest

from bench.pipeline_driver import round_robin, shares
from bench.pipeline_replicas import (
    LockWaits,
    ReplicaEvents,
    parse_counts,
    print_spread,
    replica_label,
    run_label,
    spread,
)


def test_round_robin_deals_every_item_once_in_near_equal_parts() -> None:
    items = list(range(7))
    parts = round_robin(items, 2)
    assert parts == [[0, 2, 4, 6], [1, 3, 5]]
    assert round_robin(items, 1) == [items]
    assert sorted(x for part in round_robin(items, 3) for x in part) == items


def test_shares_keep_the_total_and_give_each_at_least_one() -> None:
    assert shares(32, 1) == [32]
    assert shares(32, 2) == [16, 16]
    assert shares(7, 3) == [3, 2, 2]
    assert shares(1, 2) == [1, 1]  # wrk needs a connection per process


def test_parse_counts() -> None:
    assert parse_counts("1") == [1]
    assert parse_counts("1,2") == [1, 2]
    for bad in ("0", "", "1,-2"):
        with pytest.raises(ValueError):
            parse_counts(bad)


def test_labels_keep_the_plain_run_unchanged() -> None:
    assert replica_label("attribution", 0, 1) == "attribution"
    assert replica_label("attribution", 1, 2) == "attribution#2"
    assert run_label("tansu", 1, [1]) == "tansu"
    assert run_label("tansu", 1, [1, 2]) == "tansu,replicas=1"
    assert run_label("kafka", 2, [2]) == "kafka,replicas=2"


def test_spread_gives_each_replica_its_events_and_share_of_its_service() -> None:
    before = {
        "rewards#1": ReplicaEvents(consumed=10, relayed=5),
        "rewards#2": ReplicaEvents(consumed=0, relayed=0),
        "links": ReplicaEvents(consumed=3, relayed=0),
    }
    after = {
        "rewards#1": ReplicaEvents(consumed=70, relayed=205),
        "rewards#2": ReplicaEvents(consumed=20, relayed=0),
        "links": ReplicaEvents(consumed=3, relayed=0),
    }
    table = spread(before, after)
    assert table == {
        "rewards#1": (60, 0.75, 200),
        "rewards#2": (20, 0.25, 0),
        "links": (0, 0.0, 0),
    }
    lines = print_spread("full-speed", table)
    assert lines == [
        "rewards#1=60 (75%, relayed 200) rewards#2=20 (25%, relayed 0)",
        "links=0 (0%, relayed 0)",
    ]


def test_lock_waits_weigh_each_sample_by_its_interval() -> None:
    waits = LockWaits()
    waits.add(0.05, [("referral_rewards", "transactionid", 2)])
    waits.add(0.10, [("referral_rewards", "tuple", 1), ("referral_links", "relation", 1)])
    waits.add(0.05, [])
    assert waits.samples == 3
    assert waits.seconds == pytest.approx(0.20)
    assert waits.by_database["referral_rewards"] == pytest.approx(0.20)
    assert waits.summary(["referral_rewards", "referral_links", "referral_attribution"]) == (
        "referral_rewards=0.20s (transactionid 0.10, tuple 0.10) "
        "referral_links=0.10s (relation 0.10) referral_attribution=0.00s"
    )
