"""``python -m devstack`` (``make dev``): run the whole system locally until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from devstack.stack import Stack, StackConfig

STATE_DIR = Path(".dev")


def _banner(stack: Stack, seconds: float) -> str:
    lines = [
        "",
        f"Referral platform is up ({seconds:.1f}s to ready).",
        f"  Postgres : {'embedded, ' if stack.postgres else ''}"
        f"{stack.server_url.rsplit('@', 1)[-1]}",
        f"  Broker   : {'embedded Tansu, ' if stack.broker else ''}{stack.bootstrap}",
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
    stack = Stack(StackConfig.from_env(STATE_DIR))
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    started = time.perf_counter()
    try:
        stack.start_infra()
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
