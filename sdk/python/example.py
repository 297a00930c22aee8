"""One referral through the Python SDK: create a program and its key, enrol a referrer, track a
friend's signup (with the referrer's code) and first purchase, wait for the referrer's reward,
and catch a typed problem. Against ``make dev``, after ``make sdk``:

    PYTHONPATH=sdk/build/python .venv/bin/python sdk/python/example.py

Base URLs: ``LINKS_URL``, ``ATTRIBUTION_URL``, ``REWARDS_URL``, ``NOTIFICATIONS_URL`` (default
``make dev``'s ports); the admin key: ``ADMIN_API_KEY`` or ``.dev/admin_api_key``."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from referral_platform_client import ReferralPlatform, ServiceUrls, ValidationError
from referral_platform_client.api.attribution import conversion, get_signup, signup
from referral_platform_client.api.links import create_key, create_program, enrol
from referral_platform_client.api.rewards import participant_rewards
from referral_platform_client.models import (
    BalanceOut,
    ConversionIn,
    ConversionOut,
    ParticipantCreate,
    ProgramCreate,
    ProgramDefinitionIn,
    RewardPolicy,
    SideReward,
    SignupIn,
    SignupOut,
)

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float = 60.0) -> T:
    """Events take a moment to flow between the services: poll with a deadline."""
    deadline = time.monotonic() + timeout_s
    while (result := probe()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s}s")
        time.sleep(0.2)
    return result


def main() -> None:
    defaults = ServiceUrls.local()
    urls = ServiceUrls(
        **{
            service: os.environ.get(f"{service.upper()}_URL", getattr(defaults, service))
            for service in ("links", "attribution", "rewards", "notifications")
        }
    )
    admin_key = os.environ.get("ADMIN_API_KEY") or Path(".dev/admin_api_key").read_text().strip()
    admin = ReferralPlatform(urls, token=admin_key)

    program = admin.call(
        create_program.sync_detailed,
        body=ProgramCreate(
            name="Give $20, get $20 (Python SDK)",
            definition=ProgramDefinitionIn(
                destination_url="https://shop.example.com/welcome",
                allowed_hosts=["shop.example.com"],
                rewards=RewardPolicy(
                    referrer=SideReward(amount=2000, unit="USD"),
                    referee=SideReward(amount=2000, unit="USD"),
                ),
            ),
        ),
    )
    print(f"program {program.id} version {program.version}")
    key = admin.call(create_key.sync_detailed, program_id=program.id)
    server = admin.with_token(key.secret_key)  # the program's server calls with its own key

    referrer = server.call(
        enrol.sync_detailed,
        program_id=program.id,
        body=ParticipantCreate(external_user_id=f"user-{uuid.uuid4().hex[:8]}"),
    )
    print(f"participant {referrer.id} code {referrer.code} link {referrer.link_url}")

    friend = f"cust-{uuid.uuid4().hex[:8]}"
    first = server.call(
        signup.sync_detailed, body=SignupIn(customer_id=friend, referral_code=referrer.code)
    )

    def decided() -> SignupOut | None:
        # Pending while attribution has not yet heard of the code (the enrolment's event).
        answer = server.call(get_signup.sync_detailed, signup_id=first.signup_id)
        return answer if answer.status != "pending" else None

    decision = first if first.status != "pending" else eventually(decided, "signup decided")
    print(f"signup {friend}: attributed={json.dumps(decision.attributed)} ({decision.reason})")

    order_id = f"order-{uuid.uuid4().hex[:8]}"
    bought = server.call(
        conversion.sync_detailed,
        body=ConversionIn(customer_id=friend, order_id=order_id, amount=4999, currency="USD"),
        idempotency_key=order_id,  # the order id: a retried call is applied once
    )
    # Held (202) if the signup were still pending; it is decided here, so this is the conversion.
    if not isinstance(bought, ConversionOut):
        sys.exit(f"conversion held: {bought.status}")
    print(f"conversion {bought.conversion_id} qualified={json.dumps(bought.qualified)}")
    again = server.call(
        conversion.sync_detailed,
        body=ConversionIn(customer_id=friend, order_id=order_id, amount=4999, currency="USD"),
        idempotency_key=order_id,
    )
    if not isinstance(again, ConversionOut) or again.conversion_id != bought.conversion_id:
        sys.exit(f"the repeated call was applied again: {again}")
    print("repeated with the same Idempotency-Key: the first answer, applied once")

    def issued() -> BalanceOut | None:
        balance = server.call(
            participant_rewards.sync_detailed, program_id=program.id, participant_id=referrer.id
        )
        return balance if any(r.status == "issued" for r in balance.rewards) else None

    balance = eventually(issued, "referrer reward issued")
    print(f"reward issued: balance {json.dumps(balance.balances.to_dict(), separators=(',', ':'))}")

    try:
        server.call(
            conversion.sync_detailed,
            body=ConversionIn(customer_id=friend, order_id="bad", amount=-1, currency="USD"),
        )
    except ValidationError as problem:
        print(
            f"typed problem: {type(problem).__name__} {problem.status} {problem.kind} "
            f"field={problem.errors[0].field if problem.errors else problem.field}"
        )
    else:
        sys.exit("a negative amount was accepted")
    print("example complete")


if __name__ == "__main__":
    main()
