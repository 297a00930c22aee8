"""The whole pipeline under load: referral journeys through the four services as real processes.

Starts the stack (embedded Postgres and broker unless TEST_DATABASE_URL /
TEST_KAFKA_BOOTSTRAP_SERVERS name servers), enrols participants, signs up one referee per
journey (typed referral code), then sends the conversions, at a fixed offered rate and at full
speed, and waits until every reward is issued and every notification recorded.

Prints conversions per second sustained (first conversion accepted -> last reward issued),
p50/p95/p99 of conversion accepted -> reward issued and -> notification recorded (database
timestamps of the services, one clock), CPU seconds and peak RSS per service, and a ratio
against a baseline measured in the same run: the rate at which this driver gets answers from
attribution's /healthz (the HTTP ceiling of client + server on this machine). Last line:

    pipeline: conversions_per_s=<n> p99_reward_ms=<x> p99_notify_ms=<y> lost=<n> duplicated=<n>

    python -m bench.pipeline [--journeys N] [--rate R] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from devstack.stack import Stack, StackConfig, database_url_for

SERVICES = ("links", "attribution", "rewards", "notifications")
PROFILE_DIR = Path("test-output")


@dataclass
class Sampler:
    """CPU seconds and peak RSS of each service process, sampled in a thread."""

    pids: dict[str, int]
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _cpu(self, pid: int) -> float:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self.cpu_start = {s: self._cpu(p) for s, p in self.pids.items()}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for service, pid in self.pids.items():
                rss = psutil.Process(pid).memory_info().rss
                self.peak_rss[service] = max(self.peak_rss.get(service, 0), rss)
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        self.cpu_end = {s: self._cpu(p) for s, p in self.pids.items()}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _post(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(url, headers=headers, json=body)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"POST {url} -> {response.status_code}: {response.text[:300]}")
    return response.json()  # type: ignore[no-any-return]


async def baseline_rps(
    http: httpx.AsyncClient, url: str, seconds: float, concurrency: int
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await http.get(url)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return done / (time.perf_counter() - started)


async def setup_program(
    stack: Stack, http: httpx.AsyncClient, participants: int
) -> tuple[str, dict[str, str], list[str]]:
    links = stack.url("links")
    admin = {"Authorization": f"Bearer {stack.admin_api_key}"}
    program = await _post(
        http,
        f"{links}/v1/programs",
        admin,
        {
            "name": "pipeline bench",
            "definition": {
                "destination_url": "https://shop.example.com/",
                "rewards": {
                    "referrer": {"amount": 1000, "unit": "USD"},
                    "referee": {"amount": 1000, "unit": "USD"},
                },
                # One driver makes every signup: the per-referrer/IP velocity limits would flag it.
                "fraud": {
                    "velocity": {"action": "allow"},
                    "same_ip_or_device": {"action": "allow"},
                },
            },
        },
    )
    key = await _post(http, f"{links}/v1/programs/{program['id']}/keys", admin, {})
    server = {"Authorization": f"Bearer {key['secret_key']}"}
    codes = []
    for i in range(participants):
        p = await _post(
            http,
            f"{links}/v1/programs/{program['id']}/participants",
            server,
            {"external_user_id": f"bench-{i}"},
        )
        codes.append(p["code"])
    return program["id"], server, codes


async def wait_for_key(stack: Stack, http: httpx.AsyncClient, server: dict[str, str]) -> None:
    """The key and participants reach attribution through events; wait for them."""
    url = f"{stack.url('attribution')}/v1/clicks/{uuid.uuid4()}"
    for _ in range(200):
        if (await http.get(url, headers=server)).status_code == 404:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("attribution never learned the program key")


async def run_phase(
    stack: Stack,
    http: httpx.AsyncClient,
    server: dict[str, str],
    codes: list[str],
    journeys: int,
    rate: float | None,
    concurrency: int,
    label: str,
) -> dict[str, Any]:
    attribution = stack.url("attribution")
    tag = uuid.uuid4().hex[:6]
    customers = [f"{label}-{tag}-{i}" for i in range(journeys)]
    semaphore = asyncio.Semaphore(concurrency)

    async def signup(i: int) -> None:
        async with semaphore:
            body = {"customer_id": customers[i], "referral_code": codes[i % len(codes)]}
            result = await _post(http, f"{attribution}/v1/signups", server, body)
            if not result["attributed"]:
                raise RuntimeError(f"signup not attributed: {result}")

    await asyncio.gather(*[signup(i) for i in range(journeys)])
    accepted: dict[str, float] = {}

    async def convert(i: int) -> None:
        async with semaphore:
            body = {
                "customer_id": customers[i],
                "order_id": f"o-{customers[i]}",
                "amount": 5000,
                "currency": "USD",
            }
            result = await _post(http, f"{attribution}/v1/conversions", server, body)
            accepted[result["conversion_id"]] = time.time()

    started = time.perf_counter()
    if rate is None:
        await asyncio.gather(*[convert(i) for i in range(journeys)])
    else:
        tasks = []
        for i in range(journeys):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(convert(i)))
        await asyncio.gather(*tasks)
    sent_s = time.perf_counter() - started
    return {"accepted": accepted, "sent_s": sent_s, "label": label}


async def settle(
    stack: Stack, accepted: dict[str, float], timeout_s: float
) -> tuple[dict[str, datetime], dict[str, datetime], int]:
    """Wait for the rewards and notifications of these conversions; return their times."""
    ids = [uuid.UUID(c) for c in accepted]
    rewards_db = await asyncpg.connect(database_url_for(stack.server_url, "rewards"))
    notes_db = await asyncpg.connect(database_url_for(stack.server_url, "notifications"))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await rewards_db.fetch(
                "SELECT conversion_id, id, side, created_at FROM rewards "
                "WHERE conversion_id = ANY($1::uuid[])",
                ids,
            )
            issued = {
                str(r["conversion_id"]): r["created_at"] for r in rows if r["side"] == "referrer"
            }
            referrer_rewards = {
                str(r["id"]): str(r["conversion_id"]) for r in rows if r["side"] == "referrer"
            }
            duplicated = len(rows) - len({(r["conversion_id"], r["side"]) for r in rows})
            notes = await notes_db.fetch(
                "SELECT event_id, created_at FROM notifications WHERE kind = 'reward_issued' "
                "AND created_at > now() - interval '1 hour'"
            )
            # The feed row's event id is the reward.issued event; map it back through rewards'
            # outbox (which holds the reward id in the payload).
            outbox = await rewards_db.fetch(
                "SELECT event_id, convert_from(payload, 'UTF8')::jsonb->>'reward_id' AS reward "
                "FROM outbox WHERE topic = 'reward.issued' AND event_id = ANY($1::uuid[])",
                [n["event_id"] for n in notes],
            )
            reward_of_event = {str(o["event_id"]): o["reward"] for o in outbox}
            notified: dict[str, datetime] = {}
            for n in notes:
                conversion = referrer_rewards.get(reward_of_event.get(str(n["event_id"]), ""))
                if conversion is not None:
                    if conversion in notified:
                        duplicated += 1
                    notified[conversion] = n["created_at"]
            if (len(issued) == len(ids) and len(notified) == len(ids)) or (
                time.monotonic() > deadline
            ):
                return issued, notified, duplicated
            await asyncio.sleep(0.2)
    finally:
        await rewards_db.close()
        await notes_db.close()


def report(
    phase: dict[str, Any],
    issued: dict[str, datetime],
    notified: dict[str, datetime],
    duplicated: int,
) -> dict[str, float]:
    accepted: dict[str, float] = phase["accepted"]
    reward_ms = [
        max(0.0, (issued[c].timestamp() - t) * 1000) for c, t in accepted.items() if c in issued
    ]
    notify_ms = [
        max(0.0, (notified[c].timestamp() - t) * 1000) for c, t in accepted.items() if c in notified
    ]
    first = min(accepted.values())
    last = max((ts.timestamp() for ts in issued.values()), default=first)
    rate = len(issued) / max(last - first, 1e-9)
    lost = len(accepted) - len(issued)
    print(
        f"[{phase['label']}] {len(accepted)} conversions sent in {phase['sent_s']:.1f}s; "
        f"sustained {rate:.0f}/s to rewards issued"
    )
    for name, values in (("reward", reward_ms), ("notify", notify_ms)):
        print(
            f"[{phase['label']}] accepted -> {name}: p50={quantile(values, 0.5):.0f} ms "
            f"p95={quantile(values, 0.95):.0f} ms p99={quantile(values, 0.99):.0f} ms "
            f"(n={len(values)})"
        )
    print(
        f"[{phase['label']}] lost={lost} duplicated={duplicated} "
        f"not_notified={len(accepted) - len(notified)}"
    )
    return {
        "rate": rate,
        "p99_reward": quantile(reward_ms, 0.99),
        "p99_notify": quantile(notify_ms, 0.99),
        "lost": lost,
        "duplicated": duplicated + (len(accepted) - len(notified)),
    }


def start_profiler(pid: int, service: str) -> subprocess.Popen[bytes]:
    """py-spy samples the service while the full-speed phase runs (``--profile SERVICE``)."""
    out = PROFILE_DIR / f"profile-{service}.txt"
    PROFILE_DIR.mkdir(exist_ok=True)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_profile(service: str, top: int = 12) -> None:
    """From py-spy's collapsed stacks: the project's own functions by inclusive share, and the
    functions where the samples end (self time), wherever they live."""
    path = PROFILE_DIR / f"profile-{service}.txt"
    if not path.exists():
        print(f"no profile written for {service} (is py-spy installed?)")
        return
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf[_frame_name(frames[-1])] += n
        for frame in set(frames):
            if "(services/" in frame or "(shared/" in frame:
                inclusive[_frame_name(frame)] += n
    print(f"profile of {service}: {total} samples")
    print("  project functions, inclusive:")
    for frame, n in inclusive.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {frame}")
    print("  where time is spent (self):")
    for frame, n in leaf.most_common(top):
        print(f"    {100 * n / total:5.1f}%  {frame}")


def _frame_name(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1]}"


async def main_async(args: argparse.Namespace, root: Path) -> None:
    config = StackConfig.for_tests(root)
    stack = Stack(config)
    try:
        await stack.start()
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            ceiling = await baseline_rps(
                http, f"{stack.url('attribution')}/healthz", 3, args.concurrency
            )
            print(f"baseline: driver -> attribution /healthz {ceiling:.0f} req/s")
            _, server, codes = await setup_program(stack, http, args.participants)
            await wait_for_key(stack, http, server)
            sampler = Sampler({s: p.pid for s, p in stack.processes.items()})
            sampler.start()
            results = {}
            for label, rate in (("fixed-rate", args.rate), ("full-speed", None)):
                profiler = None
                if args.profile and label == "full-speed":
                    profiler = start_profiler(stack.processes[args.profile].pid, args.profile)
                phase = await run_phase(
                    stack, http, server, codes, args.journeys, rate, args.concurrency, label
                )
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    await asyncio.to_thread(profiler.wait, 30)
                    print_profile(args.profile)
                issued, notified, duplicated = await settle(stack, phase["accepted"], 120)
                results[label] = report(phase, issued, notified, duplicated)
            sampler.stop()
        for service in SERVICES:
            cpu = sampler.cpu_end[service] - sampler.cpu_start[service]
            print(
                f"{service:<13} cpu={cpu:.1f}s peak_rss={sampler.peak_rss[service] / 2**20:.0f} MiB"
            )
        full, fixed = results["full-speed"], results["fixed-rate"]
        print(
            f"ratio: full-speed conversions/s over the /healthz baseline = "
            f"{full['rate'] / ceiling:.3f}"
        )
        print(
            f"pipeline: conversions_per_s={full['rate']:.0f} "
            f"p99_reward_ms={fixed['p99_reward']:.0f} p99_notify_ms={fixed['p99_notify']:.0f} "
            f"lost={full['lost'] + fixed['lost']} "
            f"duplicated={full['duplicated'] + fixed['duplicated']}"
        )
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--journeys", type=int, default=1000)
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="offered conversions per second in the fixed-rate phase",
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument(
        "--profile",
        choices=SERVICES,
        help="sample this service with py-spy during the full-speed phase",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="refplat-bench-"))
    root.chmod(0o755)  # the embedded Postgres may run as another user
    asyncio.run(main_async(args, root))


if __name__ == "__main__":
    main()
