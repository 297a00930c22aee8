"""The client SDKs, built from the services' current OpenAPI documents (``python -m sdk.build``,
once per session), run their examples against the real services: one referral each (program,
key, enrolment, signup, conversion and its repeat with the same ``Idempotency-Key``, the
referrer's reward) and a 422 caught as a typed ``ValidationError``. The TypeScript example is
type-checked against the generated types first, so an API change that breaks it fails here.
Node.js and npm are required, not optional: without them these tests fail and say what to
install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.journey import Urls
from devstack.stack import Stack
from tests.conftest import OUTPUT_DIR, REPO_ROOT

SDK = REPO_ROOT / "sdk"
TYPESCRIPT = SDK / "typescript"
# Each example polls its own steps with a 60 s deadline; this only bounds a hung process.
EXAMPLE_TIMEOUT_S = 300
# The examples are not about the broker: the Kafka pass of `make test` does not repeat them.
pytestmark = pytest.mark.tansu_only


def _run(command: list[str], cwd: Path, env: dict[str, str], name: str) -> str:
    run = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S
    )
    output = run.stdout + run.stderr
    OUTPUT_DIR.mkdir(exist_ok=True)
    (OUTPUT_DIR / f"sdk-{name}.txt").write_text(output)
    assert run.returncode == 0, f"{' '.join(command)} exited {run.returncode}:\n{output[-8000:]}"
    return output


@pytest.fixture(scope="session")
def sdk_build() -> Path:
    """Both SDKs, generated once for the session (``npm ci`` only if not done yet)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "the SDK tests need Node.js 20+ and npm: apt-get install nodejs npm "
            "(.ci/run installs them)"
        )
    _run([sys.executable, "-m", "sdk.build"], REPO_ROOT, dict(os.environ), "build")
    return SDK / "build"


def _example_env(stack: Stack, urls: Urls) -> dict[str, str]:
    return {
        **os.environ,
        "ADMIN_API_KEY": stack.admin_api_key,
        "LINKS_URL": urls.links,
        "ATTRIBUTION_URL": urls.attribution,
        "REWARDS_URL": urls.rewards,
        "NOTIFICATIONS_URL": urls.notifications,
    }


def _assert_one_referral(output: str) -> None:
    """Both examples print the same lines (JSON spelling of values)."""
    assert ": attributed=true (code)" in output, output
    assert "qualified=true" in output, output
    assert "same Idempotency-Key: the first answer, applied once" in output, output
    assert 'reward issued: balance {"USD":2000}' in output, output
    assert "typed problem: ValidationError 422 validation-error field=amount" in output, output
    assert output.rstrip().endswith("example complete"), output


def test_python_sdk_example(sdk_build: Path, stack: Stack, urls: Urls) -> None:
    env = {**_example_env(stack, urls), "PYTHONPATH": str(sdk_build / "python")}
    output = _run([sys.executable, str(SDK / "python" / "example.py")], REPO_ROOT, env, "python")
    _assert_one_referral(output)


def test_typescript_sdk_example(sdk_build: Path, stack: Stack, urls: Urls) -> None:
    bin_ = TYPESCRIPT / "node_modules" / ".bin"
    _run([str(bin_ / "tsc"), "--noEmit", "-p", "."], TYPESCRIPT, dict(os.environ), "tsc")
    output = _run(
        [str(bin_ / "tsx"), "example.ts"], TYPESCRIPT, _example_env(stack, urls), "typescript"
    )
    _assert_one_referral(output)
