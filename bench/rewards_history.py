"""How the rewards rules' read (``repository.rewards.history``) grows with a referrer's history.

Starts an embedded Postgres with the services' migrations (or uses TEST_DATABASE_URL's
server), writes for each size a program of 10 referrers with that many rewarded conversions
each (a referrer reward and a referee reward per conversion, through the same triggers as the
service), vacuums, then runs the read through the service's own function (its statement is
prepared, so Postgres runs its generic plan after five calls) for one referrer and prints the
median round trip:

    rewards_history: per_referrer=<n> p50_ms=<x>
    rewards_history: growth=<p50 at the largest size / p50 at the smallest>

The ratio is the figure to watch: a read that sums the history grows with it (it was 30
times slower at 2,000 rewards per referrer than at 20); one that reads kept totals should not.

    python -m bench.rewards_history [--sizes 20,200,2000] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from devstack.stack import Stack, StackConfig, database_url_for
from services.rewards.repository.rewards import history
from shared.contracts.sections.rewards import RewardPolicy

REFERRERS = 10
POLICY = RewardPolicy.model_validate(
    {"referrer": {"amount": 500, "unit": "USD"}, "referee": {"amount": 500, "unit": "USD"}}
)

_CONVERSIONS = """
INSERT INTO conversions (conversion_id, referral_id, program_id, referrer_id,
    referee_customer_id, order_id, amount, currency, converted_at, program_version, status)
SELECT gen_random_uuid(), gen_random_uuid(), $1, ($2::uuid[])[1 + i % $3::int], 'cust-' || i,
    'order-' || i, 5000, 'USD', now() - make_interval(mins => i), 1, 'rewarded'
FROM generate_series(1, $3::int * $4::int) AS i
"""
_REWARDS = """
INSERT INTO rewards (id, conversion_id, program_id, program_version, referrer_id, side,
    recipient, amount, unit, status, rule)
SELECT gen_random_uuid(), c.conversion_id, c.program_id, 1, c.referrer_id, s.side,
    CASE s.side WHEN 'referrer' THEN c.referrer_id::text ELSE c.referee_customer_id END,
    500, 'USD', 'issued', 'base'
FROM conversions c, (VALUES ('referrer'), ('referee')) AS s (side)
WHERE c.program_id = $1
"""


async def timed_read(conn: asyncpg.Connection, size: int, calls: int) -> float:
    """Median milliseconds of the rules' read for a referrer with ``size`` rewards."""
    program = uuid.uuid4()
    referrers = [uuid.uuid4() for _ in range(REFERRERS)]
    await conn.execute(_CONVERSIONS, program, referrers, REFERRERS, size)
    await conn.execute(_REWARDS, program)
    await conn.execute("VACUUM ANALYZE")
    new_conversion = {
        "conversion_id": uuid.uuid4(),
        "program_id": program,
        "referrer_id": referrers[0],
        "referral_id": uuid.uuid4(),
        "referee_customer_id": "cust-new",
        "converted_at": datetime.now(UTC),
    }
    for _ in range(6):  # past the custom plans, to the generic one the service runs
        await history(conn, new_conversion, POLICY)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        _, _, held = await history(conn, new_conversion, POLICY)
        times.append((time.perf_counter() - started) * 1000)
    if held.referrer.lifetime != 500 * size:
        raise AssertionError(f"read {held.referrer.lifetime}, wrote {500 * size}")
    return statistics.median(times)


async def main_async(root: Path, sizes: list[int], calls: int) -> None:
    stack = Stack(StackConfig.for_tests(root))
    try:
        stack.start_infra()
        await stack.prepare()
        conn = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
        try:
            medians = {}
            for size in sizes:
                medians[size] = await timed_read(conn, size, calls)
                print(f"rewards_history: per_referrer={size} p50_ms={medians[size]:.3f}")
            growth = medians[sizes[-1]] / medians[sizes[0]]
            print(f"rewards_history: growth={growth:.1f}")
        finally:
            await conn.close()
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,2000", help="rewards per referrer")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    root = Path(tempfile.mkdtemp(prefix="refplat-history-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    try:
        asyncio.run(main_async(root, sizes, args.calls))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
