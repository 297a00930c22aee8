"""``python -m devstack`` (``make dev``): run the whole system locally until Ctrl-C.
``BROKER=kafka`` or ``BROKER=kafka-cluster`` runs it on Apache Kafka instead of Tansu."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from devstack.kafka import KafkaSetupError
from devstack.stack import Stack, StackConfig

STATE_DIR = Path(".dev")


def _broker_name(stack: Stack) -> str:
    if stack.broker is not None:
        return "embedded Tansu, "
    if stack.kafka is not None:
        nodes = "one node" if stack.kafka.size == 1 else f"{stack.kafka.size} nodes"
        return (
            f"Apache Kafka {stack.kafka.distribution.version} ({nodes}, "
            f"up in {stack.kafka.startup_seconds:.0f}s), "
        )
    return ""


def _banner(stack: Stack, seconds: float) -> str:
    lines = [
        "",
        f"Referral platform is up ({seconds:.1f}s to ready).",
        f"  Postgres : {'embedded, ' if stack.postgres else ''}"
        f"{stack.server_url.rsplit('@', 1)[-1]}",
        f"  Broker   : {_broker_name(stack)}{stack.bootstrap}",
    ]
    for service in ("links", "attribution", "rewards", "notifications"):
        lines.append(f"  {service:<13}: {stack.url(service)}  (docs: {stack.url(service)}/docs)")
    lines += [
        f"  Admin key : stored in {STATE_DIR / 'admin_api_key'} (or set ADMIN_API_KEY)",
        f"  Console   : {stack.url('links')}/console (sign in with the admin key)",
        "",
        "Try one referral end to end:   make journey  (prints the participant's scoreboard URL)",
        "Or by hand:",
        f"  curl -s -X POST {stack.url('links')}/v1/programs \\",
        '    -H "Authorization: Bearer $(cat .dev/admin_api_key)" \\',
        "    -H 'Content-Type: application/json' \\",
        '    -d \'{"name":"Demo","definition":{"destination_url":"https://shop.example.com/",'
        '"rewards":{"referrer":{"amount":2000,"unit":"USD"}}}}\'',
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    try:
        stack = Stack(StackConfig.from_env(STATE_DIR))
    except ValueError as exc:  # an unknown BROKER
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    try:
        try:
            stack.start_infra()
        except KafkaSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        asyncio.run(stack.prepare())
        stack.start_services()
        asyncio.run(stack.wait_ready(timeout_s=90))
        print(_banner(stack, time.perf_counter() - started), flush=True)
        while not stopping:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", flush=True)
                    stopping = True
            time.sleep(0.5)
        return 0
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
