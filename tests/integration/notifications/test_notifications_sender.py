"""The sender as it runs in the service: replicas share the work without sending twice, a
slow receiver holds one slot and not the others, and a crash between the SMTP accept and the
record resends once with the same Message-ID (the documented semantics)."""

from __future__ import annotations

import asyncio
import threading

from services.notifications.delivery import Sender
from services.notifications.repository import deliveries
from tests.integration.kafka_helpers import running
from tests.integration.notifications.conftest import World
from tests.integration.notifications.receivers import WebhookReceiver, until


async def test_two_senders_send_each_email_once(world: World) -> None:
    program_id = await world.program()
    for i in range(30):
        await world.enrol(program_id, email=f"r{i}@example.com")
    world.settings.notify_sender_batch_size = 4
    first, second = Sender(world.pool, world.settings), Sender(world.pool, world.settings)
    async with running(first.run), running(second.run):
        await until(lambda: len(world.smtp.messages) >= 30)
        await until(_all_sent(world))
    assert len(world.smtp.messages) == 30
    assert len({m["To"] for m in world.smtp.messages}) == 30


def _all_sent(world: World):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        return not await world.deliveries(channel="email", status="pending")

    return probe


async def test_a_slow_endpoint_does_not_hold_back_another(
    world: World, receiver: WebhookReceiver
) -> None:
    gate = threading.Event()
    receiver.held["/slow"] = gate
    world.settings.notify_webhook_timeout_s = 20
    program_id = await world.program()
    slow, _ = await world.endpoint(program_id, receiver.url("/slow"))
    await world.endpoint(program_id, receiver.url("/fast"))
    await world.enrol(program_id)
    sender = Sender(world.pool, world.settings)
    try:
        async with running(sender.run):
            await until(lambda: receiver.received("/fast"))
            await world.enrol(program_id)  # a later message, while the slow call hangs
            await until(lambda: len(receiver.received("/fast")) == 2)
            [pending, *_] = await world.deliveries(endpoint_id=slow)
            assert pending["status"] == "pending"
            assert not receiver.received("/slow")
            gate.set()
            await until(lambda: len(receiver.received("/slow")) == 2)
    finally:
        gate.set()


async def test_a_crash_after_the_accept_resends_once_with_the_same_message_id(
    world: World,
) -> None:
    program_id = await world.program()
    await world.enrol(program_id, email="once@example.com")
    world.settings.notify_sender_lease_s = 0.2
    sender = Sender(world.pool, world.settings)
    # A process claims the row, the SMTP server accepts the message, the process dies
    # before recording it.
    [row] = await deliveries.claim(world.pool, "email", 10, 0.2)
    await sender._email(row)  # the external call, with no record after it
    await sender.close()
    await asyncio.sleep(0.3)  # the lease runs out
    await world.send_all()
    mails = world.smtp.to("once@example.com")
    assert len(mails) == 2  # sent again: at least once, not exactly once
    assert mails[0]["Message-ID"] == mails[1]["Message-ID"]  # so receivers can drop it
    [delivery] = await world.deliveries(channel="email")
    assert delivery["status"] == "sent"
    await world.send_all()
    assert len(world.smtp.to("once@example.com")) == 2
