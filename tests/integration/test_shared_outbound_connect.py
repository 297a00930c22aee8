"""The outbound client checks the address it connects to, not only the one seen when the URL
was checked: a name that resolves to loopback (or starts to, DNS rebinding) gets no request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shared.http import outbound
from shared.http.outbound import check_target, outbound_client


class _Server:
    """A loopback HTTP server that records the Host header of every request it gets."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                server.hosts.append(self.headers["host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    try:
        yield running
    finally:
        running.http.shutdown()
        running.http.server_close()


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(server: _Server) -> None:
    async with outbound_client(timeout=5, allow_private=False) as client:
        with pytest.raises(httpx.ConnectError, match="non-public"):
            await client.post(f"http://localhost:{server.port}/hook", content=b"{}")
        with pytest.raises(httpx.ConnectError, match="non-public"):
            await client.post(f"http://[::ffff:127.0.0.1]:{server.port}/hook", content=b"{}")
    assert server.hosts == []


async def test_dns_rebinding_after_the_check_gets_no_request(server: _Server) -> None:
    answers = iter([["93.184.215.14"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    url = f"http://hooks.example:{server.port}/hook"
    await check_target(url, allow_private=False, resolver=rebinding)  # public when checked
    async with outbound_client(timeout=5, allow_private=False, resolver=rebinding) as client:
        with pytest.raises(httpx.ConnectError, match="non-public"):
            await client.post(url, content=b"{}")
    assert server.hosts == []


async def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []

    def loopback_counts_as_public(address: str) -> bool:
        checked.append(address)
        return True

    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(outbound, "is_public_address", loopback_counts_as_public)
    async with outbound_client(timeout=5, allow_private=False, resolver=to_loopback) as client:
        response = await client.post(f"http://hooks.example:{server.port}/hook", content=b"{}")
    assert response.status_code == 204
    assert checked == ["127.0.0.1"]
    assert server.hosts == [f"hooks.example:{server.port}"]


async def test_private_networks_allowed_for_tests_and_dev(server: _Server) -> None:
    async with outbound_client(timeout=5, allow_private=True) as client:
        response = await client.post(f"http://localhost:{server.port}/hook", content=b"{}")
    assert response.status_code == 204
    assert server.hosts == [f"localhost:{server.port}"]


async def test_a_slow_look_up_counts_against_the_connect_timeout() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.215.14"]

    async with outbound_client(timeout=0.2, allow_private=False, resolver=slow) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.post("http://hooks.example/hook", content=b"{}")
