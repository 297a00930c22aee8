"""Unit tests run without I/O: no database, broker or network. Outbound connections fail
loudly, and hypothesis keeps no example database and writes nothing into the repository."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis caches (unicode tables, constants) go to the temp dir, not the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "refplat-unit-hypothesis")
settings.register_profile("unit", database=None, deadline=None)
settings.load_profile("unit")


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"unit tests must not open network connections: {args!r}")


@pytest.fixture(autouse=True)
def _forbid_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    yield
