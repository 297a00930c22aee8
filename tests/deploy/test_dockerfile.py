"""Dockerfile and .dockerignore, read as text (there is no Docker engine to build with here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "libpq-dev", "apt-get install")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    result = []
    for line in lines:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def build_args() -> dict[str, str]:
    args = {}
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
    return args


def resolve(text: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: build_args().get(m[1], m[0]), text)


def test_multi_stage_with_slim_python_311_runtime() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    final_from = resolve(all_stages[-1][0][1]).split()[0]
    assert final_from == "python:3.11-slim"
    assert any("AS builder" in resolve(stage[0][1]) for stage in all_stages[:-1])


def test_final_stage_has_no_build_tools_and_copies_the_venv() -> None:
    final = stages()[-1]
    for word, rest in final:
        if word == "RUN":
            for tool in BUILD_TOOLS:
                assert tool not in rest, f"build tool in the final stage: {rest}"
    copies = [rest for word, rest in final if word == "COPY"]
    assert any("--from=builder" in c and "/opt/venv" in c for c in copies)
    assert all("--from=builder" in c for c in copies), "only the built venv enters the runtime"


def test_runs_as_non_root_uid_10001() -> None:
    final = stages()[-1]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] == "10001"
    run = " ".join(rest for word, rest in final if word == "RUN")
    assert "--uid 10001" in run


def test_one_image_for_every_service() -> None:
    final = dict(stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["python", "-m"]
    assert json.loads(final["CMD"]) == ["services.links"]
    exposed = set(final["EXPOSE"].split())
    assert {"8001", "8002", "8003", "8004"} <= exposed


def test_project_installed_with_pip() -> None:
    builder = stages()[0]
    runs = " ".join(rest for word, rest in builder if word == "RUN")
    assert "pip install ." in runs


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything is ignored unless let in"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "shared", "services", "devstack"} <= allowed
    assert "README*" in allowed, "pyproject.toml names README.md as the readme"
    for never in ("tests", "deploy", ".git", ".venv", "docker-compose.yml", ".env"):
        assert never not in allowed
    assert "**/__pycache__" in lines
