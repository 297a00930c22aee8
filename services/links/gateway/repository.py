"""Queries of the gateway: the one look-up a redirect makes on a cache miss."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

_RESOLVE_CODE = """
SELECT pa.id AS participant_id, pa.program_id, pa.code, pa.erased_at IS NULL AS active,
       v.status, v.definition,
       extract(epoch FROM (SELECT min(n.effective_from) FROM program_versions n
          WHERE n.program_id = pa.program_id AND n.effective_from > now()
            AND n.version > coalesce(v.version, 0)) - now())::float8
         AS seconds_to_next_version
FROM participants pa
LEFT JOIN LATERAL (
  SELECT version, status, definition FROM program_versions
  WHERE program_id = pa.program_id AND effective_from <= now()
  ORDER BY version DESC LIMIT 1
) v ON true
WHERE lower(pa.code) = lower($1)
"""


async def resolve_code(pool: Conn, code: str) -> asyncpg.Record | None:
    """What the redirect needs for a code: one indexed look-up with the version in force and
    the time until a scheduled version takes over."""
    return await pool.fetchrow(_RESOLVE_CODE, code)
