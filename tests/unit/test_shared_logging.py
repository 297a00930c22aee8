"""``setup_logging``: JSON lines with service, level, trace ids, and no personal data."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry import setup_logging

Lines = Callable[[], list[dict]]


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lines]:
    """Install the service's logging onto an in-memory stdout; restore everything after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("uvicorn.access")
    kafka = logging.getLogger("aiokafka")
    saved_access, saved_kafka = access.disabled, kafka.level
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    setup_logging("links", "debug")

    def lines() -> list[dict]:
        return [json.loads(line) for line in out.getvalue().splitlines()]

    try:
        yield lines
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        access.disabled = saved_access
        kafka.setLevel(saved_kafka)


def test_one_json_line_per_record(log_lines: Lines) -> None:
    log = logging.getLogger("unit.logging")
    log.info("hello %s", "world")
    log.warning("second")
    first, second = log_lines()
    assert first["message"] == "hello world"
    assert first["level"] == "INFO"
    assert first["service"] == "links"
    assert first["logger"] == "unit.logging"
    assert first["time"]
    assert second["level"] == "WARNING"
    assert second["message"] == "second"


def test_setup_replaces_root_handlers_and_sets_the_level(log_lines: Lines) -> None:
    root = logging.getLogger()
    # pytest adds its own capture handlers around each test; ours is the only stream handler.
    (ours,) = [h for h in root.handlers if type(h) is logging.StreamHandler]
    assert isinstance(ours.stream, io.StringIO)  # the stdout of the moment of setup
    assert root.level == logging.DEBUG
    assert logging.getLogger("uvicorn.access").disabled
    assert logging.getLogger("aiokafka").level == logging.WARNING


def test_no_trace_ids_outside_a_span(log_lines: Lines) -> None:
    logging.getLogger("unit.logging").info("no span")
    (line,) = log_lines()
    assert "trace_id" not in line
    assert "span_id" not in line


def test_trace_and_span_ids_inside_a_span(log_lines: Lines) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("unit")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("unit.logging").info("in span")
        ctx = span.get_span_context()
    (line,) = log_lines()
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert len(line["trace_id"]) == 32
    assert len(line["span_id"]) == 16


def test_emails_and_ips_in_arguments_are_redacted(log_lines: Lines) -> None:
    log = logging.getLogger("unit.logging")
    log.info("user %s", "a@b.com")
    log.info("click from %s by %s", "203.0.113.9", "jane.doe+ref@example.org")
    first, second = log_lines()
    assert first["message"] == "user [email]"
    assert second["message"] == "click from [ip] by [email]"
    raw = json.dumps([first, second])
    for secret in ("a@b.com", "203.0.113.9", "jane.doe", "example.org"):
        assert secret not in raw


def test_percent_signs_after_redaction_do_not_break_formatting(log_lines: Lines) -> None:
    logging.getLogger("unit.logging").info("%d%% of %s", 50, "x@y.io")
    (line,) = log_lines()
    assert line["message"] == "50% of [email]"


def test_emails_in_logged_exceptions_are_redacted(log_lines: Lines) -> None:
    try:
        raise ValueError("Key (email)=(victim@example.com) already exists")
    except ValueError:
        logging.getLogger("unit.logging").exception("insert failed")
    (line,) = log_lines()
    assert "victim@example.com" not in json.dumps(line)
