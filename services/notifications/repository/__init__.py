"""All SQL of notifications, as named functions, one module per table group: ``programs``
(program versions and their definitions), ``participants`` (participants, clicks, progress,
preferences, and the one-statement read a message needs), ``deliveries`` (the delivery log, its
attempts, and the feed rows written with them), ``feed``, ``templates``, ``endpoints`` (webhook
endpoints) and ``reminders``."""

from __future__ import annotations

import asyncpg

# Reads take either: a pool for the API's one-statement reads, a connection inside a transaction.
Conn = asyncpg.Connection | asyncpg.Pool
