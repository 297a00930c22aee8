"""Schema-driven fuzzing of every service's HTTP API (schemathesis): whatever a client sends,
no 5xx, and every error is a valid RFC 9457 problem document. A bounded number of cases per
operation keeps it inside ``make test``; the counts go to test-output/fuzz-summary.txt."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from devstack.journey import Urls
from devstack.stack import Stack
from tests.conftest import OUTPUT_DIR

SERVICES = ["links", "attribution", "rewards", "notifications"]
CASES_PER_OPERATION = 20
TRIED: collections.Counter[str] = collections.Counter()

_SETTINGS = settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _check(case: Any, stack: Stack, service: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {stack.admin_api_key}"}, timeout=10)
    TRIED[service] += 1
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
    # The public redirect answers browsers with a plain HTML page; APIs answer problem+json.
    if response.status_code >= 400 and case.path.startswith("/v1/"):
        assert response.headers["content-type"][0].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == response.status_code
        assert body["type"] and body["title"] and body["detail"]


@pytest.mark.parametrize("service", SERVICES)
def test_api_survives_generated_requests(service: str, stack: Stack, urls: Urls) -> None:
    schema = schemathesis.openapi.from_url(f"{getattr(urls, service)}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{service} documents no operation"
    for operation in operations:

        @given(case=operation.as_strategy())
        @_SETTINGS
        def fuzz(case: Any) -> None:
            _check(case, stack, service)

        fuzz()


def test_zz_fuzzing_tried_cases_and_reports_them() -> None:
    """Runs last in this module: the fuzzers above must actually have sent requests."""
    summary = ", ".join(f"{service}={n}" for service, n in sorted(TRIED.items()))
    OUTPUT_DIR.mkdir(exist_ok=True)
    (OUTPUT_DIR / "fuzz-summary.txt").write_text(f"cases tried: {summary}\n")
    print(f"\nAPI fuzzing: cases tried: {summary}")
    assert set(TRIED) == set(SERVICES)
    assert all(n >= CASES_PER_OPERATION for n in TRIED.values())
