"""Build the client SDKs from the services' own code: ``python -m sdk.build`` (``make sdk``).

1. The OpenAPI documents, from the apps in-process (no server): ``sdk/build/openapi/<service>.json``
   and their merge ``referral-platform.json`` (``sdk/documents.py`` says why one merge).
2. Python: ``openapi-python-client`` generates ``referral_platform_client`` from the merged
   document into ``sdk/build/python/``, and the hand-written layer (``sdk/python/``) is copied
   into it: one installable package.
3. TypeScript: ``openapi-typescript`` generates one ``paths`` type per service document into
   ``sdk/build/typescript/`` (``sdk/typescript/generate.mjs``, after ``npm ci`` there if not
   done yet); the wrapper in ``sdk/typescript/src`` imports them.

Nothing generated is committed: every build, and CI, generates from the current code, so the
SDKs cannot drift from the API."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from sdk.documents import SERVICES, merge, service_document

SDK = Path(__file__).resolve().parent
BUILD = SDK / "build"
DOCUMENTS = BUILD / "openapi"
MERGED = DOCUMENTS / "referral-platform.json"
PYTHON_OUT = BUILD / "python"
PYTHON_PACKAGE = "referral_platform_client"
TYPESCRIPT = SDK / "typescript"
TYPESCRIPT_OUT = BUILD / "typescript"


class BuildError(RuntimeError):
    pass


def write_documents() -> dict[str, Path]:
    DOCUMENTS.mkdir(parents=True, exist_ok=True)
    docs = {service: service_document(service) for service in SERVICES}
    paths = {}
    for service, doc in docs.items():
        paths[service] = DOCUMENTS / f"{service}.json"
        paths[service].write_text(json.dumps(doc, indent=2) + "\n")
    MERGED.write_text(json.dumps(merge(docs), indent=2) + "\n")
    return paths


def _run(command: list[str], cwd: Path, what: str) -> None:
    # The virtualenv's tools (ruff for the generator's post-hooks) come first on the PATH.
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(command)}):\n{run.stdout}{run.stderr}")


def build_python() -> Path:
    generator = Path(sys.executable).with_name("openapi-python-client")
    if not generator.exists():
        raise BuildError(
            "openapi-python-client is missing: pip install -e '.[dev]' (or `make install`)"
        )
    _run(
        [
            str(generator),
            "generate",
            "--path",
            str(MERGED),
            "--config",
            str(SDK / "python" / "config.yaml"),
            "--custom-template-path",
            str(SDK / "python" / "templates"),
            "--output-path",
            str(PYTHON_OUT),
            "--meta",
            "pdm",
            "--overwrite",
        ],
        SDK,
        "openapi-python-client",
    )
    package = PYTHON_OUT / PYTHON_PACKAGE
    for module in sorted((SDK / "python" / PYTHON_PACKAGE).glob("*.py")):
        shutil.copy2(module, package / module.name)
    return PYTHON_OUT


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise BuildError(
            "the TypeScript SDK needs Node.js 20+ and npm: apt-get install nodejs npm "
            "(or run `python -m sdk.build --python-only`)"
        )
    return npm


def ensure_node_modules() -> None:
    """``npm ci`` once: again only when the lock file changed since."""
    installed = TYPESCRIPT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    _run([_npm(), "ci", "--no-audit", "--no-fund"], TYPESCRIPT, "npm ci")


def build_typescript(documents: dict[str, Path]) -> Path:
    _npm()
    ensure_node_modules()
    TYPESCRIPT_OUT.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node") or "node"
    _run(
        [node, "generate.mjs", str(TYPESCRIPT_OUT), *map(str, documents.values())],
        TYPESCRIPT,
        "openapi-typescript",
    )
    return TYPESCRIPT_OUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--python-only", action="store_true")
    only.add_argument("--typescript-only", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        documents = write_documents()
        print(f"sdk: OpenAPI documents in {DOCUMENTS.relative_to(SDK.parent)}")
        if not args.typescript_only:
            out = build_python()
            print(f"sdk: Python package {PYTHON_PACKAGE} in {out.relative_to(SDK.parent)}")
        if not args.python_only:
            out = build_typescript(documents)
            print(f"sdk: TypeScript types in {out.relative_to(SDK.parent)}")
    except BuildError as error:
        print(f"sdk: {error}", file=sys.stderr)
        return 1
    print(f"sdk: built in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
