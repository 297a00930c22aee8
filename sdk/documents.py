"""The OpenAPI documents the SDKs are generated from, built in-process from the services' own
apps (the same documents they serve at ``/openapi.json``, no server needed), cut to the public
API a company's code calls, and merged into one document for the Python client.

Why one merged document for Python: openapi-python-client makes one package per document, so
four documents would give four packages, each with its own copy of ``Problem`` and of the
client classes. Merged, a company installs one package (``referral_platform_client``); each
operation is tagged with its service, so the generated calls sit in ``api/<service>/`` and the
hand-written layer knows which base URL each one goes to (each service has its own host)."""

from __future__ import annotations

import copy
import importlib
import json
import re
from typing import Any

from devstack.stack import DEFAULT_PORTS

SERVICES = tuple(DEFAULT_PORTS)
TITLE = "Referral platform"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _public(path: str) -> bool:
    """The JSON API a company's code calls; not the browser-facing redirect, QR, unsubscribe
    and HTML pages, nor the service-to-service routes."""
    return path.startswith("/v1/") and not path.startswith("/v1/internal/")


def service_document(service: str) -> dict[str, Any]:
    """``service``'s document as its app serves it, with only the public paths, each operation
    tagged with the service and named by its handler (FastAPI's default operation id appends the
    path and method: ``create_program_v1_programs_post`` becomes ``create_program``)."""
    app = importlib.import_module(f"services.{service}.app").create_app()
    doc = copy.deepcopy(app.openapi())
    doc["paths"] = {path: ops for path, ops in doc["paths"].items() if _public(path)}
    names: dict[str, int] = {}
    operations = [
        (path, method, op)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if method in _METHODS
    ]
    for path, method, op in operations:
        suffix = re.sub(r"\W", "_", path) + "_" + method
        name = op["operationId"].removesuffix(suffix)
        names[name] = names.get(name, 0) + 1
        op["x-handler"] = name
    for _, _, op in operations:
        # Two handlers of one name (possible across routers) keep FastAPI's unique id.
        handler = op.pop("x-handler")
        if names[handler] == 1:
            op["operationId"] = handler
        op["tags"] = [service]
    return _without_unused_schemas(doc)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set().union(*(_refs(v) for v in node.values())) if node else set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _without_unused_schemas(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop the schemas only the removed paths used (they would become dead models)."""
    schemas = doc.get("components", {}).get("schemas", {})
    used, todo = set(), _refs(doc["paths"])
    while todo:
        name = todo.pop()
        if name not in used and name in schemas:
            used.add(name)
            todo |= _refs(schemas[name])
    doc["components"]["schemas"] = {n: s for n, s in schemas.items() if n in used}
    return doc


def _renamed(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _renamed(v, names) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            out["$ref"] = f"#/components/schemas/{names.get(name, name)}"
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


def merge(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document holding every service's public paths. A schema name two services define
    differently is prefixed with each service's name (``LinksThing``, ``RewardsThing``); one
    they define identically (``Problem``) is kept once. Two services serving one path and
    method cannot be merged: that is an error, not something to paper over."""
    definitions: dict[str, set[str]] = {}
    for doc in docs.values():
        for name, schema in doc["components"]["schemas"].items():
            definitions.setdefault(name, set()).add(json.dumps(schema, sort_keys=True))
    clashing = {name for name, bodies in definitions.items() if len(bodies) > 1}
    merged: dict[str, Any] = {
        "openapi": next(iter(docs.values()))["openapi"],
        "info": {
            "title": TITLE,
            "version": next(iter(docs.values()))["info"]["version"],
            "description": "The public API of the referral platform's services; each "
            "operation's tag names the service (and so the base URL) that serves it.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [{"name": service} for service in docs],
    }
    for service, doc in docs.items():
        names = {n: service.capitalize() + n for n in doc["components"]["schemas"] if n in clashing}
        doc = _renamed(doc, names)
        for path, ops in doc["paths"].items():
            target = merged["paths"].setdefault(path, {})
            for method, op in ops.items():
                if method in target:
                    raise ValueError(f"{method.upper()} {path} is served by two services")
                target[method] = op
        merged["components"]["schemas"].update(
            {names.get(n, n): schema for n, schema in doc["components"]["schemas"].items()}
        )
        merged["components"]["securitySchemes"].update(doc["components"].get("securitySchemes", {}))
    ids = [op["operationId"] for ops in merged["paths"].values() for op in ops.values()]
    if len(ids) != len(set(ids)):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        for ops in merged["paths"].values():
            for op in ops.values():
                if op["operationId"] in duplicated:
                    op["operationId"] = f"{op['tags'][0]}_{op['operationId']}"
    return merged
