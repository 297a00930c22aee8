"""All SQL of rewards except the ledger's (``services.rewards.ledger``), by table group:
``locks`` (advisory locks), ``programs`` (versions and webhook secrets), ``conversions``
(conversions, refunds received, erasures), ``rewards`` (reward rows: creation, transitions,
due work, read models), ``payouts`` (coupon pools, redemptions), ``participants`` (the program
each participant belongs to), ``adjustments`` (manual adjustments). Every function runs on
the connection (and in the transaction) it is given."""

from services.rewards.repository import (
    adjustments,
    conversions,
    locks,
    participants,
    payouts,
    programs,
    rewards,
)

__all__ = ["adjustments", "conversions", "locks", "participants", "payouts", "programs", "rewards"]
